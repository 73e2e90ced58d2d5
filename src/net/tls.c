/* tls: the TLS transport over OpenSSL 3. A listener's SSL_CTX is built once from Kafka's ssl.*
 * keys (PEM files or inline PEM, PKCS#12, trust stores, client auth, protocols, ciphers); each
 * connection is an SSL in server mode on a non-blocking socket, WANT_READ/WANT_WRITE reported
 * to conn.c through `wants`. File ranges: SSL_sendfile where the kernel does TLS (kTLS), else
 * no sendfile (records are encrypted here, so conn.c copies). Contexts reload at runtime. */
#include "net/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/logging.h"
#include "common/util.h"
#include "net/loop.h"

#define WHO "SslTransportLayer"
#define TLS_RULES_MAX 32
#define TLS_PEM_MAX (1 << 20) /* bytes of one inline PEM value or key/trust store file */

struct tls_rule {
    bool is_default;
    regex_t re;
    char *replacement;
    char fold; /* 'L', 'U' or 0 */
};
struct tls_principal_rules {
    int n;
    struct tls_rule rule[TLS_RULES_MAX];
};

#define TLS_SIG_MAX 4096 /* the reconfigurable keys' values and their files' identities */
#define TLS_KTLS_CHUNK (16 * 1024) /* a kTLS listener's file range copied when a connection has
                                      no kernel record layer (one TLS record) */

struct tls_server {
    struct transport_ops ops; /* first: a connection finds its server from t->ops */
    SSL_CTX *ctx; /* new connections take it; each SSL holds its own reference */
    struct tls_principal_rules *rules;
    char listener[64];
    char sig[TLS_SIG_MAX]; /* what ctx was built from (tls_server_reload compares) */
    bool have_trust;       /* ctx has a trust store (a reload may not add one, as Kafka's) */
    bool ktls;             /* the kernel offers the tls ULP: SSL_OP_ENABLE_KTLS, SSL_sendfile */
    bool client;           /* connections are the client end (tls_client_create) */
    bool verify_host;      /* client: ssl.endpoint.identification.algorithm=https */
};

/* One connection's state (t->state). */
struct tls_conn {
    SSL *ssl;
    const struct tls_server *server;
    unsigned read_wants;  /* LOOP_WRITE: a read (the handshake) must first send */
    unsigned write_wants; /* LOOP_READ: a write must first receive */
    bool established;     /* the handshake is done */
    bool fatal;           /* an error ended it: no close_notify may follow */
};

/* ---- the transport ---- */

static struct tls_server *server_of(const struct transport *t)
{
    return (struct tls_server *)((char *)t->ops - offsetof(struct tls_server, ops));
}

/* The OpenSSL error queue as one line ("certificate verify failed, ..."), emptied. */
static void error_text(char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        if (used < len)
            used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "; " : "", one);
    }
    if (out[0] == '\0')
        snprintf(out, len, "no further detail");
}

static void peer_text(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, len, "%s:%d", host, port);
}

/* OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a peer gone away raises SIGPIPE, which
 * the broker ignores (broker_open), as any process using this transport must. */
static int tls_open(struct transport *t)
{
    const struct tls_server *s = server_of(t);
    struct tls_conn *tc = calloc(1, sizeof(*tc));
    SSL *ssl = tc != NULL ? SSL_new(s->ctx) : NULL;
    if (ssl == NULL || SSL_set_fd(ssl, t->fd) != 1) {
        SSL_free(ssl);
        free(tc);
        ERR_clear_error();
        errno = ENOMEM;
        return -1;
    }
    if (s->client)
        SSL_set_connect_state(ssl);
    else
        SSL_set_accept_state(ssl);
    tc->ssl = ssl;
    tc->server = s;
    t->state = tc;
    return 0;
}

/* An SSL call failed with e: -1 with errno as a socket call would set it. */
static ssize_t tls_failed(struct transport *t, struct tls_conn *tc, int e, const char *what)
{
    tc->fatal = true;
    int saved = errno;
    if (e == SSL_ERROR_SYSCALL) {
        ERR_clear_error();
        errno = saved != 0 ? saved : ECONNRESET;
        return -1;
    }
    char why[512], peer[64];
    error_text(why, sizeof(why));
    long verify = SSL_get_verify_result(tc->ssl);
    if (verify != X509_V_OK) { /* which check refused the client's certificate */
        size_t wl = strlen(why);
        snprintf(why + wl, sizeof(why) - wl, " (%s certificate: %s)",
                 tc->server->client ? "server" : "client", X509_verify_cert_error_string(verify));
    }
    peer_text(t->fd, peer, sizeof(peer));
    if (tc->established)
        LOG_LIMITED(LOG_LEVEL_WARN, WHO, "%s on listener %s with %s failed: %s", what,
                    tc->server->listener, peer, why);
    else /* Kafka's Selector words it so */
        LOG_LIMITED(LOG_LEVEL_WARN, WHO, "Failed authentication with %s on listener %s (SSL "
                    "handshake failed): %s", peer, tc->server->listener, why);
    errno = EPROTO;
    return -1;
}

static void handshake_done(struct transport *t, struct tls_conn *tc)
{
    if (tc->established || !SSL_is_init_finished(tc->ssl))
        return;
    tc->established = true;
    if (logging_level() <= LOG_LEVEL_DEBUG) {
        char principal[300], peer[64];
        peer_text(t->fd, peer, sizeof(peer));
        if (t->ops->principal(t, principal, sizeof(principal)) != 0)
            snprintf(principal, sizeof(principal), "(none)");
        LOG_DEBUG(WHO, "SSL handshake with %s on listener %s done: %s, %s, principal %s", peer,
                  tc->server->listener, SSL_get_version(tc->ssl), SSL_get_cipher_name(tc->ssl),
                  principal);
    }
}

/* Reads until len is full or the socket has no more: a shorter answer means nothing waits
 * inside OpenSSL either, so conn.c's "short read = drained" holds. */
