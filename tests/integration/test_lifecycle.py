"""create / start / state / kill / delete / run / list with real containers."""
import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import PYRUNC, cgroup_dirs, requires_root

pytestmark = requires_root


def wait_status(rt, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    st = {"status": "(no state)"}
    while time.monotonic() < deadline:
        r = rt.run("state", cid)
        if r.returncode == 0:
            st = json.loads(r.stdout)
            if st["status"] == want:
                return st
        time.sleep(0.05)
    raise AssertionError("container %s never reached %s (last %s)" % (cid, want, st["status"]))


def test_run_foreground_output_and_exit_code(runtime, bundle):
    bundle.args("/bin/sh", "-c", "echo hello from $(hostname); exit 7")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.stdout == "hello from pyrunc\n"
    assert r.stderr == ""
    assert r.returncode == 7
    # run deletes the container when it exits
    assert runtime.run("state", bundle.id).returncode == 1


def test_run_killed_by_signal_returns_128_plus_signal(runtime, bundle):
    # the init is pid 1 of its namespace: only a signal from outside (or one it
    # handles) reaches it, so kill it through pyrunc while `run` waits
    bundle.args("/bin/sleep", "100")
    p = subprocess.Popen([PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_status(runtime, bundle.id, "running")
        assert runtime.run("kill", bundle.id, "KILL").returncode == 0
        assert p.wait(timeout=10) == 128 + 9
    finally:
        p.kill()
        p.wait()
    assert runtime.run("state", bundle.id).returncode == 1


def test_create_start_state_delete(runtime, bundle, tmp_path):
    marker = "/tmp/started"
    bundle.args("/bin/sh", "-c", "touch %s; sleep 100" % marker)
    pidfile = str(tmp_path / "init.pid")
    r = runtime.run("create", "--bundle", bundle.path, "--pid-file", pidfile, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""

    # pid file: the host pid, no trailing newline, written before create exits
    with open(pidfile) as f:
        text = f.read()
    assert text.isdigit(), repr(text)
    pid = int(text)

    st = runtime.state(bundle.id)
    assert st["status"] == "created"
    assert st["pid"] == pid
    assert st["id"] == bundle.id
    assert st["bundle"] == bundle.path
    assert st["rootfs"] == bundle.rootfs
    assert st["ociVersion"]
    # the process has not run yet
    assert not os.path.exists(bundle.rootfs + marker)
    # the init is not our child and nothing stands between: its parent is pid 1 here
    with open("/proc/%d/stat" % pid) as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid == 1

    r = runtime.run("start", bundle.id)
    assert r.returncode == 0, r.stderr
    st = wait_status(runtime, bundle.id, "running")
    deadline = time.monotonic() + 5
    while not os.path.exists(bundle.rootfs + marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(bundle.rootfs + marker)

    # start twice: error, as runc
    r = runtime.run("start", bundle.id)
    assert r.returncode == 1
    assert "already running" in r.stderr

    # delete of a running container needs --force
    r = runtime.run("delete", bundle.id)
    assert r.returncode == 1
    assert "not stopped" in r.stderr

    r = runtime.run("kill", bundle.id, "KILL")
    assert r.returncode == 0, r.stderr
    st = wait_status(runtime, bundle.id, "stopped")
    assert st["pid"] == 0

    r = runtime.run("kill", bundle.id, "TERM")
    assert r.returncode == 1
    assert "container not running" in r.stderr

    r = runtime.run("start", bundle.id)
    assert r.returncode == 1
    assert "stopped" in r.stderr

    r = runtime.run("delete", bundle.id)
    assert r.returncode == 0, r.stderr
    r = runtime.run("state", bundle.id)
    assert r.returncode == 1
    assert "does not exist" in r.stderr
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_state_output_is_runc_shaped(runtime, bundle):
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.args("/bin/sleep", "100")
    assert runtime.run("create", "-b", bundle.path, bundle.id).returncode == 0
    r = runtime.run("state", bundle.id)
    # two-space indent, no final newline, nothing on stderr
    assert r.stderr == ""
    assert not r.stdout.endswith("\n")
    assert r.stdout.startswith('{\n  "ociVersion"')
    st = json.loads(r.stdout)
    assert st["annotations"] == {"org.example.key": "value"}
    assert st["created"].endswith("Z")
    assert runtime.run("delete", bundle.id).returncode == 0  # created: deleted as runc does


def test_zombie_init_is_stopped(runtime, bundle):
    """An init that exited but is not reaped (its parent is a subreaper that waits)
    is reported as stopped with pid 0, as runc and crun do."""
    bundle.args("/bin/true")
    # a subreaper that never reaps: sh -c 'create; start; sleep'
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def become_subreaper():
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    p = subprocess.Popen(["/bin/sh", "-c", "%s --root %s run -d -b %s %s; sleep 30" % (
        PYRUNC, runtime.root, bundle.path, bundle.id)], preexec_fn=become_subreaper)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = runtime.run("state", bundle.id)
            if r.returncode == 0 and json.loads(r.stdout)["status"] == "stopped":
                break
            time.sleep(0.05)
        st = runtime.state(bundle.id)
        assert st["status"] == "stopped"
        assert st["pid"] == 0
    finally:
        p.kill()
        p.wait()
    assert runtime.run("delete", bundle.id).returncode == 0


def test_run_detach_and_list(runtime, bundle):
    bundle.args("/bin/sleep", "100")
    r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    st = wait_status(runtime, bundle.id, "running")
    r = runtime.run("list", "--format", "json")
    items = json.loads(r.stdout)
    assert [i["id"] for i in items] == [bundle.id]
    assert items[0]["status"] == "running" and items[0]["pid"] == st["pid"]
    r = runtime.run("list", "-q")
    assert r.stdout == bundle.id + "\n"
    r = runtime.run("list")
    assert r.stdout.splitlines()[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert runtime.run("delete", "--force", bundle.id).returncode == 0
    r = runtime.run("list", "--format", "json")
    assert r.stdout == "null\n"


def test_kill_signal_forms(runtime, bundle):
    bundle.args("/bin/sh", "-c", "trap 'echo got-usr1 > /tmp/sig; exit 0' USR1; while true; do sleep 0.1; done")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    wait_status(runtime, bundle.id, "running")
    time.sleep(0.3)  # let the shell install its trap
    r = runtime.run("kill", bundle.id, "usr1")
    assert r.returncode == 0, r.stderr
    wait_status(runtime, bundle.id, "stopped")
    with open(bundle.rootfs + "/tmp/sig") as f:
        assert f.read() == "got-usr1\n"
    r = runtime.run("kill", bundle.id, "BOGUS")
    assert r.returncode == 1
    assert 'unknown signal "BOGUS"' in r.stderr
    assert runtime.run("delete", bundle.id).returncode == 0


def test_kill_accepts_numbers_and_sig_prefix(runtime, bundle):
    bundle.args("/bin/sleep", "100")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    assert runtime.run("kill", bundle.id, "0").returncode == 0  # probe only
    assert runtime.run("kill", bundle.id, "SIGKILL").returncode == 0
    wait_status(runtime, bundle.id, "stopped")
    assert runtime.run("delete", bundle.id).returncode == 0


def test_delete_force_of_missing_container_succeeds(runtime):
    r = runtime.run("delete", "--force", "never-existed")
    assert r.returncode == 0 and r.stderr == ""
    r = runtime.run("delete", "never-existed")
    assert r.returncode == 1
    assert "does not exist" in r.stderr


def test_flags_after_id_and_equals_forms(runtime, bundle):
    bundle.args("/bin/true")
    r = runtime.run("--log-format=json", "create", bundle.id, "--bundle=" + bundle.path)
    assert r.returncode == 0, r.stderr
    assert runtime.run("delete", bundle.id).returncode == 0


def test_duplicate_id_is_refused_and_first_survives(runtime, bundle):
    bundle.args("/bin/sleep", "100")
    assert runtime.run("create", "-b", bundle.path, bundle.id).returncode == 0
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert "already exists" in r.stderr
    assert runtime.state(bundle.id)["status"] == "created"
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_cgroups_created_and_removed(runtime, bundle):
    bundle.args("/bin/sleep", "100")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    pid = runtime.state(bundle.id)["pid"]
    dirs = cgroup_dirs(bundle.id)
    assert dirs, "no cgroup was created"
    with open("/proc/%d/cgroup" % pid) as f:
        lines = f.read().splitlines()
    # the init sits in the configured cgroup in every v1 hierarchy (and v2 where mounted)
    expected = "/pyrunc-test/%s" % bundle.id
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls.startswith("name=") and ctrls != "name=systemd":
            continue
        assert path == expected, line
    assert runtime.run("delete", "--force", bundle.id).returncode == 0
    assert cgroup_dirs(bundle.id) == []


def test_version(runtime):
    r = runtime.run("--version")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("pyrunc version ")
    assert any(line.startswith("commit: ") for line in lines)
    assert any(line.startswith("spec: ") for line in lines)


def test_unknown_command_exit_code(runtime):
    r = runtime.run("frobnicate")
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1


def test_root_is_created_on_demand(tmp_path, bundle):
    root = str(tmp_path / "deep" / "root")
    bundle.args("/bin/true")
    r = subprocess.run([PYRUNC, "--root", root, "run", "-b", bundle.path, bundle.id],
                       capture_output=True, text=True)
    # runc creates a missing --root (one level is enough for runc; we accept any depth)
    assert r.returncode == 0, r.stderr


def test_works_with_empty_environment(runtime, bundle):
    """podman's cleanup calls the runtime with no PATH at all"""
    bundle.args("/bin/true")
    r = subprocess.run([PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id],
                       capture_output=True, text=True, env={}, cwd="/")
    assert r.returncode == 0, r.stderr


def test_memory_pids_limits_applied(runtime, bundle):
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("no cgroup v1 memory hierarchy mounted")
    bundle.config["linux"]["resources"].update({
        "memory": {"limit": 64 << 20, "swappiness": 10, "disableOOMKiller": True},
        "pids": {"limit": 42}})
    bundle.args("/bin/sleep", "100")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    base = "/sys/fs/cgroup/%s/pyrunc-test/" + bundle.id
    with open(base % "memory" + "/memory.limit_in_bytes") as f:
        assert int(f.read()) == 64 << 20
    with open(base % "memory" + "/memory.swappiness") as f:
        assert int(f.read()) == 10
    with open(base % "memory" + "/memory.oom_control") as f:
        assert "oom_kill_disable 1" in f.read()
    with open(base % "pids" + "/pids.max") as f:
        assert f.read().strip() == "42"
    assert runtime.run("delete", "--force", bundle.id).returncode == 0
