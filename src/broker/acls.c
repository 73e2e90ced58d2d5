/* CreateAcls (30), DescribeAcls (29), DeleteAcls (31): the authorizer's store through the
 * admin API, as Kafka's AclApis answers them (cluster ALTER to change, DESCRIBE to list). */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
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

static bool same_resource(const struct acl_binding *a, const struct acl_binding *b);
/* ---- a cluster: the change goes to ZooKeeper first (cluster_acl_update), one read-modify-write
 * per resource; the request is answered once every write is done (the store follows each
 * write as it succeeds). ---- */

struct acl_zk_req {
    struct request *r;
    int left;
    bool started;                       /* the handler returned: the last write answers */
    bool deleting;
};

struct acl_zk_entry {
    struct acl_binding bind;
    int32_t idx;                        /* the creation / filter it answers for */
    bool add;
    struct acl_zk_entry *next;
};

struct acl_zk_write {
    struct acl_zk_req *q;
    const struct acl_binding *res;      /* the resource (type, pattern, name) */
    struct acl_zk_entry *entries;       /* gathered, then made into the arrays below */
    int nentries;
    struct acl_binding *add, *del;
    int nadd, ndel;
    int32_t *idx;                       /* the creations / filters it answers for */
    int nidx;
};

static int acl_zk_modify(void *arg, const char *cur, size_t len, char **out, size_t *out_len)
{
    struct acl_zk_write *w = arg;
    return authorizer_acl_json_modify(cur, len, w->add, w->nadd, w->del, w->ndel, out, out_len);
}

static void acl_zk_set_error(struct acl_zk_req *q, int32_t i, int kerr, const char *msg)
{
    struct request *r = q->r;
    struct kstr m = kstr_of(request_strdup(r, msg ? msg : ""));
    if (q->deleting) {
        struct delete_acls_response *resp = r->resp;
        resp->filter_results[i].error_code = (int16_t)kerr;
        resp->filter_results[i].error_message = m;
    } else {
        struct create_acls_response *resp = r->resp;
        resp->results[i].error_code = (int16_t)kerr;
        resp->results[i].error_message = m;
    }
}

static void acl_zk_written(void *arg, int kerr, const char *msg)
{
    struct acl_zk_write *w = arg;
    struct acl_zk_req *q = w->q;
    GREGOR_ASSERT(q->left > 0);
    if (kerr != KERR_NONE)
        for (int k = 0; k < w->nidx; k++)
            acl_zk_set_error(q, w->idx[k], kerr, msg);
    if (--q->left == 0 && q->started)
        request_finish(q->r);
}

/* The group of bindings on the same resource as bind (a new one when none), bind added to
 * it (an arena copy). NULL when out of memory. */
static struct acl_zk_write *acl_zk_group(struct request *r, struct acl_zk_write *groups,
                                         int *ngroups, int cap, const struct acl_binding *bind,
                                         int32_t idx, bool add)
{
    struct acl_zk_entry *e = request_alloc(r, sizeof(*e));
    if (e == NULL)
        return NULL;
    *e = (struct acl_zk_entry){.bind = *bind, .idx = idx, .add = add};
    struct acl_zk_write *w = NULL;
    for (int g = 0; g < *ngroups && w == NULL; g++)
        if (same_resource(groups[g].res, bind))
            w = &groups[g];
    if (w == NULL) {
        GREGOR_ASSERT(*ngroups < cap);
        w = &groups[(*ngroups)++];
        w->res = &e->bind;
    }
    e->next = w->entries;
    w->entries = e;
    w->nentries++;
    return w;
}

/* The group's entries as the arrays its write reads. false when out of memory. */
static bool acl_zk_arrays(struct request *r, struct acl_zk_write *w)
{
    size_t n = (size_t)w->nentries + 1;
    w->add = request_alloc(r, sizeof(*w->add) * n);
    w->del = request_alloc(r, sizeof(*w->del) * n);
    w->idx = request_alloc(r, sizeof(*w->idx) * n);
    if (w->add == NULL || w->del == NULL || w->idx == NULL)
        return false;
    for (struct acl_zk_entry *e = w->entries; e != NULL; e = e->next) {
        if (e->add)
            w->add[w->nadd++] = e->bind;
        else
            w->del[w->ndel++] = e->bind;
        bool seen = false;
        for (int k = 0; k < w->nidx && !seen; k++)
            seen = w->idx[k] == e->idx;
        if (!seen)
            w->idx[w->nidx++] = e->idx;
    }
    return true;
}

