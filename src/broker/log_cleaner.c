/* log_cleaner: see log_cleaner.h. The loop thread owns the topics: it picks the dirtiest
 * compacted partition (cleaner_examine takes the log's lock, no I/O) and hands it with what the
 * clean needs from the loop (high watermark, producers) to an idle thread; the thread cleans
 * (log/cleaner.c through partition_clean), records the new checkpoint, writes its log dir's
 * cleaner-offset-checkpoint and wakes the loop through an eventfd. A partition being cleaned is
 * never closed or deleted under the thread: log_cleaner_abort stops the clean and waits. */
#include "broker/log_cleaner.h"

#include <errno.h>
#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/cleaner.h"
#include "log/logdir.h"
#include "net/loop.h"
#include "partition/partition.h"

#define WHO "LogCleaner"
/* Kafka's cleaner Throttler checks its rate every 300 ms. */
#define THROTTLE_CHECK_US 300000
/* A throttled thread sleeps in steps this long, so that an abort or shutdown is prompt. */
#define THROTTLE_SLEEP_STEP_MS 50
/* Partitions marked uncleanable (a corrupt batch, an I/O error) remembered at most. */
#define UNCLEANABLE_MAX 256

struct ckpt_entry {
    int dir;
    char topic[256];
    int32_t partition;
    int64_t offset;
};

struct clean_task {
    struct partition *p;
    int dir;
    char name[300];                 /* <topic>-<partition>, as Kafka names the log */
    char topic[256];
    int32_t index;
    int64_t checkpoint;
    struct partition_clean_input in; /* owned by the task */
    double rate;                    /* log.cleaner.io.max.bytes.per.second */
    size_t io_buffer;
};

struct cleaner_thread {
    struct log_cleaner *lc;
    int id;
    pthread_t thread;
    struct cleaner_map *map;        /* its own: dedupe buffer / threads, made at its first clean
                                     * (a broker without compacted data holds no map memory) */
    /* Under lc->mu: */
    bool has_task;
    struct partition *busy;         /* the partition of the task, until it is done */
    struct clean_task task;
    atomic_bool stop;               /* the clean in progress aborts (cleaner_job.stop) */
    /* The thread's own: */
    int64_t window_start_us, window_bytes;
    double rate;
};

struct log_cleaner {
    struct broker *b;
    int efd;                        /* threads -> loop: a clean ended */
    uint64_t timer;
    char dirs[BROKER_MAX_LOG_DIRS][1024];
    int ndirs;
    /* What the running threads were started with (the loop's). */
    int nthreads;
    struct cleaner_thread *threads;
    int64_t running_dedupe;
    double running_load_factor;
    size_t map_bytes;               /* each thread's map */
    bool running_enable;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;         /* a thread waits for a task or quit */
    pthread_cond_t done_cv;         /* an abort waits for a thread to let its partition go */
    pthread_mutex_t write_mu;       /* one checkpoint file write at a time (threads, stop) */
    /* Under mu: */
    bool quit;
    bool progressed;                /* a clean did work since the loop last looked */
    struct ckpt_entry *ckpt;
    int nckpt, capckpt;
    bool dir_dirty[BROKER_MAX_LOG_DIRS];
    char uncleanable[UNCLEANABLE_MAX][300];
    int nuncleanable;
};

/* ---- the checkpoint table (under mu) ---- */

static struct ckpt_entry *ckpt_find(struct log_cleaner *lc, int dir, const char *topic,
                                    int32_t partition)
{
    for (int i = 0; i < lc->nckpt; i++)
        if (lc->ckpt[i].dir == dir && lc->ckpt[i].partition == partition &&
            strcmp(lc->ckpt[i].topic, topic) == 0)
            return &lc->ckpt[i];
    return NULL;
}

