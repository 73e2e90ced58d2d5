/* Unit tests for net/conn deferred replies: a deferred reply keeps its place in the output
 * order while later frames are answered, and a connection that closes while it still owes
 * deferred replies stays allocated until they are filled (ASan checks the frees). Also the
 * transport seam (file ranges through a transport without sendfile, extra readiness a
 * transport wants) and the session each connection carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "net/conn.h"
#include "net/loop.h"

struct fixture {
    struct loop *loop;
    struct net *net;
    struct conn *conn;
    struct conn_reply *slots[16];
    int nslots, frames, closes;
    unsigned defer_mask; /* frame N is deferred when bit N is set */
    int depth, max_depth; /* on_frame calls nested inside one another */
    struct conn *order[8192]; /* which connection each frame came from */
    struct conn *held;    /* the connection whose frame 'h' waits for an 'r' elsewhere */
    int file_fd;          /* frames 'f' and 'F' answer with ranges of this file */
    size_t file_len;
};

static uint8_t *dup_bytes(const char *s, size_t *len)
{
    *len = strlen(s);
    uint8_t *b = malloc(*len);
    memcpy(b, s, *len);
    return b;
}

/* The reply to frame 'f': memory pieces around two ranges of the fixture's file; 'F' asks for
 * more of the file than it holds. */
#define FILE_RANGE1_OFF 100
#define FILE_RANGE1_LEN 200000
#define FILE_RANGE2_OFF 5
#define FILE_RANGE2_LEN 70001
static const char file_reply_mem[] = "HEAD" "middle" "tail";

static void answer_with_files(struct fixture *f, struct conn *c, bool past_end)
{
    size_t l;
    uint8_t *b = dup_bytes(file_reply_mem, &l);
    struct net_file_range r[2] = {
        {.fd = dup(f->file_fd), .offset = FILE_RANGE1_OFF, .len = FILE_RANGE1_LEN, .at = 4},
        {.fd = dup(f->file_fd), .offset = FILE_RANGE2_OFF, .len = FILE_RANGE2_LEN, .at = 10},
    };
    if (past_end)
        r[1].len = f->file_len; /* from offset 5: 5 bytes more than there are */
    conn_send(c, b, l, r, 2);
}

/* Frame "N": deferred when bit N of defer_mask is set (and the connection takes it), else
 * answered now. */
static void on_frame_body(struct fixture *f, struct conn *c, uint8_t *frame, size_t len);

/* Frame 'h' is held unanswered; frame 'r' answers the held one (a reply sent to another
 * connection, as a group coordinator answers every member when a join completes), then
 * itself; anything else is "N" below. Counts how deep on_frame calls nest. */
static void on_frame(void *ctx, struct conn *c, uint8_t *frame, size_t len)
{
    struct fixture *f = ctx;
    if (f->frames < (int)(sizeof(f->order) / sizeof(f->order[0])))
        f->order[f->frames] = c;
    f->frames++;
    f->depth++;
    if (f->depth > f->max_depth)
        f->max_depth = f->depth;
    on_frame_body(f, c, frame, len);
    f->depth--;
}

static void on_frame_body(struct fixture *f, struct conn *c, uint8_t *frame, size_t len)
{
    size_t l;
    if (frame[0] == 'f' || frame[0] == 'F') {
        answer_with_files(f, c, frame[0] == 'F');
        free(frame);
        return;
    }
    if (frame[0] == 'c' || frame[0] == 'n') { /* a client id from the frame; 'n': a null one */
        f->conn = c;
        conn_session_set_client_id(conn_session(c), frame[0] == 'n' ? NULL : (char *)frame + 1,
                                   (int32_t)len - 1);
        free(frame);
        uint8_t *b = dup_bytes("ok", &l);
        conn_send(c, b, l, NULL, 0);
        return;
    }
    if (frame[0] == 's') { /* slow: 3 ms of work, answered at once */
        free(frame);
        usleep(3000);
        uint8_t *b = dup_bytes("ss", &l);
        conn_send(c, b, l, NULL, 0);
        return;
    }
    if (frame[0] == 'h') {
        free(frame);
        f->held = c;
        return;
    }
    if (frame[0] == 'r') {
        free(frame);
        if (f->held != NULL) {
            uint8_t *b = dup_bytes("held", &l);
            conn_send(f->held, b, l, NULL, 0);
            f->held = NULL;
        }
        uint8_t *b = dup_bytes("rr", &l);
        conn_send(c, b, l, NULL, 0);
        return;
    }
    f->conn = c;
    int n = (int)(frame[0] - '0');
    (void)len;
    free(frame);
    if (f->defer_mask & (1u << n)) {
        struct conn_reply *slot = conn_defer(c);
        if (slot != NULL) {
            f->slots[n] = slot;
            f->nslots++;
            return;
        }
    }
    char out[16];
    snprintf(out, sizeof(out), "r%d", n);
    uint8_t *b = dup_bytes(out, &l);
    conn_send(c, b, l, NULL, 0);
}

