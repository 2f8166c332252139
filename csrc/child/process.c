/*
 * Process attributes of the container process: terminal, rlimits, seccomp, user,
 * groups, capabilities, no_new_privs, cwd, fds, and the check of the executable.
 */
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <termios.h>

#include "prc.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static void setup_terminal(const struct prc_plan *plan, int sync_fd)
{
    /*
     * The pty comes from the container's own devpts (/dev/ptmx -> pts/ptmx), so the
     * slave is /dev/pts/0 inside.  TIOCGPTPEER opens the slave from the master
     * without a path lookup.  The master goes to the parent, which hands it to the
     * --console-socket; we keep only the slave as our controlling tty and stdio.
     */
    int master = prc_open_ptmx(sync_fd);
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "unlock pty", NULL);
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "open pty slave", NULL);
    if (plan->console_rows && plan->console_cols) {
        /* process.consoleSize, here rather than by the parent on the master: an exec'd
           process may read its size before the parent has handled the master */
        struct winsize ws = { .ws_row = plan->console_rows, .ws_col = plan->console_cols };
        if (ioctl(master, TIOCSWINSZ, &ws) < 0)
            prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "set console size", NULL);
    }
    /*
     * The process's user owns its terminal (as with runc), or it could not use it
     * once it is no longer root.  Only the owner: the group stays what devpts gave
     * (its gid= option, 5 = tty in the default config).  EINVAL (uid not mapped in a
     * user namespace), EPERM and EROFS leave it as it is, as runc does.
     */
    if (fchown(slave, plan->uid, (gid_t) -1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "chown pty slave", NULL);
    struct prc_msg msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = PRC_MSG_PTY;
    if (prc_sync_send(sync_fd, &msg, master) < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "send pty master", NULL);
    close(master);
    if (plan->mode == PRC_MODE_INIT)
        prc_mount_console(sync_fd, slave);
    if (ioctl(slave, TIOCSCTTY, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "set controlling terminal", NULL);
    for (int fd = 0; fd < 3; fd++)
        if (dup3(slave, fd, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_TERMINAL, errno, "dup pty slave onto stdio", NULL);
    if (slave > 2)
        close(slave);
}

static void load_seccomp(const struct prc_plan *plan, int sync_fd)
{
    struct sock_fprog prog = {
        .len = (unsigned short) plan->seccomp_len,
        .filter = (struct sock_filter *) plan->seccomp_prog,
    };
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, plan->seccomp_flags, &prog);
    if (fd < 0)
        prc_fail(sync_fd, PRC_STAGE_SECCOMP, errno, "load seccomp filter", NULL);
    if (plan->seccomp_notify) {
        struct prc_msg msg;
        memset(&msg, 0, sizeof(msg));
        msg.type = PRC_MSG_SECCOMP_FD;
        /*
         * The parent answers with HOOKS_DONE-style acknowledgement so that it owns
         * the listener before we exec (the profile may trap syscalls we still make).
         */
        if (prc_sync_send(sync_fd, &msg, (int) fd) < 0)
            prc_fail(sync_fd, PRC_STAGE_SECCOMP, errno, "send seccomp listener", NULL);
        close((int) fd);
        prc_child_expect(sync_fd, PRC_MSG_GO);
    }
}

/*
 * A process re-opens its stdio through /proc/self/fd (`echo > /dev/stdout`, a log
 * file symlinked there), which checks the inode's permissions: the pipes, FIFOs and
 * files a caller hands over are usually its own, mode 0600.  As runc and crun, make
 * them the process user's before the switch (the owner only; the group may not be
 * mapped).  Never a character or block device: that would be a node of the host
 * (its /dev/null, the caller's terminal; the pty slave of a terminal is chowned
 * where it is made).  EINVAL (a uid the user namespace does not map), EPERM (an inode
 * owned by someone it does not map) and EROFS leave it as it is, as runc does.
 */
static void fix_stdio_owner(const struct prc_plan *plan, int sync_fd)
{
    for (int fd = 0; fd < 3; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0 || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || st.st_uid == plan->uid)
            continue;
        if (fchown(fd, plan->uid, (gid_t) -1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
            prc_fail(sync_fd, PRC_STAGE_USER, errno, "give stdio to the process user", NULL);
    }
}

static void set_user_and_caps(const struct prc_plan *plan, int sync_fd)
{
    if (plan->set_caps) {
        /* the bounding set first: dropping needs CAP_SETPCAP, which we still have */
        for (int cap = 0; cap <= plan->cap_last; cap++) {
            if (plan->cap_bounding & (1ULL << cap))
                continue;
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                prc_fail(sync_fd, PRC_STAGE_CAPS, errno, "drop capability from the bounding set", NULL);
        }
        /* keep permitted capabilities across the uid change; capset below trims them */
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_CAPS, errno, "prctl PR_SET_KEEPCAPS", NULL);
    }
    if (plan->set_groups && prc_setgroups((size_t) plan->n_groups, (const gid_t *) plan->groups) < 0)
        prc_fail(sync_fd, PRC_STAGE_USER, errno, "setgroups", NULL);
    if (prc_setresgid(plan->gid, plan->gid, plan->gid) < 0) {
        char num[24];
        prc_utoa(num, sizeof(num), plan->gid);
        prc_fail(sync_fd, PRC_STAGE_USER, errno, "setgid to ", num, NULL);
    }
    if (prc_setresuid(plan->uid, plan->uid, plan->uid) < 0) {
        char num[24];
        prc_utoa(num, sizeof(num), plan->uid);
        prc_fail(sync_fd, PRC_STAGE_USER, errno, "setuid to ", num, NULL);
    }
    if (!plan->set_caps)
        return;
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_CAPS, errno, "prctl PR_SET_KEEPCAPS", NULL);
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    for (int i = 0; i < 2; i++) {
        data[i].effective = (uint32_t) (plan->cap_effective >> (32 * i));
        data[i].permitted = (uint32_t) (plan->cap_permitted >> (32 * i));
        data[i].inheritable = (uint32_t) (plan->cap_inheritable >> (32 * i));
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        prc_fail(sync_fd, PRC_STAGE_CAPS, errno, "capset", NULL);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        prc_fail(sync_fd, PRC_STAGE_CAPS, errno, "clear ambient capabilities", NULL);
    for (int cap = 0; cap <= plan->cap_last; cap++) {
        if (!(plan->cap_ambient & (1ULL << cap)))
            continue;
        /* an ambient capability must be permitted and inheritable; runc only warns */
        (void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    }
}

/* PATH lookup the way execvp does it, but reporting what went wrong */
static void resolve_exec(const struct prc_plan *plan, int sync_fd)
{
    const char *name = plan->argv[1];
    char *out = plan->exec_path;
    struct stat st;
    if (!name || !*name)
        prc_fail(sync_fd, PRC_STAGE_EXEC, EINVAL, "exec: empty process.args[0]", NULL);
    if (strchr(name, '/')) {
        prc_strlcpy(out, name, PRC_PATH_MAX);
        if (stat(out, &st) < 0)
            prc_fail(sync_fd, PRC_STAGE_EXEC, errno, "exec: \"", name, "\": stat ", name, NULL);
        if (S_ISDIR(st.st_mode))
            prc_fail(sync_fd, PRC_STAGE_EXEC, EACCES, "exec: \"", name, "\": is a directory", NULL);
        if (access(out, X_OK) < 0)
            prc_fail(sync_fd, PRC_STAGE_EXEC, errno, "exec: \"", name, "\"", NULL);
        plan->argv[0] = out;
        return;
    }
    const char *path = plan->path_env ? plan->path_env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int denied = 0;
    const char *p = path;
    while (1) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t) (end - p) : strlen(p);
        if (len == 0) {
            out[0] = '.';
            out[1] = '\0';
        } else if (len < PRC_PATH_MAX - 2) {
            memcpy(out, p, len);
            out[len] = '\0';
        } else {
            out[0] = '\0';
        }
        if (out[0]) {
            prc_strlcat(out, "/", PRC_PATH_MAX);
            prc_strlcat(out, name, PRC_PATH_MAX);
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(out, X_OK) == 0) {
                    plan->argv[0] = out;
                    return;
                }
                denied = 1;
            }
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (denied)
        prc_fail(sync_fd, PRC_STAGE_EXEC, EACCES, "exec: \"", name, "\"", NULL);
    prc_fail(sync_fd, PRC_STAGE_EXEC, 0, "exec: \"", name, "\": executable file not found in $PATH", NULL);
}

