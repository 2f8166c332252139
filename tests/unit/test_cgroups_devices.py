"""Device rules: the emulator (v1 semantics, runc's), v1 transitions, and the v2 eBPF
program, run here by a small interpreter over a grid of devices and accesses."""
import itertools

import pytest

from pyrunc.cgroups import CgroupError
from pyrunc.cgroups import devices as dev
from pyrunc.cgroups.v2 import devices as bpf

W = dev.W
DENY_ALL = {"allow": False, "access": "rwm"}


def emu(rules, defaults=True):
    parsed = dev.parse(rules)
    if not defaults:
        parsed = parsed[:len(rules)]
    return dev.Emulator.build(parsed)


def test_runc_default_list():
    e = emu([DENY_ALL])
    assert not e.default_allow
    assert e.rules == {("c", W, W): "m", ("b", W, W): "m", ("c", 1, 3): "rwm", ("c", 1, 8): "rwm",
                       ("c", 1, 7): "rwm", ("c", 5, 0): "rwm", ("c", 1, 5): "rwm", ("c", 1, 9): "rwm",
                       ("c", 136, W): "rwm", ("c", 5, 2): "rwm", ("c", 10, 200): "rwm"}


def test_no_rules_still_deny_by_default():
    assert emu([]) == emu([DENY_ALL])


def test_what_runc_1_1_5_wrote_on_this_host():
    # config: deny all, allow c 1:3 r, deny c 136:* w; runc's list appended after:
    # devices.list read "c 1:3 rwm" and "c 136:* rwm" (the defaults win)
    e = emu([DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
             {"allow": False, "type": "c", "major": 136, "access": "w"}])
    assert e.rules[("c", 1, 3)] == "rwm" and e.rules[("c", 136, W)] == "rwm"


def test_allow_all_then_deny_is_a_blacklist():
    e = emu([{"allow": True, "access": "rwm"}, {"allow": False, "type": "b", "major": 8, "minor": 0,
                                                 "access": "w"}], defaults=False)
    assert e.default_allow and e.rules == {("b", 8, 0): "w"}


def test_merge_and_remove_permissions():
    e = emu([DENY_ALL, {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "r"},
             {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "wm"},
             {"allow": False, "type": "c", "major": 4, "minor": 1, "access": "m"}], defaults=False)
    assert e.rules == {("c", 4, 1): "rw"}


