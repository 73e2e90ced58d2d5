/* txn_store: the transaction coordinator's host environment in the broker (its txn_env) —
 * __transaction_state created on first use and replayed at start-up, the coordinator's records
 * appended to it, the markers written to the transaction's partitions, producer ids from
 * producer_ids.c and the two periodic checks (timed-out transactions, expired ids) on the loop's
 * timers. src/txn/ knows neither the broker nor the log: all of it comes through the env here.
 * One node only so far: on ZooKeeper no partition is owned and the requests answer
 * NOT_COORDINATOR (the cluster's loading and remote markers are still to come). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/group_store.h"
#include "broker/producer_ids.h"
#include "broker/txn_store.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/fileio.h"
#include "txn/txn_coordinator.h"

#define STORE_WHO "TransactionStateManager"
/* Replay reads the log in chunks of this many bytes (at least one whole batch each). */
#define REPLAY_CHUNK_BYTES (4 << 20)
#define REPLAY_MAX_DECOMPRESSED (64u << 20)
/* Kafka's TransactionLog defaults: transaction.state.log.segment.bytes. */
#define TXN_TOPIC_SEGMENT_BYTES 104857600

struct txn_store {
    struct broker *b;
    struct txn_coordinator *tc;
    int32_t nparts;             /* the coordinator's partition count */
    uint64_t abort_timer;
    uint64_t expire_timer;
};

static int64_t store_now_ms(void *ctx)
{
    (void)ctx;
    return now_ms();
}

/* __transaction_state's own configs, as Kafka's TransactionLog: compacted, uncompressed. */
#define TXN_TOPIC_CONFIGS 3
static void topic_configs(struct topic_config_kv cfg[TXN_TOPIC_CONFIGS])
{
    memset(cfg, 0, sizeof(*cfg) * TXN_TOPIC_CONFIGS);
    snprintf(cfg[0].key, sizeof(cfg[0].key), "cleanup.policy");
    snprintf(cfg[0].value, sizeof(cfg[0].value), "compact");
    snprintf(cfg[1].key, sizeof(cfg[1].key), "compression.type");
    snprintf(cfg[1].value, sizeof(cfg[1].value), "uncompressed");
    snprintf(cfg[2].key, sizeof(cfg[2].key), "segment.bytes");
    snprintf(cfg[2].value, sizeof(cfg[2].value), "%d", TXN_TOPIC_SEGMENT_BYTES);
}

/* The partition's log, the topic created on first use as Kafka does (a broker whose producers
 * never used a transactional id lists no __transaction_state). */
static struct partition *log_partition(struct txn_store *s, int32_t index)
{
    struct broker *b = s->b;
    struct topic *t = topic_find(b, TXN_STATE_TOPIC);
    if (t == NULL) {
        struct topic_config_kv cfg[TXN_TOPIC_CONFIGS];
        topic_configs(cfg);
        char msg[256] = "";
        int e = topic_create(b, TXN_STATE_TOPIC, s->nparts, cfg, TXN_TOPIC_CONFIGS, &t, msg,
                             sizeof(msg));
        if (e != KERR_NONE) {
            LOG_LIMITED(LOG_LEVEL_ERROR, STORE_WHO, "cannot create %s: %s (%s)",
                        TXN_STATE_TOPIC, kerr_name(e), msg);
            return NULL;
        }
        LOG_INFO(STORE_WHO, "Created %s with %d partitions", TXN_STATE_TOPIC, s->nparts);
    }
    if (t->creating != 0 || index < 0 || index >= t->npartitions)
        return NULL;
    return t->partitions[index];
}

/* One record as one batch: the coordinator writes one record per change. */
static int append_record(struct txn_store *s, struct partition *p, const struct txn_record *rec)
{
    size_t max = (size_t)p->topic->cfg.max_message_bytes;
    size_t need = (size_t)rec->key_len + (rec->value_len > 0 ? (size_t)rec->value_len : 0) + 128;
    if (max < need)
        return KERR_MESSAGE_TOO_LARGE;
    struct batch_builder bb;
    batch_builder_init(&bb, max);
    int64_t now = now_ms();
    int e = batch_builder_add(&bb, now, rec->key, rec->key_len, rec->value, rec->value_len,
                              NULL, 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (e == KERR_NONE)
        e = batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &buf, &len);
    batch_builder_free(&bb);
    if (e != KERR_NONE)
        return e;
    struct log_append_info info;
    bool dup;
    e = partition_append_as_leader(p, buf, len, now, &info, &dup);
    free(buf);
    if (e == KERR_NONE)
        broker_mark_dirty(s->b, p);
    return e;
}

/* One node: the append is complete once in the log (the group coordinator's records are
 * answered the same way); a cluster's acks=all wait is still to come. */