/*
 * runc's default HOME: when the process env has none, the home directory of the uid
 * in the container's /etc/passwd (read after pivot_root or after joining the mount
 * namespace), else "/".  Parsed in fixed buffers, a line at a time.
 */
struct home_search {
    unsigned int uid;
    char *out;
    size_t size;
};

/* one /etc/passwd line, name:passwd:uid:gid:gecos:home:shell: 1 when it is uid's */
static int passwd_line(char *line, void *ctx)
{
    struct home_search *h = ctx;
    char *f[7] = { line };
    int nf = 1;
    for (char *c = line; *c && nf < 7; c++)
        if (*c == ':') {
            *c = '\0';
            f[nf++] = c + 1;
        }
    if (nf < 6 || !f[2][0])
        return 0;
    unsigned long v = 0;
    char *c = f[2];
    while (*c >= '0' && *c <= '9')
        v = v * 10 + (unsigned long) (*c++ - '0');
    if (*c || v != h->uid || !f[5][0])
        return 0;
    prc_strlcpy(h->out, f[5], h->size);
    return 1;
}

static int passwd_home(unsigned int uid, char *out, size_t size)
{
    int fd = prc_open_image_file("/etc/passwd");
    if (fd < 0)
        return -1;
    char buf[8192];
    struct home_search h = { .uid = uid, .out = out, .size = size };
    int found = prc_each_line(fd, buf, sizeof(buf), passwd_line, &h) == 1 ? 0 : -1;
    close(fd);
    return found;
}

