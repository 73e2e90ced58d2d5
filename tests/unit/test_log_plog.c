/* test_log_plog: the partition log's normal life — append, read, roll, index and time-index
 * lookups, LogAppendTime, validation, retention, DeleteRecords, flush, clean reopen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "log/inflate.h"
#include "log/fileio.h"
#include "common/util.h"

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
    f->pdir = malloc(strlen(f->dir) + 16);
    sprintf(f->pdir, "%s/test-0", f->dir);
    tu_config(&f->cfg);
    assert_int_equal(plog_open(f->pdir, "test", 0, &f->cfg, -1, -1, &f->log), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->log != NULL)
        plog_close(f->log);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->pdir);
    free(f);
    return 0;
}

static void reopen(struct fx *f, int64_t recovery_point)
{
    int64_t start = plog_start_offset(f->log);
    assert_int_equal(plog_close(f->log), 0);
    f->log = NULL;
    assert_int_equal(plog_open(f->pdir, "test", 0, &f->cfg, recovery_point, start, &f->log), 0);
}

static void test_append_assigns_offsets_and_reads_back(void **state)
{
    struct fx *f = *state;
    assert_int_equal(plog_end_offset(f->log), 0);
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *b = tu_batch(2, 10, 1000 + i, BATCH_COMPRESSION_NONE, &len);
        struct log_append_info info;
        assert_int_equal(plog_append(f->log, b, len, 5000, &info), 0);
        assert_int_equal(info.base_offset, 2 * i);
        assert_int_equal(info.last_offset, 2 * i + 1);
        assert_int_equal(info.log_append_time, -1);
        free(b);
    }
    assert_int_equal(plog_end_offset(f->log), 6);
    struct log_slice s;
    assert_int_equal(plog_read(f->log, 0, 1 << 20, plog_end_offset(f->log), &s), 0);
    assert_true(s.fd >= 0);
    assert_int_equal(s.position, 0);
    size_t n = s.len;
    uint8_t *buf = tu_slice_bytes(&s);
    size_t pos = 0;
    int64_t expect = 0;
    while (pos < n) {
        struct batch_header h;
        batch_header_decode(buf + pos, &h);
        assert_int_equal(h.base_offset, expect);
        assert_int_equal(h.partition_leader_epoch, 0);
        assert_int_equal(batch_compute_crc(buf + pos, (size_t)batch_total_size(&h)), h.crc);
        expect += h.records_count;
        pos += (size_t)batch_total_size(&h);
    }
    assert_int_equal(pos, n);
    assert_int_equal(expect, 6);
    free(buf);
    assert_int_equal(tu_count_records(f->log, 0), 6);
    assert_int_equal(plog_size_bytes(f->log), (int64_t)n);
}

static void test_read_bounds(void **state)
{
    struct fx *f = *state;
    assert_int_equal(tu_append_n(f->log, 4, 3, 20, 100), 11);
    struct log_slice s;
    /* From the middle of batch 1 (offsets 3..5): starts at that batch. */
    assert_int_equal(plog_read(f->log, 4, 1 << 20, 12, &s), 0);
    uint8_t *buf = tu_slice_bytes(&s);
    struct batch_header h;
    batch_header_decode(buf, &h);
    assert_int_equal(h.base_offset, 3);
    size_t one = (size_t)batch_total_size(&h);
    assert_int_equal(s.len, 3 * one);
    free(buf);
    /* max_bytes smaller than one batch: still one whole batch (KIP-74). */
    assert_int_equal(plog_read(f->log, 4, 1, 12, &s), 0);
    assert_int_equal(s.len, one);
    close(s.fd);
    /* max_bytes for 1.5 batches: one batch, never a partial one. */
    assert_int_equal(plog_read(f->log, 0, (int32_t)(one + one / 2), 12, &s), 0);
    assert_int_equal(s.len, one);
    close(s.fd);
    /* end_offset stops before the batch holding it. */
    assert_int_equal(plog_read(f->log, 0, 1 << 20, 6, &s), 0);
    assert_int_equal(s.len, 2 * one);
    close(s.fd);
    assert_int_equal(plog_read(f->log, 0, 1 << 20, 5, &s), 0);
    assert_int_equal(s.len, one);
    close(s.fd);
    /* At the log end: nothing, no fd. Past it: out of range. */
    assert_int_equal(plog_read(f->log, 12, 1 << 20, 12, &s), 0);
    assert_int_equal(s.len, 0);
    assert_int_equal(s.fd, -1);
    assert_int_equal(plog_read(f->log, 13, 1 << 20, 13, &s), KERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(plog_read(f->log, -1, 1 << 20, 13, &s), KERR_OFFSET_OUT_OF_RANGE);
}

