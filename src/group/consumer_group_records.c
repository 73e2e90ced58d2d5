/* consumer_group_records: KIP-848 consumer groups in __consumer_offsets with Kafka's schemas —
 * ConsumerGroupMetadata (key v3), MemberMetadata (v5), TargetAssignmentMetadata (v6),
 * TargetAssignmentMember (v7), CurrentMemberAssignment (v8) — their replay (which is also how
 * a heartbeat's changes are applied, so memory never differs from the log) and snapshots. */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group_internal.h"
#include "proto/messages.h"

#define CG_WHO "GroupMetadataManager"
#define CG_RECORD_MAX_BYTES (64u << 20)

/* Key: INT16 version + group id (+ member id). */
static int encode_key(struct gc_buf *out, int16_t version, const char *group, const char *member)
{
    struct kwriter w;
    kw_init(&w, CG_RECORD_MAX_BYTES);
    kw_i16(&w, version);
    switch (version) {
    case 3: {
        struct consumer_group_metadata_key k = {gc_kstr(group)};
        consumer_group_metadata_key_encode(&w, 3, &k);
        break;
    }
    case 5: {
        struct consumer_group_member_metadata_key k = {gc_kstr(group), gc_kstr(member)};
        consumer_group_member_metadata_key_encode(&w, 5, &k);
        break;
    }
    case 6: {
        struct consumer_group_target_assignment_metadata_key k = {gc_kstr(group)};
        consumer_group_target_assignment_metadata_key_encode(&w, 6, &k);
        break;
    }
    case 7: {
        struct consumer_group_target_assignment_member_key k = {gc_kstr(group), gc_kstr(member)};
        consumer_group_target_assignment_member_key_encode(&w, 7, &k);
        break;
    }
    default: {
        struct consumer_group_current_member_assignment_key k = {gc_kstr(group), gc_kstr(member)};
        consumer_group_current_member_assignment_key_encode(&w, 8, &k);
        break;
    }
    }
    return gc_take(&w, out);
}

/* Adds key + value (value.p NULL: tombstone); owns both buffers from here. */
static int add(struct gc_record_list *l, int16_t kv, const char *group, const char *member,
               struct gc_buf value)
{
    struct gc_buf k = {0};
    int e = encode_key(&k, kv, group, member);
    if (e != KERR_NONE) {
        free(value.p);
        return e;
    }
    return records_add(l, k, value);
}

int cg_rec_group_metadata(struct gc_record_list *l, const char *group, int32_t epoch, bool tomb)
{
    struct gc_buf v = {0};
    if (!tomb) {
        struct kwriter w;
        kw_init(&w, CG_RECORD_MAX_BYTES);
        struct consumer_group_metadata_value x = {epoch};
        kw_i16(&w, 0);
        consumer_group_metadata_value_encode(&w, 0, &x);
        int e = gc_take(&w, &v);
        if (e != KERR_NONE)
            return e;
    }
    return add(l, 3, group, NULL, v);
}

