/* Fetch (1): hands out log bytes by sendfile — each partition's records field is a file range
 * of a segment. Long-poll: a fetch with less than min_bytes waits (no busy polling) until an
 * append or max_wait_ms; it is re-run from scratch when woken. Sessions are not kept: every
 * response says session id 0, which clients take as "send full fetches". */
#include <stdio.h>
#include <unistd.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "common/logging.h"
#include "common/util.h"
#include "net/loop.h"
#include "proto/messages.h"

static uint8_t empty_records[1];

static void release_files(struct fetch_response *resp)
{
    for (int32_t i = 0; i < resp->n_responses; i++)
        for (int32_t j = 0; j < resp->responses[i].n_partitions; j++) {
            struct krecords *rec = &resp->responses[i].partitions[j].records;
            if (rec->is_file) {
                close(rec->fd);
                rec->is_file = false;
            }
        }
}

/* Builds the response in r->resp; returns the number of record bytes it holds, or -1 when
 * some partition has an error (errors are answered at once). */
static int64_t fetch_build(struct broker *b, struct request *r)
{
    struct fetch_request *req = r->body;
    struct fetch_response *resp = r->resp;
    memset(resp, 0, sizeof(*resp));
    resp->session_id = 0;
    int64_t budget = req->max_bytes > 0 ? req->max_bytes : INT32_MAX;
    if (budget > b->cfg.fetch_max_bytes)
        budget = b->cfg.fetch_max_bytes;
    int64_t total = 0;
    bool error = false;
    int32_t nt = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->responses, nt);
    if (resp->responses == NULL)
        return -2;
    resp->n_responses = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct fetch_request_fetch_topic *ft = &req->topics[i];
        struct fetch_response_fetchable_topic_response *tr = &resp->responses[i];
        struct topic *t;
        if (r->api_version >= 13) {
            t = topic_find_by_id(b, &ft->topic_id);
            tr->topic_id = ft->topic_id;
        } else {
            t = ft->topic.ptr ? topic_find(b, ft->topic.ptr) : NULL;
        }
        tr->topic = ft->topic.ptr ? ft->topic : kstr_of("");
        int32_t np = ft->n_partitions > 0 ? ft->n_partitions : 0;
        RESP_ARRAY(r, tr->partitions, np);
        if (tr->partitions == NULL)
            return -2;
        tr->n_partitions = np;
        for (int32_t j = 0; j < np; j++) {
            struct fetch_request_fetch_partition *fp = &ft->partitions[j];
            struct fetch_response_partition_data *out = &tr->partitions[j];
            out->partition_index = fp->partition;
            out->high_watermark = -1;
            out->last_stable_offset = -1;
            out->log_start_offset = -1;
            out->preferred_read_replica = -1;
            out->n_aborted_transactions = -1;
            out->diverging_epoch.epoch = -1;
            out->diverging_epoch.end_offset = -1;
            out->current_leader.leader_id = -1;
            out->current_leader.leader_epoch = -1;
            out->snapshot_id.end_offset = -1;
            out->snapshot_id.epoch = -1;
            out->records.ptr = empty_records;
            out->records.len = 0;
            if (t == NULL || fp->partition < 0 || fp->partition >= t->npartitions) {
                out->error_code = r->api_version >= 13 && t == NULL ? KERR_UNKNOWN_TOPIC_ID
                                                                    : KERR_UNKNOWN_TOPIC_OR_PARTITION;
                error = true;
                continue;
            }
            if (fp->current_leader_epoch > 0) {
                out->error_code = KERR_UNKNOWN_LEADER_EPOCH;
                error = true;
                continue;
            }
            struct plog *log = t->partitions[fp->partition]->log;
            int64_t end = plog_end_offset(log);
            out->high_watermark = end;
            out->last_stable_offset = end;
            out->log_start_offset = plog_start_offset(log);
            if (fp->fetch_offset == end)
                continue;
            int64_t want = fp->partition_max_bytes;
            if (want > budget)
                want = budget;
            if (want <= 0 && total > 0)
                continue;
            struct log_slice slice;
            int e = plog_read(log, fp->fetch_offset, (int32_t)(want > 0 ? want : 1), end, &slice);
            if (e != KERR_NONE) {
                out->error_code = (int16_t)e;
                error = true;
                continue;
            }
            if (slice.len == 0) {
                close(slice.fd);
                continue;
            }
            out->records.is_file = true;
            out->records.fd = slice.fd;
            out->records.file_offset = slice.position;
            out->records.len = (int32_t)slice.len;
            out->records.ptr = NULL;
            total += (int64_t)slice.len;
            budget -= (int64_t)slice.len;
        }
    }
    return error ? -1 : total;
}

static void fetch_deadline(struct loop *l, void *arg)
{
    (void)l;
    struct request *r = arg;
    struct broker *b = r->broker;
    r->timer_id = 0;
    struct request **pp = &b->fetch_waiters;
    while (*pp && *pp != r)
        pp = &(*pp)->next_pending;
    if (*pp)
        *pp = r->next_pending;
    r->next_pending = NULL;
    fetch_retry(b, r, true);
}

enum request_status handle_fetch(struct broker *b, struct request *r)
{
    struct fetch_request *req = r->body;
    int64_t got = fetch_build(b, r);
    if (got == -2)
        return REQUEST_CLOSE;
    if (got < 0 || got >= req->min_bytes || req->max_wait_ms <= 0 || b->stopping)
        return REQUEST_DONE;
    /* Not enough yet: park until an append or the deadline. */
    release_files(r->resp);
    r->timer_id = loop_timer_add(b->loop, mono_ms() + req->max_wait_ms, fetch_deadline, r);
    r->next_pending = b->fetch_waiters;
    b->fetch_waiters = r;
    return REQUEST_PENDING;
}

bool fetch_retry(struct broker *b, struct request *r, bool deadline_passed)
{
    struct fetch_request *req = r->body;
    if (r->conn == NULL) {
        if (deadline_passed)
            request_free(r);
        return deadline_passed;
    }
    int64_t got = fetch_build(b, r);
    if (got == -2) {
        release_files(r->resp);
        memset(r->resp, 0, sizeof(struct fetch_response));
        request_finish(r);
        return true;
    }
    if (got < 0 || got >= req->min_bytes || deadline_passed) {
        if (r->timer_id) {
            loop_timer_cancel(b->loop, r->timer_id);
            r->timer_id = 0;
        }
        request_finish(r);
        return true;
    }
    release_files(r->resp);
    return false;
}

void broker_wake_fetchers(struct broker *b)
{
    /* Detach first: answering one request may let its connection's next frame in, which
     * can park a new fetch on b->fetch_waiters while we walk. */
    struct request *r = b->fetch_waiters;
    b->fetch_waiters = NULL;
    struct request *keep = NULL, **tail = &keep;
    while (r != NULL) {
        struct request *next = r->next_pending;
        r->next_pending = NULL;
        if (r->conn == NULL) {
            request_free(r); /* client gone: drop it now rather than at its deadline */
        } else if (!fetch_retry(b, r, false)) {
            *tail = r;
            tail = &r->next_pending;
        }
        r = next;
    }
    *tail = b->fetch_waiters;
    b->fetch_waiters = keep;
}
