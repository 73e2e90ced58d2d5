/* OffsetFetch (9): committed offsets of one group (v1-7) or several (v8+); -1 means none. A null
 * topic list (v2+) asks for every committed partition of the group. v9 names the asking
 * member of a KIP-848 group, which must exist at that epoch. */
#include <stdlib.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/group_handler_util.h"
#include "broker/group_handlers.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "group/coordinator.h"
#include "proto/messages.h"

/* One requested topic or a run of listed offsets, shaped for either response layout. */
struct fetched_topic {
    struct kstr name;
    int32_t n;
    struct gc_offset *offsets;
};

/* Copies o's commit metadata (bytes, NULs included) into the request's arena: the coordinator's
 * copy may go before the response is written. False when out of memory. */
static bool copy_metadata(struct request *r, struct gc_offset *o)
{
    int32_t n = o->metadata != NULL && o->metadata_len > 0 ? o->metadata_len : 0;
    char *d = request_alloc(r, (size_t)n + 1);
    if (d == NULL)
        return false;
    if (n > 0)
        memcpy(d, o->metadata, (size_t)n);
    d[n] = '\0';
    o->metadata = d;
    o->metadata_len = n;
    return true;
}

/* KIP-447 (v7+ require_stable): an offset an ongoing transaction holds is answered
 * UNSTABLE_OFFSET_COMMIT with no offset, as Kafka's GroupMetadataManager.getOffsets; the client
 * asks again. The error goes in *error. */
static void check_stable(struct broker *b, const char *group, const char *topic,
                         struct gc_offset *o, int16_t *error)
{
    *error = KERR_NONE;
    if (group == NULL || !group_store_txn_pending(b, group, topic, o->partition))
        return;
    *error = KERR_UNSTABLE_OFFSET_COMMIT;
    o->offset = -1;
    o->leader_epoch = -1;
    o->metadata = "";
    o->metadata_len = 0;
}

/* Builds the topic list for a group: the requested partitions, or all committed ones. */
static int collect(struct broker *b, struct request *r, const char *group, bool all,
                   int32_t nreq, const struct kstr *names, int32_t *const *indexes,
                   const int32_t *nindexes, struct fetched_topic **out, int32_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (all) {
        struct gc_offset *list = NULL;
        int n = b->groups && group != NULL ? gc_offset_list(b->groups, group, &list) : 0;
        struct fetched_topic *ft = request_alloc(r, sizeof(*ft) * ((size_t)n + 1));
        struct gc_offset *copy = request_alloc(r, sizeof(*copy) * ((size_t)n + 1));
        if (ft == NULL || copy == NULL) {
            free(list);
            return -1;
        }
        int32_t nt = 0;
        for (int i = 0; i < n; i++) {
            copy[i] = list[i];
            copy[i].topic = gh_str_nn(r, list[i].topic).ptr;
            if (!copy_metadata(r, &copy[i])) {
                free(list);
                return -1;
            }
            if (nt == 0 || strcmp(ft[nt - 1].name.ptr, copy[i].topic) != 0) {
                ft[nt].name = kstr_of(copy[i].topic);
                ft[nt].offsets = &copy[i];
                ft[nt].n = 0;
                nt++;
            }
            ft[nt - 1].n++;
        }
        free(list);
        *out = ft;
        *nout = nt;
        return 0;
    }
    struct fetched_topic *ft = request_alloc(r, sizeof(*ft) * ((size_t)nreq + 1));
    if (ft == NULL)
        return -1;
    for (int32_t i = 0; i < nreq; i++) {
        int32_t np = nindexes[i] > 0 ? nindexes[i] : 0;
        ft[i].name = names[i].ptr ? names[i] : kstr_of("");
        ft[i].n = np;
        ft[i].offsets = request_alloc(r, sizeof(struct gc_offset) * ((size_t)np + 1));
        if (ft[i].offsets == NULL)
            return -1;
        for (int32_t j = 0; j < np; j++) {
            struct gc_offset o;
            if (b->groups && group != NULL && !kstr_has_nul(ft[i].name))
                gc_offset_get(b->groups, group, ft[i].name.ptr, indexes[i][j], &o);
            else
                o = (struct gc_offset){ft[i].name.ptr, indexes[i][j], -1, -1, "", 0};
            o.partition = indexes[i][j];
            if (!copy_metadata(r, &o))
                return -1;
            ft[i].offsets[j] = o;
        }
    }
    *out = ft;
    *nout = nreq;
    return 0;
}

