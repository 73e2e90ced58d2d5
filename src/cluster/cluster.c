/* cluster: see cluster.h. One state machine driven by session events and completions: each
 * step (persistent paths, cluster id, registration, the brokers' watch, the controller's watch
 * and election) has an in-flight flag, and cluster_resume issues whatever is missing, on every
 * (re)connection and after a retry delay, so a lost connection or an expired session only
 * repeats steps. Results of a replaced session are dropped. */
#include "cluster/cluster.h"

#include <ctype.h>
#include <errno.h>
#include <execinfo.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cluster/zk.h"
#include "cluster/znode.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "net/loop.h"

_Static_assert(CLUSTER_REPLICAS_MAX == ZNODE_REPLICAS_MAX, "one replica bound");

#define CLUSTER_JSON_MAX 2048

/* Kafka's persistent paths (ZkData's PersistentZkPaths), parents first: ZooKeeper applies one
 * session's requests in order, so they are sent at once. */
static const char *const persistent_paths[] = {
    "/consumers", "/brokers", "/brokers/ids", "/brokers/topics", "/brokers/seqid", "/config",
    "/config/changes", "/config/topics", "/config/clients", "/config/users", "/config/brokers",
    "/config/ips", "/admin", "/admin/delete_topics", "/isr_change_notification",
    "/latest_producer_id_block", "/log_dir_event_notification", "/cluster",
};
#define NPERSISTENT ((int)(sizeof(persistent_paths) / sizeof(persistent_paths[0])))

struct cluster {
    struct loop *loop;
    struct zk *zk;
    struct cluster_config cfg;
    char connect[1024];
    char listener_name[64];
    char host[CLUSTER_HOST_MAX];
    char rack[CLUSTER_RACK_MAX];    /* broker.rack ("": none) */
    int64_t change_expiry_ms;       /* change notifications older than this are purged */
    char who[64];
    uint64_t gen;                   /* the session the flags below belong to */
    bool started;                   /* cluster_await_registration succeeded */
    bool fatal;                     /* startup must stop (logged) */
    /* steps */
    int paths_left;                 /* persistent paths still being created */
    bool paths_done, paths_inflight;
    char cluster_id[64];
    bool id_inflight;
    bool want_register, registered, register_inflight;
    bool brokers_watch, brokers_inflight;
    bool controller_watch, controller_inflight, elect_inflight;
    bool topics_watch, topics_inflight, states_inflight;
    bool brokers_seen;              /* /brokers/ids listed once in this session */
    bool deletes_watch, deletes_inflight;
    bool deletes_seen;              /* listed once in this session, before registering */
    int ndeletes;                   /* /admin/delete_topics' children */
    char **deletes;
    uint64_t retry_timer;
    /* what is known */
    int32_t controller_id;
    int32_t controller_epoch;       /* ours, when controller */
    bool is_controller;
    int nbrokers;                   /* listed under /brokers/ids, by id */
    struct cluster_broker brokers[CLUSTER_BROKERS_MAX];
    bool known[CLUSTER_BROKERS_MAX];/* its endpoints were read */
    int nlive;                      /* the known ones, and this broker once registered */
    struct cluster_broker live[CLUSTER_BROKERS_MAX];
    /* brokers_listed's scratch */
    int32_t scratch_ids[CLUSTER_BROKERS_MAX];
    struct cluster_broker scratch_next[CLUSTER_BROKERS_MAX];
    bool scratch_known[CLUSTER_BROKERS_MAX];
    /* topics */
    int ntopics, topics_cap;
    struct cluster_topic **topics;
    struct create_op *creates;      /* admin writes in flight and requests awaiting the view */
    struct cluster_configs *configs;/* /config/...: see "Configs" near the end */
    struct cluster_security *security; /* ACLs, users' configs: see the end */
    /* The controller's: brokers in controlled shutdown (Kafka's shuttingDownBrokerIds), each
     * with the epoch it asked at; gone when it leaves or registers anew. */
    int nshutting;
    struct { int32_t id; int64_t epoch; } shutting[CLUSTER_SHUTTING_MAX];
    uint64_t rebalance_timer;
    uint64_t settle_timer;          /* settles_check armed */
    /* The controller's watch on /admin/reassign_partitions, and the partitions the znode
     * listed (deleted once none of them is being reassigned). */
    bool legacy_watch, legacy_inflight;
    int nlegacy;
    struct legacy_partition *legacy;
};

/* How often requests waiting for the controller's writes to settle are looked at. */
#define CLUSTER_SETTLE_CHECK_MS 10

static void live_rebuild(struct cluster *c);
static int shutting_index(const struct cluster *c, int32_t id);
static bool broker_registered(const struct cluster *c, int32_t id);
static void controller_write_states(struct cluster *c);
static void state_exists(void *arg, const struct zk_result *res);
static void state_got(void *arg, const struct zk_result *res);
static void controller_delete_topics(struct cluster *c);
static void watch_deletes(struct cluster *c);
static void awaits_check(struct cluster *c);
static bool delete_pending(const struct cluster *c, const char *name);

static void cluster_resume(struct cluster *c);
static void rebalance_fire(struct loop *l, void *arg);
static void configs_step(struct cluster *c);
static void configs_destroy(struct cluster *c);
static void security_step(struct cluster *c);
static void security_destroy(struct cluster *c);
void cluster_security_entity_stale(struct cluster *c, const char *type, const char *name);
struct create_op;
static int topic_create_with_config(struct cluster *c, const char *name, const char *topic_json,
                                    int topic_len, const char *config_json,
                                    struct create_op *op);

static bool stale(const struct cluster *c, const struct zk_result *res)
{
    return res->session_gen != zk_session_gen(c->zk);
}

static void retry_fire(struct loop *l, void *arg)
{
    (void)l;
    struct cluster *c = arg;
    c->retry_timer = 0;
    cluster_resume(c);
}

static void retry_later(struct cluster *c, const char *what, int rc)
{
    if (rc != ZK_CONNECTION_LOSS && rc != ZK_SESSION_EXPIRED_ERR && rc != ZK_CLOSING)
        LOG_WARN(c->who, "%s failed (ZooKeeper error %d); retrying in %d ms", what, rc,
                 CLUSTER_RETRY_MS);
    if (c->retry_timer == 0)
        c->retry_timer = loop_timer_add(c->loop, mono_ms() + CLUSTER_RETRY_MS, retry_fire, c);
}

/* ---- persistent paths and /cluster/id ---- */

static void path_done(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    if (res->rc != ZK_OK && res->rc != ZK_NODE_EXISTS) {
        c->paths_inflight = false;
        retry_later(c, "creating Kafka's persistent paths", res->rc);
        return;
    }
    if (--c->paths_left == 0) {
        c->paths_inflight = false;
        c->paths_done = true;
        cluster_resume(c);
    }
}

static void ensure_paths(struct cluster *c)
{
    c->paths_inflight = true;
    c->paths_left = NPERSISTENT;
    for (int i = 0; i < NPERSISTENT; i++) {
        int rc = zk_create_node(c->zk, persistent_paths[i], NULL, 0, false, path_done, c);
        if (rc != ZK_OK) {
            /* The ones sent still complete (and count down to nothing): start over later. */
            c->paths_left = -1000000;
            c->paths_inflight = false;
            retry_later(c, "creating Kafka's persistent paths", rc);
            return;
        }
    }
}

static void new_cluster_id(char *out, size_t outlen)
{
    /* Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64, no padding. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[18] = {0};
    if (getrandom(r, 16, 0) != 16) {
        int64_t t = now_ms() ^ mono_ms();
        memcpy(r, &t, sizeof(t));
    }
    size_t n = 0;
    for (int i = 0; i < 18 && n + 4 < outlen; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        for (int k = 3; k >= 0; k--)
            out[n++] = b64[(v >> (6 * k)) & 63];
    }
    out[n < 22 ? n : 22] = '\0';
}

static void id_get(struct cluster *c);

static void id_created(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->id_inflight = false;
    if (res->rc == ZK_OK || res->rc == ZK_NODE_EXISTS) /* exists: another broker was first */
        id_get(c);
    else
        retry_later(c, "creating /cluster/id", res->rc);
}

static void id_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->id_inflight = false;
    if (res->rc == ZK_NO_NODE) {
        char id[32], json[128];
        new_cluster_id(id, sizeof(id));
        int n = znode_cluster_id_json(json, sizeof(json), id);
        GREGOR_ASSERT(n > 0);
        c->id_inflight = true;
        int rc = zk_create_node(c->zk, "/cluster/id", json, n, false, id_created, c);
        if (rc != ZK_OK) {
            c->id_inflight = false;
            retry_later(c, "creating /cluster/id", rc);
        }
        return;
    }
    if (res->rc != ZK_OK) {
        retry_later(c, "reading /cluster/id", res->rc);
        return;
    }
    if (res->data == NULL ||
        znode_cluster_id_parse(res->data, (size_t)res->len, c->cluster_id,
                               sizeof(c->cluster_id)) != 0) {
        LOG_ERROR(c->who, "Failed to parse the cluster id in /cluster/id: %s",
                  res->data ? res->data : "(empty)");
        c->fatal = true;
        return;
    }
    LOG_INFO(c->who, "Cluster ID = %s", c->cluster_id);
    cluster_resume(c);
}

static void id_get(struct cluster *c)
{
    c->id_inflight = true;
    int rc = zk_get(c->zk, "/cluster/id", NULL, NULL, id_read, c);
    if (rc != ZK_OK) {
        c->id_inflight = false;
        retry_later(c, "reading /cluster/id", rc);
    }
}

/* ---- registration ---- */

static void register_owner(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->register_inflight = false;
    if (res->rc == ZK_NO_NODE) { /* gone meanwhile (its session ended): try again */
        cluster_resume(c);
        return;
    }
    if (res->rc != ZK_OK) {
        retry_later(c, "reading this broker's registration", res->rc);
        return;
    }
    int64_t mine = zk_session_id(c->zk);
    if (res->stat.ephemeral_owner == mine) { /* ours: a create retried after a lost reply */
        c->registered = true;
        cluster_resume(c);
        return;
    }
    /* Kafka's KafkaZkClient.checkedEphemeralCreate, which fails the broker's startup. */
    LOG_ERROR(c->who,
              "Error while creating ephemeral at /brokers/ids/%d, node already exists and owner "
              "'0x%llx' does not match current session '0x%llx' "
              "(org.apache.zookeeper.KeeperException$NodeExistsException: KeeperErrorCode = "
              "NodeExists): broker.id %d is registered by another broker",
              c->cfg.broker_id, (unsigned long long)res->stat.ephemeral_owner,
              (unsigned long long)mine, c->cfg.broker_id);
    if (!c->started)
        c->fatal = true; /* startup is refused */
    else
        retry_later(c, "registering the broker again", ZK_NODE_EXISTS); /* until it goes */
}

static void register_created(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    char path[64];
    snprintf(path, sizeof(path), "/brokers/ids/%d", c->cfg.broker_id);
    if (res->rc == ZK_NODE_EXISTS) {
        int rc = zk_get(c->zk, path, NULL, NULL, register_owner, c);
        if (rc != ZK_OK) {
            c->register_inflight = false;
            retry_later(c, "reading this broker's registration", rc);
        }
        return;
    }
    c->register_inflight = false;
    if (res->rc != ZK_OK) {
        retry_later(c, "registering the broker", res->rc);
        return;
    }
    c->registered = true;
    live_rebuild(c);
    char addrs[1024] = "";
    size_t al = 0;
    for (int i = 0; i < c->cfg.n_endpoints && al < sizeof(addrs); i++)
        al += (size_t)snprintf(addrs + al, sizeof(addrs) - al, "%s%s://%s:%d", i ? "," : "",
                               c->cfg.endpoints[i].name, c->cfg.endpoints[i].host,
                               c->cfg.endpoints[i].port);
    if (c->cfg.n_endpoints == 0)
        snprintf(addrs, sizeof(addrs), "%s://%s:%d", c->listener_name, c->host, c->cfg.port);
    LOG_INFO(c->who, "Registered broker %d at path %s with addresses: %s", c->cfg.broker_id,
             path, addrs);
    cluster_resume(c);
}

static void register_broker(struct cluster *c)
{
    char path[64], json[CLUSTER_JSON_MAX];
    snprintf(path, sizeof(path), "/brokers/ids/%d", c->cfg.broker_id);
    int n;
    if (c->cfg.n_endpoints > 0) {
        struct znode_endpoint eps[CLUSTER_ENDPOINTS_MAX];
        for (int i = 0; i < c->cfg.n_endpoints; i++)
            eps[i] = (struct znode_endpoint){c->cfg.endpoints[i].name,
                                             c->cfg.endpoints[i].protocol,
                                             c->cfg.endpoints[i].host, c->cfg.endpoints[i].port};
        n = znode_broker_json_endpoints(json, sizeof(json), eps, c->cfg.n_endpoints, c->rack,
                                        now_ms());
    } else {
        n = znode_broker_json(json, sizeof(json), c->listener_name, c->host, c->cfg.port,
                              c->rack, now_ms());
    }
    GREGOR_ASSERT(n > 0);
    c->register_inflight = true;
    int rc = zk_create_node(c->zk, path, json, n, true, register_created, c);
    if (rc != ZK_OK) {
        c->register_inflight = false;
        retry_later(c, "registering the broker", rc);
    }
}

/* ---- live brokers ---- */

static struct cluster_broker *broker_slot(struct cluster *c, int32_t id, int *index)
{
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == id) {
            if (index)
                *index = i;
            return &c->brokers[i];
        }
    return NULL;
}

static void broker_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res) || res->rc != ZK_OK || res->data == NULL)
        return; /* gone (the children watch drops it) or lost (the next listing reads it) */
    const char *slash = strrchr(res->path, '/');
    int32_t id = slash ? (int32_t)strtol(slash + 1, NULL, 10) : -1;
    int i;
    struct cluster_broker *b = broker_slot(c, id, &i);
    if (b == NULL)
        return; /* left meanwhile */
    if (znode_broker_parse(res->data, (size_t)res->len, c->listener_name, b->host,
                           sizeof(b->host), &b->port) != 0) {
        LOG_WARN(c->who, "Cannot read the endpoints of broker %d: %s", id, res->data);
        return;
    }
    const char *evs, *eve;
    b->endpoints[0] = '\0';
    if (znode_member(res->data, (size_t)res->len, "endpoints", &evs, &eve) == 0 &&
        (size_t)(eve - evs) + 16 < sizeof(b->endpoints))
        snprintf(b->endpoints, sizeof(b->endpoints), "{\"endpoints\":%.*s}", (int)(eve - evs),
                 evs);
    if (znode_broker_rack(res->data, (size_t)res->len, b->rack, sizeof(b->rack)) < 0) {
        LOG_WARN(c->who, "Cannot read the rack of broker %d (taken as none): %s", id, res->data);
        b->rack[0] = '\0';
    }
    b->epoch = res->has_stat ? res->stat.czxid : -1;
    int s = shutting_index(c, id);
    if (s >= 0 && c->shutting[s].epoch >= 0 && c->shutting[s].epoch != b->epoch)
        c->shutting[s] = c->shutting[--c->nshutting]; /* registered anew: Kafka's onBrokerStartup */
    if (!c->known[i])
        LOG_INFO(c->who, "Broker %d is live at %s:%d", id, b->host, b->port);
    c->known[i] = true;
    live_rebuild(c);
    awaits_check(c); /* a leader's endpoints read: Metadata shows it now */
}

int cluster_broker_endpoint(const struct cluster_broker *b, const char *listener, char *host,
                            size_t hostlen, int32_t *port)
{
    if (b->endpoints[0] == '\0')
        return -1;
    return znode_broker_parse(b->endpoints, strlen(b->endpoints), listener, host, hostlen, port);
}

static int id_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static void brokers_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)type;
    (void)path;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk))
        return;
    c->brokers_watch = false;
    cluster_resume(c);
}

static void brokers_listed(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->brokers_inflight = false;
    if (res->rc != ZK_OK) {
        c->brokers_watch = false;
        retry_later(c, "listing /brokers/ids", res->rc);
        return;
    }
    int32_t *ids = c->scratch_ids;
    int n = 0;
    for (int i = 0; i < res->nchildren; i++) {
        char *end;
        long v = strtol(res->children[i], &end, 10);
        if (*end != '\0' || v < 0 || v > INT32_MAX)
            continue;
        if (n == CLUSTER_BROKERS_MAX) {
            LOG_WARN(c->who, "More than %d brokers registered: the others are not listed",
                     CLUSTER_BROKERS_MAX);
            break;
        }
        ids[n++] = (int32_t)v;
    }
    qsort(ids, (size_t)n, sizeof(ids[0]), id_cmp);
    /* Keep what is known of those that stay; read the new ones. */
    struct cluster_broker *next = c->scratch_next;
    bool *next_known = c->scratch_known;
    for (int i = 0; i < n; i++) {
        int j;
        struct cluster_broker *old = broker_slot(c, ids[i], &j);
        next[i] = old ? *old : (struct cluster_broker){.id = ids[i], .port = -1, .epoch = -1};
        next_known[i] = old ? c->known[j] : false;
    }
    for (int i = 0; i < c->nbrokers; i++) {
        bool stays = false;
        for (int k = 0; k < n && !stays; k++)
            stays = next[k].id == c->brokers[i].id;
        if (!stays)
            LOG_INFO(c->who, "Broker %d is gone", c->brokers[i].id);
    }
    /* A broker gone leaves the controlled shutdowns (Kafka's onBrokerFailure). */
    int keep = 0;
    for (int s = 0; s < c->nshutting; s++) {
        bool listed = false;
        for (int k = 0; k < n && !listed; k++)
            listed = ids[k] == c->shutting[s].id;
        if (listed)
            c->shutting[keep++] = c->shutting[s];
    }
    c->nshutting = keep;
    memcpy(c->brokers, next, sizeof(next[0]) * (size_t)n);
    memcpy(c->known, next_known, sizeof(next_known[0]) * (size_t)n);
    c->nbrokers = n;
    live_rebuild(c);
    c->brokers_seen = true;
    controller_write_states(c); /* leaders gone or back */
    controller_delete_topics(c); /* a deletion waiting for an offline replica's broker */
    for (int i = 0; i < n; i++) {
        if (c->known[i])
            continue;
        char path[64];
        snprintf(path, sizeof(path), "/brokers/ids/%d", c->brokers[i].id);
        int rc = zk_get(c->zk, path, NULL, NULL, broker_read, c);
        if (rc != ZK_OK) {
            retry_later(c, "reading a broker's registration", rc);
            c->brokers_watch = false; /* list again then */
            break;
        }
    }
}

static void watch_brokers(struct cluster *c)
{
    bool set_watch = !c->brokers_watch;
    c->brokers_watch = true;
    c->brokers_inflight = true;
    int rc = zk_get_children(c->zk, "/brokers/ids", set_watch ? brokers_changed : NULL, c,
                             brokers_listed, c);
    if (rc != ZK_OK) {
        c->brokers_inflight = false;
        c->brokers_watch = false;
        retry_later(c, "listing /brokers/ids", rc);
    }
}

/* ---- the controller ---- */

static void controller_check(struct cluster *c);

static void controller_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)path;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk))
        return;
    c->controller_watch = false;
    if (type == ZK_WATCH_DELETED) {
        LOG_INFO(c->who, "The controller (broker %d) is gone; electing a new one",
                 c->controller_id);
        c->controller_id = -1;
        c->is_controller = false;
    }
    cluster_resume(c);
}

static void elected(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->elect_inflight = false;
    if (res->rc == ZK_OK) {
        c->controller_id = c->cfg.broker_id;
        c->is_controller = true;
        /* Reassignments resume from the TopicZNodes and /admin/reassign_partitions (read
         * again); what an earlier term of this broker asked and did not write is dropped. */
        c->legacy_watch = false;
        c->nlegacy = 0;
        for (int i = 0; i < c->ntopics; i++)
            for (int32_t p = 0; p < c->topics[i]->npartitions; p++) {
                struct cluster_partition *cp = &c->topics[i]->parts[p];
                cp->target_pending = cp->bump_wanted = false;
            }
        controller_write_states(c);
        LOG_INFO(c->who, "%d successfully elected as the controller. Epoch incremented to %d",
                 c->cfg.broker_id, c->controller_epoch);
        cluster_resume(c);
        return;
    }
    /* NodeExists on /controller or BadVersion on /controller_epoch: another broker won. */
    if (res->rc != ZK_NODE_EXISTS && res->rc != ZK_BAD_VERSION && res->rc != ZK_NO_NODE)
        LOG_WARN(c->who, "Controller election failed (ZooKeeper error %d)", res->rc);
    controller_check(c); /* who won */
}

static void epoch_read(void *arg, const struct zk_result *res);

static void epoch_created(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    if (res->rc != ZK_OK && res->rc != ZK_NODE_EXISTS) {
        c->elect_inflight = false;
        retry_later(c, "creating /controller_epoch", res->rc);
        return;
    }
    int rc = zk_get(c->zk, "/controller_epoch", NULL, NULL, epoch_read, c);
    if (rc != ZK_OK) {
        c->elect_inflight = false;
        retry_later(c, "reading /controller_epoch", rc);
    }
}

/* Kafka's registerControllerAndIncrementControllerEpoch: one multi creates the ephemeral
 * /controller and sets /controller_epoch to epoch + 1 at the version read, so of two brokers
 * racing, one wins both and the other changes nothing. */
static void epoch_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    int rc;
    if (res->rc == ZK_NO_NODE) {
        rc = zk_create_node(c->zk, "/controller_epoch", "0", 1, false, epoch_created, c);
        if (rc != ZK_OK) {
            c->elect_inflight = false;
            retry_later(c, "creating /controller_epoch", rc);
        }
        return;
    }
    int64_t epoch;
    if (res->rc != ZK_OK || res->data == NULL || !res->has_stat) {
        c->elect_inflight = false;
        retry_later(c, "reading /controller_epoch", res->rc);
        return;
    }
    char *end;
    epoch = strtoll(res->data, &end, 10);
    if (end == res->data || epoch < 0 || epoch >= INT32_MAX) {
        LOG_ERROR(c->who, "Invalid /controller_epoch: %s", res->data);
        c->elect_inflight = false;
        return;
    }
    GREGOR_ASSERT(epoch + 1 > epoch); /* epochs only rise */
    c->controller_epoch = (int32_t)(epoch + 1);
    char ctl[160], ep[24];
    int nc = znode_controller_json(ctl, sizeof(ctl), c->cfg.broker_id, now_ms());
    GREGOR_ASSERT(nc > 0);
    int ne = snprintf(ep, sizeof(ep), "%d", c->controller_epoch);
    struct zk_op ops[2] = {
        {.kind = ZK_OP_CREATE_EPHEMERAL, .path = "/controller", .data = ctl, .len = nc},
        {.kind = ZK_OP_SET, .path = "/controller_epoch", .data = ep, .len = ne,
         .version = res->stat.version},
    };
    rc = zk_multi(c->zk, ops, 2, elected, c);
    if (rc != ZK_OK) {
        c->elect_inflight = false;
        retry_later(c, "electing a controller", rc);
    }
}

static void elect(struct cluster *c)
{
    if (c->elect_inflight)
        return;
    c->elect_inflight = true;
    int rc = zk_get(c->zk, "/controller_epoch", NULL, NULL, epoch_read, c);
    if (rc != ZK_OK) {
        c->elect_inflight = false;
        retry_later(c, "reading /controller_epoch", rc);
    }
}

static void controller_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->controller_inflight = false;
    if (res->rc == ZK_NO_NODE) { /* gone between exists and get: the watch elects */
        c->controller_id = -1;
        c->is_controller = false;
        elect(c);
        return;
    }
    int32_t id;
    if (res->rc != ZK_OK || res->data == NULL ||
        znode_controller_parse(res->data, (size_t)res->len, &id) != 0) {
        retry_later(c, "reading /controller", res->rc);
        return;
    }
    if (c->controller_id != id)
        LOG_INFO(c->who, "The controller is broker %d", id);
    c->controller_id = id;
    c->is_controller = id == c->cfg.broker_id && res->stat.ephemeral_owner == zk_session_id(c->zk);
    cluster_resume(c); /* the watch fired meanwhile: set it again */
}

static void controller_exists(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    if (res->rc == ZK_NO_NODE) {
        c->controller_inflight = false;
        c->controller_id = -1;
        c->is_controller = false;
        elect(c);
        return;
    }
    if (res->rc != ZK_OK) {
        c->controller_inflight = false;
        c->controller_watch = false;
        retry_later(c, "watching /controller", res->rc);
        return;
    }
    int rc = zk_get(c->zk, "/controller", NULL, NULL, controller_read, c);
    if (rc != ZK_OK) {
        c->controller_inflight = false;
        retry_later(c, "reading /controller", rc);
    }
}

static void controller_check(struct cluster *c)
{
    if (c->controller_inflight)
        return;
    bool set_watch = !c->controller_watch;
    c->controller_watch = true;
    c->controller_inflight = true;
    int rc = zk_exists(c->zk, "/controller", set_watch ? controller_changed : NULL, c,
                       controller_exists, c);
    if (rc != ZK_OK) {
        c->controller_inflight = false;
        c->controller_watch = false;
        retry_later(c, "watching /controller", rc);
    }
}


/* ---- topics (/brokers/topics) ---- */

void cluster_assign_replicas_from(const int32_t *ids, int n, int32_t first_partition,
                                  int32_t nparts, int16_t rf, int start_index, int replica_shift,
                                  int32_t *out)
{
    GREGOR_ASSERT(n > 0 && rf > 0 && rf <= n && start_index >= 0 && replica_shift >= 0);
    GREGOR_ASSERT(first_partition >= 0 && nparts >= 0);
    int shift = replica_shift;
    for (int32_t k = 0; k < nparts; k++) {
        int32_t p = first_partition + k;
        if (p > 0 && p % n == 0)
            shift++;
        int first = (int)(((int64_t)p + start_index) % n);
        out[(size_t)k * rf] = ids[first];
        for (int j = 0; j < rf - 1; j++) {
            int s = 1 + (shift + j) % (n - 1);
            out[(size_t)k * rf + 1 + j] = ids[(first + s) % n];
        }
    }
}

