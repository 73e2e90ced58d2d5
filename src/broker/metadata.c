/* Metadata (3): brokers (this one, or the cluster's live ones on ZooKeeper), cluster id,
 * controller, and each topic's partitions: this node as leader and only replica, or on a
 * cluster ZooKeeper's leaders, replicas and ISR. Auto-creates topics when allowed. */
#include <stdio.h>
#include <string.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "common/logging.h"
#include "proto/messages.h"

static void auto_create_failed(struct request *r, int32_t i, int e, const char *msg)
{
    (void)r;
    (void)i;
    LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis",
                "auto-creation of a topic failed: %s: %s", kerr_name(e), msg);
}

struct topic *broker_auto_create(struct broker *b, const char *name)
{
    char msg[512];
    struct topic *t = NULL;
    if (topic_name_validate(name, (int32_t)strlen(name), msg, sizeof(msg)) != KERR_NONE)
        return NULL;
    /* The coordinators make their own topics; a colliding name is refused as by CreateTopics. */
    if (topic_name_is_internal(name) || strcmp(name, "__cluster_metadata") == 0)
        return NULL;
    if (topic_name_collision(b, name, msg, sizeof(msg)) != KERR_NONE ||
        topic_fd_budget_check(b, b->cfg.num_partitions, msg, sizeof(msg)) != KERR_NONE) {
        LOG_DEBUG("KafkaApis", "auto-creation of topic %s refused: %s", name, msg);
        return NULL;
    }
    /* num.partitions has no maximum (as in Kafka): a big default is opened over several loop
     * turns like a CreateTopics, Metadata answering LEADER_NOT_AVAILABLE meanwhile. */
    struct create_job *job = create_job_new(NULL, 1, auto_create_failed);
    if (job == NULL)
        return NULL;
    int e = topic_create_begin(b, name, b->cfg.num_partitions, NULL, 0, &t, msg, sizeof(msg));
    if (e != KERR_NONE)
        LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "auto-creation of topic %s failed: %s", name, msg);
    else
        create_job_set(job, 0, t, name);
    create_job_start(b, job); /* frees the job when done (at once when empty) */
    return e == KERR_NONE ? topic_find(b, name) : NULL; /* NULL when its first slice failed */
}

/* The checks of KafkaApis' Metadata: topics the principal may not DESCRIBE are left out of a
 * listing (not logged) or answered TOPIC_AUTHORIZATION_FAILED when named; auto-creation
 * needs CREATE on the cluster or the topic. */
static bool may_describe(struct broker *b, struct request *r, const char *name, bool named)
{
    return authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, name, named);
}

static bool may_create(struct broker *b, struct request *r, const char *name)
{
    return authorize(b, r, ACL_OP_CREATE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, false) ||
           authorize(b, r, ACL_OP_CREATE, ACL_RES_TOPIC, name, true);
}

/* The topic's authorized operations when asked (KIP-430), else the schema default. */
static int32_t topic_ops_of(struct broker *b, struct request *r, int32_t asked, const char *name)
{
    return asked == AUTHORIZED_OPS_NOT_REQUESTED ? asked
                                                 : authorized_operations(b, r, ACL_RES_TOPIC, name);
}

static void fill_topic(struct broker *b, struct request *r,
                       struct metadata_response_metadata_response_topic *out, struct topic *t)
{
    out->error_code = KERR_NONE;
    out->name = kstr_of(t->name);
    out->topic_id = t->id;
    out->is_internal = t->internal;
    RESP_ARRAY(r, out->partitions, t->npartitions);
    if (out->partitions == NULL)
        return;
    out->n_partitions = t->npartitions;
    int32_t *node = request_alloc(r, sizeof(int32_t));
    if (node == NULL) {
        out->n_partitions = 0;
        return;
    }
    *node = b->cfg.node_id;
    for (int32_t i = 0; i < t->npartitions; i++) {
        struct metadata_response_metadata_response_partition *p = &out->partitions[i];
        p->error_code = KERR_NONE;
        p->partition_index = i;
        p->leader_id = b->cfg.node_id;
        p->leader_epoch = t->partitions[i]->leader_epoch;
        p->replica_nodes = node;
        p->n_replica_nodes = 1;
        p->isr_nodes = node;
        p->n_isr_nodes = 1;
        p->n_offline_replicas = 0;
    }
}

