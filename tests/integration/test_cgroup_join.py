"""Who moves the init into its cgroups, and that it always ends up there.

Without a user namespace the init joins its v1 cgroups itself ("0" to `tasks`, see
csrc/child/init.c); with one, the parent writes its pid to cgroup.procs.  Both must
leave the init in the configured cgroup of every hierarchy, and with a cgroup
namespace the join must come before the unshare (the container sees "/")."""
import contextlib
import subprocess

import pytest

from tests.conftest import in_userns, requires_root

pytestmark = requires_root


def _paths(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        out = {}
        for line in f.read().splitlines():
            _, ctrls, path = line.split(":", 2)
            if ctrls.startswith("name=") and ctrls != "name=systemd":
                continue
            out[ctrls] = path
        return out



@contextlib.contextmanager
def _running(runtime, bundle):
    """run -d a sleeping init; yield its pid after checking it sits in the configured
    cgroup of every hierarchy; delete it after"""
    bundle.args("/bin/sleep", "100")
    r = runtime.run("run", "-d", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    pid = runtime.state(bundle.id)["pid"]
    try:
        paths = _paths(pid)
        assert paths and set(paths.values()) == {"/pyrunc-test/%s" % bundle.id}, paths
        yield pid
    finally:
        assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_init_joins_every_hierarchy_itself(runtime, bundle):
    with _running(runtime, bundle):
        pass


def test_join_precedes_the_cgroup_namespace(runtime, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    with _running(runtime, bundle) as pid:
        # /proc/<pid>/cgroup is shown relative to the reader's cgroup namespace: read
        # from inside the container's, each hierarchy's root is the init's own cgroup
        r = subprocess.run(["nsenter", "-t", str(pid), "-C", "cat", "/proc/%d/cgroup" % pid],
                           capture_output=True, text=True, check=True)
        for line in r.stdout.splitlines():
            _, ctrls, path = line.split(":", 2)
            if ctrls.startswith("name=") and ctrls != "name=systemd":
                continue
            assert path == "/", line


def test_stage1_joins_before_its_setns(runtime, bundle):
    # a time namespace needs stage-1 (unshare, then clone the init into it)
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    with _running(runtime, bundle):
        pass


@pytest.mark.parametrize("with_stage1", [False, True], ids=["parent-joins", "stage1-joins"])
def test_user_namespace_init_lands_in_its_cgroups(runtime, bundle, with_stage1):
    # cloned straight into a new user namespace the init could not join itself (the
    # parent does); with stage-1, stage-1 joins while still root on the host
    if with_stage1:
        bundle.config["linux"]["namespaces"].append({"type": "time"})
    with in_userns(bundle), _running(runtime, bundle):
        # an exec'd process too (the parent moves it into cgroup2 here)
        r = runtime.run("exec", bundle.id, "cat", "/proc/self/cgroup")
        assert r.returncode == 0, r.stderr
        paths = {l.split(":", 2)[2] for l in r.stdout.splitlines() if ":name=" not in l}
        assert paths == {"/pyrunc-test/%s" % bundle.id}, r.stdout


@pytest.mark.parametrize("extra", ["none", "cgroup", "time"])
def test_exec_lands_in_the_containers_cgroups(runtime, bundle, extra):
    # stage-1 joins v1 itself; cgroup2 by clone3(CLONE_INTO_CGROUP) except with a cgroup
    # namespace, where the parent moves the process
    if extra != "none":
        bundle.config["linux"]["namespaces"].append({"type": extra})
    with _running(runtime, bundle):
        r = runtime.run("exec", bundle.id, "cat", "/proc/self/cgroup")
        assert r.returncode == 0, r.stderr
        want = "/" if extra == "cgroup" else "/pyrunc-test/%s" % bundle.id
        for line in r.stdout.splitlines():
            _, ctrls, path = line.split(":", 2)
            if ctrls.startswith("name=") and ctrls != "name=systemd":
                continue
            assert path == want, line
