/* SyncGroup (14): the leader brings the assignment, every member gets its own part — at once in
 * a Stable group, or once the leader's SyncGroup arrives. */
#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "broker/waiters.h"
#include "common/util.h"
#include "proto/messages.h"

/* Kafka's offsets.commit.timeout.ms (its default), which its storeGroup waits at most. */
#define SYNC_REPLICATION_TIMEOUT_MS 5000

/* A SyncGroup answered while the group's __consumer_offsets partition is not replicated up to
 * its end (the group's record among it): held until the ISR has it, as Kafka's storeGroup
 * appends with acks=-1 before any member gets its assignment. */
struct sync_wait {
    struct waiter w;
    struct gh_wait *gw;
    int32_t partition;
    int64_t end;
};

/* Kafka's storeGroup callback: not replicated in time COORDINATOR_NOT_AVAILABLE, the partition
 * moved NOT_COORDINATOR (no assignment with either). */
static bool sync_replicated(struct waiter *w, enum waiter_event ev)
{
    struct sync_wait *sw = w->arg;
    struct request *r = sw->gw->r;
    int done = group_store_replicated(r->broker, sw->partition, sw->end);
    if (ev == WAITER_CHECK)
        return done != 0;
    if (done <= 0) {
        struct sync_group_response *resp = r->resp;
        resp->error_code = done < 0 ? KERR_NOT_COORDINATOR : KERR_COORDINATOR_NOT_AVAILABLE;
        resp->assignment = gh_bytes(r, NULL, 0);
    }
    gh_wait_complete(sw->gw);
    return true;
}

static void sync_done(void *arg, const struct gc_sync_result *res)
{
    struct gh_wait *w = arg;
    struct request *r = w->r;
    struct broker *b = r->broker;
    struct sync_group_response *resp = r->resp;
    struct sync_group_request *req = r->body;
    resp->error_code = res->error;
    resp->protocol_type = gh_str(r, res->protocol_type);
    resp->protocol_name = gh_str(r, res->protocol_name);
    resp->assignment = gh_bytes(r, res->assignment, res->assignment_len);
    int32_t partition = -1;
    int64_t end = res->error == KERR_NONE && !b->stopping
                      ? group_store_unreplicated_end(b, req->group_id.ptr, &partition) : -1;
    struct sync_wait *sw = end >= 0 ? request_alloc(r, sizeof(*sw)) : NULL;
    if (sw == NULL) {
        gh_wait_complete(w);
        return;
    }
    *sw = (struct sync_wait){.gw = w, .partition = partition, .end = end};
    waiter_park(&b->waiters, &sw->w, WAITER_ON_APPEND, mono_ms() + SYNC_REPLICATION_TIMEOUT_MS,
                sync_replicated, sw);
}

enum request_status handle_sync_group(struct broker *b, struct request *r)
{
    struct sync_group_request *req = r->body;
    struct sync_group_response *resp = r->resp;
    resp->protocol_type = kstr_null();
    resp->protocol_name = kstr_null();
    resp->assignment = gh_bytes(r, NULL, 0);
    if (!authorize_kstr(b, r, ACL_OP_READ, ACL_RES_GROUP, req->group_id.ptr, req->group_id.len)) {
        resp->error_code = KERR_GROUP_AUTHORIZATION_FAILED; /* KafkaApis: READ on the group */
        return REQUEST_DONE;
    }
    resp->error_code = group_store_check(b, req->group_id.ptr);
    if (resp->error_code != KERR_NONE)
        return REQUEST_DONE;
    resp->error_code = gh_ids_error(req->group_id, req->member_id, req->group_instance_id);
    if (resp->error_code != KERR_NONE)
        return REQUEST_DONE;
    int n = req->n_assignments > 0 ? req->n_assignments : 0;
    struct gc_assignment *as = request_alloc(r, sizeof(*as) * ((size_t)n + 1));
    struct gh_wait *w = request_alloc(r, sizeof(*w));
    if (as == NULL || w == NULL)
        return REQUEST_CLOSE;
    for (int i = 0; i < n; i++) {
        as[i].member_id = req->assignments[i].member_id.ptr ? req->assignments[i].member_id.ptr : "";
        as[i].assignment = req->assignments[i].assignment.ptr;
        as[i].assignment_len = req->assignments[i].assignment.len;
    }
    struct gc_sync_args a = {
        .group_id = req->group_id.ptr,
        .generation = req->generation_id,
        .member_id = req->member_id.ptr ? req->member_id.ptr : "",
        .instance_id = req->group_instance_id.ptr,
        .protocol_type = r->api_version >= 5 ? req->protocol_type.ptr : NULL,
        .protocol_name = r->api_version >= 5 ? req->protocol_name.ptr : NULL,
        .assignments = as,
        .n_assignments = n,
    };
    w->r = r;
    w->in_handler = true;
    gc_sync(b->groups, &a, sync_done, w);
    w->in_handler = false;
    return w->done ? REQUEST_DONE : REQUEST_PENDING;
}
