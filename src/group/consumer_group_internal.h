/* consumer_group_internal: the state of KIP-848 consumer groups shared by consumer_group.c (the
 * heartbeat state machine) and consumer_group_records.c (records, replay, snapshots), and the
 * hooks the classic coordinator calls (coordinator.c, offsets.c, records.c). */
#ifndef GREGOR_GROUP_CONSUMER_GROUP_INTERNAL_H
#define GREGOR_GROUP_CONSUMER_GROUP_INTERNAL_H

#include <regex.h>

#include "group/consumer_group.h"
#include "group/group_internal.h"

/* Kafka's MemberState values, as written in ConsumerGroupCurrentMemberAssignmentValue.State. */
enum cg_member_state {
    CG_STABLE = 0,
    CG_UNREVOKED_PARTITIONS = 1,
    CG_UNRELEASED_PARTITIONS = 2,
    CG_UNKNOWN_STATE = 127,
};

/* A set of partitions: sorted by (topic id, partition), no duplicates, malloc'ed. */
struct cg_tps {
    struct cg_tp *v;
    int n;
};

struct cg_member {
    struct cg_group *cg;
    char *id;
    /* ConsumerGroupMemberMetadataValue */
    char *instance_id;
    char *rack_id;
    char *client_id;
    char *client_host;
    char **topics;
    int n_topics;
    char *regex;                 /* NULL = none */
    regex_t re;                  /* compiled regex when re_ok */
    bool re_ok;
    int32_t rebalance_timeout_ms;
    char *assignor;              /* NULL = none named */
    /* ConsumerGroupCurrentMemberAssignmentValue */
    int32_t epoch;
    int32_t previous_epoch;
    int8_t state;
    struct cg_tps assigned;
    struct cg_tps pending_revocation;
    /* ConsumerGroupTargetAssignmentMemberValue */
    struct cg_tps target;
    /* ClassicMemberMetadata: a member speaking the classic protocol (JoinGroup / SyncGroup /
     * Heartbeat) in this consumer group, with the session timeout and protocols it joined with
     * (online migration, consumer_group_classic.c). */
    bool classic;
    int32_t classic_session_timeout_ms;
    struct member_protocol *classic_protocols; /* owned */
    int n_classic_protocols;
    int64_t classic_rejoin_deadline; /* not persisted: told to rejoin (REBALANCE_IN_PROGRESS)
                                      * at a heartbeat, it must by then (0 = not told) */
    /* Which of the member's three records are live in the log (live-record accounting). */
    bool has_metadata, has_target, has_current;
    /* Not persisted: session and revocation deadlines. */
    int64_t session_deadline;
    struct gc_timer session_timer;
    int32_t rebalance_epoch;     /* the epoch whose revocation the rebalance timer guards */
    struct gc_timer rebalance_timer;
    struct cg_member *next;
    struct cg_member *prev;
};

/* How many members subscribe to a topic by name (each member once), so that a heartbeat
 * resolves the group's topics without visiting its members. */
struct cg_sub_count {
    char *name;                  /* owned; the key in cg_group.subs */
    int32_t count;
    uint32_t stamp;              /* scratch of the counting passes */
};

/* Partition -> how many members own it (assigned or pending revocation): open addressing,
 * entries stay at count 0 (bounded by the partitions the group ever owned). */
struct cg_owner_slot {
    struct cg_tp tp;
    int32_t count;
    bool used;
};
struct cg_owners {
    struct cg_owner_slot *slots;
    size_t cap, n;
};

struct cg_group {
    struct group *g;             /* the coordinator's group entry (offsets, partition) */
    int32_t epoch;               /* group epoch (ConsumerGroupMetadataValue) */
    int32_t assignment_epoch;    /* target assignment epoch */
    bool has_metadata, has_target_metadata;
    struct cg_member *members;   /* in join order */
    struct cg_member *members_tail;
    int n_members;
    struct strtab by_id;         /* member id -> member */
    struct strtab subs;          /* topic name -> cg_sub_count, over all members */
    uint32_t sub_stamp;
    int n_regex;                 /* members with a compiled regex */
    struct strtab classic_protocols; /* protocol name -> cg_sub_count, over classic members */
    int n_classic;               /* classic members (ClassicMemberMetadata) */
    struct cg_owners owners;
    bool metadata_known;         /* metadata_hash holds the subscribed topics' shape */
    uint64_t metadata_hash;
};

