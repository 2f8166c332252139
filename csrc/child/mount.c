/*
 * The container's filesystem: propagation, config mounts, devices, pivot_root,
 * masked and read-only paths.  Child code: no allocation, errors via prc_fail().
 *
 * Every path taken from config.json is resolved *inside* the rootfs with
 * openat2(RESOLVE_IN_ROOT): ".." and absolute symlinks stop at the rootfs, so a
 * destination that is a symlink to "/" lands on the rootfs itself, never on the host.
 * The mount itself then goes through the magic link /proc/self/fd/N of the resolved
 * O_PATH fd, which names exactly the dentry we resolved (runc does the same), so
 * nothing can swap a path component between the check and the mount.
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <linux/mount.h>

#include "prc.h"

#define RESOLVE_FLAGS (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

struct mount_attr_compat {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

static void fdpath(char *buf, size_t size, int fd)
{
    char num[16];
    prc_utoa(num, sizeof(num), (unsigned) fd);
    prc_strlcpy(buf, "/proc/self/fd/", size);
    prc_strlcat(buf, num, size);
}

/*
 * Resolve `path` inside the root `rootfd`, creating what is missing: directories, and
 * the last component as an empty file when want_file.  Returns an O_PATH fd or -1
 * with errno set.
 */
static int mkpath_in_root(int rootfd, const char *path, int want_file)
{
    int fd = prc_openat2(rootfd, path, O_PATH | O_CLOEXEC, RESOLVE_FLAGS);
    if (fd >= 0 || errno != ENOENT)
        return fd;

    char prefix[PRC_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(prefix)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int cur = (int) PRC_RETRY(fcntl(rootfd, F_DUPFD_CLOEXEC, 0));
    if (cur < 0)
        return -1;
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start)
            break;
        char comp[256];
        size_t clen = i - start;
        if (clen >= sizeof(comp)) {
            close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, path + start, clen);
        comp[clen] = '\0';
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        int last = 1;
        for (size_t j = i; j < len; j++)
            if (path[j] != '/') {
                last = 0;
                break;
            }
        int next = prc_openat2(rootfd, prefix, O_PATH | O_CLOEXEC, RESOLVE_FLAGS);
        if (next < 0 && errno == ENOENT) {
            /* cur is the resolved parent: create the component right there */
            int r;
            if (last && want_file) {
                r = (int) PRC_RETRY(openat(cur, comp, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
                if (r >= 0)
                    close(r);
            } else {
                r = mkdirat(cur, comp, 0755);
            }
            if (r < 0 && errno != EEXIST) {
                int saved = errno;
                close(cur);
                errno = saved;
                return -1;
            }
            next = prc_openat2(rootfd, prefix, O_PATH | O_CLOEXEC, RESOLVE_FLAGS);
        }
        if (next < 0) {
            int saved = errno;
            close(cur);
            errno = saved;
            return -1;
        }
        close(cur);
        cur = next;
    }
    return cur;
}

/* flags that the kernel locks on a mount (in a user namespace they cannot be cleared) */
static unsigned long locked_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_RDONLY)
        f |= MS_RDONLY;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

static int remount_bind(const char *path, unsigned long flags)
{
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) == 0)
        return 0;
    if (errno != EPERM)
        return -1;
    /*
     * EPERM: the mount has locked flags (nosuid, nodev, noexec, atime... inherited
     * from a mount owned by a more privileged user namespace) that a remount may not
     * clear.  Keep them and try again, as runc does.
     */
    return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags | locked_flags(path), NULL);
}

/*
 * tmpcopyup: copy the tree under src (the directory the tmpfs now hides) into dst
 * (the tmpfs), keeping types, modes, owners and times, as runc does.  getdents64 into
 * a stack buffer (opendir allocates); files through sendfile.  Returns 0 or -1 with
 * errno set.
 */
