"""SELinux applied: process.selinuxLabel (exec --process-label) is the program's context
from its execve, and linux.mountLabel the context= of the container's filesystems.

Debian's kernel has SELinux built in but no policy comes with it, and without a policy
SELinux has no labels (every task is "kernel") and pyrunc, as runc, ignores them.  So in
the SELinux VM (`make test-lsm`: tests/vm/run-vm -m selinux, permissive) the module
first compiles tests/lsm/minimal.cil with secilc and loads it.  Only there: loading a
toy policy on a real host would replace its own."""
import os
import shutil
import subprocess
import time
import uuid

import pytest

from pyrunc import lsm
from tests.conftest import requires_root

HERE = os.path.dirname(os.path.abspath(__file__))
IN_VM = os.environ.get("PYRUNC_VM") == "selinux"

pytestmark = [
    requires_root,
    pytest.mark.skipif(not os.path.exists("/sys/fs/selinux/load"), reason="SELinux is not on in this kernel "
                       "(make test-lsm)"),
]

LABEL = "system_u:system_r:container_t:s0:c1,c2"
MOUNT_LABEL = "system_u:object_r:container_file_t:s0:c1,c2"


@pytest.fixture(scope="module", autouse=True)
def policy(tmp_path_factory):
    if not lsm.selinux_on():
        if not IN_VM:
            pytest.skip("SELinux has no policy loaded (the tests load one only in the VM of make test-lsm)")
        if shutil.which("secilc") is None:
            pytest.skip("no secilc to compile the test policy (make vm-deps)")
        out = tmp_path_factory.mktemp("selinux") / "policy"
        r = subprocess.run(["secilc", "-o", str(out), "-f", "/dev/null", os.path.join(HERE, "minimal.cil")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        with open("/sys/fs/selinux/load", "wb") as f:
            f.write(out.read_bytes())
        assert lsm.selinux_on()
    yield


def _mount_contexts(mounts_text):
    """{mount point: context= option} from a /proc/<pid>/mounts text"""
    out = {}
    for line in mounts_text.splitlines():
        f = line.split()
        for opt in f[3].split(","):
            if opt.startswith("context="):
                out[f[1]] = opt[len("context="):].strip('"')
    return out


def _labelled(bundle, *args):
    bundle.config["process"]["selinuxLabel"] = LABEL
    bundle.config["linux"]["mountLabel"] = MOUNT_LABEL
    bundle.args(*args)


PROBE = ["sh", "-c", "cat /proc/self/attr/current; echo; cat /proc/self/mounts"]


def check_labels(out):
    label, mounts = out.split("\n", 1)
    assert label.strip("\0") == LABEL
    ctx = _mount_contexts(mounts)
    # context= on tmpfs and devpts (mqueue's root inode is labelled instead: the
    # create/start test reads it); proc and sysfs take none.  A context with a comma
    # is shown quoted, which the split above cuts: compare the start.
    for mnt in ("/dev", "/dev/pts", "/dev/shm"):
        assert MOUNT_LABEL.startswith(ctx.get(mnt, "-")), (mnt, ctx)
    assert "/proc" not in ctx and "/sys" not in ctx


def test_run_labels_the_process_and_its_mounts(runtime, bundle):
    _labelled(bundle, *PROBE)
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    check_labels(r.stdout)


def test_create_start_labels_from_the_exec(runtime, bundle):
    _labelled(bundle, "sh", "-c", "exec > /out; " + PROBE[2])
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    pid = runtime.state(bundle.id)["pid"]
    # before start: the init still has pyrunc's context; its mounts already carry the label
    with open("/proc/%d/attr/current" % pid) as f:
        assert f.read().strip("\0\n") != LABEL
    root = "/proc/%d/root" % pid
    for d in ("dev", "dev/shm", "dev/mqueue"):
        assert os.getxattr(os.path.join(root, d), "security.selinux").rstrip(b"\0").decode() == MOUNT_LABEL
    assert runtime.run("start", bundle.id).returncode == 0
    out = os.path.join(bundle.rootfs, "out")
    end = time.monotonic() + 30
    while time.monotonic() < end and not (os.path.exists(out) and "mqueue" in open(out).read()):
        time.sleep(0.1)
    check_labels(open(out).read())
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_exec_process_label(runtime, bundle):
    bundle.args("sleep", "100")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    r = runtime.run("exec", "--process-label", LABEL, bundle.id, "cat", "/proc/self/attr/current")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip("\0\n") == LABEL
    r = runtime.run("exec", bundle.id, "cat", "/proc/self/attr/current")
    assert r.stdout.strip("\0\n") != LABEL
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_an_invalid_label_fails_create_and_leaves_nothing(runtime, bundle):
    bad = "system_u:system_r:no_such_t_%s:s0" % uuid.uuid4().hex[:6]
    bundle.config["process"]["selinuxLabel"] = bad
    bundle.args("true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert (r.returncode, r.stderr) == (1, "apply selinux label %s: invalid context\n" % bad)
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    bundle.config["process"]["selinuxLabel"] = LABEL
    bundle.config["linux"]["mountLabel"] = bad
    bundle.save()
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert (r.returncode, r.stderr) == (1, "apply selinux mount label %s: invalid context\n" % bad)
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_the_session_keyring_gets_the_process_label(runtime, box, keyjail):
    # as runc: the init writes its label to attr/keycreate before it makes _ses.<id>
    bundle = box
    _labelled(bundle, "sh", "-c", "sysprobe keyctl:0:-3:0 > /ses; exec sleep 100")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    try:
        ses = os.path.join(bundle.rootfs, "ses")
        end = time.monotonic() + 30
        while time.monotonic() < end and not (os.path.exists(ses) and open(ses).read().strip()):
            time.sleep(0.05)
        serial = open(ses).read().strip()
        assert int(serial) > 0, serial
        r = subprocess.run([keyjail, "--label", serial], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip("\0\n") == LABEL
    finally:
        assert runtime.run("delete", "--force", bundle.id).returncode == 0
