/* kbuf: the Kafka wire primitives (FORMATS.md §2): bounds-checked readers with a sticky error
 * and bounded writers whose output may splice in file ranges for sendfile. */
#include "proto/kbuf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

/* ---- reader ------------------------------------------------------------------------------ */

void kr_init(struct kreader *r, uint8_t *p, size_t len, struct arena *arena)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = 0;
    r->what = NULL;
    r->arena = arena;
    r->where = NULL;
}

static void kr_fail_with(struct kreader *r, int err, const char *what)
{
    if (r->err != 0)
        return;
    r->err = err;
    r->what = what;
}

void kr_fail(struct kreader *r, const char *what)
{
    kr_fail_with(r, KBUF_ERR_MALFORMED, what);
}

/* True when n more bytes can be read; otherwise fails the reader naming what. */
static bool kr_need(struct kreader *r, size_t n, const char *what)
{
    if (r->err != 0)
        return false;
    if (n > kr_remaining(r)) {
        kr_fail(r, what);
        return false;
    }
    return true;
}

int8_t kr_i8(struct kreader *r)
{
    return kr_need(r, 1, "int8") ? (int8_t)r->p[r->off++] : 0;
}

int16_t kr_i16(struct kreader *r)
{
    return (int16_t)kr_u16(r);
}

int32_t kr_i32(struct kreader *r)
{
    return (int32_t)kr_u32(r);
}

int64_t kr_i64(struct kreader *r)
{
    if (!kr_need(r, 8, "int64"))
        return 0;
    uint64_t v = be64_get(r->p + r->off);
    r->off += 8;
    return (int64_t)v;
}

uint16_t kr_u16(struct kreader *r)
{
    if (!kr_need(r, 2, "int16"))
        return 0;
    uint16_t v = be16_get(r->p + r->off);
    r->off += 2;
    return v;
}

uint32_t kr_u32(struct kreader *r)
{
    if (!kr_need(r, 4, "int32"))
        return 0;
    uint32_t v = be32_get(r->p + r->off);
    r->off += 4;
    return v;
}

double kr_f64(struct kreader *r)
{
    uint64_t bits = (uint64_t)kr_i64(r);
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

bool kr_bool(struct kreader *r)
{
    return kr_i8(r) != 0;
}

/* Unsigned LEB128 of at most max_bytes bytes; a longer run is malformed. */
static uint64_t kr_varint_raw(struct kreader *r, int max_bytes, const char *what)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (!kr_need(r, 1, what))
            return 0;
        uint8_t b = r->p[r->off++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0)
            return v;
    }
    kr_fail(r, what);
    return 0;
}

uint32_t kr_uvarint(struct kreader *r)
{
    return (uint32_t)kr_varint_raw(r, 5, "unsigned varint");
}

