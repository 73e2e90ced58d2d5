/* config_catalog: Kafka 4.x's topic configs (LogConfig) and the broker keys behind them
 * (ServerTopicConfigSynonyms), with Kafka's validators and messages; one table for every
 * handler that takes or shows a topic config. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "broker/config_catalog.h"
#include "common/errors.h"

static const char *const cleanup_policies[] = {"compact", "delete", NULL};
static const char *const compression_types[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip",
                                                "producer", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};

#define I32 INT32_MAX
#define I64 INT64_MAX
#define S(...) {__VA_ARGS__}

/* In name order. Defaults are Kafka 4.x's (KIP-1030: message.timestamp.after.max.ms is one
 * hour); segment.bytes keeps Kafka 4.x's 1 MiB minimum. */
const struct topic_config_def config_catalog_topics[] = {
    {"cleanup.policy", CONFIG_TYPE_LIST, "delete", CHECK_LIST_OF, 0, 0, cleanup_policies,
     S("log.cleanup.policy"), true},
    {"compression.gzip.level", CONFIG_TYPE_INT, "-1", CHECK_GZIP_LEVEL, 1, 9, NULL,
     S("compression.gzip.level"), false},
    {"compression.lz4.level", CONFIG_TYPE_INT, "9", CHECK_RANGE, 1, 17, NULL,
     S("compression.lz4.level"), false},
    {"compression.type", CONFIG_TYPE_STRING, "producer", CHECK_ONE_OF, 0, 0, compression_types,
     S("compression.type"), false},
    {"compression.zstd.level", CONFIG_TYPE_INT, "3", CHECK_RANGE, -131072, 22, NULL,
     S("compression.zstd.level"), false},
    {"delete.retention.ms", CONFIG_TYPE_LONG, "86400000", CHECK_RANGE, 0, I64, NULL,
     S("log.cleaner.delete.retention.ms"), true},
    {"file.delete.delay.ms", CONFIG_TYPE_LONG, "60000", CHECK_RANGE, 0, I64, NULL,
     S("log.segment.delete.delay.ms"), true},
    {"flush.messages", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 1, I64, NULL,
     S("log.flush.interval.messages"), true},
    {"flush.ms", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 0, I64, NULL,
     S("log.flush.interval.ms", "log.flush.scheduler.interval.ms"), true},
    {"follower.replication.throttled.replicas", CONFIG_TYPE_LIST, "", CHECK_THROTTLED, 0, 0,
     NULL, S(NULL), false},
    {"index.interval.bytes", CONFIG_TYPE_INT, "4096", CHECK_RANGE, 0, I32, NULL,
     S("log.index.interval.bytes"), true},
    {"leader.replication.throttled.replicas", CONFIG_TYPE_LIST, "", CHECK_THROTTLED, 0, 0, NULL,
     S(NULL), false},
    {"local.retention.bytes", CONFIG_TYPE_LONG, "-2", CHECK_RANGE, -2, I64, NULL,
     S("log.local.retention.bytes"), false},
    {"local.retention.ms", CONFIG_TYPE_LONG, "-2", CHECK_RANGE, -2, I64, NULL,
     S("log.local.retention.ms"), false},
    {"max.compaction.lag.ms", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 1, I64, NULL,
     S("log.cleaner.max.compaction.lag.ms"), true},
    {"max.message.bytes", CONFIG_TYPE_INT, "1048588", CHECK_RANGE, 0, I32, NULL,
     S("message.max.bytes"), true},
    {"message.downconversion.enable", CONFIG_TYPE_BOOLEAN, "true", CHECK_NONE, 0, 0, NULL,
     S("log.message.downconversion.enable"), false},
    {"message.timestamp.after.max.ms", CONFIG_TYPE_LONG, "3600000", CHECK_RANGE, 0, I64, NULL,
     S("log.message.timestamp.after.max.ms"), false},
    {"message.timestamp.before.max.ms", CONFIG_TYPE_LONG, "9223372036854775807", CHECK_RANGE, 0,
     I64, NULL, S("log.message.timestamp.before.max.ms"), false},
    {"message.timestamp.type", CONFIG_TYPE_STRING, "CreateTime", CHECK_ONE_OF, 0, 0,
     timestamp_types, S("log.message.timestamp.type"), true},
    {"min.cleanable.dirty.ratio", CONFIG_TYPE_DOUBLE, "0.5", CHECK_RANGE, 0, 1, NULL,
     S("log.cleaner.min.cleanable.ratio"), true},
    {"min.compaction.lag.ms", CONFIG_TYPE_LONG, "0", CHECK_RANGE, 0, I64, NULL,
     S("log.cleaner.min.compaction.lag.ms"), true},
    {"min.insync.replicas", CONFIG_TYPE_INT, "1", CHECK_RANGE, 1, I32, NULL,
     S("min.insync.replicas"), false},
    {"preallocate", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL, S("log.preallocate"),
     false},
    {"remote.log.copy.disable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL, S(NULL),
     false},
    {"remote.log.delete.on.disable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL,
     S(NULL), false},
    {"remote.storage.enable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL, S(NULL),
     false},
    {"retention.bytes", CONFIG_TYPE_LONG, "-1", CHECK_NONE, 0, 0, NULL,
     S("log.retention.bytes"), true},
    {"retention.ms", CONFIG_TYPE_LONG, "604800000", CHECK_RANGE, -1, I64, NULL,
     S("log.retention.ms", "log.retention.minutes", "log.retention.hours"), true},
    {"segment.bytes", CONFIG_TYPE_INT, "1073741824", CHECK_RANGE, 1048576, I32, NULL,
     S("log.segment.bytes"), true},
    {"segment.index.bytes", CONFIG_TYPE_INT, "10485760", CHECK_RANGE, 4, I32, NULL,
     S("log.index.size.max.bytes"), true},
    {"segment.jitter.ms", CONFIG_TYPE_LONG, "0", CHECK_RANGE, 0, I64, NULL,
     S("log.roll.jitter.ms", "log.roll.jitter.hours"), false},
    {"segment.ms", CONFIG_TYPE_LONG, "604800000", CHECK_RANGE, 1, I64, NULL,
     S("log.roll.ms", "log.roll.hours"), true},
    {"unclean.leader.election.enable", CONFIG_TYPE_BOOLEAN, "false", CHECK_NONE, 0, 0, NULL,
     S("unclean.leader.election.enable"), false},
};
const int config_catalog_ntopics = sizeof(config_catalog_topics) / sizeof(config_catalog_topics[0]);

