/* zk: see zk.h. The C client's threads only copy and queue (zk_event under mu, eventfd
 * written); the loop thread owns every other field, the pending ops and the watchers. The
 * chroot of zookeeper.connect is applied here (paths prefixed, watch paths stripped), after
 * creating it once per session as Kafka does, so callers use Kafka's absolute paths. */
#include "cluster/zk.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include "common/logging.h"
#include "common/util.h"
#include "net/loop.h"

#define ZK_WHO "ZooKeeperClient"
#define ZK_PATH_MAX 1024
/* zk_destroy waits this long at most for the operations in flight to complete. */
#define ZK_CLOSE_DRAIN_MS 1000

/* One operation in flight; its address is the C client's completion context. */
struct zk_pending {
    struct zk_pending *prev, *next; /* z->pending, loop thread only */
    struct zk *z;
    uint64_t gen;
    zk_done_fn done;
    void *arg;
    struct zk_watcher *watcher;     /* registered with it (NULL: none) */
    bool internal;                  /* the chroot's creation: not reported */
    bool queued;                    /* its completion is queued (purge_closed_handle) */
    int nops;
    zoo_op_result_t results[ZK_MULTI_MAX];
    char *created;                  /* multi: the paths its creates made (ZK_PATH_MAX each) */
    char *path;                     /* the caller's path (a multi's first op's) */
};

/* A one-shot watch; its address is the C client's watcher context. */
struct zk_watcher {
    struct zk_watcher *prev, *next; /* z->watchers, loop thread only */
    struct zk *z;
    uint64_t gen;                   /* the handle it was set on */
    bool queued;                    /* an event of it is queued (purge_closed_handle) */
    zk_watch_fn fn;
    void *arg;
};

/* The context of one zookeeper_init handle (its global watcher): a replaced handle's late
 * session events are recognised by gen. */
struct zk_handle_ctx {
    struct zk *z;
    uint64_t gen;
};

enum zk_event_kind { ZK_EV_SESSION, ZK_EV_WATCH, ZK_EV_DONE };

struct zk_event {
    struct zk_event *next;
    enum zk_event_kind kind;
    uint64_t gen;                   /* session events */
    int state;                      /* session events: ZOO_*_STATE */
    int type;                       /* watch events */
    char *path;                     /* watch events (full path) */
    struct zk_watcher *watcher;
    struct zk_pending *op;
    int rc;
    char *data;
    int len;
    bool has_stat;
    struct Stat stat;
    char **children;
    int nchildren;
    int multi_failed_index;
};

struct zk {
    struct loop *loop;
    int efd;
    char hosts[ZK_PATH_MAX];
    char chroot[ZK_PATH_MAX];
    int session_timeout_ms;
    zk_session_fn on_session;
    void *arg;
    zhandle_t *zh;
    struct zk_handle_ctx *hctx;
    uint64_t gen;                   /* the current handle's */
    bool connected;                 /* connected and the chroot exists */
    int64_t session_id;
    int chroot_step;                /* components of the chroot created so far */
    struct zk_pending *pending;
    int inflight;
    struct zk_watcher *watchers;
    pthread_mutex_t mu;
    struct zk_event *head, *tail;   /* under mu */
    struct zk_event *dispatching;   /* the rest of the batch zk_dispatch took off the queue */
    /* An expired session's handle, kept open until its operations' completions came (the
     * client fails them all at the expiry; 3.8's zookeeper_close drops those it has not
     * delivered yet), then closed; closed anyway after a session timeout. */
    zhandle_t *retiring;
    struct zk_handle_ctx *retiring_ctx;
    uint64_t retiring_gen;
    uint64_t retiring_timer;
    bool closing;                   /* zk_destroy runs: no new operation, no new session */
};

/* ---- client threads: copy, queue, wake ---- */

