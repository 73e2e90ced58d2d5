/* group_internal: the coordinator's own data (groups, members, offsets tables) shared by
 * coordinator.c (membership), offsets.c (commits, expiry) and records.c (log records). */
#ifndef GREGOR_GROUP_GROUP_INTERNAL_H
#define GREGOR_GROUP_GROUP_INTERNAL_H

#include "group/coordinator.h"
#include "group/strtab.h"

struct cg_group;

struct member_protocol {
    char *name;
    uint8_t *metadata;         /* owned */
    int32_t metadata_len;
};

struct member {
    struct group *group;
    char *id;
    char *instance_id;         /* NULL = dynamic */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    char *protocol_type;
    struct member_protocol *protocols;
    int n_protocols;
    uint8_t *assignment;       /* owned; NULL with len 0 = none */
    int32_t assignment_len;
    gc_join_cb join_cb;        /* non-NULL while awaiting the join response */
    void *join_arg;
    gc_sync_cb sync_cb;        /* non-NULL while awaiting the sync response */
    void *sync_arg;
    int64_t deadline_mono;     /* session expiry */
    struct gc_timer hb_timer;
    struct member *next;       /* join order: the first is the default leader */
    struct member *prev;
};

/* A member id handed out with MEMBER_ID_REQUIRED, waiting for the second join. */
struct pending_member {
    struct group *group;
    char *id;
    struct gc_timer timer;
    struct pending_member *next;
    struct pending_member *prev;
};

/* How many members list a protocol name (each member counted once), so that "does every member
 * support it" is one lookup; votes and stamp are scratch space of the counting passes. */
struct protocol_count {
    char *name;                /* owned; the key in group.protocols */
    int32_t count;
    int32_t votes;
    uint32_t stamp;
};

struct offset_entry {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;            /* metadata_len bytes, NULs included (+ a NUL after them) */
    int32_t metadata_len;
    int64_t commit_ts;
    int64_t expire_ts;         /* -1 = by offsets.retention */
    struct offset_entry *next; /* hash chain */
};

struct offset_table {
    struct offset_entry **buckets;
    size_t nbuckets;
    size_t count;
};

struct group {
    struct group_coordinator *gc;
    char *id;
    int32_t partition;          /* of __consumer_offsets */
    enum gc_group_state state;
    char *protocol_type;        /* NULL = none yet (simple commits only) */
    char *protocol;             /* selected protocol, NULL when none */
    int32_t generation;
    char *leader;               /* member id, NULL when none */
    int64_t state_ts;           /* currentStateTimestamp, wall ms (-1 unknown) */
    struct member *members;
    struct member *members_tail;
    int n_members;
    int n_awaiting_join;
    struct pending_member *pending;
    int n_pending;
    /* Indexes, so that no request walks the member list: member id and instance id -> member,
     * pending member id -> pending_member, protocol name -> protocol_count (of all members). */
    struct strtab by_id, by_instance, pending_by_id, protocols;
    uint32_t protocol_stamp;
    struct gc_timer join_timer;
    bool initial_delay;         /* the join timer is group.initial.rebalance.delay */
    bool new_member_added;      /* during the initial delay */
    int64_t initial_remaining_ms;
    struct gc_buf meta;         /* the live GroupMetadata value in the log (version-prefixed
                                 * bytes, re-emitted by snapshots); p == NULL = none */
    struct offset_table offsets;
    struct cg_group *cg;        /* non-NULL: a KIP-848 consumer group (consumer_group.c) */
    struct group *next;         /* hash chain */
};

struct group_coordinator {
    struct gc_config cfg;
    struct gc_env env;
    struct group **buckets;
    size_t nbuckets;
    size_t ngroups;
    int64_t *live;              /* live records per partition */
    struct gc_timer expiry_timer;
    bool destroying;
    struct gc_work work;
    struct cg_topic_view topics;  /* the host's topics (gc_set_topic_view); by_name NULL = none */
};

