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

struct loop_timer {
    int64_t when;
    uint64_t id;
    loop_timer_fn fn;
    void *arg;
};

struct loop {
    int epfd;
    int max_fds;
    struct loop_file *files;
    struct epoll_event *fired;
    struct loop_timer *heap;
    size_t nheap, capheap;
    uint64_t next_timer_id;
    loop_hook_fn before_sleep;
    void *before_sleep_arg;
    bool stop;
    bool wake_soon;
    struct loop_task *tasks_head, *tasks_tail; /* posted, FIFO */
    size_t ntasks;
};

struct loop *loop_create(int max_fds)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
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

static void heap_swap(struct loop *l, size_t a, size_t b)
{
    struct loop_timer t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
}

static void heap_up(struct loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p].when <= l->heap[i].when)
            break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->nheap && l->heap[c].when < l->heap[m].when)
            m = c;
        if (c + 1 < l->nheap && l->heap[c + 1].when < l->heap[m].when)
            m = c + 1;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

static void heap_remove(struct loop *l, size_t i)
{
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    heap_down(l, i);
    heap_up(l, i);
}

uint64_t loop_timer_add(struct loop *l, int64_t when, loop_timer_fn fn, void *arg)
{
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 64;
        struct loop_timer *h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL)
            return 0;
        l->heap = h;
        l->capheap = cap;
    }
    uint64_t id = ++l->next_timer_id;
    l->heap[l->nheap] = (struct loop_timer){.when = when, .id = id, .fn = fn, .arg = arg};
    heap_up(l, l->nheap++);
    return id;
}

void *loop_timer_cancel_arg(struct loop *l, uint64_t id)
{
    if (id == 0)
        return NULL;
    for (size_t i = 0; i < l->nheap; i++) {
        if (l->heap[i].id == id) {
            void *arg = l->heap[i].arg;
            heap_remove(l, i);
            return arg;
        }
    }
    return NULL;
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
        struct loop_timer t = l->heap[0];
        heap_remove(l, 0);
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
