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
#define CLUSTER_RACK_MAX 256
/* Retry delay after a ZooKeeper error that is not a lost connection. */
#define CLUSTER_RETRY_MS 1000
/* A startup step still waiting for ZooKeeper says so this often (cluster_await_*); a turn of
 * the loop blocked this long during one is reported with the loop thread's stack. */
#define CLUSTER_AWAIT_LOG_MS 3000

/* Listeners a registration names (BROKER_MAX_LISTENERS) and the text of its endpoints kept
 * per broker (a longer list keeps its inter-broker endpoint only). */
#define CLUSTER_ENDPOINTS_MAX 8
#define CLUSTER_ENDPOINTS_TEXT_MAX 640

struct cluster_broker {
    int32_t id;
    char host[CLUSTER_HOST_MAX]; /* the endpoint of the inter-broker listener */
    int32_t port;
    char endpoints[CLUSTER_ENDPOINTS_TEXT_MAX]; /* {"endpoints":[...]} of its registration */
    int64_t epoch;      /* Kafka's broker epoch: its registration's czxid (-1 until read) */
    char rack[CLUSTER_RACK_MAX]; /* its broker.rack ("rack" of its registration); "": none */
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
    int32_t written_version;                  /* the version the controller's write in flight
                                               * (writing) is set at */
    bool state_watch, state_inflight, writing;
    /* The controller's elections asked for (ElectLeaders, the auto rebalance): the preferred
     * replica to lead, or any live replica when no ISR member is (UNCLEAN). */
    bool preferred_wanted, unclean_wanted;
    /* A reassignment (KIP-455) as the TopicZNode holds it: replicas is then the full set (the
     * target first, then the rest of the original), adding = target - original, removing =
     * original - target; both empty when none is under way. */
    int32_t nadding, nremoving;
    int32_t adding[CLUSTER_REPLICAS_MAX], removing[CLUSTER_REPLICAS_MAX];
    /* The controller's: a reassignment asked (AlterPartitionReassignments or
     * /admin/reassign_partitions) and not written yet (target_cancel: back to the original
     * replicas); the TopicZNode write carrying it is in flight (target_writing); the leader
     * epoch is to go up once it is written (Kafka's updateLeaderEpochAndSendRequest). */
    bool target_pending, target_cancel, bump_wanted;
    uint8_t target_writing;                   /* 1: a start written, 2: a completion */
    int32_t ntarget;
    int32_t target[CLUSTER_REPLICAS_MAX];
};

/* Under a reassignment (the TopicZNode lists adding or removing replicas for it). */
static inline bool cluster_reassigning(const struct cluster_partition *cp)
{
    return cp->nadding > 0 || cp->nremoving > 0;
}

struct cluster_topic {
    char name[CLUSTER_TOPIC_NAME_MAX];
    uint8_t id[16];                           /* topic_id of /brokers/topics/<t> */
    bool read;                                /* its znode was read */
    bool data_watch, data_inflight, gone;
    bool deleting;                            /* the controller's deletes are in flight */
    int32_t data_version;                     /* the TopicZNode's version when last read */
    bool data_writing;                        /* the controller's TopicZNode write in flight */
    bool data_stale;                          /* written since last read: a read follows */
    bool marked;                              /* listed under /admin/delete_topics: gone from
                                               * every broker's view (Kafka's UpdateMetadata
                                               * with LeaderDuringDelete), its logs deleted */
    int32_t del_next;                         /* partitions whose znodes were deleted */
    bool delete_waits;                        /* a replica's broker is offline (logged) */
    int32_t npartitions;
    struct cluster_partition *parts;
    /* /config/topics/<t>: its value (owned, NUL-terminated; NULL while missing), read when
     * the topic is first seen and again on each config change notification naming it. */
    char *config;
    int32_t config_len;
    bool config_known;                        /* read at least once (missing counts) */
    bool config_stale, config_inflight;       /* to be read again; being read */
    uint64_t config_gen;                      /* cluster_config_gen() when it last changed */
};

/* Called (loop thread) after the topics or a partition's state changed. */
typedef void (*cluster_change_fn)(void *arg);

