/* test_scram: the SCRAM server (src/broker/scram.c) against RFC 7677's SCRAM-SHA-256 example
 * exchange (user "user", password "pencil", its nonces, salt and 4096 iterations), the
 * credential form Kafka keeps in ZooKeeper, and the refusals of RFC 5802's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/scram.h"

/* RFC 7677 section 3 */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static int lookup_pencil(void *ctx, enum scram_mechanism m, const char *user,
                         struct scram_credential *out)
{
    (void)ctx;
    if (strcmp(user, "user") != 0)
        return -1;
    uint8_t salt[32];
    int n = scram_b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt));
    assert_int_equal(n, 16);
    return scram_credential_make(m, "pencil", 6, salt, (size_t)n, 4096, out);
}

static enum scram_result step(struct scram_server *s, const char *msg, char *out, size_t cap)
{
    char err[256];
    return scram_server_step(s, (const uint8_t *)msg, strlen(msg), lookup_pencil, NULL,
                             RFC_SERVER_NONCE, out, cap, err, sizeof(err));
}

static void test_rfc7677_exchange(void **state)
{
    (void)state;
    struct scram_server s;
    char out[SCRAM_MESSAGE_MAX];
    scram_server_init(&s, SCRAM_SHA_256);
    assert_int_equal(step(&s, RFC_CLIENT_FIRST, out, sizeof(out)), SCRAM_OK);
    assert_string_equal(out, RFC_SERVER_FIRST);
    assert_int_equal(step(&s, RFC_CLIENT_FINAL, out, sizeof(out)), SCRAM_OK);
    assert_string_equal(out, RFC_SERVER_FINAL);
    assert_int_equal(s.state, SCRAM_COMPLETE);
    assert_string_equal(s.user, "user");
    /* nothing after completion */
    assert_int_equal(step(&s, RFC_CLIENT_FINAL, out, sizeof(out)), SCRAM_ERR_GENERIC);
}

/* The client side produces RFC 7677's messages from its nonce and the server's first
 * message, and accepts only the server's right signature. */
static void test_rfc7677_client(void **state)
{
    (void)state;
    struct scram_client c;
    char out[SCRAM_MESSAGE_MAX], err[256];
    scram_client_init(&c, SCRAM_SHA_256);
    assert_int_equal(scram_client_step(&c, "user", "pencil", NULL, 0, "rOprNGfwEbeRWgbNEkqO",
                                       out, sizeof(out), err, sizeof(err)), 1);
    assert_string_equal(out, RFC_CLIENT_FIRST);
    assert_int_equal(scram_client_step(&c, "user", "pencil", (const uint8_t *)RFC_SERVER_FIRST,
                                       strlen(RFC_SERVER_FIRST), NULL, out, sizeof(out), err,
                                       sizeof(err)), 1);
    assert_string_equal(out, RFC_CLIENT_FINAL);
    struct scram_client bad = c;
    const char *wrong = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    assert_int_equal(scram_client_step(&bad, "user", "pencil", (const uint8_t *)wrong,
                                       strlen(wrong), NULL, out, sizeof(out), err, sizeof(err)), -1);
    const char *e = "e=invalid-proof";
    bad = c;
    assert_int_equal(scram_client_step(&bad, "user", "pencil", (const uint8_t *)e, strlen(e),
                                       NULL, out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid-proof"));
    assert_int_equal(scram_client_step(&c, "user", "pencil", (const uint8_t *)RFC_SERVER_FINAL,
                                       strlen(RFC_SERVER_FINAL), NULL, out, sizeof(out), err,
                                       sizeof(err)), 0);
    /* A server nonce that does not extend ours, or too few iterations, is refused. */
    scram_client_init(&c, SCRAM_SHA_256);
    scram_client_step(&c, "user", "pencil", NULL, 0, "abc", out, sizeof(out), err, sizeof(err));
    const char *other = "r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    assert_int_equal(scram_client_step(&c, "user", "pencil", (const uint8_t *)other,
                                       strlen(other), NULL, out, sizeof(out), err, sizeof(err)), -1);
    scram_client_init(&c, SCRAM_SHA_256);
    scram_client_step(&c, "user", "pencil", NULL, 0, "abc", out, sizeof(out), err, sizeof(err));
    const char *few = "r=abc123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10";
    assert_int_equal(scram_client_step(&c, "user", "pencil", (const uint8_t *)few, strlen(few),
                                       NULL, out, sizeof(out), err, sizeof(err)), -1);
    /* saslname escaping */
    scram_client_init(&c, SCRAM_SHA_512);
    assert_int_equal(scram_client_step(&c, "a=b,c", "pw", NULL, 0, "n1", out, sizeof(out), err,
                                       sizeof(err)), 1);
    assert_string_equal(out, "n,,n=a=3Db=2Cc,r=n1");
}

