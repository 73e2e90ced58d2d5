/* crc32c: CRC-32C (Castagnoli), the checksum of Kafka record batches (v2) and producer
 * snapshots. A hardware path (SSE4.2 crc32 instruction) is chosen at run time when present. */
#ifndef GREGOR_COMMON_CRC32C_H
#define GREGOR_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over n bytes at p; the result is the finished CRC (pre- and
 * post-inverted as Java's Crc32C), so crc32c(crc32c(0, a, n), b, m) == crc32c(0, ab, n+m). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

/* The portable table path, exposed so tests can compare it with the hardware path. */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
