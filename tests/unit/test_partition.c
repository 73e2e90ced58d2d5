/* test_partition: the partition replica — leader appends assign offsets and move the log end
 * and the high watermark, follower appends keep offsets and refuse gaps and overlaps,
 * truncate_to drops the tail and the epoch entries past it, reads stop at the high watermark,
 * the epoch cache survives a reopen, idempotent retries are found through the partition, and
 * a truncation rebuilds the producer state to the new log end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "common/crc32c.h"
#include "common/util.h"
#include "log/fileio.h"
#include "partition/partition.h"
#include "partition/partition_follow.h"

#include "partition_fx.h"

static int64_t lead(struct fx *f, int n)
{
    size_t len;
    uint8_t *b = tu_batch(n, 100, 1000, BATCH_COMPRESSION_NONE, &len);
    struct log_append_info info;
    bool dup;
    assert_int_equal(partition_append_as_leader(&f->p, b, len, 5000, &info, &dup), KERR_NONE);
    assert_false(dup);
    free(b);
    return info.base_offset;
}

/* A batch as a leader wrote it: offsets from base, stamped with epoch, CRC recomputed. */
static uint8_t *replicated(int n, int64_t base, int32_t epoch, size_t *len)
{
    uint8_t *b = tu_batch(n, 100, 1000, BATCH_COMPRESSION_NONE, len);
    batch_assign(b, *len, base, epoch, false, 0);
    return b;
}

/* The header of the batch holding offset, as a reader gets it. */
static struct batch_header header_at(struct fx *f, int64_t offset)
{
    struct log_slice sl;
    assert_int_equal(partition_read(&f->p, offset, 1 << 20, &sl), KERR_NONE);
    uint8_t *bytes = tu_slice_bytes(&sl);
    struct batch_header h;
    batch_header_decode(bytes, &h);
    free(bytes);
    return h;
}

static void test_leader_append_assigns_offsets(void **state)
{
    struct fx *f = *state;
    assert_int_equal(partition_log_end(&f->p), 0);
    assert_int_equal(lead(f, 3), 0);
    assert_int_equal(lead(f, 2), 3);
    assert_int_equal(partition_log_end(&f->p), 5);
    assert_int_equal(partition_high_watermark(&f->p), 5);
    assert_int_equal(partition_last_stable_offset(&f->p), 5);
    assert_int_equal(partition_log_start(&f->p), 0);
    /* The epoch stamped on the batches is the partition's (0 on one node). */
    struct batch_header h = header_at(f, 3);
    assert_int_equal(h.base_offset, 3);
    assert_int_equal(h.partition_leader_epoch, 0);
}

static void test_become_leader_stamps_new_epoch(void **state)
{
    struct fx *f = *state;
    lead(f, 2);
    assert_int_equal(partition_become_leader(&f->p, 3), KERR_NONE);
    lead(f, 1);
    assert_int_equal(header_at(f, 2).partition_leader_epoch, 3);
    int32_t e;
    int64_t end;
    partition_epoch_end_offset(&f->p, 0, &e, &end);
    assert_int_equal(e, 0);
    assert_int_equal(end, 2);
    partition_epoch_end_offset(&f->p, 2, &e, &end); /* between: the floor epoch, the next start */
    assert_int_equal(e, 0);
    assert_int_equal(end, 2);
    partition_epoch_end_offset(&f->p, 3, &e, &end);
    assert_int_equal(e, 3);
    assert_int_equal(end, 3);
    partition_epoch_end_offset(&f->p, 4, &e, &end); /* newer than known */
    assert_int_equal(e, -1);
    assert_int_equal(end, -1);
    assert_int_equal(partition_check_leader_epoch(&f->p, 4), KERR_UNKNOWN_LEADER_EPOCH);
    assert_int_equal(partition_check_leader_epoch(&f->p, 2), KERR_FENCED_LEADER_EPOCH);
    assert_int_equal(partition_check_leader_epoch(&f->p, 3), KERR_NONE);
    assert_int_equal(partition_check_leader_epoch(&f->p, -1), KERR_NONE);
}

static void test_follower_append_keeps_offsets_refuses_gaps(void **state)
{
    struct fx *f = *state;
    size_t len;
    struct log_append_info info;
    uint8_t *b = replicated(3, 0, 0, &len);
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_NONE);
    assert_int_equal(info.base_offset, 0);
    assert_int_equal(info.last_offset, 2);
    free(b);
    /* A follower's high watermark is its leader's: the append alone does not move it. */
    assert_int_equal(partition_high_watermark(&f->p), 0);
    assert_int_equal(partition_follow_leader_marks(&f->p, 2, 0), KERR_NONE);
    assert_int_equal(partition_high_watermark(&f->p), 2);
    b = replicated(2, 5, 0, &len); /* gap: 3..4 missing */
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_OFFSET_OUT_OF_RANGE);
    free(b);
    b = replicated(2, 1, 0, &len); /* overlap */
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_OFFSET_OUT_OF_RANGE);
    free(b);
    assert_int_equal(partition_log_end(&f->p), 3);
    b = replicated(2, 3, 7, &len); /* a newer leader's epoch: a new cache entry */
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_NONE);
    free(b);
    assert_int_equal(partition_log_end(&f->p), 5);
    assert_int_equal(partition_epoch_for_offset(&f->p, 4), 7);
    assert_int_equal(partition_epoch_for_offset(&f->p, 2), 0);
    b = replicated(1, 5, 0, &len);
    b[len - 1] ^= 0xff; /* a record byte: the CRC no longer matches */
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_CORRUPT_MESSAGE);
    free(b);
    assert_int_equal(partition_log_end(&f->p), 5);
}

