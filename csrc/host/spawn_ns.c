/*
 * prc_spawn_in_ns: fork + setns + execve for hooks that must run in the container's
 * namespaces (createContainer).  The forked child is a copy of a possibly threaded
 * Python process, so it only makes raw, async-signal-safe calls; a failure before
 * the exec becomes exit status 127, which the caller reports as the hook failing.
 */
#include <sched.h>
#include <sys/syscall.h>

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
        for (int i = 0; i < n; i++)
            if (setns(ns_fds[i], 0) < 0)
                _exit(127);
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
