/* group_store: the group coordinator's host environment in the broker (its gc_env) —
 * __consumer_offsets creation and replay, appending coordinator records as record batches, the
 * loop's timers, and keeping the topic bounded by rewriting a partition's live state
 * (docs/GROUPS.md). In a cluster (docs/CLUSTER.md, "Group coordinators") it also follows which
 * partitions of the ZooKeeper topic this broker leads: it loads their groups over loop turns and
 * lets them go when another broker leads them. src/group/ itself knows neither the broker nor
 * the log: everything it needs from them comes through the gc_env built here. */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/waiters.h"
#include "cluster/cluster.h"
#include "cluster/znode.h"
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
/* A partition of a __consumer_offsets that is not compacted (made by a gregor before log
 * compaction) is rewritten when its log holds more than this many records and more than
 * COMPACT_FACTOR times its live records; a compacted one is left to the log cleaner. */
#define COMPACT_MIN_RECORDS 10000
#define COMPACT_FACTOR 4
/* A cluster's loading: the most time one loop turn spends replaying, and how often a partition
 * whose local log is not open yet (its topic still being created here) is looked at again. */
#define LOAD_TURN_BUDGET_MS 20
#define LOAD_WAIT_MS 20
/* ... in chunks of this many bytes (a chunk's replay is the smallest step; ~8 ms here). */
#define LOAD_CHUNK_BYTES (1 << 20)
/* Offsets of transactions not ended yet (TxnOffsetCommit), held until their marker: at most
 * this many records over all producers (Kafka bounds them by the transaction's own size). */
#define TXN_PENDING_MAX_RECORDS (1 << 20)

/* Where this broker stands for one partition of __consumer_offsets. One node owns them all;
 * in a cluster, the partitions whose ZooKeeper leader it is (Kafka's ownedPartitions and
 * loadingPartitions of GroupMetadataManager). */
enum store_partition_state { STORE_NOT_OWNED, STORE_LOADING, STORE_OWNED };

/* One producer's offsets written in its ongoing transaction to one partition (Kafka's
 * pendingTransactionalOffsetCommits): in the log already, applied when the COMMIT marker comes,
 * dropped at ABORT. Keys and values owned. */
struct txn_offsets {
    int64_t producer_id;
    int32_t partition;
    int n, cap;
    struct gc_record *recs;
    struct txn_offsets *next;
};

struct group_store {
    struct broker *b;
    struct group_coordinator *gc;
    int32_t nparts;             /* the coordinator's partition count */
    bool *compact_due;          /* per partition */
    enum store_partition_state *state; /* per partition */
    int64_t *load_next;         /* per LOADING partition: next offset to replay, -1 = not begun */
    int64_t *load_began;        /* per LOADING partition: mono ms */
    uint64_t compact_timer;
    uint64_t load_timer;
    bool replaying;
    bool topic_requested;       /* cluster: a creation of __consumer_offsets is in flight */
    struct txn_offsets *txn_pending;
    int64_t txn_pending_records; /* over the whole list, <= TXN_PENDING_MAX_RECORDS */
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
    if (p->topic->cfg.compact)
        return;
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
    GREGOR_ASSERT(partition >= 0 && partition < s->nparts);
    /* Only the coordinator of a partition writes it (a cluster's other brokers hold no group of
     * it; a loading one does not change what it is reading). */
    if (s->state[partition] != STORE_OWNED)
        return s->state[partition] == STORE_LOADING ? KERR_COORDINATOR_LOAD_IN_PROGRESS
                                                    : KERR_NOT_COORDINATOR;
    struct partition *p = offsets_partition(s, partition);
    if (p == NULL && s->b->cluster != NULL)
        return KERR_COORDINATOR_NOT_AVAILABLE; /* the cluster's topic, not one of our own */
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
    for (int32_t i = 0; i < s->nparts; i++) {
        /* A partition no longer owned has no groups here: its snapshot would be empty. */
        if (!s->compact_due[i] || s->state[i] != STORE_OWNED)
            continue;
        s->compact_due[i] = false;
        struct partition *p = offsets_partition(s, i);
        if (p != NULL)
            compact_partition(s, p);
    }
}

/* ---- replay ---- */

static void txn_pending_end(struct group_store *s, int32_t partition, int64_t pid, bool commit);
static void txn_pending_drop_partition(struct group_store *s, int32_t partition);
static int txn_pending_add(struct group_store *s, int32_t partition, int64_t pid,
                           const struct gc_record *rec);

/* A control batch's type: 1 COMMIT, 0 ABORT, -1 unreadable (Kafka's EndTransactionMarker key:
 * version, type). */
