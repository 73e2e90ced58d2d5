/* txn_kafka_records: __transaction_state records as Apache Kafka 4.1.1 wrote them (KRaft, one
 * node, transaction.state.log.num.partitions=1, its default transaction.version), read back from
 * __transaction_state-0/00000000000000000000.log. The scenario, with librdkafka 2.x transactional
 * producers (transaction.timeout.ms 60000) on topic "cap" partition 0:
 *   offsets 0-3  "cap-txn":  init, produce, commit          (Empty, Ongoing, PrepareCommit, CompleteCommit)
 *   offsets 4-7  "cap-txn2": init, produce, abort           (Empty, Ongoing, PrepareAbort, CompleteAbort)
 *   offset  8    "cap-txn2": produce                        (Ongoing)
 *   offsets 9-11 a second "cap-txn2" producer initialises: the open transaction is aborted with the
 *                epoch bumped (PrepareAbort, CompleteAbort), then the new producer gets epoch 2 (Empty).
 * Used by test_txn_log (decode, re-encode to the same bytes) and test_txn_coordinator (the same
 * scenario on our coordinator writes the same bytes). */
#ifndef GREGOR_TESTS_TXN_KAFKA_RECORDS_H
#define GREGOR_TESTS_TXN_KAFKA_RECORDS_H

#include <stdint.h>

struct kafka_txn_record {
    const char *key_hex;
    const char *value_hex;
};

static const struct kafka_txn_record KAFKA_TXN_RECORDS[] = {
    {"000000076361702d74786e",
     "0001000000000000000000000000ea600000000001a2506fda7affffffffffffffff00"},
    {"000000076361702d74786e",
     "0001000000000000000000000000ea60010204636170020000000000000001a2506fdb79000001a2506fdb7900"},
    {"000000076361702d74786e",
     "0001000000000000000000000000ea60020204636170020000000000000001a2506fdcb9000001a2506fdb7900"},
    {"000000076361702d74786e",
     "0001000000000000000000000000ea600401000001a2506fdcf0000001a2506fdb7900"},
    {"000000086361702d74786e32",
     "0001000000000000000100000000ea600000000001a2507014c6ffffffffffffffff00"},
    {"000000086361702d74786e32",
     "0001000000000000000100000000ea60010204636170020000000000000001a2507014cb000001a2507014cb00"},
    {"000000086361702d74786e32",
     "0001000000000000000100000000ea60030204636170020000000000000001a2507014d3000001a2507014cb00"},
    {"000000086361702d74786e32",
     "0001000000000000000100000000ea600501000001a2507014d4000001a2507014cb00"},
    {"000000086361702d74786e32",
     "0001000000000000000100000000ea60010204636170020000000000000001a2507014f0000001a2507014f000"},
    {"000000086361702d74786e32",
     "0001000000000000000100010000ea60030204636170020000000000000001a25070156e000001a2507014f00102020002"},
    {"000000086361702d74786e32",
     "0001000000000000000100010000ea600501000001a25070157e000001a2507014f00102020002"},
    {"000000086361702d74786e32",
     "0001000000000000000100020000ea600000000001a250701777ffffffffffffffff0102020002"},
};
#define KAFKA_TXN_RECORD_COUNT ((int)(sizeof(KAFKA_TXN_RECORDS) / sizeof(KAFKA_TXN_RECORDS[0])))

/* hex -> bytes into out (at least strlen(hex) / 2 bytes); the byte count. */
static inline int kafka_txn_unhex(const char *hex, uint8_t *out)
{
    int n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        int hi = hex[0] <= '9' ? hex[0] - '0' : hex[0] - 'a' + 10;
        int lo = hex[1] <= '9' ? hex[1] - '0' : hex[1] - 'a' + 10;
        out[n++] = (uint8_t)(hi << 4 | lo);
    }
    return n;
}

#endif
