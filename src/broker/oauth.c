/* oauth: OAUTHBEARER's client first message, JWKS and JWS/JWT checks (see oauth.h). The JSON
 * reader is a bounded one-pass tokenizer (at most JSON_TOKENS_MAX values, JSON_DEPTH_MAX deep,
 * duplicate member names refused as jose4j does); base64url is strict (no padding, no other
 * characters); keys are built and signatures checked with OpenSSL's EVP. */
#include "broker/oauth.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "common/util.h"

#define JSON_TOKENS_MAX 512
#define JSON_DEPTH_MAX 16

/* ---- base64url (RFC 4648 5, unpadded as JWS wants it) ---- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes in[0..len) into out (cap bytes): the decoded length, or -1. */
static long b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    if (acc != 0) /* non-zero trailing bits: not the canonical encoding */
        return -1;
    return (long)o;
}

/* ---- JSON ---- */

enum jtype { J_OBJ, J_ARR, J_STR, J_NUM, J_LIT };
struct jtok {
    enum jtype type;
    int start, end; /* bytes; a string's without its quotes */
    int next;       /* the token after this value's subtree */
};
struct json {
    const char *s;
    size_t len, pos;
    struct jtok t[JSON_TOKENS_MAX];
    int n;
};

static void jws(struct json *j)
{
    while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                               j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

static int jnew(struct json *j, enum jtype type)
{
    if (j->n == JSON_TOKENS_MAX)
        return -1;
    j->t[j->n] = (struct jtok){type, (int)j->pos, (int)j->pos, 0};
    return j->n++;
}

static int jstring(struct json *j)
{
    int k = jnew(j, J_STR);
    if (k < 0)
        return -1;
    j->pos++; /* the opening quote */
    j->t[k].start = (int)j->pos;
    while (j->pos < j->len && j->s[j->pos] != '"') {
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (j->pos + 1 >= j->len)
                return -1;
            char e = j->s[j->pos + 1];
            if (e == 'u') {
                if (j->pos + 6 > j->len)
                    return -1;
                for (int i = 2; i < 6; i++)
                    if (!isxdigit((unsigned char)j->s[j->pos + (size_t)i]))
                        return -1;
                j->pos += 6;
                continue;
            }
            if (strchr("\"\\/bfnrt", e) == NULL || e == '\0')
                return -1;
            j->pos += 2;
            continue;
        }
        j->pos++;
    }
    if (j->pos >= j->len)
        return -1;
    j->t[k].end = (int)j->pos;
    j->pos++;
    j->t[k].next = j->n;
    return k;
}

static bool jsame_key(const struct json *j, int a, int b)
{
    int la = j->t[a].end - j->t[a].start, lb = j->t[b].end - j->t[b].start;
    return la == lb && memcmp(j->s + j->t[a].start, j->s + j->t[b].start, (size_t)la) == 0;
}

static int jvalue(struct json *j, int depth)
{
    if (depth > JSON_DEPTH_MAX)
        return -1;
    jws(j);
    if (j->pos >= j->len)
        return -1;
    char c = j->s[j->pos];
    if (c == '"')
        return jstring(j);
    if (c == '{' || c == '[') {
        int k = jnew(j, c == '{' ? J_OBJ : J_ARR);
        if (k < 0)
            return -1;
        j->pos++;
        jws(j);
        char close = c == '{' ? '}' : ']';
        if (j->pos < j->len && j->s[j->pos] == close) {
            j->pos++;
            j->t[k].next = j->n;
            return k;
        }
        for (;;) {
            jws(j);
            if (c == '{') {
                if (j->pos >= j->len || j->s[j->pos] != '"')
                    return -1;
                int key = jstring(j);
                if (key < 0)
                    return -1;
                /* A name with an escape is refused, so that names compare as bytes: "\u0073ub"
                 * cannot stand in for a second "sub". */
                if (memchr(j->s + j->t[key].start, '\\',
                           (size_t)(j->t[key].end - j->t[key].start)) != NULL)
                    return -1;
                /* Names must be unique (jose4j's parser refuses a repeated one). */
                for (int m = k + 1; m < key; m = j->t[j->t[m].next].next)
                    if (jsame_key(j, m, key))
                        return -1;
                jws(j);
                if (j->pos >= j->len || j->s[j->pos] != ':')
                    return -1;
                j->pos++;
            }
            if (jvalue(j, depth + 1) < 0)
                return -1;
            jws(j);
            if (j->pos >= j->len)
                return -1;
            if (j->s[j->pos] == ',') {
                j->pos++;
                continue;
            }
            if (j->s[j->pos] != close)
                return -1;
            j->pos++;
            j->t[k].next = j->n;
            return k;
        }
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if (j->len - j->pos >= l && memcmp(j->s + j->pos, lits[i], l) == 0) {
            int k = jnew(j, J_LIT);
            if (k < 0)
                return -1;
            j->pos += l;
            j->t[k].end = (int)j->pos;
            j->t[k].next = j->n;
            return k;
        }
    }
    if (c != '-' && !isdigit((unsigned char)c))
        return -1;
    int k = jnew(j, J_NUM);
    if (k < 0)
        return -1;
    while (j->pos < j->len && strchr("+-.eE0123456789", j->s[j->pos]) != NULL &&
           j->s[j->pos] != '\0')
        j->pos++;
    j->t[k].end = (int)j->pos;
    j->t[k].next = j->n;
    return k;
}

