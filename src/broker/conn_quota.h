/* conn_quota: KIP-612's connection creation rates, the broker's answer to net/'s admission
 * hook (net_set_admit): listener.name.<l>.max.connection.creation.rate and the broker's
 * max.connection.creation.rate (not on the inter-broker listener) pause the listener for the
 * throttle time, as Kafka's Acceptor waits; an address over its ip entity's
 * connection_creation_rate quota (or the default ip's) has its new connection closed after
 * the throttle time, unserved, as Kafka's throttled sockets. */
#ifndef GREGOR_BROKER_CONN_QUOTA_H
#define GREGOR_BROKER_CONN_QUOTA_H

#include <stdint.h>

#include "net/conn.h"

struct net_admit broker_conn_admit(void *ctx, const struct net_listener_info *li,
                                   const char *host, int64_t now_ms);

#endif
