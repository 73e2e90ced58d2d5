/* DescribeTransactions (65): each transactional id's state, producer, timeout and partitions as
 * the coordinator holds them (txn_describe). */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "proto/messages.h"

/* Whether partition i starts a topic of d (the partitions are sorted by topic). */
static bool topic_start(const struct txn_desc *d, int i)
{
    return i == 0 || strcmp(d->partitions[i].topic, d->partitions[i - 1].topic) != 0;
}

/* The partitions (sorted by topic) as one entry per topic, only the topics the principal may
 * DESCRIBE (KafkaApis.handleDescribeTransactionsRequest drops the others, each check logged). */
static int fill_topics(struct broker *b, struct request *r,
                       struct describe_transactions_response_transaction_state *st,
                       const struct txn_desc *d)
{
    bool *shown;
    RESP_ARRAY(r, shown, d->n_partitions);
    if (shown == NULL)
        return -1;
    int32_t ntopics = 0;
    for (int i = 0; i < d->n_partitions; i++) {
        if (topic_start(d, i)) {
            shown[i] = authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, d->partitions[i].topic, true);
            ntopics += shown[i];
        } else {
            shown[i] = shown[i - 1];
        }
    }
    RESP_ARRAY(r, st->topics, ntopics);
    if (st->topics == NULL)
        return -1;
    st->n_topics = ntopics;
    int32_t k = -1;
    for (int i = 0; i < d->n_partitions; i++) {
        if (!shown[i])
            continue;
        if (topic_start(d, i)) {
            int j = i;
            while (j < d->n_partitions && strcmp(d->partitions[j].topic, d->partitions[i].topic) == 0)
                j++;
            k++;
            st->topics[k].topic = gh_str(r, d->partitions[i].topic);
            RESP_ARRAY(r, st->topics[k].partitions, j - i);
            if (st->topics[k].partitions == NULL)
                return -1;
            st->topics[k].n_partitions = 0;
        }
        struct describe_transactions_response_topic_data *td = &st->topics[k];
        td->partitions[td->n_partitions++] = d->partitions[i].partition;
    }
    GREGOR_ASSERT(k + 1 == ntopics);
    return 0;
}

enum request_status handle_describe_transactions(struct broker *b, struct request *r)
{
    struct describe_transactions_request *req = r->body;
    struct describe_transactions_response *resp = r->resp;
    int32_t n = req->n_transactional_ids > 0 ? req->n_transactional_ids : 0;
    RESP_ARRAY(r, resp->transaction_states, n);
    if (resp->transaction_states == NULL)
        return REQUEST_CLOSE;
    resp->n_transaction_states = n;
    struct txn_coordinator *tc = txn_store_coordinator(b);
    for (int32_t i = 0; i < n; i++) {
        struct describe_transactions_response_transaction_state *st = &resp->transaction_states[i];
        st->transactional_id = req->transactional_ids[i].ptr ? req->transactional_ids[i]
                                                             : kstr_of("");
        st->transaction_state = kstr_of("");
        st->transaction_timeout_ms = 0;
        st->transaction_start_time_ms = -1;
        st->producer_id = -1;
        st->producer_epoch = -1;
        const char *id = txn_id_of(r, st->transactional_id);
        if (id != NULL && !authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_TRANSACTIONAL_ID, id, true)) {
            st->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            continue;
        }
        if (tc == NULL || id == NULL) {
            st->error_code = tc == NULL ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_NOT_COORDINATOR;
            continue;
        }
        struct txn_desc d;
        int16_t e = txn_describe(tc, id, &d);
        if (e == KERR_NONE && !d.found)
            e = KERR_TRANSACTIONAL_ID_NOT_FOUND;
        st->error_code = e;
        if (e != KERR_NONE)
            continue;
        st->transaction_state = kstr_of(txn_state_name(d.state));
        st->transaction_timeout_ms = d.timeout_ms;
        st->transaction_start_time_ms = d.start_ms;
        st->producer_id = d.producer_id;
        st->producer_epoch = d.producer_epoch;
        if (fill_topics(b, r, st, &d) != 0)
            return REQUEST_CLOSE;
    }
    return REQUEST_DONE;
}
