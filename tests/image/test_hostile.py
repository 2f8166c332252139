"""Hostile images and registries, built here and served from 127.0.0.1: size limits
(manifests, indexes, configs, layers), decompression bombs, the free-space margin,
metadata large enough to expose quadratic steps, misleading errors, unprintable
bytes, device nodes, and `bundle --shared` killed at awkward moments.  Each checks
one line of error, and that nothing (bundle, blob, partial file, mount) is left."""
import gzip
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import tarfile
import time

import pytest

from pyimage import manifest as mf
from tests.image import build_image as bi
from tests.image.conftest import PYIMAGE, assert_one_line_error, unique
from tests.image.faultproxy import FaultProxy

MODES = [pytest.param(False, id="copy"), pytest.param(True, id="shared")]


def mode_args(shared):
    if shared and os.geteuid() != 0:
        pytest.skip("bundle --shared mounts overlays: needs root")
    return ["--shared"] if shared else []


# --- building images by hand ---------------------------------------------------------

def push_parts(addr, repo_tag, layers, config=None, config_raw=None, edit=None):
    """push blobs and a manifest as given: layers = [(blob, media type, diff_id)];
    edit(manifest) may make the manifest lie before it is pushed"""
    from pyimage import reference
    from pyimage.registry import Client
    r = reference.parse("%s/%s" % (addr, repo_tag))
    c = Client(r.host, loopback=True, config={})
    cfg = {"architecture": mf.host_platform()["architecture"], "os": "linux",
           "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]}}
    for k, v in (config or {}).items():
        cfg[k] = v
    raw_cfg = config_raw if config_raw is not None else json.dumps(cfg).encode()
    descs = []
    seen = set()
    for blob, mt, _ in layers + [(raw_cfg, mf.OCI_CONFIG, None)]:
        d = mf.sha256_digest(blob)
        if d not in seen:
            seen.add(d)
            if not c.blob_exists(r.repo, d, "push"):
                c.upload_blob(r.repo, d, len(blob), lambda b=blob: io.BytesIO(b), "push")
        descs.append({"mediaType": mt, "digest": d, "size": len(blob)})
    man = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "config": descs[-1], "layers": descs[:-1]}
    if edit:
        edit(man)
    c.put_manifest(r.repo, r.tag, json.dumps(man).encode(), mf.OCI_MANIFEST, "push")
    return "%s/%s" % (addr, repo_tag)


def tar_layer(lay, compression="gzip"):
    tar = lay.tar_bytes()
    blob, mt = bi.compress(tar, compression)
    return blob, mt, "sha256:" + hashlib.sha256(tar).hexdigest()


def _header(name, size):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = size, 0o644, bi.MTIME
    return ti.tobuf(format=tarfile.PAX_FORMAT)


def zeros_bomb(kind, files):
    """a layer of `files` = [(name, size)] of zeros.  Built from compressed members
    (gzip members, zstd frames) of a zero block, concatenated: a valid stream made in
    milliseconds, a few MB for gigabytes of zeros.  Its diff_id is the real one."""
    unit = 16 << 20
    if kind == "gzip":
        comp = lambda data: gzip.compress(data, compresslevel=9, mtime=0)     # noqa: E731
        mt = mf.OCI_LAYER_GZIP
    else:
        import zstandard
        comp = zstandard.ZstdCompressor(level=3).compress
        mt = mf.OCI_LAYER_ZSTD
    zero_unit = comp(bytes(unit))
    cache = {}
    parts, h = [], hashlib.sha256()
    z = bytes(unit)
    for name, size in files:
        hdr = _header(name, size)
        parts.append(comp(hdr))
        h.update(hdr)
        n, rest = divmod(size, unit)
        parts.extend([zero_unit] * n)
        for _ in range(n):
            h.update(z)
        tail = rest + (-size % 512)
        if tail:
            if tail not in cache:
                cache[tail] = comp(bytes(tail))
            parts.append(cache[tail])
            h.update(bytes(tail))
    parts.append(comp(bytes(1024)))
    h.update(bytes(1024))
    return b"".join(parts), mt, "sha256:" + h.hexdigest()