static void test_truncate_drops_tail_and_epochs(void **state)
{
    struct fx *f = *state;
    /* Enough batches for several segments (segment.bytes 4096). */
    for (int i = 0; i < 30; i++)
        lead(f, 2);
    assert_int_equal(partition_become_leader(&f->p, 1), KERR_NONE);
    for (int i = 0; i < 10; i++)
        lead(f, 2);
    assert_int_equal(partition_log_end(&f->p), 80);
    assert_int_equal(f->p.nepochs, 2);
    assert_true(partition_segment_count(&f->p) > 2);
    /* Mid-batch: the batch holding 21 (20..21) goes whole. */
    assert_int_equal(partition_truncate_to(&f->p, 21), KERR_NONE);
    assert_int_equal(partition_log_end(&f->p), 20);
    assert_int_equal(partition_high_watermark(&f->p), 20);
    assert_int_equal(f->p.nepochs, 1);
    assert_int_equal(tu_count_records(f->p.log, 0), 20);
    /* Appends go on at the new end, and the log reads back after a reopen. */
    size_t len;
    struct log_append_info info;
    uint8_t *b = replicated(2, 20, 1, &len);
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_NONE);
    free(b);
    assert_int_equal(partition_log_end(&f->p), 22);
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    open_p(f);
    assert_int_equal(partition_log_end(&f->p), 22);
    assert_int_equal(tu_count_records(f->p.log, 0), 22);
    assert_int_equal(f->p.nepochs, 2);
    assert_int_equal(partition_epoch_for_offset(&f->p, 21), 1);
    /* Below the log start there is nothing to truncate to. */
    int64_t start;
    assert_int_equal(partition_delete_records(&f->p, 10, &start), KERR_NONE);
    assert_int_equal(partition_truncate_to(&f->p, 5), KERR_OFFSET_OUT_OF_RANGE);
}

