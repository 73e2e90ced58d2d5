/* DeleteTopics (20): by name (v0-5) or by topic id (v6+); removes the partition dirs. */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

static void delete_one(struct broker *b, struct topic *t,
                       struct delete_topics_response_deletable_topic_result *out)
{
    if (t == NULL) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    if (!b->cfg.delete_topic_enable) {
        out->error_code = 73; /* TOPIC_DELETION_DISABLED */
        return;
    }
    if (t->creating > 0) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION; /* retriable: it is not there yet */
        out->error_message = kstr_of("The topic is still being created.");
        return;
    }
    if (t->internal) {
        out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
        out->error_message = kstr_of("Internal topics cannot be deleted");
        return;
    }
    out->topic_id = t->id;
    out->error_code = (int16_t)topic_delete(b, t);
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
        delete_one(b, t, out);
    }
    return REQUEST_DONE;
}
