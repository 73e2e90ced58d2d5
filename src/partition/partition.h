/* partition: one partition replica — its log, its idempotent-producer state, its leader epoch
 * and epoch cache (the leader-epoch-checkpoint file), and its watermarks: log start, log end,
 * high watermark and last stable offset. Handlers and the group store append and read through
 * it; only this layer and log/ call plog_*. Depends on log/ and common/ only (the topic it
 * belongs to is an opaque back pointer for its owner). Single-threaded: one owning loop. */
#ifndef GREGOR_PARTITION_PARTITION_H
#define GREGOR_PARTITION_PARTITION_H

#include <stdbool.h>
#include <stdint.h>

#include "log/cleaner.h"
#include "log/log.h"
#include "log/producer_state.h"

/* Entries of the epoch cache kept (Kafka keeps one per leader change; a partition that changes
 * leader more often than this keeps the newest, the oldest answer as the first kept). */
#define PARTITION_EPOCHS_MAX 64

struct epoch_entry {
    int32_t epoch;
    int64_t start_offset;            /* first offset written in this epoch */
};

/* The most replicas a replicated partition lists (= CLUSTER_REPLICAS_MAX). */
#define PARTITION_REPLICAS_MAX 32

/* A follower as its leader sees it (Kafka's Replica.scala ReplicaState): its log end is the
 * offset of its last fetch; it is caught up at a fetch that reached the leader's log end, or
 * at one that reached what the leader's log end was at its previous fetch. -1: unknown. */
struct partition_follower {
    int32_t id;
    int64_t log_end;
    int64_t last_fetch_ms;
    int64_t last_fetch_leader_end;   /* the leader's log end at that fetch */
    int64_t last_caught_up_ms;       /* 0: never since this leader took over */
};

/* Replication state of a partition this broker leads in a cluster (all zero on one node: the
 * high watermark is then the log end, as before replication). isr is Kafka's "maximal" ISR:
 * the committed one, plus a follower being added while the write of the expansion is in
 * flight (a larger ISR only holds the high watermark back); a follower being removed stays
 * until the shrink is committed. */
struct partition_replication {
    bool leading;                    /* the high watermark follows the ISR */
    int32_t self;                    /* this broker's id */
    int64_t lag_time_max_ms;         /* replica.lag.time.max.ms */
    int nfollowers;
    struct partition_follower followers[PARTITION_REPLICAS_MAX];
    int nisr;                        /* maximal ISR, self included */
    int32_t isr[PARTITION_REPLICAS_MAX];
    int ncommitted;                  /* the ISR in ZooKeeper (min.insync.replicas counts it) */
    int32_t committed[PARTITION_REPLICAS_MAX];
    bool isr_inflight;               /* an ISR change is being written: none other starts */
    int32_t leader_epoch;            /* the owner's: the epoch this leadership is in */
};

struct partition_unreplicated_txn {
    int64_t first_offset;
    int64_t marker_offset;
};
#define PARTITION_UNREPLICATED_TXNS_MAX 65536

struct topic;
struct partition {
    struct topic *topic;             /* the owner's (opaque here) */
    int32_t index;
    struct plog *log;
    int dir_index;                   /* which log dir holds it (the owner's) */
    char dir_path[1100];
    struct producer_state producers; /* idempotence: snapshots + log tail at open */
    /* Transactions whose marker is written but not yet below the high watermark, in marker
     * order (Kafka's unreplicatedTxns): they hold the last stable offset at their first
     * offset until the high watermark passes the marker. Malloc'ed, at most
     * PARTITION_UNREPLICATED_TXNS_MAX (the oldest goes past it, logged). */
    struct partition_unreplicated_txn *unreplicated;
    int nunreplicated, unreplicated_cap;
    /* Truncations so far, counted (loop thread) before one removes the producer snapshots
     * past its new end; read by the I/O worker writing a snapshot image taken before. */
    _Atomic uint64_t truncations;
    int32_t leader_epoch;            /* on one node always 0 */
    /* Leaderships ended here (partition_stop_leading) and truncations, counted (never
     * negative): an acks=all wait belongs to the leadership it was appended in, which leader
     * epoch bumps while this replica goes on leading (an ISR shrunk by the controller) do not
     * end. */
    int32_t leaderships;
    int nepochs;                     /* epoch cache, epochs and start offsets increasing */
    struct epoch_entry epochs[PARTITION_EPOCHS_MAX];
    int64_t high_watermark;          /* readers see offsets below it; never goes back */
    struct partition_replication repl;
    /* Kept for the owner's group commit and idle-fd sweep. */
    bool dirty;                      /* appended since the last group-commit flush */
    bool flush_failed;               /* the last group-commit flush of it failed */
    int64_t commit_end;              /* the log end when the last group commit took it */
    bool active_recently;            /* appended since the last idle-fd sweep */
    int64_t last_flush_ms;           /* for flush.ms */
};

