/* test_log_recovery: opening logs that were not closed cleanly or were damaged — torn tails at
 * every byte, flipped bytes, crashed processes, and missing or truncated index files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/wait.h>

#include "log_test_util.h"
#include "common/util.h"

struct fx {
    char *dir;
    char *pdir;
    struct log_config cfg;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir();
    f->pdir = malloc(strlen(f->dir) + 16);
    sprintf(f->pdir, "%s/t-3", f->dir);
    tu_config(&f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->pdir);
    free(f);
    return 0;
}

static struct plog *open_log(struct fx *f, int64_t rp)
{
    struct plog *log;
    assert_int_equal(plog_open(f->pdir, "t", 3, &f->cfg, rp, -1, &log), 0);
    return log;
}

/* Base offset and byte position of the last batch of the segment file. */
static void last_batch_of(const char *log_path, int64_t *pos, int64_t *base, int64_t *size)
{
    int fd = open(log_path, O_RDONLY);
    assert_true(fd >= 0);
    int64_t p = 0, fsize = tu_file_size(log_path);
    uint8_t hdr[BATCH_HEADER_SIZE];
    struct batch_header h;
    while (p < fsize) {
        assert_int_equal(pread(fd, hdr, sizeof(hdr), p), (ssize_t)sizeof(hdr));
        batch_header_decode(hdr, &h);
        if (p + batch_total_size(&h) >= fsize)
            break;
        p += batch_total_size(&h);
    }
    close(fd);
    *pos = p;
    *base = h.base_offset;
    *size = batch_total_size(&h);
}

static void copy_file(const char *from, const char *to)
{
    int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(a >= 0 && b >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(a, buf, sizeof(buf))) > 0)
        assert_int_equal(write(b, buf, (size_t)n), n);
    close(a);
    close(b);
}

static void test_truncate_every_byte_of_last_batch(void **state)
{
    struct fx *f = *state;
    f->cfg.segment_bytes = 1 << 20;
    struct plog *log = open_log(f, -1);
    tu_append_n(log, 20, 3, 40, 1000);
    int64_t end = plog_end_offset(log);
    assert_int_equal(plog_close(log), 0);
    char *lp = tu_seg_path(f->pdir, 0, ".log");
    char *saved = malloc(strlen(lp) + 8);
    sprintf(saved, "%s.orig", lp);
    copy_file(lp, saved);
    int64_t pos, base, size;
    last_batch_of(lp, &pos, &base, &size);
    assert_int_equal(base, end - 3);
    for (int64_t cut = pos + 1; cut < pos + size; cut++) {
        for (int mode = 0; mode < 2; mode++) {
            copy_file(saved, lp);
            assert_int_equal(truncate(lp, cut), 0);
            /* mode 0: unclean (recovery point 0); mode 1: marked clean yet torn. */
            log = open_log(f, mode == 0 ? 0 : PLOG_RECOVERY_POINT_CLEAN);
            assert_int_equal(plog_end_offset(log), base);
            assert_int_equal(tu_file_size(lp), pos);
            assert_int_equal(tu_count_records(log, 0), base);
            /* The log takes appends again at the recovered end. */
            assert_int_equal(tu_append_n(log, 1, 3, 40, 5000), base + 2);
            assert_int_equal(plog_close(log), 0);
        }
    }
    unlink(saved);
    free(saved);
    free(lp);
}

static void test_flipped_byte_detected_by_crc(void **state)
{
    struct fx *f = *state;
    f->cfg.segment_bytes = 1 << 20;
    struct plog *log = open_log(f, -1);
    tu_append_n(log, 10, 2, 30, 1000);
    assert_int_equal(plog_close(log), 0);
    char *lp = tu_seg_path(f->pdir, 0, ".log");
    char *saved = malloc(strlen(lp) + 8);
    sprintf(saved, "%s.orig", lp);
    copy_file(lp, saved);
    int64_t pos, base, size;
    last_batch_of(lp, &pos, &base, &size);
    /* Flip each CRC-covered byte of the last batch (and its CRC) in turn. */
    for (int64_t at = pos + 17; at < pos + size; at++) {
        copy_file(saved, lp);
        int fd = open(lp, O_RDWR);
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, at), 1);
        b ^= 0x10;
        assert_int_equal(pwrite(fd, &b, 1, at), 1);
        close(fd);
        log = open_log(f, 0);
        assert_int_equal(plog_end_offset(log), base);
        assert_int_equal(tu_file_size(lp), pos);
        assert_int_equal(plog_close(log), 0);
    }
    unlink(saved);
    free(saved);
    free(lp);
}

