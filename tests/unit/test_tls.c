/* Unit tests for net/tls: Kafka's ssl.principal.mapping.rules, and the TLS transport driven
 * through conn.c over a socketpair with an OpenSSL client on the other end (handshake with a
 * client certificate, the principal in the session, frames larger than the stage, pipelined
 * frames, file ranges through the copying path, a peer that speaks no TLS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/conn.h"
#include "net/loop.h"
#include "net/tls.h"

/* ---- principal mapping rules ---- */

static void expect_map(const char *rules, const char *dn, const char *want)
{
    char err[256], out[256];
    struct tls_principal_rules *r = tls_principal_rules_parse(rules, err, sizeof(err));
    assert_non_null(r);
    if (want == NULL) {
        assert_int_equal(tls_principal_map(r, dn, out, sizeof(out)), -1);
    } else {
        assert_int_equal(tls_principal_map(r, dn, out, sizeof(out)), 0);
        assert_string_equal(out, want);
    }
    tls_principal_rules_free(r);
}

static void test_principal_mapping_rules(void **state)
{
    (void)state;
    const char *dn = "CN=alice,OU=ServiceUsers,O=corp,C=US";
    expect_map(NULL, dn, dn);
    expect_map("DEFAULT", dn, dn);
    expect_map("RULE:^CN=(.*),OU=ServiceUsers,O=(.*),C=US$/$1@$2/", dn, "alice@corp");
    /* Kafka's documented example, with Java's reluctant quantifier. */
    expect_map("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", dn, "alice");
    expect_map("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=bob,OU=Other", "CN=bob,OU=Other");
    expect_map("RULE:^CN=(.*),OU=ServiceUsers,O=(.*),C=US$/$1@$2/U", dn, "ALICE@CORP");
    expect_map("RULE:^CN=([a-z]+),.*$/$1/L", "CN=Bob,OU=x", NULL); /* [a-z]+ does not take B */
    expect_map("RULE:^CN=([A-Za-z]+),.*$/$1/L", "CN=Bob,OU=x", "bob");
    /* The first rule that matches wins; DEFAULT after a rule that does not. */
    expect_map("RULE:^OU=(.*)$/$1/, DEFAULT", dn, dn);
    expect_map("RULE:^CN=(.*),OU=nope$/$1/,RULE:^CN=([^,]*),.*$/u-$1/", dn, "u-alice");
    /* Escaped slashes in pattern and replacement. */
    expect_map("RULE:^CN=([^,]*),.*$/svc\\/$1/", dn, "svc/alice");
    char err[256];
    assert_null(tls_principal_rules_parse("RULE:^CN=(.*)$", err, sizeof(err)));
    assert_null(tls_principal_rules_parse("SOMETHING", err, sizeof(err)));
    assert_null(tls_principal_rules_parse("RULE:^CN=(.*$/$1/", err, sizeof(err)));
}

/* ---- the transport over a socketpair ---- */

struct pem {
    char *key, *cert;
};

static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

/* A self-signed P-256 certificate for subject O=corp, OU=eng, CN=cn. */
static struct pem make_pem(const char *cn, EVP_PKEY **key_out, X509 **cert_out)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"corp", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"eng", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL);
    PEM_write_bio_X509(cb, x);
    struct pem p = {bio_text(kb), bio_text(cb)};
    BIO_free(kb);
    BIO_free(cb);
    *key_out = k;
    *cert_out = x;
    return p;
}

struct server_keys {
    const char *keys[8];
    const char *values[8];
    int n;
};

static const char *keys_get(void *arg, const char *key, const char **used)
{
    struct server_keys *k = arg;
    *used = key;
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->keys[i], key) == 0)
            return k->values[i];
    return NULL;
}

#define BIG_FRAME (200 * 1024)
#define FILE_LEN (100 * 1024)

struct fx {
    struct loop *loop;
    struct net *net;
    struct tls_server *server;
    struct net_listener_info li;
    EVP_PKEY *server_key, *client_key;
    X509 *server_cert, *client_cert;
    struct pem server_pem, client_pem;
    int file_fd;
    int frames;
    struct conn *held; /* frame "holdhold" is left unanswered here */
    char principal[CONN_PRINCIPAL_MAX];
    SSL_CTX *client_ctx;
};

/* Echoes each frame back as a response (size + bytes); frame "filefile" is answered with "F" and a
 * FILE_LEN range of the fixture's file, which goes through the copying path. */
