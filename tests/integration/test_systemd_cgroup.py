"""--systemd-cgroup against a real systemd: the container's cgroup is a transient scope.

This host runs no systemd, so the module boots one: /lib/systemd/systemd as PID 1 of
new pid, mount and cgroup namespaces (in a cgroup of its own in every hierarchy), over
the host's / made read-only in that mount namespace, with tmpfs /run and a fresh
/sys/fs/cgroup (cgroup mounts made inside a cgroup namespace show its root), booting an
empty target.  pyrunc then runs inside those namespaces (nsenter) and talks to it over
/run/systemd/private.  The tests skip, with the reason, when that systemd cannot be
started; bundles live in /var/tmp (visible, read-only, there)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from tests.conftest import PYRUNC, make_rootfs, requires_root

pytestmark = requires_root

SYSTEMD = "/lib/systemd/systemd"
HOST_CG = "pyrunc-test-systemd"

_HEAD = """set -e
mount --make-rprivate /
mount -o remount,bind,ro /
mount -t proc proc /proc
mount -t tmpfs tmpfs /run
"""
_TAIL = """mkdir -p /run/systemd/system
printf '[Unit]\\nDescription=pyrunc test target\\n' > /run/systemd/system/pyrunc-test.target
export container=pyrunc-test
exec %s --system --unit=pyrunc-test.target --log-target=console
""" % SYSTEMD


def _hierarchies():
    """[(fstype, name under /sys/fs/cgroup, mount options)] of this host's cgroup mounts"""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _, superopts = post.split()
            mnt = pre.split()[4]
            if fstype == "cgroup2":
                out.append(("cgroup2", os.path.basename(mnt) if mnt != "/sys/fs/cgroup" else "", ""))
            elif fstype == "cgroup":
                opts = [o for o in superopts.split(",") if o not in ("rw", "ro") and not o.startswith("release_agent")]
                if any(o.startswith("name=") for o in opts):
                    opts = ["none"] + opts
                out.append(("cgroup", os.path.basename(mnt), ",".join(opts)))
    return out


class Systemd:
    def __init__(self, tmp):
        self.pid = 0
        self.proc = None
        self.log = os.path.join(tmp, "systemd.log")

    def start(self):
        """None, or why systemd could not be started"""
        if not os.access(SYSTEMD, os.X_OK):
            return "no %s" % SYSTEMD
        hs = _hierarchies()
        if not hs:
            return "no cgroup filesystem is mounted"
        # cgroup mounts made inside the cgroup namespace show its root
        if any(t == "cgroup2" and n == "" for t, n, _ in hs):
            mounts = "mount -t cgroup2 cgroup2 /sys/fs/cgroup\n"
        else:
            mounts = "mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup\n"
            for t, n, o in hs:
                mounts += "mkdir -p /sys/fs/cgroup/%s\n" % n
                mounts += ("mount -t cgroup2 cgroup2 /sys/fs/cgroup/%s\n" % n if t == "cgroup2"
                           else "mount -t cgroup -o %s cgroup /sys/fs/cgroup/%s\n" % (o, n))
        script = _HEAD + mounts + _TAIL
        # its own cgroup in every hierarchy: the cgroup namespace is rooted there
        pre = "for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do [ -e ${h}cgroup.procs ] || continue; " \
              "mkdir -p ${h}%s 2>/dev/null && echo $$ > ${h}%s/cgroup.procs 2>/dev/null; done; " % (HOST_CG, HOST_CG)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["sh", "-c", pre + 'exec unshare -m -p -C -f sh -c "$0"', script],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return "systemd exited (%d): %s" % (self.proc.returncode, self._log_tail())
            child = self._child()
            if child and self.sh("test -S /run/systemd/private && systemctl is-system-running",
                                 check=False, pid=child).stdout.strip() in ("running", "degraded"):
                self.pid = child
                return None
            time.sleep(0.2)
        return "systemd did not come up within 20 s: %s" % self._log_tail()

    def _child(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            return 0
        return int(kids[0]) if kids else 0

    def _log_tail(self):
        try:
            with open(self.log, "rb") as f:
                return "".join(f.read().decode(errors="replace").strip().splitlines()[-1:]) or "(no output)"
        except OSError:
            return "(no log)"

    def sh(self, cmd, check=True, pid=0, timeout=60):
        # regular files, not pipes: a detached container's init inherits them
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(["nsenter", "-t", str(pid or self.pid), "-m", "-p", "-C", "sh", "-c", cmd],
                               stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=timeout)
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(cmd, p.returncode, out.read().decode(), err.read().decode())
        if check and r.returncode:
            raise AssertionError("%s: %d: %s" % (cmd, r.returncode, r.stderr))
        return r

    def stop(self):
        # systemd makes itself a session leader: kill it by pid (the namespace dies
        # with its pid 1), then unshare
        child = self.pid or (self._child() if self.proc is not None else 0)
        if child:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        # the namespace's pid 1 is gone, so is everything in it: remove its cgroups
        for h in ["/sys/fs/cgroup/"] + ["/sys/fs/cgroup/%s/" % n for n in sorted(os.listdir("/sys/fs/cgroup"))]:
            d = h + HOST_CG
            for _ in range(50):
                if not os.path.isdir(d):
                    break
                for sub, _dirs, _ in sorted(os.walk(d), key=lambda w: -w[0].count("/")):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
                if os.path.isdir(d):
                    time.sleep(0.1)


@pytest.fixture(scope="module")
def systemd(tmp_path_factory):
    sd = Systemd(str(tmp_path_factory.mktemp("systemd")))
    why = sd.start()
    if why:
        sd.stop()
        pytest.skip("cannot start a systemd to test with: %s" % why)
    yield sd
    sd.stop()


@pytest.fixture
def sdbundle(systemd):
    """a bundle in /var/tmp (read-only inside systemd's mount namespace: a read-only root)"""
    cid = "sd-" + uuid.uuid4().hex[:8]
    path = "/var/tmp/pyrunc-" + cid
    os.makedirs(path)
    make_rootfs(os.path.join(path, "rootfs"))
    subprocess.run([PYRUNC, "spec", "--bundle", path], check=True)
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "1000"]
    cfg["root"]["readonly"] = True
    cfg["linux"]["cgroupsPath"] = "pyrunctest.slice:pyrunc:" + cid
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    yield path, cid
    systemd.sh("%s --root /run/pyrunc delete -f %s" % (PYRUNC, cid), check=False)
    shutil.rmtree(path, ignore_errors=True)


