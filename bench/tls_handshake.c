/* tls_handshake: the rate of new connections a broker completes, each a full TLS handshake (no
 * session resumption), SASL/SCRAM-SHA-512 when asked, and one ApiVersions v0 exchange.
 *
 * usage: tls_handshake HOST PORT MODE THREADS SECONDS MAX_CONNS [CAFILE [USER PASSWORD]]
 *   MODE      plaintext | ssl | sasl_ssl
 *   THREADS   parallel clients (1..64), each a blocking loop: connect, TLS handshake (verifying
 *             the broker's certificate against CAFILE), ApiVersions v0; for sasl_ssl then
 *             SaslHandshake v1 (SCRAM-SHA-512) and SaslAuthenticate v1 with the RFC 5802
 *             exchange (client-first, client-final with the proof; the server-final's v= is
 *             checked); then the socket is reset (SO_LINGER 0: no TIME_WAIT, so the ephemeral
 *             ports last the run).
 *   SECONDS   stop starting connections after this long (bounded: 1..120)
 *   MAX_CONNS stop after this many completed or failed connections in all (bounded)
 * The salted password is derived once per salt (PBKDF2 is the client's cost, not the broker's:
 * the broker keeps StoredKey/ServerKey). Each socket has a 10 s send/receive timeout.
 * Prints one JSON line: {"mode":..,"threads":..,"ok":..,"failed":..,"wall_s":..,"per_s":..,
 * "p50_ms":..,"p99_ms":..,"max_ms":..,"first_error":..}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_SAMPLES 400000
#define FRAME_MAX 65536

enum mode { PLAINTEXT, SSL_ONLY, SASL_SSL };

static const char *host, *user, *password;
static int port, max_conns;
static enum mode mode;
static double deadline_ms;
static SSL_CTX *ctx;
static atomic_int started, ok_count, failed_count;
static float samples[MAX_SAMPLES];
static atomic_int nsamples;
static char first_error[160];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* the salted password of the last salt seen (one user, one salt: derived once) */
static unsigned char salted[SHA512_DIGEST_LENGTH], salted_for[128];
static int salted_for_len = -1, salted_iter;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(const char *what)
{
    atomic_fetch_add(&failed_count, 1);
    pthread_mutex_lock(&lock);
    if (!first_error[0]) {
        unsigned long e = ERR_peek_error();
        snprintf(first_error, sizeof first_error, "%s%s%s", what, e ? ": " : "",
                 e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?" : "");
    }
    pthread_mutex_unlock(&lock);
    ERR_clear_error();
}

struct conn {
    int fd;
    SSL *ssl;
};

static int send_all(struct conn *c, const unsigned char *p, int n)
{
    while (n > 0) {
        int w = c->ssl ? SSL_write(c->ssl, p, n) : (int)write(c->fd, p, (size_t)n);
        if (w <= 0)
            return 0;
        p += w;
        n -= w;
    }
    return 1;
}

static int recv_all(struct conn *c, unsigned char *p, int n)
{
    while (n > 0) {
        int r = c->ssl ? SSL_read(c->ssl, p, n) : (int)read(c->fd, p, (size_t)n);
        if (r <= 0)
            return 0;
        p += r;
        n -= r;
    }
    return 1;
}

static void put16(unsigned char *p, int v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}
static void put32(unsigned char *p, int v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
static int get16(const unsigned char *p) { return (short)((p[0] << 8) | p[1]); }
static int get32(const unsigned char *p)
{
    return (int)(((unsigned)p[0] << 24) | ((unsigned)p[1] << 16) | ((unsigned)p[2] << 8) | p[3]);
}

/* One request (header v1, client id "hs") with body; the response body after the correlation
 * id into out (at most FRAME_MAX bytes): its length, or -1. */
static int call(struct conn *c, int api, int version, int corr, const unsigned char *body,
                int blen, unsigned char *out)
{
    unsigned char req[4 + 12 + 512];
    if (blen > 500)
        return -1;
    put32(req, 12 + blen);
    put16(req + 4, api);
    put16(req + 6, version);
    put32(req + 8, corr);
    put16(req + 12, 2);
    memcpy(req + 14, "hs", 2);
    memcpy(req + 16, body, (size_t)blen);
    if (!send_all(c, req, 16 + blen))
        return -1;
    unsigned char head[8];
    if (!recv_all(c, head, 8))
        return -1;
    int size = get32(head);
    if (size < 4 || size - 4 > FRAME_MAX || get32(head + 4) != corr)
        return -1;
    return recv_all(c, out, size - 4) ? size - 4 : -1;
}

static int b64(const unsigned char *in, int n, char *out)
{
    return EVP_EncodeBlock((unsigned char *)out, in, n);
}

/* The value of attribute `key` (one letter) in a SCRAM message, copied into out. */
static int scram_attr(const char *msg, int len, char key, char *out, int cap)
{
    for (int i = 0; i + 1 < len; i++) {
        if ((i == 0 || msg[i - 1] == ',') && msg[i] == key && msg[i + 1] == '=') {
            int j = i + 2, k = 0;
            while (j < len && msg[j] != ',' && k < cap - 1)
                out[k++] = msg[j++];
            out[k] = 0;
            return k;
        }
    }
    return -1;
}

static int authenticate(struct conn *c, unsigned char *buf, int *corr)
{
    unsigned char body[512];
    int n = (int)strlen("SCRAM-SHA-512");
    put16(body, n);
    memcpy(body + 2, "SCRAM-SHA-512", (size_t)n);
    int r = call(c, 17, 1, (*corr)++, body, 2 + n, buf);
    if (r < 2 || get16(buf) != 0)
        return fail("SaslHandshake"), 0;

    unsigned char raw[18];
    char nonce[32], first_bare[128];
    RAND_bytes(raw, sizeof raw);
    b64(raw, sizeof raw, nonce);
    int bl = snprintf(first_bare, sizeof first_bare, "n=%s,r=%s", user, nonce);
    if (bl <= 0 || bl >= (int)sizeof first_bare)
        return fail("user name too long"), 0;
    n = snprintf((char *)body + 4, sizeof body - 4, "n,,%s", first_bare);
    put32(body, n);
    r = call(c, 36, 1, (*corr)++, body, 4 + n, buf);
    if (r < 4 || get16(buf) != 0)
        return fail("SaslAuthenticate (client-first)"), 0;
    int ml = get16(buf + 2), at = 4 + (ml > 0 ? ml : 0);
    if (at + 4 > r)
        return fail("SaslAuthenticate (client-first): short answer"), 0;
    int sl = get32(buf + at);
    if (sl <= 0 || sl > 400 || at + 4 + sl > r)
        return fail("SaslAuthenticate (client-first): bad server-first"), 0;
    char server_first[401];
    memcpy(server_first, buf + at + 4, (size_t)sl);
    server_first[sl] = 0;

    char rnonce[200], salt64[200];
    unsigned char salt[160];
    char iter[16];
    if (scram_attr(server_first, sl, 'r', rnonce, sizeof rnonce) <= 0 ||
        scram_attr(server_first, sl, 's', salt64, sizeof salt64) <= 0 ||
        scram_attr(server_first, sl, 'i', iter, sizeof iter) <= 0 ||
        strncmp(rnonce, nonce, strlen(nonce)) != 0)
        return fail("server-first: missing r, s or i, or not our nonce"), 0;
    int s64 = (int)strlen(salt64);
    int salt_len = EVP_DecodeBlock(salt, (unsigned char *)salt64, s64);
    for (int i = s64 - 1; i >= 0 && salt64[i] == '=' && salt_len > 0; i--)
        salt_len--; /* EVP_DecodeBlock counts the padding's zero bytes */
    int iterations = atoi(iter);
    if (salt_len <= 0 || iterations <= 0 || iterations > 100000 ||
        salt_len > (int)sizeof salted_for)
        return fail("server-first: bad salt or iterations"), 0;

    unsigned char sp[SHA512_DIGEST_LENGTH];
    pthread_mutex_lock(&lock);
    if (salted_for_len != salt_len || salted_iter != iterations ||
        memcmp(salted_for, salt, (size_t)salt_len) != 0) {
        PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, salt_len, iterations,
                          EVP_sha512(), sizeof salted, salted);
        memcpy(salted_for, salt, (size_t)salt_len);
        salted_for_len = salt_len;
        salted_iter = iterations;
    }
    memcpy(sp, salted, sizeof sp);
    pthread_mutex_unlock(&lock);

    unsigned char client_key[64], stored_key[64], sig[64], server_key[64], server_sig[64];
    unsigned int hl = 64;
    HMAC(EVP_sha512(), sp, sizeof sp, (const unsigned char *)"Client Key", 10, client_key, &hl);
    SHA512(client_key, 64, stored_key);
    char final_wo_proof[256], auth_msg[800];
    snprintf(final_wo_proof, sizeof final_wo_proof, "c=biws,r=%s", rnonce);
    int al = snprintf(auth_msg, sizeof auth_msg, "%s,%s,%s", first_bare, server_first,
                      final_wo_proof);
    HMAC(EVP_sha512(), stored_key, 64, (unsigned char *)auth_msg, (size_t)al, sig, &hl);
    unsigned char proof[64];
    for (int i = 0; i < 64; i++)
        proof[i] = client_key[i] ^ sig[i];
    char proof64[100];
    b64(proof, 64, proof64);
    n = snprintf((char *)body + 4, sizeof body - 4, "%s,p=%s", final_wo_proof, proof64);
    if (n <= 0 || n >= (int)sizeof body - 4)
        return fail("client-final too long"), 0;
    put32(body, n);
    r = call(c, 36, 1, (*corr)++, body, 4 + n, buf);
    if (r < 4 || get16(buf) != 0) {
        char m[120];
        int l = r >= 4 ? get16(buf + 2) : -1;
        snprintf(m, sizeof m, "SaslAuthenticate (client-final): error %d %.*s",
                 r >= 4 ? get16(buf) : -1, l > 0 && l <= r - 4 && l < 80 ? l : 0,
                 (const char *)buf + 4);
        return fail(m), 0;
    }
    ml = get16(buf + 2);
    at = 4 + (ml > 0 ? ml : 0);
    if (at + 4 > r)
        return fail("SaslAuthenticate (client-final): short answer"), 0;
    sl = get32(buf + at);
    char v[200], want[100];
    HMAC(EVP_sha512(), sp, sizeof sp, (const unsigned char *)"Server Key", 10, server_key, &hl);
    HMAC(EVP_sha512(), server_key, 64, (unsigned char *)auth_msg, (size_t)al, server_sig, &hl);
    b64(server_sig, 64, want);
    if (sl <= 0 || sl > 300 || at + 4 + sl > r ||
        scram_attr((char *)buf + at + 4, sl, 'v', v, sizeof v) <= 0 || strcmp(v, want) != 0)
        return fail("server-final: no v= or a wrong server signature"), 0;
    return 1;
}

static int one_connection(unsigned char *buf)
{
    struct conn c = {.fd = socket(AF_INET, SOCK_STREAM, 0), .ssl = NULL};
    int ok = 0, corr = 7;
    if (c.fd < 0)
        return fail("socket"), 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (connect(c.fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fail("connect");
        goto out;
    }
    if (mode != PLAINTEXT) {
        c.ssl = SSL_new(ctx);
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_tlsext_host_name(c.ssl, "localhost");
        SSL_set1_host(c.ssl, "localhost");
        if (SSL_connect(c.ssl) != 1) {
            fail("TLS handshake");
            goto out;
        }
    }
    int r = call(&c, 18, 0, corr++, NULL, 0, buf);
    if (r < 2 || get16(buf) != 0) {
        fail("ApiVersions");
        goto out;
    }
    if (mode == SASL_SSL && !authenticate(&c, buf, &corr))
        goto out;
    ok = 1;
out:
    if (c.ssl)
        SSL_free(c.ssl);
    close(c.fd);
    return ok;
}

static void *worker(void *arg)
{
    (void)arg;
    unsigned char *buf = malloc(FRAME_MAX);
    if (!buf)
        return NULL;
    while (now_ms() < deadline_ms && atomic_fetch_add(&started, 1) < max_conns) {
        double t0 = now_ms();
        if (one_connection(buf)) {
            atomic_fetch_add(&ok_count, 1);
            int i = atomic_fetch_add(&nsamples, 1);
            if (i < MAX_SAMPLES)
                samples[i] = (float)(now_ms() - t0);
        }
    }
    free(buf);
    return NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: tls_handshake HOST PORT plaintext|ssl|sasl_ssl THREADS SECONDS "
                        "MAX_CONNS [CAFILE [USER PASSWORD]]\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    mode = !strcmp(argv[3], "ssl") ? SSL_ONLY : !strcmp(argv[3], "sasl_ssl") ? SASL_SSL : PLAINTEXT;
    int threads = atoi(argv[4]);
    double seconds = atof(argv[5]);
    max_conns = atoi(argv[6]);
    if (threads < 1 || threads > MAX_THREADS || seconds < 1 || seconds > 120 || max_conns < 1 ||
        max_conns > 1000000 || (mode != PLAINTEXT && argc < 8) || (mode == SASL_SSL && argc < 10)) {
        fprintf(stderr, "tls_handshake: bad arguments (threads 1..64, seconds 1..120)\n");
        return 2;
    }
    if (mode != PLAINTEXT) {
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        if (SSL_CTX_load_verify_locations(ctx, argv[7], NULL) != 1) {
            fprintf(stderr, "tls_handshake: cannot load CA file %s\n", argv[7]);
            return 2;
        }
    }
    if (mode == SASL_SSL) {
        user = argv[8];
        password = argv[9];
    }
    pthread_t t[MAX_THREADS];
    double t0 = now_ms();
    deadline_ms = t0 + seconds * 1e3;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double wall = (now_ms() - t0) / 1e3;
    int n = atomic_load(&nsamples);
    if (n > MAX_SAMPLES)
        n = MAX_SAMPLES;
    qsort(samples, (size_t)n, sizeof samples[0], cmp_float);
#define Q(x) (n ? samples[(int)((x) * (n - 1))] : 0.0)
    printf("{\"mode\": \"%s\", \"threads\": %d, \"ok\": %d, \"failed\": %d, \"wall_s\": %.3f, "
           "\"per_s\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
           "\"first_error\": \"%s\"}\n",
           argv[3], threads, atomic_load(&ok_count), atomic_load(&failed_count), wall,
           atomic_load(&ok_count) / wall, Q(0.5), Q(0.99), n ? samples[n - 1] : 0.0, first_error);
    if (ctx)
        SSL_CTX_free(ctx);
    return 0;
}
