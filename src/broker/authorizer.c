/* authorizer: Kafka's ACL model and decision (AclAuthorizer / StandardAuthorizer), the ACL store
 * and its file; handlers ask authorize() before they act, as KafkaApis does. */
#include "broker/authorizer.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "broker/kutil.h"
#include "cluster/cluster.h"
#include "cluster/znode.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/fileio.h"
#include "net/conn.h"

#define AUTH_LOG "kafka.authorizer.logger"

static const char *const resource_names[] = {"UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER",
                                             "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"};
static const char *const pattern_names[] = {"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"};
static const char *const operation_names[] = {
    "UNKNOWN", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
    "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS",
    "DESCRIBE_TOKENS"};
static const char *const permission_names[] = {"UNKNOWN", "ANY", "DENY", "ALLOW"};

#define NAME_OF(table, v) \
    ((v) >= 0 && (size_t)(v) < sizeof(table) / sizeof(table[0]) ? table[v] : "UNKNOWN")
const char *acl_resource_type_name(int t) { return NAME_OF(resource_names, t); }
const char *acl_pattern_type_name(int t) { return NAME_OF(pattern_names, t); }
const char *acl_operation_name(int op) { return NAME_OF(operation_names, op); }
const char *acl_permission_name(int p) { return NAME_OF(permission_names, p); }

/* The operations each resource type has (Kafka's AclEntry.supportedOperations). */
static bool operation_supported(int resource_type, int op)
{
    switch (resource_type) {
    case ACL_RES_TOPIC:
        return op == ACL_OP_READ || op == ACL_OP_WRITE || op == ACL_OP_CREATE ||
               op == ACL_OP_DESCRIBE || op == ACL_OP_DELETE || op == ACL_OP_ALTER ||
               op == ACL_OP_DESCRIBE_CONFIGS || op == ACL_OP_ALTER_CONFIGS || op == ACL_OP_ALL;
    case ACL_RES_GROUP:
        return op == ACL_OP_READ || op == ACL_OP_DESCRIBE || op == ACL_OP_DELETE ||
               op == ACL_OP_DESCRIBE_CONFIGS || op == ACL_OP_ALTER_CONFIGS || op == ACL_OP_ALL;
    case ACL_RES_CLUSTER:
        return op == ACL_OP_CREATE || op == ACL_OP_CLUSTER_ACTION ||
               op == ACL_OP_DESCRIBE_CONFIGS || op == ACL_OP_ALTER_CONFIGS ||
               op == ACL_OP_IDEMPOTENT_WRITE || op == ACL_OP_ALTER || op == ACL_OP_DESCRIBE ||
               op == ACL_OP_ALL;
    case ACL_RES_TRANSACTIONAL_ID:
        return op == ACL_OP_DESCRIBE || op == ACL_OP_WRITE || op == ACL_OP_ALL;
    case ACL_RES_DELEGATION_TOKEN:
        return op == ACL_OP_DESCRIBE || op == ACL_OP_ALL;
    case ACL_RES_USER:
        return op == ACL_OP_CREATE_TOKENS || op == ACL_OP_DESCRIBE_TOKENS || op == ACL_OP_ALL;
    default:
        return false;
    }
}

