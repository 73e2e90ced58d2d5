/* reassign: `gregor reassign-partitions`, the kafka-reassign-partitions.sh (Kafka 3.9's
 * ReassignPartitionsCommand) work-alike: --generate (Kafka's replica assignment algorithm),
 * --execute, --verify, --list, --cancel, over cli/wire.h (librdkafka 2.0 has none of
 * AlterPartitionReassignments / ListPartitionReassignments / IncrementalAlterConfigs). */
#include "cli/cli.h"
#include "cli/args.h"
#include "common/json.h"
#include "cli/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/util.h"
#include "proto/messages.h"

#define METADATA_VERSION 4   /* the first with AllowAutoTopicCreation: describing never creates */
#define REASSIGN_VERSION 0   /* AlterPartitionReassignments / ListPartitionReassignments */
#define IAC_VERSION 1        /* IncrementalAlterConfigs, flexible */
/* Bounds on what a JSON file may ask for; Kafka has none, these only stop a runaway file. */
#define REASSIGN_FILE_MAX (16u << 20)
#define REASSIGN_PARTITIONS_MAX 200000
#define REASSIGN_REPLICAS_MAX 1024
#define REASSIGN_BROKERS_MAX 100000

#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4
#define CONFIG_OP_SET 0
#define CONFIG_OP_DELETE 1

static struct cli_opt reassign_opts[] = {
    {"additional", CLI_OPT_FLAG, NULL,
     "With --execute: start this reassignment next to those already in progress (also the way "
     "to change the throttle of a running one, by submitting it again).", 0, 0, 0},
    {"bootstrap-server", CLI_OPT_VALUE, "<String: Server(s) to use for bootstrapping>",
     "REQUIRED: the broker(s) to connect to first, host:port[,host:port...].", 0, 0, 0},
    {"broker-list", CLI_OPT_VALUE, "<String: brokerlist>",
     "With --generate: the broker ids to move the partitions onto, as \"0,1,2\". Required "
     "with --topics-to-move-json-file.", 0, 0, 0},
    {"cancel", CLI_OPT_FLAG, NULL, "Cancel the reassignments in progress of the partitions in "
     "--reassignment-json-file.", 0, 0, 0},
    {"command-config", CLI_OPT_VALUE, "<String: Admin client property file>",
     "Properties for Kafka's admin client (accepted; gregor's tool does not read them).", 0, 0,
     0},
    {"disable-rack-aware", CLI_OPT_FLAG, NULL,
     "With --generate: place replicas without looking at the brokers' racks.", 0, 0, 0},
    {"execute", CLI_OPT_FLAG, NULL,
     "Start the reassignment described in --reassignment-json-file.", 0, 0, 0},
    {"generate", CLI_OPT_FLAG, NULL,
     "Propose a reassignment (print it, change nothing) of the topics in "
     "--topics-to-move-json-file onto the brokers of --broker-list.", 0, 0, 0},
    {"list", CLI_OPT_FLAG, NULL, "List every partition reassignment in progress.", 0, 0, 0},
    {"preserve-throttles", CLI_OPT_FLAG, NULL,
     "With --verify or --cancel: leave the broker and topic throttles as they are.", 0, 0, 0},
    {"reassignment-json-file", CLI_OPT_VALUE, "<String: manual assignment json file path>",
     "The reassignment, as {\"version\":1,\"partitions\":[{\"topic\":\"foo\",\"partition\":1,"
     "\"replicas\":[1,2,3],\"log_dirs\":[\"any\",\"any\",\"any\"]}]}. \"log_dirs\" may be "
     "left out; when given it has one entry per replica (gregor moves no replica between log "
     "directories: only \"any\").", 0, 0, 0},
    {"replica-alter-log-dirs-throttle", CLI_OPT_VALUE, "<Long: replicaAlterLogDirsThrottle>",
     "With --execute: the bytes/sec limit of replica moves between log directories of one "
     "broker (default -1: none).", 0, 0, 0},
    {"throttle", CLI_OPT_VALUE, "<Long: throttle>",
     "With --execute: the bytes/sec limit of replica moves between brokers, set as the "
     "leader/follower.replication.throttled.rate of the brokers involved and the throttled "
     "replicas of the topics (default -1: none). Submit the reassignment again with "
     "--additional to change it; --verify removes it once done.", 0, 0, 0},
    {"timeout", CLI_OPT_VALUE, "<Long: timeout>",
     "The most ms to wait for log directory moves to start (default 10000).", 0, 0, 0},
    {"topics-to-move-json-file", CLI_OPT_VALUE, "<String: topics to reassign json file path>",
     "With --generate: the topics to move, as {\"topics\":[{\"topic\":\"foo\"},"
     "{\"topic\":\"foo1\"}],\"version\":1}.", 0, 0, 0},
    {"verify", CLI_OPT_FLAG, NULL,
     "Report whether the reassignment of --reassignment-json-file is done; once nothing is "
     "in progress, remove the reassignment throttles.", 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0},
};

static struct cli_cmd reassign_cmd = {
    "kafka-reassign-partitions.sh",
    "This tool moves topic partitions between replicas.",
    reassign_opts,
};

/* Fills error with "Expected <what>, received <node>" as Kafka's DecodeJson says it. */
static int json_expected(const struct json *v, const char *what, char *error, size_t errlen)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (f != NULL) {
        json_write(f, v);
        fclose(f);
    }
    snprintf(error, errlen, "Expected %s, received %s", what, text ? text : "?");
    free(text);
    return -1;
}

static int json_need_object(const struct json *v, char *error, size_t errlen)
{
    return v->type == JSON_OBJECT ? 0 : json_expected(v, "JSON object", error, errlen);
}

static int json_apply(const struct json *obj, const char *key, const struct json **out,
                      char *error, size_t errlen)
{
    *out = json_get(obj, key);
    if (*out != NULL)
        return 0;
    snprintf(error, errlen, "No such field exists: `%s`", key);
    return -1;
}

static int json_to_int(const struct json *v, int32_t *out, char *error, size_t errlen)
{
    if (v->type != JSON_NUMBER || !v->is_int)
        return json_expected(v, "`Integer` value", error, errlen);
    *out = v->i;
    return 0;
}

