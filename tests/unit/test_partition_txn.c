/* test_partition_txn: a partition's transactional data — transactional batches open a
 * producer's transaction and hold the last stable offset at its first offset, COMMIT and ABORT
 * markers (Kafka's control batch) end it, an abort lands in the segment's .txnindex in Kafka's
 * 34-byte format, read_committed reads stop at the LSO, and all of it survives a clean reopen,
 * an unclean one (snapshots and .txnindex lost: rebuilt from the log) and a truncation. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "common/util.h"
#include "log/fileio.h"
#include "log/txnindex.h"
#include "partition/partition.h"

#include "partition_fx.h"

/* n records of producer pid (epoch 0) from sequence seq, transactional or not; its offset. */
static int64_t produce(struct fx *f, int64_t pid, int32_t seq, int n, bool txn)
{
    struct batch_builder bb;
    batch_builder_init(&bb, 1 << 20);
    bb.producer_id = pid;
    bb.producer_epoch = 0;
    bb.base_sequence = seq;
    bb.attributes = txn ? BATCH_ATTR_TRANSACTIONAL : 0;
    for (int i = 0; i < n; i++)
        assert_int_equal(batch_builder_add(&bb, 1000 + i, NULL, -1, "v", 1, NULL, 0), 0);
    uint8_t *b;
    size_t len;
    assert_int_equal(batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &b, &len), 0);
    batch_builder_free(&bb);
    struct log_append_info info;
    bool dup;
    assert_int_equal(partition_append_as_leader(&f->p, b, len, 5000, &info, &dup), KERR_NONE);
    free(b);
    return info.base_offset;
}

static int64_t marker(struct fx *f, int64_t pid, bool commit)
{
    struct log_append_info info;
    assert_int_equal(partition_write_txn_marker(&f->p, pid, 0, 7, commit, 5000, &info), KERR_NONE);
    return info.base_offset;
}

static void txnindex_path(struct fx *f, int64_t base, char *out, size_t n)
{
    snprintf(out, n, "%s/%020" PRId64 ".txnindex", f->p.dir_path, base);
}

/* The bytes of <dir>/<base>.txnindex, *len of them (malloc'ed). */
static uint8_t *file_bytes(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *buf = malloc(4096);
    *len = fread(buf, 1, 4096, fp);
    fclose(fp);
    return buf;
}

static void test_lso_held_by_the_earliest_open_transaction(void **state)
{
    struct fx *f = *state;
    produce(f, 100, 0, 3, false);                 /* 0-2, idempotent only */
    int64_t a = produce(f, 1, 0, 2, true);        /* 3-4 */
    assert_int_equal(partition_last_stable_offset(&f->p), a);
    int64_t b = produce(f, 2, 0, 2, true);        /* 5-6 */
    produce(f, 1, 2, 1, true);                    /* 7: same transaction of 1 */
    assert_int_equal(partition_last_stable_offset(&f->p), a);
    assert_int_equal(partition_high_watermark(&f->p), 8);
    /* read_committed stops before the open transaction; read_uncommitted does not */
    struct log_slice sl;
    assert_int_equal(partition_read_committed(&f->p, a, 1 << 20, &sl), KERR_NONE);
    assert_int_equal(sl.len, 0);
    assert_int_equal(partition_read_committed(&f->p, 0, 1 << 20, &sl), KERR_NONE);
    uint8_t *bytes = tu_slice_bytes(&sl);
    struct batch_header h;
    batch_header_decode(bytes, &h);
    free(bytes);
    assert_int_equal(batch_total_size(&h), sl.len); /* just the first batch */
    int64_t m = marker(f, 1, true);
    assert_int_equal(m, 8);
    assert_int_equal(partition_last_stable_offset(&f->p), b);
    marker(f, 2, false);
    assert_int_equal(partition_last_stable_offset(&f->p), partition_high_watermark(&f->p));
    assert_int_equal(partition_high_watermark(&f->p), 10);
    struct producer_entry *e = producer_state_find(&f->p.producers, 2);
    assert_non_null(e);
    assert_int_equal(e->txn_first_offset, -1);
    assert_int_equal(e->coordinator_epoch, 7);
}

