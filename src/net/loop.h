/* loop: a small epoll event loop (after Redis' ae.c): file events, one-shot timers, and a
 * before-sleep hook where the broker group-commits a turn's writes before replies go out. */
#ifndef GREGOR_NET_LOOP_H
#define GREGOR_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define LOOP_READ 1u
#define LOOP_WRITE 2u
#define LOOP_HUP 4u /* only in events passed to a callback: the peer hung up or the fd failed
                     * (reported whatever the interest, so a callback must act on it) */

struct loop;
typedef void (*loop_io_fn)(struct loop *l, int fd, void *arg, unsigned events);
typedef void (*loop_timer_fn)(struct loop *l, void *arg);
typedef void (*loop_hook_fn)(struct loop *l, void *arg);

struct loop *loop_create(int max_fds);
void loop_destroy(struct loop *l);
/* Registers or changes interest for fd (events 0 = keep registered, no interest). */
int loop_set(struct loop *l, int fd, unsigned events, loop_io_fn fn, void *arg);
void loop_del(struct loop *l, int fd);

/* One-shot timer at mono ms `when`; returns an id > 0 for loop_timer_cancel. */
uint64_t loop_timer_add(struct loop *l, int64_t when_mono_ms, loop_timer_fn fn, void *arg);
void loop_timer_cancel(struct loop *l, uint64_t id);
/* Cancels and returns the timer's arg (NULL if it already fired or never was). */
void *loop_timer_cancel_arg(struct loop *l, uint64_t id);
/* Heap steps taken by timer adds, cancels and firings so far: a work count for tests. */
uint64_t loop_timer_work(const struct loop *l);

void loop_set_before_sleep(struct loop *l, loop_hook_fn fn, void *arg);

/* Work to run from the loop itself, after this turn's file events and timers (e.g. the next
 * pipelined request of a connection whose reply was just queued): never inside the code that
 * posts it, so a reply path cannot re-enter a handler. The caller owns the struct (embedded in
 * its object) and must loop_unpost it before freeing. Posting a posted task does nothing. */
struct loop_task {
    struct loop_task *prev, *next;
    loop_hook_fn fn;
    void *arg;
    bool posted;
};
void loop_post(struct loop *l, struct loop_task *t);
void loop_unpost(struct loop *l, struct loop_task *t);
/* Runs until loop_stop; returns 0. */
int loop_run(struct loop *l);
/* One turn: the before-sleep hook, at most timeout_ms of waiting for events (less when a timer
 * or posted work is due), the events, due timers and posted tasks. Returns the number of file
 * events handled, or -1 when epoll_wait failed. For tests and fuzzing. */
int loop_run_once(struct loop *l, int timeout_ms);
void loop_stop(struct loop *l);
/* Makes the next epoll_wait return at once (the before-sleep hook has more to do). */
void loop_wake_soon(struct loop *l);

#endif
