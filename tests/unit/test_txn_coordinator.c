/* test_txn_coordinator: the transaction coordinator's transitions as Kafka makes them, driven by a
 * fake host (txn_test_env.h): InitProducerId (new id, epoch bump, fencing, retries, exhaustion),
 * AddPartitionsToTxn / AddOffsetsToTxn, verification (KIP-890), EndTxn with its markers, timeouts,
 * id expiry, failed writes, and the load of __transaction_state (replay, PrepareX completed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txn_kafka_records.h"
#include "txn_test_env.h"

#define TIMEOUT 60000
#define COORD_EPOCH 7

struct res {
    int calls;
    struct txn_result r;
};

static void on_res(void *arg, const struct txn_result *r)
{
    struct res *x = arg;
    x->calls++;
    x->r = *r;
}

static struct res do_init_with(struct tenv *e, const char *id, int32_t timeout, int64_t pid,
                               int16_t epoch)
{
    struct res x = {0};
    struct txn_init_args a = {id, timeout, pid, epoch};
    txn_init_producer_id(e->tc, &a, on_res, &x);
    return x;
}

static struct res do_init(struct tenv *e, const char *id)
{
    return do_init_with(e, id, TIMEOUT, -1, -1);
}

static struct res do_add(struct tenv *e, const char *id, int64_t pid, int16_t epoch,
                         const struct txn_partition *parts, int n)
{
    struct res x = {0};
    txn_add_partitions(e->tc, id, pid, epoch, parts, n, on_res, &x);
    return x;
}

static struct res do_end(struct tenv *e, const char *id, int64_t pid, int16_t epoch, bool commit)
{
    struct res x = {0};
    txn_end(e->tc, id, pid, epoch, commit, on_res, &x);
    return x;
}

static void own(struct tenv *e, const char *id)
{
    int32_t p = txn_partition_for(id, 50);
    txn_load_begin(e->tc, p, COORD_EPOCH);
    txn_load_done(e->tc, p);
}

/* The last record written, decoded (strings in arena). */
static struct txn_log_value last_value(struct tenv *e, struct arena *a)
{
    assert_true(e->nrecords > 0);
    struct tenv_record *r = &e->records[e->nrecords - 1];
    assert_non_null(r->value);
    struct txn_log_value v;
    assert_int_equal(txn_log_decode_value(r->value, (size_t)r->value_len, a, &v), 0);
    return v;
}

static enum txn_state state_of(struct tenv *e, const char *id)
{
    struct txn_desc d;
    assert_int_equal(txn_describe(e->tc, id, &d), KERR_NONE);
    assert_true(d.found);
    return d.state;
}

static const struct txn_partition T01[] = {{"t", 0}, {"t", 1}};

static void test_not_coordinator_until_loaded(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    assert_int_equal(do_init(&e, "my-txn").r.error, KERR_NOT_COORDINATOR);
    int32_t p = txn_partition_for("my-txn", 50);
    assert_int_equal(p, 45);
    txn_load_begin(e.tc, p, COORD_EPOCH);
    assert_int_equal(do_init(&e, "my-txn").r.error, KERR_COORDINATOR_LOAD_IN_PROGRESS);
    txn_load_done(e.tc, p);
    struct res x = do_init(&e, "my-txn");
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.r.error, KERR_NONE);
    assert_int_equal(e.nrecords, 1);
    assert_int_equal(e.records[0].partition, p);   /* written to the id's own partition */
    assert_int_equal(txn_unload_partition(e.tc, p), 1);
    assert_int_equal(do_init(&e, "my-txn").r.error, KERR_NOT_COORDINATOR);
    tenv_destroy(&e);
}

static void test_init_new_id_then_bump(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    struct arena a;
    arena_init(&a, 1 << 20);

    struct res x = do_init(&e, "txn-1");
    assert_int_equal(x.r.error, KERR_NONE);
    assert_int_equal(x.r.producer_id, 1000);
    assert_int_equal(x.r.producer_epoch, 0);
    struct txn_log_value v = last_value(&e, &a);
    assert_int_equal(v.status, TXN_EMPTY);
    assert_int_equal(v.producer_id, 1000);
    assert_int_equal(v.producer_epoch, 0);
    assert_int_equal(v.timeout_ms, TIMEOUT);
    assert_int_equal(v.n_topics, -1);            /* Empty: null partitions */
    assert_int_equal(v.start_ms, -1);
    assert_int_equal(v.last_update_ms, e.now);
    const uint8_t key[] = {0, 0, 0, 5, 't', 'x', 'n', '-', '1'};
    assert_int_equal(e.records[0].key_len, sizeof(key));
    assert_memory_equal(e.records[0].key, key, sizeof(key));

    /* a new producer with the same id: same producer id, next epoch, new timeout */
    x = do_init_with(&e, "txn-1", 5000, -1, -1);
    assert_int_equal(x.r.producer_id, 1000);
    assert_int_equal(x.r.producer_epoch, 1);
    assert_int_equal(last_value(&e, &a).timeout_ms, 5000);
    assert_int_equal(e.next_pid, 1001);          /* one id taken from the source */
    arena_reset(&a);
    tenv_destroy(&e);
}

