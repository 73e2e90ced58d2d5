/* DescribeClientQuotas (API 48, KIP-546): the quota entities a filter matches, as Kafka 3.9's
 * ZkAdminManager.describeClientQuotas selects them (strict or not); DESCRIBE_CONFIGS on the
 * cluster. The filter is checked, and the answer's message set, as Kafka 4.x on a single node
 * and as Kafka 3.9's ZooKeeper mode in a cluster (tests/integration/test_quotas_vs_kafka.py). */
#include <stdio.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/quota.h"
#include "proto/messages.h"

enum { MATCH_EXACT = 0, MATCH_DEFAULT = 1, MATCH_SPECIFIED = 2 };

/* A filter component of one entity type: absent, or what it matches (name NULL with
 * MATCH_SPECIFIED: any name, not the default). */
struct component {
    bool present;
    int match_type;
    const char *name;
};

/* Kafka's matches(): a component wants its name (QUOTA_DEFAULT for the default entity) or any
 * specified one; no component matches an entity without that type, or any when not strict. */
static bool component_matches(const struct component *c, const char *name, bool strict)
{
    if (!c->present)
        return name == NULL || !strict;
    if (name == NULL)
        return false;
    if (c->match_type == MATCH_SPECIFIED)
        return true; /* Kafka: any name present, the default included */
    if (c->match_type == MATCH_DEFAULT)
        return name == QUOTA_DEFAULT;
    return name != QUOTA_DEFAULT && strcmp(name, c->name) == 0;
}

static void fail(struct request *r, struct describe_client_quotas_response *resp, int err,
                 const char *msg)
{
    resp->error_code = (int16_t)err;
    resp->error_message = kstr_of(request_strdup(r, msg));
    if (resp->error_message.ptr == NULL)
        resp->error_message = kstr_null();
    resp->entries = NULL;
    resp->n_entries = -1;
}

/* The filter's component of an entity type ("user", "client-id", "ip"), or -1. */
static int component_slot(const char *type)
{
    return strcmp(type, "user") == 0 ? 0 : strcmp(type, "client-id") == 0 ? 1
                                     : strcmp(type, "ip") == 0      ? 2
                                                                    : -1;
}

/* The match string against its match type, as both Kafka versions check it first: EXACT wants
 * one, DEFAULT and SPECIFIED none. False when refused (answered INVALID_REQUEST). */
static bool match_string_valid(struct request *r, struct describe_client_quotas_response *resp,
                               const struct describe_client_quotas_request_component_data *c)
{
    if (c->match_type == MATCH_EXACT && c->match.ptr == NULL) {
        fail(r, resp, KERR_INVALID_REQUEST,
             "Request specified MATCH_TYPE_EXACT, but set match string to null.");
        return false;
    }
    if ((c->match_type == MATCH_DEFAULT || c->match_type == MATCH_SPECIFIED) &&
        c->match.ptr != NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Request specified %s, but also specified a match string.",
                 c->match_type == MATCH_DEFAULT ? "MATCH_TYPE_DEFAULT" : "MATCH_TYPE_SPECIFIED");
        fail(r, resp, KERR_INVALID_REQUEST, msg);
        return false;
    }
    return true;
}

/* In a cluster, as Kafka 3.9's ZooKeeper mode: DescribeClientQuotasRequest.filter() checks
 * every component's match first, then ZkAdminManager.describeClientQuotas the entity types.
 * False when refused (answered). */
static bool filter_zk(struct request *r, struct describe_client_quotas_response *resp,
                      const struct describe_client_quotas_request *req, struct component **slots)
{
    char msg[512];
    for (int32_t i = 0; i < req->n_components; i++) {
        const struct describe_client_quotas_request_component_data *c = &req->components[i];
        if (!match_string_valid(r, resp, c))
            return false;
        if (c->match_type < MATCH_EXACT || c->match_type > MATCH_SPECIFIED) {
            fail(r, resp, KERR_UNSUPPORTED_VERSION, "Unhandled match type");
            return false;
        }
    }
    static const char *const dup_names[3] = {"user", "client", "ip"};
    for (int32_t i = 0; i < req->n_components; i++) {
        const struct describe_client_quotas_request_component_data *c = &req->components[i];
        const char *type = c->entity_type.ptr ? c->entity_type.ptr : "";
        int k = component_slot(type);
        if (k < 0) {
            if (type[0] == '\0')
                fail(r, resp, KERR_INVALID_REQUEST,
                     "Unexpected empty filter component entity type");
            else {
                snprintf(msg, sizeof(msg), "Custom entity type '%.200s' not supported", type);
                fail(r, resp, KERR_UNSUPPORTED_VERSION, msg);
            }
            return false;
        }
        if (slots[k]->present) {
            snprintf(msg, sizeof(msg), "Duplicate %s filter component entity type", dup_names[k]);
            fail(r, resp, KERR_INVALID_REQUEST, msg);
            return false;
        }
        *slots[k] = (struct component){true, c->match_type, c->match.ptr};
    }
    return true;
}