# --- what is left behind -------------------------------------------------------------

def mounts_under(path):
    """mounts below path (not path itself: the tmpfs fixture is one)"""
    path = os.path.realpath(str(path)) + "/"
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(path)]


def store_left(store, keep=()):
    """blobs (but manifests/configs in `keep`), partial files, unpacked-layer leftovers"""
    left = []
    bd = os.path.join(store, "blobs", "sha256")
    for n in os.listdir(bd) if os.path.isdir(bd) else []:
        if os.path.getsize(os.path.join(bd, n)) > (64 << 10):
            left.append("blob " + n)
    tmp = os.path.join(store, ".pyimage", "tmp")
    left += ["tmp/" + n for n in (os.listdir(tmp) if os.path.isdir(tmp) else []) if not n.endswith(".lock")]
    lay = os.path.join(store, ".pyimage", "layers")
    left += ["layers/" + n for n in (os.listdir(lay) if os.path.isdir(lay) else []) if "." in n]
    return left


def assert_nothing_left(pyimage, bundle):
    assert not os.path.exists(bundle), os.listdir(bundle)
    assert store_left(pyimage.store) == []
    assert mounts_under(pyimage.store) == []
    assert json.load(open(os.path.join(pyimage.store, "index.json")))["manifests"] == []


@pytest.fixture
def tmpfs(tmp_path):
    """a 64 MiB tmpfs: proves the free-space margin without filling the real disk"""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(d)], check=True)
    try:
        yield d
    finally:
        # until nothing is mounted there (a test may have stacked a mount on it)
        while mounts_under(d.parent) and subprocess.run(["umount", "-l", str(d)]).returncode == 0:
            pass


# --- size limits on manifests, indexes and configs -------------------------------------

def big_env(n):
    return ["K%d=v" % i for i in range(n)]


@pytest.mark.parametrize("shared", MODES)
def test_config_over_4mib_is_refused_by_its_descriptor(pyimage, registry, tmp_path, shared):
    lay = tar_layer(bi.Layer().file("a", "a"))
    ref = push_parts(registry.address, "hostile/bigcfg:1", [lay], config={"config": {"Env": big_env(500000)}})
    line = assert_one_line_error(pyimage("bundle", *mode_args(shared), ref, tmp_path / "b", check=False),
                                 "config sha256:", mf.OCI_CONFIG, "more than the 4 MiB limit")
    assert " bytes, more than" in line
    assert_nothing_left(pyimage, tmp_path / "b")


def test_config_whose_descriptor_understates_is_read_no_further(pyimage, registry, tmp_path):
    """the descriptor says 1000 bytes: no more than that is read, then the digest fails"""
    lay = tar_layer(bi.Layer().file("a", "a"))

    def lie(man):
        man["config"]["size"] = 1000
    ref = push_parts(registry.address, "hostile/liecfg:1", [lay], config={"config": {"Env": big_env(500000)}},
                     edit=lie)
    assert_one_line_error(pyimage("pull", ref, check=False), "does not match its descriptor")


@pytest.fixture
def proxy(registry):
    p = FaultProxy(registry.address).start()
    yield p
    p.stop()


def test_manifest_over_4mib_with_or_without_content_length(pyimage, proxy, tmp_path):
    ref = proxy.address + "/hostile/bigman:1"
    body = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "pad": "x" * (5 << 20)}).encode()
    proxy.add("GET", r"/manifests/", ("body", body, {"Content-Type": mf.OCI_MANIFEST}))
    assert_one_line_error(pyimage("pull", ref, check=False), "manifest 1", mf.OCI_MANIFEST,
                          "is %d bytes, more than the 4 MiB limit" % len(body))
    # no Content-Length, a body that never ends: read up to the limit only
    proxy.add("GET", r"/manifests/", ("endless", 200, {"Content-Type": mf.OCI_MANIFEST}), times=None)
    assert_one_line_error(pyimage("pull", ref, check=False), "more than the 4 MiB limit")
    taken = [e[4] for e in proxy.log if e[3] == 200 and len(e) > 4]
    assert taken and max(taken) < (64 << 20), taken


