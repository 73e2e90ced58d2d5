/* coordinator: group membership of the classic protocol (Kafka's GroupCoordinator) — states
 * Empty → PreparingRebalance → CompletingRebalance → Stable, joins, syncs, heartbeats, leaves,
 * session expiry and the initial rebalance delay. No sockets, no files: see gc_env. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group_internal.h"
#include "group/group_internal.h"

#define GC_WHO "GroupCoordinator"

/* ---- small helpers ---- */

char *gc_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    GREGOR_ASSERT(d != NULL);
    return d;
}

static uint8_t *bytes_dup(const uint8_t *p, int32_t len)
{
    if (p == NULL || len <= 0)
        return NULL;
    uint8_t *d = malloc((size_t)len);
    GREGOR_ASSERT(d != NULL);
    memcpy(d, p, (size_t)len);
    return d;
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

int64_t gc_now(struct group_coordinator *gc)
{
    return gc->env.wall_ms(gc->env.ctx);
}

static int64_t gc_mono(struct group_coordinator *gc)
{
    return gc->env.mono_ms(gc->env.ctx);
}

static void timer_arm(struct group_coordinator *gc, struct gc_timer *t, int64_t when)
{
    if (t->id != 0)
        gc->env.timer_cancel(gc->env.ctx, t->id);
    t->id = gc->env.timer_add(gc->env.ctx, when, t);
    if (t->id == 0)
        LOG_ERROR(GC_WHO, "cannot arm a timer (kind %d): out of memory", (int)t->kind);
}

static void timer_stop(struct group_coordinator *gc, struct gc_timer *t)
{
    if (t->id != 0)
        gc->env.timer_cancel(gc->env.ctx, t->id);
    t->id = 0;
}

/* Kafka's member ids: "<client_id>-<random UUID>". */
static char *new_member_id(const char *client_id)
{
    uint8_t u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
        for (size_t i = 0; i < sizeof(u); i++)
            u[i] = (uint8_t)rand();
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    const char *c = client_id ? client_id : "";
    size_t n = strlen(c) + 38;
    char *id = malloc(n);
    GREGOR_ASSERT(id != NULL);
    snprintf(id, n,
             "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", c, u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
    return id;
}

const char *gc_state_name(enum gc_group_state s)
{
    switch (s) {
    case GC_EMPTY: return "Empty";
    case GC_PREPARING_REBALANCE: return "PreparingRebalance";
    case GC_COMPLETING_REBALANCE: return "CompletingRebalance";
    case GC_STABLE: return "Stable";
    case GC_DEAD: return "Dead";
    }
    return "Unknown";
}

/* ---- the group table ---- */

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

struct group *gc_group_find(struct group_coordinator *gc, const char *id)
{
    if (id == NULL)
        return NULL;
    for (struct group *g = gc->buckets[str_hash(id) % gc->nbuckets]; g; g = g->next)
        if (strcmp(g->id, id) == 0)
            return g;
    return NULL;
}

static void groups_grow(struct group_coordinator *gc)
{
    size_t nb = gc->nbuckets * 2;
    struct group **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < gc->nbuckets; i++) {
        struct group *g = gc->buckets[i];
        while (g) {
            struct group *next = g->next;
            size_t at = str_hash(g->id) % nb;
            g->next = b[at];
            b[at] = g;
            g = next;
        }
    }
    free(gc->buckets);
    gc->buckets = b;
    gc->nbuckets = nb;
}

struct group *gc_group_get_or_create(struct group_coordinator *gc, const char *id)
{
    struct group *g = gc_group_find(gc, id);
    if (g != NULL)
        return g;
    if (gc->ngroups >= gc->nbuckets)
        groups_grow(gc);
    g = calloc(1, sizeof(*g));
    GREGOR_ASSERT(g != NULL);
    g->gc = gc;
    g->id = gc_strdup(id);
    g->partition = gc_partition_for(id, gc->cfg.num_partitions);
    g->state = GC_EMPTY;
    g->state_ts = -1;
    g->join_timer.kind = GC_TIMER_JOIN;
    g->join_timer.owner = g;
    size_t at = str_hash(id) % gc->nbuckets;
    g->next = gc->buckets[at];
    gc->buckets[at] = g;
    gc->ngroups++;
    return g;
}

/* ---- protocol names of a group's members (Kafka's supportedProtocols) ---- */

static struct protocol_count *protocol_count_get(struct group *g, const char *name)
{
    return strtab_get(&g->protocols, name, &g->gc->work.protocol_steps);
}

/* Adds (delta 1) or removes (delta -1) a member's protocol names, each name once per member
 * however often the member lists it. */
static void protocols_count(struct group *g, const struct member *m, int delta)
{
    uint32_t stamp = ++g->protocol_stamp;
    for (int i = 0; i < m->n_protocols; i++) {
        const char *name = m->protocols[i].name;
        struct protocol_count *c = protocol_count_get(g, name);
        if (c == NULL) {
            GREGOR_ASSERT(delta > 0);
            c = calloc(1, sizeof(*c));
            GREGOR_ASSERT(c != NULL);
            c->name = gc_strdup(name);
            strtab_put(&g->protocols, c->name, c);
        }
        if (c->stamp == stamp)
            continue;
        c->stamp = stamp;
        c->count += delta;
        GREGOR_ASSERT(c->count >= 0 && c->count <= g->n_members + 1);
        if (c->count == 0) {
            strtab_del(&g->protocols, c->name, c);
            free(c->name);
            free(c);
        }
    }
}

/* Does every member list this protocol? */
static bool protocol_common(struct group *g, const char *name)
{
    const struct protocol_count *c = name ? protocol_count_get(g, name) : NULL;
    return c != NULL && c->count == g->n_members;
}

static void protocols_clear(struct group *g)
{
    for (size_t i = 0; i < g->protocols.cap; i++) {
        struct protocol_count *c = g->protocols.slots[i].val;
        if (c != NULL) {
            free(c->name);
            free(c);
        }
    }
    strtab_free(&g->protocols);
}

static void member_free(struct group_coordinator *gc, struct member *m)
{
    timer_stop(gc, &m->hb_timer);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->protocol_type);
    for (int i = 0; i < m->n_protocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    free(m->assignment);
    free(m);
}

static void pending_free(struct group_coordinator *gc, struct pending_member *p)
{
    timer_stop(gc, &p->timer);
    free(p->id);
    free(p);
}

/* Unlinks and frees a group; its members must have no waiters left. */
void gc_group_remove(struct group_coordinator *gc, struct group *g)
{
    struct group **pp = &gc->buckets[str_hash(g->id) % gc->nbuckets];
    while (*pp && *pp != g)
        pp = &(*pp)->next;
    if (*pp)
        *pp = g->next;
    gc->ngroups--;
    timer_stop(gc, &g->join_timer);
    while (g->members) {
        struct member *m = g->members;
        g->members = m->next;
        member_free(gc, m);
    }
    while (g->pending) {
        struct pending_member *p = g->pending;
        g->pending = p->next;
        pending_free(gc, p);
    }
    protocols_clear(g);
    strtab_free(&g->by_id);
    strtab_free(&g->by_instance);
    strtab_free(&g->pending_by_id);
    cg_group_free(g);
    if (g->meta.p != NULL)
        gc->live[g->partition]--;
    free(g->meta.p);
    gc->live[g->partition] -= (int64_t)g->offsets.count;
    offsets_free(&g->offsets);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

/* An Empty group that holds nothing (no members, offsets or log record) is forgotten. */
void gc_group_drop_if_unused(struct group_coordinator *gc, struct group *g)
{
    if (g->state == GC_EMPTY && g->n_members == 0 && g->n_pending == 0 &&
        g->offsets.count == 0 && g->meta.p == NULL && g->cg == NULL)
        gc_group_remove(gc, g);
}

struct member *gc_member_find(struct group *g, const char *member_id)
{
    return strtab_get(&g->by_id, member_id, &g->gc->work.member_steps);
}

struct member *gc_member_by_instance(struct group *g, const char *instance_id)
{
    return strtab_get(&g->by_instance, instance_id, &g->gc->work.member_steps);
}

/* Appends m to the member list and its indexes (its protocols are counted by member_update). */
static void member_link(struct group *g, struct member *m)
{
    m->next = NULL;
    m->prev = g->members_tail;
    if (g->members_tail)
        g->members_tail->next = m;
    else
        g->members = m;
    g->members_tail = m;
    g->n_members++;
    strtab_put(&g->by_id, m->id, m);
    if (m->instance_id)
        strtab_put(&g->by_instance, m->instance_id, m);
}

static void member_unlink(struct group *g, struct member *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        g->members = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        g->members_tail = m->prev;
    m->next = m->prev = NULL;
    g->n_members--;
    GREGOR_ASSERT(g->n_members >= 0);
    strtab_del(&g->by_id, m->id, m);
    strtab_del(&g->by_instance, m->instance_id, m);
    protocols_count(g, m, -1);
}

static struct pending_member *pending_find(struct group *g, const char *id)
{
    return strtab_get(&g->pending_by_id, id, &g->gc->work.member_steps);
}

static void pending_remove(struct group *g, struct pending_member *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        g->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    strtab_del(&g->pending_by_id, p->id, p);
    g->n_pending--;
    pending_free(g->gc, p);
}

/* ---- replies ---- */

static void join_reply_error(gc_join_cb cb, void *arg, int16_t err, const char *member_id)
{
    struct gc_join_result res = {
        .error = err,
        .generation = -1,
        .leader = "",
        .member_id = member_id ? member_id : "",
    };
    cb(arg, &res);
}

static void sync_reply_error(gc_sync_cb cb, void *arg, int16_t err)
{
    struct gc_sync_result res = {.error = err, .assignment_len = 0};
    cb(arg, &res);
}

static const struct member_protocol *member_protocol_find(const struct member *m, const char *name)
{
    if (name == NULL)
        return m->n_protocols > 0 ? &m->protocols[0] : NULL;
    for (int i = 0; i < m->n_protocols; i++) {
        m->group->gc->work.protocol_steps++;
        if (strcmp(m->protocols[i].name, name) == 0)
            return &m->protocols[i];
    }
    return NULL;
}

/* The JoinGroup answer for one member of the current generation naming `leader` as the leader:
 * the members and their metadata go only to the member so named. */
static void join_reply_as(struct group *g, struct member *m, const char *leader, bool skip,
                          gc_join_cb cb, void *arg)
{
    struct gc_join_result res = {
        .error = KERR_NONE,
        .generation = g->generation,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol,
        .leader = leader ? leader : "",
        .member_id = m->id,
    };
    struct gc_member_info *infos = NULL;
    if (str_eq(leader, m->id)) {
        infos = calloc((size_t)g->n_members + 1, sizeof(*infos));
        GREGOR_ASSERT(infos != NULL);
        int n = 0;
        for (struct member *x = g->members; x; x = x->next) {
            const struct member_protocol *p = member_protocol_find(x, g->protocol);
            infos[n].member_id = x->id;
            infos[n].instance_id = x->instance_id;
            infos[n].metadata = p ? p->metadata : NULL;
            infos[n].metadata_len = p ? p->metadata_len : 0;
            n++;
        }
        GREGOR_ASSERT(n == g->n_members);
        res.members = infos;
        res.n_members = n;
        res.skip_assignment = skip;
    }
    cb(arg, &res);
    free(infos);
}

/* The JoinGroup answer for one member of the current generation (members only to the leader). */
static void join_reply_current(struct group *g, struct member *m, gc_join_cb cb, void *arg)
{
    join_reply_as(g, m, g->leader, false, cb, arg);
}

void gc_heartbeat_reset(struct group_coordinator *gc, struct member *m)
{
    m->deadline_mono = gc_mono(gc) + m->session_timeout_ms;
    if (m->hb_timer.id == 0)
        timer_arm(gc, &m->hb_timer, m->deadline_mono);
}

/* ---- rebalance ---- */

static int32_t group_rebalance_timeout(const struct group *g)
{
    int32_t t = 0;
    for (const struct member *m = g->members; m; m = m->next)
        if (m->rebalance_timeout_ms > t)
            t = m->rebalance_timeout_ms;
    return t;
}

/* Answers every waiting SyncGroup with err and forgets the assignments (a new rebalance). */
static void reset_and_propagate(struct group *g, int16_t err)
{
    for (struct member *m = g->members; m; m = m->next) {
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        if (m->sync_cb) {
            gc_sync_cb cb = m->sync_cb;
            m->sync_cb = NULL;
            sync_reply_error(cb, m->sync_arg, err);
        }
    }
}

static void complete_join(struct group *g);

static void maybe_complete_join(struct group *g)
{
    if (g->state != GC_PREPARING_REBALANCE || g->initial_delay)
        return;
    if (g->n_awaiting_join == g->n_members && g->n_pending == 0)
        complete_join(g);
}

static void prepare_rebalance(struct group *g, const char *reason)
{
    struct group_coordinator *gc = g->gc;
    if (g->state == GC_COMPLETING_REBALANCE)
        reset_and_propagate(g, KERR_REBALANCE_IN_PROGRESS);
    bool was_empty = g->state == GC_EMPTY;
    g->state = GC_PREPARING_REBALANCE;
    g->state_ts = gc_now(gc);
    int64_t rto = group_rebalance_timeout(g);
    int64_t now = gc_mono(gc);
    LOG_INFO(GC_WHO, "Preparing to rebalance group %s in state PreparingRebalance with old "
             "generation %d (reason: %s)", g->id, g->generation, reason);
    if (was_empty) {
        int64_t delay = gc->cfg.initial_rebalance_delay_ms;
        if (delay > rto)
            delay = rto;
        g->initial_delay = true;
        g->new_member_added = false;
        g->initial_remaining_ms = rto - gc->cfg.initial_rebalance_delay_ms;
        if (g->initial_remaining_ms < 0)
            g->initial_remaining_ms = 0;
        timer_arm(gc, &g->join_timer, now + delay);
    } else {
        g->initial_delay = false;
        timer_arm(gc, &g->join_timer, now + rto);
        maybe_complete_join(g);
    }
}

/* The reason of a rebalance that a join starts, with the client's own (JoinGroup v8+) as
 * Kafka logs it. */
static const char *join_reason(char *buf, size_t n, const char *why, const struct gc_join_args *a)
{
    if (a->reason == NULL || a->reason[0] == '\0')
        return why;
    snprintf(buf, n, "%s; client reason: %s", why, a->reason);
    return buf;
}

static void maybe_prepare_rebalance(struct group *g, const char *reason)
{
    if (g->state == GC_EMPTY || g->state == GC_STABLE || g->state == GC_COMPLETING_REBALANCE)
        prepare_rebalance(g, reason);
    else if (g->state == GC_PREPARING_REBALANCE)
        maybe_complete_join(g);
}

/* Kafka's selectProtocol: among the protocols every member supports, the one most members list
 * first (ties: the earlier in the first member's list). One pass over what the members sent:
 * candidates are the names every member counts for (group.protocols). */
static char *select_protocol(struct group *g)
{
    const struct member *first = g->members;
    if (first == NULL)
        return NULL;
    /* Every candidate is in the first member's list: reset their votes. */
    for (int i = 0; i < first->n_protocols; i++) {
        struct protocol_count *c = protocol_count_get(g, first->protocols[i].name);
        GREGOR_ASSERT(c != NULL);
        c->votes = 0;
    }
    for (const struct member *m = g->members; m; m = m->next)
        for (int j = 0; j < m->n_protocols; j++) {
            struct protocol_count *c = protocol_count_get(g, m->protocols[j].name);
            if (c != NULL && c->count == g->n_members) {
                c->votes++;
                break;
            }
        }
    int best = -1, best_votes = -1;
    for (int i = 0; i < first->n_protocols; i++) {
        const struct protocol_count *c = protocol_count_get(g, first->protocols[i].name);
        if (c->count == g->n_members && c->votes > best_votes) {
            best = i;
            best_votes = c->votes;
        }
    }
    return best >= 0 ? gc_strdup(first->protocols[best].name) : NULL;
}

/* A member's parked JoinGroup and SyncGroup (if any) are answered with err. */
static void member_fail_waiters(struct group *g, struct member *m, int16_t err)
{
    if (m->join_cb) {
        gc_join_cb cb = m->join_cb;
        m->join_cb = NULL;
        g->n_awaiting_join--;
        join_reply_error(cb, m->join_arg, err, m->id);
    }
    if (m->sync_cb) {
        gc_sync_cb cb = m->sync_cb;
        m->sync_cb = NULL;
        sync_reply_error(cb, m->sync_arg, err);
    }
}

/* Removes a member without touching the group state; its waiters get err. */
static void member_remove_raw(struct group *g, struct member *m, int16_t err)
{
    member_fail_waiters(g, m, err);
    member_unlink(g, m);
    if (str_eq(g->leader, m->id)) {
        free(g->leader);
        g->leader = g->members ? gc_strdup(g->members->id) : NULL;
    }
    member_free(g->gc, m);
}

static void member_remove_and_update(struct group *g, struct member *m, const char *reason)
{
    member_remove_raw(g, m, KERR_UNKNOWN_MEMBER_ID);
    if (g->state == GC_STABLE || g->state == GC_COMPLETING_REBALANCE)
        prepare_rebalance(g, reason);
    else if (g->state == GC_PREPARING_REBALANCE)
        maybe_complete_join(g);
}

static void complete_join(struct group *g)
{
    struct group_coordinator *gc = g->gc;
    timer_stop(gc, &g->join_timer);
    g->initial_delay = false;
    /* Dynamic members that did not rejoin in time are gone; static ones keep their place. */
    struct member *m = g->members;
    while (m) {
        struct member *next = m->next;
        if (m->join_cb == NULL && m->instance_id == NULL)
            member_remove_raw(g, m, KERR_UNKNOWN_MEMBER_ID);
        m = next;
    }
    g->generation++;
    free(g->protocol);
    g->protocol = NULL;
    g->state_ts = gc_now(gc);
    if (g->n_members == 0) {
        g->state = GC_EMPTY;
        free(g->leader);
        g->leader = NULL;
        LOG_INFO(GC_WHO, "Group %s with generation %d is now empty", g->id, g->generation);
        int e = gc_store_group(gc, g);
        if (e != KERR_NONE)
            LOG_LIMITED(LOG_LEVEL_WARN, GC_WHO,
                        "cannot persist the empty group %s: %s", g->id, kerr_name(e));
        return;
    }
    g->protocol = select_protocol(g);
    g->state = GC_COMPLETING_REBALANCE;
    /* The leader stays if it rejoined; otherwise the first member that did. */
    struct member *leader = gc_member_find(g, g->leader);
    if (leader == NULL || leader->join_cb == NULL) {
        struct member *pick = NULL;
        for (struct member *x = g->members; x && !pick; x = x->next)
            if (x->join_cb)
                pick = x;
        if (pick == NULL)
            pick = leader ? leader : g->members;
        free(g->leader);
        g->leader = gc_strdup(pick->id);
    }
    LOG_INFO(GC_WHO, "Stabilized group %s generation %d with %d members (protocol %s)", g->id,
             g->generation, g->n_members, g->protocol ? g->protocol : "none");
    for (m = g->members; m; m = m->next) {
        if (m->join_cb == NULL)
            continue;
        gc_join_cb cb = m->join_cb;
        void *arg = m->join_arg;
        m->join_cb = NULL;
        g->n_awaiting_join--;
        gc_heartbeat_reset(gc, m);
        join_reply_current(g, m, cb, arg);
    }
}

/* ---- timers ---- */

static void join_timer_fired(struct group *g)
{
    struct group_coordinator *gc = g->gc;
    if (g->state != GC_PREPARING_REBALANCE)
        return;
    if (g->initial_delay && g->new_member_added && g->initial_remaining_ms > 0) {
        int64_t delay = gc->cfg.initial_rebalance_delay_ms;
        if (delay > g->initial_remaining_ms)
            delay = g->initial_remaining_ms;
        g->initial_remaining_ms -= delay;
        g->new_member_added = false;
        timer_arm(gc, &g->join_timer, gc_mono(gc) + delay);
        return;
    }
    complete_join(g);
    gc_group_drop_if_unused(gc, g);
}

static void heartbeat_timer_fired(struct member *m)
{
    struct group *g = m->group;
    struct group_coordinator *gc = g->gc;
    int64_t now = gc_mono(gc);
    if (m->join_cb || m->sync_cb) {
        /* A member waiting for us is alive by definition. */
        m->deadline_mono = now + m->session_timeout_ms;
        timer_arm(gc, &m->hb_timer, m->deadline_mono);
        return;
    }
    if (m->deadline_mono > now) {
        timer_arm(gc, &m->hb_timer, m->deadline_mono);
        return;
    }
    LOG_INFO(GC_WHO, "Member %s in group %s has failed, removing it from the group "
             "(session timeout %d ms)", m->id, g->id, m->session_timeout_ms);
    member_remove_and_update(g, m, "removing member on heartbeat expiration");
    gc_group_drop_if_unused(gc, g);
}

static void pending_timer_fired(struct pending_member *p)
{
    struct group *g = p->group;
    LOG_INFO(GC_WHO, "Pending member %s in group %s has been removed after session timeout",
             p->id, g->id);
    pending_remove(g, p);
    maybe_complete_join(g);
    gc_group_drop_if_unused(g->gc, g);
}

void gc_timer_fire(struct group_coordinator *gc, struct gc_timer *t)
{
    t->id = 0;
    switch (t->kind) {
    case GC_TIMER_HEARTBEAT:
        heartbeat_timer_fired(t->owner);
        break;
    case GC_TIMER_JOIN:
        join_timer_fired(t->owner);
        break;
    case GC_TIMER_PENDING:
        pending_timer_fired(t->owner);
        break;
    case GC_TIMER_EXPIRY:
        gc_expire(gc);
        timer_arm(gc, &gc->expiry_timer, gc_mono(gc) + gc->cfg.retention_check_interval_ms);
        break;
    case GC_TIMER_CG_SESSION:
    case GC_TIMER_CG_REBALANCE:
        cg_timer_fire(gc, t);
        break;
    }
}

/* ---- JoinGroup ---- */

static bool supports_protocols(struct group *g, const struct gc_join_args *a)
{
    if (a->protocol_type == NULL || a->protocol_type[0] == '\0' || a->n_protocols <= 0)
        return false;
    if (g->n_members == 0)
        return true;
    if (!str_eq(g->protocol_type, a->protocol_type))
        return false;
    for (int i = 0; i < a->n_protocols; i++)
        if (protocol_common(g, a->protocols[i].name))
            return true;
    return false;
}

static bool protocols_match(const struct member *m, const struct gc_join_args *a)
{
    if (m->n_protocols != a->n_protocols)
        return false;
    for (int i = 0; i < a->n_protocols; i++) {
        const struct member_protocol *p = &m->protocols[i];
        const struct gc_protocol *q = &a->protocols[i];
        int32_t ql = q->metadata ? q->metadata_len : 0;
        if (!str_eq(p->name, q->name) || p->metadata_len != ql ||
            (ql > 0 && memcmp(p->metadata, q->metadata, (size_t)ql) != 0))
            return false;
    }
    return true;
}

static void member_update(struct group *g, struct member *m, const struct gc_join_args *a)
{
    protocols_count(g, m, -1);
    for (int i = 0; i < m->n_protocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    m->protocols = calloc((size_t)a->n_protocols + 1, sizeof(*m->protocols));
    GREGOR_ASSERT(m->protocols != NULL);
    m->n_protocols = a->n_protocols;
    for (int i = 0; i < a->n_protocols; i++) {
        m->protocols[i].name = gc_strdup(a->protocols[i].name ? a->protocols[i].name : "");
        m->protocols[i].metadata = bytes_dup(a->protocols[i].metadata, a->protocols[i].metadata_len);
        m->protocols[i].metadata_len =
            m->protocols[i].metadata ? a->protocols[i].metadata_len : 0;
    }
    protocols_count(g, m, 1);
    m->session_timeout_ms = a->session_timeout_ms;
    m->rebalance_timeout_ms = a->rebalance_timeout_ms;
    free(m->protocol_type);
    m->protocol_type = gc_strdup(a->protocol_type);
    if (a->client_id) {
        free(m->client_id);
        m->client_id = gc_strdup(a->client_id);
    }
    if (a->client_host) {
        free(m->client_host);
        m->client_host = gc_strdup(a->client_host);
    }
}

static void member_await_join(struct group *g, struct member *m, gc_join_cb cb, void *arg)
{
    if (m->join_cb) {
        /* A duplicate join (the client gave up on the first): the newest one waits. */
        gc_join_cb old = m->join_cb;
        m->join_cb = NULL;
        join_reply_error(old, m->join_arg, KERR_REBALANCE_IN_PROGRESS, m->id);
    } else {
        g->n_awaiting_join++;
    }
    m->join_cb = cb;
    m->join_arg = arg;
}

static void add_member_and_rebalance(struct group *g, char *id, const struct gc_join_args *a,
                                     gc_join_cb cb, void *arg)
{
    struct group_coordinator *gc = g->gc;
    struct member *m = calloc(1, sizeof(*m));
    GREGOR_ASSERT(m != NULL);
    m->group = g;
    m->id = id;
    m->instance_id = gc_strdup(a->instance_id);
    m->client_id = gc_strdup(a->client_id ? a->client_id : "");
    m->client_host = gc_strdup(a->client_host ? a->client_host : "");
    m->hb_timer.kind = GC_TIMER_HEARTBEAT;
    m->hb_timer.owner = m;
    member_update(g, m, a);
    if (g->n_members == 0) {
        free(g->protocol_type);
        g->protocol_type = gc_strdup(a->protocol_type);
    }
    member_link(g, m);
    if (g->leader == NULL)
        g->leader = gc_strdup(m->id);
    member_await_join(g, m, cb, arg);
    gc_heartbeat_reset(gc, m);
    if (g->state == GC_PREPARING_REBALANCE && g->initial_delay)
        g->new_member_added = true;
    char rb[512];
    maybe_prepare_rebalance(g, join_reason(rb, sizeof(rb), "adding new member", a));
}

/* A member's current join parameters, deep-copied: what a failed static rejoin restores. */
struct member_saved {
    struct gc_join_args args;
    struct gc_protocol *protocols;
};

static void member_save(const struct member *m, struct member_saved *s)
{
    s->protocols = calloc((size_t)m->n_protocols + 1, sizeof(*s->protocols));
    GREGOR_ASSERT(s->protocols != NULL);
    for (int i = 0; i < m->n_protocols; i++) {
        s->protocols[i].name = gc_strdup(m->protocols[i].name);
        s->protocols[i].metadata = bytes_dup(m->protocols[i].metadata, m->protocols[i].metadata_len);
        s->protocols[i].metadata_len = m->protocols[i].metadata_len;
    }
    s->args = (struct gc_join_args){
        .protocol_type = gc_strdup(m->protocol_type),
        .client_id = gc_strdup(m->client_id),
        .client_host = gc_strdup(m->client_host),
        .session_timeout_ms = m->session_timeout_ms,
        .rebalance_timeout_ms = m->rebalance_timeout_ms,
        .protocols = s->protocols,
        .n_protocols = m->n_protocols,
    };
}

static void member_saved_free(struct member_saved *s)
{
    for (int i = 0; i < s->args.n_protocols; i++) {
        free((char *)s->protocols[i].name);
        free((uint8_t *)s->protocols[i].metadata);
    }
    free(s->protocols);
    free((char *)s->args.protocol_type);
    free((char *)s->args.client_id);
    free((char *)s->args.client_host);
}

/* Gives a static member its new member id (the old one is fenced from now on). */
static void member_rename(struct group *g, struct member *m, char *new_id)
{
    bool was_leader = str_eq(g->leader, m->id);
    strtab_del(&g->by_id, m->id, m);
    free(m->id);
    m->id = new_id;
    strtab_put(&g->by_id, m->id, m);
    if (was_leader) {
        free(g->leader);
        g->leader = gc_strdup(new_id);
    }
}

/* The JoinGroup answer of a static member that rejoined a Stable group without a rebalance
 * (Kafka's updateStaticMemberThenRebalanceOrCompleteJoin). From v9 the leader gets the members
 * with SkipAssignment set: it may look at them but must not assign. Before v9 the leader field
 * names the old leader id, so that the leader, not recognizing itself, just syncs and gets its
 * assignment back: an assignment computed now would not be sent to a Stable group's members. */
static void join_reply_static_rejoin(struct group *g, struct member *m, const char *old_leader,
                                     int16_t version, gc_join_cb cb, void *arg)
{
    if (version >= 9)
        join_reply_as(g, m, g->leader, str_eq(g->leader, m->id), cb, arg);
    else
        join_reply_as(g, m, old_leader, false, cb, arg);
}

/* A static member rejoining a Stable group that keeps its selected protocol keeps its place and
 * assignment: only its new member id (and join parameters) are persisted. When that append
 * fails, the member gets its old id and parameters back and the join gets the error. */
static void static_rejoin_stable(struct group *g, struct member *m, char *old_id,
                                 const char *old_leader, struct member_saved *saved,
                                 const struct gc_join_args *a, gc_join_cb cb, void *arg)
{
    LOG_INFO(GC_WHO, "Static member %s of group %s joins during Stable stage and does not "
             "change the selected protocol %s: no rebalance", m->instance_id, g->id, g->protocol);
    int e = gc_store_group(g->gc, g);
    if (e == KERR_NONE) {
        join_reply_static_rejoin(g, m, old_leader, a->version, cb, arg);
        return;
    }
    LOG_LIMITED(LOG_LEVEL_WARN, GC_WHO, "cannot persist static member %s (instance %s) of group "
                "%s: %s; reverting to member id %s", m->id, m->instance_id, g->id, kerr_name(e),
                old_id);
    member_update(g, m, &saved->args);
    member_rename(g, m, gc_strdup(old_id));
    gc_heartbeat_reset(g->gc, m);
    struct gc_join_result res = {
        .error = KERR_COORDINATOR_NOT_AVAILABLE,
        .generation = g->generation,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol,
        .leader = old_leader ? old_leader : "",
        .member_id = "",
    };
    cb(arg, &res);
}

/* A static member came back with a new member id: the old id is fenced. As Kafka, a Stable
 * group stays Stable unless the member's new protocols change the group's selected protocol,
 * whether or not the member is the leader; in CompletingRebalance the leader may already hold
 * the old id in its assignment, so the group rebalances; in PreparingRebalance the member simply
 * joins the rebalance. */
static void replace_static_member(struct group *g, struct member *m, char *new_id,
                                  const struct gc_join_args *a, gc_join_cb cb, void *arg)
{
    GREGOR_ASSERT(g->state != GC_EMPTY && g->state != GC_DEAD);
    if (m->join_cb) {
        gc_join_cb old = m->join_cb;
        m->join_cb = NULL;
        g->n_awaiting_join--;
        join_reply_error(old, m->join_arg, KERR_FENCED_INSTANCE_ID, m->id);
    }
    if (m->sync_cb) {
        gc_sync_cb old = m->sync_cb;
        m->sync_cb = NULL;
        sync_reply_error(old, m->sync_arg, KERR_FENCED_INSTANCE_ID);
    }
    LOG_INFO(GC_WHO, "Static member %s of group %s with unknown member id rejoins, assigning "
             "new member id %s (old %s)", m->instance_id, g->id, new_id, m->id);
    char *old_id = gc_strdup(m->id);
    char *old_leader = gc_strdup(g->leader);
    struct member_saved saved;
    member_save(m, &saved);
    member_rename(g, m, new_id);
    member_update(g, m, a);
    gc_heartbeat_reset(g->gc, m);
    char why[512], rb[768];
    if (g->state == GC_STABLE) {
        char *next = select_protocol(g);
        bool keep = str_eq(next, g->protocol);
        free(next);
        if (keep) {
            static_rejoin_stable(g, m, old_id, old_leader, &saved, a, cb, arg);
        } else {
            member_await_join(g, m, cb, arg);
            snprintf(why, sizeof(why), "Group's selectedProtocol will change because static "
                     "member %s with instance id %s joined with change of protocol", m->id,
                     m->instance_id);
            prepare_rebalance(g, join_reason(rb, sizeof(rb), why, a));
        }
    } else if (g->state == GC_COMPLETING_REBALANCE) {
        member_await_join(g, m, cb, arg);
        snprintf(why, sizeof(why), "Updating metadata for static member %s with instance id %s",
                 m->id, m->instance_id);
        prepare_rebalance(g, join_reason(rb, sizeof(rb), why, a));
    } else {
        member_await_join(g, m, cb, arg);
        maybe_complete_join(g);
    }
    member_saved_free(&saved);
    free(old_leader);
    free(old_id);
}

static void join_new_member(struct group *g, const struct gc_join_args *a, gc_join_cb cb,
                            void *arg)
{
    struct group_coordinator *gc = g->gc;
    if (a->instance_id) {
        struct member *old = gc_member_by_instance(g, a->instance_id);
        if (old) {
            replace_static_member(g, old, new_member_id(a->client_id), a, cb, arg);
            return;
        }
    }
    if (g->n_members + g->n_pending >= gc->cfg.max_size) {
        join_reply_error(cb, arg, KERR_GROUP_MAX_SIZE_REACHED, "");
        return;
    }
    char *id = new_member_id(a->client_id);
    if (a->instance_id == NULL && a->version >= 4) {
        /* KIP-394: the member must come back with this id before it counts. */
        struct pending_member *p = calloc(1, sizeof(*p));
        GREGOR_ASSERT(p != NULL);
        p->group = g;
        p->id = id;
        p->timer.kind = GC_TIMER_PENDING;
        p->timer.owner = p;
        p->next = g->pending;
        if (g->pending)
            g->pending->prev = p;
        g->pending = p;
        g->n_pending++;
        strtab_put(&g->pending_by_id, p->id, p);
        timer_arm(gc, &p->timer, gc_mono(gc) + a->session_timeout_ms);
        join_reply_error(cb, arg, KERR_MEMBER_ID_REQUIRED, id);
        return;
    }
    add_member_and_rebalance(g, id, a, cb, arg);
}

static void join_known_member(struct group *g, const struct gc_join_args *a, gc_join_cb cb,
                              void *arg)
{
    char rb[512];
    struct pending_member *p = pending_find(g, a->member_id);
    if (p != NULL) {
        char *id = gc_strdup(p->id);
        pending_remove(g, p);
        add_member_and_rebalance(g, id, a, cb, arg);
        return;
    }
    if (a->instance_id) {
        struct member *s = gc_member_by_instance(g, a->instance_id);
        if (s == NULL) {
            join_reply_error(cb, arg, KERR_UNKNOWN_MEMBER_ID, a->member_id);
            return;
        }
        if (strcmp(s->id, a->member_id) != 0) {
            join_reply_error(cb, arg, KERR_FENCED_INSTANCE_ID, a->member_id);
            return;
        }
    }
    struct member *m = gc_member_find(g, a->member_id);
    if (m == NULL) {
        join_reply_error(cb, arg, KERR_UNKNOWN_MEMBER_ID, a->member_id);
        return;
    }
    gc_heartbeat_reset(g->gc, m);
    switch (g->state) {
    case GC_PREPARING_REBALANCE:
        member_update(g, m, a);
        member_await_join(g, m, cb, arg);
        maybe_complete_join(g);
        return;
    case GC_COMPLETING_REBALANCE:
        if (protocols_match(m, a)) {
            join_reply_current(g, m, cb, arg);
            return;
        }
        member_update(g, m, a);
        member_await_join(g, m, cb, arg);
        prepare_rebalance(g, join_reason(rb, sizeof(rb), "member rejoined with new metadata", a));
        return;
    case GC_STABLE:
        if (!str_eq(g->leader, m->id) && protocols_match(m, a)) {
            join_reply_current(g, m, cb, arg);
            return;
        }
        member_update(g, m, a);
        member_await_join(g, m, cb, arg);
        prepare_rebalance(g, join_reason(rb, sizeof(rb),
                                         str_eq(g->leader, m->id) ? "leader rejoined"
                                                                  : "member rejoined with new metadata",
                                         a));
        return;
    case GC_EMPTY:
    case GC_DEAD:
        break;
    }
    join_reply_error(cb, arg, KERR_UNKNOWN_MEMBER_ID, a->member_id);
}

void gc_join(struct group_coordinator *gc, const struct gc_join_args *a, gc_join_cb cb, void *arg)
{
    const char *mid = a->member_id ? a->member_id : "";
    if (a->group_id == NULL || a->group_id[0] == '\0') {
        join_reply_error(cb, arg, KERR_INVALID_GROUP_ID, mid);
        return;
    }
    if (a->session_timeout_ms < gc->cfg.min_session_timeout_ms ||
        a->session_timeout_ms > gc->cfg.max_session_timeout_ms) {
        join_reply_error(cb, arg, KERR_INVALID_SESSION_TIMEOUT, mid);
        return;
    }
    bool unknown = mid[0] == '\0';
    struct group *g = gc_group_find(gc, a->group_id);
    if (g == NULL) {
        if (!unknown) {
            join_reply_error(cb, arg, KERR_UNKNOWN_MEMBER_ID, mid);
            return;
        }
        g = gc_group_get_or_create(gc, a->group_id);
    }
    if (g->state == GC_DEAD) {
        join_reply_error(cb, arg, KERR_COORDINATOR_NOT_AVAILABLE, mid);
        return;
    }
    if (g->cg != NULL) {
        /* A consumer (KIP-848) group: with members, a classic member joins it as such (online
         * migration); an empty one becomes classic. */
        if (g->cg->n_members > 0) {
            cg_classic_join_group(gc, g, a, cb, arg);
            return;
        }
        int16_t ce = cg_classic_join(gc, g);
        if (ce != KERR_NONE) {
            join_reply_error(cb, arg, ce, mid);
            return;
        }
    }
    if (!supports_protocols(g, a)) {
        join_reply_error(cb, arg, KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
        gc_group_drop_if_unused(gc, g);
        return;
    }
    if (unknown)
        join_new_member(g, a, cb, arg);
    else
        join_known_member(g, a, cb, arg);
}

/* ---- SyncGroup / Heartbeat / LeaveGroup ---- */

/* Kafka's validateMember: static members are checked by instance id first. */
int16_t gc_validate_member(struct group *g, const char *member_id, const char *instance_id,
                               struct member **out)
{
    *out = NULL;
    if (instance_id) {
        struct member *s = gc_member_by_instance(g, instance_id);
        if (s == NULL)
            return KERR_UNKNOWN_MEMBER_ID;
        if (member_id == NULL || strcmp(s->id, member_id) != 0)
            return KERR_FENCED_INSTANCE_ID;
    }
    *out = gc_member_find(g, member_id);
    return *out ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
}

static void sync_reply_member(struct group *g, struct member *m, gc_sync_cb cb, void *arg)
{
    struct gc_sync_result res = {
        .error = KERR_NONE,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol,
        .assignment = m->assignment,
        .assignment_len = m->assignment_len,
    };
    cb(arg, &res);
}

static void sync_leader_assignment(struct group *g, const struct gc_sync_args *a)
{
    struct group_coordinator *gc = g->gc;
    for (struct member *m = g->members; m; m = m->next) {
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
    }
    for (int i = 0; i < a->n_assignments; i++) {
        struct member *m = gc_member_find(g, a->assignments[i].member_id);
        if (m == NULL)
            continue;
        free(m->assignment);
        m->assignment = bytes_dup(a->assignments[i].assignment, a->assignments[i].assignment_len);
        m->assignment_len = m->assignment ? a->assignments[i].assignment_len : 0;
    }
    int e = gc_store_group(gc, g);
    if (e != KERR_NONE) {
        LOG_LIMITED(LOG_LEVEL_WARN, GC_WHO,
                    "cannot persist group %s generation %d: %s", g->id, g->generation,
                    kerr_name(e));
        reset_and_propagate(g, KERR_COORDINATOR_NOT_AVAILABLE);
        prepare_rebalance(g, "error persisting the assignment");
        return;
    }
    g->state = GC_STABLE;
    g->state_ts = gc_now(gc);
    for (struct member *m = g->members; m; m = m->next) {
        if (m->sync_cb == NULL)
            continue;
        gc_sync_cb cb = m->sync_cb;
        m->sync_cb = NULL;
        sync_reply_member(g, m, cb, m->sync_arg);
    }
}

void gc_sync(struct group_coordinator *gc, const struct gc_sync_args *a, gc_sync_cb cb, void *arg)
{
    struct group *g = gc_group_find(gc, a->group_id);
    if (g == NULL) {
        sync_reply_error(cb, arg, KERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (g->state == GC_DEAD) {
        sync_reply_error(cb, arg, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (g->cg != NULL) {
        cg_classic_sync_group(gc, g, a, cb, arg);
        return;
    }
    struct member *m;
    int16_t e = gc_validate_member(g, a->member_id, a->instance_id, &m);
    if (e != KERR_NONE) {
        sync_reply_error(cb, arg, e);
        return;
    }
    if (a->generation != g->generation) {
        sync_reply_error(cb, arg, KERR_ILLEGAL_GENERATION);
        return;
    }
    if ((a->protocol_type && !str_eq(a->protocol_type, g->protocol_type)) ||
        (a->protocol_name && !str_eq(a->protocol_name, g->protocol))) {
        sync_reply_error(cb, arg, KERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    switch (g->state) {
    case GC_PREPARING_REBALANCE:
        sync_reply_error(cb, arg, KERR_REBALANCE_IN_PROGRESS);
        return;
    case GC_COMPLETING_REBALANCE:
        if (m->sync_cb) {
            gc_sync_cb old = m->sync_cb;
            m->sync_cb = NULL;
            sync_reply_error(old, m->sync_arg, KERR_REBALANCE_IN_PROGRESS);
        }
        m->sync_cb = cb;
        m->sync_arg = arg;
        gc_heartbeat_reset(gc, m);
        if (str_eq(g->leader, m->id))
            sync_leader_assignment(g, a);
        return;
    case GC_STABLE:
        gc_heartbeat_reset(gc, m);
        sync_reply_member(g, m, cb, arg);
        return;
    case GC_EMPTY:
    case GC_DEAD:
        break;
    }
    sync_reply_error(cb, arg, KERR_UNKNOWN_MEMBER_ID);
}

int16_t gc_heartbeat(struct group_coordinator *gc, const char *group_id, int32_t generation,
                     const char *member_id, const char *instance_id)
{
    struct group *g = gc_group_find(gc, group_id);
    if (g == NULL)
        return KERR_UNKNOWN_MEMBER_ID;
    if (g->state == GC_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (g->cg != NULL)
        return cg_classic_heartbeat(gc, g, generation, member_id, instance_id);
    struct member *m;
    int16_t e = gc_validate_member(g, member_id, instance_id, &m);
    if (e != KERR_NONE)
        return e;
    if (generation != g->generation)
        return KERR_ILLEGAL_GENERATION;
    switch (g->state) {
    case GC_PREPARING_REBALANCE:
        gc_heartbeat_reset(gc, m);
        return KERR_REBALANCE_IN_PROGRESS;
    case GC_COMPLETING_REBALANCE:
    case GC_STABLE:
        gc_heartbeat_reset(gc, m);
        return KERR_NONE;
    case GC_EMPTY:
    case GC_DEAD:
        break;
    }
    return KERR_UNKNOWN_MEMBER_ID;
}

int16_t gc_leave(struct group_coordinator *gc, const char *group_id, struct gc_leave_member *lm,
                 int n)
{
    struct group *g = gc_group_find(gc, group_id);
    if (g == NULL) {
        for (int i = 0; i < n; i++)
            lm[i].error = KERR_UNKNOWN_MEMBER_ID;
        return KERR_NONE;
    }
    if (g->state == GC_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (g->cg != NULL) {
        int k = cg_classic_leave(gc, g, lm, n);
        if (k == n)
            return KERR_NONE;
        /* The group became classic again (downgrade): the rest leave it as such. */
        lm += k;
        n -= k;
    }
    bool changed = false;
    for (int i = 0; i < n; i++) {
        const char *mid = lm[i].member_id ? lm[i].member_id : "";
        struct member *m = NULL;
        if (lm[i].instance_id) {
            m = gc_member_by_instance(g, lm[i].instance_id);
            if (m == NULL) {
                lm[i].error = KERR_UNKNOWN_MEMBER_ID;
                continue;
            }
            if (mid[0] != '\0' && strcmp(mid, m->id) != 0) {
                lm[i].error = KERR_FENCED_INSTANCE_ID;
                continue;
            }
        } else {
            struct pending_member *p = mid[0] ? pending_find(g, mid) : NULL;
            if (p != NULL) {
                pending_remove(g, p);
                lm[i].error = KERR_NONE;
                changed = true;
                continue;
            }
            m = gc_member_find(g, mid);
            if (m == NULL) {
                lm[i].error = KERR_UNKNOWN_MEMBER_ID;
                continue;
            }
        }
        LOG_INFO(GC_WHO, "Member %s has left group %s through explicit LeaveGroup request",
                 m->id, g->id);
        member_remove_raw(g, m, KERR_UNKNOWN_MEMBER_ID);
        lm[i].error = KERR_NONE;
        changed = true;
    }
    if (changed) {
        if (g->state == GC_STABLE || g->state == GC_COMPLETING_REBALANCE)
            prepare_rebalance(g, "removing members on LeaveGroup");
        else if (g->state == GC_PREPARING_REBALANCE)
            maybe_complete_join(g);
    }
    return KERR_NONE;
}

/* ---- list / describe / delete ---- */

int gc_list(struct group_coordinator *gc, struct gc_group_summary **out)
{
    *out = calloc(gc->ngroups + 1, sizeof(**out));
    if (*out == NULL)
        return 0;
    int n = 0;
    for (size_t i = 0; i < gc->nbuckets; i++)
        for (struct group *g = gc->buckets[i]; g; g = g->next) {
            if (g->state == GC_DEAD)
                continue;
            (*out)[n].group_id = g->id;
            (*out)[n].protocol_type = g->cg ? "consumer" : (g->protocol_type ? g->protocol_type : "");
            (*out)[n].state = g->state;
            (*out)[n].state_name = g->cg ? cg_state_name(g) : gc_state_name(g->state);
            (*out)[n].type = g->cg ? "consumer" : "classic";
            n++;
        }
    return n;
}

void gc_describe(struct group_coordinator *gc, const char *group_id, struct gc_group_desc *d)
{
    memset(d, 0, sizeof(*d));
    d->state = GC_DEAD;
    d->protocol_type = "";
    d->protocol = "";
    struct group *g = gc_group_find(gc, group_id);
    d->consumer = g != NULL && g->cg != NULL;
    if (g == NULL || g->state == GC_DEAD || g->cg != NULL) /* consumer groups: Dead, as Kafka */
        return;
    d->found = true;
    d->state = g->state;
    d->protocol_type = g->protocol_type ? g->protocol_type : "";
    bool stable = g->state == GC_STABLE;
    if (stable && g->protocol)
        d->protocol = g->protocol;
    d->members = calloc((size_t)g->n_members + 1, sizeof(*d->members));
    if (d->members == NULL)
        return;
    for (struct member *m = g->members; m; m = m->next) {
        struct gc_member_desc *md = &d->members[d->n_members++];
        md->member_id = m->id;
        md->instance_id = m->instance_id;
        md->client_id = m->client_id;
        md->client_host = m->client_host;
        if (stable) {
            const struct member_protocol *p = member_protocol_find(m, g->protocol);
            md->metadata = p ? p->metadata : NULL;
            md->metadata_len = p ? p->metadata_len : 0;
            md->assignment = m->assignment;
            md->assignment_len = m->assignment_len;
        }
    }
}

void gc_describe_free(struct gc_group_desc *d)
{
    free(d->members);
    d->members = NULL;
}

int16_t gc_delete_group(struct group_coordinator *gc, const char *group_id)
{
    if (group_id == NULL)
        return KERR_INVALID_GROUP_ID;
    struct group *g = gc_group_find(gc, group_id);
    if (g == NULL || g->state == GC_DEAD)
        return KERR_GROUP_ID_NOT_FOUND;
    if (g->state != GC_EMPTY || g->n_members > 0 || g->n_pending > 0)
        return KERR_NON_EMPTY_GROUP;
    struct gc_record_list l = {0};
    int e = KERR_NONE;
    for (size_t i = 0; i < g->offsets.nbuckets && e == KERR_NONE; i++)
        for (struct offset_entry *x = g->offsets.buckets[i]; x && e == KERR_NONE; x = x->next)
            e = records_add_offset_tombstone(&l, g->id, x->topic, x->partition);
    if (e == KERR_NONE)
        e = records_add_group_tombstone(&l, g->id);
    if (e == KERR_NONE)
        e = cg_records_add_tombstones(&l, g);
    if (e == KERR_NONE)
        e = records_append(gc, g->partition, &l);
    records_list_free(&l);
    if (e != KERR_NONE) {
        LOG_WARN(GC_WHO, "cannot delete group %s: %s", g->id, kerr_name(e));
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    LOG_INFO(GC_WHO, "Deleted group %s with %zu committed offsets", g->id, g->offsets.count);
    gc_group_remove(gc, g);
    return KERR_NONE;
}

/* ---- life cycle ---- */

struct group_coordinator *gc_create(const struct gc_config *cfg, const struct gc_env *env)
{
    struct group_coordinator *gc = calloc(1, sizeof(*gc));
    if (gc == NULL)
        return NULL;
    gc->cfg = *cfg;
    if (gc->cfg.num_partitions <= 0)
        gc->cfg.num_partitions = 1;
    if (gc->cfg.retention_check_interval_ms <= 0)
        gc->cfg.retention_check_interval_ms = 600000;
    if (gc->cfg.max_size <= 0)
        gc->cfg.max_size = INT32_MAX;
    gc->env = *env;
    gc->nbuckets = 64;
    gc->buckets = calloc(gc->nbuckets, sizeof(*gc->buckets));
    gc->live = calloc((size_t)gc->cfg.num_partitions, sizeof(*gc->live));
    if (gc->buckets == NULL || gc->live == NULL) {
        free(gc->buckets);
        free(gc->live);
        free(gc);
        return NULL;
    }
    gc->expiry_timer.kind = GC_TIMER_EXPIRY;
    gc->expiry_timer.owner = gc;
    timer_arm(gc, &gc->expiry_timer, gc_mono(gc) + gc->cfg.retention_check_interval_ms);
    return gc;
}

void *gc_env_ctx(const struct group_coordinator *gc)
{
    return gc->env.ctx;
}

const struct gc_work *gc_work(const struct group_coordinator *gc)
{
    return &gc->work;
}

void gc_destroy(struct group_coordinator *gc)
{
    if (gc == NULL)
        return;
    gc->destroying = true;
    timer_stop(gc, &gc->expiry_timer);
    for (size_t i = 0; i < gc->nbuckets; i++) {
        while (gc->buckets[i]) {
            struct group *g = gc->buckets[i];
            for (struct member *m = g->members; m; m = m->next) {
                if (m->join_cb) {
                    gc_join_cb cb = m->join_cb;
                    m->join_cb = NULL;
                    join_reply_error(cb, m->join_arg, KERR_COORDINATOR_NOT_AVAILABLE, m->id);
                }
                if (m->sync_cb) {
                    gc_sync_cb cb = m->sync_cb;
                    m->sync_cb = NULL;
                    sync_reply_error(cb, m->sync_arg, KERR_COORDINATOR_NOT_AVAILABLE);
                }
            }
            gc_group_remove(gc, g);
        }
    }
    free(gc->buckets);
    free(gc->live);
    free(gc);
}

/* ---- replay ---- */

void gc_replay_done(struct group_coordinator *gc)
{
    gc_replay_done_partition(gc, -1);
}

void gc_replay_done_partition(struct group_coordinator *gc, int32_t partition)
{
    GREGOR_ASSERT(partition >= -1 && partition < gc->cfg.num_partitions);
    int64_t now = gc_mono(gc);
    size_t ngroups = 0, nmembers = 0;
    for (size_t i = 0; i < gc->nbuckets; i++)
        for (struct group *g = gc->buckets[i]; g; g = g->next) {
            if (partition >= 0 && g->partition != partition)
                continue;
            ngroups++;
            g->state = g->n_members > 0 ? GC_STABLE : GC_EMPTY;
            nmembers += g->cg ? (size_t)g->cg->n_members : 0;
            for (struct member *m = g->members; m; m = m->next) {
                nmembers++;
                m->deadline_mono = now + m->session_timeout_ms;
                timer_arm(gc, &m->hb_timer, m->deadline_mono);
            }
        }
    cg_replay_done(gc, partition);
    if (partition < 0)
        LOG_INFO(GC_WHO, "Loaded %zu groups (%zu members) from __consumer_offsets", ngroups,
                 nmembers);
    else
        LOG_INFO(GC_WHO, "Loaded %zu groups (%zu members) from __consumer_offsets-%d", ngroups,
                 nmembers, partition);
}

/* Kafka's onResignation (removeGroupsForPartition): the groups of one partition are forgotten
 * (their records stay in the log for the next coordinator); a member waiting for its JoinGroup
 * or SyncGroup answer gets err, so the client looks for the new coordinator. */
int gc_unload_partition(struct group_coordinator *gc, int32_t partition, int16_t err)
{
    GREGOR_ASSERT(partition >= 0 && partition < gc->cfg.num_partitions);
    int removed = 0;
    for (size_t i = 0; i < gc->nbuckets; i++) {
        struct group *next;
        for (struct group *g = gc->buckets[i]; g; g = next) {
            next = g->next;
            if (g->partition != partition)
                continue;
            for (struct member *m = g->members; m; m = m->next) {
                if (m->join_cb) {
                    gc_join_cb cb = m->join_cb;
                    m->join_cb = NULL;
                    g->n_awaiting_join--;
                    join_reply_error(cb, m->join_arg, err, m->id);
                }
                if (m->sync_cb) {
                    gc_sync_cb cb = m->sync_cb;
                    m->sync_cb = NULL;
                    sync_reply_error(cb, m->sync_arg, err);
                }
            }
            gc_group_remove(gc, g);
            removed++;
        }
    }
    GREGOR_ASSERT(gc->live[partition] == 0);
    return removed;
}

/* Rebuilds a group from a GroupMetadataValue read back from the log (members as Kafka stores
 * them: the selected protocol's subscription and the assignment). */
void gc_replay_group(struct group_coordinator *gc, struct group *g, const char *protocol_type,
                     int32_t generation, const char *protocol, const char *leader, int64_t ts,
                     int n, const struct gc_member_desc *members, const int32_t *session,
                     const int32_t *rebalance)
{
    while (g->members) {
        struct member *m = g->members;
        member_unlink(g, m);
        member_free(gc, m);
    }
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    g->protocol_type = protocol_type && protocol_type[0] ? gc_strdup(protocol_type) : NULL;
    g->protocol = gc_strdup(protocol);
    g->leader = gc_strdup(leader);
    g->generation = generation;
    g->state_ts = ts;
    for (int i = 0; i < n; i++) {
        struct member *m = calloc(1, sizeof(*m));
        GREGOR_ASSERT(m != NULL);
        m->group = g;
        m->id = gc_strdup(members[i].member_id);
        m->instance_id = gc_strdup(members[i].instance_id);
        m->client_id = gc_strdup(members[i].client_id);
        m->client_host = gc_strdup(members[i].client_host);
        m->session_timeout_ms = session[i];
        m->rebalance_timeout_ms = rebalance[i] >= 0 ? rebalance[i] : session[i];
        m->protocol_type = gc_strdup(protocol_type);
        m->protocols = calloc(1, sizeof(*m->protocols));
        GREGOR_ASSERT(m->protocols != NULL);
        m->n_protocols = 1;
        m->protocols[0].name = gc_strdup(protocol ? protocol : "");
        m->protocols[0].metadata = bytes_dup(members[i].metadata, members[i].metadata_len);
        m->protocols[0].metadata_len = m->protocols[0].metadata ? members[i].metadata_len : 0;
        m->assignment = bytes_dup(members[i].assignment, members[i].assignment_len);
        m->assignment_len = m->assignment ? members[i].assignment_len : 0;
        m->hb_timer.kind = GC_TIMER_HEARTBEAT;
        m->hb_timer.owner = m;
        protocols_count(g, m, 1);
        member_link(g, m);
    }
    g->state = g->n_members > 0 ? GC_STABLE : GC_EMPTY;
}

void gc_set_topic_view(struct group_coordinator *gc, const struct cg_topic_view *tv)
{
    gc->topics = *tv;
}

/* ---- online migration (consumer_group_classic.c) ---- */

void gc_classic_reset(struct group *g, int16_t err)
{
    struct group_coordinator *gc = g->gc;
    for (struct member *m = g->members; m; m = m->next) {
        member_fail_waiters(g, m, err);
    }
    GREGOR_ASSERT(g->n_awaiting_join == 0);
    while (g->pending)
        pending_remove(g, g->pending);
    timer_stop(gc, &g->join_timer);
    g->initial_delay = false;
}

void gc_classic_downgraded(struct group *g, const char *reason)
{
    struct group_coordinator *gc = g->gc;
    for (struct member *m = g->members; m; m = m->next)
        gc_heartbeat_reset(gc, m);
    g->state = GC_STABLE;
    prepare_rebalance(g, reason);
}
