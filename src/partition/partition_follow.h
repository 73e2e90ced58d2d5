/* partition_follow: what a follower replica does to its partition besides appending the
 * leader's batches (partition_append_as_follower): it takes the leader's epoch without writing
 * one of its own, its high watermark and log start follow the leader's, and a replica that
 * fell below the leader's log start starts over there. Depends on log/ and common/ only. */
#ifndef GREGOR_PARTITION_PARTITION_FOLLOW_H
#define GREGOR_PARTITION_PARTITION_FOLLOW_H

#include <stdint.h>

#include "partition/partition.h"

/* This replica follows a leader in epoch (lower than its own is ignored): requests carrying an
 * older epoch are fenced from now; no epoch cache entry is written (the leader's batches bring
 * theirs, Kafka's makeFollower). */
void partition_become_follower(struct partition *p, int32_t epoch);
/* The newest epoch of the epoch cache (-1 when empty): what OffsetForLeaderEpoch asks about and
 * a Fetch's last_fetched_epoch. */
int32_t partition_latest_epoch(const struct partition *p);
/* After a fetch: the high watermark becomes min(leader's, log end) (never below the log start)
 * and the log start moves up to the leader's (bounded by that high watermark). KERR_NONE or the
 * log's error. */
int partition_follow_leader_marks(struct partition *p, int64_t leader_hw, int64_t leader_log_start);
/* Kafka's truncateFullyAndStartAt: every file of the replica goes (segments, epoch cache,
 * producer snapshots) and the log restarts empty at offset (the leader's log start above this
 * replica's end, or the base of the leader's batch holding it). The log is reopened in place:
 * the caller makes sure no other thread is flushing it. */
int partition_truncate_fully(struct partition *p, const char *topic_name,
                             const struct log_config *cfg, int64_t offset);

#endif
