/* peer_conns: see peer_conns.h. */
#include "broker/peer_conns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/sasl.h"
#include "common/logging.h"
#include "net/client.h"

void peer_conns_init(struct peer_conns *pc, struct broker *b, const char *client_id,
                     const char *who, const char *what, int max)
{
    *pc = (struct peer_conns){.b = b, .client_id = client_id, .who = who, .what = what, .max = max};
}

struct client_conn *peer_conns_get(struct peer_conns *pc, int32_t id)
{
    if (pc->b->cluster == NULL)
        return NULL;
    const struct cluster_broker *live;
    int n = cluster_brokers(pc->b->cluster, &live);
    for (int i = 0; i < n; i++) {
        if (live[i].id != id)
            continue;
        for (int k = 0; k < pc->n; k++) {
            struct peer_conn *pe = &pc->peers[k];
            if (pe->id != id)
                continue;
            if (pe->port == live[i].port && strcmp(pe->host, live[i].host) == 0)
                return pe->conn;
            client_conn_destroy(pe->conn);
            *pe = pc->peers[--pc->n];
            break;
        }
        if (pc->n >= pc->max)
            return NULL;
        if (pc->client == NULL) {
            struct client_config cc;
            client_config_defaults(&cc);
            cc.client_id = pc->client_id;
            sasl_client_config(pc->b, &cc); /* inter.broker.listener.name's TLS and SASL */
            pc->client = client_create(pc->b->loop, &cc);
            if (pc->client == NULL)
                return NULL;
        }
        struct peer_conn *grown = realloc(pc->peers, sizeof(*grown) * (size_t)(pc->n + 1));
        if (grown == NULL)
            return NULL;
        pc->peers = grown;
        struct client_conn *c = client_connect(pc->client, live[i].host, live[i].port);
        if (c == NULL)
            return NULL;
        struct peer_conn *pe = &pc->peers[pc->n++];
        *pe = (struct peer_conn){.id = id, .port = live[i].port, .conn = c};
        snprintf(pe->host, sizeof(pe->host), "%s", live[i].host);
        return c;
    }
    return NULL;
}

void peer_conns_prune(struct peer_conns *pc)
{
    if (pc->b->cluster == NULL)
        return;
    const struct cluster_broker *live;
    int n = cluster_brokers(pc->b->cluster, &live);
    for (int k = 0; k < pc->n;) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = live[i].id == pc->peers[k].id;
        if (found) {
            k++;
            continue;
        }
        LOG_INFO(pc->who, "Closing the %s connection to broker %d (no longer registered)",
                 pc->what, pc->peers[k].id);
        client_conn_destroy(pc->peers[k].conn);
        pc->peers[k] = pc->peers[--pc->n];
    }
}

void peer_conns_free(struct peer_conns *pc)
{
    if (pc->client != NULL)
        client_destroy(pc->client);
    free(pc->peers);
    pc->client = NULL;
    pc->peers = NULL;
    pc->n = 0;
}
