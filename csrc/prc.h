/*
 * prc.h: internal header for every C file of pyrunc._native.
 *
 * Two kinds of code live here:
 *  - child/: runs in the cloned child between clone and execve.  The parent is a
 *    Python process that may have other threads; a raw clone copies their locks in
 *    whatever state they were, and runs no atfork handlers.  So child code calls only
 *    async-signal-safe functions (raw syscalls, no malloc, no stdio, no locale, no
 *    Python), uses fixed buffers, and reports failures as one prc_msg then _exit().
 *  - host/: called from Python in the parent; may allocate.
 */
#ifndef PRC_H
#define PRC_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "pyrunc_api.h"

#define PRC_VERSION "0.1.0"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* retry a syscall interrupted by a signal */
#define PRC_RETRY(expr) ({ long _r; do { _r = (long) (expr); } while (_r == -1 && errno == EINTR); _r; })

/* kernel constants that old userspace headers may lack */
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10
#endif

/* ---- child-side helpers (async-signal-safe) ---- */

/* the child's error record, filled by prc_fail*() and sent to the parent */
struct prc_child {
    const struct prc_plan *plan;
    int sync_fd;
    int rootfd;                 /* O_PATH fd of the rootfs (host path), before pivot */
};

/* string helpers that never allocate */
size_t prc_strlcpy(char *dst, const char *src, size_t size);
size_t prc_strlcat(char *dst, const char *src, size_t size);
void prc_utoa(char *buf, size_t size, unsigned long long v);

/*
 * Build "a b c ..." (NULL-terminated list of strings) into msg->text, send it as
 * PRC_MSG_ERROR with stage and err, then _exit(1).  Never returns.
 */
__attribute__((noreturn, sentinel)) void prc_fail(int sync_fd, int stage, int err, ...);

/* write a record to the sync fd; errors are ignored (the parent sees EOF) */
void prc_child_send(int sync_fd, int type, int value);
/* block for one record of the given type; anything else or EOF: _exit */
void prc_child_expect(int sync_fd, int type);

/* the parts of the init, in child/ */
void prc_child_main(struct prc_plan *plan) __attribute__((noreturn));
void prc_setup_rootfs(const struct prc_plan *plan, int sync_fd);
void prc_finish_rootfs(const struct prc_plan *plan, int sync_fd);
/* terminal (mount.c): /dev/ptmx opened inside the root and checked; the pty slave bound
   onto the container's /dev/console (init only) */
int prc_open_ptmx(int sync_fd);
void prc_mount_console(int sync_fd, int slave);
/* a regular file of the image opened for reading inside the root (mount.c), or -1 */
int prc_open_image_file(const char *path);
void prc_setup_process(const struct prc_plan *plan, int sync_fd);
/* the verified attr directory fd the exec stub writes the LSM label through (lsm.c) */
void prc_lsm_prepare(const struct prc_plan *plan, int sync_fd);
/* join the v1 cgroups listed in the plan by a thread-only move (util.c); once */
void prc_join_cgroups(const struct prc_plan *plan, int sync_fd);
/* set in the child when clone3(CLONE_INTO_CGROUP) created it in its cgroup2 cgroup (spawn.c) */
extern int prc_cloned_into_cgroup;
/* set once the v1 cgroups are joined (util.c) */
extern int prc_cgroups_joined;

/* lowercase hex digits at p into *v: the first other character, or NULL if none */
const char *prc_parse_hex(const char *p, unsigned long *v);
/*
 * fn on each line of fd, read through buf (size bytes): the line without its '\n'
 * (the last one also when it has none), NUL-terminated and writable.  A line that does
 * not fit in buf is skipped whole.  Stops at fn's first non-zero answer and returns
 * it; 0 at the end of fd, -1 (errno set) when a read fails.
 */
int prc_each_line(int fd, char *buf, size_t size, int (*fn)(char *line, void *ctx), void *ctx);

/* raw syscall wrappers */
int prc_openat2(int dirfd, const char *path, int flags, uint64_t resolve);

/*
 * Credential changes in the child go straight to the kernel, never through glibc's
 * setresuid/setresgid/setgroups.  In a process with more than one thread glibc makes
 * those calls process-wide: it signals every thread it knows of (SIGSETXID) and waits
 * on a futex for each to follow, under its thread-list lock.  Our child is a raw
 * clone of the Python process, so glibc's thread list still names the parent's other
 * threads (pyrunc/rcuwarm.py starts one), which do not exist in the child: the wait
 * never ends, or the lock was held by a thread at clone time.  Seen as a container
 * init hung in futex_wait.  The raw syscalls change only the calling thread, which in
 * the child is the whole process.
 */
static inline int prc_setresuid(uid_t r, uid_t e, uid_t s) { return (int) syscall(SYS_setresuid, r, e, s); }
static inline int prc_setresgid(gid_t r, gid_t e, gid_t s) { return (int) syscall(SYS_setresgid, r, e, s); }
static inline int prc_setgroups(size_t n, const gid_t *list) { return (int) syscall(SYS_setgroups, n, list); }

/*
 * Files under /proc (child/procfs.c): path is relative to /proc ("sys/kernel/shmmax",
 * "self/attr/exec", "123/uid_map").  Opened only from a verified procfs root, without
 * following any symlink or crossing any mount, and the fd is checked to be on procfs;
 * EXDEV when something was mounted or linked in the way.  -1 and errno on failure.
 */
int prc_proc_open(const char *path, int flags);
/* keyring.c: join (make) session keyring `name`, add perm_add; 0 or -errno, *step what failed */
int prc_join_keyring(const char *name, unsigned int perm_add, const char **step);
int prc_proc_write(const char *path, const char *data, size_t len);
/* linux.sysctl through prc_proc_write, after pivot_root; fails the child */
void prc_write_sysctls(const struct prc_plan *plan, int sync_fd);

#endif