static void zk_enqueue(struct zk *z, struct zk_event *ev)
{
    pthread_mutex_lock(&z->mu);
    if (z->tail)
        z->tail->next = ev;
    else
        z->head = ev;
    z->tail = ev;
    pthread_mutex_unlock(&z->mu);
    uint64_t one = 1;
    while (write(z->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

static struct zk_event *zk_event_new(enum zk_event_kind kind, int rc)
{
    struct zk_event *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        abort(); /* a client thread cannot report it otherwise; events are small */
    ev->kind = kind;
    ev->rc = rc;
    ev->multi_failed_index = -1;
    return ev;
}

static void zk_global_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    struct zk_handle_ctx *h = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    struct zk_event *ev = zk_event_new(ZK_EV_SESSION, 0);
    ev->gen = h->gen;
    ev->state = state;
    zk_enqueue(h->z, ev);
}

static void zk_path_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    struct zk_watcher *w = ctx;
    /* Session events reach every watcher; only expiry ends one that never fired. */
    if (type == ZOO_SESSION_EVENT && state != ZOO_EXPIRED_SESSION_STATE)
        return;
    struct zk_event *ev = zk_event_new(ZK_EV_WATCH, 0);
    ev->watcher = w;
    ev->type = type == ZOO_SESSION_EVENT ? 0 : type;
    ev->path = strdup(path ? path : "");
    zk_enqueue(w->z, ev);
}

static char *copy_data(const char *value, int len)
{
    if (value == NULL || len < 0)
        return NULL;
    char *d = malloc((size_t)len + 1);
    if (d == NULL)
        abort();
    memcpy(d, value, (size_t)len);
    d[len] = '\0';
    return d;
}

static void done_data(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
    struct zk_pending *op = (struct zk_pending *)data;
    struct zk_event *ev = zk_event_new(ZK_EV_DONE, rc);
    ev->op = op;
    if (rc == ZOK && len > ZK_DATA_MAX)
        ev->rc = ZK_TOO_BUSY;
    else if (rc == ZOK) {
        ev->data = copy_data(value, len);
        ev->len = ev->data ? len : 0;
    }
    if (stat) {
        ev->stat = *stat;
        ev->has_stat = true;
    }
    zk_enqueue(op->z, ev);
}

static void done_stat(int rc, const struct Stat *stat, const void *data)
{
    done_data(rc, NULL, 0, stat, data);
}

static void done_string(int rc, const char *value, const void *data)
{
    struct zk_pending *op = (struct zk_pending *)data;
    struct zk_event *ev = zk_event_new(ZK_EV_DONE, rc);
    ev->op = op;
    if (rc == ZOK && value)
        ev->data = copy_data(value, (int)strlen(value));
    zk_enqueue(op->z, ev);
}

static void done_void(int rc, const void *data)
{
    struct zk_pending *op = (struct zk_pending *)data;
    struct zk_event *ev = zk_event_new(ZK_EV_DONE, rc);
    ev->op = op;
    for (int i = 0; i < op->nops; i++)
        if (op->results[i].err != ZOK) {
            ev->multi_failed_index = i;
            break;
        }
    zk_enqueue(op->z, ev);
}

static void done_children(int rc, const struct String_vector *strings, const struct Stat *stat,
                          const void *data)
{
    struct zk_pending *op = (struct zk_pending *)data;
    struct zk_event *ev = zk_event_new(ZK_EV_DONE, rc);
    ev->op = op;
    if (rc == ZOK && strings && strings->count > ZK_CHILDREN_MAX)
        ev->rc = ZK_TOO_BUSY;
    else if (rc == ZOK && strings && strings->count > 0) {
        ev->children = calloc((size_t)strings->count, sizeof(char *));
        if (ev->children == NULL)
            abort();
        for (int i = 0; i < strings->count; i++)
            if ((ev->children[i] = strdup(strings->data[i])) == NULL)
                abort();
        ev->nchildren = strings->count;
    }
    if (stat) {
        ev->stat = *stat;
        ev->has_stat = true;
    }
    zk_enqueue(op->z, ev);
}

/* ---- loop thread ---- */

static void zk_event_free(struct zk_event *ev)
{
    free(ev->path);
    free(ev->data);
    for (int i = 0; i < ev->nchildren; i++)
        free(ev->children[i]);
    free(ev->children);
    free(ev);
}

static void pending_unlink(struct zk *z, struct zk_pending *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        z->pending = op->next;
    if (op->next)
        op->next->prev = op->prev;
    z->inflight--;
    GREGOR_ASSERT(z->inflight >= 0);
}

static void watcher_unlink_free(struct zk *z, struct zk_watcher *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        z->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
}

/* The caller's path under the chroot. -1 when too long. */
static int full_path(const struct zk *z, const char *path, char *out)
{
    int n = snprintf(out, ZK_PATH_MAX, "%s%s", z->chroot,
                     (z->chroot[0] && strcmp(path, "/") == 0) ? "" : path);
    return n > 0 && n < ZK_PATH_MAX ? 0 : -1;
}

static const char *strip_chroot(const struct zk *z, const char *path)
{
    size_t n = strlen(z->chroot);
    if (n > 0 && strncmp(path, z->chroot, n) == 0)
        return path[n] ? path + n : "/";
    return path;
}

static void zk_report_session(struct zk *z, enum zk_session_state st)
{
    if (z->on_session)
        z->on_session(z->arg, st, z->gen);
}

static int zk_start_handle(struct zk *z);
static void chroot_next(struct zk *z);

static void chroot_done(struct zk *z, int rc)
{
    if (rc != ZOK && rc != ZNODEEXISTS) {
        /* Lost the connection meanwhile: the next CONNECTED starts over. */
        LOG_WARN(ZK_WHO, "cannot create the chroot %s: %s", z->chroot, zerror(rc));
        return;
    }
    chroot_next(z);
}

/* Creates the chroot's components one at a time, then reports the session connected. */
static void chroot_next(struct zk *z)
{
    const char *c = z->chroot;
    int seen = 0;
    size_t end = 0;
    for (size_t i = 1; c[i - 1]; i++)
        if (c[i] == '/' || c[i] == '\0') {
            if (seen++ == z->chroot_step) {
                end = i;
                break;
            }
        }
    if (end == 0) {
        z->connected = true;
        zk_report_session(z, ZK_SESSION_CONNECTED);
        return;
    }
    z->chroot_step++;
    char prefix[ZK_PATH_MAX];
    snprintf(prefix, sizeof(prefix), "%.*s", (int)end, c);
    struct zk_pending *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->z = z;
    op->gen = z->gen;
    op->internal = true;
    op->next = z->pending;
    if (z->pending)
        z->pending->prev = op;
    z->pending = op;
    z->inflight++;
    int rc = zoo_acreate(z->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, done_string, op);
    if (rc != ZOK) {
        pending_unlink(z, op);
        free(op);
        chroot_done(z, rc);
    }
}

static void mark_queued(struct zk_event *ev)
{
    for (; ev; ev = ev->next) {
        if (ev->kind == ZK_EV_WATCH)
            ev->watcher->queued = true;
        else if (ev->kind == ZK_EV_DONE) {
            ev->op->queued = true;
            if (ev->op->watcher) /* its completion decides about it */
                ev->op->watcher->queued = true;
        }
    }
}

/* After zookeeper_close of handle gen, whose threads are gone: its operations that never
 * completed and its watches that will never fire are freed now (not at zk_destroy), so that
 * sessions replaced one after another hold no memory. Those with an event still to dispatch
 * (queued, or later in the batch being dispatched: an expiry often arrives in one batch with
 * completions of the same session) are freed when it is dispatched. An operation dropped here
 * is completed with ZK_SESSION_EXPIRED_ERR when notify (zk.h: every completion arrives). */
static void purge_closed_handle(struct zk *z, uint64_t gen, bool notify)
{
    mark_queued(z->dispatching);
    pthread_mutex_lock(&z->mu);
    mark_queued(z->head);
    pthread_mutex_unlock(&z->mu);
    struct zk_pending *dropped = NULL;
    for (struct zk_pending *op = z->pending, *next; op; op = next) {
        next = op->next;
        if (op->gen == gen && !op->queued) {
            if (op->watcher && !op->watcher->queued)
                watcher_unlink_free(z, op->watcher);
            op->watcher = NULL;
            pending_unlink(z, op);
            op->next = dropped;
            dropped = op;
        }
    }
    for (struct zk_watcher *w = z->watchers, *next; w; w = next) {
        next = w->next;
        if (w->gen == gen && !w->queued)
            watcher_unlink_free(z, w);
    }
    while (dropped) {
        struct zk_pending *op = dropped;
        dropped = op->next;
        if (notify && !op->internal && op->done) {
            struct zk_result res = {.rc = ZK_SESSION_EXPIRED_ERR, .session_gen = op->gen,
                                    .path = op->path, .multi_failed_index = -1};
            op->done(op->arg, &res);
        }
        free(op->created);
        free(op->path);
        free(op);
    }
}

static bool has_pending(const struct zk *z, uint64_t gen)
{
    for (const struct zk_pending *op = z->pending; op; op = op->next)
        if (op->gen == gen)
            return true;
    return false;
}

/* Closes the expired session's handle (joining its threads) and frees what it left. */
static void close_retiring(struct zk *z, bool notify)
{
    if (z->retiring == NULL)
        return;
    if (z->retiring_timer)
        loop_timer_cancel(z->loop, z->retiring_timer);
    z->retiring_timer = 0;
    zookeeper_close(z->retiring);
    free(z->retiring_ctx);
    z->retiring = NULL;
    z->retiring_ctx = NULL;
    purge_closed_handle(z, z->retiring_gen, notify);
}

static void on_retiring_timeout(struct loop *l, void *arg)
{
    (void)l;
    struct zk *z = arg;
    z->retiring_timer = 0;
    if (z->retiring && has_pending(z, z->retiring_gen))
        LOG_WARN(ZK_WHO, "operations of the expired session still had no completion after %d ms; "
                 "failing them", z->session_timeout_ms);
    close_retiring(z, true);
}

/* The current handle's session expired: it retires (one at a time) and a new one starts. */
static void retire_current(struct zk *z)
{
    close_retiring(z, true);
    z->retiring = z->zh;
    z->retiring_ctx = z->hctx;
    z->retiring_gen = z->gen;
    z->zh = NULL;
    z->hctx = NULL;
    z->retiring_timer = loop_timer_add(z->loop, mono_ms() + z->session_timeout_ms,
                                       on_retiring_timeout, z);
}

static void on_session_event(struct zk *z, struct zk_event *ev)
{
    if (ev->gen != z->gen || z->closing)
        return; /* a replaced handle's, or no new session at the end */
    if (ev->state == ZOO_CONNECTED_STATE) {
        const clientid_t *id = zoo_client_id(z->zh);
        z->session_id = id ? id->client_id : 0;
        LOG_INFO(ZK_WHO, "Connected to %s, session 0x%llx (timeout %d ms)", z->hosts,
                 (unsigned long long)z->session_id, zoo_recv_timeout(z->zh));
        z->chroot_step = 0;
        chroot_next(z);
    } else if (ev->state == ZOO_CONNECTING_STATE || ev->state == ZOO_ASSOCIATING_STATE) {
        bool was = z->connected;
        z->connected = false;
        if (was) {
            LOG_WARN(ZK_WHO, "Disconnected from %s; the client reconnects", z->hosts);
            zk_report_session(z, ZK_SESSION_CONNECTING);
        }
    } else if (ev->state == ZOO_EXPIRED_SESSION_STATE) {
        LOG_WARN(ZK_WHO, "Session 0x%llx expired; starting a new session",
                 (unsigned long long)z->session_id);
        z->connected = false;
        zk_report_session(z, ZK_SESSION_EXPIRED);
        retire_current(z);
        if (zk_start_handle(z) != 0)
            LOG_ERROR(ZK_WHO, "cannot start a new ZooKeeper session: %s", strerror(errno));
    } else if (ev->state == ZOO_AUTH_FAILED_STATE) {
        LOG_ERROR(ZK_WHO, "ZooKeeper authentication failed");
        z->connected = false;
        zk_report_session(z, ZK_SESSION_AUTH_FAILED);
    }
}

static void on_done_event(struct zk *z, struct zk_event *ev)
{
    struct zk_pending *op = ev->op;
    GREGOR_ASSERT(op->z == z && op->gen <= z->gen);
    pending_unlink(z, op);
    if (op->watcher) {
        /* Registered: get / children on success; exists also when the node is missing. */
        bool kept = ev->rc == ZOK || (ev->rc == ZNONODE && op->nops == -1);
        if (!kept)
            watcher_unlink_free(z, op->watcher);
    }
    if (op->internal) {
        if (op->gen == z->gen)
            chroot_done(z, ev->rc);
        free(op);
        return;
    }
    struct zk_result res = {
        .rc = ev->rc,
        .session_gen = op->gen,
        .path = op->path,
        .data = ev->data,
        .len = ev->len,
        .has_stat = ev->has_stat,
        .created_path = NULL,
        .children = ev->children,
        .nchildren = ev->nchildren,
        .multi_failed_index = ev->multi_failed_index,
    };
    if (ev->has_stat)
        res.stat = (struct zk_stat){.version = ev->stat.version,
                                    .cversion = ev->stat.cversion,
                                    .ephemeral_owner = ev->stat.ephemeralOwner,
                                    .czxid = ev->stat.czxid,
                                    .mzxid = ev->stat.mzxid,
                                    .ctime_ms = ev->stat.ctime,
                                    .num_children = ev->stat.numChildren};
    if (op->nops == -2) { /* create: the data is the path made */
        res.created_path = ev->data ? strip_chroot(z, ev->data) : NULL;
        res.data = NULL;
        res.len = 0;
    }
    zk_done_fn done = op->done;
    void *arg = op->arg;
    if (done)
        done(arg, &res);
    free(op->created);
    free(op->path);
    free(op);
}

static void on_watch_event(struct zk *z, struct zk_event *ev)
{
    struct zk_watcher *w = ev->watcher;
    GREGOR_ASSERT(w->z == z && w->gen <= z->gen);
    zk_watch_fn fn = w->fn;
    void *arg = w->arg;
    uint64_t w_gen = w->gen;
    watcher_unlink_free(z, w);
    if (ev->type == 0)
        return; /* the session expired: it will never fire */
    if (fn && w_gen == z->gen)
        fn(arg, (enum zk_watch_type)ev->type, strip_chroot(z, ev->path), w_gen);
}

void zk_dispatch(struct zk *z)
{
    uint64_t n;
    while (read(z->efd, &n, sizeof(n)) < 0 && errno == EINTR) {
    }
    GREGOR_ASSERT(z->dispatching == NULL);
    pthread_mutex_lock(&z->mu);
    z->dispatching = z->head;
    z->head = z->tail = NULL;
    pthread_mutex_unlock(&z->mu);
    while (z->dispatching) {
        struct zk_event *ev = z->dispatching;
        z->dispatching = ev->next;
        if (ev->kind == ZK_EV_SESSION)
            on_session_event(z, ev);
        else if (ev->kind == ZK_EV_DONE)
            on_done_event(z, ev);
        else
            on_watch_event(z, ev);
        zk_event_free(ev);
    }
    if (z->retiring && !has_pending(z, z->retiring_gen))
        close_retiring(z, true);
}

static void zk_on_efd(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)fd;
    (void)events;
    zk_dispatch(arg);
}

