/* fuzz_scram: the SCRAM server's parsers (src/broker/scram.c) on arbitrary client messages:
 * the first byte picks the mechanism and whether a valid client-first goes before the input
 * (so the client-final parser is reached too); the rest is split at the first NUL into up to
 * two messages. Nothing may crash or read past a message; a state only moves forward; the
 * credential parser and base64 decoder get the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/scram.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lookup(void *ctx, enum scram_mechanism m, const char *user, struct scram_credential *out)
{
    (void)ctx;
    if (strcmp(user, "user") != 0)
        return -1;
    /* PBKDF2 once per mechanism: the parsers, not 4096 HMAC rounds, are what is fuzzed. */
    static struct scram_credential made[2];
    static bool ready[2];
    static const uint8_t salt[16] = "saltsaltsaltsalt";
    if (!ready[m]) {
        GREGOR_ASSERT(scram_credential_make(m, "pencil", 6, salt, sizeof(salt), 4096, &made[m]) == 0);
        ready[m] = true;
    }
    *out = made[m];
    return 0;
}

static void feed(struct scram_server *s, const uint8_t *msg, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees an overread */
    GREGOR_ASSERT(copy != NULL);
    memcpy(copy, msg, len);
    char out[SCRAM_MESSAGE_MAX], err[256];
    enum scram_state before = s->state;
    enum scram_result rc = scram_server_step(s, copy, len, lookup, NULL, "srvnonce", out,
                                             sizeof(out), err, sizeof(err));
    GREGOR_ASSERT(rc == SCRAM_OK ? s->state > before : s->state == SCRAM_FAILED);
    if (rc == SCRAM_OK)
        GREGOR_ASSERT(strlen(out) < sizeof(out));
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum scram_mechanism m = (data[0] & 1) ? SCRAM_SHA_512 : SCRAM_SHA_256;
    bool prefix = (data[0] & 2) != 0;
    data++;
    size--;
    struct scram_server s;
    scram_server_init(&s, m);
    if (prefix) {
        static const char first[] = "n,,n=user,r=clientnonce";
        feed(&s, (const uint8_t *)first, sizeof(first) - 1);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t first_len = nul != NULL ? (size_t)(nul - data) : size;
    feed(&s, data, first_len);
    if (nul != NULL && s.state == SCRAM_WANT_CLIENT_FINAL)
        feed(&s, nul + 1, size - first_len - 1);
    /* the credential form and base64 on the same bytes */
    char *text = malloc(size + 1);
    GREGOR_ASSERT(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    struct scram_credential c;
    if (scram_credential_parse(m, text, &c) == 0)
        GREGOR_ASSERT(c.salt_len > 0 && c.salt_len <= SCRAM_SALT_MAX && c.iterations >= 1);
    uint8_t dec[SCRAM_MESSAGE_MAX];
    int n = scram_b64_decode(text, size, dec, sizeof(dec));
    GREGOR_ASSERT(n <= (int)sizeof(dec));
    free(text);
    return 0;
}
