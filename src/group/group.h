/* group: the group coordinator — classic consumer groups (JoinGroup/SyncGroup/Heartbeat/
 * LeaveGroup), committed offsets, and their persistence in __consumer_offsets. */
#ifndef GREGOR_GROUP_GROUP_H
#define GREGOR_GROUP_GROUP_H

struct broker;
struct group_coordinator;

/* Creates the coordinator and replays __consumer_offsets (creating that topic if missing). */
struct group_coordinator *group_coordinator_create(struct broker *b);
/* Answers pending joins/syncs, writes what must be written, frees. */
void group_coordinator_destroy(struct group_coordinator *gc);

#endif
