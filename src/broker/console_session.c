/* console_session: the console's logged-in sessions — a bounded table on the broker
 * (b->console_sessions) of random ids (RAND_bytes), each with its principal and a sliding
 * expiry. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "broker/broker.h"
#include "broker/console_api.h"
#include "common/util.h"

/* ---- sessions ---- */

struct console_sessions {
    struct console_session s[CONSOLE_SESSIONS_MAX];
};

void console_api_free(struct broker *b)
{
    if (b->console_sessions != NULL)
        OPENSSL_cleanse(b->console_sessions, sizeof(*b->console_sessions));
    free(b->console_sessions);
    b->console_sessions = NULL;
}

static struct console_sessions *sessions(struct broker *b)
{
    if (b->console_sessions == NULL)
        b->console_sessions = calloc(1, sizeof(*b->console_sessions));
    return b->console_sessions;
}

/* A new session for principal: its id in id_out, or -1 (no randomness, out of memory). The
 * table is bounded: a full one drops the session closest to its expiry. */
int console_session_new(struct broker *b, const char *principal, char *id_out)
{
    struct console_sessions *t = sessions(b);
    if (t == NULL)
        return -1;
    uint8_t rnd[CONSOLE_SESSION_ID_LEN / 2];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -1;
    int64_t now = mono_ms();
    int pick = 0;
    for (int i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
        struct console_session *s = &t->s[i];
        if (s->id[0] == '\0' || s->expires_ms <= now) {
            pick = i;
            break;
        }
        if (s->expires_ms < t->s[pick].expires_ms)
            pick = i;
    }
    struct console_session *s = &t->s[pick];
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
    snprintf(s->principal, sizeof(s->principal), "%s", principal);
    s->expires_ms = now + CONSOLE_SESSION_TTL_MS;
    memcpy(id_out, s->id, sizeof(s->id));
    return 0;
}

struct console_session *console_session_find(struct broker *b, const char *id)
{
    if (b->console_sessions == NULL || strlen(id) != CONSOLE_SESSION_ID_LEN)
        return NULL;
    int64_t now = mono_ms();
    for (int i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
        struct console_session *s = &b->console_sessions->s[i];
        if (s->id[0] != '\0' && CRYPTO_memcmp(s->id, id, CONSOLE_SESSION_ID_LEN) == 0) {
            if (s->expires_ms <= now) {
                memset(s, 0, sizeof(*s));
                return NULL;
            }
            s->expires_ms = now + CONSOLE_SESSION_TTL_MS; /* sliding */
            return s;
        }
    }
    return NULL;
}