static void test_read_bounded_by_high_watermark(void **state)
{
    struct fx *f = *state;
    lead(f, 3);
    lead(f, 3);
    /* A follower-style high watermark below the log end: reads stop there. */
    f->p.high_watermark = 3;
    struct log_slice sl;
    assert_int_equal(partition_read(&f->p, 0, 1 << 20, &sl), KERR_NONE);
    uint8_t *bytes = tu_slice_bytes(&sl);
    struct batch_header h;
    batch_header_decode(bytes, &h);
    assert_int_equal((int64_t)sl.len, batch_total_size(&h)); /* the first batch only */
    free(bytes);
    assert_int_equal(partition_read(&f->p, 3, 1 << 20, &sl), KERR_NONE);
    assert_int_equal(sl.len, 0);
    /* The log itself (the group store's replay) reads to its end. */
    assert_int_equal(partition_read_log(&f->p, 3, 1 << 20, &sl), KERR_NONE);
    assert_true(sl.len > 0);
    close(sl.fd);
    assert_int_equal(partition_read(&f->p, 7, 1 << 20, &sl), KERR_OFFSET_OUT_OF_RANGE);
    f->p.high_watermark = 6;
    int64_t start;
    assert_int_equal(partition_delete_records(&f->p, 7, &start), KERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(partition_delete_records(&f->p, -1, &start), KERR_NONE);
    assert_int_equal(start, 6);
}

static void test_epoch_checkpoint_written_and_read_back(void **state)
{
    struct fx *f = *state;
    char path[1300];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", f->p.dir_path);
    char *text;
    size_t n;
    assert_int_equal(fio_read_file(path, 4096, &text, &n), 0);
    assert_string_equal(text, "0\n1\n0 0\n");
    free(text);
    lead(f, 4);
    assert_int_equal(partition_become_leader(&f->p, 2), KERR_NONE);
    assert_int_equal(partition_become_leader(&f->p, 2), KERR_NONE); /* the same: no entry */
    assert_int_equal(fio_read_file(path, 4096, &text, &n), 0);
    assert_string_equal(text, "0\n2\n0 0\n2 4\n");
    free(text);
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    open_p(f);
    assert_int_equal(f->p.nepochs, 2);
    assert_int_equal(f->p.leader_epoch, 2);
    assert_int_equal(f->p.epochs[1].start_offset, 4);
    /* A damaged file (epochs not increasing) is not trusted: epoch 0 from the log start. */
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    const char *bad = "0\n2\n3 0\n1 4\n";
    assert_int_equal(fio_write_file_atomic(path, bad, strlen(bad)), 0);
    open_p(f);
    assert_int_equal(f->p.nepochs, 1);
    assert_int_equal(f->p.epochs[0].epoch, 0);
}

/* Found writing fuzz_epoch_checkpoint: the reader took numbers by sscanf, so an epoch past int32
 * wrapped ("4294967297" read as 1), entries past the count, or two on one line, were taken;
 * Kafka's reader refuses each. A refused file is rebuilt: epoch 0 from the log start. */
static void test_malformed_epoch_checkpoint_rebuilt(void **state)
{
    struct fx *f = *state;
    char path[1300];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", f->p.dir_path);
    const char *bad[] = {"0\n1\n4294967297 0\n", "0\n1\n3 0\n7 9\n", "0\n2\n0 0 1 5\n",
                         "0\n1\n+3 0\n", "0\n1\n 3 0\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(partition_close(&f->p), KERR_NONE);
        assert_int_equal(fio_write_file_atomic(path, bad[i], strlen(bad[i])), 0);
        open_p(f);
        assert_int_equal(f->p.nepochs, 1);
        assert_int_equal(f->p.epochs[0].epoch, 0);
        assert_int_equal(f->p.leader_epoch, 0);
    }
}

/* A snapshot of one entry (Kafka's format) at <dir>/00000000000000000000.snapshot; extra
 * bytes after the entry, and the CRC over the entry only when crc_entries_only (what the
 * reader checked before) or broken when crc_bad. */
static void write_snapshot(struct fx *f, int64_t pid, int32_t last_seq, int64_t last_offset,
                           int32_t delta, size_t extra, bool crc_bad)
{
    uint8_t buf[64] = {0};
    be16_put(buf, 1);
    be32_put(buf + 6, 1);
    uint8_t *p = buf + 10;
    be64_put(p, (uint64_t)pid);
    be32_put(p + 10, (uint32_t)last_seq);
    be64_put(p + 14, (uint64_t)last_offset);
    be32_put(p + 22, (uint32_t)delta);
    be32_put(p + 34, (uint32_t)-1);
    be64_put(p + 38, (uint64_t)-1);
    be32_put(buf + 2, crc32c(0, buf + 6, 4 + 46) ^ (crc_bad ? 1u : 0u));
    char path[1300];
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f->p.dir_path, 0);
    assert_int_equal(fio_write_file_atomic(path, buf, 10 + 46 + extra), 0);
}

static bool snapshot_present(struct fx *f)
{
    char path[1300];
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f->p.dir_path, 0);
    return access(path, F_OK) == 0;
}

/* Found writing fuzz_producer_snapshot: an entry's first offset (last offset - delta) overflowed
 * (UBSan: signed overflow) for a CRC-valid file with a last offset near INT64_MIN; bytes after
 * the entries were ignored (Kafka's CRC covers the whole rest of the file). A corrupt
 * snapshot was skipped but kept, read and warned about at every start; Kafka's
 * loadFromSnapshot removes it, and the state comes from the log. */
static void test_corrupt_producer_snapshot_removed(void **state)
{
    struct fx *f = *state;
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    write_snapshot(f, 7, 0, 0, 0, 0, false); /* sound: read (the log has none of it) */
    open_p(f);
    assert_non_null(producer_state_find(&f->p.producers, 7));
    assert_true(snapshot_present(f));
    struct { int32_t seq; int64_t off; int32_t delta; size_t extra; bool crc_bad; } bad[] = {
        {5, INT64_MIN, 1, 0, false}, /* first offset overflows */
        {5, 3, 4, 0, false},         /* first offset negative */
        {0, 0, 0, 1, false},         /* a byte past the entries */
        {0, 0, 0, 0, true},          /* CRC */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(partition_close(&f->p), KERR_NONE);
        write_snapshot(f, 7, bad[i].seq, bad[i].off, bad[i].delta, bad[i].extra, bad[i].crc_bad);
        open_p(f);
        assert_null(producer_state_find(&f->p.producers, 7));
        assert_false(snapshot_present(f));
    }
}

