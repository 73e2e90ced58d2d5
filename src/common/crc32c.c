/* crc32c: slicing-by-8 tables for any CPU, and the SSE4.2 crc32 instruction on x86-64 behind
 * a run-time check (cpuid), because batch CRCs are on every append and every recovery scan. */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_table_once, crc_table_init);
    const uint8_t *b = p;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
            crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_table[0][(c ^ *b++) & 0xff];
    return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

/* One crc32 instruction has a latency of 3 cycles and a throughput of 1 per cycle, so a single
 * chain runs at a third of what the unit can do. Long inputs run as three chains over adjacent
 * blocks, joined by "shifting" the earlier chains' registers over the later blocks' lengths:
 * CRC is linear, so reg(A||B) = shift_|B|(reg(A)) ^ reg_from_0(B). A shift by a fixed length is
 * a 32x32 bit matrix, kept as four byte-indexed tables (the method of Mark Adler's crc32c). */
#define CRC_LONG 8192
#define CRC_SHORT 256

static uint32_t shift_long[4][256], shift_short[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2"))) static void shift_table(uint32_t t[4][256], size_t len)
{
    uint32_t col[32];
    for (int i = 0; i < 32; i++) {
        uint64_t c = (uint64_t)1 << i;
        for (size_t j = 0; j < len / 8; j++)
            c = _mm_crc32_u64(c, 0);
        col[i] = (uint32_t)c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t x = 0;
            for (int bit = 0; bit < 8; bit++)
                if (v & (1u << bit))
                    x ^= col[k * 8 + bit];
            t[k][v] = x;
        }
}

static void shift_init(void)
{
    shift_table(shift_long, CRC_LONG);
    shift_table(shift_short, CRC_SHORT);
}

static uint32_t shift(const uint32_t t[4][256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint64_t crc_3way(uint64_t c, const uint8_t **pb,
                                                            size_t *pn, size_t len,
                                                            const uint32_t t[4][256])
{
    const uint8_t *b = *pb;
    size_t n = *pn;
    while (n >= 3 * len) {
        uint64_t c1 = 0, c2 = 0, v0, v1, v2;
        const uint8_t *end = b + len;
        do {
            memcpy(&v0, b, 8);
            memcpy(&v1, b + len, 8);
            memcpy(&v2, b + 2 * len, 8);
            c = _mm_crc32_u64(c, v0);
            c1 = _mm_crc32_u64(c1, v1);
            c2 = _mm_crc32_u64(c2, v2);
            b += 8;
        } while (b < end);
        c = shift(t, shift(t, (uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
        b += 2 * len;
        n -= 3 * len;
    }
    *pb = b;
    *pn = n;
    return c;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc;
    while (n > 0 && ((uintptr_t)b & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
        n--;
    }
    if (n >= 3 * CRC_SHORT) {
        pthread_once(&shift_once, shift_init);
        c = crc_3way(c, &b, &n, CRC_LONG, shift_long);
        c = crc_3way(c, &b, &n, CRC_SHORT, shift_short);
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = _mm_crc32_u64(c, v);
        b += 8;
        n -= 8;
    }
    while (n--)
        c = _mm_crc32_u8((uint32_t)c, *b++);
    return ~(uint32_t)c;
}

static int crc_have_hw;
static pthread_once_t crc_detect_once = PTHREAD_ONCE_INIT;

static void crc_detect(void)
{
    __builtin_cpu_init();
    crc_have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_detect_once, crc_detect);
    return crc_have_hw ? crc32c_hw(crc, p, n) : crc32c_sw(crc, p, n);
}
#else
uint32_t crc32c(uint32_t crc, const void *p, size_t n) { return crc32c_sw(crc, p, n); }
#endif