static void test_roll_by_size_and_index_lookup(void **state)
{
    struct fx *f = *state;
    /* ~100-byte batches, 4 KiB segments, index every 256 bytes. */
    int64_t last = tu_append_n(f->log, 200, 1, 30, 1000);
    assert_int_equal(last, 199);
    assert_true(plog_segment_count(f->log) > 3);
    assert_int_equal(tu_count_records(f->log, 0), 200);
    /* Every offset reads back from the batch that holds it. */
    for (int64_t o = 0; o < 200; o++) {
        struct log_slice s;
        assert_int_equal(plog_read(f->log, o, 1, 200, &s), 0);
        uint8_t *b = tu_slice_bytes(&s);
        struct batch_header h;
        batch_header_decode(b, &h);
        assert_int_equal(h.base_offset, o);
        free(b);
    }
    /* Rolled segments have trimmed indexes with entries; the active one is preallocated. */
    char *p = tu_seg_path(f->pdir, 0, ".index");
    int64_t sz = tu_file_size(p);
    assert_true(sz > 0 && sz % 8 == 0 && sz < 4096);
    free(p);
    p = tu_seg_path(f->pdir, 0, ".timeindex");
    sz = tu_file_size(p);
    assert_true(sz > 0 && sz % 12 == 0 && sz < 4096);
    free(p);
    /* No segment exceeds segment.bytes. */
    for (int64_t base = 0; base < 200; base++) {
        char *lp = tu_seg_path(f->pdir, base, ".log");
        int64_t ls = tu_file_size(lp);
        assert_true(ls <= 4096);
        free(lp);
    }
}

static void test_timestamp_lookup(void **state)
{
    struct fx *f = *state;
    /* 100 batches of 2 records; record timestamps 10000 + 2i, 10000 + 2i + 1. */
    for (int i = 0; i < 100; i++) {
        size_t len;
        uint8_t *b = tu_batch(2, 30, 10000 + 2 * i, BATCH_COMPRESSION_NONE, &len);
        assert_int_equal(plog_append(f->log, b, len, 0, NULL), 0);
        free(b);
    }
    for (int64_t ts = 9990; ts < 10200; ts += 1) {
        int64_t off, fts;
        assert_int_equal(plog_offset_for_timestamp(f->log, ts, &off, &fts), 0);
        if (ts <= 10000) {
            assert_int_equal(off, 0);
            assert_int_equal(fts, 10000);
        } else if (ts < 10200) {
            assert_int_equal(off, ts - 10000);
            assert_int_equal(fts, ts);
        }
    }
    int64_t off, fts;
    assert_int_equal(plog_offset_for_timestamp(f->log, 20000, &off, &fts), 0);
    assert_int_equal(off, -1);
    assert_int_equal(plog_offset_for_timestamp(f->log, -2, &off, &fts), 0);
    assert_int_equal(off, 0);
    assert_int_equal(plog_offset_for_timestamp(f->log, -1, &off, &fts), 0);
    assert_int_equal(off, 200);
    assert_int_equal(plog_offset_for_timestamp(f->log, -3, &off, &fts), 0);
    assert_int_equal(off, 199);
    assert_int_equal(fts, 10199);
    /* Same answers after a clean reopen (timestamps from the time index). */
    reopen(f, PLOG_RECOVERY_POINT_CLEAN);
    assert_int_equal(plog_offset_for_timestamp(f->log, 10077, &off, &fts), 0);
    assert_int_equal(off, 77);
    assert_int_equal(plog_offset_for_timestamp(f->log, -3, &off, &fts), 0);
    assert_int_equal(off, 199);
}

