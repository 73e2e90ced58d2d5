/* wire: a small blocking Kafka client for the few requests librdkafka cannot send (a BROKER
 * resource named "", Kafka's cluster-wide default), on gregor's generated codecs. */
#ifndef GREGOR_CLI_WIRE_H
#define GREGOR_CLI_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"

/* The largest response frame we accept; a DescribeConfigs of every broker key with synonyms
 * is a few tens of KB, so this only stops a hostile or confused peer. */
#define CLI_WIRE_MAX_RESPONSE (16u << 20)
/* What decoding one response may allocate (strings and arrays in the arena). */
#define CLI_WIRE_ARENA_LIMIT (64u << 20)

struct cli_wire {
    int fd;                 /* -1 when not connected */
    int timeout_ms;         /* for the connect, and for each call (send + receive) */
    int32_t correlation_id; /* of the last request sent */
    char error[512];        /* why the last failing call failed */
};

/* Connects to the first reachable host:port of a bootstrap list ("h1:p1,[::1]:p2") within
 * timeout_ms for each address. Returns 0, or -1 with w->error set. */
int cli_wire_connect(struct cli_wire *w, const char *bootstrap, int timeout_ms);
/* Sends one request (the generated request struct for key/version) and decodes its response
 * into *response, allocated in arena (the caller resets it). Returns 0, or -1 with w->error
 * set (the connection is then closed). */
int cli_wire_call(struct cli_wire *w, int16_t key, int16_t version, const void *request,
                  struct arena *arena, void **response);
void cli_wire_close(struct cli_wire *w);

#endif
