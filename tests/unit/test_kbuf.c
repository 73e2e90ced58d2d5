/* test_kbuf: every wire primitive round-trips, and every malformed or hostile input sets the
 * sticky error instead of reading past the frame or allocating. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "proto/kbuf.h"

#define MAX_OUT (1u << 20)

/* Decodes what a writer produced; the writer keeps the bytes alive. */
static void reader_over(struct kreader *r, struct kwriter *w, struct arena *a)
{
    kr_init(r, w->buf, w->len, a);
}

static void test_fixed_ints_round_trip(void **state)
{
    (void)state;
    struct kwriter w;
    kw_init(&w, MAX_OUT);
    kw_i8(&w, INT8_MIN);
    kw_i8(&w, INT8_MAX);
    kw_i16(&w, INT16_MIN);
    kw_i16(&w, INT16_MAX);
    kw_i32(&w, INT32_MIN);
    kw_i32(&w, INT32_MAX);
    kw_i64(&w, INT64_MIN);
    kw_i64(&w, INT64_MAX);
    kw_u16(&w, UINT16_MAX);
    kw_u32(&w, UINT32_MAX);
    kw_f64(&w, -1.5);
    kw_bool(&w, true);
    kw_bool(&w, false);
    assert_int_equal(w.err, 0);
    assert_int_equal(kw_size(&w), 1 + 1 + 2 + 2 + 4 + 4 + 8 + 8 + 2 + 4 + 8 + 1 + 1);

    struct kreader r;
    reader_over(&r, &w, NULL);
    assert_int_equal(kr_i8(&r), INT8_MIN);
    assert_int_equal(kr_i8(&r), INT8_MAX);
    assert_int_equal(kr_i16(&r), INT16_MIN);
    assert_int_equal(kr_i16(&r), INT16_MAX);
    assert_int_equal(kr_i32(&r), INT32_MIN);
    assert_int_equal(kr_i32(&r), INT32_MAX);
    assert_true(kr_i64(&r) == INT64_MIN);
    assert_true(kr_i64(&r) == INT64_MAX);
    assert_int_equal(kr_u16(&r), UINT16_MAX);
    assert_true(kr_u32(&r) == UINT32_MAX);
    assert_true(kr_f64(&r) == -1.5);
    assert_true(kr_bool(&r));
    assert_false(kr_bool(&r));
    assert_int_equal(r.err, 0);
    assert_int_equal(kr_remaining(&r), 0);
    kw_free(&w);
}

static void test_big_endian_layout(void **state)
{
    (void)state;
    struct kwriter w;
    kw_init(&w, MAX_OUT);
    kw_i32(&w, 0x01020304);
    kw_i16(&w, -2);
    const uint8_t want[] = { 1, 2, 3, 4, 0xff, 0xfe };
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(w.buf, want, sizeof(want));
    kw_free(&w);

    uint8_t any_nonzero[] = { 0x7f };
    struct kreader r;
    kr_init(&r, any_nonzero, 1, NULL);
    assert_true(kr_bool(&r)); /* any non-zero byte is true */
}