static int control_type(const uint8_t *batch, size_t len)
{
    struct batch_record_iter it;
    if (batch_records_open(&it, batch, len, REPLAY_MAX_DECOMPRESSED) != KERR_NONE)
        return -1;
    struct batch_record rec;
    int type = -1;
    if (batch_records_next(&it, &rec) == 1 && rec.key != NULL && rec.key_len >= 4)
        type = (int)(((uint16_t)rec.key[2] << 8) | rec.key[3]);
    batch_records_close(&it);
    return type == 0 || type == 1 ? type : -1;
}

static int replay_batches(struct group_store *s, int32_t partition, const uint8_t *buf,
                          size_t len, int64_t from, int64_t *next, const char *who)
{
    struct group_coordinator *gc = s->gc;
    struct batch_walk walk = {.buf = buf, .len = len};
    struct batch_header h;
    const uint8_t *batch;
    while (batch_walk_next(&walk, from, &h, &batch)) {
        size_t total = (size_t)batch_total_size(&h);
        *next = batch_last_offset(&h) + 1;
        if (h.magic != BATCH_MAGIC_V2)
            continue;
        bool txn = (h.attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
        if (h.attributes & BATCH_ATTR_CONTROL) {
            int type = txn ? control_type(batch, total) : -1;
            if (type >= 0)
                txn_pending_end(s, partition, h.producer_id, type == 1);
            continue;
        }
        struct batch_record_iter it;
        int e = batch_records_open(&it, batch, total, REPLAY_MAX_DECOMPRESSED);
        if (e != KERR_NONE) {
            LOG_WARN(STORE_WHO, "%s: skipping batch at offset %lld: %s", who,
                     (long long)h.base_offset, kerr_name(e));
            continue;
        }
        struct batch_record rec;
        while ((e = batch_records_next(&it, &rec)) == 1) {
            if (rec.offset < from || rec.key == NULL)
                continue;
            /* A transaction's offsets wait for its marker (TxnOffsetCommit). */
            struct gc_record gr = {rec.key, rec.key_len, rec.value, rec.value_len};
            int rc = txn ? txn_pending_add(s, partition, h.producer_id, &gr)
                         : gc_replay_record(gc, rec.key, rec.key_len, rec.value, rec.value_len);
            if (rc != 0)
                LOG_WARN(STORE_WHO, "%s: skipping %s record at offset %lld", who,
                         txn ? "transactional" : "undecodable", (long long)rec.offset);
        }
        if (e < 0)
            LOG_WARN(STORE_WHO, "%s: corrupt records in batch at offset %lld", who,
                     (long long)h.base_offset);
        batch_records_close(&it);
    }
    return 0;
}

/* Replays one chunk (up to chunk bytes, at least one whole batch) of a partition from *off,
 * which moves past it. Returns 1 when more is left, 0 at the log end, -1 on a read error
 * (logged). */
static int replay_chunk(struct group_store *s, struct partition *p, int64_t *off,
                        int32_t chunk)
{
    char who[300];
    snprintf(who, sizeof(who), "%s-%d", OFFSETS_TOPIC, p->index);
    if (*off < partition_log_start(p))
        *off = partition_log_start(p);
    if (*off >= partition_log_end(p))
        return 0;
    struct log_slice sl;
    int e = partition_read_log(p, *off, chunk, &sl);
    if (e != KERR_NONE) {
        LOG_ERROR(STORE_WHO, "%s: cannot read at offset %lld: %s", who, (long long)*off,
                  kerr_name(e));
        return -1;
    }
    if (sl.len == 0) {
        fio_close(sl.fd);
        return 0;
    }
    uint8_t *buf = malloc(sl.len);
    if (buf == NULL) {
        fio_close(sl.fd);
        LOG_ERROR(STORE_WHO, "%s: no memory for %zu bytes at offset %lld", who, sl.len,
                  (long long)*off);
        return -1;
    }
    ssize_t got = fio_pread_full(sl.fd, buf, sl.len, sl.position);
    fio_close(sl.fd);
    if (got < 0) {
        LOG_ERROR(STORE_WHO, "%s: read error at offset %lld", who, (long long)*off);
        free(buf);
        return -1;
    }
    int64_t next = *off;
    replay_batches(s, p->index, buf, (size_t)got, *off, &next, who);
    free(buf);
    if (next <= *off) {
        LOG_WARN(STORE_WHO, "%s: no whole batch at offset %lld; replay stops there", who,
                 (long long)*off);
        return 0;
    }
    *off = next;
    return 1;
}

static int replay_partition(struct group_store *s, struct partition *p)
{
    int64_t off = partition_log_start(p);
    int r;
    while ((r = replay_chunk(s, p, &off, REPLAY_CHUNK_BYTES)) == 1)
        ;
    return r;
}

/* The topic's own configs: offsets are kept until the coordinator tombstones them, never
 * dropped by time or size. */
/* Kafka's GroupMetadataManager.offsetTopicConfigs: compacted (old commits and group records
 * are cleaned, nothing is deleted for age or size), batches kept as written, segments of
 * offsets.topic.segment.bytes. */
#define OFFSETS_CONFIGS 3
static void offsets_configs(const struct broker *b, struct topic_config_kv cfg[OFFSETS_CONFIGS])
{
    memset(cfg, 0, sizeof(*cfg) * OFFSETS_CONFIGS);
    snprintf(cfg[0].key, sizeof(cfg[0].key), "cleanup.policy");
    snprintf(cfg[0].value, sizeof(cfg[0].value), "compact");
    snprintf(cfg[1].key, sizeof(cfg[1].key), "compression.type");
    snprintf(cfg[1].value, sizeof(cfg[1].value), "producer");
    snprintf(cfg[2].key, sizeof(cfg[2].key), "segment.bytes");
    snprintf(cfg[2].value, sizeof(cfg[2].value), "%d", b->cfg.offsets_topic_segment_bytes);
}

static struct topic *ensure_topic(struct broker *b)
{
    struct topic *t = topic_find(b, OFFSETS_TOPIC);
    if (t != NULL)
        return t;
    struct topic_config_kv cfg[OFFSETS_CONFIGS];
    offsets_configs(b, cfg);
    char msg[256] = "";
    int e = topic_create(b, OFFSETS_TOPIC, b->cfg.offsets_topic_num_partitions, cfg,
                         OFFSETS_CONFIGS, &t, msg, sizeof(msg));
    if (e != KERR_NONE) {
        LOG_ERROR(STORE_WHO, "cannot create %s: %s (%s)", OFFSETS_TOPIC, kerr_name(e), msg);
        return NULL;
    }
    return t;
}

/* The per-partition arrays and the coordinator for nparts partitions (s->gc NULL before). */
static int store_alloc(struct group_store *s, int32_t nparts)
{
    GREGOR_ASSERT(s->gc == NULL && nparts > 0);
    struct broker *b = s->b;
    s->nparts = nparts;
    s->compact_due = calloc((size_t)nparts + 1, sizeof(*s->compact_due));
    s->state = calloc((size_t)nparts + 1, sizeof(*s->state));
    s->load_next = calloc((size_t)nparts + 1, sizeof(*s->load_next));
    s->load_began = calloc((size_t)nparts + 1, sizeof(*s->load_began));
    if (s->compact_due == NULL || s->state == NULL || s->load_next == NULL ||
        s->load_began == NULL)
        return -1;
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
    s->gc = gc_create(&cfg, &env);
    if (s->gc == NULL)
        return -1;
    struct cg_topic_view view;
    gh_topic_view(b, &view);
    gc_set_topic_view(s->gc, &view);
    return 0;
}

static void store_free_parts(struct group_store *s)
{
    gc_destroy(s->gc);
    s->gc = NULL;
    free(s->compact_due);
    free(s->state);
    free(s->load_next);
    free(s->load_began);
    s->compact_due = NULL;
    s->state = NULL;
    s->load_next = NULL;
    s->load_began = NULL;
}

/* One node: every partition is this broker's, replayed before the listener opens. */
static void store_load_all(struct group_store *s, struct topic *t)
{
    s->replaying = true;
    int64_t t0 = mono_ms();
    for (int32_t i = 0; t != NULL && i < t->npartitions; i++)
        replay_partition(s, t->partitions[i]);
    for (int32_t i = 0; i < s->nparts; i++)
        s->state[i] = STORE_OWNED;
    gc_replay_done(s->gc);
    s->replaying = false;
    LOG_INFO(STORE_WHO, "Finished loading offsets and group metadata from %s in %lld ms",
             OFFSETS_TOPIC, (long long)(mono_ms() - t0));
    for (int32_t i = 0; t != NULL && i < t->npartitions; i++)
        maybe_schedule_compaction(s, t->partitions[i]);
}

struct group_coordinator *group_coordinator_create(struct broker *b)
{
    struct topic *t = topic_find(b, OFFSETS_TOPIC);
    int32_t nparts = b->cfg.offsets_topic_num_partitions;
    if (b->cluster == NULL && t != NULL && t->npartitions != nparts) {
        LOG_WARN(STORE_WHO, "%s has %d partitions but offsets.topic.num.partitions=%d: using %d "
                 "(the partition count of an existing topic decides where groups live)",
                 OFFSETS_TOPIC, t->npartitions, nparts, t->npartitions);
        nparts = t->npartitions;
        b->cfg.offsets_topic_num_partitions = nparts;
    }
    struct group_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->b = b;
    if (store_alloc(s, nparts) != 0) {
        store_free_parts(s);
        free(s);
        return NULL;
    }
    /* In a cluster nothing is owned until ZooKeeper says this broker leads a partition
     * (group_store_cluster_sync). */
    if (b->cluster == NULL)
        store_load_all(s, t);
    return s->gc;
}

void group_coordinator_destroy(struct group_coordinator *gc)
{
    if (gc == NULL)
        return;
    struct group_store *s = gc_env_ctx(gc);
    if (s->compact_timer)
        broker_timer_cancel(s->b, s->compact_timer);
    if (s->load_timer)
        broker_timer_cancel(s->b, s->load_timer);
    store_free_parts(s);
    txn_pending_drop_partition(s, -1);
    free(s);
}

/* ---- a cluster: the partitions this broker leads ---- */

static struct group_store *store_of(struct broker *b)
{
    return b->groups != NULL ? gc_env_ctx(b->groups) : NULL;
}

int16_t group_store_check(struct broker *b, const char *group_id)
{
    struct group_store *s = store_of(b);
    if (s == NULL)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (b->cluster == NULL)
        return KERR_NONE;
    const char *g = group_id != NULL ? group_id : "";
    int32_t p = gc_partition_for(g, s->nparts);
    GREGOR_ASSERT(p >= 0 && p < s->nparts);
    switch (s->state[p]) {
    case STORE_OWNED:
        return KERR_NONE;
    case STORE_LOADING:
        return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    default:
        return KERR_NOT_COORDINATOR;
    }
}

bool group_store_loading(struct broker *b)
{
    struct group_store *s = store_of(b);
    for (int32_t i = 0; s != NULL && i < s->nparts; i++)
        if (s->state[i] == STORE_LOADING)
            return true;
    return false;
}

static void topic_created(void *arg, int kerr, const char *msg)
{
    struct broker *b = arg;
    struct group_store *s = store_of(b);
    if (s != NULL)
        s->topic_requested = false;
    if (kerr != KERR_NONE && kerr != KERR_TOPIC_ALREADY_EXISTS)
        LOG_LIMITED(LOG_LEVEL_WARN, STORE_WHO, "cannot create %s: %s (%s)", OFFSETS_TOPIC,
                    kerr_name(kerr), msg ? msg : "");
}

/* Kafka's AutoTopicCreationManager for the internal topic: offsets.topic.num.partitions
 * partitions at offsets.topic.replication.factor, one request in flight at a time. */
static void request_topic(struct broker *b, struct group_store *s)
{
    if (s->topic_requested)
        return;
    char msg[512] = "";
    uint8_t id[16];
    /* Its configs go to /config/topics/__consumer_offsets, so the leader that applies
     * them keeps what the coordinator needs (no retention by time or size). */
    struct topic_config_kv cfg[OFFSETS_CONFIGS];
    offsets_configs(b, cfg);
    const char *keys[OFFSETS_CONFIGS], *values[OFFSETS_CONFIGS];
    for (int i = 0; i < OFFSETS_CONFIGS; i++) {
        keys[i] = cfg[i].key;
        values[i] = cfg[i].value;
    }
    char cjson[512];
    int cn = znode_config_json(cjson, sizeof(cjson), keys, values, OFFSETS_CONFIGS);
    GREGOR_ASSERT(cn > 0);
    int e = cluster_create_topic(b->cluster, OFFSETS_TOPIC, s->nparts,
                                 b->cfg.offsets_topic_replication_factor, NULL, false, id,
                                 cjson, topic_created, b, msg, sizeof(msg));
    if (e == KERR_NONE) {
        s->topic_requested = true;
        LOG_INFO(STORE_WHO, "Creating topic %s with %d partitions and replication factor %d",
                 OFFSETS_TOPIC, s->nparts, b->cfg.offsets_topic_replication_factor);
    } else {
        LOG_LIMITED(LOG_LEVEL_WARN, STORE_WHO, "cannot create %s: %s (%s)", OFFSETS_TOPIC,
                    kerr_name(e), msg);
    }
}

int16_t group_store_find(struct broker *b, const char *group_id, struct cluster_broker *out)
{
    struct group_store *s = store_of(b);
    if (s == NULL || b->cluster == NULL)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, OFFSETS_TOPIC);
    if (ct == NULL) {
        request_topic(b, s);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    if (!ct->read || ct->npartitions != s->nparts)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    int32_t p = gc_partition_for(group_id != NULL ? group_id : "", s->nparts);
    int32_t leader = ct->parts[p].leader;
    if (leader < 0)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    const struct cluster_broker *live;
    int n = cluster_brokers(b->cluster, &live);
    for (int i = 0; i < n; i++)
        if (live[i].id == leader) {
            *out = live[i];
            return KERR_NONE;
        }
    return KERR_COORDINATOR_NOT_AVAILABLE;
}

int64_t group_store_unreplicated_end(struct broker *b, const char *group_id, int32_t *partition)
{
    struct group_store *s = store_of(b);
    if (s == NULL || b->cluster == NULL)
        return -1;
    int32_t index = gc_partition_for(group_id != NULL ? group_id : "", s->nparts);
    struct partition *p = offsets_partition(s, index);
    if (p == NULL || !p->repl.leading)
        return -1;
    int64_t end = partition_log_end(p);
    GREGOR_ASSERT(partition_high_watermark(p) <= end);
    if (partition_high_watermark(p) >= end)
        return -1;
    *partition = index;
    return end;
}

int group_store_replicated(struct broker *b, int32_t partition, int64_t end)
{
    struct group_store *s = store_of(b);
    /* Looked up each time: the partition may have been let go meanwhile. */
    struct partition *p = s != NULL && partition < s->nparts ? offsets_partition(s, partition) : NULL;
    if (p == NULL || !p->repl.leading || s->state[partition] != STORE_OWNED)
        return -1;
    return partition_high_watermark(p) >= end ? 1 : 0;
}

/* Kafka's offsets.commit.timeout.ms (its default): how long a commit waits for the replicas
 * of __consumer_offsets before it is answered COORDINATOR_NOT_AVAILABLE. */
#define COMMIT_REPLICATION_TIMEOUT_MS 5000

/* A commit written to a replicated __consumer_offsets partition, until the ISR has it; its
 * response is built before it parks (only error codes change after, through set_error). */
struct commit_wait {
    struct waiter w;
    int32_t partition;                 /* of __consumer_offsets */
    int64_t end;                       /* its log end after the commit's records */
    group_store_wait_error_fn *set_error;
};

/* Kafka's storeOffsets callback: a write not replicated in time is COORDINATOR_NOT_AVAILABLE
 * (from REQUEST_TIMED_OUT), one whose partition moved NOT_COORDINATOR. */
static bool commit_replicated(struct waiter *w, enum waiter_event ev)
{
    struct request *r = w->arg;
    struct commit_wait *cw = r->state;
    int done = group_store_replicated(r->broker, cw->partition, cw->end);
    if (ev == WAITER_CHECK)
        return done != 0;
    if (done <= 0)
        cw->set_error(r, done < 0 ? KERR_NOT_COORDINATOR : KERR_COORDINATOR_NOT_AVAILABLE);
    r->state = NULL;
    request_finish(r);
    return true;
}

bool group_store_await_isr(struct broker *b, struct request *r, const char *group_id,
                           group_store_wait_error_fn *set_error)
{
    int32_t partition = -1;
    int64_t end = group_store_unreplicated_end(b, group_id, &partition);
    struct commit_wait *cw = end >= 0 && !b->stopping ? request_alloc(r, sizeof(*cw)) : NULL;
    if (cw == NULL)
        return false;
    GREGOR_ASSERT(partition >= 0);
    *cw = (struct commit_wait){.partition = partition, .end = end, .set_error = set_error};
    r->state = cw;
    waiter_park(&b->waiters, &cw->w, WAITER_ON_APPEND, mono_ms() + COMMIT_REPLICATION_TIMEOUT_MS,
                commit_replicated, r);
    return true;
}

static void load_fire(struct broker *b, void *arg);

static void load_schedule(struct group_store *s, int64_t delay_ms)
{
    if (s->load_timer == 0)
        s->load_timer = broker_timer_add(s->b, mono_ms() + delay_ms, load_fire, s);
}

/* Kafka's onResignation: the partition's groups go (waiting joins and syncs answered
 * NOT_COORDINATOR); its records stay for the next leader. */
static void partition_resign(struct group_store *s, int32_t p)
{
    enum store_partition_state was = s->state[p];
    s->state[p] = STORE_NOT_OWNED;
    s->compact_due[p] = false;
    int n = gc_unload_partition(s->gc, p, KERR_NOT_COORDINATOR);
    txn_pending_drop_partition(s, p);
    LOG_INFO(STORE_WHO, "Unloaded %d groups of %s-%d (%s)", n, OFFSETS_TOPIC, p,
             was == STORE_LOADING ? "its loading was stopped" : "no longer its leader");
}

/* The ZooKeeper topic's count decides where groups live (Kafka reads it at startup). A
 * different offsets.topic.num.partitions is followed while nothing is owned yet. */
static bool partitions_agree(struct group_store *s, const struct cluster_topic *ct)
{
    if (ct->npartitions == s->nparts)
        return true;
    for (int32_t i = 0; i < s->nparts; i++)
        if (s->state[i] != STORE_NOT_OWNED)
            return false;
    if (ct->npartitions <= 0)
        return false;
    LOG_WARN(STORE_WHO, "%s has %d partitions in ZooKeeper but offsets.topic.num.partitions=%d: "
             "using %d", OFFSETS_TOPIC, ct->npartitions, s->nparts, ct->npartitions);
    struct broker *b = s->b;
    store_free_parts(s);
    if (store_alloc(s, ct->npartitions) != 0) {
        LOG_ERROR(STORE_WHO, "no memory for a coordinator of %d partitions", ct->npartitions);
        store_free_parts(s);
        txn_pending_drop_partition(s, -1);
        free(s);
        b->groups = NULL;
        return false;
    }
    b->groups = s->gc;
    return true;
}

void group_store_cluster_sync(struct broker *b)
{
    struct group_store *s = store_of(b);
    if (s == NULL || b->cluster == NULL)
        return;
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, OFFSETS_TOPIC);
    if (ct != NULL && ct->read && !partitions_agree(s, ct)) {
        if (store_of(b) == NULL)
            return;
        ct = NULL; /* another count, with groups held: lead nothing more */
    }
    s = store_of(b);
    for (int32_t p = 0; p < s->nparts; p++) {
        bool leads = ct != NULL && ct->read && !ct->gone && p < ct->npartitions &&
                     ct->parts[p].leader == b->cfg.node_id;
        if (leads && s->state[p] == STORE_NOT_OWNED) {
            s->state[p] = STORE_LOADING;
            s->load_next[p] = -1;
            s->load_began[p] = mono_ms();
            LOG_INFO(STORE_WHO, "Scheduling loading of offsets and group metadata from %s-%d "
                     "(leader epoch %d)", OFFSETS_TOPIC, p, ct->parts[p].leader_epoch);
            load_schedule(s, 0);
        } else if (!leads && s->state[p] != STORE_NOT_OWNED) {
            partition_resign(s, p);
        }
    }
}

