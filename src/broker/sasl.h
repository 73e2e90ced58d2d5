/* sasl: authentication on SASL_PLAINTEXT and SASL_SSL listeners as Kafka's
 * SaslServerAuthenticator does it — SaslHandshake v0 (raw tokens) and v1 (SaslAuthenticate),
 * PLAIN and SCRAM-SHA-256/512, the JAAS entries per listener and mechanism, the stored SCRAM
 * credentials, the delayed answer to a failed login. */
#ifndef GREGOR_BROKER_SASL_H
#define GREGOR_BROKER_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"

/* Reads the SASL listeners' keys (sasl.enabled.mechanisms, the JAAS entries,
 * connection.failed.authentication.delay.ms) and the stored credentials into b->sasl.
 * 0, or -1 with Kafka's message in err (a mechanism without its JAAS entry). */
int sasl_setup(struct broker *b, char *err, size_t errlen);
void sasl_teardown(struct broker *b);
/* At shutdown (the SaslAuthenticate entry's hook): answers the failed logins still waiting out
 * connection.failed.authentication.delay.ms, so none is left behind. */
void sasl_shutdown(struct broker *b);

/* The gate before authentication: NULL when c may send api_key now, else why it may not (the
 * connection is then closed unanswered, as Kafka does). */
const char *sasl_request_refusal(struct broker *b, struct conn *c, int16_t api_key, char *buf,
                                 size_t buflen);
/* After SaslHandshake v0 the frames are raw SASL tokens, not requests: true when r's frame
 * was one (then r is answered, pending or freed here). */
bool sasl_raw_token(struct broker *b, struct request *r);

/* A cluster: the SCRAM credentials follow the users' configs on ZooKeeper (after
 * cluster_create; loaded by cluster_await_security) instead of the credentials file. */
void sasl_cluster_attach(struct broker *b);
/* Connections to other brokers (inter.broker.listener.name) on a SASL listener:
 * sasl.mechanism.inter.broker.protocol (Kafka's default GSSAPI is refused: no Kerberos) must
 * be enabled on that listener, and its JAAS entry gives username and password. 0 (nothing
 * to do for other listeners), or -1 with the reason in err. */
int sasl_client_setup(struct broker *b, char *err, size_t errlen);
void sasl_client_teardown(struct broker *b);
/* Sets cc's SASL fields for connections to other brokers (none without a SASL listener). */
struct client_config;
void sasl_client_config(struct broker *b, struct client_config *cc);

/* The console's login (console_api.c): whether any SASL credentials are configured (a SASL
 * listener's JAAS users or stored SCRAM credentials), and a user's password checked as a
 * PLAIN or SCRAM login would check it (constant-time compares): 0 when it matches, else -1. */
bool sasl_login_configured(struct broker *b);
int sasl_password_check(struct broker *b, const char *user, const char *password);
/* connection.failed.authentication.delay.ms (Kafka's default 100): how long a failed login
 * waits for its answer (the console's 401 too). */
int64_t sasl_failed_delay_ms(struct broker *b);
#endif
