/* DeleteTopics (20): by name (v0-5) or by topic id (v6+). Answered, as Kafka's controller
 * does, once the deletion is committed (the topics gone from every lookup and the topic store
 * saying so); the partition dirs are renamed and removed over later loop turns (topics.c). */
#include <stdio.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/mutation_quota.h"
#include "cluster/cluster.h"
#include "common/util.h"
#include "proto/messages.h"

/* Takes t out of every lookup when it may be deleted; false (and out's error set) if not. */
static bool delete_one(struct broker *b, struct request *r, struct topic *t,
                       struct delete_topics_response_deletable_topic_result *out)
{
    if (t == NULL) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return false;
    }
    if (!b->cfg.delete_topic_enable) {
        out->error_code = 73; /* TOPIC_DELETION_DISABLED */
        return false;
    }
    if (t->creating > 0) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION; /* retriable: it is not there yet */
        out->error_message = kstr_of("The topic is still being created.");
        return false;
    }
    if (t->internal) {
        out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
        out->error_message = kstr_of("Internal topics cannot be deleted");
        return false;
    }
    out->topic_id = t->id;
    /* KIP-599: the partitions are recorded before the deletion (strict from v5). */
    char msg[128];
    int e = mutation_quota_record(r, t->npartitions, r->api_version >= 5, msg, sizeof(msg));
    if (e != KERR_NONE) {
        out->error_code = (int16_t)e;
        out->error_message = kstr_of(request_strdup(r, msg));
        return false;
    }
    topic_delete_begin(b, t);
    return true;
}

/* On a cluster: answered once every /admin/delete_topics/<t> is written and this broker's view
 * no longer shows the topic (Kafka's DelayedDeleteTopics: every broker drops a topic queued for
 * deletion at once; the controller deletes its znodes once every replica's broker is online,
 * and each broker its logs), bounded by timeout_ms (REQUEST_TIMED_OUT; <= 0: once written). */
struct cluster_delete {
    struct request *r;
    int32_t left;
    bool started;
};
struct cluster_delete_arg {
    struct cluster_delete *cd;
    int32_t i;
    const char *name;          /* in the request's arena */
};

static void cluster_delete_seen(void *arg, int e, const char *msg)
{
    struct cluster_delete_arg *a = arg;
    struct cluster_delete *cd = a->cd;
    GREGOR_ASSERT(cd->left > 0);
    if (e != KERR_NONE) {
        struct delete_topics_response *resp = cd->r->resp;
        resp->responses[a->i].error_code = (int16_t)e;
        resp->responses[a->i].error_message =
            msg != NULL ? kstr_of(request_strdup(cd->r, msg)) : kstr_null();
    }
    if (--cd->left == 0 && cd->started)
        request_finish(cd->r);
}

static void cluster_deleted(void *arg, int e, const char *msg)
{
    struct cluster_delete_arg *a = arg;
    struct request *r = a->cd->r;
    struct delete_topics_request *req = r->body;
    if (e == KERR_NONE && r->conn != NULL &&
        cluster_await_view(r->broker->cluster, a->name, 0, -1, req->timeout_ms,
                           cluster_delete_seen, a))
        return; /* answered once this broker no longer shows the topic */
    cluster_delete_seen(arg, e, msg);
}