static void test_refusals(void **state)
{
    (void)state;
    struct scram_server s;
    char out[SCRAM_MESSAGE_MAX];
    /* a wrong proof (one character changed) */
    scram_server_init(&s, SCRAM_SHA_256);
    assert_int_equal(step(&s, RFC_CLIENT_FIRST, out, sizeof(out)), SCRAM_OK);
    char bad[] = RFC_CLIENT_FINAL;
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(step(&s, bad, out, sizeof(out)), SCRAM_ERR_GENERIC);
    assert_int_equal(s.state, SCRAM_FAILED);
    /* the client nonce repeated alone (librdkafka < 2.6.1) */
    scram_server_init(&s, SCRAM_SHA_256);
    assert_int_equal(step(&s, RFC_CLIENT_FIRST, out, sizeof(out)), SCRAM_OK);
    assert_int_equal(step(&s, "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                          out, sizeof(out)), SCRAM_ERR_GENERIC);
    /* a channel binding other than the gs2 header sent ("biws" = "n,,") */
    scram_server_init(&s, SCRAM_SHA_256);
    assert_int_equal(step(&s, RFC_CLIENT_FIRST, out, sizeof(out)), SCRAM_OK);
    assert_int_equal(step(&s, "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                          out, sizeof(out)), SCRAM_ERR_GENERIC);
    /* unknown user, channel binding asked for, a bad saslname, an unknown extension */
    const char *firsts[] = {"n,,n=nobody,r=abc", "p=tls-unique,,n=user,r=abc", "y,,n=user,r=abc",
                            "n,,n=us=er,r=abc", "n,,n=user,r=abc,foo=1", "n,,n=user",
                            "n,,n=user,r=", "n,,r=abc,n=user", "n,,n=user,r=abc,tokenauth=true"};
    for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
        scram_server_init(&s, SCRAM_SHA_256);
        assert_int_equal(step(&s, firsts[i], out, sizeof(out)), SCRAM_ERR_GENERIC);
    }
    /* an authzid other than the user: Kafka's own message */
    scram_server_init(&s, SCRAM_SHA_256);
    assert_int_equal(step(&s, "n,a=admin,n=user,r=abc", out, sizeof(out)), SCRAM_ERR_MESSAGE);
    /* the same authzid is fine, and =2C / =3D decode */
    scram_server_init(&s, SCRAM_SHA_256);
    assert_int_equal(step(&s, "n,a=user,n=user,r=abc", out, sizeof(out)), SCRAM_OK);
}

static void test_credential_form(void **state)
{
    (void)state;
    struct scram_credential c, back;
    const uint8_t salt[] = "0123456789abcdef";
    for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512; m++) {
        assert_int_equal(scram_credential_make(m, "alice-secret", 12, salt, 16, 8192, &c), 0);
        char text[512];
        assert_int_equal(scram_credential_format(m, &c, text, sizeof(text)), 0);
        assert_non_null(strstr(text, "salt=MDEyMzQ1Njc4OWFiY2RlZg==,stored_key="));
        assert_non_null(strstr(text, ",iterations=8192"));
        assert_int_equal(scram_credential_parse(m, text, &back), 0);
        assert_int_equal(back.iterations, 8192);
        assert_memory_equal(back.stored_key, c.stored_key, scram_key_len(m));
        assert_memory_equal(back.server_key, c.server_key, scram_key_len(m));
        /* a key of the other digest's length is refused */
        assert_int_not_equal(scram_credential_parse(m == SCRAM_SHA_256 ? SCRAM_SHA_512
                                                                       : SCRAM_SHA_256, text, &back), 0);
    }
    assert_int_not_equal(scram_credential_parse(SCRAM_SHA_256, "salt=@@,iterations=1", &back), 0);
}

/* The scram-credentials file's lines: a user name keeps every byte but tab and newline ('\r'
 * included), blank and '#' lines are skipped, and the writer refuses what the reader could not
 * read back. */
static void test_credentials_line(void **state)
{
    (void)state;
    struct scram_credential c, back;
    static const uint8_t salt[16] = "0123456789abcdef";
    assert_int_equal(scram_credential_make(SCRAM_SHA_512, "pw", 2, salt, sizeof(salt), 4096, &c), 0);
    char line[1024], user[SCRAM_NAME_MAX];
    enum scram_mechanism m;
    assert_int_equal(scram_credentials_line_format(SCRAM_SHA_512, "car\rol", &c, line, sizeof(line)), 0);
    assert_non_null(strstr(line, "SCRAM-SHA-512\tcar\rol\tsalt="));
    assert_int_equal(scram_credentials_line_parse(line, &m, user, sizeof(user), &back), 0);
    assert_int_equal(m, SCRAM_SHA_512);
    assert_string_equal(user, "car\rol");
    assert_memory_equal(back.stored_key, c.stored_key, 64);
    assert_int_equal(back.iterations, 4096);
    assert_int_equal(scram_credentials_line_parse("", &m, user, sizeof(user), &back), 1);
    assert_int_equal(scram_credentials_line_parse("# x", &m, user, sizeof(user), &back), 1);
    assert_int_equal(scram_credentials_line_format(SCRAM_SHA_512, "a\tb", &c, line, sizeof(line)), -1);
    assert_int_equal(scram_credentials_line_format(SCRAM_SHA_512, "a\nb", &c, line, sizeof(line)), -1);
    assert_int_equal(scram_credentials_line_format(SCRAM_SHA_512, "alice", &c, line, 40), -1);
    assert_int_equal(scram_credentials_line_parse("SCRAM-SHA-512\talice", &m, user, sizeof(user), &back), -1);
    assert_int_equal(scram_credentials_line_parse("SCRAM-SHA-1\talice\tsalt=", &m, user, sizeof(user), &back), -1);
    assert_int_equal(scram_credentials_line_format(SCRAM_SHA_512, "alice", &c, line, sizeof(line)), 0);
    assert_int_equal(scram_credentials_line_parse(line, &m, user, 5, &back), -1); /* "alice" needs 6 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_exchange),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_rfc7677_client),
        cmocka_unit_test(test_credential_form),
        cmocka_unit_test(test_credentials_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
