"""pyrunc for an ordinary user (tests/rootless/conftest.py makes one): `spec
--rootless`, every verb, newuidmap, runc's cgroup rules, and nothing a user's config
can reach that the user could not reach without pyrunc."""
import json
import os
import shutil
import signal
import stat
import subprocess
import time
import uuid

import pytest

from tests.conftest import BUSYBOX, PYRUNC, make_rootfs
from tests.rootless.conftest import SUBID_BASE, SUBID_SIZE, pytestmark, state_left  # noqa: F401


@pytest.fixture
def ubundle(user, tmp_path_factory):
    """a bundle the user owns, with `spec --rootless` written by the user"""
    base = "/tmp/pyrunc-rootless-%s" % uuid.uuid4().hex[:8]
    os.makedirs(base)
    path = os.path.join(base, "bundle")
    make_rootfs(os.path.join(path, "rootfs"))
    subprocess.run(["chown", "-R", "%d:%d" % (user.uid, user.gid), base], check=True)
    os.chmod(base, 0o755)
    r = user.pyrunc("spec", "--rootless", "--bundle", path)
    assert r.returncode == 0, r.stderr
    yield path
    # whatever a test left: the user's containers are force-deleted as the user
    for cid in state_left(user):
        user.pyrunc("delete", "--force", cid)
    assert state_left(user) == [], "state left behind"
    shutil.rmtree(base, ignore_errors=True)


def edit(path, fn):
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    fn(cfg)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)


def args(*a):
    def fn(cfg):
        cfg["process"]["args"] = list(a)
    return fn


def one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    return lines[0]


def test_spec_rootless_then_run(user, ubundle):
    edit(ubundle, args("id"))
    r = user.pyrunc("run", "r1", cwd=ubundle)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("uid=0(root) gid=0(root)"), r.stdout
    assert state_left(user) == []


def test_spec_rootless_matches_runc_shape(user, ubundle):
    with open(os.path.join(ubundle, "config.json")) as f:
        cfg = json.load(f)
    linux = cfg["linux"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "ipc", "uts", "mount", "user"}
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    assert "resources" not in linux
    sysfs = [m for m in cfg["mounts"] if m["destination"] == "/sys"]
    assert sysfs and sysfs[0]["type"] == "none" and "rbind" in sysfs[0]["options"]
    # runc keeps the read-only cgroup mount: it shows what the container could join
    assert [m["destination"] for m in cfg["mounts"]] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                                         "/sys", "/sys/fs/cgroup"]


def test_every_verb(user, ubundle):
    edit(ubundle, args("sleep", "60"))
    b = ["--bundle", ubundle]
    assert user.pyrunc("create", *b, "v1").returncode == 0
    st = json.loads(user.pyrunc("state", "v1").stdout)
    assert st["status"] == "created"
    r = user.pyrunc("start", "v1")
    assert r.returncode == 0, r.stderr
    assert json.loads(user.pyrunc("state", "v1").stdout)["status"] == "running"
    r = user.pyrunc("exec", "v1", "id", "-u")
    assert (r.returncode, r.stdout) == (0, "0\n"), r.stderr
    r = user.pyrunc("list", "--format", "json")
    items = json.loads(r.stdout)
    assert [(i["id"], i["status"], i["owner"]) for i in items] == [("v1", "running", user.name)]
    r = user.pyrunc("kill", "v1", "KILL")
    assert r.returncode == 0, r.stderr
    for _ in range(100):
        if json.loads(user.pyrunc("state", "v1").stdout)["status"] == "stopped":
            break
        time.sleep(0.02)
    assert user.pyrunc("delete", "v1").returncode == 0
    assert state_left(user) == []


def test_subordinate_ids_through_newuidmap(user, ubundle):
    if shutil.which("newuidmap") is None:
        pytest.fail("newuidmap missing: make deps installs Debian's uidmap")

    def fn(cfg):
        maps = [{"containerID": 0, "hostID": user.uid, "size": 1},
                {"containerID": 1, "hostID": SUBID_BASE, "size": SUBID_SIZE}]
        cfg["linux"]["uidMappings"] = maps
        cfg["linux"]["gidMappings"] = [dict(m, hostID=user.gid if m["containerID"] == 0 else m["hostID"])
                                       for m in maps]
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
        cfg["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map; id -u; id -g"]
    edit(ubundle, fn)
    r = user.pyrunc("run", "--bundle", ubundle, "m1")
    assert r.returncode == 0, r.stderr
    lines = [ln.split() for ln in r.stdout.splitlines()]
    assert lines[0] == ["0", str(user.uid), "1"]
    assert lines[1] == ["1", str(SUBID_BASE), str(SUBID_SIZE)]
    assert lines[2:] == [["1000"], ["1000"]]