static int json_to_string(const struct json *v, const char **out, char *error, size_t errlen)
{
    if (v->type != JSON_STRING)
        return json_expected(v, "`String` value", error, errlen);
    *out = v->text;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Java's HashSet iteration order: where Kafka's tool prints a HashSet (the brokers and
 * topics whose throttles it clears, duplicate lists), we print in the same order. A HashSet
 * of n elements has a table of 16 << k slots (grown while n > 3/4 of it); elements iterate
 * by slot (the hash with its high half folded in), and within a slot in insertion order. */

static int32_t java_string_hash(const char *s)
{
    uint32_t h = 0;
    for (; *s; s++) /* topic names are ASCII: one UTF-16 unit per byte */
        h = 31 * h + (unsigned char)*s;
    return (int32_t)h;
}

static int32_t java_tp_hash(const char *topic, int32_t partition)
{
    uint32_t h = 31u * (31u + (uint32_t)partition) + (uint32_t)java_string_hash(topic);
    return (int32_t)h;
}

struct java_slot {
    uint32_t slot;
    int index; /* insertion order, and what the caller sorts */
};

static int java_slot_cmp(const void *a, const void *b)
{
    const struct java_slot *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->index - y->index;
}

/* order[i] = the index (into hashes) of the i-th element a HashSet of these would yield. */
static int java_hash_order(const int32_t *hashes, int n, int *order)
{
    uint32_t cap = 16;
    while ((uint64_t)n * 4 > (uint64_t)cap * 3)
        cap *= 2;
    struct java_slot *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
    if (s == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        uint32_t h = (uint32_t)hashes[i];
        s[i] = (struct java_slot){(h ^ (h >> 16)) & (cap - 1), i};
    }
    qsort(s, (size_t)n, sizeof *s, java_slot_cmp);
    for (int i = 0; i < n; i++) {
        GREGOR_ASSERT(s[i].slot < cap);
        order[i] = s[i].index;
    }
    free(s);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The reassignment and topics files. */

struct target {
    const char *topic;         /* arena */
    int32_t partition;
    int32_t *replicas;         /* arena */
    int nreplicas;
    const char *moved_dir;     /* the first log dir other than "any", or NULL */
    int32_t moved_broker;
};

struct plan {
    struct target *parts;      /* in the file's order, duplicates kept (Kafka checks them) */
    int n;
};

static int tp_cmp(const char *ta, int32_t pa, const char *tb, int32_t pb)
{
    int c = strcmp(ta, tb);
    return c != 0 ? c : (pa < pb ? -1 : pa > pb);
}

static int target_cmp(const void *a, const void *b)
{
    const struct target *x = a, *y = b;
    int c = tp_cmp(x->topic, x->partition, y->topic, y->partition);
    return c != 0 ? c : (x < y ? -1 : x > y); /* stable: the later entry sorts after */
}

static int read_file(const char *path, struct arena *arena, char **text, size_t *len,
                     char *error, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(error, errlen, "Unable to read file %s", path);
        return -1;
    }
    /* A regular file's size, plus one byte to see it did not grow; a pipe may fill the bound. */
    struct stat st;
    size_t want = REASSIGN_FILE_MAX + 1;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < want)
        want = (size_t)st.st_size + 1;
    char *buf = arena_alloc(arena, want + 1);
    size_t n = buf ? fread(buf, 1, want, f) : 0;
    int failed = ferror(f);
    fclose(f);
    const char *why = buf == NULL ? "out of memory" : failed ? strerror(errno)
                    : n > REASSIGN_FILE_MAX ? "larger than the 16 MiB a reassignment file may have"
                    : n == want ? "it grew while it was read" : NULL;
    if (why != NULL) {
        snprintf(error, errlen, "%s: %s", path, why);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

static int parse_int_list(const struct json *v, struct arena *arena, int32_t **out, int *n,
                          char *error, size_t errlen)
{
    if (v->type != JSON_ARRAY)
        return json_expected(v, "`JSON array` value", error, errlen);
    if (v->n > REASSIGN_REPLICAS_MAX) {
        snprintf(error, errlen, "A replica list of %d entries (at most %d)", v->n,
                 REASSIGN_REPLICAS_MAX);
        return -1;
    }
    *out = arena_alloc(arena, (size_t)(v->n > 0 ? v->n : 1) * sizeof **out);
    if (*out == NULL) {
        snprintf(error, errlen, "Out of memory");
        return -1;
    }
    *n = 0;
    for (const struct json *e = v->first; e; e = e->next)
        if (json_to_int(e, &(*out)[(*n)++], error, errlen) != 0)
            return -1;
    return 0;
}

/* Java's List.toString of the replicas or the log dirs: "[1, 2]". */
static void format_list(char *out, size_t outlen, const struct json *list)
{
    size_t n = (size_t)snprintf(out, outlen, "[");
    for (const struct json *e = list->first; e && n < outlen; e = e->next)
        n += (size_t)snprintf(out + n, outlen - n, "%s%.*s", e == list->first ? "" : ", ",
                              (int)(e->len > 200 ? 200 : e->len), e->text);
    if (n < outlen)
        snprintf(out + n, outlen - n, "]");
}

static int parse_version(const struct json *root, char *error, size_t errlen)
{
    const struct json *version = json_get(root, "version");
    int32_t v = 1; /* Kafka's earliest version when none is given */
    if (version != NULL && json_to_int(version, &v, error, errlen) != 0)
        return -1;
    if (v != 1) {
        snprintf(error, errlen, "Not supported version field value %d", v);
        return -1;
    }
    return 0;
}

static int parse_target(const struct json *e, struct arena *arena, struct target *t,
                        char *error, size_t errlen)
{
    const struct json *f;
    if (json_need_object(e, error, errlen) != 0 ||
        json_apply(e, "topic", &f, error, errlen) != 0 ||
        json_to_string(f, &t->topic, error, errlen) != 0 ||
        json_apply(e, "partition", &f, error, errlen) != 0 ||
        json_to_int(f, &t->partition, error, errlen) != 0 ||
        json_apply(e, "replicas", &f, error, errlen) != 0 ||
        parse_int_list(f, arena, &t->replicas, &t->nreplicas, error, errlen) != 0)
        return -1;
    const struct json *replicas = f, *dirs = json_get(e, "log_dirs");
    if (dirs == NULL)
        return 0;
    if (dirs->type != JSON_ARRAY)
        return json_expected(dirs, "`JSON array` value", error, errlen);
    int k = 0;
    for (const struct json *d = dirs->first; d; d = d->next, k++) {
        const char *dir = NULL;
        if (json_to_string(d, &dir, error, errlen) != 0)
            return -1;
        if (strcmp(dir, "any") != 0 && t->moved_dir == NULL && k < t->nreplicas) {
            t->moved_dir = dir;
            t->moved_broker = t->replicas[k];
        }
    }
    if (dirs->n != t->nreplicas) {
        char a[512], b[512];
        format_list(a, sizeof a, replicas);
        format_list(b, sizeof b, dirs);
        snprintf(error, errlen, "Size of replicas list %s is different from size of log dirs "
                 "list %s for partition %s-%d", a, b, t->topic, t->partition);
        return -1;
    }
    return 0;
}

/* Kafka's parsePartitionReassignmentData: the partitions in the file's order. */
static int plan_parse(const char *text, size_t len, struct arena *arena, struct plan *plan,
                      char *error, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    if (len == 0) { /* Kafka's Json.tryParseFull says so before Jackson reads anything */
        snprintf(error, errlen, "The input string shouldn't be empty\n at [Source: UNKNOWN; "
                 "byte offset: #UNKNOWN]");
        return -1;
    }
    const struct json *root = json_parse(text, len, arena, error, errlen), *list;
    if (root == NULL || json_need_object(root, error, errlen) != 0 ||
        parse_version(root, error, errlen) != 0)
        return -1;
    if ((list = json_get(root, "partitions")) == NULL)
        return 0;
    if (list->type != JSON_ARRAY)
        return json_expected(list, "JSON array", error, errlen);
    if (list->n > REASSIGN_PARTITIONS_MAX) {
        snprintf(error, errlen, "%d partitions to reassign (at most %d)", list->n,
                 REASSIGN_PARTITIONS_MAX);
        return -1;
    }
    plan->parts = arena_alloc(arena, (size_t)(list->n > 0 ? list->n : 1) * sizeof *plan->parts);
    if (plan->parts == NULL) {
        snprintf(error, errlen, "Out of memory");
        return -1;
    }
    for (const struct json *e = list->first; e; e = e->next)
        if (parse_target(e, arena, &plan->parts[plan->n++], error, errlen) != 0)
            return -1;
    return 0;
}

/* The checks Kafka's --execute makes on the file before asking anything of the cluster. */
static int plan_check_execute(const struct plan *plan, char *error, size_t errlen)
{
    if (plan->n == 0) {
        snprintf(error, errlen, "Partition reassignment list cannot be empty");
        return -1;
    }
    for (int i = 0; i < plan->n; i++)
        if (plan->parts[i].nreplicas == 0) {
            snprintf(error, errlen, "Partition replica list cannot be empty");
            return -1;
        }
    /* Duplicate partitions: each once, in HashSet order. */
    int32_t *hashes = calloc((size_t)plan->n, sizeof *hashes);
    int *dup = malloc((size_t)plan->n * sizeof *dup), *order = malloc((size_t)plan->n * sizeof *order);
    int ndup = 0, rc = 0;
    if (hashes == NULL || dup == NULL || order == NULL) {
        snprintf(error, errlen, "Out of memory");
        rc = -1;
        goto out;
    }
    struct target *sorted = malloc((size_t)plan->n * sizeof *sorted);
    if (sorted == NULL) {
        snprintf(error, errlen, "Out of memory");
        rc = -1;
        goto out;
    }
    memcpy(sorted, plan->parts, (size_t)plan->n * sizeof *sorted);
    qsort(sorted, (size_t)plan->n, sizeof *sorted, target_cmp);
    for (int i = 1; i < plan->n; i++)
        if (tp_cmp(sorted[i].topic, sorted[i].partition, sorted[i - 1].topic,
                   sorted[i - 1].partition) == 0 &&
            (ndup == 0 || tp_cmp(sorted[i].topic, sorted[i].partition,
                                 sorted[dup[ndup - 1]].topic, sorted[dup[ndup - 1]].partition) != 0))
            dup[ndup++] = i;
    if (ndup > 0) {
        for (int i = 0; i < ndup; i++)
            hashes[i] = java_tp_hash(sorted[dup[i]].topic, sorted[dup[i]].partition);
        java_hash_order(hashes, ndup, order);
        size_t n = (size_t)snprintf(error, errlen, "Partition reassignment contains duplicate "
                                    "topic partitions: ");
        for (int i = 0; i < ndup && n < errlen; i++) {
            const struct target *t = &sorted[dup[order[i]]];
            n += (size_t)snprintf(error + n, errlen - n, "%s%s-%d", i ? "," : "", t->topic,
                                  t->partition);
        }
        rc = -1;
    }
    free(sorted);
    if (rc != 0)
        goto out;
    /* Duplicate replicas within a partition: "t-0 contains multiple entries for 1,2. ..." */
    size_t n = 0;
    for (int i = 0; i < plan->n; i++) {
        const struct target *t = &plan->parts[i];
        int32_t dups[REASSIGN_REPLICAS_MAX];
        int nd = 0;
        for (int a = 0; a < t->nreplicas; a++) {
            bool seen = false, listed = false;
            for (int b = 0; b < a; b++)
                seen |= t->replicas[b] == t->replicas[a];
            for (int b = 0; b < nd; b++)
                listed |= dups[b] == t->replicas[a];
            if (seen && !listed)
                dups[nd++] = t->replicas[a];
        }
        if (nd == 0)
            continue;
        int dorder[REASSIGN_REPLICAS_MAX];
        java_hash_order(dups, nd, dorder);
        if (n == 0)
            n = (size_t)snprintf(error, errlen, "Partition replica lists may not contain "
                                 "duplicate entries: ");
        else if (n < errlen)
            n += (size_t)snprintf(error + n, errlen - n, ". ");
        if (n < errlen)
            n += (size_t)snprintf(error + n, errlen - n, "%s-%d contains multiple entries for ",
                                  t->topic, t->partition);
        for (int k = 0; k < nd && n < errlen; k++)
            n += (size_t)snprintf(error + n, errlen - n, "%s%d", k ? "," : "", dups[dorder[k]]);
    }
    if (n > 0)
        rc = -1;
out:
    free(hashes);
    free(dup);
    free(order);
    return rc;
}

/* gregor moves no replica between the log directories of one broker (no AlterReplicaLogDirs):
 * a file asking for it is refused before anything changes. */
static int plan_check_no_dir_moves(const struct plan *plan, char *error, size_t errlen)
{
    for (int i = 0; i < plan->n; i++)
        if (plan->parts[i].moved_dir != NULL) {
            snprintf(error, errlen, "Moving replicas between log directories is not supported "
                     "by gregor (partition %s-%d, broker %d, log dir %s): give \"any\" as every "
                     "log dir, or leave log_dirs out", plan->parts[i].topic,
                     plan->parts[i].partition, plan->parts[i].moved_broker,
                     plan->parts[i].moved_dir);
            return -1;
        }
    return 0;
}

/* Kafka's parseTopicsData: the topic names of a topics-to-move file. */
static int topics_parse(const char *text, size_t len, struct arena *arena, const char ***out,
                        int *n, char *error, size_t errlen)
{
    *n = 0;
    const struct json *root = json_parse(text, len, arena, error, errlen), *list;
    if (root == NULL) {
        snprintf(error, errlen, "The input string is not a valid JSON");
        return -1;
    }
    if (json_need_object(root, error, errlen) != 0 || parse_version(root, error, errlen) != 0)
        return -1;
    if ((list = json_get(root, "topics")) == NULL)
        return 0;
    if (list->type != JSON_ARRAY)
        return json_expected(list, "JSON array", error, errlen);
    *out = arena_alloc(arena, (size_t)(list->n > 0 ? list->n : 1) * sizeof **out);
    if (*out == NULL || list->n > REASSIGN_PARTITIONS_MAX) {
        snprintf(error, errlen, "Too many topics: %d", list->n);
        return -1;
    }
    for (const struct json *e = list->first; e; e = e->next) {
        const struct json *f;
        if (json_need_object(e, error, errlen) != 0 ||
            json_apply(e, "topic", &f, error, errlen) != 0 ||
            json_to_string(f, &(*out)[(*n)++], error, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Java's Integer.parseInt: an optional sign and decimal digits within int32. */
static int java_parse_int(const char *s, size_t len, int32_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return -1;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > (int64_t)INT32_MAX + 1)
            return -1;
    }
    v = neg ? -v : v;
    if (v > INT32_MAX || v < INT32_MIN)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* --broker-list as Kafka splits it (String.split drops trailing empty parts). */
static int broker_list_parse(const char *text, int32_t *ids, int *n, char *error, size_t errlen)
{
    *n = 0;
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == ',')
        len--;
    const char *p = text, *end = text + len;
    if (len == 0) /* "".split(",") is [""] */
        end = p;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        if (*n >= REASSIGN_BROKERS_MAX || java_parse_int(p, (size_t)(e - p), &ids[*n]) != 0) {
            snprintf(error, errlen, "For input string: \"%.*s\"", (int)(e - p > 200 ? 200 : e - p), p);
            return -1;
        }
        (*n)++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    int32_t dups[64];
    int nd = 0;
    for (int a = 0; a < *n; a++) {
        bool seen = false, listed = false;
        for (int b = 0; b < a && !seen; b++)
            seen = ids[b] == ids[a];
        for (int b = 0; b < nd; b++)
            listed |= dups[b] == ids[a];
        if (seen && !listed && nd < 64)
            dups[nd++] = ids[a];
    }
    if (nd > 0) {
        int order[64];
        java_hash_order(dups, nd, order);
        size_t k = (size_t)snprintf(error, errlen, "Broker list contains duplicate entries: [");
        for (int i = 0; i < nd && k < errlen; i++)
            k += (size_t)snprintf(error + k, errlen - k, "%s%d", i ? ", " : "", dups[order[i]]);
        if (k < errlen)
            snprintf(error + k, errlen - k, "]");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Kafka's replica assignment (AdminUtils.assignReplicasToBrokers): the first replica of each
 * partition round-robin from a random broker, the others at a shift that grows each time the
 * partitions wrap around the brokers; with racks, over a rack-alternated broker list and
 * preferring racks and brokers that have no replica of the partition yet. */

struct broker_meta {
    int32_t id;
    const char *rack; /* NULL when none (or rack awareness disabled); borrowed */
};

static int replica_index(int first, int shift, int k, int nbrokers)
{
    int64_t s = 1 + ((int64_t)shift + k) % (nbrokers - 1);
    return (int)((first + s) % nbrokers);
}

static int rack_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int int_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* Racks sorted by name, each rack's brokers by id, then one broker of each rack in turn. */
static int rack_alternated(const struct broker_meta *b, int n, int32_t *out, int *nracks)
{
    const char **racks = malloc((size_t)n * sizeof *racks);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    int *taken = calloc((size_t)n, sizeof *taken);
    if (racks == NULL || ids == NULL || taken == NULL) {
        free(racks);
        free(ids);
        free(taken);
        return -1;
    }
    int nr = 0;
    for (int i = 0; i < n; i++) {
        bool known = false;
        for (int k = 0; k < nr && !known; k++)
            known = strcmp(racks[k], b[i].rack) == 0;
        if (!known)
            racks[nr++] = b[i].rack;
    }
    qsort(racks, (size_t)nr, sizeof *racks, rack_cmp);
    int produced = 0;
    for (int r = 0; produced < n; r = (r + 1) % nr) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(b[i].rack, racks[r]) == 0)
                ids[m++] = b[i].id;
        qsort(ids, (size_t)m, sizeof *ids, int_cmp);
        if (taken[r] < m)
            out[produced++] = ids[taken[r]++];
    }
    *nracks = nr;
    free(racks);
    free(ids);
    free(taken);
    return 0;
}

static const char *rack_of(const struct broker_meta *b, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (b[i].id == id)
            return b[i].rack;
    return "";
}

/* out[p * rf + k]: replica k of partition p. start and shift are Kafka's random draws. */
static int assign_replicas(const struct broker_meta *b, int n, int nparts, int rf, int start,
                           int shift, int32_t *out, char *error, size_t errlen)
{
    if (nparts <= 0) {
        snprintf(error, errlen, "Number of partitions must be larger than 0.");
        return -1;
    }
    if (rf <= 0) {
        snprintf(error, errlen, "Replication factor must be larger than 0.");
        return -1;
    }
    if (rf > n) {
        snprintf(error, errlen, "Replication factor: %d larger than available brokers: %d.", rf,
                 n);
        return -1;
    }
    bool racks = false;
    for (int i = 0; i < n; i++)
        racks |= b[i].rack != NULL;
    int32_t *list = malloc((size_t)n * sizeof *list);
    if (list == NULL)
        return -1;
    int nracks = 1;
    if (!racks) {
        for (int i = 0; i < n; i++)
            list[i] = b[i].id;
    } else if (rack_alternated(b, n, list, &nracks) != 0) {
        free(list);
        return -1;
    }
    for (int p = 0; p < nparts; p++) {
        if (p > 0 && p % n == 0)
            shift++;
        int first = (p + start) % n;
        int32_t *reps = out + (size_t)p * rf;
        reps[0] = list[first];
        if (!racks) {
            for (int j = 0; j < rf - 1; j++)
                reps[j + 1] = list[replica_index(first, shift, j, n)];
            continue;
        }
        /* Skip a broker whose rack has a replica while some rack has none, or which has a
         * replica while some broker has none. */
        int placed = 1, k = 0;
        while (placed < rf) {
            int32_t cand = list[replica_index(first, shift * nracks, k++, n)];
            const char *rack = rack_of(b, n, cand);
            int racks_used = 0;
            bool rack_has = false, broker_has = false;
            for (int q = 0; q < placed; q++) {
                const char *qr = rack_of(b, n, reps[q]);
                bool seen_before = false;
                for (int z = 0; z < q; z++)
                    seen_before |= strcmp(rack_of(b, n, reps[z]), qr) == 0;
                racks_used += !seen_before;
                rack_has |= strcmp(qr, rack) == 0;
                broker_has |= reps[q] == cand;
            }
            if ((!rack_has || racks_used == nracks) && (!broker_has || placed == n))
                reps[placed++] = cand;
        }
    }
    /* rf <= brokers: the shifts never land a partition twice on one broker. */
    for (int p = 0; p < nparts; p++)
        for (int a = 0; a < rf; a++)
            for (int q = a + 1; q < rf; q++)
                GREGOR_ASSERT(out[(size_t)p * rf + a] != out[(size_t)p * rf + q]);
    free(list);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The cluster: brokers from Metadata, requests to the controller and to each broker. */

/* Kafka's exception class and default message for the error codes these APIs answer. */
static void kafka_exception(int16_t code, const char **cls, const char **msg)
{
    switch (code) {
    case 3: *cls = "UnknownTopicOrPartitionException";
        *msg = "This server does not host this topic-partition."; return;
    case 7: *cls = "TimeoutException"; *msg = "The request timed out."; return;
    case 29: *cls = "TopicAuthorizationException"; *msg = "Topic authorization failed."; return;
    case 31: *cls = "ClusterAuthorizationException";
        *msg = "Cluster authorization failed."; return;
    case 35: *cls = "UnsupportedVersionException";
        *msg = "The version of API is not supported."; return;
    case 37: *cls = "InvalidPartitionsException"; *msg = "Number of partitions is below 1."; return;
    case 38: *cls = "InvalidReplicationFactorException";
        *msg = "Replication factor is below 1 or larger than the number of available brokers.";
        return;
    case 39: *cls = "InvalidReplicaAssignmentException";
        *msg = "Replica assignment is invalid."; return;
    case 40: *cls = "InvalidConfigurationException"; *msg = "Configuration is invalid."; return;
    case 41: *cls = "NotControllerException";
        *msg = "This is not the correct controller for this cluster."; return;
    case 42: *cls = "InvalidRequestException";
        *msg = "This most likely occurs because of a request being malformed by the client "
               "library or the message was sent to an incompatible broker. See the broker logs "
               "for more details."; return;
    case 44: *cls = "PolicyViolationException";
        *msg = "Request parameters do not satisfy the configured policy."; return;
    case 60: *cls = "ReassignmentInProgressException";
        *msg = "A partition reassignment is in progress."; return;
    case 85: *cls = "NoReassignmentInProgressException";
        *msg = "No partition reassignment is in progress."; return;
    default: *cls = "UnknownServerException";
        *msg = "The server experienced an unexpected error when processing the request."; return;
    }
}

/* The message of the exception an answer's error becomes (its own, else the default). */
static const char *error_message(int16_t code, struct kstr message, char *buf, size_t len)
{
    const char *cls, *def;
    kafka_exception(code, &cls, &def);
    if (message.ptr != NULL)
        snprintf(buf, len, "%.*s", message.len, message.ptr);
    else
        snprintf(buf, len, "%s", def);
    return buf;
}

struct node {
    int32_t id;
    char host[256];
    int32_t port;
    const char *rack; /* arena; NULL when none */
};

struct reassign_ctx {
    struct cli_cmd *cmd;
    struct arena arena;       /* the files, the answers: freed at the end of the run */
    struct cli_wire boot;     /* to the first reachable bootstrap broker */
    struct node *nodes;       /* in the order Metadata lists them */
    int nnodes;
    int32_t controller;
    bool terse;               /* error is printed as is, not as "Error: ..." */
    char error[2048];
};

static int ctx_fail(struct reassign_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctx_fail(struct reassign_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return -1;
}

/* As Kafka's tool prints an ExecutionException: the cause's class and message. */
static int ctx_fail_code(struct reassign_ctx *c, int16_t code, struct kstr message)
{
    const char *cls, *def;
    char msg[1024];
    kafka_exception(code, &cls, &def);
    return ctx_fail(c, "org.apache.kafka.common.errors.%s: %s", cls,
                    error_message(code, message, msg, sizeof msg));
}

static struct metadata_response *ctx_metadata(struct reassign_ctx *c, const char *const *topics,
                                              int ntopics)
{
    struct metadata_request req;
    metadata_request_set_defaults(&req);
    req.allow_auto_topic_creation = false;
    req.n_topics = ntopics;
    req.topics = ntopics > 0 ? arena_alloc(&c->arena, (size_t)ntopics * sizeof *req.topics) : NULL;
    if (ntopics > 0 && req.topics == NULL) {
        ctx_fail(c, "Out of memory");
        return NULL;
    }
    for (int i = 0; i < ntopics; i++) {
        metadata_request_metadata_request_topic_set_defaults(&req.topics[i]);
        req.topics[i].name = (struct kstr){(char *)topics[i], (int32_t)strlen(topics[i])};
    }
    void *out;
    if (c->boot.fd < 0 && cli_wire_connect(&c->boot, cli_value(c->cmd, "bootstrap-server"),
                                           CLI_ADMIN_TIMEOUT_MS) != 0) {
        ctx_fail(c, "org.apache.kafka.common.errors.TimeoutException: %s", c->boot.error);
        return NULL;
    }
    if (cli_wire_call(&c->boot, PROTO_API_METADATA, METADATA_VERSION, &req, &c->arena, &out) != 0) {
        ctx_fail(c, "org.apache.kafka.common.errors.TimeoutException: %s", c->boot.error);
        return NULL;
    }
    return out;
}

/* The brokers and the controller (Kafka's describeCluster). */
static int ctx_connect(struct reassign_ctx *c)
{
    struct metadata_response *md = ctx_metadata(c, NULL, 0);
    if (md == NULL)
        return -1;
    if (md->n_brokers > REASSIGN_BROKERS_MAX)
        return ctx_fail(c, "Metadata lists %d brokers (at most %d)", md->n_brokers,
                        REASSIGN_BROKERS_MAX);
    c->nodes = arena_alloc(&c->arena, (size_t)(md->n_brokers + 1) * sizeof *c->nodes);
    if (c->nodes == NULL)
        return ctx_fail(c, "Out of memory");
    c->nnodes = md->n_brokers;
    c->controller = md->controller_id;
    for (int32_t i = 0; i < md->n_brokers; i++) {
        struct node *n = &c->nodes[i];
        n->id = md->brokers[i].node_id;
        snprintf(n->host, sizeof n->host, "%.*s", md->brokers[i].host.len, md->brokers[i].host.ptr);
        n->port = md->brokers[i].port;
        n->rack = md->brokers[i].rack.ptr ? arena_strndup(&c->arena, md->brokers[i].rack.ptr,
                                                          (size_t)md->brokers[i].rack.len) : NULL;
    }
    return 0;
}

static const struct node *ctx_node(const struct reassign_ctx *c, int32_t id)
{
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].id == id)
            return &c->nodes[i];
    return NULL;
}

/* One request to broker id on its own connection. With check_api, the broker must list the
 * API in ApiVersions first (a broker that does not serve it gets no request it cannot read). */
static void *ctx_call(struct reassign_ctx *c, int32_t id, int16_t key, int16_t version,
                      const void *req, bool check_api)
{
    const struct node *n = ctx_node(c, id);
    if (n == NULL) {
        ctx_fail(c, "org.apache.kafka.common.errors.TimeoutException: broker %d is not in the "
                 "cluster's metadata", id);
        return NULL;
    }
    char addr[300];
    snprintf(addr, sizeof addr, strchr(n->host, ':') ? "[%s]:%d" : "%s:%d", n->host, n->port);
    struct cli_wire w = {.fd = -1};
    void *out = NULL;
    if (cli_wire_connect(&w, addr, CLI_ADMIN_TIMEOUT_MS) != 0)
        goto failed;
    if (check_api) {
        struct api_versions_request av;
        api_versions_request_set_defaults(&av);
        void *avout;
        if (cli_wire_call(&w, PROTO_API_API_VERSIONS, 0, &av, &c->arena, &avout) != 0)
            goto failed;
        struct api_versions_response *r = avout;
        bool served = false;
        for (int32_t i = 0; i < r->n_api_keys; i++)
            served |= r->api_keys[i].api_key == key && r->api_keys[i].min_version <= version &&
                      r->api_keys[i].max_version >= version;
        if (!served) {
            ctx_fail(c, "org.apache.kafka.common.errors.UnsupportedVersionException: broker %d "
                     "does not serve %s v%d", id, proto_api_find(key)->name, version);
            cli_wire_close(&w);
            return NULL;
        }
    }
    if (cli_wire_call(&w, key, version, req, &c->arena, &out) != 0)
        goto failed;
    cli_wire_close(&w);
    return out;
failed:
    ctx_fail(c, "org.apache.kafka.common.errors.TimeoutException: broker %d (%s): %s", id, addr,
             w.error);
    cli_wire_close(&w);
    return NULL;
}

/* ---- the reassignments in progress ---- */

struct ongoing {
    const char *topic;
    int32_t partition;
    const int32_t *replicas, *adding, *removing; /* borrowed from the answer (arena) */
    int nreplicas, nadding, nremoving;
};

static int ongoing_cmp(const void *a, const void *b)
{
    const struct ongoing *x = a, *y = b;
    return tp_cmp(x->topic, x->partition, y->topic, y->partition);
}

/* ListPartitionReassignments to the controller: every one (plan NULL) or those of the plan's
 * partitions; sorted by topic and partition into *out (arena). */
static int list_ongoing(struct reassign_ctx *c, const struct plan *plan, struct ongoing **out,
                        int *n)
{
    struct list_partition_reassignments_request req;
    list_partition_reassignments_request_set_defaults(&req);
    req.timeout_ms = CLI_ADMIN_TIMEOUT_MS;
    req.topics = NULL;
    req.n_topics = -1; /* null: all */
    if (plan != NULL) {
        req.topics = arena_alloc(&c->arena, (size_t)(plan->n + 1) * sizeof *req.topics);
        if (req.topics == NULL)
            return ctx_fail(c, "Out of memory");
        req.n_topics = 0;
        for (int i = 0; i < plan->n; i++) {
            const struct target *t = &plan->parts[i];
            struct list_partition_reassignments_request_list_partition_reassignments_topics *rt = NULL;
            for (int k = 0; k < req.n_topics && rt == NULL; k++)
                if (strcmp(req.topics[k].name.ptr, t->topic) == 0)
                    rt = &req.topics[k];
            if (rt == NULL) {
                rt = &req.topics[req.n_topics++];
                list_partition_reassignments_request_list_partition_reassignments_topics_set_defaults(rt);
                rt->name = (struct kstr){(char *)t->topic, (int32_t)strlen(t->topic)};
                rt->partition_indexes = arena_alloc(&c->arena, (size_t)plan->n * sizeof(int32_t));
                if (rt->partition_indexes == NULL)
                    return ctx_fail(c, "Out of memory");
            }
            bool listed = false;
            for (int k = 0; k < rt->n_partition_indexes; k++)
                listed |= rt->partition_indexes[k] == t->partition;
            if (!listed)
                rt->partition_indexes[rt->n_partition_indexes++] = t->partition;
        }
    }
    struct list_partition_reassignments_response *r =
        ctx_call(c, c->controller, PROTO_API_LIST_PARTITION_REASSIGNMENTS, REASSIGN_VERSION, &req,
                 true);
    if (r == NULL)
        return -1;
    if (r->error_code != 0)
        return ctx_fail_code(c, r->error_code, r->error_message);
    int total = 0;
    for (int32_t i = 0; i < r->n_topics; i++)
        total += r->topics[i].n_partitions;
    *out = arena_alloc(&c->arena, (size_t)(total + 1) * sizeof **out);
    if (*out == NULL)
        return ctx_fail(c, "Out of memory");
    *n = 0;
    for (int32_t i = 0; i < r->n_topics; i++) {
        const char *topic = arena_strndup(&c->arena, r->topics[i].name.ptr,
                                          (size_t)r->topics[i].name.len);
        for (int32_t k = 0; k < r->topics[i].n_partitions; k++) {
            const struct list_partition_reassignments_response_ongoing_partition_reassignment *p =
                &r->topics[i].partitions[k];
            (*out)[(*n)++] = (struct ongoing){topic, p->partition_index, p->replicas,
                                              p->adding_replicas, p->removing_replicas,
                                              p->n_replicas, p->n_adding_replicas,
                                              p->n_removing_replicas};
        }
    }
    qsort(*out, (size_t)*n, sizeof **out, ongoing_cmp);
    return 0;
}

static const struct ongoing *ongoing_find(const struct ongoing *o, int n, const char *topic,
                                          int32_t partition)
{
    for (int i = 0; i < n; i++)
        if (o[i].partition == partition && strcmp(o[i].topic, topic) == 0)
            return &o[i];
    return NULL;
}

static void print_ids(const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", ids[i]);
}

/* ---- AlterPartitionReassignments ---- */

struct change {
    const char *topic;
    int32_t partition;
    const int32_t *replicas;  /* NULL: cancel */
    int nreplicas;
    char error[512];          /* set when the controller refused it */
};

static int change_cmp(const void *a, const void *b)
{
    const struct change *x = a, *y = b;
    return tp_cmp(x->topic, x->partition, y->topic, y->partition);
}

/* The changes the controller refused, each on its own line after the header already in c->error
 * (k bytes): -1, printed tersely (Kafka's message alone). */
static int changes_failed(struct reassign_ctx *c, const struct change *ch, int n, size_t k)
{
    c->terse = true;
    for (int i = 0; i < n && k < sizeof c->error; i++)
        if (ch[i].error[0])
            k += (size_t)snprintf(c->error + k, sizeof c->error - k, "\n%s-%d: %s", ch[i].topic,
                                  ch[i].partition, ch[i].error);
    return -1;
}

/* The changes' partitions, comma separated, then a newline. */
static void print_changes(const struct change *ch, int n)
{
    for (int i = 0; i < n; i++)
        printf("%s%s-%d", i ? "," : "", ch[i].topic, ch[i].partition);
    printf("\n");
}

/* Sends every change (sorted by the call) to the controller in one request; the number
 * refused, each with its message, or -1 when the request itself failed. */
static int alter_reassignments(struct reassign_ctx *c, struct change *ch, int n)
{
    qsort(ch, (size_t)n, sizeof *ch, change_cmp);
    struct alter_partition_reassignments_request req;
    alter_partition_reassignments_request_set_defaults(&req);
    req.timeout_ms = CLI_ADMIN_TIMEOUT_MS;
    req.topics = arena_alloc(&c->arena, (size_t)(n + 1) * sizeof *req.topics);
    struct alter_partition_reassignments_request_reassignable_partition *parts =
        arena_alloc(&c->arena, (size_t)(n + 1) * sizeof *parts);
    if (req.topics == NULL || parts == NULL)
        return ctx_fail(c, "Out of memory");
    req.n_topics = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(ch[i].topic, ch[i - 1].topic) != 0) {
            struct alter_partition_reassignments_request_reassignable_topic *t =
                &req.topics[req.n_topics++];
            alter_partition_reassignments_request_reassignable_topic_set_defaults(t);
            t->name = (struct kstr){(char *)ch[i].topic, (int32_t)strlen(ch[i].topic)};
            t->partitions = &parts[i];
        }
        req.topics[req.n_topics - 1].n_partitions++;
        alter_partition_reassignments_request_reassignable_partition_set_defaults(&parts[i]);
        parts[i].partition_index = ch[i].partition;
        parts[i].replicas = (int32_t *)ch[i].replicas;
        parts[i].n_replicas = ch[i].replicas ? ch[i].nreplicas : -1;
    }
    int32_t sent = 0;
    for (int32_t i = 0; i < req.n_topics; i++)
        sent += req.topics[i].n_partitions;
    GREGOR_ASSERT(sent == n); /* each change once, under its topic */
    struct alter_partition_reassignments_response *r =
        ctx_call(c, c->controller, PROTO_API_ALTER_PARTITION_REASSIGNMENTS, REASSIGN_VERSION,
                 &req, true);
    if (r == NULL)
        return -1;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        const struct alter_partition_reassignments_response_reassignable_partition_response *p = NULL;
        for (int32_t k = 0; k < r->n_responses && p == NULL; k++) {
            if ((size_t)r->responses[k].name.len != strlen(ch[i].topic) ||
                memcmp(r->responses[k].name.ptr, ch[i].topic, (size_t)r->responses[k].name.len) != 0)
                continue;
            for (int32_t q = 0; q < r->responses[k].n_partitions && p == NULL; q++)
                if (r->responses[k].partitions[q].partition_index == ch[i].partition)
                    p = &r->responses[k].partitions[q];
        }
        if (r->error_code != 0)
            error_message(r->error_code, r->error_message, ch[i].error, sizeof ch[i].error);
        else if (p == NULL)
            snprintf(ch[i].error, sizeof ch[i].error, "The controller's answer left this "
                     "partition out");
        else if (p->error_code != 0)
            error_message(p->error_code, p->error_message, ch[i].error, sizeof ch[i].error);
        failed += ch[i].error[0] != '\0';
    }
    return failed;
}

/* ---- IncrementalAlterConfigs: the throttles ---- */

struct config_op {
    const char *name;
    const char *value; /* NULL with DELETE */
};

/* One resource's changes; BROKER resources go to that broker, TOPIC ones to any. */
static int alter_configs(struct reassign_ctx *c, int8_t type, const char *name, int8_t op,
                         const struct config_op *ops, int nops)
{
    struct incremental_alter_configs_request_alterable_config cfg[4];
    GREGOR_ASSERT(nops <= 4);
    for (int i = 0; i < nops; i++) {
        incremental_alter_configs_request_alterable_config_set_defaults(&cfg[i]);
        cfg[i].name = (struct kstr){(char *)ops[i].name, (int32_t)strlen(ops[i].name)};
        cfg[i].config_operation = op;
        cfg[i].value = ops[i].value ? (struct kstr){(char *)ops[i].value,
                                                     (int32_t)strlen(ops[i].value)}
                                    : (struct kstr){NULL, -1};
    }
    struct incremental_alter_configs_request_alter_configs_resource res;
    incremental_alter_configs_request_alter_configs_resource_set_defaults(&res);
    res.resource_type = type;
    res.resource_name = (struct kstr){(char *)name, (int32_t)strlen(name)};
    res.configs = cfg;
    res.n_configs = nops;
    struct incremental_alter_configs_request req;
    incremental_alter_configs_request_set_defaults(&req);
    req.resources = &res;
    req.n_resources = 1;
    void *out = NULL;
    if (type == RESOURCE_BROKER) {
        out = ctx_call(c, (int32_t)strtol(name, NULL, 10), PROTO_API_INCREMENTAL_ALTER_CONFIGS,
                       IAC_VERSION, &req, false);
        if (out == NULL)
            return -1;
    } else if (cli_wire_call(&c->boot, PROTO_API_INCREMENTAL_ALTER_CONFIGS, IAC_VERSION, &req,
                             &c->arena, &out) != 0) {
        return ctx_fail(c, "org.apache.kafka.common.errors.TimeoutException: %s", c->boot.error);
    }
    struct incremental_alter_configs_response *r = out;
    for (int32_t i = 0; i < r->n_responses; i++)
        if (r->responses[i].error_code != 0)
            return ctx_fail_code(c, r->responses[i].error_code, r->responses[i].error_message);
    return 0;
}

static const struct config_op broker_throttles[] = {
    {"leader.replication.throttled.rate", NULL},
    {"follower.replication.throttled.rate", NULL},
    {"replica.alter.log.dirs.io.max.bytes.per.second", NULL},
};
static const struct config_op topic_throttles[] = {
    {"leader.replication.throttled.replicas", NULL},
    {"follower.replication.throttled.replicas", NULL},
};

/* Kafka's clearAllThrottles: every live broker and every broker of the plan, and every topic
 * of the plan, printed in HashSet order. */
static int clear_all_throttles(struct reassign_ctx *c, const struct plan *plan)
{
    int cap = c->nnodes;
    for (int i = 0; i < plan->n; i++)
        cap += plan->parts[i].nreplicas;
    int32_t *ids = calloc((size_t)(cap + 1), sizeof *ids);
    int32_t *hashes = calloc((size_t)(cap + plan->n + 1), sizeof *hashes);
    int *order = malloc((size_t)(cap + plan->n + 1) * sizeof *order);
    const char **topics = malloc((size_t)(plan->n + 1) * sizeof *topics);
    int rc = -1, nids = 0, ntopics = 0;
    if (ids == NULL || hashes == NULL || order == NULL || topics == NULL) {
        ctx_fail(c, "Out of memory");
        goto out;
    }
    for (int i = 0; i < cap; i++) {
        int32_t id = i < c->nnodes ? c->nodes[i].id : 0;
        if (i >= c->nnodes) {
            int k = i - c->nnodes;
            for (int p = 0; p < plan->n; p++) {
                if (k < plan->parts[p].nreplicas) {
                    id = plan->parts[p].replicas[k];
                    break;
                }
                k -= plan->parts[p].nreplicas;
            }
        }
        bool seen = false;
        for (int k = 0; k < nids && !seen; k++)
            seen = ids[k] == id;
        if (!seen)
            ids[nids++] = id;
    }
    java_hash_order(ids, nids, order);
    printf("Clearing broker-level throttles on broker%s ", nids == 1 ? "" : "s");
    for (int i = 0; i < nids; i++)
        printf("%s%d", i ? "," : "", ids[order[i]]);
    printf("\n");
    for (int i = 0; i < nids; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", ids[order[i]]);
        if (alter_configs(c, RESOURCE_BROKER, name, CONFIG_OP_DELETE, broker_throttles, 3) != 0)
            goto out;
    }
    for (int i = 0; i < plan->n; i++) {
        bool seen = false;
        for (int k = 0; k < ntopics && !seen; k++)
            seen = strcmp(topics[k], plan->parts[i].topic) == 0;
        if (!seen) {
            hashes[ntopics] = java_string_hash(plan->parts[i].topic);
            topics[ntopics++] = plan->parts[i].topic;
        }
    }
    java_hash_order(hashes, ntopics, order);
    printf("Clearing topic-level throttles on topic%s ", ntopics == 1 ? "" : "s");
    for (int i = 0; i < ntopics; i++)
        printf("%s%s", i ? "," : "", topics[order[i]]);
    printf("\n");
    for (int i = 0; i < ntopics; i++)
        if (alter_configs(c, RESOURCE_TOPIC, topics[order[i]], CONFIG_OP_DELETE, topic_throttles,
                          2) != 0)
            goto out;
    rc = 0;
out:
    free(ids);
    free(hashes);
    free(order);
    free(topics);
    return rc;
}

/* ---- describing topics ---- */

static const struct metadata_response_metadata_response_topic *
md_topic(const struct metadata_response *md, const char *name)
{
    size_t n = strlen(name);
    for (int32_t i = 0; i < md->n_topics; i++)
        if ((size_t)md->topics[i].name.len == n && memcmp(md->topics[i].name.ptr, name, n) == 0)
            return &md->topics[i];
    return NULL;
}

static const struct metadata_response_metadata_response_partition *
md_partition(const struct metadata_response_metadata_response_topic *t, int32_t p)
{
    for (int32_t i = 0; t != NULL && i < t->n_partitions; i++)
        if (t->partitions[i].partition_index == p)
            return &t->partitions[i];
    return NULL;
}

/* The distinct names, in first-seen order. */
static int unique_topics(const char *const *names, int n, const char **out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < k && !seen; j++)
            seen = strcmp(out[j], names[i]) == 0;
        if (!seen)
            out[k++] = names[i];
    }
    return k;
}