void cluster_assign_replicas(const int32_t *ids, int n, int32_t nparts, int16_t rf,
                             int start_index, int replica_shift, int32_t *out)
{
    cluster_assign_replicas_from(ids, n, 0, nparts, rf, start_index, replica_shift, out);
}

static bool rack_set(const char *const *racks, int i)
{
    return racks != NULL && racks[i] != NULL && racks[i][0] != '\0';
}

/* Kafka's getRackAlternatedBrokerList: the racks in name order, each broker's ids ascending,
 * taken one per rack in turn: arranged[] the ids, rack_group[] each one's rack (0..). Returns
 * the number of racks. ids ascending, every one with a rack. Insertion sort: n is bounded by
 * CLUSTER_BROKERS_MAX and topic creations are rare. */
static int rack_alternated(const int32_t *ids, const char *const *racks, int n, int32_t *arranged,
                           int *rack_group)
{
    int idx[CLUSTER_BROKERS_MAX], start[CLUSTER_BROKERS_MAX + 1], taken[CLUSTER_BROKERS_MAX];
    for (int i = 0; i < n; i++) {
        int j = i;
        /* stable on ids ascending: within a rack, the ids keep their order */
        while (j > 0 && strcmp(racks[idx[j - 1]], racks[i]) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    int ngroups = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || strcmp(racks[idx[i - 1]], racks[idx[i]]) != 0) {
            start[ngroups] = i;
            taken[ngroups++] = 0;
        }
    start[ngroups] = n;
    int out = 0;
    for (int g = 0; out < n; g = (g + 1) % ngroups)
        if (start[g] + taken[g] < start[g + 1]) {
            arranged[out] = ids[idx[start[g] + taken[g]++]];
            rack_group[out++] = g;
        }
    return ngroups;
}

int cluster_assign_replicas_racks(const int32_t *ids, const char *const *racks, int n,
                                  int32_t first_partition, int32_t nparts, int16_t rf,
                                  int start_index, int replica_shift, int32_t *out)
{
    int with = 0;
    for (int i = 0; i < n; i++)
        with += rack_set(racks, i);
    if (with == 0) {
        cluster_assign_replicas_from(ids, n, first_partition, nparts, rf, start_index,
                                     replica_shift, out);
        return 0;
    }
    if (with < n)
        return -1;
    GREGOR_ASSERT(n > 0 && n <= CLUSTER_BROKERS_MAX && rf > 0 && rf <= n &&
                  rf <= CLUSTER_REPLICAS_MAX && start_index >= 0 && replica_shift >= 0);
    for (int i = 1; i < n; i++)
        GREGOR_ASSERT(ids[i - 1] < ids[i]);
    int32_t arranged[CLUSTER_BROKERS_MAX];
    int group[CLUSTER_BROKERS_MAX];
    int nracks = rack_alternated(ids, racks, n, arranged, group);
    int64_t shift = replica_shift;
    for (int32_t k = 0; k < nparts; k++) {
        int32_t p = first_partition + k;
        if (p > 0 && p % n == 0)
            shift++;
        int first = (int)(((int64_t)p + start_index) % n);
        int32_t *row = out + (size_t)k * (size_t)rf;
        int chosen[CLUSTER_REPLICAS_MAX]; /* positions in arranged */
        int nchosen = 0, racks_with = 1;
        chosen[nchosen++] = first;
        row[0] = arranged[first];
        int64_t step = 0;
        for (int j = 1; j < rf; j++) {
            for (int tries = 0;; tries++, step++) {
                GREGOR_ASSERT(tries < n); /* an acceptable broker is among the n - 1 others */
                int at = n == 1 ? first
                                : (int)((first + 1 + (shift * nracks + step) % (n - 1)) % n);
                bool rack_has = false, broker_has = false;
                for (int q = 0; q < nchosen; q++) {
                    rack_has |= group[chosen[q]] == group[at];
                    broker_has |= chosen[q] == at;
                }
                /* Kafka's rule: a rack already holding a replica waits until every rack has
                 * one; a broker already holding one waits until every broker has one. */
                if ((!rack_has || racks_with == nracks) && (!broker_has || nchosen == n)) {
                    racks_with += !rack_has;
                    chosen[nchosen++] = at;
                    row[j] = arranged[at];
                    step++;
                    break;
                }
            }
        }
    }
    return 0;
}

/* The view changed: the broker's (on_change), then the requests waiting for it. */
static void notify(struct cluster *c)
{
    if (c->cfg.on_change != NULL)
        c->cfg.on_change(c->cfg.change_arg);
    awaits_check(c);
}

static struct cluster_topic *topic_slot(const struct cluster *c, const char *name)
{
    for (int i = 0; i < c->ntopics; i++)
        if (strcmp(c->topics[i]->name, name) == 0)
            return c->topics[i];
    return NULL;
}

const struct cluster_topic *cluster_topic_find(const struct cluster *c, const char *name)
{
    const struct cluster_topic *t = topic_slot(c, name);
    return t != NULL && cluster_topic_visible(t) ? t : NULL;
}

bool cluster_topic_listed(const struct cluster *c, const char *name)
{
    return topic_slot(c, name) != NULL;
}

int cluster_topics(const struct cluster *c, struct cluster_topic *const **out)
{
    *out = c->topics;
    return c->ntopics;
}

static void topic_free(struct cluster_topic *t)
{
    free(t->config);
    free(t->parts);
    free(t);
}

/* "/brokers/topics/<t>[/partitions/<p>/state]": the topic's name and the partition (-1). */
static int parse_topic_path(const char *path, char *name, size_t namelen, int32_t *part)
{
    const char *pre = "/brokers/topics/";
    if (strncmp(path, pre, strlen(pre)) != 0)
        return -1;
    const char *s = path + strlen(pre);
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    if (len == 0 || len >= namelen)
        return -1;
    memcpy(name, s, len);
    name[len] = '\0';
    *part = -1;
    if (slash != NULL) {
        if (strncmp(slash, "/partitions/", 12) != 0)
            return -1;
        *part = (int32_t)strtol(slash + 12, NULL, 10);
    }
    return 0;
}

static void topics_step(struct cluster *c);
static void watch_legacy(struct cluster *c);
static bool topic_write_due(const struct cluster *c, const struct cluster_topic *t);
static int write_topic(struct cluster *c, struct cluster_topic *t, int32_t version);
static void append_ints(char *out, size_t outlen, const int32_t *v, int n);

static void state_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)type;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk))
        return;
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    if (parse_topic_path(path, name, sizeof(name), &p) != 0 || p < 0)
        return;
    struct cluster_topic *t = topic_slot(c, name);
    if (t == NULL || p >= t->npartitions)
        return;
    t->parts[p].state_watch = false;
    topics_step(c);
}

static void state_read_apply(struct cluster *c, const struct zk_result *res);

/* A state read (exists, then get). Its watch may fire while the read is in flight (the
 * leader's ISR writes come in quick succession): topics_step skipped it then, so it is set
 * again here, with a new read; else every later change of this state went unseen. */
static void state_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    state_read_apply(c, res);
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    if ((res->rc != ZK_OK && res->rc != ZK_NO_NODE) ||
        parse_topic_path(res->path, name, sizeof(name), &p) != 0 || p < 0)
        return; /* an error retries later */
    const struct cluster_topic *t = topic_slot(c, name);
    if (t != NULL && p < t->npartitions && !t->parts[p].state_watch &&
        !t->parts[p].state_inflight)
        topics_step(c);
}

static void state_read_apply(struct cluster *c, const struct zk_result *res)
{
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    if (parse_topic_path(res->path, name, sizeof(name), &p) != 0 || p < 0)
        return;
    struct cluster_topic *t = topic_slot(c, name);
    if (t == NULL || p >= t->npartitions)
        return;
    struct cluster_partition *cp = &t->parts[p];
    cp->state_inflight = false;
    if (res->rc == ZK_NO_NODE) {
        cp->state = CLUSTER_STATE_MISSING;
        cp->leader = -1;
        controller_write_states(c);
        return;
    }
    if (res->rc != ZK_OK) {
        cp->state_watch = false;
        retry_later(c, "reading a partition's state", res->rc);
        return;
    }
    struct znode_state st;
    if (res->data == NULL || znode_state_parse(res->data, (size_t)res->len, &st) != 0) {
        LOG_WARN(c->who, "Cannot read the state of %s-%d: %s", name, p,
                 res->data ? res->data : "(empty)");
        return;
    }
    if (cp->state != CLUSTER_STATE_READ || cp->leader != st.leader)
        LOG_INFO(c->who, "Partition %s-%d: leader %d, leader epoch %d", name, p, st.leader,
                 st.leader_epoch);
    cp->state = CLUSTER_STATE_READ;
    cp->leader = st.leader;
    cp->leader_epoch = st.leader_epoch;
    cp->controller_epoch = st.controller_epoch;
    cp->nisr = st.nisr;
    memcpy(cp->isr, st.isr, sizeof(st.isr[0]) * (size_t)st.nisr);
    cp->state_version = res->has_stat ? res->stat.version : 0;
    if (cp->nreplicas > 0 && cp->leader == cp->replicas[0])
        cp->preferred_wanted = false;
    if (cp->leader >= 0 && broker_registered(c, cp->leader))
        cp->unclean_wanted = false;
    notify(c);
    controller_write_states(c);
}

static void topic_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)type;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk))
        return;
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    if (parse_topic_path(path, name, sizeof(name), &p) != 0 || p >= 0)
        return;
    struct cluster_topic *t = topic_slot(c, name);
    if (t == NULL)
        return;
    t->data_watch = false;
    t->read = t->read && type != ZK_WATCH_DELETED;
    topics_step(c);
}

static void topic_replicas(void *arg, int32_t p, const int32_t *replicas, int n)
{
    struct cluster_topic *t = arg;
    GREGOR_ASSERT(p >= 0 && p < t->npartitions && n >= 0 && n <= CLUSTER_REPLICAS_MAX);
    memcpy(t->parts[p].replicas, replicas, sizeof(replicas[0]) * (size_t)n);
    t->parts[p].nreplicas = n;
}

static void topic_adding(void *arg, int32_t p, const int32_t *replicas, int n)
{
    struct cluster_topic *t = arg;
    GREGOR_ASSERT(p >= 0 && p < t->npartitions && n >= 0 && n <= CLUSTER_REPLICAS_MAX);
    memcpy(t->parts[p].adding, replicas, sizeof(replicas[0]) * (size_t)n);
    t->parts[p].nadding = n;
}

static void topic_removing(void *arg, int32_t p, const int32_t *replicas, int n)
{
    struct cluster_topic *t = arg;
    GREGOR_ASSERT(p >= 0 && p < t->npartitions && n >= 0 && n <= CLUSTER_REPLICAS_MAX);
    memcpy(t->parts[p].removing, replicas, sizeof(replicas[0]) * (size_t)n);
    t->parts[p].nremoving = n;
}

static void topic_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    if (parse_topic_path(res->path, name, sizeof(name), &p) != 0)
        return;
    struct cluster_topic *t = topic_slot(c, name);
    if (t == NULL)
        return;
    t->data_inflight = false;
    if (res->rc == ZK_NO_NODE) {
        t->data_watch = false; /* a get sets no watch on a missing node: read it again later */
        return;                /* deleted: the children watch drops it */
    }
    if (res->rc != ZK_OK || res->data == NULL) {
        t->data_watch = false;
        retry_later(c, "reading a topic's assignment", res->rc);
        return;
    }
    uint8_t id[16];
    int32_t n = znode_topic_parse(res->data, (size_t)res->len, CLUSTER_PARTITIONS_MAX, id, NULL,
                                  NULL);
    if (n > 0 && (znode_topic_reassign_parse(res->data, (size_t)res->len, "adding_replicas", n,
                                             NULL, NULL) < 0 ||
                  znode_topic_reassign_parse(res->data, (size_t)res->len, "removing_replicas", n,
                                             NULL, NULL) < 0))
        n = -1;
    if (n < 0) {
        LOG_WARN(c->who, "Cannot read the assignment of topic %s (partitions 0..n-1, n at most "
                 "%d): %s", name, CLUSTER_PARTITIONS_MAX, res->data);
        return;
    }
    if (n != t->npartitions) {
        struct cluster_partition *np = calloc((size_t)n, sizeof(*np));
        GREGOR_ASSERT(np != NULL);
        for (int32_t i = 0; i < n; i++) {
            if (i < t->npartitions)
                np[i] = t->parts[i];
            else
                np[i].leader = -1;
        }
        free(t->parts);
        t->parts = np;
        t->npartitions = n;
    }
    int32_t again = znode_topic_parse(res->data, (size_t)res->len, CLUSTER_PARTITIONS_MAX, id,
                                      topic_replicas, t);
    GREGOR_ASSERT(again == n);
    for (int32_t i = 0; i < n; i++)
        t->parts[i].nadding = t->parts[i].nremoving = 0;
    znode_topic_reassign_parse(res->data, (size_t)res->len, "adding_replicas", n, topic_adding, t);
    znode_topic_reassign_parse(res->data, (size_t)res->len, "removing_replicas", n,
                               topic_removing, t);
    t->data_version = res->has_stat ? res->stat.version : 0;
    t->data_stale = false;
    if (!t->read)
        LOG_INFO(c->who, "Topic %s: %d partitions", name, n);
    memcpy(t->id, id, 16);
    t->read = true;
    topics_step(c);
    notify(c);
}

static void topics_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)type;
    (void)path;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk))
        return;
    c->topics_watch = false;
    cluster_resume(c);
}

static void topics_listed(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->topics_inflight = false;
    if (res->rc != ZK_OK) {
        c->topics_watch = false;
        retry_later(c, "listing /brokers/topics", res->rc);
        return;
    }
    /* Drop the topics gone; add the new ones (read next). */
    int keep = 0;
    bool changed = false;
    for (int i = 0; i < c->ntopics; i++) {
        bool stays = false;
        for (int k = 0; k < res->nchildren && !stays; k++)
            stays = strcmp(res->children[k], c->topics[i]->name) == 0;
        if (stays) {
            c->topics[keep++] = c->topics[i];
        } else {
            LOG_INFO(c->who, "Topic %s is gone", c->topics[i]->name);
            if (c->cfg.on_topic_gone != NULL)
                c->cfg.on_topic_gone(c->cfg.change_arg, c->topics[i]->name);
            topic_free(c->topics[i]);
            changed = true;
        }
    }
    c->ntopics = keep;
    for (int k = 0; k < res->nchildren; k++) {
        if (topic_slot(c, res->children[k]) != NULL)
            continue;
        if (strlen(res->children[k]) >= CLUSTER_TOPIC_NAME_MAX)
            continue;
        if (c->ntopics == CLUSTER_TOPICS_MAX) {
            LOG_WARN(c->who, "More than %d topics: the others are not served", CLUSTER_TOPICS_MAX);
            break;
        }
        if (c->ntopics == c->topics_cap) {
            int cap = c->topics_cap ? c->topics_cap * 2 : 64;
            struct cluster_topic **nt = realloc(c->topics, sizeof(*nt) * (size_t)cap);
            GREGOR_ASSERT(nt != NULL);
            c->topics = nt;
            c->topics_cap = cap;
        }
        struct cluster_topic *t = calloc(1, sizeof(*t));
        GREGOR_ASSERT(t != NULL);
        snprintf(t->name, sizeof(t->name), "%s", res->children[k]);
        t->marked = delete_pending(c, t->name);
        c->topics[c->ntopics++] = t;
    }
    topics_step(c);
    if (changed)
        notify(c);
}

/* Reads what is not known (or watched) of every topic: its assignment, its partitions' state. */
static void topics_step(struct cluster *c)
{
    if (!zk_connected(c->zk) || !c->registered)
        return;
    char path[CLUSTER_TOPIC_NAME_MAX + 64];
    for (int i = 0; i < c->ntopics; i++) {
        struct cluster_topic *t = c->topics[i];
        if (!t->data_watch && !t->data_inflight) {
            snprintf(path, sizeof(path), "/brokers/topics/%s", t->name);
            t->data_watch = t->data_inflight = true;
            int rc = zk_get(c->zk, path, topic_changed, c, topic_read, c);
            if (rc != ZK_OK) {
                t->data_watch = t->data_inflight = false;
                retry_later(c, "reading a topic's assignment", rc);
                return;
            }
        }
        if (!t->read)
            continue;
        for (int32_t p = 0; p < t->npartitions; p++) {
            struct cluster_partition *cp = &t->parts[p];
            if (cp->state_watch || cp->state_inflight)
                continue;
            snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, p);
            cp->state_watch = cp->state_inflight = true;
            /* A state known to exist is read and watched in one request: its answer then comes
             * before that of any read sent after it (ZooKeeper answers a session in order), so
             * a leader moved away from a broker is seen before the broker's departure listed
             * after it, never a leader gone in between (Metadata's leader -1). A missing one:
             * exists sets the watch even then (fires on its creation), a get follows. */
            int rc = cp->state == CLUSTER_STATE_READ
                         ? zk_get(c->zk, path, state_changed, c, state_got, c)
                         : zk_exists(c->zk, path, state_changed, c, state_exists, c);
            if (rc != ZK_OK) {
                cp->state_watch = cp->state_inflight = false;
                retry_later(c, "reading a partition's state", rc);
                return;
            }
        }
    }
    controller_write_states(c);
    controller_delete_topics(c);
    configs_step(c);
}

static void state_exists(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    if (res->rc == ZK_OK && parse_topic_path(res->path, name, sizeof(name), &p) == 0 && p >= 0) {
        int rc = zk_get(c->zk, res->path, NULL, NULL, state_read, c);
        if (rc == ZK_OK)
            return; /* state_read clears the in-flight flag */
        retry_later(c, "reading a partition's state", rc);
        struct cluster_topic *t = topic_slot(c, name);
        if (t != NULL && p < t->npartitions)
            t->parts[p].state_inflight = t->parts[p].state_watch = false;
        return;
    }
    state_read(arg, res); /* NO_NODE (missing) or an error */
}

/* The watched get of a state known to exist: deleted meanwhile, it set no watch (ZooKeeper's
 * getData on a missing node), so the next step watches it with exists again. */
static void state_got(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    struct cluster_topic *t;
    if (res->rc == ZK_NO_NODE && parse_topic_path(res->path, name, sizeof(name), &p) == 0 &&
        p >= 0 && (t = topic_slot(c, name)) != NULL && p < t->npartitions)
        t->parts[p].state_watch = false;
    state_read(arg, res);
}

static void ignore_done(void *arg, const struct zk_result *res)
{
    (void)arg;
    (void)res;
}

static bool broker_live(const struct cluster *c, int32_t id)
{
    for (int i = 0; i < c->nlive; i++)
        if (c->live[i].id == id)
            return true;
    return false;
}

/* For the controller's elections: registered under /brokers/ids (its endpoints may not be read
 * yet), once the listing of this session is known. */
static bool broker_registered(const struct cluster *c, int32_t id)
{
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == id)
            return true;
    return false;
}

static bool ids_have(const int32_t *v, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

static bool in_isr(const struct cluster_partition *cp, int32_t id)
{
    for (int i = 0; i < cp->nisr; i++)
        if (cp->isr[i] == id)
            return true;
    return false;
}

static int shutting_index(const struct cluster *c, int32_t id)
{
    for (int i = 0; i < c->nshutting; i++)
        if (c->shutting[i].id == id)
            return i;
    return -1;
}

/* Kafka's isReplicaOnline without the brokers shutting down: who may lead or stay in an ISR. */
static bool replica_online(const struct cluster *c, int32_t id)
{
    return broker_registered(c, id) && shutting_index(c, id) < 0;
}

static void unclean_entry(void *arg, const char *key, const char *value)
{
    int *out = arg;
    if (strcmp(key, "unclean.leader.election.enable") == 0)
        *out = strcasecmp(value, "true") == 0;
}

/* unclean.leader.election.enable as it is at the election, as Kafka's controller takes it
 * (its LogConfig from the topic's overrides over its own KafkaConfig, which dynamic configs
 * update): the topic's (/config/topics/<t>), else this broker's dynamic one
 * (/config/brokers/<id>), else the cluster default (/config/brokers/<default>), else the
 * static one. Each znode as last read: a change notification reads it again. */
static bool unclean_enabled(const struct cluster *c, const struct cluster_topic *t)
{
    int v = -1;
    if (t->config != NULL && znode_config_parse(t->config, (size_t)t->config_len, unclean_entry,
                                                &v) < 0)
        v = -1;
    for (int k = 0; k < 2 && v < 0; k++) {
        size_t len;
        uint64_t gen;
        const char *json = cluster_broker_config(c, k == 1, &len, &gen);
        if (json != NULL && znode_config_parse(json, len, unclean_entry, &v) < 0)
            v = -1;
    }
    return v >= 0 ? v == 1 : c->cfg.unclean_leader_election_enable;
}

/* Listed under /admin/delete_topics: the controller deletes it, and writes no state for it. */
static bool delete_pending(const struct cluster *c, const char *name)
{
    for (int i = 0; i < c->ndeletes; i++)
        if (strcmp(c->deletes[i], name) == 0)
            return true;
    return false;
}

/* What the controller changes in a partition's state, as Kafka 3.9's ZooKeeper-mode
 * controller (PartitionStateMachine with PartitionLeaderElectionAlgorithms, and
 * ReplicaStateMachine's OfflineReplica removing a replica from the ISR). */
enum state_plan {
    PLAN_NONE,
    PLAN_OFFLINE,      /* offlinePartitionLeaderElection: first online ISR replica */
    PLAN_UNCLEAN,      /* the same, no ISR replica online: the first online replica */
    PLAN_NO_LEADER,    /* the leader gone and no replica may lead: leader -1 */
    PLAN_SHUTDOWN,     /* controlledShutdownPartitionLeaderElection */
    PLAN_ISR_SHRINK,   /* followers gone or shutting down leave the ISR */
    PLAN_PREFERRED,    /* preferredReplicaPartitionLeaderElection */
    PLAN_REASSIGN_EPOCH,  /* a reassignment started: the leader epoch goes up */
    PLAN_REASSIGN_LEADER, /* reassignPartitionLeaderElection: the leader is not in the target */
};

static const char *const plan_names[] = {
    "none", "OfflinePartitionLeaderElectionStrategy",
    "OfflinePartitionLeaderElectionStrategy (unclean)", "no replica online",
    "ControlledShutdownPartitionLeaderElectionStrategy",
    "OfflineReplica", "PreferredReplicaPartitionLeaderElectionStrategy",
    "reassignment: leader epoch bump", "ReassignPartitionLeaderElectionStrategy",
};

/* The ISR without the replicas that are not online (the leader kept when keep >= 0). */
static void isr_online(const struct cluster *c, const struct cluster_partition *cp, int32_t keep,
                       struct znode_state *st)
{
    st->nisr = 0;
    for (int i = 0; i < cp->nisr; i++) /* a replica no longer assigned leaves it too */
        if (cp->isr[i] == keep || (replica_online(c, cp->isr[i]) &&
                                   ids_have(cp->replicas, cp->nreplicas, cp->isr[i])))
            st->isr[st->nisr++] = cp->isr[i];
}

/* The reassignment's target (TRS): the replicas without those being removed. */
static int reassign_target(const struct cluster_partition *cp, int32_t *out)
{
    int n = 0;
    for (int k = 0; k < cp->nreplicas; k++)
        if (!ids_have(cp->removing, cp->nremoving, cp->replicas[k]))
            out[n++] = cp->replicas[k];
    return n;
}

/* Kafka's isReassignmentComplete: every target replica is in the ISR. */
static bool reassign_complete(const struct cluster_partition *cp)
{
    int32_t trs[CLUSTER_REPLICAS_MAX];
    int n = reassign_target(cp, trs);
    for (int k = 0; k < n; k++)
        if (!in_isr(cp, trs[k]))
            return false;
    return cp->state == CLUSTER_STATE_READ;
}

/* A live leader that must move: a complete reassignment's leader outside the target (Kafka's
 * moveReassignedPartitionLeaderIfRequired), or a leader no longer assigned (a cancelled
 * reassignment whose leader was being added). The new one is the first online ISR member of
 * the target; the ISR loses the replicas being removed. */
static bool reassign_plan_leader(const struct cluster *c, const struct cluster_partition *cp,
                                 struct znode_state *st)
{
    int32_t trs[CLUSTER_REPLICAS_MAX];
    int n = reassign_target(cp, trs);
    bool moving = cluster_reassigning(cp) && reassign_complete(cp);
    if (!(moving && !ids_have(trs, n, cp->leader)) &&
        ids_have(cp->replicas, cp->nreplicas, cp->leader))
        return false;
    for (int k = 0; k < n; k++) {
        if (!replica_online(c, trs[k]) || !in_isr(cp, trs[k]))
            continue;
        st->leader = trs[k];
        st->nisr = 0;
        for (int i = 0; i < cp->nisr; i++)
            if (ids_have(trs, n, cp->isr[i]))
                st->isr[st->nisr++] = cp->isr[i];
        GREGOR_ASSERT(ids_have(st->isr, st->nisr, st->leader));
        return true;
    }
    return false; /* none can lead yet: the leader stays until one can */
}

static enum state_plan state_plan(const struct cluster *c, const struct cluster_topic *t,
                                  const struct cluster_partition *cp, struct znode_state *st)
{
    if (cp->state != CLUSTER_STATE_READ || cp->writing || !c->brokers_seen || cp->nreplicas == 0)
        return PLAN_NONE;
    *st = (struct znode_state){.controller_epoch = c->controller_epoch, .leader = cp->leader,
                               .leader_epoch = cp->leader_epoch + 1};
    if (cp->leader < 0 || !broker_registered(c, cp->leader)) {
        for (int k = 0; k < cp->nreplicas; k++) {
            int32_t r = cp->replicas[k];
            if (replica_online(c, r) && in_isr(cp, r)) {
                st->leader = r;
                isr_online(c, cp, r, st);
                return PLAN_OFFLINE;
            }
        }
        if (cp->unclean_wanted || unclean_enabled(c, t))
            for (int k = 0; k < cp->nreplicas; k++)
                if (replica_online(c, cp->replicas[k])) {
                    st->leader = cp->replicas[k];
                    st->nisr = 1;
                    st->isr[0] = st->leader;
                    return PLAN_UNCLEAN;
                }
        if (cp->leader < 0)
            return PLAN_NONE; /* offline until an ISR replica registers */
        /* Leader -1; the ISR keeps its last member, as Kafka's removeReplicasFromIsr. */
        st->leader = -1;
        st->nisr = 0;
        for (int k = 0; k < cp->nisr; k++)
            if (cp->isr[k] != cp->leader || cp->nisr == 1)
                st->isr[st->nisr++] = cp->isr[k];
        GREGOR_ASSERT(st->nisr >= 1 || cp->nisr == 0);
        return PLAN_NO_LEADER;
    }
    if (shutting_index(c, cp->leader) >= 0) {
        for (int k = 0; k < cp->nreplicas; k++) {
            int32_t r = cp->replicas[k];
            if (r != cp->leader && replica_online(c, r) && in_isr(cp, r)) {
                st->leader = r;
                isr_online(c, cp, r, st);
                return PLAN_SHUTDOWN;
            }
        }
        /* None may take over: it keeps leading (the answer lists it as remaining). */
    }
    if (reassign_plan_leader(c, cp, st))
        return PLAN_REASSIGN_LEADER;
    if (cp->bump_wanted && !t->data_stale && !t->data_writing) {
        isr_online(c, cp, cp->leader, st); /* a completion also cuts the removed replicas */
        return PLAN_REASSIGN_EPOCH;
    }
    if (cp->nisr > 1) {
        isr_online(c, cp, cp->leader, st);
        if (st->nisr != cp->nisr)
            return PLAN_ISR_SHRINK;
    }
    int32_t preferred = cp->replicas[0];
    if (cp->preferred_wanted && preferred != cp->leader && replica_online(c, preferred) &&
        in_isr(cp, preferred)) {
        st->leader = preferred;
        st->nisr = cp->nisr;
        memcpy(st->isr, cp->isr, sizeof(cp->isr[0]) * (size_t)cp->nisr);
        return PLAN_PREFERRED;
    }
    return PLAN_NONE;
}

static bool state_work_due(const struct cluster *c, const struct cluster_topic *t,
                           const struct cluster_partition *cp)
{
    struct znode_state st;
    return (cp->state == CLUSTER_STATE_MISSING && !cp->writing && c->brokers_seen) ||
           state_plan(c, t, cp, &st) != PLAN_NONE;
}

/* This broker is no longer the controller: it watches /controller again and follows. */
static void controller_step_down(struct cluster *c)
{
    c->is_controller = false;
    c->controller_watch = false;
    cluster_resume(c);
}

/* A controller write fenced by a check of /controller_epoch (a multi: the write, then the check)
 * failed other than on the write's own version: BadVersion is the check's, Kafka's
 * ControllerMovedException (another broker's epoch is newer), anything else is retried. */
static void fenced_write_failed(struct cluster *c, const struct zk_result *res, const char *what)
{
    GREGOR_ASSERT(res->rc != ZK_OK);
    if (res->rc == ZK_BAD_VERSION) {
        LOG_WARN(c->who, "Controller epoch %d is stale: another broker is the controller",
                 c->controller_epoch);
        controller_step_down(c);
        return;
    }
    retry_later(c, what, res->rc);
}

static void state_written(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t p;
    if (parse_topic_path(res->path, name, sizeof(name), &p) != 0 || p < 0)
        return;
    struct cluster_topic *t = topic_slot(c, name);
    if (t != NULL && p < t->npartitions)
        t->parts[p].writing = false;
    /* A write in flight holds a controlled shutdown's answer (settled): its end is looked at
     * too, not only the state reads, which may all have come first. */
    awaits_check(c);
    if (res->rc == ZK_OK || res->rc == ZK_NODE_EXISTS)
        return; /* the state's watch reads it */
    if (res->rc == ZK_BAD_VERSION && res->multi_failed_index == 0) {
        /* The state changed meanwhile (the leader's ISR change): its watch reads it, then the controller looks again;
         * when that read came while this write was in flight (the state then was not due), it
         * looks again now, or a leader set to -1 waits for the next change (an election round
         * that began before its own previous write was read). */
        if (t != NULL && p < t->npartitions &&
            t->parts[p].state_version != t->parts[p].written_version)
            controller_write_states(c);
        return;
    }
    fenced_write_failed(c, res, "writing a partition's state");
}

/* One partition's new state, in a multi with a check of /controller_epoch at version. */
static int write_state(struct cluster *c, struct cluster_topic *t, int32_t p,
                       enum state_plan plan, const struct znode_state *st, int32_t version)
{
    struct cluster_partition *cp = &t->parts[p];
    char path[CLUSTER_TOPIC_NAME_MAX + 64], json[128 + 12 * CLUSTER_REPLICAS_MAX];
    GREGOR_ASSERT(st->leader_epoch > cp->leader_epoch && st->nisr <= CLUSTER_REPLICAS_MAX);
    GREGOR_ASSERT(st->leader < 0 || st->nisr >= 1);
    bool leader_in_isr = st->leader < 0;
    for (int i = 0; i < st->nisr; i++)
        leader_in_isr |= st->isr[i] == st->leader;
    GREGOR_ASSERT(leader_in_isr); /* a leader is always one of its ISR */
    int n = znode_state_json(json, sizeof(json), st);
    GREGOR_ASSERT(n > 0);
    if (plan == PLAN_UNCLEAN)
        LOG_WARN(c->who, "Unclean leader election. Partition %s-%d: no replica in the ISR is "
                 "alive; elected leader %d from the live replicas. There's potential data loss.",
                 t->name, p, st->leader);
    char isr[12 * CLUSTER_REPLICAS_MAX] = "";
    for (int i = 0, off = 0; i < st->nisr && off < (int)sizeof(isr) - 12; i++)
        off += snprintf(isr + off, sizeof(isr) - (size_t)off, i ? ",%d" : "%d", st->isr[i]);
    LOG_INFO(c->who, "Partition %s-%d: leader %d -> %d, leader epoch %d, isr [%s] (%s)", t->name,
             p, cp->leader, st->leader, st->leader_epoch, isr, plan_names[plan]);
    snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, p);
    struct zk_op ops[2] = {
        {.kind = ZK_OP_SET, .path = path, .data = json, .len = n, .version = cp->state_version},
        {.kind = ZK_OP_CHECK, .path = "/controller_epoch", .version = version},
    };
    int rc = zk_multi(c->zk, ops, 2, state_written, c);
    if (rc == ZK_OK) {
        cp->writing = true;
        cp->written_version = cp->state_version;
        cp->bump_wanted = false; /* every state write raises the leader epoch */
    }
    return rc;
}

