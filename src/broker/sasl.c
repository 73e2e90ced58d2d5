/* sasl: SASL authentication of a SASL_PLAINTEXT / SASL_SSL connection, as Kafka's
 * SaslServerAuthenticator, PlainSaslServer and ScramSaslServer behave (see sasl.h). The
 * per-connection state hangs off the connection's session; SCRAM itself is in scram.c. */
#include "broker/authorizer.h"
#include "broker/sasl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/scram.h"
#include "common/logging.h"
#include "common/util.h"
#include "log/logdir.h"
#include "net/conn.h"
#include "net/client.h"
#include "net/loop.h"
#include "net/tls.h"
#include "proto/messages.h"

#define WHO "SaslServerAuthenticator"
/* The credentials kept, one line each: "<mechanism>\t<user>\t<salt=..,iterations=..>". */
#define SASL_CREDENTIALS_FILE "scram-credentials"
#define SASL_CREDENTIALS_MAX 4096
#define SASL_TOKEN_MAX 4096 /* a SASL token of PLAIN or SCRAM is far smaller */

enum sasl_mech { MECH_PLAIN, MECH_SCRAM_SHA_256, MECH_SCRAM_SHA_512, MECH_COUNT };
static const char *const mech_names[MECH_COUNT] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

struct sasl_listener {
    bool sasl;                         /* a SASL_* listener */
    bool enabled[MECH_COUNT];
    const char *order[MECH_COUNT];     /* enabled, as sasl.enabled.mechanisms lists them */
    int n_order;
    const char *jaas[MECH_COUNT];      /* borrowed from b->cfg's security props */
};

struct sasl_user_credential {
    char user[SCRAM_NAME_MAX];
    enum scram_mechanism mech;
    struct scram_credential cred;
};

struct sasl_server_config {
    struct sasl_listener listeners[BROKER_MAX_LISTENERS];
    int64_t failed_delay_ms;           /* connection.failed.authentication.delay.ms */
    int64_t reauth_ms;                 /* connections.max.reauth.ms (0: sessions never expire) */
    struct request *delayed;           /* failed logins waiting for their delay (next_pending);
                                        * at most one per connection */
    int n_delayed;
    struct sasl_user_credential *creds;
    int n_creds;
};

enum sasl_state {
    SASL_WANT_HANDSHAKE,   /* ApiVersions or SaslHandshake */
    SASL_WANT_AUTHENTICATE, /* handshake v1: SaslAuthenticate requests */
    SASL_WANT_RAW,         /* handshake v0: raw tokens */
    SASL_AUTHENTICATED,
    SASL_FAILED,
};

struct sasl_session {
    enum sasl_state state;
    enum sasl_mech mech;
    bool reauth_capable;   /* authenticated with SaslAuthenticate v1+ (KIP-368) */
    bool reauthenticating; /* a handshake on an authenticated connection: the same principal */
    int64_t expires_ms;    /* mono ms the session ends (0: never) */
    struct scram_server scram;
};

static void session_free(void *p)
{
    if (p != NULL)
        OPENSSL_cleanse(p, sizeof(struct sasl_session));
    free(p);
}

static int listener_index(struct broker *b, struct conn *c)
{
    const struct net_listener_info *li = conn_session(c)->listener;
    for (int i = 0; b->listener_info != NULL && i < b->cfg.n_listeners; i++)
        if (li == &b->listener_info[i])
            return i;
    return -1;
}

static const struct sasl_listener *listener_of(struct broker *b, struct conn *c)
{
    int i = listener_index(b, c);
    if (b->sasl == NULL || i < 0 || !b->sasl->listeners[i].sasl)
        return NULL;
    return &b->sasl->listeners[i];
}

/* The session's SASL state, made on first use (NULL: out of memory). */
static struct sasl_session *session_of(struct conn *c)
{
    struct conn_session *s = conn_session(c);
    if (s->sasl == NULL) {
        struct sasl_session *ss = calloc(1, sizeof(*ss));
        if (ss == NULL)
            return NULL;
        conn_session_set_sasl(s, ss, session_free);
    }
    return s->sasl;
}

/* ---- JAAS: "<LoginModule> <flag> key=value key="value";" ---- */

/* The value of option key in a JAAS entry, unquoted, into out. 0, or -1 when absent. */
static int jaas_option(const char *jaas, const char *key, char *out, size_t out_len)
{
    const char *p = jaas;
    for (int skip = 0; skip < 2; skip++) { /* the module class, then its flag */
        while (isspace((unsigned char)*p))
            p++;
        while (*p != '\0' && !isspace((unsigned char)*p) && *p != ';')
            p++;
    }
    size_t kl = strlen(key);
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == ';')
            return -1;
        const char *k = p;
        while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
            p++;
        bool match = (size_t)(p - k) == kl && strncmp(k, key, kl) == 0;
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '=')
            return -1;
        p++;
        while (isspace((unsigned char)*p))
            p++;
        size_t o = 0;
        if (*p == '"') {
            p++;
            while (*p != '\0' && *p != '"') {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (match && o + 1 < out_len)
                    out[o++] = *p;
                p++;
            }
            if (*p != '"')
                return -1;
            p++;
        } else {
            while (*p != '\0' && !isspace((unsigned char)*p) && *p != ';') {
                if (match && o + 1 < out_len)
                    out[o++] = *p;
                p++;
            }
        }
        if (match) {
            out[o] = '\0';
            return 0;
        }
    }
}

