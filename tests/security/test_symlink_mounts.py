"""Every mount destination, device node and symlink that pyrunc makes in the rootfs is
resolved inside the root without following links out: an image whose paths are
symlinks to host canaries (absolute, climbing with "..", or through a /proc magic link)
never gets anything mounted, created or bound on the canary.

No pid namespace (so /proc/<pid>/root reaches the host) and no mount namespace (so the
container's mounts are the host's mounts, and any that followed a link out would show
on the canary).  Whether create then fails or succeeds inside the root does not matter:
the canary must be untouched and nothing may be left behind."""
import os

import pytest

from tests.conftest import requires_root
from tests.security.mountattack import (canary_intact, drop_mounts, image_link, make_canary_dir,
                                        make_canary_file, set_namespaces, unmount_all, via_dotdot,
                                        via_magic)

pytestmark = requires_root

FORMS = {"absolute": lambda p: p, "relative": via_dotdot, "magic": via_magic}


def attack(runtime, bundle, canary):
    set_namespaces(bundle, "network", "ipc")
    bundle.args("/bin/true")
    try:
        r = runtime.run("create", "-b", bundle.path, bundle.id)
        ok = canary_intact(canary)
    finally:
        unmount_all(canary)
        runtime.run("delete", "--force", bundle.id)
    assert ok, r.stderr
    if r.returncode:
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def source_dir(tmp_path):
    src = str(tmp_path / "src")
    os.makedirs(src)
    with open(os.path.join(src, "from-source"), "w") as f:
        f.write("x")
    return src


MOUNTS = {
    "bind": lambda src: {"type": "bind", "source": src, "options": ["rbind"]},
    "tmpfs": lambda src: {"type": "tmpfs", "source": "tmpfs"},
    "tmpcopyup": lambda src: {"type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]},
    "cgroup": lambda src: {"type": "cgroup", "source": "cgroup", "options": ["ro"]},
    "mqueue": lambda src: {"type": "mqueue", "source": "mqueue"},
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("kind", sorted(MOUNTS))
@pytest.mark.parametrize("where", ["leaf", "parent"])
def test_mount_destination_symlink(runtime, bundle, tmp_path, kind, form, where):
    canary = make_canary_dir(tmp_path)
    m = MOUNTS[kind](source_dir(tmp_path))
    # leaf: /data itself is the link; parent: /data is, the destination is /data/sub
    m["destination"] = "/data" if where == "leaf" else "/data/sub"
    bundle.config["mounts"].append(m)
    image_link(bundle, "/data", FORMS[form](canary))
    attack(runtime, bundle, canary)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_device_node_symlink(runtime, bundle, tmp_path, form):
    canary = make_canary_file(tmp_path)
    drop_mounts(bundle, "/dev")
    bundle.config["linux"]["devices"] = [{"path": "/dev/xnull", "type": "c", "major": 1, "minor": 3,
                                          "fileMode": 0o666, "uid": 0, "gid": 0}]
    image_link(bundle, "/dev/xnull", FORMS[form](canary))
    attack(runtime, bundle, canary)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_dev_directory_symlink(runtime, bundle, tmp_path, form):
    # default devices, /dev/fd... links and /dev/ptmx all go into the image's /dev
    canary = make_canary_dir(tmp_path)
    drop_mounts(bundle, "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")
    image_link(bundle, "/dev", FORMS[form](canary))
    attack(runtime, bundle, canary)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_ptmx_symlink_replaced_not_followed(runtime, bundle, tmp_path, form):
    # with a devpts mount /dev/ptmx is made a link to pts/ptmx: the image's link is
    # replaced, never written through
    canary = make_canary_file(tmp_path)
    drop_mounts(bundle, "/dev")
    image_link(bundle, "/dev/ptmx", FORMS[form](canary))
    attack(runtime, bundle, canary)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_cwd_symlink(runtime, bundle, tmp_path, form):
    # a missing cwd is created (as runc does): never through a link out of the root
    canary = make_canary_dir(tmp_path)
    bundle.config["process"]["cwd"] = "/work/sub"
    image_link(bundle, "/work", FORMS[form](canary))
    attack(runtime, bundle, canary)


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("spelling", ["relative", "absolute"])
def test_bind_source_inside_rootfs_symlink(runtime, bundle, tmp_path, form, spelling):
    # a config that binds a directory of the image itself ("rootfs/shared", relative to
    # the bundle as runc reads it): the image decides what that path is, so it is
    # resolved inside the root like a destination, never on the host
    canary = make_canary_dir(tmp_path)
    image_link(bundle, "/shared", FORMS[form](canary))
    src = "rootfs/shared" if spelling == "relative" else os.path.join(bundle.rootfs, "shared")
    bundle.config["mounts"].append({"destination": "/x", "type": "bind", "source": src,
                                    "options": ["rbind"]})
    set_namespaces(bundle, "network", "ipc", "mount")
    bundle.args("/bin/sh", "-c", "touch /x/pwned")
    try:
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        ok = canary_intact(canary)
    finally:
        unmount_all(canary)
    assert ok, r.stderr
    if r.returncode:
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_bind_source_inside_rootfs_works(runtime, bundle):
    os.makedirs(bundle.rootfs + "/shared/sub")
    with open(bundle.rootfs + "/shared/f", "w") as f:
        f.write("in image\n")
    bundle.config["mounts"].append({"destination": "/x", "type": "bind", "source": "rootfs/shared",
                                    "options": ["rbind", "ro"]})
    bundle.config["mounts"].append({"destination": "/y", "type": "bind", "source": "rootfs/shared/f",
                                    "options": ["bind"]})
    bundle.args("/bin/sh", "-c", "cat /x/f /y; test -d /x/sub && echo dir; touch /x/g 2>/dev/null || echo ro")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "in image\nin image\ndir\nro\n"
