/* znode: the JSON values of Kafka's ZooKeeper layout, written and read as Kafka 2.x/3.x do
 * (ZkData.scala): the broker registration, /controller, /cluster/id, the TopicZNode and each
 * partition's state. Pure functions over (text, length), never reading past the length, so
 * anything ZooKeeper hands back (another tool's writes, a truncated node) is refused cleanly;
 * fuzzed by tests/fuzz/fuzz_znode.c. */
#ifndef GREGOR_CLUSTER_ZNODE_H
#define GREGOR_CLUSTER_ZNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused (Kafka's values nest three levels). */
#define ZNODE_DEPTH_MAX 32
/* The most replicas a partition's assignment or ISR may list. */
#define ZNODE_REPLICAS_MAX 32

/* The value of member `key` of the top-level object: [*vs, *ve) (the first when repeated). 0,
 * or -1 when absent or when the text is not one well-formed object. */
int znode_member(const char *json, size_t len, const char *key, const char **vs,
                 const char **ve);
/* A string member (no escapes in it), or a number as Kafka writes some ("version":"1"). */
int znode_string(const char *json, size_t len, const char *key, char *out, size_t outlen);
int znode_int(const char *json, size_t len, const char *key, int64_t *out);
/* "[a,b,...]" in [vs, ve) into out (at most max 32-bit ints); the count, or -1. */
int znode_int_array(const char *vs, const char *ve, int32_t *out, int max);

/* Kafka's Uuid text: URL-safe base64 of the 16 bytes without padding (22 characters). */
void znode_uuid_str(const uint8_t id[16], char out[23]);
int znode_uuid_parse(const char *s, size_t len, uint8_t id[16]);

/* /brokers/ids/<id>, Kafka 3.x's version 5; the endpoint for listener_name (else host/port).
 * rack (broker.rack; NULL or empty: none) is written as "rack" only when set, as Kafka. */
int znode_broker_json(char *out, size_t outlen, const char *listener_name, const char *host,
                      int32_t port, const char *rack, int64_t timestamp_ms);
/* One endpoint of a registration: a listener's name, its security protocol and where others
 * reach it (its advertised host and port). */
struct znode_endpoint {
    const char *name, *protocol, *host;
    int32_t port;
};
/* The same with every listener, as Kafka 3.9's BrokerIdZNode writes them:
 * listener_security_protocol_map and endpoints in the order given, "host"/"port" the first
 * PLAINTEXT endpoint's (null and -1 without one). */
int znode_broker_json_endpoints(char *out, size_t outlen, const struct znode_endpoint *eps,
                                int n, const char *rack, int64_t timestamp_ms);
int znode_broker_parse(const char *json, size_t len, const char *listener_name, char *host,
                       size_t hostlen, int32_t *port);
/* The registration's "rack", unescaped: 1 with it in rack, 0 when absent or null (no rack),
 * -1 when not a string, not one well-formed object, or longer than racklen - 1. */
int znode_broker_rack(const char *json, size_t len, char *rack, size_t racklen);

/* /controller ({"version":1,"brokerid":N,"timestamp":"ms"}) and /cluster/id. */
int znode_controller_json(char *out, size_t outlen, int32_t broker_id, int64_t timestamp_ms);
int znode_controller_parse(const char *json, size_t len, int32_t *broker_id);
int znode_cluster_id_json(char *out, size_t outlen, const char *id);
int znode_cluster_id_parse(const char *json, size_t len, char *id, size_t idlen);

/* /brokers/topics/<t>, the TopicZNode version 3: partition p's replicas are
 * replicas[p * stride .. + nreplicas[p]) (nreplicas NULL: stride each). */
int znode_topic_json(char *out, size_t outlen, const uint8_t id[16], int32_t nparts,
                     const int32_t *nreplicas, const int32_t *replicas, int stride);
/* The same with a reassignment's adding_replicas and removing_replicas (Kafka 2.4+, KIP-455):
 * partition p's at [p * stride ..) with counts n*[p] (counts NULL: none; only partitions with
 * a list are written). */
int znode_topic_json_full(char *out, size_t outlen, const uint8_t id[16], int32_t nparts,
                          const int32_t *nreplicas, const int32_t *replicas, int stride,
                          const int32_t *nadding, const int32_t *adding,
                          const int32_t *nremoving, const int32_t *removing);
/* Reads a TopicZNode: its topic id (zeros when absent, as versions before 3) and each
 * partition's replicas, given to fn in the order written. The partitions must be exactly
 * 0..n-1 each once, n <= max_parts; returns n, or -1 (fn may have been called). fn NULL:
 * only checks and counts. */
typedef void (*znode_partition_fn)(void *arg, int32_t partition, const int32_t *replicas,
                                   int nreplicas);
int32_t znode_topic_parse(const char *json, size_t len, int32_t max_parts, uint8_t id[16],
                          znode_partition_fn fn, void *arg);

/* A TopicZNode's "adding_replicas" or "removing_replicas" (key): each {"<p>":[ids]} entry to fn
 * (0 <= p < nparts). The count (0 when the member is absent), or -1 when malformed. */
int znode_topic_reassign_parse(const char *json, size_t len, const char *key, int32_t nparts,
                               znode_partition_fn fn, void *arg);

/* /admin/reassign_partitions (Kafka's ReassignPartitionsZNode, still honoured by 3.9's ZooKeeper
 * mode): {"version":1,"partitions":[{"topic":t,"partition":p,"replicas":[..]},..]}, each entry
 * to fn ("log_dirs" ignored). The count, or -1 when malformed (fn may have been called). */
