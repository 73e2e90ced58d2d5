/* test_group: the classic group state machine on a fake clock — two-step joins, the initial
 * rebalance delay, leader election, protocol selection, SyncGroup, heartbeats, session expiry,
 * LeaveGroup, static membership, and the errors clients act on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_test_env.h"

/* ---- capturing callbacks ---- */

struct join_out {
    bool called;
    int16_t error;
    int32_t generation;
    char protocol[64];
    char leader[128];
    char member_id[128];
    int n_members;
    char members[8][128];
    bool skip_assignment;
};

static void on_join(void *arg, const struct gc_join_result *r)
{
    struct join_out *o = arg;
    assert_false(o->called); /* exactly once */
    o->called = true;
    o->error = r->error;
    o->generation = r->generation;
    snprintf(o->protocol, sizeof(o->protocol), "%s", r->protocol_name ? r->protocol_name : "");
    snprintf(o->leader, sizeof(o->leader), "%s", r->leader);
    snprintf(o->member_id, sizeof(o->member_id), "%s", r->member_id);
    o->n_members = r->n_members;
    o->skip_assignment = r->skip_assignment;
    for (int i = 0; i < r->n_members && i < 8; i++)
        snprintf(o->members[i], sizeof(o->members[i]), "%s", r->members[i].member_id);
}

struct sync_out {
    bool called;
    int16_t error;
    char assignment[64];
};

static void on_sync(void *arg, const struct gc_sync_result *r)
{
    struct sync_out *o = arg;
    assert_false(o->called);
    o->called = true;
    o->error = r->error;
    int n = r->assignment_len < 63 ? r->assignment_len : 63;
    memcpy(o->assignment, r->assignment ? (const char *)r->assignment : "", (size_t)(n > 0 ? n : 0));
    o->assignment[n > 0 ? n : 0] = '\0';
}

static const struct gc_protocol RANGE[] = {{"range", (const uint8_t *)"sub", 3}};
static const struct gc_protocol RANGE_RR[] = {{"range", (const uint8_t *)"s1", 2},
                                              {"roundrobin", (const uint8_t *)"s2", 2}};
static const struct gc_protocol RR_RANGE[] = {{"roundrobin", (const uint8_t *)"s2", 2},
                                              {"range", (const uint8_t *)"s1", 2}};
static const struct gc_protocol STICKY[] = {{"sticky", (const uint8_t *)"x", 1}};

static struct gc_join_args join_args(const char *group, const char *member, int16_t version)
{
    struct gc_join_args a = {
        .version = version,
        .group_id = group,
        .member_id = member,
        .client_id = "client",
        .client_host = "/127.0.0.1",
        .session_timeout_ms = 10000,
        .rebalance_timeout_ms = 30000,
        .protocol_type = "consumer",
        .protocols = RANGE,
        .n_protocols = 1,
    };
    return a;
}

static void join(struct fake_env *e, struct gc_join_args a, struct join_out *o)
{
    memset(o, 0, sizeof(*o));
    gc_join(e->gc, &a, on_join, o);
}

static void sync_member(struct fake_env *e, const char *group, int32_t gen, const char *member,
                        const struct gc_assignment *as, int n, struct sync_out *o)
{
    memset(o, 0, sizeof(*o));
    struct gc_sync_args a = {group, gen, member, NULL, NULL, NULL, as, n};
    gc_sync(e->gc, &a, on_sync, o);
}

static enum gc_group_state state_of(struct fake_env *e, const char *group)
{
    struct gc_group_desc d;
    gc_describe(e->gc, group, &d);
    enum gc_group_state s = d.state;
    gc_describe_free(&d);
    return s;
}

/* A one-member group through both join steps and the sync; returns the member id in id. */
static void stable_single(struct fake_env *e, const char *group, char *id, size_t idlen)
{
    struct join_out j;
    join(e, join_args(group, "", 5), &j);
    assert_int_equal(j.error, KERR_MEMBER_ID_REQUIRED);
    char pending[128];
    snprintf(pending, sizeof(pending), "%s", j.member_id);
    join(e, join_args(group, pending, 5), &j);
    fake_advance(e, 1);
    assert_true(j.called);
    assert_int_equal(j.error, KERR_NONE);
    snprintf(id, idlen, "%s", j.member_id);
    struct gc_assignment as = {id, (const uint8_t *)"A", 1};
    struct sync_out s;
    sync_member(e, group, j.generation, id, &as, 1, &s);
    assert_true(s.called);
    assert_int_equal(s.error, KERR_NONE);
    assert_int_equal(state_of(e, group), GC_STABLE);
}

/* ---- tests ---- */