/* ---- credentials ---- */

static void credentials_path(struct broker *b, char *out, size_t out_len)
{
    snprintf(out, out_len, "%s/%s", b->cfg.log_dirs[0], SASL_CREDENTIALS_FILE);
}

static int credentials_load(struct broker *b, char *err, size_t errlen)
{
    struct sasl_server_config *sc = b->sasl;
    char path[1200];
    credentials_path(b, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "cannot read %s: %s", path,
                                               strerror(errno)), -1);
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *t1 = strchr(line, '\t');
        char *t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
        if (t2 == NULL || sc->n_creds == SASL_CREDENTIALS_MAX) {
            fclose(f);
            snprintf(err, errlen, "%s line %d: not \"<mechanism>\\t<user>\\t<credential>\" "
                     "(or more than %d credentials)", path, lineno, SASL_CREDENTIALS_MAX);
            return -1;
        }
        *t1 = *t2 = '\0';
        struct sasl_user_credential *uc = &sc->creds[sc->n_creds];
        if (scram_mechanism_from_name(line, &uc->mech) != 0 ||
            strlen(t1 + 1) >= sizeof(uc->user) ||
            scram_credential_parse(uc->mech, t2 + 1, &uc->cred) != 0) {
            fclose(f);
            snprintf(err, errlen, "%s line %d: bad SCRAM credential", path, lineno);
            return -1;
        }
        snprintf(uc->user, sizeof(uc->user), "%s", t1 + 1);
        sc->n_creds++;
    }
    fclose(f);
    return 0;
}

static int credential_lookup(void *ctx, enum scram_mechanism m, const char *user,
                             struct scram_credential *out)
{
    const struct sasl_server_config *sc = ctx;
    for (int i = sc->n_creds - 1; i >= 0; i--)
        if (sc->creds[i].mech == m && strcmp(sc->creds[i].user, user) == 0) {
            *out = sc->creds[i].cred;
            return 0;
        }
    return -1;
}

/* ---- setup ---- */

static int listener_setup(struct broker *b, int i, char *err, size_t errlen)
{
    const struct broker_listener *l = &b->cfg.listeners[i];
    struct sasl_listener *sl = &b->sasl->listeners[i];
    sl->sasl = strncmp(l->security_protocol, "SASL_", 5) == 0;
    if (!sl->sasl)
        return 0;
    const char *list = broker_security_prop(&b->cfg, l->name, "sasl.enabled.mechanisms", NULL);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", list != NULL ? list : "GSSAPI"); /* Kafka's default */
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        tok[strcspn(tok, " \t")] = '\0';
        if (*tok == '\0')
            continue;
        int m = 0;
        while (m < MECH_COUNT && strcmp(mech_names[m], tok) != 0)
            m++;
        if (m == MECH_COUNT) {
            snprintf(err, errlen, "listener %s: SASL mechanism %s of sasl.enabled.mechanisms is "
                     "not supported (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are)", l->name, tok);
            return -1;
        }
        if (sl->enabled[m])
            continue;
        sl->enabled[m] = true;
        sl->order[sl->n_order++] = mech_names[m];
        /* Kafka wants a JAAS entry per enabled mechanism: <mechanism>.sasl.jaas.config under
         * listener.name.<listener>. or unprefixed, else sasl.jaas.config. */
        char key[64], lower[32];
        size_t k = 0;
        for (; mech_names[m][k] != '\0' && k + 1 < sizeof(lower); k++)
            lower[k] = (char)tolower((unsigned char)mech_names[m][k]);
        lower[k] = '\0';
        snprintf(key, sizeof(key), "%s.sasl.jaas.config", lower);
        const char *jaas = broker_security_prop(&b->cfg, l->name, key, NULL);
        if (jaas == NULL)
            jaas = broker_security_prop(&b->cfg, l->name, "sasl.jaas.config", NULL);
        if (jaas == NULL) {
            char ln[64];
            size_t j = 0;
            for (; l->name[j] != '\0' && j + 1 < sizeof(ln); j++)
                ln[j] = (char)tolower((unsigned char)l->name[j]);
            ln[j] = '\0';
            snprintf(err, errlen, "Could not find a 'KafkaServer' or '%s.KafkaServer' entry in "
                     "the JAAS configuration. System property 'java.security.auth.login.config' "
                     "is not set", ln);
            return -1;
        }
        const char *module = m == MECH_PLAIN ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                                             : "org.apache.kafka.common.security.scram.ScramLoginModule";
        while (isspace((unsigned char)*jaas))
            jaas++;
        if (strncmp(jaas, module, strlen(module)) != 0)
            LOG_WARN(WHO, "listener %s: the JAAS entry of %s does not name %s", l->name,
                     mech_names[m], module);
        sl->jaas[m] = jaas;
    }
    if (sl->n_order == 0) {
        snprintf(err, errlen, "listener %s: sasl.enabled.mechanisms is empty", l->name);
        return -1;
    }
    return 0;
}