static int zk_start_handle(struct zk *z)
{
    struct zk_handle_ctx *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    h->z = z;
    h->gen = ++z->gen;
    z->hctx = h;
    z->session_id = 0;
    z->zh = zookeeper_init(z->hosts, zk_global_watcher, z->session_timeout_ms, NULL, h, 0);
    if (z->zh == NULL) {
        free(h);
        z->hctx = NULL;
        return -1;
    }
    return 0;
}

int zk_connect_string_parse(const char *connect, char *hosts, size_t hosts_len, char *chroot,
                            size_t chroot_len)
{
    const char *slash = strchr(connect, '/');
    size_t hl = slash ? (size_t)(slash - connect) : strlen(connect);
    if (hl == 0 || hl >= hosts_len)
        return -1;
    memcpy(hosts, connect, hl);
    hosts[hl] = '\0';
    const char *c = slash ? slash : "";
    size_t cl = strlen(c);
    while (cl > 1 && c[cl - 1] == '/') /* "/kafka/" is "/kafka"; "/" alone is no chroot */
        cl--;
    if (cl == 1)
        cl = 0;
    if (cl >= chroot_len || strstr(c, "//") != NULL)
        return -1;
    memcpy(chroot, c, cl);
    chroot[cl] = '\0';
    return 0;
}

