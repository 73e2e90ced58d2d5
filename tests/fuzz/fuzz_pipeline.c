/* fuzz_pipeline: libFuzzer target for the whole request path, in process. An input is the
 * byte stream one client writes on one connection: any number of frames, pipelined, the last
 * possibly cut short. It goes through net's framing and pump, the request header and body
 * decoders, every API handler, the log and the group coordinator of one broker that lives
 * for the whole run (its data in a fresh directory under /dev/shm or /tmp). The loop turns
 * until the connection is quiet, the replies are read, then the client hangs up, often with
 * requests still parked (fetch waits, joins): what a hostile or dying client does.
 * Seeds: tests/fuzz/seeds/fuzz_pipeline (written by tests/fuzz/make_pipeline_seeds.py). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/logging.h"
#include "common/util.h"
#include "net/conn.h"
#include "net/loop.h"

#define FUZZ_MAX_TURNS 400
#define FUZZ_QUIET_TURNS 3

static struct broker *broker;

static void set(struct broker_config *cfg, const char *k, const char *v)
{
    char err[256];
    if (broker_config_set(cfg, k, v, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_pipeline: %s\n", err);
        abort();
    }
}

static void start_broker(void)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "%s/gregor-fuzz-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    logging_set_level(LOG_LEVEL_ERROR);
    struct broker_config cfg;
    broker_config_defaults(&cfg);
    set(&cfg, "log.dirs", dir);
    set(&cfg, "listeners", "PLAINTEXT://127.0.0.1:0");
    set(&cfg, "offsets.topic.num.partitions", "1");
    set(&cfg, "group.initial.rebalance.delay.ms", "0");
    set(&cfg, "socket.request.max.bytes", "1048576");
    /* A bounded descriptor budget, as a small machine has: creations that would not fit are
     * refused up front instead of filling the disk over a long run. */
    struct rlimit rl = {.rlim_cur = 4096, .rlim_max = 4096};
    struct rlimit cur;
    if (getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_max < rl.rlim_max)
        rl.rlim_cur = rl.rlim_max = cur.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    broker = broker_open(&cfg);
    if (broker == NULL)
        abort();
}

/* Reads and drops whatever the broker sent; true if anything came. */
static int drain(int fd)
{
    static uint8_t sink[1 << 16];
    int got = 0;
    for (;;) {
        ssize_t r = read(fd, sink, sizeof(sink));
        if (r > 0) {
            got = 1;
            continue;
        }
        return got;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (broker == NULL)
        start_broker();
    struct loop *l = broker_loop(broker);
    struct net *n = broker_net(broker);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    int before = net_connection_count(n);
    if (net_adopt(n, sv[0], "fuzz:0") != 0)
        abort();
    size_t sent = 0;
    int quiet = 0;
    for (int turn = 0; turn < FUZZ_MAX_TURNS && quiet < FUZZ_QUIET_TURNS; turn++) {
        int busy = 0;
        if (sent < size) {
            ssize_t w = write(sv[1], data + sent, size - sent);
            if (w > 0) {
                sent += (size_t)w;
                busy = 1;
            } else if (w < 0 && errno != EAGAIN) {
                sent = size; /* the broker hung up */
            }
        }
        int events = loop_run_once(l, 1);
        busy |= drain(sv[1]) | (events > 0);
        quiet = busy || sent < size ? 0 : quiet + 1;
    }
    close(sv[1]);
    for (int turn = 0; turn < FUZZ_MAX_TURNS && net_connection_count(n) > before; turn++)
        loop_run_once(l, 1);
    /* A connection with replies still owed (an acks=all append waiting for its sync) stays
     * until they are filled; it must be gone once they are. */
    if (net_connection_count(n) > before) {
        for (int turn = 0; turn < 5000 && net_connection_count(n) > before; turn++)
            loop_run_once(l, 1);
        if (net_connection_count(n) > before) {
            fprintf(stderr, "fuzz_pipeline: the connection outlived its client\n");
            abort();
        }
    }
    return 0;
}