/* The controller's epoch znode read: the states due are written, each in a multi with a check
 * of /controller_epoch at that version (Kafka's fenced controller writes). */
static void write_epoch_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->states_inflight = false;
    if (res->rc != ZK_OK || res->data == NULL || !res->has_stat) {
        retry_later(c, "reading /controller_epoch", res->rc);
        return;
    }
    if (!c->is_controller || strtol(res->data, NULL, 10) != c->controller_epoch) {
        LOG_WARN(c->who, "Controller epoch moved to %s (ours %d): not writing partition states",
                 res->data, c->controller_epoch);
        controller_step_down(c);
        return;
    }
    int32_t version = res->stat.version;
    int budget = ZK_INFLIGHT_MAX / 8; /* operations per round; the next round follows */
    bool more = false;
    char path[CLUSTER_TOPIC_NAME_MAX + 64], json[128 + 12 * CLUSTER_REPLICAS_MAX];
    for (int i = 0; i < c->ntopics; i++) {
        struct cluster_topic *t = c->topics[i];
        bool parent = false;
        if (delete_pending(c, t->name))
            continue;
        if (topic_write_due(c, t)) {
            if (budget <= 0) {
                more = true;
                break;
            }
            int rc = write_topic(c, t, version);
            if (rc != ZK_OK) {
                retry_later(c, "writing a topic's assignment", rc);
                return;
            }
            budget -= 2;
        }
        for (int32_t p = 0; t->read && p < t->npartitions; p++) {
            struct cluster_partition *cp = &t->parts[p];
            int rc;
            if (cp->state == CLUSTER_STATE_READ) {
                struct znode_state st;
                enum state_plan plan = state_plan(c, t, cp, &st);
                if (plan == PLAN_NONE) {
                    if (!cp->writing)
                        cp->preferred_wanted = cp->unclean_wanted = false; /* none possible */
                    continue;
                }
                if (budget <= 0) {
                    more = true;
                    break;
                }
                rc = write_state(c, t, p, plan, &st, version);
                if (rc != ZK_OK)
                    goto fail;
                budget -= 2;
                continue;
            }
            if (!state_work_due(c, t, cp) || cp->nreplicas == 0)
                continue;
            if (budget <= 0) {
                more = true;
                break;
            }
            /* Kafka's initializeLeaderAndIsrForPartitions: the first live replica leads and
             * every live one is in the ISR (a new partition is empty everywhere), so the ISR
             * is full at once rather than after each follower's first fetch. */
            struct znode_state st = {.controller_epoch = c->controller_epoch, .leader = -1,
                                     .leader_epoch = 0, .nisr = 0};
            GREGOR_ASSERT(cp->nreplicas <= ZNODE_REPLICAS_MAX);
            for (int k = 0; k < cp->nreplicas; k++)
                if (broker_registered(c, cp->replicas[k]))
                    st.isr[st.nisr++] = cp->replicas[k];
            if (st.nisr == 0)
                continue; /* no live replica: offline until one registers */
            st.leader = st.isr[0];
            if (!parent) {
                snprintf(path, sizeof(path), "/brokers/topics/%s/partitions", t->name);
                rc = zk_create_node(c->zk, path, NULL, 0, false, ignore_done, c);
                if (rc != ZK_OK)
                    goto fail;
                parent = true;
            }
            snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d", t->name, p);
            rc = zk_create_node(c->zk, path, NULL, 0, false, ignore_done, c);
            if (rc != ZK_OK)
                goto fail;
            int n = znode_state_json(json, sizeof(json), &st);
            GREGOR_ASSERT(n > 0);
            snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, p);
            struct zk_op ops[2] = {
                {.kind = ZK_OP_CREATE, .path = path, .data = json, .len = n},
                {.kind = ZK_OP_CHECK, .path = "/controller_epoch", .version = version},
            };
            rc = zk_multi(c->zk, ops, 2, state_written, c);
            if (rc != ZK_OK)
                goto fail;
            cp->writing = true;
            budget -= 3;
            continue;
        fail:
            retry_later(c, "writing partition states", rc);
            return;
        }
        if (more)
            break;
    }
    if (more)
        retry_later(c, "writing partition states (next round)", ZK_CONNECTION_LOSS);
}

/* ---- partition reassignment (KIP-455; Kafka 3.9's KafkaController.onPartitionReassignment) ----
 * The TopicZNode carries an ongoing reassignment (replicas = target + the rest of the original,
 * adding_replicas, removing_replicas), so a new controller resumes it from ZooKeeper. Each
 * step is one fenced write: the TopicZNode with the full set (a start), the state with a
 * raised leader epoch, then once every target replica is in the ISR a leader moved into the
 * target when needed (state_plan), and the TopicZNode with the target alone (a completion);
 * the ISR then loses the replicas no longer assigned (isr_online) and their brokers stop and
 * delete their logs (replica_manager.c). */

#define LEGACY_REASSIGN_PATH "/admin/reassign_partitions"
/* The most partitions of /admin/reassign_partitions remembered until they complete. */
#define CLUSTER_LEGACY_MAX 4096

struct legacy_partition {
    char topic[CLUSTER_TOPIC_NAME_MAX];
    int32_t partition;
};

/* A reassignment whose target is all in the ISR and led from the target by a live leader:
 * the TopicZNode gets the target alone. */
static bool reassign_completes(const struct cluster *c, const struct cluster_partition *cp)
{
    int32_t trs[CLUSTER_REPLICAS_MAX];
    int n = reassign_target(cp, trs);
    return cluster_reassigning(cp) && reassign_complete(cp) && !cp->writing && cp->leader >= 0 &&
           ids_have(trs, n, cp->leader) && replica_online(c, cp->leader);
}

static bool topic_write_due(const struct cluster *c, const struct cluster_topic *t)
{
    if (!t->read || t->data_writing || t->data_stale || !c->brokers_seen)
        return false;
    for (int32_t p = 0; p < t->npartitions; p++)
        if (t->parts[p].target_pending || reassign_completes(c, &t->parts[p]))
            return true;
    return false;
}

/* Kafka's ReplicaAssignment.reassignTo: with the original replicas ORS (the replicas without
 * those being added) and the target TRS, replicas = TRS + (ORS - TRS), adding = TRS - ORS,
 * removing = ORS - TRS. -1 when the full set would be more than CLUSTER_REPLICAS_MAX. */
static int reassign_to(const struct cluster_partition *cp, const int32_t *target, int ntarget,
                       int32_t *r, int32_t *nr, int32_t *a, int32_t *na, int32_t *m, int32_t *nm)
{
    int32_t ors[CLUSTER_REPLICAS_MAX];
    int no = 0;
    for (int k = 0; k < cp->nreplicas; k++)
        if (!ids_have(cp->adding, cp->nadding, cp->replicas[k]))
            ors[no++] = cp->replicas[k];
    if (target == NULL) { /* a cancel: back to the original replicas */
        target = ors;
        ntarget = no;
    }
    *nr = *na = *nm = 0;
    for (int k = 0; k < ntarget; k++) {
        r[(*nr)++] = target[k];
        if (!ids_have(ors, no, target[k]))
            a[(*na)++] = target[k];
    }
    for (int k = 0; k < no; k++) {
        if (ids_have(target, ntarget, ors[k]))
            continue;
        if (*nr == CLUSTER_REPLICAS_MAX)
            return -1;
        r[(*nr)++] = ors[k];
        m[(*nm)++] = ors[k];
    }
    return 0;
}

static void log_replicas(char *out, size_t outlen, const int32_t *v, int n)
{
    out[0] = '\0';
    append_ints(out, outlen, v, n);
}

static void topic_written(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    char name[CLUSTER_TOPIC_NAME_MAX];
    int32_t part;
    struct cluster_topic *t = parse_topic_path(res->path, name, sizeof(name), &part) == 0
                                  ? topic_slot(c, name)
                                  : NULL;
    if (t == NULL)
        return;
    t->data_writing = false;
    for (int32_t p = 0; p < t->npartitions; p++) {
        struct cluster_partition *cp = &t->parts[p];
        if (cp->target_writing == 0)
            continue;
        if (res->rc == ZK_OK)
            cp->bump_wanted = true; /* Kafka's updateLeaderEpochAndSendRequest */
        else if (cp->target_writing == 1 && !cp->target_pending)
            cp->target_pending = true; /* to be written again */
        cp->target_writing = 0;
    }
    if (res->rc == ZK_OK) {
        t->data_stale = true; /* its watch reads it back */
        return;
    }
    if (res->rc == ZK_BAD_VERSION && res->multi_failed_index == 0) {
        /* Changed meanwhile: its watch reads it, then the controller looks again (now, when
         * that read came first). */
        controller_write_states(c);
        return;
    }
    fenced_write_failed(c, res, "writing a topic's assignment");
}

/* The TopicZNode from this broker's view with the reassignments due (starts and completions),
 * set at the version read, in a multi with the check of /controller_epoch. */
static int write_topic(struct cluster *c, struct cluster_topic *t, int32_t version)
{
    int32_t n = t->npartitions;
    size_t cells = (size_t)n * CLUSTER_REPLICAS_MAX;
    int32_t *counts = calloc(3 * (size_t)n, sizeof(int32_t));
    int32_t *ids = calloc(3 * cells, sizeof(int32_t));
    size_t jlen = 256 + (size_t)n * 3 * (16 + 12 * (size_t)CLUSTER_REPLICAS_MAX);
    char *json = malloc(jlen);
    GREGOR_ASSERT(counts != NULL && ids != NULL && json != NULL);
    int32_t *nadd = counts + n, *nrem = counts + 2 * n, *add = ids + cells, *rem = ids + 2 * cells;
    char l1[12 * CLUSTER_REPLICAS_MAX], l2[12 * CLUSTER_REPLICAS_MAX], l3[12 * CLUSTER_REPLICAS_MAX];
    for (int32_t p = 0; p < n; p++) {
        struct cluster_partition *cp = &t->parts[p];
        size_t at = (size_t)p * CLUSTER_REPLICAS_MAX;
        if (cp->target_pending &&
            reassign_to(cp, cp->target_cancel ? NULL : cp->target, cp->ntarget, ids + at,
                        &counts[p], add + at, &nadd[p], rem + at, &nrem[p]) == 0) {
            cp->target_writing = 1;
            cp->target_pending = false;
            log_replicas(l1, sizeof(l1), ids + at, counts[p]);
            log_replicas(l2, sizeof(l2), add + at, nadd[p]);
            log_replicas(l3, sizeof(l3), rem + at, nrem[p]);
            LOG_INFO(c->who, "Partition %s-%d reassignment%s: replicas [%s], adding [%s], "
                     "removing [%s]", t->name, p, cp->target_cancel ? " cancelled" : "", l1, l2,
                     l3);
            continue;
        }
        if (cp->target_pending) {
            LOG_WARN(c->who, "Partition %s-%d: the reassignment would list more than %d "
                     "replicas: dropped", t->name, p, CLUSTER_REPLICAS_MAX);
            cp->target_pending = false;
        }
        if (reassign_completes(c, cp)) {
            counts[p] = reassign_target(cp, ids + at);
            cp->target_writing = 2;
            log_replicas(l1, sizeof(l1), ids + at, counts[p]);
            LOG_INFO(c->who, "Partition %s-%d reassignment completed: replicas [%s]", t->name, p,
                     l1);
            continue;
        }
        counts[p] = cp->nreplicas;
        memcpy(ids + at, cp->replicas, sizeof(int32_t) * (size_t)cp->nreplicas);
        nadd[p] = cp->nadding;
        memcpy(add + at, cp->adding, sizeof(int32_t) * (size_t)cp->nadding);
        nrem[p] = cp->nremoving;
        memcpy(rem + at, cp->removing, sizeof(int32_t) * (size_t)cp->nremoving);
    }
    int len = znode_topic_json_full(json, jlen, t->id, n, counts, ids, CLUSTER_REPLICAS_MAX, nadd,
                                    add, nrem, rem);
    GREGOR_ASSERT(len > 0);
    free(counts);
    free(ids);
    int rc = ZK_OK;
    if (len >= ZK_DATA_MAX) {
        LOG_ERROR(c->who, "The assignment of topic %s (%d bytes) is larger than a znode this "
                  "broker writes (%d bytes): its reassignments are dropped", t->name, len,
                  ZK_DATA_MAX);
        for (int32_t p = 0; p < n; p++)
            t->parts[p].target_writing = 0;
    } else {
        char path[CLUSTER_TOPIC_NAME_MAX + 32];
        snprintf(path, sizeof(path), "/brokers/topics/%s", t->name);
        struct zk_op ops[2] = {
            {.kind = ZK_OP_SET, .path = path, .data = json, .len = len,
             .version = t->data_version},
            {.kind = ZK_OP_CHECK, .path = "/controller_epoch", .version = version},
        };
        rc = zk_multi(c->zk, ops, 2, topic_written, c);
        if (rc == ZK_OK)
            t->data_writing = true;
        for (int32_t p = 0; rc != ZK_OK && p < n; p++) {
            struct cluster_partition *cp = &t->parts[p];
            cp->target_pending |= cp->target_writing == 1;
            cp->target_writing = 0;
        }
    }
    free(json);
    return rc;
}

/* /admin/reassign_partitions: deleted once none of the partitions it listed is being
 * reassigned any more (Kafka removes each as it completes, and the znode when empty). */
static void legacy_check(struct cluster *c)
{
    if (!c->is_controller || c->nlegacy == 0 || c->legacy_inflight)
        return;
    for (int i = 0; i < c->nlegacy; i++) {
        const struct cluster_topic *t = topic_slot(c, c->legacy[i].topic);
        int32_t p = c->legacy[i].partition;
        if (t == NULL || p >= t->npartitions)
            continue;
        const struct cluster_partition *cp = &t->parts[p];
        if (cp->target_pending || cp->target_writing || cluster_reassigning(cp) ||
            t->data_writing || t->data_stale)
            return;
    }
    LOG_INFO(c->who, "The reassignments of %s completed: deleting it", LEGACY_REASSIGN_PATH);
    c->nlegacy = 0;
    int rc = zk_delete(c->zk, LEGACY_REASSIGN_PATH, -1, ignore_done, c);
    if (rc != ZK_OK)
        retry_later(c, "deleting " LEGACY_REASSIGN_PATH, rc);
}

static void legacy_entry(void *arg, const char *topic, int32_t partition, const int32_t *replicas,
                         int n)
{
    struct cluster *c = arg;
    char msg[512];
    int e = cluster_reassign(c, topic, partition, replicas, n, msg, sizeof(msg));
    if (e != KERR_NONE) {
        LOG_WARN(c->who, "Failed to reassign %s-%d from %s: %s%s%s", topic, partition,
                 LEGACY_REASSIGN_PATH, kerr_name(e), msg[0] ? ": " : "", msg);
        return;
    }
    if (c->nlegacy == CLUSTER_LEGACY_MAX)
        return;
    if (c->legacy == NULL) {
        c->legacy = calloc(CLUSTER_LEGACY_MAX, sizeof(*c->legacy));
        GREGOR_ASSERT(c->legacy != NULL);
    }
    snprintf(c->legacy[c->nlegacy].topic, CLUSTER_TOPIC_NAME_MAX, "%s", topic);
    c->legacy[c->nlegacy++].partition = partition;
}

static void legacy_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->legacy_inflight = false;
    c->nlegacy = 0;
    if (res->rc == ZK_NO_NODE || !c->is_controller)
        return; /* the exists watch fires on its creation */
    if (res->rc != ZK_OK) {
        c->legacy_watch = false;
        retry_later(c, "reading " LEGACY_REASSIGN_PATH, res->rc);
        return;
    }
    int n = res->data != NULL ? znode_reassign_parse(res->data, (size_t)res->len, legacy_entry, c)
                              : -1;
    if (n < 0)
        LOG_WARN(c->who, "Cannot read %s: %s", LEGACY_REASSIGN_PATH,
                 res->data ? res->data : "(empty)");
    else
        LOG_INFO(c->who, "Handling %d partition reassignments from %s", n, LEGACY_REASSIGN_PATH);
    if (c->nlegacy == 0) { /* nothing valid in it: removed, as Kafka */
        int rc = zk_delete(c->zk, LEGACY_REASSIGN_PATH, -1, ignore_done, c);
        if (rc != ZK_OK)
            retry_later(c, "deleting " LEGACY_REASSIGN_PATH, rc);
    }
    controller_write_states(c);
}

static void legacy_exists(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    if (res->rc == ZK_OK && c->is_controller) {
        int rc = zk_get(c->zk, LEGACY_REASSIGN_PATH, NULL, NULL, legacy_read, c);
        if (rc == ZK_OK)
            return;
        c->legacy_watch = false;
        c->legacy_inflight = false;
        retry_later(c, "reading " LEGACY_REASSIGN_PATH, rc);
        return;
    }
    legacy_read(arg, res);
}

static void legacy_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)type;
    (void)path;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk))
        return;
    c->legacy_watch = false;
    cluster_resume(c);
}

static void watch_legacy(struct cluster *c)
{
    if (!c->is_controller)
        return;
    c->legacy_watch = c->legacy_inflight = true;
    int rc = zk_exists(c->zk, LEGACY_REASSIGN_PATH, legacy_changed, c, legacy_exists, c);
    if (rc != ZK_OK) {
        c->legacy_watch = c->legacy_inflight = false;
        retry_later(c, "watching " LEGACY_REASSIGN_PATH, rc);
    }
}

static void controller_write_states(struct cluster *c)
{
    if (!c->is_controller || c->states_inflight || !zk_connected(c->zk))
        return;
    legacy_check(c);
    bool any = false;
    for (int i = 0; i < c->ntopics && !any; i++) {
        const struct cluster_topic *t = c->topics[i];
        any = !delete_pending(c, t->name) && topic_write_due(c, t);
        for (int32_t p = 0; t->read && !delete_pending(c, t->name) && p < t->npartitions && !any;
             p++)
            any = state_work_due(c, t, &t->parts[p]) || t->parts[p].preferred_wanted ||
                  t->parts[p].unclean_wanted;
    }
    if (!any)
        return;
    c->states_inflight = true;
    int rc = zk_get(c->zk, "/controller_epoch", NULL, NULL, write_epoch_read, c);
    if (rc != ZK_OK) {
        c->states_inflight = false;
        retry_later(c, "reading /controller_epoch", rc);
    }
}

static void watch_topics(struct cluster *c)
{
    bool set_watch = !c->topics_watch;
    c->topics_watch = true;
    c->topics_inflight = true;
    int rc = zk_get_children(c->zk, "/brokers/topics", set_watch ? topics_changed : NULL, c,
                             topics_listed, c);
    if (rc != ZK_OK) {
        c->topics_inflight = false;
        c->topics_watch = false;
        retry_later(c, "listing /brokers/topics", rc);
    }
}

/* ---- CreateTopics ---- */

/* An admin operation in flight: a ZooKeeper write (CreateTopics, DeleteTopics,
 * CreatePartitions) or a request waiting until this broker's view shows its effect. Each is on
 * c->creates until done() is called, exactly once. */
enum op_kind { OP_CREATE, OP_DELETE, OP_PARTITIONS, OP_AWAIT, OP_SETTLE };

struct create_op {
    cluster_create_done_fn done;
    void *arg;
    struct create_op *next, *prev;
    struct cluster *c;
    enum op_kind kind;
    bool is_delete;            /* /admin/delete_topics/<t>: NodeExists is fine */
    char name[CLUSTER_TOPIC_NAME_MAX];
    /* OP_AWAIT: leaders for partitions [from, to) (to < 0: the topic out of the view); those
     * before `led` were seen led; the deadline's timer. */
    int32_t from, to, led;
    uint64_t timer;
    /* OP_SETTLE: the broker in controlled shutdown whose partitions are to settle (-1: the
     * elections asked for). */
    int32_t broker;
    /* OP_PARTITIONS: the count asked, the explicit assignment (nassign lists of assign_n[k]
     * ids at assign_ids[k * CLUSTER_REPLICAS_MAX], -1: none), the writes tried. */
    int32_t count, nassign;
    int32_t *assign_n, *assign_ids;
    int attempts;
};

