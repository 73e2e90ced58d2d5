/* iowork: the broker's I/O worker — one thread that runs blocking disk work (group-commit
 * fdatasyncs, flush.ms flushes, checkpoint files, retention's closes and unlinks) in the order
 * it was submitted, while the event loop goes on; each job's completion runs on the loop thread,
 * woken through an eventfd. The queue is bounded: a full queue refuses a job. */
#ifndef GREGOR_BROKER_IOWORK_H
#define GREGOR_BROKER_IOWORK_H

#include <stdbool.h>

struct loop;
struct iowork;

/* Kinds of job, so callers can see whether one of theirs is still queued. */
enum iowork_kind { IOWORK_SYNC, IOWORK_FLUSH, IOWORK_RETENTION, IOWORK_CHECKPOINT, IOWORK_TEST,
                   IOWORK_KIND_COUNT };

/* work runs on the worker thread; done (may be NULL) on the loop thread afterwards, in
 * submission order. Whatever arg points to is the job's until done runs (ownership hand-off:
 * the loop must not touch it in between). */
typedef void (*iowork_fn)(void *arg);

#define IOWORK_QUEUE_DEFAULT 256

/* max_jobs >= 2: jobs submitted and not yet completed, one slot kept for reserved submits. */
struct iowork *iowork_start(struct loop *l, int max_jobs);
/* Runs every queued job to completion (iowork_wait_idle), stops the thread, frees w. */
void iowork_stop(struct iowork *w);
/* Queues a job. Returns 0, or -1 when the queue is full (max_jobs - 1 ordinary jobs; a
 * reserved submit may take the last slot: the group commit, of which one is in flight). */
int iowork_submit(struct iowork *w, enum iowork_kind kind, iowork_fn work, iowork_fn done,
                  void *arg, bool reserved);
/* Jobs of this kind submitted whose done has not run yet (loop thread). */
int iowork_inflight(const struct iowork *w, enum iowork_kind kind);
/* Jobs submitted whose done has not run yet (loop thread). */
int iowork_pending(const struct iowork *w);
/* Blocks until every submitted job has run, then runs their completions here (loop thread). */
void iowork_wait_idle(struct iowork *w);
/* Runs the completions of the jobs that have finished (what the eventfd callback does). */
void iowork_complete(struct iowork *w);

#endif
