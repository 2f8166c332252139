/*
 * prc_spawn_in_ns: fork + setns + execve for hooks that must run in the container's
 * namespaces (createContainer).  The forked child is a copy of a possibly threaded
 * Python process, so it only makes raw, async-signal-safe calls; a failure before
 * the exec becomes exit status 127, which the caller reports as the hook failing.
 */
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/nsfs.h>
#include <linux/seccomp.h>

#include "prc.h"

int prc_spawn_in_ns(const int *ns_fds, int n, const char *path, char *const argv[],
                    char *const envp[], int stdin_fd, int out_fd)
{
    return prc_spawn_in_ns2(ns_fds, n, path, argv, envp, stdin_fd, out_fd, NULL, NULL, 0, 0);
}

int prc_spawn_in_ns2(const int *ns_fds, int n, const char *path, char *const argv[],
                     char *const envp[], int stdin_fd, int out_fd, const char *cwd,
                     const void *seccomp_prog, int seccomp_len, unsigned int seccomp_flags)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int sig = 1; sig < _NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                (void) sigaction(sig, &sa, NULL);
        if (dup2(stdin_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
            _exit(127);
        int pidns = 0;
        for (int i = 0; i < n; i++) {
            if (setns(ns_fds[i], 0) < 0)
                _exit(127);
            if (ioctl(ns_fds[i], NS_GET_NSTYPE) == CLONE_NEWPID)
                pidns = 1;
        }
        if (pidns) {
            /*
             * setns into a pid namespace only places our future children there: fork
             * once more so the hook is a process of the container's pid namespace (as
             * the spec's "in the container namespace" asks), and pass its exit status
             * on.  The hook dies with us, so a timeout's SIGKILL to us reaches it.
             */
            long hook = syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
            if (hook < 0)
                _exit(127);
            if (hook > 0) {
                /* we never exec: drop the copies of the caller's fds (CLOEXEC does not
                   apply), or the stdin pipe's write end never reaches EOF */
                syscall(SYS_close_range, 3, ~0U, 0);
                int status;
                while (waitpid((pid_t) hook, &status, 0) < 0)
                    if (errno != EINTR)
                        _exit(127);
                if (WIFSIGNALED(status)) {
                    /* die of the same signal, so the caller can say which (a hook
                       under seccomp dies of SIGSYS), without a core dump of ours */
                    struct rlimit none = { 0, 0 };
                    (void) setrlimit(RLIMIT_CORE, &none);
                    sigset_t one;   /* every signal is still blocked here */
                    sigemptyset(&one);
                    sigaddset(&one, WTERMSIG(status));
                    (void) sigprocmask(SIG_UNBLOCK, &one, NULL);
                    (void) syscall(SYS_kill, syscall(SYS_getpid), WTERMSIG(status));
                }
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            }
            /* (getppid() is 0 across the pid namespace boundary, so a parent that
               died before this prctl cannot be detected: the window is a few syscalls
               of a process that is only killed on a hook timeout) */
            if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                _exit(127);
        }
        if (cwd != NULL && chdir(cwd) < 0)
            _exit(127);
        syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (seccomp_len > 0) {
            /* last: the filter may forbid what comes before.  No listener here (no
               one would receive it): a notify rule makes those calls fail instead */
            struct sock_fprog prog = { .len = (unsigned short) seccomp_len,
                                       .filter = (struct sock_filter *) seccomp_prog };
            unsigned int flags = seccomp_flags & ~(unsigned int) SECCOMP_FILTER_FLAG_NEW_LISTENER;
            if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0)
                _exit(127);
        }
        execve(path, argv, envp);
        _exit(127);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -e : (int) pid;
}
