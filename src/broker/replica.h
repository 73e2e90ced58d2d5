/* replica: the leader's side of replication on a cluster — which partitions this broker leads
 * with which replicas and ISR (from ZooKeeper, through cluster.h), followers' fetches moving the
 * high watermark and the ISR, the ISR's writes to ZooKeeper, the periodic ISR shrink and the
 * high watermark checkpoint. The decisions are the partition layer's; this glues them to the
 * broker (waiters, timers, the I/O worker). Nothing here runs on one node. */
#ifndef GREGOR_BROKER_REPLICA_H
#define GREGOR_BROKER_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

struct broker;
struct topic;
struct partition;

/* After ZooKeeper's topics or partition states changed (broker_cluster_sync): every local
 * partition ZooKeeper says this broker leads leads with its replicas and ISR; the others stop.
 * Starts the periodic work on its first call. */
void replica_sync(struct broker *b);
/* A follower's fetch of p at fetch_offset (within the log): its state, the high watermark
 * (parked fetches and acks=all produces woken when it moved) and an ISR expansion. A Kafka
 * error for a replica this partition does not assign (epoch_given: the fetch named a leader
 * epoch). */
int replica_follower_fetch(struct broker *b, struct topic *t, struct partition *p,
                           int32_t replica_id, int64_t fetch_offset, bool epoch_given);
/* After cluster_destroy (shutdown): frees the ISR writes whose completion will not come. */
void replica_shutdown(struct broker *b);
/* The topic's min.insync.replicas (its override, else the broker's, else 1). */
int32_t replica_min_insync(const struct broker *b, const struct topic *t);

#endif