static void ckpt_set(struct log_cleaner *lc, int dir, const char *topic, int32_t partition,
                     int64_t offset)
{
    struct ckpt_entry *e = ckpt_find(lc, dir, topic, partition);
    if (e == NULL) {
        if (lc->nckpt == lc->capckpt) {
            int cap = lc->capckpt ? lc->capckpt * 2 : 64;
            struct ckpt_entry *n = realloc(lc->ckpt, (size_t)cap * sizeof(*n));
            if (n == NULL) {
                LOG_ERROR(WHO, "no memory for the checkpoint of %s-%d", topic, partition);
                return;
            }
            lc->ckpt = n;
            lc->capckpt = cap;
        }
        e = &lc->ckpt[lc->nckpt++];
        e->dir = dir;
        snprintf(e->topic, sizeof(e->topic), "%s", topic);
        e->partition = partition;
    }
    e->offset = offset;
    lc->dir_dirty[dir] = true;
}

static void ckpt_remove(struct log_cleaner *lc, int dir, const char *topic, int32_t partition)
{
    struct ckpt_entry *e = ckpt_find(lc, dir, topic, partition);
    if (e == NULL)
        return;
    *e = lc->ckpt[--lc->nckpt];
    lc->dir_dirty[dir] = true;
}

/* Writes dir's file when it changed: the entries are taken under mu, written outside it (the
 * loop takes mu, never write_mu). */
static void ckpt_write_dir(struct log_cleaner *lc, int dir)
{
    pthread_mutex_lock(&lc->write_mu);
    pthread_mutex_lock(&lc->mu);
    if (!lc->dir_dirty[dir]) {
        pthread_mutex_unlock(&lc->mu);
        pthread_mutex_unlock(&lc->write_mu);
        return;
    }
    struct cleaner_checkpoint_entry *out = calloc((size_t)lc->nckpt + 1, sizeof(*out));
    int n = 0;
    for (int i = 0; out != NULL && i < lc->nckpt; i++) {
        if (lc->ckpt[i].dir != dir)
            continue;
        snprintf(out[n].topic, sizeof(out[n].topic), "%s", lc->ckpt[i].topic);
        out[n].partition = lc->ckpt[i].partition;
        out[n].offset = lc->ckpt[i].offset;
        n++;
    }
    if (out != NULL)
        lc->dir_dirty[dir] = false;
    pthread_mutex_unlock(&lc->mu);
    if (out == NULL || cleaner_checkpoint_write(lc->dirs[dir], out, n) != 0) {
        LOG_ERROR(WHO, "cannot write %s/%s: %s", lc->dirs[dir], CLEANER_CHECKPOINT_FILE,
                  out == NULL ? "out of memory" : strerror(errno));
        pthread_mutex_lock(&lc->mu);
        lc->dir_dirty[dir] = true; /* the next clean tries again */
        pthread_mutex_unlock(&lc->mu);
    }
    free(out);
    pthread_mutex_unlock(&lc->write_mu);
}

static bool uncleanable(const struct log_cleaner *lc, const char *name)
{
    for (int i = 0; i < lc->nuncleanable; i++)
        if (strcmp(lc->uncleanable[i], name) == 0)
            return true;
    return false;
}

/* ---- a cleaner thread ---- */

/* Kafka's Throttler: past the check interval, a rate above the desired one sleeps it back.
 * Also once a window holds more than the interval's worth of bytes (Kafka's waits for the
 * interval: a fast disk cleans a whole small log unthrottled within it). */
