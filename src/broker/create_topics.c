/* CreateTopics (19): validates name, partitions, replication factor (one node: only 1),
 * configs and the open files a topic needs as Kafka does; validate_only checks without
 * creating. Big topics are created over several loop turns and answered when done. On a
 * cluster the topic's assignment is written to ZooKeeper (src/cluster) and the brokers it
 * assigns open it (broker_cluster_sync, through the replica manager). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/mutation_quota.h"
#include "broker/replica_manager.h"
#include "broker/replica.h"
#include "cluster/cluster.h"
#include "common/logging.h"
#include "common/util.h"
#include "proto/messages.h"

static int validate_configs(struct broker *b, const struct create_topics_request_creatable_topic *in,
                            struct topic_config_kv *kv, char *msg, size_t msglen)
{
    (void)b;
    for (int32_t k = 0; k < in->n_configs; k++) {
        const struct create_topics_request_creatable_topic_config *c = &in->configs[k];
        if (c->name.ptr == NULL || c->value.ptr == NULL) {
            snprintf(msg, msglen, "Null value not supported for topic configs: %s",
                     c->name.ptr ? c->name.ptr : "?");
            return KERR_INVALID_CONFIG;
        }
        int e = topic_config_check(c->name.ptr, c->value.ptr, msg, msglen);
        if (e != KERR_NONE)
            return e;
        snprintf(kv[k].key, sizeof(kv[k].key), "%s", c->name.ptr);
        snprintf(kv[k].value, sizeof(kv[k].value), "%s", c->value.ptr);
    }
    return KERR_NONE;
}

/* CreateTopics on a cluster: answered once every topic's znode is written and this broker sees
 * a leader for each of its partitions (Kafka's DelayedCreatePartitions), bounded by the
 * request's timeout_ms (REQUEST_TIMED_OUT for a topic not seen led by then; timeout_ms <= 0:
 * answered once written, as Kafka), or refused. */
struct cluster_create {
    struct request *r;
    int32_t left;              /* writes and waits in flight */
    bool started;              /* the handler returned: the last write answers */
};
struct cluster_create_arg {
    struct cluster_create *cc;
    int32_t i;
};

static void set_error(struct request *r, int32_t i, int e, const char *msg);

static void cluster_create_seen(void *arg, int e, const char *msg)
{
    struct cluster_create_arg *a = arg;
    struct cluster_create *cc = a->cc;
    GREGOR_ASSERT(cc->left > 0);
    if (e != KERR_NONE)
        set_error(cc->r, a->i, e, msg);
    if (--cc->left == 0 && cc->started)
        request_finish(cc->r);
}

static void cluster_created(void *arg, int e, const char *msg)
{
    struct cluster_create_arg *a = arg;
    struct request *r = a->cc->r;
    struct create_topics_request *req = r->body;
    struct create_topics_response *resp = r->resp;
    if (e == KERR_NONE && r->conn != NULL &&
        cluster_await_view(r->broker->cluster, req->topics[a->i].name.ptr, 0,
                           resp->topics[a->i].num_partitions, req->timeout_ms,
                           cluster_create_seen, a))
        return; /* answered once this broker sees every partition's leader */
    cluster_create_seen(arg, e, msg);
}

