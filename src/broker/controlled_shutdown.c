/* controlled_shutdown: ControlledShutdown (7) and ElectLeaders (43) on the controller, and the
 * broker's own side of a controlled shutdown (Kafka 3.9's KafkaServer.controlledShutdown): on
 * SIGTERM it asks the controller to move its leaderships away before it closes its session. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/sasl.h"
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "common/logging.h"
#include "common/util.h"
#include "net/client.h"
#include "proto/messages.h"

#define WHO "KafkaController"
/* How long the controller lets one ControlledShutdown wait for its moves to be written and
 * read back; below the broker's request timeout, so an answer comes first. */
#define CONTROLLED_SHUTDOWN_SETTLE_MS 20000
/* The broker's request timeout (Kafka's controller.socket.timeout.ms default). */
#define CONTROLLED_SHUTDOWN_REQUEST_MS 30000

/* ---- on the controller ---- */

/* The partitions broker id still leads with another replica (Kafka's partitionsRemaining). */
static int remaining_fill(struct broker *b, struct request *r, int32_t id)
{
    struct controlled_shutdown_response *resp = r->resp;
    struct cluster_topic *const *topics;
    int nt = cluster_topics(b->cluster, &topics);
    int32_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (int i = 0; i < nt; i++) {
            const struct cluster_topic *t = topics[i];
            if (!cluster_topic_visible(t))
                continue;
            for (int32_t p = 0; p < t->npartitions; p++) {
                const struct cluster_partition *cp = &t->parts[p];
                if (cp->leader != id || cp->nreplicas <= 1)
                    continue;
                if (pass == 1) {
                    resp->remaining_partitions[n].topic_name =
                        kstr_of(request_strdup(r, t->name));
                    resp->remaining_partitions[n].partition_index = p;
                }
                n++;
            }
        }
        if (pass == 0) {
            RESP_ARRAY(r, resp->remaining_partitions, n);
            if (resp->remaining_partitions == NULL && n > 0)
                return -1;
        }
    }
    resp->n_remaining_partitions = n;
    return 0;
}

static void shutdown_settled(void *arg, int kerr, const char *msg)
{
    (void)msg;
    struct request *r = arg;
    struct controlled_shutdown_request *req = r->body;
    struct controlled_shutdown_response *resp = r->resp;
    if (kerr == KERR_NOT_CONTROLLER) {
        resp->error_code = KERR_NOT_CONTROLLER;
    } else if (r->broker->cluster != NULL && remaining_fill(r->broker, r, req->broker_id) != 0) {
        request_continue(r, REQUEST_CLOSE);
        return;
    }
    LOG_INFO(WHO, "Controlled shutdown of broker %d: %d partitions remaining (error %d)",
             req->broker_id, resp->n_remaining_partitions, resp->error_code);
    request_finish(r);
}