struct zk *zk_create(struct loop *loop, const char *connect, int session_timeout_ms,
                     zk_session_fn on_session, void *arg)
{
    struct zk *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return NULL;
    if (zk_connect_string_parse(connect, z->hosts, sizeof(z->hosts), z->chroot,
                                sizeof(z->chroot)) != 0) {
        LOG_ERROR(ZK_WHO, "Invalid zookeeper.connect %s", connect);
        free(z);
        return NULL;
    }
    z->loop = loop;
    z->session_timeout_ms = session_timeout_ms;
    z->on_session = on_session;
    z->arg = arg;
    pthread_mutex_init(&z->mu, NULL);
    z->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (z->efd < 0 || loop_set(loop, z->efd, LOOP_READ, zk_on_efd, z) != 0) {
        LOG_ERROR(ZK_WHO, "cannot set up the ZooKeeper event queue: %s", strerror(errno));
        if (z->efd >= 0)
            close(z->efd);
        pthread_mutex_destroy(&z->mu);
        free(z);
        return NULL;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    LOG_INFO(ZK_WHO, "Initializing a new session to %s%s%s.", z->hosts,
             z->chroot[0] ? " with chroot " : "", z->chroot);
    if (zk_start_handle(z) != 0) {
        LOG_ERROR(ZK_WHO, "cannot start a ZooKeeper client for %s: %s", z->hosts,
                  strerror(errno));
        zk_destroy(z);
        return NULL;
    }
    return z;
}

/* Lets the operations in flight complete (their callbacks run; new operations are refused
 * with ZK_CLOSING), for at most ZK_CLOSE_DRAIN_MS: libzookeeper_mt 3.8's zookeeper_close drops
 * the completions its thread has not delivered yet, leaking them. */
static void drain_before_close(struct zk *z)
{
    z->closing = true;
    int64_t deadline = mono_ms() + ZK_CLOSE_DRAIN_MS;
    while (z->inflight > 0) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            LOG_WARN(ZK_WHO, "%d ZooKeeper operations still in flight at the close", z->inflight);
            return;
        }
        struct pollfd p = {.fd = z->efd, .events = POLLIN};
        if (poll(&p, 1, (int)left) > 0)
            zk_dispatch(z);
    }
}

