/* conn: connection I/O. Frames are staged in a per-connection 64 KiB buffer; a frame larger
 * than that is read straight into its own allocation. Output is a queue of responses, each a
 * memory buffer with file ranges spliced in, written through the connection's transport: file
 * ranges with its sendfile, or read in bounded chunks and written when it has none (TLS). */
#include "net/conn.h"
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/util.h"
#include "proto/header.h"

#define CONN_STAGE_BYTES (64u * 1024u)
/* A transport without sendfile gets file ranges through a buffer of this size, allocated on
 * first use (a TLS record holds at most 16 KiB). */
#define CONN_COPY_CHUNK (16u * 1024u)
/* Frames one connection hands up per pump, i.e. per loop turn at most twice (its read event
 * and its posted pump), and the time after which it hands up no further frame (a pipeline of
 * heavy requests, each bounded by itself, must not add up within one turn). */
#define CONN_FRAMES_PER_TURN 64
#define CONN_PUMP_US 10000
#define NET_MAX_LISTENERS 8
#define NET_IP_BUCKETS 4096
#define NET_SWEEP_MAX_MS 1000

/* Connections per peer address (max.connections.per.ip and its overrides). */
struct ip_key {
    sa_family_t family;
    uint8_t addr[16];
};
struct ip_count {
    struct ip_count *next;
    struct ip_key key;
    int count;
    int max;       /* an override's limit, or -1: the default */
};

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
    struct transport tr;   /* tr.fd: the socket */
    uint64_t id;
    struct conn_session session;
    uint8_t *copy_buf;     /* CONN_COPY_CHUNK, only for a transport without sendfile */
    uint8_t *stage;        /* CONN_STAGE_BYTES */
    size_t stage_start, stage_end;
    uint8_t *big;          /* a large frame being read directly */
    size_t big_len, big_have;
    bool busy;             /* a frame is up with the upper layer */
    bool pumping;          /* conn_pump is handing frames up: it goes on by itself */
    struct loop_task pump_task; /* posted when a reply lets the next frame up */
    struct loop_task read_task; /* posted when the transport holds bytes the socket will not
                                 * announce (transport_ops.pending) */
    bool principal_known;  /* the transport's principal is in the session */
    bool closed;
    bool close_after_send; /* conn_close_after_send: no frame goes up; closed once drained */
    char close_why[160];
    int holes;             /* deferred replies not filled yet: the struct outlives a close */
    int depth;             /* >0 while inside a callback: free is deferred */
    struct out_item *out_head, *out_tail;
    size_t out_bytes;
    void *data;
    struct ip_count *ip;   /* its peer address's count */
    int64_t last_active_ms;    /* the last socket event or reply (connections.max.idle.ms) */
    int64_t opened_ms;         /* accepted or adopted (a transport handshake's clock) */
    int64_t frame_started_ms;  /* a frame is partly read, waiting on the client since (0: not) */
    size_t big_reserved;   /* bytes of max_reading_bytes held by big */
    bool mem_wait;         /* a big frame waits for max_reading_bytes to have room */
    struct conn *mem_prev, *mem_next;
    bool muted;            /* conn_mute_for: not read, no frame goes up, until mute_timer */
    uint64_t mute_timer;
};

struct net {
    struct loop *loop;
    struct net_limits lim;
    net_frame_fn on_frame;
    net_close_fn on_close;
    void *ctx;
    int listen_fds[NET_MAX_LISTENERS];
    const struct net_listener_info *listeners[NET_MAX_LISTENERS]; /* borrowed, per fd */
    int nlisten;
    bool accept_held;               /* net_accept_hold: listening, not accepting */
    struct conn *conns;
    int nconns;
    uint64_t next_id;
    struct ip_count *ips[NET_IP_BUCKETS];
    size_t reading_bytes;  /* big frames being read (max_reading_bytes) */
    struct conn *mem_wait_head, *mem_wait_tail;
    uint64_t sweep_timer;
    int accept_backoff_ms; /* 0: accepting */
    uint64_t accept_timer;
    unsigned long long accept_failures;
    net_admit_fn admit;                          /* net_set_admit; NULL: all served */
    void *admit_ctx;
    struct listener_pause {
        struct net *n;
        int lidx;
        uint64_t timer;                          /* paused by its rate until it: 0 if not */
    } pauses[NET_MAX_LISTENERS];
    struct throttled *throttled;                 /* sockets closed once their time is up */
    int nthrottled;
};

/* An accepted socket over its address's connection rate, closed at its timer. */
struct throttled {
    struct net *n;
    int fd;
    uint64_t timer;
    struct throttled *prev, *next;
};

