/* loop: epoll + a binary min-heap of timers. Single-threaded; other threads talk to it only
 * through file descriptors (eventfd) they register here. */
#include "net/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"

struct loop_file {
    loop_io_fn fn;
    void *arg;
    unsigned events;
    bool registered;
};

/* A heap entry: the deadline and the slot holding the rest. Entries move; slots do not, and
 * each slot knows where its entry is, so a cancel finds it without a scan. */
struct loop_timer {
    int64_t when;
    uint32_t slot;
};

/* A timer's id is its slot's generation (high 32 bits) and the slot + 1 (low 32 bits): a
 * slot is reused once its timer fired or was cancelled, with the next generation, so an old id
 * names nothing (until 2^32 reuses of one slot). */
struct loop_timer_slot {
    loop_timer_fn fn;
    void *arg;
    uint32_t gen;
    uint32_t heap_index; /* live: where its entry is; free: the next free slot */
    bool live;
};
#define LOOP_NO_SLOT UINT32_MAX

struct loop {
    int epfd;
    int max_fds;
    struct loop_file *files;
    struct epoll_event *fired;
    struct loop_timer *heap;          /* capheap entries, nheap of them live */
    struct loop_timer_slot *slots;    /* capheap slots */
    size_t nheap, capheap, nslots;    /* nslots: slots ever handed out */
    uint32_t free_slot;               /* a list through heap_index, LOOP_NO_SLOT at its end */
    loop_hook_fn before_sleep;
    void *before_sleep_arg;
    bool stop;
    bool wake_soon;
    struct loop_task *tasks_head, *tasks_tail; /* posted, FIFO */
    size_t ntasks;
    uint64_t timer_work;
};

struct loop *loop_create(int max_fds)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->free_slot = LOOP_NO_SLOT;
    l->max_fds = max_fds;
    l->files = calloc((size_t)max_fds, sizeof(*l->files));
    l->fired = calloc(256, sizeof(*l->fired));
    if (l->epfd < 0 || l->files == NULL || l->fired == NULL) {
        loop_destroy(l);
        return NULL;
    }
    return l;
}

void loop_destroy(struct loop *l)
{
    if (l == NULL)
        return;
    if (l->epfd >= 0)
        close(l->epfd);
    free(l->files);
    free(l->fired);
    free(l->heap);
    free(l->slots);
    free(l);
}

int loop_set(struct loop *l, int fd, unsigned events, loop_io_fn fn, void *arg)
{
    if (fd < 0 || fd >= l->max_fds) {
        errno = EMFILE;
        return -1;
    }
    struct loop_file *f = &l->files[fd];
    struct epoll_event ev = {0};
    ev.data.fd = fd;
    if (events & LOOP_READ)
        ev.events |= EPOLLIN;
    if (events & LOOP_WRITE)
        ev.events |= EPOLLOUT;
    int op = f->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (f->registered && f->events == events && f->fn == fn && f->arg == arg)
        return 0;
    if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
        return -1;
    f->registered = true;
    f->events = events;
    f->fn = fn;
    f->arg = arg;
    return 0;
}

void loop_del(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->max_fds || !l->files[fd].registered)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    memset(&l->files[fd], 0, sizeof(l->files[fd]));
}

/* Puts entry t at i and tells its slot. */
static void heap_place(struct loop *l, size_t i, struct loop_timer t)
{
    l->heap[i] = t;
    l->slots[t.slot].heap_index = (uint32_t)i;
}

/* Sifts the entry at i up, then down: the same comparisons and moves as a swapping heap, so
 * timers with equal deadlines fire in the order they always did. */