int cg_rec_member_metadata(struct gc_record_list *l, const char *group, const struct cg_member *m,
                           bool tomb)
{
    struct gc_buf v = {0};
    if (!tomb) {
        struct kstr *topics = calloc((size_t)m->n_topics + 1, sizeof(*topics));
        if (topics == NULL)
            return KERR_UNKNOWN_SERVER_ERROR;
        for (int i = 0; i < m->n_topics; i++)
            topics[i] = gc_kstr(m->topics[i]);
        struct consumer_group_member_metadata_value x = {
            .instance_id = gc_kstr(m->instance_id),
            .rack_id = gc_kstr(m->rack_id),
            .client_id = gc_kstr(m->client_id ? m->client_id : ""),
            .client_host = gc_kstr(m->client_host ? m->client_host : ""),
            .subscribed_topic_names = topics,
            .n_subscribed_topic_names = m->n_topics,
            .subscribed_topic_regex = gc_kstr(m->regex),
            .rebalance_timeout_ms = m->rebalance_timeout_ms,
            .server_assignor = gc_kstr(m->assignor),
        };
        struct consumer_group_member_metadata_value_classic_member_metadata classic = {0};
        struct consumer_group_member_metadata_value_classic_protocol *protos = NULL;
        if (m->classic) {
            protos = calloc((size_t)m->n_classic_protocols + 1, sizeof(*protos));
            if (protos == NULL) {
                free(topics);
                return KERR_UNKNOWN_SERVER_ERROR;
            }
            for (int i = 0; i < m->n_classic_protocols; i++) {
                protos[i].name = gc_kstr(m->classic_protocols[i].name);
                protos[i].metadata = (struct kbytes){m->classic_protocols[i].metadata,
                                                     m->classic_protocols[i].metadata_len};
            }
            classic.session_timeout_ms = m->classic_session_timeout_ms;
            classic.supported_protocols = protos;
            classic.n_supported_protocols = m->n_classic_protocols;
            x.classic_member_metadata = &classic;
        }
        struct kwriter w;
        kw_init(&w, CG_RECORD_MAX_BYTES);
        kw_i16(&w, 0);
        consumer_group_member_metadata_value_encode(&w, 0, &x);
        free(topics);
        free(protos);
        int e = gc_take(&w, &v);
        if (e != KERR_NONE)
            return e;
    }
    return add(l, 5, group, m->id, v);
}

int cg_rec_target_metadata(struct gc_record_list *l, const char *group, int32_t epoch, bool tomb)
{
    struct gc_buf v = {0};
    if (!tomb) {
        struct kwriter w;
        kw_init(&w, CG_RECORD_MAX_BYTES);
        struct consumer_group_target_assignment_metadata_value x = {epoch};
        kw_i16(&w, 0);
        consumer_group_target_assignment_metadata_value_encode(&w, 0, &x);
        int e = gc_take(&w, &v);
        if (e != KERR_NONE)
            return e;
    }
    return add(l, 6, group, NULL, v);
}

/* Groups a sorted partition set by topic: n_topics entries of (id, partitions[]). The partition
 * arrays point into parts (caller frees both). */
struct topic_group {
    struct kuuid id;
    int32_t *partitions;
    int32_t n;
};
static int group_by_topic(const struct cg_tps *s, struct topic_group **out, int32_t **parts)
{
    *out = calloc((size_t)s->n + 1, sizeof(**out));
    *parts = calloc((size_t)s->n + 1, sizeof(**parts));
    GREGOR_ASSERT(*out && *parts);
    int nt = 0;
    for (int i = 0; i < s->n; i++) {
        if (nt == 0 || memcmp((*out)[nt - 1].id.b, s->v[i].topic_id.b, 16) != 0) {
            (*out)[nt].id = s->v[i].topic_id;
            (*out)[nt].partitions = *parts + i;
            (*out)[nt].n = 0;
            nt++;
        }
        (*parts)[i] = s->v[i].partition;
        (*out)[nt - 1].n++;
    }
    return nt;
}

int cg_rec_target_member(struct gc_record_list *l, const char *group, const char *member,
                         const struct cg_tps *target, bool tomb)
{
    struct gc_buf v = {0};
    if (!tomb) {
        struct topic_group *tg;
        int32_t *parts;
        int nt = group_by_topic(target, &tg, &parts);
        struct consumer_group_target_assignment_member_value_topic_partition *tp =
            calloc((size_t)nt + 1, sizeof(*tp));
        GREGOR_ASSERT(tp != NULL);
        for (int i = 0; i < nt; i++) {
            tp[i].topic_id = tg[i].id;
            tp[i].partitions = tg[i].partitions;
            tp[i].n_partitions = tg[i].n;
        }
        struct consumer_group_target_assignment_member_value x = {tp, nt};
        struct kwriter w;
        kw_init(&w, CG_RECORD_MAX_BYTES);
        kw_i16(&w, 0);
        consumer_group_target_assignment_member_value_encode(&w, 0, &x);
        free(tp);
        free(tg);
        free(parts);
        int e = gc_take(&w, &v);
        if (e != KERR_NONE)
            return e;
    }
    return add(l, 7, group, member, v);
}

typedef struct consumer_group_current_member_assignment_value_topic_partitions current_tp;

