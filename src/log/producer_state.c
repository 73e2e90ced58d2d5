/* producer_state: the idempotence table and its snapshot files. A snapshot is in Kafka's
 * format (per entry: producer id, epoch, last sequence, last offset, offset delta, timestamp),
 * with one entry per batch of a producer's last 5, oldest first (Kafka writes its newest
 * only, and a reader keeping the last entry of an id reads the same state): after a restart a
 * retry of any of them is still answered with its offset, not OUT_OF_ORDER_SEQUENCE (fatal to
 * an idempotent producer whose retry reaches a restarted broker that leads). Batches written
 * after the snapshot are re-read from the log. */
#include "log/producer_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/fileio.h"
#include "log/txnindex.h"

#define SNAPSHOT_VERSION 1
#define SNAPSHOT_ENTRY_SIZE 46  /* 8+2+4+8+4+8+4+8 */
#define SNAPSHOT_MAX_ENTRIES 1000000
#define SNAPSHOT_HEADER_SIZE 10  /* version, crc, entry count */
#define SNAPSHOT_MAX_BYTES (SNAPSHOT_HEADER_SIZE + (size_t)SNAPSHOT_MAX_ENTRIES * SNAPSHOT_ENTRY_SIZE)

struct producer_entry *producer_state_find(const struct producer_state *ps, int64_t pid)
{
    for (struct producer_entry *e = ps->head; e; e = e->next)
        if (e->producer_id == pid)
            return e;
    return NULL;
}

/* Kafka's appendDataBatch: a producer with an ongoing transaction writes transactional
 * batches only (INVALID_TXN_STATE). */
static int txn_state_check(const struct producer_entry *e, const struct batch_header *h)
{
    if (e->txn_first_offset >= 0 && !(h->attributes & BATCH_ATTR_TRANSACTIONAL))
        return KERR_INVALID_TXN_STATE;
    return KERR_NONE;
}