static void test_log_append_time(void **state)
{
    struct fx *f = *state;
    f->cfg.timestamp_type = LOG_TS_LOG_APPEND_TIME;
    plog_set_config(f->log, &f->cfg);
    size_t len;
    uint8_t *b = tu_batch(3, 10, 1234, BATCH_COMPRESSION_NONE, &len);
    struct log_append_info info;
    assert_int_equal(plog_append(f->log, b, len, 987654321, &info), 0);
    free(b);
    assert_int_equal(info.log_append_time, 987654321);
    struct log_slice s;
    assert_int_equal(plog_read(f->log, 0, 1 << 20, 3, &s), 0);
    size_t n = s.len;
    uint8_t *buf = tu_slice_bytes(&s);
    struct batch_header h;
    batch_header_decode(buf, &h);
    assert_true(h.attributes & BATCH_ATTR_LOG_APPEND_TIME);
    assert_int_equal(h.max_timestamp, 987654321);
    assert_int_equal(batch_compute_crc(buf, n), h.crc);
    struct batch_record_iter it;
    struct batch_record r;
    assert_int_equal(batch_records_open(&it, buf, n, 1 << 20), 0);
    assert_int_equal(batch_records_next(&it, &r), 1);
    assert_int_equal(r.timestamp, 987654321);
    batch_records_close(&it);
    free(buf);
}

static void test_validation(void **state)
{
    struct fx *f = *state;
    size_t len;
    uint8_t *b = tu_batch(2, 10, 1, BATCH_COMPRESSION_NONE, &len);
    uint8_t *c = malloc(len);
    /* bad CRC */
    memcpy(c, b, len);
    c[len - 1] ^= 1;
    assert_int_equal(plog_append(f->log, c, len, 0, NULL), KERR_CORRUPT_MESSAGE);
    /* length field disagrees with the bytes */
    memcpy(c, b, len);
    assert_int_equal(plog_append(f->log, c, len - 1, 0, NULL), KERR_CORRUPT_MESSAGE);
    /* legacy magic: Produce v3+ carries magic 2 only (Kafka: INVALID_RECORD) */
    memcpy(c, b, len);
    c[16] = 1;
    assert_int_equal(plog_append(f->log, c, len, 0, NULL), KERR_INVALID_RECORD);
    /* lastOffsetDelta + 1 != recordsCount (CRC fixed up so only that is wrong) */
    memcpy(c, b, len);
    be32_put(c + 23, 5);
    be32_put(c + 17, batch_compute_crc(c, len));
    assert_int_equal(plog_append(f->log, c, len, 0, NULL), KERR_INVALID_RECORD);
    /* control batch from a client */
    memcpy(c, b, len);
    be16_put(c + 21, BATCH_ATTR_CONTROL);
    be32_put(c + 17, batch_compute_crc(c, len));
    assert_int_equal(plog_append(f->log, c, len, 0, NULL), KERR_INVALID_RECORD);
    /* producer id without a sequence */
    memcpy(c, b, len);
    be64_put(c + 43, 7);
    be32_put(c + 17, batch_compute_crc(c, len));
    assert_int_equal(plog_append(f->log, c, len, 0, NULL), KERR_INVALID_RECORD);
    /* too large */
    f->cfg.max_message_bytes = (int32_t)len - 1;
    plog_set_config(f->log, &f->cfg);
    memcpy(c, b, len);
    assert_int_equal(plog_append(f->log, c, len, 0, NULL), KERR_MESSAGE_TOO_LARGE);
    f->cfg.max_message_bytes = (int32_t)len;
    plog_set_config(f->log, &f->cfg);
    memcpy(c, b, len);
    assert_int_equal(plog_append(f->log, c, len, 0, NULL), 0);
    assert_int_equal(plog_end_offset(f->log), 2);
    assert_int_equal(plog_size_bytes(f->log), (int64_t)len);
    free(b);
    free(c);
}

static void test_segment_ms_roll(void **state)
{
    struct fx *f = *state;
    f->cfg.segment_ms = 1000;
    f->cfg.segment_bytes = 1 << 20;
    plog_set_config(f->log, &f->cfg);
    assert_int_equal(tu_append_n(f->log, 1, 1, 10, 5000), 0);
    assert_int_equal(tu_append_n(f->log, 1, 1, 10, 5900), 1);
    assert_int_equal(plog_segment_count(f->log), 1);
    assert_int_equal(tu_append_n(f->log, 1, 1, 10, 6001), 2);
    assert_int_equal(plog_segment_count(f->log), 2);
    /* The periodic roll uses the first batch's timestamp against now. */
    assert_int_equal(plog_maybe_roll(f->log, 6500), 0);
    assert_int_equal(plog_segment_count(f->log), 2);
    assert_int_equal(plog_maybe_roll(f->log, 7100), 0);
    assert_int_equal(plog_segment_count(f->log), 3);
    /* An empty active segment is never rolled. */
    assert_int_equal(plog_maybe_roll(f->log, 99999), 0);
    assert_int_equal(plog_segment_count(f->log), 3);
}