static current_tp *current_tps(const struct cg_tps *s, int32_t *n, struct topic_group **tg,
                               int32_t **parts)
{
    int nt = group_by_topic(s, tg, parts);
    current_tp *v = calloc((size_t)nt + 1, sizeof(*v));
    GREGOR_ASSERT(v != NULL);
    for (int i = 0; i < nt; i++) {
        v[i].topic_id = (*tg)[i].id;
        v[i].partitions = (*tg)[i].partitions;
        v[i].n_partitions = (*tg)[i].n;
    }
    *n = nt;
    return v;
}

int cg_rec_current(struct gc_record_list *l, const char *group, const char *member, int32_t epoch,
                   int32_t previous_epoch, int8_t state, const struct cg_tps *assigned,
                   const struct cg_tps *pending, bool tomb)
{
    struct gc_buf v = {0};
    if (!tomb) {
        struct topic_group *tg1, *tg2;
        int32_t *p1, *p2;
        struct consumer_group_current_member_assignment_value x = {
            .member_epoch = epoch,
            .previous_member_epoch = previous_epoch,
            .state = state,
        };
        x.assigned_partitions = current_tps(assigned, &x.n_assigned_partitions, &tg1, &p1);
        x.partitions_pending_revocation =
            current_tps(pending, &x.n_partitions_pending_revocation, &tg2, &p2);
        struct kwriter w;
        kw_init(&w, CG_RECORD_MAX_BYTES);
        kw_i16(&w, 0);
        consumer_group_current_member_assignment_value_encode(&w, 0, &x);
        free(x.assigned_partitions);
        free(x.partitions_pending_revocation);
        free(tg1);
        free(tg2);
        free(p1);
        free(p2);
        int e = gc_take(&w, &v);
        if (e != KERR_NONE)
            return e;
    }
    return add(l, 8, group, member, v);
}

int cg_append_and_apply(struct group_coordinator *gc, int32_t partition, struct gc_record_list *l)
{
    int e = records_append(gc, partition, l);
    if (e != KERR_NONE)
        return e;
    for (int i = 0; i < l->n; i++)
        if (gc_replay_record(gc, l->recs[i].key, l->recs[i].key_len, l->recs[i].value,
                             l->recs[i].value_len) != 0)
            LOG_ERROR(CG_WHO, "cannot apply a consumer group record we wrote (key version %d)",
                      l->recs[i].key_len >= 2 ? (l->recs[i].key[0] << 8 | l->recs[i].key[1]) : -1);
    return KERR_NONE;
}

/* ---- replay ---- */

static void live_flag(struct group_coordinator *gc, struct group *g, bool *flag, bool value)
{
    if (*flag != value)
        gc->live[g->partition] += value ? 1 : -1;
    *flag = value;
}

static void tps_from_current(struct cg_tps *dst, const current_tp *v, int32_t n)
{
    int total = 0;
    for (int32_t i = 0; i < n; i++)
        total += v[i].n_partitions > 0 ? v[i].n_partitions : 0;
    struct cg_tp *tmp = calloc((size_t)total + 1, sizeof(*tmp));
    GREGOR_ASSERT(tmp != NULL);
    int k = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < v[i].n_partitions; j++)
            tmp[k++] = (struct cg_tp){v[i].topic_id, v[i].partitions[j]};
    cg_tps_from(dst, tmp, k);
    free(tmp);
}

static void tps_from_target(struct cg_tps *dst,
                            const struct consumer_group_target_assignment_member_value *x)
{
    int total = 0;
    for (int32_t i = 0; i < x->n_topic_partitions; i++)
        total += x->topic_partitions[i].n_partitions > 0 ? x->topic_partitions[i].n_partitions : 0;
    struct cg_tp *tmp = calloc((size_t)total + 1, sizeof(*tmp));
    GREGOR_ASSERT(tmp != NULL);
    int k = 0;
    for (int32_t i = 0; i < x->n_topic_partitions; i++)
        for (int32_t j = 0; j < x->topic_partitions[i].n_partitions; j++)
            tmp[k++] = (struct cg_tp){x->topic_partitions[i].topic_id,
                                      x->topic_partitions[i].partitions[j]};
    cg_tps_from(dst, tmp, k);
    free(tmp);
}

