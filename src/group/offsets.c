/* offsets: committed offsets of each group — the per-group table, OffsetCommit validation
 * (generations, simple commits), OffsetFetch, OffsetDelete and offsets.retention expiry. */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group_internal.h"
#include "group/group_internal.h"
#include "proto/messages.h"

#define GC_WHO "GroupCoordinator"
#define KERR_GROUP_SUBSCRIBED_TO_TOPIC 86

/* ---- the table ---- */

static size_t offset_hash(const char *topic, int32_t partition)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = topic; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    h = (h ^ (uint32_t)partition) * 1099511628211ULL;
    return (size_t)h;
}

struct offset_entry *offsets_find(struct offset_table *t, const char *topic, int32_t partition)
{
    if (t->nbuckets == 0)
        return NULL;
    for (struct offset_entry *e = t->buckets[offset_hash(topic, partition) % t->nbuckets]; e;
         e = e->next)
        if (e->partition == partition && strcmp(e->topic, topic) == 0)
            return e;
    return NULL;
}

static void offsets_grow(struct offset_table *t)
{
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 16;
    struct offset_entry **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct offset_entry *e = t->buckets[i];
        while (e) {
            struct offset_entry *next = e->next;
            size_t at = offset_hash(e->topic, e->partition) % nb;
            e->next = b[at];
            b[at] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

struct offset_entry *offsets_put(struct offset_table *t, const char *topic, int32_t partition)
{
    struct offset_entry *e = offsets_find(t, topic, partition);
    if (e != NULL)
        return e;
    if (t->count >= t->nbuckets)
        offsets_grow(t);
    if (t->nbuckets == 0)
        return NULL;
    e = calloc(1, sizeof(*e));
    GREGOR_ASSERT(e != NULL);
    e->topic = gc_strdup(topic);
    e->partition = partition;
    e->offset = -1;
    e->leader_epoch = -1;
    e->expire_ts = -1;
    size_t at = offset_hash(topic, partition) % t->nbuckets;
    e->next = t->buckets[at];
    t->buckets[at] = e;
    t->count++;
    return e;
}

static void entry_free(struct offset_entry *e)
{
    free(e->topic);
    free(e->metadata);
    free(e);
}

void offsets_remove(struct offset_table *t, const char *topic, int32_t partition)
{
    if (t->nbuckets == 0)
        return;
    struct offset_entry **pp = &t->buckets[offset_hash(topic, partition) % t->nbuckets];
    for (; *pp; pp = &(*pp)->next) {
        struct offset_entry *e = *pp;
        if (e->partition == partition && strcmp(e->topic, topic) == 0) {
            *pp = e->next;
            entry_free(e);
            t->count--;
            return;
        }
    }
}

void offsets_free(struct offset_table *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct offset_entry *e = t->buckets[i];
        while (e) {
            struct offset_entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

/* Commit metadata is bytes: md_len of them (NULs included) when md is set, else none. */
static int32_t md_len_of(const char *md, int32_t md_len)
{
    return md != NULL && md_len > 0 ? md_len : 0;
}

/* Sets an entry, keeping the coordinator's live-record count in step. metadata is len bytes. */
static void offset_set(struct group *g, const char *topic, int32_t partition, int64_t offset,
                       int32_t epoch, const char *metadata, int32_t len, int64_t commit_ts,
                       int64_t expire_ts)
{
    len = md_len_of(metadata, len);
    char *md = malloc((size_t)len + 1);
    if (md == NULL)
        return;
    if (len > 0)
        memcpy(md, metadata, (size_t)len);
    md[len] = '\0';
    size_t before = g->offsets.count;
    struct offset_entry *e = offsets_put(&g->offsets, topic, partition);
    if (e == NULL) {
        free(md);
        return;
    }
    g->gc->live[g->partition] += (int64_t)(g->offsets.count - before);
    e->offset = offset;
    e->leader_epoch = epoch;
    free(e->metadata);
    e->metadata = md;
    e->metadata_len = len;
    e->commit_ts = commit_ts;
    e->expire_ts = expire_ts;
}

static void offset_unset(struct group *g, const char *topic, int32_t partition)
{
    size_t before = g->offsets.count;
    offsets_remove(&g->offsets, topic, partition);
    g->gc->live[g->partition] -= (int64_t)(before - g->offsets.count);
}

/* Replay of an OffsetCommit record (records.c). */
void gc_replay_offset(struct group_coordinator *gc, const char *group, const char *topic,
                      int32_t partition, const struct offset_commit_value *v, bool tombstone)
{
    struct group *g = gc_group_find(gc, group);
    if (tombstone) {
        if (g == NULL)
            return;
        offset_unset(g, topic, partition);
        gc_group_drop_if_unused(gc, g);
        return;
    }
    if (g == NULL)
        g = gc_group_get_or_create(gc, group);
    offset_set(g, topic, partition, v->offset, v->leader_epoch, v->metadata.ptr, v->metadata.len,
               v->commit_timestamp, v->expire_timestamp);
}

/* ---- OffsetFetch ---- */

int16_t gc_offset_fetch_validate(struct group_coordinator *gc, const char *group_id,
                                 const char *member_id, int32_t member_epoch)
{
    struct group *g = group_id ? gc_group_find(gc, group_id) : NULL;
    if (g == NULL || g->cg == NULL || (member_id == NULL && member_epoch < 0))
        return KERR_NONE;
    return cg_validate_fetch(g, member_id, member_epoch);
}

/* ---- OffsetCommit ---- */

static int16_t validate_commit(struct group *g, const struct gc_commit_args *a, struct member **m)
{
    *m = NULL;
    if (g->state == GC_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (g->cg != NULL)
        return cg_validate_commit(g, a);
    if (a->generation < 0 && g->state == GC_EMPTY)
        return KERR_NONE;
    bool has_member = a->member_id && a->member_id[0] != '\0';
    if (a->generation >= 0 || has_member || a->instance_id) {
        int16_t e = gc_validate_member(g, a->member_id, a->instance_id, m);
        if (e != KERR_NONE)
            return e;
        if (a->generation != g->generation)
            return KERR_ILLEGAL_GENERATION;
    } else if (g->state != GC_EMPTY) {
        /* A simple commit (no member) into a group that manages its members. */
        return KERR_UNKNOWN_MEMBER_ID;
    }
    if (g->state == GC_COMPLETING_REBALANCE)
        return KERR_REBALANCE_IN_PROGRESS;
    return KERR_NONE;
}

/* Kafka's validateOffsetCommit for a transactional commit (GroupCoordinator.doTxnCommitOffsets):
 * a commit naming a member (a generation, a member id or an instance id: TxnOffsetCommit v3+)
 * must come from a current member of the group at its generation, unless it has generation -1
 * and the group is empty (an admin tool, a consumer without group management); one naming none
 * (v0-2, or v3+ with generation -1 and no member id) is taken whatever the group's state, as
 * older producers know no member. A group not known here is one Kafka creates empty. */
int16_t gc_txn_offset_commit_validate(struct group_coordinator *gc, const char *group_id,
                                      int32_t generation, const char *member_id,
                                      const char *instance_id)
{
    const char *mid = member_id != NULL ? member_id : "";
    bool names_member = generation >= 0 || mid[0] != '\0' || instance_id != NULL;
    struct group *g = group_id != NULL ? gc_group_find(gc, group_id) : NULL;
    if (g != NULL && g->state == GC_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (!names_member)
        return KERR_NONE;
    if (g != NULL && g->cg != NULL) {
        struct gc_commit_args a = {.group_id = group_id, .generation = generation,
                                   .member_id = mid, .instance_id = instance_id,
                                   .version = 9};
        int16_t e = cg_validate_commit(g, &a);
        /* TxnOffsetCommit knows no STALE_MEMBER_EPOCH: a stale epoch is an old generation. */
        return e == CG_ERR_STALE_MEMBER_EPOCH ? KERR_ILLEGAL_GENERATION : e;
    }
    if (generation < 0 && (g == NULL || g->state == GC_EMPTY))
        return KERR_NONE;
    if (g == NULL)
        return KERR_UNKNOWN_MEMBER_ID; /* created empty: no member is known */
    struct member *m;
    int16_t e = gc_validate_member(g, mid, instance_id, &m);
    if (e != KERR_NONE)
        return e;
    return generation != g->generation ? KERR_ILLEGAL_GENERATION : KERR_NONE;
}

static int16_t commit_append_error(int e)
{
    if (e == KERR_MESSAGE_TOO_LARGE || e == KERR_RECORD_LIST_TOO_LARGE ||
        e == KERR_INVALID_FETCH_SIZE)
        return KERR_INVALID_COMMIT_OFFSET_SIZE;
    return KERR_COORDINATOR_NOT_AVAILABLE;
}

void gc_offset_commit(struct group_coordinator *gc, const struct gc_commit_args *a,
                      struct gc_commit_partition *parts, int n)
{
    int16_t err = KERR_NONE;
    struct group *g = NULL;
    struct member *m = NULL;
    if (a->group_id == NULL) {
        err = KERR_INVALID_GROUP_ID;
    } else {
        g = gc_group_find(gc, a->group_id);
        if (g == NULL) {
            /* Kafka: only a commit that does not rely on group management creates a group. */
            if (a->generation < 0)
                g = gc_group_get_or_create(gc, a->group_id);
            else /* v9 says so; older versions keep ILLEGAL_GENERATION, as in Kafka */
                err = a->version >= 9 ? KERR_GROUP_ID_NOT_FOUND : KERR_ILLEGAL_GENERATION;
        } else {
            err = validate_commit(g, a, &m);
        }
    }
    if (err != KERR_NONE) {
        for (int i = 0; i < n; i++)
            if (parts[i].error == KERR_NONE)
                parts[i].error = err;
        return;
    }
    int64_t now = gc_now(gc);
    int64_t expire = a->retention_ms >= 0 ? now + a->retention_ms : -1;
    struct gc_record_list l = {0};
    int e = KERR_NONE;
    for (int i = 0; i < n && e == KERR_NONE; i++) {
        struct gc_commit_partition *p = &parts[i];
        if (p->error != KERR_NONE)
            continue;
        const char *md = p->metadata ? p->metadata : "";
        int32_t md_len = md_len_of(p->metadata, p->metadata_len);
        if (md_len > gc->cfg.offset_metadata_max_bytes) {
            p->error = KERR_OFFSET_METADATA_TOO_LARGE;
            continue;
        }
        struct offset_entry tmp = {
            .topic = (char *)p->topic, .partition = p->partition, .offset = p->offset,
            .leader_epoch = p->leader_epoch, .metadata = (char *)md, .metadata_len = md_len,
            .commit_ts = now,
            .expire_ts = expire,
        };
        e = records_add_offset(&l, g->id, &tmp);
    }
    if (e == KERR_NONE)
        e = records_append(gc, g->partition, &l);
    records_list_free(&l);
    for (int i = 0; i < n; i++) {
        struct gc_commit_partition *p = &parts[i];
        if (p->error != KERR_NONE)
            continue;
        if (e != KERR_NONE) {
            p->error = commit_append_error(e);
            continue;
        }
        offset_set(g, p->topic, p->partition, p->offset, p->leader_epoch, p->metadata,
                   p->metadata_len, now, expire);
    }
    if (e != KERR_NONE)
        LOG_LIMITED(LOG_LEVEL_WARN, GC_WHO,
                    "cannot persist offsets of group %s: %s", g->id, kerr_name(e));
    if (m != NULL && (g->state == GC_STABLE || g->state == GC_PREPARING_REBALANCE))
        gc_heartbeat_reset(gc, m);
    gc_group_drop_if_unused(gc, g);
}

/* ---- OffsetFetch ---- */

bool gc_offset_get(struct group_coordinator *gc, const char *group_id, const char *topic,
                   int32_t partition, struct gc_offset *out)
{
    memset(out, 0, sizeof(*out));
    out->topic = topic;
    out->partition = partition;
    out->offset = -1;
    out->leader_epoch = -1;
    out->metadata = "";
    struct group *g = gc_group_find(gc, group_id);
    if (g == NULL || topic == NULL)
        return false;
    struct offset_entry *e = offsets_find(&g->offsets, topic, partition);
    if (e == NULL)
        return false;
    out->offset = e->offset;
    out->leader_epoch = e->leader_epoch;
    out->metadata = e->metadata ? e->metadata : "";
    out->metadata_len = e->metadata ? e->metadata_len : 0;
    return true;
}

static int offset_cmp(const void *a, const void *b)
{
    const struct gc_offset *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c != 0)
        return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

int gc_offset_list(struct group_coordinator *gc, const char *group_id, struct gc_offset **out)
{
    *out = NULL;
    struct group *g = gc_group_find(gc, group_id);
    if (g == NULL || g->offsets.count == 0)
        return 0;
    struct gc_offset *v = calloc(g->offsets.count, sizeof(*v));
    if (v == NULL)
        return 0;
    int n = 0;
    for (size_t i = 0; i < g->offsets.nbuckets; i++)
        for (struct offset_entry *e = g->offsets.buckets[i]; e; e = e->next) {
            v[n].topic = e->topic;
            v[n].partition = e->partition;
            v[n].offset = e->offset;
            v[n].leader_epoch = e->leader_epoch;
            v[n].metadata = e->metadata ? e->metadata : "";
            v[n].metadata_len = e->metadata ? e->metadata_len : 0;
            n++;
        }
    qsort(v, (size_t)n, sizeof(*v), offset_cmp);
    *out = v;
    return n;
}

/* ---- OffsetDelete ---- */

/* Does any member's ConsumerProtocolSubscription name topic? Undecodable = subscribed (as Kafka,
 * which then treats the subscription as unknown). */
static bool group_subscribed_to(struct group *g, const char *topic)
{
    for (struct member *m = g->members; m; m = m->next) {
        const struct member_protocol *p = NULL;
        for (int i = 0; i < m->n_protocols && !p; i++)
            if (g->protocol == NULL || strcmp(m->protocols[i].name, g->protocol) == 0)
                p = &m->protocols[i];
        if (p == NULL || p->metadata_len < 2)
            return true;
        struct arena arena;
        arena_init(&arena, 16u << 20);
        struct kreader r;
        kr_init(&r, p->metadata, (size_t)p->metadata_len, &arena);
        int16_t v = kr_i16(&r);
        if (v > 3)
            v = 3; /* newer versions only add fields at the end */
        struct consumer_protocol_subscription sub;
        bool found = false, ok = v >= 0 && consumer_protocol_subscription_decode(&r, v, &sub) == 0;
        for (int32_t i = 0; ok && i < sub.n_topics && !found; i++)
            found = sub.topics[i].ptr && strcmp(sub.topics[i].ptr, topic) == 0;
        arena_reset(&arena);
        if (!ok || found)
            return true;
    }
    return false;
}

int16_t gc_offset_delete(struct group_coordinator *gc, const char *group_id,
                         struct gc_commit_partition *parts, int n)
{
    if (group_id == NULL)
        return KERR_INVALID_GROUP_ID;
    struct group *g = gc_group_find(gc, group_id);
    if (g == NULL || g->state == GC_DEAD)
        return KERR_GROUP_ID_NOT_FOUND;
    for (int i = 0; g->cg != NULL && i < n; i++)
        if (parts[i].error == KERR_NONE && cg_subscribed_to(g, parts[i].topic))
            parts[i].error = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
    if (g->n_members > 0) {
        if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0)
            return KERR_NON_EMPTY_GROUP;
        for (int i = 0; i < n; i++)
            if (parts[i].error == KERR_NONE && group_subscribed_to(g, parts[i].topic))
                parts[i].error = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
    }
    struct gc_record_list l = {0};
    int e = KERR_NONE;
    for (int i = 0; i < n && e == KERR_NONE; i++)
        if (parts[i].error == KERR_NONE &&
            offsets_find(&g->offsets, parts[i].topic, parts[i].partition) != NULL)
            e = records_add_offset_tombstone(&l, g->id, parts[i].topic, parts[i].partition);
    if (e == KERR_NONE)
        e = records_append(gc, g->partition, &l);
    records_list_free(&l);
    if (e != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_WARN, GC_WHO,
                    "cannot delete offsets of group %s: %s", g->id, kerr_name(e));
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    for (int i = 0; i < n; i++)
        if (parts[i].error == KERR_NONE)
            offset_unset(g, parts[i].topic, parts[i].partition);
    gc_group_drop_if_unused(gc, g);
    return KERR_NONE;
}

/* ---- retention ---- */

/* Kafka's rule: explicit expiry times win; otherwise offsets of an Empty group expire
 * offsets.retention after the group became empty (consumer groups) or after the commit
 * (groups that only commit). Groups with members keep their offsets. */
static bool offset_expired(const struct group *g, const struct offset_entry *e, int64_t now,
                           int64_t retention)
{
    if (e->expire_ts >= 0)
        return now >= e->expire_ts;
    if (g->state != GC_EMPTY)
        return false;
    int64_t base = (g->protocol_type && g->state_ts >= 0) ? g->state_ts : e->commit_ts;
    return now >= base + retention;
}

static void expire_group(struct group_coordinator *gc, struct group *g, int64_t now)
{
    struct gc_record_list l = {0};
    int e = KERR_NONE;
    size_t nexpired = 0;
    for (size_t i = 0; i < g->offsets.nbuckets && e == KERR_NONE; i++)
        for (struct offset_entry *x = g->offsets.buckets[i]; x && e == KERR_NONE; x = x->next)
            if (offset_expired(g, x, now, gc->cfg.offsets_retention_ms)) {
                e = records_add_offset_tombstone(&l, g->id, x->topic, x->partition);
                nexpired++;
            }
    bool dead = g->state == GC_EMPTY && g->n_pending == 0 && g->offsets.count == nexpired;
    if (e == KERR_NONE && dead && g->meta.p != NULL)
        e = records_add_group_tombstone(&l, g->id);
    if (e == KERR_NONE && dead)
        e = cg_records_add_tombstones(&l, g);
    if (e == KERR_NONE)
        e = records_append(gc, g->partition, &l);
    records_list_free(&l);
    if (e != KERR_NONE) {
        LOG_WARN(GC_WHO, "cannot expire offsets of group %s: %s (retrying later)", g->id,
                 kerr_name(e));
        return;
    }
    for (size_t i = 0; i < g->offsets.nbuckets; i++) {
        struct offset_entry *x = g->offsets.buckets[i];
        while (x) {
            struct offset_entry *next = x->next;
            if (offset_expired(g, x, now, gc->cfg.offsets_retention_ms))
                offset_unset(g, x->topic, x->partition);
            x = next;
        }
    }
    if (nexpired > 0)
        LOG_INFO(GC_WHO, "Removed %zu expired offsets of group %s", nexpired, g->id);
    if (dead) {
        LOG_INFO(GC_WHO, "Group %s transitioned to Dead (empty, no offsets)", g->id);
        gc_group_remove(gc, g);
    }
}

void gc_expire(struct group_coordinator *gc)
{
    int64_t now = gc_now(gc);
    /* Collect first: expiring removes groups from the table we would be walking. */
    size_t n = 0, cap = gc->ngroups;
    struct group **list = calloc(cap + 1, sizeof(*list));
    if (list == NULL)
        return;
    for (size_t i = 0; i < gc->nbuckets; i++)
        for (struct group *g = gc->buckets[i]; g && n < cap; g = g->next)
            if (g->state == GC_EMPTY)
                list[n++] = g;
    for (size_t i = 0; i < n; i++)
        expire_group(gc, list[i], now);
    free(list);
}
