/* txn_store: the transaction coordinator's host environment in the broker (its txn_env) —
 * __transaction_state created on first use and replayed at start-up, the coordinator's records
 * appended to it, the markers written to the transaction's partitions, producer ids from
 * producer_ids.c and the two periodic checks (timed-out transactions, expired ids) on the loop's
 * timers. src/txn/ knows neither the broker nor the log: all of it comes through the env here.
 * On ZooKeeper (docs/CLUSTER.md) it follows which partitions of the ZooKeeper topic this broker
 * leads, loads them, waits for an append's replication (acks=all) and sends the markers of
 * partitions other brokers lead as WriteTxnMarkers over the outbound client. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/sasl.h"
#include "broker/broker.h"
#include "broker/group_store.h"
#include "broker/handlers.h"
#include "broker/peer_conns.h"
#include "broker/producer_ids.h"
#include "broker/replica.h"
#include "broker/txn_markers.h"
#include "broker/txn_store.h"
#include "broker/waiters.h"
#include "cluster/cluster.h"
#include "cluster/znode.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/batch.h"
#include "log/fileio.h"
#include "net/client.h"
#include "net/loop.h"
#include "proto/messages.h"
#include "txn/txn_coordinator.h"

#define STORE_WHO "TransactionStateManager"
/* Replay reads the log in chunks of this many bytes (at least one whole batch each). */
#define REPLAY_CHUNK_BYTES (4 << 20)
#define REPLAY_MAX_DECOMPRESSED (64u << 20)
/* Kafka's TransactionLog defaults: transaction.state.log.segment.bytes. */
#define TXN_TOPIC_SEGMENT_BYTES 104857600
/* A cluster: how often a partition waiting for its local log is looked at, and how long an
 * append may wait for its replication (Kafka's request.timeout.ms). */
#define LOAD_WAIT_MS 20
#define APPEND_WAIT_MAX_MS 30000
/* A failed round of markers is resent after this long (Kafka's marker channel retries a
 * failed partition on its next send), not at the next timeout check 10 s away. */
#define MARKER_RETRY_MS 500
/* Peers markers go to: connections kept, one per broker id (bounded by the cluster's size). */
#define MARKER_PEERS_MAX 1024

/* Where this broker stands for one partition of __transaction_state in a cluster. */
enum store_state { STORE_NOT_OWNED, STORE_LOADING, STORE_OWNED };

/* An append of the coordinator waiting for the high watermark to pass its end (acks=all),
 * parked as an acks=all produce is: a follower's fetch that moves the high watermark wakes
 * it. */
struct append_wait {
    struct waiter w;
    struct txn_store *s;
    int32_t partition;
    int32_t leadership;         /* partition_leadership at the append */
    int64_t end;
    struct txn_op *op;
    struct append_wait *prev, *next; /* in s->waits */
};

/* One node: an append that came while __transaction_state was being created (its record
 * copied: the coordinator lends it for the call only). */
struct held_append {
    int32_t partition;
    struct txn_op *op;
    uint8_t *key, *value;       /* value NULL for a tombstone */
    int32_t key_len, value_len;
    struct held_append *next;
};
/* At most this many appends wait for the creation (each an InitProducerId in flight). */
#define HELD_APPENDS_MAX 4096


struct txn_store {
    struct broker *b;
    struct txn_coordinator *tc;
    int32_t nparts;             /* the coordinator's partition count */
    uint64_t abort_timer;
    uint64_t expire_timer;
    /* A cluster only: */
    enum store_state *state;    /* per partition */
    int32_t *epoch;             /* per LOADING partition: its leader epoch */
    uint64_t load_timer;
    uint64_t retry_timer;       /* a failed marker round's resend, 0 when none is due */
    bool topic_requested;       /* a creation of __transaction_state is in flight */
    struct append_wait *waits;  /* parked appends */
    /* One node: __transaction_state being created in slices, and the appends that came
     * meanwhile (written, in order, once it exists). */
    bool creating;
    struct kuuid create_id;
    int64_t create_began;       /* mono ms */
    uint64_t create_timer;
    struct held_append *held, **held_tail;
    int nheld;
    struct marker_round *local_waits; /* rounds whose local markers wait for their ISR */
    struct peer_conns peers;    /* the markers' connections (client made on the first) */
};

static int64_t store_now_ms(void *ctx)
{
    (void)ctx;
    return now_ms();
}

/* __transaction_state's own configs, as Kafka's TransactionLog: compacted, uncompressed. */
#define TXN_TOPIC_CONFIGS 3
static void topic_configs(struct topic_config_kv cfg[TXN_TOPIC_CONFIGS])
{
    memset(cfg, 0, sizeof(*cfg) * TXN_TOPIC_CONFIGS);
    snprintf(cfg[0].key, sizeof(cfg[0].key), "cleanup.policy");
    snprintf(cfg[0].value, sizeof(cfg[0].value), "compact");
    snprintf(cfg[1].key, sizeof(cfg[1].key), "compression.type");
    snprintf(cfg[1].value, sizeof(cfg[1].value), "uncompressed");
    snprintf(cfg[2].key, sizeof(cfg[2].key), "segment.bytes");
    snprintf(cfg[2].value, sizeof(cfg[2].value), "%d", TXN_TOPIC_SEGMENT_BYTES);
}

static void create_fire(struct broker *b, void *arg);

/* One node: __transaction_state is created on first use as Kafka does (a broker whose producers
 * never used a transactional id lists no such topic), its partitions opened over several loop
 * turns (topic_create_step, BROKER_TURN_US each) so that the loop keeps answering meanwhile.
 * KERR_NONE once it exists, else COORDINATOR_NOT_AVAILABLE (being created, or it cannot be). */
