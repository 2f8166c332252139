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
 * stub replaces the mm).  It gets an fd of the attr *directory* instead,
 * opened through procfs.c (a /proc proven to be the root of a procfs, no symlink, no
 * magic link, no mount crossed below it), so that a container rootfs (or, for exec,
 * a container process that mounted something over /proc) cannot redirect the write
 * into a file of its own and so run the program unconfined (CVE-2019-16884).  The
 * stub opens one fixed name in that directory.
 */
#include "prc.h"

void prc_lsm_prepare(const struct prc_plan *plan, int sync_fd)
{
    if (!plan->lsm_attr_dir)
        return;
    char path[64] = "self/";
    prc_strlcat(path, plan->lsm_attr_dir, sizeof(path));
    /* O_RDONLY: procfs.c adds O_NOCTTY, which openat2 refuses with O_PATH */
    int dir = prc_proc_open(path, O_RDONLY | O_DIRECTORY);
    if (dir < 0)
        prc_fail(sync_fd, PRC_STAGE_LSM, errno, "open /proc/", path, " of the container", NULL);
    /* it must survive the execveat of the stub, which closes it after use */
    if (fcntl(dir, F_SETFD, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_LSM, errno, "keep /proc/", path, " open for the exec stub", NULL);
    /* the stub's argv: "", "lsm", dir fd, file name, value, ... (stub/exec_stub.c) */
    prc_utoa(plan->lsm_argv[2], 16, (unsigned long long) dir);
}