const char *acl_binding_invalid(const struct acl_binding *b)
{
    if (b->resource_type <= ACL_RES_ANY || b->resource_type > ACL_RES_USER)
        return "Invalid resource type";
    if (b->pattern_type != ACL_PAT_LITERAL && b->pattern_type != ACL_PAT_PREFIXED)
        return "Invalid pattern type";
    if (b->operation <= ACL_OP_ANY || b->operation > ACL_OP_DESCRIBE_TOKENS)
        return "Invalid operation";
    if (b->permission != ACL_PERM_ALLOW && b->permission != ACL_PERM_DENY)
        return "Invalid permission type";
    if (b->name == NULL || b->name[0] == '\0')
        return "Resource name must not be empty";
    if (b->principal == NULL || strchr(b->principal, ':') == NULL)
        return "Invalid principal";
    if (b->host == NULL)
        return "Invalid host";
    if (b->resource_type == ACL_RES_CLUSTER && strcmp(b->name, ACL_CLUSTER_NAME) != 0)
        return "The only valid name for the CLUSTER resource is kafka-cluster";
    if (b->pattern_type == ACL_PAT_PREFIXED && strcmp(b->name, ACL_WILDCARD) == 0)
        return "Cannot create a PREFIXED ACL with a wildcard resource name";
    if (!operation_supported(b->resource_type, b->operation))
        return "Operation is not supported by the resource type";
    return NULL;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether the pattern part of f (type, name, pattern type) matches b's resource. */
static bool filter_matches_resource(const struct acl_filter *f, const struct acl_binding *b)
{
    if (f->resource_type != ACL_RES_ANY && f->resource_type != b->resource_type)
        return false;
    switch (f->pattern_type) {
    case ACL_PAT_ANY:
        return f->name == NULL || strcmp(f->name, b->name) == 0;
    case ACL_PAT_MATCH:
        if (f->name == NULL)
            return true;
        if (b->pattern_type == ACL_PAT_LITERAL)
            return strcmp(b->name, f->name) == 0 || strcmp(b->name, ACL_WILDCARD) == 0;
        return b->pattern_type == ACL_PAT_PREFIXED && starts_with(f->name, b->name);
    case ACL_PAT_LITERAL:
    case ACL_PAT_PREFIXED:
        return f->pattern_type == b->pattern_type &&
               (f->name == NULL || strcmp(f->name, b->name) == 0);
    default:
        return false;
    }
}

bool acl_filter_matches(const struct acl_filter *f, const struct acl_binding *b)
{
    if (!filter_matches_resource(f, b))
        return false;
    if (f->principal != NULL && strcmp(f->principal, b->principal) != 0)
        return false;
    if (f->host != NULL && strcmp(f->host, b->host) != 0)
        return false;
    if (f->operation != ACL_OP_ANY && f->operation != b->operation)
        return false;
    return f->permission == ACL_PERM_ANY || f->permission == b->permission;
}

static bool binding_equal(const struct acl_binding *a, const struct acl_binding *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission &&
           strcmp(a->name, b->name) == 0 && strcmp(a->principal, b->principal) == 0 &&
           strcmp(a->host, b->host) == 0;
}

static unsigned literal_bucket(int resource_type, const char *name)
{
    unsigned h = 2166136261u ^ (unsigned)resource_type; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % ACL_INDEX_BUCKETS;
}

static bool is_indexed_literal(const struct acl_binding *a)
{
    return a->pattern_type == ACL_PAT_LITERAL && strcmp(a->name, ACL_WILDCARD) != 0;
}

/* Rebuilds the index over s->acls (after every change: changes are rare, checks are not).
 * -1 when out of memory (the store then has no index and checks scan every binding). */
static int index_rebuild(struct acl_store *s)
{
    if (s->bucket == NULL && (s->bucket = malloc(ACL_INDEX_BUCKETS * sizeof(int))) == NULL)
        return -1;
    int *next = realloc(s->next, (size_t)(s->cap > 0 ? s->cap : 1) * sizeof(int));
    if (next != NULL)
        s->next = next;
    int *others = realloc(s->others, (size_t)(s->cap > 0 ? s->cap : 1) * sizeof(int));
    if (others != NULL)
        s->others = others;
    if (next == NULL || others == NULL) {
        free(s->bucket);
        s->bucket = NULL;
        return -1;
    }
    for (int i = 0; i < ACL_INDEX_BUCKETS; i++)
        s->bucket[i] = -1;
    s->nothers = 0;
    for (int i = s->n - 1; i >= 0; i--) { /* chains in store order */
        if (is_indexed_literal(&s->acls[i])) {
            unsigned h = literal_bucket(s->acls[i].resource_type, s->acls[i].name);
            s->next[i] = s->bucket[h];
            s->bucket[h] = i;
        }
    }
    for (int i = 0; i < s->n; i++)
        if (!is_indexed_literal(&s->acls[i]))
            s->others[s->nothers++] = i;
    GREGOR_ASSERT(s->nothers <= s->n);
    return 0;
}

void acl_binding_free(struct acl_binding *b)
{
    free(b->name);
    free(b->principal);
    free(b->host);
    b->name = b->principal = b->host = NULL;
}

int acl_store_add(struct acl_store *s, const struct acl_binding *b)
{
    for (int i = 0; i < s->n; i++)
        if (binding_equal(&s->acls[i], b))
            return 0;
    if (s->n >= ACL_MAX_ENTRIES)
        return -1;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        struct acl_binding *a = realloc(s->acls, (size_t)cap * sizeof(*a));
        if (a == NULL)
            return -1;
        s->acls = a;
        s->cap = cap;
    }
    struct acl_binding c = *b;
    c.name = strdup(b->name);
    c.principal = strdup(b->principal);
    c.host = strdup(b->host);
    if (c.name == NULL || c.principal == NULL || c.host == NULL) {
        acl_binding_free(&c);
        return -1;
    }
    s->acls[s->n++] = c;
    GREGOR_ASSERT(s->n <= s->cap);
    (void)index_rebuild(s); /* without it, checks scan */
    return 0;
}

