/* metrics_errors_micro: what counting a response's error codes for /metrics costs per request
 * (issue 20): proto_response_codes over a Produce v9 response of T topics x P partitions,
 * each code added into an [api][code] row as metrics.c does, N times; prints ns per response.
 * Build and run (after make):
 *   cc -O2 -Isrc -Ibuild/gen -o /tmp/metrics_errors_micro bench/metrics_errors_micro.c \
 *      build/libgregor.a -lzookeeper_mt -lssl -lcrypto -lz -lzstd -llz4 -lsnappy -lpthread -lm
 *   /tmp/metrics_errors_micro [T P N] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "proto/messages.h"

static uint64_t row[130];

static bool seen(void *ctx, const struct proto_error_site *site)
{
    uint64_t *r = ctx;
    int c = site->code;
    r[c >= -1 && c < 129 ? c + 1 : 0]++;
    return false;
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 1, np = argc > 2 ? atoi(argv[2]) : 1;
    long n = argc > 3 ? atol(argv[3]) : 10000000;
    if (nt < 1 || np < 1 || n < 1)
        return 2;
    struct produce_response resp = {0};
    struct produce_response_topic_produce_response *topics = calloc((size_t)nt, sizeof(*topics));
    struct produce_response_partition_produce_response *parts =
        calloc((size_t)nt * (size_t)np, sizeof(*parts));
    if (topics == NULL || parts == NULL)
        return 1;
    for (int t = 0; t < nt; t++) {
        topics[t].name = (struct kstr){(char *)"topic", 5};
        topics[t].partition_responses = parts + (size_t)t * (size_t)np;
        topics[t].n_partition_responses = np;
        for (int p = 0; p < np; p++)
            parts[(size_t)t * (size_t)np + (size_t)p].index = p;
    }
    resp.responses = topics;
    resp.n_responses = nt;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        proto_response_codes(PROTO_API_PRODUCE, 9, &resp, seen, row);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
    printf("%d topic(s) x %d partition(s): %.1f ns per response (%llu NONE counted)\n", nt, np, ns,
           (unsigned long long)row[1]);
    free(parts);
    free(topics);
    return row[1] == (uint64_t)n * (uint64_t)nt * (uint64_t)np ? 0 : 1;
}
