/* scram: SCRAM-SHA-256/512 server side (RFC 5802, RFC 7677) and Kafka's credential form; see
 * scram.h. Messages are parsed by hand against RFC 5802's grammar as Kafka's ScramMessages
 * accepts it: every field bounded, nothing read past len. */
#include "broker/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const EVP_MD *scram_md(enum scram_mechanism m)
{
    return m == SCRAM_SHA_256 ? EVP_sha256() : EVP_sha512();
}

size_t scram_key_len(enum scram_mechanism m) { return m == SCRAM_SHA_256 ? 32 : 64; }

const char *scram_mechanism_name(enum scram_mechanism m)
{
    return m == SCRAM_SHA_256 ? "SCRAM-SHA-256" : "SCRAM-SHA-512";
}

int scram_mechanism_from_name(const char *name, enum scram_mechanism *m)
{
    if (strcmp(name, "SCRAM-SHA-256") == 0)
        *m = SCRAM_SHA_256;
    else if (strcmp(name, "SCRAM-SHA-512") == 0)
        *m = SCRAM_SHA_512;
    else
        return -1;
    return 0;
}

int scram_b64_encode(const uint8_t *in, size_t n, char *out, size_t out_len)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (need > out_len || n > 1 << 20)
        return -1;
    int w = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    GREGOR_ASSERT(w >= 0 && (size_t)w < out_len);
    return w;
}

int scram_b64_decode(const char *in, size_t n, uint8_t *out, size_t out_len)
{
    if (n % 4 != 0 || n / 4 * 3 > out_len + 2 || n > 1 << 20)
        return -1;
    if (n == 0)
        return 0;
    uint8_t tmp[SCRAM_MESSAGE_MAX];
    if (n / 4 * 3 > sizeof(tmp))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
                  (ch == '=' && i >= n - 2);
        if (!ok || (i == n - 2 && ch == '=' && in[n - 1] != '='))
            return -1;
    }
    int w = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    if (w < 0)
        return -1;
    size_t len = (size_t)w;
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    if (len > out_len)
        return -1;
    memcpy(out, tmp, len);
    return (int)len;
}

static int hmac(enum scram_mechanism m, const uint8_t *key, size_t key_len, const void *data,
                size_t len, uint8_t *out)
{
    unsigned int out_len = 0;
    if (HMAC(scram_md(m), key, (int)key_len, data, len, out, &out_len) == NULL)
        return -1;
    GREGOR_ASSERT(out_len == scram_key_len(m));
    return 0;
}

static int digest(enum scram_mechanism m, const uint8_t *data, size_t len, uint8_t *out)
{
    unsigned int out_len = 0;
    if (EVP_Digest(data, len, out, &out_len, scram_md(m), NULL) != 1)
        return -1;
    GREGOR_ASSERT(out_len == scram_key_len(m));
    return 0;
}

int scram_credential_make(enum scram_mechanism m, const char *password, size_t password_len,
                          const uint8_t *salt, size_t salt_len, int iterations,
                          struct scram_credential *out)
{
    size_t kl = scram_key_len(m);
    if (salt_len == 0 || salt_len > SCRAM_SALT_MAX || iterations < 1 || password_len > 1 << 16)
        return -1;
    uint8_t salted[SCRAM_KEY_MAX];
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations,
                          scram_md(m), (int)kl, salted) != 1)
        return -1;
    int rc = scram_credential_from_salted(m, salted, kl, salt, salt_len, iterations, out);
    OPENSSL_cleanse(salted, sizeof(salted));
    return rc;
}

int scram_credential_from_salted(enum scram_mechanism m, const uint8_t *salted, size_t salted_len,
                                 const uint8_t *salt, size_t salt_len, int iterations,
                                 struct scram_credential *out)
{
    size_t kl = scram_key_len(m);
    uint8_t client_key[SCRAM_KEY_MAX];
    if (salted_len != kl || salt_len == 0 || salt_len > SCRAM_SALT_MAX || iterations < 1)
        return -1;
    memset(out, 0, sizeof(*out));
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    out->iterations = iterations;
    int rc = hmac(m, salted, kl, "Client Key", 10, client_key) != 0 ||
             digest(m, client_key, kl, out->stored_key) != 0 ||
             hmac(m, salted, kl, "Server Key", 10, out->server_key) != 0 ? -1 : 0;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}

