/* txn_coordinator: Kafka's TransactionCoordinator and TransactionMetadata transitions (read in
 * Kafka's source, written anew): a request proposes a transition, its record is written through
 * the host, and only the written record changes the state (as replay of the log would). */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "txn/txn_coordinator.h"

#define TXN_WHO "TransactionCoordinator"
#define NO_PRODUCER_ID (-1)
#define NO_PRODUCER_EPOCH (-1)
#define NO_PENDING (-1)
#define TXN_BUCKETS_MIN 64

enum part_state { PART_NOT_OWNED = 0, PART_LOADING, PART_LOADED };

struct txn_log_partition {
    enum part_state state;
    int32_t coordinator_epoch;
};

/* One transactional id's metadata (Kafka's TransactionMetadata). */
struct txn_meta {
    struct txn_meta *next;            /* hash chain */
    char *id;
    int32_t partition;                /* of __transaction_state */
    int64_t producer_id;
    int64_t last_producer_id;
    int16_t producer_epoch;
    int16_t last_producer_epoch;
    int32_t timeout_ms;
    enum txn_state state;
    int pending;                      /* the state being written, or NO_PENDING */
    struct txn_partition *parts;      /* sorted by topic, partition; topics owned */
    int n_parts;
    int64_t start_ms;
    int64_t last_update_ms;
    bool failed_epoch_fence;          /* a fence's write failed: the next fence keeps the epoch */
    bool needs_markers;               /* PrepareX whose markers failed: resent by the tick */
    bool needs_complete;              /* markers written, CompleteX write failed: retried */
    struct txn_op *op;                /* the one operation in flight, or NULL */
};

/* A proposed state (Kafka's TxnTransitMetadata); parts owned. */
struct txn_transit {
    enum txn_state state;
    int64_t producer_id;
    int64_t last_producer_id;
    int16_t producer_epoch;
    int16_t last_producer_epoch;
    int32_t timeout_ms;
    struct txn_partition *parts;
    int n_parts;
    int64_t start_ms;
    int64_t last_update_ms;
};

enum op_purpose {
    OP_INIT,          /* InitProducerId's epoch bump or new producer id */
    OP_ADD,           /* AddPartitionsToTxn / AddOffsetsToTxn */
    OP_END_CLIENT,    /* EndTxn's PrepareX */
    OP_END_FENCE,     /* InitProducerId on an ongoing transaction: abort it, fenced */
    OP_END_TIMEOUT,   /* a timed-out transaction aborted, fenced */
    OP_COMPLETE,      /* CompleteX after the markers */
    OP_DEAD,          /* an expired id's tombstone */
    OP_MARKERS,
};

struct txn_op {
    enum op_purpose purpose;
    char *id;
    struct txn_transit to;            /* appends only */
    txn_cb cb;                        /* NULL for the coordinator's own operations */
    void *arg;
};

struct txn_coordinator {
    struct txn_config cfg;
    struct txn_env env;
    struct txn_log_partition *log_parts;  /* cfg.num_partitions */
    struct txn_meta **buckets;
    size_t n_buckets;
    size_t n_txns;
};

static const char *const op_names[] = {
    "InitProducerId", "AddPartitions", "EndTxn", "EpochFence", "TimeoutAbort", "Complete",
    "Expire", "Markers",
};

static int64_t now(struct txn_coordinator *tc)
{
    return tc->env.now_ms(tc->env.ctx);
}

static bool epoch_exhausted(int16_t epoch)
{
    return epoch >= INT16_MAX - 1;
}

/* Kafka's validPreviousStates: the states a transition to `to` may start from. */
static bool valid_transition(enum txn_state from, enum txn_state to)
{
    switch (to) {
    case TXN_EMPTY:
    case TXN_DEAD:
        return from == TXN_EMPTY || from == TXN_COMPLETE_COMMIT || from == TXN_COMPLETE_ABORT;
    case TXN_ONGOING:
        return from == TXN_ONGOING || from == TXN_EMPTY || from == TXN_COMPLETE_COMMIT ||
               from == TXN_COMPLETE_ABORT;
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_EPOCH_FENCE:
        return from == TXN_ONGOING;
    case TXN_PREPARE_ABORT:
        return from == TXN_ONGOING || from == TXN_PREPARE_EPOCH_FENCE;
    case TXN_COMPLETE_COMMIT:
        return from == TXN_PREPARE_COMMIT;
    case TXN_COMPLETE_ABORT:
        return from == TXN_PREPARE_ABORT;
    }
    return false;
}

/* ---- partition sets ---- */

static int part_cmp(const struct txn_partition *a, const struct txn_partition *b)
{
    int c = strcmp(a->topic, b->topic);
    if (c != 0)
        return c;
    return (a->partition > b->partition) - (a->partition < b->partition);
}

static int part_cmp_qsort(const void *a, const void *b)
{
    return part_cmp(a, b);
}

static bool parts_contain(const struct txn_partition *parts, int n, const struct txn_partition *p)
{
    return n > 0 && bsearch(p, parts, (size_t)n, sizeof(*parts), part_cmp_qsort) != NULL;
}

static void parts_free(struct txn_partition *parts, int n)
{
    for (int i = 0; i < n; i++)
        free((char *)parts[i].topic);
    free(parts);
}

