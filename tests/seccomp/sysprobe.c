/*
 * sysprobe: make raw system calls and print what the kernel answered.
 *
 *   sysprobe [--load FILE FLAGS] CALL...
 *
 * CALL is NAME or NUMBER, optionally followed by up to six ":"-separated integer
 * arguments (decimal, 0x hex, or negative): `mkdirat:-100:0:0`, `1000:1:2`.  Each call
 * prints one line: the return value, or -errno (`-1` is EPERM, `-38` ENOSYS).  Raw
 * syscall(2), never libc wrappers, which would hide ENOSYS behind fallbacks.
 *
 * --load installs a BPF program (a struct sock_filter[] file, as pyrunc compiles it)
 * with seccomp(SECCOMP_SET_MODE_FILTER, FLAGS) after setting no_new_privs, so the
 * tests can check a compiled program against the real kernel without a container.
 * Built static by the tests so that it also runs inside a busybox container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const struct { const char *name; long nr; } calls[] = {
    { "getpid", SYS_getpid },     { "getppid", SYS_getppid },   { "getuid", SYS_getuid },
    { "mkdirat", SYS_mkdirat },   { "socket", SYS_socket },     { "personality", SYS_personality },
    { "dup3", SYS_dup3 },         { "unshare", SYS_unshare },   { "setns", SYS_setns },
    { "ftruncate", SYS_ftruncate }, { "getrandom", SYS_getrandom }, { "uname", SYS_uname },
    { "close", SYS_close },       { "umask", SYS_umask },       { "sched_yield", SYS_sched_yield },
    { "getpgid", SYS_getpgid },   { "kill", SYS_kill },         { "tkill", SYS_tkill },
    { "keyctl", SYS_keyctl },
#ifdef SYS_clone3
    { "clone3", SYS_clone3 },
#endif
#ifdef SYS_faccessat2
    { "faccessat2", SYS_faccessat2 },
#endif
};

static long parse_long(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end) {
        /* large unsigned values (masks, 64-bit constants) */
        errno = 0;
        v = (long) strtoul(s, &end, 0);
        if (errno || *end) {
            fprintf(stderr, "sysprobe: bad number `%s`\n", s);
            exit(2);
        }
    }
    return v;
}

static int load(const char *file, unsigned int flags)
{
    static struct sock_filter prog[4096];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror("sysprobe: open program");
        exit(2);
    }
    ssize_t n = read(fd, prog, sizeof(prog));
    close(fd);
    if (n <= 0 || n % sizeof(prog[0])) {
        fprintf(stderr, "sysprobe: bad program size %zd\n", n);
        exit(2);
    }
    struct sock_fprog fp = { .len = (unsigned short) (n / sizeof(prog[0])), .filter = prog };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        perror("sysprobe: no_new_privs");
        exit(2);
    }
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
    if (r < 0) {
        printf("load -%d\n", errno);
        fflush(stdout);
        exit(3);
    }
    return (int) r;
}

int main(int argc, char **argv)
{
    int i = 1;
    if (argc > 3 && strcmp(argv[1], "--load") == 0) {
        load(argv[2], (unsigned int) parse_long(argv[3]));
        i = 4;
    }
    for (; i < argc; i++) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", argv[i]);
        char *save = NULL;
        char *tok = strtok_r(buf, ":", &save);
        long nr = -1;
        for (size_t k = 0; k < sizeof(calls) / sizeof(calls[0]); k++)
            if (strcmp(tok, calls[k].name) == 0)
                nr = calls[k].nr;
        if (nr == -1)
            nr = parse_long(tok);
        long a[6] = { 0 };
        for (int k = 0; k < 6 && (tok = strtok_r(NULL, ":", &save)); k++)
            a[k] = parse_long(tok);
        errno = 0;
        long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        printf("%ld\n", r < 0 ? -(long) errno : r);
        fflush(stdout);
    }
    return 0;
}
