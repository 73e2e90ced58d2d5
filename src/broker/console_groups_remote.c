/* console_groups_remote: the console's groups on a ZooKeeper cluster (docs/CONSOLE.md), asked
 * over the Kafka protocol as Kafka's admin client asks (console_remote.h): every group from a
 * ListGroups to each live broker; a group's state and members from DescribeGroups and, for a
 * KIP-848 consumer group, ConsumerGroupDescribe, and its committed offsets from OffsetFetch, at
 * its coordinator; the partitions' end offsets from a ListOffsets to each leader (lag = end -
 * committed, end being the high watermark, as kafka-consumer-groups.sh counts it); a reset
 * commits with an OffsetCommit of generation -1 at the coordinator, as
 * kafka-consumer-groups.sh --reset-offsets does. What does not answer in time is named in the
 * answer ("unavailable_brokers", lag null), never waited for longer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/broker.h"
#include "broker/console_api.h"
#include "broker/console_remote.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "common/jsonw.h"
#include "common/util.h"
#include "net/http.h"
#include "proto/messages.h"

#define RG_PARTS_MAX 100000   /* partitions one call asks end offsets of */
#define RG_MEMBERS_MAX 10000  /* members of one group shown */

struct rg_assign {
    char *topic;
    int32_t *parts;
    int32_t nparts;
};

struct rg_member {
    char *member_id, *client_id, *host;
    struct kbytes assignment;   /* classic: ConsumerProtocol's Assignment (in the arena) */
    struct rg_assign *assigned; /* consumer (KIP-848): its current assignment */
    int32_t nassigned;
};

struct rg_off {
    char *topic;
    int32_t partition;
    int64_t committed;
    char *metadata;
    int32_t mlen;
    int64_t end;                /* from the leader; -1 unknown */
};

struct rg_group {
    char *id, *protocol_type, *state, *type, *protocol;
    int32_t coordinator;
    bool classic_found;         /* DescribeGroups knew it */
    bool consumer;              /* ConsumerGroupDescribe described it (a KIP-848 group) */
    int32_t members;            /* -1: not known */
    struct rg_member *mv;
    int32_t nm;
    struct rg_off *offs;
    int32_t noffs;
    bool offsets_known;
};

/* A partition whose end offset is asked; sorted by (topic, partition), unique. */
struct rg_tp {
    const char *topic;
    int32_t partition;
    int64_t end;                /* ListOffsets latest (the high watermark) */
    int64_t start;              /* earliest (a reset to earliest) */
    int64_t at_ts;              /* the first offset at or after the reset's timestamp */
    int16_t error;              /* the leader's, or why none was asked */
};

enum rg_mode { RG_LIST, RG_ONE, RG_RESET };

struct rg_state {
    enum rg_mode mode;
    struct rg_group *groups;
    int32_t ngroups, cap;
    struct console_unavailable unavail;
    struct rg_tp *tps;
    int32_t ntps;
    struct console_reset_args ra;
    int16_t commit_error;       /* the reset's OffsetCommit as a whole */
};

static void note_unavailable(struct rg_state *st, int32_t broker)
{
    console_unavailable_add(&st->unavail, broker);
}

static char *dup_kstr(struct console_gather *g, struct kstr s)
{
    return console_gather_strdup(g, s.ptr, s.ptr != NULL && s.len > 0 ? (size_t)s.len : 0);
}

static int group_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rg_group *)a)->id, ((const struct rg_group *)b)->id);
}

static struct rg_group *find_group(struct rg_state *st, struct kstr id)
{
    char key[CONSOLE_NAME_MAX];
    if (id.ptr == NULL || id.len < 0 || (size_t)id.len >= sizeof(key))
        return NULL;
    memcpy(key, id.ptr, (size_t)id.len);
    key[id.len] = '\0';
    struct rg_group probe = {.id = key};
    return bsearch(&probe, st->groups, (size_t)st->ngroups, sizeof(*st->groups), group_cmp);
}