/* Parses text as one JSON object: 0, or -1. */
static int json_parse(struct json *j, const char *text, size_t len)
{
    if (len > INT32_MAX / 2)
        return -1;
    j->s = text;
    j->len = len;
    j->pos = 0;
    j->n = 0;
    jws(j);
    if (j->pos >= len || text[j->pos] != '{' || jvalue(j, 0) != 0)
        return -1;
    jws(j);
    return j->pos == len ? 0 : -1;
}

/* The value of member key of object obj, or -1. */
static int jget(const struct json *j, int obj, const char *key)
{
    if (obj < 0 || j->t[obj].type != J_OBJ)
        return -1;
    size_t kl = strlen(key);
    for (int m = obj + 1; m < j->t[obj].next; m = j->t[m + 1].next)
        if ((size_t)(j->t[m].end - j->t[m].start) == kl &&
            memcmp(j->s + j->t[m].start, key, kl) == 0)
            return m + 1;
    return -1;
}

static void put_utf8(char *out, size_t cap, size_t *o, uint32_t cp, bool *ok)
{
    uint8_t b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*o + n >= cap || cp == 0) {
        *ok = false;
        return;
    }
    memcpy(out + *o, b, n);
    *o += n;
}

static uint32_t hex4(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (uint32_t)(isdigit((unsigned char)c) ? c - '0'
                                                          : tolower((unsigned char)c) - 'a' + 10);
    }
    return v;
}

