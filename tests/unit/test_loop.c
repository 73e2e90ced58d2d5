/* Unit tests for net/loop: timers fire in deadline order, cancel works and costs O(log n),
 * before-sleep runs, posted tasks run once per turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "common/util.h"
#include "net/loop.h"

static int fired[8];
static int nfired;

static void on_timer(struct loop *l, void *arg)
{
    fired[nfired++] = (int)(intptr_t)arg;
    if (nfired == 3)
        loop_stop(l);
}

static void test_timers_in_order(void **state)
{
    (void)state;
    struct loop *l = loop_create(64);
    assert_non_null(l);
    nfired = 0;
    int64_t now = mono_ms();
    loop_timer_add(l, now + 30, on_timer, (void *)(intptr_t)3);
    loop_timer_add(l, now + 10, on_timer, (void *)(intptr_t)1);
    uint64_t gone = loop_timer_add(l, now + 15, on_timer, (void *)(intptr_t)99);
    loop_timer_add(l, now + 20, on_timer, (void *)(intptr_t)2);
    assert_ptr_equal(loop_timer_cancel_arg(l, gone), (void *)(intptr_t)99);
    assert_null(loop_timer_cancel_arg(l, gone));
    loop_run(l);
    assert_int_equal(nfired, 3);
    assert_int_equal(fired[0], 1);
    assert_int_equal(fired[1], 2);
    assert_int_equal(fired[2], 3);
    assert_true(mono_ms() - now >= 30);
    loop_destroy(l);
}

static int sleeps;
static void hook(struct loop *l, void *arg)
{
    (void)arg;
    if (++sleeps == 5)
        loop_stop(l);
    else
        loop_wake_soon(l);
}

static void test_before_sleep_and_wake_soon(void **state)
{
    (void)state;
    struct loop *l = loop_create(64);
    sleeps = 0;
    loop_set_before_sleep(l, hook, NULL);
    loop_run(l); /* would block forever without wake_soon */
    assert_int_equal(sleeps, 5);
    loop_destroy(l);
}

/* Posted tasks run from the loop in order, once however often posted; one that posts itself
 * again runs on the next turn (the before-sleep hook sees each turn); unposted ones never. */
static int ran[8], nran, turns;
static struct loop_task tasks[3];
static void task_fn(struct loop *l, void *arg)
{
    int i = (int)(intptr_t)arg;
    ran[nran++] = i;
    if (i == 0 && nran < 4)
        loop_post(l, &tasks[0]);
    if (nran >= 4)
        loop_stop(l);
}

static void count_turns(struct loop *l, void *arg)
{
    (void)l;
    (void)arg;
    turns++;
}

static void test_posted_tasks(void **state)
{
    (void)state;
    struct loop *l = loop_create(64);
    for (int i = 0; i < 3; i++)
        tasks[i] = (struct loop_task){.fn = task_fn, .arg = (void *)(intptr_t)i};
    loop_set_before_sleep(l, count_turns, NULL);
    loop_post(l, &tasks[1]);
    loop_post(l, &tasks[0]);
    loop_post(l, &tasks[1]);
    loop_post(l, &tasks[2]);
    loop_unpost(l, &tasks[2]);
    loop_run(l); /* would block forever if the posted tasks did not wake it */
    assert_int_equal(nran, 4);
    int want[4] = {1, 0, 0, 0};
    assert_memory_equal(ran, want, sizeof(want));
    assert_int_equal(turns, 3); /* 0 reposted itself: once per turn, not in a loop */
    loop_destroy(l);
}

/* A deterministic shuffle (xorshift), so a failure repeats. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void shuffle(uint64_t *v, size_t n)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next() % (i + 1));
        uint64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static unsigned log2_ceil(size_t n)
{
    unsigned b = 0;
    while (((size_t)1 << b) < n)
        b++;
    return b;
}

static void never_fires(struct loop *l, void *arg)
{
    (void)l;
    (void)arg;
    fail_msg("a cancelled timer fired");
}

/* 100k timers cancelled in random order: each cancel takes O(log n) heap steps (a scan of the
 * heap took n/2 on average, ~2.5e9 steps for the whole set). Checked after every cancel, so a
 * linear cancel fails within the first few hundred. */
