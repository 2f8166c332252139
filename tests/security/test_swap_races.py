"""Entries of the rootfs that pyrunc makes or opens itself are checked and then used
through the same fd, never looked up again by name: an entry swapped between the two
for a link to a host file must not pass an owner, a mode or an open on to that file.

Each race is made deterministic with strace: a syscall of pyrunc's child returns only
after a delay (`inject=...:delay_exit`), and a thread of the test, woken by the line
strace writes for it (before the delay), swaps the entry meanwhile.  The targets are
canary files the test made on the host.
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from tests.conftest import PYRUNC, requires_root
from tests.security.mountattack import (CANARY_TEXT, drop_mounts, failed_cleanly, make_canary_file,
                                        set_namespaces, via_magic)

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace(1) for the race")]


class LogRacer(threading.Thread):
    """for each new line of the strace log that matches `pattern`, runs `swap` until it
    returns True (it did swap)"""

    def __init__(self, log, pattern, swap):
        super().__init__(daemon=True)
        self.log, self.pattern, self.swap = log, re.compile(pattern), swap
        self.swapped = False
        self.stop = False

    def run(self):
        deadline = time.monotonic() + 30
        pos = 0
        while not self.stop and time.monotonic() < deadline:
            try:
                with open(self.log) as f:
                    text = f.read()
            except FileNotFoundError:
                text = ""
            m = self.pattern.search(text, pos)
            if m:
                pos = m.end()
                if self.swap() is not False:
                    self.swapped = True
                    return
                continue
            time.sleep(0.005)


def strace_run(runtime, bundle, log, syscalls, path=None, stdin=subprocess.DEVNULL, timeout=60):
    """pyrunc run with `syscalls` (of every process, only those on `path` if given)
    returning 0.3 s late, logged to `log`; returncode None when it had to be killed"""
    cmd = ["strace", "-f", "-qq", "-o", log, "-e", "trace=" + syscalls,
           "-e", "inject=%s:delay_exit=300000" % syscalls]
    if path:
        cmd += ["-P", path]
    cmd += [PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id]
    # regular files, not pipes: a container init left blocked holds them open
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err, text=True)
        hung = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            hung = True
            # the init is in a session of its own: delete --force ends it, then strace
            runtime.run("delete", "--force", bundle.id)
            p.kill()
            p.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, None if hung else p.returncode, out.read(), err.read())


def test_tmpcopyup_entry_swapped_for_symlink(runtime, bundle, tmp_path):
    # tmpcopyup copies the image's /data into a new tmpfs, then sets each copy's owner,
    # mode and times.  No mount namespace: the tmpfs is in the host's mount table, where
    # the copy of /data/f is swapped for a symlink to a host canary while its content is
    # being copied (sendfile delayed).  fchmodat(name) used to follow it.
    canary = make_canary_file(tmp_path)
    os.chmod(canary, 0o640)
    data = bundle.rootfs + "/data"
    os.mkdir(data)
    with open(data + "/f", "w") as f:
        f.write("image file\n")
    os.chmod(data + "/f", 0o4755)
    set_namespaces(bundle, "network", "ipc")
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup"]})
    bundle.args("/bin/true")
    log = str(tmp_path / "strace.log")

    def swap():
        copy = data + "/f"
        os.unlink(copy)  # the tmpfs's copy: the image's file is below the mount
        os.symlink(canary, copy)

    racer = LogRacer(log, r"sendfile\(", swap)
    racer.start()
    try:
        r = strace_run(runtime, bundle, log, "sendfile")
    finally:
        racer.stop = True
        racer.join()
    mode = stat.S_IMODE(os.stat(canary).st_mode)
    os.chmod(canary, 0o640)
    assert racer.swapped, r.stderr
    assert mode == 0o640, "the copy's mode reached the host canary: %o" % mode
    assert open(canary).read() == CANARY_TEXT
    if r.returncode:
        failed_cleanly(runtime, bundle, r, "/data")


def test_devnull_reopen_swapped_for_host_file(runtime, bundle, tmp_path):
    # stdio that is the caller's /dev/null is reopened from the container's /dev/null
    # (runc's reOpenDevNull).  The image's /dev (no tmpfs) gets its /dev/null made by
    # pyrunc; once it was checked to be a character device it is swapped for a link
    # through /proc/<pid>/root (no pid namespace) to a host canary.  Opened by name, the
    # container's stdin became the canary, read-write.
    canary = make_canary_file(tmp_path)
    drop_mounts(bundle, "/dev")
    set_namespaces(bundle, "network", "ipc", "mount")
    bundle.config["linux"]["maskedPaths"] = []  # masking would refuse the swapped /dev/null later
    bundle.args("/bin/sh", "-c", "echo pwned >&0")
    log = str(tmp_path / "strace.log")
    null = bundle.rootfs + "/dev/null"

    def swap():
        # the container's node made: only then is a stat of a null device its check
        # (pyrunc's parent may look at its own stdin first)
        if not (os.path.lexists(null) and stat.S_ISCHR(os.lstat(null).st_mode)):
            return False
        os.unlink(null)
        os.symlink(via_magic(canary), null)

    # between the check and the open: a stat of /dev/null (by name, as it was) or of
    # stdio (the fd checked against it), both seeing the null device
    racer = LogRacer(log, r'newfstatat\(.*st_mode=S_IFCHR\|0666, st_rdev=makedev\(0x1, 0x3\)', swap)
    racer.start()
    try:
        with open("/dev/null", "rb") as devnull:
            r = strace_run(runtime, bundle, log, "newfstatat", path="/dev/null", stdin=devnull)
    finally:
        racer.stop = True
        racer.join()
    content = open(canary).read()
    assert racer.swapped, (r.stderr, open(log).read()[-2000:])
    assert content == CANARY_TEXT, "the container's stdin was the host canary: %r" % content
    if r.returncode:
        failed_cleanly(runtime, bundle, r, "/dev/null")


def test_tmpcopyup_source_swapped_for_fifo(runtime, bundle, tmp_path):
    # the image's /data/f was a regular file when tmpcopyup looked at it, and a fifo when
    # it opened it to copy: the init must not block in that open (create would hang
    # forever, holding the container's lock).  Own mount namespace: the tmpfs is only
    # there, the host still sees (and swaps) the image's file below it.
    data = bundle.rootfs + "/data"
    os.mkdir(data)
    with open(data + "/f", "w") as f:
        f.write("image file\n")
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup"]})
    bundle.args("/bin/true")
    log = str(tmp_path / "strace.log")

    def swap():
        os.unlink(data + "/f")
        os.mkfifo(data + "/f")

    # the type check of the entry (fstatat in the image's /data) returned: swap now
    racer = LogRacer(log, r'newfstatat\(\d+, "f", \{st_mode=S_IFREG', swap)
    racer.start()
    try:
        r = strace_run(runtime, bundle, log, "newfstatat", path=data, timeout=20)
    finally:
        racer.stop = True
        racer.join()
    assert racer.swapped, (r.stderr, open(log).read()[-2000:])
    assert r.returncode is not None, "create blocked in the open of a fifo"
    if r.returncode:
        failed_cleanly(runtime, bundle, r, "/data")
