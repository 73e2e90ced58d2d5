/* kbuf: bounds-checked big-endian readers and writers for the Kafka wire format.
 * Readers carry a sticky error (as franz-go's kbin.Reader): decode straight through, check once. */
#ifndef GREGOR_PROTO_KBUF_H
#define GREGOR_PROTO_KBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "common/arena.h"

/* A string as decoded: NUL-terminated copy in the request arena; ptr == NULL means null.
 * len is the byte length (without the NUL). */
struct kstr {
    char *ptr;
    int32_t len;
};

/* True when a decoded string holds a NUL byte before its end: as a C string it would read as a
 * shorter, different string, so names that are compared or stored must refuse it. */
static inline bool kstr_has_nul(struct kstr s)
{
    return s.ptr != NULL && s.len > 0 && memchr(s.ptr, '\0', (size_t)s.len) != NULL;
}

/* Bytes as decoded: borrowed pointer into the frame buffer (lives as long as the request);
 * ptr == NULL, len == -1 means null. Records fields use this too and may be rewritten in place. */
struct kbytes {
    uint8_t *ptr;
    int32_t len;
};

/* A records field. Decoded: ptr/len borrow the frame (len -1 = null), is_file false.
 * For encoding a Fetch response from disk set is_file, fd (owned: the writer closes it),
 * file_offset and len: the bytes go out by sendfile. */
struct krecords {
    uint8_t *ptr;
    int32_t len;
    bool is_file;
    int fd;
    off_t file_offset;
};

/* A 16-byte UUID, most significant byte first. */
struct kuuid {
    uint8_t b[16];
};

/* Unknown tagged fields are skipped on read and never written: gregor only writes tags it knows. */

/* Values of kreader.err / kwriter.err (0 = fine). */
#define KBUF_ERR_MALFORMED (-1) /* bytes do not decode: short, bad length, bad varint */
#define KBUF_ERR_NOMEM (-2)     /* arena limit, max_bytes or malloc refused */
#define KBUF_ERR_INVALID (-3)   /* caller asked for something unencodable (bad length, version) */

struct kreader {
    uint8_t *p;        /* borrows the frame buffer */
    size_t len;
    size_t off;
    int err;           /* 0 while fine; sticky once set */
    const char *what;  /* first failure: which field/type ran short (static string) */
    struct arena *arena; /* where strings and arrays are allocated */
    const char *where; /* innermost generated struct that was decoding at the failure, or NULL */
};

void kr_init(struct kreader *r, uint8_t *p, size_t len, struct arena *arena);
/* Marks the reader failed (first failure wins); what is a static string naming the field. */
void kr_fail(struct kreader *r, const char *what);
static inline bool kr_ok(const struct kreader *r) { return r->err == 0; }
static inline size_t kr_remaining(const struct kreader *r) { return r->len - r->off; }

int8_t kr_i8(struct kreader *r);
int16_t kr_i16(struct kreader *r);
int32_t kr_i32(struct kreader *r);
int64_t kr_i64(struct kreader *r);
uint16_t kr_u16(struct kreader *r);
uint32_t kr_u32(struct kreader *r);
double kr_f64(struct kreader *r);
bool kr_bool(struct kreader *r);
uint32_t kr_uvarint(struct kreader *r);
int32_t kr_varint(struct kreader *r);
int64_t kr_varlong(struct kreader *r);
struct kuuid kr_uuid(struct kreader *r);
/* compact selects the flexible (varint length, +1 biased) form. nullable=false fails on null. */
struct kstr kr_str(struct kreader *r, bool compact, bool nullable);
struct kbytes kr_bytes(struct kreader *r, bool compact, bool nullable);
/* Array length; -1 for null (only when nullable). Fails when the count exceeds the bytes left
 * (every element takes at least one byte), so a hostile count cannot make us allocate. */
int32_t kr_array_len(struct kreader *r, bool compact, bool nullable);
/* Skips a whole TAGGED_FIELDS block (used where no tag is known). */
void kr_skip_tags(struct kreader *r);
/* Allocates n zeroed elements of size sz from the reader's arena; fails the reader on OOM.
 * Returns NULL (without failing) for n == 0 and once the reader has failed. */
void *kr_alloc(struct kreader *r, size_t n, size_t sz);
/* Skips n bytes (fails when fewer are left). */
void kr_skip(struct kreader *r, size_t n);
/* A records field: same wire form as (compact) nullable bytes; borrows the frame. */
struct krecords kr_records(struct kreader *r, bool compact, bool nullable);

/* Writer: a chain of memory bytes and file ranges (for zero-copy fetch by sendfile).
 * Memory grows up to max_bytes; past that the writer fails (err set) rather than allocate. */
struct kchunk_file {
    int fd;       /* owned by the writer: closed by kw_free */
    off_t offset;
    size_t len;
    size_t at;    /* position in the memory buffer where this range is spliced in */
};

struct kwriter {
    uint8_t *buf;
    size_t len, cap, max_bytes;
    struct kchunk_file *files;
    size_t nfiles, capfiles;
    size_t file_bytes; /* total bytes of file ranges */
    int err;
};

void kw_init(struct kwriter *w, size_t max_bytes);
/* Frees the buffer and closes every file range's fd; the writer may be kw_init'ed again. */
void kw_free(struct kwriter *w);
/* Hands the written bytes (malloc'ed) to the caller and frees the writer: 0, or -1 (nothing
 * handed, *p NULL) when a write failed. */
int kw_take(struct kwriter *w, uint8_t **p, size_t *len);
/* Marks the writer failed (first failure wins); later writes are no-ops. */
void kw_fail(struct kwriter *w, int err);
/* Total encoded size including file ranges. */
static inline size_t kw_size(const struct kwriter *w) { return w->len + w->file_bytes; }
void kw_i8(struct kwriter *w, int8_t v);
void kw_i16(struct kwriter *w, int16_t v);
void kw_i32(struct kwriter *w, int32_t v);
void kw_i64(struct kwriter *w, int64_t v);
void kw_u16(struct kwriter *w, uint16_t v);
void kw_u32(struct kwriter *w, uint32_t v);
void kw_f64(struct kwriter *w, double v);
void kw_bool(struct kwriter *w, bool v);
void kw_uvarint(struct kwriter *w, uint32_t v);
void kw_varint(struct kwriter *w, int32_t v);
void kw_varlong(struct kwriter *w, int64_t v);
void kw_uuid(struct kwriter *w, struct kuuid v);
void kw_raw(struct kwriter *w, const void *p, size_t n);
/* ptr == NULL writes null. */
void kw_str(struct kwriter *w, bool compact, const char *ptr, int32_t len);
void kw_bytes(struct kwriter *w, bool compact, const uint8_t *ptr, int32_t len);
/* Writes the length prefix of a records field followed by a file range (fd is dup'ed owned
 * data: the writer closes it). Used by Fetch. */
void kw_records_file(struct kwriter *w, bool compact, int fd, off_t offset, size_t len);
void kw_array_len(struct kwriter *w, bool compact, int32_t n);
void kw_empty_tags(struct kwriter *w);
/* Reserves 4 bytes for a length to patch later (frame size); returns its position. */
size_t kw_reserve_i32(struct kwriter *w);
void kw_patch_i32(struct kwriter *w, size_t at, int32_t v);

#endif