/* Opens (or creates) the replica in dir_path: the log (recovery as plog_open), the epoch cache
 * (written with epoch 0 at the log start when missing) and the producer state. p->dir_path,
 * topic and index are set by the caller before. */
int partition_open(struct partition *p, const char *topic_name, const struct log_config *cfg,
                   int64_t recovery_point, int64_t log_start_offset);
/* Clean close (a producer snapshot when it changed), or the two ways out of a deletion. */
int partition_close(struct partition *p);
int partition_delete(struct partition *p);
int partition_retire(struct partition *p, const char *to);
void partition_set_config(struct partition *p, const struct log_config *cfg);

/* A produce's batch: validated, checked against the producer state (a retry of one of the last
 * five batches is *dup set, info->base_offset and info->last_offset its original offsets,
 * KERR_NONE, nothing appended: acks=all waits for it as for the original, Kafka's duplicate
 * LogAppendInfo), offsets and the leader epoch assigned. info as plog_append. */
int partition_append_as_leader(struct partition *p, uint8_t *batch, size_t len, int64_t now_ms,
                               struct log_append_info *info, bool *dup);
/* A replicated batch, offsets as given: must start at the log end (no gap, no overlap); a batch
 * of a newer leader epoch adds an epoch cache entry. */
int partition_append_as_follower(struct partition *p, const uint8_t *batch, size_t len,
                                 struct log_append_info *info);
/* Reads from offset up to max_bytes (at least one batch, KIP-74), never at or past the high
 * watermark. OFFSET_OUT_OF_RANGE below the log start or past the log end. */
int partition_read(struct partition *p, int64_t offset, int32_t max_bytes, struct log_slice *out);
/* Reads the log itself up to the log end (the group store replaying its own partition). */
int partition_read_log(struct partition *p, int64_t offset, int32_t max_bytes, struct log_slice *out);
/* Drops everything at or past offset, and the epoch entries that start past the new end. */
int partition_truncate_to(struct partition *p, int64_t offset);

int64_t partition_log_start(const struct partition *p);
int64_t partition_log_end(const struct partition *p);
/* Bytes of the log's segments (Kafka's Log Size gauge, the console's size on disk). */
int64_t partition_size_bytes(const struct partition *p);
int64_t partition_high_watermark(const struct partition *p);
/* The last stable offset: min(high watermark, first offset of the earliest ongoing
 * transaction). A read_committed consumer reads below it. */
int64_t partition_last_stable_offset(const struct partition *p);
/* partition_read for isolation_level=1: never at or past the last stable offset. */
int partition_read_committed(struct partition *p, int64_t offset, int32_t max_bytes,
                             struct log_slice *out);
/* The aborted transactions overlapping [fetch_offset, upper), from the .txnindex files (Kafka's
 * collectAbortedTransactions): at most max into out, *n of them. */
struct txnindex_entry;
int partition_collect_aborted(struct partition *p, int64_t fetch_offset, int64_t upper,
                              struct txnindex_entry *out, int max, int *n);
/* WriteTxnMarkers for this partition: appends the COMMIT or ABORT control batch of producer
 * pid, ends its ongoing transaction (the last stable offset moves past it) and records an
 * aborted one in the .txnindex. INVALID_PRODUCER_EPOCH when the partition knows a newer epoch
 * of pid, TRANSACTION_COORDINATOR_FENCED when a newer coordinator ended its last transaction;
 * else as plog_append. */
int partition_write_txn_marker(struct partition *p, int64_t pid, int16_t epoch,
                               int32_t coordinator_epoch, bool commit, int64_t now_ms,
                               struct log_append_info *info);
/* Everything below is on disk (fdatasync'ed): acks=all waits for this to pass its offset. */
int64_t partition_durable_offset(const struct partition *p);

