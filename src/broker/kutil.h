/* kutil: small helpers handlers share for building responses. */
#ifndef GREGOR_BROKER_KUTIL_H
#define GREGOR_BROKER_KUTIL_H

#include "broker/authorizer.h"
#include <stdint.h>
#include <string.h>

#include "broker/broker.h"

/* A response string borrowing s (a literal or memory that outlives the response). */
static inline struct kstr kstr_of(const char *s)
{
    struct kstr k = {(char *)s, s ? (int32_t)strlen(s) : -1};
    return k;
}

static inline struct kstr kstr_null(void)
{
    struct kstr k = {NULL, -1};
    return k;
}

/* A nullable response string borrowing s: null for NULL or "" (a broker's rack when none). */
static inline struct kstr kstr_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? kstr_of(s) : kstr_null();
}

/* Allocates an array of n elements for a response field; n may be 0. NULL on OOM. */
#define RESP_ARRAY(r, ptr, n) ((ptr) = request_alloc((r), sizeof(*(ptr)) * ((size_t)(n) + 1)))

/* The topic x partition fan-out of the per-partition answers (DeleteRecords,
 * OffsetForLeaderEpoch, DescribeProducers, OffsetCommit, OffsetDelete): for each topic of
 * req->TOPICS a response topic in resp->TOPICS named as asked (NAME; "" for null) with as many
 * partitions (RPARTS) as the request topic has (PARTS); then STMT runs for each partition, with
 * `t` (the topic of that name, or NULL), `ti` and `to` (request and response topic) and `j` (the
 * partition's index in both) in scope. Returns REQUEST_CLOSE from the handler when the request's
 * memory bound is reached. */
#define FANOUT(r, b, req, resp, TOPICS, NAME, PARTS, RPARTS, STMT)                           \
    do {                                                                                      \
        int32_t fo_n = (req)->n_##TOPICS > 0 ? (req)->n_##TOPICS : 0;                         \
        RESP_ARRAY(r, (resp)->TOPICS, fo_n);                                                  \
        if ((resp)->TOPICS == NULL)                                                           \
            return REQUEST_CLOSE;                                                             \
        (resp)->n_##TOPICS = fo_n;                                                            \
        for (int32_t fo_i = 0; fo_i < fo_n; fo_i++) {                                         \
            __typeof__(&(req)->TOPICS[0]) ti = &(req)->TOPICS[fo_i];                          \
            __typeof__(&(resp)->TOPICS[0]) to = &(resp)->TOPICS[fo_i];                        \
            to->NAME = ti->NAME.ptr ? ti->NAME : kstr_of("");                                 \
            struct topic *t = topic_find_name((b), ti->NAME);                                 \
            int32_t fo_np = ti->n_##PARTS > 0 ? ti->n_##PARTS : 0;                            \
            RESP_ARRAY(r, to->RPARTS, fo_np);                                                 \
            if (to->RPARTS == NULL)                                                           \
                return REQUEST_CLOSE;                                                         \
            to->n_##RPARTS = fo_np;                                                           \
            (void)t;                                                                          \
            for (int32_t j = 0; j < fo_np; j++) {                                             \
                STMT                                                                          \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* Kafka's AclOperation codes (enum acl_operation, authorizer.h); KIP-430 bitfields set bit
 * 1 << code. */
#define ACL_BIT(op) ((int32_t)1 << (op))

/* Authorized operations as Kafka answers them without an authorizer: every operation the resource
 * type supports (AclEntry.supportedOperations). Sent only when the request asks for them;
 * otherwise the schema default AUTHORIZED_OPS_NOT_REQUESTED. */
#define AUTHORIZED_OPS_NOT_REQUESTED INT32_MIN
#define AUTHORIZED_OPS_TOPIC                                                                  \
    (ACL_BIT(ACL_OP_READ) | ACL_BIT(ACL_OP_WRITE) | ACL_BIT(ACL_OP_CREATE) |                  \
     ACL_BIT(ACL_OP_DESCRIBE) | ACL_BIT(ACL_OP_DELETE) | ACL_BIT(ACL_OP_ALTER) |              \
     ACL_BIT(ACL_OP_DESCRIBE_CONFIGS) | ACL_BIT(ACL_OP_ALTER_CONFIGS))
#define AUTHORIZED_OPS_GROUP                                                                  \
    (ACL_BIT(ACL_OP_READ) | ACL_BIT(ACL_OP_DESCRIBE) | ACL_BIT(ACL_OP_DELETE) |               \
     ACL_BIT(ACL_OP_DESCRIBE_CONFIGS) | ACL_BIT(ACL_OP_ALTER_CONFIGS))
#define AUTHORIZED_OPS_CLUSTER                                                                \
    (ACL_BIT(ACL_OP_CREATE) | ACL_BIT(ACL_OP_CLUSTER_ACTION) | ACL_BIT(ACL_OP_DESCRIBE_CONFIGS) | \
     ACL_BIT(ACL_OP_ALTER_CONFIGS) | ACL_BIT(ACL_OP_IDEMPOTENT_WRITE) | ACL_BIT(ACL_OP_ALTER) |  \
     ACL_BIT(ACL_OP_DESCRIBE))

#endif
