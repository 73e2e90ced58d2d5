/* consumer_group: the KIP-848 consumer group protocol (Kafka's GroupMetadataManager for
 * ConsumerGroupHeartbeat) — joins, member epochs, target assignment on subscription or membership
 * change, reconciliation that gives a partition to its new owner only after the previous owner
 * reported it revoked, leaves, session and revocation timeouts, and ConsumerGroupDescribe.
 * Every change is a list of records: appended first, then applied by replaying it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group_internal.h"

#define CG_WHO "GroupCoordinator"
/* A fence that could not be written is retried this much later. */
#define CG_RETRY_MS 1000

/* ---- partition sets ---- */

void cg_tps_free(struct cg_tps *s)
{
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

void cg_tps_from(struct cg_tps *dst, const struct cg_tp *v, int n)
{
    dst->v = calloc((size_t)(n > 0 ? n : 0) + 1, sizeof(*dst->v));
    GREGOR_ASSERT(dst->v != NULL);
    dst->n = 0;
    if (n <= 0)
        return;
    memcpy(dst->v, v, (size_t)n * sizeof(*v));
    cg_tp_sort(dst->v, n);
    for (int i = 0; i < n; i++)
        if (dst->n == 0 || cg_tp_cmp(&dst->v[dst->n - 1], &dst->v[i]) != 0)
            dst->v[dst->n++] = dst->v[i];
}

void cg_tps_copy(struct cg_tps *dst, const struct cg_tps *src)
{
    cg_tps_from(dst, src->v, src->n);
}

bool cg_tps_contains(const struct cg_tps *s, const struct kuuid *topic, int32_t partition)
{
    struct cg_tp key = {*topic, partition};
    return s->n > 0 && bsearch(&key, s->v, (size_t)s->n, sizeof(key), cg_tp_cmp) != NULL;
}

bool cg_tps_equal(const struct cg_tps *a, const struct cg_tps *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, (size_t)a->n * sizeof(*a->v)) == 0);
}

/* dst = a minus b (sets) */
static void tps_minus(struct cg_tps *dst, const struct cg_tps *a, const struct cg_tps *b)
{
    struct cg_tp *tmp = calloc((size_t)a->n + 1, sizeof(*tmp));
    GREGOR_ASSERT(tmp != NULL);
    int k = 0;
    for (int i = 0; i < a->n; i++)
        if (!cg_tps_contains(b, &a->v[i].topic_id, a->v[i].partition))
            tmp[k++] = a->v[i];
    cg_tps_from(dst, tmp, k);
    free(tmp);
}

static void tps_intersect(struct cg_tps *dst, const struct cg_tps *a, const struct cg_tps *b)
{
    struct cg_tp *tmp = calloc((size_t)a->n + 1, sizeof(*tmp));
    GREGOR_ASSERT(tmp != NULL);
    int k = 0;
    for (int i = 0; i < a->n; i++)
        if (cg_tps_contains(b, &a->v[i].topic_id, a->v[i].partition))
            tmp[k++] = a->v[i];
    cg_tps_from(dst, tmp, k);
    free(tmp);
}

/* ---- members and groups ---- */

static uint64_t timer_arm(struct group_coordinator *gc, struct gc_timer *t, int64_t when)
{
    if (t->id != 0)
        gc->env.timer_cancel(gc->env.ctx, t->id);
    t->id = gc->env.timer_add(gc->env.ctx, when, t);
    if (t->id == 0)
        LOG_ERROR(CG_WHO, "cannot arm a timer (kind %d): out of memory", (int)t->kind);
    return t->id;
}

static void timer_stop(struct group_coordinator *gc, struct gc_timer *t)
{
    if (t->id != 0)
        gc->env.timer_cancel(gc->env.ctx, t->id);
    t->id = 0;
}

static int64_t mono(struct group_coordinator *gc)
{
    return gc->env.mono_ms(gc->env.ctx);
}

static int32_t session_timeout(const struct group_coordinator *gc)
{
    return gc->cfg.consumer_session_timeout_ms > 0 ? gc->cfg.consumer_session_timeout_ms
                                                   : CG_DEFAULT_SESSION_TIMEOUT_MS;
}

static int32_t heartbeat_interval(const struct group_coordinator *gc)
{
    return gc->cfg.consumer_heartbeat_interval_ms > 0 ? gc->cfg.consumer_heartbeat_interval_ms
                                                      : CG_DEFAULT_HEARTBEAT_INTERVAL_MS;
}

static int32_t max_size(const struct group_coordinator *gc)
{
    return gc->cfg.consumer_max_size > 0 ? gc->cfg.consumer_max_size : INT32_MAX;
}

struct cg_member *cg_member_find(const struct cg_group *cg, const char *id)
{
    if (cg == NULL || id == NULL)
        return NULL;
    return strtab_get(&cg->by_id, id, &cg->g->gc->work.heartbeat_steps);
}

struct cg_member *cg_member_by_instance(const struct cg_group *cg, const char *instance)
{
    if (cg == NULL || instance == NULL)
        return NULL;
    for (struct cg_member *m = cg->members; m; m = m->next) {
        cg->g->gc->work.heartbeat_steps++;
        if (m->instance_id && strcmp(m->instance_id, instance) == 0)
            return m;
    }
    return NULL;
}

struct cg_member *cg_member_get_or_create(struct cg_group *cg, const char *id)
{
    struct cg_member *m = cg_member_find(cg, id);
    if (m != NULL)
        return m;
    m = calloc(1, sizeof(*m));
    GREGOR_ASSERT(m != NULL);
    m->cg = cg;
    m->id = gc_strdup(id);
    m->rebalance_timeout_ms = -1;
    m->state = CG_STABLE;
    m->session_timer.kind = GC_TIMER_CG_SESSION;
    m->session_timer.owner = m;
    m->rebalance_timer.kind = GC_TIMER_CG_REBALANCE;
    m->rebalance_timer.owner = m;
    m->prev = cg->members_tail;
    if (cg->members_tail)
        cg->members_tail->next = m;
    else
        cg->members = m;
    cg->members_tail = m;
    cg->n_members++;
    strtab_put(&cg->by_id, m->id, m);
    return m;
}

bool cg_member_set_regex(struct cg_member *m, const char *regex)
{
    if (m->re_ok)
        regfree(&m->re);
    m->re_ok = false;
    free(m->regex);
    m->regex = regex && regex[0] ? gc_strdup(regex) : NULL;
    if (m->regex == NULL)
        return true;
    /* Kafka matches the whole topic name (Pattern.matches). */
    size_t n = strlen(m->regex) + 8;
    char *full = malloc(n);
    GREGOR_ASSERT(full != NULL);
    snprintf(full, n, "^(%s)$", m->regex);
    m->re_ok = regcomp(&m->re, full, REG_EXTENDED | REG_NOSUB) == 0;
    free(full);
    return m->re_ok;
}

static void member_fields_free(struct cg_member *m)
{
    free(m->id);
    free(m->instance_id);
    free(m->rack_id);
    free(m->client_id);
    free(m->client_host);
    for (int i = 0; i < m->n_topics; i++)
        free(m->topics[i]);
    free(m->topics);
    if (m->re_ok)
        regfree(&m->re);
    free(m->regex);
    free(m->assignor);
    cg_tps_free(&m->assigned);
    cg_tps_free(&m->pending_revocation);
    cg_tps_free(&m->target);
    cg_member_set_classic(m, 0, NULL, -1);
}

int32_t cg_member_session_timeout(const struct group_coordinator *gc, const struct cg_member *m)
{
    return m->classic && m->classic_session_timeout_ms > 0 ? m->classic_session_timeout_ms
                                                           : session_timeout(gc);
}

