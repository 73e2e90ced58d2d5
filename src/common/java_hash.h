/* java_hash: Java's String.hashCode over a UTF-8 string, which Kafka uses to map a group id or
 * a transactional id to a partition of its internal topic (FORMATS.md §12). */
#ifndef GREGOR_COMMON_JAVA_HASH_H
#define GREGOR_COMMON_JAVA_HASH_H

#include <stddef.h>
#include <stdint.h>

/* String.hashCode over the UTF-16 code units of a UTF-8 string (malformed bytes count as U+FFFD,
 * as Java's decoder replaces them). */
int32_t java_string_hash(const char *s, size_t len);
/* Kafka's Utils.abs(hash) % n: abs(INT32_MIN) = 0; 0 when n <= 0. */
int32_t java_partition_for(const char *s, size_t len, int32_t n);

#endif
