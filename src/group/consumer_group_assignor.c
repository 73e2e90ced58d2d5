/* consumer_group_assignor: the server-side assignors of KIP-848 consumer groups — "uniform"
 * (balanced, sticky) and "range" (per-topic ranges, sticky within quota). Pure functions. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "group/consumer_group.h"

int cg_tp_cmp(const void *a, const void *b)
{
    const struct cg_tp *x = a, *y = b;
    int c = memcmp(x->topic_id.b, y->topic_id.b, sizeof(x->topic_id.b));
    if (c != 0)
        return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

void cg_tp_sort(struct cg_tp *v, int n)
{
    if (n > 1)
        qsort(v, (size_t)n, sizeof(*v), cg_tp_cmp);
}

bool cg_assignor_known(const char *name)
{
    return name && (strcmp(name, "uniform") == 0 || strcmp(name, "range") == 0);
}

/* The partitions being assigned, numbered 0..total-1: topic t owns [base[t], base[t]+parts),
 * topics in name order. */
struct space {
    uint64_t *steps;    /* work counter (gc_work's assign_steps) */
    const struct cg_assign_topic *topics;
    int n_topics;
    int *order;         /* topic indexes sorted by name */
    int *base;
    int *by_uuid;       /* topic indexes sorted by id (lookups of previous partitions) */
    int total;
};

/* qsort with a context: entries carry it. Ties (equal keys) keep the input order. */
struct sort_entry {
    const void *ctx;
    int idx;
    uint64_t *steps;
};

static void sort_indexes(int *idx, int n, int (*cmp)(const void *, const void *), const void *ctx,
                         uint64_t *steps)
{
    struct sort_entry *e = calloc((size_t)n + 1, sizeof(*e));
    GREGOR_ASSERT(e != NULL);
    for (int i = 0; i < n; i++)
        e[i] = (struct sort_entry){ctx, idx[i], steps};
    if (n > 1)
        qsort(e, (size_t)n, sizeof(*e), cmp);
    for (int i = 0; i < n; i++)
        idx[i] = e[i].idx;
    free(e);
}