static void test_idempotent_duplicate_through_partition(void **state)
{
    struct fx *f = *state;
    struct batch_builder bb;
    uint8_t *b[2];
    size_t len[2];
    for (int i = 0; i < 2; i++) {
        batch_builder_init(&bb, 1 << 20);
        bb.producer_id = 42;
        bb.producer_epoch = 0;
        bb.base_sequence = i * 2;
        batch_builder_add(&bb, 1000, NULL, -1, "ab", 2, NULL, 0);
        batch_builder_add(&bb, 1001, NULL, -1, "cd", 2, NULL, 0);
        assert_int_equal(batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &b[i], &len[i]), 0);
        batch_builder_free(&bb);
    }
    uint8_t *copy = malloc(len[0]);
    memcpy(copy, b[0], len[0]);
    struct log_append_info info;
    bool dup;
    lead(f, 1);
    assert_int_equal(partition_append_as_leader(&f->p, b[0], len[0], 5000, &info, &dup), KERR_NONE);
    assert_false(dup);
    assert_int_equal(info.base_offset, 1);
    assert_int_equal(partition_append_as_leader(&f->p, b[1], len[1], 5000, &info, &dup), KERR_NONE);
    assert_int_equal(info.base_offset, 3);
    /* The retry of the first: its offsets (acks=all waits for them as for the original's),
     * nothing appended. */
    assert_int_equal(partition_append_as_leader(&f->p, copy, len[0], 5000, &info, &dup), KERR_NONE);
    assert_true(dup);
    assert_int_equal(info.base_offset, 1);
    assert_int_equal(info.last_offset, 2);
    assert_int_equal(partition_log_end(&f->p), 5);
    free(copy);
    free(b[0]);
    free(b[1]);
}

/* An idempotent batch of two records (seq, seq + 1) of producer pid, as the leader wrote it
 * at base in epoch 0. */
static uint8_t *idempotent_at(int64_t pid, int32_t seq, int64_t base, size_t *len)
{
    struct batch_builder bb;
    batch_builder_init(&bb, 1 << 20);
    bb.producer_id = pid;
    bb.producer_epoch = 0;
    bb.base_sequence = seq;
    batch_builder_add(&bb, 1000, NULL, -1, "ab", 2, NULL, 0);
    batch_builder_add(&bb, 1001, NULL, -1, "cd", 2, NULL, 0);
    uint8_t *b;
    assert_int_equal(batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &b, len), 0);
    batch_builder_free(&bb);
    batch_assign(b, *len, base, 0, false, 0);
    return b;
}

static void follow_idempotent(struct fx *f, int64_t pid, int32_t seq)
{
    size_t len;
    struct log_append_info info;
    uint8_t *b = idempotent_at(pid, seq, partition_log_end(&f->p), &len);
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_NONE);
    free(b);
}

/* A retry of the batch (pid, seq) sent to this replica as leader: KERR_NONE, and *dup when it
 * was answered from the producer state. */
static int64_t lead_retry(struct fx *f, int64_t pid, int32_t seq, bool *dup)
{
    size_t len;
    uint8_t *b = idempotent_at(pid, seq, 0, &len);
    struct log_append_info info;
    assert_int_equal(partition_append_as_leader(&f->p, b, len, 5000, &info, dup), KERR_NONE);
    free(b);
    return info.base_offset;
}

/* A follower that truncates its divergent tail forgets the producers' batches in it (Kafka's
 * truncateAndReload): once leader, a retry of such a batch is appended, not answered
 * DUPLICATE from a log that no longer holds it; the batches kept are still duplicates. */
static void test_truncate_rebuilds_producer_state(void **state)
{
    struct fx *f = *state;
    follow_idempotent(f, 42, 0); /* 0..1 */
    follow_idempotent(f, 42, 2); /* 2..3: the divergent tail from here */
    follow_idempotent(f, 43, 0); /* 4..5: a producer only the tail knows */
    assert_int_equal(partition_truncate_to(&f->p, 2), KERR_NONE);
    assert_int_equal(partition_log_end(&f->p), 2);
    assert_null(producer_state_find(&f->p.producers, 43));
    const struct producer_entry *e = producer_state_find(&f->p.producers, 42);
    assert_non_null(e);
    assert_int_equal(e->n, 1);
    assert_int_equal(e->batches[0].last_seq, 1);
    assert_int_equal(partition_become_leader(&f->p, 1), KERR_NONE);
    bool dup;
    assert_int_equal(lead_retry(f, 42, 2, &dup), 2); /* appended again, at the new end */
    assert_false(dup);
    assert_int_equal(lead_retry(f, 42, 0, &dup), 0); /* still in the log: a duplicate */
    assert_true(dup);
    assert_int_equal(lead_retry(f, 43, 0, &dup), 4);
    assert_false(dup);
    assert_int_equal(partition_log_end(&f->p), 6);
    /* A tail without idempotent batches: the state stays, a snapshot past the end goes. */
    size_t len;
    struct log_append_info info;
    uint8_t *b = replicated(3, 6, 1, &len);
    assert_int_equal(partition_append_as_follower(&f->p, b, len, &info), KERR_NONE);
    free(b);
    assert_int_equal(producer_state_snapshot(&f->p.producers, f->p.dir_path, 9), 0);
    assert_int_equal(partition_truncate_to(&f->p, 6), KERR_NONE);
    char path[1200];
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f->p.dir_path, 9);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(lead_retry(f, 43, 0, &dup), 4);
    assert_true(dup);
}

