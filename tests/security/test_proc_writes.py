"""Writes into /proc go only to procfs (the CVE-2025-52881 class).

The child writes linux.sysctl values under the container's /proc/sys after the
config's mounts are in place.  If a mount (here one from config.json; in the CVE a
racing bind from a shared mount namespace) puts a host file over the sysctl, a plain
open() of /proc/sys/... writes the host file.  pyrunc opens /proc files from a
verified procfs root without crossing mounts or following symlinks (csrc/child/procfs.c).
"""
import os

from tests.conftest import requires_root

pytestmark = requires_root

CANARY = "canary: must not change\n"


def canary_file(tmp_path):
    path = str(tmp_path / "canary")
    with open(path, "w") as f:
        f.write(CANARY)
    return path


def unchanged(path):
    with open(path) as f:
        return f.read() == CANARY


def test_sysctl_write_does_not_follow_a_bind_mount_over_proc_sys(runtime, bundle, tmp_path):
    canary = canary_file(tmp_path)
    cfg = bundle.config
    assert any(n["type"] == "ipc" for n in cfg["linux"]["namespaces"])
    cfg["linux"]["sysctl"] = {"kernel.shmmax": "4242"}
    # after the default /proc mount: the bind lands on the sysctl file of the new procfs
    cfg["mounts"].append({"destination": "/proc/sys/kernel/shmmax", "type": "bind",
                          "source": canary, "options": ["rbind", "rw"]})
    bundle.args("true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert unchanged(canary), "the sysctl write went through the bind mount to the host file"
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "kernel" in r.stderr and "shmmax" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_sysctl_write_does_not_follow_a_bind_mount_over_proc_sys_dir(runtime, bundle, tmp_path):
    # the same one level up: a host directory (holding a canary named like the sysctl)
    # bound over /proc/sys/kernel
    d = tmp_path / "kernel"
    d.mkdir()
    canary = canary_file(tmp_path)
    os.rename(canary, str(d / "shmmax"))
    cfg = bundle.config
    cfg["linux"]["sysctl"] = {"kernel.shmmax": "4242"}
    cfg["mounts"].append({"destination": "/proc/sys/kernel", "type": "bind",
                          "source": str(d), "options": ["rbind", "rw"]})
    bundle.args("true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert unchanged(str(d / "shmmax"))
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_sysctl_write_still_works(runtime, bundle):
    bundle.config["linux"]["sysctl"] = {"kernel.shmmax": "4242", "fs.mqueue.msg_max": "17"}
    bundle.args("sh", "-c", "cat /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4242", "17"]


def test_oom_score_adj_is_written(runtime, bundle):
    # the parent's /proc/<pid>/oom_score_adj goes through the same code
    bundle.config["process"]["oomScoreAdj"] = 123
    bundle.args("cat", "/proc/self/oom_score_adj")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "123"


def test_sysctl_write_does_not_follow_a_mount_placed_by_a_hook(runtime, bundle, tmp_path):
    # the same bind, placed by a createContainer hook (in the container's mount
    # namespace, after the config's mounts and before pivot_root) instead of a config
    # mount, which a destination check might refuse first: the write itself must refuse
    canary = canary_file(tmp_path)
    target = os.path.join(bundle.rootfs, "proc/sys/kernel/shmmax")
    cfg = bundle.config
    cfg["linux"]["sysctl"] = {"kernel.shmmax": "4242"}
    cfg["hooks"] = {"createContainer": [{"path": "/bin/sh", "args": [
        "sh", "-c", 'exec mount --bind "$0" "$1"', canary, target]}]}
    bundle.args("true")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert unchanged(canary), "the sysctl write went through the hook's bind mount to the host file"
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "shmmax" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
