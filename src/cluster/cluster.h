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

struct cluster_config {
    const char *zookeeper_connect;      /* "h1:p1,h2:p2/chroot" */
    int32_t session_timeout_ms;         /* zookeeper.session.timeout.ms */
    int32_t connection_timeout_ms;      /* zookeeper.connection.timeout.ms */
    int32_t broker_id;
    const char *listener_name;          /* "PLAINTEXT" */
    const char *host;                   /* advertised */
    int32_t port;
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

/* Kafka's znode contents (for the tests' readers and the next steps). */
int cluster_broker_json(char *out, size_t outlen, const char *listener_name, const char *host,
                        int32_t port, int64_t timestamp_ms);
/* The endpoint of a /brokers/ids/<id> value for listener_name (else its host/port). 0 or -1. */
int cluster_broker_parse(const char *json, const char *listener_name, char *host,
                         size_t hostlen, int32_t *port);

#endif
