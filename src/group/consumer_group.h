/* consumer_group: KIP-848 consumer groups (ConsumerGroupHeartbeat / ConsumerGroupDescribe) — the
 * server-side assignors, member epochs, reconciliation with revocation before reassignment, and
 * their __consumer_offsets records (key versions 3, 5–8). Socket-free, like coordinator.h. */
#ifndef GREGOR_GROUP_CONSUMER_GROUP_H
#define GREGOR_GROUP_CONSUMER_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "group/coordinator.h"
#include "proto/kbuf.h"

/* Errors of the consumer protocol that common/errors.h does not name (Kafka's Errors.java). */
#define CG_ERR_FENCED_MEMBER_EPOCH 110
#define CG_ERR_UNRELEASED_INSTANCE_ID 111
#define CG_ERR_UNSUPPORTED_ASSIGNOR 112
#define CG_ERR_STALE_MEMBER_EPOCH 113
#define CG_ERR_INVALID_REGULAR_EXPRESSION 128

/* Kafka's defaults (group.consumer.session.timeout.ms / heartbeat.interval.ms / max.size). */
#define CG_DEFAULT_SESSION_TIMEOUT_MS 45000
#define CG_DEFAULT_HEARTBEAT_INTERVAL_MS 5000

/* Member epochs with a meaning of their own. */
#define CG_JOIN_EPOCH 0
#define CG_LEAVE_EPOCH (-1)
#define CG_STATIC_LEAVE_EPOCH (-2)

/* One partition of a topic, by topic id (the consumer protocol never names topics). */
struct cg_tp {
    struct kuuid topic_id;
    int32_t partition;
};

struct cg_heartbeat_args {
    int16_t version;
    const char *group_id;
    const char *member_id;          /* "" = none */
    int32_t member_epoch;
    const char *instance_id;        /* NULL = not given */
    const char *rack_id;            /* NULL = unchanged */
    int32_t rebalance_timeout_ms;   /* -1 = unchanged */
    const char *const *topics;      /* NULL (n_topics -1) = unchanged */
    int32_t n_topics;
    const char *regex;              /* NULL = unchanged; "" = none */
    const char *assignor;           /* NULL = unchanged */
    const struct cg_tp *owned;      /* NULL (n_owned -1) = unchanged */
    int32_t n_owned;
    const char *client_id;
    const char *client_host;
};

struct cg_heartbeat_result {
    int16_t error;
    char error_message[200];        /* "" = null */
    char *member_id;                /* malloc'ed; NULL = null */
    int32_t member_epoch;
    int32_t heartbeat_interval_ms;
    bool has_assignment;
    struct cg_tp *assignment;       /* malloc'ed, sorted */
    int n_assignment;
};

void cg_heartbeat(struct group_coordinator *gc, const struct cg_topic_view *topics,
                  const struct cg_heartbeat_args *a, struct cg_heartbeat_result *out);
void cg_heartbeat_result_free(struct cg_heartbeat_result *r);

/* ConsumerGroupDescribe. Strings and arrays borrow the coordinator until its next change. */
struct cg_member_desc {
    const char *member_id;
    const char *instance_id;
    const char *rack_id;
    const char *client_id;
    const char *client_host;
    char *const *topics;
    int n_topics;
    const char *regex;
    int32_t member_epoch;
    const struct cg_tp *assigned;
    int n_assigned;
    const struct cg_tp *target;
    int n_target;
};
struct cg_group_desc {
    int16_t error;                  /* GROUP_ID_NOT_FOUND for unknown and classic groups */
    const char *error_message;
    const char *state;
    int32_t group_epoch;
    int32_t assignment_epoch;
    const char *assignor;
    struct cg_member_desc *members; /* malloc'ed: cg_describe_free */
    int n_members;
};
void cg_describe(struct group_coordinator *gc, const char *group_id, struct cg_group_desc *out);
void cg_describe_free(struct cg_group_desc *d);

/* ---- the assignors (consumer_group_assignor.c), pure functions ---- */

struct cg_assign_topic {
    struct kuuid id;
    const char *name;
    int32_t partitions;
};
struct cg_assign_member {
    const char *id;
    const bool *subscribed;         /* [n_topics] */
    const struct cg_tp *previous;   /* the last target (stickiness) */
    int n_previous;
    struct cg_tp *out;              /* malloc'ed by cg_assign, sorted */
    int n_out;
};
/* "uniform" (balanced and sticky; counts differ by at most one among members that could take a
 * partition) or "range" (per topic, contiguous ranges by member id order, sticky within quota).
 * Returns 0, or -1 for an unknown assignor name. steps (NULL = none) counts the work done. */
int cg_assign(const char *assignor, const struct cg_assign_topic *topics, int n_topics,
              struct cg_assign_member *members, int n_members, uint64_t *steps);
bool cg_assignor_known(const char *name);

/* ---- helpers on partition sets (sorted by topic id, then partition) ---- */
int cg_tp_cmp(const void *a, const void *b);
void cg_tp_sort(struct cg_tp *v, int n);

#endif
