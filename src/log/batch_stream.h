/* batch_stream: the records of one stored batch read straight from its segment file with
 * bounded memory — decompressed a window at a time (log/inflate.h: its memory statistic
 * counts these readers too), keys, values and headers skipped unread. */
#ifndef GREGOR_LOG_BATCH_STREAM_H
#define GREGOR_LOG_BATCH_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "log/batch.h"

/* Largest snappy chunk (compressed or not): snappy cannot decompress part of a chunk. */
#define BATCH_STREAM_SNAPPY_CHUNK_MAX (16u << 20)

struct batch_stream;

/* Opens a reader over the batch h (already decoded, length checked against the file) stored
 * at pos of fd. At most max_bytes of record bytes (after decompression) are read in all: past
 * them batch_stream_next fails. Returns 0, or -1 (ENOMEM, a read error; ENOTSUP for an unknown codec). The
 * reader borrows fd. */
int batch_stream_open(struct batch_stream **out, int fd, int64_t pos, const struct batch_header *h,
                      int64_t max_bytes);
/* The next record's offset and timestamp (LogAppendTime batches: the batch max timestamp).
 * Its key, value and headers are skipped unread by the next call. 1 = one record, 0 =
 * recordsCount records read, -1 = corrupt, over max_bytes or an I/O error. */
int batch_stream_next(struct batch_stream *bs, int64_t *offset, int64_t *timestamp);
void batch_stream_close(struct batch_stream *bs);

#endif
