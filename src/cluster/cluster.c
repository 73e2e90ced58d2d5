/* cluster: see cluster.h. One state machine driven by session events and completions: each
 * step (persistent paths, cluster id, registration, the brokers' watch, the controller's watch
 * and election) has an in-flight flag, and cluster_resume issues whatever is missing, on every
 * (re)connection and after a retry delay, so a lost connection or an expired session only
 * repeats steps. Results of a replaced session are dropped. */
#include "cluster/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cluster/zk.h"
#include "common/logging.h"
#include "common/util.h"
#include "net/loop.h"

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
    char listener_name[32];
    char host[CLUSTER_HOST_MAX];
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
};

static void live_rebuild(struct cluster *c);

static void cluster_resume(struct cluster *c);

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

/* ---- small JSON readers for Kafka's flat znode values (bounded by the value's length) ---- */

static const char *json_value(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (p == NULL)
        return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    return p;
}

static int json_string(const char *json, const char *key, char *out, size_t outlen)
{
    const char *p = json_value(json, key);
    if (p == NULL || *p != '"')
        return -1;
    const char *end = strchr(p + 1, '"');
    if (end == NULL || (size_t)(end - p - 1) >= outlen)
        return -1;
    memcpy(out, p + 1, (size_t)(end - p - 1));
    out[end - p - 1] = '\0';
    return 0;
}

static int json_int(const char *json, const char *key, int64_t *out)
{
    const char *p = json_value(json, key);
    if (p == NULL)
        return -1;
    if (*p == '"') /* Kafka writes some numbers as strings ("version":"1", timestamps) */
        p++;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno != 0)
        return -1;
    *out = v;
    return 0;
}

int cluster_broker_json(char *out, size_t outlen, const char *listener_name, const char *host,
                        int32_t port, int64_t timestamp_ms)
{
    /* Kafka 3.x's BrokerIdZNode, version 5 (features added in v5); host/port are the
     * PLAINTEXT endpoint's, as older readers expect. */
    int n = snprintf(out, outlen,
                     "{\"features\":{},\"listener_security_protocol_map\":{\"%s\":\"PLAINTEXT\"},"
                     "\"endpoints\":[\"%s://%s:%d\"],\"jmx_port\":-1,\"port\":%d,\"host\":\"%s\","
                     "\"version\":5,\"timestamp\":\"%" PRId64 "\"}",
                     listener_name, listener_name, host, port, port, host, timestamp_ms);
    return n > 0 && (size_t)n < outlen ? n : -1;
}

int cluster_broker_parse(const char *json, const char *listener_name, char *host,
                         size_t hostlen, int32_t *port)
{
    /* The endpoint of our listener first ("NAME://host:port", host possibly [v6]). */
    const char *p = json_value(json, "endpoints");
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "\"%s://", listener_name);
    const char *e = p && *p == '[' ? strstr(p, prefix) : NULL;
    const char *close = p ? strchr(p, ']') : NULL;
    if (e != NULL && close != NULL && e < close) {
        e += strlen(prefix);
        const char *q = strchr(e, '"');
        const char *colon = NULL;
        for (const char *s = e; q && s < q; s++)
            if (*s == ':')
                colon = s;
        if (q && colon && (size_t)(colon - e) < hostlen) {
            const char *h = e, *he = colon;
            if (*h == '[' && he > h + 1 && he[-1] == ']') {
                h++;
                he--;
            }
            memcpy(host, h, (size_t)(he - h));
            host[he - h] = '\0';
            *port = (int32_t)strtol(colon + 1, NULL, 10);
            return *port > 0 ? 0 : -1;
        }
    }
    int64_t v;
    if (json_string(json, "host", host, hostlen) != 0 || json_int(json, "port", &v) != 0 || v <= 0)
        return -1;
    *port = (int32_t)v;
    return 0;
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
        int n = snprintf(json, sizeof(json), "{\"version\":\"1\",\"id\":\"%s\"}", id);
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
        json_string(res->data, "id", c->cluster_id, sizeof(c->cluster_id)) != 0) {
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
    LOG_INFO(c->who, "Registered broker %d at path %s with addresses: %s://%s:%d",
             c->cfg.broker_id, path, c->listener_name, c->host, c->cfg.port);
    cluster_resume(c);
}

