/* console_browse_remote: the console's record browser and produce on a ZooKeeper cluster,
 * for the partitions this broker does not lead, as a Kafka client of the cluster would do
 * them (console_remote.h's gathers): ListOffsets (earliest, latest, by timestamp) and Fetch
 * (READ_UNCOMMITTED below the high watermark, as the local reads) from each partition's
 * leader, the fetched batches decoded by the local browser's code (console_browse_batches);
 * a produce as a Produce with acks=all to the leader. The partitions this broker leads are
 * read here, as on one node. A leader that does not answer within CONSOLE_REMOTE_TIMEOUT_MS
 * (or that is unknown) leaves its partitions out of the page, named in "unavailable_partitions". See
 * docs/CONSOLE.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/console_api.h"
#include "broker/console_remote.h"
#include "common/errors.h"
#include "common/jsonw.h"
#include "common/util.h"
#include "log/batch.h"
#include "proto/messages.h"

#define PRODUCE_TIMEOUT_MS (CONSOLE_REMOTE_TIMEOUT_MS - 2000) /* the leader answers first */
#define BROWSE_READS_MAX 1000 /* fetches of one partition per call, as the local reads */

/* ---- the browser ---- */

enum { LO_EARLIEST, LO_LATEST, LO_TIMESTAMP };

struct rbrowse {
    struct console_browse_query q;
    const char *topic;                            /* in the arena */
    int64_t pos[CONSOLE_BROWSE_PARTITIONS_MAX];   /* -1 unknown */
    int64_t ls[CONSOLE_BROWSE_PARTITIONS_MAX];    /* log start (-1 unknown) */
    int64_t hw[CONSOLE_BROWSE_PARTITIONS_MAX];    /* high watermark (-1 unknown) */
    int64_t tso[CONSOLE_BROWSE_PARTITIONS_MAX];   /* the timestamp's offset (-1 none) */
    int32_t leader[CONSOLE_BROWSE_PARTITIONS_MAX];
    bool local[CONSOLE_BROWSE_PARTITIONS_MAX];    /* led here: read through partition_read */
    bool unavailable[CONSOLE_BROWSE_PARTITIONS_MAX];
    struct jsonw w;
    bool w_open;
    struct console_browse br;
    int cur;                                      /* the partition being read */
    int reads;                                    /* its fetches so far */
    int err;                                      /* KERR_NONE or why the page failed */
};

/* One ListOffsets's leader and kind. */
struct lo_call {
    struct rbrowse *s;
    int32_t leader;
    int kind;
};

static int browse_index(const struct rbrowse *s, int32_t partition)
{
    for (int i = 0; i < s->q.np; i++)
        if (s->q.idx[i] == partition)
            return i;
    return -1;
}

static void browse_cleanup(struct console_gather *g)
{
    struct rbrowse *s = g->state;
    if (s->w_open)
        jsonw_free(&s->w);
    s->w_open = false;
}

static void lo_answered(struct console_gather *g, void *arg, const struct client_response *resp)
{
    (void)g;
    struct lo_call *c = arg;
    struct rbrowse *s = c->s;
    if (resp->error != KERR_NONE) {
        for (int i = 0; i < s->q.np; i++)
            if (!s->local[i] && s->leader[i] == c->leader)
                s->unavailable[i] = true;
        return;
    }
    const struct list_offsets_response *r = resp->body;
    for (int32_t k = 0; k < r->n_topics; k++)
        for (int32_t m = 0; m < r->topics[k].n_partitions; m++) {
            const struct list_offsets_response_list_offsets_partition_response *pr =
                &r->topics[k].partitions[m];
            int i = browse_index(s, pr->partition_index);
            if (i < 0 || s->local[i] || s->leader[i] != c->leader)
                continue;
            if (pr->error_code != KERR_NONE) {
                s->unavailable[i] = true;
                continue;
            }
            if (c->kind == LO_EARLIEST)
                s->ls[i] = pr->offset;
            else if (c->kind == LO_LATEST)
                s->hw[i] = pr->offset;
            else
                s->tso[i] = pr->offset;
        }
}