/* The group for a record: classic state that is still live is left alone (a consumer group
 * record for it means the log was written by someone else; we skip it). */
static struct cg_group *replay_group(struct group_coordinator *gc, const char *id, bool create)
{
    struct group *g = gc_group_find(gc, id);
    if (g == NULL) {
        if (!create)
            return NULL;
        g = gc_group_get_or_create(gc, id);
    }
    if (g->cg == NULL) {
        if (!create)
            return NULL;
        if (g->n_members > 0 || g->meta.p != NULL) {
            LOG_WARN(CG_WHO, "skipping a consumer group record for classic group %s", id);
            return NULL;
        }
        cg_attach(g);
    }
    return g->cg;
}

/* Forgets a member or group once none of its records is live. */
static void maybe_forget(struct group_coordinator *gc, struct cg_group *cg, struct cg_member *m)
{
    if (m != NULL && !m->has_metadata && !m->has_target && !m->has_current)
        cg_member_remove(cg, m);
    struct group *g = cg->g;
    g->state = cg->n_members > 0 ? GC_STABLE : GC_EMPTY;
    if (cg->n_members == 0 && !cg->has_metadata && !cg->has_target_metadata) {
        cg_group_free(g);
        gc_group_drop_if_unused(gc, g);
    }
}

static void set_str(char **dst, const struct kstr *s)
{
    free(*dst);
    *dst = s->ptr ? gc_strdup(s->ptr) : NULL;
}

static int replay_member_metadata(struct group_coordinator *gc, struct cg_group *cg,
                                  const char *member, struct kreader *r, bool tomb)
{
    struct cg_member *m = tomb ? cg_member_find(cg, member) : cg_member_get_or_create(cg, member);
    if (m == NULL)
        return 0;
    if (tomb) {
        live_flag(gc, cg->g, &m->has_metadata, false);
        maybe_forget(gc, cg, m);
        return 0;
    }
    struct consumer_group_member_metadata_value v;
    if (consumer_group_member_metadata_value_decode(r, 0, &v) != 0)
        return -1;
    set_str(&m->instance_id, &v.instance_id);
    set_str(&m->rack_id, &v.rack_id);
    set_str(&m->client_id, &v.client_id);
    set_str(&m->client_host, &v.client_host);
    set_str(&m->assignor, &v.server_assignor);
    cg_subs_count(cg, m, -1);
    for (int i = 0; i < m->n_topics; i++)
        free(m->topics[i]);
    free(m->topics);
    int n = v.n_subscribed_topic_names > 0 ? v.n_subscribed_topic_names : 0;
    m->topics = calloc((size_t)n + 1, sizeof(char *));
    GREGOR_ASSERT(m->topics != NULL);
    for (int i = 0; i < n; i++)
        m->topics[i] = gc_strdup(v.subscribed_topic_names[i].ptr ? v.subscribed_topic_names[i].ptr : "");
    m->n_topics = n;
    if (!cg_member_set_regex(m, v.subscribed_topic_regex.ptr))
        LOG_WARN(CG_WHO, "member %s of group %s: regex %s does not compile here", m->id,
                 cg->g->id, v.subscribed_topic_regex.ptr);
    cg_subs_count(cg, m, 1);
    m->rebalance_timeout_ms = v.rebalance_timeout_ms;
    const struct consumer_group_member_metadata_value_classic_member_metadata *c =
        v.classic_member_metadata;
    cg_classic_count(cg, m, -1);
    if (c != NULL) {
        int np = c->n_supported_protocols > 0 ? c->n_supported_protocols : 0;
        struct gc_protocol *ps = calloc((size_t)np + 1, sizeof(*ps));
        GREGOR_ASSERT(ps != NULL);
        for (int i = 0; i < np; i++)
            ps[i] = (struct gc_protocol){c->supported_protocols[i].name.ptr
                                             ? c->supported_protocols[i].name.ptr : "",
                                         c->supported_protocols[i].metadata.ptr,
                                         c->supported_protocols[i].metadata.len > 0
                                             ? c->supported_protocols[i].metadata.len : 0};
        cg_member_set_classic(m, c->session_timeout_ms, ps, np);
        free(ps);
    } else {
        cg_member_set_classic(m, 0, NULL, -1);
    }
    cg_classic_count(cg, m, 1);
    live_flag(gc, cg->g, &m->has_metadata, true);
    maybe_forget(gc, cg, NULL);
    return 0;
}

