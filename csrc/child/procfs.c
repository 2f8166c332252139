/*
 * procfs.c: the one way pyrunc opens files under /proc to write them (sysctls,
 * timens_offsets, id maps, oom_score_adj, LSM attributes).
 *
 * Why (the CVE-2025-52881 class): after pivot_root, "/proc" is whatever the
 * container's mounts made of it.  A config mount (or a racing process of a shared
 * mount namespace) can place a bind mount on /proc/sys/kernel/shmmax, or make a path
 * component a symlink, so that a plain open("/proc/sys/...") writes a host file or
 * another procfs file (e.g. /proc/sys/kernel/core_pattern) chosen by the attacker.
 *
 * So every open here:
 *   - starts from an fd of "/proc" that must be the root of a procfs instance
 *     (fstatfs f_type PROC_SUPER_MAGIC, inode PROC_ROOT_INO 1): not a tmpfs or a
 *     bind of some /proc subdirectory put there;
 *   - resolves the rest with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 *     RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): no symlink is followed and no mount
 *     point is crossed, so a bind mount anywhere on the path fails with EXDEV;
 *   - checks the opened fd is on procfs again (cheap; guards a kernel without
 *     RESOLVE_NO_XDEV semantics we rely on).
 * "self/" and "thread-self/" are symlinks in procfs: they are read once with
 * readlinkat on the verified root (the link text is the pid as that procfs instance
 * numbers it, e.g. "1" inside the container's pid namespace) and substituted.
 *
 * Child-safe: no allocation, fixed buffers, raw syscalls.  The parent uses the same
 * code (prc_proc_write_file, for /proc/<pid>/uid_map and oom_score_adj).
 */
#include <sys/stat.h>
#include <sys/vfs.h>

#include "prc.h"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#define PROC_ROOT_INO 1

static int on_procfs(int fd)
{
    struct statfs sfs;
    if (fstatfs(fd, &sfs) < 0)
        return -1;
    if (sfs.f_type != PROC_SUPER_MAGIC) {
        errno = EXDEV;
        return -1;
    }
    return 0;
}

/* O_PATH fd of /proc, proven to be the root of a procfs; -1 and errno otherwise */
static int proc_root(void)
{
    int fd = (int) PRC_RETRY(open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return -1;
    struct stat st;
    int e = 0;
    if (on_procfs(fd) < 0 || fstat(fd, &st) < 0)
        e = errno;
    else if (st.st_ino != PROC_ROOT_INO)
        e = EXDEV;          /* a bind of some procfs subdirectory onto /proc */
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* "self/x" -> "<pid>/x", "thread-self/x" -> "<pid>/task/<tid>/x", via the verified root */
static int expand_self(int root, const char *path, char *out, size_t size)
{
    const char *link = NULL, *rest = NULL;
    if (strncmp(path, "self/", 5) == 0) {
        link = "self";
        rest = path + 4;
    } else if (strncmp(path, "thread-self/", 12) == 0) {
        link = "thread-self";
        rest = path + 11;
    }
    if (!link) {
        if (prc_strlcpy(out, path, size) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        return 0;
    }
    ssize_t n = readlinkat(root, link, out, size - 1);
    if (n < 0)
        return -1;
    out[n] = '\0';
    /* the link text is digits and '/' ("123", "123/task/123"): nothing to resolve */
    for (ssize_t i = 0; i < n; i++)
        if (!((out[i] >= '0' && out[i] <= '9') || out[i] == '/' || (out[i] >= 'a' && out[i] <= 'z'))) {
            errno = EINVAL;
            return -1;
        }
    if (prc_strlcat(out, rest, size) >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int prc_proc_open(const char *path, int flags)
{
    int root = proc_root();
    if (root < 0)
        return -1;
    char real[PRC_PATH_MAX];
    int fd = -1;
    if (expand_self(root, path, real, sizeof(real)) == 0)
        fd = prc_openat2(root, real, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
    int e = errno;
    close(root);
    if (fd >= 0 && on_procfs(fd) < 0) {
        e = errno;
        close(fd);
        fd = -1;
    }
    errno = e;
    return fd;
}

int prc_proc_write(const char *path, const char *data, size_t len)
{
    int fd = prc_proc_open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    /* procfs files take a write whole (sysctls, maps): one write, short is an error */
    ssize_t n = PRC_RETRY(write(fd, data, len));
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    if ((size_t) n != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int prc_proc_write_file(const char *path, const char *data, size_t len)
{
    return prc_proc_write(path, data, len) < 0 ? -errno : 0;
}

/*
 * linux.sysctl, after pivot_root (the container's /proc, its namespaces).  Keys were
 * validated in Python (pyrunc/spec.py: only namespaced ones) and arrive as paths
 * under /proc/sys ("kernel/shmmax").
 */
void prc_write_sysctls(const struct prc_plan *plan, int sync_fd)
{
    for (int i = 0; i < plan->n_sysctls; i++) {
        char path[PRC_PATH_MAX] = "sys/";
        if (prc_strlcat(path, plan->sysctls[i].key, sizeof(path)) >= sizeof(path))
            prc_fail(sync_fd, PRC_STAGE_SYSCTL, ENAMETOOLONG, "write sysctl `", plan->sysctls[i].key, "`", NULL);
        if (prc_proc_write(path, plan->sysctls[i].value, strlen(plan->sysctls[i].value)) < 0)
            prc_fail(sync_fd, PRC_STAGE_SYSCTL, errno, "write sysctl `", plan->sysctls[i].key,
                     errno == EXDEV ? "`: /proc/sys path is not on procfs or crosses a mount" : "`", NULL);
    }
}