def test_index_entry_over_4mib_is_refused_before_the_fetch(pyimage, proxy, busybox_ref, tmp_path):
    desc = json.loads(pyimage("inspect", "--remote", busybox_ref).stdout)
    idx = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": desc["digest"], "size": 5 << 20,
         "platform": {"os": "linux", "architecture": mf.host_platform()["architecture"]}}]}
    proxy.add("GET", r"/manifests/1$", ("body", json.dumps(idx).encode(), {"Content-Type": mf.OCI_INDEX}))
    n = len(proxy.log)
    line = assert_one_line_error(pyimage("pull", proxy.address + "/test/busybox:1", check=False),
                                 desc["digest"], "is %d bytes, more than the 4 MiB limit" % (5 << 20))
    assert "manifest" in line
    assert not [e for e in proxy.log[n:] if desc["digest"] in e[1]]       # never asked for


@pytest.mark.parametrize("status", [400, 404])
def test_endless_error_body_is_read_bounded(pyimage, proxy, tmp_path, status):
    proxy.add("GET", r"/manifests/", ("endless", status, {"Content-Type": "application/json"}), times=None)
    assert_one_line_error(pyimage("pull", proxy.address + "/hostile/err:1", check=False),
                          "not found" if status == 404 else "http 400")
    taken = [e[4] for e in proxy.log if len(e) > 4]
    assert taken and max(taken) < (64 << 20), taken


def test_redirect_with_endless_body_is_not_read(pyimage, proxy, busybox_ref, tmp_path):
    proxy.add("GET", r"/blobs/", ("endless", 307, {"Location": "?redirected=1"}), times=2)
    pyimage("bundle", proxy.address + "/test/busybox:1", tmp_path / "b")
    taken = [e[4] for e in proxy.log if len(e) > 4]
    assert len(taken) == 2 and max(taken) < (64 << 20), taken
    assert any("redirected=1" in e[1] for e in proxy.log)


def test_endless_token_answer_is_read_bounded(pyimage, proxy, tmp_path):
    """a Bearer challenge whose realm answers 200 with a body that never ends"""
    realm = "http://%s/token" % proxy.address
    challenge = {"WWW-Authenticate": 'Bearer realm="%s",service="hostile"' % realm}
    proxy.add("GET", r"^/v2/", ("status", 401, challenge), times=None)
    proxy.add("GET", r"^/token", ("endless", 200, {"Content-Type": "application/json"}), times=None)
    assert_one_line_error(pyimage("pull", proxy.address + "/hostile/token:1", check=False),
                          "token endpoint answered invalid json (or more than 1048576 bytes)")
    taken = [e[4] for e in proxy.log if len(e) > 4]
    assert taken and max(taken) < (64 << 20), taken


# --- linear metadata -------------------------------------------------------------------

def env_keys(budget):
    """distinct short Env names whose JSON array stays under `budget` bytes"""
    import itertools
    import string
    alpha = string.ascii_letters + string.digits
    out, used = [], 2
    for n in itertools.count(1):
        for t in itertools.product(alpha, repeat=n):
            k = "".join(t)
            used += len(k) + 4     # quotes, comma and space (json.dumps)
            if used > budget:
                return out
            out.append(k)


@pytest.mark.parametrize("shared", MODES)
def test_config_with_the_largest_env_under_the_limit_bundles_quickly(pyimage, registry, tmp_path, shared):
    """~600,000 distinct Env names (as many as 4 MiB holds): the merge was quadratic
    (a scan of the list per entry: hours); linear it is seconds.  A generous timeout,
    not a timing assertion"""
    env = env_keys((4 << 20) - 4096)
    assert len(env) > 500000
    lay = tar_layer(bi.Layer().file("a", "a"))
    ref = push_parts(registry.address, "hostile/env:%s" % shared,
                     [lay], config={"config": {"Env": env + ["PATH=/image/bin"], "Cmd": ["x"]}})
    b = tmp_path / "b"
    try:
        pyimage("bundle", *mode_args(shared), ref, b, timeout=120)
        got = json.load(open(b / "config.json"))["process"]["env"]
        assert got[0] == "PATH=/image/bin" and got[1] == "TERM=xterm" and got[2:] == env
    finally:
        if shared:
            pyimage("unbundle", b, check=False)


