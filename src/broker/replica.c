/* replica: see replica.h. Loop thread only. An ISR change is written to the partition's state
 * znode at the version read (cluster_write_isr), one in flight per partition; its completion
 * commits it in the partition (or, refused, takes ZooKeeper's state again). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/iowork.h"
#include "broker/replica.h"
#include "broker/syncer.h"
#include "cluster/cluster.h"
#include "cluster/zk.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/logdir.h"
#include "net/loop.h"

#define WHO "Partition"

/* The ISR expiration runs every replica.lag.time.max.ms / 2, as Kafka's isr-expiration task,
 * within these bounds. */
#define ISR_CHECK_MIN_MS 10
#define ISR_CHECK_MAX_MS 15000

int32_t replica_min_insync(const struct broker *b, const struct topic *t)
{
    for (int i = 0; i < t->noverrides; i++)
        if (strcmp(t->overrides[i].key, "min.insync.replicas") == 0)
            return (int32_t)strtol(t->overrides[i].value, NULL, 10);
    char v[64];
    int source;
    const char *synonym;
    topic_config_default(b, "min.insync.replicas", v, sizeof(v), &source, &synonym);
    long n = strtol(v, NULL, 10);
    return n >= 1 && n <= INT32_MAX ? (int32_t)n : 1;
}

/* The high watermark moved: parked consumer fetches and acks=all produces look again (both
 * wait as WAITER_ON_APPEND; before_sleep wakes them). */
static void hw_moved(struct broker *b)
{
    b->appended = true;
    loop_wake_soon(b->loop);
}

static void isr_written(struct cluster_isr_write *w, int zk_rc);

static void write_isr(struct broker *b, struct topic *t, struct partition *p, const int32_t *isr,
                      int nisr)
{
    struct cluster_isr_write *w = calloc(1, sizeof(*w));
    int e = KERR_UNKNOWN_SERVER_ERROR;
    if (w != NULL) {
        snprintf(w->topic, sizeof(w->topic), "%s", t->name);
        w->partition = p->index;
        w->leader_epoch = p->repl.leader_epoch;
        w->nisr = nisr;
        memcpy(w->isr, isr, sizeof(isr[0]) * (size_t)nisr);
        w->done = isr_written;
        w->arg = b;
        e = cluster_write_isr(b->cluster, w);
    }
    if (e == KERR_NONE) {
        w->next = b->isr_writes; /* ours until its completion (or replica_shutdown) */
        b->isr_writes = w;
        return;
    }
    free(w);
    /* Not sent (not the leader in ZooKeeper's eyes, or not connected): the change is
     * proposed again at the next fetch or ISR check. */
    LOG_LIMITED(LOG_LEVEL_WARN, WHO, "cannot write the ISR of %s-%d: %s", t->name, p->index,
                kerr_name(e));
    partition_isr_write_done(p, false, NULL, 0);
    if (partition_update_high_watermark(p, now_ms()))
        hw_moved(b);
}

void replica_shutdown(struct broker *b)
{
    GREGOR_ASSERT(b->cluster == NULL); /* no completion can come any more */
    while (b->isr_writes != NULL) {
        struct cluster_isr_write *w = b->isr_writes;
        b->isr_writes = w->next;
        free(w);
    }
}

static void log_isr(const char *what, const char *topic, int32_t index, const int32_t *isr,
                    int nisr)
{
    char list[12 * PARTITION_REPLICAS_MAX + 2];
    int n = 0;
    for (int i = 0; i < nisr && n < (int)sizeof(list) - 12; i++)
        n += snprintf(list + n, sizeof(list) - (size_t)n, "%s%d", i ? "," : "", isr[i]);
    list[n] = '\0';
    LOG_INFO(WHO, "[Partition %s-%d] %s ISR to %s", topic, index, what, list);
}

/* Leading p as ZooKeeper's state cp says (this broker its leader). */
static bool sync_partition(struct broker *b, struct partition *p, const struct cluster_partition *cp)
{
    int64_t now = now_ms();
    if (!p->repl.leading || p->repl.leader_epoch != p->leader_epoch) {
        partition_lead_replicated(p, b->cfg.node_id, cp->replicas, cp->nreplicas, cp->isr,
                                  cp->nisr, now, b->cfg.replica_lag_time_max_ms);
        p->repl.leader_epoch = p->leader_epoch;
    } else {
        partition_set_assignment(p, cp->replicas, cp->nreplicas);
        if (!p->repl.isr_inflight)
            partition_set_isr(p, cp->isr, cp->nisr);
    }
    return partition_update_high_watermark(p, now);
}

