"""linux.seccomp -> BPF through the real libseccomp: every action, operator, flag and
error, checked by running the compiled program in a cBPF interpreter on
seccomp_data built for each case.  (tests/integration/test_seccomp.py and
test_seccomp_kernel.py check the same programs against the kernel.)"""
import errno
import os

import pytest

from pyrunc import seccomp_bpf as bpf
from pyrunc.errors import PyruncError
from pyrunc.seccomp import SeccompError
from tests.seccomp.bpf_interp import run, seccomp_data

sc = pytest.importorskip("pyrunc.seccomp_compile", reason="pyrunc._libseccomp is not built")
lib = sc.lib

NATIVE = lib.seccomp_arch_native()
pytestmark = pytest.mark.skipif(NATIVE != bpf.AUDIT_ARCH_X86_64,
                                reason="the system call numbers below are x86-64's")

ALLOW = 0x7FFF0000
ERRNO = 0x00050000
KILL_THREAD = 0
KILL_PROCESS = 0x80000000
TRAP = 0x00030000
TRACE = 0x7FF00000
LOG = 0x7FFC0000
NOTIFY = 0x7FC00000
I386 = 0x40000003


def nr(name, arch=NATIVE):
    n = lib.seccomp_syscall_resolve_name_arch(arch, name.encode())
    assert n >= 0, name
    return n


def verdict(prog, name_or_nr, args=(), arch=bpf.AUDIT_ARCH_X86_64):
    n = nr(name_or_nr) if isinstance(name_or_nr, str) else name_or_nr
    return run(prog, seccomp_data(n, arch, args))


def compile_(profile):
    return sc.compile_profile(profile)


def allow_but(rules, **extra):
    return dict({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}, **extra)


# ---- actions ----

@pytest.mark.parametrize("action,errno_ret,want", [
    ("SCMP_ACT_ERRNO", None, ERRNO | errno.EPERM),
    ("SCMP_ACT_ERRNO", 100, ERRNO | 100),
    ("SCMP_ACT_ERRNO", 0, ERRNO | 0),
    ("SCMP_ACT_KILL", None, KILL_THREAD),
    ("SCMP_ACT_KILL_THREAD", None, KILL_THREAD),
    ("SCMP_ACT_KILL_PROCESS", None, KILL_PROCESS),
    ("SCMP_ACT_TRAP", None, TRAP),
    ("SCMP_ACT_TRACE", None, TRACE | errno.EPERM),
    ("SCMP_ACT_TRACE", 7, TRACE | 7),
    ("SCMP_ACT_LOG", None, LOG),
    ("SCMP_ACT_ALLOW", None, ALLOW),
])
def test_every_action(action, errno_ret, want):
    rule = {"names": ["getppid"], "action": action}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    default = "SCMP_ACT_ERRNO" if action == "SCMP_ACT_ALLOW" else "SCMP_ACT_ALLOW"
    c = compile_({"defaultAction": default, "syscalls": [rule]})
    assert verdict(c.program, "getppid") == want
    assert verdict(c.program, "getpid") == (ALLOW if default == "SCMP_ACT_ALLOW" else ERRNO | 1)
    assert not c.notify


