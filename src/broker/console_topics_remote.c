/* console_topics_remote: /api/overview and /api/topics/<t> in a ZooKeeper cluster
 * (docs/CONSOLE.md), as a Kafka client of the cluster would build them: the topics and their
 * partitions' leaders, replicas and ISR from ZooKeeper's view (cluster_topics), the sizes on
 * disk by DescribeLogDirs to the brokers holding replicas, the offsets by ListOffsets to the
 * leaders, batched per broker, in one gather (console_remote.h). What this broker holds or
 * leads is read here (its data is authoritative, and no request goes to itself). A broker
 * that does not answer (CONSOLE_REMOTE_TIMEOUT_MS) leaves the values it had to give null and
 * its id in the answer's "unavailable_brokers". */
#include <stdlib.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/broker.h"
#include "broker/console.h"
#include "broker/console_api.h"
#include "broker/console_remote.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "common/jsonw.h"
#include "common/util.h"
#include "partition/partition.h"
#include "proto/messages.h"

#define LEADERS_MAX 1024     /* distinct brokers one call sends to */

/* ListOffsets: Kafka's special timestamps. */
#define TS_LATEST (-1)
#define TS_EARLIEST (-2)

/* ---- shared ---- */

static bool kstr_is(struct kstr s, const char *name)
{
    return s.ptr != NULL && s.len >= 0 && (size_t)s.len == strlen(name) &&
           memcmp(s.ptr, name, (size_t)s.len) == 0;
}

/* A topic ZooKeeper shows whole: read, with partitions, not being deleted. */
static const struct cluster_topic *shown_topic(struct broker *b, const char *name)
{
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, name);
    if (ct == NULL || !cluster_topic_visible(ct) || ct->gone || ct->deleting || ct->npartitions <= 0)
        return NULL;
    return ct;
}

/* This broker's replica of partition i of name, or NULL. */
static struct partition *local_partition(struct broker *b, const char *name, int32_t i)
{
    struct topic *t = topic_find(b, name);
    if (t == NULL || t->creating > 0 || i < 0 || i >= t->npartitions)
        return NULL;
    return t->partitions[i];
}

/* The distinct brokers (not this one) of ids into set (at most LEADERS_MAX). */
static void set_add(int32_t *set, int *n, int32_t id)
{
    for (int i = 0; i < *n; i++)
        if (set[i] == id)
            return;
    if (*n < LEADERS_MAX)
        set[(*n)++] = id;
}

static bool is_live(const struct cluster_broker *live, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (live[i].id == id)
            return true;
    return false;
}

/* One request's answer goes to the broker it was sent to. */
struct sent {
    int32_t broker;
    int64_t timestamp; /* ListOffsets: which offsets were asked */
};

/* ---- overview ---- */

struct ov_topic {
    const char *name;
    int32_t np;
    int64_t *hw;     /* per partition, -1 unknown */
    int32_t *leader; /* per partition, as the request asked it */
    int64_t size;    /* summed over the replicas that answered */
};

struct ov_state {
    struct ov_topic *topics; /* by name */
    int32_t ntopics;
    struct console_unavailable unavail;
    const char **groups;     /* the visible group ids every broker listed (ListGroups) */
    int32_t ngroups;
};

