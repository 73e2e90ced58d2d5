/* test_group_offsets: the Java string hash and group → partition mapping, __consumer_offsets
 * record bytes (Kafka's schemas), commit/fetch validation, replay after a restart (later records
 * win, tombstones delete), OffsetDelete, DeleteGroups, retention expiry and snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "group_test_env.h"

static void test_java_string_hash(void **state)
{
    (void)state;
    /* Values from Java's String.hashCode. */
    assert_int_equal(gc_java_string_hash("", 0), 0);
    assert_int_equal(gc_java_string_hash("a", 1), 97);
    assert_int_equal(gc_java_string_hash("hello", 5), 99162322);
    assert_int_equal(gc_java_string_hash("my-group", 8), -1906497762);
    assert_int_equal(gc_java_string_hash("\xc3\xa9", 2), 233);                /* é */
    assert_int_equal(gc_java_string_hash("\xf0\x9f\x98\x80", 4), 1772899);    /* 😀: surrogates */
    assert_int_equal(gc_java_string_hash("polygenelubricants", 18), INT32_MIN);
    assert_int_equal(gc_partition_for("hello", 50), 22);
    assert_int_equal(gc_partition_for("my-group", 50), 12);
    assert_int_equal(gc_partition_for("console-consumer-12345", 50), 6);
    assert_int_equal(gc_partition_for("gr\xc3\xbc\xc3\x9f" "e-gruppe", 50), 5);
    assert_int_equal(gc_partition_for("polygenelubricants", 50), 0); /* abs(MIN_VALUE) = 0 */
    assert_int_equal(gc_partition_for("a", 4), 1);
}

static void test_record_bytes_match_kafka_schemas(void **state)
{
    (void)state;
    struct gc_buf b;
    assert_int_equal(gc_encode_offset_key(&b, "g", "t", 3), KERR_NONE);
    const uint8_t key[] = {0, 1, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 3};
    assert_int_equal(b.len, sizeof(key));
    assert_memory_equal(b.p, key, sizeof(key));
    free(b.p);

    assert_int_equal(gc_encode_offset_value(&b, 42, 5, "md", 2, 1000, -1), KERR_NONE);
    const uint8_t v3[] = {0, 3, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 5, 0, 2, 'm', 'd',
                          0, 0, 0, 0, 0, 0, 0x03, 0xe8};
    assert_int_equal(b.len, sizeof(v3));
    assert_memory_equal(b.p, v3, sizeof(v3));
    free(b.p);

    /* An explicit expiry writes v1: offset, metadata, commit, expire. */
    assert_int_equal(gc_encode_offset_value(&b, 1, -1, "", 0, 2, 3), KERR_NONE);
    const uint8_t v1[] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                          0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3};
    assert_int_equal(b.len, sizeof(v1));
    assert_memory_equal(b.p, v1, sizeof(v1));
    free(b.p);

    /* Metadata is length-counted bytes: a NUL inside is written, not an end. */
    assert_int_equal(gc_encode_offset_value(&b, 1, -1, "a\0b", 3, 2, 3), KERR_NONE);
    const uint8_t v1nul[] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 'a', 0, 'b',
                             0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3};
    assert_int_equal(b.len, sizeof(v1nul));
    assert_memory_equal(b.p, v1nul, sizeof(v1nul));
    free(b.p);

    assert_int_equal(gc_encode_group_key(&b, "grp"), KERR_NONE);
    const uint8_t gk[] = {0, 2, 0, 3, 'g', 'r', 'p'};
    assert_int_equal(b.len, sizeof(gk));
    assert_memory_equal(b.p, gk, sizeof(gk));
    free(b.p);
}

static struct gc_commit_partition part(const char *topic, int32_t p, int64_t off, const char *md)
{
    struct gc_commit_partition c = {.topic = topic, .partition = p, .offset = off,
                                    .leader_epoch = -1, .metadata = md,
                                    .metadata_len = md ? (int32_t)strlen(md) : 0,
                                    .error = KERR_NONE};
    return c;
}

static int64_t fetched(struct fake_env *e, const char *g, const char *t, int32_t p)
{
    struct gc_offset o;
    gc_offset_get(e->gc, g, t, p, &o);
    return o.offset;
}

