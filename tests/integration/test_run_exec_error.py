"""An error between `start` and the container's exec still reaches `run`'s caller."""
from tests.conftest import requires_root

pytestmark = requires_root


def test_refused_execveat_fails_run_with_a_message(runtime, bundle):
    # the init's final step is execveat(stub memfd): without noNewPrivileges the filter
    # is loaded before it (before the user switch, as runc), so a profile that refuses
    # it (and allows everything else) makes that exec fail after the init said READY
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "exec" in lines[0] and "operation not permitted" in lines[0], lines[0]
    assert runtime.run("state", bundle.id).returncode != 0  # nothing left behind


def test_refused_execveat_fails_detached_run_too(runtime, bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    bundle.args("/bin/sleep", "10")
    r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert "operation not permitted" in r.stderr
    assert runtime.run("state", bundle.id).returncode != 0


def test_with_no_new_privileges_execveat_is_not_under_the_filter(runtime, bundle):
    # with noNewPrivileges the stub loads the filter right before the final execve:
    # the runtime's execveat of the stub is not filtered (runc makes no execveat)
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr


def refuse_execve(bundle, *args):
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    bundle.args(*args)


def test_refused_final_execve_fails_run_with_a_message(runtime, bundle):
    # ... and the stub's execve refused by the filter reaches `run` as the init's error
    refuse_execve(bundle, "/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["exec `/bin/true`: operation not permitted"], r.stderr
    assert runtime.run("state", bundle.id).returncode != 0


def test_refused_final_execve_fails_detached_run_too(runtime, bundle):
    refuse_execve(bundle, "/bin/sleep", "10")
    r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["exec `/bin/sleep`: operation not permitted"], r.stderr
    assert runtime.run("state", bundle.id).returncode != 0


def test_unknown_syscall_names_are_skipped_and_said_at_debug(runtime, bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_xyz", "getpid"], "action": "SCMP_ACT_ERRNO"}],
    }
    bundle.args("/bin/true")
    for _ in range(2):  # a cold compile, then a cache hit: both say it
        r = runtime.run("--debug", "run", "-b", bundle.path, bundle.id)
        assert r.returncode == 0, r.stderr
        assert "skipped: no_such_syscall_xyz" in r.stderr
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stderr == ""
