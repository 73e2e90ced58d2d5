/* transport: the plain TCP transport (the same system calls conn.c made directly before the
 * seam: one send per memory piece, sendfile per file range) and its copying variant. */
#include "net/transport.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

static int plain_open(struct transport *t)
{
    t->state = NULL;
    return 0;
}

static ssize_t plain_read(struct transport *t, void *buf, size_t len)
{
    return read(t->fd, buf, len);
}

/* One piece is the common case (conn.c writes a memory piece at a time): send(2) as before,
 * without building a msghdr. */
static ssize_t plain_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
    if (iovcnt == 1)
        return send(t->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    return sendmsg(t->fd, &m, MSG_NOSIGNAL);
}

static ssize_t plain_sendfile(struct transport *t, int file_fd, off_t *offset, size_t len)
{
    return sendfile(t->fd, file_fd, offset, len);
}

static int plain_shutdown(struct transport *t)
{
    return shutdown(t->fd, SHUT_WR);
}

static void plain_close(struct transport *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

const struct transport_ops transport_plain = {
    .name = "plain",
    .open = plain_open,
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .wants = NULL,
    .shutdown = plain_shutdown,
    .close = plain_close,
};

const struct transport_ops transport_plain_copying = {
    .name = "plain-copying",
    .open = plain_open,
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = NULL,
    .wants = NULL,
    .shutdown = plain_shutdown,
    .close = plain_close,
};