int acl_store_remove(struct acl_store *s, const struct acl_filter *f, struct acl_binding *out,
                     int max)
{
    int removed = 0, kept = 0;
    for (int i = 0; i < s->n; i++) {
        if (!acl_filter_matches(f, &s->acls[i])) {
            s->acls[kept++] = s->acls[i];
            continue;
        }
        if (out != NULL && removed < max)
            out[removed] = s->acls[i];
        else
            acl_binding_free(&s->acls[i]);
        removed++;
    }
    GREGOR_ASSERT(kept + removed == s->n);
    s->n = kept;
    if (removed > 0)
        (void)index_rebuild(s);
    return removed;
}

void acl_store_clear(struct acl_store *s)
{
    for (int i = 0; i < s->n; i++)
        acl_binding_free(&s->acls[i]);
    free(s->acls);
    free(s->bucket);
    free(s->next);
    free(s->others);
    s->acls = NULL;
    s->bucket = s->next = s->others = NULL;
    s->n = s->cap = s->nothers = 0;
}

/* Whether the ACL's resource covers (type, name): its literal name, the literal wildcard, or
 * a prefix of name. */
static bool resource_covers(const struct acl_binding *a, int resource_type, const char *name)
{
    if (a->resource_type != resource_type)
        return false;
    if (a->pattern_type == ACL_PAT_LITERAL)
        return strcmp(a->name, name) == 0 || strcmp(a->name, ACL_WILDCARD) == 0;
    return a->pattern_type == ACL_PAT_PREFIXED && starts_with(name, a->name);
}

/* Whether an ACL of operation acl_op grants (or denies) op: ALL covers every operation, and an
 * ALLOW of READ/WRITE/DELETE/ALTER implies DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS. */
static bool operation_covers(int acl_op, int op, bool allow)
{
    if (acl_op == op || acl_op == ACL_OP_ALL)
        return true;
    if (!allow)
        return false;
    if (op == ACL_OP_DESCRIBE)
        return acl_op == ACL_OP_READ || acl_op == ACL_OP_WRITE || acl_op == ACL_OP_DELETE ||
               acl_op == ACL_OP_ALTER;
    if (op == ACL_OP_DESCRIBE_CONFIGS)
        return acl_op == ACL_OP_ALTER_CONFIGS;
    return false;
}

bool acl_store_allows(const struct acl_store *s, const char *principal, const char *host,
                      int op, int resource_type, const char *name,
                      const struct acl_binding **rule, bool *no_acls)
{
    const struct acl_binding *allow = NULL;
    *rule = NULL;
    *no_acls = true;
    /* Candidates: the literal chain of (type, name), then the others; or every binding
     * when there is no index. */
    bool indexed = s->bucket != NULL;
    int literal = indexed ? s->bucket[literal_bucket(resource_type, name)] : -1;
    int other = 0;
    for (int k = 0;; k++) {
        int i;
        if (!indexed) {
            if (k >= s->n)
                break;
            i = k;
        } else if (literal >= 0) {
            i = literal;
            literal = s->next[literal];
        } else if (other < s->nothers) {
            i = s->others[other++];
        } else {
            break;
        }
        const struct acl_binding *a = &s->acls[i];
        if (!resource_covers(a, resource_type, name))
            continue;
        *no_acls = false;
        if (strcmp(a->principal, principal) != 0 && strcmp(a->principal, ACL_WILDCARD_PRINCIPAL) != 0)
            continue;
        if (strcmp(a->host, host) != 0 && strcmp(a->host, ACL_WILDCARD) != 0)
            continue;
        if (a->permission == ACL_PERM_DENY && operation_covers(a->operation, op, false)) {
            *rule = a; /* DENY wins over every ALLOW */
            return false;
        }
        if (a->permission == ACL_PERM_ALLOW && allow == NULL && operation_covers(a->operation, op, true))
            allow = a;
    }
    *rule = allow;
    return allow != NULL;
}

