/* broker: the one struct that all broker state hangs off (no hidden globals), the request
 * lifecycle shared by every API handler, and the topic/partition registry. */
#ifndef GREGOR_BROKER_BROKER_H
#define GREGOR_BROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/metrics.h"
#include "broker/replication_quota.h"
#include "broker/waiters.h"
#include "common/arena.h"
#include "log/log.h"
#include "log/producer_state.h"
#include "partition/partition.h"
#include "proto/kbuf.h"

struct broker;
struct loop;
struct http_server;
struct net;
struct conn;
struct conn_reply;
struct logdir;
struct group_coordinator;
struct fetch_sessions;
struct authorizer;
struct create_job;
struct deleted_dir;
struct cluster;
struct replica_manager;
struct cluster_isr_write;
struct net_listener_info;
struct tls_server;
struct broker_config;
struct log_cleaner;
struct quotas;
struct console_sessions;
struct console_op;
struct console_remote;
struct console_login_wait;

/* The longest a piece of one client's work (opening or deleting partitions, appending a
 * request's partitions) holds the loop per turn before it yields to the others. */
#define BROKER_TURN_US 10000

#define BROKER_MAX_LOG_DIRS 8

/* Config keys as strings, as given (server.properties, or a dynamic update): what DescribeConfigs
 * shows and what topic configs fall back to. Bounded: only the catalog's broker keys. */
#define BROKER_PROPS_MAX 80
#define BROKER_PROP_VALUE_MAX 512
struct broker_prop {
    char key[64];
    char value[BROKER_PROP_VALUE_MAX];
};
struct broker_props {
    int n;
    struct broker_prop v[BROKER_PROPS_MAX];
};
const char *broker_props_get(const struct broker_props *p, const char *key);
/* Sets or replaces key; -1 when the table is full or the key or value too long. */
int broker_props_set(struct broker_props *p, const char *key, const char *value);
void broker_props_del(struct broker_props *p, const char *key);

/* One of listeners= (Kafka's EndPoint): its name, the security protocol
 * listener.security.protocol.map gives that name, where it binds, and what Metadata answers
 * a client connected to it (advertised.listeners' entry of the same name, else the bind). */
#define BROKER_MAX_LISTENERS 8
struct broker_listener {
    char name[64];
    char security_protocol[16]; /* PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL */
    char host[256];
    int port;
    char advertised_host[256];
    int advertised_port;
};

/* ssl.* and listener.name.<listener>.* keys as given: "key\0value\0" pairs; a key given
 * again is appended, and the last one counts. Bounded: inline PEM keys are a few KB each. */
#define BROKER_SECURITY_PROPS_BYTES (32 * 1024)
struct broker_security_props {
    size_t used;
    char buf[BROKER_SECURITY_PROPS_BYTES];
};
/* The value of key for listener (listener.name.<listener in lower case>.<key> first), or NULL;
 * *key_used names the key that gave it. */
const char *broker_security_prop(const struct broker_config *cfg, const char *listener,
                                 const char *key, const char **key_used);

/* Durability of acks=all (gregor.acks.all.fsync): answer only after fdatasync (default), or
 * like Kafka after the write reaches the page cache. */
