"""Classic BPF pieces for seccomp: the instruction codec and the -ENOSYS prologue.

libseccomp compiles the profile; this module only edits its output, the way runc's
libcontainer/seccomp/patchbpf does.  Why the edit: with an allow-list profile
(defaultAction SCMP_ACT_ERRNO, Docker's shape) a system call the profile's authors
never heard of gets EPERM, and programs (glibc first) treat EPERM as "you may not",
whereas ENOSYS means "this kernel lacks it, use the fallback".  clone3, faccessat2 or
openat2 arriving in a container built before they existed must answer ENOSYS.  The
profile cannot say "newer than me", so we take the highest system call number it
mentions for each architecture and prepend:

    ld  [arch]
    jeq ARCH_1, sect_1          one test per audit architecture
    ...
    ja  filter                  any other architecture: libseccomp decides (bad arch)
  sect_i:
    ld  [nr]
    jeq 0, enosys               s390/s390x only: setup(2) multiplexes unknown calls
    jset X32_BIT, ...           x86-64 only: split x86-64 and x32 numbers
    jgt MAX_i, enosys, filter
  enosys:
    ret ERRNO(ENOSYS)
  filter:
    <libseccomp's program, unchanged: it reloads what it needs>

Like runc's stub this ignores holes: a number below the maximum that the profile
does not name still gets the default action.  Every jump is forward and lands inside
the prologue or just past it, so offsets stay far below the 255 a conditional jump
can encode.
"""

# struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; } in host byte order
INSN_SIZE = 8
BPF_MAXINSNS = 4096

# opcodes (linux/bpf_common.h)
LD_W_ABS = 0x20          # BPF_LD | BPF_W | BPF_ABS
JA = 0x05                # BPF_JMP | BPF_JA
JEQ_K = 0x15             # BPF_JMP | BPF_JEQ | BPF_K
JGT_K = 0x25             # BPF_JMP | BPF_JGT | BPF_K
JSET_K = 0x45            # BPF_JMP | BPF_JSET | BPF_K
RET_K = 0x06             # BPF_RET | BPF_K

# struct seccomp_data offsets
OFF_NR = 0
OFF_ARCH = 4

SECCOMP_RET_ERRNO = 0x00050000
ENOSYS = 38
RET_ENOSYS = SECCOMP_RET_ERRNO | ENOSYS

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_S390 = 0x00000016
AUDIT_ARCH_S390X = 0x80000016
X32_SYSCALL_BIT = 0x40000000

_BYTEORDER = __import__("sys").byteorder


def pack(code, jt, jf, k):
    return (code.to_bytes(2, _BYTEORDER) + bytes((jt, jf)) + (k & 0xFFFFFFFF).to_bytes(4, _BYTEORDER))


def unpack(program):
    """bytes -> [(code, jt, jf, k)]"""
    if len(program) % INSN_SIZE:
        raise ValueError("a BPF program is a multiple of %d bytes, not %d" % (INSN_SIZE, len(program)))
    out = []
    for i in range(0, len(program), INSN_SIZE):
        out.append((int.from_bytes(program[i:i + 2], _BYTEORDER), program[i + 2], program[i + 3],
                    int.from_bytes(program[i + 4:i + 8], _BYTEORDER)))
    return out


class _Asm:
    """A straight-line list of instructions whose jump targets are labels; every
    target lies ahead (cBPF has no backward jumps)."""

    def __init__(self):
        self.insns = []        # [code, jt, jf, k] with jt/jf/k possibly labels
        self.labels = {}

    def label(self, name):
        self.labels[name] = len(self.insns)

    def emit(self, code, jt=0, jf=0, k=0):
        self.insns.append([code, jt, jf, k])

    def assemble(self, end_labels=()):
        for name in end_labels:
            self.labels.setdefault(name, len(self.insns))
        out = []
        for i, (code, jt, jf, k) in enumerate(self.insns):
            def off(target):
                if isinstance(target, int):
                    return target
                d = self.labels[target] - (i + 1)
                if d < 0 or (code != JA and d > 255):
                    raise ValueError("jump to %s out of range (%d)" % (target, d))
                return d
            if code == JA:
                k, jt, jf = off(k), 0, 0
            else:
                jt, jf = off(jt), off(jf)
            out.append(pack(code, jt, jf, k))
        return b"".join(out)


def enosys_prologue(limits):
    """The -ENOSYS prologue for `limits`: {audit_arch: {mode: max_nr}} where mode is
    None for an ordinary architecture, or "x86_64" / "x32" for the two ABIs that share
    AUDIT_ARCH_X86_64 (x32 numbers carry X32_SYSCALL_BIT, and so do their maxima).
    Returns b"" when there is nothing to guard."""
    arches = sorted(a for a, m in limits.items() if m)
    if not arches:
        return b""
    asm = _Asm()
    asm.emit(LD_W_ABS, k=OFF_ARCH)
    for a in arches:
        asm.emit(JEQ_K, "arch_%x" % a, 0, a)
    asm.emit(JA, k="filter")
    for a in arches:
        modes = limits[a]
        asm.label("arch_%x" % a)
        asm.emit(LD_W_ABS, k=OFF_NR)
        if a in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            # setup(2) (number 0) is where s390 lands numbers the kernel does not know
            asm.emit(JEQ_K, "enosys", 0, 0)
        if a == AUDIT_ARCH_X86_64 and set(modes) - {None}:
            x64 = modes.get("x86_64")
            x32 = modes.get("x32")
            if x64 is not None and x32 is not None:
                asm.emit(JSET_K, "x32_%x" % a, 0, X32_SYSCALL_BIT)
                asm.emit(JGT_K, "enosys", "filter", x64)
                asm.label("x32_%x" % a)
                asm.emit(JGT_K, "enosys", "filter", x32)
            elif x64 is not None:
                # an x32 call in an x86-64-only profile: not ours to judge
                asm.emit(JSET_K, "filter", 0, X32_SYSCALL_BIT)
                asm.emit(JGT_K, "enosys", "filter", x64)
            else:
                asm.emit(JSET_K, 0, "filter", X32_SYSCALL_BIT)
                asm.emit(JGT_K, "enosys", "filter", x32)
        else:
            (mx,) = modes.values()
            asm.emit(JGT_K, "enosys", "filter", mx)
    asm.label("enosys")
    asm.emit(RET_K, k=RET_ENOSYS)
    return asm.assemble(end_labels=("filter",))


def disassemble(program):
    """Human-readable listing (debugging, test failure messages)."""
    names = {LD_W_ABS: "ld", JA: "ja", JEQ_K: "jeq", JGT_K: "jgt", JSET_K: "jset", RET_K: "ret",
             0x35: "jge", 0x54: "and", 0x00: "ld#", 0x02: "st", 0x60: "ldmem", 0x07: "tax",
             0x87: "txa", 0x16: "ret A"}
    lines = []
    for i, (code, jt, jf, k) in enumerate(unpack(program)):
        n = names.get(code, "op%#x" % code)
        if code & 0x07 == 0x05 and code != JA:
            lines.append("%4d: %-5s %#x, %d, %d" % (i, n, k, i + 1 + jt, i + 1 + jf))
        elif code == JA:
            lines.append("%4d: ja    %d" % (i, i + 1 + k))
        else:
            lines.append("%4d: %-5s %#x" % (i, n, k))
    return "\n".join(lines)