static void test_simple_commit_fetch_and_validation(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.offset_metadata_max_bytes = 5;
    struct fake_env *e = fake_env_new(&cfg);
    struct gc_commit_args a = {"g", -1, "", NULL, -1, 8};
    struct gc_commit_partition ps[3] = {part("t", 0, 10, "m"), part("t", 1, 20, NULL),
                                        part("t", 2, 30, "toolong")};
    gc_offset_commit(e->gc, &a, ps, 3);
    assert_int_equal(ps[0].error, KERR_NONE);
    assert_int_equal(ps[1].error, KERR_NONE);
    assert_int_equal(ps[2].error, KERR_OFFSET_METADATA_TOO_LARGE);
    assert_int_equal(fetched(e, "g", "t", 0), 10);
    assert_int_equal(fetched(e, "g", "t", 1), 20);
    assert_int_equal(fetched(e, "g", "t", 2), -1);
    assert_int_equal(fetched(e, "other", "t", 0), -1);
    /* Records went to the group's partition. */
    assert_int_equal(e->nrecords, 2);
    assert_int_equal(e->records[0].partition, gc_partition_for("g", 4));

    /* A commit with a generation for a group that does not exist. */
    struct gc_commit_args bad = {"nogroup", 3, "m1", NULL, -1, 8};
    struct gc_commit_partition p1 = part("t", 0, 1, NULL);
    gc_offset_commit(e->gc, &bad, &p1, 1);
    assert_int_equal(p1.error, KERR_ILLEGAL_GENERATION);
    bad.version = 9; /* OffsetCommit v9 names it */
    p1.error = KERR_NONE;
    gc_offset_commit(e->gc, &bad, &p1, 1);
    assert_int_equal(p1.error, KERR_GROUP_ID_NOT_FOUND);
    /* Preset errors (unknown topic) are kept; storage failures are reported. */
    struct gc_commit_partition p2 = part("t", 0, 11, NULL);
    p2.error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    gc_offset_commit(e->gc, &a, &p2, 1);
    assert_int_equal(p2.error, KERR_UNKNOWN_TOPIC_OR_PARTITION);
    e->fail_appends = 1;
    e->append_error = KERR_KAFKA_STORAGE_ERROR;
    struct gc_commit_partition p3 = part("t", 0, 12, NULL);
    gc_offset_commit(e->gc, &a, &p3, 1);
    assert_int_equal(p3.error, KERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(fetched(e, "g", "t", 0), 10); /* not applied */

    struct gc_offset *list;
    int n = gc_offset_list(e->gc, "g", &list);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].topic, "t");
    assert_int_equal(list[0].partition, 0);
    assert_int_equal(list[1].partition, 1);
    free(list);
    fake_env_free(e);
}

struct join_capture {
    bool called;
    int16_t error;
    int32_t generation;
    char member_id[128];
};

static void capture_join(void *arg, const struct gc_join_result *r)
{
    struct join_capture *c = arg;
    c->called = true;
    c->error = r->error;
    c->generation = r->generation;
    snprintf(c->member_id, sizeof(c->member_id), "%s", r->member_id);
}

static void capture_sync(void *arg, const struct gc_sync_result *r)
{
    *(int16_t *)arg = r->error;
}

/* ConsumerProtocolSubscription v0: topics ["t"], null user data. */
static const uint8_t SUB_T[] = {0, 0, 0, 0, 0, 1, 0, 1, 't', 0xff, 0xff, 0xff, 0xff};
static const struct gc_protocol RANGE[] = {{"range", SUB_T, sizeof(SUB_T)}};

/* One member joined and synced: returns its id, generation 1, Stable. */
static void make_stable(struct fake_env *e, const char *g, char *id)
{
    struct gc_join_args ja = {3, g, "", NULL, "cli", "/h", 10000, 30000, "consumer", RANGE, 1, NULL};
    struct join_capture jc = {0};
    gc_join(e->gc, &ja, capture_join, &jc);
    fake_advance(e, 0);
    assert_true(jc.called);
    assert_int_equal(jc.error, KERR_NONE);
    strcpy(id, jc.member_id);
    struct gc_assignment as = {id, (const uint8_t *)"assign", 6};
    struct gc_sync_args sa = {g, 1, id, NULL, NULL, NULL, &as, 1};
    int16_t se = -2;
    gc_sync(e->gc, &sa, capture_sync, &se);
    assert_int_equal(se, KERR_NONE);
}