static void test_uvarint_boundaries(void **state)
{
    (void)state;
    const struct { uint32_t v; size_t bytes; } cases[] = {
        { 0, 1 }, { 127, 1 }, { 128, 2 }, { 16383, 2 }, { 16384, 3 },
        { 2097151, 3 }, { 2097152, 4 }, { 268435455, 4 }, { 268435456, 5 }, { UINT32_MAX, 5 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kwriter w;
        kw_init(&w, 64);
        kw_uvarint(&w, cases[i].v);
        assert_int_equal(w.len, cases[i].bytes);
        struct kreader r;
        reader_over(&r, &w, NULL);
        assert_true(kr_uvarint(&r) == cases[i].v);
        assert_int_equal(r.err, 0);
        kw_free(&w);
    }
    uint8_t known[] = { 0x96, 0x01 }; /* 150, the protobuf example */
    struct kreader r;
    kr_init(&r, known, sizeof(known), NULL);
    assert_int_equal(kr_uvarint(&r), 150);
}

static void test_varint_zigzag(void **state)
{
    (void)state;
    const int32_t v32[] = { 0, -1, 1, -64, 63, -65, 64, INT32_MIN, INT32_MAX };
    for (size_t i = 0; i < sizeof(v32) / sizeof(v32[0]); i++) {
        struct kwriter w;
        kw_init(&w, 64);
        kw_varint(&w, v32[i]);
        assert_true(w.len <= 5);
        struct kreader r;
        reader_over(&r, &w, NULL);
        assert_int_equal(kr_varint(&r), v32[i]);
        assert_int_equal(r.err, 0);
        kw_free(&w);
    }
    const int64_t v64[] = { 0, -1, 1, INT32_MIN, (int64_t)INT32_MAX + 1, INT64_MIN, INT64_MAX };
    for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
        struct kwriter w;
        kw_init(&w, 64);
        kw_varlong(&w, v64[i]);
        assert_true(w.len <= 10);
        struct kreader r;
        reader_over(&r, &w, NULL);
        assert_true(kr_varlong(&r) == v64[i]);
        assert_int_equal(r.err, 0);
        kw_free(&w);
    }
    /* -1 zig-zags to 1, a single byte. */
    struct kwriter w;
    kw_init(&w, 64);
    kw_varint(&w, -1);
    assert_int_equal(w.len, 1);
    assert_int_equal(w.buf[0], 1);
    kw_free(&w);
}

static void test_varint_too_long_fails(void **state)
{
    (void)state;
    uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
    struct kreader r;
    kr_init(&r, six, sizeof(six), NULL);
    kr_uvarint(&r);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t eleven[11];
    memset(eleven, 0x80, sizeof(eleven));
    eleven[10] = 0;
    kr_init(&r, eleven, sizeof(eleven), NULL);
    kr_varlong(&r);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t unfinished[] = { 0xff, 0xff };
    kr_init(&r, unfinished, sizeof(unfinished), NULL);
    kr_varint(&r);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);
}

static void test_truncation_is_sticky(void **state)
{
    (void)state;
    uint8_t three[] = { 1, 2, 3 };
    struct kreader r;
    kr_init(&r, three, sizeof(three), NULL);
    assert_int_equal(kr_i32(&r), 0);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);
    assert_string_equal(r.what, "int32");
    /* Later reads return zero even where bytes remain, and the first failure is kept. */
    assert_int_equal(kr_i8(&r), 0);
    kr_fail(&r, "second");
    assert_string_equal(r.what, "int32");
    assert_int_equal(r.off, 0);

    kr_init(&r, three, 0, NULL);
    kr_uuid(&r);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);
    kr_init(&r, three, 3, NULL);
    kr_skip(&r, 4);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);
}

static void test_uuid_round_trip(void **state)
{
    (void)state;
    struct kuuid u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(0xf0 + i);
    struct kwriter w;
    kw_init(&w, 64);
    kw_uuid(&w, u);
    assert_int_equal(w.len, 16);
    struct kreader r;
    reader_over(&r, &w, NULL);
    struct kuuid back = kr_uuid(&r);
    assert_memory_equal(back.b, u.b, 16);
    kw_free(&w);
}

static void test_strings_classic_and_compact(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a, 1 << 16);
    for (int compact = 0; compact <= 1; compact++) {
        struct kwriter w;
        kw_init(&w, 1024);
        kw_str(&w, compact, "hello", 5);
        kw_str(&w, compact, NULL, 0);
        kw_str(&w, compact, "", 0);
        kw_str(&w, compact, "a\0b", 3);
        assert_int_equal(w.err, 0);
        /* Length prefixes: int16 5 / uvarint 6; null int16 -1 / uvarint 0. */
        if (compact) {
            assert_int_equal(w.buf[0], 6);
            assert_int_equal(w.buf[6], 0);
        } else {
            assert_int_equal(w.buf[1], 5);
            assert_int_equal(w.buf[7], 0xff);
        }
        struct kreader r;
        reader_over(&r, &w, &a);
        struct kstr s = kr_str(&r, compact, false);
        assert_int_equal(s.len, 5);
        assert_string_equal(s.ptr, "hello");
        assert_true((uint8_t *)s.ptr < w.buf || (uint8_t *)s.ptr >= w.buf + w.len); /* a copy */
        s = kr_str(&r, compact, true);
        assert_null(s.ptr);
        s = kr_str(&r, compact, false);
        assert_non_null(s.ptr);
        assert_int_equal(s.len, 0);
        assert_int_equal(s.ptr[0], '\0');
        s = kr_str(&r, compact, false);
        assert_int_equal(s.len, 3);
        assert_memory_equal(s.ptr, "a\0b", 4); /* NUL terminated after the embedded NUL */
        assert_int_equal(r.err, 0);
        assert_int_equal(kr_remaining(&r), 0);
        kw_free(&w);
    }
    arena_reset(&a);
}