static void test_corrupt_middle_segment_deletes_following_ones(void **state)
{
    struct fx *f = *state;
    struct plog *log = open_log(f, -1);
    tu_append_n(log, 150, 1, 40, 1000);
    int segs = plog_segment_count(log);
    assert_true(segs >= 3);
    assert_int_equal(plog_close(log), 0);
    /* Find the second segment and damage its first batch. */
    DIR *d = opendir(f->pdir);
    struct dirent *e;
    int64_t bases[64];
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l == 24 && strcmp(e->d_name + 20, ".log") == 0)
            bases[n++] = strtoll(e->d_name, NULL, 10);
    }
    closedir(d);
    assert_int_equal(n, segs);
    int64_t second = INT64_MAX;
    for (int i = 0; i < n; i++)
        if (bases[i] > 0 && bases[i] < second)
            second = bases[i];
    char *lp = tu_seg_path(f->pdir, second, ".log");
    int fd = open(lp, O_RDWR);
    uint8_t b = 0x55;
    assert_int_equal(pwrite(fd, &b, 1, 40), 1);
    close(fd);
    /* Recovery point inside the first segment: the damage is in the unflushed region. */
    log = open_log(f, 1);
    assert_int_equal(plog_end_offset(log), second);
    assert_int_equal(plog_segment_count(log), 2);
    assert_int_equal(tu_count_records(log, 0), second);
    assert_int_equal(plog_close(log), 0);
    free(lp);
}

static void crashed_process_recovers(struct fx *f, int64_t rp)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct plog *log;
        if (plog_open(f->pdir, "t", 3, &f->cfg, -1, -1, &log) != 0)
            _exit(2);
        if (tu_append_n(log, 120, 2, 30, 1000) != 239)
            _exit(3);
        _exit(0); /* no close: indexes stay preallocated, nothing trimmed or synced */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Even a clean-flagged open notices the untrimmed active index and rebuilds it. */
    struct plog *log = open_log(f, rp);
    assert_int_equal(plog_end_offset(log), 240);
    assert_int_equal(tu_count_records(log, 0), 240);
    for (int64_t o = 0; o < 240; o += 7) {
        struct log_slice s;
        assert_int_equal(plog_read(log, o, 1, 240, &s), 0);
        uint8_t *buf = tu_slice_bytes(&s);
        struct batch_header h;
        batch_header_decode(buf, &h);
        assert_true(h.base_offset <= o && o <= batch_last_offset(&h));
        free(buf);
    }
    assert_int_equal(plog_close(log), 0);
}

static void test_crashed_process_recovers(void **state) { crashed_process_recovers(*state, 0); }
static void test_crashed_process_recovers_flagged_clean(void **state)
{
    crashed_process_recovers(*state, PLOG_RECOVERY_POINT_CLEAN);
}

/* Records, for every offset and timestamp, what the log answers. */
struct answers {
    int64_t pos[400];
    int64_t ts_off[400];
};

static void collect(struct plog *log, struct answers *a)
{
    for (int64_t o = 0; o < 400; o++) {
        struct log_slice s;
        assert_int_equal(plog_read(log, o, 1, 400, &s), 0);
        a->pos[o] = (int64_t)s.position * 1000000 + (int64_t)s.len;
        if (s.fd >= 0)
            close(s.fd);
        int64_t off, fts;
        assert_int_equal(plog_offset_for_timestamp(log, 1000 + o, &off, &fts), 0);
        a->ts_off[o] = off;
    }
}

