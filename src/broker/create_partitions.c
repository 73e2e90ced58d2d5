/* CreatePartitions (37): grows a topic's partition count (never shrinks, as Kafka). The new
 * partitions are opened over several loop turns (create_topics.c's job) and shown only once
 * all exist; the request is answered then. On a cluster the topic's znode is rewritten
 * (src/cluster) and the request answered once this broker sees a leader for every new
 * partition (Kafka's DelayedCreatePartitions), bounded by timeout_ms. */
#include <stdio.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/mutation_quota.h"
#include "cluster/cluster.h"
#include "common/util.h"
#include "proto/messages.h"

static bool same_name(struct kstr a, struct kstr b)
{
    return a.ptr != NULL && b.ptr != NULL && a.len == b.len &&
           memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

/* Whether topic i's name came earlier in the request (answered there); *later: it comes
 * again after i (a duplicate: INVALID_REQUEST for that one answer). */
static bool named_earlier(const struct create_partitions_request *req, int32_t n, int32_t i,
                          bool *later)
{
    *later = false;
    for (int32_t k = 0; k < n; k++)
        if (k != i && same_name(req->topics[k].name, req->topics[i].name)) {
            if (k < i)
                return true;
            *later = true;
        }
    return false;
}

static void set_error(struct request *r, int32_t i, int e, const char *msg)
{
    struct create_partitions_response *resp = r->resp;
    resp->results[i].error_code = (int16_t)e;
    resp->results[i].error_message = msg != NULL ? kstr_of(request_strdup(r, msg)) : kstr_null();
}

/* ---- a cluster on ZooKeeper ---- */

static int check_one(struct broker *b,
                     const struct create_partitions_request_create_partitions_topic *in,
                     struct topic **tp, char *msg, size_t msglen);

/* One per request: answered when the last topic's write (and wait) is done. */
struct cluster_grow {
    struct request *r;
    int32_t left;
    bool started;
};
struct cluster_grow_arg {
    struct cluster_grow *cg;
    int32_t o;                 /* the result's index */
    const char *name;          /* NUL-terminated, in the request's arena */
    int32_t from, to;          /* the new partitions */
};

static void cluster_grow_done(struct cluster_grow *cg)
{
    GREGOR_ASSERT(cg->left > 0);
    if (--cg->left == 0 && cg->started)
        request_finish(cg->r);
}

static void cluster_grow_seen(void *arg, int e, const char *msg)
{
    struct cluster_grow_arg *a = arg;
    if (e != KERR_NONE)
        set_error(a->cg->r, a->o, e, msg);
    cluster_grow_done(a->cg);
}

static void cluster_grown(void *arg, int e, const char *msg)
{
    struct cluster_grow_arg *a = arg;
    struct request *r = a->cg->r;
    struct create_partitions_request *req = r->body;
    if (e != KERR_NONE) {
        set_error(r, a->o, e, msg);
    } else if (r->conn != NULL && cluster_await_view(r->broker->cluster, a->name, a->from, a->to,
                                                     req->timeout_ms, cluster_grow_seen, a)) {
        return; /* answered once this broker sees the new partitions' leaders */
    }
    cluster_grow_done(a->cg);
}

static enum request_status cluster_create_partitions_request(struct broker *b,
                                                              struct request *r)
{
    struct create_partitions_request *req = r->body;
    struct create_partitions_response *resp = r->resp;
    int32_t n = req->n_topics > 0 ? req->n_topics : 0;
    struct cluster_grow *cg = request_alloc(r, sizeof(*cg));
    struct cluster_grow_arg *args = request_alloc(r, sizeof(*args) * (size_t)(n > 0 ? n : 1));
    if (cg == NULL || args == NULL)
        return REQUEST_CLOSE;
    *cg = (struct cluster_grow){.r = r};
    int32_t nres = 0;
    for (int32_t i = 0; i < n; i++) {
        struct create_partitions_request_create_partitions_topic *in = &req->topics[i];
        bool later = false;
        if (named_earlier(req, n, i, &later))
            continue; /* one answer per name, as Kafka */
        int32_t o = nres++;
        struct create_partitions_response_create_partitions_topic_result *out = &resp->results[o];
        out->name = in->name.ptr ? in->name : kstr_of("");
        out->error_message = kstr_null();
        char msg[1024] = "";
        int e = KERR_INVALID_REQUEST;
        char *name = request_alloc(r, (size_t)(in->name.len > 0 ? in->name.len : 0) + 1);
        if (name == NULL)
            return REQUEST_CLOSE;
        if (in->name.len > 0)
            memcpy(name, in->name.ptr, (size_t)in->name.len);
        name[in->name.len > 0 ? in->name.len : 0] = '\0';
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, name);
        int32_t from = ct != NULL ? ct->npartitions : 0;
        if (later) {
            snprintf(msg, sizeof(msg), "Duplicate topic name.");
        } else if (!authorize(b, r, ACL_OP_ALTER, ACL_RES_TOPIC, name, true)) {
            e = KERR_TOPIC_AUTHORIZATION_FAILED; /* KafkaApis: ALTER on the topic */
        } else if (ct == NULL && topic_find_name(b, in->name) != NULL) {
            /* only here (the coordinators' topics): as on one node */
            struct topic *t = NULL;
            e = check_one(b, in, &t, msg, sizeof(msg));
            if (e == KERR_NONE) {
                e = KERR_INVALID_REQUEST;
                snprintf(msg, sizeof(msg), "The partitions of topic %s, which only this broker "
                         "has, cannot be increased on a cluster.", name);
            }
        } else {
            int32_t na = in->n_assignments >= 0 ? in->n_assignments : -1; /* -1: null */
            struct cluster_replicas *as =
                request_alloc(r, sizeof(*as) * (size_t)(na > 0 ? na : 1));
            if (as == NULL)
                return REQUEST_CLOSE;
            for (int32_t k = 0; k < na; k++)
                as[k] = (struct cluster_replicas){
                    .n = in->assignments[k].n_broker_ids > 0 ? in->assignments[k].n_broker_ids : 0,
                    .ids = in->assignments[k].broker_ids};
            args[i] = (struct cluster_grow_arg){.cg = cg, .o = o, .name = name, .from = from,
                                                .to = in->count};
            /* Checked, then the new partitions recorded against the quota, then written. */
            e = cluster_create_partitions(b->cluster, name, in->count, as, na, true,
                                          cluster_grown, &args[i], msg, sizeof(msg));
            if (e == KERR_NONE && !req->validate_only && ct != NULL)
                e = mutation_quota_record(r, in->count - from, r->api_version >= 3, msg,
                                          sizeof(msg));
            if (e == KERR_NONE && !req->validate_only)
                e = cluster_create_partitions(b->cluster, name, in->count, as, na, false,
                                              cluster_grown, &args[i], msg, sizeof(msg));
            if (e == KERR_NONE && !req->validate_only)
                cg->left++;
        }
        out->error_code = (int16_t)e;
        if (e != KERR_NONE && msg[0])
            out->error_message = kstr_of(request_strdup(r, msg));
    }
    resp->n_results = nres;
    resp->throttle_time_ms = r->throttle_ms; /* the controller mutation quota's */
    cg->started = true;
    return cg->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
}

