"""checkpoint / restore with criu, against pyrunc and (as a reference) Debian's runc.

criu needs a kernel it can work with: these tests are skipped where `criu check`
fails (this project's usual host: "vdso: Failed to fill self vdso symtable"); `make
test-criu` runs them in a VM on Debian's own kernel.  Each test is run with pyrunc and
with runc when runc is installed, with the same bundle and the same steps; the time
each checkpoint and restore took is appended to $CRIU_TIMINGS when set.
"""
import array
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from tests.conftest import PYRUNC, assert_no_leftovers, cgroup_dirs, mounts_under

# each count is written beside the file and renamed over it: `echo > file` truncates first,
# and a reader (the exec'd cat below) that comes between truncate and write sees nothing
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done"


def _criu_check():
    if not shutil.which("criu"):
        return "criu is not installed"
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "check.log")
        try:
            p = subprocess.run(["criu", "check", "-v4", "-o", log], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            return "criu check: %s" % err
        try:
            with open(log, errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
    if p.returncode:
        lines = [x for x in (text + p.stderr).splitlines() if "Error (" in x]
        return "`criu check` fails on this kernel: %s" % (
            lines[0].split("): ", 1)[-1] if lines else "exit %d" % p.returncode)
    return None


_WHY = _criu_check() if os.geteuid() == 0 else "needs root"
pytestmark = pytest.mark.skipif(_WHY is not None, reason=str(_WHY))

RUNTIMES = ["pyrunc"] + (["runc"] if shutil.which("runc") else [])


class RT:
    def __init__(self, name, root, cwd):
        self.name = name
        self.root = root
        self.cwd = cwd  # runc leaves criu logs in its working directory
        self.exe = PYRUNC if name == "pyrunc" else shutil.which("runc")

    def __call__(self, *args, check=True, timeout=120, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("cwd", self.cwd)
        if "stdout" in kw:
            kw.setdefault("stderr", subprocess.PIPE)
        else:
            kw.setdefault("capture_output", True)
        p = subprocess.run([self.exe, "--root", self.root] + list(args), timeout=timeout, text=True, **kw)
        if check and p.returncode:
            raise AssertionError("%s %s: exit %d: %s" % (self.name, " ".join(args), p.returncode, p.stderr))
        return p

    def timed(self, what, *args, **kw):
        t = time.monotonic()
        p = self(*args, **kw)
        dt = time.monotonic() - t
        out = os.environ.get("CRIU_TIMINGS")
        if out:
            with open(out, "a") as f:
                f.write("%s %s %.3f\n" % (self.name, what, dt))
        return p

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def ids(self):
        p = self("list", "-q", check=False)
        return p.stdout.split()


@pytest.fixture(params=RUNTIMES)
def rt(request, tmp_path):
    r = RT(request.param, str(tmp_path / ("state-" + request.param)), str(tmp_path))
    yield r
    for cid in r.ids():
        r("delete", "--force", cid, check=False)


def _count(bundle):
    try:
        with open(os.path.join(bundle.rootfs, "tmp", "count")) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _wait_count(bundle, above, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _count(bundle)
        if n > above:
            return n
        time.sleep(0.1)
    raise AssertionError("counter stuck at %d" % _count(bundle))


def _start_counter(rt, bundle):
    bundle.args("sh", "-c", COUNTER)
    rt("run", "-d", "--bundle", bundle.path, bundle.id, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _wait_count(bundle, 3)


def _stands_still(bundle):
    a = _count(bundle)
    time.sleep(1.0)
    return a == _count(bundle)


def _cleanup(rt, bundle):
    rt("delete", "--force", bundle.id, check=False)
    assert_no_leftovers(bundle)


def test_counter_checkpoint_restore_exec_delete(rt, bundle, tmp_path):
    img, work = str(tmp_path / "img"), str(tmp_path / "work")
    # an external bind mount, a cgroup limit and a createRuntime hook: all must be
    # there again after the restore
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from the host\n")
    hooklog = tmp_path / "hooks.jsonl"
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                                    "options": ["rbind", "rw"]})
    bundle.config["linux"].setdefault("resources", {})["pids"] = {"limit": 77}
    bundle.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat >> %s; echo >> %s" % (hooklog, hooklog)]}]}
    _start_counter(rt, bundle)
    rt.timed("checkpoint", "checkpoint", "--image-path", img, "--work-path", work, bundle.id)
    # the container is gone, and its counter stands still
    assert bundle.id not in rt.ids()
    assert cgroup_dirs(bundle.id) == []
    assert _stands_still(bundle)
    assert os.path.exists(os.path.join(img, "descriptors.json"))
    assert os.path.exists(os.path.join(work, "dump.log"))
    before = _count(bundle)
    rt.timed("restore", "restore", "-d", "--image-path", img, "--work-path", work, "--bundle", bundle.path,
             bundle.id, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    st = rt.state(bundle.id)
    assert st["status"] == "running" and st["pid"] > 0
    # it goes on from where it stood
    n = _wait_count(bundle, before + 3)
    assert n < before + 100
    # a normal container: in its cgroup, exec works, delete cleans up
    with open("/proc/%d/cgroup" % st["pid"]) as f:
        cg = f.read().strip()
    assert bundle.id in cg
    if cg.startswith("0::"):
        with open("/sys/fs/cgroup%s/pids.max" % cg[3:]) as f:
            assert f.read().strip() == "77"
    p = rt("exec", bundle.id, "cat", "/tmp/count")
    assert int(p.stdout) >= n
    assert rt("exec", bundle.id, "cat", "/data/hello").stdout == "from the host\n"
    # the hook ran at create and again at restore, with the restored init's pid
    docs = [json.loads(x) for x in hooklog.read_text().splitlines() if x.strip()]
    assert len(docs) == 2 and docs[1]["pid"] == st["pid"] and docs[1]["id"] == bundle.id
    rt("kill", bundle.id, "KILL")
    deadline = time.monotonic() + 10
    while rt.state(bundle.id)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    rt("delete", bundle.id)
    assert bundle.id not in rt.ids()
    assert_no_leftovers(bundle)
    assert mounts_under(rt.root) == []


def test_restore_foreground(rt, bundle, tmp_path):
    """without --detach restore waits for the container, exits with its status and
    deletes it, as run does"""
    img = str(tmp_path / "img")
    _start_counter(rt, bundle)
    rt("checkpoint", "--image-path", img, bundle.id)
    p = subprocess.Popen([rt.exe, "--root", rt.root, "restore", "--image-path", img, "--bundle", bundle.path,
                          bundle.id], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, cwd=rt.cwd)
    try:
        deadline = time.monotonic() + 60
        while bundle.id not in rt.ids() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
        _wait_count(bundle, _count(bundle) + 3)
        rt("kill", bundle.id, "KILL")
        assert p.wait(30) == 137, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert bundle.id not in rt.ids()
    assert_no_leftovers(bundle)


def test_leave_running(rt, bundle, tmp_path):
    img = str(tmp_path / "img")
    _start_counter(rt, bundle)
    rt.timed("checkpoint-leave-running", "checkpoint", "--leave-running", "--image-path", img, bundle.id)
    assert rt.state(bundle.id)["status"] == "running"
    n = _count(bundle)
    _wait_count(bundle, n + 3)
    # the image restores once the original is gone
    rt("delete", "--force", bundle.id)
    rt("restore", "-d", "--image-path", img, "--bundle", bundle.path, bundle.id,
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert rt.state(bundle.id)["status"] == "running"
    _wait_count(bundle, _count(bundle) + 2)
    _cleanup(rt, bundle)


def test_pre_dump_then_dump_with_parent(rt, bundle, tmp_path):
    pre, final = str(tmp_path / "pre"), str(tmp_path / "final")
    _start_counter(rt, bundle)
    rt.timed("pre-dump", "checkpoint", "--pre-dump", "--image-path", pre, bundle.id)
    assert rt.state(bundle.id)["status"] == "running"
    assert any(n.startswith("pages-") for n in os.listdir(pre))
    _wait_count(bundle, _count(bundle) + 2)
    rt.timed("dump-with-parent", "checkpoint", "--image-path", final, "--parent-path", "../pre", bundle.id)
    assert bundle.id not in rt.ids()
    assert os.path.islink(os.path.join(final, "parent"))
    before = _count(bundle)
    rt("restore", "-d", "--image-path", final, "--bundle", bundle.path, bundle.id,
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_count(bundle, before + 3)
    _cleanup(rt, bundle)


def test_parent_path_must_be_relative_and_exist(rt, bundle, tmp_path):
    _start_counter(rt, bundle)
    p = rt("checkpoint", "--image-path", str(tmp_path / "i"), "--parent-path", "/abs", bundle.id, check=False)
    assert p.returncode != 0 and "--parent-path must be relative" in p.stderr
    p = rt("checkpoint", "--image-path", str(tmp_path / "i"), "--parent-path", "../nope", bundle.id, check=False)
    assert p.returncode != 0 and "invalid --parent-path" in p.stderr
    assert rt.state(bundle.id)["status"] == "running"
    _cleanup(rt, bundle)


class ConsoleSocket:
    """a --console-socket listener that keeps every pty master it is sent"""

    def __init__(self, path):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.masters = []
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                _, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4 * 4))
                for level, typ, data in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                        a = array.array("i")
                        a.frombytes(data[:len(data) - len(data) % 4])
                        self.masters.extend(a)

    def wait_master(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        while len(self.masters) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.masters) >= n, "no pty master received"
        return self.masters[n - 1]

    def close(self):
        self.srv.close()
        for fd in self.masters:
            os.close(fd)


def _read_until(fd, want, timeout=20):
    import select

    buf = b""
    deadline = time.monotonic() + timeout
    while want not in buf and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf


def test_terminal_restore_detach_console_socket(rt, bundle, tmp_path):
    cs = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        bundle.config["process"]["terminal"] = True
        bundle.args("sh", "-c", "while read line; do echo got-$line; done")
        rt("run", "-d", "--console-socket", cs.path, "--bundle", bundle.path, bundle.id)
        m1 = cs.wait_master(1)
        os.write(m1, b"one\n")
        assert b"got-one" in _read_until(m1, b"got-one")
        img = str(tmp_path / "img")
        rt.timed("checkpoint-tty", "checkpoint", "--image-path", img, bundle.id)
        assert bundle.id not in rt.ids()
        rt.timed("restore-tty", "restore", "-d", "--console-socket", cs.path, "--image-path", img,
                 "--bundle", bundle.path, bundle.id)
        m2 = cs.wait_master(2)
        assert rt.state(bundle.id)["status"] == "running"
        os.write(m2, b"two\n")
        assert b"got-two" in _read_until(m2, b"got-two")
        _cleanup(rt, bundle)
    finally:
        cs.close()


def test_failed_checkpoint_leaves_container_running(rt, bundle, tmp_path):
    """the init's stdout is a unix socket to us: criu refuses it without --ext-unix-sk"""
    a, b = socket.socketpair()
    try:
        bundle.args("sh", "-c", COUNTER)
        rt("run", "-d", "--bundle", bundle.path, bundle.id, stdout=a.fileno(), stderr=subprocess.DEVNULL,
           capture_output=False)
        a.close()
        _wait_count(bundle, 3)
        work = str(tmp_path / "work")
        p = rt("checkpoint", "--image-path", str(tmp_path / "img"), "--work-path", work, bundle.id, check=False)
        assert p.returncode != 0
        if rt.name == "pyrunc":
            err = p.stderr.strip()
            assert len(err.splitlines()) == 1, err
            assert "criu" in err and os.path.join(work, "dump.log") in err, err
            assert rt.state(bundle.id)["status"] == "running"
            _wait_count(bundle, _count(bundle) + 3)
        # (runc destroys the container even when the dump fails: not checked for runc)
        _cleanup(rt, bundle)
    finally:
        b.close()


def test_failed_restore_leaves_nothing(rt, bundle, tmp_path):
    img = str(tmp_path / "img")
    _start_counter(rt, bundle)
    rt("checkpoint", "--image-path", img, bundle.id)
    # break the image: the init's registers and state are gone
    os.unlink(os.path.join(img, "core-1.img"))
    p = rt("restore", "-d", "--image-path", img, "--work-path", str(tmp_path / "w"), "--bundle", bundle.path,
           bundle.id, check=False, stdout=subprocess.DEVNULL)
    assert p.returncode != 0
    if rt.name == "pyrunc":
        err = p.stderr.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith("criu refused RESTORE: "), err
        assert "restore.log" in err
    assert bundle.id not in rt.ids()
    assert not os.path.exists(os.path.join(rt.root, bundle.id))
    assert mounts_under(rt.root) == []
    assert_no_leftovers(bundle)


@pytest.mark.parametrize("mode", ["full", "strict"])
def test_manage_cgroups_mode(rt, bundle, tmp_path, mode):
    """runc 1.1.5 ignores --manage-cgroups-mode on restore (fixed in runc 1.2, commit
    ff3b4f3b "restore: fix ignoring --manage-cgroups-mode"); pyrunc passes it on, as
    runc 1.2 does.  criu's strict mode then refuses the cgroup the runtime made for
    the restore ("Abort restore of existing cgroups"): one line, nothing left."""
    img = str(tmp_path / "img")
    bundle.config["linux"].setdefault("resources", {})["pids"] = {"limit": 55}
    _start_counter(rt, bundle)
    rt("checkpoint", "--manage-cgroups-mode", mode, "--image-path", img, bundle.id)
    before = _count(bundle)
    p = rt("restore", "-d", "--manage-cgroups-mode", mode, "--image-path", img, "--bundle", bundle.path,
           bundle.id, stdout=subprocess.DEVNULL, check=False)
    if mode == "strict" and rt.name == "pyrunc":
        err = p.stderr.strip()
        assert p.returncode == 1 and err.startswith("criu refused RESTORE: cg: Abort restore of existing cgroups"), err
        assert bundle.id not in rt.ids() and not os.path.exists(os.path.join(rt.root, bundle.id))
        assert_no_leftovers(bundle)
        return
    assert p.returncode == 0, p.stderr
    _wait_count(bundle, before + 3)
    pid = rt.state(bundle.id)["pid"]
    with open("/proc/%d/cgroup" % pid) as f:
        cg = f.read().strip()
    assert bundle.id in cg
    if cg.startswith("0::"):
        with open("/sys/fs/cgroup%s/pids.max" % cg[3:]) as f:
            assert f.read().strip() == "55"
    _cleanup(rt, bundle)


@pytest.mark.skipif(not shutil.which("ip") or not shutil.which("unshare"), reason="needs iproute2 and util-linux")
def test_namespaces_joined_by_path(rt, bundle, tmp_path):
    """a network namespace joined by path is external to criu (inherited back at
    restore), a uts namespace joined by path is joined again (join_ns)"""
    netns = "criu-" + bundle.id
    subprocess.run(["ip", "netns", "add", netns], check=True)
    holder = subprocess.Popen(["unshare", "--uts", "sh", "-c", "hostname joined-uts && exec sleep 1000"])
    try:
        uts = "/proc/%d/ns/uts" % holder.pid
        deadline = time.monotonic() + 10
        while os.stat(uts).st_ino == os.stat("/proc/self/ns/uts").st_ino and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        nss = [n for n in bundle.config["linux"]["namespaces"] if n["type"] not in ("network", "uts")]
        nss += [{"type": "network", "path": "/run/netns/" + netns}, {"type": "uts", "path": uts}]
        bundle.config["linux"]["namespaces"] = nss
        bundle.config.pop("hostname", None)
        _start_counter(rt, bundle)
        img = str(tmp_path / "img")
        rt("checkpoint", "--image-path", img, bundle.id)
        before = _count(bundle)
        rt("restore", "-d", "--image-path", img, "--bundle", bundle.path, bundle.id, stdout=subprocess.DEVNULL)
        _wait_count(bundle, before + 3)
        pid = rt.state(bundle.id)["pid"]
        assert os.stat("/proc/%d/ns/net" % pid).st_ino == os.stat("/run/netns/" + netns).st_ino
        assert os.stat("/proc/%d/ns/uts" % pid).st_ino == os.stat(uts).st_ino
        assert rt("exec", bundle.id, "hostname").stdout.strip() == "joined-uts"
        _cleanup(rt, bundle)
    finally:
        rt("delete", "--force", bundle.id, check=False)
        holder.kill()
        holder.wait()
        subprocess.run(["ip", "netns", "del", netns])


def test_restored_processes_do_not_keep_the_callers_session_keyring(box, tmp_path, keyjail):
    # pyrunc only: runc 1.1.5 leaves the restored processes in criu's session keyring,
    # its caller's (tests/security/test_session_keyring.py has the attack for create)
    bundle = box
    rt = RT("pyrunc", str(tmp_path / "state"), str(tmp_path))
    # KEYCTL_READ (11) of the canary named in /canary, once it is there: its payload's
    # length if the shell possesses it, -13 (EACCES) if not
    bundle.args("sh", "-c", "while true; do sysprobe keyctl:11:$(cat /canary 2>/dev/null || echo 0):0:0"
                " > /tmp/key.new; mv /tmp/key.new /tmp/key; sleep 0.1; done")
    out = os.path.join(bundle.rootfs, "tmp", "key")
    img = str(tmp_path / "img")
    rt("run", "-d", "--bundle", bundle.path, bundle.id, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(out) and time.monotonic() < deadline:
            time.sleep(0.1)
        rt("checkpoint", "--image-path", img, bundle.id)
        # the caller: a shell in keyjail's keyring that runs the restore, then stays, so
        # the canary lives on (restore itself leaves that keyring for the container's:
        # were it the last holder, the key would be gone, ENOKEY, and prove nothing)
        caller = subprocess.Popen(
            [keyjail, os.path.join(bundle.rootfs, "canary"), "pyrunc-canary", "canary-payload",
             "/bin/sh", "-c", '"$@" && echo restored && exec sleep 120', "sh",
             PYRUNC, "--root", rt.root, "restore", "-d", "--image-path", img, "--bundle", bundle.path, bundle.id],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
        try:
            assert caller.stdout.readline() == "restored\n", caller.stderr.read()
            seen = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with open(out) as f:
                    seen = f.read().strip()
                if seen in ("-13", str(len("canary-payload"))):
                    break
                time.sleep(0.1)
            assert seen == "-13", "the restored container read its caller's key: %r" % seen
        finally:
            caller.kill()
            caller.wait()
    finally:
        rt("delete", "--force", bundle.id, check=False)
    assert_no_leftovers(bundle)
