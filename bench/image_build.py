"""Build the benchmark image for bench_image.py: about 220 MB uncompressed, ~30,000
entries in 5 gzip layers, made of real files from this machine (shared libraries,
headers, /usr/share, the Python standard library) plus hand-made entries that exercise
the hard parts: whiteouts of files and of a directory, an opaque directory with
entries of the same layer before and after the marker, hard links (inside a layer and
to a lower layer), PAX long names (>100 and >255 bytes), a UTF-8 name, setuid/setgid/
sticky modes, 0600/0400 files, uid 1000 and 65534, a FIFO, user.* xattrs, a `.` root
entry, usr-merged `/bin -> usr/bin` symlinks, a file replaced by a directory and the
reverse.

The walk is sorted and budgeted, so the same machine gives the same image.
Nothing is taken from /etc of the host (synthetic passwd/group instead).
"""
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.image.build_image import Layer, build_image  # noqa: E402

MB = 1000 * 1000


def take(lay, src, dest, max_bytes, max_entries, max_file=8 * MB):
    """add files of host dir `src` under `dest` (sorted walk) within the budgets;
    returns (bytes, entries) added"""
    total = n = 0
    for root, dirs, files in os.walk(src):
        dirs.sort()
        rel = os.path.relpath(root, src)
        droot = dest if rel == "." else dest + "/" + rel
        if n >= max_entries or total >= max_bytes:
            break
        lay.dir(droot + "/", mode=0o755)
        n += 1
        for f in sorted(files):
            if n >= max_entries or total >= max_bytes:
                break
            p = os.path.join(root, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                lay.symlink(droot + "/" + f, os.readlink(p))
                n += 1
            elif stat.S_ISREG(st.st_mode) and st.st_size <= max_file:
                try:
                    with open(p, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                lay.file(droot + "/" + f, data, mode=stat.S_IMODE(st.st_mode) & 0o755,
                         mtime=int(st.st_mtime))
                total += len(data)
                n += 1
    return total, n


def pyenv_stdlib():
    cands = []
    for base in (os.path.expanduser("~/.pyenv/versions"), "/usr/local/lib", "/usr/lib"):
        if os.path.isdir(base):
            for name in sorted(os.listdir(base)):
                for sub in ("lib/python3.11", "python3.11", ""):
                    p = os.path.join(base, name, sub) if sub else os.path.join(base, name)
                    if os.path.isfile(os.path.join(p, "os.py")):
                        cands.append(p)
    return cands[0] if cands else "/usr/lib/python3.11"


def layers():
    stats = []
    # 1: base system: usr-merged layout, libraries, headers
    l1 = Layer()
    l1.dir("./", mode=0o755)
    for d in ("usr/", "usr/bin/", "usr/lib/", "usr/sbin/", "etc/", "var/", "var/tmp/", "root/", "home/"):
        l1.dir(d, mode=0o700 if d == "root/" else 0o755)
    l1.dir("tmp/", mode=0o1777)
    for d in ("bin", "lib", "sbin"):
        l1.symlink(d, "usr/" + d)
    l1.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
                          "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n")
    l1.file("etc/group", "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n")
    l1.file("etc/shadow", "root:*:19000:0:99999:7:::\n", mode=0o640, gid=42)
    stats.append(take(l1, "/usr/lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", 45 * MB, 1500))
    stats.append(take(l1, "/usr/include", "usr/include", 45 * MB, 5000))
    stats.append(take(l1, "/usr/bin", "usr/bin", 10 * MB, 300, max_file=2 * MB))
    # 2: /usr/share (docs, locales, misc data)
    l2 = Layer()
    stats.append(take(l2, "/usr/share/man", "usr/share/man", 27 * MB, 18500))
    stats.append(take(l2, "/usr/share/doc", "usr/share/doc", 25 * MB, 2500))
    stats.append(take(l2, "/usr/share/locale", "usr/share/locale", 10 * MB, 600))
    stats.append(take(l2, "/usr/share/zoneinfo", "usr/share/zoneinfo", 6 * MB, 1500))
    # 3: a Python standard library
    l3 = Layer()
    l3.dir("usr/local/", mode=0o755).dir("usr/local/lib/", mode=0o755)
    stats.append(take(l3, pyenv_stdlib(), "usr/local/lib/python3.11", 45 * MB, 5000))
    # 4: the application layer with every hard case
    l4 = Layer()
    stats.append(take(l4, "/usr/lib/python3", "usr/lib/python3", 14 * MB, 2000))
    l4.dir("opt/", mode=0o755).dir("opt/app/", mode=0o750, uid=1000, gid=1000)
    l4.file("opt/app/config.ini", "[app]\nname=bench\n", mode=0o600, uid=1000, gid=1000)
    l4.file("opt/app/secret", "s3cret\n", mode=0o400, uid=1000, gid=1000)
    l4.file("opt/app/run-as-root", b"#!/bin/sh\n", mode=0o4755)
    l4.file("opt/app/sgid-tool", b"#!/bin/sh\n", mode=0o2755, gid=1000)
    l4.dir("opt/app/shared/", mode=0o1777)
    l4.file("opt/app/nobody-file", "x", uid=65534, gid=65534)
    l4.fifo("opt/app/control.fifo", mode=0o620)
    l4.file("opt/app/with-xattr", "x", xattrs={"user.origin": "bench", "user.empty": ""})
    l4.file("opt/app/caf\u00e9-\u00fcnicode.txt", "utf-8 name\n")
    long_dir = "opt/app/" + "d" * 90 + "/" + "e" * 90
    l4.dir(long_dir[:long_dir.rindex("/")] + "/").dir(long_dir + "/")
    l4.file(long_dir + "/" + "f" * 120 + ".txt", "long name >255 bytes\n")
    l4.file("opt/app/" + "n" * 150, "name >100 bytes\n")
    l4.file("opt/app/data.bin", os.urandom(2 * MB))
    l4.hardlink("opt/app/data-link.bin", "opt/app/data.bin")
    l4.hardlink("opt/app/passwd-link", "etc/passwd")                 # to a lower layer
    l4.hardlink("opt/app/" + "h" * 160, "opt/app/" + "n" * 150)      # long names on both sides
    # whiteouts of lower files and of a whole directory, an opaque directory
    l4.whiteout("usr/include/stdio.h")
    l4.whiteout("usr/share/zoneinfo/Europe")
    l4.file("usr/share/doc/README.bench", "kept: written by the same layer before the marker\n")
    l4.opaque("usr/share/doc")
    l4.dir("usr/share/doc/bench/", mode=0o755)
    l4.file("usr/share/doc/bench/NOTES", "written after the opaque marker\n")
    # 5: a small update layer: changed files, type changes, more whiteouts
    l5 = Layer()
    l5.file("etc/motd", "bench image\n")
    l5.file("opt/app/config.ini", "[app]\nname=bench\nversion=2\n", mode=0o640, uid=1000, gid=1000)
    l5.whiteout("usr/local/lib/python3.11/json")
    l5.dir("opt/app/data.bin/", mode=0o755)            # a file (with a hard link) becomes a directory
    l5.file("opt/app/data.bin/part1", os.urandom(64 * 1024))
    l5.file("usr/local/lib/python3.11/email", "a directory replaced by a file\n")
    l5.whiteout("opt/app/" + "n" * 150)
    stats.append(take(l5, "/usr/share/perl5", "usr/share/perl5", 4 * MB, 800))
    return [l1, l2, l3, l4, l5], stats


def build(store_dir, ref="bench"):
    lays, stats = layers()
    desc = build_image(store_dir, ref, lays, config={
        "config": {"Cmd": ["/usr/bin/env"], "WorkingDir": "/opt/app", "User": "root",
                   "Labels": {"org.example.bench": "pyimage"}}})
    size = sum(s[0] for s in stats)
    entries = sum(s[1] for s in stats)
    return desc, size, entries


if __name__ == "__main__":
    d, size, n = build(sys.argv[1])
    print("built %s: ~%.0f MB of file data, ~%d entries" % (d["digest"], size / MB, n))
