/* mutation_quota: KIP-599's controller_mutation_rate applied to a request (CreateTopics,
 * CreatePartitions, DeleteTopics), as Kafka's ControllerMutationQuotaManager: each topic's
 * partitions created or deleted are recorded before the change. A strict request (the
 * versions that know THROTTLING_QUOTA_EXCEEDED) is refused for a topic while the principal's
 * bucket is in debt; a permissive one (older versions) is done and only throttled. Either
 * way the throttle time raises r->throttle_ms (the response's throttle_time_ms, the
 * connection muted that long). */
#ifndef GREGOR_BROKER_MUTATION_QUOTA_H
#define GREGOR_BROKER_MUTATION_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct request;

/* KERR_NONE (recorded), or KERR_THROTTLING_QUOTA_EXCEEDED with msg (strict, nothing
 * recorded). No quota for the principal, or validate_only: KERR_NONE, nothing recorded. */
int mutation_quota_record(struct request *r, double permits, bool strict, char *msg,
                          size_t msglen);
/* The same for a principal's user name and a client id outside a Kafka request (the
 * console's creates and deletes): the throttle time raises *throttle_ms. */
int mutation_quota_charge(struct broker *b, const char *user, const char *client_id,
                          double permits, bool strict, int32_t *throttle_ms, char *msg,
                          size_t msglen);

#endif