void cg_member_set_classic(struct cg_member *m, int32_t session_timeout_ms,
                           const struct gc_protocol *protocols, int n)
{
    for (int i = 0; i < m->n_classic_protocols; i++) {
        free(m->classic_protocols[i].name);
        free(m->classic_protocols[i].metadata);
    }
    free(m->classic_protocols);
    m->classic_protocols = NULL;
    m->n_classic_protocols = 0;
    m->classic = n >= 0;
    m->classic_session_timeout_ms = n >= 0 ? session_timeout_ms : 0;
    if (n <= 0)
        return;
    m->classic_protocols = calloc((size_t)n, sizeof(*m->classic_protocols));
    GREGOR_ASSERT(m->classic_protocols != NULL);
    for (int i = 0; i < n; i++) {
        struct member_protocol *p = &m->classic_protocols[i];
        p->name = gc_strdup(protocols[i].name ? protocols[i].name : "");
        int32_t len = protocols[i].metadata ? protocols[i].metadata_len : 0;
        p->metadata = malloc((size_t)len + 1);
        GREGOR_ASSERT(p->metadata != NULL);
        if (len > 0)
            memcpy(p->metadata, protocols[i].metadata, (size_t)len);
        p->metadata_len = len;
    }
    m->n_classic_protocols = n;
}

void cg_member_touch(struct group_coordinator *gc, struct cg_member *m)
{
    int64_t deadline = mono(gc) + cg_member_session_timeout(gc, m);
    if (m->classic_rejoin_deadline > 0 && m->classic_rejoin_deadline < deadline) {
        /* Told to rejoin: signs of life do not keep it past its rebalance timeout. */
        deadline = m->classic_rejoin_deadline;
        timer_arm(gc, &m->session_timer, deadline);
    }
    m->session_deadline = deadline;
}

/* The classic protocols of src as gc_protocol views (borrowing src); NULL when not classic. */
static struct gc_protocol *classic_view(const struct cg_member *src)
{
    struct gc_protocol *v = calloc((size_t)src->n_classic_protocols + 1, sizeof(*v));
    GREGOR_ASSERT(v != NULL);
    for (int i = 0; i < src->n_classic_protocols; i++)
        v[i] = (struct gc_protocol){src->classic_protocols[i].name,
                                    src->classic_protocols[i].metadata,
                                    src->classic_protocols[i].metadata_len};
    return v;
}

void cg_member_free(struct group_coordinator *gc, struct cg_member *m)
{
    timer_stop(gc, &m->session_timer);
    timer_stop(gc, &m->rebalance_timer);
    member_fields_free(m);
    free(m);
}

void cg_member_remove(struct cg_group *cg, struct cg_member *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        cg->members = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        cg->members_tail = m->prev;
    cg->n_members--;
    GREGOR_ASSERT(cg->n_members >= 0);
    strtab_del(&cg->by_id, m->id, m);
    cg_subs_count(cg, m, -1);
    cg_classic_count(cg, m, -1);
    cg_owners_count(cg, m, -1);
    cg_member_free(cg->g->gc, m);
}

/* ---- the group's indexes: subscribed names and partition owners ---- */

/* Counts one name of a member in t (once per member: stamp marks the pass); entries at 0 go. */
static void name_count(struct strtab *t, uint32_t stamp, const char *name, int delta,
                       uint64_t *steps)
{
    struct cg_sub_count *c = strtab_get(t, name, steps);
    if (c == NULL) {
        GREGOR_ASSERT(delta > 0);
        c = calloc(1, sizeof(*c));
        GREGOR_ASSERT(c != NULL);
        c->name = gc_strdup(name);
        strtab_put(t, c->name, c);
    }
    if (c->stamp == stamp)
        return;
    c->stamp = stamp;
    c->count += delta;
    GREGOR_ASSERT(c->count >= 0);
    if (c->count == 0) {
        strtab_del(t, c->name, c);
        free(c->name);
        free(c);
    }
}

static void names_free(struct strtab *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        struct cg_sub_count *c = t->slots[i].val;
        if (c != NULL) {
            free(c->name);
            free(c);
        }
    }
    strtab_free(t);
}

void cg_subs_count(struct cg_group *cg, const struct cg_member *m, int delta)
{
    uint64_t *steps = &cg->g->gc->work.heartbeat_steps;
    uint32_t stamp = ++cg->sub_stamp;
    for (int i = 0; i < m->n_topics; i++)
        name_count(&cg->subs, stamp, m->topics[i], delta, steps);
    cg->n_regex += m->re_ok ? delta : 0;
    GREGOR_ASSERT(cg->n_regex >= 0);
}

void cg_classic_count(struct cg_group *cg, const struct cg_member *m, int delta)
{
    if (!m->classic)
        return;
    uint64_t *steps = &cg->g->gc->work.heartbeat_steps;
    uint32_t stamp = ++cg->sub_stamp;
    for (int i = 0; i < m->n_classic_protocols; i++)
        name_count(&cg->classic_protocols, stamp, m->classic_protocols[i].name, delta, steps);
    cg->n_classic += delta;
    GREGOR_ASSERT(cg->n_classic >= 0 && cg->n_classic <= cg->n_members);
}

bool cg_classic_supported(const struct cg_group *cg, const struct gc_protocol *protocols, int n)
{
    uint64_t *steps = &cg->g->gc->work.protocol_steps;
    for (int i = 0; i < n; i++) {
        const struct cg_sub_count *c = strtab_get(&cg->classic_protocols, protocols[i].name, steps);
        if ((c ? c->count : 0) == cg->n_classic)
            return true;
    }
    return false;
}

static uint64_t tp_hash(const struct cg_tp *tp)
{
    uint64_t h = 1469598103934665603ULL;
    for (int j = 0; j < 16; j++)
        h = (h ^ tp->topic_id.b[j]) * 1099511628211ULL;
    h = (h ^ (uint32_t)tp->partition) * 1099511628211ULL;
    return h ^ (h >> 31);
}

static struct cg_owner_slot *owner_slot(const struct cg_owners *o, const struct cg_tp *tp,
                                        uint64_t *steps)
{
    size_t mask = o->cap - 1;
    for (size_t i = (size_t)tp_hash(tp) & mask;; i = (i + 1) & mask) {
        ++*steps;
        struct cg_owner_slot *x = &o->slots[i];
        if (!x->used || cg_tp_cmp(&x->tp, tp) == 0)
            return x;
    }
}

static void owners_add(struct cg_group *cg, const struct cg_tp *tp, int delta)
{
    struct cg_owners *o = &cg->owners;
    uint64_t *steps = &cg->g->gc->work.heartbeat_steps;
    if ((o->n + 1) * 2 > o->cap) {
        struct cg_owners old = *o;
        o->cap = o->cap ? o->cap * 2 : 64;
        o->slots = calloc(o->cap, sizeof(*o->slots));
        GREGOR_ASSERT(o->slots != NULL);
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].used)
                *owner_slot(o, &old.slots[i].tp, steps) = old.slots[i];
        free(old.slots);
    }
    struct cg_owner_slot *x = owner_slot(o, tp, steps);
    if (!x->used) {
        GREGOR_ASSERT(delta > 0);
        x->used = true;
        x->tp = *tp;
        o->n++;
    }
    x->count += delta;
    GREGOR_ASSERT(x->count >= 0);
}

void cg_owners_count(struct cg_group *cg, const struct cg_member *m, int delta)
{
    for (int i = 0; i < m->assigned.n; i++)
        owners_add(cg, &m->assigned.v[i], delta);
    for (int i = 0; i < m->pending_revocation.n; i++)
        owners_add(cg, &m->pending_revocation.v[i], delta);
}

static int32_t owners_of(const struct cg_group *cg, const struct cg_tp *tp)
{
    if (cg->owners.cap == 0)
        return 0;
    const struct cg_owner_slot *x = owner_slot(&cg->owners, tp, &cg->g->gc->work.heartbeat_steps);
    return x->used ? x->count : 0;
}

struct cg_group *cg_attach(struct group *g)
{
    if (g->cg != NULL)
        return g->cg;
    struct cg_group *cg = calloc(1, sizeof(*cg));
    GREGOR_ASSERT(cg != NULL);
    cg->g = g;
    g->cg = cg;
    return cg;
}

