/* test_log_cleaner: the log cleaner (log/cleaner.h) on real partition logs — overwrites and
 * tombstones compacted to the latest value per key, the delete horizon, the active segment left
 * alone, compressed batches recompressed with their codec, idempotent producers' last batches
 * kept empty, segment groups merged, a small map cleaning a prefix, a crash (an injected I/O
 * fault, with the directory copied as it stood) at each step recovering, and the
 * cleaner-offset-checkpoint file. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "log/cleaner.h"
#include "common/util.h"
#include "log/fileio.h"
#include "log/txnindex.h"

#define NKEYS 24
#define T0 1700000000000LL

struct fx {
    char *dir;
    char *pdir;
    struct log_config cfg;
    struct cleaner_config cc;
    struct plog *log;
    struct cleaner_map *map;
    /* the model: latest value per key, "" deleted; -1 never written */
    int64_t latest_offset[NKEYS];
    char latest[NKEYS][64];
    bool deleted[NKEYS];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir();
    f->pdir = tu_partition_dir(f->dir, "c");
    tu_config(&f->cfg);
    f->cfg.segment_bytes = 2048;
    f->cfg.segment_ms = INT64_MAX / 4;
    cleaner_config_defaults(&f->cc);
    assert_int_equal(plog_open(f->pdir, "c", 0, &f->cfg, -1, -1, &f->log), 0);
    f->map = cleaner_map_create(1 << 20, CLEANER_LOAD_FACTOR_DEFAULT);
    assert_non_null(f->map);
    for (int i = 0; i < NKEYS; i++)
        f->latest_offset[i] = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fio_fault_clear();
    cleaner_map_free(f->map);
    tu_log_teardown(f->log, f->dir, f->pdir);
    free(f);
    return 0;
}

/* ---- writing keyed records ---- */

struct rec {
    int key;           /* -1: no key */
    const char *value; /* NULL: tombstone */
};

static uint8_t *keyed_batch(const struct rec *r, int n, int64_t ts, int codec, int64_t pid,
                            int32_t seq, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, 1 << 20);
    for (int i = 0; i < n; i++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "key-%02d", r[i].key);
        assert_int_equal(batch_builder_add(&b, ts + i, r[i].key >= 0 ? k : NULL,
                                           r[i].key >= 0 ? kl : -1, r[i].value,
                                           r[i].value ? (int32_t)strlen(r[i].value) : -1, NULL, 0), 0);
    }
    if (pid >= 0) {
        b.producer_id = pid;
        b.producer_epoch = 0;
        b.base_sequence = seq;
    }
    uint8_t *out;
    assert_int_equal(batch_builder_finish(&b, codec, &out, len), 0);
    batch_builder_free(&b);
    return out;
}

static struct log_append_info append_recs(struct fx *f, const struct rec *r, int n, int64_t ts,
                                          int codec, int64_t pid, int32_t seq)
{
    size_t len;
    uint8_t *b = keyed_batch(r, n, ts, codec, pid, seq, &len);
    struct log_append_info info;
    assert_int_equal(plog_append(f->log, b, len, ts, &info), 0);
    free(b);
    for (int i = 0; i < n; i++) {
        if (r[i].key < 0)
            continue;
        f->latest_offset[r[i].key] = info.base_offset + i;
        f->deleted[r[i].key] = r[i].value == NULL;
        snprintf(f->latest[r[i].key], sizeof(f->latest[0]), "%s", r[i].value ? r[i].value : "");
    }
    return info;
}

/* Rounds of overwrites of every key (values "r<round>-k<key>" padded), batches of 4 records,
 * every 5th key deleted in the last round, some keyless records on the way. */
static void write_workload(struct fx *f, int rounds, int codec)
{
    static char vals[4][64];
    int64_t ts = T0;
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < NKEYS; k += 4) {
            struct rec r[4];
            for (int j = 0; j < 4; j++) {
                snprintf(vals[j], sizeof(vals[j]), "r%d-k%d-xxxxxxxxxxxxxxxxxxxx", round, k + j);
                r[j].key = k + j;
                r[j].value = vals[j];
                if (round == rounds - 1 && (k + j) % 5 == 0)
                    r[j].value = NULL;
            }
            if (round == 1 && k == 8)
                r[3].key = -1; /* a keyless record in a log that became compacted */
            append_recs(f, r, 4, ts, codec, -1, -1);
            ts += 10;
        }
    }
}

/* Rolls, so everything written so far is below the active segment (cleanable). */
static void roll_now(struct fx *f)
{
    struct rec r = {NKEYS - 1, "active-filler"};
    struct log_config big = f->cfg;
    big.segment_ms = 0;
    plog_set_config(f->log, &big);
    assert_int_equal(plog_maybe_roll(f->log, T0 + 1000000), 0);
    plog_set_config(f->log, &f->cfg);
    append_recs(f, &r, 1, T0 + 1000000, BATCH_COMPRESSION_NONE, -1, -1);
}

/* ---- reading back ---- */

struct seen {
    int64_t offset;
    int key;
    char value[64];
    bool tombstone;
    int codec;
    int64_t batch_base;
    int32_t records_in_batch;
};