def test_million_env_entries_and_labels_merge_in_one_pass():
    """make_config itself with 1,000,000 Env entries (beyond what a 4 MiB config holds)
    and 1,000,000 labels"""
    import signal as sig
    from pyimage.bundle import make_config

    def too_slow(*a):
        raise AssertionError("make_config still running after 120 s: quadratic?")
    old = sig.signal(sig.SIGALRM, too_slow)
    sig.alarm(120)
    try:
        env = ["E%d=%d" % (i, i) for i in range(1000000)]
        labels = {"l%d" % i: str(i) for i in range(1000000)}
        spec = make_config({"config": {"Env": env + ["E5=five", "TERM=dumb"], "Labels": labels}}, "/nonexistent",
                           "test")
    finally:
        sig.alarm(0)
        sig.signal(sig.SIGALRM, old)
    e = spec["process"]["env"]
    assert len(e) == 1000002 and e[1] == "TERM=dumb" and e[2 + 5] == "E5=five"
    assert len(spec["annotations"]) >= 1000000


def test_thousands_of_layers(pyimage, registry, tmp_path):
    """2000 layers (one blob repeated): a pool of decoders, not a thread and an fd each"""
    lay = tar_layer(bi.Layer().dir("d/").file("d/f", "x"))
    ref = push_parts(registry.address, "hostile/layers:1", [lay] * 2000)
    pyimage("bundle", ref, tmp_path / "b", timeout=300)
    assert open(tmp_path / "b" / "rootfs" / "d" / "f").read() == "x"


@pytest.mark.parametrize("shared", MODES)
def test_more_layers_than_open_files(pyimage, registry, tmp_path, shared):
    """300 distinct layers with RLIMIT_NOFILE at 256: a partial file, a decoder thread
    and an fd per layer at once ran out of fds ("too many open files")"""
    import resource
    ls = [tar_layer(bi.Layer().file("f%03d" % i, str(i))) for i in range(300)]
    ref = push_parts(registry.address, "hostile/manylayers:1", ls)
    b = tmp_path / "b"
    cmd = [PYIMAGE, "--store", pyimage.store, "bundle"] + mode_args(shared) + [ref, str(b)]
    p = subprocess.run(cmd, env=pyimage.env, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))
    try:
        assert p.returncode == 0, p.stderr
        assert len(os.listdir(b / "rootfs")) == 300
    finally:
        if shared:
            pyimage("unbundle", b, check=False)


def _alarm(seconds):
    def too_slow(*a):
        raise AssertionError("still running after %d s: quadratic?" % seconds)
    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(seconds)


def test_removing_many_directories_and_repeated_opaque_markers_are_linear(tmp_path):
    """a layer whiting out 20,000 directories (the pending directory metadata was
    scanned per removal) and one with 20,000 opaque markers in a directory of 20,000
    files (listed again per marker)"""
    from tests.image.test_unpack import apply
    n = 20000
    l1, l2, l3 = bi.Layer(), bi.Layer(), bi.Layer()
    for i in range(n):
        l1.dir("d%d/" % i)
        l2.whiteout("d%d" % i)
        l1.file("big/f%d" % i, "")
    l3.dir("big/")
    for i in range(n):
        l3.opaque("big")
    l3.file("big/kept", "k")
    _alarm(120)
    try:
        r = apply(str(tmp_path / "r"), l1, l2, l3)
    finally:
        signal.alarm(0)
    assert sorted(os.listdir(r)) == ["big"] and os.listdir(r + "/big") == ["kept"]


