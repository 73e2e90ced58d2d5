/* AddPartitionsToTxn (24): v0-3, a producer's transaction takes in the partitions it is about
 * to write (txn_add_partitions), every partition answered with the coordinator's one error;
 * v4-5, the batched form brokers send (KIP-890): Transactions[] each adding (VerifyOnly false,
 * as v3) or asking whether its partitions are in the producer's ongoing transaction
 * (VerifyOnly true, txn_verify_partitions: a partition leader before a transactional write),
 * answered per transaction once every transaction has its answer, as Kafka's KafkaApis. */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "proto/messages.h"

typedef struct add_partitions_to_txn_request_add_partitions_to_txn_topic req_topic;
typedef struct add_partitions_to_txn_response_add_partitions_to_txn_topic_result resp_topic;

/* The request's answer for one transaction: its topics' results, its coordinator call. */
struct add_txn {
    struct add_batch *batch;
    resp_topic *topics;            /* in the request arena */
    int32_t ntopics;
};

/* A v4+ request waits for all its transactions; a v0-3 one has exactly one. */
struct add_batch {
    struct request *r;
    int left;                      /* transactions not answered yet */
    bool returned;                 /* the handler has returned REQUEST_PENDING */
};

/* Every partition of one transaction's result gets err. */
static void fill_all(resp_topic *topics, int32_t ntopics, int16_t err)
{
    for (int32_t i = 0; i < ntopics; i++)
        for (int32_t j = 0; j < topics[i].n_results_by_partition; j++)
            topics[i].results_by_partition[j].partition_error_code = err;
}

/* Kafka's KafkaApis: partitions of topics a client (v0-3) may not WRITE answer
 * TOPIC_AUTHORIZATION_FAILED, partitions no broker knows UNKNOWN_TOPIC_OR_PARTITION, the others
 * OPERATION_NOT_ATTEMPTED, and the coordinator is not asked. true when some failed. */
static bool unknown_partitions(struct broker *b, struct request *r, const req_topic *in,
                               resp_topic *topics, int32_t ntopics)
{
    bool any = false;
    for (int32_t i = 0; i < ntopics; i++) {
        const char *topic = txn_id_of(r, in[i].name);
        resp_topic *to = &topics[i];
        bool allowed = r->api_version >= 4 || topic == NULL ||
                       authorize(b, r, ACL_OP_WRITE, ACL_RES_TOPIC, topic, true);
        for (int32_t j = 0; j < to->n_results_by_partition; j++) {
            int32_t idx = to->results_by_partition[j].partition_index;
            bool known = topic != NULL && txn_store_partition_known(b, topic, idx);
            to->results_by_partition[j].partition_error_code =
                !allowed ? KERR_TOPIC_AUTHORIZATION_FAILED
                : known  ? KERR_OPERATION_NOT_ATTEMPTED
                         : KERR_UNKNOWN_TOPIC_OR_PARTITION;
            any |= !known || !allowed;
        }
    }
    return any;
}

/* The result topics mirroring the request's, and the partitions as the coordinator takes them
 * in *parts (*n of them). false when out of the request's memory. */
static bool mirror_topics(struct request *r, const req_topic *in, int32_t ntopics,
                          resp_topic **out, struct txn_partition **parts, int *n)
{
    RESP_ARRAY(r, *out, ntopics);
    int64_t total = 0;
    for (int32_t i = 0; i < ntopics; i++)
        total += in[i].n_partitions > 0 ? in[i].n_partitions : 0;
    *parts = request_alloc(r, sizeof(**parts) * ((size_t)total + 1));
    if (*out == NULL || *parts == NULL)
        return false;
    *n = 0;
    for (int32_t i = 0; i < ntopics; i++) {
        resp_topic *to = &(*out)[i];
        to->name = in[i].name.ptr ? in[i].name : kstr_of("");
        int32_t np = in[i].n_partitions > 0 ? in[i].n_partitions : 0;
        RESP_ARRAY(r, to->results_by_partition, np);
        if (to->results_by_partition == NULL)
            return false;
        to->n_results_by_partition = np;
        const char *topic = txn_id_of(r, to->name);
        for (int32_t j = 0; j < np; j++) {
            to->results_by_partition[j].partition_index = in[i].partitions[j];
            if (topic != NULL)
                (*parts)[(*n)++] = (struct txn_partition){topic, in[i].partitions[j]};
        }
    }
    return true;
}

static void batch_one_done(struct add_batch *bt)
{
    GREGOR_ASSERT(bt->left > 0);
    if (--bt->left == 0 && bt->returned)
        request_finish(bt->r);
}

static void added(void *arg, const struct txn_result *res)
{
    struct add_txn *t = arg;
    /* PRODUCER_FENCED is v2+ (KIP-588). */
    fill_all(t->topics, t->ntopics, txn_client_error(res->error, t->batch->r->api_version >= 2));
    batch_one_done(t->batch);
}

/* KIP-890's verification: per partition NONE when in the producer's ongoing transaction, else
 * TRANSACTION_ABORTABLE (v5; INVALID_TXN_STATE to v4, which predates that code); a check that
 * fails first (NOT_COORDINATOR, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
 * CONCURRENT_TRANSACTIONS) for every partition, as TransactionCoordinator's
 * handleVerifyPartitionsInTransaction. */