struct broker_config {
    char listener_host[256];             /* the first listener's (the one ZooKeeper names) */
    int listener_port;
    char advertised_host[256];
    int advertised_port;
    char listeners_spec[1024];           /* listeners=, advertised.listeners= and */
    char advertised_spec[1024];          /* listener.security.protocol.map= as given; */
    char protocol_map_spec[1024];        /* broker_config_listeners() parses them */
    struct broker_listener listeners[BROKER_MAX_LISTENERS];
    int n_listeners;
    char inter_broker_listener_spec[64]; /* inter.broker.listener.name= as given ("": unset) */
    char inter_broker_protocol_spec[32]; /* security.inter.broker.protocol= ("": unset) */
    int inter_broker_listener;           /* listeners[] index other brokers reach (parsed) */
    struct broker_security_props security;
    char log_dirs[BROKER_MAX_LOG_DIRS][1024];
    int n_log_dirs;
    bool log_dirs_explicit;              /* log.dirs was given: log.dir is ignored */
    int retention_key_rank;              /* 1 hours, 2 minutes, 3 ms: the finer key wins */
    int roll_key_rank;                   /* 1 hours, 2 ms */
    int32_t node_id;
    int32_t num_partitions;
    int16_t default_replication_factor;
    bool auto_create_topics;
    bool delete_topic_enable;
    int64_t socket_request_max_bytes;
    int32_t max_connections;
    int32_t max_connections_per_ip;      /* max.connections.per.ip */
    char max_connections_per_ip_overrides[2048]; /* "host:n,host:n" */
    int64_t connections_max_idle_ms;     /* -1: never closed for idleness */
    int64_t queued_max_request_bytes;    /* -1 (Kafka's default): gregor's bound, see config.c */
    int64_t request_read_timeout_ms;     /* gregor.request.read.timeout.ms */
    /* gregor.http.listener: "host:port" of the console, /metrics and /health (broker/console.h);
     * "" (the default): no HTTP listener. */
    char http_listener[300];
    int64_t fetch_max_bytes;
    struct log_config log;               /* log.* defaults for every topic */
    int64_t log_retention_check_interval_ms;
    int64_t log_flush_scheduler_interval_ms;
    int64_t offset_checkpoint_interval_ms;
    int32_t offsets_topic_num_partitions;
    int32_t offsets_topic_segment_bytes; /* (104857600) */
    int16_t offsets_topic_replication_factor; /* a cluster's __consumer_offsets (group_store.c) */
    int64_t offsets_retention_ms;
    /* The transaction coordinator (txn_store.c): Kafka's transaction.* keys and defaults. */
    int32_t transaction_state_log_num_partitions;      /* (50) */
    int32_t transaction_state_log_replication_factor;  /* (3) a cluster's, capped by live brokers */
    int32_t transaction_state_log_min_isr;             /* (2) its min.insync.replicas */
    int32_t transaction_max_timeout_ms;                /* (900000) */
    int32_t transactional_id_expiration_ms;            /* (604800000) */
    int32_t transaction_abort_interval_ms;   /* ...abort.timed.out.transaction.cleanup.interval.ms */
    int32_t transaction_expire_interval_ms;  /* ...remove.expired.transaction.cleanup.interval.ms */
    bool transaction_partition_verification_enable; /* (true) KIP-890 part 1: txn_verify.c */
    int32_t group_initial_rebalance_delay_ms;
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_max_size;
    int32_t group_consumer_session_timeout_ms;   /* KIP-848 groups */
    int32_t group_consumer_heartbeat_interval_ms;
    int32_t group_consumer_max_size;
    int32_t group_consumer_migration_policy; /* enum gc_migration_policy (bidirectional) */
    int32_t offset_metadata_max_bytes;
    bool acks_all_fsync;                 /* gregor.acks.all.fsync */
    int64_t replica_lag_time_max_ms;     /* a follower not caught up this long leaves the ISR */
    int64_t replica_high_watermark_checkpoint_interval_ms;
    char cluster_id[64];                 /* empty: from meta.properties or generated */
    /* A cluster on ZooKeeper (src/cluster) when zookeeper_connect is set; else one node. */
    char zookeeper_connect[1024];        /* "h1:p1,h2:p2/chroot" */
    int32_t zookeeper_session_timeout_ms;
    int32_t zookeeper_connection_timeout_ms; /* -1: the session timeout (Kafka's default) */
    /* Followers (replica_fetcher.c), Kafka's keys and defaults. */
    int32_t num_replica_fetchers;        /* fetchers per leader broker (1) */
    int32_t replica_fetch_wait_max_ms;   /* a Fetch's max_wait (500) */
    int32_t replica_fetch_min_bytes;     /* a Fetch's min_bytes (1) */
    int32_t replica_fetch_max_bytes;     /* a partition's max bytes (1 MiB) */
    int32_t replica_fetch_response_max_bytes; /* a Fetch's max bytes (10 MiB) */
    int32_t replica_fetch_backoff_ms;    /* after a partition's error (1000) */
    int32_t replica_socket_timeout_ms;   /* a replica request's timeout (30000) */
    /* KIP-73 replication quotas (broker/replication_quota.c): bytes/s, dynamic only
     * (/config/brokers/<id>, else <default>); REPLICATION_QUOTA_NONE when unset. */
    int64_t leader_replication_throttled_rate;
    int64_t follower_replication_throttled_rate;
    int64_t replica_alter_log_dirs_io_max_bytes_per_second; /* kept: no moves between dirs */
    /* KIP-392: broker.rack (registered, reported, used by the rack-aware assignment; empty:
     * none) and replica.selector.class (RackAwareReplicaSelector; else Kafka's default
     * LeaderSelector: consumers read from leaders only). */
    char broker_rack[256];
    char authorizer_class_name[128];     /* "" : no authorizer, everything allowed */
    char super_users[4096];              /* "User:admin;User:bob" */
    bool allow_everyone_if_no_acl_found;
    bool replica_selector_rack_aware;
    /* The controller and controlled shutdown (docs/CLUSTER.md, "Failover"), Kafka's keys. */
    bool controlled_shutdown_enable;          /* (true) */
    int32_t controlled_shutdown_max_retries;  /* attempts (3) */
    int64_t controlled_shutdown_retry_backoff_ms; /* between attempts (5000) */
    bool unclean_leader_election_enable;      /* the default of the topic config (false) */
    bool auto_leader_rebalance_enable;        /* (true) */
    int64_t leader_imbalance_check_interval_s; /* (300) */
    int32_t leader_imbalance_per_broker_percentage; /* (10) */
    /* The log cleaner (broker/log_cleaner.c), Kafka's CleanerConfig keys and defaults. */
    struct {
        bool enable;                     /* log.cleaner.enable (true), read-only */
        int32_t threads;                 /* log.cleaner.threads (1) */
        int64_t dedupe_buffer_size;      /* log.cleaner.dedupe.buffer.size (128 MiB), all threads */
        double io_buffer_load_factor;    /* log.cleaner.io.buffer.load.factor (0.9) */
        int32_t io_buffer_size;          /* log.cleaner.io.buffer.size (512 KiB) */
        double io_max_bytes_per_second;  /* log.cleaner.io.max.bytes.per.second (Double.MAX) */
        int64_t backoff_ms;              /* log.cleaner.backoff.ms (15000) */
    } log_cleaner;
    struct broker_props static_props;    /* the catalog's keys as set at startup */
    int32_t quota_window_num;            /* client quotas' samples (11) of */
    int32_t quota_window_size_seconds;   /* this many seconds (1) each: quota.c */
    int32_t max_connection_creation_rate;         /* KIP-612, not on the inter-broker
                                                   * listener (conn_quota.c) */
    int32_t controller_quota_window_num;          /* controller_mutation_rate's burst: */
    int32_t controller_quota_window_size_seconds; /* num (11) x size (1) x the quota */
};

