/* configs_quotas: the client quota half of `gregor configs` (users, clients, ips). */
#ifndef GREGOR_CLI_CONFIGS_QUOTAS_H
#define GREGOR_CLI_CONFIGS_QUOTAS_H

#include <stdbool.h>

/* The client id of a user + client-id entity (--entity-type users ... --entity-type clients
 * ...): name, or the default (dflt), or (describe) every named one. */
struct configs_quota_client {
    const char *name;
    bool dflt;
};

/* --alter (add: "k=v,k=v", del: "k,k", both modified in place) or --describe of one entity
 * (type "users", "clients" or "ips"; name NULL with dflt for the default entity, NULL without it for
 * every named one on --describe), with client for a user + client-id entity. Prints as Kafka's ConfigCommand; returns the exit code. */
int configs_quotas_run(const char *bootstrap, int timeout_ms, bool alter, const char *type,
                       const char *name, bool dflt, const struct configs_quota_client *client,
                       char *add, char *del);

#endif
