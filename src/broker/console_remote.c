/* console_remote: gathers of Kafka requests to the other brokers of a cluster for the
 * console (console_remote.h). The gathers in progress are listed in the broker's
 * console_remote, with the connections they use; all on the loop thread. */
#include "broker/console_remote.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/peer_conns.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "common/jsonw.h"
#include "group/coordinator.h"
#include "net/http.h"

#define OFFSETS_TOPIC "__consumer_offsets"
#define CONSOLE_GATHER_ARENA (64u << 20) /* what one gather may keep */

struct console_remote {
    struct peer_conns peers;
    struct console_gather *gathers;   /* in progress */
    int ngathers;
    bool stopping;
};

/* One request in flight: its gather and callback (in the gather's arena). */
struct gather_call {
    struct console_gather *g;
    console_answer_fn fn;
    void *arg;
};

static struct console_remote *remote_of(struct broker *b)
{
    if (b->console_remote == NULL) {
        b->console_remote = calloc(1, sizeof(*b->console_remote));
        if (b->console_remote != NULL)
            peer_conns_init(&b->console_remote->peers, b, "gregor-console", "console",
                            "console", CONSOLE_PEERS_MAX);
    }
    return b->console_remote;
}

static void gather_free(struct console_gather *g)
{
    struct console_remote *r = g->cx.b->console_remote;
    if (g->cleanup != NULL)
        g->cleanup(g);
    if (g->prev != NULL)
        g->prev->next = g->next;
    else
        r->gathers = g->next;
    if (g->next != NULL)
        g->next->prev = g->prev;
    r->ngathers--;
    arena_reset(&g->arena);
    free(g);
}

struct console_gather *console_gather_new(struct console_ctx *cx, size_t state_size)
{
    struct console_remote *r = remote_of(cx->b);
    if (r == NULL || r->stopping) {
        console_error(cx->req, 503, "UNKNOWN_SERVER_ERROR", "the console is stopping");
        return NULL;
    }
    if (r->ngathers >= CONSOLE_GATHERS_MAX) {
        console_error(cx->req, 503, "REQUEST_TIMED_OUT",
                      "too many console calls are waiting for other brokers: try again");
        return NULL;
    }
    struct console_gather *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        console_error(cx->req, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return NULL;
    }
    g->cx = *cx;
    arena_init(&g->arena, CONSOLE_GATHER_ARENA);
    if (state_size > 0 && (g->state = arena_alloc(&g->arena, state_size)) == NULL) {
        arena_reset(&g->arena);
        free(g);
        console_error(cx->req, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return NULL;
    }
    peer_conns_prune(&r->peers); /* brokers gone since the last call */
    g->next = r->gathers;
    if (r->gathers != NULL)
        r->gathers->prev = g;
    r->gathers = g;
    r->ngathers++;
    return g;
}

static void run_step(struct console_gather *g)
{
    console_step_fn step = g->step;
    g->step = NULL;
    assert(step != NULL && g->pending == 0);
    step(g);
}

static void answered(void *arg, const struct client_response *resp)
{
    struct gather_call *c = arg;
    struct console_gather *g = c->g;
    assert(g->pending > 0);
    g->pending--;
    if (resp->error != KERR_NONE)
        g->failed++;
    if (!g->dropped)
        c->fn(g, c->arg, resp);
    if (g->pending > 0)
        return;
    if (g->dropped)
        gather_free(g);
    else if (g->step != NULL)
        run_step(g);
}

int console_gather_send(struct console_gather *g, int32_t broker_id, int16_t api_key,
                        int16_t min_version, int16_t max_version, const void *body,
                        console_answer_fn fn, void *arg)
{
    struct console_remote *r = g->cx.b->console_remote;
    if (r == NULL || r->stopping)
        return -1;
    struct client_conn *conn = peer_conns_get(&r->peers, broker_id);
    struct gather_call *c = arena_alloc(&g->arena, sizeof(*c));
    if (conn == NULL || c == NULL)
        return -1;
    *c = (struct gather_call){.g = g, .fn = fn, .arg = arg};
    struct client_request req = {.api_key = api_key, .min_version = min_version,
                                 .max_version = max_version, .body = body,
                                 .timeout_ms = CONSOLE_REMOTE_TIMEOUT_MS};
    if (client_send(conn, &req, answered, c) != 0)
        return -1;
    g->pending++;
    return 0;
}

void console_gather_then(struct console_gather *g, console_step_fn step)
{
    assert(g->step == NULL);
    g->step = step;
    if (g->pending == 0)
        run_step(g);
}

void console_gather_reply(struct console_gather *g, int status, struct jsonw *w)
{
    assert(g->pending == 0 && !g->dropped);
    console_reply(g->cx.req, status, w, NULL);
    gather_free(g);
}

void console_gather_error(struct console_gather *g, int status, const char *error,
                          const char *message)
{
    assert(g->pending == 0 && !g->dropped);
    console_error(g->cx.req, status, error, message);
    gather_free(g);
}

char *console_gather_strdup(struct console_gather *g, const char *s, size_t len)
{
    return arena_strndup(&g->arena, s != NULL ? s : "", s != NULL ? len : 0);
}

void console_remote_stop(struct broker *b)
{
    struct console_remote *r = b->console_remote;
    if (r == NULL)
        return;
    r->stopping = true;
    for (struct console_gather *g = r->gathers; g != NULL; g = g->next) {
        g->dropped = true;
        g->cx.req = NULL;
    }
    /* Every request in flight completes inside this call: the dropped gathers are freed as
     * their last answer comes. */
    peer_conns_free(&r->peers);
    assert(r->gathers == NULL && r->ngathers == 0);
    free(r);
    b->console_remote = NULL;
}

void console_unavailable_add(struct console_unavailable *u, int32_t id)
{
    if (console_unavailable_has(u, id))
        return;
    if (u->n < CONSOLE_UNAVAILABLE_MAX)
        u->ids[u->n++] = id;
}

bool console_unavailable_has(const struct console_unavailable *u, int32_t id)
{
    for (int i = 0; i < u->n; i++)
        if (u->ids[i] == id)
            return true;
    return false;
}

void console_unavailable_write(struct jsonw *w, const struct console_unavailable *u)
{
    jsonw_key(w, "unavailable_brokers");
    jsonw_arr(w);
    for (int i = 0; i < u->n; i++)
        jsonw_i64(w, u->ids[i]);
    jsonw_arr_end(w);
}

int32_t console_partition_leader(struct broker *b, const char *topic, int32_t partition)
{
    if (b->cluster == NULL)
        return b->cfg.node_id;
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, topic);
    if (ct == NULL || !ct->read || partition < 0 || partition >= ct->npartitions)
        return -1;
    return ct->parts[partition].leader;
}

int32_t console_group_coordinator(struct broker *b, const char *group)
{
    int32_t n = b->cfg.offsets_topic_num_partitions;
    if (b->cluster != NULL) {
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, OFFSETS_TOPIC);
        if (ct == NULL || !ct->read)
            return -1;
        n = ct->npartitions;
    }
    return console_partition_leader(b, OFFSETS_TOPIC, gc_partition_for(group, n));
}