@pytest.mark.parametrize("shared", MODES)
def test_deep_tree_is_removed_when_a_later_layer_fails(pyimage, registry, tmp_path, shared):
    """2000 nested directories (a 4000-byte name, under PATH_MAX): shutil.rmtree
    recursed once per level and died with RecursionError, leaving the half-made bundle;
    then a name beyond PATH_MAX is refused"""
    deep = "d/" * 2000 + "f"
    ok = tar_layer(bi.Layer().file(deep, "x"))
    bad = tar_layer(bi.Layer().file("../escape", "x"))
    ref = push_parts(registry.address, "hostile/deep:1", [ok, bad])
    b = tmp_path / "b"
    assert_one_line_error(pyimage("bundle", *mode_args(shared), ref, b, check=False), "escapes the rootfs")
    assert not b.exists()
    assert mounts_under(pyimage.store) == []
    lay = os.path.join(pyimage.store, ".pyimage", "layers")
    assert [n for n in (os.listdir(lay) if os.path.isdir(lay) else []) if "." in n] == []
    # the deep layer alone makes a bundle, and unbundle/gc remove it
    ref = push_parts(registry.address, "hostile/deep:2", [ok])
    pyimage("bundle", *mode_args(shared), ref, b)
    assert open(b / "rootfs" / deep).read() == "x"
    pyimage("unbundle", b)
    assert not b.exists()
    pyimage("rm", ref)
    pyimage("gc")
    assert not os.path.isdir(lay) or os.listdir(lay) == []
    ref = push_parts(registry.address, "hostile/deep:3", [tar_layer(bi.Layer().file("d/" * 2100 + "f", "x"))])
    assert_one_line_error(pyimage("bundle", ref, b, check=False), "longer than 4096 bytes (PATH_MAX)")


def test_rmtree_handles_depth_and_symlinks(tmp_path):
    from pyimage.rmtree import rmtree
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("k")
    top = tmp_path / "t"
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        os.mkdir("t", dir_fd=fd)
    finally:
        os.close(fd)
    d = os.open(top, os.O_RDONLY)
    for i in range(3000):      # deeper than Python's recursion limit
        os.mkdir("a", dir_fd=d)
        os.symlink(str(canary), "link", dir_fd=d)
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d), "w") as f:
            f.write("x")
        n = os.open("a", os.O_RDONLY, dir_fd=d)
        os.close(d)
        d = n
    os.close(d)
    rmtree(str(top))
    assert not top.exists()
    assert (canary / "keep").read_text() == "k"


def global_header(recs):
    """a PAX global ('g') header, by hand: tarfile's own is quadratic in the records"""
    out = []
    for k, v in recs.items():
        body = " %s=%s\n" % (k, v)
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n = len(str(n)) + len(body)
        out.append("%d%s" % (n, body))
    data = "".join(out).encode()
    ti = tarfile.TarInfo("pax_global_header")
    ti.type, ti.size = tarfile.XGLTYPE, len(data)
    return ti.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def test_global_pax_header_is_not_applied_record_by_record(tmp_path):
    """a global header of 200,000 records before 20,000 entries: merged into every
    entry's records it was 4e9 steps; only the keys that apply are kept now.  Too many
    global xattrs are refused"""
    from pyimage.errors import LayerError
    from tests.image.test_unpack import apply
    recs = {"comment%d" % i: "x" for i in range(200000)}
    recs["uid"] = "1234"
    glob = global_header(recs)
    lay = bi.Layer(fmt=tarfile.USTAR_FORMAT)
    for i in range(20000):
        lay.file("f%d" % i)
    _alarm(120)
    try:
        r = apply(str(tmp_path / "r"), glob + lay.tar_bytes())
    finally:
        signal.alarm(0)
    assert len(os.listdir(r)) == 20000
    if os.geteuid() == 0:
        assert os.lstat(os.path.join(r, "f7")).st_uid == 1234
    glob = global_header({"SCHILY.xattr.user.a%d" % i: "v" for i in range(100)})
    with pytest.raises(LayerError, match="global header with more than 32 xattrs"):
        apply(str(tmp_path / "r2"), glob + bi.Layer().file("f").tar_bytes())