/* __consumer_offsets opened here from ZooKeeper (broker_cluster_sync opens it with no
 * overrides) gets the one-node topic's configs. */
static void topic_configure(struct broker *b, struct topic *t)
{
    if (t->noverrides > 0)
        return;
    struct topic_config_kv cfg[OFFSETS_CONFIGS];
    offsets_configs(b, cfg);
    if (topic_set_overrides(b, t, cfg, OFFSETS_CONFIGS) != KERR_NONE)
        LOG_WARN(STORE_WHO, "cannot set the configs of %s", OFFSETS_TOPIC);
}

/* One loading partition's next chunk; true when it is done (then it is owned). */
static bool load_step(struct group_store *s, int32_t p)
{
    struct partition *lp = offsets_partition(s, p);
    GREGOR_ASSERT(lp != NULL);
    if (s->load_next[p] < 0) {
        s->load_next[p] = partition_log_start(lp);
        txn_pending_drop_partition(s, p);
    }
    s->replaying = true;
    int r = replay_chunk(s, lp, &s->load_next[p], LOAD_CHUNK_BYTES);
    s->replaying = false;
    if (r == 1)
        return false;
    /* A read error leaves what was read (as the one-node replay does), logged above. Owned
     * first: whatever finishing the load writes goes to the log. */
    s->state[p] = STORE_OWNED;
    gc_replay_done_partition(s->gc, p);
    LOG_INFO(STORE_WHO, "Finished loading offsets and group metadata from %s-%d in %lld ms",
             OFFSETS_TOPIC, p, (long long)(mono_ms() - s->load_began[p]));
    maybe_schedule_compaction(s, lp);
    return true;
}

