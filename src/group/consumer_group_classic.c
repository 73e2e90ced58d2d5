/* consumer_group_classic: KIP-848's online migration — members speaking the classic protocol
 * (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) inside a consumer group, and the conversion
 * of a group from classic to consumer (upgrade) and back (downgrade), as Kafka's
 * GroupMetadataManager (classicGroup*ToConsumerGroup, convertToConsumerGroup/ClassicGroup). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group_internal.h"
#include "proto/messages.h"

#define MIG_WHO "GroupCoordinator"
#define CONSUMER_PROTOCOL_TYPE "consumer"

static bool upgrade_enabled(const struct group_coordinator *gc)
{
    enum gc_migration_policy p = gc->cfg.consumer_migration_policy;
    return p == GC_MIGRATION_BIDIRECTIONAL || p == GC_MIGRATION_UPGRADE;
}

static bool downgrade_enabled(const struct group_coordinator *gc)
{
    enum gc_migration_policy p = gc->cfg.consumer_migration_policy;
    return p == GC_MIGRATION_BIDIRECTIONAL || p == GC_MIGRATION_DOWNGRADE;
}

/* ---- the embedded consumer protocol (ConsumerProtocolSubscription / Assignment) ---- */

/* An arena large enough for decoding len bytes (every array entry costs at least 2 bytes). */
static void arena_for(struct arena *a, int32_t len)
{
    arena_init(a, (size_t)(len > 0 ? len : 0) * 16 + 4096);
}

/* Decodes a subscription; newer versions than 3 only add fields at the end. -1 if malformed. */
static int decode_subscription(const uint8_t *p, int32_t len, struct arena *arena,
                               struct consumer_protocol_subscription *out)
{
    if (p == NULL || len < 2)
        return -1;
    struct kreader r;
    kr_init(&r, (uint8_t *)p, (size_t)len, arena);
    int16_t v = kr_i16(&r);
    if (!kr_ok(&r) || v < 0)
        return -1;
    return consumer_protocol_subscription_decode(&r, v > 3 ? 3 : v, out);
}

static int16_t metadata_version(const uint8_t *p, int32_t len)
{
    if (p == NULL || len < 2)
        return 0;
    int16_t v = (int16_t)(p[0] << 8 | p[1]);
    return v < 0 ? 0 : v > 3 ? 3 : v;
}

static bool topic_by_name(const struct group_coordinator *gc, const char *name, struct cg_topic *t)
{
    return gc->topics.by_name != NULL && name != NULL && gc->topics.by_name(gc->topics.ctx, name, t);
}

/* Named partitions -> partitions by topic id; unknown topics are left out. Returns a malloc'ed
 * array (n in *n_out). */
static struct cg_tp *named_to_ids(const struct group_coordinator *gc, const struct kstr *topics,
                                  int32_t *const *parts, const int32_t *n_parts, int n,
                                  int *n_out)
{
    int total = 0;
    for (int i = 0; i < n; i++)
        total += n_parts[i] > 0 ? n_parts[i] : 0;
    struct cg_tp *v = calloc((size_t)total + 1, sizeof(*v));
    GREGOR_ASSERT(v != NULL);
    int k = 0;
    for (int i = 0; i < n; i++) {
        struct cg_topic t;
        if (!topic_by_name(gc, topics[i].ptr, &t))
            continue;
        for (int j = 0; j < n_parts[i]; j++)
            if (parts[i][j] >= 0 && parts[i][j] < t.partitions)
                v[k++] = (struct cg_tp){t.id, parts[i][j]};
    }
    *n_out = k;
    return v;
}

