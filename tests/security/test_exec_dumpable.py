"""CVE-2016-9962: an exec'd process caught before it is non-dumpable.

`exec` clones the new process into the container's pid namespace, where the
container's processes see it at once, with every fd of the `pyrunc exec` that
cloned it (the state directory, the cgroup directories it joined: host directories)
until its execve, and host root's credentials.  While it is dumpable, a container
process that passes ptrace_may_access can ptrace it, or open /proc/<pid>/fd/N and,
through a host directory fd, reach any host file.  In a user namespace that takes
only CAP_SYS_PTRACE there (unprivileged containers often get every capability of
their namespace).  The race is easy to win: a SIGSTOP to the next pid of the
namespace holds the process where it was caught.  tests/security/fdthief.c does
that for every exec and records what it could read or attach to; the secret is a
canary the test wrote on the host.  (Without a user namespace it takes
CAP_SYS_PTRACE in the host's, which no dumpable flag stops: not tested.)
"""
import os
import shutil
import time

import pytest

from tests.conftest import build_static, in_userns, requires_root
from tests.integration.test_lifecycle import wait_status

pytestmark = requires_root

SECRET = "canary-secret-9d2e"
EXECS = 12


@pytest.fixture(scope="session")
def fdthief(tmp_path_factory):
    return build_static(tmp_path_factory, "fdthief", "security/fdthief.c")


def run_thief(runtime, bundle, rootfs, fdthief, canary):
    shutil.copy(fdthief, rootfs + "/bin/fdthief")
    os.chmod(rootfs + "/bin/fdthief", 0o755)
    bundle.args("/bin/fdthief", "/tmp/loot", canary)
    r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    try:
        wait_status(runtime, bundle.id, "running")
        deadline = time.monotonic() + 5
        while not os.path.exists(rootfs + "/tmp/loot") and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(EXECS):
            runtime.run("exec", bundle.id, "true", timeout=30)
    finally:
        assert runtime.run("delete", "--force", bundle.id).returncode == 0
    with open(rootfs + "/tmp/loot") as f:
        return f.read()


def check(loot):
    assert "caught" in loot, "the thief never caught an exec'd process: the test proves nothing"
    assert SECRET not in loot, "a container process read a host file through an exec'd process's fd:\n" + loot
    assert "fd " not in loot, "a container process listed the fds of an exec'd process:\n" + loot
    assert "ptrace" not in loot, "a container process ptraced an exec'd process:\n" + loot


def test_exec_child_hidden_from_userns_container_with_sys_ptrace(runtime, bundle, fdthief):
    caps = bundle.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind].append("CAP_SYS_PTRACE")
    caps.pop("ambient", None)
    with in_userns(bundle) as rootfs:
        # a canary the container's root (host uid 100000) may read: beside the rootfs,
        # in a directory it can search, so only the fd leak stands between them
        secret = os.path.join(os.path.dirname(rootfs), "secret")
        with open(secret, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(secret, 0o644)
        check(run_thief(runtime, bundle, rootfs, fdthief, secret))
