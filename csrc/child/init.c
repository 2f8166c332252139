/*
 * The container init (and exec'd processes): the ordered stages between clone and
 * execve.  Child code: no allocation, no stdio, errors via prc_fail().
 *
 * Order, and why (runc's standard_init_linux.go and nsexec.c follow the same):
 *   signals reset, non-dumpable      before anything reads our memory or signals us
 *   wait GO                          the parent writes id maps and joins cgroups first
 *                                    (early_setup: GO is awaited after the rootfs, below)
 *   unshare cgroup ns                now, so its root is the container's cgroup (with
 *                                    early_setup: we are in every one of them already)
 *   setresuid(0) in a new userns     become root of the namespace, now that 0 is mapped
 *   hostname, rootfs                 needs CAP_SYS_ADMIN over the new uts/mount ns
 *   HOOKS round trip                 prestart/createRuntime/createContainer, before pivot
 *   pivot_root, masks, ro, sysctl    needs the container's /proc
 *   process: terminal, close host fds, rlimits, cwd, seccomp (early: no nnp), user +
 *            caps, cwd again if refused before, nnp, exec check, seccomp (late: nnp with
 *            a notify listener)
 *   READY, then wait for start       fifo (create/start) or a sync record (run)
 *   execveat(stub)                   the sealed stub does the final execve; with nnp and
 *                                    no listener it loads the filter just before it;
 *                                    with an LSM label it writes it (lsm.c) first
 */
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

/*
 * GO says the parent has recorded our pid in state.json: from then on `delete --force`
 * finds us even if the parent dies.  Before it, with early_setup, PDEATHSIG kills us
 * with the parent (the parent dying before prctl below only means we finish the
 * mounts in our own namespaces and exit on EOF here, as without early_setup).
 */
static void await_go(const struct prc_plan *plan, int sync_fd)
{
    prc_child_expect(sync_fd, PRC_MSG_GO);
    /* create exits while we wait for start: its death must not kill us now */
    if (plan->early_setup && prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_SYNC, errno, "prctl PR_SET_PDEATHSIG", NULL);
}

/*
 * A new network namespace has only `lo`, and down: a program talking to 127.0.0.1
 * would fail unless a network plugin came by.  runc brings it up in every network
 * namespace it makes (specconv's "loopback" network), so callers (ctr run, a plain
 * `run`) rely on it.  One namespace joined by path is its owner's business.
 */
static void loopback_up(int sync_fd)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        prc_fail(sync_fd, PRC_STAGE_NETWORK, errno, "open a socket to set up `lo`", NULL);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    prc_strlcpy(ifr.ifr_name, "lo", sizeof(ifr.ifr_name));
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        prc_fail(sync_fd, PRC_STAGE_NETWORK, errno, "read the flags of `lo`", NULL);
    if (!(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            prc_fail(sync_fd, PRC_STAGE_NETWORK, errno, "bring up the loopback device `lo`", NULL);
    }
    close(s);
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
    /*
     * Except for a rootless caller's new user namespace: the /proc/<pid> files of a
     * non-dumpable process belong to the host's root, so the unprivileged parent (and
     * newuidmap, which checks the target's owner) could not open our uid_map.  Until
     * GO we only wait, nothing of the container exists yet, and only the caller's own
     * uid could ptrace us; we become non-dumpable as soon as the maps are written.
     */
    if (!plan->dumpable_until_go && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_SYNC, errno, "prctl PR_SET_DUMPABLE", NULL);

    /* first, so the parent's work overlaps it, and before unshare(CLONE_NEWCGROUP);
       after a stage-1 this is a no-op: stage-1 joined and we inherited its cgroups */
    prc_join_cgroups(plan, sync_fd);
    /*
     * early_setup (chosen by the parent only with a new mount namespace, no user
     * namespace, no namespace to join and no systemd): nothing up to the end of the
     * rootfs needs the parent, and every mount lands in our own namespace, gone with
     * us.  The parent's pid record and cgroup join overlap our mounts.  With a cgroup
     * namespace the parent asks for it only when we are in all our cgroups by now: the
     * v1 ones joined just above, the cgroup2 one by clone3, which only we can tell
     * (an old kernel or a refusal falls back to clone(2), and the parent joins us).
     */
    int go_pending = plan->early_setup && (!plan->early_needs_into || prc_cloned_into_cgroup);
    if (go_pending) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_SYNC, errno, "prctl PR_SET_PDEATHSIG", NULL);
    } else {
        await_go(plan, sync_fd);
    }
    if (plan->dumpable_until_go && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_SYNC, errno, "prctl PR_SET_DUMPABLE", NULL);

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
        /* CLONE_NEWNET is in clone_flags only when the namespace is made, not joined */
        if (plan->clone_flags & CLONE_NEWNET)
            loopback_up(sync_fd);
        if (plan->hostname && sethostname(plan->hostname, strlen(plan->hostname)) < 0)
            prc_fail(sync_fd, PRC_STAGE_HOSTNAME, errno, "set hostname `", plan->hostname, "`", NULL);
        if (plan->domainname && setdomainname(plan->domainname, strlen(plan->domainname)) < 0)
            prc_fail(sync_fd, PRC_STAGE_HOSTNAME, errno, "set domainname `", plan->domainname, "`", NULL);
        prc_setup_rootfs(plan, sync_fd);
        if (plan->sync_hooks) {
            /* the hooks get our pid in their state: it must be recorded first */
            if (go_pending) {
                await_go(plan, sync_fd);
                go_pending = 0;
            }
            prc_child_send(sync_fd, PRC_MSG_HOOKS, 0);
            prc_child_expect(sync_fd, PRC_MSG_HOOKS_DONE);
        }
        prc_finish_rootfs(plan, sync_fd);
    }
    /* before the process setup: it sends the pty and the seccomp listener, and a
       listener's answer is a GO of its own */
    if (go_pending)
        await_go(plan, sync_fd);

    prc_setup_process(plan, sync_fd);

    prc_child_send(sync_fd, PRC_MSG_READY, 0);
    wait_for_start(plan, sync_fd);

    /* from here on signals behave as the container expects: unblock them */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    char **argv = plan->argv;
    if (plan->stub_argv) {
        /* the stub loads the filter (stub/exec_stub.c): it gets the filter memfd and
           the sync socket (to report a refused execve) across this exec */
        char num[24];
        prc_utoa(plan->stub_param, 64, (unsigned) plan->seccomp_fd);
        prc_strlcat(plan->stub_param, ":", 64);
        prc_utoa(num, sizeof(num), plan->seccomp_flags);
        prc_strlcat(plan->stub_param, num, 64);
        prc_strlcat(plan->stub_param, ":", 64);
        prc_utoa(num, sizeof(num), (unsigned) sync_fd);
        prc_strlcat(plan->stub_param, num, 64);
        plan->stub_argv[1] = plan->stub_param;
        if (fcntl(plan->seccomp_fd, F_SETFD, 0) < 0 || fcntl(sync_fd, F_SETFD, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_EXEC, errno, "pass the seccomp filter to the exec stub", NULL);
        argv = plan->stub_argv;
    }
    if (plan->lsm_attr_dir)
        argv = plan->lsm_argv;  /* in front of the above (its entries copied by plan.py) */
    syscall(SYS_execveat, plan->stub_fd, "", argv, plan->envp, AT_EMPTY_PATH);
    prc_fail(sync_fd, PRC_STAGE_EXEC, errno, "exec `", plan->argv[0], "`", NULL);
}
