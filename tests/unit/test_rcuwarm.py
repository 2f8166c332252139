"""pyrunc/rcuwarm.py: the early cgroup-migration grace period must never move us."""
import os
import subprocess
import sys

from pyrunc import rcuwarm

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _v1_lines():
    with open("/proc/self/cgroup") as f:
        return [l for l in f.read().splitlines() if l.split(":")[1] and not l.split(":")[1].startswith("name=")]


def test_target_is_our_own_v1_cgroup_or_none():
    path = rcuwarm._target()
    if not _v1_lines():
        assert path is None  # pure cgroup2: clone3(CLONE_INTO_CGROUP), nothing to warm
        return
    assert path.endswith("/cgroup.procs")
    with open(path) as f:
        assert str(os.getpid()) in f.read().split()


def test_warming_leaves_the_process_where_it_was():
    # a fresh interpreter that warms, keeps warming for a while, then stops and
    # reports its cgroups: they must equal its parent's (ours)
    code = ("import os, sys, time\n"
            "sys.path.insert(0, %r)\n"
            "from pyrunc import rcuwarm\n"
            "rcuwarm.start(); time.sleep(0.02); rcuwarm.stop(); time.sleep(0.01)\n"
            "print(open('/proc/self/cgroup').read(), end='')\n" % TOP)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr == ""
    with open("/proc/self/cgroup") as f:
        assert out.stdout == f.read()