/* The same with snapshots on disk: one past the new end is removed (it describes batches that
 * are gone), the state comes from the one below it plus the batches after it. */
static void test_truncate_reloads_from_snapshot_below(void **state)
{
    struct fx *f = *state;
    follow_idempotent(f, 42, 0); /* 0..1 */
    follow_idempotent(f, 43, 0); /* 2..3 */
    assert_int_equal(producer_state_snapshot(&f->p.producers, f->p.dir_path, 4), 0);
    follow_idempotent(f, 42, 2); /* 4..5 */
    follow_idempotent(f, 43, 2); /* 6..7 */
    assert_int_equal(producer_state_snapshot(&f->p.producers, f->p.dir_path, 8), 0);
    follow_idempotent(f, 42, 4); /* 8..9 */
    assert_int_equal(partition_truncate_to(&f->p, 6), KERR_NONE);
    char path[1200];
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f->p.dir_path, 8);
    assert_int_not_equal(access(path, F_OK), 0);
    const struct producer_entry *e42 = producer_state_find(&f->p.producers, 42);
    const struct producer_entry *e43 = producer_state_find(&f->p.producers, 43);
    assert_non_null(e42);
    assert_non_null(e43);
    assert_int_equal(e42->batches[e42->n - 1].last_seq, 3);
    assert_int_equal(e42->batches[e42->n - 1].first_offset, 4);
    assert_int_equal(e43->batches[e43->n - 1].last_seq, 1);
    assert_int_equal(partition_become_leader(&f->p, 1), KERR_NONE);
    bool dup;
    assert_int_equal(lead_retry(f, 43, 2, &dup), 6);
    assert_false(dup);
    assert_int_equal(lead_retry(f, 42, 2, &dup), 4);
    assert_true(dup);
    assert_int_equal(lead_retry(f, 42, 4, &dup), 8);
    assert_false(dup);
    /* A reopen finds the same state (no snapshot past what the log holds). */
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    open_p(f);
    assert_int_equal(lead_retry(f, 42, 4, &dup), 8);
    assert_true(dup);
}

/* A clean close writes a snapshot at the log end and a reopen reads no log after it: the
 * snapshot holds each producer's last 5 batches (one Kafka-format entry each), so a retry of
 * an older one than the last, which a producer sends to a restarted broker once it leads, is
 * answered with its offset (Kafka's snapshot keeps the newest only: OUT_OF_ORDER_SEQUENCE,
 * fatal to the producer). */
static void test_reopen_knows_the_last_five_batches(void **state)
{
    struct fx *f = *state;
    for (int32_t seq = 0; seq < 12; seq += 2)
        follow_idempotent(f, 42, seq); /* 6 batches at 0..11: the last 5 from offset 2 */
    follow_idempotent(f, 43, 0);       /* 12..13 */
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    open_p(f);
    assert_int_equal(partition_become_leader(&f->p, 1), KERR_NONE);
    bool dup;
    for (int32_t seq = 2; seq < 12; seq += 2) {
        assert_int_equal(lead_retry(f, 42, seq, &dup), seq);
        assert_true(dup);
    }
    assert_int_equal(lead_retry(f, 43, 0, &dup), 12);
    assert_true(dup);
    assert_int_equal(partition_log_end(&f->p), 14);
    assert_int_equal(lead_retry(f, 42, 12, &dup), 14); /* the next one is appended */
    assert_false(dup);
}

/* The periodic checkpoint encodes a snapshot image on the loop thread and writes it on the
 * I/O worker: a truncation in between must not leave the image on disk, where, once the log
 * grew past its offset again, a reopen would take the truncated batches for the log's and
 * answer their retries DUPLICATE (acknowledged, stored nowhere). */
static void test_snapshot_image_taken_before_a_truncation_is_not_kept(void **state)
{
    struct fx *f = *state;
    follow_idempotent(f, 42, 0); /* 0..1 */
    follow_idempotent(f, 42, 2); /* 2..3 */
    follow_idempotent(f, 42, 4); /* 4..5: truncated below */
    uint8_t *image;
    size_t len;
    assert_int_equal(producer_state_snapshot_encode(&f->p.producers, &image, &len), 0);
    uint64_t taken = atomic_load(&f->p.truncations);
    assert_int_equal(partition_truncate_to(&f->p, 4), KERR_NONE);
    /* The worker gets to it now. */
    assert_int_equal(producer_state_snapshot_write(f->p.dir_path, 6, image, len,
                                                   &f->p.truncations, taken), 1);
    free(image);
    char path[1200];
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f->p.dir_path, 6);
    assert_int_not_equal(access(path, F_OK), 0);
    /* Another producer's batches take the offsets again, past 6; a reopen reads the log. */
    follow_idempotent(f, 43, 0); /* 4..5 */
    follow_idempotent(f, 43, 2); /* 6..7 */
    assert_int_equal(partition_close(&f->p), KERR_NONE);
    open_p(f);
    assert_int_equal(partition_become_leader(&f->p, 1), KERR_NONE);
    bool dup;
    assert_int_equal(lead_retry(f, 42, 4, &dup), 8); /* the retry is stored */
    assert_false(dup);
    assert_int_equal(lead_retry(f, 43, 2, &dup), 6);
    assert_true(dup);
    /* Without a truncation the same write keeps its file. */
    assert_int_equal(producer_state_snapshot_encode(&f->p.producers, &image, &len), 0);
    taken = atomic_load(&f->p.truncations);
    assert_int_equal(producer_state_snapshot_write(f->p.dir_path, 10, image, len,
                                                   &f->p.truncations, taken), 0);
    free(image);
    snprintf(path, sizeof(path), "%s/%020d.snapshot", f->p.dir_path, 10);
    assert_int_equal(access(path, F_OK), 0);
}

