/* group_handler_util: what the group API handlers (src/broker/) share — copying coordinator
 * results into the request arena, the client host as Kafka prints it, and the pending-request shape. */
#ifndef GREGOR_BROKER_GROUP_HANDLER_UTIL_H
#define GREGOR_BROKER_GROUP_HANDLER_UTIL_H

#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "group/coordinator.h"
#include "net/conn.h"

/* The error for ids the coordinator cannot hold (it compares them as C strings: one holding a
 * NUL would read as its prefix, another group's or member's id), KERR_NONE when they are fine.
 * Absent ids (ptr NULL) are fine here. */
static inline int16_t gh_ids_error(struct kstr group, struct kstr member, struct kstr instance)
{
    if (kstr_has_nul(group))
        return KERR_INVALID_GROUP_ID;
    if (kstr_has_nul(member) || kstr_has_nul(instance))
        return KERR_UNKNOWN_MEMBER_ID; /* no member has such an id */
    return KERR_NONE;
}

/* A copy of s in the request arena (the coordinator's memory may change before the response is
 * encoded); NULL stays null. On OOM an empty string (never a crash, never a wrong null). */
static inline struct kstr gh_str(struct request *r, const char *s)
{
    struct kstr k = {NULL, -1};
    if (s == NULL)
        return k;
    size_t n = strlen(s);
    char *d = request_alloc(r, n + 1);
    if (d == NULL) {
        k.ptr = (char *)"";
        k.len = 0;
        return k;
    }
    memcpy(d, s, n);
    k.ptr = d;
    k.len = (int32_t)n;
    return k;
}

/* As gh_str, but NULL becomes "" (non-nullable fields). */
static inline struct kstr gh_str_nn(struct request *r, const char *s)
{
    return gh_str(r, s ? s : "");
}

/* Non-null bytes copied into the arena (len <= 0: empty). */
static inline struct kbytes gh_bytes(struct request *r, const uint8_t *p, int32_t len)
{
    struct kbytes b;
    if (len < 0 || p == NULL)
        len = 0;
    b.ptr = request_alloc(r, (size_t)len + 1);
    b.len = b.ptr ? len : 0;
    if (b.ptr == NULL)
        b.ptr = (uint8_t *)"";
    else if (len > 0)
        memcpy(b.ptr, p, (size_t)len);
    return b;
}

/* Kafka's client host: "/<address>" of the connection. */
static inline const char *gh_client_host(struct request *r)
{
    if (r->conn == NULL)
        return "";
    const char *peer = conn_peer(r->conn);
    size_t n = strlen(peer);
    const char *colon = strrchr(peer, ':');
    if (colon != NULL)
        n = (size_t)(colon - peer);
    char *d = request_alloc(r, n + 2);
    if (d == NULL)
        return "";
    d[0] = '/';
    memcpy(d + 1, peer, n);
    d[n + 1] = '\0';
    return d;
}

/* A request that the coordinator may answer now or later (JoinGroup, SyncGroup): the callback
 * fills r->resp, then either the handler returns REQUEST_DONE or the callback finishes it. */
struct gh_wait {
    struct request *r;
    bool in_handler;
    bool done;
};

static inline void gh_wait_complete(struct gh_wait *w)
{
    w->done = true;
    if (!w->in_handler)
        request_finish(w->r);
}

/* Sets error on every partition of a commit response (resp->topics[].partitions[]) still
 * answered NONE. A macro because OffsetCommit's and TxnOffsetCommit's responses are distinct
 * types with the same fields; the compiler checks those fields on each. */
#define GH_SET_UNANSWERED_PARTITIONS(resp, error)                                    \
    do {                                                                             \
        for (int32_t gh_i_ = 0; gh_i_ < (resp)->n_topics; gh_i_++)                   \
            for (int32_t gh_j_ = 0; gh_j_ < (resp)->topics[gh_i_].n_partitions; gh_j_++) \
                if ((resp)->topics[gh_i_].partitions[gh_j_].error_code == KERR_NONE)  \
                    (resp)->topics[gh_i_].partitions[gh_j_].error_code = (error);    \
    } while (0)

#endif