struct cluster_config {
    const char *zookeeper_connect;      /* "h1:p1,h2:p2/chroot" */
    int32_t session_timeout_ms;         /* zookeeper.session.timeout.ms */
    int32_t connection_timeout_ms;      /* zookeeper.connection.timeout.ms */
    int32_t broker_id;
    const char *listener_name;          /* the inter-broker listener ("PLAINTEXT") */
    const char *host;                   /* advertised */
    int32_t port;
    /* Every listener registered (n_endpoints 0: listener_name at host:port, PLAINTEXT). */
    int n_endpoints;
    struct cluster_endpoint {
        char name[64];
        char protocol[16];
        char host[CLUSTER_HOST_MAX];
        int32_t port;
    } endpoints[CLUSTER_ENDPOINTS_MAX];
    const char *rack;                   /* broker.rack, registered; NULL or "": none */
    cluster_change_fn on_change;        /* optional */
    void (*on_topic_gone)(void *arg, const char *name); /* optional: deleted from ZooKeeper */
    void *change_arg;
    /* The controller's (Kafka's keys and defaults): unclean.leader.election.enable (false; a
     * topic's /config/topics value overrides it), auto.leader.rebalance.enable (true),
     * leader.imbalance.check.interval.seconds (300), leader.imbalance.per.broker.percentage
     * (10). */
    bool unclean_leader_election_enable;
    bool auto_leader_rebalance_enable;
    int32_t leader_imbalance_check_interval_s;
    int32_t leader_imbalance_per_broker_percentage;
};

/* b's advertised endpoint of listener (from its registration): 0, or -1 when it has none. */
int cluster_broker_endpoint(const struct cluster_broker *b, const char *listener, char *host,
                            size_t hostlen, int32_t *port);

/* Starts connecting; NULL when it cannot (logged). */
struct cluster *cluster_create(struct loop *loop, const struct cluster_config *cfg);
/* Closes the session: this broker's ephemeral znodes (registration, controller) go at once. */
void cluster_destroy(struct cluster *c);

/* Startup, in Kafka's order; each turns the loop until done, bounded as Kafka's ZooKeeperClient
 * (cluster.c, "startup waits"): ZooKeeper away for zookeeper.connection.timeout.ms from a
 * disconnection ends it with Kafka's "Timed out waiting for connection", a connected step gets
 * the session timeout. cluster_await_id connects and reads or creates /cluster/id with Kafka's
 * persistent paths. Returns 0 with the id in out, or -1 (logged). */
int cluster_await_id(struct cluster *c, char *out, size_t outlen);
/* Registers /brokers/ids/<id> (refused when another session holds it, as Kafka refuses),
 * then watches the live brokers and competes for /controller. 0, or -1 (logged). */
int cluster_await_registration(struct cluster *c);

/* This broker's registration is written (in this session). */
bool cluster_is_registered(const struct cluster *c);
/* The controller's id, -1 while none is known. */
int32_t cluster_controller_id(const struct cluster *c);
bool cluster_is_controller(const struct cluster *c);
int32_t cluster_controller_epoch(const struct cluster *c); /* this broker's, when controller */
/* This broker's epoch (its registration's czxid, as Kafka's broker epoch), -1 until read. */
int64_t cluster_broker_epoch(const struct cluster *c);
/* The live brokers, by id (this one included once registered). Borrowed until the loop turns. */
int cluster_brokers(const struct cluster *c, const struct cluster_broker **out);

/* The topics of /brokers/topics read so far (by name order of listing). Borrowed until the
 * loop turns. */
int cluster_topics(const struct cluster *c, struct cluster_topic *const **out);
const struct cluster_topic *cluster_topic_find(const struct cluster *c, const char *name);
/* Listed under /brokers/topics (read or not, queued for deletion or not): a name no local-only
 * topic answers for. */
bool cluster_topic_listed(const struct cluster *c, const char *name);
/* Creates /config/topics/<name> (config_json, a ConfigEntityZNode value; NULL: no configs),
 * then /brokers/topics/<name> with replicas assigned as Kafka's rack-unaware
 * AdminUtils.assignReplicasToBrokers over the live brokers (or the given assignment: nparts
 * arrays of rf broker ids). Returns KERR_NONE when submitted (done(arg, kerr, message) comes
 * once, on the loop thread; at the latest from cluster_destroy) or a Kafka error with msg
 * (done is then not called). validate_only checks without writing (done not called). */
typedef void (*cluster_create_done_fn)(void *arg, int kerr, const char *msg);
int cluster_create_topic(struct cluster *c, const char *name, int32_t nparts, int16_t rf,
                         const int32_t *assignment, bool validate_only, uint8_t id_out[16],
                         const char *config_json, cluster_create_done_fn done, void *arg,
                         char *msg, size_t msglen);
/* DeleteTopics: writes /admin/delete_topics/<name>; the controller deletes the topic's znodes
 * and every broker its logs. Returns as cluster_create_topic (UNKNOWN_TOPIC_OR_PARTITION when
 * ZooKeeper has no such topic). */
int cluster_delete_topic(struct cluster *c, const char *name, cluster_create_done_fn done,
                         void *arg, char *msg, size_t msglen);
