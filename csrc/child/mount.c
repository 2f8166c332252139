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
 *
 * After pivot_root the same rule holds, with the new "/" as the root: masked and
 * read-only paths, /dev/null, /dev/ptmx and /dev/console are opened with openat2 inside
 * it, never with a plain path (an image's symlink may point through a magic link of the
 * container's procfs, /proc/<pid>/root or /proc/self/fd/N, to the host), checked on the
 * fd, and mounted from fd to fd with open_tree/fsmount + move_mount: no path is looked
 * up again between the check and the mount, and nothing goes through /proc.
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/sysmacros.h>
#include <linux/mount.h>

#include <sys/xattr.h>

#include "prc.h"

#define RESOLVE_FLAGS (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
/* no symlink at all on the way, not even one that stays inside the root */
#define RESOLVE_STRICT (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)

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

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/*
 * chmod the inode an O_PATH fd holds, never a name: fchmod refuses an O_PATH fd
 * (EBADF), fchmodat2 (Linux 6.6) takes it with AT_EMPTY_PATH.  Older kernels: the fd's
 * magic link in the runtime's /proc (before pivot_root: the host's procfs), which
 * names that very inode, not a path looked up again.  Never called on a symlink.
 */
static int chmod_fd(int fd, mode_t mode)
{
    if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL)
        return -1;
    char p[64];
    fdpath(p, sizeof(p), fd);
    return chmod(p, mode);
}

/* owner first (a chown clears set-id bits, even of a device node), then the mode */
static int chown_chmod_fd(int fd, uid_t uid, gid_t gid, mode_t mode)
{
    if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0)
        return -1;
    return chmod_fd(fd, mode);
}

/*
 * Resolve `path` inside the root `rootfd`, creating what is missing: directories, and
 * the last component as an empty file when want_file.  Returns an O_PATH fd or -1
 * with errno set.
 */
