/* Unit tests for net/conn deferred replies: a deferred reply keeps its place in the output
 * order while later frames are answered, and a connection that closes while it still owes
 * deferred replies stays allocated until they are filled (ASan checks the frees). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
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
    struct conn *held;    /* the connection whose frame 'h' waits for an 'r' elsewhere */
};

static uint8_t *dup_bytes(const char *s, size_t *len)
{
    *len = strlen(s);
    uint8_t *b = malloc(*len);
    memcpy(b, s, *len);
    return b;
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

static void setup(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop_create(64);
    struct net_limits lim = {.max_frame_bytes = 1 << 20, .max_output_bytes = 1 << 20,
                             .max_connections = 8};
    f->net = net_create(f->loop, &lim, on_frame, on_close, f);
    assert_non_null(f->net);
    fx = f;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deferred_reply_keeps_its_place),
        cmocka_unit_test(test_close_while_owing),
        cmocka_unit_test(test_defer_limit),
        cmocka_unit_test(test_owed_reply_does_not_spin_the_loop),
        cmocka_unit_test(test_pipelined_frames_do_not_nest),
        cmocka_unit_test(test_reply_to_another_connection_does_not_run_its_next_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
