/* convert: the pre-0.11 message formats (magic 0 and 1 message sets, possibly compressed
 * wrapper messages around inner ones) to and from record batches (magic 2), as Kafka 3.x
 * converted them for Produce v0-2 (LogValidator) and Fetch v0-3 (down-conversion). */
#ifndef GREGOR_LOG_CONVERT_H
#define GREGOR_LOG_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONVERT_MAGIC_OFFSET 16       /* byte of the magic in a batch and in a legacy entry */
#define CONVERT_LOG_OVERHEAD 12       /* offset + message size before each legacy message */
#define CONVERT_MESSAGE_MIN_V0 14     /* crc, magic, attributes, key and value lengths */
#define CONVERT_MESSAGE_MIN_V1 22     /* ... and the timestamp */
#define CONVERT_ATTR_LOG_APPEND_TIME 0x08
/* The most bytes the records of one produced message set may take once converted (inner
 * messages of compressed wrappers decompressed): past it the set is MESSAGE_TOO_LARGE. The
 * converted batch is held in memory whole before the append (as Kafka's LogValidator holds
 * it), so this is the memory bound of one up-conversion. */
#define CONVERT_UP_MAX (64u << 20)

/* True when the bytes start with a legacy (magic 0 or 1) entry. */
bool convert_is_legacy(const uint8_t *set, size_t len);

/* Converts a legacy message set as a Produce v0-2 carries it into one record batch (baseOffset
 * 0, producer id -1, CreateTime; the codec of the compressed wrappers, else none) in *out
 * (malloc'ed, the caller frees), for the log to assign offsets to. Every message's CRC-32 is
 * checked (inner ones too). Magic 0 messages have no timestamp: their records get -1. Returns
 * KERR_NONE, KERR_CORRUPT_MESSAGE (bad CRC, truncated, a size below the message overhead, an
 * unknown magic, a payload that does not decompress), KERR_INVALID_RECORD (a compressed inner
 * message, an inner magic unlike its wrapper's, magic 1 inner offsets not 0..n-1, an empty
 * set), KERR_UNSUPPORTED_COMPRESSION_TYPE (zstd, only in magic 2), KERR_MESSAGE_TOO_LARGE
 * (past max_bytes converted) or KERR_UNKNOWN_SERVER_ERROR (out of memory). *records gets the
 * number of records. */
int convert_legacy_to_batch(const uint8_t *set, size_t len, size_t max_bytes, uint8_t **out,
                            size_t *out_len, int32_t *records);

/* A growable output buffer (its bound is the converter's limit, plus one message). */
struct convert_buf {
    uint8_t *data;   /* owned, free with convert_buf_free */
    size_t len, cap;
};
void convert_buf_free(struct convert_buf *b);

/* Down-converts whole record batches as read from the log (len bytes; a torn tail is ignored)
 * into a magic 0 or 1 message set in out, for Fetch v0-3: records below first_offset and
 * control batches are skipped; an uncompressed batch becomes one message per record, a
 * compressed one a wrapper of the same codec around its records (magic 1: inner offsets
 * relative, the wrapper at the last one's offset; magic 0: absolute). Headers are dropped
 * (the old formats have none). Whole messages are written while they fit in limit bytes;
 * when none fits, min_one (KIP-74, Fetch v3) writes the first whole anyway, and otherwise the
 * first is cut at limit (a partial message, as Kafka's hard limit for Fetch v0-2 gives: the
 * client reports a message larger than its fetch size). *next_offset gets the offset after
 * the last record written. Returns KERR_NONE, KERR_CORRUPT_MESSAGE (the log bytes do not
 * parse), KERR_UNSUPPORTED_COMPRESSION_TYPE (the first batch is zstd, which magic 0/1 cannot
 * carry; a later one ends the set) or KERR_UNKNOWN_SERVER_ERROR (out of memory). */
int convert_batches_to_legacy(const uint8_t *batches, size_t len, int8_t magic,
                              int64_t first_offset, size_t limit, bool min_one,
                              struct convert_buf *out, int64_t *next_offset);

/* Bytes of memory the last calls took at most (buffers held at once), for tests and
 * measurements: the down-conversion of N MB costs about N MB plus one decompressed batch. */
size_t convert_memory_high_water(void);
void convert_memory_high_water_reset(void);

#endif
