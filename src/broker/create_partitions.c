/* CreatePartitions (37): grows a topic's partition count (never shrinks, as Kafka). */
#include <stdio.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

enum request_status handle_create_partitions(struct broker *b, struct request *r)
{
    struct create_partitions_request *req = r->body;
    struct create_partitions_response *resp = r->resp;
    int32_t n = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->results, n);
    if (resp->results == NULL)
        return REQUEST_CLOSE;
    resp->n_results = n;
    for (int32_t i = 0; i < n; i++) {
        struct create_partitions_request_create_partitions_topic *in = &req->topics[i];
        struct create_partitions_response_create_partitions_topic_result *out = &resp->results[i];
        out->name = in->name.ptr ? in->name : kstr_of("");
        out->error_message = kstr_null();
        char msg[256] = "";
        struct topic *t = topic_find_name(b, in->name);
        int e = KERR_NONE;
        if (t == NULL || t->creating > 0) {
            e = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(msg, sizeof(msg), t ? "The topic '%s' is still being created."
                                         : "The topic '%s' does not exist.",
                     in->name.ptr ? in->name.ptr : "");
        } else if (in->count < t->npartitions) {
            e = KERR_INVALID_PARTITIONS;
            snprintf(msg, sizeof(msg), "Topic currently has %d partitions, which is higher than the requested %d.",
                     t->npartitions, in->count);
        } else if (in->count == t->npartitions) {
            e = KERR_INVALID_PARTITIONS;
            snprintf(msg, sizeof(msg), "Topic already has %d partitions.", t->npartitions);
        } else if (in->count > 100000) {
            e = KERR_INVALID_PARTITIONS;
            snprintf(msg, sizeof(msg), "Number of partitions %d is more than this broker allows.", in->count);
        } else if ((e = topic_fd_budget_check(b, in->count - t->npartitions, msg, sizeof(msg))) !=
                   KERR_NONE) {
            /* refused up front, as CreateTopics */
        } else if (!req->validate_only) {
            e = topic_add_partitions(b, t, in->count);
        }
        out->error_code = (int16_t)e;
        if (msg[0])
            out->error_message = kstr_of(request_strdup(r, msg));
    }
    return REQUEST_DONE;
}
