/* partition: see partition.h. The invariants a replica keeps are asserted where they change:
 * log start <= high watermark <= log end, offsets increasing on every append, epoch cache
 * entries increasing in both epoch and start offset. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/fileio.h"
#include "log/txnindex.h"
#include "partition/partition.h"

#define EPOCHS_FILE_MAX 4096

static void check_watermarks(struct partition *p)
{
    int64_t start = plog_start_offset(p->log), end = plog_end_offset(p->log);
    /* A replicated leader's high watermark may lag its log end; when retention or
     * DeleteRecords moved the log start past it, it moves up with it (as Kafka's log does). */
    if (p->high_watermark < start)
        p->high_watermark = start;
    GREGOR_ASSERT(p->high_watermark <= end);
    GREGOR_ASSERT(start <= p->high_watermark);
}

static void check_epochs(const struct partition *p)
{
    GREGOR_ASSERT(p->nepochs >= 0 && p->nepochs <= PARTITION_EPOCHS_MAX);
    for (int i = 1; i < p->nepochs; i++) {
        GREGOR_ASSERT(p->epochs[i].epoch > p->epochs[i - 1].epoch);
        GREGOR_ASSERT(p->epochs[i].start_offset >= p->epochs[i - 1].start_offset);
    }
}

/* One node (or a partition not led with replication): what is written is visible at once,
 * Kafka's visibility with one replica. A replicated leader uses partition_update_high_watermark. */
static void advance_high_watermark(struct partition *p)
{
    int64_t end = plog_end_offset(p->log);
    GREGOR_ASSERT(end >= p->high_watermark || plog_start_offset(p->log) > p->high_watermark);
    p->high_watermark = end;
    check_watermarks(p);
}

/* ---- epoch cache ---- */

int partition_epochs_write(const struct partition *p)
{
    char path[1200], buf[EPOCHS_FILE_MAX];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", p->dir_path);
    int n = snprintf(buf, sizeof(buf), "0\n%d\n", p->nepochs);
    for (int i = 0; i < p->nepochs && n < (int)sizeof(buf); i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%d %" PRId64 "\n", p->epochs[i].epoch,
                      p->epochs[i].start_offset);
    GREGOR_ASSERT(n < (int)sizeof(buf));
    return fio_write_file_atomic(path, buf, (size_t)n) < 0 ? KERR_KAFKA_STORAGE_ERROR : KERR_NONE;
}

/* One whole decimal number, nothing else ("+", spaces or a number past the type's range are
 * not, as Java's Integer.parseInt / Long.parseLong). */
static bool parse_number(const char *s, const char *end, int64_t min, int64_t max, int64_t *out)
{
    if (s == end || (*s == '-' ? end - s > 20 : end - s > 19))
        return false;
    bool neg = *s == '-';
    const char *p = neg ? s + 1 : s;
    if (p == end)
        return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)INT64_MAX)
            return false;
    }
    int64_t r = neg ? -(int64_t)v : (int64_t)v;
    if (r < min || r > max)
        return false;
    *out = r;
    return true;
}

/* The next line of [*s, end) as [start, line_end); false at the end. */
static bool next_line(const char **s, const char *end, const char **start, const char **line_end)
{
    if (*s >= end)
        return false;
    const char *nl = memchr(*s, '\n', (size_t)(end - *s));
    *start = *s;
    *line_end = nl != NULL ? nl : end;
    *s = nl != NULL ? nl + 1 : end;
    return true;
}

int partition_epochs_parse(const char *text, size_t len, struct epoch_entry *out, int *n,
                           const char **why)
{
    const char *s = text, *end = text + len, *a, *b;
    int64_t version, count;
    *n = 0;
    *why = NULL;
    if (!next_line(&s, end, &a, &b) || !parse_number(a, b, 0, 0, &version))
        *why = "unsupported version";
    else if (!next_line(&s, end, &a, &b) || !parse_number(a, b, 0, INT32_MAX, &count))
        *why = "bad entry count";
    int64_t seen = 0;
    while (*why == NULL && next_line(&s, end, &a, &b)) {
        /* As Kafka's LeaderEpochCheckpointFile: "<epoch> <start offset>" split on whitespace,
         * epochs and offsets increasing; an epoch is an int32, an offset an int64, neither
         * negative. */
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--; /* Java's split drops trailing empty fields */
        const char *sp = a;
        while (sp < b && *sp != ' ' && *sp != '\t')
            sp++;
        const char *second = sp;
        while (second < b && (*second == ' ' || *second == '\t'))
            second++;
        int64_t epoch, off;
        if (seen >= count)
            *why = "more entries than the count says";
        else if (!parse_number(a, sp, 0, INT32_MAX, &epoch) ||
                 !parse_number(second, b, 0, INT64_MAX, &off))
            *why = "malformed entry";
        else if (*n > 0 && (epoch <= out[*n - 1].epoch || off < out[*n - 1].start_offset))
            *why = "epochs or start offsets not increasing";
        if (*why != NULL)
            break;
        if (*n == PARTITION_EPOCHS_MAX) {
            memmove(out, out + 1, sizeof(out[0]) * (PARTITION_EPOCHS_MAX - 1));
            (*n)--;
        }
        out[(*n)++] = (struct epoch_entry){(int32_t)epoch, off};
        seen++;
    }
    if (*why == NULL && seen != count)
        *why = "fewer entries than the count says";
    if (*why != NULL) {
        *n = 0;
        return -1;
    }
    return 0;
}