/* The value of key= in a comma-separated list of key=value (NULL if absent); *len its length. */
static const char *field(const char *text, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            *len = n - kl - 1;
            return p + kl + 1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

int scram_credential_parse(enum scram_mechanism m, const char *text, struct scram_credential *out)
{
    size_t kl = scram_key_len(m), n;
    memset(out, 0, sizeof(*out));
    const char *v = field(text, "salt", &n);
    int got = v != NULL ? scram_b64_decode(v, n, out->salt, sizeof(out->salt)) : -1;
    if (got <= 0)
        return -1;
    out->salt_len = (size_t)got;
    v = field(text, "stored_key", &n);
    if (v == NULL || scram_b64_decode(v, n, out->stored_key, sizeof(out->stored_key)) != (int)kl)
        return -1;
    v = field(text, "server_key", &n);
    if (v == NULL || scram_b64_decode(v, n, out->server_key, sizeof(out->server_key)) != (int)kl)
        return -1;
    v = field(text, "iterations", &n);
    char num[16];
    if (v == NULL || n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, v, n);
    num[n] = '\0';
    char *endp;
    long it = strtol(num, &endp, 10);
    if (*endp != '\0' || it < 1 || it > 1 << 30)
        return -1;
    out->iterations = (int)it;
    return 0;
}

int scram_credential_format(enum scram_mechanism m, const struct scram_credential *c, char *out,
                            size_t out_len)
{
    char salt[128], stored[128], server[128];
    size_t kl = scram_key_len(m);
    if (scram_b64_encode(c->salt, c->salt_len, salt, sizeof(salt)) < 0 ||
        scram_b64_encode(c->stored_key, kl, stored, sizeof(stored)) < 0 ||
        scram_b64_encode(c->server_key, kl, server, sizeof(server)) < 0)
        return -1;
    int w = snprintf(out, out_len, "salt=%s,stored_key=%s,server_key=%s,iterations=%d", salt,
                     stored, server, c->iterations);
    return w < 0 || (size_t)w >= out_len ? -1 : 0;
}

int scram_credentials_line_parse(const char *line, enum scram_mechanism *m, char *user,
                                 size_t user_len, struct scram_credential *c)
{
    if (line[0] == '\0' || line[0] == '#')
        return 1;
    const char *t1 = strchr(line, '\t');
    const char *t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
    char mech[32];
    size_t ml = t1 != NULL ? (size_t)(t1 - line) : 0, ul = t2 != NULL ? (size_t)(t2 - t1 - 1) : 0;
    if (t2 == NULL || ml >= sizeof(mech) || ul >= user_len || memchr(line, '\n', strlen(line)))
        return -1;
    memcpy(mech, line, ml);
    mech[ml] = '\0';
    if (scram_mechanism_from_name(mech, m) != 0 || scram_credential_parse(*m, t2 + 1, c) != 0)
        return -1;
    memcpy(user, t1 + 1, ul);
    user[ul] = '\0';
    return 0;
}

int scram_credentials_line_format(enum scram_mechanism m, const char *user,
                                  const struct scram_credential *c, char *out, size_t out_len)
{
    char text[600];
    if (strpbrk(user, "\t\n") != NULL || scram_credential_format(m, c, text, sizeof(text)) != 0)
        return -1;
    int w = snprintf(out, out_len, "%s\t%s\t%s", scram_mechanism_name(m), user, text);
    return w < 0 || (size_t)w >= out_len ? -1 : 0;
}

void scram_server_init(struct scram_server *s, enum scram_mechanism m)
{
    memset(s, 0, sizeof(*s));
    s->mech = m;
    s->state = SCRAM_WANT_CLIENT_FIRST;
}

static enum scram_result fail(struct scram_server *s, enum scram_result r, char *err,
                              size_t err_len, const char *why)
{
    snprintf(err, err_len, "%s", why);
    OPENSSL_cleanse(&s->cred, sizeof(s->cred));
    s->state = SCRAM_FAILED;
    return r;
}

/* A nonce is printable ASCII without ',' (RFC 5802 "printable"). */
static bool nonce_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
            return false;
    return true;
}