static void on_close(void *ctx, struct conn *c)
{
    (void)c;
    ((struct fixture *)ctx)->closes++;
}

static int listen_port(struct fixture *f)
{
    for (int tries = 0; tries < 20; tries++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
        close(s);
        int port = ntohs(a.sin_port);
        if (net_listen(f->net, "127.0.0.1", port) == 0)
            return port;
    }
    fail_msg("no free port");
    return -1;
}

static int client(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    return s;
}

static void send_frame(int s, char n)
{
    uint8_t buf[12] = {0, 0, 0, 8, (uint8_t)n, 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
    assert_int_equal(write(s, buf, sizeof(buf)), (ssize_t)sizeof(buf));
}

static void fill(struct fixture *f, int n, const char *what)
{
    size_t l;
    uint8_t *b = dup_bytes(what, &l);
    conn_send_deferred(f->conn, f->slots[n], b, l, NULL, 0);
    f->slots[n] = NULL;
}

static struct fixture *fx;
static void fill_then_stop(struct loop *l, void *arg)
{
    (void)arg;
    fill(fx, 2, "r2"); /* out of order on purpose: 2 is filled before 0 */
    fill(fx, 0, "r0");
    loop_stop(l);
}

static void stop(struct loop *l, void *arg)
{
    (void)arg;
    loop_stop(l);
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct fixture *f, int ms)
{
    loop_timer_add(f->loop, mono_ms() + ms, stop, NULL);
    loop_run(f->loop);
}

static void setup_with(struct fixture *f, const struct net_limits *lim)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop_create(256);
    f->net = net_create(f->loop, lim, on_frame, on_close, f);
    assert_non_null(f->net);
    fx = f;
}

static const struct net_limits default_limits = {
    .max_frame_bytes = 1 << 20, .max_output_bytes = 1 << 20, .max_connections = 8,
    .max_connections_per_ip = 1000};

static void setup(struct fixture *f)
{
    setup_with(f, &default_limits);
}

/* True when the server closed s (read sees EOF or a reset) within ms. */
static bool closed_by_server(int s, int ms)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    char b[64];
    ssize_t r = recv(s, b, sizeof(b), MSG_DONTWAIT);
    return r <= 0;
}