static void isr_check(struct loop *l, void *arg);

void replica_sync(struct broker *b)
{
    if (b->cluster == NULL)
        return;
    if (!b->replica_ticking) {
        b->replica_ticking = true;
        loop_timer_add(b->loop, mono_ms() + ISR_CHECK_MIN_MS, isr_check, b);
    }
    /* Over ZooKeeper's topics, each found here by hash: a local topic ZooKeeper no longer
     * lists is being deleted. */
    bool moved = false;
    struct cluster_topic *const *cts;
    int n = cluster_topics(b->cluster, &cts);
    for (int k = 0; k < n; k++) {
        const struct cluster_topic *ct = cts[k];
        struct topic *t = ct->read ? topic_find(b, ct->name) : NULL;
        if (t == NULL || t->creating > 0 || t->growing > 0)
            continue;
        for (int32_t i = 0; i < t->npartitions; i++) {
            struct partition *p = t->partitions[i];
            const struct cluster_partition *cp = i < ct->npartitions ? &ct->parts[i] : NULL;
            bool leads = cp != NULL && cp->state == CLUSTER_STATE_READ &&
                         cp->leader == b->cfg.node_id && cp->leader_epoch == p->leader_epoch;
            if (leads) {
                moved |= sync_partition(b, p, cp);
            } else if (p->repl.leading) {
                /* Its acks=all produces waiting for the high watermark are answered
                 * NOT_LEADER_OR_FOLLOWER now, as Kafka's makeFollowers completes its delayed
                 * produces (they waited for their timeout). */
                partition_stop_leading(p);
                moved = true;
            }
        }
    }
    if (moved)
        hw_moved(b);
}

static void isr_written(struct cluster_isr_write *w, int zk_rc)
{
    struct broker *b = w->arg;
    struct cluster_isr_write **pp = &b->isr_writes;
    while (*pp != NULL && *pp != w)
        pp = &(*pp)->next;
    GREGOR_ASSERT(*pp == w);
    *pp = w->next;
    const char *topic = w->topic;
    int32_t partition = w->partition;
    struct topic *t = topic_find(b, topic);
    struct partition *p = t != NULL && partition < t->npartitions ? t->partitions[partition] : NULL;
    if (p == NULL || !p->repl.leading) {
        free(w); /* deleted or no longer led meanwhile */
        return;
    }
    if (zk_rc == ZK_OK) {
        log_isr("Updated", topic, partition, w->isr, w->nisr);
        /* Kafka marks IsrShrinksPerSec / IsrExpandsPerSec when the change is committed. */
        if (w->nisr < p->repl.ncommitted)
            b->metrics.isr_shrinks++;
        else if (w->nisr > p->repl.ncommitted)
            b->metrics.isr_expands++;
        partition_isr_write_done(p, true, w->isr, w->nisr);
    } else {
        /* Refused (the controller changed the state: Kafka's "cached zkVersion not equal")
         * or failed: ZooKeeper's state as cached now; its watch brings any newer one. */
        partition_isr_write_done(p, false, NULL, 0);
        const struct cluster_topic *ct = b->cluster ? cluster_topic_find(b->cluster, topic) : NULL;
        const struct cluster_partition *cp = ct != NULL && partition < ct->npartitions
                                                 ? &ct->parts[partition] : NULL;
        if (cp != NULL && cp->state == CLUSTER_STATE_READ && cp->leader == b->cfg.node_id &&
            cp->leader_epoch == p->leader_epoch)
            sync_partition(b, p, cp);
        else
            partition_stop_leading(p);
    }
    free(w);
    if (p->repl.leading)
        partition_update_high_watermark(p, now_ms());
    hw_moved(b); /* the HW, or NOT_ENOUGH_REPLICAS_AFTER_APPEND: waiters look again */
}

int replica_follower_fetch(struct broker *b, struct topic *t, struct partition *p,
                           int32_t replica_id, int64_t fetch_offset, bool epoch_given)
{
    int64_t now = now_ms();
    int e = partition_follower_fetched(p, replica_id, fetch_offset, now, epoch_given);
    if (e != KERR_NONE)
        return e;
    int32_t isr[PARTITION_REPLICAS_MAX];
    int nisr = 0;
    if (b->cluster != NULL && partition_isr_expand(p, isr, &nisr)) {
        log_isr("Expanding", t->name, p->index, isr, nisr);
        write_isr(b, t, p, isr, nisr);
    }
    if (partition_update_high_watermark(p, now))
        hw_moved(b);
    return KERR_NONE;
}

