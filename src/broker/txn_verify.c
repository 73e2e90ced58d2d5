/* txn_verify: KIP-890 part 1 on the partition leader, as Kafka's ReplicaManager
 * (maybeStartTransactionVerification), AddPartitionsToTxnManager and UnifiedLog's
 * VerificationGuard. A transactional batch that would start a transaction on a partition (its
 * producer has none ongoing there) is appended only once the coordinator said the partition is
 * in the producer's ongoing transaction, and only while the guard stored before asking still
 * holds: a marker of the producer that lands in between makes the append fail, so a late batch
 * of an ended transaction cannot open a transaction no coordinator knows (a hanging one, which
 * holds the last stable offset and read_committed consumers forever).
 *
 * The guard table: per (topic, partition, producer id) a guard number and the producer's last
 * marker offset on the partition when it was stored (partition.c records every marker there),
 * so a marker since shows as a changed offset. A transactional append of the producer there
 * removes it, as Kafka's updateProducers (the transaction then has its first offset). Bounded
 * (GUARDS_MAX: idle ones go first, then the oldest). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "broker/txn_verify.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/convert.h"
#include "log/producer_state.h"
#include "net/client.h"
#include "partition/partition.h"

#define WHO "AddPartitionsToTxnManager"
#define GUARD_BUCKETS 4096
#define GUARDS_MAX 100000
/* A guard untouched this long is held by no produce (one waits at most ASK_TIMEOUT_MAX_MS for
 * its answer, then appends): a full table drops those first. */
#define GUARD_IDLE_MS 120000
/* Kafka's broker-to-coordinator request timeout (request.timeout.ms), and the least a produce
 * of a tiny timeout gets for its question. */
#define ASK_TIMEOUT_MAX_MS 30000
#define ASK_TIMEOUT_MIN_MS 100
/* No producer entry on the partition when the guard was stored. */
#define NO_ENTRY (-2)

struct guard {
    char *topic;                    /* owned */
    int32_t partition;
    int64_t producer_id;
    uint64_t value;                 /* never 0 */
    int64_t marker_seen;            /* the producer's last marker offset then, or NO_ENTRY */
    int64_t stored_ms;              /* mono */
    struct guard *next;             /* bucket chain */
};

/* A question to a remote coordinator: malloc'ed, as the client borrows the body until its
 * answer, which may come after the produce was answered (shutdown). */
struct ask {
    struct txn_verify *v;           /* NULL once detached (shutdown) */
    struct txn_verify_req *req;     /* the produce's (its arena), NULL once detached */
    struct add_partitions_to_txn_request body;
    struct add_partitions_to_txn_request_add_partitions_to_txn_transaction txn;
    struct add_partitions_to_txn_request_add_partitions_to_txn_topic *topics;
    int32_t *indexes;
    char *strings;                  /* the id and the topics' names */
    int n;                          /* partitions asked */
    struct ask *prev, *next;        /* in v->asks */
};

struct txn_verify {
    struct broker *b;
    struct guard *buckets[GUARD_BUCKETS];
    int nguards;
    uint64_t next_value;
    struct ask *asks;               /* waiting for their answer */
};

/* One partition of the produce. */
struct verify_part {
    uint64_t guard;                 /* 0: not asked */
    int16_t error;                  /* the verdict (KERR_NONE: in the transaction) */
};

struct txn_verify_req {
    struct request *r;
    void (*resume)(struct request *r);
    int32_t ntopics;
    int32_t *first;                 /* per produce topic: its first part in parts */
    struct verify_part *parts;
    int nasked;
    bool generic_errors;            /* produce v11+: TRANSACTION_ABORTABLE as it is */
};

/* ---- the guard table ---- */

static uint64_t key_hash(const char *topic, int32_t partition, int64_t pid)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = topic; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ull;
    h = (h ^ (uint64_t)(uint32_t)partition) * 1099511628211ull;
    h = (h ^ (uint64_t)pid) * 1099511628211ull;
    return h;
}

