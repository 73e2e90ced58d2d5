/* group_handlers: the group APIs' handlers (one file each in src/broker/). */
#ifndef GREGOR_BROKER_GROUP_HANDLERS_H
#define GREGOR_BROKER_GROUP_HANDLERS_H

#include "broker/broker.h"

enum request_status handle_find_coordinator(struct broker *b, struct request *r);
enum request_status handle_join_group(struct broker *b, struct request *r);
enum request_status handle_sync_group(struct broker *b, struct request *r);
enum request_status handle_heartbeat(struct broker *b, struct request *r);
enum request_status handle_leave_group(struct broker *b, struct request *r);
enum request_status handle_offset_commit(struct broker *b, struct request *r);
enum request_status handle_offset_fetch(struct broker *b, struct request *r);
enum request_status handle_list_groups(struct broker *b, struct request *r);
enum request_status handle_describe_groups(struct broker *b, struct request *r);
enum request_status handle_delete_groups(struct broker *b, struct request *r);
enum request_status handle_offset_delete(struct broker *b, struct request *r);
enum request_status handle_consumer_group_heartbeat(struct broker *b, struct request *r);
enum request_status handle_consumer_group_describe(struct broker *b, struct request *r);
/* The broker's topics as the group coordinator sees them (consumer_group_heartbeat.c). */
struct cg_topic_view;
void gh_topic_view(struct broker *b, struct cg_topic_view *out);

#endif
