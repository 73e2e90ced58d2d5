/* CreateAcls (30), DescribeAcls (29), DeleteAcls (31): the authorizer's store through the
 * admin API, as Kafka's AclApis answers them (cluster ALTER to change, DESCRIBE to list). */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "common/logging.h"
#include "proto/messages.h"

#include <stdlib.h>
#include <string.h>

#define NO_AUTHORIZER "No Authorizer is configured on the broker"

static bool authorizer_on(struct broker *b)
{
    return b->authorizer != NULL && b->authorizer->enabled;
}

/* A request string as a NUL-terminated copy in the arena; NULL for null (or a NUL inside, which
 * *bad flags). */
static const char *arena_str(struct request *r, struct kstr s, bool *bad)
{
    if (s.ptr == NULL)
        return NULL; /* decoded null (kbuf.h) */
    if (s.len >= ACL_STRING_MAX || memchr(s.ptr, '\0', (size_t)s.len) != NULL) {
        *bad = true;
        return NULL;
    }
    char *out = request_alloc(r, (size_t)s.len + 1);
    if (out == NULL) {
        *bad = true;
        return NULL;
    }
    memcpy(out, s.ptr, (size_t)s.len);
    out[s.len] = '\0';
    return out;
}

/* Kafka's AclBindingFilter validity: no UNKNOWN value anywhere. */
static const char *filter_invalid(const struct acl_filter *f)
{
    if (f->resource_type <= ACL_RES_UNKNOWN || f->resource_type > ACL_RES_USER)
        return "Invalid resource type filter";
    if (f->pattern_type <= ACL_PAT_UNKNOWN || f->pattern_type > ACL_PAT_PREFIXED)
        return "Invalid pattern type filter";
    if (f->operation <= ACL_OP_UNKNOWN || f->operation > ACL_OP_DESCRIBE_TOKENS)
        return "Invalid operation filter";
    if (f->permission <= ACL_PERM_UNKNOWN || f->permission > ACL_PERM_ALLOW)
        return "Invalid permission type filter";
    return NULL;
}

/* Why an ACL change (CreateAcls / DeleteAcls) is refused before it is looked at, as KafkaApis:
 * SECURITY_DISABLED without an authorizer, CLUSTER_AUTHORIZATION_FAILED without ALTER on the
 * cluster; KERR_NONE when it may go on. */
static int16_t acl_change_refused(struct broker *b, bool allowed, struct kstr *message)
{
    *message = kstr_null();
    if (!authorizer_on(b)) {
        *message = kstr_of(NO_AUTHORIZER);
        return KERR_SECURITY_DISABLED;
    }
    return allowed ? KERR_NONE : KERR_CLUSTER_AUTHORIZATION_FAILED;
}

enum request_status handle_create_acls(struct broker *b, struct request *r)
{
    struct create_acls_request *req = r->body;
    struct create_acls_response *resp = r->resp;
    RESP_ARRAY(r, resp->results, req->n_creations);
    if (resp->results == NULL)
        return REQUEST_CLOSE;
    resp->n_results = req->n_creations;
    bool allowed = authorizer_on(b) && authorize(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER,
                                                 ACL_CLUSTER_NAME, true);
    int added = 0;
    for (int32_t i = 0; i < req->n_creations; i++) {
        const struct create_acls_request_acl_creation *c = &req->creations[i];
        struct create_acls_response_acl_creation_result *res = &resp->results[i];
        res->error_code = acl_change_refused(b, allowed, &res->error_message);
        if (res->error_code != KERR_NONE)
            continue;
        bool bad = false;
        struct acl_binding bind = {
            .resource_type = c->resource_type, .pattern_type = c->resource_pattern_type,
            .operation = c->operation, .permission = c->permission_type,
            .name = (char *)arena_str(r, c->resource_name, &bad),
            .principal = (char *)arena_str(r, c->principal, &bad),
            .host = (char *)arena_str(r, c->host, &bad)};
        const char *why = bad ? "Invalid string in the ACL" : acl_binding_invalid(&bind);
        if (why != NULL) {
            res->error_code = KERR_INVALID_REQUEST;
            res->error_message = kstr_of(why);
            continue;
        }
        if (acl_store_add(&b->authorizer->store, &bind) != 0) {
            res->error_code = KERR_POLICY_VIOLATION;
            res->error_message = kstr_of("The authorizer holds its maximum number of ACLs");
            continue;
        }
        added++;
    }
    if (added > 0 && authorizer_persist(b) != KERR_NONE)
        for (int32_t i = 0; i < resp->n_results; i++)
            if (resp->results[i].error_code == KERR_NONE) {
                resp->results[i].error_code = KERR_UNKNOWN_SERVER_ERROR;
                resp->results[i].error_message = kstr_of("The ACLs could not be persisted");
            }
    return REQUEST_DONE;
}

