/* metrics: GET /metrics in Prometheus' text format (exposition 0.0.4), under the names Kafka's
 * users see through the Prometheus JMX exporter (kafka_server_brokertopicmetrics_*,
 * kafka_network_requestmetrics_*, ...) and kafka_exporter's consumer group lag, plus the
 * process metrics every Prometheus client exports. Counters are plain uint64 kept with what
 * they count (struct topic's counters, struct broker's metrics) and bumped on the loop thread;
 * states (log sizes, lag, under-replicated partitions, connections) are computed here, at
 * scrape, on the loop thread too. The page is built in growing buffers capped at
 * METRICS_TEXT_CAP, over loop turns: a scrape takes a snapshot of the topics' names and writes
 * at most METRICS_SCRAPE_CHUNK partitions' samples a turn (each family's samples into its own
 * buffer, as the format wants a family's samples together), looking each topic up by name
 * again every turn, so a topic deleted meanwhile is skipped rather than read freed; the rest
 * of the page and the answer come in the turn after the last partition and /proc/self/fd entry
 * (counted over turns too). */
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/console.h"
#include "broker/metrics.h"
#include "cluster/cluster.h"
#include "common/util.h"
#include "group/coordinator.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/loop.h"
#include "proto/messages.h"

/* 0.1 ms .. 10 s (Kafka's request times and flushes are in ms). */
const uint64_t metrics_hist_bounds_us[METRICS_HIST_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

/* ---- counters ---- */

/* An ErrorCode of a response into its API's row (ctx): Kafka's errorCounts, NONE included. */
static bool error_seen(void *ctx, const struct proto_error_site *site)
{
    uint64_t *row = ctx;
    int c = site->code;
    row[c >= -1 && c < METRICS_ERROR_CODES - 1 ? c + 1 : 0]++;
    return false; /* all of them: the walk is bounded by the response */
}

void metrics_request_done(struct broker *b, const struct request *r, bool answered)
{
    if (r->api == NULL || r->api_key < 0 || r->api_key >= METRICS_API_KEYS)
        return;
    int slot = r->api_key;
    if (r->api_key == PROTO_API_FETCH && r->body != NULL) {
        const struct fetch_request *f = r->body;
        int32_t replica = r->api_version >= 15 ? f->replica_state.replica_id : f->replica_id;
        if (replica >= 0)
            slot = METRICS_API_KEYS; /* FetchFollower */
    }
    if (answered && r->resp != NULL)
        proto_response_codes(r->api_key, r->resp_version, r->resp, error_seen,
                             b->metrics.errors[r->api_key]);
    int64_t took = mono_us() - r->start_us;
    struct api_counters *a = &b->metrics.api[slot];
    a->requests++;
    metrics_hist_observe(&a->total_time, took > 0 ? (uint64_t)took : 0);
}

void metrics_commit_started(struct broker *b)
{
    b->metrics.commit_started_us = b->ncommit > 0 ? mono_us() : 0;
}

void metrics_commit_settled(struct broker *b)
{
    if (b->metrics.commit_started_us == 0 || b->ncommit == 0)
        return;
    int64_t took = mono_us() - b->metrics.commit_started_us;
    b->metrics.commit_started_us = 0;
    metrics_hist_observe(&b->metrics.flush_time, took > 0 ? (uint64_t)took : 0);
}

void metrics_topic_traffic(struct broker *b, const struct topic *t, struct topic_traffic *out)
{
    (void)b;
    out->messages_in = t->counters.messages_in;
    out->bytes_in = t->counters.bytes_in;
    out->bytes_out = t->counters.bytes_out;
    out->produce_requests = t->counters.produce_requests;
    out->fetch_requests = t->counters.fetch_requests;
}

/* ---- the text format ---- */

void mtext_init(struct mtext *t, size_t limit)
{
    *t = (struct mtext){.limit = limit};
}

void mtext_free(struct mtext *t)
{
    free(t->buf);
    *t = (struct mtext){0};
}

static bool mtext_reserve(struct mtext *t, size_t n)
{
    if (t->over)
        return false;
    if (t->len + n + 1 > t->limit) {
        t->over = true;
        return false;
    }
    if (t->len + n + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n + 1)
        cap *= 2;
    if (cap > t->limit)
        cap = t->limit;
    char *nb = realloc(t->buf, cap);
    if (nb == NULL) {
        t->over = true;
        return false;
    }
    t->buf = nb;
    t->cap = cap;
    return true;
}

void mtext_printf(struct mtext *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0 || !mtext_reserve(t, (size_t)n))
        return;
    if ((size_t)n < sizeof(small)) {
        memcpy(t->buf + t->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

void mtext_escaped(struct mtext *t, const char *s, size_t n)
{
    if (!mtext_reserve(t, 2 * n))
        return;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' || c == '"') {
            t->buf[t->len++] = '\\';
            t->buf[t->len++] = c;
        } else if (c == '\n') {
            t->buf[t->len++] = '\\';
            t->buf[t->len++] = 'n';
        } else {
            t->buf[t->len++] = c;
        }
    }
    t->buf[t->len] = '\0';
}

void mtext_family(struct mtext *t, const char *name, const char *type, const char *help)
{
    mtext_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_head(struct mtext *t, const char *name, const char *suffix, const char *labels)
{
    mtext_printf(t, "%s%s%s%s%s", name, suffix, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
}

void mtext_sample_u64(struct mtext *t, const char *name, const char *labels, uint64_t v)
{
    sample_head(t, name, "", labels);
    mtext_printf(t, " %" PRIu64 "\n", v);
}

void mtext_sample_f64(struct mtext *t, const char *name, const char *labels, double v)
{
    sample_head(t, name, "", labels);
    mtext_printf(t, " %.3f\n", v);
}

void mtext_histogram_ms(struct mtext *t, const char *name, const char *labels,
                        const struct metrics_hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < METRICS_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        if (i < METRICS_HIST_BUCKETS - 1)
            mtext_printf(t, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
                         (double)metrics_hist_bounds_us[i] / 1000.0, cum);
        else
            mtext_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
    }
    GREGOR_ASSERT(cum == h->count);
    sample_head(t, name, "_sum", labels);
    mtext_printf(t, " %" PRIu64 ".%03" PRIu64 "\n", h->sum_us / 1000, h->sum_us % 1000);
    sample_head(t, name, "_count", labels);
    mtext_printf(t, " %" PRIu64 "\n", h->count);
}

/* k="v" with v escaped, appended at buf[*at] (cap bytes in all); false when it does not fit. */
static bool label_put(char *buf, size_t cap, size_t *at, const char *k, const char *v)
{
    int n = snprintf(buf + *at, cap - *at, "%s%s=\"", *at ? "," : "", k);
    if (n < 0 || (size_t)n >= cap - *at)
        return false;
    *at += (size_t)n;
    for (; *v; v++) {
        if (*at + 3 >= cap)
            return false;
        if (*v == '\\' || *v == '"' || *v == '\n') {
            buf[(*at)++] = '\\';
            buf[(*at)++] = *v == '\n' ? 'n' : *v;
        } else {
            buf[(*at)++] = *v;
        }
    }
    if (*at + 2 > cap)
        return false;
    buf[(*at)++] = '"';
    buf[*at] = '\0';
    return true;
}

/* A label set of one or two escaped values into buf (NUL-terminated; "" when it does not fit:
 * callers size buf for a topic name, the longest value they pass). */
static const char *labels2(char *buf, size_t cap, const char *k1, const char *v1, const char *k2,
                           const char *v2)
{
    size_t at = 0;
    buf[0] = '\0';
    if (!label_put(buf, cap, &at, k1, v1) || (k2 != NULL && !label_put(buf, cap, &at, k2, v2)))
        buf[0] = '\0';
    return buf;
}

/* src's text after t's (src->over makes t over). */
static void mtext_append(struct mtext *t, const struct mtext *src)
{
    if (src->over)
        t->over = true;
    else if (src->len > 0 && mtext_reserve(t, src->len)) {
        memcpy(t->buf + t->len, src->buf, src->len + 1);
        t->len += src->len;
    }
}

/* ---- /proc ---- */

int metrics_proc_stat_parse(const char *text, size_t len, struct proc_stat *out)
{
    /* The command name may hold spaces and parentheses: the fields start after the last ')'. */
    size_t i = len;
    while (i > 0 && text[i - 1] != ')')
        i--;
    if (i == 0)
        return -1;
    uint64_t v[22] = {0};
    int field = 3; /* state, then ppid (4), ... */
    while (field <= 24) {
        while (i < len && text[i] == ' ')
            i++;
        if (i >= len)
            return -1;
        uint64_t x = 0;
        bool digits = false;
        while (i < len && text[i] != ' ' && text[i] != '\n') {
            char c = text[i++];
            if (c >= '0' && c <= '9' && field != 3) {
                if (x > (UINT64_MAX - 9) / 10)
                    return -1;
                x = x * 10 + (uint64_t)(c - '0');
                digits = true;
            } else if (field != 3 && !(c == '-' && !digits)) {
                return -1;
            }
        }
        if (field >= 3 && field - 3 < 22)
            v[field - 3] = x;
        field++;
    }
    out->utime = v[14 - 3];
    out->stime = v[15 - 3];
    out->starttime = v[22 - 3];
    out->vsize = v[23 - 3];
    out->rss = v[24 - 3];
    return 0;
}

static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* fds: the open descriptors counted (by the scrape, over turns), or -1 when not known. */
static void process_metrics(struct mtext *t, int64_t fds)
{
    char buf[4096];
    struct proc_stat ps;
    double tick = (double)sysconf(_SC_CLK_TCK);
    ssize_t n = read_small("/proc/self/stat", buf, sizeof(buf));
    if (n > 0 && tick > 0 && metrics_proc_stat_parse(buf, (size_t)n, &ps) == 0) {
        mtext_family(t, "process_cpu_seconds_total", "counter",
                     "Total user and system CPU time spent in seconds.");
        mtext_sample_f64(t, "process_cpu_seconds_total", "", (double)(ps.utime + ps.stime) / tick);
        mtext_family(t, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        mtext_sample_u64(t, "process_virtual_memory_bytes", "", ps.vsize);
        mtext_family(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        mtext_sample_u64(t, "process_resident_memory_bytes", "",
                         ps.rss * (uint64_t)sysconf(_SC_PAGESIZE));
        /* btime (boot, seconds since the epoch) from /proc/stat. */
        char sbuf[16384];
        ssize_t m = read_small("/proc/stat", sbuf, sizeof(sbuf));
        const char *bt = m > 0 ? strstr(sbuf, "\nbtime ") : NULL;
        if (bt != NULL) {
            uint64_t btime = strtoull(bt + 7, NULL, 10);
            mtext_family(t, "process_start_time_seconds", "gauge",
                         "Start time of the process since unix epoch in seconds.");
            mtext_sample_f64(t, "process_start_time_seconds", "",
                             (double)btime + (double)ps.starttime / tick);
        }
    }
    if (fds >= 0) {
        mtext_family(t, "process_open_fds", "gauge", "Number of open file descriptors.");
        mtext_sample_u64(t, "process_open_fds", "", (uint64_t)fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        mtext_family(t, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        mtext_sample_u64(t, "process_max_fds", "", (uint64_t)rl.rlim_cur);
    }
}

/* ---- the page ---- */

#define TOPIC_FAMILIES 5
static const struct {
    const char *name, *help;
} topic_families[TOPIC_FAMILIES] = {
    {"kafka_server_brokertopicmetrics_messagesin_total", "Records appended as leader, per topic."},
    {"kafka_server_brokertopicmetrics_bytesin_total", "Record batch bytes appended as leader, per topic."},
    {"kafka_server_brokertopicmetrics_bytesout_total", "Record bytes sent to consumers, per topic."},
    {"kafka_server_brokertopicmetrics_totalproducerequests_total", "Produce requests naming the topic."},
    {"kafka_server_brokertopicmetrics_totalfetchrequests_total", "Fetch requests answered naming the topic."},
};

static uint64_t topic_family_value(const struct topic *tp, int f)
{
    switch (f) {
    case 0: return tp->counters.messages_in;
    case 1: return tp->counters.bytes_in;
    case 2: return tp->counters.bytes_out;
    case 3: return tp->counters.produce_requests;
    default: return tp->counters.fetch_requests;
    }
}

static const char *api_label(int slot)
{
    if (slot == METRICS_API_KEYS)
        return "FetchFollower";
    if (slot == PROTO_API_FETCH)
        return "FetchConsumer";
    const struct api_entry *e = broker_api_find((int16_t)slot);
    return e != NULL ? e->name : NULL;
}

static void request_metrics(struct broker *b, struct mtext *t)
{
    char lb[128];
    static const char req_total[] = "kafka_network_requestmetrics_requests_total";
    static const char total_ms[] = "kafka_network_requestmetrics_totaltimems";
    mtext_family(t, req_total, "counter", "Requests answered, per API (Fetch split by consumer and follower).");
    for (int s = 0; s <= METRICS_API_KEYS; s++) {
        const char *name = api_label(s);
        if (name != NULL && b->metrics.api[s].requests > 0)
            mtext_sample_u64(t, req_total, labels2(lb, sizeof(lb), "request", name, NULL, NULL),
                             b->metrics.api[s].requests);
    }
    mtext_family(t, total_ms, "histogram",
                 "Request time in ms from its frame read to its response queued, per API.");
    for (int s = 0; s <= METRICS_API_KEYS; s++) {
        const char *name = api_label(s);
        if (name != NULL && b->metrics.api[s].requests > 0)
            mtext_histogram_ms(t, total_ms, labels2(lb, sizeof(lb), "request", name, NULL, NULL),
                               &b->metrics.api[s].total_time);
    }
}

/* A scrape being built (metrics_serve): the topics' names at its start, NUL-separated, and a
 * cursor (name, partition) into them; each per-topic or per-partition family's samples so far. */
struct metrics_scrape {
    struct metrics_scrape *next;
    struct broker *b;
    struct http_req *req;               /* NULL for metrics_render */
    struct loop_task task;
    char *names;
    size_t names_len, at;               /* at: the next topic's name in names */
    int32_t part;                       /* its next partition */
    struct mtext fam[TOPIC_FAMILIES];
    struct mtext sizes;                 /* kafka_log_log_size */
    uint64_t under, partitions, leaders;
    DIR *fd_dir;                        /* /proc/self/fd while its entries are counted */
    int64_t fds;                        /* open descriptors; -1 until counted (or unknown) */
    bool fds_done;
};

static void scrape_init(struct broker *b, struct metrics_scrape *sc)
{
    *sc = (struct metrics_scrape){.b = b, .fds = -1};
    for (int f = 0; f < TOPIC_FAMILIES; f++)
        mtext_init(&sc->fam[f], METRICS_TEXT_CAP);
    mtext_init(&sc->sizes, METRICS_TEXT_CAP);
    size_t len = 0;
    for (struct topic *tp = topic_iter_first(b); tp; tp = topic_iter_next(b, tp))
        len += strlen(tp->name) + 1;
    sc->names = len > 0 ? malloc(len) : NULL;
    if (sc->names == NULL) {
        sc->sizes.over = len > 0; /* out of memory: the scrape answers 500 */
        return;
    }
    for (struct topic *tp = topic_iter_first(b); tp; tp = topic_iter_next(b, tp)) {
        size_t n = strlen(tp->name) + 1;
        GREGOR_ASSERT(sc->names_len + n <= len);
        memcpy(sc->names + sc->names_len, tp->name, n);
        sc->names_len += n;
    }
}

static void scrape_free(struct metrics_scrape *sc)
{
    for (int f = 0; f < TOPIC_FAMILIES; f++)
        mtext_free(&sc->fam[f]);
    mtext_free(&sc->sizes);
    free(sc->names);
    sc->names = NULL;
    if (sc->fd_dir != NULL)
        closedir(sc->fd_dir);
    sc->fd_dir = NULL;
}

/* Counts up to budget entries of /proc/self/fd from where the last call stopped (10,000
 * partitions hold 10,000 descriptors, and listing them took 8-25 ms); true when done. */
static bool scrape_fds(struct metrics_scrape *sc, size_t budget)
{
    if (sc->fds_done)
        return true;
    if (sc->fd_dir == NULL) {
        sc->fd_dir = opendir("/proc/self/fd");
        if (sc->fd_dir == NULL) {
            sc->fds_done = true;
            return true;
        }
        sc->fds = 0;
    }
    for (size_t n = 0; n < budget; n++) {
        const struct dirent *e = readdir(sc->fd_dir);
        if (e == NULL) {
            closedir(sc->fd_dir);
            sc->fd_dir = NULL;
            sc->fds = sc->fds > 0 ? sc->fds - 1 : 0; /* the directory's own descriptor */
            sc->fds_done = true;
            return true;
        }
        if (e->d_name[0] != '.')
            sc->fds++;
    }
    return false;
}

/* Writes the samples of up to budget partitions (a topic's own samples count as one) from the
 * cursor on; true when every topic is done. */
static bool scrape_step(struct metrics_scrape *sc, size_t budget)
{
    struct broker *b = sc->b;
    char lb[600], idx[16];
    size_t spent = 0;
    while (sc->at < sc->names_len && spent < budget) {
        const char *name = sc->names + sc->at;
        struct topic *tp = topic_find(b, name); /* NULL: deleted since the scrape began */
        if (tp != NULL && sc->part == 0) {
            labels2(lb, sizeof(lb), "topic", tp->name, NULL, NULL);
            for (int f = 0; f < TOPIC_FAMILIES; f++)
                mtext_sample_u64(&sc->fam[f], topic_families[f].name, lb,
                                 topic_family_value(tp, f));
            spent++;
        }
        for (; tp != NULL && sc->part < tp->npartitions && spent < budget; sc->part++) {
            const struct partition *p = tp->partitions[sc->part];
            if (p == NULL)
                continue;
            spent++;
            sc->partitions++;
            if (b->cluster == NULL || p->repl.leading)
                sc->leaders++;
            if (p->repl.leading && p->repl.ncommitted < p->repl.nfollowers + 1)
                sc->under++;
            snprintf(idx, sizeof(idx), "%" PRId32, sc->part);
            mtext_sample_u64(&sc->sizes, "kafka_log_log_size",
                             labels2(lb, sizeof(lb), "topic", tp->name, "partition", idx),
                             (uint64_t)partition_size_bytes(p));
        }
        if (tp != NULL && sc->part < tp->npartitions)
            break; /* out of budget inside the topic */
        sc->at += strlen(name) + 1;
        sc->part = 0;
    }
    return sc->at >= sc->names_len;
}

static void error_metrics(struct broker *b, struct mtext *t)
{
    static const char errs[] = "kafka_network_requestmetrics_errors_total";
    char lb[160];
    mtext_family(t, errs, "counter",
                 "Error codes in the answered responses (NONE included), per API and error.");
    for (int k = 0; k < METRICS_API_KEYS; k++) {
        const struct api_entry *e = broker_api_find((int16_t)k);
        const uint64_t *row = b->metrics.errors[k];
        if (e == NULL)
            continue;
        /* A code without a name is Kafka's UNKNOWN_SERVER_ERROR (Errors.forCode). */
        uint64_t unknown = row[0];
        for (int i = 1; i < METRICS_ERROR_CODES; i++)
            if (row[i] > 0 && strcmp(kerr_name(i - 1), "UNKNOWN") == 0)
                unknown += row[i];
        for (int i = 0; i < METRICS_ERROR_CODES; i++) {
            uint64_t v = i == 0 ? unknown : row[i];
            if (v == 0 || (i > 0 && strcmp(kerr_name(i - 1), "UNKNOWN") == 0))
                continue;
            mtext_sample_u64(t, errs,
                             labels2(lb, sizeof(lb), "request", e->name, "error", kerr_name(i - 1)),
                             v);
        }
    }
}

/* Kafka's ReplicaManager gauges (leading partitions with fewer ISR members than replicas; the
 * scrape counted them), the active controller's OfflinePartitionsCount (partitions without a
 * leader; 0 on any other broker), ISR changes, partition sizes (the scrape's samples). */
static void replica_metrics(struct broker *b, struct mtext *t, const struct metrics_scrape *sc)
{
    uint64_t under = sc->under, partitions = sc->partitions, leaders = sc->leaders;
    uint64_t offline = 0;
    if (b->cluster != NULL && cluster_is_controller(b->cluster)) {
        struct cluster_topic *const *ct = NULL;
        int nt = cluster_topics(b->cluster, &ct);
        for (int i = 0; i < nt; i++)
            for (int32_t j = 0; j < ct[i]->npartitions; j++)
                if (ct[i]->parts[j].state == CLUSTER_STATE_READ && ct[i]->parts[j].leader < 0)
                    offline++;
    }
    mtext_family(t, "kafka_server_replicamanager_underreplicatedpartitions", "gauge",
                 "Partitions led here whose ISR is smaller than their replicas.");
    mtext_sample_u64(t, "kafka_server_replicamanager_underreplicatedpartitions", "", under);
    mtext_family(t, "kafka_server_replicamanager_partitioncount", "gauge", "Partitions on this broker.");
    mtext_sample_u64(t, "kafka_server_replicamanager_partitioncount", "", partitions);
    mtext_family(t, "kafka_server_replicamanager_leadercount", "gauge", "Partitions led by this broker.");
    mtext_sample_u64(t, "kafka_server_replicamanager_leadercount", "", leaders);
    mtext_family(t, "kafka_controller_kafkacontroller_offlinepartitionscount", "gauge",
                 "Partitions without a leader (the active controller's count; 0 elsewhere).");
    mtext_sample_u64(t, "kafka_controller_kafkacontroller_offlinepartitionscount", "", offline);
    mtext_family(t, "kafka_server_replicamanager_isrshrinks_total", "counter",
                 "ISR shrinks this leader committed.");
    mtext_sample_u64(t, "kafka_server_replicamanager_isrshrinks_total", "", b->metrics.isr_shrinks);
    mtext_family(t, "kafka_server_replicamanager_isrexpands_total", "counter",
                 "ISR expansions this leader committed.");
    mtext_sample_u64(t, "kafka_server_replicamanager_isrexpands_total", "", b->metrics.isr_expands);

    mtext_family(t, "kafka_log_log_size", "gauge", "Bytes of a partition's log segments.");
    mtext_append(t, &sc->sizes);
    mtext_family(t, "kafka_log_logflushstats_logflushrateandtimems", "histogram",
                 "Group commit fsync batches in ms, from hand-over to the I/O worker to synced.");
    mtext_histogram_ms(t, "kafka_log_logflushstats_logflushrateandtimems", "",
                       &b->metrics.flush_time);
}

/* kafka_exporter's consumer group metrics for the groups this broker coordinates: the
 * committed offset, and the lag to the partition's high watermark (partitions led here). */
static void group_metrics(struct broker *b, struct mtext *t)
{
    static const char lag[] = "kafka_consumergroup_lag";
    static const char cur[] = "kafka_consumergroup_current_offset";
    mtext_family(t, cur, "gauge", "Committed offset of a consumer group in a partition.");
    struct mtext lags;
    mtext_init(&lags, METRICS_TEXT_CAP);
    mtext_family(&lags, lag, "gauge", "High watermark minus the committed offset.");
    struct gc_group_summary *groups = NULL;
    int ng = b->groups != NULL ? gc_list(b->groups, &groups) : 0;
    for (int g = 0; g < ng; g++) {
        struct gc_offset *offs = NULL;
        int no = gc_offset_list(b->groups, groups[g].group_id, &offs);
        for (int k = 0; k < no; k++) {
            if (offs[k].offset < 0)
                continue;
            struct topic *tp = topic_find(b, offs[k].topic);
            struct partition *p = tp != NULL && offs[k].partition >= 0 &&
                                          offs[k].partition < tp->npartitions
                                      ? tp->partitions[offs[k].partition]
                                      : NULL;
            if (p == NULL || (b->cluster != NULL && !p->repl.leading))
                continue; /* not led here: its leader's broker knows the watermark */
            int64_t hw = partition_high_watermark(p);
            struct mtext *outs[2] = {t, &lags};
            for (int o = 0; o < 2; o++) {
                struct mtext *m = outs[o];
                mtext_printf(m, "%s{consumergroup=\"", o == 0 ? cur : lag);
                mtext_escaped(m, groups[g].group_id, strlen(groups[g].group_id));
                mtext_printf(m, "\",topic=\"");
                mtext_escaped(m, offs[k].topic, strlen(offs[k].topic));
                mtext_printf(m, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", offs[k].partition,
                             o == 0 ? offs[k].offset
                                    : (hw > offs[k].offset ? hw - offs[k].offset : 0));
            }
        }
        free(offs);
    }
    free(groups);
    mtext_append(t, &lags);
    mtext_free(&lags);
}

/* The page from a finished scrape into t. */
static void scrape_page(struct metrics_scrape *sc, struct mtext *t)
{
    struct broker *b = sc->b;
    for (int f = 0; f < TOPIC_FAMILIES; f++) {
        mtext_family(t, topic_families[f].name, "counter", topic_families[f].help);
        mtext_append(t, &sc->fam[f]);
    }
    mtext_family(t, "kafka_server_brokertopicmetrics_replicationbytesin_total", "counter",
                 "Record bytes fetched from leaders as a follower.");
    mtext_sample_u64(t, "kafka_server_brokertopicmetrics_replicationbytesin_total", "",
                     b->metrics.replication_bytes_in);
    mtext_family(t, "kafka_server_brokertopicmetrics_replicationbytesout_total", "counter",
                 "Record bytes sent to followers.");
    mtext_sample_u64(t, "kafka_server_brokertopicmetrics_replicationbytesout_total", "",
                     b->metrics.replication_bytes_out);
    request_metrics(b, t);
    error_metrics(b, t);
    replica_metrics(b, t, sc);
    group_metrics(b, t);
    /* Kafka's connection-count; the JMX exporter's _count suffix is refused by promtool's
     * lint for a gauge, so the family is named _connections. */
    mtext_family(t, "kafka_server_socketservermetrics_connections", "gauge",
                 "Open Kafka client connections (Kafka's connection-count).");
    mtext_sample_u64(t, "kafka_server_socketservermetrics_connections", "",
                     b->net != NULL ? (uint64_t)net_connection_count(b->net) : 0);
    process_metrics(t, sc->fds);
}

void metrics_render(struct broker *b, struct mtext *t)
{
    struct metrics_scrape sc;
    scrape_init(b, &sc);
    bool done = scrape_step(&sc, SIZE_MAX) && scrape_fds(&sc, SIZE_MAX);
    GREGOR_ASSERT(done);
    scrape_page(&sc, t);
    scrape_free(&sc);
}

static void scrape_unlink(struct broker *b, struct metrics_scrape *sc)
{
    for (struct metrics_scrape **pp = &b->metrics.scrapes; *pp; pp = &(*pp)->next)
        if (*pp == sc) {
            *pp = sc->next;
            GREGOR_ASSERT(b->metrics.nscrapes > 0);
            b->metrics.nscrapes--;
            return;
        }
}

/* Answers a finished scrape (or one whose client went away: the answer is then dropped). */
static void scrape_answer(struct metrics_scrape *sc)
{
    struct mtext t;
    mtext_init(&t, METRICS_TEXT_CAP);
    if (!http_req_gone(sc->req))
        scrape_page(sc, &t);
    if (t.over) {
        static const char msg[] = "metrics exceed their bound\n";
        http_respond(sc->req, 500, "text/plain; charset=utf-8", NULL, msg, sizeof(msg) - 1);
    } else {
        http_respond(sc->req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t.buf, t.len);
    }
    sc->req = NULL;
    mtext_free(&t);
}

/* One turn's worth: partitions, then descriptors; true when the page can be written. */
static bool scrape_work(struct metrics_scrape *sc)
{
    return scrape_step(sc, METRICS_SCRAPE_CHUNK) && scrape_fds(sc, METRICS_SCRAPE_CHUNK);
}

/* One turn's part of a scrape (a posted loop task: the loop serves other events between). */
static void scrape_turn(struct loop *l, void *arg)
{
    struct metrics_scrape *sc = arg;
    if (!http_req_gone(sc->req) && !scrape_work(sc)) {
        loop_post(l, &sc->task);
        return;
    }
    scrape_unlink(sc->b, sc);
    scrape_answer(sc);
    scrape_free(sc);
    free(sc);
}

void metrics_scrapes_drop(struct broker *b)
{
    while (b->metrics.scrapes != NULL) {
        struct metrics_scrape *sc = b->metrics.scrapes;
        b->metrics.scrapes = sc->next;
        b->metrics.nscrapes--;
        loop_unpost(b->loop, &sc->task);
        scrape_free(sc); /* its request is freed with the HTTP server, unanswered */
        free(sc);
    }
    GREGOR_ASSERT(b->metrics.nscrapes == 0);
}

void metrics_serve(struct broker *b, struct http_req *req)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                     "method not allowed\n", 19);
        return;
    }
    struct metrics_scrape *sc = NULL;
    if (b->metrics.nscrapes < METRICS_SCRAPES_MAX)
        sc = malloc(sizeof(*sc));
    if (sc == NULL) {
        static const char msg[] = "too many scrapes in progress\n";
        http_respond(req, 503, "text/plain; charset=utf-8", "Retry-After: 1\r\n", msg,
                     sizeof(msg) - 1);
        return;
    }
    scrape_init(b, sc);
    sc->req = req;
    /* Every part in the posted task, the first one later in this turn (after its events). */
    sc->task = (struct loop_task){.fn = scrape_turn, .arg = sc};
    sc->next = b->metrics.scrapes;
    b->metrics.scrapes = sc;
    b->metrics.nscrapes++;
    loop_post(b->loop, &sc->task);
}
