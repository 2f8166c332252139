"""kill --all signals the processes cgroup.procs listed.  Frozen, none of them can
exit before it is signalled; but the freeze can fail (a container that forks fast
enough keeps a v1 freezer FREEZING, and pyrunc then thaws it and goes on unfrozen),
and then a listed process may exit, and its pid go to a host process, before the
signal: that process must not get it.

Deterministic here: strace makes the freeze fail (EBUSY) and holds the listing of
cgroup.procs for a while; meanwhile the test kills the init and gives its pid to a
host `sleep` (kernel.ns_last_pid), which must survive `kill --all ... TERM`.
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.conftest import CGROUP_PARENT, PYRUNC, requires_root
from tests.integration.test_exec import start_sleeper
from tests.security.test_exec_pid_reuse import pid_given_to_host

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace(1) for the race")]


def cgroup_files(cid):
    """(the freezer file pyrunc writes, the cgroup.procs it lists) for this layout"""
    rel = "%s/%s" % (CGROUP_PARENT, cid)
    for freezer, procs in (("freezer/%s/freezer.state", "unified/%s/cgroup.procs"),
                           ("freezer/%s/freezer.state", "pids/%s/cgroup.procs"),
                           ("%s/cgroup.freeze", "%s/cgroup.procs")):
        f, p = "/sys/fs/cgroup/" + freezer % rel, "/sys/fs/cgroup/" + procs % rel
        if os.path.exists(f) and os.path.exists(p):
            return f, p
    pytest.skip("no freezer and cgroup.procs where this test looks for them")


def test_kill_all_does_not_signal_a_reused_pid(runtime, bundle, tmp_path):
    pid = start_sleeper(runtime, bundle)["pid"]
    freezer, procs = cgroup_files(bundle.id)
    log = str(tmp_path / "strace.log")
    cmd = ["strace", "-qq", "-y", "-o", log, "-e", "trace=read,write", "-P", freezer, "-P", procs,
           "-e", "inject=write:error=EBUSY", "-e", "inject=read:delay_exit=1000000",
           PYRUNC, "--root", runtime.root, "kill", "--all", bundle.id, "TERM"]
    listed = 'cgroup.procs>, "%d\\n"' % pid
    with tempfile.TemporaryFile("w+") as err:
        with pid_given_to_host(runtime, bundle.id, pid, cmd, log, listed,
                               "kill --all never listed the init", 30,
                               stdout=subprocess.DEVNULL, stderr=err) as (p, sleeper):
            p.wait(timeout=30)
            time.sleep(0.1)
            alive = sleeper.poll() is None
        err.seek(0)
        stderr = err.read()
    assert alive, "kill --all signalled a host process that got a listed pid: %s" % stderr
