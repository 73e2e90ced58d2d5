/* CreatePartitions (37): grows a topic's partition count (never shrinks, as Kafka). The new
 * partitions are opened over several loop turns (create_topics.c's job) and shown only once
 * all exist; the request is answered then. */
#include <stdio.h>
#include <string.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

static bool same_name(struct kstr a, struct kstr b)
{
    return a.ptr != NULL && b.ptr != NULL && a.len == b.len &&
           memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

static void set_error(struct request *r, int32_t i, int e, const char *msg)
{
    struct create_partitions_response *resp = r->resp;
    resp->results[i].error_code = (int16_t)e;
    resp->results[i].error_message = kstr_of(request_strdup(r, msg));
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
    struct create_job *job = create_job_new(r, n, set_error);
    if (job == NULL)
        return REQUEST_CLOSE;
    int32_t nres = 0;
    for (int32_t i = 0; i < n; i++) {
        struct create_partitions_request_create_partitions_topic *in = &req->topics[i];
        bool earlier = false, later = false;
        for (int32_t k = 0; k < n && !earlier; k++)
            if (k != i && same_name(req->topics[k].name, in->name))
                *(k < i ? &earlier : &later) = true;
        if (earlier)
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
        else
            e = check_one(b, in, &t, msg, sizeof(msg));
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
    return create_job_start(b, job);
}