#define T(i) (&config_catalog_topics[i])
#define RO BROKER_KEY_READ_ONLY
#define DYN BROKER_KEY_DYNAMIC
#define STARTUP BROKER_KEY_STARTUP
#define QUOTA BROKER_KEY_QUOTA
#define BOOLEAN CONFIG_TYPE_BOOLEAN
#define STRING CONFIG_TYPE_STRING
#define INT CONFIG_TYPE_INT
#define SHORT CONFIG_TYPE_SHORT
#define LONG CONFIG_TYPE_LONG
#define DOUBLE CONFIG_TYPE_DOUBLE
#define LIST CONFIG_TYPE_LIST
#define OFF(f) offsetof(struct broker_config, f)
/* Where the value goes: a typed field with its accepted range (and unit), config.c's own
 * parser, or nowhere (accepted; applied through its topic config, or no effect here). */
#define I32F(f, lo, hi) BROKER_STORE_I32, OFF(f), lo, hi, 1
#define I64F(f, lo, hi, scale) BROKER_STORE_I64, OFF(f), lo, hi, scale
#define BOOLF(f) BROKER_STORE_BOOL, OFF(f), 0, 0, 1
#define SPECIAL BROKER_STORE_SPECIAL, 0, 0, 0, 1
#define NOFIELD BROKER_STORE_NONE, 0, 0, 0, 1
#define NOFIELD_SCALED(scale) BROKER_STORE_NONE, 0, 0, 0, scale

/* Every broker key gregor knows, once. In DescribeConfigs' order: the topic configs' synonyms
 * (the first of each is dynamic in Kafka and checked as the topic config; the others link to
 * it for their unit), then the other keys gregor reads, then the server.properties-only keys.
 * The topic links are by index into config_catalog_topics; tests/unit/test_config.c checks
 * that every link and every synonym resolves both ways, and each default against
 * broker_config_defaults(). */