static void op_link(struct cluster *c, struct create_op *op)
{
    op->c = c;
    op->prev = NULL;
    op->next = c->creates;
    if (c->creates)
        c->creates->prev = op;
    c->creates = op;
}

static void create_op_unlink(struct cluster *c, struct create_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        c->creates = op->next;
    if (op->next)
        op->next->prev = op->prev;
}

static void op_free(struct create_op *op)
{
    free(op->assign_n);
    free(op->assign_ids);
    free(op);
}

/* Takes op off the list, answers it and frees it. */
static void op_finish(struct cluster *c, struct create_op *op, int kerr, const char *msg)
{
    create_op_unlink(c, op);
    if (op->timer != 0)
        loop_timer_cancel(c->loop, op->timer);
    op->timer = 0;
    op->done(op->arg, kerr, msg);
    op_free(op);
}

/* ---- requests answered once this broker's view shows their effect ---- */

/* What Metadata answers here (metadata.c): a partition is led when its state was read and its
 * leader is a live broker. Partitions seen led are not looked at again (amortized O(n)). */
static bool await_satisfied(const struct cluster *c, struct create_op *op)
{
    const struct cluster_topic *t = topic_slot(c, op->name);
    if (op->to < 0)
        return t == NULL || !cluster_topic_visible(t);
    if (t == NULL || !cluster_topic_visible(t) || t->npartitions < op->to)
        return false;
    while (op->led < op->to) {
        const struct cluster_partition *cp = &t->parts[op->led];
        if (cp->state != CLUSTER_STATE_READ || cp->leader < 0 || !broker_live(c, cp->leader))
            return false;
        op->led++;
    }
    return true;
}

static bool replicates_on(const struct cluster_partition *cp, int32_t id)
{
    for (int k = 0; k < cp->nreplicas; k++)
        if (cp->replicas[k] == id)
            return true;
    return false;
}

/* Nothing left to write or read back for the partitions of broker (in controlled shutdown), or
 * (broker -1) for the elections asked. */
static bool settled(const struct cluster *c, int32_t broker)
{
    for (int i = 0; i < c->ntopics; i++) {
        const struct cluster_topic *t = c->topics[i];
        if (!t->read || delete_pending(c, t->name))
            continue;
        for (int32_t p = 0; p < t->npartitions; p++) {
            const struct cluster_partition *cp = &t->parts[p];
            struct znode_state st;
            if (broker == -2 ? cp->target_pending || cp->target_writing || t->data_writing ||
                                   t->data_stale
                : broker < 0 ? cp->preferred_wanted || cp->unclean_wanted
                           : replicates_on(cp, broker) &&
                                 (cp->writing || state_plan(c, t, cp, &st) != PLAN_NONE))
                return false;
        }
    }
    return true;
}

/* The controller's requests waiting for their partitions to settle are looked at once per
 * CLUSTER_SETTLE_CHECK_MS, not on every state read: each look walks every partition. */
static void settles_check(struct loop *l, void *arg)
{
    (void)l;
    struct cluster *c = arg;
    c->settle_timer = 0;
    struct create_op *next;
    for (struct create_op *op = c->creates; op != NULL; op = next) {
        next = op->next;
        if (op->kind != OP_SETTLE)
            continue;
        if (!c->is_controller)
            op_finish(c, op, KERR_NOT_CONTROLLER, NULL);
        else if (settled(c, op->broker))
            op_finish(c, op, KERR_NONE, NULL);
    }
}

static void awaits_check(struct cluster *c)
{
    struct create_op *next;
    for (struct create_op *op = c->creates; op != NULL; op = next) {
        next = op->next; /* done() does not call back into the cluster */
        if (op->kind == OP_AWAIT && await_satisfied(c, op))
            op_finish(c, op, KERR_NONE, NULL);
        else if (op->kind == OP_SETTLE && c->settle_timer == 0)
            c->settle_timer = loop_timer_add(c->loop, mono_ms() + CLUSTER_SETTLE_CHECK_MS,
                                             settles_check, c);
    }
}

static void await_expired(struct loop *l, void *arg)
{
    (void)l;
    struct create_op *op = arg;
    op->timer = 0;
    /* Kafka's DelayedCreatePartitions / DelayedDeleteTopics on expiry: no message. */
    op_finish(op->c, op, KERR_REQUEST_TIMED_OUT, NULL);
}

bool cluster_await_view(struct cluster *c, const char *name, int32_t from, int32_t to,
                        int32_t timeout_ms, cluster_create_done_fn done, void *arg)
{
    GREGOR_ASSERT(to < 0 || (from >= 0 && from <= to));
    struct create_op probe = {.kind = OP_AWAIT, .from = from, .to = to, .led = from};
    snprintf(probe.name, sizeof(probe.name), "%s", name);
    if (timeout_ms <= 0 || await_satisfied(c, &probe))
        return false;
    struct create_op *op = calloc(1, sizeof(*op));
    GREGOR_ASSERT(op != NULL);
    *op = probe;
    op->done = done;
    op->arg = arg;
    op->timer = loop_timer_add(c->loop, mono_ms() + timeout_ms, await_expired, op);
    op_link(c, op);
    return true;
}

/* ---- the controller's requests: ControlledShutdown, ElectLeaders, the auto rebalance ---- */

static struct create_op *settle_op(struct cluster *c, int32_t broker, int32_t timeout_ms,
                                   cluster_create_done_fn done, void *arg)
{
    struct create_op *op = calloc(1, sizeof(*op));
    GREGOR_ASSERT(op != NULL);
    op->kind = OP_SETTLE;
    op->broker = broker;
    op->done = done;
    op->arg = arg;
    op->timer = loop_timer_add(c->loop, mono_ms() + (timeout_ms > 0 ? timeout_ms : 1),
                               await_expired, op);
    op_link(c, op);
    return op;
}

int64_t cluster_broker_epoch(const struct cluster *c)
{
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == c->cfg.broker_id && c->known[i])
            return c->brokers[i].epoch;
    return -1;
}

/* Kafka's KafkaController.doControlledShutdown: the broker joins the ones shutting down; the
 * partitions it leads get another leader from their ISR, those it follows lose it from the
 * ISR (state_plan), and the answer comes once that is written and read back. */
int cluster_controlled_shutdown(struct cluster *c, int32_t id, int64_t broker_epoch,
                                int32_t timeout_ms, cluster_create_done_fn done, void *arg,
                                bool *pending)
{
    *pending = false;
    if (!c->is_controller)
        return KERR_NOT_CONTROLLER;
    int at = -1;
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == id)
            at = i;
    if (at < 0) {
        LOG_WARN(c->who, "Controlled shutdown of broker %d: it is not registered", id);
        return CLUSTER_ERR_BROKER_NOT_AVAILABLE;
    }
    if (broker_epoch >= 0 && c->known[at] && broker_epoch < c->brokers[at].epoch) {
        LOG_INFO(c->who, "Ignoring controlled shutdown of broker %d at epoch %" PRId64
                 ": its current epoch is %" PRId64, id, broker_epoch, c->brokers[at].epoch);
        return CLUSTER_ERR_STALE_BROKER_EPOCH;
    }
    int s = shutting_index(c, id);
    if (s < 0) {
        if (c->nshutting == CLUSTER_SHUTTING_MAX)
            return CLUSTER_ERR_BROKER_NOT_AVAILABLE; /* bounded; the broker retries */
        s = c->nshutting++;
        LOG_INFO(c->who, "Shutting down broker %d", id);
    }
    c->shutting[s].id = id;
    c->shutting[s].epoch = c->known[at] ? c->brokers[at].epoch : -1;
    *pending = !settled(c, id);
    if (!*pending)
        return KERR_NONE; /* nothing to move or take out of an ISR: answered at once */
    settle_op(c, id, timeout_ms, done, arg);
    controller_write_states(c);
    awaits_check(c); /* arms the settle check (never answers inside this call) */
    return KERR_NONE;
}

