/* replica_manager: see replica_manager.h. One sync walks the cluster's topics: a partition
 * whose assignment names this broker is led (its epoch raised), followed (kept in or added to
 * the fetcher its leader, host and fetcher id name) or neither (leader -1 or not live); the
 * fetchers' partitions not kept by the walk are dropped and empty fetchers stop. A topic still
 * opening here is synced again shortly. */
#include <stdlib.h>
#include <string.h>

#include "broker/sasl.h"
#include "broker/broker.h"
#include "broker/handlers.h"
#include "broker/replica_fetcher.h"
#include "broker/replica_manager.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "net/client.h"
#include "partition/partition_follow.h"

#define WHO "ReplicaManager"
/* A topic still being opened here is looked at again after this long. */
#define RESYNC_MS 100

struct replica_manager {
    struct broker *b;
    struct client *client;        /* the fetchers' connections */
    struct replica_fetcher **fetchers;
    int nfetchers, cap;
    uint64_t resync_timer;
};

struct replica_manager *replica_manager_create(struct broker *b)
{
    struct replica_manager *rm = calloc(1, sizeof(*rm));
    if (rm == NULL)
        return NULL;
    rm->b = b;
    struct client_config cc;
    client_config_defaults(&cc);
    char id[64];
    snprintf(id, sizeof(id), "broker-%d-fetcher", b->cfg.node_id);
    cc.client_id = id;
    cc.request_timeout_ms = b->cfg.replica_socket_timeout_ms;
    sasl_client_config(b, &cc); /* inter.broker.listener.name's TLS and SASL */
    rm->client = client_create(b->loop, &cc);
    if (rm->client == NULL) {
        LOG_ERROR(WHO, "cannot create the replica fetchers' client");
        free(rm);
        return NULL;
    }
    return rm;
}

void replica_manager_destroy(struct replica_manager *rm)
{
    if (rm == NULL)
        return;
    if (rm->resync_timer != 0)
        broker_timer_cancel(rm->b, rm->resync_timer);
    for (int i = 0; i < rm->nfetchers; i++)
        replica_fetcher_destroy(rm->fetchers[i]);
    free(rm->fetchers);
    client_destroy(rm->client);
    free(rm);
}

int replica_manager_fetchers(const struct replica_manager *rm) { return rm ? rm->nfetchers : 0; }

static struct replica_fetcher *fetcher_for(struct replica_manager *rm, int32_t leader, int fid,
                                           const struct cluster_broker *cb)
{
    for (int i = 0; i < rm->nfetchers; i++)
        if (replica_fetcher_is(rm->fetchers[i], leader, fid, cb->host, cb->port))
            return rm->fetchers[i];
    if (rm->nfetchers == rm->cap) {
        int cap = rm->cap ? rm->cap * 2 : 8;
        struct replica_fetcher **nf = realloc(rm->fetchers, (size_t)cap * sizeof(*nf));
        if (nf == NULL)
            return NULL;
        rm->fetchers = nf;
        rm->cap = cap;
    }
    struct replica_fetcher *f = replica_fetcher_create(rm->b, rm->client, leader, fid, cb->host,
                                                       cb->port);
    if (f != NULL)
        rm->fetchers[rm->nfetchers++] = f;
    return f;
}

static const struct cluster_broker *live_broker(const struct cluster_broker *bs, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (bs[i].id == id)
            return &bs[i];
    return NULL;
}

static bool assigned_here(const struct cluster_partition *cp, int32_t me)
{
    for (int32_t r = 0; r < cp->nreplicas; r++)
        if (cp->replicas[r] == me)
            return true;
    return false;
}

static void resync_timer(struct broker *b, void *arg)
{
    (void)b;
    struct replica_manager *rm = arg;
    rm->resync_timer = 0;
    replica_manager_sync(rm);
}

/* Leading: the controller's leader epoch, which clients send back in Fetch and ListOffsets. */
static void make_leader(struct replica_manager *rm, const struct cluster_topic *ct, int32_t p,
                        struct partition *lp)
{
    int32_t epoch = ct->parts[p].leader_epoch;
    if (epoch > lp->leader_epoch && partition_become_leader(lp, epoch) != KERR_NONE)
        LOG_LIMITED(LOG_LEVEL_WARN, WHO, "cannot record leader epoch %d of %s-%d", epoch,
                    ct->name, p);
    (void)rm;
}

/* Following: kept in its fetcher when nothing changed, else handed to the right one
 * (truncating first). */
