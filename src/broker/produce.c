/* Produce (0): appends each partition's record batch to its log. acks=0 gets no answer (an
 * error closes the connection, as Kafka does); acks=1 is answered once the write reached the
 * page cache; acks=all waits for the group commit's fdatasync (gregor.acks.all.fsync), then,
 * on a partition led with replication, for the high watermark to pass its batch (every ISR
 * member has it), within the request's timeout; min.insync.replicas refuses it before the
 * append (NOT_ENOUGH_REPLICAS) and after it (NOT_ENOUGH_REPLICAS_AFTER_APPEND), as Kafka. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/kutil.h"
#include "broker/replica.h"
#include "broker/txn_verify.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/convert.h"
#include "broker/authorizer.h"
#include "proto/messages.h"

/* What a produce remembers while it appends (possibly over several loop turns) and, at
 * acks=all, until its flush: each partition it appended to. */
struct produce_wait {
    int n;
    struct partition **parts;
    int64_t *ends;                 /* each one's log end after this request's batch */
    int32_t *epochs;               /* the leadership it was led in with replication at the
                                    * append (partition_leadership), -1 when it was not */
    struct produce_response_partition_produce_response **outs;
    int32_t next_topic, next_part; /* where appending goes on */
    bool any_error, txn_without_id, bad_acks;
    bool txn_denied;               /* no WRITE on the transactional id (authorizer.c) */
    bool *topic_denied;            /* per request topic: no WRITE on it */
    uint64_t timer;                /* the next slice's broker timer, 0 when none */
    struct waiter durable;         /* acks=all: until every partition's durable point passed,
                                    * then (as WAITER_ON_APPEND) its high watermark */
    int64_t deadline_ms;           /* mono: timeout_ms after the request came */
    /* acks=all with the fsync: the partitions led with replication, kept while the durable
     * wait drops each partition it saw synced; they wait for their followers next. */
    int nreplicated;
    struct partition **rparts;
    int64_t *rends;
    int32_t *repochs;
    struct produce_response_partition_produce_response **routs;
    struct txn_verify_req *verify;  /* KIP-890's verdicts and guards, NULL when none asked */
};

static bool produce_replicated(struct waiter *w, enum waiter_event ev);
static enum request_status produce_start(struct broker *b, struct request *r);
static void produce_verified(struct request *r);

/* Appending validates every record, and a compressed batch may inflate up to 256 MiB: a
 * request over many partitions appends for at most BROKER_TURN_US per loop turn, then yields
 * to the other connections (its own next request waits, as for any request still up). */

static int append_batch(struct broker *b, struct request *r, struct partition *p,
                        struct krecords *rec,
                        struct produce_response_partition_produce_response *out, int64_t *end);

/* Produce v0-2 with a magic 0/1 message set: converted to one batch (CRCs checked, offsets
 * assigned by the append), as Kafka 3.x's LogValidator did. v3+ refuses those sets as
 * INVALID_RECORD (batch validation), as Kafka's ProduceRequest does. */
static int append_partition(struct broker *b, struct request *r, struct partition *p,
                            struct krecords *rec,
                            int16_t version, struct produce_response_partition_produce_response *out,
                            int64_t *end)
{
    bool legacy = rec->ptr != NULL && convert_is_legacy(rec->ptr, (size_t)rec->len);
    if (legacy && version > 2) {
        /* Kafka's ProduceRequest checks the magic before any size (17 bytes are enough). */
        out->error_message = kstr_of("Produce requests with version 3 or more may only carry "
                                     "record batches of magic 2");
        return KERR_INVALID_RECORD;
    }
    if (!legacy)
        return append_batch(b, r, p, rec, out, end);
    uint8_t *batch = NULL;
    size_t len = 0;
    int32_t n = 0;
    int e = convert_legacy_to_batch(rec->ptr, (size_t)rec->len, CONVERT_UP_MAX, &batch, &len, &n);
    if (e != KERR_NONE) {
        LOG_DEBUG("KafkaApis", "produce v%d: message set of %d bytes refused: %s", version,
                  rec->len, kerr_name(e));
        return e;
    }
    struct krecords converted = {.ptr = batch, .len = (int32_t)len};
    e = append_batch(b, r, p, &converted, out, end);
    free(batch);
    return e;
}

