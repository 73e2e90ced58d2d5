/* FindCoordinator (10): v0-3 ask for one key, v4+ for a batch (coordinator_keys). One node
 * coordinates every group and transactional id itself; in a cluster a group's coordinator is
 * the leader of its partition of the ZooKeeper topic __consumer_offsets (group_store_find), a
 * transactional id's the leader of its partition of __transaction_state (txn_store_find). */
#include <string.h>

#include "broker/authorizer.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "broker/txn_store.h"
#include "cluster/cluster.h"
#include "proto/messages.h"

struct coordinator_answer {
    int16_t error;
    int32_t node_id;
    const char *host;
    int32_t port;
};

/* Key types: 0 = group, 1 = transaction (Kafka's CoordinatorType). */
static void find_one(struct broker *b, struct request *r, int8_t key_type, struct kstr key,
                     struct coordinator_answer *out)
{
    *out = (struct coordinator_answer){KERR_COORDINATOR_NOT_AVAILABLE, -1, "", -1};
    if (key_type != 0 && key_type != 1) {
        out->error = KERR_INVALID_REQUEST;
        return;
    }
    /* KafkaApis: DESCRIBE on the group or the transactional id. */
    if (!authorize_kstr(b, r, ACL_OP_DESCRIBE, key_type == 0 ? ACL_RES_GROUP : ACL_RES_TRANSACTIONAL_ID,
                        key.ptr, key.len)) {
        out->error = key_type == 0 ? KERR_GROUP_AUTHORIZATION_FAILED
                                   : KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return;
    }
    if (key_type == 0 && b->groups == NULL)
        return;
    if (b->cluster != NULL) {
        char *k = request_alloc(r, (size_t)(key.len > 0 ? key.len : 0) + 1);
        if (k == NULL)
            return;
        if (key.len > 0)
            memcpy(k, key.ptr, (size_t)key.len);
        k[key.len > 0 ? key.len : 0] = '\0';
        struct cluster_broker cb;
        int16_t e = key_type == 0 ? group_store_find(b, k, &cb) : txn_store_find(b, k, &cb);
        if (e != KERR_NONE)
            return;
        const char *h;
        int32_t port;
        broker_peer_endpoint(r, &cb, &h, &port);
        char *host = request_alloc(r, strlen(h) + 1);
        if (host == NULL)
            return;
        memcpy(host, h, strlen(h) + 1);
        *out = (struct coordinator_answer){KERR_NONE, cb.id, host, port};
        return;
    }
    if (key_type == 1 && txn_store_topic_ready(b) != KERR_NONE)
        return;
    const char *host;
    int port;
    broker_advertised_for(b, r->conn, &host, &port);
    *out = (struct coordinator_answer){KERR_NONE, b->cfg.node_id, host, port};
}

enum request_status handle_find_coordinator(struct broker *b, struct request *r)
{
    struct find_coordinator_request *req = r->body;
    struct find_coordinator_response *resp = r->resp;
    int8_t key_type = r->api_version >= 1 ? req->key_type : 0;
    resp->error_message = kstr_null();
    resp->host = kstr_of("");
    struct coordinator_answer a;
    if (r->api_version < 4) {
        find_one(b, r, key_type, req->key, &a);
        resp->error_code = a.error;
        resp->node_id = a.node_id;
        resp->host = kstr_of(a.host);
        resp->port = a.port;
        return REQUEST_DONE;
    }
    int32_t n = req->n_coordinator_keys > 0 ? req->n_coordinator_keys : 0;
    RESP_ARRAY(r, resp->coordinators, n);
    if (resp->coordinators == NULL)
        return REQUEST_CLOSE;
    resp->n_coordinators = n;
    for (int32_t i = 0; i < n; i++) {
        struct find_coordinator_response_coordinator *c = &resp->coordinators[i];
        c->key = req->coordinator_keys[i].ptr ? req->coordinator_keys[i] : kstr_of("");
        find_one(b, r, key_type, c->key, &a);
        c->error_code = a.error;
        c->error_message = kstr_null();
        c->node_id = a.node_id;
        c->host = kstr_of(a.host);
        c->port = a.port;
    }
    return REQUEST_DONE;
}
