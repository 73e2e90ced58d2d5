/* txn_coordinator: Kafka's transaction coordinator (KIP-98) as a state machine with no sockets and
 * no storage — InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, timeouts, expiry and
 * the load of __transaction_state — talking to the world through txn_env, as group/ does. */
#ifndef GREGOR_TXN_TXN_COORDINATOR_H
#define GREGOR_TXN_TXN_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "txn/txn_log.h"

struct txn_coordinator;
/* One log append or one round of markers in flight: owned by the coordinator, handed to the host,
 * which reports its end exactly once with txn_append_done / txn_markers_done. */
struct txn_op;

/* One __transaction_state record as bytes (key and value with their INT16 version prefix;
 * value NULL / -1 for a tombstone). Borrowed for the duration of the append call. */
struct txn_record {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
};

struct txn_partition {
    const char *topic;
    int32_t partition;
};

/* WriteTxnMarkers for one transaction: the host writes a control batch (commit or abort) for the
 * producer on each partition, with the coordinator epoch of the transaction's log partition.
 * Everything borrowed for the duration of the send_markers call. */
struct txn_marker_request {
    const char *transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    bool commit;
    int32_t coordinator_epoch;
    const struct txn_partition *partitions;
    int n_partitions;
};

/* What the coordinator needs from its host. In the broker: the clock, the __transaction_state
 * partitions this broker leads, the marker sender and the producer id source; in unit tests
 * fakes. append and send_markers may report their end before they return: the coordinator touches
 * nothing after calling them. */
struct txn_env {
    void *ctx;
    int64_t (*now_ms)(void *ctx);       /* wall clock: the log's timestamps */
    /* Appends rec to partition `partition` of __transaction_state (acks=all); then
     * txn_append_done(tc, op, err) with a KERR code. */
    void (*append)(void *ctx, int32_t partition, const struct txn_record *rec, struct txn_op *op);
    /* Writes the markers; then txn_markers_done(tc, op, err): NONE once every partition has its
     * marker (or is gone), as Kafka's marker channel retries each partition until then. */
    void (*send_markers)(void *ctx, const struct txn_marker_request *req, struct txn_op *op);
    /* A new producer id in *out (Kafka's ProducerIdManager): a KERR code, NONE or the error to
     * answer when none can be had now. */
    int16_t (*next_producer_id)(void *ctx, int64_t *out);
};

struct txn_config {
    int32_t num_partitions;         /* transaction.state.log.num.partitions (50) */
    int32_t max_timeout_ms;         /* transaction.max.timeout.ms (900000) */
    int64_t id_expiration_ms;       /* transactional.id.expiration.ms (604800000) */
    int16_t log_value_version;      /* TransactionLogValue version written: 0 (Kafka before
                                     * transaction.version 2) or 1 */
    int32_t max_transactional_ids;  /* bound on ids held (1000000); past it InitProducerId of a
                                     * new id answers COORDINATOR_NOT_AVAILABLE */
    int32_t max_partitions_per_txn; /* bound on a transaction's partitions (100000); past it
                                     * AddPartitionsToTxn answers INVALID_REQUEST */
};

struct txn_coordinator *txn_create(const struct txn_config *cfg, const struct txn_env *env);
/* Frees every transaction. Operations still in flight stay owned by the host until it reports
 * their end (the coordinator then only frees them). */
void txn_destroy(struct txn_coordinator *tc);

/* ---- the result of a request ---- */

struct txn_result {
    int16_t error;
    int64_t producer_id;      /* InitProducerId only; -1 otherwise */
    int16_t producer_epoch;
};
/* Called exactly once per request, either before the request function returns or later (when
 * the log append ends). */
typedef void (*txn_cb)(void *arg, const struct txn_result *res);

/* ---- requests ---- */

struct txn_init_args {
    const char *transactional_id;   /* non-NULL: an id-less InitProducerId is not a transaction */
    int32_t timeout_ms;
    int64_t producer_id;            /* v3+: the producer's current id and epoch, or -1 / -1 */
    int16_t producer_epoch;
};
void txn_init_producer_id(struct txn_coordinator *tc, const struct txn_init_args *a, txn_cb cb,
                          void *arg);

/* AddPartitionsToTxn v0-v3 (and one transaction of v4+ without verifyOnly): one error for
 * every partition, as Kafka answers them. */
void txn_add_partitions(struct txn_coordinator *tc, const char *transactional_id,
                        int64_t producer_id, int16_t producer_epoch,
                        const struct txn_partition *parts, int n, txn_cb cb, void *arg);

/* AddOffsetsToTxn: the group's partition of __consumer_offsets joins the transaction (the host
 * computes it: gc_partition_for). */
void txn_add_offsets(struct txn_coordinator *tc, const char *transactional_id,
                     int64_t producer_id, int16_t producer_epoch, int32_t offsets_partition,
                     txn_cb cb, void *arg);

