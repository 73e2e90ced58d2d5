/* quota: Kafka's client quotas on one node (KIP-13, KIP-55, KIP-124, KIP-219, KIP-546).
 *
 * The store: quota entities (user, client-id, user+client-id, ip; each name may be the
 * default entity) with their values of Kafka's quota keys, persisted in the first log dir
 * (QUOTAS_FILE, temp + fsync + rename), read at start-up. quota_entity_set/remove take an
 * entity as ZooKeeper's /config/users and /config/clients paths name it, so that a cluster's
 * config map can feed the same table.
 *
 * The rates: ClientQuotaManager's sensors. A request's principal and client id resolve to the
 * most specific quota of Kafka's order; the bytes (or handler time) are recorded against that
 * quota's metric tags, over quota.window.num samples of quota.window.size.seconds; a rate over
 * the bound answers Kafka's throttle time. Tracked rates are bounded (QUOTA_TRACKED_MAX, the
 * least recently used goes first) and expire after an hour without use, as Kafka's sensors. */
#ifndef GREGOR_BROKER_QUOTA_H
#define GREGOR_BROKER_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUOTAS_FILE "client-quotas"
#define QUOTAS_FILE_MAX (8 * 1024 * 1024)
#define QUOTA_ENTITIES_MAX 20000
#define QUOTA_NAME_MAX 1024      /* a user or client id name in an entity (bytes) */
#define QUOTA_TRACKED_MAX 8192   /* rates tracked at once */
#define QUOTA_SAMPLES_MAX 3600   /* quota.window.num's bound */

enum quota_key {
    QUOTA_PRODUCER_BYTE_RATE,
    QUOTA_CONSUMER_BYTE_RATE,
    QUOTA_REQUEST_PERCENTAGE,
    QUOTA_CONTROLLER_MUTATION_RATE,
    QUOTA_CONNECTION_CREATION_RATE,
    QUOTA_NKEYS
};
/* "producer_byte_rate" ...; -1 for an unknown key. */
int quota_key_find(const char *key);
const char *quota_key_name(int key);

/* The default entity of a type (null name on the wire, <default> in ZooKeeper): compared by
 * address. */
extern const char QUOTA_DEFAULT[];

/* An entity: each type's name, NULL when the type is not part of it, QUOTA_DEFAULT for the
 * default entity. */
struct quota_entity_id {
    const char *user;
    const char *client_id;
    const char *ip;
};

struct quotas;

struct quotas *quotas_create(int32_t window_num, int32_t window_size_seconds);
void quotas_free(struct quotas *q);
/* Sets (or removes) one key of an entity in memory: 0, or -1 (unknown key, table full, name
 * too long). quotas_save persists the whole table. */
int quota_entity_set(struct quotas *q, const struct quota_entity_id *id, const char *key,
                     double value);
int quota_entity_remove(struct quotas *q, const struct quota_entity_id *id, const char *key);
int quotas_save(const struct quotas *q, const char *path);
/* The file's bytes into q (emptied first): 0, or -1 with *bad_line (q then empty). Pure, for
 * the fuzz target; quotas_load reads the file through it (absent: no quotas). */
int quotas_parse(struct quotas *q, const char *text, size_t len, int *bad_line);
int quotas_load(struct quotas *q, const char *path);
int quotas_count(const struct quotas *q);

/* Entity i (0 <= i < quotas_count): its names and values (has[k] false: not set). */
void quotas_entity_at(const struct quotas *q, int i, struct quota_entity_id *id,
                      const double **values, const bool **has);

/* Records value (bytes, or percent-seconds for QUOTA_REQUEST_PERCENTAGE) of a client (user
 * name without "User:", client id) against the quota of key that applies to it at now_ms,
 * and returns Kafka's throttle time in ms (0: within the quota or none applies). */
int32_t quota_record(struct quotas *q, int key, const char *user, const char *client_id,
                     double value, int64_t now_ms);
/* ClientQuotaManager.getMaxValueInQuotaWindow: the most a client may record against the
 * quota of key that applies to it without being throttled when nothing was recorded before,
 * bound x (quota.window.num - 1) x quota.window.size.seconds; -1 when no quota applies. */
double quota_window_max(const struct quotas *q, int key, const char *user,
                        const char *client_id);
/* Takes back a recorded value (Kafka's unrecordQuotaSensor: a throttled fetch sends nothing). */
void quota_unrecord(struct quotas *q, int key, const char *user, const char *client_id,
                    double value, int64_t now_ms);

/* KIP-599's controller_mutation_rate (partitions created or deleted a second): a token bucket
 * per quota's metric tags (ControllerMutationQuotaManager), of controller.quota.window.num x
 * controller.quota.window.size.seconds x the quota tokens at most (set at start-up; the
 * client quotas' window until then). quota_mutation_check answers the throttle time now
 * (> 0: the bucket is in debt, a strict request is refused), quota_mutation_record takes
 * permits (the bucket may go into debt) and answers the throttle time after. */
void quotas_set_mutation_window(struct quotas *q, int32_t window_num, int32_t window_size_seconds);
int32_t quota_mutation_check(struct quotas *q, const char *user, const char *client_id,
                             int64_t now_ms);
int32_t quota_mutation_record(struct quotas *q, const char *user, const char *client_id,
                              double permits, int64_t now_ms);

/* KIP-612's connection_creation_rate: the quota of an ip entity that applies to an address
 * (its own, else the default ip's), and the rate of connections of a tag (an address, or a
 * listener's name prefixed so that it is none) recorded one more at now_ms against bound:
 * the throttle time (at most one sample), 0 within the bound. keep_over false takes the
 * connection back when over (a refused connection does not count). */
bool quota_ip_bound(const struct quotas *q, const char *ip, double *bound);
int32_t quota_connection_record(struct quotas *q, const char *tag, double bound, int64_t now_ms,
                                bool keep_over);

#endif