/* String token k decoded (escapes, no NUL) into out: 0, or -1 (not a string, too long). */
static int jstr(const struct json *j, int k, char *out, size_t cap)
{
    if (k < 0 || j->t[k].type != J_STR || cap == 0)
        return -1;
    const char *p = j->s + j->t[k].start, *end = j->s + j->t[k].end;
    size_t o = 0;
    bool ok = true;
    while (p < end && ok) {
        if (*p != '\\') {
            if (o + 1 >= cap)
                return -1;
            out[o++] = *p++;
            continue;
        }
        char e = p[1];
        if (e == 'u') { /* checked by jstring: 4 hex digits follow */
            uint32_t cp = hex4(p + 2);
            p += 6;
            if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = hex4(p + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            put_utf8(out, cap, &o, cp, &ok);
            continue;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *at = strchr(from, e);
        GREGOR_ASSERT(at != NULL && e != '\0'); /* checked by jstring */
        if (o + 1 >= cap)
            return -1;
        out[o++] = to[at - from];
        p += 2;
    }
    if (!ok)
        return -1;
    out[o] = '\0';
    return 0;
}

/* Number token k as a double: 0, or -1 (not a number, not finite). */
static int jnum(const struct json *j, int k, double *v)
{
    if (k < 0 || j->t[k].type != J_NUM)
        return -1;
    char buf[64];
    int l = j->t[k].end - j->t[k].start;
    if (l <= 0 || l >= (int)sizeof(buf))
        return -1;
    memcpy(buf, j->s + j->t[k].start, (size_t)l);
    buf[l] = '\0';
    char *e;
    *v = strtod(buf, &e);
    return *e == '\0' && isfinite(*v) ? 0 : -1;
}

/* ---- the client's first message (RFC 7628 3.1, OAuthBearerClientInitialResponse) ---- */

int oauth_client_first_parse(const uint8_t *msg, size_t len, char *authzid, size_t authzid_len,
                             const char **token, size_t *token_len, char *err, size_t errlen)
{
    const char *s = (const char *)msg, *end = s + len;
    *token = NULL;
    *token_len = 0;
    authzid[0] = '\0';
    /* gs2 header: "n," or "y," then "a=<saslname>" or nothing, then "," */
    if (len < 3 || (s[0] != 'n' && s[0] != 'y') || s[1] != ',') {
        snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
        return -1;
    }
    const char *p = s + 2;
    if (p < end && *p == 'a') {
        if (p + 1 >= end || p[1] != '=') {
            snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
            return -1;
        }
        p += 2;
        size_t o = 0;
        while (p < end && *p != ',') {
            char c = *p;
            if (c == '=') { /* saslname: =2C is ',', =3D is '=' */
                if (end - p >= 3 && p[1] == '2' && p[2] == 'C')
                    c = ',';
                else if (end - p >= 3 && p[1] == '3' && p[2] == 'D')
                    c = '=';
                else
                    c = '\0';
                p += 2;
            }
            if (c == '\0' || c == '\x01' || o + 1 >= authzid_len) {
                snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
                return -1;
            }
            authzid[o++] = c;
            p++;
        }
        authzid[o] = '\0';
    }
    if (p >= end || *p != ',' || p + 1 >= end || p[1] != '\x01') {
        snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
        return -1;
    }
    p += 2;
    /* key=value\x01 pairs, then a final \x01 */
    int pairs = 0;
    while (p < end && *p != '\x01') {
        const char *sep = memchr(p, '\x01', (size_t)(end - p));
        const char *eq = sep != NULL ? memchr(p, '=', (size_t)(sep - p)) : NULL;
        if (eq == NULL || eq == p || ++pairs > 64) {
            snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
            return -1;
        }
        for (const char *k = p; k < eq; k++)
            if (!isalpha((unsigned char)*k)) {
                snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
                return -1;
            }
        if (eq - p == 4 && memcmp(p, "auth", 4) == 0) {
            /* "<scheme> <token>": the scheme Bearer (any case), the token [-_.a-zA-Z0-9]+ */
            const char *v = eq + 1, *sp = memchr(v, ' ', (size_t)(sep - v));
            if (sp == NULL || sp - v != 6 || strncasecmp(v, "bearer", 6) != 0 || *token != NULL) {
                snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
                return -1;
            }
            while (sp < sep && *sp == ' ')
                sp++;
            for (const char *t = sp; t < sep; t++)
                if (!isalnum((unsigned char)*t) && *t != '-' && *t != '_' && *t != '.') {
                    snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
                    return -1;
                }
            if (sp == sep) {
                snprintf(err, errlen, "Invalid OAUTHBEARER client first message");
                return -1;
            }
            *token = sp;
            *token_len = (size_t)(sep - sp);
        }
        p = sep + 1;
    }
    if (p + 1 != end || *token == NULL) {
        snprintf(err, errlen, *token == NULL ? "Invalid OAUTHBEARER client first message: "
                 "no auth" : "Invalid OAUTHBEARER client first message");
        return -1;
    }
    return 0;
}

/* ---- JWKS ---- */

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* Member key of obj base64url-decoded into out: its length, or -1. */
static long jb64(const struct json *j, int obj, const char *key, uint8_t *out, size_t cap)
{
    int k = jget(j, obj, key);
    if (k < 0 || j->t[k].type != J_STR)
        return -1;
    return b64url_decode(j->s + j->t[k].start, (size_t)(j->t[k].end - j->t[k].start), out, cap);
}

static int key_parse(const struct json *j, int obj, struct oauth_key *key)
{
    char kty[16], use[16];
    if (jstr(j, jget(j, obj, "kty"), kty, sizeof(kty)) != 0 ||
        jstr(j, jget(j, obj, "kid"), key->kid, sizeof(key->kid)) != 0)
        return -1;
    if (jget(j, obj, "use") >= 0 &&
        (jstr(j, jget(j, obj, "use"), use, sizeof(use)) != 0 || strcmp(use, "sig") != 0))
        return -1; /* an encryption key */
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        return -1;
    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "RSA") == 0) {
        uint8_t n[1024], e[16];
        long nl = jb64(j, obj, "n", n, sizeof(n)), el = jb64(j, obj, "e", e, sizeof(e));
        long nz = 0;
        while (nz < nl && n[nz] == 0)
            nz++;
        BIGNUM *bn = NULL, *be = NULL;
        /* jose4j refuses an RSA key under 2048 bits */
        if (nl > 0 && el > 0 && nl - nz >= 256 && (bn = BN_bin2bn(n + nz, (int)(nl - nz), NULL)) &&
            (be = BN_bin2bn(e, (int)el, NULL)) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
            pkey = pkey_from_params("RSA", bld);
        BN_free(bn);
        BN_free(be);
        key->kty = OAUTH_KTY_RSA;
    } else if (strcmp(kty, "EC") == 0) {
        char crv[16];
        uint8_t x[64], y[64], pub[1 + 2 * 48];
        int bits = 0;
        const char *group = NULL;
        if (jstr(j, jget(j, obj, "crv"), crv, sizeof(crv)) == 0) {
            if (strcmp(crv, "P-256") == 0)
                bits = 256, group = "prime256v1";
            else if (strcmp(crv, "P-384") == 0)
                bits = 384, group = "secp384r1";
        }
        long xl = jb64(j, obj, "x", x, sizeof(x)), yl = jb64(j, obj, "y", y, sizeof(y));
        long cl = bits / 8;
        if (group != NULL && xl == cl && yl == cl) {
            pub[0] = 4;
            memcpy(pub + 1, x, (size_t)cl);
            memcpy(pub + 1 + cl, y, (size_t)cl);
            if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
                OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                                 (size_t)(1 + 2 * cl)))
                pkey = pkey_from_params("EC", bld);
        }
        key->kty = OAUTH_KTY_EC;
        key->ec_bits = bits;
    }
    OSSL_PARAM_BLD_free(bld);
    if (pkey == NULL)
        return -1;
    key->pkey = pkey;
    return 0;
}

