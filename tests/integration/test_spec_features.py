"""Parts of the runtime spec that runtime-tools checks and runc implements: a config
without a mount namespace, ioPriority, scheduler, the HOME default, tmpcopyup,
idmapped mounts, createContainer hooks in the container's namespaces."""
import os

import pytest

from tests.conftest import mounts_under, requires_root

pytestmark = requires_root


def run_out(runtime, bundle, script, expect_rc=0):
    bundle.args("/bin/sh", "-c", script)
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == expect_rc, (r.returncode, r.stdout, r.stderr)
    return r.stdout


def test_no_mount_namespace_shares_the_hosts(runtime, bundle):
    # no "mount" entry: the container inherits the runtime's mount namespace (runc
    # accepts this; runtime-tools' linux_ns_itype checks it), is chrooted into its
    # rootfs, gets its mounts and masks there, and delete takes them away again
    ns = bundle.config["linux"]["namespaces"]
    bundle.config["linux"]["namespaces"] = [n for n in ns if n["type"] != "mount"]
    out = run_out(runtime, bundle, "readlink /proc/self/ns/mnt; ls /bin/busybox; "
                  "wc -c < /proc/timer_list; grep -c ' / ' /proc/self/mountinfo")
    lines = out.split()
    assert lines[0] == os.readlink("/proc/self/ns/mnt")
    assert lines[1] == "/bin/busybox"
    assert lines[2] == "0"  # masked with /dev/null
    assert mounts_under(bundle.rootfs) == []

    # create/start/delete: the mounts live in our namespace until delete
    bundle.args("/bin/true")
    runtime.run("create", "-b", bundle.path, bundle.id, check=True)
    assert mounts_under(bundle.rootfs), "the rootfs mounts are in our mount namespace"
    runtime.run("delete", bundle.id, check=True)
    assert mounts_under(bundle.rootfs) == []


def test_no_mount_namespace_failed_create_leaves_no_mount(runtime, bundle):
    # the child fails after it mounted the rootfs bind and /proc in our namespace:
    # create must take them away (the bundle fixture checks that no mount is left)
    ns = bundle.config["linux"]["namespaces"]
    bundle.config["linux"]["namespaces"] = [n for n in ns if n["type"] != "mount"]
    bundle.config["mounts"].append({"destination": "/bad", "type": "nosuchfs", "source": "none"})
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1 and "nosuchfs" in r.stderr, r.stderr
    assert mounts_under(bundle.rootfs) == []


def test_io_priority(runtime, bundle):
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    # ioprio_get has no shell command in busybox: the kernel shows it nowhere else than
    # through the syscall, so read it from the host while the container runs
    bundle.args("/bin/sleep", "10")
    runtime.run("create", "-b", bundle.path, bundle.id, check=True)
    try:
        pid = runtime.state(bundle.id)["pid"]
        assert _ioprio_get(pid) == 3 << 13
    finally:
        runtime.run("delete", "--force", bundle.id)
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 9}
    bundle.save()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode != 0
    assert r.stderr.strip().endswith("config.json: process.ioPriority.priority: out of range"), r.stderr


def _ioprio_get(pid):
    import ctypes

    nr = {"x86_64": 252, "aarch64": 31}.get(os.uname().machine)
    if nr is None:
        pytest.skip("ioprio_get: syscall number unknown for " + os.uname().machine)
    libc = ctypes.CDLL(None, use_errno=True)
    v = libc.syscall(nr, 1, pid)  # SYS_ioprio_get, IOPRIO_WHO_PROCESS
    assert v >= 0, os.strerror(ctypes.get_errno())
    return v


def test_scheduler(runtime, bundle):
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7,
                                             "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    # the container's init (sh, pid 1) has them: /proc/<pid>/stat field 19 is the nice
    # value, 41 the policy (fields after "(comm)" start at 3)
    out = run_out(runtime, bundle, "cat /proc/1/stat")
    f = out.split(")")[-1].split()
    assert (int(f[41 - 3]), int(f[19 - 3])) == (3, 7)
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    bundle.args("/bin/cat", "/proc/self/stat")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    f = r.stdout.split(")")[-1].split()
    assert (int(f[41 - 3]), int(f[19 - 3])) == (3, 7)
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_OTHER", "priority": 5}
    bundle.save()
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode != 0
    assert "config.json: process.scheduler.priority: is only allowed for SCHED_FIFO and SCHED_RR" in r.stderr


def test_home_default(runtime, bundle):
    env = [e for e in bundle.config["process"]["env"] if not e.startswith("HOME=")]
    bundle.config["process"]["env"] = env
    assert run_out(runtime, bundle, "echo $HOME").strip() == "/root"
    bundle.config["process"]["user"] = {"uid": 4242, "gid": 4242}
    assert run_out(runtime, bundle, "echo $HOME").strip() == "/"  # no passwd entry
    with open(os.path.join(bundle.rootfs, "etc", "passwd"), "a") as f:
        f.write("x" * 10000 + ":x:4242:1::/over/long:/bin/sh\n"
                "app:x:4242:4242:app:/home/app:/bin/sh\n")
    assert run_out(runtime, bundle, "echo $HOME").strip() == "/home/app"
    bundle.config["process"]["env"] = env + ["HOME=/mine"]
    assert run_out(runtime, bundle, "echo $HOME").strip() == "/mine"


