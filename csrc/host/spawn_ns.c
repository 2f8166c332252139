/*
 * prc_spawn_in_ns: fork + setns + execve for hooks that must run in the container's
 * namespaces (createContainer).  The forked child is a copy of a possibly threaded
 * Python process, so it only makes raw, async-signal-safe calls; a failure before
 * the exec becomes exit status 127, which the caller reports as the hook failing.
 */
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/nsfs.h>

#include "prc.h"

int prc_spawn_in_ns(const int *ns_fds, int n, const char *path, char *const argv[],
                    char *const envp[], int stdin_fd, int out_fd)
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
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            }
            /* (getppid() is 0 across the pid namespace boundary, so a parent that
               died before this prctl cannot be detected: the window is a few syscalls
               of a process that is only killed on a hook timeout) */
            if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                _exit(127);
        }
        syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        _exit(127);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -e : (int) pid;
}