/* Kafka's OutOfOrderSequenceException message, in the response and (rate-limited) the log:
 * the sequence the producer sent and the one this replica's state ends with. */
static void out_of_order_message(struct request *r, const struct partition *p,
                                 const struct batch_header *h,
                                 struct produce_response_partition_produce_response *out)
{
    const struct producer_entry *e = producer_state_find(&p->producers, h->producer_id);
    int32_t last = e != NULL && e->n > 0 ? e->batches[e->n - 1].last_seq : -1;
    char msg[640]; /* a topic name is at most 249 characters */
    snprintf(msg, sizeof(msg), "Out of order sequence number for producer %" PRId64 " at offset %"
             PRId64 " in partition %s-%d: %d (incoming seq. number), %d (current end sequence "
             "number)", h->producer_id, partition_log_end(p), p->topic->name, p->index,
             h->base_sequence, last);
    LOG_LIMITED(LOG_LEVEL_INFO, "ReplicaManager", "%s (producer epoch %d, leader epoch %d)", msg,
                h->producer_epoch, p->leader_epoch);
    char *copy = request_strdup(r, msg);
    out->error_message = copy != NULL ? kstr_of(copy) : kstr_null();
}

static int append_batch(struct broker *b, struct request *r, struct partition *p,
                        struct krecords *rec,
                        struct produce_response_partition_produce_response *out, int64_t *end)
{
    if (rec->ptr == NULL || rec->len < BATCH_HEADER_SIZE)
        return KERR_CORRUPT_MESSAGE;
    struct batch_header h;
    batch_header_decode(rec->ptr, &h);
    if (batch_total_size(&h) != rec->len) {
        out->error_message = kstr_of("Produce requests must carry exactly one record batch");
        return KERR_INVALID_RECORD;
    }
    struct log_append_info info;
    bool dup = false;
    int e = partition_append_as_leader(p, rec->ptr, (size_t)rec->len, now_ms(), &info, &dup);
    if (e == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER && h.producer_id >= 0)
        out_of_order_message(r, p, &h, out);
    if (e != KERR_NONE)
        return e;
    if (dup) {
        /* A retry: not appended again, answered as the original once it is where acks asks
         * (Kafka waits for a duplicate's offsets as for any append). */
        *end = info.last_offset + 1;
        out->base_offset = info.base_offset;
        out->log_start_offset = info.log_start_offset;
        return KERR_NONE;
    }
    *end = info.last_offset + 1;
    metrics_produced(&p->topic->counters, (uint64_t)h.records_count, (uint64_t)rec->len);
    out->base_offset = info.base_offset;
    out->log_append_time_ms = info.log_append_time;
    out->log_start_offset = info.log_start_offset;
    broker_mark_dirty(b, p);
    return KERR_NONE;
}

/* Kafka's RequestUtils.hasTransactionalRecords: any partition's batch with the transactional
 * bit. Without a transactional id such a request is refused whole. */
static bool has_transactional_batch(const struct produce_request *req)
{
    for (int32_t i = 0; i < req->n_topic_data; i++)
        for (int32_t j = 0; j < req->topic_data[i].n_partition_data; j++) {
            const struct krecords *rec = &req->topic_data[i].partition_data[j].records;
            if (rec->ptr != NULL && rec->len >= BATCH_HEADER_SIZE &&
                rec->ptr[CONVERT_MAGIC_OFFSET] == BATCH_MAGIC_V2 &&
                (be16_get(rec->ptr + 21) & BATCH_ATTR_TRANSACTIONAL))
                return true;
        }
    return false;
}

/* Kafka's appendRecordsToLeader: acks=all is refused before the append when the committed ISR
 * is smaller than min.insync.replicas (on a partition led with replication; one node has no
 * ISR to count). */
