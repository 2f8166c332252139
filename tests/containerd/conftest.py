"""A real containerd (Debian's 1.6) of our own, with pyrunc as the runc binary of the
runc v2 shim, and a throw-away docker-registry on 127.0.0.1 holding a busybox image
built locally.

containerd gets its own config, root, state and sockets under a temp directory, the
CRI plugin off, and the tests their own namespace; everything is stopped and removed
at the end of the session.  pyrunc is found relative to this checkout.
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


if not (_have("containerd") and _have("ctr") and _have("docker-registry")):
    # make test installs them (Makefile APT_PKGS); a bare pytest run without them
    # cannot test this caller at all
    pytest.skip("containerd, ctr or docker-registry not installed (make deps)", allow_module_level=True)


class Containerd:
    def __init__(self, workdir):
        self.dir = workdir
        self.sock = os.path.join(workdir, "containerd.sock")
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

    def stop(self):
        if self.proc is None:
            return
        # shims are containerd's children in their own sessions: kill them too
        for line in subprocess.run(["pgrep", "-f", "containerd-shim-runc-v2 -namespace " + NAMESPACE],
                                   capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(line), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
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
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def containerd(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    d = Containerd(str(tmp_path_factory.mktemp("containerd")))
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def image(containerd, tmp_path_factory):
    """a busybox image built here, pushed to a throw-away registry, pulled by containerd"""
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
        r = containerd.ctr("image", "pull", "--plain-http", ref)
        assert r.returncode == 0, r.stderr
        yield ref
    finally:
        reg.stop()


def pyrunc_root():
    """where the runc v2 shim keeps pyrunc's state for our namespace"""
    return os.path.join("/run/containerd/runc", NAMESPACE)


def leftovers(cid):
    """pyrunc state, cgroups and mounts that still name container cid"""
    found = []
    root = pyrunc_root()
    if os.path.exists(os.path.join(root, cid)):
        found.append(os.path.join(root, cid))
    for ctrl in os.listdir("/sys/fs/cgroup"):
        p = os.path.join("/sys/fs/cgroup", ctrl, NAMESPACE, cid)
        if os.path.isdir(p):
            found.append(p)
    with open("/proc/self/mountinfo") as f:
        found += [l.split()[4] for l in f if "/%s/" % cid in l.split()[4] or l.split()[4].endswith("/" + cid)]
    return found
