/* kafka_dump_compat_writer: writes partition logs with gregor's storage engine for
 * test_kafka_dump_compat.py — several segments, every codec, keys, headers, a LogAppendTime
 * topic and idempotent-producer batches — so Apache Kafka's own DumpLogSegments can judge them.
 * Usage: kafka_dump_compat_writer <logdir> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logging.h"
#include "log/batch.h"
#include "log/log.h"

static int write_partition(const char *logdir, int partition, enum log_timestamp_type tt, int batches)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/compat-%d", logdir, partition);
    struct log_config cfg;
    log_config_defaults(&cfg);
    cfg.segment_bytes = 8192;
    cfg.index_interval_bytes = 512;
    cfg.timestamp_type = tt;
    struct plog *log;
    if (plog_open(dir, "compat", partition, &cfg, -1, -1, &log) != 0)
        return -1;
    int32_t seq = 0;
    for (int i = 0; i < batches; i++) {
        struct batch_builder b;
        batch_builder_init(&b, 1 << 20);
        if (partition == 1) {
            b.producer_id = 4242;
            b.producer_epoch = 3;
            b.base_sequence = seq;
        }
        int n = 1 + i % 4;
        for (int r = 0; r < n; r++) {
            char k[32], v[64];
            snprintf(k, sizeof(k), "key-%d-%d", i, r);
            snprintf(v, sizeof(v), "value %d/%d h\xc3\xa9llo", i, r);
            struct batch_kv_header h[2] = {{"trace", "t", 1}, {"empty", NULL, -1}};
            if (batch_builder_add(&b, 1700000000000LL + i * 10 + r, r % 2 ? NULL : k,
                                  r % 2 ? -1 : (int)strlen(k), v, (int)strlen(v), h, r % 3) != 0)
                return -1;
        }
        seq += n;
        uint8_t *out;
        size_t len;
        if (batch_builder_finish(&b, i % 5, &out, &len) != 0)
            return -1;
        batch_builder_free(&b);
        if (plog_append(log, out, len, 1700000099999LL, NULL) != 0)
            return -1;
        free(out);
    }
    return plog_close(log) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <logdir>\n", argv[0]);
        return 2;
    }
    logging_set_level(LOG_LEVEL_ERROR);
    if (write_partition(argv[1], 0, LOG_TS_CREATE_TIME, 120) != 0 ||
        write_partition(argv[1], 1, LOG_TS_CREATE_TIME, 60) != 0 ||
        write_partition(argv[1], 2, LOG_TS_LOG_APPEND_TIME, 60) != 0) {
        fprintf(stderr, "writing the logs failed\n");
        return 1;
    }
    return 0;
}
