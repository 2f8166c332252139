"""v2 devices: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup2 has no devices.allow; the kernel runs the programs attached to the cgroup
(and to its ancestors) on every open and mknod of a device node, with

    struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; };
    access_type = access << 16 | type     (type: 1 block, 2 char;
                                           access: 1 mknod, 2 read, 4 write)

and lets the access through when the program returns 1.  The rules are first
reduced by the same emulator as v1 (pyrunc.cgroups.devices): a default policy and
exceptions that all have the opposite verdict, so the program is

    r2 = type; r3 = access; r4 = major; r5 = minor
    for each exception:  if it matches: return !default
    return default

(the shape of runc's devicefilter).  One difference from runc: for a deny exception
in an allow-all policy, a request matches when it shares ANY access bit with the
rule, as the v1 kernel decides (match_exception_partial); runc requires the
request to be a subset, which lets an "rw" open through a "deny w" rule.

The program is assembled here (pure Python, checked by an interpreter in the unit
tests) and loaded and attached by csrc/host/cgroup_ebpf.c.  It replaces the
program pyrunc attached earlier (update), with BPF_F_REPLACE when the kernel has it.
"""
from pyrunc import _os as os

from pyrunc.cgroups import devices as _dev
from pyrunc.cgroups.fs import CgroupError

W = "linux.resources.devices"

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_ACC = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# opcodes (linux/bpf_common.h, linux/bpf.h)
LDXW = 0x61      # BPF_LDX | BPF_MEM | BPF_W       dst = *(u32 *)(src + off)
AND32K = 0x54    # BPF_ALU | BPF_AND | BPF_K       dst &= imm (32-bit, zero-extends)
RSH32K = 0x74    # BPF_ALU | BPF_RSH | BPF_K
MOV32X = 0xbc    # BPF_ALU | BPF_MOV | BPF_X
MOV32K = 0xb4    # BPF_ALU | BPF_MOV | BPF_K
JNEK = 0x55      # BPF_JMP | BPF_JNE | BPF_K       if dst != imm: pc += off
JNE32K = 0x56    # BPF_JMP32 | BPF_JNE | BPF_K     (32-bit compare: for numbers >= 2^31)
JNEX = 0x5d      # BPF_JMP | BPF_JNE | BPF_X
JEQK = 0x15      # BPF_JMP | BPF_JEQ | BPF_K
EXIT = 0x95      # BPF_JMP | BPF_EXIT


def assemble(emu):
    """Emulator -> [(code, dst, src, off, imm)]"""
    prog = [
        (LDXW, 2, 1, 0, 0),
        (AND32K, 2, 0, 0, 0xFFFF),
        (LDXW, 3, 1, 0, 0),
        (RSH32K, 3, 0, 0, 16),
        (LDXW, 4, 1, 4, 0),
        (LDXW, 5, 1, 8, 0),
    ]
    verdict = 0 if emu.default_allow else 1
    for (t, major, minor), perms in emu.sorted_rules():
        block = [("next", JNEK, 2, 0, DEV_CHAR if t == "c" else DEV_BLOCK)]
        acc = 0
        for c in perms:
            acc |= _ACC[c]
        if acc != ACC_MKNOD | ACC_READ | ACC_WRITE:
            block.append((MOV32X, 1, 3, 0, 0))
            block.append((AND32K, 1, 0, 0, acc))
            if emu.default_allow:
                block.append(("next", JEQK, 1, 0, 0))      # no bit in common: not this rule
            else:
                block.append(("next", JNEX, 1, 3, 0))      # not a subset: not this rule
        for reg, num in ((4, major), (5, minor)):
            if num != _dev.W:
                if num >= 1 << 31:
                    block.append(("next", JNE32K, reg, 0, num - (1 << 32)))
                else:
                    block.append(("next", JNEK, reg, 0, num))
        block.append((MOV32K, 0, 0, 0, verdict))
        block.append((EXIT, 0, 0, 0, 0))
        base = len(prog)
        end = base + len(block)
        for i, ins in enumerate(block):
            if ins[0] == "next":
                _, code, dst, src, imm = ins
                prog.append((code, dst, src, end - (base + i + 1), imm))
            else:
                prog.append(ins)
    prog.append((MOV32K, 0, 0, 0, 1 if emu.default_allow else 0))
    prog.append((EXIT, 0, 0, 0, 0))
    return prog


def encode(prog):
    """struct bpf_insn[]: u8 code, u8 dst:4 | src:4 << 4, s16 off, s32 imm (little endian)"""
    out = bytearray()
    for code, dst, src, off, imm in prog:
        out.append(code)
        out.append(dst | src << 4)
        out += off.to_bytes(2, "little", signed=True)
        out += imm.to_bytes(4, "little", signed=True)
    return bytes(out)


def _err(what, e):
    return CgroupError("%s: %s: %s" % (W, what, os.strerror(e).lower()), e)


def set(d, rules, m, update):
    emu = _dev.Emulator.build(_dev.parse(rules))
    prog = assemble(emu)
    m.device_program = prog
    if d.fake:
        return
    from pyrunc.native import ffi, lib

    code = encode(prog)
    buf = ffi.from_buffer(code)
    fd = lib.prc_bpf_cgdev_load(buf, len(prog), ffi.NULL, 0)
    if fd < 0:
        if -fd == 22:  # EINVAL: ask the verifier why
            log = ffi.new("char[]", 4096)
            lib.prc_bpf_cgdev_load(buf, len(prog), log, 4096)
            text = ffi.string(log).decode(errors="replace").strip().split("\n")[-1:]
            raise CgroupError("%s: load the eBPF device filter: invalid argument (%s)"
                              % (W, text[0] if text and text[0] else "no verifier log"), 22)
        raise _err("load the eBPF device filter (BPF_PROG_TYPE_CGROUP_DEVICE)", -fd)
    try:
        ids = ffi.new("unsigned int[]", 64)
        n = lib.prc_bpf_cgdev_query(d.fd, ids, 64)
        if n < 0:
            raise _err("list the eBPF programs attached to %s" % d.path, -n)
        old = []
        try:
            for i in range(n):
                ofd = lib.prc_bpf_prog_fd_by_id(ids[i])
                if ofd >= 0:
                    old.append(ofd)
            r = -22
            if len(old) == 1:
                r = lib.prc_bpf_cgdev_attach(d.fd, fd, old[0])
                if r == 0:
                    return
            r = lib.prc_bpf_cgdev_attach(d.fd, fd, -1)
            if r < 0:
                raise _err("attach the eBPF device filter to %s" % d.path, -r)
            for ofd in old:
                lib.prc_bpf_cgdev_detach(d.fd, ofd)
        finally:
            for ofd in old:
                os.close(ofd)
    finally:
        os.close(fd)


def attached(d):
    """number of device programs attached to d (tests, diagnostics)"""
    from pyrunc.native import ffi, lib

    ids = ffi.new("unsigned int[]", 64)
    n = lib.prc_bpf_cgdev_query(d.fd, ids, 64)
    if n < 0:
        raise _err("list the eBPF programs attached to %s" % d.path, -n)
    return n
