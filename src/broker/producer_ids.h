/* producer_ids: the producer ids this broker hands to idempotent producers (InitProducerId).
 * On one node a counter seeded from the clock at start; on ZooKeeper, blocks of ids taken from
 * /latest_producer_id_block (cluster_claim_producer_ids), the next one taken ahead, as Kafka
 * 3.9's RPCProducerIdManager, so ids are unique in the cluster. Loop thread only. */
#ifndef GREGOR_BROKER_PRODUCER_IDS_H
#define GREGOR_BROKER_PRODUCER_IDS_H

#include <stdint.h>

struct broker;

/* Kafka's PidPrefetchThreshold: the next block is taken once this share (in percent) of the
 * current one was handed out. */
#define PRODUCER_IDS_PREFETCH_PERCENT 90
/* Kafka's RetryBackoffMs: after a failed claim, none for this long. */
#define PRODUCER_IDS_RETRY_BACKOFF_MS 50

/* Sets up the counter (one node) or the block state (b->cluster set); with a cluster, the
 * first block is claimed at once. 0, or -1 (out of memory, logged). */
int producer_ids_open(struct broker *b);
/* The next id in *out: KERR_NONE, or COORDINATOR_LOAD_IN_PROGRESS while no block is at hand
 * (one is being claimed: Kafka's clients retry that answer). */
int producer_ids_next(struct broker *b, int64_t *out);
/* After cluster_destroy (no completion comes any more). */
void producer_ids_close(struct broker *b);

#endif