/* ---- configs: /config/topics/<t>, /config/brokers/<id|<default>>, /config/changes ----
 * As Kafka's ZooKeeper mode (AdminZkClient.changeEntityConfig, ZkConfigManager): a change
 * writes the entity's znode, then a sequential /config/changes/config_change_<n> naming it;
 * every broker watches /config/changes and reads each named entity again. */

/* Goes up whenever a topic's or this broker's config was (re)read or written. */
uint64_t cluster_config_gen(const struct cluster *c);
/* /config/brokers/<default> (is_default) or /config/brokers/<this id>: its value (borrowed
 * until the loop turns), NULL while missing or not read; *gen as cluster_config_gen. */
const char *cluster_broker_config(const struct cluster *c, bool is_default, size_t *len,
                                  uint64_t *gen);
/* Startup: turns the loop (bounded as cluster_await_id) until both broker config znodes were
 * read. 0, or -1 (logged). */
int cluster_await_broker_configs(struct cluster *c);
/* Writes /config/<entity_type>/<entity_name> (set, else create) with json (a ConfigEntityZNode
 * value), then the change notification. Returns as cluster_create_topic; done comes once the
 * notification is written, and this broker's view already holds the new value. Topics:
 * UNKNOWN_TOPIC_OR_PARTITION when ZooKeeper has no such topic. */
int cluster_config_write(struct cluster *c, const char *entity_type, const char *entity_name,
                         const char *json, size_t len, cluster_create_done_fn done, void *arg,
                         char *msg, size_t msglen);

/* The assignment (nparts x rf broker ids, row by row) Kafka's assignReplicasToBrokers makes
 * for brokers ids[0..n) sorted, with the given start index and replica shift. */
void cluster_assign_replicas(const int32_t *ids, int n, int32_t nparts, int16_t rf,
                             int start_index, int replica_shift, int32_t *out);
/* The same for partitions first_partition.. (Kafka's startPartitionId: CreatePartitions
 * continues an assignment; the shift grows at every multiple of n from there). */
void cluster_assign_replicas_from(const int32_t *ids, int n, int32_t first_partition,
                                  int32_t nparts, int16_t rf, int start_index, int replica_shift,
                                  int32_t *out);
/* Kafka's assignReplicasToBrokers with racks (racks[i] is ids[i]'s; NULL or "": none): none
 * with a rack is the rack-unaware assignment above; all with one, the rack-aware one
 * (assignReplicasToBrokersRackAware: round robin over the brokers alternated by rack, each
 * partition's followers on racks without a replica first); only some is -1 (Kafka's "Not all
 * brokers have rack information for replica rack aware assignment."), else 0. */
int cluster_assign_replicas_racks(const int32_t *ids, const char *const *racks, int n,
                                  int32_t first_partition, int32_t nparts, int16_t rf,
                                  int start_index, int replica_shift, int32_t *out);

/* CreatePartitions: grows the topic to count partitions, as Kafka 3.9's
 * AdminZkClient.addPartitions: the new ones assigned continuing the existing assignment (or
 * as given: nassign lists, -1 for none), checked as Kafka checks them (INVALID_PARTITIONS,
 * INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICATION_FACTOR, with Kafka's messages); the topic's
 * znode is read and rewritten at the version read (a concurrent change: read again, at most
 * CLUSTER_WRITE_ATTEMPTS times). Returns as cluster_create_topic. */
#define CLUSTER_WRITE_ATTEMPTS 5
struct cluster_replicas {
    int32_t n;
    const int32_t *ids;
};
int cluster_create_partitions(struct cluster *c, const char *name, int32_t count,
                              const struct cluster_replicas *assign, int32_t nassign,
                              bool validate_only, cluster_create_done_fn done, void *arg,
                              char *msg, size_t msglen);
/* Kafka's DelayedCreatePartitions / DelayedDeleteTopics: done(arg, KERR_NONE, NULL) once this
 * broker's view shows a live leader for partitions [from, to) of name (to < 0: once it shows
 * no topic name, its deletion under way or done), or done(arg, KERR_REQUEST_TIMED_OUT, NULL)
 * after timeout_ms. false when the view shows it already (done is then not called). */
bool cluster_await_view(struct cluster *c, const char *name, int32_t from, int32_t to,
                        int32_t timeout_ms, cluster_create_done_fn done, void *arg);