/* consumer_group.c */
/* The member's session timeout: its classic one, or group.consumer.session.timeout.ms. */
int32_t cg_member_session_timeout(const struct group_coordinator *gc, const struct cg_member *m);
/* A sign of life (heartbeat, sync, commit): the session deadline moves on, but never past a
 * classic member's rejoin deadline (Kafka's join timeout). */
void cg_member_touch(struct group_coordinator *gc, struct cg_member *m);
/* Replaces a member's classic protocols with a copy of protocols (n < 0: not classic). */
void cg_member_set_classic(struct cg_member *m, int32_t session_timeout_ms,
                           const struct gc_protocol *protocols, int n);
struct cg_member *cg_member_find(const struct cg_group *cg, const char *id);
struct cg_member *cg_member_by_instance(const struct cg_group *cg, const char *instance);
/* A random member id (a UUID in Kafka's base64url); malloc'ed. */
char *cg_new_member_id(void);
/* Is a partition of m's target still owned by another member (Kafka's
 * waitingOnUnreleasedPartition)? */
bool cg_waiting_on_unreleased(const struct cg_group *cg, const struct cg_member *m);
struct cg_member *cg_member_get_or_create(struct cg_group *cg, const char *id);
void cg_member_free(struct group_coordinator *gc, struct cg_member *m);
/* Removes a member (leave or fence): tombstones for its records and a new group epoch, or the
 * downgrade of the group when only classic members would remain. A KERR code. */
int cg_fence_member(struct group_coordinator *gc, struct group *g, struct cg_member *m,
                    const char *why);
/* Unlinks and frees a member (its records must be tombstoned already). */
void cg_member_remove(struct cg_group *cg, struct cg_member *m);
struct cg_group *cg_attach(struct group *g);
/* Compiles the member's regex (full match, POSIX ERE); false when it does not compile. */
bool cg_member_set_regex(struct cg_member *m, const char *regex);
const char *cg_group_assignor(const struct cg_group *cg);
/* Index upkeep when a member's subscription or ownership is replaced: -1 before, +1 after. */
void cg_subs_count(struct cg_group *cg, const struct cg_member *m, int delta);
void cg_owners_count(struct cg_group *cg, const struct cg_member *m, int delta);
void cg_classic_count(struct cg_group *cg, const struct cg_member *m, int delta);
/* Kafka's supportsClassicProtocols for a group with members: one of the protocols is listed by
 * every classic member (true when there is none). */
bool cg_classic_supported(const struct cg_group *cg, const struct gc_protocol *protocols, int n);

/* consumer_group_records.c: encoders add to a record list. */
int cg_rec_group_metadata(struct gc_record_list *l, const char *group, int32_t epoch, bool tomb);
int cg_rec_member_metadata(struct gc_record_list *l, const char *group, const struct cg_member *m,
                           bool tomb);
int cg_rec_target_metadata(struct gc_record_list *l, const char *group, int32_t epoch, bool tomb);
int cg_rec_target_member(struct gc_record_list *l, const char *group, const char *member,
                         const struct cg_tps *target, bool tomb);
int cg_rec_current(struct gc_record_list *l, const char *group, const char *member, int32_t epoch,
                   int32_t previous_epoch, int8_t state, const struct cg_tps *assigned,
                   const struct cg_tps *pending, bool tomb);
/* Appends l to the group's partition and, when it is written, applies it by replaying it. */
int cg_append_and_apply(struct group_coordinator *gc, int32_t partition, struct gc_record_list *l);

/* Partition sets. */
void cg_tps_free(struct cg_tps *s);
void cg_tps_copy(struct cg_tps *dst, const struct cg_tps *src);
void cg_tps_from(struct cg_tps *dst, const struct cg_tp *v, int n); /* sorts, dedups */
bool cg_tps_contains(const struct cg_tps *s, const struct kuuid *topic, int32_t partition);
bool cg_tps_equal(const struct cg_tps *a, const struct cg_tps *b);