int sasl_setup(struct broker *b, char *err, size_t errlen)
{
    /* Made for every broker: credentials are managed even where no listener uses them. */
    b->sasl = calloc(1, sizeof(*b->sasl));
    if (b->sasl == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->sasl->creds = calloc(SASL_CREDENTIALS_MAX, sizeof(*b->sasl->creds));
    if (b->sasl->creds == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *delay = broker_security_prop(&b->cfg, NULL,
                                             "connection.failed.authentication.delay.ms", NULL);
    b->sasl->failed_delay_ms = 100;
    if (delay != NULL) {
        char *end;
        long long v = strtoll(delay, &end, 10);
        if (*end != '\0' || v < 0 || v > 3600000) {
            snprintf(err, errlen, "Invalid value %s for configuration "
                     "connection.failed.authentication.delay.ms", delay);
            return -1;
        }
        b->sasl->failed_delay_ms = v;
    }
    const char *reauth = broker_security_prop(&b->cfg, NULL, "connections.max.reauth.ms", NULL);
    if (reauth != NULL) {
        char *end;
        long long v = strtoll(reauth, &end, 10);
        if (*end != '\0' || v < 0) {
            snprintf(err, errlen, "Invalid value %s for configuration connections.max.reauth.ms",
                     reauth);
            return -1;
        }
        b->sasl->reauth_ms = v;
    }
    for (int i = 0; i < b->cfg.n_listeners; i++)
        if (listener_setup(b, i, err, errlen) != 0)
            return -1;
    return credentials_load(b, err, errlen);
}

void sasl_teardown(struct broker *b)
{
    if (b->sasl == NULL)
        return;
    if (b->sasl->creds != NULL) {
        OPENSSL_cleanse(b->sasl->creds, SASL_CREDENTIALS_MAX * sizeof(*b->sasl->creds));
        free(b->sasl->creds);
    }
    free(b->sasl);
    b->sasl = NULL;
}

/* ---- the gate ---- */

const char *sasl_request_refusal(struct broker *b, struct conn *c, int16_t api_key, char *buf,
                                 size_t buflen)
{
    if (listener_of(b, c) == NULL)
        return NULL;
    struct sasl_session *ss = conn_session(c)->sasl;
    enum sasl_state st = ss != NULL ? ss->state : SASL_WANT_HANDSHAKE;
    if (st == SASL_AUTHENTICATED) {
        /* KIP-368: a session past its lifetime serves nothing but a re-authentication. */
        if (api_key == PROTO_API_SASL_HANDSHAKE || ss == NULL || ss->expires_ms == 0 ||
            mono_ms() <= ss->expires_ms)
            return NULL;
        snprintf(buf, buflen, "the SASL session expired (connections.max.reauth.ms) and the "
                 "client did not re-authenticate");
        return buf;
    }
    /* Kafka names the API by its ApiKeys constant: Metadata -> METADATA, ApiVersions ->
     * API_VERSIONS. */
    const struct api_entry *api = broker_api_find(api_key);
    const char *camel = api != NULL ? api->name : "Unknown";
    char name[64];
    size_t o = 0;
    for (size_t i = 0; camel[i] != '\0' && o + 2 < sizeof(name); i++) {
        if (i > 0 && isupper((unsigned char)camel[i]))
            name[o++] = '_';
        name[o++] = (char)toupper((unsigned char)camel[i]);
    }
    name[o] = '\0';
    if (st == SASL_WANT_HANDSHAKE) {
        if (api_key == PROTO_API_API_VERSIONS || api_key == PROTO_API_SASL_HANDSHAKE)
            return NULL;
        snprintf(buf, buflen, "Unexpected Kafka request of type %s during SASL handshake.", name);
        return buf;
    }
    if (st == SASL_WANT_AUTHENTICATE && api_key == PROTO_API_SASL_AUTHENTICATE)
        return NULL;
    snprintf(buf, buflen, "Unexpected Kafka request of type %s during SASL authentication.",
             name);
    return buf;
}

/* ---- one token ---- */

/* PLAIN (RFC 4616): authzid NUL authcid NUL passwd, checked against the JAAS entry's
 * user_<name> option as Kafka's PlainServerCallbackHandler does. */
static enum scram_result plain_step(const char *jaas, const uint8_t *tok, size_t len,
                                    char *user, size_t user_len, char *err, size_t err_len)
{
    const uint8_t *z1 = memchr(tok, 0, len);
    const uint8_t *z2 = z1 != NULL ? memchr(z1 + 1, 0, len - (size_t)(z1 + 1 - tok)) : NULL;
    if (z2 == NULL || memchr(z2 + 1, 0, len - (size_t)(z2 + 1 - tok)) != NULL) {
        int n = 1;
        for (size_t i = 0; i < len; i++)
            n += tok[i] == 0;
        snprintf(err, err_len, "Invalid SASL/PLAIN response: expected 3 tokens, got %d", n);
        return SCRAM_ERR_MESSAGE;
    }
    size_t authz_len = (size_t)(z1 - tok), name_len = (size_t)(z2 - z1 - 1);
    size_t pw_len = len - (size_t)(z2 + 1 - tok);
    if (name_len == 0) {
        snprintf(err, err_len, "Authentication failed: username not specified");
        return SCRAM_ERR_MESSAGE;
    }
    if (pw_len == 0) {
        snprintf(err, err_len, "Authentication failed: password not specified");
        return SCRAM_ERR_MESSAGE;
    }
    if (name_len >= user_len || name_len > 200) {
        snprintf(err, err_len, "Authentication failed: Invalid username or password");
        return SCRAM_ERR_MESSAGE;
    }
    memcpy(user, z1 + 1, name_len);
    user[name_len] = '\0';
    char key[SCRAM_NAME_MAX + 8], expected[512];
    snprintf(key, sizeof(key), "user_%s", user);
    if (jaas_option(jaas, key, expected, sizeof(expected)) != 0 || strlen(expected) != pw_len ||
        CRYPTO_memcmp(expected, z2 + 1, pw_len) != 0) {
        OPENSSL_cleanse(expected, sizeof(expected));
        snprintf(err, err_len, "Authentication failed: Invalid username or password");
        return SCRAM_ERR_MESSAGE;
    }
    OPENSSL_cleanse(expected, sizeof(expected));
    if (authz_len > 0 && (authz_len != name_len || memcmp(tok, user, name_len) != 0)) {
        snprintf(err, err_len, "Authentication failed: Client requested an authorization id "
                 "that is different from username");
        return SCRAM_ERR_MESSAGE;
    }
    return SCRAM_OK;
}

/* Evaluates a client token. SCRAM_OK: *out/out_len hold the answer and *done says whether the
 * exchange completed (the principal is then set). Otherwise msg holds the client's message. */
static enum scram_result evaluate(struct broker *b, struct conn *c, struct sasl_session *ss,
                                  const uint8_t *tok, size_t len, char *out, size_t out_cap,
                                  size_t *out_len, bool *done, char *msg, size_t msg_len)
{
    const struct sasl_listener *sl = listener_of(b, c);
    char err[640] = "";
    char user[SCRAM_NAME_MAX];
    enum scram_result rc;
    *done = false;
    *out_len = 0;
    if (len > SASL_TOKEN_MAX) {
        rc = SCRAM_ERR_GENERIC;
        snprintf(err, sizeof(err), "a token of %zu bytes", len);
    } else if (ss->mech == MECH_PLAIN) {
        rc = plain_step(sl->jaas[MECH_PLAIN], tok, len, user, sizeof(user), err, sizeof(err));
        *done = rc == SCRAM_OK;
    } else {
        rc = scram_server_step(&ss->scram, tok, len, credential_lookup, b->sasl, NULL, out,
                               out_cap, err, sizeof(err));
        if (rc == SCRAM_OK) {
            *out_len = strlen(out);
            *done = ss->scram.state == SCRAM_COMPLETE;
            snprintf(user, sizeof(user), "%s", ss->scram.user);
        }
    }
    if (rc == SCRAM_OK && *done) {
        char principal[SCRAM_NAME_MAX + 8];
        snprintf(principal, sizeof(principal), "User:%s", user);
        if (ss->reauthenticating && strcmp(principal, conn_session(c)->principal) != 0) {
            rc = SCRAM_ERR_MESSAGE;
            snprintf(err, sizeof(err), "Cannot change principals during re-authentication from "
                     "%s: %s", conn_session(c)->principal, principal);
        } else if (conn_session_set_principal(conn_session(c), principal) != 0) {
            rc = SCRAM_ERR_GENERIC;
            snprintf(err, sizeof(err), "principal too long");
        } else {
            ss->state = SASL_AUTHENTICATED;
            LOG_DEBUG(WHO, "%s authenticated as %s with %s", conn_peer(c), principal,
                      mech_names[ss->mech]);
        }
    }
    if (rc != SCRAM_OK) {
        ss->state = SASL_FAILED;
        if (rc == SCRAM_ERR_MESSAGE)
            snprintf(msg, msg_len, "%s", err);
        else
            snprintf(msg, msg_len, "Authentication failed during authentication due to invalid "
                     "credentials with SASL mechanism %s", mech_names[ss->mech]);
        LOG_LIMITED(LOG_LEVEL_INFO, WHO, "Failed authentication with %s (%s): %s",
                    conn_peer(c), msg, err);
    }
    return rc;
}

/* ---- answers after connection.failed.authentication.delay.ms ---- */

static void failed_answer(struct loop *l, void *arg)
{
    (void)l;
    struct request *r = arg;
    struct sasl_server_config *sc = r->broker->sasl;
    r->timer_id = 0;
    for (struct request **p = &sc->delayed; *p != NULL; p = &(*p)->next_pending)
        if (*p == r) {
            *p = r->next_pending;
            sc->n_delayed--;
            break;
        }
    GREGOR_ASSERT(sc->n_delayed >= 0);
    r->next_pending = NULL;
    if (r->api == NULL) {
        /* A raw token: no answer, the connection closes. */
        struct conn *c = r->conn;
        r->conn = NULL;
        if (c != NULL)
            conn_set_data(c, NULL);
        request_free(r);
        if (c != NULL)
            conn_close(c, "SASL authentication failed");
        return;
    }
    request_finish(r); /* the connection closes once it is sent (conn_close_after_send) */
}

static enum request_status answer_late(struct broker *b, struct request *r)
{
    int64_t delay = b->sasl->failed_delay_ms;
    if (delay == 0) {
        failed_answer(b->loop, r);
        return REQUEST_PENDING;
    }
    r->timer_id = loop_timer_add(b->loop, mono_ms() + delay, failed_answer, r);
    GREGOR_ASSERT(r->timer_id != 0);
    r->next_pending = b->sasl->delayed;
    b->sasl->delayed = r;
    b->sasl->n_delayed++;
    return REQUEST_PENDING;
}

void sasl_shutdown(struct broker *b)
{
    /* Shutdown answers the failed logins still waiting for their delay (and closes them). */
    while (b->sasl != NULL && b->sasl->delayed != NULL) {
        struct request *r = b->sasl->delayed;
        loop_timer_cancel(b->loop, r->timer_id);
        failed_answer(b->loop, r);
    }
}

bool sasl_raw_token(struct broker *b, struct request *r)
{
    struct conn *c = r->conn;
    struct sasl_session *ss = conn_session(c)->sasl;
    if (ss == NULL || ss->state != SASL_WANT_RAW || listener_of(b, c) == NULL)
        return false;
    char out[SCRAM_MESSAGE_MAX], msg[512];
    size_t out_len;
    bool done;
    if (evaluate(b, c, ss, r->frame, r->frame_len, out, sizeof(out), &out_len, &done, msg,
                 sizeof(msg)) != SCRAM_OK) {
        answer_late(b, r);
        return true;
    }
    uint8_t *buf = malloc(4 + out_len);
    if (buf == NULL) {
        r->conn = NULL;
        conn_set_data(c, NULL);
        request_free(r);
        conn_close(c, "out of memory for a SASL token");
        return true;
    }
    uint32_t n = (uint32_t)out_len;
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    memcpy(buf + 4, out, out_len);
    r->conn = NULL;
    conn_set_data(c, NULL);
    request_free(r);
    conn_send(c, buf, 4 + out_len, NULL, 0);
    return true;
}

/* ---- the two APIs ---- */

enum request_status handle_sasl_handshake(struct broker *b, struct request *r)
{
    struct sasl_handshake_request *req = r->body;
    struct sasl_handshake_response *resp = r->resp;
    sasl_handshake_response_set_defaults(resp);
    const struct sasl_listener *sl = listener_of(b, r->conn);
    struct sasl_session *ss = sl != NULL ? session_of(r->conn) : NULL;
    bool reauth = ss != NULL && ss->state == SASL_AUTHENTICATED && ss->reauth_capable &&
                  r->api_version >= 1;
    if (sl == NULL || ss == NULL || (ss->state != SASL_WANT_HANDSHAKE && !reauth)) {
        /* KafkaApis' answer: a handshake on a plaintext listener or after authentication. */
        resp->error_code = KERR_ILLEGAL_SASL_STATE;
        return REQUEST_DONE;
    }
    RESP_ARRAY(r, resp->mechanisms, sl->n_order);
    if (resp->mechanisms == NULL)
        return REQUEST_CLOSE;
    for (int i = 0; i < sl->n_order; i++)
        resp->mechanisms[i] = (struct kstr){(char *)sl->order[i], (int32_t)strlen(sl->order[i])};
    resp->n_mechanisms = sl->n_order;
    int m = 0;
    while (m < MECH_COUNT && !(sl->enabled[m] && req->mechanism.ptr != NULL &&
                               (size_t)req->mechanism.len == strlen(mech_names[m]) &&
                               memcmp(req->mechanism.ptr, mech_names[m],
                                      (size_t)req->mechanism.len) == 0))
        m++;
    if (reauth && m != (int)ss->mech)
        m = MECH_COUNT; /* re-authentication keeps the mechanism */
    if (m == MECH_COUNT) {
        char name[64];
        resp->error_code = KERR_UNSUPPORTED_SASL_MECHANISM;
        char why[160];
        snprintf(why, sizeof(why), "Unsupported SASL mechanism %s",
                 request_loggable(req->mechanism, name, sizeof(name)));
        conn_close_after_send(r->conn, why);
        return REQUEST_DONE;
    }
    ss->mech = (enum sasl_mech)m;
    if (m != MECH_PLAIN)
        scram_server_init(&ss->scram, m == MECH_SCRAM_SHA_256 ? SCRAM_SHA_256 : SCRAM_SHA_512);
    ss->state = r->api_version == 0 ? SASL_WANT_RAW : SASL_WANT_AUTHENTICATE;
    ss->reauthenticating = reauth;
    return REQUEST_DONE;
}

enum request_status handle_sasl_authenticate(struct broker *b, struct request *r)
{
    struct sasl_authenticate_request *req = r->body;
    struct sasl_authenticate_response *resp = r->resp;
    sasl_authenticate_response_set_defaults(resp);
    resp->auth_bytes = (struct kbytes){(uint8_t *)"", 0};
    struct sasl_session *ss = listener_of(b, r->conn) != NULL ? conn_session(r->conn)->sasl : NULL;
    if (ss == NULL || ss->state != SASL_WANT_AUTHENTICATE) {
        resp->error_code = KERR_ILLEGAL_SASL_STATE;
        resp->error_message = (struct kstr){
            "SaslAuthenticate request received after successful authentication", 65};
        return REQUEST_DONE;
    }
    char *out = request_alloc(r, SCRAM_MESSAGE_MAX);
    char *msg = request_alloc(r, 512);
    if (out == NULL || msg == NULL)
        return REQUEST_CLOSE;
    size_t out_len;
    bool done;
    if (evaluate(b, r->conn, ss, req->auth_bytes.ptr != NULL ? req->auth_bytes.ptr
                                                              : (const uint8_t *)"",
                 req->auth_bytes.len > 0 ? (size_t)req->auth_bytes.len : 0, out,
                 SCRAM_MESSAGE_MAX, &out_len, &done, msg, 512) != SCRAM_OK) {
        resp->error_code = KERR_SASL_AUTHENTICATION_FAILED;
        resp->error_message = (struct kstr){msg, (int32_t)strlen(msg)};
        conn_close_after_send(r->conn, "SASL authentication failed");
        return answer_late(b, r);
    }
    resp->auth_bytes = (struct kbytes){(uint8_t *)out, (int32_t)out_len};
    resp->session_lifetime_ms = 0;
    if (done) {
        /* KIP-368: a client of SaslAuthenticate v1+ learns its session's lifetime and must
         * re-authenticate within it; an older one keeps its session (as Kafka). */
        ss->reauth_capable = r->api_version >= 1;
        ss->reauthenticating = false;
        ss->expires_ms = 0;
        if (ss->reauth_capable && b->sasl->reauth_ms > 0) {
            resp->session_lifetime_ms = b->sasl->reauth_ms;
            ss->expires_ms = mono_ms() + b->sasl->reauth_ms;
        }
    }
    return REQUEST_DONE;
}

/* ---- KIP-554: DescribeUserScramCredentials (50), AlterUserScramCredentials (51) ---- */

static int credentials_save(struct broker *b)
{
    const struct sasl_server_config *sc = b->sasl;
    char path[1200], tmp[1210];
    credentials_path(b, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    for (int i = 0; i < sc->n_creds; i++) {
        char text[600];
        if (scram_credential_format(sc->creds[i].mech, &sc->creds[i].cred, text, sizeof(text)) != 0)
            continue;
        fprintf(f, "%s\t%s\t%s\n", scram_mechanism_name(sc->creds[i].mech), sc->creds[i].user,
                text);
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        LOG_ERROR(WHO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int credential_find(const struct sasl_server_config *sc, const char *user,
                           enum scram_mechanism m)
{
    for (int i = 0; i < sc->n_creds; i++)
        if (sc->creds[i].mech == m && strcmp(sc->creds[i].user, user) == 0)
            return i;
    return -1;
}

static bool kstr_is(struct kstr s, const char *c)
{
    return s.ptr != NULL && (size_t)s.len == strlen(c) && memcmp(s.ptr, c, (size_t)s.len) == 0;
}

static bool mech_of(int8_t code, enum scram_mechanism *m)
{
    if (code == 1)
        *m = SCRAM_SHA_256;
    else if (code == 2)
        *m = SCRAM_SHA_512;
    else
        return false;
    return true;
}

struct alter_entry {
    struct kstr name;
    int8_t mech;
    const struct alter_user_scram_credentials_request_scram_credential_upsertion *up; /* or NULL */
};

enum request_status handle_alter_user_scram_credentials(struct broker *b, struct request *r)
{
    struct alter_user_scram_credentials_request *req = r->body;
    struct alter_user_scram_credentials_response *resp = r->resp;
    alter_user_scram_credentials_response_set_defaults(resp);
    int nd = req->n_deletions > 0 ? req->n_deletions : 0;
    int nu = req->n_upsertions > 0 ? req->n_upsertions : 0;
    int n = nd + nu;
    struct alter_entry *e = request_alloc(r, sizeof(*e) * ((size_t)n + 1));
    RESP_ARRAY(r, resp->results, n);
    if (e == NULL || resp->results == NULL)
        return REQUEST_CLOSE;
    for (int i = 0; i < nd; i++)
        e[i] = (struct alter_entry){req->deletions[i].name, req->deletions[i].mechanism, NULL};
    for (int i = 0; i < nu; i++)
        e[nd + i] = (struct alter_entry){req->upsertions[i].name, req->upsertions[i].mechanism,
                                         &req->upsertions[i]};
    /* KafkaApis: ALTER on the cluster, else every user's result CLUSTER_AUTHORIZATION_FAILED. */
    bool allowed = authorize(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true);
    /* One result per user, in the order users first appear; a user's changes apply only when
     * all of them are acceptable (as Kafka's ZkAdminManager). */
    int nres = 0;
    bool changed = false;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = e[j].name.len == e[i].name.len &&
                   memcmp(e[j].name.ptr, e[i].name.ptr, (size_t)e[i].name.len) == 0;
        if (seen)
            continue;
        struct alter_user_scram_credentials_response_alter_user_scram_credentials_result *res =
            &resp->results[nres++];
        alter_user_scram_credentials_response_alter_user_scram_credentials_result_set_defaults(res);
        res->user = e[i].name;
        char user[SCRAM_NAME_MAX];
        const char *why = NULL;
        int16_t code = KERR_NONE;
        if (!allowed) {
            code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            why = "Cluster authorization failed.";
        } else if (e[i].name.len <= 0) {
            code = KERR_UNACCEPTABLE_CREDENTIAL;
            why = "Username must not be empty";
        } else if ((size_t)e[i].name.len >= sizeof(user) ||
                   memchr(e[i].name.ptr, '\t', (size_t)e[i].name.len) != NULL ||
                   memchr(e[i].name.ptr, '\n', (size_t)e[i].name.len) != NULL) {
            code = KERR_UNACCEPTABLE_CREDENTIAL;
            why = "Username is too long or holds a tab or newline";
        }
        if (code == KERR_NONE) {
            memcpy(user, e[i].name.ptr, (size_t)e[i].name.len);
            user[e[i].name.len] = '\0';
        }
        for (int j = i; j < n && code == KERR_NONE; j++) {
            if (!kstr_is(e[j].name, user))
                continue;
            for (int k = i; k < j && code == KERR_NONE; k++)
                if (kstr_is(e[k].name, user) && e[k].mech == e[j].mech) {
                    code = KERR_DUPLICATE_RESOURCE;
                    why = "A user credential cannot be altered twice in the same request";
                }
            enum scram_mechanism m;
            if (code != KERR_NONE)
                break;
            if (!mech_of(e[j].mech, &m)) {
                code = KERR_UNSUPPORTED_SASL_MECHANISM;
                why = "Unknown SCRAM mechanism";
            } else if (e[j].up == NULL && credential_find(b->sasl, user, m) < 0) {
                code = KERR_RESOURCE_NOT_FOUND;
                why = "Attempt to delete a user credential that does not exist";
            } else if (e[j].up != NULL && e[j].up->iterations < SCRAM_MIN_ITERATIONS) {
                code = KERR_UNACCEPTABLE_CREDENTIAL;
                why = "Too few iterations";
            } else if (e[j].up != NULL && e[j].up->iterations > SCRAM_MAX_ITERATIONS) {
                code = KERR_UNACCEPTABLE_CREDENTIAL;
                why = "Too many iterations";
            } else if (e[j].up != NULL &&
                       (e[j].up->salt.len <= 0 || e[j].up->salt.len > SCRAM_SALT_MAX ||
                        e[j].up->salted_password.len != (int32_t)scram_key_len(m))) {
                code = KERR_UNACCEPTABLE_CREDENTIAL;
                why = "Invalid salt or salted password";
            }
        }
        if (code == KERR_NONE && b->sasl->n_creds + nu > SASL_CREDENTIALS_MAX) {
            code = KERR_UNACCEPTABLE_CREDENTIAL;
            why = "Too many SCRAM credentials on this broker";
        }
        res->error_code = code;
        if (why != NULL) {
            res->error_message = (struct kstr){(char *)why, (int32_t)strlen(why)};
            continue;
        }
        for (int j = i; j < n; j++) {
            enum scram_mechanism m;
            if (!kstr_is(e[j].name, user) || !mech_of(e[j].mech, &m))
                continue;
            int at = credential_find(b->sasl, user, m);
            if (e[j].up == NULL) {
                GREGOR_ASSERT(at >= 0);
                b->sasl->creds[at] = b->sasl->creds[--b->sasl->n_creds];
            } else {
                if (at < 0) {
                    GREGOR_ASSERT(b->sasl->n_creds < SASL_CREDENTIALS_MAX);
                    at = b->sasl->n_creds++;
                }
                struct sasl_user_credential *uc = &b->sasl->creds[at];
                snprintf(uc->user, sizeof(uc->user), "%s", user);
                uc->mech = m;
                int rc = scram_credential_from_salted(m, e[j].up->salted_password.ptr,
                                                      (size_t)e[j].up->salted_password.len,
                                                      e[j].up->salt.ptr, (size_t)e[j].up->salt.len,
                                                      e[j].up->iterations, &uc->cred);
                GREGOR_ASSERT(rc == 0); /* lengths checked above */
            }
            changed = true;
        }
    }
    resp->n_results = nres;
    if (changed && credentials_save(b) != 0)
        for (int i = 0; i < nres; i++)
            if (resp->results[i].error_code == KERR_NONE) {
                resp->results[i].error_code = KERR_UNKNOWN_SERVER_ERROR;
                resp->results[i].error_message = (struct kstr){"cannot write the credentials", 28};
            }
    return REQUEST_DONE;
}

enum request_status handle_describe_user_scram_credentials(struct broker *b, struct request *r)
{
    struct describe_user_scram_credentials_request *req = r->body;
    struct describe_user_scram_credentials_response *resp = r->resp;
    describe_user_scram_credentials_response_set_defaults(resp);
    /* KafkaApis: DESCRIBE on the cluster, else a top-level CLUSTER_AUTHORIZATION_FAILED. */
    if (!authorize(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, true)) {
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp->error_message = (struct kstr){"Cluster authorization failed.", 29};
        return REQUEST_DONE;
    }
    const struct sasl_server_config *sc = b->sasl;
    /* The users asked for, or every user with a credential (null or empty). */
    int n = req->n_users > 0 ? req->n_users : sc->n_creds;
    const char **names = request_alloc(r, sizeof(*names) * ((size_t)n + 1));
    RESP_ARRAY(r, resp->results, n);
    if (names == NULL || resp->results == NULL)
        return REQUEST_CLOSE;
    int nn = 0;
    for (int i = 0; i < n; i++) {
        const char *name;
        if (req->n_users > 0) {
            struct kstr k = req->users[i].name;
            char *c = request_alloc(r, (size_t)(k.len > 0 ? k.len : 0) + 1);
            if (c == NULL)
                return REQUEST_CLOSE;
            if (k.len > 0)
                memcpy(c, k.ptr, (size_t)k.len);
            c[k.len > 0 ? k.len : 0] = '\0';
            name = c;
        } else {
            name = sc->creds[i].user;
            bool dup = false;
            for (int j = 0; j < nn && !dup; j++)
                dup = strcmp(names[j], name) == 0;
            if (dup)
                continue;
        }
        names[nn++] = name;
    }
    for (int i = 0; i < nn; i++) {
        struct describe_user_scram_credentials_response_describe_user_scram_credentials_result *res =
            &resp->results[i];
        describe_user_scram_credentials_response_describe_user_scram_credentials_result_set_defaults(res);
        res->user = (struct kstr){(char *)names[i], (int32_t)strlen(names[i])};
        int dups = 0;
        for (int j = 0; j < nn; j++)
            dups += strcmp(names[j], names[i]) == 0;
        const char *why = NULL;
        if (dups > 1) {
            res->error_code = KERR_DUPLICATE_RESOURCE;
            why = "Cannot describe SCRAM credentials for the same user twice in a single request";
        } else {
            RESP_ARRAY(r, res->credential_infos, 2);
            if (res->credential_infos == NULL)
                return REQUEST_CLOSE;
            for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512; m++) {
                int at = credential_find(sc, names[i], (enum scram_mechanism)m);
                if (at < 0)
                    continue;
                res->credential_infos[res->n_credential_infos++] =
                    (struct describe_user_scram_credentials_response_credential_info){
                        (int8_t)(m == SCRAM_SHA_256 ? 1 : 2), sc->creds[at].cred.iterations};
            }
            if (res->n_credential_infos == 0) {
                res->error_code = KERR_RESOURCE_NOT_FOUND;
                why = "Attempt to describe a user credential that does not exist";
            }
        }
        if (why != NULL)
            res->error_message = (struct kstr){(char *)why, (int32_t)strlen(why)};
    }
    resp->n_results = nn;
    return REQUEST_DONE;
}

/* ---- the client side: this broker logging in to the others ---- */

struct sasl_client_creds {
    char mechanism[32];
    char username[SCRAM_NAME_MAX];
    char password[512];
    bool scram;
    enum scram_mechanism scram_mech;
};

int sasl_client_setup(struct broker *b, char *err, size_t errlen)
{
    const struct broker_listener *l = &b->cfg.listeners[b->cfg.inter_broker_listener];
    if (strncmp(l->security_protocol, "SASL_", 5) != 0)
        return 0;
    const char *m = broker_security_prop(&b->cfg, NULL, "sasl.mechanism.inter.broker.protocol",
                                         NULL);
    if (m == NULL)
        m = "GSSAPI"; /* Kafka's default */
    int mech = -1;
    for (int i = 0; i < MECH_COUNT; i++)
        if (strcmp(mech_names[i], m) == 0)
            mech = i;
    if (mech < 0) {
        snprintf(err, errlen, "sasl.mechanism.inter.broker.protocol=%s: gregor speaks PLAIN, "
                 "SCRAM-SHA-256 and SCRAM-SHA-512 to other brokers%s (inter-broker listener "
                 "%s)", m, strcmp(m, "GSSAPI") == 0 ? ", not Kerberos (GSSAPI is Kafka's "
                 "default: set the key)" : "", l->name);
        return -1;
    }
    const struct sasl_listener *sl =
        b->sasl != NULL ? &b->sasl->listeners[b->cfg.inter_broker_listener] : NULL;
    if (sl == NULL || !sl->sasl || !sl->enabled[mech]) {
        snprintf(err, errlen, "requirement failed: sasl.mechanism.inter.broker.protocol must be "
                 "included in sasl.enabled.mechanisms when SASL is used for inter-broker "
                 "communication");
        return -1;
    }
    struct sasl_client_creds *cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(cc->mechanism, sizeof(cc->mechanism), "%s", m);
    if (jaas_option(sl->jaas[mech], "username", cc->username, sizeof(cc->username)) != 0 ||
        jaas_option(sl->jaas[mech], "password", cc->password, sizeof(cc->password)) != 0) {
        snprintf(err, errlen, "listener %s: the JAAS entry of %s needs username and password "
                 "for inter-broker connections", l->name, m);
        free(cc);
        return -1;
    }
    cc->scram = mech != MECH_PLAIN;
    if (cc->scram)
        scram_mechanism_from_name(m, &cc->scram_mech);
    b->sasl_client = cc;
    return 0;
}

void sasl_client_teardown(struct broker *b)
{
    if (b->sasl_client == NULL)
        return;
    OPENSSL_cleanse(b->sasl_client, sizeof(*b->sasl_client));
    free(b->sasl_client);
    b->sasl_client = NULL;
}

_Static_assert(sizeof(struct scram_client) <= CLIENT_SASL_STATE_BYTES,
               "a SCRAM exchange fits the client's per-connection SASL state");

/* PLAIN: one token, "\0user\0password" (no authorization id); SCRAM: RFC 5802. */
static int client_step(void *arg, void *state, const uint8_t *in, size_t in_len, uint8_t *out,
                       size_t cap, size_t *out_len, char *err, size_t errlen)
{
    const struct sasl_client_creds *cc = arg;
    if (!cc->scram) {
        if (in != NULL)
            return 0; /* the server's empty answer: done */
        size_t ul = strlen(cc->username), pl = strlen(cc->password);
        if (ul + pl + 2 > cap) {
            snprintf(err, errlen, "PLAIN credentials too long");
            return -1;
        }
        out[0] = 0;
        memcpy(out + 1, cc->username, ul);
        out[1 + ul] = 0;
        memcpy(out + 2 + ul, cc->password, pl);
        *out_len = ul + pl + 2;
        return 1;
    }
    struct scram_client *sc = state;
    if (in == NULL)
        scram_client_init(sc, cc->scram_mech);
    int rc = scram_client_step(sc, cc->username, cc->password, in, in_len, NULL, (char *)out,
                               cap, err, errlen);
    if (rc == 1)
        *out_len = strlen((char *)out);
    return rc;
}

void sasl_client_config(struct broker *b, struct client_config *cc)
{
    const struct broker_listener *l = &b->cfg.listeners[b->cfg.inter_broker_listener];
    cc->listener_name = l->name;
    if (b->tls_client != NULL)
        cc->transport = tls_server_transport(b->tls_client);
    if (b->sasl_client == NULL)
        return;
    cc->sasl_mechanism = b->sasl_client->mechanism;
    cc->sasl_step = client_step;
    cc->sasl_arg = b->sasl_client;
}
