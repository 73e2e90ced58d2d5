/* replica_manager: which partitions this broker leads and which it follows, from the
 * cluster's view (Kafka's ReplicaManager.makeLeaders / makeFollowers driven by the controller's
 * LeaderAndIsr, here by the partition states in ZooKeeper): every topic with a replica here is
 * opened with the cluster's id, a led partition takes the controller's leader epoch, a
 * followed one goes to the fetcher for its leader (num.replica.fetchers per leader broker,
 * Kafka's AbstractFetcherManager), and a partition no longer followed leaves its fetcher. */
#ifndef GREGOR_BROKER_REPLICA_MANAGER_H
#define GREGOR_BROKER_REPLICA_MANAGER_H

struct broker;
struct replica_manager;

/* NULL when out of memory (logged). */
struct replica_manager *replica_manager_create(struct broker *b);
/* Stops every fetcher; requests in flight complete into nothing. Before the logs close. */
void replica_manager_destroy(struct replica_manager *rm);
/* Applies the cluster's view (after every change of it). */
void replica_manager_sync(struct replica_manager *rm);
/* Fetchers running (for tests and logs). */
int replica_manager_fetchers(const struct replica_manager *rm);

#endif
