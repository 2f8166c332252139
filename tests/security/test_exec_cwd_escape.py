"""CVE-2024-21626: a cwd through a leaked host directory fd.

Until the exec, the container process holds fds of host directories (the state dir,
the cgroup v1 dirs it joins, namespace files).  `chdir("/proc/self/fd/N")` through
such an fd puts the cwd outside the container's root, and the container's program then
reads host files with "../../..".  pyrunc closes what the process must not have,
resolves the cwd inside the root without magic links, and checks where it landed.

The secret is a canary file the test wrote on the host; every fd number a runtime is
likely to leak (3 .. 19) is tried, through `exec --cwd` and `exec --process`.
"""
import json
import os

import pytest

from tests.conftest import in_userns, requires_root
from tests.integration.test_exec import start_sleeper

pytestmark = requires_root

SECRET = "canary-secret-4f1c"
UP = "../" * 40          # from any host directory, up to the host's "/"
FDS = range(3, 20)


@pytest.fixture
def canary(tmp_path):
    d = tmp_path / "canary-dir"
    d.mkdir()
    (d / "secret").write_text(SECRET + "\n")
    return str(d / "secret")


def leaked(r):
    return SECRET in r.stdout or SECRET in r.stderr


def refused_cleanly(r):
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_exec_cwd_flag_through_proc_self_fd(runtime, bundle, canary):
    start_sleeper(runtime, bundle)
    for fd in FDS:
        r = runtime.run("exec", "--cwd", "/proc/self/fd/%d" % fd, bundle.id,
                        "sh", "-c", "cat %s%s; pwd" % (UP, canary.lstrip("/")))
        assert not leaked(r), "fd %d: the exec'd process read the host canary" % fd
        refused_cleanly(r)
        assert "cwd" in r.stderr, r.stderr
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_process_json_cwd_through_proc_self_fd(runtime, bundle, canary, tmp_path):
    start_sleeper(runtime, bundle)
    for fd in FDS:
        proc = dict(bundle.config["process"])
        proc["cwd"] = "/proc/self/fd/%d" % fd
        proc["args"] = ["sh", "-c", "cat %s%s" % (UP, canary.lstrip("/"))]
        path = str(tmp_path / "process.json")
        with open(path, "w") as f:
            json.dump(proc, f)
        r = runtime.run("exec", "--process", path, bundle.id)
        assert not leaked(r), "fd %d: the exec'd process read the host canary" % fd
        refused_cleanly(r)
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_sees_no_host_fd(runtime, bundle):
    # nothing above stdio reaches the exec'd process (no --preserve-fds)
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", bundle.id, "ls", "/proc/self/fd")
    assert r.returncode == 0, r.stderr
    # ls itself has the directory it lists open: one more fd at most
    assert len(set(r.stdout.split()) - {"0", "1", "2"}) <= 1, r.stdout
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


@pytest.mark.parametrize("fd", [3, 4, 5, 6])
def test_create_with_cwd_through_proc_self_fd_is_refused(runtime, bundle, canary, fd):
    bundle.config["process"]["cwd"] = "/proc/self/fd/%d" % fd
    bundle.args("sh", "-c", "cat %s%s" % (UP, canary.lstrip("/")))
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert not leaked(r)
    refused_cleanly(r)
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_cwd_symlink_resolves_inside_the_root(runtime, bundle, canary):
    # an absolute symlink in the image is resolved against the container's root
    os.makedirs(bundle.rootfs + os.path.dirname(canary))
    with open(bundle.rootfs + canary, "w") as f:
        f.write("inside\n")
    os.symlink(os.path.dirname(canary), bundle.rootfs + "/link")
    bundle.config["process"]["cwd"] = "/link"
    bundle.args("sh", "-c", "cat secret; pwd")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["inside", os.path.dirname(canary)]


def test_create_can_chdir_if_only_root_has_access(runtime, bundle):
    # runc enters the cwd before dropping privileges: a 0700 root directory works as
    # cwd for uid 1000 (the process then sits in a directory it cannot list)
    os.makedirs(bundle.rootfs + "/private")
    os.chmod(bundle.rootfs + "/private", 0o700)
    bundle.config["process"]["cwd"] = "/private"
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.args("sh", "-c", "pwd; id -u")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/private", "1000"]


def test_exec_user_with_no_access_to_cwd(runtime, bundle):
    # runc's cwd.bats: the container runs as uid 42 in its own 0700 directory; exec as
    # another user still enters it (the cwd is entered before the user switch)
    os.makedirs(bundle.rootfs + "/home42")
    os.chown(bundle.rootfs + "/home42", 42, 42)
    os.chmod(bundle.rootfs + "/home42", 0o700)
    bundle.config["process"]["cwd"] = "/home42"
    bundle.config["process"]["user"] = {"uid": 42, "gid": 42}
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", "--user", "1000", bundle.id, "pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "/home42"
    r = runtime.run("exec", "--user", "0", bundle.id, "pwd")
    assert r.returncode == 0, r.stderr
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_missing_cwd_fails_with_one_line(runtime, bundle):
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", "--user", "1000", "--cwd", "/no/such/dir", bundle.id, "pwd")
    refused_cleanly(r)
    assert 'chdir to cwd ("/no/such/dir") set in config.json failed: no such file or directory' in r.stderr, r.stderr
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_create_sets_up_user_before_chdir_if_needed(runtime, bundle):
    # runc's "create sets up user before chdir to cwd if needed": a directory that the
    # container's root cannot enter but its user can.  In a user namespace, root's
    # CAP_DAC_OVERRIDE does not cover a directory whose group is not mapped; uid 1000
    # owns it and enters it after the switch.
    with in_userns(bundle, gid_size=4000) as rootfs:
        mine = os.path.join(rootfs, "mine")
        os.mkdir(mine)
        os.chown(mine, 101000, 5555)     # owner: container uid 1000; group: not mapped
        os.chmod(mine, 0o700)
        cfg = bundle.config
        cfg["process"]["cwd"] = "/mine"
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
        bundle.args("pwd")
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "/mine"
        # and the container's root, which cannot enter it, fails with one line
        cfg["process"]["user"] = {"uid": 0, "gid": 0}
        bundle.id += "-root"
        bundle.args("pwd")
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        refused_cleanly(r)
        assert "chdir to cwd" in r.stderr and "permission denied" in r.stderr, r.stderr
        bundle.id = bundle.id[:-5]