static void register_broker(struct cluster *c)
{
    char path[64], json[CLUSTER_JSON_MAX];
    snprintf(path, sizeof(path), "/brokers/ids/%d", c->cfg.broker_id);
    int n = cluster_broker_json(json, sizeof(json), c->listener_name, c->host, c->cfg.port,
                                now_ms());
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
    if (cluster_broker_parse(res->data, c->listener_name, b->host, sizeof(b->host), &b->port) != 0) {
        LOG_WARN(c->who, "Cannot read the endpoints of broker %d: %s", id, res->data);
        return;
    }
    if (!c->known[i])
        LOG_INFO(c->who, "Broker %d is live at %s:%d", id, b->host, b->port);
    c->known[i] = true;
    live_rebuild(c);
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
        next[i] = old ? *old : (struct cluster_broker){.id = ids[i], .port = -1};
        next_known[i] = old ? c->known[j] : false;
    }
    for (int i = 0; i < c->nbrokers; i++) {
        bool stays = false;
        for (int k = 0; k < n && !stays; k++)
            stays = next[k].id == c->brokers[i].id;
        if (!stays)
            LOG_INFO(c->who, "Broker %d is gone", c->brokers[i].id);
    }
    memcpy(c->brokers, next, sizeof(next[0]) * (size_t)n);
    memcpy(c->known, next_known, sizeof(next_known[0]) * (size_t)n);
    c->nbrokers = n;
    live_rebuild(c);
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
    int nc = snprintf(ctl, sizeof(ctl), "{\"version\":1,\"brokerid\":%d,\"timestamp\":\"%" PRId64 "\"}",
                      c->cfg.broker_id, now_ms());
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
    int64_t id;
    if (res->rc != ZK_OK || res->data == NULL || json_int(res->data, "brokerid", &id) != 0) {
        retry_later(c, "reading /controller", res->rc);
        return;
    }
    if (c->controller_id != (int32_t)id)
        LOG_INFO(c->who, "The controller is broker %d", (int)id);
    c->controller_id = (int32_t)id;
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
    if (!c->registered) {
        if (!c->register_inflight)
            register_broker(c);
        return;
    }
    if (!c->brokers_watch && !c->brokers_inflight)
        watch_brokers(c);
    if (!c->controller_watch && !c->controller_inflight && !c->elect_inflight)
        controller_check(c);
}

static void on_session(void *arg, enum zk_session_state state, uint64_t gen)
{
    struct cluster *c = arg;
    if (gen != c->gen) { /* a new session: its ephemerals and watches are to be made again */
        c->gen = gen;
        c->paths_inflight = c->id_inflight = c->register_inflight = false;
        c->brokers_inflight = c->controller_inflight = c->elect_inflight = false;
        c->registered = c->brokers_watch = c->controller_watch = false;
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

struct cluster *cluster_create(struct loop *loop, const struct cluster_config *cfg)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->cfg = *cfg;
    snprintf(c->connect, sizeof(c->connect), "%s", cfg->zookeeper_connect);
    snprintf(c->listener_name, sizeof(c->listener_name), "%s",
             cfg->listener_name ? cfg->listener_name : "PLAINTEXT");
    snprintf(c->host, sizeof(c->host), "%s", cfg->host ? cfg->host : "");
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
    return c;
}

void cluster_destroy(struct cluster *c)
{
    if (c == NULL)
        return;
    if (c->retry_timer)
        loop_timer_cancel(c->loop, c->retry_timer);
    zk_destroy(c->zk);
    free(c);
}

/* Turns the loop until done() or the deadline (mono ms); false at the deadline. */
static bool turn_until(struct cluster *c, bool (*done)(const struct cluster *), int64_t deadline)
{
    while (!done(c) && !c->fatal) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return false;
        loop_run_once(c->loop, left > 100 ? 100 : (int)left);
    }
    return !c->fatal;
}

static bool is_connected(const struct cluster *c) { return zk_connected(c->zk); }
static bool has_id(const struct cluster *c) { return c->cluster_id[0] != '\0'; }
static bool is_registered(const struct cluster *c) { return c->registered; }

int cluster_await_id(struct cluster *c, char *out, size_t outlen)
{
    LOG_INFO(c->who, "Waiting until connected.");
    if (!turn_until(c, is_connected, mono_ms() + c->cfg.connection_timeout_ms)) {
        /* Kafka's ZooKeeperClientTimeoutException: the broker does not start. */
        LOG_ERROR(c->who,
                  "Fatal error during KafkaServer startup: kafka.zookeeper."
                  "ZooKeeperClientTimeoutException: Timed out waiting for connection while in "
                  "state: CONNECTING (zookeeper.connect=%s, zookeeper.connection.timeout.ms=%d)",
                  c->connect, c->cfg.connection_timeout_ms);
        return -1;
    }
    LOG_INFO(c->who, "Connected.");
    if (!turn_until(c, has_id, mono_ms() + c->cfg.session_timeout_ms)) {
        if (!c->fatal)
            LOG_ERROR(c->who, "Timed out reading or creating /cluster/id in ZooKeeper (%d ms)",
                      c->cfg.session_timeout_ms);
        return -1;
    }
    snprintf(out, outlen, "%s", c->cluster_id);
    return 0;
}

int cluster_await_registration(struct cluster *c)
{
    c->want_register = true;
    live_rebuild(c);
    cluster_resume(c);
    if (!turn_until(c, is_registered, mono_ms() + c->cfg.session_timeout_ms)) {
        if (!c->fatal)
            LOG_ERROR(c->who, "Timed out registering broker %d in ZooKeeper (%d ms)",
                      c->cfg.broker_id, c->cfg.session_timeout_ms);
        return -1;
    }
    c->started = true;
    return 0;
}

int32_t cluster_controller_id(const struct cluster *c) { return c->controller_id; }
bool cluster_is_controller(const struct cluster *c) { return c->is_controller; }
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