int partition_epochs_read(struct partition *p)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", p->dir_path);
    char *text = NULL;
    size_t len = 0;
    p->nepochs = 0;
    if (fio_read_file(path, EPOCHS_FILE_MAX, &text, &len) < 0)
        return -1;
    const char *why;
    int rc = partition_epochs_parse(text, len, p->epochs, &p->nepochs, &why);
    free(text);
    if (rc < 0) {
        LOG_WARN("LogManager", "Ignoring corrupt %s: %s", path, why);
        return -1;
    }
    check_epochs(p);
    return 0;
}

/* Adds epoch -> start (a new epoch at the log end); the file is rewritten when it changed. */
static int epochs_assign(struct partition *p, int32_t epoch, int64_t start)
{
    if (p->nepochs > 0 && p->epochs[p->nepochs - 1].epoch >= epoch)
        return KERR_NONE;
    if (p->nepochs == PARTITION_EPOCHS_MAX) {
        memmove(p->epochs, p->epochs + 1, sizeof(p->epochs[0]) * (PARTITION_EPOCHS_MAX - 1));
        p->nepochs--;
    }
    p->epochs[p->nepochs++] = (struct epoch_entry){epoch, start};
    check_epochs(p);
    return partition_epochs_write(p);
}

int partition_become_leader(struct partition *p, int32_t epoch)
{
    GREGOR_ASSERT(epoch >= p->leader_epoch);
    p->leader_epoch = epoch;
    plog_set_leader_epoch(p->log, epoch);
    return epochs_assign(p, epoch, plog_end_offset(p->log));
}

void partition_epoch_end_offset(const struct partition *p, int32_t epoch, int32_t *out_epoch,
                                int64_t *end_offset)
{
    /* As Kafka's LeaderEpochFileCache.endOffsetFor. */
    *out_epoch = -1;
    *end_offset = -1;
    if (epoch < 0 || p->nepochs == 0)
        return;
    if (p->epochs[p->nepochs - 1].epoch == epoch) {
        *out_epoch = epoch;
        *end_offset = plog_end_offset(p->log);
        return;
    }
    int higher = -1, floor = -1;
    for (int i = 0; i < p->nepochs; i++) {
        if (p->epochs[i].epoch <= epoch)
            floor = i;
        else if (higher < 0)
            higher = i;
    }
    if (higher < 0)
        return; /* newer than any epoch known */
    *out_epoch = floor < 0 ? epoch : p->epochs[floor].epoch;
    *end_offset = p->epochs[higher].start_offset;
}

int32_t partition_epoch_for_offset(const struct partition *p, int64_t offset)
{
    for (int i = p->nepochs - 1; i >= 0; i--)
        if (p->epochs[i].start_offset <= offset)
            return p->epochs[i].epoch;
    return -1;
}

int partition_check_leader_epoch(const struct partition *p, int32_t current_leader_epoch)
{
    if (current_leader_epoch < 0)
        return KERR_NONE;
    if (current_leader_epoch > p->leader_epoch)
        return KERR_UNKNOWN_LEADER_EPOCH;
    if (current_leader_epoch < p->leader_epoch)
        return KERR_FENCED_LEADER_EPOCH;
    return KERR_NONE;
}

/* ---- transactions not yet below the high watermark ---- */

static void unreplicated_free(struct partition *p)
{
    free(p->unreplicated);
    p->unreplicated = NULL;
    p->nunreplicated = p->unreplicated_cap = 0;
}

/* Drops the entries whose marker the high watermark passed (and, after a truncation, those
 * whose marker is gone: the producer state has their transaction ongoing again). */
static void unreplicated_trim(struct partition *p)
{
    int64_t end = plog_end_offset(p->log);
    int k = 0;
    while (k < p->nunreplicated && p->unreplicated[k].marker_offset < p->high_watermark)
        k++;
    int n = p->nunreplicated;
    while (n > k && p->unreplicated[n - 1].marker_offset >= end)
        n--;
    if (k > 0 && n > k)
        memmove(p->unreplicated, p->unreplicated + k, (size_t)(n - k) * sizeof(*p->unreplicated));
    p->nunreplicated = n > k ? n - k : 0;
}

