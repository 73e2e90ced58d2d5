/* quota: client quota entities, their file, and ClientQuotaManager's rates (see quota.h). */
#include "broker/quota.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/logging.h"
#include "log/fileio.h"

#define WHO "ClientQuotaManager"
#define QUOTA_RATE_BUCKETS 1024
#define QUOTA_RATE_IDLE_MS (3600 * 1000) /* Kafka's sensors expire after an hour unused */

const char QUOTA_DEFAULT[] = "<default>";

static const char *const key_names[QUOTA_NKEYS] = {
    "producer_byte_rate", "consumer_byte_rate", "request_percentage",
    "controller_mutation_rate", "connection_creation_rate",
};

int quota_key_find(const char *key)
{
    for (int i = 0; i < QUOTA_NKEYS; i++)
        if (strcmp(key, key_names[i]) == 0)
            return i;
    return -1;
}

const char *quota_key_name(int key)
{
    GREGOR_ASSERT(key >= 0 && key < QUOTA_NKEYS);
    return key_names[key];
}

/* One name of an entity: absent, the default entity, or a name (owned). */
enum name_kind { NAME_ABSENT, NAME_DEFAULT, NAME_SET };
struct name {
    enum name_kind kind;
    char *s;
};

struct entity {
    struct name user, client, ip;
    bool has[QUOTA_NKEYS];
    double value[QUOTA_NKEYS];
};

struct sample {
    int64_t start_ms;
    double value;
};

/* A rate of one quota's metric tags (Kafka's sensor): a ring of window_num samples. */
struct rate {
    int key;
    char *user_tag, *client_tag;     /* owned */
    int64_t last_used_ms;
    int nused, cur;
    struct sample *samples;          /* window_num */
    double tokens;                   /* QUOTA_CONTROLLER_MUTATION_RATE's token bucket */
    int64_t tokens_ms;               /* when tokens were last refilled */
    bool tokens_set;                 /* the bucket has started (full) */
    struct rate *next;               /* hash chain */
};

struct quotas {
    struct entity *v;
    int n, cap;
    int32_t window_num;
    int64_t window_ms;
    int32_t mutation_window_num;     /* controller.quota.window.num */
    int64_t mutation_window_ms;      /* controller.quota.window.size.seconds */
    struct rate *buckets[QUOTA_RATE_BUCKETS];
    int nrates;
};

struct quotas *quotas_create(int32_t window_num, int32_t window_size_seconds)
{
    GREGOR_ASSERT(window_num >= 1 && window_num <= QUOTA_SAMPLES_MAX);
    GREGOR_ASSERT(window_size_seconds >= 1);
    struct quotas *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->window_num = window_num;
    q->window_ms = (int64_t)window_size_seconds * 1000;
    q->mutation_window_num = window_num;
    q->mutation_window_ms = q->window_ms;
    return q;
}

static void entity_free(struct entity *e)
{
    free(e->user.s);
    free(e->client.s);
    free(e->ip.s);
}

static void rate_free(struct rate *r)
{
    free(r->user_tag);
    free(r->client_tag);
    free(r->samples);
    free(r);
}

static void entities_clear(struct quotas *q)
{
    for (int i = 0; i < q->n; i++)
        entity_free(&q->v[i]);
    q->n = 0;
}

void quotas_free(struct quotas *q)
{
    if (q == NULL)
        return;
    entities_clear(q);
    free(q->v);
    for (int i = 0; i < QUOTA_RATE_BUCKETS; i++)
        while (q->buckets[i] != NULL) {
            struct rate *r = q->buckets[i];
            q->buckets[i] = r->next;
            rate_free(r);
        }
    free(q);
}

int quotas_count(const struct quotas *q) { return q->n; }

static struct name name_of(const char *s)
{
    if (s == NULL)
        return (struct name){NAME_ABSENT, NULL};
    if (s == QUOTA_DEFAULT)
        return (struct name){NAME_DEFAULT, NULL};
    return (struct name){NAME_SET, (char *)s};
}

static const char *name_out(const struct name *n)
{
    return n->kind == NAME_ABSENT ? NULL : n->kind == NAME_DEFAULT ? QUOTA_DEFAULT : n->s;
}