/* coordinator.c */
struct group *gc_group_find(struct group_coordinator *gc, const char *id);
struct group *gc_group_get_or_create(struct group_coordinator *gc, const char *id);
void gc_group_remove(struct group_coordinator *gc, struct group *g);
struct member *gc_member_find(struct group *g, const char *member_id);
struct member *gc_member_by_instance(struct group *g, const char *instance_id);
int64_t gc_now(struct group_coordinator *gc);
char *gc_strdup(const char *s);
/* An Empty group that holds nothing (no members, offsets or log record) is forgotten. */
void gc_group_drop_if_unused(struct group_coordinator *gc, struct group *g);
/* Kafka's validateMember: UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID, or NONE with *out set. */
int16_t gc_validate_member(struct group *g, const char *member_id, const char *instance_id,
                           struct member **out);
/* The member showed signs of life: push its session deadline. */
void gc_heartbeat_reset(struct group_coordinator *gc, struct member *m);
/* Rebuilds a group from a GroupMetadataValue read back from the log (members as Kafka stores
 * them: the selected protocol's subscription and the assignment). */
void gc_replay_group(struct group_coordinator *gc, struct group *g, const char *protocol_type,
                     int32_t generation, const char *protocol, const char *leader, int64_t ts,
                     int n, const struct gc_member_desc *members, const int32_t *session,
                     const int32_t *rebalance);

/* Online migration: answers every waiting JoinGroup/SyncGroup with err and drops pending members
 * and the join timer (the classic group is about to become a consumer group). */
void gc_classic_reset(struct group *g, int16_t err);
/* A consumer group became this classic group (its members rebuilt from the log records): their
 * sessions start and a rebalance begins, so that every member rejoins as a classic one. */
void gc_classic_downgraded(struct group *g, const char *reason);

/* offsets.c */
struct offset_entry *offsets_find(struct offset_table *t, const char *topic, int32_t partition);
/* Inserts or replaces; takes ownership of nothing (copies). NULL on OOM. */
struct offset_entry *offsets_put(struct offset_table *t, const char *topic, int32_t partition);
void offsets_remove(struct offset_table *t, const char *topic, int32_t partition);
void offsets_free(struct offset_table *t);

/* Replay of one OffsetCommit record (tombstone: remove). */
struct offset_commit_value;
void gc_replay_offset(struct group_coordinator *gc, const char *group, const char *topic,
                      int32_t partition, const struct offset_commit_value *v, bool tombstone);

/* records.c */
/* Persists a group's metadata (Kafka's storeGroup): GroupMetadataValue v3. */
int gc_store_group(struct group_coordinator *gc, struct group *g);
/* A growable list of records being prepared for one append. */
struct gc_record_list {
    struct gc_record *recs;
    struct gc_buf *bufs;         /* owned key/value buffers */
    int n, cap, nbufs, capbufs;
};
/* Adds a record owning key and value (value.p NULL = tombstone); frees them on failure. */
int records_add(struct gc_record_list *l, struct gc_buf key, struct gc_buf value);
int records_add_offset(struct gc_record_list *l, const char *group, const struct offset_entry *e);
int records_add_offset_tombstone(struct gc_record_list *l, const char *group, const char *topic,
                                 int32_t partition);
int records_add_group(struct gc_record_list *l, const struct group *g);
int records_add_group_tombstone(struct gc_record_list *l, const char *group);
void records_list_free(struct gc_record_list *l);
/* Appends the list to the group's partition (no-op when empty). */
int records_append(struct group_coordinator *gc, int32_t partition, struct gc_record_list *l);

/* Encoding helpers of records.c, shared with consumer_group_records.c: a kstr of a C string
 * (NULL -> null), and the writer's bytes moved into out (KERR_INVALID_RECORD if it failed). */
struct kwriter;
struct kstr gc_kstr(const char *s);
int gc_take(struct kwriter *w, struct gc_buf *out);

#endif