def test_notify_action_sets_new_listener():
    c = compile_(allow_but([{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
                           listenerPath="/run/agent.sock"))
    assert verdict(c.program, "mkdirat") == NOTIFY
    assert c.notify
    assert c.flags & sc.FLAG_NEW_LISTENER


def test_default_errno_ret():
    c = compile_({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 6,
                  "syscalls": [{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"}]})
    assert verdict(c.program, "read") == ALLOW
    assert verdict(c.program, 0) == ALLOW
    assert verdict(c.program, "close") == ERRNO | 6


@pytest.mark.parametrize("default", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_other_default_actions(default):
    c = compile_({"defaultAction": default,
                  "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]})
    want = {"SCMP_ACT_KILL": KILL_THREAD, "SCMP_ACT_KILL_PROCESS": KILL_PROCESS, "SCMP_ACT_TRAP": TRAP}
    assert verdict(c.program, "close") == want[default]
    assert verdict(c.program, "write") == ALLOW


def test_rule_equal_to_default_is_dropped():
    c1 = compile_(allow_but([{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]))
    c2 = compile_(allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]))
    assert c1.program == c2.program


# ---- arguments ----

OPS = {
    "SCMP_CMP_NE": lambda v, a, b: v != a,
    "SCMP_CMP_LT": lambda v, a, b: v < a,
    "SCMP_CMP_LE": lambda v, a, b: v <= a,
    "SCMP_CMP_EQ": lambda v, a, b: v == a,
    "SCMP_CMP_GE": lambda v, a, b: v >= a,
    "SCMP_CMP_GT": lambda v, a, b: v > a,
    "SCMP_CMP_MASKED_EQ": lambda v, a, b: v & a == b,
}
VALUES = [0, 1, 7, 8, 9, 0x100, 0x1FF, 0xFFFFFFFF, 0x100000000, 0x100000008, 0xFFFFFFFFFFFFFFFF]


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("a,b", [(8, 0), (0x1F8, 8), (0x100000008, 0x100000000)])
def test_every_operator_matches_only_the_right_values(op, a, b):
    arg = {"index": 1, "value": a, "op": op}
    if op == "SCMP_CMP_MASKED_EQ":
        arg["valueTwo"] = b
    c = compile_(allow_but([{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
                             "args": [arg]}]))
    for v in VALUES:
        want = ERRNO | 33 if OPS[op](v, a, b) else ALLOW
        # the condition is on argument 1; argument 0 varies too and must not matter
        assert verdict(c.program, "personality", (v ^ 5, v)) == want, (op, hex(v))


def test_conditions_on_distinct_arguments_are_anded():
    c = compile_(allow_but([{"names": ["ftruncate"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 500, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 1337, "op": "SCMP_CMP_EQ"}]}]))
    assert verdict(c.program, "ftruncate", (500, 1337)) == ERRNO | 1
    assert verdict(c.program, "ftruncate", (500, 0)) == ALLOW
    assert verdict(c.program, "ftruncate", (1, 1337)) == ALLOW


def test_conditions_on_one_argument_are_ored():
    # runc's rule: the same index twice cannot be a conjunction, so each is a rule
    c = compile_(allow_but([{"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 55, "args": [
                                 {"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"},
                                 {"index": 0, "value": 2020, "op": "SCMP_CMP_EQ"}]}]))
    assert verdict(c.program, "process_vm_writev", (1337,)) == ERRNO | 55
    assert verdict(c.program, "process_vm_writev", (2020,)) == ERRNO | 55
    assert verdict(c.program, "process_vm_writev", (7,)) == ALLOW


def test_several_rules_for_one_call():
    c = compile_({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]}]})
    assert [verdict(c.program, "dup3", (fd,)) for fd in range(4)] == [ERRNO | 1, ALLOW, ERRNO | 1, ALLOW]


# ---- names ----

def test_unknown_names_are_skipped():
    c = compile_(allow_but([{"names": ["getppid", "no_such_call_ever", "chown32"],
                             "action": "SCMP_ACT_ERRNO"}]))
    assert c.skipped == ("no_such_call_ever",)  # chown32 exists, only not on x86-64
    assert verdict(c.program, "getppid") == ERRNO | 1
    assert verdict(c.program, "getpid") == ALLOW


def test_other_architectures_get_their_own_numbers():
    c = compile_(allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}],
                           architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]))
    assert verdict(c.program, nr("getppid", I386), arch=I386) == ERRNO | 1
    assert verdict(c.program, nr("getpid", I386), arch=I386) == ALLOW
    # an architecture not in the filter: libseccomp's bad-arch action (kill)
    assert verdict(c.program, 1, arch=0xC00000B7) == KILL_THREAD


# ---- -ENOSYS for calls newer than the profile ----