static ssize_t tls_read(struct transport *t, void *buf, size_t len)
{
    struct tls_conn *tc = t->state;
    size_t done = 0;
    tc->read_wants = 0;
    while (done < len) {
        size_t got = 0;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_read_ex(tc->ssl, (char *)buf + done, len - done, &got);
        if (rc == 1) {
            handshake_done(t, tc);
            done += got;
            continue;
        }
        int e = SSL_get_error(tc->ssl, rc);
        handshake_done(t, tc);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            tc->read_wants = LOOP_WRITE;
            break;
        }
        if (done > 0)
            break; /* the error comes again on the next call, after these bytes */
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0; /* close_notify */
        return tls_failed(t, tc, e, "SSL read");
    }
    if (done > 0)
        return (ssize_t)done;
    errno = EAGAIN;
    return -1;
}

/* conn.c writes one piece at a time and retries after EAGAIN with the same bytes and length, as
 * SSL_write requires. */
static ssize_t tls_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
    struct tls_conn *tc = t->state;
    tc->write_wants = 0;
    if (iovcnt < 1 || iov[0].iov_len == 0)
        return 0;
    size_t wrote = 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write_ex(tc->ssl, iov[0].iov_base, iov[0].iov_len, &wrote);
    if (rc == 1)
        return (ssize_t)wrote;
    int e = SSL_get_error(tc->ssl, rc);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        if (e == SSL_ERROR_WANT_READ)
            tc->write_wants = LOOP_READ;
        errno = EAGAIN;
        return -1;
    }
    return tls_failed(t, tc, e, "SSL write");
}

/* A kTLS listener's file ranges. When the kernel took this connection's send record layer,
 * SSL_sendfile: zero copy, as plaintext's sendfile. Otherwise (a cipher the kernel cannot do,
 * the handshake not yet done) one record's worth read and given to SSL_write; retried after
 * EAGAIN with the same offset and length, it is the same bytes, as SSL_write requires. */
static ssize_t tls_sendfile(struct transport *t, int file_fd, off_t *offset, size_t len)
{
    struct tls_conn *tc = t->state;
    tc->write_wants = 0;
    if (len == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    int e;
    if (BIO_get_ktls_send(SSL_get_wbio(tc->ssl))) {
        ossl_ssize_t w = SSL_sendfile(tc->ssl, file_fd, *offset, len, 0);
        if (w >= 0) {
            *offset += (off_t)w;
            return (ssize_t)w;
        }
        e = SSL_get_error(tc->ssl, (int)w);
    } else {
        char buf[TLS_KTLS_CHUNK];
        size_t chunk = len < sizeof(buf) ? len : sizeof(buf), wrote = 0;
        ssize_t r;
        do
            r = pread(file_fd, buf, chunk, *offset);
        while (r < 0 && errno == EINTR);
        if (r <= 0)
            return r;
        if (SSL_write_ex(tc->ssl, buf, (size_t)r, &wrote) == 1) {
            *offset += (off_t)wrote;
            return (ssize_t)wrote;
        }
        e = SSL_get_error(tc->ssl, 0);
    }
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        if (e == SSL_ERROR_WANT_READ)
            tc->write_wants = LOOP_READ;
        ERR_clear_error();
        errno = EAGAIN;
        return -1;
    }
    return tls_failed(t, tc, e, "SSL sendfile");
}

static unsigned tls_wants(const struct transport *t)
{
    const struct tls_conn *tc = t->state;
    return tc->read_wants | tc->write_wants;
}

static bool tls_pending(const struct transport *t)
{
    const struct tls_conn *tc = t->state;
    return !tc->fatal && SSL_pending(tc->ssl) > 0;
}

static bool tls_handshaking(const struct transport *t)
{
    const struct tls_conn *tc = t->state;
    return !tc->established;
}

static int tls_shutdown(struct transport *t)
{
    struct tls_conn *tc = t->state;
    if (!tc->fatal && tc->established) {
        ERR_clear_error();
        SSL_shutdown(tc->ssl); /* close_notify, once; the peer's answer is not awaited */
        ERR_clear_error();
    }
    return shutdown(t->fd, SHUT_WR);
}

static void tls_close(struct transport *t)
{
    struct tls_conn *tc = t->state;
    if (tc != NULL) {
        if (!tc->fatal && tc->established) {
            ERR_clear_error();
            SSL_shutdown(tc->ssl); /* best effort: the socket is non-blocking */
        }
        ERR_clear_error();
        SSL_free(tc->ssl);
        free(tc);
        t->state = NULL;
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* A client connection checks the server's certificate names host (ssl.endpoint.
 * identification.algorithm=https: an IP address against the IP SANs, a name against the DNS
 * SANs, as Java's HTTPS check) and sends it as SNI when it is a name. */
static int tls_set_peer(struct transport *t, const char *host)
{
    struct tls_conn *tc = t->state;
    if (!tc->server->client || host == NULL)
        return 0;
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = 1;
    ERR_clear_error();
    if (!is_ip)
        ok = SSL_set_tlsext_host_name(tc->ssl, host);
    if (ok == 1 && tc->server->verify_host)
        ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tc->ssl), host)
                   : SSL_set1_host(tc->ssl, host);
    ERR_clear_error();
    if (ok != 1) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* RFC 2253 as Java's X500Principal.getName() writes it: most specific RDN first, "," between,
 * non-ASCII kept as UTF-8. */
static int subject_text(X509 *cert, char *out, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return -1;
    unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
    int rc = -1;
    if (X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, flags) >= 0) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        if (n >= 0 && (size_t)n < len) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
            rc = 0;
        }
    }
    BIO_free(b);
    return rc;
}

static int tls_principal(const struct transport *t, char *out, size_t len)
{
    const struct tls_conn *tc = t->state;
    if (!tc->established)
        return -1;
    X509 *peer = SSL_get0_peer_certificate(tc->ssl);
    if (peer == NULL)
        return snprintf(out, len, "User:ANONYMOUS") < (int)len ? 0 : -1;
    char dn[1024], name[1024];
    if (subject_text(peer, dn, sizeof(dn)) != 0 ||
        tls_principal_map(tc->server->rules, dn, name, sizeof(name)) != 0)
        return -1;
    return snprintf(out, len, "User:%s", name) < (int)len ? 0 : -1;
}