static void test_string_errors(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a, 1 << 16);
    struct kreader r;

    uint8_t null_classic[] = { 0xff, 0xff };
    kr_init(&r, null_classic, sizeof(null_classic), &a);
    kr_str(&r, false, false); /* null where not nullable */
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t null_compact[] = { 0x00 };
    kr_init(&r, null_compact, sizeof(null_compact), &a);
    kr_str(&r, true, false);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t minus_two[] = { 0xff, 0xfe };
    kr_init(&r, minus_two, sizeof(minus_two), &a);
    kr_str(&r, false, true);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t too_long[] = { 0x00, 0x05, 'a', 'b' };
    kr_init(&r, too_long, sizeof(too_long), &a);
    struct kstr s = kr_str(&r, false, false);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);
    assert_null(s.ptr);

    uint8_t compact_huge[] = { 0xff, 0xff, 0xff, 0xff, 0x0f }; /* UINT32_MAX - 1 bytes */
    kr_init(&r, compact_huge, sizeof(compact_huge), &a);
    kr_str(&r, true, false);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t bytes_neg[] = { 0x80, 0, 0, 0 };
    kr_init(&r, bytes_neg, sizeof(bytes_neg), &a);
    kr_bytes(&r, false, true);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    /* Writer: a negative length or an int16 overflow is refused. */
    struct kwriter w;
    kw_init(&w, 1 << 17);
    kw_str(&w, false, "x", -2);
    assert_int_equal(w.err, KBUF_ERR_INVALID);
    kw_free(&w);
    static char big[40000];
    kw_init(&w, 1 << 17);
    kw_str(&w, false, big, (int32_t)sizeof(big));
    assert_int_equal(w.err, KBUF_ERR_INVALID);
    kw_free(&w);
    kw_init(&w, 1 << 17);
    kw_str(&w, true, big, (int32_t)sizeof(big)); /* compact has no int16 limit */
    assert_int_equal(w.err, 0);
    kw_free(&w);
    arena_reset(&a);
}

static void test_bytes_borrow_and_null(void **state)
{
    (void)state;
    for (int compact = 0; compact <= 1; compact++) {
        struct kwriter w;
        kw_init(&w, 1024);
        const uint8_t data[] = { 9, 8, 7 };
        kw_bytes(&w, compact, data, 3);
        kw_bytes(&w, compact, NULL, -1);
        kw_bytes(&w, compact, data, 0);
        struct kreader r;
        reader_over(&r, &w, NULL);
        struct kbytes b = kr_bytes(&r, compact, false);
        assert_int_equal(b.len, 3);
        assert_ptr_equal(b.ptr, w.buf + (compact ? 1 : 4)); /* borrowed from the frame */
        assert_memory_equal(b.ptr, data, 3);
        b = kr_bytes(&r, compact, true);
        assert_null(b.ptr);
        assert_int_equal(b.len, -1);
        b = kr_bytes(&r, compact, false);
        assert_int_equal(b.len, 0);
        assert_non_null(b.ptr);
        assert_int_equal(r.err, 0);
        kw_free(&w);
    }
    uint8_t null_bytes[] = { 0xff, 0xff, 0xff, 0xff };
    struct kreader r;
    kr_init(&r, null_bytes, 4, NULL);
    kr_bytes(&r, false, false);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);
    kr_init(&r, null_bytes, 4, NULL);
    struct krecords rec = kr_records(&r, false, true);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec.len, -1);
    assert_false(rec.is_file);
}