int32_t kr_varint(struct kreader *r)
{
    uint32_t u = (uint32_t)kr_varint_raw(r, 5, "varint");
    return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

int64_t kr_varlong(struct kreader *r)
{
    uint64_t u = kr_varint_raw(r, 10, "varlong");
    return (int64_t)((u >> 1) ^ (0ull - (u & 1)));
}

struct kuuid kr_uuid(struct kreader *r)
{
    struct kuuid u;
    memset(&u, 0, sizeof(u));
    if (kr_need(r, sizeof(u.b), "uuid")) {
        memcpy(u.b, r->p + r->off, sizeof(u.b));
        r->off += sizeof(u.b);
    }
    return u;
}

/* Reads a string/bytes length prefix: classic (int16 or int32, -1 null) or compact (uvarint
 * N+1, 0 null). Returns -1 for null, -2 after failing the reader. */
static int64_t kr_len_prefix(struct kreader *r, bool compact, bool wide, bool nullable,
                             const char *what)
{
    int64_t n;
    if (compact)
        n = (int64_t)kr_uvarint(r) - 1;
    else
        n = wide ? kr_i32(r) : kr_i16(r);
    if (r->err != 0)
        return -2;
    if (n < -1 || (n == -1 && !nullable)) {
        kr_fail(r, what);
        return -2;
    }
    if (n >= 0 && (uint64_t)n > kr_remaining(r)) {
        kr_fail(r, what);
        return -2;
    }
    return n;
}

struct kstr kr_str(struct kreader *r, bool compact, bool nullable)
{
    struct kstr s = { NULL, 0 };
    int64_t n = kr_len_prefix(r, compact, false, nullable, compact ? "compact string" : "string");
    if (n < 0)
        return s;
    if (!compact && n > INT16_MAX) {
        kr_fail(r, "string");
        return s;
    }
    char *copy = kr_alloc(r, (size_t)n + 1, 1);
    if (copy == NULL)
        return s;
    memcpy(copy, r->p + r->off, (size_t)n);
    copy[n] = '\0';
    r->off += (size_t)n;
    s.ptr = copy;
    s.len = (int32_t)n;
    return s;
}

struct kbytes kr_bytes(struct kreader *r, bool compact, bool nullable)
{
    struct kbytes b = { NULL, -1 };
    int64_t n = kr_len_prefix(r, compact, true, nullable, compact ? "compact bytes" : "bytes");
    if (n == -2)
        b.len = 0;
    if (n < 0)
        return b;
    b.ptr = r->p + r->off;
    b.len = (int32_t)n;
    r->off += (size_t)n;
    return b;
}

struct krecords kr_records(struct kreader *r, bool compact, bool nullable)
{
    struct kbytes b = kr_bytes(r, compact, nullable);
    struct krecords rec;
    memset(&rec, 0, sizeof(rec));
    rec.ptr = b.ptr;
    rec.len = b.len;
    rec.fd = -1;
    return rec;
}

int32_t kr_array_len(struct kreader *r, bool compact, bool nullable)
{
    int64_t n;
    if (compact)
        n = (int64_t)kr_uvarint(r) - 1;
    else
        n = kr_i32(r);
    if (r->err != 0)
        return 0;
    if (n < -1 || (n == -1 && !nullable)) {
        kr_fail(r, "array length");
        return 0;
    }
    /* Every element takes at least one byte: a larger count is a lie, refuse before allocating. */
    if (n > 0 && (uint64_t)n > kr_remaining(r)) {
        kr_fail(r, "array length exceeds frame");
        return 0;
    }
    return (int32_t)n;
}

void kr_skip(struct kreader *r, size_t n)
{
    if (kr_need(r, n, "skip"))
        r->off += n;
}

void kr_skip_tags(struct kreader *r)
{
    uint32_t count = kr_uvarint(r);
    /* Each tag costs at least two bytes, so a hostile count ends with the bytes. */
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        (void)kr_uvarint(r);
        uint32_t size = kr_uvarint(r);
        if (r->err == 0 && size > kr_remaining(r)) {
            kr_fail(r, "tagged field size");
            break;
        }
        kr_skip(r, size);
    }
}

void *kr_alloc(struct kreader *r, size_t n, size_t sz)
{
    if (r->err != 0 || n == 0 || sz == 0)
        return NULL;
    if (r->arena == NULL || n > SIZE_MAX / sz) {
        kr_fail_with(r, KBUF_ERR_NOMEM, "allocation");
        return NULL;
    }
    void *p = arena_alloc(r->arena, n * sz);
    if (p == NULL)
        kr_fail_with(r, KBUF_ERR_NOMEM, "arena limit");
    return p;
}

/* ---- writer ------------------------------------------------------------------------------ */

void kw_init(struct kwriter *w, size_t max_bytes)
{
    memset(w, 0, sizeof(*w));
    w->max_bytes = max_bytes;
}

void kw_free(struct kwriter *w)
{
    for (size_t i = 0; i < w->nfiles; i++)
        if (w->files[i].fd >= 0)
            close(w->files[i].fd);
    free(w->files);
    free(w->buf);
    size_t max_bytes = w->max_bytes;
    kw_init(w, max_bytes);
}

int kw_take(struct kwriter *w, uint8_t **p, size_t *len)
{
    *p = NULL;
    *len = 0;
    if (w->err) {
        kw_free(w);
        return -1;
    }
    *p = w->buf;
    *len = w->len;
    w->buf = NULL;
    kw_free(w);
    return 0;
}

void kw_fail(struct kwriter *w, int err)
{
    if (w->err == 0)
        w->err = err;
}

/* Makes room for n more bytes: doubles the buffer but never past max_bytes. */
static bool kw_grow(struct kwriter *w, size_t n)
{
    if (w->err != 0)
        return false;
    if (n > w->max_bytes || w->len > w->max_bytes - n) {
        kw_fail(w, KBUF_ERR_NOMEM);
        return false;
    }
    size_t need = w->len + n;
    if (need <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > w->max_bytes)
        cap = w->max_bytes;
    uint8_t *buf = realloc(w->buf, cap);
    if (buf == NULL) {
        kw_fail(w, KBUF_ERR_NOMEM);
        return false;
    }
    w->buf = buf;
    w->cap = cap;
    return true;
}

