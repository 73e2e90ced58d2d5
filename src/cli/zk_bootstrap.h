/* zk_bootstrap: --zookeeper as Kafka 3.x's tools used it — the live brokers registered in the
 * given ZooKeeper (/brokers/ids), turned into a bootstrap list. */
#ifndef GREGOR_CLI_ZK_BOOTSTRAP_H
#define GREGOR_CLI_ZK_BOOTSTRAP_H

#include <stddef.h>

/* Kafka's tools waited this long for the ZooKeeper session (KafkaZkClient's 30 s connection
 * timeout); $GREGOR_ZK_CONNECT_TIMEOUT_MS (1..300000) shortens or lengthens it. */
#define CLI_ZK_CONNECT_TIMEOUT_MS 30000
#define CLI_ZK_CONNECT_TIMEOUT_MAX_MS 300000
/* At most this many registered brokers are read into the bootstrap list (the first by id). */
#define CLI_ZK_BROKERS_MAX 16
/* Room for the bootstrap list: CLI_ZK_BROKERS_MAX "[host]:port" entries and commas. */
#define CLI_ZK_SERVERS_MAX (CLI_ZK_BROKERS_MAX * 272)

/* Connects to connect ("h1:p1,h2:p2/chroot"), lists /brokers/ids and writes the PLAINTEXT
 * endpoint of each live broker (by id, at most CLI_ZK_BROKERS_MAX) to out as "h:p,h:p".
 * Returns 0, or -1 after printing why on stderr: no session within the timeout, no broker
 * registered ("No brokers found in ZK."), or a ZooKeeper error. Blocks at most about the
 * timeout plus one request per broker. */
int cli_zk_bootstrap(const char *connect, char *out, size_t outlen);

#endif
