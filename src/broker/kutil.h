/* kutil: small helpers handlers share for building responses. */
#ifndef GREGOR_BROKER_KUTIL_H
#define GREGOR_BROKER_KUTIL_H

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

#endif