/* ---- principal mapping rules (Kafka's SslPrincipalMapper) ---- */

void tls_principal_rules_free(struct tls_principal_rules *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->n; i++)
        if (!r->rule[i].is_default) {
            regfree(&r->rule[i].re);
            free(r->rule[i].replacement);
        }
    free(r);
}

/* Up to an unescaped '/', with "\/" standing for '/'; *p is left on the '/'. */
static char *rule_part(const char **p, bool unescape_slash)
{
    const char *s = *p;
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    while (*s != '\0' && *s != '/') {
        if (s[0] == '\\' && s[1] != '\0') {
            if (s[1] == '/' && unescape_slash) {
                out[n++] = '/';
                s += 2;
                continue;
            }
            out[n++] = *s++;
        }
        out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return out;
}

struct tls_principal_rules *tls_principal_rules_parse(const char *rules, char *err, size_t errlen)
{
    struct tls_principal_rules *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *p = rules != NULL ? rules : "";
    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        if (r->n == TLS_RULES_MAX) {
            snprintf(err, errlen, "more than %d rules", TLS_RULES_MAX);
            goto bad;
        }
        struct tls_rule *ru = &r->rule[r->n];
        if (strncmp(p, "DEFAULT", 7) == 0) {
            ru->is_default = true;
            r->n++;
            p += 7;
            continue;
        }
        if (strncmp(p, "RULE:", 5) != 0) {
            snprintf(err, errlen, "Invalid rule: %s", p);
            goto bad;
        }
        p += 5;
        char *pattern = rule_part(&p, true);
        if (pattern == NULL || *p != '/') {
            free(pattern);
            snprintf(err, errlen, "Invalid rule: no replacement after the pattern");
            goto bad;
        }
        p++;
        char *replacement = rule_part(&p, true);
        if (replacement == NULL || *p != '/') {
            free(pattern);
            free(replacement);
            snprintf(err, errlen, "Invalid rule: no '/' after the replacement");
            goto bad;
        }
        p++;
        char fold = 0;
        if (*p == 'L' || *p == 'U')
            fold = *p++;
        /* Java matches the whole name (Matcher.matches()): anchor the pattern. */
        size_t pl = strlen(pattern);
        char *anchored = malloc(pl + 5);
        int rc = -1;
        if (anchored != NULL) {
            snprintf(anchored, pl + 5, "^(%s)$", pattern);
            rc = regcomp(&ru->re, anchored, REG_EXTENDED);
        }
        free(anchored);
        free(pattern);
        if (rc != 0) {
            free(replacement);
            snprintf(err, errlen, "Invalid rule: the pattern does not compile");
            goto bad;
        }
        ru->replacement = replacement;
        ru->fold = fold;
        r->n++;
        while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
            p++;
    }
    if (r->n == 0) {
        r->rule[0].is_default = true;
        r->n = 1;
    }
    return r;
bad:
    tls_principal_rules_free(r);
    return NULL;
}

/* $1..$9 of the pattern's groups (the anchored pattern's own group is 1: the user's $k is
 * group k + 1). */
static int rule_apply(const struct tls_rule *ru, const char *dn, char *out, size_t len)
{
    regmatch_t m[11];
    if (regexec(&ru->re, dn, 11, m, 0) != 0)
        return -1;
    size_t n = 0;
    for (const char *s = ru->replacement; *s != '\0'; s++) {
        if (s[0] == '$' && s[1] >= '0' && s[1] <= '9') {
            int g = s[1] - '0' + 1;
            s++;
            if (m[g].rm_so < 0)
                continue;
            size_t gl = (size_t)(m[g].rm_eo - m[g].rm_so);
            if (n + gl >= len)
                return -1;
            memcpy(out + n, dn + m[g].rm_so, gl);
            n += gl;
            continue;
        }
        if (s[0] == '\\' && s[1] != '\0')
            s++;
        if (n + 1 >= len)
            return -1;
        out[n++] = *s;
    }
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        out[i] = ru->fold == 'L' ? (char)tolower((unsigned char)out[i])
                 : ru->fold == 'U' ? (char)toupper((unsigned char)out[i]) : out[i];
    return 0;
}

int tls_principal_map(const struct tls_principal_rules *r, const char *dn, char *out, size_t len)
{
    if (r == NULL)
        return snprintf(out, len, "%s", dn) < (int)len ? 0 : -1;
    for (int i = 0; i < r->n; i++) {
        const struct tls_rule *ru = &r->rule[i];
        if (ru->is_default)
            return snprintf(out, len, "%s", dn) < (int)len ? 0 : -1;
        if (rule_apply(ru, dn, out, len) == 0)
            return 0;
    }
    return -1; /* Kafka: "No rules apply to <dn>, rules <rules>" fails the authentication */
}

/* ---- building the SSL_CTX ---- */

struct build {
    const char *listener;
    tls_config_get_fn get;
    void *arg;
    char *err;
    size_t errlen;
};

static const char *cfg(struct build *bd, const char *key, const char **used)
{
    const char *u = key;
    const char *v = bd->get(bd->arg, key, &u);
    if (used != NULL)
        *used = u;
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int fail(struct build *bd, const char *key, const char *value, const char *what)
{
    char why[512];
    error_text(why, sizeof(why));
    snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: %s (%s)",
             value != NULL ? value : "null", key, what, why);
    return -1;
}

/* Kafka's inline PEM values may come on one line (server.properties): each block's base64 is
 * rewrapped at 64 columns between its BEGIN and END lines. The result is malloc'ed. */
