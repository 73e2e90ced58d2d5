/* batch: Kafka record batches (magic v2) as bytes — header decode, client-batch validation,
 * offset/epoch/LogAppendTime rewrite, record iteration (with decompression) and a builder. */
#ifndef GREGOR_LOG_BATCH_H
#define GREGOR_LOG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define BATCH_LOG_OVERHEAD 12          /* baseOffset + batchLength */
#define BATCH_HEADER_SIZE 61           /* RECORD_BATCH_OVERHEAD */
#define BATCH_MIN_LENGTH (BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) /* smallest batchLength */
#define BATCH_CRC_START 21             /* CRC-32C covers [21, end) */
#define BATCH_MAGIC_V2 2

#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20
#define BATCH_ATTR_DELETE_HORIZON 0x40

enum batch_compression {
    BATCH_COMPRESSION_NONE = 0,
    BATCH_COMPRESSION_GZIP = 1,
    BATCH_COMPRESSION_SNAPPY = 2,
    BATCH_COMPRESSION_LZ4 = 3,
    BATCH_COMPRESSION_ZSTD = 4,
};

/* Kafka's CompressionType.name: "none", "gzip", ... ("unknown" past zstd). */
const char *batch_compression_name(int codec);

struct batch_header {
    int64_t base_offset;
    int32_t length;                 /* batchLength: bytes after this field */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
};

/* Decodes the fixed header; p must hold at least BATCH_HEADER_SIZE bytes. Validates nothing. */
void batch_header_decode(const uint8_t *p, struct batch_header *h);

static inline int64_t batch_total_size(const struct batch_header *h)
{
    return (int64_t)h->length + BATCH_LOG_OVERHEAD;
}
static inline int64_t batch_last_offset(const struct batch_header *h)
{
    return h->base_offset + h->last_offset_delta;
}

/* A walk over the whole batches of a read of a partition's log (buf, len): each
 * batch_walk_next gives the next batch whose last offset is at least `from`; a torn or
 * too-short batch ends the walk (a read may stop mid-batch). Nothing else is validated. */
struct batch_walk {
    const uint8_t *buf;                /* borrowed */
    size_t len;
    size_t pos;
};

/* 1 with *h decoded and *batch its bytes (batch_total_size(h) of them), 0 at the end. */
static inline int batch_walk_next(struct batch_walk *w, int64_t from, struct batch_header *h,
                                  const uint8_t **batch)
{
    while (w->pos + BATCH_HEADER_SIZE <= w->len) {
        batch_header_decode(w->buf + w->pos, h);
        if (h->length < BATCH_MIN_LENGTH || (uint64_t)batch_total_size(h) > w->len - w->pos)
            break;
        *batch = w->buf + w->pos;
        w->pos += (size_t)batch_total_size(h);
        GREGOR_ASSERT(w->pos <= w->len);
        if (batch_last_offset(h) >= from)
            return 1;
    }
    w->pos = w->len;
    return 0;
}

/* CRC-32C of bytes [21, len) of a whole batch. */
uint32_t batch_compute_crc(const uint8_t *batch, size_t len);

/* The most bytes a produced batch's records may decompress to: past it the batch is refused
 * (MESSAGE_TOO_LARGE, so a Java producer splits it), as the readers could not decode it either. */
#define BATCH_INFLATE_MAX (256u << 20)

/* Validates one batch as a client sent it to Produce v3+ (FORMATS.md §5), in Kafka's order:
 * exactly one batch of len bytes, magic 2 (0/1: INVALID_RECORD), baseOffset 0, size <=
 * max_message_bytes, CRC, lastOffsetDelta + 1 == recordsCount > 0, no control batch, known
 * codec, baseSequence >= 0 when producerId >= 0; then every record (LogValidator): exactly
 * recordsCount records whose lengths and varints agree, offsetDeltas 0..n-1, nothing after
 * the last. Compressed records are streamed through a fixed 64 KiB window (snappy, and zstd
 * frames declaring <= 4 MiB: one block at a time; log/inflate.h), at most BATCH_INFLATE_MAX
 * bytes, zstd windows at most 2^INFLATE_ZSTD_WINDOW_LOG_MAX (MESSAGE_TOO_LARGE past either).
 * Returns KERR_NONE, KERR_MESSAGE_TOO_LARGE, KERR_CORRUPT_MESSAGE,
 * KERR_UNSUPPORTED_COMPRESSION_TYPE, KERR_INVALID_RECORD (also for a payload that does not
 * decompress: non-retriable, so the client does not resend it), or KERR_UNKNOWN_SERVER_ERROR
 * when out of memory. */
