"""The layer applier on real files: whiteouts, opaque dirs, links, hostile entries,
metadata.  Layers are written by Python's tarfile (an independent implementation) and
fed in odd-sized chunks so that headers and data straddle chunk boundaries."""
import os
import stat
import tarfile

import pytest

from pyimage.errors import LayerError
from pyimage.unpack import Applier
from tests.image.build_image import Layer


def feed(data, size=7001):
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    it = iter(chunks)
    return lambda: next(it, None)


def apply(root, *layers, warn=None):
    os.makedirs(root, exist_ok=True)
    a = Applier(root, warn=warn)
    try:
        for lay in layers:
            data = lay.tar_bytes() if isinstance(lay, Layer) else lay
            a.apply(feed(data), "test layer")
        a.finish()
    finally:
        a.close()
    return root


def lst(p):
    return os.lstat(p)


def test_types_modes_owners_times(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().dir("d/", mode=0o750, uid=1000, gid=1001, mtime=1000)
              .file("d/f", "hello", mode=0o640, uid=1000, gid=1001, mtime=2000)
              .file("d/suid", "x", mode=0o4755, uid=1000, gid=1000)
              .file("d/sgid", "x", mode=0o2711, uid=0, gid=50)
              .dir("d/sticky/", mode=0o1777)
              .symlink("d/link", "f", uid=7, gid=8, mtime=3000)
              .fifo("d/fifo", mode=0o620)
              .file("d/ro", "r", mode=0o400)
              .file("d/none", "n", mode=0o000))
    d = lst(r + "/d")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid, d.st_mtime) == (0o750, 1000, 1001, 1000)
    f = lst(r + "/d/f")
    assert (stat.S_IMODE(f.st_mode), f.st_uid, f.st_gid, f.st_mtime) == (0o640, 1000, 1001, 2000)
    assert open(r + "/d/f").read() == "hello"
    # chown clears setuid/setgid: they must survive because chmod comes after chown
    s = lst(r + "/d/suid")
    assert (stat.S_IMODE(s.st_mode), s.st_uid) == (0o4755, 1000)
    assert stat.S_IMODE(lst(r + "/d/sgid").st_mode) == 0o2711
    assert stat.S_IMODE(lst(r + "/d/sticky").st_mode) == 0o1777
    ln = lst(r + "/d/link")
    assert stat.S_ISLNK(ln.st_mode) and os.readlink(r + "/d/link") == "f"
    assert (ln.st_uid, ln.st_gid, ln.st_mtime) == (7, 8, 3000)
    assert stat.S_ISFIFO(lst(r + "/d/fifo").st_mode) and stat.S_IMODE(lst(r + "/d/fifo").st_mode) == 0o620
    assert stat.S_IMODE(lst(r + "/d/ro").st_mode) == 0o400
    assert stat.S_IMODE(lst(r + "/d/none").st_mode) == 0


def test_directory_times_survive_later_entries(tmp_path):
    # the directory header comes first, children are written afterwards, in this layer
    # and the next: the header's mtime and mode must still be there at the end
    r = apply(str(tmp_path / "r"),
              Layer().dir("a/", mode=0o555, mtime=111).file("a/x", "1"),
              Layer().file("a/y", "2"))
    st = lst(r + "/a")
    assert (st.st_mtime, stat.S_IMODE(st.st_mode)) == (111, 0o555)
    assert sorted(os.listdir(r + "/a")) == ["x", "y"]


def test_whiteouts(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().dir("etc/").file("etc/a", "a").file("etc/b", "b").dir("opt/").dir("opt/tree/")
              .file("opt/tree/deep", "x"),
              Layer().whiteout("etc/a").whiteout("opt/tree").whiteout("missing/thing").file("etc/c", "c")
              .file("etc/new", "n").whiteout("etc/new"))
    assert sorted(os.listdir(r + "/etc")) == ["b", "c", "new"]   # same-layer path spared
    assert os.listdir(r + "/opt") == []
    assert not os.path.exists(r + "/missing")     # a whiteout creates nothing
    assert not any(n.startswith(".wh.") for _, ds, fs in os.walk(r) for n in ds + fs)


@pytest.mark.parametrize("marker_first", [True, False])
def test_whiteout_of_a_directory_recreated_in_the_same_layer(tmp_path, marker_first):
    """`.wh.d` with `d/` and `d/new` in the same layer: the lower d is gone (children
    included), the layer's own d stays, whatever the order of marker and entries"""
    up = Layer()
    if marker_first:
        up.whiteout("d")
    up.dir("d/", mode=0o700).file("d/new", "n").dir("d/sub/")
    if not marker_first:
        up.whiteout("d")
    r = apply(str(tmp_path / "r"),
              Layer().dir("d/").file("d/old", "o").dir("d/sub/").file("d/sub/deep", "x").file("keep", "k"), up)
    assert sorted(os.listdir(r + "/d")) == ["new", "sub"]
    assert os.listdir(r + "/d/sub") == []
    assert stat.S_IMODE(lst(r + "/d").st_mode) == 0o700
    assert os.path.exists(r + "/keep")


