/* partition_follow: see partition_follow.h. The watermark invariants of partition.c hold
 * after every call: log start <= high watermark <= log end. */
#include <errno.h>
#include <string.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/util.h"
#include "partition/partition_follow.h"

void partition_become_follower(struct partition *p, int32_t epoch)
{
    if (epoch <= p->leader_epoch)
        return;
    p->leader_epoch = epoch;
    plog_set_leader_epoch(p->log, epoch);
}

int32_t partition_latest_epoch(const struct partition *p)
{
    return p->nepochs > 0 ? p->epochs[p->nepochs - 1].epoch : -1;
}

int partition_follow_leader_marks(struct partition *p, int64_t leader_hw, int64_t leader_log_start)
{
    int64_t start = plog_start_offset(p->log), end = plog_end_offset(p->log);
    int64_t hw = leader_hw < end ? leader_hw : end;
    p->high_watermark = hw < start ? start : hw;
    if (leader_log_start > start) {
        int64_t to = leader_log_start < p->high_watermark ? leader_log_start : p->high_watermark;
        if (to > start) {
            int e = plog_delete_records(p->log, to, NULL);
            if (e != KERR_NONE)
                return e;
        }
    }
    GREGOR_ASSERT(plog_start_offset(p->log) <= p->high_watermark);
    GREGOR_ASSERT(p->high_watermark <= plog_end_offset(p->log));
    return KERR_NONE;
}

int partition_truncate_fully(struct partition *p, const char *topic_name,
                             const struct log_config *cfg, int64_t offset)
{
    int32_t epoch = p->leader_epoch;
    /* Every file goes (segments, epochs, producer snapshots); the log restarts at offset. */
    int e = partition_delete(p);
    if (e != KERR_NONE)
        LOG_WARN("Log", "removing %s for a full truncation: %s", p->dir_path, kerr_name(e));
    e = partition_open(p, topic_name, cfg, PLOG_RECOVERY_POINT_CLEAN, offset);
    if (e != KERR_NONE)
        return e;
    p->nepochs = 0;
    if (partition_epochs_write(p) != KERR_NONE)
        return KERR_KAFKA_STORAGE_ERROR;
    partition_become_follower(p, epoch);
    GREGOR_ASSERT(partition_log_start(p) == offset && partition_log_end(p) == offset);
    GREGOR_ASSERT(p->high_watermark == offset);
    return KERR_NONE;
}