/* ---- the controller's elections (issue 16; Kafka 3.9's ZooKeeper-mode KafkaController) ----
 * A partition's state changes, one fenced multi each, when: its leader's registration went
 * (the first live ISR replica in assignment order leads, the dead one leaves the ISR; none:
 * leader -1, or with unclean.leader.election.enable any live replica); a live ISR replica of
 * an offline partition registers (it leads); a follower in the ISR is gone or shutting down
 * (it leaves the ISR); its leader is shutting down (another live ISR replica leads); the
 * preferred replica is asked to lead (ElectLeaders, the auto rebalance). */

/* Kafka's codes for these answers (not in common/errors.h yet). */
#define CLUSTER_ERR_BROKER_NOT_AVAILABLE 8
#define CLUSTER_ERR_STALE_BROKER_EPOCH 77
#define CLUSTER_ERR_PREFERRED_LEADER_NOT_AVAILABLE 80
#define CLUSTER_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE 83
#define CLUSTER_ERR_ELECTION_NOT_NEEDED 84
#define CLUSTER_ERR_NO_REASSIGNMENT_IN_PROGRESS 85
/* Brokers shutting down at once that the controller keeps track of. */
#define CLUSTER_SHUTTING_MAX 64

/* ControlledShutdown on the controller: broker id (at broker_epoch, its czxid; -1: not
 * checked, as v0-1) is shutting down. KERR_NONE when accepted: with *pending, done(arg, kerr,
 * NULL) comes (never inside this call) once its leaderships moved as far as they can
 * (NOT_CONTROLLER if this broker stopped being the controller meanwhile; REQUEST_TIMED_OUT
 * after timeout_ms); without, there was nothing to move. Else NOT_CONTROLLER,
 * STALE_BROKER_EPOCH or BROKER_NOT_AVAILABLE, and done is not called. */
int cluster_controlled_shutdown(struct cluster *c, int32_t id, int64_t broker_epoch,
                                int32_t timeout_ms, cluster_create_done_fn done, void *arg,
                                bool *pending);
/* ElectLeaders for one partition on the controller: KERR_NONE when an election is started
 * (cluster_await_elections answers once written), else the partition's answer:
 * NOT_CONTROLLER, UNKNOWN_TOPIC_OR_PARTITION, ELECTION_NOT_NEEDED,
 * PREFERRED_LEADER_NOT_AVAILABLE or ELIGIBLE_LEADERS_NOT_AVAILABLE (msg set). */
int cluster_elect_leader(struct cluster *c, const char *topic, int32_t partition, bool unclean,
                         char *msg, size_t msglen);
/* done(arg, KERR_NONE, NULL) once no election asked is left unwritten or unread, or
 * REQUEST_TIMED_OUT after timeout_ms. false when none is left (done is not called). */
bool cluster_await_elections(struct cluster *c, int32_t timeout_ms, cluster_create_done_fn done,
                             void *arg);
/* One auto-rebalance check now (what the leader.imbalance.check.interval.seconds timer runs). */
void cluster_rebalance_check(struct cluster *c);

/* ---- partition reassignment (KIP-455, as Kafka 3.9's ZooKeeper-mode KafkaController) ----
 * AlterPartitionReassignments for one partition on the controller: replicas (n of them; NULL:
 * cancel the ongoing one) checked as Kafka's validateReplicas (INVALID_REPLICA_ASSIGNMENT with
 * its messages), then UNKNOWN_TOPIC_OR_PARTITION or NO_REASSIGNMENT_IN_PROGRESS; KERR_NONE when
 * the reassignment is started (cluster_await_reassignments answers once it is written and read
 * back). NOT_CONTROLLER elsewhere. The controller then writes the TopicZNode with the full
 * replica set, adding and removing replicas, bumps the leader epoch, waits until every target
 * replica is in the ISR, moves the leadership into the target when needed, and writes the
 * target as the assignment; the removed replicas' brokers stop and delete their logs. */
int cluster_reassign(struct cluster *c, const char *topic, int32_t partition,
                     const int32_t *replicas, int32_t n, char *msg, size_t msglen);
/* done(arg, KERR_NONE, NULL) once no reassignment asked is left unwritten or unread (or
 * NOT_CONTROLLER / REQUEST_TIMED_OUT). false when none is left (done is not called). */
bool cluster_await_reassignments(struct cluster *c, int32_t timeout_ms,
                                 cluster_create_done_fn done, void *arg);

/* A topic of ZooKeeper this broker shows: read, and not queued for deletion. */
static inline bool cluster_topic_visible(const struct cluster_topic *t)
{
    return t->read && !t->marked;
}
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

