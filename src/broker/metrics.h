/* metrics: the counters behind /metrics (metrics.c), kept with what they count and bumped on
 * the loop thread only: plain uint64, no atomics, no locks (the broker has one loop thread;
 * the group commit's sync times are recorded in its loop-side completion). What is a state
 * rather than an event (log sizes, lag, under-replicated partitions, connections) is computed
 * when /metrics is scraped. The text encoder (struct mtext) is separate from the broker so
 * that tests/unit/test_metrics.c can check it. */
#ifndef GREGOR_BROKER_METRICS_H
#define GREGOR_BROKER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct request;
struct topic;

/* A fixed-bucket latency histogram in microseconds; metrics_hist_bounds_us[i] is bucket i's
 * upper bound (inclusive), the last bucket is +Inf. Counts per bucket (not cumulative). */
#define METRICS_HIST_BUCKETS 17
extern const uint64_t metrics_hist_bounds_us[METRICS_HIST_BUCKETS - 1];
struct metrics_hist {
    uint64_t bucket[METRICS_HIST_BUCKETS];
    uint64_t count;
    uint64_t sum_us;
};
static inline void metrics_hist_observe(struct metrics_hist *h, uint64_t us)
{
    int i = 0;
    while (i < METRICS_HIST_BUCKETS - 1 && us > metrics_hist_bounds_us[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_us += us;
}

/* A topic's traffic (struct topic holds one): Kafka's BrokerTopicMetrics per topic. */
struct topic_counters {
    uint64_t messages_in, bytes_in;     /* appended as leader (records, batch bytes) */
    uint64_t bytes_out;                 /* sent to consumers (followers: replication) */
    uint64_t produce_requests, fetch_requests; /* requests naming the topic */
};

/* Request metrics per API key; Fetch is split as Kafka splits it (FetchConsumer,
 * FetchFollower: the follower's slot is METRICS_API_KEYS). */
#define METRICS_API_KEYS 128
struct api_counters {
    uint64_t requests;
    struct metrics_hist total_time;     /* frame read to response queued */
};

/* Error codes counted per API as Kafka's ErrorsPerSec{request,error}: -1 (UNKNOWN_SERVER_ERROR)
 * .. METRICS_ERROR_CODES - 2 at index code + 1; a code past them counts as -1, as Kafka's
 * Errors.forCode maps a code it does not know. */
#define METRICS_ERROR_CODES 130

struct metrics_scrape;

struct broker_metrics {
    struct api_counters api[METRICS_API_KEYS + 1];
    /* Every ErrorCode of the answered responses, NONE included, per API key (Fetch is one
     * row: Kafka marks the error meter of the API's name, not FetchConsumer/FetchFollower). */
    uint64_t errors[METRICS_API_KEYS][METRICS_ERROR_CODES];
    struct metrics_scrape *scrapes;     /* /metrics answers being built (metrics.c) */
    int nscrapes;
    uint64_t replication_bytes_in, replication_bytes_out; /* followers' fetches */
    uint64_t isr_shrinks, isr_expands;  /* ISR changes this leader committed */
    struct metrics_hist flush_time;     /* the group commit's batches: submit to synced */
    int64_t commit_started_us;          /* mono_us() of the batch in flight (0: none) */
};

/* Bump points (loop thread). */
static inline void metrics_produced(struct topic_counters *c, uint64_t records, uint64_t bytes)
{
    c->messages_in += records;
    c->bytes_in += bytes;
}
/* A request answered (request_finish: answered, its response's error codes counted) or done
 * without an answer (acks=0: no error codes, as Kafka counts none for a response not sent). */
void metrics_request_done(struct broker *b, const struct request *r, bool answered);
/* The group commit's batch handed to the worker, and settled. */
void metrics_commit_started(struct broker *b);
void metrics_commit_settled(struct broker *b);

/* ---- the text format (Prometheus exposition 0.0.4) ---- */

/* A growing output buffer with a cap: past it the text is cut and over set (the scrape then
 * answers 500 rather than a partial page). */
#define METRICS_TEXT_CAP (64u << 20)
struct mtext {
    char *buf;
    size_t len, cap, limit;
    bool over;
};
void mtext_init(struct mtext *t, size_t limit);
void mtext_free(struct mtext *t);
void mtext_printf(struct mtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A label value escaped as the format requires: backslash, double quote and newline. */
void mtext_escaped(struct mtext *t, const char *s, size_t n);
/* # HELP and # TYPE lines of a family. */
void mtext_family(struct mtext *t, const char *name, const char *type, const char *help);
/* One sample: name{labels} value; labels is "" or already-escaped `k="v",...` text. */
void mtext_sample_u64(struct mtext *t, const char *name, const char *labels, uint64_t v);
void mtext_sample_f64(struct mtext *t, const char *name, const char *labels, double v);
/* A histogram's _bucket (cumulative, le in milliseconds), _sum (ms) and _count samples. */
void mtext_histogram_ms(struct mtext *t, const char *name, const char *labels,
                        const struct metrics_hist *h);

/* /proc/self/stat's fields after the command name: utime and stime (clock ticks), starttime
 * (ticks after boot), vsize (bytes) and rss (pages). 0, or -1 when it does not parse. */
struct proc_stat {
    uint64_t utime, stime, starttime, vsize, rss;
};
/* The whole page in one go (metrics_serve builds the same page over loop turns, at most
 * METRICS_SCRAPE_CHUNK partitions, then as many entries of /proc/self/fd, a turn, and answers
 * 500 when past METRICS_TEXT_CAP). */
void metrics_render(struct broker *b, struct mtext *t);
#define METRICS_SCRAPE_CHUNK 500
/* Scrapes being built at once; one more is answered 503. */
#define METRICS_SCRAPES_MAX 8
/* Drops the scrapes being built without answering them (console_stop, before the HTTP
 * server frees their requests). */
void metrics_scrapes_drop(struct broker *b);

int metrics_proc_stat_parse(const char *text, size_t len, struct proc_stat *out);

#endif