static bool filter_from(struct request *r, struct acl_filter *f, int8_t type, struct kstr name,
                        int8_t pattern, struct kstr principal, struct kstr host, int8_t op,
                        int8_t perm)
{
    bool bad = false;
    *f = (struct acl_filter){.resource_type = type, .pattern_type = pattern, .operation = op,
                             .permission = perm};
    f->name = arena_str(r, name, &bad);
    f->principal = arena_str(r, principal, &bad);
    f->host = arena_str(r, host, &bad);
    return !bad;
}

static bool same_resource(const struct acl_binding *a, const struct acl_binding *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           strcmp(a->name, b->name) == 0;
}

enum request_status handle_describe_acls(struct broker *b, struct request *r)
{
    struct describe_acls_request *req = r->body;
    struct describe_acls_response *resp = r->resp;
    resp->error_message = kstr_null();
    if (!authorizer_on(b)) {
        resp->error_code = KERR_SECURITY_DISABLED;
        resp->error_message = kstr_of(NO_AUTHORIZER);
        return REQUEST_DONE;
    }
    if (!authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        return REQUEST_DONE;
    }
    struct acl_filter f;
    const char *why = NULL;
    if (!filter_from(r, &f, req->resource_type_filter, req->resource_name_filter,
                     req->pattern_type_filter, req->principal_filter, req->host_filter,
                     req->operation, req->permission_type) ||
        (why = filter_invalid(&f)) != NULL) {
        resp->error_code = KERR_INVALID_REQUEST;
        resp->error_message = kstr_of(why ? why : "Invalid string in the filter");
        return REQUEST_DONE;
    }
    const struct acl_store *s = &b->authorizer->store;
    LOG_DEBUG("AclApis", "DescribeAcls v%d filter type %d name %s pattern %d principal %s host %s "
              "operation %d permission %d over %d ACLs", r->api_version, f.resource_type,
              f.name ? f.name : "(null)", f.pattern_type, f.principal ? f.principal : "(null)",
              f.host ? f.host : "(null)", f.operation, f.permission, s->n);
    /* Matching bindings grouped by resource: a resource's first match opens it. */
    int32_t *group = request_alloc(r, sizeof(int32_t) * ((size_t)s->n + 1));
    RESP_ARRAY(r, resp->resources, s->n);
    if (group == NULL || resp->resources == NULL)
        return REQUEST_CLOSE;
    int32_t nres = 0;
    for (int i = 0; i < s->n; i++) {
        group[i] = -1;
        if (!acl_filter_matches(&f, &s->acls[i]))
            continue;
        for (int j = 0; j < i && group[i] < 0; j++)
            if (group[j] >= 0 && same_resource(&s->acls[j], &s->acls[i]))
                group[i] = group[j];
        if (group[i] < 0) {
            group[i] = nres++;
            struct describe_acls_response_describe_acls_resource *res = &resp->resources[group[i]];
            res->resource_type = s->acls[i].resource_type;
            res->resource_name = kstr_of(request_strdup(r, s->acls[i].name));
            res->pattern_type = s->acls[i].pattern_type;
            RESP_ARRAY(r, res->acls, s->n - i);
            if (res->acls == NULL || res->resource_name.ptr == NULL)
                return REQUEST_CLOSE;
        }
        struct describe_acls_response_describe_acls_resource *res = &resp->resources[group[i]];
        struct describe_acls_response_acl_description *d = &res->acls[res->n_acls++];
        d->principal = kstr_of(request_strdup(r, s->acls[i].principal));
        d->host = kstr_of(request_strdup(r, s->acls[i].host));
        if (d->principal.ptr == NULL || d->host.ptr == NULL)
            return REQUEST_CLOSE;
        d->operation = s->acls[i].operation;
        d->permission_type = s->acls[i].permission;
    }
    resp->n_resources = nres;
    return REQUEST_DONE;
}