void broker_config_defaults(struct broker_config *cfg);
/* Sets one server.properties key. Returns 0, or -1 with a message in err (bad value or an
 * unknown key when strict). Kafka keys with no meaning here are accepted with a log line. */
int broker_config_set(struct broker_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen);
/* The same for server.properties and --override: the dynamic-only quota keys are logged and
 * left out (Kafka's KafkaConfig does not know them). */
int broker_config_set_static(struct broker_config *cfg, const char *key, const char *value,
                             char *err, size_t errlen);
/* Loads a Java-properties file. */
int broker_config_load_file(struct broker_config *cfg, const char *path, char *err, size_t errlen);
/* Parses listeners=, advertised.listeners= and listener.security.protocol.map= into
 * cfg->listeners (Kafka's rules: a name per listener, each name mapped to a protocol, distinct
 * names and ports, advertised names among the listeners); the first listener becomes
 * listener_host/port and advertised_host/port. 0, or -1 with Kafka's message in err. */
int broker_config_listeners(struct broker_config *cfg, char *err, size_t errlen);
/* Checks cross-key rules (e.g. replication factor > 1 on one node). */
int broker_config_validate(const struct broker_config *cfg, char *err, size_t errlen);

struct topic;

struct topic_config_kv {
    char key[128];
    char value[256];
};

