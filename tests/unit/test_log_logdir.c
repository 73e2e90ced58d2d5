/* test_log_logdir: meta.properties (ours and Kafka's), the .lock, the clean-shutdown marker,
 * offset checkpoints, partition.metadata, partition directory scan and the topic store. */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "log/logdir.h"

static char *read_text(const char *dir, const char *name)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[8500]; /* dir (< 4200) + "/" + name: room for gcc's worst case at -O2 */
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void test_meta_lock_and_clean_marker(void **state)
{
    (void)state;
    char *root = tu_tmpdir();
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/a/b/logs", root);
    struct logdir *d, *d2;
    assert_int_equal(logdir_open(dir, 7, NULL, &d), 0);
    assert_true(logdir_was_clean(d)); /* brand new: nothing to recover, not an unclean stop */
    assert_int_equal(strlen(logdir_cluster_id(d)), 22);
    char *meta = read_text(dir, "meta.properties");
    assert_non_null(strstr(meta, "version=1\n"));
    assert_non_null(strstr(meta, "node.id=7\n"));
    assert_non_null(strstr(meta, "directory.id="));
    char cid[64];
    snprintf(cid, sizeof(cid), "%s", logdir_cluster_id(d));
    assert_non_null(strstr(meta, cid));
    free(meta);
    /* The directory is locked against a second opener. */
    assert_int_equal(logdir_open(dir, 7, NULL, &d2), -1);
    logdir_close(d, true);
    char *marker = read_text(dir, ".kafka_cleanshutdown");
    assert_non_null(marker);
    free(marker);
    /* Clean reopen: flagged and the marker consumed; same cluster id kept. */
    assert_int_equal(logdir_open(dir, 7, cid, &d), 0);
    assert_true(logdir_was_clean(d));
    assert_null(read_text(dir, ".kafka_cleanshutdown"));
    assert_string_equal(logdir_cluster_id(d), cid);
    logdir_close(d, false);
    assert_int_equal(logdir_open(dir, 7, NULL, &d), 0);
    assert_false(logdir_was_clean(d));
    logdir_close(d, false);
    /* Wrong node id or cluster id: refused. */
    assert_int_equal(logdir_open(dir, 8, NULL, &d), -1);
    assert_int_equal(logdir_open(dir, 7, "someOtherClusterIdxxxx", &d), -1);
    tu_rmrf(root);
    free(root);
}

static void test_kafka_written_meta_accepted(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    write_text(dir, "meta.properties",
               "#\n#Thu Nov 20 10:00:00 UTC 2025\nnode.id=1\ndirectory.id=J8NAKbOSR5eWqH7kpbp0pA\n"
               "version=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n");
    struct logdir *d;
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    assert_string_equal(logdir_cluster_id(d), "MkU3OEVBNTcwNTJENDM2Qk");
    assert_string_equal(logdir_directory_id(d), "J8NAKbOSR5eWqH7kpbp0pA");
    logdir_close(d, false);
    /* Left as Kafka wrote it (nothing to add). */
    char *meta = read_text(dir, "meta.properties");
    assert_non_null(strstr(meta, "#Thu Nov 20"));
    free(meta);
    /* ZooKeeper-era v0 with broker.id */
    write_text(dir, "meta.properties", "version=0\nbroker.id=1\ncluster.id=abc\n");
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    assert_string_equal(logdir_cluster_id(d), "abc");
    logdir_close(d, false);
    write_text(dir, "meta.properties", "version=9\nnode.id=1\n");
    assert_int_equal(logdir_open(dir, 1, NULL, &d), -1);
    tu_rmrf(dir);
    free(dir);
}

