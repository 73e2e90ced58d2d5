/* conn: connection I/O. Frames are staged in a per-connection 64 KiB buffer; a frame larger
 * than that is read straight into its own allocation. Output is a queue of responses, each a
 * memory buffer with file ranges spliced in, written with write(2) and sendfile(2). */
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"
#include "proto/header.h"

#define CONN_STAGE_BYTES (64u * 1024u)
#define NET_MAX_LISTENERS 8

struct out_item {
    struct out_item *next;
    uint8_t *buf;
    size_t len;
    struct net_file_range *files;
    size_t nfiles;
    size_t piece;      /* 2*i = memory before file i; 2*i+1 = file i; 2*nfiles = tail */
    size_t piece_done; /* bytes of the current piece already sent */
    bool hole;         /* a deferred reply's place, not filled yet: nothing after it goes out */
};

struct conn {
    struct net *net;
    struct conn *prev, *next;
    int fd;
    uint64_t id;
    char peer[64];
    uint8_t *stage;        /* CONN_STAGE_BYTES */
    size_t stage_start, stage_end;
    uint8_t *big;          /* a large frame being read directly */
    size_t big_len, big_have;
    bool busy;             /* a frame is up with the upper layer */
    bool pumping;          /* conn_pump is handing frames up: it goes on by itself */
    struct loop_task pump_task; /* posted when a reply lets the next frame up */
    bool closed;
    int holes;             /* deferred replies not filled yet: the struct outlives a close */
    int depth;             /* >0 while inside a callback: free is deferred */
    struct out_item *out_head, *out_tail;
    size_t out_bytes;
    void *data;
};

struct net {
    struct loop *loop;
    struct net_limits lim;
    net_frame_fn on_frame;
    net_close_fn on_close;
    void *ctx;
    int listen_fds[NET_MAX_LISTENERS];
    int nlisten;
    struct conn *conns;
    int nconns;
    uint64_t next_id;
};

static void conn_pump(struct conn *c);
static void conn_update_interest(struct conn *c);
static void conn_flush(struct conn *c);
static void net_conn_event(struct loop *l, int fd, void *arg, unsigned events);

struct net *net_create(struct loop *l, const struct net_limits *lim, net_frame_fn on_frame,
                       net_close_fn on_close, void *ctx)
{
    struct net *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->loop = l;
    n->lim = *lim;
    n->on_frame = on_frame;
    n->on_close = on_close;
    n->ctx = ctx;
    return n;
}

static void out_item_free(struct out_item *it)
{
    for (size_t i = 0; i < it->nfiles; i++)
        close(it->files[i].fd);
    free(it->files);
    free(it->buf);
    free(it);
}

static void conn_free(struct conn *c)
{
    struct out_item *it = c->out_head;
    while (it != NULL) {
        struct out_item *next = it->next;
        out_item_free(it);
        it = next;
    }
    free(c->stage);
    free(c->big);
    free(c);
}

