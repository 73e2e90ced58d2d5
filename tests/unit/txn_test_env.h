/* txn_test_env: a deterministic host for the transaction coordinator in unit tests — a fake clock,
 * a producer id counter, an in-memory __transaction_state that records every append (completed at
 * once, or held until released) and a marker sender whose rounds are completed by hand. */
#ifndef GREGOR_TESTS_TXN_TEST_ENV_H
#define GREGOR_TESTS_TXN_TEST_ENV_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "txn/txn_coordinator.h"

#define TENV_MAX_RECORDS 4096
#define TENV_MAX_HELD 64
#define TENV_MAX_MARKERS 256
#define TENV_MAX_MARKER_PARTS 16

struct tenv_record {
    int32_t partition;
    uint8_t *key;
    int32_t key_len;
    uint8_t *value;          /* NULL = tombstone */
    int32_t value_len;
    int16_t result;          /* what the append answered */
};

struct tenv_marker {
    char id[64];
    int64_t producer_id;
    int16_t producer_epoch;
    bool commit;
    int32_t coordinator_epoch;
    int n_partitions;
    char topics[TENV_MAX_MARKER_PARTS][32];
    int32_t partitions[TENV_MAX_MARKER_PARTS];
    struct txn_op *op;       /* NULL once completed */
};

struct tenv {
    int64_t now;
    int64_t next_pid;
    int16_t pid_error;       /* != 0: next_producer_id fails with it */
    bool hold;               /* appends wait for tenv_release */
    int fail_appends;        /* > 0: the next appends fail with append_error */
    int16_t append_error;
    struct tenv_record records[TENV_MAX_RECORDS];
    int nrecords;
    struct txn_op *held[TENV_MAX_HELD];
    int nheld;
    struct tenv_marker markers[TENV_MAX_MARKERS];
    int nmarkers;
    struct txn_coordinator *tc;
};

static inline int64_t tenv_now(void *ctx) { return ((struct tenv *)ctx)->now; }

static inline int16_t tenv_next_pid(void *ctx, int64_t *out)
{
    struct tenv *e = ctx;
    if (e->pid_error != 0)
        return e->pid_error;
    *out = e->next_pid++;
    return KERR_NONE;
}

static inline void tenv_append(void *ctx, int32_t partition, const struct txn_record *rec,
                               struct txn_op *op)
{
    struct tenv *e = ctx;
    if (e->nrecords == TENV_MAX_RECORDS)
        abort();
    struct tenv_record *r = &e->records[e->nrecords++];
    r->partition = partition;
    r->key = malloc((size_t)rec->key_len);
    memcpy(r->key, rec->key, (size_t)rec->key_len);
    r->key_len = rec->key_len;
    r->value = NULL;
    r->value_len = -1;
    if (rec->value != NULL) {
        r->value = malloc((size_t)rec->value_len + 1);
        memcpy(r->value, rec->value, (size_t)rec->value_len);
        r->value_len = rec->value_len;
    }
    r->result = KERR_NONE;
    if (e->fail_appends > 0) {
        e->fail_appends--;
        r->result = e->append_error;
    }
    if (e->hold) {
        if (e->nheld == TENV_MAX_HELD)
            abort();
        e->held[e->nheld++] = op;
        return;
    }
    /* completed before append returns: the coordinator must cope */
    txn_append_done(e->tc, op, r->result);
}

/* Completes the oldest held append with err. */
static inline void tenv_release(struct tenv *e, int16_t err)
{
    if (e->nheld == 0)
        abort();
    struct txn_op *op = e->held[0];
    memmove(&e->held[0], &e->held[1], (size_t)(e->nheld - 1) * sizeof(e->held[0]));
    e->nheld--;
    txn_append_done(e->tc, op, err);
}

static inline void tenv_send_markers(void *ctx, const struct txn_marker_request *req,
                                     struct txn_op *op)
{
    struct tenv *e = ctx;
    if (e->nmarkers == TENV_MAX_MARKERS || req->n_partitions > TENV_MAX_MARKER_PARTS)
        abort();
    struct tenv_marker *m = &e->markers[e->nmarkers++];
    memset(m, 0, sizeof(*m));
    strncpy(m->id, req->transactional_id, sizeof(m->id) - 1);
    m->producer_id = req->producer_id;
    m->producer_epoch = req->producer_epoch;
    m->commit = req->commit;
    m->coordinator_epoch = req->coordinator_epoch;
    m->n_partitions = req->n_partitions;
    for (int i = 0; i < req->n_partitions; i++) {
        strncpy(m->topics[i], req->partitions[i].topic, sizeof(m->topics[i]) - 1);
        m->partitions[i] = req->partitions[i].partition;
    }
    m->op = op;
}

/* Completes marker round i with err. */
static inline void tenv_markers_done(struct tenv *e, int i, int16_t err)
{
    struct txn_op *op = e->markers[i].op;
    if (op == NULL)
        abort();
    e->markers[i].op = NULL;
    txn_markers_done(e->tc, op, err);
}

static inline struct txn_config tenv_config(void)
{
    return (struct txn_config){
        .num_partitions = 50,
        .max_timeout_ms = 900000,
        .id_expiration_ms = 604800000LL,
        .log_value_version = 0,
        .max_transactional_ids = 1000,
        .max_partitions_per_txn = 100,
    };
}

static inline void tenv_init(struct tenv *e, const struct txn_config *cfg)
{
    memset(e, 0, sizeof(*e));
    e->now = 1700000000000LL;
    e->next_pid = 1000;
    struct txn_env env = {e, tenv_now, tenv_append, tenv_send_markers, tenv_next_pid};
    e->tc = txn_create(cfg, &env);
}

static inline void tenv_free_records(struct tenv *e)
{
    for (int i = 0; i < e->nrecords; i++) {
        free(e->records[i].key);
        free(e->records[i].value);
    }
    e->nrecords = 0;
}

static inline void tenv_destroy(struct tenv *e)
{
    txn_destroy(e->tc);
    e->tc = NULL;
    /* operations still in flight belong to the host, which drops them at shutdown */
    for (int i = 0; i < e->nheld; i++)
        txn_op_abandon(e->held[i]);
    e->nheld = 0;
    for (int i = 0; i < e->nmarkers; i++)
        if (e->markers[i].op != NULL)
            txn_op_abandon(e->markers[i].op);
    tenv_free_records(e);
}

#endif