/* A completed (non-empty) transaction whose marker is at or past the high watermark. */
static void unreplicated_push(struct partition *p, int64_t first_offset, int64_t marker_offset)
{
    unreplicated_trim(p);
    if (first_offset < 0 || marker_offset < p->high_watermark)
        return;
    GREGOR_ASSERT(p->nunreplicated == 0 ||
                  p->unreplicated[p->nunreplicated - 1].marker_offset < marker_offset);
    if (p->nunreplicated == PARTITION_UNREPLICATED_TXNS_MAX) {
        LOG_WARN("ProducerStateManager", "%d transactions of %s await replication: the oldest no "
                 "longer holds the last stable offset", p->nunreplicated, p->dir_path);
        memmove(p->unreplicated, p->unreplicated + 1,
                (size_t)(p->nunreplicated - 1) * sizeof(*p->unreplicated));
        p->nunreplicated--;
    }
    if (p->nunreplicated == p->unreplicated_cap) {
        int cap = p->unreplicated_cap ? p->unreplicated_cap * 2 : 8;
        struct partition_unreplicated_txn *n = realloc(p->unreplicated, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return; /* out of memory: the LSO may pass it before its marker is replicated */
        p->unreplicated = n;
        p->unreplicated_cap = cap;
    }
    p->unreplicated[p->nunreplicated++] = (struct partition_unreplicated_txn){first_offset, marker_offset};
}

/* ---- lifecycle ---- */

/* An ABORT marker the producer state replayed at open (the log after its newest snapshot): its
 * .txnindex entry is written again when a crash lost it. */
static void replayed_abort(void *ctx, const struct producer_completed_txn *txn)
{
    struct partition *p = ctx;
    struct txnindex_entry e = {txn->producer_id, txn->first_offset, txn->last_offset,
                               txn->last_stable_offset};
    if (plog_txnindex_ensure(p->log, &e) != KERR_NONE)
        LOG_WARN("ProducerStateManager", "cannot rebuild the aborted transaction at %" PRId64
                 " in %s", txn->last_offset, p->dir_path);
}

int partition_open(struct partition *p, const char *topic_name, const struct log_config *cfg,
                   int64_t recovery_point, int64_t log_start_offset)
{
    int e = plog_open(p->dir_path, topic_name, p->index, cfg, recovery_point, log_start_offset,
                      &p->log);
    if (e != KERR_NONE)
        return e;
    int64_t start = plog_start_offset(p->log);
    if (partition_epochs_read(p) != 0 || p->nepochs == 0) {
        /* Missing (a new partition) or unreadable: this node has led it in epoch 0 from the
         * log start (what the file held before the partition layer existed). */
        p->nepochs = 0;
        p->epochs[p->nepochs++] = (struct epoch_entry){0, start};
        if (partition_epochs_write(p) != KERR_NONE)
            LOG_WARN("LogManager", "cannot write %s/leader-epoch-checkpoint: %s", p->dir_path,
                     strerror(errno));
    }
    p->leader_epoch = p->epochs[p->nepochs - 1].epoch;
    plog_set_leader_epoch(p->log, p->leader_epoch);
    producer_state_on_replayed_abort(&p->producers, replayed_abort, p);
    producer_state_load(&p->producers, p->dir_path, p->log);
    p->high_watermark = plog_end_offset(p->log);
    check_watermarks(p);
    return KERR_NONE;
}

int partition_close(struct partition *p)
{
    if (p->producers.changed)
        producer_state_snapshot(&p->producers, p->dir_path, plog_end_offset(p->log));
    int e = plog_close(p->log);
    p->log = NULL;
    producer_state_free(&p->producers);
    unreplicated_free(p);
    return e;
}

int partition_delete(struct partition *p)
{
    int e = plog_delete(p->log);
    p->log = NULL;
    producer_state_free(&p->producers);
    unreplicated_free(p);
    return e;
}

int partition_retire(struct partition *p, const char *to)
{
    int e = plog_retire(p->log, to);
    p->log = NULL;
    producer_state_free(&p->producers);
    unreplicated_free(p);
    return e;
}

void partition_set_config(struct partition *p, const struct log_config *cfg)
{
    plog_set_config(p->log, cfg);
}

/* A leadership ended, or the log truncated: acks=all waits of before are not this log's. */
static void leadership_ended(struct partition *p)
{
    p->leaderships = (p->leaderships + 1) & INT32_MAX;
}

/* ---- appends ---- */

int partition_append_as_leader(struct partition *p, uint8_t *batch, size_t len, int64_t now_ms,
                               struct log_append_info *info, bool *dup)
{
    *dup = false;
    if (len < BATCH_HEADER_SIZE)
        return KERR_CORRUPT_MESSAGE;
    struct batch_header h;
    batch_header_decode(batch, &h);
    bool idempotent = h.producer_id >= 0;
    if (idempotent) {
        int64_t dup_offset = -1;
        int e = producer_state_check(&p->producers, &h, &dup_offset);
        if (e == KERR_DUPLICATE_SEQUENCE_NUMBER) {
            *dup = true; /* a retry: answered as success, not appended again */
            info->base_offset = dup_offset;
            info->last_offset = dup_offset + h.last_offset_delta; /* the same records */
            GREGOR_ASSERT(info->last_offset < plog_end_offset(p->log));
            info->log_append_time = -1;
            info->log_start_offset = plog_start_offset(p->log);
            return KERR_NONE;
        }
        if (e != KERR_NONE)
            return e;
    }
    int64_t end = plog_end_offset(p->log);
    int e = plog_append(p->log, batch, len, now_ms, info);
    if (e != KERR_NONE)
        return e;
    GREGOR_ASSERT(info->base_offset == end && info->last_offset >= info->base_offset);
    if (idempotent)
        producer_state_record(&p->producers, &h, info->base_offset);
    if (p->repl.leading)
        partition_update_high_watermark(p, now_ms); /* an ISR of the leader alone moves it */
    else
        advance_high_watermark(p);
    return KERR_NONE;
}

/* A replicated marker ends its producer's transaction here as at its leader (the aborted one
 * recorded in this replica's .txnindex). */
static void follow_marker(struct partition *p, const uint8_t *batch, size_t len,
                          const struct batch_header *h)
{
    int16_t type;
    int32_t coordinator_epoch;
    if (producer_state_parse_marker(batch, len, &type, &coordinator_epoch) != 0)
        return;
    struct producer_completed_txn txn;
    producer_state_end_txn(&p->producers, h->producer_id, h->producer_epoch, coordinator_epoch,
                           h->base_offset, type == 1, &txn);
    unreplicated_push(p, txn.first_offset, txn.last_offset);
    struct txnindex_entry te = {txn.producer_id, txn.first_offset, txn.last_offset,
                                txn.last_stable_offset};
    if (txn.aborted && plog_txnindex_append(p->log, &te) != KERR_NONE)
        LOG_WARN("ReplicaFetcher", "cannot record the aborted transaction at %" PRId64 " in %s",
                 txn.last_offset, p->dir_path);
}

int partition_append_as_follower(struct partition *p, const uint8_t *batch, size_t len,
                                 struct log_append_info *info)
{
    int64_t end = plog_end_offset(p->log);
    int e = plog_append_follower(p->log, batch, len, info);
    if (e != KERR_NONE)
        return e;
    GREGOR_ASSERT(info->base_offset == end && info->last_offset >= info->base_offset);
    struct batch_header h;
    batch_header_decode(batch, &h);
    if (h.producer_id >= 0 && (h.attributes & BATCH_ATTR_CONTROL))
        follow_marker(p, batch, len, &h);
    else if (h.producer_id >= 0)
        producer_state_record(&p->producers, &h, info->base_offset);
    if (h.partition_leader_epoch >= 0 &&
        (p->nepochs == 0 || h.partition_leader_epoch > p->epochs[p->nepochs - 1].epoch)) {
        if (epochs_assign(p, h.partition_leader_epoch, info->base_offset) != KERR_NONE)
            return KERR_KAFKA_STORAGE_ERROR;
    }
    /* A follower's high watermark comes from its leader only (partition_follow_leader_marks,
     * after the response's batches): moving it to the log end here showed a follower's
     * consumers (KIP-392) records its leader had not committed when a later batch of the same
     * response failed to append. */
    return KERR_NONE;
}

int partition_truncate_to(struct partition *p, int64_t offset)
{
    leadership_ended(p); /* whatever was appended past offset is no longer what a wait meant */
    int e = plog_truncate_to(p->log, offset);
    if (e != KERR_NONE)
        return e;
    int64_t end = plog_end_offset(p->log);
    int kept = p->nepochs;
    while (kept > 1 && p->epochs[kept - 1].start_offset >= end)
        kept--;
    if (kept != p->nepochs) {
        p->nepochs = kept;
        if (partition_epochs_write(p) != KERR_NONE)
            return KERR_KAFKA_STORAGE_ERROR;
    }
    if (p->high_watermark > end)
        p->high_watermark = end;
    unreplicated_trim(p);
    atomic_fetch_add(&p->truncations, 1); /* before the snapshots past the end go */
    /* A follower that keeps the sequences of batches it truncated would, once leader, answer a
     * retry of one DUPLICATE: acknowledged, and stored nowhere. */
    producer_state_truncated(&p->producers, p->dir_path, p->log);
    for (const struct producer_entry *pe = p->producers.head; pe != NULL; pe = pe->next)
        GREGOR_ASSERT(pe->n == 0 || pe->batches[pe->n - 1].last_offset < end);
    check_watermarks(p);
    check_epochs(p);
    return KERR_NONE;
}

/* ---- reads and watermarks ---- */

int partition_read(struct partition *p, int64_t offset, int32_t max_bytes, struct log_slice *out)
{
    check_watermarks(p);
    return plog_read(p->log, offset, max_bytes, p->high_watermark, out);
}

int partition_read_log(struct partition *p, int64_t offset, int32_t max_bytes, struct log_slice *out)
{
    return plog_read(p->log, offset, max_bytes, plog_end_offset(p->log), out);
}

int64_t partition_log_start(const struct partition *p) { return plog_start_offset(p->log); }
int64_t partition_log_end(const struct partition *p) { return plog_end_offset(p->log); }
int64_t partition_size_bytes(const struct partition *p) { return plog_size_bytes(p->log); }
int64_t partition_high_watermark(const struct partition *p) { return p->high_watermark; }
int64_t partition_last_stable_offset(const struct partition *p)
{
    int64_t first = producer_state_first_unstable_offset(&p->producers);
    for (int i = 0; i < p->nunreplicated; i++) {
        const struct partition_unreplicated_txn *u = &p->unreplicated[i];
        if (u->marker_offset >= p->high_watermark && u->first_offset < first)
            first = u->first_offset;
    }
    int64_t lso = first < p->high_watermark ? first : p->high_watermark;
    GREGOR_ASSERT(lso >= 0 && lso <= p->high_watermark);
    return lso;
}

int partition_read_committed(struct partition *p, int64_t offset, int32_t max_bytes,
                             struct log_slice *out)
{
    check_watermarks(p);
    return plog_read(p->log, offset, max_bytes, partition_last_stable_offset(p), out);
}

int partition_collect_aborted(struct partition *p, int64_t fetch_offset, int64_t upper,
                              struct txnindex_entry *out, int max, int *n)
{
    return plog_collect_aborted(p->log, fetch_offset, upper, out, max, n);
}

/* Kafka's EndTransactionMarker as a control batch: one record, key (version 0, type 0 ABORT /
 * 1 COMMIT), value (version 0, coordinator epoch), baseSequence -1. */
static int marker_batch(int64_t pid, int16_t epoch, int32_t coordinator_epoch, bool commit,
                        int64_t now_ms, uint8_t **out, size_t *len)
{
    uint8_t key[4], value[6];
    be16_put(key, 0);
    be16_put(key + 2, commit ? 1 : 0);
    be16_put(value, 0);
    be32_put(value + 2, (uint32_t)coordinator_epoch);
    struct batch_builder bb;
    batch_builder_init(&bb, 1024);
    bb.producer_id = pid;
    bb.producer_epoch = epoch;
    bb.base_sequence = -1;
    bb.attributes = BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL;
    int e = batch_builder_add(&bb, now_ms, key, sizeof(key), value, sizeof(value), NULL, 0);
    if (e == KERR_NONE)
        e = batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, out, len);
    batch_builder_free(&bb);
    return e;
}

