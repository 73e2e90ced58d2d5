/* replication_quota: Kafka's ReplicationQuotaManager (KIP-73) — the byte rate of replication
 * traffic to or from throttled replicas, measured as Kafka's SimpleRate over
 * replication.quota.window.num (11) windows of replication.quota.window.size.seconds (1), and
 * whether it is over leader/follower.replication.throttled.rate; plus which partitions the
 * topic configs leader/follower.replication.throttled.replicas throttle on this broker. */
#ifndef GREGOR_BROKER_REPLICATION_QUOTA_H
#define GREGOR_BROKER_REPLICATION_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

struct broker;
struct topic;

/* Kafka's ReplicationQuotaManagerConfig defaults. */
#define REPLICATION_QUOTA_SAMPLES 11
#define REPLICATION_QUOTA_WINDOW_MS 1000
/* QuotaConfigs.QUOTA_BYTES_PER_SECOND_DEFAULT (Long.MAX_VALUE): no throttle. */
#define REPLICATION_QUOTA_NONE INT64_MAX

/* One sample of Kafka's SampledStat. */
struct replication_quota_sample {
    double value;
    int64_t start_ms, last_ms;
};

/* A SimpleRate of a WindowedSum: nsamples grow to REPLICATION_QUOTA_SAMPLES + 1 (Kafka keeps
 * one extra for the window that overlaps the oldest), then are reused in turn. */
struct replication_quota {
    struct replication_quota_sample samples[REPLICATION_QUOTA_SAMPLES + 1];
    int nsamples;
    int current;
};

/* Adds bytes at now_ms (mono ms), whatever the quota (Kafka's record with checkQuotas false). */
void replication_quota_record(struct replication_quota *q, int64_t bytes, int64_t now_ms);
/* Bytes per second now: the samples' total over the time since the oldest started, at least
 * one window (SimpleRate.windowSize); samples without an event for the 11 windows are reset. */
double replication_quota_rate(struct replication_quota *q, int64_t now_ms);
/* Sensor.checkQuotas with Quota.upperBound(bound): the rate is over bound. Never with
 * REPLICATION_QUOTA_NONE. */
bool replication_quota_exceeded(struct replication_quota *q, int64_t bound, int64_t now_ms);

/* Whether a leader/follower.replication.throttled.replicas value throttles partition on broker
 * node_id: "*" all, else its "partition:broker" items (Kafka's parseThrottledPartitions). The
 * value is one the catalog's ThrottledReplicaListValidator check accepted. */
bool replication_quota_listed(const char *value, int32_t partition, int32_t node_id);

/* The broker's: whether t's partition is throttled here as leader (leader=true) or follower
 * (Kafka's quota.isThrottled), and the checks of ReplicaManager.shouldLeaderThrottle /
 * RemoteLeaderEndPoint.shouldFollowerThrottle for a replica not in sync. */
bool replication_quota_throttled(const struct broker *b, const struct topic *t, int32_t partition,
                                 bool leader);
bool replication_quota_over(struct broker *b, bool leader, int64_t now_ms);

#endif