void zk_destroy(struct zk *z)
{
    if (z == NULL)
        return;
    drain_before_close(z);
    /* Joins the client's threads: no callback runs after this (pending completions may run
     * from here, with ZCLOSING: they are only queued). */
    if (z->retiring_timer)
        loop_timer_cancel(z->loop, z->retiring_timer);
    if (z->retiring)
        zookeeper_close(z->retiring);
    free(z->retiring_ctx);
    if (z->zh)
        zookeeper_close(z->zh);
    free(z->hctx);
    loop_del(z->loop, z->efd);
    close(z->efd);
    for (struct zk_event *ev = z->head, *next; ev; ev = next) {
        next = ev->next;
        zk_event_free(ev);
    }
    while (z->pending) {
        struct zk_pending *op = z->pending;
        pending_unlink(z, op);
        free(op->created);
        free(op->path);
        free(op);
    }
    while (z->watchers)
        watcher_unlink_free(z, z->watchers);
    pthread_mutex_destroy(&z->mu);
    free(z);
}

uint64_t zk_session_gen(const struct zk *z) { return z->gen; }
bool zk_connected(const struct zk *z) { return z->connected; }
int64_t zk_session_id(const struct zk *z) { return z->session_id; }

/* A pending op linked in, or NULL (ZK_TOO_BUSY in *rc) at the bound. nops: 0 plain, -1 exists,
 * -2 create, >0 multi. */
