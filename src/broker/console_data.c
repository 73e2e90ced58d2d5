/* console_data: the console's record browser (records read through partition_read, Fetch's
 * path, bounded per call) and its writes — produce (a one-record batch through
 * partition_append_as_leader, Produce's append, answered as acks=all is), create and delete a
 * topic (the registry's calls CreateTopics and DeleteTopics make on one node, the cluster's on
 * ZooKeeper). See docs/CONSOLE.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/authorizer.h"
#include "broker/broker.h"
#include "broker/console.h"
#include "broker/console_api.h"
#include "broker/mutation_quota.h"
#include "broker/replica.h"
#include "broker/scram.h"
#include "common/errors.h"
#include "common/json.h"
#include "common/jsonw.h"
#include "common/logging.h"
#include "common/util.h"
#include "cluster/cluster.h"
#include "log/batch.h"
#include "net/http.h"

/* ---- the record browser ---- */

/* One key, value or header value: "utf8" text or "base64", at most CONSOLE_SHOW_MAX bytes
 * shown (*cut tells). */
static void write_bytes(struct jsonw *w, const char *key, const char *enc_key, const uint8_t *v,
                        int32_t len, bool *cut)
{
    if (v == NULL || len < 0) {
        jsonw_key(w, key);
        jsonw_null(w);
        jsonw_key(w, enc_key);
        jsonw_null(w);
        return;
    }
    size_t n = (size_t)len;
    if (n > CONSOLE_SHOW_MAX) {
        n = CONSOLE_SHOW_MAX;
        if (cut != NULL)
            *cut = true;
    }
    if (jsonw_utf8_text(v, n)) {
        jsonw_key(w, key);
        jsonw_strn(w, (const char *)v, n);
        jsonw_kstr(w, enc_key, "utf8");
        return;
    }
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *b64 = malloc(cap);
    int m = b64 != NULL ? scram_b64_encode(v, n, b64, cap) : -1;
    jsonw_key(w, key);
    if (m >= 0)
        jsonw_strn(w, b64, (size_t)m);
    else
        jsonw_null(w);
    jsonw_kstr(w, enc_key, "base64");
    free(b64);
}

static bool matches(const struct batch_record *r, const char *filter, size_t flen)
{
    if (flen == 0)
        return true;
    return (r->key != NULL && r->key_len >= 0 && memmem(r->key, (size_t)r->key_len, filter, flen)) ||
           (r->value != NULL && r->value_len >= 0 &&
            memmem(r->value, (size_t)r->value_len, filter, flen));
}