static void conn_pump(struct conn *c);
static void conn_update_interest(struct conn *c);
static void conn_flush(struct conn *c);
static void net_conn_event(struct loop *l, int fd, void *arg, unsigned events);
static void net_sweep(struct loop *l, void *arg);

static int64_t sweep_period_ms(const struct net_limits *lim)
{
    int64_t p = NET_SWEEP_MAX_MS;
    if (lim->max_idle_ms > 0 && lim->max_idle_ms / 4 < p)
        p = lim->max_idle_ms / 4;
    if (lim->frame_timeout_ms > 0 && lim->frame_timeout_ms / 4 < p)
        p = lim->frame_timeout_ms / 4;
    return p < 1 ? 1 : p;
}

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
    if (lim->max_idle_ms > 0 || lim->frame_timeout_ms > 0)
        n->sweep_timer = loop_timer_add(l, mono_ms() + sweep_period_ms(lim), net_sweep, n);
    return n;
}

/* ---- connections per address ---- */

static bool ip_key_of(const struct sockaddr_storage *ss, struct ip_key *k)
{
    memset(k, 0, sizeof(*k));
    k->family = ss->ss_family;
    if (ss->ss_family == AF_INET) {
        memcpy(k->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return true;
    }
    if (ss->ss_family == AF_INET6) {
        memcpy(k->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
        return true;
    }
    return false;
}

static struct ip_count **ip_slot(struct net *n, const struct ip_key *k)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof(*k); i++)
        h = (h ^ ((const uint8_t *)k)[i]) * 16777619u;
    struct ip_count **pp = &n->ips[h % NET_IP_BUCKETS];
    while (*pp != NULL && memcmp(&(*pp)->key, k, sizeof(*k)) != 0)
        pp = &(*pp)->next;
    return pp;
}

static struct ip_count *ip_get(struct net *n, const struct ip_key *k)
{
    struct ip_count **pp = ip_slot(n, k);
    if (*pp == NULL) {
        struct ip_count *e = calloc(1, sizeof(*e));
        if (e == NULL)
            return NULL;
        e->key = *k;
        e->max = -1;
        *pp = e;
    }
    return *pp;
}

/* Drops an address's entry once it counts nothing and overrides nothing. */
static void ip_put(struct net *n, struct ip_count *e)
{
    GREGOR_ASSERT(e->count >= 0);
    if (e->count > 0 || e->max >= 0)
        return;
    struct ip_count **pp = ip_slot(n, &e->key);
    GREGOR_ASSERT(*pp == e);
    *pp = e->next;
    free(e);
}

void net_set_connection_limits(struct net *n, int max_connections, int max_connections_per_ip)
{
    GREGOR_ASSERT(max_connections >= 0 && max_connections_per_ip >= 0);
    n->lim.max_connections = max_connections;
    n->lim.max_connections_per_ip = max_connections_per_ip;
}

int net_set_ip_limit(struct net *n, const char *host, int max)
{
    char h[256];
    size_t hl = strlen(host);
    if (hl >= sizeof(h))
        return -1;
    memcpy(h, host, hl + 1);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1] */
        memmove(h, h + 1, hl - 2);
        h[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(h, NULL, &hints, &res) != 0 || res == NULL)
        return -1;
    int rc = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        struct sockaddr_storage ss = {0};
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        struct ip_key k;
        struct ip_count *e;
        if (ip_key_of(&ss, &k) && (e = ip_get(n, &k)) != NULL) {
            e->max = max;
            rc = 0;
        }
    }
    freeaddrinfo(res);
    return rc;
}

/* ---- memory of frames being read (queued.max.request.bytes) ---- */

size_t net_reading_bytes(const struct net *n) { return n->reading_bytes; }

static void mem_wait_remove(struct net *n, struct conn *c)
{
    if (!c->mem_wait)
        return;
    if (c->mem_prev)
        c->mem_prev->mem_next = c->mem_next;
    else
        n->mem_wait_head = c->mem_next;
    if (c->mem_next)
        c->mem_next->mem_prev = c->mem_prev;
    else
        n->mem_wait_tail = c->mem_prev;
    c->mem_prev = c->mem_next = NULL;
    c->mem_wait = false;
}

/* Takes size bytes for a big frame, or queues c to retry when some are given back. A frame
 * larger than the whole bound still gets in alone, so no valid frame waits forever. */
