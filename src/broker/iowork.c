/* iowork: see iowork.h. A ring of jobs under one mutex: the loop thread submits (advancing
 * `submitted`) and completes (advancing `completed`, loop-only); the worker runs the job at
 * `finished` and advances it. Slots [completed, submitted) are in use, so the ring is never
 * overwritten before a job's done has run. The worker marks itself for fileio's per-thread call
 * counts, which tests use to assert the loop makes no blocking disk calls. */
#include "broker/iowork.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "log/fileio.h"
#include "net/loop.h"

struct iowork_job {
    iowork_fn work, done;
    void *arg;
    enum iowork_kind kind;
};

struct iowork {
    struct loop *loop;
    int efd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* the worker waits for jobs */
    pthread_cond_t idle_cv;  /* iowork_wait_idle waits for the worker */
    struct iowork_job *ring;
    uint64_t cap;
    uint64_t submitted;      /* under mu (written by the loop) */
    uint64_t finished;       /* under mu (written by the worker) */
    bool quit;               /* under mu */
    uint64_t completed;      /* loop thread only */
    int inflight[IOWORK_KIND_COUNT]; /* loop thread only */
};

static void *iowork_main(void *arg)
{
    struct iowork *w = arg;
    fio_thread_set_io_worker(true);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->finished == w->submitted && !w->quit)
            pthread_cond_wait(&w->work_cv, &w->mu);
        if (w->finished == w->submitted)
            break;
        struct iowork_job job = w->ring[w->finished % w->cap];
        pthread_mutex_unlock(&w->mu);
        job.work(job.arg);
        pthread_mutex_lock(&w->mu);
        w->finished++;
        GREGOR_ASSERT(w->finished <= w->submitted);
        pthread_cond_broadcast(&w->idle_cv);
        uint64_t one = 1;
        while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void iowork_complete(struct iowork *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t fin = w->finished;
    pthread_mutex_unlock(&w->mu);
    /* A done may submit or wait again: each job is taken off before its done runs. */
    while (w->completed < fin) {
        struct iowork_job job = w->ring[w->completed % w->cap];
        w->completed++;
        w->inflight[job.kind]--;
        GREGOR_ASSERT(w->inflight[job.kind] >= 0);
        if (job.done != NULL)
            job.done(job.arg);
    }
}

static void on_event(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)events;
    uint64_t v;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
    iowork_complete(arg);
}

struct iowork *iowork_start(struct loop *l, int max_jobs)
{
    if (max_jobs < 2)
        max_jobs = 2;
    struct iowork *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->ring = calloc((size_t)max_jobs, sizeof(*w->ring));
    w->cap = (uint64_t)max_jobs;
    w->loop = l;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->ring == NULL || w->efd < 0) {
        if (w->efd >= 0)
            close(w->efd);
        free(w->ring);
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work_cv, NULL);
    pthread_cond_init(&w->idle_cv, NULL);
    if (loop_set(l, w->efd, LOOP_READ, on_event, w) != 0 ||
        pthread_create(&w->thread, NULL, iowork_main, w) != 0) {
        loop_del(l, w->efd);
        close(w->efd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->work_cv);
        pthread_cond_destroy(&w->idle_cv);
        free(w->ring);
        free(w);
        return NULL;
    }
    return w;
}

int iowork_submit(struct iowork *w, enum iowork_kind kind, iowork_fn work, iowork_fn done,
                  void *arg, bool reserved)
{
    GREGOR_ASSERT(kind >= 0 && kind < IOWORK_KIND_COUNT && work != NULL);
    pthread_mutex_lock(&w->mu);
    uint64_t used = w->submitted - w->completed;
    GREGOR_ASSERT(used <= w->cap);
    if (used >= (reserved ? w->cap : w->cap - 1)) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    w->ring[w->submitted % w->cap] = (struct iowork_job){work, done, arg, kind};
    w->submitted++;
    w->inflight[kind]++;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int iowork_inflight(const struct iowork *w, enum iowork_kind kind) { return w->inflight[kind]; }

int iowork_pending(const struct iowork *w)
{
    pthread_mutex_lock((pthread_mutex_t *)&w->mu);
    int n = (int)(w->submitted - w->completed);
    pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
    return n;
}

void iowork_wait_idle(struct iowork *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->finished != w->submitted)
        pthread_cond_wait(&w->idle_cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    iowork_complete(w); /* the eventfd's count is read (and finds nothing) on a later turn */
}

void iowork_stop(struct iowork *w)
{
    if (w == NULL)
        return;
    while (iowork_pending(w) > 0) /* a completion may queue more */
        iowork_wait_idle(w);
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    GREGOR_ASSERT(w->completed == w->submitted);
    loop_del(w->loop, w->efd);
    close(w->efd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->idle_cv);
    free(w->ring);
    free(w);
}
