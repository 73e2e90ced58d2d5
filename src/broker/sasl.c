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

#include <sys/stat.h>

#include <openssl/crypto.h>

#include "broker/handlers.h"
#include "broker/kutil.h"
#include "broker/oauth.h"
#include "broker/scram.h"
#include "cluster/cluster.h"
#include "cluster/znode.h"
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
#define SASL_OAUTH_TOKEN_MAX (OAUTH_TOKEN_MAX + 1024) /* OAUTHBEARER: a JWT and its framing */

enum sasl_mech { MECH_PLAIN, MECH_SCRAM_SHA_256, MECH_SCRAM_SHA_512, MECH_OAUTHBEARER,
                 MECH_COUNT };
static const char *const mech_names[MECH_COUNT] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                                   "OAUTHBEARER"};

/* OAUTHBEARER on one listener (OAuthBearerValidatorCallbackHandler): the JWKS file and the
 * token rules; the file is read again when it changed, at most every refresh_ms, and at once
 * when a token names a kid it does not hold (as Kafka's refreshing JWKS resolver does). */
struct sasl_oauth {
    char path[1024];            /* from sasl.oauthbearer.jwks.endpoint.url=file://... */
    struct oauth_jwks jwks;
    struct oauth_rules rules;
    int64_t refresh_ms;         /* sasl.oauthbearer.jwks.endpoint.refresh.ms */
    int64_t checked_ms;         /* mono ms of the last look at the file */
    struct timespec mtime;      /* of the file last read */
    off_t size;
    ino_t ino;
};

struct sasl_listener {
    bool sasl;                         /* a SASL_* listener */
    bool enabled[MECH_COUNT];
    const char *order[MECH_COUNT];     /* enabled, as sasl.enabled.mechanisms lists them */
    int n_order;
    const char *jaas[MECH_COUNT];      /* borrowed from b->cfg's security props */
    struct sasl_oauth *oauth;          /* OAUTHBEARER enabled */
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
    bool oauth_error_sent; /* OAUTHBEARER: the error challenge went out, \x01 must follow */
    int64_t token_exp_ms;  /* OAUTHBEARER: the token's exp (wall ms) */
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
        size_t n = strlen(line);
        bool whole = n > 0 && line[n - 1] == '\n';
        if (whole)
            line[n - 1] = '\0'; /* only the newline: a '\r' may be part of a user name */
        struct sasl_user_credential uc;
        int rc = whole || feof(f) ? scram_credentials_line_parse(line, &uc.mech, uc.user,
                                                                  sizeof(uc.user), &uc.cred)
                                  : -1;
        if (rc < 0 || (rc == 0 && sc->n_creds == SASL_CREDENTIALS_MAX)) {
            fclose(f);
            snprintf(err, errlen, "%s line %d: not \"<mechanism>\\t<user>\\t<credential>\" "
                     "(or longer than %zu bytes, or more than %d credentials)", path, lineno,
                     sizeof(line) - 2, SASL_CREDENTIALS_MAX);
            return -1;
        }
        if (rc == 0)
            sc->creds[sc->n_creds++] = uc;
        OPENSSL_cleanse(&uc, sizeof(uc));
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

/* ---- OAUTHBEARER: the JWKS file ---- */

/* Reads the JWKS file when it changed since the last read (or force): 0, or -1 with why in err
 * (the keys held stay). Bounded: the file is at most OAUTH_JWKS_MAX bytes. */
static int oauth_jwks_load(struct sasl_oauth *o, bool force, char *err, size_t errlen)
{
    struct stat st;
    o->checked_ms = mono_ms();
    if (stat(o->path, &st) != 0) {
        snprintf(err, errlen, "cannot read the JWKS file %s: %s", o->path, strerror(errno));
        return -1;
    }
    if (!force && st.st_ino == o->ino && st.st_size == o->size &&
        st.st_mtim.tv_sec == o->mtime.tv_sec && st.st_mtim.tv_nsec == o->mtime.tv_nsec)
        return 0;
    if (st.st_size > OAUTH_JWKS_MAX) {
        snprintf(err, errlen, "the JWKS file %s is larger than %d bytes", o->path,
                 OAUTH_JWKS_MAX);
        return -1;
    }
    char *text = malloc(OAUTH_JWKS_MAX + 1);
    FILE *f = text != NULL ? fopen(o->path, "r") : NULL;
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the JWKS file %s: %s", o->path,
                 text == NULL ? "out of memory" : strerror(errno));
        free(text);
        return -1;
    }
    size_t n = fread(text, 1, OAUTH_JWKS_MAX + 1, f);
    fclose(f);
    struct oauth_jwks fresh;
    char why[256];
    if (n > OAUTH_JWKS_MAX || oauth_jwks_parse(text, n, &fresh, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "the JWKS file %s: %s", o->path,
                 n > OAUTH_JWKS_MAX ? "too large" : why);
        free(text);
        return -1;
    }
    free(text);
    oauth_jwks_free(&o->jwks);
    o->jwks = fresh;
    o->ino = st.st_ino;
    o->size = st.st_size;
    o->mtime = st.st_mtim;
    LOG_INFO(WHO, "read %d key(s) from the JWKS file %s", fresh.n, o->path);
    return 0;
}

