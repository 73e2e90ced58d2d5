/* test_waiters: parked operations are re-checked only on wake-ups of their kind, answered only
 * by waiters_fire (never from a check), at their deadline by the loop timer, at once by
 * waiters_expire, and never after waiter_unpark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/waiters.h"
#include "common/util.h"
#include "net/loop.h"

struct op {
    struct waiter w;
    int64_t want;          /* met when *level >= want */
    const int64_t *level;
    int checks, fires, deadlines;
};

static bool op_fn(struct waiter *w, enum waiter_event ev)
{
    struct op *o = w->arg;
    GREGOR_ASSERT(&o->w == w);
    switch (ev) {
    case WAITER_CHECK:
        o->checks++;
        return *o->level >= o->want;
    case WAITER_FIRE:
        o->fires++;
        return true;
    case WAITER_DEADLINE:
        o->deadlines++;
        return true;
    }
    return true;
}

static void test_wake_check_then_fire(void **state)
{
    (void)state;
    struct loop *l = loop_create(64);
    struct waiters ws;
    waiters_init(&ws, l);
    int64_t durable = 0, bytes = 0;
    struct op a = {.want = 10, .level = &durable}, b = {.want = 20, .level = &durable},
              c = {.want = 5, .level = &bytes};
    waiter_park(&ws, &a.w, WAITER_ON_DURABLE, -1, op_fn, &a);
    waiter_park(&ws, &b.w, WAITER_ON_DURABLE, -1, op_fn, &b);
    waiter_park(&ws, &c.w, WAITER_ON_APPEND, mono_ms() + 60000, op_fn, &c);
    assert_int_equal(waiters_parked(&ws, WAITER_ON_DURABLE), 2);
    assert_int_equal(waiters_parked(&ws, WAITER_ON_APPEND), 1);
    durable = 15;
    waiters_wake(&ws, WAITER_ON_DURABLE);
    assert_int_equal(a.checks, 1);
    assert_int_equal(b.checks, 1);
    assert_int_equal(c.checks, 0); /* another kind: not asked */
    assert_int_equal(a.fires, 0);  /* met, but answered only by waiters_fire */
    assert_int_equal(waiters_ready(&ws), 1);
    assert_int_equal(waiters_parked(&ws, WAITER_ON_DURABLE), 1);
    waiters_fire(&ws);
    assert_int_equal(a.fires, 1);
    assert_int_equal(waiters_ready(&ws), 0);
    assert_null(a.w.set);
    /* Unparked: never called again, its deadline timer gone. */
    waiter_unpark(&c.w);
    assert_int_equal(waiters_parked(&ws, WAITER_ON_APPEND), 0);
    bytes = 100;
    waiters_wake(&ws, WAITER_ON_APPEND);
    assert_int_equal(c.checks, 0);
    durable = 20;
    waiters_wake(&ws, WAITER_ON_DURABLE);
    waiters_fire(&ws);
    assert_int_equal(b.fires, 1);
    assert_int_equal(a.checks, 1);
    loop_destroy(l);
}

static void stop_later(struct loop *l, void *arg)
{
    (void)arg;
    loop_stop(l);
}

static void test_deadline_fires_from_timer(void **state)
{
    (void)state;
    struct loop *l = loop_create(64);
    struct waiters ws;
    waiters_init(&ws, l);
    int64_t bytes = 0;
    struct op a = {.want = 5, .level = &bytes};
    int64_t t0 = mono_ms();
    waiter_park(&ws, &a.w, WAITER_ON_APPEND, t0 + 20, op_fn, &a);
    loop_timer_add(l, t0 + 200, stop_later, NULL);
    loop_run(l);
    assert_int_equal(a.deadlines, 1);
    assert_int_equal(a.fires, 0);
    assert_int_equal(waiters_parked(&ws, WAITER_ON_APPEND), 0);
    assert_null(a.w.set);
    loop_destroy(l);
}

static void test_expire_answers_all_of_a_kind(void **state)
{
    (void)state;
    struct loop *l = loop_create(64);
    struct waiters ws;
    waiters_init(&ws, l);
    int64_t bytes = 0;
    struct op ops[5];
    for (int i = 0; i < 5; i++) {
        ops[i] = (struct op){.want = 1, .level = &bytes};
        waiter_park(&ws, &ops[i].w, WAITER_ON_APPEND, mono_ms() + 60000, op_fn, &ops[i]);
    }
    struct op d = {.want = 1, .level = &bytes};
    waiter_park(&ws, &d.w, WAITER_ON_DURABLE, -1, op_fn, &d);
    waiters_expire(&ws, WAITER_ON_APPEND);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ops[i].deadlines, 1);
    assert_int_equal(d.deadlines, 0);
    assert_int_equal(waiters_parked(&ws, WAITER_ON_APPEND), 0);
    assert_int_equal(waiters_parked(&ws, WAITER_ON_DURABLE), 1);
    waiter_unpark(&d.w);
    loop_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_check_then_fire),
        cmocka_unit_test(test_deadline_fires_from_timer),
        cmocka_unit_test(test_expire_answers_all_of_a_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
