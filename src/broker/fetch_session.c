/* fetch_session: the session cache. Lookups are linear over a session's partitions: sessions
 * of a few hundred partitions cost microseconds; a per-session hash comes when a benchmark
 * shows it matters. */
#include "broker/fetch_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct fetch_session *fetch_session_find(struct fetch_sessions *fs, int32_t id)
{
    if (id <= 0)
        return NULL;
    for (int i = 0; i < FETCH_SESSION_SLOTS; i++)
        if (fs->slots[i].id == id)
            return &fs->slots[i];
    return NULL;
}

static void session_clear(struct fetch_session *s)
{
    free(s->parts);
    memset(s, 0, sizeof(*s));
}

struct fetch_session *fetch_session_new(struct fetch_sessions *fs, int64_t now_ms)
{
    struct fetch_session *slot = NULL;
    for (int i = 0; i < FETCH_SESSION_SLOTS; i++) {
        struct fetch_session *s = &fs->slots[i];
        if (s->id == 0) {
            slot = s;
            break;
        }
        if (slot == NULL || s->last_used_ms < slot->last_used_ms)
            slot = s;
    }
    session_clear(slot);
    do {
        fs->next_id = fs->next_id >= INT32_MAX - 1 ? 1 : fs->next_id + 1;
    } while (fetch_session_find(fs, fs->next_id) != NULL);
    slot->id = fs->next_id;
    slot->next_epoch = 0; /* the creating request counts: the client's next epoch is 1 */
    slot->last_used_ms = now_ms;
    return slot;
}

void fetch_session_remove(struct fetch_sessions *fs, int32_t id)
{
    struct fetch_session *s = fetch_session_find(fs, id);
    if (s != NULL)
        session_clear(s);
}

/* The bytes of a name a part keeps (longer names are cut: no topic name is that long). */
static int32_t kept_len(struct kstr topic)
{
    int32_t cap = (int32_t)sizeof(((struct fetch_session_part *)0)->topic) - 1;
    return topic.ptr == NULL || topic.len < 0 ? 0 : topic.len < cap ? topic.len : cap;
}

static bool same(const struct fetch_session_part *p, struct kstr topic, const struct kuuid *id,
                 int32_t partition)
{
    if (p->partition != partition)
        return false;
    int32_t n = kept_len(topic);
    if (n > 0)
        return p->topic_len == n && memcmp(p->topic, topic.ptr, (size_t)n) == 0;
    return id != NULL && memcmp(p->topic_id.b, id->b, 16) == 0;
}

struct fetch_session_part *fetch_session_lookup(struct fetch_session *s, struct kstr topic,
                                                const struct kuuid *id, int32_t partition)
{
    for (int i = 0; i < s->nparts; i++)
        if (same(&s->parts[i], topic, id, partition))
            return &s->parts[i];
    return NULL;
}

struct fetch_session_part *fetch_session_upsert(struct fetch_session *s, struct kstr topic,
                                                const struct kuuid *id, int32_t partition)
{
    struct fetch_session_part *p = fetch_session_lookup(s, topic, id, partition);
    if (p != NULL)
        return p;
    if (s->nparts == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        struct fetch_session_part *np = realloc(s->parts, (size_t)cap * sizeof(*np));
        if (np == NULL)
            return NULL;
        s->parts = np;
        s->cap = cap;
    }
    p = &s->parts[s->nparts++];
    memset(p, 0, sizeof(*p));
    p->topic_len = kept_len(topic);
    if (p->topic_len > 0)
        memcpy(p->topic, topic.ptr, (size_t)p->topic_len);
    if (id != NULL)
        p->topic_id = *id;
    p->partition = partition;
    p->sent_hw = -2;
    p->sent_start = -2;
    return p;
}

void fetch_session_forget(struct fetch_session *s, struct kstr topic, const struct kuuid *id,
                          int32_t partition)
{
    for (int i = 0; i < s->nparts; i++) {
        if (same(&s->parts[i], topic, id, partition)) {
            memmove(&s->parts[i], &s->parts[i + 1], (size_t)(s->nparts - i - 1) * sizeof(s->parts[0]));
            s->nparts--;
            return;
        }
    }
}

void fetch_session_move_to_end(struct fetch_session *s, struct fetch_session_part *p)
{
    int i = (int)(p - s->parts);
    GREGOR_ASSERT(i >= 0 && i < s->nparts);
    struct fetch_session_part keep = *p;
    memmove(&s->parts[i], &s->parts[i + 1], (size_t)(s->nparts - i - 1) * sizeof(*p));
    s->parts[s->nparts - 1] = keep;
}

void fetch_sessions_free(struct fetch_sessions *fs)
{
    if (fs == NULL)
        return;
    for (int i = 0; i < FETCH_SESSION_SLOTS; i++)
        session_clear(&fs->slots[i]);
    free(fs);
}