static struct zk_pending *pending_new(struct zk *z, const char *path, zk_done_fn done, void *arg,
                                      int nops, int *rc)
{
    if (z->zh == NULL || z->closing) {
        *rc = z->closing ? ZK_CLOSING : ZK_CONNECTION_LOSS;
        return NULL;
    }
    if (z->inflight >= ZK_INFLIGHT_MAX) {
        *rc = ZK_TOO_BUSY;
        return NULL;
    }
    struct zk_pending *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        *rc = ZK_TOO_BUSY;
        return NULL;
    }
    op->path = strdup(path);
    if (op->path == NULL) {
        free(op);
        *rc = ZK_TOO_BUSY;
        return NULL;
    }
    op->z = z;
    op->gen = z->gen;
    op->done = done;
    op->arg = arg;
    op->nops = nops;
    op->next = z->pending;
    if (z->pending)
        z->pending->prev = op;
    z->pending = op;
    z->inflight++;
    GREGOR_ASSERT(z->inflight <= ZK_INFLIGHT_MAX);
    return op;
}

static struct zk_watcher *watcher_new(struct zk *z, zk_watch_fn fn, void *arg)
{
    struct zk_watcher *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->z = z;
    w->gen = z->gen;
    w->fn = fn;
    w->arg = arg;
    w->next = z->watchers;
    if (z->watchers)
        z->watchers->prev = w;
    z->watchers = w;
    return w;
}

