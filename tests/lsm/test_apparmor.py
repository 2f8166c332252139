"""AppArmor applied: process.apparmorProfile and exec --apparmor confine the container's
program from its execve.  Needs a kernel with AppArmor on and apparmor_parser: `make
test-lsm` runs this in a VM booting Debian's kernel (tests/vm/run-vm -m apparmor)."""
import os
import shutil
import subprocess
import time
import uuid

import pytest

from pyrunc import lsm
from tests.conftest import requires_root

pytestmark = [
    requires_root,
    pytest.mark.skipif(not lsm.apparmor_on(), reason="AppArmor is not on in this kernel (make test-lsm)"),
    pytest.mark.skipif(shutil.which("apparmor_parser") is None, reason="no apparmor_parser (make vm-deps)"),
]

# everything a busybox shell needs, minus one canary file the test makes in the rootfs
PROFILE = """
profile %s flags=(attach_disconnected,mediate_deleted) {
  file,
  /** ix,
  capability,
  network,
  signal,
  ptrace,
  unix,
  deny /canary r,
}
"""


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    name = "pyrunc-test-" + uuid.uuid4().hex[:8]
    path = tmp_path_factory.mktemp("aa") / "profile"
    path.write_text(PROFILE % name)
    r = subprocess.run(["apparmor_parser", "-r", "-K", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert name in lsm.loaded_profiles()
    yield name
    subprocess.run(["apparmor_parser", "-R", "-K", str(path)], capture_output=True)


@pytest.fixture
def canary(bundle):
    with open(os.path.join(bundle.rootfs, "canary"), "w") as f:
        f.write("canary-content\n")
    return bundle


# what the container reports: its label, then whether it could read the canary
PROBE = ["sh", "-c", "cat /proc/self/attr/current; echo; cat /canary 2>&1; echo rc=$?"]


def check_confined(out, name):
    label, rest = out.split("\n", 1)
    assert label.strip("\0") == name + " (enforce)"
    assert "canary-content" not in rest
    assert "Permission denied" in rest and "rc=1" in rest, rest


def test_unconfined_without_a_profile(runtime, canary):
    # the baseline the other tests differ from: the canary is readable
    canary.args(*PROBE)
    r = runtime.run("run", "-b", canary.path, canary.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("unconfined") and "canary-content" in r.stdout


def test_run_confines_the_container(runtime, canary, profile):
    canary.config["process"]["apparmorProfile"] = profile
    canary.args(*PROBE)
    r = runtime.run("run", "-b", canary.path, canary.id)
    assert r.returncode == 0, r.stderr
    check_confined(r.stdout, profile)


def _wait_file(path, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and open(path).read().count("rc=") == 1:
            return open(path).read()
        time.sleep(0.1)
    raise AssertionError("no output in %s" % path)


def test_create_start_confines_the_init_from_its_exec(runtime, canary, profile):
    canary.config["process"]["apparmorProfile"] = profile
    canary.args("sh", "-c", "exec > /out; " + PROBE[2])
    r = runtime.run("create", "-b", canary.path, canary.id)
    assert r.returncode == 0, r.stderr
    # created: the init waits before its execve, still unconfined (the label is taken
    # at the exec, as runc's)
    pid = runtime.state(canary.id)["pid"]
    with open("/proc/%d/attr/current" % pid) as f:
        assert f.read().strip("\0\n") == "unconfined"
    assert runtime.run("start", canary.id).returncode == 0
    check_confined(_wait_file(os.path.join(canary.rootfs, "out")), profile)
    assert runtime.run("delete", "--force", canary.id).returncode == 0


def test_exec_apparmor_confines_the_exec_process_only(runtime, canary, profile):
    canary.args("sleep", "100")
    r = runtime.run("run", "-d", "-b", canary.path, canary.id)
    assert r.returncode == 0, r.stderr
    r = runtime.run("exec", "--apparmor", profile, canary.id, *PROBE)
    assert r.returncode == 0, r.stderr
    check_confined(r.stdout, profile)
    # the init keeps its own (no) profile
    pid = runtime.state(canary.id)["pid"]
    with open("/proc/%d/attr/current" % pid) as f:
        assert f.read().strip("\0\n") == "unconfined"
    # and an exec without one is not confined
    r = runtime.run("exec", canary.id, "cat", "/canary")
    assert r.returncode == 0 and "canary-content" in r.stdout
    assert runtime.run("delete", "--force", canary.id).returncode == 0


def test_a_profile_that_is_not_loaded_fails_create_and_leaves_nothing(runtime, canary):
    name = "pyrunc-not-loaded-" + uuid.uuid4().hex[:8]
    canary.config["process"]["apparmorProfile"] = name
    canary.args("true")
    before = set(os.listdir("/sys/fs/cgroup"))
    r = runtime.run("create", "-b", canary.path, canary.id)
    assert r.returncode == 1
    assert r.stderr == "apply apparmor profile %s: profile is not loaded\n" % name
    assert not os.path.exists(os.path.join(runtime.root, canary.id))
    assert set(os.listdir("/sys/fs/cgroup")) == before
    # and exec --apparmor of one is refused the same way
    canary.config["process"].pop("apparmorProfile")
    canary.args("sleep", "100")
    assert runtime.run("run", "-d", "-b", canary.path, canary.id).returncode == 0
    r = runtime.run("exec", "--apparmor", name, canary.id, "true")
    assert r.returncode != 0 and r.stderr.endswith("apply apparmor profile %s: profile is not loaded\n" % name)
    assert runtime.run("delete", "--force", canary.id).returncode == 0


def test_a_fake_proc_in_the_container_is_refused(runtime, canary, profile):
    # CVE-2019-16884's shape: the container's /proc is not procfs, so a write there
    # would set nothing and the program would run unconfined; create must fail instead
    canary.config["process"]["apparmorProfile"] = profile
    canary.config["mounts"] = [m for m in canary.config["mounts"] if m["destination"] != "/proc"]
    canary.config["mounts"].append({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"})
    canary.config["linux"]["maskedPaths"] = []
    canary.config["linux"]["readonlyPaths"] = []
    canary.args("true")
    r = runtime.run("run", "-b", canary.path, canary.id)
    assert r.returncode != 0
    assert "not the root of a procfs" in r.stderr and r.stderr.count("\n") == 1, r.stderr