static struct cg_tp *subscription_owned(const struct group_coordinator *gc,
                                        const struct consumer_protocol_subscription *s, int *n)
{
    int nt = s->n_owned_partitions > 0 ? s->n_owned_partitions : 0;
    struct kstr *names = calloc((size_t)nt + 1, sizeof(*names));
    int32_t **parts = calloc((size_t)nt + 1, sizeof(*parts));
    int32_t *np = calloc((size_t)nt + 1, sizeof(*np));
    GREGOR_ASSERT(names && parts && np);
    for (int i = 0; i < nt; i++) {
        names[i] = s->owned_partitions[i].topic;
        parts[i] = s->owned_partitions[i].partitions;
        np[i] = s->owned_partitions[i].n_partitions > 0 ? s->owned_partitions[i].n_partitions : 0;
    }
    struct cg_tp *v = named_to_ids(gc, names, parts, np, nt, n);
    free(names);
    free(parts);
    free(np);
    return v;
}

/* Decodes a classic member's assignment bytes (empty = nothing) into partitions by topic id. */
static int decode_assignment(const struct group_coordinator *gc, const uint8_t *p, int32_t len,
                             struct cg_tps *out)
{
    out->v = NULL;
    out->n = 0;
    if (p == NULL || len <= 0)
        return 0;
    struct arena arena;
    arena_for(&arena, len);
    struct kreader r;
    kr_init(&r, (uint8_t *)p, (size_t)len, &arena);
    int16_t v = kr_i16(&r);
    struct consumer_protocol_assignment a;
    if (!kr_ok(&r) || v < 0 || consumer_protocol_assignment_decode(&r, v > 3 ? 3 : v, &a) != 0) {
        arena_reset(&arena);
        return -1;
    }
    int nt = a.n_assigned_partitions > 0 ? a.n_assigned_partitions : 0;
    struct kstr *names = calloc((size_t)nt + 1, sizeof(*names));
    int32_t **parts = calloc((size_t)nt + 1, sizeof(*parts));
    int32_t *np = calloc((size_t)nt + 1, sizeof(*np));
    GREGOR_ASSERT(names && parts && np);
    for (int i = 0; i < nt; i++) {
        names[i] = a.assigned_partitions[i].topic;
        parts[i] = a.assigned_partitions[i].partitions;
        np[i] = a.assigned_partitions[i].n_partitions > 0 ? a.assigned_partitions[i].n_partitions : 0;
    }
    int n = 0;
    struct cg_tp *tps = named_to_ids(gc, names, parts, np, nt, &n);
    cg_tps_from(out, tps, n);
    free(tps);
    free(names);
    free(parts);
    free(np);
    arena_reset(&arena);
    return 0;
}

/* Encodes partitions (sorted by topic id) as a ConsumerProtocolAssignment of `version`; topics
 * the host no longer knows are left out. */
static int encode_assignment(const struct group_coordinator *gc, const struct cg_tps *tps,
                             int16_t version, struct gc_buf *out)
{
    struct consumer_protocol_assignment_topic_partition *tp =
        calloc((size_t)tps->n + 1, sizeof(*tp));
    int32_t *parts = calloc((size_t)tps->n + 1, sizeof(*parts));
    GREGOR_ASSERT(tp && parts);
    int nt = 0;
    const struct kuuid *last = NULL;
    bool known = false;
    for (int i = 0; i < tps->n; i++) {
        const struct cg_tp *x = &tps->v[i];
        if (last == NULL || memcmp(last->b, x->topic_id.b, 16) != 0) {
            last = &x->topic_id;
            struct cg_topic t;
            known = gc->topics.by_id != NULL && gc->topics.by_id(gc->topics.ctx, &x->topic_id, &t);
            if (known) {
                tp[nt].topic = (struct kstr){(char *)t.name, (int32_t)strlen(t.name)};
                tp[nt].partitions = parts + i;
                tp[nt].n_partitions = 0;
                nt++;
            }
        }
        if (known) {
            parts[i] = x->partition;
            tp[nt - 1].n_partitions++;
        }
    }
    struct consumer_protocol_assignment a = {
        .assigned_partitions = tp,
        .n_assigned_partitions = nt,
        .user_data = {NULL, -1},
    };
    struct kwriter w;
    kw_init(&w, 1u << 24);
    kw_i16(&w, version);
    consumer_protocol_assignment_encode(&w, version, &a);
    free(tp);
    free(parts);
    return gc_take(&w, out);
}