enum request_status handle_delete_acls(struct broker *b, struct request *r)
{
    struct delete_acls_request *req = r->body;
    struct delete_acls_response *resp = r->resp;
    RESP_ARRAY(r, resp->filter_results, req->n_filters);
    if (resp->filter_results == NULL)
        return REQUEST_CLOSE;
    resp->n_filter_results = req->n_filters;
    bool allowed = authorizer_on(b) && authorize(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER,
                                                 ACL_CLUSTER_NAME, true);
    int removed_total = 0;
    for (int32_t i = 0; i < req->n_filters; i++) {
        const struct delete_acls_request_delete_acls_filter *q = &req->filters[i];
        struct delete_acls_response_delete_acls_filter_result *res = &resp->filter_results[i];
        res->error_code = acl_change_refused(b, allowed, &res->error_message);
        if (res->error_code != KERR_NONE)
            continue;
        struct acl_filter f;
        const char *why = NULL;
        if (!filter_from(r, &f, q->resource_type_filter, q->resource_name_filter,
                         q->pattern_type_filter, q->principal_filter, q->host_filter,
                         q->operation, q->permission_type) ||
            (why = filter_invalid(&f)) != NULL) {
            res->error_code = KERR_INVALID_REQUEST;
            res->error_message = kstr_of(why ? why : "Invalid string in the filter");
            continue;
        }
        struct acl_store *s = &b->authorizer->store;
        struct acl_binding *gone = calloc((size_t)s->n + 1, sizeof(*gone));
        if (gone == NULL)
            return REQUEST_CLOSE;
        int n = acl_store_remove(s, &f, gone, s->n);
        removed_total += n;
        RESP_ARRAY(r, res->matching_acls, n);
        for (int k = 0; k < n; k++) {
            if (res->matching_acls != NULL) {
                struct delete_acls_response_delete_acls_matching_acl *m = &res->matching_acls[k];
                m->error_message = kstr_null();
                m->resource_type = gone[k].resource_type;
                m->resource_name = kstr_of(request_strdup(r, gone[k].name));
                m->pattern_type = gone[k].pattern_type;
                m->principal = kstr_of(request_strdup(r, gone[k].principal));
                m->host = kstr_of(request_strdup(r, gone[k].host));
                m->operation = gone[k].operation;
                m->permission_type = gone[k].permission;
            }
            acl_binding_free(&gone[k]);
        }
        free(gone);
        if (res->matching_acls == NULL)
            return REQUEST_CLOSE;
        res->n_matching_acls = n;
    }
    if (removed_total > 0 && authorizer_persist(b) != KERR_NONE)
        for (int32_t i = 0; i < resp->n_filter_results; i++)
            if (resp->filter_results[i].error_code == KERR_NONE) {
                resp->filter_results[i].error_code = KERR_UNKNOWN_SERVER_ERROR;
                resp->filter_results[i].error_message = kstr_of("The ACLs could not be persisted");
            }
    return REQUEST_DONE;
}

void acls_shutdown(struct broker *b)
{
    authorizer_close(b);
}