/* create the last component comp of a path in its resolved parent dir; EEXIST is fine */
static int make_last(int dir, const char *comp, int want_file)
{
    int r;
    if (want_file) {
        /* O_EXCL: never open for writing something that appeared meanwhile (a fifo
           would block, a device would see an open); EEXIST resolves it again */
        r = (int) PRC_RETRY(openat(dir, comp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
        if (r >= 0)
            close(r);
    } else {
        r = mkdirat(dir, comp, 0755);
    }
    return r < 0 && errno != EEXIST ? -1 : 0;
}

static int mkpath_in_root(int rootfd, const char *path, int want_file, uint64_t resolve)
{
    int fd = prc_openat2(rootfd, path, O_PATH | O_CLOEXEC, resolve);
    if (fd >= 0 || errno != ENOENT)
        return fd;

    char prefix[PRC_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(prefix)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /*
     * Most often only the last component is missing (/sys/fs/cgroup/<ctrl>, /dev/pts):
     * resolve its parent once and make it there, as the walk below would in its last
     * step, instead of resolving every prefix from the root.
     */
    size_t end = len;
    while (end > 0 && path[end - 1] == '/')
        end--;
    size_t slash = end;
    while (slash > 0 && path[slash - 1] != '/')
        slash--;
    size_t clen = end - slash;
    if (clen > 0 && clen < 256 && !(clen == 1 && path[slash] == '.') &&
        !(clen == 2 && path[slash] == '.' && path[slash + 1] == '.')) {
        char comp[256];
        memcpy(comp, path + slash, clen);
        comp[clen] = '\0';
        memcpy(prefix, path, slash);
        prefix[slash] = '\0';
        int parent = prc_openat2(rootfd, slash ? prefix : "/", O_PATH | O_CLOEXEC, resolve);
        if (parent >= 0) {
            int r = make_last(parent, comp, want_file);
            int saved = errno;
            close(parent);
            if (r < 0) {
                errno = saved;
                return -1;
            }
            return prc_openat2(rootfd, path, O_PATH | O_CLOEXEC, resolve);
        }
        if (errno != ENOENT)
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
        int next = prc_openat2(rootfd, prefix, O_PATH | O_CLOEXEC, resolve);
        if (next < 0 && errno == ENOENT) {
            /* cur is the resolved parent: create the component right there */
            if (make_last(cur, comp, last && want_file) < 0) {
                int saved = errno;
                close(cur);
                errno = saved;
                return -1;
            }
            next = prc_openat2(rootfd, prefix, O_PATH | O_CLOEXEC, resolve);
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
                /*
                 * O_NONBLOCK: the entry seen as a regular file may be a fifo by now (the
                 * image's directory is the host's, anyone sharing it can swap it), whose
                 * open would block the init for good; what was opened must be the file
                 * that was looked at.
                 */
                struct stat ost;
                int s2 = (int) PRC_RETRY(openat(src, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
                if (s2 >= 0 && (fstat(s2, &ost) < 0 || ost.st_dev != st.st_dev || ost.st_ino != st.st_ino)) {
                    close(s2);
                    s2 = -1;
                    errno = EEXIST;     /* replaced by something else */
                }
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
            /*
             * Owner, mode and times go through an fd of the entry just made, proven to be
             * of the type made, never by name: without a mount namespace the tmpfs is in
             * the host's mount table, and an entry swapped meanwhile for a symlink
             * (fchmodat follows it) would pass them on to a host file.
             */
            int e = (int) PRC_RETRY(openat(dst, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
            if (e < 0)
                return -1;
            struct stat made;
            struct timespec ts[2] = { st.st_atim, st.st_mtim };
            if (fstat(e, &made) < 0 || (made.st_mode & S_IFMT) != (st.st_mode & S_IFMT)) {
                close(e);
                errno = EEXIST;     /* replaced by something else */
                return -1;
            }
            /* owner before mode (chown clears set-id bits); a symlink has no mode */
            r = fchownat(e, "", st.st_uid, st.st_gid, AT_EMPTY_PATH);
            if (r == 0 && !S_ISLNK(st.st_mode))
                r = chmod_fd(e, st.st_mode & 07777);
            if (r == 0)
                r = utimensat(e, "", ts, AT_EMPTY_PATH);
            int saved = errno;
            close(e);
            errno = saved;
            if (r < 0)
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

/* attach a detached mount (from open_tree or fsmount) onto the file or directory of
   target_fd itself, no path lookup, and close it; -1 with errno set */
static int attach_tree(int tree, int target_fd)
{
    int r = (int) syscall(SYS_move_mount, tree, "", target_fd, "",
                          MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    int saved = errno;
    close(tree);
    errno = saved;
    return r;
}

/* a detached bind of what fd names (recursive: with its submounts) */
static int clone_tree(int fd, int recursive)
{
    return (int) syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
                         (recursive ? AT_RECURSIVE : 0));
}

static int fd_type(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    return (int) (st.st_mode & S_IFMT);
}

/*
 * An idmapped bind: the parent made a detached, idmapped copy of the source
 * (prc_idmap_tree, in the host's namespaces where MOUNT_ATTR_IDMAP is allowed); attach
 * it onto the target's fd itself (a /proc/self/fd/N path is refused with EINVAL).
 */
static void idmap_bind(int sync_fd, const struct prc_mount *m, int target_fd)
{
    if (syscall(SYS_move_mount, m->tree_fd, "", target_fd, "",
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "attach mount tree on `", m->target, "`", NULL);
}

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

static int on_procfs_fd(int fd)
{
    struct statfs sf;
    return fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

/*
 * Nothing but procfs goes inside the container's /proc (runc's checkProcMount): a tmpfs
 * or bind there turns what the runtime and the container's LSMs trust (sysctls,
 * /proc/self/attr) into plain files, and a volume there receives the sysctl writes
 * meant for the kernel (a host file then).  Checked on the resolved fd, so that an
 * image's symlink leading an innocent destination into /proc is caught too.  The
 * files lxcfs emulates may be bind-mounted, named as such.
 */
static void check_proc_destination(int sync_fd, const struct prc_mount *m, int fd)
{
    static const char *const lxcfs[] = {
        "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
        "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid", NULL,
    };
    if (!on_procfs_fd(fd) || (m->fstype && strcmp(m->fstype, "proc") == 0))
        return;
    if (m->kind == PRC_MNT_BIND)
        for (int i = 0; lxcfs[i]; i++)
            if (strcmp(m->target, lxcfs[i]) == 0)
                return;
    prc_fail(sync_fd, PRC_STAGE_MOUNT, 0, "mount on `", m->target, "`: it is inside /proc, where only procfs "
             "and lxcfs-style binds are mounted", NULL);
}

static void do_mount(const struct prc_plan *plan, int sync_fd, int rootfd, const struct prc_mount *m)
{
    int want_file = (m->extra & PRC_MNTX_FILE) != 0;
    /*
     * A bind source inside the rootfs is a path of the image: resolved inside the root
     * like a destination (on the host its symlinks would lead anywhere), bound from the
     * fd with open_tree, and a file or a directory as the fd says.
     */
    int src_fd = -1;
    if (m->extra & PRC_MNTX_SRC_IN_ROOT) {
        src_fd = prc_openat2(rootfd, m->source, O_PATH | O_CLOEXEC, RESOLVE_FLAGS);
        if (src_fd < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "open bind source `", m->source, "` in the rootfs", NULL);
        want_file = fd_type(src_fd) != S_IFDIR;
    }
    /*
     * proc and sysfs go on an ordinary directory, reached without any symlink, even one
     * that would stay inside the root (runc's rule since CVE-2019-16884 and -19921: a
     * procfs mounted elsewhere than /proc defeats every check that trusts /proc).
     */
    int ordinary = m->fstype && (strcmp(m->fstype, "proc") == 0 || strcmp(m->fstype, "sysfs") == 0);
    int fd = mkpath_in_root(rootfd, m->target, want_file, ordinary ? RESOLVE_STRICT : RESOLVE_FLAGS);
    if (ordinary && (fd < 0 ? errno == ELOOP || errno == ENOTDIR || errno == EEXIST : fd_type(fd) != S_IFDIR))
        prc_fail(sync_fd, PRC_STAGE_MOUNT, 0, "mount ", m->fstype, " on `", m->target, "`: filesystem \"",
                 m->fstype, "\" must be mounted on ordinary directory", NULL);
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "create mount destination `", m->target, "`", NULL);
    check_proc_destination(sync_fd, m, fd);
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
    } else if (src_fd >= 0) {
        int tree = clone_tree(src_fd, (m->flags & MS_REC) != 0);
        if (tree < 0 || attach_tree(tree, fd) < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "mount bind `", m->source, "` (in the rootfs) on `",
                     m->target, "`", NULL);
        close(src_fd);
    } else if (mount(m->source, target, m->fstype, flags, m->data) < 0)
        prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "mount ", what, " `", m->source ? m->source : "none",
                 "` on `", m->target, "`", NULL);
    if (m->extra & PRC_MNTX_LABEL) {
        /*
         * mqueue: its superblock is made with the ipc namespace, unlabeled, and every
         * mount of it returns that one superblock, which SELinux then refuses to
         * relabel with context= (EINVAL).  Label its root inode instead, as runc does.
         */
        int top = prc_openat2(rootfd, m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC, RESOLVE_FLAGS);
        if (top < 0 || fsetxattr(top, "security.selinux", m->label, strlen(m->label), 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_MOUNT, errno, "set the selinux label of `", m->target, "`", NULL);
        close(top);
    }
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

/*
 * The node a device path names, split into its directory (created inside the root as
 * needed, an O_PATH fd) and its last component, which the caller handles itself so
 * that a symlink there is never followed.  "." and ".." are no node of their own (and
 * ".." from the root's top is outside it).
 */
static int device_dir(int sync_fd, int rootfd, const char *path, const char **name)
{
    char parent[PRC_PATH_MAX];
    prc_strlcpy(parent, path, sizeof(parent));
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1])
        prc_fail(sync_fd, PRC_STAGE_DEVICES, EINVAL, "device path `", path, "`", NULL);
    *name = path + (slash - parent) + 1;
    if (strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, EINVAL, "device path `", path, "`", NULL);
    if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    int dirfd = mkpath_in_root(rootfd, parent, 0, RESOLVE_FLAGS);
    if (dirfd < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "create directory of device `", path, "`", NULL);
    return dirfd;
}

static void make_device(int sync_fd, int rootfd, const struct prc_device *d)
{
    const char *name;
    int dirfd = device_dir(sync_fd, rootfd, d->path, &name);
    if (d->bind) {
        /*
         * In a user namespace mknod is not allowed: the host's node is bound onto a file
         * of the rootfs.  The last component is opened without following it: an image's
         * symlink there (even one staying inside the root, /dev/full -> /etc/shadow) is
         * refused, not bound through, and a directory cannot take a device.  The bind
         * goes from a detached clone of the host's node onto the fd itself.
         */
        int fd = (int) PRC_RETRY(openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (fd < 0 && errno == ENOENT) {
            /* O_EXCL: nothing that appeared meanwhile is opened for writing */
            int w = (int) PRC_RETRY(openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
            if (w < 0 && errno != EEXIST)
                prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "create device `", d->path, "`", NULL);
            if (w >= 0)
                close(w);
            fd = (int) PRC_RETRY(openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        }
        if (fd < 0)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "create device `", d->path, "`", NULL);
        int t = fd_type(fd);
        if (t == S_IFLNK || t == S_IFDIR)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, 0, "bind device `", d->path, "`: ",
                     t == S_IFLNK ? "a symlink in the container (never followed)" : "a directory in the container",
                     NULL);
        int tree = (int) syscall(SYS_open_tree, AT_FDCWD, d->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0 || attach_tree(tree, fd) < 0)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "bind device `", d->path, "`", NULL);
        close(fd);
        close(dirfd);
        return;
    }
    dev_t dev = makedev(d->major, d->minor);
    if (mknodat(dirfd, name, d->mode, dev) < 0) {
        if (errno != EEXIST)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "mknod `", d->path, "`", NULL);
        /* an existing entry (e.g. /dev is not a tmpfs) is left alone, as runc does: never
           chmod'ed or chown'ed, whatever it is (a symlink, a hard link to a host file) */
        close(dirfd);
        return;
    }
    /*
     * mknod applied the umask: the exact mode and the owner are set through an fd of
     * the node, proven to be the node just made.  By name (fchmodat follows a final
     * symlink; any *at call follows a hard link) a node swapped meanwhile, by someone
     * sharing the image's /dev, would pass the device's mode and owner to a host file.
     */
    int fd = (int) PRC_RETRY(openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "open the new node `", d->path, "`", NULL);
    struct stat st;
    if (fstat(fd, &st) < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "stat the new node `", d->path, "`", NULL);
    if ((st.st_mode & S_IFMT) != (d->mode & S_IFMT) ||
        ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && st.st_rdev != dev))
        prc_fail(sync_fd, PRC_STAGE_DEVICES, 0, "mknod `", d->path, "`: replaced by another file while being "
                 "made (its owner and mode are left alone)", NULL);
    if (chown_chmod_fd(fd, d->uid, d->gid, d->mode & 07777) < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "set owner and mode of `", d->path, "`", NULL);
    close(fd);
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
    int dirfd = mkpath_in_root(rootfd, parent, 0, RESOLVE_FLAGS);
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
 * A terminal container gets the pty slave bound on /dev/console (runc does; getty and
 * init systems expect it).  The node is made now, before pivot_root and before a
 * read-only root, in the container's own /dev reached without any symlink: an empty
 * file, or the image's regular file or character device, whose owner and mode are
 * left as they are (nothing is chmod'ed or chown'ed but the file made here, through its
 * fd).  Anything else (a symlink, to a host file or not) is refused rather than bound
 * through (the CVE-2025-52565 class).  Which inode it is goes to console_id:
 * prc_mount_console binds onto that one only, not onto whatever a hook or someone
 * sharing the image's /dev put at the path meanwhile (a hard link to a host file).
 */
static struct { dev_t dev; ino_t ino; } console_id;

static void make_console(int sync_fd, int rootfd)
{
    int dev = mkpath_in_root(rootfd, "/dev", 0, RESOLVE_STRICT);
    if (dev < 0 || fd_type(dev) != S_IFDIR)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, dev < 0 ? errno : ENOTDIR,
                 "create `/dev/console`: open the container's `/dev` without following symlinks", NULL);
    struct stat st;
    int fd = (int) PRC_RETRY(openat(dev, "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (fd >= 0) {
        if (fchmod(fd, 0666) < 0)      /* the umask applied */
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "chmod `/dev/console`", NULL);
    } else if (errno == EEXIST) {
        fd = (int) PRC_RETRY(openat(dev, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (fd < 0)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "open `/dev/console`", NULL);
        int t = fd_type(fd);
        if (t != S_IFREG && t != S_IFCHR)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, 0, "create `/dev/console`: the container's `/dev/console` "
                     "is not a regular file or character device (a symlink is never followed)", NULL);
    } else {
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "create `/dev/console`", NULL);
    }
    if (fstat(fd, &st) < 0)
        prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "stat `/dev/console`", NULL);
    console_id.dev = st.st_dev;
    console_id.ino = st.st_ino;
    close(fd);
    close(dev);
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
    if (plan->terminal)
        make_console(sync_fd, rootfd);
    /* runc creates a missing cwd (as root, before the user switch) */
    if (plan->cwd) {
        int fd = mkpath_in_root(rootfd, plan->cwd, 0, RESOLVE_FLAGS);
        if (fd < 0)
            prc_fail(sync_fd, PRC_STAGE_CWD, errno, "create cwd `", plan->cwd, "`", NULL);
        close(fd);
    }

    if (fchdir(rootfd) < 0)
        prc_fail(sync_fd, PRC_STAGE_ROOTFS, errno, "chdir to rootfs `", plan->rootfs, "`", NULL);
    close(rootfd);
}

/*
 * Unescape one mountinfo field (octal \ooo for space, tab, newline, backslash) from
 * src[0..len) into dst; returns 0, or -1 when it does not fit.
 */
static int mi_unescape(char *dst, size_t size, const char *src, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = src[i];
        if (ch == '\\' && i + 3 < len &&
            src[i + 1] >= '0' && src[i + 1] <= '3' && src[i + 2] >= '0' && src[i + 2] <= '7' &&
            src[i + 3] >= '0' && src[i + 3] <= '7') {
            ch = (char) (((src[i + 1] - '0') << 6) | ((src[i + 2] - '0') << 3) | (src[i + 3] - '0'));
            i += 3;
        }
        if (o + 1 >= size)
            return -1;
        dst[o++] = ch;
    }
    dst[o] = 0;
    return 0;
}

/*
 * One mountinfo line: is it a whole proc or sysfs (root "/") mounted outside the
 * rootfs?  Then its mount id goes to *id and its mount point to mnt.
 */
static int mi_bare_procfs(const char *line, size_t len, const char *rootfs, int *id, char *mnt, size_t size)
{
    const char *f[16];
    size_t fl[16];
    int n = 0;
    size_t i = 0;
    /* fields: id parent maj:min root mountpoint opts [optional...] - fstype ... */
    while (i < len && n < 16) {
        while (i < len && line[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && line[i] != ' ')
            i++;
        f[n] = line + start;
        fl[n] = i - start;
        n++;
        if (n >= 6 && fl[n - 1] == 1 && f[n - 1][0] == '-')
            break;
    }
    if (n < 7 || f[n - 1][0] != '-')
        return 0;
    /* the field after the separator */
    while (i < len && line[i] == ' ')
        i++;
    size_t ts = i;
    while (i < len && line[i] != ' ')
        i++;
    size_t tl = i - ts;
    int proc = tl == 4 && memcmp(line + ts, "proc", 4) == 0;
    int sys = tl == 5 && memcmp(line + ts, "sysfs", 5) == 0;
    if (!(proc || sys) || fl[3] != 1 || f[3][0] != '/')
        return 0;
    if (mi_unescape(mnt, size, f[4], fl[4]) < 0)
        return 0;
    size_t rl = strlen(rootfs);
    if (strncmp(mnt, rootfs, rl) == 0 && (mnt[rl] == 0 || mnt[rl] == '/'))
        return 0;
    int v = 0;
    for (size_t k = 0; k < fl[0]; k++)
        v = v * 10 + (f[0][k] - '0');
    *id = v;
    return 1;
}

/*
 * --no-pivot leaves the host's mounts in the namespace, below the new root: chroot
 * hides them from paths, not from the kernel.  A whole, unmasked procfs or sysfs
 * anywhere in the namespace lets a process in a new user namespace mount a fresh,
 * unmasked one (the kernel's mount_too_revealing() looks at every mount), so detach
 * those (or, where that is not allowed, cover them with a tmpfs), as runc's
 * msMoveRoot does.  Slave first, so no unmount reaches the host.
 */
struct procfs_search {
    const char *rootfs;
    const int *done;
    int n_done;
    int id;
    char mnt[PRC_PATH_MAX];
};

/* 1 when the mountinfo line is a bare procfs or sysfs not handled yet (id and mnt set) */
static int procfs_line(char *line, void *ctx)
{
    struct procfs_search *s = ctx;
    if (!mi_bare_procfs(line, strlen(line), s->rootfs, &s->id, s->mnt, sizeof(s->mnt)))
        return 0;
    for (int d = 0; d < s->n_done; d++)
        if (s->done[d] == s->id)
            return 0;
    return 1;
}

static void hide_host_procfs(const struct prc_plan *plan, int sync_fd)
{
    int fd = (int) PRC_RETRY(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "open `/proc/self/mountinfo`", NULL);
    int done[64];
    char buf[4096];
    struct procfs_search s = { .rootfs = plan->rootfs, .done = done, .n_done = 0 };
    for (;;) {
        /* rescan from the top after every change: the list moved under us */
        if (lseek(fd, 0, SEEK_SET) < 0)
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "read `/proc/self/mountinfo`", NULL);
        int found = prc_each_line(fd, buf, sizeof(buf), procfs_line, &s);
        if (found < 0)
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "read `/proc/self/mountinfo`", NULL);
        if (!found)
            break;
        if (s.n_done == (int) (sizeof(done) / sizeof(done[0])))
            prc_fail(sync_fd, PRC_STAGE_PIVOT, E2BIG, "hide the host's proc and sysfs mounts", NULL);
        done[s.n_done++] = s.id;
        const char *mnt = s.mnt;
        if (mount(NULL, mnt, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "make `", mnt, "` a slave", NULL);
        }
        if (umount2(mnt, MNT_DETACH) < 0) {
            if (errno != EINVAL && errno != EPERM)
                prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "unmount the host's `", mnt, "`", NULL);
            if (mount("tmpfs", mnt, "tmpfs", 0, NULL) < 0)
                prc_fail(sync_fd, PRC_STAGE_PIVOT, errno, "cover the host's `", mnt, "`", NULL);
        }
    }
    close(fd);
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
        hide_host_procfs(plan, sync_fd);
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

/* "/" after pivot_root (or chroot): the root every later path is resolved in */
static int open_root(int sync_fd, int stage)
{
    int fd = (int) PRC_RETRY(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (fd < 0)
        prc_fail(sync_fd, stage, errno, "open `/`", NULL);
    return fd;
}

/*
 * A masked or read-only path, opened inside the root: no magic link on the way, and the
 * last component not followed, so a mask lands on the path itself or nowhere.  -1 when
 * it does not exist (skipped, as runc does).  A symlink is refused: binding onto its
 * target would be following it, and nothing masks a symlink in a real /proc or /sys.
 */
static int open_protected(int sync_fd, int stage, int rootfd, const char *p, const char *what)
{
    int fd = prc_openat2(rootfd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_FLAGS);
    if (fd < 0) {
        if (errno == ENOENT)
            return -1;
        prc_fail(sync_fd, stage, errno, what, " `", p, "`", NULL);
    }
    if (fd_type(fd) == S_IFLNK)
        prc_fail(sync_fd, stage, 0, what, " `", p, "`: a symlink in the container (never followed)", NULL);
    return fd;
}

/*
 * An O_PATH fd of the container's /dev/null, reached inside the root with no symlink
 * on the way, and its stat; -1 with errno set, ENODEV when it is not the character
 * device 1:3.  What masks are made from and what stdio is reopened from.
 */
static int null_node(int rootfd, struct stat *st)
{
    int fd = prc_openat2(rootfd, "/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_STRICT);
    if (fd < 0)
        return -1;
    int e = 0;
    if (fstat(fd, st) < 0)
        e = errno;
    else if (!S_ISCHR(st->st_mode) || st->st_rdev != makedev(1, 3))
        e = ENODEV;
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/*
 * The container's /dev/null, proven to be the null device before anything is masked
 * with it (the CVE-2025-31133 class: with no /dev tmpfs the image's own /dev/null, a
 * symlink to /proc/sys/kernel/domainname, made every masked file a writable view of
 * that sysctl).  No symlink at all on the way, and the fd itself must be the character
 * device 1:3; otherwise create fails: a container never starts unmasked.
 */
static int open_dev_null(int sync_fd, int rootfd)
{
    struct stat st;
    int fd = null_node(rootfd, &st);
    if (fd < 0 && errno == ENODEV)
        prc_fail(sync_fd, PRC_STAGE_MASK, 0, "mask paths: the container's `/dev/null` is not the null device "
                 "(character device 1:3)", NULL);
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_MASK, errno, "mask paths: open the container's `/dev/null`", NULL);
    return fd;
}

/*
 * maskedPaths: a file is covered by a bind of the verified /dev/null, a directory by a
 * read-only empty tmpfs.  One tmpfs serves every directory (runc 1.5 does the same: a
 * superblock per masked directory is costly when they are many, e.g. per-CPU sysfs
 * directories): made detached with fsmount for the first one, then cloned from there.
 */
static void mask_paths(const struct prc_plan *plan, int sync_fd, int rootfd)
{
    int null_fd = -1, tmpfs_fd = -1;
    for (int i = 0; i < plan->n_masked; i++) {
        const char *p = plan->masked_paths[i];
        int fd = open_protected(sync_fd, PRC_STAGE_MASK, rootfd, p, "mask");
        if (fd < 0)
            continue;
        int tree;
        if (fd_type(fd) == S_IFDIR) {
            if (tmpfs_fd < 0) {
                /* read-only superblock and mount, as mount("tmpfs", MS_RDONLY) made */
                int fs = (int) syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
                if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
                    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                    prc_fail(sync_fd, PRC_STAGE_MASK, errno, "mask `", p, "`: create tmpfs", NULL);
                tree = (int) syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
                close(fs);
                /* once attached, a copy of this fd names the mounted tmpfs: cloned for the next */
                if (tree >= 0 && (tmpfs_fd = (int) PRC_RETRY(fcntl(tree, F_DUPFD_CLOEXEC, 0))) < 0)
                    tree = -1;
            } else {
                tree = clone_tree(tmpfs_fd, 0);
            }
        } else {
            if (null_fd < 0)
                null_fd = open_dev_null(sync_fd, rootfd);
            tree = clone_tree(null_fd, 0);
        }
        if (tree < 0 || attach_tree(tree, fd) < 0)
            prc_fail(sync_fd, PRC_STAGE_MASK, errno, "mask `", p, "`", NULL);
        close(fd);
    }
    if (null_fd >= 0)
        close(null_fd);
    if (tmpfs_fd >= 0)
        close(tmpfs_fd);
}

/*
 * readonlyPaths: a recursive bind of the path onto itself, read-only on every submount.
 * The detached clone is made read-only before it is attached (mount_setattr only sets
 * MOUNT_ATTR_RDONLY: flags the kernel locked stay as they are, no remount needed).
 */
static void readonly_paths(const struct prc_plan *plan, int sync_fd, int rootfd)
{
    for (int i = 0; i < plan->n_readonly; i++) {
        const char *p = plan->readonly_paths[i];
        int fd = open_protected(sync_fd, PRC_STAGE_READONLY, rootfd, p, "make read-only");
        if (fd < 0)
            continue;
        int tree = clone_tree(fd, 1);
        if (tree < 0)
            prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "bind `", p, "` for read-only", NULL);
        struct mount_attr_compat attr = { .attr_set = MOUNT_ATTR_RDONLY };
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
            prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "make `", p, "` read-only", NULL);
        if (attach_tree(tree, fd) < 0)
            prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "bind `", p, "` read-only", NULL);
        close(fd);
    }
}

/*
 * /dev/ptmx for a terminal (init and exec): opened inside the root, through the usual
 * link to pts/ptmx but never through a magic link, and proven to be the pty multiplexer
 * (character device 5:2) on an O_PATH fd before it is opened for real: an image's
 * /dev/ptmx pointing at a host file or another device is neither opened nor used.
 */
int prc_open_ptmx(int sync_fd)
{
    int rootfd = open_root(sync_fd, PRC_STAGE_TERMINAL);
    struct stat st, st2;
    int path = prc_openat2(rootfd, "/dev/ptmx", O_PATH | O_CLOEXEC, RESOLVE_FLAGS);
    if (path < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "open `/dev/ptmx`", NULL);
    if (fstat(path, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2))
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, 0, "open `/dev/ptmx`: not the pty multiplexer (character device 5:2)", NULL);
    int fd = prc_openat2(rootfd, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, RESOLVE_FLAGS);
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "open `/dev/ptmx`", NULL);
    /* the node checked above, not one swapped in meanwhile */
    if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, 0, "open `/dev/ptmx`: replaced while being opened", NULL);
    close(path);
    close(rootfd);
    return fd;
}