/* A sorted owned copy of a ∪ b (b unsorted, may repeat); NULL on allocation failure. */
static struct txn_partition *parts_union(const struct txn_partition *a, int na,
                                         const struct txn_partition *b, int nb, int *n_out)
{
    struct txn_partition *out = calloc((size_t)(na + nb) + 1, sizeof(*out));
    if (out == NULL)
        return NULL;
    int n = 0;
    for (int i = 0; i < na + nb; i++) {
        const struct txn_partition *p = i < na ? &a[i] : &b[i - na];
        char *topic = strdup(p->topic);
        if (topic == NULL) {
            parts_free(out, n);
            return NULL;
        }
        out[n++] = (struct txn_partition){topic, p->partition};
    }
    qsort(out, (size_t)n, sizeof(*out), part_cmp_qsort);
    int w = 0;
    for (int i = 0; i < n; i++) {
        if (w > 0 && part_cmp(&out[w - 1], &out[i]) == 0) {
            free((char *)out[i].topic);
            continue;
        }
        out[w++] = out[i];
    }
    *n_out = w;
    return out;
}

/* ---- the id table ---- */

static size_t bucket_of(const struct txn_coordinator *tc, const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (tc->n_buckets - 1);
}

static struct txn_meta *txn_find(struct txn_coordinator *tc, const char *id)
{
    for (struct txn_meta *t = tc->buckets[bucket_of(tc, id)]; t; t = t->next)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static void table_grow(struct txn_coordinator *tc)
{
    size_t nb = tc->n_buckets * 2;
    struct txn_meta **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;   /* longer chains, still correct */
    struct txn_meta **old = tc->buckets;
    size_t old_n = tc->n_buckets;
    tc->buckets = b;
    tc->n_buckets = nb;
    for (size_t i = 0; i < old_n; i++) {
        for (struct txn_meta *t = old[i], *next; t; t = next) {
            next = t->next;
            size_t k = bucket_of(tc, t->id);
            t->next = b[k];
            b[k] = t;
        }
    }
    free(old);
}

static struct txn_meta *txn_insert(struct txn_coordinator *tc, const char *id, int32_t partition)
{
    struct txn_meta *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->id = strdup(id)) == NULL) {
        free(t);
        return NULL;
    }
    if (tc->n_txns >= tc->n_buckets)
        table_grow(tc);
    t->partition = partition;
    t->producer_id = NO_PRODUCER_ID;
    t->last_producer_id = NO_PRODUCER_ID;
    t->producer_epoch = NO_PRODUCER_EPOCH;
    t->last_producer_epoch = NO_PRODUCER_EPOCH;
    t->pending = NO_PENDING;
    t->start_ms = -1;
    size_t k = bucket_of(tc, id);
    t->next = tc->buckets[k];
    tc->buckets[k] = t;
    tc->n_txns++;
    return t;
}

/* Unlinks and frees; an operation in flight stays with the host and ends as stale. */
static void txn_remove(struct txn_coordinator *tc, struct txn_meta *t)
{
    struct txn_meta **pp = &tc->buckets[bucket_of(tc, t->id)];
    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    GREGOR_ASSERT(tc->n_txns > 0);
    tc->n_txns--;
    parts_free(t->parts, t->n_parts);
    free(t->id);
    free(t);
}

/* Ids of the transactions that match, copied: the host's completions may change the table while
 * the caller works through them. */
static char **collect_ids(struct txn_coordinator *tc, bool (*match)(struct txn_coordinator *,
                                                                    struct txn_meta *, void *),
                          void *arg, int *n_out)
{
    char **ids = NULL;
    int n = 0, cap = 0;
    for (size_t i = 0; i < tc->n_buckets; i++) {
        for (struct txn_meta *t = tc->buckets[i]; t; t = t->next) {
            if (!match(tc, t, arg))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                char **grown = realloc(ids, (size_t)cap * sizeof(*ids));
                if (grown == NULL)
                    goto out;
                ids = grown;
            }
            if ((ids[n] = strdup(t->id)) == NULL)
                goto out;
            n++;
        }
    }
out:
    *n_out = n;
    return ids;
}

