"""pyimage against a real docker-registry: pull, store, bundle, run with runc/pyrunc,
the store commands, platform selection, media types, interop with skopeo and umoci."""
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from pyimage import manifest as mf
from tests.image import build_image as bi
from tests.image.conftest import TOP, assert_one_line_error, have, push, unique
from tests.image.treecmp import describe, diff

PYRUNC = os.path.join(TOP, ".venv", "bin", "pyrunc")


def run_bundle(runtime, bundle, cid, root):
    cmd = [runtime, "--root", root, "run", "--bundle", bundle, cid]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_pull_and_bundle_runs_with_runc(pyimage, registry, busybox_ref, tmp_path):
    if not have("runc") or os.geteuid() != 0:
        pytest.skip("needs runc and root")
    b = tmp_path / "bundle"
    pyimage("bundle", busybox_ref, b)
    cfg = json.loads((b / "config.json").read_text())
    assert cfg["process"]["args"] == ["/bin/sh", "-c", "echo hello from pyimage"]
    assert cfg["root"] == {"path": "rootfs", "readonly": False}
    p = run_bundle("runc", str(b), unique("runc"), str(tmp_path / "state"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from pyimage\n"


def test_bundle_runs_with_pyrunc(pyimage, busybox_ref, tmp_path):
    if not os.path.exists(PYRUNC) or os.geteuid() != 0:
        pytest.skip("needs pyrunc (make install) and root")
    b = tmp_path / "bundle"
    pyimage("bundle", busybox_ref, b)
    p = run_bundle(PYRUNC, str(b), unique("pyrunc"), str(tmp_path / "state"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from pyimage\n"


def test_store_is_an_oci_layout_and_commands(pyimage, registry, layout, busybox_ref):
    p = pyimage("pull", busybox_ref)
    assert p.stdout.startswith(busybox_ref + " sha256:")
    st = pyimage.store
    assert json.load(open(os.path.join(st, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}
    idx = json.load(open(os.path.join(st, "index.json")))
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in idx["manifests"]]
    assert names == [busybox_ref]
    # a second image sharing the busybox layer: the blob is stored once
    other = push(layout, registry, "test/other:1", [bi.busybox_layer(), bi.Layer().file("extra", "x")])
    pyimage("pull", other)
    blobs = os.listdir(os.path.join(st, "blobs", "sha256"))
    assert len(blobs) == 3 + 3     # (manifest, config, layer) + (manifest, config, extra); layer shared
    out = pyimage("images").stdout
    assert busybox_ref in out and other in out
    info = json.loads(pyimage("inspect", busybox_ref).stdout)
    assert info["config"]["config"]["Cmd"][-1] == "echo hello from pyimage"
    remote = json.loads(pyimage("inspect", "--remote", busybox_ref).stdout)
    assert remote["digest"] == info["digest"]
    pyimage("rm", other)
    pyimage("gc")
    assert len(os.listdir(os.path.join(st, "blobs", "sha256"))) == 3
    pyimage("rm", busybox_ref)
    pyimage("gc")
    assert os.listdir(os.path.join(st, "blobs", "sha256")) == []
    assert_one_line_error(pyimage("rm", busybox_ref, check=False), "no such image")


def test_reference_normalisation_and_digest_refs(pyimage, registry, busybox_ref):
    addr, repo_tag = busybox_ref.split("/", 1)
    repo = repo_tag.rsplit(":", 1)[0]
    digest = json.loads(pyimage("inspect", "--remote", busybox_ref).stdout)["digest"]
    by_digest = "%s/%s@%s" % (addr, repo, digest)
    pyimage("pull", by_digest)
    idx = json.load(open(os.path.join(pyimage.store, "index.json")))
    assert idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == by_digest
    # tag + digest: the digest wins
    pyimage("pull", "%s/%s:nonexistent-tag@%s" % (addr, repo, digest))
    # a wrong digest is refused after hashing what the registry sent
    bad = "%s/%s@sha256:%s" % (addr, repo, "0" * 64)
    assert_one_line_error(pyimage("pull", bad, check=False), "not found")
    # "latest" is the default tag
    assert_one_line_error(pyimage("pull", "%s/%s" % (addr, repo), check=False), ":latest", "not found")


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_layer_compressions(pyimage, registry, layout, tmp_path, compression):
    ref = push(layout, registry, "test/comp-%s:1" % compression,
               [bi.Layer().dir("a/").file("a/f", "one" * 1000), bi.Layer().file("a/g", "two").whiteout("a/f")],
               compression=compression)
    pyimage("bundle", ref, tmp_path / "b")
    assert os.listdir(tmp_path / "b" / "rootfs" / "a") == ["g"]


def test_docker_schema2_is_stored_as_oci(pyimage, registry, layout, tmp_path):
    ref = push(layout, registry, "test/docker:1", [bi.busybox_layer()], docker=True)
    remote = json.loads(pyimage("inspect", "--remote", ref).stdout)
    assert remote["manifest"]["mediaType"] == mf.OCI_MANIFEST
    assert remote["manifest"]["layers"][0]["mediaType"] == mf.OCI_LAYER_GZIP
    pyimage("bundle", ref, tmp_path / "b")
    assert os.path.isfile(tmp_path / "b" / "rootfs" / "bin" / "busybox")
    # pulled by its Docker digest: stored as OCI (another digest), so pushing to that
    # digest is refused clearly; pushing to a tag works
    name = unique("dock")
    d = bi.build_image(layout, name, [bi.Layer().file("f", "docker")], docker=True)
    repo = "%s/test/docker-digest" % registry.address
    bi.push_image(layout, name, repo + ":1")
    by_digest = "%s@%s" % (repo, d["digest"])
    pyimage("pull", by_digest)
    assert_one_line_error(pyimage("push", by_digest, check=False), "push to a tag instead")
    pyimage("push", by_digest, repo + ":oci")
    assert json.loads(pyimage("inspect", "--remote", repo + ":oci").stdout)["mediaType"] == mf.OCI_MANIFEST


def test_platform_selection_skips_attestations(pyimage, registry, layout, tmp_path):
    host = mf.host_platform()
    arch = host["architecture"]
    other = "arm64" if arch != "arm64" else "amd64"
    repo = "test/multi"
    d_host = bi.push_image(layout, _build(layout, "host"), "%s/%s:host" % (registry.address, repo))
    d_other = bi.push_image(layout, _build(layout, "other"), "%s/%s:other" % (registry.address, repo))
    d_att = bi.push_image(layout, _build(layout, "attestation"), "%s/%s:att" % (registry.address, repo))
    att = dict(d_att, annotations={"vnd.docker.reference.type": "attestation-manifest"})
    ref = "%s/%s:latest" % (registry.address, repo)
    # the attestation entry comes first and claims unknown/unknown: never chosen
    bi.push_index(layout, ref, [(att, {"os": "unknown", "architecture": "unknown"}),
                                (d_other, {"os": "linux", "architecture": other}),
                                (d_host, {"os": "linux", "architecture": arch})])
    pyimage("bundle", ref, tmp_path / "b1")
    assert (tmp_path / "b1" / "rootfs" / "which").read_text() == "host"
    pyimage("--platform", "linux/" + other, "bundle", "--pull", "always", ref, tmp_path / "b2")
    assert (tmp_path / "b2" / "rootfs" / "which").read_text() == "other"
    line = assert_one_line_error(pyimage("--platform", "linux/s390x", "pull", ref, check=False),
                                 "no image for platform linux/s390x")
    assert "linux/" + arch in line and "unknown" not in line


def test_docker_manifest_list_and_variants(pyimage, registry, layout, tmp_path):
    """a Docker manifest list of Docker schema2 manifests; arm variants: the best one on
    the ladder, and an entry without a variant is compatible with any"""
    repo = "%s/test/dlist" % registry.address
    kids = {}
    for which in ("v6", "v7", "novariant64", "amd64"):
        name = unique(which)
        bi.build_image(layout, name, [bi.Layer().file("which", which)], docker=True)
        kids[which] = bi.push_image(layout, name, "%s:%s" % (repo, which))
        assert kids[which]["mediaType"] == mf.DOCKER_MANIFEST
    bi.push_index(layout, repo + ":1", [
        (kids["v6"], {"os": "linux", "architecture": "arm", "variant": "v6"}),
        (kids["v7"], {"os": "linux", "architecture": "arm", "variant": "v7"}),
        (kids["novariant64"], {"os": "linux", "architecture": "arm64"}),
        (kids["amd64"], {"os": "linux", "architecture": "amd64"})], media_type=mf.DOCKER_LIST)
    for plat, want in (("linux/arm/v7", "v7"), ("linux/arm/v8", "v7"), ("linux/arm/v6", "v6"),
                       ("linux/arm64", "novariant64"), ("linux/arm64/v8", "novariant64"),
                       ("linux/amd64", "amd64")):
        b = tmp_path / plat.replace("/", "-")
        pyimage("--platform", plat, "bundle", "--pull", "always", repo + ":1", b)
        assert (b / "rootfs" / "which").read_text() == want, plat
    assert_one_line_error(pyimage("--platform", "linux/arm/v5", "pull", repo + ":1", check=False),
                          "no image for platform linux/arm/v5", "linux/arm/v6")


def layout_dir(tmp_path):
    d = tmp_path / "layout"
    d.mkdir(exist_ok=True)
    return str(d)


def _build(layout, which):
    name = unique(which)
    bi.build_image(layout, name, [bi.Layer().file("which", which)])
    return name


def test_schema1_is_refused(pyimage, registry, tmp_path):
    from tests.image.faultproxy import FaultProxy
    proxy = FaultProxy(registry.address).start()
    try:
        body = json.dumps({"schemaVersion": 1, "name": "old/image", "tag": "1", "fsLayers": []}).encode()
        proxy.add("GET", r"/manifests/", ("body", body, {"Content-Type": mf.SCHEMA1[1]}), times=None)
        line = assert_one_line_error(pyimage("pull", proxy.address + "/old/image:1", check=False), "schema1")
        assert "not supported" in line
    finally:
        proxy.stop()


def test_user_workdir_env_labels_in_config(pyimage, registry, layout, tmp_path):
    ref = push(layout, registry, "test/cfg:1", [bi.busybox_layer()], config={
        "config": {"User": "app", "WorkingDir": "/home/app", "Entrypoint": ["/bin/sh", "-c"],
                   "Cmd": ["id -u; id -g; id -G; pwd; echo $GREETING"],
                   "Env": ["PATH=/bin", "GREETING=hi"], "StopSignal": "SIGINT",
                   "Labels": {"org.example.team": "images"}}})
    b = tmp_path / "b"
    pyimage("bundle", ref, b)
    cfg = json.loads((b / "config.json").read_text())
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10]}
    assert cfg["process"]["cwd"] == "/home/app"
    assert cfg["process"]["env"][:2] == ["PATH=/bin", "TERM=xterm"] and "GREETING=hi" in cfg["process"]["env"]
    assert cfg["annotations"]["org.opencontainers.image.stopSignal"] == "SIGINT"
    assert cfg["annotations"]["org.example.team"] == "images"
    for runtime in [r for r in ("runc", PYRUNC) if (have(r) or os.path.exists(r)) and os.geteuid() == 0]:
        p = run_bundle(runtime, str(b), unique("user"), str(tmp_path / "state"))
        assert p.returncode == 0, (runtime, p.stderr)
        assert p.stdout.split() == ["1000", "1000", "1000", "10", "/home/app", "hi"], runtime
    # numeric user with a group name; unknown names are a clear error
    ref2 = push(layout, registry, "test/cfg:2", [bi.busybox_layer()], config={"config": {"User": "1000:wheel"}})
    pyimage("bundle", ref2, tmp_path / "b2")
    u = json.loads((tmp_path / "b2" / "config.json").read_text())["process"]["user"]
    assert u == {"uid": 1000, "gid": 10}
    ref3 = push(layout, registry, "test/cfg:3", [bi.busybox_layer()], config={"config": {"User": "ghost"}})
    assert_one_line_error(pyimage("bundle", ref3, tmp_path / "b3", check=False), "user 'ghost' not found")
    assert not (tmp_path / "b3").exists()


def test_passwd_symlink_cannot_read_host_files(pyimage, registry, layout, tmp_path):
    # /etc/passwd -> /etc/shadow-like host path: resolved inside the rootfs, not on the host
    lay = bi.Layer().dir("etc/").symlink("etc/passwd", "/../../../etc/hostpasswd") \
        .file("etc/hostpasswd", "svc:x:4242:4242::/:/bin/sh\n")
    ref = push(layout, registry, "test/pwlink:1", [lay], config={"config": {"User": "svc"}})
    pyimage("bundle", ref, tmp_path / "b")
    assert json.loads((tmp_path / "b" / "config.json").read_text())["process"]["user"]["uid"] == 4242


def test_shared_mode_overlay(pyimage, registry, layout, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("overlay mounts need root")
    ref = push(layout, registry, "test/shared:1",
               [bi.busybox_layer(), bi.Layer().dir("data/").file("data/a", "a").file("data/b", "b")
                .hardlink("bin/sh-link", "bin/busybox").dir("srv/").dir("srv/old/").file("srv/old/x", "x"),
                bi.Layer().whiteout("data/a").opaque("home").file("home/new", "n"),
                bi.Layer().dir("srv/").file("srv/c", "c").whiteout("srv")])
    b1, b2, copy = tmp_path / "s1", tmp_path / "s2", tmp_path / "copy"
    try:
        pyimage("bundle", "--shared", ref, b1)
        pyimage("bundle", "--shared", ref, b2)
        pyimage("bundle", ref, copy)
        # the merged view is exactly what a full copy gives
        assert diff(describe(str(b1 / "rootfs")), describe(str(copy / "rootfs"))) == []
        # each bundle writes into its own upper layer
        (b1 / "rootfs" / "data" / "b").write_text("changed")
        assert (b2 / "rootfs" / "data" / "b").read_text() == "b"
        assert os.listdir(b1 / "rootfs" / "srv") == ["c"]     # whiteout + re-created dir
        layers = os.listdir(os.path.join(pyimage.store, ".pyimage", "layers"))
        assert len(layers) == 4
        # gc keeps layers that live mounts use, even without a ref
        pyimage("rm", ref)
        pyimage("gc")
        assert len(os.listdir(os.path.join(pyimage.store, ".pyimage", "layers"))) == 4
        for runtime in [r for r in ("runc", PYRUNC) if have(r) or os.path.exists(r)]:
            p = run_bundle(runtime, str(b2), unique("shared"), str(tmp_path / "state"))
            assert p.returncode == 0 and p.stdout == "hello from pyimage\n", (runtime, p.stderr)
    finally:
        for b in (b1, b2):
            if b.exists():
                pyimage("unbundle", b, check=False)
    assert not b1.exists() and not b2.exists()
    pyimage("gc")
    assert os.listdir(os.path.join(pyimage.store, ".pyimage", "layers")) == []


def test_bundle_refuses_non_empty_dir(pyimage, busybox_ref, tmp_path):
    b = tmp_path / "b"
    b.mkdir()
    (b / "keep").write_text("mine")
    assert_one_line_error(pyimage("bundle", busybox_ref, b, check=False), "not empty")
    assert os.listdir(b) == ["keep"]
    assert_one_line_error(pyimage("bundle", busybox_ref, b / "keep", check=False), "not a directory")
    assert_one_line_error(pyimage("bundle", busybox_ref, tmp_path / "no" / "b", check=False),
                          "parent directory does not exist")
    # answered before anything is downloaded
    assert not os.path.exists(os.path.join(pyimage.store, "blobs")) or \
        os.listdir(os.path.join(pyimage.store, "blobs", "sha256")) == []


def test_rootfs_equals_umoci(pyimage, registry, layout, tmp_path):
    """the same image through skopeo copy + umoci unpack and through pyimage bundle"""
    if not (have("skopeo") and have("umoci")) or os.geteuid() != 0:
        pytest.skip("needs skopeo, umoci and root")
    l1 = bi.Layer(fmt=tarfile.GNU_FORMAT).dir("./").dir("usr/").dir("usr/bin/").symlink("bin", "usr/bin") \
        .dir("etc/").file("etc/passwd", "root:x:0:0::/:/bin/sh\n").dir("var/").dir("var/lib/") \
        .dir("var/lib/app/", mode=0o700, uid=1000, gid=1000).file("var/lib/app/db", "db", mode=0o600, uid=1000) \
        .file("usr/bin/tool", "t", mode=0o4755).file("usr/bin/sg", "s", mode=0o2755, gid=50) \
        .dir("tmp/", mode=0o1777).fifo("var/lib/app/fifo").chardev("var/lib/app/null", 1, 3) \
        .file("usr/" + "l" * 120, "long").hardlink("usr/hl", "usr/" + "l" * 120) \
        .dir("opt/").dir("opt/old/").file("opt/old/x", "x").file("opt/keep", "k").file("nobody", "n", uid=65534)
    l2 = bi.Layer().whiteout("opt/old").file("bin/new", "via symlinked dir").file("opt/before", "b") \
        .opaque("opt").file("opt/after", "a").hardlink("etc/pw-link", "etc/passwd") \
        .dir("var/lib/app/", mode=0o750, uid=1000, gid=1000).file("\u00fcnicode", "u")
    l3 = bi.Layer().file("usr/hl", "replaced").dir("etc/passwd.d/").whiteout("nobody") \
        .file("opt/xa", "x", xattrs={"user.origin": "test", "user.other": "2"}).dir("var/lib/").whiteout("var/lib")   # "deleted, then re-created": lower children go
    ref = push(layout, registry, "test/umoci:1", [l1, l2, l3])
    oci = tmp_path / "oci"
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref, "oci:%s:img" % oci],
                   check=True)
    subprocess.run(["umoci", "unpack", "--image", "%s:img" % oci, str(tmp_path / "umoci")], check=True,
                   capture_output=True)
    pyimage("bundle", ref, tmp_path / "py")
    # xattrs too where this filesystem keeps user.* ones (umoci 0.4.7 drops an xattr
    # with an empty value, pyimage keeps it: tests/image/test_unpack.py::test_xattrs)
    try:
        os.setxattr(str(tmp_path), "user.probe", b"1")
        xa = True
    except OSError:
        xa = False
    assert diff(describe(str(tmp_path / "umoci" / "rootfs"), xattrs=xa),
                describe(str(tmp_path / "py" / "rootfs"), xattrs=xa)) == []
    if xa:
        assert os.getxattr(str(tmp_path / "py" / "rootfs" / "opt" / "xa"), "user.origin") == b"test"
    assert os.listdir(tmp_path / "py" / "rootfs" / "var" / "lib") == []


def test_skopeo_and_umoci_read_and_write_the_store(pyimage, registry, busybox_ref, tmp_path):
    if not (have("skopeo") and have("umoci")):
        pytest.skip("needs skopeo and umoci")
    pyimage("pull", busybox_ref)
    st = pyimage.store
    # umoci reads our store (the ref name is the full reference)
    p = subprocess.run(["umoci", "ls", "--layout", st], capture_output=True, text=True)
    assert p.returncode == 0 and busybox_ref in p.stdout, p.stderr
    subprocess.run(["umoci", "unpack", "--image", "%s:%s" % (st, busybox_ref), str(tmp_path / "u")], check=True,
                   capture_output=True)
    assert os.path.isfile(tmp_path / "u" / "rootfs" / "bin" / "busybox")
    # skopeo copies out of our store, and writes a new image into it, which we then bundle
    subprocess.run(["skopeo", "copy", "-q", "oci:%s:%s" % (st, busybox_ref), "oci:%s:copied" % st], check=True)
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:%s:copied" % st,
                    "docker://%s/test/from-skopeo:1" % registry.address], check=True)
    pyimage("bundle", "copied", tmp_path / "b")
    assert os.path.isfile(tmp_path / "b" / "rootfs" / "bin" / "busybox")
    # an index that skopeo --all wrote into the store: pyimage picks the host's platform
    arch = mf.host_platform()["architecture"]
    d1 = bi.push_image(layout_dir(tmp_path), _build(layout_dir(tmp_path), "host"),
                       "%s/test/idx:host" % registry.address)
    d2 = bi.push_image(layout_dir(tmp_path), _build(layout_dir(tmp_path), "other"),
                       "%s/test/idx:other" % registry.address)
    bi.push_index(layout_dir(tmp_path), "%s/test/idx:1" % registry.address,
                  [(d2, {"os": "linux", "architecture": "arm64" if arch != "arm64" else "amd64"}),
                   (d1, {"os": "linux", "architecture": arch})])
    subprocess.run(["skopeo", "copy", "-q", "--all", "--src-tls-verify=false",
                    "docker://%s/test/idx:1" % registry.address, "oci:%s:multi" % st], check=True)
    pyimage("bundle", "multi", tmp_path / "m")
    assert (tmp_path / "m" / "rootfs" / "which").read_text() == "host"
    row = [l for l in pyimage("images").stdout.splitlines() if l.startswith("multi ")][0]
    assert "index: " in row and "linux/" + arch in row
    # an index pushed from the store: children first, then the index itself
    pyimage("push", "multi", "%s/test/idx-pushed:1" % registry.address)
    pyimage("--store", tmp_path / "store3", "bundle", "%s/test/idx-pushed:1" % registry.address, tmp_path / "m2")
    assert (tmp_path / "m2" / "rootfs" / "which").read_text() == "host"
    # push from the store to a new name, and pull it back elsewhere
    pyimage("push", busybox_ref, "%s/test/pushed:1" % registry.address)
    pyimage("--store", tmp_path / "store2", "pull", "%s/test/pushed:1" % registry.address)


