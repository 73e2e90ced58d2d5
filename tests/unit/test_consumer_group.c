/* test_consumer_group: KIP-848 consumer groups on a fake clock — the uniform and range assignors
 * (balance, stickiness), member epochs, revocation before reassignment, leaves, static members,
 * session and rebalance timeouts, errors, commits, replay after a restart, and the boundary with
 * classic groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/consumer_group.h"
#include "group_test_env.h"

/* ---- a fake set of topics ---- */

struct fake_topics {
    struct cg_topic t[8];
    int n;
};

static bool ft_by_name(void *ctx, const char *name, struct cg_topic *out)
{
    struct fake_topics *f = ctx;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) {
            *out = f->t[i];
            return true;
        }
    return false;
}

static bool ft_by_id(void *ctx, const struct kuuid *id, struct cg_topic *out)
{
    struct fake_topics *f = ctx;
    for (int i = 0; i < f->n; i++)
        if (memcmp(f->t[i].id.b, id->b, 16) == 0) {
            *out = f->t[i];
            return true;
        }
    return false;
}

static void ft_each(void *ctx, cg_topic_fn fn, void *arg)
{
    struct fake_topics *f = ctx;
    for (int i = 0; i < f->n; i++)
        fn(arg, &f->t[i]);
}

static struct fake_topics TOPICS;
static struct cg_topic_view VIEW = {&TOPICS, ft_by_name, ft_by_id, ft_each};

static void topics_reset(void)
{
    memset(&TOPICS, 0, sizeof(TOPICS));
    const char *names[] = {"orders", "payments", "__consumer_offsets"};
    int parts[] = {6, 3, 4};
    for (int i = 0; i < 3; i++) {
        TOPICS.t[i].name = names[i];
        TOPICS.t[i].id.b[0] = (uint8_t)(i + 1);
        TOPICS.t[i].partitions = parts[i];
        TOPICS.t[i].internal = i == 2;
    }
    TOPICS.n = 3;
}

/* ---- heartbeat helpers ---- */

struct hb {
    int16_t error;
    int32_t epoch;
    bool has_assignment;
    int n;
    struct cg_tp tp[32];
    char member[64];
};

static struct hb hb_call(struct fake_env *e, const struct cg_heartbeat_args *a)
{
    struct cg_heartbeat_result r;
    cg_heartbeat(e->gc, &VIEW, a, &r);
    struct hb h = {.error = r.error, .epoch = r.member_epoch, .has_assignment = r.has_assignment};
    h.n = r.n_assignment < 32 ? r.n_assignment : 32;
    if (h.n > 0)
        memcpy(h.tp, r.assignment, (size_t)h.n * sizeof(h.tp[0]));
    snprintf(h.member, sizeof(h.member), "%s", r.member_id ? r.member_id : "");
    cg_heartbeat_result_free(&r);
    return h;
}

static const char *ORDERS[] = {"orders"};

static struct hb join(struct fake_env *e, const char *group, const char *member, const char *instance)
{
    static const struct cg_tp none[1];
    struct cg_heartbeat_args a = {
        .version = 1, .group_id = group, .member_id = member, .member_epoch = 0,
        .instance_id = instance, .rebalance_timeout_ms = 30000, .topics = ORDERS, .n_topics = 1,
        .owned = none, .n_owned = 0, .client_id = "c", .client_host = "/127.0.0.1",
    };
    return hb_call(e, &a);
}

/* A heartbeat owning exactly `owned` (n_owned -1: field null = unchanged). */
static struct hb beat(struct fake_env *e, const char *group, const char *member, int32_t epoch,
                      const struct cg_tp *owned, int n_owned)
{
    struct cg_heartbeat_args a = {
        .version = 1, .group_id = group, .member_id = member, .member_epoch = epoch,
        .rebalance_timeout_ms = -1, .n_topics = -1, .owned = owned, .n_owned = n_owned,
    };
    return hb_call(e, &a);
}

/* How many partitions the coordinator has given member (its current assignment). */
static int assigned_count(struct fake_env *e, const char *group, const char *member)
{
    struct cg_group_desc d;
    cg_describe(e->gc, group, &d);
    int n = -1;
    for (int i = 0; i < d.n_members; i++)
        if (strcmp(d.members[i].member_id, member) == 0)
            n = d.members[i].n_assigned;
    cg_describe_free(&d);
    return n;
}

static struct fake_env *env_new(void)
{
    topics_reset();
    struct gc_config cfg = fake_config();
    return fake_env_new(&cfg);
}

/* ---- assignors ---- */

static void check_disjoint_complete(struct cg_assign_member *m, int n, int total)
{
    int seen = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m[i].n_out; j++) {
            seen++;
            for (int k = 0; k < n; k++)
                for (int q = 0; q < m[k].n_out; q++)
                    if ((k != i || q != j) && cg_tp_cmp(&m[i].out[j], &m[k].out[q]) == 0)
                        fail_msg("partition assigned twice");
        }
    assert_int_equal(seen, total);
}

