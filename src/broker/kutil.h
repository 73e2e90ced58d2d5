/* kutil: small helpers handlers share for building responses. */
#ifndef GREGOR_BROKER_KUTIL_H
#define GREGOR_BROKER_KUTIL_H

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

/* Allocates an array of n elements for a response field; n may be 0. NULL on OOM. */
#define RESP_ARRAY(r, ptr, n) ((ptr) = request_alloc((r), sizeof(*(ptr)) * ((size_t)(n) + 1)))

/* Kafka's AclOperation codes (KIP-430 bitfields set bit 1 << code). */
enum acl_operation {
    ACL_OP_READ = 3,
    ACL_OP_WRITE = 4,
    ACL_OP_CREATE = 5,
    ACL_OP_DELETE = 6,
    ACL_OP_ALTER = 7,
    ACL_OP_DESCRIBE = 8,
    ACL_OP_CLUSTER_ACTION = 9,
    ACL_OP_DESCRIBE_CONFIGS = 10,
    ACL_OP_ALTER_CONFIGS = 11,
    ACL_OP_IDEMPOTENT_WRITE = 12,
};
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
