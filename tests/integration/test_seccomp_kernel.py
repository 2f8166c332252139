"""Compiled programs against the real kernel, without a container: sysprobe loads the
exact bytes prepare() returns (no_new_privs + seccomp(2) with its flags) and then
makes raw system calls.  This pins the interpreter used by the unit tests to what
the kernel does, operator by operator, and needs no root."""
import subprocess

import pytest

from pyrunc import seccomp

pytest.importorskip("pyrunc._libseccomp", reason="pyrunc._libseccomp is not built")
from pyrunc.seccomp_compile import lib  # noqa: E402

pytestmark = pytest.mark.skipif(lib.seccomp_arch_native() != 0xC000003E,
                                reason="the system call numbers below are x86-64's")

ENOSYS = 38


def load_and_call(sysprobe, tmp_path, profile, calls):
    prog = seccomp.prepare(profile, str(tmp_path))
    path = str(tmp_path / "prog.bpf")
    with open(path, "wb") as f:
        f.write(prog.program)
    r = subprocess.run([sysprobe, "--load", path, str(prog.flags)] + calls,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return [int(x) for x in r.stdout.split()]


OPS = {
    "SCMP_CMP_NE": lambda v, a, b: v != a,
    "SCMP_CMP_LT": lambda v, a, b: v < a,
    "SCMP_CMP_LE": lambda v, a, b: v <= a,
    "SCMP_CMP_EQ": lambda v, a, b: v == a,
    "SCMP_CMP_GE": lambda v, a, b: v >= a,
    "SCMP_CMP_GT": lambda v, a, b: v > a,
    "SCMP_CMP_MASKED_EQ": lambda v, a, b: v & a == b,
}
VALUES = [0, 1, 7, 8, 9, 0x1F8, 0xFFFFFFFF, 0x100000000, 0x100000008, 0xFFFFFFFFFFFFFFFF]


@pytest.mark.parametrize("op", sorted(OPS))
def test_operators_in_the_kernel(sysprobe, tmp_path, op):
    a, b = 0x100000008, 0x100000000
    arg = {"index": 1, "value": a, "op": op}
    if op == "SCMP_CMP_MASKED_EQ":
        arg["valueTwo"] = b
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "args": [arg]}]}
    # getpid ignores its arguments; the filter still sees them
    got = load_and_call(sysprobe, tmp_path, prof, ["getpid:0:%d" % v for v in VALUES])
    for v, r in zip(VALUES, got):
        assert (r == -33) == OPS[op](v, a, b), (op, hex(v), r)


def test_enosys_errno_and_flags_in_the_kernel(sysprobe, tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5,
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["read", "write", "exit_group", "exit", "getpid"],
                          "action": "SCMP_ACT_ALLOW"},
                         {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
                          "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]}]}
    got = load_and_call(sysprobe, tmp_path, prof, ["getpid", "getppid:7", "getuid", "getrandom", "1000"])
    assert got[0] > 0
    assert got[1] == -42
    assert got[2] == -5                      # getuid (102): below getppid (110), not allowed
    assert got[3:] == [-ENOSYS, -ENOSYS]     # past the profile's highest call


def test_kill_process_in_the_kernel(sysprobe, tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    prog = seccomp.prepare(prof, str(tmp_path))
    path = str(tmp_path / "prog.bpf")
    with open(path, "wb") as f:
        f.write(prog.program)
    r = subprocess.run([sysprobe, "--load", path, str(prog.flags), "getpid", "getppid", "getpid"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == -31                # SIGSYS
    assert len(r.stdout.split()) == 1