# --- bombs and the free-space margin ------------------------------------------------

@pytest.fixture(scope="module")
def bombs(registry):
    """2 GiB of zeros in one file, gzip (~2 MB) and zstd (~70 kB)"""
    out = {}
    for kind in ("gzip", "zstd"):
        lay = zeros_bomb(kind, [("zeros", 2 << 30)])
        out[kind] = push_parts(registry.address, "hostile/bomb-%s:1" % kind, [lay])
    return out


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
@pytest.mark.parametrize("shared", MODES)
def test_bomb_stopped_by_max_layer_size(pyimage, bombs, tmp_path, kind, shared):
    b = tmp_path / "b"
    line = assert_one_line_error(
        pyimage("--max-layer-size", "100M", "bundle", *mode_args(shared), bombs[kind], b, check=False, timeout=120),
        "uncompressed content is larger than the --max-layer-size limit (100.0 MiB)")
    assert "layer sha256:" in line
    assert_nothing_left(pyimage, b)
    # the environment variable, and a plain pull (which decodes to check the diff_id)
    line = assert_one_line_error(pyimage("pull", bombs[kind], check=False, timeout=120,
                                         env={"PYIMAGE_MAX_LAYER_SIZE": "50M"}), "limit (50.0 MiB)")
    assert_nothing_left(pyimage, b)


def test_max_layer_size_lets_smaller_layers_through(pyimage, busybox_ref, tmp_path):
    pyimage("--max-layer-size", "64M", "bundle", busybox_ref, tmp_path / "b")
    assert os.path.exists(tmp_path / "b" / "rootfs" / "bin" / "busybox")
    p = pyimage("--max-layer-size", "lots", "pull", busybox_ref, check=False)
    assert p.returncode == 2 and "--max-layer-size lots: expected a positive size" in p.stderr


@pytest.mark.parametrize("shared", MODES)
@pytest.mark.parametrize("shape", ["one-file", "many-files"])
def test_bomb_without_limit_keeps_the_margin_free(pyimage, registry, tmpfs, shared, shape):
    """store and bundle on a 64 MiB tmpfs: the 2 GiB file is refused at its header (it
    cannot fit); 300 files of 1 MiB are written until the margin is reached, checked as
    they are written.  Either way the tmpfs is as empty afterwards as before"""
    files = [("zeros", 2 << 30)] if shape == "one-file" else [("z%03d" % i, 1 << 20) for i in range(300)]
    ref = push_parts(registry.address, "hostile/fill-%s:1" % shape, [zeros_bomb("gzip", files)])
    store, b = tmpfs / "store", tmpfs / "b"
    p = pyimage("--store", store, "bundle", *mode_args(shared), ref, b, check=False, timeout=120)
    line = assert_one_line_error(p, "free on the filesystem of", "pyimage keeps 3.2 MiB free")
    assert "no space left" not in line
    assert not b.exists()
    pyimage.store = str(store)
    assert store_left(str(store)) == [] and mounts_under(tmpfs) == []
    st = os.statvfs(tmpfs)
    assert (st.f_blocks - st.f_bfree) * st.f_frsize < (1 << 20)      # config and manifest at most
    pyimage("--store", store, "gc")


def test_download_that_cannot_fit_is_refused_before_it_starts(pyimage, registry, tmpfs):
    blob = os.urandom(80 << 20)       # more than the tmpfs: announced in the descriptor
    tar = _header("r", len(blob)) + blob + bytes(-len(blob) % 512) + bytes(1024)
    ref = push_parts(registry.address, "hostile/toobig:1",
                     [(tar, mf.OCI_LAYER, "sha256:" + hashlib.sha256(tar).hexdigest())])
    line = assert_one_line_error(pyimage("--store", tmpfs / "store", "pull", ref, check=False),
                                 "needs 80.0 MiB but store")
    assert "pyimage keeps" in line
    assert store_left(str(tmpfs / "store")) == []


# --- misleading errors, unprintable bytes -------------------------------------------------