/* A ListGroups answer: its visible group ids kept (at most CONSOLE_GROUPS_MAX in all). */
static void ov_groups(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct ov_state *s = g->state;
    const struct sent *q = arg;
    if (resp->error != KERR_NONE) {
        console_unavailable_add(&s->unavail, q->broker);
        return;
    }
    const struct list_groups_response *r = resp->body;
    for (int32_t i = 0; i < r->n_groups && s->ngroups < CONSOLE_GROUPS_MAX; i++) {
        char *id = console_gather_strdup(g, r->groups[i].group_id.ptr,
                                         r->groups[i].group_id.ptr != NULL && r->groups[i].group_id.len > 0
                                             ? (size_t)r->groups[i].group_id.len : 0);
        if (id != NULL && console_visible(&g->cx, ACL_RES_GROUP, id))
            s->groups[s->ngroups++] = id;
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct visible groups of the cluster: the ones listed plus this broker's own. */
static int32_t ov_group_count(struct console_gather *g, struct ov_state *s)
{
    const char **mine = NULL;
    int n = console_local_groups(&g->cx, &mine, &g->arena);
    for (int i = 0; mine != NULL && i < n && s->ngroups < CONSOLE_GROUPS_MAX; i++)
        s->groups[s->ngroups++] = mine[i];
    qsort(s->groups, (size_t)s->ngroups, sizeof(*s->groups), str_cmp);
    int32_t u = 0; /* one listed twice while its coordinator moved: once */
    for (int32_t i = 0; i < s->ngroups; i++)
        u += i == 0 || strcmp(s->groups[i - 1], s->groups[i]) != 0;
    return u;
}

static int ov_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ov_topic *)a)->name, ((const struct ov_topic *)b)->name);
}

static struct ov_topic *ov_find(struct ov_state *s, struct kstr name)
{
    if (name.ptr == NULL || name.len <= 0 || name.len >= CLUSTER_TOPIC_NAME_MAX)
        return NULL;
    char key[CLUSTER_TOPIC_NAME_MAX];
    memcpy(key, name.ptr, (size_t)name.len);
    key[name.len] = '\0';
    struct ov_topic probe = {.name = key};
    return bsearch(&probe, s->topics, (size_t)s->ntopics, sizeof(*s->topics), ov_cmp);
}

static void ov_sizes(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct ov_state *s = g->state;
    const struct sent *q = arg;
    const struct describe_log_dirs_response *r = resp->body;
    if (resp->error != KERR_NONE || r == NULL || r->error_code != KERR_NONE) {
        console_unavailable_add(&s->unavail, q->broker);
        return;
    }
    for (int32_t d = 0; d < r->n_results; d++) {
        const struct describe_log_dirs_response_describe_log_dirs_result *res = &r->results[d];
        if (res->error_code != KERR_NONE) /* an offline log dir: its replicas' sizes unknown */
            console_unavailable_add(&s->unavail, q->broker);
        for (int32_t i = 0; res->error_code == KERR_NONE && i < res->n_topics; i++) {
            struct ov_topic *t = ov_find(s, res->topics[i].name);
            for (int32_t k = 0; t != NULL && k < res->topics[i].n_partitions; k++)
                if (!res->topics[i].partitions[k].is_future_key)
                    t->size += res->topics[i].partitions[k].partition_size;
        }
    }
}

static void ov_offsets(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct ov_state *s = g->state;
    const struct sent *q = arg;
    const struct list_offsets_response *r = resp->body;
    if (resp->error != KERR_NONE || r == NULL) {
        console_unavailable_add(&s->unavail, q->broker);
        return;
    }
    for (int32_t i = 0; i < r->n_topics; i++) {
        struct ov_topic *t = ov_find(s, r->topics[i].name);
        for (int32_t k = 0; t != NULL && k < r->topics[i].n_partitions; k++) {
            const struct list_offsets_response_list_offsets_partition_response *p =
                &r->topics[i].partitions[k];
            int32_t pi = p->partition_index;
            if (p->error_code == KERR_NONE && pi >= 0 && pi < t->np && t->leader[pi] == q->broker)
                t->hw[pi] = p->offset;
        }
    }
}