def test_calls_past_the_profile_answer_enosys():
    c = compile_({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write", "getppid", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["getrandom"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})
    assert c.patch_len > 0
    assert verdict(c.program, "getppid") == ALLOW
    assert verdict(c.program, "getpid") == ERRNO | 1                # a hole: the default
    assert verdict(c.program, "getrandom") == ERRNO | 1             # the highest named
    assert verdict(c.program, nr("getrandom") + 1) == bpf.RET_ENOSYS
    assert verdict(c.program, 1000) == bpf.RET_ENOSYS
    # x32 calls are not judged by the x86-64 limit (x32 is not in this profile)
    assert verdict(c.program, bpf.X32_SYSCALL_BIT | 1000) == KILL_THREAD


def test_enosys_limits_per_architecture():
    c = compile_({"defaultAction": "SCMP_ACT_ERRNO",
                  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                  "syscalls": [{"names": ["read", "exit_group", "chown32"], "action": "SCMP_ACT_ALLOW"}]})
    assert verdict(c.program, nr("exit_group") + 1) == bpf.RET_ENOSYS
    x32_max = nr("exit_group", lib.SCMP_ARCH_X32)
    assert verdict(c.program, x32_max) == ALLOW
    assert verdict(c.program, x32_max + 1) == bpf.RET_ENOSYS
    i386_max = max(nr("exit_group", I386), nr("chown32", I386))
    assert verdict(c.program, i386_max, arch=I386) == ALLOW
    assert verdict(c.program, i386_max + 1, arch=I386) == bpf.RET_ENOSYS


@pytest.mark.parametrize("default,errno_ret", [("SCMP_ACT_ALLOW", None), ("SCMP_ACT_LOG", None),
                                               ("SCMP_ACT_TRACE", None), ("SCMP_ACT_ERRNO", 38)])
def test_no_enosys_prologue_when_default_lets_through_or_is_enosys(default, errno_ret):
    prof = {"defaultAction": default,
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL"}]}
    if errno_ret is not None:
        prof["defaultErrnoRet"] = errno_ret
    c = compile_(prof)
    assert c.patch_len == 0
    assert verdict(c.program, 1000) != bpf.RET_ENOSYS or default == "SCMP_ACT_ERRNO"


def test_docker_like_profile_compiles():
    from pyrunc import jsonfast

    with open(os.path.join(os.path.dirname(__file__), "..", "data", "seccomp-docker-like.json")) as f:
        prof = jsonfast.loads(f.read())
    c = compile_(prof)
    assert 300 <= sum(len(r["names"]) for r in prof["syscalls"])
    assert "mseal" in c.skipped  # newer than libseccomp 2.5 knows: skipped, then ENOSYS
    assert verdict(c.program, "read") == ALLOW
    assert verdict(c.program, "personality", (8,)) == ALLOW
    assert verdict(c.program, "personality", (4,)) == ERRNO | 1
    assert verdict(c.program, "socket", (40,)) == ERRNO | 1
    assert verdict(c.program, "socket", (1,)) == ALLOW
    assert verdict(c.program, "clone", (0x10000000,)) == ERRNO | 1     # CLONE_NEWUSER
    assert verdict(c.program, "clone", (0x01200011,)) == ALLOW         # fork()'s flags
    assert verdict(c.program, "clone3") == ERRNO | errno.ENOSYS
    assert verdict(c.program, "kexec_load") == ERRNO | 1
    assert verdict(c.program, 462) == bpf.RET_ENOSYS                   # mseal
    assert len(c.program) // 8 < bpf.BPF_MAXINSNS


# ---- flags ----

def supported(flag):
    return lib.prs_filter_flags_supported(flag) == 1


def test_flags_default_to_spec_allow_when_absent():
    c = compile_(allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]))
    assert c.flags == (sc.FLAG_SPEC_ALLOW if supported(sc.FLAG_SPEC_ALLOW) else 0)
    c = compile_(allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}], flags=[]))
    assert c.flags == 0


@pytest.mark.parametrize("names,want", [
    (["SECCOMP_FILTER_FLAG_LOG"], 2),
    (["SECCOMP_FILTER_FLAG_SPEC_ALLOW"], 4),
    (["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"], 6),
    (["SECCOMP_FILTER_FLAG_TSYNC"], 0),
])
def test_flags(names, want):
    if not supported(want or 0):
        pytest.skip("kernel lacks seccomp filter flags %#x" % want)
    c = compile_(allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}], flags=names))
    assert c.flags == want


