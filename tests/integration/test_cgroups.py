"""The cgroup library on the real kernel of this machine (hybrid here, pure cgroup2 in
`make test-cgroup2`), without containers: real cgroups, real child processes, and
limits the kernel enforces."""
import os
import signal
import subprocess
import time
import uuid

import pytest

from pyrunc.cgroups import CgroupError, create_manager, fs, load_manager, stats
from tests.conftest import requires_root

pytestmark = requires_root
PARENT = "pyrunc-test"


def _mounted():
    try:
        return fs.mounts()
    except OSError:
        return []


requires_cgroups = pytest.mark.skipif(not _mounted(), reason="no cgroup filesystem mounted")


@pytest.fixture
def mgr():
    made = []

    def make(resources=None, path=None):
        cid = "lib-" + uuid.uuid4().hex[:10]
        m = create_manager(path or "/%s/%s" % (PARENT, cid), cid)
        m.create()
        made.append(m)
        if resources is not None:
            m.set(resources)
        return m

    yield make
    for m in made:
        m.destroy()
        for h in m.hs:
            assert not os.path.exists(h.path), "left behind: " + h.path


# a process holding ~4 MB of its own memory (charged to the cgroup it runs in)
HOLD = ("sh", "-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ready; sleep 100")


class Child:
    """a process that waits on its stdin until it is in the cgroup, then execs argv"""

    def __init__(self, m, *argv):
        self.m = m
        self.p = subprocess.Popen(["sh", "-c", 'read _ && exec "$@"', "sh"] + list(argv),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        m.apply(self.p.pid)
        self.p.stdin.write(b"go\n")
        self.p.stdin.close()
        self.p.stdin = None

    def ready(self):
        assert self.p.stdout.readline() == b"ready\n"
        return self

    def wait(self, timeout=30):
        out, err = self.p.communicate(timeout=timeout)
        return self.p.returncode, out.decode(), err.decode()

    def kill(self):
        # its children too: one of them may hold our pipes open
        self.m.kill_all(signal.SIGKILL)
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate(timeout=30)


def where(m, v1_ctrl):
    """the Dir holding controller v1_ctrl's files (v1 hierarchy, else cgroup2)"""
    d, version = m._locate(v1_ctrl, "test")
    return d, version


def cat(d, name):
    return d.read(name).strip()


@requires_cgroups
def test_create_apply_destroy(mgr):
    m = mgr()
    c = Child(m, "sleep", "100")
    try:
        with open("/proc/%d/cgroup" % c.p.pid) as f:
            lines = f.read().split("\n")
        for h in m.hs:
            want = "/" + h.rel if h.mroot == "/" else h.mroot + "/" + h.rel
            assert any(line.endswith(":" + want) for line in lines), (h.mnt, lines)
        assert sorted(m.pids()) == [c.p.pid]
    finally:
        c.kill()


@requires_cgroups
def test_destroy_kills_what_is_left_and_removes_everything(mgr):
    m = mgr()
    c = Child(m, "sleep", "100")
    m.destroy()
    assert c.p.wait(timeout=10) == -signal.SIGKILL
    for h in m.hs:
        assert not os.path.exists(h.path)
    c.kill()


@requires_cgroups
def test_destroy_removes_sub_cgroups_the_container_made(mgr):
    m = mgr()
    for h in m.hs:
        os.mkdir(h.path + "/inner")
    m.destroy()
    for h in m.hs:
        assert not os.path.exists(h.path)


@requires_cgroups
def test_failed_set_then_destroy_leaves_nothing(mgr):
    m = mgr()
    with pytest.raises(CgroupError) as e:
        m.set({"cpu": {"cpus": "4096"}})
    msg = str(e.value)
    assert msg.startswith("linux.resources.cpu.cpus: write 4096 to /sys/fs/cgroup/")
    assert msg.endswith("cpuset.cpus: invalid argument") or msg.endswith("cpuset.cpus: numerical result out of range")
    assert "\n" not in msg


@requires_cgroups
def test_memory_limit_is_enforced_oom_kill(mgr):
    m = mgr({"memory": {"limit": 32 << 20}})
    d, v = where(m, "memory")
    assert cat(d, "memory.limit_in_bytes" if v == 1 else "memory.max") == str(32 << 20)
    before = m.oom_kills()
    # dd's buffer is bs bytes, all touched: far above the limit
    c = Child(m, "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
    rc, _, _ = c.wait()
    assert rc == -signal.SIGKILL
    assert m.oom_kills() == before + 1
    c2 = Child(m, "dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1")
    assert c2.wait()[0] == 0


@requires_cgroups
def test_pids_limit_stops_a_fork_bomb(mgr):
    m = mgr({"pids": {"limit": 10}})
    d, v = where(m, "pids")
    assert cat(d, "pids.max") == "10"
    c = Child(m, "sh", "-c", "for i in $(seq 30); do sleep 30 & done; wait")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and int(cat(d, "pids.current")) < 10:
            time.sleep(0.05)
        time.sleep(0.3)
        # the shell and its sleeps: never more than the limit, whatever it tried
        assert int(cat(d, "pids.current")) == 10
        assert 9 <= len(m.pids()) <= 10
    finally:
        m.kill_all(signal.SIGKILL)
        rc, _, err = c.wait()
    assert "fork" in err.lower() or "resource temporarily unavailable" in err.lower(), err
    deadline = time.monotonic() + 5
    while m.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m.pids() == []


@requires_cgroups
def test_cpu_quota_throttles(mgr):
    m = mgr({"cpu": {"quota": 10000, "period": 100000, "shares": 512}})
    c = Child(m, "sh", "-c", "while :; do :; done")
    try:
        time.sleep(1.0)
        s = stats.runc_json(m.stats())
    finally:
        c.kill()
    t = s["cpu"]["throttling"]
    assert t["periods"] >= 5 and t["throttledPeriods"] >= 3
    # 10% of one cpu for about a second: well under 0.5 s of cpu time
    assert 0 < s["cpu"]["usage"]["total"] < 500_000_000


@requires_cgroups
def test_update_changes_live_values(mgr):
    m = mgr({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}, "cpu": {"quota": 20000, "period": 100000}})
    c = Child(m, *HOLD).ready()
    try:
        m.update({"memory": {"limit": 128 << 20}, "pids": {"limit": 30}, "cpu": {"quota": 0, "period": 0}})
        d, v = where(m, "memory")
        assert cat(d, "memory.limit_in_bytes" if v == 1 else "memory.max") == str(128 << 20)
        assert cat(where(m, "pids")[0], "pids.max") == "30"
        d, v = where(m, "cpu")
        if v == 1:
            assert cat(d, "cpu.cfs_quota_us") == "20000"
        else:
            assert cat(d, "cpu.max") == "20000 100000"
        # a limit below what is in use is refused with checkBeforeUpdate
        with pytest.raises(CgroupError, match="rejecting memory limit 4096"):
            m.update({"memory": {"limit": 4096, "checkBeforeUpdate": True}})
        m2 = load_manager(m.to_state())
        assert m2.resources["memory"]["limit"] == 128 << 20
    finally:
        c.kill()


@requires_cgroups
def test_freeze_and_thaw(mgr):
    m = mgr()
    c = Child(m, "sh", "-c", "while :; do :; done")
    try:
        m.freeze()
        assert m.paused()
        time.sleep(0.1)
        with open("/proc/%d/stat" % c.p.pid) as f:
            before = int(f.read().rsplit(")", 1)[1].split()[11])  # utime
        time.sleep(0.3)
        with open("/proc/%d/stat" % c.p.pid) as f:
            after = int(f.read().rsplit(")", 1)[1].split()[11])
        assert after == before, "a frozen process got cpu time"
        m.thaw()
        assert not m.paused()
        time.sleep(0.3)
        with open("/proc/%d/stat" % c.p.pid) as f:
            assert int(f.read().rsplit(")", 1)[1].split()[11]) > after
    finally:
        c.kill()


@requires_cgroups
def test_kill_all_reaches_every_process(mgr):
    m = mgr()
    c = Child(m, "sh", "-c", "sleep 100 & sleep 100 & wait")
    deadline = time.monotonic() + 5
    while len(m.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(m.pids()) == 3
    m.kill_all(signal.SIGKILL)
    c.kill()
    deadline = time.monotonic() + 5
    while m.pids() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert m.pids() == []


@requires_cgroups
def test_stats_report_memory_and_pids(mgr):
    m = mgr({"memory": {"limit": 64 << 20}, "pids": {"limit": 33}})
    c = Child(m, *HOLD).ready()
    try:
        # "ready" is printed just before sh forks its sleep: wait for the second task
        deadline = time.monotonic() + 5
        while len(m.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        s = stats.runc_json(m.stats())
    finally:
        c.kill()
    assert s["pids"] == {"current": 2, "limit": 33}  # sh and its sleep
    assert s["memory"]["usage"]["limit"] == 64 << 20
    assert s["memory"]["usage"]["usage"] >= 4000000
    assert s["memory"]["raw"]


@requires_cgroups
def test_oom_watch_fires(mgr):
    m = mgr({"memory": {"limit": 16 << 20}})
    w = stats.OOMWatch(m)
    try:
        assert w.version in (1, 2)
        c = Child(m, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
        c.wait()
        import select

        p = select.poll()
        p.register(w.fd, w.events)
        assert p.poll(5000), "no OOM notification"
        assert w.read() >= 1
    finally:
        w.close()


@requires_cgroups
def test_v2_device_filter_on_cgroup2(mgr):
    """the eBPF device program on the host's cgroup2 directory (hybrid: the unified
    hierarchy; pure cgroup2: the container's own)"""
    from pyrunc.cgroups.v2 import devices as v2dev

    m = mgr()
    if m.v2 is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    d = m.v2.open_dir("")
    v2dev.set(d, [{"allow": False, "access": "rwm"}], m, False)
    assert v2dev.attached(d) == 1
    c = Child(m, "sh", "-c", "head -c1 /dev/zero | wc -c; head -c1 /dev/kmsg 2>&1 >/dev/null; "
                             "echo x > /dev/null && echo null-ok")
    rc, out, err = c.wait()
    assert out.split("\n")[0] == "1"
    assert "Operation not permitted" in out and "null-ok" in out
    # a second set replaces the program, it does not stack another one
    v2dev.set(d, [{"allow": True, "access": "rwm"}], m, True)
    assert v2dev.attached(d) == 1
    c = Child(m, "sh", "-c", "head -c0 /dev/kmsg && echo kmsg-ok")
    assert "kmsg-ok" in c.wait()[1]


@requires_cgroups
def test_v1_devices_update_is_a_minimal_transition(mgr):
    m = mgr({"devices": [{"allow": False, "access": "rwm"}]})
    h = None if m.unified else m.by_ctrl.get("devices")
    if h is None:
        pytest.skip("no v1 devices hierarchy (pure cgroup2 host)")
    from pyrunc.cgroups.v1 import devices as v1dev

    d = h.open_dir("")
    listed = d.read("devices.list")
    assert "c 1:3 rwm" in listed and "a *:* rwm" not in listed
    v1dev.set(d, [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                       "access": "rwm"}], m, True)
    assert "c 10:229 rwm" in d.read("devices.list")


@requires_cgroups
def test_hugetlb(mgr):
    sizes = stats.huge_sizes()
    m = mgr()
    try:
        d, v = where(m, "hugetlb")
    except CgroupError as err:
        pytest.skip("no hugetlb controller: %s" % err)
    if not sizes:
        pytest.skip("the kernel has no huge page sizes")
    size = sizes[-1]
    page = int(size[:-2]) << {"KB": 10, "MB": 20, "GB": 30}[size[-2:]]
    m.set({"hugepageLimits": [{"pageSize": size, "limit": 3 * page}]})
    name = "hugetlb.%s.%s" % (size, "limit_in_bytes" if v == 1 else "max")
    assert cat(d, name) == str(3 * page)


@requires_cgroups
def test_clone_into_cgroup_skips_the_cgroup2_write(mgr):
    """v2_dirfd(): the fd clone3(CLONE_INTO_CGROUP) needs; apply() then leaves the
    cgroup2 membership alone when the child is already there"""
    m = mgr()
    if m.v2 is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    fd = m.v2_dirfd()
    st = os.fstat(fd)
    assert (st.st_mode & 0o170000) == 0o040000
    c = Child(m, "sleep", "100")
    try:
        assert m._in_v2(c.p.pid)
        assert not m._in_v2(os.getpid())
    finally:
        c.kill()
