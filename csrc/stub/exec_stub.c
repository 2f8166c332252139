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
 * With an LSM label (child/lsm.c says why it is written here): argv[0] = "" (never a
 * path), argv[1] = decimal fd of the process's verified /proc/<pid>/attr[/apparmor]
 * directory, argv[2] = the attr file's name, argv[3] = what to write, then the layout
 * above.  A label that cannot be set stops here: running unconfined instead would be
 * a silent downgrade.
 */

#if defined(__x86_64__)
#define NR_execve 59
#define NR_write 1
#define NR_close 3
#define NR_openat 257
#define NR_exit_group 231
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
#define NR_close 57
#define NR_openat 56
#define NR_exit_group 94
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

static __attribute__((noreturn)) void fail(const char *what, unsigned long what_len, const char *obj, long err)
{
    static const char head[] = "pyrunc exec stub: ";
    sys3(NR_write, 2, (long) head, sizeof(head) - 1);
    sys3(NR_write, 2, (long) what, (long) what_len);
    sys3(NR_write, 2, (long) obj, (long) slen(obj));
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

/* O_WRONLY | O_CLOEXEC | O_NOFOLLOW, the same on x86-64 and arm64 */
#define OPEN_FLAGS (01 | 02000000 | 0100000)

static void set_label(char **argv)
{
    static const char what[] = "set lsm label: write ";
    long dir = 0;
    for (const char *p = argv[1]; *p; p++)
        dir = dir * 10 + (*p - '0');
    long fd = sys3(NR_openat, dir, (long) argv[2], OPEN_FLAGS);
    if (fd < 0)
        fail(what, sizeof(what) - 1, argv[3], fd);
    long len = (long) slen(argv[3]);
    /* attr files take the whole value in one write, or fail */
    long n = sys3(NR_write, fd, (long) argv[3], len);
    if (n != len)
        fail(what, sizeof(what) - 1, argv[3], n < 0 ? n : -5 /* EIO */);
    sys3(NR_close, fd, 0, 0);
    sys3(NR_close, dir, 0, 0);
}

__attribute__((used, noreturn)) void stub_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **) (sp + 1);
    char **envp = argv + argc + 1;
    static const char usage[] = "pyrunc exec stub: nothing to execute\n";
    static const char failed[] = "execve failed: ";

    if (argc >= 6 && argv[0][0] == '\0') {
        set_label(argv);
        argv += 4;
        argc -= 4;
    }
    if (argc < 2) {
        sys3(NR_write, 2, (long) usage, sizeof(usage) - 1);
        sys3(NR_exit_group, 127, 0, 0);
    }
    long err = sys3(NR_execve, (long) argv[0], (long) (argv + 1), (long) envp);
    /* only reached on failure: errors were checked at create time, so this is rare */
    fail(failed, sizeof(failed) - 1, argv[0], err);
}
