/* logdir: a log directory as a whole. Text files in Kafka's formats (meta.properties, offset
 * checkpoints, partition.metadata, .kafka_cleanshutdown) plus gregor's own topic store, all
 * replaced atomically (tmp, fsync, rename, fsync dir) through the file seam. */
#include "log/logdir.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/logging.h"
#include "common/util.h"
#include "log/fileio.h"

#define LOGDIR_WHO "LogManager"
#define META_MAX_BYTES 65536
#define CHECKPOINT_MAX_BYTES (256u << 20)
#define TOPIC_STORE_MAX_BYTES (64u << 20)
#define TOPIC_STORE_MAX_CONFIGS 256

struct checkpoint {
    struct logdir_offset *v; /* sorted by (topic, partition) */
    int n;
};

struct logdir {
    char *path;
    char cluster_id[64];
    char directory_id[23];
    int32_t node_id;
    int lock_fd;
    bool was_clean;
    struct checkpoint recovery;
    struct checkpoint log_start;
    struct checkpoint high_watermark;
};

static const char *CHECKPOINT_RECOVERY = "recovery-point-offset-checkpoint";
static const char *CHECKPOINT_LOG_START = "log-start-offset-checkpoint";
static const char *CHECKPOINT_HW = "replication-offset-checkpoint";
static const char *CLEAN_SHUTDOWN = ".kafka_cleanshutdown";

/* ---- base64url UUIDs ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void uuid_to_base64url(const uint8_t id[16], char out[23])
{
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        if (i + 1 < 16)
            v |= (uint32_t)id[i + 1] << 8;
        if (i + 2 < 16)
            v |= id[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < 16)
            out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < 16)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

static int b64url_value(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p == NULL ? -1 : (int)(p - b64url);
}

int uuid_from_base64url(const char *s, uint8_t id[16])
{
    if (strlen(s) != 22)
        return -1;
    uint8_t out[18];
    int o = 0;
    for (int i = 0; i < 22; i += 4) {
        int n = 22 - i < 4 ? 22 - i : 4;
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            int c = k < n ? b64url_value(s[i + k]) : 0;
            if (c < 0)
                return -1;
            v = (v << 6) | (uint32_t)c;
        }
        out[o++] = (uint8_t)(v >> 16);
        if (n > 2)
            out[o++] = (uint8_t)(v >> 8);
        if (n > 3)
            out[o++] = (uint8_t)v;
    }
    GREGOR_ASSERT(o == 16);
    /* The last char carries 2 bits of data: the 4 padding bits must be zero (canonical form). */
    if (b64url_value(s[21]) & 0x0f)
        return -1;
    memcpy(id, out, 16);
    return 0;
}

/* A random UUID as Kafka's Uuid.randomUuid: version 4, and never shown with a leading '-'. */
static void random_uuid(uint8_t id[16], char out[23])
{
    do {
        if (getrandom(id, 16, 0) != 16) {
            uint64_t a = (uint64_t)now_ms() ^ ((uint64_t)mono_us() << 20), b = (uint64_t)(uintptr_t)id;
            be64_put(id, a * 0x9E3779B97F4A7C15ull);
            be64_put(id + 8, (b ^ a) * 0xC2B2AE3D27D4EB4Full);
        }
        id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
        id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
        uuid_to_base64url(id, out);
    } while (out[0] == '-');
}

/* ---- small text helpers ---- */

static char *path_join(const char *dir, const char *name, char *buf, size_t n)
{
    if (snprintf(buf, n, "%s/%s", dir, name) >= (int)n)
        return NULL;
    return buf;
}

static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (*s == '\0')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* ---- checkpoints ---- */

static int cmp_cp(const void *a, const void *b)
{
    const struct logdir_offset *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c != 0)
        return c;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static void checkpoint_free(struct checkpoint *cp)
{
    logdir_offsets_free(cp->v, cp->n);
    cp->v = NULL;
    cp->n = 0;
}

/* A text file's bytes as a C string; NULL with *why for an embedded NUL (no text file holds
 * one, and a string cut there would silently drop what follows). */