/* Submits each group's write; returns REQUEST_PENDING or REQUEST_DONE. */
static enum request_status acl_zk_submit(struct broker *b, struct acl_zk_req *q,
                                         struct acl_zk_write *groups, int ngroups)
{
    for (int g = 0; g < ngroups; g++)
        if (!acl_zk_arrays(q->r, &groups[g]))
            return REQUEST_CLOSE;
    for (int g = 0; g < ngroups; g++) {
        struct acl_zk_write *w = &groups[g];
        w->q = q;
        char msg[256];
        q->left++;
        int kerr = cluster_acl_update(b->cluster, acl_resource_type_name(w->res->resource_type),
                                      w->res->pattern_type == ACL_PAT_PREFIXED, w->res->name,
                                      acl_zk_modify, w, acl_zk_written, w, msg, sizeof(msg));
        if (kerr != KERR_NONE) {
            q->left--;
            for (int k = 0; k < w->nidx; k++)
                acl_zk_set_error(q, w->idx[k], kerr, msg);
        }
    }
    q->started = true;
    return q->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
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
    struct acl_zk_write *groups = NULL;
    int ngroups = 0;
    if (b->cluster != NULL) {
        groups = request_alloc(r, sizeof(*groups) * ((size_t)req->n_creations + 1));
        if (groups == NULL)
            return REQUEST_CLOSE;
        memset(groups, 0, sizeof(*groups) * ((size_t)req->n_creations + 1));
    }
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
        if (groups != NULL) {
            if (acl_zk_group(r, groups, &ngroups, req->n_creations, &bind, i, true) == NULL)
                return REQUEST_CLOSE;
            continue;
        }
        if (acl_store_add(&b->authorizer->store, &bind) != 0) {
            res->error_code = KERR_POLICY_VIOLATION;
            res->error_message = kstr_of("The authorizer holds its maximum number of ACLs");
            continue;
        }
        added++;
    }
    if (groups != NULL) {
        struct acl_zk_req *q = request_alloc(r, sizeof(*q));
        if (q == NULL)
            return REQUEST_CLOSE;
        *q = (struct acl_zk_req){.r = r};
        return acl_zk_submit(b, q, groups, ngroups);
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
    struct acl_zk_write *groups = NULL;
    int ngroups = 0, gcap = 0;
    if (b->cluster != NULL && authorizer_on(b)) {
        gcap = b->authorizer->store.n + 1;
        groups = request_alloc(r, sizeof(*groups) * (size_t)gcap);
        if (groups == NULL)
            return REQUEST_CLOSE;
        memset(groups, 0, sizeof(*groups) * (size_t)gcap);
    }
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
        if (groups != NULL) { /* matched here, removed by the writes (Kafka's AclAuthorizer) */
            int n = 0;
            for (int k = 0; k < s->n; k++)
                n += acl_filter_matches(&f, &s->acls[k]);
            RESP_ARRAY(r, res->matching_acls, n);
            if (res->matching_acls == NULL && n > 0)
                return REQUEST_CLOSE;
            for (int k = 0; k < s->n; k++) {
                const struct acl_binding *a = &s->acls[k];
                if (!acl_filter_matches(&f, a))
                    continue;
                struct acl_binding *copy = request_alloc(r, sizeof(*copy));
                if (copy == NULL)
                    return REQUEST_CLOSE;
                *copy = *a;
                copy->name = (char *)request_strdup(r, a->name);
                copy->principal = (char *)request_strdup(r, a->principal);
                copy->host = (char *)request_strdup(r, a->host);
                if (copy->name == NULL || copy->principal == NULL || copy->host == NULL)
                    return REQUEST_CLOSE;
                if (acl_zk_group(r, groups, &ngroups, gcap, copy, i, false) == NULL)
                    return REQUEST_CLOSE;
                struct delete_acls_response_delete_acls_matching_acl *m =
                    &res->matching_acls[res->n_matching_acls++];
                m->error_message = kstr_null();
                m->resource_type = copy->resource_type;
                m->resource_name = kstr_of(copy->name);
                m->pattern_type = copy->pattern_type;
                m->principal = kstr_of(copy->principal);
                m->host = kstr_of(copy->host);
                m->operation = copy->operation;
                m->permission_type = copy->permission;
            }
            continue;
        }
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
    if (groups != NULL) {
        struct acl_zk_req *q = request_alloc(r, sizeof(*q));
        if (q == NULL)
            return REQUEST_CLOSE;
        *q = (struct acl_zk_req){.r = r, .deleting = true};
        return acl_zk_submit(b, q, groups, ngroups);
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
