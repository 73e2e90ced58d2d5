/* apis: the one table mapping each Kafka API key the broker serves to its codecs and handler
 * (after Redis' command table and librdkafka's mock handler table); names and advertised
 * versions are generated from src/proto/messages.def. */
#include "broker/broker.h"
#include "broker/group_handlers.h"
#include "broker/handlers.h"
#include "broker/sasl.h"
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

/* Key, name and advertised versions come from src/proto/messages.def ("served"); the optional
 * hooks (shutdown, newer_version, response_header_v0) follow the handler. */
#define API(NAME, lname, fn, ...)                                                          \
    {.key = PROTO_API_##NAME, .name = PROTO_API_##NAME##_NAME,                               \
     .min_version = PROTO_API_##NAME##_SERVED_MIN, .max_version = PROTO_API_##NAME##_SERVED_MAX, \
     .request_size = sizeof(struct lname##_request),                                        \
     .response_size = sizeof(struct lname##_response), .decode = decode_##lname,            \
     .encode = encode_##lname, .handler = fn, __VA_ARGS__}

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
CODEC(describe_log_dirs)
CODEC(describe_acls)
CODEC(create_acls)
CODEC(delete_acls)
CODEC(describe_producers)
CODEC(write_txn_markers)
CODEC(add_partitions_to_txn)
CODEC(add_offsets_to_txn)
CODEC(end_txn)
CODEC(txn_offset_commit)
CODEC(describe_transactions)
CODEC(list_transactions)
CODEC(consumer_group_heartbeat)
CODEC(consumer_group_describe)
CODEC(controlled_shutdown)
CODEC(elect_leaders)
CODEC(alter_partition_reassignments)
CODEC(list_partition_reassignments)
CODEC(sasl_handshake)
CODEC(sasl_authenticate)
CODEC(describe_user_scram_credentials)
CODEC(alter_user_scram_credentials)
CODEC(describe_client_quotas)
CODEC(alter_client_quotas)

/* Key -> handler, in key order (ApiVersions answers in this order). The advertised ranges are
 * messages.def's "served" ones: shared/kafka-protocol/API-VERSIONS.md §0, with the floors Kafka
 * 3.9 served for pre-0.11 clients (Produce v0-2 and Fetch v0-3 convert message formats). */
const struct api_entry broker_apis[] = {
    API(PRODUCE, produce, handle_produce, .shutdown = produce_shutdown),
    API(FETCH, fetch, handle_fetch, .shutdown = fetch_shutdown),
    API(LIST_OFFSETS, list_offsets, handle_list_offsets),
    API(METADATA, metadata, handle_metadata),
    API(CONTROLLED_SHUTDOWN, controlled_shutdown, handle_controlled_shutdown),
    API(OFFSET_COMMIT, offset_commit, handle_offset_commit),
    API(OFFSET_FETCH, offset_fetch, handle_offset_fetch),
    API(FIND_COORDINATOR, find_coordinator, handle_find_coordinator),
    API(JOIN_GROUP, join_group, handle_join_group),
    API(HEARTBEAT, heartbeat, handle_heartbeat),
    API(LEAVE_GROUP, leave_group, handle_leave_group),
    API(SYNC_GROUP, sync_group, handle_sync_group),
    API(DESCRIBE_GROUPS, describe_groups, handle_describe_groups),
    API(LIST_GROUPS, list_groups, handle_list_groups),
    API(SASL_HANDSHAKE, sasl_handshake, handle_sasl_handshake),
    API(API_VERSIONS, api_versions, handle_api_versions,
        .newer_version = api_versions_unsupported, .response_header_v0 = true),
    API(CREATE_TOPICS, create_topics, handle_create_topics,
        .shutdown = create_topics_shutdown), /* also CreatePartitions' and auto-creation's jobs */
    API(DELETE_TOPICS, delete_topics, handle_delete_topics),
    API(DELETE_RECORDS, delete_records, handle_delete_records),
    API(INIT_PRODUCER_ID, init_producer_id, handle_init_producer_id),
    API(OFFSET_FOR_LEADER_EPOCH, offset_for_leader_epoch, handle_offset_for_leader_epoch),
    API(ADD_PARTITIONS_TO_TXN, add_partitions_to_txn, handle_add_partitions_to_txn),
    API(ADD_OFFSETS_TO_TXN, add_offsets_to_txn, handle_add_offsets_to_txn),
    API(END_TXN, end_txn, handle_end_txn),
    API(WRITE_TXN_MARKERS, write_txn_markers, handle_write_txn_markers),
    API(TXN_OFFSET_COMMIT, txn_offset_commit, handle_txn_offset_commit),
    API(DESCRIBE_ACLS, describe_acls, handle_describe_acls),
    API(CREATE_ACLS, create_acls, handle_create_acls, .shutdown = acls_shutdown),
    API(DELETE_ACLS, delete_acls, handle_delete_acls),
    API(DESCRIBE_CONFIGS, describe_configs, handle_describe_configs),
    API(ALTER_CONFIGS, alter_configs, handle_alter_configs),
    API(DESCRIBE_LOG_DIRS, describe_log_dirs, handle_describe_log_dirs),
    API(SASL_AUTHENTICATE, sasl_authenticate, handle_sasl_authenticate,
        .shutdown = sasl_shutdown), /* also the raw tokens' failed logins */
    API(CREATE_PARTITIONS, create_partitions, handle_create_partitions),
    API(DELETE_GROUPS, delete_groups, handle_delete_groups),
    API(ELECT_LEADERS, elect_leaders, handle_elect_leaders),
    API(INCREMENTAL_ALTER_CONFIGS, incremental_alter_configs, handle_incremental_alter_configs),
    API(ALTER_PARTITION_REASSIGNMENTS, alter_partition_reassignments,
        handle_alter_partition_reassignments),
    API(LIST_PARTITION_REASSIGNMENTS, list_partition_reassignments,
        handle_list_partition_reassignments),
    API(OFFSET_DELETE, offset_delete, handle_offset_delete),
    API(DESCRIBE_CLIENT_QUOTAS, describe_client_quotas, handle_describe_client_quotas),
    API(ALTER_CLIENT_QUOTAS, alter_client_quotas, handle_alter_client_quotas),
    API(DESCRIBE_USER_SCRAM_CREDENTIALS, describe_user_scram_credentials,
        handle_describe_user_scram_credentials),
    API(ALTER_USER_SCRAM_CREDENTIALS, alter_user_scram_credentials,
        handle_alter_user_scram_credentials),
    API(DESCRIBE_CLUSTER, describe_cluster, handle_describe_cluster),
    API(DESCRIBE_PRODUCERS, describe_producers, handle_describe_producers),
    API(DESCRIBE_TRANSACTIONS, describe_transactions, handle_describe_transactions),
    API(LIST_TRANSACTIONS, list_transactions, handle_list_transactions),
    API(CONSUMER_GROUP_HEARTBEAT, consumer_group_heartbeat, handle_consumer_group_heartbeat),
    API(CONSUMER_GROUP_DESCRIBE, consumer_group_describe, handle_consumer_group_describe),
};
const int broker_apis_count = (int)(sizeof(broker_apis) / sizeof(broker_apis[0]));
/* Every API messages.def marks served has its handler here (and no other). */
_Static_assert(sizeof(broker_apis) / sizeof(broker_apis[0]) == PROTO_SERVED_APIS_COUNT,
               "broker_apis must list exactly the APIs messages.def marks served");

const struct api_entry *broker_api_find(int16_t key)
{
    for (int i = 0; i < broker_apis_count; i++)
        if (broker_apis[i].key == key)
            return &broker_apis[i];
    return NULL;
}