/* A single node, as Kafka 4.x's ClientQuotasImage.describe: each component in turn, its entity
 * type (empty, repeated, unknown) then its match. False when refused (answered). */
static bool filter_kraft(struct request *r, struct describe_client_quotas_response *resp,
                         const struct describe_client_quotas_request *req,
                         struct component **slots)
{
    char msg[512];
    for (int32_t i = 0; i < req->n_components; i++) {
        const struct describe_client_quotas_request_component_data *c = &req->components[i];
        const char *type = c->entity_type.ptr ? c->entity_type.ptr : "";
        int k = component_slot(type);
        if (type[0] == '\0') {
            fail(r, resp, KERR_INVALID_REQUEST, "Invalid empty entity type.");
            return false;
        }
        if (k >= 0 && slots[k]->present) {
            snprintf(msg, sizeof(msg), "Entity type %s cannot appear more than once in the filter.",
                     type);
            fail(r, resp, KERR_INVALID_REQUEST, msg);
            return false;
        }
        if (k < 0) {
            snprintf(msg, sizeof(msg), "Unsupported entity type %.200s", type);
            fail(r, resp, KERR_UNSUPPORTED_VERSION, msg);
            return false;
        }
        if (!match_string_valid(r, resp, c))
            return false;
        if (c->match_type < MATCH_EXACT || c->match_type > MATCH_SPECIFIED) {
            snprintf(msg, sizeof(msg), "Unknown match type %d", (int)c->match_type);
            fail(r, resp, KERR_INVALID_REQUEST, msg);
            return false;
        }
        *slots[k] = (struct component){true, c->match_type, c->match.ptr};
    }
    return true;
}

enum request_status handle_describe_client_quotas(struct broker *b, struct request *r)
{
    struct describe_client_quotas_request *req = r->body;
    struct describe_client_quotas_response *resp = r->resp;
    describe_client_quotas_response_set_defaults(resp);
    if (!authorize(b, r, ACL_OP_DESCRIBE_CONFIGS, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        fail(r, resp, KERR_CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.");
        return REQUEST_DONE;
    }
    struct component user = {0}, client = {0}, ip = {0};
    struct component *slots[3] = {&user, &client, &ip};
    bool cluster = b->cluster != NULL;
    if (!(cluster ? filter_zk : filter_kraft)(r, resp, req, slots))
        return REQUEST_DONE;
    if ((user.present || client.present) && ip.present) {
        fail(r, resp, KERR_INVALID_REQUEST,
             cluster ? "Invalid entity filter component combination, IP filter component should "
                       "not be used with user or clientId filter component."
                     : "Invalid entity filter component combination. IP filter component should "
                       "not be used with user or clientId filter component.");
        return REQUEST_DONE;
    }
    /* ZkAdminManager's answer sets the message null; Kafka 4.x's leaves it "". */
    resp->error_message = cluster ? kstr_null() : kstr_of("");
    int n = quotas_count(b->quotas);
    RESP_ARRAY(r, resp->entries, n);
    if (resp->entries == NULL)
        return REQUEST_CLOSE;
    resp->n_entries = 0;
    for (int i = 0; i < n; i++) {
        struct quota_entity_id id;
        const double *values;
        const bool *has;
        quotas_entity_at(b->quotas, i, &id, &values, &has);
        bool match = id.ip != NULL
                         ? !user.present && !client.present && component_matches(&ip, id.ip, req->strict)
                         : !ip.present && component_matches(&user, id.user, req->strict) &&
                               component_matches(&client, id.client_id, req->strict);
        if (!match)
            continue;
        struct describe_client_quotas_response_describe_client_quotas_entry *e =
            &resp->entries[resp->n_entries++];
        describe_client_quotas_response_describe_client_quotas_entry_set_defaults(e);
        const char *names[3] = {id.user, id.client_id, id.ip};
        static const char *const types[3] = {"user", "client-id", "ip"};
        RESP_ARRAY(r, e->entity, 3);
        RESP_ARRAY(r, e->values, QUOTA_NKEYS);
        if (e->entity == NULL || e->values == NULL)
            return REQUEST_CLOSE;
        for (int t = 0; t < 3; t++)
            if (names[t] != NULL)
                e->entity[e->n_entity++] = (struct describe_client_quotas_response_describe_client_quotas_entity){
                    kstr_of(types[t]), names[t] == QUOTA_DEFAULT ? kstr_null() : kstr_of(names[t])};
        for (int k = 0; k < QUOTA_NKEYS; k++)
            if (has[k])
                e->values[e->n_values++] = (struct describe_client_quotas_response_describe_client_quotas_value){
                    kstr_of(quota_key_name(k)), values[k]};
    }
    return REQUEST_DONE;
}