/*
 * A file of the image that the runtime reads itself after pivot_root (/etc/passwd for
 * HOME): resolved inside the root without magic links (a link to /proc/<pid>/root/...
 * would have us read a host file into the container's environment), and opened for
 * reading only once an O_PATH fd shows a regular file (a fifo would block the init, a
 * device would see an open).  An fd, or -1 with errno set.
 */
int prc_open_image_file(const char *path)
{
    int rootfd = (int) PRC_RETRY(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return -1;
    int fd = -1;
    struct stat st, st2;
    int p = prc_openat2(rootfd, path, O_PATH | O_CLOEXEC, RESOLVE_FLAGS);
    if (p >= 0 && fstat(p, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            errno = EINVAL;
        } else {
            fd = prc_openat2(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, RESOLVE_FLAGS);
            /* the file checked above, not one swapped in meanwhile */
            if (fd >= 0 && (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)) {
                close(fd);
                fd = -1;
                errno = EINVAL;
            }
        }
    }
    int saved = errno;
    if (p >= 0)
        close(p);
    close(rootfd);
    errno = saved;
    return fd;
}

/*
 * Bind the pty slave onto /dev/console (made by make_console before pivot_root), from
 * the slave's fd to the console's fd: the console is opened inside the root with no
 * symlink anywhere, checked to be a regular file or character device and the very
 * inode make_console made or checked, and never reached through a path again.
 */
void prc_mount_console(int sync_fd, int slave)
{
    int rootfd = open_root(sync_fd, PRC_STAGE_TERMINAL);
    int fd = prc_openat2(rootfd, "/dev/console", O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_STRICT);
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "open `/dev/console`", NULL);
    struct stat st;
    if (fstat(fd, &st) < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "stat `/dev/console`", NULL);
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, 0, "bind the console on `/dev/console`: not a regular file or "
                 "character device (a symlink is never followed)", NULL);
    /* the inode make_console made or checked, not one put there since (by a hook, or by
       anyone sharing the image's /dev: a hard link to a host file passes the type check) */
    if (st.st_dev != console_id.dev || st.st_ino != console_id.ino)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, 0, "bind the console on `/dev/console`: replaced since it was "
                 "made (never bound onto)", NULL);
    int tree = clone_tree(slave, 0);
    if (tree < 0 || attach_tree(tree, fd) < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "bind the console on `/dev/console`", NULL);
    close(fd);
    close(rootfd);
}

