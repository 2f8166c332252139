/* Async-signal-safe helpers for the child: strings, error records, sync records. */
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/openat2.h>

#include "prc.h"

size_t prc_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = 0;
    while (src[n] && n + 1 < size) {
        dst[n] = src[n];
        n++;
    }
    if (size)
        dst[n] = '\0';
    while (src[n])
        n++;
    return n;
}

size_t prc_strlcat(char *dst, const char *src, size_t size)
{
    size_t used = 0;
    while (used < size && dst[used])
        used++;
    if (used == size)
        return used;
    return used + prc_strlcpy(dst + used, src, size - used);
}

void prc_utoa(char *buf, size_t size, unsigned long long v)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v && i < (int) sizeof(tmp));
    size_t n = 0;
    while (i > 0 && n + 1 < size)
        buf[n++] = tmp[--i];
    buf[n] = '\0';
}

void prc_fail(int sync_fd, int stage, int err, ...)
{
    struct prc_msg msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = PRC_MSG_ERROR;
    msg.stage = stage;
    msg.err = err;
    va_list ap;
    va_start(ap, err);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL)
        prc_strlcat(msg.text, s, sizeof(msg.text));
    va_end(ap);
    /* the parent reads at most one error; ignore failures, it will see EOF anyway */
    (void) prc_sync_send(sync_fd, &msg, -1);
    _exit(1);
}

void prc_child_send(int sync_fd, int type, int value)
{
    struct prc_msg msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = type;
    msg.value = value;
    (void) prc_sync_send(sync_fd, &msg, -1);
}

void prc_child_expect(int sync_fd, int type)
{
    struct prc_msg msg;
    int fd = -1;
    int r = prc_sync_recv(sync_fd, &msg, &fd);
    if (fd >= 0)
        close(fd);
    /* EOF or a wrong record: the parent gave up (or died); nobody is left to tell */
    if (r < 0 || msg.type != type)
        _exit(1);
}

int prc_sync_send(int sock, const struct prc_msg *msg, int fd)
{
    struct iovec iov = { .iov_base = (void *) msg, .iov_len = sizeof(*msg) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n = PRC_RETRY(sendmsg(sock, &mh, MSG_NOSIGNAL));
    if (n < 0)
        return -errno;
    return n == (ssize_t) sizeof(*msg) ? 0 : -EIO;
}

int prc_sync_recv(int sock, struct prc_msg *msg, int *fd)
{
    struct iovec iov = { .iov_base = msg, .iov_len = sizeof(*msg) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    memset(msg, 0, sizeof(*msg));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    *fd = -1;
    ssize_t n = PRC_RETRY(recvmsg(sock, &mh, MSG_CMSG_CLOEXEC));
    if (n < 0)
        return -errno;
    if (n == 0)
        return -EPIPE;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    if (n != (ssize_t) sizeof(*msg))
        return -EIO;
    msg->text[sizeof(msg->text) - 1] = '\0';
    return 0;
}

int prc_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t) flags;
    how.resolve = resolve;
    return (int) PRC_RETRY(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

int prc_write_file(const char *path, const char *data, size_t len)
{
    int fd = (int) PRC_RETRY(open(path, O_WRONLY | O_CLOEXEC));
    if (fd < 0)
        return -1;
    ssize_t n = PRC_RETRY(write(fd, data, len));
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    return 0;
}
