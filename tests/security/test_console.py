"""/dev/console of a terminal container is the pty slave bound onto a node made inside
the container's own /dev, never through a symlink (the CVE-2025-52565 class); the pty
master comes from a /dev/ptmx opened inside the root and proven to be the ptmx device."""
import ctypes
import os
import subprocess

import pytest

from tests.conftest import PYRUNC, requires_root
from tests.security.mountattack import (canary_intact, canary_meta, drop_mounts, failed_cleanly, image_link,
                                        make_canary_file, set_namespaces, unmount_all, userns_bundle,
                                        via_dotdot, via_magic)

pytestmark = requires_root


def run_terminal(runtime, bundle, script):
    bundle.config["process"]["terminal"] = True
    bundle.args("/bin/sh", "-c", script)
    p = subprocess.run([PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode().replace("\r", ""), p.stderr.decode()


CHECK = "stat -c %t:%T /dev/console; stat -L -c %t:%T /proc/self/fd/0; readlink /proc/self/fd/0"


def check_console_is_stdin(out):
    console, stdin, link = out.split()[:3]
    assert console == stdin, out
    assert int(console.split(":")[0], 16) == 136, out  # a pty slave (UNIX98_PTY_SLAVE_MAJOR)
    assert link.startswith("/dev/pts/"), out


def test_terminal_container_has_console(runtime, bundle):
    rc, out, err = run_terminal(runtime, bundle, CHECK)
    assert rc == 0, err
    check_console_is_stdin(out)


def test_console_with_readonly_root(runtime, bundle):
    bundle.config["root"]["readonly"] = True
    rc, out, err = run_terminal(runtime, bundle, CHECK)
    assert rc == 0, err
    check_console_is_stdin(out)


def test_image_console_file_is_used(runtime, bundle):
    # no /dev tmpfs: the image's own /dev; an existing regular /dev/console is bound over
    drop_mounts(bundle, "/dev")
    with open(bundle.rootfs + "/dev/console", "w") as f:
        f.write("image\n")
    rc, out, err = run_terminal(runtime, bundle, CHECK)
    assert rc == 0, err
    check_console_is_stdin(out)
    assert open(bundle.rootfs + "/dev/console").read() == "image\n"


def test_no_console_without_terminal(runtime, bundle):
    bundle.args("/bin/sh", "-c", "test -e /dev/console && echo yes || echo no")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stdout == "no\n", r.stderr


@pytest.mark.parametrize("form", ["magic", "relative", "absolute"])
def test_console_symlink_is_refused(runtime, bundle, tmp_path, form):
    # the image's /dev/console points at a host file; no pid and no mount namespace, so
    # a bind through the link would land on the canary in the host's mount namespace
    canary = make_canary_file(tmp_path)
    target = {"absolute": canary, "relative": via_dotdot(canary), "magic": via_magic(canary)}[form]
    drop_mounts(bundle, "/dev")
    set_namespaces(bundle, "network", "ipc")
    image_link(bundle, "/dev/console", target)
    bundle.config["process"]["terminal"] = True
    bundle.args("/bin/true")
    sock = str(tmp_path / "console.sock")
    import socket

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock)
    srv.listen(1)
    try:
        r = runtime.run("create", "-b", bundle.path, "--console-socket", sock, bundle.id)
        ok = canary_intact(canary)
    finally:
        srv.close()
        unmount_all(canary)
    assert ok, r.stderr
    failed_cleanly(runtime, bundle, r, "/dev/console")


@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_console_of_wrong_type_is_refused(runtime, bundle, kind):
    drop_mounts(bundle, "/dev")
    path = bundle.rootfs + "/dev/console"
    os.mkdir(path) if kind == "dir" else os.mkfifo(path)
    rc, out, err = run_terminal(runtime, bundle, "true")
    assert rc == 1 and "/dev/console" in err, (rc, err)


# ---- /dev/ptmx ----

_libc = ctypes.CDLL(None, use_errno=True)
IN_OPEN = 0x20


def watch_opens(path):
    fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    assert fd >= 0
    assert _libc.inotify_add_watch(fd, path.encode(), IN_OPEN) >= 0
    return fd


def opened(fd):
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        return False
    return bool(data)  # only IN_OPEN is watched: any event is an open


def test_ptmx_symlink_out_is_not_opened(runtime, bundle, tmp_path):
    # no /dev tmpfs and no devpts: the image's /dev/ptmx is what a terminal would open
    canary = make_canary_file(tmp_path)
    drop_mounts(bundle, "/dev", "/dev/pts")
    set_namespaces(bundle, "network", "ipc", "mount")
    image_link(bundle, "/dev/ptmx", via_magic(canary))
    w = watch_opens(canary)
    try:
        rc, out, err = run_terminal(runtime, bundle, "true")
        was_opened = opened(w)
    finally:
        os.close(w)
    assert not was_opened, "the host canary was opened as /dev/ptmx"
    assert rc == 1 and "/dev/ptmx" in err, (rc, err)
    assert canary_intact(canary)


def test_ptmx_not_a_ptmx_is_refused(runtime, bundle):
    drop_mounts(bundle, "/dev", "/dev/pts")
    os.mknod(bundle.rootfs + "/dev/ptmx", 0o666 | 0o020000, os.makedev(1, 3))
    rc, out, err = run_terminal(runtime, bundle, "true")
    assert rc == 1 and "/dev/ptmx" in err, (rc, err)


def test_console_and_masks_in_a_user_namespace(runtime, bundle):
    # devices are bind-mounted from the host there, /dev/null included: masking and the
    # console must work from those too
    import shutil

    top, rootfs = userns_bundle(bundle)
    try:
        rc, out, err = run_terminal(runtime, bundle, CHECK + "; wc -c < /proc/keys; "
                                    "touch /proc/sys/x 2>/dev/null || echo ro")
        assert rc == 0, err
        check_console_is_stdin(out)
        assert out.split()[3:] == ["0", "ro"], out
    finally:
        shutil.rmtree(top)


def test_console_without_mount_namespace(runtime, bundle):
    # the container's mounts are the host's: the console bind is made there, under the
    # rootfs, and removed with the container
    set_namespaces(bundle, "pid", "network", "ipc")
    rc, out, err = run_terminal(runtime, bundle, CHECK + "; wc -c < /proc/keys")
    assert rc == 0, (err, out)
    check_console_is_stdin(out)
    assert out.split()[3] == "0", out


# ---- what is at /dev/console: never chmod/chown/bound through, and the node made ----

def run_terminal_against(runtime, bundle, canary):
    """(rc, out, err, canary meta, canary intact) of a terminal run of CHECK; whatever
    it mounted on the canary and whatever is left of the container are removed"""
    try:
        rc, out, err = run_terminal(runtime, bundle, CHECK)
        return rc, out, err, canary_meta(canary), canary_intact(canary)
    finally:
        unmount_all(canary)
        runtime.run("delete", "--force", bundle.id)


def test_console_hard_link_to_host_file(runtime, bundle, tmp_path):
    # the image's /dev/console is a second name of a host file (same filesystem); no
    # mount namespace, so the console bind is made in the host's namespace: the file's
    # mode, owner and content stay, nothing is mounted on its host path, and the
    # container's console is its pty (the bind covers the image's name, not the file)
    canary = make_canary_file(tmp_path)
    os.chmod(canary, 0o640)
    os.chown(canary, 4321, 4321)
    before = canary_meta(canary)
    drop_mounts(bundle, "/dev")
    set_namespaces(bundle, "pid", "network", "ipc")
    os.link(canary, bundle.rootfs + "/dev/console")
    rc, out, err, after, ok = run_terminal_against(runtime, bundle, canary)
    assert after == before and ok, (before, after)
    assert rc == 0, err
    check_console_is_stdin(out)


SWAPS = {
    "symlink-absolute": 'rm -f "$0" && ln -s "$1" "$0"',
    "symlink-magic": 'rm -f "$0" && ln -s "/proc/$PPID/root$1" "$0"',
    "hardlink": 'mv -f "$2" "$0"',  # a second name of the canary, made beforehand
    "dir": 'rm -f "$0" && mkdir "$0"',
    "fifo": 'rm -f "$0" && mkfifo "$0"',
}


@pytest.mark.parametrize("swap", sorted(SWAPS))
def test_console_replaced_after_it_was_made(runtime, bundle, tmp_path, swap):
    # a createRuntime hook stands for whoever shares the image's /dev: between the
    # console node being made (before pivot_root) and the pty being bound on it, it is
    # replaced.  What pyrunc binds onto must be the node it made, or create fails.
    canary = make_canary_file(tmp_path)
    os.chmod(canary, 0o640)
    before = canary_meta(canary)
    drop_mounts(bundle, "/dev")
    set_namespaces(bundle, "network", "ipc")
    console = bundle.rootfs + "/dev/console"
    # the rootfs is a mount of its own by then: a hard link is made now, moved in later
    link = bundle.rootfs + "/tmp/canary-link"
    os.link(canary, link)
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", SWAPS[swap], console, canary, link]}]}
    bundle.save()
    rc, out, err, after, ok = run_terminal_against(runtime, bundle, canary)
    assert after == before and ok, (before, after, err)
    # refused with one line, whatever replaced it: only the node made is bound onto
    assert rc == 1, (rc, out, err)
    assert len(err.splitlines()) == 1 and "/dev/console" in err, err