static int topic_name_cmp(const void *pa, const void *pb)
{
    const struct sort_entry *a = pa, *b = pb;
    ++*a->steps;
    const struct cg_assign_topic *x = &((const struct cg_assign_topic *)a->ctx)[a->idx];
    const struct cg_assign_topic *y = &((const struct cg_assign_topic *)a->ctx)[b->idx];
    int c = strcmp(x->name ? x->name : "", y->name ? y->name : "");
    if (c == 0)
        c = memcmp(x->id.b, y->id.b, 16);
    return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int topic_id_cmp(const void *pa, const void *pb)
{
    const struct sort_entry *a = pa, *b = pb;
    ++*a->steps;
    const struct cg_assign_topic *t = a->ctx;
    int c = memcmp(t[a->idx].id.b, t[b->idx].id.b, 16);
    return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static void space_init(struct space *s, const struct cg_assign_topic *topics, int n)
{
    s->topics = topics;
    s->n_topics = n;
    s->order = calloc((size_t)n + 1, sizeof(int));
    s->base = calloc((size_t)n + 1, sizeof(int));
    s->by_uuid = calloc((size_t)n + 1, sizeof(int));
    GREGOR_ASSERT(s->order && s->base && s->by_uuid);
    for (int i = 0; i < n; i++)
        s->order[i] = s->by_uuid[i] = i;
    sort_indexes(s->order, n, topic_name_cmp, topics, s->steps);
    sort_indexes(s->by_uuid, n, topic_id_cmp, topics, s->steps);
    s->total = 0;
    for (int k = 0; k < n; k++) {
        int t = s->order[k];
        s->base[t] = s->total;
        s->total += topics[t].partitions > 0 ? topics[t].partitions : 0;
    }
}

static void space_free(struct space *s)
{
    free(s->order);
    free(s->base);
    free(s->by_uuid);
}

/* The first topic with this id (binary search), or -1. */
static int space_topic_of(const struct space *s, const struct kuuid *id)
{
    int lo = 0, hi = s->n_topics;
    while (lo < hi) {
        ++*s->steps;
        int mid = lo + (hi - lo) / 2;
        if (memcmp(s->topics[s->by_uuid[mid]].id.b, id->b, 16) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n_topics && memcmp(s->topics[s->by_uuid[lo]].id.b, id->b, 16) == 0)
        return s->by_uuid[lo];
    return -1;
}

/* Index of a previous partition, or -1 when its topic or partition is gone. */
static int space_index(const struct space *s, const struct cg_tp *tp, int *topic_out)
{
    int t = space_topic_of(s, &tp->topic_id);
    if (t < 0 || tp->partition < 0 || tp->partition >= s->topics[t].partitions)
        return -1;
    *topic_out = t;
    return s->base[t] + tp->partition;
}

static int member_id_cmp(const void *pa, const void *pb)
{
    const struct sort_entry *a = pa, *b = pb;
    ++*a->steps;
    const struct cg_assign_member *m = a->ctx;
    int c = strcmp(m[a->idx].id, m[b->idx].id);
    return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Builds each member's output from owner[] (partition index -> member index). */
static void emit(const struct space *s, const int *owner, struct cg_assign_member *members, int n)
{
    int *count = calloc((size_t)n + 1, sizeof(int));
    GREGOR_ASSERT(count != NULL);
    for (int i = 0; i < s->total; i++)
        if (owner[i] >= 0)
            count[owner[i]]++;
    for (int m = 0; m < n; m++) {
        members[m].out = calloc((size_t)count[m] + 1, sizeof(struct cg_tp));
        GREGOR_ASSERT(members[m].out != NULL);
        members[m].n_out = 0;
    }
    for (int k = 0; k < s->n_topics; k++) {
        int t = s->order[k];
        for (int32_t p = 0; p < s->topics[t].partitions; p++) {
            int o = owner[s->base[t] + p];
            ++*s->steps;
            if (o < 0)
                continue;
            struct cg_assign_member *m = &members[o];
            m->out[m->n_out].topic_id = s->topics[t].id;
            m->out[m->n_out].partition = p;
            m->n_out++;
        }
    }
    for (int m = 0; m < n; m++)
        cg_tp_sort(members[m].out, members[m].n_out);
    free(count);
}

/* ---- uniform ---- */

/* Members that may take a topic's partitions, as a binary min-heap keyed by (count, rank in
 * member id order): its top is the least loaded member, ties to the first by id, the member
 * a scan of all members in id order would pick. Topics with the same subscribers share one. */
struct heap {
    int *h;       /* members */
    int *pos;     /* member -> index in h, -1 = not in this heap */
    int n;
};

struct uniform {
    const struct space *s;
    const int *count, *rank;
    struct heap *heaps;
    int n_heaps;
    int *heap_of;         /* topic -> heap */
    int **member_heaps;   /* member -> the heaps it is in */
    int *n_member_heaps;
};

static bool heap_less(const struct uniform *u, int a, int b)
{
    return u->count[a] < u->count[b] || (u->count[a] == u->count[b] && u->rank[a] < u->rank[b]);
}

static void heap_swap(struct heap *h, int i, int j)
{
    int a = h->h[i], b = h->h[j];
    h->h[i] = b;
    h->h[j] = a;
    h->pos[b] = i;
    h->pos[a] = j;
}

static void heap_sift_down(const struct uniform *u, struct heap *h, int i)
{
    for (;;) {
        ++*u->s->steps;
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && heap_less(u, h->h[l], h->h[m]))
            m = l;
        if (r < h->n && heap_less(u, h->h[r], h->h[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

/* Restores the heap after the key at i changed either way. */
static void heap_fix(const struct uniform *u, struct heap *h, int i)
{
    while (i > 0 && heap_less(u, h->h[i], h->h[(i - 1) / 2])) {
        ++*u->s->steps;
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    heap_sift_down(u, h, i);
}

/* A member's count changed: it moves in every heap it is in. */
static void member_moved(const struct uniform *u, int m)
{
    for (int k = 0; k < u->n_member_heaps[m]; k++) {
        struct heap *h = &u->heaps[u->member_heaps[m][k]];
        heap_fix(u, h, h->pos[m]);
    }
}

/* The least loaded member of heap h other than a (-1 = none): the top, or a child of the top. */
static int heap_best_except(const struct uniform *u, const struct heap *h, int a)
{
    if (h->n == 0)
        return -1;
    if (h->h[0] != a)
        return h->h[0];
    int best = -1;
    for (int i = 1; i <= 2 && i < h->n; i++)
        if (best < 0 || heap_less(u, h->h[i], best))
            best = h->h[i];
    return best;
}

static uint64_t column_hash(const struct cg_assign_member *members, const int *by_id, int n, int t)
{
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < n; k++)
        if (members[by_id[k]].subscribed[t])
            h = (h ^ (uint64_t)k) * 1099511628211ULL;
    return h;
}

static bool same_column(const struct cg_assign_member *members, int n, int t1, int t2)
{
    for (int m = 0; m < n; m++)
        if (members[m].subscribed[t1] != members[m].subscribed[t2])
            return false;
    return true;
}

/* One heap per distinct set of subscribers (topics compared by a hash of the set first). */
static void uniform_init(struct uniform *u, const struct space *s, const struct cg_assign_member *members,
                         int n, const int *by_id, const int *count, const int *rank)
{
    memset(u, 0, sizeof(*u));
    u->s = s;
    u->count = count;
    u->rank = rank;
    int T = s->n_topics;
    uint64_t *hash = calloc((size_t)T + 1, sizeof(*hash));
    int *rep = calloc((size_t)T + 1, sizeof(int));   /* heap -> a topic of it */
    u->heap_of = calloc((size_t)T + 1, sizeof(int));
    u->heaps = calloc((size_t)T + 1, sizeof(*u->heaps));
    u->member_heaps = calloc((size_t)n + 1, sizeof(int *));
    u->n_member_heaps = calloc((size_t)n + 1, sizeof(int));
    GREGOR_ASSERT(hash && rep && u->heap_of && u->heaps && u->member_heaps && u->n_member_heaps);
    for (int t = 0; t < T; t++) {
        *s->steps += (uint64_t)n;
        hash[t] = column_hash(members, by_id, n, t);
        u->heap_of[t] = -1;
        /* Few distinct sets are expected; a topic is compared with the heaps of equal hash. */
        for (int c = 0; c < u->n_heaps && u->heap_of[t] < 0; c++)
            if (++*s->steps && hash[rep[c]] == hash[t] && same_column(members, n, rep[c], t))
                u->heap_of[t] = c;
        if (u->heap_of[t] < 0) {
            rep[u->n_heaps] = t;
            u->heap_of[t] = u->n_heaps++;
        }
    }
    for (int c = 0; c < u->n_heaps; c++) {
        struct heap *h = &u->heaps[c];
        h->h = calloc((size_t)n + 1, sizeof(int));
        h->pos = malloc(((size_t)n + 1) * sizeof(int));
        GREGOR_ASSERT(h->h && h->pos);
        for (int m = 0; m < n; m++)
            h->pos[m] = -1;
        int t = rep[c];
        /* Members in id order with their counts: heapify. */
        for (int k = 0; k < n; k++) {
            int m = by_id[k];
            ++*s->steps;
            if (!members[m].subscribed[t])
                continue;
            h->pos[m] = h->n;
            h->h[h->n++] = m;
            u->n_member_heaps[m]++;
        }
        for (int i = h->n / 2 - 1; i >= 0; i--)
            heap_sift_down(u, h, i);
    }
    for (int m = 0; m < n; m++) {
        u->member_heaps[m] = calloc((size_t)u->n_member_heaps[m] + 1, sizeof(int));
        GREGOR_ASSERT(u->member_heaps[m] != NULL);
        u->n_member_heaps[m] = 0;
    }
    for (int c = 0; c < u->n_heaps; c++)
        for (int i = 0; i < u->heaps[c].n; i++) {
            int m = u->heaps[c].h[i];
            u->member_heaps[m][u->n_member_heaps[m]++] = c;
        }
    free(hash);
    free(rep);
}

static void uniform_free(struct uniform *u, int n)
{
    for (int c = 0; c < u->n_heaps; c++) {
        free(u->heaps[c].h);
        free(u->heaps[c].pos);
    }
    for (int m = 0; m < n; m++)
        free(u->member_heaps[m]);
    free(u->heaps);
    free(u->heap_of);
    free(u->member_heaps);
    free(u->n_member_heaps);
}

/* Uniform: keep what each member had (if still valid), give the rest to the least loaded member
 * that subscribes, then move partitions from members with two or more than an eligible member
 * until no such pair remains (every move lowers the sum of squared counts, so this ends).
 * "Least loaded" is (count, member id order) everywhere, read from the heaps above, so a pass
 * costs about partitions x log members instead of partitions x members. */
static void assign_uniform(const struct space *s, struct cg_assign_member *members, int n,
                           const int *by_id)
{
    int *owner = malloc(((size_t)s->total + 1) * sizeof(int));
    int *count = calloc((size_t)n + 1, sizeof(int));
    int *rank = calloc((size_t)n + 1, sizeof(int));
    GREGOR_ASSERT(owner && count && rank);
    for (int i = 0; i < s->total; i++)
        owner[i] = -1;
    for (int k = 0; k < n; k++) {
        int m = by_id[k];
        rank[m] = k;
        for (int j = 0; j < members[m].n_previous; j++) {
            int t;
            int idx = space_index(s, &members[m].previous[j], &t);
            if (idx >= 0 && members[m].subscribed[t] && owner[idx] < 0) {
                owner[idx] = m;
                count[m]++;
            }
        }
    }
    struct uniform u;
    uniform_init(&u, s, members, n, by_id, count, rank);
    for (int k = 0; k < s->n_topics; k++) {
        int t = s->order[k];
        struct heap *h = &u.heaps[u.heap_of[t]];
        for (int32_t p = 0; p < s->topics[t].partitions; p++) {
            int i = s->base[t] + p;
            ++*s->steps;
            if (owner[i] >= 0 || h->n == 0)
                continue;
            int best = h->h[0];
            owner[i] = best;
            count[best]++;
            member_moved(&u, best);
        }
    }
    bool moved = true;
    for (int pass = 0; moved && pass < s->total + 1; pass++) {
        moved = false;
        /* Take from the tail of each member's partitions first: the head is what it kept. */
        for (int k = s->n_topics - 1; k >= 0; k--) {
            int t = s->order[k];
            const struct heap *h = &u.heaps[u.heap_of[t]];
            for (int32_t p = s->topics[t].partitions - 1; p >= 0; p--) {
                int i = s->base[t] + p;
                int a = owner[i];
                ++*s->steps;
                if (a < 0)
                    continue;
                int best = heap_best_except(&u, h, a);
                if (best >= 0 && count[a] - count[best] >= 2) {
                    owner[i] = best;
                    count[a]--;
                    count[best]++;
                    member_moved(&u, a);
                    member_moved(&u, best);
                    moved = true;
                }
            }
        }
    }
    uniform_free(&u, n);
    emit(s, owner, members, n);
    free(owner);
    free(count);
    free(rank);
}

/* Range, per topic: members subscribing to it in member id order; each gets partitions/n, the
 * first partitions%n one more. Partitions a member had are kept within its quota; the rest are
 * handed out in partition order, so a fresh group gets Kafka's contiguous ranges. */
static void assign_range(const struct space *s, struct cg_assign_member *members, int n,
                         const int *by_id)
{
    int *owner = malloc(((size_t)s->total + 1) * sizeof(int));
    int *subs = calloc((size_t)n + 1, sizeof(int));
    int *have = calloc((size_t)n + 1, sizeof(int));
    bool *extra = calloc((size_t)n + 1, sizeof(bool));
    GREGOR_ASSERT(owner && subs && have && extra);
    for (int i = 0; i < s->total; i++)
        owner[i] = -1;
    for (int k = 0; k < s->n_topics; k++) {
        int t = s->order[k];
        int32_t parts = s->topics[t].partitions;
        int ns = 0;
        *s->steps += (uint64_t)n;
        for (int j = 0; j < n; j++)
            if (members[by_id[j]].subscribed[t])
                subs[ns++] = by_id[j];
        if (ns == 0 || parts <= 0)
            continue;
        int quota = parts / ns, extras = parts % ns;
        for (int j = 0; j < ns; j++) {
            int m = subs[j];
            have[m] = 0;
            extra[m] = false;
            int kept_over = 0;
            for (int q = 0; q < members[m].n_previous; q++) {
                ++*s->steps;
                const struct cg_tp *tp = &members[m].previous[q];
                if (memcmp(tp->topic_id.b, s->topics[t].id.b, 16) != 0 || tp->partition >= parts ||
                    tp->partition < 0)
                    continue;
                int idx = s->base[t] + tp->partition;
                if (owner[idx] >= 0)
                    continue;
                if (have[m] < quota) {
                    owner[idx] = m;
                    have[m]++;
                } else if (!extra[m] && extras > 0 && kept_over == 0) {
                    owner[idx] = m;
                    have[m]++;
                    extra[m] = true;
                    extras--;
                    kept_over = 1;
                }
            }
        }
        int next = 0;
        for (int j = 0; j < ns; j++) {
            int m = subs[j];
            int want = quota - have[m];
            if (!extra[m] && extras > 0) {
                want++;
                extra[m] = true;
                extras--;
            }
            while (want > 0 && next < parts) {
                int idx = s->base[t] + next++;
                if (owner[idx] >= 0)
                    continue;
                owner[idx] = m;
                want--;
            }
        }
    }
    emit(s, owner, members, n);
    free(owner);
    free(subs);
    free(have);
    free(extra);
}

int cg_assign(const char *assignor, const struct cg_assign_topic *topics, int n_topics,
              struct cg_assign_member *members, int n_members, uint64_t *steps)
{
    const char *name = assignor ? assignor : "uniform";
    if (!cg_assignor_known(name))
        return -1;
    uint64_t unused = 0;
    struct space s;
    s.steps = steps ? steps : &unused;
    space_init(&s, topics, n_topics);
    int *by_id = calloc((size_t)n_members + 1, sizeof(int));
    GREGOR_ASSERT(by_id != NULL);
    for (int i = 0; i < n_members; i++)
        by_id[i] = i;
    sort_indexes(by_id, n_members, member_id_cmp, members, s.steps);
    if (strcmp(name, "range") == 0)
        assign_range(&s, members, n_members, by_id);
    else
        assign_uniform(&s, members, n_members, by_id);
    free(by_id);
    space_free(&s);
    return 0;
}