static void test_init_refusals(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    assert_int_equal(do_init_with(&e, "txn-1", 0, -1, -1).r.error,
                     KERR_INVALID_TRANSACTION_TIMEOUT);
    assert_int_equal(do_init_with(&e, "txn-1", 900001, -1, -1).r.error,
                     KERR_INVALID_TRANSACTION_TIMEOUT);
    assert_int_equal(do_init_with(&e, "txn-1", 900000, -1, -1).r.error, KERR_NONE);
    assert_int_equal(do_init_with(&e, "", TIMEOUT, -1, -1).r.error, KERR_INVALID_REQUEST);
    assert_int_equal(do_init_with(&e, "txn-1", TIMEOUT, 1000, -1).r.error, KERR_INVALID_REQUEST);
    e.pid_error = KERR_COORDINATOR_LOAD_IN_PROGRESS;
    own(&e, "my-txn");
    assert_int_equal(do_init(&e, "my-txn").r.error, KERR_COORDINATOR_LOAD_IN_PROGRESS);
    tenv_destroy(&e);
}

/* Init, add, commit: PrepareCommit written and answered, markers, CompleteCommit written. */
static void test_commit_flow(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    struct arena a;
    arena_init(&a, 1 << 20);
    struct res x = do_init(&e, "txn-1");
    int64_t pid = x.r.producer_id;
    int16_t ep = x.r.producer_epoch;

    int64_t t0 = e.now += 10;
    assert_int_equal(do_add(&e, "txn-1", pid, ep, T01, 2).r.error, KERR_NONE);
    struct txn_log_value v = last_value(&e, &a);
    assert_int_equal(v.status, TXN_ONGOING);
    assert_int_equal(v.start_ms, t0);
    assert_int_equal(v.n_topics, 1);
    assert_string_equal(v.topics[0].topic, "t");
    assert_int_equal(v.topics[0].n_partitions, 2);
    /* partitions already in: answered without a write */
    int before = e.nrecords;
    e.now += 10;
    assert_int_equal(do_add(&e, "txn-1", pid, ep, &T01[1], 1).r.error, KERR_NONE);
    assert_int_equal(e.nrecords, before);
    struct res off = {0};
    txn_add_offsets(e.tc, "txn-1", pid, ep, 12, on_res, &off);
    assert_int_equal(off.r.error, KERR_NONE);
    v = last_value(&e, &a);
    assert_int_equal(v.n_topics, 2);
    assert_string_equal(v.topics[0].topic, "__consumer_offsets");
    assert_int_equal(v.topics[0].partitions[0], 12);
    assert_int_equal(v.start_ms, t0);             /* the transaction started at the first add */

    x = do_end(&e, "txn-1", pid, ep, true);
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.r.error, KERR_NONE);       /* answered once PrepareCommit is written */
    v = last_value(&e, &a);
    assert_int_equal(v.status, TXN_PREPARE_COMMIT);
    assert_int_equal(v.n_topics, 2);
    assert_int_equal(e.nmarkers, 1);
    assert_true(e.markers[0].commit);
    assert_int_equal(e.markers[0].producer_id, pid);
    assert_int_equal(e.markers[0].producer_epoch, ep);
    assert_int_equal(e.markers[0].coordinator_epoch, COORD_EPOCH);
    assert_int_equal(e.markers[0].n_partitions, 3);

    /* while the markers are out */
    assert_int_equal(do_end(&e, "txn-1", pid, ep, true).r.error, KERR_CONCURRENT_TRANSACTIONS);
    assert_int_equal(do_end(&e, "txn-1", pid, ep, false).r.error, KERR_INVALID_TXN_STATE);
    assert_int_equal(do_add(&e, "txn-1", pid, ep, T01, 1).r.error,
                     KERR_CONCURRENT_TRANSACTIONS);
    assert_int_equal(do_init(&e, "txn-1").r.error, KERR_CONCURRENT_TRANSACTIONS);
    int16_t errs[2];
    assert_int_equal(txn_verify_partitions(e.tc, "txn-1", pid, ep, T01, 2, errs),
                     KERR_CONCURRENT_TRANSACTIONS);
    assert_int_equal(state_of(&e, "txn-1"), TXN_PREPARE_COMMIT);

    e.now += 5;
    tenv_markers_done(&e, 0, KERR_NONE);
    v = last_value(&e, &a);
    assert_int_equal(v.status, TXN_COMPLETE_COMMIT);
    assert_int_equal(v.n_topics, 0);              /* an empty list, not null */
    assert_int_equal(v.start_ms, t0);
    assert_int_equal(v.last_update_ms, e.now);
    assert_int_equal(state_of(&e, "txn-1"), TXN_COMPLETE_COMMIT);
    /* a retried EndTxn of the same result succeeds, the other is refused */
    assert_int_equal(do_end(&e, "txn-1", pid, ep, true).r.error, KERR_NONE);
    assert_int_equal(do_end(&e, "txn-1", pid, ep, false).r.error, KERR_INVALID_TXN_STATE);
    /* the next transaction starts anew */
    e.now += 100;
    assert_int_equal(do_add(&e, "txn-1", pid, ep, T01, 1).r.error, KERR_NONE);
    v = last_value(&e, &a);
    assert_int_equal(v.start_ms, e.now);
    assert_int_equal(v.topics[0].n_partitions, 1);
    arena_reset(&a);
    tenv_destroy(&e);
}

