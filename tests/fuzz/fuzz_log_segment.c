/* fuzz_log_segment: arbitrary bytes as a partition's .log/.index/.timeindex, then plog_open
 * (clean and unclean), reads, timestamp lookups, an append, retention, close, and the dump
 * tool over the same files. Input: [mode u8][index len u16][timeindex len u16][index]
 * [timeindex][log]. cli/ is outside the core library, so its source is compiled in here. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/logging.h"
#include "log/batch.h"
#include "log/fileio.h"
#include "log/log.h"
#include "../../src/cli/dump_log.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];
static char pdir[128];
static int devnull = -1;

static void write_file(const char *suffix, const uint8_t *p, size_t n, bool present)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/00000000000000000000%s", pdir, suffix);
    unlink(path);
    if (!present)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        abort();
    if (n > 0 && write(fd, p, n) != (ssize_t)n)
        abort();
    close(fd);
}

static void clear_dir(void)
{
    DIR *d = opendir(pdir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", pdir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void run_dump(bool deep)
{
    char files[1024];
    snprintf(files, sizeof(files), "%s/00000000000000000000.log,%s/00000000000000000000.index,"
             "%s/00000000000000000000.timeindex", pdir, pdir, pdir);
    char *argv[] = {"dump-log", "--files", files, deep ? "--print-data-log" : "--verify-index-only"};
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    /* Only stdout is silenced: a sanitizer report on stderr must stay visible. */
    dup2(devnull, 1);
    cli_dump_log(4, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (root[0] == '\0') {
        snprintf(root, sizeof(root), "/tmp/gregor-fuzz-XXXXXX");
        if (mkdtemp(root) == NULL)
            abort();
        snprintf(pdir, sizeof(pdir), "%s/fz-0", root);
        devnull = open("/dev/null", O_WRONLY);
        logging_set_level(LOG_LEVEL_ERROR + 1);
    }
    if (size < 5)
        return 0;
    uint8_t mode = data[0];
    size_t ilen = (size_t)data[1] << 8 | data[2], tlen = (size_t)data[3] << 8 | data[4];
    data += 5;
    size -= 5;
    if (ilen > size)
        ilen = size;
    if (tlen > size - ilen)
        tlen = size - ilen;
    const uint8_t *idx = data, *tix = data + ilen, *lg = data + ilen + tlen;
    size_t llen = size - ilen - tlen;
    mkdir(pdir, 0755);
    clear_dir();
    write_file(".log", lg, llen, true);
    write_file(".index", idx, ilen, !(mode & 1));
    write_file(".timeindex", tix, tlen, !(mode & 2));
    if (mode & 8)
        run_dump(mode & 16);
    struct log_config cfg;
    log_config_defaults(&cfg);
    cfg.index_interval_bytes = 64 + (mode & 0x60);
    cfg.segment_index_bytes = 4096;
    cfg.segment_bytes = 1 << 16;
    cfg.file_delete_delay_ms = 0;
    int64_t rp = (mode & 4) ? PLOG_RECOVERY_POINT_CLEAN : (mode & 0x80) ? 0 : -1;
    struct plog *log;
    if (plog_open(pdir, "fz", 0, &cfg, rp, -1, &log) != KERR_NONE)
        return 0;
    int64_t start = plog_start_offset(log), end = plog_end_offset(log);
    if (start > end)
        abort();
    for (int64_t o = start; o <= end && o < start + 64; o++) {
        struct log_slice s;
        int rc = plog_read(log, o, 100, end, &s);
        /* After a scan every offset in range is readable; a log opened as clean is trusted
         * without a scan, so damage in its middle may only surface here, as an error. */
        if (rc != KERR_NONE && !(rp == PLOG_RECOVERY_POINT_CLEAN && rc == KERR_KAFKA_STORAGE_ERROR))
            abort();
        if (s.fd >= 0)
            close(s.fd);
    }
    int64_t off, ts;
    plog_offset_for_timestamp(log, 0, &off, &ts);
    plog_offset_for_timestamp(log, -3, &off, &ts);
    struct batch_builder b;
    batch_builder_init(&b, 1 << 16);
    batch_builder_add(&b, 1, "k", 1, "v", 1, NULL, 0);
    uint8_t *batch;
    size_t blen;
    if (batch_builder_finish(&b, 0, &batch, &blen) == 0) {
        struct log_append_info info;
        if (plog_append(log, batch, blen, 1, &info) != KERR_NONE || info.base_offset != end)
            abort();
        free(batch);
    }
    batch_builder_free(&b);
    plog_enforce_retention(log, 0);
    plog_close(log);
    /* What recovery left must open cleanly with the same end. */
    if (plog_open(pdir, "fz", 0, &cfg, PLOG_RECOVERY_POINT_CLEAN, -1, &log) != KERR_NONE)
        abort();
    if (plog_end_offset(log) != end + 1)
        abort();
    plog_close(log);
    run_dump(true);
    return 0;
}
