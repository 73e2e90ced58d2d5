/* coordinator: the classic group protocol as a state machine with no sockets and no storage —
 * joins, syncs, heartbeats, leaves, committed offsets — talking to the world through gc_env. */
#ifndef GREGOR_GROUP_COORDINATOR_H
#define GREGOR_GROUP_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/kbuf.h"

struct group_coordinator;
struct gc_timer;

/* One __consumer_offsets record as bytes (key with its INT16 version prefix; value with its
 * prefix, or NULL/-1 for a tombstone). */
struct gc_record {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
};

/* What the coordinator needs from its host: clocks, one-shot timers and the log. In the broker
 * these are the event loop and __consumer_offsets; in unit tests a fake clock and a list. */
struct gc_env {
    void *ctx;
    int64_t (*wall_ms)(void *ctx);
    int64_t (*mono_ms)(void *ctx);
    /* Arms a one-shot timer; on expiry the host calls gc_timer_fire(gc, t). Returns id > 0. */
    uint64_t (*timer_add)(void *ctx, int64_t when_mono_ms, struct gc_timer *t);
    void (*timer_cancel)(void *ctx, uint64_t id);
    /* Appends records to partition `partition` of __consumer_offsets; a KERR code. */
    int (*append)(void *ctx, int32_t partition, const struct gc_record *recs, int n);
};

struct gc_config {
    int32_t num_partitions;               /* offsets.topic.num.partitions */
    int32_t initial_rebalance_delay_ms;   /* group.initial.rebalance.delay.ms */
    int32_t min_session_timeout_ms;
    int32_t max_session_timeout_ms;
    int32_t max_size;                     /* group.max.size */
    int32_t offset_metadata_max_bytes;    /* offset.metadata.max.bytes */
    int64_t offsets_retention_ms;         /* offsets.retention.minutes */
    int64_t retention_check_interval_ms;  /* offsets.retention.check.interval.ms (600000) */
    /* KIP-848 consumer groups (consumer_group.h); 0 = Kafka's default. */
    int32_t consumer_session_timeout_ms;  /* group.consumer.session.timeout.ms (45000) */
    int32_t consumer_heartbeat_interval_ms; /* group.consumer.heartbeat.interval.ms (5000) */
    int32_t consumer_max_size;            /* group.consumer.max.size (unbounded) */
    /* group.consumer.migration.policy: online upgrade (classic -> consumer) and downgrade. */
    enum gc_migration_policy {
        GC_MIGRATION_BIDIRECTIONAL = 0,   /* Kafka 4.x's default */
        GC_MIGRATION_UPGRADE,
        GC_MIGRATION_DOWNGRADE,
        GC_MIGRATION_DISABLED,
    } consumer_migration_policy;
};

enum gc_timer_kind {
    GC_TIMER_HEARTBEAT,
    GC_TIMER_JOIN,
    GC_TIMER_PENDING,
    GC_TIMER_EXPIRY,
    GC_TIMER_CG_SESSION,    /* consumer group member session (consumer_group.c) */
    GC_TIMER_CG_REBALANCE,  /* consumer group member revocation deadline */
};

/* A timer embedded in the object it belongs to (member, group, pending member, coordinator):
 * freeing the object cancels it, so no timer ever outlives what it points at. */
struct gc_timer {
    uint64_t id;    /* 0 = not armed */
    enum gc_timer_kind kind;
    void *owner;
};

/* The topics the coordinator may assign, as the host sees them now: the host's other window
 * (with gc_env) — consumer groups (consumer_group.h) assign from it. */
struct cg_topic {
    const char *name;
    struct kuuid id;
    int32_t partitions;
    bool internal;       /* never matched by a regex subscription */
};
typedef void (*cg_topic_fn)(void *arg, const struct cg_topic *t);
struct cg_topic_view {
    void *ctx;
    bool (*by_name)(void *ctx, const char *name, struct cg_topic *out);
    bool (*by_id)(void *ctx, const struct kuuid *id, struct cg_topic *out);
    void (*each)(void *ctx, cg_topic_fn fn, void *arg);
};

struct group_coordinator *gc_create(const struct gc_config *cfg, const struct gc_env *env);
/* The topics as the host sees them, for classic members of consumer groups; copied. Without it
 * (unit tests) no topic is known to them. */
void gc_set_topic_view(struct group_coordinator *gc, const struct cg_topic_view *tv);
/* Answers every pending join/sync with COORDINATOR_NOT_AVAILABLE, cancels timers, frees. */
void gc_destroy(struct group_coordinator *gc);
void gc_timer_fire(struct group_coordinator *gc, struct gc_timer *t);
/* The env's ctx (the host's own state). */
void *gc_env_ctx(const struct group_coordinator *gc);

/* Work done on the request path, in elementary steps (never reset): tests bound it by the size
 * of the input, so that a quadratic path shows up as a failure rather than as a slow loop. */
