/* txn_log: __transaction_state records as Kafka writes them (its TransactionLog schemas, read from
 * the schema files, never copied): key v0, value v0 (classic) and v1 (flexible, tagged fields). */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/java_hash.h"
#include "common/util.h"
#include "proto/kbuf.h"
#include "txn/txn_log.h"

#define TAG_PREV_PRODUCER_ID 0
#define TAG_NEXT_PRODUCER_ID 1
#define TAG_CLIENT_TXN_VERSION 2

const char *txn_state_name(enum txn_state s)
{
    static const char *const names[TXN_STATE_COUNT] = {
        "Empty", "Ongoing", "PrepareCommit", "PrepareAbort",
        "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
    };
    return (unsigned)s < TXN_STATE_COUNT ? names[s] : "Unknown";
}

int32_t txn_partition_for(const char *transactional_id, int32_t num_partitions)
{
    return java_partition_for(transactional_id, strlen(transactional_id), num_partitions);
}

static int take(struct kwriter *w, struct txn_buf *out)
{
    return kw_take(w, &out->p, &out->len) == 0 ? KERR_NONE : KERR_INVALID_RECORD;
}

int txn_log_encode_key(struct txn_buf *out, const char *transactional_id)
{
    size_t n = strlen(transactional_id);
    if (n > INT16_MAX)
        return KERR_INVALID_RECORD;
    struct kwriter w;
    kw_init(&w, TXN_LOG_RECORD_MAX_BYTES);
    kw_i16(&w, 0);
    kw_str(&w, false, transactional_id, (int32_t)n);
    return take(&w, out);
}

static void encode_topics(struct kwriter *w, bool flexible, const struct txn_log_value *v)
{
    kw_array_len(w, flexible, v->n_topics < 0 ? -1 : v->n_topics);
    for (int32_t i = 0; i < v->n_topics; i++) {
        const struct txn_log_topic *t = &v->topics[i];
        size_t n = strlen(t->topic);
        if (n > INT16_MAX) {
            kw_fail(w, KBUF_ERR_INVALID);
            return;
        }
        kw_str(w, flexible, t->topic, (int32_t)n);
        kw_array_len(w, flexible, t->n_partitions);
        for (int32_t j = 0; j < t->n_partitions; j++)
            kw_i32(w, t->partitions[j]);
        if (flexible)
            kw_empty_tags(w);
    }
}

/* v1's tagged fields: only those off their defaults, in tag order, as Kafka's writers do. */
static void encode_tags(struct kwriter *w, const struct txn_log_value *v)
{
    uint32_t n = (v->prev_producer_id != -1) + (v->next_producer_id != -1) +
                 (v->client_txn_version != 0);
    kw_uvarint(w, n);
    if (v->prev_producer_id != -1) {
        kw_uvarint(w, TAG_PREV_PRODUCER_ID);
        kw_uvarint(w, 8);
        kw_i64(w, v->prev_producer_id);
    }
    if (v->next_producer_id != -1) {
        kw_uvarint(w, TAG_NEXT_PRODUCER_ID);
        kw_uvarint(w, 8);
        kw_i64(w, v->next_producer_id);
    }
    if (v->client_txn_version != 0) {
        kw_uvarint(w, TAG_CLIENT_TXN_VERSION);
        kw_uvarint(w, 2);
        kw_i16(w, v->client_txn_version);
    }
}

int txn_log_encode_value(struct txn_buf *out, int16_t version, const struct txn_log_value *v)
{
    if (version != 0 && version != 1)
        return KERR_INVALID_RECORD;
    GREGOR_ASSERT(v->status >= 0 && v->status < TXN_STATE_COUNT);
    bool flexible = version >= 1;
    struct kwriter w;
    kw_init(&w, TXN_LOG_RECORD_MAX_BYTES);
    kw_i16(&w, version);
    kw_i64(&w, v->producer_id);
    kw_i16(&w, v->producer_epoch);
    kw_i32(&w, v->timeout_ms);
    kw_i8(&w, v->status);
    encode_topics(&w, flexible, v);
    kw_i64(&w, v->last_update_ms);
    kw_i64(&w, v->start_ms);
    if (flexible)
        encode_tags(&w, v);
    return take(&w, out);
}

