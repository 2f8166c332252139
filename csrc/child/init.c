/*
 * The container init (and exec'd processes): the ordered stages between clone and
 * execve.  Child code: no allocation, no stdio, errors via prc_fail().
 *
 * Order, and why (runc's standard_init_linux.go and nsexec.c follow the same):
 *   signals reset, non-dumpable      before anything reads our memory or signals us
 *   wait GO                          the parent writes id maps and joins cgroups first
 *   unshare cgroup ns                now, so its root is the container's cgroup
 *   setresuid(0) in a new userns     become root of the namespace, now that 0 is mapped
 *   hostname, rootfs                 needs CAP_SYS_ADMIN over the new uts/mount ns
 *   HOOKS round trip                 prestart/createRuntime/createContainer, before pivot
 *   pivot_root, masks, ro, sysctl    needs the container's /proc
 *   process: terminal, rlimits, seccomp (early), user + caps, nnp, seccomp (late), cwd
 *   exec check                       so `create` reports a missing executable
 *   READY, then wait for start       fifo (create/start) or a sync record (run)
 *   execveat(stub)                   the sealed stub sets the LSM label (lsm.c), does the final execve
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "prc.h"

static void reset_signals(void)
{
    /*
     * The clone inherited the Python parent's dispositions: its C-level handlers
     * (which would touch interpreter state) and SIG_IGN for SIGPIPE, which execve
     * keeps.  A container starts with every signal at SIG_DFL.  Signals stay blocked
     * (prc_spawn blocked them before clone) until just before the exec.
     */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        (void) sigaction(sig, &sa, NULL);
    }
}

static void wait_for_start(const struct prc_plan *plan, int sync_fd)
{
    if (plan->wait_mode == PRC_WAIT_SYNC) {
        prc_child_expect(sync_fd, PRC_MSG_START);
        return;
    }
    if (plan->wait_mode != PRC_WAIT_FIFO)
        return;
    /*
     * runc's protocol: the init opens <state>/exec.fifo for writing, which blocks
     * until `start` opens it for reading, then writes one byte.  The fd of the state
     * directory was opened by the parent before pivot_root; it still names the host
     * directory (a dirfd survives the old root's detach).  `start` reading the byte
     * means it saw a live init; an empty read means the init died.
     */
    int fd = (int) PRC_RETRY(openat(plan->fifo_dirfd, "exec.fifo", O_WRONLY | O_CLOEXEC));
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_WAIT, errno, "open exec fifo", NULL);
    if (PRC_RETRY(write(fd, "0", 1)) != 1)
        prc_fail(sync_fd, PRC_STAGE_WAIT, errno, "write exec fifo", NULL);
    close(fd);
}

void prc_child_main(struct prc_plan *plan)
{
    int sync_fd = plan->sync_fd;

    reset_signals();
    /*
     * Non-dumpable: until the exec our memory is a copy of the host Python's, and
     * /proc/<pid>/exe names the host interpreter.  With dumpable 0, processes in the
     * container (even root, without CAP_SYS_PTRACE in the host user namespace) cannot
     * ptrace us or open our /proc/<pid>/{exe,mem,fd}.  execve of the stub resets it.
     */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_SYNC, errno, "prctl PR_SET_DUMPABLE", NULL);

    /* first, so the parent's work overlaps it, and before unshare(CLONE_NEWCGROUP);
       after a stage-1 this is a no-op: stage-1 joined and we inherited its cgroups */
    prc_join_cgroups(plan, sync_fd);
    prc_child_expect(sync_fd, PRC_MSG_GO);

    if ((plan->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
        prc_fail(sync_fd, PRC_STAGE_SYNC, errno, "unshare cgroup namespace", NULL);

    if (plan->userns) {
        if (prc_setresgid(0, 0, 0) < 0 || prc_setresuid(0, 0, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_USERNS, errno, "become root in the user namespace", NULL);
    }
    /* runc makes every init a session leader (nsexec.c) */
    if (plan->setsid && setsid() < 0)
        prc_fail(sync_fd, PRC_STAGE_PROCESS, errno, "setsid", NULL);

    if (plan->mode == PRC_MODE_INIT) {
        if (plan->hostname && sethostname(plan->hostname, strlen(plan->hostname)) < 0)
            prc_fail(sync_fd, PRC_STAGE_HOSTNAME, errno, "set hostname `", plan->hostname, "`", NULL);
        if (plan->domainname && setdomainname(plan->domainname, strlen(plan->domainname)) < 0)
            prc_fail(sync_fd, PRC_STAGE_HOSTNAME, errno, "set domainname `", plan->domainname, "`", NULL);
        prc_setup_rootfs(plan, sync_fd);
        prc_child_send(sync_fd, PRC_MSG_HOOKS, 0);
        prc_child_expect(sync_fd, PRC_MSG_HOOKS_DONE);
        prc_finish_rootfs(plan, sync_fd);
    }

    prc_setup_process(plan, sync_fd);

    prc_child_send(sync_fd, PRC_MSG_READY, 0);
    wait_for_start(plan, sync_fd);

    /* from here on signals behave as the container expects: unblock them */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    syscall(SYS_execveat, plan->stub_fd, "", plan->lsm_attr_dir ? plan->stub_argv : plan->argv,
            plan->envp, AT_EMPTY_PATH);
    prc_fail(sync_fd, PRC_STAGE_EXEC, errno, "exec `", plan->argv[0], "`", NULL);
}
