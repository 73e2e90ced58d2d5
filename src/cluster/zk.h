/* zk: the one small interface to ZooKeeper. Everything it reports (session changes, completions,
 * watch events) is handed to the loop thread: callers never see the client library's threads.
 *
 * Debian ships only the multi-threaded C client (libzookeeper_mt: an I/O thread and a completion
 * thread per session). Its callbacks copy what they carry into an event, queue it under a mutex
 * and wake the loop through an eventfd (as broker/iowork.c does); the loop drains the queue and
 * calls the callers' functions. So all cluster state stays on the loop thread, unlocked.
 *
 * A session that expires is replaced by a new one (zk_session_gen goes up, on_session reports
 * ZK_SESSION_EXPIRED then ZK_SESSION_CONNECTED): the caller registers its ephemeral nodes and
 * watches again. Completions of a replaced session still arrive (with its gen in the result and
 * an error code), so that whoever allocated a completion's arg can free it. */
#ifndef GREGOR_CLUSTER_ZK_H
#define GREGOR_CLUSTER_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct zk;

/* ZooKeeper's error codes (ZOO_ERRORS) that callers act on; any other is passed through. */
#define ZK_OK 0
#define ZK_CONNECTION_LOSS (-4)
#define ZK_SESSION_EXPIRED_ERR (-112)
#define ZK_NO_NODE (-101)
#define ZK_NODE_EXISTS (-110)
#define ZK_BAD_VERSION (-103)
#define ZK_NOT_EMPTY (-111)
#define ZK_CLOSING (-116)
#define ZK_TOO_BUSY (-1000) /* gregor's: the bound on operations in flight was reached */

/* The longest node value read or written (Kafka's znodes are small JSON; ZooKeeper's own
 * jute.maxbuffer is 1 MiB by default). */
#define ZK_DATA_MAX (64 * 1024)
/* Operations in flight at once (each holds one queued completion at most). */
#define ZK_INFLIGHT_MAX 4096
/* Children listed by one get-children (the most brokers / topics / partitions a list holds). */
#define ZK_CHILDREN_MAX 100000
#define ZK_MULTI_MAX 16

enum zk_session_state {
    ZK_SESSION_CONNECTED,  /* a session is (again) connected: ephemerals and watches hold */
    ZK_SESSION_CONNECTING, /* disconnected: the client tries the servers; the session may live */
    ZK_SESSION_EXPIRED,    /* the session is gone (ephemerals deleted); a new one is starting */
    ZK_SESSION_AUTH_FAILED,
};

enum zk_watch_type {
    ZK_WATCH_CREATED = 1,
    ZK_WATCH_DELETED = 2,
    ZK_WATCH_CHANGED = 3,
    ZK_WATCH_CHILD = 4,
    ZK_WATCH_NOT_WATCHING = -2,
};

struct zk_stat {
    int32_t version;           /* data version (for versioned set/delete) */
    int32_t cversion;
    int64_t ephemeral_owner;   /* session id of the owner, 0 when persistent */
    int64_t czxid, mzxid;
    int64_t ctime_ms;          /* creation time (the server's clock) */
    int32_t num_children;
};

/* What an operation returned. Borrowed for the duration of the callback. */
struct zk_result {
    int rc;                    /* ZK_OK or a ZooKeeper error */
    uint64_t session_gen;      /* the session the operation ran in */
    const char *path;          /* the path asked for (a multi's first op's) */
    const char *data;          /* get: the value (NUL-terminated copy), len bytes; NULL if none */
    int len;
    bool has_stat;
    struct zk_stat stat;       /* get / set / exists */
    const char *created_path;  /* create: the path made (sequential nodes) */
    char **children;           /* get-children */
    int nchildren;
    int multi_failed_index;    /* multi: the first op that failed, -1 when all succeeded */
};

typedef void (*zk_done_fn)(void *arg, const struct zk_result *res);
typedef void (*zk_watch_fn)(void *arg, enum zk_watch_type type, const char *path,
                            uint64_t session_gen);
typedef void (*zk_session_fn)(void *arg, enum zk_session_state state, uint64_t session_gen);

/* Parses "h1:p1,h2:p2/chroot" (Kafka's zookeeper.connect) into the host list and the chroot
 * ("" when none). Returns 0, or -1 when malformed (no host, or a chroot that is not a path). */
int zk_connect_string_parse(const char *connect, char *hosts, size_t hosts_len, char *chroot,
                            size_t chroot_len);

/* Starts connecting (the chroot is created if missing, as Kafka does, once connected). The
 * session is reported through on_session on the loop thread. NULL when it cannot start. */
struct zk *zk_create(struct loop *loop, const char *connect, int session_timeout_ms,
                     zk_session_fn on_session, void *arg);
/* Closes the session (its ephemeral nodes go at once) and frees everything; callbacks not yet
 * delivered are dropped, so no arg is used afterwards. */
void zk_destroy(struct zk *z);
uint64_t zk_session_gen(const struct zk *z);
bool zk_connected(const struct zk *z);
int64_t zk_session_id(const struct zk *z);
/* Delivers what the client threads queued (the loop does this on the eventfd; exposed for
 * callers that turn the loop themselves while they wait at startup). */
void zk_dispatch(struct zk *z);

/* Asynchronous operations: 0 when submitted (done is called exactly once, on the loop thread,
 * unless zk_destroy comes first), else a ZooKeeper error (done is not called). */
int zk_create_node(struct zk *z, const char *path, const void *data, int len, bool ephemeral,
                   zk_done_fn done, void *arg);
/* A persistent sequential node: prefix plus ZooKeeper's 10-digit counter (created_path). */
int zk_create_sequential(struct zk *z, const char *prefix, const void *data, int len,
                         zk_done_fn done, void *arg);
/* watch (optional) fires once, on the next change of the node's data or its deletion. */
int zk_get(struct zk *z, const char *path, zk_watch_fn watch, void *watch_arg, zk_done_fn done,
           void *arg);
/* As zk_get but also sets the watch when the node does not exist (then fires on creation). */
int zk_exists(struct zk *z, const char *path, zk_watch_fn watch, void *watch_arg,
              zk_done_fn done, void *arg);
int zk_get_children(struct zk *z, const char *path, zk_watch_fn watch, void *watch_arg,
                    zk_done_fn done, void *arg);
/* version -1: any. */
int zk_set(struct zk *z, const char *path, const void *data, int len, int32_t version,
           zk_done_fn done, void *arg);
int zk_delete(struct zk *z, const char *path, int32_t version, zk_done_fn done, void *arg);

/* One operation of a multi (all or none apply): controller writes fenced by a version check of
 * /controller_epoch come as a check plus their writes. */
enum zk_op_kind { ZK_OP_CREATE, ZK_OP_CREATE_EPHEMERAL, ZK_OP_SET, ZK_OP_DELETE, ZK_OP_CHECK };
struct zk_op {
    enum zk_op_kind kind;
    const char *path;
    const void *data;          /* create / set */
    int len;
    int32_t version;           /* set / delete / check; -1 any */
};
int zk_multi(struct zk *z, const struct zk_op *ops, int nops, zk_done_fn done, void *arg);

#endif