static char *text_copy(const char *text, size_t len, const char **why)
{
    if (memchr(text, '\0', len) != NULL) {
        *why = "a NUL byte in a text file";
        return NULL;
    }
    char *s = malloc(len + 1);
    if (s == NULL) {
        *why = "out of memory";
        return NULL;
    }
    memcpy(s, text, len);
    s[len] = '\0';
    return s;
}

void logdir_offsets_free(struct logdir_offset *v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i].topic);
    free(v);
}

int logdir_offsets_parse(const char *bytes, size_t len, struct logdir_offset **out, int *n,
                         const char **why)
{
    *out = NULL;
    *n = 0;
    *why = NULL;
    char *text = text_copy(bytes, len, why);
    if (text == NULL)
        return -1;
    struct logdir_offset *v = NULL;
    int got = 0;
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    int64_t version = -1, count = -1;
    const char *err = NULL;
    if (line == NULL || !parse_i64(trim(line), &version) || version != 0)
        err = "unsupported version";
    else if ((line = strtok_r(NULL, "\n", &save)) == NULL || !parse_i64(trim(line), &count) ||
             count < 0 || count > ((int64_t)len + 1) / 6)
        err = "bad entry count"; /* each entry takes 6 bytes at least ("t 0 0\n") */
    if (err == NULL && count > 0) {
        v = calloc((size_t)count, sizeof(*v));
        if (v == NULL)
            err = "out of memory";
    }
    while (err == NULL && (line = strtok_r(NULL, "\n", &save)) != NULL) {
        line = trim(line);
        if (*line == '\0')
            continue;
        char *fs = NULL;
        char *t = strtok_r(line, " \t", &fs), *ps = strtok_r(NULL, " \t", &fs),
             *os = strtok_r(NULL, " \t", &fs);
        int64_t part, off;
        if (t == NULL || ps == NULL || os == NULL || strtok_r(NULL, " \t", &fs) != NULL ||
            !parse_i64(ps, &part) || part < 0 || part > INT32_MAX || !parse_i64(os, &off)) {
            err = "malformed entry";
            break;
        }
        if (got >= count) {
            err = "more entries than the count says";
            break;
        }
        v[got].topic = strdup(t);
        if (v[got].topic == NULL) {
            err = "out of memory";
            break;
        }
        v[got].partition = (int32_t)part;
        v[got].offset = off;
        got++;
    }
    if (err == NULL && got != count)
        err = "fewer entries than the count says";
    free(text);
    if (err != NULL) {
        *why = err;
        logdir_offsets_free(v, got);
        return -1;
    }
    *out = v;
    *n = got;
    return 0;
}

/* Reads "0\n<count>\n<topic> <partition> <offset>\n...". A missing file is empty; a corrupt
 * one is logged and treated as empty (every partition then recovers fully). */
static void checkpoint_read(const char *dir, const char *name, struct checkpoint *cp)
{
    cp->v = NULL;
    cp->n = 0;
    char p[PATH_MAX], *text;
    size_t len;
    if (path_join(dir, name, p, sizeof(p)) == NULL)
        return;
    if (fio_read_file(p, CHECKPOINT_MAX_BYTES, &text, &len) < 0) {
        if (errno != ENOENT)
            LOG_WARN(LOGDIR_WHO, "Could not read %s: %s", p, strerror(errno));
        return;
    }
    const char *why;
    int rc = logdir_offsets_parse(text, len, &cp->v, &cp->n, &why);
    free(text);
    if (rc < 0) {
        LOG_WARN(LOGDIR_WHO, "Ignoring corrupt checkpoint file %s: %s", p, why);
        return;
    }
    if (cp->n > 0)
        qsort(cp->v, (size_t)cp->n, sizeof(*cp->v), cmp_cp);
}

static int64_t checkpoint_get(const struct checkpoint *cp, const char *topic, int32_t partition)
{
    if (cp->n == 0)
        return -1;
    struct logdir_offset key = {(char *)topic, partition, 0};
    const struct logdir_offset *v = bsearch(&key, cp->v, (size_t)cp->n, sizeof(*cp->v), cmp_cp);
    return v == NULL ? -1 : v->offset;
}

