/* fuzz_txn_log: the __transaction_state record readers (src/txn/txn_log.c) on arbitrary bytes, as
 * a damaged or hostile log segment could hold them. Nothing may crash or read past the record
 * (the input is copied to an exact-size buffer, so ASan sees any overread). Invariant: a value
 * or key that decodes, encoded again in its version, decodes to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/util.h"
#include "txn/txn_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const struct txn_log_value *a, const struct txn_log_value *b)
{
    GREGOR_ASSERT(a->producer_id == b->producer_id);
    GREGOR_ASSERT(a->prev_producer_id == b->prev_producer_id);
    GREGOR_ASSERT(a->next_producer_id == b->next_producer_id);
    GREGOR_ASSERT(a->producer_epoch == b->producer_epoch);
    GREGOR_ASSERT(a->timeout_ms == b->timeout_ms);
    GREGOR_ASSERT(a->status == b->status);
    GREGOR_ASSERT(a->last_update_ms == b->last_update_ms);
    GREGOR_ASSERT(a->start_ms == b->start_ms);
    GREGOR_ASSERT(a->client_txn_version == b->client_txn_version);
    GREGOR_ASSERT(a->n_topics == b->n_topics);
    for (int32_t i = 0; i < a->n_topics; i++) {
        GREGOR_ASSERT(strcmp(a->topics[i].topic, b->topics[i].topic) == 0);
        GREGOR_ASSERT(a->topics[i].n_partitions == b->topics[i].n_partitions);
        for (int32_t j = 0; j < a->topics[i].n_partitions; j++)
            GREGOR_ASSERT(a->topics[i].partitions[j] == b->topics[i].partitions[j]);
    }
}

static void fuzz_value(const uint8_t *p, size_t n, struct arena *a)
{
    struct txn_log_value v, back;
    if (txn_log_decode_value(p, n, a, &v) != 0)
        return;
    GREGOR_ASSERT(v.status >= 0 && v.status < TXN_STATE_COUNT);
    int16_t version = (int16_t)((p[0] << 8) | p[1]);
    struct txn_buf b;
    if (txn_log_encode_value(&b, version, &v) != KERR_NONE)
        return;   /* a string too long for the classic encoding, say */
    /* Its own arena: the input's arena is bounded by the input's size, and a value of many
     * empty topics decoded twice into it ran out (the fuzzer's first finding was this). */
    struct arena again;
    arena_init(&again, 4 * b.len + 4096);
    GREGOR_ASSERT(txn_log_decode_value(b.p, b.len, &again, &back) == 0);
    check_same(&v, &back);
    arena_reset(&again);
    free(b.p);
}

static void fuzz_key(const uint8_t *p, size_t n, struct arena *a)
{
    const char *id = NULL, *again = NULL;
    if (txn_log_decode_key(p, n, a, &id) != 0)
        return;
    struct txn_buf b;
    GREGOR_ASSERT(txn_log_encode_key(&b, id) == KERR_NONE);
    GREGOR_ASSERT(txn_log_decode_key(b.p, b.len, a, &again) == 0);
    GREGOR_ASSERT(strcmp(id, again) == 0);
    GREGOR_ASSERT(txn_partition_for(id, 50) >= 0 && txn_partition_for(id, 50) < 50);
    free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, n);
    struct arena a;
    arena_init(&a, 4 * n + 4096);
    if (data[0] & 1)
        fuzz_key(copy, n, &a);
    else
        fuzz_value(copy, n, &a);
    arena_reset(&a);
    free(copy);
    return 0;
}