def test_access_letters_other_than_rwm_are_ignored_as_runc_does():
    # runc's own suite (update.bats, minimal transition rules) denies c 1:11 "rwa"
    e = emu([DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rwa"}],
            defaults=False)
    assert e.rules == {("c", 1, 11): "rw"}
    for bad in ("a", "xyz", 5):
        with pytest.raises(CgroupError, match=r"access: .* is not a combination of r, w and m"):
            emu([{"allow": True, "type": "c", "major": 1, "minor": 11, "access": bad}])


def test_cannot_punch_a_hole_in_a_wildcard():
    with pytest.raises(CgroupError, match=r"deny c 1:3 rwm cannot be taken out of the wildcard rule c \*:\* rwm"):
        emu([DENY_ALL, {"allow": True, "type": "c", "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 3}])


def test_transition_from_allow_all_resets():
    target = emu([DENY_ALL])
    steps = dev.Emulator(True).transition(target)
    assert steps[0] == (False, "a")
    assert all(a for a, _ in steps[1:]) and len(steps) == 12


def test_transition_is_minimal_between_whitelists():
    cur = emu([DENY_ALL, {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "rwm"}])
    target = emu([DENY_ALL, {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "r"},
                  {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}])
    assert cur.transition(target) == [(False, "c 4:1 wm"), (True, "b 8:0 r")]
    assert target.transition(target) == []


def test_from_list():
    assert dev.Emulator.from_list("a *:* rwm\n").default_allow
    e = dev.Emulator.from_list("c 1:3 rwm\nb *:* m\nc 136:* rwm\n")
    assert not e.default_allow and e.rules == {("c", 1, 3): "rwm", ("b", W, W): "m", ("c", 136, W): "rwm"}


# ---- eBPF ----

CTX = {0: None, 4: None, 8: None}


def run(prog, typ, major, minor, access):
    """interpret the program on bpf_cgroup_dev_ctx {access<<16|type, major, minor}"""
    mem = {0: access << 16 | typ, 4: major, 8: minor}
    r = [0] * 11
    pc = 0
    m32 = 0xFFFFFFFF
    steps = 0
    while True:
        steps += 1
        assert steps < 10000
        code, dst, src, off, imm = prog[pc]
        pc += 1
        if code == bpf.LDXW:
            assert src == 1
            r[dst] = mem[off]
        elif code == bpf.AND32K:
            r[dst] = (r[dst] & imm) & m32
        elif code == bpf.RSH32K:
            r[dst] = (r[dst] & m32) >> imm
        elif code == bpf.MOV32X:
            r[dst] = r[src] & m32
        elif code == bpf.MOV32K:
            r[dst] = imm & m32
        elif code == bpf.JNEK:
            if r[dst] != (imm & 0xFFFFFFFFFFFFFFFF if imm < 0 else imm):
                pc += off
        elif code == bpf.JNE32K:
            if (r[dst] & m32) != (imm & m32):
                pc += off
        elif code == bpf.JNEX:
            if r[dst] != r[src]:
                pc += off
        elif code == bpf.JEQK:
            if r[dst] == imm:
                pc += off
        elif code == bpf.EXIT:
            return r[0]
        else:
            raise AssertionError("unknown opcode %#x" % code)


def reference(e, t, major, minor, acc):
    """what the v1 kernel decides for this emulator state"""
    bits = {"m": 1, "r": 2, "w": 4}
    for (rt, rmaj, rmin), perms in e.rules.items():
        if rt != t or rmaj not in (W, major) or rmin not in (W, minor):
            continue
        pb = sum(bits[c] for c in perms)
        if e.default_allow and acc & pb:
            return 0
        if not e.default_allow and acc & ~pb == 0:
            return 1
    return 1 if e.default_allow else 0


GRID = list(itertools.product(("c", "b"), (1, 4, 5, 8, 10, 136, 4000000000), (0, 1, 3, 5, 9, 200, 229),
                              range(1, 8)))


@pytest.mark.parametrize("rules", [
    [DENY_ALL],
    [DENY_ALL, {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
     {"allow": True, "type": "b", "major": 8, "access": "r"}],
    [DENY_ALL, {"allow": True, "type": "c", "major": 4000000000, "minor": 1, "access": "m"}],
    [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
     {"allow": False, "type": "b", "access": "m"}],
])
def test_program_matches_the_emulator(rules):
    defaults = not rules[0]["allow"]
    e = emu(rules, defaults=defaults)
    prog = bpf.assemble(e)
    for t, major, minor, acc in GRID:
        typ = bpf.DEV_CHAR if t == "c" else bpf.DEV_BLOCK
        assert run(prog, typ, major, minor, acc) == reference(e, t, major, minor, acc), (t, major, minor, acc)


def test_partial_deny_is_kernel_v1_semantics():
    # "deny w" in an allow-all policy also refuses an open for reading and writing
    e = emu([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 5,
                                                 "access": "w"}], defaults=False)
    prog = bpf.assemble(e)
    assert run(prog, bpf.DEV_CHAR, 1, 5, bpf.ACC_READ | bpf.ACC_WRITE) == 0
    assert run(prog, bpf.DEV_CHAR, 1, 5, bpf.ACC_READ) == 1


def test_encoding():
    code = bpf.encode([(bpf.LDXW, 2, 1, 4, 0), (bpf.JNEK, 4, 0, -3, -5), (bpf.EXIT, 0, 0, 0, 0)])
    assert code == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0,
                          0x55, 0x04, 0xfd, 0xff, 0xfb, 0xff, 0xff, 0xff,
                          0x95, 0, 0, 0, 0, 0, 0, 0])