/* One ListOffsets of kind to leader for its partitions among those browsed. */
static void send_list_offsets(struct console_gather *g, struct rbrowse *s, int32_t leader, int kind)
{
    struct list_offsets_request *req = arena_alloc(&g->arena, sizeof(*req));
    struct list_offsets_request_list_offsets_topic *tp = arena_alloc(&g->arena, sizeof(*tp));
    struct list_offsets_request_list_offsets_partition *ps =
        arena_alloc(&g->arena, sizeof(*ps) * (size_t)s->q.np);
    struct lo_call *c = arena_alloc(&g->arena, sizeof(*c));
    bool ok = req != NULL && tp != NULL && ps != NULL && c != NULL;
    int n = 0;
    for (int i = 0; ok && i < s->q.np; i++) {
        if (s->local[i] || s->unavailable[i] || s->leader[i] != leader)
            continue;
        list_offsets_request_list_offsets_partition_set_defaults(&ps[n]);
        ps[n].partition_index = s->q.idx[i];
        ps[n].current_leader_epoch = -1;
        ps[n].timestamp = kind == LO_EARLIEST ? -2 : kind == LO_LATEST ? -1 : s->q.ts;
        ps[n].max_num_offsets = 1;
        n++;
    }
    if (ok && n > 0) {
        list_offsets_request_set_defaults(req);
        req->replica_id = -1;
        req->isolation_level = 0; /* READ_UNCOMMITTED: latest is the high watermark */
        req->timeout_ms = CONSOLE_REMOTE_TIMEOUT_MS;
        list_offsets_request_list_offsets_topic_set_defaults(tp);
        tp->name = (struct kstr){.ptr = (char *)s->topic, .len = (int32_t)strlen(s->topic)};
        tp->partitions = ps;
        tp->n_partitions = n;
        req->topics = tp;
        req->n_topics = 1;
        *c = (struct lo_call){.s = s, .leader = leader, .kind = kind};
        ok = console_gather_send(g, leader, PROTO_API_LIST_OFFSETS, 1, -1, req, lo_answered, c) == 0;
    }
    if (!ok)
        for (int i = 0; i < s->q.np; i++)
            if (!s->local[i] && s->leader[i] == leader)
                s->unavailable[i] = true;
}

static void browse_next(struct console_gather *g);

static void fetch_answered(struct console_gather *g, void *arg, const struct client_response *resp)
{
    (void)g;
    struct rbrowse *s = arg;
    int i = s->cur;
    if (resp->error != KERR_NONE) { /* the leader did not answer: none of its partitions asked */
        for (int k = i; k < s->q.np; k++)
            if (!s->local[k] && s->leader[k] == s->leader[i])
                s->unavailable[k] = true;
        return;
    }
    const struct fetch_response *r = resp->body;
    const struct fetch_response_partition_data *pd = NULL;
    if (r->error_code == KERR_NONE)
        for (int32_t k = 0; k < r->n_responses && pd == NULL; k++)
            for (int32_t m = 0; m < r->responses[k].n_partitions; m++)
                if (r->responses[k].partitions[m].partition_index == s->q.idx[i]) {
                    pd = &r->responses[k].partitions[m];
                    break;
                }
    if (pd == NULL) {
        s->unavailable[i] = true;
        return;
    }
    if (pd->error_code == KERR_OFFSET_OUT_OF_RANGE && pd->log_start_offset > s->pos[i]) {
        s->pos[i] = pd->log_start_offset; /* the log start moved on: from there, as the local reads */
        return;
    }
    if (pd->error_code != KERR_NONE) {
        s->unavailable[i] = true;
        return;
    }
    if (pd->high_watermark > s->hw[i])
        s->hw[i] = pd->high_watermark;
    int64_t before = s->pos[i];
    if (pd->records.ptr != NULL && pd->records.len > 0) {
        int e = console_browse_batches(&s->br, s->q.idx[i], pd->records.ptr,
                                       (size_t)pd->records.len, &s->pos[i]);
        if (e != KERR_NONE)
            s->err = e;
    }
    if (s->pos[i] == before) { /* nothing more to read there now */
        s->cur++;
        s->reads = 0;
    }
}

