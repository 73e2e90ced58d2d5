/* ConsumerGroupHeartbeat (68): the KIP-848 consumer protocol — joins, heartbeats and leaves of
 * consumer group members; the coordinator (group/consumer_group.c) answers at once with the
 * member epoch and, when it changed, the member's assignment (topic ids + partitions). */
#include <string.h>

#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "group/consumer_group.h"
#include "proto/messages.h"

/* ---- the broker's topics as the coordinator sees them ---- */

static void topic_info(const struct topic *t, struct cg_topic *out)
{
    out->name = t->name;
    out->id = t->id;
    out->partitions = t->npartitions;
    out->internal = t->internal;
}

/* In a cluster the topics are ZooKeeper's (the coordinator assigns partitions of topics other
 * brokers lead and that are not open here); one node's are its own. */
static void cluster_topic_info(const struct cluster_topic *t, struct cg_topic *out)
{
    out->name = t->name;
    memcpy(out->id.b, t->id, sizeof(out->id.b));
    out->partitions = t->npartitions;
    out->internal = topic_name_is_internal(t->name);
}

static bool view_by_name(void *ctx, const char *name, struct cg_topic *out)
{
    struct broker *b = ctx;
    if (name == NULL)
        return false;
    if (b->cluster != NULL) {
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, name);
        if (ct == NULL || !ct->read)
            return false;
        cluster_topic_info(ct, out);
        return true;
    }
    struct topic *t = topic_find(b, name);
    if (t != NULL)
        topic_info(t, out);
    return t != NULL;
}

static bool view_by_id(void *ctx, const struct kuuid *id, struct cg_topic *out)
{
    struct broker *b = ctx;
    if (b->cluster != NULL) {
        const char *name = broker_cluster_topic_by_id(b, id);
        return name != NULL && view_by_name(ctx, name, out);
    }
    struct topic *t = topic_find_by_id(b, id);
    if (t != NULL)
        topic_info(t, out);
    return t != NULL;
}

static void view_each(void *ctx, cg_topic_fn fn, void *arg)
{
    struct broker *b = ctx;
    struct cg_topic ct;
    if (b->cluster != NULL) {
        struct cluster_topic *const *ts;
        int n = cluster_topics(b->cluster, &ts);
        for (int i = 0; i < n; i++) {
            if (!ts[i]->read)
                continue;
            cluster_topic_info(ts[i], &ct);
            fn(arg, &ct);
        }
        return;
    }
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
        topic_info(t, &ct);
        fn(arg, &ct);
    }
}

void gh_topic_view(struct broker *b, struct cg_topic_view *out)
{
    *out = (struct cg_topic_view){b, view_by_name, view_by_id, view_each};
}

static const char *str_or_null(const struct kstr *s)
{
    return s->ptr;
}

/* The owned partitions of the request, flattened (NULL when the field is null). */
static struct cg_tp *owned_partitions(struct request *r, const struct consumer_group_heartbeat_request *req,
                                      int32_t *n_out)
{
    *n_out = -1;
    if (req->n_topic_partitions < 0)
        return NULL;
    int32_t total = 0;
    for (int32_t i = 0; i < req->n_topic_partitions; i++)
        total += req->topic_partitions[i].n_partitions > 0 ? req->topic_partitions[i].n_partitions : 0;
    struct cg_tp *v = request_alloc(r, sizeof(*v) * ((size_t)total + 1));
    if (v == NULL)
        return NULL;
    int32_t k = 0;
    for (int32_t i = 0; i < req->n_topic_partitions; i++)
        for (int32_t j = 0; j < req->topic_partitions[i].n_partitions; j++)
            v[k++] = (struct cg_tp){req->topic_partitions[i].topic_id,
                                    req->topic_partitions[i].partitions[j]};
    *n_out = k;
    return v;
}

/* The assignment in the response: partitions grouped by topic id (the set is sorted). */
static int fill_assignment(struct request *r, struct consumer_group_heartbeat_response *resp,
                           const struct cg_tp *v, int n)
{
    resp->assignment = request_alloc(r, sizeof(*resp->assignment));
    if (resp->assignment == NULL)
        return -1;
    struct consumer_group_heartbeat_response_topic_partitions *tp;
    RESP_ARRAY(r, tp, n);
    int32_t *parts = request_alloc(r, sizeof(int32_t) * ((size_t)n + 1));
    if (tp == NULL || parts == NULL)
        return -1;
    int nt = 0;
    for (int i = 0; i < n; i++) {
        if (nt == 0 || memcmp(tp[nt - 1].topic_id.b, v[i].topic_id.b, 16) != 0) {
            tp[nt].topic_id = v[i].topic_id;
            tp[nt].partitions = parts + i;
            tp[nt].n_partitions = 0;
            nt++;
        }
        parts[i] = v[i].partition;
        tp[nt - 1].n_partitions++;
    }
    resp->assignment->topic_partitions = tp;
    resp->assignment->n_topic_partitions = nt;
    return 0;
}

