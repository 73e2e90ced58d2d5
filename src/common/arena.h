/* arena: a per-request memory pool (as nginx's pools): many small allocations, one free.
 * Bounded: an arena refuses to grow past its limit, so one request cannot take the machine. */
#ifndef GREGOR_COMMON_ARENA_H
#define GREGOR_COMMON_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *head;
    size_t used;   /* bytes handed out, all blocks */
    size_t limit;  /* most bytes this arena may hand out */
};

void arena_init(struct arena *a, size_t limit);
/* Zeroed memory aligned for any type, or NULL when the limit would be passed. */
void *arena_alloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Frees every block; the arena can be used again. */
void arena_reset(struct arena *a);

#endif
