/* group_store: the group coordinator's host environment in the broker (its gc_env) —
 * __consumer_offsets creation and replay at startup, appending coordinator records as record
 * batches, the loop's timers, and keeping the topic bounded by rewriting a partition's live state
 * (docs/GROUPS.md). src/group/ itself knows neither the broker nor the log: everything it needs
 * from them comes through the gc_env built here. */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group.h"
#include "group/coordinator.h"
#include "log/batch.h"
#include "log/fileio.h"

#define STORE_WHO "GroupMetadataManager"
#define OFFSETS_TOPIC "__consumer_offsets"
/* Replay reads the log in chunks of this many bytes (at least one whole batch each). */
#define REPLAY_CHUNK_BYTES (4 << 20)
#define REPLAY_MAX_DECOMPRESSED (64u << 20)
/* A partition is rewritten when its log holds more than this many records and more than
 * COMPACT_FACTOR times its live records. */
#define COMPACT_MIN_RECORDS 10000
#define COMPACT_FACTOR 4
/* __consumer_offsets segments: small enough that dropped prefixes free disk soon. */
#define OFFSETS_SEGMENT_BYTES "10485760"

struct group_store {
    struct broker *b;
    struct group_coordinator *gc;
    bool *compact_due;          /* per partition */
    uint64_t compact_timer;
    bool replaying;
};

static int64_t store_wall_ms(void *ctx)
{
    (void)ctx;
    return now_ms();
}

static int64_t store_mono_ms(void *ctx)
{
    (void)ctx;
    return mono_ms();
}

static void store_timer_fire(struct broker *b, void *arg)
{
    if (b->groups != NULL)
        gc_timer_fire(b->groups, arg);
}

static uint64_t store_timer_add(void *ctx, int64_t when, struct gc_timer *t)
{
    struct group_store *s = ctx;
    return broker_timer_add(s->b, when, store_timer_fire, t);
}

static void store_timer_cancel(void *ctx, uint64_t id)
{
    struct group_store *s = ctx;
    broker_timer_cancel(s->b, id);
}

static struct partition *offsets_partition(struct group_store *s, int32_t index)
{
    return partition_get(s->b, OFFSETS_TOPIC, index);
}

/* ---- appends ---- */

static int append_batch(struct partition *p, struct batch_builder *bb)
{
    uint8_t *buf;
    size_t len;
    int e = batch_builder_finish(bb, BATCH_COMPRESSION_NONE, &buf, &len);
    if (e != KERR_NONE)
        return e;
    struct log_append_info info;
    bool dup;
    e = partition_append_as_leader(p, buf, len, now_ms(), &info, &dup);
    free(buf);
    return e;
}

/* Appends records as one or more batches no larger than the topic's max.message.bytes. */
static int append_records(struct group_store *s, struct partition *p, const struct gc_record *recs,
                          int n)
{
    size_t max = (size_t)p->topic->cfg.max_message_bytes;
    if (max < 4096)
        max = 4096;
    struct batch_builder bb;
    batch_builder_init(&bb, max);
    int64_t now = now_ms();
    int e = KERR_NONE;
    for (int i = 0; i < n && e == KERR_NONE; i++) {
        size_t need = (size_t)recs[i].key_len + (recs[i].value_len > 0 ? (size_t)recs[i].value_len : 0) + 40;
        if (bb.count > 0 && bb.len + need > max)
            e = append_batch(p, &bb);
        if (e == KERR_NONE)
            e = batch_builder_add(&bb, now, recs[i].key, recs[i].key_len, recs[i].value,
                                  recs[i].value_len, NULL, 0);
    }
    if (e == KERR_NONE && bb.count > 0)
        e = append_batch(p, &bb);
    batch_builder_free(&bb);
    broker_mark_dirty(s->b, p);
    return e;
}

static void compact_fire(struct broker *b, void *arg);

