"""SIGKILL of `create`, `run -d` and `delete` at random moments: `delete --force`
then exits 0 within a second and leaves no state, cgroup, mount or process.

Seeded (PYRUNC_KILL_SEED), PYRUNC_KILL_CASES iterations (30 in `make test`).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests.conftest import PYRUNC, CGROUP_PARENT, cgroup_dirs, make_rootfs, mounts_under, requires_root
from tests.robust.fuzzlib import processes_in

pytestmark = requires_root

SEED = os.environ.get("PYRUNC_KILL_SEED", "pyrunc-kill-1")
CASES = int(os.environ.get("PYRUNC_KILL_CASES", "30"))
# the bound the issue sets; PYRUNC_KILL_SLACK scales it on a loaded machine
DELETE_BOUND = 1.0 * float(os.environ.get("PYRUNC_KILL_SLACK", "1.5"))


@pytest.fixture(scope="module")
def kill_bundle(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("kill") / "bundle")
    make_rootfs(os.path.join(path, "rootfs"))
    subprocess.run([PYRUNC, "spec", "--bundle", path], check=True)
    os.rename(os.path.join(path, "config.json"), os.path.join(path, "config.base"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(bundle, cid, variant):
    with open(os.path.join(bundle, "config.base")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "30"]
    cfg["root"]["readonly"] = False
    cfg["linux"]["cgroupsPath"] = "/%s/%s" % (CGROUP_PARENT, cid)
    cfg["linux"]["resources"] = {"pids": {"limit": 50}, "memory": {"limit": 64 << 20}}
    if variant == 1:
        # stage-1: the init is a grandchild, its pid arrives over the socket
        cfg["linux"]["namespaces"].append({"type": "time"})
    elif variant == 2:
        # a slow createRuntime hook: a wider window after the init exists
        cfg["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "0.03"]}]}
    with open(os.path.join(bundle, "config.json.%s" % cid), "w") as f:
        json.dump(cfg, f)
    os.replace(os.path.join(bundle, "config.json.%s" % cid), os.path.join(bundle, "config.json"))


def _run(root, *args, timeout=10):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run([PYRUNC, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                           stdout=out, stderr=err, timeout=timeout)
        err.seek(0)
        out.seek(0)
        return p.returncode, out.read().decode(), err.read().decode()


def _kill_after(root, delay, *args):
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([PYRUNC, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                             stdout=out, stderr=out)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        return p.returncode


@pytest.mark.parametrize("index", range(CASES))
def test_kill_at_random_moment(kill_bundle, tmp_path, index):
    rng = random.Random("%s/%d" % (SEED, index))
    root = str(tmp_path / "state")
    cid = "kc-%d" % index
    verb = rng.choice(["create", "run", "delete"])
    delay = rng.uniform(0, 0.060)
    _config(kill_bundle, cid, rng.randrange(3))
    rootfs = os.path.join(kill_bundle, "rootfs")
    what = "%s killed after %.1f ms" % (verb, delay * 1000)
    try:
        if verb == "create":
            _kill_after(root, delay, "create", "--bundle", kill_bundle, cid)
        elif verb == "run":
            _kill_after(root, delay, "run", "-d", "--bundle", kill_bundle, cid)
        else:
            rc, _, err = _run(root, "create", "--bundle", kill_bundle, cid)
            assert rc == 0, err
            _kill_after(root, delay, "delete", "--force", cid)
        # whatever state says, it says it in one piece
        rc, out, err = _run(root, "state", cid)
        if rc == 0:
            assert json.loads(out)["status"] in ("creating", "created", "running", "stopped"), out
        else:
            assert "does not exist" in err and len(err.splitlines()) == 1, (what, err)
    finally:
        t = time.monotonic()
        rc, _, err = _run(root, "delete", "--force", cid)
        took = time.monotonic() - t
    assert rc == 0, (what, err)
    assert took < DELETE_BOUND, (what, took)
    assert not os.path.exists(os.path.join(root, cid)), what
    assert cgroup_dirs(cid) == [], what
    assert mounts_under(kill_bundle) == [], what
    # a dying process may take a moment to leave /proc after delete returned
    for _ in range(50):
        left = processes_in(rootfs, cid)
        if not left:
            break
        time.sleep(0.01)
    assert left == [], (what, left)


def test_state_and_delete_force_during_a_live_create(kill_bundle, tmp_path):
    """a create that waits in a createRuntime hook: `state` says creating, and
    `delete --force` does not wait for it longer than its bound"""
    root = str(tmp_path / "state")
    cid = "kc-live-%d" % os.getpid()
    _config(kill_bundle, cid, 0)
    with open(os.path.join(kill_bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]}
    with open(os.path.join(kill_bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([PYRUNC, "--root", root, "create", "--bundle", kill_bundle, cid],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 10
            status = None
            while time.monotonic() < deadline:
                rc, o, _ = _run(root, "state", cid)
                if rc == 0:
                    status = json.loads(o)["status"]
                    if json.loads(o)["pid"]:
                        break
                time.sleep(0.02)
            assert status == "creating"
            t = time.monotonic()
            rc, _, err = _run(root, "delete", "--force", cid)
            assert rc == 0, err
            assert time.monotonic() - t < 1.0 + DELETE_BOUND
            assert cgroup_dirs(cid) == [], (err, open(os.path.join(root, cid, "state.json")).read() if os.path.exists(os.path.join(root, cid, "state.json")) else "-")
            # the create sees its init die and fails cleanly
            rc = p.wait(timeout=10)
            out.seek(0)
            assert rc == 1, (out.read(), _run(root, "state", cid))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    rc, _, err = _run(root, "delete", "--force", cid)
    assert rc == 0, err
    assert not os.path.exists(os.path.join(root, cid))
    assert cgroup_dirs(cid) == []
    assert mounts_under(kill_bundle) == []
    assert processes_in(os.path.join(kill_bundle, "rootfs"), cid) == []


# A create killed between the clone and GO, deterministically: the init must die with
# it by itself (PR_SET_PDEATHSIG, or EOF on the sync socket), before anyone runs
# `delete --force`.  The create runs in a process of its own through the library, with
# the first step after the clone (reading the init's start time) replaced by a SIGKILL
# of that process; variant 1 makes the init a grandchild (stage-1, a time namespace).
_KILL_AFTER_CLONE = """
import os, signal, sys
sys.path[:0] = %(path)r
from pyrunc import container
def killed(pid):
    os.kill(pid, 0)  # the init is there (else this raises, and the test fails)
    with open(%(pidfile)r, "w") as f:
        f.write(str(pid))
    os.kill(os.getpid(), signal.SIGKILL)