def pax_name_layer(name):
    lay = bi.Layer()
    ti = tarfile.TarInfo("placeholder")
    ti.size, ti.mtime = 1, bi.MTIME
    ti.pax_headers = {"path": name}
    lay.tar.addfile(ti, io.BytesIO(b"x"))
    return lay


@pytest.mark.parametrize("shared", MODES)
def test_pax_name_with_nul(pyimage, registry, tmp_path, shared):
    ref = push_parts(registry.address, "hostile/nul:1", [tar_layer(pax_name_layer("etc/pass\x00wd"))])
    b = tmp_path / "b"
    line = assert_one_line_error(pyimage("bundle", *mode_args(shared), ref, b, check=False),
                                 "etc/pass\\x00wd", "contains a NUL byte")
    assert "\x00" not in line and "internal error" not in line
    assert_nothing_left(pyimage, b)


@pytest.mark.parametrize("shared", MODES)
def test_unprintable_names_and_media_types_are_escaped(pyimage, registry, tmp_path, shared):
    ref = push_parts(registry.address, "hostile/esc:1",
                     [tar_layer(pax_name_layer("../\x1b]0;owned\x07\x1b[2J\u202eevil"))])
    p = pyimage("bundle", *mode_args(shared), ref, tmp_path / "b", check=False)
    line = assert_one_line_error(p, "escapes the rootfs", "\\x1b]0;owned\\x07\\x1b[2J\\u202eevil")
    assert not any(c in p.stderr for c in "\x1b\x07\u202e")

    def bad_type(man):
        man["layers"][0]["mediaType"] = "application/x\x1b[31mred"
    ref = push_parts(registry.address, "hostile/esc:2", [tar_layer(bi.Layer().file("a", "a"))], edit=bad_type)
    p = pyimage("bundle", ref, tmp_path / "b2", check=False)
    assert_one_line_error(p, "unsupported media type", "\\x1b[31mred")
    assert "\x1b" not in p.stderr
    assert line


@pytest.mark.parametrize("shared", MODES)
@pytest.mark.parametrize("what", ["config", "layer"])
def test_descriptor_larger_than_the_blob_says_so(pyimage, registry, tmp_path, what, shared):
    lay = tar_layer(bi.Layer().file("a", os.urandom(20000)))

    def grow(man):
        d = man["config"] if what == "config" else man["layers"][0]
        d["size"] += 100
    ref = push_parts(registry.address, "hostile/size-%s:1" % what, [lay], edit=grow)
    line = assert_one_line_error(pyimage("bundle", *mode_args(shared), ref, tmp_path / "b", check=False),
                                 "its descriptor says")
    assert "truncated" not in line and "connection" not in line
    assert_nothing_left(pyimage, tmp_path / "b")


@pytest.mark.parametrize("bad", [
    {"Env": "PATH=/bin"}, {"Env": [1, 2]}, {"Cmd": [["sh"]]}, {"User": 0}, {"Labels": ["a"]},
    {"User": "99999999999999999999"},
])
def test_config_field_types(pyimage, registry, tmp_path, bad):
    ref = push_parts(registry.address, "hostile/types:%s" % unique("t"), [tar_layer(bi.Layer().file("a", "a"))],
                     config={"config": bad})
    line = assert_one_line_error(pyimage("bundle", ref, tmp_path / "b", check=False))
    assert "internal error" not in line
    assert not (tmp_path / "b").exists()


# --- device nodes, FIFOs, setuid ------------------------------------------------------------