def test_wait_killable_recv_goes_with_the_listener():
    flag = sc.FLAG_WAIT_KILLABLE_RECV
    prof = allow_but([{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
                     flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], listenerPath="/x.sock")
    if not supported(flag | sc.FLAG_NEW_LISTENER):
        with pytest.raises(SeccompError, match="not supported by this kernel"):
            compile_(prof)
        return
    assert compile_(prof).flags == flag | sc.FLAG_NEW_LISTENER
    with pytest.raises(SeccompError) as e:
        compile_(allow_but([{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}],
                           flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert str(e.value) == ("config.json: linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV "
                            "needs a SCMP_ACT_NOTIFY rule")


# ---- errors: one line, naming the field ----

G = [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]


@pytest.mark.parametrize("profile,msg", [
    ({"syscalls": G}, "linux.seccomp.defaultAction: is required"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000},
     "linux.seccomp.defaultErrnoRet: must be a number from 0 to 4095"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": True},
     "linux.seccomp.defaultErrnoRet: must be a number from 0 to 4095"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    (allow_but([{"names": ["getppid"], "action": "SCMP_ACT_KILL", "errnoRet": 3}]),
     "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL takes no errno"),
    (allow_but([{"names": [], "action": "SCMP_ACT_KILL"}]),
     "linux.seccomp.syscalls[0].names: must be a non-empty array of strings"),
    (allow_but([{"names": ["a", ""], "action": "SCMP_ACT_KILL"}]),
     "linux.seccomp.syscalls[0].names[1]: must be a non-empty string"),
    (allow_but([{"names": ["getppid"]}]), "linux.seccomp.syscalls[0].action: is required"),
    (allow_but(["getppid"]), "linux.seccomp.syscalls[0]: must be an object"),
    (allow_but({"names": ["x"]}), "linux.seccomp.syscalls: must be an array"),
    (allow_but([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].index: must be a system call argument index from 0 to 5"),
    (allow_but([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].value: is required"),
    (allow_but([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].value: must be an unsigned 64-bit number"),
    (allow_but([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": 1 << 64, "op": "SCMP_CMP_MASKED_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].valueTwo: must be an unsigned 64-bit number"),
    (allow_but([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]),
     'linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"'),
    (allow_but(G, architectures=["x86_64"]), 'linux.seccomp.architectures[0]: unknown architecture "x86_64"'),
    (allow_but(G, flags=["SECCOMP_FILTER_FLAG_FAST"]), 'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST"'),
    (allow_but([{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]),
     "linux.seccomp.listenerPath: is required by SCMP_ACT_NOTIFY"),
    (allow_but([{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}], listenerPath="/a.sock"),
     "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall (pyrunc hands the "
     "listener over with it)"),
    (allow_but([{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}], listenerPath="/a.sock"),
     "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the write syscall (the runtime writes "
     "to its parent after loading the filter, as runc)"),
    (allow_but(G, listenerMetadata="m"), "linux.seccomp.listenerMetadata: requires listenerPath too"),
    (allow_but([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["read"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[1]: libseccomp rejected the rule for `read`: it conflicts with an earlier "
     "rule for the same call and arguments"),
])
def test_errors_are_one_line_and_name_the_field(profile, msg):
    with pytest.raises(SeccompError) as e:
        compile_(profile)
    assert str(e.value) == "config.json: " + msg
    assert "\n" not in str(e.value)
    assert isinstance(e.value, PyruncError)


def test_architecture_this_libseccomp_lacks():
    missing = [a for a in sc.ARCHES if not lib.seccomp_arch_resolve_name(a.lower().encode())]
    if not missing:
        pytest.skip("this libseccomp knows every architecture the runtime-spec lists")
    with pytest.raises(SeccompError) as e:
        compile_(allow_but(G, architectures=["SCMP_ARCH_" + missing[0]]))
    assert str(e.value) == ('config.json: linux.seccomp.architectures[0]: architecture "SCMP_ARCH_%s" '
                            "is not supported by libseccomp %s" % (missing[0], sc.libseccomp_version()))


def test_too_long_a_filter_is_refused():
    # thousands of distinct conditions cannot fit in the kernel's 4096 instructions
    rules = [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]} for v in range(5000)]
    with pytest.raises(SeccompError, match=r"the filter has \d+ instructions, the kernel takes at most 4096"):
        compile_(allow_but(rules))


def test_features_document():
    f = sc.features()
    assert f["enabled"] is True
    assert set(f["operators"]) == set(OPS)
    assert "SCMP_ACT_ERRNO" in f["actions"] and "SCMP_ACT_NOTIFY" in f["actions"]
    assert "SCMP_ARCH_X86_64" in f["archs"]
    assert f["knownFlags"] == ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    assert set(f["supportedFlags"]) <= set(f["knownFlags"])