static void test_checkpoints(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct logdir *d;
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    assert_int_equal(logdir_recovery_point(d, "orders", 0), -1);
    struct logdir_checkpoint_entry e[3] = {
        {"orders", 0, 1500, 0, 1500},
        {"orders", 1, 1432, 17, 1400},
        {"my.topic_x-1", 12, 9, 9, 9},
    };
    assert_int_equal(logdir_write_checkpoints(d, e, 3), 0);
    char *rp = read_text(dir, "recovery-point-offset-checkpoint");
    assert_string_equal(rp, "0\n3\norders 0 1500\norders 1 1432\nmy.topic_x-1 12 9\n");
    free(rp);
    char *ls = read_text(dir, "log-start-offset-checkpoint");
    assert_string_equal(ls, "0\n2\norders 1 17\nmy.topic_x-1 12 9\n");
    free(ls);
    logdir_close(d, true);
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    assert_int_equal(logdir_recovery_point(d, "orders", 0), 1500);
    assert_int_equal(logdir_recovery_point(d, "orders", 1), 1432);
    assert_int_equal(logdir_recovery_point(d, "my.topic_x-1", 12), 9);
    assert_int_equal(logdir_recovery_point(d, "orders", 2), -1);
    assert_int_equal(logdir_log_start_offset(d, "orders", 0), -1);
    assert_int_equal(logdir_log_start_offset(d, "orders", 1), 17);
    assert_int_equal(logdir_high_watermark(d, "orders", 1), 1400);
    logdir_close(d, false);
    /* A corrupt checkpoint is ignored (full recovery), not fatal. */
    write_text(dir, "recovery-point-offset-checkpoint", "0\n5\norders 0 1500\n");
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    assert_int_equal(logdir_recovery_point(d, "orders", 0), -1);
    logdir_close(d, false);
    write_text(dir, "recovery-point-offset-checkpoint", "1\n1\norders 0 1500\n");
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    assert_int_equal(logdir_recovery_point(d, "orders", 0), -1);
    logdir_close(d, false);
    tu_rmrf(dir);
    free(dir);
}

struct seen {
    int n;
    char names[16][300];
};

static void scan_cb(void *arg, const char *topic, int32_t partition, const char *path)
{
    struct seen *s = arg;
    assert_non_null(strstr(path, topic));
    snprintf(s->names[s->n++], 300, "%s/%d", topic, partition);
}

static void test_scan_and_partition_metadata(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct logdir *d;
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    const char *dirs[] = {"orders-0", "orders-12", "a-b-c-3", "__consumer_offsets-49",
                          "orders-1.0123456789abcdef0123456789abcdef-delete",
                          "orders-2.0123456789abcdef0123456789abcdef-future", "notapartition",
                          "bad-x", "-5", "sp ace-1"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s", dir, dirs[i]);
        mkdir(p, 0755);
    }
    write_text(dir, "file-7", "x");
    struct seen s = {0};
    assert_int_equal(logdir_scan(d, scan_cb, &s), 0);
    assert_int_equal(s.n, 4);
    int found = 0;
    for (int i = 0; i < s.n; i++)
        if (strcmp(s.names[i], "a-b-c/3") == 0 || strcmp(s.names[i], "orders/12") == 0 ||
            strcmp(s.names[i], "__consumer_offsets/49") == 0 || strcmp(s.names[i], "orders/0") == 0)
            found++;
    assert_int_equal(found, 4);
    uint8_t id[16], back[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 37 + 1);
    char p[4200];
    snprintf(p, sizeof(p), "%s/orders-0", dir);
    assert_int_equal(partition_metadata_write(p, id), 0);
    char *text = read_text(p, "partition.metadata");
    char b64[23];
    uuid_to_base64url(id, b64);
    char want[80];
    snprintf(want, sizeof(want), "version: 0\ntopic_id: %s\n", b64);
    assert_string_equal(text, want);
    free(text);
    assert_int_equal(partition_metadata_read(p, back), 0);
    assert_memory_equal(id, back, 16);
    logdir_close(d, false);
    tu_rmrf(dir);
    free(dir);
}

static void test_uuid_base64url(void **state)
{
    (void)state;
    /* Kafka's Uuid.toString of 0x... known value: all zero is AAAAAAAAAAAAAAAAAAAAAA. */
    uint8_t z[16] = {0}, out[16];
    char s[23];
    uuid_to_base64url(z, s);
    assert_string_equal(s, "AAAAAAAAAAAAAAAAAAAAAA");
    uint8_t ff[16];
    memset(ff, 0xff, 16);
    uuid_to_base64url(ff, s);
    assert_string_equal(s, "_____________________w");
    assert_int_equal(uuid_from_base64url(s, out), 0);
    assert_memory_equal(out, ff, 16);
    assert_int_equal(uuid_from_base64url("_____________________x", out), -1);
    assert_int_equal(uuid_from_base64url("short", out), -1);
    assert_int_equal(uuid_from_base64url("AAAAAAAAAAAAAAAAAAAA*A", out), -1);
}

