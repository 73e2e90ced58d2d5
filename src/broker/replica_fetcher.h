/* replica_fetcher: one of a follower broker's fetchers for one leader broker, as Kafka's
 * ReplicaFetcherThread on the loop: one connection (net/client.h), one request in flight —
 * OffsetForLeaderEpoch for the partitions still truncating (KIP-101/279), else a Fetch with
 * this broker's replica id for the others — and each batch of the answer appended at the
 * leader's offsets. The replica manager hands partitions in and takes them out. */
#ifndef GREGOR_BROKER_REPLICA_FETCHER_H
#define GREGOR_BROKER_REPLICA_FETCHER_H

#include <stdbool.h>
#include <stdint.h>

struct broker;
struct client;
struct replica_fetcher;

/* Kafka's AbstractFetcherManager.getFetcherId: abs(31 * topic.hashCode + partition) % n, with
 * Java's String.hashCode over the name. */
int replica_fetcher_id(const char *topic, int32_t partition, int num_fetchers);

/* The wait before a partition is asked again after its leader answered it with error:
 * replica.fetch.backoff.ms (backoff_ms), except REPLICA_FETCHER_QUICK_RETRY_MS for the first
 * REPLICA_FETCHER_QUICK_RETRIES NOT_LEADER_OR_FOLLOWER / UNKNOWN_LEADER_EPOCH answers of a
 * partition never answered without error in its leader epoch (answered false, quick_retries
 * so far). Kafka's controller sends LeaderAndIsr to the leader and its followers at once; here
 * each broker reads the state znode itself, and a follower that reads it first is refused by a
 * leader that has not read it yet: it asks again soon, a bounded number of times. */
#define REPLICA_FETCHER_QUICK_RETRY_MS 50
#define REPLICA_FETCHER_QUICK_RETRIES 10
int replica_fetcher_retry_ms(int error, bool answered, int quick_retries, int backoff_ms);

/* A fetcher for leader_id at host:port (a numeric address or "localhost"); NULL when the
 * connection cannot be made (host not an address; logged). */
struct replica_fetcher *replica_fetcher_create(struct broker *b, struct client *cl,
                                               int32_t leader_id, int fetcher_id,
                                               const char *host, int port);
/* Drops every partition and the connection; a request in flight is answered into nothing. */
void replica_fetcher_destroy(struct replica_fetcher *f);
bool replica_fetcher_is(const struct replica_fetcher *f, int32_t leader_id, int fetcher_id,
                        const char *host, int port);

/* The replica manager's sweep: every partition unmarked, then marked by replica_fetcher_keep
 * (true when the fetcher has it in that leader epoch and topic id), then the unmarked ones
 * dropped by replica_fetcher_drop_unmarked. */
void replica_fetcher_unmark_all(struct replica_fetcher *f);
bool replica_fetcher_keep(struct replica_fetcher *f, const char *topic, const uint8_t id[16],
                          int32_t partition, int32_t leader_epoch);
void replica_fetcher_drop_unmarked(struct replica_fetcher *f);
/* Adds a partition (marked) in the truncating state: it fetches once OffsetForLeaderEpoch
 * told where its log agrees with the leader's. -1 when out of memory. */
int replica_fetcher_add(struct replica_fetcher *f, const char *topic, const uint8_t id[16],
                        int32_t partition, int32_t leader_epoch);
int replica_fetcher_count(const struct replica_fetcher *f);

#endif