static bool broker_is_live(const struct cluster_broker *live, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (live[i].id == id)
            return true;
    return false;
}

/* A topic of the cluster: its partitions' leaders, replicas and ISR as ZooKeeper holds them. A
 * partition without a state yet, or whose leader is not live, has no leader:
 * LEADER_NOT_AVAILABLE with leader -1, as Kafka answers. */
static void fill_cluster_topic(struct broker *b, struct request *r,
                               struct metadata_response_metadata_response_topic *out,
                               const struct cluster_topic *ct)
{
    const struct cluster_broker *live;
    int nlive = cluster_brokers(b->cluster, &live);
    out->error_code = KERR_NONE;
    out->name = kstr_of(request_strdup(r, ct->name));
    memcpy(out->topic_id.b, ct->id, 16);
    out->is_internal = false;
    RESP_ARRAY(r, out->partitions, ct->npartitions);
    if (out->partitions == NULL)
        return;
    out->n_partitions = ct->npartitions;
    for (int32_t i = 0; i < ct->npartitions; i++) {
        const struct cluster_partition *cp = &ct->parts[i];
        struct metadata_response_metadata_response_partition *p = &out->partitions[i];
        p->partition_index = i;
        bool led = cp->state == CLUSTER_STATE_READ && cp->leader >= 0 &&
                   broker_is_live(live, nlive, cp->leader);
        p->error_code = led ? KERR_NONE : KERR_LEADER_NOT_AVAILABLE;
        p->leader_id = led ? cp->leader : -1;
        p->leader_epoch = cp->leader_epoch;
        int32_t *ids = request_alloc(r, sizeof(int32_t) * (size_t)(cp->nreplicas + cp->nisr + 1));
        if (ids == NULL) {
            out->n_partitions = i;
            return;
        }
        memcpy(ids, cp->replicas, sizeof(int32_t) * (size_t)cp->nreplicas);
        memcpy(ids + cp->nreplicas, cp->isr, sizeof(int32_t) * (size_t)cp->nisr);
        p->replica_nodes = ids;
        p->n_replica_nodes = cp->nreplicas;
        p->isr_nodes = ids + cp->nreplicas;
        p->n_isr_nodes = cp->state == CLUSTER_STATE_READ ? cp->nisr : 0;
        p->n_offline_replicas = 0;
    }
}

static void cluster_auto_created(void *arg, int e, const char *msg)
{
    (void)arg;
    if (e != KERR_NONE && e != KERR_TOPIC_ALREADY_EXISTS)
        LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "auto-creation of a topic failed: %s: %s",
                    kerr_name(e), msg);
}

/* Metadata on a cluster: ZooKeeper's topics, then those only this broker has (the
 * coordinators' internal topics). */
