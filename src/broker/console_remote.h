/* console_remote: the console as a Kafka client of its own ZooKeeper cluster. What another
 * broker holds (the groups it coordinates, the partitions it leads, their sizes and records)
 * is asked of that broker over the Kafka protocol, through the outbound client on the
 * inter-broker listener (broker/peer_conns.h), as Kafka UI or AKHQ would ask; what the caller
 * may see is still decided here by the authorizer, as the logged-in principal.
 *
 * An API call that needs other brokers is a gather: its requests go out at once, each answer
 * is handed to that request's callback, and once every request sent so far has answered (or
 * failed: NETWORK_EXCEPTION, REQUEST_TIMED_OUT) the gather's next step runs. A step sends more
 * (the next stage) and waits again, or answers the HTTP request, which frees the gather.
 * Bounded: CONSOLE_GATHERS_MAX calls in progress, each request CONSOLE_REMOTE_TIMEOUT_MS. */
#ifndef GREGOR_BROKER_CONSOLE_REMOTE_H
#define GREGOR_BROKER_CONSOLE_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/console_api.h"
#include "common/arena.h"
#include "net/client.h"

#define CONSOLE_GATHERS_MAX 64            /* console calls waiting for other brokers at once */
#define CONSOLE_REMOTE_TIMEOUT_MS 10000   /* one request to another broker */
#define CONSOLE_PEERS_MAX 1024            /* connections to other brokers kept */

struct console_gather;
/* An answer: resp->error is KERR_NONE with resp->body (the generated response struct, valid
 * during the call only: copy what is kept into g->arena) or why the request failed. */
typedef void (*console_answer_fn)(struct console_gather *g, void *arg,
                                  const struct client_response *resp);
typedef void (*console_step_fn)(struct console_gather *g);

struct console_gather {
    struct console_ctx cx;        /* the call's, copied (cx.req is answered by the last step) */
    struct arena arena;           /* request bodies and what the steps keep; freed with g */
    void *state;                  /* the caller's (in arena) */
    int pending;                  /* requests sent and not answered */
    int failed;                   /* requests answered with an error so far */
    console_step_fn step;         /* runs when pending reaches 0 */
    bool dropped;                 /* the listener stopped: no step runs, nobody is answered */
    console_step_fn cleanup;      /* NULL, or runs as g is freed (answered or dropped): frees
                                   * what the state holds outside the arena */
    struct console_gather *prev, *next;
};

/* A gather for cx's call with state_size zeroed bytes of state; NULL when too many are in
 * progress or no memory (cx's request answered 503/500). */
struct console_gather *console_gather_new(struct console_ctx *cx, size_t state_size);
/* Sends one request to broker id (the body and everything it points to must live in
 * g->arena or longer). 0: fn(g, arg, answer) runs once, later, from the loop; -1 when no
 * connection to id can be had or the client refused it: fn never runs. */
int console_gather_send(struct console_gather *g, int32_t broker_id, int16_t api_key,
                        int16_t min_version, int16_t max_version, const void *body,
                        console_answer_fn fn, void *arg);
/* step(g) once every request sent so far has answered: at once (inside this call) when none
 * is pending. */
void console_gather_then(struct console_gather *g, console_step_fn step);
/* Answers the call and frees g (its state and arena with it). */
void console_gather_reply(struct console_gather *g, int status, struct jsonw *w);
void console_gather_error(struct console_gather *g, int status, const char *error,
                          const char *message);
/* A copy of s (len bytes, NUL added) in g's arena; NULL when out of memory. */
char *console_gather_strdup(struct console_gather *g, const char *s, size_t len);

/* The brokers a cluster answer names as not answering in time (or no longer registered):
 * their values are null in it. Written as "unavailable_brokers": [ids]. */
#define CONSOLE_UNAVAILABLE_MAX 1024
struct console_unavailable {
    int32_t ids[CONSOLE_UNAVAILABLE_MAX];
    int n;
};
void console_unavailable_add(struct console_unavailable *u, int32_t id);
bool console_unavailable_has(const struct console_unavailable *u, int32_t id);
void console_unavailable_write(struct jsonw *w, const struct console_unavailable *u);

/* http_routes.c's console_stop, before the requests are freed: gathers in progress are
 * dropped (never answered) and the connections to other brokers closed. */
void console_remote_stop(struct broker *b);

/* Where things live in the cluster's view (ZooKeeper): the leader of a partition (-1: none
 * known), the broker coordinating a group (the leader of its __consumer_offsets partition;
 * -1 none). */
int32_t console_partition_leader(struct broker *b, const char *topic, int32_t partition);
int32_t console_group_coordinator(struct broker *b, const char *group);

#endif