/* ---- classic members in a consumer group ---- */

/* Kafka's validateConsumerGroupMember: the static member by instance id, else by member id. */
static int16_t find_classic(struct cg_group *cg, const char *member_id, const char *instance_id,
                            struct cg_member **out)
{
    *out = NULL;
    if (instance_id != NULL) {
        struct cg_member *s = cg_member_by_instance(cg, instance_id);
        if (s == NULL)
            return KERR_UNKNOWN_MEMBER_ID;
        if (member_id == NULL || strcmp(s->id, member_id) != 0)
            return KERR_FENCED_INSTANCE_ID;
        *out = s;
    } else {
        *out = cg_member_find(cg, member_id);
        if (*out == NULL)
            return KERR_UNKNOWN_MEMBER_ID;
    }
    /* throwIfMemberDoesNotUseClassicProtocol */
    return (*out)->classic ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
}

static void join_error(gc_join_cb cb, void *arg, int16_t err, const char *member_id)
{
    struct gc_join_result res = {
        .error = err,
        .generation = -1,
        .leader = "",
        .member_id = member_id ? member_id : "",
    };
    cb(arg, &res);
}

/* The classic member for a JoinGroup, as Kafka's getOrMaybeSubscribe{Dynamic,Static}Member:
 * *existing (NULL = new) and *replaced (the old id of a static member taken over). */
static int16_t join_member(struct cg_group *cg, const struct gc_join_args *a, bool unknown,
                           struct cg_member **existing, const char **replaced)
{
    *existing = NULL;
    *replaced = NULL;
    if (a->instance_id == NULL) {
        if (unknown)
            return KERR_NONE;
        *existing = cg_member_find(cg, a->member_id);
        return *existing ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
    }
    struct cg_member *s = cg_member_by_instance(cg, a->instance_id);
    if (s == NULL)
        return unknown ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
    if (unknown) {
        /* A static member restarting: the new member id replaces (fences) the old one. */
        *existing = s;
        *replaced = s->id;
        return KERR_NONE;
    }
    if (strcmp(s->id, a->member_id) != 0)
        return KERR_FENCED_INSTANCE_ID;
    *existing = s;
    return KERR_NONE;
}