static int copy_tree(int src, int dst, int depth)
{
    if (depth > 64) {
        errno = ELOOP;
        return -1;
    }
    char dents[2048];
    for (;;) {
        long n = syscall(SYS_getdents64, src, dents, sizeof(dents));
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        for (long off = 0; off < n;) {
            struct prc_dirent {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (struct prc_dirent *) (dents + off);
            off += d->reclen;
            const char *name = d->name;
            if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                continue;
            struct stat st;
            if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -1;
            int r = 0;
            if (S_ISDIR(st.st_mode)) {
                if (mkdirat(dst, name, 0700) < 0 && errno != EEXIST)
                    return -1;
                int s2 = (int) PRC_RETRY(openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                int d2 = s2 < 0 ? -1 : (int) PRC_RETRY(openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (s2 < 0 || d2 < 0 || copy_tree(s2, d2, depth + 1) < 0)
                    r = -1;
                int saved = errno;
                if (s2 >= 0)
                    close(s2);
                if (d2 >= 0)
                    close(d2);
                errno = saved;
            } else if (S_ISREG(st.st_mode)) {
                int s2 = (int) PRC_RETRY(openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
                int d2 = s2 < 0 ? -1 : (int) PRC_RETRY(openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
                if (s2 < 0 || d2 < 0)
                    r = -1;
                for (off_t left = st.st_size; r == 0 && left > 0;) {
                    ssize_t w = sendfile(d2, s2, NULL, left > (1 << 30) ? (1 << 30) : (size_t) left);
                    if (w < 0 && errno == EINTR)
                        continue;
                    if (w <= 0) {
                        r = w < 0 ? -1 : 0;
                        break;      /* 0: the file shrank meanwhile */
                    }
                    left -= w;
                }
                int saved = errno;
                if (s2 >= 0)
                    close(s2);
                if (d2 >= 0)
                    close(d2);
                errno = saved;
            } else if (S_ISLNK(st.st_mode)) {
                char target[PRC_PATH_MAX];
                ssize_t len = readlinkat(src, name, target, sizeof(target) - 1);
                if (len < 0)
                    return -1;
                target[len] = '\0';
                r = symlinkat(target, dst, name);
            } else {
                r = mknodat(dst, name, st.st_mode, st.st_rdev);
            }
            if (r < 0)
                return -1;
            /* owner before mode (chown clears set-id bits); a symlink has no mode */
            if (fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return -1;
            if (!S_ISLNK(st.st_mode) && fchmodat(dst, name, st.st_mode & 07777, 0) < 0)
                return -1;
            struct timespec ts[2] = { st.st_atim, st.st_mtim };
            if (utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return -1;
        }
    }
}

#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

/*
 * An idmapped bind: the parent made a detached, idmapped copy of the source
 * (prc_idmap_tree, in the host's namespaces where MOUNT_ATTR_IDMAP is allowed); attach
 * it onto the target's fd itself (a /proc/self/fd/N path is refused with EINVAL).
 */
static void idmap_bind(int sync_fd, const struct prc_mount *m, int target_fd)
{
    if (syscall(SYS_move_mount, m->tree_fd, "", target_fd, "",
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "attach idmapped mount on `", m->target, "`", NULL);
}

static void do_mount(const struct prc_plan *plan, int sync_fd, int rootfd, const struct prc_mount *m)
{
    int want_file = (m->extra & PRC_MNTX_FILE) != 0;
    int fd = mkpath_in_root(rootfd, m->target, want_file);
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "create mount destination `", m->target, "`", NULL);
    char target[64];
    fdpath(target, sizeof(target), fd);

    const char *what = m->fstype ? m->fstype : "bind";
    int copyup = (m->extra & PRC_MNTX_TMPCOPYUP) != 0;
    int below = -1;
    if (copyup) {
        /* the directory the tmpfs is about to hide: still readable through this fd */
        below = (int) PRC_RETRY(openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (below < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "open `", m->target, "` for tmpcopyup", NULL);
    }
    /* tmpcopyup of a read-only tmpfs: mount it writable, copy, then remount */
    unsigned long flags = copyup ? m->flags & ~MS_RDONLY : m->flags;
    if (m->extra & PRC_MNTX_IDMAP) {
        idmap_bind(sync_fd, m, fd);
    } else if (mount(m->source, target, m->fstype, flags, m->data) < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "mount ", what, " `", m->source ? m->source : "none",
                 "` on `", m->target, "`", NULL);
    if (copyup) {
        int top = prc_openat2(rootfd, m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC, RESOLVE_FLAGS);
        if (top < 0 || copy_tree(below, top, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "copy up the contents of `", m->target, "`", NULL);
        close(below);
        /* through the new mount's own root, not the fd of the directory below it */
        char topp[64];
        fdpath(topp, sizeof(topp), top);
        if ((m->flags & MS_RDONLY) && mount(NULL, topp, NULL, MS_REMOUNT | m->flags, m->data) < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "remount `", m->target, "` read-only", NULL);
        close(top);
    }
    /*
     * The fd still names the directory *under* the new mount; remount, mount_setattr
     * and propagation changes must reach the mount itself: resolve the path again.
     */
    if (m->extra & (PRC_MNTX_REMOUNT | PRC_MNTX_RECURSIVE) || m->propagation) {
        close(fd);
        fd = prc_openat2(rootfd, m->target, O_PATH | O_CLOEXEC, RESOLVE_FLAGS);
        if (fd < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "open mounted `", m->target, "`", NULL);
        fdpath(target, sizeof(target), fd);
    }
    /* binds ignore every flag but MS_BIND|MS_REC: apply ro, nosuid... with a remount */
    if ((m->extra & PRC_MNTX_REMOUNT) && remount_bind(target, m->remount_flags) < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "remount `", m->target, "` with its options", NULL);
    if (m->extra & PRC_MNTX_RECURSIVE) {
        /* rro, rnosuid...: mount options that also reach every submount (Linux 5.12) */
        struct mount_attr_compat attr = { .attr_set = m->attr_set, .attr_clr = m->attr_clr };
        if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "set recursive mount options on `", m->target, "`", NULL);
    }
    if (m->propagation && mount(NULL, target, NULL, m->propagation, NULL) < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "set propagation of `", m->target, "`", NULL);
    close(fd);
}

static void make_device(int sync_fd, int rootfd, const struct prc_device *d)
{
    if (d->bind) {
        /* in a user namespace mknod is not allowed: bind the host's node instead */
        int fd = mkpath_in_root(rootfd, d->path, 1);
        if (fd < 0)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "create device `", d->path, "`", NULL);
        char target[64];
        fdpath(target, sizeof(target), fd);
        if (mount(d->path, target, NULL, MS_BIND, NULL) < 0)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "bind device `", d->path, "`", NULL);
        close(fd);
        return;
    }
    /* split into parent directory and name */
    char parent[PRC_PATH_MAX];
    prc_strlcpy(parent, d->path, sizeof(parent));
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1])
        prc_fail(sync_fd, PRC_STAGE_DEVICES, EINVAL, "device path `", d->path, "`", NULL);
    const char *name = d->path + (slash - parent) + 1;
    if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    int dirfd = mkpath_in_root(rootfd, parent, 0);
    if (dirfd < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "create directory of device `", d->path, "`", NULL);
    if (mknodat(dirfd, name, d->mode, makedev(d->major, d->minor)) < 0) {
        if (errno != EEXIST)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "mknod `", d->path, "`", NULL);
        /* an existing node (e.g. /dev is not a tmpfs) is left alone, as runc does */
        close(dirfd);
        return;
    }
    /* mknod applies the umask: set the exact mode, then the owner */
    if (fchmodat(dirfd, name, d->mode & 07777, 0) < 0 ||
        fchownat(dirfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "set owner and mode of `", d->path, "`", NULL);
    close(dirfd);
}

static void make_symlink(int sync_fd, int rootfd, const struct prc_kv *l)
{
    char parent[PRC_PATH_MAX];
    prc_strlcpy(parent, l->key, sizeof(parent));
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1])
        prc_fail(sync_fd, PRC_STAGE_DEVICES, EINVAL, "symlink path `", l->key, "`", NULL);
    const char *name = l->key + (slash - parent) + 1;
    if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    int dirfd = mkpath_in_root(rootfd, parent, 0);
    if (dirfd < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "create directory of `", l->key, "`", NULL);
    if (symlinkat(l->value, dirfd, name) < 0) {
        if (errno != EEXIST)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "symlink `", l->key, "` to `", l->value, "`", NULL);
        /* /dev/ptmx with a devpts mount must point into it: replace a node or old link */
        if (strcmp(l->value, "pts/ptmx") == 0) {
            if (unlinkat(dirfd, name, 0) < 0 || symlinkat(l->value, dirfd, name) < 0)
                prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "symlink `", l->key, "`", NULL);
        }
    }
    close(dirfd);
}

