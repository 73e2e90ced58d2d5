/* producer_ids: see producer_ids.h. At most one claim is in flight; a claim that fails leaves a
 * short backoff, and the next InitProducerId after it claims again (Kafka's
 * maybeRequestNextBlock), so nothing runs while no producer asks. */
#include "broker/producer_ids.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"

struct producer_ids {
    struct broker *b;
    int64_t next, last;              /* the block in use: next to hand out; next > last: none */
    int64_t first;                   /* its first id (the prefetch point is counted from it) */
    bool have_spare;                 /* a block taken ahead, used when this one runs out */
    int64_t spare_first, spare_last;
    bool claiming;                   /* claim is in flight (it is the cluster's until done) */
    int64_t retry_after_ms;          /* mono_ms before which no claim starts */
    struct cluster_producer_id_claim claim;
};

static void claimed(struct cluster_producer_id_claim *w, int kerr)
{
    struct producer_ids *ids = w->arg;
    GREGOR_ASSERT(ids->claiming);
    ids->claiming = false;
    int64_t newest = ids->have_spare ? ids->spare_last : ids->last;
    if (kerr == KERR_NONE && w->first <= newest) {
        /* The znode went back (written by hand?): these ids may have been handed out. */
        LOG_ERROR("ProducerIdManager", "Producer ID block is not monotonic with the current "
                  "block: current ends at %" PRId64 ", taken [%" PRId64 ", %" PRId64 "]",
                  newest, w->first, w->last);
        kerr = KERR_UNKNOWN_SERVER_ERROR;
    }
    if (kerr != KERR_NONE) {
        ids->retry_after_ms = mono_ms() + PRODUCER_IDS_RETRY_BACKOFF_MS;
        return;
    }
    GREGOR_ASSERT(w->first <= w->last);
    if (ids->next > ids->last) {
        ids->first = ids->next = w->first;
        ids->last = w->last;
    } else {
        ids->have_spare = true;
        ids->spare_first = w->first;
        ids->spare_last = w->last;
    }
}

static void maybe_claim(struct producer_ids *ids)
{
    if (ids->claiming || ids->have_spare || mono_ms() < ids->retry_after_ms)
        return;
    ids->claim.done = claimed;
    ids->claim.arg = ids;
    ids->claiming = true;
    if (cluster_claim_producer_ids(ids->b->cluster, &ids->claim) != KERR_NONE) {
        ids->claiming = false;
        ids->retry_after_ms = mono_ms() + PRODUCER_IDS_RETRY_BACKOFF_MS;
    }
}

int producer_ids_open(struct broker *b)
{
    if (b->cluster == NULL) {
        b->next_producer_id = now_ms() & 0xffffffffLL; /* fresh ids across restarts */
        return 0;
    }
    struct producer_ids *ids = calloc(1, sizeof(*ids));
    if (ids == NULL) {
        LOG_ERROR("ProducerIdManager", "out of memory");
        return -1;
    }
    ids->b = b;
    ids->next = 0;
    ids->last = -1; /* no block yet */
    b->producer_ids = ids;
    maybe_claim(ids);
    return 0;
}

int producer_ids_next(struct broker *b, int64_t *out)
{
    struct producer_ids *ids = b->producer_ids;
    if (ids == NULL) {
        *out = b->next_producer_id++;
        return KERR_NONE;
    }
    if (ids->next > ids->last && ids->have_spare) {
        ids->first = ids->next = ids->spare_first;
        ids->last = ids->spare_last;
        ids->have_spare = false;
    }
    if (ids->next > ids->last) {
        maybe_claim(ids);
        return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    }
    *out = ids->next++;
    int64_t size = ids->last - ids->first + 1;
    if (ids->next - ids->first >= size * PRODUCER_IDS_PREFETCH_PERCENT / 100)
        maybe_claim(ids);
    return KERR_NONE;
}

void producer_ids_close(struct broker *b)
{
    free(b->producer_ids);
    b->producer_ids = NULL;
}