/* ---- leading a replicated partition: broker 1 leads, broker 2 follows ---- */

static const int32_t ASSIGNED[2] = {1, 2};

static void test_replicated_hw_is_isr_minimum_never_back(void **state)
{
    struct fx *f = *state;
    lead(f, 2); /* written before leading: the high watermark is 2 */
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 2, 5000, 30000);
    assert_int_equal(partition_high_watermark(&f->p), 2);
    lead(f, 3);
    assert_int_equal(partition_log_end(&f->p), 5);
    /* The follower in the ISR has not fetched: nothing new is visible. */
    assert_int_equal(partition_high_watermark(&f->p), 2);
    struct log_slice sl;
    assert_int_equal(partition_read(&f->p, 2, 1 << 20, &sl), KERR_NONE);
    assert_int_equal(sl.len, 0);
    assert_int_equal(partition_follower_fetched(&f->p, 2, 4, 5001, true), KERR_NONE);
    assert_true(partition_update_high_watermark(&f->p, 5001));
    assert_int_equal(partition_high_watermark(&f->p), 4);
    /* A fetch from an earlier offset (a follower that truncated) never takes it back. */
    assert_int_equal(partition_follower_fetched(&f->p, 2, 3, 5002, true), KERR_NONE);
    assert_false(partition_update_high_watermark(&f->p, 5002));
    assert_int_equal(partition_high_watermark(&f->p), 4);
    assert_int_equal(partition_follower_fetched(&f->p, 2, 5, 5003, true), KERR_NONE);
    assert_true(partition_update_high_watermark(&f->p, 5003));
    assert_int_equal(partition_high_watermark(&f->p), 5);
    /* Out of the ISR but caught up within the lag time: it may join, so the high
     * watermark waits for it (Kafka's maybeIncrementLeaderHW). */
    int32_t self = 1;
    partition_set_isr(&f->p, &self, 1);
    lead(f, 1);
    assert_int_equal(partition_high_watermark(&f->p), 5);
    /* A new leadership with the leader alone in the ISR: its log end, at the append. */
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, &self, 1, 9000, 30000);
    lead(f, 1);
    assert_int_equal(partition_high_watermark(&f->p), 7);
}

/* Kafka's checkEnoughReplicasReachOffset: an acks=all batch is answered once the high
 * watermark passed it, and NOT_LEADER_OR_FOLLOWER once this replica stopped leading since it
 * was appended, even when the high watermark of a later leadership passes its offsets (the
 * records there may be others: the batch was truncated away meanwhile). A leader epoch bump
 * while it goes on leading (the controller taking a dead replica out of the ISR) ends nothing:
 * the batch is in this log and is answered once the high watermark passes it. */
