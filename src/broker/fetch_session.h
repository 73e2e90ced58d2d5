/* fetch_session: Kafka's incremental fetch sessions (KIP-227) — a bounded cache of sessions,
 * each remembering the partitions a client fetches and what it was last told about them, so
 * steady-state requests and responses carry only what changed. */
#ifndef GREGOR_BROKER_FETCH_SESSION_H
#define GREGOR_BROKER_FETCH_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/kbuf.h"

#define FETCH_SESSION_SLOTS 1000   /* Kafka's max.incremental.fetch.session.cache.slots */

struct fetch_session_part {
    char topic[256];                 /* topic_len bytes: a name as sent, NULs included */
    int32_t topic_len;
    struct kuuid topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch;      /* a follower's (v12+), -1 otherwise */
    /* What the client was last told; -2 = never. */
    int64_t sent_hw, sent_start;
};

struct fetch_session {
    int32_t id;                      /* 0 = free slot */
    int32_t next_epoch;
    struct fetch_session_part *parts;
    int nparts, cap;
    int64_t last_used_ms;
};

struct fetch_sessions {
    struct fetch_session slots[FETCH_SESSION_SLOTS];
    int32_t next_id;
};

struct fetch_session *fetch_session_find(struct fetch_sessions *fs, int32_t id);
/* A new empty session (evicting the least recently used one when full). */
struct fetch_session *fetch_session_new(struct fetch_sessions *fs, int64_t now_ms);
void fetch_session_remove(struct fetch_sessions *fs, int32_t id);
/* Parts are keyed by topic name (length-counted: a name holding a NUL is not its prefix's; no
 * topic is longer than the 255 bytes kept) or, when the name is empty, by topic id.
 * Adds or updates a partition; returns it, NULL on OOM. */
struct fetch_session_part *fetch_session_upsert(struct fetch_session *s, struct kstr topic,
                                                const struct kuuid *id, int32_t partition);
struct fetch_session_part *fetch_session_lookup(struct fetch_session *s, struct kstr topic,
                                                const struct kuuid *id, int32_t partition);
void fetch_session_forget(struct fetch_session *s, struct kstr topic, const struct kuuid *id,
                          int32_t partition);
/* Moves p to the end of the session's order (p and later parts' addresses change): a partition
 * that just returned records is served after the others next time, so one partition with big
 * batches cannot take every response's bytes (Kafka's FetchSession does the same). */
void fetch_session_move_to_end(struct fetch_session *s, struct fetch_session_part *p);
void fetch_sessions_free(struct fetch_sessions *fs);

#endif
