/* group_test_env: a deterministic host for the group coordinator in unit tests — a fake clock,
 * a timer list fired by hand, and an in-memory __consumer_offsets that records every append. */
#ifndef GREGOR_TESTS_GROUP_TEST_ENV_H
#define GREGOR_TESTS_GROUP_TEST_ENV_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "group/coordinator.h"

#define FAKE_MAX_TIMERS 4096
#define FAKE_MAX_RECORDS 65536

struct fake_timer {
    uint64_t id;
    int64_t when;
    struct gc_timer *t;
};

struct fake_record {
    int32_t partition;
    uint8_t *key;
    int32_t key_len;
    uint8_t *value;
    int32_t value_len;
};

struct fake_env {
    int64_t wall, mono;
    struct fake_timer timers[FAKE_MAX_TIMERS];
    int ntimers;
    uint64_t next_id;
    struct fake_record records[FAKE_MAX_RECORDS];
    int nrecords;
    int fail_appends;          /* > 0: the next appends fail with append_error */
    int append_error;
    int appends;
    struct group_coordinator *gc;
};

static inline int64_t fake_wall(void *ctx) { return ((struct fake_env *)ctx)->wall; }
static inline int64_t fake_mono(void *ctx) { return ((struct fake_env *)ctx)->mono; }

static inline uint64_t fake_timer_add(void *ctx, int64_t when, struct gc_timer *t)
{
    struct fake_env *e = ctx;
    if (e->ntimers == FAKE_MAX_TIMERS)
        abort();
    e->timers[e->ntimers] = (struct fake_timer){++e->next_id, when, t};
    e->ntimers++;
    return e->next_id;
}

static inline void fake_timer_cancel(void *ctx, uint64_t id)
{
    struct fake_env *e = ctx;
    for (int i = 0; i < e->ntimers; i++)
        if (e->timers[i].id == id) {
            e->timers[i] = e->timers[--e->ntimers];
            return;
        }
}

static inline int fake_append(void *ctx, int32_t partition, const struct gc_record *recs, int n)
{
    struct fake_env *e = ctx;
    e->appends++;
    if (e->fail_appends > 0) {
        e->fail_appends--;
        return e->append_error;
    }
    for (int i = 0; i < n; i++) {
        if (e->nrecords == FAKE_MAX_RECORDS)
            abort();
        struct fake_record *r = &e->records[e->nrecords++];
        r->partition = partition;
        r->key_len = recs[i].key_len;
        r->key = malloc((size_t)recs[i].key_len + 1);
        memcpy(r->key, recs[i].key, (size_t)recs[i].key_len);
        r->value_len = recs[i].value ? recs[i].value_len : -1;
        r->value = NULL;
        if (recs[i].value) {
            r->value = malloc((size_t)recs[i].value_len + 1);
            memcpy(r->value, recs[i].value, (size_t)recs[i].value_len);
        }
    }
    return KERR_NONE;
}

static inline struct gc_config fake_config(void)
{
    struct gc_config c = {
        .num_partitions = 4,
        .initial_rebalance_delay_ms = 0,
        .min_session_timeout_ms = 6000,
        .max_session_timeout_ms = 1800000,
        .max_size = 100,
        .offset_metadata_max_bytes = 4096,
        .offsets_retention_ms = 7LL * 24 * 3600 * 1000,
        .retention_check_interval_ms = 600000,
    };
    return c;
}

static inline struct fake_env *fake_env_new(const struct gc_config *cfg)
{
    struct fake_env *e = calloc(1, sizeof(*e));
    e->wall = 1700000000000LL;
    e->mono = 1000;
    struct gc_env env = {e, fake_wall, fake_mono, fake_timer_add, fake_timer_cancel, fake_append};
    e->gc = gc_create(cfg, &env);
    return e;
}

/* Advances both clocks by ms and fires every timer that is due, earliest first (timers armed
 * while firing are considered too). */
static inline void fake_advance(struct fake_env *e, int64_t ms)
{
    int64_t target = e->mono + ms;
    for (;;) {
        int best = -1;
        for (int i = 0; i < e->ntimers; i++)
            if (e->timers[i].when <= target &&
                (best < 0 || e->timers[i].when < e->timers[best].when))
                best = i;
        if (best < 0)
            break;
        struct fake_timer ft = e->timers[best];
        e->timers[best] = e->timers[--e->ntimers];
        if (ft.when > e->mono) {
            e->wall += ft.when - e->mono;
            e->mono = ft.when;
        }
        gc_timer_fire(e->gc, ft.t);
    }
    e->wall += target - e->mono;
    e->mono = target;
}

static inline void fake_records_free(struct fake_env *e)
{
    for (int i = 0; i < e->nrecords; i++) {
        free(e->records[i].key);
        free(e->records[i].value);
    }
    e->nrecords = 0;
}

static inline void fake_env_free(struct fake_env *e)
{
    gc_destroy(e->gc);
    fake_records_free(e);
    free(e);
}

/* Replays everything old appended into a fresh coordinator (a broker restart); the log moves
 * over to the new env. */
static inline struct fake_env *fake_restart(struct fake_env *old, const struct gc_config *cfg)
{
    struct fake_env *e = fake_env_new(cfg);
    e->wall = old->wall;
    for (int i = 0; i < old->nrecords; i++)
        gc_replay_record(e->gc, old->records[i].key, old->records[i].key_len,
                         old->records[i].value, old->records[i].value_len);
    gc_replay_done(e->gc);
    memcpy(e->records, old->records, sizeof(old->records[0]) * (size_t)old->nrecords);
    e->nrecords = old->nrecords;
    old->nrecords = 0;
    return e;
}

#endif
