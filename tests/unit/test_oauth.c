/* test_oauth: OAUTHBEARER's parsers (src/broker/oauth.c) on the edges a client or a JWKS file
 * can reach: the client first message, base64url and JSON limits, and the claims rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/oauth.h"

/* An EC P-256 (kid e1) and an RSA 2048 (kid r1) key, and a token signed by e1 with
 * {"sub":"alice","iat":1700000000,"exp":1700000600,"iss":"iss","aud":["aud2"],"scope":["a","b"]}. */
static const char JWKS[] = "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"e1\", \"crv\": \"P-256\", \"x\": \"8sEZxDQDBTtZL0QrKWNG8nzgByQzyxezZChAjX17JM4\", \"y\": \"UvnvZAcp71UAlTGQqaYaWQiJh9M1suWay816Cd2QIDE\"}, {\"kty\": \"RSA\", \"kid\": \"r1\", \"n\": \"6Hf7Ss6NGzbTytTplTtJUsvl-htHJCCIyqxX968vySXY8bjY6Sr4S771ocX1e3AC4my0daVweWC3CzzKy2wx8DLZGH_j-sCYOwJkuhScQLRwuww5aoiVJVLUmsD6KIT06uqNEko3LwzeQbOgAXEnJpBvgdAfxxdmzaK21pGSls_J7S8cILva3cUh4GL80N6FYZomV7EUnbDyHt8D4UWINEmc6WGw7_zLQY_ycnUqgSlOl9f5AgbrqMLd3fI1vHl28NaC0MDybXKQszUdYWzDuA49HCiYOBo5pza0-LgSa7uujJGFgPQYAbdyN0CwpQXMaP6aFw2WvayCPxLO_MzJRQ\", \"e\": \"AQAB\"}]}";
static const char TOKEN[] = "eyJhbGciOiAiRVMyNTYiLCAia2lkIjogImUxIn0.eyJzdWIiOiAiYWxpY2UiLCAiaWF0IjogMTcwMDAwMDAwMCwgImV4cCI6IDE3MDAwMDA2MDAsICJpc3MiOiAiaXNzIiwgImF1ZCI6IFsiYXVkMiJdLCAic2NvcGUiOiBbImEiLCAiYiJdfQ.VE87ELZWySoa25IWGTXDeJYkTC2EcsNHA6gAiSj3bCYdNYK9iwOVwXshC4aGkky0y6gJdAQpUgSvWrhYaR-G_Q";
#define NOW 1700000100000LL

static int first(const char *msg, char *authzid, const char **tok, size_t *tl)
{
    char err[256];
    return oauth_client_first_parse((const uint8_t *)msg, strlen(msg), authzid, 64, tok, tl, err,
                                    sizeof(err));
}