struct topic {
    char name[256];
    struct kuuid id;
    int32_t npartitions;
    struct partition **partitions;
    struct log_config cfg;           /* broker defaults + overrides */
    struct topic_config_kv *overrides;
    int noverrides;
    bool internal;
    /* Partitions being opened over several loop turns (topic_create_begin or topic_grow_begin
     * .. the last topic_create_step). creating: a new topic's partition count to be, and
     * npartitions stays 0; growing: an existing topic's count to be, npartitions stays the old
     * one. Either way partitions[0..nopened) exist and no handler sees one beyond npartitions
     * before all exist (Kafka shows a change once its controller committed all of it). */
    int32_t creating;
    int32_t growing;
    int32_t nopened;
    /* Being deleted (on broker.deleting, in no lookup): partitions[0..unretired) may still be
     * open under their own names; the others are renamed to "-delete" dirs (or NULL). */
    int32_t unretired;
    struct topic_counters counters;  /* its traffic since start (metrics.h) */
    struct topic *next;              /* hash chain, or broker.deleting */
};

enum request_status {
    REQUEST_DONE,      /* r->resp holds the response: encode and send */
    REQUEST_PENDING,   /* someone calls request_finish later */
    REQUEST_NO_REPLY,  /* acks=0 */
    REQUEST_CLOSE,     /* drop the connection (Kafka's answer to a bad request) */
};

struct request;
typedef enum request_status (*api_handler_fn)(struct broker *b, struct request *r);
typedef int (*api_decode_fn)(struct kreader *r, int16_t version, void *out);
typedef void (*api_encode_fn)(struct kwriter *w, int16_t version, const void *in);

struct api_entry {
    int16_t key;
    const char *name;
    int16_t min_version, max_version; /* advertised */
    size_t request_size;
    size_t response_size;
    api_decode_fn decode;
    api_encode_fn encode;
    api_handler_fn handler;
    /* Optional, so that the server knows no API by name: */
    void (*newer_version)(struct broker *b, struct request *r); /* answers a version above the
                                      * range whatever its header's tags (ApiVersions, KIP-511) */
    bool response_header_v0;         /* header v0 whatever the version (ApiVersions) */
    void (*shutdown)(struct broker *b); /* finishes work in progress at shutdown, before the
                                      * last group commit */
};

const struct api_entry *broker_api_find(int16_t key);
extern const struct api_entry broker_apis[];
extern const int broker_apis_count;

struct request {
    struct broker *broker;
    struct conn *conn;               /* NULL once the connection is gone */
    uint8_t *frame;                  /* owned: request bytes (bodies borrow from it) */
    size_t frame_len;
    struct arena arena;              /* everything decoded or built for this request */
    int16_t api_key, api_version;
    int32_t correlation_id;
    struct kstr client_id;
    bool flexible;
    const struct api_entry *api;
    void *body;                      /* decoded request (api->request_size bytes, in arena) */
    void *resp;                      /* response built by the handler (in arena) */
    int16_t resp_version;            /* normally api_version */
    int64_t start_us;
    uint64_t timer_id;               /* a pending request's deadline timer */
    struct request *next_pending;    /* in one of the broker's pending lists */
    void *state;                     /* handler-private state while pending */
    struct conn_reply *reply;        /* deferred: the reply's reserved place (request_defer) */
    int32_t throttle_ms;             /* a client quota's throttle: the connection is muted this
                                      * long once the reply is sent (KIP-219) */
    bool request_quota_done;         /* request_percentage recorded already, or exempt (a
                                      * follower's fetch: sendResponseExemptThrottle) */
};

/* The host and port Metadata, DescribeCluster and FindCoordinator answer a client on c: its
 * listener's advertised endpoint (the first listener's when c is NULL), as Kafka answers on the
 * listener a request came in on. */
void broker_advertised_for(const struct broker *b, struct conn *c, const char **host, int *port);
/* The endpoint of another broker a request on r's listener is answered with: that listener's
 * in the broker's registration (allocated in r), else its inter-broker endpoint. */
