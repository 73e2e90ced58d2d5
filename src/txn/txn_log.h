/* txn_log: the __transaction_state records in Kafka's format (TransactionLogKey v0,
 * TransactionLogValue v0 and the flexible v1) and the transactional id's partition. Bytes only. */
#ifndef GREGOR_TXN_TXN_LOG_H
#define GREGOR_TXN_TXN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"

/* Kafka's TransactionState ids, as written in TransactionStatus. */
enum txn_state {
    TXN_EMPTY = 0,
    TXN_ONGOING = 1,
    TXN_PREPARE_COMMIT = 2,
    TXN_PREPARE_ABORT = 3,
    TXN_COMPLETE_COMMIT = 4,
    TXN_COMPLETE_ABORT = 5,
    TXN_DEAD = 6,
    TXN_PREPARE_EPOCH_FENCE = 7,
};
#define TXN_STATE_COUNT 8
const char *txn_state_name(enum txn_state s);

/* One topic's partitions of a transaction (PartitionsSchema). */
struct txn_log_topic {
    const char *topic;
    const int32_t *partitions;
    int32_t n_partitions;
};

struct txn_log_value {
    int64_t producer_id;
    int64_t prev_producer_id;     /* v1 tag 0; -1 = none (v0 never has it) */
    int64_t next_producer_id;     /* v1 tag 1; -1 = none */
    int16_t producer_epoch;
    int32_t timeout_ms;
    int8_t status;                /* enum txn_state */
    const struct txn_log_topic *topics;
    int32_t n_topics;             /* -1 = null (Kafka writes null for Empty) */
    int64_t last_update_ms;
    int64_t start_ms;
    int16_t client_txn_version;   /* v1 tag 2; 0 = none */
};

/* Kafka's record sizes bound what a transactional id and a value may take. */
#define TXN_LOG_RECORD_MAX_BYTES (16u << 20)

struct txn_buf {
    uint8_t *p;                   /* malloc'ed, caller frees */
    size_t len;
};

/* Key: INT16 version 0 + STRING transactional id. A KERR code. */
int txn_log_encode_key(struct txn_buf *out, const char *transactional_id);
/* Value with its INT16 version prefix: version 0 or 1. A KERR code. */
int txn_log_encode_value(struct txn_buf *out, int16_t version, const struct txn_log_value *v);

/* Key: 0 and *transactional_id (NUL-terminated, in arena); 1 for a key version this broker does
 * not know (Kafka skips such records while loading); -1 when the bytes do not decode. */
int txn_log_decode_key(const uint8_t *p, size_t len, struct arena *arena,
                       const char **transactional_id);
/* Value (version 0 or 1): 0 with *out filled (topics, strings in arena), -1 when the bytes do not
 * decode, the version is unknown or the status is not one of Kafka's. */
int txn_log_decode_value(const uint8_t *p, size_t len, struct arena *arena,
                         struct txn_log_value *out);

/* abs(javaStringHashCode(id)) % transaction.state.log.num.partitions, as Kafka. */
int32_t txn_partition_for(const char *transactional_id, int32_t num_partitions);

#endif
