/* dump_log: `gregor dump-log`, Kafka's kafka.tools.DumpLogSegments for .log, .index,
 * .timeindex and .txnindex files, printing Kafka 4.x's line formats so the two can be diffed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/crc32c.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/fileio.h"
#include "log/index.h"
#include "txn/txn_log.h"

#define DUMP_MAX_FILES 4096
#define DUMP_HEADER_UP_TO_MAGIC 17   /* offset + length + partitionLeaderEpoch + magic */
#define DUMP_LEGACY_MIN_SIZE 14      /* LegacyRecord.RECORD_OVERHEAD_V0 */
#define DUMP_MAX_BATCH (1u << 30)

struct dump_opts {
    bool print_data;
    bool deep;
    bool verify_only;
    bool index_sanity;
    bool skip_metadata;
    bool txn_log_decoder; /* --transaction-log-decoder: __transaction_state keys and values */
    int64_t max_message_size;
    int64_t max_bytes;
};

/* Problems Kafka's tool collects and prints on stderr after all files. */
struct dump_pair {
    int64_t a, b;
};
struct dump_report {
    char *file;               /* absolute path, owned */
    int kind;                 /* 0 index mismatch, 1 ts mismatch, 2 ts out of order,
                                 3 shallow offset not found, 4 non-consecutive offsets */
    struct dump_pair *pairs;
    int n, cap;
};
struct dump_reports {
    struct dump_report *r;
    int n, cap;
};

static void report_add(struct dump_reports *rs, const char *file, int kind, int64_t a, int64_t b)
{
    struct dump_report *r = NULL;
    for (int i = 0; i < rs->n; i++)
        if (rs->r[i].kind == kind && strcmp(rs->r[i].file, file) == 0)
            r = &rs->r[i];
    if (r == NULL) {
        if (rs->n == rs->cap) {
            rs->cap = rs->cap ? rs->cap * 2 : 8;
            rs->r = realloc(rs->r, (size_t)rs->cap * sizeof(*rs->r));
            GREGOR_ASSERT(rs->r != NULL);
        }
        r = &rs->r[rs->n++];
        memset(r, 0, sizeof(*r));
        r->file = strdup(file);
        r->kind = kind;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->pairs = realloc(r->pairs, (size_t)r->cap * sizeof(*r->pairs));
        GREGOR_ASSERT(r->pairs != NULL);
    }
    r->pairs[r->n++] = (struct dump_pair){a, b};
}

static void reports_print(struct dump_reports *rs)
{
    /* Kafka's order: index mismatches, time index errors, then non-consecutive offsets. */
    static const int order[] = {0, 1, 2, 3, 4};
    for (size_t o = 0; o < ARRAY_LEN(order); o++) {
        for (int i = 0; i < rs->n; i++) {
            struct dump_report *r = &rs->r[i];
            if (r->kind != order[o])
                continue;
            switch (r->kind) {
            case 0:
                fprintf(stderr, "Mismatches in :%s\n", r->file);
                for (int k = r->n - 1; k >= 0; k--)
                    fprintf(stderr, "  Index offset: %" PRId64 ", log offset: %" PRId64 "\n",
                            r->pairs[k].a, r->pairs[k].b);
                break;
            case 1:
                fprintf(stderr, "Found timestamp mismatch in :%s\n", r->file);
                for (int k = 0; k < r->n; k++)
                    fprintf(stderr, "  Index timestamp: %" PRId64 ", log timestamp: %" PRId64 "\n",
                            r->pairs[k].a, r->pairs[k].b);
                break;
            case 2:
                fprintf(stderr, "Found out of order timestamp in :%s\n", r->file);
                for (int k = 0; k < r->n; k++)
                    fprintf(stderr, "  Index timestamp: %" PRId64 ", Previously indexed timestamp: %" PRId64 "\n",
                            r->pairs[k].a, r->pairs[k].b);
                break;
            case 3:
                fprintf(stderr, "The following indexed offsets are not found in the log.\n");
                for (int k = 0; k < r->n; k++)
                    fprintf(stderr, "Indexed offset: %" PRId64 ", found log offset: %" PRId64 "\n",
                            r->pairs[k].a, r->pairs[k].b);
                break;
            case 4:
                /* Kafka 4.0 prepends to a list: newest first. */
                fprintf(stderr, "Non-consecutive offsets in %s\n", r->file);
                for (int k = r->n - 1; k >= 0; k--)
                    fprintf(stderr, "  %" PRId64 " is followed by %" PRId64 "\n", r->pairs[k].a, r->pairs[k].b);
                break;
            }
        }
    }
    for (int i = 0; i < rs->n; i++) {
        free(rs->r[i].file);
        free(rs->r[i].pairs);
    }
    free(rs->r);
}