static void test_retention_by_size(void **state)
{
    struct fx *f = *state;
    tu_append_n(f->log, 200, 1, 30, 1000);
    int segs = plog_segment_count(f->log);
    int64_t size = plog_size_bytes(f->log);
    f->cfg.retention_bytes = size / 2;
    plog_set_config(f->log, &f->cfg);
    int deleted = plog_enforce_retention(f->log, 2000);
    assert_true(deleted > 0);
    assert_int_equal(plog_segment_count(f->log), segs - deleted);
    assert_true(plog_size_bytes(f->log) <= size / 2 + 4096);
    assert_true(plog_size_bytes(f->log) >= size / 2 - 4096);
    int64_t start = plog_start_offset(f->log);
    assert_true(start > 0);
    struct log_slice s;
    assert_int_equal(plog_read(f->log, start - 1, 100, 200, &s), KERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(tu_count_records(f->log, start), 200 - start);
    /* The deleted files are gone (file.delete.delay.ms = 0). */
    char *p = tu_seg_path(f->pdir, 0, ".log");
    assert_int_equal(tu_file_size(p), -1);
    free(p);
    p = tu_seg_path(f->pdir, 0, ".log.deleted");
    assert_int_equal(tu_file_size(p), -1);
    free(p);
    /* Idempotent. */
    assert_int_equal(plog_enforce_retention(f->log, 2000), 0);
}

static void test_retention_by_time_including_active(void **state)
{
    struct fx *f = *state;
    f->cfg.file_delete_delay_ms = 1000;
    f->cfg.retention_ms = 10000;
    plog_set_config(f->log, &f->cfg);
    tu_append_n(f->log, 100, 1, 30, 1000);      /* timestamps 1000..1099 */
    int64_t end = plog_end_offset(f->log);
    assert_int_equal(plog_enforce_retention(f->log, 5000), 0);
    int segs = plog_segment_count(f->log);
    int deleted = plog_enforce_retention(f->log, 1099 + 10001);
    /* Every segment breached, the active one too: it is rolled first, one empty remains. */
    assert_int_equal(deleted, segs);
    assert_int_equal(plog_segment_count(f->log), 1);
    assert_int_equal(plog_start_offset(f->log), end);
    assert_int_equal(plog_end_offset(f->log), end);
    assert_int_equal(plog_size_bytes(f->log), 0);
    /* Files wait as .deleted for file.delete.delay.ms, then go. */
    char *p = tu_seg_path(f->pdir, 0, ".log.deleted");
    assert_true(tu_file_size(p) >= 0);
    plog_enforce_retention(f->log, 1099 + 10001 + 1000);
    assert_int_equal(tu_file_size(p), -1);
    free(p);
    /* Appends continue at the old end. */
    assert_int_equal(tu_append_n(f->log, 1, 1, 10, 50000), end);
}

static void test_delete_records(void **state)
{
    struct fx *f = *state;
    tu_append_n(f->log, 100, 1, 30, 1000);
    int segs = plog_segment_count(f->log);
    int64_t ns;
    assert_int_equal(plog_delete_records(f->log, 101, &ns), KERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(plog_delete_records(f->log, 57, &ns), 0);
    assert_int_equal(ns, 57);
    assert_int_equal(plog_start_offset(f->log), 57);
    assert_true(plog_segment_count(f->log) < segs);
    struct log_slice s;
    assert_int_equal(plog_read(f->log, 56, 100, 100, &s), KERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(plog_read(f->log, 57, 100, 100, &s), 0);
    close(s.fd);
    /* Moving backwards is a no-op. */
    assert_int_equal(plog_delete_records(f->log, 10, &ns), 0);
    assert_int_equal(ns, 57);
    /* Timestamp lookups never answer below the log start. */
    int64_t off, fts;
    assert_int_equal(plog_offset_for_timestamp(f->log, 0, &off, &fts), 0);
    assert_int_equal(off, 57);
    /* Survives a reopen when the broker passes the checkpointed start back. */
    reopen(f, PLOG_RECOVERY_POINT_CLEAN);
    assert_int_equal(plog_start_offset(f->log), 57);
    assert_int_equal(tu_count_records(f->log, 57), 43);
    /* -1 = up to the high watermark (the log end). */
    assert_int_equal(plog_delete_records(f->log, -1, &ns), 0);
    assert_int_equal(ns, 100);
    assert_int_equal(plog_end_offset(f->log), 100);
}

static void test_flush_tracking(void **state)
{
    struct fx *f = *state;
    f->cfg.flush_messages = 5;
    plog_set_config(f->log, &f->cfg);
    tu_append_n(f->log, 3, 1, 10, 1);
    assert_int_equal(plog_flushed_offset(f->log), 0);
    assert_false(plog_flush_due(f->log, now_ms()));
    tu_append_n(f->log, 2, 1, 10, 1);
    assert_true(plog_flush_due(f->log, now_ms()));
    assert_int_equal(plog_flush(f->log), 0);
    assert_int_equal(plog_flushed_offset(f->log), 5);
    assert_false(plog_flush_due(f->log, now_ms()));
    f->cfg.flush_messages = INT64_MAX;
    f->cfg.flush_ms = 100;
    plog_set_config(f->log, &f->cfg);
    tu_append_n(f->log, 1, 1, 10, 1);
    assert_false(plog_flush_due(f->log, now_ms() - 1000));
    assert_true(plog_flush_due(f->log, now_ms() + 1000));
    /* Flush across a roll syncs the rolled segment too. */
    tu_append_n(f->log, 100, 1, 30, 1);
    assert_int_equal(plog_flush(f->log), 0);
    assert_int_equal(plog_flushed_offset(f->log), plog_end_offset(f->log));
}

static void test_clean_reopen_keeps_everything(void **state)
{
    struct fx *f = *state;
    tu_append_n(f->log, 150, 2, 25, 1000);
    int64_t end = plog_end_offset(f->log);
    int segs = plog_segment_count(f->log);
    int64_t size = plog_size_bytes(f->log);
    reopen(f, PLOG_RECOVERY_POINT_CLEAN);
    assert_int_equal(plog_end_offset(f->log), end);
    assert_int_equal(plog_segment_count(f->log), segs);
    assert_int_equal(plog_size_bytes(f->log), size);
    assert_int_equal(plog_flushed_offset(f->log), end);
    assert_int_equal(tu_count_records(f->log, 0), end);
    /* Recovery point at the end: the cleanly closed last segment is not scanned either. */
    reopen(f, end);
    assert_int_equal(plog_end_offset(f->log), end);
    /* Appends continue with the right offsets and the segment stays within bounds. */
    assert_int_equal(tu_append_n(f->log, 10, 2, 25, 5000), end + 19);
    assert_int_equal(tu_count_records(f->log, 0), end + 20);
}

static void test_clean_open_does_not_scan(void **state)
{
    struct fx *f = *state;
    /* One big segment: a byte flipped in its middle is only found by a full scan. */
    f->cfg.segment_bytes = 1 << 20;
    f->cfg.index_interval_bytes = 4096;
    f->cfg.segment_index_bytes = 1 << 16;
    plog_set_config(f->log, &f->cfg);
    reopen(f, PLOG_RECOVERY_POINT_CLEAN);
    tu_append_n(f->log, 2000, 1, 100, 1000);
    int64_t end = plog_end_offset(f->log);
    assert_int_equal(plog_close(f->log), 0);
    f->log = NULL;
    char *p = tu_seg_path(f->pdir, 0, ".log");
    int fd = open(p, O_RDWR);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, 50000), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, 50000), 1);
    close(fd);
    int64_t size = tu_file_size(p);
    assert_int_equal(plog_open(f->pdir, "test", 0, &f->cfg, PLOG_RECOVERY_POINT_CLEAN, -1, &f->log), 0);
    assert_int_equal(plog_end_offset(f->log), end);
    assert_int_equal(tu_file_size(p), size);
    /* An unclean open (recovery point 0) scans and cuts at the flipped byte. */
    assert_int_equal(plog_close(f->log), 0);
    assert_int_equal(plog_open(f->pdir, "test", 0, &f->cfg, 0, -1, &f->log), 0);
    assert_true(plog_end_offset(f->log) < end);
    assert_true(tu_file_size(p) <= 50000);
    free(p);
}

