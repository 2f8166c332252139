"""Device nodes that pyrunc makes in a rootfs without a /dev tmpfs (the image's own /dev,
a directory of the host that anyone sharing the rootfs can write) are set up through an
fd proven to be the node pyrunc made, never by name again: a node swapped for a symlink
or a hard link to a host file between mknod and the chmod/chown must not pass the
device's mode and owner on to that file.  In a user namespace, where devices are the
host's nodes bound onto files of the rootfs, a destination that is a symlink is refused,
not followed (even inside the root).

The race is made deterministic with strace: the container's mknodat returns only after
a delay (`inject=mknodat:delay_exit`), and a thread of the test, woken by inotify when
the node appears, swaps it for a link to a canary file the test made on the host.
"""
import ctypes
import os
import shutil
import stat
import subprocess
import threading

import pytest

from tests.conftest import PYRUNC, requires_root
from tests.security.mountattack import (CANARY_TEXT, canary_meta, drop_mounts, failed_cleanly, image_link,
                                        make_canary_file, set_namespaces, userns_bundle)

pytestmark = requires_root

_libc = ctypes.CDLL(None, use_errno=True)
IN_CREATE = 0x100
CANARY_MODE = 0o640
DEVICE = {"path": "/dev/racedev", "type": "c", "major": 1, "minor": 3,
          "fileMode": 0o4777, "uid": 4321, "gid": 4321}


class Swapper(threading.Thread):
    """replaces `name` in `directory` by a symlink or hard link to `canary` as soon as it
    is created (inotify), once"""

    def __init__(self, directory, name, canary, how):
        super().__init__(daemon=True)
        self.directory, self.name, self.canary, self.how = directory, name, canary, how
        self.swapped = False
        self.fd = _libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0
        assert _libc.inotify_add_watch(self.fd, directory.encode(), IN_CREATE) >= 0

    def run(self):
        import select

        path = os.path.join(self.directory, self.name)
        while not self.swapped:
            r, _, _ = select.select([self.fd], [], [], 20)
            if not r:
                return
            data = os.read(self.fd, 4096)
            if self.name.encode() + b"\0" not in data or not os.path.lexists(path):
                continue
            if stat.S_ISLNK(os.lstat(path).st_mode) or os.path.samefile(path, self.canary):
                continue
            tmp = path + ".swap"
            if self.how == "symlink":
                os.symlink(self.canary, tmp)
            else:
                os.link(self.canary, tmp)
            os.rename(tmp, path)
            self.swapped = True

    def close(self):
        os.close(self.fd)


def strace_run(runtime, bundle, delayed_syscall):
    """pyrunc run with every `delayed_syscall` of its processes returning 0.3 s late"""
    cmd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + delayed_syscall,
           "-e", "inject=%s:delay_exit=300000" % delayed_syscall,
           PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace(1) for the race")


def device_attack(bundle, tmp_path):
    """(canary, its meta): a canary next to the rootfs (same filesystem: a hard link is
    possible), and a bundle whose DEVICE is made in the image's own /dev"""
    canary = make_canary_file(tmp_path)
    os.chmod(canary, CANARY_MODE)
    before = canary_meta(canary)
    drop_mounts(bundle, "/dev")
    set_namespaces(bundle, "pid", "network", "ipc", "mount")
    bundle.config["linux"]["devices"] = [DEVICE]
    return canary, before


def canary_meta_restored(canary):
    """the canary's meta, then its owner and mode put back: a successful attack (a
    setuid 0777 file owned by 4321) is undone before the test asserts"""
    after = canary_meta(canary)
    os.chown(canary, 0, 0)
    os.chmod(canary, CANARY_MODE)
    return after


@needs_strace
@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_device_node_swapped_after_mknod(runtime, bundle, tmp_path, how):
    canary, before = device_attack(bundle, tmp_path)
    bundle.args("/bin/true")
    swapper = Swapper(bundle.rootfs + "/dev", "racedev", canary, how)
    swapper.start()
    try:
        r = strace_run(runtime, bundle, "mknodat")
        swapper.join(30)
    finally:
        swapper.close()
    after = canary_meta_restored(canary)
    assert swapper.swapped, "the race was not run: %s" % r.stderr
    assert after == before, "the device's mode/owner reached the host file: %r -> %r" % (before, after)
    # refused with one line naming the device (or run safely: nothing reached the canary)
    if r.returncode:
        failed_cleanly(runtime, bundle, r, "/dev/racedev")


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_device_node_preexisting_link_left_alone(runtime, bundle, tmp_path, how):
    # no race: the image already has a link where the device goes; an existing entry is
    # left as it is (runc does the same), and never chmod/chowned through
    canary, before = device_attack(bundle, tmp_path)
    if how == "symlink":
        image_link(bundle, "/dev/racedev", canary)
    else:
        os.link(canary, bundle.rootfs + "/dev/racedev")
    bundle.args("/bin/true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    after = canary_meta_restored(canary)
    assert after == before
    assert r.returncode == 0 or len(r.stderr.splitlines()) == 1, r.stderr


# ---- user namespace: devices are host nodes bound onto files of the rootfs ----

@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_userns_device_bind_on_final_symlink(runtime, bundle, form):
    # /dev/full is a symlink to a file of the image: the host's /dev/full must not be
    # bound over that file (the container would read zeros from its /etc/canary)
    # the mapped root owns the image (its /dev is where the device files are made)
    top, rootfs = userns_bundle(bundle, own_image=True, image_dev=True)
    try:
        with open(rootfs + "/etc/canary", "w") as f:
            f.write(CANARY_TEXT)
        os.chmod(rootfs + "/etc/canary", CANARY_MODE)
        before = canary_meta(rootfs + "/etc/canary")
        os.symlink("/etc/canary" if form == "absolute" else "../etc/canary", rootfs + "/dev/full")
        bundle.args("/bin/sh", "-c", "stat -c %F /etc/canary; head -c 7 /etc/canary")
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        assert canary_meta(rootfs + "/etc/canary") == before
        if r.returncode == 0:
            assert r.stdout == "regular file\n" + CANARY_TEXT, r.stdout
        else:
            failed_cleanly(runtime, bundle, r, "/dev/full")
    finally:
        shutil.rmtree(top)


def test_userns_device_bind_works(runtime, bundle):
    # the ordinary case still works: no /dev tmpfs, default devices bound from the host
    # the mapped root owns the image (its /dev is where the device files are made)
    top, rootfs = userns_bundle(bundle, own_image=True, image_dev=True)
    try:
        bundle.args("/bin/sh", "-c", "stat -c '%F %t:%T' /dev/full /dev/null")
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "character special file 1:7\ncharacter special file 1:3\n", r.stdout
    finally:
        shutil.rmtree(top)