const struct broker_key_def config_catalog_broker[] = {
    {"compression.gzip.level", INT, "-1", DYN, NOFIELD, T(1)},
    {"compression.lz4.level", INT, "9", DYN, NOFIELD, T(2)},
    {"compression.type", STRING, "producer", DYN, NOFIELD, T(3)},
    {"compression.zstd.level", INT, "3", DYN, NOFIELD, T(4)},
    {"log.cleaner.delete.retention.ms", LONG, "86400000", DYN, NOFIELD, T(5)},
    {"log.cleaner.max.compaction.lag.ms", LONG, "9223372036854775807", DYN, NOFIELD, T(14)},
    {"log.cleaner.min.cleanable.ratio", DOUBLE, "0.5", DYN, NOFIELD, T(20)},
    {"log.cleaner.min.compaction.lag.ms", LONG, "0", DYN, NOFIELD, T(21)},
    {"log.cleanup.policy", LIST, "delete", DYN, NOFIELD, T(0)},
    {"log.flush.interval.messages", LONG, "9223372036854775807", DYN, I64F(log.flush_messages, 1, I64, 1), T(7)},
    {"log.flush.interval.ms", LONG, NULL, DYN, I64F(log.flush_ms, 0, I64, 1), T(8)},
    {"log.flush.scheduler.interval.ms", LONG, "1000", RO, I64F(log_flush_scheduler_interval_ms, 1, I64, 1), T(8)},
    {"log.index.interval.bytes", INT, "4096", DYN, I32F(log.index_interval_bytes, 0, INT_MAX), T(10)},
    {"log.index.size.max.bytes", INT, "10485760", DYN, I32F(log.segment_index_bytes, 4, INT_MAX), T(30)},
    {"log.local.retention.bytes", LONG, "-2", DYN, NOFIELD, T(12)},
    {"log.local.retention.ms", LONG, "-2", DYN, NOFIELD, T(13)},
    {"log.message.downconversion.enable", BOOLEAN, "true", DYN, NOFIELD, T(16)},
    {"log.message.timestamp.after.max.ms", LONG, "3600000", DYN, NOFIELD, T(17)},
    {"log.message.timestamp.before.max.ms", LONG, "9223372036854775807", DYN, NOFIELD, T(18)},
    {"log.message.timestamp.type", STRING, "CreateTime", DYN, SPECIAL, T(19)},
    {"log.preallocate", BOOLEAN, "false", DYN, NOFIELD, T(23)},
    {"log.retention.bytes", LONG, "-1", DYN, I64F(log.retention_bytes, -1, I64, 1), T(27)},
    {"log.retention.hours", INT, "168", RO, I64F(log.retention_ms, -1, INT_MAX, 3600000), T(28)},
    {"log.retention.minutes", INT, NULL, RO, I64F(log.retention_ms, -1, INT_MAX, 60000), T(28)},
    {"log.retention.ms", LONG, NULL, DYN, I64F(log.retention_ms, -1, I64, 1), T(28)},
    {"log.roll.hours", INT, "168", RO, I64F(log.segment_ms, 1, INT_MAX, 3600000), T(32)},
    {"log.roll.jitter.hours", INT, "0", RO, NOFIELD_SCALED(3600000), T(31)},
    {"log.roll.jitter.ms", LONG, NULL, DYN, NOFIELD, T(31)},
    {"log.roll.ms", LONG, NULL, DYN, I64F(log.segment_ms, 1, I64, 1), T(32)},
    {"log.segment.bytes", INT, "1073741824", DYN, I64F(log.segment_bytes, 1024 * 1024, INT_MAX, 1), T(29)},
    {"log.segment.delete.delay.ms", LONG, "60000", DYN, I64F(log.file_delete_delay_ms, 0, I64, 1), T(6)},
    {"message.max.bytes", INT, "1048588", DYN, I32F(log.max_message_bytes, 0, INT_MAX), T(15)},
    {"min.insync.replicas", INT, "1", DYN, NOFIELD, T(22)},
    {"unclean.leader.election.enable", BOOLEAN, "false", DYN, BOOLF(unclean_leader_election_enable), T(33)},
    /* Connection limits (SocketServer's reconfigurable configs). */
    {"max.connections", INT, "10000", DYN, I32F(max_connections, 1, 1000000), NULL},
    {"max.connections.per.ip", INT, "2147483647", DYN, I32F(max_connections_per_ip, 0, INT_MAX), NULL},
    {"max.connections.per.ip.overrides", STRING, "", RO, SPECIAL, NULL},
    /* Thread pools Kafka resizes at runtime: one loop thread here, accepted with no effect. */
    {"background.threads", INT, "10", DYN, NOFIELD, NULL},
    {"num.io.threads", INT, "8", DYN, NOFIELD, NULL},
    {"num.network.threads", INT, "3", DYN, NOFIELD, NULL},
    {"num.recovery.threads.per.data.dir", INT, "2", DYN, NOFIELD, NULL},
    {"num.replica.fetchers", INT, "1", DYN, I32F(num_replica_fetchers, 1, INT_MAX), NULL},
    /* KIP-73 replication quotas (QuotaConfigs.brokerQuotaConfigs: LONG, at least 0, default
     * Long.MAX_VALUE, which no KafkaConfig describes); broker/replication_quota.c. Moving
     * replicas between log dirs is not done here: that rate is kept, with no effect. */
    {"follower.replication.throttled.rate", LONG, NULL, QUOTA, I64F(follower_replication_throttled_rate, 0, I64, 1), NULL},
    {"leader.replication.throttled.rate", LONG, NULL, QUOTA, I64F(leader_replication_throttled_rate, 0, I64, 1), NULL},
    {"replica.alter.log.dirs.io.max.bytes.per.second", LONG, NULL, QUOTA, I64F(replica_alter_log_dirs_io_max_bytes_per_second, 0, I64, 1), NULL},
    /* The log cleaner's reconfigurable keys (Kafka's CleanerConfig; a change restarts the
     * cleaner threads, as Kafka's LogCleaner.reconfigure; broker/log_cleaner.c). */
    {"log.cleaner.backoff.ms", LONG, "15000", DYN, I64F(log_cleaner.backoff_ms, 0, I64, 1), NULL},
    {"log.cleaner.dedupe.buffer.size", LONG, "134217728", DYN, I64F(log_cleaner.dedupe_buffer_size, INT64_MIN, I64, 1), NULL},
    {"log.cleaner.io.buffer.load.factor", DOUBLE, "0.9", DYN, SPECIAL, NULL},
    {"log.cleaner.io.buffer.size", INT, "524288", DYN, I32F(log_cleaner.io_buffer_size, 0, INT_MAX), NULL},
    {"log.cleaner.io.max.bytes.per.second", DOUBLE, "1.7976931348623157E308", DYN, SPECIAL, NULL},
    {"log.cleaner.threads", INT, "1", DYN, I32F(log_cleaner.threads, 0, INT_MAX), NULL},
    /* Read-only: fixed when the broker starts. */
    {"advertised.listeners", STRING, NULL, RO, SPECIAL, NULL},
    {"auto.create.topics.enable", BOOLEAN, "true", RO, BOOLF(auto_create_topics), NULL},
    {"auto.leader.rebalance.enable", BOOLEAN, "true", RO, BOOLF(auto_leader_rebalance_enable), NULL},
    {"broker.id", INT, "-1", RO, I32F(node_id, -1, INT_MAX), NULL},
    {"broker.rack", STRING, NULL, RO, SPECIAL, NULL},
    {"controlled.shutdown.enable", BOOLEAN, "true", RO, BOOLF(controlled_shutdown_enable), NULL},
    {"log.cleaner.enable", BOOLEAN, "true", RO, BOOLF(log_cleaner.enable), NULL},
    {"controlled.shutdown.max.retries", INT, "3", RO, I32F(controlled_shutdown_max_retries, INT_MIN, INT_MAX), NULL},
    {"controlled.shutdown.retry.backoff.ms", LONG, "5000", RO, I64F(controlled_shutdown_retry_backoff_ms, INT64_MIN, I64, 1), NULL},
    {"connections.max.idle.ms", LONG, "600000", RO, I64F(connections_max_idle_ms, -1, I64, 1), NULL},
    {"default.replication.factor", INT, "1", RO, SPECIAL, NULL},
    {"delete.topic.enable", BOOLEAN, "true", RO, BOOLF(delete_topic_enable), NULL},
    {"fetch.max.bytes", INT, "57671680", RO, I64F(fetch_max_bytes, 1024, INT_MAX, 1), NULL},
    {"gregor.acks.all.fsync", BOOLEAN, "true", RO, BOOLF(acks_all_fsync), NULL},
    {"gregor.http.listener", STRING, "", RO, SPECIAL, NULL},
    {"group.consumer.heartbeat.interval.ms", INT, "5000", RO, I32F(group_consumer_heartbeat_interval_ms, 1, INT_MAX), NULL},
    {"group.consumer.max.size", INT, "2147483647", RO, I32F(group_consumer_max_size, 1, INT_MAX), NULL},
    {"group.consumer.migration.policy", STRING, "bidirectional", RO, SPECIAL, NULL},
    {"group.consumer.session.timeout.ms", INT, "45000", RO, I32F(group_consumer_session_timeout_ms, 1, INT_MAX), NULL},
    {"group.initial.rebalance.delay.ms", INT, "3000", RO, I32F(group_initial_rebalance_delay_ms, 0, INT_MAX), NULL},
    {"group.max.session.timeout.ms", INT, "1800000", RO, I32F(group_max_session_timeout_ms, 0, INT_MAX), NULL},
    {"group.max.size", INT, "2147483647", RO, I32F(group_max_size, 1, INT_MAX), NULL},
    {"group.min.session.timeout.ms", INT, "6000", RO, I32F(group_min_session_timeout_ms, 0, INT_MAX), NULL},
    {"leader.imbalance.check.interval.seconds", LONG, "300", RO, I64F(leader_imbalance_check_interval_s, 1, I64, 1), NULL},
    {"leader.imbalance.per.broker.percentage", INT, "10", RO, I32F(leader_imbalance_per_broker_percentage, INT_MIN, INT_MAX), NULL},
    {"listeners", STRING, "PLAINTEXT://:9092", RO, SPECIAL, NULL},
    {"log.dir", STRING, "/tmp/kafka-logs", RO, SPECIAL, NULL},
    {"log.dirs", STRING, NULL, RO, SPECIAL, NULL},
    {"log.flush.offset.checkpoint.interval.ms", INT, "60000", RO, I64F(offset_checkpoint_interval_ms, 1, INT_MAX, 1), NULL},
    {"log.retention.check.interval.ms", LONG, "300000", RO, I64F(log_retention_check_interval_ms, 1, I64, 1), NULL},
    {"node.id", INT, "-1", RO, I32F(node_id, 0, INT_MAX), NULL},
    {"num.partitions", INT, "1", RO, I32F(num_partitions, 1, 1000000), NULL},
    {"offset.metadata.max.bytes", INT, "4096", RO, I32F(offset_metadata_max_bytes, 0, INT_MAX), NULL},
    {"offsets.retention.minutes", INT, "10080", RO, I64F(offsets_retention_ms, 1, INT_MAX, 60000), NULL},
    {"offsets.topic.num.partitions", INT, "50", RO, I32F(offsets_topic_num_partitions, 1, 1000), NULL},
    {"offsets.topic.replication.factor", SHORT, "3", RO, SPECIAL, NULL},
    {"offsets.topic.segment.bytes", INT, "104857600", RO, I32F(offsets_topic_segment_bytes, 1, INT_MAX), NULL},
    /* Followers (Kafka's ReplicationConfigs: the atLeast(0) ones ranged, the others not). */
    {"replica.fetch.backoff.ms", INT, "1000", RO, I32F(replica_fetch_backoff_ms, 0, INT_MAX), NULL},
    {"replica.fetch.max.bytes", INT, "1048576", RO, I32F(replica_fetch_max_bytes, 0, INT_MAX), NULL},
    {"replica.fetch.min.bytes", INT, "1", RO, I32F(replica_fetch_min_bytes, INT_MIN, INT_MAX), NULL},
    {"replica.fetch.response.max.bytes", INT, "10485760", RO, I32F(replica_fetch_response_max_bytes, 0, INT_MAX), NULL},
    {"replica.fetch.wait.max.ms", INT, "500", RO, I32F(replica_fetch_wait_max_ms, INT_MIN, INT_MAX), NULL},
    {"replica.socket.timeout.ms", INT, "30000", RO, I32F(replica_socket_timeout_ms, INT_MIN, INT_MAX), NULL},
    {"replica.high.watermark.checkpoint.interval.ms", LONG, "5000", RO, I64F(replica_high_watermark_checkpoint_interval_ms, 1, I64, 1), NULL},
    {"replica.lag.time.max.ms", LONG, "30000", RO, I64F(replica_lag_time_max_ms, 1, I64, 1), NULL},
    {"replica.selector.class", STRING, NULL, RO, SPECIAL, NULL},
    {"queued.max.request.bytes", LONG, "-1", RO, I64F(queued_max_request_bytes, -1, I64, 1), NULL},
    {"socket.request.max.bytes", INT, "104857600", RO, I64F(socket_request_max_bytes, 1024, INT_MAX, 1), NULL},
    /* server.properties only (BROKER_KEY_STARTUP): gregor's own, and Kafka keys that mean
     * nothing on one node with one loop thread (accepted with a log line, not described). */
    {"gregor.request.read.timeout.ms", LONG, "30000", STARTUP, I64F(request_read_timeout_ms, 1, I64, 1), NULL},
    {"cluster.id", STRING, NULL, STARTUP, SPECIAL, NULL},
    {"socket.send.buffer.bytes", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"socket.receive.buffer.bytes", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"transaction.state.log.replication.factor", SHORT, "3", STARTUP, I32F(transaction_state_log_replication_factor, 1, 32767), NULL},
    {"transaction.state.log.min.isr", INT, "2", STARTUP, I32F(transaction_state_log_min_isr, 1, INT_MAX), NULL},
    {"process.roles", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"controller.quorum.voters", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"controller.quorum.bootstrap.servers", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"controller.listener.names", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"inter.broker.listener.name", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"listener.security.protocol.map", STRING, NULL, STARTUP, SPECIAL, NULL},
    /* A cluster on ZooKeeper (docs/CLUSTER.md); Kafka 3.x's keys and defaults (the connection
     * timeout defaults to the session timeout). */
    {"zookeeper.connect", STRING, NULL, STARTUP, SPECIAL, NULL},
    {"zookeeper.connection.timeout.ms", INT, NULL, STARTUP, I32F(zookeeper_connection_timeout_ms, 1, INT_MAX), NULL},
    {"zookeeper.session.timeout.ms", INT, "18000", STARTUP, I32F(zookeeper_session_timeout_ms, 1, INT_MAX), NULL},
    {"queued.max.requests", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"share.coordinator.state.topic.replication.factor", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"share.coordinator.state.topic.min.isr", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"transaction.state.log.num.partitions", INT, "50", STARTUP, I32F(transaction_state_log_num_partitions, 1, 1000), NULL},
    {"transaction.max.timeout.ms", INT, "900000", STARTUP, I32F(transaction_max_timeout_ms, 1, INT_MAX), NULL},
    {"transactional.id.expiration.ms", INT, "604800000", STARTUP, I32F(transactional_id_expiration_ms, 1, INT_MAX), NULL},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", INT, "10000", STARTUP, I32F(transaction_abort_interval_ms, 1, INT_MAX), NULL},
    {"transaction.remove.expired.transaction.cleanup.interval.ms", INT, "3600000", STARTUP, I32F(transaction_expire_interval_ms, 1, INT_MAX), NULL},
    {"transaction.partition.verification.enable", BOOLEAN, "true", STARTUP, BOOLF(transaction_partition_verification_enable), NULL},
    {"offsets.commit.timeout.ms", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"group.coordinator.rebalance.protocols", STRING, NULL, STARTUP, NOFIELD, NULL},
    {"metadata.log.dir", STRING, NULL, STARTUP, NOFIELD, NULL},
    /* The authorizer (authorizer.c): on when authorizer.class.name names one of Kafka's. */
    {"authorizer.class.name", STRING, "", STARTUP, SPECIAL, NULL},
    {"super.users", STRING, NULL, STARTUP, SPECIAL, NULL},
    {"allow.everyone.if.no.acl.found", BOOLEAN, "false", STARTUP, BOOLF(allow_everyone_if_no_acl_found), NULL},
    /* Client quotas (quota.c): the samples a rate is measured over, Kafka's keys and defaults. */
    {"quota.window.num", INT, "11", STARTUP, I32F(quota_window_num, 1, 3600), NULL},
    {"quota.window.size.seconds", INT, "1", STARTUP, I32F(quota_window_size_seconds, 1, 3600), NULL},
    {"max.connection.creation.rate", INT, "2147483647", STARTUP, I32F(max_connection_creation_rate, 0, INT_MAX), NULL},
    {"controller.quota.window.num", INT, "11", STARTUP, I32F(controller_quota_window_num, 1, 3600), NULL},
    {"controller.quota.window.size.seconds", INT, "1", STARTUP, I32F(controller_quota_window_size_seconds, 1, 3600), NULL},
};
const int config_catalog_nbroker = sizeof(config_catalog_broker) / sizeof(config_catalog_broker[0]);
#undef BOOLEAN
#undef STRING
#undef INT
#undef SHORT
#undef LONG
#undef DOUBLE
#undef LIST