int partition_write_txn_marker(struct partition *p, int64_t pid, int16_t epoch,
                               int32_t coordinator_epoch, bool commit, int64_t now_ms,
                               struct log_append_info *info)
{
    int e = producer_state_check_marker(&p->producers, pid, epoch, coordinator_epoch);
    if (e != KERR_NONE)
        return e;
    uint8_t *batch;
    size_t len;
    e = marker_batch(pid, epoch, coordinator_epoch, commit, now_ms, &batch, &len);
    if (e != KERR_NONE)
        return e;
    int64_t end = plog_end_offset(p->log);
    e = plog_append_marker(p->log, batch, len, now_ms, info);
    free(batch);
    if (e != KERR_NONE)
        return e;
    GREGOR_ASSERT(info->base_offset == end && info->last_offset == end);
    struct producer_completed_txn txn;
    producer_state_end_txn(&p->producers, pid, epoch, coordinator_epoch, info->base_offset,
                           commit, &txn);
    unreplicated_push(p, txn.first_offset, txn.last_offset);
    if (txn.aborted) { /* a non-empty transaction's ABORT */
        struct txnindex_entry te = {pid, txn.first_offset, txn.last_offset, txn.last_stable_offset};
        e = plog_txnindex_append(p->log, &te);
        if (e != KERR_NONE)
            return e;
    }
    if (p->repl.leading)
        partition_update_high_watermark(p, now_ms);
    else
        advance_high_watermark(p);
    return KERR_NONE;
}
int64_t partition_durable_offset(const struct partition *p) { return plog_flushed_offset(p->log); }