int batch_validate_client(const uint8_t *batch, size_t len, int32_t max_message_bytes);

/* Rewrites baseOffset and partitionLeaderEpoch (not CRC-covered); with log_append_time also
 * sets attribute bit 3 and maxTimestamp = now_ms and recomputes the CRC. */
void batch_assign(uint8_t *batch, size_t len, int64_t base_offset, int32_t leader_epoch,
                  bool log_append_time, int64_t now_ms);

/* ---- records inside a batch ---- */

struct batch_record {
    int64_t offset;
    int64_t timestamp;      /* LogAppendTime batches: the batch maxTimestamp, as Kafka */
    int32_t sequence;       /* -1 unless the batch has a baseSequence */
    int32_t size;           /* the record's length varint value */
    const uint8_t *key;     /* borrows from the batch or the iterator's buffer */
    int32_t key_len;        /* -1 = null */
    const uint8_t *value;
    int32_t value_len;      /* -1 = null */
    int32_t header_count;
    const uint8_t *headers; /* header_count headers, parse with batch_record_header_next */
    size_t headers_len;
};

struct batch_record_iter {
    struct batch_header h;
    const uint8_t *pos;
    const uint8_t *end;
    uint8_t *owned;        /* decompressed records, freed by batch_records_close */
    int32_t remaining;
    int32_t index;
};

/* Opens record iteration over one whole batch (len bytes), decompressing when needed into at
 * most max_decompressed bytes. Returns KERR_NONE, KERR_CORRUPT_MESSAGE or
 * KERR_UNSUPPORTED_COMPRESSION_TYPE. The batch bytes must outlive the iterator. */
int batch_records_open(struct batch_record_iter *it, const uint8_t *batch, size_t len,
                       size_t max_decompressed);
/* 1 = a record in *r, 0 = done (all recordsCount read, nothing left over), -1 = corrupt. */
int batch_records_next(struct batch_record_iter *it, struct batch_record *r);
void batch_records_close(struct batch_record_iter *it);

/* Walks a record's headers: 1 = one header out, 0 = none left, -1 = corrupt. */
int batch_record_header_next(const uint8_t **p, const uint8_t *end, const uint8_t **key,
                             int32_t *key_len, const uint8_t **value, int32_t *value_len);

/* ---- building batches (tests, internal topics, tools) ---- */

struct batch_kv_header {
    const char *key;
    const void *value;
    int32_t value_len; /* -1 = null */
};

struct batch_builder {
    uint8_t *buf;       /* owned; header space first, then records */
    size_t len;
    size_t cap;
    size_t max_bytes;   /* bound on the batch */
    int32_t count;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int16_t attributes; /* timestamp type / transactional / control bits; codec set at finish */
    int err;
};

void batch_builder_init(struct batch_builder *b, size_t max_bytes);
/* Appends a record (offsetDelta = its index); key/value may be NULL with len -1. */
int batch_builder_add(struct batch_builder *b, int64_t timestamp, const void *key,
                      int32_t key_len, const void *value, int32_t value_len,
                      const struct batch_kv_header *headers, int nheaders);
/* Finishes the batch (baseOffset 0, partitionLeaderEpoch -1), compressing the records with
 * codec; *out is malloc'ed (caller frees) and the builder is reset. */
int batch_builder_finish(struct batch_builder *b, int codec, uint8_t **out, size_t *len);
void batch_builder_free(struct batch_builder *b);
/* Compresses n bytes with codec (gzip, snappy in snappy-java's xerial framing, lz4 frame, zstd)
 * into *out (malloc'ed, caller frees even on failure). 0 or -1. */
int batch_compress(int codec, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len);

/* Zig-zag varints as Kafka records use them. 0 on success, -1 when malformed/truncated. */
int batch_varint_get(const uint8_t **p, const uint8_t *end, int32_t *out);
int batch_varlong_get(const uint8_t **p, const uint8_t *end, int64_t *out);
size_t batch_varint_put(uint8_t *p, int32_t v);   /* p needs 5 bytes */
size_t batch_varlong_put(uint8_t *p, int64_t v);  /* p needs 10 bytes */

#endif