static void test_client_first_message(void **state)
{
    (void)state;
    char authzid[64];
    const char *tok;
    size_t tl;
    assert_int_equal(first("n,,\x01" "auth=Bearer abc.def-_\x01\x01", authzid, &tok, &tl), 0);
    assert_int_equal(tl, 9);
    assert_memory_equal(tok, "abc.def-_", 9);
    assert_string_equal(authzid, "");
    assert_int_equal(first("n,a=a=2Cb=3D,\x01host=x\x01" "auth=bearer t\x01\x01", authzid, &tok, &tl), 0);
    assert_string_equal(authzid, "a,b=");
    assert_int_equal(tl, 1);
    static const char *const bad[] = {
        "", "n,,", "n,,\x01\x01", "p,,\x01" "auth=Bearer t\x01\x01", "n,,\x01" "auth=Bearer t\x01",
        "n,,\x01" "auth=Basic t\x01\x01", "n,,\x01" "auth=Bearer t!\x01\x01",
        "n,,\x01" "auth=Bearer \x01\x01", "n,a=x=41,\x01" "auth=Bearer t\x01\x01",
        "n,,\x01" "auth=Bearer t\x01" "auth=Bearer u\x01\x01", "n,,\x01" "k1=v\x01" "auth=Bearer t\x01\x01",
        "n,,\x01" "auth=Bearer t\x01\x01x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_not_equal(first(bad[i], authzid, &tok, &tl), 0);
}

static void test_jwks_limits(void **state)
{
    (void)state;
    struct oauth_jwks j;
    char err[256];
    assert_int_equal(oauth_jwks_parse(JWKS, strlen(JWKS), &j, err, sizeof(err)), 0);
    assert_int_equal(j.n, 2);
    oauth_jwks_free(&j);
    static const char *const bad[] = {
        "", "[]", "{\"keys\":{}}", "{\"keys\":[]} x", "{\"keys\":[],\"keys\":[]}",
        "{\"keys\":[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]}", "{\"keys\":[\"\\x\"]}",
        "{\"keys\":[\"\\u12\"]}", "{\"keys\":[tru]}",
        "{\"keys\":[],\"\\u006beys\":[]}", /* an escaped name could hide a duplicate */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_not_equal(oauth_jwks_parse(bad[i], strlen(bad[i]), &j, err, sizeof(err)), 0);
    /* unusable keys are skipped: a short RSA modulus, an unknown curve, padded base64url */
    const char *skip = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"s\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
                       "{\"kty\":\"EC\",\"kid\":\"c\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"},"
                       "{\"kty\":\"RSA\",\"kid\":\"p\",\"n\":\"AQ==\",\"e\":\"AQAB\"}]}";
    assert_int_equal(oauth_jwks_parse(skip, strlen(skip), &j, err, sizeof(err)), 0);
    assert_int_equal(j.n, 0);
}

static void test_token_rules(void **state)
{
    (void)state;
    struct oauth_jwks j;
    char err[512], principal[OAUTH_NAME_MAX];
    int64_t exp;
    assert_int_equal(oauth_jwks_parse(JWKS, strlen(JWKS), &j, err, sizeof(err)), 0);
    struct oauth_rules r = {"aud1, aud2", "iss", "sub", "scope", 30};
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &j, &r, NOW, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_VALID);
    assert_string_equal(principal, "alice");
    assert_int_equal(exp, 1700000600000LL);
    /* exp + skew is the last moment; 30 s past exp still passes, 31 s does not */
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &j, &r, 1700000629000LL, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_VALID);
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &j, &r, 1700000631000LL, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_INVALID);
    struct oauth_rules wrong_aud = {"aud3", "iss", "sub", "scope", 30};
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &j, &wrong_aud, NOW, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_INVALID);
    struct oauth_rules no_aud = {NULL, "iss", "sub", "scope", 30};
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &j, &no_aud, NOW, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_INVALID);
    struct oauth_rules wrong_iss = {"aud2", "other", "sub", "scope", 30};
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &j, &wrong_iss, NOW, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_INVALID);
    struct oauth_rules other_sub = {"aud2", "iss", "iss", "scope", 30};
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &j, &other_sub, NOW, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_VALID);
    assert_string_equal(principal, "iss");
    /* one byte of the signature changed; the signature cut; a trailing dot */
    char t[sizeof(TOKEN) + 1];
    memcpy(t, TOKEN, sizeof(TOKEN));
    t[sizeof(TOKEN) - 4] = t[sizeof(TOKEN) - 4] == 'A' ? 'B' : 'A';
    assert_int_equal(oauth_jwt_validate(t, strlen(t), &j, &r, NOW, principal, sizeof(principal),
                                        &exp, err, sizeof(err)), OAUTH_INVALID);
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN) - 10, &j, &r, NOW, principal,
                                        sizeof(principal), &exp, err, sizeof(err)), OAUTH_INVALID);
    memcpy(t, TOKEN, sizeof(TOKEN));
    strcat(t, ".");
    assert_int_equal(oauth_jwt_validate(t, strlen(t), &j, &r, NOW, principal, sizeof(principal),
                                        &exp, err, sizeof(err)), OAUTH_INVALID);
    oauth_jwks_free(&j);
    /* without the key: unknown kid */
    struct oauth_jwks empty = {.n = 0};
    assert_int_equal(oauth_jwt_validate(TOKEN, strlen(TOKEN), &empty, &r, NOW, principal,
                                        sizeof(principal), &exp, err, sizeof(err)),
                     OAUTH_UNKNOWN_KID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_first_message),
        cmocka_unit_test(test_jwks_limits),
        cmocka_unit_test(test_token_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