void conn_close(struct conn *c, const char *why)
{
    if (c->closed)
        return;
    struct net *n = c->net;
    if (why != NULL)
        LOG_INFO("SocketServer", "Closing connection %s (id %llu): %s", c->peer,
                 (unsigned long long)c->id, why);
    c->closed = true;
    loop_unpost(n->loop, &c->pump_task);
    loop_del(n->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nconns--;
    c->depth++;
    if (n->on_close != NULL)
        n->on_close(n->ctx, c);
    c->depth--;
    if (c->depth == 0 && c->holes == 0)
        conn_free(c);
}

/* Leaves a callback; frees the connection if it was closed inside. Returns false if gone. */
static bool conn_leave(struct conn *c)
{
    c->depth--;
    if (c->closed && c->depth == 0 && c->holes == 0) {
        conn_free(c);
        return false;
    }
    return !c->closed;
}

static void deliver(struct conn *c, uint8_t *frame, size_t len)
{
    c->busy = true;
    c->depth++;
    c->net->on_frame(c->net->ctx, c, frame, len);
    conn_leave(c);
}

/* The request that was up is answered: the next frame may come up. Never here, inside the
 * code that answered (a handler, a coordinator answering every member of a group, a sync
 * completing): the next request of this connection could free what that code is walking, and
 * a pipelined burst would nest once per frame. conn_pump's own loop goes on when it is the
 * caller; otherwise the loop runs the pump after this turn's events. */
static void conn_next(struct conn *c)
{
    c->busy = false;
    if (!c->pumping && !c->closed)
        loop_post(c->net->loop, &c->pump_task);
}

static void conn_pump_task(struct loop *l, void *arg)
{
    (void)l;
    conn_pump(arg);
}

/* Hands complete frames up, one at a time, while the connection is free to take one and its
 * replies are not piling up unread (max_output_bytes). Frames come up only from here. */
static void conn_pump(struct conn *c)
{
    GREGOR_ASSERT(!c->pumping);
    c->depth++;
    c->pumping = true;
    while (!c->closed && !c->busy && c->big == NULL &&
           c->out_bytes <= c->net->lim.max_output_bytes) {
        size_t avail = c->stage_end - c->stage_start;
        int32_t size = 0;
        enum frame_check fc = proto_frame_check(c->stage + c->stage_start, avail,
                                                c->net->lim.max_frame_bytes, &size);
        if (fc == FRAME_NEED_MORE)
            break;
        if (fc == FRAME_BAD_SIZE) {
            char why[128];
            snprintf(why, sizeof(why), "frame size %d outside 8..%zu (socket.request.max.bytes)",
                     size, c->net->lim.max_frame_bytes);
            conn_close(c, why);
            break;
        }
        size_t have = avail - 4 < (size_t)size ? avail - 4 : (size_t)size;
        if (have < (size_t)size && (size_t)size + 4 <= CONN_STAGE_BYTES)
            break; /* the rest will fit the stage: wait for it */
        uint8_t *frame = malloc((size_t)size);
        if (frame == NULL) {
            conn_close(c, "out of memory for a request frame");
            break;
        }
        memcpy(frame, c->stage + c->stage_start + 4, have);
        c->stage_start += 4 + have;
        if (have == (size_t)size) {
            deliver(c, frame, have);
        } else {
            /* Too big to stage: read the rest straight into the frame. */
            c->big = frame;
            c->big_len = (size_t)size;
            c->big_have = have;
        }
    }
    c->pumping = false;
    if (c->stage_start == c->stage_end)
        c->stage_start = c->stage_end = 0;
    if (conn_leave(c))
        conn_update_interest(c);
}

static void conn_read(struct conn *c)
{
    for (int rounds = 0; rounds < 16 && !c->closed; rounds++) {
        uint8_t *dst;
        size_t room;
        if (c->big != NULL) {
            dst = c->big + c->big_have;
            room = c->big_len - c->big_have;
        } else {
            if (c->stage_start > 0 && c->stage_end == CONN_STAGE_BYTES) {
                memmove(c->stage, c->stage + c->stage_start, c->stage_end - c->stage_start);
                c->stage_end -= c->stage_start;
                c->stage_start = 0;
            }
            dst = c->stage + c->stage_end;
            room = CONN_STAGE_BYTES - c->stage_end;
        }
        if (room == 0)
            break;
        ssize_t r = read(c->fd, dst, room);
        if (r == 0) {
            conn_close(c, NULL);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(c, strerror(errno));
            break;
        }
        if (c->big != NULL) {
            c->big_have += (size_t)r;
            if (c->big_have == c->big_len) {
                uint8_t *frame = c->big;
                size_t len = c->big_len;
                c->big = NULL;
                c->depth++;
                c->pumping = true;
                deliver(c, frame, len);
                c->pumping = false;
                if (!conn_leave(c))
                    return;
            }
        } else {
            c->stage_end += (size_t)r;
        }
        if ((size_t)r < room)
            break;
    }
    if (!c->closed)
        conn_pump(c);
}

static void conn_update_interest(struct conn *c)
{
    if (c->closed)
        return;
    unsigned ev = 0;
    bool room = c->big != NULL || c->stage_end < CONN_STAGE_BYTES || c->stage_start > 0;
    if (room && c->out_bytes <= c->net->lim.max_output_bytes && !(c->busy && c->big != NULL))
        ev |= LOOP_READ;
    /* Only when the head can go: a writable socket would wake the loop on every turn while
     * the head is a reply still owed (conn_send_deferred flushes when it is filled). */
    if (c->out_head != NULL && !c->out_head->hole)
        ev |= LOOP_WRITE;
    loop_set(c->net->loop, c->fd, ev, net_conn_event, c);
}

/* Writes as much queued output as the socket takes. */
static void conn_flush(struct conn *c)
{
    while (c->out_head != NULL && !c->closed) {
        struct out_item *it = c->out_head;
        if (it->hole)
            break; /* the reply owed before everything behind it */
        size_t i = it->piece / 2;
        ssize_t w;
        size_t want;
        if (it->piece % 2 == 0) {
            size_t from = i == 0 ? 0 : it->files[i - 1].at;
            size_t to = i < it->nfiles ? it->files[i].at : it->len;
            want = to - from - it->piece_done;
            if (want == 0) {
                w = 0;
            } else {
                w = send(c->fd, it->buf + from + it->piece_done, want, MSG_NOSIGNAL);
            }
        } else {
            struct net_file_range *f = &it->files[i];
            want = f->len - it->piece_done;
            off_t off = f->offset + (off_t)it->piece_done;
            w = want == 0 ? 0 : sendfile(c->fd, f->fd, &off, want);
            if (w == 0 && want > 0) {
                /* The file is shorter than promised (truncated underneath): never send a
                 * response shorter than its size prefix; drop the connection instead. */
                conn_close(c, "segment file shrank while being sent");
                return;
            }
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c, strerror(errno));
            return;
        }
        it->piece_done += (size_t)w;
        c->out_bytes -= (size_t)w;
        if ((size_t)w == want) {
            it->piece++;
            it->piece_done = 0;
            if (it->piece > 2 * it->nfiles) {
                c->out_head = it->next;
                if (c->out_head == NULL)
                    c->out_tail = NULL;
                out_item_free(it);
            }
        } else {
            break;
        }
    }
}

