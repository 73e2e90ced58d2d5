/* waiters: one way to park an operation until something it waits for happens — a partition's
 * high watermark or new bytes (WAITER_ON_APPEND: a Fetch's min_bytes, later replica fetches),
 * or its durable point (WAITER_ON_DURABLE: acks=all, later transaction markers) — or until
 * its deadline (a loop timer). The handler registers a callback; nothing here knows an API.
 *
 * A wake-up asks each waiter of that kind whether its condition holds (WAITER_CHECK, which
 * must not answer: it may run inside another handler, e.g. a topic deletion draining the group
 * commit); those that say yes move to the ready list and are answered (WAITER_FIRE) by
 * waiters_fire from the loop's before-sleep hook. A deadline fires the callback directly
 * (WAITER_DEADLINE), from its timer. Owned by one loop: every waiter and its timer live there. */
#ifndef GREGOR_BROKER_WAITERS_H
#define GREGOR_BROKER_WAITERS_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct waiter;

enum waiter_on { WAITER_ON_APPEND = 0, WAITER_ON_DURABLE = 1, WAITER_KINDS = 2 };

enum waiter_event {
    WAITER_CHECK,    /* re-check: return true when met (do not answer yet) */
    WAITER_FIRE,     /* met earlier: answer now */
    WAITER_DEADLINE, /* the deadline passed (or shutdown): answer with what there is */
};

/* Returns true when the operation is complete (for CHECK: met; FIRE and DEADLINE must
 * complete and return true). */
typedef bool (*waiter_fn)(struct waiter *w, enum waiter_event ev);

struct waiters;
struct waiter {
    struct waiter *prev, *next;      /* in set->parked[on] or set->ready */
    struct waiters *set;             /* NULL while not parked */
    enum waiter_on on;
    bool ready;
    uint64_t timer;                  /* deadline timer, 0 when none */
    waiter_fn fn;
    void *arg;
};

struct waiters {
    struct loop *loop;
    struct waiter *parked[WAITER_KINDS];
    int nparked[WAITER_KINDS];
    struct waiter *ready;
    int nready;
};

void waiters_init(struct waiters *ws, struct loop *loop);
/* Parks w (not parked) until a wake-up of kind on finds it met, or deadline_mono_ms (< 0:
 * none). */
void waiter_park(struct waiters *ws, struct waiter *w, enum waiter_on on, int64_t deadline_mono_ms,
                 waiter_fn fn, void *arg);
/* Unparks w without calling it (its deadline timer cancelled). */
void waiter_unpark(struct waiter *w);
/* Asks every waiter parked on `on` whether it is met now; met ones become ready. */
void waiters_wake(struct waiters *ws, enum waiter_on on);
/* Answers the ready waiters. */
void waiters_fire(struct waiters *ws);
/* Every waiter parked on `on` gets its deadline now (shutdown). */
void waiters_expire(struct waiters *ws, enum waiter_on on);
int waiters_parked(const struct waiters *ws, enum waiter_on on);
int waiters_ready(const struct waiters *ws);

#endif