static bool name_eq(const struct name *a, const struct name *b)
{
    return a->kind == b->kind && (a->kind != NAME_SET || strcmp(a->s, b->s) == 0);
}

static int entity_find(const struct quotas *q, struct name u, struct name c, struct name ip)
{
    for (int i = 0; i < q->n; i++)
        if (name_eq(&q->v[i].user, &u) && name_eq(&q->v[i].client, &c) && name_eq(&q->v[i].ip, &ip))
            return i;
    return -1;
}

static int name_copy(struct name *dst, struct name src)
{
    *dst = src;
    if (src.kind != NAME_SET)
        return 0;
    if (strlen(src.s) > QUOTA_NAME_MAX)
        return -1;
    dst->s = strdup(src.s);
    return dst->s == NULL ? -1 : 0;
}

int quota_entity_set(struct quotas *q, const struct quota_entity_id *id, const char *key,
                     double value)
{
    int k = quota_key_find(key);
    if (k < 0 || !isfinite(value))
        return -1;
    struct name u = name_of(id->user), c = name_of(id->client_id), ip = name_of(id->ip);
    if (u.kind == NAME_ABSENT && c.kind == NAME_ABSENT && ip.kind == NAME_ABSENT)
        return -1;
    int i = entity_find(q, u, c, ip);
    if (i < 0) {
        if (q->n == QUOTA_ENTITIES_MAX)
            return -1;
        if (q->n == q->cap) {
            int cap = q->cap ? q->cap * 2 : 16;
            struct entity *v = realloc(q->v, sizeof(*v) * (size_t)cap);
            if (v == NULL)
                return -1;
            q->v = v;
            q->cap = cap;
        }
        struct entity *e = &q->v[q->n];
        memset(e, 0, sizeof(*e));
        if (name_copy(&e->user, u) != 0 || name_copy(&e->client, c) != 0 ||
            name_copy(&e->ip, ip) != 0) {
            entity_free(e);
            return -1;
        }
        i = q->n++;
    }
    q->v[i].has[k] = true;
    q->v[i].value[k] = value;
    return 0;
}

int quota_entity_remove(struct quotas *q, const struct quota_entity_id *id, const char *key)
{
    int k = quota_key_find(key);
    if (k < 0)
        return -1;
    int i = entity_find(q, name_of(id->user), name_of(id->client_id), name_of(id->ip));
    if (i < 0)
        return 0;
    q->v[i].has[k] = false;
    for (int j = 0; j < QUOTA_NKEYS; j++)
        if (q->v[i].has[j])
            return 0;
    /* No key left: the entity goes (as Kafka's empty config znode describes nothing). */
    entity_free(&q->v[i]);
    q->v[i] = q->v[--q->n];
    return 0;
}

void quotas_entity_at(const struct quotas *q, int i, struct quota_entity_id *id,
                      const double **values, const bool **has)
{
    GREGOR_ASSERT(i >= 0 && i < q->n);
    id->user = name_out(&q->v[i].user);
    id->client_id = name_out(&q->v[i].client);
    id->ip = name_out(&q->v[i].ip);
    *values = q->v[i].value;
    *has = q->v[i].has;
}

/* ---- the file: one entity a line, "user=<n> client-id=<n> ip=<n> key=value ...", names
 * %-encoded (all but [A-Za-z0-9._-]), <default> for the default entity ---- */

static const char *const type_names[3] = {"user", "client-id", "ip"};

static size_t encode_name(const char *s, char *out, size_t room)
{
    size_t o = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (o + 4 >= room)
            break;
        if (plain)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, room - o, "%%%02X", ch);
    }
    out[o] = '\0';
    return o;
}

