"""Removal of the cgroup directories a container's create made, outside the cgroups package.

`delete` of a stopped container needs nothing of pyrunc.cgroups but this: the record in
state.json (Manager.to_state(): for each hierarchy its mount point, the container's
directory and the directories create made) says what to rmdir.  Importing the package
(the Manager with its resource code, fs.py) costs `delete` about 1 million instructions,
so the removal lives here, and Manager.destroy calls the same code.

What runc does too (libcontainer/cgroups/utils.go RemovePath, RemovePaths): deepest
first; sub-cgroups the container made itself (a writable cgroupfs, `exec --cgroup`)
removed below the leaf; EBUSY while the last tasks exit retried for a while.
"""
from pyrunc import _os as os

from pyrunc.errors import PyruncError
from pyrunc.state import open_cgroup_mount

EBUSY = 16
ENOTEMPTY = 39


def remove_made(rootfd, mnt, leaf, made, kill, rmdir=None):
    """rmdir every directory of `made` (create's record in one hierarchy, parents
    first) below the mount fd `rootfd`, deepest first.  leaf: the container's own
    directory.  kill(): called once if the leaf stays busy (tasks still exiting).
    rmdir(rootfd, rel): a fake hierarchy's removal (unit tests; no retries then).
    Returns (the directories left, parents first; the error message or None)."""
    left = []
    error = None
    for rel in reversed(made):
        if left:
            left.append(rel)  # its child stays, so does it
            continue
        error = _rmdir(rootfd, mnt, leaf, rel, kill, rmdir)
        if error:
            left.append(rel)
    left.reverse()
    return left, error


def _rmdir(rootfd, mnt, leaf, rel, kill, fake_rmdir):
    """None when rel is gone (or is a parent another container now uses), else the
    error message"""
    delay = 0.001
    waited = 0.0
    killed = False
    while True:
        try:
            if fake_rmdir is not None:
                fake_rmdir(rootfd, rel)
            else:
                os.rmdir(rel, dir_fd=rootfd)
            return None
        except FileNotFoundError:
            return None
        except OSError as err:
            e = err.errno
        if rel != leaf:
            return None  # a parent we made, now shared with another container: keep it
        if e in (EBUSY, ENOTEMPTY) and fake_rmdir is None and _rmdir_children(rootfd, rel):
            continue  # sub-cgroups the container made were removed: retry
        if e != EBUSY or fake_rmdir is not None or waited > 1.0:
            return "remove cgroup %s/%s: %s" % (mnt, rel, os.strerror(e).lower())
        if not killed:
            killed = True
            try:
                kill()
            except (OSError, PyruncError):
                pass
        import time

        time.sleep(delay)
        waited += delay
        delay = min(delay * 2, 0.1)


def _rmdir_children(rootfd, rel):
    """remove the sub-cgroups below rel, deepest first; True if any was removed"""
    try:
        fd = os.open(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=rootfd)
    except OSError:
        return False
    try:
        names = [e.name for e in os.scandir(fd) if e.is_dir(follow_symlinks=False)]
    finally:
        os.close(fd)
    removed = False
    for n in names:
        child = rel + "/" + n
        _rmdir_children(rootfd, child)
        try:
            os.rmdir(child, dir_fd=rootfd)
            removed = True
        except OSError:
            pass
    return removed


def destroy(record, kill):
    """Manager.destroy() of the plain cgroupfs record `record` (state.json's "cgroup"
    with "h", no fake prefix, not systemd's), without building the Manager: the same
    directories removed, the same checks of each mount, the same first error
    returned (None when all is gone).  kill(): see remove_made."""
    error = None
    for mnt, rel, _, _, made, dev, _ in record["h"]:
        if not made and not rel:
            continue
        # the mount must still be the cgroupfs create saw (as _H.open_root).  A cgroup
        # that existed before create is removed quietly (remove_existing): a mount
        # that changed is no error for it either, as in Manager.destroy
        try:
            fd = open_cgroup_mount(mnt, dev)
        except OSError as err:
            if made:
                error = error or "open cgroup mount %s: %s" % (mnt, os.strerror(err.errno).lower())
            continue
        if fd < 0:
            if made:
                error = error or ("open cgroup mount %s: it is no longer the cgroup filesystem "
                                  "/proc/self/mountinfo listed" % mnt)
            continue
        try:
            if made:
                error = error or remove_made(fd, mnt, rel, made, kill)[1]
            else:
                remove_existing(fd, rel)
        finally:
            os.close(fd)
    return error


def remove_existing(rootfd, leaf, rmdir=None):
    """The container's cgroup existed before create (a caller made it): removed when
    empty, as runc removes every path of its cgroup manager on delete (its bats
    suite's rt-period test leaves a cgroup with a real-time budget behind otherwise,
    and the next run of the test fails).  Never waited for, never killed: what is
    still in it is not necessarily the container's.  rmdir: as in remove_made."""
    try:
        if rmdir is not None:
            rmdir(rootfd, leaf)
        else:
            os.rmdir(leaf, dir_fd=rootfd)
    except OSError:
        pass
