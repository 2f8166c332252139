"""Freezing: v1 freezer.state, v2 cgroup.freeze.

v1: writing FROZEN starts freezing; the state reads FREEZING until every task is
stopped, and a cgroup that keeps forking (or gets new tasks) may stay there.  As in
runc (fs/freezer.go), the write is repeated with a read-back, an occasional short
sleep, and now and then a thaw to let a racing fork finish; after ~1000 tries the
cgroup is thawed again and the freeze reported as failed, rather than left
half-frozen.
v2: cgroup.freeze = 1, then wait for "frozen 1" in cgroup.events (the kernel signals
changes of that file with POLLPRI).
"""
import time

from pyrunc.cgroups.fs import CgroupError


def freeze(d, version):
    if version == 1:
        for i in range(1000):
            if i % 50 == 49:
                d.write("freezer.state", "THAWED", "pause")
                time.sleep(0.01)
            d.write("freezer.state", "FROZEN", "pause")
            if i % 25 == 24:
                time.sleep(0.00001)
            state = d.read("freezer.state", "pause").strip()
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise CgroupError("pause: %s/freezer.state is %s after writing FROZEN" % (d.path, state))
        d.write("freezer.state", "THAWED", "pause")
        raise CgroupError("pause: %s: the cgroup did not freeze (still FREEZING), thawed it again" % d.path)
    d.write("cgroup.freeze", "1", "pause")
    if not d.fake and not _wait_events(d, "frozen", "1", 5.0):
        d.write("cgroup.freeze", "0", "pause")
        raise CgroupError("pause: %s: the cgroup did not freeze within 5 s, thawed it again" % d.path)


def thaw(d, version):
    if version == 1:
        d.write("freezer.state", "THAWED", "resume")
        return
    d.write("cgroup.freeze", "0", "resume")
    if not d.fake:
        _wait_events(d, "frozen", "0", 5.0)


def _wait_events(d, key, want, timeout):
    from pyrunc import _os as os
    import select

    deadline = time.monotonic() + timeout
    try:
        fd = os.open("cgroup.events", os.O_RDONLY | os.O_CLOEXEC, dir_fd=d.fd)
    except OSError:
        return True
    try:
        p = select.poll()
        p.register(fd, select.POLLPRI | select.POLLERR)
        while True:
            os.lseek(fd, 0, 0)
            text = os.read(fd, 4096).decode()
            for line in text.split("\n"):
                k, _, v = line.partition(" ")
                if k == key:
                    if v.strip() == want:
                        return True
                    break
            else:
                return True  # no such key: nothing to wait for
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            p.poll(min(left, 0.1) * 1000)
    finally:
        os.close(fd)