const struct topic_config_def *config_catalog_topic(const char *name)
{
    for (int i = 0; i < config_catalog_ntopics; i++)
        if (strcmp(config_catalog_topics[i].name, name) == 0)
            return &config_catalog_topics[i];
    return NULL;
}

const struct broker_key_def *config_catalog_broker_key_any(const char *name)
{
    for (int i = 0; i < config_catalog_nbroker; i++)
        if (strcmp(config_catalog_broker[i].name, name) == 0)
            return &config_catalog_broker[i];
    return NULL;
}

const struct broker_key_def *config_catalog_broker_key(const char *name)
{
    const struct broker_key_def *def = config_catalog_broker_key_any(name);
    return def != NULL && def->mode != BROKER_KEY_STARTUP ? def : NULL;
}

const struct topic_config_def *config_catalog_checked_as(const struct broker_key_def *def)
{
    if (def->topic == NULL || strcmp(def->topic->synonyms[0], def->name) != 0)
        return NULL;
    return def->topic;
}

bool config_catalog_broker_applied(const struct broker_key_def *def)
{
    if (def->store != BROKER_STORE_NONE)
        return true;
    return def->topic != NULL && def->topic->implemented;
}

/* Java's parse of a trimmed number: whole string, in range of the type. */
static bool parse_integer(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi || v[0] == ' ')
        return false;
    *out = x;
    return true;
}