@pytest.mark.parametrize("shared", MODES)
def test_device_nodes_fifos_and_setuid_files_are_kept(pyimage, registry, tmp_path, shared):
    """as umoci and containerd do: the runtime's device cgroup and nosuid/userns decide
    what they may do, not the unpacker (README, pyimage)"""
    if os.geteuid() != 0:
        pytest.skip("device nodes and file owners need root")
    lay = bi.Layer().dir("dev/").chardev("dev/null", 1, 3).chardev("dev/kmsg", 1, 11, mode=0o600).fifo("dev/fifo")
    lay.tar.addfile(lay._info("dev/sda", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=0))
    lay.dir("bin/").file("bin/su", "#!/bin/sh\n", mode=0o4755).file("bin/wall", "x", mode=0o2755, gid=5)
    lay.file("bin/own", "x", mode=0o6750, uid=1000, gid=1000)
    ref = push_parts(registry.address, "hostile/dev:%s" % shared, [tar_layer(lay)])
    b = tmp_path / "b"
    try:
        pyimage("bundle", *mode_args(shared), ref, b)
        r = b / "rootfs"
        st = os.lstat(r / "dev" / "null")
        assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
        assert stat.S_IMODE(os.lstat(r / "dev" / "kmsg").st_mode) == 0o600
        st = os.lstat(r / "dev" / "sda")
        assert stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (8, 0)
        assert stat.S_ISFIFO(os.lstat(r / "dev" / "fifo").st_mode)
        assert stat.S_IMODE(os.lstat(r / "bin" / "su").st_mode) == 0o4755
        st = os.lstat(r / "bin" / "wall")
        assert stat.S_IMODE(st.st_mode) == 0o2755 and st.st_gid == 5
        st = os.lstat(r / "bin" / "own")
        assert stat.S_IMODE(st.st_mode) == 0o6750 and (st.st_uid, st.st_gid) == (1000, 1000)
    finally:
        if shared:
            pyimage("unbundle", b, check=False)


# --- a killed bundle --shared ---------------------------------------------------------------

@pytest.fixture(scope="module")
def three_layers(registry):
    ls = [tar_layer(bi.Layer().dir("l%d/" % i).file("l%d/data" % i, os.urandom(200 << 10))) for i in range(3)]
    return push_parts(registry.address, "hostile/three:1", ls)


def _wait(cond, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.mark.parametrize("cleanup", ["unbundle", "gc"])
@pytest.mark.parametrize("moment", ["layer-mounted", "first-layer-done", "rootfs-mounted", "early"])
def test_killed_shared_bundle_leaves_no_mount(pyimage, proxy, three_layers, tmp_path, moment, cleanup):
    """SIGKILL (no handler runs) while a layer is unpacked through an overlay in the
    store, after the first layer, once the bundle's rootfs is mounted, or at once: then
    `unbundle` (or `gc`, then `unbundle`) leaves no mount under the bundle or the store"""
    if os.geteuid() != 0:
        pytest.skip("overlay mounts need root")
    ref = proxy.address + "/" + three_layers.split("/", 1)[1]
    man = json.loads(pyimage("inspect", "--remote", three_layers).stdout)["manifest"]
    if moment == "layer-mounted":
        # the last layer's download stalls while its overlay is mounted
        proxy.add("GET", r"/blobs/" + man["layers"][-1]["digest"], ("stall", 50 << 10), times=None)
    b = tmp_path / "b"
    layers = os.path.join(pyimage.store, ".pyimage", "layers")
    p = subprocess.Popen([PYIMAGE, "--store", pyimage.store, "bundle", "--shared", ref, str(b)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=pyimage.env,
                         stdin=subprocess.DEVNULL)
    try:
        if moment == "layer-mounted":
            assert _wait(lambda: mounts_under(os.path.join(pyimage.store, ".pyimage", "tmp")))
        elif moment == "first-layer-done":
            _wait(lambda: os.path.isdir(layers) and any("." not in n for n in os.listdir(layers)))
        elif moment == "rootfs-mounted":
            _wait(lambda: mounts_under(b))
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    proxy.released.set()
    if cleanup == "gc":
        pyimage("gc")
        assert mounts_under(pyimage.store) == []
    if b.exists():
        pyimage("unbundle", b)
    assert mounts_under(tmp_path) == []
    assert not b.exists()
    # and the store still makes bundles
    proxy.rules.clear()
    pyimage("bundle", "--shared", ref, b)
    assert sorted(os.listdir(b / "rootfs")) == ["l0", "l1", "l2"]
    pyimage("unbundle", b)
    pyimage("gc")
    assert mounts_under(tmp_path) == []
