/* strtab: open-addressing string hash table with linear probing and backward-shift deletion,
 * used by the group coordinator so that no per-request lookup walks a group's members. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "group/strtab.h"

static uint64_t strtab_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static size_t slot_of(const struct strtab *t, const char *key, uint64_t h, uint64_t *steps)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        if (steps)
            ++*steps;
        const struct strtab_slot *s = &t->slots[i];
        if (s->key == NULL || (s->hash == h && strcmp(s->key, key) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

void *strtab_get(const struct strtab *t, const char *key, uint64_t *steps)
{
    if (t->n == 0 || key == NULL)
        return NULL;
    return t->slots[slot_of(t, key, strtab_hash(key), steps)].val;
}

static void strtab_grow(struct strtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    struct strtab old = *t;
    t->slots = calloc(cap, sizeof(*t->slots));
    GREGOR_ASSERT(t->slots != NULL);
    t->cap = cap;
    t->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key != NULL) {
            size_t at = slot_of(t, old.slots[i].key, old.slots[i].hash, NULL);
            t->slots[at] = old.slots[i];
            t->n++;
        }
    free(old.slots);
}

void strtab_put(struct strtab *t, const char *key, void *val)
{
    GREGOR_ASSERT(key != NULL && val != NULL);
    if ((t->n + 1) * 2 > t->cap)
        strtab_grow(t);
    uint64_t h = strtab_hash(key);
    size_t at = slot_of(t, key, h, NULL);
    if (t->slots[at].key == NULL)
        t->n++;
    t->slots[at] = (struct strtab_slot){key, val, h};
}

void strtab_del(struct strtab *t, const char *key, const void *val)
{
    if (t->n == 0 || key == NULL)
        return;
    size_t mask = t->cap - 1;
    size_t i = slot_of(t, key, strtab_hash(key), NULL);
    if (t->slots[i].key == NULL || t->slots[i].val != val)
        return;
    t->slots[i] = (struct strtab_slot){0};
    t->n--;
    /* Backward shift: move up every later slot of the run whose home is not in (i, j]. */
    for (size_t j = (i + 1) & mask; t->slots[j].key != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)t->slots[j].hash & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        t->slots[i] = t->slots[j];
        t->slots[j] = (struct strtab_slot){0};
        i = j;
    }
}

void strtab_free(struct strtab *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}