/* ---- file helpers ---- */

struct dfile {
    int fd;
    int64_t size;
};

static int dfile_open(const char *path, struct dfile *f)
{
    f->fd = fio_open(path, O_RDONLY, 0);
    if (f->fd < 0) {
        fprintf(stderr, "%s (%s)\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fio_fstat(f->fd, &st) < 0) {
        fprintf(stderr, "%s (%s)\n", path, strerror(errno));
        fio_close(f->fd);
        return -1;
    }
    f->size = st.st_size;
    return 0;
}

static int dfile_read(struct dfile *f, int64_t pos, void *buf, size_t n)
{
    return fio_pread_full(f->fd, buf, n, (off_t)pos) == (ssize_t)n ? 0 : -1;
}

static void abs_path(const char *path, char *out, size_t n)
{
    if (path[0] == '/') {
        snprintf(out, n, "%s", path);
        return;
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        snprintf(out, n, "%s", path);
    else
        snprintf(out, n, "%.2000s/%.2000s", cwd, path);
}

/* Java's Long.parseLong of the file name up to its first '.'. */
static int name_offset(const char *path, int64_t *out)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strchr(base, '.');
    size_t n = dot ? (size_t)(dot - base) : strlen(base);
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp)) {
        fprintf(stderr, "For input string: \"%.*s\"\n", (int)(n < 200 ? n : 200), base);
        return -1;
    }
    memcpy(tmp, base, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || (tmp[0] != '-' && tmp[0] != '+' && (tmp[0] < '0' || tmp[0] > '9'))) {
        fprintf(stderr, "For input string: \"%s\"\n", tmp);
        return -1;
    }
    *out = v;
    return 0;
}

static void sibling_path(const char *path, const char *suffix, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    size_t dirlen = base ? (size_t)(base - path) + 1 : 0;
    base = base ? base + 1 : path;
    const char *dot = strchr(base, '.');
    size_t bl = dot ? (size_t)(dot - base) : strlen(base);
    snprintf(out, n, "%.*s%.*s%s", (int)dirlen, path, (int)bl, base, suffix);
}

/* ---- batches in a file (FileLogInputStream's rules) ---- */

struct fbatch {
    int64_t pos;
    int64_t size;     /* LOG_OVERHEAD + length */
    int8_t magic;
    struct batch_header h; /* v2 only */
};

/* 1 = a batch, 0 = no more (a short tail), -1 = CorruptRecordException (message printed). */
static int next_batch(struct dfile *f, int64_t pos, int64_t end, int64_t max_size, const char *path,
                      struct fbatch *b)
{
    if (pos >= end - DUMP_HEADER_UP_TO_MAGIC)
        return 0;
    uint8_t hdr[BATCH_HEADER_SIZE];
    if (dfile_read(f, pos, hdr, DUMP_HEADER_UP_TO_MAGIC) < 0) {
        fprintf(stderr, "Failed to read log header from file %s\n", path);
        return -1;
    }
    int32_t length = (int32_t)be32_get(hdr + 8);
    if (length < DUMP_LEGACY_MIN_SIZE) {
        fprintf(stderr, "Found record size %d smaller than minimum record overhead (%d) in file %s.\n",
                length, DUMP_LEGACY_MIN_SIZE, path);
        return -1;
    }
    if (length > max_size) {
        fprintf(stderr, "Found record size %d larger than the maximum allowed record size (%" PRId64 ") in file %s.\n",
                length, max_size, path);
        return -1;
    }
    if (pos > end - BATCH_LOG_OVERHEAD - length)
        return 0;
    b->pos = pos;
    b->size = (int64_t)length + BATCH_LOG_OVERHEAD;
    b->magic = (int8_t)hdr[16];
    if (b->magic < 0 || b->magic > 2) {
        fprintf(stderr, "Invalid magic found in record: %d\n", b->magic);
        return -1;
    }
    if (b->magic == 2) {
        if (b->size < BATCH_HEADER_SIZE) {
            fprintf(stderr, "Record batch size %" PRId64 " is smaller than the minimum size %d\n",
                    b->size, BATCH_HEADER_SIZE);
            return -1;
        }
        if (dfile_read(f, pos, hdr, BATCH_HEADER_SIZE) < 0)
            return -1;
        batch_header_decode(hdr, &b->h);
    } else {
        memset(&b->h, 0, sizeof(b->h));
        b->h.base_offset = (int64_t)be64_get(hdr);
    }
    return 1;
}