/* File form: %-escape tab, newline, '%' and control bytes so any name fits on one line. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '%' || c == 0x7f)
            fprintf(f, "%%%02X", c);
        else
            fputc(c, f);
    }
}

/* The file form of a field back: NULL when it is not one (a '%' without two hex digits after
 * it, an escaped NUL, ACL_STRING_MAX bytes or more), or out of memory. */
static char *unescape(const char *s)
{
    char *out = strdup(s);
    if (out == NULL)
        return NULL;
    long n = pct_decode_inplace(out);
    if (n < 0 || n >= ACL_STRING_MAX) {
        free(out);
        return NULL;
    }
    return out;
}

void acl_store_write(const struct acl_store *s, FILE *f)
{
    fprintf(f, "# gregor ACLs v1: type pattern operation permission name principal host\n");
    for (int i = 0; i < s->n; i++) {
        const struct acl_binding *a = &s->acls[i];
        fprintf(f, "%s\t%s\t%s\t%s\t", acl_resource_type_name(a->resource_type),
                acl_pattern_type_name(a->pattern_type), acl_operation_name(a->operation),
                acl_permission_name(a->permission));
        put_escaped(f, a->name);
        fputc('\t', f);
        put_escaped(f, a->principal);
        fputc('\t', f);
        put_escaped(f, a->host);
        fputc('\n', f);
    }
}

int acl_store_save(const struct acl_store *s, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return -1;
    acl_store_write(s, f);
    if (fclose(f) != 0) {
        free(buf);
        return -1;
    }
    int rc = fio_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

static int name_index(const char *const *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(table[i], name) == 0)
            return (int)i;
    return -1;
}
#define INDEX_OF(table, name) name_index(table, sizeof(table) / sizeof(table[0]), name)

/* One line of the file (no newline) as a binding; NULL, or why it is not one. Exactly seven
 * tab-separated fields: an empty one (a host "" is one) is a field, not a missing one. */
static const char *acl_line_parse(char *line, struct acl_binding *b)
{
    char *field[7], *rest = line;
    int nf = 0;
    while (rest != NULL && nf < 7)
        field[nf++] = strsep(&rest, "\t");
    if (nf != 7 || rest != NULL)
        return "malformed line";
    b->resource_type = (int8_t)INDEX_OF(resource_names, field[0]);
    b->pattern_type = (int8_t)INDEX_OF(pattern_names, field[1]);
    b->operation = (int8_t)INDEX_OF(operation_names, field[2]);
    b->permission = (int8_t)INDEX_OF(permission_names, field[3]);
    b->name = unescape(field[4]);
    b->principal = unescape(field[5]);
    b->host = unescape(field[6]);
    if (b->name == NULL || b->principal == NULL || b->host == NULL)
        return "malformed field (bad %-escape, or too long)";
    return acl_binding_invalid(b);
}

int acl_store_read(struct acl_store *s, FILE *f, const char *what)
{
    char line[4 * ACL_STRING_MAX * 3 + 128];
    int rc = 0, lineno = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        bool whole = n > 0 && line[n - 1] == '\n';
        if (whole)
            line[--n] = '\0';
        if (line[0] == '#' || (whole && n == 0))
            continue;
        struct acl_binding b = {0};
        const char *why = whole || feof(f) ? acl_line_parse(line, &b) : "line too long";
        if (why != NULL || acl_store_add(s, &b) != 0) {
            LOG_ERROR("AclAuthorizer", "%s line %d: %s", what, lineno, why ? why : "store full");
            rc = -1;
        }
        acl_binding_free(&b);
    }
    return rc;
}

int acl_store_load(struct acl_store *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    int rc = acl_store_read(s, f, path);
    fclose(f);
    return rc;
}

/* --- the broker's authorizer --- */

static bool is_super_user(const struct authorizer *az, const char *principal)
{
    for (int i = 0; i < az->n_super_users; i++)
        if (strcmp(az->super_users[i], principal) == 0)
            return true;
    return false;
}