static void test_marker_is_kafkas_control_batch(void **state)
{
    struct fx *f = *state;
    produce(f, 1, 0, 1, true);
    int64_t m = marker(f, 1, true);
    struct log_slice sl;
    assert_int_equal(partition_read(&f->p, m, 1 << 20, &sl), KERR_NONE);
    uint8_t *bytes = tu_slice_bytes(&sl);
    struct batch_header h;
    batch_header_decode(bytes, &h);
    assert_int_equal(h.attributes, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL);
    assert_int_equal(h.producer_id, 1);
    assert_int_equal(h.base_sequence, -1);
    assert_int_equal(h.records_count, 1);
    assert_int_equal(batch_compute_crc(bytes, sl.len), h.crc);
    struct batch_record_iter it;
    struct batch_record r;
    assert_int_equal(batch_records_open(&it, bytes, sl.len, 1 << 20), KERR_NONE);
    assert_int_equal(batch_records_next(&it, &r), 1);
    static const uint8_t key[] = {0, 0, 0, 1};          /* version 0, COMMIT */
    static const uint8_t value[] = {0, 0, 0, 0, 0, 7};  /* version 0, coordinator epoch 7 */
    assert_int_equal(r.key_len, 4);
    assert_memory_equal(r.key, key, 4);
    assert_int_equal(r.value_len, 6);
    assert_memory_equal(r.value, value, 6);
    batch_records_close(&it);
    free(bytes);
}

static void test_abort_written_to_txnindex_in_kafkas_format(void **state)
{
    struct fx *f = *state;
    int64_t a = produce(f, 5, 0, 2, true);        /* 0-1 */
    int64_t b = produce(f, 6, 0, 1, true);        /* 2: still open at the abort */
    int64_t m = marker(f, 5, false);              /* 3 */
    char path[1300];
    txnindex_path(f, 0, path, sizeof(path));
    size_t len;
    uint8_t *bytes = file_bytes(path, &len);
    uint8_t want[TXNINDEX_ENTRY_SIZE];
    be16_put(want, 0);
    be64_put(want + 2, 5);
    be64_put(want + 10, (uint64_t)a);
    be64_put(want + 18, (uint64_t)m);
    be64_put(want + 26, (uint64_t)b);             /* LSO: producer 6's open transaction */
    assert_int_equal(len, 34);
    assert_memory_equal(bytes, want, 34);
    free(bytes);
    struct txnindex_entry got[4];
    int n = 0;
    assert_int_equal(partition_collect_aborted(&f->p, 0, 100, got, 4, &n), KERR_NONE);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].producer_id, 5);
    assert_int_equal(got[0].first_offset, a);
    assert_int_equal(partition_collect_aborted(&f->p, m + 1, 100, got, 4, &n), KERR_NONE);
    assert_int_equal(n, 0); /* ended before the fetch offset */
    /* an ABORT of an empty transaction (none ongoing) goes to no index, as Kafka's
     * appendEndTxnMarker emits no CompletedTxn for it */
    int64_t m2 = marker(f, 6, false);
    marker(f, 9, false);
    marker(f, 6, false);
    assert_int_equal(partition_collect_aborted(&f->p, 0, 100, got, 4, &n), KERR_NONE);
    assert_int_equal(n, 2);
    assert_int_equal(got[1].first_offset, b);
    assert_int_equal(got[1].last_offset, m2);
    assert_int_equal(partition_last_stable_offset(&f->p), partition_high_watermark(&f->p));
}

/* Kafka's ProducerAppendInfo rules: a producer with an ongoing transaction writes only
 * transactional batches (INVALID_TXN_STATE), and a marker of an older coordinator epoch than
 * the producer's last is TRANSACTION_COORDINATOR_FENCED. */
static void test_txn_state_and_coordinator_fencing(void **state)
{
    struct fx *f = *state;
    produce(f, 1, 0, 1, true);
    struct batch_builder bb;
    batch_builder_init(&bb, 1 << 20);
    bb.producer_id = 1;
    bb.producer_epoch = 0;
    bb.base_sequence = 1;
    assert_int_equal(batch_builder_add(&bb, 1000, NULL, -1, "v", 1, NULL, 0), 0);
    uint8_t *b;
    size_t len;
    assert_int_equal(batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &b, &len), 0);
    batch_builder_free(&bb);
    struct log_append_info info;
    bool dup;
    int64_t end = partition_log_end(&f->p);
    assert_int_equal(partition_append_as_leader(&f->p, b, len, 5000, &info, &dup),
                     KERR_INVALID_TXN_STATE);
    assert_int_equal(partition_log_end(&f->p), end);
    marker(f, 1, true);                                     /* coordinator epoch 7 */
    assert_int_equal(partition_append_as_leader(&f->p, b, len, 5000, &info, &dup), KERR_NONE);
    free(b);
    produce(f, 1, 2, 1, true);
    end = partition_log_end(&f->p);
    assert_int_equal(partition_write_txn_marker(&f->p, 1, 0, 6, false, 5000, &info),
                     KERR_TRANSACTION_COORDINATOR_FENCED);
    assert_int_equal(partition_log_end(&f->p), end);
    assert_int_equal(partition_write_txn_marker(&f->p, 1, 0, 8, false, 5000, &info), KERR_NONE);
}