static uint8_t *load_batch(struct dfile *f, const struct fbatch *b)
{
    if (b->size > (int64_t)DUMP_MAX_BATCH)
        return NULL;
    uint8_t *buf = malloc((size_t)b->size);
    if (buf != NULL && dfile_read(f, b->pos, buf, (size_t)b->size) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static bool batch_is_valid(struct dfile *f, const struct fbatch *b)
{
    uint32_t crc = 0;
    uint8_t chunk[65536];
    int64_t off = b->pos + BATCH_CRC_START, left = b->size - BATCH_CRC_START;
    while (left > 0) {
        size_t n = left > (int64_t)sizeof(chunk) ? sizeof(chunk) : (size_t)left;
        if (dfile_read(f, off, chunk, n) < 0)
            return false;
        crc = crc32c(crc, chunk, n);
        off += (int64_t)n;
        left -= (int64_t)n;
    }
    return crc == b->h.crc;
}

static const char *ts_type(const struct batch_header *h)
{
    return (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) ? "LogAppendTime" : "CreateTime";
}

static int32_t last_sequence(const struct batch_header *h)
{
    if (h->base_sequence < 0)
        return -1;
    int64_t s = (int64_t)h->base_sequence + h->last_offset_delta;
    return (int32_t)(s > INT32_MAX ? s - INT32_MAX - 1 : s);
}

static void print_batch_line(struct dfile *f, const struct fbatch *b, int64_t position)
{
    const struct batch_header *h = &b->h;
    if (b->magic == 2) {
        char horizon[48];
        if (h->attributes & BATCH_ATTR_DELETE_HORIZON)
            snprintf(horizon, sizeof(horizon), "OptionalLong[%" PRId64 "]", h->base_timestamp);
        else
            snprintf(horizon, sizeof(horizon), "OptionalLong.empty");
        printf("baseOffset: %" PRId64 " lastOffset: %" PRId64 " count: %d baseSequence: %d "
               "lastSequence: %d producerId: %" PRId64 " producerEpoch: %d partitionLeaderEpoch: %d "
               "isTransactional: %s isControl: %s deleteHorizonMs: %s",
               h->base_offset, batch_last_offset(h), h->records_count, h->base_sequence,
               last_sequence(h), h->producer_id, h->producer_epoch, h->partition_leader_epoch,
               (h->attributes & BATCH_ATTR_TRANSACTIONAL) ? "true" : "false",
               (h->attributes & BATCH_ATTR_CONTROL) ? "true" : "false", horizon);
        printf(" position: %" PRId64 " %s: %" PRId64 " size: %" PRId64 " magic: 2 compresscodec: %s "
               "crc: %u isvalid: %s\n",
               position, ts_type(h), h->max_timestamp, b->size,
               batch_compression_name(h->attributes & BATCH_ATTR_COMPRESSION_MASK), h->crc,
               batch_is_valid(f, b) ? "true" : "false");
        return;
    }
    /* Legacy (magic 0/1) message: offset, size, crc (CRC-32), magic, attributes, [timestamp]. */
    uint8_t m[26] = {0};
    size_t want = b->magic == 1 ? 26 : 18;
    dfile_read(f, b->pos, m, want);
    uint32_t crc = be32_get(m + 12);
    int attrs = m[17];
    int64_t ts = b->magic == 1 ? (int64_t)be64_get(m + 18) : -1;
    const char *type = b->magic == 0 ? "NoTimestampType" : (attrs & 8) ? "LogAppendTime" : "CreateTime";
    printf("offset: %" PRId64 " position: %" PRId64 " %s: %" PRId64 " size: %" PRId64
           " magic: %d compresscodec: %s crc: %u isvalid: %s\n",
           b->h.base_offset, position, type, ts, b->size, b->magic,
           batch_compression_name(attrs & 7), crc, "true");
}

/* Java's new String(bytes, UTF_8): invalid sequences become U+FFFD. */
static void print_utf8(const uint8_t *p, int32_t n)
{
    int32_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (int k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xc0) == 0x80;
        if (ok && len == 2 && c < 0xc2)
            ok = false;
        if (ok) {
            fwrite(p + i, 1, (size_t)len, stdout);
            i += len;
        } else {
            fputs("\xef\xbf\xbd", stdout);
            i++;
        }
    }
}

static void print_control(const struct batch_record *r)
{
    static const char *names[] = {"ABORT", "COMMIT", "LEADER_CHANGE", "SNAPSHOT_HEADER",
                                  "SNAPSHOT_FOOTER", "KRAFT_VERSION", "KRAFT_VOTERS"};
    if (r->key == NULL || r->key_len < 4) {
        printf(" controlType: UNKNOWN(-1)");
        return;
    }
    int16_t type = (int16_t)be16_get(r->key + 2);
    if ((type == 0 || type == 1) && r->value != NULL && r->value_len >= 6) {
        printf(" endTxnMarker: %s coordinatorEpoch: %d", names[type], (int32_t)be32_get(r->value + 2));
        return;
    }
    if (type >= 0 && type < (int16_t)ARRAY_LEN(names))
        printf(" controlType: %s(%d)", names[type], type);
    else
        printf(" controlType: UNKNOWN(%d)", type);
}

/* A JSON string as Jackson writes it: quotes, backslash and control characters escaped. */
static void print_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\b': fputs("\\b", stdout); break;
        case '\f': fputs("\\f", stdout); break;
        default:
            if (*p < 0x20)
                printf("\\u%04X", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

/* Kafka's TransactionLogMessageParser: the key and value as the JSON of the generated
 * TransactionLogKey/TransactionLogValue (version first, the tagged v1 fields only when set).
 * Returns false when the bytes are not a transaction log record (printed as plain data then). */
static bool print_txn_log_record(const struct batch_record *r, const char *prefix)
{
    struct arena arena;
    arena_init(&arena, TXN_LOG_RECORD_MAX_BYTES * 4);
    const char *id = NULL;
    int key = r->key ? txn_log_decode_key(r->key, (size_t)r->key_len, &arena, &id) : -1;
    if (key == 1) { /* a key version Kafka does not know: it says so and prints no payload */
        printf("%skey: Unknown record type %d at offset %" PRId64 ", skipping.", prefix,
               (int16_t)be16_get(r->key), r->offset);
        arena_reset(&arena);
        return true;
    }
    struct txn_log_value v;
    bool ok = key == 0 && (r->value == NULL ||
                           txn_log_decode_value(r->value, (size_t)r->value_len, &arena, &v) == 0);
    if (!ok) {
        arena_reset(&arena);
        return false;
    }
    int16_t key_version = (int16_t)be16_get(r->key);
    printf("%skey: {\"type\":\"%d\",\"data\":{\"transactionalId\":", prefix, key_version);
    print_json_string(id);
    fputs("}}", stdout);
    if (r->value == NULL) {
        fputs(" payload: <DELETE>", stdout);
        arena_reset(&arena);
        return true;
    }
    int16_t version = (int16_t)be16_get(r->value);
    printf(" payload: {\"version\":\"%d\",\"data\":{\"producerId\":%" PRId64, version, v.producer_id);
    if (version >= 1 && v.prev_producer_id != -1)
        printf(",\"previousProducerId\":%" PRId64, v.prev_producer_id);
    if (version >= 1 && v.next_producer_id != -1)
        printf(",\"nextProducerId\":%" PRId64, v.next_producer_id);
    printf(",\"producerEpoch\":%d,\"transactionTimeoutMs\":%d,\"transactionStatus\":%d,"
           "\"transactionPartitions\":", v.producer_epoch, v.timeout_ms, v.status);
    if (v.n_topics < 0)
        fputs("null", stdout);
    else {
        putchar('[');
        for (int32_t t = 0; t < v.n_topics; t++) {
            fputs(t ? ",{\"topic\":" : "{\"topic\":", stdout);
            print_json_string(v.topics[t].topic);
            fputs(",\"partitionIds\":[", stdout);
            for (int32_t k = 0; k < v.topics[t].n_partitions; k++)
                printf(k ? ",%d" : "%d", v.topics[t].partitions[k]);
            fputs("]}", stdout);
        }
        putchar(']');
    }
    printf(",\"transactionLastUpdateTimestampMs\":%" PRId64 ",\"transactionStartTimestampMs\":%" PRId64,
           v.last_update_ms, v.start_ms);
    if (version >= 1 && v.client_txn_version != 0)
        printf(",\"clientTransactionVersion\":%d", v.client_txn_version);
    fputs("}}", stdout);
    arena_reset(&arena);
    return true;
}

static int dump_records(struct dfile *f, const struct fbatch *b, const struct dump_opts *o,
                        const char *apath, int64_t *last_offset, struct dump_reports *rs)
{
    if (b->magic != 2)
        return 0; /* legacy deep iteration: not supported (Kafka 4 cannot write it either) */
    uint8_t *buf = load_batch(f, b);
    struct batch_record_iter it;
    if (buf == NULL || batch_records_open(&it, buf, (size_t)b->size, DUMP_MAX_BATCH) != 0) {
        fprintf(stderr, "Record batch at position %" PRId64 " could not be decompressed or read\n", b->pos);
        free(buf);
        return -1;
    }
    bool control = (b->h.attributes & BATCH_ATTR_CONTROL) != 0;
    struct batch_record r;
    int k;
    while ((k = batch_records_next(&it, &r)) == 1) {
        /* Kafka 4.0 (Scala DumpLogSegments): the first record of a file only sets the start. */
        if (*last_offset != -1 && r.offset != *last_offset + 1)
            report_add(rs, apath, 4, *last_offset, r.offset);
        *last_offset = r.offset;
        if (!o->skip_metadata) {
            printf("| offset: %" PRId64 " %s: %" PRId64 " keySize: %d valueSize: %d sequence: %d headerKeys: [",
                   r.offset, ts_type(&b->h), r.timestamp, r.key_len, r.value_len, r.sequence);
            const uint8_t *hp = r.headers, *hk, *hv;
            int32_t hkl, hvl;
            bool first = true;
            while (batch_record_header_next(&hp, r.headers + r.headers_len, &hk, &hkl, &hv, &hvl) == 1) {
                if (!first)
                    putchar(',');
                print_utf8(hk, hkl);
                first = false;
            }
            putchar(']');
            if (control)
                print_control(&r);
        }
        if (o->print_data && !control) {
            const char *prefix = o->skip_metadata ? "| " : " ";
            if (o->txn_log_decoder && print_txn_log_record(&r, prefix)) {
                putchar('\n');
                continue;
            }
            if (r.key != NULL) {
                printf("%skey: ", prefix);
                print_utf8(r.key, r.key_len);
            }
            if (r.value != NULL) {
                printf(" payload: "); /* Kafka 4.0 always uses a plain space here */
                print_utf8(r.value, r.value_len);
            }
        }
        putchar('\n');
    }
    batch_records_close(&it);
    free(buf);
    if (k < 0) {
        fprintf(stderr, "Found invalid record in batch at position %" PRId64 "\n", b->pos);
        return -1;
    }
    return 0;
}

static int dump_log_file(const char *path, const struct dump_opts *o, struct dump_reports *rs)
{
    int64_t start;
    if (name_offset(path, &start) < 0)
        return -1;
    printf("Log starting offset: %" PRId64 "\n", start);
    struct dfile f;
    if (dfile_open(path, &f) < 0)
        return -1;
    char apath[PATH_MAX];
    abs_path(path, apath, sizeof(apath));
    int64_t end = f.size < o->max_bytes ? f.size : o->max_bytes;
    int64_t valid = 0, last_offset = -1;
    int rc = 0;
    struct fbatch b;
    int r;
    while ((r = next_batch(&f, valid, end, INT32_MAX, path, &b)) == 1) {
        print_batch_line(&f, &b, valid);
        if (o->deep && dump_records(&f, &b, o, apath, &last_offset, rs) < 0) {
            rc = -1;
            break;
        }
        valid += b.size;
    }
    if (r < 0)
        rc = -1;
    if (rc == 0 && end - valid > 0 && o->max_bytes == INT32_MAX) {
        const char *base = strrchr(path, '/');
        printf("Found %" PRId64 " invalid bytes at the end of %s\n", end - valid, base ? base + 1 : path);
    }
    fio_close(f.fd);
    return rc;
}

/* Opens an index file the way Kafka's read-only OffsetIndex/TimeIndex do: entries = len/size. */
static int open_index(const char *path, enum index_kind kind, int64_t base, struct index *ix)
{
    bool created;
    struct stat st;
    if (fio_stat(path, &st) < 0) {
        fprintf(stderr, "%s (%s)\n", path, strerror(errno));
        return -1;
    }
    if (index_open(ix, kind, path, base, INT32_MAX, &created) < 0) {
        fprintf(stderr, "%s (%s)\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int dump_index_file(const char *path, const struct dump_opts *o, struct dump_reports *rs)
{
    int64_t base;
    if (name_offset(path, &base) < 0)
        return -1;
    char logp[PATH_MAX], apath[PATH_MAX];
    sibling_path(path, ".log", logp, sizeof(logp));
    abs_path(path, apath, sizeof(apath));
    struct dfile f;
    if (dfile_open(logp, &f) < 0)
        return -1;
    struct index ix;
    if (open_index(path, INDEX_OFFSET, base, &ix) < 0) {
        fio_close(f.fd);
        return -1;
    }
    int rc = 0;
    if (ix.entries == 0) {
        printf("%s is empty.\n", path);
        goto out;
    }
    if (o->index_sanity) {
        if (ix.last_offset < base) {
            fprintf(stderr, "Corrupt index found, index file (%s) has non-zero size but the last offset is %" PRId64
                    " which is less than the base offset %" PRId64 ".\n", apath, ix.last_offset, base);
            rc = -1;
        } else if (ix.file_len % OFFSET_INDEX_ENTRY_SIZE != 0) {
            fprintf(stderr, "Index file %s is corrupt, found %" PRId64
                    " bytes which is neither positive nor a multiple of 8.\n", apath, ix.file_len);
            rc = -1;
        } else {
            printf("%s passed sanity check.\n", path);
        }
        goto out;
    }
    for (int32_t i = 0; i < ix.entries; i++) {
        struct index_offset_entry e;
        if (index_offset_entry(&ix, i, &e) < 0) {
            rc = -1;
            break;
        }
        if (e.offset == base && i > 0)
            break; /* the zero-filled tail of a preallocated index */
        struct fbatch b;
        int64_t end = e.position + o->max_message_size;
        if (end > f.size || end < 0)
            end = f.size;
        if (e.position < 0 || next_batch(&f, e.position, end, INT32_MAX, logp, &b) != 1) {
            fprintf(stderr, "No batch found at position %d of %s (index entry %d)\n", e.position, logp, i);
            rc = -1;
            break;
        }
        int64_t last = b.magic == 2 ? batch_last_offset(&b.h) : b.h.base_offset;
        if (last != e.offset)
            report_add(rs, apath, 0, e.offset, last);
        if (!o->verify_only)
            printf("offset: %" PRId64 " position: %d\n", e.offset, e.position);
    }
out:
    index_close(&ix);
    fio_close(f.fd);
    return rc;
}

static int batch_max_record_timestamp(struct dfile *f, const struct fbatch *b, int64_t *max)
{
    *max = -1;
    if (b->magic != 2)
        return 0;
    uint8_t *buf = load_batch(f, b);
    struct batch_record_iter it;
    if (buf == NULL || batch_records_open(&it, buf, (size_t)b->size, DUMP_MAX_BATCH) != 0) {
        free(buf);
        return -1;
    }
    struct batch_record r;
    int k;
    while ((k = batch_records_next(&it, &r)) == 1)
        if (r.timestamp > *max)
            *max = r.timestamp;
    batch_records_close(&it);
    free(buf);
    return k < 0 ? -1 : 0;
}

static int dump_time_index_file(const char *path, const struct dump_opts *o, struct dump_reports *rs)
{
    int64_t base;
    if (name_offset(path, &base) < 0)
        return -1;
    char logp[PATH_MAX], idxp[PATH_MAX], apath[PATH_MAX];
    sibling_path(path, ".log", logp, sizeof(logp));
    sibling_path(path, ".index", idxp, sizeof(idxp));
    abs_path(path, apath, sizeof(apath));
    struct dfile f;
    if (dfile_open(logp, &f) < 0)
        return -1;
    struct index ix, ti;
    if (open_index(idxp, INDEX_OFFSET, base, &ix) < 0) {
        fio_close(f.fd);
        return -1;
    }
    if (open_index(path, INDEX_TIME, base, &ti) < 0) {
        index_close(&ix);
        fio_close(f.fd);
        return -1;
    }
    int rc = 0;
    if (o->index_sanity) {
        struct index_time_entry first;
        if (ti.entries > 0 && index_time_entry(&ti, 0, &first) == 0 && ti.last_value < first.timestamp) {
            fprintf(stderr, "Corrupt time index found, time index file (%s) has non-zero size but the last timestamp is %"
                    PRId64 " which is less than the first timestamp %" PRId64 "\n", apath, ti.last_value, first.timestamp);
            rc = -1;
        } else if (ti.entries > 0 && ti.last_offset < base) {
            fprintf(stderr, "Corrupt time index found, time index file (%s) has non-zero size but the last offset is %"
                    PRId64 " which is less than the first offset %" PRId64 "\n", apath, ti.last_offset, base);
            rc = -1;
        } else if (ti.file_len % TIME_INDEX_ENTRY_SIZE != 0) {
            fprintf(stderr, "Time index file %s is corrupt, found %" PRId64
                    " bytes which is neither positive nor a multiple of 12.\n", apath, ti.file_len);
            rc = -1;
        } else {
            printf("%s passed sanity check.\n", path);
        }
        goto out;
    }
    int64_t prev = -1;
    for (int32_t i = 0; i < ti.entries; i++) {
        struct index_time_entry e;
        if (index_time_entry(&ti, i, &e) < 0) {
            rc = -1;
            break;
        }
        if (e.offset == base && i > 0)
            break;
        struct index_offset_entry oe;
        if (index_offset_lookup(&ix, e.offset, &oe) < 0) {
            rc = -1;
            break;
        }
        int64_t pos = oe.position;
        struct fbatch b;
        int r;
        bool found = false;
        while ((r = next_batch(&f, pos, f.size, INT32_MAX, logp, &b)) == 1) {
            int64_t last = b.magic == 2 ? batch_last_offset(&b.h) : b.h.base_offset;
            if (last >= e.offset) {
                found = true;
                if (last != e.offset) {
                    report_add(rs, apath, 3, e.offset, last);
                } else {
                    int64_t max;
                    if (batch_max_record_timestamp(&f, &b, &max) < 0) {
                        fprintf(stderr, "Found invalid record in batch at position %" PRId64 "\n", b.pos);
                        rc = -1;
                        goto out;
                    }
                    if (max != e.timestamp)
                        report_add(rs, apath, 1, e.timestamp, max);
                    if (prev >= e.timestamp)
                        report_add(rs, apath, 2, e.timestamp, prev);
                }
                break;
            }
            pos += b.size;
        }
        if (r < 0) {
            rc = -1;
            break;
        }
        if (!found)
            report_add(rs, apath, 3, e.offset, -1);
        if (!o->verify_only)
            printf("timestamp: %" PRId64 " offset: %" PRId64 "\n", e.timestamp, e.offset);
        prev = e.timestamp;
    }
out:
    index_close(&ti);
    index_close(&ix);
    fio_close(f.fd);
    return rc;
}

static int dump_txn_index_file(const char *path)
{
    struct dfile f;
    if (dfile_open(path, &f) < 0)
        return -1;
    for (int64_t pos = 0; pos + 34 <= f.size; pos += 34) {
        uint8_t e[34];
        if (dfile_read(&f, pos, e, sizeof(e)) < 0)
            break;
        printf("version: %d producerId: %" PRId64 " firstOffset: %" PRId64 " lastOffset: %" PRId64
               " lastStableOffset: %" PRId64 "\n",
               (int16_t)be16_get(e), (int64_t)be64_get(e + 2), (int64_t)be64_get(e + 10),
               (int64_t)be64_get(e + 18), (int64_t)be64_get(e + 26));
    }
    fio_close(f.fd);
    return 0;
}

static void dump_usage(FILE *out)
{
    fputs("This tool helps to parse a log file and dump its contents to the console, useful for "
          "debugging a seemingly corrupt log segment.\n"
          "Option                     Description\n"
          "------                     -----------\n"
          "--deep-iteration           If set, uses deep instead of shallow iteration. Automatically\n"
          "                             set if print-data-log is enabled.\n"
          "--files <file1, file2, ...> REQUIRED: The comma separated list of data and index log\n"
          "                             files to be dumped.\n"
          "--help                     Print usage information.\n"
          "--index-sanity-check       If set, just checks the index sanity without printing its\n"
          "                             content.\n"
          "--max-bytes <size>         Limit the amount of total batches read in bytes (default:\n"
          "                             2147483647)\n"
          "--max-message-size <size>  Size of largest message. (default: 5242880)\n"
          "--print-data-log           If set, printing the messages content when dumping data logs.\n"
          "--skip-record-metadata     Skip metadata when printing records.\n"
          "--transaction-log-decoder  If set, log data will be parsed as transaction metadata from\n"
          "                             the __transaction_state topic.\n"
          "--verify-index-only        If set, just verify the index log without printing its content.\n",
          out);
}

static bool parse_int_arg(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || *s == '\0' || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = v;
    return true;
}

int cli_dump_log(int argc, char **argv)
{
    struct dump_opts o = {.max_message_size = 5 * 1024 * 1024, .max_bytes = INT32_MAX};
    const char *files = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i == 0 && strncmp(a, "--", 2) != 0)
            continue; /* the subcommand name */
        const char *val = NULL;
        char name[64];
        const char *eq = strchr(a, '=');
        if (eq != NULL && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
            a = name;
        }
        bool needs = strcmp(a, "--files") == 0 || strcmp(a, "--max-message-size") == 0 ||
                     strcmp(a, "--max-bytes") == 0;
        if (needs && val == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "Option %s requires an argument\n", a);
                return 1;
            }
            val = argv[++i];
        }
        if (strcmp(a, "--files") == 0) {
            files = val;
        } else if (strcmp(a, "--max-message-size") == 0) {
            if (!parse_int_arg(val, &o.max_message_size)) {
                fprintf(stderr, "Cannot parse argument '%s' of option max-message-size\n", val);
                return 1;
            }
        } else if (strcmp(a, "--max-bytes") == 0) {
            if (!parse_int_arg(val, &o.max_bytes)) {
                fprintf(stderr, "Cannot parse argument '%s' of option max-bytes\n", val);
                return 1;
            }
        } else if (strcmp(a, "--print-data-log") == 0) {
            o.print_data = true;
        } else if (strcmp(a, "--deep-iteration") == 0) {
            o.deep = true;
        } else if (strcmp(a, "--verify-index-only") == 0) {
            o.verify_only = true;
        } else if (strcmp(a, "--index-sanity-check") == 0) {
            o.index_sanity = true;
        } else if (strcmp(a, "--skip-record-metadata") == 0) {
            o.skip_metadata = true;
        } else if (strcmp(a, "--transaction-log-decoder") == 0) {
            o.txn_log_decoder = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            dump_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "%s is not a recognized option\n", a);
            dump_usage(stderr);
            return 1;
        }
    }
    if (files == NULL) {
        fprintf(stderr, "Missing required argument \"[files]\"\n");
        dump_usage(stderr);
        return 1;
    }
    if (o.txn_log_decoder) /* as Kafka: a decoder prints the data */
        o.print_data = true;
    if (o.print_data)
        o.deep = true;
    char *list = strdup(files);
    if (list == NULL)
        return 1;
    struct dump_reports rs = {0};
    int rc = 0, nfiles = 0;
    char *save = NULL;
    for (char *file = strtok_r(list, ",", &save); file != NULL && rc == 0 && nfiles < DUMP_MAX_FILES;
         file = strtok_r(NULL, ",", &save), nfiles++) {
        printf("Dumping %s\n", file);
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        const char *dot = strrchr(base, '.');
        const char *suffix = dot ? dot : "";
        int r = 0;
        if (strcmp(suffix, ".log") == 0)
            r = dump_log_file(file, &o, &rs);
        else if (strcmp(suffix, ".index") == 0)
            r = dump_index_file(file, &o, &rs);
        else if (strcmp(suffix, ".timeindex") == 0)
            r = dump_time_index_file(file, &o, &rs);
        else if (strcmp(suffix, ".txnindex") == 0)
            r = dump_txn_index_file(file);
        else
            fprintf(stderr, "Ignoring unknown file %s\n", file);
        fflush(stdout);
        if (r < 0)
            rc = 1; /* Kafka stops at the first exception */
    }
    free(list);
    if (rc == 0)
        reports_print(&rs); /* Kafka prints them only when no file threw */
    else
        for (int i = 0; i < rs.n; i++) {
            free(rs.r[i].file);
            free(rs.r[i].pairs);
        }
    if (rc != 0)
        free(rs.r);
    fflush(stdout);
    return rc;
}