static void throttle(void *arg, int64_t bytes)
{
    struct cleaner_thread *t = arg;
    if (!(t->rate > 0) || t->rate >= DBL_MAX)
        return;
    t->window_bytes += bytes;
    int64_t now = mono_us();
    int64_t elapsed = now - t->window_start_us;
    bool full = (double)t->window_bytes > t->rate * (THROTTLE_CHECK_US / 1e6);
    if ((elapsed <= THROTTLE_CHECK_US && !full) || t->window_bytes <= 0 || elapsed <= 0)
        return;
    double observed = (double)t->window_bytes * 1e6 / (double)elapsed;
    if (observed > t->rate) {
        double sleep_ms = (double)t->window_bytes / (t->rate / 1000.0) - (double)elapsed / 1000.0;
        int64_t left = (int64_t)sleep_ms;
        while (left > 0 && !atomic_load(&t->stop)) {
            int64_t step = left < THROTTLE_SLEEP_STEP_MS ? left : THROTTLE_SLEEP_STEP_MS;
            struct timespec ts = {step / 1000, (step % 1000) * 1000000};
            nanosleep(&ts, NULL);
            left -= step;
        }
    }
    t->window_start_us = mono_us();
    t->window_bytes = 0;
}

static double mb(int64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* Kafka's recordStats: one summary per clean. */
static void record_stats(const struct cleaner_thread *t, const struct clean_task *task,
                         int64_t from, const struct cleaner_result *r, double secs)
{
    if (secs <= 0)
        secs = 1e-6;
    double map_secs = (double)r->map_ms / 1000.0; /* Kafka's elapsedIndexSecs */
    if (map_secs > secs)
        map_secs = secs;
    double size_cut = r->bytes_read > 0 ? 100.0 * (1.0 - (double)r->bytes_written / (double)r->bytes_read) : 0;
    double msg_cut = r->records_read > 0 ? 100.0 * (1.0 - (double)r->records_kept / (double)r->records_read) : 0;
    LOG_INFO(WHO, "[kafka-log-cleaner-thread-%d]: \n\tLog cleaner thread %d cleaned log %s (dirty "
             "section = [%lld, %lld])\n\t%.1f MB of log processed in %.1f seconds (%.1f MB/sec)."
             "\n\tIndexed %.1f MB in %.1f seconds (%.1f Mb/sec, %.1f%% of total time)"
             "\n\tCleaned %.1f MB in %.1f seconds (%.1f Mb/sec, %.1f%% of total time)"
             "\n\tStart size: %.1f MB (%lld messages)\n\tEnd size: %.1f MB (%lld messages)\n\t"
             "%.1f%% size reduction (%.1f%% fewer messages)\n\tSegment groups swapped: %d, "
             "longest swap lock %lld us, tombstones removed %lld%s",
             t->id, t->id, task->name, (long long)from, (long long)r->next_dirty_offset,
             mb(r->bytes_read), secs, mb(r->bytes_read) / secs,
             mb(r->map_bytes_read), map_secs, mb(r->map_bytes_read) / (map_secs > 0 ? map_secs : 1e-6),
             100.0 * map_secs / secs, mb(r->bytes_read), secs - map_secs,
             mb(r->bytes_read) / (secs - map_secs > 0 ? secs - map_secs : 1e-6),
             100.0 * (secs - map_secs) / secs, mb(r->bytes_read),
             (long long)r->records_read, mb(r->bytes_written), (long long)r->records_kept,
             size_cut, msg_cut, r->groups, (long long)r->lock_held_max_us,
             (long long)r->tombstones_dropped, r->map_full ? " (offset map full: a prefix "
             "of the dirty section was cleaned)" : "");
    if (r->keyless_dropped > 0)
        LOG_WARN(WHO, "\tFound %lld invalid messages during compaction.",
                 (long long)r->keyless_dropped);
}

/* Runs one task on the thread; true when the clean did work (the loop looks again at once). */
static bool run_task(struct cleaner_thread *t, struct clean_task *task)
{
    struct log_cleaner *lc = t->lc;
    if (t->map == NULL && (t->map = cleaner_map_create(lc->map_bytes, lc->running_load_factor)) == NULL) {
        LOG_LIMITED(LOG_LEVEL_ERROR, WHO, "Cleaner %d: no memory for an offset map of %zu bytes: "
                    "%s not cleaned", t->id, lc->map_bytes, task->name);
        return false;
    }
    t->rate = task->rate;
    t->window_start_us = mono_us();
    t->window_bytes = 0;
    struct cleaner_job job = {
        .map = t->map,
        .now_ms = now_ms(),
        .io_buffer_bytes = task->io_buffer,
        .throttle = throttle,
        .throttle_arg = t,
        .stop = &t->stop,
    };
    struct cleaner_dirty d;
    struct cleaner_result r;
    int64_t t0 = mono_us();
    LOG_INFO(WHO, "Cleaner %d: Beginning cleaning of log %s", t->id, task->name);
    int e = partition_clean(task->p, task->checkpoint, &task->in, &job, false, &d, &r);
    double secs = (double)(mono_us() - t0) / 1e6;
    bool ran = d.cleanable_bytes > 0 && d.needs_cleaning;
    if (e == KERR_NONE && ran && !r.aborted) {
        GREGOR_ASSERT(r.next_dirty_offset >= d.first_dirty_offset);
        pthread_mutex_lock(&lc->mu);
        /* A truncation that came meanwhile set stop under mu: its cut checkpoint stays. */
        if (!atomic_load(&t->stop))
            ckpt_set(lc, task->dir, task->topic, task->index, r.next_dirty_offset);
        pthread_mutex_unlock(&lc->mu);
        record_stats(t, task, d.first_dirty_offset, &r, secs);
        ckpt_write_dir(lc, task->dir);
        return true;
    }
    if (e == KERR_NONE) {
        if (r.aborted)
            LOG_INFO(WHO, "Cleaner %d: cleaning of log %s aborted after %.1f seconds (the log "
                     "changed under it, or the cleaner stops)", t->id, task->name, secs);
        return false;
    }
    if (e == KERR_CORRUPT_MESSAGE)
        LOG_WARN(WHO, "[kafka-log-cleaner-thread-%d]: Unexpected exception thrown when cleaning "
                 "log %s. Marking its partition (%s) as uncleanable", t->id, task->name,
                 task->name);
    else
        LOG_ERROR(WHO, "Failed to clean up log for %s in dir %s due to IOException (%s): marked "
                  "uncleanable until the broker restarts", task->name, lc->dirs[task->dir],
                  kerr_name(e));
    pthread_mutex_lock(&lc->mu);
    if (lc->nuncleanable < UNCLEANABLE_MAX && !uncleanable(lc, task->name))
        snprintf(lc->uncleanable[lc->nuncleanable++], sizeof(lc->uncleanable[0]), "%s",
                 task->name);
    pthread_mutex_unlock(&lc->mu);
    return false;
}

static void *thread_main(void *arg)
{
    struct cleaner_thread *t = arg;
    struct log_cleaner *lc = t->lc;
    pthread_mutex_lock(&lc->mu);
    for (;;) {
        while (!t->has_task && !lc->quit)
            pthread_cond_wait(&lc->work_cv, &lc->mu);
        if (!t->has_task)
            break;
        struct clean_task task = t->task;
        pthread_mutex_unlock(&lc->mu);
        bool progressed = run_task(t, &task);
        partition_clean_input_free(&task.in);
        pthread_mutex_lock(&lc->mu);
        GREGOR_ASSERT(t->busy == task.p);
        t->has_task = false;
        t->busy = NULL;
        if (progressed)
            lc->progressed = true;
        pthread_cond_broadcast(&lc->done_cv);
        uint64_t one = 1;
        while (write(lc->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&lc->mu);
    return NULL;
}

static void threads_stop(struct log_cleaner *lc)
{
    if (lc->threads == NULL)
        return;
    pthread_mutex_lock(&lc->mu);
    lc->quit = true;
    for (int i = 0; i < lc->nthreads; i++)
        atomic_store(&lc->threads[i].stop, true);
    pthread_cond_broadcast(&lc->work_cv);
    pthread_mutex_unlock(&lc->mu);
    for (int i = 0; i < lc->nthreads; i++) {
        pthread_join(lc->threads[i].thread, NULL);
        GREGOR_ASSERT(lc->threads[i].busy == NULL);
        if (lc->threads[i].has_task) /* handed over but never taken */
            partition_clean_input_free(&lc->threads[i].task.in);
        cleaner_map_free(lc->threads[i].map);
    }
    free(lc->threads);
    lc->threads = NULL;
    lc->nthreads = 0;
    lc->quit = false;
    LOG_INFO(WHO, "Shutting down the log cleaner.");
}

static int threads_start(struct log_cleaner *lc)
{
    const struct broker *b = lc->b;
    lc->running_enable = b->cfg.log_cleaner.enable;
    lc->running_dedupe = b->cfg.log_cleaner.dedupe_buffer_size;
    lc->running_load_factor = b->cfg.log_cleaner.io_buffer_load_factor;
    int n = b->cfg.log_cleaner.threads;
    if (!lc->running_enable || n <= 0)
        return 0;
    int64_t per = lc->running_dedupe / n;
    if (per > INT32_MAX) {
        LOG_WARN(WHO, "Cannot use more than 2G of cleaner buffer space per cleaner thread, "
                 "ignoring excess buffer space...");
        per = INT32_MAX;
    }
    /* Kafka's require in Cleaner: more than one entry must fit (24-byte slots). */
    if (per <= 0 || (double)(per / 24) * lc->running_load_factor <= 1) {
        LOG_ERROR(WHO, "offset map is too small to fit in even a single message, so log "
                  "cleaning will never make progress. You can increase "
                  "log.cleaner.dedupe.buffer.size or decrease log.cleaner.threads (%lld bytes "
                  "per thread, load factor %g)", (long long)per, lc->running_load_factor);
        return -1;
    }
    lc->map_bytes = (size_t)per;
    lc->threads = calloc((size_t)n, sizeof(*lc->threads));
    if (lc->threads == NULL)
        return -1;
    LOG_INFO(WHO, "Starting the log cleaner");
    for (int i = 0; i < n; i++) {
        struct cleaner_thread *t = &lc->threads[i];
        t->lc = lc;
        t->id = i;
        atomic_init(&t->stop, false);
        if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
            LOG_ERROR(WHO, "cannot start kafka-log-cleaner-thread-%d: %s", i, strerror(errno));
            break;
        }
        lc->nthreads = i + 1;
    }
    if (lc->nthreads == 0) {
        free(lc->threads);
        lc->threads = NULL;
        return -1;
    }
    return 0;
}

/* ---- choosing (loop thread) ---- */

static bool partition_busy(struct log_cleaner *lc, const struct partition *p)
{
    for (int i = 0; i < lc->nthreads; i++)
        if (lc->threads[i].busy == p)
            return true;
    return false;
}

static void log_name(const struct topic *t, int32_t index, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s-%d", t->name, index);
}

/* Kafka's grabFilthiestCompactedLog: among the compacted partitions no thread holds, those
 * that need cleaning, the one with the highest dirty ratio. Under mu. */
static struct partition *filthiest(struct log_cleaner *lc, int64_t now, int64_t *checkpoint)
{
    struct broker *b = lc->b;
    struct partition *best = NULL;
    double best_ratio = -1;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
        if (!t->cfg.compact)
            continue;
        for (int32_t i = 0; i < t->npartitions; i++) {
            struct partition *p = t->partitions[i];
            if (p == NULL || p->log == NULL || partition_busy(lc, p))
                continue;
            char name[300];
            log_name(t, i, name, sizeof(name));
            if (uncleanable(lc, name))
                continue;
            struct ckpt_entry *e = ckpt_find(lc, p->dir_index, t->name, i);
            int64_t cp = e != NULL ? e->offset : -1;
            struct cleaner_dirty d;
            partition_clean_examine(p, cp, partition_last_stable_offset(p), &t->cfg, now, &d);
            if (d.needs_cleaning && d.cleanable_bytes > 0 && d.dirty_ratio > best_ratio) {
                best = p;
                best_ratio = d.dirty_ratio;
                *checkpoint = cp;
            }
        }
    }
    return best;
}

static void schedule(struct log_cleaner *lc)
{
    struct broker *b = lc->b;
    if (lc->nthreads == 0 || b->stopping)
        return;
    int64_t now = now_ms();
    pthread_mutex_lock(&lc->mu);
    lc->progressed = false;
    for (int i = 0; i < lc->nthreads; i++) {
        struct cleaner_thread *t = &lc->threads[i];
        if (t->has_task)
            continue;
        int64_t cp = -1;
        struct partition *p = filthiest(lc, now, &cp);
        if (p == NULL)
            break;
        struct clean_task *task = &t->task;
        memset(task, 0, sizeof(*task));
        if (partition_clean_prepare(p, &p->topic->cfg, &task->in) != KERR_NONE)
            break;
        task->p = p;
        task->dir = p->dir_index;
        snprintf(task->topic, sizeof(task->topic), "%s", p->topic->name);
        task->index = p->index;
        log_name(p->topic, p->index, task->name, sizeof(task->name));
        task->checkpoint = cp;
        task->rate = b->cfg.log_cleaner.io_max_bytes_per_second;
        /* Kafka's ioBufferSize / threads / 2 (a read and a write buffer). */
        task->io_buffer = (size_t)(b->cfg.log_cleaner.io_buffer_size / lc->nthreads / 2);
        atomic_store(&t->stop, false);
        t->has_task = true;
        t->busy = p;
    }
    pthread_cond_broadcast(&lc->work_cv);
    pthread_mutex_unlock(&lc->mu);
}

static int64_t backoff_ms(const struct broker *b)
{
    return b->cfg.log_cleaner.backoff_ms > 0 ? b->cfg.log_cleaner.backoff_ms : 1;
}

static void timer_fire(struct broker *b, void *arg)
{
    struct log_cleaner *lc = arg;
    lc->timer = 0;
    schedule(lc);
    lc->timer = broker_timer_add(b, mono_ms() + backoff_ms(b), timer_fire, lc);
}

static void on_done(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)events;
    struct log_cleaner *lc = arg;
    uint64_t v;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&lc->mu);
    bool again = lc->progressed;
    pthread_mutex_unlock(&lc->mu);
    /* A thread that cleaned looks again at once (Kafka's doWork); else the back-off. */
    if (again)
        schedule(lc);
}