static const char *type_word(enum config_type t)
{
    switch (t) {
    case CONFIG_TYPE_INT: return "INT";
    case CONFIG_TYPE_SHORT: return "SHORT";
    case CONFIG_TYPE_LONG: return "LONG";
    case CONFIG_TYPE_DOUBLE: return "DOUBLE";
    default: return "STRING";
    }
}

static bool one_of(const char *const *list, const char *s, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncmp(*list, s, len) == 0)
            return true;
    return false;
}

static void join(const char *const *list, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; list[i] && o < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? ", " : "", list[i]);
}

/* Kafka's ValidString message: "String must be one of: " and the values. */
static void why_not_one_of(const char *const *list, char *why, size_t whylen)
{
    char all[128];
    join(list, all, sizeof(all));
    snprintf(why, whylen, "String must be one of: %s", all);
}

/* The next item of the comma separated list at *p with the spaces around it trimmed (len bytes,
 * maybe 0), *p moved past it and its comma; NULL at the list's end. */
static const char *list_next(const char **p, size_t *len)
{
    if (**p == '\0')
        return NULL;
    const char *comma = strchr(*p, ',');
    size_t n = comma ? (size_t)(comma - *p) : strlen(*p);
    const char *s = *p;
    while (n > 0 && *s == ' ')
        s++, n--;
    while (n > 0 && s[n - 1] == ' ')
        n--;
    *p = comma ? comma + 1 : *p + strlen(*p);
    *len = n;
    return s;
}

