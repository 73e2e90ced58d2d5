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
/* groups: the count to write (< 0: this broker's own, console_local_groups). */
void console_overview_end(struct console_ctx *cx, struct jsonw *w, int64_t groups);
/* The groups this broker coordinates that the caller may see: how many, and (a not NULL) their
 * ids copied into a. */
int console_local_groups(struct console_ctx *cx, const char ***ids, struct arena *a);
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

/* A group's offsets row: committed, and the high watermark and lag (null when hw < 0). */
void console_write_offset_row(struct jsonw *w, const char *topic, int32_t partition,
                              int64_t committed, int64_t hw, const char *metadata, int32_t mlen);
/* "key": [ids] (replicas, ISR). */
void console_write_ids(struct jsonw *w, const char *key, const int32_t *ids, int n);
/* ConsumerProtocol's Assignment (version, [topic, [partition]], user data) as "assignments"
 * topic rows. */
void console_write_classic_assignment(struct jsonw *w, const uint8_t *p, int32_t len);
/* A reset's body: {"topic": name|null, "to": "earliest|latest|timestamp", "timestamp": ms};
 * false when bad (answered 400). */
struct console_reset_args {
    bool one_topic;
    char topic[256];
    char to[32];
    int64_t ts;              /* -1 unless to is "timestamp" */
};
bool console_reset_args(struct console_ctx *cx, struct console_reset_args *ra);

/* console_groups_remote.c: the groups pages and reset on a ZooKeeper cluster, asked of the
 * groups' coordinators and the partitions' leaders wherever they are. */
void console_groups_remote(struct console_ctx *cx);
void console_group_remote(struct console_ctx *cx, const char *group);
void console_group_reset_remote(struct console_ctx *cx, const char *group);

/* console_data.c */
void console_messages(struct console_ctx *cx, const char *topic);
void console_produce(struct console_ctx *cx, const char *topic);
void console_create_topic(struct console_ctx *cx);
void console_delete_topic(struct console_ctx *cx, const char *topic);
/* The record browser (console_data.c), shared by the local reads (partition_read) and the
 * remote ones (Fetch from the leader, console_browse_remote.c). A query's parameters: */
#define CONSOLE_BROWSE_PARTITIONS_MAX 512     /* partitions one call browses */
struct console_browse_query {
    int limit;
    char filter[256];
    char from[32];                             /* beginning, end, offset, timestamp */
    int64_t offset, ts;
    int np;                                    /* the partitions browsed, in order */
    int32_t idx[CONSOLE_BROWSE_PARTITIONS_MAX];
    bool by_cursor;
    int ncursor;
    int32_t cp[CONSOLE_BROWSE_PARTITIONS_MAX]; /* the cursor's (partition, offset) pairs */
    int64_t co[CONSOLE_BROWSE_PARTITIONS_MAX];
};
/* A page being written: records into w's open array. */
struct console_browse {
    struct jsonw *w;
    const char *filter;
    size_t flen;
    int limit, shown, scanned;
    bool full;       /* the answer reached its soft size bound */
};
struct partition;
bool console_browse_done(const struct console_browse *br);
/* The whole batches of buf (a read of partition index's log: partition_read's or a Fetch
 * response's records) from *pos on, written as records (control batches skipped) until the
 * page is done; *pos moved past what was looked at. KERR_NONE or KERR_CORRUPT_MESSAGE. */
int console_browse_batches(struct console_browse *br, int32_t index, const uint8_t *buf,
                           size_t len, int64_t *pos);
/* Partition p of this broker read from *pos to its high watermark or the page's end. */
int console_browse_local(struct console_browse *br, struct partition *p, int32_t index, int64_t *pos);
/* Where q's i-th partition starts, given its log start, high watermark and (from=timestamp)
 * the offset of the timestamp (-1 none: the high watermark); within [ls, hw]. */
int64_t console_browse_start(const struct console_browse_query *q, int i, int64_t ls, int64_t hw,
                             int64_t ts_offset);
bool console_browse_by_timestamp(const struct console_browse_query *q);
/* "next_cursor": q's partitions at pos (those at pos < 0 left out; null when none). */
void console_browse_cursor(struct jsonw *w, const struct console_browse_query *q,
                           const int64_t *pos);

/* console_browse_remote.c, on a ZooKeeper cluster: the browser over every partition of ref
 * (q's), those this broker does not lead read with ListOffsets and Fetch from their leaders;
 * a one-record batch (produce) sent to the partition's leader as a Produce with acks=all. */
void console_messages_cluster(struct console_ctx *cx, const struct console_topic_ref *ref,
                              const struct console_browse_query *q);
void console_produce_remote(struct console_ctx *cx, const struct console_topic_ref *ref,
                            int32_t partition, const uint8_t *batch, size_t len);

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
