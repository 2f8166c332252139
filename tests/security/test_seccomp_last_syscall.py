"""Seccomp with noNewPrivileges: the final execve is the only call the runtime makes
under the container's filter (as runc).

A profile recorded from the workload (an allow-list: exactly the calls busybox makes,
plus execve) must run.  Before, pyrunc itself still made sendmsg, recvmsg,
rt_sigprocmask and execveat (of its exec stub) under the filter, and such a profile
failed the container.  The sealed stub now loads the filter just before its execve.
"""
import re
import shutil
import subprocess

import pytest

from tests.conftest import BUSYBOX, PYRUNC, requires_root

RUNTIME_CALLS = ["sendmsg", "recvmsg", "rt_sigprocmask", "execveat", "sendto", "close", "fcntl", "pread64"]

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")]


def _recorded():
    """what a profile recorder would list: the calls of `busybox echo hi` (strace -f),
    plus execve"""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "log")
        subprocess.run(["strace", "-f", "-qq", "-o", log, BUSYBOX, "echo", "hi"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(log) as f:
            names = {m.group(1) for m in (re.match(r"\d+\s+(\w+)\(", line) for line in f) if m}
    return sorted(names | {"execve"})


BUSYBOX_CALLS = _recorded() if shutil.which("strace") else []


def allow_list(names):
    # no "architectures": the native one only
    return {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}


def test_allow_list_of_the_workload_runs(runtime, bundle):
    assert not set(RUNTIME_CALLS) & set(BUSYBOX_CALLS)
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = allow_list(BUSYBOX_CALLS)
    bundle.args("echo", "hi")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"


def test_filter_applies_to_the_workload(runtime, bundle):
    # the same list without write: echo's write is refused (EPERM, default action)
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = allow_list([c for c in BUSYBOX_CALLS if c != "write"])
    bundle.args("echo", "hi")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.stdout == ""
    assert r.returncode != 0


def test_execve_refused_by_the_profile_is_one_line(runtime, bundle):
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = allow_list([c for c in BUSYBOX_CALLS if c != "execve"])
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == ["exec `/bin/true`: operation not permitted"], r.stderr


def test_exec_with_an_allow_list_runs(runtime, bundle):
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = allow_list(BUSYBOX_CALLS + ["nanosleep", "clock_nanosleep"])
    bundle.args("sleep", "100")
    r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    try:
        r = runtime.run("exec", bundle.id, "echo", "from-exec")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "from-exec\n"
    finally:
        runtime.run("delete", "--force", bundle.id)


def test_only_execve_after_the_filter_is_loaded(runtime, bundle, tmp_path):
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = allow_list(BUSYBOX_CALLS)
    bundle.args("echo", "hi")
    log = str(tmp_path / "strace.log")
    p = subprocess.run(["strace", "-f", "-qq", "-o", log, PYRUNC, "--root", runtime.root,
                        "run", "-b", bundle.path, bundle.id],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    calls = {}
    loaded = None
    with open(log) as f:
        for line in f:
            m = re.match(r"(\d+)\s+(?:<\.\.\. )?(\w+)", line)
            if not m:
                continue
            pid, name = m.groups()
            if "resumed>" in line:
                continue
            calls.setdefault(pid, []).append((name, line))
            if name == "seccomp" and "SECCOMP_SET_MODE_FILTER" in line:
                loaded = pid
    assert loaded, "no seccomp() seen"
    seq = calls[loaded]
    i = max(k for k, (name, _) in enumerate(seq) if name == "seccomp")
    after = seq[i + 1:]
    assert after and after[0][0] == "execve", after[:3]
    # and that execve runs the workload (busybox), not the runtime
    assert "/bin/echo" in after[0][1] or "busybox" in after[0][1], after[0][1]