/* ---- hooks for the classic coordinator ---- */

/* Frees a group's consumer-group state (gc_group_remove). */
void cg_group_free(struct group *g);
/* GC_TIMER_CG_SESSION / GC_TIMER_CG_REBALANCE. */
void cg_timer_fire(struct group_coordinator *gc, struct gc_timer *t);
/* Replays one record of key version 3..8 (key reader positioned after the version). */
struct kreader;
struct arena;
int cg_replay_record(struct group_coordinator *gc, int16_t key_version, struct kreader *key,
                     const uint8_t *value, int32_t value_len, struct arena *arena);
/* After replay: members' sessions start. */
void cg_replay_done(struct group_coordinator *gc, int32_t partition); /* -1: all */
/* Adds a consumer group's live records (snapshots for the topic rewrite). */
int cg_snapshot_group(struct group *g, struct gc_record_list *l);
/* Adds tombstones for every live record of a consumer group (delete, expiry). */
int cg_records_add_tombstones(struct gc_record_list *l, struct group *g);
/* OffsetCommit into a consumer group (Kafka's ConsumerGroup.validateOffsetCommit). */
int16_t cg_validate_commit(struct group *g, const struct gc_commit_args *a);
int16_t cg_validate_fetch(struct group *g, const char *member_id, int32_t member_epoch);
/* OffsetDelete: does a member subscribe to topic (by name or regex)? */
bool cg_subscribed_to(const struct group *g, const char *topic);
/* Kafka's ConsumerGroupState name: Empty, Assigning, Reconciling, Stable. */
const char *cg_state_name(const struct group *g);
/* A classic JoinGroup met a consumer group: INCONSISTENT_GROUP_PROTOCOL while it has members;
 * an empty one becomes classic (its records are tombstoned, its offsets stay). */
int16_t cg_classic_join(struct group_coordinator *gc, struct group *g);

/* ---- online migration (consumer_group_classic.c, KIP-848) ---- */

/* Classic protocol members in a consumer group (Kafka's classicGroup*ToConsumerGroup). */
struct cg_classic_join {
    const struct gc_join_args *join;
    const struct cg_tp *owned;         /* from the subscription's OwnedPartitions */
    int n_owned;
    const char *const *topics;         /* the subscription's topics */
    int n_topics;
    const char *rack_id;
};
/* The core of a heartbeat (join or update) with the member already found: consumer_group.c. */
int16_t cg_heartbeat_apply(struct group_coordinator *gc, const struct cg_topic_view *tv,
                           struct group *g, const struct cg_heartbeat_args *a,
                           struct cg_member *existing, const char *replaced,
                           const struct cg_classic_join *classic, struct cg_heartbeat_result *out);
void cg_classic_join_group(struct group_coordinator *gc, struct group *g,
                           const struct gc_join_args *a, gc_join_cb cb, void *arg);
void cg_classic_sync_group(struct group_coordinator *gc, struct group *g,
                           const struct gc_sync_args *a, gc_sync_cb cb, void *arg);
int16_t cg_classic_heartbeat(struct group_coordinator *gc, struct group *g, int32_t generation,
                             const char *member_id, const char *instance_id);
/* LeaveGroup of classic members; returns how many entries it handled (fewer than n when the
 * group was downgraded: the rest are the classic group's). */
int cg_classic_leave(struct group_coordinator *gc, struct group *g, struct gc_leave_member *lm,
                     int n);
/* A ConsumerGroupHeartbeat join met a classic group with members: converts it (upgrade) when the
 * migration policy and the group allow. Returns the group (its entry may be a new one), NULL
 * when it stays classic. */
struct group *cg_upgrade_classic_group(struct group_coordinator *gc, struct group *g);
/* A member is leaving (NULL: a classic static member just replaced a consumer-protocol one):
 * when only classic members would remain (and the policy allows), the group becomes a classic
 * group instead (downgrade) and rebalances. Returns true when it did. */
bool cg_maybe_downgrade(struct group_coordinator *gc, struct group *g, struct cg_member *leaving);

#endif