/* Kafka's loading runs on a scheduler thread; here it runs in slices of the loop's turns
 * (LOAD_TURN_BUDGET_MS each), so a long log never stalls the broker. */
static void load_fire(struct broker *b, void *arg)
{
    struct group_store *s = arg;
    s->load_timer = 0;
    struct topic *t = topic_find(b, OFFSETS_TOPIC);
    bool ready = t != NULL && t->creating == 0 && t->growing == 0 && t->npartitions == s->nparts;
    if (t != NULL && t->creating == 0 && t->growing == 0 && !ready)
        LOG_LIMITED(LOG_LEVEL_ERROR, STORE_WHO, "the local %s has %d partitions, ZooKeeper's %d "
                    "(a log dir of another cluster or of a single node?): its groups are not "
                    "loaded, their requests answer COORDINATOR_LOAD_IN_PROGRESS", OFFSETS_TOPIC,
                    t->npartitions, s->nparts);
    bool waiting = false;
    int64_t deadline = mono_ms() + LOAD_TURN_BUDGET_MS;
    for (int32_t p = 0; p < s->nparts; p++) {
        if (s->state[p] != STORE_LOADING)
            continue;
        if (!ready) {
            waiting = true; /* broker_cluster_sync is still opening the topic here */
            break;
        }
        topic_configure(b, t);
        while (!load_step(s, p)) {
            if (mono_ms() >= deadline) {
                load_schedule(s, 0);
                return;
            }
        }
        if (mono_ms() >= deadline)
            break;
    }
    for (int32_t p = 0; p < s->nparts && !waiting; p++)
        if (s->state[p] == STORE_LOADING)
            load_schedule(s, 0);
    if (waiting)
        load_schedule(s, LOAD_WAIT_MS);
}