static void damage_indexes_and_compare(struct fx *f, int how)
{
    struct plog *log = open_log(f, -1);
    tu_append_n(log, 200, 2, 30, 1000);
    struct answers before, after;
    collect(log, &before);
    int segs = plog_segment_count(log);
    assert_int_equal(plog_close(log), 0);
    /* Damage the indexes of the first segment and of the last one. */
    DIR *d = opendir(f->pdir);
    struct dirent *e;
    int64_t maxbase = 0;
    while ((e = readdir(d)) != NULL)
        if (strlen(e->d_name) == 24 && strcmp(e->d_name + 20, ".log") == 0) {
            int64_t b = strtoll(e->d_name, NULL, 10);
            if (b > maxbase)
                maxbase = b;
        }
    closedir(d);
    int64_t targets[2] = {0, maxbase};
    for (int t = 0; t < 2; t++) {
        char *ip = tu_seg_path(f->pdir, targets[t], ".index");
        char *tp = tu_seg_path(f->pdir, targets[t], ".timeindex");
        switch (how) {
        case 0: unlink(ip); break;
        case 1: unlink(tp); break;
        case 2: assert_int_equal(truncate(ip, 0), 0); assert_int_equal(truncate(tp, 0), 0); break;
        case 3: assert_int_equal(truncate(ip, tu_file_size(ip) - 3), 0); break;
        case 4: assert_int_equal(truncate(tp, tu_file_size(tp) - 5), 0); break;
        case 5: assert_int_equal(truncate(ip, tu_file_size(ip) - 16), 0); break;
        case 6: assert_int_equal(truncate(tp, tu_file_size(tp) - 12), 0); break;
        }
        free(ip);
        free(tp);
    }
    log = open_log(f, PLOG_RECOVERY_POINT_CLEAN);
    assert_int_equal(plog_segment_count(log), segs);
    assert_int_equal(plog_end_offset(log), 400);
    collect(log, &after);
    assert_memory_equal(before.pos, after.pos, sizeof(before.pos));
    assert_memory_equal(before.ts_off, after.ts_off, sizeof(before.ts_off));
    assert_int_equal(plog_close(log), 0);
    /* The rebuilt files match Kafka's interval rule byte for byte: open again, compare the
     * index files with a fresh rebuild from an unclean open. */
    char *ip = tu_seg_path(f->pdir, 0, ".index");
    char *tp = tu_seg_path(f->pdir, 0, ".timeindex");
    int64_t isz = tu_file_size(ip), tsz = tu_file_size(tp);
    assert_true(isz > 0 && isz % 8 == 0);
    assert_true(tsz > 0 && tsz % 12 == 0);
    log = open_log(f, 0);
    assert_int_equal(plog_close(log), 0);
    assert_int_equal(tu_file_size(ip), isz);
    assert_int_equal(tu_file_size(tp), tsz);
    free(ip);
    free(tp);
}

static void test_missing_offset_index_rebuilt(void **state) { damage_indexes_and_compare(*state, 0); }
static void test_missing_time_index_rebuilt(void **state) { damage_indexes_and_compare(*state, 1); }
static void test_emptied_indexes_rebuilt(void **state) { damage_indexes_and_compare(*state, 2); }
static void test_ragged_offset_index_rebuilt(void **state) { damage_indexes_and_compare(*state, 3); }
static void test_ragged_time_index_rebuilt(void **state) { damage_indexes_and_compare(*state, 4); }
static void test_short_offset_index_rebuilt(void **state) { damage_indexes_and_compare(*state, 5); }
static void test_short_time_index_rebuilt(void **state) { damage_indexes_and_compare(*state, 6); }

static void test_garbage_files_do_not_crash(void **state)
{
    struct fx *f = *state;
    mkdir(f->pdir, 0755);
    char *lp = tu_seg_path(f->pdir, 0, ".log");
    char *ip = tu_seg_path(f->pdir, 0, ".index");
    char *tp = tu_seg_path(f->pdir, 0, ".timeindex");
    char *orphan = tu_seg_path(f->pdir, 777, ".index");
    uint8_t junk[5000];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    int fd = open(lp, O_WRONLY | O_CREAT, 0644);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    fd = open(ip, O_WRONLY | O_CREAT, 0644);
    assert_int_equal(write(fd, junk, 800), 800);
    close(fd);
    fd = open(tp, O_WRONLY | O_CREAT, 0644);
    assert_int_equal(write(fd, junk, 120), 120);
    close(fd);
    fd = open(orphan, O_WRONLY | O_CREAT, 0644);
    close(fd);
    struct plog *log = open_log(f, PLOG_RECOVERY_POINT_CLEAN);
    assert_int_equal(plog_end_offset(log), 0);
    assert_int_equal(tu_file_size(lp), 0);
    assert_int_equal(tu_file_size(orphan), -1);
    assert_int_equal(tu_append_n(log, 3, 1, 10, 1), 2);
    assert_int_equal(plog_close(log), 0);
    free(lp);
    free(ip);
    free(tp);
    free(orphan);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_truncate_every_byte_of_last_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_detected_by_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_segment_deletes_following_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crashed_process_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crashed_process_recovers_flagged_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_offset_index_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_time_index_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emptied_indexes_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ragged_offset_index_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ragged_time_index_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_offset_index_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_time_index_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_files_do_not_crash, setup, teardown),
    };
    return cmocka_run_group_tests_name("log_recovery", tests, NULL, NULL);
}