static void store_append(void *ctx, int32_t partition, const struct txn_record *rec,
                         struct txn_op *op)
{
    struct txn_store *s = ctx;
    GREGOR_ASSERT(partition >= 0 && partition < s->nparts);
    int e = KERR_NOT_LEADER_OR_FOLLOWER;
    if (s->b->cluster == NULL) {
        struct partition *p = log_partition(s, partition);
        e = p != NULL ? append_record(s, p, rec) : KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (e != KERR_NONE)
        LOG_WARN(STORE_WHO, "append to %s-%d failed: %s", TXN_STATE_TOPIC, partition,
                 kerr_name(e));
    txn_append_done(s->tc, op, (int16_t)e);
}

/* One partition's marker, written as WriteTxnMarkers writes it; a partition that is gone (topic
 * deleted, fewer partitions) needs none, as Kafka's marker channel drops it. */
static int write_marker(struct txn_store *s, const struct txn_marker_request *req,
                        const struct txn_partition *tp)
{
    struct topic *t = topic_find(s->b, tp->topic);
    if (t == NULL || tp->partition < 0 || tp->partition >= t->npartitions)
        return KERR_NONE;
    struct partition *p = t->partitions[tp->partition];
    struct log_append_info info;
    int e = partition_write_txn_marker(p, req->producer_id, req->producer_epoch,
                                       req->coordinator_epoch, req->commit, now_ms(), &info);
    if (e == KERR_NONE) {
        broker_mark_dirty(s->b, p);
        /* The group offsets the transaction wrote there (TxnOffsetCommit) end with it. */
        if (strcmp(tp->topic, "__consumer_offsets") == 0)
            group_store_txn_marker(s->b, tp->partition, req->producer_id, req->commit);
        return KERR_NONE;
    }
    LOG_WARN(STORE_WHO, "%s marker of transactional id %s (producer %" PRId64 " epoch %d) "
             "to %s-%d failed: %s", req->commit ? "COMMIT" : "ABORT", req->transactional_id,
             req->producer_id, req->producer_epoch, tp->topic, tp->partition, kerr_name(e));
    /* A newer epoch or coordinator already ended it there: nothing left to write (Kafka's
     * TransactionMarkerRequestCompletionHandler drops these partitions too). */
    if (e == KERR_INVALID_PRODUCER_EPOCH || e == KERR_TRANSACTION_COORDINATOR_FENCED)
        return KERR_NONE;
    return e;
}

/* Local partitions only (one node leads them all). */
static void store_send_markers(void *ctx, const struct txn_marker_request *req,
                               struct txn_op *op)
{
    struct txn_store *s = ctx;
    int first = KERR_NONE;
    for (int i = 0; i < req->n_partitions; i++) {
        int e = s->b->cluster == NULL ? write_marker(s, req, &req->partitions[i])
                                      : KERR_NOT_LEADER_OR_FOLLOWER;
        if (first == KERR_NONE)
            first = e;
    }
    txn_markers_done(s->tc, op, (int16_t)first);
}

static int16_t store_next_producer_id(void *ctx, int64_t *out)
{
    struct txn_store *s = ctx;
    return (int16_t)producer_ids_next(s->b, out);
}

/* ---- replay ---- */

static void replay_batches(struct txn_store *s, int32_t index, const uint8_t *buf, size_t len,
                           int64_t from, int64_t *next)
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
            LOG_WARN(STORE_WHO, "%s-%d: skipping batch at offset %lld: %s", TXN_STATE_TOPIC,
                     index, (long long)h.base_offset, kerr_name(e));
            continue;
        }
        struct batch_record rec;
        while ((e = batch_records_next(&it, &rec)) == 1) {
            if (rec.offset < from || rec.key == NULL)
                continue;
            if (txn_replay_record(s->tc, index, rec.key, rec.key_len, rec.value,
                                  rec.value_len) < 0)
                LOG_WARN(STORE_WHO, "%s-%d: skipping undecodable record at offset %lld",
                         TXN_STATE_TOPIC, index, (long long)rec.offset);
        }
        if (e < 0)
            LOG_WARN(STORE_WHO, "%s-%d: corrupt records in batch at offset %lld",
                     TXN_STATE_TOPIC, index, (long long)h.base_offset);
        batch_records_close(&it);
    }
}

/* Replays the partition from its log start to its end. A read error stops there, logged (what
 * was read stays, as the group store's replay). */
