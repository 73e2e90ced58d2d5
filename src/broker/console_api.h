/* console_api: what console_api.c (sessions, router, overview, topics, groups) and
 * console_data.c (the record browser and the writes) share. The bounds of the console's JSON
 * API are here. */
#ifndef GREGOR_BROKER_CONSOLE_API_H
#define GREGOR_BROKER_CONSOLE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"

struct broker;
struct http_req;
struct json;
struct jsonw;
struct topic;

#define CONSOLE_SESSIONS_MAX 256               /* logged-in sessions kept */
#define CONSOLE_SESSION_ID_LEN 32              /* hex characters (16 random bytes) */
#define CONSOLE_SESSION_TTL_MS (8LL * 3600 * 1000) /* idle time before a session ends */
#define CONSOLE_PRINCIPAL_MAX 300
#define CONSOLE_NAME_MAX 256                   /* a topic or group name in a path */
#define CONSOLE_RESPONSE_MAX (16u << 20)       /* an answer's bytes */
#define CONSOLE_GROUPS_MAX 10000               /* groups listed */
#define CONSOLE_RESET_MAX 4096                 /* partitions one reset commits */
#define CONSOLE_LIMIT_MAX 500                  /* records one page shows */
#define CONSOLE_SCAN_MAX 10000                 /* records one call looks at */
#define CONSOLE_READ_BYTES (1 << 20)           /* bytes one partition_read asks for */
#define CONSOLE_BATCH_MAX (64u << 20)          /* a batch read or inflated at most */
#define CONSOLE_SHOW_MAX (64u * 1024)          /* bytes of a key, value or header shown */
#define CONSOLE_CREATE_PARTITIONS_MAX 10000    /* partitions one create asks for */

/* One API call: who asks (principal "" when nobody logged in), from where. */
struct console_ctx {
    struct broker *b;
    struct http_req *req;
    char principal[CONSOLE_PRINCIPAL_MAX];
    char host[80];
    bool login_required;
};

/* Answers w's document (freed) with status, or 500 when it passed its bound. */
void console_reply(struct http_req *req, int status, struct jsonw *w, const char *extra);
/* {"error": error, "message": message} with status. */
void console_error(struct http_req *req, int status, const char *error, const char *message);
/* The authorizer's answer for the caller (logged as a Kafka request's); visible: DESCRIBE,
 * only filtering (logged at DEBUG). */
bool console_allowed(struct console_ctx *cx, int op, int resource_type, const char *name);
bool console_visible(struct console_ctx *cx, int resource_type, const char *name);
/* A topic as the console sees it: this broker's replicas of it (t) and, in a cluster,
 * ZooKeeper's view (ct: every partition's leader, replicas and ISR, wherever they live). */
struct cluster_topic;
struct console_topic_ref {
    const char *name;               /* the topic's (t's or ct's) */
    struct topic *t;                /* NULL when this broker holds no replica of it */
    const struct cluster_topic *ct; /* NULL on one node */
    int32_t npartitions;            /* ct's when known, else t's */
    bool internal;
};
/* The topic when the caller may DESCRIBE it and op on it (op DESCRIBE: that only): true with
 * *out; else false, answered (403, 404). */
bool console_topic_ref(struct console_ctx *cx, const char *name, int op, struct console_topic_ref *out);
/* The same when this broker holds a replica of it: its t, else NULL answered (404 too). */
struct topic *console_topic(struct console_ctx *cx, const char *name, int op);

/* console_api.c's overview around its topics (console_overview_begin opens the document and
 * its "topics" array; _end, after the caller closed that array, adds the groups and time_ms and
 * closes the document), and a topic's "configs" (its overrides ov, else the broker's defaults;
 * empty unless the caller may DESCRIBE_CONFIGS it). */
struct topic_config_kv;
void console_overview_begin(struct console_ctx *cx, struct jsonw *w);
void console_overview_end(struct console_ctx *cx, struct jsonw *w);
void console_topic_configs(struct console_ctx *cx, struct jsonw *w, const char *name,
                           const struct topic_config_kv *ov, int nov);

/* console_topics_remote.c: /api/overview and /api/topics/<t> in a cluster, from every broker
 * (sizes by DescribeLogDirs, offsets by ListOffsets to the leaders); ref found by
 * console_topic_ref with its ct. */
void console_overview_cluster(struct console_ctx *cx);
void console_topic_cluster(struct console_ctx *cx, const struct console_topic_ref *ref);

/* The request's JSON object body (in a), or NULL answered 400. */
const struct json *console_body(struct console_ctx *cx, struct arena *a);
/* A member as a string (no NUL, shorter than cap) or an integer; false when absent or not. */
bool console_json_str(const struct json *obj, const char *key, char *out, size_t cap);
bool console_json_i64(const struct json *obj, const char *key, int64_t *out);

/* console_data.c */
void console_messages(struct console_ctx *cx, const char *topic);
void console_produce(struct console_ctx *cx, const char *topic);
void console_create_topic(struct console_ctx *cx);
void console_delete_topic(struct console_ctx *cx, const char *topic);
/* The message browser's value classification, exposed for the fuzz target: 2 json (an object
 * or array that parses), 1 text (UTF-8), 0 binary. */
int console_value_format(const uint8_t *v, size_t n);
/* The cursor's "p_o.p_o..." (partition, next offset) pairs: how many were read into parts and
 * offsets (at most max), -1 when malformed. */
int console_cursor_parse(const char *s, int32_t *parts, int64_t *offsets, int max);

/* console_session.c: a new session for principal (its id, CONSOLE_SESSION_ID_LEN hex
 * characters, into id_out; the oldest goes when the table is full), 0 or -1 (no randomness,
 * out of memory); the live session of an id (its expiry moved on), or NULL; the table freed
 * (broker_close). */
struct console_session {
    char id[CONSOLE_SESSION_ID_LEN + 1]; /* "" = free */
    char principal[CONSOLE_PRINCIPAL_MAX];
    int64_t expires_ms;                  /* mono */
};
int console_session_new(struct broker *b, const char *principal, char *id_out);
struct console_session *console_session_find(struct broker *b, const char *id);
void console_api_free(struct broker *b);

#endif
