/* waiters: see waiters.h. Lists are intrusive and doubly linked: parking, unparking and the
 * move to ready are O(1); a wake-up walks the waiters of its kind once. */
#include <stddef.h>

#include "broker/waiters.h"
#include "common/util.h"
#include "net/loop.h"

static void list_add(struct waiter **head, struct waiter *w)
{
    w->prev = NULL;
    w->next = *head;
    if (*head != NULL)
        (*head)->prev = w;
    *head = w;
}

static void list_del(struct waiter **head, struct waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

void waiters_init(struct waiters *ws, struct loop *loop)
{
    *ws = (struct waiters){.loop = loop};
}

static void deadline_fired(struct loop *l, void *arg)
{
    (void)l;
    struct waiter *w = arg;
    w->timer = 0;
    waiter_unpark(w);
    bool done = w->fn(w, WAITER_DEADLINE);
    GREGOR_ASSERT(done);
}

void waiter_park(struct waiters *ws, struct waiter *w, enum waiter_on on, int64_t deadline_mono_ms,
                 waiter_fn fn, void *arg)
{
    GREGOR_ASSERT(w->set == NULL && on >= 0 && on < WAITER_KINDS);
    w->set = ws;
    w->on = on;
    w->ready = false;
    w->fn = fn;
    w->arg = arg;
    w->timer = deadline_mono_ms >= 0 ? loop_timer_add(ws->loop, deadline_mono_ms, deadline_fired, w) : 0;
    list_add(&ws->parked[on], w);
    ws->nparked[on]++;
}

void waiter_unpark(struct waiter *w)
{
    struct waiters *ws = w->set;
    if (ws == NULL)
        return;
    if (w->timer != 0) {
        loop_timer_cancel(ws->loop, w->timer);
        w->timer = 0;
    }
    if (w->ready) {
        list_del(&ws->ready, w);
        ws->nready--;
    } else {
        list_del(&ws->parked[w->on], w);
        ws->nparked[w->on]--;
    }
    GREGOR_ASSERT(ws->nready >= 0 && ws->nparked[w->on] >= 0);
    w->set = NULL;
    w->ready = false;
}

void waiters_wake(struct waiters *ws, enum waiter_on on)
{
    /* A check never parks or answers, so the list only loses the met ones while we walk;
     * bounded by the count parked now all the same. */
    struct waiter *w = ws->parked[on];
    int budget = ws->nparked[on];
    while (w != NULL && budget-- > 0) {
        struct waiter *next = w->next;
        if (w->fn(w, WAITER_CHECK)) {
            list_del(&ws->parked[on], w);
            ws->nparked[on]--;
            if (w->timer != 0) {
                loop_timer_cancel(ws->loop, w->timer);
                w->timer = 0;
            }
            w->ready = true;
            list_add(&ws->ready, w);
            ws->nready++;
        }
        w = next;
    }
}

void waiters_fire(struct waiters *ws)
{
    /* Answering may let a connection's next request in, which may park again (not as
     * ready): the ready list only shrinks here. */
    while (ws->ready != NULL) {
        struct waiter *w = ws->ready;
        waiter_unpark(w);
        bool done = w->fn(w, WAITER_FIRE);
        GREGOR_ASSERT(done);
    }
}

void waiters_expire(struct waiters *ws, enum waiter_on on)
{
    int budget = ws->nparked[on];
    while (ws->parked[on] != NULL && budget-- > 0) {
        struct waiter *w = ws->parked[on];
        waiter_unpark(w);
        bool done = w->fn(w, WAITER_DEADLINE);
        GREGOR_ASSERT(done);
    }
}

int waiters_parked(const struct waiters *ws, enum waiter_on on) { return ws->nparked[on]; }
int waiters_ready(const struct waiters *ws) { return ws->nready; }
