/* group_store: the group coordinator (src/group/) hosted by the broker — its gc_env over the
 * event loop's timers and __consumer_offsets (group_store.c). */
#ifndef GREGOR_BROKER_GROUP_STORE_H
#define GREGOR_BROKER_GROUP_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct broker;
struct group_coordinator;
struct request;

/* Creates the coordinator and replays __consumer_offsets (creating that topic if missing). */
struct group_coordinator *group_coordinator_create(struct broker *b);
/* Answers pending joins/syncs, writes what must be written, frees. */
void group_coordinator_destroy(struct group_coordinator *gc);

/* What a group API answers for group_id on this broker before the coordinator sees it:
 * KERR_NONE (one node, or this broker leads the group's partition and has loaded it),
 * COORDINATOR_LOAD_IN_PROGRESS (loading it), NOT_COORDINATOR (another broker's, in a cluster),
 * COORDINATOR_NOT_AVAILABLE (no coordinator). */
int16_t group_store_check(struct broker *b, const char *group_id);
/* Whether a partition is being loaded (ListGroups answers COORDINATOR_LOAD_IN_PROGRESS). */
bool group_store_loading(struct broker *b);
/* A cluster's FindCoordinator for a group: the live broker that leads the group's partition of
 * the ZooKeeper topic __consumer_offsets (created on first use, Kafka's auto-creation of the
 * internal topic). KERR_NONE with *out, or COORDINATOR_NOT_AVAILABLE. */
struct cluster_broker;
int16_t group_store_find(struct broker *b, const char *group_id, struct cluster_broker *out);
/* ZooKeeper's leaders changed: load the partitions this broker now leads (over loop turns,
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile), let go of the ones it no longer leads. */
void group_store_cluster_sync(struct broker *b);
/* Kafka's coordinator appends to __consumer_offsets with acks=-1: what it wrote for group_id is
 * answered once every ISR member has it. The log end of the group's partition when this broker
 * leads it with replication and its high watermark is below that end (*partition set), else -1
 * (nothing to wait for: one node, or every replica has it already). */
int64_t group_store_unreplicated_end(struct broker *b, const char *group_id, int32_t *partition);
/* For such a wait: 1 when the high watermark of the partition reached end, 0 not yet, -1 when
 * this broker no longer leads it (the write may be lost: NOT_COORDINATOR, as Kafka answers a
 * write whose append failed with NOT_LEADER_OR_FOLLOWER). */
int group_store_replicated(struct broker *b, int32_t partition, int64_t end);
/* Sets a write's error (NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE) on every partition of
 * r's response still answered NONE: each commit API's response has its own type. */
typedef void group_store_wait_error_fn(struct request *r, int16_t error);
/* For a commit request that wrote offsets for group_id (its response built): true when it is
 * parked until the ISR of the group's partition has them, then finished, with set_error when
 * not in offsets.commit.timeout.ms or the partition moved; false when there is nothing to wait
 * for (answer it now). */
bool group_store_await_isr(struct broker *b, struct request *r, const char *group_id,
                           group_store_wait_error_fn *set_error);

/* TxnOffsetCommit: the offsets (parts[i].error NONE; preset errors kept) are written to the
 * group's partition of __consumer_offsets in producer_id's transaction and held until its
 * marker (group_store_txn_marker): a top-level error, or NONE with parts[i].error set. */
struct gc_commit_partition;
int16_t group_store_txn_offsets(struct broker *b, const char *group_id, int64_t producer_id,
                                int16_t producer_epoch, struct gc_commit_partition *parts, int n);
/* A COMMIT or ABORT marker of producer_id was written to partition of __consumer_offsets:
 * the offsets its transaction wrote there become the groups' (COMMIT) or go (ABORT). */
void group_store_txn_marker(struct broker *b, int32_t partition, int64_t producer_id,
                            bool commit);
/* Whether an ongoing transaction holds an offset of the group for topic-partition (OffsetFetch
 * with require_stable answers it UNSTABLE_OFFSET_COMMIT, as Kafka). Scans what is held for the
 * group's partition of __consumer_offsets (at most the bound on held records). */
bool group_store_txn_pending(struct broker *b, const char *group_id, const char *topic,
                             int32_t partition);

#endif