static enum request_status cluster_metadata(struct broker *b, struct request *r, bool all,
                                            int32_t topic_ops)
{
    struct metadata_request *req = r->body;
    struct metadata_response *resp = r->resp;
    struct cluster_topic *const *ts;
    int nct = cluster_topics(b->cluster, &ts);
    if (all) {
        RESP_ARRAY(r, resp->topics, nct + b->ntopics);
        if (resp->topics == NULL && nct + b->ntopics > 0)
            return REQUEST_CLOSE;
        int n = 0;
        for (int i = 0; i < nct; i++)
            if (cluster_topic_visible(ts[i]) && /* not those queued for deletion, as Kafka */
                may_describe(b, r, ts[i]->name, false)) {
                resp->topics[n].topic_authorized_operations =
                    topic_ops_of(b, r, topic_ops, ts[i]->name);
                fill_cluster_topic(b, r, &resp->topics[n++], ts[i]);
            }
        for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
            if (t->creating == 0 && !cluster_topic_listed(b->cluster, t->name) &&
                n < nct + b->ntopics && may_describe(b, r, t->name, false)) {
                resp->topics[n].topic_authorized_operations = topic_ops_of(b, r, topic_ops, t->name);
                fill_topic(b, r, &resp->topics[n++], t);
            }
        resp->n_topics = n;
        return REQUEST_DONE;
    }
    RESP_ARRAY(r, resp->topics, req->n_topics);
    if (resp->topics == NULL && req->n_topics > 0)
        return REQUEST_CLOSE;
    resp->n_topics = req->n_topics;
    bool auto_create = b->cfg.auto_create_topics && req->allow_auto_topic_creation;
    for (int32_t i = 0; i < req->n_topics; i++) {
        struct metadata_request_metadata_request_topic *rt = &req->topics[i];
        struct metadata_response_metadata_response_topic *out = &resp->topics[i];
        out->topic_authorized_operations = topic_ops;
        const char *name = NULL;
        if (rt->name.ptr != NULL) {
            out->name = rt->name;
            char msg[512];
            if (topic_name_validate(rt->name.ptr, rt->name.len, msg, sizeof(msg)) != KERR_NONE) {
                out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            char *copy = request_alloc(r, (size_t)rt->name.len + 1); /* NUL-terminated */
            if (copy != NULL) {
                memcpy(copy, rt->name.ptr, (size_t)rt->name.len);
                copy[rt->name.len] = '\0';
            }
            name = copy;
        } else {
            out->topic_id = rt->topic_id;
            name = broker_cluster_topic_by_id(b, &rt->topic_id);
            struct topic *t = name ? NULL : topic_find_by_id(b, &rt->topic_id);
            if (t != NULL)
                name = t->name;
            if (name == NULL) {
                out->error_code = KERR_UNKNOWN_TOPIC_ID;
                out->topic_authorized_operations = AUTHORIZED_OPS_NOT_REQUESTED;
                continue;
            }
        }
        if (name == NULL)
            return REQUEST_CLOSE;
        if (!may_describe(b, r, name, true)) {
            out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            out->topic_authorized_operations = AUTHORIZED_OPS_NOT_REQUESTED;
            continue;
        }
        out->topic_authorized_operations = topic_ops_of(b, r, topic_ops, name);
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, name);
        if (ct != NULL) {
            fill_cluster_topic(b, r, out, ct);
            continue;
        }
        if (cluster_topic_listed(b->cluster, name)) {
            /* Queued for deletion (or not read yet): not in the view, whatever this broker
             * still holds locally; auto-creation would meet TOPIC_ALREADY_EXISTS, which Kafka
             * answers LEADER_NOT_AVAILABLE. */
            out->error_code = auto_create ? KERR_LEADER_NOT_AVAILABLE
                                          : KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        struct topic *t = topic_find(b, name);
        if (t != NULL && t->creating == 0) {
            fill_topic(b, r, out, t);
            continue;
        }
        if (t == NULL && auto_create && !topic_name_is_internal(name) && !may_create(b, r, name)) {
            out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        if (t == NULL && auto_create && !topic_name_is_internal(name)) {
            /* Kafka's answer while the new topic's partitions have no leader yet. */
            char msg[512];
            int16_t rf = b->cfg.default_replication_factor;
            int e = cluster_create_topic(b->cluster, name, b->cfg.num_partitions, rf, NULL, false, NULL,
                                         NULL, cluster_auto_created, NULL, msg, sizeof(msg));
            if (e != KERR_NONE && e != KERR_TOPIC_ALREADY_EXISTS)
                LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "auto-creation of topic %s refused: %s",
                            name, msg);
            out->error_code = e == KERR_NONE || e == KERR_TOPIC_ALREADY_EXISTS
                                  ? KERR_LEADER_NOT_AVAILABLE
                                  : KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        out->error_code = t != NULL ? KERR_LEADER_NOT_AVAILABLE : KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    return REQUEST_DONE;
}

enum request_status handle_metadata(struct broker *b, struct request *r)
{
    struct metadata_request *req = r->body;
    struct metadata_response *resp = r->resp;

    if (b->cluster != NULL) {
        const struct cluster_broker *live;
        int n = cluster_brokers(b->cluster, &live);
        RESP_ARRAY(r, resp->brokers, n);
        if (resp->brokers == NULL && n > 0)
            return REQUEST_CLOSE;
        resp->n_brokers = n;
        for (int i = 0; i < n; i++) {
            resp->brokers[i].node_id = live[i].id;
            const char *host; /* live until the loop turns, or in the request */
            broker_peer_endpoint(r, &live[i], &host, &resp->brokers[i].port);
            resp->brokers[i].host = kstr_of(host);
            resp->brokers[i].rack = kstr_or_null(live[i].rack); /* as host */
        }
        resp->controller_id = cluster_controller_id(b->cluster); /* -1: none yet, as Kafka */
    } else {
        RESP_ARRAY(r, resp->brokers, 1);
        if (resp->brokers == NULL)
            return REQUEST_CLOSE;
        resp->n_brokers = 1;
        resp->brokers[0].node_id = b->cfg.node_id;
        const char *host;
        broker_advertised_for(b, r->conn, &host, &resp->brokers[0].port);
        resp->brokers[0].host = kstr_of(host);
        resp->brokers[0].rack = kstr_or_null(b->cfg.broker_rack);
        resp->controller_id = b->cfg.node_id;
    }
    resp->cluster_id = kstr_of(b->cluster_id);
    /* The cluster's operations only in v8-10 (the field's versions), as Kafka. */
    resp->cluster_authorized_operations = r->api_version >= 8 && r->api_version <= 10 &&
                                                  req->include_cluster_authorized_operations
                                              ? authorized_operations(b, r, ACL_RES_CLUSTER,
                                                                      ACL_CLUSTER_NAME)
                                              : AUTHORIZED_OPS_NOT_REQUESTED;
    /* Kafka fills every topic it looked up by name or found, errors included; not the ids it
     * does not know. */
    int32_t topic_ops = r->api_version >= 8 && req->include_topic_authorized_operations
                            ? AUTHORIZED_OPS_TOPIC
                            : AUTHORIZED_OPS_NOT_REQUESTED;

    bool all = req->n_topics < 0 || (r->api_version == 0 && req->n_topics == 0);
    if (b->cluster != NULL)
        return cluster_metadata(b, r, all, topic_ops);
    if (all) {
        RESP_ARRAY(r, resp->topics, b->ntopics);
        if (resp->topics == NULL)
            return REQUEST_CLOSE;
        int n = 0;
        for (struct topic *t = topic_iter_first(b); t && n < b->ntopics; t = topic_iter_next(b, t))
            if (t->creating == 0 && /* listed once all its partitions exist */
                may_describe(b, r, t->name, false)) {
                resp->topics[n].topic_authorized_operations = topic_ops_of(b, r, topic_ops, t->name);
                fill_topic(b, r, &resp->topics[n++], t);
            }
        resp->n_topics = n;
        return REQUEST_DONE;
    }
    RESP_ARRAY(r, resp->topics, req->n_topics);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = req->n_topics;
    bool auto_create = b->cfg.auto_create_topics && req->allow_auto_topic_creation;
    for (int32_t i = 0; i < req->n_topics; i++) {
        struct metadata_request_metadata_request_topic *rt = &req->topics[i];
        struct metadata_response_metadata_response_topic *out = &resp->topics[i];
        out->topic_authorized_operations = topic_ops;
        struct topic *t = NULL;
        if (rt->name.ptr != NULL) {
            out->name = rt->name;
            if (!authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, rt->name.ptr, rt->name.len)) {
                out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                out->topic_authorized_operations = AUTHORIZED_OPS_NOT_REQUESTED;
                continue;
            }
            t = topic_find_name(b, rt->name);
            if (t == NULL) {
                char msg[512];
                if (topic_name_validate(rt->name.ptr, rt->name.len, msg, sizeof(msg)) != KERR_NONE) {
                    out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                    continue;
                }
                if (auto_create && !may_create(b, r, rt->name.ptr)) {
                    out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                    continue;
                }
                if (auto_create)
                    t = broker_auto_create(b, rt->name.ptr);
            }
        } else {
            t = topic_find_by_id(b, &rt->topic_id);
            out->topic_id = rt->topic_id;
            if (t == NULL) {
                out->error_code = KERR_UNKNOWN_TOPIC_ID;
                out->topic_authorized_operations = AUTHORIZED_OPS_NOT_REQUESTED;
                continue;
            }
            if (!may_describe(b, r, t->name, true)) {
                out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                out->topic_authorized_operations = AUTHORIZED_OPS_NOT_REQUESTED;
                continue;
            }
        }
        if (t != NULL)
            out->topic_authorized_operations = topic_ops_of(b, r, topic_ops, t->name);
        if (t == NULL) {
            out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        if (t->creating > 0) {
            /* Kafka's answer while a new topic's partitions have no leader yet: retriable. */
            out->error_code = KERR_LEADER_NOT_AVAILABLE;
            out->topic_id = t->id;
            continue;
        }
        fill_topic(b, r, out, t);
    }
    return REQUEST_DONE;
}
