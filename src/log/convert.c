/* convert: magic 0/1 message sets <-> magic 2 record batches. Up-conversion walks a produced
 * set (inner messages of compressed wrappers streamed through log/inflate.c) into one batch
 * builder; down-conversion walks the log's batches into legacy messages within a byte limit. */
#include "log/convert.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/inflate.h"

/* Most bytes held at once by a conversion since the last reset (single event-loop thread, as
 * inflate.c's counter; only tests and measurements read it). */
static size_t memory_high_water;

size_t convert_memory_high_water(void) { return memory_high_water; }
void convert_memory_high_water_reset(void) { memory_high_water = 0; }

static void note_memory(size_t held)
{
    if (held > memory_high_water)
        memory_high_water = held;
}

bool convert_is_legacy(const uint8_t *set, size_t len)
{
    return len > CONVERT_MAGIC_OFFSET && set[CONVERT_MAGIC_OFFSET] < BATCH_MAGIC_V2;
}

void convert_buf_free(struct convert_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static bool buf_reserve(struct convert_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *np = realloc(b->data, cap);
    if (np == NULL)
        return false;
    b->data = np;
    b->cap = cap;
    return true;
}

/* ---- one legacy message ---- */

struct legacy_message {
    int8_t magic;
    int8_t attributes;
    int64_t timestamp;       /* -1 for magic 0 */
    const uint8_t *key;      /* borrowed; NULL = null */
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
};

static bool bytes_field(const uint8_t **p, const uint8_t *end, const uint8_t **out, int32_t *len)
{
    if (end - *p < 4)
        return false;
    int32_t n = (int32_t)be32_get(*p);
    *p += 4;
    if (n < -1 || (n > 0 && end - *p < n))
        return false;
    *out = n >= 0 ? *p : NULL;
    *len = n;
    *p += n > 0 ? n : 0;
    return true;
}

/* Parses the message of size bytes at m (from its CRC on) and checks its CRC-32. */
static int legacy_parse(const uint8_t *m, size_t size, struct legacy_message *out)
{
    if (size < CONVERT_MESSAGE_MIN_V0)
        return KERR_CORRUPT_MESSAGE;
    out->magic = (int8_t)m[4];
    if (out->magic != 0 && out->magic != 1)
        return KERR_CORRUPT_MESSAGE;
    if (out->magic == 1 && size < CONVERT_MESSAGE_MIN_V1)
        return KERR_CORRUPT_MESSAGE;
    uint32_t crc = (uint32_t)crc32(0L, m + 4, (uInt)(size - 4));
    if (crc != be32_get(m))
        return KERR_CORRUPT_MESSAGE;
    out->attributes = (int8_t)m[5];
    const uint8_t *p = m + 6, *end = m + size;
    out->timestamp = -1;
    if (out->magic == 1) {
        out->timestamp = (int64_t)be64_get(p);
        p += 8;
    }
    if (!bytes_field(&p, end, &out->key, &out->key_len) ||
        !bytes_field(&p, end, &out->value, &out->value_len) || p != end)
        return KERR_CORRUPT_MESSAGE;
    return KERR_NONE;
}

static size_t legacy_size(int8_t magic, int32_t key_len, int32_t value_len)
{
    return (magic == 1 ? CONVERT_MESSAGE_MIN_V1 : CONVERT_MESSAGE_MIN_V0) +
           (key_len > 0 ? (size_t)key_len : 0) + (value_len > 0 ? (size_t)value_len : 0);
}

/* Writes offset, size and the message at p (CONVERT_LOG_OVERHEAD + legacy_size bytes). */
static void legacy_write(uint8_t *p, int64_t offset, const struct legacy_message *m)
{
    size_t size = legacy_size(m->magic, m->key_len, m->value_len);
    be64_put(p, (uint64_t)offset);
    be32_put(p + 8, (uint32_t)size);
    uint8_t *msg = p + CONVERT_LOG_OVERHEAD, *q = msg + 6;
    msg[4] = (uint8_t)m->magic;
    msg[5] = (uint8_t)m->attributes;
    if (m->magic == 1) {
        be64_put(q, (uint64_t)m->timestamp);
        q += 8;
    }
    be32_put(q, (uint32_t)m->key_len);
    q += 4;
    if (m->key_len > 0) {
        memcpy(q, m->key, (size_t)m->key_len);
        q += m->key_len;
    }
    be32_put(q, (uint32_t)m->value_len);
    q += 4;
    if (m->value_len > 0)
        memcpy(q, m->value, (size_t)m->value_len);
    be32_put(msg, (uint32_t)crc32(0L, msg + 4, (uInt)(size - 4)));
}

/* ---- up: a produced legacy set -> one batch ---- */

struct up_state {
    struct batch_builder builder;
    int codec;               /* of the first compressed wrapper, else none */
    uint8_t *scratch;        /* one inner message at a time */
    size_t scratch_cap;
};

static int up_add(struct up_state *s, const struct legacy_message *m, int64_t timestamp)
{
    int e = batch_builder_add(&s->builder, timestamp, m->key, m->key_len, m->value, m->value_len,
                              NULL, 0);
    if (e == KERR_RECORD_LIST_TOO_LARGE)
        return KERR_MESSAGE_TOO_LARGE;
    return e;
}

static bool inflater_read(struct inflater *f, uint8_t *dst, size_t n)
{
    while (n > 0) {
        if (f->pos == f->end && !inflater_fill(f))
            return false;
        size_t k = (size_t)(f->end - f->pos);
        k = k < n ? k : n;
        memcpy(dst, f->pos, k);
        f->pos += k;
        dst += k;
        n -= k;
    }
    return true;
}

static int inflate_error(const struct inflater *f)
{
    if (f->err == INFLATE_TOO_BIG)
        return KERR_MESSAGE_TOO_LARGE;
    if (f->err == INFLATE_FAILED)
        return KERR_UNKNOWN_SERVER_ERROR;
    return KERR_CORRUPT_MESSAGE;
}

/* The inner messages of one compressed wrapper, in order, into the builder. */
static int up_wrapper(struct up_state *s, const struct legacy_message *w, size_t max_bytes)
{
    int codec = w->attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (codec == BATCH_COMPRESSION_ZSTD)
        return KERR_UNSUPPORTED_COMPRESSION_TYPE; /* zstd came with magic 2 */
    if (codec > BATCH_COMPRESSION_ZSTD || w->value == NULL)
        return KERR_CORRUPT_MESSAGE;
    if (s->codec == BATCH_COMPRESSION_NONE)
        s->codec = codec;
    struct inflater f;
    int e = KERR_NONE;
    int32_t inner = 0;
    inflater_open_memory(&f, codec, w->value, (size_t)w->value_len, max_bytes, max_bytes);
    for (;;) {
        uint8_t head[CONVERT_LOG_OVERHEAD];
        if (f.err != INFLATE_OK || inflater_at_end(&f))
            break;
        if (!inflater_read(&f, head, sizeof(head))) {
            e = f.err != INFLATE_OK ? inflate_error(&f) : KERR_CORRUPT_MESSAGE;
            break;
        }
        int64_t offset = (int64_t)be64_get(head);
        int32_t size = (int32_t)be32_get(head + 8);
        if (size < CONVERT_MESSAGE_MIN_V0 || (size_t)size > max_bytes) {
            e = size < CONVERT_MESSAGE_MIN_V0 ? KERR_CORRUPT_MESSAGE : KERR_MESSAGE_TOO_LARGE;
            break;
        }
        if ((size_t)size > s->scratch_cap) {
            uint8_t *np = realloc(s->scratch, (size_t)size);
            if (np == NULL) {
                e = KERR_UNKNOWN_SERVER_ERROR;
                break;
            }
            s->scratch = np;
            s->scratch_cap = (size_t)size;
        }
        if (!inflater_read(&f, s->scratch, (size_t)size)) {
            e = f.err != INFLATE_OK ? inflate_error(&f) : KERR_CORRUPT_MESSAGE;
            break;
        }
        struct legacy_message m;
        if ((e = legacy_parse(s->scratch, (size_t)size, &m)) != KERR_NONE)
            break;
        /* Kafka's LogValidator: no nested compression, one magic per wrapper, and magic 1
         * inner offsets counted from 0 (the wrapper carries the absolute one). */
        if ((m.attributes & BATCH_ATTR_COMPRESSION_MASK) != 0 || m.magic != w->magic ||
            (m.magic == 1 && offset != inner)) {
            e = KERR_INVALID_RECORD;
            break;
        }
        bool lat = w->magic == 1 && (w->attributes & CONVERT_ATTR_LOG_APPEND_TIME);
        if ((e = up_add(s, &m, lat ? w->timestamp : m.timestamp)) != KERR_NONE)
            break;
        inner++;
    }
    if (e == KERR_NONE && f.err != INFLATE_OK)
        e = inflate_error(&f);
    if (e == KERR_NONE && inner == 0)
        e = KERR_INVALID_RECORD; /* a wrapper around nothing */
    note_memory(s->builder.cap + s->scratch_cap + INFLATE_WINDOW);
    inflater_close(&f);
    return e;
}

int convert_legacy_to_batch(const uint8_t *set, size_t len, size_t max_bytes, uint8_t **out,
                            size_t *out_len, int32_t *records)
{
    *out = NULL;
    *out_len = 0;
    *records = 0;
    struct up_state s;
    memset(&s, 0, sizeof(s));
    batch_builder_init(&s.builder, max_bytes + BATCH_HEADER_SIZE);
    int e = KERR_NONE;
    size_t pos = 0;
    while (e == KERR_NONE && pos < len) {
        if (len - pos < CONVERT_LOG_OVERHEAD) {
            e = KERR_CORRUPT_MESSAGE; /* a partial entry at the end */
            break;
        }
        int32_t size = (int32_t)be32_get(set + pos + 8);
        if (size < CONVERT_MESSAGE_MIN_V0 || (size_t)size > len - pos - CONVERT_LOG_OVERHEAD) {
            e = KERR_CORRUPT_MESSAGE;
            break;
        }
        struct legacy_message m;
        e = legacy_parse(set + pos + CONVERT_LOG_OVERHEAD, (size_t)size, &m);
        if (e != KERR_NONE)
            break;
        if ((m.attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_COMPRESSION_NONE)
            e = up_add(&s, &m, m.timestamp);
        else
            e = up_wrapper(&s, &m, max_bytes);
        pos += CONVERT_LOG_OVERHEAD + (size_t)size;
    }
    if (e == KERR_NONE && s.builder.count == 0)
        e = KERR_INVALID_RECORD;
    int32_t n = s.builder.count;
    if (e == KERR_NONE) {
        e = batch_builder_finish(&s.builder, s.codec, out, out_len);
        if (e == KERR_UNSUPPORTED_COMPRESSION_TYPE)
            e = KERR_UNKNOWN_SERVER_ERROR; /* recompressing failed: out of memory */
    }
    note_memory(s.builder.cap + s.scratch_cap + *out_len);
    batch_builder_free(&s.builder);
    free(s.scratch);
    if (e != KERR_NONE) {
        free(*out);
        *out = NULL;
        *out_len = 0;
        return e;
    }
    *records = n;
    return KERR_NONE;
}

/* ---- down: log batches -> a legacy set ---- */

struct down_state {
    int8_t magic;
    size_t limit;
    bool min_one;
    bool full;                 /* the limit is reached: write nothing more */
    struct convert_buf *out;
    int64_t *next_offset;
};

/* Appends one message (offset + size + body) if the limit allows; false when it was left out
 * (or cut) because the limit is reached. */
static int down_put(struct down_state *d, int64_t offset, const struct legacy_message *m)
{
    size_t need = CONVERT_LOG_OVERHEAD + legacy_size(m->magic, m->key_len, m->value_len);
    size_t keep = need;
    if (d->out->len + need > d->limit) {
        d->full = true;
        if (d->out->len > 0)
            return KERR_NONE;
        if (!d->min_one)
            keep = d->limit; /* Fetch v0-2: a partial first message, as Kafka's hard limit */
    }
    if (!buf_reserve(d->out, need))
        return KERR_UNKNOWN_SERVER_ERROR;
    legacy_write(d->out->data + d->out->len, offset, m);
    d->out->len += keep;
    if (keep == need)
        *d->next_offset = offset + 1;
    return KERR_NONE;
}

static void message_of(struct legacy_message *m, int8_t magic, int8_t attributes, int64_t ts,
                       const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len)
{
    m->magic = magic;
    m->attributes = attributes;
    m->timestamp = magic == 1 ? ts : -1;
    m->key = key;
    m->key_len = key == NULL ? -1 : key_len;
    m->value = value;
    m->value_len = value == NULL ? -1 : value_len;
}

/* A compressed batch: its records from first_offset on, wrapped in one message of its codec. */
static int down_wrapper(struct down_state *d, struct batch_record_iter *it, int64_t first_offset)
{
    struct convert_buf inner = {0};
    struct batch_record rec;
    int rc, e = KERR_NONE;
    int64_t base = -1, last = -1, max_ts = -1;
    bool lat = (it->h.attributes & BATCH_ATTR_LOG_APPEND_TIME) != 0;
    while ((rc = batch_records_next(it, &rec)) == 1) {
        if (rec.offset < first_offset)
            continue;
        if (base < 0)
            base = rec.offset;
        struct legacy_message m;
        message_of(&m, d->magic, 0, rec.timestamp, rec.key, rec.key_len, rec.value, rec.value_len);
        size_t need = CONVERT_LOG_OVERHEAD + legacy_size(m.magic, m.key_len, m.value_len);
        if (!buf_reserve(&inner, need)) {
            e = KERR_UNKNOWN_SERVER_ERROR;
            break;
        }
        legacy_write(inner.data + inner.len, d->magic == 1 ? rec.offset - base : rec.offset, &m);
        inner.len += need;
        last = rec.offset;
        if (rec.timestamp > max_ts)
            max_ts = rec.timestamp;
    }
    if (e == KERR_NONE && rc < 0)
        e = KERR_CORRUPT_MESSAGE;
    if (e != KERR_NONE || last < 0) {
        convert_buf_free(&inner);
        return e;
    }
    int codec = it->h.attributes & BATCH_ATTR_COMPRESSION_MASK;
    uint8_t *z = NULL;
    size_t zlen = 0;
    if (batch_compress(codec, inner.data, inner.len, &z, &zlen) < 0 || zlen > INT32_MAX) {
        free(z);
        convert_buf_free(&inner);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    note_memory(d->out->cap + inner.cap + zlen + (size_t)(it->end - it->pos));
    convert_buf_free(&inner);
    struct legacy_message w;
    int8_t attributes = (int8_t)(codec | (d->magic == 1 && lat ? CONVERT_ATTR_LOG_APPEND_TIME : 0));
    message_of(&w, d->magic, attributes, lat ? it->h.max_timestamp : max_ts, NULL, -1, z,
               (int32_t)zlen);
    e = down_put(d, last, &w);
    free(z);
    return e;
}

static int down_plain(struct down_state *d, struct batch_record_iter *it, int64_t first_offset)
{
    struct batch_record rec;
    int rc = 0;
    int8_t attributes = d->magic == 1 && (it->h.attributes & BATCH_ATTR_LOG_APPEND_TIME)
                            ? CONVERT_ATTR_LOG_APPEND_TIME : 0;
    while (!d->full && (rc = batch_records_next(it, &rec)) == 1) {
        if (rec.offset < first_offset)
            continue;
        struct legacy_message m;
        message_of(&m, d->magic, attributes, rec.timestamp, rec.key, rec.key_len, rec.value,
                   rec.value_len);
        int e = down_put(d, rec.offset, &m);
        if (e != KERR_NONE)
            return e;
    }
    return !d->full && rc < 0 ? KERR_CORRUPT_MESSAGE : KERR_NONE;
}

int convert_batches_to_legacy(const uint8_t *batches, size_t len, int8_t magic,
                              int64_t first_offset, size_t limit, bool min_one,
                              struct convert_buf *out, int64_t *next_offset)
{
    GREGOR_ASSERT(magic == 0 || magic == 1);
    struct down_state d = {.magic = magic, .limit = limit, .min_one = min_one, .out = out,
                           .next_offset = next_offset};
    *next_offset = first_offset;
    size_t pos = 0;
    while (!d.full && len - pos >= BATCH_HEADER_SIZE) {
        struct batch_header h;
        batch_header_decode(batches + pos, &h);
        if (h.magic != BATCH_MAGIC_V2 || h.length < BATCH_MIN_LENGTH)
            return KERR_CORRUPT_MESSAGE;
        if ((uint64_t)batch_total_size(&h) > len - pos)
            break; /* a torn tail: the next fetch starts there */
        size_t total = (size_t)batch_total_size(&h);
        int codec = h.attributes & BATCH_ATTR_COMPRESSION_MASK;
        if (batch_last_offset(&h) < first_offset || (h.attributes & BATCH_ATTR_CONTROL)) {
            pos += total;
            continue;
        }
        if (codec == BATCH_COMPRESSION_ZSTD)
            return out->len == 0 ? KERR_UNSUPPORTED_COMPRESSION_TYPE : KERR_NONE;
        struct batch_record_iter it;
        int e = batch_records_open(&it, batches + pos, total, BATCH_INFLATE_MAX);
        if (e == KERR_NONE)
            e = codec == BATCH_COMPRESSION_NONE ? down_plain(&d, &it, first_offset)
                                                : down_wrapper(&d, &it, first_offset);
        note_memory(out->cap + (it.owned != NULL ? (size_t)(it.end - it.owned) : 0));
        batch_records_close(&it);
        if (e != KERR_NONE)
            return e;
        pos += total;
    }
    GREGOR_ASSERT(out->len <= limit || min_one);
    return KERR_NONE;
}