static void test_topic_store(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct logdir *d;
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    struct topic_record *recs;
    int n;
    assert_int_equal(topic_store_load(d, &recs, &n), 0);
    assert_int_equal(n, 0);
    struct topic_record in[2];
    memset(in, 0, sizeof(in));
    snprintf(in[0].name, sizeof(in[0].name), "orders");
    in[0].partitions = 3;
    for (int i = 0; i < 16; i++)
        in[0].topic_id[i] = (uint8_t)i;
    char keys[3][128] = {"retention.ms", "cleanup.policy", "weird=key"};
    char vals[3][256] = {"1000", "compact,delete", "va lue%\n"};
    in[0].nconfigs = 3;
    in[0].config_keys = keys;
    in[0].config_values = vals;
    snprintf(in[1].name, sizeof(in[1].name), "__consumer_offsets");
    in[1].partitions = 50;
    in[1].topic_id[0] = 9;
    assert_int_equal(topic_store_save(d, in, 2), 0);
    assert_int_equal(topic_store_load(d, &recs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(recs[0].name, "orders");
    assert_int_equal(recs[0].partitions, 3);
    assert_memory_equal(recs[0].topic_id, in[0].topic_id, 16);
    assert_int_equal(recs[0].nconfigs, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(recs[0].config_keys[i], keys[i]);
        assert_string_equal(recs[0].config_values[i], vals[i]);
    }
    assert_string_equal(recs[1].name, "__consumer_offsets");
    assert_int_equal(recs[1].nconfigs, 0);
    topic_store_free(recs, n);
    /* A malformed store is an error, not a crash. */
    write_text(dir, "gregor-topics", "orders notanumber AAAAAAAAAAAAAAAAAAAAAA\n");
    assert_int_equal(topic_store_load(d, &recs, &n), -1);
    write_text(dir, "gregor-topics", "orders 1 AAAAAAAAAAAAAAAAAAAAAA a=%Zq\n");
    assert_int_equal(topic_store_load(d, &recs, &n), -1);
    logdir_close(d, false);
    tu_rmrf(dir);
    free(dir);
}

/* DeleteTopics: a deleting record round-trips; renamed dirs have Kafka's shape, fit 255
 * bytes, are skipped by the scan and removed at startup. */
static void test_deleted_topics(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct logdir *d;
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    struct topic_record in[2];
    memset(in, 0, sizeof(in));
    snprintf(in[0].name, sizeof(in[0].name), "gone");
    in[0].partitions = 5000;
    in[0].topic_id[0] = 1;
    in[0].deleting = true;
    snprintf(in[1].name, sizeof(in[1].name), "gone");
    in[1].partitions = 2;
    in[1].topic_id[0] = 2;
    assert_int_equal(topic_store_save(d, in, 2), 0);
    struct topic_record *recs;
    int n;
    assert_int_equal(topic_store_load(d, &recs, &n), 0);
    assert_int_equal(n, 2);
    assert_true(recs[0].deleting && recs[0].partitions == 5000 && recs[0].topic_id[0] == 1);
    assert_true(!recs[1].deleting && recs[1].partitions == 2 && recs[1].topic_id[0] == 2);
    topic_store_free(recs, n);

    char p[4200], q[4200], longname[250];
    assert_int_equal(logdir_delete_dir_name(d, "gone", 12, p, sizeof(p)), 0);
    const char *base = p + strlen(dir) + 1;
    assert_int_equal(strlen(base), strlen("gone-12.") + 32 + strlen("-delete"));
    assert_memory_equal(base, "gone-12.", 8);
    for (int i = 8; i < 40; i++)
        assert_true(isxdigit((unsigned char)base[i]) && !isupper((unsigned char)base[i]));
    assert_string_equal(base + 40, "-delete");
    assert_int_equal(logdir_delete_dir_name(d, "gone", 12, q, sizeof(q)), 0);
    assert_string_not_equal(p, q); /* a fresh uuid each time */
    memset(longname, 'x', 249);
    longname[249] = '\0';
    assert_int_equal(logdir_delete_dir_name(d, longname, 99999, q, sizeof(q)), 0);
    assert_int_equal(strlen(q + strlen(dir) + 1), 255);
    assert_int_equal(logdir_delete_dir_name(d, "gone", 1, q, 20), -1);

    assert_int_equal(mkdir(p, 0755), 0);
    write_text(p, "00000000000000000000.log", "x");
    snprintf(q, sizeof(q), "%s/gone-3", dir);
    assert_int_equal(mkdir(q, 0755), 0);
    struct seen s = {0};
    assert_int_equal(logdir_scan(d, scan_cb, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.names[0], "gone/3");
    assert_int_equal(logdir_remove_deleted(d), 1);
    struct stat st;
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(stat(q, &st), 0);
    assert_int_equal(logdir_remove_deleted(d), 0);
    logdir_close(d, false);
    tu_rmrf(dir);
    free(dir);
}

/* Found writing fuzz_logdir_meta: a node.id that is not a number was taken for an absent one, and
 * the file rewritten with the configured node.id over it; Kafka's MetaProperties refuses to
 * start. An invalid directory.id was taken as it was (Kafka: Uuid.fromString fails). */
static void test_malformed_meta_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct logdir *d;
    const char *bad[] = {
        "version=1\ncluster.id=abc\nnode.id=1x\ndirectory.id=wxGO5ZJ7SMO7XNtyl3RZ1Q\n",
        "version=1\ncluster.id=abc\nnode.id=99999999999\ndirectory.id=wxGO5ZJ7SMO7XNtyl3RZ1Q\n",
        "version=1\ncluster.id=abc\nnode.id=1\ndirectory.id=wxGO5ZJ7SMO7XNtyl3RZ1*\n",
        "version=one\ncluster.id=abc\nnode.id=1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(dir, "meta.properties", bad[i]);
        assert_int_equal(logdir_open(dir, 1, NULL, &d), -1);
        char *text = read_text(dir, "meta.properties");
        assert_string_equal(text, bad[i]); /* left as it was for the operator */
        free(text);
    }
    write_text(dir, "meta.properties",
               "version=1\ncluster.id=abc\nnode.id=1\ndirectory.id=wxGO5ZJ7SMO7XNtyl3RZ1Q\n");
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    assert_string_equal(logdir_directory_id(d), "wxGO5ZJ7SMO7XNtyl3RZ1Q");
    logdir_close(d, false);
    tu_rmrf(dir);
    free(dir);
}

/* Found writing fuzz_logdir_meta: partition.metadata naming the zero UUID was read as the topic's
 * id, so the broker adopted a topic with id zero (Kafka: "Invalid topic ID in partition
 * metadata file"); a NUL byte cut the text short instead of failing. */
static void test_partition_metadata_zero_id_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint8_t id[16];
    write_text(dir, "partition.metadata", "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n");
    assert_int_equal(partition_metadata_read(dir, id), -1);
    write_text(dir, "partition.metadata", "version: 0\ntopic_id: 1Bavspw7R_yBawiF2LJXuA\n");
    assert_int_equal(partition_metadata_read(dir, id), 0);
    tu_rmrf(dir);
    free(dir);
}

static void write_bytes(const char *dir, const char *name, const char *bytes, size_t len)
{
    char p[8500];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

/* Found writing fuzz_topic_store: names are %-decoded, and nothing checked the result was a topic
 * name, so "%2E%2E%2Fx" made a topic "../x" whose partition dirs are outside the log dir; a
 * "%00" or a NUL byte cut a name or the whole rest of the file short (topics after it lost:
 * their dirs then adopted with new ids); a partition count up to 2^31 was taken. */
static void test_topic_store_malformed_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct logdir *d;
    assert_int_equal(logdir_open(dir, 1, NULL, &d), 0);
    struct topic_record *recs;
    int n;
    const char *bad[] = {
        "%2E%2E%2Fx 1 1Bavspw7R_yBawiF2LJXuA\n",
        "a%2Fb 1 1Bavspw7R_yBawiF2LJXuA\n",
        "%2E%2E 1 1Bavspw7R_yBawiF2LJXuA\n",
        "a%00b 1 1Bavspw7R_yBawiF2LJXuA\n",
        "orders 2147483647 1Bavspw7R_yBawiF2LJXuA\n",
        "orders 1 AAAAAAAAAAAAAAAAAAAAAA\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(dir, "gregor-topics", bad[i]);
        assert_int_equal(topic_store_load(d, &recs, &n), -1);
    }
    const char nul[] = "orders 1 1Bavspw7R_yBawiF2LJXuA\n\0payments 3 1Bavspw7R_yBawiF2LJXuB\n";
    write_bytes(dir, "gregor-topics", nul, sizeof(nul) - 1);
    assert_int_equal(topic_store_load(d, &recs, &n), -1);
    logdir_close(d, false);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_lock_and_clean_marker),
        cmocka_unit_test(test_kafka_written_meta_accepted),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_scan_and_partition_metadata),
        cmocka_unit_test(test_uuid_base64url),
        cmocka_unit_test(test_topic_store),
        cmocka_unit_test(test_deleted_topics),
        cmocka_unit_test(test_malformed_meta_refused),
        cmocka_unit_test(test_partition_metadata_zero_id_refused),
        cmocka_unit_test(test_topic_store_malformed_refused),
    };
    return cmocka_run_group_tests_name("log_logdir", tests, NULL, NULL);
}