/* ---- transactional offsets (TxnOffsetCommit) ---- */

static struct txn_offsets **txn_pending_find(struct group_store *s, int32_t partition,
                                             int64_t pid)
{
    struct txn_offsets **pp = &s->txn_pending;
    while (*pp != NULL && ((*pp)->partition != partition || (*pp)->producer_id != pid))
        pp = &(*pp)->next;
    return pp;
}

static void txn_offsets_free(struct group_store *s, struct txn_offsets *t)
{
    for (int i = 0; i < t->n; i++) {
        free((void *)t->recs[i].key);
        free((void *)t->recs[i].value);
    }
    s->txn_pending_records -= t->n;
    GREGOR_ASSERT(s->txn_pending_records >= 0);
    free(t->recs);
    free(t);
}

/* Holds a copy of rec for producer pid's transaction on partition: 0, or -1 (bound reached or
 * no memory: logged by the caller). */
static int txn_pending_add(struct group_store *s, int32_t partition, int64_t pid,
                           const struct gc_record *rec)
{
    if (s->txn_pending_records >= TXN_PENDING_MAX_RECORDS)
        return -1;
    struct txn_offsets **pp = txn_pending_find(s, partition, pid);
    struct txn_offsets *t = *pp;
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return -1;
        t->producer_id = pid;
        t->partition = partition;
        *pp = t;
    }
    if (t->n == t->cap) {
        int cap = t->cap > 0 ? t->cap * 2 : 8;
        struct gc_record *grown = realloc(t->recs, sizeof(*grown) * (size_t)cap);
        if (grown == NULL)
            return -1;
        t->recs = grown;
        t->cap = cap;
    }
    uint8_t *key = malloc((size_t)rec->key_len + 1);
    uint8_t *value = rec->value != NULL && rec->value_len >= 0 ? malloc((size_t)rec->value_len + 1)
                                                             : NULL;
    if (key == NULL || (rec->value != NULL && rec->value_len >= 0 && value == NULL)) {
        free(key);
        free(value);
        return -1;
    }
    memcpy(key, rec->key, (size_t)rec->key_len);
    if (value != NULL)
        memcpy(value, rec->value, (size_t)rec->value_len);
    t->recs[t->n++] = (struct gc_record){key, rec->key_len, value,
                                         value != NULL ? rec->value_len : -1};
    s->txn_pending_records++;
    return 0;
}