enum request_status handle_controlled_shutdown(struct broker *b, struct request *r)
{
    struct controlled_shutdown_request *req = r->body;
    struct controlled_shutdown_response *resp = r->resp;
    if (!authorize(b, r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED; /* only brokers ask it */
        return REQUEST_DONE;
    }
    if (b->cluster == NULL) {
        resp->error_code = KERR_NOT_CONTROLLER; /* one node has no controller to ask */
        return REQUEST_DONE;
    }
    LOG_INFO(WHO, "Shutting down broker %d (epoch %" PRId64 ")", req->broker_id,
             req->broker_epoch);
    bool pending;
    int e = cluster_controlled_shutdown(b->cluster, req->broker_id,
                                        r->api_version >= 2 ? req->broker_epoch : -1,
                                        CONTROLLED_SHUTDOWN_SETTLE_MS, shutdown_settled, r,
                                        &pending);
    if (e != KERR_NONE) {
        resp->error_code = (int16_t)e;
        return REQUEST_DONE;
    }
    if (pending)
        return REQUEST_PENDING;
    return remaining_fill(b, r, req->broker_id) == 0 ? REQUEST_DONE : REQUEST_CLOSE;
}

/* ElectLeaders: each partition named (all, when null) is elected by the controller; answered
 * once the elections are written and read back, at the latest after timeout_ms (Kafka's
 * DelayedElectLeader). With all partitions, those needing no election are left out. */
struct elect_arg {
    struct request *r;
};

static void elections_done(void *arg, int kerr, const char *msg)
{
    (void)msg;
    struct request *r = arg;
    struct elect_leaders_response *resp = r->resp;
    /* Whatever was started and not read back by the deadline: REQUEST_TIMED_OUT, as Kafka. */
    for (int32_t i = 0; kerr != KERR_NONE && i < resp->n_replica_election_results; i++)
        for (int32_t k = 0; k < resp->replica_election_results[i].n_partition_result; k++) {
            struct elect_leaders_response_partition_result *pr =
                &resp->replica_election_results[i].partition_result[k];
            if (pr->error_code == KERR_NONE)
                pr->error_code = (int16_t)kerr;
        }
    request_finish(r);
}

static int elect_one(struct broker *b, struct request *r, const char *topic, int32_t p,
                     bool unclean, struct elect_leaders_response_partition_result *out)
{
    char msg[256];
    int e = cluster_elect_leader(b->cluster, topic, p, unclean, msg, sizeof(msg));
    out->partition_id = p;
    out->error_code = (int16_t)e;
    out->error_message = msg[0] ? kstr_of(request_strdup(r, msg)) : kstr_null();
    return e;
}

static enum request_status elect_all(struct broker *b, struct request *r, bool unclean)
{
    struct elect_leaders_response *resp = r->resp;
    struct cluster_topic *const *topics;
    int nt = cluster_topics(b->cluster, &topics);
    RESP_ARRAY(r, resp->replica_election_results, nt);
    if (resp->replica_election_results == NULL && nt > 0)
        return REQUEST_CLOSE;
    int32_t n = 0;
    for (int i = 0; i < nt; i++) {
        const struct cluster_topic *t = topics[i];
        if (!cluster_topic_visible(t) || t->npartitions == 0)
            continue;
        struct elect_leaders_response_replica_election_result *tr =
            &resp->replica_election_results[n];
        RESP_ARRAY(r, tr->partition_result, t->npartitions);
        if (tr->partition_result == NULL)
            return REQUEST_CLOSE;
        tr->topic = kstr_of(request_strdup(r, t->name));
        int32_t k = 0;
        for (int32_t p = 0; p < t->npartitions; p++) {
            if (elect_one(b, r, t->name, p, unclean, &tr->partition_result[k]) !=
                CLUSTER_ERR_ELECTION_NOT_NEEDED)
                k++;
        }
        tr->n_partition_result = k;
        n += k > 0;
    }
    resp->n_replica_election_results = n;
    return REQUEST_DONE;
}

enum request_status handle_elect_leaders(struct broker *b, struct request *r)
{
    struct elect_leaders_request *req = r->body;
    struct elect_leaders_response *resp = r->resp;
    bool unclean = r->api_version >= 1 && req->election_type == 1;
    if (!authorize(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED; /* KafkaApis: ALTER on it */
        return REQUEST_DONE;
    }
    if (r->api_version >= 1 && req->election_type != 0 && req->election_type != 1) {
        resp->error_code = KERR_INVALID_REQUEST;
        return REQUEST_DONE;
    }
    if (b->cluster == NULL) {
        resp->error_code = KERR_NOT_CONTROLLER; /* one node has no controller */
        return REQUEST_DONE;
    }
    /* Not the controller: each partition answers NOT_CONTROLLER (cluster_elect_leader), as
     * Kafka's ZooKeeper-mode processReplicaLeaderElection when it is not active. */
    enum request_status st;
    if (req->n_topic_partitions < 0) {
        st = elect_all(b, r, unclean);
    } else {
        int32_t nt = req->n_topic_partitions;
        RESP_ARRAY(r, resp->replica_election_results, nt);
        if (resp->replica_election_results == NULL && nt > 0)
            return REQUEST_CLOSE;
        resp->n_replica_election_results = nt;
        for (int32_t i = 0; i < nt; i++) {
            struct elect_leaders_request_topic_partitions *in = &req->topic_partitions[i];
            struct elect_leaders_response_replica_election_result *tr =
                &resp->replica_election_results[i];
            char *topic = request_alloc(r, (size_t)(in->topic.len > 0 ? in->topic.len : 0) + 1);
            int32_t np = in->n_partitions > 0 ? in->n_partitions : 0;
            RESP_ARRAY(r, tr->partition_result, np);
            if (topic == NULL || (tr->partition_result == NULL && np > 0))
                return REQUEST_CLOSE;
            if (in->topic.len > 0)
                memcpy(topic, in->topic.ptr, (size_t)in->topic.len);
            topic[in->topic.len > 0 ? in->topic.len : 0] = '\0';
            tr->topic = in->topic;
            tr->n_partition_result = np;
            for (int32_t k = 0; k < np; k++)
                elect_one(b, r, topic, in->partitions[k], unclean, &tr->partition_result[k]);
        }
        st = REQUEST_DONE;
    }
    if (st != REQUEST_DONE)
        return st;
    if (cluster_await_elections(b->cluster, req->timeout_ms, elections_done, r))
        return REQUEST_PENDING;
    return REQUEST_DONE;
}

/* ---- the broker's side: KafkaServer.controlledShutdown ---- */

/* How often an attempt looks at its connection: one that fails to connect ends the attempt
 * at once (Kafka's awaitReady failing), not after the request timeout. */
#define CONTROLLED_SHUTDOWN_WATCH_MS 100

struct controlled_shutdown {
    struct broker *b;
    struct client *client;
    struct client_conn *conn;
    int32_t conn_to;                 /* the broker conn goes to */
    int attempts_left;
    uint64_t attempt_gen;            /* answers of an older attempt are dropped */
    bool awaiting;                   /* the current attempt's answer */
    uint64_t disconnects;            /* of conn when the attempt was sent */
    uint64_t timer;                  /* back-off, or the connection watch */
    struct controlled_shutdown_request req; /* borrowed by the client until its callback */
    void (*done)(struct broker *b);
    bool finished;
};

/* One request's callback argument (freed by the callback, which always comes). */
struct attempt_arg {
    struct controlled_shutdown *cs;
    uint64_t gen;
};

static void attempt(struct controlled_shutdown *cs);

static void finish(struct controlled_shutdown *cs, bool succeeded)
{
    if (cs->finished)
        return;
    cs->finished = true;
    if (cs->timer != 0)
        loop_timer_cancel(cs->b->loop, cs->timer);
    cs->timer = 0;
    if (!succeeded)
        LOG_WARN("KafkaServer", "Proceeding to do an unclean shutdown as all the controlled "
                 "shutdown attempts failed");
    else
        LOG_INFO("KafkaServer", "Controlled shutdown request returned successfully");
    cs->done(cs->b);
}

static void retry_fire(struct loop *l, void *arg)
{
    (void)l;
    struct controlled_shutdown *cs = arg;
    cs->timer = 0;
    attempt(cs);
}

static void failed_attempt(struct controlled_shutdown *cs)
{
    cs->awaiting = false;
    cs->attempt_gen++;
    if (cs->timer != 0)
        loop_timer_cancel(cs->b->loop, cs->timer);
    cs->timer = 0;
    if (cs->attempts_left <= 0) {
        finish(cs, false);
        return;
    }
    LOG_INFO("KafkaServer", "Retrying controlled shutdown (%d retries remaining) in %" PRId64
             " ms", cs->attempts_left, cs->b->cfg.controlled_shutdown_retry_backoff_ms);
    cs->timer = loop_timer_add(cs->b->loop,
                               mono_ms() + cs->b->cfg.controlled_shutdown_retry_backoff_ms,
                               retry_fire, cs);
}

static void on_answer(void *arg, const struct client_response *resp)
{
    struct attempt_arg a = *(struct attempt_arg *)arg;
    free(arg);
    struct controlled_shutdown *cs = a.cs;
    if (cs->finished || !cs->awaiting || a.gen != cs->attempt_gen)
        return;
    const struct controlled_shutdown_response *body = resp->body;
    if (resp->error != KERR_NONE || body == NULL) {
        LOG_WARN("KafkaServer", "Error during controlled shutdown, possibly because leader "
                 "movement took longer than the configured controller.socket.timeout.ms and/or "
                 "request.timeout.ms: %s (error %d)", resp->reason ? resp->reason : "",
                 resp->error);
        failed_attempt(cs);
        return;
    }
    if (body->error_code == KERR_NONE && body->n_remaining_partitions == 0) {
        cs->awaiting = false;
        finish(cs, true);
        return;
    }
    char list[512] = "";
    for (int32_t i = 0, off = 0; i < body->n_remaining_partitions && off < 400; i++)
        off += snprintf(list + off, sizeof(list) - (size_t)off, "%s%.*s-%d", i ? "," : "",
                        body->remaining_partitions[i].topic_name.len,
                        body->remaining_partitions[i].topic_name.ptr,
                        body->remaining_partitions[i].partition_index);
    LOG_INFO("KafkaServer", "Remaining partitions to move: %s (error %d, %d partitions)", list,
             body->error_code, body->n_remaining_partitions);
    failed_attempt(cs);
}

/* The controller's connection failed (refused, reset) before an answer: the attempt failed. */
static void watch_fire(struct loop *l, void *arg)
{
    struct controlled_shutdown *cs = arg;
    cs->timer = 0;
    if (cs->finished || !cs->awaiting)
        return;
    struct client_conn_stats st;
    client_conn_stats(cs->conn, &st);
    if (st.disconnects > cs->disconnects) {
        LOG_WARN("KafkaServer", "Error during controlled shutdown: the connection to the "
                 "controller %d failed", cs->conn_to);
        client_conn_destroy(cs->conn); /* its request completes later, and is dropped */
        cs->conn = NULL;
        failed_attempt(cs);
        return;
    }
    cs->timer = loop_timer_add(l, mono_ms() + CONTROLLED_SHUTDOWN_WATCH_MS, watch_fire, cs);
}

static void attempt(struct controlled_shutdown *cs)
{
    struct broker *b = cs->b;
    cs->attempts_left--;
    int32_t controller = b->cluster ? cluster_controller_id(b->cluster) : -1;
    const struct cluster_broker *live = NULL;
    int n = b->cluster ? cluster_brokers(b->cluster, &live) : 0;
    const struct cluster_broker *to = NULL;
    for (int i = 0; i < n && controller >= 0; i++)
        if (live[i].id == controller)
            to = &live[i];
    if (to == NULL || to->port <= 0) {
        LOG_INFO("KafkaServer", "No controller known for the controlled shutdown");
        failed_attempt(cs);
        return;
    }
    if (cs->conn != NULL && cs->conn_to != controller) {
        client_conn_destroy(cs->conn);
        cs->conn = NULL;
    }
    if (cs->conn == NULL) {
        cs->conn = client_connect(cs->client, to->host, to->port);
        cs->conn_to = controller;
        if (cs->conn == NULL) {
            LOG_WARN("KafkaServer", "Cannot connect to the controller %d at %s:%d (not a "
                     "numeric address or localhost)", controller, to->host, to->port);
            failed_attempt(cs);
            return;
        }
    }
    cs->req.broker_id = b->cfg.node_id;
    cs->req.broker_epoch = cluster_broker_epoch(b->cluster);
    LOG_INFO("KafkaServer", "Sending controlled shutdown request to controller %d (broker "
             "epoch %" PRId64 ")", controller, cs->req.broker_epoch);
    struct client_request creq = {.api_key = PROTO_API_CONTROLLED_SHUTDOWN, .min_version = 1,
                                  .max_version = 3, .body = &cs->req,
                                  .timeout_ms = CONTROLLED_SHUTDOWN_REQUEST_MS};
    struct attempt_arg *a = malloc(sizeof(*a));
    if (a == NULL) {
        failed_attempt(cs);
        return;
    }
    *a = (struct attempt_arg){.cs = cs, .gen = cs->attempt_gen};
    struct client_conn_stats st;
    client_conn_stats(cs->conn, &st);
    cs->disconnects = st.disconnects;
    if (client_send(cs->conn, &creq, on_answer, a) != 0) {
        free(a);
        failed_attempt(cs);
        return;
    }
    cs->awaiting = true;
    cs->timer = loop_timer_add(b->loop, mono_ms() + CONTROLLED_SHUTDOWN_WATCH_MS, watch_fire, cs);
}

struct controlled_shutdown *controlled_shutdown_start(struct broker *b,
                                                      void (*done)(struct broker *b))
{
    struct controlled_shutdown *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        return NULL;
    struct client_config cc;
    client_config_defaults(&cc);
    char id[64];
    snprintf(id, sizeof(id), "broker-%d-controlled-shutdown", b->cfg.node_id);
    cc.client_id = id;
    cc.request_timeout_ms = CONTROLLED_SHUTDOWN_REQUEST_MS;
    sasl_client_config(b, &cc); /* inter.broker.listener.name's TLS and SASL */
    cs->client = client_create(b->loop, &cc);
    if (cs->client == NULL) {
        free(cs);
        return NULL;
    }
    cs->b = b;
    cs->done = done;
    cs->attempts_left = b->cfg.controlled_shutdown_max_retries;
    LOG_INFO("KafkaServer", "Starting controlled shutdown");
    if (cs->attempts_left <= 0)
        finish(cs, false);
    else
        attempt(cs);
    return cs;
}

/* After done ran (or at shutdown): every callback still due comes inside client_destroy and
 * only frees its argument. */
void controlled_shutdown_free(struct controlled_shutdown *cs)
{
    if (cs == NULL)
        return;
    if (cs->timer != 0)
        loop_timer_cancel(cs->b->loop, cs->timer);
    cs->finished = true;
    client_destroy(cs->client);
    free(cs);
}