/* DeleteRecords: offset -1 is the high watermark. */
int partition_delete_records(struct partition *p, int64_t offset, int64_t *new_start);
int partition_offset_for_timestamp(struct partition *p, int64_t ts, int64_t *offset, int64_t *found_ts);
int partition_segment_offsets(const struct partition *p, int64_t *out, int max);
int partition_segment_count(const struct partition *p);
int partition_flush(struct partition *p);
/* flush.messages / flush.ms say a flush is due now. */
bool partition_flush_due(const struct partition *p, int64_t now_ms);
/* A roll left whole segments below the active one unflushed (flushed after each roll). */
bool partition_roll_flush_due(const struct partition *p);
/* Housekeeping on the loop thread: rolls a segment that segment.ms says is due; takes the
 * segments retention drops out of the log, returning them in *trash (NULL: none) for
 * partition_trash_dispose, which closes and unlinks them on any thread; gives back the
 * descriptors of inactive segments. */
int partition_maybe_roll(struct partition *p, int64_t now_ms);
void partition_retention_detach(struct partition *p, int64_t now_ms, struct plog_trash **trash);
void partition_trash_dispose(struct plog_trash *trash);
void partition_release_fds(struct partition *p);

/* This replica leads from now in epoch (>= the current one): a new epoch cache entry at the log
 * end, persisted. KERR_KAFKA_STORAGE_ERROR when the checkpoint cannot be written. */
int partition_become_leader(struct partition *p, int32_t epoch);
/* OffsetForLeaderEpoch: the largest epoch <= epoch the cache knows and the end offset of it
 * (the next epoch's start, or the log end for the current one); -1/-1 when none. */
void partition_epoch_end_offset(const struct partition *p, int32_t epoch, int32_t *out_epoch,
                                int64_t *end_offset);

/* The epoch of the batch holding offset by the cache (-1 below its first entry). */
int32_t partition_epoch_for_offset(const struct partition *p, int64_t offset);
/* A request's current leader epoch (-1: not checked) against this replica's: newer is
 * UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH, as Kafka's Partition.checkCurrentLeaderEpoch. */
int partition_check_leader_epoch(const struct partition *p, int32_t current_leader_epoch);

/* ---- leading a replicated partition (Kafka's Partition.scala, leader side) ---- */

/* Leads from now with these assigned replicas (self among them) and the committed ISR: every
 * follower's state starts unknown, caught up now when in the ISR (Kafka's resetReplicaState).
 * The high watermark stays where it is (restored from the checkpoint at open) until the ISR's
 * log ends pass it. */
void partition_lead_replicated(struct partition *p, int32_t self, const int32_t *replicas,
                               int nreplicas, const int32_t *isr, int nisr, int64_t now_ms,
                               int64_t lag_time_max_ms);
/* The assignment changed while leading: followers kept keep their state. */
void partition_set_assignment(struct partition *p, const int32_t *replicas, int nreplicas);
/* No longer the leader: the high watermark stays (a follower's comes from its leader). */
void partition_stop_leading(struct partition *p);
/* The ISR committed in ZooKeeper (the controller's, or this leader's write done). */
void partition_set_isr(struct partition *p, const int32_t *isr, int nisr);
bool partition_in_isr(const struct partition *p, int32_t id);
/* id is an assigned replica other than this leader. */
bool partition_is_follower(const struct partition *p, int32_t id);
/* A follower fetched at fetch_offset: its log end and caught-up time (Kafka's
 * updateFollowerFetchState). KERR_NOT_LEADER_OR_FOLLOWER, or KERR_UNKNOWN_LEADER_EPOCH when
 * the fetch named a leader epoch, for a replica not assigned (Kafka's followerReplicaOrThrow). */
int partition_follower_fetched(struct partition *p, int32_t id, int64_t fetch_offset,
                               int64_t now_ms, bool epoch_given);
/* The leadership an acks=all append waits in: p->leaderships while leading with replication,
 * -1 when not (one node, or not leading). */
int32_t partition_leadership(const struct partition *p);
/* Kafka's checkEnoughReplicasReachOffset for an acks=all batch appended in leadership
 * `leadership` (partition_leadership then), `end` past its last offset: true once settled,
 * *error KERR_NONE when the high watermark passed it, KERR_NOT_LEADER_OR_FOLLOWER when this
 * replica stopped leading since (the new leader may lack the batch and its followers truncate
 * it away: a success would acknowledge a record that is lost, and an idempotent producer would
 * then meet a gap in its sequences at the new leader); false while a follower in the ISR lacks
 * it. A leader epoch bump while this replica keeps leading (the controller shrinking the ISR)
 * ends nothing: the batch stays in this log and is answered when the high watermark passes
 * it, as Kafka answers while it is still the leader. */