static void set_home(const struct prc_plan *plan)
{
    char home[PRC_PATH_MAX];
    if (passwd_home(plan->uid, home, sizeof(home)) < 0)
        prc_strlcpy(home, "/", sizeof(home));
    prc_strlcpy(plan->home_buf, "HOME=", PRC_PATH_MAX + 8);
    prc_strlcat(plan->home_buf, home, PRC_PATH_MAX + 8);
    ((char **) plan->envp)[plan->home_slot] = plan->home_buf;
}

/*
 * A process keeps its parent's session keyring across fork and exec, and possesses
 * every key hanging off it: whatever the caller (containerd, a systemd service, a
 * login shell) keeps there would be readable in the container.  As runc, the init
 * joins a keyring of its own, `_ses.<id>` (keyring.c), and `exec` joins the same one
 * by name.  A kernel without keys (ENOSYS) is let be, as runc does: there is then no
 * keyring to inherit.
 */
static void join_session_keyring(const struct prc_plan *plan, int sync_fd)
{
    /* SELinux labels a new key with the creator's keycreate context (reset by the
       exec): the container's label, through a /proc proven to be procfs */
    if (plan->keyring_label &&
            prc_proc_write("self/attr/keycreate", plan->keyring_label, strlen(plan->keyring_label)) < 0)
        prc_fail(sync_fd, PRC_STAGE_LSM, errno, "set the label of session keyring `", plan->session_keyring,
                 "`", NULL);
    const char *step = "";
    int r = prc_join_keyring(plan->session_keyring, plan->keyring_perm, &step);
    if (r < 0 && r != -ENOSYS)
        prc_fail(sync_fd, PRC_STAGE_PROCESS, -r, step, " session keyring `", plan->session_keyring, "`", NULL);
}

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif

struct prc_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

