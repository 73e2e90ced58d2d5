/* topics: the registry of topics and their partitions — creation, deletion, configs, and
 * loading what the log dirs hold at startup. Persists through log/logdir's topic store. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "broker/broker.h"
#include "broker/config_catalog.h"
#include "broker/handlers.h"
#include "broker/iowork.h"
#include "broker/log_cleaner.h"
#include "broker/syncer.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/fileio.h"
#include "log/logdir.h"

#define TOPIC_BUCKETS 4096

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static void buckets_init(struct broker *b)
{
    if (b->topic_buckets == NULL) {
        b->ntopic_buckets = TOPIC_BUCKETS;
        b->topic_buckets = calloc(b->ntopic_buckets, sizeof(*b->topic_buckets));
        GREGOR_ASSERT(b->topic_buckets != NULL);
    }
}

struct topic *topic_find(struct broker *b, const char *name)
{
    if (b->topic_buckets == NULL)
        return NULL;
    struct topic *t = b->topic_buckets[name_hash(name) % b->ntopic_buckets];
    for (; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

struct topic *topic_find_by_id(struct broker *b, const struct kuuid *id)
{
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        if (memcmp(t->id.b, id->b, 16) == 0)
            return t;
    return NULL;
}

struct topic *topic_iter_first(struct broker *b)
{
    if (b->topic_buckets == NULL)
        return NULL;
    for (size_t i = 0; i < b->ntopic_buckets; i++)
        if (b->topic_buckets[i])
            return b->topic_buckets[i];
    return NULL;
}

struct topic *topic_iter_next(struct broker *b, struct topic *t)
{
    if (t->next)
        return t->next;
    for (size_t i = name_hash(t->name) % b->ntopic_buckets + 1; i < b->ntopic_buckets; i++)
        if (b->topic_buckets[i])
            return b->topic_buckets[i];
    return NULL;
}

struct partition *partition_get(struct broker *b, const char *topic, int32_t index)
{
    struct topic *t = topic_find(b, topic);
    if (t == NULL || index < 0 || index >= t->npartitions)
        return NULL;
    return t->partitions[index];
}

struct topic *topic_find_name(struct broker *b, struct kstr name)
{
    /* A name with a NUL inside would read as its prefix: no topic has it (names are checked
     * on creation), so it finds nothing rather than aliasing the prefix. */
    if (name.ptr == NULL || kstr_has_nul(name))
        return NULL;
    return topic_find(b, name.ptr);
}

/* The name for a message: bytes outside printable ASCII (NUL, newlines, UTF-8) as \xNN, so
 * the message and the log line show what the client sent. */
