/* syncer: see syncer.h. The thread only reads each partition's log pointer (set at open, and
 * partitions are freed only after broker_commit_drain) and calls plog_flush, which takes the
 * log's own lock to pick the files and syncs duplicates of their descriptors outside it;
 * everything else about partitions and requests stays on the loop thread. */
#include "broker/syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/util.h"
#include "log/log.h"
#include "net/loop.h"

struct syncer {
    struct loop *loop;
    syncer_done_fn done;
    void *arg;
    int efd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu: the batch and the thread's state. */
    struct partition **parts;
    int *results;
    int n;
    bool pending;  /* submitted, not taken by the thread yet */
    bool finished; /* synced, done() not run yet */
    bool quit;
    bool busy;     /* loop thread only: submitted and done() not run yet */
};

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->pending && !s->quit)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->pending)
            break;
        s->pending = false;
        struct partition **parts = s->parts;
        int *results = s->results, n = s->n;
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < n; i++)
            results[i] = plog_flush(parts[i]->log);
        pthread_mutex_lock(&s->mu);
        s->finished = true;
        pthread_cond_broadcast(&s->cv);
        uint64_t one = 1;
        while (write(s->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* On the loop thread: the batch is synced; run done() once. */
static void complete(struct syncer *s)
{
    pthread_mutex_lock(&s->mu);
    bool fin = s->finished;
    s->finished = false;
    pthread_mutex_unlock(&s->mu);
    if (!fin || !s->busy)
        return;
    s->busy = false;
    s->done(s->arg);
}

static void on_event(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)events;
    uint64_t v;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
    complete(arg);
}

struct syncer *syncer_start(struct loop *l, syncer_done_fn done, void *arg)
{
    struct syncer *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->loop = l;
    s->done = done;
    s->arg = arg;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (loop_set(l, s->efd, LOOP_READ, on_event, s) != 0 ||
        pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
        loop_del(l, s->efd);
        close(s->efd);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    return s;
}

void syncer_submit(struct syncer *s, struct partition **parts, int *results, int n)
{
    GREGOR_ASSERT(!s->busy);
    s->busy = true;
    pthread_mutex_lock(&s->mu);
    s->parts = parts;
    s->results = results;
    s->n = n;
    s->pending = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

bool syncer_busy(const struct syncer *s) { return s->busy; }

void syncer_wait(struct syncer *s)
{
    if (!s->busy)
        return;
    pthread_mutex_lock(&s->mu);
    while (!s->finished)
        pthread_cond_wait(&s->cv, &s->mu);
    s->finished = false;
    pthread_mutex_unlock(&s->mu);
    s->busy = false; /* the eventfd's count is read (and ignored) on a later loop turn */
}

void syncer_stop(struct syncer *s)
{
    if (s == NULL)
        return;
    GREGOR_ASSERT(!s->busy);
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    loop_del(s->loop, s->efd);
    close(s->efd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