static int replay_target_member(struct group_coordinator *gc, struct cg_group *cg,
                                const char *member, struct kreader *r, bool tomb)
{
    struct cg_member *m = tomb ? cg_member_find(cg, member) : cg_member_get_or_create(cg, member);
    if (m == NULL)
        return 0;
    if (tomb) {
        cg_tps_free(&m->target);
        live_flag(gc, cg->g, &m->has_target, false);
        maybe_forget(gc, cg, m);
        return 0;
    }
    struct consumer_group_target_assignment_member_value v;
    if (consumer_group_target_assignment_member_value_decode(r, 0, &v) != 0)
        return -1;
    cg_tps_free(&m->target);
    tps_from_target(&m->target, &v);
    live_flag(gc, cg->g, &m->has_target, true);
    maybe_forget(gc, cg, NULL);
    return 0;
}

static int replay_current(struct group_coordinator *gc, struct cg_group *cg, const char *member,
                          struct kreader *r, bool tomb)
{
    struct cg_member *m = tomb ? cg_member_find(cg, member) : cg_member_get_or_create(cg, member);
    if (m == NULL)
        return 0;
    if (tomb) {
        cg_owners_count(cg, m, -1);
        cg_tps_free(&m->assigned);
        cg_tps_free(&m->pending_revocation);
        m->epoch = 0;
        m->previous_epoch = 0;
        m->state = CG_STABLE;
        live_flag(gc, cg->g, &m->has_current, false);
        maybe_forget(gc, cg, m);
        return 0;
    }
    struct consumer_group_current_member_assignment_value v;
    if (consumer_group_current_member_assignment_value_decode(r, 0, &v) != 0)
        return -1;
    m->epoch = v.member_epoch;
    m->previous_epoch = v.previous_member_epoch;
    m->state = v.state;
    cg_owners_count(cg, m, -1);
    cg_tps_free(&m->assigned);
    cg_tps_free(&m->pending_revocation);
    tps_from_current(&m->assigned, v.assigned_partitions, v.n_assigned_partitions);
    tps_from_current(&m->pending_revocation, v.partitions_pending_revocation,
                     v.n_partitions_pending_revocation);
    cg_owners_count(cg, m, 1);
    live_flag(gc, cg->g, &m->has_current, true);
    maybe_forget(gc, cg, NULL);
    return 0;
}