static bool not_enough_replicas(struct broker *b, struct request *r, struct topic *t,
                                struct partition *p,
                                struct produce_response_partition_produce_response *out)
{
    if (!p->repl.leading)
        return false;
    int32_t min_isr = replica_min_insync(b, t);
    if (p->repl.ncommitted >= min_isr)
        return false;
    /* Kafka's message, its ISR printed as a Scala Set. */
    char isr[12 * PARTITION_REPLICAS_MAX + 8], msg[768];
    int n = snprintf(isr, sizeof(isr), "Set(");
    for (int i = 0; i < p->repl.ncommitted; i++)
        n += snprintf(isr + n, sizeof(isr) - (size_t)n, "%s%d", i ? ", " : "", p->repl.committed[i]);
    snprintf(isr + n, sizeof(isr) - (size_t)n, ")");
    snprintf(msg, sizeof(msg), "The size of the current ISR %s is insufficient to satisfy the "
             "min.isr requirement of %d for partition %s-%d", isr, min_isr, t->name, p->index);
    char *copy = request_strdup(r, msg);
    out->error_message = copy != NULL ? kstr_of(copy) : kstr_null();
    return true;
}

/* Kafka's LogValidator on a compacted topic: every record needs a key; a batch holding one
 * without is refused whole (INVALID_RECORD), each such record named in record_errors (the
 * first KEYLESS_ERRORS_MAX of them) and the first three in the message, as Kafka's
 * processRecordErrors. A batch that does not read back (size, CRC, records) is left to the
 * append, which names its own error. */
#define KEYLESS_ERRORS_MAX 4096
static bool compacted_keyless(struct request *r, struct topic *t, int32_t index,
                              const struct krecords *rec,
                              struct produce_response_partition_produce_response *out)
{
    const uint8_t *batch = rec->ptr;
    size_t len = rec->ptr != NULL ? (size_t)rec->len : 0;
    uint8_t *converted = NULL;
    int32_t nconv = 0;
    if (batch != NULL && convert_is_legacy(batch, len) &&
        (r->api_version > 2 ||
         convert_legacy_to_batch(batch, len, CONVERT_UP_MAX, &converted, &len, &nconv) != KERR_NONE))
        return false;
    if (converted != NULL)
        batch = converted;
    struct batch_header h;
    int32_t *bad = NULL, nbad = 0, nlisted = 0;
    struct batch_record_iter it;
    bool readable = batch != NULL && len >= BATCH_HEADER_SIZE;
    if (readable) {
        batch_header_decode(batch, &h);
        readable = batch_total_size(&h) == (int64_t)len && batch_compute_crc(batch, len) == h.crc &&
                   !(h.attributes & BATCH_ATTR_CONTROL) && h.records_count > 0;
    }
    if (readable && batch_records_open(&it, batch, len, BATCH_INFLATE_MAX) == KERR_NONE) {
        struct batch_record rc;
        int got;
        int32_t cap = h.records_count < KEYLESS_ERRORS_MAX ? h.records_count : KEYLESS_ERRORS_MAX;
        bad = malloc((size_t)cap * sizeof(*bad));
        while (bad != NULL && (got = batch_records_next(&it, &rc)) == 1)
            if (rc.key_len < 0) {
                if (nlisted < cap)
                    bad[nlisted++] = it.index - 1;
                nbad++;
            }
        if (bad != NULL && got < 0)
            nbad = 0; /* corrupt: the append refuses it */
        batch_records_close(&it);
    }
    free(converted);
    if (nbad == 0) {
        free(bad);
        return false;
    }
    char each[600], msg[2400];
    snprintf(each, sizeof(each), "Compacted topic cannot accept message without key in topic "
             "partition %s-%d.", t->name, index);
    out->record_errors = request_alloc(r, (size_t)nlisted * sizeof(*out->record_errors));
    char *each_copy = request_strdup(r, each);
    int o = snprintf(msg, sizeof(msg), "One or more records have been rejected due to %d record "
                     "errors in total, and only showing the first three errors at most: [", nbad);
    for (int32_t i = 0; i < nlisted; i++) {
        if (out->record_errors != NULL) {
            out->record_errors[i].batch_index = bad[i];
            out->record_errors[i].batch_index_error_message =
                each_copy != NULL ? kstr_of(each_copy) : kstr_null();
        }
        if (i < 3 && o > 0 && (size_t)o < sizeof(msg))
            o += snprintf(msg + o, sizeof(msg) - (size_t)o, "%sRecordError(batchIndex=%d, "
                          "message='%s')", i ? ", " : "", bad[i], each);
    }
    if (o > 0 && (size_t)o < sizeof(msg))
        snprintf(msg + o, sizeof(msg) - (size_t)o, "]");
    out->n_record_errors = out->record_errors != NULL ? nlisted : 0;
    char *copy = request_strdup(r, msg);
    out->error_message = copy != NULL ? kstr_of(copy) : kstr_null();
    free(bad);
    return true;
}

