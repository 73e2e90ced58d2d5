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
#include "partition/partition.h"

#define EPOCHS_FILE_MAX 4096

static void check_watermarks(const struct partition *p)
{
    int64_t start = plog_start_offset(p->log), end = plog_end_offset(p->log);
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

/* One node: what is written is visible at once (today's visibility, Kafka's with one replica);
 * with replication the high watermark becomes the in-sync replicas' minimum. */
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

int partition_epochs_read(struct partition *p)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", p->dir_path);
    char *text = NULL;
    size_t len = 0;
    p->nepochs = 0;
    if (fio_read_file(path, EPOCHS_FILE_MAX, &text, &len) < 0)
        return -1;
    int version = -1, count = -1, used = 0;
    const char *s = text;
    if (sscanf(s, "%d %d%n", &version, &count, &used) != 2 || version != 0 || count < 0) {
        free(text);
        return -1;
    }
    s += used;
    for (int i = 0; i < count; i++) {
        int32_t epoch;
        int64_t off;
        if (sscanf(s, "%" SCNd32 " %" SCNd64 "%n", &epoch, &off, &used) != 2 || epoch < 0 || off < 0 ||
            (p->nepochs > 0 && (epoch <= p->epochs[p->nepochs - 1].epoch ||
                                off < p->epochs[p->nepochs - 1].start_offset))) {
            free(text);
            p->nepochs = 0;
            return -1;
        }
        s += used;
        if (p->nepochs == PARTITION_EPOCHS_MAX) {
            memmove(p->epochs, p->epochs + 1, sizeof(p->epochs[0]) * (PARTITION_EPOCHS_MAX - 1));
            p->nepochs--;
        }
        p->epochs[p->nepochs++] = (struct epoch_entry){epoch, off};
    }
    free(text);
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

/* ---- lifecycle ---- */

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
    return e;
}

int partition_delete(struct partition *p)
{
    int e = plog_delete(p->log);
    p->log = NULL;
    producer_state_free(&p->producers);
    return e;
}

int partition_retire(struct partition *p, const char *to)
{
    int e = plog_retire(p->log, to);
    p->log = NULL;
    producer_state_free(&p->producers);
    return e;
}

void partition_set_config(struct partition *p, const struct log_config *cfg)
{
    plog_set_config(p->log, cfg);
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
            info->last_offset = -1;
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
    advance_high_watermark(p);
    return KERR_NONE;
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
    if (h.producer_id >= 0)
        producer_state_record(&p->producers, &h, info->base_offset);
    if (h.partition_leader_epoch >= 0 &&
        (p->nepochs == 0 || h.partition_leader_epoch > p->epochs[p->nepochs - 1].epoch)) {
        if (epochs_assign(p, h.partition_leader_epoch, info->base_offset) != KERR_NONE)
            return KERR_KAFKA_STORAGE_ERROR;
    }
    /* A follower's high watermark comes from its leader; on one node it is the log end. */
    advance_high_watermark(p);
    return KERR_NONE;
}

int partition_truncate_to(struct partition *p, int64_t offset)
{
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
int64_t partition_high_watermark(const struct partition *p) { return p->high_watermark; }
int64_t partition_last_stable_offset(const struct partition *p) { return p->high_watermark; }
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