static void test_two_step_join_and_member_id_format(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out j;
    join(e, join_args("g", "", 4), &j);
    assert_true(j.called);
    assert_int_equal(j.error, KERR_MEMBER_ID_REQUIRED);
    /* "<client_id>-<uuid>" */
    assert_int_equal(strlen(j.member_id), strlen("client-") + 36);
    assert_memory_equal(j.member_id, "client-", 7);
    assert_int_equal(j.member_id[7 + 14], '4'); /* UUID version 4 */
    char id[128];
    snprintf(id, sizeof(id), "%s", j.member_id);
    join(e, join_args("g", id, 4), &j);
    assert_false(j.called); /* waits for the (zero) initial delay */
    assert_int_equal(state_of(e, "g"), GC_PREPARING_REBALANCE);
    fake_advance(e, 0);
    assert_true(j.called);
    assert_int_equal(j.error, KERR_NONE);
    assert_int_equal(j.generation, 1);
    assert_string_equal(j.leader, id);
    assert_string_equal(j.member_id, id);
    assert_string_equal(j.protocol, "range");
    assert_int_equal(j.n_members, 1);
    assert_int_equal(state_of(e, "g"), GC_COMPLETING_REBALANCE);
    /* v3 and older join in one step. */
    join(e, join_args("g2", "", 3), &j);
    fake_advance(e, 0);
    assert_true(j.called);
    assert_int_equal(j.error, KERR_NONE);
    assert_int_equal(j.generation, 1);
    fake_env_free(e);
}

static void test_unknown_member_of_unknown_group(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out j;
    join(e, join_args("nope", "someone", 5), &j);
    assert_int_equal(j.error, KERR_UNKNOWN_MEMBER_ID);
    struct gc_group_summary *list;
    assert_int_equal(gc_list(e->gc, &list), 0); /* nothing created */
    free(list);
    fake_env_free(e);
}

static void test_initial_delay_collects_members_and_only_leader_gets_members(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.initial_rebalance_delay_ms = 3000;
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out a, b;
    join(e, join_args("g", "", 3), &a);
    fake_advance(e, 2000);
    assert_false(a.called);
    join(e, join_args("g", "", 3), &b);
    fake_advance(e, 1500); /* first delay over, but a member arrived: wait another delay */
    assert_false(a.called);
    assert_false(b.called);
    fake_advance(e, 2400);
    assert_false(a.called);
    fake_advance(e, 200); /* 3000 + 3000 ms after the first join */
    assert_true(a.called);
    assert_true(b.called);
    assert_int_equal(a.generation, 1);
    assert_int_equal(b.generation, 1);
    assert_string_equal(a.leader, a.member_id); /* the first member leads */
    assert_string_equal(b.leader, a.member_id);
    assert_int_equal(a.n_members, 2);
    assert_int_equal(b.n_members, 0);
    fake_env_free(e);
}

static void test_sync_distributes_leader_assignment(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out a, b;
    join(e, join_args("g", "", 3), &a);
    join(e, join_args("g", "", 3), &b);
    fake_advance(e, 0);
    assert_int_equal(a.error, KERR_NONE);
    assert_int_equal(b.error, KERR_NONE);
    const char *leader = a.n_members ? a.member_id : b.member_id;
    const char *follower = a.n_members ? b.member_id : a.member_id;
    struct sync_out fs, ls;
    sync_member(e, "g", 1, follower, NULL, 0, &fs);
    assert_false(fs.called); /* followers wait for the leader */
    int before = e->nrecords;
    struct gc_assignment as[2] = {{leader, (const uint8_t *)"L", 1},
                                  {follower, (const uint8_t *)"FF", 2}};
    sync_member(e, "g", 1, leader, as, 2, &ls);
    assert_true(ls.called);
    assert_true(fs.called);
    assert_string_equal(ls.assignment, "L");
    assert_string_equal(fs.assignment, "FF");
    assert_int_equal(state_of(e, "g"), GC_STABLE);
    assert_int_equal(e->nrecords, before + 1); /* the group metadata was persisted */
    /* A sync in a Stable group answers at once; a stale generation is refused. */
    sync_member(e, "g", 1, follower, NULL, 0, &fs);
    assert_string_equal(fs.assignment, "FF");
    sync_member(e, "g", 0, follower, NULL, 0, &fs);
    assert_int_equal(fs.error, KERR_ILLEGAL_GENERATION);
    sync_member(e, "g", 1, "stranger", NULL, 0, &fs);
    assert_int_equal(fs.error, KERR_UNKNOWN_MEMBER_ID);
    fake_env_free(e);
}

