"""pyrunc under rootless podman 4.3 (`podman --runtime PATH` as an ordinary user).

Rootless podman runs its runtime inside a user namespace of its own, as uid 0 there:
pyrunc must see that it is rootless all the same (no cgroups it cannot write, device
nodes bound from the host instead of mknod, state under $XDG_RUNTIME_DIR).  Storage
is vfs under a temp dir the user owns; the image comes from the session's registry.
"""
import os
import shutil
import subprocess
import uuid

import pytest

from tests.conftest import PYRUNC
from tests.containerd.conftest import registry_image  # noqa: F401  (session fixture)
from tests.rootless.conftest import pytestmark as _base, state_left

pytestmark = list(_base) if isinstance(_base, list) else [_base]
pytestmark.append(pytest.mark.skipif(shutil.which("podman") is None or shutil.which("conmon") is None,
                                     reason="podman or conmon not installed (make deps installs them)"))


@pytest.fixture(scope="module")
def podman(user, registry_image):  # noqa: F811
    d = "/tmp/pyrunc-podman-rootless-%s" % uuid.uuid4().hex[:8]
    os.makedirs(d)
    os.chown(d, user.uid, user.gid)
    base = ["podman", "--root", d + "/storage", "--runroot", d + "/run", "--tmpdir", d + "/tmp",
            "--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs",
            "--runtime", PYRUNC]

    def run(*args, timeout=120):
        return user.run(base + list(args), timeout=timeout)

    r = run("pull", "-q", "--tls-verify=false", registry_image)
    assert r.returncode == 0, r.stderr
    run.image = registry_image
    try:
        yield run
    finally:
        run("rm", "-a", "-f", "-t", "0")
        user.run(["podman", "--root", d + "/storage", "--runroot", d + "/run", "--storage-driver", "vfs",
                  "unshare", "rm", "-rf", d + "/storage"])
        shutil.rmtree(d, ignore_errors=True)
        assert state_left(user) == [], "pyrunc state left behind by rootless podman"


def test_run_rm(podman):
    r = podman("run", "--rm", "--network", "none", podman.image, "id")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("uid=0(root) gid=0(root)"), r.stdout


def test_run_detached_exec_stop_rm(podman):
    r = podman("run", "-d", "--network", "none", podman.image, "sleep", "100")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    r = podman("exec", cid, "sh", "-c", "echo hi; id -u")
    assert (r.returncode, r.stdout) == (0, "hi\n0\n"), r.stderr
    r = podman("exec", "--user", "1000", cid, "id", "-u")
    assert (r.returncode, r.stdout) == (0, "1000\n"), r.stderr
    r = podman("stop", "-t", "1", cid)
    assert r.returncode == 0, r.stderr
    r = podman("rm", cid)
    assert r.returncode == 0, r.stderr
    assert podman("ps", "-a", "-q").stdout.split() == []


def test_failed_create_maps_to_127(podman):
    r = podman("run", "--rm", "--network", "none", podman.image, "/no/such/binary")
    assert r.returncode == 127, (r.returncode, r.stderr)