/* ---- the broker's side ---- */

int log_cleaner_start(struct broker *b)
{
    struct log_cleaner *lc = calloc(1, sizeof(*lc));
    if (lc == NULL)
        return -1;
    lc->b = b;
    pthread_mutex_init(&lc->mu, NULL);
    pthread_mutex_init(&lc->write_mu, NULL);
    pthread_cond_init(&lc->work_cv, NULL);
    pthread_cond_init(&lc->done_cv, NULL);
    lc->ndirs = b->ndirs;
    for (int d = 0; d < b->ndirs; d++) {
        snprintf(lc->dirs[d], sizeof(lc->dirs[d]), "%s", logdir_path(b->dirs[d]));
        struct cleaner_checkpoint_entry *e = NULL;
        int n = 0;
        if (cleaner_checkpoint_read(lc->dirs[d], &e, &n) != 0)
            LOG_ERROR(WHO, "cannot read %s/%s: %s (its logs are cleaned from their start)",
                      lc->dirs[d], CLEANER_CHECKPOINT_FILE, strerror(errno));
        for (int i = 0; i < n; i++)
            ckpt_set(lc, d, e[i].topic, e[i].partition, e[i].offset);
        lc->dir_dirty[d] = false;
        free(e);
    }
    lc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (lc->efd < 0 || loop_set(b->loop, lc->efd, LOOP_READ, on_done, lc) != 0) {
        LOG_ERROR(WHO, "cannot set up the log cleaner: %s", strerror(errno));
        if (lc->efd >= 0)
            close(lc->efd);
        free(lc);
        return -1;
    }
    b->cleaner = lc;
    int rc = threads_start(lc);
    lc->timer = broker_timer_add(b, mono_ms() + backoff_ms(b), timer_fire, lc);
    return rc;
}