static void net_conn_event(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)fd;
    struct conn *c = arg;
    c->depth++;
    if (events & LOOP_WRITE)
        conn_flush(c);
    if (!c->closed && (events & LOOP_READ))
        conn_read(c);
    else if (!c->closed && !c->busy)
        conn_pump(c); /* output drained below max_output_bytes: staged frames may go up */
    if (conn_leave(c))
        conn_update_interest(c);
}

/* A reply that will not be sent: its bytes and the file descriptors it owns. */
static void reply_drop(uint8_t *buf, const struct net_file_range *files, size_t nfiles)
{
    free(buf);
    for (size_t i = 0; i < nfiles; i++)
        close(files[i].fd);
}

/* Puts buf + files into it (a fresh item or a hole). false when memory ran out (closed). */
static bool out_item_fill(struct conn *c, struct out_item *it, uint8_t *buf, size_t len,
                          const struct net_file_range *files, size_t nfiles)
{
    struct net_file_range *fc = nfiles ? malloc(nfiles * sizeof(*fc)) : NULL;
    if (nfiles && fc == NULL) {
        reply_drop(buf, files, nfiles);
        conn_close(c, "out of memory for a response");
        return false;
    }
    if (nfiles)
        memcpy(fc, files, nfiles * sizeof(*fc));
    it->buf = buf;
    it->len = len;
    it->files = fc;
    it->nfiles = nfiles;
    it->hole = false;
    size_t total = len;
    for (size_t i = 0; i < nfiles; i++)
        total += files[i].len;
    c->out_bytes += total;
    return true;
}

static void out_append(struct conn *c, struct out_item *it)
{
    if (c->out_tail)
        c->out_tail->next = it;
    else
        c->out_head = it;
    c->out_tail = it;
}

void conn_send(struct conn *c, uint8_t *buf, size_t len, const struct net_file_range *files,
               size_t nfiles)
{
    struct out_item *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        reply_drop(buf, files, nfiles);
        conn_close(c, "out of memory for a response");
        return;
    }
    if (!out_item_fill(c, it, buf, len, files, nfiles)) {
        free(it);
        return;
    }
    out_append(c, it);
    c->depth++;
    conn_flush(c); /* most replies fit the socket buffer: no wait for EPOLLOUT */
    if (conn_leave(c)) {
        conn_next(c);
        if (!c->pumping)
            conn_update_interest(c);
    }
}

