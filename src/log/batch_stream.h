/* batch_stream: the records of one stored batch read straight from its segment file with
 * bounded memory — decompressed a window at a time, keys, values and headers skipped unread. */
#ifndef GREGOR_LOG_BATCH_STREAM_H
#define GREGOR_LOG_BATCH_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "log/batch.h"

/* Bytes of decompressed output held at once, and of compressed input read at once. */
#define BATCH_STREAM_WINDOW 65536
/* Largest zstd window accepted (2^23 = 8 MiB; a level-3 producer uses at most 2 MiB, and a
 * batch below the window size makes the frame's window smaller still). */
#define BATCH_STREAM_ZSTD_WINDOW_LOG_MAX 23
/* Largest snappy chunk (compressed or not): snappy cannot decompress part of a chunk. */
#define BATCH_STREAM_SNAPPY_CHUNK_MAX (16u << 20)

struct batch_stream;

/* Opens a reader over the batch h (already decoded, length checked against the file) stored
 * at pos of fd. At most max_bytes of record bytes (after decompression) are read in all: past
 * them batch_stream_next fails. Returns 0, or -1 (ENOMEM; ENOTSUP for an unknown codec). The
 * reader borrows fd. */
int batch_stream_open(struct batch_stream **out, int fd, int64_t pos, const struct batch_header *h,
                      int64_t max_bytes);
/* The next record's offset and timestamp (LogAppendTime batches: the batch max timestamp).
 * Its key, value and headers are skipped unread by the next call. 1 = one record, 0 =
 * recordsCount records read, -1 = corrupt, over max_bytes or an I/O error. */
int batch_stream_next(struct batch_stream *bs, int64_t *offset, int64_t *timestamp);
void batch_stream_close(struct batch_stream *bs);

/* Most bytes one reader had allocated at once (its windows and the codec's state) since the
 * process started: tests check that a batch inflating to gigabytes costs kilobytes here. */
size_t batch_stream_memory_high_water(void);

#endif
