/* cluster: a broker's membership in a cluster on ZooKeeper, with Kafka's znodes: /cluster/id,
 * the ephemeral /brokers/ids/<id>, the live brokers (a watch on /brokers/ids), and the
 * controller (the ephemeral /controller, won by a multi that also bumps /controller_epoch).
 * Loop-thread only; everything from ZooKeeper arrives through zk.h. */
#ifndef GREGOR_CLUSTER_CLUSTER_H
#define GREGOR_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct cluster;

/* The most live brokers kept (a bigger cluster lists the first ones by id, with a warning). */
#define CLUSTER_BROKERS_MAX 1024
#define CLUSTER_HOST_MAX 256
/* Retry delay after a ZooKeeper error that is not a lost connection. */
#define CLUSTER_RETRY_MS 1000

struct cluster_broker {
    int32_t id;
    char host[CLUSTER_HOST_MAX];
    int32_t port;
};

/* Topics on ZooKeeper (/brokers/topics): the most listed, replicas per partition, partitions
 * per topic (Kafka's limits are higher; these bound what one broker keeps). */
#define CLUSTER_TOPICS_MAX 100000
#define CLUSTER_REPLICAS_MAX 32 /* = ZNODE_REPLICAS_MAX */
#define CLUSTER_PARTITIONS_MAX 100000
#define CLUSTER_TOPIC_NAME_MAX 256

enum cluster_state_known { CLUSTER_STATE_UNKNOWN, CLUSTER_STATE_MISSING, CLUSTER_STATE_READ };

struct cluster_partition {
    int32_t nreplicas;
    int32_t replicas[CLUSTER_REPLICAS_MAX];   /* the assignment; [0] the preferred leader */
    enum cluster_state_known state;           /* of .../partitions/<p>/state */
    int32_t leader;                           /* -1: none (offline, or no state yet) */
    int32_t leader_epoch;
    int32_t controller_epoch;
    int32_t nisr;
    int32_t isr[CLUSTER_REPLICAS_MAX];
    int32_t state_version;                    /* the state znode's version */
    bool state_watch, state_inflight, writing;
};

struct cluster_topic {
    char name[CLUSTER_TOPIC_NAME_MAX];
    uint8_t id[16];                           /* topic_id of /brokers/topics/<t> */
    bool read;                                /* its znode was read */
    bool data_watch, data_inflight, gone;
    bool deleting;                            /* the controller's deletes are in flight */
    int32_t del_next;                         /* partitions whose znodes were deleted */
    int32_t npartitions;
    struct cluster_partition *parts;
};

/* Called (loop thread) after the topics or a partition's state changed. */
typedef void (*cluster_change_fn)(void *arg);

struct cluster_config {
    const char *zookeeper_connect;      /* "h1:p1,h2:p2/chroot" */
    int32_t session_timeout_ms;         /* zookeeper.session.timeout.ms */
    int32_t connection_timeout_ms;      /* zookeeper.connection.timeout.ms */
    int32_t broker_id;
    const char *listener_name;          /* "PLAINTEXT" */
    const char *host;                   /* advertised */
    int32_t port;
    cluster_change_fn on_change;        /* optional */
    void (*on_topic_gone)(void *arg, const char *name); /* optional: deleted from ZooKeeper */
    void *change_arg;
};

/* Starts connecting; NULL when it cannot (logged). */
struct cluster *cluster_create(struct loop *loop, const struct cluster_config *cfg);
/* Closes the session: this broker's ephemeral znodes (registration, controller) go at once. */
void cluster_destroy(struct cluster *c);

/* Startup, in Kafka's order; each turns the loop until done, bounded. cluster_await_id
 * connects (within zookeeper.connection.timeout.ms, else Kafka's "Timed out waiting for
 * connection") and reads or creates /cluster/id with Kafka's persistent paths. Returns 0 with
 * the id in out, or -1 (logged). */
int cluster_await_id(struct cluster *c, char *out, size_t outlen);
/* Registers /brokers/ids/<id> (refused when another session holds it, as Kafka refuses),
 * then watches the live brokers and competes for /controller. 0, or -1 (logged). */
int cluster_await_registration(struct cluster *c);

/* The controller's id, -1 while none is known. */
int32_t cluster_controller_id(const struct cluster *c);
bool cluster_is_controller(const struct cluster *c);
int32_t cluster_controller_epoch(const struct cluster *c); /* this broker's, when controller */
/* The live brokers, by id (this one included once registered). Borrowed until the loop turns. */
int cluster_brokers(const struct cluster *c, const struct cluster_broker **out);

/* The topics of /brokers/topics read so far (by name order of listing). Borrowed until the
 * loop turns. */
int cluster_topics(const struct cluster *c, struct cluster_topic *const **out);
const struct cluster_topic *cluster_topic_find(const struct cluster *c, const char *name);
/* Creates /brokers/topics/<name> with replicas assigned as Kafka's rack-unaware
 * AdminUtils.assignReplicasToBrokers over the live brokers (or the given assignment: nparts
 * arrays of rf broker ids). Returns KERR_NONE when submitted (done(arg, kerr, message) comes
 * once, on the loop thread; at the latest from cluster_destroy) or a Kafka error with msg
 * (done is then not called). validate_only checks without writing (done not called). */
typedef void (*cluster_create_done_fn)(void *arg, int kerr, const char *msg);
int cluster_create_topic(struct cluster *c, const char *name, int32_t nparts, int16_t rf,
                         const int32_t *assignment, bool validate_only, uint8_t id_out[16],
                         cluster_create_done_fn done, void *arg, char *msg, size_t msglen);
/* DeleteTopics: writes /admin/delete_topics/<name>; the controller deletes the topic's znodes
 * and every broker its logs. Returns as cluster_create_topic (UNKNOWN_TOPIC_OR_PARTITION when
 * ZooKeeper has no such topic). */
int cluster_delete_topic(struct cluster *c, const char *name, cluster_create_done_fn done,
                         void *arg, char *msg, size_t msglen);
/* The assignment (nparts x rf broker ids, row by row) Kafka's assignReplicasToBrokers makes
 * for brokers ids[0..n) sorted, with the given start index and replica shift. */
void cluster_assign_replicas(const int32_t *ids, int n, int32_t nparts, int16_t rf,
                             int start_index, int replica_shift, int32_t *out);
/* The leader's ISR change, as Kafka's ZooKeeper-mode leader wrote it: the partition's state
 * with the same leader and epochs and the new ISR, set at the zkVersion last read (a change by
 * the controller meanwhile fails it with ZK_BAD_VERSION: the state's watch reads it again).
 * Refused (NOT_LEADER_OR_FOLLOWER) unless ZooKeeper's state names this broker leader in
 * leader_epoch. KERR_NONE when submitted: done(w, zk rc) comes once (ZK_OK: written, the
 * cache updated), never after cluster_destroy. The caller owns w (its topic, partition and
 * isr filled in) until done, or until after cluster_destroy; next is the caller's. */
struct cluster_isr_write;
typedef void (*cluster_isr_done_fn)(struct cluster_isr_write *w, int zk_rc);
struct cluster_isr_write {
    char topic[CLUSTER_TOPIC_NAME_MAX];
    int32_t partition;
    int32_t leader_epoch;
    int nisr;
    int32_t isr[CLUSTER_REPLICAS_MAX];
    cluster_isr_done_fn done;
    void *arg;                                /* the caller's */
    struct cluster *c;                        /* set by cluster_write_isr */
    struct cluster_isr_write *next;           /* the caller's list */
};
int cluster_write_isr(struct cluster *c, struct cluster_isr_write *w);
#endif