int partition_delete_records(struct partition *p, int64_t offset, int64_t *new_start)
{
    if (offset == -1)
        offset = p->high_watermark;
    if (offset > p->high_watermark)
        return KERR_OFFSET_OUT_OF_RANGE;
    int e = plog_delete_records(p->log, offset, new_start);
    check_watermarks(p);
    return e;
}

int partition_offset_for_timestamp(struct partition *p, int64_t ts, int64_t *offset, int64_t *found_ts)
{
    return plog_offset_for_timestamp(p->log, ts, offset, found_ts);
}

int partition_segment_offsets(const struct partition *p, int64_t *out, int max)
{
    return plog_segment_offsets(p->log, out, max);
}

int partition_segment_count(const struct partition *p) { return plog_segment_count(p->log); }

int partition_flush(struct partition *p) { return plog_flush(p->log); }

bool partition_flush_due(const struct partition *p, int64_t now_ms) { return plog_flush_due(p->log, now_ms); }

bool partition_roll_flush_due(const struct partition *p) { return plog_roll_flush_due(p->log); }

int partition_maybe_roll(struct partition *p, int64_t now_ms) { return plog_maybe_roll(p->log, now_ms); }

void partition_retention_detach(struct partition *p, int64_t now_ms, struct plog_trash **trash)
{
    plog_retention_detach(p->log, now_ms, trash);
}