static void on_frame(void *ctx, struct conn *c, uint8_t *frame, size_t len)
{
    struct fx *f = ctx;
    f->frames++;
    snprintf(f->principal, sizeof(f->principal), "%s", conn_session(c)->principal);
    if (len == 8 && memcmp(frame, "holdhold", 8) == 0) {
        f->held = c;
        free(frame);
        return;
    }
    if (len == 8 && memcmp(frame, "filefile", 8) == 0) {
        uint8_t *b = malloc(5);
        uint32_t n = htonl(1 + FILE_LEN);
        memcpy(b, &n, 4);
        b[4] = 'F';
        struct net_file_range r = {.fd = dup(f->file_fd), .offset = 0, .len = FILE_LEN, .at = 5};
        conn_send(c, b, 5, &r, 1);
        free(frame);
        return;
    }
    uint8_t *b = malloc(len + 4);
    uint32_t n = htonl((uint32_t)len);
    memcpy(b, &n, 4);
    memcpy(b + 4, frame, len);
    free(frame);
    conn_send(c, b, len + 4, NULL, 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->server_pem = make_pem("server", &f->server_key, &f->server_cert);
    f->client_pem = make_pem("alice", &f->client_key, &f->client_cert);
    struct server_keys k = {
        {"ssl.keystore.type", "ssl.keystore.certificate.chain", "ssl.keystore.key",
         "ssl.truststore.type", "ssl.truststore.certificates", "ssl.client.auth"},
        {"PEM", f->server_pem.cert, f->server_pem.key, "PEM", f->client_pem.cert, "required"},
        6};
    char err[512];
    f->server = tls_server_create("SSL", keys_get, &k, err, sizeof(err));
    if (f->server == NULL)
        fail_msg("%s", err);
    f->li = (struct net_listener_info){"SSL", "SSL", tls_server_transport(f->server)};
    f->loop = loop_create(1024);
    struct net_limits lim = {.max_frame_bytes = 1 << 20, .max_output_bytes = 1 << 20,
                             .max_connections = 100, .max_connections_per_ip = 100,
                             .max_reading_bytes = 4 << 20};
    f->net = net_create(f->loop, &lim, on_frame, NULL, f);
    char path[] = "/tmp/test_tls_XXXXXX";
    f->file_fd = mkstemp(path);
    unlink(path);
    uint8_t *buf = malloc(FILE_LEN);
    for (size_t i = 0; i < FILE_LEN; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(write(f->file_fd, buf, FILE_LEN), FILE_LEN);
    free(buf);
    f->client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_use_certificate(f->client_ctx, f->client_cert);
    SSL_CTX_use_PrivateKey(f->client_ctx, f->client_key);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(f->client_ctx), f->server_cert);
    SSL_CTX_set_verify(f->client_ctx, SSL_VERIFY_PEER, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    net_destroy(f->net);
    loop_destroy(f->loop);
    tls_server_free(f->server);
    SSL_CTX_free(f->client_ctx);
    EVP_PKEY_free(f->server_key);
    EVP_PKEY_free(f->client_key);
    X509_free(f->server_cert);
    X509_free(f->client_cert);
    free(f->server_pem.key);
    free(f->server_pem.cert);
    free(f->client_pem.key);
    free(f->client_pem.cert);
    close(f->file_fd);
    free(f);
    return 0;
}

/* A client end: an SSL on a non-blocking socketpair end, with the broker's end adopted. */
static SSL *client_connect(struct fx *f, int *fd_out)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(net_adopt_with(f->net, sv[0], "test:1", &f->li), 0);
    SSL *ssl = SSL_new(f->client_ctx);
    SSL_set_fd(ssl, sv[1]);
    SSL_set_connect_state(ssl);
    *fd_out = sv[1];
    return ssl;
}

/* Writes all of buf through ssl, turning the broker's loop meanwhile. */
static void client_write_all(struct fx *f, SSL *ssl, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    for (int spins = 0; done < len && spins < 20000; spins++) {
        size_t w = 0;
        if (SSL_write_ex(ssl, buf + done, len - done, &w) == 1) {
            done += w;
            continue;
        }
        int e = SSL_get_error(ssl, 0);
        assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
        loop_run_once(f->loop, 1);
    }
    assert_int_equal(done, len);
}

/* Reads exactly len bytes, turning the broker's loop meanwhile. */
static void client_read_all(struct fx *f, SSL *ssl, uint8_t *buf, size_t len)
{
    size_t done = 0;
    for (int spins = 0; done < len && spins < 20000; spins++) {
        size_t r = 0;
        if (SSL_read_ex(ssl, buf + done, len - done, &r) == 1) {
            done += r;
            continue;
        }
        int e = SSL_get_error(ssl, 0);
        assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
        loop_run_once(f->loop, 1);
    }
    assert_int_equal(done, len);
}

static void frame_of(uint8_t *out, const uint8_t *body, size_t len)
{
    uint32_t n = htonl((uint32_t)len);
    memcpy(out, &n, 4);
    memcpy(out + 4, body, len);
}

static void test_frames_through_tls(void **state)
{
    struct fx *f = *state;
    int fd;
    SSL *ssl = client_connect(f, &fd);
    /* One frame larger than the stage (read straight into its buffer), its echo as large. */
    uint8_t *big = malloc(BIG_FRAME + 4), *back = malloc(BIG_FRAME + 4);
    for (size_t i = 0; i < BIG_FRAME; i++)
        big[4 + i] = (uint8_t)(i * 31 + 1);
    uint32_t n = htonl(BIG_FRAME);
    memcpy(big, &n, 4);
    client_write_all(f, ssl, big, BIG_FRAME + 4);
    client_read_all(f, ssl, back, BIG_FRAME + 4);
    assert_memory_equal(big, back, BIG_FRAME + 4);
    /* The big frame and a small one in one write: the record that ends the big frame holds
     * the small one too, which stays decrypted inside OpenSSL once the big frame is full and
     * the socket has nothing more to announce (transport_ops.pending). */
    uint8_t *two = malloc(BIG_FRAME + 4 + 12), *two_back = malloc(BIG_FRAME + 4 + 12);
    memcpy(two, big, BIG_FRAME + 4);
    frame_of(two + BIG_FRAME + 4, (const uint8_t *)"smallone", 8);
    client_write_all(f, ssl, two, BIG_FRAME + 4 + 12);
    client_read_all(f, ssl, two_back, BIG_FRAME + 4 + 12);
    assert_memory_equal(two, two_back, BIG_FRAME + 4 + 12);
    free(two);
    free(two_back);
    /* The principal is the client certificate's subject, as Kafka's default builder names it. */
    assert_string_equal(f->principal, "User:CN=alice,OU=eng,O=corp");
    /* 300 pipelined frames in one write: more than the stage holds, in records OpenSSL
     * decrypts ahead of what the stage can take. */
    enum { PIPELINED = 300, SMALL = 1000 };
    uint8_t *burst = malloc(PIPELINED * (SMALL + 4));
    for (int i = 0; i < PIPELINED; i++) {
        uint8_t body[SMALL];
        memset(body, 'a' + i % 26, SMALL);
        frame_of(burst + (size_t)i * (SMALL + 4), body, SMALL);
    }
    int before = f->frames;
    client_write_all(f, ssl, burst, PIPELINED * (SMALL + 4));
    uint8_t *echo = malloc(PIPELINED * (SMALL + 4));
    client_read_all(f, ssl, echo, PIPELINED * (SMALL + 4));
    assert_memory_equal(burst, echo, PIPELINED * (SMALL + 4));
    assert_int_equal(f->frames - before, PIPELINED);
    /* A file range: no sendfile through TLS, the copying path encrypts it chunk by chunk. */
    uint8_t req[12];
    frame_of(req, (const uint8_t *)"filefile", 8);
    client_write_all(f, ssl, req, 12);
    uint8_t *fr = malloc(5 + FILE_LEN);
    client_read_all(f, ssl, fr, 5 + FILE_LEN);
    assert_int_equal(fr[4], 'F');
    for (size_t i = 0; i < FILE_LEN; i++)
        if (fr[5 + i] != (uint8_t)(i * 7 + 3))
            fail_msg("file byte %zu differs", i);
    assert_int_equal(net_connection_count(f->net), 1);
    /* close_notify: the broker sees the end of the stream and closes its side. */
    SSL_shutdown(ssl);
    for (int i = 0; i < 100 && net_connection_count(f->net) > 0; i++)
        loop_run_once(f->loop, 1);
    assert_int_equal(net_connection_count(f->net), 0);
    SSL_free(ssl);
    close(fd);
    free(big);
    free(back);
    free(burst);
    free(echo);
    free(fr);
}

/* The last record the client sends straddles the moment the stage fills: its tail is
 * decrypted inside OpenSSL, the socket is empty, and only transport_ops.pending tells conn.c
 * to read it once the stage has room again. */
static void test_bytes_left_inside_openssl_are_read(void **state)
{
    struct fx *f = *state;
    int fd;
    SSL *ssl = client_connect(f, &fd);
    enum { BODY = 1000, FRAME = BODY + 4, FIRST = 100 };
    /* First record: a frame held unanswered and the first 100 bytes of the next. */
    uint8_t first[12 + FIRST];
    frame_of(first, (const uint8_t *)"holdhold", 8);
    uint8_t *frames = malloc(70000);
    size_t n = 0;
    uint8_t body[BODY];
    memset(body, 'x', sizeof(body));
    frame_of(frames, body, BODY);
    n = FRAME;
    /* The rest: exactly 64 KiB, four full records, ending on a frame's end. */
    size_t second_len = 65536;
    while (n + FRAME <= FIRST + second_len - 12) {
        memset(body, 'a' + (int)(n / FRAME) % 26, sizeof(body));
        frame_of(frames + n, body, BODY);
        n += FRAME;
    }
    size_t last = FIRST + second_len - n; /* what is left of 64 KiB for one more frame */
    assert_true(last >= 12);
    memset(body, 'z', sizeof(body));
    frame_of(frames + n, body, last - 4);
    n += last;
    assert_int_equal(n, FIRST + second_len);
    memcpy(first + 12, frames, FIRST);
    client_write_all(f, ssl, first, sizeof(first));
    for (int i = 0; i < 50 && f->held == NULL; i++)
        loop_run_once(f->loop, 1);
    assert_non_null(f->held);
    client_write_all(f, ssl, frames + FIRST, second_len);
    for (int i = 0; i < 20; i++)
        loop_run_once(f->loop, 1);
    /* Answer the held frame: the stage drains, the rest must come up without a socket event. */
    uint8_t *echo_h = malloc(12);
    memcpy(echo_h, first, 12);
    conn_send(f->held, echo_h, 12, NULL, 0);
    uint8_t *back = malloc(12 + n);
    client_read_all(f, ssl, back, 12 + n);
    assert_memory_equal(back, first, 12);
    assert_memory_equal(back + 12, frames, n);
    SSL_free(ssl);
    close(fd);
    free(frames);
    free(back);
}

static void test_peer_without_tls_is_closed(void **state)
{
    struct fx *f = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(net_adopt_with(f->net, sv[0], "test:2", &f->li), 0);
    uint8_t frame[8];
    frame_of(frame, (const uint8_t *)"ping", 4);
    assert_int_equal(write(sv[1], frame, sizeof(frame)), (ssize_t)sizeof(frame));
    for (int i = 0; i < 100 && net_connection_count(f->net) > 0; i++)
        loop_run_once(f->loop, 1);
    assert_int_equal(net_connection_count(f->net), 0);
    assert_int_equal(f->frames, 0);
    close(sv[1]);
}

static void test_client_without_certificate_is_refused(void **state)
{
    struct fx *f = *state;
    SSL_CTX *anon = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(anon), f->server_cert);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(net_adopt_with(f->net, sv[0], "test:3", &f->li), 0);
    SSL *ssl = SSL_new(anon);
    SSL_set_fd(ssl, sv[1]);
    SSL_set_connect_state(ssl);
    uint8_t frame[8];
    frame_of(frame, (const uint8_t *)"ping", 4);
    /* TLS 1.3: the client's handshake ends before the broker checks its certificate; the
     * refusal comes as an alert and a close, and no frame goes up. */
    for (int i = 0; i < 200 && net_connection_count(f->net) > 0; i++) {
        size_t w;
        SSL_write_ex(ssl, frame, sizeof(frame), &w);
        uint8_t b[16];
        size_t r;
        SSL_read_ex(ssl, b, sizeof(b), &r);
        ERR_clear_error();
        loop_run_once(f->loop, 1);
    }
    assert_int_equal(net_connection_count(f->net), 0);
    assert_int_equal(f->frames, 0);
    SSL_free(ssl);
    SSL_CTX_free(anon);
    close(sv[1]);
}

static void test_bad_keys_name_the_key(void **state)
{
    (void)state;
    char err[512];
    struct server_keys k = {{"ssl.keystore.type", "ssl.keystore.location"},
                            {"PEM", "/nonexistent/keystore.pem"}, 2};
    assert_null(tls_server_create("SSL", keys_get, &k, err, sizeof(err)));
    assert_non_null(strstr(err, "configuration ssl.keystore.location"));
    struct server_keys k2 = {{"ssl.keystore.type", "ssl.keystore.certificate.chain", "ssl.keystore.key"},
                             {"PEM", "-----BEGIN CERTIFICATE----- AAAA -----END CERTIFICATE-----",
                              "not a key"}, 3};
    assert_null(tls_server_create("SSL", keys_get, &k2, err, sizeof(err)));
    assert_non_null(strstr(err, "configuration ssl.keystore.key"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the broker: a write to a closed peer is an error, not a kill */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_principal_mapping_rules),
        cmocka_unit_test_setup_teardown(test_frames_through_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_left_inside_openssl_are_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_without_tls_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_without_certificate_is_refused, setup, teardown),
        cmocka_unit_test(test_bad_keys_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
