/* peer_conns: connections to the other live brokers of a ZooKeeper cluster, each at the
 * address it registered for inter.broker.listener.name, through one outbound client
 * (net/client.c) made on first use with that listener's TLS and SASL. A broker back at another
 * address gets a new connection; one gone from /brokers/ids has its connection closed by
 * peer_conns_prune, so requests in flight to it fail now rather than at their timeout. Used by
 * the transaction markers and the console. Loop thread only. */
#ifndef GREGOR_BROKER_PEER_CONNS_H
#define GREGOR_BROKER_PEER_CONNS_H

#include <stdint.h>

#include "cluster/cluster.h"

struct broker;
struct client;
struct client_conn;

struct peer_conn {
    int32_t id;
    char host[CLUSTER_HOST_MAX];
    int32_t port;
    struct client_conn *conn;
};

struct peer_conns {
    struct broker *b;
    const char *client_id;   /* static: the requests' client id */
    const char *who;         /* static: the log lines' source ("TransactionStateManager") */
    const char *what;        /* static: the connections' name in them ("marker") */
    int max;                 /* connections kept at most */
    struct client *client;   /* NULL until the first connection */
    struct peer_conn *peers;
    int n;
};

void peer_conns_init(struct peer_conns *pc, struct broker *b, const char *client_id,
                     const char *who, const char *what, int max);
/* The connection to live broker id, made when there is none: NULL when id is not live, the
 * table is full or no connection can be made. */
struct client_conn *peer_conns_get(struct peer_conns *pc, int32_t id);
/* Closes the connections of brokers no longer live (logged at INFO). */
void peer_conns_prune(struct peer_conns *pc);
/* Destroys the client: every request pending on it completes with NETWORK_EXCEPTION inside
 * this call. Not from one of its callbacks. */
void peer_conns_free(struct peer_conns *pc);

#endif