static void make_follower(struct replica_manager *rm, const struct cluster_topic *ct, int32_t p,
                          struct partition *lp, const struct cluster_broker *leader)
{
    const struct cluster_partition *cp = &ct->parts[p];
    int fid = replica_fetcher_id(ct->name, p, rm->b->cfg.num_replica_fetchers);
    struct replica_fetcher *f = fetcher_for(rm, cp->leader, fid, leader);
    if (f == NULL)
        return;
    if (replica_fetcher_keep(f, ct->name, ct->id, p, cp->leader_epoch))
        return;
    partition_become_follower(lp, cp->leader_epoch);
    if (replica_fetcher_add(f, ct->name, ct->id, p, cp->leader_epoch) != 0)
        LOG_LIMITED(LOG_LEVEL_ERROR, WHO, "out of memory adding %s-%d to a fetcher", ct->name, p);
}

/* Kafka's StopReplica with delete=true after a reassignment moved every replica of a topic
 * off this broker: its local logs go (the fetchers already let its partitions go). A topic
 * still opening or growing here is looked at next time; internal topics stay. */
static void drop_unassigned(struct broker *b, struct cluster_topic *const *ts, int n, int32_t me)
{
    for (int i = 0; i < n; i++) {
        const struct cluster_topic *ct = ts[i];
        if (!ct->read || ct->gone || !cluster_topic_visible(ct) || ct->npartitions == 0)
            continue;
        bool here = false, known = true;
        for (int32_t p = 0; p < ct->npartitions && !here; p++) {
            here = assigned_here(&ct->parts[p], me);
            known &= ct->parts[p].nreplicas > 0;
        }
        struct topic *t = here || !known ? NULL : topic_find(b, ct->name);
        if (t == NULL || t->internal || t->creating > 0 || t->growing > 0 ||
            memcmp(t->id.b, ct->id, 16) != 0)
            continue;
        LOG_INFO(WHO, "No replica of topic %s is assigned to broker %d any more: deleting its "
                 "logs", ct->name, me);
        broker_cluster_topic_gone(b, ct->name);
    }
}

void replica_manager_sync(struct replica_manager *rm)
{
    struct broker *b = rm->b;
    if (b->cluster == NULL || b->stopping)
        return;
    int32_t me = b->cfg.node_id;
    const struct cluster_broker *bs;
    int nb = cluster_brokers(b->cluster, &bs);
    struct cluster_topic *const *ts;
    int n = cluster_topics(b->cluster, &ts);
    bool again = false;
    for (int i = 0; i < rm->nfetchers; i++)
        replica_fetcher_unmark_all(rm->fetchers[i]);
    for (int i = 0; i < n; i++) {
        const struct cluster_topic *ct = ts[i];
        if (!ct->read || ct->gone || !cluster_topic_visible(ct) || !ct->config_known)
            continue; /* queued for deletion, or its configs not read yet */
        bool here = false;
        for (int32_t p = 0; p < ct->npartitions && !here; p++)
            here = assigned_here(&ct->parts[p], me);
        if (!here)
            continue;
        struct topic *t = topic_find(b, ct->name);
        if (t == NULL) {
            if (broker_cluster_open_topic(b, ct) == 0)
                again = true;
            continue;
        }
        if (t->creating > 0 || t->growing > 0 || memcmp(t->id.b, ct->id, 16) != 0) {
            again = t->creating > 0 || t->growing > 0;
            continue;
        }
        for (int32_t p = 0; p < ct->npartitions && p < t->npartitions; p++) {
            const struct cluster_partition *cp = &ct->parts[p];
            if (!assigned_here(cp, me) || cp->leader < 0)
                continue;
            if (cp->leader == me) {
                make_leader(rm, ct, p, t->partitions[p]);
                continue;
            }
            const struct cluster_broker *lb = live_broker(bs, nb, cp->leader);
            if (lb != NULL)
                make_follower(rm, ct, p, t->partitions[p], lb);
        }
    }
    int kept = 0;
    for (int i = 0; i < rm->nfetchers; i++) {
        replica_fetcher_drop_unmarked(rm->fetchers[i]);
        if (replica_fetcher_count(rm->fetchers[i]) == 0)
            replica_fetcher_destroy(rm->fetchers[i]);
        else
            rm->fetchers[kept++] = rm->fetchers[i];
    }
    rm->nfetchers = kept;
    drop_unassigned(b, ts, n, me);
    if (again && rm->resync_timer == 0)
        rm->resync_timer = broker_timer_add(b, mono_ms() + RESYNC_MS, resync_timer, rm);
}