struct gc_work {
    uint64_t protocol_steps;   /* protocol names compared or looked up (JoinGroup) */
    uint64_t member_steps;     /* members or pending members visited to find one (classic) */
    uint64_t assign_runs;      /* target assignments computed (consumer groups) */
    uint64_t assign_steps;     /* steps of those computations (assignor and target diff) */
    uint64_t heartbeat_steps;  /* other steps of ConsumerGroupHeartbeat over members/partitions */
};
const struct gc_work *gc_work(const struct group_coordinator *gc);

/* ---- replay of __consumer_offsets ---- */

/* Applies one record read back from the log (later records win; tombstones delete). Key versions
 * 3-8 are KIP-848 consumer groups (consumer_group_records.c); others are skipped. Returns 0, or -1 when the bytes do not decode. */
int gc_replay_record(struct group_coordinator *gc, const uint8_t *key, int32_t key_len,
                     const uint8_t *value, int32_t value_len);
/* After replay: groups with members become Stable with running session timers. */
void gc_replay_done(struct group_coordinator *gc);
/* The same for the groups of one partition only (a partition loaded after the others, when this
 * broker became its leader in a cluster). */
void gc_replay_done_partition(struct group_coordinator *gc, int32_t partition);
/* Forgets the groups of one partition (this broker stopped leading it): waiting joins and
 * syncs are answered with err (NOT_COORDINATOR). Returns how many groups went. */
int gc_unload_partition(struct group_coordinator *gc, int32_t partition, int16_t err);

/* ---- JoinGroup / SyncGroup ---- */

struct gc_protocol {
    const char *name;
    const uint8_t *metadata;
    int32_t metadata_len;
};

struct gc_join_args {
    int16_t version;               /* MEMBER_ID_REQUIRED from v4 */
    const char *group_id;
    const char *member_id;         /* "" for a new member */
    const char *instance_id;       /* NULL = dynamic member */
    const char *client_id;
    const char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    const char *protocol_type;
    const struct gc_protocol *protocols;
    int n_protocols;
    const char *reason;            /* the client's (JoinGroup v8+), NULL = none */
};

struct gc_member_info {
    const char *member_id;
    const char *instance_id;
    const uint8_t *metadata;
    int32_t metadata_len;
};

/* Pointers are valid only during the callback: copy what you keep. */
struct gc_join_result {
    int16_t error;
    int32_t generation;
    const char *protocol_type;    /* NULL = none */
    const char *protocol_name;    /* NULL = none */
    const char *leader;
    const char *member_id;
    const struct gc_member_info *members; /* leader only */
    int n_members;
    bool skip_assignment;         /* v9+: the leader must not assign (a static leader's rejoin) */
};
typedef void (*gc_join_cb)(void *arg, const struct gc_join_result *res);

/* Calls cb exactly once, either before returning or later (rebalance completion). */
void gc_join(struct group_coordinator *gc, const struct gc_join_args *a, gc_join_cb cb, void *arg);

struct gc_assignment {
    const char *member_id;
    const uint8_t *assignment;
    int32_t assignment_len;
};

struct gc_sync_args {
    const char *group_id;
    int32_t generation;
    const char *member_id;
    const char *instance_id;
    const char *protocol_type;     /* NULL = not checked (before v5) */
    const char *protocol_name;
    const struct gc_assignment *assignments;
    int n_assignments;
};

struct gc_sync_result {
    int16_t error;
    const char *protocol_type;
    const char *protocol_name;
    const uint8_t *assignment;
    int32_t assignment_len;
};
typedef void (*gc_sync_cb)(void *arg, const struct gc_sync_result *res);

void gc_sync(struct group_coordinator *gc, const struct gc_sync_args *a, gc_sync_cb cb, void *arg);

int16_t gc_heartbeat(struct group_coordinator *gc, const char *group_id, int32_t generation,
                     const char *member_id, const char *instance_id);

struct gc_leave_member {
    const char *member_id;
    const char *instance_id;
    int16_t error;                 /* out */
};
/* Top-level error (or NONE with per-member errors). */
int16_t gc_leave(struct group_coordinator *gc, const char *group_id, struct gc_leave_member *m,
                 int n);

/* ---- offsets ---- */

struct gc_commit_partition {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata;          /* bytes; NULL = "" (Kafka stores a null commit as "") */
    int32_t metadata_len;          /* may hold NULs; ignored when metadata is NULL */
    int16_t error;                 /* in: preset errors are kept; out: the result */
};

struct gc_commit_args {
    const char *group_id;
    int32_t generation;
    const char *member_id;
    const char *instance_id;
    int64_t retention_ms;          /* -1 = broker default (OffsetCommitValue v3) */
    int16_t version;               /* OffsetCommit version: v9+ is KIP-848's */
};

void gc_offset_commit(struct group_coordinator *gc, const struct gc_commit_args *a,
                      struct gc_commit_partition *parts, int n);
/* TxnOffsetCommit's member checks (Kafka's GroupCoordinator.handleTxnCommitOffsets): NONE,
 * COORDINATOR_NOT_AVAILABLE (the group is dead), or, for a commit that names a member
 * (generation >= 0, a member id or an instance id) other than one of generation -1 into an
 * empty group, FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION. */
