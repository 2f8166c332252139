"""Shared fixtures: real bundles, a private state root, leftover checks.

Integration tests run pyrunc as a subprocess, exactly as a caller would, against a
busybox rootfs from Debian's busybox-static.  Each test gets its own --root, and after
it we check that nothing is left behind: no state directory, no cgroup, no mount.
"""
import contextlib
import json
import os
import shutil
import subprocess
import uuid

import pytest

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# PYRUNC=/path/to/pyrunc runs the suite against another build of pyrunc
PYRUNC = os.environ.get("PYRUNC") or os.path.join(ROOT_DIR, ".venv", "bin", "pyrunc")
BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "pyrunc-test"

APPLETS = ("sh", "true", "false", "echo", "cat", "ls", "id", "hostname", "mount", "sleep", "ps",
           "grep", "head", "readlink", "stat", "touch", "mkdir", "kill", "wc", "env", "pwd",
           "test", "ulimit", "umask", "tr", "printf", "dd", "rm", "sed", "mknod", "ln", "uname", "mv")


def is_root():
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (namespaces, mounts, cgroups)")


def make_rootfs(path):
    os.makedirs(os.path.join(path, "bin"), exist_ok=True)
    for d in ("etc", "proc", "sys", "dev", "tmp", "root"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    for a in APPLETS:
        link = os.path.join(path, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")


_ROOTFS_CACHE = {}


class Bundle:
    """A bundle directory with a busybox rootfs and an editable config."""

    def __init__(self, path, cid):
        self.path = path
        self.id = cid
        self.rootfs = os.path.join(path, "rootfs")
        subprocess.run([PYRUNC, "spec", "--bundle", path], check=True)
        with open(self.config_path) as f:
            self.config = json.load(f)
        self.config["process"]["terminal"] = False
        # the default spec has a read-only root; most tests write into it
        self.config["root"]["readonly"] = False
        self.config["linux"]["cgroupsPath"] = "/%s/%s" % (CGROUP_PARENT, cid)
        self.save()

    @property
    def config_path(self):
        return os.path.join(self.path, "config.json")

    def save(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=1)

    def args(self, *args):
        self.config["process"]["args"] = list(args)
        self.save()


class Runtime:
    """Runs pyrunc with a private --root; remembers the ids it created."""

    def __init__(self, root):
        self.root = root
        self.ids = set()

    def run(self, *args, check=False, input=None, timeout=60, env=None, **kw):
        """Run pyrunc; stdout and stderr go to regular files, as runtime-tools does:
        the container init inherits them, so a pipe would not reach EOF while it lives."""
        import tempfile

        cmd = [PYRUNC, "--root", self.root] + list(args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(cmd, stdout=out, stderr=err, input=input,
                               stdin=None if input is not None else subprocess.DEVNULL,
                               timeout=timeout, env=env, text=input is not None, **kw)
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(cmd, p.returncode, out.read().decode(), err.read().decode())
        if check and r.returncode:
            raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr))
        return r

    def state(self, cid):
        r = self.run("state", cid, check=True)
        return json.loads(r.stdout)


def new_id(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


@pytest.fixture
def runtime(tmp_path):
    root = str(tmp_path / "state")
    rt = Runtime(root)
    yield rt
    # leftovers: force-delete what a failed test left, then assert nothing remains
    for cid in list(os.listdir(root)) if os.path.isdir(root) else []:
        rt.run("delete", "--force", cid)


def build_static(tmp_path_factory, name, src):
    """a C program from tests/, built static (it also runs inside a busybox rootfs)"""
    out = str(tmp_path_factory.mktemp(name) / name)
    subprocess.run(["gcc", "-static", "-O2", "-o", out, os.path.join(ROOT_DIR, "tests", src)], check=True)
    return out


@pytest.fixture(scope="session")
def sysprobe(tmp_path_factory):
    """tests/seccomp/sysprobe: raw system calls, their results printed"""
    return build_static(tmp_path_factory, "sysprobe", "seccomp/sysprobe.c")


@pytest.fixture(scope="session")
def keyjail(tmp_path_factory):
    """tests/security/keyjail: a fresh session keyring holding a canary key, then exec"""
    return build_static(tmp_path_factory, "keyjail", "security/keyjail.c")


@pytest.fixture
def box(bundle, sysprobe):
    """the bundle, with sysprobe at /bin/sysprobe"""
    dst = os.path.join(bundle.rootfs, "bin", "sysprobe")
    shutil.copy(sysprobe, dst)
    os.chmod(dst, 0o755)
    return bundle


@pytest.fixture(scope="session")
def base_rootfs(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("rootfs") / "rootfs")
    make_rootfs(path)
    return path


@pytest.fixture
def bundle(tmp_path, base_rootfs):
    """a fresh bundle whose rootfs is a copy of the busybox rootfs"""
    cid = new_id()
    path = str(tmp_path / "bundle")
    os.makedirs(path)
    shutil.copytree(base_rootfs, os.path.join(path, "rootfs"), symlinks=True)
    b = Bundle(path, cid)
    yield b
    assert_no_leftovers(b)


@contextlib.contextmanager
def in_userns(bundle, host_id=100000, gid_size=65536):
    """the bundle's container in a new user namespace (container root = host uid
    host_id), its rootfs moved where that uid can reach it: every directory above a
    rootfs must be searchable by the container's root (pytest's temp dirs are 0700),
    as with runc.  sysfs belongs to the network namespace's owner and cgroup v1 cannot
    be mounted fresh there: those mounts are left out."""
    import tempfile

    top = tempfile.mkdtemp(prefix="pyrunc-userns-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        shutil.copytree(bundle.rootfs, os.path.join(top, "rootfs"), symlinks=True)
        cfg = bundle.config
        cfg["root"]["path"] = os.path.join(top, "rootfs")
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": gid_size}]
        cfg["mounts"] = [m for m in cfg["mounts"] if m["type"] not in ("sysfs", "cgroup")]
        os.chown(os.path.join(top, "rootfs"), host_id, host_id)
        bundle.save()
        yield os.path.join(top, "rootfs")
    finally:
        shutil.rmtree(top)


def cgroup_dirs(cid):
    """every cgroup directory named after the container, in any hierarchy"""
    found = []
    base = "/sys/fs/cgroup"
    if not os.path.isdir(base):
        return found
    for ctrl in os.listdir(base):
        p = os.path.join(base, ctrl, CGROUP_PARENT, cid)
        if os.path.isdir(p):
            found.append(p)
    return found


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def assert_no_leftovers(b):
    assert cgroup_dirs(b.id) == [], "cgroups left behind"
    assert mounts_under(b.path) == [], "mounts left behind"
