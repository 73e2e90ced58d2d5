/* DescribeLogDirs (35): each of this broker's log directories with the replicas it holds
 * (leader or follower) and their size on disk, as Kafka's ReplicaManager.describeLogDirs.
 * Topics null asks for every replica; listed topics and partitions this broker does not hold
 * are left out (as Kafka). No future replicas (gregor does not move replicas between dirs):
 * offset_lag is 0 and is_future_key false. Needs DESCRIBE on the cluster: else
 * CLUSTER_AUTHORIZATION_FAILED (v3+ top-level; results empty, as Kafka). Bounded by the
 * topics and partitions the broker holds. */
#include <string.h>
#include <sys/statvfs.h>

#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "log/logdir.h"
#include "partition/partition.h"
#include "proto/messages.h"

/* Whether the request asks for partition i of t (topics null: every one). */
static bool wanted(const struct describe_log_dirs_request *req, const struct topic *t, int32_t i)
{
    if (req->n_topics < 0)
        return true;
    for (int32_t k = 0; k < req->n_topics; k++) {
        const struct describe_log_dirs_request_describable_log_dir_topic *rt = &req->topics[k];
        if (rt->topic.ptr == NULL || (size_t)rt->topic.len != strlen(t->name) ||
            memcmp(rt->topic.ptr, t->name, (size_t)rt->topic.len) != 0)
            continue;
        for (int32_t j = 0; j < rt->n_partitions; j++)
            if (rt->partitions[j] == i)
                return true;
    }
    return false;
}

/* Dir d's topics (the replicas held there and asked for) into res: 0, or -1 out of memory. */
static int describe_dir(struct broker *b, struct request *r,
                        const struct describe_log_dirs_request *req, int d,
                        struct describe_log_dirs_response_describe_log_dirs_result *res)
{
    int32_t ntopics = 0;
    for (struct topic *t = topic_iter_first(b); t != NULL; t = topic_iter_next(b, t))
        ntopics++;
    RESP_ARRAY(r, res->topics, ntopics);
    if (res->topics == NULL)
        return -1;
    int32_t nt = 0;
    for (struct topic *t = topic_iter_first(b); t != NULL && nt < ntopics;
         t = topic_iter_next(b, t)) {
        if (t->creating > 0)
            continue;
        int32_t np = 0;
        for (int32_t i = 0; i < t->npartitions; i++)
            np += t->partitions[i] != NULL && t->partitions[i]->dir_index == d && wanted(req, t, i);
        if (np == 0)
            continue;
        struct describe_log_dirs_response_describe_log_dirs_topic *rt = &res->topics[nt++];
        rt->name = kstr_of(t->name);
        RESP_ARRAY(r, rt->partitions, np);
        if (rt->partitions == NULL)
            return -1;
        for (int32_t i = 0; i < t->npartitions && rt->n_partitions < np; i++) {
            const struct partition *p = t->partitions[i];
            if (p == NULL || p->dir_index != d || !wanted(req, t, i))
                continue;
            struct describe_log_dirs_response_describe_log_dirs_partition *rp =
                &rt->partitions[rt->n_partitions++];
            rp->partition_index = i;
            rp->partition_size = partition_size_bytes(p);
            rp->offset_lag = 0;
            rp->is_future_key = false;
        }
    }
    res->n_topics = nt;
    return 0;
}

enum request_status handle_describe_log_dirs(struct broker *b, struct request *r)
{
    struct describe_log_dirs_request *req = r->body;
    struct describe_log_dirs_response *resp = r->resp;
    if (!authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        RESP_ARRAY(r, resp->results, 0);
        return resp->results != NULL ? REQUEST_DONE : REQUEST_CLOSE;
    }
    RESP_ARRAY(r, resp->results, b->ndirs);
    if (resp->results == NULL)
        return REQUEST_CLOSE;
    for (int d = 0; d < b->ndirs; d++) {
        struct describe_log_dirs_response_describe_log_dirs_result *res = &resp->results[d];
        const char *path = logdir_path(b->dirs[d]);
        res->error_code = KERR_NONE;
        res->log_dir = kstr_of(path);
        struct statvfs sv;
        if (statvfs(path, &sv) == 0) {
            res->total_bytes = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
            res->usable_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
        } else {
            res->total_bytes = res->usable_bytes = -1; /* Kafka's UNKNOWN_VOLUME_BYTES */
        }
        if (describe_dir(b, r, req, d, res) != 0)
            return REQUEST_CLOSE;
        resp->n_results++;
    }
    return REQUEST_DONE;
}