static void ov_answer(struct console_gather *g)
{
    struct ov_state *s = g->state;
    struct console_ctx *cx = &g->cx;
    struct broker *b = cx->b;
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    console_overview_begin(cx, &w);
    for (int32_t n = 0; n < s->ntopics; n++) {
        const struct ov_topic *ot = &s->topics[n];
        const struct cluster_topic *ct = shown_topic(b, ot->name); /* deleted meanwhile: gone */
        if (ct == NULL)
            continue;
        int32_t under = 0, offline = 0;
        bool size_known = true, hw_known = true;
        int64_t hw_sum = 0;
        for (int32_t i = 0; i < ct->npartitions; i++) {
            const struct cluster_partition *cp = &ct->parts[i];
            under += cp->nisr < cp->nreplicas;
            offline += cp->leader < 0;
            for (int32_t k = 0; k < cp->nreplicas; k++)
                size_known = size_known && !console_unavailable_has(&s->unavail, cp->replicas[k]);
            if (i < ot->np && ot->hw[i] >= 0)
                hw_sum += ot->hw[i];
            else
                hw_known = false;
        }
        struct topic *t = topic_find(b, ot->name);
        struct topic_traffic tt = {0};
        if (t != NULL && t->creating == 0)
            metrics_topic_traffic(b, t, &tt);
        jsonw_obj(&w);
        jsonw_kstr(&w, "name", ct->name);
        jsonw_kbool(&w, "internal", topic_name_is_internal(ct->name));
        jsonw_ki64(&w, "partitions", ct->npartitions);
        jsonw_ki64(&w, "replication_factor", ct->parts[0].nreplicas);
        jsonw_ki64_known(&w, "size_bytes", size_known ? ot->size : -1);
        /* the sum of the high watermarks: a counter */
        jsonw_ki64_known(&w, "messages_in", hw_known ? hw_sum : -1);
        jsonw_ki64(&w, "bytes_in", (int64_t)tt.bytes_in);
        jsonw_ki64(&w, "bytes_out", (int64_t)tt.bytes_out);
        jsonw_ki64(&w, "under_replicated", under);
        jsonw_ki64(&w, "offline", offline);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    console_unavailable_write(&w, &s->unavail);
    console_overview_end(cx, &w, ov_group_count(g, s));
    console_gather_reply(g, 200, &w);
}

void console_overview_cluster(struct console_ctx *cx)
{
    struct broker *b = cx->b;
    struct console_gather *g = console_gather_new(cx, sizeof(struct ov_state));
    if (g == NULL)
        return;
    struct ov_state *s = g->state;
    struct cluster_topic *const *all;
    int n = cluster_topics(b->cluster, &all);
    s->topics = arena_alloc(&g->arena, sizeof(*s->topics) * (size_t)(n > 0 ? n : 1));
    if (s->topics == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    int32_t self = b->cfg.node_id;
    int32_t leaders[LEADERS_MAX];
    int nleaders = 0;
    const struct cluster_broker *live;
    int nlive = cluster_brokers(b->cluster, &live);
    for (int i = 0; i < n; i++) {
        const struct cluster_topic *ct = all[i];
        if (shown_topic(b, ct->name) != ct || !console_visible(cx, ACL_RES_TOPIC, ct->name))
            continue;
        struct ov_topic *ot = &s->topics[s->ntopics];
        ot->name = console_gather_strdup(g, ct->name, strlen(ct->name));
        ot->np = ct->npartitions;
        ot->hw = arena_alloc(&g->arena, sizeof(*ot->hw) * (size_t)ot->np);
        ot->leader = arena_alloc(&g->arena, sizeof(*ot->leader) * (size_t)ot->np);
        if (ot->name == NULL || ot->hw == NULL || ot->leader == NULL) {
            console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
            return;
        }
        for (int32_t p = 0; p < ot->np; p++) {
            for (int32_t k = 0; k < ct->parts[p].nreplicas; k++) /* a replica's broker gone */
                if (ct->parts[p].replicas[k] != self && !is_live(live, nlive, ct->parts[p].replicas[k]))
                    console_unavailable_add(&s->unavail, ct->parts[p].replicas[k]);
            ot->leader[p] = ct->parts[p].leader;
            ot->hw[p] = -1;
            struct partition *lp = local_partition(b, ct->name, p);
            if (lp != NULL)
                ot->size += partition_size_bytes(lp); /* this broker's replica */
            if (ot->leader[p] == self && lp != NULL)
                ot->hw[p] = partition_high_watermark(lp);
            else if (ot->leader[p] >= 0 && ot->leader[p] != self)
                set_add(leaders, &nleaders, ot->leader[p]);
        }
        s->ntopics++;
    }
    qsort(s->topics, (size_t)s->ntopics, sizeof(*s->topics), ov_cmp);

    /* Sizes: every other live broker, every replica it holds (topics null); and the groups it
     * coordinates (ListGroups, no filter). */
    static struct list_groups_request all_groups;
    s->groups = arena_alloc(&g->arena, sizeof(*s->groups) * CONSOLE_GROUPS_MAX);
    for (int i = 0; i < nlive; i++) {
        if (live[i].id == self)
            continue;
        struct sent *lq = arena_alloc(&g->arena, sizeof(*lq));
        if (s->groups == NULL || lq == NULL)
            console_unavailable_add(&s->unavail, live[i].id);
        else {
            lq->broker = live[i].id;
            if (console_gather_send(g, live[i].id, PROTO_API_LIST_GROUPS, 0, -1, &all_groups,
                                    ov_groups, lq) != 0)
                console_unavailable_add(&s->unavail, live[i].id);
        }
        struct describe_log_dirs_request *req = arena_alloc(&g->arena, sizeof(*req));
        struct sent *q = arena_alloc(&g->arena, sizeof(*q));
        if (req == NULL || q == NULL) {
            console_unavailable_add(&s->unavail, live[i].id);
            continue;
        }
        req->n_topics = -1;
        q->broker = live[i].id;
        if (console_gather_send(g, live[i].id, PROTO_API_DESCRIBE_LOG_DIRS, 1, 4, req, ov_sizes, q) != 0)
            console_unavailable_add(&s->unavail, live[i].id);
    }
    /* High watermarks: one ListOffsets (latest) per leader with every partition it leads. */
    for (int l = 0; l < nleaders; l++) {
        int32_t id = leaders[l];
        int32_t nt = 0;
        for (int32_t i = 0; i < s->ntopics; i++)
            for (int32_t p = 0; p < s->topics[i].np; p++)
                if (s->topics[i].leader[p] == id) {
                    nt++;
                    break;
                }
        struct list_offsets_request *req = arena_alloc(&g->arena, sizeof(*req));
        struct sent *q = arena_alloc(&g->arena, sizeof(*q));
        struct list_offsets_request_list_offsets_topic *rts =
            arena_alloc(&g->arena, sizeof(*rts) * (size_t)(nt > 0 ? nt : 1));
        bool ok = req != NULL && q != NULL && rts != NULL;
        for (int32_t i = 0; ok && i < s->ntopics; i++) {
            const struct ov_topic *ot = &s->topics[i];
            int32_t np = 0;
            for (int32_t p = 0; p < ot->np; p++)
                np += ot->leader[p] == id;
            if (np == 0)
                continue;
            struct list_offsets_request_list_offsets_topic *rt = &rts[req->n_topics++];
            rt->name = (struct kstr){.ptr = (char *)ot->name, .len = (int32_t)strlen(ot->name)};
            rt->partitions = arena_alloc(&g->arena, sizeof(*rt->partitions) * (size_t)np);
            ok = rt->partitions != NULL;
            for (int32_t p = 0; ok && p < ot->np; p++)
                if (ot->leader[p] == id)
                    rt->partitions[rt->n_partitions++] = (struct list_offsets_request_list_offsets_partition){
                        .partition_index = p, .current_leader_epoch = -1, .timestamp = TS_LATEST,
                        .max_num_offsets = 1};
        }
        if (!ok) {
            console_unavailable_add(&s->unavail, id);
            continue;
        }
        req->replica_id = -1;
        req->isolation_level = 0; /* read_uncommitted: the high watermark */
        req->topics = rts;
        req->timeout_ms = CONSOLE_REMOTE_TIMEOUT_MS;
        q->broker = id;
        q->timestamp = TS_LATEST;
        if (console_gather_send(g, id, PROTO_API_LIST_OFFSETS, 2, 7, req, ov_offsets, q) != 0)
            console_unavailable_add(&s->unavail, id);
    }
    console_gather_then(g, ov_answer);
}

/* ---- one topic ---- */

struct tp_part {
    int32_t leader;
    int32_t nreplicas;
    int32_t replicas[CLUSTER_REPLICAS_MAX];
    int64_t sizes[CLUSTER_REPLICAS_MAX]; /* per replica, -1 unknown */
    int64_t log_start, hw, log_end;      /* -1 unknown */
};

struct tp_state {
    const char *name;
    int32_t np;
    struct tp_part *parts;
    struct console_unavailable unavail;
};

static void tp_sizes(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct tp_state *s = g->state;
    const struct sent *q = arg;
    const struct describe_log_dirs_response *r = resp->body;
    if (resp->error != KERR_NONE || r == NULL || r->error_code != KERR_NONE) {
        console_unavailable_add(&s->unavail, q->broker);
        return;
    }
    for (int32_t d = 0; d < r->n_results; d++) {
        const struct describe_log_dirs_response_describe_log_dirs_result *res = &r->results[d];
        if (res->error_code != KERR_NONE) {
            console_unavailable_add(&s->unavail, q->broker);
            continue;
        }
        for (int32_t i = 0; i < res->n_topics; i++) {
            if (!kstr_is(res->topics[i].name, s->name))
                continue;
            for (int32_t k = 0; k < res->topics[i].n_partitions; k++) {
                const struct describe_log_dirs_response_describe_log_dirs_partition *rp =
                    &res->topics[i].partitions[k];
                if (rp->is_future_key || rp->partition_index < 0 || rp->partition_index >= s->np)
                    continue;
                struct tp_part *tp = &s->parts[rp->partition_index];
                for (int32_t j = 0; j < tp->nreplicas; j++)
                    if (tp->replicas[j] == q->broker)
                        tp->sizes[j] = rp->partition_size;
            }
        }
    }
}

static void tp_offsets(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct tp_state *s = g->state;
    const struct sent *q = arg;
    const struct list_offsets_response *r = resp->body;
    if (resp->error != KERR_NONE || r == NULL) {
        console_unavailable_add(&s->unavail, q->broker);
        return;
    }
    for (int32_t i = 0; i < r->n_topics; i++) {
        if (!kstr_is(r->topics[i].name, s->name))
            continue;
        for (int32_t k = 0; k < r->topics[i].n_partitions; k++) {
            const struct list_offsets_response_list_offsets_partition_response *p =
                &r->topics[i].partitions[k];
            int32_t pi = p->partition_index;
            if (p->error_code != KERR_NONE || pi < 0 || pi >= s->np || s->parts[pi].leader != q->broker)
                continue;
            if (q->timestamp == TS_EARLIEST)
                s->parts[pi].log_start = p->offset;
            else /* a client's latest is the high watermark: the log end it can read to */
                s->parts[pi].hw = s->parts[pi].log_end = p->offset;
        }
    }
}

static void tp_answer(struct console_gather *g)
{
    struct tp_state *s = g->state;
    struct console_ctx *cx = &g->cx;
    struct broker *b = cx->b;
    const struct cluster_topic *ct = shown_topic(b, s->name);
    if (ct == NULL) {
        console_gather_error(g, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no such topic");
        return;
    }
    struct topic *t = topic_find(b, s->name);
    if (t != NULL && t->creating > 0)
        t = NULL;
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_kstr(&w, "name", ct->name);
    jsonw_kbool(&w, "internal", topic_name_is_internal(ct->name));
    char id[40];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0, k = 0; i < 16; i++) {
        id[k++] = hex[ct->id[i] >> 4];
        id[k++] = hex[ct->id[i] & 15];
        id[k] = '\0';
    }
    jsonw_kstr(&w, "topic_id", id);
    /* ZooKeeper's /config/topics/<t> as describe_configs.c answers it, else this broker's
     * replica's overrides. */
    struct topic_config_kv *zk = NULL;
    int nzk = 0;
    if (ct->config_known &&
        topic_configs_parse(ct->name, ct->config, (size_t)ct->config_len, &zk, &nzk) == 0)
        console_topic_configs(cx, &w, ct->name, zk, nzk);
    else if (t != NULL)
        console_topic_configs(cx, &w, ct->name, t->overrides, t->noverrides);
    else
        console_topic_configs(cx, &w, ct->name, NULL, 0);
    free(zk);
    jsonw_key(&w, "partitions");
    jsonw_arr(&w);
    bool hw_known = true;
    int64_t hw_sum = 0;
    for (int32_t i = 0; i < ct->npartitions; i++) {
        const struct cluster_partition *cp = &ct->parts[i];
        const struct tp_part *tp = i < s->np ? &s->parts[i] : NULL;
        jsonw_obj(&w);
        jsonw_ki64(&w, "partition", i);
        jsonw_ki64(&w, "leader", cp->leader);
        console_write_ids(&w, "replicas", cp->replicas, cp->nreplicas);
        console_write_ids(&w, "isr", cp->isr, cp->nisr);
        jsonw_ki64_known(&w, "log_start", tp != NULL ? tp->log_start : -1);
        jsonw_ki64_known(&w, "high_watermark", tp != NULL ? tp->hw : -1);
        jsonw_ki64_known(&w, "log_end", tp != NULL ? tp->log_end : -1);
        int64_t leader_size = -1;
        for (int32_t k = 0; tp != NULL && k < tp->nreplicas; k++)
            if (tp->replicas[k] == tp->leader)
                leader_size = tp->sizes[k];
        jsonw_ki64_known(&w, "size_bytes", leader_size);
        jsonw_key(&w, "replica_sizes");
        jsonw_arr(&w);
        for (int32_t k = 0; tp != NULL && k < tp->nreplicas; k++) {
            jsonw_obj(&w);
            jsonw_ki64(&w, "broker", tp->replicas[k]);
            jsonw_ki64_known(&w, "size_bytes", tp->sizes[k]);
            jsonw_obj_end(&w);
        }
        jsonw_arr_end(&w);
        jsonw_obj_end(&w);
        if (tp != NULL && tp->hw >= 0)
            hw_sum += tp->hw;
        else
            hw_known = false;
    }
    jsonw_arr_end(&w);
    struct topic_traffic tt = {0};
    if (t != NULL)
        metrics_topic_traffic(b, t, &tt);
    /* the sum of the high watermarks, as the overview's */
    jsonw_ki64_known(&w, "messages_in", hw_known ? hw_sum : -1);
    jsonw_ki64(&w, "bytes_in", (int64_t)tt.bytes_in);
    jsonw_ki64(&w, "bytes_out", (int64_t)tt.bytes_out);
    console_unavailable_write(&w, &s->unavail);
    jsonw_ki64(&w, "time_ms", now_ms());
    jsonw_obj_end(&w);
    console_gather_reply(g, 200, &w);
}

/* One ListOffsets to leader id for every partition of s it leads, at timestamp ts. */
static void tp_send_offsets(struct console_gather *g, int32_t id, int64_t ts)
{
    struct tp_state *s = g->state;
    int32_t np = 0;
    for (int32_t p = 0; p < s->np; p++)
        np += s->parts[p].leader == id;
    struct list_offsets_request *req = arena_alloc(&g->arena, sizeof(*req));
    struct list_offsets_request_list_offsets_topic *rt = arena_alloc(&g->arena, sizeof(*rt));
    struct sent *q = arena_alloc(&g->arena, sizeof(*q));
    if (req == NULL || rt == NULL || q == NULL ||
        (rt->partitions = arena_alloc(&g->arena, sizeof(*rt->partitions) * (size_t)np)) == NULL) {
        console_unavailable_add(&s->unavail, id);
        return;
    }
    rt->name = (struct kstr){.ptr = (char *)s->name, .len = (int32_t)strlen(s->name)};
    for (int32_t p = 0; p < s->np; p++)
        if (s->parts[p].leader == id)
            rt->partitions[rt->n_partitions++] = (struct list_offsets_request_list_offsets_partition){
                .partition_index = p, .current_leader_epoch = -1, .timestamp = ts,
                .max_num_offsets = 1};
    req->replica_id = -1;
    req->isolation_level = 0;
    req->topics = rt;
    req->n_topics = 1;
    req->timeout_ms = CONSOLE_REMOTE_TIMEOUT_MS;
    *q = (struct sent){.broker = id, .timestamp = ts};
    if (console_gather_send(g, id, PROTO_API_LIST_OFFSETS, 2, 7, req, tp_offsets, q) != 0)
        console_unavailable_add(&s->unavail, id);
}

/* One DescribeLogDirs to broker id for the partitions of s it holds a replica of. */
static void tp_send_sizes(struct console_gather *g, int32_t id)
{
    struct tp_state *s = g->state;
    int32_t np = 0;
    for (int32_t p = 0; p < s->np; p++)
        for (int32_t k = 0; k < s->parts[p].nreplicas; k++)
            np += s->parts[p].replicas[k] == id;
    struct describe_log_dirs_request *req = arena_alloc(&g->arena, sizeof(*req));
    struct describe_log_dirs_request_describable_log_dir_topic *rt = arena_alloc(&g->arena, sizeof(*rt));
    struct sent *q = arena_alloc(&g->arena, sizeof(*q));
    if (req == NULL || rt == NULL || q == NULL ||
        (rt->partitions = arena_alloc(&g->arena, sizeof(*rt->partitions) * (size_t)np)) == NULL) {
        console_unavailable_add(&s->unavail, id);
        return;
    }
    rt->topic = (struct kstr){.ptr = (char *)s->name, .len = (int32_t)strlen(s->name)};
    for (int32_t p = 0; p < s->np; p++)
        for (int32_t k = 0; k < s->parts[p].nreplicas; k++)
            if (s->parts[p].replicas[k] == id)
                rt->partitions[rt->n_partitions++] = p;
    req->topics = rt;
    req->n_topics = 1;
    *q = (struct sent){.broker = id};
    if (console_gather_send(g, id, PROTO_API_DESCRIBE_LOG_DIRS, 1, 4, req, tp_sizes, q) != 0)
        console_unavailable_add(&s->unavail, id);
}

void console_topic_cluster(struct console_ctx *cx, const struct console_topic_ref *ref)
{
    struct broker *b = cx->b;
    const struct cluster_topic *ct = ref->ct;
    struct console_gather *g = console_gather_new(cx, sizeof(struct tp_state));
    if (g == NULL)
        return;
    struct tp_state *s = g->state;
    s->name = console_gather_strdup(g, ct->name, strlen(ct->name));
    s->np = ct->npartitions;
    s->parts = arena_alloc(&g->arena, sizeof(*s->parts) * (size_t)s->np);
    if (s->name == NULL || s->parts == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    int32_t self = b->cfg.node_id;
    int32_t leaders[LEADERS_MAX], holders[LEADERS_MAX];
    int nleaders = 0, nholders = 0;
    for (int32_t p = 0; p < s->np; p++) {
        const struct cluster_partition *cp = &ct->parts[p];
        struct tp_part *tp = &s->parts[p];
        tp->leader = cp->leader;
        tp->nreplicas = cp->nreplicas;
        tp->log_start = tp->hw = tp->log_end = -1;
        struct partition *lp = local_partition(b, ct->name, p);
        for (int32_t k = 0; k < cp->nreplicas; k++) {
            tp->replicas[k] = cp->replicas[k];
            tp->sizes[k] = -1;
            if (cp->replicas[k] == self && lp != NULL)
                tp->sizes[k] = partition_size_bytes(lp);
            else if (cp->replicas[k] != self)
                set_add(holders, &nholders, cp->replicas[k]);
        }
        if (tp->leader == self && lp != NULL) { /* led here: this broker's own values */
            tp->log_start = partition_log_start(lp);
            tp->hw = partition_high_watermark(lp);
            tp->log_end = partition_log_end(lp);
        } else if (tp->leader >= 0 && tp->leader != self) {
            set_add(leaders, &nleaders, tp->leader);
        }
    }
    for (int i = 0; i < nleaders; i++) {
        tp_send_offsets(g, leaders[i], TS_EARLIEST);
        tp_send_offsets(g, leaders[i], TS_LATEST);
    }
    for (int i = 0; i < nholders; i++)
        tp_send_sizes(g, holders[i]);
    console_gather_then(g, tp_answer);
}