int quotas_save(const struct quotas *q, const char *path)
{
    size_t cap = 256 + (size_t)q->n * (3 * (QUOTA_NAME_MAX * 3 + 16) + QUOTA_NKEYS * 64);
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    size_t n = (size_t)snprintf(buf, cap, "# gregor client quotas v1: user=|client-id=|ip=<%%-encoded name or <default>> key=value ...\n");
    for (int i = 0; i < q->n; i++) {
        const struct entity *e = &q->v[i];
        const struct name *names[3] = {&e->user, &e->client, &e->ip};
        const char *sep = "";
        for (int t = 0; t < 3; t++) {
            if (names[t]->kind == NAME_ABSENT)
                continue;
            n += (size_t)snprintf(buf + n, cap - n, "%s%s=", sep, type_names[t]);
            if (names[t]->kind == NAME_DEFAULT)
                n += (size_t)snprintf(buf + n, cap - n, "%s", QUOTA_DEFAULT);
            else
                n += encode_name(names[t]->s, buf + n, cap - n);
            sep = " ";
        }
        for (int k = 0; k < QUOTA_NKEYS; k++)
            if (e->has[k])
                n += (size_t)snprintf(buf + n, cap - n, " %s=%.17g", key_names[k], e->value[k]);
        n += (size_t)snprintf(buf + n, cap - n, "\n");
        GREGOR_ASSERT(n < cap);
    }
    int rc = fio_write_file_atomic(path, buf, n);
    free(buf);
    return rc;
}

/* Decodes a %-encoded name in place: -1 on a bad escape, %00, or a name too long. */
static int decode_name(char *s)
{
    long n = pct_decode_inplace(s);
    return n < 0 || n > QUOTA_NAME_MAX ? -1 : 0;
}

static int parse_line(struct quotas *q, char *line)
{
    const char *names[3] = {NULL, NULL, NULL};
    double values[QUOTA_NKEYS];
    bool has[QUOTA_NKEYS] = {false};
    int nkeys = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            return -1;
        *eq = '\0';
        char *v = eq + 1;
        int t = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(tok, type_names[i]) == 0)
                t = i;
        if (t >= 0) {
            if (names[t] != NULL)
                return -1;
            if (strcmp(v, QUOTA_DEFAULT) == 0)
                names[t] = QUOTA_DEFAULT;
            else if (*v == '\0' || decode_name(v) != 0 || *v == '\0')
                return -1;
            else
                names[t] = v;
            continue;
        }
        int k = quota_key_find(tok);
        if (k < 0 || has[k] || *v == '\0')
            return -1;
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (*end != '\0' || errno != 0 || !isfinite(d))
            return -1;
        has[k] = true;
        values[k] = d;
        nkeys++;
    }
    /* Kafka's entity combinations: user, client-id, both, or ip alone. */
    bool ip = names[2] != NULL;
    if (nkeys == 0 || (ip && (names[0] != NULL || names[1] != NULL)) ||
        (!ip && names[0] == NULL && names[1] == NULL))
        return -1;
    struct quota_entity_id id = {names[0], names[1], names[2]};
    if (entity_find(q, name_of(id.user), name_of(id.client_id), name_of(id.ip)) >= 0)
        return -1; /* an entity twice */
    for (int k = 0; k < QUOTA_NKEYS; k++)
        if (has[k] && quota_entity_set(q, &id, key_names[k], values[k]) != 0)
            return -1;
    return 0;
}

int quotas_parse(struct quotas *q, const char *text, size_t len, int *bad_line)
{
    entities_clear(q);
    *bad_line = 0;
    char line[4 * QUOTA_NAME_MAX * 3 + 1024];
    size_t at = 0;
    for (int lineno = 1; at < len; lineno++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t l = end - at;
        at = end + 1;
        if (l == 0 || text[end - l] == '#')
            continue;
        if (l >= sizeof(line) || memchr(text + end - l, '\0', l) != NULL) {
            *bad_line = lineno;
            entities_clear(q);
            return -1;
        }
        memcpy(line, text + end - l, l);
        line[l] = '\0';
        if (parse_line(q, line) != 0) {
            *bad_line = lineno;
            entities_clear(q);
            return -1;
        }
    }
    return 0;
}