int16_t gc_txn_offset_commit_validate(struct group_coordinator *gc, const char *group_id,
                                      int32_t generation, const char *member_id,
                                      const char *instance_id);

struct gc_offset {
    const char *topic;             /* borrowed from the coordinator */
    int32_t partition;
    int64_t offset;                /* -1 = none */
    int32_t leader_epoch;
    const char *metadata;          /* metadata_len bytes (NULs included), never NULL */
    int32_t metadata_len;
};

/* Looks one partition up: false (and offset -1) when nothing is committed. */
bool gc_offset_get(struct group_coordinator *gc, const char *group_id, const char *topic,
                   int32_t partition, struct gc_offset *out);
/* OffsetFetch v9+ from a group member (member_id non-NULL or epoch >= 0): in a KIP-848 group
 * the member must exist (UNKNOWN_MEMBER_ID) at that epoch (STALE_MEMBER_EPOCH), as in Kafka;
 * classic groups and groups that do not exist are not checked. */
int16_t gc_offset_fetch_validate(struct group_coordinator *gc, const char *group_id,
                                 const char *member_id, int32_t member_epoch);
/* Every committed offset of a group, sorted by topic then partition; *out malloc'ed (caller
 * frees; strings borrow the coordinator until its next change). Returns the count. */
int gc_offset_list(struct group_coordinator *gc, const char *group_id, struct gc_offset **out);

/* OffsetDelete: a top-level error, or NONE with per-partition errors. */
int16_t gc_offset_delete(struct group_coordinator *gc, const char *group_id,
                         struct gc_commit_partition *parts, int n);

/* ---- listing / describing / deleting ---- */

enum gc_group_state {
    GC_EMPTY,
    GC_PREPARING_REBALANCE,
    GC_COMPLETING_REBALANCE,
    GC_STABLE,
    GC_DEAD,
};
const char *gc_state_name(enum gc_group_state s);

struct gc_group_summary {
    const char *group_id;
    const char *protocol_type;     /* "" for none */
    enum gc_group_state state;
    const char *state_name;        /* Kafka's name for the group's type (classic or consumer) */
    const char *type;              /* "classic" or "consumer" (ListGroups v5) */
};
/* Every live group; *out malloc'ed (caller frees), strings borrowed. */
int gc_list(struct group_coordinator *gc, struct gc_group_summary **out);

struct gc_member_desc {
    const char *member_id;
    const char *instance_id;
    const char *client_id;
    const char *client_host;
    const uint8_t *metadata;       /* empty unless Stable */
    int32_t metadata_len;
    const uint8_t *assignment;
    int32_t assignment_len;
};
struct gc_group_desc {
    bool found;
    bool consumer;                 /* a KIP-848 consumer group (not found as a classic one) */
    enum gc_group_state state;
    const char *protocol_type;
    const char *protocol;          /* "" unless Stable */
    struct gc_member_desc *members; /* malloc'ed: gc_describe_free */
    int n_members;
};
void gc_describe(struct group_coordinator *gc, const char *group_id, struct gc_group_desc *out);
void gc_describe_free(struct gc_group_desc *d);

int16_t gc_delete_group(struct group_coordinator *gc, const char *group_id);

/* Offsets retention: expires offsets of empty groups (and explicit expiry times), removes empty
 * groups without offsets, writing tombstones. Runs from GC_TIMER_EXPIRY; exposed for tests. */
void gc_expire(struct group_coordinator *gc);

/* ---- persistence helpers ---- */

/* Kafka's String.hashCode over the UTF-16 code units of a UTF-8 string. */
int32_t gc_java_string_hash(const char *s, size_t len);
/* abs(javaStringHashCode(group)) % n, abs(INT32_MIN) = 0 (FORMATS.md §12). */
int32_t gc_partition_for(const char *group_id, int32_t num_partitions);

/* Live records of one partition (groups with metadata + committed offsets): what a fresh copy of
 * the state would hold. */
int64_t gc_live_records(const struct group_coordinator *gc, int32_t partition);
/* Emits the live state of one partition as records, in bounded chunks through emit (which returns
 * a KERR; the first error stops). */
typedef int (*gc_emit_fn)(void *arg, const struct gc_record *recs, int n);
int gc_snapshot(struct group_coordinator *gc, int32_t partition, gc_emit_fn emit, void *arg);

/* Record codecs (records.c): encode into malloc'ed buffers; decode is in gc_replay_record. */
struct gc_buf {
    uint8_t *p;
    size_t len;
};
int gc_encode_offset_key(struct gc_buf *out, const char *group, const char *topic, int32_t partition);
/* v3, or v1 when expire_ts >= 0 (an explicit retention, as Kafka). */
int gc_encode_offset_value(struct gc_buf *out, int64_t offset, int32_t leader_epoch,
                           const char *metadata, int32_t metadata_len, int64_t commit_ts,
                           int64_t expire_ts);
int gc_encode_group_key(struct gc_buf *out, const char *group);

#endif