static bool mem_reserve(struct conn *c, size_t size)
{
    struct net *n = c->net;
    size_t max = n->lim.max_reading_bytes;
    if (max != 0 && n->reading_bytes > 0 && n->reading_bytes + size > max) {
        if (!c->mem_wait) {
            c->mem_wait = true;
            c->mem_next = NULL;
            c->mem_prev = n->mem_wait_tail;
            if (n->mem_wait_tail)
                n->mem_wait_tail->mem_next = c;
            else
                n->mem_wait_head = c;
            n->mem_wait_tail = c;
        }
        return false;
    }
    mem_wait_remove(n, c);
    n->reading_bytes += size;
    c->big_reserved = size;
    return true;
}

static void conn_pump_task(struct loop *l, void *arg);

/* Gives c's big-frame bytes back and lets the waiting connections try again, in order. */
static void mem_release(struct conn *c)
{
    struct net *n = c->net;
    if (c->big_reserved == 0)
        return;
    GREGOR_ASSERT(n->reading_bytes >= c->big_reserved);
    n->reading_bytes -= c->big_reserved;
    c->big_reserved = 0;
    for (struct conn *w = n->mem_wait_head; w != NULL; w = w->mem_next)
        loop_post(n->loop, &w->pump_task);
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
    free(c->copy_buf);
    free(c->session.client_id);
    if (c->session.sasl_free != NULL)
        c->session.sasl_free(c->session.sasl);
    free(c);
}

