"""What pyrunc tells criu about a container's mounts (pyrunc/criu.py), checked on this
host's kernel, where criu itself cannot run (tests/criu needs the VM): every external
key of a dump must be a mount point criu will find in the container's mount namespace
(a key that matches nothing is silently ignored, and the restore then fails), and the
restore side must map it to the host's source.  On this hybrid host that covers the v1
cgroup binds, which the cgroup2-only VM cannot."""
import json
import os

from pyrunc import criu, spec as _spec
from pyrunc.cgroups import load_manager
from tests.conftest import requires_root


def _mount_points(pid):
    with open("/proc/%d/mountinfo" % pid) as f:
        return {line.split()[4] for line in f}


@requires_root
def test_dump_and_restore_keys_are_the_container_mounts(runtime, bundle, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    # a destination reached through a symlink in the rootfs: criu sees the real path
    os.makedirs(os.path.join(bundle.rootfs, "real"))
    os.symlink("/real", os.path.join(bundle.rootfs, "lnk"))
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind"]},
        {"destination": "/lnk/x", "type": "none", "source": str(data), "options": ["bind", "ro"]},
    ]
    bundle.args("sleep", "100")
    runtime.run("run", "-d", "--bundle", bundle.path, bundle.id, check=True)
    try:
        st = runtime.state(bundle.id)
        pid = st["pid"]
        spec = _spec.load(bundle.path)
        import json

        with open(os.path.join(runtime.root, bundle.id, "state.json")) as f:
            cg = load_manager(json.load(f)["cgroup"])
        dump = criu.dump_ext_mounts(spec, spec.root_path, pid, cg.paths)
        keys = {e["key"]: e["val"] for e in dump}
        mps = _mount_points(pid)
        devices = {"/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom"}
        for k in keys:
            if k not in devices:  # nodes are made with mknod: runc lists them all the same
                assert k in mps, "%s is not a mount point in the container" % k
        assert keys["/data"] == "/data" and keys["/real/x"] == "/real/x"
        files = [m for m in spec.masked_paths if os.path.exists("/proc/%d/root%s" % (pid, m))
                 and not os.path.isdir("/proc/%d/root%s" % (pid, m))]
        dirs = [m for m in spec.masked_paths if os.path.isdir("/proc/%d/root%s" % (pid, m))]
        assert files and dirs
        for m in files:  # masked files: binds of the host's /dev/null
            assert keys[m] == "/dev/null"
        for m in dirs:  # masked directories: a tmpfs, which criu dumps itself
            assert m not in keys
        # every cgroup hierarchy's bind (v1 names, and cgroup2 as "unified" here)
        cg_keys = [k for k in keys if k.startswith("/sys/fs/cgroup")]
        assert cg_keys and all(k in mps for k in cg_keys)

        rst = {e["key"]: e["val"] for e in criu.restore_ext_mounts(spec, cg.paths)}
        assert rst["/data"] == str(data) and rst["/real/x"] == str(data)
        assert rst["/dev/null"] == "/dev/null"
        for k in cg_keys:
            # the host directory is the container's own cgroup: the init is in it
            with open(os.path.join(rst[k], "cgroup.procs")) as f:
                assert str(pid) in f.read().split(), k
    finally:
        runtime.run("delete", "--force", bundle.id)


def test_cli_errors_are_one_line(runtime, tmp_path):
    r = runtime.run("checkpoint", "--image-path", str(tmp_path / "i"), "nosuch")
    assert r.returncode == 1 and r.stderr.strip() == "container does not exist: nosuch"
    assert not os.path.exists(str(tmp_path / "i"))
    r = runtime.run("restore", "--image-path", str(tmp_path / "none"), "--bundle", str(tmp_path), "x")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    r = runtime.run("checkpoint", "--manage-cgroups-mode", "bogus", "x")
    assert r.returncode == 1 and "invalid manage cgroups mode" in r.stderr
    r = runtime.run("checkpoint", "--empty-ns", "pid", "x")
    assert r.returncode == 1 and 'namespace "pid" is not supported' in r.stderr
    assert not os.path.exists(os.path.join(runtime.root, "x"))