def _pr(systemd, args, check=True):
    return systemd.sh("%s --root /run/pyrunc %s" % (PYRUNC, args), check=check)


def _cgroup_of(systemd, pid):
    """the process's cgroup as systemd sees it: its name=systemd line, else 0::"""
    text = systemd.sh("cat /proc/%d/cgroup" % pid).stdout
    lines = dict(line.split(":", 2)[1:] for line in text.splitlines())
    return lines.get("name=systemd", lines.get("")), lines


def test_container_runs_in_a_transient_scope(systemd, sdbundle):
    path, cid = sdbundle
    unit = "pyrunc-%s.scope" % cid
    _pr(systemd, "--systemd-cgroup run -d -b %s %s" % (path, cid))
    pid = json.loads(_pr(systemd, "state " + cid).stdout)["pid"]
    assert systemd.sh("systemctl is-active " + unit, check=False).stdout.strip() == "active"
    show = systemd.sh("systemctl show -p Slice -p Delegate -p MemoryMax -p TasksMax " + unit).stdout.split()
    assert sorted(show) == sorted(["Slice=pyrunctest.slice", "Delegate=yes", "MemoryMax=%d" % (64 << 20),
                                   "TasksMax=50"])
    where, lines = _cgroup_of(systemd, pid)
    assert where == "/pyrunctest.slice/" + unit
    # every controller hierarchy: the scope's directory (devices too, which systemd
    # does not manage for a scope without DeviceAllow= and moves up to the slice)
    for ctrls, p in lines.items():
        assert p == "/pyrunctest.slice/" + unit, (ctrls, lines)
    mem = "/sys/fs/cgroup/memory/pyrunctest.slice/%s/memory.limit_in_bytes" % unit
    if systemd.sh("test -e " + mem, check=False).returncode:
        mem = "/sys/fs/cgroup/pyrunctest.slice/%s/memory.max" % unit
    assert systemd.sh("cat " + mem).stdout.strip() == str(64 << 20)
    # the container's device rules, not systemd's strict empty policy (v1 devices)
    devs = "/sys/fs/cgroup/devices/pyrunctest.slice/%s/devices.list" % unit
    if systemd.sh("test -e " + devs, check=False).returncode == 0:
        assert "c 1:3 rwm" in systemd.sh("cat " + devs).stdout.split("\n")
    assert _pr(systemd, "exec %s sh -c 'echo x > /dev/null && echo ok'" % cid).stdout.strip() == "ok"
    # exec joins the same scope (and does not try to start it again)
    r = _pr(systemd, "exec %s cat /proc/self/cgroup" % cid)
    assert "/pyrunctest.slice/" + unit in r.stdout
    _pr(systemd, "delete -f " + cid)
    assert systemd.sh("systemctl is-active " + unit, check=False).stdout.strip() in ("inactive", "unknown")
    left = systemd.sh("ls -d /sys/fs/cgroup/*/pyrunctest.slice/%s /sys/fs/cgroup/pyrunctest.slice/%s"
                      % (unit, unit), check=False).stdout
    assert left == ""


def test_delete_right_after_the_init_died(systemd, sdbundle):
    """the scope is collected by systemd as its last process dies; delete then finds
    an inactive or unknown unit, and must neither hang nor fail"""
    path, cid = sdbundle
    for _ in range(3):
        _pr(systemd, "--systemd-cgroup run -d -b %s %s" % (path, cid))
        _pr(systemd, "kill %s KILL" % cid)
        time.sleep(0.3)
        t = time.monotonic()
        _pr(systemd, "delete " + cid)
        assert time.monotonic() - t < 5
        assert _pr(systemd, "state " + cid, check=False).returncode != 0


def test_unit_name_clash_fails_and_leaves_the_other_scope_alone(systemd, sdbundle):
    path, cid = sdbundle
    unit = "pyrunc-%s.scope" % cid
    other = subprocess.Popen(["nsenter", "-t", str(systemd.pid), "-m", "-p", "-C", "systemd-run", "--scope",
                              "--unit=" + unit, "--slice=pyrunctest.slice", "sleep", "1000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if systemd.sh("systemctl is-active " + unit, check=False).stdout.strip() == "active":
                break
            time.sleep(0.05)
        r = _pr(systemd, "--systemd-cgroup run -d -b %s %s" % (path, cid), check=False)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "already exists" in lines[0] and "Traceback" not in r.stderr, r.stderr
        assert systemd.sh("systemctl is-active " + unit, check=False).stdout.strip() == "active"
    finally:
        systemd.sh("systemctl stop " + unit, check=False)
        other.wait(timeout=10)