static void verify(struct txn_coordinator *tc, struct request *r, const char *id, int64_t pid,
                   int16_t epoch, const struct txn_partition *parts, int n, resp_topic *topics,
                   int32_t ntopics)
{
    int16_t *errors = request_alloc(r, sizeof(*errors) * ((size_t)n + 1));
    if (errors == NULL) {
        fill_all(topics, ntopics, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    int16_t err = tc == NULL ? KERR_COORDINATOR_NOT_AVAILABLE
                  : id == NULL ? KERR_INVALID_REQUEST
                  : txn_verify_partitions(tc, id, pid, epoch, parts, n, errors);
    if (err != KERR_NONE) {
        fill_all(topics, ntopics, err);
        return;
    }
    int k = 0;
    for (int32_t i = 0; i < ntopics; i++) {
        bool named = txn_id_of(r, topics[i].name) != NULL;
        for (int32_t j = 0; j < topics[i].n_results_by_partition; j++) {
            int16_t e = named && k < n ? errors[k++] : KERR_INVALID_REQUEST;
            if (e == KERR_TRANSACTION_ABORTABLE && r->api_version < 5)
                e = KERR_INVALID_TXN_STATE;
            topics[i].results_by_partition[j].partition_error_code = e;
        }
    }
}

/* One transaction of the request: answered at once (unknown partitions, verification, no
 * coordinator) or when its add is written (added). false when out of memory. */
static bool one_transaction(struct broker *b, struct add_batch *bt, struct kstr tid, int64_t pid,
                            int16_t epoch, bool verify_only, const req_topic *in,
                            int32_t ntopics, resp_topic **out)
{
    struct request *r = bt->r;
    struct txn_partition *parts = NULL;
    int n = 0;
    if (!mirror_topics(r, in, ntopics, out, &parts, &n))
        return false;
    /* A client's (v0-3) transaction needs WRITE on its transactional id. */
    if (r->api_version < 4 && !authorize_kstr(b, r, ACL_OP_WRITE, ACL_RES_TRANSACTIONAL_ID,
                                              tid.ptr, tid.len)) {
        fill_all(*out, ntopics, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        return true;
    }
    if (unknown_partitions(b, r, in, *out, ntopics))
        return true;
    struct txn_coordinator *tc = txn_store_coordinator(b);
    const char *id = txn_id_of(r, tid);
    if (verify_only) {
        verify(tc, r, id, pid, epoch, parts, n, *out, ntopics);
        return true;
    }
    if (tc == NULL || id == NULL) {
        fill_all(*out, ntopics, tc == NULL ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_NOT_COORDINATOR);
        return true;
    }
    struct add_txn *t = request_alloc(r, sizeof(*t));
    if (t == NULL)
        return false;
    *t = (struct add_txn){bt, *out, ntopics};
    bt->left++;
    txn_add_partitions(tc, id, pid, epoch, parts, n, added, t);
    return true;
}

static enum request_status batch_status(struct add_batch *bt)
{
    bt->returned = true;
    return bt->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
}

static enum request_status handle_v4(struct broker *b, struct request *r, struct add_batch *bt)
{
    struct add_partitions_to_txn_request *req = r->body;
    struct add_partitions_to_txn_response *resp = r->resp;
    int32_t nt = req->n_transactions > 0 ? req->n_transactions : 0;
    for (int32_t i = 0; i < nt; i++)
        if (req->transactions[i].transactional_id.ptr == NULL) {
            /* Kafka: "Transactional ID can not be null in request.", the whole request. */
            resp->error_code = KERR_INVALID_REQUEST;
            return REQUEST_DONE;
        }
    RESP_ARRAY(r, resp->results_by_transaction, nt);
    if (resp->results_by_transaction == NULL)
        return REQUEST_CLOSE;
    resp->n_results_by_transaction = nt;
    for (int32_t i = 0; i < nt; i++) {
        const struct add_partitions_to_txn_request_add_partitions_to_txn_transaction *ti =
            &req->transactions[i];
        struct add_partitions_to_txn_response_add_partitions_to_txn_result *to =
            &resp->results_by_transaction[i];
        to->transactional_id = ti->transactional_id;
        to->n_topic_results = ti->n_topics > 0 ? ti->n_topics : 0;
        if (!one_transaction(b, bt, ti->transactional_id, ti->producer_id, ti->producer_epoch,
                             ti->verify_only, ti->topics, to->n_topic_results, &to->topic_results)) {
            /* Out of the request's memory: adds already started answer with what there is. */
            for (int32_t k = i; k < nt; k++)
                resp->results_by_transaction[k].n_topic_results = 0;
            return bt->left > 0 ? REQUEST_PENDING : REQUEST_CLOSE;
        }
    }
    return batch_status(bt);
}

enum request_status handle_add_partitions_to_txn(struct broker *b, struct request *r)
{
    struct add_partitions_to_txn_request *req = r->body;
    struct add_partitions_to_txn_response *resp = r->resp;
    struct add_batch *bt = request_alloc(r, sizeof(*bt));
    if (bt == NULL)
        return REQUEST_CLOSE;
    *bt = (struct add_batch){.r = r};
    if (r->api_version >= 4) {
        /* The batched form is the brokers' (KIP-890): CLUSTER_ACTION, as KafkaApis. */
        if (!authorize(b, r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
            resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            return REQUEST_DONE;
        }
        enum request_status st = handle_v4(b, r, bt);
        if (st == REQUEST_PENDING)
            bt->returned = true;
        return st;
    }
    int32_t nt = req->n_v3_and_below_topics > 0 ? req->n_v3_and_below_topics : 0;
    resp->n_results_by_topic_v3_and_below = nt;
    if (!one_transaction(b, bt, req->v3_and_below_transactional_id, req->v3_and_below_producer_id,
                         req->v3_and_below_producer_epoch, false, req->v3_and_below_topics, nt,
                         &resp->results_by_topic_v3_and_below))
        return REQUEST_CLOSE;
    return batch_status(bt);
}
