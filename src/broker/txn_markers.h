/* txn_markers: one transaction marker written to a partition this broker leads, as
 * WriteTxnMarkers writes it (write_txn_markers.c), shared with the coordinator's own markers of
 * its local partitions (txn_store.c); and, on a partition led with replication, what its wait
 * for the ISR looks at (Kafka appends markers with acks=-1). */
#ifndef GREGOR_BROKER_TXN_MARKERS_H
#define GREGOR_BROKER_TXN_MARKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"

/* Kafka's request.timeout.ms (its default): how long a marker waits for its ISR before
 * REQUEST_TIMED_OUT (the coordinator resends it). */
#define TXN_MARKER_REPLICATION_TIMEOUT_MS 30000

/* A marker appended on a partition led with replication, until its high watermark passes it.
 * The partition is looked up again each time (its topic may be deleted meanwhile). */
struct txn_marker_replication {
    char topic[256];
    struct kuuid topic_id;
    int32_t partition;
    int32_t leadership;         /* partition_leadership at the append */
    int64_t end;                /* the log end after the marker */
};

/* Writes pid's COMMIT or ABORT marker to the local partition `topic`-`partition`, which the
 * caller knows this broker leads: NOT_ENOUGH_REPLICAS before the append when its committed ISR
 * is smaller than min.insync.replicas (as an acks=-1 produce), else partition_write_txn_marker's
 * error; the transaction's offsets held on a __consumer_offsets partition end with it.
 * KERR_NONE with *pending true (and *wait filled) when the marker waits for its followers:
 * then txn_marker_replicated says when it is done. */
int txn_marker_append(struct broker *b, struct topic *t, int32_t partition, int64_t pid,
                      int16_t epoch, int32_t coordinator_epoch, bool commit,
                      struct txn_marker_replication *wait, bool *pending);

/* Kafka's checkEnoughReplicasReachOffset for a waiting marker: true once settled, with *error
 * NONE (the high watermark passed it), NOT_ENOUGH_REPLICAS_AFTER_APPEND (the ISR shrank below
 * min.insync.replicas meanwhile) or NOT_LEADER_OR_FOLLOWER (leadership, or the topic, went:
 * the new leader may lack it); false while an ISR member lacks it. */
bool txn_marker_replicated(struct broker *b, const struct txn_marker_replication *wait,
                           int *error);

#endif
