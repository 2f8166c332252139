"""pyrunc under a real containerd, through the runc v2 shim (`ctr --runc-binary`).

What the shim sends and expects is in shared/docs/runtime-cli-contract.md; these
tests drive it end to end: run in the foreground and detached, exec with and without
a terminal, kill and kill --all, pause/resume, ps, metrics, a failed create, and no
state, cgroup or mount left after each container.
"""
import os
import pty
import select
import time
import uuid

import pytest

from tests.containerd.conftest import NAMESPACE, leftovers


def _id():
    return "c-" + uuid.uuid4().hex[:8]


def _run(containerd, image, cid, *args, detach=False):
    return containerd.run("-d" if detach else "--rm", image, cid, *args)


def _cleanup(containerd, cid):
    containerd.ctr("task", "kill", "-a", "-s", "KILL", cid)
    for _ in range(100):
        r = containerd.ctr("task", "delete", cid)
        if r.returncode == 0 or "not found" in r.stderr:
            break
        time.sleep(0.05)
    containerd.ctr("container", "rm", cid)
    assert leftovers(containerd, cid) == []


@pytest.fixture
def running(containerd, image):
    cid = _id()
    r = _run(containerd, image, cid, "sleep", "1000", detach=True)
    assert r.returncode == 0, r.stderr
    yield cid
    _cleanup(containerd, cid)


def _status(containerd, cid):
    for line in containerd.ctr("task", "ls").stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return f[2]
    return None


def test_run_rm_output_and_exit_code(containerd, image):
    cid = _id()
    r = _run(containerd, image, cid, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n"
    assert "err" in r.stderr
    assert leftovers(containerd, cid) == []


def test_the_container_runs_in_its_own_namespaces_and_cgroup(containerd, image):
    cid = _id()
    r = _run(containerd, image, cid, "sh", "-c", "echo $$; cat /proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1"  # the init is pid 1 of its pid namespace
    assert any(("/%s/%s" % (NAMESPACE, cid)) in l for l in lines[1:]), lines


def test_exec_returns_its_status(containerd, running):
    r = containerd.exec("--exec-id", "e1", running, "sh", "-c", "echo in; exit 5")
    assert r.returncode == 5, r.stderr
    assert r.stdout == "in\n"
    # it ran in the container: same pid namespace as the init (pid 1 is sleep)
    r = containerd.exec("--exec-id", "e2", running, "cat", "/proc/1/cmdline")
    assert r.returncode == 0 and r.stdout.startswith("sleep"), r


def test_exec_with_a_terminal(containerd, running):
    # ctr wants a console on its own stdin for -t
    master, slave = pty.openpty()
    try:
        p = __import__("subprocess").Popen(
            ["ctr", "--address", containerd.sock, "-n", NAMESPACE, "task", "exec", "-t",
             "--fifo-dir", containerd.fifo_dir, "--exec-id", "tty1", running, "sh", "-c", "tty; echo done; exit 4"],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        slave = -1
        out = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        assert p.wait(10) == 4, out
        text = out.decode(errors="replace")
        assert "/dev/pts/" in text and "done" in text, text
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_exec_of_a_missing_binary_names_the_cause(containerd, running):
    r = containerd.exec("--exec-id", "bad", running, "/no/such/binary")
    assert r.returncode != 0
    assert "no such file or directory" in r.stderr, r.stderr


def test_kill_stops_the_task(containerd, running):
    # (SIGTERM would do nothing: sleep is pid 1 of its namespace and has no handler)
    r = containerd.ctr("task", "kill", "-s", "KILL", running)
    assert r.returncode == 0, r.stderr
    for _ in range(100):
        if _status(containerd, running) == "STOPPED":
            break
        time.sleep(0.05)
    assert _status(containerd, running) == "STOPPED"


def test_kill_all_reaches_exec_processes(containerd, running):
    r = containerd.exec("-d", "--exec-id", "bg", running, "sleep", "500")
    assert r.returncode == 0, r.stderr
    ps = containerd.ctr("task", "ps", running).stdout.splitlines()[1:]
    assert len(ps) == 2, ps
    assert containerd.ctr("task", "kill", "-a", "-s", "KILL", running).returncode == 0
    for _ in range(100):
        if _status(containerd, running) == "STOPPED":
            break
        time.sleep(0.05)
    assert _status(containerd, running) == "STOPPED"


def test_pause_resume(containerd, running):
    assert containerd.ctr("task", "pause", running).returncode == 0
    assert _status(containerd, running) == "PAUSED"
    assert containerd.ctr("task", "resume", running).returncode == 0
    assert _status(containerd, running) == "RUNNING"
    r = containerd.exec("--exec-id", "after", running, "true")
    assert r.returncode == 0, r.stderr


def _metric(text, name):
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == name:
            return f[1]
    raise AssertionError("%s not in %s" % (name, text))


def test_ps_and_metrics(containerd, running):
    r = containerd.ctr("task", "ps", running)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2  # header + the init
    r = containerd.ctr("task", "metrics", running)
    assert r.returncode == 0, r.stderr
    assert _metric(r.stdout, "pids.current") == "1"
    # (cgroup v1 name; ctr prints memory.usage on cgroup2)
    mem = "memory.usage_in_bytes" if "memory.usage_in_bytes" in r.stdout else "memory.usage"
    assert int(_metric(r.stdout, mem)) > 0
    # an exec'd process is in the container's cgroups (the shim reads them itself)
    # and `pyrunc ps` lists it, so containerd matches it to its exec id
    assert containerd.exec("-d", "--exec-id", "side", running, "sleep", "500").returncode == 0
    r = containerd.ctr("task", "metrics", running)
    assert _metric(r.stdout, "pids.current") == "2", r.stdout
    r = containerd.ctr("task", "ps", running)
    assert "ExecID:side" in r.stdout, r.stdout


def test_failed_create_names_the_cause_and_leaves_nothing(containerd, image):
    cid = _id()
    r = _run(containerd, image, cid, "/no/such/binary")
    assert r.returncode != 0
    assert "no such file or directory" in r.stderr, r.stderr
    assert "/no/such/binary" in r.stderr
    containerd.ctr("container", "rm", cid)
    assert leftovers(containerd, cid) == []
