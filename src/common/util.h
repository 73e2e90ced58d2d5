/* util: small helpers every layer uses: clocks, assertions, byte order. */
#ifndef GREGOR_COMMON_UTIL_H
#define GREGOR_COMMON_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Invariants are checked in every build (TigerBeetle style): a broken one aborts loudly. */
#define GREGOR_ASSERT(cond)                                                             \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "assertion failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

int64_t now_ms(void);        /* wall clock, ms since the epoch */
int64_t mono_ms(void);       /* monotonic clock, ms */
int64_t mono_us(void);

static inline uint16_t be16_get(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64_get(const uint8_t *p)
{
    return ((uint64_t)be32_get(p) << 32) | be32_get(p + 4);
}
static inline void be16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void be64_put(uint8_t *p, uint64_t v)
{
    be32_put(p, (uint32_t)(v >> 32));
    be32_put(p + 4, (uint32_t)v);
}

/* "TRANSACTIONAL_ID" -> "TransactionalId": Kafka's words for ACL names in znodes and
 * messages (SecurityUtils.resourceTypeName and the like); cut to outlen - 1 bytes. */
void pascal_case(const char *upper_snake, char *out, size_t outlen);

/* Decodes "%XX" (two hex digits, either case) in place, the form gregor's own stored files
 * escape names and values in: the decoded length, or -1 for a '%' without two hex digits after
 * it or an escaped NUL (%00 would cut the string short). */
long pct_decode_inplace(char *s);

#endif
