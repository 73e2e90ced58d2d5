/* mutation_quota: controller_mutation_rate on the request path (see mutation_quota.h). */
#include "broker/mutation_quota.h"

#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/quota.h"
#include "common/errors.h"
#include "common/util.h"
#include "net/conn.h"

int mutation_quota_charge(struct broker *b, const char *user, const char *client_id,
                          double permits, bool strict, int32_t *throttle_ms, char *msg,
                          size_t msglen)
{
    if (b->quotas == NULL || quotas_count(b->quotas) == 0 || permits <= 0)
        return KERR_NONE;
    int64_t now = mono_ms();
    int32_t t;
    if (strict) {
        /* StrictControllerMutationQuota: the quota is checked first (the bucket in debt
         * refuses), then the permits go in whole, so one request may take the bucket below
         * zero and the next waits for it. */
        t = quota_mutation_check(b->quotas, user, client_id, now);
        if (t > 0) {
            if (t > *throttle_ms)
                *throttle_ms = t;
            snprintf(msg, msglen, "The throttling quota has been exceeded.");
            return KERR_THROTTLING_QUOTA_EXCEEDED;
        }
        (void)quota_mutation_record(b->quotas, user, client_id, permits, now);
        return KERR_NONE;
    }
    /* PermissiveControllerMutationQuota: recorded, then throttled once in debt. */
    t = quota_mutation_record(b->quotas, user, client_id, permits, now);
    if (t > *throttle_ms)
        *throttle_ms = t;
    return KERR_NONE;
}

int mutation_quota_record(struct request *r, double permits, bool strict, char *msg,
                          size_t msglen)
{
    if (r->conn == NULL)
        return KERR_NONE;
    struct conn_session *s = conn_session(r->conn);
    const char *user = strchr(s->principal, ':') != NULL ? strchr(s->principal, ':') + 1
                                                         : s->principal;
    return mutation_quota_charge(r->broker, user, s->client_id ? s->client_id : "", permits,
                                 strict, &r->throttle_ms, msg, msglen);
}
