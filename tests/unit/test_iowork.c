/* test_iowork: the broker's I/O worker — jobs run in submission order on their own thread,
 * completions on the loop thread, the bounded queue refuses when full, stop drains — and a
 * broker run in-process whose retention, checkpoints and flush.ms flushes make no sync,
 * rename or unlink on the loop thread (fileio counts the calls per thread). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/iowork.h"
#include "common/util.h"
#include "log/fileio.h"
#include "log_test_util.h"
#include "net/loop.h"

#define NJOBS 64

struct order_fixture {
    pthread_t loop_thread;
    int worked[NJOBS], nworked;     /* written by the worker */
    int completed[NJOBS], ncompleted;
    bool work_on_loop_thread, done_off_loop_thread;
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    bool gate_open;
    int sleep_ms;
};

struct order_job {
    struct order_fixture *f;
    int index;
};

static void order_work(void *arg)
{
    struct order_job *j = arg;
    struct order_fixture *f = j->f;
    if (pthread_equal(pthread_self(), f->loop_thread))
        f->work_on_loop_thread = true;
    pthread_mutex_lock(&f->gate_mu);
    while (!f->gate_open)
        pthread_cond_wait(&f->gate_cv, &f->gate_mu);
    pthread_mutex_unlock(&f->gate_mu);
    if (f->sleep_ms > 0) {
        struct timespec ts = {0, (long)f->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    f->worked[f->nworked++] = j->index;
}

static void order_done(void *arg)
{
    struct order_job *j = arg;
    struct order_fixture *f = j->f;
    if (!pthread_equal(pthread_self(), f->loop_thread))
        f->done_off_loop_thread = true;
    f->completed[f->ncompleted++] = j->index;
}

static void fixture_init(struct order_fixture *f, bool gate_open)
{
    memset(f, 0, sizeof(*f));
    f->loop_thread = pthread_self();
    pthread_mutex_init(&f->gate_mu, NULL);
    pthread_cond_init(&f->gate_cv, NULL);
    f->gate_open = gate_open;
}

static void open_gate(struct order_fixture *f)
{
    pthread_mutex_lock(&f->gate_mu);
    f->gate_open = true;
    pthread_cond_broadcast(&f->gate_cv);
    pthread_mutex_unlock(&f->gate_mu);
}

static void test_jobs_in_order_completion_on_loop(void **state)
{
    (void)state;
    struct loop *l = loop_create(1024);
    struct iowork *w = iowork_start(l, NJOBS + 1);
    assert_non_null(w);
    struct order_fixture f;
    fixture_init(&f, true);
    struct order_job jobs[NJOBS];
    for (int i = 0; i < NJOBS; i++) {
        jobs[i] = (struct order_job){&f, i};
        assert_int_equal(iowork_submit(w, i % 2 ? IOWORK_FLUSH : IOWORK_RETENTION, order_work,
                                       order_done, &jobs[i], false), 0);
    }
    assert_int_equal(iowork_inflight(w, IOWORK_FLUSH), NJOBS / 2);
    /* Completions arrive through the loop's eventfd, not by waiting. */
    int64_t deadline = mono_ms() + 5000;
    while (f.ncompleted < NJOBS && mono_ms() < deadline)
        loop_run_once(l, 50);
    assert_int_equal(f.ncompleted, NJOBS);
    assert_int_equal(f.nworked, NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(f.worked[i], i);
        assert_int_equal(f.completed[i], i);
    }
    assert_false(f.work_on_loop_thread);
    assert_false(f.done_off_loop_thread);
    assert_int_equal(iowork_inflight(w, IOWORK_FLUSH), 0);
    assert_int_equal(iowork_pending(w), 0);
    iowork_stop(w);
    loop_destroy(l);
}

static void test_bounded_queue_refuses_then_reserved_fits(void **state)
{
    (void)state;
    struct loop *l = loop_create(1024);
    struct iowork *w = iowork_start(l, 4);
    struct order_fixture f;
    fixture_init(&f, false); /* the first job holds the worker */
    struct order_job jobs[8];
    int accepted = 0;
    for (int i = 0; i < 8; i++) {
        jobs[i] = (struct order_job){&f, i};
        if (iowork_submit(w, IOWORK_CHECKPOINT, order_work, order_done, &jobs[i], false) == 0)
            accepted++;
    }
    assert_int_equal(accepted, 3); /* four slots, one kept for reserved submits */
    assert_int_equal(iowork_pending(w), 3);
    jobs[3] = (struct order_job){&f, 3};
    assert_int_equal(iowork_submit(w, IOWORK_SYNC, order_work, order_done, &jobs[3], true), 0);
    jobs[4] = (struct order_job){&f, 4};
    assert_int_equal(iowork_submit(w, IOWORK_SYNC, order_work, order_done, &jobs[4], true), -1);
    open_gate(&f);
    iowork_wait_idle(w);
    assert_int_equal(f.ncompleted, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f.completed[i], i);
    /* Room again once completions ran. */
    jobs[5] = (struct order_job){&f, 5};
    assert_int_equal(iowork_submit(w, IOWORK_CHECKPOINT, order_work, order_done, &jobs[5], false), 0);
    iowork_stop(w);
    assert_int_equal(f.ncompleted, 5);
    loop_destroy(l);
}

static void test_stop_drains(void **state)
{
    (void)state;
    struct loop *l = loop_create(1024);
    struct iowork *w = iowork_start(l, 16);
    struct order_fixture f;
    fixture_init(&f, true);
    f.sleep_ms = 5;
    struct order_job jobs[10];
    for (int i = 0; i < 10; i++) {
        jobs[i] = (struct order_job){&f, i};
        assert_int_equal(iowork_submit(w, IOWORK_TEST, order_work, order_done, &jobs[i], false), 0);
    }
    iowork_stop(w); /* no loop turn: stop itself runs every job and completion */
    assert_int_equal(f.nworked, 10);
    assert_int_equal(f.ncompleted, 10);
    assert_false(f.done_off_loop_thread);
    loop_destroy(l);
}

/* ---- the broker's periodic storage work stays off the loop thread ---- */

static unsigned long loop_disk_calls(void)
{
    return fio_call_count_off_worker(FIO_FSYNC) + fio_call_count_off_worker(FIO_FDATASYNC) +
           fio_call_count_off_worker(FIO_UNLINK) + fio_call_count_off_worker(FIO_RENAME);
}

static void test_broker_periodic_disk_work_off_loop(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char pdir[1200];
    snprintf(pdir, sizeof(pdir), "%s/t-0", dir);
    /* Old segments for retention to delete, and a last one with a recent record. */
    struct log_config lc;
    tu_config(&lc);
    struct plog *log;
    assert_int_equal(plog_open(pdir, "t", 0, &lc, -1, 0, &log), 0);
    assert_true(tu_append_n(log, 40, 4, 200, 1000) >= 0);
    assert_true(tu_append_n(log, 1, 1, 10, now_ms()) >= 0);
    int seeded = plog_segment_count(log);
    assert_true(seeded >= 5);
    plog_close(log);

    struct broker_config cfg;
    broker_config_defaults(&cfg);
    static const char *props[][2] = {
        {"listeners", "PLAINTEXT://127.0.0.1:0"},
        {"log.retention.ms", "60000"},
        {"log.segment.delete.delay.ms", "0"},
        {"log.flush.interval.ms", "10"},
        {"log.retention.check.interval.ms", "50"},
        {"log.flush.scheduler.interval.ms", "20"},
        {"log.flush.offset.checkpoint.interval.ms", "50"},
    };
    char err[512];
    for (size_t i = 0; i < ARRAY_LEN(props); i++)
        assert_int_equal(broker_config_set(&cfg, props[i][0], props[i][1], err, sizeof(err)), 0);
    assert_int_equal(broker_config_set(&cfg, "log.dirs", dir, err, sizeof(err)), 0);
    struct broker *b = broker_open(&cfg);
    assert_non_null(b);
    struct topic *t = topic_find(b, "t");
    assert_non_null(t);
    struct plog *plog = t->partitions[0]->log;

    unsigned long on_loop0 = loop_disk_calls();
    unsigned long fsync0 = fio_call_count(FIO_FSYNC), fdatasync0 = fio_call_count(FIO_FDATASYNC);
    unsigned long unlink0 = fio_call_count(FIO_UNLINK);
    int64_t end = mono_ms() + 1500;
    int64_t next_append = 0;
    while (mono_ms() < end) {
        if (mono_ms() >= next_append) { /* something for flush.ms to flush */
            assert_true(tu_append_n(plog, 1, 1, 10, now_ms()) >= 0);
            next_append = mono_ms() + 30;
        }
        loop_run_once(broker_loop(b), 10);
    }
    unsigned long on_loop = loop_disk_calls() - on_loop0;
    int left = plog_segment_count(plog);
    unsigned long fsyncs = fio_call_count(FIO_FSYNC) - fsync0;
    unsigned long fdatasyncs = fio_call_count(FIO_FDATASYNC) - fdatasync0;
    unsigned long unlinks = fio_call_count(FIO_UNLINK) - unlink0;
    broker_close(b);
    tu_rmrf(dir);
    free(dir);

    assert_int_equal(left, 1);         /* retention ran */
    assert_true(fsyncs > 0);           /* checkpoints were written */
    assert_true(fdatasyncs > 0);       /* flush.ms flushed */
    assert_true(unlinks >= 3 * (unsigned long)(seeded - 1)); /* the segments' files went */
    fprintf(stderr, "disk calls on the loop thread: %lu\n", on_loop);
    assert_int_equal(on_loop, 0);      /* and none of it on the loop thread */
}

int main(void)
{
    logging_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_in_order_completion_on_loop),
        cmocka_unit_test(test_bounded_queue_refuses_then_reserved_fits),
        cmocka_unit_test(test_stop_drains),
        cmocka_unit_test(test_broker_periodic_disk_work_off_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