/* KafkaApis: a topic's committed offsets need DESCRIBE on it. */
static bool topic_may_describe(struct broker *b, struct request *r, struct kstr name)
{
    return authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, name.ptr, name.len);
}

static enum request_status fetch_single(struct broker *b, struct request *r)
{
    struct offset_fetch_request *req = r->body;
    struct offset_fetch_response *resp = r->resp;
    int16_t err = group_store_check(b, req->group_id.ptr);
    /* A group id holding a NUL would read as another group's: refused as Kafka answers a
     * group-level error (no topics from v2, each partition carrying it before). */
    const char *group = err == KERR_NONE ? req->group_id.ptr : NULL;
    bool group_denied = !authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, req->group_id.ptr,
                                        req->group_id.len);
    if (kstr_has_nul(req->group_id) || group_denied) {
        err = group_denied ? KERR_GROUP_AUTHORIZATION_FAILED : KERR_INVALID_GROUP_ID;
        group = NULL;
        if (r->api_version >= 2) {
            resp->error_code = err;
            RESP_ARRAY(r, resp->topics, 0);
            return resp->topics == NULL ? REQUEST_CLOSE : REQUEST_DONE;
        }
    }
    if (r->api_version == 0) {
        /* v0 read ZooKeeper's offsets; Kafka 3.9 in KRaft mode (no ZooKeeper, as here) answered
         * every partition UNSUPPORTED_VERSION, offset -1. */
        err = KERR_UNSUPPORTED_VERSION;
        group = NULL;
    }
    bool all = req->n_topics < 0;
    int32_t nreq = all ? 0 : req->n_topics;
    struct kstr *names = request_alloc(r, sizeof(*names) * ((size_t)nreq + 1));
    int32_t **idx = request_alloc(r, sizeof(*idx) * ((size_t)nreq + 1));
    int32_t *nidx = request_alloc(r, sizeof(*nidx) * ((size_t)nreq + 1));
    if (names == NULL || idx == NULL || nidx == NULL)
        return REQUEST_CLOSE;
    for (int32_t i = 0; i < nreq; i++) {
        names[i] = req->topics[i].name;
        idx[i] = req->topics[i].partition_indexes;
        nidx[i] = req->topics[i].n_partition_indexes;
    }
    struct fetched_topic *ft;
    int32_t nt;
    if (collect(b, r, group, all, nreq, names, idx, nidx, &ft, &nt) != 0)
        return REQUEST_CLOSE;
    resp->error_code = err;
    RESP_ARRAY(r, resp->topics, nt);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct offset_fetch_response_offset_fetch_response_topic *ot = &resp->topics[i];
        ot->name = ft[i].name;
        RESP_ARRAY(r, ot->partitions, ft[i].n);
        if (ot->partitions == NULL)
            return REQUEST_CLOSE;
        ot->n_partitions = ft[i].n;
        for (int32_t j = 0; j < ft[i].n; j++) {
            struct gc_offset *o = &ft[i].offsets[j];
            int16_t unstable = KERR_NONE;
            if (r->api_version >= 7 && req->require_stable && !kstr_has_nul(ft[i].name))
                check_stable(b, group, ft[i].name.ptr, o, &unstable);
            ot->partitions[j].partition_index = o->partition;
            ot->partitions[j].committed_offset = o->offset;
            ot->partitions[j].committed_leader_epoch = o->leader_epoch;
            ot->partitions[j].metadata = (struct kstr){(char *)o->metadata, o->metadata_len};
            /* v1 has no top-level error: the partitions carry it. */
            ot->partitions[j].error_code = r->api_version < 2 ? err : unstable;
            if (err == KERR_NONE && !topic_may_describe(b, r, ft[i].name)) {
                ot->partitions[j].error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                ot->partitions[j].committed_offset = -1;
            }
        }
    }
    return REQUEST_DONE;
}