static void test_heartbeat_errors_and_rebalance_signal(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char id[128];
    stable_single(e, "g", id, sizeof(id));
    assert_int_equal(gc_heartbeat(e->gc, "g", 1, id, NULL), KERR_NONE);
    assert_int_equal(gc_heartbeat(e->gc, "g", 7, id, NULL), KERR_ILLEGAL_GENERATION);
    assert_int_equal(gc_heartbeat(e->gc, "g", 1, "x", NULL), KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(gc_heartbeat(e->gc, "nope", 1, id, NULL), KERR_UNKNOWN_MEMBER_ID);
    /* A new member makes the group rebalance: the old member learns it from its heartbeat. */
    struct join_out j2, j1;
    join(e, join_args("g", "", 3), &j2);
    assert_false(j2.called);
    assert_int_equal(gc_heartbeat(e->gc, "g", 1, id, NULL), KERR_REBALANCE_IN_PROGRESS);
    join(e, join_args("g", id, 3), &j1); /* rejoin: everyone is in, the join completes */
    assert_true(j1.called);
    assert_true(j2.called);
    assert_int_equal(j1.generation, 2);
    assert_string_equal(j1.leader, id); /* the leader keeps its role */
    assert_int_equal(gc_heartbeat(e->gc, "g", 2, id, NULL), KERR_NONE); /* CompletingRebalance */
    fake_env_free(e);
}

static void test_session_expiry_triggers_rebalance(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out a, b;
    join(e, join_args("g", "", 3), &a);
    join(e, join_args("g", "", 3), &b);
    fake_advance(e, 0);
    struct sync_out sa, sb;
    const char *leader = a.n_members ? a.member_id : b.member_id;
    const char *follower = a.n_members ? b.member_id : a.member_id;
    sync_member(e, "g", 1, follower, NULL, 0, &sb);
    sync_member(e, "g", 1, leader, NULL, 0, &sa);
    assert_int_equal(state_of(e, "g"), GC_STABLE);
    /* Only the leader heartbeats; the follower's 10 s session runs out. */
    for (int i = 0; i < 12; i++) {
        fake_advance(e, 1000);
        int16_t h = gc_heartbeat(e->gc, "g", 1, leader, NULL);
        if (h == KERR_REBALANCE_IN_PROGRESS)
            break;
        assert_int_equal(h, KERR_NONE);
    }
    assert_int_equal(state_of(e, "g"), GC_PREPARING_REBALANCE);
    assert_int_equal(gc_heartbeat(e->gc, "g", 1, follower, NULL), KERR_UNKNOWN_MEMBER_ID);
    struct join_out r;
    join(e, join_args("g", leader, 3), &r);
    assert_true(r.called);
    assert_int_equal(r.generation, 2);
    assert_int_equal(r.n_members, 1);
    /* And then the last member goes quiet: the group ends up Empty, generation 3. */
    fake_advance(e, 11000);
    assert_int_equal(state_of(e, "g"), GC_EMPTY);
    fake_env_free(e);
}

static void test_rebalance_timeout_drops_members_that_do_not_rejoin(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out a, b;
    join(e, join_args("g", "", 3), &a);
    join(e, join_args("g", "", 3), &b);
    fake_advance(e, 0);
    const char *leader = a.n_members ? a.member_id : b.member_id;
    const char *follower = a.n_members ? b.member_id : a.member_id;
    struct sync_out s1, s2;
    sync_member(e, "g", 1, follower, NULL, 0, &s1);
    sync_member(e, "g", 1, leader, NULL, 0, &s2);
    /* The follower rejoins with new metadata; the leader keeps heartbeating but never rejoins. */
    struct join_out r;
    struct gc_join_args ja = join_args("g", follower, 3);
    ja.protocols = RANGE_RR;
    ja.n_protocols = 2;
    join(e, ja, &r);
    assert_false(r.called);
    for (int i = 0; i < 29; i++) {
        fake_advance(e, 1000);
        assert_int_equal(gc_heartbeat(e->gc, "g", 1, leader, NULL), KERR_REBALANCE_IN_PROGRESS);
    }
    assert_false(r.called);
    fake_advance(e, 1000); /* rebalance.timeout.ms = 30 s */
    assert_true(r.called);
    assert_int_equal(r.error, KERR_NONE);
    assert_int_equal(r.generation, 2);
    assert_string_equal(r.leader, r.member_id); /* the old leader is gone */
    assert_int_equal(gc_heartbeat(e->gc, "g", 2, leader, NULL), KERR_UNKNOWN_MEMBER_ID);
    fake_env_free(e);
}

static void test_protocol_selection_and_inconsistent_protocol(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out a, b, c;
    struct gc_join_args ja = join_args("g", "", 3);
    ja.protocols = RANGE_RR;
    ja.n_protocols = 2;
    join(e, ja, &a);
    ja.protocols = RR_RANGE;
    join(e, ja, &b);
    struct gc_join_args jc = join_args("g", "", 3);
    jc.protocols = STICKY;
    join(e, jc, &c);
    assert_true(c.called);
    assert_int_equal(c.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
    struct gc_join_args jd = join_args("g", "", 3);
    jd.protocol_type = "connect";
    join(e, jd, &c);
    assert_int_equal(c.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
    fake_advance(e, 0);
    /* One vote each: the tie goes to the first member's preference. */
    assert_string_equal(a.protocol, "range");
    assert_string_equal(b.protocol, "range");
    /* No protocol at all is refused for a new group too. */
    struct gc_join_args je = join_args("g2", "", 3);
    je.n_protocols = 0;
    join(e, je, &c);
    assert_int_equal(c.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
    fake_env_free(e);
}

static void test_session_timeout_bounds_and_group_max_size(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.max_size = 2;
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out j;
    struct gc_join_args a = join_args("g", "", 3);
    a.session_timeout_ms = 5999;
    join(e, a, &j);
    assert_int_equal(j.error, KERR_INVALID_SESSION_TIMEOUT);
    a.session_timeout_ms = 1800001;
    join(e, a, &j);
    assert_int_equal(j.error, KERR_INVALID_SESSION_TIMEOUT);
    join(e, join_args("g", "", 4), &j); /* pending members count too */
    assert_int_equal(j.error, KERR_MEMBER_ID_REQUIRED);
    join(e, join_args("g", "", 4), &j);
    assert_int_equal(j.error, KERR_MEMBER_ID_REQUIRED);
    join(e, join_args("g", "", 4), &j);
    assert_int_equal(j.error, KERR_GROUP_MAX_SIZE_REACHED);
    join(e, join_args("", "", 4), &j);
    assert_int_equal(j.error, KERR_INVALID_GROUP_ID);
    /* Pending members that never come back are forgotten after the session timeout. */
    fake_advance(e, 10001);
    struct gc_group_summary *list;
    assert_int_equal(gc_list(e->gc, &list), 0);
    free(list);
    fake_env_free(e);
}

static void test_leave_group_batched(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char id[128];
    stable_single(e, "g", id, sizeof(id));
    struct gc_leave_member lm[2] = {{"ghost", NULL, -1}, {id, NULL, -1}};
    assert_int_equal(gc_leave(e->gc, "g", lm, 2), KERR_NONE);
    assert_int_equal(lm[0].error, KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(lm[1].error, KERR_NONE);
    /* The last member left: the group completes a rebalance into Empty, and persists that. */
    assert_int_equal(state_of(e, "g"), GC_EMPTY);
    struct gc_leave_member again = {id, NULL, -1};
    gc_leave(e->gc, "nope", &again, 1);
    assert_int_equal(again.error, KERR_UNKNOWN_MEMBER_ID);
    fake_env_free(e);
}

static void test_leave_answers_pending_join(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.initial_rebalance_delay_ms = 3000;
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out a;
    join(e, join_args("g", "", 3), &a);
    struct gc_group_desc d;
    gc_describe(e->gc, "g", &d);
    assert_int_equal(d.n_members, 1);
    char id[128];
    snprintf(id, sizeof(id), "%s", d.members[0].member_id);
    gc_describe_free(&d);
    struct gc_leave_member lm = {id, NULL, -1};
    gc_leave(e->gc, "g", &lm, 1);
    assert_true(a.called); /* a waiting JoinGroup is never left hanging */
    assert_int_equal(a.error, KERR_UNKNOWN_MEMBER_ID);
    fake_advance(e, 5000);
    fake_env_free(e);
}

static void test_static_member_fencing(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out j;
    struct gc_join_args a = join_args("g", "", 5);
    a.instance_id = "inst-1";
    join(e, a, &j); /* static members skip MEMBER_ID_REQUIRED */
    fake_advance(e, 0);
    assert_int_equal(j.error, KERR_NONE);
    char old[128];
    snprintf(old, sizeof(old), "%s", j.member_id);
    struct gc_assignment as = {old, (const uint8_t *)"A", 1};
    struct sync_out s;
    struct gc_sync_args sa = {"g", 1, old, "inst-1", NULL, NULL, &as, 1};
    memset(&s, 0, sizeof(s));
    gc_sync(e->gc, &sa, on_sync, &s);
    assert_int_equal(s.error, KERR_NONE);
    /* The instance restarts and joins with no member id: it gets a new id, the old is fenced. */
    join(e, a, &j);
    fake_advance(e, 0);
    assert_int_equal(j.error, KERR_NONE);
    assert_string_not_equal(j.member_id, old);
    assert_int_equal(gc_heartbeat(e->gc, "g", j.generation, old, "inst-1"), KERR_FENCED_INSTANCE_ID);
    assert_int_equal(gc_heartbeat(e->gc, "g", j.generation, j.member_id, "inst-1"), KERR_NONE);
    assert_int_equal(gc_heartbeat(e->gc, "g", j.generation, j.member_id, "inst-2"),
                     KERR_UNKNOWN_MEMBER_ID);
    struct gc_leave_member lm = {old, "inst-1", -1};
    gc_leave(e->gc, "g", &lm, 1);
    assert_int_equal(lm.error, KERR_FENCED_INSTANCE_ID);
    fake_env_free(e);
}

/* Two static members (inst-1 leads) synced into a Stable generation 1 with assignments A and B;
 * their member ids in id1 and id2. */
static void stable_static_pair(struct fake_env *e, const struct gc_protocol *protocols, int n,
                               char *id1, char *id2)
{
    struct join_out j1, j2;
    struct gc_join_args a = join_args("g", "", 5);
    a.protocols = protocols;
    a.n_protocols = n;
    a.instance_id = "inst-1";
    join(e, a, &j1);
    a.instance_id = "inst-2";
    join(e, a, &j2);
    fake_advance(e, 0);
    assert_int_equal(j1.error, KERR_NONE);
    assert_int_equal(j2.error, KERR_NONE);
    assert_int_equal(j1.generation, 1);
    assert_string_equal(j1.leader, j1.member_id);
    snprintf(id1, 128, "%s", j1.member_id);
    snprintf(id2, 128, "%s", j2.member_id);
    struct gc_assignment as[2] = {{id1, (const uint8_t *)"A", 1}, {id2, (const uint8_t *)"B", 1}};
    struct sync_out s1, s2;
    struct gc_sync_args sa2 = {"g", 1, id2, "inst-2", NULL, NULL, NULL, 0};
    memset(&s2, 0, sizeof(s2));
    gc_sync(e->gc, &sa2, on_sync, &s2);
    struct gc_sync_args sa1 = {"g", 1, id1, "inst-1", NULL, NULL, as, 2};
    memset(&s1, 0, sizeof(s1));
    gc_sync(e->gc, &sa1, on_sync, &s1);
    assert_int_equal(s1.error, KERR_NONE);
    assert_int_equal(s2.error, KERR_NONE);
    assert_string_equal(s2.assignment, "B");
    assert_int_equal(state_of(e, "g"), GC_STABLE);
}

/* Issue 13 item 2: the static leader restarts (no member id, same protocols). Before v9 the
 * answer names the old leader id, so the client only syncs; from v9 the leader gets the members
 * with SkipAssignment. Either way the group stays Stable at its generation, the new id is
 * persisted, the old id is fenced and the sync hands back the old assignment. */
static void test_static_leader_rejoin_keeps_group_stable(void **state)
{
    (void)state;
    for (int16_t version = 5; version <= 9; version += 4) {
        struct gc_config cfg = fake_config();
        struct fake_env *e = fake_env_new(&cfg);
        char id1[128], id2[128];
        stable_static_pair(e, RANGE, 1, id1, id2);
        int appends = e->appends;
        struct join_out j;
        struct gc_join_args a = join_args("g", "", version);
        a.instance_id = "inst-1";
        join(e, a, &j);
        assert_true(j.called); /* answered at once: no rebalance to wait for */
        assert_int_equal(j.error, KERR_NONE);
        assert_int_equal(j.generation, 1);
        assert_string_not_equal(j.member_id, id1);
        if (version < 9) {
            assert_string_equal(j.leader, id1);
            assert_int_equal(j.n_members, 0);
            assert_false(j.skip_assignment);
        } else {
            assert_string_equal(j.leader, j.member_id);
            assert_int_equal(j.n_members, 2);
            assert_true(j.skip_assignment);
        }
        assert_int_equal(state_of(e, "g"), GC_STABLE);
        assert_int_equal(e->appends, appends + 1); /* the new member id is persisted */
        assert_int_equal(gc_heartbeat(e->gc, "g", 1, id1, "inst-1"), KERR_FENCED_INSTANCE_ID);
        assert_int_equal(gc_heartbeat(e->gc, "g", 1, j.member_id, "inst-1"), KERR_NONE);
        assert_int_equal(gc_heartbeat(e->gc, "g", 1, id2, "inst-2"), KERR_NONE);
        struct sync_out s;
        struct gc_sync_args sa = {"g", 1, j.member_id, "inst-1", NULL, NULL, NULL, 0};
        memset(&s, 0, sizeof(s));
        gc_sync(e->gc, &sa, on_sync, &s);
        assert_int_equal(s.error, KERR_NONE);
        assert_string_equal(s.assignment, "A");
        fake_env_free(e);
    }
}

/* A static rejoin that changes the group's selected protocol rebalances (Kafka's reason); one
 * during CompletingRebalance rebalances too (the leader may assign to the old id). */
static void test_static_rejoin_rebalances_on_protocol_change_and_while_completing(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char id1[128], id2[128];
    stable_static_pair(e, RANGE_RR, 2, id1, id2);
    struct gc_group_desc d;
    gc_describe(e->gc, "g", &d);
    assert_string_equal(d.protocol, "range");
    gc_describe_free(&d);
    static const struct gc_protocol RR_ONLY[] = {{"roundrobin", (const uint8_t *)"s2", 2}};
    struct join_out j;
    struct gc_join_args a = join_args("g", "", 5);
    a.instance_id = "inst-2"; /* a follower: the selected protocol decides, not leadership */
    a.protocols = RR_ONLY;
    a.n_protocols = 1;
    join(e, a, &j);
    assert_false(j.called);
    assert_int_equal(state_of(e, "g"), GC_PREPARING_REBALANCE);
    assert_int_equal(gc_heartbeat(e->gc, "g", 1, id1, "inst-1"), KERR_REBALANCE_IN_PROGRESS);
    struct join_out j1;
    struct gc_join_args a1 = join_args("g", id1, 5);
    a1.instance_id = "inst-1";
    a1.protocols = RANGE_RR;
    a1.n_protocols = 2;
    join(e, a1, &j1);
    fake_advance(e, 0);
    assert_int_equal(j.error, KERR_NONE);
    assert_int_equal(j.generation, 2);
    assert_string_equal(j.protocol, "roundrobin");
    /* Generation 2 is CompletingRebalance: the leader inst-1 restarts before syncing. */
    assert_int_equal(state_of(e, "g"), GC_COMPLETING_REBALANCE);
    struct join_out j3;
    struct gc_join_args a3 = join_args("g", "", 5);
    a3.instance_id = "inst-1";
    a3.protocols = RANGE_RR;
    a3.n_protocols = 2;
    join(e, a3, &j3);
    assert_false(j3.called);
    assert_int_equal(state_of(e, "g"), GC_PREPARING_REBALANCE);
    fake_env_free(e);
}

/* When the new member id cannot be persisted, the static member keeps its old id and the join
 * gets COORDINATOR_NOT_AVAILABLE, as Kafka reverts it. */
static void test_static_rejoin_reverts_when_append_fails(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char id1[128], id2[128];
    stable_static_pair(e, RANGE, 1, id1, id2);
    e->fail_appends = 1;
    e->append_error = KERR_KAFKA_STORAGE_ERROR;
    struct join_out j;
    struct gc_join_args a = join_args("g", "", 5);
    a.instance_id = "inst-1";
    join(e, a, &j);
    assert_true(j.called);
    assert_int_equal(j.error, KERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(state_of(e, "g"), GC_STABLE);
    assert_int_equal(gc_heartbeat(e->gc, "g", 1, id1, "inst-1"), KERR_NONE);
    struct sync_out s;
    struct gc_sync_args sa = {"g", 1, id1, "inst-1", NULL, NULL, NULL, 0};
    memset(&s, 0, sizeof(s));
    gc_sync(e->gc, &sa, on_sync, &s);
    assert_int_equal(s.error, KERR_NONE);
    assert_string_equal(s.assignment, "A");
    fake_env_free(e);
}

static void test_destroy_answers_pending_requests(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.initial_rebalance_delay_ms = 3000;
    struct fake_env *e = fake_env_new(&cfg);
    struct join_out a;
    join(e, join_args("g", "", 3), &a);
    assert_false(a.called);
    fake_env_free(e);
    assert_true(a.called);
    assert_int_equal(a.error, KERR_COORDINATOR_NOT_AVAILABLE);
}

/* Two group ids whose __consumer_offsets partitions differ. */
static void groups_in_two_partitions(int32_t nparts, char *a, char *b, size_t len)
{
    snprintf(a, len, "ga");
    for (int i = 0; i < 100; i++) {
        snprintf(b, len, "gb%d", i);
        if (gc_partition_for(a, nparts) != gc_partition_for(b, nparts))
            return;
    }
    fail_msg("no two groups in different partitions");
}

/* Issue 15, a cluster: the broker that stops leading a partition unloads its groups (a waiting
 * JoinGroup answered NOT_COORDINATOR), the other partitions' groups stay as they were; the
 * partition loaded again (its records replayed) brings its groups back alone. */
static void test_unload_and_load_one_partition(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    struct fake_env *e = fake_env_new(&cfg);
    char ga[16], gb[16], ida[128], idb[128];
    groups_in_two_partitions(cfg.num_partitions, ga, gb, sizeof(ga));
    int32_t pa = gc_partition_for(ga, cfg.num_partitions);
    stable_single(e, ga, ida, sizeof(ida));
    stable_single(e, gb, idb, sizeof(idb));
    struct gc_commit_partition cp = {.topic = "t", .partition = 0, .offset = 42, .leader_epoch = -1};
    struct gc_commit_args ca = {.group_id = ga, .generation = 1, .member_id = ida,
                                .retention_ms = -1, .version = 8};
    gc_offset_commit(e->gc, &ca, &cp, 1);
    assert_int_equal(cp.error, KERR_NONE);
    /* A new member's JoinGroup waits for the rebalance of ga. */
    struct join_out waiting;
    join(e, join_args(ga, "", 3), &waiting);
    assert_false(waiting.called);

    assert_int_equal(gc_unload_partition(e->gc, pa, KERR_NOT_COORDINATOR), 1);
    assert_true(waiting.called);
    assert_int_equal(waiting.error, KERR_NOT_COORDINATOR);
    struct gc_group_desc d;
    gc_describe(e->gc, ga, &d);
    assert_false(d.found);
    gc_describe_free(&d);
    struct gc_offset o;
    assert_false(gc_offset_get(e->gc, ga, "t", 0, &o));
    assert_int_equal(gc_live_records(e->gc, pa), 0);
    assert_int_equal(state_of(e, gb), GC_STABLE);
    assert_int_equal(gc_heartbeat(e->gc, gb, 1, idb, NULL), KERR_NONE);

    /* Loaded again: only that partition's records, then its groups come back. */
    for (int i = 0; i < e->nrecords; i++)
        if (e->records[i].partition == pa)
            assert_int_equal(gc_replay_record(e->gc, e->records[i].key, e->records[i].key_len,
                                              e->records[i].value, e->records[i].value_len), 0);
    gc_replay_done_partition(e->gc, pa);
    assert_int_equal(state_of(e, ga), GC_STABLE);
    assert_true(gc_offset_get(e->gc, ga, "t", 0, &o));
    assert_int_equal(o.offset, 42);
    assert_int_equal(gc_heartbeat(e->gc, ga, 1, ida, NULL), KERR_NONE);
    assert_int_equal(state_of(e, gb), GC_STABLE);
    assert_int_equal(gc_heartbeat(e->gc, gb, 1, idb, NULL), KERR_NONE);
    fake_env_free(e);
}

/* Issue 12 item 3, a JoinGroup storm: 1,500 members, each offering 100 protocols. Joining,
 * selecting the protocol and syncing must cost work linear in what the members sent (counted
 * by gc_work), not members x protocols per join: the quadratic version stalled the loop 62 s. */
#define STORM_MEMBERS 1500
#define STORM_PROTOCOLS 100

struct storm_member {
    struct gc_protocol protocols[STORM_PROTOCOLS + 1];
    char names[STORM_PROTOCOLS + 1][16];
    int n;
    int rotation;
    char pending[128];
    struct join_out out;
};

static uint64_t storm_work(struct fake_env *e)
{
    const struct gc_work *w = gc_work(e->gc);
    return w->protocol_steps + w->member_steps;
}

static void test_join_storm_work_is_linear(void **state)
{
    (void)state;
    struct gc_config cfg = fake_config();
    cfg.max_size = STORM_MEMBERS;
    struct fake_env *e = fake_env_new(&cfg);
    struct storm_member *ms = calloc(STORM_MEMBERS, sizeof(*ms));
    assert_non_null(ms);
    /* Member i prefers the common protocols rotated by i*i mod 7; every third one first names a
     * protocol of its own, which no one else supports and so gets no vote. */
    for (int i = 0; i < STORM_MEMBERS; i++) {
        struct storm_member *m = &ms[i];
        m->rotation = (i * i) % 7;
        if (i % 3 == 0)
            snprintf(m->names[m->n++], sizeof(m->names[0]), "own-%d", i);
        for (int j = 0; j < STORM_PROTOCOLS; j++)
            snprintf(m->names[m->n++], sizeof(m->names[0]), "p%03d",
                     (j + m->rotation) % STORM_PROTOCOLS);
        for (int j = 0; j < m->n; j++)
            m->protocols[j] = (struct gc_protocol){m->names[j], (const uint8_t *)"meta", 4};
    }
    uint64_t sent = 0;
    for (int i = 0; i < STORM_MEMBERS; i++) {
        struct storm_member *m = &ms[i];
        struct gc_join_args a = join_args("storm", "", 5);
        a.protocols = m->protocols;
        a.n_protocols = m->n;
        join(e, a, &m->out);
        assert_int_equal(m->out.error, KERR_MEMBER_ID_REQUIRED);
        snprintf(m->pending, sizeof(m->pending), "%s", m->out.member_id);
        a.member_id = m->pending;
        join(e, a, &m->out);
        assert_false(m->out.called); /* waits for the rebalance */
        sent += (uint64_t)m->n;
        /* Each join may look at what it sent a bounded number of times, not at everyone's. */
        uint64_t w = storm_work(e);
        if (w > 16 * sent + 64 * (uint64_t)(i + 1))
            fail_msg("join %d: %llu steps for %llu protocols sent", i + 1, (unsigned long long)w,
                     (unsigned long long)sent);
    }
    /* The expected protocol, counted here: each member votes for its first common protocol; ties
     * go to the earlier in the first member's list. */
    int votes[STORM_PROTOCOLS] = {0};
    for (int i = 0; i < STORM_MEMBERS; i++)
        votes[ms[i].rotation]++;
    int best = ms[0].rotation;
    for (int j = 0; j < STORM_PROTOCOLS; j++) {
        int p = (j + ms[0].rotation) % STORM_PROTOCOLS;
        if (votes[p] > votes[best])
            best = p;
    }
    char expected[16];
    snprintf(expected, sizeof(expected), "p%03d", best);
    fake_advance(e, 1);
    int leaders = 0;
    const char *leader = NULL;
    for (int i = 0; i < STORM_MEMBERS; i++) {
        struct join_out *o = &ms[i].out;
        assert_true(o->called);
        assert_int_equal(o->error, KERR_NONE);
        assert_int_equal(o->generation, 1);
        assert_string_equal(o->protocol, expected);
        if (strcmp(o->leader, o->member_id) == 0) {
            leaders++;
            leader = o->member_id;
            assert_int_equal(o->n_members, STORM_MEMBERS);
        }
    }
    assert_int_equal(leaders, 1);
    uint64_t w = storm_work(e);
    if (w > 16 * sent + 64 * (uint64_t)STORM_MEMBERS)
        fail_msg("rebalance: %llu steps for %llu protocols sent", (unsigned long long)w,
                 (unsigned long long)sent);
    /* The leader's SyncGroup names every member once: each is found without a scan. */
    struct gc_assignment *as = calloc(STORM_MEMBERS, sizeof(*as));
    assert_non_null(as);
    for (int i = 0; i < STORM_MEMBERS; i++)
        as[i] = (struct gc_assignment){ms[i].out.member_id, (const uint8_t *)"A", 1};
    uint64_t before = storm_work(e);
    struct sync_out s;
    sync_member(e, "storm", 1, leader, as, STORM_MEMBERS, &s);
    assert_true(s.called);
    assert_int_equal(s.error, KERR_NONE);
    for (int i = 0; i < STORM_MEMBERS; i++) {
        sync_member(e, "storm", 1, ms[i].out.member_id, NULL, 0, &s);
        assert_int_equal(s.error, KERR_NONE);
        assert_string_equal(s.assignment, "A");
        assert_int_equal(gc_heartbeat(e->gc, "storm", 1, ms[i].out.member_id, NULL), KERR_NONE);
    }
    w = storm_work(e) - before;
    if (w > 64 * (uint64_t)STORM_MEMBERS)
        fail_msg("syncs and heartbeats: %llu steps for %d members", (unsigned long long)w,
                 STORM_MEMBERS);
    free(as);
    free(ms);
    fake_env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_step_join_and_member_id_format),
        cmocka_unit_test(test_unload_and_load_one_partition),
        cmocka_unit_test(test_unknown_member_of_unknown_group),
        cmocka_unit_test(test_initial_delay_collects_members_and_only_leader_gets_members),
        cmocka_unit_test(test_sync_distributes_leader_assignment),
        cmocka_unit_test(test_heartbeat_errors_and_rebalance_signal),
        cmocka_unit_test(test_session_expiry_triggers_rebalance),
        cmocka_unit_test(test_rebalance_timeout_drops_members_that_do_not_rejoin),
        cmocka_unit_test(test_protocol_selection_and_inconsistent_protocol),
        cmocka_unit_test(test_session_timeout_bounds_and_group_max_size),
        cmocka_unit_test(test_leave_group_batched),
        cmocka_unit_test(test_leave_answers_pending_join),
        cmocka_unit_test(test_static_member_fencing),
        cmocka_unit_test(test_static_leader_rejoin_keeps_group_stable),
        cmocka_unit_test(test_static_rejoin_rebalances_on_protocol_change_and_while_completing),
        cmocka_unit_test(test_static_rejoin_reverts_when_append_fails),
        cmocka_unit_test(test_destroy_answers_pending_requests),
        cmocka_unit_test(test_join_storm_work_is_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
