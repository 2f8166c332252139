"""What runc's own integration suite (tests/integration/*.bats at v1.1.5) checks of the
command line, one behaviour per test: --debug records, help layout and exit codes,
run --keep, exec --ignore-paused / --pid-file, the terminal's size and owner,
pre-existing cgroups, and `pyrunc run bundle/`."""
import array
import json
import os
import select
import socket
import subprocess
import threading
import time

import pytest

from tests.conftest import CGROUP_PARENT, PYRUNC, assert_no_leftovers, requires_root
from tests.integration.test_exec import start_sleeper, wait_status

pytestmark = requires_root


# ---- --debug ----

def _debug_lines(text):
    return [line for line in text.splitlines() if "level=debug" in line or '"level":"debug"' in line]


def test_debug_records_on_stderr_for_run(runtime, bundle):
    bundle.args("/bin/echo", "hello")
    r = runtime.run("--debug", "run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    dbg = _debug_lines(r.stderr)
    # runc's step names, which its suite and log readers look for
    for step in ("nsexec container setup", "child process in init()",
                 "init: closing the pipe to signal completion"):
        assert any(step in line for line in dbg), (step, r.stderr)
    # without --debug: nothing
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stderr == ""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_debug_records_go_to_the_log_file_only(runtime, bundle, tmp_path, fmt):
    bundle.args("/bin/true")
    log = tmp_path / "log.out"
    r = runtime.run("--log", str(log), "--log-format", fmt, "--debug", "run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert "debug" not in r.stderr
    text = log.read_text()
    if fmt == "json":
        recs = [json.loads(line) for line in text.splitlines()]
        assert recs and all(rec["level"] == "debug" for rec in recs)
        msgs = " ".join(rec["msg"] for rec in recs)
    else:
        assert all("level=debug" in line for line in text.splitlines())
        msgs = text
    assert "nsexec container setup" in msgs and "child process in init()" in msgs


def test_debug_exec_says_about_to_exec(runtime, bundle, tmp_path):
    start_sleeper(runtime, bundle)
    r = runtime.run("--debug", "exec", bundle.id, "true")
    assert r.returncode == 0, r.stderr
    assert "setns_init: about to exec true" in r.stderr and "nsexec container setup" in r.stderr
    log = tmp_path / "log.out"
    r = runtime.run("--debug", "--log", str(log), "exec", bundle.id, "true")
    assert r.returncode == 0 and "level=debug" not in r.stderr
    assert "setns_init: about to exec" in log.read_text()
    runtime.run("delete", "--force", bundle.id, check=True)


# ---- help ----

def _pyrunc(*args):
    return subprocess.run([PYRUNC] + list(args), capture_output=True, text=True, timeout=30)


def test_help_layout_and_exit_codes():
    for flag in ("-h", "--help"):
        r = _pyrunc(flag)
        assert r.returncode == 0
        lines = r.stdout.splitlines()
        assert lines[0] == "NAME:" and "pyrunc - Open Container Initiative runtime" in lines[1]
    for verb in ("checkpoint", "create", "delete", "events", "exec", "kill", "list", "pause",
                 "ps", "restore", "resume", "run", "spec", "start", "state", "update"):
        r = _pyrunc(verb, "-h")
        assert r.returncode == 0, (verb, r.stderr)
        lines = r.stdout.splitlines()
        assert lines[0] == "NAME:" and lines[1].startswith("   pyrunc %s - " % verb), (verb, lines[:2])
        assert "USAGE:" in lines
    assert _pyrunc("list", "--help").stdout.splitlines()[1].startswith("   pyrunc list - ")
    r = _pyrunc("foo", "-h")
    assert r.returncode == 3 and "No help topic for 'foo'" in r.stderr
    assert _pyrunc("help", "exec").stdout.splitlines()[1].startswith("   pyrunc exec - ")
    assert _pyrunc("help", "foo").returncode == 3
    # a command's own argv is not ours: exec passes -h on to the command
    r = _pyrunc("exec", "no-such-ct", "ls", "-h")
    assert r.returncode == 255 and "NAME:" not in r.stdout


# ---- run --keep ----

def test_run_keep_leaves_a_stopped_container_with_its_cgroup(runtime, bundle):
    bundle.args("/bin/sh", "-c", "exit 3")
    r = runtime.run("run", "--keep", "-b", bundle.path, bundle.id)
    assert r.returncode == 3, r.stderr
    st = runtime.state(bundle.id)
    assert st["status"] == "stopped"
    assert os.path.isdir("/sys/fs/cgroup/pids/%s/%s" % (CGROUP_PARENT, bundle.id)) or \
        os.path.isdir("/sys/fs/cgroup/unified/%s/%s" % (CGROUP_PARENT, bundle.id))
    runtime.run("delete", bundle.id, check=True)
    assert runtime.run("state", bundle.id).returncode != 0


# ---- exec ----

def test_exec_ignore_paused_waits_for_resume(runtime, bundle):
    start_sleeper(runtime, bundle)
    runtime.run("pause", bundle.id, check=True)
    r = runtime.run("exec", bundle.id, "echo", "ok")
    assert r.returncode == 255 and "cannot exec in a paused container" in r.stderr
    t = threading.Timer(1.0, lambda: runtime.run("resume", bundle.id, check=True))
    t.start()
    try:
        t0 = time.monotonic()
        r = runtime.run("exec", "--ignore-paused", bundle.id, "echo", "ok", timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "ok\n"
        assert time.monotonic() - t0 >= 0.9  # it stayed frozen until the resume
    finally:
        t.join()
    runtime.run("delete", "--force", bundle.id, check=True)


def test_exec_pid_file_in_missing_directory_exits_255_and_kills_the_process(runtime, bundle, tmp_path):
    init = start_sleeper(runtime, bundle)
    r = runtime.run("exec", "--pid-file", str(tmp_path / "no" / "dir" / "p.pid"), bundle.id,
                    "sleep", "77")
    assert r.returncode == 255
    assert r.stderr.count("\n") == 1 and "pid file" in r.stderr and "no such file" in r.stderr
    # the process that could not be recorded is not left running in the container
    r = runtime.run("exec", bundle.id, "ps", "-o", "args")
    assert "sleep 77" not in r.stdout
    assert init["status"] == "running"
    runtime.run("delete", "--force", bundle.id, check=True)


# ---- terminal ----

def _recv_master(srv):
    conn, _ = srv.accept()
    fds = array.array("i")
    _, anc, _, _ = conn.recvmsg(64, socket.CMSG_SPACE(fds.itemsize))
    conn.close()
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data)
    return fds[0]


def _read_until_eof(master, timeout=10):
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the slave side is closed
                break
            if not chunk:
                break
            out += chunk
    return out


def test_exec_tty_console_size_and_owner(runtime, bundle, tmp_path):
    """process.consoleSize is on the pty before the process runs, and the pty belongs to
    the process's uid (group: devpts's gid=5), as with runc"""
    start_sleeper(runtime, bundle)
    proc = dict(bundle.config["process"], terminal=True, consoleSize={"height": 10, "width": 110},
                user={"uid": 1000, "gid": 100}, args=["/bin/sh", "-c", "stty size; stat -c %u:%g $(tty)"])
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps(proc))
    sock_path = str(tmp_path / "pty.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    try:
        r = runtime.run("exec", "-d", "--process", str(pf), "--console-socket", sock_path, bundle.id)
        assert r.returncode == 0, r.stderr
        master = _recv_master(srv)
    finally:
        srv.close()
    try:
        out = _read_until_eof(master).decode()
    finally:
        os.close(master)
    assert out.split() == ["10", "110", "1000:5"], out
    runtime.run("delete", "--force", bundle.id, check=True)


# ---- cgroups that exist before the container ----

def _freezer_dir(bundle):
    return "/sys/fs/cgroup/freezer/%s/%s" % (CGROUP_PARENT, bundle.id)


def test_create_refuses_a_frozen_cgroup_and_leaves_it_alone(runtime, bundle):
    d = _freezer_dir(bundle)
    if not os.path.isdir(os.path.dirname(os.path.dirname(d))):
        pytest.skip("no v1 freezer hierarchy mounted")
    os.makedirs(d)
    try:
        with open(os.path.join(d, "freezer.state"), "w") as f:
            f.write("FROZEN")
        bundle.args("/bin/true")
        for verb in ("run", "create"):
            r = runtime.run(verb, "-b", bundle.path, bundle.id, timeout=20)
            assert r.returncode == 1
            assert r.stderr.strip() == "container's cgroup unexpectedly frozen"
            assert not os.path.exists(os.path.join(runtime.root, bundle.id))
        assert os.path.isdir(d)  # not ours: not removed
    finally:
        with open(os.path.join(d, "freezer.state"), "w") as f:
            f.write("THAWED")
        os.rmdir(d)
    assert_no_leftovers(bundle)


def _bundle_in_the_same_cgroup(bundle, tmp_path, config):
    """a second bundle on the same rootfs whose config (same cgroupsPath) is `config`"""
    other = str(tmp_path / "other")
    os.makedirs(other)
    os.symlink(bundle.rootfs, os.path.join(other, "rootfs"))
    with open(os.path.join(other, "config.json"), "w") as f:
        json.dump(config, f)
    return other


def test_create_warns_about_a_non_empty_cgroup(runtime, bundle, tmp_path):
    start_sleeper(runtime, bundle)
    other = _bundle_in_the_same_cgroup(bundle, tmp_path, bundle.config)
    r = runtime.run("create", "-b", other, "ct2")
    assert r.returncode == 0, r.stderr
    assert "container's cgroup is not empty: 1 process(es) found" in r.stderr
    runtime.run("delete", "--force", "ct2", check=True)
    runtime.run("delete", "--force", bundle.id, check=True)


def test_delete_removes_a_pre_existing_empty_cgroup_as_runc_does(runtime, bundle):
    # runc's delete removes every path of its cgroup manager, also one the caller made
    # before create (update.bats "rt period and runtime" relies on it: the cgroup it
    # leaves otherwise keeps a real-time budget that makes the next run of the test fail)
    d = "/sys/fs/cgroup/cpu/%s/%s" % (CGROUP_PARENT, bundle.id)
    if not os.path.isdir(os.path.dirname(os.path.dirname(d))):
        pytest.skip("no v1 cpu hierarchy mounted")
    os.makedirs(d)
    try:
        start_sleeper(runtime, bundle)
        with open(os.path.join(d, "tasks")) as f:
            assert f.read().split()  # the container ran in the cgroup the test made
        runtime.run("kill", bundle.id, "KILL", check=True)
        wait_status(runtime, bundle.id, "stopped")
        runtime.run("delete", bundle.id, check=True)
        assert not os.path.exists(d)
    finally:
        if os.path.isdir(d):
            os.rmdir(d)
    assert_no_leftovers(bundle)


def test_delete_leaves_a_pre_existing_cgroup_that_still_has_processes(runtime, bundle, tmp_path):
    # the second container of a shared cgroup: its delete must neither kill the first
    # container's processes nor wait for them
    start_sleeper(runtime, bundle)
    cfg = dict(bundle.config)
    cfg["process"] = dict(cfg["process"], args=["/bin/true"])
    other = _bundle_in_the_same_cgroup(bundle, tmp_path, cfg)
    r = runtime.run("run", "-b", other, "ct2")
    assert r.returncode == 0, r.stderr
    st = json.loads(runtime.run("state", bundle.id, check=True).stdout)
    assert st["status"] == "running"
    runtime.run("delete", "--force", bundle.id, check=True)


# ---- pyrunc run bundle/ ----

def test_run_with_a_bundle_directory_argument(runtime, bundle, tmp_path):
    bundle.args("/bin/echo", "from-bundle")
    os.chdir(os.path.dirname(bundle.path))
    arg = os.path.basename(bundle.path) + "/"
    r = runtime.run("run", arg)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-bundle\n"
    assert os.listdir(runtime.root) == []  # deleted, as any foreground run
    # detached: the generated id is printed, and names the container
    bundle.args("/bin/sleep", "100")
    r = runtime.run("run", "-d", arg)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert cid.startswith("bundle-") and len(cid) == len("bundle-") + 8
    assert runtime.state(cid)["status"] == "running"
    runtime.run("delete", "--force", cid, check=True)
    # a path that holds no config.json is neither an id nor a bundle
    r = runtime.run("run", str(tmp_path) + "/")
    assert r.returncode == 1 and "no config.json there" in r.stderr
    assert r.stderr.count("\n") == 1


def test_unified_resource_for_a_v1_controller_is_an_invalid_configuration(runtime, bundle):
    """hybrid host: memory is bound to v1, so memory.min cannot be written to cgroup2;
    runc refuses unified on v1 with "invalid configuration", and so do we"""
    if not os.path.isdir("/sys/fs/cgroup/memory") or os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("needs a hybrid host with a v1 memory hierarchy")
    bundle.config["linux"]["resources"] = {"unified": {"memory.min": "131072"}}
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert r.stderr.startswith("invalid configuration: linux.resources.unified[memory.min]: cannot use "
                               "unified on cgroup v1"), r.stderr
    assert r.stderr.count("\n") == 1
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_update_memory_minus_one_is_unlimited(runtime, bundle):
    """runc's update.bats: after a swap limit, `update --memory -1` lifts both (the
    kernel refuses memory above memory+swap, so swap has to go first)"""
    mem = "/sys/fs/cgroup/memory/%s/%s" % (CGROUP_PARENT, bundle.id)
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("no v1 memory hierarchy mounted")
    start_sleeper(runtime, bundle)
    runtime.run("update", "--memory", "64M", bundle.id, check=True)
    have_swap = os.path.exists(mem + "/memory.memsw.limit_in_bytes")
    if have_swap:
        runtime.run("update", "--memory-swap", "96M", bundle.id, check=True)
    r = runtime.run("update", "--memory", "-1", bundle.id)
    assert r.returncode == 0, r.stderr
    with open("/sys/fs/cgroup/memory/memory.limit_in_bytes") as f:
        unlimited = f.read()
    with open(mem + "/memory.limit_in_bytes") as f:
        assert f.read() == unlimited
    if have_swap:
        with open(mem + "/memory.memsw.limit_in_bytes") as f:
            assert f.read() == unlimited
    runtime.run("delete", "--force", bundle.id, check=True)


def _cgroup_lines(text):
    """/proc/self/cgroup -> {controller list: path}"""
    return {line.split(":")[1]: line.split(":", 2)[2] for line in text.splitlines() if line}


def test_exec_cgroup_joins_sub_cgroups_of_the_container(runtime, bundle):
    """runc's exec.bats (v1): --cgroup PATH / CTRL[,CTRL]:PATH, refused above the
    container's cgroup, for unknown controllers and for missing directories"""
    if not os.path.isdir("/sys/fs/cgroup/memory") or not os.path.isdir("/sys/fs/cgroup/cpu"):
        pytest.skip("needs v1 memory and cpu hierarchies")
    rel = "/%s/%s" % (CGROUP_PARENT, bundle.id)
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", "--cgroup", "..", bundle.id, "true")
    assert r.returncode == 255 and "exec --cgroup ..: .. is not a sub cgroup path" in r.stderr
    for arg in ("nonexistent", "cpu:nonexistent"):
        r = runtime.run("exec", "--cgroup", arg, bundle.id, "true")
        assert r.returncode == 255
        assert "exec: adding pid to cgroups: open " in r.stderr and "/nonexistent/cgroup.procs: no such file" in r.stderr
    r = runtime.run("exec", "--cgroup", "whaaat:/", bundle.id, "true")
    assert r.returncode == 255 and "unknown controller whaaat" in r.stderr
    for args in ((), ("--cgroup", "/")):
        r = runtime.run("exec", *args, bundle.id, "cat", "/proc/self/cgroup")
        assert r.returncode == 0, r.stderr
        assert set(_cgroup_lines(r.stdout).values()) == {rel}, r.stdout
    for ctrl in ("memory", "cpu", "cpuacct"):
        d = "/sys/fs/cgroup/%s%s/sub" % (ctrl, rel)
        if not os.path.isdir(d):
            os.mkdir(d)
    r = runtime.run("exec", "--cgroup", "memory:sub", "--cgroup", "cpu,cpuacct:sub", bundle.id,
                    "cat", "/proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    got = _cgroup_lines(r.stdout)
    assert got["memory"] == rel + "/sub"
    assert [p for c, p in got.items() if "cpu" in c.split(",")] == [rel + "/sub"]
    assert got["pids"] == rel  # the others: the container's own
    runtime.run("delete", "--force", bundle.id, check=True)


def test_read_only_dev_mount(runtime, bundle):
    """runc's mounts.bats [ro /dev mount]: the nodes, /dev/pts and links are made in a
    writable /dev, which then becomes read-only"""
    for m in bundle.config["mounts"]:
        if m["destination"] == "/dev":
            m["options"] = m.get("options", []) + ["ro"]
    bundle.args("/bin/sh", "-c", "grep '^tmpfs /dev ' /proc/mounts; grep -c ' /dev/pts devpts ' /proc/mounts; "
                "test -c /dev/null && echo null; touch /dev/x 2>/dev/null || echo refused")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[3].split(",")[0] == "ro", lines
    assert lines[1:] == ["1", "null", "refused"]


def test_no_pivot_does_not_expose_the_hosts_bare_proc(runtime, bundle):
    """runc's no_pivot.bats: with --no-pivot the host's mounts stay in the namespace
    below the root; a whole procfs there would let a new user namespace mount an
    unmasked /proc.  The host keeps its own /proc and /sys."""
    os.symlink("busybox", bundle.rootfs + "/bin/unshare")
    caps = bundle.config["process"]["capabilities"]
    for k in ("bounding", "permitted", "effective"):
        caps[k] = caps.get(k, []) + ["CAP_SETFCAP", "CAP_SYS_ADMIN"]
    bundle.args("/bin/unshare", "-mrpf", "/bin/sh", "-c", "mount -t proc none /proc && echo mounted")
    before = _proc_sys_mounts()
    r = runtime.run("run", "--no-pivot", "-b", bundle.path, bundle.id)
    assert "mounted" not in r.stdout
    assert "permission denied" in r.stderr, r.stderr
    assert _proc_sys_mounts() == before
    # without the attack: --no-pivot still runs a container with its own /proc
    bundle.args("/bin/sh", "-c", "grep -c ' /proc proc ' /proc/mounts")
    r = runtime.run("run", "--no-pivot", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stdout == "1\n", (r.stdout, r.stderr)


def _proc_sys_mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f if line.split(" - ")[1].split()[0] in ("proc", "sysfs"))


def test_user_namespace_bind_sources_it_cannot_reach(runtime, bundle):
    """runc's userns.bats: bind sources below a 0700 directory of the host's root are
    opened before the container enters its user namespace (its root, host uid
    100000, could not search that directory); an exec finds them too"""
    from tests.conftest import in_userns

    with in_userns(bundle) as rootfs:
        top = os.path.dirname(rootfs)
        for n in ("1", "2"):
            os.makedirs(os.path.join(top, "hidden-" + n, "dir"))
            open(os.path.join(top, "hidden-" + n, "dir", "foo.txt"), "w").close()
            os.chmod(os.path.join(top, "hidden-" + n), 0o700)
        cfg = bundle.config
        for n in ("1", "2"):
            cfg["mounts"].append({"destination": "/tmp/mount-" + n, "type": "bind",
                                  "source": os.path.join(top, "hidden-" + n, "dir"), "options": ["bind"]})
        bundle.args("/bin/sh", "-c", "ls /tmp/mount-1/foo.txt /tmp/mount-2/foo.txt && sleep 100")
        r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
        assert r.returncode == 0, r.stderr
        r = runtime.run("exec", bundle.id, "ls", "/tmp/mount-1/foo.txt")
        assert r.returncode == 0 and r.stdout == "/tmp/mount-1/foo.txt\n", r.stderr
        runtime.run("delete", "--force", bundle.id, check=True)
