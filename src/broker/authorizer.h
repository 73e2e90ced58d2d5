/* authorizer: Kafka's ACL model (AclAuthorizer / StandardAuthorizer semantics), the ACL store
 * and its file (atomically rewritten in the first log dir), and the check every handler asks. */
#ifndef GREGOR_BROKER_AUTHORIZER_H
#define GREGOR_BROKER_AUTHORIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Wire codes (org.apache.kafka.common.resource.ResourceType, PatternType, acl.AclOperation,
 * acl.AclPermissionType). */
enum acl_resource_type {
    ACL_RES_UNKNOWN = 0, ACL_RES_ANY = 1, ACL_RES_TOPIC = 2, ACL_RES_GROUP = 3,
    ACL_RES_CLUSTER = 4, ACL_RES_TRANSACTIONAL_ID = 5, ACL_RES_DELEGATION_TOKEN = 6,
    ACL_RES_USER = 7,
};
enum acl_pattern_type {
    ACL_PAT_UNKNOWN = 0, ACL_PAT_ANY = 1, ACL_PAT_MATCH = 2, ACL_PAT_LITERAL = 3,
    ACL_PAT_PREFIXED = 4,
};
enum acl_operation {
    ACL_OP_UNKNOWN = 0, ACL_OP_ANY = 1, ACL_OP_ALL = 2, ACL_OP_READ = 3, ACL_OP_WRITE = 4,
    ACL_OP_CREATE = 5, ACL_OP_DELETE = 6, ACL_OP_ALTER = 7, ACL_OP_DESCRIBE = 8,
    ACL_OP_CLUSTER_ACTION = 9, ACL_OP_DESCRIBE_CONFIGS = 10, ACL_OP_ALTER_CONFIGS = 11,
    ACL_OP_IDEMPOTENT_WRITE = 12, ACL_OP_CREATE_TOKENS = 13, ACL_OP_DESCRIBE_TOKENS = 14,
};
enum acl_permission { ACL_PERM_UNKNOWN = 0, ACL_PERM_ANY = 1, ACL_PERM_DENY = 2, ACL_PERM_ALLOW = 3 };

#define ACL_STRING_MAX 1024      /* principal, host and resource name of one ACL */
#define ACL_MAX_ENTRIES 100000   /* the store's bound: CreateAcls beyond it is refused */
#define ACL_CLUSTER_NAME "kafka-cluster"
#define ACL_WILDCARD "*"
#define ACL_WILDCARD_PRINCIPAL "User:*"

/* One ACL binding: strings owned (malloc). */
struct acl_binding {
    int8_t resource_type, pattern_type, operation, permission;
    char *name, *principal, *host;
};
/* A filter (DescribeAcls / DeleteAcls): NULL strings match any. */
struct acl_filter {
    int8_t resource_type, pattern_type, operation, permission;
    const char *name, *principal, *host;
};

/* The bindings and an index rebuilt on each change: the LITERAL ones (but "*") chained by a
 * hash of (type, name), the others (PREFIXED, "*") in one list, so a check reads the few
 * that can cover the name instead of every binding. */
#define ACL_INDEX_BUCKETS 4096
struct acl_store {
    struct acl_binding *acls;
    int n, cap;
    int *bucket;                 /* ACL_INDEX_BUCKETS heads (-1: empty), owned */
    int *next;                   /* per binding: the next in its bucket, owned (cap) */
    int *others;                 /* indexes of PREFIXED and wildcard bindings, owned (cap) */
    int nothers;
};

/* Kafka's names ("TOPIC", "LITERAL", "READ", "ALLOW") and back (case-insensitive; -1 when not
 * one of them). */
const char *acl_resource_type_name(int t);
const char *acl_pattern_type_name(int t);
const char *acl_operation_name(int op);
const char *acl_permission_name(int p);

/* NULL when b may be created; else Kafka's reason (wildcards, UNKNOWN/ANY values, a cluster
 * resource not named kafka-cluster, an operation the resource type does not have). */
const char *acl_binding_invalid(const struct acl_binding *b);
bool acl_filter_matches(const struct acl_filter *f, const struct acl_binding *b);
/* The store: add (a duplicate is not added again; 0, or -1 when full or out of memory). */
int acl_store_add(struct acl_store *s, const struct acl_binding *b);
/* Removes the bindings f matches, copying each removed one to out (up to max, owned by the
 * caller after) when out is not NULL. Returns how many were removed. */