/* Sends the Fetch of the current partition at its position. */
static bool send_fetch(struct console_gather *g, struct rbrowse *s)
{
    int i = s->cur;
    struct fetch_request *req = arena_alloc(&g->arena, sizeof(*req));
    struct fetch_request_fetch_topic *tp = arena_alloc(&g->arena, sizeof(*tp));
    struct fetch_request_fetch_partition *fp = arena_alloc(&g->arena, sizeof(*fp));
    if (req == NULL || tp == NULL || fp == NULL)
        return false;
    fetch_request_set_defaults(req);
    req->replica_id = -1;
    req->max_wait_ms = 0;
    req->min_bytes = 1;
    req->max_bytes = CONSOLE_READ_BYTES;
    req->isolation_level = 0; /* READ_UNCOMMITTED: to the high watermark, as partition_read */
    req->session_id = 0;
    req->session_epoch = -1; /* no fetch session */
    fetch_request_fetch_topic_set_defaults(tp);
    tp->topic = (struct kstr){.ptr = (char *)s->topic, .len = (int32_t)strlen(s->topic)};
    fetch_request_fetch_partition_set_defaults(fp);
    fp->partition = s->q.idx[i];
    fp->current_leader_epoch = -1;
    fp->fetch_offset = s->pos[i];
    fp->last_fetched_epoch = -1;
    fp->log_start_offset = -1;
    fp->partition_max_bytes = CONSOLE_READ_BYTES;
    tp->partitions = fp;
    tp->n_partitions = 1;
    req->topics = tp;
    req->n_topics = 1;
    /* v4+: isolation and record batches; at most v12: topics by name */
    return console_gather_send(g, s->leader[i], PROTO_API_FETCH, 4, 12, req, fetch_answered, s) == 0;
}

static void browse_finish(struct console_gather *g)
{
    struct rbrowse *s = g->state;
    jsonw_arr_end(&s->w);
    if (s->err != KERR_NONE) {
        console_gather_error(g, 500, kerr_name(s->err), "the partition could not be read");
        return;
    }
    bool end = true;
    for (int i = 0; i < s->q.np; i++)
        end = end && !s->unavailable[i] && s->pos[i] >= s->hw[i];
    console_browse_cursor(&s->w, &s->q, s->pos);
    jsonw_ki64(&s->w, "scanned", s->br.scanned);
    jsonw_kbool(&s->w, "end", end);
    jsonw_key(&s->w, "unavailable_partitions");
    jsonw_arr(&s->w);
    for (int i = 0; i < s->q.np; i++)
        if (s->unavailable[i])
            jsonw_i64(&s->w, s->q.idx[i]);
    jsonw_arr_end(&s->w);
    jsonw_obj_end(&s->w);
    s->w_open = false; /* console_gather_reply frees it */
    console_gather_reply(g, 200, &s->w);
}

/* The partitions in order from s->cur: the local ones read now, a remote one fetched (this
 * step again once answered), until the page is done. */
static void browse_next(struct console_gather *g)
{
    struct rbrowse *s = g->state;
    struct broker *b = g->cx.b;
    while (s->cur < s->q.np && s->err == KERR_NONE && !console_browse_done(&s->br)) {
        int i = s->cur;
        if (s->unavailable[i] || s->pos[i] >= s->hw[i] || s->reads >= BROWSE_READS_MAX) {
            s->cur++;
            s->reads = 0;
            continue;
        }
        if (s->local[i]) {
            struct topic *t = topic_find(b, s->topic);
            struct partition *p = t != NULL && s->q.idx[i] < t->npartitions
                                      ? t->partitions[s->q.idx[i]] : NULL;
            if (p == NULL) { /* gone meanwhile (a remote call ran in between) */
                s->unavailable[i] = true;
                continue;
            }
            s->err = console_browse_local(&s->br, p, s->q.idx[i], &s->pos[i]);
            s->hw[i] = partition_high_watermark(p);
            s->cur++;
            s->reads = 0;
            continue;
        }
        s->reads++;
        if (!send_fetch(g, s)) {
            s->unavailable[i] = true;
            continue;
        }
        console_gather_then(g, browse_next);
        return;
    }
    browse_finish(g);
}

