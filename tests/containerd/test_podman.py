"""pyrunc under podman 4.3 + conmon (`podman --runtime PATH`), the other real caller
of runtime-cli-contract.md (section 2.3): conmon runs create and exec, podman itself
start, kill, pause, resume and `delete --force`, with no --root (pyrunc's default,
/run/pyrunc) and no log flags unless the runtime's basename is `runc`.

Podman's storage, run and tmp dirs are under a temp dir and its containers' cgroups
under a parent of their own; the image comes from the session's local registry.
"""
import os
import pty
import select
import shutil
import subprocess
import time
import uuid

import pytest

from tests.containerd.conftest import PYRUNC

pytestmark = [
    pytest.mark.skipif(shutil.which("podman") is None or shutil.which("conmon") is None,
                       reason="podman or conmon not installed (apt install podman)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="rootful podman needs root"),
]

DEFAULT_ROOT = "/run/pyrunc"  # podman passes no --root: pyrunc's default (runc's is /run/runc)
# podman asks for nofile 1048576, above the hard limit this host gives us; raising a
# hard limit needs CAP_SYS_RESOURCE, which the container does not have (runc fails the
# same way, "error setting rlimit type 7"), so ask for limits below ours
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


class Podman:
    def __init__(self, d, runtime):
        self.d = d
        self.runtime = runtime
        self.cgroup_parent = "/pyrunc-podman-" + uuid.uuid4().hex[:6]

    def __call__(self, *args, stdio=None, timeout=60):
        cmd = ["podman", "--root", self.d + "/storage", "--runroot", self.d + "/run",
               "--tmpdir", self.d + "/tmp", "--network-config-dir", self.d + "/net",
               "--cgroup-manager", "cgroupfs", "--events-backend", "file",
               "--runtime", self.runtime] + list(args)
        if stdio is not None:
            return subprocess.Popen(cmd, stdin=stdio, stdout=stdio, stderr=stdio, start_new_session=True)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def run(self, *args):
        return self("run", "--network", "none", "--cgroup-parent", self.cgroup_parent, *ULIMITS, *args)


@pytest.fixture(scope="module")
def podman(tmp_path_factory, registry_image):
    d = str(tmp_path_factory.mktemp("podman"))
    # named runc, podman passes --log-format=json --log (runtime_supports_json)
    os.mkdir(d + "/bin")
    os.symlink(PYRUNC, d + "/bin/runc")
    p = Podman(d, d + "/bin/runc")
    had_run_containers = os.path.exists("/run/containers")
    r = p("pull", "-q", "--tls-verify=false", registry_image)
    assert r.returncode == 0, r.stderr
    p.image = registry_image
    try:
        yield p
    finally:
        forced = []
        r = p("ps", "-a", "-q")
        if r.stdout.split():
            forced.append("podman containers %s" % r.stdout.split())
            p("rm", "-a", "-f", "-t", "0")
        p("system", "reset", "-f")
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if d in line]
        for m in sorted(mounts, key=len, reverse=True):
            forced.append("mount " + m)
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        for ctrl in os.listdir("/sys/fs/cgroup"):
            top = os.path.join("/sys/fs/cgroup", ctrl, p.cgroup_parent.lstrip("/"))
            if os.path.isdir(top):
                # conmon's own cgroup (<parent>/conmon) is podman's, and stays
                subs = [n for n in os.listdir(top) if n.startswith("libpod-")]
                forced += ["cgroup %s/%s" % (top, n) for n in subs]
                if os.path.ismount(os.path.join("/sys/fs/cgroup", ctrl)):
                    subprocess.run(["find", top, "-depth", "-type", "d", "-delete"], stderr=subprocess.DEVNULL)
                else:
                    # a controller with no hierarchy mounted here (hugetlb, net_cls...):
                    # conmon still makes its directory and a cgroup.procs *file* in the
                    # /sys/fs/cgroup tmpfs, which rmdir alone cannot remove
                    shutil.rmtree(top, ignore_errors=True)
        # podman makes /run/containers/networks whatever --network-config-dir says
        if not had_run_containers:
            shutil.rmtree("/run/containers", ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
    assert forced == [], "left behind: %s" % forced


def _no_state_left(cid_prefix):
    left = [n for n in os.listdir(DEFAULT_ROOT) if n.startswith(cid_prefix)] \
        if os.path.isdir(DEFAULT_ROOT) else []
    assert left == [], left


def _full_id(podman, name):
    r = podman("inspect", "-f", "{{.Id}}", name)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _with_tty(podman, *args):
    """run podman with a pty as its stdio (exec -t wants a terminal); (rc, output)"""
    master, slave = pty.openpty()
    p = podman(*args, stdio=slave)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        return p.wait(10), out.decode(errors="replace")
    finally:
        os.close(master)


def test_run_rm_output_and_exit_code(podman):
    name = "p-" + uuid.uuid4().hex[:8]
    r = podman.run("--rm", "--name", name, podman.image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n" and r.stderr == "err\n"
    assert podman("ps", "-a", "-q", "--filter", "name=" + name).stdout == ""


def test_detached_container_exec_pause_top_stop(podman):
    name = "p-" + uuid.uuid4().hex[:8]
    r = podman.run("-d", "--name", name, podman.image, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = _full_id(podman, name)
    assert os.path.isdir(os.path.join(DEFAULT_ROOT, cid))  # no --root: the default one
    try:
        r = podman("exec", name, "sh", "-c", "echo in-exec; exit 4")
        assert (r.returncode, r.stdout) == (4, "in-exec\n"), r.stderr
        r = podman("exec", "-u", "1000:1000", name, "id", "-u")
        assert r.stdout == "1000\n", r.stderr
        rc, out = _with_tty(podman, "exec", "-t", name, "sh", "-c", "tty; exit 5")
        assert rc == 5 and "/dev/pts/0" in out, out
        assert podman("pause", name).returncode == 0
        assert podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "paused"
        assert podman("unpause", name).returncode == 0
        assert podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "running"
        r = podman("top", name, "args")
        assert r.returncode == 0 and "sleep 1000" in r.stdout, r
        # kill 15 (sleep as pid 1 ignores it), kill 9 after the timeout, delete --force
        r = podman("stop", "-t", "1", name)
        assert r.returncode == 0, r.stderr
        assert podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "exited"
    finally:
        assert podman("rm", "-f", "-t", "0", name).returncode == 0
    _no_state_left(cid)


@pytest.mark.parametrize("basename", ["runc", "pyrunc"])
@pytest.mark.parametrize("prog,code,phrase", [("/no/such", 127, "no such file or directory"),
                                              ("/etc/passwd", 126, "permission denied")])
def test_failed_create_maps_to_127_126(podman, basename, prog, code, phrase):
    """named runc, the message reaches podman through the JSON --log; named pyrunc,
    through stderr only; either way podman maps the phrase to 127/126.  Then podman's
    cleanup runs `delete --force` on a container that does not exist, which must pass."""
    runtime = podman.runtime if basename == "runc" else PYRUNC
    saved, podman.runtime = podman.runtime, runtime
    try:
        name = "p-" + uuid.uuid4().hex[:8]
        r = podman.run("--rm", "--name", name, podman.image, prog)
    finally:
        podman.runtime = saved
    assert r.returncode == code, r.stderr
    assert phrase in r.stderr and prog in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # one line: no second record, no traceback
    assert podman("ps", "-a", "-q", "--filter", "name=" + name).stdout == ""