static void test_uniform_balanced_and_sticky(void **state)
{
    (void)state;
    struct cg_assign_topic t[2] = {{.id = {{1}}, .name = "a", .partitions = 7},
                                   {.id = {{2}}, .name = "b", .partitions = 5}};
    bool all[2] = {true, true};
    struct cg_assign_member m[3] = {{.id = "m1", .subscribed = all},
                                    {.id = "m2", .subscribed = all},
                                    {.id = "m3", .subscribed = all}};
    assert_int_equal(cg_assign("uniform", t, 2, m, 2, NULL), 0);
    assert_int_equal(m[0].n_out, 6);
    assert_int_equal(m[1].n_out, 6);
    check_disjoint_complete(m, 2, 12);
    /* A third member arrives: each old member keeps 4 of its 6, the newcomer gets the 4 moved. */
    m[0].previous = m[0].out, m[0].n_previous = m[0].n_out;
    m[1].previous = m[1].out, m[1].n_previous = m[1].n_out;
    struct cg_assign_member m2[3] = {{.id = "m1", .subscribed = all, .previous = m[0].out, .n_previous = 6},
                                     {.id = "m2", .subscribed = all, .previous = m[1].out, .n_previous = 6},
                                     {.id = "m3", .subscribed = all}};
    assert_int_equal(cg_assign("uniform", t, 2, m2, 3, NULL), 0);
    check_disjoint_complete(m2, 3, 12);
    for (int i = 0; i < 3; i++)
        assert_int_equal(m2[i].n_out, 4);
    for (int i = 0; i < 2; i++) {
        int kept = 0;
        for (int j = 0; j < m2[i].n_out; j++)
            for (int k = 0; k < m2[i].n_previous; k++)
                kept += cg_tp_cmp(&m2[i].out[j], &m2[i].previous[k]) == 0;
        assert_int_equal(kept, 4);
    }
    for (int i = 0; i < 3; i++) {
        free(m2[i].out);
        if (i < 2)
            free(m[i].out);
    }
    /* Mixed subscriptions: a partition only goes to a member that subscribes to its topic. */
    bool only_a[2] = {true, false};
    struct cg_assign_member m3[2] = {{.id = "x", .subscribed = only_a}, {.id = "y", .subscribed = all}};
    assert_int_equal(cg_assign(NULL, t, 2, m3, 2, NULL), 0);
    check_disjoint_complete(m3, 2, 12);
    for (int j = 0; j < m3[0].n_out; j++)
        assert_int_equal(m3[0].out[j].topic_id.b[0], 1);
    assert_int_equal(m3[0].n_out, 6); /* 6 of a; y gets 1 of a and the 5 of b */
    free(m3[0].out);
    free(m3[1].out);
    assert_int_equal(cg_assign("sticky", t, 2, m3, 2, NULL), -1);
}

static void test_range_contiguous_and_sticky(void **state)
{
    (void)state;
    struct cg_assign_topic t[1] = {{.id = {{9}}, .name = "t", .partitions = 5}};
    bool all[1] = {true};
    struct cg_assign_member m[2] = {{.id = "b", .subscribed = all}, {.id = "a", .subscribed = all}};
    assert_int_equal(cg_assign("range", t, 1, m, 2, NULL), 0);
    /* member "a" (first by id) gets 0,1,2; "b" gets 3,4 */
    assert_int_equal(m[1].n_out, 3);
    assert_int_equal(m[1].out[0].partition, 0);
    assert_int_equal(m[1].out[2].partition, 2);
    assert_int_equal(m[0].n_out, 2);
    assert_int_equal(m[0].out[0].partition, 3);
    /* Sticky within quota: "b" had 0 and 1 before; it keeps them. */
    struct cg_tp prev[2] = {{{{9}}, 0}, {{{9}}, 1}};
    struct cg_assign_member n2[2] = {{.id = "b", .subscribed = all, .previous = prev, .n_previous = 2},
                                     {.id = "a", .subscribed = all}};
    assert_int_equal(cg_assign("range", t, 1, n2, 2, NULL), 0);
    check_disjoint_complete(n2, 2, 5);
    assert_int_equal(n2[0].out[0].partition, 0);
    assert_int_equal(n2[0].out[1].partition, 1);
    for (int i = 0; i < 2; i++) {
        free(m[i].out);
        free(n2[i].out);
    }
}

/* ---- epochs and revocation ---- */