/* Checks one topic's change as Kafka's controller does; *t is set when it may go ahead. */
static int check_one(struct broker *b,
                     const struct create_partitions_request_create_partitions_topic *in,
                     struct topic **tp, char *msg, size_t msglen)
{
    const char *name = in->name.ptr ? in->name.ptr : "";
    struct topic *t = topic_find_name(b, in->name);
    *tp = NULL;
    if (t == NULL || t->creating > 0) {
        snprintf(msg, msglen, t ? "The topic '%s' is still being created."
                                : "The topic '%s' does not exist.", name);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    /* Kafka's controller applies partition changes one after the other: a change in progress
     * counts as done for what can no longer be an increase. */
    int32_t now = t->growing > 0 ? t->growing : t->npartitions;
    if (in->count == now) {
        snprintf(msg, msglen, "Topic already has %d partition(s).", now);
        return KERR_INVALID_PARTITIONS;
    }
    if (in->count < now) {
        snprintf(msg, msglen,
                 "The topic %s currently has %d partition(s); %d would not be an increase.", name,
                 now, in->count);
        return KERR_INVALID_PARTITIONS;
    }
    if (t->growing > 0) {
        /* Kafka's answer while a topic's partitions are being changed. */
        snprintf(msg, msglen,
                 "The partitions of topic %s are being increased to %d (%d exist so far); "
                 "retry once that is done.",
                 name, t->growing, t->nopened);
        return KERR_REASSIGNMENT_IN_PROGRESS;
    }
    if (in->count > 100000) {
        snprintf(msg, msglen, "Number of partitions %d is more than this broker allows (100000).",
                 in->count);
        return KERR_INVALID_PARTITIONS;
    }
    /* Refused up front, as CreateTopics, when the new partitions cannot all be open. */
    int e = topic_fd_budget_check(b, in->count - t->npartitions, msg, msglen);
    if (e == KERR_NONE)
        *tp = t;
    return e;
}

enum request_status handle_create_partitions(struct broker *b, struct request *r)
{
    struct create_partitions_request *req = r->body;
    struct create_partitions_response *resp = r->resp;
    int32_t n = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->results, n);
    if (resp->results == NULL)
        return REQUEST_CLOSE;
    if (b->cluster != NULL)
        return cluster_create_partitions_request(b, r);
    struct create_job *job = create_job_new(r, n, set_error);
    if (job == NULL)
        return REQUEST_CLOSE;
    int32_t nres = 0;
    for (int32_t i = 0; i < n; i++) {
        struct create_partitions_request_create_partitions_topic *in = &req->topics[i];
        bool later = false;
        if (named_earlier(req, n, i, &later))
            continue; /* one answer per name, as Kafka */
        int32_t o = nres++;
        struct create_partitions_response_create_partitions_topic_result *out = &resp->results[o];
        out->name = in->name.ptr ? in->name : kstr_of("");
        out->error_message = kstr_null();
        char msg[512] = "";
        struct topic *t = NULL;
        int e = KERR_INVALID_REQUEST;
        if (later)
            snprintf(msg, sizeof(msg), "Duplicate topic name.");
        else if (!authorize_kstr(b, r, ACL_OP_ALTER, ACL_RES_TOPIC, in->name.ptr, in->name.len))
            e = KERR_TOPIC_AUTHORIZATION_FAILED; /* KafkaApis: ALTER on the topic */
        else
            e = check_one(b, in, &t, msg, sizeof(msg));
        if (e == KERR_NONE && t != NULL && !req->validate_only)
            e = mutation_quota_record(r, in->count - t->npartitions, r->api_version >= 3, msg,
                                      sizeof(msg)); /* KIP-599: strict from v3 */
        if (e == KERR_NONE && t != NULL && !req->validate_only) {
            e = topic_grow_begin(b, t, in->count);
            if (e == KERR_NONE)
                create_job_set(job, o, t, in->name.ptr);
        }
        out->error_code = (int16_t)e;
        if (msg[0])
            out->error_message = kstr_of(request_strdup(r, msg));
    }
    resp->n_results = nres;
    resp->throttle_time_ms = r->throttle_ms; /* the controller mutation quota's */
    return create_job_start(b, job);
}