static void test_marker_of_an_older_epoch_is_refused(void **state)
{
    struct fx *f = *state;
    struct batch_builder bb;
    batch_builder_init(&bb, 1 << 20);
    bb.producer_id = 3;
    bb.producer_epoch = 4;
    bb.base_sequence = 0;
    bb.attributes = BATCH_ATTR_TRANSACTIONAL;
    assert_int_equal(batch_builder_add(&bb, 1000, NULL, -1, "v", 1, NULL, 0), 0);
    uint8_t *b;
    size_t len;
    assert_int_equal(batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &b, &len), 0);
    batch_builder_free(&bb);
    struct log_append_info info;
    bool dup;
    assert_int_equal(partition_append_as_leader(&f->p, b, len, 5000, &info, &dup), KERR_NONE);
    free(b);
    int64_t end = partition_log_end(&f->p);
    assert_int_equal(partition_write_txn_marker(&f->p, 3, 3, 0, true, 5000, &info),
                     KERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(partition_log_end(&f->p), end);
    assert_int_equal(partition_last_stable_offset(&f->p), 0);
    assert_int_equal(partition_write_txn_marker(&f->p, 3, 4, 0, true, 5000, &info), KERR_NONE);
    assert_int_equal(partition_last_stable_offset(&f->p), end + 1);
}

/* A clean close writes a snapshot with the open transaction's first offset (Kafka's
 * currentTxnFirstOffset); the reopened partition's LSO is where it was. */
static void test_open_transaction_survives_a_clean_reopen(void **state)
{
    struct fx *f = *state;
    produce(f, 100, 0, 2, false);
    int64_t a = produce(f, 1, 0, 2, true);
    produce(f, 100, 2, 2, false);
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    /* the snapshot entry carries it: bytes 34..45 of the entry are coordinatorEpoch and
     * currentTxnFirstOffset */
    char path[1300];
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f->p.dir_path, 6);
    size_t len;
    uint8_t *bytes = file_bytes(path, &len);
    bool found = false;
    for (size_t off = 10; off + 46 <= len; off += 46)
        if ((int64_t)be64_get(bytes + off) == 1)
            found = (int64_t)be64_get(bytes + off + 38) == a;
    free(bytes);
    assert_true(found);
    open_p(f);
    assert_int_equal(partition_last_stable_offset(&f->p), a);
    assert_int_equal(partition_high_watermark(&f->p), 6);
    marker(f, 1, false);
    assert_int_equal(partition_last_stable_offset(&f->p), 7);
}

/* An unclean stop: no snapshot, no .txnindex. The replay of the log rebuilds both the open
 * transaction and the aborted one's entry. */
static void test_unclean_reopen_rebuilds_open_txn_and_txnindex(void **state)
{
    struct fx *f = *state;
    int64_t a = produce(f, 1, 0, 2, true);        /* 0-1, aborted */
    int64_t b = produce(f, 2, 0, 1, true);        /* 2, stays open */
    int64_t m = marker(f, 1, false);              /* 3 */
    char tx[1300];
    txnindex_path(f, 0, tx, sizeof(tx));
    size_t len;
    uint8_t *before = file_bytes(tx, &len);
    assert_int_equal(len, 34);
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    unlink(tx);
    char snap[1300];
    snprintf(snap, sizeof(snap), "%s/%020" PRId64 ".snapshot", f->p.dir_path, m + 1);
    assert_int_equal(unlink(snap), 0);
    open_p(f);
    assert_int_equal(partition_last_stable_offset(&f->p), b);
    uint8_t *after = file_bytes(tx, &len);
    assert_int_equal(len, 34);
    assert_memory_equal(after, before, 34);
    free(before);
    free(after);
    struct txnindex_entry got[2];
    int n;
    assert_int_equal(partition_collect_aborted(&f->p, 0, 100, got, 2, &n), KERR_NONE);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].first_offset, a);
}