/* The offsets are known (or the partitions unavailable): the positions, then the reads. */
static void browse_offsets_known(struct console_gather *g)
{
    struct rbrowse *s = g->state;
    for (int i = 0; i < s->q.np; i++) {
        if (!s->local[i] && (s->ls[i] < 0 || s->hw[i] < 0))
            s->unavailable[i] = true;
        if (!s->unavailable[i]) {
            s->pos[i] = console_browse_start(&s->q, i, s->ls[i], s->hw[i], s->tso[i]);
            continue;
        }
        /* Where a next page should start it, when known without its leader. */
        s->pos[i] = -1;
        if (s->q.by_cursor) {
            for (int k = 0; k < s->q.ncursor; k++)
                if (s->q.cp[k] == s->q.idx[i])
                    s->pos[i] = s->q.co[k];
        } else if (strcmp(s->q.from, "offset") == 0)
            s->pos[i] = s->q.offset;
        else if (strcmp(s->q.from, "beginning") == 0)
            s->pos[i] = 0;
    }
    jsonw_init(&s->w, CONSOLE_RESPONSE_MAX);
    s->w_open = true;
    jsonw_obj(&s->w);
    jsonw_key(&s->w, "records");
    jsonw_arr(&s->w);
    s->br = (struct console_browse){.w = &s->w, .filter = s->q.filter,
                                    .flen = strlen(s->q.filter), .limit = s->q.limit};
    browse_next(g);
}

