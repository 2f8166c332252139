/*
 * prc_userns_fd: a user namespace that exists only to carry id mappings, for
 * mount_setattr(MOUNT_ATTR_IDMAP) (idmapped mounts).  A namespace lives as long as a
 * process or an fd holds it: a child is cloned into a new one, we write its maps,
 * open /proc/<pid>/ns/user, and let the child go.  The child is a raw clone of a
 * possibly threaded Python process: it only blocks in read() and exits.
 */
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "prc.h"

static int write_map(int pid, const char *name, const char *text)
{
    char path[64];
    prc_utoa(path, sizeof(path), (unsigned) pid);
    prc_strlcat(path, "/", sizeof(path));
    prc_strlcat(path, name, sizeof(path));
    return prc_proc_write(path, text, strlen(text));
}

int prc_userns_fd(const char *uid_map, const char *gid_map)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        char c;
        close(p[1]);
        /* EOF when the parent is done with us (or died) */
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        return -e;
    }
    int fd = -1;
    e = 0;
    if (write_map((int) pid, "uid_map", uid_map) < 0 || write_map((int) pid, "gid_map", gid_map) < 0) {
        e = errno;
    } else {
        char path[64] = "/proc/";
        char num[16];
        prc_utoa(num, sizeof(num), (unsigned) pid);
        prc_strlcat(path, num, sizeof(path));
        prc_strlcat(path, "/ns/user", sizeof(path));
        fd = (int) PRC_RETRY(open(path, O_RDONLY | O_CLOEXEC));
        if (fd < 0)
            e = errno;
    }
    close(p[1]);
    while (waitpid((pid_t) pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return fd >= 0 ? fd : -e;
}

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct prc_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

/*
 * The detached, idmapped copy of `source` that the child attaches with move_mount.
 * Made here, in the host's mount and user namespaces, because MOUNT_ATTR_IDMAP needs
 * CAP_SYS_ADMIN over the filesystem's user namespace, which a child already inside a
 * new user namespace no longer has (runc prepares these fds in the parent too).
 */
int prc_idmap_tree(const char *source, int recursive, int ridmap, int userns_fd)
{
    int tree = (int) syscall(SYS_open_tree, AT_FDCWD, source,
                             OPEN_TREE_CLONE | O_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
    if (tree < 0)
        return -errno;
    struct prc_mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) userns_fd };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (ridmap ? AT_RECURSIVE : 0),
                &attr, sizeof(attr)) < 0) {
        int e = errno;
        close(tree);
        return -e;
    }
    return tree;
}