typedef void (*znode_reassign_fn)(void *arg, const char *topic, int32_t partition,
                                  const int32_t *replicas, int nreplicas);
int znode_reassign_parse(const char *json, size_t len, znode_reassign_fn fn, void *arg);

/* /brokers/topics/<t>/partitions/<p>/state (version 1). */
struct znode_state {
    int32_t controller_epoch;
    int32_t leader;
    int32_t leader_epoch;
    int32_t nisr;
    int32_t isr[ZNODE_REPLICAS_MAX];
};
int znode_state_json(char *out, size_t outlen, const struct znode_state *s);
int znode_state_parse(const char *json, size_t len, struct znode_state *s);

/* /config/topics/<t> and /config/brokers/<id|<default>>, Kafka's ConfigEntityZNode:
 * {"version":1,"config":{"k":"v",...}}, strings escaped as Jackson writes them (", \ and
 * control characters; UTF-8 as is). Keys and values are NUL-terminated C strings. */
int znode_config_json(char *out, size_t outlen, const char *const *keys,
                      const char *const *values, int n);
/* Reads a config znode: each entry, unescaped (\uXXXX and surrogate pairs to UTF-8), to fn
 * in the order written; a key longer than ZNODE_CONFIG_KEY_MAX - 1 or a value longer than
 * ZNODE_CONFIG_VALUE_MAX - 1 bytes, a value that is not a string, a \u0000, a lone surrogate
 * or a raw control character refuse the whole znode. Returns the count, or -1 (fn may have
 * been called: callers collect, then apply). The version is not checked, as Kafka. */
#define ZNODE_CONFIG_KEY_MAX 256
#define ZNODE_CONFIG_VALUE_MAX 4096
typedef void (*znode_config_fn)(void *arg, const char *key, const char *value);
int znode_config_parse(const char *json, size_t len, znode_config_fn fn, void *arg);
/* An entity's config znode changed by a read-modify-write: cur (NULL: none yet) with keys[j]
 * set to values[j] (NULL: removed), every other key kept in its place, new keys at the end.
 * *out is the new JSON (malloc'd), or NULL when no key is left and drop_empty. Returns 0, or
 * -1 when cur does not parse or more than ZNODE_CONFIG_KEYS_KEPT keys would result (Kafka has
 * no bound; quotas and SCRAM credentials are a handful). */
#define ZNODE_CONFIG_KEYS_KEPT 256
int znode_config_edit(const char *cur, size_t len, const char *const *keys,
                      const char *const *values, int n, bool drop_empty, char **out,
                      size_t *out_len);

/* /config/changes/config_change_<seq>: {"version":2,"entity_path":"topics/<t>"} (Kafka 2.x+);
 * the parser also takes version 1's entity_type / entity_name. */
int znode_config_change_json(char *out, size_t outlen, const char *entity_type,
                             const char *entity_name);
int znode_config_change_parse(const char *json, size_t len, char *entity_type, size_t typelen,
                              char *entity_name, size_t namelen);

/* /latest_producer_id_block, Kafka's ProducerIdBlockZNode (version 1): the last block of
 * producer ids a broker took, [block_start, block_end] as decimal strings:
 * {"version":1,"broker":N,"block_start":"S","block_end":"E"}. The reader wants both ends as
 * strings (Kafka's reader does), 0 <= start <= end, and a broker id >= 0. */
int znode_producer_id_block_json(char *out, size_t outlen, int32_t broker, int64_t start,
                                 int64_t end);
int znode_producer_id_block_parse(const char *json, size_t len, int32_t *broker,
                                  int64_t *start, int64_t *end);


/* ACLs of one resource, Kafka's ResourceZNode (AclEntry.toJsonCompatibleMap):
 * {"version":1,"acls":[{"principal":"User:a","permissionType":"Allow","operation":"Read",
 * "host":"*"},...]}, names as Kafka's SecurityUtils writes them (PascalCase). The parser
 * hands each entry (unescaped) to fn; -1 (nothing kept by callers) when malformed. */
#define ZNODE_ACL_STRING_MAX 1024
struct znode_acl {
    const char *principal, *permission, *operation, *host;
};
int znode_acl_json(char *out, size_t outlen, const struct znode_acl *acls, int n);
typedef void (*znode_acl_fn)(void *arg, const char *principal, const char *permission,
                             const char *operation, const char *host);
int znode_acl_parse(const char *json, size_t len, znode_acl_fn fn, void *arg);
/* /kafka-acl-extended-changes/acl_changes_<seq>, Kafka's ExtendedAclChangeEvent:
 * {"version":1,"resourceType":"TOPIC","name":"n","patternType":"PREFIXED"}. (The literal
 * store's notification is the plain "TOPIC:name".) */
int znode_acl_change_json(char *out, size_t outlen, const char *resource_type,
                          const char *name, const char *pattern_type);
int znode_acl_change_parse(const char *json, size_t len, char *resource_type, size_t typelen,
                           char *name, size_t namelen, char *pattern_type, size_t patlen);
/* Kafka's Sanitizer for entity names in paths (/config/users/<sanitized>): 0, or -1 when it
 * does not fit; desanitize is the reverse (-1 on a bad escape). */
int znode_sanitize(const char *name, char *out, size_t outlen);
int znode_desanitize(const char *name, char *out, size_t outlen);

#endif