/* AddPartitionsToTxn v4+ verifyOnly (KIP-890 part 1, a partition leader asking before a
 * transactional write): a top-level error, or NONE with errors[i] NONE for partitions in the
 * transaction and TRANSACTION_ABORTABLE for the others. Answers at once. */
int16_t txn_verify_partitions(struct txn_coordinator *tc, const char *transactional_id,
                              int64_t producer_id, int16_t producer_epoch,
                              const struct txn_partition *parts, int n, int16_t *errors);

/* EndTxn: PrepareCommit / PrepareAbort is written, the client answered, then the markers sent
 * and CompleteCommit / CompleteAbort written. */
void txn_end(struct txn_coordinator *tc, const char *transactional_id, int64_t producer_id,
             int16_t producer_epoch, bool commit, txn_cb cb, void *arg);

/* PRODUCER_FENCED as an older client reads it: INVALID_PRODUCER_EPOCH, as Kafka answers
 * InitProducerId v0-3, AddPartitionsToTxn v0-1, AddOffsetsToTxn v0-1 and EndTxn v0-1. */
int16_t txn_client_error(int16_t err, bool knows_producer_fenced);

/* ---- host completions ---- */

void txn_append_done(struct txn_coordinator *tc, struct txn_op *op, int16_t err);
void txn_markers_done(struct txn_coordinator *tc, struct txn_op *op, int16_t err);
/* An operation the host will never complete because the coordinator is gone (shutdown, after
 * txn_destroy): frees it without answering anyone. */
void txn_op_abandon(struct txn_op *op);

/* ---- periodic work (the host arms the timers) ---- */

/* transaction.abort.timed.out.transaction.cleanup.interval.ms (10000): ongoing transactions past
 * their timeout are aborted with a bumped epoch (the producer is fenced); transactions whose
 * markers or completion write failed are retried. Returns how many were started. */
int txn_abort_timed_out(struct txn_coordinator *tc);
/* transactions.remove.expired.transaction.cleanup.interval.ms (3600000): ids idle (Empty,
 * CompleteCommit, CompleteAbort) for transactional.id.expiration.ms are written as tombstones and
 * forgotten. Returns how many tombstones were started. */
int txn_expire_ids(struct txn_coordinator *tc);

/* ---- loading __transaction_state ---- */

/* This broker became leader of `partition` at coordinator_epoch (its leader epoch): forgets what
 * it held of it; requests for its ids answer COORDINATOR_LOAD_IN_PROGRESS until txn_load_done. */
void txn_load_begin(struct txn_coordinator *tc, int32_t partition, int32_t coordinator_epoch);
/* Applies one record read back from the partition being loaded (later records win, tombstones
 * delete). 0, 1 when skipped (unknown key version), -1 when the bytes do not decode. */
int txn_replay_record(struct txn_coordinator *tc, int32_t partition, const uint8_t *key,
                      int32_t key_len, const uint8_t *value, int32_t value_len);
/* The partition is loaded: transactions left in PrepareCommit / PrepareAbort get their markers
 * sent and are completed. Returns how many. */
int txn_load_done(struct txn_coordinator *tc, int32_t partition);
/* This broker stopped leading `partition`: its ids are forgotten (requests answer
 * NOT_COORDINATOR); operations in flight end as NOT_COORDINATOR. Returns how many ids went. */
int txn_unload_partition(struct txn_coordinator *tc, int32_t partition);

/* ---- describing ---- */

struct txn_desc {
    bool found;
    enum txn_state state;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int64_t start_ms;              /* -1 when no transaction is open */
    int64_t last_update_ms;
    const struct txn_partition *partitions; /* borrowed until the next change */
    int n_partitions;
};
/* DescribeTransactions of one id: a KERR (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
 * TRANSACTIONAL_ID_NOT_FOUND is found == false). */
int16_t txn_describe(struct txn_coordinator *tc, const char *transactional_id,
                     struct txn_desc *out);

/* ListTransactions: every loaded id that passes the filters (empty filters pass all), as
 * (id, producer id, state) to fn. COORDINATOR_LOAD_IN_PROGRESS (and no listing) while a
 * partition loads, as Kafka. */
struct txn_list_filter {
    const enum txn_state *states;   /* n_states of them; 0 = any */
    int n_states;
    const int64_t *producer_ids;    /* n_producer_ids of them; 0 = any */
    int n_producer_ids;
    int64_t min_duration_ms;        /* v1: now - start > this (Kafka's rule); -1 = any */
};
typedef void (*txn_list_fn)(void *arg, const char *transactional_id, int64_t producer_id,
                            enum txn_state state);
int16_t txn_list(struct txn_coordinator *tc, const struct txn_list_filter *f, txn_list_fn fn,
                 void *arg);

#endif
