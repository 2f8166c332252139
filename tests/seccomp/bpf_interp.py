"""A classic-BPF interpreter over struct seccomp_data, for unit tests.

It lets the tests ask "what would the kernel answer for this call" of a program that
libseccomp generated and pyrunc patched, without installing it.  It implements the
whole cBPF instruction set a seccomp filter may use (the kernel's seccomp checker
accepts the same set, minus packet loads other than 32-bit absolute), and refuses
anything else, so a program using an instruction it does not know fails loudly
instead of passing by accident.  The real-kernel tests check the same programs.
"""
from pyrunc.seccomp_bpf import unpack

M32 = 0xFFFFFFFF


def seccomp_data(nr, arch, args=(), ip=0):
    """struct seccomp_data as bytes: int nr; u32 arch; u64 ip; u64 args[6]"""
    a = list(args) + [0] * (6 - len(args))
    out = (nr & M32).to_bytes(4, "little") + arch.to_bytes(4, "little") + ip.to_bytes(8, "little")
    for v in a:
        out += (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    return out


def run(program, data, max_steps=100000):
    insns = unpack(program)
    A = X = 0
    mem = [0] * 16
    pc = 0
    for _ in range(max_steps):
        if pc >= len(insns):
            raise ValueError("fell off the end of the program at %d" % pc)
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:                                 # BPF_LD
            mode, size = code & 0xE0, code & 0x18
            if mode == 0x20 and size == 0x00:           # ABS, W
                if k % 4 or k + 4 > len(data):
                    raise ValueError("bad load offset %d" % k)
                A = int.from_bytes(data[k:k + 4], "little")
            elif mode == 0x00:                          # IMM
                A = k
            elif mode == 0x60:                          # MEM
                A = mem[k]
            elif mode == 0x80:                          # LEN
                A = len(data)
            else:
                raise ValueError("unsupported ld %#x" % code)
        elif cls == 0x01:                               # BPF_LDX
            mode = code & 0xE0
            if mode == 0x00:
                X = k
            elif mode == 0x60:
                X = mem[k]
            elif mode == 0x80:
                X = len(data)
            else:
                raise ValueError("unsupported ldx %#x" % code)
        elif cls == 0x02:                               # BPF_ST
            mem[k] = A
        elif cls == 0x03:                               # BPF_STX
            mem[k] = X
        elif cls == 0x04:                               # BPF_ALU
            op, src = code & 0xF0, (X if code & 0x08 else k)
            if op == 0x00:
                A = (A + src) & M32
            elif op == 0x10:
                A = (A - src) & M32
            elif op == 0x20:
                A = (A * src) & M32
            elif op == 0x30:
                A = A // src if src else 0
            elif op == 0x40:
                A = A | src
            elif op == 0x50:
                A = A & src
            elif op == 0x60:
                A = (A << src) & M32 if src < 32 else 0
            elif op == 0x70:
                A = A >> src if src < 32 else 0
            elif op == 0x80:
                A = (-A) & M32
            elif op == 0x90:
                A = A % src if src else 0
            elif op == 0xA0:
                A = A ^ src
            else:
                raise ValueError("unsupported alu %#x" % code)
        elif cls == 0x05:                               # BPF_JMP
            op, src = code & 0xF0, (X if code & 0x08 else k)
            if op == 0x00:
                pc += k
                continue
            if op == 0x10:
                cond = A == src
            elif op == 0x20:
                cond = A > src
            elif op == 0x30:
                cond = A >= src
            elif op == 0x40:
                cond = bool(A & src)
            else:
                raise ValueError("unsupported jmp %#x" % code)
            pc += jt if cond else jf
        elif cls == 0x06:                               # BPF_RET
            return A if code & 0x18 == 0x10 else k
        elif cls == 0x07:                               # BPF_MISC
            if code == 0x07:
                X = A
            elif code == 0x87:
                A = X
            else:
                raise ValueError("unsupported misc %#x" % code)
    raise ValueError("program did not return")
