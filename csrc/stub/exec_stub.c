/*
 * The exec stub: the last program pyrunc runs before the container's own.
 *
 * Why it exists (the CVE-2019-5736 class): until the final execve, the container
 * init is a clone of the host Python, so /proc/self/exe (and /proc/<pid>/exe) names
 * the host interpreter.  A container whose entrypoint is /proc/self/exe, or a process
 * that opens /proc/<init>/exe and writes through it once the init has exec'd, would
 * run or overwrite the host binary.  pyrunc therefore copies this stub into a memfd,
 * seals it (no write, grow or shrink, seal sealed), and the init does
 * execveat(memfd, "", AT_EMPTY_PATH).  From then on /proc/self/exe is that sealed
 * memfd: running it again runs only the stub; writing to it fails with EPERM.
 *
 * It is static and freestanding (no libc, no dynamic loader) because it runs after
 * pivot_root, where any loader or library would come from the container's rootfs.
 *
 * argv layout set up by the init: argv[0] = path to execute, argv[1..] = the
 * container's argv.  The environment is passed through unchanged.
 *
 * With a seccomp profile and no_new_privs (and no notify listener to hand over), the
 * stub also loads the filter, so that the only system call made under it is the final
 * execve (as runc, whose Go init loads it just before its execve).  The init then
 * passes argv[0] = "" (never a path: the init resolved one), argv[1] =
 * "<filter fd>:<flags>:<sync fd>", and the usual layout from argv[2].  The filter fd
 * is a memfd holding the struct sock_filter array; the sync fd is the init's end of
 * the sync socket, kept open across this exec: the stub marks it close-on-exec, so
 * that the final execve closes it (the parent of `run` takes the EOF as success), and
 * on a failure it sends the error record there (pyrunc/sync.py decodes it) before it
 * exits, as the init would have.
 *
 * With an LSM label (child/lsm.c says why the stub writes it): argv[0] = "",
 * argv[1] = "lsm", argv[2] = decimal fd of the process's verified
 * /proc/<pid>/attr[/apparmor] directory, argv[3] = the attr file's name, argv[4] =
 * what to write, then one of the layouts above.  A label that cannot be set stops
 * here: running unconfined instead would be a silent downgrade.
 */
#include <stddef.h>
#include "../include/pyrunc_api.h"

#if defined(__x86_64__)
#define NR_execve 59
#define NR_write 1
#define NR_exit_group 231
#define NR_pread64 17
#define NR_close 3
#define NR_fcntl 72
#define NR_seccomp 317
#define NR_sendto 44
#define NR_openat 257
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                      : "rcx", "r11", "memory");
    return ret;
}
static long sys3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
__asm__ (".text\n.global _start\n_start:\n"
         "  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call stub_main\n  hlt\n");