void console_messages_cluster(struct console_ctx *cx, const struct console_topic_ref *ref,
                              const struct console_browse_query *q)
{
    struct broker *b = cx->b;
    struct console_gather *g = console_gather_new(cx, sizeof(struct rbrowse));
    if (g == NULL)
        return;
    struct rbrowse *s = g->state;
    g->cleanup = browse_cleanup;
    s->q = *q;
    s->topic = console_gather_strdup(g, ref->name, strlen(ref->name));
    if (s->topic == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    int32_t leaders[CONSOLE_BROWSE_PARTITIONS_MAX];
    int nleaders = 0;
    for (int i = 0; i < q->np; i++) {
        int32_t idx = q->idx[i];
        struct partition *p = ref->t != NULL && idx < ref->t->npartitions ? ref->t->partitions[idx] : NULL;
        s->ls[i] = s->hw[i] = s->tso[i] = -1;
        if (p != NULL && p->repl.leading) { /* local leader data is authoritative */
            s->local[i] = true;
            s->ls[i] = partition_log_start(p);
            s->hw[i] = partition_high_watermark(p);
            int64_t found;
            if (console_browse_by_timestamp(q) &&
                partition_offset_for_timestamp(p, q->ts, &s->tso[i], &found) != KERR_NONE)
                s->tso[i] = -1;
            continue;
        }
        s->leader[i] = console_partition_leader(b, s->topic, idx);
        if (s->leader[i] < 0) {
            s->unavailable[i] = true;
            continue;
        }
        bool seen = false;
        for (int k = 0; k < nleaders && !seen; k++)
            seen = leaders[k] == s->leader[i];
        if (!seen)
            leaders[nleaders++] = s->leader[i];
    }
    for (int k = 0; k < nleaders; k++) {
        send_list_offsets(g, s, leaders[k], LO_EARLIEST);
        send_list_offsets(g, s, leaders[k], LO_LATEST);
        if (console_browse_by_timestamp(q))
            send_list_offsets(g, s, leaders[k], LO_TIMESTAMP);
    }
    console_gather_then(g, browse_offsets_known);
}

/* ---- produce ---- */

struct rproduce {
    int32_t partition;
    int error;         /* the leader's or the request's */
    int64_t offset;
    char message[256];
};

static int produce_status(int e)
{
    switch (e) {
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
        return 413;
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
        return 404;
    case KERR_TOPIC_AUTHORIZATION_FAILED:
    case KERR_CLUSTER_AUTHORIZATION_FAILED:
        return 403;
    case KERR_REQUEST_TIMED_OUT:
        return 504;
    case KERR_INVALID_RECORD:
    case KERR_CORRUPT_MESSAGE:
        return 400;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_LEADER_NOT_AVAILABLE:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case KERR_NETWORK_EXCEPTION:
    case KERR_KAFKA_STORAGE_ERROR:
        return 503;
    default:
        return 500;
    }
}

static void produce_answered(struct console_gather *g, void *arg, const struct client_response *resp)
{
    (void)g;
    struct rproduce *s = arg;
    if (resp->error != KERR_NONE) {
        s->error = resp->error;
        snprintf(s->message, sizeof(s->message), "the partition's leader did not answer: %s",
                 resp->reason != NULL ? resp->reason : kerr_name(resp->error));
        return;
    }
    const struct produce_response *r = resp->body;
    s->error = KERR_UNKNOWN_SERVER_ERROR;
    snprintf(s->message, sizeof(s->message), "the leader's answer names no such partition");
    for (int32_t k = 0; k < r->n_responses; k++)
        for (int32_t m = 0; m < r->responses[k].n_partition_responses; m++) {
            const struct produce_response_partition_produce_response *pr =
                &r->responses[k].partition_responses[m];
            if (pr->index != s->partition)
                continue;
            s->error = pr->error_code;
            s->offset = pr->base_offset;
            if (pr->error_message.ptr != NULL && pr->error_message.len > 0)
                snprintf(s->message, sizeof(s->message), "%.*s", (int)pr->error_message.len,
                         pr->error_message.ptr);
            else
                snprintf(s->message, sizeof(s->message), "the record was not appended by the leader");
        }
}

static void produce_done(struct console_gather *g)
{
    struct rproduce *s = g->state;
    if (s->error != KERR_NONE) {
        console_gather_error(g, produce_status(s->error), kerr_name(s->error), s->message);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, 4096);
    jsonw_obj(&w);
    jsonw_ki64(&w, "partition", s->partition);
    jsonw_ki64(&w, "offset", s->offset);
    jsonw_obj_end(&w);
    console_gather_reply(g, 200, &w);
}

void console_produce_remote(struct console_ctx *cx, const struct console_topic_ref *ref,
                            int32_t partition, const uint8_t *batch, size_t len)
{
    int32_t leader = console_partition_leader(cx->b, ref->name, partition);
    if (leader < 0) {
        console_error(cx->req, 503, "LEADER_NOT_AVAILABLE", "the partition has no leader");
        return;
    }
    struct console_gather *g = console_gather_new(cx, sizeof(struct rproduce));
    if (g == NULL)
        return;
    struct rproduce *s = g->state;
    s->partition = partition;
    struct produce_request *req = arena_alloc(&g->arena, sizeof(*req));
    struct produce_request_topic_produce_data *td = arena_alloc(&g->arena, sizeof(*td));
    struct produce_request_partition_produce_data *pd = arena_alloc(&g->arena, sizeof(*pd));
    uint8_t *copy = arena_alloc(&g->arena, len);
    char *topic = console_gather_strdup(g, ref->name, strlen(ref->name));
    if (req == NULL || td == NULL || pd == NULL || copy == NULL || topic == NULL) {
        console_gather_error(g, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    memcpy(copy, batch, len);
    produce_request_set_defaults(req);
    req->acks = -1; /* all: answered once the ISR has it */
    req->timeout_ms = PRODUCE_TIMEOUT_MS;
    produce_request_topic_produce_data_set_defaults(td);
    td->name = (struct kstr){.ptr = topic, .len = (int32_t)strlen(topic)};
    produce_request_partition_produce_data_set_defaults(pd);
    pd->index = partition;
    pd->records = (struct krecords){.ptr = copy, .len = (int32_t)len, .fd = -1};
    td->partition_data = pd;
    td->n_partition_data = 1;
    req->topic_data = td;
    req->n_topic_data = 1;
    /* v3+: record batches; at most v12: topics by name */
    if (console_gather_send(g, leader, PROTO_API_PRODUCE, 3, 12, req, produce_answered, s) != 0) {
        console_gather_error(g, 503, "NETWORK_EXCEPTION", "no connection to the partition's leader");
        return;
    }
    console_gather_then(g, produce_done);
}
