/* records: __consumer_offsets records in Kafka's schemas (FORMATS.md §12) — OffsetCommit key v1 /
 * value v3 (v1 with an explicit expiry), GroupMetadata key v2 / value v3 — the Java string hash
 * that maps a group to its partition, replay of records read back, and snapshots for compaction. */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/java_hash.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group_internal.h"
#include "group/group_internal.h"
#include "proto/messages.h"

#define GC_WHO "GroupMetadataManager"
#define RECORD_MAX_BYTES (64u << 20)
#define SNAPSHOT_CHUNK_BYTES (256u << 10)
#define SNAPSHOT_CHUNK_RECORDS 1000

static uint8_t empty_bytes[1];

/* ---- the Java hash ---- */

int32_t gc_java_string_hash(const char *s, size_t len)
{
    return java_string_hash(s, len);
}

int32_t gc_partition_for(const char *group_id, int32_t num_partitions)
{
    return java_partition_for(group_id, strlen(group_id), num_partitions);
}

/* ---- encoders ---- */

struct kstr gc_kstr(const char *s)
{
    struct kstr k = {(char *)s, s ? (int32_t)strlen(s) : -1};
    return k;
}

int gc_take(struct kwriter *w, struct gc_buf *out)
{
    return kw_take(w, &out->p, &out->len) == 0 ? KERR_NONE : KERR_INVALID_RECORD;
}

int gc_encode_offset_key(struct gc_buf *out, const char *group, const char *topic, int32_t partition)
{
    struct kwriter w;
    kw_init(&w, RECORD_MAX_BYTES);
    struct offset_commit_key k = {gc_kstr(group), gc_kstr(topic), partition};
    kw_i16(&w, 1);
    offset_commit_key_encode(&w, 1, &k);
    return gc_take(&w, out);
}

int gc_encode_offset_value(struct gc_buf *out, int64_t offset, int32_t leader_epoch,
                           const char *metadata, int32_t metadata_len, int64_t commit_ts,
                           int64_t expire_ts)
{
    struct kwriter w;
    kw_init(&w, RECORD_MAX_BYTES);
    struct offset_commit_value v = {
        .offset = offset,
        .leader_epoch = leader_epoch,
        /* bytes, NULs included: a C string would cut them at the first one */
        .metadata = {(char *)(metadata ? metadata : ""),
                     metadata && metadata_len > 0 ? metadata_len : 0},
        .commit_timestamp = commit_ts,
        .expire_timestamp = expire_ts,
    };
    int16_t version = expire_ts >= 0 ? 1 : 3;
    kw_i16(&w, version);
    offset_commit_value_encode(&w, version, &v);
    return gc_take(&w, out);
}

int gc_encode_group_key(struct gc_buf *out, const char *group)
{
    struct kwriter w;
    kw_init(&w, RECORD_MAX_BYTES);
    struct group_metadata_key k = {gc_kstr(group)};
    kw_i16(&w, 2);
    group_metadata_key_encode(&w, 2, &k);
    return gc_take(&w, out);
}

static int encode_group_value(struct gc_buf *out, const struct group *g)
{
    struct group_metadata_value v = {
        .protocol_type = gc_kstr(g->protocol_type ? g->protocol_type : ""),
        .generation = g->generation,
        .protocol = gc_kstr(g->protocol),
        .leader = gc_kstr(g->leader),
        .current_state_timestamp = g->state_ts,
    };
    struct group_metadata_value_member_metadata *mm = NULL;
    if (g->n_members > 0) {
        mm = calloc((size_t)g->n_members, sizeof(*mm));
        if (mm == NULL)
            return KERR_UNKNOWN_SERVER_ERROR;
    }
    int n = 0;
    for (const struct member *m = g->members; m; m = m->next) {
        const struct member_protocol *p = NULL;
        for (int i = 0; i < m->n_protocols && !p; i++)
            if (g->protocol && strcmp(m->protocols[i].name, g->protocol) == 0)
                p = &m->protocols[i];
        struct group_metadata_value_member_metadata *x = &mm[n++];
        x->member_id = gc_kstr(m->id);
        x->group_instance_id = gc_kstr(m->instance_id);
        x->client_id = gc_kstr(m->client_id ? m->client_id : "");
        x->client_host = gc_kstr(m->client_host ? m->client_host : "");
        x->rebalance_timeout = m->rebalance_timeout_ms;
        x->session_timeout = m->session_timeout_ms;
        x->subscription.ptr = p && p->metadata ? p->metadata : empty_bytes;
        x->subscription.len = p && p->metadata ? p->metadata_len : 0;
        x->assignment.ptr = m->assignment ? m->assignment : empty_bytes;
        x->assignment.len = m->assignment ? m->assignment_len : 0;
    }
    v.members = mm;
    v.n_members = n;
    struct kwriter w;
    kw_init(&w, RECORD_MAX_BYTES);
    kw_i16(&w, 3);
    group_metadata_value_encode(&w, 3, &v);
    free(mm);
    return gc_take(&w, out);
}

