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

/* The partitions being assigned, numbered 0..total-1: topic t owns [base[t], base[t]+parts). */
struct space {
    const struct cg_assign_topic *topics;
    int n_topics;
    int *order;     /* topic indexes sorted by name */
    int *base;
    int total;
};

/* Sorts idx[0..n) by cmp(ctx, a, b): insertion sort, since qsort has no context argument and
 * these arrays are a group's topics or members (bounded by group.max.size and the topic count). */
static void sort_indexes(int *idx, int n, int (*cmp)(const void *ctx, int a, int b), const void *ctx)
{
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i - 1;
        while (j >= 0 && cmp(ctx, idx[j], v) > 0) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = v;
    }
}

static int topic_name_cmp(const void *ctx, int a, int b)
{
    const struct cg_assign_topic *x = &((const struct cg_assign_topic *)ctx)[a];
    const struct cg_assign_topic *y = &((const struct cg_assign_topic *)ctx)[b];
    int c = strcmp(x->name ? x->name : "", y->name ? y->name : "");
    return c != 0 ? c : memcmp(x->id.b, y->id.b, 16);
}

static void space_init(struct space *s, const struct cg_assign_topic *topics, int n)
{
    s->topics = topics;
    s->n_topics = n;
    s->order = calloc((size_t)n + 1, sizeof(int));
    s->base = calloc((size_t)n + 1, sizeof(int));
    GREGOR_ASSERT(s->order && s->base);
    for (int i = 0; i < n; i++)
        s->order[i] = i;
    sort_indexes(s->order, n, topic_name_cmp, topics);
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
}

static int space_topic_of(const struct space *s, const struct kuuid *id)
{
    for (int t = 0; t < s->n_topics; t++)
        if (memcmp(s->topics[t].id.b, id->b, 16) == 0)
            return t;
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

static int topic_of_index(const struct space *s, int idx, int32_t *partition)
{
    for (int t = 0; t < s->n_topics; t++)
        if (idx >= s->base[t] && idx < s->base[t] + s->topics[t].partitions) {
            *partition = idx - s->base[t];
            return t;
        }
    return -1;
}

static int member_id_cmp(const void *ctx, int a, int b)
{
    const struct cg_assign_member *m = ctx;
    return strcmp(m[a].id, m[b].id);
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
    for (int i = 0; i < s->total; i++) {
        if (owner[i] < 0)
            continue;
        int32_t p = 0;
        int t = topic_of_index(s, i, &p);
        struct cg_assign_member *m = &members[owner[i]];
        m->out[m->n_out].topic_id = s->topics[t].id;
        m->out[m->n_out].partition = p;
        m->n_out++;
    }
    for (int m = 0; m < n; m++)
        cg_tp_sort(members[m].out, members[m].n_out);
    free(count);
}

/* Uniform: keep what each member had (if still valid), give the rest to the least loaded member
 * that subscribes, then move partitions from members with two or more than an eligible member
 * until no such pair remains (every move lowers the sum of squared counts, so this ends). */
static void assign_uniform(const struct space *s, struct cg_assign_member *members, int n,
                           const int *by_id)
{
    int *owner = malloc(((size_t)s->total + 1) * sizeof(int));
    int *count = calloc((size_t)n + 1, sizeof(int));
    GREGOR_ASSERT(owner && count);
    for (int i = 0; i < s->total; i++)
        owner[i] = -1;
    for (int k = 0; k < n; k++) {
        int m = by_id[k];
        for (int j = 0; j < members[m].n_previous; j++) {
            int t;
            int idx = space_index(s, &members[m].previous[j], &t);
            if (idx >= 0 && members[m].subscribed[t] && owner[idx] < 0) {
                owner[idx] = m;
                count[m]++;
            }
        }
    }
    for (int i = 0; i < s->total; i++) {
        if (owner[i] >= 0)
            continue;
        int32_t p;
        int t = topic_of_index(s, i, &p);
        int best = -1;
        for (int k = 0; k < n; k++) {
            int m = by_id[k];
            if (members[m].subscribed[t] && (best < 0 || count[m] < count[best]))
                best = m;
        }
        if (best >= 0) {
            owner[i] = best;
            count[best]++;
        }
    }
    bool moved = true;
    for (int pass = 0; moved && pass < s->total + 1; pass++) {
        moved = false;
        /* Take from the tail of each member's partitions first: the head is what it kept. */
        for (int i = s->total - 1; i >= 0; i--) {
            int a = owner[i];
            if (a < 0)
                continue;
            int32_t p;
            int t = topic_of_index(s, i, &p);
            int best = -1;
            for (int k = 0; k < n; k++) {
                int m = by_id[k];
                if (m != a && members[m].subscribed[t] && (best < 0 || count[m] < count[best]))
                    best = m;
            }
            if (best >= 0 && count[a] - count[best] >= 2) {
                owner[i] = best;
                count[a]--;
                count[best]++;
                moved = true;
            }
        }
    }
    emit(s, owner, members, n);
    free(owner);
    free(count);
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
              struct cg_assign_member *members, int n_members)
{
    const char *name = assignor ? assignor : "uniform";
    if (!cg_assignor_known(name))
        return -1;
    struct space s;
    space_init(&s, topics, n_topics);
    int *by_id = calloc((size_t)n_members + 1, sizeof(int));
    GREGOR_ASSERT(by_id != NULL);
    for (int i = 0; i < n_members; i++)
        by_id[i] = i;
    sort_indexes(by_id, n_members, member_id_cmp, members);
    if (strcmp(name, "range") == 0)
        assign_range(&s, members, n_members, by_id);
    else
        assign_uniform(&s, members, n_members, by_id);
    free(by_id);
    space_free(&s);
    return 0;
}
