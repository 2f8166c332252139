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
    /*
     * With RESOLVE_IN_ROOT or RESOLVE_BENEATH, a ".." walked while any mount or rename
     * happens anywhere on the host fails with EAGAIN (the kernel cannot prove it stayed
     * inside): an image's relative symlinks would then fail a create at random on a busy
     * host.  Retry a bounded number of times, as libpathrs and securejoin do.
     */
    for (int tries = 0;; tries++) {
        int fd = (int) PRC_RETRY(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
        if (fd >= 0 || errno != EAGAIN || tries == 64)
            return fd;
    }
}

/*
 * Join the container's v1 cgroups by writing "0" to each hierarchy's `tasks` file:
 * "move the calling thread".  A write of a pid to cgroup.procs takes the kernel's
 * global cgroup_threadgroup_rwsem for writing, and the first writer after a quiet
 * spell waits a full RCU grace period for it (13 ms on this 2-core VM, runc pays it
 * too).  Moving only the calling thread needs no threadgroup stability, so the kernel
 * skips that lock (cgroup_procs_write_start: `pid || threadgroup`), and the write
 * costs microseconds.  We are the only thread of this process (a raw clone copies
 * just the calling thread), so moving the thread moves the process; everything it
 * starts later inherits the cgroups.  It must run while we are still root in the
 * host's user namespace: in stage-1 before any setns (exec, joined namespaces), else
 * first thing in the init; the parent does not ask for it when the init is cloned
 * straight into a new user namespace (it writes cgroup.procs itself then).
 */
int prc_cgroups_joined;  /* a clone of stage-1 inherits this with the cgroups */


void prc_join_cgroups(const struct prc_plan *plan, int sync_fd)
{
    if (prc_cgroups_joined)
        return;
    for (int i = 0; i < plan->n_cgroup_join; i++) {
        int fd = (int) PRC_RETRY(openat(plan->cgroup_join_fds[i], "tasks", O_WRONLY | O_CLOEXEC));
        if (fd < 0 || PRC_RETRY(write(fd, "0", 1)) != 1)
            prc_fail(sync_fd, PRC_STAGE_CGROUP, errno, "join cgroup ", plan->cgroup_join_paths[i], NULL);
        close(fd);
    }
    /* host directories: no use for them any more, and none may reach the container
       (process.c closes every other such fd before the cwd is entered) */
    for (int i = 0; i < plan->n_cgroup_join; i++)
        close(plan->cgroup_join_fds[i]);
    prc_cgroups_joined = 1;
}

const char *prc_parse_hex(const char *p, unsigned long *v)
{
    unsigned long x = 0;
    const char *q = p;
    for (;; q++) {
        int d = (*q >= '0' && *q <= '9') ? *q - '0' : (*q >= 'a' && *q <= 'f') ? *q - 'a' + 10 : -1;
        if (d < 0)
            break;
        x = x * 16 + (unsigned long) d;
    }
    *v = x;
    return q > p ? q : NULL;
}

int prc_each_line(int fd, char *buf, size_t size, int (*fn)(char *line, void *ctx), void *ctx)
{
    size_t have = 0;
    int skipping = 0;
    for (;;) {
        ssize_t n = PRC_RETRY(read(fd, buf + have, size - 1 - have));
        if (n < 0)
            return -1;
        have += (size_t) n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', have - (size_t) (line - buf))) || (n == 0 && line < buf + have)) {
            if (nl)
                *nl = '\0';
            if (skipping) {
                skipping = 0;   /* the tail of an over-long line */
            } else {
                int r = fn(line, ctx);
                if (r)
                    return r;
            }
            if (!nl) {
                line = buf + have;
                break;
            }
            line = nl + 1;
        }
        if (n == 0)
            return 0;
        have -= (size_t) (line - buf);
        memmove(buf, line, have);
        if (have == size - 1) {
            have = 0;           /* a line longer than the buffer: drop it */
            skipping = 1;
        }
    }
}