static enum request_status fetch_groups(struct broker *b, struct request *r)
{
    struct offset_fetch_request *req = r->body;
    struct offset_fetch_response *resp = r->resp;
    int32_t ng = req->n_groups > 0 ? req->n_groups : 0;
    RESP_ARRAY(r, resp->groups, ng);
    if (resp->groups == NULL)
        return REQUEST_CLOSE;
    resp->n_groups = ng;
    for (int32_t g = 0; g < ng; g++) {
        struct offset_fetch_request_offset_fetch_request_group *rg = &req->groups[g];
        struct offset_fetch_response_offset_fetch_response_group *og = &resp->groups[g];
        og->group_id = rg->group_id.ptr ? rg->group_id : kstr_of("");
        og->error_code = group_store_check(b, rg->group_id.ptr);
        if (rg->group_id.ptr == NULL || kstr_has_nul(rg->group_id))
            og->error_code = KERR_INVALID_GROUP_ID;
        else if (!authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, rg->group_id.ptr,
                                 rg->group_id.len))
            og->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
        else if (og->error_code == KERR_NONE && r->api_version >= 9)
            og->error_code = gc_offset_fetch_validate(b->groups, rg->group_id.ptr,
                                                      rg->member_id.ptr, rg->member_epoch);
        if (og->error_code != KERR_NONE)
            continue;
        bool all = rg->n_topics < 0;
        int32_t nreq = all ? 0 : rg->n_topics;
        struct kstr *names = request_alloc(r, sizeof(*names) * ((size_t)nreq + 1));
        int32_t **idx = request_alloc(r, sizeof(*idx) * ((size_t)nreq + 1));
        int32_t *nidx = request_alloc(r, sizeof(*nidx) * ((size_t)nreq + 1));
        if (names == NULL || idx == NULL || nidx == NULL)
            return REQUEST_CLOSE;
        for (int32_t i = 0; i < nreq; i++) {
            names[i] = rg->topics[i].name;
            idx[i] = rg->topics[i].partition_indexes;
            nidx[i] = rg->topics[i].n_partition_indexes;
        }
        struct fetched_topic *ft;
        int32_t nt;
        if (collect(b, r, rg->group_id.ptr, all, nreq, names, idx, nidx, &ft, &nt) != 0)
            return REQUEST_CLOSE;
        RESP_ARRAY(r, og->topics, nt);
        if (og->topics == NULL)
            return REQUEST_CLOSE;
        og->n_topics = nt;
        for (int32_t i = 0; i < nt; i++) {
            struct offset_fetch_response_offset_fetch_response_topics *ot = &og->topics[i];
            ot->name = ft[i].name;
            RESP_ARRAY(r, ot->partitions, ft[i].n);
            if (ot->partitions == NULL)
                return REQUEST_CLOSE;
            ot->n_partitions = ft[i].n;
            for (int32_t j = 0; j < ft[i].n; j++) {
                struct gc_offset *o = &ft[i].offsets[j];
                int16_t unstable = KERR_NONE;
                if (req->require_stable && !kstr_has_nul(ft[i].name))
                    check_stable(b, rg->group_id.ptr, ft[i].name.ptr, o, &unstable);
                ot->partitions[j].partition_index = o->partition;
                ot->partitions[j].committed_offset = o->offset;
                ot->partitions[j].committed_leader_epoch = o->leader_epoch;
                ot->partitions[j].metadata = (struct kstr){(char *)o->metadata, o->metadata_len};
                ot->partitions[j].error_code = unstable;
                if (!topic_may_describe(b, r, ft[i].name)) {
                    ot->partitions[j].error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                    ot->partitions[j].committed_offset = -1;
                }
            }
        }
    }
    return REQUEST_DONE;
}

enum request_status handle_offset_fetch(struct broker *b, struct request *r)
{
    if (r->api_version >= 8)
        return fetch_groups(b, r);
    return fetch_single(b, r);
}