static void test_replicated_acks_all_settled_in_the_same_leadership(void **state)
{
    struct fx *f = *state;
    lead(f, 2);
    assert_int_equal(partition_become_leader(&f->p, 1), KERR_NONE);
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 2, 5000, 30000);
    f->p.repl.leader_epoch = 1; /* as replica_sync leads it */
    int32_t first = partition_leadership(&f->p);
    assert_true(first >= 0);
    lead(f, 3);
    int e = -1;
    assert_false(partition_acks_all_settled(&f->p, first, 5, &e)); /* the follower lacks it */
    assert_int_equal(partition_follower_fetched(&f->p, 2, 5, 5001, true), KERR_NONE);
    assert_true(partition_update_high_watermark(&f->p, 5001));
    assert_true(partition_acks_all_settled(&f->p, first, 5, &e));
    assert_int_equal(e, KERR_NONE);
    /* Appended, then the controller bumps the epoch with this replica still leading (as
     * replica_sync leads the new state: partition_lead_replicated again): still waiting, then
     * answered as a success once the high watermark passes it. */
    lead(f, 1);
    assert_false(partition_acks_all_settled(&f->p, first, 6, &e));
    assert_int_equal(partition_become_leader(&f->p, 2), KERR_NONE);
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 2, 5500, 30000);
    f->p.repl.leader_epoch = 2;
    assert_int_equal(partition_leadership(&f->p), first);
    assert_false(partition_acks_all_settled(&f->p, first, 6, &e));
    assert_int_equal(partition_follower_fetched(&f->p, 2, 6, 5501, true), KERR_NONE);
    assert_true(partition_update_high_watermark(&f->p, 5501));
    assert_true(partition_acks_all_settled(&f->p, first, 6, &e));
    assert_int_equal(e, KERR_NONE);
    /* Appended, then leadership went before the follower had it. */
    lead(f, 1);
    assert_false(partition_acks_all_settled(&f->p, first, 7, &e));
    partition_stop_leading(&f->p);
    assert_int_equal(partition_leadership(&f->p), -1);
    assert_true(partition_acks_all_settled(&f->p, first, 7, &e));
    assert_int_equal(e, KERR_NOT_LEADER_OR_FOLLOWER);
    /* Leading again in a later epoch, its high watermark past offset 7: still not answered
     * as a success for the append of the first leadership. */
    assert_int_equal(partition_become_leader(&f->p, 3), KERR_NONE);
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 2, 6000, 30000);
    f->p.repl.leader_epoch = 3;
    int32_t second = partition_leadership(&f->p);
    assert_true(second >= 0 && second != first);
    lead(f, 1);
    assert_int_equal(partition_follower_fetched(&f->p, 2, 8, 6001, true), KERR_NONE);
    assert_true(partition_update_high_watermark(&f->p, 6001));
    assert_true(partition_acks_all_settled(&f->p, first, 7, &e));
    assert_int_equal(e, KERR_NOT_LEADER_OR_FOLLOWER);
    assert_true(partition_acks_all_settled(&f->p, second, 8, &e));
    assert_int_equal(e, KERR_NONE);
}

static void test_replicated_unknown_replica_refused(void **state)
{
    struct fx *f = *state;
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 1, 5000, 30000);
    assert_int_equal(partition_follower_fetched(&f->p, 3, 0, 5000, false), KERR_NOT_LEADER_OR_FOLLOWER);
    assert_int_equal(partition_follower_fetched(&f->p, 3, 0, 5000, true), KERR_UNKNOWN_LEADER_EPOCH);
    assert_int_equal(partition_follower_fetched(&f->p, 1, 0, 5000, true), KERR_UNKNOWN_LEADER_EPOCH);
    assert_int_equal(partition_follower_fetched(&f->p, 2, 0, 5000, true), KERR_NONE);
    partition_stop_leading(&f->p);
    assert_int_equal(partition_follower_fetched(&f->p, 2, 0, 5000, false), KERR_NOT_LEADER_OR_FOLLOWER);
}

static void test_replicated_isr_expand_when_caught_up(void **state)
{
    struct fx *f = *state;
    int32_t out[PARTITION_REPLICAS_MAX];
    int n = 0;
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 1, 5000, 30000);
    lead(f, 5);
    assert_int_equal(partition_high_watermark(&f->p), 5); /* ISR [1] */
    assert_int_equal(partition_follower_fetched(&f->p, 2, 3, 5001, false), KERR_NONE);
    assert_false(partition_isr_expand(&f->p, out, &n)); /* below the high watermark */
    assert_int_equal(partition_follower_fetched(&f->p, 2, 5, 5002, false), KERR_NONE);
    assert_true(partition_isr_expand(&f->p, out, &n));
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    /* The maximal ISR holds the high watermark at once; no second change while in flight. */
    assert_true(partition_in_isr(&f->p, 2));
    assert_int_equal(f->p.repl.ncommitted, 1);
    assert_false(partition_isr_expand(&f->p, out, &n));
    lead(f, 2);
    assert_int_equal(partition_high_watermark(&f->p), 5);
    partition_isr_write_done(&f->p, true, out, n);
    assert_int_equal(f->p.repl.ncommitted, 2);
    assert_false(f->p.repl.isr_inflight);
    /* A failed write (the controller changed the state) goes back to the committed ISR. */
    int32_t self = 1;
    partition_set_isr(&f->p, &self, 1);
    assert_true(partition_isr_expand(&f->p, out, &n) || true);
    partition_isr_write_done(&f->p, false, NULL, 0);
    assert_int_equal(f->p.repl.nisr, 1);
    assert_false(f->p.repl.isr_inflight);
}

static void test_replicated_isr_expand_needs_leader_epoch(void **state)
{
    struct fx *f = *state;
    int32_t out[PARTITION_REPLICAS_MAX];
    int n = 0;
    lead(f, 4);
    assert_int_equal(partition_become_leader(&f->p, 2), KERR_NONE); /* epoch 2 starts at 4 */
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 1, 5000, 30000);
    partition_restore_high_watermark(&f->p, 3);
    assert_int_equal(partition_high_watermark(&f->p), 3);
    /* At the high watermark but not at the leader epoch's start offset: not yet. */
    assert_int_equal(partition_follower_fetched(&f->p, 2, 3, 5001, false), KERR_NONE);
    assert_false(partition_isr_expand(&f->p, out, &n));
    assert_int_equal(partition_follower_fetched(&f->p, 2, 4, 5002, false), KERR_NONE);
    assert_true(partition_isr_expand(&f->p, out, &n));
}

