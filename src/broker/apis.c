/* apis: the one table mapping each Kafka API key to its advertised versions, codecs and
 * handler (after Redis' command table and librdkafka's mock handler table). */
#include "broker/broker.h"
#include "broker/handlers.h"
#include "group/group_handlers.h"
#include "proto/messages.h"

#define CODEC(lname)                                                                     \
    static int decode_##lname(struct kreader *r, int16_t v, void *out)                    \
    {                                                                                    \
        return lname##_request_decode(r, v, out);                                         \
    }                                                                                    \
    static void encode_##lname(struct kwriter *w, int16_t v, const void *in)             \
    {                                                                                    \
        lname##_response_encode(w, v, in);                                                \
    }

#define API(key, name, lname, min, max, handler)                                          \
    {key, name, min, max, sizeof(struct lname##_request), sizeof(struct lname##_response), \
     decode_##lname, encode_##lname, handler}

CODEC(produce)
CODEC(fetch)
CODEC(list_offsets)
CODEC(metadata)
CODEC(offset_commit)
CODEC(offset_fetch)
CODEC(find_coordinator)
CODEC(join_group)
CODEC(heartbeat)
CODEC(leave_group)
CODEC(sync_group)
CODEC(describe_groups)
CODEC(list_groups)
CODEC(api_versions)
CODEC(create_topics)
CODEC(delete_topics)
CODEC(delete_records)
CODEC(init_producer_id)
CODEC(offset_for_leader_epoch)
CODEC(describe_configs)
CODEC(alter_configs)
CODEC(create_partitions)
CODEC(delete_groups)
CODEC(incremental_alter_configs)
CODEC(offset_delete)
CODEC(describe_cluster)
CODEC(describe_producers)
CODEC(consumer_group_heartbeat)
CODEC(consumer_group_describe)

/* Advertised ranges follow shared/kafka-protocol/API-VERSIONS.md §0, with the floors Kafka 3.9
 * served for pre-0.11 clients (Produce v0-2 and Fetch v0-3 convert message formats). */
const struct api_entry broker_apis[] = {
    API(0, "Produce", produce, 0, 13, handle_produce),
    API(1, "Fetch", fetch, 0, 18, handle_fetch),
    API(2, "ListOffsets", list_offsets, 0, 10, handle_list_offsets),
    API(3, "Metadata", metadata, 0, 13, handle_metadata),
    API(8, "OffsetCommit", offset_commit, 0, 9, handle_offset_commit),
    API(9, "OffsetFetch", offset_fetch, 0, 9, handle_offset_fetch),
    API(10, "FindCoordinator", find_coordinator, 0, 5, handle_find_coordinator),
    API(11, "JoinGroup", join_group, 0, 9, handle_join_group),
    API(12, "Heartbeat", heartbeat, 0, 4, handle_heartbeat),
    API(13, "LeaveGroup", leave_group, 0, 5, handle_leave_group),
    API(14, "SyncGroup", sync_group, 0, 5, handle_sync_group),
    API(15, "DescribeGroups", describe_groups, 0, 6, handle_describe_groups),
    API(16, "ListGroups", list_groups, 0, 5, handle_list_groups),
    API(18, "ApiVersions", api_versions, 0, 4, handle_api_versions),
    API(19, "CreateTopics", create_topics, 2, 7, handle_create_topics),
    API(20, "DeleteTopics", delete_topics, 1, 6, handle_delete_topics),
    API(21, "DeleteRecords", delete_records, 0, 2, handle_delete_records),
    API(22, "InitProducerId", init_producer_id, 0, 5, handle_init_producer_id),
    API(23, "OffsetForLeaderEpoch", offset_for_leader_epoch, 2, 4, handle_offset_for_leader_epoch),
    API(32, "DescribeConfigs", describe_configs, 1, 4, handle_describe_configs),
    API(33, "AlterConfigs", alter_configs, 0, 2, handle_alter_configs),
    API(37, "CreatePartitions", create_partitions, 0, 3, handle_create_partitions),
    API(42, "DeleteGroups", delete_groups, 0, 2, handle_delete_groups),
    API(44, "IncrementalAlterConfigs", incremental_alter_configs, 0, 1, handle_incremental_alter_configs),
    API(47, "OffsetDelete", offset_delete, 0, 0, handle_offset_delete),
    API(60, "DescribeCluster", describe_cluster, 0, 1, handle_describe_cluster),
    API(61, "DescribeProducers", describe_producers, 0, 0, handle_describe_producers),
    API(68, "ConsumerGroupHeartbeat", consumer_group_heartbeat, 0, 1, handle_consumer_group_heartbeat),
    API(69, "ConsumerGroupDescribe", consumer_group_describe, 0, 0, handle_consumer_group_describe),
};
const int broker_apis_count = (int)(sizeof(broker_apis) / sizeof(broker_apis[0]));

const struct api_entry *broker_api_find(int16_t key)
{
    for (int i = 0; i < broker_apis_count; i++)
        if (broker_apis[i].key == key)
            return &broker_apis[i];
    return NULL;
}