static enum request_status cluster_delete_topics(struct broker *b, struct request *r, int32_t n)
{
    struct delete_topics_request *req = r->body;
    struct delete_topics_response *resp = r->resp;
    bool by_state = r->api_version >= 6;
    struct cluster_delete *cd = request_alloc(r, sizeof(*cd));
    struct cluster_delete_arg *args = request_alloc(r, sizeof(*args) * (size_t)(n > 0 ? n : 1));
    if (cd == NULL || args == NULL)
        return REQUEST_CLOSE;
    *cd = (struct cluster_delete){.r = r};
    bool any_local = false;
    for (int32_t i = 0; i < n; i++) {
        struct delete_topics_response_deletable_topic_result *out = &resp->responses[i];
        out->error_message = kstr_null();
        struct kstr kname = kstr_null();
        const char *name = NULL;
        if (by_state && req->topics[i].name.ptr == NULL) {
            out->topic_id = req->topics[i].topic_id;
            name = broker_cluster_topic_by_id(b, &req->topics[i].topic_id);
            if (name == NULL) {
                struct topic *t = topic_find_by_id(b, &req->topics[i].topic_id);
                name = t ? t->name : NULL;
            }
            out->name = name ? kstr_of(request_strdup(r, name)) : kstr_null();
            if (name == NULL) {
                out->error_code = KERR_UNKNOWN_TOPIC_ID;
                continue;
            }
            kname = out->name;
        } else {
            kname = by_state ? req->topics[i].name : req->topic_names[i];
            out->name = kname;
        }
        char *copy = request_alloc(r, (size_t)(kname.len > 0 ? kname.len : 0) + 1);
        if (copy == NULL)
            return REQUEST_CLOSE;
        if (kname.len > 0)
            memcpy(copy, kname.ptr, (size_t)kname.len);
        copy[kname.len > 0 ? kname.len : 0] = '\0';
        if (!authorize(b, r, ACL_OP_DELETE, ACL_RES_TOPIC, copy, true)) {
            out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED; /* KafkaApis: DELETE on it */
            continue;
        }
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, copy);
        if (ct == NULL) { /* only here (the coordinators' topics): as on one node */
            any_local |= delete_one(b, r, topic_find(b, copy), out);
            continue;
        }
        memcpy(out->topic_id.b, ct->id, 16);
        if (!b->cfg.delete_topic_enable) {
            out->error_code = 73; /* TOPIC_DELETION_DISABLED */
            continue;
        }
        char msg[512];
        args[i] = (struct cluster_delete_arg){.cd = cd, .i = i, .name = copy};
        int e = mutation_quota_record(r, ct->npartitions, r->api_version >= 5, msg, sizeof(msg));
        if (e == KERR_NONE)
            e = cluster_delete_topic(b->cluster, copy, cluster_deleted, &args[i], msg,
                                     sizeof(msg));
        if (e == KERR_NONE) {
            cd->left++;
        } else {
            out->error_code = (int16_t)e;
            out->error_message = kstr_of(request_strdup(r, msg));
        }
    }
    int e = any_local ? topics_delete_commit(b) : KERR_NONE;
    for (int32_t i = 0; i < n && e != KERR_NONE; i++)
        if (resp->responses[i].error_code == KERR_NONE)
            resp->responses[i].error_code = (int16_t)e;
    resp->throttle_time_ms = r->throttle_ms; /* the controller mutation quota's */
    cd->started = true;
    return cd->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
}

enum request_status handle_delete_topics(struct broker *b, struct request *r)
{
    struct delete_topics_request *req = r->body;
    struct delete_topics_response *resp = r->resp;
    bool by_state = r->api_version >= 6;
    int32_t n = by_state ? req->n_topics : req->n_topic_names;
    if (n < 0)
        n = 0;
    RESP_ARRAY(r, resp->responses, n);
    if (resp->responses == NULL)
        return REQUEST_CLOSE;
    resp->n_responses = n;
    if (b->cluster != NULL)
        return cluster_delete_topics(b, r, n);
    bool any = false;
    for (int32_t i = 0; i < n; i++) {
        struct delete_topics_response_deletable_topic_result *out = &resp->responses[i];
        out->error_message = kstr_null();
        struct topic *t;
        if (by_state) {
            struct delete_topics_request_delete_topic_state *s = &req->topics[i];
            if (s->name.ptr != NULL) {
                t = topic_find_name(b, s->name);
                out->name = s->name;
            } else {
                t = topic_find_by_id(b, &s->topic_id);
                out->topic_id = s->topic_id;
                out->name = t ? kstr_of(request_strdup(r, t->name)) : kstr_null();
                if (t == NULL) {
                    out->error_code = KERR_UNKNOWN_TOPIC_ID;
                    continue;
                }
            }
        } else {
            out->name = req->topic_names[i];
            t = topic_find_name(b, req->topic_names[i]);
        }
        /* KafkaApis: DELETE on the topic (by id: on its name, once known). */
        if (t != NULL ? !authorize(b, r, ACL_OP_DELETE, ACL_RES_TOPIC, t->name, true)
                      : !authorize_kstr(b, r, ACL_OP_DELETE, ACL_RES_TOPIC, out->name.ptr,
                                        out->name.len)) {
            out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        any |= delete_one(b, r, t, out);
    }
    /* One commit for the whole request (the store is written once, not once per topic). */
    int e = any ? topics_delete_commit(b) : KERR_NONE;
    for (int32_t i = 0; i < n && e != KERR_NONE; i++)
        if (resp->responses[i].error_code == KERR_NONE)
            resp->responses[i].error_code = (int16_t)e;
    resp->throttle_time_ms = r->throttle_ms; /* the controller mutation quota's */
    return REQUEST_DONE;
}