container._state.proc_start_time = killed
from pyrunc.cli import main
main(["--root", %(root)r, "create", "--bundle", %(bundle)r, %(cid)r])
"""


@pytest.mark.parametrize("variant", [0, 1], ids=["init", "stage1"])
def test_an_init_dies_with_a_create_killed_before_go(kill_bundle, tmp_path, variant):
    import sys

    root = str(tmp_path / "state")
    cid = "kc-go-%d-%d" % (variant, os.getpid())
    _config(kill_bundle, cid, variant)
    pidfile = str(tmp_path / "pid")
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = _KILL_AFTER_CLONE % {"path": [here] + [p for p in sys.path if "site-packages" in p],
                                "pidfile": pidfile, "root": root, "bundle": kill_bundle, "cid": cid}
    try:
        with tempfile.TemporaryFile() as out:
            p = subprocess.run([sys.executable, "-I", "-S", "-c", code], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=out, timeout=30)
        assert p.returncode == -signal.SIGKILL
        with open(pidfile) as f:
            pid = int(f.read())
        assert pid > 0

        def alive():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().rpartition(")")[2].split()[0] != "Z"
            except FileNotFoundError:
                return False

        deadline = time.monotonic() + 5
        while alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(), "the init (pid %d) outlived the create that made it" % pid
    finally:
        rc, _, err = _run(root, "delete", "--force", cid)
    assert rc == 0, err
    assert not os.path.exists(os.path.join(root, cid))
    assert cgroup_dirs(cid) == []
    assert mounts_under(kill_bundle) == []