def test_progress_on_a_tty(pyimage, busybox_ref):
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(pyimage.env and __import__("tests.image.conftest", fromlist=["PYIMAGE"]).PYIMAGE,
                  ["pyimage", "--store", pyimage.store, "pull", busybox_ref], pyimage.env)
    out = b""
    while True:
        r, _, _ = select.select([fd], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    text = out.decode(errors="replace")
    assert "layer 1/1" in text and ("MB" in text or "kB" in text)
    assert "B/s" in text        # the download's speed (live, then its average)
    # and nothing but the result line without a terminal
    p = pyimage("--store", pyimage.store + "2", "pull", busybox_ref)
    assert p.stderr == ""
    assert pyimage("--store", pyimage.store + "3", "-q", "pull", busybox_ref).stdout == ""


def test_cli_usage_errors(pyimage):
    p = pyimage("frobnicate", check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.startswith("pyimage: usage:")
    assert_one_line_error(pyimage("pull", "UPPER/case", check=False), "must be lowercase")
    assert_one_line_error(pyimage("pull", "a@sha256:1234", check=False), "digest")
    assert_one_line_error(pyimage("--platform", "linux", "pull", "x", check=False), "os/arch")
    assert_one_line_error(pyimage("inspect", "127.0.0.1:1/not/there:1", check=False), "not in store")
    shutil.rmtree(pyimage.store, ignore_errors=True)


def test_bundle_in_a_user_namespace(pyimage, registry, layout, tmp_path):
    """unprivileged-like unpack: in a user namespace where only our uid is mapped,
    device nodes and foreign owners cannot be made; both are skipped with one warning
    each and the rest of the rootfs is complete"""
    if not have("unshare"):
        pytest.skip("unshare (util-linux) not installed")
    probe = subprocess.run(["unshare", "-r", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces unavailable: %s" % probe.stderr.decode().strip())
    ref = push(layout, registry, "test/userns:1", [bi.busybox_layer(),
               bi.Layer().dir("dev/").chardev("dev/null", 1, 3).fifo("run.fifo").file("owned", "o", uid=1000, gid=1000)])
    pyimage("pull", ref)
    from tests.image.conftest import PYIMAGE
    p = subprocess.run(["unshare", "-r", PYIMAGE, "--store", pyimage.store, "bundle", ref, str(tmp_path / "b")],
                       capture_output=True, text=True, env=pyimage.env, timeout=120)
    assert p.returncode == 0, p.stderr
    warnings = p.stderr.strip().splitlines()
    assert len(warnings) == 2, p.stderr
    assert any("skipping device nodes" in w for w in warnings)
    assert any("cannot give /owned to 1000:1000" in w for w in warnings)
    rootfs = tmp_path / "b" / "rootfs"
    assert not (rootfs / "dev" / "null").exists()
    assert os.path.exists(rootfs / "run.fifo") and (rootfs / "owned").read_text() == "o"
    assert (rootfs / "bin" / "busybox").exists()


def test_repeated_layer(pyimage, registry, layout, tmp_path):
    """the same blob twice in one manifest (empty layers repeat in docker images)"""
    same = lambda: bi.Layer().dir("d/").file("d/x", "same")   # noqa: E731
    ref = push(layout, registry, "test/repeat:1", [same(), bi.Layer().file("d/x", "other"), same()])
    m = json.loads(pyimage("inspect", "--remote", ref).stdout)["manifest"]
    assert m["layers"][0]["digest"] == m["layers"][2]["digest"]
    pyimage("bundle", ref, tmp_path / "b")
    assert (tmp_path / "b" / "rootfs" / "d" / "x").read_text() == "same"
    if os.geteuid() == 0:
        try:
            pyimage("bundle", "--shared", ref, tmp_path / "s")
            assert (tmp_path / "s" / "rootfs" / "d" / "x").read_text() == "same"
        finally:
            pyimage("unbundle", tmp_path / "s", check=False)


def test_config_is_pyrunc_spec_plus_the_image(pyimage, registry, layout, tmp_path):
    """config.json = `pyrunc spec`'s defaults with only what the image says on top
    (and the two deliberate changes: no terminal, writable root)"""
    if not os.path.exists(PYRUNC):
        pytest.skip("needs pyrunc (make install)")
    from pyimage.bundle import BASE_SPEC
    (tmp_path / "spec").mkdir()
    subprocess.run([PYRUNC, "spec", "--bundle", str(tmp_path / "spec")], check=True)
    defaults = json.loads((tmp_path / "spec" / "config.json").read_text())
    assert BASE_SPEC == defaults
    ref = push(layout, registry, "test/spec:1", [bi.busybox_layer()], config={
        "config": {"Entrypoint": ["/bin/echo"], "Cmd": ["a", "b"], "Env": ["TERM=dumb", "X=1"],
                   "WorkingDir": "srv", "User": "nobody:wheel", "StopSignal": "SIGQUIT",
                   "Labels": {"l1": "v1"}}})
    pyimage("bundle", ref, tmp_path / "b")
    got = json.loads((tmp_path / "b" / "config.json").read_text())
    want = json.loads(json.dumps(defaults))
    want["process"].update(terminal=False, args=["/bin/echo", "a", "b"], cwd="/srv",
                           env=[defaults["process"]["env"][0], "TERM=dumb", "X=1"],
                           user={"uid": 65534, "gid": 10})
    want["root"]["readonly"] = False
    ann = got.pop("annotations")
    assert got == want
    assert ann["l1"] == "v1" and ann["org.opencontainers.image.stopSignal"] == "SIGQUIT"
    assert ann["org.opencontainers.image.os"] == "linux"


def test_pyimage_never_imports_pyrunc(pyimage, busybox_ref, tmp_path):
    code = ("import signal, sys; from pyimage import cli; before = [signal.getsignal(s) for s in "
            "(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]; "
            "rc = cli.main(['--store', %r, 'bundle', %r, %r]); "
            "assert rc == 0; bad = [m for m in sys.modules if m.split('.')[0] == 'pyrunc']; "
            "assert not bad, bad; "
            "assert before == [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]"
            % (pyimage.store, busybox_ref, str(tmp_path / "b")))
    p = subprocess.run([os.path.join(TOP, ".venv", "bin", "python3"), "-c", code], capture_output=True,
                       text=True, env=pyimage.env, cwd=TOP, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "b" / "config.json").exists()


def test_umoci_writes_into_the_store(pyimage, registry, busybox_ref, tmp_path):
    """umoci repack adds a layer and a manifest to our store under a new tag: pyimage
    bundles that image, gc keeps everything both refs reach, and rm + gc frees umoci's"""
    if not have("umoci") or os.geteuid() != 0:
        pytest.skip("needs umoci and root")
    pyimage("pull", busybox_ref)
    st = pyimage.store
    u = tmp_path / "u"
    subprocess.run(["umoci", "unpack", "--image", "%s:%s" % (st, busybox_ref), str(u)], check=True,
                   capture_output=True)
    (u / "rootfs" / "etc" / "motd").write_text("written by umoci\n")
    os.unlink(u / "rootfs" / "bin" / "ls")
    subprocess.run(["umoci", "repack", "--image", "%s:by-umoci" % st, str(u)], check=True, capture_output=True)
    subprocess.run(["umoci", "config", "--image", "%s:by-umoci" % st, "--config.cmd", "cat",
                    "--config.cmd", "/etc/motd"], check=True, capture_output=True)
    # umoci config replaced the repacked manifest and config: gc drops those two only,
    # keeping busybox's 3 blobs and umoci's layer, config and manifest
    pyimage("gc")
    assert len(os.listdir(os.path.join(st, "blobs", "sha256"))) == 6
    b = tmp_path / "b"
    pyimage("bundle", "by-umoci", b)
    assert (b / "rootfs" / "etc" / "motd").read_text() == "written by umoci\n"
    assert not os.path.lexists(b / "rootfs" / "bin" / "ls")     # umoci's whiteout applied
    assert json.loads((b / "config.json").read_text())["process"]["args"] == ["cat", "/etc/motd"]
    if os.path.exists(PYRUNC):
        p = run_bundle(PYRUNC, str(b), unique("umoci"), str(tmp_path / "state"))
        assert p.returncode == 0 and p.stdout == "written by umoci\n", p.stderr
    # the busybox image alone again after rm + gc: umoci's layer, config and manifest go
    pyimage("rm", "by-umoci")
    pyimage("gc")
    assert len(os.listdir(os.path.join(st, "blobs", "sha256"))) == 3
    pyimage("bundle", busybox_ref, tmp_path / "b2")


def test_damaged_store_is_reported_not_refetched(pyimage, busybox_ref, tmp_path):
    """a stored image whose layer blob is gone: one line naming it, no bundle, and no
    request anywhere (a local name could otherwise normalise to Docker Hub)"""
    pyimage("pull", busybox_ref)
    m = json.loads(pyimage("inspect", busybox_ref).stdout)["manifest"]
    layer = m["layers"][0]["digest"]
    os.unlink(os.path.join(pyimage.store, "blobs", "sha256", layer[7:]))
    assert_one_line_error(pyimage("bundle", busybox_ref, tmp_path / "b", check=False),
                          "layer %s missing from store" % layer)
    assert not (tmp_path / "b").exists()
    # pulling again repairs it
    pyimage("pull", busybox_ref)
    pyimage("bundle", busybox_ref, tmp_path / "b")


def test_bundle_of_a_stored_image_loads_no_http_stack(pyimage, busybox_ref, tmp_path):
    """requests + urllib3 cost ~70 ms to import: a bundle from the store never needs them"""
    pyimage("pull", busybox_ref)
    code = ("import sys; from pyimage import cli; rc = cli.main(['-q', '--store', %r, 'bundle', %r, %r]); "
            "assert rc == 0; assert 'requests' not in sys.modules and 'urllib3' not in sys.modules"
            % (pyimage.store, busybox_ref, str(tmp_path / "b")))
    p = subprocess.run([os.path.join(TOP, ".venv", "bin", "python3"), "-c", code], capture_output=True,
                       text=True, env=pyimage.env, cwd=TOP, timeout=120)
    assert p.returncode == 0, p.stderr


def test_shared_mode_with_many_layers(pyimage, registry, layout, tmp_path):
    """more layers than mount(2)'s one-page option string holds: the new mount API
    (lowerdir+ one by one); the merged view equals a copy, upper layers win"""
    if os.geteuid() != 0:
        pytest.skip("overlay mounts need root")
    n = 60
    layers = [bi.busybox_layer()] + [bi.Layer().dir("l/").file("l/%02d" % i, str(i)).file("top", str(i))
                                     for i in range(n)]
    ref = push(layout, registry, "test/many:1", layers)
    b, copy = tmp_path / "s", tmp_path / "copy"
    try:
        p = pyimage("bundle", "--shared", ref, b, check=False)
        if p.returncode != 0 and "lowerdir+" in p.stderr:
            pytest.skip("kernel without overlayfs lowerdir+ (Linux 6.8): %s" % p.stderr.strip())
        assert p.returncode == 0, p.stderr
        pyimage("bundle", ref, copy)
        assert diff(describe(str(b / "rootfs")), describe(str(copy / "rootfs"))) == []
        assert (b / "rootfs" / "top").read_text() == str(n - 1)
        assert len(os.listdir(b / "rootfs" / "l")) == n
        with open("/proc/self/mountinfo") as f:
            assert str(b / "rootfs") in f.read()
        # gc still sees which layers the live mount uses
        pyimage("rm", ref)
        pyimage("gc")
        assert len(os.listdir(os.path.join(pyimage.store, ".pyimage", "layers"))) == n + 1
    finally:
        pyimage("unbundle", b, check=False)
    pyimage("gc")
    assert os.listdir(os.path.join(pyimage.store, ".pyimage", "layers")) == []