static void test_array_len_hostile_counts(void **state)
{
    (void)state;
    struct kreader r;
    uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 1, 2, 3 };
    kr_init(&r, huge, sizeof(huge), NULL);
    assert_int_equal(kr_array_len(&r, false, false), 0);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t fits[] = { 0, 0, 0, 3, 1, 2, 3 };
    kr_init(&r, fits, sizeof(fits), NULL);
    assert_int_equal(kr_array_len(&r, false, false), 3);
    assert_int_equal(r.err, 0);

    uint8_t one_too_many[] = { 0, 0, 0, 4, 1, 2, 3 };
    kr_init(&r, one_too_many, sizeof(one_too_many), NULL);
    kr_array_len(&r, false, false);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t compact_huge[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0 };
    kr_init(&r, compact_huge, sizeof(compact_huge), NULL);
    kr_array_len(&r, true, true);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t null_classic[] = { 0xff, 0xff, 0xff, 0xff };
    kr_init(&r, null_classic, 4, NULL);
    assert_int_equal(kr_array_len(&r, false, true), -1);
    assert_int_equal(r.err, 0);
    kr_init(&r, null_classic, 4, NULL);
    kr_array_len(&r, false, false);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t minus_five[] = { 0xff, 0xff, 0xff, 0xfb };
    kr_init(&r, minus_five, 4, NULL);
    kr_array_len(&r, false, true);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t compact_null[] = { 0 };
    kr_init(&r, compact_null, 1, NULL);
    assert_int_equal(kr_array_len(&r, true, true), -1);

    struct kwriter w;
    kw_init(&w, 64);
    kw_array_len(&w, true, -1);
    kw_array_len(&w, true, 2);
    kw_array_len(&w, false, -1);
    assert_int_equal(w.len, 1 + 1 + 4);
    assert_int_equal(w.buf[0], 0);
    assert_int_equal(w.buf[1], 3);
    kw_free(&w);
}

static void test_skip_tags(void **state)
{
    (void)state;
    /* two tags: 0 with 2 bytes, 5 with 0 bytes; then an int8 after the block */
    uint8_t block[] = { 2, 0, 2, 0xaa, 0xbb, 5, 0, 0x42 };
    struct kreader r;
    kr_init(&r, block, sizeof(block), NULL);
    kr_skip_tags(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(kr_i8(&r), 0x42);

    uint8_t short_value[] = { 1, 0, 9, 0xaa };
    kr_init(&r, short_value, sizeof(short_value), NULL);
    kr_skip_tags(&r);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    uint8_t lying_count[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0 };
    kr_init(&r, lying_count, sizeof(lying_count), NULL);
    kr_skip_tags(&r);
    assert_int_equal(r.err, KBUF_ERR_MALFORMED);

    struct kwriter w;
    kw_init(&w, 8);
    kw_empty_tags(&w);
    assert_int_equal(w.len, 1);
    assert_int_equal(w.buf[0], 0);
    kw_free(&w);
}

static void test_alloc_bounded_by_arena(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a, 1024);
    uint8_t buf[4] = { 0 };
    struct kreader r;
    kr_init(&r, buf, sizeof(buf), &a);
    assert_null(kr_alloc(&r, 0, 8));
    assert_int_equal(r.err, 0);
    void *p = kr_alloc(&r, 10, 8);
    assert_non_null(p);
    assert_null(kr_alloc(&r, 1000, 8));
    assert_int_equal(r.err, KBUF_ERR_NOMEM);
    arena_reset(&a);

    kr_init(&r, buf, sizeof(buf), &a);
    assert_null(kr_alloc(&r, SIZE_MAX / 2, 4)); /* n * sz overflows */
    assert_int_equal(r.err, KBUF_ERR_NOMEM);

    kr_init(&r, buf, sizeof(buf), NULL);
    assert_null(kr_alloc(&r, 1, 1));
    assert_int_equal(r.err, KBUF_ERR_NOMEM);
    arena_reset(&a);
}