def test_ids_beyond_subordinate_range_refused(user, ubundle):
    """a user cannot map host root (or anyone else's ids) into the container"""
    def fn(cfg):
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1},
                                       {"containerID": 1, "hostID": 0, "size": 1}]
    edit(ubundle, fn)
    r = user.pyrunc("run", "--bundle", ubundle, "m2")
    assert r.returncode != 0
    assert "newuidmap" in one_line(r.stderr)
    assert state_left(user) == []


def test_limits_without_cgroup_fail_like_runc(user, ubundle):
    def fn(cfg):
        cfg["linux"]["resources"] = {"pids": {"limit": 10}}
        cfg["process"]["args"] = ["true"]
    edit(ubundle, fn)
    r = user.pyrunc("run", "--bundle", ubundle, "l1")
    # on a host with a cgroup the user may write (a delegated cgroup2 subtree) this
    # runs; elsewhere runc's words
    if r.returncode:
        line = one_line(r.stderr)
        assert ("cannot set pids limit: container could not join or create cgroup" in line
                or "rootless needs no limits" in line), line
    assert state_left(user) == []


def test_cgroups_path_outside_delegation_refused(user, ubundle):
    def fn(cfg):
        cfg["linux"]["cgroupsPath"] = "/pyrunc-rootless-attack/x"
        cfg["process"]["args"] = ["true"]
    edit(ubundle, fn)
    r = user.pyrunc("run", "--bundle", ubundle, "c1")
    assert r.returncode != 0
    assert "permission denied" in one_line(r.stderr)
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"):
        assert not os.path.exists(os.path.join(base, "pyrunc-rootless-attack"))
    assert state_left(user) == []


def test_root_owned_canary_stays_out_of_reach(user, ubundle, tmp_path):
    """a bind mount of a root-only file gives the container's root nothing: the
    container's root is the user"""
    canary_dir = "/tmp/pyrunc-rootless-canary-%s" % uuid.uuid4().hex[:8]
    os.makedirs(canary_dir, mode=0o755)
    canary = os.path.join(canary_dir, "secret")
    with open(canary, "w") as f:
        f.write("canary\n")
    os.chmod(canary, 0o600)
    try:
        def fn(cfg):
            cfg["mounts"].append({"destination": "/secret", "type": "bind", "source": canary,
                                  "options": ["bind"]})
            cfg["process"]["args"] = ["sh", "-c", "cat /secret; echo pwned > /secret; chmod 666 /secret; "
                                      "chown 0:0 /secret; exit 0"]
        edit(ubundle, fn)
        os.mknod(os.path.join(ubundle, "rootfs", "secret"), 0o644 | stat.S_IFREG)
        r = user.pyrunc("run", "--bundle", ubundle, "s1")
        assert r.returncode == 0, r.stderr
        assert "canary" not in r.stdout
        with open(canary) as f:
            assert f.read() == "canary\n"
        assert stat.S_IMODE(os.stat(canary).st_mode) == 0o600
    finally:
        shutil.rmtree(canary_dir)


def test_cannot_join_another_users_namespaces(user, ubundle):
    """joining root's namespaces (here: a sleeping root process's pid and net
    namespaces, made by the test) is refused by the kernel, with one line"""
    victim = subprocess.Popen(["unshare", "--pid", "--net", "--fork", BUSYBOX, "sleep", "30"])
    try:
        for _ in range(100):
            with open("/proc/%d/task/%d/children" % (victim.pid, victim.pid)) as f:
                kids = f.read().split()
            if kids:
                break
            time.sleep(0.02)
        target = int(kids[0])

        def fn(cfg):
            cfg["linux"]["namespaces"].append({"type": "network", "path": "/proc/%d/ns/net" % target})
            cfg["process"]["args"] = ["true"]
        edit(ubundle, fn)
        r = user.pyrunc("run", "--bundle", ubundle, "j1")
        assert r.returncode != 0
        line = one_line(r.stderr)
        assert "operation not permitted" in line or "permission denied" in line, line
        assert state_left(user) == []
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