void oauth_jwks_free(struct oauth_jwks *jw)
{
    for (int i = 0; i < jw->n; i++)
        EVP_PKEY_free(jw->keys[i].pkey);
    jw->n = 0;
}

int oauth_jwks_parse(const char *text, size_t len, struct oauth_jwks *out, char *err,
                     size_t errlen)
{
    out->n = 0;
    struct json *j = malloc(sizeof(*j));
    if (j == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int keys;
    if (len > OAUTH_JWKS_MAX || json_parse(j, text, len) != 0 ||
        (keys = jget(j, 0, "keys")) < 0 || j->t[keys].type != J_ARR) {
        snprintf(err, errlen, "not a JWKS (a JSON object with a \"keys\" array, at most %d "
                 "bytes, %d values, %d deep)", OAUTH_JWKS_MAX, JSON_TOKENS_MAX, JSON_DEPTH_MAX);
        free(j);
        return -1;
    }
    for (int k = keys + 1; k < j->t[keys].next; k = j->t[k].next) {
        if (j->t[k].type != J_OBJ || out->n == OAUTH_KEYS_MAX)
            continue;
        struct oauth_key *key = &out->keys[out->n];
        memset(key, 0, sizeof(*key));
        if (key_parse(j, k, key) == 0)
            out->n++; /* a key of another type or an unusable one is skipped, as jose4j */
    }
    free(j);
    GREGOR_ASSERT(out->n >= 0 && out->n <= OAUTH_KEYS_MAX);
    return 0;
}

/* ---- JWS / JWT ---- */

static bool verify(const struct oauth_key *key, const char *alg, const uint8_t *data,
                   size_t data_len, const uint8_t *sig, size_t sig_len)
{
    const EVP_MD *md = NULL;
    bool ec = alg[0] == 'E', pss = alg[0] == 'P';
    if (strcmp(alg + 2, "256") == 0)
        md = EVP_sha256();
    else if (strcmp(alg + 2, "384") == 0)
        md = EVP_sha384();
    else if (strcmp(alg + 2, "512") == 0)
        md = EVP_sha512();
    if (md == NULL || key->kty != (ec ? OAUTH_KTY_EC : OAUTH_KTY_RSA))
        return false;
    uint8_t der[160];
    if (ec) {
        /* JWS carries r || s, each as long as the curve's order; OpenSSL wants DER */
        size_t cl = (size_t)key->ec_bits / 8;
        if ((size_t)EVP_MD_get_size(md) * 8 != (size_t)key->ec_bits || sig_len != 2 * cl)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)cl, NULL), *s = BN_bin2bn(sig + cl, (int)cl, NULL);
        if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return false;
        }
        int dl = i2d_ECDSA_SIG(es, NULL);
        uint8_t *dp = der;
        if (dl <= 0 || dl > (int)sizeof(der) || i2d_ECDSA_SIG(es, &dp) != dl) {
            ECDSA_SIG_free(es);
            return false;
        }
        ECDSA_SIG_free(es);
        sig = der;
        sig_len = (size_t)dl;
    }
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = mctx != NULL && EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key->pkey) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(mctx, sig, sig_len, data, data_len) == 1;
    EVP_MD_CTX_free(mctx);
    return ok;
}