static void test_writer_bounded(void **state)
{
    (void)state;
    struct kwriter w;
    kw_init(&w, 10);
    kw_i64(&w, 1);
    kw_i16(&w, 2);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 10);
    kw_i8(&w, 3);
    assert_int_equal(w.err, KBUF_ERR_NOMEM);
    assert_int_equal(w.len, 10);
    assert_true(w.cap <= 10);
    kw_i8(&w, 4); /* sticky: still nothing written */
    assert_int_equal(w.len, 10);
    kw_free(&w);

    /* Growth across many doublings keeps the bytes. */
    kw_init(&w, 1 << 20);
    for (int i = 0; i < 100000; i++)
        kw_i8(&w, (int8_t)i);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 100000);
    assert_int_equal(w.buf[99999], (uint8_t)99999);
    kw_free(&w);
    assert_null(w.buf);
    assert_int_equal(w.len, 0);
}

static void test_reserve_and_patch(void **state)
{
    (void)state;
    struct kwriter w;
    kw_init(&w, 64);
    size_t at = kw_reserve_i32(&w);
    kw_i16(&w, 7);
    kw_patch_i32(&w, at, (int32_t)(kw_size(&w) - 4));
    const uint8_t want[] = { 0, 0, 0, 2, 0, 7 };
    assert_memory_equal(w.buf, want, sizeof(want));
    kw_free(&w);
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void test_records_file_ranges(void **state)
{
    (void)state;
    char path[] = "/tmp/gregor-kbuf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "0123456789", 10), 10);

    struct kwriter w;
    kw_init(&w, 1024);
    kw_i16(&w, 1);
    kw_records_file(&w, false, fd, 2, 5);
    kw_i8(&w, 9);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.nfiles, 1);
    assert_int_equal(w.files[0].at, 2 + 4);
    assert_int_equal(w.files[0].offset, 2);
    assert_int_equal(w.files[0].len, 5);
    assert_int_equal(w.file_bytes, 5);
    assert_int_equal(kw_size(&w), 2 + 4 + 5 + 1);
    assert_int_equal(w.buf[5], 5); /* int32 length prefix */
    assert_true(fd_is_open(fd));
    kw_free(&w);
    assert_false(fd_is_open(fd)); /* the writer owned it */

    /* A failed writer still takes (and closes) the fd. */
    fd = dup(STDERR_FILENO);
    assert_true(fd >= 0);
    kw_init(&w, 2);
    kw_i32(&w, 1);
    assert_int_not_equal(w.err, 0);
    kw_records_file(&w, true, fd, 0, 10);
    assert_false(fd_is_open(fd));
    assert_int_equal(w.nfiles, 0);
    kw_free(&w);

    /* Compact prefix is len+1 as uvarint. */
    fd = dup(STDERR_FILENO);
    kw_init(&w, 64);
    kw_records_file(&w, true, fd, 0, 200);
    assert_int_equal(w.len, 2);
    assert_int_equal(w.buf[0], (201 & 0x7f) | 0x80);
    assert_int_equal(w.buf[1], 201 >> 7);
    kw_free(&w);
    assert_false(fd_is_open(fd));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_ints_round_trip),
        cmocka_unit_test(test_big_endian_layout),
        cmocka_unit_test(test_uvarint_boundaries),
        cmocka_unit_test(test_varint_zigzag),
        cmocka_unit_test(test_varint_too_long_fails),
        cmocka_unit_test(test_truncation_is_sticky),
        cmocka_unit_test(test_uuid_round_trip),
        cmocka_unit_test(test_strings_classic_and_compact),
        cmocka_unit_test(test_string_errors),
        cmocka_unit_test(test_bytes_borrow_and_null),
        cmocka_unit_test(test_array_len_hostile_counts),
        cmocka_unit_test(test_skip_tags),
        cmocka_unit_test(test_alloc_bounded_by_arena),
        cmocka_unit_test(test_writer_bounded),
        cmocka_unit_test(test_reserve_and_patch),
        cmocka_unit_test(test_records_file_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