/* Every record from the log start in offset order (and empty batches as key -2). */
static int read_all(struct plog *log, struct seen *out, int max)
{
    int n = 0;
    int64_t next = plog_start_offset(log);
    while (next < plog_end_offset(log)) {
        struct log_slice s;
        assert_int_equal(plog_read(log, next, 1 << 20, plog_end_offset(log), &s), 0);
        if (s.len == 0)
            break;
        uint8_t *buf = tu_slice_bytes(&s);
        size_t pos = 0;
        while (pos + BATCH_HEADER_SIZE <= s.len) {
            struct batch_header h;
            batch_header_decode(buf + pos, &h);
            assert_true(pos + (size_t)batch_total_size(&h) <= s.len);
            assert_int_equal(batch_compute_crc(buf + pos, (size_t)batch_total_size(&h)), h.crc);
            struct batch_record_iter it;
            assert_int_equal(batch_records_open(&it, buf + pos, s.len - pos, 1u << 26), 0);
            struct batch_record r;
            int k;
            if (h.records_count == 0 && n < max) {
                assert_true(batch_last_offset(&h) >= next);
                out[n++] = (struct seen){.offset = h.base_offset, .key = -2, .batch_base = h.base_offset};
            }
            while ((k = batch_records_next(&it, &r)) == 1) {
                assert_true(r.offset >= next); /* offsets only grow */
                assert_true(n < max);
                struct seen *e = &out[n++];
                memset(e, 0, sizeof(*e));
                e->offset = r.offset;
                e->key = -1;
                if (r.key_len > 0)
                    e->key = (r.key[4] - '0') * 10 + (r.key[5] - '0');
                e->tombstone = r.value_len < 0;
                if (r.value_len > 0)
                    memcpy(e->value, r.value, (size_t)r.value_len < 63 ? (size_t)r.value_len : 63);
                e->codec = h.attributes & BATCH_ATTR_COMPRESSION_MASK;
                e->batch_base = h.base_offset;
                e->records_in_batch = h.records_count;
                next = r.offset + 1;
            }
            assert_int_equal(k, 0);
            batch_records_close(&it);
            if (batch_last_offset(&h) + 1 > next)
                next = batch_last_offset(&h) + 1;
            pos += (size_t)batch_total_size(&h);
        }
        free(buf);
    }
    return n;
}

/* A consumer from the start ends with exactly the model's live keys at their latest values;
 * below `cleaned_to` every key appears at most once and keyless records are gone. */
static void expect_compacted(struct fx *f, int64_t cleaned_to)
{
    static struct seen recs[8192];
    int n = read_all(f->log, recs, 8192);
    char final[NKEYS][64];
    bool present[NKEYS] = {0};
    int below[NKEYS] = {0};
    for (int i = 0; i < n; i++) {
        struct seen *e = &recs[i];
        if (e->key == -2)
            continue;
        if (e->offset < cleaned_to) {
            assert_true(e->key >= 0);
            below[e->key]++;
            assert_true(below[e->key] <= 1);
        }
        if (e->key < 0)
            continue;
        present[e->key] = !e->tombstone;
        snprintf(final[e->key], sizeof(final[0]), "%s", e->value);
    }
    for (int k = 0; k < NKEYS; k++) {
        if (f->latest_offset[k] < 0)
            continue;
        assert_int_equal(present[k], !f->deleted[k]);
        if (!f->deleted[k])
            assert_string_equal(final[k], f->latest[k]);
    }
}

static int count_records(struct fx *f)
{
    static struct seen recs[8192];
    return read_all(f->log, recs, 8192);
}

static struct cleaner_job job_at(struct fx *f, int64_t now)
{
    return (struct cleaner_job){.map = f->map, .now_ms = now};
}

static int clean(struct fx *f, int64_t checkpoint, int64_t now, struct cleaner_result *res,
                 struct cleaner_dirty *d)
{
    struct cleaner_job job = job_at(f, now);
    cleaner_examine(f->log, checkpoint, plog_end_offset(f->log), &f->cc, now, d);
    return cleaner_clean(f->log, d, &f->cc, &job, res);
}

/* ---- tests ---- */