/* Metadata for the topics (distinct, in the order given). Unless unknown_ok, a topic the
 * cluster does not know fails as Kafka's describeTopics does, the first in HashSet order. */
static struct metadata_response *describe_topics(struct reassign_ctx *c, const char **names,
                                                 int n, bool unknown_ok)
{
    struct metadata_response *md = ctx_metadata(c, names, n);
    if (md == NULL)
        return NULL;
    int32_t *hashes = calloc((size_t)(n + 1), sizeof *hashes);
    int *order = malloc((size_t)(n + 1) * sizeof *order);
    if (hashes == NULL || order == NULL) {
        free(hashes);
        free(order);
        ctx_fail(c, "Out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        hashes[i] = java_string_hash(names[i]);
    java_hash_order(hashes, n, order);
    for (int i = 0; i < n && md != NULL; i++) {
        const struct metadata_response_metadata_response_topic *t = md_topic(md, names[order[i]]);
        int16_t code = t == NULL ? 3 : t->error_code;
        if (code == 3 && !unknown_ok) {
            ctx_fail(c, "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: Topic "
                     "%s not found.", names[order[i]]);
            md = NULL;
        } else if (code != 0 && code != 3) {
            ctx_fail_code(c, code, (struct kstr){NULL, -1});
            md = NULL;
        }
    }
    free(hashes);
    free(order);
    return md;
}

/* ---- printing ---- */

struct assignment {
    const char *topic;
    int32_t partition;
    const int32_t *replicas;
    int nreplicas;
};

static int assignment_cmp(const void *a, const void *b)
{
    const struct assignment *x = a, *y = b;
    return tp_cmp(x->topic, x->partition, y->topic, y->partition);
}

/* Kafka's formatAsReassignmentJson (Jackson, compact), sorted by topic and partition. */
static void print_assignment_json(struct assignment *a, int n)
{
    qsort(a, (size_t)n, sizeof *a, assignment_cmp);
    printf("{\"version\":1,\"partitions\":[");
    for (int i = 0; i < n; i++) {
        printf("%s{\"topic\":", i ? "," : "");
        json_write_string(stdout, a[i].topic, strlen(a[i].topic));
        printf(",\"partition\":%d,\"replicas\":[", a[i].partition);
        print_ids(a[i].replicas, a[i].nreplicas);
        printf("],\"log_dirs\":[");
        for (int k = 0; k < a[i].nreplicas; k++)
            printf("%s\"any\"", k ? "," : "");
        printf("]}");
    }
    printf("]}");
}

static const char *file_option(struct reassign_ctx *c, const char *opt, char **text, size_t *len)
{
    const char *path = cli_value(c->cmd, opt);
    if (read_file(path, &c->arena, text, len, c->error, sizeof c->error) != 0)
        return NULL;
    return path;
}

/* ---- --list ---- */

static int run_list(struct reassign_ctx *c)
{
    struct ongoing *o;
    int n;
    if (ctx_connect(c) != 0 || list_ongoing(c, NULL, &o, &n) != 0)
        return -1;
    if (n == 0) {
        printf("No partition reassignments found.\n");
        return 0;
    }
    printf("Current partition reassignments:\n");
    for (int i = 0; i < n; i++) {
        printf("%s-%d: replicas: ", o[i].topic, o[i].partition);
        print_ids(o[i].replicas, o[i].nreplicas);
        printf(".");
        if (o[i].nadding > 0) {
            printf(" adding: ");
            print_ids(o[i].adding, o[i].nadding);
            printf(".");
        }
        if (o[i].nremoving > 0) {
            printf(" removing: ");
            print_ids(o[i].removing, o[i].nremoving);
            printf(".");
        }
        printf("\n");
    }
    return 0;
}

/* ---- --generate ---- */

static int run_generate(struct reassign_ctx *c)
{
    char *text;
    size_t len;
    const char **topics = NULL;
    int ntopics, nids;
    if (file_option(c, "topics-to-move-json-file", &text, &len) == NULL)
        return -1;
    int32_t *ids = arena_alloc(&c->arena, REASSIGN_BROKERS_MAX * sizeof *ids);
    if (ids == NULL)
        return ctx_fail(c, "Out of memory");
    if (broker_list_parse(cli_value(c->cmd, "broker-list"), ids, &nids, c->error,
                          sizeof c->error) != 0 ||
        topics_parse(text, len, &c->arena, &topics, &ntopics, c->error, sizeof c->error) != 0)
        return -1;
    const char **uniq = arena_alloc(&c->arena, (size_t)(ntopics + 1) * sizeof *uniq);
    if (uniq == NULL)
        return ctx_fail(c, "Out of memory");
    int nuniq = unique_topics(topics, ntopics, uniq);
    if (nuniq != ntopics) {
        /* The names listed more than once, each once, in HashSet order. */
        const char **dups = arena_alloc(&c->arena, (size_t)ntopics * sizeof *dups);
        int32_t hashes[256] = {0};
        int order[256], nd = 0;
        for (int i = 0; dups != NULL && i < ntopics && nd < 256; i++) {
            bool earlier = false, listed = false;
            for (int j = 0; j < i && !earlier; j++)
                earlier = strcmp(topics[j], topics[i]) == 0;
            for (int j = 0; j < nd; j++)
                listed |= strcmp(dups[j], topics[i]) == 0;
            if (earlier && !listed) {
                hashes[nd] = java_string_hash(topics[i]);
                dups[nd++] = topics[i];
            }
        }
        java_hash_order(hashes, nd, order);
        size_t k = (size_t)snprintf(c->error, sizeof c->error, "List of topics to reassign "
                                    "contains duplicate entries: [");
        for (int i = 0; i < nd && k < sizeof c->error; i++)
            k += (size_t)snprintf(c->error + k, sizeof c->error - k, "%s%s", i ? ", " : "",
                                  dups[order[i]]);
        if (k < sizeof c->error)
            snprintf(c->error + k, sizeof c->error - k, "]");
        return -1;
    }
    if (ctx_connect(c) != 0)
        return -1;
    struct metadata_response *md = describe_topics(c, uniq, nuniq, false);
    if (md == NULL)
        return -1;
    /* The brokers of --broker-list the cluster knows, in the order it lists them. */
    struct broker_meta *brokers = arena_alloc(&c->arena, (size_t)(c->nnodes + 1) * sizeof *brokers);
    if (brokers == NULL)
        return ctx_fail(c, "Out of memory");
    int nb = 0, rackless = 0;
    bool racks = !cli_has(c->cmd, "disable-rack-aware");
    for (int i = 0; i < c->nnodes; i++) {
        bool listed = false;
        for (int k = 0; k < nids && !listed; k++)
            listed = ids[k] == c->nodes[i].id;
        if (!listed)
            continue;
        brokers[nb] = (struct broker_meta){c->nodes[i].id, racks ? c->nodes[i].rack : NULL};
        rackless += brokers[nb++].rack == NULL;
    }
    if (racks && rackless != 0 && rackless != nb)
        return ctx_fail(c, "Not all brokers have rack information. Add --disable-rack-aware in "
                        "command line to make replica assignment without rack information.");
    int total = 0;
    for (int i = 0; i < nuniq; i++)
        total += md_topic(md, uniq[i])->n_partitions;
    struct assignment *cur = arena_alloc(&c->arena, (size_t)(total + 1) * sizeof *cur);
    struct assignment *prop = arena_alloc(&c->arena, (size_t)(total + 1) * sizeof *prop);
    if (cur == NULL || prop == NULL)
        return ctx_fail(c, "Out of memory");
    int ncur = 0, nprop = 0;
    for (int i = 0; i < nuniq; i++) {
        const struct metadata_response_metadata_response_topic *t = md_topic(md, uniq[i]);
        for (int32_t p = 0; p < t->n_partitions; p++)
            cur[ncur++] = (struct assignment){uniq[i], t->partitions[p].partition_index,
                                              t->partitions[p].replica_nodes,
                                              t->partitions[p].n_replica_nodes};
    }
    for (int i = 0; i < nuniq; i++) {
        const struct metadata_response_metadata_response_topic *t = md_topic(md, uniq[i]);
        int nparts = t->n_partitions;
        /* The replication factor of one partition (Kafka's first in its hash map): a topic's
         * partitions share one unless someone reassigned them to others. */
        int rf = nparts > 0 ? t->partitions[0].n_replica_nodes : 0;
        int32_t *out = arena_alloc(&c->arena, (size_t)(nparts > 0 ? nparts : 1) *
                                   (size_t)(rf > 0 ? rf : 1) * sizeof *out);
        if (out == NULL)
            return ctx_fail(c, "Out of memory");
        int start = nb > 0 ? (int)(random() % nb) : 0, shift = nb > 0 ? (int)(random() % nb) : 0;
        if (assign_replicas(brokers, nb, nparts, rf, start, shift, out, c->error,
                            sizeof c->error) != 0)
            return -1;
        for (int p = 0; p < nparts; p++)
            prop[nprop++] = (struct assignment){uniq[i], p, out + (size_t)p * rf, rf};
    }
    printf("Current partition replica assignment\n");
    print_assignment_json(cur, ncur);
    printf("\n\nProposed partition reassignment configuration\n");
    print_assignment_json(prop, nprop);
    printf("\n");
    return 0;
}

/* ---- --execute ---- */

#define CANNOT_EXECUTE "Cannot execute because there is an existing partition assignment.  " \
    "Use --additional to override this and create a new partition assignment in addition to " \
    "the existing one. The --additional flag can also be used to change the throttle by " \
    "resubmitting the current reassignment."

/* A partition's move for the throttles: the brokers it is read from and written to. */
struct move {
    const char *topic;
    int32_t partition;
    int32_t *sources, *dests;
    int nsources, ndests;
};

static bool has_id(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "p:broker" for each (partition, broker) of the topic's moves, as Kafka's TreeSet of strings
 * sorts them, joined by commas (arena). */
static char *throttled_replicas(struct reassign_ctx *c, const struct move *m, int n,
                                const char *topic, bool leader)
{
    int count = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].topic, topic) == 0)
            count += leader ? m[i].nsources : m[i].ndests;
    char **items = arena_alloc(&c->arena, (size_t)(count + 1) * sizeof *items);
    char *out = arena_alloc(&c->arena, (size_t)count * 24 + 1);
    if (items == NULL || out == NULL)
        return NULL;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(m[i].topic, topic) != 0)
            continue;
        const int32_t *ids = leader ? m[i].sources : m[i].dests;
        for (int j = 0; j < (leader ? m[i].nsources : m[i].ndests); j++) {
            if (!leader && has_id(m[i].sources, m[i].nsources, ids[j]))
                continue;
            items[k] = arena_alloc(&c->arena, 24);
            if (items[k] == NULL)
                return NULL;
            snprintf(items[k++], 24, "%d:%d", m[i].partition, ids[j]);
        }
    }
    qsort(items, (size_t)k, sizeof *items, str_cmp);
    size_t len = 0;
    for (int i = 0; i < k; i++)
        if (i == 0 || strcmp(items[i], items[i - 1]) != 0)
            len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", items[i]);
    out[len] = '\0';
    return out;
}