static void oauth_free(struct sasl_oauth *o)
{
    if (o == NULL)
        return;
    oauth_jwks_free(&o->jwks);
    free(o);
}

static int64_t oauth_ms_prop(struct broker *b, const char *listener, const char *key,
                             int64_t dflt, int64_t max, char *err, size_t errlen, bool *bad)
{
    const char *v = broker_security_prop(&b->cfg, listener, key, NULL);
    if (v == NULL)
        return dflt;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0 || n < 0 || n > max) {
        snprintf(err, errlen, "Invalid value %s for configuration %s", v, key);
        *bad = true;
    }
    return n;
}

/* OAUTHBEARER on listener l: the server callback handler must be Kafka's JWKS validator (the
 * unsecured default is refused), the JWKS a file: URL. */
static int oauth_setup(struct broker *b, struct sasl_listener *sl,
                       const struct broker_listener *l, char *err, size_t errlen)
{
    const char *handler = broker_security_prop(&b->cfg, l->name,
                                               "oauthbearer.sasl.server.callback.handler.class",
                                               NULL);
    static const char *const validators[] = {
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
    };
    if (handler == NULL || (strcmp(handler, validators[0]) != 0 &&
                            strcmp(handler, validators[1]) != 0)) {
        snprintf(err, errlen, "listener %s: OAUTHBEARER needs listener.name.<listener>."
                 "oauthbearer.sasl.server.callback.handler.class=%s (%s is not supported; "
                 "without the key Kafka uses the unsecured validator "
                 "OAuthBearerUnsecuredValidatorCallbackHandler, which gregor does not offer)",
                 l->name, validators[0], handler != NULL ? handler : "the default");
        return -1;
    }
    const char *url = broker_security_prop(&b->cfg, l->name, "sasl.oauthbearer.jwks.endpoint.url",
                                           NULL);
    if (url == NULL) {
        snprintf(err, errlen, "listener %s: OAUTHBEARER with %s needs "
                 "sasl.oauthbearer.jwks.endpoint.url", l->name, validators[0]);
        return -1;
    }
    if (strncmp(url, "file:", 5) != 0) {
        snprintf(err, errlen, "listener %s: sasl.oauthbearer.jwks.endpoint.url %s: only file: "
                 "URLs (file:///path/jwks.json) are supported, not an HTTP(S) endpoint", l->name,
                 url);
        return -1;
    }
    const char *path = url + 5;
    if (strncmp(path, "//", 2) == 0) {
        path += 2;
        if (strncmp(path, "localhost/", 10) == 0)
            path += 9;
    }
    if (path[0] != '/' || strlen(path) >= sizeof(((struct sasl_oauth *)0)->path)) {
        snprintf(err, errlen, "listener %s: sasl.oauthbearer.jwks.endpoint.url %s is not a "
                 "file:///absolute/path URL", l->name, url);
        return -1;
    }
    struct sasl_oauth *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sl->oauth = o;
    snprintf(o->path, sizeof(o->path), "%s", path);
    bool bad = false;
    o->refresh_ms = oauth_ms_prop(b, l->name, "sasl.oauthbearer.jwks.endpoint.refresh.ms",
                                  3600000, INT32_MAX, err, errlen, &bad);
    o->rules.skew_s = oauth_ms_prop(b, l->name, "sasl.oauthbearer.clock.skew.seconds", 30,
                                    INT32_MAX, err, errlen, &bad);
    if (bad)
        return -1;
    o->rules.audience = broker_security_prop(&b->cfg, l->name,
                                             "sasl.oauthbearer.expected.audience", NULL);
    o->rules.issuer = broker_security_prop(&b->cfg, l->name, "sasl.oauthbearer.expected.issuer",
                                           NULL);
    o->rules.sub_claim = broker_security_prop(&b->cfg, l->name,
                                              "sasl.oauthbearer.sub.claim.name", NULL);
    if (o->rules.sub_claim == NULL)
        o->rules.sub_claim = "sub";
    o->rules.scope_claim = broker_security_prop(&b->cfg, l->name,
                                                "sasl.oauthbearer.scope.claim.name", NULL);
    if (o->rules.scope_claim == NULL)
        o->rules.scope_claim = "scope";
    return oauth_jwks_load(o, true, err, errlen);
}

