/* inflate: the records of one batch as a byte stream, decompressed a piece at a time with
 * bounded memory (gzip, snappy raw or xerial-framed, lz4 frame, zstd). One reader serves the
 * produce validator and the record iterator (log/batch.c, input in memory) and timestamp
 * lookups (log/batch_stream.c, input read from the segment file a window at a time). */
#ifndef GREGOR_LOG_INFLATE_H
#define GREGOR_LOG_INFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of output a streaming codec (gzip, lz4, zstd) produces at once, and of file input
 * read at once. */
#define INFLATE_WINDOW 65536
/* Largest zstd window accepted: 2^27 = 128 MiB, zstd's own default limit and what Kafka's
 * decoder takes (a Java producer at compression.zstd.level 20-22 writes windows of 2^25-2^27;
 * at the default level 3 it is 2^21). A larger one is MESSAGE_TOO_LARGE at produce. */
#define INFLATE_ZSTD_WINDOW_LOG_MAX 27
/* The 8 bytes (NUL included) that start snappy-java's xerial framing: magic, then version
 * and compatible version (4 bytes each), then chunks of a 4-byte length and a raw block. */
#define INFLATE_XERIAL_MAGIC "\x82SNAPPY"

enum inflate_result {
    INFLATE_OK = 0,
    INFLATE_CORRUPT = -1, /* the payload is corrupt or truncated */
    INFLATE_TOO_BIG = -2, /* more output than max_out, a block over block_max, a zstd window
                           * over INFLATE_ZSTD_WINDOW_LOG_MAX */
    INFLATE_FAILED = -3,  /* no memory for a window or the codec's state, or a read failed */
};

struct inflate_state;

/* A reader over the decompressed bytes. pos..end are the unread bytes of the current piece:
 * a window, a block lent whole (a snappy chunk, a zstd frame of at most 4 MiB), or the input
 * itself when uncompressed. Reading past the end or after an error fails; err is sticky. */
struct inflater {
    const uint8_t *pos, *end;
    const uint8_t *piece;        /* start of the current piece */
    uint64_t piece_offset;       /* its offset in the output */
    int err;                     /* INFLATE_OK until the codec fails or a bound is hit */
    struct inflate_state *state; /* the codec and its input, owned */
};

/* Opens a reader over len compressed bytes of codec (0..4, checked by the caller): at in
 * (borrowed), or at pos of fd (borrowed). At most max_out bytes come out in all, and a block
 * decompressed whole (a snappy chunk, its compressed bytes when gathered from the file) holds
 * at most block_max. Returns INFLATE_OK or f->err; close f either way. */
int inflater_open_memory(struct inflater *f, int codec, const uint8_t *in, size_t len,
                         uint64_t max_out, size_t block_max);
int inflater_open_file(struct inflater *f, int codec, int fd, int64_t pos, int64_t len,
                       uint64_t max_out, size_t block_max);
void inflater_close(struct inflater *f);

/* The next piece, once pos == end: false at the clean end of the stream (err INFLATE_OK)
 * or on an error (err says which). */
bool inflater_fill(struct inflater *f);

static inline bool inflater_byte(struct inflater *f, uint8_t *b)
{
    if (f->pos == f->end && !inflater_fill(f))
        return false;
    *b = *f->pos++;
    return true;
}

/* Bytes read so far. */
static inline uint64_t inflater_tell(const struct inflater *f)
{
    return f->piece_offset + (uint64_t)(f->pos - f->piece);
}

/* Zig-zag varints with batch_varint_get's and batch_varlong_get's limits. */
bool inflater_varint(struct inflater *f, int32_t *out);
bool inflater_varlong(struct inflater *f, int64_t *out);
bool inflater_skip(struct inflater *f, uint64_t n);
/* True when every byte has been read and the stream ended cleanly. */
bool inflater_at_end(struct inflater *f);

/* Most bytes one reader had allocated at once (its windows, blocks and the codec's state)
 * since the process started or the last reset: tests check that a batch inflating to
 * gigabytes costs kilobytes here. */
size_t inflater_memory_high_water(void);
void inflater_memory_high_water_reset(void);

#endif