void cg_group_free(struct group *g)
{
    struct cg_group *cg = g->cg;
    if (cg == NULL)
        return;
    struct group_coordinator *gc = g->gc;
    while (cg->members) {
        struct cg_member *m = cg->members;
        cg->members = m->next;
        gc->live[g->partition] -= (m->has_metadata + m->has_target + m->has_current);
        cg_member_free(gc, m);
    }
    gc->live[g->partition] -= (cg->has_metadata + cg->has_target_metadata);
    names_free(&cg->subs);
    names_free(&cg->classic_protocols);
    strtab_free(&cg->by_id);
    free(cg->owners.slots);
    free(cg);
    g->cg = NULL;
}

/* The group's assignor: the one most members name (ties and none: uniform, Kafka's first
 * group.consumer.assignors entry). */
static void count_assignor(const struct cg_member *m, int *uniform, int *range)
{
    if (m->assignor && strcmp(m->assignor, "range") == 0)
        (*range)++;
    else if (m->assignor && strcmp(m->assignor, "uniform") == 0)
        (*uniform)++;
}

const char *cg_group_assignor(const struct cg_group *cg)
{
    int uniform = 0, range = 0;
    for (const struct cg_member *m = cg ? cg->members : NULL; m; m = m->next)
        count_assignor(m, &uniform, &range);
    return range > uniform ? "range" : "uniform";
}

const char *cg_state_name(const struct group *g)
{
    const struct cg_group *cg = g->cg;
    if (cg == NULL || cg->n_members == 0)
        return "Empty";
    if (cg->epoch > cg->assignment_epoch)
        return "Assigning";
    for (const struct cg_member *m = cg->members; m; m = m->next)
        if (m->state != CG_STABLE || m->epoch != cg->assignment_epoch)
            return "Reconciling";
    return "Stable";
}

/* ---- subscriptions ---- */

static bool member_subscribes(const struct cg_member *m, const struct cg_topic *t)
{
    for (int i = 0; i < m->n_topics; i++)
        if (strcmp(m->topics[i], t->name) == 0)
            return true;
    return m->re_ok && !t->internal && regexec(&m->re, t->name, 0, NULL, 0) == 0;
}

bool cg_subscribed_to(const struct group *g, const char *topic)
{
    if (g->cg == NULL)
        return false;
    struct cg_topic t = {.name = topic};
    t.internal = topic[0] == '_' && topic[1] == '_';
    for (const struct cg_member *m = g->cg->members; m; m = m->next)
        if (member_subscribes(m, &t))
            return true;
    return false;
}

/* The members as the coming change sees them: the group's members with one replaced or added. */
struct view {
    struct cg_member **m;
    int n;
    struct gc_work *work;
};

static void view_build(struct view *v, const struct cg_group *cg, struct cg_member *updated,
                       const char *replaced_id)
{
    int cap = (cg ? cg->n_members : 0) + 1;
    v->m = calloc((size_t)cap + 1, sizeof(*v->m));
    GREGOR_ASSERT(v->m != NULL);
    v->n = 0;
    v->work = &cg->g->gc->work;
    bool placed = false;
    for (struct cg_member *m = cg ? cg->members : NULL; m; m = m->next) {
        cg->g->gc->work.assign_steps++;
        if (strcmp(m->id, updated->id) == 0 || (replaced_id && strcmp(m->id, replaced_id) == 0)) {
            if (!placed)
                v->m[v->n++] = updated;
            placed = true;
            continue;
        }
        v->m[v->n++] = m;
    }
    if (!placed)
        v->m[v->n++] = updated;
}

static const char *view_assignor(const struct view *v)
{
    int uniform = 0, range = 0;
    for (int i = 0; i < v->n; i++)
        count_assignor(v->m[i], &uniform, &range);
    return range > uniform ? "range" : "uniform";
}

/* Topics any member subscribes to (the group's members, with `existing` replaced by `upd`),
 * resolved now. */
struct resolved {
    struct cg_assign_topic *t;
    char **names;            /* owned copies (the members' strings may not outlive the call) */
    int n, cap;
    const struct cg_group *cg;
    const struct cg_member *existing, *upd;
    uint64_t *steps;
};

static void resolved_add(struct resolved *r, const struct cg_topic *t)
{
    for (int i = 0; i < r->n; i++)
        if (++*r->steps && memcmp(r->t[i].id.b, t->id.b, 16) == 0)
            return;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->t = realloc(r->t, (size_t)r->cap * sizeof(*r->t));
        r->names = realloc(r->names, (size_t)r->cap * sizeof(*r->names));
        GREGOR_ASSERT(r->t && r->names);
    }
    r->names[r->n] = gc_strdup(t->name);
    r->t[r->n] = (struct cg_assign_topic){t->id, r->names[r->n], t->partitions};
    r->n++;
}

/* Regex subscriptions: each topic is matched against the members with a regex (only groups
 * that have some pay for this walk). */
static void resolve_each(void *arg, const struct cg_topic *t)
{
    struct resolved *r = arg;
    if (r->upd->re_ok && member_subscribes(r->upd, t)) {
        resolved_add(r, t);
        return;
    }
    for (const struct cg_member *m = r->cg->members; m; m = m->next)
        if (++*r->steps && m != r->existing && m->re_ok && member_subscribes(m, t)) {
            resolved_add(r, t);
            return;
        }
}

static void resolve_name(struct resolved *r, const char *name, const struct cg_topic_view *tv)
{
    struct cg_topic t;
    if (tv && tv->by_name(tv->ctx, name, &t))
        resolved_add(r, &t);
}

static void resolve(struct resolved *r, struct cg_group *cg, const struct cg_member *existing,
                    const struct cg_member *upd, const struct cg_topic_view *tv)
{
    memset(r, 0, sizeof(*r));
    r->cg = cg;
    r->existing = existing;
    r->upd = upd;
    r->steps = &cg->g->gc->work.heartbeat_steps;
    /* Names only the replaced member subscribes to are skipped: mark them with a fresh stamp. */
    uint32_t skip = ++cg->sub_stamp;
    for (int i = 0; existing && i < existing->n_topics; i++) {
        struct cg_sub_count *c = strtab_get(&cg->subs, existing->topics[i], r->steps);
        if (c != NULL && c->count == 1)
            c->stamp = skip;
    }
    for (size_t i = 0; i < cg->subs.cap; i++) {
        const struct cg_sub_count *c = cg->subs.slots[i].val;
        if (c != NULL && ++*r->steps && c->stamp != skip)
            resolve_name(r, c->name, tv);
    }
    for (int i = 0; i < upd->n_topics; i++)
        resolve_name(r, upd->topics[i], tv);
    int regexes = cg->n_regex - (existing && existing->re_ok) + upd->re_ok;
    if (regexes > 0 && tv && tv->each)
        tv->each(tv->ctx, resolve_each, r);
}

static void resolved_free(struct resolved *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    free(r->t);
}

/* Order-independent hash of the subscribed topics' ids and partition counts: a change (topic
 * created, deleted, partitions added) bumps the group epoch, as Kafka's subscription metadata. */
static uint64_t resolved_hash(const struct resolved *r)
{
    uint64_t sum = 0;
    for (int i = 0; i < r->n; i++) {
        uint64_t h = 1469598103934665603ULL;
        for (int j = 0; j < 16; j++)
            h = (h ^ r->t[i].id.b[j]) * 1099511628211ULL;
        h = (h ^ (uint32_t)r->t[i].partitions) * 1099511628211ULL;
        sum += h;
    }
    return sum ^ (uint64_t)r->n;
}