/* The producer's transaction ended on partition: its offsets become the group's (COMMIT) or
 * are dropped (ABORT), as Kafka's GroupMetadataManager.handleTxnCompletion. */
static void txn_pending_end(struct group_store *s, int32_t partition, int64_t pid, bool commit)
{
    struct txn_offsets **pp = txn_pending_find(s, partition, pid);
    struct txn_offsets *t = *pp;
    if (t == NULL)
        return;
    *pp = t->next;
    for (int i = 0; commit && i < t->n; i++)
        if (gc_replay_record(s->gc, t->recs[i].key, t->recs[i].key_len, t->recs[i].value,
                             t->recs[i].value_len) != 0)
            LOG_WARN(STORE_WHO, "cannot apply a transactional offset of producer %lld",
                     (long long)pid);
    txn_offsets_free(s, t);
}

/* Forgets what is held for partition (let go, or about to be replayed again). */
static void txn_pending_drop_partition(struct group_store *s, int32_t partition)
{
    struct txn_offsets **pp = &s->txn_pending;
    while (*pp != NULL) {
        struct txn_offsets *t = *pp;
        if (partition >= 0 && t->partition != partition) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        txn_offsets_free(s, t);
    }
}

/* The next sequence of producer pid on p: its batches here are the coordinator's own, one after
 * another (a new epoch starts at 0). */
