/* strtab: the string-keyed hash table of the group coordinator (members by id or instance id,
 * pending members, protocol names): open addressing, keys borrowed from the values' owners. */
#ifndef GREGOR_GROUP_STRTAB_H
#define GREGOR_GROUP_STRTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strtab_slot {
    const char *key;    /* borrowed from *val's owner; NULL = empty slot */
    void *val;
    uint64_t hash;
};

/* Zero-initialised = empty. Grows to keep the load at most 1/2, so a lookup probes O(1)
 * slots; deletion shifts back the slots after it (no tombstones). */
struct strtab {
    struct strtab_slot *slots;
    size_t cap;         /* 0 or a power of two */
    size_t n;
};

/* The value under key, or NULL. *steps (may be NULL) counts the slots probed. */
void *strtab_get(const struct strtab *t, const char *key, uint64_t *steps);
/* Inserts or replaces key -> val (val non-NULL); key must outlive the entry. */
void strtab_put(struct strtab *t, const char *key, void *val);
/* Removes key if it maps to val (another value under the same key stays). */
void strtab_del(struct strtab *t, const char *key, const void *val);
void strtab_free(struct strtab *t);

#endif