struct cluster_broker;
void broker_peer_endpoint(struct request *r, const struct cluster_broker *cb, const char **host,
                          int32_t *port);
/* Encodes r->resp and sends it (if the connection still exists), then frees r. */
void request_finish(struct request *r);
/* A pending request whose effects are complete (an acks=all append waiting for its fsync)
 * lets the connection's next request in; its reply keeps its place in the output order.
 * false when the connection cannot defer more (the request then stays up, as before). */
bool request_defer(struct request *r);
/* Applies what a handler step returned (as for the handler itself: DONE answers, NO_REPLY
 * lets the connection go on, CLOSE closes it, PENDING waits): for a pending request that
 * finished its work later, from a timer or a posted task. */
void request_continue(struct request *r, enum request_status st);
/* Records value against the client quota of key (quota.h) that applies to r's principal and
 * client id; returns the throttle time in ms and raises r->throttle_ms to it. */
int32_t request_quota_record(struct request *r, int key, double value);
/* Takes back a value recorded (a throttled fetch answers empty). */
void request_quota_unrecord(struct request *r, int key, double value);
/* The most r's client may record against key's quota in one quota window (quota.h's
 * quota_window_max); -1 when no quota of key applies. */
double request_quota_window_max(struct request *r, int key);
/* Frees r without answering (connection closes, or acks=0). */
void request_free(struct request *r);
/* Allocates from the request arena; NULL when the request's memory bound is reached. */
void *request_alloc(struct request *r, size_t n);
char *request_strdup(struct request *r, const char *s);
/* A client-supplied string made safe for one log line: printable ASCII only, at most out_size
 * - 1 bytes, "..." when cut; returns out. */
const char *request_loggable(struct kstr s, char *out, size_t out_size);

