"""Describe a directory tree for comparisons: path -> (type, mode, uid, gid, link target
or content sha256 or device numbers).  Used to check pyimage's rootfs against umoci's."""
import hashlib
import os
import stat
import sys


def describe(root, xattrs=False):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISREG(m):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for b in iter(lambda: f.read(1 << 20), b""):
                        h.update(b)
                what = ("file", h.hexdigest())
            elif stat.S_ISLNK(m):
                what = ("symlink", os.readlink(p))
            elif stat.S_ISDIR(m):
                what = ("dir", None)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                what = ("chr" if stat.S_ISCHR(m) else "blk", (os.major(st.st_rdev), os.minor(st.st_rdev)))
            elif stat.S_ISFIFO(m):
                what = ("fifo", None)
            else:
                what = ("other", None)
            entry = what + (oct(stat.S_IMODE(m)) if not stat.S_ISLNK(m) else None, st.st_uid, st.st_gid)
            if xattrs and not stat.S_ISLNK(m):
                entry += (tuple(sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                       for k in os.listxattr(p, follow_symlinks=False))),)
            out[rel] = entry
    return out


def diff(a, b, limit=20):
    """human-readable differences between two describe() results"""
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append("%s: %r != %r" % (k, a.get(k), b.get(k)))
            if len(lines) >= limit:
                lines.append("...")
                break
    return lines


if __name__ == "__main__":
    d = diff(describe(sys.argv[1]), describe(sys.argv[2]), limit=50)
    print("\n".join(d) or "identical")
    sys.exit(1 if d else 0)
