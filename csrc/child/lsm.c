/*
 * AppArmor profile / SELinux label of the container process (process.apparmorProfile,
 * process.selinuxLabel, exec --apparmor / --process-label).
 *
 * Both LSMs take the label of the *next* execve from the task's own
 * /proc/<pid>/attr/.../exec file: AppArmor "exec <profile>" (change_onexec), SELinux
 * the bare context.  The next execve of the init is the one of the sealed exec stub,
 * not of the container's program; a transition there would confine the stub, and the
 * profile (or the policy's entrypoint rules) would then also have to allow a memfd
 * entrypoint and an exec of the program from inside the profile, which runc does not
 * require.  So the stub writes the file itself just before its own execve, as runc's
 * init does just before its exec.
 *
 * The stub cannot be handed a file opened here: since Linux 5.13 an attr file
 * remembers the mm of its opener and refuses writes from any other (the execve of the
 * stub replaces the mm).  It gets an O_PATH fd of the attr *directory* instead, which
 * this file opens and proves: the container's /proc must be the root of a procfs
 * (checked with fstatfs and its root inode number), and the path below it is resolved
 * with no symlink, no magic link and no mount crossing.  A container rootfs (or, for
 * exec, a container process that mounted something over /proc) cannot redirect the
 * write into a file of its own and so run the process unconfined (CVE-2019-16884).
 * The pid comes from getpid(): that is our pid in the namespace of the procfs the
 * container mounted; were it another process's, the kernel refuses the write (a task
 * writes only its own attributes).
 */
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "prc.h"

#ifndef RESOLVE_NO_XDEV
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#endif
#define PROC_ROOT_INO 1

static int is_procfs(int fd)
{
    struct statfs sfs;
    return fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

void prc_lsm_prepare(const struct prc_plan *plan, int sync_fd)
{
    if (!plan->lsm_attr_dir)
        return;
    int proc = (int) PRC_RETRY(open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (proc < 0)
        prc_fail(sync_fd, PRC_STAGE_LSM, errno, "open the container's /proc", NULL);
    struct stat st;
    if (!is_procfs(proc) || fstat(proc, &st) < 0 || st.st_ino != PROC_ROOT_INO)
        prc_fail(sync_fd, PRC_STAGE_LSM, EXDEV, "the container's /proc is not the root of a procfs", NULL);

    char path[64];
    prc_utoa(path, sizeof(path), (unsigned long long) getpid());
    prc_strlcat(path, "/", sizeof(path));
    prc_strlcat(path, plan->lsm_attr_dir, sizeof(path));
    /* no O_CLOEXEC: the stub uses it after the execveat, then closes it */
    int dir = prc_openat2(proc, path, O_PATH | O_DIRECTORY,
                          RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH);
    int saved = errno;
    close(proc);
    if (dir < 0)
        prc_fail(sync_fd, PRC_STAGE_LSM, saved, "open /proc/", path, NULL);
    if (!is_procfs(dir))
        prc_fail(sync_fd, PRC_STAGE_LSM, EXDEV, "/proc/", path, " is not on procfs", NULL);
    /* the stub's argv[1]: "", dir fd, file name, value, path, args...  (exec_stub.c) */
    prc_utoa(plan->stub_argv[1], 16, (unsigned long long) dir);
}
