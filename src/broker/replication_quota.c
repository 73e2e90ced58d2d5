/* replication_quota: see replication_quota.h. Kafka's metrics arithmetic (SampledStat,
 * WindowedSum, SimpleRate, Sensor.checkQuotas) for the one sensor a quota manager has, on the
 * loop: no lock, no allocation. */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/replication_quota.h"
#include "common/util.h"

#define EXPIRE_MS ((int64_t)REPLICATION_QUOTA_SAMPLES * REPLICATION_QUOTA_WINDOW_MS)

static void sample_reset(struct replication_quota_sample *s, int64_t now_ms)
{
    s->value = 0;
    s->start_ms = now_ms;
    s->last_ms = now_ms;
}

/* SampledStat.current: the first sample is made at the first use. */
static struct replication_quota_sample *current(struct replication_quota *q, int64_t now_ms)
{
    if (q->nsamples == 0) {
        sample_reset(&q->samples[0], now_ms);
        q->nsamples = 1;
        q->current = 0;
    }
    GREGOR_ASSERT(q->current >= 0 && q->current < q->nsamples);
    return &q->samples[q->current];
}

/* SampledStat.advance: the next slot, new while fewer than samples + 1 exist. */
static struct replication_quota_sample *advance(struct replication_quota *q, int64_t now_ms)
{
    q->current = (q->current + 1) % (REPLICATION_QUOTA_SAMPLES + 1);
    if (q->current >= q->nsamples) {
        GREGOR_ASSERT(q->current == q->nsamples);
        q->nsamples++;
    }
    sample_reset(&q->samples[q->current], now_ms);
    return &q->samples[q->current];
}

static void purge_obsolete(struct replication_quota *q, int64_t now_ms)
{
    for (int i = 0; i < q->nsamples; i++)
        if (now_ms - q->samples[i].last_ms >= EXPIRE_MS)
            sample_reset(&q->samples[i], now_ms);
}

void replication_quota_record(struct replication_quota *q, int64_t bytes, int64_t now_ms)
{
    GREGOR_ASSERT(bytes >= 0);
    struct replication_quota_sample *s = current(q, now_ms);
    if (now_ms - s->start_ms >= REPLICATION_QUOTA_WINDOW_MS)
        s = advance(q, now_ms);
    s->value += (double)bytes;
    s->last_ms = now_ms;
}

double replication_quota_rate(struct replication_quota *q, int64_t now_ms)
{
    purge_obsolete(q, now_ms);
    double total = 0;
    for (int i = 0; i < q->nsamples; i++)
        total += q->samples[i].value;
    (void)current(q, now_ms); /* SampledStat.oldest makes a sample when there is none */
    int64_t oldest = q->samples[0].start_ms;
    for (int i = 1; i < q->nsamples; i++)
        if (q->samples[i].start_ms < oldest)
            oldest = q->samples[i].start_ms;
    int64_t window = now_ms - oldest;
    if (window < REPLICATION_QUOTA_WINDOW_MS)
        window = REPLICATION_QUOTA_WINDOW_MS;
    return total / ((double)window / 1000.0);
}

bool replication_quota_exceeded(struct replication_quota *q, int64_t bound, int64_t now_ms)
{
    if (bound == REPLICATION_QUOTA_NONE)
        return false; /* Long.MAX_VALUE as a double: no byte rate gets there */
    GREGOR_ASSERT(bound >= 0);
    return replication_quota_rate(q, now_ms) > (double)bound;
}

bool replication_quota_listed(const char *value, int32_t partition, int32_t node_id)
{
    const char *p = value;
    while (*p == ' ')
        p++;
    if (p[0] == '*') {
        const char *rest = p + 1;
        while (*rest == ' ')
            rest++;
        if (*rest == '\0')
            return true;
    }
    /* Items "  p:b  " between commas; empty items are allowed and match nothing. */
    while (*p != '\0') {
        char *end;
        long part = strtol(p, &end, 10);
        if (end != p && *end == ':') {
            const char *bp = end + 1;
            long id = strtol(bp, &end, 10);
            if (end != bp && part == partition && id == node_id)
                return true;
        }
        const char *comma = strchr(p, ',');
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return false;
}

static const char *override(const struct topic *t, const char *key)
{
    for (int i = 0; i < t->noverrides; i++)
        if (strcmp(t->overrides[i].key, key) == 0)
            return t->overrides[i].value;
    return NULL;
}

bool replication_quota_throttled(const struct broker *b, const struct topic *t, int32_t partition,
                                 bool leader)
{
    const char *v = override(t, leader ? "leader.replication.throttled.replicas"
                                       : "follower.replication.throttled.replicas");
    return v != NULL && v[0] != '\0' && replication_quota_listed(v, partition, b->cfg.node_id);
}

bool replication_quota_over(struct broker *b, bool leader, int64_t now_ms)
{
    return leader ? replication_quota_exceeded(&b->quota_leader,
                                               b->cfg.leader_replication_throttled_rate, now_ms)
                  : replication_quota_exceeded(&b->quota_follower,
                                               b->cfg.follower_replication_throttled_rate, now_ms);
}