/*
 * Whether the container has a mount namespace of its own (new or joined by path).
 * Without one (the config lists no "mount" namespace: it inherits the runtime's),
 * everything below happens in the caller's mount namespace, as with runc: the
 * mounts land under the rootfs, visible on the host, and the root is entered with
 * chroot, since pivot_root would swap the root of every process sharing it.
 */
static int own_mount_ns(const struct prc_plan *plan)
{
    if (plan->clone_flags & CLONE_NEWNS)
        return 1;
    for (int i = 0; i < plan->n_joins; i++)
        if (plan->joins[i].nstype == CLONE_NEWNS)
            return 1;
    return 0;
}

/* everything before pivot_root; leaves the cwd at the rootfs */
void prc_setup_rootfs(const struct prc_plan *plan, int sync_fd)
{
    int own_ns = own_mount_ns(plan);
    /*
     * Our mount namespace is a copy of the host's, with the same propagation.  Make
     * "/" a slave (or what rootfsPropagation says) first, so that nothing we mount
     * or unmount from here on propagates back to the host.  In the host's own mount
     * namespace that would change the host's propagation: leave it alone there (runc
     * does not, which turns a shared "/" of the host into a private one).
     */
    /* unbindable would forbid the rootfs bind below: slave now, unbindable after pivot */
    unsigned long prop = plan->rootfs_propagation;
    if (prop & MS_UNBINDABLE)
        prop = MS_SLAVE | MS_REC;
    if (own_ns && mount(NULL, "/", NULL, prop, NULL) < 0)
        prc_fail(sync_fd, PRC_STAGE_ROOTFS, errno, "set propagation of `/`", NULL);
    /* a shared "/" (rootfsPropagation shared/rshared): only the rootfs's parent mount
     * becomes private, what runc's rootfsParentMountPrivate does */
    if (own_ns && plan->rootfs_parent && mount(NULL, plan->rootfs_parent, NULL, MS_PRIVATE, NULL) < 0)
        prc_fail(sync_fd, PRC_STAGE_ROOTFS, errno, "make `", plan->rootfs_parent, "` private", NULL);

    /*
     * pivot_root needs the new root to be a mount point: bind the rootfs onto itself.
     * The bind takes the propagation of its parent (slave by default, private when
     * "/" was shared: see above), so it is never shared, which pivot_root refuses.
     * Without a mount namespace the bind is what a read-only root remounts, and it is
     * made private so that the container's mounts below it reach no peer group.
     */
    if (mount(plan->rootfs, plan->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        prc_fail(sync_fd, PRC_STAGE_ROOTFS, errno, "bind rootfs `", plan->rootfs, "`", NULL);
    if (!own_ns && mount(NULL, plan->rootfs, NULL, MS_PRIVATE, NULL) < 0)
        prc_fail(sync_fd, PRC_STAGE_ROOTFS, errno, "make rootfs `", plan->rootfs, "` private", NULL);
    int rootfd = (int) PRC_RETRY(open(plan->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        prc_fail(sync_fd, PRC_STAGE_ROOTFS, errno, "open rootfs `", plan->rootfs, "`", NULL);

    for (int i = 0; i < plan->n_mounts; i++)
        do_mount(plan, sync_fd, rootfd, &plan->mounts[i]);
    for (int i = 0; i < plan->n_devices; i++)
        make_device(sync_fd, rootfd, &plan->devices[i]);
    for (int i = 0; i < plan->n_symlinks; i++)
        make_symlink(sync_fd, rootfd, &plan->symlinks[i]);
    /* runc creates a missing cwd (as root, before the user switch) */
    if (plan->cwd) {
        int fd = mkpath_in_root(rootfd, plan->cwd, 0);
        if (fd < 0)
            prc_fail(sync_fd, PRC_STAGE_CWD, errno, "create cwd `", plan->cwd, "`", NULL);
        close(fd);
    }

    if (fchdir(rootfd) < 0)
        prc_fail(sync_fd, PRC_STAGE_ROOTFS, errno, "chdir to rootfs `", plan->rootfs, "`", NULL);
    close(rootfd);
}

static void pivot(const struct prc_plan *plan, int sync_fd)
{
    if (!own_mount_ns(plan)) {
        /* the host's mount namespace: neither pivot_root nor MS_MOVE onto its "/" */
        if (chroot(".") < 0)
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "chroot into rootfs", NULL);
        if (chdir("/") < 0)
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "chdir to `/`", NULL);
        return;
    }
    if (plan->no_pivot) {
        /* --no-pivot (e.g. a ramfs root, where pivot_root is impossible): move + chroot */
        if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "move rootfs to `/`", NULL);
        if (chroot(".") < 0)
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "chroot into rootfs", NULL);
        if (chdir("/") < 0)
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "chdir to `/`", NULL);
        return;
    }
    /*
     * pivot_root(".", ".") stacks the old root on top of the new one at "/", so no
     * temporary directory is needed inside the rootfs.  The old root is then made a
     * slave (so the detach does not propagate to the host, whose mounts may be
     * shared) and lazily unmounted.
     */
    int oldroot = (int) PRC_RETRY(open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (oldroot < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "open old root", NULL);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "pivot_root into `", plan->rootfs, "`", NULL);
    if (fchdir(oldroot) < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "chdir to old root", NULL);
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "make old root a slave", NULL);
    if (umount2(".", MNT_DETACH) < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "unmount old root", NULL);
    close(oldroot);
    if (chdir("/") < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "chdir to `/`", NULL);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * runc's reOpenDevNull: a stdio fd that is the caller's /dev/null (create and run -d
 * are often given </dev/null) belongs to a mount of the host's namespace.  Reopen it
 * from the container's own /dev/null, as runc does: an fd on a mount outside the
 * container's namespace is something criu cannot checkpoint ("Can't lookup mount").
 */
