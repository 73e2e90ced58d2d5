/* Unit tests for net/loop: timers fire in deadline order, cancel works, before-sleep runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_before_sleep_and_wake_soon),
        cmocka_unit_test(test_posted_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
