/* metrics: GET /metrics in Prometheus' text format (exposition 0.0.4), under the names Kafka's
 * users see through the Prometheus JMX exporter (kafka_server_brokertopicmetrics_*,
 * kafka_network_requestmetrics_*, ...) and kafka_exporter's consumer group lag, plus the
 * process metrics every Prometheus client exports. Counters are plain uint64 kept with what
 * they count (struct topic's counters, struct broker's metrics) and bumped on the loop thread;
 * states (log sizes, lag, under-replicated partitions, connections) are computed here, at
 * scrape, on the loop thread too. The page is built in one growing buffer capped at
 * METRICS_TEXT_CAP. */
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
#include "proto/messages.h"

/* 0.1 ms .. 10 s (Kafka's request times and flushes are in ms). */
const uint64_t metrics_hist_bounds_us[METRICS_HIST_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

/* ---- counters ---- */

void metrics_request_done(struct broker *b, const struct request *r)
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

static void process_metrics(struct mtext *t)
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
    /* Open descriptors: the entries of /proc/self/fd (the directory's own among them). */
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        uint64_t fds = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        mtext_family(t, "process_open_fds", "gauge", "Number of open file descriptors.");
        mtext_sample_u64(t, "process_open_fds", "", fds > 0 ? fds - 1 : 0);
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

static void topic_metrics(struct broker *b, struct mtext *t)
{
    char lb[600];
    for (int f = 0; f < TOPIC_FAMILIES; f++) {
        mtext_family(t, topic_families[f].name, "counter", topic_families[f].help);
        for (struct topic *tp = topic_iter_first(b); tp; tp = topic_iter_next(b, tp))
            mtext_sample_u64(t, topic_families[f].name,
                             labels2(lb, sizeof(lb), "topic", tp->name, NULL, NULL),
                             topic_family_value(tp, f));
    }
    mtext_family(t, "kafka_server_brokertopicmetrics_replicationbytesin_total", "counter",
                 "Record bytes fetched from leaders as a follower.");
    mtext_sample_u64(t, "kafka_server_brokertopicmetrics_replicationbytesin_total", "",
                     b->metrics.replication_bytes_in);
    mtext_family(t, "kafka_server_brokertopicmetrics_replicationbytesout_total", "counter",
                 "Record bytes sent to followers.");
    mtext_sample_u64(t, "kafka_server_brokertopicmetrics_replicationbytesout_total", "",
                     b->metrics.replication_bytes_out);
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

/* Kafka's ReplicaManager gauges (leading partitions with fewer ISR members than replicas),
 * the active controller's OfflinePartitionsCount (partitions without a leader; 0 on any other
 * broker), ISR changes, partition sizes. */
static void replica_metrics(struct broker *b, struct mtext *t)
{
    uint64_t under = 0, partitions = 0, leaders = 0;
    for (struct topic *tp = topic_iter_first(b); tp; tp = topic_iter_next(b, tp))
        for (int32_t i = 0; i < tp->npartitions; i++) {
            const struct partition *p = tp->partitions[i];
            if (p == NULL)
                continue;
            partitions++;
            if (b->cluster == NULL || p->repl.leading)
                leaders++;
            if (p->repl.leading && p->repl.ncommitted < p->repl.nfollowers + 1)
                under++;
        }
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

    char lb[600], idx[16];
    mtext_family(t, "kafka_log_log_size", "gauge", "Bytes of a partition's log segments.");
    for (struct topic *tp = topic_iter_first(b); tp; tp = topic_iter_next(b, tp))
        for (int32_t i = 0; i < tp->npartitions; i++) {
            const struct partition *p = tp->partitions[i];
            if (p == NULL)
                continue;
            snprintf(idx, sizeof(idx), "%" PRId32, i);
            mtext_sample_u64(t, "kafka_log_log_size",
                             labels2(lb, sizeof(lb), "topic", tp->name, "partition", idx),
                             (uint64_t)partition_size_bytes(p));
        }
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
    if (lags.over)
        t->over = true;
    else if (lags.len > 0 && mtext_reserve(t, lags.len)) {
        memcpy(t->buf + t->len, lags.buf, lags.len + 1);
        t->len += lags.len;
    }
    mtext_free(&lags);
}

void metrics_render(struct broker *b, struct mtext *t)
{
    topic_metrics(b, t);
    request_metrics(b, t);
    replica_metrics(b, t);
    group_metrics(b, t);
    /* Kafka's connection-count; the JMX exporter's _count suffix is refused by promtool's
     * lint for a gauge, so the family is named _connections. */
    mtext_family(t, "kafka_server_socketservermetrics_connections", "gauge",
                 "Open Kafka client connections (Kafka's connection-count).");
    mtext_sample_u64(t, "kafka_server_socketservermetrics_connections", "",
                     b->net != NULL ? (uint64_t)net_connection_count(b->net) : 0);
    process_metrics(t);
}

void metrics_serve(struct broker *b, struct http_req *req)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                     "method not allowed\n", 19);
        return;
    }
    struct mtext t;
    mtext_init(&t, METRICS_TEXT_CAP);
    metrics_render(b, &t);
    if (t.over) {
        static const char msg[] = "metrics exceed their bound\n";
        http_respond(req, 500, "text/plain; charset=utf-8", NULL, msg, sizeof(msg) - 1);
    } else {
        http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t.buf, t.len);
    }
    mtext_free(&t);
}