static int32_t txn_next_sequence(struct partition *p, int64_t pid, int16_t epoch)
{
    const struct producer_entry *e = producer_state_find(&p->producers, pid);
    if (e == NULL || e->epoch != epoch || e->n == 0)
        return 0;
    int32_t last = e->batches[e->n - 1].last_seq;
    return last == INT32_MAX ? 0 : last + 1;
}

/* Kafka's GroupMetadataManager: a log append error as an offset commit answers it. */
static int16_t txn_commit_error(int e)
{
    switch (e) {
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        return KERR_COORDINATOR_NOT_AVAILABLE;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR:
        return KERR_NOT_COORDINATOR;
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
    case KERR_INVALID_FETCH_SIZE:
        return KERR_INVALID_COMMIT_OFFSET_SIZE;
    default:
        return (int16_t)e;
    }
}

/* The records of the partitions still without an error, as one transactional batch. */
static int txn_offsets_batch(struct group_store *s, struct partition *p, const char *group_id,
                             int64_t pid, int16_t epoch, const struct gc_commit_partition *parts,
                             int n, struct batch_builder *bb)
{
    int64_t now = now_ms();
    int e = KERR_NONE;
    for (int i = 0; i < n && e == KERR_NONE; i++) {
        if (parts[i].error != KERR_NONE)
            continue;
        struct gc_buf key = {0}, value = {0};
        e = gc_encode_offset_key(&key, group_id, parts[i].topic, parts[i].partition);
        if (e == KERR_NONE)
            e = gc_encode_offset_value(&value, parts[i].offset, parts[i].leader_epoch,
                                       parts[i].metadata, parts[i].metadata_len, now, -1);
        if (e == KERR_NONE)
            e = batch_builder_add(bb, now, key.p, (int32_t)key.len, value.p,
                                  (int32_t)value.len, NULL, 0);
        free(key.p);
        free(value.p);
    }
    bb->producer_id = pid;
    bb->producer_epoch = epoch;
    bb->base_sequence = txn_next_sequence(p, pid, epoch);
    bb->attributes |= BATCH_ATTR_TRANSACTIONAL;
    (void)s;
    return e;
}