static void test_delete_partition(void **state)
{
    struct fx *f = *state;
    tu_append_n(f->log, 10, 1, 10, 1);
    assert_int_equal(plog_delete(f->log), 0);
    f->log = NULL;
    struct stat st;
    assert_int_not_equal(stat(f->pdir, &st), 0);
}

static void test_log_start_checkpoint_past_end(void **state)
{
    struct fx *f = *state;
    tu_append_n(f->log, 10, 1, 10, 1);
    assert_int_equal(plog_close(f->log), 0);
    f->log = NULL;
    /* A checkpointed log start beyond the data: the log restarts there. */
    assert_int_equal(plog_open(f->pdir, "test", 0, &f->cfg, PLOG_RECOVERY_POINT_CLEAN, 50, &f->log), 0);
    assert_int_equal(plog_start_offset(f->log), 50);
    assert_int_equal(plog_end_offset(f->log), 50);
    assert_int_equal(tu_append_n(f->log, 1, 1, 10, 1), 50);
}


/* Descriptors this process holds (the DIR's own one excluded). */
static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* Inactive segments keep their files closed until a read needs them, and only a few stay
 * open afterwards: 200+ segments must not cost 3 descriptors each (issue 12 item 7). */
static void test_fds_do_not_grow_with_segments(void **state)
{
    struct fx *f = *state;
    int before = open_fd_count();
    /* ~1.1 KB batches, 4 KiB segments: 3 batches a segment. */
    assert_int_equal(tu_append_n(f->log, 660, 1, 1000, 1000), 659);
    int segs = plog_segment_count(f->log);
    assert_true(segs >= 200);
    int bound = 40; /* the active segment plus a small cache of inactive ones, 3 fds each */
    assert_true(open_fd_count() - before <= bound);
    /* Every segment still reads back; the fd count stays bounded while reading them all. */
    for (int64_t o = 0; o < 660; o += 5) {
        struct log_slice sl;
        assert_int_equal(plog_read(f->log, o, 1, 660, &sl), 0);
        assert_true(sl.len > 0 && sl.fd >= 0);
        uint8_t *b = tu_slice_bytes(&sl);
        struct batch_header h;
        batch_header_decode(b, &h);
        assert_int_equal(h.base_offset, o);
        free(b);
        assert_true(open_fd_count() - before <= bound);
    }
    /* Timestamp lookups walk old segments' time indexes and batches. */
    for (int64_t ts = 1000; ts < 1660; ts += 11) {
        int64_t off, fts;
        assert_int_equal(plog_offset_for_timestamp(f->log, ts, &off, &fts), 0);
        assert_int_equal(off, ts - 1000);
        assert_int_equal(fts, ts);
        assert_true(open_fd_count() - before <= bound);
    }
    /* A slice handed out stays readable after its segment's descriptors are given back. */
    struct log_slice keep;
    assert_int_equal(plog_read(f->log, 3, 1, 660, &keep), 0);
    for (int64_t o = 100; o < 660; o += 3) {
        struct log_slice sl;
        assert_int_equal(plog_read(f->log, o, 1, 660, &sl), 0);
        free(tu_slice_bytes(&sl));
    }
    uint8_t *kb = tu_slice_bytes(&keep);
    struct batch_header kh;
    batch_header_decode(kb, &kh);
    assert_int_equal(kh.base_offset, 3);
    free(kb);
    assert_int_equal(plog_flush(f->log), 0);
    assert_true(open_fd_count() - before <= bound);
    assert_int_equal(tu_count_records(f->log, 0), 660);
    /* Clean reopen: loading 200+ segments does not hold their files open either. */
    reopen(f, PLOG_RECOVERY_POINT_CLEAN);
    assert_int_equal(plog_segment_count(f->log), segs);
    assert_true(open_fd_count() - before <= bound);
    reopen(f, -1); /* full recovery scans every segment */
    assert_true(open_fd_count() - before <= bound);
    assert_int_equal(tu_count_records(f->log, 0), 660);
    /* Retention by size deletes old segments, then the rest still reads. */
    f->cfg.retention_bytes = 40000;
    plog_set_config(f->log, &f->cfg);
    assert_true(plog_enforce_retention(f->log, now_ms()) > 0);
    assert_true(open_fd_count() - before <= bound);
    assert_int_equal(tu_count_records(f->log, plog_start_offset(f->log)), 660 - plog_start_offset(f->log));
}


