/* mutation_quota: controller_mutation_rate on the request path (see mutation_quota.h). */
#include "broker/mutation_quota.h"

#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/quota.h"
#include "common/errors.h"
#include "common/util.h"
#include "net/conn.h"

int mutation_quota_record(struct request *r, double permits, bool strict, char *msg,
                          size_t msglen)
{
    struct broker *b = r->broker;
    if (b->quotas == NULL || r->conn == NULL || quotas_count(b->quotas) == 0 || permits <= 0)
        return KERR_NONE;
    struct conn_session *s = conn_session(r->conn);
    const char *user = strchr(s->principal, ':') != NULL ? strchr(s->principal, ':') + 1
                                                         : s->principal;
    const char *client = s->client_id ? s->client_id : "";
    int64_t now = mono_ms();
    int32_t t;
    if (strict) {
        /* StrictControllerMutationQuota: the quota is checked first (the bucket in debt
         * refuses), then the permits go in whole, so one request may take the bucket below
         * zero and the next waits for it. */
        t = quota_mutation_check(b->quotas, user, client, now);
        if (t > 0) {
            if (t > r->throttle_ms)
                r->throttle_ms = t;
            snprintf(msg, msglen, "The throttling quota has been exceeded.");
            return KERR_THROTTLING_QUOTA_EXCEEDED;
        }
        (void)quota_mutation_record(b->quotas, user, client, permits, now);
        return KERR_NONE;
    }
    /* PermissiveControllerMutationQuota: recorded, then throttled once in debt. */
    t = quota_mutation_record(b->quotas, user, client, permits, now);
    if (t > r->throttle_ms)
        r->throttle_ms = t;
    return KERR_NONE;
}