void log_cleaner_stop(struct broker *b)
{
    struct log_cleaner *lc = b->cleaner;
    if (lc == NULL)
        return;
    threads_stop(lc);
    if (lc->timer)
        broker_timer_cancel(b, lc->timer);
    for (int d = 0; d < lc->ndirs; d++)
        ckpt_write_dir(lc, d);
    loop_del(b->loop, lc->efd);
    close(lc->efd);
    pthread_mutex_destroy(&lc->mu);
    pthread_mutex_destroy(&lc->write_mu);
    pthread_cond_destroy(&lc->work_cv);
    pthread_cond_destroy(&lc->done_cv);
    free(lc->ckpt);
    free(lc);
    b->cleaner = NULL;
}

void log_cleaner_reconfigure(struct broker *b)
{
    struct log_cleaner *lc = b->cleaner;
    if (lc == NULL)
        return;
    const int32_t want = b->cfg.log_cleaner.enable ? b->cfg.log_cleaner.threads : 0;
    if (want != lc->nthreads || b->cfg.log_cleaner.dedupe_buffer_size != lc->running_dedupe ||
        b->cfg.log_cleaner.io_buffer_load_factor != lc->running_load_factor) {
        threads_stop(lc);
        threads_start(lc);
    }
    /* A shorter back-off takes effect now, not after the old one. */
    if (lc->timer)
        broker_timer_cancel(b, lc->timer);
    lc->timer = broker_timer_add(b, mono_ms() + backoff_ms(b), timer_fire, lc);
}

