/* ConsumerGroupDescribe (69): state, epochs, assignor and members (subscriptions, current and
 * target assignments with topic names) of KIP-848 consumer groups; GROUP_ID_NOT_FOUND for unknown
 * and classic groups (the Java admin client then falls back to DescribeGroups). */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "group/consumer_group.h"
#include "proto/messages.h"

/* Partitions grouped by topic, with the topic's name as the broker knows it now. */
static int fill(struct broker *b, struct request *r,
                struct consumer_group_describe_response_assignment *out, const struct cg_tp *v, int n)
{
    RESP_ARRAY(r, out->topic_partitions, n);
    int32_t *parts = request_alloc(r, sizeof(int32_t) * ((size_t)n + 1));
    if (out->topic_partitions == NULL || parts == NULL)
        return -1;
    int nt = 0;
    for (int i = 0; i < n; i++) {
        struct consumer_group_describe_response_topic_partitions *tp =
            nt > 0 ? &out->topic_partitions[nt - 1] : NULL;
        if (tp == NULL || memcmp(tp->topic_id.b, v[i].topic_id.b, 16) != 0) {
            tp = &out->topic_partitions[nt++];
            struct topic *t = topic_find_by_id(b, &v[i].topic_id);
            tp->topic_id = v[i].topic_id;
            tp->topic_name = gh_str_nn(r, t ? t->name : "");
            tp->partitions = parts + i;
            tp->n_partitions = 0;
        }
        parts[i] = v[i].partition;
        tp->n_partitions++;
    }
    out->n_topic_partitions = nt;
    return 0;
}

static int describe_one(struct broker *b, struct request *r, const struct kstr *id,
                        struct consumer_group_describe_response_described_group *out)
{
    out->group_id = id->ptr ? *id : kstr_of("");
    out->group_state = kstr_of("");
    out->assignor_name = kstr_of("");
    out->authorized_operations = AUTHORIZED_OPS_NOT_REQUESTED;
    RESP_ARRAY(r, out->members, 0);
    out->error_code = group_store_check(b, id->ptr);
    if (out->error_code != KERR_NONE)
        return 0;
    if (id->ptr == NULL || id->ptr[0] == '\0' || kstr_has_nul(*id)) {
        out->error_code = KERR_INVALID_GROUP_ID;
        return 0;
    }
    struct cg_group_desc d;
    cg_describe(b->groups, id->ptr, &d);
    out->error_code = d.error;
    if (d.error != KERR_NONE) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Group %s: %s", id->ptr, d.error_message);
        out->error_message = gh_str(r, msg);
        cg_describe_free(&d);
        return 0;
    }
    out->group_state = gh_str_nn(r, d.state);
    out->group_epoch = d.group_epoch;
    out->assignment_epoch = d.assignment_epoch;
    out->assignor_name = gh_str_nn(r, d.assignor);
    RESP_ARRAY(r, out->members, d.n_members);
    int rc = out->members == NULL ? -1 : 0;
    for (int i = 0; i < d.n_members && rc == 0; i++) {
        const struct cg_member_desc *x = &d.members[i];
        struct consumer_group_describe_response_member *m = &out->members[i];
        m->member_id = gh_str_nn(r, x->member_id);
        m->instance_id = gh_str(r, x->instance_id);
        m->rack_id = gh_str(r, x->rack_id);
        m->member_epoch = x->member_epoch;
        m->client_id = gh_str_nn(r, x->client_id);
        m->client_host = gh_str_nn(r, x->client_host);
        RESP_ARRAY(r, m->subscribed_topic_names, x->n_topics);
        if (m->subscribed_topic_names == NULL) {
            rc = -1;
            break;
        }
        for (int j = 0; j < x->n_topics; j++)
            m->subscribed_topic_names[j] = gh_str_nn(r, x->topics[j]);
        m->n_subscribed_topic_names = x->n_topics;
        m->subscribed_topic_regex = gh_str(r, x->regex);
        rc = fill(b, r, &m->assignment, x->assigned, x->n_assigned);
        if (rc == 0)
            rc = fill(b, r, &m->target_assignment, x->target, x->n_target);
        out->n_members = i + 1;
    }
    cg_describe_free(&d);
    return rc;
}

/* Whether the principal may DESCRIBE every topic in the group's current and target assignments
 * (each distinct name asked once, each denial logged); -1 out of memory. */
static int topics_described(struct broker *b, struct request *r,
                            const struct consumer_group_describe_response_described_group *g)
{
    int32_t total = 0;
    for (int32_t i = 0; i < g->n_members; i++)
        total += g->members[i].assignment.n_topic_partitions +
                 g->members[i].target_assignment.n_topic_partitions;
    struct kstr *names = request_alloc(r, sizeof(*names) * ((size_t)total + 1));
    if (names == NULL)
        return -1;
    int32_t n = 0;
    int ok = 1;
    for (int32_t i = 0; i < g->n_members; i++) {
        for (int a = 0; a < 2; a++) {
            const struct consumer_group_describe_response_assignment *as =
                a == 0 ? &g->members[i].assignment : &g->members[i].target_assignment;
            for (int32_t k = 0; k < as->n_topic_partitions; k++) {
                struct kstr t = as->topic_partitions[k].topic_name;
                bool seen = false;
                for (int32_t j = 0; j < n && !seen; j++)
                    seen = names[j].len == t.len && memcmp(names[j].ptr, t.ptr, (size_t)t.len) == 0;
                if (seen)
                    continue;
                GREGOR_ASSERT(n < total);
                names[n++] = t;
                if (!authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t.ptr, t.len))
                    ok = 0;
            }
        }
    }
    return ok;
}

enum request_status handle_consumer_group_describe(struct broker *b, struct request *r)
{
    struct consumer_group_describe_request *req = r->body;
    struct consumer_group_describe_response *resp = r->resp;
    int32_t n = req->n_group_ids > 0 ? req->n_group_ids : 0;
    RESP_ARRAY(r, resp->groups, n);
    if (resp->groups == NULL)
        return REQUEST_CLOSE;
    resp->n_groups = n;
    for (int32_t i = 0; i < n; i++) {
        if (describe_one(b, r, &req->group_ids[i], &resp->groups[i]) != 0)
            return REQUEST_CLOSE;
        /* KafkaApis: DESCRIBE on the group, else only GROUP_AUTHORIZATION_FAILED. */
        if (!authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, req->group_ids[i].ptr,
                            req->group_ids[i].len)) {
            resp->groups[i].error_code = KERR_GROUP_AUTHORIZATION_FAILED;
            resp->groups[i].n_members = 0;
            continue;
        }
        /* Kafka 4 (KAFKA-18813): a group assigning a topic the principal may not DESCRIBE is
         * answered only with TOPIC_AUTHORIZATION_FAILED. */
        int described = topics_described(b, r, &resp->groups[i]);
        if (described < 0)
            return REQUEST_CLOSE;
        if (!described) {
            struct consumer_group_describe_response_described_group *g = &resp->groups[i];
            g->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            g->error_message = kstr_of("The group has described topic(s) that the client is not "
                                       "authorized to describe.");
            g->group_state = kstr_of("");
            g->group_epoch = 0;
            g->assignment_epoch = 0;
            g->assignor_name = kstr_of("");
            g->n_members = 0;
            continue;
        }
        /* As Kafka: only groups described without an error. */
        if (req->include_authorized_operations && resp->groups[i].error_code == KERR_NONE)
            resp->groups[i].authorized_operations =
                authorized_operations(b, r, ACL_RES_GROUP, resp->groups[i].group_id.ptr);
    }
    return REQUEST_DONE;
}