def test_create_and_start_container_hooks_join_the_pid_namespace(runtime, bundle, tmp_path):
    # createContainer runs before pivot_root (its path resolves as on the host);
    # startContainer after it (the path is the container's busybox).  Both are
    # processes of the container's pid namespace, not only of its other namespaces.
    out = str(tmp_path / "hook.out")
    script = str(tmp_path / "hook.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nreadlink /proc/self/ns/pid > %s\n" % out)
    os.chmod(script, 0o755)
    bundle.config["hooks"] = {
        "createContainer": [{"path": script}],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "readlink /proc/self/ns/pid > /start.out"]}]}
    bundle.args("/bin/sleep", "100")
    runtime.run("create", "-b", bundle.path, bundle.id, check=True)
    try:
        pid = runtime.state(bundle.id)["pid"]
        container_pidns = os.readlink("/proc/%d/ns/pid" % pid)
        assert container_pidns != os.readlink("/proc/self/ns/pid")
        with open(out) as f:
            assert f.read().strip() == container_pidns
        runtime.run("start", bundle.id, check=True)
        with open(os.path.join(bundle.rootfs, "start.out")) as f:
            assert f.read().strip() == container_pidns
    finally:
        runtime.run("delete", "--force", bundle.id)


def test_create_container_hook_timeout_in_pid_namespace(runtime, bundle):
    bundle.config["hooks"] = {"createContainer": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                                   "timeout": 1}]}
    bundle.args("/bin/true")
    import time
    t0 = time.monotonic()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1 and "timed out" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 10


def test_tmpfs_tmpcopyup(runtime, bundle):
    # the tmpfs starts with a copy of what the destination held: files, directories,
    # links, fifos, with their modes and owners; writes stay in the tmpfs
    data = os.path.join(bundle.rootfs, "data")
    os.makedirs(os.path.join(data, "sub", "deep"))
    with open(os.path.join(data, "sub", "deep", "f"), "w") as f:
        f.write("hello\n" * 5000)
    os.chmod(os.path.join(data, "sub", "deep", "f"), 0o4750)
    os.chown(os.path.join(data, "sub"), 123, 456)
    os.symlink("sub/deep/f", os.path.join(data, "link"))
    os.mkfifo(os.path.join(data, "fifo"), 0o640)
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup", "mode=700"]})
    out = run_out(runtime, bundle,
                  "grep -c hello /data/link; stat -c '%n %a %u %g %F' /data/sub /data/sub/deep/f /data/fifo; "
                  "grep -c ' /data .* - tmpfs ' /proc/self/mountinfo; echo changed > /data/sub/deep/f")
    lines = out.splitlines()
    assert lines[0] == "5000"
    assert lines[1] == "/data/sub 755 123 456 directory"
    assert lines[2] == "/data/sub/deep/f 4750 0 0 regular file"
    assert lines[3] == "/data/fifo 640 0 0 fifo"
    assert lines[4] == "1"
    with open(os.path.join(data, "sub", "deep", "f")) as f:
        assert f.read().startswith("hello")  # the host's copy is untouched

    # read-only: copied first, then made read-only
    bundle.config["mounts"][-1]["options"] = ["tmpcopyup", "ro"]
    out = run_out(runtime, bundle, "cat /data/sub/deep/f | wc -l; touch /data/x || echo refused")
    assert out.split() == ["5000", "refused"]


def _idmap_supported(path):
    """probe: can a bind of `path` be idmapped here (kernel >= 5.12 and a filesystem
    that supports it)?  Uses the same native helper as pyrunc."""
    from pyrunc.native import lib

    fd = lib.prc_userns_fd(b"0 1000 1\n", b"0 1000 1\n")
    if fd < 0:
        return "cannot create a user namespace: %s" % os.strerror(-fd)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    tree = libc.syscall(428, -100, os.fsencode(path), 1 | os.O_CLOEXEC)  # open_tree CLONE
    try:
        if tree < 0:
            return "open_tree: %s" % os.strerror(ctypes.get_errno())
        attr = (ctypes.c_uint64 * 4)(0x00100000, 0, 0, fd)
        if libc.syscall(442, tree, b"", 0x1000, attr, 32) < 0:  # mount_setattr IDMAP
            return "MOUNT_ATTR_IDMAP on %s: %s" % (path, os.strerror(ctypes.get_errno()))
        return None
    finally:
        os.close(fd)
        if tree >= 0:
            os.close(tree)


