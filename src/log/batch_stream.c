/* batch_stream: one batch's records read from its segment file through the inflater
 * (log/inflate.c: 64 KiB windows in and out), so a timestamp lookup in a batch that inflates to
 * gigabytes holds kilobytes (issue 12 item 8). */
#include "log/batch_stream.h"

#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "log/inflate.h"

struct batch_stream {
    struct batch_header h;
    struct inflater f;
    int32_t remaining; /* records left to read */
    uint64_t skip;     /* the rest of the last record returned: skipped on the next call */
};

int batch_stream_next(struct batch_stream *bs, int64_t *offset, int64_t *timestamp)
{
    if (bs->remaining <= 0)
        return 0;
    /* Key, value and headers of the previous record are skipped only now: a caller that stops
     * at a record never streams through its value. */
    if (!inflater_skip(&bs->f, bs->skip))
        return -1;
    bs->skip = 0;
    int32_t len, offset_delta;
    int64_t ts_delta;
    uint8_t attributes;
    if (!inflater_varint(&bs->f, &len) || len < 3)
        return -1;
    uint64_t start = inflater_tell(&bs->f);
    if (!inflater_byte(&bs->f, &attributes) || !inflater_varlong(&bs->f, &ts_delta) ||
        !inflater_varint(&bs->f, &offset_delta))
        return -1;
    uint64_t used = inflater_tell(&bs->f) - start;
    if (used > (uint64_t)len)
        return -1;
    bs->skip = (uint64_t)len - used;
    *offset = (int64_t)((uint64_t)bs->h.base_offset + (uint64_t)(int64_t)offset_delta);
    if (bs->h.attributes & BATCH_ATTR_LOG_APPEND_TIME)
        *timestamp = bs->h.max_timestamp;
    else
        *timestamp = (int64_t)((uint64_t)bs->h.base_timestamp + (uint64_t)ts_delta);
    bs->remaining--;
    return 1;
}

int batch_stream_open(struct batch_stream **out, int fd, int64_t pos, const struct batch_header *h,
                      int64_t max_bytes)
{
    *out = NULL;
    GREGOR_ASSERT(h->length >= BATCH_MIN_LENGTH && max_bytes >= 0);
    int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (codec > BATCH_COMPRESSION_ZSTD) {
        errno = ENOTSUP;
        return -1;
    }
    struct batch_stream *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return -1;
    bs->h = *h;
    bs->remaining = h->records_count;
    if (inflater_open_file(&bs->f, codec, fd, pos + BATCH_HEADER_SIZE,
                           batch_total_size(h) - BATCH_HEADER_SIZE, (uint64_t)max_bytes,
                           BATCH_STREAM_SNAPPY_CHUNK_MAX) != INFLATE_OK) {
        int saved = errno; /* malloc's ENOMEM or the read's error */
        batch_stream_close(bs);
        errno = saved;
        return -1;
    }
    *out = bs;
    return 0;
}

void batch_stream_close(struct batch_stream *bs)
{
    if (bs == NULL)
        return;
    inflater_close(&bs->f);
    free(bs);
}