static int move_add(struct reassign_ctx *c, struct move *m, const char *topic, int32_t p,
                    const int32_t *src, int nsrc, const int32_t *dst, int ndst)
{
    m->topic = topic;
    m->partition = p;
    m->sources = arena_alloc(&c->arena, (size_t)(nsrc + 1) * sizeof(int32_t));
    m->dests = arena_alloc(&c->arena, (size_t)(ndst + 1) * sizeof(int32_t));
    if (m->sources == NULL || m->dests == NULL)
        return ctx_fail(c, "Out of memory");
    m->nsources = m->ndests = 0;
    for (int i = 0; i < nsrc; i++)
        if (!has_id(m->sources, m->nsources, src[i]))
            m->sources[m->nsources++] = src[i];
    for (int i = 0; i < ndst; i++)
        if (!has_id(m->sources, m->nsources, dst[i]) && !has_id(m->dests, m->ndests, dst[i]))
            m->dests[m->ndests++] = dst[i];
    return 0;
}

/* Kafka's throttles for a reassignment: on each topic with a move, the leader throttle on the
 * sources and the follower throttle on the destinations; on each broker involved, the rate. */
static int set_throttles(struct reassign_ctx *c, const struct ongoing *o, int no,
                         const struct plan *plan, const struct metadata_response *md,
                         long long rate)
{
    struct move *m = arena_alloc(&c->arena, (size_t)(no + plan->n + 1) * sizeof *m);
    if (m == NULL)
        return ctx_fail(c, "Out of memory");
    int n = 0;
    for (int i = 0; i < no; i++) {
        int32_t src[REASSIGN_REPLICAS_MAX];
        int nsrc = 0;
        for (int k = 0; k < o[i].nreplicas && nsrc < REASSIGN_REPLICAS_MAX; k++)
            if (!has_id(o[i].adding, o[i].nadding, o[i].replicas[k]))
                src[nsrc++] = o[i].replicas[k];
        if (move_add(c, &m[n++], o[i].topic, o[i].partition, src, nsrc, o[i].adding,
                     o[i].nadding) != 0)
            return -1;
    }
    for (int i = 0; i < plan->n; i++) {
        const struct target *t = &plan->parts[i];
        struct move *existing = NULL;
        for (int k = 0; k < n && existing == NULL; k++)
            if (m[k].partition == t->partition && strcmp(m[k].topic, t->topic) == 0)
                existing = &m[k];
        const struct metadata_response_metadata_response_partition *p =
            md_partition(md_topic(md, t->topic), t->partition);
        struct move *slot = existing ? existing : &m[n++];
        int32_t *src = existing ? existing->sources : p->replica_nodes;
        int nsrc = existing ? existing->nsources : p->n_replica_nodes;
        if (move_add(c, slot, t->topic, t->partition, src, nsrc, t->replicas, t->nreplicas) != 0)
            return -1;
    }
    /* Topics: leader and follower throttled replicas. */
    for (int i = 0; i < n; i++) {
        bool done = false;
        for (int k = 0; k < i && !done; k++)
            done = strcmp(m[k].topic, m[i].topic) == 0;
        if (done)
            continue;
        char *leader = throttled_replicas(c, m, n, m[i].topic, true);
        char *follower = throttled_replicas(c, m, n, m[i].topic, false);
        if (leader == NULL || follower == NULL)
            return ctx_fail(c, "Out of memory");
        struct config_op ops[2] = {{"leader.replication.throttled.replicas", leader},
                                   {"follower.replication.throttled.replicas", follower}};
        if (alter_configs(c, RESOURCE_TOPIC, m[i].topic, CONFIG_OP_SET, ops, 2) != 0)
            return -1;
    }
    /* Brokers: every source and destination, in id order. */
    int total = 0;
    for (int i = 0; i < n; i++)
        total += m[i].nsources + m[i].ndests;
    int32_t *ids = arena_alloc(&c->arena, (size_t)(total + 1) * sizeof *ids);
    if (ids == NULL)
        return ctx_fail(c, "Out of memory");
    int nids = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < m[i].nsources; k++)
            if (!has_id(ids, nids, m[i].sources[k]))
                ids[nids++] = m[i].sources[k];
        for (int k = 0; k < m[i].ndests; k++)
            if (!has_id(ids, nids, m[i].dests[k]))
                ids[nids++] = m[i].dests[k];
    }
    qsort(ids, (size_t)nids, sizeof *ids, int_cmp);
    char value[32];
    snprintf(value, sizeof value, "%lld", rate);
    struct config_op ops[2] = {{"leader.replication.throttled.rate", value},
                               {"follower.replication.throttled.rate", value}};
    for (int i = 0; i < nids; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", ids[i]);
        if (alter_configs(c, RESOURCE_BROKER, name, CONFIG_OP_SET, ops, 2) != 0)
            return -1;
    }
    printf("The inter-broker throttle limit was set to %lld B/s\n", rate);
    return 0;
}

