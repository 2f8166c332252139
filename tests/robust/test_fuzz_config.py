"""Mutated config.json files: one clear line or a container, and nothing left behind.

Seeded and reproducible (tests/robust/fuzzlib.py).  `make test` runs 300 cases;
`make fuzz` (or PYRUNC_FUZZ_CASES=N) runs more, PYRUNC_FUZZ_SEED picks another seed,
PYRUNC_FUZZ_ONLY=i replays one case.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from tests.conftest import PYRUNC, CGROUP_PARENT, cgroup_dirs, make_rootfs, mounts_under, requires_root
from tests.robust import fuzzlib

pytestmark = requires_root

SEED = os.environ.get("PYRUNC_FUZZ_SEED", "pyrunc-fuzz-1")
CASES = int(os.environ.get("PYRUNC_FUZZ_CASES", "300"))
ONLY = os.environ.get("PYRUNC_FUZZ_ONLY")
INDICES = [int(ONLY)] if ONLY else range(CASES)


@pytest.fixture(scope="module")
def fuzz_bundle(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fuzz") / "bundle")
    make_rootfs(os.path.join(path, "rootfs"))
    os.symlink("busybox", os.path.join(path, "rootfs", "bin", "true-link"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzzstate"))


def _pyrunc(root, *args, timeout=20):
    """stdout and stderr to files: a created init inherits them (a pipe would not end)"""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run([PYRUNC, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                           stdout=out, stderr=err, timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())


def _check_one_line(what, r, desc):
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, "%s: exit %d (%s): %s" % (what, r.returncode, desc, err)
    lines = err.splitlines()
    assert len(lines) == 1, "%s: %d lines (%s): %r" % (what, len(lines), desc, err)
    assert "internal error" not in err, "%s (%s): %s" % (what, desc, err)
    assert "Traceback" not in err, "%s (%s): %s" % (what, desc, err)


@pytest.mark.parametrize("index", INDICES)
def test_mutated_config(fuzz_bundle, fuzz_root, index):
    cid = "fz-%d" % index
    cgpath = "/%s/%s" % (CGROUP_PARENT, cid)
    text, desc = fuzzlib.mutate(SEED, index, cgpath)
    with open(os.path.join(fuzz_bundle, "config.json"), "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    r = _pyrunc(fuzz_root, "create", "--bundle", fuzz_bundle, cid)
    try:
        if r.returncode != 0:
            _check_one_line("create", r, desc)
        else:
            s = _pyrunc(fuzz_root, "state", cid)
            assert s.returncode == 0, (desc, s.stderr)
            assert b'"created"' in s.stdout, (desc, s.stdout)
    finally:
        d = _pyrunc(fuzz_root, "delete", "--force", cid)
    assert d.returncode == 0, (desc, d.stderr)
    assert d.stderr == b"" or b"warn" in d.stderr, (desc, d.stderr)
    assert not os.path.exists(os.path.join(fuzz_root, cid)), "state left (%s)" % desc
    assert cgroup_dirs(cid) == [], "cgroup left (%s)" % desc
    assert mounts_under(fuzz_bundle) == [], "mount left (%s)" % desc
    assert fuzzlib.processes_in(os.path.join(fuzz_bundle, "rootfs"), cid) == [], "process left (%s)" % desc
