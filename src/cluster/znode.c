/* znode: see znode.h. A small JSON scanner (objects, arrays, strings with escapes, scalars)
 * bounded by the value's length and by ZNODE_DEPTH_MAX, and Kafka's znode values on it. */
#include "cluster/znode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past the string starting at p ('"'), or NULL. */
static const char *skip_string(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Past one value at p (after white space), or NULL when it is not one. */
static const char *skip_value(const char *p, const char *e)
{
    p = skip_ws(p, e);
    if (p >= e)
        return NULL;
    if (*p == '"')
        return skip_string(p, e);
    if (*p == '{' || *p == '[') {
        char stack[ZNODE_DEPTH_MAX];
        int depth = 0;
        while (p < e) {
            if (*p == '"') {
                p = skip_string(p, e);
                if (p == NULL)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') {
                if (depth == ZNODE_DEPTH_MAX)
                    return NULL;
                stack[depth++] = *p == '{' ? '}' : ']';
            } else if (*p == '}' || *p == ']') {
                if (depth == 0 || stack[depth - 1] != *p)
                    return NULL;
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *s = p; /* a number, true, false, null */
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r' && *p != '"' && *p != '{' && *p != '[' && *p != ':')
        p++;
    return p > s ? p : NULL;
}

/* As znode_member, telling an absent key (1) from a value that is not one object (-1). */
static int member_scan(const char *json, size_t len, const char *key, const char **vs,
                       const char **ve)
{
    if (json == NULL)
        return -1;
    const char *e = json + len;
    const char *p = skip_ws(json, e);
    if (p >= e || *p != '{')
        return -1;
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}')
        return -1;
    size_t klen = strlen(key);
    const char *fs = NULL, *fe = NULL;
    while (p < e) {
        if (*p != '"')
            return -1;
        const char *ks = p + 1;
        const char *kend = skip_string(p, e);
        if (kend == NULL)
            return -1;
        bool match = (size_t)(kend - 1 - ks) == klen && memcmp(ks, key, klen) == 0;
        p = skip_ws(kend, e);
        if (p >= e || *p != ':')
            return -1;
        const char *v = skip_ws(p + 1, e);
        const char *vend = skip_value(v, e);
        if (vend == NULL)
            return -1;
        if (match && fs == NULL) {
            fs = v;
            fe = vend;
        }
        p = skip_ws(vend, e);
        if (p < e && *p == '}') /* the end: nothing but white space may follow */
            break;
        if (p >= e || *p != ',')
            return -1;
        p = skip_ws(p + 1, e);
    }
    if (p >= e || skip_ws(p + 1, e) != e)
        return -1;
    if (fs == NULL)
        return 1;
    *vs = fs;
    *ve = fe;
    return 0;
}

int znode_member(const char *json, size_t len, const char *key, const char **vs,
                 const char **ve)
{
    return member_scan(json, len, key, vs, ve) == 0 ? 0 : -1;
}

int znode_string(const char *json, size_t len, const char *key, char *out, size_t outlen)
{
    const char *vs, *ve;
    if (znode_member(json, len, key, &vs, &ve) != 0 || *vs != '"' || ve - vs < 2)
        return -1;
    size_t n = (size_t)(ve - vs - 2);
    if (n >= outlen || memchr(vs + 1, '\\', n) != NULL)
        return -1;
    memcpy(out, vs + 1, n);
    out[n] = '\0';
    return 0;
}

/* A decimal integer filling [p, e) exactly. */
static int parse_int(const char *p, const char *e, int64_t *out)
{
    if (p >= e || (size_t)(e - p) > 20)
        return -1;
    char buf[24];
    memcpy(buf, p, (size_t)(e - p));
    buf[e - p] = '\0';
    if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0' || end == buf)
        return -1;
    *out = v;
    return 0;
}

int znode_int(const char *json, size_t len, const char *key, int64_t *out)
{
    const char *vs, *ve;
    if (znode_member(json, len, key, &vs, &ve) != 0)
        return -1;
    if (*vs == '"') /* Kafka writes some numbers as strings ("version":"1", timestamps) */
        return parse_int(vs + 1, ve - 1, out);
    return parse_int(vs, ve, out);
}

int znode_int_array(const char *p, const char *e, int32_t *out, int max)
{
    if (p == NULL || p >= e || *p != '[')
        return -1;
    p = skip_ws(p + 1, e);
    int n = 0;
    if (p < e && *p == ']')
        return 0;
    while (p < e) {
        const char *s = p;
        while (p < e && (*p == '-' || (*p >= '0' && *p <= '9')))
            p++;
        int64_t v;
        if (n == max || parse_int(s, p, &v) != 0 || v < INT32_MIN || v > INT32_MAX)
            return -1;
        out[n++] = (int32_t)v;
        p = skip_ws(p, e);
        if (p < e && *p == ']')
            return n;
        if (p >= e || *p != ',')
            return -1;
        p = skip_ws(p + 1, e);
    }
    return -1;
}

/* ---- Kafka's Uuid ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void znode_uuid_str(const uint8_t id[16], char out[23])
{
    uint8_t r[18] = {0};
    memcpy(r, id, 16);
    size_t n = 0;
    for (int i = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        for (int k = 3; k >= 0 && n < 22; k--)
            out[n++] = b64url[(v >> (6 * k)) & 63];
    }
    out[22] = '\0';
}

int znode_uuid_parse(const char *s, size_t len, uint8_t id[16])
{
    if (len != 22)
        return -1;
    uint8_t r[18] = {0};
    uint32_t acc = 0;
    int bits = 0, n = 0;
    for (size_t i = 0; i < 22; i++) {
        const char *p = s[i] != '\0' ? strchr(b64url, s[i]) : NULL;
        if (p == NULL)
            return -1;
        acc = acc << 6 | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            r[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    GREGOR_ASSERT(n == 16);
    memcpy(id, r, 16);
    return 0;
}

/* ---- writers: one bounded append ---- */

#define PUT(...)                                                                             \
    do {                                                                                     \
        int k_ = snprintf(out + n, n < outlen ? outlen - n : 0, __VA_ARGS__);                \
        if (k_ < 0 || (size_t)k_ >= outlen - n)                                              \
            return -1;                                                                       \
        n += (size_t)k_;                                                                     \
    } while (0)

/* ---- /brokers/ids/<id> ---- */

static int put_escaped(char *out, size_t outlen, size_t *np, const char *s);
static int unescape(const char *vs, const char *ve, char *out, size_t outlen);

int znode_broker_json(char *out, size_t outlen, const char *listener_name, const char *host,
                      int32_t port, const char *rack, int64_t timestamp_ms)
{
    struct znode_endpoint ep = {listener_name, "PLAINTEXT", host, port};
    return znode_broker_json_endpoints(out, outlen, &ep, 1, rack, timestamp_ms);
}

int znode_broker_json_endpoints(char *out, size_t outlen, const struct znode_endpoint *eps,
                                int neps, const char *rack, int64_t timestamp_ms)
{
    /* Kafka 3.x's BrokerIdZNode, version 5 (features added in v5); host/port are the
     * PLAINTEXT endpoint's, as older readers expect; "rack" (v3+) only with a rack. */
    GREGOR_ASSERT(neps > 0);
    size_t n = 0;
    const struct znode_endpoint *plain = NULL;
    PUT("{\"features\":{},\"listener_security_protocol_map\":{");
    for (int i = 0; i < neps; i++)
        PUT("%s\"%s\":\"%s\"", i ? "," : "", eps[i].name, eps[i].protocol);
    PUT("},\"endpoints\":[");
    for (int i = 0; i < neps; i++) {
        bool v6 = strchr(eps[i].host, ':') != NULL;
        PUT("%s\"%s://%s%s%s:%d\"", i ? "," : "", eps[i].name, v6 ? "[" : "", eps[i].host,
            v6 ? "]" : "", eps[i].port);
        if (plain == NULL && strcmp(eps[i].protocol, "PLAINTEXT") == 0)
            plain = &eps[i];
    }
    PUT("],");
    if (rack != NULL && rack[0] != '\0') {
        PUT("\"rack\":\"");
        if (put_escaped(out, outlen, &n, rack) != 0)
            return -1;
        PUT("\",");
    }
    if (plain != NULL)
        PUT("\"jmx_port\":-1,\"port\":%d,\"host\":\"%s\",", plain->port, plain->host);
    else
        PUT("\"jmx_port\":-1,\"port\":-1,\"host\":null,");
    PUT("\"version\":5,\"timestamp\":\"%" PRId64 "\"}", timestamp_ms);
    return (int)n;
}

int znode_broker_rack(const char *json, size_t len, char *rack, size_t racklen)
{
    const char *vs, *ve;
    int found = member_scan(json, len, "rack", &vs, &ve);
    if (found != 0)
        return found > 0 ? 0 : -1;
    if (ve - vs == 4 && memcmp(vs, "null", 4) == 0)
        return 0;
    if (*vs != '"' || unescape(vs, ve, rack, racklen) != 0)
        return -1;
    return 1;
}

/* "NAME://host:port" in [s, e) for listener_name: host (brackets of an IPv6 one dropped). */
static int endpoint_parse(const char *s, const char *e, const char *listener_name, char *host,
                          size_t hostlen, int32_t *port)
{
    size_t ln = strlen(listener_name);
    if ((size_t)(e - s) < ln + 3 || memcmp(s, listener_name, ln) != 0 ||
        memcmp(s + ln, "://", 3) != 0)
        return -1;
    s += ln + 3;
    const char *colon = NULL;
    for (const char *q = s; q < e; q++)
        if (*q == ':')
            colon = q;
    if (colon == NULL)
        return -1;
    const char *h = s, *he = colon;
    if (he - h >= 2 && *h == '[' && he[-1] == ']') {
        h++;
        he--;
    }
    int64_t v;
    if ((size_t)(he - h) >= hostlen || parse_int(colon + 1, e, &v) != 0 || v <= 0 || v > 65535)
        return -1;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    *port = (int32_t)v;
    return 0;
}

int znode_broker_parse(const char *json, size_t len, const char *listener_name, char *host,
                       size_t hostlen, int32_t *port)
{
    const char *vs, *ve;
    if (znode_member(json, len, "endpoints", &vs, &ve) == 0 && *vs == '[') {
        const char *p = skip_ws(vs + 1, ve);
        while (p < ve && *p == '"') {
            const char *end = skip_string(p, ve);
            if (end == NULL)
                break;
            if (endpoint_parse(p + 1, end - 1, listener_name, host, hostlen, port) == 0)
                return 0;
            p = skip_ws(end, ve);
            if (p < ve && *p == ',')
                p = skip_ws(p + 1, ve);
        }
    }
    int64_t v;
    if (znode_string(json, len, "host", host, hostlen) != 0 ||
        znode_int(json, len, "port", &v) != 0 || v <= 0 || v > 65535)
        return -1;
    *port = (int32_t)v;
    return 0;
}

/* ---- /controller and /cluster/id ---- */

int znode_controller_json(char *out, size_t outlen, int32_t broker_id, int64_t timestamp_ms)
{
    size_t n = 0;
    PUT("{\"version\":1,\"brokerid\":%d,\"timestamp\":\"%" PRId64 "\"}", broker_id, timestamp_ms);
    return (int)n;
}

int znode_controller_parse(const char *json, size_t len, int32_t *broker_id)
{
    int64_t v;
    if (znode_int(json, len, "brokerid", &v) != 0 || v < 0 || v > INT32_MAX)
        return -1;
    *broker_id = (int32_t)v;
    return 0;
}

int znode_cluster_id_json(char *out, size_t outlen, const char *id)
{
    size_t n = 0;
    PUT("{\"version\":\"1\",\"id\":\"%s\"}", id);
    return (int)n;
}

int znode_cluster_id_parse(const char *json, size_t len, char *id, size_t idlen)
{
    return znode_string(json, len, "id", id, idlen) == 0 && id[0] != '\0' ? 0 : -1;
}

/* ---- /brokers/topics/<t> ---- */

/* {"<p>":[ids],...} from out + n: every partition (all true), else those with a list. */
static int put_replica_map(char *out, size_t outlen, size_t n, int32_t nparts, const int32_t *counts,
                           const int32_t *ids, int stride, bool all)
{
    PUT("{");
    bool first = true;
    for (int32_t p = 0; p < nparts; p++) {
        int k = counts != NULL ? counts[p] : (all ? stride : 0);
        GREGOR_ASSERT(k >= 0 && k <= stride);
        if (k == 0 && !all)
            continue;
        PUT("%s\"%d\":[", first ? "" : ",", p);
        first = false;
        for (int j = 0; j < k; j++)
            PUT("%s%d", j ? "," : "", ids[(size_t)p * (size_t)stride + (size_t)j]);
        PUT("]");
    }
    PUT("}");
    return (int)n;
}

int znode_topic_json(char *out, size_t outlen, const uint8_t id[16], int32_t nparts,
                     const int32_t *nreplicas, const int32_t *replicas, int stride)
{
    return znode_topic_json_full(out, outlen, id, nparts, nreplicas, replicas, stride, NULL, NULL,
                                 NULL, NULL);
}

int znode_topic_json_full(char *out, size_t outlen, const uint8_t id[16], int32_t nparts,
                          const int32_t *nreplicas, const int32_t *replicas, int stride,
                          const int32_t *nadding, const int32_t *adding,
                          const int32_t *nremoving, const int32_t *removing)
{
    size_t n = 0;
    char ids[23];
    znode_uuid_str(id, ids);
    PUT("{\"partitions\":");
    int k = put_replica_map(out, outlen, n, nparts, nreplicas, replicas, stride, true);
    if (k < 0)
        return -1;
    n = (size_t)k;
    PUT(",\"topic_id\":\"%s\",\"adding_replicas\":", ids);
    k = put_replica_map(out, outlen, n, nparts, nadding, adding, stride, false);
    if (k < 0)
        return -1;
    n = (size_t)k;
    PUT(",\"removing_replicas\":");
    k = put_replica_map(out, outlen, n, nparts, nremoving, removing, stride, false);
    if (k < 0)
        return -1;
    n = (size_t)k;
    PUT(",\"version\":3}");
    return (int)n;
}

int znode_topic_reassign_parse(const char *json, size_t len, const char *key, int32_t nparts,
                               znode_partition_fn fn, void *arg)
{
    const char *vs, *ve;
    if (znode_member(json, len, key, &vs, &ve) != 0)
        return 0; /* versions before 2 have neither */
    if (*vs != '{')
        return -1;
    const char *p = skip_ws(vs + 1, ve);
    int count = 0;
    while (p < ve && *p == '"') {
        const char *kend = skip_string(p, ve);
        int64_t part;
        if (kend == NULL || parse_int(p + 1, kend - 1, &part) != 0 || part < 0 || part >= nparts)
            return -1;
        p = skip_ws(kend, ve);
        if (p >= ve || *p != ':')
            return -1;
        const char *as = skip_ws(p + 1, ve);
        const char *aend = skip_value(as, ve);
        int32_t reps[ZNODE_REPLICAS_MAX];
        int k = aend != NULL ? znode_int_array(as, aend, reps, ZNODE_REPLICAS_MAX) : -1;
        if (k < 0)
            return -1;
        if (fn != NULL)
            fn(arg, (int32_t)part, reps, k);
        count++;
        p = skip_ws(aend, ve);
        if (p < ve && *p == ',')
            p = skip_ws(p + 1, ve);
        else
            break;
    }
    return p < ve && *p == '}' ? count : -1;
}

/* ---- /admin/reassign_partitions ---- */

int znode_reassign_parse(const char *json, size_t len, znode_reassign_fn fn, void *arg)
{
    const char *vs, *ve;
    if (znode_member(json, len, "partitions", &vs, &ve) != 0 || *vs != '[')
        return -1;
    const char *p = skip_ws(vs + 1, ve);
    int count = 0;
    if (p < ve && *p == ']')
        return 0;
    while (p < ve) {
        const char *es = p, *ee = skip_value(p, ve);
        if (ee == NULL || *es != '{')
            return -1;
        char topic[256];
        int64_t part;
        const char *rs, *re;
        int32_t reps[ZNODE_REPLICAS_MAX];
        int k = -1;
        if (znode_string(es, (size_t)(ee - es), "topic", topic, sizeof(topic)) == 0 &&
            znode_int(es, (size_t)(ee - es), "partition", &part) == 0 && part >= 0 &&
            part <= INT32_MAX && znode_member(es, (size_t)(ee - es), "replicas", &rs, &re) == 0)
            k = znode_int_array(rs, re, reps, ZNODE_REPLICAS_MAX);
        if (k < 0 || topic[0] == '\0')
            return -1;
        if (fn != NULL)
            fn(arg, topic, (int32_t)part, reps, k);
        count++;
        p = skip_ws(ee, ve);
        if (p < ve && *p == ']')
            return count;
        if (p >= ve || *p != ',')
            return -1;
        p = skip_ws(p + 1, ve);
    }
    return -1;
}

int32_t znode_topic_parse(const char *json, size_t len, int32_t max_parts, uint8_t id[16],
                          znode_partition_fn fn, void *arg)
{
    memset(id, 0, 16);
    const char *vs, *ve;
    if (znode_member(json, len, "topic_id", &vs, &ve) == 0 && *vs == '"' &&
        znode_uuid_parse(vs + 1, (size_t)(ve - vs - 2), id) != 0)
        return -1;
    if (znode_member(json, len, "partitions", &vs, &ve) != 0 || *vs != '{')
        return -1;
    /* Count first: the partitions must be 0..n-1, each once, in any order. */
    int32_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *seen = NULL;
        if (pass == 1) {
            if (n <= 0 || n > max_parts)
                return -1;
            seen = calloc((size_t)n, 1);
            GREGOR_ASSERT(seen != NULL);
        }
        const char *p = skip_ws(vs + 1, ve);
        int32_t count = 0;
        int bad = 0;
        while (p < ve && *p == '"' && !bad) {
            const char *kend = skip_string(p, ve);
            int64_t part;
            if (kend == NULL || parse_int(p + 1, kend - 1, &part) != 0) {
                bad = 1;
                break;
            }
            p = skip_ws(kend, ve);
            if (p >= ve || *p != ':') {
                bad = 1;
                break;
            }
            const char *as = skip_ws(p + 1, ve);
            const char *aend = skip_value(as, ve);
            if (aend == NULL) {
                bad = 1;
                break;
            }
            if (pass == 0) {
                if (++count > max_parts) {
                    bad = 1;
                    break;
                }
            } else {
                int32_t reps[ZNODE_REPLICAS_MAX];
                int k = znode_int_array(as, aend, reps, ZNODE_REPLICAS_MAX);
                if (part < 0 || part >= n || seen[part] || k < 0) {
                    bad = 1;
                    break;
                }
                seen[part] = 1;
                if (fn != NULL)
                    fn(arg, (int32_t)part, reps, k);
            }
            p = skip_ws(aend, ve);
            if (p < ve && *p == ',')
                p = skip_ws(p + 1, ve);
            else
                break;
        }
        free(seen);
        if (bad || p >= ve || *p != '}')
            return -1;
        if (pass == 0)
            n = count;
    }
    return n;
}

/* ---- .../partitions/<p>/state ---- */

int znode_state_json(char *out, size_t outlen, const struct znode_state *s)
{
    size_t n = 0;
    PUT("{\"controller_epoch\":%d,\"leader\":%d,\"version\":1,\"leader_epoch\":%d,\"isr\":[",
        s->controller_epoch, s->leader, s->leader_epoch);
    for (int32_t i = 0; i < s->nisr; i++)
        PUT("%s%d", i ? "," : "", s->isr[i]);
    PUT("]}");
    return (int)n;
}

int znode_state_parse(const char *json, size_t len, struct znode_state *s)
{
    int64_t leader, le, ce;
    const char *vs, *ve;
    if (znode_int(json, len, "leader", &leader) != 0 ||
        znode_int(json, len, "leader_epoch", &le) != 0 ||
        znode_int(json, len, "controller_epoch", &ce) != 0 || leader < -1 ||
        leader > INT32_MAX || le < 0 || le > INT32_MAX || ce < 0 || ce > INT32_MAX ||
        znode_member(json, len, "isr", &vs, &ve) != 0)
        return -1;
    int k = znode_int_array(vs, ve, s->isr, ZNODE_REPLICAS_MAX);
    if (k < 0)
        return -1;
    s->nisr = k;
    s->leader = (int32_t)leader;
    s->leader_epoch = (int32_t)le;
    s->controller_epoch = (int32_t)ce;
    return 0;
}

/* ---- /config/<type>/<name> and /config/changes ---- */

/* s as a JSON string's contents, as Jackson escapes them: '"', '\\', and control characters
 * (the five with a short form, the others as \u00XX); everything else (UTF-8) as is. */
static int put_escaped(char *out, size_t outlen, size_t *np, const char *s)
{
    size_t n = *np;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char buf[8];
        const char *piece = buf;
        switch (*p) {
        case '"': piece = "\\\""; break;
        case '\\': piece = "\\\\"; break;
        case '\b': piece = "\\b"; break;
        case '\f': piece = "\\f"; break;
        case '\n': piece = "\\n"; break;
        case '\r': piece = "\\r"; break;
        case '\t': piece = "\\t"; break;
        default:
            if (*p < 0x20)
                snprintf(buf, sizeof(buf), "\\u%04X", *p);
            else
                buf[0] = (char)*p, buf[1] = '\0';
        }
        size_t k = strlen(piece);
        if (n + k >= outlen)
            return -1;
        memcpy(out + n, piece, k);
        n += k;
    }
    out[n] = '\0';
    *np = n;
    return 0;
}

int znode_config_json(char *out, size_t outlen, const char *const *keys,
                      const char *const *values, int count)
{
    size_t n = 0;
    PUT("{\"version\":1,\"config\":{");
    for (int i = 0; i < count; i++) {
        PUT("%s\"", i ? "," : "");
        if (put_escaped(out, outlen, &n, keys[i]) != 0)
            return -1;
        PUT("\":\"");
        if (put_escaped(out, outlen, &n, values[i]) != 0)
            return -1;
        PUT("\"");
    }
    PUT("}}");
    return (int)n;
}

static int hex4(const char *p, const char *e, uint32_t *out)
{
    if (e - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* The JSON string [vs, ve) (quotes included) unescaped into out (NUL-terminated); -1 when it
 * does not fit, or holds a raw control character, \u0000 or a lone surrogate. */
static int unescape(const char *vs, const char *ve, char *out, size_t outlen)
{
    if (ve - vs < 2 || *vs != '"' || ve[-1] != '"')
        return -1;
    size_t n = 0;
    for (const char *p = vs + 1, *e = ve - 1; p < e; p++) {
        unsigned char ch = (unsigned char)*p;
        char enc[4];
        size_t k = 1;
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            enc[0] = (char)ch;
        } else {
            if (++p >= e)
                return -1;
            uint32_t cp;
            switch (*p) {
            case '"': case '\\': case '/': enc[0] = *p; break;
            case 'b': enc[0] = '\b'; break;
            case 'f': enc[0] = '\f'; break;
            case 'n': enc[0] = '\n'; break;
            case 'r': enc[0] = '\r'; break;
            case 't': enc[0] = '\t'; break;
            case 'u':
                if (hex4(p + 1, e, &cp) != 0 || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                    return -1;
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate: its low one follows */
                    uint32_t lo;
                    if (e - p < 7 || p[1] != '\\' || p[2] != 'u' || hex4(p + 3, e, &lo) != 0 ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp < 0x80) {
                    enc[0] = (char)cp;
                } else if (cp < 0x800) {
                    enc[0] = (char)(0xC0 | cp >> 6);
                    enc[1] = (char)(0x80 | (cp & 0x3F));
                    k = 2;
                } else if (cp < 0x10000) {
                    enc[0] = (char)(0xE0 | cp >> 12);
                    enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[2] = (char)(0x80 | (cp & 0x3F));
                    k = 3;
                } else {
                    enc[0] = (char)(0xF0 | cp >> 18);
                    enc[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    enc[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[3] = (char)(0x80 | (cp & 0x3F));
                    k = 4;
                }
                break;
            default:
                return -1;
            }
        }
        if (n + k >= outlen)
            return -1;
        memcpy(out + n, enc, k);
        n += k;
    }
    out[n] = '\0';
    return 0;
}

int znode_config_parse(const char *json, size_t len, znode_config_fn fn, void *arg)
{
    const char *vs, *ve;
    if (znode_member(json, len, "config", &vs, &ve) != 0 || *vs != '{')
        return -1;
    char *key = malloc(ZNODE_CONFIG_KEY_MAX), *value = malloc(ZNODE_CONFIG_VALUE_MAX);
    GREGOR_ASSERT(key != NULL && value != NULL);
    int count = 0;
    const char *p = skip_ws(vs + 1, ve);
    while (p < ve && *p == '"') {
        const char *kend = skip_string(p, ve);
        if (kend == NULL || unescape(p, kend, key, ZNODE_CONFIG_KEY_MAX) != 0)
            goto bad;
        p = skip_ws(kend, ve);
        if (p >= ve || *p != ':')
            goto bad;
        const char *as = skip_ws(p + 1, ve);
        const char *aend = as < ve && *as == '"' ? skip_string(as, ve) : NULL;
        if (aend == NULL || unescape(as, aend, value, ZNODE_CONFIG_VALUE_MAX) != 0)
            goto bad;
        if (fn != NULL)
            fn(arg, key, value);
        count++;
        p = skip_ws(aend, ve);
        if (p < ve && *p == ',') {
            p = skip_ws(p + 1, ve);
            if (p >= ve || *p != '"')
                goto bad;
        } else {
            break;
        }
    }
    if (p >= ve || *p != '}')
        goto bad;
    free(key);
    free(value);
    return count;
bad:
    free(key);
    free(value);
    return -1;
}

struct config_map {
    int n;
    bool full;
    char *keys[ZNODE_CONFIG_KEYS_KEPT];
    char *values[ZNODE_CONFIG_KEYS_KEPT];
};

static void config_map_add(void *arg, const char *key, const char *value)
{
    struct config_map *m = arg;
    if (m->n == ZNODE_CONFIG_KEYS_KEPT) {
        m->full = true;
        return;
    }
    m->keys[m->n] = strdup(key);
    m->values[m->n] = strdup(value);
    GREGOR_ASSERT(m->keys[m->n] != NULL && m->values[m->n] != NULL);
    m->n++;
}

static void config_map_free(struct config_map *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m);
}

/* keys[j] set to values[j] in place, added at the end, or (NULL value) removed. */
static void config_map_set(struct config_map *m, const char *key, const char *value)
{
    int at = -1;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            at = i;
    if (value == NULL) {
        if (at < 0)
            return;
        free(m->keys[at]);
        free(m->values[at]);
        m->n--;
        for (int i = at; i < m->n; i++) {
            m->keys[i] = m->keys[i + 1];
            m->values[i] = m->values[i + 1];
        }
    } else if (at >= 0) {
        free(m->values[at]);
        m->values[at] = strdup(value);
        GREGOR_ASSERT(m->values[at] != NULL);
    } else {
        config_map_add(m, key, value);
    }
}

int znode_config_edit(const char *cur, size_t len, const char *const *keys,
                      const char *const *values, int n, bool drop_empty, char **out,
                      size_t *out_len)
{
    GREGOR_ASSERT(n >= 0 && (n == 0 || (keys != NULL && values != NULL)));
    struct config_map *m = calloc(1, sizeof(*m));
    GREGOR_ASSERT(m != NULL);
    if (cur != NULL && (znode_config_parse(cur, len, config_map_add, m) < 0 || m->full)) {
        config_map_free(m);
        return -1;
    }
    for (int j = 0; j < n && !m->full; j++)
        config_map_set(m, keys[j], values[j]);
    if (m->full) {
        config_map_free(m);
        return -1;
    }
    GREGOR_ASSERT(m->n >= 0 && m->n <= ZNODE_CONFIG_KEYS_KEPT);
    if (m->n == 0 && drop_empty) {
        config_map_free(m);
        *out = NULL;
        *out_len = 0;
        return 0;
    }
    size_t cap = 64;
    for (int i = 0; i < m->n; i++)
        cap += 6 * (strlen(m->keys[i]) + strlen(m->values[i])) + 8;
    char *buf = malloc(cap);
    GREGOR_ASSERT(buf != NULL);
    int w = znode_config_json(buf, cap, (const char *const *)m->keys,
                              (const char *const *)m->values, m->n);
    config_map_free(m);
    GREGOR_ASSERT(w > 0);
    *out = buf;
    *out_len = (size_t)w;
    return 0;
}

int znode_config_change_json(char *out, size_t outlen, const char *entity_type,
                             const char *entity_name)
{
    size_t n = 0;
    PUT("{\"version\":2,\"entity_path\":\"");
    if (put_escaped(out, outlen, &n, entity_type) != 0)
        return -1;
    PUT("/");
    if (put_escaped(out, outlen, &n, entity_name) != 0)
        return -1;
    PUT("\"}");
    return (int)n;
}

int znode_config_change_parse(const char *json, size_t len, char *entity_type, size_t typelen,
                              char *entity_name, size_t namelen)
{
    int64_t version;
    const char *vs, *ve;
    if (znode_int(json, len, "version", &version) != 0)
        return -1;
    if (version == 1) { /* Kafka 0.9's form */
        if (znode_member(json, len, "entity_type", &vs, &ve) != 0 ||
            unescape(vs, ve, entity_type, typelen) != 0 ||
            znode_member(json, len, "entity_name", &vs, &ve) != 0 ||
            unescape(vs, ve, entity_name, namelen) != 0)
            return -1;
        return entity_type[0] && entity_name[0] ? 0 : -1;
    }
    char path[ZNODE_CONFIG_KEY_MAX * 2];
    if (version != 2 || znode_member(json, len, "entity_path", &vs, &ve) != 0 ||
        unescape(vs, ve, path, sizeof(path)) != 0)
        return -1;
    /* "topics/t", "brokers/1", "brokers/<default>" (users/<u>/clients/<c>: the first slash) */
    const char *slash = strchr(path, '/');
    if (slash == NULL || slash == path || slash[1] == '\0' ||
        (size_t)(slash - path) >= typelen || strlen(slash + 1) >= namelen)
        return -1;
    memcpy(entity_type, path, (size_t)(slash - path));
    entity_type[slash - path] = '\0';
    snprintf(entity_name, namelen, "%s", slash + 1);
    return 0;
}

/* ---- /latest_producer_id_block ---- */

int znode_producer_id_block_json(char *out, size_t outlen, int32_t broker, int64_t start,
                                 int64_t end)
{
    GREGOR_ASSERT(broker >= 0 && start >= 0 && start <= end);
    size_t n = 0;
    PUT("{\"version\":1,\"broker\":%d,\"block_start\":\"%" PRId64 "\",\"block_end\":\"%" PRId64
        "\"}", broker, start, end);
    return (int)n;
}

/* A member that is a decimal string ("123"), as Kafka writes the block's ends. */
static int string_int(const char *json, size_t len, const char *key, int64_t *out)
{
    const char *vs, *ve;
    if (znode_member(json, len, key, &vs, &ve) != 0 || *vs != '"' || ve - vs < 3)
        return -1;
    return parse_int(vs + 1, ve - 1, out);
}

int znode_producer_id_block_parse(const char *json, size_t len, int32_t *broker,
                                  int64_t *start, int64_t *end)
{
    int64_t b, s, e;
    if (znode_int(json, len, "broker", &b) != 0 || b < 0 || b > INT32_MAX ||
        string_int(json, len, "block_start", &s) != 0 ||
        string_int(json, len, "block_end", &e) != 0 || s < 0 || e < s)
        return -1;
    *broker = (int32_t)b;
    *start = s;
    *end = e;
    return 0;
}

/* ---- ACLs: /kafka-acl[-extended/prefixed]/<Type>/<name>, /kafka-acl[-extended]-changes ---- */

int znode_acl_json(char *out, size_t outlen, const struct znode_acl *acls, int count)
{
    size_t n = 0;
    PUT("{\"version\":1,\"acls\":[");
    for (int i = 0; i < count; i++) {
        PUT("%s{\"principal\":\"", i ? "," : "");
        if (put_escaped(out, outlen, &n, acls[i].principal) != 0)
            return -1;
        PUT("\",\"permissionType\":\"");
        if (put_escaped(out, outlen, &n, acls[i].permission) != 0)
            return -1;
        PUT("\",\"operation\":\"");
        if (put_escaped(out, outlen, &n, acls[i].operation) != 0)
            return -1;
        PUT("\",\"host\":\"");
        if (put_escaped(out, outlen, &n, acls[i].host) != 0)
            return -1;
        PUT("\"}");
    }
    PUT("]}");
    return (int)n;
}

/* One string member of the object [os, oe), unescaped; -1 when absent or not a string. */
static int member_unescaped(const char *os, const char *oe, const char *key, char *out,
                            size_t outlen)
{
    const char *vs, *ve;
    if (znode_member(os, (size_t)(oe - os), key, &vs, &ve) != 0 || *vs != '"')
        return -1;
    return unescape(vs, ve, out, outlen);
}

int znode_acl_parse(const char *json, size_t len, znode_acl_fn fn, void *arg)
{
    const char *vs, *ve;
    int64_t version;
    if (znode_int(json, len, "version", &version) != 0 || version != 1 ||
        znode_member(json, len, "acls", &vs, &ve) != 0 || *vs != '[')
        return -1;
    char *buf = malloc(4 * ZNODE_ACL_STRING_MAX);
    GREGOR_ASSERT(buf != NULL);
    char *principal = buf, *perm = buf + ZNODE_ACL_STRING_MAX,
         *op = buf + 2 * ZNODE_ACL_STRING_MAX, *host = buf + 3 * ZNODE_ACL_STRING_MAX;
    int count = 0;
    const char *p = skip_ws(vs + 1, ve);
    while (p < ve && *p == '{') {
        const char *oe = skip_value(p, ve);
        if (oe == NULL || member_unescaped(p, oe, "principal", principal, ZNODE_ACL_STRING_MAX) ||
            member_unescaped(p, oe, "permissionType", perm, ZNODE_ACL_STRING_MAX) ||
            member_unescaped(p, oe, "operation", op, ZNODE_ACL_STRING_MAX) ||
            member_unescaped(p, oe, "host", host, ZNODE_ACL_STRING_MAX))
            goto bad;
        if (fn != NULL)
            fn(arg, principal, perm, op, host);
        count++;
        p = skip_ws(oe, ve);
        if (p < ve && *p == ',') {
            p = skip_ws(p + 1, ve);
            if (p >= ve || *p != '{')
                goto bad;
        } else {
            break;
        }
    }
    if (p >= ve || *p != ']')
        goto bad;
    free(buf);
    return count;
bad:
    free(buf);
    return -1;
}

int znode_acl_change_json(char *out, size_t outlen, const char *resource_type,
                          const char *name, const char *pattern_type)
{
    size_t n = 0;
    PUT("{\"version\":1,\"resourceType\":\"");
    if (put_escaped(out, outlen, &n, resource_type) != 0)
        return -1;
    PUT("\",\"name\":\"");
    if (put_escaped(out, outlen, &n, name) != 0)
        return -1;
    PUT("\",\"patternType\":\"");
    if (put_escaped(out, outlen, &n, pattern_type) != 0)
        return -1;
    PUT("\"}");
    return (int)n;
}

int znode_acl_change_parse(const char *json, size_t len, char *resource_type, size_t typelen,
                           char *name, size_t namelen, char *pattern_type, size_t patlen)
{
    int64_t version;
    if (znode_int(json, len, "version", &version) != 0 || version != 1 ||
        member_unescaped(json, json + len, "resourceType", resource_type, typelen) != 0 ||
        member_unescaped(json, json + len, "name", name, namelen) != 0 ||
        member_unescaped(json, json + len, "patternType", pattern_type, patlen) != 0)
        return -1;
    return 0;
}

/* Kafka's Sanitizer: URLEncoder's form (letters, digits, ".-_" kept; others %XX of their
 * UTF-8 bytes), with "*" as %2A and a space as %20. */
int znode_sanitize(const char *name, char *out, size_t outlen)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
        if (n + (keep ? 1 : 3) >= outlen)
            return -1;
        if (keep)
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, outlen - n, "%%%02X", *p);
    }
    out[n] = '\0';
    return 0;
}

int znode_desanitize(const char *name, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        if (ch == '%') {
            uint32_t v;
            char hex[4] = {'0', '0', 0, 0};
            if (p[1] == '\0' || p[2] == '\0')
                return -1;
            hex[2] = p[1];
            hex[3] = p[2];
            if (hex4(hex, hex + 4, &v) != 0 || v == 0)
                return -1;
            ch = (char)v;
            p += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (n + 1 >= outlen)
            return -1;
        out[n++] = ch;
    }
    out[n] = '\0';
    return 0;
}
#undef PUT