static void test_member_commit_generation_checks(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char id[128];
    make_stable(e, "g", id);
    struct gc_commit_partition p = part("t", 0, 5, NULL);
    struct gc_commit_args ok = {"g", 1, id, NULL, -1, 8};
    gc_offset_commit(e->gc, &ok, &p, 1);
    assert_int_equal(p.error, KERR_NONE);
    struct gc_commit_args stale = {"g", 0, id, NULL, -1, 8};
    p = part("t", 0, 6, NULL);
    gc_offset_commit(e->gc, &stale, &p, 1);
    assert_int_equal(p.error, KERR_ILLEGAL_GENERATION);
    struct gc_commit_args stranger = {"g", 1, "who", NULL, -1, 8};
    p = part("t", 0, 6, NULL);
    gc_offset_commit(e->gc, &stranger, &p, 1);
    assert_int_equal(p.error, KERR_UNKNOWN_MEMBER_ID);
    /* A simple commit into a group with members is refused. */
    struct gc_commit_args simple = {"g", -1, "", NULL, -1, 8};
    p = part("t", 0, 6, NULL);
    gc_offset_commit(e->gc, &simple, &p, 1);
    assert_int_equal(p.error, KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(fetched(e, "g", "t", 0), 5);
    /* Non-empty group: DeleteGroups refuses; OffsetDelete refuses subscribed topics. */
    assert_int_equal(gc_delete_group(e->gc, "g"), KERR_NON_EMPTY_GROUP);
    struct gc_commit_partition del[2] = {part("t", 0, -1, NULL), part("other", 0, -1, NULL)};
    assert_int_equal(gc_offset_delete(e->gc, "g", del, 2), KERR_NONE);
    assert_int_equal(del[0].error, 86); /* GROUP_SUBSCRIBED_TO_TOPIC */
    assert_int_equal(del[1].error, KERR_NONE);
    assert_int_equal(fetched(e, "g", "t", 0), 5);
    fake_env_free(e);
}

/* Commit metadata is bytes (NULs included) in memory, in the record and after a replay; null is
 * stored as "" (Kafka's NO_METADATA); offset.metadata.max.bytes counts bytes. */
static void test_metadata_is_length_counted_bytes(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.offset_metadata_max_bytes = 12;
    struct fake_env *e = fake_env_new(&cfg);
    struct gc_commit_args a = {"g", -1, "", NULL, -1, 8};
    struct gc_commit_partition ps[5] = {part("t", 0, 1, NULL), part("t", 1, 2, NULL),
                                        part("t", 2, 3, NULL), part("t", 3, 4, NULL),
                                        part("t", 4, 5, NULL)};
    ps[0].metadata = "Hello\0world!";
    ps[0].metadata_len = 12;
    ps[1].metadata = "";
    ps[2].metadata_len = 7; /* ignored: null metadata */
    ps[3].metadata = "\0";
    ps[3].metadata_len = 1;
    ps[4].metadata = "123456\0abcdef"; /* 13 bytes, 6 before the NUL */
    ps[4].metadata_len = 13;
    gc_offset_commit(e->gc, &a, ps, 5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ps[i].error, KERR_NONE);
    assert_int_equal(ps[4].error, KERR_OFFSET_METADATA_TOO_LARGE);
    struct fake_env *r = fake_restart(e, &cfg);
    for (int round = 0; round < 2; round++) {
        struct fake_env *x = round == 0 ? e : r;
        struct gc_offset o;
        assert_true(gc_offset_get(x->gc, "g", "t", 0, &o));
        assert_int_equal(o.metadata_len, 12);
        assert_memory_equal(o.metadata, "Hello\0world!", 12);
        for (int p = 1; p <= 2; p++) {
            assert_true(gc_offset_get(x->gc, "g", "t", p, &o));
            assert_int_equal(o.metadata_len, 0);
            assert_non_null(o.metadata);
        }
        assert_true(gc_offset_get(x->gc, "g", "t", 3, &o));
        assert_int_equal(o.metadata_len, 1);
        assert_int_equal(o.metadata[0], '\0');
        assert_false(gc_offset_get(x->gc, "g", "t", 4, &o));
        struct gc_offset *list = NULL;
        assert_int_equal(gc_offset_list(x->gc, "g", &list), 4);
        assert_int_equal(list[0].metadata_len, 12);
        assert_memory_equal(list[0].metadata, "Hello\0world!", 12);
        assert_int_equal(list[3].metadata_len, 1);
        free(list);
    }
    fake_env_free(e);
    fake_env_free(r);
}

static void test_replay_restores_offsets_groups_and_tombstones(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char id[128];
    make_stable(e, "live", id);
    struct gc_commit_args a = {"live", 1, id, NULL, -1, 8};
    struct gc_commit_partition p = part("t", 0, 5, "first");
    gc_offset_commit(e->gc, &a, &p, 1);
    p = part("t", 0, 9, "second"); /* the later record wins */
    gc_offset_commit(e->gc, &a, &p, 1);
    struct gc_commit_args s = {"simple", -1, "", NULL, -1, 8};
    struct gc_commit_partition sp[2] = {part("t", 0, 1, NULL), part("t", 1, 2, NULL)};
    gc_offset_commit(e->gc, &s, sp, 2);
    struct gc_commit_partition del = part("t", 1, -1, NULL);
    assert_int_equal(gc_offset_delete(e->gc, "simple", &del, 1), KERR_NONE);
    gc_offset_commit(e->gc, &(struct gc_commit_args){"gone", -1, "", NULL, -1, 8},
                     &(struct gc_commit_partition){"t", 0, 3, -1, NULL, 0, 0}, 1);
    assert_int_equal(gc_delete_group(e->gc, "gone"), KERR_NONE);
    assert_int_equal(gc_delete_group(e->gc, "gone"), KERR_GROUP_ID_NOT_FOUND);

    struct fake_env *r = fake_restart(e, &cfg);
    fake_env_free(e);
    struct gc_offset o;
    assert_true(gc_offset_get(r->gc, "live", "t", 0, &o));
    assert_int_equal(o.offset, 9);
    assert_string_equal(o.metadata, "second");
    assert_int_equal(fetched(r, "simple", "t", 0), 1);
    assert_int_equal(fetched(r, "simple", "t", 1), -1);
    assert_int_equal(fetched(r, "gone", "t", 0), -1);

    /* The group comes back Stable with its member, generation and assignment. */
    struct gc_group_desc d;
    gc_describe(r->gc, "live", &d);
    assert_true(d.found);
    assert_int_equal(d.state, GC_STABLE);
    assert_string_equal(d.protocol_type, "consumer");
    assert_string_equal(d.protocol, "range");
    assert_int_equal(d.n_members, 1);
    assert_string_equal(d.members[0].member_id, id);
    assert_string_equal(d.members[0].client_host, "/h");
    assert_int_equal(d.members[0].assignment_len, 6);
    assert_memory_equal(d.members[0].assignment, "assign", 6);
    gc_describe_free(&d);
    gc_describe(r->gc, "gone", &d);
    assert_false(d.found);
    gc_describe_free(&d);
    /* The member carries on where it was, without a rebalance... */
    assert_int_equal(gc_heartbeat(r->gc, "live", 1, id, NULL), KERR_NONE);
    /* ...and if it never comes back its session expires and the group empties. */
    fake_advance(r, 60000);
    gc_describe(r->gc, "live", &d);
    assert_int_equal(d.state, GC_EMPTY);
    gc_describe_free(&d);
    assert_int_equal(fetched(r, "live", "t", 0), 9);

    /* Unknown key versions (KIP-848 records) and garbage are skipped, not fatal. */
    const uint8_t k848[] = {0, 3, 0, 1, 'x'};
    assert_int_equal(gc_replay_record(r->gc, k848, sizeof(k848), k848, sizeof(k848)), 0);
    const uint8_t bad[] = {0, 1, 0, 9};
    assert_int_equal(gc_replay_record(r->gc, bad, sizeof(bad), NULL, -1), -1);
    fake_env_free(r);
}

static void test_retention_expires_empty_groups_with_tombstones(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.offsets_retention_ms = 60000;
    cfg.retention_check_interval_ms = 10000;
    struct fake_env *e = fake_env_new(&cfg);
    struct gc_commit_args a = {"old", -1, "", NULL, -1, 8};
    struct gc_commit_partition p = part("t", 0, 7, NULL);
    gc_offset_commit(e->gc, &a, &p, 1);
    char id[128];
    make_stable(e, "busy", id);
    struct gc_commit_args b = {"busy", 1, id, NULL, -1, 8};
    p = part("t", 0, 8, NULL);
    gc_offset_commit(e->gc, &b, &p, 1);
    for (int i = 0; i < 7; i++) {
        fake_advance(e, 9000);
        assert_int_equal(gc_heartbeat(e->gc, "busy", 1, id, NULL), KERR_NONE);
    }
    /* 63 s later: the empty group's offset expired; the live group keeps its own. */
    assert_int_equal(fetched(e, "old", "t", 0), -1);
    assert_int_equal(fetched(e, "busy", "t", 0), 8);
    struct gc_group_desc d;
    gc_describe(e->gc, "old", &d);
    assert_false(d.found); /* no offsets, no members: the group is gone */
    gc_describe_free(&d);
    struct fake_record *last = &e->records[e->nrecords - 1];
    assert_null(last->value); /* a tombstone went to the log */
    struct fake_env *r = fake_restart(e, &cfg);
    fake_env_free(e);
    assert_int_equal(fetched(r, "old", "t", 0), -1);
    assert_int_equal(fetched(r, "busy", "t", 0), 8);
    fake_env_free(r);
}

struct snap {
    struct fake_env *into;
    int records;
};

static int snapshot_into(void *arg, const struct gc_record *recs, int n)
{
    struct snap *s = arg;
    for (int i = 0; i < n; i++)
        gc_replay_record(s->into->gc, recs[i].key, recs[i].key_len, recs[i].value,
                         recs[i].value_len);
    s->records += n;
    return KERR_NONE;
}

static void test_snapshot_holds_exactly_the_live_state(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char id[128];
    make_stable(e, "g0", id);
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "grp-%d", i % 20);
        struct gc_commit_args a = {name, -1, "", NULL, -1, 8};
        struct gc_commit_partition ps[3] = {part("t", 0, i, NULL), part("t", 1, i, NULL),
                                            part("u", 0, i, NULL)};
        gc_offset_commit(e->gc, &a, ps, 3);
    }
    int64_t live = 0;
    for (int32_t p = 0; p < cfg.num_partitions; p++)
        live += gc_live_records(e->gc, p);
    assert_int_equal(live, 20 * 3 + 1); /* offsets + one group metadata record */
    struct fake_env *copy = fake_env_new(&cfg);
    struct snap s = {copy, 0};
    for (int32_t p = 0; p < cfg.num_partitions; p++)
        assert_int_equal(gc_snapshot(e->gc, p, snapshot_into, &s), KERR_NONE);
    gc_replay_done(copy->gc);
    assert_int_equal(s.records, live);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "grp-%d", i);
        assert_int_equal(fetched(copy, name, "u", 0), fetched(e, name, "u", 0));
        assert_int_equal(fetched(copy, name, "t", 1), 180 + i);
    }
    struct gc_group_desc d;
    gc_describe(copy->gc, "g0", &d);
    assert_int_equal(d.state, GC_STABLE);
    assert_int_equal(d.n_members, 1);
    gc_describe_free(&d);
    fake_env_free(copy);
    fake_env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_java_string_hash),
        cmocka_unit_test(test_record_bytes_match_kafka_schemas),
        cmocka_unit_test(test_simple_commit_fetch_and_validation),
        cmocka_unit_test(test_member_commit_generation_checks),
        cmocka_unit_test(test_metadata_is_length_counted_bytes),
        cmocka_unit_test(test_replay_restores_offsets_groups_and_tombstones),
        cmocka_unit_test(test_retention_expires_empty_groups_with_tombstones),
        cmocka_unit_test(test_snapshot_holds_exactly_the_live_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