void cg_classic_join_group(struct group_coordinator *gc, struct group *g,
                           const struct gc_join_args *a, gc_join_cb cb, void *arg)
{
    struct cg_group *cg = g->cg;
    const char *mid = a->member_id ? a->member_id : "";
    bool unknown = mid[0] == '\0';
    /* throwIfClassicProtocolIsNotSupported: type "consumer" and a protocol every classic
     * member lists. */
    if (a->protocol_type == NULL || strcmp(a->protocol_type, CONSUMER_PROTOCOL_TYPE) != 0 ||
        a->n_protocols <= 0 || !cg_classic_supported(cg, a->protocols, a->n_protocols)) {
        join_error(cb, arg, KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
        return;
    }
    struct cg_member *existing;
    const char *replaced;
    int16_t e = join_member(cg, a, unknown, &existing, &replaced);
    if (e != KERR_NONE) {
        join_error(cb, arg, e, mid);
        return;
    }
    char *new_id = unknown ? cg_new_member_id() : NULL;
    if (unknown && a->instance_id == NULL && a->version >= 4) {
        /* KIP-394, as Kafka here: the id is handed out and the member comes back with it. */
        LOG_INFO(MIG_WHO, "[GroupId %s] Dynamic member with unknown member id joins the consumer "
                 "group. Created a new member id %s and requesting the member to rejoin with "
                 "this id.", g->id, new_id);
        join_error(cb, arg, KERR_MEMBER_ID_REQUIRED, new_id);
        free(new_id);
        return;
    }
    struct arena arena;
    arena_for(&arena, a->protocols[0].metadata_len);
    struct consumer_protocol_subscription sub;
    if (decode_subscription(a->protocols[0].metadata, a->protocols[0].metadata_len, &arena,
                            &sub) != 0) {
        /* Kafka: the embedded protocol does not parse. */
        join_error(cb, arg, KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
        arena_reset(&arena);
        free(new_id);
        return;
    }
    int nt = sub.n_topics > 0 ? sub.n_topics : 0;
    const char **topics = calloc((size_t)nt + 1, sizeof(*topics));
    GREGOR_ASSERT(topics != NULL);
    for (int i = 0; i < nt; i++)
        topics[i] = sub.topics[i].ptr ? sub.topics[i].ptr : "";
    int n_owned = 0;
    struct cg_tp *owned = subscription_owned(gc, &sub, &n_owned);
    struct cg_classic_join cj = {
        .join = a,
        .owned = owned,
        .n_owned = n_owned,
        .topics = topics,
        .n_topics = nt,
        .rack_id = sub.rack_id.ptr,
    };
    struct cg_heartbeat_args ha = {
        .version = 1,
        .group_id = g->id,
        .member_id = unknown ? new_id : mid,
        .member_epoch = CG_JOIN_EPOCH,
        .instance_id = a->instance_id,
        .rack_id = sub.rack_id.ptr && sub.rack_id.ptr[0] ? sub.rack_id.ptr : NULL,
        .rebalance_timeout_ms = a->rebalance_timeout_ms,
        .topics = topics,
        .n_topics = nt,
        .regex = "",
        .assignor = NULL,
        .owned = owned,
        .n_owned = n_owned,
        .client_id = a->client_id,
        .client_host = a->client_host,
    };
    struct cg_heartbeat_result res;
    memset(&res, 0, sizeof(res));
    char *group_id = gc_strdup(g->id);
    bool replacing = replaced != NULL; /* replaced dies with the old member */
    cg_heartbeat_apply(gc, &gc->topics, g, &ha, existing, replaced, &cj, &res);
    if (res.error != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_INFO, MIG_WHO, "[GroupId %s] classic join of %s refused: %s (%s)",
                    group_id, ha.member_id, kerr_name(res.error), res.error_message);
        join_error(cb, arg, res.error, mid);
    } else {
        struct gc_join_result jr = {
            .error = KERR_NONE,
            .generation = res.member_epoch,
            .protocol_type = CONSUMER_PROTOCOL_TYPE,
            .protocol_name = a->protocols[0].name,
            .leader = "",
            .member_id = res.member_id,
        };
        cb(arg, &jr);
        /* A classic static member replaced the last consumer-protocol one: downgrade (Kafka's
         * validateOnlineDowngradeWithReplacedMemberId). */
        struct group *now = gc_group_find(gc, group_id);
        if (replacing && now != NULL && now->cg != NULL)
            cg_maybe_downgrade(gc, now, NULL);
    }
    cg_heartbeat_result_free(&res);
    free(group_id);
    free(owned);
    free(topics);
    free(new_id);
    arena_reset(&arena);
}

void cg_classic_sync_group(struct group_coordinator *gc, struct group *g,
                           const struct gc_sync_args *a, gc_sync_cb cb, void *arg)
{
    struct cg_group *cg = g->cg;
    struct gc_sync_result res = {.error = KERR_NONE};
    struct cg_member *m;
    res.error = find_classic(cg, a->member_id, a->instance_id, &m);
    if (res.error == KERR_NONE && a->generation != m->epoch)
        res.error = KERR_ILLEGAL_GENERATION;
    const char *proto = res.error == KERR_NONE && m->n_classic_protocols > 0
                            ? m->classic_protocols[0].name : NULL;
    if (res.error == KERR_NONE &&
        ((a->protocol_type && strcmp(a->protocol_type, CONSUMER_PROTOCOL_TYPE) != 0) ||
         (a->protocol_name && (proto == NULL || strcmp(a->protocol_name, proto) != 0))))
        res.error = KERR_INCONSISTENT_GROUP_PROTOCOL;
    /* throwIfRebalanceInProgress: a new group epoch means the member must rejoin first, unless
     * it is still revoking (its next join follows by itself). */
    if (res.error == KERR_NONE && cg->epoch > m->epoch && m->state != CG_UNREVOKED_PARTITIONS)
        res.error = KERR_REBALANCE_IN_PROGRESS;
    if (res.error != KERR_NONE) {
        cb(arg, &res);
        return;
    }
    cg_member_touch(gc, m);
    struct gc_buf out = {0};
    int e = encode_assignment(gc, &m->assigned,
                              metadata_version(m->classic_protocols[0].metadata,
                                               m->classic_protocols[0].metadata_len),
                              &out);
    if (e != KERR_NONE) {
        res.error = KERR_UNKNOWN_SERVER_ERROR;
        cb(arg, &res);
        return;
    }
    res.protocol_type = CONSUMER_PROTOCOL_TYPE;
    res.protocol_name = proto;
    res.assignment = out.p;
    res.assignment_len = (int32_t)out.len;
    cb(arg, &res);
    free(out.p);
}

int16_t cg_classic_heartbeat(struct group_coordinator *gc, struct group *g, int32_t generation,
                             const char *member_id, const char *instance_id)
{
    struct cg_group *cg = g->cg;
    struct cg_member *m;
    int16_t e = find_classic(cg, member_id, instance_id, &m);
    if (e != KERR_NONE)
        return e;
    if (generation != m->epoch)
        return KERR_ILLEGAL_GENERATION;
    /* The member rejoins when the group epoch moved on, when it must revoke, or when the
     * partitions it waits for are free; it has its rebalance timeout to do so (Kafka's join
     * timeout), after which it is fenced. */
    bool rejoin = m->epoch < cg->epoch || m->state == CG_UNREVOKED_PARTITIONS ||
                  (m->state == CG_UNRELEASED_PARTITIONS && !cg_waiting_on_unreleased(cg, m));
    if (rejoin && m->classic_rejoin_deadline == 0) {
        int32_t rto = m->rebalance_timeout_ms > 0 ? m->rebalance_timeout_ms
                                                  : cg_member_session_timeout(gc, m);
        m->classic_rejoin_deadline = gc->env.mono_ms(gc->env.ctx) + rto;
    }
    cg_member_touch(gc, m);
    return rejoin ? KERR_REBALANCE_IN_PROGRESS : KERR_NONE;
}

int cg_classic_leave(struct group_coordinator *gc, struct group *g, struct gc_leave_member *lm,
                     int n)
{
    for (int i = 0; i < n; i++) {
        if (g->cg == NULL)
            return i; /* downgraded: the rest leave the classic group */
        const char *mid = lm[i].member_id ? lm[i].member_id : "";
        struct cg_member *m;
        if (lm[i].instance_id != NULL) {
            m = cg_member_by_instance(g->cg, lm[i].instance_id);
            if (m == NULL) {
                lm[i].error = KERR_UNKNOWN_MEMBER_ID;
                continue;
            }
            if (mid[0] != '\0' && strcmp(mid, m->id) != 0) {
                lm[i].error = KERR_FENCED_INSTANCE_ID;
                continue;
            }
            if (!m->classic) {
                lm[i].error = KERR_UNKNOWN_MEMBER_ID;
                continue;
            }
        } else if (find_classic(g->cg, mid, NULL, &m) != KERR_NONE) {
            lm[i].error = KERR_UNKNOWN_MEMBER_ID;
            continue;
        }
        LOG_INFO(MIG_WHO, "[GroupId %s] Classic member %s has left the consumer group through "
                 "explicit LeaveGroup request", g->id, m->id);
        lm[i].error = cg_fence_member(gc, g, m, "classic LeaveGroup") == KERR_NONE
                          ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
    }
    return n;
}

/* ---- upgrade: a classic group with members becomes a consumer group ---- */

/* The records of one classic member as a consumer group member (Kafka's fromClassicGroup):
 * epoch = the generation, STABLE, target = assigned = its last assignment. */
static int upgrade_member(struct group_coordinator *gc, struct group *g, const struct member *cm,
                          struct gc_record_list *l)
{
    const struct member_protocol *p = NULL;
    for (int i = 0; i < cm->n_protocols && p == NULL; i++)
        if (g->protocol == NULL || strcmp(cm->protocols[i].name, g->protocol) == 0)
            p = &cm->protocols[i];
    if (p == NULL)
        return -1;
    struct arena arena;
    arena_for(&arena, p->metadata_len);
    struct consumer_protocol_subscription sub;
    struct cg_tps assigned = {0};
    if (decode_subscription(p->metadata, p->metadata_len, &arena, &sub) != 0 ||
        decode_assignment(gc, cm->assignment, cm->assignment_len, &assigned) != 0) {
        arena_reset(&arena);
        return -1;
    }
    struct cg_member m;
    memset(&m, 0, sizeof(m));
    m.id = cm->id;
    m.instance_id = cm->instance_id;
    m.rack_id = sub.rack_id.ptr && sub.rack_id.ptr[0] ? sub.rack_id.ptr : NULL;
    m.client_id = cm->client_id;
    m.client_host = cm->client_host;
    int nt = sub.n_topics > 0 ? sub.n_topics : 0;
    char **topics = calloc((size_t)nt + 1, sizeof(*topics));
    GREGOR_ASSERT(topics != NULL);
    for (int i = 0; i < nt; i++)
        topics[i] = sub.topics[i].ptr ? sub.topics[i].ptr : (char *)"";
    m.topics = topics;
    m.n_topics = nt;
    m.rebalance_timeout_ms = cm->rebalance_timeout_ms;
    m.classic = true;
    m.classic_session_timeout_ms = cm->session_timeout_ms;
    m.classic_protocols = cm->protocols;
    m.n_classic_protocols = cm->n_protocols;
    int e = cg_rec_member_metadata(l, g->id, &m, false);
    if (e == KERR_NONE)
        e = cg_rec_target_member(l, g->id, cm->id, &assigned, false);
    if (e == KERR_NONE)
        e = cg_rec_current(l, g->id, cm->id, g->generation, g->generation, CG_STABLE,
                           &assigned, &(struct cg_tps){NULL, 0}, false);
    free(topics);
    cg_tps_free(&assigned);
    arena_reset(&arena);
    return e;
}

struct group *cg_upgrade_classic_group(struct group_coordinator *gc, struct group *g)
{
    int32_t max = gc->cfg.consumer_max_size > 0 ? gc->cfg.consumer_max_size : INT32_MAX;
    if (!upgrade_enabled(gc)) {
        LOG_INFO(MIG_WHO, "Cannot upgrade classic group %s to consumer group because the online "
                 "upgrade is disabled.", g->id);
        return NULL;
    }
    if (g->protocol_type == NULL || strcmp(g->protocol_type, CONSUMER_PROTOCOL_TYPE) != 0) {
        LOG_INFO(MIG_WHO, "Cannot upgrade classic group %s to consumer group because the group "
                 "does not use the consumer embedded protocol.", g->id);
        return NULL;
    }
    if (g->n_members > max) {
        LOG_INFO(MIG_WHO, "Cannot upgrade classic group %s to consumer group because the group "
                 "size exceeds the consumer group maximum size.", g->id);
        return NULL;
    }
    /* The classic group's tombstone first (replay attaches the consumer group only to a group
     * without classic state), then each member's subscription, target and current assignment,
     * the group epoch and the target assignment epoch. */
    struct gc_record_list l = {0};
    int e = records_add_group_tombstone(&l, g->id);
    for (const struct member *m = g->members; m && e == KERR_NONE; m = m->next)
        e = upgrade_member(gc, g, m, &l);
    if (e == -1) {
        LOG_WARN(MIG_WHO, "Cannot upgrade the classic group %s to consumer group because the "
                 "embedded consumer protocol is malformed.", g->id);
        records_list_free(&l);
        return NULL;
    }
    int32_t epoch = g->generation;
    if (e == KERR_NONE)
        e = cg_rec_group_metadata(&l, g->id, epoch, false);
    if (e == KERR_NONE)
        e = cg_rec_target_metadata(&l, g->id, epoch, false);
    if (e != KERR_NONE) {
        records_list_free(&l);
        return NULL;
    }
    /* Members waiting on a join or sync rejoin the consumer group (Kafka does this first). */
    gc_classic_reset(g, KERR_REBALANCE_IN_PROGRESS);
    int n = g->n_members;
    char *gid = gc_strdup(g->id);
    e = cg_append_and_apply(gc, g->partition, &l);
    records_list_free(&l);
    if (e != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_WARN, MIG_WHO, "cannot persist the upgrade of classic group %s: %s",
                    gid, kerr_name(e));
        free(gid);
        return NULL;
    }
    /* The tombstone's replay may have dropped the group entry before the consumer group's
     * records made a new one. */
    g = gc_group_find(gc, gid);
    GREGOR_ASSERT(g != NULL && g->cg != NULL && g->n_members == 0 && g->cg->n_members == n);
    int64_t now = gc->env.mono_ms(gc->env.ctx);
    for (struct cg_member *m = g->cg->members; m; m = m->next) {
        m->session_deadline = now + cg_member_session_timeout(gc, m);
        if (m->session_timer.id == 0)
            m->session_timer.id = gc->env.timer_add(gc->env.ctx, m->session_deadline,
                                                    &m->session_timer);
    }
    LOG_INFO(MIG_WHO, "[GroupId %s] Upgraded the classic group with %d members to a consumer "
             "group (group epoch %d)", gid, n, epoch);
    free(gid);
    return g;
}