static const char **plan_topics(struct reassign_ctx *c, const struct plan *plan, int *n)
{
    const char **names = arena_alloc(&c->arena, (size_t)(plan->n + 1) * sizeof *names);
    const char **uniq = arena_alloc(&c->arena, (size_t)(plan->n + 1) * sizeof *uniq);
    if (names == NULL || uniq == NULL) {
        ctx_fail(c, "Out of memory");
        return NULL;
    }
    for (int i = 0; i < plan->n; i++)
        names[i] = plan->parts[i].topic;
    *n = unique_topics(names, plan->n, uniq);
    return uniq;
}

/* Every broker of the plan must be known to the cluster (the first unknown in HashSet order
 * is named); every partition must exist. */
static int check_plan_against_cluster(struct reassign_ctx *c, const struct plan *plan,
                                      const struct metadata_response *md)
{
    int total = 0;
    for (int i = 0; i < plan->n; i++)
        total += plan->parts[i].nreplicas;
    int32_t *ids = arena_alloc(&c->arena, (size_t)(total + 1) * sizeof *ids);
    int *order = arena_alloc(&c->arena, (size_t)(total + 1) * sizeof *order);
    if (ids == NULL || order == NULL)
        return ctx_fail(c, "Out of memory");
    int nids = 0;
    for (int i = 0; i < plan->n; i++)
        for (int k = 0; k < plan->parts[i].nreplicas; k++)
            if (!has_id(ids, nids, plan->parts[i].replicas[k]))
                ids[nids++] = plan->parts[i].replicas[k];
    java_hash_order(ids, nids, order);
    for (int i = 0; i < nids; i++)
        if (ctx_node(c, ids[order[i]]) == NULL)
            return ctx_fail(c, "Unknown broker id %d", ids[order[i]]);
    if (md == NULL)
        return 0;
    int32_t *hashes = arena_alloc(&c->arena, (size_t)(plan->n + 1) * sizeof *hashes);
    int *missing = arena_alloc(&c->arena, (size_t)(plan->n + 1) * sizeof *missing);
    if (hashes == NULL || missing == NULL)
        return ctx_fail(c, "Out of memory");
    int nmissing = 0;
    for (int i = 0; i < plan->n; i++) {
        const struct target *t = &plan->parts[i];
        if (md_partition(md_topic(md, t->topic), t->partition) == NULL) {
            hashes[nmissing] = java_tp_hash(t->topic, t->partition);
            missing[nmissing++] = i;
        }
    }
    if (nmissing == 0)
        return 0;
    java_hash_order(hashes, nmissing, order);
    size_t k = (size_t)snprintf(c->error, sizeof c->error, "org.apache.kafka.common.errors."
                                "UnknownTopicOrPartitionException: Unable to find partition: ");
    for (int i = 0; i < nmissing && k < sizeof c->error; i++) {
        const struct target *t = &plan->parts[missing[order[i]]];
        k += (size_t)snprintf(c->error + k, sizeof c->error - k, "%s%s-%d", i ? ", " : "",
                              t->topic, t->partition);
    }
    return -1;
}