#elif defined(__aarch64__)
#define NR_execve 221
#define NR_write 64
#define NR_exit_group 94
#define NR_pread64 67
#define NR_close 57
#define NR_fcntl 25
#define NR_seccomp 277
#define NR_sendto 206
#define NR_openat 56
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile ("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
}
static long sys3(long n, long a, long b, long c)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile ("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
__asm__ (".text\n.global _start\n_start:\n  mov x0, sp\n  bl stub_main\n");
#else
#error "exec stub: unsupported architecture"
#endif

static unsigned long slen(const char *s)
{
    unsigned long n = 0;
    while (s[n])
        n++;
    return n;
}

#define SECCOMP_SET_MODE_FILTER 1
#define F_SETFD 2
#define FD_CLOEXEC 1
#define MSG_NOSIGNAL 0x4000
#define BPF_MAXINSNS 4096
#define EPIPE_ 32
#define ECONNRESET_ 104

static unsigned long long filter[BPF_MAXINSNS];     /* struct sock_filter is 8 bytes */
static struct prc_msg report;

struct fprog {
    unsigned short len;
    void *filter;
};

/* "12" -> 12 at *s, advancing past one ':' ; -1 when not a number */
static long number(const char **s)
{
    long v = 0;
    const char *p = *s;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    if (*p == ':')
        p++;
    *s = p;
    return v;
}

static void cat(char *dst, const char *src)
{
    unsigned long n = slen(dst);
    while (*src && n + 1 < sizeof(report.text))
        dst[n++] = *src++;
    dst[n] = '\0';
}

/* the init's error record for the parent, then exit as the init would (1) */
/* "<pre><text>: errno <err>\n" on stderr, for failures with no parent to tell */
static void say_errno(const char *pre, long prelen, const char *text, long len, unsigned long err)
{
    static const char mid[] = ": errno ";
    char num[24];
    int i = 23;
    num[i] = '\n';
    do {
        num[--i] = (char) ('0' + err % 10);
        err /= 10;
    } while (err && i > 12);
    sys3(NR_write, 2, (long) pre, prelen);
    sys3(NR_write, 2, (long) text, len);
    sys3(NR_write, 2, (long) mid, sizeof(mid) - 1);
    sys3(NR_write, 2, (long) (num + i), 24 - i);
}

static __attribute__((noreturn)) void fail(long sync_fd, long err, const char *what, const char *obj)
{
    report.type = PRC_MSG_ERROR;
    report.stage = PRC_STAGE_EXEC;
    report.err = (int) err;
    cat(report.text, what);
    if (obj) {
        cat(report.text, " `");
        cat(report.text, obj);
        cat(report.text, "`");
    }
    /* the profile may refuse sendto (an allow-list of the workload's calls): then
       write(), which nearly every workload needs; a peer that is gone (EPIPE: create
       exited, nobody to tell) would raise SIGPIPE with write, so not after that */
    long r = sys6(NR_sendto, sync_fd, (long) &report, sizeof(report), MSG_NOSIGNAL, 0, 0);
    if (r < 0 && r != -EPIPE_ && r != -ECONNRESET_)
        r = sys3(NR_write, sync_fd, (long) &report, sizeof(report));
    if (r < 0 && r != -EPIPE_ && r != -ECONNRESET_) {
        /* no way to the parent: a line on stderr, at least */
        static const char pre[] = "pyrunc: ";
        say_errno(pre, sizeof(pre) - 1, report.text, (long) slen(report.text), (unsigned long) err);
    }
    sys3(NR_exit_group, 1, 0, 0);
    __builtin_unreachable();
}

static __attribute__((noreturn)) void load_filter_and_exec(char **argv, char **envp)
{
    const char *p = argv[1];
    long fd = number(&p), flags = number(&p), sync_fd = number(&p);
    if (fd < 0 || flags < 0 || sync_fd < 0)
        fail(2, 22, "exec stub: bad filter arguments", 0);
    long n = sys6(NR_pread64, fd, (long) filter, sizeof(filter), 0, 0, 0);
    sys3(NR_close, fd, 0, 0);
    if (n <= 0 || n % 8)
        fail(sync_fd, n < 0 ? -n : 22, "read seccomp filter", 0);
    /* close-on-exec: the execve below closes it (EOF for the parent: exec'd) */
    sys3(NR_fcntl, sync_fd, F_SETFD, FD_CLOEXEC);
    struct fprog prog = { .len = (unsigned short) (n / 8), .filter = filter };
    long r = sys3(NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, (long) &prog);
    if (r < 0)
        fail(sync_fd, -r, "load seccomp filter", 0);
    /* the only system call under the filter */
    r = sys3(NR_execve, (long) argv[2], (long) (argv + 3), (long) envp);
    fail(sync_fd, -r, "exec", argv[2]);
}

/* O_WRONLY | O_CLOEXEC | O_NOFOLLOW, the same on x86-64 and arm64 */
#define ATTR_OPEN_FLAGS (01 | 02000000 | 0100000)

static void set_label(char **argv)
{
    static const char what[] = "pyrunc exec stub: set lsm label ";
    const char *p = argv[2];
    long dir = number(&p);
    long fd = dir < 0 ? -9 /* EBADF */ : sys3(NR_openat, dir, (long) argv[3], ATTR_OPEN_FLAGS);
    long len = (long) slen(argv[4]);
    /* an attr file takes the whole value in one write, or refuses it */
    long n = fd < 0 ? fd : sys3(NR_write, fd, (long) argv[4], len);
    if (n != len) {
        /* nobody to report to but stderr: the sync socket is not ours here */
        say_errno(what, sizeof(what) - 1, argv[4], len, (unsigned long) (n < 0 ? -n : 5 /* EIO */));
        sys3(NR_exit_group, 127, 0, 0);
    }
    sys3(NR_close, fd, 0, 0);
    sys3(NR_close, dir, 0, 0);
}

__attribute__((used, noreturn)) void stub_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **) (sp + 1);
    char **envp = argv + argc + 1;
    static const char usage[] = "pyrunc exec stub: nothing to execute\n";
    static const char failed[] = "pyrunc exec stub: execve failed: ";

    if (argc >= 7 && argv[0][0] == '\0' && argv[1][0] == 'l' && argv[1][1] == 's' && argv[1][2] == 'm'
        && argv[1][3] == '\0') {
        set_label(argv);
        argv += 5;
        argc -= 5;
    }
    if (argc >= 4 && argv[0][0] == '\0')
        load_filter_and_exec(argv, envp);
    if (argc < 2) {
        sys3(NR_write, 2, (long) usage, sizeof(usage) - 1);
        sys3(NR_exit_group, 127, 0, 0);
    }
    long err = sys3(NR_execve, (long) argv[0], (long) (argv + 1), (long) envp);
    /* only reached on failure: errors were checked at create time, so this is rare */
    sys3(NR_write, 2, (long) failed, sizeof(failed) - 1);
    sys3(NR_write, 2, (long) argv[0], (long) slen(argv[0]));
    char code[8] = {' ', '(', 'e', 'r', 'r', 'n', 'o', ' '};
    sys3(NR_write, 2, (long) code, 8);
    char num[8];
    int i = 7;
    long e = -err;
    num[i] = ')';
    do {
        num[--i] = (char) ('0' + e % 10);
        e /= 10;
    } while (e && i > 0);
    sys3(NR_write, 2, (long) (num + i), 8 - i);
    sys3(NR_write, 2, (long) "\n", 1);
    sys3(NR_exit_group, 127, 0, 0);
    __builtin_unreachable();
}