static void write_record(struct jsonw *w, int32_t partition, const struct batch_header *h,
                         const struct batch_record *r)
{
    jsonw_obj(w);
    jsonw_ki64(w, "partition", partition);
    jsonw_ki64(w, "offset", r->offset);
    jsonw_ki64(w, "timestamp", r->timestamp);
    jsonw_kstr(w, "timestamp_type", (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) ? "LogAppendTime"
                                                                                : "CreateTime");
    bool cut = false;
    write_bytes(w, "key", "key_encoding", r->key, r->key_len, &cut);
    write_bytes(w, "value", "value_encoding", r->value, r->value_len, &cut);
    if (r->value != NULL && r->value_len >= 0) {
        size_t n = (size_t)r->value_len;
        int f = n <= CONSOLE_SHOW_MAX ? console_value_format(r->value, n)
                                      : (jsonw_utf8_text(r->value, CONSOLE_SHOW_MAX) ? 1 : 0);
        jsonw_kstr(w, "value_format", f == 2 ? "json" : f == 1 ? "text" : "binary");
        jsonw_ki64(w, "value_size", r->value_len);
    } else {
        jsonw_kstr(w, "value_format", "null");
        jsonw_ki64(w, "value_size", -1);
    }
    jsonw_key(w, "headers");
    jsonw_arr(w);
    const uint8_t *hp = r->headers, *he = r->headers + r->headers_len;
    for (int32_t i = 0; i < r->header_count && i < 1000; i++) {
        const uint8_t *hk, *hv;
        int32_t hkl, hvl;
        if (batch_record_header_next(&hp, he, &hk, &hkl, &hv, &hvl) != 1)
            break;
        jsonw_obj(w);
        jsonw_key(w, "key");
        jsonw_strn(w, (const char *)hk, hkl > 0 ? (size_t)hkl : 0);
        write_bytes(w, "value", "value_encoding", hv, hvl, &cut);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_kbool(w, "truncated", cut);
    jsonw_obj_end(w);
}

bool console_browse_done(const struct console_browse *br)
{
    return br->shown >= br->limit || br->scanned >= CONSOLE_SCAN_MAX || br->full;
}

/* Whether the whole batches of buf have offsets that can be added to (0 <= base offset, 0 <=
 * last offset delta, last offset < INT64_MAX): a Fetch answer from another broker is not a log
 * this broker wrote and checked. */
static bool offsets_sane(const uint8_t *buf, size_t len)
{
    size_t at = 0;
    while (at + BATCH_HEADER_SIZE <= len) {
        struct batch_header h;
        batch_header_decode(buf + at, &h);
        if (h.length < BATCH_MIN_LENGTH || (uint64_t)batch_total_size(&h) > len - at)
            break; /* the end (a read may stop mid-batch) */
        if (h.base_offset < 0 || h.last_offset_delta < 0 ||
            h.base_offset > INT64_MAX - 1 - h.last_offset_delta)
            return false;
        at += (size_t)batch_total_size(&h);
    }
    return true;
}

int console_browse_batches(struct console_browse *br, int32_t index, const uint8_t *buf,
                           size_t len, int64_t *pos)
{
    if (!offsets_sane(buf, len))
        return KERR_CORRUPT_MESSAGE;
    struct batch_walk walk = {.buf = buf, .len = len};
    struct batch_header h;
    const uint8_t *batch;
    while (!console_browse_done(br) && batch_walk_next(&walk, *pos, &h, &batch) == 1) {
        if (h.attributes & BATCH_ATTR_CONTROL) {
            *pos = batch_last_offset(&h) + 1;
            continue;
        }
        struct batch_record_iter it;
        if (batch_records_open(&it, batch, (size_t)batch_total_size(&h), CONSOLE_BATCH_MAX) !=
            KERR_NONE)
            return KERR_CORRUPT_MESSAGE;
        struct batch_record r;
        int more;
        while ((more = batch_records_next(&it, &r)) == 1) {
            if (r.offset < *pos)
                continue;
            if (console_browse_done(br))
                break;
            br->scanned++;
            *pos = r.offset + 1;
            if (!matches(&r, br->filter, br->flen))
                continue;
            write_record(br->w, index, &h, &r);
            br->shown++;
            br->full = br->w->len > CONSOLE_RESPONSE_MAX / 2;
        }
        batch_records_close(&it);
        if (more < 0)
            return KERR_CORRUPT_MESSAGE;
        if (more == 0 && *pos <= batch_last_offset(&h))
            *pos = batch_last_offset(&h) + 1; /* compacted away at its end */
    }
    return KERR_NONE;
}

int console_browse_local(struct console_browse *br, struct partition *p, int32_t index, int64_t *pos)
{
    uint8_t *buf = NULL;
    int rc = KERR_NONE;
    for (int reads = 0; !console_browse_done(br) && *pos < partition_high_watermark(p) && reads < 1000;
         reads++) {
        struct log_slice sl;
        int e = partition_read(p, *pos, CONSOLE_READ_BYTES, &sl);
        if (e == KERR_OFFSET_OUT_OF_RANGE && *pos < partition_log_start(p)) {
            *pos = partition_log_start(p);
            continue;
        }
        if (e != KERR_NONE) {
            rc = e;
            break;
        }
        if (sl.len == 0)
            break;
        if (sl.len > CONSOLE_BATCH_MAX) {
            rc = KERR_MESSAGE_TOO_LARGE;
            break;
        }
        free(buf);
        buf = malloc(sl.len);
        if (buf == NULL) {
            rc = KERR_UNKNOWN_SERVER_ERROR;
            break;
        }
        size_t got = 0;
        while (got < sl.len) {
            ssize_t n = pread(sl.fd, buf + got, sl.len - got, sl.position + (off_t)got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        int64_t before = *pos;
        rc = console_browse_batches(br, index, buf, got, pos);
        if (rc != KERR_NONE)
            break;
        if (*pos == before) {
            if (sl.next_offset > *pos)
                *pos = sl.next_offset;
            else
                break;
        }
    }
    free(buf);
    return rc;
}

/* The query's parameters, checked (false: answered 400/404/503). t: this broker's replicas
 * (one node: only the partitions it holds are browsed); all: every partition of npartitions
 * (a cluster: those not held here are read from their leaders). */
static bool browse_parse(struct console_ctx *cx, const struct topic *t, int32_t npartitions,
                         bool all, struct console_browse_query *q)
{
    struct http_req *req = cx->req;
    char arg[512];
    q->limit = 50;
    q->filter[0] = '\0';
    if (http_query(req, "limit", arg, sizeof(arg)) != NULL) {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || v < 1 || v > CONSOLE_LIMIT_MAX) {
            console_error(req, 400, "INVALID_REQUEST", "limit must be 1..500");
            return false;
        }
        q->limit = (int)v;
    }
    if (http_query(req, "filter", q->filter, sizeof(q->filter)) == NULL) {
        if (strstr(req->query, "filter=") != NULL) {
            console_error(req, 400, "INVALID_REQUEST", "filter is at most 255 bytes");
            return false;
        }
        q->filter[0] = '\0';
    }
    /* The partitions browsed. */
    q->np = 0;
    const char *ps = http_query(req, "partition", arg, sizeof(arg));
    if (ps == NULL || strcmp(ps, "all") == 0) {
        for (int32_t i = 0; i < npartitions && q->np < CONSOLE_BROWSE_PARTITIONS_MAX; i++)
            if (all || t->partitions[i] != NULL)
                q->idx[q->np++] = i;
    } else {
        char *end;
        long v = strtol(ps, &end, 10);
        if (*ps == '\0' || *end != '\0' || v < 0 || v >= npartitions) {
            console_error(req, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no such partition");
            return false;
        }
        if (!all && t->partitions[v] == NULL) {
            console_error(req, 503, "NOT_LEADER_OR_FOLLOWER", "this broker holds no replica of it");
            return false;
        }
        q->idx[q->np++] = (int32_t)v;
    }
    snprintf(q->from, sizeof(q->from), "beginning");
    if (http_query(req, "from", arg, sizeof(arg)) != NULL)
        snprintf(q->from, sizeof(q->from), "%.31s", arg);
    q->offset = 0;
    q->ts = 0;
    char *cbuf = malloc(HTTP_HEAD_MAX + 1);
    if (cbuf == NULL) {
        console_error(req, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return false;
    }
    q->by_cursor = http_query(req, "cursor", cbuf, HTTP_HEAD_MAX + 1) != NULL;
    if (q->by_cursor) {
        q->ncursor = console_cursor_parse(cbuf, q->cp, q->co, CONSOLE_BROWSE_PARTITIONS_MAX);
        free(cbuf);
        if (q->ncursor < 0) {
            console_error(req, 400, "INVALID_REQUEST", "bad cursor");
            return false;
        }
        return true;
    }
    free(cbuf);
    bool ok = true;
    if (strcmp(q->from, "offset") == 0) {
        ok = http_query(req, "offset", arg, sizeof(arg)) != NULL;
        char *end = NULL;
        errno = 0;
        if (ok)
            q->offset = strtoll(arg, &end, 10);
        ok = ok && *arg != '\0' && *end == '\0' && errno != ERANGE && q->offset >= 0;
    } else if (strcmp(q->from, "timestamp") == 0) {
        ok = http_query(req, "timestamp", arg, sizeof(arg)) != NULL;
        char *end = NULL;
        errno = 0;
        if (ok)
            q->ts = strtoll(arg, &end, 10);
        ok = ok && *arg != '\0' && *end == '\0' && errno != ERANGE && q->ts >= 0;
    } else if (strcmp(q->from, "beginning") != 0 && strcmp(q->from, "end") != 0)
        ok = false;
    if (!ok) {
        console_error(req, 400, "INVALID_REQUEST",
                      "from=beginning|end|offset&offset=<o>|timestamp&timestamp=<ms>");
        return false;
    }
    return true;
}

bool console_browse_by_timestamp(const struct console_browse_query *q)
{
    return !q->by_cursor && strcmp(q->from, "timestamp") == 0;
}

int64_t console_browse_start(const struct console_browse_query *q, int i, int64_t ls, int64_t hw,
                             int64_t ts_offset)
{
    int64_t pos;
    if (q->by_cursor) {
        /* The cursor's partitions, where they are among those browsed; others start at the end
         * (nothing new) so that a page never goes back. */
        pos = hw;
        for (int k = 0; k < q->ncursor; k++)
            if (q->cp[k] == q->idx[i])
                pos = q->co[k];
    } else {
        int per = q->np > 0 ? (q->limit + q->np - 1) / q->np : q->limit;
        if (strcmp(q->from, "beginning") == 0)
            pos = ls;
        else if (strcmp(q->from, "end") == 0)
            pos = hw - per > ls ? hw - per : ls;
        else if (strcmp(q->from, "offset") == 0)
            pos = q->offset;
        else
            pos = ts_offset >= 0 ? ts_offset : hw;
    }
    if (pos < ls) /* into [log start, high watermark] */
        pos = ls;
    if (pos > hw)
        pos = hw;
    return pos;
}

void console_browse_cursor(struct jsonw *w, const struct console_browse_query *q,
                           const int64_t *pos)
{
    char *cursor = malloc((size_t)q->np * 32 + 1);
    size_t cl = 0;
    int n = 0;
    if (cursor != NULL)
        cursor[0] = '\0';
    for (int i = 0; i < q->np && cursor != NULL; i++) {
        if (pos[i] < 0) /* unknown (a partition that could not be read) */
            continue;
        cl += (size_t)snprintf(cursor + cl, 32, "%s%" PRId32 "_%" PRId64, n++ ? "." : "",
                               q->idx[i], pos[i]);
    }
    jsonw_key(w, "next_cursor");
    jsonw_str(w, n > 0 ? cursor : NULL);
    free(cursor);
}

void console_messages(struct console_ctx *cx, const char *name)
{
    struct http_req *req = cx->req;
    struct console_browse_query *q = malloc(sizeof(*q));
    if (q == NULL) {
        console_error(req, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    if (cx->b->cluster != NULL) {
        /* Every partition: those this broker leads read here, the others from their leaders. */
        struct console_topic_ref ref;
        if (console_topic_ref(cx, name, ACL_OP_READ, &ref) &&
            browse_parse(cx, NULL, ref.npartitions, true, q))
            console_messages_cluster(cx, &ref, q);
        free(q);
        return;
    }
    struct topic *t = console_topic(cx, name, ACL_OP_READ);
    if (t == NULL || !browse_parse(cx, t, t->npartitions, false, q)) {
        free(q);
        return;
    }
    int np = q->np;
    int64_t pos[CONSOLE_BROWSE_PARTITIONS_MAX];
    for (int i = 0; i < np; i++) {
        struct partition *p = t->partitions[q->idx[i]];
        int64_t hw = partition_high_watermark(p), o = -1;
        if (console_browse_by_timestamp(q)) {
            int64_t found;
            if (partition_offset_for_timestamp(p, q->ts, &o, &found) != KERR_NONE)
                o = -1;
        }
        pos[i] = console_browse_start(q, i, partition_log_start(p), hw, o);
    }
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_key(&w, "records");
    jsonw_arr(&w);
    struct console_browse br = {.w = &w, .filter = q->filter, .flen = strlen(q->filter),
                                .limit = q->limit};
    int err = KERR_NONE;
    for (int i = 0; i < np && !console_browse_done(&br) && err == KERR_NONE; i++)
        err = console_browse_local(&br, t->partitions[q->idx[i]], q->idx[i], &pos[i]);
    jsonw_arr_end(&w);
    if (err != KERR_NONE) {
        jsonw_free(&w);
        free(q);
        console_error(req, 500, kerr_name(err), "the partition could not be read");
        return;
    }
    bool end = true;
    for (int i = 0; i < np; i++)
        end = end && pos[i] >= partition_high_watermark(t->partitions[q->idx[i]]);
    console_browse_cursor(&w, q, pos);
    free(q);
    jsonw_ki64(&w, "scanned", br.scanned);
    jsonw_kbool(&w, "end", end);
    jsonw_obj_end(&w);
    console_reply(req, 200, &w, NULL);
}

/* ---- produce ---- */

/* Kafka's Utils.murmur2 (the Java producer's default partitioner for a keyed record). */
static int32_t murmur2(const uint8_t *data, size_t len)
{
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        const uint8_t *d = data + 4 * i;
        uint32_t k = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const uint8_t *tail = data + 4 * n4;
    switch (len % 4) {
    case 3: h ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: h ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1: h ^= tail[0]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

#define PRODUCE_HEADERS_MAX 64

/* ---- produce's acknowledgement ----
 * As a Produce with acks=all: after the append, the record waits (a malloc'd waiter on
 * b->waiters, no polling) for the group commit's fdatasync to pass it (gregor.acks.all.fsync,
 * WAITER_ON_DURABLE), then, on a partition led with replication, for the high watermark to
 * pass it (WAITER_ON_APPEND, as produce.c's replication wait), within
 * CONSOLE_PRODUCE_TIMEOUT_MS (504 REQUEST_TIMED_OUT past it). The waiter names its partition
 * (topic name and id, index), never points at it: each look finds it again, so a topic
 * deleted meanwhile answers 404. One HTTP request is up per connection, so the waits are
 * bounded by the listener's connections; console_ops_drop frees them all (unanswered) before
 * the listener frees their requests. */

#define CONSOLE_PRODUCE_TIMEOUT_MS 30000 /* the Java producer's request.timeout.ms */

struct produce_ack {
    struct waiter w;              /* first: the waiter's arg is this */
    struct broker *b;
    struct http_req *req;
    char topic[sizeof(((struct topic *)0)->name)];
    struct kuuid topic_id;
    int32_t part;
    int64_t offset;               /* the record's */
    int64_t end;                  /* the log end after it */
    int32_t leadership;           /* partition_leadership at the append, -1: not replicated */
    int64_t deadline_ms;          /* mono */
};

static bool ack_durable(struct waiter *w, enum waiter_event ev);
static bool ack_replicated(struct waiter *w, enum waiter_event ev);

/* The partition the record went to, if its topic (the same one: its id) still has it. */
static struct partition *ack_partition(const struct produce_ack *a)
{
    struct topic *t = topic_find(a->b, a->topic);
    if (t == NULL || memcmp(&t->id, &a->topic_id, sizeof(t->id)) != 0 || a->part >= t->npartitions)
        return NULL;
    return t->partitions[a->part];
}

/* Answers (e KERR_NONE: 200 with the record's place) and frees a. */
static void ack_answer(struct produce_ack *a, int e, const char *msg)
{
    GREGOR_ASSERT(a->w.set == NULL);
    if (e == KERR_NONE) {
        struct jsonw w;
        jsonw_init(&w, 4096);
        jsonw_obj(&w);
        jsonw_ki64(&w, "partition", a->part);
        jsonw_ki64(&w, "offset", a->offset);
        jsonw_obj_end(&w);
        console_reply(a->req, 200, &w, NULL);
    } else {
        int status = e == KERR_UNKNOWN_TOPIC_OR_PARTITION ? 404
                     : e == KERR_REQUEST_TIMED_OUT      ? 504
                     : e == KERR_KAFKA_STORAGE_ERROR    ? 500
                                                        : 503;
        console_error(a->req, status, kerr_name(e), msg);
    }
    free(a);
}

/* Durable: a partition led with replication waits for its followers next; else answered. */
static void ack_replicate(struct produce_ack *a)
{
    struct partition *p = ack_partition(a);
    if (p == NULL) {
        ack_answer(a, KERR_UNKNOWN_TOPIC_OR_PARTITION, "the topic went while the record waited");
        return;
    }
    if (a->leadership < 0) {
        ack_answer(a, KERR_NONE, NULL);
        return;
    }
    if (ack_replicated(&a->w, WAITER_CHECK) || a->b->stopping || a->b->cluster == NULL ||
        mono_ms() >= a->deadline_ms) {
        ack_replicated(&a->w, WAITER_DEADLINE);
        return;
    }
    waiter_park(&a->b->waiters, &a->w, WAITER_ON_APPEND, a->deadline_ms, ack_replicated, a);
}

/* Met once the partition's durable point passed the record, or the group commit that took
 * it failed (500 KAFKA_STORAGE_ERROR), or the partition is gone. */
static bool ack_durable(struct waiter *w, enum waiter_event ev)
{
    struct produce_ack *a = w->arg;
    struct partition *p = ack_partition(a);
    bool durable = p != NULL && partition_durable_offset(p) >= a->end;
    bool failed = p != NULL && !durable && p->flush_failed && p->commit_end >= a->end;
    if (ev == WAITER_CHECK)
        return p == NULL || durable || failed;
    /* Met (FIRE) holds even if the log was truncated since (a follower now: the check drained
     * the group commit first): the replication step then answers NOT_LEADER_OR_FOLLOWER. */
    if (p == NULL)
        ack_answer(a, KERR_UNKNOWN_TOPIC_OR_PARTITION, "the topic went while the record waited");
    else if (failed)
        ack_answer(a, KERR_KAFKA_STORAGE_ERROR, "the record could not be synced to disk");
    else if (ev == WAITER_DEADLINE && !durable)
        ack_answer(a, KERR_REQUEST_TIMED_OUT, "the record was not synced to disk in time");
    else
        ack_replicate(a);
    return true;
}

/* produce.c's replication wait for one record: met once the high watermark passed it
 * (NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR is below min.insync.replicas then), or
 * leadership went (NOT_LEADER_OR_FOLLOWER: the new leader may lack it). */
static bool ack_replicated(struct waiter *w, enum waiter_event ev)
{
    struct produce_ack *a = w->arg;
    struct partition *p = ack_partition(a);
    int e = KERR_NONE;
    bool settled = p == NULL || partition_acks_all_settled(p, a->leadership, a->end, &e);
    if (ev == WAITER_CHECK)
        return settled;
    if (p == NULL)
        ack_answer(a, KERR_UNKNOWN_TOPIC_OR_PARTITION, "the topic went while the record waited");
    else if (!settled) /* the deadline (or shutdown) */
        ack_answer(a, KERR_REQUEST_TIMED_OUT, "the record was not replicated to the ISR in time");
    else if (e != KERR_NONE)
        ack_answer(a, e, "this broker stopped leading the partition; the record may be lost");
    else if (p->repl.nisr < replica_min_insync(a->b, p->topic))
        ack_answer(a, KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                   "the ISR shrank below min.insync.replicas while the record waited");
    else
        ack_answer(a, KERR_NONE, NULL);
    return true;
}

/* Appended at [offset, end) of p: waits as acks=all does, then answers. */
static void ack_wait(struct console_ctx *cx, struct topic *t, struct partition *p, int32_t part,
                     int64_t offset, int64_t end)
{
    struct broker *b = cx->b;
    struct produce_ack *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        console_error(cx->req, 503, "UNKNOWN_SERVER_ERROR", "out of memory (the record was appended)");
        return;
    }
    a->b = b;
    a->req = cx->req;
    snprintf(a->topic, sizeof(a->topic), "%s", t->name);
    a->topic_id = t->id;
    a->part = part;
    a->offset = offset;
    a->end = end;
    a->leadership = b->cluster != NULL ? partition_leadership(p) : -1;
    a->deadline_ms = mono_ms() + CONSOLE_PRODUCE_TIMEOUT_MS;
    if (b->cfg.acks_all_fsync && partition_durable_offset(p) < end) {
        /* Marked dirty by the append: the group commit before the loop sleeps syncs it. */
        waiter_park(&b->waiters, &a->w, WAITER_ON_DURABLE, a->deadline_ms, ack_durable, a);
        return;
    }
    ack_replicate(a);
}

/* The listener stops: every waiting produce is dropped unanswered (its request is freed). */
static void produce_acks_drop(struct broker *b)
{
    struct waiter *lists[WAITER_KINDS + 1];
    for (int k = 0; k < WAITER_KINDS; k++)
        lists[k] = b->waiters.parked[k];
    lists[WAITER_KINDS] = b->waiters.ready;
    for (int k = 0; k <= WAITER_KINDS; k++) {
        struct waiter *next;
        for (struct waiter *w = lists[k]; w != NULL; w = next) {
            next = w->next;
            if (w->fn != ack_durable && w->fn != ack_replicated)
                continue;
            waiter_unpark(w);
            free(w->arg);
        }
    }
}

void console_produce(struct console_ctx *cx, const char *name)
{
    struct broker *b = cx->b;
    struct http_req *req = cx->req;
    struct console_topic_ref ref; /* in a cluster, also a topic this broker holds no replica of */
    if (!console_topic_ref(cx, name, ACL_OP_WRITE, &ref))
        return;
    struct topic *t = ref.t;
    if (b->cluster == NULL && t == NULL) {
        console_error(req, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no replica of the topic on this broker");
        return;
    }
    if (ref.internal) {
        console_error(req, 400, "INVALID_TOPIC_EXCEPTION", "internal topics are written by their coordinators");
        return;
    }
    struct arena a;
    arena_init(&a, 16u << 20);
    const struct json *j = console_body(cx, &a);
    if (j == NULL) {
        arena_reset(&a);
        return;
    }
    const struct json *jk = json_get(j, "key"), *jv = json_get(j, "value");
    const struct json *jp = json_get(j, "partition"), *jh = json_get(j, "headers");
    bool bad = (jk != NULL && jk->type != JSON_NULL && jk->type != JSON_STRING) ||
               (jv != NULL && jv->type != JSON_NULL && jv->type != JSON_STRING) ||
               (jh != NULL && jh->type != JSON_NULL && jh->type != JSON_ARRAY) ||
               (jh != NULL && jh->type == JSON_ARRAY && jh->n > PRODUCE_HEADERS_MAX);
    int64_t part = -1;
    if (!bad && jp != NULL && jp->type != JSON_NULL)
        bad = !console_json_i64(j, "partition", &part) || part < 0;
    struct batch_kv_header hs[PRODUCE_HEADERS_MAX];
    int nh = 0;
    for (const struct json *e = jh != NULL && jh->type == JSON_ARRAY ? jh->first : NULL;
         e != NULL && !bad; e = e->next) {
        const struct json *hk = e->type == JSON_OBJECT ? json_get(e, "key") : NULL;
        const struct json *hv = e->type == JSON_OBJECT ? json_get(e, "value") : NULL;
        if (hk == NULL || hk->type != JSON_STRING || memchr(hk->text, 0, hk->len) ||
            (hv != NULL && hv->type != JSON_NULL && hv->type != JSON_STRING)) {
            bad = true;
            break;
        }
        hs[nh].key = hk->text; /* NUL-terminated in the arena */
        hs[nh].value = hv != NULL && hv->type == JSON_STRING ? hv->text : NULL;
        hs[nh].value_len = hv != NULL && hv->type == JSON_STRING ? (int32_t)hv->len : -1;
        nh++;
    }
    if (bad) {
        arena_reset(&a);
        console_error(req, 400, "INVALID_REQUEST",
                      "want {\"partition\": int|null, \"key\": str|null, \"value\": str|null, "
                      "\"headers\": [{\"key\": str, \"value\": str|null}]}");
        return;
    }
    bool has_key = jk != NULL && jk->type == JSON_STRING;
    bool has_value = jv != NULL && jv->type == JSON_STRING;
    if (part < 0) {
        if (has_key)
            part = (murmur2((const uint8_t *)jk->text, jk->len) & 0x7fffffff) % ref.npartitions;
        else /* Kafka's sticky partitioner picks one for a batch: here, by the clock */
            part = (int64_t)((uint64_t)mono_ms() % (uint64_t)ref.npartitions);
    }
    if (part >= ref.npartitions) {
        arena_reset(&a);
        console_error(req, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no such partition");
        return;
    }
    /* One uncompressed one-record batch, for this broker's log or the leader's (which checks
     * max.message.bytes itself). */
    struct batch_builder bb;
    batch_builder_init(&bb, t != NULL ? (size_t)t->cfg.max_message_bytes + 1024 : CONSOLE_BATCH_MAX);
    uint8_t *batch = NULL;
    size_t len = 0;
    int e = batch_builder_add(&bb, now_ms(), has_key ? jk->text : NULL,
                              has_key ? (int32_t)jk->len : -1, has_value ? jv->text : NULL,
                              has_value ? (int32_t)jv->len : -1, hs, nh);
    if (e == 0)
        e = batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &batch, &len);
    batch_builder_free(&bb);
    arena_reset(&a);
    if (e != 0 || batch == NULL) {
        free(batch);
        console_error(req, 413, "MESSAGE_TOO_LARGE", "the record is larger than max.message.bytes");
        return;
    }
    struct partition *p = t != NULL && part < t->npartitions ? t->partitions[part] : NULL;
    const char *refused = NULL, *why = NULL;
    char msg[160];
    if (b->cluster != NULL && (p == NULL || !p->repl.leading)) {
        /* Sent to the partition's leader (console_browse_remote.c) */
        console_produce_remote(cx, &ref, (int32_t)part, batch, len);
        free(batch);
        return;
    }
    if (p == NULL) {
        refused = "NOT_LEADER_OR_FOLLOWER";
        why = "this broker does not lead the partition";
    } else if (b->cluster != NULL && partition_leadership(p) < 0) {
        refused = "NOT_LEADER_OR_FOLLOWER"; /* led in the view, not yet in the partition (as Produce) */
        why = "this broker does not lead the partition yet";
    } else if (b->cluster != NULL && p->repl.ncommitted < replica_min_insync(b, t)) {
        /* Produce's acks=all check before the append (Kafka's appendRecordsToLeader). */
        snprintf(msg, sizeof(msg), "the ISR has %d replicas, fewer than min.insync.replicas %d",
                 p->repl.ncommitted, replica_min_insync(b, t));
        refused = "NOT_ENOUGH_REPLICAS";
        why = msg;
    }
    if (refused != NULL) {
        free(batch);
        console_error(req, 503, refused, why);
        return;
    }
    int kerr = batch_validate_client(batch, len, t->cfg.max_message_bytes);
    struct log_append_info info;
    bool dup = false;
    if (kerr == KERR_NONE)
        kerr = partition_append_as_leader(p, batch, len, now_ms(), &info, &dup);
    free(batch);
    if (kerr != KERR_NONE) {
        console_error(req, kerr == KERR_MESSAGE_TOO_LARGE ? 413 : 500, kerr_name(kerr),
                      "the record was not appended");
        return;
    }
    broker_mark_dirty(b, p);
    b->appended = true;
    ack_wait(cx, t, p, (int32_t)part, info.base_offset, info.last_offset + 1);
}

/* ---- create and delete ---- */

#define CREATE_CONFIGS_MAX 64

/* KIP-599: a console create or delete is charged to controller_mutation_rate as a strict
 * CreateTopics (v6+) / DeleteTopics (v5+) of the logged-in principal's user with this client
 * id would be (the user's quota applies unless this client id has its own): the partitions
 * recorded after the checks and before the change; a bucket in debt refuses it with 429. */
#define CONSOLE_CLIENT_ID "gregor-console"

/* KERR_NONE (recorded), or KERR_THROTTLING_QUOTA_EXCEEDED answered (429 with Retry-After). */
static int console_mutation_charge(struct console_ctx *cx, int32_t permits)
{
    const char *colon = strchr(cx->principal, ':');
    const char *user = colon != NULL ? colon + 1 : cx->principal;
    int32_t throttle = 0;
    char msg[128] = "";
    int e = mutation_quota_charge(cx->b, user, CONSOLE_CLIENT_ID, permits, true, &throttle, msg,
                                  sizeof(msg));
    if (e == KERR_NONE)
        return e;
    GREGOR_ASSERT(e == KERR_THROTTLING_QUOTA_EXCEEDED && throttle > 0);
    char extra[48];
    snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", (int)((throttle + 999) / 1000));
    struct jsonw w;
    jsonw_init(&w, 4096);
    jsonw_obj(&w);
    jsonw_kstr(&w, "error", kerr_name(e));
    jsonw_kstr(&w, "message", msg);
    jsonw_ki64(&w, "throttle_time_ms", throttle);
    jsonw_obj_end(&w);
    console_reply(cx->req, 429, &w, extra);
    return e;
}

/* ---- creates and deletes on a ZooKeeper cluster ----
 * Written to ZooKeeper by cluster_create_topic / cluster_delete_topic (CreateTopics' and
 * DeleteTopics' calls there), then answered once this broker's view shows every partition's
 * leader (or no topic), as those handlers answer. Each op is malloc'd and listed in
 * b->console_ops until its callback comes (once, at the latest from cluster_destroy, which
 * comes after console_stop); console_stop clears its req, so nobody answers a freed request. */

#define CONSOLE_OPS_MAX 64            /* console creates/deletes pending at once */
#define CONSOLE_OP_TIMEOUT_MS 30000   /* the view's wait, as an admin client's default */

struct console_op {
    struct broker *b;
    struct http_req *req;       /* NULL once the console stopped */
    struct console_op *next;
    bool create;
    int32_t parts;
    char name[TOPIC_NAME_MAX + 1];
    char principal[CONSOLE_PRINCIPAL_MAX];
};

void console_ops_drop(struct broker *b)
{
    for (struct console_op *op = b->console_ops; op != NULL; op = op->next)
        op->req = NULL;
    produce_acks_drop(b);
}

static int kerr_status(int e)
{
    switch (e) {
    case KERR_TOPIC_ALREADY_EXISTS:
        return 409;
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
        return 404;
    case KERR_REQUEST_TIMED_OUT:
        return 504;
    case KERR_TOPIC_AUTHORIZATION_FAILED:
    case KERR_CLUSTER_AUTHORIZATION_FAILED:
        return 403;
    default:
        return 400;
    }
}

static struct console_op *op_new(struct console_ctx *cx, const char *name, bool create)
{
    struct broker *b = cx->b;
    if (b->nconsole_ops >= CONSOLE_OPS_MAX) {
        console_error(cx->req, 503, "THROTTLING_QUOTA_EXCEEDED", "too many console changes under way");
        return NULL;
    }
    struct console_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        console_error(cx->req, 503, "UNKNOWN_SERVER_ERROR", "out of memory");
        return NULL;
    }
    op->b = b;
    op->req = cx->req;
    op->create = create;
    snprintf(op->name, sizeof(op->name), "%s", name);
    snprintf(op->principal, sizeof(op->principal), "%s", cx->principal);
    op->next = b->console_ops;
    b->console_ops = op;
    b->nconsole_ops++;
    return op;
}

static void op_end(struct console_op *op, int e, const char *msg)
{
    struct broker *b = op->b;
    struct console_op **pp = &b->console_ops;
    while (*pp != op) {
        GREGOR_ASSERT(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = op->next;
    GREGOR_ASSERT(b->nconsole_ops > 0);
    b->nconsole_ops--;
    if (op->req != NULL) {
        if (e != KERR_NONE) {
            console_error(op->req, kerr_status(e), kerr_name(e), msg != NULL ? msg : "");
        } else {
            log_line(LOG_LEVEL_INFO, "console", "%s %s topic %s", op->principal,
                     op->create ? "created" : "deleted", op->name);
            struct jsonw w;
            jsonw_init(&w, 4096);
            jsonw_obj(&w);
            jsonw_kstr(&w, "name", op->name);
            jsonw_obj_end(&w);
            console_reply(op->req, op->create ? 201 : 200, &w, NULL);
        }
    }
    free(op);
}

static void op_seen(void *arg, int e, const char *msg)
{
    op_end(arg, e, msg);
}

/* Written to ZooKeeper: answered once this broker's view agrees (not once the console stopped:
 * then the cluster is going away). */
static void op_written(void *arg, int e, const char *msg)
{
    struct console_op *op = arg;
    if (e == KERR_NONE && op->req != NULL &&
        cluster_await_view(op->b->cluster, op->name, 0, op->create ? op->parts : -1,
                           CONSOLE_OP_TIMEOUT_MS, op_seen, op))
        return;
    op_end(op, e, msg);
}

static void console_cluster_create(struct console_ctx *cx, const char *name, int32_t parts, int16_t rf,
                           const struct topic_config_kv *kv, int nkv)
{
    struct broker *b = cx->b;
    char msg[512] = "";
    int e = topic_name_validate(name, (int32_t)strlen(name), msg, sizeof(msg));
    if (e == KERR_NONE && (strcmp(name, "__cluster_metadata") == 0 || topic_name_is_internal(name))) {
        e = KERR_INVALID_REQUEST;
        snprintf(msg, sizeof(msg), "Creation of internal topic %s is prohibited.", name);
    }
    if (e == KERR_NONE && topic_find(b, name) != NULL) {
        e = KERR_TOPIC_ALREADY_EXISTS;
        snprintf(msg, sizeof(msg), "Topic '%s' already exists.", name);
    }
    if (e == KERR_NONE)
        e = topic_name_collision(b, name, msg, sizeof(msg));
    for (int i = 0; i < nkv && e == KERR_NONE; i++)
        e = topic_config_check(kv[i].key, kv[i].value, msg, sizeof(msg));
    if (e == KERR_NONE)
        e = topic_fd_budget_check(b, parts, msg, sizeof(msg));
    if (e != KERR_NONE) {
        console_error(cx->req, kerr_status(e), kerr_name(e), msg);
        return;
    }
    size_t clen;
    char *cjson = topic_configs_json(kv, nkv, &clen);
    uint8_t id[16];
    /* Checked first (its errors answered now), then written, as CreateTopics does. */
    e = cluster_create_topic(b->cluster, name, parts, rf, NULL, true, id, cjson, op_written, NULL,
                             msg, sizeof(msg));
    struct console_op *op = NULL;
    if (e == KERR_NONE && (op = op_new(cx, name, true)) != NULL) {
        op->parts = parts;
        if (console_mutation_charge(cx, parts) != KERR_NONE) {
            op->req = NULL; /* answered */
            op_end(op, KERR_NONE, NULL);
            free(cjson);
            return;
        }
        e = cluster_create_topic(b->cluster, name, parts, rf, NULL, false, id, cjson, op_written,
                                 op, msg, sizeof(msg));
        if (e != KERR_NONE) {
            op->req = NULL; /* answered below */
            op_end(op, e, msg);
        }
    }
    free(cjson);
    if (e != KERR_NONE)
        console_error(cx->req, kerr_status(e), kerr_name(e), msg);
}

static void console_cluster_delete(struct console_ctx *cx, const char *name, int32_t parts)
{
    char msg[512] = "";
    struct console_op *op = op_new(cx, name, false);
    if (op == NULL)
        return;
    if (console_mutation_charge(cx, parts) != KERR_NONE) {
        op->req = NULL; /* answered */
        op_end(op, KERR_NONE, NULL);
        return;
    }
    int e = cluster_delete_topic(cx->b->cluster, name, op_written, op, msg, sizeof(msg));
    if (e != KERR_NONE) {
        op->req = NULL; /* answered below */
        op_end(op, e, msg);
        console_error(cx->req, kerr_status(e), kerr_name(e), msg);
    }
}

void console_create_topic(struct console_ctx *cx)
{
    struct broker *b = cx->b;
    struct http_req *req = cx->req;
    struct arena a;
    arena_init(&a, 256 * 1024);
    const struct json *j = console_body(cx, &a);
    if (j == NULL) {
        arena_reset(&a);
        return;
    }
    char name[TOPIC_NAME_MAX + 1], msg[512] = "";
    int64_t parts = b->cfg.num_partitions, rf = b->cfg.default_replication_factor;
    const struct json *jp = json_get(j, "partitions"), *jr = json_get(j, "replication_factor");
    const struct json *jc = json_get(j, "configs");
    bool ok = console_json_str(j, "name", name, sizeof(name)) &&
              (jp == NULL || jp->type == JSON_NULL || console_json_i64(j, "partitions", &parts)) &&
              (jr == NULL || jr->type == JSON_NULL || console_json_i64(j, "replication_factor", &rf)) &&
              (jc == NULL || jc->type == JSON_NULL || (jc->type == JSON_OBJECT && jc->n <= CREATE_CONFIGS_MAX));
    struct topic_config_kv kv[CREATE_CONFIGS_MAX];
    int nkv = 0;
    for (const struct json *e = jc != NULL && jc->type == JSON_OBJECT ? jc->first : NULL; ok && e;
         e = e->next) {
        if (e->type != JSON_STRING || e->keylen >= sizeof(kv[0].key) || e->len >= sizeof(kv[0].value) ||
            memchr(e->key, 0, e->keylen) || memchr(e->text, 0, e->len)) {
            ok = false;
            break;
        }
        memcpy(kv[nkv].key, e->key, e->keylen);
        kv[nkv].key[e->keylen] = '\0';
        memcpy(kv[nkv].value, e->text, e->len);
        kv[nkv].value[e->len] = '\0';
        nkv++;
    }
    arena_reset(&a);
    if (!ok) {
        console_error(req, 400, "INVALID_REQUEST",
                      "want {\"name\": str, \"partitions\": int, \"replication_factor\": int, "
                      "\"configs\": {str: str}}");
        return;
    }
    /* Kafka: CREATE on the cluster, or else on the topic. */
    if (!authorize_principal(b, cx->principal, cx->host, ACL_OP_CREATE, ACL_RES_CLUSTER,
                             "kafka-cluster", false) &&
        !console_allowed(cx, ACL_OP_CREATE, ACL_RES_TOPIC, name)) {
        console_error(req, 403, "TOPIC_AUTHORIZATION_FAILED", "not authorized to create the topic");
        return;
    }
    if (b->cluster != NULL) {
        if (parts <= 0 || parts > CONSOLE_CREATE_PARTITIONS_MAX || rf <= 0 || rf > INT16_MAX) {
            console_error(req, 400, parts <= 0 || parts > CONSOLE_CREATE_PARTITIONS_MAX
                                        ? "INVALID_PARTITIONS" : "INVALID_REPLICATION_FACTOR",
                          "partitions must be 1..10000, replication_factor 1..32767");
            return;
        }
        console_cluster_create(cx, name, (int32_t)parts, (int16_t)rf, kv, nkv);
        return;
    }
    int e = topic_name_validate(name, (int32_t)strlen(name), msg, sizeof(msg));
    int status = 400;
    if (e == KERR_NONE && topic_name_is_internal(name)) {
        e = KERR_INVALID_REQUEST;
        snprintf(msg, sizeof(msg), "Creation of internal topic %s is prohibited.", name);
    }
    if (e == KERR_NONE && topic_find(b, name) != NULL) {
        e = KERR_TOPIC_ALREADY_EXISTS;
        status = 409;
        snprintf(msg, sizeof(msg), "Topic '%s' already exists.", name);
    }
    if (e == KERR_NONE)
        e = topic_name_collision(b, name, msg, sizeof(msg));
    if (e == KERR_NONE && (parts <= 0 || parts > CONSOLE_CREATE_PARTITIONS_MAX)) {
        e = KERR_INVALID_PARTITIONS;
        snprintf(msg, sizeof(msg), "partitions must be 1..%d", CONSOLE_CREATE_PARTITIONS_MAX);
    }
    if (e == KERR_NONE && rf != 1) {
        e = KERR_INVALID_REPLICATION_FACTOR;
        snprintf(msg, sizeof(msg), "Replication factor: %" PRId64 " larger than available brokers: 1.", rf);
    }
    for (int i = 0; i < nkv && e == KERR_NONE; i++)
        e = topic_config_check(kv[i].key, kv[i].value, msg, sizeof(msg));
    if (e == KERR_NONE)
        e = topic_fd_budget_check(b, parts, msg, sizeof(msg));
    if (e != KERR_NONE) {
        console_error(req, status, kerr_name(e), msg);
        return;
    }
    if (console_mutation_charge(cx, (int32_t)parts) != KERR_NONE)
        return;
    struct topic *t = NULL;
    e = topic_create(b, name, (int32_t)parts, kv, nkv, &t, msg, sizeof(msg));
    if (e != KERR_NONE) {
        console_error(req, 500, kerr_name(e), msg);
        return;
    }
    log_line(LOG_LEVEL_INFO, "console", "%s created topic %s (%" PRId64 " partitions)",
             cx->principal, name, parts);
    struct jsonw w;
    jsonw_init(&w, 4096);
    jsonw_obj(&w);
    jsonw_kstr(&w, "name", name);
    jsonw_obj_end(&w);
    console_reply(req, 201, &w, NULL);
}

void console_delete_topic(struct console_ctx *cx, const char *name)
{
    struct broker *b = cx->b;
    const struct cluster_topic *ct = b->cluster != NULL ? cluster_topic_find(b->cluster, name) : NULL;
    if (ct != NULL) {
        /* The cluster's topic, whether or not this broker holds a replica of it. */
        if (!console_allowed(cx, ACL_OP_DESCRIBE, ACL_RES_TOPIC, name) ||
            !console_allowed(cx, ACL_OP_DELETE, ACL_RES_TOPIC, name)) {
            console_error(cx->req, 403, "TOPIC_AUTHORIZATION_FAILED", "not authorized");
            return;
        }
        if (!b->cfg.delete_topic_enable) {
            console_error(cx->req, 400, "TOPIC_DELETION_DISABLED", "delete.topic.enable is false");
            return;
        }
        console_cluster_delete(cx, name, ct->npartitions);
        return;
    }
    struct topic *t = console_topic(cx, name, ACL_OP_DELETE);
    if (t == NULL)
        return;
    if (!b->cfg.delete_topic_enable) {
        console_error(cx->req, 400, "TOPIC_DELETION_DISABLED", "delete.topic.enable is false");
        return;
    }
    if (t->internal) {
        console_error(cx->req, 400, "INVALID_TOPIC_EXCEPTION", "Internal topics cannot be deleted");
        return;
    }
    if (b->cluster != NULL) { /* a topic of this broker only (not internal): none today */
        console_error(cx->req, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no such topic in the cluster");
        return;
    }
    if (console_mutation_charge(cx, t->npartitions) != KERR_NONE)
        return;
    int e = topic_delete(b, t);
    if (e != KERR_NONE) {
        console_error(cx->req, 500, kerr_name(e), "the deletion could not be saved");
        return;
    }
    log_line(LOG_LEVEL_INFO, "console", "%s deleted topic %s", cx->principal, name);
    struct jsonw w;
    jsonw_init(&w, 4096);
    jsonw_obj(&w);
    jsonw_kstr(&w, "name", name);
    jsonw_obj_end(&w);
    console_reply(cx->req, 200, &w, NULL);
}