int cg_replay_record(struct group_coordinator *gc, int16_t kv, struct kreader *key,
                     const uint8_t *value, int32_t value_len, struct arena *arena)
{
    const char *group = NULL, *member = NULL;
    switch (kv) {
    case 3: {
        struct consumer_group_metadata_key k;
        if (consumer_group_metadata_key_decode(key, 3, &k) != 0)
            return -1;
        group = k.group_id.ptr;
        break;
    }
    case 4:
        return 0; /* PartitionMetadata: not used after Kafka 4.0 */
    case 5: {
        struct consumer_group_member_metadata_key k;
        if (consumer_group_member_metadata_key_decode(key, 5, &k) != 0)
            return -1;
        group = k.group_id.ptr;
        member = k.member_id.ptr;
        break;
    }
    case 6: {
        struct consumer_group_target_assignment_metadata_key k;
        if (consumer_group_target_assignment_metadata_key_decode(key, 6, &k) != 0)
            return -1;
        group = k.group_id.ptr;
        break;
    }
    case 7: {
        struct consumer_group_target_assignment_member_key k;
        if (consumer_group_target_assignment_member_key_decode(key, 7, &k) != 0)
            return -1;
        group = k.group_id.ptr;
        member = k.member_id.ptr;
        break;
    }
    case 8: {
        struct consumer_group_current_member_assignment_key k;
        if (consumer_group_current_member_assignment_key_decode(key, 8, &k) != 0)
            return -1;
        group = k.group_id.ptr;
        member = k.member_id.ptr;
        break;
    }
    default:
        return 0;
    }
    if (group == NULL || ((kv == 5 || kv == 7 || kv == 8) && member == NULL))
        return -1;
    bool tomb = value == NULL;
    struct cg_group *cg = replay_group(gc, group, !tomb);
    if (cg == NULL)
        return 0;
    struct kreader r;
    if (!tomb) {
        kr_init(&r, (uint8_t *)value, (size_t)value_len, arena);
        int16_t vv = kr_i16(&r);
        if (!kr_ok(&r))
            return -1;
        if (vv != 0) {
            LOG_WARN(CG_WHO, "skipping consumer group record (key v%d) of group %s: value v%d",
                     kv, group, vv);
            return 0;
        }
    }
    switch (kv) {
    case 3:
        if (tomb) {
            live_flag(gc, cg->g, &cg->has_metadata, false);
        } else {
            struct consumer_group_metadata_value v;
            if (consumer_group_metadata_value_decode(&r, 0, &v) != 0)
                return -1;
            cg->epoch = v.epoch;
            live_flag(gc, cg->g, &cg->has_metadata, true);
        }
        maybe_forget(gc, cg, NULL);
        return 0;
    case 5:
        return replay_member_metadata(gc, cg, member, &r, tomb);
    case 6:
        if (tomb) {
            live_flag(gc, cg->g, &cg->has_target_metadata, false);
        } else {
            struct consumer_group_target_assignment_metadata_value v;
            if (consumer_group_target_assignment_metadata_value_decode(&r, 0, &v) != 0)
                return -1;
            cg->assignment_epoch = v.assignment_epoch;
            live_flag(gc, cg->g, &cg->has_target_metadata, true);
        }
        maybe_forget(gc, cg, NULL);
        return 0;
    case 7:
        return replay_target_member(gc, cg, member, &r, tomb);
    default:
        return replay_current(gc, cg, member, &r, tomb);
    }
}

/* ---- snapshots and tombstones ---- */

int cg_snapshot_group(struct group *g, struct gc_record_list *l)
{
    struct cg_group *cg = g->cg;
    int e = KERR_NONE;
    if (cg->has_metadata)
        e = cg_rec_group_metadata(l, g->id, cg->epoch, false);
    if (e == KERR_NONE && cg->has_target_metadata)
        e = cg_rec_target_metadata(l, g->id, cg->assignment_epoch, false);
    for (struct cg_member *m = cg->members; m && e == KERR_NONE; m = m->next) {
        if (m->has_metadata)
            e = cg_rec_member_metadata(l, g->id, m, false);
        if (e == KERR_NONE && m->has_target)
            e = cg_rec_target_member(l, g->id, m->id, &m->target, false);
        if (e == KERR_NONE && m->has_current)
            e = cg_rec_current(l, g->id, m->id, m->epoch, m->previous_epoch, m->state,
                               &m->assigned, &m->pending_revocation, false);
    }
    return e;
}

int cg_records_add_tombstones(struct gc_record_list *l, struct group *g)
{
    struct cg_group *cg = g->cg;
    if (cg == NULL)
        return KERR_NONE;
    int e = KERR_NONE;
    for (struct cg_member *m = cg->members; m && e == KERR_NONE; m = m->next) {
        if (m->has_current)
            e = cg_rec_current(l, g->id, m->id, 0, 0, 0, NULL, NULL, true);
        if (e == KERR_NONE && m->has_target)
            e = cg_rec_target_member(l, g->id, m->id, NULL, true);
        if (e == KERR_NONE && m->has_metadata)
            e = cg_rec_member_metadata(l, g->id, m, true);
    }
    if (e == KERR_NONE && cg->has_target_metadata)
        e = cg_rec_target_metadata(l, g->id, 0, true);
    if (e == KERR_NONE && cg->has_metadata)
        e = cg_rec_group_metadata(l, g->id, 0, true);
    return e;
}
