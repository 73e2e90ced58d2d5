/* zk_bootstrap: see zk_bootstrap.h. ZooKeeper's C client (the multi-threaded one Debian ships)
 * with its synchronous calls: a CLI has no event loop to keep, and each wait is bounded (the
 * session by a deadline on a condition variable, each request by the session timeout after
 * which the client fails it with a connection loss). The chroot of the connect string is the
 * C client's own ("host:port/chroot"), so paths here are Kafka's absolute ones. */
#ifndef THREADED
#define THREADED /* the synchronous API is declared for the multi-threaded library only */
#endif
#include "cli/zk_bootstrap.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#include "cli/args.h"
#include "cluster/cluster.h"
#include "cluster/znode.h"
#include "common/util.h"

/* A /brokers/ids/<id> value: Kafka 3.x's is a few hundred bytes; more listeners, more bytes. */
#define ZK_BROKER_JSON_MAX 8192
#define ZK_LISTENER_NAME_MAX 48

/* The session's state as the C client's thread reports it. */
struct zk_session_wait {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int state; /* ZOO_*_STATE, 0 until the first session event */
};

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    struct zk_session_wait *w = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&w->mu);
    w->state = state;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static const char *state_name(int state)
{
    if (state == ZOO_CONNECTED_STATE)
        return "CONNECTED";
    if (state == ZOO_EXPIRED_SESSION_STATE)
        return "EXPIRED";
    if (state == ZOO_AUTH_FAILED_STATE)
        return "AUTH_FAILED";
    return "CONNECTING";
}

static int connect_timeout_ms(void)
{
    const char *env = getenv("GREGOR_ZK_CONNECT_TIMEOUT_MS");
    long long v;
    if (env && *env) {
        if (cli_parse_long(env, 1, CLI_ZK_CONNECT_TIMEOUT_MAX_MS, &v) == 0)
            return (int)v;
        fprintf(stderr, "Ignoring GREGOR_ZK_CONNECT_TIMEOUT_MS=%s (not 1..%d); waiting %d ms\n",
                env, CLI_ZK_CONNECT_TIMEOUT_MAX_MS, CLI_ZK_CONNECT_TIMEOUT_MS);
    }
    return CLI_ZK_CONNECT_TIMEOUT_MS;
}

/* Waits until the session is connected or the deadline passes; the last state seen. */
static int await_session(struct zk_session_wait *w, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (w->state != ZOO_CONNECTED_STATE && w->state != ZOO_AUTH_FAILED_STATE &&
           w->state != ZOO_EXPIRED_SESSION_STATE) {
        if (pthread_cond_timedwait(&w->cond, &w->mu, &deadline) == ETIMEDOUT)
            break;
    }
    int state = w->state;
    pthread_mutex_unlock(&w->mu);
    return state;
}

/* The name of the first listener that listener_security_protocol_map maps to PLAINTEXT
 * ("PLAINTEXT" when there is no map, as in brokers before Kafka 0.10). 0, or -1 when the map
 * names no PLAINTEXT listener. */
static int plaintext_listener(const char *json, char *name, size_t namelen)
{
    const char *map = strstr(json, "\"listener_security_protocol_map\"");
    if (map == NULL) {
        snprintf(name, namelen, "PLAINTEXT");
        return 0;
    }
    const char *open = strchr(map + strlen("\"listener_security_protocol_map\""), '{');
    const char *close = open ? strchr(open, '}') : NULL;
    if (close == NULL)
        return -1;
    /* {"NAME":"PROTOCOL",...}: quoted strings alternate key, value. */
    const char *p = open + 1;
    for (int guard = 0; guard < 64 && p < close; guard++) {
        const char *k = strchr(p, '"');
        const char *ke = k && k < close ? strchr(k + 1, '"') : NULL;
        const char *v = ke ? strchr(ke + 1, '"') : NULL;
        const char *ve = v && v < close ? strchr(v + 1, '"') : NULL;
        if (ve == NULL || ve > close)
            return -1;
        if ((size_t)(ve - v - 1) == strlen("PLAINTEXT") && strncmp(v + 1, "PLAINTEXT", 9) == 0 &&
            (size_t)(ke - k - 1) < namelen) {
            memcpy(name, k + 1, (size_t)(ke - k - 1));
            name[ke - k - 1] = '\0';
            return 0;
        }
        p = ve + 1;
    }
    return -1;
}

