/* sock: the socket chores the Kafka listener (conn.c) and the HTTP listener (http.c) share —
 * a bound, listening, non-blocking socket from "host" and port, a peer's address as text, and the
 * accept back-off's next pause. */
#ifndef GREGOR_NET_SOCK_H
#define GREGOR_NET_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

/* A listening socket on host:port (host NULL, "" or "0.0.0.0": any IPv4 address;
 * "localhost": 127.0.0.1; an IPv6 literal when it holds ':'), SO_REUSEADDR, non-blocking,
 * close-on-exec. The fd, or -1 with errno (EINVAL for a host that is no address literal or a
 * port outside 0..65535). */
int sock_listen(const char *host, int port, int backlog);
/* An accepted peer's address as text into host (cap >= INET6_ADDRSTRLEN; "?" for a family
 * other than IPv4/IPv6); returns its port (0 then). */
int sock_peer_host(const struct sockaddr_storage *ss, char *host, size_t cap);
/* What accept(2)'s errno means for a listener: out of descriptors or memory (back off), nothing
 * to take now (EAGAIN, EINTR, a connection aborted in the backlog: say nothing), or a failure
 * worth a log line. */
enum sock_accept_failure { SOCK_ACCEPT_BACK_OFF, SOCK_ACCEPT_QUIET, SOCK_ACCEPT_LOG };
enum sock_accept_failure sock_accept_failure(int err);
/* The accept back-off's next pause: min_ms first, then doubling up to max_ms. */
int sock_backoff_next(int current_ms, int min_ms, int max_ms);

#endif
