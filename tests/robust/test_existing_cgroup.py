"""A cgroup that exists before create: frozen is refused with runc 1.1's line (it
made `run` hang), non-empty gets runc's warning and is used."""
import os
import subprocess
import time

import pytest

from tests.conftest import CGROUP_PARENT, requires_root

pytestmark = requires_root
BASE = "/sys/fs/cgroup"


def _hierarchies():
    out = []
    for name in sorted(os.listdir(BASE)):
        p = os.path.join(BASE, name)
        if os.path.isdir(p) and not os.path.islink(p) and os.path.exists(os.path.join(p, "cgroup.procs")):
            out.append(p)
    return out


@pytest.fixture
def precreated(bundle):
    dirs = []
    for h in _hierarchies():
        d = os.path.join(h, CGROUP_PARENT, bundle.id)
        os.makedirs(d, exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset: empty until set
            if os.path.exists(os.path.join(d, name)):
                for p in (os.path.dirname(d), d):
                    with open(os.path.join(os.path.dirname(p), name)) as f:
                        value = f.read().strip()
                    with open(os.path.join(p, name), "w") as f:
                        f.write(value)
        dirs.append(d)
    yield dirs
    for d in reversed(dirs):
        fz = os.path.join(d, "freezer.state")
        if os.path.exists(fz):
            with open(fz, "w") as f:
                f.write("THAWED")
        for _ in range(100):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def test_frozen_cgroup_refused(runtime, bundle, precreated):
    fz = [d for d in precreated if os.path.exists(os.path.join(d, "freezer.state"))]
    if not fz:
        pytest.skip("no cgroup v1 freezer hierarchy mounted")
    with open(os.path.join(fz[0], "freezer.state"), "w") as f:
        f.write("FROZEN")
    bundle.args("true")
    t = time.monotonic()
    r = runtime.run("run", "-b", bundle.path, bundle.id, timeout=20)
    assert time.monotonic() - t < 10
    assert r.returncode == 1, r.stderr
    assert r.stderr == "container's cgroup unexpectedly frozen\n"
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    # the cgroup was not ours: it is still there, still frozen
    with open(os.path.join(fz[0], "freezer.state")) as f:
        assert f.read().strip() == "FROZEN"


def test_non_empty_cgroup_warned_and_used(runtime, bundle, precreated):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for d in precreated:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(sleeper.pid))
        bundle.args("true")
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        assert r.returncode == 0, r.stderr
        assert "container's cgroup is not empty: 1 process(es) found" in r.stderr
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert sleeper.poll() is None  # someone else's process is left alone
    finally:
        sleeper.kill()
        sleeper.wait()
