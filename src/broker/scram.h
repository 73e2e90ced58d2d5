/* scram: SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as Kafka's ScramSaslServer and ScramFormatter
 * do it — salted credentials, the server side of the exchange, its message parsers. Pure logic
 * on OpenSSL's PBKDF2/HMAC/digests: no socket, no broker; the unit tests and the fuzz target
 * drive it directly. */
#ifndef GREGOR_BROKER_SCRAM_H
#define GREGOR_BROKER_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum scram_mechanism { SCRAM_SHA_256, SCRAM_SHA_512 };

#define SCRAM_KEY_MAX 64        /* SHA-512's digest */
#define SCRAM_SALT_MAX 64
#define SCRAM_NAME_MAX 256      /* a user name, decoded */
#define SCRAM_MESSAGE_MAX 1024  /* any one message of the exchange */
#define SCRAM_MIN_ITERATIONS 4096 /* Kafka's ScramMechanism minIterations */
#define SCRAM_MAX_ITERATIONS 16384 /* Kafka's AlterUserScramCredentials bound */

/* What the broker keeps of a password (Kafka's ScramCredential). */
struct scram_credential {
    uint8_t salt[SCRAM_SALT_MAX];
    size_t salt_len;
    uint8_t stored_key[SCRAM_KEY_MAX];
    uint8_t server_key[SCRAM_KEY_MAX];
    int iterations;
};

/* "SCRAM-SHA-256" / "SCRAM-SHA-512" -> mechanism; -1 for another name. */
int scram_mechanism_from_name(const char *name, enum scram_mechanism *m);
const char *scram_mechanism_name(enum scram_mechanism m);
size_t scram_key_len(enum scram_mechanism m);

/* Salts and hashes password as ScramFormatter.generateCredential. 0, or -1 (OpenSSL failed or
 * bounds). */
int scram_credential_make(enum scram_mechanism m, const char *password, size_t password_len,
                          const uint8_t *salt, size_t salt_len, int iterations,
                          struct scram_credential *out);
/* The same from a password already salted (AlterUserScramCredentials' SaltedPassword). */
int scram_credential_from_salted(enum scram_mechanism m, const uint8_t *salted, size_t salted_len,
                                 const uint8_t *salt, size_t salt_len, int iterations,
                                 struct scram_credential *out);
/* Kafka's ZooKeeper form "salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>". */
int scram_credential_parse(enum scram_mechanism m, const char *text,
                           struct scram_credential *out);
int scram_credential_format(enum scram_mechanism m, const struct scram_credential *c, char *out,
                            size_t out_len);

/* One line of the broker's scram-credentials file, "<mechanism>\t<user>\t<credential form>"
 * (no newline): parse fills *m, user (NUL-terminated, fewer than user_len bytes, no tab or
 * newline) and *c; 0, 1 for a blank or '#' line (nothing filled), -1 when malformed. Format
 * writes what parse reads back to the same entry; -1 when it does not fit or user cannot be
 * kept on one line. */
int scram_credentials_line_parse(const char *line, enum scram_mechanism *m, char *user,
                                 size_t user_len, struct scram_credential *c);
int scram_credentials_line_format(enum scram_mechanism m, const char *user,
                                  const struct scram_credential *c, char *out, size_t out_len);

/* Looks a user's credential up: 0 found, -1 unknown. */
typedef int (*scram_lookup_fn)(void *ctx, enum scram_mechanism m, const char *user,
                               struct scram_credential *out);

enum scram_state { SCRAM_WANT_CLIENT_FIRST, SCRAM_WANT_CLIENT_FINAL, SCRAM_COMPLETE,
                   SCRAM_FAILED };

/* One server side exchange. */
struct scram_server {
    enum scram_mechanism mech;
    enum scram_state state;
    char user[SCRAM_NAME_MAX];
    char gs2_header[SCRAM_NAME_MAX + 8]; /* "n,," or "n,a=authzid,": the channel binding */
    char client_first_bare[SCRAM_MESSAGE_MAX];
    char server_first[SCRAM_MESSAGE_MAX];
    char nonce[SCRAM_MESSAGE_MAX];      /* client nonce + server nonce */
    struct scram_credential cred;
};

/* How an evaluation ended when it did not succeed: as Kafka tells SaslException (a generic
 * "invalid credentials" answer) from SaslAuthenticationException (its own message). */
enum scram_result { SCRAM_OK = 0, SCRAM_ERR_GENERIC = -1, SCRAM_ERR_MESSAGE = -2 };

void scram_server_init(struct scram_server *s, enum scram_mechanism m);
/* Feeds the client's next message; on SCRAM_OK *out holds the answer (NUL-terminated,
 * out_len bytes at most). Otherwise err says why (for the log, or the client when
 * SCRAM_ERR_MESSAGE). The server nonce is server_nonce (NULL: 32 random bytes, base64). */
enum scram_result scram_server_step(struct scram_server *s, const uint8_t *msg, size_t len,
                                    scram_lookup_fn lookup, void *ctx, const char *server_nonce,
                                    char *out, size_t out_len, char *err, size_t err_len);

/* base64 (standard alphabet, padded). Encode: out_len >= 4 * ceil(n / 3) + 1; returns the
 * length or -1. Decode: returns the length or -1 (bad input or too long). */
int scram_b64_encode(const uint8_t *in, size_t n, char *out, size_t out_len);
int scram_b64_decode(const char *in, size_t n, uint8_t *out, size_t out_len);

/* One client side exchange (RFC 5802), as Kafka's ScramSaslClient: client-first with a fresh
 * nonce, client-final with the proof, then the server's signature checked. */
struct scram_client {
    enum scram_mechanism mech;
    int step;                              /* messages received so far (0..2) */
    char nonce[64];                        /* the client nonce */
    char client_first_bare[SCRAM_MESSAGE_MAX];
    uint8_t server_signature[SCRAM_KEY_MAX]; /* what the server-final must carry */
};
void scram_client_init(struct scram_client *c, enum scram_mechanism m);
/* Feeds the server's last message (NULL at the start): 1 with the next message in out
 * (NUL-terminated), 0 when the server's signature was checked (complete), -1 with err.
 * client_nonce: NULL for 32 random characters (tests pass their own). */
int scram_client_step(struct scram_client *c, const char *user, const char *password,
                      const uint8_t *in, size_t in_len, const char *client_nonce, char *out,
                      size_t out_len, char *err, size_t err_len);

#endif