/* Appends partition after partition from where the request stopped, until deadline_us (mono);
 * true once every partition is done. */
static bool produce_run(struct broker *b, struct request *r, int64_t deadline_us)
{
    struct produce_request *req = r->body;
    struct produce_response *resp = r->resp;
    struct produce_wait *wait = r->state;
    for (; wait->next_topic < resp->n_responses; wait->next_topic++, wait->next_part = 0) {
        struct produce_request_topic_produce_data *td = &req->topic_data[wait->next_topic];
        struct produce_response_topic_produce_response *tr = &resp->responses[wait->next_topic];
        /* v13 names topics by id (KIP-516). */
        struct topic *t = r->api_version >= 13 ? topic_find_by_id(b, &td->topic_id)
                                                : topic_find_name(b, td->name);
        /* On a cluster: the partition's name for the leader check. */
        const char *cname = r->api_version >= 13 && t == NULL
                                ? broker_cluster_topic_by_id(b, &td->topic_id)
                                : NULL;
        struct kstr tname = t != NULL ? kstr_of(t->name) : cname ? kstr_of(cname) : td->name;
        for (; wait->next_part < tr->n_partition_responses; wait->next_part++) {
            if (mono_us() >= deadline_us)
                return false;
            if (wait->next_part == 0 && t != NULL)
                t->counters.produce_requests++; /* TotalProduceRequests: once per topic */
            struct produce_request_partition_produce_data *pd = &td->partition_data[wait->next_part];
            struct produce_response_partition_produce_response *out =
                &tr->partition_responses[wait->next_part];
            int e;
            int64_t end = -1;
            struct partition *p = NULL;
            if (wait->txn_without_id)
                e = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            else if (wait->bad_acks)
                e = KERR_INVALID_REQUIRED_ACKS;
            else if (wait->txn_denied)
                e = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            else if (wait->topic_denied[wait->next_topic])
                e = KERR_TOPIC_AUTHORIZATION_FAILED; /* before its existence, as Kafka */
            else if (broker_leader_check(b, tname, pd->index) != KERR_NONE)
                e = KERR_NOT_LEADER_OR_FOLLOWER; /* the client refreshes Metadata, retries */
            else if (t == NULL && r->api_version >= 13)
                e = KERR_UNKNOWN_TOPIC_ID;
            else if (t == NULL || pd->index < 0 || pd->index >= t->npartitions)
                e = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (t->internal)
                e = KERR_INVALID_TOPIC_EXCEPTION; /* only the coordinators write them, as Kafka */
            else if (req->acks == -1 && not_enough_replicas(b, r, t, t->partitions[pd->index], out))
                e = KERR_NOT_ENOUGH_REPLICAS;
            else if (t->cfg.compact && compacted_keyless(r, t, pd->index, &pd->records, out))
                e = KERR_INVALID_RECORD;
            else if (b->cluster != NULL &&
                     partition_leadership(t->partitions[pd->index]) < 0)
                e = KERR_NOT_LEADER_OR_FOLLOWER; /* led in the view, not yet in the partition */
            else if ((e = txn_verify_check(b, r, wait->verify, wait->next_topic, wait->next_part,
                                           t->partitions[pd->index], &pd->records, out)) !=
                     KERR_NONE)
                ; /* not in the producer's transaction, or not verified (KIP-890) */
            else {
                p = t->partitions[pd->index];
                e = append_partition(b, r, p, &pd->records, r->api_version, out, &end);
                if (e == KERR_NONE)
                    txn_verify_appended(b, p, &pd->records);
            }
            out->error_code = (int16_t)e;
            if (e != KERR_NONE) {
                wait->any_error = true;
                LOG_DEBUG("KafkaApis", "produce to %s-%d failed: %s",
                          t ? t->name : td->name.ptr ? td->name.ptr : "?", pd->index, kerr_name(e));
            } else if (p != NULL && out->log_start_offset >= 0) {
                GREGOR_ASSERT(end > 0);
                wait->parts[wait->n] = p;
                wait->ends[wait->n] = end;
                wait->epochs[wait->n] = partition_leadership(p);
                wait->outs[wait->n] = out;
                wait->n++;
            }
        }
    }
    return true;
}

