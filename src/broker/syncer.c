/* syncer: see syncer.h. The worker only reads each partition's log pointer (set at open, and
 * partitions are freed only after broker_commit_drain, which waits for every queued job) and
 * calls plog_flush, which takes the log's own lock to pick the files and syncs duplicates of
 * their descriptors outside it; everything else about partitions and requests stays on the
 * loop thread. */
#include "broker/syncer.h"

#include <stdlib.h>

#include "broker/broker.h"
#include "broker/iowork.h"
#include "common/util.h"
#include "log/log.h"

struct syncer {
    struct iowork *worker;
    syncer_done_fn done;
    void *arg;
    /* The batch: the worker's from syncer_submit until its completion (or syncer_wait). */
    struct partition **parts;
    int *results;
    int n;
    bool busy; /* loop thread only: submitted and done() not run yet */
};

static void sync_batch(void *arg)
{
    struct syncer *s = arg;
    for (int i = 0; i < s->n; i++)
        s->results[i] = partition_flush(s->parts[i]);
}

/* On the loop thread: the batch is synced; run done() unless syncer_wait settled it. */
static void sync_batch_done(void *arg)
{
    struct syncer *s = arg;
    if (!s->busy)
        return;
    s->busy = false;
    s->done(s->arg);
}

struct syncer *syncer_start(struct loop *l, syncer_done_fn done, void *arg)
{
    struct syncer *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->done = done;
    s->arg = arg;
    s->worker = iowork_start(l, IOWORK_QUEUE_DEFAULT);
    if (s->worker == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void syncer_submit(struct syncer *s, struct partition **parts, int *results, int n)
{
    GREGOR_ASSERT(!syncer_busy(s));
    s->busy = true;
    s->parts = parts;
    s->results = results;
    s->n = n;
    /* The last slot is kept for this submit, and at most one batch is in flight. */
    int rc = iowork_submit(s->worker, IOWORK_SYNC, sync_batch, sync_batch_done, s, true);
    GREGOR_ASSERT(rc == 0);
}

bool syncer_busy(const struct syncer *s) { return s->busy || iowork_pending(s->worker) > 0; }

void syncer_wait(struct syncer *s)
{
    s->busy = false; /* the batch's completion, run below, finds it settled */
    while (iowork_pending(s->worker) > 0)
        iowork_wait_idle(s->worker);
}

struct iowork *syncer_iowork(struct syncer *s) { return s->worker; }

void syncer_stop(struct syncer *s)
{
    if (s == NULL)
        return;
    GREGOR_ASSERT(!s->busy);
    iowork_stop(s->worker);
    free(s);
}