/* saslname: =2C and =3D decoded, no other '=' and no ','; out NUL-terminated. */
static bool saslname_decode(const char *p, size_t n, char *out, size_t out_len)
{
    size_t o = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if ((unsigned char)ch == 0 || (unsigned char)ch > 0x7f || ch == ',')
            return false;
        if (ch == '=') {
            if (i + 2 >= n)
                return false;
            if (p[i + 1] == '2' && p[i + 2] == 'C')
                ch = ',';
            else if (p[i + 1] == '3' && p[i + 2] == 'D')
                ch = '=';
            else
                return false;
            i += 2;
        }
        if (o + 1 >= out_len)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

/* client-first-message = gs2-header client-first-message-bare, with Kafka's extensions:
 * "n,[a=authzid],n=user,r=nonce[,key=value...]" (only "n": no channel binding). */
static enum scram_result client_first(struct scram_server *s, const char *msg, size_t len,
                                      scram_lookup_fn lookup, void *ctx, const char *server_nonce,
                                      char *out, size_t out_len, char *err, size_t err_len)
{
    const char *end = msg + len;
    if (len < 3 || msg[0] != 'n' || msg[1] != ',')
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    const char *p = msg + 2;
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (comma == NULL || (comma != p && (comma - p < 2 || p[0] != 'a' || p[1] != '=')))
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    char authzid[SCRAM_NAME_MAX] = "";
    if (comma != p && comma - p > 2 && !saslname_decode(p + 2, (size_t)(comma - p - 2), authzid,
                                                       sizeof(authzid)))
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    const char *bare = comma + 1;
    if ((size_t)(bare - msg) >= sizeof(s->gs2_header))
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    memcpy(s->gs2_header, msg, (size_t)(bare - msg));
    s->gs2_header[bare - msg] = '\0';
    size_t bare_len = (size_t)(end - bare);
    if (bare_len >= sizeof(s->client_first_bare) || bare_len < 2 || memchr(bare, '\0', bare_len))
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    memcpy(s->client_first_bare, bare, bare_len);
    s->client_first_bare[bare_len] = '\0';
    /* n=saslname,r=nonce[,ext=value]* */
    const char *b = s->client_first_bare;
    if (strncmp(b, "n=", 2) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    const char *uend = strchr(b + 2, ',');
    if (uend == NULL || !saslname_decode(b + 2, (size_t)(uend - b - 2), s->user, sizeof(s->user)) ||
        strncmp(uend + 1, "r=", 2) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    const char *nonce = uend + 3;
    const char *nend = strchr(nonce, ',');
    size_t nonce_len = nend != NULL ? (size_t)(nend - nonce) : strlen(nonce);
    if (!nonce_ok(nonce, nonce_len))
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client first message format");
    bool tokenauth = false;
    for (const char *e = nend; e != NULL;) {
        const char *k = e + 1;
        const char *eq = strchr(k, '=');
        const char *next = strchr(k, ',');
        if (eq == NULL || (next != NULL && eq > next) || eq == k)
            return fail(s, SCRAM_ERR_GENERIC, err, err_len,
                        "Invalid SCRAM client first message format");
        for (const char *q = k; q < eq; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
                return fail(s, SCRAM_ERR_GENERIC, err, err_len,
                            "Invalid SCRAM client first message format");
        if ((size_t)(eq - k) == 9 && strncmp(k, "tokenauth", 9) == 0)
            tokenauth = true;
        else
            return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Unsupported SCRAM extensions");
        e = next;
    }
    /* Delegation tokens are not kept: a token login finds no credential, as an unknown token. */
    if (tokenauth || lookup(ctx, s->mech, s->user, &s->cred) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len,
                    "Authentication failed: Invalid user credentials");
    if (authzid[0] != '\0' && strcmp(authzid, s->user) != 0)
        return fail(s, SCRAM_ERR_MESSAGE, err, err_len,
                    "Authentication failed: Client requested an authorization id that is "
                    "different from username");
    if (s->cred.iterations < SCRAM_MIN_ITERATIONS)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Iterations below the minimum");
    char snonce[64];
    if (server_nonce == NULL) {
        uint8_t rnd[32];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return fail(s, SCRAM_ERR_GENERIC, err, err_len, "no random bytes");
        /* base64 without '+' '/' '=' (any printable but ',' would do). */
        static const char alphabet[] =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for (size_t i = 0; i < sizeof(rnd); i++)
            snonce[i] = alphabet[rnd[i] % 62];
        snonce[sizeof(rnd)] = '\0';
        server_nonce = snonce;
    }
    int w = snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)nonce_len, nonce, server_nonce);
    if (w < 0 || (size_t)w >= sizeof(s->nonce))
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "nonce too long");
    char salt[128];
    if (scram_b64_encode(s->cred.salt, s->cred.salt_len, salt, sizeof(salt)) < 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "bad salt");
    w = snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%d", s->nonce, salt,
                 s->cred.iterations);
    if (w < 0 || (size_t)w >= sizeof(s->server_first) || (size_t)w >= out_len)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "server first message too long");
    memcpy(out, s->server_first, (size_t)w + 1);
    s->state = SCRAM_WANT_CLIENT_FINAL;
    return SCRAM_OK;
}

