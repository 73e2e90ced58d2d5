/* console_api: the web console's JSON API (docs/CONSOLE.md) on the loop thread. Every answer is
 * built from the broker's own state through the functions its Kafka handlers use: the topic
 * registry and partitions (watermarks, partition_read for records: Fetch's read path, below
 * the high watermark, bounded per call), the group coordinator (describe, offsets, commits),
 * the authorizer (each operation checked as the principal would be over Kafka) and the SASL
 * credentials (the login). Sessions and the request router live here; the record browser
 * and the writes (produce, create, delete, reset) in console_data.c. */
#include "broker/console_api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "broker/authorizer.h"
#include "broker/broker.h"
#include "broker/config_catalog.h"
#include "broker/console.h"
#include "broker/group_store.h"
#include "broker/kutil.h"
#include "broker/sasl.h"
#include "broker/scram.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "common/json.h"
#include "common/jsonw.h"
#include "common/logging.h"
#include "common/util.h"
#include "group/consumer_group.h"
#include "group/coordinator.h"
#include "net/http.h"
#include "net/loop.h"

/* The gregor_session cookie's value, copied into out, or NULL. */
static const char *cookie_session(const struct http_req *req, char *out, size_t cap)
{
    const char *c = http_header(req, "Cookie");
    while (c != NULL && *c != '\0') {
        while (*c == ' ' || *c == ';')
            c++;
        const char *end = strchr(c, ';');
        size_t n = end != NULL ? (size_t)(end - c) : strlen(c);
        if (n > 15 && strncmp(c, "gregor_session=", 15) == 0 && n - 15 < cap) {
            memcpy(out, c + 15, n - 15);
            out[n - 15] = '\0';
            return out;
        }
        c = end;
    }
    return NULL;
}

/* HTTP Basic: user and password checked against the SASL credentials; 1 with the principal,
 * 0 when there is no Basic header, -1 when it does not log in. */
static int basic_login(struct broker *b, const struct http_req *req, char *principal, size_t cap)
{
    const char *h = http_header(req, "Authorization");
    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
        return 0;
    const char *v = h + 6;
    while (*v == ' ')
        v++;
    char plain[600];
    int n = scram_b64_decode(v, strlen(v), (uint8_t *)plain, sizeof(plain) - 1);
    if (n <= 0)
        return -1;
    plain[n] = '\0';
    char *colon = strchr(plain, ':');
    if (colon == NULL || memchr(plain, 0, (size_t)n) != NULL)
        return -1;
    *colon = '\0';
    int rc = sasl_password_check(b, plain, colon + 1);
    if (rc == 0)
        snprintf(principal, cap, "User:%.255s", plain);
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc == 0 ? 1 : -1;
}

/* ---- failed logins: answered after connection.failed.authentication.delay.ms ----
 * As a failed SASL login (sasl.c), the 401 of a wrong password (POST /api/login, or HTTP
 * Basic) waits out the delay on a loop timer; the broker serves everything else meanwhile.
 * Each wait is malloc'd and listed in b->console_login_waits until its timer answers it, or
 * console_stop answers it at once (console_login_drop, before the requests are freed). At
 * most one request of a connection is up at a time, so the waits are bounded by the HTTP
 * listener's connections; past CONSOLE_LOGIN_WAITS_MAX (or without memory) it is answered now. */

#define CONSOLE_LOGIN_WAITS_MAX 1024

struct console_login_wait {
    struct broker *b;
    struct http_req *req;
    uint64_t timer_id;
    struct console_login_wait *next;
};

static void login_refuse(struct http_req *req)
{
    console_error(req, 401, "SASL_AUTHENTICATION_FAILED", "Invalid username or password");
}