static char *pem_normalize(const char *v)
{
    size_t vl = strlen(v);
    size_t cap = vl + vl / 64 + 256;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    const char *p = v;
    while ((p = strstr(p, "-----BEGIN ")) != NULL) {
        const char *hdr_end = strstr(p + 11, "-----");
        if (hdr_end == NULL)
            break;
        hdr_end += 5;
        const char *end = strstr(hdr_end, "-----END ");
        if (end == NULL)
            break;
        const char *end_end = strstr(end + 9, "-----");
        if (end_end == NULL)
            break;
        end_end += 5;
        size_t body = (size_t)(end - hdr_end);
        size_t need = (size_t)(hdr_end - p) + 1 + body + body / 64 + 1 + (size_t)(end_end - end) + 2;
        if (n + need >= cap)
            break;
        memcpy(out + n, p, (size_t)(hdr_end - p));
        n += (size_t)(hdr_end - p);
        out[n++] = '\n';
        int col = 0;
        for (const char *q = hdr_end; q < end; q++) {
            if (isspace((unsigned char)*q))
                continue;
            out[n++] = *q;
            if (++col == 64) {
                out[n++] = '\n';
                col = 0;
            }
        }
        if (col != 0)
            out[n++] = '\n';
        memcpy(out + n, end, (size_t)(end_end - end));
        n += (size_t)(end_end - end);
        out[n++] = '\n';
        p = end_end;
    }
    out[n] = '\0';
    return out;
}

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *pw = u;
    if (pw == NULL)
        return 0;
    int n = (int)strlen(pw);
    if (n > size)
        n = size;
    memcpy(buf, pw, (size_t)n);
    return n;
}

/* Every certificate of a PEM BIO, in order. */
static STACK_OF(X509) *pem_certs(BIO *b)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    while (certs != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (sk_X509_push(certs, x) == 0)
            X509_free(x);
    ERR_clear_error(); /* the end of the input reads as an error */
    return certs;
}

/* Installs key and chain (chain[0] the leaf) into ctx. */
static int use_key_and_chain(struct build *bd, SSL_CTX *ctx, EVP_PKEY *key, STACK_OF(X509) *chain,
                             const char *key_name, const char *value)
{
    if (key == NULL)
        return fail(bd, key_name, value, "no private key (or the wrong ssl.key.password)");
    if (chain == NULL || sk_X509_num(chain) == 0)
        return fail(bd, key_name, value, "no certificate");
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(chain, 0)) != 1)
        return fail(bd, key_name, value, "the certificate is not usable");
    for (int i = 1; i < sk_X509_num(chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
            return fail(bd, key_name, value, "a chain certificate is not usable");
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        return fail(bd, key_name, value, "the private key does not match the certificate");
    return 0;
}

static BIO *file_bio(struct build *bd, const char *key_name, const char *path)
{
    BIO *b = BIO_new_file(path, "rb");
    if (b == NULL)
        fail(bd, key_name, path, "cannot read the file");
    return b;
}

static int load_pkcs12(struct build *bd, const char *key_name, const char *path, const char *pw,
                       EVP_PKEY **key, X509 **cert, STACK_OF(X509) **ca)
{
    BIO *b = file_bio(bd, key_name, path);
    if (b == NULL)
        return -1;
    PKCS12 *p12 = d2i_PKCS12_bio(b, NULL);
    BIO_free(b);
    if (p12 == NULL)
        return fail(bd, key_name, path, "not a PKCS12 file");
    int ok = PKCS12_parse(p12, pw != NULL ? pw : "", key, cert, ca);
    PKCS12_free(p12);
    if (ok != 1)
        return fail(bd, key_name, path, "cannot open the PKCS12 store (wrong password?)");
    return 0;
}

static int load_keystore(struct build *bd, SSL_CTX *ctx)
{
    const char *type_key, *loc_key, *chain_key, *pkey_key, *kpw_key, *spw_key;
    const char *type = cfg(bd, "ssl.keystore.type", &type_key);
    const char *loc = cfg(bd, "ssl.keystore.location", &loc_key);
    const char *chain_pem = cfg(bd, "ssl.keystore.certificate.chain", &chain_key);
    const char *key_pem = cfg(bd, "ssl.keystore.key", &pkey_key);
    const char *key_pw = cfg(bd, "ssl.key.password", &kpw_key);
    const char *store_pw = cfg(bd, "ssl.keystore.password", &spw_key);
    if (type == NULL)
        type = "JKS"; /* Kafka's default */
    if (loc == NULL && chain_pem == NULL) {
        snprintf(bd->err, bd->errlen, "Invalid value null for configuration %s: the %s listener "
                 "needs a key store (ssl.keystore.location, or ssl.keystore.certificate.chain "
                 "and ssl.keystore.key with ssl.keystore.type=PEM)", loc_key, bd->listener);
        return -1;
    }
    if (loc != NULL && chain_pem != NULL) {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: both a key store "
                 "file and %s are set", loc, loc_key, chain_key);
        return -1;
    }
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc = -1;
    if (strcasecmp(type, "PEM") == 0) {
        BIO *kb = NULL, *cb = NULL;
        char *chain_norm = NULL, *key_norm = NULL;
        const char *key_name = loc != NULL ? loc_key : pkey_key;
        const char *key_val = loc != NULL ? loc : key_pem;
        if (loc != NULL) {
            /* One file: the key and its certificate chain (KIP-651). */
            kb = file_bio(bd, loc_key, loc);
            cb = file_bio(bd, loc_key, loc);
        } else if (key_pem == NULL) {
            snprintf(bd->err, bd->errlen, "Invalid value null for configuration %s: %s is set "
                     "without it", pkey_key, chain_key);
        } else {
            chain_norm = pem_normalize(chain_pem);
            key_norm = pem_normalize(key_pem);
            if (chain_norm != NULL && key_norm != NULL) {
                cb = BIO_new_mem_buf(chain_norm, -1);
                kb = BIO_new_mem_buf(key_norm, -1);
            }
        }
        if (kb != NULL && cb != NULL) {
            key = PEM_read_bio_PrivateKey(kb, NULL, pass_cb, (void *)key_pw);
            chain = pem_certs(cb);
            if (key == NULL && bd->err[0] == '\0')
                rc = fail(bd, key_pw != NULL ? key_name : key_name, key_pw != NULL ? "[hidden]" : key_val,
                          key_pw != NULL ? "cannot decrypt the private key with ssl.key.password"
                                         : "no private key (an encrypted one needs ssl.key.password)");
            else if (chain == NULL || sk_X509_num(chain) == 0)
                rc = fail(bd, loc != NULL ? loc_key : chain_key, loc != NULL ? loc : "[PEM]",
                          "no certificate");
            else
                rc = use_key_and_chain(bd, ctx, key, chain, key_name, key_val);
        } else if (bd->err[0] == '\0') {
            fail(bd, key_name, key_val, "cannot read the PEM value");
        }
        BIO_free(kb);
        BIO_free(cb);
        free(chain_norm);
        free(key_norm);
    } else if (strcasecmp(type, "PKCS12") == 0) {
        if (loc == NULL) {
            snprintf(bd->err, bd->errlen, "Invalid value null for configuration %s: a PKCS12 "
                     "key store is a file", loc_key);
        } else {
            X509 *cert = NULL;
            STACK_OF(X509) *ca = NULL;
            if (load_pkcs12(bd, loc_key, loc, store_pw, &key, &cert, &ca) == 0) {
                chain = sk_X509_new_null();
                if (chain != NULL && cert != NULL && sk_X509_push(chain, cert) > 0) {
                    cert = NULL;
                    for (int i = 0; ca != NULL && i < sk_X509_num(ca); i++)
                        if (sk_X509_push(chain, sk_X509_value(ca, i)) > 0)
                            X509_up_ref(sk_X509_value(ca, i));
                }
                rc = use_key_and_chain(bd, ctx, key, chain, loc_key, loc);
            }
            X509_free(cert);
            sk_X509_pop_free(ca, X509_free);
        }
    } else {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: gregor reads PEM "
                 "and PKCS12 stores (convert a JKS one with keytool -importkeystore "
                 "-deststoretype PKCS12)", type, type_key);
    }
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

