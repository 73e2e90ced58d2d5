/* test_log_faults: I/O failures injected through the file seam (log/fileio.h) — ENOSPC, EIO
 * and short writes on appends, index writes, rolls and flushes. The contract: the call fails
 * with KAFKA_STORAGE_ERROR, nothing partial is visible, and the next call after the fault
 * clears succeeds; a reopen finds the same log. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "log/fileio.h"

struct fx {
    char *dir;
    char *pdir;
    struct log_config cfg;
    struct plog *log;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir();
    f->pdir = tu_partition_dir(f->dir, "f");
    tu_config(&f->cfg);
    assert_int_equal(plog_open(f->pdir, "f", 0, &f->cfg, -1, -1, &f->log), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fio_fault_clear();
    tu_log_teardown(f->log, f->dir, f->pdir);
    free(f);
    return 0;
}

static int append_one(struct plog *log, int64_t ts)
{
    size_t len;
    uint8_t *b = tu_batch(2, 40, ts, BATCH_COMPRESSION_NONE, &len);
    int rc = plog_append(log, b, len, ts, NULL);
    free(b);
    return rc;
}

/* The visible log: end offset, size, the bytes a reader sees, the active file's size. */
static void expect_unchanged(struct fx *f, int64_t end, int64_t size)
{
    assert_int_equal(plog_end_offset(f->log), end);
    assert_int_equal(plog_size_bytes(f->log), size);
    assert_int_equal(tu_count_records(f->log, plog_start_offset(f->log)), end - plog_start_offset(f->log));
    struct log_slice s;
    assert_int_equal(plog_read(f->log, end, 1 << 20, end + 10, &s), 0);
    assert_int_equal(s.len, 0);
}

static void fault_on_append(struct fx *f, enum fio_call call, int nth, int err, long short_len, bool persist)
{
    for (int i = 0; i < 5; i++)
        assert_int_equal(append_one(f->log, 1000 + i), 0);
    int64_t end = plog_end_offset(f->log), size = plog_size_bytes(f->log);
    fio_fault_set(call, nth, err, short_len, persist);
    assert_int_equal(append_one(f->log, 2000), KERR_KAFKA_STORAGE_ERROR);
    assert_true(fio_fault_hits() > 0);
    fio_fault_clear();
    expect_unchanged(f, end, size);
    /* Nothing partial is left in the file either. */
    char *lp = tu_seg_path(f->pdir, 0, ".log");
    assert_int_equal(tu_file_size(lp), size);
    free(lp);
    assert_int_equal(append_one(f->log, 3000), 0);
    assert_int_equal(plog_end_offset(f->log), end + 2);
    assert_int_equal(tu_count_records(f->log, 0), end + 2);
    /* And a reopen (both clean and unclean) sees the same log. */
    assert_int_equal(plog_close(f->log), 0);
    assert_int_equal(plog_open(f->pdir, "f", 0, &f->cfg, PLOG_RECOVERY_POINT_CLEAN, -1, &f->log), 0);
    assert_int_equal(plog_end_offset(f->log), end + 2);
    assert_int_equal(plog_close(f->log), 0);
    assert_int_equal(plog_open(f->pdir, "f", 0, &f->cfg, 0, -1, &f->log), 0);
    assert_int_equal(plog_end_offset(f->log), end + 2);
    assert_int_equal(tu_count_records(f->log, 0), end + 2);
}

static void test_enospc_on_write(void **state)
{
    fault_on_append(*state, FIO_PWRITE, 1, ENOSPC, -1, false);
}

static void test_eio_on_write(void **state)
{
    fault_on_append(*state, FIO_PWRITE, 1, EIO, -1, false);
}

static void test_short_write_then_enospc(void **state)
{
    fault_on_append(*state, FIO_PWRITE, 1, ENOSPC, 17, true);
}

static void test_index_write_fails(void **state)
{
    struct fx *f = *state;
    /* Bytes since the last index entry pass 256 after a few appends: the next append writes
     * data (pwrite 1) and then an index entry (pwrite 2). Fail the index write. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_one(f->log, 1000 + i), 0);
    fault_on_append(f, FIO_PWRITE, 2, EIO, -1, true);
}

static void test_short_write_is_retried(void **state)
{
    struct fx *f = *state;
    /* A short write alone is not an error: the rest is written by the next call. */
    fio_fault_set(FIO_PWRITE, 1, ENOSPC, 5, false);
    assert_int_equal(append_one(f->log, 1), 0);
    assert_int_equal(fio_fault_hits(), 1);
    fio_fault_clear();
    assert_int_equal(tu_count_records(f->log, 0), 2);
}