static int parse_super_users(struct authorizer *az, const char *v)
{
    char *copy = strdup(v), *save = NULL;
    if (copy == NULL)
        return -1;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (n == 0)
            continue;
        char **users = realloc(az->super_users, (size_t)(az->n_super_users + 1) * sizeof(char *));
        if (users == NULL || (users[az->n_super_users] = strdup(tok)) == NULL) {
            if (users != NULL)
                az->super_users = users;
            free(copy);
            return -1;
        }
        az->super_users = users;
        az->n_super_users++;
    }
    free(copy);
    return 0;
}

int authorizer_open(struct broker *b)
{
    const struct broker_config *cfg = &b->cfg;
    struct authorizer *az = calloc(1, sizeof(*az));
    if (az == NULL)
        return -1;
    b->authorizer = az;
    az->enabled = cfg->authorizer_class_name[0] != '\0';
    az->allow_if_no_acl = cfg->allow_everyone_if_no_acl_found;
    if (parse_super_users(az, cfg->super_users) != 0)
        return -1;
    if (!az->enabled)
        return 0;
    if (b->cluster != NULL) /* loaded by cluster_await_security, then kept by its notices */
        cluster_acls_subscribe(b->cluster, authorizer_acls_from_zk, b);
    if (b->cluster == NULL && b->ndirs > 0) {
        snprintf(az->path, sizeof(az->path), "%s/__acls", cfg->log_dirs[0]);
        if (acl_store_load(&az->store, az->path) != 0) {
            LOG_ERROR("AclAuthorizer", "cannot load the ACLs from %s", az->path);
            return -1;
        }
    }
    LOG_INFO("AclAuthorizer", "%s: %d ACLs loaded%s, %d super users, "
             "allow.everyone.if.no.acl.found=%s", cfg->authorizer_class_name, az->store.n,
             az->path[0] ? " from the ACL file" : "", az->n_super_users,
             az->allow_if_no_acl ? "true" : "false");
    return 0;
}

void authorizer_close(struct broker *b)
{
    struct authorizer *az = b->authorizer;
    if (az == NULL)
        return;
    acl_store_clear(&az->store);
    for (int i = 0; i < az->n_super_users; i++)
        free(az->super_users[i]);
    free(az->super_users);
    free(az);
    b->authorizer = NULL;
}