static int trust(struct build *bd, SSL_CTX *ctx, STACK_OF(X509) *certs, const char *key_name,
                 const char *value)
{
    if (certs == NULL || sk_X509_num(certs) == 0)
        return fail(bd, key_name, value, "no certificate to trust");
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (X509_STORE_add_cert(store, x) != 1 || SSL_CTX_add_client_CA(ctx, x) != 1)
            return fail(bd, key_name, value, "a certificate cannot be trusted");
    }
    return 0;
}

static int load_truststore(struct build *bd, SSL_CTX *ctx, bool *have)
{
    const char *type_key, *loc_key, *certs_key, *pw_key;
    const char *type = cfg(bd, "ssl.truststore.type", &type_key);
    const char *loc = cfg(bd, "ssl.truststore.location", &loc_key);
    const char *inline_pem = cfg(bd, "ssl.truststore.certificates", &certs_key);
    const char *pw = cfg(bd, "ssl.truststore.password", &pw_key);
    *have = loc != NULL || inline_pem != NULL;
    if (!*have)
        return 0;
    if (type == NULL)
        type = "JKS";
    STACK_OF(X509) *certs = NULL;
    int rc = -1;
    if (strcasecmp(type, "PEM") == 0) {
        BIO *b = NULL;
        char *norm = NULL;
        if (loc != NULL) {
            b = file_bio(bd, loc_key, loc);
        } else if ((norm = pem_normalize(inline_pem)) != NULL) {
            b = BIO_new_mem_buf(norm, -1);
        }
        if (b != NULL) {
            certs = pem_certs(b);
            rc = trust(bd, ctx, certs, loc != NULL ? loc_key : certs_key, loc != NULL ? loc : "[PEM]");
        } else if (bd->err[0] == '\0') {
            fail(bd, certs_key, "[PEM]", "cannot read the PEM value");
        }
        BIO_free(b);
        free(norm);
    } else if (strcasecmp(type, "PKCS12") == 0 && loc != NULL) {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        if (load_pkcs12(bd, loc_key, loc, pw, &key, &cert, &certs) == 0) {
            if (cert != NULL) {
                if (certs == NULL)
                    certs = sk_X509_new_null();
                if (certs != NULL && sk_X509_push(certs, cert) > 0)
                    cert = NULL;
            }
            rc = trust(bd, ctx, certs, loc_key, loc);
        }
        EVP_PKEY_free(key);
        X509_free(cert);
    } else {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: gregor reads PEM "
                 "and PKCS12 trust stores (a PKCS12 one from ssl.truststore.location)", type,
                 type_key);
    }
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