int log_cleaner_validate_threads(const struct broker *b, int32_t threads, char *msg, size_t msglen)
{
    int32_t current = b->cfg.log_cleaner.threads;
    if (threads < 1)
        snprintf(msg, msglen, "Log cleaner threads should be at least 1");
    else if (threads < current / 2)
        snprintf(msg, msglen, "Log cleaner threads cannot be reduced to less than half the "
                 "current value %d", current);
    else if ((int64_t)threads > (int64_t)current * 2)
        snprintf(msg, msglen, "Log cleaner threads cannot be increased to more than double the "
                 "current value %d", current);
    else
        return 0;
    return -1;
}

void log_cleaner_wake(struct broker *b)
{
    if (b->cleaner != NULL)
        schedule(b->cleaner);
}

void log_cleaner_abort(struct broker *b, struct partition *p, bool forget)
{
    struct log_cleaner *lc = b->cleaner;
    if (lc == NULL)
        return;
    pthread_mutex_lock(&lc->mu);
    for (int i = 0; i < lc->nthreads; i++) {
        struct cleaner_thread *t = &lc->threads[i];
        if (t->busy != p)
            continue;
        atomic_store(&t->stop, true);
        while (t->busy == p)
            pthread_cond_wait(&lc->done_cv, &lc->mu);
    }
    if (forget && p->topic != NULL)
        ckpt_remove(lc, p->dir_index, p->topic->name, p->index);
    pthread_mutex_unlock(&lc->mu);
}

void log_cleaner_truncated(struct broker *b, struct partition *p, int64_t offset)
{
    struct log_cleaner *lc = b->cleaner;
    if (lc == NULL || p->topic == NULL)
        return;
    pthread_mutex_lock(&lc->mu);
    for (int i = 0; i < lc->nthreads; i++)
        if (lc->threads[i].busy == p)
            atomic_store(&lc->threads[i].stop, true);
    struct ckpt_entry *e = ckpt_find(lc, p->dir_index, p->topic->name, p->index);
    if (e != NULL && e->offset > offset) {
        e->offset = offset;
        lc->dir_dirty[p->dir_index] = true;
    }
    pthread_mutex_unlock(&lc->mu);
}