void conn_close(struct conn *c, const char *why)
{
    if (c->closed)
        return;
    struct net *n = c->net;
    if (c->mute_timer != 0) {
        loop_timer_cancel(n->loop, c->mute_timer);
        c->mute_timer = 0;
    }
    if (why != NULL)
        LOG_LIMITED(LOG_LEVEL_INFO, "SocketServer", "Closing connection %s (id %llu): %s",
                    c->session.peer, (unsigned long long)c->id, why);
    c->closed = true;
    loop_unpost(n->loop, &c->pump_task);
    loop_unpost(n->loop, &c->read_task);
    mem_wait_remove(n, c);
    mem_release(c);
    if (c->ip != NULL) {
        c->ip->count--;
        ip_put(n, c->ip);
        c->ip = NULL;
    }
    loop_del(n->loop, c->tr.fd);
    c->tr.ops->close(&c->tr);
    c->tr.fd = -1;
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
    if (!c->principal_known && c->tr.ops->principal != NULL) {
        /* A frame comes only after the transport's handshake: who it authenticated is
         * known now, before the first request is looked at. */
        char principal[CONN_PRINCIPAL_MAX];
        if (c->tr.ops->principal(&c->tr, principal, sizeof(principal)) != 0) {
            free(frame);
            conn_close(c, "the transport authenticated no principal (no "
                          "ssl.principal.mapping.rules rule applies to the certificate)");
            return;
        }
        conn_session_set_principal(&c->session, principal);
    }
    c->principal_known = true;
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

static void conn_read(struct conn *c);

static void conn_read_task(struct loop *l, void *arg)
{
    (void)l;
    struct conn *c = arg;
    c->depth++;
    if (!c->closed)
        conn_read(c);
    if (conn_leave(c))
        conn_update_interest(c);
}

/* Hands complete frames up, one at a time, while the connection is free to take one and its
 * replies are not piling up unread (max_output_bytes). Frames come up only from here. */
static void conn_pump(struct conn *c)
{
    GREGOR_ASSERT(!c->pumping);
    c->depth++;
    c->pumping = true;
    int handed = 0;
    int64_t until = mono_us() + CONN_PUMP_US;
    while (!c->closed && !c->busy && !c->muted && !c->close_after_send && c->big == NULL &&
           c->out_bytes <= c->net->lim.max_output_bytes) {
        if (handed == CONN_FRAMES_PER_TURN || (handed > 0 && mono_us() >= until)) {
            /* Fairness: the rest of a pipelined burst waits for the next turn, after the
             * other connections' events (a stage of tiny frames holds thousands). */
            loop_post(c->net->loop, &c->pump_task);
            break;
        }
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
        if (have < (size_t)size && !mem_reserve(c, (size_t)size))
            break; /* queued.max.request.bytes is taken: mem_release posts the pump */
        uint8_t *frame = malloc((size_t)size);
        if (frame == NULL) {
            conn_close(c, "out of memory for a request frame");
            break;
        }
        memcpy(frame, c->stage + c->stage_start + 4, have);
        c->stage_start += 4 + have;
        if (have == (size_t)size) {
            handed++;
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
    /* The trickle clock runs only while the client owes the rest of a frame, not while this
     * side holds the connection back (a request up, replies unread, no memory to read into, a
     * quota's mute). */
    bool client_owes = !c->busy && !c->mem_wait && !c->pump_task.posted && !c->muted &&
                       (c->big != NULL || c->stage_end > 0) &&
                       c->out_bytes <= c->net->lim.max_output_bytes;
    if (!client_owes)
        c->frame_started_ms = 0;
    else if (c->frame_started_ms == 0)
        c->frame_started_ms = mono_ms();
    if (conn_leave(c))
        conn_update_interest(c);
}

static void conn_read(struct conn *c)
{
    if (c->muted)
        return; /* read when the mute ends (conn_unmute) */
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
        ssize_t r = c->tr.ops->read(&c->tr, dst, room);
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
                mem_release(c);
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
    if (room && c->out_bytes <= c->net->lim.max_output_bytes && !(c->busy && c->big != NULL) &&
        !c->muted)
        ev |= LOOP_READ;
    /* Only when the head can go: a writable socket would wake the loop on every turn while
     * the head is a reply still owed (conn_send_deferred flushes when it is filled). */
    if (c->out_head != NULL && !c->out_head->hole)
        ev |= LOOP_WRITE;
    if (c->tr.ops->wants != NULL)
        ev |= c->tr.ops->wants(&c->tr);
    if ((ev & LOOP_READ) && c->tr.ops->pending != NULL && c->tr.ops->pending(&c->tr))
        loop_post(c->net->loop, &c->read_task);
    loop_set(c->net->loop, c->tr.fd, ev, net_conn_event, c);
}

/* Up to want bytes of a file from off, through a transport that cannot sendfile: read a chunk,
 * write it, while the socket takes whole chunks. Returns the bytes written, 0 when the file
 * ended first, or -1 with errno when nothing went. After EAGAIN the next call reads the same
 * bytes into the same buffer with the same length, as a TLS write retried must be given. */
static ssize_t conn_copy_file(struct conn *c, int fd, off_t off, size_t want)
{
    if (c->copy_buf == NULL && (c->copy_buf = malloc(CONN_COPY_CHUNK)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t done = 0;
    while (done < want) {
        size_t chunk = want - done < CONN_COPY_CHUNK ? want - done : CONN_COPY_CHUNK;
        ssize_t r = pread(fd, c->copy_buf, chunk, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return done > 0 ? (ssize_t)done : r;
        struct iovec iov = {.iov_base = c->copy_buf, .iov_len = (size_t)r};
        ssize_t w = c->tr.ops->writev(&c->tr, &iov, 1);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return done > 0 ? (ssize_t)done : -1;
        GREGOR_ASSERT(w <= r); /* a transport never reports more than it was given */
        done += (size_t)w;
        if (w < r)
            break; /* the socket is full */
    }
    return (ssize_t)done;
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
                struct iovec iov = {.iov_base = it->buf + from + it->piece_done, .iov_len = want};
                w = c->tr.ops->writev(&c->tr, &iov, 1);
            }
        } else {
            struct net_file_range *f = &it->files[i];
            want = f->len - it->piece_done;
            off_t off = f->offset + (off_t)it->piece_done;
            if (want == 0)
                w = 0;
            else if (c->tr.ops->sendfile != NULL)
                w = c->tr.ops->sendfile(&c->tr, f->fd, &off, want);
            else
                w = conn_copy_file(c, f->fd, off, want);
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
        /* Output accounting: what went out was queued and counted. */
        GREGOR_ASSERT((size_t)w <= want && (size_t)w <= c->out_bytes);
        it->piece_done += (size_t)w;
        c->out_bytes -= (size_t)w;
        if ((size_t)w == want) {
            it->piece++;
            it->piece_done = 0;
            if (it->piece > 2 * it->nfiles) {
                c->out_head = it->next;
                if (c->out_head == NULL) {
                    c->out_tail = NULL;
                    GREGOR_ASSERT(c->out_bytes == 0); /* an empty queue owes no bytes */
                }
                out_item_free(it);
            }
        } else {
            break;
        }
    }
    if (c->close_after_send && !c->closed && c->out_head == NULL)
        conn_close(c, c->close_why);
}

static void conn_unmute(struct loop *l, void *arg)
{
    (void)l;
    struct conn *c = arg;
    c->mute_timer = 0;
    c->muted = false;
    c->depth++;
    if (!c->closed)
        conn_read(c); /* what came meanwhile (a level-triggered loop would tell too) */
    if (conn_leave(c))
        conn_update_interest(c);
}

void conn_mute_for(struct conn *c, int64_t ms)
{
    if (c->closed || ms <= 0)
        return;
    int64_t until = mono_ms() + ms;
    if (c->mute_timer != 0) {
        loop_timer_cancel(c->net->loop, c->mute_timer);
        c->mute_timer = 0;
    }
    c->muted = true;
    c->frame_started_ms = 0; /* not the client's delay: conn_pump restarts the clock after */
    c->mute_timer = loop_timer_add(c->net->loop, until, conn_unmute, c);
    GREGOR_ASSERT(c->mute_timer != 0);
    conn_update_interest(c);
}

static void net_conn_event(struct loop *l, int fd, void *arg, unsigned events)
{
    (void)l;
    (void)fd;
    struct conn *c = arg;
    c->depth++;
    c->last_active_ms = mono_ms();
    /* A transport that wanted a readiness of its own (TLS: a write waiting on handshake bytes
     * to read, a read on some to write) may move either way now: try both. */
    bool retry_both = c->tr.ops->wants != NULL && c->tr.ops->wants(&c->tr) != 0;
    if ((events & LOOP_WRITE) || retry_both)
        conn_flush(c);
    if (!c->closed && ((events & LOOP_READ) || retry_both))
        conn_read(c);
    else if (!c->closed && !c->busy)
        conn_pump(c); /* output drained below max_output_bytes: staged frames may go up */
    /* A hang-up is reported on every turn whatever the interest: one that reading did not
     * turn into a close (the stage is full behind a request still up) would spin the loop
     * until that request ends. The peer cannot take replies any more: close now. */
    if (!c->closed && (events & LOOP_HUP))
        conn_close(c, "the peer hung up with requests unread");
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
    c->last_active_ms = mono_ms();
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
        c->last_active_ms = mono_ms();
        conn_flush(c);
    }
    if (conn_leave(c))
        conn_update_interest(c);
}

void conn_close_after_send(struct conn *c, const char *why)
{
    c->close_after_send = true;
    snprintf(c->close_why, sizeof(c->close_why), "%s", why);
}

void conn_done_no_reply(struct conn *c)
{
    conn_next(c);
}

uint64_t conn_id(const struct conn *c) { return c->id; }
const char *conn_peer(const struct conn *c) { return c->session.peer; }
struct conn_session *conn_session(struct conn *c) { return &c->session; }

const struct net_listener_info net_listener_plaintext = {
    .name = "PLAINTEXT",
    .security_protocol = "PLAINTEXT",
    .transport = &transport_plain,
};

void conn_session_set_client_id(struct conn_session *s, const char *id, int32_t id_len)
{
    size_t len = id == NULL || id_len <= 0 ? 0 : (size_t)id_len;
    /* The same client id on every request of a connection: compared, not copied. */
    if (s->client_id_len == len && (len == 0 || memcmp(s->client_id, id, len) == 0))
        return;
    char *copy = len <= CONN_CLIENT_ID_MAX ? malloc(len + 1) : NULL;
    if (copy == NULL) {
        LOG_LIMITED(LOG_LEVEL_WARN, "SocketServer", "Connection %s keeps its client id: "
                    "cannot store one of %zu bytes", s->peer, len);
        return;
    }
    if (len > 0)
        memcpy(copy, id, len);
    copy[len] = '\0';
    free(s->client_id);
    s->client_id = copy;
    s->client_id_len = len;
}

void conn_session_set_software(struct conn_session *s, const char *name, size_t name_len,
                               const char *version, size_t version_len)
{
    name_len = name_len < CONN_SOFTWARE_MAX ? name_len : CONN_SOFTWARE_MAX;
    version_len = version_len < CONN_SOFTWARE_MAX ? version_len : CONN_SOFTWARE_MAX;
    if (name_len > 0)
        memcpy(s->software_name, name, name_len);
    s->software_name[name_len] = '\0';
    if (version_len > 0)
        memcpy(s->software_version, version, version_len);
    s->software_version[version_len] = '\0';
}

int conn_session_set_principal(struct conn_session *s, const char *principal)
{
    size_t len = strlen(principal);
    if (len >= sizeof(s->principal))
        return -1;
    memcpy(s->principal, principal, len + 1);
    return 0;
}

void conn_session_set_sasl(struct conn_session *s, void *sasl, void (*free_fn)(void *sasl))
{
    if (s->sasl_free != NULL && s->sasl != sasl)
        s->sasl_free(s->sasl);
    s->sasl = sasl;
    s->sasl_free = free_fn;
}
void conn_set_data(struct conn *c, void *data) { c->data = data; }
void *conn_data(const struct conn *c) { return c->data; }
int net_connection_count(const struct net *n) { return n->nconns; }

/* An idle connection to close so a newcomer fits a full table: nothing in flight, nothing
 * owed or half-read, quiet for reclaim_idle_ms; the longest quiet one. */
static struct conn *reclaimable(struct net *n, int64_t now)
{
    struct conn *best = NULL;
    if (n->lim.reclaim_idle_ms <= 0)
        return NULL;
    for (struct conn *c = n->conns; c != NULL; c = c->next) {
        if (c->busy || c->holes > 0 || c->big != NULL || c->stage_end > 0 ||
            c->out_head != NULL || now - c->last_active_ms < n->lim.reclaim_idle_ms)
            continue;
        if (best == NULL || c->last_active_ms < best->last_active_ms)
            best = c;
    }
    return best;
}

static void net_accept(struct loop *l, int lfd, void *arg, unsigned events);

/* A connection for fd (non-blocking, owned from now on) of listener li; NULL when it could
 * not be set up (fd closed). ip, if any, is counted for it (and given back on failure).
 * peer_addr may be NULL (an adopted socket). */
static struct conn *conn_new(struct net *n, int fd, const char *peer,
                             const struct sockaddr_storage *peer_addr, struct ip_count *ip,
                             const struct net_listener_info *li)
{
    struct conn *c = calloc(1, sizeof(*c));
    uint8_t *stage = malloc(CONN_STAGE_BYTES);
    char *client_id = calloc(1, 1);
    struct transport tr = {.ops = li->transport, .fd = fd};
    if (c == NULL || stage == NULL || client_id == NULL || tr.ops->open(&tr) != 0) {
        free(c);
        free(stage);
        free(client_id);
        close(fd);
        if (ip != NULL)
            ip_put(n, ip);
        return NULL;
    }
    c->net = n;
    c->pump_task.fn = conn_pump_task;
    c->pump_task.arg = c;
    c->read_task.fn = conn_read_task;
    c->read_task.arg = c;
    c->tr = tr;
    c->id = ++n->next_id;
    c->stage = stage;
    c->last_active_ms = mono_ms();
    c->opened_ms = c->last_active_ms;
    c->ip = ip;
    if (ip != NULL)
        ip->count++;
    struct conn_session *s = &c->session;
    s->listener = li;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    if (peer_addr != NULL)
        s->peer_addr = *peer_addr;
    snprintf(s->principal, sizeof(s->principal), "User:ANONYMOUS");
    s->client_id = client_id;
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->nconns++;
    if (loop_set(n->loop, fd, LOOP_READ, net_conn_event, c) < 0) {
        conn_close(c, "cannot register with the event loop");
        return NULL; /* conn_close gave ip's count back */
    }
    return c;
}

static void accept_resume(struct loop *l, void *arg)
{
    struct net *n = arg;
    n->accept_timer = 0;
    if (n->accept_held)
        return; /* net_accept_hold(false) resumes */
    for (int i = 0; i < n->nlisten; i++)
        if (n->pauses[i].timer == 0) /* a paused listener resumes at its own timer */
            loop_set(l, n->listen_fds[i], LOOP_READ, net_accept, n);
}

/* ---- KIP-612: connection creation rates (the decision is the upper layer's) ---- */

void net_set_admit(struct net *n, net_admit_fn fn, void *ctx)
{
    n->admit = fn;
    n->admit_ctx = ctx;
}

static void throttled_close(struct loop *l, void *arg)
{
    (void)l;
    struct throttled *t = arg;
    struct net *n = t->n;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        n->throttled = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    GREGOR_ASSERT(n->nthrottled > 0);
    n->nthrottled--;
    close(t->fd);
    free(t);
}

/* Holds fd (not read, not counted as a connection) until ms have passed, then closes it. */
static void throttle_socket(struct net *n, int fd, int64_t ms)
{
    struct throttled *t = n->nthrottled < NET_THROTTLED_MAX ? calloc(1, sizeof(*t)) : NULL;
    if (t == NULL) {
        close(fd);
        return;
    }
    t->n = n;
    t->fd = fd;
    t->next = n->throttled;
    if (n->throttled != NULL)
        n->throttled->prev = t;
    n->throttled = t;
    n->nthrottled++;
    t->timer = loop_timer_add(n->loop, mono_ms() + ms, throttled_close, t);
}

static void pause_end(struct loop *l, void *arg);

/* The listener accepts again once its pause is over (unless held or backing off). */
static void pause_listener(struct net *n, int lidx, int64_t ms)
{
    GREGOR_ASSERT(lidx >= 0 && lidx < n->nlisten);
    struct listener_pause *p = &n->pauses[lidx];
    if (p->timer != 0)
        return;
    loop_set(n->loop, n->listen_fds[lidx], 0, net_accept, n);
    *p = (struct listener_pause){.n = n, .lidx = lidx};
    p->timer = loop_timer_add(n->loop, mono_ms() + ms, pause_end, p);
}

static void pause_end(struct loop *l, void *arg)
{
    struct listener_pause *p = arg;
    struct net *n = p->n;
    p->timer = 0;
    if (p->lidx < n->nlisten && !n->accept_held && n->accept_timer == 0)
        loop_set(l, n->listen_fds[p->lidx], LOOP_READ, net_accept, n);
}

/* accept(2) ran out of descriptors or memory: the pending connection stays in the backlog
 * and the listener would wake the loop at once, again and again. Stop listening for a while
 * (doubling while it keeps failing) and say so once per window, with the count. */
static void accept_back_off(struct net *n, int err)
{
    n->accept_failures++;
    n->accept_backoff_ms = sock_backoff_next(n->accept_backoff_ms, NET_ACCEPT_BACKOFF_MIN_MS,
                                             NET_ACCEPT_BACKOFF_MAX_MS);
    LOG_LIMITED(LOG_LEVEL_WARN, "SocketServer",
                "accept failed: %s (%llu failures so far, %d connections open); not accepting "
                "for %d ms", strerror(err), n->accept_failures, n->nconns, n->accept_backoff_ms);
    for (int i = 0; i < n->nlisten; i++)
        loop_set(n->loop, n->listen_fds[i], 0, net_accept, n);
    n->accept_timer = loop_timer_add(n->loop, mono_ms() + n->accept_backoff_ms, accept_resume, n);
}

static void net_accept(struct loop *l, int lfd, void *arg, unsigned events)
{
    (void)l;
    (void)events;
    struct net *n = arg;
    int lidx = 0;
    while (lidx < n->nlisten - 1 && n->listen_fds[lidx] != lfd)
        lidx++;
    GREGOR_ASSERT(n->listen_fds[lidx] == lfd);
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            enum sock_accept_failure f = sock_accept_failure(e);
            if (f == SOCK_ACCEPT_BACK_OFF)
                accept_back_off(n, e);
            else if (f == SOCK_ACCEPT_LOG)
                LOG_LIMITED(LOG_LEVEL_WARN, "SocketServer", "accept failed: %s", strerror(e));
            return;
        }
        n->accept_backoff_ms = 0;
        char host[INET6_ADDRSTRLEN];
        int port = sock_peer_host(&ss, host, sizeof(host));
        struct ip_key key;
        struct ip_count *ip = ip_key_of(&ss, &key) ? ip_get(n, &key) : NULL;
        int per_ip = ip == NULL ? -1 : ip->max >= 0 ? ip->max : n->lim.max_connections_per_ip;
        if (ip != NULL && ip->count >= per_ip) {
            LOG_LIMITED(LOG_LEVEL_INFO, "SocketServer",
                        "Refusing connection from %s: %d connections from this address "
                        "(max.connections.per.ip%s %d)", host, ip->count,
                        ip->max >= 0 ? ".overrides" : "", per_ip);
            ip_put(n, ip);
            close(fd);
            continue;
        }
        int64_t now = mono_ms();
        if (n->nconns >= n->lim.max_connections) {
            struct conn *old = reclaimable(n, now);
            if (old == NULL) {
                LOG_LIMITED(LOG_LEVEL_WARN, "SocketServer",
                            "Refusing connection from %s: %d connections open (max.connections) "
                            "and none idle for %lld ms", host, n->nconns,
                            (long long)n->lim.reclaim_idle_ms);
                if (ip != NULL)
                    ip_put(n, ip);
                close(fd);
                continue;
            }
            char why[128];
            snprintf(why, sizeof(why), "idle for %lld ms and max.connections (%d) reached",
                     (long long)(now - old->last_active_ms), n->lim.max_connections);
            conn_close(old, why);
        }
        struct net_admit ad = {0, 0};
        if (n->admit != NULL)
            ad = n->admit(n->admit_ctx, n->listeners[lidx], host, now);
        if (ad.close_after_ms > 0) {
            if (ip != NULL)
                ip_put(n, ip);
            throttle_socket(n, fd, ad.close_after_ms);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char peer[CONN_PEER_MAX];
        snprintf(peer, sizeof(peer), "%s:%d", host, port);
        conn_new(n, fd, peer, &ss, ip, n->listeners[lidx]);
        if (ad.pause_ms > 0) {
            pause_listener(n, lidx, ad.pause_ms);
            return; /* the rest wait in the backlog */
        }
    }
}

int net_adopt_with(struct net *n, int fd, const char *peer, const struct net_listener_info *li)
{
    return conn_new(n, fd, peer, NULL, NULL, li) != NULL ? 0 : -1;
}

int net_adopt(struct net *n, int fd, const char *peer)
{
    return net_adopt_with(n, fd, peer, &net_listener_plaintext);
}

/* Closes connections idle past connections.max.idle.ms (nothing in flight or owed: a client
 * waiting on a parked request is not idle) and those trickling a frame in slower than
 * frame_timeout_ms. */
static void net_sweep(struct loop *l, void *arg)
{
    struct net *n = arg;
    int64_t now = mono_ms();
    struct conn *c = n->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        char why[160];
        why[0] = '\0';
        if (n->lim.frame_timeout_ms > 0 && c->frame_started_ms != 0 &&
            now - c->frame_started_ms > n->lim.frame_timeout_ms)
            snprintf(why, sizeof(why), "a request still incomplete after %lld ms "
                     "(gregor.request.read.timeout.ms %lld)", (long long)(now - c->frame_started_ms),
                     (long long)n->lim.frame_timeout_ms);
        else if (n->lim.frame_timeout_ms > 0 && c->tr.ops->handshaking != NULL &&
                 now - c->opened_ms > n->lim.frame_timeout_ms && c->tr.ops->handshaking(&c->tr))
            snprintf(why, sizeof(why), "the %s handshake still incomplete after %lld ms "
                     "(gregor.request.read.timeout.ms %lld)", c->tr.ops->name,
                     (long long)(now - c->opened_ms), (long long)n->lim.frame_timeout_ms);
        else if (n->lim.max_idle_ms > 0 && !c->busy && c->holes == 0 && c->out_head == NULL &&
                 now - c->last_active_ms > n->lim.max_idle_ms)
            snprintf(why, sizeof(why), "idle for %lld ms (connections.max.idle.ms %lld)",
                     (long long)(now - c->last_active_ms), (long long)n->lim.max_idle_ms);
        if (why[0] != '\0')
            conn_close(c, why);
        c = next;
    }
    n->sweep_timer = loop_timer_add(l, now + sweep_period_ms(&n->lim), net_sweep, n);
}

int net_listen(struct net *n, const char *host, int port)
{
    return net_listen_with(n, host, port, &net_listener_plaintext);
}

int net_listen_with(struct net *n, const char *host, int port, const struct net_listener_info *li)
{
    if (n->nlisten >= NET_MAX_LISTENERS) {
        errno = ENOSPC;
        return -1;
    }
    int fd = sock_listen(host, port, 1024);
    if (fd < 0)
        return -1;
    if (loop_set(n->loop, fd, n->accept_held ? 0 : LOOP_READ, net_accept, n) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    n->listeners[n->nlisten] = li;
    n->listen_fds[n->nlisten++] = fd;
    return 0;
}

void net_accept_hold(struct net *n, bool hold)
{
    n->accept_held = hold;
    if (n->accept_timer != 0)
        return; /* backing off: accept_resume decides */
    for (int i = 0; i < n->nlisten; i++)
        if (hold || n->pauses[i].timer == 0)
            loop_set(n->loop, n->listen_fds[i], hold ? 0 : LOOP_READ, net_accept, n);
}

void net_stop_listening(struct net *n)
{
    for (int i = 0; i < n->nlisten; i++) {
        loop_del(n->loop, n->listen_fds[i]);
        close(n->listen_fds[i]);
        if (n->pauses[i].timer != 0)
            loop_timer_cancel(n->loop, n->pauses[i].timer);
        n->pauses[i].timer = 0;
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
    loop_timer_cancel(n->loop, n->sweep_timer);
    loop_timer_cancel(n->loop, n->accept_timer);
    while (n->throttled != NULL) {
        struct throttled *t = n->throttled;
        n->throttled = t->next;
        loop_timer_cancel(n->loop, t->timer);
        close(t->fd);
        free(t);
    }
    for (size_t i = 0; i < NET_IP_BUCKETS; i++) {
        while (n->ips[i] != NULL) {
            struct ip_count *e = n->ips[i];
            n->ips[i] = e->next;
            free(e);
        }
    }
    free(n);
}