static int create_one(struct broker *b, struct request *r, bool validate_only,
                      const struct create_topics_request_creatable_topic *in,
                      struct create_topics_response_creatable_topic_result *out,
                      struct topic **begun, struct cluster_create_arg *ca, char *msg,
                      size_t msglen)
{
    const char *name = in->name.ptr ? in->name.ptr : "";
    int e = topic_name_validate(in->name.ptr, in->name.len, msg, msglen);
    if (e != KERR_NONE)
        return e;
    /* Kafka refuses __cluster_metadata so; here the coordinators' topics too: made by a client
     * (its partition count, 7-day retention) they would lose what the coordinator writes. */
    if (strcmp(name, "__cluster_metadata") == 0 ||
        (topic_name_is_internal(name) && topic_find(b, name) == NULL)) {
        snprintf(msg, msglen, "Creation of internal topic %s is prohibited.", name);
        return KERR_INVALID_REQUEST;
    }
    if (topic_find(b, name) != NULL) {
        snprintf(msg, msglen, "Topic '%s' already exists.", name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    e = topic_name_collision(b, name, msg, msglen);
    if (e != KERR_NONE)
        return e;
    int32_t parts = in->num_partitions;
    int16_t rf = in->replication_factor;
    if (in->n_assignments > 0) {
        if (parts != -1 || rf != -1) {
            snprintf(msg, msglen, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.");
            return KERR_INVALID_REQUEST;
        }
        parts = in->n_assignments;
        rf = (int16_t)in->assignments[0].n_broker_ids;
        for (int32_t i = 0; i < in->n_assignments && b->cluster == NULL; i++)
            for (int32_t k = 0; k < in->assignments[i].n_broker_ids; k++)
                if (in->assignments[i].broker_ids[k] != b->cfg.node_id) {
                    snprintf(msg, msglen, "Unknown broker %d in the replica assignment",
                             in->assignments[i].broker_ids[k]);
                    return KERR_INVALID_REPLICA_ASSIGNMENT;
                }
    }
    if (parts == -1)
        parts = b->cfg.num_partitions;
    if (rf == -1)
        rf = b->cfg.default_replication_factor;
    if (parts <= 0) {
        snprintf(msg, msglen, "Number of partitions must be larger than 0.");
        return KERR_INVALID_PARTITIONS;
    }
    if (rf <= 0) {
        snprintf(msg, msglen, "Replication factor must be larger than 0.");
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (rf > 1 && b->cluster == NULL) {
        snprintf(msg, msglen, "Replication factor: %d larger than available brokers: 1.", rf);
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (parts > 100000) {
        snprintf(msg, msglen, "Number of partitions %d is more than this broker allows (100000).", parts);
        return KERR_INVALID_PARTITIONS;
    }
    struct topic_config_kv *kv = request_alloc(r, sizeof(*kv) * (size_t)(in->n_configs + 1));
    if (kv == NULL)
        return KERR_UNKNOWN_SERVER_ERROR;
    e = validate_configs(b, in, kv, msg, msglen);
    if (e != KERR_NONE)
        return e;
    e = topic_fd_budget_check(b, parts, msg, msglen);
    if (e != KERR_NONE)
        return e;
    out->num_partitions = parts;
    out->replication_factor = rf;
    /* v5+: a non-null configs array whenever num_partitions is set (the Java admin client
     * dereferences it); it lists the topic's explicit configs (source DYNAMIC_TOPIC_CONFIG). */
    int32_t nc = in->n_configs > 0 ? in->n_configs : 0;
    RESP_ARRAY(r, out->configs, nc);
    if (out->configs == NULL)
        return KERR_UNKNOWN_SERVER_ERROR;
    for (int32_t k = 0; k < nc; k++) {
        out->configs[k].name = kstr_of(kv[k].key);
        out->configs[k].value = kstr_of(kv[k].value);
        out->configs[k].read_only = false;
        out->configs[k].config_source = 1;
        out->configs[k].is_sensitive = false;
    }
    out->n_configs = nc;
    if (b->cluster != NULL) {
        /* The cluster's controller assigns the leaders; the leading brokers open the logs. */
        int32_t *assign = NULL;
        if (in->n_assignments > 0) {
            assign = request_alloc(r, sizeof(int32_t) * (size_t)parts * (size_t)rf);
            if (assign == NULL)
                return KERR_UNKNOWN_SERVER_ERROR;
            for (int32_t i = 0; i < parts; i++) {
                const struct create_topics_request_creatable_replica_assignment *as =
                    &in->assignments[i];
                if (as->n_broker_ids != rf || as->partition_index < 0 ||
                    as->partition_index >= parts) {
                    snprintf(msg, msglen, "Inconsistent replication factor or partition index "
                             "in the replica assignment");
                    return KERR_INVALID_REPLICA_ASSIGNMENT;
                }
                memcpy(assign + (size_t)as->partition_index * (size_t)rf, as->broker_ids,
                       sizeof(int32_t) * (size_t)rf);
            }
        }
        /* The configs go to /config/topics/<t> first, as Kafka's createTopicWithAssignment. */
        size_t clen;
        char *cjson = topic_configs_json(kv, nc, &clen);
        /* Checked, then the partitions recorded against the quota, then written. */
        e = cluster_create_topic(b->cluster, name, parts, rf, assign, true, out->topic_id.b,
                                 cjson, cluster_created, ca, msg, msglen);
        if (e == KERR_NONE && !validate_only)
            e = mutation_quota_record(r, parts, r->api_version >= 6, msg, msglen);
        if (e == KERR_NONE && !validate_only)
            e = cluster_create_topic(b->cluster, name, parts, rf, assign, false,
                                     out->topic_id.b, cjson, cluster_created, ca, msg, msglen);
        free(cjson);
        if (e == KERR_NONE && !validate_only)
            ca->cc->left++;
        return e;
    }
    if (validate_only)
        return KERR_NONE;
    /* KIP-599: the partitions are recorded before the topic is made (strict from v6). */
    e = mutation_quota_record(r, parts, r->api_version >= 6, msg, msglen);
    if (e != KERR_NONE)
        return e;
    e = topic_create_begin(b, name, parts, kv, in->n_configs > 0 ? in->n_configs : 0, begun,
                           msg, msglen);
    if (e == KERR_NONE)
        out->topic_id = (*begun)->id;
    return e;
}

/* Partitions are opened a bounded slice of time (BROKER_TURN_US) per loop turn (opening one
 * costs ~1.4 ms of mkdir, file creation and fsyncs: 19,900 of them held the loop 64 s), so
 * that other clients are served meanwhile. One job per CreateTopics or CreatePartitions
 * request, or per auto-creation (no request); its entries' topics are stepped in order. */

struct create_entry {
    struct topic *t;         /* being created or grown; NULL when done, refused or gone */
    struct kuuid id;         /* to tell t from a topic made after DeleteTopics removed it */
    const char *name;        /* t's, living as long as the job */
};

struct create_job {
    struct request *r;       /* answered when done; NULL: an auto-creation (job malloc'd) */
    create_job_error_fn on_error;
    struct create_entry *e;
    int32_t n;
    uint64_t timer;          /* the next turn's broker timer, 0 when none */
    struct create_job *next; /* in b->create_jobs while pending */
    char owned_name[sizeof(((struct topic *)0)->name)]; /* an auto-creation's topic name */
};

struct create_job *create_job_new(struct request *r, int32_t n, create_job_error_fn on_error)
{
    GREGOR_ASSERT(n >= 0);
    struct create_job *job;
    size_t esize = sizeof(struct create_entry) * (size_t)(n > 0 ? n : 1);
    if (r != NULL) {
        job = request_alloc(r, sizeof(*job));
        struct create_entry *e = job ? request_alloc(r, esize) : NULL;
        if (e == NULL)
            return NULL;
        memset(job, 0, sizeof(*job));
        memset(e, 0, esize);
        job->e = e;
    } else {
        GREGOR_ASSERT(n == 1); /* an auto-creation: one topic, its name kept here */
        job = calloc(1, sizeof(*job));
        if (job == NULL)
            return NULL;
        job->e = calloc(1, esize);
        if (job->e == NULL) {
            free(job);
            return NULL;
        }
    }
    job->r = r;
    job->n = n;
    job->on_error = on_error;
    return job;
}

void create_job_set(struct create_job *job, int32_t i, struct topic *t, const char *name)
{
    GREGOR_ASSERT(i >= 0 && i < job->n && job->e[i].t == NULL);
    GREGOR_ASSERT((t->creating > 0 || t->growing > 0) && strcmp(t->name, name) == 0);
    if (job->r == NULL) {
        snprintf(job->owned_name, sizeof(job->owned_name), "%s", t->name);
        name = job->owned_name;
    }
    job->e[i].t = t;
    job->e[i].id = t->id;
    job->e[i].name = name;
}

/* The entry's topic, or NULL when DeleteTopics removed it between turns (which dropped the
 * growth; a topic being created cannot be deleted). Never dereferences a freed topic. */
static struct topic *entry_topic(struct broker *b, struct create_entry *e)
{
    struct topic *t = topic_find(b, e->name);
    if (t != e->t || memcmp(t->id.b, e->id.b, sizeof(e->id.b)) != 0)
        return NULL;
    GREGOR_ASSERT(t->creating > 0 || t->growing > 0);
    return t;
}

/* Opens partitions until the turn's time is spent; true once every entry is done. */
static bool create_run(struct broker *b, struct create_job *job)
{
    int64_t deadline = mono_us() + BROKER_TURN_US;
    for (int32_t i = 0; i < job->n; i++) {
        if (job->e[i].t == NULL)
            continue;
        struct topic *t = entry_topic(b, &job->e[i]);
        if (t == NULL) {
            /* Deleted meanwhile: Kafka would have applied the change, then the deletion. */
            LOG_INFO("KafkaApis", "Topic %s was deleted while its partitions were being added",
                     job->e[i].name);
            job->e[i].t = NULL;
            continue;
        }
        char msg[512] = "";
        bool done = false;
        int e = topic_create_step(b, t, deadline, &done, msg, sizeof(msg));
        if (e != KERR_NONE)
            job->on_error(job->r, i, e, msg);
        if (e != KERR_NONE || done)
            job->e[i].t = NULL;
        else
            return false;
    }
    return true;
}

static void unlink_job(struct broker *b, struct create_job *job)
{
    struct create_job **pp = &b->create_jobs;
    while (*pp != NULL && *pp != job)
        pp = &(*pp)->next;
    GREGOR_ASSERT(*pp == job);
    *pp = job->next;
    job->next = NULL;
}

static void job_end(struct create_job *job)
{
    if (job->r != NULL) {
        request_finish(job->r);
        return;
    }
    free(job->e);
    free(job);
}

static void create_turn(struct broker *b, void *arg)
{
    struct create_job *job = arg;
    job->timer = 0;
    if (!create_run(b, job)) {
        job->timer = broker_timer_add(b, mono_ms(), create_turn, job);
        return;
    }
    unlink_job(b, job);
    bool auto_job = job->r == NULL;
    job_end(job);
    if (auto_job && b->cluster != NULL)
        broker_cluster_sync(b); /* the cluster's count may have risen again meanwhile */
}

enum request_status create_job_start(struct broker *b, struct create_job *job)
{
    if (create_run(b, job)) {
        if (job->r == NULL)
            job_end(job);
        return REQUEST_DONE;
    }
    job->next = b->create_jobs;
    b->create_jobs = job;
    job->timer = broker_timer_add(b, mono_ms(), create_turn, job);
    return REQUEST_PENDING;
}

void create_topics_shutdown(struct broker *b)
{
    while (b->create_jobs != NULL) {
        struct create_job *job = b->create_jobs;
        unlink_job(b, job);
        if (job->timer != 0)
            broker_timer_cancel(b, job->timer);
        for (int32_t i = 0; i < job->n; i++) {
            struct topic *t = job->e[i].t != NULL ? entry_topic(b, &job->e[i]) : NULL;
            if (t != NULL) {
                topic_create_abandon(b, t);
                job->on_error(job->r, i, KERR_REQUEST_TIMED_OUT,
                              "The broker shut down during the change.");
            }
        }
        job_end(job);
    }
}

static void set_error(struct request *r, int32_t i, int e, const char *msg)
{
    struct create_topics_response *resp = r->resp;
    resp->topics[i].error_code = (int16_t)e;
    resp->topics[i].error_message = msg != NULL ? kstr_of(request_strdup(r, msg)) : kstr_null();
    resp->topics[i].num_partitions = -1;
    resp->topics[i].replication_factor = -1;
    resp->topics[i].n_configs = -1;
    memset(&resp->topics[i].topic_id, 0, sizeof(resp->topics[i].topic_id));
}

enum request_status handle_create_topics(struct broker *b, struct request *r)
{
    struct create_topics_request *req = r->body;
    struct create_topics_response *resp = r->resp;
    int32_t n = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->topics, n);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = n;
    struct create_job *job = create_job_new(r, n, set_error);
    struct cluster_create *cc = request_alloc(r, sizeof(*cc));
    struct cluster_create_arg *ca = request_alloc(r, sizeof(*ca) * (size_t)(n > 0 ? n : 1));
    if (job == NULL || cc == NULL || ca == NULL)
        return REQUEST_CLOSE;
    *cc = (struct cluster_create){.r = r};
    bool cluster_create = authorize(b, r, ACL_OP_CREATE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, false);
    for (int32_t i = 0; i < n; i++) {
        struct create_topics_response_creatable_topic_result *out = &resp->topics[i];
        out->name = req->topics[i].name.ptr ? req->topics[i].name : kstr_of("");
        out->num_partitions = -1;
        out->replication_factor = -1;
        out->n_configs = -1;
        char msg[512] = "";
        bool dup = false;
        for (int32_t k = 0; k < i; k++)
            if (req->topics[k].name.ptr && req->topics[i].name.ptr &&
                req->topics[k].name.len == req->topics[i].name.len &&
                memcmp(req->topics[k].name.ptr, req->topics[i].name.ptr,
                       (size_t)req->topics[i].name.len) == 0)
                dup = true;
        struct topic *begun = NULL;
        ca[i] = (struct cluster_create_arg){.cc = cc, .i = i};
        /* KafkaApis: CREATE on the cluster, or else on each topic. */
        bool denied = !dup && !cluster_create &&
                      !authorize_kstr(b, r, ACL_OP_CREATE, ACL_RES_TOPIC, req->topics[i].name.ptr,
                                      req->topics[i].name.len);
        if (denied)
            snprintf(msg, sizeof(msg), "Authorization failed.");
        int e = dup ? KERR_INVALID_REQUEST
                : denied ? KERR_TOPIC_AUTHORIZATION_FAILED
                    : create_one(b, r, req->validate_only, &req->topics[i], out, &begun, &ca[i],
                                 msg, sizeof(msg));
        if (e == KERR_NONE && begun != NULL)
            create_job_set(job, i, begun, req->topics[i].name.ptr);
        if (dup)
            snprintf(msg, sizeof(msg), "Create topics request from client contains a duplicate topic");
        out->error_code = (int16_t)e;
        out->error_message = e == KERR_NONE ? kstr_null() : kstr_of(request_strdup(r, msg));
    }
    resp->throttle_time_ms = r->throttle_ms; /* the controller mutation quota's */
    if (b->cluster != NULL) {
        GREGOR_ASSERT(job->n == n);
        cc->started = true;
        return cc->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
    }
    return create_job_start(b, job);
}

/* ---- a cluster on ZooKeeper ---- */

static const struct cluster_topic *cluster_topic_of(struct broker *b, struct kstr name)
{
    if (b->cluster == NULL || name.ptr == NULL || name.len <= 0 ||
        name.len >= CLUSTER_TOPIC_NAME_MAX)
        return NULL;
    char n[CLUSTER_TOPIC_NAME_MAX];
    memcpy(n, name.ptr, (size_t)name.len);
    n[name.len] = '\0';
    return cluster_topic_find(b->cluster, n);
}

/* Listed by ZooKeeper but not shown (queued for deletion, or not read yet). */
static bool cluster_topic_hidden(struct broker *b, struct kstr name)
{
    if (b->cluster == NULL || name.ptr == NULL || name.len <= 0 ||
        name.len >= CLUSTER_TOPIC_NAME_MAX)
        return false;
    char n[CLUSTER_TOPIC_NAME_MAX];
    memcpy(n, name.ptr, (size_t)name.len);
    n[name.len] = '\0';
    return cluster_topic_listed(b->cluster, n) && cluster_topic_find(b->cluster, n) == NULL;
}

int broker_leader_check(struct broker *b, struct kstr topic, int32_t partition)
{
    const struct cluster_topic *ct = cluster_topic_of(b, topic);
    if (ct == NULL && cluster_topic_hidden(b, topic))
        return KERR_UNKNOWN_TOPIC_OR_PARTITION; /* queued for deletion: not served */
    if (ct == NULL && b->cluster != NULL) {
        /* A topic of this broker's log dirs that the cluster's view does not show yet (just
         * started: ZooKeeper not read): not led here until the view says so, as Kafka's
         * replica manager before its LeaderAndIsr. Served from the local log, a write was
         * acknowledged, then cut when this broker truncated to its leader's log. */
        const struct topic *t = topic_find_name(b, topic);
        if (t != NULL && !t->internal)
            return KERR_NOT_LEADER_OR_FOLLOWER;
    }
    if (ct == NULL || partition < 0 || partition >= ct->npartitions)
        return KERR_NONE; /* the local answer stands (unknown partition, internal topic) */
    return ct->parts[partition].leader == b->cfg.node_id ? KERR_NONE
                                                          : KERR_NOT_LEADER_OR_FOLLOWER;
}

const char *broker_cluster_topic_by_id(struct broker *b, const struct kuuid *id)
{
    if (b->cluster == NULL)
        return NULL;
    struct cluster_topic *const *ts;
    int n = cluster_topics(b->cluster, &ts);
    for (int i = 0; i < n; i++)
        if (cluster_topic_visible(ts[i]) && memcmp(ts[i]->id, id->b, 16) == 0)
            return ts[i]->name;
    return NULL;
}

static void cluster_open_failed(struct request *r, int32_t i, int e, const char *msg)
{
    (void)r;
    (void)i;
    LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "opening a topic the cluster assigned failed: %s: %s",
                kerr_name(e), msg);
}

/* CreatePartitions on the cluster: the local topic (opened here because this broker leads one
 * of its partitions) grows to the cluster's count, over loop turns as a local growth. */
static void cluster_grow_local(struct broker *b, struct topic *t, const struct cluster_topic *ct)
{
    char msg[512];
    int e = topic_fd_budget_check(b, ct->npartitions - t->npartitions, msg, sizeof(msg));
    struct create_job *job = e == KERR_NONE ? create_job_new(NULL, 1, cluster_open_failed) : NULL;
    if (job == NULL) {
        LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "cannot add partitions %d..%d of %s here: %s",
                    t->npartitions, ct->npartitions - 1, ct->name,
                    e != KERR_NONE ? msg : "out of memory");
        return;
    }
    LOG_INFO("KafkaApis", "Topic %s grows from %d to %d partitions (the cluster's)", ct->name,
             t->npartitions, ct->npartitions);
    e = topic_grow_begin(b, t, ct->npartitions);
    if (e == KERR_NONE)
        create_job_set(job, 0, t, ct->name);
    else
        cluster_open_failed(NULL, 0, e, "cannot begin the growth");
    create_job_start(b, job);
}

/* Opens a topic of the cluster here (all its partitions, with the cluster's topic id and the
 * configs of /config/topics/<t>) over several loop turns. 0 when the opening began, -1 when
 * refused (logged). */
int broker_cluster_open_topic(struct broker *b, const struct cluster_topic *ct)
{
    char msg[512];
    struct topic *t = NULL;
    if (topic_name_validate(ct->name, (int32_t)strlen(ct->name), msg, sizeof(msg)) != KERR_NONE ||
        topic_fd_budget_check(b, ct->npartitions, msg, sizeof(msg)) != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "cannot open topic %s here: %s", ct->name, msg);
        return -1;
    }
    struct create_job *job = create_job_new(NULL, 1, cluster_open_failed);
    if (job == NULL)
        return -1;
    struct topic_config_kv *kv = NULL; /* /config/topics/<t>, read before (config_known) */
    int nkv = 0;
    (void)topic_configs_parse(ct->name, ct->config, (size_t)ct->config_len, &kv, &nkv);
    int e = topic_create_begin(b, ct->name, ct->npartitions, kv, nkv, &t, msg, sizeof(msg));
    free(kv);
    if (e == KERR_NONE) {
        memcpy(t->id.b, ct->id, 16); /* the cluster's id, before any partition is written */
        create_job_set(job, 0, t, ct->name);
    } else {
        cluster_open_failed(NULL, 0, e, msg);
    }
    create_job_start(b, job);
    return e == KERR_NONE ? 0 : -1;
}

/* The cluster's view changed: the replica manager opens every topic with a replica here, leads
 * the partitions the controller gave this broker and follows the others (replica_manager.c). */
void broker_cluster_sync(void *arg)
{
    struct broker *b = arg;
    if (b->cluster == NULL || b->replicas == NULL)
        return;
    dynamic_configs_cluster_sync(b); /* configs read from ZooKeeper since the last call */
    struct cluster_topic *const *ts;
    int n = cluster_topics(b->cluster, &ts);
    for (int i = 0; i < n; i++) {
        const struct cluster_topic *ct = ts[i];
        struct topic *have = topic_find(b, ct->name);
        if (ct->marked && have != NULL && have->creating == 0 && have->growing == 0)
            broker_cluster_topic_gone(b, ct->name); /* was being opened when it was queued */
        if (!cluster_topic_visible(ct))
            continue;
        have = topic_find(b, ct->name);
        if (have != NULL && have->creating == 0 && have->growing == 0 &&
            ct->npartitions > have->npartitions)
            cluster_grow_local(b, have, ct); /* CreatePartitions: the roles follow once grown */
    }
    replica_manager_sync(b->replicas);
    replica_sync(b); /* the partitions led here: replicas, ISR, high watermark */
}

void broker_cluster_topic_gone(void *arg, const char *name)
{
    struct broker *b = arg;
    struct topic *t = topic_find(b, name);
    if (t == NULL || t->internal || t->creating > 0)
        return; /* a creation in progress is finished, then deleted at the next change */
    LOG_INFO("KafkaApis", "Topic %s was deleted from the cluster: deleting its logs", name);
    topic_delete_begin(b, t);
    if (topics_delete_commit(b) != KERR_NONE)
        LOG_LIMITED(LOG_LEVEL_WARN, "KafkaApis", "cannot persist the deletion of topic %s", name);
}