static void set_priorities(const struct prc_plan *plan, int sync_fd)
{
    if (plan->set_sched) {
        /* sched_setattr covers every policy (SCHED_DEADLINE's runtime/deadline/period
           too) and the nice value in one call; glibc has no wrapper */
        struct prc_sched_attr a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.sched_policy = plan->sched_policy;
        a.sched_flags = plan->sched_flags;
        a.sched_nice = plan->sched_nice;
        a.sched_priority = plan->sched_priority;
        a.sched_runtime = plan->sched_runtime;
        a.sched_deadline = plan->sched_deadline;
        a.sched_period = plan->sched_period;
        if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_PROCESS, errno, "set scheduler (sched_setattr)", NULL);
    }
    /* IOPRIO_WHO_PROCESS = 1, who 0: ourselves; kept across execve */
    if (plan->set_ioprio && syscall(SYS_ioprio_set, 1, 0, plan->ioprio) < 0)
        prc_fail(sync_fd, PRC_STAGE_PROCESS, errno, "set io priority (ioprio_set)", NULL);
}

/*
 * Close every fd above the preserved ones except those the init still needs: the
 * sync socket, the sealed stub, (create/start) the state directory for exec.fifo, and
 * the filter memfd for the stub (all close-on-exec).  Everything else is a host object the process must not
 * reach, even for a moment: cgroup v1 directories it joined, namespace files, idmap
 * trees, whatever the caller leaked.  Through /proc/self/fd/N a leaked directory fd
 * is a way out of the root (CVE-2024-21626), so this runs before the cwd is entered.
 */
static void close_host_fds(const struct prc_plan *plan, int sync_fd, unsigned int first)
{
    int keep[4] = { plan->sync_fd, plan->stub_fd, plan->fifo_dirfd, plan->stub_argv ? plan->seccomp_fd : -1 };
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    unsigned int from = first;
    for (int i = 0; i <= 4; i++) {
        unsigned int to = i < 4 ? (unsigned int) keep[i] : ~0U;
        if (i < 4 && (keep[i] < 0 || (unsigned int) keep[i] < from))
            continue;
        if (to > from && syscall(SYS_close_range, from, to == ~0U ? ~0U : to - 1, 0) < 0)
            prc_fail(sync_fd, PRC_STAGE_FDS, errno, "close inherited fds", NULL);
        if (i < 4)
            from = to + 1;
    }
}

/*
 * Enter process.cwd without leaving the container's root (CVE-2024-21626).  The path
 * is resolved by openat2 with "/" as the root (RESOLVE_IN_ROOT: ".." and absolute
 * symlinks stay inside) and without magic links (RESOLVE_NO_MAGICLINKS: no
 * /proc/self/fd/N, /proc/<pid>/cwd or /proc/self/root jumping to a host object), then
 * fchdir'd.  Whatever the path did, getcwd must then report a path under our root:
 * for a cwd outside it the kernel answers "(unreachable)/...".
 *
 * As runc: the first attempt is made before the user switch (a 0700 directory owned by
 * root works for a process that will run as uid 1000); if that is refused with
 * EACCES/EPERM the caller retries after the switch (a directory only the user may
 * enter).  Returns 0, or the errno of a refusal worth retrying when !last.
 */
static int enter_cwd(const struct prc_plan *plan, int sync_fd, int last)
{
    int e = 0;
    int root = (int) PRC_RETRY(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root < 0)
        prc_fail(sync_fd, PRC_STAGE_CWD, errno, "open `/` to resolve cwd", NULL);
    int fd = prc_openat2(root, plan->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC,
                         RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd < 0 && errno == ENOSYS) {
        /* openat2 answered ENOSYS: a seccomp profile (loaded before the user switch
           without no_new_privs) hides it.  Plain chdir; the getcwd check below still
           refuses a cwd outside the root, and no host fd but close-on-exec ones is left */
        close(root);
        if (chdir(plan->cwd) < 0)
            e = errno;
        goto check;
    }
    close(root);
    if (fd < 0) {
        e = errno;
    } else {
        if (fchdir(fd) < 0)
            e = errno;
        close(fd);
    }
check:
    if (e) {
        if (!last && (e == EACCES || e == EPERM))
            return e;
        prc_fail(sync_fd, PRC_STAGE_CWD, e == ELOOP ? ELOOP : e, "chdir to cwd (\"", plan->cwd,
                 "\") set in config.json failed", NULL);
    }
    char buf[PRC_PATH_MAX];
    long n = syscall(SYS_getcwd, buf, sizeof(buf));
    if (n < 0)
        prc_fail(sync_fd, PRC_STAGE_CWD, errno, "getcwd after chdir to cwd (\"", plan->cwd, "\")", NULL);
    if (buf[0] != '/')
        prc_fail(sync_fd, PRC_STAGE_CWD, 0, "cwd (\"", plan->cwd,
                 "\") is outside of the container's root: possible container breakout detected", NULL);
    return 0;
}