/* OAUTHBEARER (OAuthBearerSaslServer): the client's first message holds the token; a token
 * that fails validation gets the error challenge, the client's \x01 then ends the exchange
 * with SASL_AUTHENTICATION_FAILED and the challenge as the message. */
static enum scram_result oauth_step(struct sasl_oauth *o, struct sasl_session *ss,
                                    const uint8_t *tok, size_t len, char *user, size_t user_len,
                                    char *out, size_t out_cap, size_t *out_len, bool *done,
                                    char *err, size_t err_len)
{
    GREGOR_ASSERT(o != NULL); /* made by oauth_setup for a listener enabling OAUTHBEARER */
    if (ss->oauth_error_sent && len == 1 && tok[0] == 0x01) {
        snprintf(err, err_len, "%s", OAUTH_INVALID_TOKEN);
        return SCRAM_ERR_MESSAGE;
    }
    ss->oauth_error_sent = false;
    char authzid[SCRAM_NAME_MAX];
    const char *jwt;
    size_t jwt_len;
    if (oauth_client_first_parse(tok, len, authzid, sizeof(authzid), &jwt, &jwt_len, err,
                                 err_len) != 0)
        return SCRAM_ERR_GENERIC;
    char why[512];
    int64_t exp_ms = 0;
    if (mono_ms() - o->checked_ms >= o->refresh_ms && oauth_jwks_load(o, false, why,
                                                                       sizeof(why)) != 0)
        LOG_LIMITED(LOG_LEVEL_WARN, WHO, "%s", why);
    enum oauth_result vr = oauth_jwt_validate(jwt, jwt_len, &o->jwks, &o->rules, now_ms(), user,
                                              user_len, &exp_ms, why, sizeof(why));
    if (vr == OAUTH_UNKNOWN_KID) {
        char why2[512];
        if (oauth_jwks_load(o, false, why2, sizeof(why2)) != 0)
            LOG_LIMITED(LOG_LEVEL_WARN, WHO, "%s", why2);
        else
            vr = oauth_jwt_validate(jwt, jwt_len, &o->jwks, &o->rules, now_ms(), user,
                                    user_len, &exp_ms, why, sizeof(why));
    }
    if (vr != OAUTH_VALID) {
        LOG_LIMITED(LOG_LEVEL_INFO, WHO, "OAUTHBEARER token refused: %s", why);
        size_t n = strlen(OAUTH_INVALID_TOKEN);
        GREGOR_ASSERT(n < out_cap);
        memcpy(out, OAUTH_INVALID_TOKEN, n + 1);
        *out_len = n;
        ss->oauth_error_sent = true;
        return SCRAM_OK;
    }
    if (authzid[0] != '\0' && strcmp(authzid, user) != 0) {
        snprintf(err, err_len, "Authentication failed: Client requested an authorization id "
                 "(%s) that is different from the token's principal name (%s)", authzid, user);
        return SCRAM_ERR_MESSAGE;
    }
    ss->token_exp_ms = exp_ms;
    *done = true;
    return SCRAM_OK;
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
                     "not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER are)",
                     l->name, tok);
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
                             : m == MECH_OAUTHBEARER
                                 ? "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
                                 : "org.apache.kafka.common.security.scram.ScramLoginModule";
        while (isspace((unsigned char)*jaas))
            jaas++;
        if (strncmp(jaas, module, strlen(module)) != 0)
            LOG_WARN(WHO, "listener %s: the JAAS entry of %s does not name %s", l->name,
                     mech_names[m], module);
        sl->jaas[m] = jaas;
        if (m == MECH_OAUTHBEARER && oauth_setup(b, sl, l, err, errlen) != 0)
            return -1;
    }
    if (sl->n_order == 0) {
        snprintf(err, errlen, "listener %s: sasl.enabled.mechanisms is empty", l->name);
        return -1;
    }
    return 0;
}