/* ---- producer id blocks (Kafka 3.9's ZkProducerIdManager.getNewProducerIdBlock) ----
 * A broker takes the ids it hands to idempotent producers in blocks of
 * CLUSTER_PRODUCER_ID_BLOCK_SIZE: it reads /latest_producer_id_block (the last block any broker
 * took) and writes the next one there at the version read; a concurrent taker's write fails it
 * with ZK_BAD_VERSION and it reads again (at most CLUSTER_PRODUCER_ID_ATTEMPTS times). No id
 * is ever in two blocks, so no two producers of a cluster share one. The caller owns w (done
 * and arg filled in) until done(w, kerr) comes, once, on the loop thread (never after
 * cluster_destroy): KERR_NONE with [w->first, w->last] the block taken, else a failure
 * (logged; the caller may claim again). Returns KERR_NONE when submitted, else
 * COORDINATOR_LOAD_IN_PROGRESS (not connected, too busy) and done is not called. */
#define CLUSTER_PRODUCER_ID_BLOCK_SIZE 1000
#define CLUSTER_PRODUCER_ID_ATTEMPTS 10
struct cluster_producer_id_claim;
typedef void (*cluster_producer_ids_fn)(struct cluster_producer_id_claim *w, int kerr);
struct cluster_producer_id_claim {
    cluster_producer_ids_fn done;
    void *arg;                                /* the caller's */
    int64_t first, last;                      /* the block taken (KERR_NONE) */
    struct cluster *c;                        /* the rest set by cluster_claim_producer_ids */
    int attempts;
};
int cluster_claim_producer_ids(struct cluster *c, struct cluster_producer_id_claim *w);

/* ---- ACLs and user / client configs on ZooKeeper (issue 19; Kafka 3.9's AclAuthorizer and
 * ZkAdminManager) ----
 * ACLs: /kafka-acl/<Type>/<name> (LITERAL), /kafka-acl-extended/prefixed/<Type>/<name>
 * (PREFIXED), notified by /kafka-acl-changes/acl_changes_<n> ("TOPIC:name") and
 * /kafka-acl-extended-changes/acl_changes_<n>. Users' and clients' configs:
 * /config/users|clients/<sanitized> (and users/<u>/clients/<c>), notified by
 * /config/changes. resource_type is Kafka's enum name ("TOPIC", "TRANSACTIONAL_ID"). */

/* A resource's ACL znode as read or written (json NULL: none, the resource has no ACL):
 * at start-up for each one, then for each one a notification names. */
typedef void (*cluster_acls_fn)(void *arg, const char *resource_type, bool prefixed,
                                const char *name, const char *json, size_t len);
/* Set before cluster_await_security; makes the ACL paths, watches the changes. */
void cluster_acls_subscribe(struct cluster *c, cluster_acls_fn fn, void *arg);
/* An entity's config map (a ConfigEntityZNode value, json NULL: the node is gone) for
 * entity_type "users", "clients" or "ips" and the sanitized entity_name ("alice",
 * "alice/clients/c1", "<default>"): at start-up for each user, client, user's client
 * (users/<u>/clients/<c>) and ip, after every change this broker writes or a notification
 * names.
 * Up to 4 subscribers (SCRAM credentials; quotas). */
typedef void (*cluster_entity_config_fn)(void *arg, const char *entity_type,
                                         const char *entity_name, const char *json, size_t len);
void cluster_entity_config_subscribe(struct cluster *c, cluster_entity_config_fn fn, void *arg);
/* Startup, after the registration: turns the loop until every ACL znode and user / client
 * config was read (bounded as cluster_await_id). 0, or -1 (logged). */
int cluster_await_security(struct cluster *c);
/* A read-modify-write of a znode: modify gets its value (cur NULL: missing) and returns 0 with
 * *out the new value (malloc'd, taken; NULL: delete the node), 1 when nothing changes, -1 to
 * refuse. Written at the version read; another writer meanwhile makes it read and modify
 * again (up to 10 times, Kafka's maxUpdateRetries), so modify may be called more than once.
 * Once written this broker's subscriber sees the value, then the notification is created
 * and done(arg, kerr, msg) comes (never inside the call). Returns KERR_NONE when submitted,
 * else an error with msg (done not called). */
typedef int (*cluster_rmw_fn)(void *arg, const char *cur, size_t len, char **out,
                              size_t *out_len);
int cluster_acl_update(struct cluster *c, const char *resource_type, bool prefixed,
                       const char *name, cluster_rmw_fn modify, void *marg,
                       cluster_create_done_fn done, void *arg, char *msg, size_t msglen);
int cluster_entity_update(struct cluster *c, const char *entity_type, const char *entity_name,
                          cluster_rmw_fn modify, void *marg, cluster_create_done_fn done,
                          void *arg, char *msg, size_t msglen);
#endif
