/* tls: the TLS transport (OpenSSL 3) — one SSL_CTX per listener built from Kafka's ssl.* keys,
 * and a transport_ops whose connections do the handshake, reads and writes non-blocking. */
#ifndef GREGOR_NET_TLS_H
#define GREGOR_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/transport.h"

/* Looks up an ssl.* key for a listener: the value (NULL when unset) and, in *key_used, the key
 * that gave it (listener.name.<l>.ssl.keystore.location before ssl.keystore.location), for the
 * error messages. */
typedef const char *(*tls_config_get_fn)(void *arg, const char *key, const char **key_used);

struct tls_server;

/* An SSL_CTX for one listener from its keys: ssl.keystore.type (PEM, PKCS12, JKS refused),
 * ssl.keystore.location / .password, ssl.keystore.certificate.chain / ssl.keystore.key,
 * ssl.key.password, ssl.truststore.type / .location / .password / .certificates,
 * ssl.client.auth, ssl.enabled.protocols, ssl.protocol, ssl.cipher.suites,
 * ssl.principal.mapping.rules. NULL with a message naming the key in err. */
struct tls_server *tls_server_create(const char *listener, tls_config_get_fn get, void *arg,
                                     char *err, size_t errlen);
/* The client side for connections to a listener of other brokers (inter.broker.listener.name):
 * the listener's key store as client certificate (optional), its trust store for the server's
 * certificate (else the system's), ssl.endpoint.identification.algorithm (https, the default:
 * the host given to set_peer must match a SAN; empty: no check), protocols and ciphers. */
struct tls_server *tls_client_create(const char *listener, tls_config_get_fn get, void *arg,
                                     char *err, size_t errlen);
/* The transport of the listener's connections: lives as long as s. */
const struct transport_ops *tls_server_transport(struct tls_server *s);
/* Kafka's dynamic listener SSL configs (KIP-226): whether ssl.<key> may change at runtime
 * (the key and trust store keys of SslConfigs.RECONFIGURABLE_CONFIGS). */
bool tls_key_reconfigurable(const char *key);
/* Rebuilds s's context from the keys get gives now, if what it is built from changed (a
 * reconfigurable key's value, or a store file's identity or modification time). With check,
 * the new leaf certificate must keep the old subject DN and SANs unless ssl.allow.dn.changes /
 * ssl.allow.san.changes are true (Kafka's SslFactory). With commit, new connections get the
 * new context; those already made keep theirs. 1 rebuilt (or would be), 0 nothing changed,
 * -1 refused with Kafka's message in err (s unchanged). File I/O and parsing: a rare admin
 * action, on the caller's thread. */
int tls_server_reload(struct tls_server *s, tls_config_get_fn get, void *arg, bool check,
                      bool commit, char *err, size_t errlen);
/* Frees s; every connection made with its transport must be closed first. */
void tls_server_free(struct tls_server *s);

/* Kafka's ssl.principal.mapping.rules: a list of RULE:pattern/replacement/[LU] and DEFAULT.
 * Parses rules into an opaque list (NULL rules or "" = DEFAULT). NULL with a message in err. */
struct tls_principal_rules;
struct tls_principal_rules *tls_principal_rules_parse(const char *rules, char *err, size_t errlen);
void tls_principal_rules_free(struct tls_principal_rules *r);
/* The principal name for a distinguished name as Java's X500Principal.getName() writes it
 * ("CN=alice,OU=eng,O=corp"): the first rule that matches; DEFAULT is the name itself. 0, or -1
 * when no rule matches or out is too small. */
int tls_principal_map(const struct tls_principal_rules *r, const char *dn, char *out, size_t len);

#endif