int txn_log_decode_key(const uint8_t *p, size_t len, struct arena *arena,
                       const char **transactional_id)
{
    struct kreader r;
    kr_init(&r, (uint8_t *)p, len, arena);
    int16_t version = kr_i16(&r);
    if (!kr_ok(&r))
        return -1;
    if (version != 0)
        return 1;
    struct kstr s = kr_str(&r, false, false);
    if (!kr_ok(&r) || kstr_has_nul(s))
        return -1;
    *transactional_id = s.ptr;
    return 0;
}

static struct txn_log_topic *decode_topics(struct kreader *r, bool flexible, int32_t *n_out)
{
    int32_t n = kr_array_len(r, flexible, true);
    *n_out = n;
    if (n <= 0)
        return NULL;
    struct txn_log_topic *topics = kr_alloc(r, (size_t)n, sizeof(*topics));
    for (int32_t i = 0; i < n && kr_ok(r); i++) {
        struct kstr s = kr_str(r, flexible, false);
        if (kstr_has_nul(s))
            kr_fail(r, "topic name");
        int32_t np = kr_array_len(r, flexible, false);
        int32_t *parts = np > 0 ? kr_alloc(r, (size_t)np, sizeof(int32_t)) : NULL;
        for (int32_t j = 0; j < np && kr_ok(r); j++)
            parts[j] = kr_i32(r);
        if (flexible)
            kr_skip_tags(r);
        if (kr_ok(r))
            topics[i] = (struct txn_log_topic){s.ptr, parts, np};
    }
    return topics;
}

/* v1's tagged fields: the three known ones must have their exact sizes; others are skipped. */
static void decode_tags(struct kreader *r, struct txn_log_value *v)
{
    uint32_t count = kr_uvarint(r);
    for (uint32_t i = 0; i < count && kr_ok(r); i++) {
        uint32_t tag = kr_uvarint(r);
        uint32_t size = kr_uvarint(r);
        if (!kr_ok(r) || size > kr_remaining(r)) {
            kr_fail(r, "tagged field size");
            return;
        }
        if (tag == TAG_PREV_PRODUCER_ID && size == 8)
            v->prev_producer_id = kr_i64(r);
        else if (tag == TAG_NEXT_PRODUCER_ID && size == 8)
            v->next_producer_id = kr_i64(r);
        else if (tag == TAG_CLIENT_TXN_VERSION && size == 2)
            v->client_txn_version = kr_i16(r);
        else if (tag <= TAG_CLIENT_TXN_VERSION)
            kr_fail(r, "tagged field size");
        else
            kr_skip(r, size);
    }
}

int txn_log_decode_value(const uint8_t *p, size_t len, struct arena *arena,
                         struct txn_log_value *out)
{
    struct kreader r;
    kr_init(&r, (uint8_t *)p, len, arena);
    memset(out, 0, sizeof(*out));
    out->prev_producer_id = -1;
    out->next_producer_id = -1;
    int16_t version = kr_i16(&r);
    if (!kr_ok(&r) || (version != 0 && version != 1))
        return -1;
    bool flexible = version >= 1;
    out->producer_id = kr_i64(&r);
    out->producer_epoch = kr_i16(&r);
    out->timeout_ms = kr_i32(&r);
    out->status = kr_i8(&r);
    out->topics = decode_topics(&r, flexible, &out->n_topics);
    out->last_update_ms = kr_i64(&r);
    out->start_ms = kr_i64(&r);
    if (flexible)
        decode_tags(&r, out);
    if (!kr_ok(&r) || out->status < 0 || out->status >= TXN_STATE_COUNT)
        return -1;
    return 0;
}
