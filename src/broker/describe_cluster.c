/* DescribeCluster (60): this one broker, the cluster id, and itself as controller. */
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "proto/messages.h"

enum request_status handle_describe_cluster(struct broker *b, struct request *r)
{
    struct describe_cluster_request *req = r->body;
    struct describe_cluster_response *resp = r->resp;
    resp->error_message = kstr_null();
    resp->endpoint_type = req->endpoint_type ? req->endpoint_type : 1;
    resp->cluster_id = kstr_of(b->cluster_id);
    resp->controller_id = b->cfg.node_id;
    resp->cluster_authorized_operations = req->include_cluster_authorized_operations
                                              ? AUTHORIZED_OPS_CLUSTER
                                              : AUTHORIZED_OPS_NOT_REQUESTED;
    if (req->endpoint_type > 1) {
        resp->error_code = KERR_INVALID_REQUEST; /* controller endpoints are not exposed */
        resp->error_message = kstr_of("Only broker endpoints are served");
        return REQUEST_DONE;
    }
    RESP_ARRAY(r, resp->brokers, 1);
    if (resp->brokers == NULL)
        return REQUEST_CLOSE;
    resp->n_brokers = 1;
    resp->brokers[0].broker_id = b->cfg.node_id;
    resp->brokers[0].host = kstr_of(b->cfg.advertised_host);
    resp->brokers[0].port = b->cfg.advertised_port;
    resp->brokers[0].rack = kstr_null();
    return REQUEST_DONE;
}