static void login_wait_end(struct console_login_wait *w)
{
    struct broker *b = w->b;
    struct console_login_wait **pp = &b->console_login_waits;
    while (*pp != w) {
        GREGOR_ASSERT(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = w->next;
    GREGOR_ASSERT(b->nconsole_login_waits > 0);
    b->nconsole_login_waits--;
    login_refuse(w->req);
    free(w);
}

static void login_wait_fired(struct loop *l, void *arg)
{
    (void)l;
    struct console_login_wait *w = arg;
    w->timer_id = 0;
    login_wait_end(w);
}

static void login_failed(struct broker *b, struct http_req *req)
{
    int64_t delay = sasl_failed_delay_ms(b);
    struct console_login_wait *w = NULL;
    if (delay > 0 && b->nconsole_login_waits < CONSOLE_LOGIN_WAITS_MAX)
        w = calloc(1, sizeof(*w));
    if (w == NULL) {
        login_refuse(req);
        return;
    }
    w->b = b;
    w->req = req;
    w->timer_id = loop_timer_add(b->loop, mono_ms() + delay, login_wait_fired, w);
    GREGOR_ASSERT(w->timer_id != 0);
    w->next = b->console_login_waits;
    b->console_login_waits = w;
    b->nconsole_login_waits++;
}

void console_login_drop(struct broker *b)
{
    while (b->console_login_waits != NULL) {
        struct console_login_wait *w = b->console_login_waits;
        loop_timer_cancel(b->loop, w->timer_id);
        login_wait_end(w);
    }
    GREGOR_ASSERT(b->nconsole_login_waits == 0);
}

/* ---- answers ---- */

void console_reply(struct http_req *req, int status, struct jsonw *w, const char *extra)
{
    if (w->overflow) {
        jsonw_free(w);
        console_error(req, 500, "RESPONSE_TOO_LARGE", "the answer passed the console's size cap");
        return;
    }
    http_respond(req, status, "application/json", extra, w->buf, w->len);
    jsonw_free(w);
}

void console_error(struct http_req *req, int status, const char *error, const char *message)
{
    struct jsonw w;
    jsonw_init(&w, 8192);
    jsonw_obj(&w);
    jsonw_kstr(&w, "error", error);
    jsonw_kstr(&w, "message", message);
    jsonw_obj_end(&w);
    http_respond(req, status, "application/json", NULL, w.buf, w.len);
    jsonw_free(&w);
}

/* The request's host (peer without the port) for ACL host matching. */
static void peer_host_of(const struct http_req *req, char *out, size_t cap)
{
    snprintf(out, cap, "%s", req->peer != NULL ? req->peer : "");
    char *colon = strrchr(out, ':');
    if (colon != NULL)
        *colon = '\0';
    size_t n = strlen(out); /* "[::1]" */
    if (n >= 2 && out[0] == '[' && out[n - 1] == ']') {
        memmove(out, out + 1, n - 2);
        out[n - 2] = '\0';
    }
}

bool console_allowed(struct console_ctx *cx, int op, int resource_type, const char *name)
{
    return authorize_principal(cx->b, cx->principal, cx->host, op, resource_type, name, true);
}

bool console_visible(struct console_ctx *cx, int resource_type, const char *name)
{
    return authorize_principal(cx->b, cx->principal, cx->host, ACL_OP_DESCRIBE, resource_type,
                               name, false);
}

/* ---- body parsing ---- */

const struct json *console_body(struct console_ctx *cx, struct arena *a)
{
    char err[256];
    if (cx->req->body_len == 0) {
        console_error(cx->req, 400, "INVALID_REQUEST", "a JSON body is required");
        return NULL;
    }
    const struct json *j = json_parse((const char *)cx->req->body, cx->req->body_len, a, err,
                                      sizeof(err));
    if (j == NULL) {
        console_error(cx->req, 400, "INVALID_REQUEST", err);
        return NULL;
    }
    if (j->type != JSON_OBJECT) {
        console_error(cx->req, 400, "INVALID_REQUEST", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

bool console_json_str(const struct json *obj, const char *key, char *out, size_t cap)
{
    const struct json *v = json_get(obj, key);
    if (v == NULL || v->type != JSON_STRING || v->len >= cap || memchr(v->text, 0, v->len))
        return false;
    memcpy(out, v->text, v->len);
    out[v->len] = '\0';
    return true;
}

bool console_json_i64(const struct json *obj, const char *key, int64_t *out)
{
    const struct json *v = json_get(obj, key);
    if (v == NULL || v->type != JSON_NUMBER || v->len == 0 || v->len > 19)
        return false;
    char buf[24];
    memcpy(buf, v->text, v->len);
    buf[v->len] = '\0';
    char *end;
    long long x = strtoll(buf, &end, 10);
    if (*end != '\0')
        return false;
    *out = x;
    return true;
}

/* ---- login, logout, whoami ---- */

static void api_login(struct console_ctx *cx)
{
    struct arena a;
    arena_init(&a, 64 * 1024);
    const struct json *j = console_body(cx, &a);
    if (j == NULL) {
        arena_reset(&a);
        return;
    }
    char user[SCRAM_NAME_MAX], password[512];
    if (!console_json_str(j, "username", user, sizeof(user)) ||
        !console_json_str(j, "password", password, sizeof(password))) {
        arena_reset(&a);
        console_error(cx->req, 400, "INVALID_REQUEST", "username and password (strings) are required");
        return;
    }
    arena_reset(&a);
    if (!cx->login_required) {
        OPENSSL_cleanse(password, sizeof(password));
        console_error(cx->req, 400, "INVALID_REQUEST", "no credentials are configured: no login");
        return;
    }
    int rc = sasl_password_check(cx->b, user, password);
    OPENSSL_cleanse(password, sizeof(password));
    if (rc != 0) {
        char safe[128];
        request_loggable(kstr_of(user), safe, sizeof(safe));
        log_line(LOG_LEVEL_INFO, "console", "login of %s from %s failed", safe, cx->host);
        login_failed(cx->b, cx->req);
        return;
    }
    char principal[CONSOLE_PRINCIPAL_MAX], id[CONSOLE_SESSION_ID_LEN + 1];
    snprintf(principal, sizeof(principal), "User:%s", user);
    if (console_session_new(cx->b, principal, id) != 0) {
        console_error(cx->req, 500, "UNKNOWN_SERVER_ERROR", "no session could be made");
        return;
    }
    char cookie[160];
    snprintf(cookie, sizeof(cookie),
             "Set-Cookie: gregor_session=%s; HttpOnly; SameSite=Strict; Path=/\r\n", id);
    struct jsonw w;
    jsonw_init(&w, 4096);
    jsonw_obj(&w);
    jsonw_kstr(&w, "user", principal);
    jsonw_obj_end(&w);
    console_reply(cx->req, 200, &w, cookie);
}

static void api_logout(struct console_ctx *cx)
{
    char id[CONSOLE_SESSION_ID_LEN + 8];
    if (cookie_session(cx->req, id, sizeof(id)) != NULL) {
        struct console_session *s = console_session_find(cx->b, id);
        if (s != NULL)
            memset(s, 0, sizeof(*s));
    }
    struct jsonw w;
    jsonw_init(&w, 4096);
    jsonw_obj(&w);
    jsonw_kbool(&w, "ok", true);
    jsonw_obj_end(&w);
    console_reply(cx->req, 200, &w,
                  "Set-Cookie: gregor_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0\r\n");
}

static bool loopback(const char *host)
{
    return strcmp(host, "[::1]") == 0 || strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static void api_whoami(struct console_ctx *cx)
{
    struct jsonw w;
    jsonw_init(&w, 4096);
    jsonw_obj(&w);
    jsonw_kstr(&w, "user", cx->principal[0] != '\0' ? cx->principal : NULL);
    jsonw_kbool(&w, "login_required", cx->login_required);
    char host[300];
    snprintf(host, sizeof(host), "%s", cx->b->cfg.http_listener);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    jsonw_kbool(&w, "loopback_only", loopback(host));
    jsonw_kbool(&w, "authorizer", cx->b->authorizer != NULL && cx->b->authorizer->enabled);
    jsonw_obj_end(&w);
    console_reply(cx->req, 200, &w, NULL);
}

/* ---- overview ---- */

static int32_t replication_factor(struct broker *b, const struct topic *t)
{
    if (b->cluster == NULL)
        return 1;
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, t->name);
    return ct != NULL && ct->npartitions > 0 ? ct->parts[0].nreplicas : 1;
}

/* Under-replicated and offline partitions of t: by the cluster's view (ISR smaller than the
 * replicas; no leader), none on one node. */
static void replica_health(struct broker *b, const struct topic *t, int32_t *under, int32_t *offline)
{
    *under = *offline = 0;
    if (b->cluster == NULL)
        return;
    const struct cluster_topic *ct = cluster_topic_find(b->cluster, t->name);
    if (ct == NULL)
        return;
    for (int32_t i = 0; i < ct->npartitions; i++) {
        *under += ct->parts[i].nisr < ct->parts[i].nreplicas;
        *offline += ct->parts[i].leader < 0;
    }
}

static int64_t topic_size(const struct topic *t)
{
    int64_t n = 0;
    for (int32_t i = 0; i < t->npartitions; i++)
        if (t->partitions[i] != NULL)
            n += partition_size_bytes(t->partitions[i]);
    return n;
}

void console_overview_begin(struct console_ctx *cx, struct jsonw *w)
{
    struct broker *b = cx->b;
    jsonw_obj(w);
    jsonw_kstr(w, "cluster_id", b->cluster_id);
    int32_t controller = b->cluster != NULL ? cluster_controller_id(b->cluster) : b->cfg.node_id;
    jsonw_ki64(w, "controller_id", controller);
    jsonw_key(w, "brokers");
    jsonw_arr(w);
    if (b->cluster != NULL) {
        const struct cluster_broker *cb;
        int n = cluster_brokers(b->cluster, &cb);
        for (int i = 0; i < n; i++) {
            jsonw_obj(w);
            jsonw_ki64(w, "id", cb[i].id);
            jsonw_kstr(w, "host", cb[i].host);
            jsonw_ki64(w, "port", cb[i].port);
            jsonw_kstr(w, "rack", cb[i].rack[0] ? cb[i].rack : NULL);
            jsonw_kbool(w, "controller", cb[i].id == controller);
            jsonw_kbool(w, "self", cb[i].id == b->cfg.node_id);
            jsonw_obj_end(w);
        }
    } else {
        const char *host;
        int port;
        broker_advertised_for(b, NULL, &host, &port);
        jsonw_obj(w);
        jsonw_ki64(w, "id", b->cfg.node_id);
        jsonw_kstr(w, "host", host);
        jsonw_ki64(w, "port", port);
        jsonw_kstr(w, "rack", b->cfg.broker_rack[0] ? b->cfg.broker_rack : NULL);
        jsonw_kbool(w, "controller", true);
        jsonw_kbool(w, "self", true);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "topics");
    jsonw_arr(w);
}

int console_local_groups(struct console_ctx *cx, const char ***ids_out, struct arena *a)
{
    struct broker *b = cx->b;
    struct gc_group_summary *gs = NULL;
    int ng = b->groups != NULL ? gc_list(b->groups, &gs) : 0;
    const char **ids = a != NULL && ng > 0 ? arena_alloc(a, sizeof(*ids) * (size_t)ng) : NULL;
    int visible = 0;
    for (int i = 0; i < ng; i++) {
        if (!console_visible(cx, ACL_RES_GROUP, gs[i].group_id))
            continue;
        if (ids != NULL && (ids[visible] = arena_strndup(a, gs[i].group_id,
                                                         strlen(gs[i].group_id))) == NULL)
            break;
        visible++;
    }
    free(gs);
    if (ids_out != NULL)
        *ids_out = ids;
    return visible;
}

void console_overview_end(struct console_ctx *cx, struct jsonw *w, int64_t groups)
{
    jsonw_ki64(w, "groups", groups >= 0 ? groups : console_local_groups(cx, NULL, NULL));
    jsonw_ki64(w, "time_ms", now_ms());
    jsonw_obj_end(w);
}

static void api_overview(struct console_ctx *cx)
{
    struct broker *b = cx->b;
    if (b->cluster != NULL) { /* every topic of the cluster: console_topics_remote.c */
        console_overview_cluster(cx);
        return;
    }
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    console_overview_begin(cx, &w);
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
        if (t->creating > 0 || !console_visible(cx, ACL_RES_TOPIC, t->name))
            continue;
        struct topic_traffic tt;
        metrics_topic_traffic(b, t, &tt);
        int32_t under, offline;
        replica_health(b, t, &under, &offline);
        jsonw_obj(&w);
        jsonw_kstr(&w, "name", t->name);
        jsonw_kbool(&w, "internal", t->internal);
        jsonw_ki64(&w, "partitions", t->npartitions);
        jsonw_ki64(&w, "replication_factor", replication_factor(b, t));
        jsonw_ki64(&w, "size_bytes", topic_size(t));
        jsonw_ki64(&w, "messages_in", (int64_t)tt.messages_in);
        jsonw_ki64(&w, "bytes_in", (int64_t)tt.bytes_in);
        jsonw_ki64(&w, "bytes_out", (int64_t)tt.bytes_out);
        jsonw_ki64(&w, "under_replicated", under);
        jsonw_ki64(&w, "offline", offline);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    console_overview_end(cx, &w, -1);
    console_reply(cx->req, 200, &w, NULL);
}

/* ---- one topic ---- */

static const char *source_name(int source)
{
    switch (source) {
    case CONFIG_SOURCE_DYNAMIC_TOPIC: return "DYNAMIC_TOPIC_CONFIG";
    case CONFIG_SOURCE_DYNAMIC_BROKER: return "DYNAMIC_BROKER_CONFIG";
    case CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER: return "DYNAMIC_DEFAULT_BROKER_CONFIG";
    case CONFIG_SOURCE_STATIC_BROKER: return "STATIC_BROKER_CONFIG";
    default: return "DEFAULT_CONFIG";
    }
}

void console_write_ids(struct jsonw *w, const char *key, const int32_t *ids, int n)
{
    jsonw_key(w, key);
    jsonw_arr(w);
    for (int i = 0; i < n; i++)
        jsonw_i64(w, ids[i]);
    jsonw_arr_end(w);
}

bool console_topic_ref(struct console_ctx *cx, const char *name, int op, struct console_topic_ref *out)
{
    struct broker *b = cx->b;
    *out = (struct console_topic_ref){.name = name};
    struct topic *t = topic_find(b, name);
    out->t = t != NULL && t->creating == 0 ? t : NULL;
    if (b->cluster != NULL) {
        const struct cluster_topic *ct = cluster_topic_find(b->cluster, name);
        if (ct != NULL && ct->read && !ct->gone && !ct->marked && ct->npartitions > 0)
            out->ct = ct;
    }
    /* Kafka answers an unknown topic and one not described alike to who may not describe it. */
    if (!console_allowed(cx, ACL_OP_DESCRIBE, ACL_RES_TOPIC, name)) {
        console_error(cx->req, 403, "TOPIC_AUTHORIZATION_FAILED", "not authorized to describe the topic");
        return false;
    }
    if (out->t == NULL && out->ct == NULL) {
        console_error(cx->req, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no such topic");
        return false;
    }
    if (op != ACL_OP_DESCRIBE && !console_allowed(cx, op, ACL_RES_TOPIC, name)) {
        console_error(cx->req, 403, "TOPIC_AUTHORIZATION_FAILED", "not authorized");
        return false;
    }
    if (out->t != NULL)
        out->name = out->t->name;
    else
        out->name = out->ct->name;
    out->npartitions = out->ct != NULL ? out->ct->npartitions : out->t->npartitions;
    out->internal = topic_name_is_internal(out->name);
    return true;
}

struct topic *console_topic(struct console_ctx *cx, const char *name, int op)
{
    struct console_topic_ref ref;
    if (!console_topic_ref(cx, name, op, &ref))
        return NULL;
    if (ref.t == NULL) {
        console_error(cx->req, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no replica of the topic on this broker");
        return NULL;
    }
    return ref.t;
}

void console_topic_configs(struct console_ctx *cx, struct jsonw *w, const char *name,
                           const struct topic_config_kv *ov, int nov)
{
    struct broker *b = cx->b;
    jsonw_key(w, "configs");
    jsonw_arr(w);
    bool configs = console_allowed(cx, ACL_OP_DESCRIBE_CONFIGS, ACL_RES_TOPIC, name);
    for (int i = 0; configs && i < config_catalog_ntopics; i++) {
        const char *key = config_catalog_topics[i].name;
        char value[BROKER_PROP_VALUE_MAX];
        int source = CONFIG_SOURCE_DEFAULT;
        const char *synonym = NULL;
        bool over = false;
        for (int k = 0; k < nov; k++)
            if (strcmp(ov[k].key, key) == 0) {
                snprintf(value, sizeof(value), "%s", ov[k].value);
                source = CONFIG_SOURCE_DYNAMIC_TOPIC;
                over = true;
            }
        if (!over)
            topic_config_default(b, key, value, sizeof(value), &source, &synonym);
        bool sensitive = dynamic_config_sensitive(key);
        jsonw_obj(w);
        jsonw_kstr(w, "name", key);
        jsonw_kstr(w, "value", sensitive ? NULL : value);
        jsonw_kstr(w, "source", source_name(source));
        jsonw_kbool(w, "sensitive", sensitive);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

static void api_topic(struct console_ctx *cx, const char *name)
{
    struct broker *b = cx->b;
    struct console_topic_ref ref;
    if (!console_topic_ref(cx, name, ACL_OP_DESCRIBE, &ref))
        return;
    if (ref.ct != NULL) { /* a cluster: every partition, wherever it lives */
        console_topic_cluster(cx, &ref);
        return;
    }
    struct topic *t = ref.t;
    if (t == NULL) {
        console_error(cx->req, 404, "UNKNOWN_TOPIC_OR_PARTITION", "no such topic");
        return;
    }
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_kstr(&w, "name", t->name);
    jsonw_kbool(&w, "internal", t->internal);
    char id[40];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0, k = 0; i < 16; i++) {
        id[k++] = hex[t->id.b[i] >> 4];
        id[k++] = hex[t->id.b[i] & 15];
        id[k] = '\0';
    }
    jsonw_kstr(&w, "topic_id", id);
    console_topic_configs(cx, &w, t->name, t->overrides, t->noverrides);
    const struct cluster_topic *ct = b->cluster != NULL ? cluster_topic_find(b->cluster, t->name) : NULL;
    jsonw_key(&w, "partitions");
    jsonw_arr(&w);
    for (int32_t i = 0; i < t->npartitions; i++) {
        struct partition *p = t->partitions[i];
        jsonw_obj(&w);
        jsonw_ki64(&w, "partition", i);
        if (ct != NULL && i < ct->npartitions) {
            const struct cluster_partition *cp = &ct->parts[i];
            jsonw_ki64(&w, "leader", cp->leader);
            console_write_ids(&w, "replicas", cp->replicas, cp->nreplicas);
            console_write_ids(&w, "isr", cp->isr, cp->nisr);
        } else {
            jsonw_ki64(&w, "leader", b->cfg.node_id);
            console_write_ids(&w, "replicas", &b->cfg.node_id, 1);
            console_write_ids(&w, "isr", &b->cfg.node_id, 1);
        }
        if (p != NULL) { /* this broker holds a replica */
            jsonw_ki64(&w, "log_start", partition_log_start(p));
            jsonw_ki64(&w, "high_watermark", partition_high_watermark(p));
            jsonw_ki64(&w, "log_end", partition_log_end(p));
            jsonw_ki64(&w, "size_bytes", partition_size_bytes(p));
        }
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    struct topic_traffic tt;
    metrics_topic_traffic(b, t, &tt);
    jsonw_ki64(&w, "messages_in", (int64_t)tt.messages_in);
    jsonw_ki64(&w, "bytes_in", (int64_t)tt.bytes_in);
    jsonw_ki64(&w, "bytes_out", (int64_t)tt.bytes_out);
    jsonw_ki64(&w, "time_ms", now_ms());
    jsonw_obj_end(&w);
    console_reply(cx->req, 200, &w, NULL);
}

/* ---- groups ---- */

void console_write_classic_assignment(struct jsonw *w, const uint8_t *p, int32_t len)
{
    jsonw_key(w, "assignments");
    jsonw_arr(w);
    const uint8_t *end = p + (len > 0 ? len : 0);
#define NEED(n) if ((size_t)(end - p) < (size_t)(n)) goto done
    NEED(2 + 4);
    p += 2;
    int32_t nt = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    p += 4;
    for (int32_t i = 0; i < nt && i < 10000; i++) {
        NEED(2);
        int32_t sl = (int16_t)((uint16_t)p[0] << 8 | p[1]);
        p += 2;
        if (sl < 0)
            goto done;
        NEED(sl + 4);
        const char *name = (const char *)p;
        p += sl;
        int32_t np = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        p += 4;
        if (np < 0 || (size_t)(end - p) / 4 < (size_t)np)
            goto done;
        jsonw_obj(w);
        jsonw_key(w, "topic");
        jsonw_strn(w, name, (size_t)sl);
        jsonw_key(w, "partitions");
        jsonw_arr(w);
        for (int32_t k = 0; k < np; k++, p += 4)
            jsonw_i64(w, (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                   (uint32_t)p[2] << 8 | p[3]));
        jsonw_arr_end(w);
        jsonw_obj_end(w);
    }
#undef NEED
done:
    jsonw_arr_end(w);
}

static const struct topic *topic_by_uuid(struct broker *b, const struct kuuid *id)
{
    return topic_find_by_id(b, id);
}

static void write_cg_assignment(struct broker *b, struct jsonw *w, const struct cg_tp *tp, int n)
{
    jsonw_key(w, "assignments");
    jsonw_arr(w);
    for (int i = 0; i < n;) {
        int k = i;
        while (k < n && memcmp(&tp[k].topic_id, &tp[i].topic_id, sizeof(tp[i].topic_id)) == 0)
            k++;
        const struct topic *t = topic_by_uuid(b, &tp[i].topic_id);
        jsonw_obj(w);
        jsonw_kstr(w, "topic", t != NULL ? t->name : "?");
        jsonw_key(w, "partitions");
        jsonw_arr(w);
        for (int j = i; j < k; j++)
            jsonw_i64(w, tp[j].partition);
        jsonw_arr_end(w);
        jsonw_obj_end(w);
        i = k;
    }
    jsonw_arr_end(w);
}

void console_write_offset_row(struct jsonw *w, const char *topic, int32_t partition,
                              int64_t committed, int64_t hw, const char *metadata, int32_t mlen)
{
    jsonw_obj(w);
    jsonw_kstr(w, "topic", topic);
    jsonw_ki64(w, "partition", partition);
    jsonw_ki64(w, "committed", committed);
    jsonw_ki64_known(w, "high_watermark", hw);
    jsonw_ki64_known(w, "lag", hw < 0 ? -1 : hw > committed ? hw - committed : 0);
    jsonw_key(w, "metadata");
    jsonw_strn(w, metadata != NULL ? metadata : "", metadata != NULL && mlen > 0 ? (size_t)mlen : 0);
    jsonw_obj_end(w);
}

/* A group's committed offsets with lag (high watermark - committed, when this broker holds
 * the partition); rows of topics the principal may not describe are left out. */
static int64_t write_offsets(struct console_ctx *cx, struct jsonw *w, const char *group)
{
    struct gc_offset *offs = NULL;
    int n = gc_offset_list(cx->b->groups, group, &offs);
    int64_t total = 0;
    if (w != NULL) {
        jsonw_key(w, "offsets");
        jsonw_arr(w);
    }
    for (int i = 0; i < n; i++) {
        if (offs[i].offset < 0 || !console_visible(cx, ACL_RES_TOPIC, offs[i].topic))
            continue;
        struct partition *p = partition_get(cx->b, offs[i].topic, offs[i].partition);
        int64_t hw = p != NULL ? partition_high_watermark(p) : -1;
        int64_t lag = hw >= 0 ? (hw > offs[i].offset ? hw - offs[i].offset : 0) : -1;
        if (lag > 0)
            total += lag;
        if (w != NULL)
            console_write_offset_row(w, offs[i].topic, offs[i].partition, offs[i].offset, hw,
                                     offs[i].metadata, offs[i].metadata_len);
    }
    if (w != NULL)
        jsonw_arr_end(w);
    free(offs);
    return total;
}

static int member_count(struct broker *b, const char *group)
{
    struct gc_group_desc d;
    gc_describe(b->groups, group, &d);
    int n = d.n_members;
    bool consumer = d.consumer;
    gc_describe_free(&d);
    if (consumer) {
        struct cg_group_desc c;
        cg_describe(b->groups, group, &c);
        n = c.error == KERR_NONE ? c.n_members : 0;
        cg_describe_free(&c);
    }
    return n;
}

static void api_groups(struct console_ctx *cx)
{
    struct broker *b = cx->b;
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_key(&w, "groups");
    jsonw_arr(&w);
    struct gc_group_summary *gs = NULL;
    int ng = b->groups != NULL ? gc_list(b->groups, &gs) : 0;
    for (int i = 0; i < ng && i < CONSOLE_GROUPS_MAX; i++) {
        if (!console_visible(cx, ACL_RES_GROUP, gs[i].group_id))
            continue;
        jsonw_obj(&w);
        jsonw_kstr(&w, "group_id", gs[i].group_id);
        jsonw_kstr(&w, "protocol_type", gs[i].protocol_type);
        jsonw_kstr(&w, "state", gs[i].state_name);
        jsonw_kstr(&w, "type", gs[i].type);
        jsonw_ki64(&w, "members", member_count(b, gs[i].group_id));
        jsonw_ki64(&w, "total_lag", write_offsets(cx, NULL, gs[i].group_id));
        jsonw_obj_end(&w);
    }
    free(gs);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    console_reply(cx->req, 200, &w, NULL);
}

/* The group if the principal may describe it and this broker coordinates it; else answered. */
static bool group_usable(struct console_ctx *cx, const char *group, int op)
{
    if (!console_allowed(cx, op, ACL_RES_GROUP, group)) {
        console_error(cx->req, 403, "GROUP_AUTHORIZATION_FAILED", "not authorized for the group");
        return false;
    }
    int16_t e = cx->b->groups != NULL ? group_store_check(cx->b, group) : KERR_COORDINATOR_NOT_AVAILABLE;
    if (e != KERR_NONE) {
        console_error(cx->req, 503, kerr_name(e), "this broker does not coordinate the group now");
        return false;
    }
    return true;
}

static void api_group(struct console_ctx *cx, const char *group)
{
    struct broker *b = cx->b;
    if (!group_usable(cx, group, ACL_OP_DESCRIBE))
        return;
    struct gc_group_desc d;
    gc_describe(b->groups, group, &d);
    struct gc_offset *offs = NULL;
    int noffs = gc_offset_list(b->groups, group, &offs);
    free(offs);
    if (!d.found && noffs == 0) {
        gc_describe_free(&d);
        console_error(cx->req, 404, "GROUP_ID_NOT_FOUND", "no such group");
        return;
    }
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_kstr(&w, "group_id", group);
    if (d.consumer) {
        struct cg_group_desc c;
        cg_describe(b->groups, group, &c);
        jsonw_kstr(&w, "state", c.error == KERR_NONE ? c.state : "Dead");
        jsonw_kstr(&w, "protocol_type", "consumer");
        jsonw_kstr(&w, "protocol", c.error == KERR_NONE ? c.assignor : "");
        jsonw_kstr(&w, "type", "consumer");
        jsonw_key(&w, "members");
        jsonw_arr(&w);
        for (int i = 0; c.error == KERR_NONE && i < c.n_members; i++) {
            const struct cg_member_desc *m = &c.members[i];
            jsonw_obj(&w);
            jsonw_kstr(&w, "member_id", m->member_id);
            jsonw_kstr(&w, "client_id", m->client_id);
            jsonw_kstr(&w, "host", m->client_host);
            write_cg_assignment(b, &w, m->assigned, m->n_assigned);
            jsonw_obj_end(&w);
        }
        jsonw_arr_end(&w);
        cg_describe_free(&c);
    } else {
        jsonw_kstr(&w, "state", d.found ? gc_state_name(d.state) : "Empty");
        jsonw_kstr(&w, "protocol_type", d.found ? d.protocol_type : "");
        jsonw_kstr(&w, "protocol", d.found ? d.protocol : "");
        jsonw_kstr(&w, "type", "classic");
        jsonw_key(&w, "members");
        jsonw_arr(&w);
        for (int i = 0; i < d.n_members; i++) {
            const struct gc_member_desc *m = &d.members[i];
            jsonw_obj(&w);
            jsonw_kstr(&w, "member_id", m->member_id);
            jsonw_kstr(&w, "client_id", m->client_id);
            jsonw_kstr(&w, "host", m->client_host);
            if (strcmp(d.protocol_type, "consumer") == 0)
                console_write_classic_assignment(&w, m->assignment, m->assignment_len);
            else {
                jsonw_key(&w, "assignments");
                jsonw_arr(&w);
                jsonw_arr_end(&w);
            }
            jsonw_obj_end(&w);
        }
        jsonw_arr_end(&w);
    }
    gc_describe_free(&d);
    int64_t total = write_offsets(cx, &w, group);
    jsonw_ki64(&w, "total_lag", total);
    jsonw_ki64(&w, "time_ms", now_ms());
    jsonw_obj_end(&w);
    console_reply(cx->req, 200, &w, NULL);
}

/* Only an empty group is reset (kafka-consumer-groups.sh --reset-offsets), through the
 * coordinator's commit path as an OffsetCommit of generation -1 would be. */
bool console_reset_args(struct console_ctx *cx, struct console_reset_args *ra)
{
    struct arena a;
    arena_init(&a, 64 * 1024);
    const struct json *j = console_body(cx, &a);
    if (j == NULL) {
        arena_reset(&a);
        return false;
    }
    *ra = (struct console_reset_args){.ts = -1};
    const struct json *jt = json_get(j, "topic");
    ra->one_topic = jt != NULL && jt->type != JSON_NULL;
    bool ok = console_json_str(j, "to", ra->to, sizeof(ra->to)) &&
              (!ra->one_topic || console_json_str(j, "topic", ra->topic, sizeof(ra->topic)));
    bool by_ts = ok && strcmp(ra->to, "timestamp") == 0;
    if (!ok || (strcmp(ra->to, "earliest") != 0 && strcmp(ra->to, "latest") != 0 && !by_ts) ||
        (by_ts && (!console_json_i64(j, "timestamp", &ra->ts) || ra->ts < 0))) {
        arena_reset(&a);
        console_error(cx->req, 400, "INVALID_REQUEST",
                      "want {\"topic\": name|null, \"to\": \"earliest|latest|timestamp\", \"timestamp\": ms}");
        return false;
    }
    arena_reset(&a);
    return true;
}

static void api_group_reset(struct console_ctx *cx, const char *group)
{
    struct broker *b = cx->b;
    if (!group_usable(cx, group, ACL_OP_READ))
        return;
    struct console_reset_args ra;
    if (!console_reset_args(cx, &ra))
        return;
    const char *to = ra.to, *topic = ra.topic;
    int64_t ts = ra.ts;
    bool one_topic = ra.one_topic;
    struct gc_group_desc d;
    gc_describe(b->groups, group, &d);
    bool empty = !d.found || d.state == GC_EMPTY || d.state == GC_DEAD;
    if (d.consumer) {
        struct cg_group_desc c;
        cg_describe(b->groups, group, &c);
        empty = c.error != KERR_NONE || c.n_members == 0;
        cg_describe_free(&c);
    }
    gc_describe_free(&d);
    if (!empty) {
        console_error(cx->req, 409, "NON_EMPTY_GROUP",
                      "the group has active members: stop them before resetting its offsets");
        return;
    }
    /* The partitions: the named topic's all, else every topic the group has offsets of. */
    struct gc_commit_partition *parts = calloc(CONSOLE_RESET_MAX, sizeof(*parts));
    if (parts == NULL) {
        console_error(cx->req, 500, "UNKNOWN_SERVER_ERROR", "out of memory");
        return;
    }
    int n = 0;
    if (one_topic) {
        struct topic *t = console_topic(cx, topic, ACL_OP_READ);
        if (t == NULL) {
            free(parts);
            return;
        }
        for (int32_t i = 0; i < t->npartitions && n < CONSOLE_RESET_MAX; i++)
            parts[n++] = (struct gc_commit_partition){.topic = t->name, .partition = i};
    } else {
        struct gc_offset *offs = NULL;
        int no = gc_offset_list(b->groups, group, &offs);
        for (int i = 0; i < no && n < CONSOLE_RESET_MAX; i++) {
            struct topic *t = topic_find(b, offs[i].topic);
            if (t == NULL || offs[i].partition >= t->npartitions ||
                !console_allowed(cx, ACL_OP_READ, ACL_RES_TOPIC, t->name))
                continue;
            parts[n++] = (struct gc_commit_partition){.topic = t->name, .partition = offs[i].partition};
        }
        free(offs);
    }
    for (int i = 0; i < n; i++) {
        struct partition *p = partition_get(b, parts[i].topic, parts[i].partition);
        int64_t off = -1;
        if (p == NULL) {
            parts[i].error = KERR_NOT_LEADER_OR_FOLLOWER;
            continue;
        }
        if (strcmp(to, "earliest") == 0)
            off = partition_log_start(p);
        else if (strcmp(to, "latest") == 0)
            off = partition_high_watermark(p);
        else {
            int64_t found_ts;
            if (partition_offset_for_timestamp(p, ts, &off, &found_ts) != KERR_NONE || off < 0)
                off = partition_high_watermark(p);
        }
        parts[i].offset = off;
        parts[i].leader_epoch = -1;
    }
    struct gc_commit_args ca = {.group_id = group, .generation = -1, .member_id = "",
                                .retention_ms = -1, .version = 8};
    gc_offset_commit(b->groups, &ca, parts, n);
    struct jsonw w;
    jsonw_init(&w, CONSOLE_RESPONSE_MAX);
    jsonw_obj(&w);
    jsonw_key(&w, "offsets");
    jsonw_arr(&w);
    for (int i = 0; i < n; i++) {
        jsonw_obj(&w);
        jsonw_kstr(&w, "topic", parts[i].topic);
        jsonw_ki64(&w, "partition", parts[i].partition);
        jsonw_ki64(&w, "offset", parts[i].offset);
        if (parts[i].error != KERR_NONE)
            jsonw_kstr(&w, "error", kerr_name(parts[i].error));
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    free(parts);
    console_reply(cx->req, 200, &w, NULL);
}

/* ---- the router ---- */

/* The path's next segment after prefix into out (no '/'), and what follows in *rest. */
static bool segment(const char *path, const char *prefix, char *out, size_t cap, const char **rest)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return false;
    const char *s = path + pl;
    const char *e = strchr(s, '/');
    size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    *rest = s + n;
    return true;
}

void console_api_serve(struct broker *b, struct http_req *req)
{
    struct console_ctx cx = {.b = b, .req = req};
    peer_host_of(req, cx.host, sizeof(cx.host));
    cx.login_required = sasl_login_configured(b);
    const char *path = req->path;
    const char *m = req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    bool post = strcmp(m, "POST") == 0;
    bool del = strcmp(m, "DELETE") == 0;
    /* A state-changing call from a page of another origin (a cross-site form) is refused: the
     * page always sends JSON with its own Content-Type, which a form cannot. */
    if (post || del) {
        const char *ct = http_header(req, "Content-Type");
        if (post && (ct == NULL || strncasecmp(ct, "application/json", 16) != 0)) {
            console_error(req, 415, "UNSUPPORTED_MEDIA_TYPE", "send application/json");
            return;
        }
    }
    if (!cx.login_required) {
        snprintf(cx.principal, sizeof(cx.principal), "User:ANONYMOUS");
    } else {
        char id[CONSOLE_SESSION_ID_LEN + 8];
        struct console_session *s = cookie_session(req, id, sizeof(id)) != NULL
                                        ? console_session_find(b, id) : NULL;
        if (s != NULL)
            snprintf(cx.principal, sizeof(cx.principal), "%s", s->principal);
        else if (basic_login(b, req, cx.principal, sizeof(cx.principal)) < 0) {
            login_failed(b, req);
            return;
        }
    }
    if (strcmp(path, "/api/login") == 0 && post) {
        api_login(&cx);
        return;
    }
    if (strcmp(path, "/api/whoami") == 0 && get) {
        api_whoami(&cx);
        return;
    }
    if (strcmp(path, "/api/logout") == 0 && post) {
        api_logout(&cx);
        return;
    }
    if (cx.principal[0] == '\0') {
        console_error(req, 401, "LOGIN_REQUIRED", "log in first (POST /api/login, or HTTP Basic)");
        return;
    }
    char name[CONSOLE_NAME_MAX];
    const char *rest;
    if (strcmp(path, "/api/overview") == 0 && get)
        api_overview(&cx);
    else if (strcmp(path, "/api/topics") == 0 && post)
        console_create_topic(&cx);
    else if (segment(path, "/api/topics/", name, sizeof(name), &rest)) {
        if (*rest == '\0' && get)
            api_topic(&cx, name);
        else if (*rest == '\0' && del)
            console_delete_topic(&cx, name);
        else if (strcmp(rest, "/messages") == 0 && get)
            console_messages(&cx, name);
        else if (strcmp(rest, "/produce") == 0 && post)
            console_produce(&cx, name);
        else
            console_error(req, 404, "NOT_FOUND", "no such API");
    } else if (strcmp(path, "/api/groups") == 0 && get) {
        if (b->cluster != NULL)
            console_groups_remote(&cx);
        else
            api_groups(&cx);
    } else if (segment(path, "/api/groups/", name, sizeof(name), &rest)) {
        if (*rest == '\0' && get && b->cluster != NULL)
            console_group_remote(&cx, name);
        else if (*rest == '\0' && get)
            api_group(&cx, name);
        else if (strcmp(rest, "/reset") == 0 && post && b->cluster != NULL)
            console_group_reset_remote(&cx, name);
        else if (strcmp(rest, "/reset") == 0 && post)
            api_group_reset(&cx, name);
        else
            console_error(req, 404, "NOT_FOUND", "no such API");
    } else
        console_error(req, 404, "NOT_FOUND", "no such API");
}
