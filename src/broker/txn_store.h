/* txn_store: the transaction coordinator (src/txn/) hosted by the broker — its txn_env over
 * __transaction_state, the partitions' markers and the event loop's timers (txn_store.c), and
 * what the transaction handlers share to call it. */
#ifndef GREGOR_BROKER_TXN_STORE_H
#define GREGOR_BROKER_TXN_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "broker/broker.h"
#include "common/util.h"
#include "txn/txn_coordinator.h"

#define TXN_STATE_TOPIC "__transaction_state"

struct txn_store;

/* Creates the coordinator and, on one node, replays __transaction_state (the topic itself is
 * created by the first write); arms the periodic checks. NULL when out of memory. */
struct txn_store *txn_store_create(struct broker *b);
void txn_store_destroy(struct txn_store *s);
/* The coordinator, or NULL (none: requests answer COORDINATOR_NOT_AVAILABLE). */
struct txn_coordinator *txn_store_coordinator(struct broker *b);

/* ZooKeeper's leaders changed: load the partitions of __transaction_state this broker now
 * leads, let go of the ones it no longer leads. */
void txn_store_cluster_sync(struct broker *b);
/* A cluster's FindCoordinator for a transactional id: the live broker that leads its partition
 * of the ZooKeeper topic __transaction_state (created on first use). KERR_NONE with *out, or
 * COORDINATOR_NOT_AVAILABLE. */
struct cluster_broker;
int16_t txn_store_find(struct broker *b, const char *transactional_id, struct cluster_broker *out);

/* One node's FindCoordinator for a transactional id: KERR_NONE once __transaction_state exists;
 * else its creation (in slices, over loop turns) is started or still going and the answer is
 * COORDINATOR_NOT_AVAILABLE, as Kafka answers until its internal topic is created. */
int16_t txn_store_topic_ready(struct broker *b);

/* Whether a partition exists (Kafka's metadata cache): in a cluster ZooKeeper's view, else the
 * local topics. */
bool txn_store_partition_known(struct broker *b, const char *topic, int32_t partition);

/* The outbound connection to live broker broker_id (kept per broker), or NULL. */
struct client_conn;
struct client_conn *txn_store_peer(struct broker *b, int32_t broker_id);

/* ---- for the handlers ---- */

/* A request waiting for the coordinator's answer, which may come before the call returns (an
 * answer from the request's own call) or later (a log append ends). */
struct txn_wait {
    struct request *r;
    bool returned;      /* the handler has returned REQUEST_PENDING */
    bool answered;
    struct txn_result res;
    void (*fill)(struct request *r, const struct txn_result *res); /* into r->resp */
};

static inline void txn_wait_cb(void *arg, const struct txn_result *res)
{
    struct txn_wait *w = arg;
    GREGOR_ASSERT(!w->answered);
    w->answered = true;
    w->res = *res;
    if (w->returned) {
        w->fill(w->r, res);
        request_finish(w->r);
    }
}

/* A waiter in the request's arena, or NULL (its memory bound). */
static inline struct txn_wait *txn_wait_new(struct request *r,
                                            void (*fill)(struct request *,
                                                         const struct txn_result *))
{
    struct txn_wait *w = request_alloc(r, sizeof(*w));
    if (w != NULL)
        *w = (struct txn_wait){.r = r, .fill = fill};
    return w;
}

/* After the coordinator call: DONE when it already answered, else PENDING. */
static inline enum request_status txn_wait_status(struct txn_wait *w)
{
    w->returned = true;
    if (!w->answered)
        return REQUEST_PENDING;
    w->fill(w->r, &w->res);
    return REQUEST_DONE;
}

/* A transactional id as the coordinator holds it (a C string in the request arena): NULL for a
 * null one, one holding a NUL (no id can be its prefix) or OOM. */
static inline const char *txn_id_of(struct request *r, struct kstr id)
{
    if (id.ptr == NULL || id.len < 0 || memchr(id.ptr, 0, (size_t)id.len) != NULL)
        return NULL;
    char *s = request_alloc(r, (size_t)id.len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, id.ptr, (size_t)id.len);
    s[id.len] = '\0';
    return s;
}

#endif