/* Computes every view member's target; targets[i] belongs to v->m[i] (caller frees). */
static int compute_targets(const struct view *v, const struct resolved *r, const char *assignor,
                           struct cg_tps *targets)
{
    struct cg_assign_member *am = calloc((size_t)v->n + 1, sizeof(*am));
    bool *subs = calloc(((size_t)v->n + 1) * ((size_t)r->n + 1), sizeof(bool));
    GREGOR_ASSERT(am && subs);
    v->work->assign_runs++;
    v->work->assign_steps += (uint64_t)v->n * ((uint64_t)r->n + 1);
    for (int i = 0; i < v->n; i++) {
        const struct cg_member *m = v->m[i];
        bool *row = subs + (size_t)i * ((size_t)r->n + 1);
        for (int t = 0; t < r->n; t++) {
            struct cg_topic ct = {.name = r->t[t].name, .id = r->t[t].id,
                                  .partitions = r->t[t].partitions};
            row[t] = member_subscribes(m, &ct);
        }
        am[i].id = m->id;
        am[i].subscribed = row;
        am[i].previous = m->target.v;
        am[i].n_previous = m->target.n;
    }
    int rc = cg_assign(assignor, r->t, r->n, am, v->n, &v->work->assign_steps);
    for (int i = 0; i < v->n; i++) {
        if (rc == 0) {
            targets[i].v = am[i].out;
            targets[i].n = am[i].n_out;
        } else {
            targets[i].v = NULL;
            targets[i].n = 0;
        }
    }
    free(am);
    free(subs);
    return rc;
}

/* ---- reconciliation (Kafka's CurrentAssignmentBuilder) ---- */

struct next_state {
    int32_t epoch, previous_epoch;
    int8_t state;
    struct cg_tps assigned, pending;
};

/* Is partition owned (assigned or pending revocation) by a member other than self? self is
 * the heartbeat's copy of its member, whose sets the group's owner counts hold. */
static bool owned_by_other(const struct cg_group *cg, const struct cg_member *self,
                           const struct cg_tp *tp)
{
    int32_t mine = cg_tps_contains(&self->assigned, &tp->topic_id, tp->partition) +
                   cg_tps_contains(&self->pending_revocation, &tp->topic_id, tp->partition);
    return owners_of(cg, tp) - mine > 0;
}

static bool owns_any(const struct cg_tp *owned, int n_owned, const struct cg_tps *pending)
{
    if (owned == NULL || n_owned < 0)
        return true; /* unchanged since the last heartbeat: still owned */
    for (int i = 0; i < n_owned; i++)
        if (cg_tps_contains(pending, &owned[i].topic_id, owned[i].partition))
            return true;
    return false;
}

static void compute_next(const struct cg_group *v, const struct cg_member *m, int32_t epoch,
                         int32_t target_epoch, const struct cg_tps *target, struct next_state *out)
{
    struct cg_tps keep, revoke, wanted;
    tps_intersect(&keep, &m->assigned, target);
    tps_minus(&revoke, &m->assigned, target);
    tps_minus(&wanted, target, &m->assigned);
    if (revoke.n > 0) {
        out->state = CG_UNREVOKED_PARTITIONS;
        out->previous_epoch = epoch;
        out->epoch = epoch;
        out->assigned = keep;
        out->pending = revoke;
        cg_tps_free(&wanted);
        return;
    }
    cg_tps_free(&revoke);
    struct cg_tp *all = calloc((size_t)keep.n + (size_t)wanted.n + 1, sizeof(*all));
    GREGOR_ASSERT(all != NULL);
    memcpy(all, keep.v, (size_t)keep.n * sizeof(*all));
    int k = keep.n;
    bool unreleased = false;
    for (int i = 0; i < wanted.n; i++) {
        if (owned_by_other(v, m, &wanted.v[i]))
            unreleased = true;
        else
            all[k++] = wanted.v[i];
    }
    out->state = unreleased ? CG_UNRELEASED_PARTITIONS : CG_STABLE;
    out->previous_epoch = epoch;
    out->epoch = target_epoch;
    cg_tps_from(&out->assigned, all, k);
    out->pending.v = NULL;
    out->pending.n = 0;
    free(all);
    cg_tps_free(&keep);
    cg_tps_free(&wanted);
}

/* Returns an error (FENCED_MEMBER_EPOCH for an unknown state) or NONE with out filled. */
static int16_t reconcile(const struct cg_group *v, const struct cg_member *m, int32_t target_epoch,
                         const struct cg_tps *target, const struct cg_tp *owned, int n_owned,
                         struct next_state *out)
{
    memset(out, 0, sizeof(*out));
    switch (m->state) {
    case CG_STABLE:
        if (m->epoch != target_epoch) {
            compute_next(v, m, m->epoch, target_epoch, target, out);
            return KERR_NONE;
        }
        break;
    case CG_UNREVOKED_PARTITIONS:
        if (!owns_any(owned, n_owned, &m->pending_revocation)) {
            compute_next(v, m, m->epoch, target_epoch, target, out);
            return KERR_NONE;
        }
        break;
    case CG_UNRELEASED_PARTITIONS:
        compute_next(v, m, m->epoch, target_epoch, target, out);
        return KERR_NONE;
    default:
        if (owned == NULL || n_owned != 0)
            return CG_ERR_FENCED_MEMBER_EPOCH;
        compute_next(v, m, target_epoch, target_epoch, target, out);
        return KERR_NONE;
    }
    out->epoch = m->epoch;
    out->previous_epoch = m->previous_epoch;
    out->state = m->state;
    cg_tps_copy(&out->assigned, &m->assigned);
    cg_tps_copy(&out->pending, &m->pending_revocation);
    return KERR_NONE;
}

bool cg_waiting_on_unreleased(const struct cg_group *cg, const struct cg_member *m)
{
    for (int i = 0; i < m->target.n; i++) {
        const struct cg_tp *tp = &m->target.v[i];
        if (!cg_tps_contains(&m->assigned, &tp->topic_id, tp->partition) &&
            owned_by_other(cg, m, tp))
            return true;
    }
    return false;
}

/* ---- heartbeat ---- */

static void fail(struct cg_heartbeat_result *out, int16_t err, const char *fmt, const char *arg)
{
    out->error = err;
    snprintf(out->error_message, sizeof(out->error_message), fmt, arg ? arg : "");
}

/* Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid. */
static bool request_valid(const struct cg_heartbeat_args *a, struct cg_heartbeat_result *out)
{
    const char *mid = a->member_id ? a->member_id : "";
    if (a->group_id == NULL || a->group_id[0] == '\0')
        fail(out, KERR_INVALID_REQUEST, "GroupId can't be empty.%s", NULL);
    else if (a->version >= 1 && mid[0] == '\0')
        fail(out, KERR_INVALID_REQUEST, "MemberId can't be empty.%s", NULL);
    else if (a->instance_id && a->instance_id[0] == '\0')
        fail(out, KERR_INVALID_REQUEST, "InstanceId can't be empty.%s", NULL);
    else if (a->rack_id && a->rack_id[0] == '\0')
        fail(out, KERR_INVALID_REQUEST, "RackId can't be empty.%s", NULL);
    else if (a->member_epoch == CG_JOIN_EPOCH && a->rebalance_timeout_ms == -1)
        fail(out, KERR_INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request.%s",
             NULL);
    else if (a->member_epoch == CG_JOIN_EPOCH && a->owned && a->n_owned > 0)
        fail(out, KERR_INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.%s", NULL);
    else if (a->member_epoch == CG_JOIN_EPOCH && a->n_topics < 0 && a->regex == NULL)
        fail(out, KERR_INVALID_REQUEST,
             "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.%s", NULL);
    else if (a->member_epoch != CG_JOIN_EPOCH && mid[0] == '\0')
        fail(out, KERR_INVALID_REQUEST, "MemberId can't be empty.%s", NULL);
    else if (a->member_epoch == CG_STATIC_LEAVE_EPOCH && a->instance_id == NULL)
        fail(out, KERR_INVALID_REQUEST, "InstanceId can't be null.%s", NULL);
    else if (a->member_epoch < CG_STATIC_LEAVE_EPOCH)
        fail(out, KERR_INVALID_REQUEST, "MemberEpoch is invalid.%s", NULL);
    else if (a->assignor && !cg_assignor_known(a->assignor))
        fail(out, CG_ERR_UNSUPPORTED_ASSIGNOR, "ServerAssignor %s is not supported. Supported "
             "assignors: uniform, range.", a->assignor);
    else
        return true;
    return false;
}

/* A member id for v0 joins (v1 clients bring their own): a random UUID in Kafka's base64url. */
char *cg_new_member_id(void)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
        for (size_t i = 0; i < sizeof(u); i++)
            u[i] = (uint8_t)rand();
    char *id = malloc(23);
    GREGOR_ASSERT(id != NULL);
    int k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 16; i++) {
        acc = (acc << 8) | u[i];
        bits += 8;
        while (bits >= 6) {
            id[k++] = b64[(acc >> (bits - 6)) & 63];
            bits -= 6;
        }
    }
    id[k++] = b64[(acc << (6 - bits)) & 63];
    id[k] = '\0';
    return id;
}