static void test_overwrites_and_tombstones(void **state)
{
    struct fx *f = *state;
    write_workload(f, 6, BATCH_COMPRESSION_NONE);
    roll_now(f);
    int before = count_records(f);
    int64_t size_before = plog_size_bytes(f->log);
    int segs_before = plog_segment_count(f->log);
    struct cleaner_dirty d;
    struct cleaner_result res;
    cleaner_examine(f->log, -1, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    assert_true(d.needs_cleaning);
    assert_true(d.dirty_ratio > 0.99); /* nothing cleaned yet */
    assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
    assert_false(res.aborted);
    assert_false(res.map_full);
    assert_int_equal(res.next_dirty_offset, d.first_uncleanable_offset);
    assert_true(res.groups >= 1);
    assert_int_equal(res.keyless_dropped, 1);
    expect_compacted(f, d.first_uncleanable_offset);
    /* Tombstones stay until their horizon: every deleted key is still there as one. */
    static struct seen recs[8192];
    int n = read_all(f->log, recs, 8192), tombstones = 0;
    for (int i = 0; i < n; i++)
        tombstones += recs[i].tombstone;
    assert_int_equal(tombstones, NKEYS / 5 + 1);
    assert_true(n < before / 3);
    assert_true(plog_size_bytes(f->log) < size_before / 2);
    assert_true(plog_segment_count(f->log) <= segs_before);
    /* Clean again before the horizon: nothing dirty. After delete.retention.ms: tombstones go. */
    cleaner_examine(f->log, res.next_dirty_offset, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    assert_false(d.needs_cleaning);
    assert_int_equal(d.cleanable_bytes, 0);
    d.first_dirty_offset = d.first_uncleanable_offset - 1; /* forced: a round over the clean part */
    struct cleaner_job job = job_at(f, T0 + 2000000 + f->cc.delete_retention_ms + 1);
    assert_int_equal(cleaner_clean(f->log, &d, &f->cc, &job, &res), KERR_NONE);
    assert_int_equal(res.tombstones_dropped, NKEYS / 5 + 1);
    n = read_all(f->log, recs, 8192);
    for (int i = 0; i < n; i++)
        assert_false(recs[i].tombstone);
    expect_compacted(f, d.first_uncleanable_offset);
    /* The small cleaned segments of the first round were merged (groups up to segment.bytes). */
    assert_true(plog_segment_count(f->log) < segs_before);
    assert_true(plog_segment_count(f->log) <= 3);
}

/* An ABORT marker of pid (Kafka's control batch) at the log end, recorded in its segment's
 * .txnindex as the partition layer does; its offset. */
static int64_t abort_marker(struct fx *f, int64_t pid, int64_t first)
{
    uint8_t key[4] = {0, 0, 0, 0}, value[6] = {0, 0, 0, 0, 0, 1};
    struct batch_builder b;
    batch_builder_init(&b, 1024);
    b.producer_id = pid;
    b.producer_epoch = 0;
    b.base_sequence = -1;
    b.attributes = BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL;
    assert_int_equal(batch_builder_add(&b, T0, key, 4, value, 6, NULL, 0), 0);
    uint8_t *out;
    size_t len;
    assert_int_equal(batch_builder_finish(&b, BATCH_COMPRESSION_NONE, &out, &len), 0);
    batch_builder_free(&b);
    struct log_append_info info;
    assert_int_equal(plog_append_marker(f->log, out, len, T0, &info), 0);
    free(out);
    struct txnindex_entry e = {pid, first, info.base_offset, info.base_offset + 1};
    assert_int_equal(plog_txnindex_append(f->log, &e), 0);
    return info.base_offset;
}

/* Segments merged by a clean keep their markers and their aborted transactions: the cleaned
 * segment's .txnindex holds every entry of the segments it replaced (Kafka's cleaner writes
 * them into the cleaned segment's index), no .txnindex is left without its segment. */
static void test_markers_and_txnindex_survive_a_merge(void **state)
{
    struct fx *f = *state;
    int64_t markers[3];
    for (int round = 0; round < 3; round++) {
        write_workload(f, 2, BATCH_COMPRESSION_NONE);
        markers[round] = abort_marker(f, 100 + round, plog_end_offset(f->log) - 1);
    }
    roll_now(f);
    struct txnindex_entry before[8], after[8];
    int nb, na;
    assert_int_equal(plog_collect_aborted(f->log, 0, INT64_MAX, before, 8, &nb), 0);
    assert_int_equal(nb, 3);
    int segs_before = plog_segment_count(f->log);
    struct cleaner_dirty d;
    struct cleaner_result res;
    assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
    /* a second round over the cleaned part merges the small segments it left */
    cleaner_examine(f->log, res.next_dirty_offset, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    d.first_dirty_offset = d.first_uncleanable_offset - 1;
    struct cleaner_job job = job_at(f, T0 + 2000000);
    assert_int_equal(cleaner_clean(f->log, &d, &f->cc, &job, &res), KERR_NONE);
    assert_true(plog_segment_count(f->log) < segs_before);
    assert_int_equal(plog_collect_aborted(f->log, 0, INT64_MAX, after, 8, &na), 0);
    assert_int_equal(na, 3);
    assert_memory_equal(after, before, sizeof(before[0]) * 3);
    /* every marker is still in the log, as a control batch */
    for (int i = 0; i < 3; i++) {
        struct log_slice sl;
        assert_int_equal(plog_read(f->log, markers[i], 1 << 20, plog_end_offset(f->log), &sl), 0);
        uint8_t *bytes = tu_slice_bytes(&sl);
        struct batch_header h;
        batch_header_decode(bytes, &h);
        free(bytes);
        assert_int_equal(h.base_offset, markers[i]);
        assert_true(h.attributes & BATCH_ATTR_CONTROL);
    }
    /* no .txnindex without its .log */
    DIR *dir = opendir(f->pdir);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 9 && strcmp(de->d_name + n - 9, ".txnindex") == 0) {
            char logp[1200];
            snprintf(logp, sizeof(logp), "%s/%.*s.log", f->pdir, (int)(n - 9), de->d_name);
            assert_int_equal(access(logp, F_OK), 0);
        }
    }
    closedir(dir);
}

/* The summary's numbers as Kafka's CleanerStats keeps them: "MB of log processed" and "Start
 * size" are the bytes of the batches the rewrite went through (each cleaned segment once), the
 * map's apart (mapBytesRead, "Indexed"). Found beside Kafka: both passes, and every re-read of a
 * batch cut by the read window, were counted as processed, so a first clean of a log reported
 * more than twice its size and a wrong size reduction. */
static void test_stats_count_as_kafka(void **state)
{
    struct fx *f = *state;
    write_workload(f, 4, BATCH_COMPRESSION_NONE);
    roll_now(f);
    struct plog_cleaner_view v;
    assert_int_equal(plog_cleaner_view(f->log, &v), 0);
    int64_t inactive = 0;
    for (int i = 0; i < v.nsegs; i++)
        if (v.segs[i].base_offset < v.active_base)
            inactive += v.segs[i].size;
    plog_cleaner_view_free(&v);
    assert_true(inactive > 0);
    struct cleaner_dirty d;
    struct cleaner_result res;
    cleaner_examine(f->log, -1, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    /* A read window smaller than a few batches: most windows end inside a batch, which the
     * next window reads again; processed bytes count each batch once all the same. */
    struct cleaner_job job = job_at(f, T0 + 2000000);
    job.io_buffer_bytes = 1000;
    assert_int_equal(cleaner_clean(f->log, &d, &f->cc, &job, &res), KERR_NONE);
    assert_false(res.aborted);
    /* Everything below the active segment was dirty: mapped once, rewritten once. */
    assert_int_equal(res.bytes_read, inactive);
    assert_int_equal(res.map_bytes_read, inactive);
    assert_true(res.map_ms >= 0);
    assert_true(res.bytes_written < res.bytes_read);
}

static void test_active_segment_untouched(void **state)
{
    struct fx *f = *state;
    write_workload(f, 3, BATCH_COMPRESSION_NONE);
    roll_now(f);
    write_workload(f, 2, BATCH_COMPRESSION_NONE); /* overwrites in the active segment */
    int64_t active_base;
    plog_segment_offsets(f->log, &active_base, 1);
    struct plog_cleaner_view v;
    assert_int_equal(plog_cleaner_view(f->log, &v), 0);
    active_base = v.active_base;
    plog_cleaner_view_free(&v);
    char *ap = tu_seg_path(f->pdir, active_base, ".log");
    int64_t asize = tu_file_size(ap);
    struct cleaner_dirty d;
    struct cleaner_result res;
    assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
    assert_true(res.groups >= 1);
    assert_true(d.first_uncleanable_offset <= active_base);
    assert_int_equal(tu_file_size(ap), asize);
    /* Every record of the active segment is still there, duplicates included. */
    static struct seen recs[8192];
    int n = read_all(f->log, recs, 8192), in_active = 0;
    for (int i = 0; i < n; i++)
        in_active += recs[i].offset >= active_base;
    assert_int_equal(in_active, plog_end_offset(f->log) - active_base);
    expect_compacted(f, d.first_uncleanable_offset);
    free(ap);
}

static void test_high_watermark_and_lag_bound_the_section(void **state)
{
    struct fx *f = *state;
    write_workload(f, 4, BATCH_COMPRESSION_NONE);
    roll_now(f);
    struct cleaner_dirty d;
    cleaner_examine(f->log, -1, 30, &f->cc, T0 + 2000000, &d);
    struct plog_cleaner_view v;
    assert_int_equal(plog_cleaner_view(f->log, &v), 0);
    /* The bound is the base of the segment holding the high watermark. */
    int64_t want = 0;
    for (int i = 0; i < v.nsegs; i++)
        if (v.segs[i].next_offset <= 30)
            want = v.segs[i].next_offset;
    plog_cleaner_view_free(&v);
    assert_int_equal(d.first_uncleanable_offset, want);
    /* min.compaction.lag.ms covering every segment: nothing cleanable. */
    f->cc.min_compaction_lag_ms = 1000000000;
    cleaner_examine(f->log, -1, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    assert_int_equal(d.cleanable_bytes, 0);
    assert_false(d.needs_cleaning);
    /* Dirty ratio below min.cleanable.dirty.ratio, but max.compaction.lag.ms passed: due. */
    f->cc.min_compaction_lag_ms = 0;
    f->cc.min_cleanable_dirty_ratio = 0.99;
    cleaner_examine(f->log, 40, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    assert_true(d.dirty_ratio < 0.99);
    assert_false(d.needs_cleaning);
    f->cc.max_compaction_lag_ms = 1000;
    cleaner_examine(f->log, 40, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    assert_true(d.compaction_due);
    assert_true(d.needs_cleaning);
}

static void test_compressed_batches_keep_their_codec(void **state)
{
    struct fx *f = *state;
    int codecs[] = {BATCH_COMPRESSION_GZIP, BATCH_COMPRESSION_SNAPPY, BATCH_COMPRESSION_LZ4,
                    BATCH_COMPRESSION_ZSTD};
    for (size_t c = 0; c < ARRAY_LEN(codecs); c++) {
        teardown(state);
        setup(state);
        f = *state;
        write_workload(f, 4, codecs[c]);
        struct rec again[2] = {{1, "again-1"}, {2, "again-2"}}; /* the last batch of keys 0-3 shrinks */
        append_recs(f, again, 2, T0 + 500000, codecs[c], -1, -1);
        roll_now(f);
        struct cleaner_dirty d;
        struct cleaner_result res;
        assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
        assert_true(res.records_kept < res.records_read);
        expect_compacted(f, d.first_uncleanable_offset);
        static struct seen recs[8192];
        int n = read_all(f->log, recs, 8192), rebuilt = 0;
        for (int i = 0; i < n; i++) {
            if (recs[i].offset >= d.first_uncleanable_offset || recs[i].key == -2)
                continue;
            assert_int_equal(recs[i].codec, codecs[c]);
            rebuilt += recs[i].records_in_batch < 4;
        }
        assert_true(rebuilt > 0); /* some batches were filtered and recompressed */
    }
}

static void test_idempotent_last_batch_kept_empty(void **state)
{
    struct fx *f = *state;
    /* Producer 7 writes key 1 then key 2; producer 9 writes key 3; plain writes then
     * overwrite all three keys, so their batches lose every record. */
    struct rec a = {1, "p7-a"}, b = {2, "p7-b"}, c = {3, "p9"};
    append_recs(f, &a, 1, T0, BATCH_COMPRESSION_NONE, 7, 0);
    struct log_append_info last7 = append_recs(f, &b, 1, T0 + 1, BATCH_COMPRESSION_NONE, 7, 1);
    struct log_append_info p9 = append_recs(f, &c, 1, T0 + 2, BATCH_COMPRESSION_NONE, 9, 0);
    assert_int_equal(p9.base_offset, last7.last_offset + 1);
    write_workload(f, 3, BATCH_COMPRESSION_NONE);
    roll_now(f);
    struct cleaner_producer producers[] = {{7, last7.last_offset}};
    struct cleaner_dirty d;
    struct cleaner_result res;
    cleaner_examine(f->log, -1, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    struct cleaner_job job = job_at(f, T0 + 2000000);
    job.producers = producers;
    job.nproducers = 1;
    assert_int_equal(cleaner_clean(f->log, &d, &f->cc, &job, &res), KERR_NONE);
    expect_compacted(f, d.first_uncleanable_offset);
    /* Producer 7's last batch is there, empty, with its sequence; its first and producer 9's
     * (no longer active) are gone. */
    struct log_slice s;
    assert_int_equal(plog_read(f->log, 0, 1 << 20, plog_end_offset(f->log), &s), 0);
    uint8_t *buf = tu_slice_bytes(&s);
    struct batch_header h;
    batch_header_decode(buf, &h);
    assert_int_equal(h.base_offset, last7.base_offset);
    assert_int_equal(h.records_count, 0);
    assert_int_equal(h.producer_id, 7);
    assert_int_equal(h.base_sequence, 1);
    assert_int_equal(batch_last_offset(&h), last7.last_offset);
    assert_int_equal(batch_total_size(&h), BATCH_HEADER_SIZE);
    assert_int_equal(batch_compute_crc(buf, BATCH_HEADER_SIZE), h.crc);
    free(buf);
    static struct seen recs[8192];
    int n = read_all(f->log, recs, 8192);
    for (int i = 0; i < n; i++)
        assert_true(recs[i].batch_base > last7.last_offset || recs[i].batch_base == last7.base_offset);
}

static void test_small_map_cleans_a_prefix(void **state)
{
    struct fx *f = *state;
    write_workload(f, 6, BATCH_COMPRESSION_NONE);
    roll_now(f);
    cleaner_map_free(f->map);
    f->map = cleaner_map_create(10 * 24, 0.9); /* 9 keys */
    assert_non_null(f->map);
    assert_int_equal(cleaner_map_capacity(f->map), 9);
    struct cleaner_dirty d;
    struct cleaner_result res;
    assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
    assert_true(res.map_full);
    assert_true(res.next_dirty_offset > 0);
    assert_true(res.next_dirty_offset < d.first_uncleanable_offset);
    expect_compacted(f, 0);
    /* Rounds from the checkpoint finish the job. */
    int rounds = 0;
    int64_t cp = res.next_dirty_offset;
    while (cp < d.first_uncleanable_offset && rounds++ < 64) {
        struct cleaner_dirty d2;
        assert_int_equal(clean(f, cp, T0 + 2000000, &res, &d2), KERR_NONE);
        assert_true(res.next_dirty_offset > cp);
        cp = res.next_dirty_offset;
    }
    assert_int_equal(cp, d.first_uncleanable_offset);
    expect_compacted(f, 0);
}

static void test_cleaned_segments_pass_recovery(void **state)
{
    struct fx *f = *state;
    write_workload(f, 5, BATCH_COMPRESSION_LZ4);
    roll_now(f);
    struct cleaner_dirty d;
    struct cleaner_result res;
    assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
    int64_t size = plog_size_bytes(f->log), end = plog_end_offset(f->log);
    int n = count_records(f);
    assert_int_equal(plog_close(f->log), 0);
    /* -1: every segment is scanned (CRCs, offsets, indexes rebuilt): nothing may be cut. */
    assert_int_equal(plog_open(f->pdir, "c", 0, &f->cfg, -1, -1, &f->log), 0);
    assert_int_equal(plog_size_bytes(f->log), size);
    assert_int_equal(plog_end_offset(f->log), end);
    assert_int_equal(count_records(f), n);
    expect_compacted(f, d.first_uncleanable_offset);
    assert_int_equal(plog_close(f->log), 0);
    assert_int_equal(plog_open(f->pdir, "c", 0, &f->cfg, PLOG_RECOVERY_POINT_CLEAN, -1, &f->log), 0);
    assert_int_equal(plog_size_bytes(f->log), size);
    expect_compacted(f, d.first_uncleanable_offset);
}

static void test_reader_keeps_old_file(void **state)
{
    struct fx *f = *state;
    write_workload(f, 4, BATCH_COMPRESSION_NONE);
    roll_now(f);
    struct log_slice s;
    assert_int_equal(plog_read(f->log, 0, 1 << 20, plog_end_offset(f->log), &s), 0);
    assert_true(s.len > 0);
    uint8_t *before = malloc(s.len);
    assert_int_equal(pread(s.fd, before, s.len, s.position), (ssize_t)s.len);
    struct cleaner_dirty d;
    struct cleaner_result res;
    assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
    assert_true(res.groups >= 1);
    uint8_t *after = malloc(s.len);
    assert_int_equal(pread(s.fd, after, s.len, s.position), (ssize_t)s.len);
    assert_memory_equal(before, after, s.len);
    close(s.fd);
    free(before);
    free(after);
    assert_true(res.lock_held_max_us >= 0);
}

static void test_log_changed_meanwhile_aborts(void **state)
{
    struct fx *f = *state;
    write_workload(f, 4, BATCH_COMPRESSION_NONE);
    roll_now(f);
    struct cleaner_dirty d;
    cleaner_examine(f->log, -1, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    struct plog_cleaner_view v;
    assert_int_equal(plog_cleaner_view(f->log, &v), 0);
    /* A layout change between the view and the swap: the swap refuses, the .cleaned go. */
    int64_t base = v.segs[0].base_offset;
    char *cl = tu_seg_path(f->pdir, base, ".log.cleaned");
    FILE *fp = fopen(cl, "w");
    fclose(fp);
    int64_t ns;
    assert_int_equal(plog_delete_records(f->log, v.segs[1].base_offset, &ns), 0);
    bool aborted;
    int64_t held;
    assert_int_equal(plog_replace_segments(f->log, v.layout_epoch, v.segs[1].base_offset, 1,
                                           &aborted, &held), KERR_NONE);
    assert_true(aborted);
    free(cl);
    cl = tu_seg_path(f->pdir, v.segs[1].base_offset, ".log.cleaned");
    assert_int_equal(tu_file_size(cl), -1);
    free(cl);
    plog_cleaner_view_free(&v);
    expect_compacted(f, 0);
}

/* ---- a cleaner thread against a live log ---- */

struct bg {
    struct plog *log;
    struct cleaner_map *map;
    struct cleaner_config cc;
    atomic_bool stop;
    int rounds, swaps, errors, aborted;
    int64_t throttled;
};

static void count_throttle(void *arg, int64_t bytes) { ((struct bg *)arg)->throttled += bytes; }

static void *cleaner_thread(void *arg)
{
    struct bg *b = arg;
    int64_t checkpoint = -1;
    while (!atomic_load(&b->stop)) {
        struct cleaner_dirty d;
        cleaner_examine(b->log, checkpoint, plog_end_offset(b->log), &b->cc, T0 + 2000000, &d);
        if (!d.needs_cleaning) {
            usleep(200);
            continue;
        }
        struct cleaner_job job = {.map = b->map, .now_ms = T0 + 2000000, .stop = &b->stop,
                                  .throttle = count_throttle, .throttle_arg = b};
        struct cleaner_result res;
        if (cleaner_clean(b->log, &d, &b->cc, &job, &res) != KERR_NONE)
            b->errors++;
        b->rounds++;
        b->swaps += res.groups;
        b->aborted += res.aborted;
        int64_t io = res.map_bytes_read + res.bytes_read + res.bytes_written;
        if (!res.aborted && io > 0 && b->throttled < io)
            b->errors++; /* every byte read or written passes the throttle */
        if (!res.aborted)
            checkpoint = res.next_dirty_offset;
    }
    return NULL;
}

static void test_cleaner_thread_beside_appends_and_reads(void **state)
{
    struct fx *f = *state;
    struct bg b = {.log = f->log, .map = f->map, .cc = f->cc};
    b.cc.min_cleanable_dirty_ratio = 0.3;
    atomic_init(&b.stop, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cleaner_thread, &b), 0);
    for (int i = 0; i < 150; i++) {
        write_workload(f, 1, i % 3 == 0 ? BATCH_COMPRESSION_LZ4 : BATCH_COMPRESSION_NONE);
        /* A reader from the start meanwhile: offsets only grow, every batch's CRC holds. */
        static struct seen recs[8192];
        read_all(f->log, recs, 8192);
        usleep(300);
    }
    atomic_store(&b.stop, true);
    pthread_join(t, NULL);
    assert_int_equal(b.errors, 0);
    assert_true(b.swaps > 0);
    expect_compacted(f, 0);
    print_message("cleaner thread: %d rounds, %d swaps, %d aborted\n", b.rounds, b.swaps, b.aborted);
    /* And the log reopens (a full scan) to the same answers. */
    assert_int_equal(plog_close(f->log), 0);
    assert_int_equal(plog_open(f->pdir, "c", 0, &f->cfg, -1, -1, &f->log), 0);
    expect_compacted(f, 0);
}

static void test_stop_aborts_without_swapping(void **state)
{
    struct fx *f = *state;
    write_workload(f, 4, BATCH_COMPRESSION_NONE);
    roll_now(f);
    int64_t size = plog_size_bytes(f->log);
    atomic_bool stop;
    atomic_init(&stop, true);
    struct cleaner_dirty d;
    struct cleaner_result res;
    cleaner_examine(f->log, -1, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
    struct cleaner_job job = job_at(f, T0 + 2000000);
    job.stop = &stop;
    assert_int_equal(cleaner_clean(f->log, &d, &f->cc, &job, &res), KERR_NONE);
    assert_true(res.aborted);
    assert_int_equal(res.groups, 0);
    assert_int_equal(plog_size_bytes(f->log), size);
    assert_int_equal(res.next_dirty_offset, d.first_dirty_offset);
    DIR *dir = opendir(f->pdir);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        assert_null(strstr(e->d_name, ".cleaned"));
    closedir(dir);
}

/* Swap files as a crash can leave them, made by hand: an empty <base>.log.swap (its group kept
 * nothing) replaces the segment at its base and nothing else; a .swap at or past the lowest
 * .cleaned base is an unfinished split and goes, as Kafka's LogLoader rules. */
static void test_swap_files_completed_at_open(void **state)
{
    struct fx *f = *state;
    write_workload(f, 4, BATCH_COMPRESSION_NONE);
    roll_now(f);
    struct plog_cleaner_view v;
    assert_int_equal(plog_cleaner_view(f->log, &v), 0);
    assert_true(v.nsegs >= 3);
    int64_t b0 = v.segs[0].base_offset, b1 = v.segs[1].base_offset, b2 = v.segs[2].base_offset;
    int segs = plog_segment_count(f->log);
    int64_t end = plog_end_offset(f->log);
    plog_cleaner_view_free(&v);
    assert_int_equal(plog_close(f->log), 0);
    f->log = NULL;
    char *swap0 = tu_seg_path(f->pdir, b0, ".log.swap");
    FILE *fp = fopen(swap0, "w");
    fclose(fp);
    char *cleaned1 = tu_seg_path(f->pdir, b1, ".log.cleaned");
    char *swap2 = tu_seg_path(f->pdir, b2, ".index.swap");
    fclose(fopen(cleaned1, "w"));
    fclose(fopen(swap2, "w"));
    assert_int_equal(plog_open(f->pdir, "c", 0, &f->cfg, -1, -1, &f->log), 0);
    assert_int_equal(plog_segment_count(f->log), segs);
    assert_int_equal(plog_end_offset(f->log), end);
    char *log0 = tu_seg_path(f->pdir, b0, ".log"), *index2 = tu_seg_path(f->pdir, b2, ".index");
    assert_int_equal(tu_file_size(log0), 0); /* the empty swap took the segment's place */
    assert_int_equal(tu_file_size(swap0), -1);
    assert_int_equal(tu_file_size(cleaned1), -1);
    assert_int_equal(tu_file_size(swap2), -1);
    assert_true(tu_file_size(index2) >= 0); /* segment 2's own index, not the stray swap */
    /* Everything from segment 1 on is intact and in order. */
    static struct seen recs[8192];
    int n = read_all(f->log, recs, 8192);
    assert_true(n > 0);
    assert_true(recs[0].offset >= b1);
    assert_int_equal(recs[n - 1].offset, end - 1);
    free(swap0);
    free(cleaned1);
    free(swap2);
    free(log0);
    free(index2);
}

/* ---- crashes ---- */

static void copy_dir(const char *from, const char *to)
{
    mkdir(to, 0755);
    DIR *d = opendir(from);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char a[4600], b[4600];
        snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
        int in = open(a, O_RDONLY), out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0)
            assert_int_equal(write(out, buf, (size_t)n), n);
        close(in);
        close(out);
    }
    closedir(d);
}

/* After a failed clean: the directory as it stood (a crash at that instant) opens to a log with
 * every live key's latest value, and so does the original after a close. */
static void expect_recovers(struct fx *f, const char *crash_dir)
{
    tu_rmrf(crash_dir);
    copy_dir(f->pdir, crash_dir);
    struct plog *orig = f->log;
    assert_int_equal(plog_open(crash_dir, "c", 0, &f->cfg, -1, -1, &f->log), 0);
    expect_compacted(f, 0);
    assert_int_equal(plog_close(f->log), 0);
    f->log = orig;
    assert_int_equal(plog_close(f->log), 0);
    assert_int_equal(plog_open(f->pdir, "c", 0, &f->cfg, -1, -1, &f->log), 0);
    expect_compacted(f, 0);
    /* And a clean after recovery finishes the job. */
    struct cleaner_dirty d;
    struct cleaner_result res;
    assert_int_equal(clean(f, -1, T0 + 2000000, &res, &d), KERR_NONE);
    expect_compacted(f, d.first_uncleanable_offset);
}

static void test_crash_at_each_step_recovers(void **state)
{
    struct fx *f = *state;
    enum fio_call calls[] = {FIO_OPEN, FIO_PREAD, FIO_PWRITE, FIO_FDATASYNC, FIO_FSYNC,
                             FIO_FTRUNCATE, FIO_RENAME, FIO_FSTAT, FIO_CLOSE, FIO_UNLINK};
    const char *names[] = {"open", "pread", "pwrite", "fdatasync", "fsync", "ftruncate",
                           "rename", "fstat", "close", "unlink"};
    char crash_dir[1024];
    snprintf(crash_dir, sizeof(crash_dir), "%s/crash-0", f->dir);
    int failures = 0, swaps_interrupted = 0;
    for (int persist = 1; persist >= 0; persist--)
    for (size_t c = 0; c < ARRAY_LEN(calls); c++) {
        int nth;
        for (nth = 1; nth < 400; nth++) {
            teardown(state);
            setup(state);
            f = *state;
            snprintf(crash_dir, sizeof(crash_dir), "%s/crash-0", f->dir);
            write_workload(f, 4, nth % 2 ? BATCH_COMPRESSION_NONE : BATCH_COMPRESSION_ZSTD);
            roll_now(f);
            struct cleaner_dirty d;
            struct cleaner_result res;
            cleaner_examine(f->log, -1, plog_end_offset(f->log), &f->cc, T0 + 2000000, &d);
            struct cleaner_job job = job_at(f, T0 + 2000000);
            /* persist: every later call of the kind fails too, as if the process died there;
             * without, only that call fails and the clean's own error paths run. */
            fio_fault_set(calls[c], nth, EIO, -1, persist);
            int rc = cleaner_clean(f->log, &d, &f->cc, &job, &res);
            bool hit = fio_fault_hits() > 0;
            fio_fault_clear();
            if (!hit) {
                assert_int_equal(rc, KERR_NONE);
                break; /* past the last call of this kind */
            }
            if (rc != KERR_NONE || res.aborted)
                failures++;
            char swap[4200];
            snprintf(swap, sizeof(swap), "%s/%020d.log.swap", f->pdir, 0);
            swaps_interrupted += tu_file_size(swap) >= 0;
            expect_recovers(f, crash_dir);
        }
        assert_true(nth < 400);
        print_message("fault on %s%s: %d calls of a clean failed in turn\n", names[c],
                      persist ? " (and every later one)" : "", nth - 1);
    }
    assert_true(failures > 200);
    assert_true(swaps_interrupted > 0); /* the .swap recovery itself was exercised */
}

/* ---- the offset map and the checkpoint file ---- */

static void test_offset_map(void **state)
{
    (void)state;
    assert_null(cleaner_map_create(24, 0.9)); /* cannot hold a single key */
    struct cleaner_map *m = cleaner_map_create(1000 * 24, 0.9);
    assert_int_equal(cleaner_map_capacity(m), 900);
    char k[32];
    for (int i = 0; i < 900; i++) {
        int n = snprintf(k, sizeof(k), "key-%d", i);
        assert_true(cleaner_map_put(m, k, (size_t)n, i));
    }
    assert_false(cleaner_map_put(m, "one-more", 8, 5000));
    assert_true(cleaner_map_put(m, "key-7", 5, 6000)); /* an update always fits */
    assert_int_equal(cleaner_map_get(m, "key-7", 5), 6000);
    assert_int_equal(cleaner_map_get(m, "key-8", 5), 8);
    assert_int_equal(cleaner_map_get(m, "absent", 6), -1);
    assert_int_equal(cleaner_map_get(m, "", 0), -1);
    assert_int_equal(cleaner_map_latest_offset(m), 6000);
    cleaner_map_clear(m);
    assert_int_equal(cleaner_map_size(m), 0);
    assert_int_equal(cleaner_map_get(m, "key-8", 5), -1);
    cleaner_map_free(m);
}

static void test_checkpoint_file(void **state)
{
    struct fx *f = *state;
    struct cleaner_checkpoint_entry e[2] = {{"orders", 3, 1234}, {"__consumer_offsets", 49, 7}};
    assert_int_equal(cleaner_checkpoint_write(f->dir, e, 2), 0);
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", f->dir, CLEANER_CHECKPOINT_FILE);
    char *text;
    size_t len;
    assert_int_equal(fio_read_file(p, 1 << 20, &text, &len), 0);
    assert_string_equal(text, "0\n2\norders 3 1234\n__consumer_offsets 49 7\n");
    free(text);
    struct cleaner_checkpoint_entry *got;
    int n;
    assert_int_equal(cleaner_checkpoint_read(f->dir, &got, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cleaner_checkpoint_get(got, n, "orders", 3), 1234);
    assert_int_equal(cleaner_checkpoint_get(got, n, "__consumer_offsets", 49), 7);
    assert_int_equal(cleaner_checkpoint_get(got, n, "orders", 4), -1);
    free(got);
    const char *bad[] = {"1\n0\n", "0\n2\nt 0 1\n", "0\n1\nt 0 1\nu 0 2\n", "0\n1\nt x 1\n",
                         "0\n1\nt 0 1 9\n", "0\n99999999\n", ""};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        const char *why;
        assert_int_equal(cleaner_checkpoint_parse(bad[i], strlen(bad[i]), &got, &n, &why), -1);
        assert_non_null(why);
    }
    const char *why;
    assert_int_equal(cleaner_checkpoint_parse("0\n1\nt 0 5", 9, &got, &n, &why), 0);
    assert_int_equal(n, 1);
    free(got);
    /* A missing file is empty. */
    tu_rmrf(p);
    assert_int_equal(cleaner_checkpoint_read(f->dir, &got, &n), 0);
    assert_int_equal(n, 0);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overwrites_and_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markers_and_txnindex_survive_a_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_count_as_kafka, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_segment_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_high_watermark_and_lag_bound_the_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed_batches_keep_their_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_last_batch_kept_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_map_cleans_a_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaned_segments_pass_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_keeps_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_changed_meanwhile_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaner_thread_beside_appends_and_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_aborts_without_swapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_files_completed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_at_each_step_recovers, setup, teardown),
        cmocka_unit_test(test_offset_map),
        cmocka_unit_test_setup_teardown(test_checkpoint_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
