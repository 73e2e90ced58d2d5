/* syncer: the broker's use of its I/O worker (broker/iowork.c). The group commit's fdatasync
 * runs there, so that the event loop goes on reading and appending the next requests while the
 * disk works: one batch of logs at a time, its completion back on the loop thread. The same
 * worker runs the periodic storage work (flush.ms, checkpoints, retention's unlinks). */
#ifndef GREGOR_BROKER_SYNCER_H
#define GREGOR_BROKER_SYNCER_H

#include <stdbool.h>

struct loop;
struct partition;
struct syncer;
struct iowork;

/* Runs on the loop thread once the batch handed to syncer_submit is synced. */
typedef void (*syncer_done_fn)(void *arg);

struct syncer *syncer_start(struct loop *l, syncer_done_fn done, void *arg);
/* Drains the worker (every queued job runs, its completion too), stops it and frees s; no
 * batch may be in flight (syncer_wait first). */
void syncer_stop(struct syncer *s);
/* Hands over parts[0..n): each one's log is plog_flush'ed on the worker, its KERR in
 * results[i]. The arrays (and partitions) stay the caller's and must live until done() runs.
 * Only when !syncer_busy(s). */
void syncer_submit(struct syncer *s, struct partition **parts, int *results, int n);
/* A batch is in flight, or other jobs that may point at partitions' logs are queued (a new
 * batch then waits for them: partitions are freed only after syncer_wait). */
bool syncer_busy(const struct syncer *s);
/* Blocks until the batch in flight (if any) and every other queued job have run. The batch's
 * done() is not run: the caller settles the batch itself (e.g. before freeing what the batch
 * pointed to); the other jobs' completions run here. */
void syncer_wait(struct syncer *s);
/* The worker, for the periodic storage work (server.c, topics.c). */
struct iowork *syncer_iowork(struct syncer *s);

#endif