bool partition_acks_all_settled(const struct partition *p, int32_t leadership, int64_t end,
                                int *error);
/* Kafka's maybeIncrementLeaderHW: the least log end of the maximal ISR (and of followers
 * caught up within the lag time that may join), the leader's included; true when it moved. */
bool partition_update_high_watermark(struct partition *p, int64_t now_ms);
/* The ISR this leader should write: followers that reached the high watermark and the
 * leader epoch's start join (maybeExpandIsr); followers not caught up for the lag time leave
 * (maybeShrinkIsr). true with the new ISR in out when a change is due (none while one is in
 * flight). An expansion takes effect at once in the maximal ISR. */
bool partition_isr_expand(struct partition *p, int32_t *out, int *nout);
bool partition_isr_shrink(struct partition *p, int64_t now_ms, int32_t *out, int *nout);
/* The write of a proposed ISR ended: committed (ok) or not (the maximal ISR goes back to the
 * committed one; ZooKeeper's state is read again by the owner). */
void partition_isr_write_done(struct partition *p, bool ok, const int32_t *isr, int nisr);
/* Restores the high watermark from replication-offset-checkpoint (min with the log end). */
void partition_restore_high_watermark(struct partition *p, int64_t hw);
/* KIP-320: a follower whose last fetched epoch ends (by this leader's epoch cache) before its
 * fetch offset, or is unknown here, has diverged: true with the epoch and its end offset to
 * truncate to. KERR_OFFSET_OUT_OF_RANGE when no end offset is known for it (or the fetch is
 * below the log start), as Kafka's readRecords. */
int partition_diverging_epoch(const struct partition *p, int32_t last_fetched_epoch,
                              int64_t fetch_offset, bool *diverged, int32_t *epoch,
                              int64_t *end_offset);

/* The epoch cache file: Kafka's leader-epoch-checkpoint ("0\n<n>\n<epoch> <offset>\n..."). */
int partition_epochs_write(const struct partition *p);
int partition_epochs_read(struct partition *p);
/* leader-epoch-checkpoint's bytes ("0\n<count>\n<epoch> <start offset>\n...", Kafka's) into
 * out[PARTITION_EPOCHS_MAX] (the newest kept): 0, or -1 with *why and *n = 0. Pure, for the
 * fuzz target; partition_epochs_read is the file's thin wrapper. */
int partition_epochs_parse(const char *text, size_t len, struct epoch_entry *out, int *n,
                           const char **why);

/* ---- log compaction (the broker's cleaner threads, broker/log_cleaner.c) ---- */

/* What one clean of a partition needs from the loop thread, taken there and then used on a
 * cleaner thread: the last stable offset (high_watermark below: the LSO, at most the high
 * watermark, as Kafka's firstUncleanableOffset) bounds what may be cleaned, and the last data batch of
 * every producer the state knows is kept (Kafka's lastRecordsOfActiveProducers). */
struct partition_clean_input {
    int64_t high_watermark;
    struct cleaner_config cc;          /* from the log config given */
    struct cleaner_producer *producers; /* owned (malloc'ed), nproducers */
    int nproducers;
};
/* Loop thread. KERR_NONE, or KERR_UNKNOWN_SERVER_ERROR when out of memory. */
int partition_clean_prepare(const struct partition *p, const struct log_config *cfg,
                            struct partition_clean_input *in);
void partition_clean_input_free(struct partition_clean_input *in);
/* How dirty the log is (cleaner_examine: under the log's lock, no I/O; any thread). */
void partition_clean_examine(struct partition *p, int64_t checkpoint, int64_t high_watermark,
                             const struct log_config *cfg, int64_t now_ms,
                             struct cleaner_dirty *out);
/* A cleaner thread: examines the log again from checkpoint and, when it needs cleaning (or
 * force), runs one clean (cleaner_clean) with job; *d is the section it looked at. The
 * partition must stay open meanwhile (the owner aborts through job->stop and waits before it
 * closes or deletes it); appends, reads, retention and truncation go on. Returns as
 * cleaner_clean, and KERR_NONE with out->groups 0 when there was nothing to clean. */
int partition_clean(struct partition *p, int64_t checkpoint, const struct partition_clean_input *in,
                    const struct cleaner_job *job, bool force, struct cleaner_dirty *d,
                    struct cleaner_result *out);

#endif
