"""exec: a process joining a running container."""
import json
import os
import time

from tests.conftest import requires_root
from tests.integration.test_lifecycle import wait_status

pytestmark = requires_root


def start_sleeper(runtime, bundle):
    bundle.args("/bin/sleep", "100")
    r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    return wait_status(runtime, bundle.id, "running")


def test_exec_joins_namespaces_and_returns_status(runtime, bundle):
    bundle.config["hostname"] = "exec-host"
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", bundle.id, "sh", "-c", "echo $$; hostname; tr '\\0' ' ' < /proc/1/cmdline; exit 42")
    assert r.returncode == 42, r.stderr
    pid, host, init = r.stdout.split(None, 2)
    assert pid != "1" and int(pid) > 1  # a new process in the container's pid namespace
    assert host == "exec-host"
    assert init.strip() == "/bin/sleep 100"  # and the container's init is its pid 1
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_killed_returns_128_plus_signal(runtime, bundle):
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", bundle.id, "sh", "-c", "kill -TERM $$")
    assert r.returncode == 143
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_missing_executable(runtime, bundle):
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", bundle.id, "/nonexistent")
    assert r.returncode == 255
    assert "no such file or directory" in r.stderr
    r = runtime.run("exec", "-d", bundle.id, "/nonexistent")
    assert r.returncode == 1
    assert "no such file or directory" in r.stderr
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_detach_pid_file_and_user(runtime, bundle, tmp_path):
    start_sleeper(runtime, bundle)
    pidfile = str(tmp_path / "exec.pid")
    r = runtime.run("exec", "-d", "--pid-file", pidfile, "-u", "1000:1001", bundle.id,
                    "sh", "-c", "id -u > /tmp/who; id -g >> /tmp/who; sleep 100")
    assert r.returncode == 0, r.stderr
    with open(pidfile) as f:
        text = f.read()
    assert text.isdigit()
    pid = int(text)
    deadline = time.monotonic() + 5
    while not os.path.exists(bundle.rootfs + "/tmp/who") and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    with open(bundle.rootfs + "/tmp/who") as f:
        assert f.read().split() == ["1000", "1001"]
    # same pid namespace as the init
    init = runtime.state(bundle.id)["pid"]
    assert os.readlink("/proc/%d/ns/pid" % pid) == os.readlink("/proc/%d/ns/pid" % init)
    assert os.readlink("/proc/%d/ns/mnt" % pid) == os.readlink("/proc/%d/ns/mnt" % init)
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_process_file_env_cwd_and_caps(runtime, bundle, tmp_path):
    start_sleeper(runtime, bundle)
    proc = {"args": ["/bin/sh", "-c", "pwd; echo $ONLY; grep CapEff /proc/self/status"],
            "env": ["ONLY=this", "PATH=/bin"], "cwd": "/tmp", "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"]}}
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    r = runtime.run("exec", "--process", str(pf), bundle.id)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "/tmp" and lines[1] == "this"
    assert int(lines[2].split()[1], 16) == 1 << 5
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_in_stopped_or_missing_container(runtime, bundle):
    r = runtime.run("exec", "-d", "nope", "true")
    assert r.returncode == 1 and "does not exist" in r.stderr
    bundle.args("/bin/true")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    wait_status(runtime, bundle.id, "stopped")
    r = runtime.run("exec", "-d", bundle.id, "true")
    assert r.returncode == 1 and "stopped" in r.stderr
    assert runtime.run("delete", bundle.id).returncode == 0


def test_exec_fd_hygiene(runtime, bundle):
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", bundle.id, "ls", "/proc/self/fd")
    assert r.returncode == 0, r.stderr
    assert sorted(int(x) for x in r.stdout.split())[:3] == [0, 1, 2]
    assert len(r.stdout.split()) == 4  # 0-2 and ls's own directory fd
    assert runtime.run("delete", "--force", bundle.id).returncode == 0
