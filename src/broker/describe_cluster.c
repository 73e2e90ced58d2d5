/* DescribeCluster (60): this one broker and itself as controller, or the cluster's live
 * brokers and controller on ZooKeeper; the cluster id. */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "proto/messages.h"

enum request_status handle_describe_cluster(struct broker *b, struct request *r)
{
    struct describe_cluster_request *req = r->body;
    struct describe_cluster_response *resp = r->resp;
    resp->error_message = kstr_null();
    resp->endpoint_type = req->endpoint_type ? req->endpoint_type : 1;
    resp->cluster_id = kstr_of(b->cluster_id);
    resp->controller_id = b->cluster ? cluster_controller_id(b->cluster) : b->cfg.node_id;
    resp->cluster_authorized_operations = req->include_cluster_authorized_operations
                                              ? authorized_operations(b, r, ACL_RES_CLUSTER,
                                                                      ACL_CLUSTER_NAME)
                                              : AUTHORIZED_OPS_NOT_REQUESTED;
    if (req->endpoint_type > 1) {
        resp->error_code = KERR_INVALID_REQUEST; /* controller endpoints are not exposed */
        resp->error_message = kstr_of("Only broker endpoints are served");
        return REQUEST_DONE;
    }
    if (b->cluster != NULL) {
        const struct cluster_broker *live;
        int n = cluster_brokers(b->cluster, &live);
        RESP_ARRAY(r, resp->brokers, n);
        if (resp->brokers == NULL && n > 0)
            return REQUEST_CLOSE;
        resp->n_brokers = n;
        for (int i = 0; i < n; i++) {
            resp->brokers[i].broker_id = live[i].id;
            const char *host; /* live until the loop turns, or in the request */
            broker_peer_endpoint(r, &live[i], &host, &resp->brokers[i].port);
            resp->brokers[i].host = kstr_of(host);
            resp->brokers[i].rack = kstr_or_null(live[i].rack); /* as host */
        }
        return REQUEST_DONE;
    }
    RESP_ARRAY(r, resp->brokers, 1);
    if (resp->brokers == NULL)
        return REQUEST_CLOSE;
    resp->n_brokers = 1;
    resp->brokers[0].broker_id = b->cfg.node_id;
    const char *host;
    broker_advertised_for(b, r->conn, &host, &resp->brokers[0].port);
    resp->brokers[0].host = kstr_of(host);
    resp->brokers[0].rack = kstr_or_null(b->cfg.broker_rack);
    return REQUEST_DONE;
}