/* The plan in --reassignment-json-file; --execute checks it further (before the log directory
 * moves, as Kafka). -1 with the message in c->error. */
static int plan_read(struct reassign_ctx *c, struct plan *plan, bool execute)
{
    char *text;
    size_t len;
    if (file_option(c, "reassignment-json-file", &text, &len) == NULL ||
        plan_parse(text, len, &c->arena, plan, c->error, sizeof c->error) != 0 ||
        (execute && plan_check_execute(plan, c->error, sizeof c->error) != 0) ||
        plan_check_no_dir_moves(plan, c->error, sizeof c->error) != 0)
        return -1;
    return 0;
}

static int run_execute(struct reassign_ctx *c)
{
    struct plan plan;
    long long throttle = -1, dir_throttle = -1;
    if (plan_read(c, &plan, true) != 0)
        return -1;
    if (cli_has(c->cmd, "throttle"))
        cli_parse_long(cli_value(c->cmd, "throttle"), INT64_MIN, INT64_MAX, &throttle);
    if (cli_has(c->cmd, "replica-alter-log-dirs-throttle"))
        cli_parse_long(cli_value(c->cmd, "replica-alter-log-dirs-throttle"), INT64_MIN,
                       INT64_MAX, &dir_throttle);
    /* --timeout bounds the wait for log directory moves to start; gregor makes none. */
    struct ongoing *o;
    int no, ntopics;
    if (ctx_connect(c) != 0 || list_ongoing(c, NULL, &o, &no) != 0)
        return -1;
    if (no > 0 && !cli_has(c->cmd, "additional")) {
        c->terse = true;
        return ctx_fail(c, "%s", CANNOT_EXECUTE);
    }
    if (check_plan_against_cluster(c, &plan, NULL) != 0)
        return -1;
    const char **topics = plan_topics(c, &plan, &ntopics);
    struct metadata_response *md = topics ? describe_topics(c, topics, ntopics, false) : NULL;
    if (md == NULL || check_plan_against_cluster(c, &plan, md) != 0)
        return -1;
    struct assignment *cur = arena_alloc(&c->arena, (size_t)(plan.n + 1) * sizeof *cur);
    struct change *ch = arena_alloc(&c->arena, (size_t)(plan.n + 1) * sizeof *ch);
    if (cur == NULL || ch == NULL)
        return ctx_fail(c, "Out of memory");
    for (int i = 0; i < plan.n; i++) {
        const struct target *t = &plan.parts[i];
        const struct metadata_response_metadata_response_partition *p =
            md_partition(md_topic(md, t->topic), t->partition);
        cur[i] = (struct assignment){t->topic, t->partition, p->replica_nodes, p->n_replica_nodes};
        ch[i] = (struct change){.topic = t->topic, .partition = t->partition,
                                .replicas = t->replicas, .nreplicas = t->nreplicas};
    }
    printf("Current partition replica assignment\n\n");
    print_assignment_json(cur, plan.n);
    printf("\n\nSave this to use as the --reassignment-json-file option during rollback\n");
    if (throttle >= 0 || dir_throttle >= 0) {
        printf("Warning: You must run --verify periodically, until the reassignment completes, "
               "to ensure the throttle is removed.\n");
        if (throttle >= 0 && set_throttles(c, o, no, &plan, md, throttle) != 0)
            return -1;
        if (dir_throttle >= 0) /* no log dir moves: no broker to set it on */
            printf("The replica-alter-dir throttle limit was set to %lld B/s\n", dir_throttle);
    }
    int failed = alter_reassignments(c, ch, plan.n);
    if (failed < 0)
        return -1;
    if (failed > 0) {
        size_t k = (size_t)snprintf(c->error, sizeof c->error, "Error reassigning partition(s):");
        return changes_failed(c, ch, plan.n, k);
    }
    printf("Successfully started partition reassignment%s for ", plan.n == 1 ? "" : "s");
    print_changes(ch, plan.n);
    return 0;
}