/* ThrottledReplicaListValidator: "*", or items of digits:digits (empty items allowed). */
static bool throttled_ok(const char *v)
{
    const char *p = v;
    while (*p == ' ')
        p++;
    if (strcmp(p, "*") == 0)
        return true;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *a = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p != a) {
            if (*p++ != ':')
                return false;
            const char *bb = p;
            while (*p >= '0' && *p <= '9')
                p++;
            if (p == bb)
                return false;
        }
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

int config_catalog_check(const struct topic_config_def *def, const char *name, const char *value,
                         char *msg, size_t msglen)
{
    char why[300] = "";
    int64_t x = 0;
    double d = 0;
    switch (def->type) {
    case CONFIG_TYPE_BOOLEAN:
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
            snprintf(why, sizeof(why), "Expected value to be either true or false");
        break;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_SHORT:
    case CONFIG_TYPE_LONG: {
        int64_t lo = def->type == CONFIG_TYPE_LONG ? INT64_MIN : def->type == CONFIG_TYPE_INT ? INT32_MIN : INT16_MIN;
        int64_t hi = def->type == CONFIG_TYPE_LONG ? INT64_MAX : def->type == CONFIG_TYPE_INT ? INT32_MAX : INT16_MAX;
        if (!parse_integer(value, lo, hi, &x))
            snprintf(why, sizeof(why), "Not a number of type %s", type_word(def->type));
        break;
    }
    case CONFIG_TYPE_DOUBLE: {
        char *end;
        d = strtod(value, &end);
        if (end == value || *end != '\0' || isnan(d))
            snprintf(why, sizeof(why), "Not a number of type DOUBLE");
        break;
    }
    default:
        break;
    }
    if (why[0] == '\0') {
        switch (def->check) {
        case CHECK_RANGE:
            if (def->type == CONFIG_TYPE_DOUBLE ? d < (double)def->min : x < def->min)
                snprintf(why, sizeof(why), "Value must be at least %" PRId64, def->min);
            else if (def->type == CONFIG_TYPE_DOUBLE ? d > (double)def->max : x > def->max)
                snprintf(why, sizeof(why), "Value must be no more than %" PRId64, def->max);
            break;
        case CHECK_GZIP_LEVEL:
            if (x > def->max || (x < def->min && x != -1))
                snprintf(why, sizeof(why), "Value must be between %" PRId64 " and %" PRId64
                         " or equal to -1", def->min, def->max);
            break;
        case CHECK_ONE_OF:
            if (!one_of(def->one_of, value, strlen(value)))
                why_not_one_of(def->one_of, why, sizeof(why));
            break;
        case CHECK_LIST_OF: {
            const char *p = value, *s;
            size_t len;
            while ((s = list_next(&p, &len)) != NULL)
                if (len > 0 && !one_of(def->one_of, s, len)) {
                    why_not_one_of(def->one_of, why, sizeof(why));
                    break;
                }
            break;
        }
        case CHECK_THROTTLED:
            if (!throttled_ok(value))
                snprintf(why, sizeof(why), "%s must be the literal '*' or a list of replicas in "
                         "the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                         def->name);
            break;
        case CHECK_NONE:
            break;
        }
    }
    if (why[0] == '\0')
        return 0;
    snprintf(msg, msglen, "Invalid value %s for configuration %s: %s", value, name, why);
    return -1;
}

/* Whether a cleanup.policy list (already checked: items compact / delete) names item. */
static bool policy_names(const char *v, const char *item)
{
    size_t n = strlen(item), len;
    const char *p = v, *s;
    while ((s = list_next(&p, &len)) != NULL)
        if (len == n && strncmp(s, item, n) == 0)
            return true;
    return false;
}

int config_catalog_topic_check(const char *name, const char *value, char *msg, size_t msglen)
{
    const struct topic_config_def *def = config_catalog_topic(name);
    if (def == NULL) {
        snprintf(msg, msglen, "Unknown topic config name: %s", name);
        return KERR_INVALID_CONFIG;
    }
    if (config_catalog_check(def, name, value, msg, msglen) != 0)
        return KERR_INVALID_CONFIG;
    if (strlen(value) >= sizeof(((struct topic_config_kv *)0)->value))
        return config_catalog_too_long(name, value, msg, msglen);
    return KERR_NONE;
}

int config_catalog_too_long(const char *name, const char *value, char *msg, size_t msglen)
{
    /* Refused rather than cut: a cut throttled-replicas list would name other replicas. */
    snprintf(msg, msglen, "Invalid value %.32s... for configuration %s: gregor keeps topic config "
             "values of at most %zu bytes (this one has %zu)", value, name,
             sizeof(((struct topic_config_kv *)0)->value) - 1, strlen(value));
    return KERR_INVALID_CONFIG;
}

void config_catalog_topic_apply(struct log_config *cfg, const struct topic_config_def *def,
                                const char *value)
{
    if (!def->implemented)
        return;
    int64_t x = strtoll(value, NULL, 10);
    const char *n = def->name;
    if (strcmp(n, "retention.ms") == 0)
        cfg->retention_ms = x;
    else if (strcmp(n, "retention.bytes") == 0)
        cfg->retention_bytes = x;
    else if (strcmp(n, "segment.bytes") == 0)
        cfg->segment_bytes = x;
    else if (strcmp(n, "segment.ms") == 0)
        cfg->segment_ms = x;
    else if (strcmp(n, "max.message.bytes") == 0)
        cfg->max_message_bytes = (int32_t)x;
    else if (strcmp(n, "index.interval.bytes") == 0)
        cfg->index_interval_bytes = (int32_t)x;
    else if (strcmp(n, "segment.index.bytes") == 0)
        cfg->segment_index_bytes = (int32_t)x;
    else if (strcmp(n, "flush.messages") == 0)
        cfg->flush_messages = x;
    else if (strcmp(n, "flush.ms") == 0)
        cfg->flush_ms = x;
    else if (strcmp(n, "file.delete.delay.ms") == 0)
        cfg->file_delete_delay_ms = x;
    else if (strcmp(n, "message.timestamp.type") == 0)
        cfg->timestamp_type = strcmp(value, "LogAppendTime") == 0 ? LOG_TS_LOG_APPEND_TIME
                                                                  : LOG_TS_CREATE_TIME;
    else if (strcmp(n, "delete.retention.ms") == 0)
        cfg->delete_retention_ms = x;
    else if (strcmp(n, "min.compaction.lag.ms") == 0)
        cfg->min_compaction_lag_ms = x;
    else if (strcmp(n, "max.compaction.lag.ms") == 0)
        cfg->max_compaction_lag_ms = x;
    else if (strcmp(n, "min.cleanable.dirty.ratio") == 0)
        cfg->min_cleanable_dirty_ratio = strtod(value, NULL);
    else if (strcmp(n, "cleanup.policy") == 0) {
        cfg->compact = policy_names(value, "compact");
        if (!policy_names(value, "delete")) {
            /* Without delete nothing is removed for age or size (Kafka's LogConfig.delete). */
            cfg->retention_ms = -1;
            cfg->retention_bytes = -1;
        }
    }
}

int config_catalog_list_op(const char *current, const char *operand, bool append, char *out,
                           size_t outlen)
{
    /* Items are compared whole; Kafka splits on ',' without trimming. */
    char items[64][128];
    int n = 0;
    char tmp[2048];
    snprintf(tmp, sizeof(tmp), "%s", current ? current : "");
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok && n < 64;
         tok = strtok_r(NULL, ",", &save))
        snprintf(items[n++], sizeof(items[0]), "%s", tok);
    char ops[2048];
    snprintf(ops, sizeof(ops), "%s", operand);
    for (char *save = NULL, *tok = strtok_r(ops, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int at = -1;
        for (int i = 0; i < n && at < 0; i++)
            if (strcmp(items[i], tok) == 0)
                at = i;
        if (append && at < 0) {
            if (n == 64)
                return -1;
            snprintf(items[n++], sizeof(items[0]), "%s", tok);
        } else if (!append) {
            for (int i = n - 1; i >= 0; i--)
                if (strcmp(items[i], tok) == 0) {
                    memmove(items[i], items[i + 1], (size_t)(n - i - 1) * sizeof(items[0]));
                    n--;
                }
        }
    }
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + o, outlen - o, "%s%s", i ? "," : "", items[i]);
        if (w < 0 || (size_t)w >= outlen - o)
            return -1;
        o += (size_t)w;
    }
    return 0;
}
