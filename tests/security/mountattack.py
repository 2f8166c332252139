"""Helpers for the rootfs attacks: a hostile image (symlinks, missing or fake nodes) against
canary files and directories that the test itself made on the host.

The reach-out paths an image can use: an absolute symlink through a magic link of the
container's own procfs (with no pid namespace /proc/<pid>/root of any host process of
the same credentials is the host's root: we use the test's own pid, which an attacker
would guess; /proc/1 needs a capability this VM's session lacks), and a relative one
climbing with "..".  Without a mount namespace of its own the container's
mounts are made in the host's mount namespace, so a mount that followed such a link is
visible on the host: that is where the canaries are checked.
"""
import os
import shutil
import tempfile

import pytest

from tests.conftest import cgroup_dirs, mounts_under

CANARY_TEXT = "canary\n"


def make_canary_file(tmp_path, name="canary"):
    path = str(tmp_path / name)
    with open(path, "w") as f:
        f.write(CANARY_TEXT)
    return path


def make_canary_dir(tmp_path, name="canary-dir"):
    path = str(tmp_path / name)
    os.makedirs(path)
    with open(os.path.join(path, "inside"), "w") as f:
        f.write(CANARY_TEXT)
    return path


def canary_meta(path):
    """what an attack on a canary file would change: its type and mode, owner, content"""
    st = os.lstat(path)
    with open(path) as f:
        return st.st_mode, st.st_uid, st.st_gid, f.read()


def via_magic(host_path):
    """an absolute link target that reaches host_path through a /proc/<pid>/root magic link"""
    return "/proc/%d/root%s" % (os.getpid(), host_path)


def via_dotdot(host_path):
    """a relative link target that climbs out with .. (stopped at the root if resolved in it)"""
    return "../" * 40 + host_path.lstrip("/")


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def canary_intact(path):
    """no mount on the canary (or under it), and its content as made"""
    path = os.path.realpath(path)
    hit = [m for m in mount_points() if m == path or m.startswith(path + "/")]
    if os.path.isdir(path):
        inside = os.path.join(path, "inside")
        ok = os.listdir(path) == ["inside"] and open(inside).read() == CANARY_TEXT
        # still writable from the host (a read-only bind would refuse this)
        probe = os.path.join(path, "probe")
        try:
            with open(probe, "w") as f:
                f.write("x")
            os.unlink(probe)
        except OSError:
            ok = False
    else:
        ok = open(path).read() == CANARY_TEXT
    return not hit and ok


def unmount_all(path):
    """undo what a successful attack mounted on a canary (before the assertion fails)"""
    path = os.path.realpath(path)
    for m in sorted((m for m in mount_points() if m == path or m.startswith(path + "/")),
                    key=len, reverse=True):
        os.system("umount -l '%s' 2>/dev/null" % m)


def set_namespaces(bundle, *keep):
    ns = bundle.config["linux"]["namespaces"]
    bundle.config["linux"]["namespaces"] = [n for n in ns if n["type"] in keep]
    if "uts" not in keep:
        bundle.config.pop("hostname", None)
        bundle.config.pop("domainname", None)
    bundle.save()


def drop_mounts(bundle, *destinations):
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] not in destinations]
    bundle.save()


def image_link(bundle, path, target):
    """make rootfs<path> a symlink to target (replacing what the image had)"""
    full = bundle.rootfs + path
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if os.path.lexists(full):
        if os.path.isdir(full) and not os.path.islink(full):
            os.rmdir(full)
        else:
            os.unlink(full)
    os.symlink(target, full)


def failed_cleanly(runtime, bundle, r, *phrases):
    """one line on stderr with every phrase, exit 1, and nothing left behind"""
    if r.returncode == 0:
        runtime.run("delete", "--force", bundle.id)  # so that a failure here leaves nothing
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for p in phrases:
        assert p in lines[0], (p, lines[0])
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    assert cgroup_dirs(bundle.id) == []
    assert mounts_under(bundle.path) == []


def userns_bundle(bundle, own_image=False, image_dev=False):
    """The bundle's rootfs copied under a fresh directory of /tmp that the mapped root
    (host uid 100000) can reach, and the config given a user namespace: (top, rootfs);
    the caller removes top.  own_image: the mapped root owns every entry of the image,
    not only its top; image_dev: no /dev tmpfs (the image's own /dev).  Skips where no
    user namespace can be made."""
    from pyrunc.native import lib

    fd = lib.prc_userns_fd(b"0 100000 65536\n", b"0 100000 65536\n")
    if fd < 0:
        pytest.skip("cannot create a user namespace: %s" % os.strerror(-fd))
    os.close(fd)
    top = tempfile.mkdtemp(prefix="pyrunc-userns-", dir="/tmp")
    os.chmod(top, 0o755)
    rootfs = os.path.join(top, "rootfs")
    shutil.copytree(bundle.rootfs, rootfs, symlinks=True)
    if own_image:
        for d, dirs, files in os.walk(rootfs):
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, 100000, 100000)
    else:
        os.chown(rootfs, 100000, 100000)
    cfg = bundle.config
    cfg["root"]["path"] = rootfs
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["mounts"] = [m for m in cfg["mounts"] if m["type"] not in ("sysfs", "cgroup")
                     and not (image_dev and m["destination"] == "/dev")]
    bundle.save()
    return top, rootfs