static void test_replicated_isr_shrink_after_lag(void **state)
{
    struct fx *f = *state;
    int32_t out[PARTITION_REPLICAS_MAX];
    int n = 0;
    partition_lead_replicated(&f->p, 1, ASSIGNED, 2, ASSIGNED, 2, 5000, 100);
    lead(f, 3);
    assert_int_equal(partition_follower_fetched(&f->p, 2, 3, 5010, false), KERR_NONE);
    assert_true(partition_update_high_watermark(&f->p, 5010));
    lead(f, 1);
    /* Behind since 5010, but not for the lag time yet. */
    assert_false(partition_isr_shrink(&f->p, 5100, out, &n));
    assert_true(partition_isr_shrink(&f->p, 5111, out, &n));
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 1);
    /* Until committed the follower still holds the high watermark. */
    assert_true(partition_in_isr(&f->p, 2));
    assert_false(partition_update_high_watermark(&f->p, 5111));
    assert_int_equal(partition_high_watermark(&f->p), 3);
    partition_isr_write_done(&f->p, true, out, n);
    assert_false(partition_in_isr(&f->p, 2));
    assert_true(partition_update_high_watermark(&f->p, 5112));
    assert_int_equal(partition_high_watermark(&f->p), 4);
    /* A follower at the log end is in sync however long ago it fetched. */
    partition_set_isr(&f->p, ASSIGNED, 2);
    assert_int_equal(partition_follower_fetched(&f->p, 2, 4, 5113, false), KERR_NONE);
    assert_false(partition_isr_shrink(&f->p, 99999, out, &n));
}

static void test_replicated_diverging_epoch(void **state)
{
    struct fx *f = *state;
    lead(f, 5);
    assert_int_equal(partition_become_leader(&f->p, 3), KERR_NONE); /* epochs 0@0, 3@5 */
    lead(f, 2);
    bool div;
    int32_t e;
    int64_t end;
    /* Epoch 2 is not the leader's: epoch 0 ends at 5, the follower truncates there. */
    assert_int_equal(partition_diverging_epoch(&f->p, 2, 7, &div, &e, &end), KERR_NONE);
    assert_true(div);
    assert_int_equal(e, 0);
    assert_int_equal(end, 5);
    /* Epoch 0 but past its end. */
    assert_int_equal(partition_diverging_epoch(&f->p, 0, 6, &div, &e, &end), KERR_NONE);
    assert_true(div);
    assert_int_equal(e, 0);
    assert_int_equal(end, 5);
    /* Consistent: epoch 0 up to 5, epoch 3 anywhere up to the log end. */
    assert_int_equal(partition_diverging_epoch(&f->p, 0, 5, &div, &e, &end), KERR_NONE);
    assert_false(div);
    assert_int_equal(partition_diverging_epoch(&f->p, 3, 7, &div, &e, &end), KERR_NONE);
    assert_false(div);
    assert_int_equal(partition_diverging_epoch(&f->p, -1, 7, &div, &e, &end), KERR_NONE);
    assert_false(div);
    /* An epoch newer than any known: no end offset, OFFSET_OUT_OF_RANGE (Kafka's readRecords). */
    assert_int_equal(partition_diverging_epoch(&f->p, 4, 7, &div, &e, &end), KERR_OFFSET_OUT_OF_RANGE);
}

static void test_replicated_hw_restored_from_checkpoint(void **state)
{
    struct fx *f = *state;
    lead(f, 5);
    partition_restore_high_watermark(&f->p, 2);
    assert_int_equal(partition_high_watermark(&f->p), 2);
    partition_restore_high_watermark(&f->p, 99); /* never past the log end */
    assert_int_equal(partition_high_watermark(&f->p), 5);
    partition_restore_high_watermark(&f->p, -1); /* not listed: unchanged */
    assert_int_equal(partition_high_watermark(&f->p), 5);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leader_append_assigns_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_become_leader_stamps_new_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_append_keeps_offsets_refuses_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_drops_tail_and_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_bounded_by_high_watermark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_checkpoint_written_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_epoch_checkpoint_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_producer_snapshot_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_duplicate_through_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_rebuilds_producer_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_reloads_from_snapshot_below, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_hw_is_isr_minimum_never_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_unknown_replica_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_isr_expand_when_caught_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_isr_expand_needs_leader_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_isr_shrink_after_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_diverging_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_hw_restored_from_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_knows_the_last_five_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_image_taken_before_a_truncation_is_not_kept,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicated_acks_all_settled_in_the_same_leadership,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
