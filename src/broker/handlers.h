/* handlers: one function per Kafka API (one file each, named after the API), plus the few
 * hooks the server calls to resume pending requests. */
#ifndef GREGOR_BROKER_HANDLERS_H
#define GREGOR_BROKER_HANDLERS_H

#include "broker/broker.h"

enum request_status handle_api_versions(struct broker *b, struct request *r);
enum request_status handle_sasl_handshake(struct broker *b, struct request *r);
enum request_status handle_sasl_authenticate(struct broker *b, struct request *r);
enum request_status handle_describe_user_scram_credentials(struct broker *b, struct request *r);
enum request_status handle_alter_user_scram_credentials(struct broker *b, struct request *r);
enum request_status handle_describe_client_quotas(struct broker *b, struct request *r);
enum request_status handle_alter_client_quotas(struct broker *b, struct request *r);
/* In a cluster: the client quotas follow /config/users and /config/clients on ZooKeeper
 * (set before cluster_await_security; alter_client_quotas.c). */
void quotas_cluster_attach(struct broker *b);
enum request_status handle_metadata(struct broker *b, struct request *r);
enum request_status handle_produce(struct broker *b, struct request *r);
enum request_status handle_fetch(struct broker *b, struct request *r);
enum request_status handle_list_offsets(struct broker *b, struct request *r);
enum request_status handle_create_topics(struct broker *b, struct request *r);
enum request_status handle_delete_topics(struct broker *b, struct request *r);
enum request_status handle_create_partitions(struct broker *b, struct request *r);
enum request_status handle_describe_configs(struct broker *b, struct request *r);
enum request_status handle_alter_configs(struct broker *b, struct request *r);
enum request_status handle_incremental_alter_configs(struct broker *b, struct request *r);
enum request_status handle_describe_cluster(struct broker *b, struct request *r);
enum request_status handle_describe_log_dirs(struct broker *b, struct request *r);
enum request_status handle_delete_records(struct broker *b, struct request *r);
enum request_status handle_init_producer_id(struct broker *b, struct request *r);
enum request_status handle_describe_producers(struct broker *b, struct request *r);
enum request_status handle_write_txn_markers(struct broker *b, struct request *r);
enum request_status handle_add_partitions_to_txn(struct broker *b, struct request *r);
enum request_status handle_add_offsets_to_txn(struct broker *b, struct request *r);
enum request_status handle_end_txn(struct broker *b, struct request *r);
enum request_status handle_txn_offset_commit(struct broker *b, struct request *r);
enum request_status handle_describe_transactions(struct broker *b, struct request *r);
enum request_status handle_list_transactions(struct broker *b, struct request *r);
enum request_status handle_offset_for_leader_epoch(struct broker *b, struct request *r);
enum request_status handle_controlled_shutdown(struct broker *b, struct request *r);
enum request_status handle_elect_leaders(struct broker *b, struct request *r);
enum request_status handle_alter_partition_reassignments(struct broker *b, struct request *r);
enum request_status handle_list_partition_reassignments(struct broker *b, struct request *r);
enum request_status handle_describe_acls(struct broker *b, struct request *r);
enum request_status handle_create_acls(struct broker *b, struct request *r);
enum request_status handle_delete_acls(struct broker *b, struct request *r);
/* Shutdown: the authorizer and its ACLs go (authorizer.c). */
void acls_shutdown(struct broker *b);
/* The broker's controlled shutdown (controlled_shutdown.c): asks the controller to move its
 * leaderships, up to controlled.shutdown.max.retries attempts, then calls done(b) once (maybe
 * inside this call). NULL when it cannot start (done is then not called). */
struct controlled_shutdown;
struct controlled_shutdown *controlled_shutdown_start(struct broker *b,
                                                      void (*done)(struct broker *b));
void controlled_shutdown_free(struct controlled_shutdown *cs);

/* ApiVersions answer for a version we do not support: v0 body, UNSUPPORTED_VERSION. */
void api_versions_unsupported(struct broker *b, struct request *r);

/* Shutdown: finishes the Produce requests still appending in slices (their appends are then
 * synced and answered with the rest). */
void produce_shutdown(struct broker *b);
/* Shutdown: the fetch sessions go (every parked fetch was answered before). */
void fetch_shutdown(struct broker *b);
/* DeleteTopics: the partitions of t are about to be freed; Produce requests still appending
 * in slices stop pointing at them. */
void produce_forget_topic(struct broker *b, const struct topic *t);


/* Partitions opened a bounded slice of time per loop turn (create_topics.c), for CreateTopics,
 * CreatePartitions and auto-creation: a job of n entries for request r (allocated in its
 * arena; answered with request_finish when done), or for nobody (r NULL: an auto-creation).
 * on_error(r, i, error, message) records entry i's failure (r may be NULL). */
typedef void (*create_job_error_fn)(struct request *r, int32_t i, int e, const char *msg);
struct create_job *create_job_new(struct request *r, int32_t n, create_job_error_fn on_error);
/* Entry i steps topic t (after topic_create_begin or topic_grow_begin). name is t's, living as
 * long as the request (a job with no request, of one entry, keeps a copy). */
void create_job_set(struct create_job *job, int32_t i, struct topic *t, const char *name);
/* Runs the first slice: REQUEST_DONE when every entry is done (a request job's response is
 * complete), else REQUEST_PENDING and later turns go on (a request job is then finished). */
enum request_status create_job_start(struct broker *b, struct create_job *job);
/* Shutdown: drops the creations and growths still in progress (their partition dirs removed),
 * answering their requests. */
void create_topics_shutdown(struct broker *b);

/* Auto-creates a topic with broker defaults (Metadata): its partitions are opened over
 * several loop turns when they take longer than one slice (the topic is creating meanwhile).
 * NULL when refused or failed. */
struct topic *broker_auto_create(struct broker *b, const char *name);

/* A cluster on ZooKeeper (src/cluster; docs/CLUSTER.md): */
/* Applies the cluster's view: the replica manager leads and follows (cluster's on_change). */
void broker_cluster_sync(void *broker);
struct cluster_topic;
/* Opens a cluster topic with a replica here over several loop turns: 0 when begun, -1 refused. */
int broker_cluster_open_topic(struct broker *b, const struct cluster_topic *ct);
/* Deletes the local logs of a topic deleted from the cluster (cluster's on_topic_gone). */
void broker_cluster_topic_gone(void *broker, const char *name);
/* KERR_NOT_LEADER_OR_FOLLOWER when the cluster assigns the topic's partition and this broker
 * does not lead it; KERR_NONE otherwise (no cluster, or a topic only this broker has). */
int broker_leader_check(struct broker *b, struct kstr topic, int32_t partition);
/* The name of the cluster's topic with that id, or NULL. */
const char *broker_cluster_topic_by_id(struct broker *b, const struct kuuid *id);

#endif