int authorizer_persist(struct broker *b)
{
    struct authorizer *az = b->authorizer;
    if (az == NULL || az->path[0] == '\0')
        return KERR_NONE;
    if (acl_store_save(&az->store, az->path) != 0) {
        LOG_ERROR("AclAuthorizer", "cannot write the ACLs to %s: %s", az->path, strerror(errno));
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    return KERR_NONE;
}

/* ---- the ACLs on ZooKeeper (a cluster): see cluster.h ---- */

/* A Kafka name as ZooKeeper's JSON holds it ("Read", "IdempotentWrite"; its upper case
 * too, as SecurityUtils reads) to the index in table; -1 when none. */
static int name_lookup(const char *const *table, int n, const char *s)
{
    for (int i = 2; i < n; i++) { /* not UNKNOWN, ANY */
        const char *t = table[i], *p = s;
        for (; *t && *p; t++) {
            if (*t == '_')
                continue;
            if ((*t | 0x20) != (*p | 0x20))
                break;
            p++;
        }
        if (*t == '\0' && *p == '\0')
            return i;
    }
    return -1;
}

#define NAMES(t) (int)(sizeof(t) / sizeof(t[0]))

int acl_resource_type_from_name(const char *name)
{
    return name_lookup(resource_names, NAMES(resource_names), name);
}

struct zk_parse {
    struct acl_binding *out;            /* the entries (strings owned) */
    int n, cap;
    bool bad;
};

static void zk_entry(void *arg, const char *principal, const char *permission,
                     const char *operation, const char *host)
{
    struct zk_parse *zp = arg;
    int op = name_lookup(operation_names, NAMES(operation_names), operation);
    int perm = name_lookup(permission_names, NAMES(permission_names), permission);
    if (op < 0 || perm < 0 || strchr(principal, ':') == NULL) {
        zp->bad = true;
        return;
    }
    if (zp->n == zp->cap) {
        int cap = zp->cap ? zp->cap * 2 : 8;
        struct acl_binding *a = realloc(zp->out, sizeof(*a) * (size_t)cap);
        GREGOR_ASSERT(a != NULL);
        zp->out = a;
        zp->cap = cap;
    }
    struct acl_binding *e = &zp->out[zp->n++];
    *e = (struct acl_binding){.operation = (int8_t)op, .permission = (int8_t)perm,
                              .principal = strdup(principal), .host = strdup(host),
                              .name = NULL};
    GREGOR_ASSERT(e->principal != NULL && e->host != NULL);
}

static void zk_parse_free(struct zk_parse *zp)
{
    for (int i = 0; i < zp->n; i++) {
        free(zp->out[i].principal);
        free(zp->out[i].host);
    }
    free(zp->out);
}

/* A resource's entries from its znode (json NULL: none); -1 when malformed. */
static int zk_parse_entries(const char *json, size_t len, struct zk_parse *zp)
{
    *zp = (struct zk_parse){0};
    if (json == NULL)
        return 0;
    if (znode_acl_parse(json, len, zk_entry, zp) < 0 || zp->bad) {
        zk_parse_free(zp);
        *zp = (struct zk_parse){0};
        return -1;
    }
    return 0;
}

void authorizer_acls_from_zk(void *arg, const char *resource_type, bool prefixed,
                             const char *name, const char *json, size_t len)
{
    struct broker *b = arg;
    struct authorizer *az = b->authorizer;
    int type = acl_resource_type_from_name(resource_type);
    if (az == NULL || type < 0) {
        LOG_WARN("AclAuthorizer", "Ignoring ACLs of the unknown resource type %s", resource_type);
        return;
    }
    struct zk_parse zp;
    if (zk_parse_entries(json, len, &zp) != 0) {
        LOG_WARN("AclAuthorizer", "Ignoring the malformed ACLs of %s:%s:%s: %.*s", resource_type,
                 prefixed ? "PREFIXED" : "LITERAL", name, (int)(len > 512 ? 512 : len), json);
        return;
    }
    struct acl_filter f = {.resource_type = (int8_t)type,
                           .pattern_type = prefixed ? ACL_PAT_PREFIXED : ACL_PAT_LITERAL,
                           .operation = ACL_OP_ANY, .permission = ACL_PERM_ANY, .name = name};
    int removed = acl_store_remove(&az->store, &f, NULL, 0);
    int added = 0;
    for (int i = 0; i < zp.n; i++) {
        struct acl_binding bind = zp.out[i];
        bind.resource_type = (int8_t)type;
        bind.pattern_type = prefixed ? ACL_PAT_PREFIXED : ACL_PAT_LITERAL;
        bind.name = (char *)name;
        if (acl_store_add(&az->store, &bind) == 0)
            added++;
    }
    LOG_INFO("AclAuthorizer", "Processing ACLs of ResourcePattern(resourceType=%s, name=%s, "
             "patternType=%s): %d now (%d before)", resource_type, name,
             prefixed ? "PREFIXED" : "LITERAL", added, removed);
    zk_parse_free(&zp);
}

static bool entry_equal(const struct acl_binding *a, const struct acl_binding *b)
{
    return a->operation == b->operation && a->permission == b->permission &&
           strcmp(a->principal, b->principal) == 0 && strcmp(a->host, b->host) == 0;
}

int authorizer_acl_json_modify(const char *cur, size_t len, const struct acl_binding *add,
                               int nadd, const struct acl_binding *del, int ndel, char **out,
                               size_t *out_len)
{
    struct zk_parse zp;
    if (zk_parse_entries(cur, len, &zp) != 0)
        return -1;
    int nkeep = 0;
    bool changed = false;
    struct znode_acl *list = calloc((size_t)(zp.n + nadd + 1), sizeof(*list));
    char (*names)[2][32] = calloc((size_t)(zp.n + nadd + 1), sizeof(*names));
    GREGOR_ASSERT(list != NULL && names != NULL);
    for (int i = 0; i < zp.n; i++) {
        bool gone = false;
        for (int k = 0; k < ndel && !gone; k++)
            gone = entry_equal(&zp.out[i], &del[k]);
        for (int k = 0; k < i && !gone; k++)
            gone = entry_equal(&zp.out[i], &zp.out[k]); /* a duplicate another wrote */
        if (gone) {
            changed = true;
            continue;
        }
        pascal_case(acl_operation_name(zp.out[i].operation), names[nkeep][0], 32);
        pascal_case(acl_permission_name(zp.out[i].permission), names[nkeep][1], 32);
        list[nkeep] = (struct znode_acl){zp.out[i].principal, names[nkeep][1],
                                         names[nkeep][0], zp.out[i].host};
        nkeep++;
    }
    for (int k = 0; k < nadd; k++) {
        bool have = false;
        for (int i = 0; i < zp.n && !have; i++)
            have = entry_equal(&add[k], &zp.out[i]);
        for (int j = 0; j < k && !have; j++)
            have = entry_equal(&add[k], &add[j]);
        if (have)
            continue;
        changed = true;
        pascal_case(acl_operation_name(add[k].operation), names[nkeep][0], 32);
        pascal_case(acl_permission_name(add[k].permission), names[nkeep][1], 32);
        list[nkeep] = (struct znode_acl){add[k].principal, names[nkeep][1], names[nkeep][0],
                                         add[k].host};
        nkeep++;
    }
    int rc = changed ? 0 : 1;
    *out = NULL;
    *out_len = 0;
    if (changed && nkeep > 0) {
        size_t cap = 256;
        for (int i = 0; i < nkeep; i++)
            cap += 6 * (strlen(list[i].principal) + strlen(list[i].host)) + 128;
        char *buf = malloc(cap);
        GREGOR_ASSERT(buf != NULL);
        int n = znode_acl_json(buf, cap, list, nkeep);
        GREGOR_ASSERT(n > 0);
        *out = buf;
        *out_len = (size_t)n;
    }
    free(list);
    free(names);
    zk_parse_free(&zp);
    return rc;
}

static void peer_host(struct conn *c, char *out, size_t len)
{
    const struct sockaddr_storage *ss = &conn_session(c)->peer_addr;
    snprintf(out, len, "%s", "");
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)len);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)len);
}

