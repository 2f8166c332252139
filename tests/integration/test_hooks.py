"""OCI hooks: phases, namespaces, state on stdin, env, args, timeout, failures."""
import json
import os
import time

from tests.conftest import cgroup_dirs, requires_root
from tests.integration.test_lifecycle import wait_status

pytestmark = requires_root

HOOK = """#!/bin/sh
# $1 = phase; record: phase, our args, env FOO, hostname and mount namespace, stdin
out=%(out)s
{ echo "phase=$1 args=$* foo=$FOO host=$(cat /proc/sys/kernel/hostname) mnt=$(readlink /proc/self/ns/mnt)";
  cat; echo; } >> "$out"
"""


def hook(path, phase, **kw):
    h = {"path": path, "args": [path, phase, "extra"], "env": ["FOO=bar-" + phase]}
    h.update(kw)
    return h


def records(out):
    with open(out) as f:
        lines = f.read().splitlines()
    return [(lines[i], json.loads(lines[i + 1])) for i in range(0, len(lines), 2)]


def test_all_phases_in_order_with_state_and_namespaces(runtime, bundle, tmp_path):
    out = str(tmp_path / "hooks.log")
    script = str(tmp_path / "hook.sh")
    with open(script, "w") as f:
        f.write(HOOK % {"out": out})
    os.chmod(script, 0o755)
    bundle.config["hostname"] = "in-container"
    bundle.config["hooks"] = {p: [hook(script, p)] for p in
                              ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    bundle.args("/bin/sleep", "100")
    assert runtime.run("create", "-b", bundle.path, bundle.id).returncode == 0
    pid = runtime.state(bundle.id)["pid"]
    assert runtime.run("start", bundle.id).returncode == 0
    wait_status(runtime, bundle.id, "running")
    assert runtime.run("kill", bundle.id, "KILL").returncode == 0
    wait_status(runtime, bundle.id, "stopped")
    assert runtime.run("delete", bundle.id).returncode == 0

    recs = records(out)
    phases = [r[0].split()[0] for r in recs]
    assert phases == ["phase=prestart", "phase=createRuntime", "phase=createContainer",
                      "phase=poststart", "phase=poststop"]
    host_mnt = os.readlink("/proc/self/ns/mnt")
    for line, state in recs:
        phase = line.split()[0][6:]
        assert "args=%s extra" % phase in line
        assert "foo=bar-%s" % phase in line
        assert state["id"] == bundle.id and state["bundle"] == bundle.path
        if phase == "createContainer":
            # in the container's namespaces
            assert "host=in-container" in line
            assert "mnt=" + host_mnt not in line
        else:
            assert "mnt=" + host_mnt in line
        if phase != "poststop":
            assert state["pid"] == pid
    assert recs[0][1]["status"] == "creating"
    assert recs[3][1]["status"] == "running"
    assert recs[4][1]["status"] == "stopped"


def test_failing_create_hook_fails_create_and_cleans_up(runtime, bundle, tmp_path):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}]}
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert "createRuntime hook #0" in r.stderr and "exit status 3" in r.stderr and "boom" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    assert cgroup_dirs(bundle.id) == []


def test_missing_hook_binary(runtime, bundle):
    bundle.config["hooks"] = {"prestart": [{"path": "/no/such/hook"}]}
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert "prestart hook #0 (/no/such/hook)" in r.stderr and "no such file" in r.stderr


def test_hook_timeout(runtime, bundle):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    bundle.args("/bin/true")
    t0 = time.monotonic()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert "timed out" in r.stderr
    assert time.monotonic() - t0 < 10


def test_failing_poststart_and_poststop_only_warn(runtime, bundle):
    fail = [{"path": "/bin/false"}]
    bundle.config["hooks"] = {"poststart": fail, "poststop": fail}
    bundle.args("/bin/sleep", "100")
    assert runtime.run("create", "-b", bundle.path, bundle.id).returncode == 0
    r = runtime.run("start", bundle.id)
    assert r.returncode == 0
    assert "poststart hook #0" in r.stderr
    r = runtime.run("delete", "--force", bundle.id)
    assert r.returncode == 0
    assert "poststop hook #0" in r.stderr
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_start_container_hook_runs_inside_before_the_process(runtime, bundle):
    # the hook's path resolves in the container: it is the container's busybox
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/start-hook-state; hostname > /tmp/start-hook-host"]}]}
    bundle.config["hostname"] = "inside"
    bundle.args("/bin/sh", "-c", "test -f /tmp/start-hook-host && echo hook-ran-first > /tmp/order; sleep 100")
    assert runtime.run("create", "-b", bundle.path, bundle.id).returncode == 0
    assert not os.path.exists(bundle.rootfs + "/tmp/start-hook-state")
    assert runtime.run("start", bundle.id).returncode == 0
    deadline = time.monotonic() + 5
    while not os.path.exists(bundle.rootfs + "/tmp/order") and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(bundle.rootfs + "/tmp/start-hook-host") as f:
        assert f.read() == "inside\n"
    with open(bundle.rootfs + "/tmp/start-hook-state") as f:
        assert json.load(f)["id"] == bundle.id
    with open(bundle.rootfs + "/tmp/order") as f:
        assert f.read() == "hook-ran-first\n"
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_failing_start_container_hook_stops_the_container(runtime, bundle):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.args("/bin/sh", "-c", "touch /tmp/ran; sleep 100")
    assert runtime.run("create", "-b", bundle.path, bundle.id).returncode == 0
    r = runtime.run("start", bundle.id)
    assert r.returncode == 1 and "startContainer hook #0" in r.stderr
    wait_status(runtime, bundle.id, "stopped")
    assert not os.path.exists(bundle.rootfs + "/tmp/ran")
    assert runtime.run("delete", bundle.id).returncode == 0


def test_start_container_hook_runs_under_the_container_seccomp_filter(runtime, bundle):
    """as runc, which runs startContainer hooks from its init after loading the filter:
    the hook's mkdir is killed by SIGSYS, the start fails and says so"""
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]}
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "touch /tmp/hook-ran; mkdir /tmp/hook-dir"]}]}
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert "startContainer hook #0 (/bin/sh): error running hook: killed by signal 31 (bad system call)" \
        in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
    assert os.path.exists(bundle.rootfs + "/tmp/hook-ran")  # it ran, up to the mkdir
    assert not os.path.exists(bundle.rootfs + "/tmp/hook-dir")
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_create_container_hook_runs_from_the_rootfs(runtime, bundle):
    """runc's init chdirs to the rootfs before running createContainer hooks (runc's
    hooks.bats binds files with paths relative to it)"""
    bundle.config["hooks"] = {"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "pwd > ./tmp/cc-cwd"]}]}
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    with open(bundle.rootfs + "/tmp/cc-cwd") as f:
        assert f.read() == os.path.realpath(bundle.rootfs) + "\n"
