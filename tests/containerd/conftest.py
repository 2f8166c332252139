"""A real containerd (Debian's 1.6) of our own, with pyrunc as the runc binary of the
runc v2 shim, and a throw-away docker-registry on 127.0.0.1 holding a busybox image
built locally.

containerd gets its own config, root, state and sockets under a temp directory, the
CRI plugin off, and the tests their own namespace; the shim's runc root (`--runc-root`)
and ctr's stdio fifos (`--fifo-dir`) are under that directory too, because their
defaults (/run/containerd/runc/<ns>, /run/containerd/fifo) would outlive the session.
Everything is stopped and removed at the end, and the teardown fails if a shim,
mount or cgroup of ours was still there.  pyrunc is found relative to this checkout.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYRUNC = os.environ.get("PYRUNC") or os.path.join(TOP, ".venv", "bin", "pyrunc")
NAMESPACE = "pyrunc-test-%s" % uuid.uuid4().hex[:6]

CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
"""


def _have(tool):
    return shutil.which(tool) is not None


if not _have("docker-registry"):
    # make test installs it (Makefile APT_PKGS); without it there is no image to run
    pytest.skip("docker-registry not installed (make deps)", allow_module_level=True)


class Containerd:
    def __init__(self, workdir):
        self.dir = workdir
        self.sock = os.path.join(workdir, "containerd.sock")
        # what the shim passes to pyrunc as --root is <runc_root>/<namespace>
        self.runc_root = os.path.join(workdir, "runc")
        self.fifo_dir = os.path.join(workdir, "fifo")
        self.proc = None

    def start(self):
        cfg = os.path.join(self.dir, "config.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(d=self.dir))
        log = open(os.path.join(self.dir, "containerd.log"), "wb")
        self.proc = subprocess.Popen(["containerd", "--config", cfg], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("containerd exited: %s" % self.log())
            if os.path.exists(self.sock) and self.ctr("version").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("containerd did not start: %s" % self.log())

    def log(self):
        with open(os.path.join(self.dir, "containerd.log"), errors="replace") as f:
            return f.read()[-2000:]

    def ctr(self, *args, timeout=60, **kw):
        return subprocess.run(["ctr", "--address", self.sock, "-n", NAMESPACE] + list(args),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)

    def run(self, *args, **kw):
        """ctr run with pyrunc as the runc v2 shim's binary"""
        return self.ctr("run", "--runc-binary", PYRUNC, "--runc-root", self.runc_root,
                        "--fifo-dir", self.fifo_dir, *args, **kw)

    def exec(self, *args, **kw):
        return self.ctr("task", "exec", "--fifo-dir", self.fifo_dir, *args, **kw)

    def shims(self):
        """pids of the shims serving our namespace (each container has its own)"""
        out = subprocess.run(["pgrep", "-f", "containerd-shim-runc-v2 -namespace %s " % NAMESPACE],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self):
        """stop everything; return what had to be killed or removed by force"""
        if self.proc is None:
            return []
        forced = []
        # a container the tests did not remove: pyrunc's own delete --force kills its
        # processes and removes its cgroups and state (what the shim would have done)
        ns_root = os.path.join(self.runc_root, NAMESPACE)
        for cid in self.containers_in(ns_root):
            forced.append("container " + cid)
            subprocess.run([PYRUNC, "--root", ns_root, "delete", "--force", cid],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        # a shim exits when its container is deleted (give the last one a moment): one
        # still there is a leftover.  Shims are in their own sessions: kill them here.
        deadline = time.monotonic() + 3
        while self.shims() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.shims():
            forced.append("shim pid %d" % pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        # containerd's snapshots are mounts under its root: none may outlive it
        with open("/proc/self/mountinfo") as f:
            mounts = [l.split()[4] for l in f if self.dir in l]
        for m in sorted(mounts, key=len, reverse=True):
            forced.append("mount " + m)
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        # the containers' cgroups are /<namespace>/<id> (ctr's cgroupsPath)
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = os.path.join("/sys/fs/cgroup", ctrl, NAMESPACE)
            if os.path.isdir(d):
                forced.append("cgroup " + d)
                subprocess.run(["find", d, "-depth", "-type", "d", "-delete"], stderr=subprocess.DEVNULL)
        if self.containers_in(ns_root):
            forced.append("pyrunc state in " + ns_root)
        return forced

    @staticmethod
    def containers_in(root):
        # (pyrunc keeps compiled seccomp filters in <root>/.cache)
        return [n for n in os.listdir(root) if not n.startswith(".")] if os.path.isdir(root) else []


@pytest.fixture(scope="session")
def containerd(tmp_path_factory):
    if not (_have("containerd") and _have("ctr")):
        pytest.skip("containerd or ctr not installed (make deps)")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    d = Containerd(str(tmp_path_factory.mktemp("containerd")))
    d.start()
    try:
        yield d
    finally:
        forced = d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)
    assert forced == [], "left behind by the tests: %s" % forced


@pytest.fixture(scope="session")
def registry_image(tmp_path_factory):
    """a busybox image built here and pushed to a throw-away registry: its reference"""
    sys.path.insert(0, TOP)
    from tests.image import build_image as bi
    from tests.image.registry import Registry

    work = tmp_path_factory.mktemp("ctr-image")
    reg = Registry(str(work / "registry"))
    reg.start()
    try:
        layout = str(work / "layout")
        bi.build_image(layout, "busybox", [bi.busybox_layer()])
        ref = "%s/test/busybox:1" % reg.address
        bi.push_image(layout, "busybox", ref)
        yield ref
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def image(containerd, registry_image):
    """that image, pulled by containerd"""
    r = containerd.ctr("image", "pull", "--plain-http", registry_image)
    assert r.returncode == 0, r.stderr
    return registry_image


def leftovers(containerd, cid):
    """pyrunc state, cgroups and mounts that still name container cid"""
    found = []
    root = os.path.join(containerd.runc_root, NAMESPACE)
    if os.path.exists(os.path.join(root, cid)):
        found.append(os.path.join(root, cid))
    for ctrl in os.listdir("/sys/fs/cgroup"):
        p = os.path.join("/sys/fs/cgroup", ctrl, NAMESPACE, cid)
        if os.path.isdir(p):
            found.append(p)
    with open("/proc/self/mountinfo") as f:
        found += [l.split()[4] for l in f if "/%s/" % cid in l.split()[4] or l.split()[4].endswith("/" + cid)]
    return found