/* ---- --verify ---- */

static int run_verify(struct reassign_ctx *c)
{
    struct plan plan;
    if (plan_read(c, &plan, false) != 0)
        return -1;
    struct ongoing *o;
    int no, ntopics;
    if (ctx_connect(c) != 0 || list_ongoing(c, NULL, &o, &no) != 0)
        return -1;
    const char **topics = plan_topics(c, &plan, &ntopics);
    struct metadata_response *md = topics ? describe_topics(c, topics, ntopics, true) : NULL;
    if (md == NULL)
        return -1;
    /* Sorted, the last entry of a partition listed twice standing (Kafka's map keeps it). */
    struct target *sorted = arena_alloc(&c->arena, (size_t)(plan.n + 1) * sizeof *sorted);
    if (sorted == NULL)
        return ctx_fail(c, "Out of memory");
    memcpy(sorted, plan.parts, (size_t)plan.n * sizeof *sorted);
    qsort(sorted, (size_t)plan.n, sizeof *sorted, target_cmp);
    for (int i = 0; i < plan.n; i++) {
        const struct target *t = &sorted[i];
        if (ongoing_find(o, no, t->topic, t->partition) != NULL)
            continue;
        const struct metadata_response_metadata_response_topic *mt = md_topic(md, t->topic);
        if (mt != NULL && mt->error_code == 0 && t->partition <= mt->n_partitions &&
            (t->partition < 0 || t->partition == mt->n_partitions))
            return ctx_fail(c, "Index %d out of bounds for length %d", t->partition,
                            mt->n_partitions);
    }
    printf("Status of partition reassignment:\n");
    for (int i = 0; i < plan.n; i++) {
        const struct target *t = &sorted[i];
        if (i + 1 < plan.n && tp_cmp(t->topic, t->partition, sorted[i + 1].topic,
                                     sorted[i + 1].partition) == 0)
            continue;
        const struct ongoing *og = ongoing_find(o, no, t->topic, t->partition);
        if (og != NULL) {
            printf("Reassignment of partition %s-%d is still in progress.\n", t->topic,
                   t->partition);
            continue;
        }
        const struct metadata_response_metadata_response_partition *p =
            md_partition(md_topic(md, t->topic), t->partition);
        const int32_t *cur = p ? p->replica_nodes : NULL;
        int ncur = p ? p->n_replica_nodes : 0;
        bool same = ncur == t->nreplicas;
        for (int k = 0; same && k < ncur; k++)
            same = cur[k] == t->replicas[k];
        if (same) {
            printf("Reassignment of partition %s-%d is completed.\n", t->topic, t->partition);
        } else {
            printf("There is no active reassignment of partition %s-%d, but replica set is ",
                   t->topic, t->partition);
            print_ids(cur, ncur);
            printf(" rather than ");
            print_ids(t->replicas, t->nreplicas);
            printf(".\n");
        }
    }
    printf("\n"); /* Kafka's (empty) report of log directory moves */
    if (no == 0 && !cli_has(c->cmd, "preserve-throttles"))
        return clear_all_throttles(c, &plan);
    return 0;
}