static void test_abort_flow_and_empty_end(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    struct res x = do_init(&e, "txn-1");
    int64_t pid = x.r.producer_id;
    assert_int_equal(do_end(&e, "txn-1", pid, 0, false).r.error, KERR_INVALID_TXN_STATE);
    assert_int_equal(do_add(&e, "txn-1", pid, 0, T01, 2).r.error, KERR_NONE);
    assert_int_equal(do_end(&e, "txn-1", pid, 0, false).r.error, KERR_NONE);
    assert_int_equal(e.nmarkers, 1);
    assert_false(e.markers[0].commit);
    assert_int_equal(do_end(&e, "txn-1", pid, 0, false).r.error, KERR_CONCURRENT_TRANSACTIONS);
    assert_int_equal(do_end(&e, "txn-1", pid, 0, true).r.error, KERR_INVALID_TXN_STATE);
    tenv_markers_done(&e, 0, KERR_NONE);
    assert_int_equal(state_of(&e, "txn-1"), TXN_COMPLETE_ABORT);
    assert_int_equal(do_end(&e, "txn-1", pid, 0, false).r.error, KERR_NONE);
    tenv_destroy(&e);
}

static void test_fencing(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    own(&e, "my-txn");
    struct res a = do_init(&e, "txn-1");
    struct res b = do_init(&e, "txn-1");   /* a zombie's successor */
    assert_int_equal(b.r.producer_id, a.r.producer_id);
    assert_int_equal(b.r.producer_epoch, a.r.producer_epoch + 1);
    int64_t pid = a.r.producer_id;
    int16_t old = a.r.producer_epoch;
    assert_int_equal(do_add(&e, "txn-1", pid, old, T01, 2).r.error, KERR_PRODUCER_FENCED);
    assert_int_equal(do_end(&e, "txn-1", pid, old, true).r.error, KERR_PRODUCER_FENCED);
    /* an epoch from the future is not the producer's either */
    assert_int_equal(do_end(&e, "txn-1", pid, old + 5, true).r.error, KERR_PRODUCER_FENCED);
    assert_int_equal(do_add(&e, "txn-1", pid + 1, b.r.producer_epoch, T01, 2).r.error,
                     KERR_INVALID_PRODUCER_ID_MAPPING);
    assert_int_equal(do_add(&e, "my-txn", pid, 0, T01, 2).r.error,
                     KERR_INVALID_PRODUCER_ID_MAPPING);
    assert_int_equal(do_add(&e, "", pid, 0, T01, 2).r.error, KERR_INVALID_REQUEST);
    /* older clients read PRODUCER_FENCED as INVALID_PRODUCER_EPOCH */
    assert_int_equal(txn_client_error(KERR_PRODUCER_FENCED, false), KERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(txn_client_error(KERR_PRODUCER_FENCED, true), KERR_PRODUCER_FENCED);
    assert_int_equal(txn_client_error(KERR_CONCURRENT_TRANSACTIONS, false),
                     KERR_CONCURRENT_TRANSACTIONS);

    /* InitProducerId v3+ with the producer's own id and epoch (recovering from an error) */
    assert_int_equal(do_init_with(&e, "txn-1", TIMEOUT, pid, old).r.error, KERR_PRODUCER_FENCED);
    struct res c = do_init_with(&e, "txn-1", TIMEOUT, pid, b.r.producer_epoch);
    assert_int_equal(c.r.error, KERR_NONE);
    assert_int_equal(c.r.producer_epoch, b.r.producer_epoch + 1);
    /* its retry (the answer was lost) gets the same epoch again, not another bump */
    struct res d = do_init_with(&e, "txn-1", TIMEOUT, pid, b.r.producer_epoch);
    assert_int_equal(d.r.error, KERR_NONE);
    assert_int_equal(d.r.producer_epoch, c.r.producer_epoch);
    /* another producer id altogether is fenced */
    assert_int_equal(do_init_with(&e, "txn-1", TIMEOUT, 4242, 0).r.error, KERR_PRODUCER_FENCED);
    tenv_destroy(&e);
}

/* InitProducerId on an ongoing transaction: it is aborted with a bumped epoch (the old producer
 * fenced) and the new one told CONCURRENT_TRANSACTIONS until the abort completes. */
static void test_init_fences_ongoing_transaction(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    struct arena ar;
    arena_init(&ar, 1 << 20);
    struct res a = do_init(&e, "txn-1");
    int64_t pid = a.r.producer_id;
    assert_int_equal(do_add(&e, "txn-1", pid, 0, T01, 2).r.error, KERR_NONE);

    struct res b = do_init(&e, "txn-1");
    assert_int_equal(b.r.error, KERR_CONCURRENT_TRANSACTIONS);
    struct txn_log_value v = last_value(&e, &ar);
    assert_int_equal(v.status, TXN_PREPARE_ABORT);
    assert_int_equal(v.producer_epoch, 1);
    assert_int_equal(v.n_topics, 1);
    assert_int_equal(e.nmarkers, 1);
    assert_false(e.markers[0].commit);
    assert_int_equal(e.markers[0].producer_epoch, 1);
    /* the old producer is fenced at once */
    assert_int_equal(do_end(&e, "txn-1", pid, 0, true).r.error, KERR_PRODUCER_FENCED);
    assert_int_equal(do_init(&e, "txn-1").r.error, KERR_CONCURRENT_TRANSACTIONS);
    tenv_markers_done(&e, 0, KERR_NONE);
    assert_int_equal(state_of(&e, "txn-1"), TXN_COMPLETE_ABORT);
    struct res c = do_init(&e, "txn-1");
    assert_int_equal(c.r.error, KERR_NONE);
    assert_int_equal(c.r.producer_id, pid);
    assert_int_equal(c.r.producer_epoch, 2);
    arena_reset(&ar);
    tenv_destroy(&e);
}

/* A partition replayed with an exhausted epoch: the next InitProducerId takes a new producer id
 * at epoch 0; a retry of that call by the same producer gets the same answer. */
static void test_epoch_exhaustion_rotates_producer_id(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    int32_t p = txn_partition_for("txn-1", 50);
    txn_load_begin(e.tc, p, COORD_EPOCH);
    struct txn_buf k, val;
    struct txn_log_value v = {.producer_id = 77, .prev_producer_id = -1, .next_producer_id = -1,
                              .producer_epoch = INT16_MAX - 1, .timeout_ms = TIMEOUT,
                              .status = TXN_COMPLETE_COMMIT, .n_topics = 0,
                              .last_update_ms = e.now, .start_ms = e.now};
    assert_int_equal(txn_log_encode_key(&k, "txn-1"), KERR_NONE);
    assert_int_equal(txn_log_encode_value(&val, 0, &v), KERR_NONE);
    assert_int_equal(txn_replay_record(e.tc, p, k.p, (int32_t)k.len, val.p, (int32_t)val.len), 0);
    free(k.p);
    free(val.p);
    txn_load_done(e.tc, p);

    struct res x = do_init_with(&e, "txn-1", TIMEOUT, 77, INT16_MAX - 1);
    assert_int_equal(x.r.error, KERR_NONE);
    assert_int_equal(x.r.producer_id, 1000);
    assert_int_equal(x.r.producer_epoch, 0);
    struct res again = do_init_with(&e, "txn-1", TIMEOUT, 77, INT16_MAX - 1);
    assert_int_equal(again.r.error, KERR_NONE);
    assert_int_equal(again.r.producer_id, 1000);
    assert_int_equal(again.r.producer_epoch, 0);
    assert_int_equal(e.next_pid, 1001);
    /* a fresh producer bumps the new id normally */
    struct res y = do_init(&e, "txn-1");
    assert_int_equal(y.r.producer_id, 1000);
    assert_int_equal(y.r.producer_epoch, 1);
    tenv_destroy(&e);
}

static void test_timeout_aborts_with_fence(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    struct arena ar;
    arena_init(&ar, 1 << 20);
    struct res a = do_init(&e, "txn-1");
    int64_t pid = a.r.producer_id;
    int64_t t0 = e.now;
    assert_int_equal(do_add(&e, "txn-1", pid, 0, T01, 2).r.error, KERR_NONE);
    e.now = t0 + TIMEOUT;
    assert_int_equal(txn_abort_timed_out(e.tc), 0);   /* start + timeout < now, strictly */
    e.now = t0 + TIMEOUT + 1;
    assert_int_equal(txn_abort_timed_out(e.tc), 1);
    struct txn_log_value v = last_value(&e, &ar);
    assert_int_equal(v.status, TXN_PREPARE_ABORT);
    assert_int_equal(v.producer_epoch, 1);
    assert_int_equal(e.nmarkers, 1);
    assert_false(e.markers[0].commit);
    assert_int_equal(txn_abort_timed_out(e.tc), 0);   /* not twice */
    assert_int_equal(do_end(&e, "txn-1", pid, 0, true).r.error, KERR_PRODUCER_FENCED);
    tenv_markers_done(&e, 0, KERR_NONE);
    assert_int_equal(state_of(&e, "txn-1"), TXN_COMPLETE_ABORT);
    arena_reset(&ar);
    tenv_destroy(&e);
}

/* Failed writes: the state stays, the client is told Kafka's coordinator error, a failed fence
 * bumps the epoch only once, failed markers and completion writes are retried by the tick. */
static void test_failed_writes(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    struct arena ar;
    arena_init(&ar, 1 << 20);
    struct res a = do_init(&e, "txn-1");
    int64_t pid = a.r.producer_id;

    e.fail_appends = 1;
    e.append_error = KERR_NOT_LEADER_OR_FOLLOWER;
    assert_int_equal(do_init(&e, "txn-1").r.error, KERR_NOT_COORDINATOR);
    e.fail_appends = 1;
    e.append_error = KERR_NOT_ENOUGH_REPLICAS;
    assert_int_equal(do_add(&e, "txn-1", pid, 0, T01, 2).r.error, KERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(state_of(&e, "txn-1"), TXN_EMPTY);
    assert_int_equal(do_add(&e, "txn-1", pid, 0, T01, 2).r.error, KERR_NONE);
    e.fail_appends = 1;
    e.append_error = KERR_MESSAGE_TOO_LARGE;
    assert_int_equal(do_end(&e, "txn-1", pid, 0, true).r.error, KERR_UNKNOWN_SERVER_ERROR);
    assert_int_equal(state_of(&e, "txn-1"), TXN_ONGOING);

    /* the timeout's fence fails twice: the epoch is bumped once */
    e.now += TIMEOUT + 1;
    e.fail_appends = 2;
    e.append_error = KERR_REQUEST_TIMED_OUT;
    assert_int_equal(txn_abort_timed_out(e.tc), 1);
    assert_int_equal(txn_abort_timed_out(e.tc), 1);
    assert_int_equal(last_value(&e, &ar).producer_epoch, 1);
    assert_int_equal(e.nmarkers, 0);
    assert_int_equal(txn_abort_timed_out(e.tc), 1);
    assert_int_equal(last_value(&e, &ar).producer_epoch, 1);
    assert_int_equal(last_value(&e, &ar).status, TXN_PREPARE_ABORT);
    assert_int_equal(e.nmarkers, 1);

    /* markers fail: resent by the next tick; the completion write fails: retried alone */
    tenv_markers_done(&e, 0, KERR_NOT_LEADER_OR_FOLLOWER);
    assert_int_equal(state_of(&e, "txn-1"), TXN_PREPARE_ABORT);
    assert_int_equal(txn_abort_timed_out(e.tc), 1);
    assert_int_equal(e.nmarkers, 2);
    e.fail_appends = 1;
    e.append_error = KERR_NOT_ENOUGH_REPLICAS;
    tenv_markers_done(&e, 1, KERR_NONE);
    assert_int_equal(state_of(&e, "txn-1"), TXN_PREPARE_ABORT);
    int before = e.nrecords;
    assert_int_equal(txn_abort_timed_out(e.tc), 1);
    assert_int_equal(e.nmarkers, 2);                 /* no markers again */
    assert_int_equal(e.nrecords, before + 1);
    assert_int_equal(state_of(&e, "txn-1"), TXN_COMPLETE_ABORT);
    arena_reset(&ar);
    tenv_destroy(&e);
}

/* A write in flight: the id's other requests answer CONCURRENT_TRANSACTIONS; unloading the
 * partition ends it as NOT_COORDINATOR. */
static void test_pending_write_and_unload(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    struct res a = do_init(&e, "txn-1");
    e.hold = true;
    /* answered later: the result lives here, not in a helper's frame */
    struct res add = {0};
    txn_add_partitions(e.tc, "txn-1", a.r.producer_id, 0, T01, 2, on_res, &add);
    assert_int_equal(add.calls, 0);
    assert_int_equal(do_init(&e, "txn-1").r.error, KERR_CONCURRENT_TRANSACTIONS);
    assert_int_equal(do_add(&e, "txn-1", a.r.producer_id, 0, T01, 1).r.error,
                     KERR_CONCURRENT_TRANSACTIONS);
    assert_int_equal(do_end(&e, "txn-1", a.r.producer_id, 0, true).r.error,
                     KERR_CONCURRENT_TRANSACTIONS);
    /* verification looks at written state only */
    int16_t errs[2] = {-2, -2};
    assert_int_equal(txn_verify_partitions(e.tc, "txn-1", a.r.producer_id, 0, T01, 2, errs),
                     KERR_NONE);
    assert_int_equal(errs[0], KERR_TRANSACTION_ABORTABLE);
    tenv_release(&e, KERR_NONE);
    assert_int_equal(add.calls, 1);
    assert_int_equal(add.r.error, KERR_NONE);
    assert_int_equal(txn_verify_partitions(e.tc, "txn-1", a.r.producer_id, 0, T01, 2, errs),
                     KERR_NONE);
    assert_int_equal(errs[0], KERR_NONE);
    assert_int_equal(errs[1], KERR_NONE);
    struct txn_partition other = {"u", 0};
    assert_int_equal(txn_verify_partitions(e.tc, "txn-1", a.r.producer_id, 0, &other, 1, errs),
                     KERR_NONE);
    assert_int_equal(errs[0], KERR_TRANSACTION_ABORTABLE);
    assert_int_equal(txn_verify_partitions(e.tc, "txn-1", a.r.producer_id, 1, T01, 2, errs),
                     KERR_PRODUCER_FENCED);

    struct res end = {0};
    txn_end(e.tc, "txn-1", a.r.producer_id, 0, true, on_res, &end);
    assert_int_equal(end.calls, 0);
    txn_unload_partition(e.tc, txn_partition_for("txn-1", 50));
    tenv_release(&e, KERR_NONE);
    assert_int_equal(end.calls, 1);
    assert_int_equal(end.r.error, KERR_NOT_COORDINATOR);
    assert_int_equal(e.nmarkers, 0);
    tenv_destroy(&e);
}

static void test_expiry_of_idle_ids(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    cfg.id_expiration_ms = 1000;
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    own(&e, "my-txn");
    struct res a = do_init(&e, "txn-1");
    struct res b = do_init(&e, "my-txn");
    assert_int_equal(do_add(&e, "my-txn", b.r.producer_id, 0, T01, 1).r.error, KERR_NONE);
    e.now += 999;
    assert_int_equal(txn_expire_ids(e.tc), 0);
    e.now += 1000;
    assert_int_equal(txn_expire_ids(e.tc), 1);       /* the ongoing one stays */
    struct tenv_record *r = &e.records[e.nrecords - 1];
    assert_null(r->value);
    assert_int_equal(r->partition, txn_partition_for("txn-1", 50));
    struct txn_desc d;
    assert_int_equal(txn_describe(e.tc, "txn-1", &d), KERR_NONE);
    assert_false(d.found);
    assert_int_equal(do_add(&e, "txn-1", a.r.producer_id, 0, T01, 1).r.error,
                     KERR_INVALID_PRODUCER_ID_MAPPING);
    struct res c = do_init(&e, "txn-1");
    assert_int_not_equal(c.r.producer_id, a.r.producer_id);
    assert_int_equal(c.r.producer_epoch, 0);
    assert_int_equal(state_of(&e, "my-txn"), TXN_ONGOING);
    tenv_destroy(&e);
}

static void test_bounds(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    cfg.max_transactional_ids = 1;
    cfg.max_partitions_per_txn = 2;
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    own(&e, "my-txn");
    struct res a = do_init(&e, "txn-1");
    assert_int_equal(do_init(&e, "my-txn").r.error, KERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(do_add(&e, "txn-1", a.r.producer_id, 0, T01, 2).r.error, KERR_NONE);
    struct txn_partition third = {"t", 2};
    assert_int_equal(do_add(&e, "txn-1", a.r.producer_id, 0, &third, 1).r.error,
                     KERR_INVALID_REQUEST);
    tenv_destroy(&e);
}

/* The records one coordinator wrote, replayed by another: the same state, tombstones delete, the
 * transactions left in PrepareCommit / PrepareAbort are completed after the load. */
static void test_load_replays_and_completes(void **state)
{
    (void)state;
    for (int16_t version = 0; version <= 1; version++) {
        struct tenv e;
        struct txn_config cfg = tenv_config();
        cfg.log_value_version = version;
        cfg.num_partitions = 1;   /* all ids in the one partition that is loaded below */
        tenv_init(&e, &cfg);
        const char *ids[] = {"a-0", "b-1", "c-2", "d-3"};
        int32_t p = 0;
        txn_load_begin(e.tc, p, COORD_EPOCH);
        txn_load_done(e.tc, p);
        struct res r[4];
        for (int i = 0; i < 4; i++)
            r[i] = do_init(&e, ids[i]);
        for (int i = 0; i < 3; i++)
            assert_int_equal(do_add(&e, ids[i], r[i].r.producer_id, 0, T01, 2).r.error,
                             KERR_NONE);
        assert_int_equal(do_end(&e, ids[0], r[0].r.producer_id, 0, true).r.error, KERR_NONE);
        assert_int_equal(do_end(&e, ids[1], r[1].r.producer_id, 0, false).r.error, KERR_NONE);
        /* ids[2] stays Ongoing; ids[3] expires */
        e.now += cfg.id_expiration_ms + 1;
        assert_int_equal(txn_expire_ids(e.tc), 1);

        struct tenv f;
        tenv_init(&f, &cfg);
        txn_load_begin(f.tc, p, COORD_EPOCH + 1);
        for (int i = 0; i < e.nrecords; i++) {
            struct tenv_record *rec = &e.records[i];
            assert_int_equal(txn_replay_record(f.tc, p, rec->key, rec->key_len, rec->value,
                                               rec->value_len), 0);
        }
        /* undecodable records are refused, unknown key versions skipped */
        const uint8_t junk[] = {0, 0, 0, 9, 'x'};
        assert_int_equal(txn_replay_record(f.tc, p, junk, sizeof(junk), NULL, -1), -1);
        const uint8_t future[] = {0, 7, 0, 1, 'x'};
        assert_int_equal(txn_replay_record(f.tc, p, future, sizeof(future), junk, 5), 1);
        assert_int_equal(do_init(&f, ids[0]).r.error, KERR_COORDINATOR_LOAD_IN_PROGRESS);
        assert_int_equal(txn_load_done(f.tc, p), 2);
        assert_int_equal(f.nmarkers, 2);
        for (int i = 0; i < 2; i++) {
            const struct tenv_marker *m = &f.markers[i];
            int who = strcmp(m->id, ids[0]) == 0 ? 0 : 1;
            assert_int_equal(m->commit, who == 0);
            assert_int_equal(m->producer_id, r[who].r.producer_id);
            assert_int_equal(m->coordinator_epoch, COORD_EPOCH + 1);
            assert_int_equal(m->n_partitions, 2);
        }
        struct txn_desc d;
        assert_int_equal(txn_describe(f.tc, ids[2], &d), KERR_NONE);
        assert_true(d.found);
        assert_int_equal(d.state, TXN_ONGOING);
        assert_int_equal(d.producer_id, r[2].r.producer_id);
        assert_int_equal(d.n_partitions, 2);
        assert_int_equal(d.timeout_ms, TIMEOUT);
        assert_int_equal(txn_describe(f.tc, ids[3], &d), KERR_NONE);
        assert_false(d.found);
        tenv_markers_done(&f, 0, KERR_NONE);
        tenv_markers_done(&f, 1, KERR_NONE);
        assert_int_equal(state_of(&f, ids[0]), TXN_COMPLETE_COMMIT);
        assert_int_equal(state_of(&f, ids[1]), TXN_COMPLETE_ABORT);
        /* the loaded producer goes on where it was */
        assert_int_equal(do_end(&f, ids[2], r[2].r.producer_id, 0, true).r.error, KERR_NONE);
        /* e's markers were never completed: a host drops them at shutdown */
        tenv_destroy(&f);
        tenv_destroy(&e);
    }
}

/* The scenario Kafka 4.1.1 ran (txn_kafka_records.h), on our coordinator with Kafka's clock
 * readings and producer ids: the same records, byte for byte, up to Kafka's fence (which Kafka 4
 * writes as transaction version 2, a tag we do not write: the rest of those records is the same). */
static int64_t kafka_ts(int i, struct arena *a)
{
    uint8_t value[256];
    int n = kafka_txn_unhex(KAFKA_TXN_RECORDS[i].value_hex, value);
    struct txn_log_value v;
    assert_int_equal(txn_log_decode_value(value, (size_t)n, a, &v), 0);
    return v.last_update_ms;
}

static void assert_kafka_record(struct tenv *e, int i, bool exact, struct arena *a)
{
    uint8_t key[256], value[256];
    int kn = kafka_txn_unhex(KAFKA_TXN_RECORDS[i].key_hex, key);
    int vn = kafka_txn_unhex(KAFKA_TXN_RECORDS[i].value_hex, value);
    assert_int_equal(e->nrecords, i + 1);
    struct tenv_record *r = &e->records[i];
    assert_int_equal(r->key_len, kn);
    assert_memory_equal(r->key, key, (size_t)kn);
    if (exact) {
        assert_int_equal(r->value_len, vn);
        assert_memory_equal(r->value, value, (size_t)vn);
        return;
    }
    struct txn_log_value ours, theirs;
    assert_int_equal(txn_log_decode_value(r->value, (size_t)r->value_len, a, &ours), 0);
    assert_int_equal(txn_log_decode_value(value, (size_t)vn, a, &theirs), 0);
    theirs.client_txn_version = 0;
    struct txn_buf b1, b2;
    assert_int_equal(txn_log_encode_value(&b1, 1, &ours), KERR_NONE);
    assert_int_equal(txn_log_encode_value(&b2, 1, &theirs), KERR_NONE);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.p, b2.p, b1.len);
    free(b1.p);
    free(b2.p);
}

static void test_same_records_as_kafka(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    cfg.num_partitions = 1;
    cfg.log_value_version = 1;
    tenv_init(&e, &cfg);
    e.next_pid = 0;
    txn_load_begin(e.tc, 0, 0);
    txn_load_done(e.tc, 0);
    struct arena a;
    arena_init(&a, 1 << 20);
    static const struct txn_partition cap = {"cap", 0};
    const char *ids[2] = {"cap-txn", "cap-txn2"};
    int i = 0;
    for (int t = 0; t < 2; t++) {
        e.now = kafka_ts(i, &a);
        struct res x = do_init(&e, ids[t]);
        assert_int_equal(x.r.error, KERR_NONE);
        assert_kafka_record(&e, i++, true, &a);
        e.now = kafka_ts(i, &a);
        assert_int_equal(do_add(&e, ids[t], x.r.producer_id, 0, &cap, 1).r.error, KERR_NONE);
        assert_kafka_record(&e, i++, true, &a);
        e.now = kafka_ts(i, &a);
        assert_int_equal(do_end(&e, ids[t], x.r.producer_id, 0, t == 0).r.error, KERR_NONE);
        assert_kafka_record(&e, i++, true, &a);
        e.now = kafka_ts(i, &a);
        tenv_markers_done(&e, t, KERR_NONE);
        assert_kafka_record(&e, i++, true, &a);
    }
    e.now = kafka_ts(i, &a);
    assert_int_equal(do_add(&e, "cap-txn2", 1, 0, &cap, 1).r.error, KERR_NONE);
    assert_kafka_record(&e, i++, true, &a);
    /* the second producer fences the first */
    e.now = kafka_ts(i, &a);
    assert_int_equal(do_init(&e, "cap-txn2").r.error, KERR_CONCURRENT_TRANSACTIONS);
    assert_kafka_record(&e, i++, false, &a);
    e.now = kafka_ts(i, &a);
    tenv_markers_done(&e, 2, KERR_NONE);
    assert_kafka_record(&e, i++, false, &a);
    e.now = kafka_ts(i, &a);
    struct res y = do_init(&e, "cap-txn2");
    assert_int_equal(y.r.producer_epoch, 2);
    assert_kafka_record(&e, i++, false, &a);
    assert_int_equal(i, KAFKA_TXN_RECORD_COUNT);
    arena_reset(&a);
    tenv_destroy(&e);
}

struct listed {
    int n;
    char ids[8][16];
};

static void on_listed(void *arg, const char *id, int64_t pid, enum txn_state st)
{
    struct listed *l = arg;
    (void)pid;
    (void)st;
    if (l->n < 8)
        strncpy(l->ids[l->n++], id, 15);
}

static void test_list_filters(void **state)
{
    (void)state;
    struct tenv e;
    struct txn_config cfg = tenv_config();
    tenv_init(&e, &cfg);
    own(&e, "txn-1");
    own(&e, "my-txn");
    struct res a = do_init(&e, "txn-1");
    struct res b = do_init(&e, "my-txn");
    e.now += 10;
    assert_int_equal(do_add(&e, "my-txn", b.r.producer_id, 0, T01, 1).r.error, KERR_NONE);
    e.now += 100;
    struct listed l = {0};
    struct txn_list_filter all = {NULL, 0, NULL, 0, -1};
    assert_int_equal(txn_list(e.tc, &all, on_listed, &l), KERR_NONE);
    assert_int_equal(l.n, 2);
    enum txn_state ongoing = TXN_ONGOING;
    struct txn_list_filter by_state = {&ongoing, 1, NULL, 0, -1};
    memset(&l, 0, sizeof(l));
    txn_list(e.tc, &by_state, on_listed, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], "my-txn");
    struct txn_list_filter by_pid = {NULL, 0, &a.r.producer_id, 1, -1};
    memset(&l, 0, sizeof(l));
    txn_list(e.tc, &by_pid, on_listed, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], "txn-1");
    /* open 100 ms: "longer than 100" leaves it out, "longer than 99" keeps it */
    struct txn_list_filter by_age = {&ongoing, 1, NULL, 0, 100};
    memset(&l, 0, sizeof(l));
    txn_list(e.tc, &by_age, on_listed, &l);
    assert_int_equal(l.n, 0);
    by_age.min_duration_ms = 99;
    txn_list(e.tc, &by_age, on_listed, &l);
    assert_int_equal(l.n, 1);
    txn_load_begin(e.tc, 3, 1);
    assert_int_equal(txn_list(e.tc, &all, on_listed, &l), KERR_COORDINATOR_LOAD_IN_PROGRESS);
    tenv_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_coordinator_until_loaded),
        cmocka_unit_test(test_init_new_id_then_bump),
        cmocka_unit_test(test_init_refusals),
        cmocka_unit_test(test_commit_flow),
        cmocka_unit_test(test_abort_flow_and_empty_end),
        cmocka_unit_test(test_fencing),
        cmocka_unit_test(test_init_fences_ongoing_transaction),
        cmocka_unit_test(test_epoch_exhaustion_rotates_producer_id),
        cmocka_unit_test(test_timeout_aborts_with_fence),
        cmocka_unit_test(test_failed_writes),
        cmocka_unit_test(test_pending_write_and_unload),
        cmocka_unit_test(test_expiry_of_idle_ids),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_load_replays_and_completes),
        cmocka_unit_test(test_same_records_as_kafka),
        cmocka_unit_test(test_list_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