void kw_raw(struct kwriter *w, const void *p, size_t n)
{
    if (n == 0 || !kw_grow(w, n))
        return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void kw_i8(struct kwriter *w, int8_t v)
{
    uint8_t b = (uint8_t)v;
    kw_raw(w, &b, 1);
}

void kw_i16(struct kwriter *w, int16_t v)
{
    kw_u16(w, (uint16_t)v);
}

void kw_i32(struct kwriter *w, int32_t v)
{
    kw_u32(w, (uint32_t)v);
}

void kw_i64(struct kwriter *w, int64_t v)
{
    uint8_t b[8];
    be64_put(b, (uint64_t)v);
    kw_raw(w, b, sizeof(b));
}

void kw_u16(struct kwriter *w, uint16_t v)
{
    uint8_t b[2];
    be16_put(b, v);
    kw_raw(w, b, sizeof(b));
}

void kw_u32(struct kwriter *w, uint32_t v)
{
    uint8_t b[4];
    be32_put(b, v);
    kw_raw(w, b, sizeof(b));
}

void kw_f64(struct kwriter *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    kw_i64(w, (int64_t)bits);
}

void kw_bool(struct kwriter *w, bool v)
{
    kw_i8(w, v ? 1 : 0);
}

static void kw_varint_raw(struct kwriter *w, uint64_t u)
{
    uint8_t b[10];
    size_t n = 0;
    while (u >= 0x80) {
        b[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    b[n++] = (uint8_t)u;
    kw_raw(w, b, n);
}

void kw_uvarint(struct kwriter *w, uint32_t v)
{
    kw_varint_raw(w, v);
}

void kw_varint(struct kwriter *w, int32_t v)
{
    kw_varint_raw(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kw_varlong(struct kwriter *w, int64_t v)
{
    kw_varint_raw(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void kw_uuid(struct kwriter *w, struct kuuid v)
{
    kw_raw(w, v.b, sizeof(v.b));
}

void kw_str(struct kwriter *w, bool compact, const char *ptr, int32_t len)
{
    if (ptr == NULL) {
        if (compact)
            kw_uvarint(w, 0);
        else
            kw_i16(w, -1);
        return;
    }
    if (len < 0 || (!compact && len > INT16_MAX)) {
        kw_fail(w, KBUF_ERR_INVALID);
        return;
    }
    if (compact)
        kw_uvarint(w, (uint32_t)len + 1);
    else
        kw_i16(w, (int16_t)len);
    kw_raw(w, ptr, (size_t)len);
}

void kw_bytes(struct kwriter *w, bool compact, const uint8_t *ptr, int32_t len)
{
    if (ptr == NULL) {
        if (compact)
            kw_uvarint(w, 0);
        else
            kw_i32(w, -1);
        return;
    }
    if (len < 0) {
        kw_fail(w, KBUF_ERR_INVALID);
        return;
    }
    if (compact)
        kw_uvarint(w, (uint32_t)len + 1);
    else
        kw_i32(w, len);
    kw_raw(w, ptr, (size_t)len);
}

void kw_records_file(struct kwriter *w, bool compact, int fd, off_t offset, size_t len)
{
    if (w->err == 0 && len > (size_t)INT32_MAX - 1)
        kw_fail(w, KBUF_ERR_INVALID);
    if (w->err == 0 && w->nfiles == w->capfiles) {
        size_t cap = w->capfiles ? w->capfiles * 2 : 8;
        struct kchunk_file *files = realloc(w->files, cap * sizeof(*files));
        if (files == NULL) {
            kw_fail(w, KBUF_ERR_NOMEM);
        } else {
            w->files = files;
            w->capfiles = cap;
        }
    }
    if (compact)
        kw_uvarint(w, (uint32_t)len + 1);
    else
        kw_i32(w, (int32_t)len);
    if (w->err != 0) {
        /* The writer owns fd from the call on, even when it cannot use it. */
        if (fd >= 0)
            close(fd);
        return;
    }
    struct kchunk_file *c = &w->files[w->nfiles++];
    c->fd = fd;
    c->offset = offset;
    c->len = len;
    c->at = w->len;
    w->file_bytes += len;
}

void kw_array_len(struct kwriter *w, bool compact, int32_t n)
{
    if (n < -1) {
        kw_fail(w, KBUF_ERR_INVALID);
        return;
    }
    if (compact)
        kw_uvarint(w, (uint32_t)(n + 1));
    else
        kw_i32(w, n);
}

void kw_empty_tags(struct kwriter *w)
{
    kw_uvarint(w, 0);
}

size_t kw_reserve_i32(struct kwriter *w)
{
    size_t at = w->len;
    kw_i32(w, 0);
    return at;
}

void kw_patch_i32(struct kwriter *w, size_t at, int32_t v)
{
    if (w->err != 0)
        return;
    GREGOR_ASSERT(at <= w->len && w->len - at >= 4);
    be32_put(w->buf + at, (uint32_t)v);
}