struct broker {
    struct broker_config cfg;        /* static_cfg with the dynamic configs applied */
    struct broker_config static_cfg; /* as started (server.properties and --override) */
    /* Dynamic broker configs (AlterConfigs on BROKER): this broker's and the cluster-wide
     * default (resource ""), persisted in the first log dir (dynamic_configs.c). */
    struct broker_props dyn_broker, dyn_default;
    struct loop *loop;
    struct net *net;
    struct http_server *http;        /* gregor.http.listener's server (http_routes.c), or NULL */
    bool accepting;                  /* the Kafka listeners accept (/health/ready) */
    /* cfg.listeners[i] as the net knows it (names point into cfg), and its TLS context for an
     * SSL listener (owned; freed after the net, whose connections use it). */
    struct net_listener_info *listener_info;
    struct tls_server *tls[BROKER_MAX_LISTENERS];
    struct sasl_server_config *sasl; /* owned: SASL listeners' mechanisms and credentials */
    struct sasl_client_creds *sasl_client; /* owned: the inter-broker listener's SASL login */
    struct tls_server *tls_client;   /* owned: TLS to other brokers' inter-broker listener */
    struct logdir *dirs[BROKER_MAX_LOG_DIRS];
    int ndirs;
    char cluster_id[64];
    struct topic **topic_buckets;
    size_t ntopic_buckets;
    int ntopics;
    int64_t partitions_being_created; /* still to open by creations in progress (fd budget) */
    int64_t next_producer_id;        /* one node: the next InitProducerId id */
    struct producer_ids *producer_ids; /* on ZooKeeper: blocks of ids (producer_ids.c) */
    /* Operations parked until bytes arrive (long-polling fetches) or appends are durable
     * (acks=all produces), or their deadline. */
    struct waiters waiters;
    struct create_job *create_jobs;  /* creations and growths still opening partitions */
    /* Deleted topics whose partitions are still being closed and renamed, and the renamed
     * "-delete" dirs still to remove: worked off a slice per turn by delete_timer. */
    struct topic *deleting;
    struct deleted_dir *deleted_dirs;
    uint64_t delete_timer;
    struct request *produce_sliced;  /* Produce requests appending over several loop turns */
    bool appended;                   /* something was appended this turn: re-check waiters */
    struct partition **dirty;        /* partitions appended since the last group commit */
    int ndirty, capdirty;
    /* The group commit on the syncer thread: its partitions (their sync results alongside);
     * the acks=all produces wait for it as WAITER_ON_DURABLE waiters. */
    struct syncer *syncer;
    struct partition **commit_parts;
    int *commit_results;
    int ncommit, capcommit;
    struct group_coordinator *groups;
    struct txn_store *txns;          /* the transaction coordinator's host (txn_store.c) */
    struct txn_verify *txn_verify;   /* KIP-890's guards and questions (txn_verify.c) */
    struct fetch_sessions *fetch_sessions; /* created on first use */
    struct authorizer *authorizer;   /* authorizer.c; owned */
    struct cluster *cluster;         /* NULL without zookeeper.connect */
    uint64_t cluster_configs_applied;/* cluster_config_gen() last applied (dynamic_configs.c) */
    uint64_t cluster_broker_gen[2];  /* the default's and this broker's config, applied */
    struct replica_manager *replicas; /* leaders and followers on a cluster, else NULL */
    bool replica_ticking, replica_hw_ticking; /* replica.c's periodic work started */
    struct cluster_isr_write *isr_writes; /* replica.c's ISR writes in flight (owned) */
    struct log_cleaner *cleaner;     /* compaction threads (log_cleaner.c); NULL before start */
    /* KIP-73: the bytes this broker sent to (leader) and fetched for (follower) throttled
     * replicas, against leader/follower.replication.throttled.rate (replication_quota.c). */
    struct replication_quota quota_leader, quota_follower;
    bool stopping;
    struct controlled_shutdown *shutdown_ctl; /* SIGTERM's controlled shutdown under way */
    int64_t started_ms;
    int64_t open_us;                 /* mono_us() when broker_open began (startup time) */
    struct quotas *quotas;           /* client quotas and their rates (quota.c); owned */
    struct console_sessions *console_sessions; /* the console's logins (console_api.c); owned */
    struct console_op *console_ops;  /* console creates/deletes awaiting the cluster (console_data.c) */
    int nconsole_ops;
    struct console_remote *console_remote; /* the console's calls to other brokers (console_remote.c) */
    struct console_login_wait *console_login_waits; /* failed console logins awaiting their 401 (console_api.c) */
    int nconsole_login_waits;
    struct broker_metrics metrics;   /* /metrics' counters (metrics.h), loop thread only */
};

/* Topic registry (topics.c). */
struct topic *topic_find(struct broker *b, const char *name);
struct topic *topic_find_by_id(struct broker *b, const struct kuuid *id);
/* A topic named in a request: names are length-counted bytes, and one holding a NUL is no
 * topic's (never its prefix's). Every handler looks request names up through this. */
struct topic *topic_find_name(struct broker *b, struct kstr name);
#define TOPIC_NAME_MAX 249
/* Validates a topic name (len bytes) as Kafka does: 1..249 of [a-zA-Z0-9._-], not "." or "..",
 * so no NUL. Returns KERR_NONE or KERR_INVALID_TOPIC_EXCEPTION with Kafka's message in msg. */
int topic_name_validate(const char *name, int32_t len, char *msg, size_t msglen);
/* Kafka's internal topics (Topic.isInternal): only their coordinators create and write them. */
bool topic_name_is_internal(const char *name);
/* KERR_INVALID_TOPIC_EXCEPTION (Kafka's message) when name differs from an existing topic only
 * by '.' versus '_'. */
int topic_name_collision(struct broker *b, const char *name, char *msg, size_t msglen);
/* Creates a topic with npartitions and config overrides (already validated). */
int topic_create(struct broker *b, const char *name, int32_t npartitions,
                 const struct topic_config_kv *configs, int nconfigs, struct topic **out,
                 char *msg, size_t msglen);
/* The same in steps, so that a big topic does not hold the loop: begin registers the topic
 * (creating, no partitions visible); each step opens partitions until deadline_us (mono) and
 * sets *done once all exist and the topic is saved. On an error the topic is gone. */