int quotas_load(struct quotas *q, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(path, QUOTAS_FILE_MAX, &text, &len) != 0) {
        if (errno == ENOENT)
            return 0;
        LOG_ERROR(WHO, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int bad_line;
    int rc = quotas_parse(q, text, len, &bad_line);
    free(text);
    if (rc != 0)
        LOG_ERROR(WHO, "%s:%d: malformed client quota line", path, bad_line);
    else
        LOG_INFO(WHO, "Loaded %d client quota entities from %s", q->n, path);
    return rc;
}

/* ---- the rates ---- */

/* DefaultQuotaCallback's order: the first entity with key set, and the metric tags its
 * sensor has (the user's and the client id's, "" for those the quota is not per). */
static bool resolve(const struct quotas *q, int key, const char *user, const char *client_id,
                    double *bound, const char **user_tag, const char **client_tag)
{
    static const struct {
        enum name_kind u, c;
        bool tag_u, tag_c;
    } order[8] = {
        {NAME_SET, NAME_SET, true, true},         {NAME_SET, NAME_DEFAULT, true, true},
        {NAME_SET, NAME_ABSENT, true, false},     {NAME_DEFAULT, NAME_SET, true, true},
        {NAME_DEFAULT, NAME_DEFAULT, true, true}, {NAME_DEFAULT, NAME_ABSENT, true, false},
        {NAME_ABSENT, NAME_SET, false, true},     {NAME_ABSENT, NAME_DEFAULT, false, true},
    };
    if (q->n == 0)
        return false;
    for (int o = 0; o < 8; o++) {
        struct name u = {order[o].u, order[o].u == NAME_SET ? (char *)user : NULL};
        struct name c = {order[o].c, order[o].c == NAME_SET ? (char *)client_id : NULL};
        int i = entity_find(q, u, c, (struct name){NAME_ABSENT, NULL});
        if (i >= 0 && q->v[i].has[key]) {
            *bound = q->v[i].value[key];
            *user_tag = order[o].tag_u ? user : "";
            *client_tag = order[o].tag_c ? client_id : "";
            return true;
        }
    }
    return false;
}

static uint32_t rate_hash(int key, const char *u, const char *c)
{
    uint32_t h = 2166136261u ^ (uint32_t)key;
    for (; *u; u++)
        h = (h ^ (uint8_t)*u) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    return h % QUOTA_RATE_BUCKETS;
}

/* Drops the least recently used rate, and every rate idle for an hour. */
static void rates_evict(struct quotas *q, int64_t now_ms)
{
    struct rate **oldest = NULL;
    for (int i = 0; i < QUOTA_RATE_BUCKETS; i++)
        for (struct rate **p = &q->buckets[i]; *p != NULL;) {
            if (now_ms - (*p)->last_used_ms >= QUOTA_RATE_IDLE_MS) {
                struct rate *r = *p;
                *p = r->next;
                rate_free(r);
                q->nrates--;
                if (oldest == &r->next)
                    oldest = NULL;
                continue;
            }
            if (oldest == NULL || (*p)->last_used_ms < (*oldest)->last_used_ms)
                oldest = p;
            p = &(*p)->next;
        }
    if (q->nrates >= QUOTA_TRACKED_MAX && oldest != NULL) {
        struct rate *r = *oldest;
        *oldest = r->next;
        rate_free(r);
        q->nrates--;
    }
}

static struct rate *rate_get(struct quotas *q, int key, const char *u, const char *c,
                             int64_t now_ms, bool create)
{
    uint32_t h = rate_hash(key, u, c);
    for (struct rate *r = q->buckets[h]; r != NULL; r = r->next)
        if (r->key == key && strcmp(r->user_tag, u) == 0 && strcmp(r->client_tag, c) == 0)
            return r;
    if (!create)
        return NULL;
    if (q->nrates >= QUOTA_TRACKED_MAX)
        rates_evict(q, now_ms);
    GREGOR_ASSERT(q->nrates < QUOTA_TRACKED_MAX);
    struct rate *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->key = key;
    r->user_tag = strdup(u);
    r->client_tag = strdup(c);
    r->samples = calloc((size_t)q->window_num, sizeof(*r->samples));
    if (r->user_tag == NULL || r->client_tag == NULL || r->samples == NULL) {
        rate_free(r);
        return NULL;
    }
    r->next = q->buckets[h];
    q->buckets[h] = r;
    q->nrates++;
    return r;
}

/* SampledStat: samples older than window_num windows start again at now. */
static void rate_purge(const struct quotas *q, struct rate *r, int64_t now_ms)
{
    for (int i = 0; i < r->nused; i++)
        if (now_ms - r->samples[i].start_ms >= q->window_num * q->window_ms)
            r->samples[i] = (struct sample){now_ms, 0};
}

static void rate_add(const struct quotas *q, struct rate *r, double value, int64_t now_ms)
{
    if (r->nused == 0) {
        r->samples[0] = (struct sample){now_ms, 0};
        r->nused = 1;
        r->cur = 0;
    }
    if (now_ms - r->samples[r->cur].start_ms >= q->window_ms) {
        r->cur = (r->cur + 1) % q->window_num;
        if (r->cur >= r->nused)
            r->nused = r->cur + 1;
        r->samples[r->cur] = (struct sample){now_ms, 0};
    }
    r->samples[r->cur].value += value;
}

/* Rate.windowSize: from the oldest sample to now, at least window_num - 1 whole windows. */
static int64_t rate_window_ms(const struct quotas *q, struct rate *r, int64_t now_ms)
{
    rate_purge(q, r, now_ms);
    int64_t oldest = now_ms;
    for (int i = 0; i < r->nused; i++)
        if (r->samples[i].start_ms < oldest)
            oldest = r->samples[i].start_ms;
    int64_t elapsed = now_ms - oldest;
    int64_t full = elapsed / q->window_ms, min_full = q->window_num - 1;
    if (full < min_full)
        elapsed += (min_full - full) * q->window_ms;
    return elapsed > 0 ? elapsed : 1;
}

/* The rate per second now (the sum of the samples over the window). */
static double rate_measure(const struct quotas *q, struct rate *r, int64_t now_ms,
                           int64_t *window_ms)
{
    *window_ms = rate_window_ms(q, r, now_ms);
    double sum = 0;
    for (int i = 0; i < r->nused; i++)
        sum += r->samples[i].value;
    return sum / ((double)*window_ms / 1000.0);
}

int32_t quota_record(struct quotas *q, int key, const char *user, const char *client_id,
                     double value, int64_t now_ms)
{
    GREGOR_ASSERT(key >= 0 && key < QUOTA_NKEYS);
    double bound;
    const char *ut, *ct;
    if (!resolve(q, key, user, client_id, &bound, &ut, &ct))
        return 0;
    struct rate *r = rate_get(q, key, ut, ct, now_ms, true);
    if (r == NULL)
        return 0; /* out of memory: not throttled, as Kafka without a sensor */
    r->last_used_ms = now_ms;
    rate_purge(q, r, now_ms);
    rate_add(q, r, value, now_ms);
    int64_t window_ms;
    double rate = rate_measure(q, r, now_ms, &window_ms);
    if (rate <= bound)
        return 0;
    /* QuotaUtils.throttleTime: how long until the rate is back at the bound. Bounded: a
     * bandwidth throttle by the whole measured window (Kafka has no cap; a bound of 0 would
     * be infinite), a request quota's by one window (ClientRequestQuotaManager). */
    double t = bound > 0 ? (rate - bound) / bound * (double)window_ms : INFINITY;
    int64_t cap = key == QUOTA_REQUEST_PERCENTAGE ? q->window_ms : q->window_num * q->window_ms;
    if (!(t < (double)cap))
        return (int32_t)cap;
    return (int32_t)llround(t);
}

double quota_window_max(const struct quotas *q, int key, const char *user,
                        const char *client_id)
{
    GREGOR_ASSERT(key >= 0 && key < QUOTA_NKEYS);
    double bound;
    const char *ut, *ct;
    if (!resolve(q, key, user, client_id, &bound, &ut, &ct))
        return -1;
    return bound * (double)(q->window_num - 1) * ((double)q->window_ms / 1000.0);
}

void quota_unrecord(struct quotas *q, int key, const char *user, const char *client_id,
                    double value, int64_t now_ms)
{
    double bound;
    const char *ut, *ct;
    if (!resolve(q, key, user, client_id, &bound, &ut, &ct))
        return;
    struct rate *r = rate_get(q, key, ut, ct, now_ms, false);
    if (r != NULL && r->nused > 0)
        rate_add(q, r, -value, now_ms);
}

/* ---- KIP-599: controller_mutation_rate's token bucket ---- */

void quotas_set_mutation_window(struct quotas *q, int32_t window_num, int32_t window_size_seconds)
{
    GREGOR_ASSERT(window_num >= 1 && window_num <= QUOTA_SAMPLES_MAX);
    GREGOR_ASSERT(window_size_seconds >= 1);
    q->mutation_window_num = window_num;
    q->mutation_window_ms = (int64_t)window_size_seconds * 1000;
}

/* The bucket of the client's quota refilled to now (TokenBucket: quota tokens a second, at
 * most the burst, window num x window size x quota; a new bucket starts full), or NULL when
 * no quota applies. */
static struct rate *bucket_refilled(struct quotas *q, const char *user, const char *client_id,
                                    int64_t now_ms, double *bound)
{
    const char *ut, *ct;
    if (!resolve(q, QUOTA_CONTROLLER_MUTATION_RATE, user, client_id, bound, &ut, &ct))
        return NULL;
    struct rate *r = rate_get(q, QUOTA_CONTROLLER_MUTATION_RATE, ut, ct, now_ms, true);
    if (r == NULL)
        return NULL; /* out of memory: not throttled */
    double burst = (double)q->mutation_window_num * ((double)q->mutation_window_ms / 1000.0) *
                   *bound;
    if (!r->tokens_set) {
        r->tokens = burst;
        r->tokens_set = true;
    } else if (now_ms > r->tokens_ms) {
        r->tokens += *bound * (double)(now_ms - r->tokens_ms) / 1000.0;
    }
    if (r->tokens > burst)
        r->tokens = burst;
    r->tokens_ms = now_ms;
    r->last_used_ms = now_ms;
    return r;
}

/* ControllerMutationQuotaManager.throttleTimeMs: until the bucket is back at zero. */
static int32_t bucket_throttle(const struct rate *r, double bound)
{
    if (r->tokens >= 0)
        return 0;
    double t = bound > 0 ? -r->tokens / bound * 1000.0 : INFINITY;
    return t < (double)INT32_MAX ? (int32_t)llround(t) : INT32_MAX;
}

int32_t quota_mutation_check(struct quotas *q, const char *user, const char *client_id,
                             int64_t now_ms)
{
    double bound;
    struct rate *r = bucket_refilled(q, user, client_id, now_ms, &bound);
    return r == NULL ? 0 : bucket_throttle(r, bound);
}

int32_t quota_mutation_record(struct quotas *q, const char *user, const char *client_id,
                              double permits, int64_t now_ms)
{
    double bound;
    struct rate *r = bucket_refilled(q, user, client_id, now_ms, &bound);
    if (r == NULL)
        return 0;
    r->tokens -= permits;
    return bucket_throttle(r, bound);
}

/* ---- KIP-612: connection_creation_rate ---- */

bool quota_ip_bound(const struct quotas *q, const char *ip, double *bound)
{
    if (q->n == 0)
        return false;
    struct name none = {NAME_ABSENT, NULL};
    int i = entity_find(q, none, none, (struct name){NAME_SET, (char *)ip});
    if (i < 0 || !q->v[i].has[QUOTA_CONNECTION_CREATION_RATE])
        i = entity_find(q, none, none, (struct name){NAME_DEFAULT, NULL});
    if (i < 0 || !q->v[i].has[QUOTA_CONNECTION_CREATION_RATE])
        return false;
    *bound = q->v[i].value[QUOTA_CONNECTION_CREATION_RATE];
    return true;
}

int32_t quota_connection_record(struct quotas *q, const char *tag, double bound, int64_t now_ms,
                                bool keep_over)
{
    struct rate *r = rate_get(q, QUOTA_CONNECTION_CREATION_RATE, tag, "", now_ms, true);
    if (r == NULL)
        return 0; /* out of memory: not throttled */
    r->last_used_ms = now_ms;
    rate_purge(q, r, now_ms);
    rate_add(q, r, 1, now_ms);
    int64_t window_ms;
    double rate = rate_measure(q, r, now_ms, &window_ms);
    if (rate <= bound)
        return 0;
    if (!keep_over)
        rate_add(q, r, -1, now_ms); /* a connection refused does not count */
    /* QuotaUtils.boundedThrottleTime, at most one sample (ConnectionQuotas' bound). */
    double t = bound > 0 ? (rate - bound) / bound * (double)window_ms : INFINITY;
    if (!(t < (double)q->window_ms))
        return (int32_t)q->window_ms;
    return t < 1 ? 1 : (int32_t)llround(t);
}