static int topic_ready(struct txn_store *s)
{
    struct broker *b = s->b;
    GREGOR_ASSERT(b->cluster == NULL);
    struct topic *t = topic_find(b, TXN_STATE_TOPIC);
    if (t != NULL)
        return t->creating == 0 ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
    GREGOR_ASSERT(!s->creating);
    if (b->stopping)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    struct topic_config_kv cfg[TXN_TOPIC_CONFIGS];
    topic_configs(cfg);
    char msg[256] = "";
    int e = topic_create_begin(b, TXN_STATE_TOPIC, s->nparts, cfg, TXN_TOPIC_CONFIGS, &t, msg,
                               sizeof(msg));
    if (e != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_ERROR, STORE_WHO, "cannot create %s: %s (%s)", TXN_STATE_TOPIC,
                    kerr_name(e), msg);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    s->create_timer = broker_timer_add(b, mono_ms(), create_fire, s);
    if (s->create_timer == 0) {
        topic_create_abandon(b, t); /* no timer to go on with (out of memory): next time */
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    s->creating = true;
    s->create_id = t->id;
    s->create_began = mono_ms();
    LOG_INFO(STORE_WHO, "Creating %s with %d partitions", TXN_STATE_TOPIC, s->nparts);
    return KERR_COORDINATOR_NOT_AVAILABLE;
}

/* One node: the partition's log, or NULL while __transaction_state is not there yet. */
static struct partition *log_partition(struct txn_store *s, int32_t index)
{
    if (topic_ready(s) != KERR_NONE)
        return NULL;
    struct topic *t = topic_find(s->b, TXN_STATE_TOPIC);
    if (index < 0 || index >= t->npartitions)
        return NULL;
    return t->partitions[index];
}

/* One record as one batch: the coordinator writes one record per change. */
static int append_record(struct txn_store *s, struct partition *p, const struct txn_record *rec)
{
    size_t max = (size_t)p->topic->cfg.max_message_bytes;
    size_t need = (size_t)rec->key_len + (rec->value_len > 0 ? (size_t)rec->value_len : 0) + 128;
    if (max < need)
        return KERR_MESSAGE_TOO_LARGE;
    struct batch_builder bb;
    batch_builder_init(&bb, max);
    int64_t now = now_ms();
    int e = batch_builder_add(&bb, now, rec->key, rec->key_len, rec->value, rec->value_len,
                              NULL, 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (e == KERR_NONE)
        e = batch_builder_finish(&bb, BATCH_COMPRESSION_NONE, &buf, &len);
    batch_builder_free(&bb);
    if (e != KERR_NONE)
        return e;
    struct log_append_info info;
    bool dup;
    e = partition_append_as_leader(p, buf, len, now, &info, &dup);
    free(buf);
    if (e == KERR_NONE)
        broker_mark_dirty(s->b, p);
    return e;
}

static bool append_replicated(struct waiter *w, enum waiter_event ev);

/* The local log of a partition this broker leads in a cluster, or NULL. */
static struct partition *led_partition(struct txn_store *s, int32_t partition)
{
    struct topic *t = topic_find(s->b, TXN_STATE_TOPIC);
    if (t == NULL || t->creating != 0 || partition >= t->npartitions ||
        s->state[partition] != STORE_OWNED)
        return NULL;
    struct partition *p = t->partitions[partition];
    return p->repl.leading ? p : NULL;
}

/* A cluster: the append must reach every ISR member (Kafka appends with acks=-1), so its end
 * waits for the high watermark; min.insync.replicas refuses it before, as a produce. */
static int cluster_append(struct txn_store *s, int32_t partition, const struct txn_record *rec,
                          struct txn_op *op)
{
    struct partition *p = led_partition(s, partition);
    if (p == NULL)
        return KERR_NOT_LEADER_OR_FOLLOWER;
    if (p->repl.nisr < replica_min_insync(s->b, p->topic))
        return KERR_NOT_ENOUGH_REPLICAS;
    int e = append_record(s, p, rec);
    if (e != KERR_NONE)
        return e;
    int64_t end = partition_log_end(p);
    int32_t leadership = partition_leadership(p);
    if (leadership < 0 || partition_high_watermark(p) >= end)
        return KERR_NONE;
    if (s->b->stopping)
        return KERR_NOT_LEADER_OR_FOLLOWER; /* no follower's fetch will come now */
    struct append_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return KERR_REQUEST_TIMED_OUT;
    *w = (struct append_wait){.s = s, .partition = partition, .leadership = leadership,
                              .end = end, .op = op, .next = s->waits};
    if (s->waits != NULL)
        s->waits->prev = w;
    s->waits = w;
    waiter_park(&s->b->waiters, &w->w, WAITER_ON_APPEND, mono_ms() + APPEND_WAIT_MAX_MS,
                append_replicated, w);
    return -1; /* pending */
}

/* One node, __transaction_state being created: the append waits for it; false when it cannot
 * (bound, memory). */
static bool hold_append(struct txn_store *s, int32_t partition, const struct txn_record *rec,
                        struct txn_op *op)
{
    if (s->nheld >= HELD_APPENDS_MAX)
        return false;
    struct held_append *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return false;
    *h = (struct held_append){.partition = partition, .op = op, .key_len = rec->key_len,
                              .value_len = rec->value_len};
    h->key = malloc((size_t)rec->key_len + 1);
    if (rec->value != NULL && rec->value_len >= 0)
        h->value = malloc((size_t)rec->value_len + 1);
    if (h->key == NULL || (rec->value != NULL && rec->value_len >= 0 && h->value == NULL)) {
        free(h->key);
        free(h->value);
        free(h);
        return false;
    }
    memcpy(h->key, rec->key, (size_t)rec->key_len);
    if (h->value != NULL)
        memcpy(h->value, rec->value, (size_t)rec->value_len);
    if (s->held_tail == NULL)
        s->held_tail = &s->held;
    *s->held_tail = h;
    s->held_tail = &h->next;
    s->nheld++;
    return true;
}

/* The creation ended (err NONE: the topic exists): the held appends are written in the order
 * they came, or answered err. */
static void release_held(struct txn_store *s, int err)
{
    struct held_append *list = s->held;
    s->held = NULL;
    s->held_tail = &s->held;
    s->nheld = 0;
    while (list != NULL) {
        struct held_append *h = list;
        list = h->next;
        int e = err;
        if (e == KERR_NONE) {
            struct partition *p = log_partition(s, h->partition);
            struct txn_record rec = {h->key, h->key_len, h->value,
                                     h->value != NULL ? h->value_len : -1};
            e = p != NULL ? append_record(s, p, &rec) : KERR_COORDINATOR_NOT_AVAILABLE;
        }
        struct txn_op *op = h->op;
        free(h->key);
        free(h->value);
        free(h);
        txn_append_done(s->tc, op, (int16_t)e); /* may append again: the topic exists now */
    }
}

/* One step of the creation per loop turn; the held appends go once it is done. */
static void create_fire(struct broker *b, void *arg)
{
    struct txn_store *s = arg;
    s->create_timer = 0;
    GREGOR_ASSERT(s->creating);
    struct topic *t = topic_find(b, TXN_STATE_TOPIC);
    char msg[256] = "";
    bool done = false;
    int e = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (t != NULL && t->creating != 0 && memcmp(&t->id, &s->create_id, sizeof(t->id)) == 0)
        e = topic_create_step(b, t, mono_us() + BROKER_TURN_US, &done, msg, sizeof(msg));
    if (e == KERR_NONE && !done) {
        s->create_timer = broker_timer_add(b, mono_ms(), create_fire, s);
        if (s->create_timer != 0)
            return;
        topic_create_abandon(b, t); /* out of memory: created again on next use */
        e = KERR_COORDINATOR_NOT_AVAILABLE;
        snprintf(msg, sizeof(msg), "no timer for the next step");
    }
    s->creating = false;
    if (e == KERR_NONE)
        LOG_INFO(STORE_WHO, "Created %s with %d partitions in %lld ms", TXN_STATE_TOPIC,
                 s->nparts, (long long)(mono_ms() - s->create_began));
    else
        LOG_LIMITED(LOG_LEVEL_ERROR, STORE_WHO, "cannot create %s: %s (%s)", TXN_STATE_TOPIC,
                    kerr_name(e), msg);
    release_held(s, e == KERR_NONE ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE);
}

/* One node: the append is complete once in the log (the group coordinator's records are
 * answered the same way); a cluster's waits for its replication. */
static void store_append(void *ctx, int32_t partition, const struct txn_record *rec,
                         struct txn_op *op)
{
    struct txn_store *s = ctx;
    GREGOR_ASSERT(partition >= 0 && partition < s->nparts);
    int e;
    if (s->b->cluster != NULL) {
        e = cluster_append(s, partition, rec, op);
        if (e < 0)
            return;
    } else {
        struct partition *p = log_partition(s, partition);
        if (p == NULL && s->creating && hold_append(s, partition, rec, op))
            return;
        e = p != NULL ? append_record(s, p, rec) : KERR_COORDINATOR_NOT_AVAILABLE;
    }
    if (e != KERR_NONE)
        LOG_WARN(STORE_WHO, "append to %s-%d failed: %s", TXN_STATE_TOPIC, partition,
                 kerr_name(e));
    txn_append_done(s->tc, op, (int16_t)e);
}

/* A waiting append's outcome once settled: NONE when the high watermark passed it,
 * NOT_LEADER_OR_FOLLOWER when this broker stopped leading the partition (or coordinating it). */
static bool append_settled(struct append_wait *w, int *error)
{
    struct partition *p = led_partition(w->s, w->partition);
    if (p == NULL) {
        *error = KERR_NOT_LEADER_OR_FOLLOWER;
        return true;
    }
    return partition_acks_all_settled(p, w->leadership, w->end, error);
}

static void append_unlink(struct append_wait *w)
{
    struct txn_store *s = w->s;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        s->waits = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
}

/* The waiter of an append: met when settled; answered (txn_append_done) when fired, or
 * REQUEST_TIMED_OUT at its deadline. */
static bool append_replicated(struct waiter *wt, enum waiter_event ev)
{
    struct append_wait *w = wt->arg;
    int e = KERR_NONE;
    bool settled = append_settled(w, &e);
    if (ev == WAITER_CHECK)
        return settled;
    if (!settled)
        e = KERR_REQUEST_TIMED_OUT;
    if (e != KERR_NONE)
        LOG_WARN(STORE_WHO, "append to %s-%d (ending at offset %" PRId64 ") not replicated: %s",
                 TXN_STATE_TOPIC, w->partition, w->end, kerr_name(e));
    struct txn_store *s = w->s;
    struct txn_op *op = w->op;
    append_unlink(w);
    free(w);
    txn_append_done(s->tc, op, (int16_t)e); /* may park new appends */
    return true;
}

/* One partition's marker, written as WriteTxnMarkers writes it (*pending: it waits for its
 * ISR, *wait says what for); a partition that is gone (topic deleted, fewer partitions) needs
 * none, as Kafka's marker channel drops it. */
static int write_marker(struct txn_store *s, const struct txn_marker_request *req,
                        const struct txn_partition *tp, struct txn_marker_replication *wait,
                        bool *pending)
{
    *pending = false;
    struct topic *t = topic_find(s->b, tp->topic);
    if (t == NULL || tp->partition < 0 || tp->partition >= t->npartitions)
        return KERR_NONE;
    int e = txn_marker_append(s->b, t, tp->partition, req->producer_id, req->producer_epoch,
                              req->coordinator_epoch, req->commit, wait, pending);
    if (e == KERR_NONE)
        return KERR_NONE;
    LOG_WARN(STORE_WHO, "%s marker of transactional id %s (producer %" PRId64 " epoch %d) "
             "to %s-%d failed: %s", req->commit ? "COMMIT" : "ABORT", req->transactional_id,
             req->producer_id, req->producer_epoch, tp->topic, tp->partition, kerr_name(e));
    /* A newer epoch or coordinator already ended it there: nothing left to write (Kafka's
     * TransactionMarkerRequestCompletionHandler drops these partitions too). */
    if (e == KERR_INVALID_PRODUCER_EPOCH || e == KERR_TRANSACTION_COORDINATOR_FENCED)
        return KERR_NONE;
    return e;
}

/* One round of markers: the local ones written (those led with replication then wait for
 * their ISR), the remote ones in flight (one WriteTxnMarkers per leader); the coordinator hears
 * of it once the last answer came. */
struct marker_round {
    struct txn_store *s;
    struct txn_op *op;
    int left;                   /* requests in flight + the local wait, + 1 while being sent */
    int16_t first_error;
    /* The local markers waiting for their ISR (a cluster only): */
    struct waiter w;
    int nlocal;
    struct txn_marker_replication *local;   /* one per partition of the request */
    struct marker_round *prev, *next;       /* in s->local_waits while parked */
};

/* One WriteTxnMarkers to one leader: the request's memory, freed with its answer. */
struct marker_send {
    struct marker_round *round;
    struct write_txn_markers_request req;
    struct write_txn_markers_request_writable_txn_marker marker;
    struct write_txn_markers_request_writable_txn_marker_topic *topics; /* one per partition */
    int32_t *indexes;
    char *names;                /* the topics' names, NUL-separated */
};

static void round_note(struct marker_round *r, int err)
{
    if (err != KERR_NONE && r->first_error == KERR_NONE)
        r->first_error = (int16_t)err;
}

/* The resend of the failed rounds: the timeout check's pass, which resends the markers of
 * every transaction whose round failed (and completes those whose completion failed). */
static void retry_fire(struct broker *b, void *arg)
{
    (void)b;
    struct txn_store *s = arg;
    s->retry_timer = 0;
    txn_abort_timed_out(s->tc);
}

static void retry_soon(struct txn_store *s)
{
    if (s->retry_timer == 0 && !s->b->stopping)
        s->retry_timer = broker_timer_add(s->b, mono_ms() + MARKER_RETRY_MS, retry_fire, s);
}

static void round_end(struct marker_round *r, int err)
{
    if (err != KERR_NONE && r->first_error == KERR_NONE)
        r->first_error = (int16_t)err;
    if (--r->left > 0)
        return;
    struct txn_coordinator *tc = r->s->tc;
    struct txn_op *op = r->op;
    int16_t e = r->first_error;
    GREGOR_ASSERT(r->w.set == NULL); /* not parked */
    if (e != KERR_NONE)
        retry_soon(r->s);
    free(r->local);
    free(r);
    txn_markers_done(tc, op, e);
}

/* Kafka's TransactionMarkerRequestCompletionHandler: a partition another epoch or coordinator
 * already ended, or that is gone, needs nothing more; the others are retried. */
static int marker_error(int e)
{
    if (e == KERR_INVALID_PRODUCER_EPOCH || e == KERR_TRANSACTION_COORDINATOR_FENCED ||
        e == KERR_UNKNOWN_TOPIC_OR_PARTITION)
        return KERR_NONE;
    return e;
}

static void marker_answered(void *arg, const struct client_response *resp)
{
    struct marker_send *m = arg;
    int err = resp->error;
    const struct write_txn_markers_response *body = resp->body;
    for (int32_t i = 0; err == KERR_NONE && body != NULL && i < body->n_markers; i++)
        for (int32_t t = 0; t < body->markers[i].n_topics; t++)
            for (int32_t j = 0; j < body->markers[i].topics[t].n_partitions; j++) {
                int e = marker_error(body->markers[i].topics[t].partitions[j].error_code);
                if (e != KERR_NONE && err == KERR_NONE)
                    err = e;
            }
    if (err != KERR_NONE)
        LOG_WARN(STORE_WHO, "WriteTxnMarkers to broker %s failed: %s", m->names,
                 resp->reason != NULL ? resp->reason : kerr_name(err));
    struct marker_round *r = m->round;
    free(m->topics);
    free(m->indexes);
    free(m->names);
    free(m);
    round_end(r, err);
}

/* The WriteTxnMarkers of the partitions parts[] led by broker `leader`; KERR_NONE when sent
 * (round_end comes with its answer). */
static int send_remote(struct txn_store *s, struct marker_round *r,
                       const struct txn_marker_request *req, const int *parts, int n,
                       int32_t leader)
{
    struct client_conn *c = peer_conns_get(&s->peers, leader);
    struct marker_send *m = calloc(1, sizeof(*m));
    size_t names_len = 32;
    for (int i = 0; i < n; i++)
        names_len += strlen(req->partitions[parts[i]].topic) + 1;
    if (m != NULL) {
        m->topics = calloc((size_t)n, sizeof(*m->topics));
        m->indexes = calloc((size_t)n, sizeof(*m->indexes));
        m->names = malloc(names_len);
    }
    if (c == NULL || m == NULL || m->topics == NULL || m->indexes == NULL || m->names == NULL) {
        if (m != NULL) {
            free(m->topics);
            free(m->indexes);
            free(m->names);
        }
        free(m);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    m->round = r;
    size_t pos = (size_t)snprintf(m->names, names_len, "%d", leader) + 1;
    for (int i = 0; i < n; i++) {
        const struct txn_partition *tp = &req->partitions[parts[i]];
        size_t len = strlen(tp->topic);
        memcpy(m->names + pos, tp->topic, len + 1);
        m->indexes[i] = tp->partition;
        m->topics[i] = (struct write_txn_markers_request_writable_txn_marker_topic){
            {m->names + pos, (int32_t)len}, &m->indexes[i], 1};
        pos += len + 1;
    }
    m->marker = (struct write_txn_markers_request_writable_txn_marker){
        .producer_id = req->producer_id,
        .producer_epoch = req->producer_epoch,
        .transaction_result = req->commit,
        .topics = m->topics,
        .n_topics = n,
        .coordinator_epoch = req->coordinator_epoch,
    };
    m->req = (struct write_txn_markers_request){&m->marker, 1};
    struct client_request cr = {.api_key = PROTO_API_WRITE_TXN_MARKERS, .min_version = 1,
                                .max_version = 1, .body = &m->req};
    r->left++;
    if (client_send(c, &cr, marker_answered, m) != 0) {
        r->left--;
        free(m->topics);
        free(m->indexes);
        free(m->names);
        free(m);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    return KERR_NONE;
}

/* The leader of a partition in ZooKeeper's view: -1 none, -2 gone (no such topic or partition:
 * no marker needed). */
static int32_t leader_of(struct txn_store *s, const struct txn_partition *tp)
{
    const struct cluster_topic *ct = cluster_topic_find(s->b->cluster, tp->topic);
    if (ct == NULL || ct->gone || (ct->read && tp->partition >= ct->npartitions))
        return -2;
    if (!ct->read || tp->partition < 0)
        return -1;
    return ct->parts[tp->partition].leader;
}

/* The round's local markers still waiting for their ISR: the settled ones leave the list, the
 * first error noted; true once none is left. */
static bool local_settle(struct marker_round *r)
{
    int k = 0;
    for (int i = 0; i < r->nlocal; i++) {
        int e;
        if (!txn_marker_replicated(r->s->b, &r->local[i], &e)) {
            r->local[k++] = r->local[i];
            continue;
        }
        if (e != KERR_NONE)
            LOG_WARN(STORE_WHO, "marker to %s-%d (ending at offset %" PRId64 ") not "
                     "replicated: %s", r->local[i].topic, r->local[i].partition,
                     r->local[i].end, kerr_name(e));
        round_note(r, e);
    }
    r->nlocal = k;
    return k == 0;
}

static void local_unlink(struct marker_round *r)
{
    struct txn_store *s = r->s;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        s->local_waits = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* The local markers' waiter: met once all are settled; at its deadline the ones left are
 * REQUEST_TIMED_OUT (the round fails and is resent, as Kafka's marker channel retries). */
static bool local_replicated(struct waiter *w, enum waiter_event ev)
{
    struct marker_round *r = w->arg;
    bool settled = local_settle(r);
    if (ev == WAITER_CHECK)
        return settled;
    if (!settled) {
        LOG_WARN(STORE_WHO, "%d local markers not replicated within %d ms", r->nlocal,
                 TXN_MARKER_REPLICATION_TIMEOUT_MS);
        round_note(r, KERR_REQUEST_TIMED_OUT);
        r->nlocal = 0;
    }
    local_unlink(r);
    round_end(r, KERR_NONE); /* the local wait's count */
    return true;
}

/* The local markers written: those that wait for their ISR park as one more count of the
 * round. */
static void local_wait(struct txn_store *s, struct marker_round *r)
{
    if (r->nlocal == 0 || local_settle(r))
        return;
    if (s->b->stopping) {
        round_note(r, KERR_NOT_LEADER_OR_FOLLOWER);
        r->nlocal = 0;
        return;
    }
    r->left++;
    r->next = s->local_waits;
    if (s->local_waits != NULL)
        s->local_waits->prev = r;
    s->local_waits = r;
    waiter_park(&s->b->waiters, &r->w, WAITER_ON_APPEND,
                mono_ms() + TXN_MARKER_REPLICATION_TIMEOUT_MS, local_replicated, r);
}

/* A cluster: the local partitions' markers written here, the others' sent to their leaders,
 * grouped per leader. */
static void cluster_markers(struct txn_store *s, const struct txn_marker_request *req,
                            struct txn_op *op)
{
    struct marker_round *r = calloc(1, sizeof(*r));
    int *group = calloc((size_t)req->n_partitions + 1, sizeof(*group));
    int32_t *leaders = calloc((size_t)req->n_partitions + 1, sizeof(*leaders));
    struct txn_marker_replication *local = calloc((size_t)req->n_partitions + 1,
                                                  sizeof(*local));
    if (r == NULL || group == NULL || leaders == NULL || local == NULL) {
        free(r);
        free(group);
        free(leaders);
        free(local);
        txn_markers_done(s->tc, op, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    *r = (struct marker_round){.s = s, .op = op, .left = 1, .first_error = KERR_NONE,
                               .local = local};
    for (int i = 0; i < req->n_partitions; i++)
        leaders[i] = leader_of(s, &req->partitions[i]);
    for (int i = 0; i < req->n_partitions; i++) {
        int32_t leader = leaders[i];
        if (leader == -2)
            continue;
        if (leader == -1) {
            round_note(r, KERR_NOT_LEADER_OR_FOLLOWER);
            continue;
        }
        if (leader == s->b->cfg.node_id) {
            const char *topic = req->partitions[i].topic;
            struct kstr name = {(char *)topic, (int32_t)strlen(topic)};
            bool pending = false;
            int e = broker_leader_check(s->b, name, req->partitions[i].partition) == KERR_NONE
                        ? write_marker(s, req, &req->partitions[i], &r->local[r->nlocal],
                                       &pending)
                        : KERR_NOT_LEADER_OR_FOLLOWER;
            if (pending)
                r->nlocal++;
            round_note(r, e);
            continue;
        }
        int n = 0;
        for (int j = i; j < req->n_partitions; j++)
            if (leaders[j] == leader) {
                group[n++] = j;
                leaders[j] = -2;
            }
        round_note(r, send_remote(s, r, req, group, n, leader));
    }
    free(group);
    free(leaders);
    local_wait(s, r);
    round_end(r, KERR_NONE); /* the sending's own count */
}

static void store_send_markers(void *ctx, const struct txn_marker_request *req,
                               struct txn_op *op)
{
    struct txn_store *s = ctx;
    if (s->b->cluster != NULL) {
        cluster_markers(s, req, op);
        return;
    }
    int first = KERR_NONE;
    for (int i = 0; i < req->n_partitions; i++) {
        struct txn_marker_replication unused;
        bool pending;
        int e = write_marker(s, req, &req->partitions[i], &unused, &pending);
        GREGOR_ASSERT(!pending); /* one node: no followers to wait for */
        if (first == KERR_NONE)
            first = e;
    }
    if (first != KERR_NONE)
        retry_soon(s);
    txn_markers_done(s->tc, op, (int16_t)first);
}

static int16_t store_next_producer_id(void *ctx, int64_t *out)
{
    struct txn_store *s = ctx;
    return (int16_t)producer_ids_next(s->b, out);
}

/* ---- replay ---- */

static void replay_batches(struct txn_store *s, int32_t index, const uint8_t *buf, size_t len,
                           int64_t from, int64_t *next)
{
    struct batch_walk walk = {.buf = buf, .len = len};
    struct batch_header h;
    const uint8_t *batch;
    while (batch_walk_next(&walk, from, &h, &batch)) {
        size_t total = (size_t)batch_total_size(&h);
        *next = batch_last_offset(&h) + 1;
        if (h.magic != BATCH_MAGIC_V2 || (h.attributes & BATCH_ATTR_CONTROL))
            continue;
        struct batch_record_iter it;
        int e = batch_records_open(&it, batch, total, REPLAY_MAX_DECOMPRESSED);
        if (e != KERR_NONE) {
            LOG_WARN(STORE_WHO, "%s-%d: skipping batch at offset %lld: %s", TXN_STATE_TOPIC,
                     index, (long long)h.base_offset, kerr_name(e));
            continue;
        }
        struct batch_record rec;
        while ((e = batch_records_next(&it, &rec)) == 1) {
            if (rec.offset < from || rec.key == NULL)
                continue;
            if (txn_replay_record(s->tc, index, rec.key, rec.key_len, rec.value,
                                  rec.value_len) < 0)
                LOG_WARN(STORE_WHO, "%s-%d: skipping undecodable record at offset %lld",
                         TXN_STATE_TOPIC, index, (long long)rec.offset);
        }
        if (e < 0)
            LOG_WARN(STORE_WHO, "%s-%d: corrupt records in batch at offset %lld",
                     TXN_STATE_TOPIC, index, (long long)h.base_offset);
        batch_records_close(&it);
    }
}

/* Replays the partition from its log start to its end. A read error stops there, logged (what
 * was read stays, as the group store's replay). */
static void replay_partition(struct txn_store *s, struct partition *p)
{
    int64_t off = partition_log_start(p);
    while (off < partition_log_end(p)) {
        struct log_slice sl;
        int e = partition_read_log(p, off, REPLAY_CHUNK_BYTES, &sl);
        if (e != KERR_NONE) {
            LOG_ERROR(STORE_WHO, "%s-%d: cannot read at offset %lld: %s", TXN_STATE_TOPIC,
                      p->index, (long long)off, kerr_name(e));
            return;
        }
        uint8_t *buf = sl.len > 0 ? malloc(sl.len) : NULL;
        ssize_t got = buf != NULL ? fio_pread_full(sl.fd, buf, sl.len, sl.position) : -1;
        fio_close(sl.fd);
        if (got < 0) {
            LOG_ERROR(STORE_WHO, "%s-%d: cannot read %zu bytes at offset %lld",
                      TXN_STATE_TOPIC, p->index, sl.len, (long long)off);
            free(buf);
            return;
        }
        int64_t next = off;
        replay_batches(s, p->index, buf, (size_t)got, off, &next);
        free(buf);
        if (next <= off) {
            LOG_WARN(STORE_WHO, "%s-%d: no whole batch at offset %lld; replay stops there",
                     TXN_STATE_TOPIC, p->index, (long long)off);
            return;
        }
        off = next;
    }
}

/* One node: every partition is this broker's, replayed before the listener opens; the
 * transactions left prepared get their markers and complete. */
static void load_all(struct txn_store *s)
{
    int64_t t0 = mono_ms();
    struct topic *t = topic_find(s->b, TXN_STATE_TOPIC);
    for (int32_t i = 0; i < s->nparts; i++) {
        struct partition *p = t != NULL && i < t->npartitions ? t->partitions[i] : NULL;
        txn_load_begin(s->tc, i, p != NULL ? p->leader_epoch : 0);
        if (p != NULL)
            replay_partition(s, p);
    }
    int completing = 0;
    for (int32_t i = 0; i < s->nparts; i++)
        completing += txn_load_done(s->tc, i);
    LOG_INFO(STORE_WHO, "Finished loading transaction metadata from %s in %lld ms (%d "
             "transactions completing)", TXN_STATE_TOPIC, (long long)(mono_ms() - t0),
             completing);
}

/* ---- periodic work ---- */

static void abort_fire(struct broker *b, void *arg)
{
    struct txn_store *s = arg;
    s->abort_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_abort_interval_ms,
                                      abort_fire, s);
    int n = txn_abort_timed_out(s->tc);
    if (n > 0)
        LOG_INFO(STORE_WHO, "Aborting %d timed-out or unfinished transactions", n);
}

static void expire_fire(struct broker *b, void *arg)
{
    struct txn_store *s = arg;
    s->expire_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_expire_interval_ms,
                                       expire_fire, s);
    int n = txn_expire_ids(s->tc);
    if (n > 0)
        LOG_INFO(STORE_WHO, "Expiring %d transactional ids idle for more than %d ms", n,
                 b->cfg.transactional_id_expiration_ms);
}

/* ---- a cluster: the partitions this broker leads ---- */

static void load_fire(struct broker *b, void *arg);

static void load_schedule(struct txn_store *s, int64_t delay_ms)
{
    if (s->load_timer == 0)
        s->load_timer = broker_timer_add(s->b, mono_ms() + delay_ms, load_fire, s);
}

/* Loads the partitions this broker now leads once their local logs are open and leading: a
 * partition's replay, then its prepared transactions' markers (Kafka's loadTransactionsForTxnTopicPartition). */
static void load_fire(struct broker *b, void *arg)
{
    struct txn_store *s = arg;
    s->load_timer = 0;
    struct topic *t = topic_find(b, TXN_STATE_TOPIC);
    bool ready = t != NULL && t->creating == 0 && t->growing == 0 && t->npartitions == s->nparts;
    bool waiting = false;
    for (int32_t i = 0; i < s->nparts; i++) {
        if (s->state[i] != STORE_LOADING)
            continue;
        struct partition *p = ready ? t->partitions[i] : NULL;
        if (p == NULL || !p->repl.leading) {
            waiting = true; /* broker_cluster_sync is still opening it here */
            continue;
        }
        int64_t t0 = mono_ms();
        txn_load_begin(s->tc, i, s->epoch[i]);
        replay_partition(s, p);
        s->state[i] = STORE_OWNED;
        int completing = txn_load_done(s->tc, i);
        LOG_INFO(STORE_WHO, "Finished loading transaction metadata from %s-%d (leader epoch %d) "
                 "in %lld ms (%d transactions completing)", TXN_STATE_TOPIC, i, s->epoch[i],
                 (long long)(mono_ms() - t0), completing);
    }
    if (waiting)
        load_schedule(s, LOAD_WAIT_MS);
}

void txn_store_cluster_sync(struct broker *b)
{
    struct txn_store *s = b->txns;
    if (s == NULL || b->cluster == NULL)
        return;
    /* A broker gone from ZooKeeper's live brokers: its marker connection is closed, so the
     * markers in flight to it fail now (and are resent to the partitions' new leaders) rather
     * than at the request timeout, 30 s on. */
    peer_conns_prune(&s->peers);
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, TXN_STATE_TOPIC);
    if (ct != NULL && ct->read && ct->npartitions != s->nparts) {
        LOG_LIMITED(LOG_LEVEL_ERROR, STORE_WHO, "%s has %d partitions in ZooKeeper but "
                    "transaction.state.log.num.partitions=%d: this broker coordinates none",
                    TXN_STATE_TOPIC, ct->npartitions, s->nparts);
        ct = NULL;
    }
    for (int32_t p = 0; p < s->nparts; p++) {
        bool leads = ct != NULL && ct->read && !ct->gone && ct->parts[p].leader == b->cfg.node_id;
        if (leads && s->state[p] == STORE_NOT_OWNED) {
            s->state[p] = STORE_LOADING;
            s->epoch[p] = ct->parts[p].leader_epoch;
            LOG_INFO(STORE_WHO, "Scheduling loading of transaction metadata from %s-%d (leader "
                     "epoch %d)", TXN_STATE_TOPIC, p, s->epoch[p]);
            load_schedule(s, 0);
        } else if (!leads && s->state[p] != STORE_NOT_OWNED) {
            bool owned = s->state[p] == STORE_OWNED;
            s->state[p] = STORE_NOT_OWNED;
            int n = owned ? txn_unload_partition(s->tc, p) : 0;
            /* Its appends waiting for their replication end (NOT_LEADER_OR_FOLLOWER). */
            b->appended = true;
            loop_wake_soon(b->loop);
            LOG_INFO(STORE_WHO, "Unloaded %d transactional ids of %s-%d (no longer its leader)", n,
                     TXN_STATE_TOPIC, p);
        }
    }
}

static void topic_created(void *arg, int kerr, const char *msg)
{
    struct broker *b = arg;
    if (b->txns != NULL)
        b->txns->topic_requested = false;
    if (kerr != KERR_NONE && kerr != KERR_TOPIC_ALREADY_EXISTS)
        LOG_LIMITED(LOG_LEVEL_WARN, STORE_WHO, "cannot create %s: %s (%s)", TXN_STATE_TOPIC,
                    kerr_name(kerr), msg ? msg : "");
}

/* Kafka's auto-creation of the internal topic: transaction.state.log.num.partitions at
 * transaction.state.log.replication.factor (at most the live brokers), min.insync.replicas
 * transaction.state.log.min.isr; one creation in flight at a time. */
static void request_topic(struct txn_store *s)
{
    struct broker *b = s->b;
    if (s->topic_requested)
        return;
    const struct cluster_broker *live;
    int nlive = cluster_brokers(b->cluster, &live);
    int16_t rf = (int16_t)(b->cfg.transaction_state_log_replication_factor < nlive
                               ? b->cfg.transaction_state_log_replication_factor : nlive);
    if (rf < 1)
        return;
    char isr[16], seg[24];
    snprintf(isr, sizeof(isr), "%d", b->cfg.transaction_state_log_min_isr);
    snprintf(seg, sizeof(seg), "%d", TXN_TOPIC_SEGMENT_BYTES);
    const char *keys[] = {"cleanup.policy", "compression.type", "min.insync.replicas",
                          "segment.bytes"};
    const char *values[] = {"compact", "uncompressed", isr, seg};
    char cjson[512];
    int cn = znode_config_json(cjson, sizeof(cjson), keys, values, 4);
    GREGOR_ASSERT(cn > 0);
    uint8_t id[16];
    char msg[512] = "";
    int e = cluster_create_topic(b->cluster, TXN_STATE_TOPIC, s->nparts, rf, NULL, false, id,
                                 cjson, topic_created, b, msg, sizeof(msg));
    if (e == KERR_NONE) {
        s->topic_requested = true;
        LOG_INFO(STORE_WHO, "Creating topic %s with %d partitions and replication factor %d",
                 TXN_STATE_TOPIC, s->nparts, rf);
    } else {
        LOG_LIMITED(LOG_LEVEL_WARN, STORE_WHO, "cannot create %s: %s (%s)", TXN_STATE_TOPIC,
                    kerr_name(e), msg);
    }
}

int16_t txn_store_topic_ready(struct broker *b)
{
    struct txn_store *s = b->txns;
    if (s == NULL || b->cluster != NULL)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    return (int16_t)topic_ready(s);
}

int16_t txn_store_find(struct broker *b, const char *transactional_id, struct cluster_broker *out)
{
    struct txn_store *s = b->txns;
    if (s == NULL || b->cluster == NULL)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, TXN_STATE_TOPIC);
    if (ct == NULL) {
        request_topic(s);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    if (!ct->read || ct->gone || ct->npartitions != s->nparts)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    int32_t p = txn_partition_for(transactional_id, s->nparts);
    int32_t leader = ct->parts[p].leader;
    const struct cluster_broker *live;
    int n = cluster_brokers(b->cluster, &live);
    for (int i = 0; leader >= 0 && i < n; i++)
        if (live[i].id == leader) {
            *out = live[i];
            return KERR_NONE;
        }
    return KERR_COORDINATOR_NOT_AVAILABLE;
}

bool txn_store_partition_known(struct broker *b, const char *topic, int32_t partition)
{
    if (partition < 0)
        return false;
    if (b->cluster != NULL) {
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, topic);
        return ct != NULL && ct->read && !ct->gone && partition < ct->npartitions;
    }
    struct topic *t = topic_find(b, topic);
    return t != NULL && t->creating == 0 && partition < t->npartitions;
}

/* ---- life ---- */

struct txn_store *txn_store_create(struct broker *b)
{
    int32_t nparts = b->cfg.transaction_state_log_num_partitions;
    struct topic *t = topic_find(b, TXN_STATE_TOPIC);
    if (b->cluster == NULL && t != NULL && t->npartitions > 0 && t->npartitions != nparts) {
        LOG_WARN(STORE_WHO, "%s has %d partitions but transaction.state.log.num.partitions=%d: "
                 "using %d (the partition count of an existing topic decides where "
                 "transactional ids live)", TXN_STATE_TOPIC, t->npartitions, nparts,
                 t->npartitions);
        nparts = t->npartitions;
    }
    struct txn_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->b = b;
    peer_conns_init(&s->peers, b, "gregor-txn-markers", STORE_WHO, "marker", MARKER_PEERS_MAX);
    s->nparts = nparts;
    s->state = calloc((size_t)nparts + 1, sizeof(*s->state));
    s->epoch = calloc((size_t)nparts + 1, sizeof(*s->epoch));
    if (s->state == NULL || s->epoch == NULL) {
        free(s->state);
        free(s->epoch);
        free(s);
        return NULL;
    }
    struct txn_config cfg = {
        .num_partitions = nparts,
        .max_timeout_ms = b->cfg.transaction_max_timeout_ms,
        .id_expiration_ms = b->cfg.transactional_id_expiration_ms,
        .log_value_version = 0,
        .max_transactional_ids = 1000000,
        .max_partitions_per_txn = 100000,
    };
    struct txn_env env = {
        .ctx = s,
        .now_ms = store_now_ms,
        .append = store_append,
        .send_markers = store_send_markers,
        .next_producer_id = store_next_producer_id,
    };
    s->tc = txn_create(&cfg, &env);
    if (s->tc == NULL) {
        free(s->state);
        free(s->epoch);
        free(s);
        return NULL;
    }
    /* On ZooKeeper nothing is owned until ZooKeeper says this broker leads a partition
     * (txn_store_cluster_sync). */
    if (b->cluster == NULL)
        load_all(s);
    s->abort_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_abort_interval_ms,
                                      abort_fire, s);
    s->expire_timer = broker_timer_add(b, mono_ms() + b->cfg.transaction_expire_interval_ms,
                                       expire_fire, s);
    return s;
}

void txn_store_destroy(struct txn_store *s)
{
    if (s == NULL)
        return;
    if (s->abort_timer)
        broker_timer_cancel(s->b, s->abort_timer);
    if (s->expire_timer)
        broker_timer_cancel(s->b, s->expire_timer);
    if (s->load_timer)
        broker_timer_cancel(s->b, s->load_timer);
    if (s->create_timer)
        broker_timer_cancel(s->b, s->create_timer);

    if (s->creating) {
        /* Dropped: a later start creates it again on first use. */
        struct topic *t = topic_find(s->b, TXN_STATE_TOPIC);
        if (t != NULL && t->creating != 0 && memcmp(&t->id, &s->create_id, sizeof(t->id)) == 0)
            topic_create_abandon(s->b, t);
        s->creating = false;
    }
    release_held(s, KERR_NOT_COORDINATOR);
    /* Markers in flight end (NETWORK_EXCEPTION: resent by the next coordinator) and the appends
     * still waiting for their replication are answered, while the coordinator exists. */
    peer_conns_free(&s->peers);
    while (s->local_waits != NULL) {
        struct marker_round *r = s->local_waits;
        waiter_unpark(&r->w);
        local_unlink(r);
        round_note(r, KERR_NOT_LEADER_OR_FOLLOWER);
        round_end(r, KERR_NONE);
    }
    while (s->waits != NULL) {
        struct append_wait *w = s->waits;
        waiter_unpark(&w->w);
        append_unlink(w);
        struct txn_op *op = w->op;
        free(w);
        txn_append_done(s->tc, op, KERR_NOT_LEADER_OR_FOLLOWER);
    }
    /* Last: the rounds ended above may have asked for a resend. */
    if (s->retry_timer)
        broker_timer_cancel(s->b, s->retry_timer);
    txn_destroy(s->tc);
    free(s->state);
    free(s->epoch);
    free(s);
}

struct txn_coordinator *txn_store_coordinator(struct broker *b)
{
    return b->txns != NULL ? b->txns->tc : NULL;
}

/* KIP-890's verification (txn_verify.c) asks a remote coordinator over the markers'
 * connection to that broker: NULL when it is not live or none can be had. */
struct client_conn *txn_store_peer(struct broker *b, int32_t broker_id)
{
    return b->txns != NULL && b->cluster != NULL ? peer_conns_get(&b->txns->peers, broker_id) : NULL;
}
