"""pyrunc under a real containerd, through the runc v2 shim (`ctr --runc-binary`).

What the shim sends and expects is in oci-specs/runtime-cli-contract.md; these
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

from tests.containerd.conftest import NAMESPACE, PYRUNC, leftovers


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


def test_run_with_seccomp_caps_env_cwd_read_only_and_memory_limit(containerd, image):
    """the spec ctr makes from its flags reaches the process (containerd's default
    seccomp profile is a big one: pyrunc compiles it), and the limit its cgroup"""
    cid = _id()
    r = containerd.run("-d", "--seccomp", "--cap-add", "CAP_SYS_ADMIN", "--env", "A=1", "--cwd", "/tmp",
                       "--read-only", "--memory-limit", str(64 << 20), image, cid, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    try:
        r = containerd.exec("--exec-id", "look", cid, "sh", "-c",
                            "grep -E '^(Seccomp|CapEff):' /proc/self/status; echo $A; pwd; touch /x")
        lines = r.stdout.splitlines()
        assert int(lines[0].split()[1], 16) & (1 << 21), lines  # CAP_SYS_ADMIN
        assert lines[1].split() == ["Seccomp:", "2"]  # a filter is installed
        assert lines[2:] == ["1", "/tmp"]
        assert r.returncode == 1 and "Read-only file system" in r.stderr, r.stderr
        r = containerd.ctr("task", "metrics", cid)
        limit = "memory.limit_in_bytes" if "memory.limit_in_bytes" in r.stdout else "memory.usage_limit"
        assert _metric(r.stdout, limit) == str(64 << 20), r.stdout
    finally:
        _cleanup(containerd, cid)


def _with_tty(containerd, *args):
    """run ctr with a pty as its stdio (ctr wants a console for -t); (rc, output)"""
    import subprocess

    master, slave = pty.openpty()
    p = subprocess.Popen(["ctr", "--address", containerd.sock, "-n", NAMESPACE] + list(args),
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        return p.wait(10), out.decode(errors="replace")
    finally:
        os.close(master)


def test_run_with_a_terminal(containerd, image):
    """create --console-socket through the shim: the init's stdio is the pty's slave"""
    cid = _id()
    rc, out = _with_tty(containerd, "run", "-t", "--rm", "--runc-binary", PYRUNC, "--runc-root",
                        containerd.runc_root, "--fifo-dir", containerd.fifo_dir, image, cid,
                        "sh", "-c", "tty; echo $$; exit 2")
    assert rc == 2, out
    assert out.split()[:2] == ["/dev/pts/0", "1"], out
    assert leftovers(containerd, cid) == []


def test_exec_returns_its_status(containerd, running):
    r = containerd.exec("--exec-id", "e1", running, "sh", "-c", "echo in; exit 5")
    assert r.returncode == 5, r.stderr
    assert r.stdout == "in\n"
    # it ran in the container: same pid namespace as the init (pid 1 is sleep)
    r = containerd.exec("--exec-id", "e2", running, "cat", "/proc/1/cmdline")
    assert r.returncode == 0 and r.stdout.startswith("sleep"), r


def test_exec_with_a_terminal(containerd, running):
    # ctr wants a console on its own stdin for -t; the terminal is only in process.json
    rc, out = _with_tty(containerd, "task", "exec", "-t", "--fifo-dir", containerd.fifo_dir,
                        "--exec-id", "tty1", running, "sh", "-c", "tty; echo done; exit 4")
    assert rc == 4, out
    assert "/dev/pts/" in out and "done" in out, out


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