static void test_timer_cancel_is_logarithmic(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct loop *l = loop_create(64);
    uint64_t *ids = malloc(N * sizeof(*ids));
    assert_non_null(ids);
    rng_state = 0x9e3779b97f4a7c15ull;
    int64_t far = mono_ms() + 3600 * 1000;
    for (size_t i = 0; i < N; i++) {
        ids[i] = loop_timer_add(l, far + (int64_t)(rng_next() % 100000), never_fires,
                                (void *)(uintptr_t)(i + 1));
        assert_true(ids[i] > 0);
    }
    uint64_t add_work = loop_timer_work(l);
    assert_true(add_work <= (uint64_t)N * (log2_ceil(N) + 1));
    shuffle(ids, N);
    uint64_t per_cancel = 2 * (uint64_t)log2_ceil(N) + 2; /* down then up: each <= depth + 1 */
    for (size_t k = 0; k < N; k++) {
        assert_non_null(loop_timer_cancel_arg(l, ids[k]));
        uint64_t spent = loop_timer_work(l) - add_work;
        if (spent > (k + 1) * per_cancel)
            fail_msg("%zu cancels took %llu heap steps (bound %llu)", k + 1,
                     (unsigned long long)spent, (unsigned long long)((k + 1) * per_cancel));
    }
    for (size_t k = 0; k < N; k += 997)
        assert_null(loop_timer_cancel_arg(l, ids[k])); /* cancelled already */
    assert_int_equal(loop_run_once(l, 0), 0);           /* nothing left to fire */
    free(ids);
    loop_destroy(l);
}

/* Firing order and cancel semantics: due timers fire once each in deadline order, cancelled
 * ones never; cancel returns the arg once, NULL after, NULL for a fired timer and for 0; an id
 * stays dead when its storage is reused; a callback may cancel and add timers. */
static int64_t fired_when[2048];
static size_t nfired_when;
static uint64_t victim_id;
static void record_when(struct loop *l, void *arg)
{
    (void)l;
    fired_when[nfired_when++] = (int64_t)(intptr_t)arg;
}

static void cancel_victim(struct loop *l, void *arg)
{
    record_when(l, arg);
    assert_non_null(loop_timer_cancel_arg(l, victim_id));
}

static void test_timer_order_and_cancel_semantics(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct loop *l = loop_create(64);
    static uint64_t perm[N], ids[N];
    static bool cancelled[N];
    rng_state = 12345;
    for (size_t i = 0; i < N; i++)
        perm[i] = i;
    shuffle(perm, N);
    int64_t base = mono_ms() - 10 * N; /* all due */
    for (size_t i = 0; i < N; i++) {
        int64_t when = base + 2 * (int64_t)perm[i];
        ids[i] = loop_timer_add(l, when, record_when, (void *)(intptr_t)when);
    }
    for (size_t i = 0; i < N; i++) {
        cancelled[i] = rng_next() % 2 == 0;
        if (cancelled[i])
            assert_ptr_equal(loop_timer_cancel_arg(l, ids[i]),
                             (void *)(intptr_t)(base + 2 * (int64_t)perm[i]));
    }
    for (size_t i = 0; i < N; i++)
        if (cancelled[i])
            assert_null(loop_timer_cancel_arg(l, ids[i]));
    assert_null(loop_timer_cancel_arg(l, 0));
    /* Reused storage: new timers after the cancels must not answer to the old ids. */
    size_t live = 0;
    for (size_t i = 0; i < N; i++)
        live += !cancelled[i];
    uint64_t fresh[N];
    size_t nfresh = 0;
    for (size_t i = 0; i < N; i++) {
        if (!cancelled[i])
            continue;
        int64_t when = base + 2 * (int64_t)perm[i] + 1; /* between the others: distinct */
        fresh[nfresh++] = loop_timer_add(l, when, record_when, (void *)(intptr_t)when);
    }
    for (size_t i = 0; i < N; i++)
        if (cancelled[i])
            assert_null(loop_timer_cancel_arg(l, ids[i]));
    for (size_t i = 0; i < nfresh; i++)
        for (size_t j = 0; j < N; j++)
            assert_true(fresh[i] != ids[j]);
    /* The first-firing timer cancels one due later, which then never fires. */
    victim_id = loop_timer_add(l, base + 2 * N + 5, never_fires, &victim_id);
    loop_timer_add(l, base - 1, cancel_victim, (void *)(intptr_t)(base - 1));
    nfired_when = 0;
    loop_run_once(l, 0);
    assert_int_equal(nfired_when, 1 + live + nfresh);
    for (size_t i = 1; i < nfired_when; i++)
        assert_true(fired_when[i - 1] < fired_when[i]);
    assert_int_equal(fired_when[0], base - 1);
    for (size_t i = 0; i < N; i++)
        assert_null(loop_timer_cancel_arg(l, ids[i])); /* fired or cancelled */
    for (size_t i = 0; i < nfresh; i++)
        assert_null(loop_timer_cancel_arg(l, fresh[i]));
    loop_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_before_sleep_and_wake_soon),
        cmocka_unit_test(test_posted_tasks),
        cmocka_unit_test(test_timer_cancel_is_logarithmic),
        cmocka_unit_test(test_timer_order_and_cancel_semantics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
