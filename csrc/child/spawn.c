/*
 * prc_spawn: the one FFI call that starts a container process.
 *
 * Without namespaces to join (and no time namespace), one clone does it: the child is
 * created directly in its new namespaces (and, with clone3 CLONE_INTO_CGROUP, in its
 * cgroup), with the calling Python process as its parent.
 *
 * Joining namespaces needs an intermediate "stage-1" process: setns() into a pid (or
 * time) namespace only affects children, and setns() into a mount namespace must not
 * happen in the Python process itself.  Stage-1 joins, unshares the time namespace and
 * writes its offsets (only possible before any process is in it), then clones the
 * real child with CLONE_PARENT, so the child's parent is still the Python caller (and
 * after that caller exits, its subreaper: containerd's shim, conmon), and exits.
 * Nothing stays between the caller and the container (runc's nsexec.c double-forks
 * for the same reasons).
 *
 * exec always goes through stage-1, even with nothing to join (a container sharing
 * every namespace with the host): the process is then created the same way, with
 * CLONE_PARENT, whatever the configuration.
 *
 * Signals are blocked around the clone so the child can reset the inherited
 * handlers (Python's) before any signal is delivered to it.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/sched.h>

#include "prc.h"

struct clone3_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

int prc_cloned_into_cgroup;
extern char **environ;

/*
 * A fork-like clone shares every private page of ours copy-on-write with the child,
 * and the child (the container's init) keeps them until its exec at `start`.  Each
 * page Python then writes before create returns costs a fault and a copy (~4 us here):
 * ~130 faults for a child that never reads a Python object.  With nofork_arenas the
 * large anonymous mappings (Python's 1 MiB small-object arenas, merged when they are
 * neighbours) are left out of the child's address space for the clone, and given
 * back to later forks (hooks) right after it.  The plan is cffi memory from malloc:
 * in [heap], which is named and so never left out, or for a large buffer in a mapping
 * of its own, which the parent lists in plan_spans.
 *
 * A mistake would make the child fault on a missing page and die, so whatever it does
 * touch is kept whatever the maps say: the stack we run on, our thread's TCB and TLS
 * (errno, the stack guard), the plan, our globals and libc's.
 */
static int child_needs(uintptr_t a, uintptr_t n, const struct prc_plan *plan)
{
    char here;
    uintptr_t keep[] = {
        (uintptr_t) &here, (uintptr_t) pthread_self(), (uintptr_t) plan,
        (uintptr_t) &prc_cloned_into_cgroup, (uintptr_t) &prc_cgroups_joined,
        (uintptr_t) &environ, (uintptr_t) &errno,
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        if (keep[i] >= a && keep[i] - a < n)
            return 1;
    }
    for (int i = 0; i < plan->n_plan_spans; i++) {
        uintptr_t s = plan->plan_spans[2 * i], l = plan->plan_spans[2 * i + 1];
        if (s < a + n && s + l > a)
            return 1;
    }
    return 0;
}

#define NOFORK_MAX 16
#define NOFORK_MIN (1UL << 20)

/* a private anonymous read-write mapping of NOFORK_MIN or more, from one line of
   /proc/self/maps: "start-end rw-p offset dev 0" and no name */
static int big_anonymous(const char *line, unsigned long *lo, unsigned long *hi)
{
    const char *p = prc_parse_hex(line, lo);
    if (!p || *p != '-' || !(p = prc_parse_hex(p + 1, hi)) || strncmp(p, " rw-p ", 6) != 0)
        return 0;
    p += 6;
    for (int field = 0; field < 2; field++) {  /* offset, dev */
        p = strchr(p, ' ');
        if (!p)
            return 0;
        p++;
    }
    if (p[0] != '0' || (p[1] != ' ' && p[1] != 0))
        return 0;  /* inode 0 */
    for (p++; *p == ' '; p++)
        ;
    return *p == 0 && *hi > *lo && *hi - *lo >= NOFORK_MIN;
}

struct nofork_search {
    const struct prc_plan *plan;
    uintptr_t *out;
    int n;
};

static int nofork_line(char *line, void *ctx)
{
    struct nofork_search *s = ctx;
    unsigned long lo, hi;
    if (big_anonymous(line, &lo, &hi) && !child_needs(lo, hi - lo, s->plan)) {
        s->out[2 * s->n] = lo;
        s->out[2 * s->n + 1] = hi - lo;
        s->n++;
    }
    return s->n == NOFORK_MAX;
}

/* the ranges to leave out, at most NOFORK_MAX (a line too long for the buffer has a
   long file name: no candidate) */
static int nofork_ranges(const struct prc_plan *plan, uintptr_t *out)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[4096];
    struct nofork_search s = { .plan = plan, .out = out, .n = 0 };
    (void) prc_each_line(fd, buf, sizeof(buf), nofork_line, &s);
    close(fd);
    return s.n;
}

static void nofork(const uintptr_t *r, int n, int advice)
{
    /* best effort: a range that could not be left out is copied as before */
    for (int i = 0; i < n; i++)
        (void) madvise((void *) r[2 * i], r[2 * i + 1], advice);
}

/* fork-like clone: NULL stack, so the child runs on a copy of ours */
static long raw_clone(unsigned long flags)
{
    return syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
}