/* Every partition is done: answer as acks asks. */
static bool produce_durable(struct waiter *w, enum waiter_event ev);

/* Kafka's checkEnoughReplicasReachOffset for each partition still waited for: met when the
 * high watermark passed its batch (NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below
 * min.insync.replicas meanwhile), NOT_LEADER_OR_FOLLOWER when leadership went. A settled
 * partition leaves the list; true once none is left. */
static bool replication_settle(struct broker *b, struct produce_wait *wait)
{
    int k = 0;
    for (int i = 0; i < wait->n; i++) {
        struct partition *p = wait->parts[i];
        int e;
        if (!partition_acks_all_settled(p, wait->epochs[i], wait->ends[i], &e)) {
            wait->parts[k] = p;
            wait->ends[k] = wait->ends[i];
            wait->epochs[k] = wait->epochs[i];
            wait->outs[k] = wait->outs[i];
            k++;
            continue;
        }
        if (e != KERR_NONE) {
            wait->outs[i]->error_code = (int16_t)e;
            wait->outs[i]->base_offset = -1;
        } else if (p->repl.nisr < replica_min_insync(b, p->topic)) {
            wait->outs[i]->error_code = KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
            wait->outs[i]->base_offset = -1;
        }
    }
    wait->n = k;
    return k == 0;
}

/* acks=all once durable: the partitions led with replication at their append wait for their
 * high watermark (parked as a fetch is, on WAITER_ON_APPEND: a follower's fetch that moves it
 * wakes them), or answer NOT_LEADER_OR_FOLLOWER when leadership went meanwhile; the others
 * are done. */
static enum request_status replication_wait(struct broker *b, struct request *r)
{
    struct produce_wait *wait = r->state;
    int k = 0;
    for (int i = 0; i < wait->n; i++)
        if (wait->epochs[i] >= 0 && wait->outs[i]->error_code == KERR_NONE) {
            wait->parts[k] = wait->parts[i];
            wait->ends[k] = wait->ends[i];
            wait->epochs[k] = wait->epochs[i];
            wait->outs[k] = wait->outs[i];
            k++;
        }
    wait->n = k;
    if (replication_settle(b, wait) || b->stopping || b->cluster == NULL) {
        for (int i = 0; i < wait->n; i++) {
            wait->outs[i]->error_code = KERR_REQUEST_TIMED_OUT; /* shutting down */
            wait->outs[i]->base_offset = -1;
        }
        wait->n = 0;
        return REQUEST_DONE;
    }
    wait->durable = (struct waiter){0};
    waiter_park(&b->waiters, &wait->durable, WAITER_ON_APPEND, wait->deadline_ms,
                produce_replicated, r);
    request_defer(r);
    return REQUEST_PENDING;
}

static bool produce_replicated(struct waiter *w, enum waiter_event ev)
{
    struct request *r = w->arg;
    struct produce_wait *wait = r->state;
    if (ev == WAITER_CHECK)
        return replication_settle(r->broker, wait);
    if (ev == WAITER_DEADLINE) {
        /* Kafka's DelayedProduce expiring: the partitions not replicated in time. */
        replication_settle(r->broker, wait);
        for (int i = 0; i < wait->n; i++) {
            wait->outs[i]->error_code = KERR_REQUEST_TIMED_OUT;
            wait->outs[i]->base_offset = -1;
        }
        wait->n = 0;
    }
    GREGOR_ASSERT(wait->n == 0);
    request_finish(r);
    return true;
}

/* acks=all with the fsync, every partition synced: the ones led with replication wait for
 * their followers next; none left, the request is done. */
static enum request_status produce_synced(struct broker *b, struct request *r)
{
    struct produce_wait *wait = r->state;
    GREGOR_ASSERT(wait->n == 0);
    if (wait->nreplicated == 0)
        return REQUEST_DONE;
    wait->n = wait->nreplicated;
    memcpy(wait->parts, wait->rparts, sizeof(wait->parts[0]) * (size_t)wait->n);
    memcpy(wait->ends, wait->rends, sizeof(wait->ends[0]) * (size_t)wait->n);
    memcpy(wait->epochs, wait->repochs, sizeof(wait->epochs[0]) * (size_t)wait->n);
    memcpy(wait->outs, wait->routs, sizeof(wait->outs[0]) * (size_t)wait->n);
    wait->nreplicated = 0;
    return replication_wait(b, r);
}