static void test_join_revoke_then_reassign(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    struct hb a = join(e, "g", "A", NULL);
    assert_int_equal(a.error, KERR_NONE);
    assert_int_equal(a.epoch, 1);
    assert_int_equal(a.n, 6);
    struct cg_tp owned[6];
    memcpy(owned, a.tp, sizeof(owned));
    a = beat(e, "g", "A", 1, owned, 6);
    assert_int_equal(a.error, KERR_NONE);
    assert_false(a.has_assignment && a.n != 6);

    struct hb b = join(e, "g", "B", NULL);
    assert_int_equal(b.epoch, 2);
    assert_int_equal(b.n, 0); /* its target is still owned by A */
    a = beat(e, "g", "A", 1, NULL, -1);
    assert_int_equal(a.epoch, 1); /* revoking: epoch unchanged */
    assert_int_equal(a.n, 3);
    struct cg_tp kept[3];
    memcpy(kept, a.tp, sizeof(kept));
    b = beat(e, "g", "B", 2, NULL, -1);
    assert_int_equal(b.n, 0);
    /* A still reports owning all six: nothing moves. */
    a = beat(e, "g", "A", 1, owned, 6);
    assert_int_equal(a.epoch, 1);
    a = beat(e, "g", "A", 1, kept, 3);
    assert_int_equal(a.epoch, 2);
    b = beat(e, "g", "B", 2, NULL, -1);
    assert_true(b.has_assignment);
    assert_int_equal(b.n, 3);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            assert_int_not_equal(cg_tp_cmp(&b.tp[i], &kept[j]), 0);

    /* Errors members act on. */
    assert_int_equal(beat(e, "g", "A", 9, NULL, -1).error, CG_ERR_FENCED_MEMBER_EPOCH);
    assert_int_equal(beat(e, "g", "A", 0 + 1, NULL, -1).error, CG_ERR_FENCED_MEMBER_EPOCH);
    /* ... but the previous epoch with a subset of its partitions is a lost answer: accepted. */
    assert_int_equal(beat(e, "g", "A", 1, kept, 3).error, KERR_NONE);
    assert_int_equal(beat(e, "g", "Z", 2, NULL, -1).error, KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(beat(e, "nope", "A", 2, NULL, -1).error, KERR_GROUP_ID_NOT_FOUND);

    struct cg_group_desc d;
    cg_describe(e->gc, "g", &d);
    assert_string_equal(d.state, "Stable");
    assert_int_equal(d.group_epoch, 2);
    assert_int_equal(d.n_members, 2);
    cg_describe_free(&d);

    /* A leaves: the group epoch moves on and B gets everything. */
    a = beat(e, "g", "A", -1, NULL, -1);
    assert_int_equal(a.error, KERR_NONE);
    assert_int_equal(a.epoch, -1);
    cg_describe(e->gc, "g", &d);
    assert_string_equal(d.state, "Assigning");
    cg_describe_free(&d);
    b = beat(e, "g", "B", 2, NULL, -1);
    assert_int_equal(b.epoch, 3);
    assert_int_equal(b.n, 6);
    fake_env_free(e);
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    struct cg_heartbeat_args a = {.version = 1, .group_id = "g", .member_id = "A", .member_epoch = 0,
                                  .rebalance_timeout_ms = -1, .topics = ORDERS, .n_topics = 1,
                                  .n_owned = -1};
    assert_int_equal(hb_call(e, &a).error, KERR_INVALID_REQUEST); /* no rebalance timeout */
    a.rebalance_timeout_ms = 1000;
    a.n_topics = -1;
    a.topics = NULL;
    assert_int_equal(hb_call(e, &a).error, KERR_INVALID_REQUEST); /* no subscription */
    a.topics = ORDERS;
    a.n_topics = 1;
    a.member_id = "";
    assert_int_equal(hb_call(e, &a).error, KERR_INVALID_REQUEST); /* v1 needs a member id */
    a.version = 0;
    struct hb h = hb_call(e, &a); /* v0: the coordinator names the member */
    assert_int_equal(h.error, KERR_NONE);
    assert_int_equal(strlen(h.member), 22);
    a.version = 1;
    a.member_id = "B";
    a.assignor = "cooperative-sticky";
    assert_int_equal(hb_call(e, &a).error, CG_ERR_UNSUPPORTED_ASSIGNOR);
    a.assignor = NULL;
    a.regex = "(";
    assert_int_equal(hb_call(e, &a).error, CG_ERR_INVALID_REGULAR_EXPRESSION);
    a.regex = NULL;
    a.member_epoch = -3;
    assert_int_equal(hb_call(e, &a).error, KERR_INVALID_REQUEST);
    a.member_epoch = -2; /* static leave needs an instance id */
    assert_int_equal(hb_call(e, &a).error, KERR_INVALID_REQUEST);
    fake_env_free(e);
}

static void test_regex_subscription_skips_internal_topics(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    static const struct cg_tp none[1];
    struct cg_heartbeat_args a = {.version = 1, .group_id = "g", .member_id = "A", .member_epoch = 0,
                                  .rebalance_timeout_ms = 1000, .n_topics = -1, .regex = ".*",
                                  .owned = none, .n_owned = 0};
    struct hb h = hb_call(e, &a);
    assert_int_equal(h.error, KERR_NONE);
    assert_int_equal(h.n, 9); /* orders (6) + payments (3), not __consumer_offsets */
    /* A topic created later is picked up at the next heartbeat (the group epoch moves on). */
    TOPICS.t[3] = (struct cg_topic){.name = "orders-eu", .id = {{7}}, .partitions = 2};
    TOPICS.n = 4;
    h = beat(e, "g", "A", 1, h.tp, h.n);
    assert_int_equal(h.epoch, 2);
    assert_int_equal(h.n, 11);
    fake_env_free(e);
}

static void test_static_member_leave_and_return(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    struct hb a = join(e, "g", "A", "host-1");
    assert_int_equal(a.n, 6);
    assert_int_equal(join(e, "g", "A2", "host-1").error, CG_ERR_UNRELEASED_INSTANCE_ID);
    struct cg_heartbeat_args leave = {.version = 1, .group_id = "g", .member_id = "A",
                                      .member_epoch = -2, .instance_id = "host-1",
                                      .rebalance_timeout_ms = -1, .n_topics = -1, .n_owned = -1};
    struct hb l = hb_call(e, &leave);
    assert_int_equal(l.error, KERR_NONE);
    assert_int_equal(l.epoch, -2);
    struct hb back = join(e, "g", "A2", "host-1");
    assert_int_equal(back.error, KERR_NONE);
    assert_int_equal(back.n, 6); /* the same partitions, no rebalance */
    struct cg_group_desc d;
    cg_describe(e->gc, "g", &d);
    assert_int_equal(d.n_members, 1);
    assert_string_equal(d.members[0].member_id, "A2");
    cg_describe_free(&d);
    /* The old id is fenced. */
    struct cg_heartbeat_args old = {.version = 1, .group_id = "g", .member_id = "A", .member_epoch = 1,
                                    .instance_id = "host-1", .rebalance_timeout_ms = -1,
                                    .n_topics = -1, .n_owned = -1};
    assert_int_equal(hb_call(e, &old).error, KERR_FENCED_INSTANCE_ID);
    fake_env_free(e);
}

/* ---- timeouts ---- */

static void test_session_timeout_fences_member(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    struct hb a = join(e, "g", "A", NULL);
    struct hb b = join(e, "g", "B", NULL);
    a = beat(e, "g", "A", 1, a.tp, a.n); /* revoke request */
    a = beat(e, "g", "A", 1, a.tp, a.n); /* revoked: epoch 2 */
    assert_int_equal(a.epoch, 2);
    b = beat(e, "g", "B", 2, NULL, -1);
    assert_int_equal(b.n, 3);
    /* Only B keeps heartbeating. */
    for (int i = 0; i < 10; i++) {
        fake_advance(e, 5000);
        b = beat(e, "g", "B", b.epoch, NULL, -1);
        assert_int_equal(b.error, KERR_NONE);
    }
    assert_int_equal(beat(e, "g", "A", 2, NULL, -1).error, KERR_UNKNOWN_MEMBER_ID);
    b = beat(e, "g", "B", b.epoch, NULL, -1);
    assert_int_equal(b.epoch, 3);
    assert_int_equal(assigned_count(e, "g", "B"), 6);
    fake_env_free(e);
}

static void test_rebalance_timeout_fences_a_member_that_does_not_revoke(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    struct hb a = join(e, "g", "A", NULL);
    struct cg_tp all[6];
    memcpy(all, a.tp, sizeof(all));
    join(e, "g", "B", NULL);
    a = beat(e, "g", "A", 1, all, 6); /* told to revoke 3, still owns 6 */
    assert_int_equal(a.n, 3);
    for (int i = 0; i < 7; i++) {
        fake_advance(e, 5000);
        beat(e, "g", "A", 1, all, 6);
        beat(e, "g", "B", 2, NULL, -1);
    }
    /* 35 s > rebalance timeout (30 s): A was fenced, B gets all. */
    assert_int_equal(beat(e, "g", "A", 1, all, 6).error, KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(assigned_count(e, "g", "B"), 6);
    fake_env_free(e);
}

/* ---- offsets, persistence, classic groups ---- */

static void test_commit_validation(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    struct hb a = join(e, "g", "A", NULL);
    struct gc_commit_partition p = {.topic = "orders", .partition = 0, .offset = 10, .leader_epoch = -1};
    struct gc_commit_args c = {.group_id = "g", .generation = a.epoch, .member_id = "A",
                               .retention_ms = -1, .version = 8};
    gc_offset_commit(e->gc, &c, &p, 1);
    assert_int_equal(p.error, KERR_UNSUPPORTED_VERSION); /* KIP-848 members commit with v9+ */
    p.error = 0;
    c.version = 9;
    gc_offset_commit(e->gc, &c, &p, 1);
    assert_int_equal(p.error, KERR_NONE);
    /* OffsetFetch v9: the asking member must exist at its epoch; anonymous fetches pass. */
    assert_int_equal(gc_offset_fetch_validate(e->gc, "g", "A", a.epoch), KERR_NONE);
    assert_int_equal(gc_offset_fetch_validate(e->gc, "g", "A", a.epoch + 1), CG_ERR_STALE_MEMBER_EPOCH);
    assert_int_equal(gc_offset_fetch_validate(e->gc, "g", "who", a.epoch), KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(gc_offset_fetch_validate(e->gc, "g", NULL, -1), KERR_NONE);
    assert_int_equal(gc_offset_fetch_validate(e->gc, "nogroup", "A", 3), KERR_NONE);
    p.error = 0;
    c.generation = 7;
    gc_offset_commit(e->gc, &c, &p, 1);
    assert_int_equal(p.error, CG_ERR_STALE_MEMBER_EPOCH);
    p.error = 0;
    c.generation = -1;
    c.member_id = "";
    gc_offset_commit(e->gc, &c, &p, 1);
    assert_int_equal(p.error, KERR_UNKNOWN_MEMBER_ID); /* simple commits need an empty group */
    struct gc_offset o;
    assert_true(gc_offset_get(e->gc, "g", "orders", 0, &o));
    assert_int_equal(o.offset, 10);
    assert_int_equal(gc_delete_group(e->gc, "g"), KERR_NON_EMPTY_GROUP);
    beat(e, "g", "A", a.epoch, NULL, -1);
    assert_int_equal(beat(e, "g", "A", -1, NULL, -1).error, KERR_NONE);
    p.error = 0;
    gc_offset_commit(e->gc, &c, &p, 1); /* admin commit into the now empty group */
    assert_int_equal(p.error, KERR_NONE);
    assert_int_equal(gc_delete_group(e->gc, "g"), KERR_NONE);
    assert_int_equal(beat(e, "g", "A", 1, NULL, -1).error, KERR_GROUP_ID_NOT_FOUND);
    fake_env_free(e);
}

static void test_restart_replays_consumer_groups(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    struct hb a = join(e, "g", "A", NULL);
    join(e, "g", "B", NULL);
    a = beat(e, "g", "A", 1, a.tp, a.n);
    a = beat(e, "g", "A", 1, a.tp, a.n);
    struct hb b = beat(e, "g", "B", 2, NULL, -1);
    assert_int_equal(b.n, 3);
    struct cg_group_desc before;
    cg_describe(e->gc, "g", &before);
    int32_t epoch = before.group_epoch;
    cg_describe_free(&before);
    int64_t live = gc_live_records(e->gc, gc_partition_for("g", 4));
    assert_int_equal(live, 2 + 2 * 3);

    struct gc_config cfg = fake_config();
    struct fake_env *e2 = fake_restart(e, &cfg);
    fake_env_free(e);
    struct cg_group_desc d;
    cg_describe(e2->gc, "g", &d);
    assert_int_equal(d.error, KERR_NONE);
    assert_int_equal(d.group_epoch, epoch);
    assert_int_equal(d.n_members, 2);
    assert_string_equal(d.state, "Stable");
    assert_int_equal(d.members[0].n_assigned + d.members[1].n_assigned, 6);
    cg_describe_free(&d);
    assert_int_equal(gc_live_records(e2->gc, gc_partition_for("g", 4)), live);
    /* Members carry on with their epochs. */
    b = beat(e2, "g", "B", 2, NULL, -1);
    assert_int_equal(b.error, KERR_NONE);
    assert_int_equal(b.epoch, 2);
    /* ListGroups shows the type and Kafka's consumer group state. */
    struct gc_group_summary *list;
    int n = gc_list(e2->gc, &list);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].type, "consumer");
    assert_string_equal(list[0].state_name, "Stable");
    free(list);
    fake_env_free(e2);
}

static void on_join_error(void *arg, const struct gc_join_result *r)
{
    *(int16_t *)arg = r->error;
}

static void test_classic_and_consumer_groups_do_not_mix(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    join(e, "g", "A", NULL);
    static const struct gc_protocol RANGE[] = {{"range", (const uint8_t *)"sub", 3}};
    struct gc_join_args j = {.version = 5, .group_id = "g", .member_id = "", .client_id = "c",
                             .client_host = "h", .session_timeout_ms = 10000,
                             .rebalance_timeout_ms = 10000, .protocol_type = "consumer",
                             .protocols = RANGE, .n_protocols = 1};
    int16_t err = -1;
    /* A classic member may join a consumer group with members (online migration): as in
     * Kafka, a dynamic v4+ member first gets its member id. */
    gc_join(e->gc, &j, on_join_error, &err);
    assert_int_equal(err, KERR_MEMBER_ID_REQUIRED);
    /* A classic protocol type other than "consumer" cannot. */
    j.protocol_type = "connect";
    err = -1;
    gc_join(e->gc, &j, on_join_error, &err);
    assert_int_equal(err, KERR_INCONSISTENT_GROUP_PROTOCOL);
    j.protocol_type = "consumer";
    /* A classic group whose embedded protocol does not parse is not upgraded (Kafka: "the
     * embedded consumer protocol is malformed"): consumer-protocol joins are refused. */
    j.group_id = "classic";
    j.version = 3;
    err = -1;
    gc_join(e->gc, &j, on_join_error, &err);
    fake_advance(e, 1); /* the rebalance completes */
    assert_int_equal(err, KERR_NONE);
    assert_int_equal(join(e, "classic", "X", NULL).error, KERR_GROUP_ID_NOT_FOUND);
    /* An empty consumer group becomes classic on a JoinGroup. */
    assert_int_equal(beat(e, "g", "A", -1, NULL, -1).error, KERR_NONE);
    j.group_id = "g";
    err = -1;
    gc_join(e->gc, &j, on_join_error, &err);
    fake_advance(e, 1);
    assert_int_equal(err, KERR_NONE);
    assert_int_equal(beat(e, "g", "A", 1, NULL, -1).error, KERR_GROUP_ID_NOT_FOUND);
    fake_env_free(e);
}

/* ---- online migration between the classic and the consumer protocol ---- */

/* ConsumerProtocolSubscription v1 of "orders" owning `owned` partitions of it. */
static size_t classic_subscription(uint8_t *b, const int32_t *owned, int n_owned)
{
    size_t k = 0;
    b[k++] = 0, b[k++] = 1;                          /* version 1 */
    b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = 1;  /* one topic */
    b[k++] = 0, b[k++] = 6;
    memcpy(b + k, "orders", 6), k += 6;
    b[k++] = 0xff, b[k++] = 0xff, b[k++] = 0xff, b[k++] = 0xff; /* user data: null */
    b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = (uint8_t)(n_owned > 0); /* owned topics */
    if (n_owned > 0) {
        b[k++] = 0, b[k++] = 6;
        memcpy(b + k, "orders", 6), k += 6;
        b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = (uint8_t)n_owned;
        for (int i = 0; i < n_owned; i++)
            b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = (uint8_t)owned[i];
    }
    return k;
}

/* ConsumerProtocolAssignment v1: partitions [from, to) of "orders". */
static size_t classic_assignment(uint8_t *b, int from, int to)
{
    size_t k = 0;
    b[k++] = 0, b[k++] = 1;
    b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = 1;
    b[k++] = 0, b[k++] = 6;
    memcpy(b + k, "orders", 6), k += 6;
    b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = (uint8_t)(to - from);
    for (int p = from; p < to; p++)
        b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = (uint8_t)p;
    b[k++] = 0xff, b[k++] = 0xff, b[k++] = 0xff, b[k++] = 0xff;
    return k;
}

struct cjoin {
    bool called;
    int16_t error;
    int32_t generation;
    char member[64];
    char leader[64];
};

static void on_cjoin(void *arg, const struct gc_join_result *r)
{
    struct cjoin *o = arg;
    o->called = true;
    o->error = r->error;
    o->generation = r->generation;
    snprintf(o->member, sizeof(o->member), "%s", r->member_id);
    snprintf(o->leader, sizeof(o->leader), "%s", r->leader);
}

struct csync {
    int16_t error;
    int n_partitions;   /* of "orders" in the assignment, -1 when it does not decode */
};

static void on_csync(void *arg, const struct gc_sync_result *r)
{
    struct csync *o = arg;
    o->error = r->error;
    o->n_partitions = -1;
    /* version, 1 topic "orders", n partitions... */
    if (r->error == KERR_NONE && r->assignment_len >= 16 && r->assignment[7] == 6)
        o->n_partitions = r->assignment[17];
    else if (r->error == KERR_NONE && r->assignment_len >= 6 && r->assignment[5] == 0)
        o->n_partitions = 0;
}

/* The answer lands in *o, now or when the rebalance completes. */
static void classic_join(struct fake_env *e, const char *group, const char *member,
                         const int32_t *owned, int n_owned, struct cjoin *o)
{
    uint8_t sub[64];
    size_t n = classic_subscription(sub, owned, n_owned);
    struct gc_protocol proto = {"range", sub, (int32_t)n};
    struct gc_join_args a = {.version = 3, .group_id = group, .member_id = member,
                             .client_id = "c", .client_host = "h", .session_timeout_ms = 10000,
                             .rebalance_timeout_ms = 10000, .protocol_type = "consumer",
                             .protocols = &proto, .n_protocols = 1};
    memset(o, 0, sizeof(*o));
    gc_join(e->gc, &a, on_cjoin, o);
}

static struct csync classic_sync(struct fake_env *e, const char *group, int32_t gen,
                                 const char *member, const struct gc_assignment *as, int n)
{
    struct csync o = {-1, -1};
    struct gc_sync_args a = {group, gen, member, NULL, "consumer", "range", as, n};
    gc_sync(e->gc, &a, on_csync, &o);
    return o;
}

/* Issue 13 item 7: a classic group with members becomes a consumer group when a member joins
 * with ConsumerGroupHeartbeat (keeping generation and assignments), its classic members rejoin
 * it through JoinGroup/SyncGroup and get the server-side assignment, a restart restores them as
 * classic members, and when the consumer-protocol member leaves the group is classic again. */
static void test_online_upgrade_mixed_group_and_downgrade(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    gc_set_topic_view(e->gc, &VIEW);
    struct cjoin a, b;
    classic_join(e, "m", "", NULL, 0, &a);
    classic_join(e, "m", "", NULL, 0, &b);
    fake_advance(e, 1);
    assert_int_equal(a.error, KERR_NONE);
    assert_int_equal(b.error, KERR_NONE);
    int32_t gen = a.generation;
    uint8_t as_a[64], as_b[64];
    size_t na = classic_assignment(as_a, 0, 3), nb = classic_assignment(as_b, 3, 6);
    struct gc_assignment as[2] = {{a.member, as_a, (int32_t)na}, {b.member, as_b, (int32_t)nb}};
    const char *leader = strcmp(a.leader, a.member) == 0 ? a.member : b.member;
    assert_int_equal(classic_sync(e, "m", gen, leader, as, 2).error, KERR_NONE);
    assert_int_equal(classic_sync(e, "m", gen, a.member, NULL, 0).n_partitions, 3);

    /* A consumer-protocol member joins: upgrade. The classic members keep their partitions
     * and their generation as member epoch. */
    struct hb c = join(e, "m", "C", NULL);
    assert_int_equal(c.error, KERR_NONE);
    assert_int_equal(c.epoch, gen + 1);
    assert_int_equal(assigned_count(e, "m", a.member), 3);
    assert_int_equal(assigned_count(e, "m", b.member), 3);
    assert_int_equal(assigned_count(e, "m", "C"), 0); /* partitions still owned by others */
    struct gc_group_summary *list;
    assert_int_equal(gc_list(e->gc, &list), 1);
    assert_string_equal(list[0].type, "consumer");
    free(list);
    /* A classic join must share a protocol with every classic member (Kafka's
     * supportsClassicProtocols). */
    uint8_t sub[64];
    size_t nsub = classic_subscription(sub, NULL, 0);
    struct gc_protocol rr = {"roundrobin", sub, (int32_t)nsub};
    struct gc_join_args ja = {.version = 3, .group_id = "m", .member_id = "", .client_id = "c",
                              .client_host = "h", .session_timeout_ms = 10000,
                              .rebalance_timeout_ms = 10000, .protocol_type = "consumer",
                              .protocols = &rr, .n_protocols = 1};
    struct cjoin x = {0};
    gc_join(e->gc, &ja, on_cjoin, &x);
    assert_int_equal(x.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
    /* Classic heartbeats: a new group epoch means rejoin; a wrong generation is illegal. */
    assert_int_equal(gc_heartbeat(e->gc, "m", gen, a.member, NULL), KERR_REBALANCE_IN_PROGRESS);
    assert_int_equal(gc_heartbeat(e->gc, "m", gen + 5, a.member, NULL), KERR_ILLEGAL_GENERATION);
    assert_int_equal(gc_heartbeat(e->gc, "m", gen, "nobody", NULL), KERR_UNKNOWN_MEMBER_ID);
    /* The classic members rejoin (eager: owning nothing) and sync until their heartbeat is
     * clean: as Kafka's CurrentAssignmentBuilder, a member that must revoke keeps its epoch
     * (the join answers the old generation, the sync the kept partitions) and is told to rejoin
     * by its heartbeat; then it gets the new epoch. Bounded rounds. */
    struct cjoin a2 = {0}, b2 = {0};
    struct csync sa = {0}, sb = {0};
    bool a_done = false, b_done = false;
    for (int round = 0; round < 4 && !(a_done && b_done); round++) {
        if (!a_done) {
            classic_join(e, "m", a.member, NULL, 0, &a2);
            assert_true(a2.called);
            assert_int_equal(a2.error, KERR_NONE);
            assert_string_equal(a2.leader, ""); /* nobody assigns: the server does */
            sa = classic_sync(e, "m", a2.generation, a.member, NULL, 0);
            assert_int_equal(sa.error, KERR_NONE);
            a_done = gc_heartbeat(e->gc, "m", a2.generation, a.member, NULL) == KERR_NONE;
        }
        if (!b_done) {
            classic_join(e, "m", b.member, NULL, 0, &b2);
            assert_int_equal(b2.error, KERR_NONE);
            sb = classic_sync(e, "m", b2.generation, b.member, NULL, 0);
            assert_int_equal(sb.error, KERR_NONE);
            b_done = gc_heartbeat(e->gc, "m", b2.generation, b.member, NULL) == KERR_NONE;
        }
        c = beat(e, "m", "C", c.epoch, c.tp, c.n);
        assert_int_equal(c.error, KERR_NONE);
    }
    assert_true(a_done && b_done);
    c = beat(e, "m", "C", c.epoch, c.tp, c.n);
    assert_int_equal(a2.generation, gen + 1);
    assert_int_equal(b2.generation, gen + 1);
    assert_int_equal(c.epoch, gen + 1);
    assert_int_equal(sa.n_partitions + sb.n_partitions + c.n, 6);
    assert_true(c.n > 0 && sa.n_partitions > 0 && sb.n_partitions > 0);

    /* A restart restores the classic members of the consumer group. */
    struct gc_config cfg = fake_config();
    struct fake_env *e2 = fake_restart(e, &cfg);
    fake_env_free(e);
    gc_set_topic_view(e2->gc, &VIEW);
    assert_int_equal(gc_heartbeat(e2->gc, "m", a2.generation, a.member, NULL), KERR_NONE);
    assert_int_equal(classic_sync(e2, "m", a2.generation, a.member, NULL, 0).n_partitions,
                     sa.n_partitions);

    /* The consumer-protocol member leaves: only classic members remain, the group is classic
     * again and rebalances (their next heartbeat says so). */
    assert_int_equal(beat(e2, "m", "C", c.epoch, NULL, -1).error, KERR_NONE);
    assert_int_equal(beat(e2, "m", "C", -1, NULL, -1).error, KERR_NONE);
    struct gc_group_desc d;
    gc_describe(e2->gc, "m", &d);
    assert_true(d.found);
    assert_false(d.consumer);
    assert_int_equal(d.state, GC_PREPARING_REBALANCE);
    assert_int_equal(d.n_members, 2);
    gc_describe_free(&d);
    assert_int_equal(gc_heartbeat(e2->gc, "m", a2.generation, a.member, NULL),
                     KERR_REBALANCE_IN_PROGRESS);
    /* The rejoin completes a classic rebalance with both members. */
    classic_join(e2, "m", a.member, NULL, 0, &a2);
    classic_join(e2, "m", b.member, NULL, 0, &b2);
    fake_advance(e2, 1);
    assert_int_equal(a2.error, KERR_NONE);
    assert_int_equal(b2.error, KERR_NONE);
    assert_int_equal(a2.generation, b2.generation);
    assert_true(strcmp(a2.leader, a.member) == 0 || strcmp(a2.leader, b.member) == 0);
    fake_env_free(e2);
}

/* A classic member told to rejoin (REBALANCE_IN_PROGRESS) that keeps heartbeating without
 * rejoining is fenced after its rebalance timeout (Kafka's join timeout); one that rejoins in
 * time stays. */
static void test_classic_member_must_rejoin_within_rebalance_timeout(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    gc_set_topic_view(e->gc, &VIEW);
    struct cjoin a, b;
    classic_join(e, "m", "", NULL, 0, &a);
    classic_join(e, "m", "", NULL, 0, &b);
    fake_advance(e, 1);
    uint8_t as_a[64], as_b[64];
    size_t na = classic_assignment(as_a, 0, 3), nb = classic_assignment(as_b, 3, 6);
    struct gc_assignment as[2] = {{a.member, as_a, (int32_t)na}, {b.member, as_b, (int32_t)nb}};
    const char *leader = strcmp(a.leader, a.member) == 0 ? a.member : b.member;
    assert_int_equal(classic_sync(e, "m", a.generation, leader, as, 2).error, KERR_NONE);
    assert_int_equal(join(e, "m", "C", NULL).error, KERR_NONE);
    int32_t gen = a.generation;
    struct cjoin b2 = {0};
    for (int t = 0; t < 12; t++) {
        int16_t ea = gc_heartbeat(e->gc, "m", gen, a.member, NULL);
        if (t < 10)
            assert_int_equal(ea, KERR_REBALANCE_IN_PROGRESS);
        /* b behaves: it rejoins (and syncs) whenever told to. */
        if (t == 0 || gc_heartbeat(e->gc, "m", b2.generation, b.member, NULL) ==
                          KERR_REBALANCE_IN_PROGRESS) {
            classic_join(e, "m", b.member, NULL, 0, &b2);
            assert_int_equal(b2.error, KERR_NONE);
            classic_sync(e, "m", b2.generation, b.member, NULL, 0);
        }
        fake_advance(e, 1000); /* the session (10 s) alone would never expire */
    }
    assert_int_equal(gc_heartbeat(e->gc, "m", gen, a.member, NULL), KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(assigned_count(e, "m", a.member), -1);
    assert_true(assigned_count(e, "m", b.member) >= 0);
    fake_env_free(e);
}

/* group.consumer.migration.policy=disabled (or downgrade): a classic group with members is not
 * converted, the consumer-protocol join gets GROUP_ID_NOT_FOUND, as Kafka. */
static void test_online_upgrade_refused_by_policy(void **state)
{
    (void)state;
    topics_reset();
    struct gc_config cfg = fake_config();
    cfg.consumer_migration_policy = GC_MIGRATION_DISABLED;
    struct fake_env *e = fake_env_new(&cfg);
    gc_set_topic_view(e->gc, &VIEW);
    struct cjoin a;
    classic_join(e, "m", "", NULL, 0, &a);
    fake_advance(e, 1);
    assert_int_equal(a.error, KERR_NONE);
    assert_int_equal(join(e, "m", "C", NULL).error, KERR_GROUP_ID_NOT_FOUND);
    fake_env_free(e);
}

static void test_group_max_size(void **state)
{
    (void)state;
    topics_reset();
    struct gc_config cfg = fake_config();
    cfg.consumer_max_size = 2;
    struct fake_env *e = fake_env_new(&cfg);
    assert_int_equal(join(e, "g", "A", NULL).error, KERR_NONE);
    assert_int_equal(join(e, "g", "B", NULL).error, KERR_NONE);
    assert_int_equal(join(e, "g", "C", NULL).error, KERR_GROUP_MAX_SIZE_REACHED);
    fake_env_free(e);
}

/* Issue 12 item 4: 2,000 members join a group on one 8,000-partition topic, one heartbeat each,
 * then each reconciles. The target assignment is computed once per group epoch, in work about
 * (partitions + members) log members, and a heartbeat that does not bump the epoch costs work
 * proportional to that member's own partitions (counted by gc_work): recomputing everything
 * for each member with a quadratic assignor stalled the loop 68 s. */
#define BIG_MEMBERS 2000
#define BIG_PARTITIONS 8000

static uint64_t log2_ceil(uint64_t n)
{
    uint64_t l = 0;
    while ((1ULL << l) < n)
        l++;
    return l;
}

static int total_assigned(struct fake_env *e, const char *group, int *min, int *max)
{
    struct cg_group_desc d;
    cg_describe(e->gc, group, &d);
    int total = 0;
    *min = BIG_PARTITIONS;
    *max = 0;
    for (int i = 0; i < d.n_members; i++) {
        total += d.members[i].n_assigned;
        *min = d.members[i].n_assigned < *min ? d.members[i].n_assigned : *min;
        *max = d.members[i].n_assigned > *max ? d.members[i].n_assigned : *max;
    }
    cg_describe_free(&d);
    return total;
}

static void test_big_group_assignment_work(void **state)
{
    (void)state;
    struct fake_env *e = env_new();
    TOPICS.t[3] = (struct cg_topic){.name = "big", .id = {{42}}, .partitions = BIG_PARTITIONS};
    TOPICS.n = 4;
    static const char *BIG[] = {"big"};
    static const struct cg_tp none[1];
    char (*ids)[16] = calloc(BIG_MEMBERS, sizeof(*ids));
    int32_t *epochs = calloc(BIG_MEMBERS, sizeof(*epochs));
    int *reported = calloc(BIG_MEMBERS, sizeof(*reported)); /* owned, as last sent */
    assert_true(ids && epochs && reported);
    const struct gc_work *w = gc_work(e->gc);
    uint64_t assign_budget = 0;
    for (int i = 0; i < BIG_MEMBERS; i++) {
        /* Ids in no particular order, as clients' random ones. */
        snprintf(ids[i], sizeof(ids[i]), "m%08x", (unsigned)((uint32_t)i * 2654435761u));
        struct cg_heartbeat_args a = {
            .version = 1, .group_id = "big", .member_id = ids[i], .member_epoch = 0,
            .rebalance_timeout_ms = 30000, .topics = BIG, .n_topics = 1, .owned = none,
            .n_owned = 0, .client_id = "c", .client_host = "/127.0.0.1",
        };
        uint64_t hb_before = w->heartbeat_steps;
        struct cg_heartbeat_result r;
        cg_heartbeat(e->gc, &VIEW, &a, &r);
        assert_int_equal(r.error, KERR_NONE);
        assert_int_equal(r.member_epoch, i + 1);
        epochs[i] = r.member_epoch;
        uint64_t hb = w->heartbeat_steps - hb_before;
        cg_heartbeat_result_free(&r);
        fake_records_free(e);
        /* One computation per group epoch, each about (partitions + members) log members. */
        assert_int_equal(w->assign_runs, (uint64_t)i + 1);
        uint64_t n = (uint64_t)i + 1;
        assign_budget += 8 * (BIG_PARTITIONS + n) * (1 + log2_ceil(n + 1));
        if (w->assign_steps > assign_budget)
            fail_msg("join %d: %llu assignment steps, budget %llu", i + 1,
                     (unsigned long long)w->assign_steps, (unsigned long long)assign_budget);
        /* The rest of the join costs this member's target and the targets that changed for it
         * (both about partitions / members), not the group. */
        if (hb > 64 + 16 * (uint64_t)(BIG_PARTITIONS / n + 1))
            fail_msg("join %d: %llu heartbeat steps", i + 1, (unsigned long long)hb);
    }
    /* Everyone reconciles: the first member revokes all but its share, then each member takes
     * its partitions. No heartbeat computes an assignment, each costs its own partitions. */
    uint64_t runs = w->assign_runs;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < BIG_MEMBERS; i++) {
            struct cg_group_desc d;
            cg_describe(e->gc, "big", &d);
            int owned = -1, target = 0;
            struct cg_tp *mine = NULL;
            for (int k = 0; k < d.n_members; k++)
                if (strcmp(d.members[k].member_id, ids[i]) == 0) {
                    owned = d.members[k].n_assigned;
                    target = d.members[k].n_target;
                    mine = calloc((size_t)owned + 1, sizeof(*mine));
                    memcpy(mine, d.members[k].assigned, (size_t)owned * sizeof(*mine));
                }
            cg_describe_free(&d);
            assert_true(owned >= 0);
            struct cg_heartbeat_args a = {
                .version = 1, .group_id = "big", .member_id = ids[i], .member_epoch = epochs[i],
                .rebalance_timeout_ms = -1, .n_topics = -1, .owned = mine, .n_owned = owned,
            };
            uint64_t hb_before = w->heartbeat_steps;
            struct cg_heartbeat_result r;
            cg_heartbeat(e->gc, &VIEW, &a, &r);
            assert_int_equal(r.error, KERR_NONE);
            epochs[i] = r.member_epoch;
            uint64_t hb = w->heartbeat_steps - hb_before;
            cg_heartbeat_result_free(&r);
            free(mine);
            fake_records_free(e);
            /* Its partitions: owned, target, and those it was revoking (reported last time). */
            if (hb > 64 + 8 * (uint64_t)(owned + target + reported[i]))
                fail_msg("heartbeat of member %d: %llu steps for %d + %d + %d partitions", i,
                         (unsigned long long)hb, owned, target, reported[i]);
            reported[i] = owned;
        }
    assert_int_equal(w->assign_runs, runs);
    int min, max;
    assert_int_equal(total_assigned(e, "big", &min, &max), BIG_PARTITIONS);
    assert_int_equal(min, BIG_PARTITIONS / BIG_MEMBERS);
    assert_int_equal(max, BIG_PARTITIONS / BIG_MEMBERS);
    free(ids);
    free(epochs);
    free(reported);
    fake_env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_balanced_and_sticky),
        cmocka_unit_test(test_range_contiguous_and_sticky),
        cmocka_unit_test(test_join_revoke_then_reassign),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_regex_subscription_skips_internal_topics),
        cmocka_unit_test(test_static_member_leave_and_return),
        cmocka_unit_test(test_session_timeout_fences_member),
        cmocka_unit_test(test_rebalance_timeout_fences_a_member_that_does_not_revoke),
        cmocka_unit_test(test_commit_validation),
        cmocka_unit_test(test_restart_replays_consumer_groups),
        cmocka_unit_test(test_classic_and_consumer_groups_do_not_mix),
        cmocka_unit_test(test_online_upgrade_mixed_group_and_downgrade),
        cmocka_unit_test(test_online_upgrade_refused_by_policy),
        cmocka_unit_test(test_classic_member_must_rejoin_within_rebalance_timeout),
        cmocka_unit_test(test_group_max_size),
        cmocka_unit_test(test_big_group_assignment_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