static void ids_free(char **ids, int n)
{
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* ---- create / destroy ---- */

struct txn_coordinator *txn_create(const struct txn_config *cfg, const struct txn_env *env)
{
    GREGOR_ASSERT(cfg->num_partitions > 0);
    GREGOR_ASSERT(cfg->log_value_version == 0 || cfg->log_value_version == 1);
    struct txn_coordinator *tc = calloc(1, sizeof(*tc));
    if (tc == NULL)
        return NULL;
    tc->cfg = *cfg;
    tc->env = *env;
    tc->log_parts = calloc((size_t)cfg->num_partitions, sizeof(*tc->log_parts));
    tc->n_buckets = TXN_BUCKETS_MIN;
    tc->buckets = calloc(tc->n_buckets, sizeof(*tc->buckets));
    if (tc->log_parts == NULL || tc->buckets == NULL) {
        txn_destroy(tc);
        return NULL;
    }
    return tc;
}

void txn_destroy(struct txn_coordinator *tc)
{
    if (tc == NULL)
        return;
    for (size_t i = 0; tc->buckets && i < tc->n_buckets; i++)
        while (tc->buckets[i])
            txn_remove(tc, tc->buckets[i]);
    free(tc->buckets);
    free(tc->log_parts);
    free(tc);
}

/* ---- operations ---- */

static struct txn_op *op_new(enum op_purpose purpose, const struct txn_meta *t, txn_cb cb,
                             void *arg)
{
    struct txn_op *op = calloc(1, sizeof(*op));
    if (op == NULL || (op->id = strdup(t->id)) == NULL) {
        free(op);
        return NULL;
    }
    op->purpose = purpose;
    op->cb = cb;
    op->arg = arg;
    return op;
}

static void op_free(struct txn_op *op)
{
    parts_free(op->to.parts, op->to.n_parts);
    free(op->id);
    free(op);
}

void txn_op_abandon(struct txn_op *op)
{
    op_free(op);
}

static void respond(txn_cb cb, void *arg, int16_t err, int64_t pid, int16_t epoch)
{
    if (cb == NULL)
        return;
    struct txn_result r = {err, err == KERR_NONE ? pid : -1, err == KERR_NONE ? epoch : -1};
    cb(arg, &r);
}

/* The transit from the current metadata (Kafka's prepareTransitionTo): last_producer_id is
 * always the current id, which a rotation replaces. parts is taken over. */
static struct txn_transit transit_from(const struct txn_meta *t, enum txn_state state,
                                       struct txn_partition *parts, int n_parts, int64_t now_ms)
{
    GREGOR_ASSERT(valid_transition(t->state, state));
    return (struct txn_transit){
        .state = state,
        .producer_id = t->producer_id,
        .last_producer_id = t->producer_id,
        .producer_epoch = t->producer_epoch,
        .last_producer_epoch = t->last_producer_epoch,
        .timeout_ms = t->timeout_ms,
        .parts = parts,
        .n_parts = n_parts,
        .start_ms = t->start_ms,
        .last_update_ms = now_ms,
    };
}

static int encode_transit(struct txn_coordinator *tc, const struct txn_transit *to,
                          struct txn_buf *value)
{
    struct txn_log_topic *topics = calloc((size_t)to->n_parts + 1, sizeof(*topics));
    int32_t *ids = calloc((size_t)to->n_parts + 1, sizeof(*ids));
    int n_topics = 0;
    if (topics == NULL || ids == NULL) {
        free(topics);
        free(ids);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    for (int i = 0; i < to->n_parts; i++) {
        ids[i] = to->parts[i].partition;
        if (n_topics == 0 || strcmp(topics[n_topics - 1].topic, to->parts[i].topic) != 0)
            topics[n_topics++] = (struct txn_log_topic){to->parts[i].topic, &ids[i], 0};
        topics[n_topics - 1].n_partitions++;
    }
    /* Kafka writes Empty's partitions as null, every other state's as a (maybe empty) list. */
    GREGOR_ASSERT(to->state != TXN_EMPTY || to->n_parts == 0);
    struct txn_log_value v = {
        .producer_id = to->producer_id,
        .prev_producer_id = tc->cfg.log_value_version >= 1 ? to->last_producer_id : -1,
        .next_producer_id = -1,
        .producer_epoch = to->producer_epoch,
        .timeout_ms = to->timeout_ms,
        .status = (int8_t)to->state,
        .topics = topics,
        .n_topics = to->state == TXN_EMPTY ? -1 : n_topics,
        .last_update_ms = to->last_update_ms,
        .start_ms = to->start_ms,
    };
    if (v.prev_producer_id == v.producer_id)
        v.prev_producer_id = -1;   /* only a rotation has a previous id worth keeping */
    int err = txn_log_encode_value(value, tc->cfg.log_value_version, &v);
    free(topics);
    free(ids);
    return err;
}

/* Writes op->to through the host; the transaction is pending until txn_append_done. Nothing is
 * touched after env.append: the host may report its end before returning. */
static void start_append(struct txn_coordinator *tc, struct txn_meta *t, struct txn_op *op)
{
    GREGOR_ASSERT(t->op == NULL);
    struct txn_buf key = {0}, value = {0};
    int err = txn_log_encode_key(&key, t->id);
    if (err == KERR_NONE && op->to.state != TXN_DEAD)
        err = encode_transit(tc, &op->to, &value);
    if (err != KERR_NONE) {
        LOG_ERROR(TXN_WHO, "cannot encode the %s record of transactional id %s: %s",
                  txn_state_name(op->to.state), t->id, kerr_name(err));
        free(key.p);
        free(value.p);
        respond(op->cb, op->arg, KERR_UNKNOWN_SERVER_ERROR, -1, -1);
        op_free(op);
        return;
    }
    t->pending = (int)op->to.state;
    t->op = op;
    struct txn_record rec = {key.p, (int32_t)key.len, value.p,
                             op->to.state == TXN_DEAD ? -1 : (int32_t)value.len};
    tc->env.append(tc->env.ctx, t->partition, &rec, op);
    free(key.p);
    free(value.p);
}

/* An operation for transaction t, or an error answered (allocation failed). */
static struct txn_op *op_for(struct txn_meta *t, enum op_purpose purpose, txn_cb cb, void *arg)
{
    struct txn_op *op = op_new(purpose, t, cb, arg);
    if (op == NULL)
        respond(cb, arg, KERR_UNKNOWN_SERVER_ERROR, -1, -1);
    return op;
}

static void send_markers(struct txn_coordinator *tc, struct txn_meta *t)
{
    GREGOR_ASSERT(t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT);
    GREGOR_ASSERT(t->op == NULL);
    struct txn_op *op = op_new(OP_MARKERS, t, NULL, NULL);
    if (op == NULL) {
        t->needs_markers = true;
        return;
    }
    t->needs_markers = false;
    t->op = op;
    struct txn_marker_request req = {
        .transactional_id = t->id,
        .producer_id = t->producer_id,
        .producer_epoch = t->producer_epoch,
        .commit = t->state == TXN_PREPARE_COMMIT,
        .coordinator_epoch = tc->log_parts[t->partition].coordinator_epoch,
        .partitions = t->parts,
        .n_partitions = t->n_parts,
    };
    tc->env.send_markers(tc->env.ctx, &req, op);
}

/* Kafka's prepareComplete: CompleteX with no partitions, written after the markers. */
static void start_complete(struct txn_coordinator *tc, struct txn_meta *t)
{
    struct txn_op *op = op_new(OP_COMPLETE, t, NULL, NULL);
    if (op == NULL) {
        t->needs_complete = true;
        return;
    }
    t->needs_complete = false;
    enum txn_state to = t->state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    op->to = transit_from(t, to, NULL, 0, now(tc));
    start_append(tc, t, op);
}

/* Kafka's log append errors as a coordinator answers them. */
static int16_t append_error(int16_t err)
{
    switch (err) {
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case KERR_REQUEST_TIMED_OUT:
        return KERR_COORDINATOR_NOT_AVAILABLE;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR:
        return KERR_NOT_COORDINATOR;
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
        return KERR_UNKNOWN_SERVER_ERROR;
    default:
        return err;
    }
}

static void apply_transit(struct txn_meta *t, struct txn_transit *to)
{
    GREGOR_ASSERT(valid_transition(t->state, to->state));
    /* epochs only rise under one producer id */
    GREGOR_ASSERT(to->producer_id != t->producer_id || to->producer_epoch >= t->producer_epoch);
    t->state = to->state;
    t->producer_id = to->producer_id;
    t->last_producer_id = to->last_producer_id;
    t->producer_epoch = to->producer_epoch;
    t->last_producer_epoch = to->last_producer_epoch;
    t->timeout_ms = to->timeout_ms;
    parts_free(t->parts, t->n_parts);
    t->parts = to->parts;
    t->n_parts = to->n_parts;
    to->parts = NULL;
    to->n_parts = 0;
    t->start_ms = to->start_ms;
    t->last_update_ms = to->last_update_ms;
    t->failed_epoch_fence = false;
}

void txn_append_done(struct txn_coordinator *tc, struct txn_op *op, int16_t err)
{
    GREGOR_ASSERT(op->purpose != OP_MARKERS);
    struct txn_meta *t = txn_find(tc, op->id);
    if (t == NULL || t->op != op) {
        /* the partition was unloaded (or reloaded) while the write was in flight */
        respond(op->cb, op->arg, KERR_NOT_COORDINATOR, -1, -1);
        op_free(op);
        return;
    }
    t->op = NULL;
    t->pending = NO_PENDING;
    int16_t e = append_error(err);
    txn_cb cb = op->cb;
    void *arg = op->arg;
    int64_t pid = op->to.producer_id;
    int16_t epoch = op->to.producer_epoch;
    enum op_purpose purpose = op->purpose;
    if (e == KERR_NONE) {
        apply_transit(t, &op->to);
    } else {
        LOG_WARN(TXN_WHO, "writing %s (%s) of transactional id %s failed: %s",
                 txn_state_name(op->to.state), op_names[purpose], t->id, kerr_name(err));
        if (purpose == OP_END_FENCE || purpose == OP_END_TIMEOUT)
            t->failed_epoch_fence = true;
        if (purpose == OP_COMPLETE)
            t->needs_complete = true;
    }
    op_free(op);
    if (e == KERR_NONE && purpose == OP_DEAD) {
        txn_remove(tc, t);
    } else if (e == KERR_NONE && (purpose == OP_END_CLIENT || purpose == OP_END_FENCE ||
                                  purpose == OP_END_TIMEOUT)) {
        send_markers(tc, t);   /* t may be gone after this */
    }
    if (purpose == OP_END_FENCE && e == KERR_NONE)
        e = KERR_CONCURRENT_TRANSACTIONS;   /* the client retries and gets the next epoch */
    respond(cb, arg, e, pid, epoch);
}

void txn_markers_done(struct txn_coordinator *tc, struct txn_op *op, int16_t err)
{
    GREGOR_ASSERT(op->purpose == OP_MARKERS);
    struct txn_meta *t = txn_find(tc, op->id);
    bool current = t != NULL && t->op == op;
    op_free(op);
    if (!current)
        return;
    t->op = NULL;
    if (err != KERR_NONE) {
        LOG_WARN(TXN_WHO, "markers of transactional id %s (producer %lld epoch %d) failed: %s; "
                 "to be resent", t->id, (long long)t->producer_id, t->producer_epoch,
                 kerr_name(err));
        t->needs_markers = true;
        return;
    }
    start_complete(tc, t);
}

/* ---- request checks ---- */

static int16_t partition_check(struct txn_coordinator *tc, const char *id, int32_t *partition)
{
    *partition = txn_partition_for(id, tc->cfg.num_partitions);
    switch (tc->log_parts[*partition].state) {
    case PART_NOT_OWNED:
        return KERR_NOT_COORDINATOR;
    case PART_LOADING:
        return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    case PART_LOADED:
        break;
    }
    return KERR_NONE;
}

static bool transition_in_flight(const struct txn_meta *t)
{
    return t->pending != NO_PENDING || t->op != NULL;
}

/* ---- InitProducerId ---- */

/* Kafka's isValidProducerId: may the producer that names (pid, epoch) take this id over? */
static bool producer_may_continue(const struct txn_meta *t, int64_t pid, int16_t epoch)
{
    return t->producer_epoch == NO_PRODUCER_EPOCH || pid == t->producer_id ||
           (pid == t->last_producer_id && epoch_exhausted(epoch));
}

/* Kafka's prepareIncrementProducerEpoch / prepareProducerIdRotation for Empty and CompleteX. */
static int16_t init_transit(struct txn_coordinator *tc, struct txn_meta *t,
                            const struct txn_init_args *a, struct txn_transit *to)
{
    bool expected = a->producer_id != NO_PRODUCER_ID;
    int64_t ts = now(tc);
    *to = transit_from(t, TXN_EMPTY, NULL, 0, ts);
    to->timeout_ms = a->timeout_ms;
    to->start_ms = -1;
    if (epoch_exhausted(t->producer_epoch) &&
        (!expected || a->producer_epoch == t->producer_epoch)) {
        int64_t pid = -1;
        int16_t err = tc->env.next_producer_id(tc->env.ctx, &pid);
        if (err != KERR_NONE)
            return err;
        GREGOR_ASSERT(pid >= 0);
        LOG_INFO(TXN_WHO, "transactional id %s: epoch of producer %lld exhausted, new producer "
                 "id %lld", t->id, (long long)t->producer_id, (long long)pid);
        to->producer_id = pid;
        to->producer_epoch = 0;
        to->last_producer_epoch = expected ? t->producer_epoch : NO_PRODUCER_EPOCH;
        return KERR_NONE;
    }
    if (epoch_exhausted(t->producer_epoch))
        return KERR_PRODUCER_FENCED;   /* an older epoch of an exhausted id: a zombie */
    int16_t bumped = (int16_t)(t->producer_epoch + 1);
    if (!expected) {
        to->producer_epoch = bumped;
        to->last_producer_epoch = NO_PRODUCER_EPOCH;
    } else if (t->producer_epoch == NO_PRODUCER_EPOCH || a->producer_epoch == t->producer_epoch) {
        to->producer_epoch = bumped;
        to->last_producer_epoch = t->producer_epoch;
    } else if (a->producer_epoch == t->last_producer_epoch) {
        /* a retry of a bump whose answer was lost: the same epoch again */
        to->producer_epoch = t->producer_epoch;
        to->last_producer_epoch = t->last_producer_epoch;
    } else {
        LOG_INFO(TXN_WHO, "transactional id %s: producer %lld epoch %d fenced by epoch %d",
                 t->id, (long long)a->producer_id, a->producer_epoch, t->producer_epoch);
        return KERR_PRODUCER_FENCED;
    }
    return KERR_NONE;
}

/* Kafka's prepareFenceProducerEpoch then endTransaction(ABORT) from the coordinator: the epoch is
 * bumped in memory at once (so the old producer is fenced even if the write fails, and a failed
 * fence is not bumped twice) and PrepareAbort written with it. */
static void fence_and_abort(struct txn_coordinator *tc, struct txn_meta *t,
                            enum op_purpose purpose, txn_cb cb, void *arg)
{
    GREGOR_ASSERT(t->state == TXN_ONGOING && !transition_in_flight(t));
    struct txn_op *op = op_for(t, purpose, cb, arg);
    if (op == NULL)
        return;
    struct txn_partition *parts = parts_union(t->parts, t->n_parts, NULL, 0, &op->to.n_parts);
    if (parts == NULL && t->n_parts > 0) {
        respond(cb, arg, KERR_UNKNOWN_SERVER_ERROR, -1, -1);
        op_free(op);
        return;
    }
    if (!t->failed_epoch_fence && t->producer_epoch < INT16_MAX)
        t->producer_epoch++;
    t->last_producer_epoch = NO_PRODUCER_EPOCH;
    op->to = transit_from(t, TXN_PREPARE_ABORT, parts, t->n_parts, now(tc));
    start_append(tc, t, op);
}

void txn_init_producer_id(struct txn_coordinator *tc, const struct txn_init_args *a, txn_cb cb,
                          void *arg)
{
    GREGOR_ASSERT(a->transactional_id != NULL);
    int32_t partition;
    if (a->transactional_id[0] == '\0' ||
        (a->producer_id == NO_PRODUCER_ID) != (a->producer_epoch == NO_PRODUCER_EPOCH))
        return respond(cb, arg, KERR_INVALID_REQUEST, -1, -1);
    if (a->timeout_ms <= 0 || a->timeout_ms > tc->cfg.max_timeout_ms)
        return respond(cb, arg, KERR_INVALID_TRANSACTION_TIMEOUT, -1, -1);
    int16_t err = partition_check(tc, a->transactional_id, &partition);
    if (err != KERR_NONE)
        return respond(cb, arg, err, -1, -1);
    struct txn_meta *t = txn_find(tc, a->transactional_id);
    if (t == NULL) {
        if (tc->n_txns >= (size_t)tc->cfg.max_transactional_ids) {
            LOG_WARN(TXN_WHO, "transactional id %s refused: %zu ids held "
                     "(max_transactional_ids)", a->transactional_id, tc->n_txns);
            return respond(cb, arg, KERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        }
        int64_t pid = -1;
        err = tc->env.next_producer_id(tc->env.ctx, &pid);
        if (err != KERR_NONE)
            return respond(cb, arg, err, -1, -1);
        GREGOR_ASSERT(pid >= 0);
        t = txn_insert(tc, a->transactional_id, partition);
        if (t == NULL)
            return respond(cb, arg, KERR_UNKNOWN_SERVER_ERROR, -1, -1);
        t->producer_id = pid;
        t->timeout_ms = a->timeout_ms;
        t->state = TXN_EMPTY;
        t->last_update_ms = now(tc);
    }
    if (transition_in_flight(t))
        return respond(cb, arg, KERR_CONCURRENT_TRANSACTIONS, -1, -1);
    if (a->producer_id != NO_PRODUCER_ID &&
        !producer_may_continue(t, a->producer_id, a->producer_epoch))
        return respond(cb, arg, KERR_PRODUCER_FENCED, -1, -1);
    switch (t->state) {
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_ABORT:
        return respond(cb, arg, KERR_CONCURRENT_TRANSACTIONS, -1, -1);
    case TXN_ONGOING:
        /* abort the open transaction fenced; the client retries for its epoch */
        return fence_and_abort(tc, t, OP_END_FENCE, cb, arg);
    case TXN_EMPTY:
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT: {
        struct txn_transit to;
        err = init_transit(tc, t, a, &to);
        if (err != KERR_NONE)
            return respond(cb, arg, err, -1, -1);
        struct txn_op *op = op_for(t, OP_INIT, cb, arg);
        if (op == NULL)
            return;
        op->to = to;
        return start_append(tc, t, op);
    }
    case TXN_DEAD:
    case TXN_PREPARE_EPOCH_FENCE:
        break;
    }
    GREGOR_ASSERT(!"a stored transaction is never Dead or PrepareEpochFence");
}

/* ---- AddPartitionsToTxn / AddOffsetsToTxn ---- */

/* The checks Kafka's add and verify share: the id is here, the producer is its producer. */
static int16_t producer_check(struct txn_coordinator *tc, const char *id, int64_t pid,
                              int16_t epoch, struct txn_meta **out)
{
    int32_t partition;
    if (id == NULL || id[0] == '\0')
        return KERR_INVALID_REQUEST;
    int16_t err = partition_check(tc, id, &partition);
    if (err != KERR_NONE)
        return err;
    struct txn_meta *t = txn_find(tc, id);
    if (t == NULL || t->producer_id != pid)
        return KERR_INVALID_PRODUCER_ID_MAPPING;
    if (t->producer_epoch != epoch)
        return KERR_PRODUCER_FENCED;
    *out = t;
    return KERR_NONE;
}

void txn_add_partitions(struct txn_coordinator *tc, const char *transactional_id,
                        int64_t producer_id, int16_t producer_epoch,
                        const struct txn_partition *parts, int n, txn_cb cb, void *arg)
{
    struct txn_meta *t = NULL;
    int16_t err = producer_check(tc, transactional_id, producer_id, producer_epoch, &t);
    if (err != KERR_NONE)
        return respond(cb, arg, err, -1, -1);
    if (transition_in_flight(t) || t->state == TXN_PREPARE_COMMIT ||
        t->state == TXN_PREPARE_ABORT)
        return respond(cb, arg, KERR_CONCURRENT_TRANSACTIONS, -1, -1);
    GREGOR_ASSERT(t->state != TXN_DEAD && t->state != TXN_PREPARE_EPOCH_FENCE);
    bool all_in = t->state == TXN_ONGOING;
    for (int i = 0; i < n && all_in; i++)
        all_in = parts_contain(t->parts, t->n_parts, &parts[i]);
    if (all_in)
        return respond(cb, arg, KERR_NONE, -1, -1);
    if (t->n_parts + n > tc->cfg.max_partitions_per_txn) {
        LOG_WARN(TXN_WHO, "transactional id %s: %d + %d partitions is more than "
                 "max_partitions_per_txn %d", t->id, t->n_parts, n,
                 tc->cfg.max_partitions_per_txn);
        return respond(cb, arg, KERR_INVALID_REQUEST, -1, -1);
    }
    struct txn_op *op = op_for(t, OP_ADD, cb, arg);
    if (op == NULL)
        return;
    int n_union = 0;
    struct txn_partition *u = parts_union(t->parts, t->n_parts, parts, n, &n_union);
    if (u == NULL) {
        respond(cb, arg, KERR_UNKNOWN_SERVER_ERROR, -1, -1);
        return op_free(op);
    }
    int64_t ts = now(tc);
    op->to = transit_from(t, TXN_ONGOING, u, n_union, ts);
    if (t->state != TXN_ONGOING)
        op->to.start_ms = ts;   /* a new transaction starts now */
    start_append(tc, t, op);
}

void txn_add_offsets(struct txn_coordinator *tc, const char *transactional_id,
                     int64_t producer_id, int16_t producer_epoch, int32_t offsets_partition,
                     txn_cb cb, void *arg)
{
    struct txn_partition p = {"__consumer_offsets", offsets_partition};
    txn_add_partitions(tc, transactional_id, producer_id, producer_epoch, &p, 1, cb, arg);
}

int16_t txn_verify_partitions(struct txn_coordinator *tc, const char *transactional_id,
                              int64_t producer_id, int16_t producer_epoch,
                              const struct txn_partition *parts, int n, int16_t *errors)
{
    struct txn_meta *t = NULL;
    int16_t err = producer_check(tc, transactional_id, producer_id, producer_epoch, &t);
    if (err != KERR_NONE)
        return err;
    if (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT)
        return KERR_CONCURRENT_TRANSACTIONS;
    /* pending writes are not looked at: a partition counts once its Ongoing record is written */
    for (int i = 0; i < n; i++)
        errors[i] = parts_contain(t->parts, t->n_parts, &parts[i]) ? KERR_NONE
                                                                   : KERR_TRANSACTION_ABORTABLE;
    return KERR_NONE;
}

/* ---- EndTxn ---- */

void txn_end(struct txn_coordinator *tc, const char *transactional_id, int64_t producer_id,
             int16_t producer_epoch, bool commit, txn_cb cb, void *arg)
{
    struct txn_meta *t = NULL;
    /* a client's EndTxn must carry the current epoch exactly (it never bumps it) */
    int16_t err = producer_check(tc, transactional_id, producer_id, producer_epoch, &t);
    if (err != KERR_NONE)
        return respond(cb, arg, err, -1, -1);
    /* markers in flight leave no pending state: PrepareX answers below */
    if (t->pending != NO_PENDING)
        return respond(cb, arg, KERR_CONCURRENT_TRANSACTIONS, -1, -1);
    switch (t->state) {
    case TXN_ONGOING: {
        struct txn_op *op = op_for(t, OP_END_CLIENT, cb, arg);
        if (op == NULL)
            return;
        int n = 0;
        struct txn_partition *parts = parts_union(t->parts, t->n_parts, NULL, 0, &n);
        if (parts == NULL && t->n_parts > 0) {
            respond(cb, arg, KERR_UNKNOWN_SERVER_ERROR, -1, -1);
            return op_free(op);
        }
        op->to = transit_from(t, commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT, parts, n,
                              now(tc));
        return start_append(tc, t, op);
    }
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT:
        /* a retry of the EndTxn that completed it */
        err = commit == (t->state == TXN_COMPLETE_COMMIT) ? KERR_NONE : KERR_INVALID_TXN_STATE;
        break;
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_ABORT:
        err = commit == (t->state == TXN_PREPARE_COMMIT) ? KERR_CONCURRENT_TRANSACTIONS
                                                          : KERR_INVALID_TXN_STATE;
        break;
    case TXN_EMPTY:
        err = KERR_INVALID_TXN_STATE;
        break;
    case TXN_DEAD:
    case TXN_PREPARE_EPOCH_FENCE:
        GREGOR_ASSERT(!"a stored transaction is never Dead or PrepareEpochFence");
    }
    if (err == KERR_INVALID_TXN_STATE)
        LOG_INFO(TXN_WHO, "transactional id %s: %s in state %s", t->id,
                 commit ? "commit" : "abort", txn_state_name(t->state));
    respond(cb, arg, err, -1, -1);
}

/* ---- periodic work ---- */

static bool is_loaded(struct txn_coordinator *tc, const struct txn_meta *t)
{
    return tc->log_parts[t->partition].state == PART_LOADED;
}

static bool timed_out_or_stuck(struct txn_coordinator *tc, struct txn_meta *t, void *arg)
{
    int64_t ts = *(const int64_t *)arg;
    if (!is_loaded(tc, t) || transition_in_flight(t))
        return false;
    if (t->needs_markers || t->needs_complete)
        return true;
    return t->state == TXN_ONGOING && t->start_ms + t->timeout_ms < ts;
}

int txn_abort_timed_out(struct txn_coordinator *tc)
{
    int64_t ts = now(tc);
    int n = 0, started = 0;
    char **ids = collect_ids(tc, timed_out_or_stuck, &ts, &n);
    for (int i = 0; i < n; i++) {
        struct txn_meta *t = txn_find(tc, ids[i]);
        if (t == NULL || !timed_out_or_stuck(tc, t, &ts))
            continue;
        started++;
        if (t->needs_complete) {
            start_complete(tc, t);
        } else if (t->needs_markers) {
            send_markers(tc, t);
        } else {
            LOG_INFO(TXN_WHO, "aborting transaction of transactional id %s (producer %lld epoch "
                     "%d): open %lld ms, timeout %d ms", t->id, (long long)t->producer_id,
                     t->producer_epoch, (long long)(ts - t->start_ms), t->timeout_ms);
            fence_and_abort(tc, t, OP_END_TIMEOUT, NULL, NULL);
        }
    }
    ids_free(ids, n);
    return started;
}

static bool expired(struct txn_coordinator *tc, struct txn_meta *t, void *arg)
{
    int64_t ts = *(const int64_t *)arg;
    return is_loaded(tc, t) && !transition_in_flight(t) &&
           (t->state == TXN_EMPTY || t->state == TXN_COMPLETE_COMMIT ||
            t->state == TXN_COMPLETE_ABORT) &&
           t->last_update_ms <= ts - tc->cfg.id_expiration_ms;
}

int txn_expire_ids(struct txn_coordinator *tc)
{
    int64_t ts = now(tc);
    int n = 0, started = 0;
    char **ids = collect_ids(tc, expired, &ts, &n);
    for (int i = 0; i < n; i++) {
        struct txn_meta *t = txn_find(tc, ids[i]);
        if (t == NULL || !expired(tc, t, &ts))
            continue;
        struct txn_op *op = op_new(OP_DEAD, t, NULL, NULL);
        if (op == NULL)
            break;
        op->to = transit_from(t, TXN_DEAD, NULL, 0, t->last_update_ms);
        started++;
        start_append(tc, t, op);
    }
    ids_free(ids, n);
    return started;
}

/* ---- loading ---- */

static bool in_partition(struct txn_coordinator *tc, struct txn_meta *t, void *arg)
{
    (void)tc;
    return t->partition == *(const int32_t *)arg;
}

static int drop_partition(struct txn_coordinator *tc, int32_t partition)
{
    int n = 0;
    char **ids = collect_ids(tc, in_partition, &partition, &n);
    for (int i = 0; i < n; i++) {
        struct txn_meta *t = txn_find(tc, ids[i]);
        if (t != NULL)
            txn_remove(tc, t);
    }
    ids_free(ids, n);
    return n;
}

void txn_load_begin(struct txn_coordinator *tc, int32_t partition, int32_t coordinator_epoch)
{
    GREGOR_ASSERT(partition >= 0 && partition < tc->cfg.num_partitions);
    drop_partition(tc, partition);
    tc->log_parts[partition] = (struct txn_log_partition){PART_LOADING, coordinator_epoch};
}

static int replay_value(struct txn_coordinator *tc, int32_t partition, const char *id,
                        const struct txn_log_value *v)
{
    /* only the states Kafka writes as values; Dead is a tombstone, PrepareEpochFence never
     * leaves memory */
    if (v->status > TXN_COMPLETE_ABORT)
        return -1;
    int n = 0;
    for (int32_t i = 0; i < v->n_topics; i++)
        n += v->topics[i].n_partitions;
    struct txn_partition *flat = calloc((size_t)n + 1, sizeof(*flat));
    if (flat == NULL)
        return -1;
    int k = 0;
    for (int32_t i = 0; i < v->n_topics; i++)
        for (int32_t j = 0; j < v->topics[i].n_partitions; j++)
            flat[k++] = (struct txn_partition){v->topics[i].topic, v->topics[i].partitions[j]};
    int n_parts = 0;
    struct txn_partition *parts = parts_union(flat, n, NULL, 0, &n_parts);
    free(flat);
    if (parts == NULL && n > 0)
        return -1;
    struct txn_meta *t = txn_find(tc, id);
    if (t == NULL && (t = txn_insert(tc, id, partition)) == NULL) {
        parts_free(parts, n_parts);
        return -1;
    }
    t->partition = partition;
    t->producer_id = v->producer_id;
    t->last_producer_id = v->prev_producer_id;
    t->producer_epoch = v->producer_epoch;
    t->last_producer_epoch = NO_PRODUCER_EPOCH;
    t->timeout_ms = v->timeout_ms;
    t->state = (enum txn_state)v->status;
    parts_free(t->parts, t->n_parts);
    t->parts = parts;
    t->n_parts = n_parts;
    t->start_ms = v->start_ms;
    t->last_update_ms = v->last_update_ms;
    return 0;
}

int txn_replay_record(struct txn_coordinator *tc, int32_t partition, const uint8_t *key,
                      int32_t key_len, const uint8_t *value, int32_t value_len)
{
    GREGOR_ASSERT(partition >= 0 && partition < tc->cfg.num_partitions);
    GREGOR_ASSERT(tc->log_parts[partition].state == PART_LOADING);
    if (key == NULL || key_len < 0)
        return -1;
    struct arena arena;
    arena_init(&arena, (size_t)key_len + (value_len > 0 ? (size_t)value_len * 16 : 0) + 4096);
    const char *id = NULL;
    int rc = txn_log_decode_key(key, (size_t)key_len, &arena, &id);
    if (rc == 0 && (value == NULL || value_len < 0)) {
        struct txn_meta *t = txn_find(tc, id);
        if (t != NULL)
            txn_remove(tc, t);
    } else if (rc == 0) {
        struct txn_log_value v;
        rc = txn_log_decode_value(value, (size_t)value_len, &arena, &v);
        if (rc == 0)
            rc = replay_value(tc, partition, id, &v);
    }
    arena_reset(&arena);
    return rc;
}

static bool prepared_in(struct txn_coordinator *tc, struct txn_meta *t, void *arg)
{
    return in_partition(tc, t, arg) &&
           (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT);
}

int txn_load_done(struct txn_coordinator *tc, int32_t partition)
{
    GREGOR_ASSERT(tc->log_parts[partition].state == PART_LOADING);
    tc->log_parts[partition].state = PART_LOADED;
    int n = 0, started = 0;
    char **ids = collect_ids(tc, prepared_in, &partition, &n);
    for (int i = 0; i < n; i++) {
        struct txn_meta *t = txn_find(tc, ids[i]);
        if (t == NULL || !prepared_in(tc, t, &partition) || t->op != NULL)
            continue;
        LOG_INFO(TXN_WHO, "completing transactional id %s left in %s", t->id,
                 txn_state_name(t->state));
        started++;
        send_markers(tc, t);
    }
    ids_free(ids, n);
    return started;
}

int txn_unload_partition(struct txn_coordinator *tc, int32_t partition)
{
    GREGOR_ASSERT(partition >= 0 && partition < tc->cfg.num_partitions);
    int n = drop_partition(tc, partition);
    tc->log_parts[partition] = (struct txn_log_partition){PART_NOT_OWNED, 0};
    return n;
}

/* ---- describing ---- */

int16_t txn_describe(struct txn_coordinator *tc, const char *transactional_id,
                     struct txn_desc *out)
{
    int32_t partition;
    memset(out, 0, sizeof(*out));
    int16_t err = partition_check(tc, transactional_id, &partition);
    if (err != KERR_NONE)
        return err;
    struct txn_meta *t = txn_find(tc, transactional_id);
    if (t == NULL)
        return KERR_NONE;
    *out = (struct txn_desc){
        .found = true,
        .state = t->state,
        .producer_id = t->producer_id,
        .producer_epoch = t->producer_epoch,
        .timeout_ms = t->timeout_ms,
        .start_ms = t->start_ms,
        .last_update_ms = t->last_update_ms,
        .partitions = t->parts,
        .n_partitions = t->n_parts,
    };
    return KERR_NONE;
}

int16_t txn_client_error(int16_t err, bool knows_producer_fenced)
{
    return err == KERR_PRODUCER_FENCED && !knows_producer_fenced ? KERR_INVALID_PRODUCER_EPOCH
                                                                 : err;
}

static bool list_match(const struct txn_list_filter *f, const struct txn_meta *t, int64_t ts)
{
    bool ok = f->n_states == 0;
    for (int i = 0; i < f->n_states && !ok; i++)
        ok = f->states[i] == t->state;
    if (!ok)
        return false;
    ok = f->n_producer_ids == 0;
    for (int i = 0; i < f->n_producer_ids && !ok; i++)
        ok = f->producer_ids[i] == t->producer_id;
    if (!ok)
        return false;
    /* Kafka's duration filter: now - start > duration (an Empty id's start is -1: it passes) */
    return f->min_duration_ms < 0 || ts - t->start_ms > f->min_duration_ms;
}

int16_t txn_list(struct txn_coordinator *tc, const struct txn_list_filter *f, txn_list_fn fn,
                 void *arg)
{
    for (int32_t p = 0; p < tc->cfg.num_partitions; p++)
        if (tc->log_parts[p].state == PART_LOADING)
            return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    int64_t ts = now(tc);
    for (size_t i = 0; i < tc->n_buckets; i++)
        for (const struct txn_meta *t = tc->buckets[i]; t; t = t->next)
            if (tc->log_parts[t->partition].state == PART_LOADED && list_match(f, t, ts))
                fn(arg, t->id, t->producer_id, t->state);
    return KERR_NONE;
}