static bool owned_subset(const struct cg_tp *owned, int n, const struct cg_tps *assigned)
{
    if (owned == NULL || n < 0)
        return false;
    for (int i = 0; i < n; i++)
        if (!cg_tps_contains(assigned, &owned[i].topic_id, owned[i].partition))
            return false;
    return true;
}

/* Kafka's throwIfMemberEpochIsInvalid: a member may retry with its previous epoch (the answer
 * that bumped it was lost) as long as it owns nothing it was not given. */
static int16_t check_epoch(const struct cg_member *m, const struct cg_heartbeat_args *a)
{
    if (a->member_epoch > m->epoch)
        return CG_ERR_FENCED_MEMBER_EPOCH;
    if (a->member_epoch < m->epoch &&
        (a->member_epoch != m->previous_epoch || !owned_subset(a->owned, a->n_owned, &m->assigned)))
        return CG_ERR_FENCED_MEMBER_EPOCH;
    return KERR_NONE;
}

static bool strs_equal(char *const *a, int na, const char *const *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i] ? b[i] : "") != 0)
            return false;
    return true;
}

static bool str_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* A detached copy of a member's persisted fields (the proposal the heartbeat computes on). */
static void member_copy(struct cg_member *dst, const struct cg_member *src, const char *new_id)
{
    memset(dst, 0, sizeof(*dst));
    dst->id = gc_strdup(new_id ? new_id : src->id);
    dst->instance_id = gc_strdup(src->instance_id);
    dst->rack_id = gc_strdup(src->rack_id);
    dst->client_id = gc_strdup(src->client_id);
    dst->client_host = gc_strdup(src->client_host);
    dst->topics = calloc((size_t)src->n_topics + 1, sizeof(char *));
    GREGOR_ASSERT(dst->topics != NULL);
    for (int i = 0; i < src->n_topics; i++)
        dst->topics[i] = gc_strdup(src->topics[i]);
    dst->n_topics = src->n_topics;
    cg_member_set_regex(dst, src->regex);
    dst->rebalance_timeout_ms = src->rebalance_timeout_ms;
    dst->assignor = gc_strdup(src->assignor);
    dst->epoch = src->epoch;
    dst->previous_epoch = src->previous_epoch;
    dst->state = src->state;
    cg_tps_copy(&dst->assigned, &src->assigned);
    cg_tps_copy(&dst->pending_revocation, &src->pending_revocation);
    cg_tps_copy(&dst->target, &src->target);
    if (src->classic) {
        struct gc_protocol *v = classic_view(src);
        cg_member_set_classic(dst, src->classic_session_timeout_ms, v, src->n_classic_protocols);
        free(v);
    }
    if (new_id == NULL) {
        dst->has_metadata = src->has_metadata;
        dst->has_target = src->has_target;
        dst->has_current = src->has_current;
    }
}

/* Applies the request's non-null fields; returns whether the subscription changed. */
static bool member_update(struct cg_member *m, const struct cg_heartbeat_args *a, bool *changed)
{
    bool sub = false;
    if (a->instance_id && !str_same(m->instance_id, a->instance_id)) {
        free(m->instance_id);
        m->instance_id = gc_strdup(a->instance_id);
        *changed = true;
    }
    if (a->rack_id && !str_same(m->rack_id, a->rack_id)) {
        free(m->rack_id);
        m->rack_id = gc_strdup(a->rack_id);
        *changed = true;
    }
    if (a->rebalance_timeout_ms != -1 && a->rebalance_timeout_ms != m->rebalance_timeout_ms) {
        m->rebalance_timeout_ms = a->rebalance_timeout_ms;
        *changed = true;
    }
    if (a->n_topics >= 0 && !strs_equal(m->topics, m->n_topics, a->topics, a->n_topics)) {
        for (int i = 0; i < m->n_topics; i++)
            free(m->topics[i]);
        free(m->topics);
        m->topics = calloc((size_t)a->n_topics + 1, sizeof(char *));
        GREGOR_ASSERT(m->topics != NULL);
        for (int i = 0; i < a->n_topics; i++)
            m->topics[i] = gc_strdup(a->topics[i] ? a->topics[i] : "");
        m->n_topics = a->n_topics;
        sub = *changed = true;
    }
    if (a->regex) {
        const char *want = a->regex[0] ? a->regex : NULL;
        if (!str_same(m->regex, want)) {
            cg_member_set_regex(m, want);
            sub = *changed = true;
        }
    }
    if (a->assignor && !str_same(m->assignor, a->assignor)) {
        free(m->assignor);
        m->assignor = gc_strdup(a->assignor);
        *changed = true;
    }
    if (a->client_id && !str_same(m->client_id, a->client_id)) {
        free(m->client_id);
        m->client_id = gc_strdup(a->client_id);
        *changed = true;
    }
    if (a->client_host && !str_same(m->client_host, a->client_host)) {
        free(m->client_host);
        m->client_host = gc_strdup(a->client_host);
        *changed = true;
    }
    return sub;
}

static void arm_timers_after(struct group_coordinator *gc, const char *group_id,
                             const char *member_id)
{
    struct group *g = gc_group_find(gc, group_id);
    struct cg_member *m = g ? cg_member_find(g->cg, member_id) : NULL;
    if (m == NULL)
        return;
    m->classic_rejoin_deadline = 0; /* it (re)joined, or is no classic member */
    m->session_deadline = mono(gc) + cg_member_session_timeout(gc, m);
    if (m->session_timer.id == 0)
        timer_arm(gc, &m->session_timer, m->session_deadline);
    if (m->state == CG_UNREVOKED_PARTITIONS) {
        if (m->rebalance_timer.id == 0 || m->rebalance_epoch != m->epoch) {
            m->rebalance_epoch = m->epoch;
            int32_t rto = m->rebalance_timeout_ms > 0 ? m->rebalance_timeout_ms : session_timeout(gc);
            timer_arm(gc, &m->rebalance_timer, mono(gc) + rto);
        }
    } else {
        timer_stop(gc, &m->rebalance_timer);
    }
}

static void result_assignment(struct cg_heartbeat_result *out, const struct cg_tps *assigned)
{
    out->has_assignment = true;
    out->assignment = calloc((size_t)assigned->n + 1, sizeof(*out->assignment));
    GREGOR_ASSERT(out->assignment != NULL);
    memcpy(out->assignment, assigned->v, (size_t)assigned->n * sizeof(*assigned->v));
    out->n_assignment = assigned->n;
}