static int protocol_version(const char *name)
{
    static const struct { const char *name; int v; } versions[] = {
        {"TLSv1", TLS1_VERSION}, {"TLSv1.1", TLS1_1_VERSION},
        {"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION},
    };
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
        if (strcmp(versions[i].name, name) == 0)
            return versions[i].v;
    return -1;
}

/* ssl.enabled.protocols (default TLSv1.2,TLSv1.3): OpenSSL takes a range, so the lowest and
 * highest named bound it; ssl.protocol only has to be a protocol name. */
static int set_protocols(struct build *bd, SSL_CTX *ctx)
{
    const char *key, *pkey;
    const char *list = cfg(bd, "ssl.enabled.protocols", &key);
    const char *proto = cfg(bd, "ssl.protocol", &pkey);
    if (proto != NULL && protocol_version(proto) < 0 && strcmp(proto, "TLS") != 0) {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: %s SSLContext "
                 "not available", proto, pkey, proto);
        return -1;
    }
    if (list == NULL)
        list = "TLSv1.2,TLSv1.3";
    char tmp[256];
    if (strlen(list) >= sizeof(tmp)) {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s", list, key);
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s", list);
    int lo = 0, hi = 0;
    for (char *save = NULL, *tok = strtok_r(tmp, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        int v = protocol_version(tok);
        if (v < 0) {
            snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: unsupported "
                     "protocol %s", list, key, tok);
            return -1;
        }
        lo = lo == 0 || v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (lo == 0) {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: no protocol",
                 list, key);
        return -1;
    }
    if (SSL_CTX_set_min_proto_version(ctx, lo) != 1 || SSL_CTX_set_max_proto_version(ctx, hi) != 1)
        return fail(bd, key, list, "cannot set the protocol range");
    return 0;
}

/* ssl.cipher.suites names suites as IANA (and Java) do: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
 * TLS_AES_256_GCM_SHA384. Each becomes OpenSSL's name, TLS 1.3 suites a list of their own. */
static int set_ciphers(struct build *bd, SSL_CTX *ctx)
{
    const char *key;
    const char *list = cfg(bd, "ssl.cipher.suites", &key);
    if (list == NULL)
        return 0;
    SSL_CTX *all = SSL_CTX_new(TLS_server_method());
    SSL *probe = all != NULL && SSL_CTX_set_cipher_list(all, "ALL:COMPLEMENTOFALL") == 1
                     ? SSL_new(all) : NULL;
    STACK_OF(SSL_CIPHER) *known = probe != NULL ? SSL_get_ciphers(probe) : NULL;
    size_t cap = strlen(list) * 2 + 64;
    char *tmp = strdup(list), *v12 = calloc(1, cap), *v13 = calloc(1, cap);
    int rc = -1;
    if (known == NULL || tmp == NULL || v12 == NULL || v13 == NULL) {
        fail(bd, key, list, "cannot list OpenSSL's cipher suites");
        goto out;
    }
    for (char *save = NULL, *tok = strtok_r(tmp, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        const SSL_CIPHER *found = NULL;
        for (int i = 0; i < sk_SSL_CIPHER_num(known) && found == NULL; i++) {
            const SSL_CIPHER *c = sk_SSL_CIPHER_value(known, i);
            if (strcmp(SSL_CIPHER_standard_name(c), tok) == 0 || strcmp(SSL_CIPHER_get_name(c), tok) == 0)
                found = c;
        }
        if (found == NULL) {
            snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: unsupported "
                     "cipher suite %s", list, key, tok);
            goto out;
        }
        /* OpenSSL names only its TLS 1.3 suites as IANA does (TLS_AES_128_GCM_SHA256). */
        char *dst = strncmp(SSL_CIPHER_get_name(found), "TLS_", 4) == 0 ? v13 : v12;
        size_t dl = strlen(dst);
        snprintf(dst + dl, cap - dl, "%s%s", dl ? ":" : "", SSL_CIPHER_get_name(found));
    }
    /* Only TLS 1.2 suites named: TLS 1.3 keeps none, as a Java engine with that list would. */
    if (SSL_CTX_set_cipher_list(ctx, v12[0] ? v12 : "!ALL") != 1 && v12[0] != '\0') {
        fail(bd, key, list, "cannot set the TLS 1.2 suites");
        goto out;
    }
    ERR_clear_error();
    if (SSL_CTX_set_ciphersuites(ctx, v13) != 1) {
        fail(bd, key, list, "cannot set the TLS 1.3 suites");
        goto out;
    }
    rc = 0;
out:
    SSL_free(probe);
    SSL_CTX_free(all);
    free(tmp);
    free(v12);
    free(v13);
    return rc;
}

static int set_client_auth(struct build *bd, SSL_CTX *ctx, bool have_trust)
{
    const char *key;
    const char *v = cfg(bd, "ssl.client.auth", &key);
    int mode;
    if (v == NULL || strcasecmp(v, "none") == 0)
        mode = SSL_VERIFY_NONE;
    else if (strcasecmp(v, "requested") == 0)
        mode = SSL_VERIFY_PEER;
    else if (strcasecmp(v, "required") == 0)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: String must be "
                 "one of: required, requested, none", v, key);
        return -1;
    }
    if (mode != SSL_VERIFY_NONE && !have_trust) {
        snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: client "
                 "certificates need a trust store (ssl.truststore.location or "
                 "ssl.truststore.certificates)", v, key);
        return -1;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    return 0;
}

/* A listener's SSL_CTX from its keys (everything but the principal rules). */
/* client: the context of connections to other brokers (Kafka's broker as a client: the
 * listener's key store is its certificate when it has one, its trust store checks the server's,
 * and the host name is checked unless ssl.endpoint.identification.algorithm is empty, in
 * *verify_host_out). */
static SSL_CTX *ctx_build(struct build *bd, bool client, bool ktls, bool *have_trust_out,
                          bool *verify_host_out)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
    if (ctx == NULL) {
        fail(bd, "ssl.protocol", "TLS", "cannot create an SSL context");
        return NULL;
    }
    /* Partial writes: SSL_write answers as a socket write would, with what went. Moving
     * buffer: a retried write may come from a copy (conn.c's is the same, to be safe). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* A peer that closes without close_notify ends the stream as TCP's FIN does. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    if (ktls)
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    bool have_trust = false;
    if (client) {
        const char *k;
        bool has_keystore = cfg(bd, "ssl.keystore.location", &k) != NULL ||
                            cfg(bd, "ssl.keystore.certificate.chain", &k) != NULL;
        /* Read raw: cfg() takes "" as unset, and "" here means no host check. */
        k = "ssl.endpoint.identification.algorithm";
        const char *alg = bd->get(bd->arg, "ssl.endpoint.identification.algorithm", &k);
        if (alg != NULL && alg[0] != '\0' && strcasecmp(alg, "https") != 0) {
            snprintf(bd->err, bd->errlen, "Invalid value %s for configuration %s: gregor knows "
                     "https and the empty value", alg, k);
            goto bad;
        }
        *verify_host_out = alg == NULL || alg[0] != '\0';
        if (set_protocols(bd, ctx) != 0 || set_ciphers(bd, ctx) != 0 ||
            (has_keystore && load_keystore(bd, ctx) != 0) ||
            load_truststore(bd, ctx, &have_trust) != 0)
            goto bad;
        if (!have_trust)
            SSL_CTX_set_default_verify_paths(ctx);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else if (set_protocols(bd, ctx) != 0 || set_ciphers(bd, ctx) != 0 ||
               load_keystore(bd, ctx) != 0 || load_truststore(bd, ctx, &have_trust) != 0 ||
               set_client_auth(bd, ctx, have_trust) != 0) {
        goto bad;
    }
    ERR_clear_error();
    *have_trust_out = have_trust;
    return ctx;