static int compare_ids(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Appends broker id's PLAINTEXT endpoint to out (at *used). 1 when added, 0 when the broker
 * is gone or has none (said on stderr), -1 on a ZooKeeper error (said). */
static int append_broker(zhandle_t *zh, const char *connect, long long id, char *out,
                         size_t outlen, size_t *used)
{
    char path[64], json[ZK_BROKER_JSON_MAX];
    snprintf(path, sizeof(path), "/brokers/ids/%lld", id);
    int len = (int)sizeof(json) - 1;
    int rc = zoo_get(zh, path, 0, json, &len, NULL);
    if (rc == ZNONODE)
        return 0; /* its session ended between the listing and now */
    if (rc != ZOK) {
        fprintf(stderr, "Error reading %s from ZooKeeper at %s: %s\n", path, connect, zerror(rc));
        return -1;
    }
    json[len < 0 ? 0 : len] = '\0';
    char listener[ZK_LISTENER_NAME_MAX], host[CLUSTER_HOST_MAX];
    int32_t port;
    if (plaintext_listener(json, listener, sizeof(listener)) != 0 ||
        znode_broker_parse(json, strlen(json), listener, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "Broker %lld in ZK has no PLAINTEXT endpoint: %s\n", id, json);
        return 0;
    }
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(out + *used, outlen - *used, "%s%s%s%s:%d", *used ? "," : "", v6 ? "[" : "",
                     host, v6 ? "]" : "", port);
    if (n < 0 || (size_t)n >= outlen - *used) {
        out[*used] = '\0';
        return 0;
    }
    *used += (size_t)n;
    return 1;
}

/* The live brokers' endpoints into out; 0 or -1 (said). */
static int read_brokers(zhandle_t *zh, const char *connect, char *out, size_t outlen)
{
    struct String_vector children = {0, NULL};
    int rc = zoo_get_children(zh, "/brokers/ids", 0, &children);
    if (rc != ZOK && rc != ZNONODE) {
        fprintf(stderr, "Error listing /brokers/ids in ZooKeeper at %s: %s\n", connect,
                zerror(rc));
        return -1;
    }
    long long ids[CLI_ZK_BROKERS_MAX];
    int nids = 0;
    for (int i = 0; rc == ZOK && i < children.count; i++) {
        long long id;
        if (cli_parse_long(children.data[i], 0, INT32_MAX, &id) != 0)
            continue; /* not a broker id */
        if (nids < CLI_ZK_BROKERS_MAX) {
            ids[nids++] = id;
            continue;
        }
        /* Keep the lowest ids: replace the largest kept when this one is smaller. */
        int max = 0;
        for (int j = 1; j < nids; j++)
            if (ids[j] > ids[max])
                max = j;
        if (id < ids[max])
            ids[max] = id;
    }
    if (rc == ZOK)
        deallocate_String_vector(&children);
    qsort(ids, (size_t)nids, sizeof(ids[0]), compare_ids);
    size_t used = 0;
    int added = 0;
    out[0] = '\0';
    for (int i = 0; i < nids; i++) {
        int r = append_broker(zh, connect, ids[i], out, outlen, &used);
        if (r < 0)
            return -1;
        added += r;
    }
    if (added == 0) {
        fprintf(stderr, "No brokers found in ZK. (ZooKeeper at %s has no live broker under "
                "/brokers/ids)\n", connect);
        return -1;
    }
    return 0;
}

int cli_zk_bootstrap(const char *connect, char *out, size_t outlen)
{
    GREGOR_ASSERT(connect != NULL && out != NULL && outlen > 0);
    int timeout_ms = connect_timeout_ms();
    struct zk_session_wait w = {.state = 0};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, &attr);
    pthread_condattr_destroy(&attr);

    /* The C client logs each refused connection on stderr; the one error that matters is ours. */
    zoo_set_debug_level(0);
    int rc = -1;
    zhandle_t *zh = zookeeper_init(connect, session_watcher, timeout_ms, NULL, &w, 0);
    if (zh == NULL) {
        fprintf(stderr, "Error: cannot use ZooKeeper connect string \"%s\": %s\n", connect,
                strerror(errno));
        goto out;
    }
    int state = await_session(&w, timeout_ms);
    if (state == ZOO_AUTH_FAILED_STATE || state == ZOO_EXPIRED_SESSION_STATE) {
        fprintf(stderr, "Error: ZooKeeper at %s ended the session while connecting: %s\n",
                connect, state_name(state));
        goto out;
    }
    if (state != ZOO_CONNECTED_STATE) {
        /* Kafka's ZooKeeperClient says exactly this (a ZooKeeperClientTimeoutException). */
        fprintf(stderr, "Error: Timed out waiting for connection while in state: %s "
                "(ZooKeeper at %s, %d ms)\n", state_name(state), connect, timeout_ms);
        goto out;
    }
    rc = read_brokers(zh, connect, out, outlen);
out:
    if (zh != NULL)
        zookeeper_close(zh);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mu);
    return rc;
}