/* Writes one checkpoint file from entries; which: 0 recovery, 1 log start, 2 high watermark. */
static int checkpoint_write(const struct logdir *d, const char *name,
                            const struct logdir_checkpoint_entry *e, int n, int which)
{
    size_t cap = 64, len = 0;
    for (int i = 0; i < n; i++)
        cap += strlen(e[i].topic) + 48;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (which != 1 || e[i].log_start_offset > 0)
            count++;
    len += (size_t)snprintf(buf + len, cap - len, "0\n%d\n", count);
    for (int i = 0; i < n; i++) {
        int64_t v = which == 0 ? e[i].recovery_point : which == 1 ? e[i].log_start_offset : e[i].high_watermark;
        if (which == 1 && e[i].log_start_offset <= 0)
            continue;
        len += (size_t)snprintf(buf + len, cap - len, "%s %d %" PRId64 "\n", e[i].topic, e[i].partition, v);
    }
    char p[PATH_MAX];
    int rc = -1;
    if (path_join(d->path, name, p, sizeof(p)) != NULL)
        rc = fio_write_file_atomic(p, buf, len);
    if (rc < 0)
        LOG_ERROR(LOGDIR_WHO, "Error while writing %s/%s: %s", d->path, name, strerror(errno));
    free(buf);
    return rc;
}

int logdir_write_checkpoints(struct logdir *d, const struct logdir_checkpoint_entry *e, int n)
{
    int rc = 0;
    if (checkpoint_write(d, CHECKPOINT_RECOVERY, e, n, 0) < 0)
        rc = -1;
    if (checkpoint_write(d, CHECKPOINT_LOG_START, e, n, 1) < 0)
        rc = -1;
    if (checkpoint_write(d, CHECKPOINT_HW, e, n, 2) < 0)
        rc = -1;
    return rc;
}

int logdir_write_hw_checkpoint(struct logdir *d, const struct logdir_checkpoint_entry *e, int n)
{
    return checkpoint_write(d, CHECKPOINT_HW, e, n, 2);
}

int64_t logdir_recovery_point(const struct logdir *d, const char *topic, int32_t partition)
{
    return checkpoint_get(&d->recovery, topic, partition);
}

int64_t logdir_log_start_offset(const struct logdir *d, const char *topic, int32_t partition)
{
    return checkpoint_get(&d->log_start, topic, partition);
}

int64_t logdir_high_watermark(const struct logdir *d, const char *topic, int32_t partition)
{
    return checkpoint_get(&d->high_watermark, topic, partition);
}

/* ---- meta.properties ---- */

static bool zero_uuid(const uint8_t id[16])
{
    static const uint8_t zero[16];
    return memcmp(id, zero, 16) == 0;
}

int logdir_meta_parse(const char *bytes, size_t len, struct logdir_meta *m, const char **why)
{
    memset(m, 0, sizeof(*m));
    m->version = -1;
    m->node_id = -1;
    *why = NULL;
    char *text = text_copy(bytes, len, why);
    if (text == NULL)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL && *why == NULL;
         line = strtok_r(NULL, "\n", &save)) {
        line = trim(line);
        if (*line == '#' || *line == '!' || *line == '\0')
            continue;
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *k = trim(line), *v = trim(eq + 1);
        bool number = strcmp(k, "version") == 0 || strcmp(k, "node.id") == 0 || strcmp(k, "broker.id") == 0;
        int64_t n;
        /* As Kafka's MetaProperties: a number that does not parse is an error, not absent
         * (absent, gregor would write its configured node.id over the damaged one). */
        if (number && (!parse_i64(v, &n) || n < 0 || n > INT32_MAX))
            *why = strcmp(k, "version") == 0 ? "version is not a number" : "node.id is not a number";
        else if (strcmp(k, "version") == 0)
            m->version = n;
        else if (number)
            m->node_id = n;
        else if (strcmp(k, "cluster.id") == 0)
            snprintf(m->cluster_id, sizeof(m->cluster_id), "%s", v);
        else if (strcmp(k, "directory.id") == 0)
            snprintf(m->directory_id, sizeof(m->directory_id), "%s", v);
    }
    free(text);
    uint8_t id[16];
    if (*why == NULL && m->directory_id[0] != '\0' && uuid_from_base64url(m->directory_id, id) < 0)
        *why = "directory.id is not a base64url UUID";
    return *why == NULL ? 0 : -1;
}

