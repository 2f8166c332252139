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
