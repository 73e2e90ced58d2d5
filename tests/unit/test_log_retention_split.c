/* test_log_retention_split: retention in two halves, as the broker runs it — the detach (event
 * loop: decide, take the segments out of the log, move the log start) and the dispose (I/O
 * worker: rename to .deleted, close, unlink) — with reads of a detached segment's slice still
 * working, and the delayed unlinks of file.delete.delay.ms collected by a later detach. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>

#include "log_test_util.h"
#include "log/fileio.h"
#include "common/util.h"

struct fx {
    char *dir, *pdir;
    struct log_config cfg;
    struct plog *log;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir();
    f->pdir = malloc(strlen(f->dir) + 16);
    sprintf(f->pdir, "%s/test-0", f->dir);
    tu_config(&f->cfg);
    f->cfg.retention_ms = 10000;
    assert_int_equal(plog_open(f->pdir, "test", 0, &f->cfg, -1, -1, &f->log), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    plog_close(f->log);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->pdir);
    free(f);
    return 0;
}

static void *dispose_thread(void *arg)
{
    fio_thread_set_io_worker(true);
    plog_trash_dispose(arg);
    return NULL;
}

static void test_detach_then_dispose_elsewhere(void **state)
{
    struct fx *f = *state;
    tu_append_n(f->log, 60, 1, 200, 1000);        /* old: timestamps 1000.. */
    tu_append_n(f->log, 1, 1, 10, 50000);         /* the active segment stays */
    int segs = plog_segment_count(f->log);
    assert_true(segs >= 4);
    /* A fetch's slice of the first segment, taken before retention. */
    struct log_slice old;
    assert_int_equal(plog_read(f->log, 0, 1 << 20, plog_end_offset(f->log), &old), 0);
    assert_true(old.fd >= 0 && old.len > 0);

    unsigned long renames = fio_call_count(FIO_RENAME), unlinks = fio_call_count(FIO_UNLINK);
    struct plog_trash *t;
    int detached = plog_retention_detach(f->log, 55000, &t);
    assert_int_equal(detached, segs - 1);
    assert_non_null(t);
    assert_int_equal(plog_trash_segments(t), detached);
    /* The log no longer has them; the disk still does, untouched. */
    assert_int_equal(plog_segment_count(f->log), 1);
    int64_t start = plog_start_offset(f->log);
    assert_true(start > 0);
    struct log_slice s;
    assert_int_equal(plog_read(f->log, start - 1, 100, plog_end_offset(f->log), &s),
                     KERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(fio_call_count(FIO_RENAME), renames);
    assert_int_equal(fio_call_count(FIO_UNLINK), unlinks);
    char *p0 = tu_seg_path(f->pdir, 0, ".log");
    assert_true(tu_file_size(p0) > 0);
    /* Appends go on meanwhile. */
    assert_true(tu_append_n(f->log, 1, 1, 10, 50001) > 0);

    /* The dispose on another thread: renamed, closed and (delay 0) unlinked. */
    unsigned long off_worker = fio_call_count_off_worker(FIO_UNLINK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dispose_thread, t), 0);
    pthread_join(th, NULL);
    assert_int_equal(fio_call_count_off_worker(FIO_UNLINK), off_worker);
    assert_true(fio_call_count(FIO_UNLINK) >= unlinks + 3 * (unsigned long)detached);
    assert_int_equal(tu_file_size(p0), -1);
    char *pd = tu_seg_path(f->pdir, 0, ".log.deleted");
    assert_int_equal(tu_file_size(pd), -1);
    free(pd);
    free(p0);

    /* The slice's own descriptor still reads the removed segment's first batch. */
    uint8_t *bytes = tu_slice_bytes(&old);
    struct batch_header h;
    batch_header_decode(bytes, &h);
    assert_int_equal(h.base_offset, 0);
    assert_int_equal(h.magic, 2);
    free(bytes);
    assert_int_equal(tu_count_records(f->log, start), plog_end_offset(f->log) - start);
}

static void test_delayed_unlink_collected_by_later_detach(void **state)
{
    struct fx *f = *state;
    f->cfg.file_delete_delay_ms = 1000;
    plog_set_config(f->log, &f->cfg);
    tu_append_n(f->log, 60, 1, 200, 1000);
    tu_append_n(f->log, 1, 1, 10, 50000);
    struct plog_trash *t;
    int detached = plog_retention_detach(f->log, 55000, &t);
    assert_true(detached > 0);
    plog_trash_dispose(t);
    char *pd = tu_seg_path(f->pdir, 0, ".log.deleted");
    assert_true(tu_file_size(pd) >= 0); /* waits for file.delete.delay.ms */
    assert_int_equal(plog_retention_detach(f->log, 55500, &t), 0);
    assert_null(t);                     /* not due yet: nothing to hand over */
    assert_int_equal(plog_retention_detach(f->log, 56000, &t), 0);
    assert_non_null(t);                 /* due: the unlinks are the trash's */
    assert_int_equal(plog_trash_segments(t), 0);
    assert_true(tu_file_size(pd) >= 0);
    plog_trash_dispose(t);
    assert_int_equal(tu_file_size(pd), -1);
    free(pd);
}

/* A roll leaves the segments below the new one owed a flush, which the periodic pass gives
 * on the worker (Kafka flushes on roll); flush.ms and flush.messages stay never. */
static void test_roll_makes_flush_due(void **state)
{
    struct fx *f = *state;
    tu_append_n(f->log, 1, 1, 10, 50000);
    assert_false(plog_roll_flush_due(f->log));
    assert_int_equal(plog_flush(f->log), 0);
    int segs = plog_segment_count(f->log);
    while (plog_segment_count(f->log) == segs)
        tu_append_n(f->log, 1, 1, 200, 50000);
    assert_true(plog_roll_flush_due(f->log));
    assert_false(plog_flush_due(f->log, 50001));
    assert_int_equal(plog_flush(f->log), 0);
    assert_false(plog_roll_flush_due(f->log));
    tu_append_n(f->log, 1, 1, 10, 50000); /* appends alone owe nothing */
    assert_false(plog_roll_flush_due(f->log));
}

int main(void)
{
    logging_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_detach_then_dispose_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_unlink_collected_by_later_detach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_makes_flush_due, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