static void maybe_schedule_compaction(struct group_store *s, struct partition *p)
{
    int64_t in_log = partition_log_end(p) - partition_log_start(p);
    int64_t live = gc_live_records(s->gc, p->index);
    if (in_log <= COMPACT_MIN_RECORDS || in_log <= COMPACT_FACTOR * live)
        return;
    s->compact_due[p->index] = true;
    /* Later, not now: the coordinator is in the middle of a change it has not applied yet. */
    if (s->compact_timer == 0 && !s->replaying)
        s->compact_timer = broker_timer_add(s->b, mono_ms(), compact_fire, s);
}

static struct topic *ensure_topic(struct broker *b);

static int store_append(void *ctx, int32_t partition, const struct gc_record *recs, int n)
{
    struct group_store *s = ctx;
    struct partition *p = offsets_partition(s, partition);
    if (p == NULL) {
        /* Created on first use, as Kafka does: a broker nobody used for groups lists no
         * __consumer_offsets topic. */
        if (ensure_topic(s->b) == NULL)
            return KERR_COORDINATOR_NOT_AVAILABLE;
        p = offsets_partition(s, partition);
        if (p == NULL)
            return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    int e = append_records(s, p, recs, n);
    if (e == KERR_NONE && s->gc != NULL)
        maybe_schedule_compaction(s, p);
    return e;
}

struct snapshot_ctx {
    struct group_store *s;
    struct partition *p;
    int64_t first_offset;
    int64_t records;
};

static int snapshot_emit(void *arg, const struct gc_record *recs, int n)
{
    struct snapshot_ctx *c = arg;
    if (c->first_offset < 0)
        c->first_offset = partition_log_end(c->p);
    c->records += n;
    return append_records(c->s, c->p, recs, n);
}

/* Rewrites the live state of one partition at its end, then moves the log start past the old
 * records so retention drops their segments. A crash in between leaves old records before a
 * complete or partial copy: replay still ends in the same state. */
static void compact_partition(struct group_store *s, struct partition *p)
{
    int64_t before_start = partition_log_start(p);
    int64_t before_end = partition_log_end(p);
    struct snapshot_ctx c = {s, p, -1, 0};
    int e = gc_snapshot(s->gc, p->index, snapshot_emit, &c);
    if (e != KERR_NONE) {
        LOG_WARN(STORE_WHO, "cannot rewrite partition %s-%d: %s", OFFSETS_TOPIC, p->index,
                 kerr_name(e));
        return;
    }
    int64_t new_start = c.first_offset >= 0 ? c.first_offset : partition_log_end(p);
    int64_t got;
    e = partition_delete_records(p, new_start, &got);
    if (e != KERR_NONE) {
        LOG_WARN(STORE_WHO, "cannot move the log start of %s-%d to %lld: %s", OFFSETS_TOPIC,
                 p->index, (long long)new_start, kerr_name(e));
        return;
    }
    broker_mark_dirty(s->b, p);
    LOG_INFO(STORE_WHO, "Rewrote %s-%d: %lld live records copied, log start %lld -> %lld "
             "(log end was %lld)", OFFSETS_TOPIC, p->index, (long long)c.records,
             (long long)before_start, (long long)got, (long long)before_end);
}

static void compact_fire(struct broker *b, void *arg)
{
    (void)b;
    struct group_store *s = arg;
    s->compact_timer = 0;
    for (int32_t i = 0; i < b->cfg.offsets_topic_num_partitions; i++) {
        if (!s->compact_due[i])
            continue;
        s->compact_due[i] = false;
        struct partition *p = offsets_partition(s, i);
        if (p != NULL)
            compact_partition(s, p);
    }
}

/* ---- replay ---- */

static int replay_batches(struct group_coordinator *gc, const uint8_t *buf, size_t len,
                          int64_t from, int64_t *next, const char *who)
{
    size_t pos = 0;
    while (pos + BATCH_HEADER_SIZE <= len) {
        struct batch_header h;
        batch_header_decode(buf + pos, &h);
        int64_t total = batch_total_size(&h);
        if (h.length < BATCH_MIN_LENGTH || pos + (size_t)total > len)
            break;
        const uint8_t *batch = buf + pos;
        pos += (size_t)total;
        if (batch_last_offset(&h) < from)
            continue;
        *next = batch_last_offset(&h) + 1;
        if (h.magic != BATCH_MAGIC_V2 || (h.attributes & BATCH_ATTR_CONTROL))
            continue;
        struct batch_record_iter it;
        int e = batch_records_open(&it, batch, (size_t)total, REPLAY_MAX_DECOMPRESSED);
        if (e != KERR_NONE) {
            LOG_WARN(STORE_WHO, "%s: skipping batch at offset %lld: %s", who,
                     (long long)h.base_offset, kerr_name(e));
            continue;
        }
        struct batch_record rec;
        while ((e = batch_records_next(&it, &rec)) == 1) {
            if (rec.offset < from || rec.key == NULL)
                continue;
            if (gc_replay_record(gc, rec.key, rec.key_len, rec.value, rec.value_len) != 0)
                LOG_WARN(STORE_WHO, "%s: skipping undecodable record at offset %lld", who,
                         (long long)rec.offset);
        }
        if (e < 0)
            LOG_WARN(STORE_WHO, "%s: corrupt records in batch at offset %lld", who,
                     (long long)h.base_offset);
        batch_records_close(&it);
    }
    return 0;
}

static int replay_partition(struct group_coordinator *gc, struct partition *p)
{
    char who[300];
    snprintf(who, sizeof(who), "%s-%d", OFFSETS_TOPIC, p->index);
    int64_t off = partition_log_start(p);
    int64_t end = partition_log_end(p);
    uint8_t *buf = NULL;
    size_t cap = 0;
    while (off < end) {
        struct log_slice sl;
        int e = partition_read_log(p, off, REPLAY_CHUNK_BYTES, &sl);
        if (e != KERR_NONE) {
            LOG_ERROR(STORE_WHO, "%s: cannot read at offset %lld: %s", who, (long long)off,
                      kerr_name(e));
            free(buf);
            return -1;
        }
        if (sl.len == 0) {
            fio_close(sl.fd);
            break;
        }
        if (sl.len > cap) {
            uint8_t *nb = realloc(buf, sl.len);
            if (nb == NULL) {
                fio_close(sl.fd);
                free(buf);
                return -1;
            }
            buf = nb;
            cap = sl.len;
        }
        ssize_t got = fio_pread_full(sl.fd, buf, sl.len, sl.position);
        fio_close(sl.fd);
        if (got < 0) {
            LOG_ERROR(STORE_WHO, "%s: read error at offset %lld", who, (long long)off);
            free(buf);
            return -1;
        }
        int64_t next = off;
        replay_batches(gc, buf, (size_t)got, off, &next, who);
        if (next <= off) {
            LOG_WARN(STORE_WHO, "%s: no whole batch at offset %lld; replay stops there", who,
                     (long long)off);
            break;
        }
        off = next;
    }
    free(buf);
    return 0;
}

static struct topic *ensure_topic(struct broker *b)
{
    struct topic *t = topic_find(b, OFFSETS_TOPIC);
    if (t != NULL)
        return t;
    struct topic_config_kv cfg[3];
    memset(cfg, 0, sizeof(cfg));
    snprintf(cfg[0].key, sizeof(cfg[0].key), "retention.ms");
    snprintf(cfg[0].value, sizeof(cfg[0].value), "-1");
    snprintf(cfg[1].key, sizeof(cfg[1].key), "retention.bytes");
    snprintf(cfg[1].value, sizeof(cfg[1].value), "-1");
    snprintf(cfg[2].key, sizeof(cfg[2].key), "segment.bytes");
    snprintf(cfg[2].value, sizeof(cfg[2].value), OFFSETS_SEGMENT_BYTES);
    char msg[256] = "";
    int e = topic_create(b, OFFSETS_TOPIC, b->cfg.offsets_topic_num_partitions, cfg, 3, &t, msg,
                         sizeof(msg));
    if (e != KERR_NONE) {
        LOG_ERROR(STORE_WHO, "cannot create %s: %s (%s)", OFFSETS_TOPIC, kerr_name(e), msg);
        return NULL;
    }
    return t;
}

struct group_coordinator *group_coordinator_create(struct broker *b)
{
    struct topic *t = topic_find(b, OFFSETS_TOPIC);
    int32_t nparts = t != NULL ? t->npartitions : b->cfg.offsets_topic_num_partitions;
    if (t != NULL && t->npartitions != b->cfg.offsets_topic_num_partitions)
        LOG_WARN(STORE_WHO, "%s has %d partitions but offsets.topic.num.partitions=%d: using %d "
                 "(the partition count of an existing topic decides where groups live)",
                 OFFSETS_TOPIC, t->npartitions, b->cfg.offsets_topic_num_partitions,
                 t->npartitions);
    b->cfg.offsets_topic_num_partitions = nparts;
    struct group_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->b = b;
    s->compact_due = calloc((size_t)nparts + 1, sizeof(*s->compact_due));
    if (s->compact_due == NULL) {
        free(s);
        return NULL;
    }
    struct gc_config cfg = {
        .num_partitions = nparts,
        .initial_rebalance_delay_ms = b->cfg.group_initial_rebalance_delay_ms,
        .min_session_timeout_ms = b->cfg.group_min_session_timeout_ms,
        .max_session_timeout_ms = b->cfg.group_max_session_timeout_ms,
        .max_size = b->cfg.group_max_size,
        .offset_metadata_max_bytes = b->cfg.offset_metadata_max_bytes,
        .offsets_retention_ms = b->cfg.offsets_retention_ms,
        .retention_check_interval_ms = 600000,
        .consumer_session_timeout_ms = b->cfg.group_consumer_session_timeout_ms,
        .consumer_heartbeat_interval_ms = b->cfg.group_consumer_heartbeat_interval_ms,
        .consumer_max_size = b->cfg.group_consumer_max_size,
        .consumer_migration_policy = (enum gc_migration_policy)b->cfg.group_consumer_migration_policy,
    };
    struct gc_env env = {
        .ctx = s,
        .wall_ms = store_wall_ms,
        .mono_ms = store_mono_ms,
        .timer_add = store_timer_add,
        .timer_cancel = store_timer_cancel,
        .append = store_append,
    };
    s->replaying = true;
    struct group_coordinator *gc = gc_create(&cfg, &env);
    if (gc == NULL) {
        free(s->compact_due);
        free(s);
        return NULL;
    }
    struct cg_topic_view view;
    gh_topic_view(b, &view);
    gc_set_topic_view(gc, &view);
    int64_t t0 = mono_ms();
    for (int32_t i = 0; t != NULL && i < t->npartitions; i++)
        replay_partition(gc, t->partitions[i]);
    gc_replay_done(gc);
    s->gc = gc;
    s->replaying = false;
    LOG_INFO(STORE_WHO, "Finished loading offsets and group metadata from %s in %lld ms",
             OFFSETS_TOPIC, (long long)(mono_ms() - t0));
    for (int32_t i = 0; t != NULL && i < t->npartitions; i++)
        maybe_schedule_compaction(s, t->partitions[i]);
    return gc;
}

void group_coordinator_destroy(struct group_coordinator *gc)
{
    if (gc == NULL)
        return;
    struct group_store *s = gc_env_ctx(gc);
    gc_destroy(gc);
    if (s->compact_timer)
        broker_timer_cancel(s->b, s->compact_timer);
    free(s->compact_due);
    free(s);
}