/* Undoes pending_new (and the watcher) when the client refused the call outright. */
static int submit_failed(struct zk *z, struct zk_pending *op, int rc)
{
    if (op->watcher)
        watcher_unlink_free(z, op->watcher);
    pending_unlink(z, op);
    free(op->created);
    free(op->path);
    free(op);
    return rc;
}

int zk_create_node(struct zk *z, const char *path, const void *data, int len, bool ephemeral,
                   zk_done_fn done, void *arg)
{
    char full[ZK_PATH_MAX];
    int rc;
    if (full_path(z, path, full) != 0 || len > ZK_DATA_MAX)
        return ZBADARGUMENTS;
    struct zk_pending *op = pending_new(z, path, done, arg, -2, &rc);
    if (op == NULL)
        return rc;
    rc = zoo_acreate(z->zh, full, data, data ? len : -1, &ZOO_OPEN_ACL_UNSAFE,
                     ephemeral ? ZOO_EPHEMERAL : 0, done_string, op);
    return rc == ZOK ? 0 : submit_failed(z, op, rc);
}

int zk_create_sequential(struct zk *z, const char *prefix, const void *data, int len,
                         zk_done_fn done, void *arg)
{
    char full[ZK_PATH_MAX];
    int rc;
    if (full_path(z, prefix, full) != 0 || len > ZK_DATA_MAX)
        return ZBADARGUMENTS;
    struct zk_pending *op = pending_new(z, prefix, done, arg, -2, &rc);
    if (op == NULL)
        return rc;
    rc = zoo_acreate(z->zh, full, data, data ? len : -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE,
                     done_string, op);
    return rc == ZOK ? 0 : submit_failed(z, op, rc);
}

static int get_like(struct zk *z, const char *path, zk_watch_fn watch, void *watch_arg,
                    zk_done_fn done, void *arg, int kind)
{
    char full[ZK_PATH_MAX];
    int rc;
    if (full_path(z, path, full) != 0)
        return ZBADARGUMENTS;
    struct zk_pending *op = pending_new(z, path, done, arg, kind == 1 ? -1 : 0, &rc);
    if (op == NULL)
        return rc;
    if (watch) {
        op->watcher = watcher_new(z, watch, watch_arg);
        if (op->watcher == NULL)
            return submit_failed(z, op, ZK_TOO_BUSY);
    }
    watcher_fn wfn = watch ? zk_path_watcher : NULL;
    if (kind == 0)
        rc = zoo_awget(z->zh, full, wfn, op->watcher, done_data, op);
    else if (kind == 1)
        rc = zoo_awexists(z->zh, full, wfn, op->watcher, done_stat, op);
    else
        rc = zoo_awget_children2(z->zh, full, wfn, op->watcher, done_children, op);
    return rc == ZOK ? 0 : submit_failed(z, op, rc);
}

