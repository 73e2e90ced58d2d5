/* FindCoordinator (10): this broker coordinates every group and transactional id. v0-3 ask for
 * one key, v4+ for a batch (coordinator_keys). */
#include "broker/group_handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

/* Key types: 0 = group, 1 = transaction (Kafka's CoordinatorType). */
static int16_t key_error(struct broker *b, int8_t key_type)
{
    if (key_type != 0 && key_type != 1)
        return KERR_INVALID_REQUEST;
    if (key_type == 0 && b->groups == NULL)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    return KERR_NONE;
}

enum request_status handle_find_coordinator(struct broker *b, struct request *r)
{
    struct find_coordinator_request *req = r->body;
    struct find_coordinator_response *resp = r->resp;
    int8_t key_type = r->api_version >= 1 ? req->key_type : 0;
    resp->error_message = kstr_null();
    resp->host = kstr_of("");
    if (r->api_version < 4) {
        int16_t e = key_error(b, key_type);
        resp->error_code = e;
        resp->node_id = e == KERR_NONE ? b->cfg.node_id : -1;
        resp->host = kstr_of(e == KERR_NONE ? b->cfg.advertised_host : "");
        resp->port = e == KERR_NONE ? b->cfg.advertised_port : -1;
        return REQUEST_DONE;
    }
    int32_t n = req->n_coordinator_keys > 0 ? req->n_coordinator_keys : 0;
    RESP_ARRAY(r, resp->coordinators, n);
    if (resp->coordinators == NULL)
        return REQUEST_CLOSE;
    resp->n_coordinators = n;
    for (int32_t i = 0; i < n; i++) {
        struct find_coordinator_response_coordinator *c = &resp->coordinators[i];
        int16_t e = key_error(b, key_type);
        c->key = req->coordinator_keys[i].ptr ? req->coordinator_keys[i] : kstr_of("");
        c->error_code = e;
        c->error_message = kstr_null();
        c->node_id = e == KERR_NONE ? b->cfg.node_id : -1;
        c->host = kstr_of(e == KERR_NONE ? b->cfg.advertised_host : "");
        c->port = e == KERR_NONE ? b->cfg.advertised_port : -1;
    }
    return REQUEST_DONE;
}