static void test_roll_fails(void **state)
{
    struct fx *f = *state;
    int i = 0;
    while (plog_segment_count(f->log) == 1)
        assert_int_equal(append_one(f->log, i++), 0);
    /* Fill the second segment up to the point where the next append must roll. */
    int64_t before_segs = plog_segment_count(f->log);
    for (;;) {
        int64_t end = plog_end_offset(f->log), size = plog_size_bytes(f->log);
        fio_fault_set(FIO_OPEN, 1, EMFILE, -1, true);
        int rc = append_one(f->log, i);
        fio_fault_clear();
        if (rc == 0) {
            assert_int_equal(plog_segment_count(f->log), before_segs);
            i++;
            continue;
        }
        assert_int_equal(rc, KERR_KAFKA_STORAGE_ERROR);
        expect_unchanged(f, end, size);
        break;
    }
    assert_int_equal(append_one(f->log, i), 0);
    assert_int_equal(plog_segment_count(f->log), before_segs + 1);
    assert_int_equal(tu_count_records(f->log, 0), plog_end_offset(f->log));
}

static void test_flush_fails_then_succeeds(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_one(f->log, i), 0);
    fio_fault_set(FIO_FDATASYNC, 1, EIO, -1, false);
    assert_int_equal(plog_flush(f->log), KERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(plog_flushed_offset(f->log), 0);
    fio_fault_clear();
    assert_int_equal(plog_flush(f->log), 0);
    assert_int_equal(plog_flushed_offset(f->log), 6);
}

static void test_every_write_of_a_workload_can_fail(void **state)
{
    struct fx *f = *state;
    /* Run a workload that rolls segments; fail its Nth pwrite for each N, and check after
     * each fault that the visible log is a prefix that keeps working. */
    for (int nth = 1; nth <= 60; nth++) {
        int64_t end = plog_end_offset(f->log);
        fio_fault_set(FIO_PWRITE, nth, ENOSPC, -1, false);
        int failed = 0, ok = 0;
        for (int i = 0; i < 8; i++) {
            int rc = append_one(f->log, nth * 100 + i);
            if (rc == 0)
                ok++;
            else {
                assert_int_equal(rc, KERR_KAFKA_STORAGE_ERROR);
                failed++;
            }
        }
        fio_fault_clear();
        assert_true(failed <= 1);
        assert_int_equal(plog_end_offset(f->log), end + 2 * ok);
    }
    int64_t end = plog_end_offset(f->log);
    assert_int_equal(tu_count_records(f->log, 0), end);
    assert_int_equal(plog_close(f->log), 0);
    assert_int_equal(plog_open(f->pdir, "f", 0, &f->cfg, 0, -1, &f->log), 0);
    assert_int_equal(plog_end_offset(f->log), end);
    assert_int_equal(tu_count_records(f->log, 0), end);
}

static void test_open_fails_cleanly(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 40; i++)
        assert_int_equal(append_one(f->log, i), 0);
    assert_int_equal(plog_close(f->log), 0);
    f->log = NULL;
    /* Fail each of the first opens/reads during plog_open; it must fail or succeed whole. */
    enum fio_call calls[] = {FIO_OPEN, FIO_PREAD, FIO_FSTAT, FIO_FTRUNCATE};
    for (size_t c = 0; c < sizeof(calls) / sizeof(calls[0]); c++) {
        for (int nth = 1; nth <= 12; nth++) {
            struct plog *log = NULL;
            fio_fault_set(calls[c], nth, EIO, -1, false);
            int rc = plog_open(f->pdir, "f", 0, &f->cfg, 0, -1, &log);
            fio_fault_clear();
            if (rc == 0)
                assert_int_equal(plog_close(log), 0);
            else
                assert_int_equal(rc, KERR_KAFKA_STORAGE_ERROR);
        }
    }
    assert_int_equal(plog_open(f->pdir, "f", 0, &f->cfg, 0, -1, &f->log), 0);
    assert_int_equal(plog_end_offset(f->log), 80);
    assert_int_equal(tu_count_records(f->log, 0), 80);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enospc_on_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eio_on_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_write_then_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_write_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_write_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_fails_then_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_write_of_a_workload_can_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_cleanly, setup, teardown),
    };
    return cmocka_run_group_tests_name("log_faults", tests, NULL, NULL);
}
