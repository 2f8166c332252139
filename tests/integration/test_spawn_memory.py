"""The clone leaves Python's arenas out of the container init (csrc/child/spawn.c
nofork), and never what the init runs on.

Run in a child interpreter that calls the library as the pyrunc command does
(pyrunc._command set), so that the test's own process is not cloned with holes."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import requires_root

pytestmark = requires_root

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import json, sys, threading
sys.path[:0] = [%(top)r]
import pyrunc
pyrunc._command = %(command)r
from pyrunc.container import Container

def big(pid):
    # private anonymous read-write mappings of 1 MiB or more: Python's arenas, the
    # stacks of threads (and nothing else here)
    out = []
    with open("/proc/%%s/maps" %% pid) as f:
        for line in f:
            x = line.split()
            if len(x) == 5 and x[1] == "rw-p" and x[4] == "0":
                lo, hi = (int(v, 16) for v in x[0].split("-"))
                if hi - lo >= 1 << 20:
                    out.append([lo, hi])
    return out

res = {}
def work():
    # a long-lived object in an arena, as Python has thousands
    c = Container.create(%(root)r, %(cid)r, %(bundle)r)
    res["parent"] = big("self")
    res["child"] = big(c.pid)
    with open("/proc/%%d/status" %% c.pid) as f:
        res["state"] = [l.split()[1] for l in f if l.startswith("State:")][0]
    c.close()
if %(thread)r:
    t = threading.Thread(target=work)
    t.start()
    t.join()
else:
    work()
print(json.dumps(res))
"""


def _create(runtime, bundle, command, thread):
    bundle.args("/bin/sleep", "100")
    code = SCRIPT % {"top": TOP, "command": command, "root": runtime.root, "cid": bundle.id,
                     "bundle": bundle.path, "thread": thread}
    runtime.ids.add(bundle.id)
    # files, not pipes: the init inherits them and would hold a pipe open
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        assert p.returncode == 0, err.read().decode()
        res = json.loads(out.read())
    # the init is alive and waits for start (a missing page would have killed it)
    assert res["state"] in ("S", "R"), res
    assert runtime.state(bundle.id)["status"] == "created"
    return [tuple(r) for r in res["parent"]], [tuple(r) for r in res["child"]]


@pytest.mark.parametrize("thread", [False, True], ids=["main-thread", "other-thread"])
def test_the_init_gets_no_copy_of_the_arenas(runtime, bundle, thread):
    parent, child = _create(runtime, bundle, True, thread)
    left_out = set(parent) - set(child)
    assert left_out, (parent, child)
    if thread:
        # the creating thread's stack is such a mapping too, and the clone runs on it
        assert set(parent) & set(child), (parent, child)
    runtime.run("delete", "--force", bundle.id, check=True)


def test_a_library_caller_keeps_the_whole_copy(runtime, bundle):
    # another thread of a library caller may fork during the clone: nothing left out
    parent, child = _create(runtime, bundle, False, False)
    assert [r for r in parent if r not in child] == [], (parent, child)
    runtime.run("delete", "--force", bundle.id, check=True)
