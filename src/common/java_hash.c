/* java_hash: Java's String.hashCode over UTF-8 (Kafka's partitioning of group and transactional
 * ids), moved here from group/records.c so that group/ and txn/ share one copy. */
#include "common/java_hash.h"

/* One code point from UTF-8; malformed input gives U+FFFD for one byte, as Java's decoder
 * replaces each malformed subsequence. */
static uint32_t utf8_next(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint8_t b = *p;
    int n;
    uint32_t cp, min;
    if (b < 0x80) {
        *pp = p + 1;
        return b;
    } else if (b >= 0xC2 && b <= 0xDF) {
        n = 1, cp = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 2, cp = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 3, cp = b & 0x07, min = 0x10000;
    } else {
        *pp = p + 1;
        return 0xFFFD;
    }
    if (end - p <= n) {
        *pp = p + 1;
        return 0xFFFD;
    }
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *pp = p + 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *pp = p + 1;
        return 0xFFFD;
    }
    *pp = p + n + 1;
    return cp;
}

int32_t java_string_hash(const char *s, size_t len)
{
    uint32_t h = 0;
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        uint32_t cp = utf8_next(&p, end);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

int32_t java_partition_for(const char *s, size_t len, int32_t n)
{
    int32_t h = java_string_hash(s, len);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return n > 0 ? a % n : 0;
}
