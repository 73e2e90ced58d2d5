/* producer_state: idempotent-producer state of one partition — per producer id the epoch and
 * the last 5 batches' sequence ranges (Kafka's ProducerStateManager), kept across restarts by
 * Kafka-format `<offset>.snapshot` files plus a scan of the batches written after them. */
#ifndef GREGOR_LOG_PRODUCER_STATE_H
#define GREGOR_LOG_PRODUCER_STATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "log/batch.h"
#include "log/log.h"

#define PRODUCER_BATCH_CACHE 5

struct producer_batch_meta {
    int32_t first_seq, last_seq;
    int64_t first_offset, last_offset;
    int64_t timestamp;
};

struct producer_entry {
    int64_t producer_id;
    int16_t epoch;
    int n;                           /* valid entries in batches, oldest first */
    struct producer_batch_meta batches[PRODUCER_BATCH_CACHE];
    int64_t last_timestamp;
    struct producer_entry *next;
};

struct producer_state {
    struct producer_entry *head;
    int count;
    bool changed;                    /* since the last snapshot */
};

/* Checks a batch's sequence against the state: KERR_NONE (append it),
 * KERR_DUPLICATE_SEQUENCE_NUMBER with *dup_offset (a retry of one of the last 5: answer with
 * its offset, do not append), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER or KERR_INVALID_PRODUCER_EPOCH. */
int producer_state_check(const struct producer_state *ps, const struct batch_header *h,
                         int64_t *dup_offset);
/* Records an appended batch (h as written, first_offset its base offset). */
void producer_state_record(struct producer_state *ps, const struct batch_header *h,
                           int64_t first_offset);
struct producer_entry *producer_state_find(const struct producer_state *ps, int64_t pid);

/* A snapshot file's bytes (Kafka's format, CRC-checked over the whole file) into ps, which
 * must be empty: 0, or -1 with *why saying what is wrong (ps then empty again). A pure
 * function, so the fuzz target can drive it without files. */
int producer_state_snapshot_parse(struct producer_state *ps, const uint8_t *buf, size_t len,
                                  const char **why);
/* Loads the newest snapshot in dir at or below log end, deletes stale and corrupt ones, then replays the
 * batches of log from the snapshot's offset to the log end. */
int producer_state_load(struct producer_state *ps, const char *dir, struct plog *log);
/* After the log was truncated (to its end now): the state of the log as it ends, as Kafka's
 * truncateAndReload. Snapshots past the end are removed; when a producer's newest batch was in
 * the tail, the state is loaded again as producer_state_load (the newest snapshot at or below
 * the end, then the batches after it); when none was, nothing in the state described the tail
 * and it stays as it is. */
int producer_state_truncated(struct producer_state *ps, const char *dir, struct plog *log);
/* Writes <dir>/<log end>.snapshot (atomically) and removes all but the newest two. */
int producer_state_snapshot(struct producer_state *ps, const char *dir, int64_t log_end);
/* The same in two steps, so the file work can leave the event loop: the encode (loop thread,
 * reads ps) gives a malloc'ed image; the write (any thread, touches only the files in dir) puts
 * it at <dir>/<log_end>.snapshot atomically and removes all but the newest two.
 * A truncation between the two (the loop thread counts it in *truncations, then removes the
 * snapshots past its new end) leaves an image of batches that may be gone, which, once the log
 * grew past log_end again, a load would take for the log's state: with truncations given and
 * no longer `taken` (its value at the encode) the image is not written, or is removed again
 * when the count moved while it was renamed into place (then 1 is returned). */
int producer_state_snapshot_encode(const struct producer_state *ps, uint8_t **out, size_t *out_len);
int producer_state_snapshot_write(const char *dir, int64_t log_end, const uint8_t *buf, size_t len,
                                  const _Atomic uint64_t *truncations, uint64_t taken);
void producer_state_free(struct producer_state *ps);

#endif