static enum request_status produce_outcome(struct broker *b, struct request *r)
{
    struct produce_request *req = r->body;
    struct produce_wait *wait = r->state;
    if (req->acks == 0)
        return wait->any_error ? REQUEST_CLOSE : REQUEST_NO_REPLY;
    if (req->acks == -1 && wait->n > 0 && !b->cfg.acks_all_fsync)
        return replication_wait(b, r);
    if (req->acks == -1 && wait->n > 0 && b->cfg.acks_all_fsync) {
        /* A request appended over several turns: a group commit between its slices saw no
         * durable waiter and left the partitions it had appended to the page cache (acks=1's
         * policy). They are owed a sync now. */
        bool unsynced = false;
        for (int i = 0; i < wait->n; i++) {
            if (partition_durable_offset(wait->parts[i]) < wait->ends[i]) {
                broker_mark_dirty(b, wait->parts[i]);
                unsynced = true;
            }
            if (wait->epochs[i] >= 0) { /* led with replication at the append */
                wait->rparts[wait->nreplicated] = wait->parts[i];
                wait->rends[wait->nreplicated] = wait->ends[i];
                wait->repochs[wait->nreplicated] = wait->epochs[i];
                wait->routs[wait->nreplicated] = wait->outs[i];
                wait->nreplicated++;
            }
        }
        if (!unsynced) {
            /* Only duplicates of batches synced already: no group commit is coming. */
            wait->n = 0;
            return produce_synced(b, r);
        }
        waiter_park(&b->waiters, &wait->durable, WAITER_ON_DURABLE, -1, produce_durable, r);
        /* Appended: the next request of this connection may come in while the disk syncs
         * (its reply still goes out after this one). */
        request_defer(r);
        return REQUEST_PENDING;
    }
    return REQUEST_DONE;
}

static void unlink_sliced(struct broker *b, struct request *r)
{
    struct request **pp = &b->produce_sliced;
    while (*pp != NULL && *pp != r)
        pp = &(*pp)->next_pending;
    GREGOR_ASSERT(*pp == r);
    *pp = r->next_pending;
    r->next_pending = NULL;
}

static void produce_turn(struct broker *b, void *arg)
{
    struct request *r = arg;
    struct produce_wait *wait = r->state;
    wait->timer = 0;
    if (!produce_run(b, r, mono_us() + BROKER_TURN_US)) {
        wait->timer = broker_timer_add(b, mono_ms(), produce_turn, r);
        return;
    }
    unlink_sliced(b, r);
    request_continue(r, produce_outcome(b, r));
}

/* Drops t's partitions from one request's lists (they are about to be freed). */
static void forget_in(struct produce_wait *wait, const struct topic *t)
{
    int k = 0;
    for (int i = 0; i < wait->nreplicated; i++) {
        if (wait->rparts[i]->topic == t)
            continue;
        wait->rparts[k] = wait->rparts[i];
        wait->rends[k] = wait->rends[i];
        wait->repochs[k] = wait->repochs[i];
        wait->routs[k] = wait->routs[i];
        k++;
    }
    wait->nreplicated = k;
}