static void replay_partition(struct txn_store *s, struct partition *p)
{
    int64_t off = partition_log_start(p);
    while (off < partition_log_end(p)) {
        struct log_slice sl;
        int e = partition_read_log(p, off, REPLAY_CHUNK_BYTES, &sl);
        if (e != KERR_NONE) {
            LOG_ERROR(STORE_WHO, "%s-%d: cannot read at offset %lld: %s", TXN_STATE_TOPIC,
                      p->index, (long long)off, kerr_name(e));
            return;
        }
        uint8_t *buf = sl.len > 0 ? malloc(sl.len) : NULL;
        ssize_t got = buf != NULL ? fio_pread_full(sl.fd, buf, sl.len, sl.position) : -1;
        fio_close(sl.fd);
        if (got < 0) {
            LOG_ERROR(STORE_WHO, "%s-%d: cannot read %zu bytes at offset %lld",
                      TXN_STATE_TOPIC, p->index, sl.len, (long long)off);
            free(buf);
            return;
        }
        int64_t next = off;
        replay_batches(s, p->index, buf, (size_t)got, off, &next);
        free(buf);
        if (next <= off) {
            LOG_WARN(STORE_WHO, "%s-%d: no whole batch at offset %lld; replay stops there",
                     TXN_STATE_TOPIC, p->index, (long long)off);
            return;
        }
        off = next;
    }
}

/* One node: every partition is this broker's, replayed before the listener opens; the
 * transactions left prepared get their markers and complete. */
static void load_all(struct txn_store *s)
{
    int64_t t0 = mono_ms();
    struct topic *t = topic_find(s->b, TXN_STATE_TOPIC);
    for (int32_t i = 0; i < s->nparts; i++) {
        struct partition *p = t != NULL && i < t->npartitions ? t->partitions[i] : NULL;
        txn_load_begin(s->tc, i, p != NULL ? p->leader_epoch : 0);
        if (p != NULL)
            replay_partition(s, p);
    }
    int completing = 0;
    for (int32_t i = 0; i < s->nparts; i++)
        completing += txn_load_done(s->tc, i);
    LOG_INFO(STORE_WHO, "Finished loading transaction metadata from %s in %lld ms (%d "
             "transactions completing)", TXN_STATE_TOPIC, (long long)(mono_ms() - t0),
             completing);
}

/* ---- periodic work ---- */

static void abort_fire(struct broker *b, void *arg)
{
    struct txn_store *s = arg;
    s->abort_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_abort_interval_ms,
                                      abort_fire, s);
    int n = txn_abort_timed_out(s->tc);
    if (n > 0)
        LOG_INFO(STORE_WHO, "Aborting %d timed-out or unfinished transactions", n);
}

static void expire_fire(struct broker *b, void *arg)
{
    struct txn_store *s = arg;
    s->expire_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_expire_interval_ms,
                                       expire_fire, s);
    int n = txn_expire_ids(s->tc);
    if (n > 0)
        LOG_INFO(STORE_WHO, "Expiring %d transactional ids idle for more than %d ms", n,
                 b->cfg.transactional_id_expiration_ms);
}

/* ---- life ---- */

struct txn_store *txn_store_create(struct broker *b)
{
    int32_t nparts = b->cfg.transaction_state_log_num_partitions;
    struct topic *t = topic_find(b, TXN_STATE_TOPIC);
    if (b->cluster == NULL && t != NULL && t->npartitions > 0 && t->npartitions != nparts) {
        LOG_WARN(STORE_WHO, "%s has %d partitions but transaction.state.log.num.partitions=%d: "
                 "using %d (the partition count of an existing topic decides where "
                 "transactional ids live)", TXN_STATE_TOPIC, t->npartitions, nparts,
                 t->npartitions);
        nparts = t->npartitions;
    }
    struct txn_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->b = b;
    s->nparts = nparts;
    struct txn_config cfg = {
        .num_partitions = nparts,
        .max_timeout_ms = b->cfg.transaction_max_timeout_ms,
        .id_expiration_ms = b->cfg.transactional_id_expiration_ms,
        .log_value_version = 0,
        .max_transactional_ids = 1000000,
        .max_partitions_per_txn = 100000,
    };
    struct txn_env env = {
        .ctx = s,
        .now_ms = store_now_ms,
        .append = store_append,
        .send_markers = store_send_markers,
        .next_producer_id = store_next_producer_id,
    };
    s->tc = txn_create(&cfg, &env);
    if (s->tc == NULL) {
        free(s);
        return NULL;
    }
    /* On ZooKeeper nothing is owned: the cluster's leaders are not followed yet. */
    if (b->cluster == NULL)
        load_all(s);
    s->abort_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_abort_interval_ms,
                                      abort_fire, s);
    s->expire_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_expire_interval_ms,
                                       expire_fire, s);
    return s;
}

void txn_store_destroy(struct txn_store *s)
{
    if (s == NULL)
        return;
    if (s->abort_timer)
        broker_timer_cancel(s->b, s->abort_timer);
    if (s->expire_timer)
        broker_timer_cancel(s->b, s->expire_timer);
    txn_destroy(s->tc);
    free(s);
}

struct txn_coordinator *txn_store_coordinator(struct broker *b)
{
    return b->txns != NULL ? b->txns->tc : NULL;
}
