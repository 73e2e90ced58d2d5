/* test_log_dump: `gregor dump-log` (Kafka's DumpLogSegments) on logs written by plog — the
 * exact batch, record, index and time-index line formats, verification and sanity checks.
 * cli/ is not in libgregor.a, so the tool's one source file is compiled in here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "common/util.h"
#include "../../src/cli/dump_log.c"

struct out {
    char *text;
    char *err;
    int rc;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 22);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs the tool with argv, capturing stdout and stderr. */
static struct out run(int argc, char **argv)
{
    char op[] = "/tmp/gregor-dump-out-XXXXXX", ep[] = "/tmp/gregor-dump-err-XXXXXX";
    int ofd = mkstemp(op), efd = mkstemp(ep);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    struct out o;
    o.rc = cli_dump_log(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(ofd);
    close(efd);
    o.text = slurp(op);
    o.err = slurp(ep);
    unlink(op);
    unlink(ep);
    return o;
}

static void out_free(struct out *o)
{
    free(o->text);
    free(o->err);
}

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
    sprintf(f->pdir, "%s/d-0", f->dir);
    tu_config(&f->cfg);
    f->cfg.segment_bytes = 1 << 20;
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

static uint8_t *hello_batch(size_t *len, int codec)
{
    struct batch_builder b;
    batch_builder_init(&b, 1 << 20);
    struct batch_kv_header h[2] = {{"trace", "1", 1}, {"src", NULL, -1}};
    batch_builder_add(&b, 1528595323503, NULL, -1, "Hello", 5, NULL, 0);
    batch_builder_add(&b, 1528595323504, "k", 1, "World", 5, h, 2);
    uint8_t *out;
    assert_int_equal(batch_builder_finish(&b, codec, &out, len), 0);
    batch_builder_free(&b);
    return out;
}

static void test_log_lines(void **state)
{
    struct fx *f = *state;
    struct plog *log;
    assert_int_equal(plog_open(f->pdir, "d", 0, &f->cfg, -1, -1, &log), 0);
    size_t len;
    uint8_t *b = hello_batch(&len, BATCH_COMPRESSION_NONE);
    assert_int_equal(plog_append(log, b, len, 0, NULL), 0);
    uint32_t crc = be32_get(b + 17);
    free(b);
    b = hello_batch(&len, BATCH_COMPRESSION_GZIP);
    assert_int_equal(plog_append(log, b, len, 0, NULL), 0);
    size_t len2 = len;
    uint32_t crc2 = be32_get(b + 17);
    free(b);
    assert_int_equal(plog_close(log), 0);
    char *lp = tu_seg_path(f->pdir, 0, ".log");
    char files[4300];
    snprintf(files, sizeof(files), "%s", lp);
    char *argv[] = {"dump-log", "--files", files, "--print-data-log"};
    struct out o = run(4, argv);
    assert_int_equal(o.rc, 0);
    char want[4096];
    size_t first = (size_t)(tu_file_size(lp)) - len2;
    snprintf(want, sizeof(want),
             "Dumping %s\n"
             "Log starting offset: 0\n"
             "baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 "
             "producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
             "deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1528595323504 size: %zu "
             "magic: 2 compresscodec: none crc: %u isvalid: true\n"
             "| offset: 0 CreateTime: 1528595323503 keySize: -1 valueSize: 5 sequence: -1 headerKeys: [] payload: Hello\n"
             "| offset: 1 CreateTime: 1528595323504 keySize: 1 valueSize: 5 sequence: -1 headerKeys: [trace,src] key: k payload: World\n"
             "baseOffset: 2 lastOffset: 3 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 "
             "producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
             "deleteHorizonMs: OptionalLong.empty position: %zu CreateTime: 1528595323504 size: %zu "
             "magic: 2 compresscodec: gzip crc: %u isvalid: true\n"
             "| offset: 2 CreateTime: 1528595323503 keySize: -1 valueSize: 5 sequence: -1 headerKeys: [] payload: Hello\n"
             "| offset: 3 CreateTime: 1528595323504 keySize: 1 valueSize: 5 sequence: -1 headerKeys: [trace,src] key: k payload: World\n",
             lp, first, crc, first, len2, crc2);
    assert_string_equal(o.text, want);
    assert_string_equal(o.err, "");
    out_free(&o);
    /* Shallow: batch lines only. Deep without data: no payloads. */
    char *argv2[] = {"dump-log", "--files", files};
    o = run(3, argv2);
    assert_null(strstr(o.text, "| offset"));
    assert_non_null(strstr(o.text, "compresscodec: gzip"));
    out_free(&o);
    char *argv3[] = {"dump-log", "--deep-iteration", "--files", files};
    o = run(4, argv3);
    assert_non_null(strstr(o.text, "headerKeys: [trace,src]\n"));
    assert_null(strstr(o.text, "payload"));
    out_free(&o);
    /* A torn tail is reported as Kafka does. */
    assert_int_equal(truncate(lp, tu_file_size(lp) - 5), 0);
    o = run(3, argv2);
    char tail[200];
    snprintf(tail, sizeof(tail), "Found %zu invalid bytes at the end of 00000000000000000000.log\n", len2 - 5);
    assert_non_null(strstr(o.text, tail));
    out_free(&o);
    free(lp);
}

static void test_index_and_timeindex(void **state)
{
    struct fx *f = *state;
    struct plog *log;
    assert_int_equal(plog_open(f->pdir, "d", 0, &f->cfg, -1, -1, &log), 0);
    tu_append_n(log, 40, 1, 100, 5000);
    assert_int_equal(plog_close(log), 0);
    char *ip = tu_seg_path(f->pdir, 0, ".index");
    char *tp = tu_seg_path(f->pdir, 0, ".timeindex");
    char *lp = tu_seg_path(f->pdir, 0, ".log");
    char files[9000];
    snprintf(files, sizeof(files), "%s,%s", ip, tp);
    char *argv[] = {"dump-log", "--files", files};
    struct out o = run(3, argv);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.err, "");
    /* Every entry line has Kafka's shape; entries follow the interval rule. */
    int idx_lines = 0, ts_lines = 0;
    for (char *line = strtok(o.text, "\n"); line; line = strtok(NULL, "\n")) {
        int64_t a, b2;
        if (sscanf(line, "offset: %" SCNd64 " position: %" SCNd64, &a, &b2) == 2)
            idx_lines++;
        else if (sscanf(line, "timestamp: %" SCNd64 " offset: %" SCNd64, &a, &b2) == 2) {
            assert_int_equal(a, 5000 + b2);
            ts_lines++;
        }
    }
    assert_int_equal(idx_lines, tu_file_size(ip) / 8);
    assert_int_equal(ts_lines, tu_file_size(tp) / 12);
    assert_true(idx_lines > 5);
    out_free(&o);
    /* --verify-index-only prints nothing but the headers when all is well. */
    char *argv2[] = {"dump-log", "--verify-index-only", "--files", files};
    o = run(4, argv2);
    char want[9000];
    snprintf(want, sizeof(want), "Dumping %s\nDumping %s\n", ip, tp);
    assert_string_equal(o.text, want);
    assert_string_equal(o.err, "");
    out_free(&o);
    char *argv3[] = {"dump-log", "--index-sanity-check", "--files", files};
    o = run(4, argv3);
    snprintf(want, sizeof(want), "Dumping %s\n%s passed sanity check.\nDumping %s\n%s passed sanity check.\n",
             ip, ip, tp, tp);
    assert_string_equal(o.text, want);
    out_free(&o);
    /* A wrong index entry shows up as a mismatch on stderr. */
    int fd = open(ip, O_RDWR);
    uint8_t e[8];
    assert_int_equal(pread(fd, e, 8, 0), 8);
    be32_put(e, be32_get(e) + 1);
    assert_int_equal(pwrite(fd, e, 8, 0), 8);
    close(fd);
    o = run(4, argv2);
    assert_non_null(strstr(o.err, "Mismatches in :"));
    assert_non_null(strstr(o.err, "  Index offset: "));
    out_free(&o);
    /* An empty index. */
    assert_int_equal(truncate(ip, 0), 0);
    snprintf(files, sizeof(files), "%s", ip);
    o = run(3, argv);
    snprintf(want, sizeof(want), "Dumping %s\n%s is empty.\n", ip, ip);
    assert_string_equal(o.text, want);
    out_free(&o);
    free(ip);
    free(tp);
    free(lp);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *argv[] = {"dump-log"};
    struct out o = run(1, argv);
    assert_int_equal(o.rc, 1);
    assert_non_null(strstr(o.err, "Missing required argument \"[files]\""));
    out_free(&o);
    char *argv2[] = {"dump-log", "--bogus", "--files", "x.log"};
    o = run(4, argv2);
    assert_int_equal(o.rc, 1);
    out_free(&o);
    char *argv3[] = {"dump-log", "--files", "/nonexistent/00000000000000000000.log"};
    o = run(3, argv3);
    assert_int_equal(o.rc, 1);
    out_free(&o);
    char *argv4[] = {"dump-log", "--files", "/tmp/whatever.txt"};
    o = run(3, argv4);
    assert_int_equal(o.rc, 0);
    assert_non_null(strstr(o.err, "Ignoring unknown file /tmp/whatever.txt"));
    out_free(&o);
}

int main(void)
{
    logging_set_level(LOG_LEVEL_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_and_timeindex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests_name("log_dump", tests, NULL, NULL);
}