/* Peak resident memory of this process in KiB, and a reset of it to the current size. */
static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    assert_non_null(f);
    fputs("5", f);
    fclose(f);
}

/* ListOffsets by timestamp in a zstd batch whose records inflate to 250 MiB of zeros (under
 * the 256 MiB produce validation takes): records are streamed through a small window, values
 * skipped unread and the walk stops at the first match, so the answers are exact and the
 * process's peak memory hardly moves (issue 12 item 8: it used to inflate the whole batch). */
static void test_timestamp_lookup_streams_huge_batch(void **state)
{
    struct fx *f = *state;
    const int64_t t0 = 1700000000000;
    /* record i: timestamp t0 + 10 i; 30 MiB, small, 30 MiB, small, then 190 MiB */
    const int32_t sizes[] = {30 << 20, 3, 30 << 20, 3, 190 << 20};
    struct batch_builder b;
    batch_builder_init(&b, 512u << 20);
    uint8_t *zeros = calloc(1, 190u << 20);
    assert_non_null(zeros);
    for (int i = 0; i < 5; i++)
        assert_int_equal(batch_builder_add(&b, t0 + 10 * i, "k", 1, zeros, sizes[i], NULL, 0), 0);
    free(zeros);
    uint8_t *batch;
    size_t len;
    assert_int_equal(batch_builder_finish(&b, BATCH_COMPRESSION_ZSTD, &batch, &len), 0);
    batch_builder_free(&b);
    assert_true(len < 64 * 1024); /* a tiny frame on disk */
    size_t small_len;
    uint8_t *small = tu_batch(1, 10, t0 - 100, BATCH_COMPRESSION_NONE, &small_len);
    assert_int_equal(plog_append(f->log, small, small_len, 0, NULL), 0); /* offset 0 */
    assert_int_equal(plog_append(f->log, batch, len, 0, NULL), 0);       /* offsets 1-5 */
    free(batch);
    free(small);

    /* Peak memory over one lookup that streams past both 30 MB values to the 190 MiB record
     * (one only: under ASan every freed window waits in the quarantine, so lookups add up). */
    int64_t off, ts;
    inflater_memory_high_water_reset();
    reset_peak_rss();
    long before = peak_rss_kb();
    int64_t us = mono_us();
    assert_int_equal(plog_offset_for_timestamp(f->log, t0 + 35, &off, &ts), 0);
    us = mono_us() - us;
    long grew_kb = peak_rss_kb() - before;
    assert_int_equal(off, 5);
    assert_int_equal(ts, t0 + 40);
    print_message("one lookup streamed 60 MB in %" PRId64 " us\n", us);
    print_message("peak RSS grew by %ld KiB in one lookup\n", grew_kb);
    print_message("one lookup held at most %zu bytes\n", inflater_memory_high_water());
    assert_true(grew_kb < 32 * 1024);
    assert_true(inflater_memory_high_water() > 0 && inflater_memory_high_water() < (4u << 20));
    struct { int64_t target, offset, ts; } want[] = {
        {t0 - 100, 0, t0 - 100}, {t0 - 50, 1, t0}, {t0, 1, t0}, {t0 + 5, 2, t0 + 10},
        {t0 + 15, 3, t0 + 20}, {t0 + 25, 4, t0 + 30}, {t0 + 40, 5, t0 + 40}, {t0 + 41, -1, -1},
        {-3, 5, t0 + 40},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(plog_offset_for_timestamp(f->log, want[i].target, &off, &ts), 0);
        assert_int_equal(off, want[i].offset);
        if (off >= 0)
            assert_int_equal(ts, want[i].ts);
    }
    /* Records below the log start offset are passed over inside the batch. */
    assert_int_equal(plog_delete_records(f->log, 3, NULL), 0);
    assert_int_equal(plog_offset_for_timestamp(f->log, t0 - 50, &off, &ts), 0);
    assert_int_equal(off, 3);
    assert_int_equal(ts, t0 + 20);
}

