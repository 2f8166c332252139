"""Free-space guard: a download or an unpack stops, with one line, while the
filesystem it writes to still has a margin free, instead of filling it (a gzip bomb
inflates 10 MB into 10 GiB of zeros; a registry may send more than it announced).

The margin is min(1 GiB, 5 % of the filesystem) of space and min(1 M, 5 % of its
inodes) (filesystems that report no inode count have no inode margin): a large disk
keeps a gigabyte for everything else on the machine, a small one (a 64 MiB tmpfs)
stays usable for images that fit.  Space counts from f_bavail, what an unprivileged
writer may still use, so the blocks ext4 reserves for root are never eaten either.

statvfs is not called for every write: after a check, the writer may write half of
the headroom left above the margin (at most 64 MiB) before it looks again, so checks
get closer as the filesystem fills, and other writers on the same filesystem are
allowed for.  Each entry of a layer is counted as at least one 4 KiB block and one
inode: a layer of a million empty files fills inodes and directory blocks, not bytes.
"""
import os
import threading

from .errors import PyimageError

GIB = 1 << 30
STEP_MAX = 64 << 20
INODE_STEP_MAX = 1 << 16
BLOCK = 4096


class NoSpace(PyimageError):
    """a write would leave less than the margin free"""


def human(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def margins(st):
    size = st.f_blocks * st.f_frsize
    space = min(GIB, size // 20)
    inodes = min(1 << 20, st.f_files // 20) if st.f_files else 0
    return space, inodes


class Guard:
    """counts what a writer adds to the filesystem of `fd` (an open directory or file,
    kept by the caller) and checks the margin as it goes.  `what` names the writer in
    the message ("apply layer sha256:..."), `where` the filesystem's directory.
    Thread-safe: the download threads of one pull share the store's guard."""

    def __init__(self, fd, what, where):
        self.fd = fd
        self.what = what
        self.where = where
        self.lock = threading.Lock()
        # budgets before the next statvfs; 0 forces a check at the first write
        self.budget = 0
        self.inode_budget = 0

    def charge(self, nbytes, inodes=0):
        """about to write nbytes (and create `inodes` entries)"""
        with self.lock:
            self.budget -= nbytes
            self.inode_budget -= inodes
            if self.budget < 0 or self.inode_budget < 0:
                self._check(-self.budget if self.budget < 0 else 0,
                            -self.inode_budget if self.inode_budget < 0 else 0)

    def fits(self, nbytes):
        """refuse now if nbytes (announced sizes of downloads) cannot fit above the margin"""
        with self.lock:
            self._check(nbytes, 0, announced=True)

    def _check(self, need, need_inodes, announced=False):
        st = os.fstatvfs(self.fd)
        space_margin, inode_margin = margins(st)
        free = st.f_bavail * st.f_frsize
        room = free - space_margin
        if room < need:
            if announced:
                raise NoSpace("%s: needs %s but %s has %s free (pyimage keeps %s free)"
                              % (self.what, human(need), self.where, human(free), human(space_margin)))
            raise NoSpace("%s: stopped with %s free on the filesystem of %s (pyimage keeps %s free; "
                          "a layer larger than the disk, or a decompression bomb?)"
                          % (self.what, human(free), self.where, human(space_margin)))
        iroom = None
        if st.f_files:
            iroom = st.f_favail - inode_margin
            if iroom < need_inodes:
                raise NoSpace("%s: stopped with %d inodes free on the filesystem of %s (pyimage keeps %d free)"
                              % (self.what, st.f_favail, self.where, inode_margin))
        self.budget = min((room - need) // 2, STEP_MAX)
        self.inode_budget = INODE_STEP_MAX if iroom is None else min((iroom - need_inodes) // 2, INODE_STEP_MAX)