/* Holds the batch's records for the marker; every record was checked by the append. */
static void txn_offsets_hold(struct group_store *s, int32_t partition, int64_t pid,
                             const uint8_t *batch, size_t len)
{
    struct batch_record_iter it;
    if (batch_records_open(&it, batch, len, REPLAY_MAX_DECOMPRESSED) != KERR_NONE)
        return;
    struct batch_record rec;
    while (batch_records_next(&it, &rec) == 1) {
        struct gc_record gr = {rec.key, rec.key_len, rec.value, rec.value_len};
        if (txn_pending_add(s, partition, pid, &gr) != 0)
            LOG_WARN(STORE_WHO, "cannot hold a transactional offset of producer %lld "
                     "(%lld held): it is lost at the commit", (long long)pid,
                     (long long)s->txn_pending_records);
    }
    batch_records_close(&it);
}

int16_t group_store_txn_offsets(struct broker *b, const char *group_id, int64_t producer_id,
                                int16_t producer_epoch, struct gc_commit_partition *parts, int n)
{
    struct group_store *s = store_of(b);
    int16_t err = group_store_check(b, group_id);
    if (s == NULL || err != KERR_NONE)
        return s == NULL ? KERR_COORDINATOR_NOT_AVAILABLE : err;
    if (s->txn_pending_records + n > TXN_PENDING_MAX_RECORDS)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    int32_t index = gc_partition_for(group_id, s->nparts);
    struct partition *p = offsets_partition(s, index);
    if (p == NULL && b->cluster == NULL && ensure_topic(b) != NULL)
        p = offsets_partition(s, index);
    if (p == NULL)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    int live = 0;
    for (int i = 0; i < n; i++) {
        if (parts[i].error == KERR_NONE && parts[i].metadata != NULL &&
            parts[i].metadata_len > b->cfg.offset_metadata_max_bytes)
            parts[i].error = KERR_OFFSET_METADATA_TOO_LARGE;
        live += parts[i].error == KERR_NONE;
    }
    if (live == 0)
        return KERR_NONE;
    struct batch_builder bb;
    batch_builder_init(&bb, (size_t)p->topic->cfg.max_message_bytes);
    int e = txn_offsets_batch(s, p, group_id, producer_id, producer_epoch, parts, n, &bb);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (e == KERR_NONE)
        e = batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &buf, &len);
    batch_builder_free(&bb);
    if (e == KERR_NONE) {
        struct log_append_info info;
        bool dup;
        e = partition_append_as_leader(p, buf, len, now_ms(), &info, &dup);
        if (e == KERR_NONE && !dup) {
            broker_mark_dirty(b, p);
            txn_offsets_hold(s, index, producer_id, buf, len);
        }
    }
    free(buf);
    if (e != KERR_NONE)
        LOG_WARN(STORE_WHO, "TxnOffsetCommit of group %s (producer %lld epoch %d) to %s-%d "
                 "failed: %s", group_id, (long long)producer_id, producer_epoch, OFFSETS_TOPIC,
                 index, kerr_name(e));
    for (int i = 0; i < n; i++)
        if (parts[i].error == KERR_NONE)
            parts[i].error = txn_commit_error(e);
    return KERR_NONE;
}

void group_store_txn_marker(struct broker *b, int32_t partition, int64_t producer_id,
                            bool commit)
{
    struct group_store *s = store_of(b);
    if (s != NULL && partition >= 0 && partition < s->nparts)
        txn_pending_end(s, partition, producer_id, commit);
}

bool group_store_txn_pending(struct broker *b, const char *group_id, const char *topic,
                             int32_t partition)
{
    struct group_store *s = store_of(b);
    if (s == NULL || s->txn_pending == NULL)
        return false;
    int32_t index = gc_partition_for(group_id, s->nparts);
    struct gc_buf key = {0};
    bool found = false;
    for (struct txn_offsets *t = s->txn_pending; t != NULL && !found; t = t->next) {
        if (t->partition != index)
            continue;
        if (key.p == NULL && gc_encode_offset_key(&key, group_id, topic, partition) != KERR_NONE)
            break;
        for (int i = 0; i < t->n && !found; i++)
            found = t->recs[i].key_len == (int32_t)key.len &&
                    memcmp(t->recs[i].key, key.p, key.len) == 0;
    }
    free(key.p);
    return found;
}