/* Removes a member (leave or fence): its three records die and the group epoch moves on. */
int cg_fence_member(struct group_coordinator *gc, struct group *g, struct cg_member *m,
                    const char *why)
{
    struct cg_group *cg = g->cg;
    if (cg_maybe_downgrade(gc, g, m))
        return KERR_NONE;
    struct gc_record_list l = {0};
    int e = cg_rec_current(&l, g->id, m->id, 0, 0, 0, NULL, NULL, true);
    if (e == KERR_NONE)
        e = cg_rec_target_member(&l, g->id, m->id, NULL, true);
    if (e == KERR_NONE)
        e = cg_rec_member_metadata(&l, g->id, m, true);
    if (e == KERR_NONE)
        e = cg_rec_group_metadata(&l, g->id, cg->epoch + 1, false);
    char *id = gc_strdup(m->id);
    int32_t epoch = cg->epoch + 1;
    if (e == KERR_NONE)
        e = cg_append_and_apply(gc, g->partition, &l);
    records_list_free(&l);
    if (e == KERR_NONE)
        LOG_INFO(CG_WHO, "[GroupId %s] Member %s left the consumer group (%s); group epoch %d",
                 g->id, id, why, epoch);
    else
        LOG_LIMITED(LOG_LEVEL_WARN, CG_WHO,
                    "[GroupId %s] cannot remove member %s (%s): %s", g->id, id, why,
                    kerr_name(e));
    free(id);
    return e;
}

static void heartbeat_leave(struct group_coordinator *gc, struct group *g,
                            const struct cg_heartbeat_args *a, struct cg_heartbeat_result *out)
{
    struct cg_group *cg = g->cg;
    struct cg_member *m = a->instance_id ? cg_member_by_instance(cg, a->instance_id)
                                         : cg_member_find(cg, a->member_id);
    if (m == NULL) {
        if (a->instance_id)
            fail(out, KERR_UNKNOWN_MEMBER_ID, "Instance id %s is unknown.", a->instance_id);
        else
            fail(out, KERR_UNKNOWN_MEMBER_ID, "Member %s is not a member of the group.",
                 a->member_id);
        return;
    }
    if (a->instance_id && strcmp(m->id, a->member_id) != 0) {
        fail(out, KERR_FENCED_INSTANCE_ID, "Static member with instance id %s is fenced.",
             a->instance_id);
        return;
    }
    out->member_id = gc_strdup(a->member_id);
    out->member_epoch = a->member_epoch;
    if (a->member_epoch == CG_STATIC_LEAVE_EPOCH) {
        /* The static member will come back: it keeps its partitions for a session timeout. */
        struct gc_record_list l = {0};
        int e = cg_rec_current(&l, g->id, m->id, CG_STATIC_LEAVE_EPOCH, m->epoch, m->state,
                               &m->assigned, &m->pending_revocation, false);
        if (e == KERR_NONE)
            e = cg_append_and_apply(gc, g->partition, &l);
        records_list_free(&l);
        if (e != KERR_NONE)
            fail(out, KERR_COORDINATOR_NOT_AVAILABLE, "cannot persist the leave: %s", kerr_name(e));
        else
            LOG_INFO(CG_WHO, "[GroupId %s] Static member %s with instance id %s left the "
                     "consumer group temporarily", g->id, a->member_id, a->instance_id);
        return;
    }
    if (cg_fence_member(gc, g, m, "leave request") != KERR_NONE)
        fail(out, KERR_COORDINATOR_NOT_AVAILABLE, "cannot persist the leave%s", NULL);
}

/* Finds the member the request speaks for, or how it is refused. *replaced is the id of a static
 * member that left temporarily and whose place the joining one takes. */
static int16_t find_member(struct cg_group *cg, const struct cg_heartbeat_args *a,
                           struct cg_member **found, const char **replaced,
                           struct cg_heartbeat_result *out)
{
    *found = NULL;
    *replaced = NULL;
    if (a->instance_id == NULL) {
        *found = cg_member_find(cg, a->member_id);
        if (*found == NULL && a->member_epoch != CG_JOIN_EPOCH) {
            fail(out, KERR_UNKNOWN_MEMBER_ID, "Member %s is not a member of the group.",
                 a->member_id);
            return out->error;
        }
    } else {
        struct cg_member *s = cg_member_by_instance(cg, a->instance_id);
        if (a->member_epoch == CG_JOIN_EPOCH) {
            if (s != NULL && strcmp(s->id, a->member_id) != 0) {
                /* As Kafka: a consumer-protocol instance replaces a classic one at once (a
                 * rolling upgrade restarts each static member with the new protocol); another
                 * consumer-protocol one only after it left (epoch -2). */
                if (s->epoch != CG_STATIC_LEAVE_EPOCH && !s->classic) {
                    fail(out, CG_ERR_UNRELEASED_INSTANCE_ID, "Static member with instance id %s "
                         "is not released yet.", a->instance_id);
                    return out->error;
                }
                *replaced = s->id;
                *found = s;
                return KERR_NONE;
            }
            *found = s;
        } else {
            if (s == NULL) {
                fail(out, KERR_UNKNOWN_MEMBER_ID, "Instance id %s is unknown.", a->instance_id);
                return out->error;
            }
            if (strcmp(s->id, a->member_id) != 0) {
                fail(out, KERR_FENCED_INSTANCE_ID, "Static member with instance id %s is fenced.",
                     a->instance_id);
                return out->error;
            }
            *found = s;
        }
    }
    if (*found != NULL && a->member_epoch != CG_JOIN_EPOCH) {
        int16_t e = check_epoch(*found, a);
        if (e != KERR_NONE) {
            fail(out, e, "The consumer group member has a greater or smaller member epoch than "
                 "expected.%s", NULL);
            return e;
        }
    }
    return KERR_NONE;
}

/* The group for a heartbeat: existing consumer group, or (joins only) a new one or an empty
 * classic group taken over. NULL with out->error set otherwise. */
static struct group *heartbeat_group(struct group_coordinator *gc, const struct cg_heartbeat_args *a,
                                     bool *classic_takeover, struct cg_heartbeat_result *out)
{
    *classic_takeover = false;
    struct group *g = gc_group_find(gc, a->group_id);
    if (g != NULL && g->cg != NULL)
        return g;
    if (g != NULL && (g->n_members > 0 || g->n_pending > 0 || g->state != GC_EMPTY)) {
        /* A classic group with members: converted when a member joins (online upgrade). */
        struct group *up = a->member_epoch == CG_JOIN_EPOCH ? cg_upgrade_classic_group(gc, g)
                                                            : NULL;
        if (up == NULL)
            fail(out, KERR_GROUP_ID_NOT_FOUND, "Group %s is not a consumer group.", a->group_id);
        return up;
    }
    if (a->member_epoch != CG_JOIN_EPOCH) {
        fail(out, KERR_GROUP_ID_NOT_FOUND, "Group %s not found.", a->group_id);
        return NULL;
    }
    if (g == NULL)
        g = gc_group_get_or_create(gc, a->group_id);
    *classic_takeover = g->meta.p != NULL;
    cg_attach(g);
    return g;
}

static bool classic_same(const struct cg_member *m, const struct cg_classic_join *c)
{
    const struct gc_join_args *j = c->join;
    if (!m->classic || m->classic_session_timeout_ms != j->session_timeout_ms ||
        m->n_classic_protocols != j->n_protocols)
        return false;
    for (int i = 0; i < j->n_protocols; i++) {
        const struct member_protocol *p = &m->classic_protocols[i];
        int32_t len = j->protocols[i].metadata ? j->protocols[i].metadata_len : 0;
        if (!str_same(p->name, j->protocols[i].name) || p->metadata_len != len ||
            (len > 0 && memcmp(p->metadata, j->protocols[i].metadata, (size_t)len) != 0))
            return false;
    }
    return true;
}

static void heartbeat_core(struct group_coordinator *gc, const struct cg_topic_view *tv,
                           struct group *g, bool classic_takeover,
                           const struct cg_heartbeat_args *a, struct cg_member *existing,
                           const char *replaced, const struct cg_classic_join *classic,
                           struct cg_heartbeat_result *out);

/* Everything a join or regular heartbeat changes, as records; then applied. */
static void heartbeat_member(struct group_coordinator *gc, const struct cg_topic_view *tv,
                             struct group *g, bool classic_takeover,
                             const struct cg_heartbeat_args *a, struct cg_heartbeat_result *out)
{
    struct cg_member *existing;
    const char *replaced;
    if (find_member(g->cg, a, &existing, &replaced, out) != KERR_NONE)
        return;
    if (existing != NULL && existing->classic && replaced == NULL) {
        /* A classic member of this group speaks the consumer protocol now: as Kafka, the
         * member id is the classic member's; it is no longer classic from this join on. */
        LOG_INFO(CG_WHO, "[GroupId %s] Member %s upgrades from the classic protocol", g->id,
                 existing->id);
    }
    heartbeat_core(gc, tv, g, classic_takeover, a, existing, replaced, NULL, out);
}