bad:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* Kafka's SslConfigs.RECONFIGURABLE_CONFIGS: what listener.name.<l>.ssl.* may change at
 * runtime (dynamic_configs.c takes these and only these). */
static const char *const reconfigurable[] = {
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password",
    "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.truststore.certificates",
};

bool tls_key_reconfigurable(const char *key)
{
    for (size_t i = 0; i < sizeof(reconfigurable) / sizeof(reconfigurable[0]); i++)
        if (strcmp(reconfigurable[i], key) == 0)
            return true;
    return false;
}

/* What a listener's context is built from: the reconfigurable keys' values and, for the store
 * files, their identity and modification time (Kafka rebuilds a store whose file changed). */
static void signature(struct build *bd, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(reconfigurable) / sizeof(reconfigurable[0]) && n < len; i++) {
        const char *v = cfg(bd, reconfigurable[i], NULL);
        n += (size_t)snprintf(out + n, len - n, "%s=%s;", reconfigurable[i], v ? v : "");
        struct stat st;
        if (n < len && v != NULL && strstr(reconfigurable[i], ".location") != NULL &&
            stat(v, &st) == 0)
            n += (size_t)snprintf(out + n, len - n, "[%llu:%llu:%lld:%lld.%09ld]",
                                  (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                                  (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                                  st.st_mtim.tv_nsec);
    }
}

/* Whether the kernel can take the record layer: OpenSSL built with kTLS, and the tls ULP
 * registered (/proc/sys/net/ipv4/tcp_available_ulp lists the loaded ones). why says which. */
static bool ktls_available(char *why, size_t len)
{
#ifdef OPENSSL_NO_KTLS
    snprintf(why, len, "this OpenSSL was built without kTLS");
    return false;
#else
    char ulps[256] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (f == NULL) {
        snprintf(why, len, "cannot read /proc/sys/net/ipv4/tcp_available_ulp: %s", strerror(errno));
        return false;
    }
    if (fgets(ulps, sizeof(ulps), f) == NULL)
        ulps[0] = '\0';
    fclose(f);
    ulps[strcspn(ulps, "\n")] = '\0';
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", ulps);
    for (char *save = NULL, *tok = strtok_r(tmp, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (strcmp(tok, "tls") == 0) {
            snprintf(why, len, "the kernel's tls ULP is loaded");
            return true;
        }
    snprintf(why, len, "the kernel offers no tls ULP (tcp_available_ulp: \"%.120s\"; CONFIG_TLS unset "
             "or the tls module not loaded)", ulps);
    return false;
#endif
}
static struct tls_server *tls_create(const char *listener, tls_config_get_fn get, void *arg,
                                     char *err, size_t errlen, bool client);

struct tls_server *tls_server_create(const char *listener, tls_config_get_fn get, void *arg,
                                     char *err, size_t errlen)
{
    return tls_create(listener, get, arg, err, errlen, false);
}

struct tls_server *tls_client_create(const char *listener, tls_config_get_fn get, void *arg,
                                     char *err, size_t errlen)
{
    return tls_create(listener, get, arg, err, errlen, true);
}

static struct tls_server *tls_create(const char *listener, tls_config_get_fn get, void *arg,
                                     char *err, size_t errlen, bool client)
{
    struct build bd = {listener, get, arg, err, errlen};
    err[0] = '\0';
    struct tls_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->listener, sizeof(s->listener), "%s", listener);
    char why[300];
    s->ktls = !client && ktls_available(why, sizeof(why)); /* Fetch's path: servers only */
    /* Tests only: the sendfile op without kTLS, so its fallback (a connection whose records
     * the kernel did not take) runs on a machine without the tls ULP. */
    const char *force = getenv("GREGOR_TLS_SENDFILE_OP");
    bool sendfile_op = s->ktls || (!client && force != NULL && strcmp(force, "1") == 0);
    s->ops = (struct transport_ops){
        .name = "TLS",
        .open = tls_open,
        .read = tls_read,
        .writev = tls_writev,
        .sendfile = sendfile_op ? tls_sendfile : NULL, /* NULL: conn.c copies file ranges */
        .wants = tls_wants,
        .shutdown = tls_shutdown,
        .close = tls_close,
        .pending = tls_pending,
        .handshaking = tls_handshaking,
        .principal = tls_principal,
        .set_peer = tls_set_peer,
    };
    s->client = client;
    const char *rules_key;
    const char *rules = cfg(&bd, "ssl.principal.mapping.rules", &rules_key);
    char rerr[256];
    signature(&bd, s->sig, sizeof(s->sig));
    s->ctx = ctx_build(&bd, client, s->ktls, &s->have_trust, &s->verify_host);
    if (s->ctx == NULL)
        goto bad;
    s->rules = tls_principal_rules_parse(rules, rerr, sizeof(rerr));
    if (s->rules == NULL) {
        snprintf(err, errlen, "Invalid value %s for configuration %s: %s", rules, rules_key, rerr);
        goto bad;
    }
    /* Once per listener: which path Fetch takes over it, and why. */
    if (s->ktls)
        LOG_INFO(WHO, "Listener %s: kTLS available (%s): Fetch sends file ranges with "
                 "SSL_sendfile where the kernel takes a connection's records", listener, why);
    else if (!client)
        LOG_INFO(WHO, "Listener %s: kTLS unavailable (%s): Fetch copies file ranges through "
                 "SSL_write%s", listener, why,
                 sendfile_op ? " in the transport's sendfile (GREGOR_TLS_SENDFILE_OP=1)" : "");
    ERR_clear_error();
    return s;
bad:
    ERR_clear_error();
    tls_server_free(s);
    return NULL;
}

/* Java's getSubjectAlternativeNames as Kafka prints it: [[2, host], [7, 10.0.0.1]]. */
static void san_text(const GENERAL_NAMES *names, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "[");
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && n < len; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char v[128] = "?";
        int type = g->type == GEN_EMAIL ? 1 : g->type == GEN_DNS ? 2 : g->type == GEN_URI ? 6
                 : g->type == GEN_IPADD ? 7 : g->type;
        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
            const ASN1_IA5STRING *a = g->d.ia5;
            snprintf(v, sizeof(v), "%.*s", a->length, (const char *)a->data);
        } else if (g->type == GEN_IPADD && g->d.ip->length == 4) {
            inet_ntop(AF_INET, g->d.ip->data, v, sizeof(v));
        } else if (g->type == GEN_IPADD && g->d.ip->length == 16) {
            inet_ntop(AF_INET6, g->d.ip->data, v, sizeof(v));
        }
        n += (size_t)snprintf(out + n, len - n, "%s[%d, %s]", i ? ", " : "", type, v);
    }
    if (n < len)
        snprintf(out + n, len - n, "]");
}