/* ---- --cancel ---- */

static int run_cancel(struct reassign_ctx *c)
{
    struct plan plan;
    if (plan_read(c, &plan, false) != 0)
        return -1;
    struct ongoing *o;
    int no;
    if (ctx_connect(c) != 0 || list_ongoing(c, &plan, &o, &no) != 0)
        return -1;
    struct change *ch = arena_alloc(&c->arena, (size_t)(no + 1) * sizeof *ch);
    if (ch == NULL)
        return ctx_fail(c, "Out of memory");
    int n = 0;
    for (int i = 0; i < no; i++) /* as Kafka: not a move that only adds replicas */
        if (o[i].nadding == 0 || o[i].nremoving > 0)
            ch[n++] = (struct change){.topic = o[i].topic, .partition = o[i].partition};
    if (n > 0) {
        int failed = alter_reassignments(c, ch, n);
        if (failed < 0)
            return -1;
        if (failed > 0) {
            size_t k = (size_t)snprintf(c->error, sizeof c->error, "Error cancelling partition "
                                        "reassignment%s for:", failed == 1 ? "" : "s");
            return changes_failed(c, ch, n, k);
        }
        printf("Successfully cancelled partition reassignment%s for: ", n == 1 ? "" : "s");
        print_changes(ch, n);
    } else {
        printf("None of the specified partition reassignments are active.\n");
    }
    printf("None of the specified partition moves are active."); /* Kafka prints no newline */
    if (!cli_has(c->cmd, "preserve-throttles"))
        return clear_all_throttles(c, &plan);
    return 0;
}

/* ---- options, as Kafka's validateAndParseArgs checks them ---- */

static const char *const actions[] = {"generate", "execute", "verify", "cancel", "list"};

static const char *const *permitted(const char *action)
{
    static const char *const verify[] = {"reassignment-json-file", "bootstrap-server",
                                         "command-config", "preserve-throttles", NULL};
    static const char *const generate[] = {"topics-to-move-json-file", "broker-list",
                                           "bootstrap-server", "command-config",
                                           "disable-rack-aware", NULL};
    static const char *const execute[] = {"reassignment-json-file", "bootstrap-server",
                                          "additional", "command-config", "throttle",
                                          "replica-alter-log-dirs-throttle", "timeout", NULL};
    static const char *const cancel[] = {"reassignment-json-file", "bootstrap-server",
                                         "command-config", "preserve-throttles", "timeout", NULL};
    static const char *const list[] = {"bootstrap-server", "command-config", NULL};
    return strcmp(action, "verify") == 0 ? verify : strcmp(action, "generate") == 0 ? generate :
           strcmp(action, "execute") == 0 ? execute : strcmp(action, "cancel") == 0 ? cancel : list;
}

static int validate_args(struct cli_cmd *cmd, int argc, char **argv, const char **action)
{
    int nactions = 0;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (cli_has(cmd, actions[i])) {
            *action = actions[i];
            nactions++;
        }
    if (nactions != 1)
        return cli_usage_error(cmd, "Command must include exactly one action: --generate, "
                               "--execute, --verify, --cancel, --list");
    if (!cli_has(cmd, "bootstrap-server"))
        return cli_usage_error(cmd, "Please specify --bootstrap-server");
    const char *const *ok = permitted(*action);
    /* The required ones: those listed before "bootstrap-server". */
    for (int i = 0; strcmp(ok[i], "bootstrap-server") != 0; i++)
        if (!cli_has(cmd, ok[i]))
            return cli_usage_error(cmd, "Missing required argument \"[%s]\"", ok[i]);
    /* Every other option given must be permitted, checked in the order given. */
    for (int i = argc > 0 && argv[0][0] != '-' ? 1 : 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        const char *name = argv[i] + 2;
        size_t n = strcspn(name, "=");
        bool allowed = strlen(*action) == n && strncmp(name, *action, n) == 0;
        for (int k = 0; ok[k] && !allowed; k++)
            allowed = strlen(ok[k]) == n && strncmp(name, ok[k], n) == 0;
        struct cli_opt *o = NULL;
        for (struct cli_opt *q = cmd->opts; q->name && o == NULL; q++)
            if (strlen(q->name) == n && strncmp(q->name, name, n) == 0)
                o = q;
        if (o == NULL)
            continue; /* a value, not an option */
        if (!allowed)
            return cli_usage_error(cmd, "Option \"[%.*s]\" can't be used with action \"[%s]\"",
                                   (int)n, name, *action);
        if (o->kind == CLI_OPT_VALUE && name[n] != '=')
            i++; /* skip its value */
    }
    static const char *const longs[] = {"throttle", "replica-alter-log-dirs-throttle", "timeout"};
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        long long v;
        if (cli_has(cmd, longs[i]) &&
            cli_parse_long(cli_value(cmd, longs[i]), INT64_MIN, INT64_MAX, &v) != 0)
            return cli_usage_error(cmd, "Cannot parse argument '%s' of option %s",
                                   cli_value(cmd, longs[i]), longs[i]);
    }
    return 0;
}

static int reassign_run(struct cli_cmd *cmd, int argc, char **argv)
{
    const char *action = NULL;
    if (validate_args(cmd, argc, argv, &action) != 0)
        return 1;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid() << 16);
    struct reassign_ctx c = {.cmd = cmd, .boot = {.fd = -1}};
    arena_init(&c.arena, CLI_WIRE_ARENA_LIMIT);
    int rc = strcmp(action, "list") == 0       ? run_list(&c)
             : strcmp(action, "generate") == 0 ? run_generate(&c)
             : strcmp(action, "execute") == 0  ? run_execute(&c)
             : strcmp(action, "verify") == 0   ? run_verify(&c)
                                               : run_cancel(&c);
    if (rc != 0)
        printf(c.terse ? "%s\n" : "Error: %s\n", c.error);
    cli_wire_close(&c.boot);
    arena_reset(&c.arena);
    return rc != 0;
}

int cli_reassign_partitions(int argc, char **argv)
{
    int parsed = cli_args_parse(&reassign_cmd, argc, argv);
    int rc = parsed ? cli_args_exit_code(parsed) : reassign_run(&reassign_cmd, argc, argv);
    cli_args_free(&reassign_cmd);
    fflush(stdout);
    return rc;
}
