/* fuzz_producer_snapshot: the producer state snapshot reader (log/producer_state.c,
 * `<offset>.snapshot` in Kafka's format) on arbitrary bytes. Nothing may crash, overflow or
 * read past the input (copied to an exact-size buffer). Invariants: an accepted image holds at
 * most one producer per entry, each with at most 5 batches whose offsets are not negative and
 * increase; encoded again it parses back to the same state. Most inputs fail the CRC, so the
 * target also parses the input with its CRC recomputed (the first byte of the input says so). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "log/producer_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_state(const struct producer_state *ps, size_t entries)
{
    GREGOR_ASSERT(ps->count >= 0 && (size_t)ps->count <= entries);
    int seen = 0;
    for (const struct producer_entry *e = ps->head; e; e = e->next, seen++) {
        GREGOR_ASSERT(e->producer_id >= 0);
        GREGOR_ASSERT(e->n >= 0 && e->n <= PRODUCER_BATCH_CACHE);
        for (int i = 0; i < e->n; i++) {
            const struct producer_batch_meta *m = &e->batches[i];
            GREGOR_ASSERT(m->first_offset >= 0 && m->first_offset <= m->last_offset);
            GREGOR_ASSERT(i == 0 || m->last_offset > e->batches[i - 1].last_offset);
        }
    }
    GREGOR_ASSERT(seen == ps->count);
}

static void same_state(const struct producer_state *a, const struct producer_state *b)
{
    GREGOR_ASSERT(a->count == b->count);
    for (const struct producer_entry *e = a->head; e; e = e->next) {
        const struct producer_entry *f = producer_state_find(b, e->producer_id);
        GREGOR_ASSERT(f != NULL && f->epoch == e->epoch && f->n == e->n);
        for (int i = 0; i < e->n; i++) {
            GREGOR_ASSERT(f->batches[i].first_seq == e->batches[i].first_seq);
            GREGOR_ASSERT(f->batches[i].last_seq == e->batches[i].last_seq);
            GREGOR_ASSERT(f->batches[i].first_offset == e->batches[i].first_offset);
            GREGOR_ASSERT(f->batches[i].last_offset == e->batches[i].last_offset);
            GREGOR_ASSERT(f->batches[i].timestamp == e->batches[i].timestamp);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool fix_crc = data[0] & 1;
    data++;
    size--;
    uint8_t *image = malloc(size ? size : 1);
    GREGOR_ASSERT(image != NULL);
    memcpy(image, data, size);
    if (fix_crc && size >= 10)
        be32_put(image + 2, crc32c(0, image + 6, size - 6));
    struct producer_state ps = {0};
    const char *why = NULL;
    int rc = producer_state_snapshot_parse(&ps, image, size, &why);
    free(image);
    if (rc < 0) {
        GREGOR_ASSERT(why != NULL && ps.head == NULL && ps.count == 0);
        return 0;
    }
    size_t entries = size >= 10 ? (size - 10) / 46 : 0;
    check_state(&ps, entries);
    uint8_t *again;
    size_t len;
    GREGOR_ASSERT(producer_state_snapshot_encode(&ps, &again, &len) == 0);
    struct producer_state ps2 = {0};
    GREGOR_ASSERT(producer_state_snapshot_parse(&ps2, again, len, &why) == 0);
    same_state(&ps, &ps2);
    free(again);
    producer_state_free(&ps);
    producer_state_free(&ps2);
    return 0;
}