static const char *alias_of(X509 *x)
{
    const unsigned char *a = X509_alias_get0(x, NULL);
    return a != NULL ? (const char *)a : "kafka"; /* Kafka's alias for a PEM key store */
}

/* Kafka's CertificateEntries.ensureCompatible for the leaf certificates: the same subject DN
 * (RFC 2253, case-insensitive) unless allow_dn, the old SANs all present unless allow_san. */
static int ensure_compatible(X509 *old, X509 *new, bool allow_dn, bool allow_san, char *err,
                             size_t errlen)
{
    char odn[1024] = "?", ndn[1024] = "?";
    subject_text(old, odn, sizeof(odn));
    subject_text(new, ndn, sizeof(ndn));
    if (!allow_dn && strcasecmp(odn, ndn) != 0) {
        int n = snprintf(err, errlen, "org.apache.kafka.common.config.ConfigException: Keystore "
                 "DistinguishedName does not match:  existing={alias=%s, DN=%.300s}, new={alias=%s, "
                 "DN=%.300s}", alias_of(old), odn, alias_of(new), ndn);
        (void)n;
        return -1;
    }
    if (allow_san)
        return 0;
    GENERAL_NAMES *on = X509_get_ext_d2i(old, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAMES *nn = X509_get_ext_d2i(new, NID_subject_alt_name, NULL, NULL);
    bool all = true;
    for (int i = 0; on != NULL && i < sk_GENERAL_NAME_num(on) && all; i++) {
        bool found = false;
        for (int j = 0; nn != NULL && j < sk_GENERAL_NAME_num(nn) && !found; j++)
            found = GENERAL_NAME_cmp(sk_GENERAL_NAME_value(on, i), sk_GENERAL_NAME_value(nn, j)) == 0;
        all = found;
    }
    if (!all) {
        char os[600], ns[600];
        san_text(on, os, sizeof(os));
        san_text(nn, ns, sizeof(ns));
        int n = snprintf(err, errlen, "org.apache.kafka.common.config.ConfigException: Keystore "
                 "SubjectAltNames do not match:  existing={alias=%s, SAN=%.300s}, new={alias=%s, "
                 "SAN=%.300s}", alias_of(old), os, alias_of(new), ns);
        (void)n; /* a long list is cut: the message stays a message */
    }
    GENERAL_NAMES_free(on);
    GENERAL_NAMES_free(nn);
    ERR_clear_error();
    return all ? 0 : -1;
}

static bool cfg_true(struct build *bd, const char *key)
{
    const char *v = cfg(bd, key, NULL);
    return v != NULL && strcasecmp(v, "true") == 0;
}

int tls_server_reload(struct tls_server *s, tls_config_get_fn get, void *arg, bool check,
                      bool commit, char *err, size_t errlen)
{
    struct build bd = {s->listener, get, arg, err, errlen};
    err[0] = '\0';
    char *sig = malloc(TLS_SIG_MAX);
    GREGOR_ASSERT(sig != NULL);
    signature(&bd, sig, TLS_SIG_MAX);
    if (strcmp(sig, s->sig) == 0) {
        free(sig);
        return 0; /* nothing it is built from changed (Kafka: shouldBeRebuilt is false) */
    }
    char why[1024] = "";
    struct build quiet = {s->listener, get, arg, why, sizeof(why)};
    bool have_trust = false;
    bool verify_host = s->verify_host;
    SSL_CTX *ctx = ctx_build(&quiet, s->client, s->ktls, &have_trust, &verify_host);
    int rc = 1;
    if (ctx == NULL) {
        rc = -1;
    } else if (check && !s->have_trust && have_trust) {
        snprintf(why, sizeof(why), "org.apache.kafka.common.config.ConfigException: Cannot add "
                 "SSL truststore to an existing listener for which no truststore was configured.");
        rc = -1;
    } else if (check) {
        X509 *old = SSL_CTX_get0_certificate(s->ctx), *new = SSL_CTX_get0_certificate(ctx);
        GREGOR_ASSERT(old != NULL && new != NULL); /* a listener's context always has its key */
        if (ensure_compatible(old, new, cfg_true(&bd, "ssl.allow.dn.changes"),
                              cfg_true(&bd, "ssl.allow.san.changes"), why, sizeof(why)) != 0)
            rc = -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "Validation of dynamic config update of SSLFactory failed: %s", why);
        SSL_CTX_free(ctx);
    } else if (commit) {
        /* Connections already made keep the context they hold (SSL_new took a reference). */
        SSL_CTX_free(s->ctx);
        s->ctx = ctx;
        s->have_trust = have_trust;
        memcpy(s->sig, sig, TLS_SIG_MAX);
    } else {
        SSL_CTX_free(ctx);
    }
    free(sig);
    return rc;
}

const struct transport_ops *tls_server_transport(struct tls_server *s) { return &s->ops; }

void tls_server_free(struct tls_server *s)
{
    if (s == NULL)
        return;
    SSL_CTX_free(s->ctx);
    tls_principal_rules_free(s->rules);
    free(s);
}
