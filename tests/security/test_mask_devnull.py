"""Masked paths are covered from a /dev/null proven to be the character device 1:3
(the CVE-2025-31133 class).

With no /dev tmpfs in the config the image's own /dev/null is what masking would bind.
A symlink there to /proc/sys/kernel/domainname made every masked file a writable view
of that sysctl; a dangling one started the container unmasked.  The canary is the
domainname of a private UTS namespace that the test made with `unshare --uts` and in
which pyrunc runs (the container has no uts namespace of its own, so it shares it).
"""
import os
import shutil
import subprocess

import pytest

from tests.conftest import PYRUNC, requires_root
from tests.security.mountattack import (canary_intact, drop_mounts, failed_cleanly, image_link,
                                        make_canary_file, set_namespaces, unmount_all, via_magic)

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")]

ALL_NS = ("pid", "network", "ipc", "mount")


def run_in_private_uts(runtime, bundle, tmp_path, domain, cmd="run"):
    """pyrunc `cmd` inside a new UTS namespace whose domainname is `domain`; returns
    (completed process, the namespace's domainname afterwards)"""
    out = str(tmp_path / "domainname-after")
    script = ('printf %s "$1" > /proc/sys/kernel/domainname || exit 99\n'
              '"$2" --root "$3" "$4" -b "$5" "$6"; rc=$?\n'
              'cat /proc/sys/kernel/domainname > "$7"\nexit $rc\n')
    p = subprocess.run(["unshare", "--uts", "sh", "-c", script, "sh", domain, PYRUNC, runtime.root,
                        cmd, bundle.path, bundle.id, out],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    with open(out) as f:
        return p, f.read().strip()


def hostile_dev(bundle):
    """the image's /dev is what the container gets: no /dev tmpfs"""
    drop_mounts(bundle, "/dev")
    set_namespaces(bundle, *ALL_NS)


def test_devnull_symlink_to_sysctl_is_refused(runtime, bundle, tmp_path):
    hostile_dev(bundle)
    image_link(bundle, "/dev/null", "/proc/sys/kernel/domainname")
    bundle.args("/bin/sh", "-c", "echo pwned > /proc/timer_list; echo pwned > /proc/kcore")
    r, domain = run_in_private_uts(runtime, bundle, tmp_path, "canary-domain")
    assert domain == "canary-domain"
    failed_cleanly(runtime, bundle, r, "/dev/null")


@pytest.mark.parametrize("kind", ["dangling", "regular", "zero", "fifo", "dir"])
def test_devnull_not_the_null_device_fails_create(runtime, bundle, kind):
    hostile_dev(bundle)
    null = bundle.rootfs + "/dev/null"
    if kind == "dangling":
        image_link(bundle, "/dev/null", "/nonexistent")
    elif kind == "regular":
        open(null, "w").close()
    elif kind == "zero":
        os.mknod(null, 0o666 | 0o020000, os.makedev(1, 5))
    elif kind == "fifo":
        os.mkfifo(null)
    else:
        os.mkdir(null)
    bundle.args("/bin/cat", "/proc/timer_list")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    failed_cleanly(runtime, bundle, r, "/dev/null")


def test_devnull_through_magic_link_is_refused(runtime, bundle, tmp_path):
    # no pid namespace: /proc/<pid>/root of a host process is the host root; the canary must not be bound
    canary = make_canary_file(tmp_path)
    drop_mounts(bundle, "/dev")
    set_namespaces(bundle, "network", "ipc")
    image_link(bundle, "/dev/null", via_magic(canary))
    bundle.args("/bin/true")
    try:
        r = runtime.run("create", "-b", bundle.path, bundle.id)
        ok = canary_intact(canary)
    finally:
        unmount_all(canary)
    assert ok
    failed_cleanly(runtime, bundle, r, "/dev/null")


def test_real_devnull_in_image_masks(runtime, bundle):
    # the image's own /dev/null, a real 1:3 node: masking works from it
    hostile_dev(bundle)
    os.mknod(bundle.rootfs + "/dev/null", 0o666 | 0o020000, os.makedev(1, 3))
    bundle.args("/bin/sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
                "echo x > /proc/timer_list && echo wrote")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "wrote"]


def test_masked_file_symlink_is_not_followed_out(runtime, bundle, tmp_path):
    # a masked path that the image made a symlink to a host file (no pid namespace, no
    # mount namespace: a bind that followed it would cover the canary on the host)
    canary = make_canary_file(tmp_path)
    set_namespaces(bundle, "network", "ipc")
    bundle.config["linux"]["maskedPaths"] = ["/etc/secret"]
    image_link(bundle, "/etc/secret", via_magic(canary))
    bundle.args("/bin/true")
    try:
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        ok = canary_intact(canary)
    finally:
        unmount_all(canary)
    assert ok, (r.returncode, r.stderr)
    failed_cleanly(runtime, bundle, r, "/etc/secret")


def test_masked_dir_symlink_is_not_followed_out(runtime, bundle, tmp_path):
    from tests.security.mountattack import make_canary_dir

    canary = make_canary_dir(tmp_path)
    set_namespaces(bundle, "network", "ipc")
    bundle.config["linux"]["maskedPaths"] = ["/srv/hidden"]
    image_link(bundle, "/srv/hidden", via_magic(canary))
    bundle.args("/bin/true")
    try:
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        ok = canary_intact(canary)
    finally:
        unmount_all(canary)
    assert ok, (r.returncode, r.stderr)
    failed_cleanly(runtime, bundle, r, "/srv/hidden")


def test_readonly_path_symlink_is_not_followed_out(runtime, bundle, tmp_path):
    from tests.security.mountattack import make_canary_dir

    canary = make_canary_dir(tmp_path)
    set_namespaces(bundle, "network", "ipc")
    bundle.config["linux"]["readonlyPaths"] = ["/srv/ro"]
    image_link(bundle, "/srv/ro", via_magic(canary))
    bundle.args("/bin/true")
    try:
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        ok = canary_intact(canary)
    finally:
        unmount_all(canary)
    assert ok, (r.returncode, r.stderr)
    failed_cleanly(runtime, bundle, r, "/srv/ro")