/* ---- record lists ---- */

static int list_push_buf(struct gc_record_list *l, struct gc_buf b)
{
    if (l->nbufs == l->capbufs) {
        int cap = l->capbufs ? l->capbufs * 2 : 16;
        struct gc_buf *nb = realloc(l->bufs, (size_t)cap * sizeof(*nb));
        if (nb == NULL)
            return -1;
        l->bufs = nb;
        l->capbufs = cap;
    }
    l->bufs[l->nbufs++] = b;
    return 0;
}

/* Adds a record owning key and value (value.p NULL = tombstone); frees them on failure. */
static int list_add(struct gc_record_list *l, struct gc_buf key, struct gc_buf value)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        struct gc_record *nr = realloc(l->recs, (size_t)cap * sizeof(*nr));
        if (nr == NULL) {
            free(key.p);
            free(value.p);
            return KERR_UNKNOWN_SERVER_ERROR;
        }
        l->recs = nr;
        l->cap = cap;
    }
    if (list_push_buf(l, key) != 0) {
        free(key.p);
        free(value.p);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    if (value.p && list_push_buf(l, value) != 0) {
        free(value.p);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    l->recs[l->n++] = (struct gc_record){
        key.p, (int32_t)key.len, value.p, value.p ? (int32_t)value.len : -1};
    return KERR_NONE;
}

int records_add(struct gc_record_list *l, struct gc_buf key, struct gc_buf value)
{
    return list_add(l, key, value);
}

int records_add_offset(struct gc_record_list *l, const char *group, const struct offset_entry *e)
{
    struct gc_buf k = {0}, v = {0};
    int rc = gc_encode_offset_key(&k, group, e->topic, e->partition);
    if (rc == KERR_NONE)
        rc = gc_encode_offset_value(&v, e->offset, e->leader_epoch, e->metadata, e->metadata_len,
                                    e->commit_ts, e->expire_ts);
    if (rc != KERR_NONE) {
        free(k.p);
        return rc;
    }
    return list_add(l, k, v);
}

int records_add_offset_tombstone(struct gc_record_list *l, const char *group, const char *topic,
                                 int32_t partition)
{
    struct gc_buf k = {0}, v = {0};
    int rc = gc_encode_offset_key(&k, group, topic, partition);
    return rc == KERR_NONE ? list_add(l, k, v) : rc;
}

int records_add_group(struct gc_record_list *l, const struct group *g)
{
    struct gc_buf k = {0}, v = {0};
    int rc = gc_encode_group_key(&k, g->id);
    if (rc == KERR_NONE)
        rc = encode_group_value(&v, g);
    if (rc != KERR_NONE) {
        free(k.p);
        return rc;
    }
    return list_add(l, k, v);
}

int records_add_group_tombstone(struct gc_record_list *l, const char *group)
{
    struct gc_buf k = {0}, v = {0};
    int rc = gc_encode_group_key(&k, group);
    return rc == KERR_NONE ? list_add(l, k, v) : rc;
}

void records_list_free(struct gc_record_list *l)
{
    for (int i = 0; i < l->nbufs; i++)
        free(l->bufs[i].p);
    free(l->bufs);
    free(l->recs);
    memset(l, 0, sizeof(*l));
}

int records_append(struct group_coordinator *gc, int32_t partition, struct gc_record_list *l)
{
    if (l->n == 0)
        return KERR_NONE;
    return gc->env.append(gc->env.ctx, partition, l->recs, l->n);
}

static void meta_set(struct group_coordinator *gc, struct group *g, const uint8_t *p, size_t len)
{
    uint8_t *copy = NULL;
    if (p != NULL) {
        copy = malloc(len ? len : 1);
        GREGOR_ASSERT(copy != NULL);
        memcpy(copy, p, len);
    }
    if (g->meta.p == NULL && copy != NULL)
        gc->live[g->partition]++;
    else if (g->meta.p != NULL && copy == NULL)
        gc->live[g->partition]--;
    free(g->meta.p);
    g->meta.p = copy;
    g->meta.len = copy ? len : 0;
}

int gc_store_group(struct group_coordinator *gc, struct group *g)
{
    struct gc_record_list l = {0};
    int e = records_add_group(&l, g);
    if (e == KERR_NONE)
        e = records_append(gc, g->partition, &l);
    if (e == KERR_NONE)
        meta_set(gc, g, l.recs[0].value, (size_t)l.recs[0].value_len);
    records_list_free(&l);
    return e;
}

/* ---- replay ---- */

static int replay_group(struct group_coordinator *gc, const char *group, const uint8_t *value,
                        int32_t value_len, struct arena *arena)
{
    struct group *g = gc_group_find(gc, group);
    if (value == NULL) {
        if (g == NULL)
            return 0;
        meta_set(gc, g, NULL, 0);
        gc_replay_group(gc, g, NULL, 0, NULL, NULL, -1, 0, NULL, NULL, NULL);
        gc_group_drop_if_unused(gc, g);
        return 0;
    }
    struct kreader r;
    kr_init(&r, (uint8_t *)value, (size_t)value_len, arena);
    int16_t vv = kr_i16(&r);
    if (!kr_ok(&r))
        return -1;
    if (vv < 0 || vv > 4) {
        LOG_WARN(GC_WHO, "skipping GroupMetadataValue v%d of group %s (unknown version)", vv, group);
        return 0;
    }
    struct group_metadata_value v;
    if (group_metadata_value_decode(&r, vv, &v) != 0)
        return -1;
    int n = v.n_members > 0 ? v.n_members : 0;
    struct gc_member_desc *md = calloc((size_t)n + 1, sizeof(*md));
    int32_t *sess = calloc((size_t)n + 1, sizeof(*sess));
    int32_t *reb = calloc((size_t)n + 1, sizeof(*reb));
    GREGOR_ASSERT(md && sess && reb);
    for (int i = 0; i < n; i++) {
        const struct group_metadata_value_member_metadata *x = &v.members[i];
        md[i].member_id = x->member_id.ptr ? x->member_id.ptr : "";
        md[i].instance_id = x->group_instance_id.ptr;
        md[i].client_id = x->client_id.ptr ? x->client_id.ptr : "";
        md[i].client_host = x->client_host.ptr ? x->client_host.ptr : "";
        md[i].metadata = x->subscription.ptr;
        md[i].metadata_len = x->subscription.len > 0 ? x->subscription.len : 0;
        md[i].assignment = x->assignment.ptr;
        md[i].assignment_len = x->assignment.len > 0 ? x->assignment.len : 0;
        sess[i] = x->session_timeout;
        reb[i] = vv >= 1 ? x->rebalance_timeout : -1;
    }
    if (g == NULL)
        g = gc_group_get_or_create(gc, group);
    meta_set(gc, g, value, (size_t)value_len);
    gc_replay_group(gc, g, v.protocol_type.ptr, v.generation, v.protocol.ptr, v.leader.ptr,
                    vv >= 2 ? v.current_state_timestamp : -1, n, md, sess, reb);
    free(md);
    free(sess);
    free(reb);
    return 0;
}

static int replay_offset(struct group_coordinator *gc, const struct offset_commit_key *k,
                         const uint8_t *value, int32_t value_len, struct arena *arena)
{
    if (value == NULL) {
        gc_replay_offset(gc, k->group.ptr, k->topic.ptr, k->partition, NULL, true);
        return 0;
    }
    struct kreader r;
    kr_init(&r, (uint8_t *)value, (size_t)value_len, arena);
    int16_t vv = kr_i16(&r);
    if (!kr_ok(&r))
        return -1;
    if (vv < 0 || vv > 4) {
        LOG_WARN(GC_WHO, "skipping OffsetCommitValue v%d of group %s (unknown version)", vv,
                 k->group.ptr);
        return 0;
    }
    struct offset_commit_value v;
    if (offset_commit_value_decode(&r, vv, &v) != 0)
        return -1;
    if (vv != 1)
        v.expire_timestamp = -1;
    if (vv < 3)
        v.leader_epoch = -1;
    gc_replay_offset(gc, k->group.ptr, k->topic.ptr, k->partition, &v, false);
    return 0;
}

int gc_replay_record(struct group_coordinator *gc, const uint8_t *key, int32_t key_len,
                     const uint8_t *value, int32_t value_len)
{
    if (key == NULL || key_len < 2)
        return -1;
    if (value_len < 0)
        value = NULL;
    struct arena arena;
    arena_init(&arena, (size_t)key_len * 4 + (value ? (size_t)value_len * 4 : 0) + 65536);
    struct kreader r;
    kr_init(&r, (uint8_t *)key, (size_t)key_len, &arena);
    int16_t kv = kr_i16(&r);
    int rc = 0;
    if (kv == 0 || kv == 1) {
        struct offset_commit_key k;
        if (offset_commit_key_decode(&r, kv, &k) != 0 || k.group.ptr == NULL || k.topic.ptr == NULL)
            rc = -1;
        else
            rc = replay_offset(gc, &k, value, value_len, &arena);
    } else if (kv == 2) {
        struct group_metadata_key k;
        if (group_metadata_key_decode(&r, kv, &k) != 0 || k.group.ptr == NULL)
            rc = -1;
        else
            rc = replay_group(gc, k.group.ptr, value, value_len, &arena);
    } else if (kv >= 3 && kv <= 8) {
        rc = cg_replay_record(gc, kv, &r, value, value_len, &arena);
    }
    /* Other key versions (9+: share groups) are not ours to load. */
    arena_reset(&arena);
    return rc;
}

/* ---- snapshots ---- */

int64_t gc_live_records(const struct group_coordinator *gc, int32_t partition)
{
    if (partition < 0 || partition >= gc->cfg.num_partitions)
        return 0;
    return gc->live[partition];
}

static size_t list_bytes(const struct gc_record_list *l)
{
    size_t n = 0;
    for (int i = 0; i < l->n; i++)
        n += (size_t)l->recs[i].key_len + (l->recs[i].value_len > 0 ? (size_t)l->recs[i].value_len : 0);
    return n;
}

static int snapshot_flush(struct gc_record_list *l, gc_emit_fn emit, void *arg)
{
    int e = l->n > 0 ? emit(arg, l->recs, l->n) : KERR_NONE;
    records_list_free(l);
    return e;
}

int gc_snapshot(struct group_coordinator *gc, int32_t partition, gc_emit_fn emit, void *arg)
{
    struct gc_record_list l = {0};
    int e = KERR_NONE;
    for (size_t i = 0; i < gc->nbuckets && e == KERR_NONE; i++) {
        for (struct group *g = gc->buckets[i]; g && e == KERR_NONE; g = g->next) {
            if (g->partition != partition)
                continue;
            if (g->cg != NULL)
                e = cg_snapshot_group(g, &l);
            if (e == KERR_NONE && g->meta.p != NULL) {
                struct gc_buf k = {0}, v = {0};
                e = gc_encode_group_key(&k, g->id);
                if (e == KERR_NONE) {
                    v.p = malloc(g->meta.len ? g->meta.len : 1);
                    GREGOR_ASSERT(v.p != NULL);
                    memcpy(v.p, g->meta.p, g->meta.len);
                    v.len = g->meta.len;
                    e = list_add(&l, k, v);
                }
            }
            for (size_t b = 0; b < g->offsets.nbuckets && e == KERR_NONE; b++)
                for (struct offset_entry *x = g->offsets.buckets[b]; x && e == KERR_NONE;
                     x = x->next) {
                    e = records_add_offset(&l, g->id, x);
                    if (e == KERR_NONE &&
                        (l.n >= SNAPSHOT_CHUNK_RECORDS || list_bytes(&l) >= SNAPSHOT_CHUNK_BYTES))
                        e = snapshot_flush(&l, emit, arg);
                }
            if (e == KERR_NONE &&
                (l.n >= SNAPSHOT_CHUNK_RECORDS || list_bytes(&l) >= SNAPSHOT_CHUNK_BYTES))
                e = snapshot_flush(&l, emit, arg);
        }
    }
    if (e == KERR_NONE)
        e = snapshot_flush(&l, emit, arg);
    records_list_free(&l);
    return e;
}