void prc_setup_process(const struct prc_plan *plan, int sync_fd)
{
    /* first: a seccomp profile or the user switch could forbid reading it */
    if (plan->home_slot >= 0)
        set_home(plan);
    /* before the user switch and seccomp, either of which could refuse keyctl */
    if (plan->session_keyring)
        join_session_keyring(plan, sync_fd);

    if (plan->terminal)
        setup_terminal(plan, sync_fd);

    /*
     * Only fds 0-2 and the preserved ones (3 .. 3+N-1, which include LISTEN_FDS) may
     * reach the container: callers leak their own (containerd's ttrpc socket).  Mark
     * everything above CLOEXEC rather than closing it: the sync socket, the state dir
     * and the stub are still needed until the exec, and the exec closes them.  Done
     * first, before a seccomp profile could refuse close_range.
     */
    unsigned int first = 3 + (unsigned int) plan->preserve_fds;
    close_host_fds(plan, sync_fd, first);
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        prc_fail(sync_fd, PRC_STAGE_FDS, errno, "mark inherited fds close-on-exec", NULL);
    for (int fd = 3; fd < (int) first; fd++)
        if (fcntl(fd, F_SETFD, 0) < 0 && errno != EBADF)
            prc_fail(sync_fd, PRC_STAGE_FDS, errno, "keep preserved fd", NULL);
    /* after the CLOEXEC sweep (its fd must reach the stub), before seccomp and the
       user switch (which could refuse openat2 or the container's /proc) */
    prc_lsm_prepare(plan, sync_fd);

    for (int i = 0; i < plan->n_rlimits; i++) {
        struct rlimit rl = { .rlim_cur = plan->rlimits[i].soft, .rlim_max = plan->rlimits[i].hard };
        if (setrlimit(plan->rlimits[i].resource, &rl) < 0) {
            char num[24];
            prc_utoa(num, sizeof(num), (unsigned) plan->rlimits[i].resource);
            prc_fail(sync_fd, PRC_STAGE_RLIMIT, errno, "setrlimit ", num, NULL);
        }
    }
    if (plan->personality >= 0 && personality((unsigned long) plan->personality) < 0)
        prc_fail(sync_fd, PRC_STAGE_PROCESS, errno, "set personality", NULL);
    if (plan->umask >= 0)
        umask((mode_t) plan->umask);
    /* before the user switch: raising priorities needs CAP_SYS_NICE */
    set_priorities(plan, sync_fd);
    /* before the user switch (CAP_CHOWN) and before any seccomp filter: none of the
       profile's rules may decide whether this works */
    fix_stdio_owner(plan, sync_fd);

    /*
     * Without no_new_privs, installing a filter needs CAP_SYS_ADMIN, which the user
     * may be about to lose: load it now.  With no_new_privs, load it as late as
     * possible so that fewer of our own syscalls must pass the container's profile.
     */
    /* the cwd first: before the profile (fewer of our calls under it) and before the
       user switch (runc's order; retried after it on EACCES/EPERM) */
    int cwd_later = plan->cwd ? enter_cwd(plan, sync_fd, 0) : 0;

    int have_seccomp = plan->seccomp_prog && plan->seccomp_len > 0;
    if (have_seccomp && !plan->no_new_privs)
        load_seccomp(plan, sync_fd);

    set_user_and_caps(plan, sync_fd);

    if (cwd_later)
        enter_cwd(plan, sync_fd, 1);
    if (plan->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_PROCESS, errno, "prctl PR_SET_NO_NEW_PRIVS", NULL);

    resolve_exec(plan, sync_fd);

    /* with stub_argv the stub loads it, just before its execve (init.c) */
    if (have_seccomp && plan->no_new_privs && !plan->stub_argv)
        load_seccomp(plan, sync_fd);

}