/* A resource type as Kafka's SecurityUtils.resourceTypeName words it: TRANSACTIONAL_ID is
 * TransactionalId. */
static void resource_type_pascal(int resource_type, char *out, size_t out_len)
{
    pascal_case(acl_resource_type_name(resource_type), out, out_len);
}

/* The decision and, for the audit line, the rule it rests on: the matching ACL, or why as
 * StandardAuthorizer's rules print (SuperUser, DefaultAllow, DefaultDeny). */
static bool decide(struct authorizer *az, const char *principal, const char *host, int op,
                   int resource_type, const char *name, const struct acl_binding **rule,
                   const char **why)
{
    bool no_acls;
    *rule = NULL;
    if (is_super_user(az, principal)) {
        *why = "SuperUser";
        return true;
    }
    bool ok = acl_store_allows(&az->store, principal, host, op, resource_type, name, rule, &no_acls);
    if (*rule == NULL && no_acls && az->allow_if_no_acl) {
        *why = "DefaultAllow";
        return true;
    }
    *why = *rule != NULL ? NULL : "DefaultDeny"; /* no ACL of the resource, or none matched */
    return ok;
}

bool authorize(struct broker *b, struct request *r, int op, int resource_type, const char *name,
               bool log)
{
    struct authorizer *az = b->authorizer;
    if (az == NULL || !az->enabled)
        return true;
    if (r->conn == NULL)
        return false;
    const char *principal = conn_session(r->conn)->principal;
    char host[64];
    peer_host(r->conn, host, sizeof(host));
    const struct acl_binding *rule;
    const char *why;
    bool ok = decide(az, principal, host, op, resource_type, name, &rule, &why);
    if (!ok || logging_level() <= LOG_LEVEL_DEBUG) {
        char safe[256];
        request_loggable(kstr_of(name), safe, sizeof(safe));
        char rule_text[ACL_STRING_MAX];
        if (rule != NULL)
            snprintf(rule_text, sizeof(rule_text),
                     "MatchingAcl(acl=StandardAcl(resourceType=%s, resourceName=%.200s, "
                     "patternType=%s, principal=%.200s, host=%.64s, operation=%s, "
                     "permissionType=%s))", acl_resource_type_name(rule->resource_type),
                     rule->name, acl_pattern_type_name(rule->pattern_type), rule->principal,
                     rule->host, acl_operation_name(rule->operation),
                     acl_permission_name(rule->permission));
        else
            snprintf(rule_text, sizeof(rule_text), "%s", why);
        char type[32];
        resource_type_pascal(resource_type, type, sizeof(type));
        enum log_level level = ok || !log ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
        if (logging_level() <= level)
            log_line(level, AUTH_LOG,
                     "Principal = %s is %s operation = %s from host = %s on resource = "
                     "%s:LITERAL:%s for request = %s with resourceRefCount = 1 based on rule %s",
                     principal, ok ? "Allowed" : "Denied", acl_operation_name(op), host, type,
                     safe, r->api ? r->api->name : "?",
                     rule_text);
    }
    return ok;
}

