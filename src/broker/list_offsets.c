/* ListOffsets (2): v0's old form (a list of offsets, below), earliest (-2), latest (-1: the high
 * watermark, or the last stable offset for isolation_level 1), max timestamp (-3), earliest local (-4, v8+:
 * the log start, everything is local here), last tiered (-5, v9+: none, offset -1), or the
 * first offset whose timestamp is at least the one asked, per partition. As Kafka 4.1, -4 and
 * -5 below their versions are UNSUPPORTED_VERSION. */
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "broker/kutil.h"
#include "common/util.h"
#include "proto/messages.h"

static void list_one(struct broker *b, struct topic *t, int16_t version, int8_t isolation_level,
                     const struct list_offsets_request_list_offsets_partition *in,
                     struct list_offsets_response_list_offsets_partition_response *out)
{
    (void)b;
    out->partition_index = in->partition_index;
    out->timestamp = -1;
    out->offset = -1;
    out->leader_epoch = 0;
    if (t == NULL || in->partition_index < 0 || in->partition_index >= t->npartitions) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    struct partition *p = t->partitions[in->partition_index];
    int le = partition_check_leader_epoch(p, in->current_leader_epoch);
    if (le != KERR_NONE) {
        out->error_code = (int16_t)le;
        return;
    }
    out->leader_epoch = p->leader_epoch;
    if ((in->timestamp == -4 && version < 8) || (in->timestamp == -5 && version < 9)) {
        out->error_code = KERR_UNSUPPORTED_VERSION;
        out->leader_epoch = -1;
        return;
    }
    switch (in->timestamp) {
    case -1: /* read_committed: the last stable offset (Kafka's fetchOffsetForTimestamp) */
        out->offset = isolation_level == 1 ? partition_last_stable_offset(p)
                                           : partition_high_watermark(p);
        break;
    case -2:
    case -4: /* earliest local: everything is local here */
        out->offset = partition_log_start(p);
        break;
    case -5: /* last tiered: nothing is tiered */
        out->leader_epoch = -1;
        break;
    default: {
        int64_t off = -1, ts = -1;
        int e = partition_offset_for_timestamp(p, in->timestamp, &off, &ts);
        if (e != KERR_NONE) {
            out->error_code = (int16_t)e;
            return;
        }
        /* Kafka's fetchOffsetForTimestamp: read_committed finds no offset at or past the LSO. */
        if (isolation_level == 1 && off >= partition_last_stable_offset(p))
            off = -1;
        out->offset = off;
        out->timestamp = off >= 0 ? ts : -1;
        out->leader_epoch = off >= 0 ? partition_epoch_for_offset(p, off) : -1;
        break;
    }
    }
}

/* ListOffsets v0: up to max_num_offsets offsets, newest first. Latest (-1) lists the log end
 * then the segments' base offsets (Kafka's legacy fetchOffsetsBefore); earliest (-2) the log
 * start. Kafka 3.9 matched other timestamps against segment file times; here such a timestamp
 * gets the offset ListOffsets v1 would give (the first with a timestamp at least it), if any. */
static int list_old_style(struct request *r, struct topic *t,
                          const struct list_offsets_request_list_offsets_partition *in,
                          struct list_offsets_response_list_offsets_partition_response *out)
{
    out->partition_index = in->partition_index;
    out->old_style_offsets = NULL;
    out->n_old_style_offsets = 0;
    if (t == NULL || in->partition_index < 0 || in->partition_index >= t->npartitions) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return 0;
    }
    struct partition *p = t->partitions[in->partition_index];
    int max = in->max_num_offsets;
    if (max <= 0)
        return 0;
    if (in->timestamp != -1 && max > 1)
        max = 1;
    int nsegs = partition_segment_count(p) + 1;
    if (max > nsegs)
        max = nsegs; /* bounded by the log, not by the client's number */
    int64_t *offs = request_alloc(r, sizeof(int64_t) * (size_t)max);
    if (offs == NULL)
        return -1;
    int n = 0;
    if (in->timestamp == -1) {
        n = partition_segment_offsets(p, offs, max);
    } else if (in->timestamp == -2) {
        offs[n++] = partition_log_start(p);
    } else {
        int64_t off = -1, ts = -1;
        int e = partition_offset_for_timestamp(p, in->timestamp, &off, &ts);
        if (e != KERR_NONE) {
            out->error_code = (int16_t)e;
            return 0;
        }
        if (off >= 0)
            offs[n++] = off;
    }
    for (int i = 1; i < n; i++)
        GREGOR_ASSERT(offs[i] <= offs[i - 1]); /* newest first */
    out->old_style_offsets = offs;
    out->n_old_style_offsets = n;
    return 0;
}

enum request_status handle_list_offsets(struct broker *b, struct request *r)
{
    struct list_offsets_request *req = r->body;
    struct list_offsets_response *resp = r->resp;
    int32_t nt = req->n_topics > 0 ? req->n_topics : 0;
    RESP_ARRAY(r, resp->topics, nt);
    if (resp->topics == NULL)
        return REQUEST_CLOSE;
    resp->n_topics = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct list_offsets_request_list_offsets_topic *it = &req->topics[i];
        struct list_offsets_response_list_offsets_topic_response *ot = &resp->topics[i];
        ot->name = it->name;
        struct topic *t = topic_find_name(b, it->name);
        int32_t np = it->n_partitions > 0 ? it->n_partitions : 0;
        RESP_ARRAY(r, ot->partitions, np);
        if (ot->partitions == NULL)
            return REQUEST_CLOSE;
        ot->n_partitions = np;
        bool denied = !authorize_kstr(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, it->name.ptr,
                                      it->name.len);
        for (int32_t j = 0; j < np; j++) {
            if (denied) { /* KafkaApis: DESCRIBE on the topic */
                struct list_offsets_response_list_offsets_partition_response *o = &ot->partitions[j];
                o->partition_index = it->partitions[j].partition_index;
                o->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                o->timestamp = -1;
                o->offset = -1;
                o->leader_epoch = -1;
                continue;
            }
            if (broker_leader_check(b, it->name, it->partitions[j].partition_index) != KERR_NONE) {
                /* On a cluster, another broker leads it: the client refreshes Metadata. */
                struct list_offsets_response_list_offsets_partition_response *o = &ot->partitions[j];
                o->partition_index = it->partitions[j].partition_index;
                o->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
                o->timestamp = -1;
                o->offset = -1;
                o->leader_epoch = -1;
                continue;
            }
            if (r->api_version > 0)
                list_one(b, t, r->api_version, req->isolation_level, &it->partitions[j], &ot->partitions[j]);
            else if (list_old_style(r, t, &it->partitions[j], &ot->partitions[j]) < 0)
                return REQUEST_CLOSE;
        }
    }
    return REQUEST_DONE;
}