def test_cannot_signal_other_users_processes(user, ubundle):
    """kill goes to the container's init only: a state dir is the user's own, and a
    forged one naming root's process is refused by the kernel"""
    victim = subprocess.Popen([BUSYBOX, "sleep", "30"])
    try:
        root = os.path.join(user.xdg, "pyrunc")
        edit(ubundle, args("sleep", "30"))
        assert user.pyrunc("run", "-d", "--bundle", ubundle, "k1").returncode == 0
        path = os.path.join(root, "k1", "state.json")
        with open(path) as f:
            st = json.load(f)
        real = st["pid"]
        # the user rewrites its own state file to point at root's process
        st["pid"] = victim.pid
        with open(path, "w") as f:
            f.write(json.dumps(st))
        os.chown(path, user.uid, user.gid)
        r = user.pyrunc("kill", "k1", "KILL")
        assert r.returncode != 0
        print(one_line(r.stderr))
        time.sleep(0.1)
        assert victim.poll() is None, "root's process was killed through a forged state file"
        st["pid"] = real
        with open(path, "w") as f:
            f.write(json.dumps(st))
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


def test_default_root_needs_xdg_or_root_dir(user, ubundle):
    env = user.env(XDG_RUNTIME_DIR=None)
    edit(ubundle, args("true"))
    r = user.run([PYRUNC, "run", "--bundle", ubundle, "x1"], env=env)
    if os.access("/run/pyrunc", os.W_OK) and os.stat("/run/pyrunc").st_uid == user.uid:
        pytest.fail("unexpected: /run/pyrunc belongs to the test user")
    assert r.returncode != 0
    line = one_line(r.stderr)
    assert "XDG_RUNTIME_DIR" in line and "--root" in line, line


def _pure_cgroup2():
    with open("/proc/self/mountinfo") as f:
        types = [ln.split(" - ")[1].split()[0] for ln in f if "/sys/fs/cgroup" in ln.split()[4]]
    return types and all(t == "cgroup2" for t in types if t.startswith("cgroup"))


@pytest.fixture
def delegated(user):
    """a cgroup2 subtree delegated to the user, as systemd's Delegate=yes makes one:
    the directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads
    belong to the user; the user's commands start in its leaf `session`"""
    if not _pure_cgroup2():
        pytest.skip("cgroup2 delegation: this host's cgroups are v1/hybrid (the pure cgroup2 VM runs it: "
                    "make test-cgroup2)")
    d = "/sys/fs/cgroup/pyrunc-rootless-%s" % uuid.uuid4().hex[:6]
    os.mkdir(d)
    with open("/sys/fs/cgroup/cgroup.controllers") as f:
        ctrls = f.read().split()
    with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
        f.write(" ".join("+" + c for c in ctrls if c in ("pids", "memory", "cpu", "io")))
    for name in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
        os.chown(os.path.join(d, name), user.uid, user.gid)
    os.mkdir(os.path.join(d, "session"))
    os.chown(os.path.join(d, "session"), user.uid, user.gid)
    os.chown(os.path.join(d, "session", "cgroup.procs"), user.uid, user.gid)
    yield d
    for sub in sorted((os.path.join(r, x) for r, ds, _ in os.walk(d) for x in ds), key=len, reverse=True):
        os.rmdir(sub)
    os.rmdir(d)


def test_delegated_cgroup2_subtree_limits(user, ubundle, delegated):
    """with a delegated subtree (pure cgroup2) the rootless container gets its own
    cgroup beside the session, with its limits, and it is removed on delete"""
    def fn(cfg):
        cfg["linux"]["resources"] = {"pids": {"limit": 17}}
        cfg["process"]["args"] = ["cat", "/sys/fs/cgroup/pids.max"]
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                              "options": ["nosuid", "noexec", "nodev", "ro"]})
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
    edit(ubundle, fn)
    session = os.path.join(delegated, "session")
    r = user.pyrunc("run", "--bundle", ubundle, "g1", cgroup=session)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "17\n"
    assert not os.path.exists(os.path.join(delegated, "g1")), "cgroup left behind"


def test_delegated_cgroup2_outside_refused(user, ubundle, delegated):
    """a cgroupsPath outside the delegated subtree stays out of reach"""
    def fn(cfg):
        cfg["linux"]["cgroupsPath"] = "/pyrunc-rootless-outside"
        cfg["process"]["args"] = ["true"]
    edit(ubundle, fn)
    r = user.pyrunc("run", "--bundle", ubundle, "g2", cgroup=os.path.join(delegated, "session"))
    assert r.returncode != 0
    assert "permission denied" in one_line(r.stderr)
    assert not os.path.exists("/sys/fs/cgroup/pyrunc-rootless-outside")