enum request_status handle_consumer_group_heartbeat(struct broker *b, struct request *r)
{
    struct consumer_group_heartbeat_request *req = r->body;
    struct consumer_group_heartbeat_response *resp = r->resp;
    if (!authorize_kstr(b, r, ACL_OP_READ, ACL_RES_GROUP, req->group_id.ptr, req->group_id.len)) {
        resp->error_code = KERR_GROUP_AUTHORIZATION_FAILED; /* KafkaApis: READ on the group */
        return REQUEST_DONE;
    }
    /* Kafka 4 (KAFKA-18813): a subscription naming a topic the principal may not DESCRIBE is
     * refused whole with TOPIC_AUTHORIZATION_FAILED, before the coordinator sees it. */
    bool described = true;
    for (int32_t i = 0; i < req->n_subscribed_topic_names; i++) { /* each denial logged */
        struct kstr t = req->subscribed_topic_names[i];
        described &= authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t.ptr, t.len);
    }
    if (!described) {
        resp->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
        return REQUEST_DONE;
    }
    resp->error_code = group_store_check(b, req->group_id.ptr);
    if (resp->error_code != KERR_NONE)
        return REQUEST_DONE;
    resp->error_code = gh_ids_error(req->group_id, req->member_id, req->instance_id);
    if (resp->error_code != KERR_NONE)
        return REQUEST_DONE;
    int32_t nt = req->n_subscribed_topic_names;
    const char **topics = NULL;
    if (nt >= 0) {
        topics = request_alloc(r, sizeof(*topics) * ((size_t)nt + 1));
        if (topics == NULL)
            return REQUEST_CLOSE;
        /* A name holding a NUL is no topic's: subscribing to it matches nothing (its prefix
         * must not be assigned). */
        int32_t kept = 0;
        for (int32_t i = 0; i < nt; i++)
            if (!kstr_has_nul(req->subscribed_topic_names[i]))
                topics[kept++] = req->subscribed_topic_names[i].ptr ? req->subscribed_topic_names[i].ptr : "";
        nt = kept;
    }
    int32_t n_owned;
    struct cg_tp *owned = owned_partitions(r, req, &n_owned);
    if (req->n_topic_partitions >= 0 && owned == NULL)
        return REQUEST_CLOSE;
    struct cg_heartbeat_args a = {
        .version = r->api_version,
        .group_id = req->group_id.ptr,
        .member_id = req->member_id.ptr ? req->member_id.ptr : "",
        .member_epoch = req->member_epoch,
        .instance_id = str_or_null(&req->instance_id),
        .rack_id = str_or_null(&req->rack_id),
        .rebalance_timeout_ms = req->rebalance_timeout_ms,
        .topics = topics,
        .n_topics = nt,
        .regex = r->api_version >= 1 ? str_or_null(&req->subscribed_topic_regex) : NULL,
        .assignor = str_or_null(&req->server_assignor),
        .owned = owned,
        .n_owned = n_owned,
        .client_id = r->client_id.ptr ? r->client_id.ptr : "",
        .client_host = gh_client_host(r),
    };
    struct cg_topic_view view = {b, view_by_name, view_by_id, view_each};
    struct cg_heartbeat_result res;
    cg_heartbeat(b->groups, &view, &a, &res);
    resp->error_code = res.error;
    resp->error_message = res.error_message[0] ? gh_str(r, res.error_message) : kstr_null();
    resp->member_id = gh_str(r, res.member_id);
    resp->member_epoch = res.member_epoch;
    resp->heartbeat_interval_ms = res.heartbeat_interval_ms;
    if (res.error == KERR_NONE && res.has_assignment &&
        fill_assignment(r, resp, res.assignment, res.n_assignment) != 0) {
        cg_heartbeat_result_free(&res);
        return REQUEST_CLOSE;
    }
    cg_heartbeat_result_free(&res);
    return REQUEST_DONE;
}