static void credentials_from_zk(void *arg, const char *entity_type, const char *entity_name,
                                const char *json, size_t len);

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
    if (b->cfg.zookeeper_connect[0] != '\0')
        return 0; /* /config/users on ZooKeeper: sasl_cluster_attach */
    return credentials_load(b, err, errlen);
}

void sasl_cluster_attach(struct broker *b)
{
    if (b->sasl != NULL && b->cluster != NULL) /* loaded at cluster_await_security */
        cluster_entity_config_subscribe(b->cluster, credentials_from_zk, b);
}

void sasl_teardown(struct broker *b)
{
    if (b->sasl == NULL)
        return;
    for (int i = 0; i < BROKER_MAX_LISTENERS; i++)
        oauth_free(b->sasl->listeners[i].oauth);
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
    if (len > (ss->mech == MECH_OAUTHBEARER ? SASL_OAUTH_TOKEN_MAX : SASL_TOKEN_MAX)) {
        rc = SCRAM_ERR_GENERIC;
        snprintf(err, sizeof(err), "a token of %zu bytes", len);
    } else if (ss->mech == MECH_OAUTHBEARER) {
        rc = oauth_step(sl->oauth, ss, tok, len, user, sizeof(user), out, out_cap, out_len, done,
                        err, sizeof(err));
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
    ss->oauth_error_sent = false;
    if (m != MECH_PLAIN && m != MECH_OAUTHBEARER)
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
        /* KIP-368: the session ends with the credential (an OAUTHBEARER token's exp) or after
         * connections.max.reauth.ms, whichever is first. */
        int64_t life = b->sasl->reauth_ms;
        if (ss->mech == MECH_OAUTHBEARER) {
            int64_t left = ss->token_exp_ms - now_ms();
            left = left > 0 ? left : 0;
            life = life > 0 && life < left ? life : left;
        }
        if (ss->reauth_capable && life > 0) {
            resp->session_lifetime_ms = life;
            ss->expires_ms = mono_ms() + life;
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
        char text[1024];
        if (scram_credentials_line_format(sc->creds[i].mech, sc->creds[i].user,
                                          &sc->creds[i].cred, text, sizeof(text) - 1) != 0)
            continue;
        fprintf(f, "%s\n", text);
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

/* ---- a cluster: the credentials are users' configs on ZooKeeper (/config/users/<sanitized>,
 * "SCRAM-SHA-256" / "SCRAM-SHA-512" keys), as Kafka 3.9's ZkAdminManager keeps them ---- */

struct zk_user_config {
    struct broker *b;
    const char *user;
    int n;
    struct sasl_user_credential found[2];
};

static void zk_user_entry(void *arg, const char *key, const char *value)
{
    struct zk_user_config *u = arg;
    enum scram_mechanism m;
    if (scram_mechanism_from_name(key, &m) != 0 || u->n == 2)
        return;
    struct sasl_user_credential *uc = &u->found[u->n];
    if (scram_credential_parse(m, value, &uc->cred) != 0) {
        LOG_WARN(WHO, "Ignoring the malformed %s credential of user %s", key, u->user);
        return;
    }
    uc->mech = m;
    snprintf(uc->user, sizeof(uc->user), "%s", u->user);
    u->n++;
}

static void credentials_from_zk(void *arg, const char *entity_type, const char *entity_name,
                                const char *json, size_t len)
{
    struct broker *b = arg;
    struct sasl_server_config *sc = b->sasl;
    char user[SCRAM_NAME_MAX];
    if (sc == NULL || strcmp(entity_type, "users") != 0 || strchr(entity_name, '/') != NULL ||
        znode_desanitize(entity_name, user, sizeof(user)) != 0)
        return;
    struct zk_user_config u = {.b = b, .user = user};
    if (json != NULL && znode_config_parse(json, len, zk_user_entry, &u) < 0)
        return; /* logged by the cluster */
    int before = 0;
    for (int i = sc->n_creds - 1; i >= 0; i--)
        if (strcmp(sc->creds[i].user, user) == 0) {
            sc->creds[i] = sc->creds[--sc->n_creds];
            before++;
        }
    for (int k = 0; k < u.n; k++) {
        if (sc->n_creds == SASL_CREDENTIALS_MAX) {
            LOG_WARN(WHO, "More than %d SCRAM credentials: user %s's not kept",
                     SASL_CREDENTIALS_MAX, user);
            break;
        }
        sc->creds[sc->n_creds++] = u.found[k];
    }
    LOG_INFO(WHO, "SCRAM credentials of user %s from ZooKeeper: %d (%d before)", user, u.n,
             before);
}

/* One user's change: each mechanism's new credential text, or NULL to remove it. */
struct zk_user_change {
    struct request *r;
    struct zk_user_req *q;
    int32_t result;                     /* its response entry */
    const char *text[2];                /* by enum scram_mechanism */
    bool touch[2];
};

struct zk_user_req {
    int left;
    bool started;
};

/* The user's config map with its SCRAM keys changed, every other key (quotas) kept; no key
 * left: NULL, the node goes as Kafka 3.9 leaves it (cluster.c keeps it, empty, when it has
 * children: users/<u>/clients). */
static int zk_user_modify(void *arg, const char *cur, size_t len, char **out, size_t *out_len)
{
    struct zk_user_change *ch = arg;
    const char *keys[2], *values[2];
    int n = 0;
    for (int m = 0; m < 2; m++) {
        if (!ch->touch[m])
            continue;
        keys[n] = scram_mechanism_name((enum scram_mechanism)m);
        values[n++] = ch->text[m];
    }
    return znode_config_edit(cur, len, keys, values, n, true, out, out_len);
}

static void zk_user_written(void *arg, int kerr, const char *msg)
{
    struct zk_user_change *ch = arg;
    struct request *r = ch->r;
    struct zk_user_req *q = ch->q;
    if (kerr != KERR_NONE) {
        struct alter_user_scram_credentials_response *resp = r->resp;
        resp->results[ch->result].error_code = (int16_t)kerr;
        const char *m = request_strdup(r, msg ? msg : "");
        resp->results[ch->result].error_message = (struct kstr){(char *)m,
                                                                m ? (int32_t)strlen(m) : 0};
    }
    GREGOR_ASSERT(q->left > 0);
    if (--q->left == 0 && q->started)
        request_finish(r);
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
    struct zk_user_req *zq = NULL;
    if (b->cluster != NULL) {
        zq = request_alloc(r, sizeof(*zq));
        if (zq == NULL)
            return REQUEST_CLOSE;
        *zq = (struct zk_user_req){0};
    }
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
        if (b->cluster != NULL) { /* written to ZooKeeper; the cache follows */
            struct zk_user_change *ch = request_alloc(r, sizeof(*ch));
            char *sanitized = request_alloc(r, SCRAM_NAME_MAX * 3 + 1);
            if (ch == NULL || sanitized == NULL || zq == NULL)
                return REQUEST_CLOSE;
            *ch = (struct zk_user_change){.r = r, .q = zq, .result = nres - 1};
            for (int j = i; j < n; j++) {
                enum scram_mechanism m;
                if (!kstr_is(e[j].name, user) || !mech_of(e[j].mech, &m))
                    continue;
                ch->touch[m] = true;
                if (e[j].up == NULL)
                    continue;
                struct scram_credential cred;
                char *text = request_alloc(r, 600);
                if (text == NULL)
                    return REQUEST_CLOSE;
                int rc = scram_credential_from_salted(m, e[j].up->salted_password.ptr,
                                                      (size_t)e[j].up->salted_password.len,
                                                      e[j].up->salt.ptr, (size_t)e[j].up->salt.len,
                                                      e[j].up->iterations, &cred);
                GREGOR_ASSERT(rc == 0); /* lengths checked above */
                rc = scram_credential_format(m, &cred, text, 600);
                GREGOR_ASSERT(rc == 0);
                ch->text[m] = text;
            }
            char msg[256];
            int rc = znode_sanitize(user, sanitized, SCRAM_NAME_MAX * 3 + 1);
            GREGOR_ASSERT(rc == 0);
            zq->left++;
            int kerr = cluster_entity_update(b->cluster, "users", sanitized, zk_user_modify, ch,
                                             zk_user_written, ch, msg, sizeof(msg));
            if (kerr != KERR_NONE) {
                zq->left--;
                res->error_code = (int16_t)kerr;
                const char *m = request_strdup(r, msg);
                res->error_message = (struct kstr){(char *)m, m ? (int32_t)strlen(m) : 0};
            }
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
    if (zq != NULL) {
        zq->started = true;
        return zq->left > 0 ? REQUEST_PENDING : REQUEST_DONE;
    }
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

/* ---- the console's login (console_api.c) ---- */

int64_t sasl_failed_delay_ms(struct broker *b)
{
    return b->sasl != NULL ? b->sasl->failed_delay_ms : 0;
}

bool sasl_login_configured(struct broker *b)
{
    if (b->sasl == NULL)
        return false;
    if (b->sasl->n_creds > 0)
        return true;
    for (int i = 0; i < BROKER_MAX_LISTENERS; i++)
        if (b->sasl->listeners[i].sasl)
            return true;
    return false;
}

int sasl_password_check(struct broker *b, const char *user, const char *password)
{
    struct sasl_server_config *sc = b->sasl;
    size_t ul = strlen(user), pl = strlen(password);
    if (sc == NULL || ul == 0 || pl == 0 || ul >= SCRAM_NAME_MAX)
        return -1;
    bool ok = false;
    /* PLAIN: the JAAS entry's user_<name> of any listener that enables PLAIN (as plain_step). */
    for (int i = 0; i < BROKER_MAX_LISTENERS && !ok; i++) {
        const struct sasl_listener *sl = &sc->listeners[i];
        if (!sl->sasl || !sl->enabled[MECH_PLAIN] || sl->jaas[MECH_PLAIN] == NULL)
            continue;
        char key[SCRAM_NAME_MAX + 8], expected[512];
        snprintf(key, sizeof(key), "user_%s", user);
        if (jaas_option(sl->jaas[MECH_PLAIN], key, expected, sizeof(expected)) == 0 &&
            strlen(expected) == pl && CRYPTO_memcmp(expected, password, pl) == 0)
            ok = true;
        OPENSSL_cleanse(expected, sizeof(expected));
    }
    /* SCRAM: the salted password from the stored salt and iterations gives StoredKey, compared
     * as a SCRAM server compares the proof's (constant time). */
    for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512 && !ok; m++) {
        struct scram_credential stored, mine;
        if (credential_lookup(sc, (enum scram_mechanism)m, user, &stored) != 0)
            continue;
        if (scram_credential_make((enum scram_mechanism)m, password, pl, stored.salt,
                                  stored.salt_len, stored.iterations, &mine) == 0 &&
            CRYPTO_memcmp(mine.stored_key, stored.stored_key,
                          scram_key_len((enum scram_mechanism)m)) == 0)
            ok = true;
        OPENSSL_cleanse(&stored, sizeof(stored));
        OPENSSL_cleanse(&mine, sizeof(mine));
    }
    return ok ? 0 : -1;
}
