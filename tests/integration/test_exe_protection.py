"""The CVE-2019-5736 class: no host binary is reachable from the container.

Until the final execve the init is a clone of the host Python.  pyrunc marks it
non-dumpable and does the final execve from a sealed memfd stub, so:
  - an entrypoint of /proc/self/exe runs the stub again, never host Python;
  - another container process cannot open /proc/<init>/exe while the init waits;
  - the stub itself cannot be written.
"""
import os
import shutil

import pytest

from tests.conftest import Bundle, new_id, requires_root

pytestmark = requires_root


def test_entrypoint_proc_self_exe_does_not_run_host_python(runtime, bundle):
    bundle.args("/proc/self/exe", "-c", "print('escaped to the host interpreter')")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert "escaped" not in r.stdout + r.stderr
    # the stub, run again with nothing to execute, refuses with 127
    assert r.returncode == 127
    assert "pyrunc exec stub" in r.stderr


def test_waiting_init_exe_cannot_be_opened_from_another_container(runtime, bundle, tmp_path):
    # container A: created, its init (a clone of host Python) waits for start.  No pid
    # namespace for either container, so B can see A's init.
    for b in (bundle,):
        b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    bundle.args("/bin/true")
    assert runtime.run("create", "-b", bundle.path, bundle.id).returncode == 0
    pid = runtime.state(bundle.id)["pid"]
    # what an attacker would be after: the init is still the host interpreter
    assert "python" in os.readlink("/proc/%d/exe" % pid)

    bpath = str(tmp_path / "attacker")
    os.makedirs(bpath)
    shutil.copytree(bundle.rootfs, os.path.join(bpath, "rootfs"), symlinks=True)
    b = Bundle(bpath, new_id())
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    b.config["process"]["capabilities"]["bounding"].append("CAP_DAC_OVERRIDE")
    b.config["process"]["capabilities"]["effective"].append("CAP_DAC_OVERRIDE")
    b.config["process"]["capabilities"]["permitted"].append("CAP_DAC_OVERRIDE")
    script = ("cat /proc/%d/exe > /dev/null 2>&1 && echo read-ok || echo read-denied; "
              "echo x >> /proc/%d/exe 2>/dev/null && echo write-ok || echo write-denied; "
              "readlink /proc/%d/fd/0 >/dev/null 2>&1 && echo fd-ok || echo fd-denied") % (pid, pid, pid)
    b.args("/bin/sh", "-c", script)
    r = runtime.run("run", "-b", bpath, b.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["read-denied", "write-denied", "fd-denied"]
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_stub_memfd_is_sealed():
    from pyrunc.native import lib

    fd = lib.prc_stub_memfd()
    assert fd >= 0
    try:
        with pytest.raises(PermissionError):
            os.write(fd, b"x")
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
        # reopening through /proc (what an attacker holding /proc/<pid>/exe would do)
        # gives a file that still refuses every write
        wfd = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY)
        try:
            with pytest.raises(PermissionError):
                os.write(wfd, b"x")
        finally:
            os.close(wfd)
        st = os.fstat(fd)
        assert st.st_size > 0
    finally:
        os.close(fd)