/* A batch whose records would take more than the lookup's budget to stream past answers
 * with its first offset (and its max timestamp) instead of decoding on. */
static void test_timestamp_lookup_budget(void **state)
{
    struct fx *f = *state;
    struct batch_builder b;
    batch_builder_init(&b, 256u << 20);
    uint8_t *zeros = calloc(1, 100u << 20);
    assert_non_null(zeros);
    assert_int_equal(batch_builder_add(&b, 1000, NULL, -1, zeros, 100 << 20, NULL, 0), 0);
    assert_int_equal(batch_builder_add(&b, 2000, NULL, -1, "x", 1, NULL, 0), 0);
    free(zeros);
    uint8_t *batch;
    size_t len;
    assert_int_equal(batch_builder_finish(&b, BATCH_COMPRESSION_ZSTD, &batch, &len), 0);
    batch_builder_free(&b);
    assert_int_equal(plog_append(f->log, batch, len, 0, NULL), 0);
    free(batch);
    int64_t off, ts;
    assert_int_equal(plog_offset_for_timestamp(f->log, 1000, &off, &ts), 0);
    assert_int_equal(off, 0); /* found at once */
    assert_int_equal(plog_offset_for_timestamp(f->log, 1500, &off, &ts), 0);
    assert_int_equal(off, 0); /* record 1 lies past 100 MB: the batch's first offset */
    assert_int_equal(ts, 2000);
}