/* An ABORT's .txnindex entry is not synced on the loop; the producer snapshot that names the
 * offsets past its marker syncs it first, and is not written when that fails. */
static void test_snapshot_syncs_txnindex_first(void **state)
{
    struct fx *f = *state;
    produce(f, 1, 0, 2, true);
    int64_t m = marker(f, 1, false);
    fio_fault_set(FIO_FDATASYNC, 1, EIO, 0, false);
    assert_int_equal(producer_state_snapshot(&f->p.producers, f->p.dir_path, m + 1), -1);
    fio_fault_clear();
    char snap[1300];
    snprintf(snap, sizeof(snap), "%s/%020" PRId64 ".snapshot", f->p.dir_path, m + 1);
    assert_int_equal(access(snap, F_OK), -1);
    assert_int_equal(producer_state_snapshot(&f->p.producers, f->p.dir_path, m + 1), 0);
    assert_int_equal(access(snap, F_OK), 0);
}

/* Truncating below a marker takes its .txnindex entry away and opens its transaction again. */
static void test_truncation_below_a_marker(void **state)
{
    struct fx *f = *state;
    int64_t a = produce(f, 1, 0, 2, true);        /* 0-1 */
    int64_t m = marker(f, 1, false);              /* 2 */
    produce(f, 100, 0, 1, false);                 /* 3 */
    assert_int_equal(partition_last_stable_offset(&f->p), 4);
    assert_int_equal(partition_truncate_to(&f->p, m), KERR_NONE);
    assert_int_equal(partition_log_end(&f->p), m);
    assert_int_equal(partition_last_stable_offset(&f->p), a);
    struct txnindex_entry got[2];
    int n;
    assert_int_equal(partition_collect_aborted(&f->p, 0, 100, got, 2, &n), KERR_NONE);
    assert_int_equal(n, 0);
    /* written again by the next marker */
    marker(f, 1, false);
    assert_int_equal(partition_collect_aborted(&f->p, 0, 100, got, 2, &n), KERR_NONE);
    assert_int_equal(n, 1);
}

/* The cleaner stops at the last stable offset (Kafka's firstUncleanableOffset <= LSO). */
static void test_cleaner_bound_is_the_lso(void **state)
{
    struct fx *f = *state;
    produce(f, 100, 0, 3, false);
    int64_t a = produce(f, 1, 0, 2, true);
    produce(f, 100, 3, 3, false);
    struct partition_clean_input in;
    assert_int_equal(partition_clean_prepare(&f->p, &f->cfg, &in), KERR_NONE);
    assert_int_equal(in.high_watermark, a);
    partition_clean_input_free(&in);
    marker(f, 1, true);
    assert_int_equal(partition_clean_prepare(&f->p, &f->cfg, &in), KERR_NONE);
    assert_int_equal(in.high_watermark, partition_high_watermark(&f->p));
    partition_clean_input_free(&in);
}

/* Kafka's unreplicatedTxns: on a leader with a follower in the ISR, a transaction's marker
 * moves the last stable offset only once the high watermark passed the marker (before, a
 * read_committed reader could read a transaction whose marker a failover may lose). */
static void test_lso_waits_for_the_marker_to_replicate(void **state)
{
    struct fx *f = *state;
    static const int32_t assigned[2] = {1, 2};
    partition_lead_replicated(&f->p, 1, assigned, 2, assigned, 2, 5000, 30000);
    int64_t a = produce(f, 1, 0, 2, true);                   /* 0-1 */
    assert_int_equal(partition_follower_fetched(&f->p, 2, 2, 5001, true), KERR_NONE);
    partition_update_high_watermark(&f->p, 5001);
    assert_int_equal(partition_high_watermark(&f->p), 2);
    assert_int_equal(partition_last_stable_offset(&f->p), a);
    int64_t m = marker(f, 1, true);                         /* 2 */
    produce(f, 100, 0, 1, false);                            /* 3 */
    assert_int_equal(partition_follower_fetched(&f->p, 2, m, 5002, true), KERR_NONE);
    partition_update_high_watermark(&f->p, 5002);
    assert_int_equal(partition_high_watermark(&f->p), m);  /* the marker not yet below it */
    assert_int_equal(partition_last_stable_offset(&f->p), a);
    assert_int_equal(partition_follower_fetched(&f->p, 2, m + 1, 5003, true), KERR_NONE);
    partition_update_high_watermark(&f->p, 5003);
    assert_int_equal(partition_last_stable_offset(&f->p), m + 1);
    assert_int_equal(partition_follower_fetched(&f->p, 2, m + 2, 5004, true), KERR_NONE);
    partition_update_high_watermark(&f->p, 5004);
    assert_int_equal(partition_last_stable_offset(&f->p), m + 2);
}