/* client-final-message = "c=" cbind ",r=" nonce [",ext"...] ",p=" proof */
static enum scram_result client_final(struct scram_server *s, const char *msg, size_t len,
                                      char *out, size_t out_len, char *err, size_t err_len)
{
    char m[SCRAM_MESSAGE_MAX];
    if (len >= sizeof(m) || memchr(msg, '\0', len) != NULL)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client final message format");
    memcpy(m, msg, len);
    m[len] = '\0';
    char *proof_at = strstr(m, ",p=");
    if (strncmp(m, "c=", 2) != 0 || proof_at == NULL)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client final message format");
    while (strstr(proof_at + 1, ",p=") != NULL)
        proof_at = strstr(proof_at + 1, ",p=");
    char *cend = strchr(m, ',');
    /* The channel binding is the gs2 header sent first, base64: "biws" for "n,,". */
    uint8_t cb[sizeof(s->gs2_header)];
    int cbl = scram_b64_decode(m + 2, (size_t)(cend - m - 2), cb, sizeof(cb));
    if (cbl < 0 || (size_t)cbl != strlen(s->gs2_header) || memcmp(cb, s->gs2_header, (size_t)cbl) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid channel binding");
    if (strncmp(cend + 1, "r=", 2) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid SCRAM client final message format");
    const char *nonce = cend + 3;
    const char *nend = strchr(nonce, ',');
    size_t nl = (size_t)(nend - nonce);
    size_t sl = strlen(s->nonce);
    /* Kafka: the nonce must end with the server's (client + server) nonce; a client repeating
     * its own nonce (librdkafka before 2.6.1) is refused. */
    if (nl < sl || memcmp(nonce + nl - sl, s->nonce, sl) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len,
                    "Invalid client nonce in the final client message.");
    size_t kl = scram_key_len(s->mech);
    uint8_t proof[SCRAM_KEY_MAX + 3];
    const char *p64 = proof_at + 3;
    if (scram_b64_decode(p64, strlen(p64), proof, sizeof(proof)) != (int)kl)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid client credentials");
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    char auth[3 * SCRAM_MESSAGE_MAX + 3];
    int w = snprintf(auth, sizeof(auth), "%s,%s,%.*s", s->client_first_bare, s->server_first,
                     (int)(proof_at - m), m);
    GREGOR_ASSERT(w > 0 && (size_t)w < sizeof(auth));
    uint8_t sig[SCRAM_KEY_MAX], client_key[SCRAM_KEY_MAX], stored[SCRAM_KEY_MAX];
    if (hmac(s->mech, s->cred.stored_key, kl, auth, (size_t)w, sig) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "hmac failed");
    for (size_t i = 0; i < kl; i++)
        client_key[i] = proof[i] ^ sig[i];
    if (digest(s->mech, client_key, kl, stored) != 0 ||
        CRYPTO_memcmp(stored, s->cred.stored_key, kl) != 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Invalid client credentials");
    uint8_t server_sig[SCRAM_KEY_MAX];
    char v[128];
    if (hmac(s->mech, s->cred.server_key, kl, auth, (size_t)w, server_sig) != 0 ||
        scram_b64_encode(server_sig, kl, v, sizeof(v)) < 0)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "hmac failed");
    w = snprintf(out, out_len, "v=%s", v);
    if (w < 0 || (size_t)w >= out_len)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "server final message too long");
    OPENSSL_cleanse(&s->cred, sizeof(s->cred));
    s->state = SCRAM_COMPLETE;
    return SCRAM_OK;
}

enum scram_result scram_server_step(struct scram_server *s, const uint8_t *msg, size_t len,
                                    scram_lookup_fn lookup, void *ctx, const char *server_nonce,
                                    char *out, size_t out_len, char *err, size_t err_len)
{
    if (len > SCRAM_MESSAGE_MAX)
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "SCRAM message too long");
    switch (s->state) {
    case SCRAM_WANT_CLIENT_FIRST:
        return client_first(s, (const char *)msg, len, lookup, ctx, server_nonce, out, out_len,
                            err, err_len);
    case SCRAM_WANT_CLIENT_FINAL:
        return client_final(s, (const char *)msg, len, out, out_len, err, err_len);
    default:
        return fail(s, SCRAM_ERR_GENERIC, err, err_len, "Unexpected SCRAM message");
    }
}