void partition_trash_dispose(struct plog_trash *trash) { plog_trash_dispose(trash); }

void partition_release_fds(struct partition *p) { plog_release_fds(p->log); }

/* ---- leading a replicated partition ---- */

static struct partition_follower *follower_find(struct partition *p, int32_t id)
{
    for (int i = 0; i < p->repl.nfollowers; i++)
        if (p->repl.followers[i].id == id)
            return &p->repl.followers[i];
    return NULL;
}

static bool ids_contain(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void check_replication(const struct partition *p)
{
    const struct partition_replication *r = &p->repl;
    GREGOR_ASSERT(r->nfollowers >= 0 && r->nfollowers < PARTITION_REPLICAS_MAX);
    GREGOR_ASSERT(r->nisr >= 0 && r->nisr <= PARTITION_REPLICAS_MAX);
    GREGOR_ASSERT(r->ncommitted >= 0 && r->ncommitted <= PARTITION_REPLICAS_MAX);
    /* The maximal ISR holds every committed member (a shrink waits for its commit). */
    for (int i = 0; i < r->ncommitted; i++)
        GREGOR_ASSERT(ids_contain(r->isr, r->nisr, r->committed[i]));
}

static void follower_reset(struct partition_follower *f, int32_t id, bool in_isr, int64_t now_ms)
{
    *f = (struct partition_follower){.id = id, .log_end = -1, .last_fetch_ms = 0,
                                     .last_fetch_leader_end = -1,
                                     .last_caught_up_ms = in_isr ? now_ms : 0};
}

void partition_set_assignment(struct partition *p, const int32_t *replicas, int nreplicas)
{
    struct partition_replication *r = &p->repl;
    struct partition_follower next[PARTITION_REPLICAS_MAX];
    int n = 0;
    for (int i = 0; i < nreplicas && n < PARTITION_REPLICAS_MAX - 1; i++) {
        if (replicas[i] == r->self || ids_contain(replicas, i, replicas[i]))
            continue;
        struct partition_follower *had = follower_find(p, replicas[i]);
        if (had != NULL)
            next[n++] = *had;
        else
            follower_reset(&next[n++], replicas[i], false, 0);
    }
    memcpy(r->followers, next, sizeof(next[0]) * (size_t)n);
    r->nfollowers = n;
}

static void isr_copy(int32_t *dst, int *ndst, const int32_t *src, int n)
{
    int k = 0;
    for (int i = 0; i < n && k < PARTITION_REPLICAS_MAX; i++)
        if (!ids_contain(dst, k, src[i]))
            dst[k++] = src[i];
    *ndst = k;
}

void partition_lead_replicated(struct partition *p, int32_t self, const int32_t *replicas,
                               int nreplicas, const int32_t *isr, int nisr, int64_t now_ms,
                               int64_t lag_time_max_ms)
{
    struct partition_replication *r = &p->repl;
    memset(r, 0, sizeof(*r));
    r->leading = true;
    r->self = self;
    r->lag_time_max_ms = lag_time_max_ms;
    partition_set_assignment(p, replicas, nreplicas);
    for (int i = 0; i < r->nfollowers; i++)
        follower_reset(&r->followers[i], r->followers[i].id, ids_contain(isr, nisr, r->followers[i].id),
                       now_ms);
    partition_set_isr(p, isr, nisr);
    check_watermarks(p);
}

void partition_stop_leading(struct partition *p)
{
    leadership_ended(p);
    memset(&p->repl, 0, sizeof(p->repl));
}

void partition_set_isr(struct partition *p, const int32_t *isr, int nisr)
{
    struct partition_replication *r = &p->repl;
    isr_copy(r->committed, &r->ncommitted, isr, nisr);
    memcpy(r->isr, r->committed, sizeof(r->isr[0]) * (size_t)r->ncommitted);
    r->nisr = r->ncommitted;
    r->isr_inflight = false;
    check_replication(p);
}

bool partition_in_isr(const struct partition *p, int32_t id)
{
    return ids_contain(p->repl.isr, p->repl.nisr, id);
}

bool partition_is_follower(const struct partition *p, int32_t id)
{
    for (int i = 0; i < p->repl.nfollowers; i++)
        if (p->repl.followers[i].id == id)
            return true;
    return false;
}

int partition_follower_fetched(struct partition *p, int32_t id, int64_t fetch_offset,
                               int64_t now_ms, bool epoch_given)
{
    struct partition_follower *f = p->repl.leading ? follower_find(p, id) : NULL;
    if (f == NULL)
        return epoch_given ? KERR_UNKNOWN_LEADER_EPOCH : KERR_NOT_LEADER_OR_FOLLOWER;
    int64_t leader_end = plog_end_offset(p->log);
    GREGOR_ASSERT(fetch_offset >= 0 && fetch_offset <= leader_end);
    /* Kafka's Replica.updateFetchState. */
    int64_t caught = f->last_caught_up_ms;
    if (fetch_offset >= leader_end)
        caught = now_ms > caught ? now_ms : caught;
    else if (fetch_offset >= f->last_fetch_leader_end && f->last_fetch_leader_end >= 0)
        caught = f->last_fetch_ms > caught ? f->last_fetch_ms : caught;
    f->last_caught_up_ms = caught;
    f->log_end = fetch_offset;
    if (leader_end > f->last_fetch_leader_end)
        f->last_fetch_leader_end = leader_end;
    f->last_fetch_ms = now_ms;
    return KERR_NONE;
}

/* Kafka's ReplicaState.isCaughtUp. */
static bool follower_caught_up(const struct partition *p, const struct partition_follower *f,
                               int64_t now_ms)
{
    return f->log_end == plog_end_offset(p->log) ||
           (f->last_caught_up_ms > 0 && now_ms - f->last_caught_up_ms <= p->repl.lag_time_max_ms);
}

bool partition_update_high_watermark(struct partition *p, int64_t now_ms)
{
    const struct partition_replication *r = &p->repl;
    GREGOR_ASSERT(r->leading);
    int64_t end = plog_end_offset(p->log);
    int64_t hw = end;
    for (int i = 0; i < r->nfollowers; i++) {
        const struct partition_follower *f = &r->followers[i];
        bool counts = ids_contain(r->isr, r->nisr, f->id) ||
                      (f->log_end >= 0 && follower_caught_up(p, f, now_ms));
        if (!counts)
            continue;
        int64_t le = f->log_end < 0 ? 0 : f->log_end;
        if (le < hw)
            hw = le;
    }
    if (hw <= p->high_watermark)
        return false; /* never back */
    GREGOR_ASSERT(hw <= end);
    p->high_watermark = hw;
    check_watermarks(p);
    return true;
}

int32_t partition_leadership(const struct partition *p)
{
    return p->repl.leading ? p->leaderships : -1;
}

bool partition_acks_all_settled(const struct partition *p, int32_t leadership, int64_t end,
                                int *error)
{
    *error = KERR_NONE;
    if (!p->repl.leading || p->leaderships != leadership) {
        *error = KERR_NOT_LEADER_OR_FOLLOWER;
        return true;
    }
    GREGOR_ASSERT(end <= plog_end_offset(p->log)); /* truncated only once no longer leading */
    return p->high_watermark >= end;
}

static int64_t leader_epoch_start(const struct partition *p)
{
    if (p->nepochs > 0 && p->epochs[p->nepochs - 1].epoch == p->leader_epoch)
        return p->epochs[p->nepochs - 1].start_offset;
    return plog_end_offset(p->log); /* not stamped: none can join before it is */
}

bool partition_isr_expand(struct partition *p, int32_t *out, int *nout)
{
    struct partition_replication *r = &p->repl;
    if (!r->leading || r->isr_inflight)
        return false;
    int n = r->nisr;
    memcpy(out, r->isr, sizeof(out[0]) * (size_t)n);
    int64_t epoch_start = leader_epoch_start(p);
    for (int i = 0; i < r->nfollowers; i++) {
        const struct partition_follower *f = &r->followers[i];
        /* Kafka's isFollowerInSync: at the high watermark and inside this leader's epoch. */
        if (!ids_contain(out, n, f->id) && f->log_end >= p->high_watermark &&
            f->log_end >= epoch_start && n < PARTITION_REPLICAS_MAX)
            out[n++] = f->id;
    }
    if (n == r->nisr)
        return false;
    memcpy(r->isr, out, sizeof(out[0]) * (size_t)n); /* maximal ISR: holds the HW at once */
    r->nisr = n;
    r->isr_inflight = true;
    *nout = n;
    check_replication(p);
    return true;
}

bool partition_isr_shrink(struct partition *p, int64_t now_ms, int32_t *out, int *nout)
{
    struct partition_replication *r = &p->repl;
    if (!r->leading || r->isr_inflight)
        return false;
    int n = 0;
    for (int i = 0; i < r->nisr; i++) {
        const struct partition_follower *f = r->isr[i] == r->self ? NULL : follower_find(p, r->isr[i]);
        /* Kafka's getOutOfSyncReplicas: a member not assigned any more is out too. */
        bool out_of_sync = r->isr[i] != r->self && (f == NULL || !follower_caught_up(p, f, now_ms));
        if (!out_of_sync)
            out[n++] = r->isr[i];
    }
    if (n == r->nisr)
        return false;
    if (!ids_contain(out, n, r->self))
        return false; /* the leader is always in its own ISR: nothing to shrink to */
    r->isr_inflight = true; /* the maximal ISR keeps them until the shrink is committed */
    *nout = n;
    return true;
}

void partition_isr_write_done(struct partition *p, bool ok, const int32_t *isr, int nisr)
{
    struct partition_replication *r = &p->repl;
    if (!r->leading)
        return;
    if (ok) {
        partition_set_isr(p, isr, nisr);
        return;
    }
    memcpy(r->isr, r->committed, sizeof(r->isr[0]) * (size_t)r->ncommitted);
    r->nisr = r->ncommitted;
    r->isr_inflight = false;
    check_replication(p);
}

void partition_restore_high_watermark(struct partition *p, int64_t hw)
{
    int64_t end = plog_end_offset(p->log);
    if (hw < 0)
        return; /* not listed: the log end, as a partition opened on one node */
    p->high_watermark = hw < end ? hw : end;
    check_watermarks(p);
}

int partition_diverging_epoch(const struct partition *p, int32_t last_fetched_epoch,
                              int64_t fetch_offset, bool *diverged, int32_t *epoch,
                              int64_t *end_offset)
{
    *diverged = false;
    *epoch = -1;
    *end_offset = -1;
    if (last_fetched_epoch < 0)
        return KERR_NONE;
    int32_t e;
    int64_t end;
    partition_epoch_end_offset(p, last_fetched_epoch, &e, &end);
    if (e < 0 || end < 0)
        return KERR_OFFSET_OUT_OF_RANGE;
    if (fetch_offset < plog_start_offset(p->log))
        return KERR_OFFSET_OUT_OF_RANGE;
    if (e < last_fetched_epoch || end < fetch_offset) {
        *diverged = true;
        *epoch = e;
        *end_offset = end;
    }
    return KERR_NONE;
}

/* ---- log compaction ---- */

static void clean_config(const struct log_config *cfg, struct cleaner_config *cc)
{
    cleaner_config_defaults(cc);
    cc->min_cleanable_dirty_ratio = cfg->min_cleanable_dirty_ratio;
    cc->min_compaction_lag_ms = cfg->min_compaction_lag_ms;
    cc->max_compaction_lag_ms = cfg->max_compaction_lag_ms;
    cc->delete_retention_ms = cfg->delete_retention_ms;
}

int partition_clean_prepare(const struct partition *p, const struct log_config *cfg,
                            struct partition_clean_input *in)
{
    memset(in, 0, sizeof(*in));
    /* Kafka's firstUncleanableOffset <= LSO: an open transaction's records are not cleaned. */
    in->high_watermark = partition_last_stable_offset(p);
    clean_config(cfg, &in->cc);
    GREGOR_ASSERT(p->producers.count >= 0);
    if (p->producers.count == 0)
        return KERR_NONE;
    in->producers = calloc((size_t)p->producers.count, sizeof(*in->producers));
    if (in->producers == NULL)
        return KERR_UNKNOWN_SERVER_ERROR;
    for (const struct producer_entry *e = p->producers.head; e != NULL; e = e->next) {
        if (e->n == 0)
            continue;
        GREGOR_ASSERT(in->nproducers < p->producers.count);
        in->producers[in->nproducers].producer_id = e->producer_id;
        in->producers[in->nproducers].last_data_offset = e->batches[e->n - 1].last_offset;
        in->nproducers++;
    }
    return KERR_NONE;
}

void partition_clean_input_free(struct partition_clean_input *in)
{
    free(in->producers);
    in->producers = NULL;
    in->nproducers = 0;
}

void partition_clean_examine(struct partition *p, int64_t checkpoint, int64_t high_watermark,
                             const struct log_config *cfg, int64_t now_ms,
                             struct cleaner_dirty *out)
{
    struct cleaner_config cc;
    clean_config(cfg, &cc);
    cleaner_examine(p->log, checkpoint, high_watermark, &cc, now_ms, out);
}

int partition_clean(struct partition *p, int64_t checkpoint, const struct partition_clean_input *in,
                    const struct cleaner_job *job, bool force, struct cleaner_dirty *d,
                    struct cleaner_result *out)
{
    memset(out, 0, sizeof(*out));
    cleaner_examine(p->log, checkpoint, in->high_watermark, &in->cc, job->now_ms, d);
    out->next_dirty_offset = d->first_dirty_offset;
    if ((!d->needs_cleaning && !force) || d->cleanable_bytes == 0)
        return KERR_NONE;
    GREGOR_ASSERT(d->first_dirty_offset <= d->first_uncleanable_offset);
    struct cleaner_job j = *job;
    j.producers = in->producers;
    j.nproducers = in->nproducers;
    return cleaner_clean(p->log, d, &in->cc, &j, out);
}