int16_t cg_heartbeat_apply(struct group_coordinator *gc, const struct cg_topic_view *tv,
                           struct group *g, const struct cg_heartbeat_args *a,
                           struct cg_member *existing, const char *replaced,
                           const struct cg_classic_join *classic, struct cg_heartbeat_result *out)
{
    heartbeat_core(gc, tv, g, false, a, existing, replaced, classic, out);
    return out->error;
}

static void heartbeat_core(struct group_coordinator *gc, const struct cg_topic_view *tv,
                           struct group *g, bool classic_takeover,
                           const struct cg_heartbeat_args *a, struct cg_member *existing,
                           const char *replaced, const struct cg_classic_join *classic,
                           struct cg_heartbeat_result *out)
{
    struct cg_group *cg = g->cg;
    if (existing == NULL && cg->n_members >= max_size(gc)) {
        fail(out, KERR_GROUP_MAX_SIZE_REACHED, "The consumer group has reached its maximum "
             "capacity.%s", NULL);
        return;
    }
    char *generated = NULL;
    const char *member_id = a->member_id;
    if (existing == NULL && (member_id == NULL || member_id[0] == '\0'))
        member_id = generated = cg_new_member_id();

    struct cg_member upd;
    bool meta_changed = existing == NULL || replaced != NULL;
    bool sub_changed = meta_changed;
    if (existing != NULL) {
        member_copy(&upd, existing, replaced ? member_id : NULL);
    } else {
        memset(&upd, 0, sizeof(upd));
        upd.id = gc_strdup(member_id);
        upd.topics = calloc(1, sizeof(char *));
        GREGOR_ASSERT(upd.topics != NULL);
        upd.rebalance_timeout_ms = -1;
        upd.state = CG_STABLE;
    }
    free(generated);
    if (member_update(&upd, a, &meta_changed))
        sub_changed = true;
    if (classic != NULL && !classic_same(&upd, classic)) {
        cg_member_set_classic(&upd, classic->join->session_timeout_ms, classic->join->protocols,
                              classic->join->n_protocols);
        meta_changed = true;
    } else if (classic == NULL && upd.classic) {
        cg_member_set_classic(&upd, 0, NULL, -1);
        meta_changed = true;
    }
    if (a->regex && a->regex[0] && !upd.re_ok) {
        fail(out, CG_ERR_INVALID_REGULAR_EXPRESSION, "SubscribedTopicRegex %s is not a valid "
             "regular expression.", a->regex);
        member_fields_free(&upd);
        return;
    }

    struct resolved r;
    resolve(&r, cg, existing, &upd, tv);
    uint64_t hash = resolved_hash(&r);
    bool metadata_changed = cg->metadata_known && hash != cg->metadata_hash;
    int32_t group_epoch = cg->epoch;
    if (sub_changed || metadata_changed || !cg->has_metadata)
        group_epoch++;

    struct gc_record_list l = {0};
    int e = KERR_NONE;
    if (classic_takeover)
        e = records_add_group_tombstone(&l, g->id);
    if (e == KERR_NONE && replaced) {
        e = cg_rec_current(&l, g->id, replaced, 0, 0, 0, NULL, NULL, true);
        if (e == KERR_NONE)
            e = cg_rec_target_member(&l, g->id, replaced, NULL, true);
        if (e == KERR_NONE)
            e = cg_rec_member_metadata(&l, g->id, existing, true);
    }
    if (e == KERR_NONE && meta_changed)
        e = cg_rec_member_metadata(&l, g->id, &upd, false);
    if (e == KERR_NONE && group_epoch != cg->epoch)
        e = cg_rec_group_metadata(&l, g->id, group_epoch, false);

    /* Target assignment: recomputed for everyone when the group epoch passed it. */
    int32_t target_epoch = cg->assignment_epoch;
    struct cg_tps my_target = {0};
    if (e == KERR_NONE && group_epoch > cg->assignment_epoch) {
        /* The members as this change sees them: only built when the assignment is computed. */
        struct view v;
        view_build(&v, cg, &upd, replaced);
        struct cg_tps *targets = calloc((size_t)v.n + 1, sizeof(*targets));
        GREGOR_ASSERT(targets != NULL);
        const char *assignor = view_assignor(&v);
        compute_targets(&v, &r, assignor, targets);
        for (int i = 0; i < v.n && e == KERR_NONE; i++) {
            struct cg_member *m = v.m[i];
            gc->work.assign_steps++;
            bool is_new = m == &upd && (existing == NULL || replaced);
            if (is_new || !m->has_target || !cg_tps_equal(&m->target, &targets[i]))
                e = cg_rec_target_member(&l, g->id, m->id, &targets[i], false);
            if (m == &upd)
                cg_tps_copy(&my_target, &targets[i]);
        }
        if (e == KERR_NONE)
            e = cg_rec_target_metadata(&l, g->id, group_epoch, false);
        target_epoch = group_epoch;
        for (int i = 0; i < v.n; i++)
            cg_tps_free(&targets[i]);
        free(targets);
        LOG_INFO(CG_WHO, "[GroupId %s] Computed a new target assignment for epoch %d with %d "
                 "members (assignor %s)", g->id, group_epoch, v.n, assignor);
        free(v.m);
    } else {
        cg_tps_copy(&my_target, &upd.target);
        if (e == KERR_NONE && replaced)
            e = cg_rec_target_member(&l, g->id, upd.id, &my_target, false);
    }

    /* Reconciliation of this member towards its target. */
    struct next_state ns = {0};
    if (e == KERR_NONE) {
        int16_t re = reconcile(cg, &upd, target_epoch, &my_target, a->owned, a->n_owned, &ns);
        if (re != KERR_NONE) {
            fail(out, re, "The consumer group member is in an unknown state.%s", NULL);
            e = -2;
        }
    }
    bool assignment_changed = !cg_tps_equal(&ns.assigned, &upd.assigned);
    if (e == KERR_NONE &&
        (existing == NULL || replaced || !upd.has_current || ns.epoch != upd.epoch ||
         ns.previous_epoch != upd.previous_epoch || ns.state != upd.state || assignment_changed ||
         !cg_tps_equal(&ns.pending, &upd.pending_revocation)))
        e = cg_rec_current(&l, g->id, upd.id, ns.epoch, ns.previous_epoch, ns.state, &ns.assigned,
                           &ns.pending, false);
    if (e == KERR_NONE)
        e = cg_append_and_apply(gc, g->partition, &l);
    if (e == KERR_NONE) {
        g = gc_group_find(gc, a->group_id);
        if (g && g->cg) {
            g->cg->metadata_hash = hash;
            g->cg->metadata_known = true;
        }
        arm_timers_after(gc, a->group_id, upd.id);
        out->member_id = gc_strdup(upd.id);
        out->member_epoch = ns.epoch;
        out->heartbeat_interval_ms = heartbeat_interval(gc);
        if (a->member_epoch == CG_JOIN_EPOCH || a->owned != NULL || assignment_changed ||
            existing == NULL || replaced)
            result_assignment(out, &ns.assigned);
        if (existing == NULL || replaced)
            LOG_INFO(CG_WHO, "[GroupId %s] Member %s joined the consumer group (epoch %d)",
                     a->group_id, upd.id, ns.epoch);
    } else if (e != -2) {
        fail(out, KERR_COORDINATOR_NOT_AVAILABLE, "cannot persist the heartbeat: %s",
             kerr_name(e));
    }
    records_list_free(&l);
    cg_tps_free(&ns.assigned);
    cg_tps_free(&ns.pending);
    cg_tps_free(&my_target);
    resolved_free(&r);
    member_fields_free(&upd);
}