static bool alg_supported(const char *alg)
{
    static const char *const algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                       "PS512", "ES256", "ES384"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(alg, algs[i]) == 0)
            return true;
    return false;
}

/* Whether the aud claim (a string or an array of strings) holds one of the expected audiences
 * (comma separated). */
static bool audience_ok(const struct json *j, int aud, const char *expected)
{
    char want[OAUTH_NAME_MAX * 4], have[OAUTH_NAME_MAX];
    snprintf(want, sizeof(want), "%s", expected);
    int first = aud, last = aud + 1;
    if (j->t[aud].type == J_ARR) {
        first = aud + 1;
        last = j->t[aud].next;
    }
    for (int k = first; k < last; k = j->t[k].next) {
        if (jstr(j, k, have, sizeof(have)) != 0)
            return false;
        char tmp[sizeof(want)];
        memcpy(tmp, want, sizeof(want));
        for (char *save = NULL, *w = strtok_r(tmp, ",", &save); w != NULL;
             w = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*w))
                w++;
            size_t wl = strlen(w);
            while (wl > 0 && isspace((unsigned char)w[wl - 1]))
                w[--wl] = '\0';
            if (strcmp(w, have) == 0)
                return true;
        }
    }
    return false;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto out; } while (0)

enum oauth_result oauth_jwt_validate(const char *tok, size_t len, const struct oauth_jwks *jwks,
                                     const struct oauth_rules *rules, int64_t now_ms,
                                     char *principal, size_t principal_len, int64_t *exp_ms,
                                     char *err, size_t errlen)
{
    enum oauth_result rc = OAUTH_INVALID;
    struct json *j = malloc(sizeof(*j));
    uint8_t *buf = malloc(2 * OAUTH_TOKEN_MAX);
    if (j == NULL || buf == NULL)
        FAIL("out of memory");
    if (len > OAUTH_TOKEN_MAX)
        FAIL("the token is longer than %d bytes", OAUTH_TOKEN_MAX);
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        FAIL("Malformed JWT provided; expected three sections (header, payload, and signature)");
    uint8_t *hdr = buf, *payload = buf + OAUTH_TOKEN_MAX / 2, *sig = buf + OAUTH_TOKEN_MAX;
    long hl = b64url_decode(tok, (size_t)(d1 - tok), hdr, OAUTH_TOKEN_MAX / 2);
    long pl = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, OAUTH_TOKEN_MAX / 2);
    long sl = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), sig, OAUTH_TOKEN_MAX);
    if (hl <= 0 || pl <= 0 || sl < 0)
        FAIL("Malformed JWT provided; a section is not base64url");
    if (json_parse(j, (const char *)hdr, (size_t)hl) != 0)
        FAIL("Malformed JWT provided; the header is not a JSON object");
    char alg[16], kid[OAUTH_NAME_MAX] = "";
    if (jstr(j, jget(j, 0, "alg"), alg, sizeof(alg)) != 0)
        FAIL("The JWS header has no alg");
    if (!alg_supported(alg))
        FAIL("'%s' is not a permitted algorithm", alg);
    if (jget(j, 0, "crit") >= 0)
        FAIL("The JWS header has an unrecognized critical extension");
    bool has_kid = jget(j, 0, "kid") >= 0;
    if (has_kid && jstr(j, jget(j, 0, "kid"), kid, sizeof(kid)) != 0)
        FAIL("The JWS header's kid is not a string");
    /* The key: the kid's (or, without a kid, any of the alg's key type) */
    bool found = false, verified = false;
    for (int i = 0; i < jwks->n && !verified; i++) {
        if (has_kid && strcmp(jwks->keys[i].kid, kid) != 0)
            continue;
        found = true;
        verified = verify(&jwks->keys[i], alg, (const uint8_t *)tok, (size_t)(d2 - tok), sig,
                          (size_t)sl);
    }
    if (!found) {
        rc = OAUTH_UNKNOWN_KID;
        FAIL("Unable to find a suitable verification key for JWS w/ header {\"alg\":\"%s\","
             "\"kid\":\"%s\"}", alg, kid);
    }
    if (!verified)
        FAIL("JWS signature is invalid");
    if (json_parse(j, (const char *)payload, (size_t)pl) != 0)
        FAIL("Malformed JWT provided; the payload is not a JSON object");
    double exp, iat, nbf;
    double now = (double)now_ms / 1000.0, skew = (double)rules->skew_s;
    if (jget(j, 0, "exp") < 0)
        FAIL("No Expiration Time (exp) claim present.");
    if (jnum(j, jget(j, 0, "exp"), &exp) != 0)
        FAIL("The value of the 'exp' claim is not the expected type");
    if (jget(j, 0, "iat") < 0)
        FAIL("No Issued At (iat) claim present.");
    if (jnum(j, jget(j, 0, "iat"), &iat) != 0)
        FAIL("The value of the 'iat' claim is not the expected type");
    if (now >= exp + skew)
        FAIL("The JWT is no longer valid - the evaluation time is on or after the Expiration "
             "Time (exp=%.0f) claim value (even when providing %lld seconds of leeway to "
             "account for clock skew).", exp, (long long)rules->skew_s);
    if (jget(j, 0, "nbf") >= 0) {
        if (jnum(j, jget(j, 0, "nbf"), &nbf) != 0)
            FAIL("The value of the 'nbf' claim is not the expected type");
        if (now + skew < nbf)
            FAIL("The JWT is not yet valid as the evaluation time is before the Not Before "
                 "(nbf=%.0f) claim time (even when providing %lld seconds of leeway to account "
                 "for clock skew).", nbf, (long long)rules->skew_s);
    }
    char text[OAUTH_NAME_MAX];
    int aud = jget(j, 0, "aud");
    if (rules->audience != NULL && rules->audience[0] != '\0') {
        if (aud < 0)
            FAIL("No Audience (aud) claim present.");
        if (!audience_ok(j, aud, rules->audience))
            FAIL("Audience (aud) claim does not contain an acceptable identifier.");
    } else if (aud >= 0) {
        /* jose4j's default: an aud claim with no expected audience configured is refused */
        FAIL("Audience (aud) claim present in the JWT but no expected audience value(s) were "
             "provided to the JWT Consumer.");
    }
    if (rules->issuer != NULL && rules->issuer[0] != '\0') {
        int iss = jget(j, 0, "iss");
        if (iss < 0)
            FAIL("No Issuer (iss) claim present but was expecting %s", rules->issuer);
        if (jstr(j, iss, text, sizeof(text)) != 0 || strcmp(text, rules->issuer) != 0)
            FAIL("Issuer (iss) claim value does not match expected value of %s",
                 rules->issuer);
    }
    int scope = jget(j, 0, "scope");
    if (rules->scope_claim != NULL)
        scope = jget(j, 0, rules->scope_claim);
    /* Kafka: a string or a list of strings, each non-empty once trimmed; any other type
     * counts as no scope. */
    if (scope >= 0 && (j->t[scope].type == J_STR || j->t[scope].type == J_ARR)) {
        int first = scope, last = scope + 1;
        if (j->t[scope].type == J_ARR) {
            first = scope + 1;
            last = j->t[scope].next;
        }
        for (int k = first; k < last; k = j->t[k].next) {
            if (jstr(j, k, text, sizeof(text)) != 0)
                FAIL("%s value must be a list of strings", rules->scope_claim);
            const char *c = text;
            while (isspace((unsigned char)*c))
                c++;
            if (*c == '\0')
                FAIL("%s value must not contain empty or null strings", rules->scope_claim);
        }
    }
    const char *sub_name = rules->sub_claim != NULL ? rules->sub_claim : "sub";
    int sub = jget(j, 0, sub_name);
    if (sub < 0 || jstr(j, sub, text, sizeof(text)) != 0)
        FAIL("%s value must be a non-empty string (at most %d bytes)", sub_name,
             OAUTH_NAME_MAX - 1);
    /* ClaimValidationUtils: the value trimmed, and not empty */
    char *t = text;
    while (isspace((unsigned char)*t))
        t++;
    size_t tl = strlen(t);
    while (tl > 0 && isspace((unsigned char)t[tl - 1]))
        t[--tl] = '\0';
    if (tl == 0)
        FAIL("%s value must be non-empty", sub_name);
    if (tl >= principal_len)
        FAIL("%s value is too long", sub_name);
    memcpy(principal, t, tl + 1);
    *exp_ms = exp * 1000.0 > 9.0e15 ? (int64_t)9e15 : (int64_t)(exp * 1000.0);
    rc = OAUTH_VALID;
out:
    free(j);
    free(buf);
    return rc;
}