/* A follower appending its leader's batches keeps the same open transactions, LSO and
 * .txnindex entries (the markers come as control batches at the leader's offsets). */
static void test_follower_replays_markers(void **state)
{
    struct fx *f = *state;
    produce(f, 1, 0, 2, true);
    int64_t b = produce(f, 2, 0, 1, true);
    marker(f, 1, false);
    produce(f, 100, 0, 1, false);
    struct partition fol;
    memset(&fol, 0, sizeof(fol));
    snprintf(fol.dir_path, sizeof(fol.dir_path), "%s/t-1", f->dir);
    fol.index = 1;
    assert_int_equal(partition_open(&fol, "t", &f->cfg, -1, 0), KERR_NONE);
    for (int64_t off = 0; off < partition_log_end(&f->p);) {
        struct log_slice sl;
        assert_int_equal(partition_read_log(&f->p, off, 1, &sl), KERR_NONE);
        uint8_t *bytes = tu_slice_bytes(&sl);
        struct batch_header h;
        batch_header_decode(bytes, &h);
        struct log_append_info info;
        assert_int_equal(partition_append_as_follower(&fol, bytes, (size_t)batch_total_size(&h), &info),
                         KERR_NONE);
        free(bytes);
        off = batch_last_offset(&h) + 1;
    }
    partition_restore_high_watermark(&fol, partition_high_watermark(&f->p));
    assert_int_equal(partition_last_stable_offset(&fol), b);
    struct txnindex_entry want[2], got[2];
    int nw, ng;
    assert_int_equal(partition_collect_aborted(&f->p, 0, 100, want, 2, &nw), KERR_NONE);
    assert_int_equal(partition_collect_aborted(&fol, 0, 100, got, 2, &ng), KERR_NONE);
    assert_int_equal(nw, 1);
    assert_int_equal(ng, 1);
    assert_memory_equal(got, want, sizeof(want[0]));
    assert_int_equal(partition_close(&fol), KERR_NONE);
}

static void test_txnindex_file_rules(void **state)
{
    struct fx *f = *state;
    char path[1300];
    snprintf(path, sizeof(path), "%s/x.txnindex", f->dir);
    struct txnindex_entry e1 = {1, 0, 5, 6}, e2 = {2, 3, 9, 10}, e3 = {3, 8, 9, 12};
    assert_int_equal(txnindex_append(path, &e1, true), 0);
    assert_int_equal(txnindex_append(path, &e2, false), 0);
    assert_int_equal(txnindex_append(path, &e3, false), -1); /* last offset must grow (Kafka) */
    assert_int_equal(txnindex_sync_dir(f->dir), 0);
    /* a torn entry at the end is ignored and overwritten */
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "\0\0\0", 3), 3);
    close(fd);
    struct txnindex_entry *all;
    int n;
    assert_int_equal(txnindex_read(path, &all, &n), 0);
    assert_int_equal(n, 2);
    free(all);
    struct txnindex_entry out[4];
    bool complete;
    n = 0;
    /* overlapping [6, 10): only e2; e2's LSO 10 reaches the upper bound: complete */
    assert_int_equal(txnindex_collect(path, 6, 10, out, 4, &n, &complete), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].producer_id, 2);
    assert_true(complete);
    assert_int_equal(txnindex_truncate(path, 9), 0);
    assert_int_equal(txnindex_read(path, &all, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(all[0].producer_id, 1);
    free(all);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 34);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lso_held_by_the_earliest_open_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marker_is_kafkas_control_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_written_to_txnindex_in_kafkas_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marker_of_an_older_epoch_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_state_and_coordinator_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_transaction_survives_a_clean_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclean_reopen_rebuilds_open_txn_and_txnindex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_below_a_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_syncs_txnindex_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaner_bound_is_the_lso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_replays_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lso_waits_for_the_marker_to_replicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txnindex_file_rules, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
