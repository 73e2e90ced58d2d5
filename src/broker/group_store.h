/* group_store: the group coordinator (src/group/) hosted by the broker — its gc_env over the
 * event loop's timers and __consumer_offsets (group_store.c). */
#ifndef GREGOR_BROKER_GROUP_STORE_H
#define GREGOR_BROKER_GROUP_STORE_H

struct broker;
struct group_coordinator;

/* Creates the coordinator and replays __consumer_offsets (creating that topic if missing). */
struct group_coordinator *group_coordinator_create(struct broker *b);
/* Answers pending joins/syncs, writes what must be written, frees. */
void group_coordinator_destroy(struct group_coordinator *gc);

#endif