int cluster_elect_leader(struct cluster *c, const char *topic, int32_t partition, bool unclean,
                         char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (!c->is_controller)
        return KERR_NOT_CONTROLLER;
    struct cluster_topic *t = topic_slot(c, topic);
    if (t == NULL || !cluster_topic_visible(t) || partition < 0 || partition >= t->npartitions) {
        snprintf(msg, msglen, "The partition %s-%d does not exist.", topic, partition);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    struct cluster_partition *cp = &t->parts[partition];
    if (unclean) {
        /* Kafka: an election is needed only when the partition has no live leader. */
        if (cp->state == CLUSTER_STATE_READ && cp->leader >= 0 &&
            broker_registered(c, cp->leader))
            return CLUSTER_ERR_ELECTION_NOT_NEEDED;
        bool any = false;
        for (int k = 0; k < cp->nreplicas && !any; k++)
            any = replica_online(c, cp->replicas[k]);
        if (cp->state != CLUSTER_STATE_READ || !any) {
            snprintf(msg, msglen, "Failed to elect leader for partition %s-%d under strategy "
                     "OfflinePartitionLeaderElectionStrategy(true)", topic, partition);
            return CLUSTER_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
        }
        cp->unclean_wanted = true;
    } else {
        int32_t preferred = cp->nreplicas > 0 ? cp->replicas[0] : -1;
        if (cp->state == CLUSTER_STATE_READ && cp->leader == preferred)
            return CLUSTER_ERR_ELECTION_NOT_NEEDED;
        if (cp->state != CLUSTER_STATE_READ || preferred < 0 || !replica_online(c, preferred) ||
            !in_isr(cp, preferred)) {
            snprintf(msg, msglen, "Failed to elect leader for partition %s-%d under strategy "
                     "PreferredReplicaPartitionLeaderElectionStrategy", topic, partition);
            return CLUSTER_ERR_PREFERRED_LEADER_NOT_AVAILABLE;
        }
        cp->preferred_wanted = true;
    }
    controller_write_states(c);
    return KERR_NONE;
}

bool cluster_await_elections(struct cluster *c, int32_t timeout_ms, cluster_create_done_fn done,
                             void *arg)
{
    if (settled(c, -1) || timeout_ms <= 0)
        return false;
    settle_op(c, -1, timeout_ms, done, arg);
    awaits_check(c);
    return true;
}

/* ---- AlterPartitionReassignments ---- */

/* Scala's Seq and Set as Kafka's messages print them: "ArrayBuffer(1, 2)", "Set(1, 2)". */
static void scala_list(char *out, size_t outlen, const char *kind, const int32_t *v, int n)
{
    snprintf(out, outlen, "%s(", kind);
    append_ints(out, outlen, v, n);
    size_t len = strlen(out);
    snprintf(out + len, outlen - len, ")");
}

/* Kafka's validateReplicas, in its order and with its messages. */
static int reassign_validate(const struct cluster *c, const struct cluster_partition *cp,
                             const int32_t *replicas, int32_t n, char *msg, size_t msglen)
{
    char list[16 + 13 * CLUSTER_REPLICAS_MAX];
    scala_list(list, sizeof(list), "ArrayBuffer", replicas,
               n < CLUSTER_REPLICAS_MAX ? n : CLUSTER_REPLICAS_MAX);
    if (n == 0) {
        snprintf(msg, msglen, "Empty replica list specified in partition reassignment.");
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    bool dup = false;
    for (int32_t i = 0; i < n && !dup; i++)
        for (int32_t j = 0; j < i && !dup; j++)
            dup = replicas[i] == replicas[j];
    if (dup) {
        snprintf(msg, msglen, "Duplicate replica ids in partition reassignment replica list: %s",
                 list);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    for (int32_t i = 0; i < n; i++)
        if (replicas[i] < 0) {
            snprintf(msg, msglen, "Invalid broker id in replica list: %s", list);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    if (n > CLUSTER_REPLICAS_MAX) {
        snprintf(msg, msglen, "Replica list of %d brokers is longer than this broker allows (%d): "
                 "%s", n, CLUSTER_REPLICAS_MAX, list);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    struct cluster_partition none = {0};
    int32_t r[CLUSTER_REPLICAS_MAX], a[CLUSTER_REPLICAS_MAX], m[CLUSTER_REPLICAS_MAX];
    int32_t nr, na, nm;
    if (reassign_to(cp != NULL ? cp : &none, replicas, n, r, &nr, a, &na, m, &nm) != 0) {
        snprintf(msg, msglen, "The reassignment of %s would list more than %d replicas.", list,
                 CLUSTER_REPLICAS_MAX);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    bool alive = true;
    for (int32_t i = 0; i < na; i++)
        alive &= replica_online(c, a[i]);
    if (!alive) {
        int32_t live[CLUSTER_REPLICAS_MAX];
        int nl = 0;
        for (int i = 0; i < c->nlive && nl < CLUSTER_REPLICAS_MAX; i++)
            if (replica_online(c, c->live[i].id))
                live[nl++] = c->live[i].id;
        char adding[16 + 13 * CLUSTER_REPLICAS_MAX], lives[16 + 13 * CLUSTER_REPLICAS_MAX];
        scala_list(adding, sizeof(adding), "ArrayBuffer", a, na);
        scala_list(lives, sizeof(lives), "Set", live, nl);
        snprintf(msg, msglen, "Replica assignment has brokers that are not alive. Replica list: "
                 "%s, live broker list: %s", adding, lives);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    return KERR_NONE;
}

int cluster_reassign(struct cluster *c, const char *topic, int32_t partition,
                     const int32_t *replicas, int32_t n, char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (!c->is_controller)
        return KERR_NOT_CONTROLLER;
    struct cluster_topic *t = topic_slot(c, topic);
    bool known = t != NULL && cluster_topic_visible(t) && partition >= 0 &&
                 partition < t->npartitions && t->parts[partition].nreplicas > 0;
    struct cluster_partition *cp = known ? &t->parts[partition] : NULL;
    if (replicas != NULL) {
        int e = reassign_validate(c, cp, replicas, n, msg, msglen);
        if (e != KERR_NONE)
            return e;
    } else if (cp == NULL || (!cluster_reassigning(cp) && !cp->target_pending &&
                              cp->target_writing != 1)) {
        return CLUSTER_ERR_NO_REASSIGNMENT_IN_PROGRESS;
    }
    if (cp == NULL || delete_pending(c, topic)) {
        snprintf(msg, msglen, "The partition does not exist.");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    cp->target_pending = true;
    cp->target_cancel = replicas == NULL;
    cp->ntarget = replicas != NULL ? n : 0;
    if (replicas != NULL)
        memcpy(cp->target, replicas, sizeof(int32_t) * (size_t)n);
    controller_write_states(c);
    return KERR_NONE;
}

bool cluster_await_reassignments(struct cluster *c, int32_t timeout_ms,
                                 cluster_create_done_fn done, void *arg)
{
    if (settled(c, -2) || timeout_ms <= 0)
        return false;
    settle_op(c, -2, timeout_ms, done, arg);
    awaits_check(c);
    return true;
}

/* Kafka's checkAndTriggerAutoLeaderRebalance: for each broker, the partitions it is preferred
 * for but does not lead over those it is preferred for; above
 * leader.imbalance.per.broker.percentage, each of them whose preferred replica is online and
 * in the ISR gets a preferred election. */
void cluster_rebalance_check(struct cluster *c)
{
    if (!c->is_controller)
        return;
    int elections = 0;
    for (int b = 0; b < c->nbrokers; b++) {
        int32_t id = c->brokers[b].id;
        int64_t preferred = 0, not_led = 0;
        for (int i = 0; i < c->ntopics; i++) {
            const struct cluster_topic *t = c->topics[i];
            if (!cluster_topic_visible(t) || delete_pending(c, t->name))
                continue;
            for (int32_t p = 0; p < t->npartitions; p++) {
                const struct cluster_partition *cp = &t->parts[p];
                if (cp->nreplicas == 0 || cp->replicas[0] != id ||
                    cp->state != CLUSTER_STATE_READ)
                    continue;
                preferred++;
                not_led += cp->leader != id;
            }
        }
        if (preferred == 0 || not_led * 100 <= preferred *
                                                     (int64_t)c->cfg.leader_imbalance_per_broker_percentage)
            continue;
        LOG_INFO(c->who, "Leader imbalance ratio for broker %d is %.3f", id,
                 (double)not_led / (double)preferred);
        if (!replica_online(c, id))
            continue;
        for (int i = 0; i < c->ntopics; i++) {
            struct cluster_topic *t = c->topics[i];
            if (!cluster_topic_visible(t) || delete_pending(c, t->name))
                continue;
            for (int32_t p = 0; p < t->npartitions; p++) {
                struct cluster_partition *cp = &t->parts[p];
                if (cp->nreplicas > 0 && cp->replicas[0] == id &&
                    cp->state == CLUSTER_STATE_READ && cp->leader != id && in_isr(cp, id)) {
                    cp->preferred_wanted = true;
                    elections++;
                }
            }
        }
    }
    if (elections > 0) {
        LOG_INFO(c->who, "Starting preferred replica leader election for %d partitions",
                 elections);
        controller_write_states(c);
    }
}

static void rebalance_fire(struct loop *l, void *arg)
{
    struct cluster *c = arg;
    c->rebalance_timer = 0;
    if (c->cfg.auto_leader_rebalance_enable)
        cluster_rebalance_check(c);
    c->rebalance_timer = loop_timer_add(
        l, mono_ms() + (int64_t)c->cfg.leader_imbalance_check_interval_s * 1000, rebalance_fire, c);
}

static void topic_created(void *arg, const struct zk_result *res)
{
    struct create_op *op = arg;
    struct cluster *c = op->c;
    const char *slash = strrchr(res->path, '/');
    const char *name = slash ? slash + 1 : res->path;
    char msg[512];
    int e;
    if (res->rc == ZK_OK || (op->is_delete && res->rc == ZK_NODE_EXISTS)) {
        e = KERR_NONE;
        msg[0] = '\0';
        LOG_INFO(c->who, "Topic %s %s", op->is_delete ? "deletion requested:" : "creation", name);
    } else if (res->rc == ZK_NODE_EXISTS) {
        e = KERR_TOPIC_ALREADY_EXISTS;
        snprintf(msg, sizeof(msg), "Topic '%s' already exists.", name);
    } else {
        e = KERR_REQUEST_TIMED_OUT;
        snprintf(msg, sizeof(msg), "Writing the topic's assignment to ZooKeeper failed (error %d)",
                 res->rc);
    }
    op_finish(c, op, e, msg);
}

/* Kafka's AdminOperationException when some live brokers have a rack and others not: not an
 * ApiException, so UNKNOWN_SERVER_ERROR (logged as Kafka's error line). */
#define RACKS_PARTIAL "Not all brokers have rack information for replica rack aware assignment."
static int rack_refusal(struct cluster *c, const char *name, char *msg, size_t msglen)
{
    snprintf(msg, msglen, "%s", RACKS_PARTIAL);
    LOG_ERROR(c->who, "Error processing create topic request for %s: %s", name, msg);
    return KERR_UNKNOWN_SERVER_ERROR;
}

int cluster_create_topic(struct cluster *c, const char *name, int32_t nparts, int16_t rf,
                         const int32_t *assignment, bool validate_only, uint8_t id_out[16],
                         const char *config_json, cluster_create_done_fn done, void *arg,
                         char *msg, size_t msglen)
{
    const struct cluster_topic *have = topic_slot(c, name);
    if (have != NULL) {
        /* AdminZkClient.validateTopicCreate's two TopicExistsExceptions */
        if (have->marked || delete_pending(c, name))
            snprintf(msg, msglen, "Topic '%s' is marked for deletion.", name);
        else
            snprintf(msg, msglen, "Topic '%s' already exists.", name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    if (assignment == NULL && rf > c->nlive) {
        snprintf(msg, msglen, "Replication factor: %d larger than available brokers: %d.", rf,
                 c->nlive);
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (rf > CLUSTER_REPLICAS_MAX || nparts > CLUSTER_PARTITIONS_MAX) {
        snprintf(msg, msglen, "Replication factor %d or %d partitions over this broker's bounds "
                 "(%d, %d)", rf, nparts, CLUSTER_REPLICAS_MAX, CLUSTER_PARTITIONS_MAX);
        return rf > CLUSTER_REPLICAS_MAX ? KERR_INVALID_REPLICATION_FACTOR
                                         : KERR_INVALID_PARTITIONS;
    }
    if (assignment != NULL)
        for (size_t i = 0; i < (size_t)nparts * (size_t)rf; i++)
            if (!broker_live(c, assignment[i])) {
                snprintf(msg, msglen, "Unknown broker %d in the replica assignment",
                         assignment[i]);
                return KERR_INVALID_REPLICA_ASSIGNMENT;
            }
    if (validate_only)
        return KERR_NONE;
    int32_t *a = malloc(sizeof(int32_t) * (size_t)nparts * (size_t)rf);
    size_t jlen = 256 + (size_t)nparts * (16 + 12 * (size_t)rf);
    char *json = malloc(jlen);
    struct create_op *op = calloc(1, sizeof(*op));
    GREGOR_ASSERT(a != NULL && json != NULL && op != NULL);
    if (assignment != NULL) {
        memcpy(a, assignment, sizeof(int32_t) * (size_t)nparts * (size_t)rf);
    } else {
        int32_t ids[CLUSTER_BROKERS_MAX];
        for (int i = 0; i < c->nlive; i++)
            ids[i] = c->live[i].id;
        const char *racks[CLUSTER_BROKERS_MAX];
        for (int i = 0; i < c->nlive; i++)
            racks[i] = c->live[i].rack;
        uint32_t r[2] = {0, 0};
        if (getrandom(r, sizeof(r), 0) != sizeof(r))
            r[0] = (uint32_t)now_ms(), r[1] = (uint32_t)mono_ms();
        /* Kafka: a random start index and a random shift for the next replicas. */
        if (cluster_assign_replicas_racks(ids, racks, c->nlive, 0, nparts, rf,
                                          (int)(r[0] % (uint32_t)c->nlive),
                                          (int)(r[1] % (uint32_t)c->nlive), a) != 0) {
            free(a);
            free(json);
            free(op);
            return rack_refusal(c, name, msg, msglen);
        }
    }
    uint8_t id[16];
    if (getrandom(id, 16, 0) != 16) {
        int64_t x = now_ms() ^ mono_ms();
        memcpy(id, &x, sizeof(x));
        memcpy(id + 8, &x, sizeof(x));
    }
    if (id_out != NULL)
        memcpy(id_out, id, 16);
    int n = znode_topic_json(json, jlen, id, nparts, NULL, a, rf);
    GREGOR_ASSERT(n > 0);
    char path[CLUSTER_TOPIC_NAME_MAX + 32];
    snprintf(path, sizeof(path), "/brokers/topics/%s", name);
    op->done = done;
    op->arg = arg;
    op->c = c;
    op->kind = OP_CREATE;
    int rc = n < ZK_DATA_MAX ? topic_create_with_config(c, name, json, n, config_json, op)
                             : ZK_TOO_BUSY;
    free(a);
    free(json);
    if (rc != ZK_OK) {
        free(op);
        snprintf(msg, msglen, "Cannot write the topic's assignment to ZooKeeper (error %d)", rc);
        return KERR_REQUEST_TIMED_OUT;
    }
    op_link(c, op);
    return KERR_NONE;
}

/* ---- CreatePartitions ---- */

/* Appends ", "-separated ints to out (bounded; truncated when full). */
static void append_ints(char *out, size_t outlen, const int32_t *v, int n)
{
    size_t len = strlen(out);
    for (int i = 0; i < n && len + 1 < outlen; i++) {
        int w = snprintf(out + len, outlen - len, "%s%d", i ? ", " : "", v[i]);
        if (w < 0)
            return;
        len += (size_t)w;
        if (len >= outlen)
            len = outlen - 1;
    }
}

/* Kafka's checks of a partition increase (ZkAdminManager.createPartitions, then
 * AdminZkClient.createNewPartitionsAssignment and validateReplicaAssignment), in their order and
 * with their messages, against a topic of old_n partitions whose partition 0 has replicas
 * p0[0..p0n). out (NULL: check only) gets (count - old_n) rows of p0n broker ids. */
static int partitions_plan(const struct cluster *c, int32_t old_n, const int32_t *p0, int p0n,
                           int32_t count, const struct cluster_replicas *assign, int32_t nassign,
                           int32_t *out, char *msg, size_t msglen)
{
    int32_t inc = count - old_n;
    if (inc < 0) {
        snprintf(msg, msglen, "Topic currently has %d partitions, which is higher than the "
                 "requested %d.", old_n, count);
        return KERR_INVALID_PARTITIONS;
    }
    if (inc == 0) {
        snprintf(msg, msglen, "Topic already has %d partitions.", old_n);
        return KERR_INVALID_PARTITIONS;
    }
    if (count > CLUSTER_PARTITIONS_MAX) {
        snprintf(msg, msglen, "Number of partitions %d is more than this broker allows (%d).",
                 count, CLUSTER_PARTITIONS_MAX);
        return KERR_INVALID_PARTITIONS;
    }
    if (nassign >= 0) {
        int32_t unknown[CLUSTER_REPLICAS_MAX];
        int nunknown = 0;
        for (int32_t k = 0; k < nassign; k++)
            for (int32_t j = 0; j < assign[k].n; j++) {
                int32_t id = assign[k].ids[j];
                bool seen = broker_live(c, id);
                for (int u = 0; u < nunknown && !seen; u++)
                    seen = unknown[u] == id;
                if (!seen && nunknown < CLUSTER_REPLICAS_MAX)
                    unknown[nunknown++] = id;
            }
        if (nunknown > 0) {
            snprintf(msg, msglen, "Unknown broker(s) in replica assignment: ");
            append_ints(msg, msglen, unknown, nunknown);
            size_t len = strlen(msg);
            snprintf(msg + len, msglen - len, ".");
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (nassign != inc) {
            snprintf(msg, msglen, "Increasing the number of partitions by %d but %d assignments "
                     "provided.", inc, nassign);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        int32_t bad_p[CLUSTER_REPLICAS_MAX], bad_rf[CLUSTER_REPLICAS_MAX];
        int nbad = 0;
        for (int32_t k = 0; k < nassign; k++) {
            const struct cluster_replicas *r = &assign[k];
            if (r->n == 0) {
                snprintf(msg, msglen, "Cannot have replication factor of 0 for partition id %d.",
                         old_n + k);
                return KERR_INVALID_REPLICA_ASSIGNMENT;
            }
            bool dup = false;
            for (int32_t i = 0; i < r->n && r->n <= CLUSTER_REPLICAS_MAX && !dup; i++)
                for (int32_t j = 0; j < i && !dup; j++)
                    dup = r->ids[i] == r->ids[j];
            if (dup) {
                snprintf(msg, msglen, "Duplicate brokers not allowed in replica assignment: ");
                append_ints(msg, msglen, r->ids, r->n);
                size_t len = strlen(msg);
                snprintf(msg + len, msglen - len, " for partition id %d.", old_n + k);
                return KERR_INVALID_REPLICA_ASSIGNMENT;
            }
            if (r->n != p0n && nbad < CLUSTER_REPLICAS_MAX) {
                bad_p[nbad] = old_n + k;
                bad_rf[nbad++] = r->n;
            }
        }
        if (nbad > 0) {
            snprintf(msg, msglen, "Inconsistent replication factor between partitions, partition "
                     "0 has %d while partitions [", p0n);
            append_ints(msg, msglen, bad_p, nbad);
            size_t len = strlen(msg);
            snprintf(msg + len, msglen - len, "] have replication factors [");
            append_ints(msg, msglen, bad_rf, nbad);
            len = strlen(msg);
            snprintf(msg + len, msglen - len, "], respectively.");
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        for (int32_t k = 0; out != NULL && k < nassign; k++)
            memcpy(out + (size_t)k * (size_t)p0n, assign[k].ids, sizeof(int32_t) * (size_t)p0n);
        return KERR_NONE;
    }
    if (p0n <= 0) {
        snprintf(msg, msglen, "Replication factor must be larger than 0.");
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (p0n > c->nlive) {
        snprintf(msg, msglen, "Replication factor: %d larger than available brokers: %d.", p0n,
                 c->nlive);
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (out != NULL) {
        /* Continuing the assignment: the start index is that of the first broker (by id) not
         * below partition 0's first replica, also used as the replica shift (Kafka's fixed
         * start index), from partition id old_n. */
        int32_t ids[CLUSTER_BROKERS_MAX];
        const char *racks[CLUSTER_BROKERS_MAX];
        int start = -1;
        for (int i = 0; i < c->nlive; i++) {
            ids[i] = c->live[i].id;
            racks[i] = c->live[i].rack;
            if (start < 0 && ids[i] >= p0[0])
                start = i;
        }
        start = start < 0 ? 0 : start;
        if (cluster_assign_replicas_racks(ids, racks, c->nlive, old_n, inc, (int16_t)p0n, start,
                                          start, out) != 0) {
            snprintf(msg, msglen, "%s", RACKS_PARTIAL); /* AdminOperationException: not logged */
            return KERR_UNKNOWN_SERVER_ERROR;
        }
    }
    return KERR_NONE;
}

/* The topic's znode as read for a rewrite: each partition's replicas, stride CLUSTER_REPLICAS_MAX. */
struct read_assignment {
    int32_t n;
    int32_t *counts;
    int32_t *ids;
};

static void collect_replicas(void *arg, int32_t p, const int32_t *replicas, int n)
{
    struct read_assignment *ra = arg;
    GREGOR_ASSERT(p >= 0 && p < ra->n && n >= 0 && n <= CLUSTER_REPLICAS_MAX);
    ra->counts[p] = n;
    memcpy(ra->ids + (size_t)p * CLUSTER_REPLICAS_MAX, replicas, sizeof(int32_t) * (size_t)n);
}

static void partitions_read(void *arg, const struct zk_result *res);

static void partitions_try(struct cluster *c, struct create_op *op)
{
    char path[CLUSTER_TOPIC_NAME_MAX + 32];
    snprintf(path, sizeof(path), "/brokers/topics/%s", op->name);
    op->attempts++;
    int rc = zk_get(c->zk, path, NULL, NULL, partitions_read, op);
    if (rc != ZK_OK) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Cannot read the topic's assignment from ZooKeeper (error %d)",
                 rc);
        op_finish(c, op, KERR_REQUEST_TIMED_OUT, msg);
    }
}

static void partitions_written(void *arg, const struct zk_result *res)
{
    struct create_op *op = arg;
    struct cluster *c = op->c;
    char msg[512];
    if (res->rc == ZK_OK) {
        LOG_INFO(c->who, "Topic %s: partitions increased to %d", op->name, op->count);
        op_finish(c, op, KERR_NONE, NULL);
    } else if (res->rc == ZK_BAD_VERSION && op->attempts < CLUSTER_WRITE_ATTEMPTS) {
        partitions_try(c, op); /* changed meanwhile: read it again and check against that */
    } else if (res->rc == ZK_NO_NODE) {
        snprintf(msg, sizeof(msg), "The topic '%s' does not exist.", op->name);
        op_finish(c, op, KERR_UNKNOWN_TOPIC_OR_PARTITION, msg);
    } else {
        snprintf(msg, sizeof(msg), "Writing the topic's assignment to ZooKeeper failed (error "
                 "%d, %d attempts)", res->rc, op->attempts);
        op_finish(c, op, KERR_REQUEST_TIMED_OUT, msg);
    }
}

/* The znode as it is now: checked again, the new partitions assigned, and the whole znode set
 * at the version read (existing partitions and the topic id unchanged). */
static void partitions_read(void *arg, const struct zk_result *res)
{
    struct create_op *op = arg;
    struct cluster *c = op->c;
    char msg[512];
    if (res->rc == ZK_NO_NODE) {
        snprintf(msg, sizeof(msg), "The topic '%s' does not exist.", op->name);
        op_finish(c, op, KERR_UNKNOWN_TOPIC_OR_PARTITION, msg);
        return;
    }
    uint8_t id[16];
    int32_t n = res->rc == ZK_OK && res->data != NULL && res->has_stat
                    ? znode_topic_parse(res->data, (size_t)res->len, CLUSTER_PARTITIONS_MAX, id,
                                        NULL, NULL)
                    : -1;
    if (n <= 0) {
        snprintf(msg, sizeof(msg), "Cannot read the topic's assignment from ZooKeeper (error "
                 "%d)", res->rc);
        op_finish(c, op, res->rc == ZK_OK ? KERR_UNKNOWN_SERVER_ERROR : KERR_REQUEST_TIMED_OUT,
                  msg);
        return;
    }
    if (znode_topic_reassign_parse(res->data, (size_t)res->len, "adding_replicas", n, NULL,
                                   NULL) != 0 ||
        znode_topic_reassign_parse(res->data, (size_t)res->len, "removing_replicas", n, NULL,
                                   NULL) != 0) {
        /* Started since the request was checked: the rewrite would drop it. */
        snprintf(msg, sizeof(msg), "A partition reassignment is in progress for the topic '%s'.",
                 op->name);
        op_finish(c, op, KERR_REASSIGNMENT_IN_PROGRESS, msg);
        return;
    }
    int32_t total = op->count > n ? op->count : n;
    struct read_assignment ra = {.n = total};
    ra.counts = calloc((size_t)total, sizeof(int32_t));
    ra.ids = calloc((size_t)total * CLUSTER_REPLICAS_MAX, sizeof(int32_t));
    GREGOR_ASSERT(ra.counts != NULL && ra.ids != NULL);
    ra.n = n;
    int32_t again = znode_topic_parse(res->data, (size_t)res->len, CLUSTER_PARTITIONS_MAX, id,
                                      collect_replicas, &ra);
    GREGOR_ASSERT(again == n);
    int p0n = ra.counts[0];
    struct cluster_replicas assign[1] = {{.n = 0, .ids = NULL}};
    struct cluster_replicas *as = op->nassign > 0 ? calloc((size_t)op->nassign, sizeof(*as))
                                                  : assign;
    GREGOR_ASSERT(as != NULL);
    for (int32_t k = 0; k < op->nassign; k++)
        as[k] = (struct cluster_replicas){.n = op->assign_n[k],
                                          .ids = op->assign_ids + (size_t)k * CLUSTER_REPLICAS_MAX};
    int32_t *rows = op->count > n ? malloc(sizeof(int32_t) * (size_t)(op->count - n) *
                                           (size_t)(p0n > 0 ? p0n : 1))
                                  : NULL;
    int e = partitions_plan(c, n, ra.ids, p0n, op->count, as, op->nassign,
                            rows, msg, sizeof(msg));
    if (as != assign)
        free(as);
    char *json = NULL;
    int len = 0;
    if (e == KERR_NONE) {
        GREGOR_ASSERT(rows != NULL && p0n > 0 && p0n <= CLUSTER_REPLICAS_MAX);
        for (int32_t k = 0; k < op->count - n; k++) {
            ra.counts[n + k] = p0n;
            memcpy(ra.ids + (size_t)(n + k) * CLUSTER_REPLICAS_MAX, rows + (size_t)k * p0n,
                   sizeof(int32_t) * (size_t)p0n);
        }
        size_t jlen = 256 + (size_t)op->count * (16 + 12 * (size_t)CLUSTER_REPLICAS_MAX);
        json = malloc(jlen);
        GREGOR_ASSERT(json != NULL);
        len = znode_topic_json(json, jlen, id, op->count, ra.counts, ra.ids,
                               CLUSTER_REPLICAS_MAX);
        GREGOR_ASSERT(len > 0);
        if (len >= ZK_DATA_MAX) {
            snprintf(msg, sizeof(msg), "The assignment of %d partitions (%d bytes) is larger "
                     "than a znode this broker writes (%d bytes).", op->count, len, ZK_DATA_MAX);
            e = KERR_INVALID_PARTITIONS;
        }
    }
    free(rows);
    free(ra.counts);
    free(ra.ids);
    if (e != KERR_NONE) {
        free(json);
        op_finish(c, op, e, msg);
        return;
    }
    LOG_INFO(c->who, "Creating %d partitions for '%s' (%d existing)", op->count - n, op->name, n);
    char path[CLUSTER_TOPIC_NAME_MAX + 32];
    snprintf(path, sizeof(path), "/brokers/topics/%s", op->name);
    int rc = zk_set(c->zk, path, json, len, res->stat.version, partitions_written, op);
    free(json);
    if (rc != ZK_OK) {
        snprintf(msg, sizeof(msg), "Cannot write the topic's assignment to ZooKeeper (error %d)",
                 rc);
        op_finish(c, op, KERR_REQUEST_TIMED_OUT, msg);
    }
}

int cluster_create_partitions(struct cluster *c, const char *name, int32_t count,
                              const struct cluster_replicas *assign, int32_t nassign,
                              bool validate_only, cluster_create_done_fn done, void *arg,
                              char *msg, size_t msglen)
{
    const struct cluster_topic *t = topic_slot(c, name);
    if (t == NULL || !t->read) {
        snprintf(msg, msglen, "The topic '%s' does not exist.", name);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (t->marked || delete_pending(c, name)) {
        snprintf(msg, msglen, "The topic is queued for deletion.");
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if (t->npartitions <= 0) {
        snprintf(msg, msglen, "Unexpected existing replica assignment for topic '%s', partition "
                 "id 0 is missing.", name);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    for (int32_t p = 0; p < t->npartitions; p++)
        if (cluster_reassigning(&t->parts[p]) || t->parts[p].target_pending ||
            t->parts[p].target_writing != 0 || t->data_writing) {
            /* Kafka's ZkAdminManager: the rewrite would race the controller's. */
            snprintf(msg, msglen, "A partition reassignment is in progress for the topic '%s'.",
                     name);
            return KERR_REASSIGNMENT_IN_PROGRESS;
        }
    int e = partitions_plan(c, t->npartitions, t->parts[0].replicas, t->parts[0].nreplicas,
                            count, assign, nassign, NULL, msg, msglen);
    if (e != KERR_NONE || validate_only)
        return e;
    struct create_op *op = calloc(1, sizeof(*op));
    GREGOR_ASSERT(op != NULL);
    op->kind = OP_PARTITIONS;
    op->done = done;
    op->arg = arg;
    snprintf(op->name, sizeof(op->name), "%s", name);
    op->count = count;
    op->nassign = nassign;
    if (nassign > 0) {
        /* checked: each list has partition 0's count of replicas, at most CLUSTER_REPLICAS_MAX */
        op->assign_n = calloc((size_t)nassign, sizeof(int32_t));
        op->assign_ids = calloc((size_t)nassign * CLUSTER_REPLICAS_MAX, sizeof(int32_t));
        GREGOR_ASSERT(op->assign_n != NULL && op->assign_ids != NULL);
        for (int32_t k = 0; k < nassign; k++) {
            GREGOR_ASSERT(assign[k].n > 0 && assign[k].n <= CLUSTER_REPLICAS_MAX);
            op->assign_n[k] = assign[k].n;
            memcpy(op->assign_ids + (size_t)k * CLUSTER_REPLICAS_MAX, assign[k].ids,
                   sizeof(int32_t) * (size_t)assign[k].n);
        }
    }
    op_link(c, op);
    partitions_try(c, op); /* on failure it answers through done: still KERR_NONE here */
    return KERR_NONE;
}

/* ---- DeleteTopics: /admin/delete_topics ---- */

static void deletes_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)type;
    (void)path;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk))
        return;
    c->deletes_watch = false;
    cluster_resume(c);
}

static void deletes_listed(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    c->deletes_inflight = false;
    if (res->rc != ZK_OK) {
        c->deletes_watch = false;
        retry_later(c, "listing /admin/delete_topics", res->rc);
        return;
    }
    for (int i = 0; i < c->ndeletes; i++)
        free(c->deletes[i]);
    free(c->deletes);
    c->deletes = NULL;
    c->ndeletes = 0;
    if (res->nchildren > 0) {
        c->deletes = calloc((size_t)res->nchildren, sizeof(*c->deletes));
        GREGOR_ASSERT(c->deletes != NULL);
        for (int i = 0; i < res->nchildren; i++) {
            c->deletes[i] = strdup(res->children[i]);
            GREGOR_ASSERT(c->deletes[i] != NULL);
        }
        c->ndeletes = res->nchildren;
    }
    /* Kafka's controller sends UpdateMetadata with LeaderDuringDelete as the deletion starts:
     * every broker drops the topic from its view and its replicas delete their logs (here each
     * broker deletes its own, also one that comes back: it lists this before registering). */
    for (int i = 0; i < c->ntopics; i++)
        c->topics[i]->marked = delete_pending(c, c->topics[i]->name);
    for (int i = 0; i < c->ndeletes && c->cfg.on_topic_gone != NULL; i++)
        c->cfg.on_topic_gone(c->cfg.change_arg, c->deletes[i]);
    c->deletes_seen = true;
    notify(c);
    controller_delete_topics(c);
    if (!c->registered)
        cluster_resume(c);
}

static void watch_deletes(struct cluster *c)
{
    bool set_watch = !c->deletes_watch;
    c->deletes_watch = true;
    c->deletes_inflight = true;
    int rc = zk_get_children(c->zk, "/admin/delete_topics", set_watch ? deletes_changed : NULL,
                             c, deletes_listed, c);
    if (rc != ZK_OK) {
        c->deletes_inflight = false;
        c->deletes_watch = false;
        retry_later(c, "listing /admin/delete_topics", rc);
    }
}

static void topic_deleted(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    /* /admin/delete_topics/<t>, the last delete: the children watches relist both lists. */
    if (res->rc != ZK_OK && res->rc != ZK_NO_NODE) {
        retry_later(c, "deleting a topic's znodes", res->rc);
        for (int i = 0; i < c->ntopics; i++)
            c->topics[i]->deleting = false;
    }
}

/* Kafka's TopicDeletionManager, without replicas to stop first (each broker deletes its logs
 * when the topic leaves /brokers/topics): the partitions' state and znodes, the topic's znode,
 * its config, then /admin/delete_topics/<t>, in rounds of a bounded number of operations
 * (one session's requests apply in order). */
/* Kafka's TopicDeletionManager marks a topic with a replica on an offline broker ineligible
 * for deletion until that broker is back (it must delete its replica too): the first such
 * broker, or -1. */
static int32_t replica_offline(const struct cluster *c, const struct cluster_topic *t)
{
    for (int32_t p = 0; p < t->npartitions; p++)
        for (int k = 0; k < t->parts[p].nreplicas; k++)
            if (!broker_registered(c, t->parts[p].replicas[k]))
                return t->parts[p].replicas[k];
    return -1;
}

static void controller_delete_topics(struct cluster *c)
{
    if (!c->is_controller || !zk_connected(c->zk) || !c->registered || !c->brokers_seen)
        return;
    int budget = ZK_INFLIGHT_MAX / 8;
    bool more = false;
    char path[CLUSTER_TOPIC_NAME_MAX + 64];
    for (int i = 0; i < c->ndeletes && !more; i++) {
        const char *name = c->deletes[i];
        struct cluster_topic *t = topic_slot(c, name);
        if (t != NULL && (t->deleting || !t->read))
            continue;
        int32_t offline = t != NULL && t->del_next == 0 ? replica_offline(c, t) : -1;
        if (offline >= 0) {
            if (!t->delete_waits)
                LOG_INFO(c->who, "Deletion of topic %s waits: its replica on broker %d is "
                         "offline (ineligible for deletion until it is back)", name, offline);
            t->delete_waits = true;
            continue;
        }
        int rc = ZK_OK;
        if (t != NULL) {
            while (t->del_next < t->npartitions && budget > 0) {
                snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", name,
                         t->del_next);
                rc = zk_delete(c->zk, path, -1, ignore_done, c);
                snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d", name,
                         t->del_next);
                if (rc == ZK_OK)
                    rc = zk_delete(c->zk, path, -1, ignore_done, c);
                if (rc != ZK_OK)
                    break;
                t->del_next++;
                budget -= 2;
            }
            if (rc == ZK_OK && t->del_next < t->npartitions) {
                more = true;
                break;
            }
            snprintf(path, sizeof(path), "/brokers/topics/%s/partitions", name);
            if (rc == ZK_OK)
                rc = zk_delete(c->zk, path, -1, ignore_done, c);
            snprintf(path, sizeof(path), "/brokers/topics/%s", name);
            if (rc == ZK_OK)
                rc = zk_delete(c->zk, path, -1, ignore_done, c);
            snprintf(path, sizeof(path), "/config/topics/%s", name);
            if (rc == ZK_OK)
                rc = zk_delete(c->zk, path, -1, ignore_done, c);
            if (rc == ZK_OK)
                t->deleting = true;
            LOG_INFO(c->who, "Deleting topic %s (%d partitions)", name, t->npartitions);
        }
        snprintf(path, sizeof(path), "/admin/delete_topics/%s", name);
        if (rc == ZK_OK)
            rc = zk_delete(c->zk, path, -1, topic_deleted, c);
        budget -= 4;
        if (rc != ZK_OK) {
            retry_later(c, "deleting a topic's znodes", rc);
            return;
        }
        if (budget <= 0)
            more = i + 1 < c->ndeletes;
    }
    if (more)
        retry_later(c, "deleting topics (next round)", ZK_CONNECTION_LOSS);
}

int cluster_delete_topic(struct cluster *c, const char *name, cluster_create_done_fn done,
                         void *arg, char *msg, size_t msglen)
{
    if (cluster_topic_find(c, name) == NULL) {
        snprintf(msg, msglen, "This server does not host this topic-partition.");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    char path[CLUSTER_TOPIC_NAME_MAX + 32];
    snprintf(path, sizeof(path), "/admin/delete_topics/%s", name);
    struct create_op *op = calloc(1, sizeof(*op));
    GREGOR_ASSERT(op != NULL);
    op->done = done;
    op->arg = arg;
    op->c = c;
    op->kind = OP_DELETE;
    op->is_delete = true;
    int rc = zk_create_node(c->zk, path, NULL, 0, false, topic_created, op);
    if (rc != ZK_OK) {
        free(op);
        snprintf(msg, msglen, "Cannot write /admin/delete_topics/%s (ZooKeeper error %d)", name,
                 rc);
        return KERR_REQUEST_TIMED_OUT;
    }
    op_link(c, op);
    return KERR_NONE;
}

/* ---- driving ---- */

static void cluster_resume(struct cluster *c)
{
    if (!zk_connected(c->zk) || c->fatal)
        return;
    if (!c->paths_done) {
        if (!c->paths_inflight)
            ensure_paths(c);
        return;
    }
    if (c->cluster_id[0] == '\0') {
        if (!c->id_inflight)
            id_get(c);
        return;
    }
    if (!c->want_register)
        return;
    if (!c->deletes_seen) {
        /* Listed before registering: one session's requests apply in order, so the controller
         * (which completes a deletion only once every replica's broker is registered) cannot
         * delete a topic's znodes before this broker read that it is to delete its logs. */
        if (!c->deletes_watch && !c->deletes_inflight)
            watch_deletes(c);
        return;
    }
    if (!c->registered) {
        if (!c->register_inflight)
            register_broker(c);
        return;
    }
    if (!c->brokers_watch && !c->brokers_inflight)
        watch_brokers(c);
    if (!c->controller_watch && !c->controller_inflight && !c->elect_inflight)
        controller_check(c);
    if (!c->topics_watch && !c->topics_inflight)
        watch_topics(c);
    if (!c->deletes_watch && !c->deletes_inflight)
        watch_deletes(c);
    if (c->is_controller && !c->legacy_watch && !c->legacy_inflight)
        watch_legacy(c);
    topics_step(c);
}

static void on_session(void *arg, enum zk_session_state state, uint64_t gen)
{
    struct cluster *c = arg;
    if (gen != c->gen) { /* a new session: its ephemerals and watches are to be made again */
        c->gen = gen;
        c->paths_inflight = c->id_inflight = c->register_inflight = false;
        c->brokers_inflight = c->controller_inflight = c->elect_inflight = false;
        c->registered = c->brokers_watch = c->controller_watch = false;
        c->topics_watch = c->topics_inflight = c->states_inflight = false;
        c->brokers_seen = false;
        c->deletes_watch = c->deletes_inflight = c->deletes_seen = false;
        c->legacy_watch = c->legacy_inflight = false;
        for (int i = 0; i < c->ntopics; i++) {
            struct cluster_topic *t = c->topics[i];
            t->data_watch = t->data_inflight = t->deleting = false;
            t->data_writing = t->data_stale = false;
            for (int32_t p = 0; p < t->npartitions; p++) {
                struct cluster_partition *cp = &t->parts[p];
                cp->state_watch = cp->state_inflight = cp->writing = false;
                cp->target_pending |= cp->target_writing == 1; /* its answer is dropped */
                cp->target_writing = 0;
            }
        }
    }
    if (state == ZK_SESSION_EXPIRED) {
        LOG_WARN(c->who, "The ZooKeeper session expired: broker %d re-registers",
                 c->cfg.broker_id);
        c->registered = c->brokers_watch = c->controller_watch = false;
        c->is_controller = false;
        c->controller_id = -1;
        live_rebuild(c);
        return;
    }
    if (state == ZK_SESSION_CONNECTED)
        cluster_resume(c);
}

/* Kafka's ZkNodeChangeNotificationListener changeExpirationMs (15 minutes) for the config and
 * the ACL change notifications. Tests only: GREGOR_TEST_CHANGE_EXPIRY_MS (1..15 minutes) makes
 * it shorter, so a test sees the purge. */
#define CHANGE_EXPIRY_MS (15 * 60 * 1000)

static int64_t change_expiry_from_env(void)
{
    const char *e = getenv("GREGOR_TEST_CHANGE_EXPIRY_MS");
    if (e == NULL || *e == '\0')
        return CHANGE_EXPIRY_MS;
    char *end;
    long long v = strtoll(e, &end, 10);
    if (*end != '\0' || v < 1 || v > CHANGE_EXPIRY_MS)
        return CHANGE_EXPIRY_MS;
    return v;
}

struct cluster *cluster_create(struct loop *loop, const struct cluster_config *cfg)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->cfg = *cfg;
    c->change_expiry_ms = change_expiry_from_env();
    snprintf(c->connect, sizeof(c->connect), "%s", cfg->zookeeper_connect);
    snprintf(c->listener_name, sizeof(c->listener_name), "%s",
             cfg->listener_name ? cfg->listener_name : "PLAINTEXT");
    snprintf(c->host, sizeof(c->host), "%s", cfg->host ? cfg->host : "");
    snprintf(c->rack, sizeof(c->rack), "%s", cfg->rack ? cfg->rack : "");
    c->cfg.rack = c->rack;
    c->cfg.zookeeper_connect = c->connect;
    c->cfg.listener_name = c->listener_name;
    c->cfg.host = c->host;
    snprintf(c->who, sizeof(c->who), "KafkaZkClient broker=%d", cfg->broker_id);
    c->controller_id = -1;
    c->zk = zk_create(loop, c->connect, cfg->session_timeout_ms, on_session, c);
    if (c->zk == NULL) {
        free(c);
        return NULL;
    }
    c->gen = zk_session_gen(c->zk);
    if (c->cfg.auto_leader_rebalance_enable && c->cfg.leader_imbalance_check_interval_s > 0)
        c->rebalance_timer = loop_timer_add(
            loop, mono_ms() + (int64_t)c->cfg.leader_imbalance_check_interval_s * 1000,
            rebalance_fire, c);
    return c;
}

void cluster_destroy(struct cluster *c)
{
    if (c == NULL)
        return;
    if (c->retry_timer)
        loop_timer_cancel(c->loop, c->retry_timer);
    if (c->rebalance_timer)
        loop_timer_cancel(c->loop, c->rebalance_timer);
    if (c->settle_timer)
        loop_timer_cancel(c->loop, c->settle_timer);
    zk_destroy(c->zk); /* no completion comes after this */
    configs_destroy(c);
    security_destroy(c);
    while (c->creates != NULL) {
        struct create_op *op = c->creates;
        op_finish(c, op, KERR_REQUEST_TIMED_OUT,
                  op->kind == OP_AWAIT || op->kind == OP_SETTLE ? "The broker shut down before the change reached it."
                                       : "The broker shut down before the change was written "
                                         "to ZooKeeper.");
    }
    for (int i = 0; i < c->ntopics; i++)
        topic_free(c->topics[i]);
    free(c->topics);
    for (int i = 0; i < c->ndeletes; i++)
        free(c->deletes[i]);
    free(c->deletes);
    free(c->legacy);
    free(c);
}

/* ---- startup waits ----
 * A startup step (connect, /cluster/id, /config/brokers, the registration) turns the loop until
 * it is done, bounded as Kafka's ZooKeeperClient bounds a request: while ZooKeeper is away the
 * client reconnects for zookeeper.connection.timeout.ms counted from the disconnection (then
 * ZooKeeperClientTimeoutException), a new session replacing an expired one; while connected the
 * step gets zookeeper.session.timeout.ms from the (re)connection (a ZooKeeper that answers
 * nothing is dropped by the client at 2/3 of it). A connection that comes and goes keeps a step
 * at most the connection timeout plus two session timeouts in all. Every CLUSTER_AWAIT_LOG_MS
 * it says what it still waits for, so a slow start is never silent. */

struct startup_wait {
    const char *what;                           /* "register broker 0", for the log */
    bool (*done)(const struct cluster *);
    void (*step)(struct cluster *);             /* each turn (a retry that needs one), or NULL */
};

/* A turn that does not come back (a callback or a library call blocked on the loop thread)
 * would hold a startup wait past every bound above without a word. A watchdog thread, alive
 * for the wait, says so once a turn has taken CLUSTER_AWAIT_LOG_MS, with the loop thread's
 * stack, and ends the process (exit 1) once a turn has taken the wait's whole cap. */
struct startup_watchdog {
    pthread_t thread;
    pthread_t loop_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* monotonic clock */
    bool done;                      /* under mu */
    atomic_llong turn_start_ms;     /* mono ms the loop thread's turn began; 0: not turning */
    const char *who, *what;         /* borrowed from the wait */
    int64_t cap_ms;
    struct sigaction old_action;
};

static bool startup_wait_turn(struct cluster *c, const struct startup_wait *s, int64_t cap_ms,
                              struct startup_watchdog *w);

/* SIGUSR2, sent by the watchdog to the loop thread: its stack, to stderr. */
static void loop_stack_dump(int sig)
{
    (void)sig;
    static const char head[] = "the event loop thread's stack (addr2line -e <binary>):\n";
    void *frames[64];
    int n = backtrace(frames, 64);
    if (write(STDERR_FILENO, head, sizeof(head) - 1) > 0)
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
}

static void *watchdog_main(void *arg)
{
    struct startup_watchdog *w = arg;
    bool told = false;
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        int64_t start = atomic_load(&w->turn_start_ms);
        int64_t stuck = start != 0 && !w->done ? mono_ms() - start : 0;
        if (stuck >= CLUSTER_AWAIT_LOG_MS && !told) {
            told = true;
            LOG_WARN(w->who, "The event loop has not come back for %lld ms while waiting to %s: "
                      "a callback or a library call blocks it", (long long)stuck, w->what);
            pthread_kill(w->loop_thread, SIGUSR2);
        }
        if (stuck >= w->cap_ms) {
            LOG_ERROR(w->who, "Fatal error during KafkaServer startup: the event loop has been "
                      "blocked for %lld ms while waiting to %s; exiting", (long long)stuck,
                      w->what);
            if (!told)
                pthread_kill(w->loop_thread, SIGUSR2);
            struct timespec settle = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
            nanosleep(&settle, NULL); /* the stack's lines */
            _exit(1);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* false: no watchdog (logged); the wait runs without one. */
static bool watchdog_start(struct startup_watchdog *w, const char *who, const char *what,
                           int64_t cap_ms)
{
    memset(w, 0, sizeof(*w));
    w->loop_thread = pthread_self();
    w->who = who;
    w->what = what;
    w->cap_ms = cap_ms;
    atomic_init(&w->turn_start_ms, 0);
    void *warm[1];
    backtrace(warm, 1); /* loads what backtrace needs now, not in the signal handler */
    /* SA_RESTART: the blocked call, if it is a system call, goes on as it was. */
    struct sigaction sa = {.sa_handler = loop_stack_dump, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, &w->old_action);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->mu, NULL);
    int e = pthread_create(&w->thread, NULL, watchdog_main, w);
    if (e != 0) {
        LOG_WARN(who, "no watchdog for the wait to %s: %s", what, strerror(e));
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        sigaction(SIGUSR2, &w->old_action, NULL);
        return false;
    }
    return true;
}

static void watchdog_stop(struct startup_watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    sigaction(SIGUSR2, &w->old_action, NULL);
}

/* true once done; false (logged) at a bound or when c->fatal (logged where it was set). */
static bool startup_wait_run(struct cluster *c, const struct startup_wait *s)
{
    const int64_t cap_ms = (int64_t)c->cfg.connection_timeout_ms +
                           2 * (int64_t)c->cfg.session_timeout_ms;
    GREGOR_ASSERT(cap_ms > 0);
    struct startup_watchdog w;
    bool watched = watchdog_start(&w, c->who, s->what, cap_ms);
    bool ok = startup_wait_turn(c, s, cap_ms, watched ? &w : NULL);
    if (watched)
        watchdog_stop(&w);
    return ok;
}

/* A cluster_await_* answer: 0 once done, -1 (logged) as startup_wait_run fails. */
static int startup_wait_answer(struct cluster *c, const char *what,
                               bool (*done)(const struct cluster *), void (*step)(struct cluster *))
{
    return startup_wait_run(c, &(struct startup_wait){.what = what, .done = done, .step = step})
               ? 0
               : -1;
}

static bool startup_wait_turn(struct cluster *c, const struct startup_wait *s, int64_t cap_ms,
                              struct startup_watchdog *w)
{
    const int64_t start = mono_ms();
    const int64_t cap = start + cap_ms;
    bool connected = zk_connected(c->zk);
    int64_t since = start; /* when the connection last came or went */
    int64_t next_log = start + CLUSTER_AWAIT_LOG_MS;
    while (!s->done(c) && !c->fatal) {
        int64_t now = mono_ms();
        if (zk_connected(c->zk) != connected) {
            connected = !connected;
            since = now;
        }
        int64_t bound = since + (connected ? c->cfg.session_timeout_ms
                                           : c->cfg.connection_timeout_ms);
        if (bound > cap)
            bound = cap;
        GREGOR_ASSERT(bound <= cap && since >= start);
        if (now >= bound) {
            if (!connected)
                /* Kafka's ZooKeeperClientTimeoutException: the broker does not start. */
                LOG_ERROR(c->who, "Fatal error during KafkaServer startup: kafka.zookeeper."
                          "ZooKeeperClientTimeoutException: Timed out waiting for connection "
                          "while in state: CONNECTING (zookeeper.connect=%s, "
                          "zookeeper.connection.timeout.ms=%d; waiting to %s, %lld ms in all)",
                          c->connect, c->cfg.connection_timeout_ms, s->what,
                          (long long)(now - start));
            else
                LOG_ERROR(c->who, "Timed out waiting to %s in ZooKeeper: %lld ms, connected "
                          "for the last %lld ms (zookeeper.session.timeout.ms=%d)", s->what,
                          (long long)(now - start), (long long)(now - since),
                          c->cfg.session_timeout_ms);
            return false;
        }
        if (now >= next_log) {
            LOG_INFO(c->who, "Waiting to %s: %lld ms so far, ZooKeeper %s for %lld ms (gives "
                     "up in %lld ms)", s->what, (long long)(now - start),
                     connected ? "connected" : "disconnected", (long long)(now - since),
                     (long long)(bound - now));
            next_log = now + CLUSTER_AWAIT_LOG_MS;
        }
        if (w != NULL)
            atomic_store(&w->turn_start_ms, now > 0 ? now : 1);
        if (s->step != NULL)
            s->step(c);
        int64_t left = bound - now;
        loop_run_once(c->loop, left > 100 ? 100 : (int)left);
        if (w != NULL)
            atomic_store(&w->turn_start_ms, 0);
    }
    return !c->fatal;
}

static bool is_connected(const struct cluster *c) { return zk_connected(c->zk); }
static bool has_id(const struct cluster *c) { return c->cluster_id[0] != '\0'; }
static bool is_registered(const struct cluster *c) { return c->registered; }

int cluster_await_id(struct cluster *c, char *out, size_t outlen)
{
    LOG_INFO(c->who, "Waiting until connected.");
    if (!startup_wait_run(c, &(struct startup_wait){.what = "connect", .done = is_connected}))
        return -1;
    LOG_INFO(c->who, "Connected.");
    if (!startup_wait_run(c, &(struct startup_wait){.what = "read /cluster/id", .done = has_id}))
        return -1;
    snprintf(out, outlen, "%s", c->cluster_id);
    return 0;
}

int cluster_await_registration(struct cluster *c)
{
    c->want_register = true;
    live_rebuild(c);
    cluster_resume(c);
    char what[64];
    snprintf(what, sizeof(what), "register broker %d", c->cfg.broker_id);
    if (!startup_wait_run(c, &(struct startup_wait){.what = what, .done = is_registered}))
        return -1;
    c->started = true;
    return 0;
}

int32_t cluster_controller_id(const struct cluster *c) { return c->controller_id; }
bool cluster_is_controller(const struct cluster *c) { return c->is_controller; }
bool cluster_is_registered(const struct cluster *c) { return c->registered; }
int32_t cluster_controller_epoch(const struct cluster *c) { return c->controller_epoch; }

/* The brokers Metadata lists: those whose endpoints were read, by id, and this broker once it
 * serves (listening), even before a listing shows it or while it registers again. */
static void live_rebuild(struct cluster *c)
{
    int n = 0;
    bool self = false;
    for (int i = 0; i < c->nbrokers; i++)
        if (c->known[i]) {
            GREGOR_ASSERT(n == 0 || c->live[n - 1].id < c->brokers[i].id);
            c->live[n++] = c->brokers[i];
            self |= c->brokers[i].id == c->cfg.broker_id;
        }
    if (!self && c->want_register && n < CLUSTER_BROKERS_MAX) {
        struct cluster_broker me = {.id = c->cfg.broker_id, .port = c->cfg.port};
        snprintf(me.host, sizeof(me.host), "%s", c->host);
        snprintf(me.rack, sizeof(me.rack), "%s", c->rack);
        int at = n;
        while (at > 0 && c->live[at - 1].id > me.id) {
            c->live[at] = c->live[at - 1];
            at--;
        }
        c->live[at] = me;
        n++;
    }
    c->nlive = n;
}

int cluster_brokers(const struct cluster *c, const struct cluster_broker **out)
{
    *out = c->live;
    return c->nlive;
}

/* ---- Configs: /config/topics/<t>, /config/brokers/<id|<default>>, /config/changes ----
 * Kafka's ZooKeeper mode: AdminZkClient writes the entity's ConfigEntityZNode, then a
 * sequential /config/changes/config_change_<10 digits> naming it; every broker's
 * ZkNodeChangeNotificationListener lists /config/changes (a child watch), reads each
 * notification newer than the last it applied, reads the entity again and applies it, and
 * deletes notifications older than 15 minutes. Here the broker's view (each topic's config,
 * this broker's and the default broker config) lives in the cluster; the broker applies
 * what changed when told (on_change), comparing cluster_config_gen. */

#define CONFIG_CHANGES_PATH "/config/changes"
#define CONFIG_CHANGE_PREFIX "config_change_"
/* Notifications read at once (the rest on the next listing), and the applied ones whose
 * creation time is remembered for the purge (older ones are purged by another broker or at
 * the next start, when all are read again). */
#define CONFIG_CHANGES_BATCH 256
#define CONFIG_CHANGES_REMEMBERED 4096
#define CONFIG_DEFAULT_ENTITY "<default>"

/* The first member of a write in flight (config_write, sec_op): its place on its kind's list,
 * which closing the cluster walks. */
struct write_link {
    struct write_link *next, *prev;
};

static void write_link_push(struct write_link **head, struct write_link *l)
{
    GREGOR_ASSERT(l->next == NULL && l->prev == NULL && l != *head);
    l->next = *head;
    if (*head)
        (*head)->prev = l;
    *head = l;
}

static void write_link_remove(struct write_link **head, struct write_link *l)
{
    GREGOR_ASSERT(l->prev != NULL || *head == l);
    if (l->prev)
        l->prev->next = l->next;
    else
        *head = l->next;
    if (l->next)
        l->next->prev = l->prev;
}

struct config_write {
    struct write_link link;             /* first: on cluster_configs.writes */
    struct cluster *c;
    char type[16];                      /* "topics" / "brokers" */
    char name[CLUSTER_TOPIC_NAME_MAX];
    char path[CLUSTER_TOPIC_NAME_MAX + 32];
    char *json;
    int len;
    bool created;                       /* the node was missing and create met NodeExists */
    struct create_op *topic;            /* CreateTopics: create its znode next (then free) */
    char *topic_json;
    int topic_len;
    cluster_create_done_fn done;        /* AlterConfigs: answered after the notification */
    void *arg;
};
_Static_assert(offsetof(struct config_write, link) == 0, "the list holds config_writes");

struct remembered_change {
    int64_t seq;
    int64_t ctime_ms;
};

struct cluster_configs {
    uint64_t session_gen;               /* the flags below belong to it */
    uint64_t gen;                       /* cluster_config_gen */
    bool changes_watch, changes_inflight;
    int64_t changes_last;               /* the highest notification read (-1: none yet) */
    int changes_reading;
    /* [0] /config/brokers/<default>, [1] /config/brokers/<this id> */
    char *broker[2];
    int32_t broker_len[2];
    bool broker_known[2], broker_stale[2], broker_inflight[2];
    uint64_t broker_gen[2];
    struct write_link *writes;          /* config_writes in flight */
    int nremembered;
    struct remembered_change remembered[CONFIG_CHANGES_REMEMBERED];
};

static struct cluster_configs *configs_of(struct cluster *c)
{
    if (c->configs == NULL) {
        c->configs = calloc(1, sizeof(*c->configs));
        GREGOR_ASSERT(c->configs != NULL);
        c->configs->changes_last = -1;
        c->configs->gen = 1;
    }
    return c->configs;
}

uint64_t cluster_config_gen(const struct cluster *c)
{
    return c->configs != NULL ? c->configs->gen : 0;
}

const char *cluster_broker_config(const struct cluster *c, bool is_default, size_t *len,
                                  uint64_t *gen)
{
    const struct cluster_configs *cc = c->configs;
    int k = is_default ? 0 : 1;
    *len = cc != NULL && cc->broker[k] != NULL ? (size_t)cc->broker_len[k] : 0;
    *gen = cc != NULL ? cc->broker_gen[k] : 0;
    return cc != NULL ? cc->broker[k] : NULL;
}

/* A config value as read (NULL: missing), kept when it reads as a ConfigEntityZNode; another
 * writer's malformed value is logged and the previous one kept. True when kept. */
static bool config_accept(struct cluster *c, const char *path, const char *data, int len,
                          char **slot, int32_t *slot_len)
{
    if (data != NULL && znode_config_parse(data, (size_t)len, NULL, NULL) < 0) {
        LOG_WARN(c->who, "Ignoring the malformed config znode %s (not {\"version\":1,"
                 "\"config\":{\"key\":\"value\",...}}): %.*s", path, len > 512 ? 512 : len, data);
        return false;
    }
    char *copy = NULL;
    if (data != NULL) {
        copy = malloc((size_t)len + 1);
        GREGOR_ASSERT(copy != NULL);
        memcpy(copy, data, (size_t)len);
        copy[len] = '\0';
    }
    free(*slot);
    *slot = copy;
    *slot_len = data != NULL ? len : 0;
    return true;
}

static void topic_config_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    const char *name = res->path + strlen("/config/topics/");
    struct cluster_topic *t = topic_slot(c, name);
    if (t == NULL)
        return; /* deleted meanwhile */
    t->config_inflight = false;
    if (res->rc != ZK_OK && res->rc != ZK_NO_NODE) {
        t->config_stale = true;
        retry_later(c, "reading a topic's config", res->rc);
        return;
    }
    const char *data = res->rc == ZK_OK ? (res->data != NULL ? res->data : "") : NULL;
    int len = res->rc == ZK_OK ? res->len : 0;
    if (config_accept(c, res->path, data, len, &t->config, &t->config_len) || !t->config_known) {
        t->config_known = true;
        t->config_gen = ++configs_of(c)->gen;
        notify(c);
        controller_write_states(c); /* unclean.leader.election.enable may allow an election */
    }
    if (t->config_stale) /* named by a notification while being read: read again */
        configs_step(c);
}

static void broker_configs_step(struct cluster *c);

static void broker_config_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    struct cluster_configs *cc = configs_of(c);
    int k = strcmp(res->path, "/config/brokers/" CONFIG_DEFAULT_ENTITY) == 0 ? 0 : 1;
    cc->broker_inflight[k] = false;
    if (res->rc != ZK_OK && res->rc != ZK_NO_NODE) {
        cc->broker_stale[k] = true;
        retry_later(c, "reading a broker config", res->rc);
        return;
    }
    const char *data = res->rc == ZK_OK ? (res->data != NULL ? res->data : "") : NULL;
    if (config_accept(c, res->path, data, res->rc == ZK_OK ? res->len : 0, &cc->broker[k],
                      &cc->broker_len[k]) || !cc->broker_known[k]) {
        cc->broker_known[k] = true;
        cc->broker_gen[k] = ++cc->gen;
        notify(c);
        controller_write_states(c); /* unclean.leader.election.enable may allow an election */
    }
    if (cc->broker_stale[k])
        broker_configs_step(c);
}

/* An entity named by a notification (or all, after a read failed): read again. */
static void entity_stale(struct cluster *c, const char *type, const char *name)
{
    struct cluster_configs *cc = configs_of(c);
    if (strcmp(type, "topics") == 0) {
        struct cluster_topic *t = name != NULL ? topic_slot(c, name) : NULL;
        for (int i = 0; i < c->ntopics; i++)
            if (t == NULL ? name == NULL : c->topics[i] == t)
                c->topics[i]->config_stale = true;
        return;
    }
    if (strcmp(type, "users") == 0 || strcmp(type, "clients") == 0 ||
        strcmp(type, "ips") == 0) {
        cluster_security_entity_stale(c, type, name);
        return;
    }
    if (strcmp(type, "brokers") != 0)
        return;
    char id[16];
    snprintf(id, sizeof(id), "%d", c->cfg.broker_id);
    if (name == NULL || strcmp(name, CONFIG_DEFAULT_ENTITY) == 0)
        cc->broker_stale[0] = true;
    if (name == NULL || strcmp(name, id) == 0)
        cc->broker_stale[1] = true;
}

static void change_purged(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (res->rc != ZK_OK && res->rc != ZK_NO_NODE && !stale(c, res))
        LOG_DEBUG(c->who, "Purging %s failed (ZooKeeper error %d)", res->path, res->rc);
}

static void change_purge(struct cluster *c, int64_t seq)
{
    char path[96];
    snprintf(path, sizeof(path), CONFIG_CHANGES_PATH "/" CONFIG_CHANGE_PREFIX "%010" PRId64, seq);
    LOG_INFO(c->who, "Purging the config change notification %s (older than %" PRId64 " ms)",
             path, c->change_expiry_ms);
    (void)zk_delete(c->zk, path, -1, change_purged, c);
}

static void change_read(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    struct cluster_configs *cc = configs_of(c);
    GREGOR_ASSERT(cc->changes_reading > 0);
    cc->changes_reading--;
    char type[32], name[CLUSTER_TOPIC_NAME_MAX];
    if (res->rc == ZK_NO_NODE) {
        /* purged by another broker: nothing to apply */
    } else if (res->rc != ZK_OK) {
        entity_stale(c, "topics", NULL); /* it may have named anything: read all again */
        entity_stale(c, "brokers", NULL);
        retry_later(c, "reading a config change notification", res->rc);
    } else if (res->data == NULL ||
               znode_config_change_parse(res->data, (size_t)res->len, type, sizeof(type), name,
                                         sizeof(name)) != 0) {
        LOG_WARN(c->who, "Ignoring the malformed config change notification %s: %.*s",
                 res->path, res->len > 512 ? 512 : res->len, res->data ? res->data : "");
    } else {
        LOG_INFO(c->who, "Processing config change notification %s: %s/%s", res->path, type,
                 name);
        entity_stale(c, type, name);
    }
    if (res->rc == ZK_OK && res->has_stat) {
        const char *num = strrchr(res->path, '_');
        int64_t seq = num ? strtoll(num + 1, NULL, 10) : -1;
        if (now_ms() - res->stat.ctime_ms > c->change_expiry_ms)
            change_purge(c, seq);
        else if (cc->nremembered < CONFIG_CHANGES_REMEMBERED)
            cc->remembered[cc->nremembered++] = (struct remembered_change){seq, res->stat.ctime_ms};
    }
    configs_step(c);
}

static void changes_changed(void *arg, enum zk_watch_type type, const char *path, uint64_t gen)
{
    (void)type;
    (void)path;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk) || c->configs == NULL)
        return;
    c->configs->changes_watch = false;
    configs_step(c);
}

static int seq_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void changes_listed(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    struct cluster_configs *cc = configs_of(c);
    cc->changes_inflight = false;
    if (res->rc != ZK_OK) {
        cc->changes_watch = false;
        retry_later(c, "listing " CONFIG_CHANGES_PATH, res->rc);
        return;
    }
    /* The remembered ones past the expiry go (Kafka's purgeObsoleteNotifications). */
    int64_t now = now_ms();
    int keep = 0;
    for (int i = 0; i < cc->nremembered; i++) {
        if (now - cc->remembered[i].ctime_ms > c->change_expiry_ms)
            change_purge(c, cc->remembered[i].seq);
        else
            cc->remembered[keep++] = cc->remembered[i];
    }
    cc->nremembered = keep;
    int64_t *seqs = malloc(sizeof(*seqs) * (size_t)(res->nchildren > 0 ? res->nchildren : 1));
    GREGOR_ASSERT(seqs != NULL);
    int n = 0;
    size_t plen = strlen(CONFIG_CHANGE_PREFIX);
    for (int i = 0; i < res->nchildren; i++) {
        const char *ch = res->children[i];
        char *end;
        if (strncmp(ch, CONFIG_CHANGE_PREFIX, plen) != 0)
            continue;
        long long v = strtoll(ch + plen, &end, 10);
        if (*end == '\0' && end != ch + plen && v > cc->changes_last)
            seqs[n++] = v;
    }
    qsort(seqs, (size_t)n, sizeof(*seqs), seq_cmp);
    bool more = n > CONFIG_CHANGES_BATCH;
    for (int i = 0; i < n && i < CONFIG_CHANGES_BATCH; i++) {
        char path[96];
        snprintf(path, sizeof(path), CONFIG_CHANGES_PATH "/" CONFIG_CHANGE_PREFIX "%010" PRId64,
                 seqs[i]);
        int rc = zk_get(c->zk, path, NULL, NULL, change_read, c);
        if (rc != ZK_OK) {
            more = true;
            retry_later(c, "reading a config change notification", rc);
            break;
        }
        cc->changes_reading++;
        cc->changes_last = seqs[i];
    }
    free(seqs);
    if (more)
        cc->changes_watch = false; /* list again once this batch is read */
    configs_step(c);
}

/* A new session: the watch and the reads in flight are to be made again. */
static void configs_session(struct cluster *c)
{
    struct cluster_configs *cc = configs_of(c);
    uint64_t gen = zk_session_gen(c->zk);
    if (cc->session_gen == gen)
        return;
    bool again = cc->session_gen != 0;
    cc->session_gen = gen;
    cc->changes_watch = cc->changes_inflight = false;
    cc->changes_reading = 0;
    for (int k = 0; k < 2; k++)
        cc->broker_inflight[k] = false;
    for (int i = 0; i < c->ntopics; i++)
        c->topics[i]->config_inflight = false;
    if (again) { /* notifications being read were lost with the old session: read all again */
        entity_stale(c, "topics", NULL);
        entity_stale(c, "brokers", NULL);
    }
}

/* This broker's config and the default, when not read (or named by a notification since).
 * Needs only a connection: startup reads them before the broker registers. */
static void broker_configs_step(struct cluster *c)
{
    if (!zk_connected(c->zk) || c->cluster_id[0] == '\0')
        return;
    configs_session(c);
    struct cluster_configs *cc = configs_of(c);
    char path[64];
    for (int k = 0; k < 2; k++) {
        if ((cc->broker_known[k] && !cc->broker_stale[k]) || cc->broker_inflight[k])
            continue;
        if (k == 0)
            snprintf(path, sizeof(path), "/config/brokers/" CONFIG_DEFAULT_ENTITY);
        else
            snprintf(path, sizeof(path), "/config/brokers/%d", c->cfg.broker_id);
        cc->broker_inflight[k] = true;
        cc->broker_stale[k] = false;
        int rc = zk_get(c->zk, path, NULL, NULL, broker_config_read, c);
        if (rc != ZK_OK) {
            cc->broker_inflight[k] = false;
            cc->broker_stale[k] = true;
            retry_later(c, "reading a broker config", rc);
            return;
        }
    }
}

/* Issues what is missing: the watch on /config/changes, the broker configs and every topic's
 * config not read (or named by a notification since). */
static void configs_step(struct cluster *c)
{
    if (!zk_connected(c->zk) || !c->registered)
        return;
    configs_session(c);
    struct cluster_configs *cc = configs_of(c);
    if (!cc->changes_watch && !cc->changes_inflight && cc->changes_reading == 0) {
        cc->changes_watch = cc->changes_inflight = true;
        int rc = zk_get_children(c->zk, CONFIG_CHANGES_PATH, changes_changed, c, changes_listed, c);
        if (rc != ZK_OK) {
            cc->changes_watch = cc->changes_inflight = false;
            retry_later(c, "listing " CONFIG_CHANGES_PATH, rc);
        }
    }
    broker_configs_step(c);
    char path[CLUSTER_TOPIC_NAME_MAX + 32];
    for (int i = 0; i < c->ntopics; i++) {
        struct cluster_topic *t = c->topics[i];
        if (!t->read || t->config_inflight || (t->config_known && !t->config_stale))
            continue;
        snprintf(path, sizeof(path), "/config/topics/%s", t->name);
        t->config_inflight = true;
        t->config_stale = false;
        int rc = zk_get(c->zk, path, NULL, NULL, topic_config_read, c);
        if (rc != ZK_OK) {
            t->config_inflight = false;
            t->config_stale = true;
            retry_later(c, "reading a topic's config", rc);
            return;
        }
    }
    security_step(c);
}

static bool broker_configs_known(const struct cluster *c)
{
    return c->configs != NULL && c->configs->broker_known[0] && c->configs->broker_known[1];
}

int cluster_await_broker_configs(struct cluster *c)
{
    configs_of(c);
    /* broker_configs_step each turn: a failed read's retry timer needs the registration. */
    return startup_wait_answer(c, "read /config/brokers", broker_configs_known,
                               broker_configs_step);
}

/* ---- writes ---- */

static void config_write_free(struct cluster *c, struct config_write *w)
{
    write_link_remove(&configs_of(c)->writes, &w->link);
    free(w->json);
    free(w->topic_json);
    free(w);
}

static void config_write_fail(struct config_write *w, int rc)
{
    struct cluster *c = w->c;
    LOG_WARN(c->who, "Writing %s failed (ZooKeeper error %d)", w->path, rc);
    if (w->topic != NULL) {
        /* CreateTopics: answered as a failed assignment write */
        struct zk_result res = {.rc = rc, .path = w->path};
        char tpath[CLUSTER_TOPIC_NAME_MAX + 32];
        snprintf(tpath, sizeof(tpath), "/brokers/topics/%s", w->name);
        res.path = tpath;
        struct create_op *op = w->topic;
        config_write_free(c, w);
        topic_created(op, &res);
        return;
    }
    char msg[sizeof(w->path) + 64];
    snprintf(msg, sizeof(msg), "Writing %s to ZooKeeper failed (error %d)", w->path, rc);
    cluster_create_done_fn done = w->done;
    void *arg = w->arg;
    config_write_free(c, w);
    done(arg, KERR_REQUEST_TIMED_OUT, msg);
}

static void change_written(void *arg, const struct zk_result *res)
{
    struct config_write *w = arg;
    struct cluster *c = w->c;
    if (res->rc != ZK_OK) {
        config_write_fail(w, res->rc);
        return;
    }
    LOG_INFO(c->who, "Config of %s/%s written, notification %s", w->type, w->name,
             res->created_path ? res->created_path : "?");
    cluster_create_done_fn done = w->done;
    void *warg = w->arg;
    config_write_free(c, w);
    done(warg, KERR_NONE, "");
}

/* The entity's znode is written: this broker's view takes it now (a DescribeConfigs that
 * follows the answer sees it), then the notification for the others. */
static void entity_written(struct config_write *w)
{
    struct cluster *c = w->c;
    struct cluster_configs *cc = configs_of(c);
    if (w->topic != NULL) {
        char tpath[CLUSTER_TOPIC_NAME_MAX + 32];
        snprintf(tpath, sizeof(tpath), "/brokers/topics/%s", w->name);
        struct create_op *op = w->topic;
        int rc = zk_create_node(c->zk, tpath, w->topic_json, w->topic_len, false, topic_created,
                                op);
        if (rc != ZK_OK) {
            config_write_fail(w, rc);
            return;
        }
        config_write_free(c, w);
        return;
    }
    if (strcmp(w->type, "topics") == 0) {
        struct cluster_topic *t = topic_slot(c, w->name);
        if (t != NULL && config_accept(c, w->path, w->json, w->len, &t->config, &t->config_len)) {
            t->config_known = true;
            t->config_gen = ++cc->gen;
        }
    } else {
        char id[16];
        snprintf(id, sizeof(id), "%d", c->cfg.broker_id);
        int k = strcmp(w->name, CONFIG_DEFAULT_ENTITY) == 0 ? 0 : strcmp(w->name, id) == 0 ? 1 : -1;
        if (k >= 0 && config_accept(c, w->path, w->json, w->len, &cc->broker[k],
                                    &cc->broker_len[k])) {
            cc->broker_known[k] = true;
            cc->broker_gen[k] = ++cc->gen;
        }
    }
    notify(c);
    char json[CLUSTER_TOPIC_NAME_MAX * 2 + 64];
    int n = znode_config_change_json(json, sizeof(json), w->type, w->name);
    GREGOR_ASSERT(n > 0);
    int rc = zk_create_sequential(c->zk, CONFIG_CHANGES_PATH "/" CONFIG_CHANGE_PREFIX, json, n,
                                  change_written, w);
    if (rc != ZK_OK)
        config_write_fail(w, rc);
}

static void entity_set(void *arg, const struct zk_result *res);

/* AdminZkClient's setOrCreateEntityConfigs: set; a missing node is created; one created by
 * someone else meanwhile is set again. */
static void entity_created(void *arg, const struct zk_result *res)
{
    struct config_write *w = arg;
    if (res->rc == ZK_OK) {
        entity_written(w);
        return;
    }
    int rc = res->rc;
    if (rc == ZK_NODE_EXISTS && !w->created) {
        w->created = true;
        rc = zk_set(w->c->zk, w->path, w->json, w->len, -1, entity_set, w);
        if (rc == ZK_OK)
            return;
    }
    config_write_fail(w, rc);
}

static void entity_set(void *arg, const struct zk_result *res)
{
    struct config_write *w = arg;
    if (res->rc == ZK_OK) {
        entity_written(w);
        return;
    }
    int rc = res->rc;
    if (rc == ZK_NO_NODE && !w->created) {
        rc = zk_create_node(w->c->zk, w->path, w->json, w->len, false, entity_created, w);
        if (rc == ZK_OK)
            return;
    }
    config_write_fail(w, rc);
}

static struct config_write *config_write_new(struct cluster *c, const char *type,
                                             const char *name, const char *json, size_t len)
{
    struct cluster_configs *cc = configs_of(c);
    struct config_write *w = calloc(1, sizeof(*w));
    GREGOR_ASSERT(w != NULL);
    w->c = c;
    snprintf(w->type, sizeof(w->type), "%s", type);
    snprintf(w->name, sizeof(w->name), "%s", name);
    snprintf(w->path, sizeof(w->path), "/config/%s/%s", type, name);
    w->json = malloc(len + 1);
    GREGOR_ASSERT(w->json != NULL);
    memcpy(w->json, json, len);
    w->json[len] = '\0';
    w->len = (int)len;
    write_link_push(&cc->writes, &w->link);
    return w;
}

int cluster_config_write(struct cluster *c, const char *entity_type, const char *entity_name,
                         const char *json, size_t len, cluster_create_done_fn done, void *arg,
                         char *msg, size_t msglen)
{
    GREGOR_ASSERT(done != NULL);
    if (strcmp(entity_type, "topics") == 0 && cluster_topic_find(c, entity_name) == NULL) {
        snprintf(msg, msglen, "Topic '%s' does not exist.", entity_name);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (len >= ZK_DATA_MAX || strlen(entity_name) >= CLUSTER_TOPIC_NAME_MAX) {
        snprintf(msg, msglen, "The config of %s/%s is too large for ZooKeeper (%zu bytes, at "
                 "most %d)", entity_type, entity_name, len, ZK_DATA_MAX - 1);
        return KERR_INVALID_CONFIG;
    }
    struct config_write *w = config_write_new(c, entity_type, entity_name, json, len);
    w->done = done;
    w->arg = arg;
    int rc = zk_set(c->zk, w->path, w->json, w->len, -1, entity_set, w);
    if (rc != ZK_OK) {
        config_write_free(c, w);
        snprintf(msg, msglen, "Cannot write the config to ZooKeeper (error %d)", rc);
        return KERR_REQUEST_TIMED_OUT;
    }
    return KERR_NONE;
}

/* CreateTopics: the config first, then the topic's znode (Kafka's createTopicWithAssignment
 * order: a broker that sees the topic finds its config). Returns as zk_create_node; op is
 * answered by topic_created either way once submitted. */
static int topic_create_with_config(struct cluster *c, const char *name, const char *topic_json,
                                    int topic_len, const char *config_json,
                                    struct create_op *op)
{
    static const char empty[] = "{\"version\":1,\"config\":{}}";
    if (config_json == NULL)
        config_json = empty;
    size_t len = strlen(config_json);
    if (len >= ZK_DATA_MAX)
        return ZK_TOO_BUSY;
    struct config_write *w = config_write_new(c, "topics", name, config_json, len);
    w->topic = op;
    w->topic_json = malloc((size_t)topic_len);
    GREGOR_ASSERT(w->topic_json != NULL);
    memcpy(w->topic_json, topic_json, (size_t)topic_len);
    w->topic_len = topic_len;
    int rc = zk_set(c->zk, w->path, w->json, w->len, -1, entity_set, w);
    if (rc != ZK_OK)
        config_write_free(c, w);
    return rc;
}

static void configs_destroy(struct cluster *c)
{
    struct cluster_configs *cc = c->configs;
    if (cc == NULL)
        return;
    while (cc->writes != NULL) {
        struct config_write *w = (struct config_write *)cc->writes; /* link is first */
        cluster_create_done_fn done = w->topic == NULL ? w->done : NULL; /* creates: c->creates */
        void *arg = w->arg;
        config_write_free(c, w);
        if (done != NULL)
            done(arg, KERR_REQUEST_TIMED_OUT, "The broker shut down before the config was "
                 "written to ZooKeeper.");
    }
    for (int k = 0; k < 2; k++)
        free(cc->broker[k]);
    free(cc);
    c->configs = NULL;
}

/* ---- the leader's ISR changes ---- */

static void isr_written(void *arg, const struct zk_result *res)
{
    struct cluster_isr_write *w = arg;
    struct cluster *c = w->c;
    int rc = res->session_gen != zk_session_gen(c->zk) ? ZK_SESSION_EXPIRED_ERR : res->rc;
    struct cluster_topic *t = topic_slot(c, w->topic);
    if (rc == ZK_OK && t != NULL && w->partition < t->npartitions) {
        /* ZooKeeper took it at the next version: the cache follows, so the next change is
         * written at the right version even before the state's watch re-reads it. */
        struct cluster_partition *cp = &t->parts[w->partition];
        if (res->has_stat)
            cp->state_version = res->stat.version;
        cp->nisr = w->nisr;
        memcpy(cp->isr, w->isr, sizeof(w->isr[0]) * (size_t)w->nisr);
        LOG_INFO(c->who, "ISR of %s-%d is now %d replica(s), zkVersion %d", w->topic,
                 w->partition, w->nisr, cp->state_version);
    } else if (rc == ZK_BAD_VERSION) {
        /* Kafka's "Cached zkVersion not equal to that in zookeeper, skip updating ISR": the
         * controller changed the state; its watch reads it again. */
        LOG_INFO(c->who, "ISR of %s-%d not updated: its state changed in ZooKeeper", w->topic,
                 w->partition);
    } else {
        LOG_WARN(c->who, "Writing the ISR of %s-%d failed: ZooKeeper error %d", w->topic,
                 w->partition, rc);
    }
    w->done(w, rc);
}

int cluster_write_isr(struct cluster *c, struct cluster_isr_write *w)
{
    struct cluster_topic *t = topic_slot(c, w->topic);
    if (t == NULL || !t->read || w->partition < 0 || w->partition >= t->npartitions)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    struct cluster_partition *cp = &t->parts[w->partition];
    /* Only the leader of the epoch it read writes its ISR (the controller fences the rest
     * with the zkVersion). */
    if (cp->state != CLUSTER_STATE_READ || cp->leader != c->cfg.broker_id ||
        cp->leader_epoch != w->leader_epoch)
        return KERR_NOT_LEADER_OR_FOLLOWER;
    GREGOR_ASSERT(w->nisr >= 1 && w->nisr <= CLUSTER_REPLICAS_MAX && w->done != NULL);
    w->c = c;
    /* The leader and both epochs stay: an ISR change is no election (Kafka's ZooKeeper mode). */
    struct znode_state st = {.controller_epoch = cp->controller_epoch, .leader = cp->leader,
                             .leader_epoch = cp->leader_epoch, .nisr = w->nisr};
    memcpy(st.isr, w->isr, sizeof(w->isr[0]) * (size_t)w->nisr);
    char json[128 + 12 * CLUSTER_REPLICAS_MAX], path[CLUSTER_TOPIC_NAME_MAX + 64];
    int n = znode_state_json(json, sizeof(json), &st);
    GREGOR_ASSERT(n > 0);
    snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", w->topic,
             w->partition);
    if (zk_set(c->zk, path, json, n, cp->state_version, isr_written, w) != ZK_OK)
        return KERR_REQUEST_TIMED_OUT; /* not connected or too busy: tried again later */
    return KERR_NONE;
}

/* ---- producer id blocks ---- */

#define PRODUCER_ID_BLOCK_PATH "/latest_producer_id_block"

static void producer_ids_read(void *arg, const struct zk_result *res);

static void producer_ids_fail(struct cluster_producer_id_claim *w, const char *why, int rc)
{
    /* Rate-limited: every InitProducerId after the back-off claims again. */
    LOG_LIMITED(LOG_LEVEL_WARN, w->c->who, "Taking a producer id block failed: %s (ZooKeeper "
                "error %d, attempt %d)", why, rc, w->attempts);
    w->done(w, KERR_COORDINATOR_LOAD_IN_PROGRESS);
}

static void producer_ids_written(void *arg, const struct zk_result *res)
{
    struct cluster_producer_id_claim *w = arg;
    if (res->rc == ZK_OK) {
        LOG_INFO(w->c->who, "Acquired new producerId block [%" PRId64 ", %" PRId64 "] by "
                 "writing to Zk with path version %d", w->first, w->last,
                 res->has_stat ? res->stat.version : 0);
        w->done(w, KERR_NONE);
        return;
    }
    /* Another broker took a block since the read (or created the node first): read again. */
    bool raced = res->rc == ZK_BAD_VERSION || res->rc == ZK_NODE_EXISTS;
    if (!raced || ++w->attempts >= CLUSTER_PRODUCER_ID_ATTEMPTS) {
        producer_ids_fail(w, raced ? "conflicting writes" : "the write failed", res->rc);
        return;
    }
    int rc = zk_get(w->c->zk, PRODUCER_ID_BLOCK_PATH, NULL, NULL, producer_ids_read, w);
    if (rc != ZK_OK)
        producer_ids_fail(w, "cannot read the block again", rc);
}

static void producer_ids_read(void *arg, const struct zk_result *res)
{
    struct cluster_producer_id_claim *w = arg;
    struct cluster *c = w->c;
    if ((res->rc != ZK_OK && res->rc != ZK_NO_NODE) || (res->rc == ZK_OK && !res->has_stat)) {
        producer_ids_fail(w, "cannot read " PRODUCER_ID_BLOCK_PATH, res->rc);
        return;
    }
    int64_t first = 0; /* none taken yet: the first block starts at 0 */
    if (res->rc == ZK_OK && res->data != NULL && res->len > 0) {
        int32_t broker;
        int64_t start, end;
        if (znode_producer_id_block_parse(res->data, (size_t)res->len, &broker, &start,
                                          &end) != 0) {
            LOG_LIMITED(LOG_LEVEL_ERROR, c->who, "Failed to parse the producerId block json %.*s",
                        res->len > 512 ? 512 : res->len, res->data);
            w->done(w, KERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        if (end > INT64_MAX - CLUSTER_PRODUCER_ID_BLOCK_SIZE) {
            LOG_LIMITED(LOG_LEVEL_ERROR, c->who, "Exhausted all producerIds as the next "
                        "block's end producerId would exceed the long type limit (current "
                        "block end producerId is %" PRId64 ")", end);
            w->done(w, KERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        first = end + 1;
    }
    w->first = first;
    w->last = first + CLUSTER_PRODUCER_ID_BLOCK_SIZE - 1;
    char json[160];
    int n = znode_producer_id_block_json(json, sizeof(json), c->cfg.broker_id, w->first,
                                         w->last);
    GREGOR_ASSERT(n > 0 && w->first <= w->last);
    int rc = res->rc == ZK_NO_NODE
                 ? zk_create_node(c->zk, PRODUCER_ID_BLOCK_PATH, json, n, false,
                                  producer_ids_written, w)
                 : zk_set(c->zk, PRODUCER_ID_BLOCK_PATH, json, n, res->stat.version,
                          producer_ids_written, w);
    if (rc != ZK_OK)
        producer_ids_fail(w, "cannot write the block", rc);
}

int cluster_claim_producer_ids(struct cluster *c, struct cluster_producer_id_claim *w)
{
    GREGOR_ASSERT(w->done != NULL);
    w->c = c;
    w->attempts = 0;
    w->first = w->last = -1;
    if (!zk_connected(c->zk) ||
        zk_get(c->zk, PRODUCER_ID_BLOCK_PATH, NULL, NULL, producer_ids_read, w) != ZK_OK)
        return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    return KERR_NONE;
}

/* ---- ACLs and user / client configs (issue 19) ----
 * As Kafka 3.9's ZooKeeper mode: AclAuthorizer keeps each resource's ACLs in
 * /kafka-acl/<Type>/<name> (LITERAL) or /kafka-acl-extended/prefixed/<Type>/<name>, changed by
 * a read and a write at the version read (again on BadVersion / NodeExists), the node deleted
 * when its last ACL goes, then a sequential /kafka-acl-changes/acl_changes_<n> ("TOPIC:name")
 * or /kafka-acl-extended-changes/acl_changes_<n> (ExtendedAclChangeEvent). Every broker lists
 * both change paths with a child watch and reads each named resource again. Users' and
 * clients' configs (SCRAM credentials, quotas) are /config/users|clients/<sanitized>,
 * notified through /config/changes (the config listener above hands them here). */

#define SEC_ATTEMPTS 10            /* Kafka's AclAuthorizer maxUpdateRetries */
#define SEC_SUBSCRIBERS_MAX 4
#define SEC_READ_ATTEMPTS 5         /* a notification's read of what it names */
#define SEC_PATH_MAX (CLUSTER_TOPIC_NAME_MAX * 4 + 64)
#define ACL_CHANGE_PREFIX "acl_changes_"

static const char *const acl_change_paths[2] = {"/kafka-acl-changes", "/kafka-acl-extended-changes"};
static const char *const acl_store_paths[2] = {"/kafka-acl", "/kafka-acl-extended/prefixed"};
/* Kafka's createAclPaths: each store, its resource types, the change paths. */
static const char *const acl_paths[] = {
    "/kafka-acl", "/kafka-acl/Topic", "/kafka-acl/Group", "/kafka-acl/Cluster",
    "/kafka-acl/TransactionalId", "/kafka-acl/DelegationToken", "/kafka-acl/User",
    "/kafka-acl-changes", "/kafka-acl-extended", "/kafka-acl-extended/prefixed",
    "/kafka-acl-extended/prefixed/Topic", "/kafka-acl-extended/prefixed/Group",
    "/kafka-acl-extended/prefixed/Cluster", "/kafka-acl-extended/prefixed/TransactionalId",
    "/kafka-acl-extended/prefixed/DelegationToken", "/kafka-acl-extended/prefixed/User",
    "/kafka-acl-extended-changes",
};

enum sec_kind { SEC_ACL_LITERAL, SEC_ACL_PREFIXED, SEC_ENTITY };

struct sec_op {
    struct write_link link;             /* first: on cluster_security.ops */
    struct cluster *c;
    enum sec_kind kind;
    char type[40];                      /* ACL: "TOPIC"; entity: "users" */
    char name[SEC_PATH_MAX];            /* the resource's name, or the sanitized entity */
    char path[SEC_PATH_MAX + 64];
    cluster_rmw_fn modify;
    void *marg;
    cluster_create_done_fn done;
    void *arg;
    int attempts;
    char *json;                         /* the value written (NULL: the node deleted) */
    size_t len;
    int32_t version;                    /* of the value read */
};
_Static_assert(offsetof(struct sec_op, link) == 0, "the list holds sec_ops");

struct cluster_security {
    uint64_t session_gen;
    cluster_acls_fn acl_fn;
    void *acl_arg;
    int nsubs;
    struct { cluster_entity_config_fn fn; void *arg; } subs[SEC_SUBSCRIBERS_MAX];
    bool paths_sent;
    bool changes_watch[2], changes_inflight[2];
    int64_t changes_last[2];            /* the highest notification handled (-1: none) */
    bool load_started, loaded;
    int load_left;                      /* listings and reads of the start-up load */
    bool load_failed;
    struct write_link *ops;             /* sec_ops in flight */
};

static void security_step(struct cluster *c);

static struct cluster_security *security_of(struct cluster *c)
{
    if (c->security == NULL) {
        c->security = calloc(1, sizeof(*c->security));
        GREGOR_ASSERT(c->security != NULL);
        c->security->changes_last[0] = c->security->changes_last[1] = -1;
    }
    return c->security;
}

/* "TransactionalId" -> "TRANSACTIONAL_ID" (pascal_case the other way). */
static void type_from_pascal(const char *pascal, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = pascal; *p && n + 2 < outlen; p++) {
        if (p != pascal && isupper((unsigned char)*p))
            out[n++] = '_';
        out[n++] = (char)toupper((unsigned char)*p);
    }
    out[n] = '\0';
}

static void acl_path(char *out, size_t outlen, bool prefixed, const char *type, const char *name)
{
    char pascal[40];
    pascal_case(type, pascal, sizeof(pascal));
    snprintf(out, outlen, "%s/%s/%s", acl_store_paths[prefixed], pascal, name);
}

static void acl_deliver(struct cluster *c, bool prefixed, const char *type, const char *name,
                        const char *json, size_t len)
{
    struct cluster_security *s = security_of(c);
    if (s->acl_fn != NULL)
        s->acl_fn(s->acl_arg, type, prefixed, name, json, len);
}

static void entity_deliver(struct cluster *c, const char *type, const char *name,
                           const char *json, size_t len)
{
    struct cluster_security *s = security_of(c);
    if (json != NULL && znode_config_parse(json, len, NULL, NULL) < 0) {
        LOG_WARN(c->who, "Ignoring the malformed config znode /config/%s/%s", type, name);
        return;
    }
    for (int i = 0; i < s->nsubs; i++)
        s->subs[i].fn(s->subs[i].arg, type, name, json, len);
}

void cluster_acls_subscribe(struct cluster *c, cluster_acls_fn fn, void *arg)
{
    struct cluster_security *s = security_of(c);
    s->acl_fn = fn;
    s->acl_arg = arg;
}

void cluster_entity_config_subscribe(struct cluster *c, cluster_entity_config_fn fn, void *arg)
{
    struct cluster_security *s = security_of(c);
    GREGOR_ASSERT(s->nsubs < SEC_SUBSCRIBERS_MAX);
    s->subs[s->nsubs].fn = fn;
    s->subs[s->nsubs].arg = arg;
    s->nsubs++;
}

/* ---- reads: the start-up load and what notifications name ---- */

struct sec_read {
    struct cluster *c;
    enum sec_kind kind;
    bool load;                          /* part of the start-up load */
    int attempts;                       /* a notification's read: again after a failure */
    char type[40];
    char name[SEC_PATH_MAX];
};

static void load_done_one(struct cluster *c, bool failed)
{
    struct cluster_security *s = security_of(c);
    GREGOR_ASSERT(s->load_left > 0);
    if (failed)
        s->load_failed = true;
    if (--s->load_left == 0) {
        if (s->load_failed) { /* start again (each resource replaces what it held) */
            s->load_failed = false;
            s->load_started = false;
            retry_later(c, "loading the ACLs and user configs", ZK_CONNECTION_LOSS);
        } else {
            s->loaded = true;
            LOG_INFO(c->who, "Loaded the ACLs and user / client configs from ZooKeeper");
        }
    }
}

static void sec_read_done(void *arg, const struct zk_result *res)
{
    struct sec_read *rd = arg;
    struct cluster *c = rd->c;
    bool failed = false;
    if (stale(c, res) || (res->rc != ZK_OK && res->rc != ZK_NO_NODE)) {
        failed = true;
        if (!rd->load && ++rd->attempts < SEC_READ_ATTEMPTS) {
            /* a notification's read: again (in the new session, if one replaced it) */
            char path[SEC_PATH_MAX + 64];
            if (rd->kind == SEC_ENTITY)
                snprintf(path, sizeof(path), "/config/%s/%s", rd->type, rd->name);
            else
                acl_path(path, sizeof(path), rd->kind == SEC_ACL_PREFIXED, rd->type, rd->name);
            if (zk_get(c->zk, path, NULL, NULL, sec_read_done, rd) == ZK_OK)
                return;
        }
        if (!rd->load)
            LOG_WARN(c->who, "Reading %s/%s failed (ZooKeeper error %d): kept as it was until "
                     "the next change names it", rd->type, rd->name, res->rc);
    } else {
        const char *json = res->rc == ZK_OK ? (res->data ? res->data : "") : NULL;
        size_t len = res->rc == ZK_OK ? (size_t)res->len : 0;
        if (rd->kind == SEC_ENTITY)
            entity_deliver(c, rd->type, rd->name, json, len);
        else
            acl_deliver(c, rd->kind == SEC_ACL_PREFIXED, rd->type, rd->name, json, len);
    }
    if (rd->load)
        load_done_one(c, failed);
    free(rd);
}

static int sec_read(struct cluster *c, enum sec_kind kind, bool load, const char *type,
                    const char *name)
{
    struct sec_read *rd = calloc(1, sizeof(*rd));
    GREGOR_ASSERT(rd != NULL);
    *rd = (struct sec_read){.c = c, .kind = kind, .load = load};
    snprintf(rd->type, sizeof(rd->type), "%s", type);
    snprintf(rd->name, sizeof(rd->name), "%s", name);
    char path[SEC_PATH_MAX + 64];
    if (kind == SEC_ENTITY)
        snprintf(path, sizeof(path), "/config/%s/%s", type, name);
    else
        acl_path(path, sizeof(path), kind == SEC_ACL_PREFIXED, type, name);
    int rc = zk_get(c->zk, path, NULL, NULL, sec_read_done, rd);
    if (rc != ZK_OK) {
        free(rd);
        return rc;
    }
    if (load)
        security_of(c)->load_left++;
    return ZK_OK;
}

/* A listing of the load: /kafka-acl[...] (its types), /kafka-acl[...]/<Type> (its
 * resources), /config/users or /config/clients (its entities), /config/users/<u>/clients
 * (the user's client entities). */
struct sec_list {
    struct cluster *c;
    int level;                          /* 0: types of store, 1: resources, 2: entities,
                                         * 3: a user's clients */
    bool prefixed;
    char type[40];                      /* level 3: the sanitized user */
    char user[SEC_PATH_MAX];
};

static int sec_list(struct cluster *c, int level, bool prefixed, const char *type);
static int sec_list_user_clients(struct cluster *c, const char *user);

static void sec_listed(void *arg, const struct zk_result *res)
{
    struct sec_list *l = arg;
    struct cluster *c = l->c;
    bool failed = stale(c, res) || (res->rc != ZK_OK && res->rc != ZK_NO_NODE);
    for (int i = 0; !failed && res->rc == ZK_OK && i < res->nchildren; i++) {
        const char *ch = res->children[i];
        int rc;
        if (l->level == 0) {
            char upper[40];
            type_from_pascal(ch, upper, sizeof(upper));
            rc = sec_list(c, 1, l->prefixed, upper);
        } else if (l->level == 1) {
            rc = sec_read(c, l->prefixed ? SEC_ACL_PREFIXED : SEC_ACL_LITERAL, true, l->type, ch);
        } else if (l->level == 2) {
            rc = sec_read(c, SEC_ENTITY, true, l->type, ch);
            /* users/<u>/clients/<c> (user + client-id quotas): one listing per user */
            if (rc == ZK_OK && strcmp(l->type, "users") == 0)
                rc = sec_list_user_clients(c, ch);
        } else {
            char name[SEC_PATH_MAX];
            int n = snprintf(name, sizeof(name), "%s/clients/%s", l->user, ch);
            if (n < 0 || (size_t)n >= sizeof(name)) {
                LOG_WARN(c->who, "Ignoring /config/users/%s/clients/%s: the path is too long",
                         l->user, ch);
                continue;
            }
            rc = sec_read(c, SEC_ENTITY, true, "users", name);
        }
        if (rc != ZK_OK)
            failed = true;
    }
    free(l);
    load_done_one(c, failed);
}

static int sec_list_user_clients(struct cluster *c, const char *user)
{
    size_t ulen = strlen(user);
    if (ulen + sizeof("/clients/") + 1 >= SEC_PATH_MAX)
        return ZK_OK; /* no client entity of this user could be read (logged per client) */
    struct sec_list *l = calloc(1, sizeof(*l));
    GREGOR_ASSERT(l != NULL);
    *l = (struct sec_list){.c = c, .level = 3};
    memcpy(l->user, user, ulen + 1);
    char path[SEC_PATH_MAX + 32];
    snprintf(path, sizeof(path), "/config/users/%s/clients", user);
    int rc = zk_get_children(c->zk, path, NULL, NULL, sec_listed, l);
    if (rc != ZK_OK) {
        free(l);
        return rc;
    }
    security_of(c)->load_left++;
    return ZK_OK;
}

static int sec_list(struct cluster *c, int level, bool prefixed, const char *type)
{
    struct sec_list *l = calloc(1, sizeof(*l));
    GREGOR_ASSERT(l != NULL);
    *l = (struct sec_list){.c = c, .level = level, .prefixed = prefixed};
    snprintf(l->type, sizeof(l->type), "%s", type);
    char path[128];
    if (level == 0) {
        snprintf(path, sizeof(path), "%s", acl_store_paths[prefixed]);
    } else if (level == 1) {
        char pascal[40];
        pascal_case(type, pascal, sizeof(pascal));
        snprintf(path, sizeof(path), "%s/%s", acl_store_paths[prefixed], pascal);
    } else {
        snprintf(path, sizeof(path), "/config/%s", type);
    }
    int rc = zk_get_children(c->zk, path, NULL, NULL, sec_listed, l);
    if (rc != ZK_OK) {
        free(l);
        return rc;
    }
    security_of(c)->load_left++;
    return ZK_OK;
}

/* A config change notification named users/<u>, clients/<c> or users/<u>/clients/<c>
 * (name NULL: any, after a failed read). */
void cluster_security_entity_stale(struct cluster *c, const char *type, const char *name);
void cluster_security_entity_stale(struct cluster *c, const char *type, const char *name)
{
    if (strcmp(type, "users") != 0 && strcmp(type, "clients") != 0 && strcmp(type, "ips") != 0)
        return;
    if (name == NULL || c->security == NULL || !c->security->loaded)
        return; /* a lost notification: the entities keep their values (logged by the caller) */
    int rc = sec_read(c, SEC_ENTITY, false, type, name);
    if (rc != ZK_OK)
        retry_later(c, "reading a user or client config", rc);
}

/* ---- the ACL change notifications ---- */

struct sec_change {
    struct cluster *c;
    int store;                          /* 0 literal, 1 extended */
};

static void acl_change_read(void *arg, const struct zk_result *res)
{
    struct sec_change *ch = arg;
    struct cluster *c = ch->c;
    int store = ch->store;
    free(ch);
    if (stale(c, res) || res->rc == ZK_NO_NODE)
        return;
    if (res->rc != ZK_OK || res->data == NULL) {
        retry_later(c, "reading an ACL change notification", res->rc);
        return;
    }
    char type[40], name[SEC_PATH_MAX], pattern[32];
    bool ok;
    if (store == 0) { /* "TOPIC:name" */
        const char *colon = memchr(res->data, ':', (size_t)res->len);
        ok = colon != NULL && colon > res->data && (size_t)(colon - res->data) < sizeof(type) &&
             res->len - (colon - res->data) - 1 < (int)sizeof(name);
        if (ok) {
            snprintf(type, sizeof(type), "%.*s", (int)(colon - res->data), res->data);
            snprintf(name, sizeof(name), "%.*s", (int)(res->len - (colon - res->data) - 1),
                     colon + 1);
        }
        snprintf(pattern, sizeof(pattern), "LITERAL");
    } else {
        ok = znode_acl_change_parse(res->data, (size_t)res->len, type, sizeof(type), name,
                                    sizeof(name), pattern, sizeof(pattern)) == 0;
    }
    if (ok) { /* Kafka's ResourceType.fromString takes either case */
        for (char *p = type; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        for (char *p = pattern; *p; p++)
            *p = (char)toupper((unsigned char)*p);
    }
    if (!ok || (strcmp(pattern, "LITERAL") != 0 && strcmp(pattern, "PREFIXED") != 0)) {
        LOG_WARN(c->who, "Ignoring the malformed ACL change notification %s: %.*s", res->path,
                 res->len > 512 ? 512 : res->len, res->data);
        return;
    }
    LOG_INFO(c->who, "Processing ACL change notification %s: %s:%s:%s", res->path, type,
             pattern, name);
    int rc = sec_read(c, strcmp(pattern, "PREFIXED") == 0 ? SEC_ACL_PREFIXED : SEC_ACL_LITERAL,
                      false, type, name);
    if (rc != ZK_OK)
        retry_later(c, "reading an ACL znode", rc);
}

/* A listed notification's stat: past the expiry, it goes (Kafka's
 * purgeObsoleteNotifications, run by every broker after each listing that found any). */
static void acl_change_statted(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res) || res->rc != ZK_OK || !res->has_stat)
        return; /* purged by another broker, or looked at again at the next listing */
    if (now_ms() - res->stat.ctime_ms <= c->change_expiry_ms)
        return;
    LOG_INFO(c->who, "Purging the ACL change notification %s (older than %" PRId64 " ms)",
             res->path, c->change_expiry_ms);
    (void)zk_delete(c->zk, res->path, -1, change_purged, c);
}

/* The oldest CONFIG_CHANGES_BATCH of a listing (seqs sorted) are looked at for the purge; the
 * rest wait for a later listing, once these are gone. */
static void acl_changes_purge(struct cluster *c, int store, const int64_t *seqs, int n)
{
    for (int i = 0; i < n && i < CONFIG_CHANGES_BATCH; i++) {
        char path[96];
        snprintf(path, sizeof(path), "%s/" ACL_CHANGE_PREFIX "%010" PRId64,
                 acl_change_paths[store], seqs[i]);
        if (zk_exists(c->zk, path, NULL, NULL, acl_change_statted, c) != ZK_OK)
            return; /* not submitted: the next listing tries again */
    }
}

static void acl_changes_changed(void *arg, enum zk_watch_type type, const char *path,
                                uint64_t gen)
{
    (void)type;
    struct cluster *c = arg;
    if (gen != zk_session_gen(c->zk) || c->security == NULL)
        return;
    int store = strcmp(path, acl_change_paths[1]) == 0 ? 1 : 0;
    c->security->changes_watch[store] = false;
    security_step(c);
}

static void acl_changes_listed(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (stale(c, res))
        return;
    struct cluster_security *s = security_of(c);
    int store = strcmp(res->path, acl_change_paths[1]) == 0 ? 1 : 0;
    s->changes_inflight[store] = false;
    if (res->rc != ZK_OK) {
        s->changes_watch[store] = false;
        retry_later(c, "listing the ACL change notifications", res->rc);
        return;
    }
    size_t plen = strlen(ACL_CHANGE_PREFIX);
    int64_t *seqs = malloc(sizeof(*seqs) * (size_t)(res->nchildren > 0 ? res->nchildren : 1));
    GREGOR_ASSERT(seqs != NULL);
    int n = 0;
    for (int i = 0; i < res->nchildren; i++) {
        const char *ch = res->children[i];
        char *end;
        if (strncmp(ch, ACL_CHANGE_PREFIX, plen) != 0)
            continue;
        long long v = strtoll(ch + plen, &end, 10);
        if (*end == '\0' && end != ch + plen)
            seqs[n++] = v;
    }
    qsort(seqs, (size_t)n, sizeof(*seqs), seq_cmp);
    if (!s->loaded && !s->load_started) {
        /* the first listing, before the load: what it lists the load covers */
        if (n > 0)
            s->changes_last[store] = seqs[n - 1];
    }
    bool more = false;
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (seqs[i] <= s->changes_last[store])
            continue;
        if (started == CONFIG_CHANGES_BATCH) {
            more = true;
            break;
        }
        char path[96];
        snprintf(path, sizeof(path), "%s/" ACL_CHANGE_PREFIX "%010" PRId64,
                 acl_change_paths[store], seqs[i]);
        struct sec_change *ch = malloc(sizeof(*ch));
        GREGOR_ASSERT(ch != NULL);
        *ch = (struct sec_change){c, store};
        int rc = zk_get(c->zk, path, NULL, NULL, acl_change_read, ch);
        if (rc != ZK_OK) {
            free(ch);
            more = true;
            retry_later(c, "reading an ACL change notification", rc);
            break;
        }
        started++;
        s->changes_last[store] = seqs[i];
    }
    acl_changes_purge(c, store, seqs, n);
    free(seqs);
    if (more)
        s->changes_watch[store] = false;
    security_step(c);
}

static void acl_path_made(void *arg, const struct zk_result *res)
{
    struct cluster *c = arg;
    if (!stale(c, res) && res->rc != ZK_OK && res->rc != ZK_NODE_EXISTS)
        LOG_WARN(c->who, "Creating %s failed (ZooKeeper error %d)", res->path, res->rc);
}

/* The change watches (each session), the ACL paths (once, as Kafka's createAclPaths) and the
 * start-up load (after the first listings, so no change falls between). */
static void security_step(struct cluster *c)
{
    struct cluster_security *s = c->security;
    if (s == NULL || !zk_connected(c->zk))
        return;
    uint64_t gen = zk_session_gen(c->zk);
    if (s->session_gen != gen) {
        s->session_gen = gen;
        for (int k = 0; k < 2; k++)
            s->changes_watch[k] = s->changes_inflight[k] = false;
        s->paths_sent = false;
    }
    if (!s->paths_sent && s->acl_fn != NULL) {
        s->paths_sent = true;
        for (size_t i = 0; i < sizeof(acl_paths) / sizeof(acl_paths[0]); i++)
            (void)zk_create_node(c->zk, acl_paths[i], NULL, 0, false, acl_path_made, c);
    }
    bool listed = true;
    for (int k = 0; k < 2; k++) {
        if (s->acl_fn == NULL)
            break;
        if (!s->changes_watch[k] && !s->changes_inflight[k]) {
            s->changes_watch[k] = s->changes_inflight[k] = true;
            int rc = zk_get_children(c->zk, acl_change_paths[k], acl_changes_changed, c,
                                     acl_changes_listed, c);
            if (rc != ZK_OK) {
                s->changes_watch[k] = s->changes_inflight[k] = false;
                retry_later(c, "listing the ACL change notifications", rc);
            }
        }
        if (s->changes_inflight[k])
            listed = false;
    }
    if (!s->load_started && listed) {
        s->load_started = true;
        s->load_left = 1; /* this step's own, dropped below */
        int rc = ZK_OK;
        if (s->acl_fn != NULL)
            for (int k = 0; k < 2 && rc == ZK_OK; k++)
                rc = sec_list(c, 0, k == 1, "");
        if (s->nsubs > 0 && rc == ZK_OK)
            rc = sec_list(c, 2, false, "users");
        if (s->nsubs > 0 && rc == ZK_OK)
            rc = sec_list(c, 2, false, "clients");
        if (s->nsubs > 0 && rc == ZK_OK) /* connection_creation_rate quotas */
            rc = sec_list(c, 2, false, "ips");
        load_done_one(c, rc != ZK_OK);
    }
}

static bool security_loaded(const struct cluster *c)
{
    return c->security == NULL || c->security->loaded;
}

int cluster_await_security(struct cluster *c)
{
    if (c->security == NULL)
        return 0;
    security_step(c);
    return startup_wait_answer(c, "load the ACLs and user configs", security_loaded,
                               security_step);
}

/* ---- writes: read, modify, write at the version read, notify ---- */

static void sec_op_free(struct cluster *c, struct sec_op *op)
{
    write_link_remove(&security_of(c)->ops, &op->link);
    free(op->json);
    free(op);
}

static void sec_op_finish(struct sec_op *op, int kerr, const char *msg)
{
    struct cluster *c = op->c;
    cluster_create_done_fn done = op->done;
    void *arg = op->arg;
    sec_op_free(c, op);
    done(arg, kerr, msg);
}

static void sec_op_fail(struct sec_op *op, int rc)
{
    char msg[SEC_PATH_MAX + 128];
    LOG_WARN(op->c->who, "Writing %s failed (ZooKeeper error %d)", op->path, rc);
    snprintf(msg, sizeof(msg), "Writing %s to ZooKeeper failed (error %d)", op->path, rc);
    sec_op_finish(op, KERR_REQUEST_TIMED_OUT, msg);
}

static int sec_op_start(struct sec_op *op);

static void sec_notified(void *arg, const struct zk_result *res)
{
    struct sec_op *op = arg;
    if (res->rc != ZK_OK) {
        sec_op_fail(op, res->rc);
        return;
    }
    LOG_INFO(op->c->who, "Wrote %s, notification %s", op->path,
             res->created_path ? res->created_path : "?");
    sec_op_finish(op, KERR_NONE, "");
}

/* Written: this broker's view takes it at once, then the notification for the others. */
static void sec_written(struct sec_op *op)
{
    struct cluster *c = op->c;
    char buf[SEC_PATH_MAX * 2 + 128];
    int n, rc;
    if (op->kind == SEC_ENTITY) {
        entity_deliver(c, op->type, op->name, op->json, op->len);
        char *slash = strchr(op->name, '/');
        (void)slash;
        n = znode_config_change_json(buf, sizeof(buf), op->type, op->name);
        GREGOR_ASSERT(n > 0);
        rc = zk_create_sequential(c->zk, CONFIG_CHANGES_PATH "/" CONFIG_CHANGE_PREFIX, buf, n,
                                  sec_notified, op);
    } else {
        bool prefixed = op->kind == SEC_ACL_PREFIXED;
        acl_deliver(c, prefixed, op->type, op->name, op->json, op->len);
        if (prefixed)
            n = znode_acl_change_json(buf, sizeof(buf), op->type, op->name, "PREFIXED");
        else
            n = snprintf(buf, sizeof(buf), "%s:%s", op->type, op->name);
        GREGOR_ASSERT(n > 0 && (size_t)n < sizeof(buf));
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "%s/" ACL_CHANGE_PREFIX, acl_change_paths[prefixed]);
        rc = zk_create_sequential(c->zk, prefix, buf, n, sec_notified, op);
    }
    if (rc != ZK_OK)
        sec_op_fail(op, rc);
}

/* ---- an entity's config emptied: Kafka's tryCleanQuotaNodes ----
 * The node goes when it has no children (else it keeps an empty config); for
 * users/<u>/clients/<c>, users/<u>/clients goes too when <c> was its only child, and then
 * users/<u> when its own config is empty and clients was its only child. ZooKeeper's delete of
 * a node with children fails (NOT_EMPTY), which is Kafka's "no children" check; the parents'
 * deletes are best effort (another writer may have added to them). */

static void clean_user_deleted(void *arg, const struct zk_result *res)
{
    struct sec_op *op = arg;
    if (res->rc != ZK_OK && res->rc != ZK_NO_NODE && res->rc != ZK_NOT_EMPTY &&
        res->rc != ZK_BAD_VERSION)
        LOG_DEBUG(op->c->who, "Deleting %s failed (ZooKeeper error %d)", res->path, res->rc);
    sec_written(op);
}

static void clean_user_read(void *arg, const struct zk_result *res)
{
    struct sec_op *op = arg;
    bool empty = res->rc == ZK_OK &&
                 (res->data == NULL || res->len == 0 ||
                  znode_config_parse(res->data, (size_t)res->len, NULL, NULL) == 0);
    if (empty && res->has_stat &&
        zk_delete(op->c->zk, res->path, res->stat.version, clean_user_deleted, op) == ZK_OK)
        return;
    sec_written(op);
}

static void clean_clients_deleted(void *arg, const struct zk_result *res)
{
    struct sec_op *op = arg;
    if (res->rc == ZK_OK) {
        char path[SEC_PATH_MAX + 64];
        const char *slash = strchr(op->name, '/');
        GREGOR_ASSERT(slash != NULL);
        snprintf(path, sizeof(path), "/config/users/%.*s", (int)(slash - op->name), op->name);
        if (zk_get(op->c->zk, path, NULL, NULL, clean_user_read, op) == ZK_OK)
            return;
    }
    sec_written(op);
}

static void sec_op_wrote(void *arg, const struct zk_result *res);

/* The entity's node deleted (or not, having children): on to its parents, or done. */
static void entity_emptied(struct sec_op *op, const struct zk_result *res)
{
    struct cluster *c = op->c;
    if (res->rc == ZK_NOT_EMPTY) { /* children: an empty config instead */
        char buf[64];
        int n = znode_config_json(buf, sizeof(buf), NULL, NULL, 0);
        GREGOR_ASSERT(n > 0);
        op->json = malloc((size_t)n + 1);
        GREGOR_ASSERT(op->json != NULL);
        memcpy(op->json, buf, (size_t)n + 1);
        op->len = (size_t)n;
        int rc = zk_set(c->zk, op->path, op->json, (int)op->len, op->version, sec_op_wrote, op);
        if (rc != ZK_OK)
            sec_op_fail(op, rc);
        return;
    }
    const char *slash = strchr(op->name, '/');
    if (strcmp(op->type, "users") == 0 && slash != NULL) {
        char path[SEC_PATH_MAX + 64];
        snprintf(path, sizeof(path), "/config/users/%.*s/clients", (int)(slash - op->name),
                 op->name);
        if (zk_delete(c->zk, path, -1, clean_clients_deleted, op) == ZK_OK)
            return;
    }
    sec_written(op);
}

static void sec_op_wrote(void *arg, const struct zk_result *res)
{
    struct sec_op *op = arg;
    if (op->kind == SEC_ENTITY && op->json == NULL &&
        (res->rc == ZK_OK || res->rc == ZK_NOT_EMPTY)) {
        entity_emptied(op, res);
        return;
    }
    if (res->rc == ZK_OK) {
        sec_written(op);
        return;
    }
    /* another writer came between the read and the write: read again */
    if ((res->rc == ZK_BAD_VERSION || res->rc == ZK_NODE_EXISTS || res->rc == ZK_NO_NODE) &&
        op->attempts < SEC_ATTEMPTS) {
        int rc = sec_op_start(op);
        if (rc == ZK_OK)
            return;
        sec_op_fail(op, rc);
        return;
    }
    sec_op_fail(op, res->rc);
}

static void parent_made(void *arg, const struct zk_result *res)
{
    (void)arg;
    (void)res; /* NodeExists is the usual answer; a real failure fails the create after */
}

static void sec_op_read(void *arg, const struct zk_result *res)
{
    struct sec_op *op = arg;
    struct cluster *c = op->c;
    if (res->rc != ZK_OK && res->rc != ZK_NO_NODE) {
        sec_op_fail(op, res->rc);
        return;
    }
    const char *cur = res->rc == ZK_OK ? (res->data ? res->data : "") : NULL;
    size_t cur_len = res->rc == ZK_OK ? (size_t)res->len : 0;
    int32_t version = res->rc == ZK_OK && res->has_stat ? res->stat.version : -1;
    op->version = version;
    char *out = NULL;
    size_t out_len = 0;
    int m = op->modify(op->marg, cur, cur_len, &out, &out_len);
    if (m < 0) {
        sec_op_finish(op, KERR_INVALID_REQUEST, "The stored value could not be changed");
        return;
    }
    if (m > 0) { /* nothing to change */
        sec_op_finish(op, KERR_NONE, "");
        return;
    }
    if (out != NULL && out_len >= ZK_DATA_MAX) {
        free(out);
        sec_op_finish(op, KERR_POLICY_VIOLATION, "The value is too large for ZooKeeper");
        return;
    }
    free(op->json);
    op->json = out;
    op->len = out_len;
    int rc;
    if (out == NULL && cur == NULL) {
        sec_op_finish(op, KERR_NONE, "");
        return;
    } else if (out == NULL) {
        rc = zk_delete(c->zk, op->path, version, sec_op_wrote, op);
    } else if (cur != NULL) {
        rc = zk_set(c->zk, op->path, out, (int)out_len, version, sec_op_wrote, op);
    } else {
        /* the parents first (one session's requests apply in order) */
        char parent[sizeof(op->path)];
        for (const char *p = strchr(op->path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
            snprintf(parent, sizeof(parent), "%.*s", (int)(p - op->path), op->path);
            (void)zk_create_node(c->zk, parent, NULL, 0, false, parent_made, NULL);
        }
        rc = zk_create_node(c->zk, op->path, out, (int)out_len, false, sec_op_wrote, op);
    }
    if (rc != ZK_OK)
        sec_op_fail(op, rc);
}

static int sec_op_start(struct sec_op *op)
{
    op->attempts++;
    return zk_get(op->c->zk, op->path, NULL, NULL, sec_op_read, op);
}

static int sec_op_submit(struct cluster *c, struct sec_op *op, char *msg, size_t msglen)
{
    struct cluster_security *s = security_of(c);
    op->c = c;
    write_link_push(&s->ops, &op->link);
    int rc = sec_op_start(op);
    if (rc != ZK_OK) {
        sec_op_free(c, op);
        snprintf(msg, msglen, "Cannot reach ZooKeeper (error %d)", rc);
        return KERR_REQUEST_TIMED_OUT;
    }
    return KERR_NONE;
}

int cluster_acl_update(struct cluster *c, const char *resource_type, bool prefixed,
                       const char *name, cluster_rmw_fn modify, void *marg,
                       cluster_create_done_fn done, void *arg, char *msg, size_t msglen)
{
    GREGOR_ASSERT(done != NULL && modify != NULL);
    if (strlen(name) >= SEC_PATH_MAX || strlen(resource_type) >= 40 || name[0] == '\0' ||
        strchr(name, '/') != NULL) {
        snprintf(msg, msglen, "The resource name cannot be a ZooKeeper node name");
        return KERR_INVALID_REQUEST;
    }
    struct sec_op *op = calloc(1, sizeof(*op));
    GREGOR_ASSERT(op != NULL);
    op->kind = prefixed ? SEC_ACL_PREFIXED : SEC_ACL_LITERAL;
    snprintf(op->type, sizeof(op->type), "%s", resource_type);
    snprintf(op->name, sizeof(op->name), "%s", name);
    acl_path(op->path, sizeof(op->path), prefixed, resource_type, name);
    op->modify = modify;
    op->marg = marg;
    op->done = done;
    op->arg = arg;
    return sec_op_submit(c, op, msg, msglen);
}

int cluster_entity_update(struct cluster *c, const char *entity_type, const char *entity_name,
                          cluster_rmw_fn modify, void *marg, cluster_create_done_fn done,
                          void *arg, char *msg, size_t msglen)
{
    GREGOR_ASSERT(done != NULL && modify != NULL);
    if (strlen(entity_name) >= SEC_PATH_MAX || strlen(entity_type) >= 40) {
        snprintf(msg, msglen, "The entity name is too long");
        return KERR_INVALID_REQUEST;
    }
    struct sec_op *op = calloc(1, sizeof(*op));
    GREGOR_ASSERT(op != NULL);
    op->kind = SEC_ENTITY;
    snprintf(op->type, sizeof(op->type), "%s", entity_type);
    snprintf(op->name, sizeof(op->name), "%s", entity_name);
    snprintf(op->path, sizeof(op->path), "/config/%s/%s", entity_type, entity_name);
    op->modify = modify;
    op->marg = marg;
    op->done = done;
    op->arg = arg;
    return sec_op_submit(c, op, msg, msglen);
}

static void security_destroy(struct cluster *c)
{
    struct cluster_security *s = c->security;
    if (s == NULL)
        return;
    while (s->ops != NULL)
        sec_op_finish((struct sec_op *)s->ops, KERR_REQUEST_TIMED_OUT, /* link is first */
                      "The broker shut down before the change was written to ZooKeeper.");
    free(s);
    c->security = NULL;
}