/* ---- the client side ---- */

void scram_client_init(struct scram_client *c, enum scram_mechanism m)
{
    memset(c, 0, sizeof(*c));
    c->mech = m;
}

static int client_fail(char *err, size_t err_len, const char *what)
{
    snprintf(err, err_len, "%s", what);
    return -1;
}

/* The value of attribute key ("r", "s", "i", "v", "e") in a server message, bounded by end. */
static const char *attr(const char *msg, const char *end, char key, size_t *len)
{
    const char *p = msg;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma != NULL ? comma : end;
        if (e - p >= 2 && p[0] == key && p[1] == '=') {
            *len = (size_t)(e - p - 2);
            return p + 2;
        }
        p = e + 1;
    }
    return NULL;
}

int scram_client_step(struct scram_client *c, const char *user, const char *password,
                      const uint8_t *in, size_t in_len, const char *client_nonce, char *out,
                      size_t out_len, char *err, size_t err_len)
{
    size_t kl = scram_key_len(c->mech);
    if (c->step == 0) {
        if (client_nonce == NULL) {
            uint8_t rnd[32];
            static const char alphabet[] =
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return client_fail(err, err_len, "no random bytes");
            for (size_t i = 0; i < sizeof(rnd); i++)
                c->nonce[i] = alphabet[rnd[i] % 62];
            c->nonce[sizeof(rnd)] = '\0';
        } else if (snprintf(c->nonce, sizeof(c->nonce), "%s", client_nonce) >=
                   (int)sizeof(c->nonce)) {
            return client_fail(err, err_len, "nonce too long");
        }
        /* saslname: '=' as "=3D", ',' as "=2C". */
        char name[SCRAM_NAME_MAX * 3];
        size_t n = 0;
        for (const char *p = user; *p != '\0'; p++) {
            if (n + 4 > sizeof(name))
                return client_fail(err, err_len, "user name too long");
            if (*p == '=' || *p == ',') {
                memcpy(name + n, *p == '=' ? "=3D" : "=2C", 3);
                n += 3;
            } else {
                name[n++] = *p;
            }
        }
        name[n] = '\0';
        int w = snprintf(c->client_first_bare, sizeof(c->client_first_bare), "n=%s,r=%s", name,
                         c->nonce);
        if (w < 0 || (size_t)w >= sizeof(c->client_first_bare) || (size_t)w + 4 > out_len)
            return client_fail(err, err_len, "client first message too long");
        snprintf(out, out_len, "n,,%s", c->client_first_bare);
        c->step = 1;
        return 1;
    }
    if (in == NULL || in_len >= SCRAM_MESSAGE_MAX)
        return client_fail(err, err_len, "no or too long a server message");
    const char *msg = (const char *)in, *end = msg + in_len;
    size_t len;
    const char *e = attr(msg, end, 'e', &len);
    if (e != NULL) {
        snprintf(err, err_len, "Sasl authentication using %s failed with error: %.*s",
                 scram_mechanism_name(c->mech), (int)len, e);
        return -1;
    }
    if (c->step == 1) {
        size_t rl, sl, il;
        const char *r = attr(msg, end, 'r', &rl), *sv = attr(msg, end, 's', &sl),
                   *iv = attr(msg, end, 'i', &il);
        size_t cnl = strlen(c->nonce);
        if (r == NULL || sv == NULL || iv == NULL || rl <= cnl || memcmp(r, c->nonce, cnl) != 0)
            return client_fail(err, err_len, "Invalid server first message");
        char itext[16];
        if (il == 0 || il >= sizeof(itext))
            return client_fail(err, err_len, "Invalid server first message");
        memcpy(itext, iv, il);
        itext[il] = '\0';
        char *ie;
        long iterations = strtol(itext, &ie, 10);
        if (*ie != '\0' || iterations < SCRAM_MIN_ITERATIONS || iterations > 1000000)
            return client_fail(err, err_len, "Requested iterations out of range");
        uint8_t salt[SCRAM_SALT_MAX];
        int saltn = scram_b64_decode(sv, sl, salt, sizeof(salt));
        if (saltn <= 0)
            return client_fail(err, err_len, "Invalid salt in the server first message");
        uint8_t salted[SCRAM_KEY_MAX], client_key[SCRAM_KEY_MAX], stored[SCRAM_KEY_MAX];
        uint8_t client_sig[SCRAM_KEY_MAX], server_key[SCRAM_KEY_MAX], proof[SCRAM_KEY_MAX];
        if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, saltn, (int)iterations,
                              scram_md(c->mech), (int)kl, salted) != 1)
            return client_fail(err, err_len, "PBKDF2 failed");
        char without_proof[SCRAM_MESSAGE_MAX], auth[3 * SCRAM_MESSAGE_MAX];
        int w = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)rl, r);
        int aw = snprintf(auth, sizeof(auth), "%s,%.*s,%s", c->client_first_bare, (int)in_len,
                          msg, without_proof);
        if (w < 0 || (size_t)w >= sizeof(without_proof) || aw < 0 || (size_t)aw >= sizeof(auth))
            return client_fail(err, err_len, "message too long");
        if (hmac(c->mech, salted, kl, "Client Key", 10, client_key) != 0 ||
            digest(c->mech, client_key, kl, stored) != 0 ||
            hmac(c->mech, stored, kl, auth, (size_t)aw, client_sig) != 0 ||
            hmac(c->mech, salted, kl, "Server Key", 10, server_key) != 0 ||
            hmac(c->mech, server_key, kl, auth, (size_t)aw, c->server_signature) != 0) {
            OPENSSL_cleanse(salted, sizeof(salted));
            return client_fail(err, err_len, "HMAC failed");
        }
        OPENSSL_cleanse(salted, sizeof(salted));
        for (size_t i = 0; i < kl; i++)
            proof[i] = client_key[i] ^ client_sig[i];
        char proof64[2 * SCRAM_KEY_MAX];
        if (scram_b64_encode(proof, kl, proof64, sizeof(proof64)) < 0 ||
            snprintf(out, out_len, "%s,p=%s", without_proof, proof64) >= (int)out_len)
            return client_fail(err, err_len, "client final message too long");
        c->step = 2;
        return 1;
    }
    if (c->step == 2) {
        size_t vl;
        const char *v = attr(msg, end, 'v', &vl);
        uint8_t sig[SCRAM_KEY_MAX];
        if (v == NULL || scram_b64_decode(v, vl, sig, sizeof(sig)) != (int)kl ||
            CRYPTO_memcmp(sig, c->server_signature, kl) != 0)
            return client_fail(err, err_len, "Invalid server signature in server final message");
        c->step = 3;
        return 0;
    }
    return client_fail(err, err_len, "SCRAM exchange already complete");
}