/* ---- downgrade: the last consumer-protocol member leaves, classic members remain ---- */

/* The protocol every remaining member supports that most list first (Kafka's selectProtocol,
 * ties to the first member's order); NULL when there is none. */
static const char *downgrade_protocol(const struct cg_group *cg, const struct cg_member *leaving)
{
    const struct cg_member *first = leaving && cg->members == leaving ? leaving->next
                                                                      : cg->members;
    const char *best = NULL;
    int best_votes = -1;
    for (int i = 0; first && i < first->n_classic_protocols; i++) {
        const char *name = first->classic_protocols[i].name;
        int votes = 0;
        bool all = true;
        for (const struct cg_member *m = cg->members; m && all; m = m->next) {
            if (m == leaving)
                continue;
            bool has = false;
            for (int j = 0; j < m->n_classic_protocols && !has; j++)
                has = strcmp(m->classic_protocols[j].name, name) == 0;
            all = has;
            if (m->n_classic_protocols > 0 && strcmp(m->classic_protocols[0].name, name) == 0)
                votes++;
        }
        if (all && votes > best_votes) {
            best = name;
            best_votes = votes;
        }
    }
    return best;
}

bool cg_maybe_downgrade(struct group_coordinator *gc, struct group *g, struct cg_member *leaving)
{
    struct cg_group *cg = g->cg;
    int remaining = cg->n_members - (leaving ? 1 : 0);
    for (const struct cg_member *m = cg->members; m; m = m->next)
        if (m != leaving && !m->classic)
            return false;
    if (remaining < 1)
        return false;
    if (!downgrade_enabled(gc)) {
        LOG_INFO(MIG_WHO, "Cannot downgrade consumer group %s to classic group because the "
                 "online downgrade is disabled.", g->id);
        return false;
    }
    if (remaining > gc->cfg.max_size) {
        LOG_INFO(MIG_WHO, "Cannot downgrade consumer group %s to classic group because its "
                 "group size is greater than classic group max size.", g->id);
        return false;
    }
    const char *protocol = downgrade_protocol(cg, leaving);
    if (protocol == NULL)
        return false;
    /* The classic group as Kafka's fromConsumerGroup builds it: generation = group epoch, each
     * member's subscription for the protocol and its target assignment; then rebalanced. */
    struct gc_member_desc *md = calloc((size_t)remaining, sizeof(*md));
    int32_t *sess = calloc((size_t)remaining, sizeof(*sess));
    int32_t *reb = calloc((size_t)remaining, sizeof(*reb));
    struct gc_buf *bufs = calloc((size_t)remaining, sizeof(*bufs));
    GREGOR_ASSERT(md && sess && reb && bufs);
    int k = 0, e = KERR_NONE;
    for (const struct cg_member *m = cg->members; m && e == KERR_NONE; m = m->next) {
        if (m == leaving)
            continue;
        const struct member_protocol *p = NULL;
        for (int j = 0; j < m->n_classic_protocols && p == NULL; j++)
            if (strcmp(m->classic_protocols[j].name, protocol) == 0)
                p = &m->classic_protocols[j];
        GREGOR_ASSERT(p != NULL);
        e = encode_assignment(gc, &m->target, metadata_version(p->metadata, p->metadata_len),
                              &bufs[k]);
        md[k] = (struct gc_member_desc){m->id, m->instance_id, m->client_id, m->client_host,
                                        p->metadata, p->metadata_len, bufs[k].p,
                                        (int32_t)bufs[k].len};
        sess[k] = m->classic_session_timeout_ms;
        reb[k] = m->rebalance_timeout_ms;
        k++;
    }
    struct gc_record_list l = {0};
    if (e == KERR_NONE) {
        gc_replay_group(gc, g, CONSUMER_PROTOCOL_TYPE, cg->epoch, protocol, md[0].member_id,
                        gc->env.wall_ms(gc->env.ctx), k, md, sess, reb);
        e = cg_records_add_tombstones(&l, g);
    }
    if (e == KERR_NONE)
        e = records_add_group(&l, g);
    char *gid = gc_strdup(g->id);
    char *left = gc_strdup(leaving ? leaving->id : "(a static member replaced)");
    if (e == KERR_NONE)
        e = cg_append_and_apply(gc, g->partition, &l);
    records_list_free(&l);
    for (int i = 0; i < k; i++)
        free(bufs[i].p);
    free(bufs);
    free(md);
    free(sess);
    free(reb);
    bool done = e == KERR_NONE;
    if (done) {
        GREGOR_ASSERT(g->cg == NULL && g->n_members == remaining);
        char reason[300];
        snprintf(reason, sizeof(reason), "Downgrade group %s from consumer to classic.", gid);
        LOG_INFO(MIG_WHO, "[GroupId %s] Member %s left; the %d remaining members use the classic "
                 "protocol: downgraded to a classic group (generation %d)", gid, left, remaining,
                 g->generation);
        gc_classic_downgraded(g, reason);
    } else {
        /* Nothing was written: the group stays a consumer group and the member leaves it. */
        gc_replay_group(gc, g, NULL, 0, NULL, NULL, -1, 0, NULL, NULL, NULL);
        LOG_LIMITED(LOG_LEVEL_WARN, MIG_WHO, "cannot persist the downgrade of consumer group "
                    "%s: %s", gid, kerr_name(e));
    }
    free(gid);
    free(left);
    return done;
}
