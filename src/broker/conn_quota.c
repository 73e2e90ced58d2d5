/* conn_quota: connection creation rates (see conn_quota.h). */
#include "broker/conn_quota.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/broker.h"
#include "broker/quota.h"
#include "common/logging.h"

/* listener.name.<l>.max.connection.creation.rate, INT_MAX when not set (or not a number). */
static long listener_rate(const struct broker *b, const char *listener)
{
    const char *v = broker_security_prop(&b->cfg, listener, "max.connection.creation.rate", NULL);
    if (v == NULL)
        return INT_MAX;
    char *end;
    errno = 0;
    long r = strtol(v, &end, 10);
    return errno != 0 || *end != '\0' || r < 0 || r > INT_MAX ? INT_MAX : r;
}

struct net_admit broker_conn_admit(void *ctx, const struct net_listener_info *li,
                                   const char *host, int64_t now_ms)
{
    struct broker *b = ctx;
    struct net_admit ad = {0, 0};
    if (b->quotas == NULL)
        return ad;
    int idx = -1;
    for (int i = 0; b->listener_info != NULL && i < b->cfg.n_listeners; i++)
        if (li == &b->listener_info[i])
            idx = i;
    /* ConnectionQuotas: the listener's rate, then the broker's (the inter-broker listener is
     * not held by it), recorded and waited for; then the address's. */
    long lr = listener_rate(b, li->name);
    int32_t t = 0;
    if (lr < INT_MAX) {
        char tag[96];
        snprintf(tag, sizeof(tag), "listener %s", li->name);
        t = quota_connection_record(b->quotas, tag, (double)lr, now_ms, true);
    }
    if (b->cfg.max_connection_creation_rate < INT_MAX && idx != b->cfg.inter_broker_listener) {
        int32_t bt = quota_connection_record(b->quotas, "broker ",
                                             (double)b->cfg.max_connection_creation_rate, now_ms,
                                             true);
        if (bt > t)
            t = bt;
    }
    ad.pause_ms = t;
    if (t > 0)
        LOG_LIMITED(LOG_LEVEL_INFO, "ConnectionQuotas", "Throttling listener %s for %d ms: "
                    "max.connection.creation.rate reached", li->name, t);
    double bound;
    if (quota_ip_bound(b->quotas, host, &bound)) {
        int32_t it = quota_connection_record(b->quotas, host, bound, now_ms, false);
        if (it > 0) {
            ad.close_after_ms = it;
            LOG_LIMITED(LOG_LEVEL_INFO, "ConnectionQuotas", "Throttling %s for %d ms: its "
                        "connection_creation_rate quota (%g) reached", host, it, bound);
        }
    }
    return ad;
}
