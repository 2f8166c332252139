"""/proc and /sys must be mounted on ordinary directories (runc: CVE-2019-16884 /
CVE-2019-19921 class): an image whose /proc or /sys is a symlink is refused with
runc's wording, whatever the link points at, and the canary it points at gets no mount."""
import os

import pytest

from tests.conftest import requires_root
from tests.security.mountattack import (canary_intact, failed_cleanly, image_link, make_canary_dir,
                                        set_namespaces, unmount_all, via_dotdot, via_magic)

pytestmark = requires_root


@pytest.mark.parametrize("mount_ns", [True, False], ids=["mountns", "hostns"])
@pytest.mark.parametrize("form", ["absolute", "relative", "magic"])
@pytest.mark.parametrize("dest,fstype", [("/proc", "proc"), ("/sys", "sysfs")])
def test_symlinked_destination_is_refused(runtime, bundle, tmp_path, dest, fstype, form, mount_ns):
    canary = make_canary_dir(tmp_path)
    target = {"absolute": canary, "relative": via_dotdot(canary), "magic": via_magic(canary)}[form]
    # no pid namespace: the magic form reaches the host through /proc/<pid>/root
    set_namespaces(bundle, "network", "ipc", *(("mount",) if mount_ns else ()))
    if dest == "/sys":
        # /sys after /proc, so that the magic form goes through the container's procfs
        bundle.config["mounts"] = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/sys")]
        bundle.config["mounts"].append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                                        "options": ["nosuid", "noexec", "nodev", "ro"]})
        bundle.save()
    image_link(bundle, dest, target)
    bundle.args("/bin/true")
    try:
        r = runtime.run("create", "-b", bundle.path, bundle.id)
        ok = canary_intact(canary)
    finally:
        unmount_all(canary)
    assert ok, r.stderr
    failed_cleanly(runtime, bundle, r, 'filesystem "%s" must be mounted on ordinary directory' % fstype, dest)


@pytest.mark.parametrize("dest,fstype", [("/proc", "proc"), ("/sys", "sysfs")])
def test_non_directory_destination_is_refused(runtime, bundle, dest, fstype):
    os.rmdir(bundle.rootfs + dest)
    open(bundle.rootfs + dest, "w").close()
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    failed_cleanly(runtime, bundle, r, 'filesystem "%s" must be mounted on ordinary directory' % fstype, dest)


def test_missing_destination_is_created(runtime, bundle):
    os.rmdir(bundle.rootfs + "/proc")
    bundle.args("/bin/sh", "-c", "test -r /proc/self/status && echo ok")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
