/* oauth: the server side of SASL/OAUTHBEARER (RFC 7628, KIP-255, KIP-768) as Kafka's
 * OAuthBearerSaslServer and OAuthBearerValidatorCallbackHandler (ValidatorAccessTokenValidator)
 * check it: the client's first message, a JWS-signed JWT checked against the keys of a JWKS
 * file (RS256/384/512, PS256, ES256/384), its exp / nbf / iat with the clock skew, aud and iss
 * when configured, the principal from the sub claim. Knows no sockets or broker; every input
 * is bounded (token, JSON tokens and depth, keys). */
#ifndef GREGOR_BROKER_OAUTH_H
#define GREGOR_BROKER_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OAUTH_TOKEN_MAX 8192       /* a JWT, compact form */
#define OAUTH_JWKS_MAX (64 * 1024) /* the JWKS file */
#define OAUTH_KEYS_MAX 32          /* keys kept from one JWKS */
#define OAUTH_NAME_MAX 256         /* a principal, kid, issuer or audience */
/* The error challenge of RFC 7628 3.2.2, as Kafka's OAuthBearerSaslServer sends it. */
#define OAUTH_INVALID_TOKEN "{\"status\":\"invalid_token\"}"

struct oauth_key {
    char kid[OAUTH_NAME_MAX];
    void *pkey;  /* EVP_PKEY */
    int kty;     /* OAUTH_KTY_* */
    int ec_bits; /* 256 or 384 for EC keys */
};
enum { OAUTH_KTY_RSA = 1, OAUTH_KTY_EC = 2 };

struct oauth_jwks {
    struct oauth_key keys[OAUTH_KEYS_MAX];
    int n;
};

struct oauth_rules {
    const char *audience;    /* sasl.oauthbearer.expected.audience: comma separated, or NULL */
    const char *issuer;      /* sasl.oauthbearer.expected.issuer, or NULL */
    const char *sub_claim;   /* sasl.oauthbearer.sub.claim.name (sub) */
    const char *scope_claim; /* sasl.oauthbearer.scope.claim.name (scope) */
    int64_t skew_s;          /* sasl.oauthbearer.clock.skew.seconds (30) */
};

/* The client's first message "n,[a=authzid],\x01auth=Bearer <token>\x01[k=v\x01]*\x01"
 * (OAuthBearerClientInitialResponse): 0 with the authzid (decoded) and the token (pointing
 * into msg), or -1 with why in err. */
int oauth_client_first_parse(const uint8_t *msg, size_t len, char *authzid, size_t authzid_len,
                             const char **token, size_t *token_len, char *err, size_t errlen);

/* Parses a JWKS ({"keys":[...]}): RSA (n, e) and EC (crv P-256 / P-384, x, y) keys with a kid;
 * other keys are skipped. 0, or -1 with why in err (out is then empty). */
int oauth_jwks_parse(const char *text, size_t len, struct oauth_jwks *out, char *err,
                     size_t errlen);
void oauth_jwks_free(struct oauth_jwks *j);

enum oauth_result { OAUTH_VALID = 0, OAUTH_INVALID = -1, OAUTH_UNKNOWN_KID = -2 };
/* Checks a compact JWS token against jwks and rules at now_ms (wall clock). OAUTH_VALID with
 * the principal name (the sub claim) and the token's exp in ms; otherwise why in err. */
enum oauth_result oauth_jwt_validate(const char *tok, size_t len, const struct oauth_jwks *jwks,
                                     const struct oauth_rules *rules, int64_t now_ms,
                                     char *principal, size_t principal_len, int64_t *exp_ms,
                                     char *err, size_t errlen);

#endif
