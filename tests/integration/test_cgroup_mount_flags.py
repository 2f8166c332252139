"""The default config's "cgroup" mount (options nosuid, noexec, nodev, relatime, ro):
every mount under /sys/fs/cgroup in the container, the tmpfs and each hierarchy in it,
is read-only, nosuid, nodev and noexec, with or without a cgroup namespace."""
import pytest

from tests.conftest import requires_root

pytestmark = requires_root


@pytest.mark.parametrize("cgroupns", [False, True], ids=["binds", "cgroupns"])
def test_every_cgroup_mount_is_read_only(runtime, bundle, cgroupns):
    if cgroupns:
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.args("/bin/sh", "-c", "grep ' /sys/fs/cgroup' /proc/self/mountinfo; "
                "mkdir /sys/fs/cgroup/pyrunc-x 2>/dev/null && echo MADE; "
                "for d in /sys/fs/cgroup/*/; do mkdir $d/pyrunc-x 2>/dev/null && echo MADE $d; done; true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if " /sys/fs/cgroup" in l]
    assert lines, r.stdout  # cgroup2 alone, or a tmpfs and one mount per hierarchy in it
    for line in lines:
        opts = set(line.split()[5].split(","))
        assert {"ro", "nosuid", "nodev", "noexec"} <= opts, line
    assert "MADE" not in r.stdout, r.stdout