static void heap_up(struct loop *l, size_t i)
{
    struct loop_timer t = l->heap[i];
    while (i > 0) {
        l->timer_work++;
        size_t p = (i - 1) / 2;
        if (l->heap[p].when <= t.when)
            break;
        heap_place(l, i, l->heap[p]);
        i = p;
    }
    heap_place(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
    struct loop_timer t = l->heap[i];
    for (;;) {
        l->timer_work++;
        size_t c = 2 * i + 1, m = i;
        int64_t least = t.when;
        if (c < l->nheap && l->heap[c].when < least)
            m = c, least = l->heap[c].when;
        if (c + 1 < l->nheap && l->heap[c + 1].when < least)
            m = c + 1;
        if (m == i)
            break;
        heap_place(l, i, l->heap[m]);
        i = m;
    }
    heap_place(l, i, t);
}

/* Takes the entry at i out of the heap and frees its slot; returns what the slot held. */
static struct loop_timer_slot heap_remove(struct loop *l, size_t i)
{
    GREGOR_ASSERT(i < l->nheap);
    uint32_t slot = l->heap[i].slot;
    struct loop_timer_slot *s = &l->slots[slot];
    GREGOR_ASSERT(s->live && s->heap_index == i);
    struct loop_timer_slot was = *s;
    s->live = false;
    s->gen = s->gen == UINT32_MAX ? 1 : s->gen + 1;
    s->heap_index = l->free_slot;
    l->free_slot = slot;
    l->nheap--;
    if (i < l->nheap) {
        heap_place(l, i, l->heap[l->nheap]);
        heap_down(l, i);
        heap_up(l, i);
    }
    return was;
}

static bool timers_grow(struct loop *l)
{
    size_t cap = l->capheap ? l->capheap * 2 : 64;
    if (cap > LOOP_NO_SLOT)
        return false;
    struct loop_timer *h = realloc(l->heap, cap * sizeof(*h));
    if (h == NULL)
        return false;
    l->heap = h;
    struct loop_timer_slot *s = realloc(l->slots, cap * sizeof(*s));
    if (s == NULL)
        return false; /* heap grown alone: harmless, capheap still names the smaller */
    l->slots = s;
    l->capheap = cap;
    return true;
}

uint64_t loop_timer_add(struct loop *l, int64_t when, loop_timer_fn fn, void *arg)
{
    uint32_t slot = l->free_slot;
    if (slot == LOOP_NO_SLOT) {
        if (l->nslots == l->capheap && !timers_grow(l))
            return 0;
        slot = (uint32_t)l->nslots++;
        l->slots[slot].gen = 1;
    } else {
        l->free_slot = l->slots[slot].heap_index;
    }
    GREGOR_ASSERT(l->nheap < l->capheap);
    struct loop_timer_slot *s = &l->slots[slot];
    s->fn = fn;
    s->arg = arg;
    s->live = true;
    size_t i = l->nheap++;
    heap_place(l, i, (struct loop_timer){.when = when, .slot = slot});
    heap_up(l, i);
    return ((uint64_t)s->gen << 32) | ((uint64_t)slot + 1);
}

void *loop_timer_cancel_arg(struct loop *l, uint64_t id)
{
    uint64_t low = id & 0xffffffffu;
    if (low == 0 || low > l->nslots)
        return NULL;
    struct loop_timer_slot *s = &l->slots[low - 1];
    if (!s->live || s->gen != (uint32_t)(id >> 32))
        return NULL;
    return heap_remove(l, s->heap_index).arg;
}

void loop_timer_cancel(struct loop *l, uint64_t id)
{
    loop_timer_cancel_arg(l, id);
}

void loop_set_before_sleep(struct loop *l, loop_hook_fn fn, void *arg)
{
    l->before_sleep = fn;
    l->before_sleep_arg = arg;
}

void loop_post(struct loop *l, struct loop_task *t)
{
    if (t->posted)
        return;
    t->posted = true;
    t->next = NULL;
    t->prev = l->tasks_tail;
    if (l->tasks_tail)
        l->tasks_tail->next = t;
    else
        l->tasks_head = t;
    l->tasks_tail = t;
    l->ntasks++;
}

void loop_unpost(struct loop *l, struct loop_task *t)
{
    if (!t->posted)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        l->tasks_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tasks_tail = t->prev;
    t->prev = t->next = NULL;
    t->posted = false;
    GREGOR_ASSERT(l->ntasks > 0);
    l->ntasks--;
}

/* Runs the tasks posted before this call; what they post runs on the next turn (bounded). */
static void run_posted(struct loop *l)
{
    size_t budget = l->ntasks;
    while (budget-- > 0 && l->tasks_head != NULL) {
        struct loop_task *t = l->tasks_head;
        loop_unpost(l, t);
        t->fn(l, t->arg);
    }
}

void loop_stop(struct loop *l) { l->stop = true; }
void loop_wake_soon(struct loop *l) { l->wake_soon = true; }

static void run_due_timers(struct loop *l)
{
    int64_t now = mono_ms();
    /* Bounded: timers added by a callback for "now" run next turn, not in this one. */
    size_t budget = l->nheap;
    while (budget-- > 0 && l->nheap > 0 && l->heap[0].when <= now) {
        struct loop_timer_slot t = heap_remove(l, 0);
        t.fn(l, t.arg);
    }
}

/* One turn; max_timeout -1 sleeps until the next timer or event. */
static int loop_turn(struct loop *l, int max_timeout)
{
    if (l->before_sleep != NULL)
        l->before_sleep(l, l->before_sleep_arg);
    if (l->stop)
        return 0;
    int timeout = -1;
    if (l->wake_soon || l->tasks_head != NULL) {
        timeout = 0;
        l->wake_soon = false;
    } else if (l->nheap > 0) {
        int64_t d = l->heap[0].when - mono_ms();
        timeout = d < 0 ? 0 : (d > 60000 ? 60000 : (int)d);
    }
    if (max_timeout >= 0 && (timeout < 0 || timeout > max_timeout))
        timeout = max_timeout;
    int n = epoll_wait(l->epfd, l->fired, 256, timeout);
    if (n < 0 && errno != EINTR) {
        LOG_ERROR("EventLoop", "epoll_wait failed: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = l->fired[i].data.fd;
        struct loop_file *f = &l->files[fd];
        if (!f->registered)
            continue;
        unsigned ev = 0;
        uint32_t e = l->fired[i].events;
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
            ev |= LOOP_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            ev |= LOOP_WRITE;
        if (e & (EPOLLHUP | EPOLLERR))
            ev |= LOOP_HUP;
        f->fn(l, fd, f->arg, ev);
    }
    run_due_timers(l);
    run_posted(l);
    return n < 0 ? 0 : n;
}

int loop_run(struct loop *l)
{
    l->stop = false; /* each run lasts until a loop_stop made during it */
    while (!l->stop)
        if (loop_turn(l, -1) < 0)
            return -1;
    return 0;
}

int loop_run_once(struct loop *l, int timeout_ms)
{
    l->stop = false;
    return loop_turn(l, timeout_ms < 0 ? 0 : timeout_ms);
}

uint64_t loop_timer_work(const struct loop *l) { return l->timer_work; }