int acl_store_remove(struct acl_store *s, const struct acl_filter *f, struct acl_binding *out,
                     int max);
void acl_store_clear(struct acl_store *s);
void acl_binding_free(struct acl_binding *b);

/* The decision for (principal, host) doing op on resource (type, name), super users and
 * allow.everyone.if.no.acl.found aside: DENY wins, implied operations (READ/WRITE/DELETE/ALTER
 * imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS); *rule is the ACL that decided, or
 * NULL when none matched (then *no_acls tells whether the resource has no ACL at all). */
bool acl_store_allows(const struct acl_store *s, const char *principal, const char *host,
                      int op, int resource_type, const char *name,
                      const struct acl_binding **rule, bool *no_acls);

/* The file form: one line per binding, fields separated by tabs, strings %-escaped. */
int acl_store_save(const struct acl_store *s, const char *path);
int acl_store_load(struct acl_store *s, const char *path); /* 0 also when absent */
/* The file's lines, one binding each, from f / to f (what names f in the log): the reader
 * refuses a malformed or invalid line (-1, the lines before it added), and what it accepts the
 * writer writes back to the same bindings. */
int acl_store_read(struct acl_store *s, FILE *f, const char *what);
void acl_store_write(const struct acl_store *s, FILE *f);

/* The broker's authorizer (NULL-safe: no authorizer.class.name allows everything). */
struct broker;
struct request;
struct authorizer {
    bool enabled;
    bool allow_if_no_acl;        /* allow.everyone.if.no.acl.found */
    char **super_users;          /* super.users, owned */
    int n_super_users;
    struct acl_store store;
    char path[1100];             /* the ACL file, "" on ZooKeeper */
};
/* Opens the authorizer from the broker's config (after the log dirs). 0 or -1 (logged). */
int authorizer_open(struct broker *b);
void authorizer_close(struct broker *b);
/* Whether r's principal may do op on the resource: logs a denial at INFO (and an allow at
 * DEBUG) as Kafka's kafka.authorizer.logger does. log false: a check whose answer only filters
 * (Metadata leaving topics out), logged at DEBUG. */
bool authorize(struct broker *b, struct request *r, int op, int resource_type, const char *name,
               bool log);
/* authorize for a length-counted request name (a name holding a NUL is denied). */
bool authorize_kstr(struct broker *b, struct request *r, int op, int resource_type,
                    const char *name, int32_t len);
/* A config resource (DescribeConfigs / AlterConfigs: 2 topic, 4 broker, 8 broker logger)
 * checked for op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic or the cluster, as
 * KafkaApis: KERR_NONE, TOPIC_AUTHORIZATION_FAILED or CLUSTER_AUTHORIZATION_FAILED. */
int authorize_config_resource(struct broker *b, struct request *r, int8_t config_type,
                              const char *name, int32_t len, int op);
/* Kafka's authorizeByResourceType: whether r's principal may do op on some resource of the
 * type (an ALLOW for it, literal or prefixed, not cancelled by a DENY of every name). */
bool authorize_any(struct broker *b, struct request *r, int op, int resource_type);
/* Kafka's authorized-operations bit set for a resource (Metadata, DescribeCluster, ...). */
/* authorize for a principal and host known without a Kafka connection (the console's HTTP
 * requests): the same decision, logged the same way for request "console". */
bool authorize_principal(struct broker *b, const char *principal, const char *host, int op,
                         int resource_type, const char *name, bool log);
int32_t authorized_operations(struct broker *b, struct request *r, int resource_type,
                              const char *name);
/* A cluster (zookeeper.connect): the ACLs live in ZooKeeper as Kafka 3.9's AclAuthorizer
 * keeps them (cluster.h). The store follows each resource's znode (cluster_acls_fn);
 * modify makes a resource's new znode value from its current one (cluster_rmw_fn's answer:
 * add's entries added, del's removed; resource fields of add/del ignored). The resource type
 * from its Kafka name ("TOPIC", "Topic"); -1 when none. */
void authorizer_acls_from_zk(void *arg, const char *resource_type, bool prefixed,
                             const char *name, const char *json, size_t len);
int authorizer_acl_json_modify(const char *cur, size_t len, const struct acl_binding *add,
                               int nadd, const struct acl_binding *del, int ndel, char **out,
                               size_t *out_len);
int acl_resource_type_from_name(const char *name);
/* The authorizer persists the store (file, or nothing on ZooKeeper yet). 0 or a Kafka error. */
int authorizer_persist(struct broker *b);

#endif