static void name_render(const char *name, int32_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (int32_t i = 0; i < len && o + 5 < outlen; i++) {
        uint8_t ch = (uint8_t)name[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

int topic_name_validate(const char *name, int32_t len, char *msg, size_t msglen)
{
    char shown[300];
    if (name == NULL || len <= 0) {
        snprintf(msg, msglen, "Topic name is invalid: the empty string is not allowed");
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        snprintf(msg, msglen, "Topic name is invalid: '%s' is not allowed", len == 1 ? "." : "..");
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if (len > TOPIC_NAME_MAX) {
        name_render(name, len, shown, sizeof(shown));
        snprintf(msg, msglen,
                 "Topic name is invalid: the length of '%s' is longer than the max allowed length %d",
                 shown, TOPIC_NAME_MAX);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    for (int32_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-';
        if (!ok) {
            name_render(name, len, shown, sizeof(shown));
            snprintf(msg, msglen,
                     "Topic name is invalid: '%s' contains one or more characters other than "
                     "ASCII alphanumerics, '.', '_' and '-'",
                     shown);
            return KERR_INVALID_TOPIC_EXCEPTION;
        }
    }
    return KERR_NONE;
}

bool topic_name_is_internal(const char *name)
{
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0 ||
           strcmp(name, "__share_group_state") == 0;
}

/* Kafka's metric names turn '.' into '_': two topics that differ only there would share them,
 * so a new name that unifies with an existing one is refused. */
static bool names_collide(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '.' ? '_' : *a, y = *b == '.' ? '_' : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

int topic_name_collision(struct broker *b, const char *name, char *msg, size_t msglen)
{
    if (strpbrk(name, "._") == NULL)
        return KERR_NONE;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
        if (strcmp(t->name, name) != 0 && names_collide(t->name, name)) {
            snprintf(msg, msglen, "Topic '%s' collides with existing topic: %s", name, t->name);
            return KERR_INVALID_TOPIC_EXCEPTION;
        }
    }
    return KERR_NONE;
}

int topic_config_check(const char *key, const char *value, char *msg, size_t msglen)
{
    return config_catalog_topic_check(key, value, msg, msglen);
}

static struct topic *topic_alloc(struct broker *b, const char *name, const uint8_t id[16])
{
    buckets_init(b);
    struct topic *t = calloc(1, sizeof(*t));
    GREGOR_ASSERT(t != NULL);
    snprintf(t->name, sizeof(t->name), "%s", name);
    memcpy(t->id.b, id, 16);
    t->cfg = b->cfg.log;
    t->internal = topic_name_is_internal(name);
    size_t h = name_hash(name) % b->ntopic_buckets;
    t->next = b->topic_buckets[h];
    b->topic_buckets[h] = t;
    b->ntopics++;
    return t;
}

static void topic_unlink(struct broker *b, struct topic *t)
{
    struct topic **pp = &b->topic_buckets[name_hash(t->name) % b->ntopic_buckets];
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    GREGOR_ASSERT(*pp == t);
    *pp = t->next;
    t->next = NULL;
    b->ntopics--;
    GREGOR_ASSERT(b->ntopics >= 0);
}

static void topic_free(struct topic *t)
{
    free(t->partitions);
    free(t->overrides);
    free(t);
}

static void topic_unlink_free(struct broker *b, struct topic *t)
{
    topic_unlink(b, t);
    topic_free(t);
}

static void deletion_claim(struct broker *b, const char *name, int32_t index);

static void new_topic_id(uint8_t id[16])
{
    do {
        if (getrandom(id, 16, 0) != 16) {
            uint64_t x = (uint64_t)mono_us() ^ ((uint64_t)now_ms() << 20);
            memcpy(id, &x, 8);
            memcpy(id + 8, &x, 8);
        }
        id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
        id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
        /* Kafka never hands out ids whose base64 form starts with '-'. */
    } while ((id[0] >> 2) == 62);
}

/* t->cfg from the broker's defaults and t's overrides; an override the catalog refuses (a
 * store written by another version) is named and left out. */
static int apply_overrides(struct broker *b, struct topic *t, char *msg, size_t msglen)
{
    int e = KERR_NONE;
    for (int i = 0; i < t->noverrides && e == KERR_NONE; i++)
        e = topic_config_check(t->overrides[i].key, t->overrides[i].value, msg, msglen);
    topic_effective_config(b, t, &t->cfg);
    return e;
}

void topics_refresh_configs(struct broker *b)
{
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
        topic_effective_config(b, t, &t->cfg);
        int32_t held = t->creating > 0 || t->growing > 0 ? t->nopened : t->npartitions;
        for (int32_t i = 0; i < held; i++)
            if (t->partitions[i] != NULL)
                partition_set_config(t->partitions[i], &t->cfg);
    }
}

static int topic_partition_open(struct broker *b, struct topic *t, int32_t index, bool create)
{
    struct partition *p = calloc(1, sizeof(*p));
    GREGOR_ASSERT(p != NULL);
    p->topic = t;
    p->index = index;
    p->dir_index = (int)(((uint64_t)name_hash(t->name) + (uint64_t)index) % (uint64_t)b->ndirs);
    /* A deleted topic of the same name may still hold this partition's dir: it goes first. */
    deletion_claim(b, t->name, index);
    /* An existing partition dir may live in any log dir: find it. */
    for (int d = 0; d < b->ndirs; d++) {
        char path[1100];
        snprintf(path, sizeof(path), "%s/%s-%d", logdir_path(b->dirs[d]), t->name, index);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            p->dir_index = d;
            break;
        }
    }
    struct logdir *dir = b->dirs[p->dir_index];
    snprintf(p->dir_path, sizeof(p->dir_path), "%s/%s-%d", logdir_path(dir), t->name, index);
    int64_t ls = logdir_log_start_offset(dir, t->name, index);
    /* After a clean shutdown nothing is scanned; otherwise everything past the checkpointed
     * recovery point is (all of it when the checkpoint does not list the partition). */
    int64_t rp = logdir_was_clean(dir) ? PLOG_RECOVERY_POINT_CLEAN
                                       : logdir_recovery_point(dir, t->name, index);
    int e = partition_open(p, t->name, &t->cfg, rp, ls < 0 ? 0 : ls);
    if (e != KERR_NONE) {
        LOG_ERROR("LogManager", "cannot open partition %s-%d in %s: %s", t->name, index,
                  p->dir_path, kerr_name(e));
        free(p);
        return e;
    }
    /* A replica on a cluster starts from its checkpointed high watermark (Kafka's); on one
     * node, and for the coordinators' topics (this broker's alone for now), the log end. */
    if (b->cluster != NULL && !topic_name_is_internal(t->name))
        partition_restore_high_watermark(p, logdir_high_watermark(dir, t->name, index));
    if (create) {
        /* Only when missing or different: rewriting it atomically costs two fsyncs per
         * partition, which made every start of a broker with many partitions pay them. */
        uint8_t have[16];
        if (partition_metadata_read(p->dir_path, have) != 0 || memcmp(have, t->id.b, 16) != 0)
            partition_metadata_write(p->dir_path, t->id.b);
    }
    t->partitions[index] = p;
    return KERR_NONE;
}

/* Descriptors one partition holds once created: its active segment's log file (its indexes
 * open on the first append and close again when it idles, see periodic_idle_fds). */
#define PARTITION_FDS_AT_CREATION 1
/* Descriptors kept free for clients, appends (indexes, rolls) and the log dirs' own files. */
#define FD_RESERVE_MIN 64
#define FD_RESERVE_FRACTION 8

static int64_t fds_open_now(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int64_t n = -1; /* the directory's own descriptor is listed too */
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int topic_fd_budget_check(struct broker *b, int64_t new_partitions, char *msg, size_t msglen)
{
    struct rlimit rl;
    int64_t open_now = fds_open_now();
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || open_now < 0)
        return KERR_NONE;
    int64_t limit = (int64_t)rl.rlim_cur;
    int64_t reserve = limit / FD_RESERVE_FRACTION > FD_RESERVE_MIN ? limit / FD_RESERVE_FRACTION
                                                                   : FD_RESERVE_MIN;
    int64_t free_fds = limit - open_now - reserve -
                       b->partitions_being_created * PARTITION_FDS_AT_CREATION;
    int64_t need = new_partitions * PARTITION_FDS_AT_CREATION;
    if (need <= free_fds)
        return KERR_NONE;
    snprintf(msg, msglen,
             "Creating %lld partitions needs %lld file descriptors but only %lld are free "
             "(open files limit %lld, %lld open, %lld kept for clients and appends): raise "
             "the broker's open files limit (ulimit -n) or create fewer partitions",
             (long long)new_partitions, (long long)need, (long long)(free_fds > 0 ? free_fds : 0),
             (long long)limit, (long long)open_now, (long long)reserve);
    return KERR_POLICY_VIOLATION;
}

int topic_create_begin(struct broker *b, const char *name, int32_t npartitions,
                       const struct topic_config_kv *configs, int nconfigs, struct topic **out,
                       char *msg, size_t msglen)
{
    GREGOR_ASSERT(npartitions > 0);
    uint8_t id[16];
    new_topic_id(id);
    struct topic *t = topic_alloc(b, name, id);
    if (nconfigs > 0) {
        t->overrides = calloc((size_t)nconfigs, sizeof(*t->overrides));
        GREGOR_ASSERT(t->overrides != NULL);
        memcpy(t->overrides, configs, (size_t)nconfigs * sizeof(*configs));
        t->noverrides = nconfigs;
    }
    int e = apply_overrides(b, t, msg, msglen);
    if (e != KERR_NONE) {
        topic_unlink_free(b, t);
        return e;
    }
    t->partitions = calloc((size_t)npartitions, sizeof(*t->partitions));
    GREGOR_ASSERT(t->partitions != NULL);
    t->creating = npartitions;
    t->npartitions = 0; /* nobody sees a partition before all exist */
    b->partitions_being_created += npartitions;
    *out = t;
    return KERR_NONE;
}

int topic_grow_begin(struct broker *b, struct topic *t, int32_t new_total)
{
    GREGOR_ASSERT(t->creating == 0 && t->growing == 0 && new_total > t->npartitions);
    struct partition **np = realloc(t->partitions, (size_t)new_total * sizeof(*np));
    if (np == NULL)
        return KERR_UNKNOWN_SERVER_ERROR;
    memset(np + t->npartitions, 0, (size_t)(new_total - t->npartitions) * sizeof(*np));
    t->partitions = np;
    t->growing = new_total;
    t->nopened = t->npartitions;
    b->partitions_being_created += new_total - t->npartitions;
    return KERR_NONE;
}

static int32_t change_target(const struct topic *t)
{
    return t->creating > 0 ? t->creating : t->growing;
}

/* A creation or growth that did not finish: the partition dirs it made go. A new topic was
 * never saved and goes too; a grown one keeps its old partitions (saved with them only). */
void topic_create_abandon(struct broker *b, struct topic *t)
{
    int32_t target = change_target(t);
    GREGOR_ASSERT(target > 0 && t->nopened >= t->npartitions && t->nopened <= target);
    GREGOR_ASSERT(t->creating == 0 || t->npartitions == 0);
    b->partitions_being_created -= target - t->nopened;
    GREGOR_ASSERT(b->partitions_being_created >= 0);
    for (int32_t i = t->npartitions; i < t->nopened; i++) {
        partition_delete(t->partitions[i]);
        free(t->partitions[i]);
        t->partitions[i] = NULL;
    }
    LOG_INFO("KafkaApis", "Abandoned the %s of topic %s after %d of %d partitions",
             t->creating > 0 ? "creation" : "growth", t->name, t->nopened, target);
    if (t->creating > 0) {
        topic_unlink_free(b, t);
        return;
    }
    t->growing = 0;
    t->nopened = 0;
}

int topic_create_step(struct broker *b, struct topic *t, int64_t deadline_us, bool *done,
                      char *msg, size_t msglen)
{
    int32_t target = change_target(t);
    GREGOR_ASSERT(target > 0 && t->nopened >= t->npartitions && t->nopened <= target);
    *done = false;
    while (t->nopened < target) {
        int e = topic_partition_open(b, t, t->nopened, true);
        if (e != KERR_NONE) {
            snprintf(msg, msglen, "cannot create the log of partition %d", t->nopened);
            topic_create_abandon(b, t);
            return KERR_KAFKA_STORAGE_ERROR;
        }
        t->nopened++;
        b->partitions_being_created--;
        if (t->nopened < target && mono_us() >= deadline_us)
            return KERR_NONE;
    }
    bool created = t->creating > 0;
    int32_t from = t->npartitions;
    t->npartitions = target;
    t->creating = 0;
    t->growing = 0;
    t->nopened = 0;
    /* AlterConfigs may have changed the config while the new partitions were opened. */
    for (int32_t i = from; i < target; i++)
        partition_set_config(t->partitions[i], &t->cfg);
    *done = true;
    if (topics_save(b) != 0) {
        snprintf(msg, msglen, "cannot persist the topic list");
        if (created)
            topic_delete(b, t);
        /* A grown topic keeps its partitions: a restart adopts their dirs. */
        return KERR_KAFKA_STORAGE_ERROR;
    }
    if (created)
        LOG_INFO("KafkaApis", "Created topic %s with %d partitions", t->name, target);
    else
        LOG_INFO("KafkaApis", "Increased the partitions of topic %s from %d to %d", t->name, from,
                 target);
    return KERR_NONE;
}

int topic_create(struct broker *b, const char *name, int32_t npartitions,
                 const struct topic_config_kv *configs, int nconfigs, struct topic **out,
                 char *msg, size_t msglen)
{
    struct topic *t = NULL;
    int e = topic_create_begin(b, name, npartitions, configs, nconfigs, &t, msg, msglen);
    bool done = false;
    if (e == KERR_NONE)
        e = topic_create_step(b, t, INT64_MAX, &done, msg, msglen);
    if (e != KERR_NONE)
        return e;
    GREGOR_ASSERT(done);
    if (out)
        *out = t;
    return KERR_NONE;
}

/* ---- deletion ---- */

/* A renamed partition dir still to remove. */
struct deleted_dir {
    struct deleted_dir *next;
    char path[];
};

static void deleted_dir_push(struct broker *b, const char *path)
{
    size_t n = strlen(path) + 1;
    struct deleted_dir *d = malloc(sizeof(*d) + n);
    GREGOR_ASSERT(d != NULL);
    memcpy(d->path, path, n);
    d->next = b->deleted_dirs;
    b->deleted_dirs = d;
}

/* Closes partition i of a topic being deleted and renames its dir out of the way (the cheap
 * half of a partition's deletion: the files are removed later). */
static void topic_partition_retire(struct broker *b, struct topic *t, int32_t i)
{
    struct partition *p = t->partitions[i];
    GREGOR_ASSERT(p != NULL && i < t->unretired);
    log_cleaner_abort(b, p, true); /* no clean of it goes on while its files go */
    t->partitions[i] = NULL;
    char to[1200];
    if (logdir_delete_dir_name(b->dirs[p->dir_index], t->name, i, to, sizeof(to)) != 0)
        partition_delete(p); /* no room for the new name: removed in place */
    else if (partition_retire(p, to) == KERR_NONE)
        deleted_dir_push(b, to);
    free(p);
}

static void deletion_claim(struct broker *b, const char *name, int32_t index)
{
    for (struct topic *t = b->deleting; t != NULL; t = t->next)
        if (index < t->unretired && t->partitions[index] != NULL && strcmp(t->name, name) == 0)
            topic_partition_retire(b, t, index);
}

void topic_delete_begin(struct broker *b, struct topic *t)
{
    GREGOR_ASSERT(t->creating == 0); /* a creation in progress is abandoned, not deleted */
    if (t->growing > 0) {
        /* Kafka would have applied the growth first: its partitions so far go with the rest. */
        b->partitions_being_created -= t->growing - t->nopened;
        GREGOR_ASSERT(b->partitions_being_created >= 0);
        t->npartitions = t->nopened;
        t->growing = 0;
        t->nopened = 0;
    }
    broker_commit_drain(b); /* nothing may point at these partitions any more */
    produce_forget_topic(b, t);
    topic_unlink(b, t);
    t->unretired = t->npartitions;
    t->next = b->deleting;
    b->deleting = t;
    LOG_INFO("KafkaApis", "Deleting topic %s (%d partitions)", t->name, t->npartitions);
}

/* All renamed: the dirs' new names are made durable, then the topics leave the store. */
static void deletions_forget_renamed(struct broker *b)
{
    bool any = false;
    for (struct topic *t = b->deleting; t != NULL && !any; t = t->next)
        any = t->unretired == 0;
    if (!any)
        return;
    for (int d = 0; d < b->ndirs; d++)
        if (fio_fsync_dir(logdir_path(b->dirs[d])) < 0) {
            LOG_ERROR("LogManager", "Could not sync %s after renaming deleted partitions: %s; "
                      "the deletion stays in the topic store", logdir_path(b->dirs[d]),
                      strerror(errno));
            return; /* the records stay: a restart finishes the deletion */
        }
    struct topic **pp = &b->deleting;
    while (*pp != NULL) {
        struct topic *t = *pp;
        if (t->unretired > 0) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        LOG_INFO("KafkaApis", "Deleted topic %s", t->name);
        topic_free(t);
    }
    topics_save(b);
}

/* Work left for the slices: a partition to rename or a dir to remove. A topic whose dirs are
 * all renamed but whose record could not be dropped (a log dir's sync failed) waits for the
 * next deletion or the shutdown to try again, rather than spinning. */
static bool deletions_pending(const struct broker *b)
{
    for (const struct topic *t = b->deleting; t != NULL; t = t->next)
        if (t->unretired > 0)
            return true;
    return b->deleted_dirs != NULL;
}

/* One slice: partitions renamed, then renamed dirs removed, until deadline_us (at least one
 * piece of work); true once nothing is left. */
static bool deletions_step(struct broker *b, int64_t deadline_us)
{
    bool spent = false;
    for (struct topic *t = b->deleting; t != NULL && !spent; t = t->next) {
        /* Counting down: a name reused at once claims the low partitions it makes first. */
        while (t->unretired > 0 && !spent) {
            int32_t i = t->unretired - 1;
            if (t->partitions[i] != NULL) {
                topic_partition_retire(b, t, i);
                spent = mono_us() >= deadline_us;
            }
            t->unretired--;
        }
    }
    deletions_forget_renamed(b);
    while (b->deleted_dirs != NULL && !spent) {
        struct deleted_dir *d = b->deleted_dirs;
        b->deleted_dirs = d->next;
        if (fio_remove_dir(d->path) < 0)
            LOG_ERROR("LogManager", "Could not delete %s: %s", d->path, strerror(errno));
        free(d);
        spent = mono_us() >= deadline_us;
    }
    return !deletions_pending(b);
}

static void deletions_turn(struct broker *b, void *arg)
{
    (void)arg;
    b->delete_timer = 0;
    if (!deletions_step(b, mono_us() + BROKER_TURN_US))
        b->delete_timer = broker_timer_add(b, mono_ms(), deletions_turn, NULL);
}

int topics_delete_commit(struct broker *b)
{
    int rc = topics_save(b) == 0 ? KERR_NONE : KERR_KAFKA_STORAGE_ERROR;
    if (b->delete_timer == 0 && (b->deleting != NULL || b->deleted_dirs != NULL))
        b->delete_timer = broker_timer_add(b, mono_ms(), deletions_turn, NULL);
    return rc;
}

int topic_delete(struct broker *b, struct topic *t)
{
    topic_delete_begin(b, t);
    return topics_delete_commit(b);
}

/* Shutdown: the partitions still open are renamed (cheap) and the store forgets the topics;
 * renamed dirs not yet removed are left for the next start (logdir_remove_deleted). */
static void deletions_shutdown(struct broker *b)
{
    if (b->delete_timer != 0)
        broker_timer_cancel(b, b->delete_timer);
    b->delete_timer = 0;
    for (struct topic *t = b->deleting; t != NULL; t = t->next)
        for (; t->unretired > 0; t->unretired--)
            if (t->partitions[t->unretired - 1] != NULL)
                topic_partition_retire(b, t, t->unretired - 1);
    deletions_forget_renamed(b);
    while (b->deleting != NULL) {
        struct topic *t = b->deleting; /* a dir sync failed: the record stays for the restart */
        b->deleting = t->next;
        topic_free(t);
    }
    int left = 0;
    while (b->deleted_dirs != NULL) {
        struct deleted_dir *d = b->deleted_dirs;
        b->deleted_dirs = d->next;
        free(d);
        left++;
    }
    if (left > 0)
        LOG_INFO("LogManager", "%d deleted partition dirs are left for the next start to remove",
                 left);
}

int topic_set_overrides(struct broker *b, struct topic *t, const struct topic_config_kv *kv, int n)
{
    struct topic_config_kv *copy = NULL;
    if (n > 0) {
        copy = calloc((size_t)n, sizeof(*copy));
        if (copy == NULL)
            return KERR_UNKNOWN_SERVER_ERROR;
        memcpy(copy, kv, (size_t)n * sizeof(*kv));
    }
    free(t->overrides);
    t->overrides = copy;
    t->noverrides = n;
    char msg[256];
    apply_overrides(b, t, msg, sizeof(msg));
    for (int32_t i = 0; i < t->npartitions; i++)
        partition_set_config(t->partitions[i], &t->cfg);
    return topics_save(b) == 0 ? KERR_NONE : KERR_KAFKA_STORAGE_ERROR;
}

int topics_save(struct broker *b)
{
    int n = b->ntopics, i = 0;
    for (struct topic *t = b->deleting; t != NULL; t = t->next)
        n++;
    struct topic_record *recs = calloc((size_t)(n > 0 ? n : 1), sizeof(*recs));
    if (recs == NULL)
        return -1;
    /* Deleted topics whose dirs may still have their names: a restart removes them. */
    for (struct topic *t = b->deleting; t != NULL; t = t->next) {
        struct topic_record *rec = &recs[i++];
        snprintf(rec->name, sizeof(rec->name), "%s", t->name);
        rec->partitions = t->npartitions > 0 ? t->npartitions : 1;
        memcpy(rec->topic_id, t->id.b, 16);
        rec->deleting = true;
    }
    for (struct topic *t = topic_iter_first(b); t && i < n; t = topic_iter_next(b, t)) {
        if (t->creating > 0)
            continue; /* saved once all its partitions exist */
        struct topic_record *rec = &recs[i++];
        snprintf(rec->name, sizeof(rec->name), "%s", t->name);
        rec->partitions = t->npartitions;
        memcpy(rec->topic_id, t->id.b, 16);
        rec->nconfigs = t->noverrides;
        if (t->noverrides > 0) {
            rec->config_keys = calloc((size_t)t->noverrides, sizeof(*rec->config_keys));
            rec->config_values = calloc((size_t)t->noverrides, sizeof(*rec->config_values));
            if (rec->config_keys == NULL || rec->config_values == NULL) {
                rec->nconfigs = 0;
                continue;
            }
            for (int k = 0; k < t->noverrides; k++) {
                snprintf(rec->config_keys[k], sizeof(rec->config_keys[k]), "%s", t->overrides[k].key);
                snprintf(rec->config_values[k], sizeof(rec->config_values[k]), "%s", t->overrides[k].value);
            }
        }
    }
    int rc = topic_store_save(b->dirs[0], recs, i);
    for (int k = 0; k < i; k++) {
        free(recs[k].config_keys);
        free(recs[k].config_values);
    }
    free(recs);
    return rc;
}

/* Startup: the topic store says which topics exist; partition dirs found on disk that the
 * store does not know (a log dir written by Apache Kafka) become topics too. */
struct found_partition {
    char topic[256];
    int32_t partition;
    int dir;                         /* which log dir */
};
struct found_list {
    struct found_partition *v;
    int n, cap;
    int dir;                         /* the log dir being scanned */
};

static void found_cb(void *arg, const char *topic, int32_t partition, const char *dir_path)
{
    (void)dir_path;
    struct found_list *fl = arg;
    /* Kafka's KRaft metadata log may share the log dir: it is not a topic clients see. */
    if (strcmp(topic, "__cluster_metadata") == 0)
        return;
    if (fl->n == fl->cap) {
        int cap = fl->cap ? fl->cap * 2 : 64;
        struct found_partition *v = realloc(fl->v, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return;
        fl->v = v;
        fl->cap = cap;
    }
    snprintf(fl->v[fl->n].topic, sizeof(fl->v[0].topic), "%s", topic);
    fl->v[fl->n].partition = partition;
    fl->v[fl->n].dir = fl->dir;
    fl->n++;
}

/* A partition dir left by a deletion a crash interrupted: its topic's store record says
 * deleting and its partition.metadata holds that topic's id (or no id while no live topic has
 * the name). A live topic of the same name made after the deletion has another id. */
static bool deleted_remnant(struct broker *b, const struct topic_record *recs, int nrecs,
                            const char *topic, const char *path)
{
    uint8_t id[16];
    bool have_id = partition_metadata_read(path, id) == 0, named = false;
    for (int i = 0; i < nrecs; i++) {
        if (!recs[i].deleting || strcmp(recs[i].name, topic) != 0)
            continue;
        named = true;
        if (have_id && memcmp(id, recs[i].topic_id, 16) == 0)
            return true;
    }
    return named && !have_id && topic_find(b, topic) == NULL;
}

/* Startup: what deletions left behind goes before any topic is opened or adopted, so no dir
 * of a deleted topic is read as a live one. Returns how many deletion records were finished. */
static int deletions_recover(struct broker *b, const struct topic_record *recs, int nrecs,
                             struct found_list *fl)
{
    int ndeleting = 0, k = 0, remnants = 0;
    int64_t t0 = mono_ms();
    for (int i = 0; i < nrecs; i++)
        ndeleting += recs[i].deleting;
    for (int i = 0; i < fl->n; i++) {
        char path[1100];
        snprintf(path, sizeof(path), "%s/%s-%d", logdir_path(b->dirs[fl->v[i].dir]),
                 fl->v[i].topic, fl->v[i].partition);
        if (ndeleting > 0 && deleted_remnant(b, recs, nrecs, fl->v[i].topic, path)) {
            if (fio_remove_dir(path) < 0)
                LOG_ERROR("LogManager", "Could not delete %s of a deleted topic: %s", path,
                          strerror(errno));
            remnants++;
            continue;
        }
        fl->v[k++] = fl->v[i];
    }
    fl->n = k;
    if (ndeleting > 0)
        LOG_INFO("LogManager", "Finished %d interrupted topic deletions: %d partition dirs "
                 "removed in %lld ms", ndeleting, remnants, (long long)(mono_ms() - t0));
    t0 = mono_ms();
    int removed = 0;
    for (int d = 0; d < b->ndirs; d++) {
        int n = logdir_remove_deleted(b->dirs[d]);
        removed += n > 0 ? n : 0;
    }
    if (removed > 0)
        LOG_INFO("LogManager", "Removed %d partition dirs of deleted topics in %lld ms", removed,
                 (long long)(mono_ms() - t0));
    if (ndeleting > 0)
        for (int d = 0; d < b->ndirs; d++)
            fio_fsync_dir(logdir_path(b->dirs[d]));
    return ndeleting;
}

int topics_load(struct broker *b)
{
    buckets_init(b);
    struct topic_record *recs = NULL;
    int nrecs = 0;
    if (topic_store_load(b->dirs[0], &recs, &nrecs) != 0)
        return -1;
    for (int i = 0; i < nrecs; i++) {
        if (recs[i].deleting)
            continue;
        struct topic *t = topic_alloc(b, recs[i].name, recs[i].topic_id);
        if (recs[i].nconfigs > 0) {
            t->overrides = calloc((size_t)recs[i].nconfigs, sizeof(*t->overrides));
            GREGOR_ASSERT(t->overrides != NULL);
            for (int k = 0; k < recs[i].nconfigs; k++) {
                snprintf(t->overrides[k].key, sizeof(t->overrides[k].key), "%s", recs[i].config_keys[k]);
                snprintf(t->overrides[k].value, sizeof(t->overrides[k].value), "%s", recs[i].config_values[k]);
            }
            t->noverrides = recs[i].nconfigs;
        }
        t->npartitions = recs[i].partitions;
    }

    struct found_list fl = {0};
    for (int d = 0; d < b->ndirs; d++) {
        fl.dir = d;
        logdir_scan(b->dirs[d], found_cb, &fl);
    }
    bool store_changed = deletions_recover(b, recs, nrecs, &fl) > 0;
    topic_store_free(recs, nrecs);
    for (int i = 0; i < fl.n; i++) {
        struct topic *t = topic_find(b, fl.v[i].topic);
        if (t == NULL) {
            uint8_t id[16];
            char path[1100];
            bool have_id = false;
            for (int d = 0; d < b->ndirs && !have_id; d++) {
                snprintf(path, sizeof(path), "%s/%s-%d", logdir_path(b->dirs[d]), fl.v[i].topic,
                         fl.v[i].partition);
                have_id = partition_metadata_read(path, id) == 0;
            }
            if (!have_id)
                new_topic_id(id);
            t = topic_alloc(b, fl.v[i].topic, id);
            LOG_INFO("LogManager", "Found partition dirs of topic %s not in the topic store: adopting it",
                     t->name);
            store_changed = true;
        }
        if (fl.v[i].partition >= t->npartitions) {
            t->npartitions = fl.v[i].partition + 1;
            store_changed = true;
        }
    }
    free(fl.v);

    int rc = 0;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
        char msg[256];
        if (apply_overrides(b, t, msg, sizeof(msg)) != KERR_NONE)
            LOG_WARN("LogManager", "topic %s: %s", t->name, msg);
        t->partitions = calloc((size_t)(t->npartitions > 0 ? t->npartitions : 1), sizeof(*t->partitions));
        GREGOR_ASSERT(t->partitions != NULL);
        for (int32_t i = 0; i < t->npartitions; i++) {
            if (topic_partition_open(b, t, i, true) != KERR_NONE)
                rc = -1;
        }
    }
    if (store_changed && topics_save(b) != 0)
        rc = -1;
    return rc;
}

/* A checkpoint, taken on the loop thread and written by the I/O worker. Everything in it is
 * the job's own (topic names and snapshot images are copies); the logs it flushes before
 * writing producer snapshots live until broker_commit_drain, which waits for the worker. */
struct checkpoint_snapshot {
    struct partition *part; /* lives until broker_commit_drain (which waits for this job) */
    char *dir_path;
    int64_t log_end;
    uint64_t truncations;   /* the partition's count at the encode */
    uint8_t *image;
    size_t len;
};

struct checkpoint_job {
    struct logdir *dirs[BROKER_MAX_LOG_DIRS];
    struct logdir_checkpoint_entry *entries[BROKER_MAX_LOG_DIRS];
    int nentries[BROKER_MAX_LOG_DIRS];
    int ndirs;
    struct checkpoint_snapshot *snaps;
    int nsnaps;
};

static void checkpoint_job_free(void *arg)
{
    struct checkpoint_job *j = arg;
    for (int d = 0; d < j->ndirs; d++) {
        for (int i = 0; i < j->nentries[d]; i++)
            free((char *)j->entries[d][i].topic);
        free(j->entries[d]);
    }
    for (int i = 0; i < j->nsnaps; i++) {
        free(j->snaps[i].dir_path);
        free(j->snaps[i].image);
    }
    free(j->snaps);
    free(j);
}

/* Worker side: idempotence state goes to disk at a flushed log end, so it never describes
 * batches a crash could take back; after a crash only the batches since it are re-read. */
static void checkpoint_job_write(void *arg)
{
    struct checkpoint_job *j = arg;
    for (int i = 0; i < j->nsnaps; i++) {
        struct checkpoint_snapshot *sn = &j->snaps[i];
        if (partition_flush(sn->part) != KERR_NONE)
            continue;
        if (producer_state_snapshot_write(sn->dir_path, sn->log_end, sn->image, sn->len,
                                          &sn->part->truncations, sn->truncations) < 0)
            LOG_WARN("LogManager", "Error while writing the producer state snapshot in %s: %s",
                     sn->dir_path, strerror(errno));
    }
    for (int d = 0; d < j->ndirs; d++)
        logdir_write_checkpoints(j->dirs[d], j->entries[d], j->nentries[d]);
}

/* Loop side: the values of every partition now. NULL when out of memory. */
static struct checkpoint_job *checkpoint_take(struct broker *b)
{
    struct checkpoint_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    int cap = 0;
    for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t))
        cap += t->npartitions;
    j->snaps = calloc((size_t)(cap > 0 ? cap : 1), sizeof(*j->snaps));
    if (j->snaps == NULL) {
        free(j);
        return NULL;
    }
    for (int d = 0; d < b->ndirs; d++) {
        struct logdir_checkpoint_entry *e = calloc((size_t)(cap > 0 ? cap : 1), sizeof(*e));
        if (e == NULL) {
            checkpoint_job_free(j);
            return NULL;
        }
        j->dirs[d] = b->dirs[d];
        j->entries[d] = e;
        j->ndirs = d + 1;
        int n = 0;
        for (struct topic *t = topic_iter_first(b); t; t = topic_iter_next(b, t)) {
            for (int32_t i = 0; i < t->npartitions; i++) {
                struct partition *p = t->partitions[i];
                if (p == NULL || p->dir_index != d)
                    continue;
                struct checkpoint_snapshot *sn = &j->snaps[j->nsnaps];
                if (p->producers.changed &&
                    producer_state_snapshot_encode(&p->producers, &sn->image, &sn->len) == 0) {
                    sn->part = p;
                    sn->dir_path = strdup(p->dir_path);
                    sn->log_end = partition_log_end(p);
                    sn->truncations = atomic_load(&p->truncations);
                    j->nsnaps++;
                    if (sn->dir_path == NULL)
                        j->nsnaps--, free(sn->image);
                    else
                        p->producers.changed = false;
                }
                e[n].topic = strdup(t->name);
                if (e[n].topic == NULL)
                    continue;
                e[n].partition = i;
                e[n].recovery_point = partition_durable_offset(p);
                e[n].log_start_offset = partition_log_start(p);
                e[n].high_watermark = partition_high_watermark(p);
                n++;
                j->nentries[d] = n;
            }
        }
    }
    return j;
}

void topics_checkpoint(struct broker *b)
{
    struct checkpoint_job *j = checkpoint_take(b);
    if (j == NULL)
        return;
    /* On the worker when there is one (not at shutdown, after it stopped) and it has room. */
    if (b->syncer != NULL && iowork_submit(syncer_iowork(b->syncer), IOWORK_CHECKPOINT,
                                           checkpoint_job_write, checkpoint_job_free, j, false) == 0)
        return;
    checkpoint_job_write(j);
    checkpoint_job_free(j);
}

void topics_close_all(struct broker *b)
{
    deletions_shutdown(b);
    struct topic *t;
    while ((t = topic_iter_first(b)) != NULL) {
        int32_t held = t->creating > 0 || t->growing > 0 ? t->nopened : t->npartitions;
        for (int32_t i = 0; i < held; i++) {
            struct partition *p = t->partitions[i];
            if (p == NULL)
                continue;
            partition_close(p);
            free(p);
        }
        topic_unlink_free(b, t);
    }
    free(b->topic_buckets);
    b->topic_buckets = NULL;
}
