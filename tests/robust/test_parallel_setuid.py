"""Many create + start pairs at once, the program a small setuid binary run by a
non-root user (the cri-o report: `start` said "cannot start a container that has
stopped" 0.58 s after a successful create).  Every start must succeed."""
import json
import os
import shutil
import stat
import sys
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import PYRUNC, BUSYBOX, CGROUP_PARENT, cgroup_dirs, make_rootfs, requires_root

pytestmark = requires_root
N = int(os.environ.get("PYRUNC_PARALLEL_PAIRS", "30"))


def _run(root, *args):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run([PYRUNC, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                           stdout=out, stderr=err, timeout=60)
        err.seek(0)
        return p.returncode, err.read().decode()


def test_parallel_create_start_setuid(tmp_path):
    root = str(tmp_path / "state")
    rootfs = str(tmp_path / "rootfs")
    make_rootfs(rootfs)
    # busybox picks its applet from argv[0]'s name: keep it "busybox"
    os.mkdir(os.path.join(rootfs, "suid"))
    suid = os.path.join(rootfs, "suid", "busybox")
    shutil.copy2(BUSYBOX, suid)
    os.chmod(suid, 0o4755)
    assert os.stat(suid).st_mode & stat.S_ISUID
    subprocess.run([PYRUNC, "spec", "--bundle", str(tmp_path)], check=True)
    with open(tmp_path / "config.json") as f:
        base = json.load(f)
    base["process"]["terminal"] = False
    base["process"]["user"] = {"uid": 1000, "gid": 1000}
    base["process"]["args"] = ["/suid/busybox", "true"]
    base["root"] = {"path": rootfs, "readonly": False}

    def one(i):
        cid = "ps-%d" % i
        bundle = tmp_path / ("b%d" % i)
        bundle.mkdir()
        cfg = json.loads(json.dumps(base))
        cfg["linux"]["cgroupsPath"] = "/%s/%s" % (CGROUP_PARENT, cid)
        # proof that the setuid program ran (the rootfs's /tmp is 1777)
        cfg["process"]["args"] = ["/suid/busybox", "touch", "/tmp/ran-%s" % cid]
        with open(bundle / "config.json", "w") as f:
            json.dump(cfg, f)
        try:
            rc, err = _run(root, "create", "--bundle", str(bundle), cid)
            if rc:
                return "create %s: %s" % (cid, err)
            t = time.monotonic()
            rc, err = _run(root, "start", cid)
            if rc:
                return "start %s after %.2f s: %s" % (cid, time.monotonic() - t, err)
            proof = os.path.join(rootfs, "tmp", "ran-" + cid)
            for _ in range(500):
                if os.path.exists(proof):
                    return None
                time.sleep(0.01)
            return "%s: the program did not run" % cid
        finally:
            rc, err = _run(root, "delete", "--force", cid)
            if rc:
                return "delete %s: %s" % (cid, err)

    with ThreadPoolExecutor(max_workers=N) as ex:
        errors = [e for e in ex.map(one, range(N)) if e]
    assert errors == []
    assert os.stat(os.path.join(rootfs, "tmp", "ran-ps-0")).st_uid == 1000
    for i in range(N):
        assert cgroup_dirs("ps-%d" % i) == []


REAPER = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pyrunc, root, bundle, cid = sys.argv[1:]
rc = subprocess.call([pyrunc, "--root", root, "create", "--bundle", bundle, cid],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
print(rc, flush=True)
os.close(1)
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
"""


def test_start_survives_init_exiting_right_after_the_fifo(tmp_path, monkeypatch):
    """The race behind the report, made wide: `start` is slow right after opening
    exec.fifo, so the init writes its byte, execs a program that exits at once, and
    pid 1 reaps it before start looks at the process.  start must still succeed (it
    read the byte); before the fix it said the container had stopped."""
    from pyrunc.container import Container

    root = str(tmp_path / "state")
    rootfs = str(tmp_path / "rootfs")
    make_rootfs(rootfs)
    subprocess.run([PYRUNC, "spec", "--bundle", str(tmp_path)], check=True)
    with open(tmp_path / "config.json") as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    cfg["root"] = {"path": rootfs, "readonly": False}
    cid = "race-%d" % os.getpid()
    cfg["linux"]["cgroupsPath"] = "/%s/%s" % (CGROUP_PARENT, cid)
    with open(tmp_path / "config.json", "w") as f:
        json.dump(cfg, f)
    # the init's parent once create is gone: a subreaper that reaps at once, as
    # conmon does (pid 1 may be slow, and a zombie still has its pidfd)
    reaper = subprocess.Popen([sys.executable, "-c", REAPER, PYRUNC, root, str(tmp_path), cid],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = reaper.stdout.readline()
    assert line.strip() == b"0", (line, reaper.stderr.read() if reaper.poll() is not None else "")
    real_open = os.open

    def slow_fifo_open(path, *a, **kw):
        fd = real_open(path, *a, **kw)
        if path == "exec.fifo":
            time.sleep(0.3)  # the init runs `true` to its end meanwhile
        return fd

    try:
        c = Container.load(root, cid)
        pid = c.st["pid"]
        monkeypatch.setattr(os, "open", slow_fifo_open)
        try:
            c.start()
        finally:
            monkeypatch.undo()
            c.close()
        reaper.wait(timeout=10)  # it has reaped the init
        assert not os.path.exists("/proc/%d" % pid)
    finally:
        if reaper.poll() is None:
            reaper.kill()
            reaper.wait()
        rc, err = _run(root, "delete", "--force", cid)
        assert rc == 0, err
    assert cgroup_dirs(cid) == []