struct conn_reply *conn_defer(struct conn *c)
{
    if (c->closed || c->holes >= CONN_MAX_DEFERRED)
        return NULL;
    struct out_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return NULL;
    it->hole = true;
    out_append(c, it);
    c->holes++;
    conn_next(c);
    return (struct conn_reply *)it;
}

void conn_send_deferred(struct conn *c, struct conn_reply *slot, uint8_t *buf, size_t len,
                        const struct net_file_range *files, size_t nfiles)
{
    struct out_item *it = (struct out_item *)slot;
    GREGOR_ASSERT(it->hole && c->holes > 0);
    c->depth++;
    c->holes--;
    it->hole = false; /* filled below, or left empty (len 0) in a dead queue, freed with c */
    if (c->closed || buf == NULL) {
        reply_drop(buf, files, nfiles);
        if (!c->closed)
            conn_close(c, "a deferred reply was dropped");
    } else if (out_item_fill(c, it, buf, len, files, nfiles)) {
        conn_flush(c);
    }
    if (conn_leave(c))
        conn_update_interest(c);
}

void conn_done_no_reply(struct conn *c)
{
    conn_next(c);
}

uint64_t conn_id(const struct conn *c) { return c->id; }
const char *conn_peer(const struct conn *c) { return c->peer; }
void conn_set_data(struct conn *c, void *data) { c->data = data; }
void *conn_data(const struct conn *c) { return c->data; }
int net_connection_count(const struct net *n) { return n->nconns; }

static void net_accept(struct loop *l, int lfd, void *arg, unsigned events)
{
    (void)events;
    struct net *n = arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_WARN("SocketServer", "accept failed: %s", strerror(errno));
            return;
        }
        if (n->nconns >= n->lim.max_connections) {
            LOG_WARN("SocketServer", "Refusing connection: %d connections open (max.connections)",
                     n->nconns);
            close(fd);
            continue;
        }
        struct conn *c = calloc(1, sizeof(*c));
        uint8_t *stage = malloc(CONN_STAGE_BYTES);
        if (c == NULL || stage == NULL) {
            free(c);
            free(stage);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->net = n;
        c->pump_task.fn = conn_pump_task;
        c->pump_task.arg = c;
        c->fd = fd;
        c->id = ++n->next_id;
        c->stage = stage;
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
        }
        snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
        c->next = n->conns;
        if (n->conns)
            n->conns->prev = c;
        n->conns = c;
        n->nconns++;
        if (loop_set(l, fd, LOOP_READ, net_conn_event, c) < 0) {
            conn_close(c, "cannot register with the event loop");
            continue;
        }
    }
}

int net_listen(struct net *n, const char *host, int port)
{
    if (n->nlisten >= NET_MAX_LISTENERS) {
        errno = ENOSPC;
        return -1;
    }
    bool v6 = host != NULL && strchr(host, ':') != NULL;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc;
    if (v6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        if (inet_pton(AF_INET6, host, &a.sin6_addr) != 1) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (host == NULL || host[0] == '\0' || strcmp(host, "0.0.0.0") == 0) {
            a.sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (strcmp(host, "localhost") == 0) {
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        } else if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
    }
    if (rc < 0 || listen(fd, 1024) < 0 || loop_set(n->loop, fd, LOOP_READ, net_accept, n) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    n->listen_fds[n->nlisten++] = fd;
    return 0;
}

void net_stop_listening(struct net *n)
{
    for (int i = 0; i < n->nlisten; i++) {
        loop_del(n->loop, n->listen_fds[i]);
        close(n->listen_fds[i]);
    }
    n->nlisten = 0;
}

void net_destroy(struct net *n)
{
    if (n == NULL)
        return;
    net_stop_listening(n);
    while (n->conns != NULL)
        conn_close(n->conns, NULL);
    free(n);
}
