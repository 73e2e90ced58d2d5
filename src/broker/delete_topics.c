/* DeleteTopics (20): by name (v0-5) or by topic id (v6+). Answered, as Kafka's controller
 * does, once the deletion is committed (the topics gone from every lookup and the topic store
 * saying so); the partition dirs are renamed and removed over later loop turns (topics.c). */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

/* Takes t out of every lookup when it may be deleted; false (and out's error set) if not. */
static bool delete_one(struct broker *b, struct topic *t,
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
    topic_delete_begin(b, t);
    return true;
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
        any |= delete_one(b, t, out);
    }
    /* One commit for the whole request (the store is written once, not once per topic). */
    int e = any ? topics_delete_commit(b) : KERR_NONE;
    for (int32_t i = 0; i < n && e != KERR_NONE; i++)
        if (resp->responses[i].error_code == KERR_NONE)
            resp->responses[i].error_code = (int16_t)e;
    return REQUEST_DONE;
}