/*
 * runc's reOpenDevNull: a stdio fd that is the caller's /dev/null (create and run -d
 * are often given </dev/null) belongs to a mount of the host's namespace.  Reopen it
 * from the container's own /dev/null, as runc does: an fd on a mount outside the
 * container's namespace is something criu cannot checkpoint ("Can't lookup mount").
 */
static void reopen_dev_null(int sync_fd)
{
    /*
     * The container's /dev/null, reached inside the root with no symlink at all and
     * proven on an O_PATH fd to be the null device before anything opens it: with a
     * plain path, an image's /dev/null swapped between the check and the open for a
     * link through /proc/<pid>/root (no pid namespace) would hand the container's stdio
     * a read-write fd of a host file.  Not the null device: stdio is left as it is.
     */
    int rootfd = open_root(sync_fd, PRC_STAGE_DEVICES);
    struct stat null_st, st;
    int p = null_node(rootfd, &null_st);
    if (p < 0) {
        close(rootfd);
        return;
    }
    int n = -1;     /* opened once, for every stdio fd that is a /dev/null */
    for (int fd = 0; fd < 3; fd++) {
        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != null_st.st_rdev)
            continue;
        if (n < 0) {
            n = prc_openat2(rootfd, "/dev/null", O_RDWR | O_NOFOLLOW | O_CLOEXEC, RESOLVE_STRICT);
            if (n < 0)
                prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "reopen /dev/null as stdio", NULL);
            /* the node checked above, not one swapped in meanwhile */
            if (fstat(n, &st) < 0 || st.st_dev != null_st.st_dev || st.st_ino != null_st.st_ino)
                prc_fail(sync_fd, PRC_STAGE_DEVICES, 0, "reopen /dev/null as stdio: replaced while being opened",
                         NULL);
        }
        if (dup3(n, fd, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_DEVICES, errno, "reopen /dev/null as stdio", NULL);
    }
    if (n >= 0)
        close(n);
    close(p);
    close(rootfd);
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
    prc_write_sysctls(plan, sync_fd);
    int rootfd = open_root(sync_fd, PRC_STAGE_MASK);
    mask_paths(plan, sync_fd, rootfd);
    readonly_paths(plan, sync_fd, rootfd);
    close(rootfd);
    /*
     * A read-only /dev (the config's /dev mount with "ro") was mounted writable: the
     * device nodes, /dev/pts, /dev/shm and the links had to be created in it first.
     * Now it becomes what the config asked, as runc does (finalizeRootfs).
     */
    if (plan->dev_ro_flags &&
        mount(NULL, "/dev", NULL, MS_REMOUNT | plan->dev_ro_flags, plan->dev_ro_data) < 0)
        prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "remount `/dev` read-only", NULL);
    if (plan->readonly_root && remount_bind("/", MS_RDONLY) < 0)
        prc_fail(sync_fd, PRC_STAGE_READONLY, errno, "make root read-only", NULL);
}