static void reopen_dev_null(int sync_fd)
{
    struct stat null_st, st;
    if (stat("/dev/null", &null_st) < 0 || !S_ISCHR(null_st.st_mode))
        return;
    for (int fd = 0; fd < 3; fd++) {
        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != null_st.st_rdev)
            continue;
        int n = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (n < 0 || dup3(n, fd, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "reopen /dev/null as stdio", NULL);
        close(n);
    }
}

/* after the create hooks: pivot_root, then what must be done from inside */
void prc_finish_rootfs(const struct prc_plan *plan, int sync_fd)
{
    pivot(plan, sync_fd);
    if (own_mount_ns(plan))
        reopen_dev_null(sync_fd);
    /*
     * The new "/" (the rootfs bind) took its parent's propagation: slave, or private
     * when the parent was made private for a shared "/".  rootfsPropagation shared or
     * unbindable is about the container's own root: apply it to the new "/" now (a
     * shared one is a new peer group of the container's namespace, not the host's).
     */
    if ((plan->rootfs_propagation & (MS_SHARED | MS_UNBINDABLE)) && own_mount_ns(plan) &&
        mount(NULL, "/", NULL, plan->rootfs_propagation, NULL) < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "set propagation of the new `/`", NULL);

    /* sysctls first: /proc/sys is usually among the read-only paths (runc's order) */
    for (int i = 0; i < plan->n_sysctls; i++) {
        char path[PRC_PATH_MAX] = "/proc/sys/";
        prc_strlcat(path, plan->sysctls[i].key, sizeof(path));
        if (prc_write_file(path, plan->sysctls[i].value, strlen(plan->sysctls[i].value)) < 0)
            prc_fail(sync_fd, PRC_STAGE_SYSCTL, errno, "write sysctl `", plan->sysctls[i].key, "`", NULL);
    }
    for (int i = 0; i < plan->n_masked; i++) {
        const char *p = plan->masked_paths[i];
        int r;
        if (is_dir(p))
            r = mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL);
        else
            r = mount("/dev/null", p, NULL, MS_BIND, NULL);
        if (r < 0 && errno != ENOENT)
            prc_fail(sync_fd, PRC_STAGE_MASK, errno, "mask `", p, "`", NULL);
    }
    for (int i = 0; i < plan->n_readonly; i++) {
        const char *p = plan->readonly_paths[i];
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "bind `", p, "` for read-only", NULL);
        }
        if (remount_bind(p, MS_RDONLY | MS_REC | locked_flags(p)) < 0)
            prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "make `", p, "` read-only", NULL);
    }
    if (plan->readonly_root && remount_bind("/", MS_RDONLY) < 0)
        prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "make root read-only", NULL);
}