int zk_get(struct zk *z, const char *path, zk_watch_fn watch, void *watch_arg, zk_done_fn done,
           void *arg)
{
    return get_like(z, path, watch, watch_arg, done, arg, 0);
}

int zk_exists(struct zk *z, const char *path, zk_watch_fn watch, void *watch_arg,
              zk_done_fn done, void *arg)
{
    return get_like(z, path, watch, watch_arg, done, arg, 1);
}

int zk_get_children(struct zk *z, const char *path, zk_watch_fn watch, void *watch_arg,
                    zk_done_fn done, void *arg)
{
    return get_like(z, path, watch, watch_arg, done, arg, 2);
}

int zk_set(struct zk *z, const char *path, const void *data, int len, int32_t version,
           zk_done_fn done, void *arg)
{
    char full[ZK_PATH_MAX];
    int rc;
    if (full_path(z, path, full) != 0 || len > ZK_DATA_MAX)
        return ZBADARGUMENTS;
    struct zk_pending *op = pending_new(z, path, done, arg, 0, &rc);
    if (op == NULL)
        return rc;
    rc = zoo_aset(z->zh, full, data, data ? len : -1, version, done_stat, op);
    return rc == ZOK ? 0 : submit_failed(z, op, rc);
}

int zk_delete(struct zk *z, const char *path, int32_t version, zk_done_fn done, void *arg)
{
    char full[ZK_PATH_MAX];
    int rc;
    if (full_path(z, path, full) != 0)
        return ZBADARGUMENTS;
    struct zk_pending *op = pending_new(z, path, done, arg, 0, &rc);
    if (op == NULL)
        return rc;
    rc = zoo_adelete(z->zh, full, version, done_void, op);
    return rc == ZOK ? 0 : submit_failed(z, op, rc);
}

int zk_multi(struct zk *z, const struct zk_op *ops, int nops, zk_done_fn done, void *arg)
{
    if (nops <= 0 || nops > ZK_MULTI_MAX)
        return ZBADARGUMENTS;
    char *created = calloc((size_t)nops, ZK_PATH_MAX);
    if (created == NULL)
        return ZK_TOO_BUSY;
    char paths[ZK_MULTI_MAX][ZK_PATH_MAX]; /* serialized by zoo_amulti itself */
    zoo_op_t zops[ZK_MULTI_MAX];
    for (int i = 0; i < nops; i++) {
        if (full_path(z, ops[i].path, paths[i]) != 0 || ops[i].len > ZK_DATA_MAX) {
            free(created);
            return ZBADARGUMENTS;
        }
        const char *d = ops[i].data;
        int dl = d ? ops[i].len : -1;
        switch (ops[i].kind) {
        case ZK_OP_CREATE:
        case ZK_OP_CREATE_EPHEMERAL:
            zoo_create_op_init(&zops[i], paths[i], d, dl, &ZOO_OPEN_ACL_UNSAFE,
                               ops[i].kind == ZK_OP_CREATE_EPHEMERAL ? ZOO_EPHEMERAL : 0,
                               created + (size_t)i * ZK_PATH_MAX, ZK_PATH_MAX);
            break;
        case ZK_OP_SET:
            zoo_set_op_init(&zops[i], paths[i], d, dl, ops[i].version, NULL);
            break;
        case ZK_OP_DELETE:
            zoo_delete_op_init(&zops[i], paths[i], ops[i].version);
            break;
        case ZK_OP_CHECK:
            zoo_check_op_init(&zops[i], paths[i], ops[i].version);
            break;
        }
    }
    int rc;
    struct zk_pending *op = pending_new(z, ops[0].path, done, arg, nops, &rc);
    if (op == NULL) {
        free(created);
        return rc;
    }
    op->created = created;
    rc = zoo_amulti(z->zh, nops, zops, op->results, done_void, op);
    return rc == ZOK ? 0 : submit_failed(z, op, rc);
}