int producer_state_check(const struct producer_state *ps, const struct batch_header *h,
                         int64_t *dup_offset)
{
    const struct producer_entry *e = producer_state_find(ps, h->producer_id);
    if (e == NULL)
        return KERR_NONE;
    if (h->producer_epoch < e->epoch)
        return KERR_INVALID_PRODUCER_EPOCH;
    if (h->producer_epoch > e->epoch)
        return h->base_sequence != 0 ? KERR_OUT_OF_ORDER_SEQUENCE_NUMBER : txn_state_check(e, h);
    int32_t last_seq = (int32_t)((uint32_t)h->base_sequence + (uint32_t)h->last_offset_delta);
    for (int i = 0; i < e->n; i++) {
        if (e->batches[i].first_seq == h->base_sequence && e->batches[i].last_seq == last_seq) {
            *dup_offset = e->batches[i].first_offset;
            return KERR_DUPLICATE_SEQUENCE_NUMBER;
        }
    }
    if (e->n > 0) {
        int32_t prev = e->batches[e->n - 1].last_seq;
        int32_t expected = prev == INT32_MAX ? 0 : prev + 1;
        if (h->base_sequence != expected)
            return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    return txn_state_check(e, h);
}

static struct producer_entry *entry_get(struct producer_state *ps, int64_t pid)
{
    struct producer_entry *e = producer_state_find(ps, pid);
    if (e != NULL)
        return e;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->producer_id = pid;
    e->txn_first_offset = -1;
    e->coordinator_epoch = -1;
    e->last_marker_offset = -1;
    e->next = ps->head;
    ps->head = e;
    ps->count++;
    return e;
}

static void push_batch(struct producer_entry *e, const struct producer_batch_meta *m)
{
    if (e->n == PRODUCER_BATCH_CACHE) {
        memmove(&e->batches[0], &e->batches[1], sizeof(e->batches[0]) * (PRODUCER_BATCH_CACHE - 1));
        e->n--;
    }
    e->batches[e->n++] = *m;
    e->last_timestamp = m->timestamp;
}

void producer_state_record(struct producer_state *ps, const struct batch_header *h,
                           int64_t first_offset)
{
    if (h->producer_id < 0)
        return;
    struct producer_entry *e = entry_get(ps, h->producer_id);
    if (e == NULL)
        return;
    if (h->producer_epoch != e->epoch)
        e->n = 0;
    e->epoch = h->producer_epoch;
    struct producer_batch_meta m = {
        .first_seq = h->base_sequence,
        .last_seq = (int32_t)((uint32_t)h->base_sequence + (uint32_t)h->last_offset_delta),
        .first_offset = first_offset,
        .last_offset = first_offset + h->last_offset_delta,
        .timestamp = h->max_timestamp,
    };
    push_batch(e, &m);
    if ((h->attributes & BATCH_ATTR_TRANSACTIONAL) && e->txn_first_offset < 0)
        e->txn_first_offset = first_offset; /* the transaction's first batch here */
    GREGOR_ASSERT(e->txn_first_offset <= first_offset);
    ps->changed = true;
}

int producer_state_check_marker(const struct producer_state *ps, int64_t pid, int16_t epoch,
                                int32_t coordinator_epoch)
{
    const struct producer_entry *e = producer_state_find(ps, pid);
    if (e == NULL)
        return KERR_NONE;
    if (epoch < e->epoch)
        return KERR_INVALID_PRODUCER_EPOCH;
    return e->coordinator_epoch > coordinator_epoch ? KERR_TRANSACTION_COORDINATOR_FENCED : KERR_NONE;
}

int64_t producer_state_first_unstable_offset(const struct producer_state *ps)
{
    int64_t first = INT64_MAX;
    for (const struct producer_entry *e = ps->head; e; e = e->next)
        if (e->txn_first_offset >= 0 && e->txn_first_offset < first)
            first = e->txn_first_offset;
    return first;
}

/* Kafka's lastStableOffset(completedTxn): the first offset of another ongoing transaction, or
 * the one after the marker when none is. */
static int64_t stable_after(const struct producer_state *ps, const struct producer_completed_txn *t)
{
    int64_t first = producer_state_first_unstable_offset(ps);
    return first == INT64_MAX ? t->last_offset + 1 : first;
}

void producer_state_end_txn(struct producer_state *ps, int64_t pid, int16_t epoch,
                            int32_t coordinator_epoch, int64_t marker_offset, bool commit,
                            struct producer_completed_txn *out)
{
    struct producer_entry *e = entry_get(ps, pid);
    out->producer_id = pid;
    out->last_offset = marker_offset;
    out->aborted = false;
    out->first_offset = -1;
    out->last_stable_offset = marker_offset + 1;
    if (e == NULL)
        return;
    out->first_offset = e->txn_first_offset;
    out->aborted = !commit && out->first_offset >= 0;
    GREGOR_ASSERT(out->first_offset <= marker_offset);
    if (epoch != e->epoch)
        e->n = 0; /* a marker of a newer epoch (the coordinator fenced it): sequences restart */
    e->epoch = epoch;
    e->txn_first_offset = -1;
    e->coordinator_epoch = coordinator_epoch;
    e->last_marker_offset = marker_offset;
    ps->changed = true;
    out->last_stable_offset = stable_after(ps, out);
}

void producer_state_on_replayed_abort(struct producer_state *ps, producer_state_abort_fn fn,
                                      void *ctx)
{
    ps->on_abort = fn;
    ps->on_abort_ctx = ctx;
}


void producer_state_free(struct producer_state *ps)
{
    struct producer_entry *e = ps->head;
    while (e) {
        struct producer_entry *n = e->next;
        free(e);
        e = n;
    }
    producer_state_abort_fn fn = ps->on_abort;
    void *ctx = ps->on_abort_ctx;
    memset(ps, 0, sizeof(*ps));
    ps->on_abort = fn; /* the owner's, for a reload */
    ps->on_abort_ctx = ctx;
}

/* Snapshot offsets present in dir, ascending. */
static int list_snapshots(const char *dir, int64_t *out, int max)
{
    DIR *d = fio_opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        char *end;
        if (strlen(de->d_name) != 29 || strcmp(de->d_name + 20, ".snapshot") != 0)
            continue;
        long long off = strtoll(de->d_name, &end, 10);
        if (end == de->d_name + 20 && off >= 0)
            out[n++] = off;
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static void snapshot_path(char *buf, size_t len, const char *dir, int64_t offset)
{
    snprintf(buf, len, "%s/%020" PRId64 ".snapshot", dir, offset);
}

int producer_state_snapshot_parse(struct producer_state *ps, const uint8_t *buf, size_t len,
                                  const char **why)
{
    GREGOR_ASSERT(ps->head == NULL && ps->count == 0);
    *why = NULL;
    if (len < SNAPSHOT_HEADER_SIZE) {
        *why = "shorter than its header";
        return -1;
    }
    if ((int16_t)be16_get(buf) != SNAPSHOT_VERSION) {
        *why = "unknown snapshot version";
        return -1;
    }
    uint32_t crc = be32_get(buf + 2);
    int32_t n = (int32_t)be32_get(buf + 6);
    /* As Kafka's, the CRC covers everything after it to the end of the file. */
    if (n < 0 || n > SNAPSHOT_MAX_ENTRIES ||
        len != SNAPSHOT_HEADER_SIZE + (size_t)n * SNAPSHOT_ENTRY_SIZE) {
        *why = "entry count does not match the file size";
        return -1;
    }
    if (crc32c(0, buf + 6, len - 6) != crc) {
        *why = "CRC is no longer valid";
        return -1;
    }
    int64_t prev_pid = -1;
    struct producer_entry *e = NULL;
    for (int32_t i = 0; i < n && *why == NULL; i++) {
        const uint8_t *p = buf + SNAPSHOT_HEADER_SIZE + (size_t)i * SNAPSHOT_ENTRY_SIZE;
        int64_t pid = (int64_t)be64_get(p);
        int16_t epoch = (int16_t)be16_get(p + 8);
        int32_t last_seq = (int32_t)be32_get(p + 10);
        int64_t last_offset = (int64_t)be64_get(p + 14);
        int32_t delta = (int32_t)be32_get(p + 22);
        int64_t ts = (int64_t)be64_get(p + 26);
        /* A CRC-valid file can still hold what no writer writes: an entry whose first offset
         * (last offset - delta) would be negative, or overflow. */
        if (pid < 0 || last_seq < -1 ||
            (last_seq >= 0 && (delta < 0 || last_offset < 0 || last_offset < delta))) {
            *why = "an entry with a negative producer id, sequence or offset";
            break;
        }
        if (pid != prev_pid && (e = entry_get(ps, pid)) == NULL) {
            *why = "out of memory";
            break;
        }
        e->coordinator_epoch = (int32_t)be32_get(p + 34);
        e->txn_first_offset = (int64_t)be64_get(p + 38);
        if (e->txn_first_offset < -1) {
            *why = "an entry with a negative ongoing transaction offset";
            break;
        }
        /* A producer's batches come one entry each, oldest first; a file written by Kafka has
         * one entry per producer. Another id or epoch starts the producer's list again. */
        bool more = pid == prev_pid && epoch == e->epoch && e->n > 0 &&
                    last_offset > e->batches[e->n - 1].last_offset;
        prev_pid = pid;
        e->epoch = epoch;
        if (!more)
            e->n = 0;
        if (last_seq >= 0) {
            struct producer_batch_meta m = {
                .first_seq = (int32_t)((uint32_t)last_seq - (uint32_t)delta),
                .last_seq = last_seq,
                .first_offset = last_offset - delta,
                .last_offset = last_offset,
                .timestamp = ts,
            };
            push_batch(e, &m);
        }
    }
    if (*why != NULL) {
        producer_state_free(ps);
        return -1;
    }
    return 0;
}

/* 0, -1 (unreadable: the file is kept) or -2 (not a snapshot: corrupt). */
static int read_snapshot(struct producer_state *ps, const char *path)
{
    char *image;
    size_t len;
    if (fio_read_file(path, SNAPSHOT_MAX_BYTES, &image, &len) < 0) {
        LOG_WARN("ProducerStateManager", "Could not read producer snapshot %s: %s", path,
                 strerror(errno));
        return errno == EFBIG ? -2 : -1;
    }
    const char *why;
    int rc = producer_state_snapshot_parse(ps, (const uint8_t *)image, len, &why);
    free(image);
    if (rc < 0) {
        LOG_WARN("ProducerStateManager", "Failed to load producer snapshot from %s: %s", path, why);
        return -2;
    }
    return 0;
}

/* A control batch's marker type (Kafka's ControlRecordType: 0 ABORT, 1 COMMIT) and
 * coordinator epoch: 0, or -1 when it is not a marker Kafka writes. */
int producer_state_parse_marker(const uint8_t *batch, size_t len, int16_t *type,
                                int32_t *coordinator_epoch)
{
    struct batch_record_iter it;
    if (batch_records_open(&it, batch, len, 4096) != KERR_NONE)
        return -1;
    struct batch_record r;
    int rc = -1;
    if (batch_records_next(&it, &r) == 1 && r.key_len >= 4 && be16_get(r.key) == 0) {
        *type = (int16_t)be16_get(r.key + 2);
        *coordinator_epoch = r.value_len >= 6 ? (int32_t)be32_get(r.value + 2) : -1;
        rc = *type == 0 || *type == 1 ? 0 : -1;
    }
    batch_records_close(&it);
    return rc;
}

/* Control batches are a few dozen bytes: a larger one is not a marker. */
#define MARKER_BATCH_MAX 4096

/* A marker found by the replay ends its producer's transaction as it did when written. */
static void replay_marker(struct producer_state *ps, int fd, off_t pos, const struct batch_header *h)
{
    int64_t size = batch_total_size(h);
    if (size > MARKER_BATCH_MAX)
        return;
    uint8_t buf[MARKER_BATCH_MAX];
    int16_t type;
    int32_t coordinator_epoch;
    if (fio_pread_full(fd, buf, (size_t)size, pos) != (ssize_t)size ||
        producer_state_parse_marker(buf, (size_t)size, &type, &coordinator_epoch) != 0)
        return;
    struct producer_completed_txn txn;
    producer_state_end_txn(ps, h->producer_id, h->producer_epoch, coordinator_epoch,
                           h->base_offset, type == 1, &txn);
    if (txn.aborted && ps->on_abort != NULL)
        ps->on_abort(ps->on_abort_ctx, &txn);
}

/* Replays batch headers of log from offset `from` to its end. */
static void replay_log(struct producer_state *ps, struct plog *log, int64_t from)
{
    int64_t end = plog_end_offset(log);
    int64_t offset = from < plog_start_offset(log) ? plog_start_offset(log) : from;
    while (offset < end) {
        struct log_slice s = {.fd = -1};
        if (plog_read(log, offset, 1 << 20, end, &s) != KERR_NONE || s.len == 0) {
            if (s.fd >= 0)
                close(s.fd);
            return;
        }
        off_t pos = s.position, stop = s.position + (off_t)s.len;
        int64_t next = offset;
        while (pos + BATCH_HEADER_SIZE <= stop) {
            uint8_t hb[BATCH_HEADER_SIZE];
            if (fio_pread_full(s.fd, hb, sizeof(hb), pos) != (ssize_t)sizeof(hb))
                break;
            struct batch_header h;
            batch_header_decode(hb, &h);
            if (h.length < BATCH_MIN_LENGTH)
                break;
            if (h.producer_id >= 0 && batch_last_offset(&h) >= offset &&
                !(h.attributes & BATCH_ATTR_CONTROL))
                producer_state_record(ps, &h, h.base_offset);
            else if (h.producer_id >= 0 && h.base_offset >= offset &&
                     (h.attributes & BATCH_ATTR_CONTROL))
                replay_marker(ps, s.fd, pos, &h);
            next = batch_last_offset(&h) + 1;
            pos += (off_t)batch_total_size(&h);
        }
        close(s.fd);
        if (next <= offset)
            return; /* no progress: damaged; recovery is plog's job */
        offset = next;
    }
}

int producer_state_load(struct producer_state *ps, const char *dir, struct plog *log)
{
    int64_t offs[64];
    int n = list_snapshots(dir, offs, 64);
    int64_t end = plog_end_offset(log);
    int64_t from = plog_start_offset(log);
    char path[1200];
    for (int i = n - 1; i >= 0; i--) {
        snapshot_path(path, sizeof(path), dir, offs[i]);
        if (offs[i] > end) {
            fio_unlink(path); /* past a truncated tail: describes batches that are gone */
            continue;
        }
        int rc = read_snapshot(ps, path);
        if (rc == 0) {
            from = offs[i];
            /* Never vouch for batches the log no longer holds. */
            for (struct producer_entry *e = ps->head; e; e = e->next) {
                while (e->n > 0 && e->batches[e->n - 1].last_offset >= end)
                    e->n--;
                if (e->txn_first_offset >= end)
                    e->txn_first_offset = -1;
            }
            break;
        }
        producer_state_free(ps);
        /* As Kafka's loadFromSnapshot: a corrupt snapshot is removed (else every restart
         * would read it again), and the next older one or the log rebuilds the state. */
        if (rc == -2 && fio_unlink(path) < 0)
            LOG_WARN("ProducerStateManager", "Could not remove corrupt producer snapshot %s: %s", path,
                     strerror(errno));
    }
    replay_log(ps, log, from);
    ps->changed = false;
    return 0;
}

int producer_state_truncated(struct producer_state *ps, const char *dir, struct plog *log)
{
    int64_t end = plog_end_offset(log);
    /* Batches are recorded in offset order, so a producer's batch in the tail is its newest. */
    bool in_tail = false;
    for (const struct producer_entry *e = ps->head; e != NULL && !in_tail; e = e->next)
        in_tail = (e->n > 0 && e->batches[e->n - 1].last_offset >= end) ||
                  e->last_marker_offset >= end || e->txn_first_offset >= end;
    if (in_tail) {
        producer_state_free(ps);
        return producer_state_load(ps, dir, log); /* removes the snapshots past the end */
    }
    int64_t offs[64];
    int n = list_snapshots(dir, offs, 64);
    char path[1200];
    for (int i = n - 1; i >= 0 && offs[i] > end; i--) {
        snapshot_path(path, sizeof(path), dir, offs[i]);
        fio_unlink(path);
    }
    return 0;
}

int producer_state_snapshot_encode(const struct producer_state *ps, uint8_t **out, size_t *out_len)
{
    size_t entries = 0;
    for (const struct producer_entry *e = ps->head; e; e = e->next)
        entries += e->n > 0 ? (size_t)e->n : 1;
    GREGOR_ASSERT(entries <= (size_t)ps->count * PRODUCER_BATCH_CACHE);
    if (entries > SNAPSHOT_MAX_ENTRIES)
        return -1;
    size_t blen = 4 + entries * SNAPSHOT_ENTRY_SIZE;
    uint8_t *buf = malloc(6 + blen);
    if (buf == NULL)
        return -1;
    uint8_t *body = buf + 6;
    be32_put(body, (uint32_t)entries);
    size_t i = 0;
    for (struct producer_entry *e = ps->head; e; e = e->next) {
        for (int k = 0; k < (e->n > 0 ? e->n : 1); k++, i++) {
            uint8_t *p = body + 4 + i * SNAPSHOT_ENTRY_SIZE;
            const struct producer_batch_meta *m = e->n > 0 ? &e->batches[k] : NULL;
            be64_put(p, (uint64_t)e->producer_id);
            be16_put(p + 8, (uint16_t)e->epoch);
            be32_put(p + 10, (uint32_t)(m ? m->last_seq : -1));
            be64_put(p + 14, (uint64_t)(m ? m->last_offset : -1));
            be32_put(p + 22, (uint32_t)(m ? (int32_t)(m->last_offset - m->first_offset) : 0));
            be64_put(p + 26, (uint64_t)(m ? m->timestamp : e->last_timestamp));
            be32_put(p + 34, (uint32_t)e->coordinator_epoch);
            be64_put(p + 38, (uint64_t)e->txn_first_offset);
        }
    }
    GREGOR_ASSERT(i == entries);
    be16_put(buf, SNAPSHOT_VERSION);
    be32_put(buf + 2, crc32c(0, body, blen));
    *out = buf;
    *out_len = 6 + blen;
    return 0;
}

/* The log was truncated since the image was taken. */
static bool truncated_since(const _Atomic uint64_t *truncations, uint64_t taken)
{
    return truncations != NULL && atomic_load(truncations) != taken;
}

int producer_state_snapshot_write(const char *dir, int64_t log_end, const uint8_t *buf, size_t len,
                                  const _Atomic uint64_t *truncations, uint64_t taken)
{
    char path[1200], tmp[1210];
    snapshot_path(path, sizeof(path), dir, log_end);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* The aborted transactions of markers below log_end are not replayed after this snapshot:
     * on disk before it is. */
    if (txnindex_sync_dir(dir) < 0)
        return -1;
    int rc = -1;
    int fd = fio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (fio_pwrite_full(fd, buf, len, 0) == 0 && fio_fsync(fd) == 0)
            rc = 0;
        fio_close(fd);
        if (rc == 0 && truncated_since(truncations, taken)) {
            fio_unlink(tmp);
            return 1;
        }
        if (rc == 0)
            rc = fio_rename(tmp, path);
        else
            fio_unlink(tmp);
    }
    if (rc != 0)
        return -1;
    /* Counted after the check above: either this sees it, or the truncation's removal of the
     * snapshots past its end comes after the rename and sees the file. */
    if (truncated_since(truncations, taken)) {
        fio_unlink(path);
        return 1;
    }
    int64_t offs[64];
    int n = list_snapshots(dir, offs, 64);
    for (int k = 0; k + 2 < n; k++) {
        snapshot_path(path, sizeof(path), dir, offs[k]);
        fio_unlink(path);
    }
    return 0;
}

int producer_state_snapshot(struct producer_state *ps, const char *dir, int64_t log_end)
{
    uint8_t *buf;
    size_t len;
    if (producer_state_snapshot_encode(ps, &buf, &len) < 0)
        return -1;
    int rc = producer_state_snapshot_write(dir, log_end, buf, len, NULL, 0);
    free(buf);
    if (rc != 0)
        return -1;
    ps->changed = false;
    return 0;
}