def test_idmapped_bind_mount(runtime, bundle, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "f").write_text("x")
    os.chown(src / "f", 0, 0)
    os.chown(src / "d", 5, 6)
    why = _idmap_supported(str(src))
    if why:
        pytest.skip("idmapped mounts unavailable: " + why)
    # on-disk 0 shows as 1000 and 5/6 as 1005/1006 (the container is in the host's
    # user namespace, so it sees the mapped ids as they are)
    bundle.config["mounts"].append({
        "destination": "/idm", "type": "bind", "source": str(src), "options": ["rbind"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 100}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 100}]})
    out = run_out(runtime, bundle, "stat -c '%n %u %g' /idm/f /idm/d; "
                  "grep -c ' /idm .*idmapped' /proc/self/mountinfo")
    assert out.splitlines() == ["/idm/f 1000 2000", "/idm/d 1005 2006", "1"]
    # the mapping belongs to the mount only
    assert os.stat(src / "d").st_uid == 5

    # a non-bind mount with mappings is refused, with one clear line
    bundle.config["mounts"][-1] = {"destination": "/idm", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["idmap"]}
    bundle.save()
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 1
    assert r.stderr.strip() == "config.json: mount /idm: idmapped mounts are only supported for bind mounts"


def test_failing_poststart_and_poststop_hooks_do_not_stop_the_others(runtime, bundle, tmp_path):
    mark = str(tmp_path / "marks")
    ok = {"path": "/bin/sh", "args": ["sh", "-c", "echo $0 >> " + mark, "%s"]}
    bundle.config["hooks"] = {
        "poststart": [{"path": "/bin/false"}, dict(ok, args=ok["args"][:-1] + ["poststart"])],
        "poststop": [{"path": "/bin/false"}, dict(ok, args=ok["args"][:-1] + ["poststop"])]}
    bundle.args("/bin/sleep", "100")
    runtime.run("create", "-b", bundle.path, bundle.id, check=True)
    r = runtime.run("start", bundle.id)
    assert r.returncode == 0 and "poststart hook #0" in r.stderr
    r = runtime.run("delete", "--force", bundle.id)
    assert r.returncode == 0 and "poststop hook #0" in r.stderr
    with open(mark) as f:
        assert f.read().split() == ["poststart", "poststop"]


def test_idmapped_bind_in_a_user_namespace(runtime, bundle):
    # "idmap" without mappings takes the container's: a host directory owned by 0/0
    # shows as the container's root instead of the overflow id (65534)
    import shutil
    import tempfile

    # everything under a 0755 directory: the container's root (host uid 100000)
    # must reach the plain bind's source (pytest's temp dirs are 0700)
    top = tempfile.mkdtemp(prefix="pyrunc-idmap-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        src = os.path.join(top, "src")
        os.mkdir(src)
        with open(os.path.join(src, "f"), "w") as f:
            f.write("x")
        why = _idmap_supported(src)
        if why:
            pytest.skip("idmapped mounts unavailable: " + why)
        shutil.copytree(bundle.rootfs, os.path.join(top, "rootfs"), symlinks=True)
        cfg = bundle.config
        cfg["root"]["path"] = os.path.join(top, "rootfs")
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["mounts"] = [m for m in cfg["mounts"] if m["type"] not in ("sysfs", "cgroup")]
        cfg["mounts"].append({"destination": "/plain", "type": "bind", "source": str(src),
                              "options": ["rbind"]})
        cfg["mounts"].append({"destination": "/idm", "type": "bind", "source": str(src),
                              "options": ["rbind", "idmap"]})
        os.chown(os.path.join(top, "rootfs"), 100000, 100000)
        out = run_out(runtime, bundle, "id -u; stat -c '%u %g' /plain/f /idm/f")
        assert out.split("\n")[:3] == ["0", "65534 65534", "0 0"]
    finally:
        shutil.rmtree(top)


def test_rootfs_propagation_applies_to_the_containers_root(runtime, bundle):
    caps = bundle.config["process"]["capabilities"]
    for k in caps:
        caps[k] = sorted(set(caps[k]) | {"CAP_SYS_ADMIN"})
    bundle.config["linux"].pop("seccomp", None)
    # unbindable: the container's "/" cannot be bind-mounted (runc fails this: it makes
    # the host copy of "/" unbindable before binding the rootfs, which then fails)
    bundle.config["linux"]["rootfsPropagation"] = "unbindable"
    out = run_out(runtime, bundle, "mkdir /t; mount --bind / /t 2>/dev/null && echo bound || echo refused")
    assert out.strip() == "refused"
    # shared: a mount under "/" shows up in a bind of "/" (a peer)
    bundle.config["linux"]["rootfsPropagation"] = "shared"
    out = run_out(runtime, bundle, "mkdir -p /t /m; mount --rbind / /t; mount -t tmpfs none /m; "
                  "touch /m/seen; test -e /t/m/seen && echo exposed || echo hidden")
    assert out.strip() == "exposed"
    bundle.config["linux"]["rootfsPropagation"] = "private"
    out = run_out(runtime, bundle, "mkdir -p /t /m; mount --rbind / /t; mount -t tmpfs none /m; "
                  "touch /m/seen; test -e /t/m/seen && echo exposed || echo hidden")
    assert out.strip() == "hidden"


def test_unknown_capability_is_a_warning(runtime, bundle):
    # runtime-spec: logged as a warning, the runtime SHOULD NOT fail (runc alike)
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_TEST")
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert "level=warning" in r.stderr and "unknown capability CAP_TEST ignored" in r.stderr