void produce_forget_topic(struct broker *b, const struct topic *t)
{
    /* Waiting for followers: the deleted topic's partitions answer as appended. */
    for (struct waiter *w = b->waiters.parked[WAITER_ON_APPEND]; w != NULL; w = w->next) {
        if (w->fn != produce_replicated)
            continue;
        struct request *r = w->arg;
        struct produce_wait *wait = r->state;
        int k = 0;
        for (int i = 0; i < wait->n; i++) {
            if (wait->parts[i]->topic == t)
                continue;
            wait->parts[k] = wait->parts[i];
            wait->ends[k] = wait->ends[i];
            wait->epochs[k] = wait->epochs[i];
            wait->outs[k] = wait->outs[i];
            k++;
        }
        wait->n = k;
        if (k == 0)
            b->appended = true; /* its check answers it */
    }
    for (struct waiter *w = b->waiters.parked[WAITER_ON_DURABLE]; w != NULL; w = w->next)
        if (w->fn == produce_durable)
            forget_in(((struct request *)w->arg)->state, t);
    for (struct waiter *w = b->waiters.ready; w != NULL; w = w->next)
        if (w->fn == produce_durable)
            forget_in(((struct request *)w->arg)->state, t);
    for (struct request *r = b->produce_sliced; r != NULL; r = r->next_pending) {
        struct produce_wait *wait = r->state;
        int k = 0;
        for (int i = 0; i < wait->n; i++) {
            if (wait->parts[i]->topic == t)
                continue; /* appended, then deleted: answered as appended, never synced */
            wait->parts[k] = wait->parts[i];
            wait->ends[k] = wait->ends[i];
            wait->epochs[k] = wait->epochs[i];
            wait->outs[k] = wait->outs[i];
            k++;
        }
        wait->n = k;
    }
}

void produce_shutdown(struct broker *b)
{
    txn_verify_shutdown(b); /* produces waiting for a coordinator go on now */
    while (b->produce_sliced != NULL) {
        struct request *r = b->produce_sliced;
        struct produce_wait *wait = r->state;
        unlink_sliced(b, r);
        if (wait->timer != 0)
            broker_timer_cancel(b, wait->timer);
        produce_run(b, r, INT64_MAX);
        request_continue(r, produce_outcome(b, r));
    }
}

enum request_status handle_produce(struct broker *b, struct request *r)
{
    struct produce_request *req = r->body;
    struct produce_response *resp = r->resp;
    int16_t acks = req->acks;
    int nparts = 0;
    for (int32_t i = 0; i < req->n_topic_data; i++)
        nparts += req->topic_data[i].n_partition_data > 0 ? req->topic_data[i].n_partition_data : 0;
    struct produce_wait *wait = request_alloc(r, sizeof(*wait));
    RESP_ARRAY(r, resp->responses, req->n_topic_data);
    if (wait == NULL || resp->responses == NULL)
        return REQUEST_CLOSE;
    memset(wait, 0, sizeof(*wait));
    wait->parts = request_alloc(r, sizeof(*wait->parts) * (size_t)(nparts + 1));
    wait->outs = request_alloc(r, sizeof(*wait->outs) * (size_t)(nparts + 1));
    wait->ends = request_alloc(r, sizeof(*wait->ends) * (size_t)(nparts + 1));
    wait->epochs = request_alloc(r, sizeof(*wait->epochs) * (size_t)(nparts + 1));
    wait->repochs = request_alloc(r, sizeof(*wait->repochs) * (size_t)(nparts + 1));
    wait->rparts = request_alloc(r, sizeof(*wait->rparts) * (size_t)(nparts + 1));
    wait->routs = request_alloc(r, sizeof(*wait->routs) * (size_t)(nparts + 1));
    wait->rends = request_alloc(r, sizeof(*wait->rends) * (size_t)(nparts + 1));
    if (wait->parts == NULL || wait->outs == NULL || wait->ends == NULL ||
        wait->epochs == NULL || wait->repochs == NULL ||
        wait->rparts == NULL || wait->routs == NULL || wait->rends == NULL)
        return REQUEST_CLOSE;
    wait->deadline_ms = mono_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 0);
    wait->bad_acks = acks != 0 && acks != 1 && acks != -1;
    /* Kafka answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition, before anything
     * else, when a transactional batch comes without a transactional id (whatever its
     * producer id); with one, the batches are appended and the partition tracks the
     * producer's transaction until its marker (WriteTxnMarkers). */
    wait->txn_without_id = req->transactional_id.ptr == NULL && has_transactional_batch(req);
    r->state = wait;
    resp->n_responses = req->n_topic_data > 0 ? req->n_topic_data : 0;
    /* Kafka's checks (KafkaApis.handleProduceRequest): WRITE on the transactional id, then
     * WRITE on each topic. */
    wait->txn_denied = req->transactional_id.ptr != NULL &&
                       !authorize_kstr(b, r, ACL_OP_WRITE, ACL_RES_TRANSACTIONAL_ID,
                                       req->transactional_id.ptr, req->transactional_id.len);
    RESP_ARRAY(r, wait->topic_denied, resp->n_responses);
    if (wait->topic_denied == NULL)
        return REQUEST_CLOSE;
    for (int32_t i = 0; i < resp->n_responses; i++) {
        struct produce_request_topic_produce_data *td = &req->topic_data[i];
        struct topic *t = r->api_version >= 13 ? topic_find_by_id(b, &td->topic_id) : NULL;
        wait->topic_denied[i] =
            t != NULL ? !authorize(b, r, ACL_OP_WRITE, ACL_RES_TOPIC, t->name, true)
            : r->api_version >= 13 ? false /* UNKNOWN_TOPIC_ID */
            : !authorize_kstr(b, r, ACL_OP_WRITE, ACL_RES_TOPIC, td->name.ptr, td->name.len);
    }
    for (int32_t i = 0; i < resp->n_responses; i++) {
        struct produce_request_topic_produce_data *td = &req->topic_data[i];
        struct produce_response_topic_produce_response *tr = &resp->responses[i];
        tr->name = td->name;
        tr->topic_id = td->topic_id;
        int32_t np = td->n_partition_data > 0 ? td->n_partition_data : 0;
        RESP_ARRAY(r, tr->partition_responses, np);
        if (tr->partition_responses == NULL)
            return REQUEST_CLOSE;
        tr->n_partition_responses = np;
        for (int32_t j = 0; j < np; j++) {
            struct produce_response_partition_produce_response *out = &tr->partition_responses[j];
            /* LogAppendTimeMs and LogStartOffset -1, no CurrentLeader (v10+) */
            produce_response_partition_produce_response_set_defaults(out);
            out->index = td->partition_data[j].index;
            out->base_offset = -1;
            out->error_message = kstr_null();
        }
    }
    /* Client quotas (KafkaApis.handleProduceRequest): the request's size against the
     * producer_byte_rate that applies; over it, the answer carries the throttle time (set by
     * request_finish, with the request quota's if larger) and the connection is muted that
     * long once it is sent (KIP-219). */
    request_quota_record(r, QUOTA_PRODUCER_BYTE_RATE, (double)r->frame_len);
    /* KIP-890: a transactional batch that would start a transaction waits for the
     * coordinator's word first. */
    if (!wait->txn_without_id && !wait->bad_acks && !wait->txn_denied &&
        txn_verify_produce(b, r, &wait->verify, produce_verified))
        return REQUEST_PENDING;
    return produce_start(b, r);
}