void cg_heartbeat(struct group_coordinator *gc, const struct cg_topic_view *tv,
                  const struct cg_heartbeat_args *a, struct cg_heartbeat_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!request_valid(a, out))
        return;
    bool takeover = false;
    if (a->member_epoch == CG_LEAVE_EPOCH || a->member_epoch == CG_STATIC_LEAVE_EPOCH) {
        struct group *g = gc_group_find(gc, a->group_id);
        if (g == NULL || g->cg == NULL) {
            fail(out, KERR_GROUP_ID_NOT_FOUND, g ? "Group %s is not a consumer group."
                                                 : "Group %s not found.", a->group_id);
            return;
        }
        heartbeat_leave(gc, g, a, out);
        return;
    }
    struct group *g = heartbeat_group(gc, a, &takeover, out);
    if (g == NULL)
        return;
    heartbeat_member(gc, tv, g, takeover, a, out);
    /* A group created for a join that failed holds nothing: forget it. */
    g = gc_group_find(gc, a->group_id);
    if (g && g->cg && g->cg->n_members == 0 && !g->cg->has_metadata &&
        !g->cg->has_target_metadata) {
        cg_group_free(g);
        gc_group_drop_if_unused(gc, g);
    }
}

void cg_heartbeat_result_free(struct cg_heartbeat_result *r)
{
    free(r->member_id);
    free(r->assignment);
    r->member_id = NULL;
    r->assignment = NULL;
}

/* ---- timers ---- */

static void session_expired(struct group_coordinator *gc, struct cg_member *m)
{
    struct group *g = m->cg->g;
    int64_t now = mono(gc);
    if (m->session_deadline > now) {
        timer_arm(gc, &m->session_timer, m->session_deadline);
        return;
    }
    if (m->classic_rejoin_deadline > 0 && m->classic_rejoin_deadline <= now)
        LOG_INFO(CG_WHO, "[GroupId %s] Classic member %s fenced from the group because it did "
                 "not rejoin within its rebalance timeout (%d ms)", g->id, m->id,
                 m->rebalance_timeout_ms);
    else
        LOG_INFO(CG_WHO, "[GroupId %s] Member %s fenced from the group because its session "
                 "expired (%d ms)", g->id, m->id, cg_member_session_timeout(gc, m));
    if (cg_fence_member(gc, g, m, "session timeout") != KERR_NONE)
        timer_arm(gc, &m->session_timer, now + CG_RETRY_MS);
}

static void rebalance_expired(struct group_coordinator *gc, struct cg_member *m)
{
    struct group *g = m->cg->g;
    if (m->state != CG_UNREVOKED_PARTITIONS || m->epoch != m->rebalance_epoch)
        return;
    LOG_INFO(CG_WHO, "[GroupId %s] Member %s fenced from the group because it failed to revoke "
             "partitions within the rebalance timeout (%d ms)", g->id, m->id,
             m->rebalance_timeout_ms);
    if (cg_fence_member(gc, g, m, "rebalance timeout") != KERR_NONE)
        timer_arm(gc, &m->rebalance_timer, mono(gc) + CG_RETRY_MS);
}

void cg_timer_fire(struct group_coordinator *gc, struct gc_timer *t)
{
    if (t->kind == GC_TIMER_CG_SESSION)
        session_expired(gc, t->owner);
    else if (t->kind == GC_TIMER_CG_REBALANCE)
        rebalance_expired(gc, t->owner);
}

void cg_replay_done(struct group_coordinator *gc, int32_t partition)
{
    for (size_t i = 0; i < gc->nbuckets; i++)
        for (struct group *g = gc->buckets[i]; g; g = g->next) {
            if (g->cg == NULL || (partition >= 0 && g->partition != partition))
                continue;
            g->state = g->cg->n_members > 0 ? GC_STABLE : GC_EMPTY;
            for (struct cg_member *m = g->cg->members; m; m = m->next) {
                m->session_deadline = mono(gc) + cg_member_session_timeout(gc, m);
                timer_arm(gc, &m->session_timer, m->session_deadline);
            }
        }
}

/* ---- describe ---- */

void cg_describe(struct group_coordinator *gc, const char *group_id, struct cg_group_desc *d)
{
    memset(d, 0, sizeof(*d));
    d->state = "Dead";
    d->assignor = "";
    struct group *g = gc_group_find(gc, group_id);
    if (g == NULL || g->cg == NULL) {
        d->error = KERR_GROUP_ID_NOT_FOUND;
        d->error_message = g ? "Group is not a consumer group." : "Group not found.";
        return;
    }
    struct cg_group *cg = g->cg;
    d->state = cg_state_name(g);
    d->group_epoch = cg->epoch;
    d->assignment_epoch = cg->assignment_epoch;
    d->assignor = cg_group_assignor(cg);
    d->members = calloc((size_t)cg->n_members + 1, sizeof(*d->members));
    GREGOR_ASSERT(d->members != NULL);
    for (struct cg_member *m = cg->members; m; m = m->next) {
        struct cg_member_desc *x = &d->members[d->n_members++];
        x->member_id = m->id;
        x->instance_id = m->instance_id;
        x->rack_id = m->rack_id;
        x->client_id = m->client_id ? m->client_id : "";
        x->client_host = m->client_host ? m->client_host : "";
        x->topics = m->topics;
        x->n_topics = m->n_topics;
        x->regex = m->regex;
        x->member_epoch = m->epoch;
        x->assigned = m->assigned.v;
        x->n_assigned = m->assigned.n;
        x->target = m->target.v;
        x->n_target = m->target.n;
    }
}

void cg_describe_free(struct cg_group_desc *d)
{
    free(d->members);
    d->members = NULL;
}

/* ---- hooks for the classic coordinator ---- */

int16_t cg_validate_commit(struct group *g, const struct gc_commit_args *a)
{
    struct cg_group *cg = g->cg;
    /* Admin tools and consumers without group management commit into an empty group. */
    if (a->generation < 0 && cg->n_members == 0)
        return KERR_NONE;
    struct cg_member *m = cg_member_find(cg, a->member_id);
    if (m == NULL)
        return KERR_UNKNOWN_MEMBER_ID;
    /* Kafka: members of the KIP-848 protocol commit with OffsetCommit v9 or later; classic
     * members of the group commit as in a classic group (ILLEGAL_GENERATION). */
    if (a->version < 9 && !m->classic)
        return KERR_UNSUPPORTED_VERSION;
    if (a->generation != m->epoch)
        return m->classic ? KERR_ILLEGAL_GENERATION : CG_ERR_STALE_MEMBER_EPOCH;
    /* A commit is a sign of life too. */
    cg_member_touch(g->gc, m);
    return KERR_NONE;
}

int16_t cg_validate_fetch(struct group *g, const char *member_id, int32_t member_epoch)
{
    struct cg_member *m = member_id ? cg_member_find(g->cg, member_id) : NULL;
    if (m == NULL)
        return KERR_UNKNOWN_MEMBER_ID;
    return member_epoch != m->epoch ? CG_ERR_STALE_MEMBER_EPOCH : KERR_NONE;
}

int16_t cg_classic_join(struct group_coordinator *gc, struct group *g)
{
    if (g->cg->n_members > 0)
        return KERR_INCONSISTENT_GROUP_PROTOCOL;
    struct gc_record_list l = {0};
    int e = cg_records_add_tombstones(&l, g);
    if (e == KERR_NONE)
        e = records_append(gc, g->partition, &l);
    records_list_free(&l);
    if (e != KERR_NONE) {
        LOG_WARN(CG_WHO, "cannot turn empty consumer group %s into a classic group: %s", g->id,
                 kerr_name(e));
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    LOG_INFO(CG_WHO, "[GroupId %s] Empty consumer group becomes a classic group", g->id);
    cg_group_free(g);
    g->state = GC_EMPTY;
    return KERR_NONE;
}
