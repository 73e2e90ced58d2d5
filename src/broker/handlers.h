/* handlers: one function per Kafka API (one file each, named after the API), plus the few
 * hooks the server calls to resume pending requests. */
#ifndef GREGOR_BROKER_HANDLERS_H
#define GREGOR_BROKER_HANDLERS_H

#include "broker/broker.h"

enum request_status handle_api_versions(struct broker *b, struct request *r);
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
enum request_status handle_delete_records(struct broker *b, struct request *r);
enum request_status handle_init_producer_id(struct broker *b, struct request *r);
enum request_status handle_describe_producers(struct broker *b, struct request *r);
enum request_status handle_offset_for_leader_epoch(struct broker *b, struct request *r);

/* ApiVersions answer for a version we do not support: v0 body, UNSUPPORTED_VERSION. */
void api_versions_unsupported(struct broker *b, struct request *r);

/* The group commit covering r's appends is over: marks the partitions whose fdatasync failed
 * with KAFKA_STORAGE_ERROR (r is answered later, without looking at partitions again). */
void produce_settle(struct broker *b, struct request *r);
/* Shutdown: finishes the Produce requests still appending in slices (their appends are then
 * synced and answered with the rest). */
void produce_shutdown(struct broker *b);
/* DeleteTopics: the partitions of t are about to be freed; Produce requests still appending
 * in slices stop pointing at them. */
void produce_forget_topic(struct broker *b, const struct topic *t);

/* Fetch long-poll: re-run a parked fetch after appends; answers it if it now has enough.
 * Returns true when the request was answered (and must leave the waiter list). */
bool fetch_retry(struct broker *b, struct request *r, bool deadline_passed);

/* Shutdown: drops the creations CreateTopics requests still have in progress, answering them. */
void create_topics_shutdown(struct broker *b);

/* Auto-creates a topic with broker defaults (Metadata / Produce). */
struct topic *broker_auto_create(struct broker *b, const char *name);

#endif
