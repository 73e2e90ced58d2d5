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

struct producer_completed_txn;
typedef void (*producer_state_abort_fn)(void *ctx, const struct producer_completed_txn *txn);

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
    /* Transactions (Kafka's currentTxnFirstOffset and coordinatorEpoch): the first offset of
     * the producer's ongoing transaction (-1: none), the epoch of the coordinator that wrote
     * its last marker (-1: none) and that marker's offset (-1: none), which a truncation
     * below it undoes. */
    int64_t txn_first_offset;
    int32_t coordinator_epoch;
    int64_t last_marker_offset;
    struct producer_entry *next;
};

struct producer_state {
    struct producer_entry *head;
    int count;
    bool changed;                    /* since the last snapshot */
    producer_state_abort_fn on_abort; /* the replay's, see producer_state_on_replayed_abort */
    void *on_abort_ctx;              /* borrowed */
};

/* Checks a batch's sequence against the state: KERR_NONE (append it),
 * KERR_DUPLICATE_SEQUENCE_NUMBER with *dup_offset (a retry of one of the last 5: answer with
 * its offset, do not append), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER, KERR_INVALID_PRODUCER_EPOCH,
 * or KERR_INVALID_TXN_STATE (a non-transactional batch of a producer whose transaction is
 * ongoing, as Kafka's appendDataBatch). */
int producer_state_check(const struct producer_state *ps, const struct batch_header *h,
                         int64_t *dup_offset);
/* Records an appended batch (h as written, first_offset its base offset). */
void producer_state_record(struct producer_state *ps, const struct batch_header *h,
                           int64_t first_offset);
struct producer_entry *producer_state_find(const struct producer_state *ps, int64_t pid);

/* A transaction completed by a marker (Kafka's CompletedTxn): first_offset is the first offset
 * of the transaction (-1: none was ongoing, an empty one: nothing for the index, as Kafka),
 * last_offset the marker's; aborted only for a non-empty one. */
struct producer_completed_txn {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;
    bool aborted;
    int64_t last_stable_offset;      /* Kafka's lastStableOffset(completedTxn), after it */
};
/* A marker may be written for pid at epoch by a coordinator of coordinator_epoch (Kafka's
 * appendEndTxnMarker, transaction versions 0-1): INVALID_PRODUCER_EPOCH when the partition
 * knows a newer epoch of pid, TRANSACTION_COORDINATOR_FENCED when a newer coordinator wrote
 * its last marker, else KERR_NONE. */
int producer_state_check_marker(const struct producer_state *ps, int64_t pid, int16_t epoch,
                                int32_t coordinator_epoch);
/* Records a COMMIT or ABORT marker of pid at marker_offset: ends the ongoing transaction. */
void producer_state_end_txn(struct producer_state *ps, int64_t pid, int16_t epoch,
                            int32_t coordinator_epoch, int64_t marker_offset, bool commit,
                            struct producer_completed_txn *out);
/* A control batch's marker (len bytes): *type 0 ABORT or 1 COMMIT and the coordinator epoch
 * of its value; 0, or -1 when it is not an end-transaction marker. */
int producer_state_parse_marker(const uint8_t *batch, size_t len, int16_t *type,
                                int32_t *coordinator_epoch);
/* The first offset of the earliest ongoing transaction, or INT64_MAX when none is. */
int64_t producer_state_first_unstable_offset(const struct producer_state *ps);
/* What producer_state_load's replay found: called for each ABORT marker it replayed (txn with
 * its last stable offset), so the owner can make sure its aborted-transaction index holds it
 * (rebuilt after a crash). */
void producer_state_on_replayed_abort(struct producer_state *ps, producer_state_abort_fn fn,
                                      void *ctx);

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
