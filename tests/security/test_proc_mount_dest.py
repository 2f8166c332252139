"""Nothing but procfs is mounted inside the container's /proc, whether the config asks
for it or an image's symlink leads a destination there (runc's checkProcMount, the
CVE-2019-19921 class: a tmpfs over /proc/self/attr or /proc/sys makes what the runtime
writes there land in a fake file).  The few files lxcfs emulates may be bind-mounted."""
import os

import pytest

from tests.conftest import requires_root
from tests.security.mountattack import failed_cleanly, image_link

pytestmark = requires_root


@pytest.mark.parametrize("how", ["config", "image-link"])
def test_tmpfs_inside_proc_is_refused(runtime, bundle, how):
    if how == "config":
        dest = "/proc/sys/kernel"
    else:
        dest = "/data"
        image_link(bundle, "/data", "/proc/sys/kernel")
    bundle.config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    failed_cleanly(runtime, bundle, r, dest, "inside /proc")


def test_bind_over_proc_file_through_link_is_refused(runtime, bundle, tmp_path):
    fake = tmp_path / "fake"
    fake.write_text("fake\n")
    image_link(bundle, "/etc/hostname", "/proc/sys/kernel/hostname")
    bundle.config["mounts"].append({"destination": "/etc/hostname", "type": "bind", "source": str(fake),
                                    "options": ["bind"]})
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    failed_cleanly(runtime, bundle, r, "/etc/hostname", "inside /proc")


def test_lxcfs_style_binds_are_allowed(runtime, bundle, tmp_path):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal: 1 kB\n")
    bundle.config["mounts"].append({"destination": "/proc/meminfo", "type": "bind", "source": str(fake),
                                    "options": ["bind"]})
    bundle.args("/bin/cat", "/proc/meminfo")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stdout == "MemTotal: 1 kB\n", r.stderr


def test_second_proc_mount_is_allowed(runtime, bundle):
    bundle.config["mounts"].append({"destination": "/proc", "type": "proc", "source": "proc"})
    bundle.args("/bin/sh", "-c", "test -r /proc/self/status && echo ok")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr


def test_volume_led_over_proc_sys_gets_no_sysctl_write(runtime, bundle, tmp_path):
    # an innocent volume (a host directory: the canary) at /data, and an image whose
    # /data leads into /proc/sys/net/core: the sysctl write would land in the host file
    from tests.security.mountattack import CANARY_TEXT, make_canary_dir

    vol = make_canary_dir(tmp_path)
    with open(os.path.join(vol, "somaxconn"), "w") as f:
        f.write(CANARY_TEXT)
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": vol,
                                    "options": ["rbind"]})
    bundle.config["linux"]["sysctl"] = {"net.core.somaxconn": "77"}
    image_link(bundle, "/data", "/proc/sys/net/core")
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    if r.returncode == 0:
        runtime.run("delete", "--force", bundle.id)
    with open(os.path.join(vol, "somaxconn")) as f:
        assert f.read() == CANARY_TEXT
    failed_cleanly(runtime, bundle, r, "/data", "inside /proc")