int topic_create_begin(struct broker *b, const char *name, int32_t npartitions,
                       const struct topic_config_kv *configs, int nconfigs, struct topic **out,
                       char *msg, size_t msglen);
/* Starts growing an existing topic (no change in progress) to new_total partitions, opened by
 * topic_create_step as for a creation; until the last step the topic shows its old ones. On a
 * step's error the growth is dropped (its new partition dirs removed), the topic stays. */
int topic_grow_begin(struct broker *b, struct topic *t, int32_t new_total);
int topic_create_step(struct broker *b, struct topic *t, int64_t deadline_us, bool *done,
                      char *msg, size_t msglen);
/* Drops a creation (the topic is gone) or a growth (the topic keeps its old partitions) in
 * progress: the partition dirs it made are removed. */
void topic_create_abandon(struct broker *b, struct topic *t);
/* KERR_POLICY_VIOLATION (Kafka's answer to an operation too large to perform) with a message
 * when new_partitions would not fit in the open files limit, keeping a reserve for clients. */
int topic_fd_budget_check(struct broker *b, int64_t new_partitions, char *msg, size_t msglen);
/* Deletes a topic (not one being created) as Kafka's controller does: topic_delete_begin takes
 * it out of every lookup at once (its name is free; a growth in progress goes with it) and
 * topics_delete_commit persists that (KERR_KAFKA_STORAGE_ERROR if it cannot); then, a slice
 * of at most BROKER_TURN_US per loop turn, its partitions are closed and their dirs renamed to
 * Kafka's "<topic>-<partition>.<uuid>-delete" and removed. A creation that reuses the name
 * renames the old partition it is about to replace first. topic_delete does both steps. */
void topic_delete_begin(struct broker *b, struct topic *t);
int topics_delete_commit(struct broker *b);
int topic_delete(struct broker *b, struct topic *t);
/* Replaces a topic's overrides (AlterConfigs semantics) and persists them. */
int topic_set_overrides(struct broker *b, struct topic *t, const struct topic_config_kv *kv, int n);
/* Checks one topic-level config key and value (the config catalog); KERR_INVALID_CONFIG with
 * Kafka's message if bad. */
int topic_config_check(const char *key, const char *value, char *msg, size_t msglen);
/* A topic config's value when the topic has no override of it: the first of its broker
 * synonyms set (dynamic for this broker, cluster default, static), else Kafka's default;
 * *source says which (CONFIG_SOURCE_*), *synonym which key (NULL for the default). */
void topic_config_default(const struct broker *b, const char *key, char *out, size_t outlen,
                          int *source, const char **synonym);
/* The log config of a topic with no overrides (broker_log_defaults) and t's own. */
void broker_log_defaults(const struct broker *b, struct log_config *out);
void topic_effective_config(const struct broker *b, const struct topic *t, struct log_config *out);
/* A broker key's value: dynamic for this broker, cluster default, static; NULL if none set. */
const char *broker_key_value(const struct broker *b, const char *key, int *source);
/* Dynamic broker configs (dynamic_configs.c): load at startup (applied), and the change of
 * a resource ("" cluster default, or this node's id) by AlterConfigs (replace: the whole set)
 * or IncrementalAlterConfigs. Returns a Kafka error with message; validate_only checks. */
int dynamic_configs_load(struct broker *b);
/* The dynamic configs file's bytes ("broker|default <key>=<%-encoded value>" lines) into the
 * two tables (emptied first): 0, or -1 with *bad_line, the tables then empty. Pure, for the
 * fuzz target; dynamic_configs_load reads the file through it. */
int dynamic_configs_parse(const char *text, size_t len, struct broker_props *broker,
                          struct broker_props *dflt, int *bad_line);
/* listener.name.<l>.<key> for a key Kafka reconfigures at runtime (KIP-226's key and trust
 * stores): a per-broker dynamic config of its own; whether a key is one of Kafka's PASSWORD
 * keys (DescribeConfigs: sensitive, no value). */