/* The appends, from the first partition: done in this turn, or sliced over the next ones. */
static enum request_status produce_start(struct broker *b, struct request *r)
{
    struct produce_wait *wait = r->state;
    if (produce_run(b, r, mono_us() + BROKER_TURN_US))
        return produce_outcome(b, r);
    r->next_pending = b->produce_sliced;
    b->produce_sliced = r;
    wait->timer = broker_timer_add(b, mono_ms(), produce_turn, r);
    return REQUEST_PENDING;
}

/* The coordinator answered a verification the produce waited for. */
static void produce_verified(struct request *r)
{
    request_continue(r, produce_start(r->broker, r));
}

/* acks=all: met once every partition's durable point passed this request's batch, or the
 * group commit that covered it failed (that partition answers KAFKA_STORAGE_ERROR). A met
 * partition leaves the list: once all have, nothing here points at a partition any more. */
static bool produce_durable(struct waiter *w, enum waiter_event ev)
{
    struct request *r = w->arg;
    struct produce_wait *wait = r->state;
    if (ev != WAITER_CHECK) {
        request_continue(r, produce_synced(r->broker, r)); /* durable here: now the followers */
        return true;
    }
    int k = 0;
    for (int i = 0; i < wait->n; i++) {
        struct partition *p = wait->parts[i];
        if (partition_durable_offset(p) >= wait->ends[i])
            continue;
        if (p->flush_failed && p->commit_end >= wait->ends[i]) {
            wait->outs[i]->error_code = KERR_KAFKA_STORAGE_ERROR;
            wait->outs[i]->base_offset = -1;
            continue;
        }
        wait->parts[k] = p;
        wait->ends[k] = wait->ends[i];
        wait->epochs[k] = wait->epochs[i];
        wait->outs[k] = wait->outs[i];
        k++;
    }
    wait->n = k;
    return k == 0;
}
