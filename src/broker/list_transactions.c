/* ListTransactions (66): the transactional ids this coordinator holds, filtered by state,
 * producer id and (v1) how long their transaction has been open (txn_list), and to those the
 * principal may DESCRIBE. */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "proto/messages.h"

struct list_ctx {
    struct request *r;
    struct list_transactions_response_transaction_state *out;
    int32_t n, cap;
    bool oom;
};

static void list_one(void *arg, const char *transactional_id, int64_t producer_id,
                     enum txn_state state)
{
    struct list_ctx *c = arg;
    /* Kafka lists only the ids the principal may DESCRIBE, each denial logged at INFO
     * (KafkaApis.handleListTransactionsRequest asks with the default logIfDenied). */
    if (c->oom || !authorize(c->r->broker, c->r, ACL_OP_DESCRIBE, ACL_RES_TRANSACTIONAL_ID,
                             transactional_id, true))
        return;
    if (c->n == c->cap) {
        int32_t cap = c->cap > 0 ? c->cap * 2 : 16;
        struct list_transactions_response_transaction_state *grown =
            request_alloc(c->r, sizeof(*grown) * (size_t)cap);
        if (grown == NULL) {
            c->oom = true;
            return;
        }
        if (c->n > 0)
            memcpy(grown, c->out, sizeof(*grown) * (size_t)c->n);
        c->out = grown;
        c->cap = cap;
    }
    c->out[c->n++] = (struct list_transactions_response_transaction_state){
        gh_str(c->r, transactional_id), producer_id, kstr_of(txn_state_name(state))};
}

/* The state named s (Kafka's TransactionState.fromName), or -1. */
static int state_named(struct kstr s)
{
    for (int i = 0; i < TXN_STATE_COUNT; i++) {
        const char *name = txn_state_name((enum txn_state)i);
        if (s.ptr != NULL && s.len >= 0 && (size_t)s.len == strlen(name) &&
            memcmp(s.ptr, name, (size_t)s.len) == 0)
            return i;
    }
    return -1;
}

enum request_status handle_list_transactions(struct broker *b, struct request *r)
{
    struct list_transactions_request *req = r->body;
    struct list_transactions_response *resp = r->resp;
    int32_t ns = req->n_state_filters > 0 ? req->n_state_filters : 0;
    enum txn_state *states = request_alloc(r, sizeof(*states) * ((size_t)ns + 1));
    RESP_ARRAY(r, resp->unknown_state_filters, ns);
    if (states == NULL || resp->unknown_state_filters == NULL)
        return REQUEST_CLOSE;
    int n_states = 0, n_unknown = 0;
    for (int32_t i = 0; i < ns; i++) {
        int s = state_named(req->state_filters[i]);
        if (s < 0)
            resp->unknown_state_filters[n_unknown++] =
                req->state_filters[i].ptr ? req->state_filters[i] : kstr_of("");
        else
            states[n_states++] = (enum txn_state)s;
    }
    resp->n_unknown_state_filters = n_unknown;
    resp->n_transaction_states = 0;
    struct txn_coordinator *tc = txn_store_coordinator(b);
    if (tc == NULL) {
        resp->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        return REQUEST_DONE;
    }
    /* Kafka: filters that name only unknown states match nothing. */
    if (ns > 0 && n_states == 0)
        return REQUEST_DONE;
    struct txn_list_filter f = {
        .states = states,
        .n_states = n_states,
        .producer_ids = req->producer_id_filters,
        .n_producer_ids = req->n_producer_id_filters > 0 ? req->n_producer_id_filters : 0,
        .min_duration_ms = r->api_version >= 1 ? req->duration_filter : -1,
    };
    struct list_ctx c = {.r = r};
    resp->error_code = txn_list(tc, &f, list_one, &c);
    if (c.oom)
        return REQUEST_CLOSE;
    resp->transaction_states = c.out;
    resp->n_transaction_states = c.n;
    return REQUEST_DONE;
}