bool authorize_kstr(struct broker *b, struct request *r, int op, int resource_type,
                    const char *name, int32_t len)
{
    if (b->authorizer == NULL || !b->authorizer->enabled)
        return true;
    if (name == NULL || len < 0 || len >= ACL_STRING_MAX || memchr(name, '\0', (size_t)len) != NULL)
        return false;
    char tmp[ACL_STRING_MAX];
    memcpy(tmp, name, (size_t)len);
    tmp[len] = '\0';
    return authorize(b, r, op, resource_type, tmp, true);
}

int32_t authorized_operations(struct broker *b, struct request *r, int resource_type,
                              const char *name)
{
    int32_t bits = 0;
    for (int op = ACL_OP_READ; op <= ACL_OP_DESCRIBE_TOKENS; op++)
        if (operation_supported(resource_type, op) && authorize(b, r, op, resource_type, name, false))
            bits |= 1 << op;
    return bits;
}

bool authorize_any(struct broker *b, struct request *r, int op, int resource_type)
{
    struct authorizer *az = b->authorizer;
    if (az == NULL || !az->enabled)
        return true;
    if (r->conn == NULL)
        return false;
    const char *principal = conn_session(r->conn)->principal;
    if (is_super_user(az, principal))
        return true;
    char host[64];
    peer_host(r->conn, host, sizeof(host));
    bool allowed = false;
    for (int i = 0; i < az->store.n; i++) {
        const struct acl_binding *a = &az->store.acls[i];
        if (a->resource_type != resource_type ||
            (strcmp(a->principal, principal) != 0 && strcmp(a->principal, ACL_WILDCARD_PRINCIPAL) != 0) ||
            (strcmp(a->host, host) != 0 && strcmp(a->host, ACL_WILDCARD) != 0))
            continue;
        bool deny = a->permission == ACL_PERM_DENY;
        if (!operation_covers(a->operation, op, !deny))
            continue;
        if (deny && a->pattern_type == ACL_PAT_LITERAL && strcmp(a->name, ACL_WILDCARD) == 0)
            return false; /* denied on every name */
        if (!deny)
            allowed = true;
    }
    return allowed;
}

int authorize_config_resource(struct broker *b, struct request *r, int8_t config_type,
                              const char *name, int32_t len, int op)
{
    if (config_type == 2)
        return authorize_kstr(b, r, op, ACL_RES_TOPIC, name, len)
                   ? KERR_NONE : KERR_TOPIC_AUTHORIZATION_FAILED;
    if (config_type == 4 || config_type == 8)
        return authorize(b, r, op, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)
                   ? KERR_NONE : KERR_CLUSTER_AUTHORIZATION_FAILED;
    return KERR_NONE; /* other types: the handler refuses them */
}

bool authorize_principal(struct broker *b, const char *principal, const char *host, int op,
                         int resource_type, const char *name, bool log)
{
    struct authorizer *az = b->authorizer;
    if (az == NULL || !az->enabled)
        return true;
    const struct acl_binding *rule;
    const char *why;
    bool ok = decide(az, principal, host, op, resource_type, name, &rule, &why);
    enum log_level level = ok || !log ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    if (logging_level() <= level) {
        char safe[256], type[32];
        request_loggable(kstr_of(name), safe, sizeof(safe));
        resource_type_pascal(resource_type, type, sizeof(type));
        log_line(level, AUTH_LOG,
                 "Principal = %s is %s operation = %s from host = %s on resource = %s:LITERAL:%s "
                 "for request = console based on rule %s", principal, ok ? "Allowed" : "Denied",
                 acl_operation_name(op), host, type, safe, rule != NULL ? "MatchingAcl" : why);
    }
    return ok;
}