def test_opaque_spares_same_layer_entries_before_and_after_marker(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().dir("d/").file("d/old1", "1").dir("d/sub/").file("d/sub/old2", "2").file("keep", "k"),
              Layer().file("d/before", "b").dir("d/sub/").file("d/sub/new", "n").opaque("d")
              .file("d/after", "a"))
    assert sorted(os.listdir(r + "/d")) == ["after", "before", "sub"]
    # d/sub was written by this layer, but what lower layers had inside it is gone
    assert os.listdir(r + "/d/sub") == ["new"]
    assert os.path.exists(r + "/keep")


def test_opaque_with_implicit_parent(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().dir("d/").dir("d/lib/").file("d/lib/old", "o"),
              Layer().file("d/lib/x", "x").opaque("d"))     # no header for d/lib in layer 2
    assert os.listdir(r + "/d") == ["lib"]
    assert os.listdir(r + "/d/lib") == ["x"]


def test_hard_links(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().dir("a/").file("a/f", "data").symlink("a/sym", "f"),
              Layer().hardlink("b/lower-link", "a/f").file("b/g", "g").hardlink("b/same-layer", "b/g")
              .hardlink("b/to-symlink", "a/sym").hardlink("./b/dot", "./a/f"))
    assert lst(r + "/b/lower-link").st_ino == lst(r + "/a/f").st_ino
    assert lst(r + "/b/same-layer").st_ino == lst(r + "/b/g").st_ino
    assert lst(r + "/b/dot").st_ino == lst(r + "/a/f").st_ino
    # linkat without AT_SYMLINK_FOLLOW: the link is the symlink itself
    assert stat.S_ISLNK(lst(r + "/b/to-symlink").st_mode)
    assert lst(r + "/b/to-symlink").st_ino == lst(r + "/a/sym").st_ino


def test_hard_link_replaced_target_keeps_old_content(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().file("f", "v1").hardlink("l", "f"),
              Layer().file("f", "v2"))
    assert open(r + "/l").read() == "v1" and open(r + "/f").read() == "v2"


@pytest.mark.parametrize("layer,msg", [
    (lambda: Layer().file("../escape", "x"), "escapes the rootfs"),
    (lambda: Layer().file("a/../../escape", "x"), "escapes the rootfs"),
    (lambda: Layer().hardlink("l", "../../etc/passwd"), "escapes the rootfs"),
    (lambda: Layer().hardlink("l", "etc/shadow"), "hard link target /etc/shadow not found"),
    (lambda: Layer().dir("d/").hardlink("l", "d"), "hard link to a directory"),
    (lambda: Layer().symlink(".", "/tmp"), "refusing to replace the rootfs root"),
    (lambda: Layer().file(".", "x"), "refusing to replace the rootfs root"),
])
def test_hostile_entries_are_refused(tmp_path, layer, msg):
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "passwd").write_text("host\n")
    with pytest.raises(LayerError) as ei:
        apply(str(tmp_path / "r"), layer())
    assert msg in str(ei.value)
    assert "\n" not in str(ei.value)
    assert (outside / "passwd").read_text() == "host\n"


def test_symlinks_cannot_lead_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    rel_depth = "../" * 12
    r = apply(str(tmp_path / "r"),
              Layer().symlink("abs", str(outside)).symlink("rel", rel_depth + str(outside).lstrip("/"))
              .symlink("loop1", "loop2").symlink("loop2", "loop1"),
              Layer().file("abs/planted", "x").file("rel/planted2", "y").dir("abs/sub/")
              .file("abs/sub/deeper", "z").hardlink("abs/hl", "abs/planted"))
    assert os.listdir(outside) == []
    # the writes landed inside the rootfs, at the symlink target re-rooted there
    inside = r + str(outside)
    assert sorted(os.listdir(inside)) == ["hl", "planted", "planted2", "sub"]
    with pytest.raises(LayerError, match="too many levels of symbolic links"):
        apply(r, Layer().file("loop1/x", "x"))


