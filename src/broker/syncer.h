/* syncer: the group commit's fdatasync on a thread of its own, so that the event loop goes on
 * reading and appending the next requests while the disk works. One batch of logs at a time;
 * its completion comes back to the loop thread through an eventfd. */
#ifndef GREGOR_BROKER_SYNCER_H
#define GREGOR_BROKER_SYNCER_H

#include <stdbool.h>

struct loop;
struct partition;
struct syncer;

/* Runs on the loop thread once the batch handed to syncer_submit is synced. */
typedef void (*syncer_done_fn)(void *arg);

struct syncer *syncer_start(struct loop *l, syncer_done_fn done, void *arg);
/* Stops the thread and frees s; no batch may be in flight (syncer_wait first). */
void syncer_stop(struct syncer *s);
/* Hands over parts[0..n): each one's log is plog_flush'ed on the thread, its KERR in
 * results[i]. The arrays (and partitions) stay the caller's and must live until done() runs.
 * Only when !syncer_busy(s). */
void syncer_submit(struct syncer *s, struct partition **parts, int *results, int n);
bool syncer_busy(const struct syncer *s);
/* Blocks until the batch in flight (if any) is synced. Its done() is not run: the caller
 * settles the batch itself (e.g. before freeing what the batch pointed to). */
void syncer_wait(struct syncer *s);

#endif