bool dynamic_config_listener_key(const char *key);
bool dynamic_config_sensitive(const char *key);
struct dynamic_config_op {
    const char *key;
    const char *value;               /* NULL: delete */
    int op;                          /* 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT */
};
int dynamic_configs_alter(struct broker *b, const char *resource, const struct dynamic_config_op *ops,
                          int nops, bool replace, bool validate_only, char *msg, size_t msglen);
/* As dynamic_configs_alter; on a cluster the change goes to ZooKeeper and is answered
 * through ans (KERR_NONE returned: pending) instead of the local file. */
struct config_answer;
int dynamic_configs_alter_answered(struct broker *b, const char *resource,
                                   const struct dynamic_config_op *ops, int nops, bool replace,
                                   bool validate_only, struct config_answer *ans, char *msg,
                                   size_t msglen);
/* On a cluster, ZooKeeper holds the configs (/config/topics/<t>, /config/brokers/<id> and
 * <default>; docs/CLUSTER.md). dynamic_configs_cluster_sync applies what the cluster read
 * since the last call (cluster's on_change); the JSON helpers write and read Kafka's
 * ConfigEntityZNode for kv (malloc'd; the reader drops, with a log line, what the catalog
 * refuses). */
void dynamic_configs_cluster_sync(struct broker *b);
char *topic_configs_json(const struct topic_config_kv *kv, int n, size_t *len);
int topic_configs_parse(const char *who, const char *json, size_t len,
                        struct topic_config_kv **kv, int *n);
/* A config change written to ZooKeeper on behalf of a request: each resource's answer
 * (error_code, error_message in the response) is filled when its write completes; the request
 * is finished after the last one once the handler has returned (config_answers_pending). */
struct config_answers {
    struct request *r;
    int32_t left;
    bool started;
};
struct config_answer {
    struct config_answers *all;
    int16_t *error_code;
    struct kstr *error_message;
};
void config_answer_done(void *arg, int kerr, const char *msg);
int config_answers_pending(struct config_answers *all); /* REQUEST_DONE or REQUEST_PENDING */
/* Topic resources on a cluster: writes t's new overrides to ZooKeeper (KERR_NONE: answered
 * later through ans, which must live as long as the request). */
int topic_configs_write(struct broker *b, const char *topic, const struct topic_config_kv *kv,
                        int n, struct config_answer *ans, char *msg, size_t msglen);
/* Topic configs follow a changed broker default: every topic's log config is recomputed. */
void topics_refresh_configs(struct broker *b);
struct partition *partition_get(struct broker *b, const char *topic, int32_t index);
/* Iterates all topics: for (t = topic_iter_first(b); t; t = topic_iter_next(b, t)) */
struct topic *topic_iter_first(struct broker *b);
struct topic *topic_iter_next(struct broker *b, struct topic *t);
/* Loads every topic found in the log dirs (startup). */
int topics_load(struct broker *b);
int topics_save(struct broker *b);
void topics_close_all(struct broker *b);
/* Writes the offset checkpoint files for every partition. */
void topics_checkpoint(struct broker *b);

/* Server lifecycle (server.c). */
int broker_serve(struct broker_config *cfg);
/* broker_serve in parts, for in-process drivers (the request-path fuzzer): storage opened,
 * listening, timers set; the caller turns the loop; broker_close shuts down as on SIGTERM.
 * NULL when it cannot start (logged). */
struct broker *broker_open(const struct broker_config *cfg);
struct loop *broker_loop(struct broker *b);
struct net *broker_net(struct broker *b);
void broker_close(struct broker *b);
/* Marks the partition as needing the next group-commit flush. */
void broker_mark_dirty(struct broker *b, struct partition *p);
/* Before partitions are freed: waits for the sync in flight and syncs everything appended so
 * far here; every durable waiter is then met (answered before the loop sleeps), so nothing
 * points at them. */
void broker_commit_drain(struct broker *b);
/* One-shot timers on the broker's loop (mono ms), for handlers and the group coordinator. */
typedef void (*broker_timer_fn)(struct broker *b, void *arg);
uint64_t broker_timer_add(struct broker *b, int64_t when_mono_ms, broker_timer_fn fn, void *arg);
void broker_timer_cancel(struct broker *b, uint64_t id);

#endif