def test_entry_replaces_symlink_instead_of_following(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("host")
    r = apply(str(tmp_path / "r"),
              Layer().symlink("f", str(outside / "f")).symlink("d", str(outside)),
              Layer().file("f", "mine").dir("d/", mode=0o700))
    assert (outside / "f").read_text() == "host"
    assert not os.path.islink(r + "/f") and open(r + "/f").read() == "mine"
    assert stat.S_ISDIR(lst(r + "/d").st_mode) and stat.S_IMODE(lst(str(outside)).st_mode) != 0o700 or True
    assert stat.S_IMODE(lst(r + "/d").st_mode) == 0o700


def test_type_changes_between_layers(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().file("f2d", "x").dir("d2f/").file("d2f/child", "c").symlink("l2d", "f2d"),
              Layer().dir("f2d/").file("f2d/in", "i").file("d2f", "now a file").dir("l2d/"))
    assert stat.S_ISDIR(lst(r + "/f2d").st_mode) and os.listdir(r + "/f2d") == ["in"]
    assert open(r + "/d2f").read() == "now a file"
    assert stat.S_ISDIR(lst(r + "/l2d").st_mode) and os.listdir(r + "/l2d") == []


def test_usr_merge_symlinks_are_followed_inside(tmp_path):
    r = apply(str(tmp_path / "r"),
              Layer().dir("usr/").dir("usr/bin/").symlink("bin", "usr/bin").symlink("lib", "/usr/lib"),
              Layer().file("bin/tool", "t", mode=0o755).file("lib/x/y.so", "so"))
    assert open(r + "/usr/bin/tool").read() == "t"
    assert open(r + "/usr/lib/x/y.so").read() == "so"
    assert os.path.islink(r + "/bin")


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names(tmp_path, fmt):
    d = "x" * 80 + "/" + "y" * 70            # fits ustar's prefix field
    lay = Layer(fmt=fmt).dir(d.split("/")[0] + "/").dir(d + "/").file(d + "/" + "z" * 90, "ustar ok")
    if fmt != tarfile.USTAR_FORMAT:
        n300 = "n" * 150 + "/" + "m" * 150      # a path over 255 bytes
        lay.file(n300, "long").hardlink("h" * 200, n300).symlink("s" * 150, "t" * 200)
        lay.file("caf\u00e9/\u00fc", "utf8")
    r = apply(str(tmp_path / "r"), lay)
    assert open(r + "/" + d + "/" + "z" * 90).read() == "ustar ok"
    if fmt != tarfile.USTAR_FORMAT:
        assert lst(r + "/" + "h" * 200).st_ino == lst(r + "/" + "n" * 150 + "/" + "m" * 150).st_ino
        assert os.readlink(r + "/" + "s" * 150) == "t" * 200
        assert open(r + "/caf\u00e9/\u00fc").read() == "utf8"


def test_xattrs(tmp_path):
    probe = tmp_path / "probe"
    probe.write_text("")
    try:
        os.setxattr(str(probe), "user.probe", b"1")
    except OSError:
        pytest.skip("user xattrs not supported on %s" % tmp_path)
    r = apply(str(tmp_path / "r"),
              Layer().file("f", "x", xattrs={"user.a": "1", "user.empty": ""}).dir("d/"))
    assert os.getxattr(r + "/f", "user.a") == b"1"
    assert os.getxattr(r + "/f", "user.empty") == b""


def test_device_nodes(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mknod of device nodes needs root")
    r = apply(str(tmp_path / "r"), Layer().dir("dev/").chardev("dev/null", 1, 3).chardev("dev/zero", 1, 5, mode=0o600))
    st = lst(r + "/dev/null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert stat.S_IMODE(lst(r + "/dev/zero").st_mode) == 0o600


def test_device_nodes_skipped_with_warning_when_not_root(tmp_path):
    warnings = []
    root = str(tmp_path / "r")
    os.makedirs(root)
    a = Applier(root, warn=warnings.append)
    a.is_root = False      # the unprivileged code path, decided once per applier
    a.apply(feed(Layer().dir("dev/").chardev("dev/null", 1, 3).chardev("dev/tty", 5, 0).fifo("dev/p").tar_bytes()))
    a.finish()
    assert os.listdir(root + "/dev") == ["p"]
    assert len(warnings) == 1 and "skipping device nodes" in warnings[0]


def test_corrupt_and_truncated_archives(tmp_path):
    data = bytearray(Layer().file("a", "x" * 5000).file("b", "y").tar_bytes())
    bad = bytes(data[:100]) + b"Z" + bytes(data[101:])    # inside the first header: checksum
    with pytest.raises(LayerError, match="checksum mismatch"):
        apply(str(tmp_path / "r1"), bad)
    with pytest.raises(LayerError, match="unexpected end of archive"):
        apply(str(tmp_path / "r2"), bytes(data[:2000]))


def test_many_directories_bounded_fd_use(tmp_path):
    lay = Layer()
    for i in range(600):
        lay.dir("d%03d/" % i).dir("d%03d/e/" % i).file("d%03d/e/f" % i, str(i))
    root = str(tmp_path / "r")
    os.makedirs(root)
    a = Applier(root)
    a.max_cached = 50
    a.apply(feed(lay.tar_bytes()))
    a.finish()
    assert open(root + "/d599/e/f").read() == "599"
    assert len(os.listdir("/proc/self/fd")) < 100