static long clone_child(const struct prc_plan *plan, unsigned long extra)
{
    /*
     * Not in the clone: the time namespace (stage-1 unshares it, see above) and the
     * cgroup namespace, which the child unshares after the parent moved it into its
     * cgroup, so that the namespace root is the container's cgroup, not ours.
     */
    unsigned long flags = ((unsigned long) plan->clone_flags
                           & ~(unsigned long) (CLONE_NEWTIME | CLONE_NEWCGROUP)) | extra;
    if (plan->cgroup_fd >= 0) {
        struct clone3_args args;
        memset(&args, 0, sizeof(args));
        args.flags = flags | CLONE_INTO_CGROUP;
        /* clone3 refuses an exit signal with CLONE_PARENT (EINVAL); the child then
           gets its new parent's, i.e. SIGCHLD, as with clone(2) */
        args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
        args.cgroup = (uint64_t) plan->cgroup_fd;
        long pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
            prc_cloned_into_cgroup = 1;  /* our copy of it: the parent's stays 0 */
        /* old kernel (ENOSYS, E2BIG) or a cgroup that refuses us: the parent joins it later */
        if (pid >= 0 || (errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EOPNOTSUPP))
            return pid;
    }
    return raw_clone(flags);
}

static void stage1(struct prc_plan *plan) __attribute__((noreturn));
static void stage1(struct prc_plan *plan)
{
    int sync_fd = plan->sync_fd;
    /*
     * Non-dumpable before the first setns (runc's nsexec, CVE-2016-9962).  The child
     * inherits the flag with our memory: it is born in the joined pid namespace, and
     * a container process that stops it (SIGSTOP to the namespace's next pid) before
     * its own prctl (init.c) could open its /proc/<pid>/fd, the host fds it holds
     * until the exec, or ptrace it (CAP_SYS_PTRACE in the container's user namespace
     * suffices against host root there).  The rootless exception is init.c's.
     */
    if (!plan->dumpable_until_go && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        prc_fail(sync_fd, PRC_STAGE_SYNC, errno, "prctl PR_SET_DUMPABLE", NULL);
    /* still root in the host's user namespace: join the cgroups before any setns */
    prc_join_cgroups(plan, sync_fd);
    /* the parent ordered the joins (user namespace first, so the rest is permitted) */
    for (int i = 0; i < plan->n_joins; i++) {
        if (setns(plan->joins[i].fd, plan->joins[i].nstype) < 0)
            prc_fail(sync_fd, PRC_STAGE_SETNS, errno, "join namespace", NULL);
    }
    /* the namespace files are the host's: the container process gets none of them */
    for (int i = 0; i < plan->n_joins; i++)
        close(plan->joins[i].fd);
    if (plan->clone_flags & CLONE_NEWTIME) {
        if (unshare(CLONE_NEWTIME) < 0)
            prc_fail(sync_fd, PRC_STAGE_TIMENS, errno, "unshare time namespace", NULL);
        if (plan->timens_offsets &&
            prc_proc_write("self/timens_offsets", plan->timens_offsets, strlen(plan->timens_offsets)) < 0)
            prc_fail(sync_fd, PRC_STAGE_TIMENS, errno, "write time namespace offsets", NULL);
    }
    long pid = clone_child(plan, CLONE_PARENT);
    if (pid < 0)
        prc_fail(sync_fd, PRC_STAGE_CLONE, errno, "clone container process", NULL);
    if (pid == 0)
        prc_child_main(plan);
    prc_child_send(sync_fd, PRC_MSG_PID, (int) pid);
    _exit(0);
}

int prc_spawn(struct prc_plan *plan, int *pid, struct prc_msg *err)
{
    memset(err, 0, sizeof(*err));
    if (plan->abi != PRC_ABI_VERSION) {
        err->type = PRC_MSG_ERROR;
        err->stage = PRC_STAGE_SPAWN;
        err->err = EINVAL;
        prc_strlcpy(err->text, "plan ABI version mismatch", sizeof(err->text));
        return -EINVAL;
    }
    int own_stub = 0;
    if (plan->stub_fd < 0) {
        plan->stub_fd = prc_stub_memfd();
        if (plan->stub_fd < 0) {
            int e = -plan->stub_fd;
            plan->stub_fd = -1;
            err->type = PRC_MSG_ERROR;
            err->stage = PRC_STAGE_SPAWN;
            err->err = e;
            prc_strlcpy(err->text, "create sealed exec stub", sizeof(err->text));
            return -e;
        }
        own_stub = 1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        int e = errno;
        err->type = PRC_MSG_ERROR;
        err->stage = PRC_STAGE_SPAWN;
        err->err = e;
        prc_strlcpy(err->text, "create sync socket", sizeof(err->text));
        if (own_stub) {
            close(plan->stub_fd);
            plan->stub_fd = -1;
        }
        return -e;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

    /* the child reads its end from its copy of the plan */
    plan->sync_fd = sv[1];
    int need_stage1 = plan->n_joins > 0 || (plan->clone_flags & CLONE_NEWTIME) || plan->mode == PRC_MODE_EXEC;
    uintptr_t left_out[2 * NOFORK_MAX];
    int n_left_out = plan->nofork_arenas ? nofork_ranges(plan, left_out) : 0;
    nofork(left_out, n_left_out, MADV_DONTFORK);
    long child = need_stage1 ? raw_clone(0) : clone_child(plan, 0);
    if (child == 0) {
        close(sv[0]);
        if (need_stage1)
            stage1(plan);
        prc_child_main(plan);
    }
    int e = errno;
    nofork(left_out, n_left_out, MADV_DOFORK);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (own_stub) {
        close(plan->stub_fd);
        plan->stub_fd = -1;
    }
    if (child < 0) {
        close(sv[0]);
        plan->sync_fd = -1;
        err->type = PRC_MSG_ERROR;
        err->stage = PRC_STAGE_CLONE;
        err->err = e;
        prc_strlcpy(err->text, "clone container process", sizeof(err->text));
        return -e;
    }
    plan->sync_fd = sv[0];
    *pid = (int) child;
    return 0;
}