static int tp_cmp(const void *a, const void *b)
{
    const struct rg_tp *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static struct rg_tp *find_tp(struct rg_state *st, const char *topic, int32_t partition)
{
    struct rg_tp probe = {.topic = topic, .partition = partition};
    return bsearch(&probe, st->tps, (size_t)st->ntps, sizeof(*st->tps), tp_cmp);
}

/* ---- end offsets: one ListOffsets to each leader ---- */

struct lo_call {
    struct rg_state *st;
    int32_t leader;
    int64_t ts;                 /* -1 latest, -2 earliest, else a timestamp */
};

static void lo_answered(struct console_gather *g, void *arg, const struct client_response *resp)
{
    (void)g;
    struct lo_call *c = arg;
    if (resp->error != KERR_NONE) {
        note_unavailable(c->st, c->leader); /* its partitions keep REQUEST_TIMED_OUT */
        return;
    }
    const struct list_offsets_response *r = resp->body;
    for (int32_t i = 0; i < r->n_topics; i++) {
        const struct list_offsets_response_list_offsets_topic_response *t = &r->topics[i];
        char name[TOPIC_NAME_MAX + 1];
        if (t->name.ptr == NULL || t->name.len < 0 || t->name.len > TOPIC_NAME_MAX)
            continue;
        memcpy(name, t->name.ptr, (size_t)t->name.len);
        name[t->name.len] = '\0';
        for (int32_t k = 0; k < t->n_partitions; k++) {
            const struct list_offsets_response_list_offsets_partition_response *p = &t->partitions[k];
            struct rg_tp *tp = find_tp(c->st, name, p->partition_index);
            if (tp == NULL)
                continue;
            tp->error = p->error_code;
            if (p->error_code != KERR_NONE)
                continue;
            if (c->ts == -1)
                tp->end = p->offset;
            else if (c->ts == -2)
                tp->start = p->offset;
            else
                tp->at_ts = p->offset;
        }
    }
}

/* Sends the ListOffsets of every partition in st->tps for ts, one per leader. */
static void lo_send(struct console_gather *g, struct rg_state *st, int64_t ts)
{
    struct broker *b = g->cx.b;
    int32_t *leader = arena_alloc(&g->arena, sizeof(int32_t) * ((size_t)st->ntps + 1));
    bool *done = arena_alloc(&g->arena, (size_t)st->ntps + 1);
    if (leader == NULL || done == NULL)
        return;
    for (int32_t i = 0; i < st->ntps; i++) {
        leader[i] = console_partition_leader(b, st->tps[i].topic, st->tps[i].partition);
        st->tps[i].error = leader[i] < 0 ? KERR_LEADER_NOT_AVAILABLE : KERR_REQUEST_TIMED_OUT;
        done[i] = leader[i] < 0;
    }
    for (int32_t i = 0; i < st->ntps; i++) {
        if (done[i])
            continue;
        int32_t to = leader[i];
        /* This leader's partitions: st->tps is sorted by topic, so each topic's run is one. */
        int32_t nparts = 0, ntopics = 0;
        for (int32_t k = i; k < st->ntps; k++)
            if (!done[k] && leader[k] == to) {
                nparts++;
                ntopics += k == i || strcmp(st->tps[k].topic, st->tps[k - 1].topic) != 0 ||
                           leader[k - 1] != to;
            }
        struct list_offsets_request *req = arena_alloc(&g->arena, sizeof(*req));
        struct list_offsets_request_list_offsets_topic *topics =
            arena_alloc(&g->arena, sizeof(*topics) * (size_t)ntopics);
        struct list_offsets_request_list_offsets_partition *parts =
            arena_alloc(&g->arena, sizeof(*parts) * (size_t)nparts);
        struct lo_call *c = arena_alloc(&g->arena, sizeof(*c));
        if (req == NULL || topics == NULL || parts == NULL || c == NULL)
            return;
        int32_t nt = -1, np = 0;
        const char *prev = NULL;
        for (int32_t k = i; k < st->ntps; k++) {
            if (done[k] || leader[k] != to)
                continue;
            done[k] = true;
            if (prev == NULL || strcmp(prev, st->tps[k].topic) != 0) {
                nt++;
                topics[nt] = (struct list_offsets_request_list_offsets_topic){
                    .name = kstr_of(st->tps[k].topic), .partitions = &parts[np]};
                prev = st->tps[k].topic;
            }
            parts[np++] = (struct list_offsets_request_list_offsets_partition){
                .partition_index = st->tps[k].partition, .current_leader_epoch = -1,
                .timestamp = ts, .max_num_offsets = 1};
            topics[nt].n_partitions++;
        }
        *req = (struct list_offsets_request){.replica_id = -1, .isolation_level = 0,
                                             .topics = topics, .n_topics = nt + 1};
        *c = (struct lo_call){.st = st, .leader = to, .ts = ts};
        if (console_gather_send(g, to, PROTO_API_LIST_OFFSETS, 1, -1, req, lo_answered, c) != 0)
            note_unavailable(st, to);
    }
}

/* st->tps from every visible offset of the groups (a bounded, sorted, unique set). */
static void collect_tps(struct console_gather *g, struct rg_state *st)
{
    int32_t n = 0;
    for (int32_t i = 0; i < st->ngroups; i++)
        n += st->groups[i].noffs;
    if (n > RG_PARTS_MAX)
        n = RG_PARTS_MAX;
    st->tps = arena_alloc(&g->arena, sizeof(*st->tps) * ((size_t)n + 1));
    if (st->tps == NULL)
        return;
    int32_t k = 0;
    for (int32_t i = 0; i < st->ngroups; i++)
        for (int32_t j = 0; j < st->groups[i].noffs && k < n; j++) {
            const struct rg_off *o = &st->groups[i].offs[j];
            if (o->committed >= 0 && console_visible(&g->cx, ACL_RES_TOPIC, o->topic))
                st->tps[k++] = (struct rg_tp){.topic = o->topic, .partition = o->partition,
                                              .end = -1, .start = -1, .at_ts = -1};
        }
    qsort(st->tps, (size_t)k, sizeof(*st->tps), tp_cmp);
    int32_t u = 0;
    for (int32_t i = 0; i < k; i++)
        if (u == 0 || tp_cmp(&st->tps[u - 1], &st->tps[i]) != 0)
            st->tps[u++] = st->tps[i];
    st->ntps = u;
}

/* ---- the coordinators: DescribeGroups, ConsumerGroupDescribe, OffsetFetch ---- */

static void listed(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct rg_state *st = g->state;
    int32_t from = (int32_t)(intptr_t)arg;
    if (resp->error != KERR_NONE) {
        note_unavailable(st, from);
        return;
    }
    const struct list_groups_response *r = resp->body;
    if (r->error_code != KERR_NONE)
        note_unavailable(st, from); /* COORDINATOR_LOAD_IN_PROGRESS: some may be missing */
    for (int32_t i = 0; i < r->n_groups && st->ngroups < st->cap; i++) {
        const struct list_groups_response_listed_group *lg = &r->groups[i];
        struct rg_group *gr = &st->groups[st->ngroups];
        *gr = (struct rg_group){.id = dup_kstr(g, lg->group_id),
                                .protocol_type = dup_kstr(g, lg->protocol_type),
                                .state = dup_kstr(g, lg->group_state),
                                .type = dup_kstr(g, lg->group_type), .protocol = NULL,
                                .coordinator = from, .members = -1};
        if (gr->id == NULL || gr->protocol_type == NULL || gr->state == NULL || gr->type == NULL)
            return;
        if (console_visible(&g->cx, ACL_RES_GROUP, gr->id))
            st->ngroups++;
    }
}

/* A coordinator's answer: the state, or NULL when it failed (the coordinator, arg, noted). */
static struct rg_state *coordinator_answer(struct console_gather *g, void *arg,
                                           const struct client_response *resp)
{
    struct rg_state *st = g->state;
    if (resp->error == KERR_NONE)
        return st;
    note_unavailable(st, (int32_t)(intptr_t)arg);
    return NULL;
}

static void described(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct rg_state *st = coordinator_answer(g, arg, resp);
    if (st == NULL)
        return;
    const struct describe_groups_response *r = resp->body;
    for (int32_t i = 0; i < r->n_groups; i++) {
        const struct describe_groups_response_described_group *d = &r->groups[i];
        struct rg_group *gr = find_group(st, d->group_id);
        if (gr == NULL || d->error_code != KERR_NONE || gr->consumer)
            continue;
        gr->classic_found = true;
        gr->state = dup_kstr(g, d->group_state);
        gr->protocol_type = dup_kstr(g, d->protocol_type);
        gr->protocol = dup_kstr(g, d->protocol_data);
        gr->members = d->n_members;
        if (st->mode == RG_LIST)
            continue;
        int32_t n = d->n_members < RG_MEMBERS_MAX ? d->n_members : RG_MEMBERS_MAX;
        gr->mv = arena_alloc(&g->arena, sizeof(*gr->mv) * ((size_t)n + 1));
        if (gr->mv == NULL)
            continue;
        for (int32_t k = 0; k < n; k++) {
            const struct describe_groups_response_described_group_member *m = &d->members[k];
            struct rg_member *rm = &gr->mv[gr->nm++];
            rm->member_id = dup_kstr(g, m->member_id);
            rm->client_id = dup_kstr(g, m->client_id);
            rm->host = dup_kstr(g, m->client_host);
            int32_t alen = m->member_assignment.ptr != NULL ? m->member_assignment.len : 0;
            uint8_t *copy = alen > 0 ? arena_alloc(&g->arena, (size_t)alen) : NULL;
            if (copy != NULL)
                memcpy(copy, m->member_assignment.ptr, (size_t)alen);
            rm->assignment = (struct kbytes){copy, copy != NULL ? alen : 0};
        }
    }
}

static void cg_described(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct rg_state *st = coordinator_answer(g, arg, resp);
    if (st == NULL)
        return;
    const struct consumer_group_describe_response *r = resp->body;
    for (int32_t i = 0; i < r->n_groups; i++) {
        const struct consumer_group_describe_response_described_group *d = &r->groups[i];
        struct rg_group *gr = find_group(st, d->group_id);
        if (gr == NULL || d->error_code != KERR_NONE)
            continue;
        gr->consumer = true;
        gr->classic_found = false;
        gr->state = dup_kstr(g, d->group_state);
        gr->protocol_type = console_gather_strdup(g, "consumer", 8);
        gr->protocol = dup_kstr(g, d->assignor_name);
        gr->members = d->n_members;
        gr->nm = 0;
        if (st->mode == RG_LIST)
            continue;
        int32_t n = d->n_members < RG_MEMBERS_MAX ? d->n_members : RG_MEMBERS_MAX;
        gr->mv = arena_alloc(&g->arena, sizeof(*gr->mv) * ((size_t)n + 1));
        if (gr->mv == NULL)
            continue;
        for (int32_t k = 0; k < n; k++) {
            const struct consumer_group_describe_response_member *m = &d->members[k];
            struct rg_member *rm = &gr->mv[gr->nm++];
            *rm = (struct rg_member){.member_id = dup_kstr(g, m->member_id),
                                     .client_id = dup_kstr(g, m->client_id),
                                     .host = dup_kstr(g, m->client_host)};
            const struct consumer_group_describe_response_assignment *a = &m->assignment;
            rm->assigned = arena_alloc(&g->arena, sizeof(*rm->assigned) * ((size_t)a->n_topic_partitions + 1));
            for (int32_t t = 0; rm->assigned != NULL && t < a->n_topic_partitions; t++) {
                const struct consumer_group_describe_response_topic_partitions *tp = &a->topic_partitions[t];
                struct rg_assign *ra = &rm->assigned[rm->nassigned++];
                ra->topic = dup_kstr(g, tp->topic_name);
                ra->parts = arena_alloc(&g->arena, sizeof(int32_t) * ((size_t)tp->n_partitions + 1));
                if (ra->parts != NULL) {
                    memcpy(ra->parts, tp->partitions, sizeof(int32_t) * (size_t)tp->n_partitions);
                    ra->nparts = tp->n_partitions;
                }
            }
        }
    }
}

static void offsets_fetched(struct console_gather *g, void *arg, const struct client_response *resp)
{
    struct rg_state *st = coordinator_answer(g, arg, resp);
    if (st == NULL)
        return;
    const struct offset_fetch_response *r = resp->body;
    for (int32_t i = 0; i < r->n_groups; i++) {
        const struct offset_fetch_response_offset_fetch_response_group *og = &r->groups[i];
        struct rg_group *gr = find_group(st, og->group_id);
        if (gr == NULL || og->error_code != KERR_NONE)
            continue;
        int32_t n = 0;
        for (int32_t t = 0; t < og->n_topics; t++)
            n += og->topics[t].n_partitions;
        gr->offs = arena_alloc(&g->arena, sizeof(*gr->offs) * ((size_t)n + 1));
        if (gr->offs == NULL)
            continue;
        gr->offsets_known = true;
        for (int32_t t = 0; t < og->n_topics; t++) {
            const struct offset_fetch_response_offset_fetch_response_topics *ot = &og->topics[t];
            char *topic = dup_kstr(g, ot->name);
            for (int32_t k = 0; topic != NULL && k < ot->n_partitions; k++) {
                const struct offset_fetch_response_offset_fetch_response_partitions *p = &ot->partitions[k];
                if (p->error_code != KERR_NONE || p->committed_offset < 0)
                    continue;
                gr->offs[gr->noffs++] = (struct rg_off){
                    .topic = topic, .partition = p->partition_index,
                    .committed = p->committed_offset, .metadata = dup_kstr(g, p->metadata),
                    .mlen = p->metadata.ptr != NULL && p->metadata.len > 0 ? p->metadata.len : 0,
                    .end = -1};
            }
        }
    }
}

/* The questions about the groups coordinator coordinates, to it. */
static void describe_send(struct console_gather *g, struct rg_state *st, int32_t coordinator)
{
    int32_t n = 0, nc = 0;
    for (int32_t i = 0; i < st->ngroups; i++)
        if (st->groups[i].coordinator == coordinator) {
            n++;
            nc += strcmp(st->groups[i].type, "consumer") == 0 || st->mode != RG_LIST;
        }
    if (n == 0)
        return;
    struct kstr *ids = arena_alloc(&g->arena, sizeof(*ids) * (size_t)n);
    struct kstr *cids = arena_alloc(&g->arena, sizeof(*cids) * ((size_t)nc + 1));
    struct offset_fetch_request_offset_fetch_request_group *ofg =
        arena_alloc(&g->arena, sizeof(*ofg) * (size_t)n);
    struct describe_groups_request *dg = arena_alloc(&g->arena, sizeof(*dg));
    struct consumer_group_describe_request *cg = arena_alloc(&g->arena, sizeof(*cg));
    struct offset_fetch_request *of = arena_alloc(&g->arena, sizeof(*of));
    if (ids == NULL || cids == NULL || ofg == NULL || dg == NULL || cg == NULL || of == NULL)
        return;
    int32_t k = 0, kc = 0;
    for (int32_t i = 0; i < st->ngroups; i++) {
        struct rg_group *gr = &st->groups[i];
        if (gr->coordinator != coordinator)
            continue;
        ids[k] = kstr_of(gr->id);
        if (strcmp(gr->type, "consumer") == 0 || st->mode != RG_LIST)
            cids[kc++] = ids[k];
        ofg[k] = (struct offset_fetch_request_offset_fetch_request_group){
            .group_id = ids[k], .member_id = kstr_null(), .member_epoch = -1, .topics = NULL,
            .n_topics = -1};
        k++;
    }
    *dg = (struct describe_groups_request){.groups = ids, .n_groups = n};
    *cg = (struct consumer_group_describe_request){.group_ids = cids, .n_group_ids = nc};
    *of = (struct offset_fetch_request){.group_id = kstr_of(""), .groups = ofg, .n_groups = n};
    void *arg = (void *)(intptr_t)coordinator;
    bool sent = console_gather_send(g, coordinator, PROTO_API_DESCRIBE_GROUPS, 0, -1, dg,
                                    described, arg) == 0;
    if (nc > 0)
        sent &= console_gather_send(g, coordinator, PROTO_API_CONSUMER_GROUP_DESCRIBE, 0, -1,
                                    cg, cg_described, arg) == 0;
    sent &= console_gather_send(g, coordinator, PROTO_API_OFFSET_FETCH, 8, -1, of,
                                offsets_fetched, arg) == 0;
    if (!sent)
        note_unavailable(st, coordinator);
}

static void describe_all(struct console_gather *g, struct rg_state *st)
{
    qsort(st->groups, (size_t)st->ngroups, sizeof(*st->groups), group_cmp);
    int32_t u = 0; /* a group listed twice (its coordinator moved between answers): once */
    for (int32_t i = 0; i < st->ngroups; i++)
        if (u == 0 || strcmp(st->groups[u - 1].id, st->groups[i].id) != 0)
            st->groups[u++] = st->groups[i];
    st->ngroups = u;
    int32_t seen[CLUSTER_BROKERS_MAX];
    int nseen = 0;
    for (int32_t i = 0; i < st->ngroups; i++) {
        int32_t c = st->groups[i].coordinator;
        bool dup = false;
        for (int k = 0; k < nseen && !dup; k++)
            dup = seen[k] == c;
        if (dup || nseen >= CLUSTER_BROKERS_MAX)
            continue;
        seen[nseen++] = c;
        describe_send(g, st, c);
    }
}

/* ---- answers ---- */

/* The group's offsets rows (w NULL: none written) and its total lag: -1 when no end offset
 * of its partitions is known, else the sum of the known ones. */
static int64_t write_rg_offsets(struct console_gather *g, struct rg_state *st, struct jsonw *w,
                                const struct rg_group *gr)
{
    int64_t total = 0;
    bool known = gr->noffs == 0 && gr->offsets_known;
    if (w != NULL) {
        jsonw_key(w, "offsets");
        jsonw_arr(w);
    }
    for (int32_t i = 0; i < gr->noffs; i++) {
        const struct rg_off *o = &gr->offs[i];
        if (!console_visible(&g->cx, ACL_RES_TOPIC, o->topic))
            continue;
        const struct rg_tp *tp = find_tp(st, o->topic, o->partition);
        int64_t end = tp != NULL && tp->error == KERR_NONE ? tp->end : -1;
        if (end >= 0) {
            known = true;
            total += end > o->committed ? end - o->committed : 0;
        }
        if (w != NULL)
            console_write_offset_row(w, o->topic, o->partition, o->committed, end, o->metadata,
                                     o->mlen);
    }
    if (w != NULL)
        jsonw_arr_end(w);
    return known ? total : -1;
}

static void list_answer(struct console_gather *g)
{
    struct rg_state *st = g->state;
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_key(&w, "groups");
    jsonw_arr(&w);
    for (int32_t i = 0; i < st->ngroups; i++) {
        const struct rg_group *gr = &st->groups[i];
        jsonw_obj(&w);
        jsonw_kstr(&w, "group_id", gr->id);
        jsonw_kstr(&w, "protocol_type", gr->protocol_type);
        jsonw_kstr(&w, "state", gr->state);
        jsonw_kstr(&w, "type", gr->type);
        jsonw_ki64(&w, "coordinator", gr->coordinator);
        jsonw_ki64_known(&w, "members", gr->members);
        jsonw_ki64_known(&w, "total_lag", write_rg_offsets(g, st, NULL, gr));
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    console_unavailable_write(&w, &st->unavail);
    jsonw_obj_end(&w);
    console_gather_reply(g, 200, &w);
}

static void one_answer(struct console_gather *g)
{
    struct rg_state *st = g->state;
    struct rg_group *gr = &st->groups[0];
    if (st->unavail.n > 0 && !gr->offsets_known) {
        console_gather_error(g, 503, "COORDINATOR_NOT_AVAILABLE",
                             "the group's coordinator did not answer");
        return;
    }
    if (!gr->classic_found && !gr->consumer && gr->noffs == 0) {
        console_gather_error(g, 404, "GROUP_ID_NOT_FOUND", "no such group");
        return;
    }
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_kstr(&w, "group_id", gr->id);
    bool classic = !gr->consumer;
    jsonw_kstr(&w, "state", gr->consumer || gr->classic_found ? gr->state : "Empty");
    jsonw_kstr(&w, "protocol_type", gr->classic_found || gr->consumer ? gr->protocol_type : "");
    jsonw_kstr(&w, "protocol", gr->protocol != NULL ? gr->protocol : "");
    jsonw_kstr(&w, "type", classic ? "classic" : "consumer");
    jsonw_ki64(&w, "coordinator", gr->coordinator);
    jsonw_key(&w, "members");
    jsonw_arr(&w);
    for (int32_t i = 0; i < gr->nm; i++) {
        const struct rg_member *m = &gr->mv[i];
        jsonw_obj(&w);
        jsonw_kstr(&w, "member_id", m->member_id);
        jsonw_kstr(&w, "client_id", m->client_id);
        jsonw_kstr(&w, "host", m->host);
        if (classic && strcmp(gr->protocol_type, "consumer") == 0)
            console_write_classic_assignment(&w, m->assignment.ptr, m->assignment.len);
        else {
            jsonw_key(&w, "assignments");
            jsonw_arr(&w);
            for (int32_t k = 0; k < m->nassigned; k++) {
                jsonw_obj(&w);
                jsonw_kstr(&w, "topic", m->assigned[k].topic);
                jsonw_key(&w, "partitions");
                jsonw_arr(&w);
                for (int32_t p = 0; p < m->assigned[k].nparts; p++)
                    jsonw_i64(&w, m->assigned[k].parts[p]);
                jsonw_arr_end(&w);
                jsonw_obj_end(&w);
            }
            jsonw_arr_end(&w);
        }
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    int64_t total = write_rg_offsets(g, st, &w, gr);
    jsonw_ki64(&w, "total_lag", total > 0 ? total : 0);
    console_unavailable_write(&w, &st->unavail);
    jsonw_ki64(&w, "time_ms", now_ms());
    jsonw_obj_end(&w);
    console_gather_reply(g, 200, &w);
}

/* ---- the steps ---- */

static void ends_step(struct console_gather *g)
{
    struct rg_state *st = g->state;
    collect_tps(g, st);
    lo_send(g, st, -1);
    console_gather_then(g, st->mode == RG_LIST ? list_answer : one_answer);
}

static void listed_step(struct console_gather *g)
{
    describe_all(g, g->state);
    console_gather_then(g, ends_step);
}

void console_groups_remote(struct console_ctx *cx)
{
    struct broker *b = cx->b;
    struct console_gather *g = console_gather_new(cx, sizeof(struct rg_state));
    if (g == NULL)
        return;
    struct rg_state *st = g->state;
    st->mode = RG_LIST;
    st->cap = CONSOLE_GROUPS_MAX;
    st->groups = arena_alloc(&g->arena, sizeof(*st->groups) * (size_t)st->cap);
    if (st->groups == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    static struct list_groups_request all; /* no filters: every group, any state and type */
    const struct cluster_broker *live;
    int n = cluster_brokers(b->cluster, &live);
    for (int i = 0; i < n; i++)
        if (console_gather_send(g, live[i].id, PROTO_API_LIST_GROUPS, 0, -1, &all, listed,
                                (void *)(intptr_t)live[i].id) != 0)
            note_unavailable(st, live[i].id);
    console_gather_then(g, listed_step);
}

/* One group, at its coordinator; NULL when answered (403, 503). */
static struct console_gather *one_group(struct console_ctx *cx, const char *group, int op,
                                        enum rg_mode mode)
{
    if (!console_allowed(cx, op, ACL_RES_GROUP, group)) {
        console_error(cx->req, 403, "GROUP_AUTHORIZATION_FAILED", "not authorized for the group");
        return NULL;
    }
    int32_t coordinator = console_group_coordinator(cx->b, group);
    if (coordinator < 0) {
        console_error(cx->req, 503, "COORDINATOR_NOT_AVAILABLE", "the group's coordinator is not known now");
        return NULL;
    }
    struct console_gather *g = console_gather_new(cx, sizeof(struct rg_state));
    if (g == NULL)
        return NULL;
    struct rg_state *st = g->state;
    st->mode = mode;
    st->cap = 1;
    st->groups = arena_alloc(&g->arena, sizeof(*st->groups));
    char *id = console_gather_strdup(g, group, strlen(group));
    if (st->groups == NULL || id == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return NULL;
    }
    st->groups[0] = (struct rg_group){.id = id, .protocol_type = "", .state = "Dead",
                                      .type = "", .coordinator = coordinator, .members = -1};
    st->ngroups = 1;
    describe_send(g, st, coordinator);
    return g;
}

void console_group_remote(struct console_ctx *cx, const char *group)
{
    struct console_gather *g = one_group(cx, group, ACL_OP_DESCRIBE, RG_ONE);
    if (g != NULL)
        console_gather_then(g, ends_step);
}

/* ---- reset ---- */

static void reset_answer(struct console_gather *g);

static void committed(struct console_gather *g, void *arg, const struct client_response *resp)
{
    (void)arg;
    struct rg_state *st = g->state;
    if (resp->error != KERR_NONE) {
        st->commit_error = (int16_t)resp->error;
        return;
    }
    const struct offset_commit_response *r = resp->body;
    for (int32_t i = 0; i < r->n_topics; i++) {
        char name[TOPIC_NAME_MAX + 1];
        const struct offset_commit_response_offset_commit_response_topic *t = &r->topics[i];
        if (t->name.ptr == NULL || t->name.len < 0 || t->name.len > TOPIC_NAME_MAX)
            continue;
        memcpy(name, t->name.ptr, (size_t)t->name.len);
        name[t->name.len] = '\0';
        for (int32_t k = 0; k < t->n_partitions; k++) {
            struct rg_tp *tp = find_tp(st, name, t->partitions[k].partition_index);
            if (tp != NULL)
                tp->error = t->partitions[k].error_code;
        }
    }
}

/* The offset a partition is reset to: -1 when its leader did not say. */
static int64_t reset_target(const struct rg_state *st, const struct rg_tp *tp)
{
    if (strcmp(st->ra.to, "earliest") == 0)
        return tp->start;
    if (strcmp(st->ra.to, "latest") == 0 || tp->at_ts < 0)
        return tp->end; /* no record at or after the timestamp: the end, as Kafka's tool */
    return tp->at_ts;
}

static void commit_step(struct console_gather *g)
{
    struct rg_state *st = g->state;
    struct rg_group *gr = &st->groups[0];
    int32_t n = 0, nt = 0;
    for (int32_t i = 0; i < st->ntps; i++) {
        struct rg_tp *tp = &st->tps[i];
        if (reset_target(st, tp) < 0) {
            if (tp->error == KERR_NONE)
                tp->error = KERR_REQUEST_TIMED_OUT;
            continue;
        }
        tp->error = KERR_NONE;
        n++;
        nt += i == 0 || strcmp(st->tps[i - 1].topic, tp->topic) != 0;
    }
    if (n == 0) {
        reset_answer(g);
        return;
    }
    struct offset_commit_request *req = arena_alloc(&g->arena, sizeof(*req));
    struct offset_commit_request_offset_commit_request_topic *topics =
        arena_alloc(&g->arena, sizeof(*topics) * (size_t)nt);
    struct offset_commit_request_offset_commit_request_partition *parts =
        arena_alloc(&g->arena, sizeof(*parts) * (size_t)n);
    if (req == NULL || topics == NULL || parts == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    int32_t t = -1, p = 0;
    const char *prev = NULL;
    for (int32_t i = 0; i < st->ntps; i++) {
        struct rg_tp *tp = &st->tps[i];
        int64_t off = reset_target(st, tp);
        if (off < 0)
            continue;
        if (prev == NULL || strcmp(prev, tp->topic) != 0) {
            topics[++t] = (struct offset_commit_request_offset_commit_request_topic){
                .name = kstr_of(tp->topic), .partitions = &parts[p]};
            prev = tp->topic;
        }
        parts[p++] = (struct offset_commit_request_offset_commit_request_partition){
            .partition_index = tp->partition, .committed_offset = off,
            .committed_leader_epoch = -1, .commit_timestamp = -1,
            .committed_metadata = kstr_of("")};
        topics[t].n_partitions++;
        tp->error = KERR_REQUEST_TIMED_OUT; /* until the coordinator answers */
    }
    *req = (struct offset_commit_request){.group_id = kstr_of(gr->id),
                                          .generation_id_or_member_epoch = -1,
                                          .member_id = kstr_of(""),
                                          .group_instance_id = kstr_null(),
                                          .retention_time_ms = -1, .topics = topics,
                                          .n_topics = t + 1};
    if (console_gather_send(g, gr->coordinator, PROTO_API_OFFSET_COMMIT, 2, 8, req, committed,
                            NULL) != 0)
        st->commit_error = KERR_COORDINATOR_NOT_AVAILABLE;
    console_gather_then(g, reset_answer);
}

static void reset_answer(struct console_gather *g)
{
    struct rg_state *st = g->state;
    if (st->commit_error != KERR_NONE) {
        console_gather_error(g, 503, kerr_name(st->commit_error),
                             "the group's coordinator did not take the offsets");
        return;
    }
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_key(&w, "offsets");
    jsonw_arr(&w);
    for (int32_t i = 0; i < st->ntps; i++) {
        const struct rg_tp *tp = &st->tps[i];
        jsonw_obj(&w);
        jsonw_kstr(&w, "topic", tp->topic);
        jsonw_ki64(&w, "partition", tp->partition);
        jsonw_ki64(&w, "offset", reset_target(st, tp));
        if (tp->error != KERR_NONE)
            jsonw_kstr(&w, "error", kerr_name(tp->error));
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    console_unavailable_write(&w, &st->unavail);
    jsonw_obj_end(&w);
    console_gather_reply(g, 200, &w);
}

/* The group described: only an empty one is reset; its partitions are the named topic's all
 * (in the cluster's view) or every one it has offsets of that the caller may read. */
static void reset_described(struct console_gather *g)
{
    struct rg_state *st = g->state;
    struct rg_group *gr = &st->groups[0];
    if (st->unavail.n > 0) {
        console_gather_error(g, 503, "COORDINATOR_NOT_AVAILABLE",
                             "the group's coordinator did not answer");
        return;
    }
    bool empty = gr->consumer ? gr->members == 0
                              : !gr->classic_found || strcmp(gr->state, "Empty") == 0 ||
                                    strcmp(gr->state, "Dead") == 0;
    if (!empty) {
        console_gather_error(g, 409, "NON_EMPTY_GROUP",
                             "the group has active members: stop them before resetting its offsets");
        return;
    }
    struct broker *b = g->cx.b;
    st->tps = arena_alloc(&g->arena, sizeof(*st->tps) * CONSOLE_RESET_MAX);
    if (st->tps == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    int32_t n = 0;
    if (st->ra.one_topic) {
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, st->ra.topic);
        char *name = console_gather_strdup(g, st->ra.topic, strlen(st->ra.topic));
        for (int32_t i = 0; ct != NULL && name != NULL && i < ct->npartitions && n < CONSOLE_RESET_MAX; i++)
            st->tps[n++] = (struct rg_tp){.topic = name, .partition = i, .end = -1, .start = -1,
                                          .at_ts = -1};
    } else {
        for (int32_t i = 0; i < gr->noffs && n < CONSOLE_RESET_MAX; i++) {
            const struct rg_off *o = &gr->offs[i];
            const struct cluster_topic *ct = cluster_topic_find(b->cluster, o->topic);
            if (ct == NULL || o->partition >= ct->npartitions ||
                !console_allowed(&g->cx, ACL_OP_READ, ACL_RES_TOPIC, o->topic))
                continue;
            st->tps[n++] = (struct rg_tp){.topic = o->topic, .partition = o->partition,
                                          .end = -1, .start = -1, .at_ts = -1};
        }
    }
    qsort(st->tps, (size_t)n, sizeof(*st->tps), tp_cmp);
    st->ntps = n;
    if (strcmp(st->ra.to, "earliest") == 0)
        lo_send(g, st, -2);
    else {
        lo_send(g, st, -1);
        if (strcmp(st->ra.to, "timestamp") == 0)
            lo_send(g, st, st->ra.ts);
    }
    console_gather_then(g, commit_step);
}

void console_group_reset_remote(struct console_ctx *cx, const char *group)
{
    struct console_reset_args ra;
    if (!console_allowed(cx, ACL_OP_READ, ACL_RES_GROUP, group)) {
        console_error(cx->req, 403, "GROUP_AUTHORIZATION_FAILED", "not authorized for the group");
        return;
    }
    if (!console_reset_args(cx, &ra))
        return;
    if (ra.one_topic) {
        struct console_topic_ref ref;
        if (!console_topic_ref(cx, ra.topic, ACL_OP_READ, &ref))
            return;
    }
    struct console_gather *g = one_group(cx, group, ACL_OP_READ, RG_RESET);
    if (g == NULL)
        return;
    ((struct rg_state *)g->state)->ra = ra;
    console_gather_then(g, reset_described);
}