/* The streamed lookup gives the same answers for every codec, with timestamps out of order
 * inside a batch and values larger than the stream's window. */
static void test_timestamp_lookup_every_codec(void **state)
{
    struct fx *f = *state;
    static const int codecs[] = {BATCH_COMPRESSION_NONE, BATCH_COMPRESSION_GZIP,
                                 BATCH_COMPRESSION_SNAPPY, BATCH_COMPRESSION_LZ4,
                                 BATCH_COMPRESSION_ZSTD};
    static const int64_t deltas[] = {5, 1, 9, 3, 7, 0};
    const int per = (int)(sizeof(deltas) / sizeof(deltas[0]));
    f->cfg.max_message_bytes = 8 << 20;
    plog_set_config(f->log, &f->cfg);
    char *value = malloc(200000);
    for (int i = 0; i < 200000; i++)
        value[i] = (char)('a' + (i * 7 + i / 13) % 26); /* compresses, but not to nothing */
    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        struct batch_builder b;
        batch_builder_init(&b, 16u << 20);
        for (int i = 0; i < per; i++)
            assert_int_equal(batch_builder_add(&b, 1000 * (int64_t)(c + 1) + deltas[i], NULL, -1, value,
                                               i % 2 ? 200000 : 10, NULL, 0), 0);
        uint8_t *batch;
        size_t len;
        assert_int_equal(batch_builder_finish(&b, codecs[c], &batch, &len), 0);
        batch_builder_free(&b);
        assert_int_equal(plog_append(f->log, batch, len, 0, NULL), 0);
        free(batch);
    }
    free(value);
    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        for (int64_t t = 0; t <= 10; t++) {
            int64_t target = 1000 * (int64_t)(c + 1) + t, off, ts;
            assert_int_equal(plog_offset_for_timestamp(f->log, target, &off, &ts), 0);
            /* Kafka: the first record, in offset order, whose timestamp >= target */
            int64_t want = -1, want_ts = -1;
            for (int i = 0; i < per && want < 0; i++)
                if (deltas[i] >= t) {
                    want = (int64_t)c * per + i;
                    want_ts = 1000 * (int64_t)(c + 1) + deltas[i];
                }
            if (want < 0 && c + 1 < sizeof(codecs) / sizeof(codecs[0])) {
                want = (int64_t)(c + 1) * per; /* the next batch's first record */
                want_ts = 1000 * (int64_t)(c + 2) + deltas[0];
            }
            assert_int_equal(off, want);
            if (want >= 0)
                assert_int_equal(ts, want_ts);
        }
    }
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_assigns_offsets_and_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_by_size_and_index_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_append_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_ms_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_time_including_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_tracking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_open_does_not_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_start_checkpoint_past_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fds_do_not_grow_with_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_lookup_streams_huge_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_lookup_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_lookup_every_codec, setup, teardown),
    };
    return cmocka_run_group_tests_name("log_plog", tests, NULL, NULL);
}