static int meta_read(const char *path, struct logdir_meta *m, bool *exists)
{
    memset(m, 0, sizeof(*m));
    m->version = -1;
    m->node_id = -1;
    char *text;
    size_t len;
    *exists = false;
    if (fio_read_file(path, META_MAX_BYTES, &text, &len) < 0) {
        if (errno == ENOENT)
            return 0;
        LOG_ERROR(LOGDIR_WHO, "Could not read %s: %s", path, strerror(errno));
        return -1;
    }
    *exists = true;
    const char *why;
    int rc = logdir_meta_parse(text, len, m, &why);
    free(text);
    if (rc < 0)
        LOG_ERROR(LOGDIR_WHO, "Malformed %s: %s", path, why);
    return rc;
}

static int meta_write(const char *path, const char *cluster_id, int32_t node_id, const char *dir_id)
{
    char date[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a %b %d %H:%M:%S UTC %Y", &tm);
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "#\n#%s\ncluster.id=%s\ndirectory.id=%s\nnode.id=%d\nversion=1\n", date,
                     cluster_id, dir_id, node_id);
    return fio_write_file_atomic(path, buf, (size_t)n);
}

static bool valid_cluster_id(const char *s)
{
    if (*s == '\0' || strlen(s) > 63)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

static int logdir_meta(struct logdir *d, const char *cluster_id)
{
    char p[PATH_MAX];
    if (path_join(d->path, "meta.properties", p, sizeof(p)) == NULL)
        return -1;
    struct logdir_meta m;
    bool exists;
    if (meta_read(p, &m, &exists) < 0)
        return -1;
    if (exists) {
        if (m.version != 0 && m.version != 1) {
            LOG_ERROR(LOGDIR_WHO, "Unsupported version %" PRId64 " in %s", m.version, p);
            return -1;
        }
        if (m.node_id != -1 && m.node_id != d->node_id) {
            LOG_ERROR(LOGDIR_WHO, "Stored node id %" PRId64 " in %s doesn't match the configured node.id %d",
                      m.node_id, p, d->node_id);
            return -1;
        }
        if (cluster_id != NULL && m.cluster_id[0] != '\0' && strcmp(cluster_id, m.cluster_id) != 0) {
            LOG_ERROR(LOGDIR_WHO, "The Cluster ID %s doesn't match stored clusterId %s in %s",
                      cluster_id, m.cluster_id, p);
            return -1;
        }
        if (m.cluster_id[0] != '\0' && !valid_cluster_id(m.cluster_id)) {
            LOG_ERROR(LOGDIR_WHO, "Invalid cluster.id '%s' in %s", m.cluster_id, p);
            return -1;
        }
    }
    const char *cid = m.cluster_id[0] ? m.cluster_id : cluster_id;
    uint8_t raw[16];
    char gen[23];
    if (cid == NULL) {
        random_uuid(raw, gen);
        cid = gen;
    }
    snprintf(d->cluster_id, sizeof(d->cluster_id), "%s", cid);
    if (m.directory_id[0] != '\0')
        memcpy(d->directory_id, m.directory_id, sizeof(d->directory_id)); /* 22 chars + NUL */
    else
        random_uuid(raw, d->directory_id);
    bool rewrite = !exists || m.version != 1 || m.cluster_id[0] == '\0' || m.directory_id[0] == '\0' ||
                   m.node_id == -1;
    if (rewrite && meta_write(p, d->cluster_id, d->node_id, d->directory_id) < 0) {
        LOG_ERROR(LOGDIR_WHO, "Could not write %s: %s", p, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- open / close ---- */

static int mkdir_p(const char *path)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (fio_mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (fio_mkdir(p, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void logdir_free(struct logdir *d)
{
    if (d->lock_fd >= 0)
        fio_close(d->lock_fd);
    checkpoint_free(&d->recovery);
    checkpoint_free(&d->log_start);
    checkpoint_free(&d->high_watermark);
    free(d->path);
    free(d);
}

/* A brand-new directory: nothing in it but the lock file gregor just made (no meta.properties,
 * no partitions), so nothing to recover and no shutdown to call unclean. */
static bool dir_is_new(const char *path)
{
    DIR *dir = fio_opendir(path);
    if (dir == NULL)
        return false;
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            strcmp(e->d_name, ".lock") != 0)
            empty = false;
    closedir(dir);
    return empty;
}

int logdir_open(const char *path, int32_t node_id, const char *cluster_id, struct logdir **out)
{
    *out = NULL;
    if (cluster_id != NULL && !valid_cluster_id(cluster_id)) {
        LOG_ERROR(LOGDIR_WHO, "Invalid cluster id '%s'", cluster_id);
        return -1;
    }
    struct logdir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -1;
    d->lock_fd = -1;
    d->node_id = node_id;
    d->path = strdup(path);
    if (d->path == NULL || mkdir_p(path) < 0) {
        LOG_ERROR(LOGDIR_WHO, "Could not create log dir %s: %s", path, strerror(errno));
        logdir_free(d);
        return -1;
    }
    char p[PATH_MAX];
    if (path_join(path, ".lock", p, sizeof(p)) == NULL ||
        (d->lock_fd = fio_open(p, O_RDWR | O_CREAT, 0644)) < 0) {
        LOG_ERROR(LOGDIR_WHO, "Could not open %s/.lock: %s", path, strerror(errno));
        logdir_free(d);
        return -1;
    }
    if (fio_lock(d->lock_fd) < 0) {
        LOG_ERROR(LOGDIR_WHO, "Failed to acquire lock on file .lock in %s. A Kafka instance in another "
                  "process or thread is using this directory. (%s)", path, strerror(errno));
        logdir_free(d);
        return -1;
    }
    struct stat st;
    bool fresh = dir_is_new(path);
    if (logdir_meta(d, cluster_id) < 0) {
        logdir_free(d);
        return -1;
    }
    if (path_join(path, CLEAN_SHUTDOWN, p, sizeof(p)) != NULL && fio_stat(p, &st) == 0) {
        d->was_clean = true;
        if (fio_unlink(p) < 0 || fio_fsync_dir(path) < 0) {
            LOG_ERROR(LOGDIR_WHO, "Could not remove %s: %s", p, strerror(errno));
            logdir_free(d);
            return -1;
        }
    }
    if (fresh)
        d->was_clean = true;
    checkpoint_read(path, CHECKPOINT_RECOVERY, &d->recovery);
    checkpoint_read(path, CHECKPOINT_LOG_START, &d->log_start);
    checkpoint_read(path, CHECKPOINT_HW, &d->high_watermark);
    LOG_INFO(LOGDIR_WHO, "Opened log dir %s (cluster.id=%s, directory.id=%s, %s)", path,
             d->cluster_id, d->directory_id,
             fresh ? "new" : d->was_clean ? "clean shutdown" : "unclean shutdown");
    *out = d;
    return 0;
}

const char *logdir_path(const struct logdir *d) { return d->path; }
const char *logdir_cluster_id(const struct logdir *d) { return d->cluster_id; }
const char *logdir_directory_id(const struct logdir *d) { return d->directory_id; }
bool logdir_was_clean(const struct logdir *d) { return d->was_clean; }

void logdir_close(struct logdir *d, bool clean)
{
    if (d == NULL)
        return;
    if (clean) {
        char p[PATH_MAX];
        const char *marker = "{\"version\":0,\"brokerEpoch\":-1}";
        if (path_join(d->path, CLEAN_SHUTDOWN, p, sizeof(p)) == NULL ||
            fio_write_file_atomic(p, marker, strlen(marker)) < 0)
            LOG_ERROR(LOGDIR_WHO, "Could not write the clean shutdown marker in %s: %s", d->path,
                      strerror(errno));
    }
    logdir_free(d);
}

/* ---- partition directories ---- */

static bool valid_topic_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* "<topic>-<partition>" with a legal topic name; returns the partition or -1. */
static int32_t parse_partition_dir(const char *name, char *topic, size_t topic_cap)
{
    size_t n = strlen(name);
    const char *dash = strrchr(name, '-');
    if (dash == NULL || dash == name || dash[1] == '\0')
        return -1;
    int64_t part = 0;
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || part > INT32_MAX / 10)
            return -1;
        part = part * 10 + (*p - '0');
    }
    if (part > INT32_MAX)
        return -1;
    size_t tl = (size_t)(dash - name);
    if (tl > 249 || tl >= topic_cap || n > 255)
        return -1;
    for (size_t i = 0; i < tl; i++)
        if (!valid_topic_char(name[i]))
            return -1;
    memcpy(topic, name, tl);
    topic[tl] = '\0';
    if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
        return -1;
    return (int32_t)part;
}

int logdir_scan(struct logdir *d, logdir_partition_cb cb, void *arg)
{
    DIR *dir = fio_opendir(d->path);
    if (dir == NULL) {
        LOG_ERROR(LOGDIR_WHO, "Could not list %s: %s", d->path, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        const char *name = e->d_name;
        size_t n = strlen(name);
        if (name[0] == '.' || (n > 7 && (strcmp(name + n - 7, "-delete") == 0 ||
                                          strcmp(name + n - 7, "-future") == 0)) ||
            (n > 6 && strcmp(name + n - 6, "-stray") == 0))
            continue;
        char topic[256];
        int32_t part = parse_partition_dir(name, topic, sizeof(topic));
        if (part < 0)
            continue;
        char p[PATH_MAX];
        struct stat st;
        if (path_join(d->path, name, p, sizeof(p)) == NULL || fio_stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        cb(arg, topic, part, p);
    }
    closedir(dir);
    return 0;
}

/* Kafka's UnifiedLog.logDeleteDirName: "<topic>-<partition>.<uuid without dashes>-delete",
 * the topic cut so that the name stays within 255 bytes. */
int logdir_delete_dir_name(const struct logdir *d, const char *topic, int32_t partition,
                           char *out, size_t outlen)
{
    uint8_t id[16];
    char b64[23], hex[33];
    random_uuid(id, b64);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    char tail[64];
    int tl = snprintf(tail, sizeof(tail), "-%d.%s-delete", partition, hex);
    int keep = (int)strlen(topic);
    if (keep > 255 - tl)
        keep = 255 - tl;
    int n = snprintf(out, outlen, "%s/%.*s%s", d->path, keep, topic, tail);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static bool is_deleted_dir_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 7 && strcmp(name + n - 7, "-delete") == 0;
}

int logdir_remove_deleted(struct logdir *d)
{
    DIR *dir = fio_opendir(d->path);
    if (dir == NULL)
        return -1;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char p[PATH_MAX];
        struct stat st;
        if (!is_deleted_dir_name(e->d_name) ||
            path_join(d->path, e->d_name, p, sizeof(p)) == NULL || fio_stat(p, &st) < 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        if (fio_remove_dir(p) < 0)
            LOG_ERROR(LOGDIR_WHO, "Could not delete %s: %s", p, strerror(errno));
        else
            removed++;
    }
    closedir(dir);
    return removed;
}

/* ---- partition.metadata ---- */

int partition_metadata_write(const char *dir_path, const uint8_t topic_id[16])
{
    char id[23], buf[64], p[PATH_MAX];
    uuid_to_base64url(topic_id, id);
    int n = snprintf(buf, sizeof(buf), "version: 0\ntopic_id: %s\n", id);
    if (path_join(dir_path, "partition.metadata", p, sizeof(p)) == NULL)
        return -1;
    if (fio_write_file_atomic(p, buf, (size_t)n) < 0) {
        LOG_ERROR(LOGDIR_WHO, "Could not write %s: %s", p, strerror(errno));
        return -1;
    }
    return 0;
}

int partition_metadata_parse(const char *bytes, size_t len, uint8_t topic_id[16], const char **why)
{
    *why = NULL;
    char *text = text_copy(bytes, len, why);
    if (text == NULL)
        return -1;
    bool version_ok = false, id_ok = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        char *k = trim(line), *v = trim(colon + 1);
        if (strcmp(k, "version") == 0)
            version_ok = strcmp(v, "0") == 0;
        else if (strcmp(k, "topic_id") == 0)
            id_ok = uuid_from_base64url(v, topic_id) == 0 && !zero_uuid(topic_id);
    }
    free(text);
    if (!version_ok)
        *why = "no \"version: 0\" line";
    else if (!id_ok)
        *why = "no topic_id line with a non-zero base64url UUID"; /* Kafka: Invalid topic ID */
    return *why == NULL ? 0 : -1;
}

int partition_metadata_read(const char *dir_path, uint8_t topic_id[16])
{
    char p[PATH_MAX], *text;
    size_t len;
    if (path_join(dir_path, "partition.metadata", p, sizeof(p)) == NULL ||
        fio_read_file(p, 4096, &text, &len) < 0)
        return -1;
    const char *why;
    int rc = partition_metadata_parse(text, len, topic_id, &why);
    free(text);
    if (rc < 0)
        LOG_WARN(LOGDIR_WHO, "Malformed %s: %s", p, why);
    return rc;
}

/* ---- gregor-topics ---- */

/* Percent-encodes anything but printable ASCII other than space, '%' and (in keys) '='. */
static size_t pct_encode(char *out, const char *s, bool key)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '%' || (key && *p == '=')) {
            o += (size_t)sprintf(out + o, "%%%02X", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return o;
}

/* A token of the line decoded in place (common/util's pct_decode_inplace: a bad escape or %00
 * refused), then copied to out when it fits (cap counts the NUL). 0, or -1. */
static int pct_decode(char *out, size_t cap, char *s)
{
    long n = pct_decode_inplace(s);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    memcpy(out, s, (size_t)n + 1);
    return 0;
}

void topic_store_free(struct topic_record *recs, int n)
{
    if (recs == NULL)
        return;
    for (int i = 0; i < n; i++) {
        free(recs[i].config_keys);
        free(recs[i].config_values);
    }
    free(recs);
}

/* Kafka's Topic.validate: 1..249 of [a-zA-Z0-9._-], not "." or "..". The store names
 * directories, so a name that is not one could reach outside the log dir ("%2F.."). */
static bool legal_topic_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (!valid_topic_char(*s))
            return false;
    return true;
}

static int topic_line_parse(char *line, struct topic_record *r, const char **why)
{
    memset(r, 0, sizeof(*r));
    char *save = NULL;
    char *name = strtok_r(line, " ", &save), *parts = strtok_r(NULL, " ", &save),
         *id = strtok_r(NULL, " ", &save);
    int64_t np;
    *why = "not \"<name> <partitions> <topic-id>\"";
    if (name == NULL || parts == NULL || id == NULL)
        return -1;
    *why = "not a legal topic name";
    if (pct_decode(r->name, sizeof(r->name), name) < 0 || !legal_topic_name(r->name))
        return -1;
    *why = "partition count out of range";
    if (!parse_i64(parts, &np) || np < 1 || np > TOPIC_STORE_MAX_PARTITIONS)
        return -1;
    *why = "topic id not a non-zero base64url UUID";
    if (uuid_from_base64url(id, r->topic_id) < 0 || zero_uuid(r->topic_id))
        return -1;
    r->partitions = (int32_t)np;
    char *kv;
    while ((kv = strtok_r(NULL, " ", &save)) != NULL) {
        if (strcmp(kv, "deleting") == 0) {
            r->deleting = true;
            continue;
        }
        char *eq = strchr(kv, '=');
        *why = "a config not key=value, or too many";
        if (eq == NULL || r->nconfigs >= TOPIC_STORE_MAX_CONFIGS)
            return -1;
        *eq = '\0';
        if (r->config_keys == NULL) {
            r->config_keys = calloc(TOPIC_STORE_MAX_CONFIGS, sizeof(*r->config_keys));
            r->config_values = calloc(TOPIC_STORE_MAX_CONFIGS, sizeof(*r->config_values));
            *why = "out of memory";
            if (r->config_keys == NULL || r->config_values == NULL)
                return -1;
        }
        *why = "a config key or value too long or badly %-encoded";
        if (pct_decode(r->config_keys[r->nconfigs], sizeof(r->config_keys[0]), kv) < 0 ||
            pct_decode(r->config_values[r->nconfigs], sizeof(r->config_values[0]), eq + 1) < 0)
            return -1;
        r->nconfigs++;
    }
    *why = NULL;
    return 0;
}

int topic_store_parse(const char *bytes, size_t len, struct topic_record **out, int *n,
                      int *bad_line, const char **why)
{
    *out = NULL;
    *n = 0;
    *bad_line = 0;
    *why = NULL;
    char *text = text_copy(bytes, len, why);
    if (text == NULL)
        return -1;
    struct topic_record *recs = NULL;
    int count = 0, cap = 0, lineno = 0;
    /* Lines counted by hand: strtok_r would skip empty ones and misnumber the rest. */
    for (char *line = text, *next; line != NULL && *why == NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        line = trim(line);
        if (*line == '\0' || *line == '#')
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            struct topic_record *nr = realloc(recs, (size_t)cap * sizeof(*nr));
            if (nr == NULL) {
                *why = "out of memory";
                break;
            }
            recs = nr;
        }
        if (topic_line_parse(line, &recs[count], why) < 0) {
            free(recs[count].config_keys);
            free(recs[count].config_values);
            *bad_line = lineno;
            break;
        }
        count++;
    }
    free(text);
    if (*why != NULL) {
        topic_store_free(recs, count);
        return -1;
    }
    *out = recs;
    *n = count;
    return 0;
}

int topic_store_load(const struct logdir *d, struct topic_record **out, int *n)
{
    *out = NULL;
    *n = 0;
    char p[PATH_MAX], *text;
    size_t len;
    if (path_join(d->path, "gregor-topics", p, sizeof(p)) == NULL)
        return -1;
    if (fio_read_file(p, TOPIC_STORE_MAX_BYTES, &text, &len) < 0) {
        if (errno == ENOENT)
            return 0;
        LOG_ERROR(LOGDIR_WHO, "Could not read %s: %s", p, strerror(errno));
        return -1;
    }
    int bad_line;
    const char *why;
    int rc = topic_store_parse(text, len, out, n, &bad_line, &why);
    free(text);
    if (rc < 0)
        LOG_ERROR(LOGDIR_WHO, "Malformed line %d in %s: %s", bad_line, p, why);
    return rc;
}

int topic_store_save(const struct logdir *d, const struct topic_record *recs, int n)
{
    static const char header[] =
        "# gregor topic store v1: <name> <partitions> <topic-id> [deleting] [key=value ...] "
        "(%-encoded)\n";
    size_t cap = sizeof(header);
    for (int i = 0; i < n; i++) {
        cap += 3 * strlen(recs[i].name) + 80;
        for (int k = 0; k < recs[i].nconfigs; k++)
            cap += 3 * (strlen(recs[i].config_keys[k]) + strlen(recs[i].config_values[k])) + 4;
    }
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    size_t len = (size_t)sprintf(buf, "%s", header);
    for (int i = 0; i < n; i++) {
        char id[23];
        uuid_to_base64url(recs[i].topic_id, id);
        len += pct_encode(buf + len, recs[i].name, false);
        len += (size_t)sprintf(buf + len, " %d %s%s", recs[i].partitions, id,
                               recs[i].deleting ? " deleting" : "");
        for (int k = 0; k < recs[i].nconfigs; k++) {
            buf[len++] = ' ';
            len += pct_encode(buf + len, recs[i].config_keys[k], true);
            buf[len++] = '=';
            len += pct_encode(buf + len, recs[i].config_values[k], false);
        }
        buf[len++] = '\n';
    }
    GREGOR_ASSERT(len < cap);
    char p[PATH_MAX];
    int rc = -1;
    if (path_join(d->path, "gregor-topics", p, sizeof(p)) != NULL)
        rc = fio_write_file_atomic(p, buf, len);
    if (rc < 0)
        LOG_ERROR(LOGDIR_WHO, "Could not write %s/gregor-topics: %s", d->path, strerror(errno));
    free(buf);
    return rc;
}