static struct guard **guard_slot(struct txn_verify *v, const char *topic, int32_t partition,
                                 int64_t pid)
{
    struct guard **pp = &v->buckets[key_hash(topic, partition, pid) % GUARD_BUCKETS];
    while (*pp != NULL && !((*pp)->partition == partition && (*pp)->producer_id == pid &&
                            strcmp((*pp)->topic, topic) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void guard_unlink(struct txn_verify *v, struct guard **pp)
{
    struct guard *g = *pp;
    *pp = g->next;
    free(g->topic);
    free(g);
    v->nguards--;
    GREGOR_ASSERT(v->nguards >= 0);
}

/* The table is full: the idle guards go, else the oldest (its produce, if still waiting,
 * fails its check). */
static void guard_make_room(struct txn_verify *v)
{
    int64_t now = mono_ms();
    struct guard **oldest = NULL;
    for (int i = 0; i < GUARD_BUCKETS; i++)
        for (struct guard **pp = &v->buckets[i]; *pp != NULL;) {
            if (now - (*pp)->stored_ms > GUARD_IDLE_MS) {
                guard_unlink(v, pp);
                continue;
            }
            if (oldest == NULL || (*pp)->stored_ms < (*oldest)->stored_ms)
                oldest = pp;
            pp = &(*pp)->next;
        }
    if (v->nguards >= GUARDS_MAX && oldest != NULL)
        guard_unlink(v, oldest);
}

static int64_t marker_seen(const struct producer_entry *e)
{
    return e != NULL ? e->last_marker_offset : NO_ENTRY;
}

/* Kafka's maybeCreateVerificationStateEntry: the producer's guard on the partition, kept when
 * no marker came since it was stored (concurrent produces share it), else a new one. 0 when
 * out of memory. */
static uint64_t guard_take(struct txn_verify *v, const char *topic, struct partition *p,
                           int64_t pid)
{
    int64_t seen = marker_seen(producer_state_find(&p->producers, pid));
    struct guard **pp = guard_slot(v, topic, p->index, pid);
    if (*pp != NULL && (*pp)->marker_seen == seen) {
        (*pp)->stored_ms = mono_ms();
        return (*pp)->value;
    }
    if (*pp != NULL)
        guard_unlink(v, pp);
    if (v->nguards >= GUARDS_MAX) {
        guard_make_room(v);
        pp = guard_slot(v, topic, p->index, pid);
    }
    struct guard *g = calloc(1, sizeof(*g));
    char *name = g != NULL ? strdup(topic) : NULL;
    if (name == NULL) {
        free(g);
        return 0;
    }
    *g = (struct guard){name, p->index, pid, ++v->next_value, seen, mono_ms(), NULL};
    *pp = g;
    v->nguards++;
    GREGOR_ASSERT(v->nguards <= GUARDS_MAX);
    return g->value;
}

/* ---- life ---- */

struct txn_verify *txn_verify_create(struct broker *b)
{
    struct txn_verify *v = calloc(1, sizeof(*v));
    if (v != NULL)
        v->b = b;
    return v;
}

static void ask_free(struct ask *a)
{
    free(a->topics);
    free(a->indexes);
    free(a->strings);
    free(a);
}

static void ask_detach(struct ask *a)
{
    struct txn_verify *v = a->v;
    if (a->prev != NULL)
        a->prev->next = a->next;
    else
        v->asks = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    a->v = NULL;
    a->req = NULL;
}

void txn_verify_destroy(struct txn_verify *v)
{
    if (v == NULL)
        return;
    /* Answers still to come find their ask detached and only free it. */
    while (v->asks != NULL)
        ask_detach(v->asks);
    for (int i = 0; i < GUARD_BUCKETS; i++)
        while (v->buckets[i] != NULL)
            guard_unlink(v, &v->buckets[i]);
    GREGOR_ASSERT(v->nguards == 0);
    free(v);
}

/* ---- the verdicts ---- */

static void set_all(struct txn_verify_req *q, int16_t err)
{
    int32_t total = q->first[q->ntopics];
    for (int32_t k = 0; k < total; k++)
        if (q->parts[k].guard != 0)
            q->parts[k].error = err;
}

/* AddPartitionsToTxnManager's mapping of the coordinator's per-partition errors. */
static int16_t manager_error(const struct txn_verify_req *q, int16_t e)
{
    if (e == KERR_PRODUCER_FENCED)
        return KERR_INVALID_PRODUCER_EPOCH;
    if (e == KERR_TRANSACTION_ABORTABLE && !q->generic_errors)
        return KERR_INVALID_TXN_STATE;
    return e;
}

void txn_verify_shutdown(struct broker *b)
{
    struct txn_verify *v = b->txn_verify;
    while (v != NULL && v->asks != NULL) {
        struct ask *a = v->asks;
        struct txn_verify_req *q = a->req;
        ask_detach(a);
        set_all(q, KERR_NETWORK_EXCEPTION);
        q->resume(q->r);
    }
}

/* ---- asking ---- */

/* The coordinator is this broker: its answer at once. */
static void ask_local(struct broker *b, struct txn_verify_req *q, const char *id, int64_t pid,
                      int16_t epoch, const struct txn_partition *tps, const int32_t *where,
                      int n)
{
    struct txn_coordinator *tc = txn_store_coordinator(b);
    int16_t *errors = request_alloc(q->r, sizeof(*errors) * ((size_t)n + 1));
    if (tc == NULL || errors == NULL) {
        set_all(q, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    int16_t err = txn_verify_partitions(tc, id, pid, epoch, tps, n, errors);
    for (int i = 0; i < n; i++)
        q->parts[where[i]].error = manager_error(q, err != KERR_NONE ? err : errors[i]);
}

static void answered(void *arg, const struct client_response *resp)
{
    struct ask *a = arg;
    struct txn_verify_req *q = a->req;
    if (q == NULL) {
        ask_free(a);
        return;
    }
    ask_detach(a);
    const struct add_partitions_to_txn_response *body = resp->body;
    if (resp->error == KERR_UNSUPPORTED_VERSION) {
        /* Kafka: the coordinator cannot verify; the produce goes on unverified. */
        LOG_WARN(WHO, "AddPartitionsToTxn v4+ refused by the coordinator (%s): produce not "
                 "verified", resp->reason != NULL ? resp->reason : "unsupported version");
        set_all(q, KERR_NONE);
    } else if (resp->error != KERR_NONE || body == NULL) {
        LOG_WARN(WHO, "AddPartitionsToTxn to the coordinator failed: %s",
                 resp->reason != NULL ? resp->reason : kerr_name(resp->error));
        set_all(q, KERR_NETWORK_EXCEPTION);
    } else if (body->error_code != KERR_NONE) {
        set_all(q, body->error_code == KERR_CLUSTER_AUTHORIZATION_FAILED ? KERR_INVALID_TXN_STATE
                                                                        : body->error_code);
    } else {
        /* Asked partitions not named in the answer stay NONE, as Kafka's (only errors count). */
        set_all(q, KERR_NONE);
        for (int32_t i = 0; i < a->txn.n_topics; i++) {
            const struct kstr *name = &a->txn.topics[i].name;
            for (int32_t t = 0; t < body->n_results_by_transaction; t++) {
                const struct add_partitions_to_txn_response_add_partitions_to_txn_result *res =
                    &body->results_by_transaction[t];
                for (int32_t k = 0; k < res->n_topic_results; k++) {
                    const struct add_partitions_to_txn_response_add_partitions_to_txn_topic_result
                        *tr = &res->topic_results[k];
                    if (tr->name.len != name->len || memcmp(tr->name.ptr, name->ptr, (size_t)name->len) != 0)
                        continue;
                    for (int32_t j = 0; j < tr->n_results_by_partition; j++)
                        for (int32_t m = 0; m < a->txn.topics[i].n_partitions; m++) {
                            if (a->txn.topics[i].partitions[m] !=
                                tr->results_by_partition[j].partition_index)
                                continue;
                            /* indexes[n + k]: where indexes[k] is in the produce */
                            int32_t k = (int32_t)(a->txn.topics[i].partitions - a->indexes) + m;
                            int32_t at = a->indexes[a->n + k];
                            q->parts[at].error = manager_error(
                                q, tr->results_by_partition[j].partition_error_code);
                        }
                }
            }
        }
    }
    ask_free(a);
    q->resume(q->r);
}

/* The coordinator is broker `coord`: one AddPartitionsToTxn v4+ VerifyOnly over the outbound
 * client. false when it could not be sent (every asked partition then has its error). */
static bool ask_remote(struct broker *b, struct txn_verify_req *q, int32_t coord, const char *id,
                       int64_t pid, int16_t epoch, const struct txn_partition *tps,
                       const int32_t *where, int n, int64_t timeout_ms)
{
    struct client_conn *c = txn_store_peer(b, coord);
    struct ask *a = calloc(1, sizeof(*a));
    size_t slen = strlen(id) + 1;
    for (int i = 0; i < n; i++)
        slen += strlen(tps[i].topic) + 1;
    if (a != NULL) {
        a->topics = calloc((size_t)n, sizeof(*a->topics));
        a->indexes = calloc((size_t)n * 2, sizeof(*a->indexes));
        a->strings = malloc(slen);
    }
    if (c == NULL || a == NULL || a->topics == NULL || a->indexes == NULL || a->strings == NULL) {
        if (a != NULL)
            ask_free(a);
        set_all(q, KERR_COORDINATOR_NOT_AVAILABLE);
        return false;
    }
    size_t pos = strlen(id) + 1;
    memcpy(a->strings, id, pos);
    /* One topic entry per run of the same topic (the produce groups its partitions by topic);
     * indexes[0..n) the partition numbers, indexes[n..2n) their flat positions. */
    int32_t nt = 0;
    for (int i = 0; i < n; i++) {
        a->indexes[i] = tps[i].partition;
        a->indexes[n + i] = where[i];
        if (nt > 0 && strcmp(a->topics[nt - 1].name.ptr, tps[i].topic) == 0) {
            a->topics[nt - 1].n_partitions++;
            continue;
        }
        size_t len = strlen(tps[i].topic);
        memcpy(a->strings + pos, tps[i].topic, len + 1);
        a->topics[nt++] = (struct add_partitions_to_txn_request_add_partitions_to_txn_topic){
            {a->strings + pos, (int32_t)len}, &a->indexes[i], 1};
        pos += len + 1;
    }
    a->txn = (struct add_partitions_to_txn_request_add_partitions_to_txn_transaction){
        .transactional_id = {a->strings, (int32_t)strlen(id)},
        .producer_id = pid,
        .producer_epoch = epoch,
        .verify_only = true,
        .topics = a->topics,
        .n_topics = nt,
    };
    a->body = (struct add_partitions_to_txn_request){.transactions = &a->txn, .n_transactions = 1};
    a->n = n;
    q->nasked = n;
    struct client_request cr = {.api_key = PROTO_API_ADD_PARTITIONS_TO_TXN, .min_version = 4,
                                .max_version = 5, .body = &a->body, .timeout_ms = timeout_ms};
    struct txn_verify *v = b->txn_verify;
    if (client_send(c, &cr, answered, a) != 0) {
        ask_free(a);
        set_all(q, KERR_COORDINATOR_NOT_AVAILABLE);
        return false;
    }
    a->v = v;
    a->req = q;
    a->next = v->asks;
    if (v->asks != NULL)
        v->asks->prev = a;
    v->asks = a;
    return true;
}

/* ---- the produce's side ---- */

/* The batch's producer when it is a transactional v2 batch, else false. */
static bool transactional_batch(const struct krecords *rec, struct batch_header *h)
{
    if (rec->ptr == NULL || rec->len < BATCH_HEADER_SIZE ||
        rec->ptr[CONVERT_MAGIC_OFFSET] != BATCH_MAGIC_V2)
        return false;
    batch_header_decode(rec->ptr, h);
    return (h->attributes & BATCH_ATTR_TRANSACTIONAL) && h->producer_id >= 0;
}

/* The partition a produce writes, when this broker leads it and may append there (the other
 * cases are the produce's own errors), else NULL. */
static struct partition *led_partition(struct broker *b, struct request *r,
                                       const struct produce_request_topic_produce_data *td,
                                       int32_t index, const char **name)
{
    struct topic *t = r->api_version >= 13 ? topic_find_by_id(b, &td->topic_id)
                                            : topic_find_name(b, td->name);
    if (t == NULL || t->internal || index < 0 || index >= t->npartitions)
        return NULL;
    if (broker_leader_check(b, kstr_of(t->name), index) != KERR_NONE)
        return NULL;
    struct partition *p = t->partitions[index];
    if (p == NULL || (b->cluster != NULL && partition_leadership(p) < 0))
        return NULL;
    *name = t->name;
    return p;
}

static bool has_ongoing_txn(struct partition *p, int64_t pid)
{
    const struct producer_entry *e = producer_state_find(&p->producers, pid);
    return e != NULL && e->txn_first_offset >= 0;
}

bool txn_verify_produce(struct broker *b, struct request *r, struct txn_verify_req **out,
                        void (*resume)(struct request *r))
{
    struct produce_request *req = r->body;
    *out = NULL;
    const char *id = txn_id_of(r, req->transactional_id);
    if (!b->cfg.transaction_partition_verification_enable || b->txn_verify == NULL || id == NULL)
        return false;
    int32_t nt = req->n_topic_data > 0 ? req->n_topic_data : 0;
    struct txn_verify_req *q = request_alloc(r, sizeof(*q));
    int32_t *first = request_alloc(r, sizeof(*first) * ((size_t)nt + 1));
    if (q == NULL || first == NULL)
        return false; /* every transactional append then fails its guard check */
    int32_t total = 0;
    for (int32_t i = 0; i < nt; i++) {
        first[i] = total;
        total += req->topic_data[i].n_partition_data > 0 ? req->topic_data[i].n_partition_data : 0;
    }
    first[nt] = total;
    struct verify_part *parts = request_alloc(r, sizeof(*parts) * ((size_t)total + 1));
    struct txn_partition *tps = request_alloc(r, sizeof(*tps) * ((size_t)total + 1));
    int32_t *where = request_alloc(r, sizeof(*where) * ((size_t)total + 1));
    if (parts == NULL || tps == NULL || where == NULL)
        return false;
    memset(parts, 0, sizeof(*parts) * ((size_t)total + 1));
    *q = (struct txn_verify_req){r, resume, nt, first, parts, 0, r->api_version >= 11};
    *out = q;
    /* Kafka verifies for one producer per request: the first transactional batch's. */
    int64_t pid = -1;
    int16_t epoch = -1;
    int n = 0;
    for (int32_t i = 0; i < nt; i++) {
        const struct produce_request_topic_produce_data *td = &req->topic_data[i];
        for (int32_t j = 0; j < td->n_partition_data; j++) {
            struct batch_header h;
            const char *name = NULL;
            if (!transactional_batch(&td->partition_data[j].records, &h))
                continue;
            if (pid < 0) {
                pid = h.producer_id;
                epoch = h.producer_epoch;
            }
            struct partition *p = led_partition(b, r, td, td->partition_data[j].index, &name);
            if (p == NULL || h.producer_id != pid || has_ongoing_txn(p, pid))
                continue;
            uint64_t g = guard_take(b->txn_verify, name, p, pid);
            if (g == 0)
                continue;
            parts[first[i] + j].guard = g;
            tps[n] = (struct txn_partition){name, p->index};
            where[n++] = first[i] + j;
        }
    }
    if (n == 0)
        return false;
    if (b->cluster == NULL) {
        ask_local(b, q, id, pid, epoch, tps, where, n);
        return false;
    }
    struct cluster_broker coord;
    int16_t e = txn_store_find(b, id, &coord);
    if (e != KERR_NONE) {
        set_all(q, e);
        return false;
    }
    if (coord.id == b->cfg.node_id) {
        ask_local(b, q, id, pid, epoch, tps, where, n);
        return false;
    }
    int64_t timeout = req->timeout_ms < ASK_TIMEOUT_MIN_MS ? ASK_TIMEOUT_MIN_MS
                      : req->timeout_ms > ASK_TIMEOUT_MAX_MS ? ASK_TIMEOUT_MAX_MS
                                                             : req->timeout_ms;
    return ask_remote(b, q, coord.id, id, pid, epoch, tps, where, n, timeout);
}

static void set_message(struct request *r, struct produce_response_partition_produce_response *out,
                        const char *msg)
{
    char *copy = request_strdup(r, msg);
    out->error_message = copy != NULL ? kstr_of(copy) : kstr_null();
}

int txn_verify_check(struct broker *b, struct request *r, const struct txn_verify_req *v,
                     int32_t topic_index, int32_t partition_index, struct partition *p,
                     const struct krecords *rec,
                     struct produce_response_partition_produce_response *out)
{
    struct batch_header h;
    if (!b->cfg.transaction_partition_verification_enable || b->txn_verify == NULL ||
        !transactional_batch(rec, &h))
        return KERR_NONE;
    const struct verify_part *vp = NULL;
    if (v != NULL && topic_index < v->ntopics &&
        v->first[topic_index] + partition_index < v->first[topic_index + 1])
        vp = &v->parts[v->first[topic_index] + partition_index];
    if (vp != NULL && vp->guard != 0 && vp->error != KERR_NONE) {
        /* ReplicaManager's postVerificationCallback */
        int16_t e = vp->error;
        char msg[200];
        switch (e) {
        case KERR_INVALID_TXN_STATE:
            set_message(r, out, "Partition was not added to the transaction");
            break;
        case KERR_CONCURRENT_TRANSACTIONS:
        case KERR_NETWORK_EXCEPTION:
        case KERR_COORDINATOR_LOAD_IN_PROGRESS:
        case KERR_COORDINATOR_NOT_AVAILABLE:
        case KERR_NOT_COORDINATOR:
            snprintf(msg, sizeof(msg), "Unable to verify the partition has been added to the "
                     "transaction. Underlying error: %s",
                     kerr_name(e));
            set_message(r, out, msg);
            e = KERR_NOT_ENOUGH_REPLICAS;
            break;
        default:
            break;
        }
        return e;
    }
    /* UnifiedLog.analyzeAndValidateProducerState: a retry of an appended batch is answered as
     * such; a batch within its producer's ongoing transaction needs no guard. */
    int64_t dup_offset;
    if (producer_state_check(&p->producers, &h, &dup_offset) == KERR_DUPLICATE_SEQUENCE_NUMBER)
        return KERR_NONE;
    if (has_ongoing_txn(p, h.producer_id))
        return KERR_NONE;
    const char *topic = ((struct topic *)p->topic)->name;
    struct guard **pp = guard_slot(b->txn_verify, topic, p->index, h.producer_id);
    int64_t seen = marker_seen(producer_state_find(&p->producers, h.producer_id));
    if (vp != NULL && vp->guard != 0 && *pp != NULL && (*pp)->value == vp->guard &&
        (*pp)->marker_seen == seen)
        return KERR_NONE;
    LOG_LIMITED(LOG_LEVEL_INFO, "UnifiedLog", "transactional batch of producer %" PRId64
                " epoch %d to %s-%d refused: %s", h.producer_id, h.producer_epoch, topic, p->index,
                vp == NULL || vp->guard == 0 ? "not verified" : "a marker came since its verification");
    if (*pp != NULL && (*pp)->marker_seen != seen)
        guard_unlink(b->txn_verify, pp);
    return KERR_INVALID_TXN_STATE;
}

void txn_verify_appended(struct broker *b, struct partition *p, const struct krecords *rec)
{
    struct batch_header h;
    if (b->txn_verify == NULL || b->txn_verify->nguards == 0 || !transactional_batch(rec, &h))
        return;
    const char *topic = ((struct topic *)p->topic)->name;
    struct guard **pp = guard_slot(b->txn_verify, topic, p->index, h.producer_id);
    if (*pp != NULL)
        guard_unlink(b->txn_verify, pp);
}