static void test_deferred_reply_keeps_its_place(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    f.defer_mask = 0x5; /* frames 0 and 2 are deferred, 1 and 9 answered at once */
    int s = client(listen_port(&f));
    send_frame(s, '0');
    send_frame(s, '1');
    send_frame(s, '2');
    send_frame(s, '9');
    loop_timer_add(f.loop, mono_ms() + 100, fill_then_stop, NULL);
    loop_run(f.loop);
    assert_int_equal(f.frames, 4); /* the deferrals let every frame up */
    assert_int_equal(f.nslots, 2);
    char got[64] = {0};
    size_t have = 0;
    while (have < 8) {
        ssize_t r = read(s, got + have, sizeof(got) - 1 - have);
        assert_true(r > 0);
        have += (size_t)r;
    }
    assert_string_equal(got, "r0r1r2r9"); /* the order the requests came in */
    close(s);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

static void test_close_while_owing(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    f.defer_mask = 0x3;
    int s = client(listen_port(&f));
    send_frame(s, '0');
    send_frame(s, '1');
    run_for(&f, 50);
    assert_int_equal(f.nslots, 2);
    close(s); /* the client goes away owing two replies */
    run_for(&f, 50);
    assert_int_equal(f.closes, 1);
    assert_int_equal(net_connection_count(f.net), 0);
    fill(&f, 1, "r1"); /* dropped; the struct lives on until the last one */
    fill(&f, 0, "r0"); /* dropped; now freed */
    net_destroy(f.net);
    loop_destroy(f.loop);
}

static void count_turn(struct loop *l, void *arg)
{
    (void)l;
    (*(int *)arg)++;
}

/* While the only output is a reply still owed, the loop sleeps: the connection does not ask
 * for EPOLLOUT on a socket that is always writable (that spun the loop while acks=all
 * produces waited for their fdatasync). Once filled, the reply goes out. */
static void test_owed_reply_does_not_spin_the_loop(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    f.defer_mask = 0x1;
    int s = client(listen_port(&f));
    send_frame(s, '0');
    run_for(&f, 50);
    assert_int_equal(f.nslots, 1);
    int turns = 0;
    loop_set_before_sleep(f.loop, count_turn, &turns);
    run_for(&f, 200);
    assert_true(turns < 10);
    fill(&f, 0, "r0");
    run_for(&f, 50);
    char got[8] = {0};
    assert_int_equal(read(s, got, sizeof(got) - 1), 2);
    assert_string_equal(got, "r0");
    close(s);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

static void test_defer_limit(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    f.defer_mask = 0x3ff;
    int s = client(listen_port(&f));
    for (int i = 0; i < 10; i++)
        send_frame(s, (char)('0' + i));
    run_for(&f, 100);
    /* CONN_MAX_DEFERRED deferred, the next one stays up (answered at once here). */
    assert_int_equal(f.nslots, CONN_MAX_DEFERRED);
    assert_int_equal(f.frames, 10);
    for (int i = 0; i < CONN_MAX_DEFERRED; i++) {
        char what[16];
        snprintf(what, sizeof(what), "r%d", i);
        fill(&f, i, what);
    }
    run_for(&f, 50);
    char got[64] = {0};
    size_t have = 0;
    while (have < 20) {
        ssize_t r = read(s, got + have, sizeof(got) - 1 - have);
        assert_true(r > 0);
        have += (size_t)r;
    }
    assert_string_equal(got, "r0r1r2r3r4r5r6r7r8r9");
    close(s);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

static void write_all(int s, const uint8_t *b, size_t n)
{
    while (n > 0) {
        ssize_t w = write(s, b, n);
        assert_true(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

/* Reads exactly n bytes (the test's replies are small and already sent). */
static void read_exactly(int s, char *buf, size_t n)
{
    size_t have = 0;
    while (have < n) {
        ssize_t r = read(s, buf + have, n - have);
        assert_true(r > 0);
        have += (size_t)r;
    }
}

/* 3,000 frames in one write, answered at once: each reply lets the next frame up from the
 * loop, never from inside the reply (that recursed once per frame and overflowed the stack). */
static void test_pipelined_frames_do_not_nest(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    int s = client(listen_port(&f));
    enum { N = 3000 };
    static uint8_t buf[N * 12];
    for (int i = 0; i < N; i++) {
        uint8_t one[12] = {0, 0, 0, 8, '7', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
        memcpy(buf + i * 12, one, 12);
    }
    size_t sent = 0;
    while (sent < sizeof(buf)) {
        ssize_t w = write(s, buf + sent, sizeof(buf) - sent);
        assert_true(w > 0);
        sent += (size_t)w;
    }
    static char got[N * 2];
    for (int tries = 0; tries < 100 && f.frames < N; tries++)
        run_for(&f, 20);
    assert_int_equal(f.frames, N);
    assert_int_equal(f.max_depth, 1);
    read_exactly(s, got, sizeof(got));
    for (int i = 0; i < N; i++)
        assert_memory_equal(got + 2 * i, "r7", 2);
    close(s);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* The longest run of frames handed up from one connection while the other had some left. */
static int longest_run(const struct fixture *f, int n_each)
{
    int longest = 0, run = 0, seen_a = 0, seen_b = 0;
    for (int i = 0; i < 2 * n_each; i++) {
        run = i > 0 && f->order[i] == f->order[i - 1] ? run + 1 : 1;
        if (f->order[i] == f->order[0])
            seen_a++;
        else
            seen_b++;
        if (seen_a < n_each && seen_b < n_each && run > longest)
            longest = run;
    }
    return longest;
}

/* Two connections with 3,000 pipelined frames each: they take turns, a bounded number of
 * frames per loop turn each, instead of one draining its whole stage before the other. */
static void test_pipelined_bursts_take_turns(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    int port = listen_port(&f);
    enum { N = 3000 };
    static uint8_t buf[N * 12];
    for (int i = 0; i < N; i++) {
        uint8_t one[12] = {0, 0, 0, 8, '7', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
        memcpy(buf + i * 12, one, 12);
    }
    int a = client(port), b = client(port);
    write_all(a, buf, sizeof(buf));
    write_all(b, buf, sizeof(buf));
    for (int tries = 0; tries < 200 && f.frames < 2 * N; tries++) {
        run_for(&f, 20);
        static char sink[1 << 16];
        while (recv(a, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
        }
        while (recv(b, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
        }
    }
    assert_int_equal(f.frames, 2 * N);
    assert_true(longest_run(&f, N) <= 2 * 64);
    close(a);
    close(b);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* Pipelined slow requests (3 ms each) on two connections: one connection hands up frames for
 * about 10 ms per pump, not its whole pipeline, so the other's wait stays bounded in time. */
static void test_pipelined_slow_requests_take_turns(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    int port = listen_port(&f);
    enum { N = 30 };
    static uint8_t buf[N * 12];
    for (int i = 0; i < N; i++) {
        uint8_t one[12] = {0, 0, 0, 8, 's', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
        memcpy(buf + i * 12, one, 12);
    }
    int a = client(port), b = client(port);
    write_all(a, buf, sizeof(buf));
    write_all(b, buf, sizeof(buf));
    for (int tries = 0; tries < 100 && f.frames < 2 * N; tries++)
        run_for(&f, 50);
    assert_int_equal(f.frames, 2 * N);
    assert_true(longest_run(&f, N) <= 2 * (10 / 3 + 1));
    close(a);
    close(b);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* A reply sent to connection B from inside A's request (a join completing for every member)
 * must not run B's next pipelined frame there: B's handler could free what A's caller is
 * walking (the JoinGroup+LeaveGroup use-after-free). B's next frame comes up from the loop. */
static void test_reply_to_another_connection_does_not_run_its_next_frame(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    int port = listen_port(&f);
    int b = client(port);
    uint8_t two[24] = {0, 0, 0, 8, 'h', 'x', 'x', 'x', 'x', 'x', 'x', 'x',
                       0, 0, 0, 8, '3', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
    assert_int_equal(write(b, two, sizeof(two)), (ssize_t)sizeof(two));
    run_for(&f, 50);
    assert_int_equal(f.frames, 1); /* 'h' is up and held: '3' waits behind it */
    assert_non_null(f.held);
    int a = client(port);
    uint8_t rel[12] = {0, 0, 0, 8, 'r', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
    assert_int_equal(write(a, rel, sizeof(rel)), (ssize_t)sizeof(rel));
    run_for(&f, 50);
    assert_int_equal(f.frames, 3);
    assert_int_equal(f.max_depth, 1);
    char got[8] = {0};
    read_exactly(b, got, 6);
    assert_memory_equal(got, "heldr3", 6);
    read_exactly(a, got, 2);
    assert_memory_equal(got, "rr", 2);
    close(a);
    close(b);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* connections.max.idle.ms: a quiet connection is closed; one whose request is still up
 * (its client waits on us) is not. */
static void test_idle_connections_are_closed(void **state)
{
    (void)state;
    struct net_limits lim = default_limits;
    lim.max_idle_ms = 100;
    struct fixture f;
    setup_with(&f, &lim);
    int port = listen_port(&f);
    int quiet = client(port);
    int waiting = client(port);
    uint8_t h[12] = {0, 0, 0, 8, 'h', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
    assert_int_equal(write(waiting, h, sizeof(h)), (ssize_t)sizeof(h));
    run_for(&f, 400);
    assert_int_equal(f.closes, 1);
    assert_true(closed_by_server(quiet, 100));
    assert_false(closed_by_server(waiting, 0));
    assert_int_equal(net_connection_count(f.net), 1);
    close(quiet);
    close(waiting);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* A frame trickled in slower than frame_timeout_ms closes its connection; a connection that
 * is merely quiet between frames is left alone. */
static void test_trickled_frame_times_out(void **state)
{
    (void)state;
    struct net_limits lim = default_limits;
    lim.frame_timeout_ms = 150;
    struct fixture f;
    setup_with(&f, &lim);
    int port = listen_port(&f);
    int slow = client(port);
    int quiet = client(port);
    uint8_t bytes[6] = {0, 0, 0, 8, 'x', 'x'};
    for (int i = 0; i < 6 && f.closes == 0; i++) { /* a byte every 60 ms: never idle or done */
        assert_int_equal(send(slow, &bytes[i], 1, MSG_NOSIGNAL), 1);
        run_for(&f, 60);
    }
    assert_int_equal(f.closes, 1);
    assert_true(closed_by_server(slow, 100));
    assert_false(closed_by_server(quiet, 0));
    assert_int_equal(f.frames, 0);
    close(slow);
    close(quiet);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* max.connections.per.ip and its overrides. */
static void test_connections_per_ip(void **state)
{
    (void)state;
    struct net_limits lim = default_limits;
    lim.max_connections_per_ip = 2;
    struct fixture f;
    setup_with(&f, &lim);
    int port = listen_port(&f);
    int a = client(port), b = client(port), c = client(port);
    run_for(&f, 50);
    assert_true(closed_by_server(c, 100));
    assert_false(closed_by_server(a, 0));
    assert_int_equal(net_connection_count(f.net), 2);
    close(c);
    close(b);
    run_for(&f, 50);
    int d = client(port); /* b's place is free again */
    run_for(&f, 50);
    assert_false(closed_by_server(d, 50));
    assert_int_equal(net_set_ip_limit(f.net, "127.0.0.1", 3), 0);
    int e = client(port);
    run_for(&f, 50);
    assert_false(closed_by_server(e, 50));
    assert_int_equal(net_connection_count(f.net), 3);
    assert_int_equal(net_set_ip_limit(f.net, "no-such-host.invalid", 3), -1);
    close(a);
    close(d);
    close(e);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* A full table takes a newcomer by closing the connection idle longest, once it has been
 * idle reclaim_idle_ms; busy ones are never taken. */
static void test_full_table_reclaims_an_idle_connection(void **state)
{
    (void)state;
    struct net_limits lim = default_limits;
    lim.max_connections = 2;
    lim.reclaim_idle_ms = 1000;
    struct fixture f;
    setup_with(&f, &lim);
    int port = listen_port(&f);
    int busy = client(port);
    uint8_t h[12] = {0, 0, 0, 8, 'h', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
    assert_int_equal(write(busy, h, sizeof(h)), (ssize_t)sizeof(h));
    int idle = client(port);
    run_for(&f, 20);
    int early = client(port); /* nobody idle long enough yet: refused */
    run_for(&f, 20);
    assert_true(closed_by_server(early, 100));
    run_for(&f, 1100);
    int admin = client(port);
    run_for(&f, 50);
    assert_true(closed_by_server(idle, 100));
    assert_false(closed_by_server(admin, 50));
    assert_false(closed_by_server(busy, 0));
    assert_int_equal(net_connection_count(f.net), 2);
    close(early);
    close(idle);
    close(admin);
    close(busy);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* Frames too big for the stage, read on two connections at once, share max_reading_bytes:
 * the second waits, unread, until the first is complete; then both come up. */
static void test_frames_being_read_share_a_memory_bound(void **state)
{
    (void)state;
    struct net_limits lim = default_limits;
    lim.max_reading_bytes = 200000;
    struct fixture f;
    setup_with(&f, &lim);
    int port = listen_port(&f);
    enum { SIZE = 150000 };
    static uint8_t frame[4 + SIZE];
    frame[0] = 0;
    frame[1] = (uint8_t)(SIZE >> 16);
    frame[2] = (uint8_t)(SIZE >> 8);
    frame[3] = (uint8_t)SIZE;
    memset(frame + 4, '5', SIZE);
    int a = client(port), b = client(port);
    write_all(a, frame, 100000);
    run_for(&f, 100);
    write_all(b, frame, 100000);
    run_for(&f, 100);
    assert_int_equal(net_reading_bytes(f.net), SIZE); /* b waits for a's bytes */
    write_all(a, frame + 100000, sizeof(frame) - 100000);
    for (int i = 0; i < 20 && f.frames < 1; i++)
        run_for(&f, 50);
    run_for(&f, 50);
    assert_int_equal(f.frames, 1);
    assert_int_equal(net_reading_bytes(f.net), SIZE); /* now b's */
    write_all(b, frame + 100000, sizeof(frame) - 100000);
    for (int i = 0; i < 20 && f.frames < 2; i++)
        run_for(&f, 50);
    assert_int_equal(f.frames, 2);
    assert_int_equal(net_reading_bytes(f.net), 0);
    close(a);
    close(b);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* accept(2) failing with EMFILE must not spin the loop: it backs off, then accepts once
 * descriptors are back. */
static void test_accept_backs_off_without_descriptors(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    int port = listen_port(&f);
    int socks[3];
    for (int i = 0; i < 3; i++)
        socks[i] = client(port); /* connected in the backlog, not accepted yet */
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int highest = dup(0); /* the lowest free fd: allow none above it */
    close(highest);
    struct rlimit low = {.rlim_cur = (rlim_t)highest, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int turns = 0;
    loop_set_before_sleep(f.loop, count_turn, &turns);
    run_for(&f, 300);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(net_connection_count(f.net), 0);
    assert_true(turns < 60); /* 10, 20, 40, ... ms pauses; it spun at 100k+ turns */
    run_for(&f, 1100);
    assert_int_equal(net_connection_count(f.net), 3);
    for (int i = 0; i < 3; i++)
        close(socks[i]);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* A client that resets its connection while a request is up and its stage is full: the
 * hang-up is reported on every turn, and must close the connection, not spin the loop. */
static void test_reset_behind_a_full_stage_closes(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    int s = client(listen_port(&f));
    static uint8_t buf[12 * 8000];
    for (int i = 0; i < 8000; i++) {
        uint8_t one[12] = {0, 0, 0, 8, i == 0 ? 'h' : '1', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
        memcpy(buf + i * 12, one, 12);
    }
    write_all(s, buf, sizeof(buf));
    run_for(&f, 100);
    assert_int_equal(f.frames, 1); /* 'h' is held; the rest fills the stage */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(s); /* RST */
    int turns = 0;
    loop_set_before_sleep(f.loop, count_turn, &turns);
    run_for(&f, 200);
    assert_int_equal(f.closes, 1);
    assert_true(turns < 20);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* ---- the transport seam ---- */

/* Test transports built on the plain one: counted writes (every fourth cut at 7000 bytes, so
 * chunks of a file range go out whole, several per call, and cut, resumed mid-chunk) and
 * counted sendfiles. */
static size_t written_bytes, sendfile_bytes, writev_calls;
static ssize_t counting_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
    assert_int_equal(iovcnt, 1);
    struct iovec one = iov[0];
    if (writev_calls++ % 4 == 3 && one.iov_len > 7000)
        one.iov_len = 7000;
    ssize_t w = transport_plain.writev(t, &one, 1);
    if (w > 0)
        written_bytes += (size_t)w;
    return w;
}

static ssize_t counting_sendfile(struct transport *t, int fd, off_t *off, size_t len)
{
    ssize_t w = transport_plain.sendfile(t, fd, off, len);
    if (w > 0)
        sendfile_bytes += (size_t)w;
    return w;
}

static struct transport_ops copying_ops, sendfile_ops;
static struct net_listener_info copying_listener = {"PLAINTEXT", "PLAINTEXT", &copying_ops};
static struct net_listener_info sendfile_listener = {"PLAINTEXT", "PLAINTEXT", &sendfile_ops};

static void make_test_transports(void)
{
    copying_ops = transport_plain_copying;
    copying_ops.name = "test-copying";
    copying_ops.writev = counting_writev;
    assert_null(copying_ops.sendfile);
    sendfile_ops = transport_plain;
    sendfile_ops.name = "test-sendfile";
    sendfile_ops.writev = counting_writev;
    sendfile_ops.sendfile = counting_sendfile;
    written_bytes = sendfile_bytes = 0;
}

/* A file of len bytes whose every byte depends on its offset. */
static int make_file(size_t len)
{
    char path[] = "/tmp/gregor-test-conn-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    uint8_t *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 7 + i / 251);
    assert_int_equal(pwrite(fd, b, len, 0), (ssize_t)len);
    free(b);
    return fd;
}

/* A connected pair: one end served by f's net through listener li, the other (returned) the
 * test's client, with small socket buffers so replies take many writes. */
static int adopt_pair(struct fixture *f, const struct net_listener_info *li)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 65536;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    assert_int_equal(net_adopt_with(f->net, sv[0], "pair:0", li), 0);
    return sv[1];
}

static void send_bytes_frame(int s, const char *payload)
{
    uint8_t buf[64];
    size_t n = strlen(payload);
    assert_true(n + 4 <= sizeof(buf) && n >= 8);
    buf[0] = buf[1] = 0;
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    memcpy(buf + 4, payload, n);
    write_all(s, buf, n + 4);
}

/* Reads up to want bytes while the loop runs (the reply is bigger than the socket buffers);
 * stops at EOF or after 5 s. Returns what arrived. */
static size_t read_while_serving(struct fixture *f, int s, uint8_t *buf, size_t want)
{
    size_t have = 0;
    int64_t until = mono_ms() + 5000;
    while (have < want && mono_ms() < until) {
        loop_run_once(f->loop, 1);
        ssize_t r = recv(s, buf + have, want - have, MSG_DONTWAIT);
        if (r == 0)
            break;
        if (r > 0)
            have += (size_t)r;
    }
    return have;
}

static void expected_file_reply(const struct fixture *f, uint8_t *out, size_t *len)
{
    size_t n = 0;
    memcpy(out + n, "HEAD", 4), n += 4;
    assert_int_equal(pread(f->file_fd, out + n, FILE_RANGE1_LEN, FILE_RANGE1_OFF),
                     FILE_RANGE1_LEN);
    n += FILE_RANGE1_LEN;
    memcpy(out + n, "middle", 6), n += 6;
    assert_int_equal(pread(f->file_fd, out + n, FILE_RANGE2_LEN, FILE_RANGE2_OFF),
                     FILE_RANGE2_LEN);
    n += FILE_RANGE2_LEN;
    memcpy(out + n, "tail", 4), n += 4;
    *len = n;
}

/* The same reply, twice per connection, through a transport with sendfile and one without:
 * byte for byte the same; the one without sent every byte through its write (in chunks cut
 * short, resumed mid-chunk), the one with sent the file ranges with sendfile. */
static void test_file_ranges_without_sendfile(void **state)
{
    (void)state;
    make_test_transports();
    const struct net_listener_info *lis[2] = {&sendfile_listener, &copying_listener};
    enum { TOTAL = 4 + FILE_RANGE1_LEN + 6 + FILE_RANGE2_LEN + 4 };
    static uint8_t want[TOTAL], got[TOTAL + 1];
    for (int k = 0; k < 2; k++) {
        struct fixture f;
        setup(&f);
        f.file_len = 300000;
        f.file_fd = make_file(f.file_len);
        size_t want_len;
        expected_file_reply(&f, want, &want_len);
        assert_int_equal(want_len, TOTAL);
        written_bytes = sendfile_bytes = 0;
        int s = adopt_pair(&f, lis[k]);
        for (int round = 0; round < 2; round++) {
            send_bytes_frame(s, "fxxxxxxx");
            memset(got, 0, sizeof(got));
            assert_int_equal(read_while_serving(&f, s, got, TOTAL), TOTAL);
            assert_memory_equal(got, want, TOTAL);
        }
        assert_int_equal(recv(s, got, 1, MSG_DONTWAIT), -1); /* nothing more */
        size_t mem = 2 * (sizeof(file_reply_mem) - 1);
        if (lis[k] == &copying_listener) {
            assert_int_equal(written_bytes, 2 * TOTAL);
            assert_int_equal(sendfile_bytes, 0);
        } else {
            assert_int_equal(written_bytes, mem);
            assert_int_equal(sendfile_bytes, 2 * TOTAL - mem);
        }
        assert_int_equal(f.closes, 0);
        close(s);
        close(f.file_fd);
        net_destroy(f.net);
        loop_destroy(f.loop);
    }
}

/* A file range longer than the file (truncated underneath) through the copying path: the
 * connection closes rather than send a reply shorter than its size said, as with sendfile. */
static void test_copied_file_range_past_the_end_closes(void **state)
{
    (void)state;
    make_test_transports();
    struct fixture f;
    setup(&f);
    f.file_len = 300000;
    f.file_fd = make_file(f.file_len);
    int s = adopt_pair(&f, &copying_listener);
    send_bytes_frame(s, "Fxxxxxxx");
    static uint8_t got[600000];
    size_t have = read_while_serving(&f, s, got, sizeof(got));
    assert_int_equal(f.closes, 1);
    assert_true(have < 4 + FILE_RANGE1_LEN + 6 + f.file_len + 4);
    assert_true(have >= 4 + FILE_RANGE1_LEN + 6 + (f.file_len - FILE_RANGE2_OFF));
    close(s);
    close(f.file_fd);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* A transport that must write before it can read (TLS renegotiating): its first read takes
 * every byte from the socket into its own buffer, hands none and wants LOOP_WRITE. Nothing
 * more arrives on the socket, so only the readiness it wants lets the frame up. */
static uint8_t hoard[256];
static size_t hoard_len, hoard_off;
static unsigned hoard_want;
static bool hoarded;
static ssize_t hoarding_read(struct transport *t, void *buf, size_t len)
{
    if (!hoarded) {
        ssize_t r = transport_plain.read(t, hoard, sizeof(hoard));
        if (r <= 0)
            return r;
        hoarded = true;
        hoard_len = (size_t)r;
        hoard_want = LOOP_WRITE;
        errno = EAGAIN;
        return -1;
    }
    hoard_want = 0;
    if (hoard_off < hoard_len) {
        size_t n = hoard_len - hoard_off < len ? hoard_len - hoard_off : len;
        memcpy(buf, hoard + hoard_off, n);
        hoard_off += n;
        return (ssize_t)n;
    }
    return transport_plain.read(t, buf, len);
}

static unsigned hoarding_wants(const struct transport *t)
{
    (void)t;
    return hoard_want;
}

static void test_transport_wants_the_other_readiness(void **state)
{
    (void)state;
    static struct transport_ops ops;
    ops = transport_plain;
    ops.name = "test-hoarding";
    ops.read = hoarding_read;
    ops.wants = hoarding_wants;
    struct net_listener_info li = {"PLAINTEXT", "PLAINTEXT", &ops};
    hoarded = false;
    hoard_len = hoard_off = 0;
    hoard_want = 0;
    struct fixture f;
    setup(&f);
    int s = adopt_pair(&f, &li);
    send_frame(s, '1');
    char got[3] = {0};
    assert_int_equal(read_while_serving(&f, s, (uint8_t *)got, 2), 2);
    assert_string_equal(got, "r1");
    assert_true(hoarded);
    assert_int_equal(f.frames, 1);
    /* Once it wants nothing, the loop does not wake for a writable socket. */
    int turns = 0;
    loop_set_before_sleep(f.loop, count_turn, &turns);
    run_for(&f, 100);
    assert_true(turns < 10);
    close(s);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

/* ---- the session ---- */

static int sasl_frees;
static void sasl_free(void *p)
{
    sasl_frees++;
    free(p);
}

/* Sends a frame and waits for its "ok". */
static void ask(struct fixture *f, int s, const char *payload)
{
    send_bytes_frame(s, payload);
    char got[3] = {0};
    assert_int_equal(read_while_serving(f, s, (uint8_t *)got, 2), 2);
    assert_string_equal(got, "ok");
}

/* Each connection carries who is on the other end, apart from the request in flight: its
 * listener, peer, principal, the client id of its latest header (copied only when it changes),
 * the client software, and SASL state freed with the connection. */
static void test_session(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    int s = client(listen_port(&f));
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    assert_int_equal(getsockname(s, (struct sockaddr *)&me, &ml), 0);
    ask(&f, s, "cclient-1");
    struct conn_session *ss = conn_session(f.conn);
    assert_string_equal(ss->listener->name, "PLAINTEXT");
    assert_string_equal(ss->listener->security_protocol, "PLAINTEXT");
    assert_ptr_equal(ss->listener->transport, &transport_plain);
    assert_string_equal(ss->principal, "User:ANONYMOUS");
    char peer[64];
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", ntohs(me.sin_port));
    assert_string_equal(ss->peer, peer);
    assert_string_equal(conn_peer(f.conn), peer);
    assert_int_equal(ss->peer_addr.ss_family, AF_INET);
    assert_int_equal(((struct sockaddr_in *)&ss->peer_addr)->sin_port, me.sin_port);
    assert_string_equal(ss->client_id, "client-1");
    assert_int_equal(ss->client_id_len, 8);
    const char *kept = ss->client_id;
    ask(&f, s, "cclient-1");
    assert_ptr_equal(ss->client_id, kept); /* the same id again: not copied again */
    ask(&f, s, "cother-client");
    assert_string_equal(ss->client_id, "other-client");
    ask(&f, s, "nxxxxxxx"); /* a null client id reads as "" */
    assert_string_equal(ss->client_id, "");
    assert_int_equal(ss->client_id_len, 0);

    assert_string_equal(ss->software_name, "");
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    conn_session_set_software(ss, longname, sizeof(longname), "1.2.3", 5);
    assert_int_equal(strlen(ss->software_name), CONN_SOFTWARE_MAX);
    assert_string_equal(ss->software_version, "1.2.3");
    assert_int_equal(conn_session_set_principal(ss, "User:alice"), 0);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(conn_session_set_principal(ss, longname), -1);
    assert_string_equal(ss->principal, "User:alice");

    sasl_frees = 0;
    conn_session_set_sasl(ss, malloc(16), sasl_free);
    conn_session_set_sasl(ss, malloc(16), sasl_free); /* the first is freed */
    assert_int_equal(sasl_frees, 1);
    close(s);
    run_for(&f, 50);
    assert_int_equal(f.closes, 1);
    assert_int_equal(sasl_frees, 2); /* and the second with the connection */

    int a = adopt_pair(&f, &net_listener_plaintext);
    ask(&f, a, "cadopted");
    ss = conn_session(f.conn);
    assert_string_equal(ss->peer, "pair:0");
    assert_int_equal(ss->peer_addr.ss_family, AF_UNSPEC);
    assert_string_equal(ss->client_id, "adopted");
    assert_null(ss->sasl);
    close(a);
    net_destroy(f.net);
    loop_destroy(f.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deferred_reply_keeps_its_place),
        cmocka_unit_test(test_close_while_owing),
        cmocka_unit_test(test_defer_limit),
        cmocka_unit_test(test_owed_reply_does_not_spin_the_loop),
        cmocka_unit_test(test_pipelined_frames_do_not_nest),
        cmocka_unit_test(test_pipelined_bursts_take_turns),
        cmocka_unit_test(test_pipelined_slow_requests_take_turns),
        cmocka_unit_test(test_reply_to_another_connection_does_not_run_its_next_frame),
        cmocka_unit_test(test_idle_connections_are_closed),
        cmocka_unit_test(test_trickled_frame_times_out),
        cmocka_unit_test(test_connections_per_ip),
        cmocka_unit_test(test_full_table_reclaims_an_idle_connection),
        cmocka_unit_test(test_frames_being_read_share_a_memory_bound),
        cmocka_unit_test(test_accept_backs_off_without_descriptors),
        cmocka_unit_test(test_reset_behind_a_full_stage_closes),
        cmocka_unit_test(test_file_ranges_without_sendfile),
        cmocka_unit_test(test_copied_file_range_past_the_end_closes),
        cmocka_unit_test(test_transport_wants_the_other_readiness),
        cmocka_unit_test(test_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
