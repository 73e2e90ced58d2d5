/* transport: how a connection's bytes reach its socket — a small vtable (read, write iovecs,
 * send a file range, shutdown, close, extra readiness wanted). Plain TCP is the one real
 * implementation; TLS (issue 19) is another vtable, with no change to conn.c's framing. */
#ifndef GREGOR_NET_TRANSPORT_H
#define GREGOR_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* One connection's end of a transport. fd is the socket (owned: closed by ops->close); state
 * is the implementation's own (an SSL * for TLS; NULL for plain). */
struct transport {
    const struct transport_ops *ops;
    int fd;
    void *state;
};

/* Every call is non-blocking and answers as the system call it stands for: a byte count, or
 * -1 with errno (EAGAIN/EWOULDBLOCK: try again when the socket is ready; EINTR: try again
 * now; anything else: the connection is broken). read returns 0 at the peer's end of stream. */
struct transport_ops {
    const char *name;
    /* Sets up t for a connected, non-blocking socket fd (t->fd is set). 0, or -1 with errno
     * having freed what it made (the caller then closes fd). */
    int (*open)(struct transport *t);
    ssize_t (*read)(struct transport *t, void *buf, size_t len);
    ssize_t (*writev)(struct transport *t, const struct iovec *iov, int iovcnt);
    /* Sends len bytes of file_fd from *offset (advanced by what went), like sendfile(2).
     * NULL when the bytes must pass through this process (TLS encrypts them): conn.c then
     * reads the range in bounded chunks and writes each through writev. */
    ssize_t (*sendfile)(struct transport *t, int file_fd, off_t *offset, size_t len);
    /* Readiness the transport needs beyond what the connection asks for (LOOP_READ while a
     * TLS write waits for the peer's handshake bytes, LOOP_WRITE while a read must first send
     * some); 0 when none. NULL: never any (plain). */
    unsigned (*wants)(const struct transport *t);
    /* Ends the sending direction (TLS: close_notify first). Not called by conn.c yet: a close
     * today drops queued output, as before the seam. */
    int (*shutdown)(struct transport *t);
    /* Frees state and closes fd. */
    void (*close)(struct transport *t);
    /* Bytes already taken off the socket and waiting inside the transport (TLS: the rest of a
     * decrypted record): no socket readiness will announce them. NULL: never any. */
    bool (*pending)(const struct transport *t);
    /* True until the transport's own handshake is done (a TLS client that never finishes it
     * is closed after the frame timeout). NULL: there is none. */
    bool (*handshaking)(const struct transport *t);
    /* The principal the transport authenticated (TLS: "User:" and the client certificate's
     * subject as the listener's ssl.principal.mapping.rules map it; User:ANONYMOUS without
     * one). Writes it into out, NUL-terminated; 0, or -1 when none is known yet or it does not
     * fit. NULL: the transport authenticates no one. */
    int (*principal)(const struct transport *t, char *out, size_t len);
    /* A client end: the host it connected to, for the server certificate's check and SNI; after
     * open. 0, or -1 with errno. NULL: nothing to check (plain). */
    int (*set_peer)(struct transport *t, const char *host);
};

/* Plain TCP: read(2), send/sendmsg with MSG_NOSIGNAL, sendfile(2). */
extern const struct transport_ops transport_plain;
/* Plain TCP without sendfile: file ranges go through the copying path a TLS transport takes.
 * For tests of that path (and to measure it); not used by the broker. */
extern const struct transport_ops transport_plain_copying;

#endif
