/* fuzz_oauth: OAUTHBEARER's parsers (src/broker/oauth.c) on arbitrary bytes: the first byte
 * picks the client first message parser (its token then checked as a JWT), the JWKS parser, or
 * the JWT check against a fixed JWKS (an EC P-256 and an RSA key), or the claims check: the
 * input as a token's payload, signed here with the EC key, so the claims reader is reached too.
 * Nothing may crash, leak or read past the input; a valid result must carry a principal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "broker/oauth.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char JWKS[] = "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"e1\", \"crv\": \"P-256\", \"x\": \"8sEZxDQDBTtZL0QrKWNG8nzgByQzyxezZChAjX17JM4\", \"y\": \"UvnvZAcp71UAlTGQqaYaWQiJh9M1suWay816Cd2QIDE\"}, {\"kty\": \"RSA\", \"kid\": \"r1\", \"n\": \"6Hf7Ss6NGzbTytTplTtJUsvl-htHJCCIyqxX968vySXY8bjY6Sr4S771ocX1e3AC4my0daVweWC3CzzKy2wx8DLZGH_j-sCYOwJkuhScQLRwuww5aoiVJVLUmsD6KIT06uqNEko3LwzeQbOgAXEnJpBvgdAfxxdmzaK21pGSls_J7S8cILva3cUh4GL80N6FYZomV7EUnbDyHt8D4UWINEmc6WGw7_zLQY_ycnUqgSlOl9f5AgbrqMLd3fI1vHl28NaC0MDybXKQszUdYWzDuA49HCiYOBo5pza0-LgSa7uujJGFgPQYAbdyN0CwpQXMaP6aFw2WvayCPxLO_MzJRQ\", \"e\": \"AQAB\"}]}";

/* The private half of kid e1. */
static const char EC_PRIVATE_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMErbHtAWmhdL3ORU\n"
    "W7/s6+vlKXzj9+IIWecvDp1kC+yhRANCAATywRnENAMFO1kvRCspY0byfOAHJDPL\n"
    "F7NkKECNfXskzlL572QHKe9VAJUxkKmmGlkIiYfTNbLlmsvNegndkCAx\n"
    "-----END PRIVATE KEY-----\n";

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    return o;
}

/* "<header>.<payload>.<ES256 signature>" for payload, signed with EC_PRIVATE_PEM: its length. */
static size_t sign_es256(EVP_PKEY *key, const uint8_t *payload, size_t n, char *out)
{
    static const char hdr[] = "{\"alg\":\"ES256\",\"kid\":\"e1\"}";
    size_t o = b64url((const uint8_t *)hdr, strlen(hdr), out);
    out[o++] = '.';
    o += b64url(payload, n, out + o);
    uint8_t der[128], raw[64];
    size_t dl = sizeof(der);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    GREGOR_ASSERT(m != NULL && EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, key) == 1 &&
                  EVP_DigestSign(m, der, &dl, (const uint8_t *)out, o) == 1);
    EVP_MD_CTX_free(m);
    const uint8_t *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    GREGOR_ASSERT(sig != NULL);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
    ECDSA_SIG_free(sig);
    out[o++] = '.';
    return o + b64url(raw, sizeof(raw), out + o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static EVP_PKEY *priv;
    static struct oauth_jwks fixed;
    static bool ready;
    char err[512], principal[OAUTH_NAME_MAX], authzid[256];
    if (!ready) {
        GREGOR_ASSERT(oauth_jwks_parse(JWKS, strlen(JWKS), &fixed, err, sizeof(err)) == 0);
        GREGOR_ASSERT(fixed.n == 2);
        BIO *bio = BIO_new_mem_buf(EC_PRIVATE_PEM, -1);
        priv = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        GREGOR_ASSERT(priv != NULL);
        ready = true;
    }
    if (size == 0)
        return 0;
    uint8_t mode = data[0] % 4;
    bool audience = (data[0] & 4) != 0;
    data++;
    size--;
    /* A copy of exactly size bytes so ASan sees any read past the input. */
    char *in = malloc(size ? size : 1);
    GREGOR_ASSERT(in != NULL);
    memcpy(in, data, size);
    struct oauth_rules rules = {audience ? "aud1,aud2" : NULL, "iss", "sub", "scope", 30};
    int64_t exp_ms;
    if (mode == 0) {
        const char *tok;
        size_t tl;
        if (oauth_client_first_parse((const uint8_t *)in, size, authzid, sizeof(authzid), &tok,
                                     &tl, err, sizeof(err)) == 0) {
            GREGOR_ASSERT(tok >= in && tok + tl <= in + size && tl > 0);
            GREGOR_ASSERT(strlen(authzid) < sizeof(authzid));
            oauth_jwt_validate(tok, tl, &fixed, &rules, 1700000000000, principal,
                               sizeof(principal), &exp_ms, err, sizeof(err));
        }
    } else if (mode == 1) {
        struct oauth_jwks j;
        if (oauth_jwks_parse(in, size, &j, err, sizeof(err)) == 0) {
            GREGOR_ASSERT(j.n >= 0 && j.n <= OAUTH_KEYS_MAX);
            oauth_jwks_free(&j);
        }
    } else if (mode == 3) {
        if (size <= 4096) {
            char *tok = malloc(8192);
            GREGOR_ASSERT(tok != NULL);
            size_t tl = sign_es256(priv, (const uint8_t *)in, size, tok);
            if (oauth_jwt_validate(tok, tl, &fixed, &rules, 1700000000000, principal,
                                   sizeof(principal), &exp_ms, err, sizeof(err)) == OAUTH_VALID)
                GREGOR_ASSERT(principal[0] != '\0');
            free(tok);
        }
    } else if (oauth_jwt_validate(in, size, &fixed, &rules, 1700000000000, principal,
                                  sizeof(principal), &exp_ms, err, sizeof(err)) == OAUTH_VALID) {
        GREGOR_ASSERT(principal[0] != '\0');
    }
    free(in);
    return 0;
}