/* ---- periodic work ---- */

/* replication-offset-checkpoint of each log dir, written on the I/O worker. */
struct hw_job {
    struct logdir *dirs[BROKER_MAX_LOG_DIRS];
    struct logdir_checkpoint_entry *entries[BROKER_MAX_LOG_DIRS];
    int nentries[BROKER_MAX_LOG_DIRS];
    int ndirs;
};

static void hw_job_free(void *arg)
{
    struct hw_job *j = arg;
    for (int d = 0; d < j->ndirs; d++) {
        for (int i = 0; i < j->nentries[d]; i++)
            free((char *)j->entries[d][i].topic);
        free(j->entries[d]);
    }
    free(j);
}

static void hw_job_write(void *arg)
{
    struct hw_job *j = arg;
    for (int d = 0; d < j->ndirs; d++)
        logdir_write_hw_checkpoint(j->dirs[d], j->entries[d], j->nentries[d]);
}

static struct hw_job *hw_job_take(struct broker *b)
{
    struct hw_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    int cap = 0;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        cap += t->npartitions;
    for (int d = 0; d < b->ndirs; d++) {
        struct logdir_checkpoint_entry *e = calloc((size_t)(cap > 0 ? cap : 1), sizeof(*e));
        if (e == NULL) {
            hw_job_free(j);
            return NULL;
        }
        j->dirs[d] = b->dirs[d];
        j->entries[d] = e;
        j->ndirs = d + 1;
        int n = 0;
        for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
            for (int32_t i = 0; i < t->npartitions && n < cap; i++) {
                struct partition *p = t->partitions[i];
                if (p == NULL || p->dir_index != d || (e[n].topic = strdup(t->name)) == NULL)
                    continue;
                e[n].partition = i;
                e[n].high_watermark = partition_high_watermark(p);
                j->nentries[d] = ++n;
            }
    }
    return j;
}

static void hw_checkpoint(struct loop *l, void *arg)
{
    struct broker *b = arg;
    struct iowork *w = b->syncer != NULL ? syncer_iowork(b->syncer) : NULL;
    /* One at a time: one still queued writes values nearly as new. */
    if (w != NULL && iowork_inflight(w, IOWORK_CHECKPOINT) == 0) {
        struct hw_job *j = hw_job_take(b);
        if (j != NULL && iowork_submit(w, IOWORK_CHECKPOINT, hw_job_write, hw_job_free, j, false) < 0)
            hw_job_free(j); /* queue full: the next tick writes it */
    }
    loop_timer_add(l, mono_ms() + b->cfg.replica_high_watermark_checkpoint_interval_ms,
                   hw_checkpoint, b);
}

/* Kafka's isr-expiration: followers not caught up for replica.lag.time.max.ms leave the ISR;
 * followers that were only "caught up lately" stop holding the high watermark. */
static void isr_check(struct loop *l, void *arg)
{
    struct broker *b = arg;
    if (!b->replica_hw_ticking) {
        b->replica_hw_ticking = true;
        loop_timer_add(l, mono_ms() + b->cfg.replica_high_watermark_checkpoint_interval_ms,
                       hw_checkpoint, b);
    }
    /* Partitions opened or grown since ZooKeeper last changed lead from here at the latest. */
    replica_sync(b);
    int64_t now = now_ms();
    bool moved = false;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        for (int32_t i = 0; t->creating == 0 && t->growing == 0 && i < t->npartitions; i++) {
            struct partition *p = t->partitions[i];
            if (!p->repl.leading)
                continue;
            int32_t isr[PARTITION_REPLICAS_MAX];
            int nisr = 0;
            if (b->cluster != NULL && partition_isr_shrink(p, now, isr, &nisr)) {
                log_isr("Shrinking", t->name, i, isr, nisr);
                write_isr(b, t, p, isr, nisr);
            }
            moved |= partition_update_high_watermark(p, now);
        }
    if (moved)
        hw_moved(b);
    int64_t every = b->cfg.replica_lag_time_max_ms / 2;
    every = every < ISR_CHECK_MIN_MS ? ISR_CHECK_MIN_MS : every > ISR_CHECK_MAX_MS ? ISR_CHECK_MAX_MS : every;
    loop_timer_add(l, mono_ms() + every, isr_check, b);
}
