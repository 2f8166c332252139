"""Authentication (htpasswd Basic, Bearer tokens, TLS, docker config and credential
helpers) and faults (retries, resumes, corruption, hostile layers): every failure is
one clear line, and leaves neither a bundle nor a blob behind."""
import base64
import json
import os
import stat
import tarfile

import pytest

from tests.image import build_image as bi
from tests.image.conftest import PASSWORD, USER, assert_one_line_error, have, push, unique
from tests.image.faultproxy import BlobStorage, FaultProxy
from tests.image.registry import Registry
from tests.image.tokenserver import TokenServer


def blobs(store):
    d = os.path.join(store, "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# --- Basic auth (htpasswd) ---------------------------------------------------------

@pytest.fixture(scope="module")
def private_ref(auth_registry, layout):
    return push(layout, auth_registry, "private/busybox:1", [bi.busybox_layer()], creds=(USER, PASSWORD))


def test_basic_auth_needs_credentials(pyimage, private_ref, tmp_path):
    assert_one_line_error(pyimage("pull", private_ref, check=False), "authentication required")
    assert_one_line_error(pyimage("login", "-u", USER, "-p", "wrong", private_ref.split("/")[0], check=False),
                          "refused")
    assert not os.path.exists(os.path.join(pyimage.home, ".docker", "config.json"))
    host = private_ref.split("/")[0]
    pyimage("login", "-u", USER, "--password-stdin", host, input=PASSWORD + "\n")
    cfg = json.load(open(os.path.join(pyimage.home, ".docker", "config.json")))
    assert base64.b64decode(cfg["auths"][host]["auth"]).decode() == "%s:%s" % (USER, PASSWORD)
    pyimage("bundle", private_ref, tmp_path / "b")
    assert (tmp_path / "b" / "rootfs" / "bin" / "busybox").exists()
    pyimage("logout", host)
    assert host not in json.load(open(os.path.join(pyimage.home, ".docker", "config.json")))["auths"]
    assert_one_line_error(pyimage("--store", tmp_path / "s2", "pull", private_ref, check=False),
                          "authentication required")


def test_wrong_credentials_in_config(pyimage, private_ref):
    host = private_ref.split("/")[0]
    pyimage.docker_config({"auths": {host: {"auth": base64.b64encode(b"alice:nope").decode()}}})
    assert_one_line_error(pyimage("pull", private_ref, check=False), "credentials for %s refused" % host)
    assert blobs(pyimage.store) == []


def _helper(tmp_path, name, user, secret):
    """a real docker-credential-<name> executable speaking the helper protocol"""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    p = d / ("docker-credential-" + name)
    p.write_text("#!/bin/sh\n"
                 "read server\n"
                 "echo \"$1 $server\" >> %s/helper.log\n"
                 "if [ \"$1\" = get ]; then\n"
                 "  printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$server\"\n"
                 "else exit 0; fi\n" % (tmp_path, user, secret))
    p.chmod(0o755)
    return str(d)


@pytest.mark.parametrize("kind", ["credsStore", "credHelpers"])
def test_credential_helpers(pyimage, private_ref, tmp_path, kind):
    host = private_ref.split("/")[0]
    bindir = _helper(tmp_path, "testhelper", USER, PASSWORD)
    cfg = {"credsStore": "testhelper"} if kind == "credsStore" else {"credHelpers": {host: "testhelper"}}
    pyimage.docker_config(cfg)
    env = {"PATH": bindir + ":" + os.environ.get("PATH", "")}
    pyimage("pull", private_ref, env=env)
    assert "get %s" % host in (tmp_path / "helper.log").read_text()
    # login stores through the helper (config.json keeps an empty auths entry, no secret),
    # logout erases through it
    pyimage("login", "-u", USER, "--password-stdin", host, input=PASSWORD + "\n", env=env)
    log = (tmp_path / "helper.log").read_text()
    stored = [l for l in log.splitlines() if l.startswith("store ")]
    assert stored and json.loads(stored[-1][6:]) == {"ServerURL": host, "Username": USER, "Secret": PASSWORD}
    cfg_text = open(os.path.join(pyimage.home, ".docker", "config.json")).read()
    assert PASSWORD not in cfg_text and json.loads(cfg_text)["auths"][host] == {}
    pyimage("logout", host, env=env)
    assert "erase %s" % host in (tmp_path / "helper.log").read_text()


# --- TLS ---------------------------------------------------------------------------

def test_tls_registry(pyimage, tls_registry, layout, tmp_path):
    ref = push(layout, tls_registry.address, "tls/busybox:1", [bi.busybox_layer()], cert_dir=tls_registry.cert_dir)
    line = assert_one_line_error(pyimage("pull", ref, check=False), "certificate verify failed")
    assert "--cert-dir" in line
    pyimage("--cert-dir", tls_registry.cert_dir, "bundle", ref, tmp_path / "b")
    assert (tmp_path / "b" / "rootfs" / "bin" / "busybox").exists()
    pyimage("--store", tmp_path / "s2", "--insecure", "pull", ref)


# --- Bearer tokens -----------------------------------------------------------------

@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    if not have("docker-registry") or not have("openssl"):
        pytest.skip("docker-registry or openssl not installed")
    work = str(tmp_path_factory.mktemp("tokenreg"))
    ts = TokenServer(work, users={USER: PASSWORD}, refresh_tokens={"id-token-123": USER}).start()
    reg = Registry(os.path.join(work, "registry"), token=ts.registry_config()).start()
    yield reg, ts
    reg.stop()
    ts.stop()


def test_bearer_token_flow(pyimage, token_registry, layout, tmp_path):
    reg, ts = token_registry
    pub = push(layout, reg, "public/busybox:1", [bi.busybox_layer()], creds=(USER, PASSWORD))
    priv = push(layout, reg, "team/busybox:1", [bi.busybox_layer()], creds=(USER, PASSWORD))
    ts.requests.clear()
    # anonymous pull of a public repository: a token without credentials
    pyimage("bundle", pub, tmp_path / "b")
    assert (tmp_path / "b" / "rootfs" / "bin" / "busybox").exists()
    anon = [r for r in ts.requests if r["path"] == "/token"]
    assert anon and all(r["authorization"] == "" for r in anon)
    assert anon[0]["query"]["scope"] == ["repository:public/busybox:pull"]
    assert anon[0]["query"]["service"] == ["test-registry"]
    # private repository: refused anonymously, works with credentials
    assert_one_line_error(pyimage("pull", priv, check=False), "unauthorized")
    host = priv.split("/")[0]
    assert_one_line_error(pyimage("login", "-u", USER, "-p", "bad", host, check=False), "refused")
    pyimage("login", "-u", USER, "-p", PASSWORD, host)
    ts.requests.clear()
    pyimage("pull", priv)
    assert all(r["authorization"].startswith("Basic ") for r in ts.requests)
    # push with the token flow (pull,push scope)
    pyimage("push", priv, "%s/team/copy:1" % host)
    # an identity token in the docker config: the OAuth2 refresh-token POST
    pyimage.docker_config({"auths": {host: {"identitytoken": "id-token-123"}}})
    ts.requests.clear()
    pyimage("--store", tmp_path / "s3", "pull", priv)
    posts = [r for r in ts.requests if r.get("method") == "POST"]
    assert posts and posts[0]["form"]["refresh_token"] == ["id-token-123"]
    assert posts[0]["form"]["scope"] == ["repository:team/busybox:pull"]
    pyimage.docker_config({"auths": {host: {"identitytoken": "revoked"}}})
    assert_one_line_error(pyimage("--store", tmp_path / "s4", "pull", priv, check=False), "refused")


# --- faults ------------------------------------------------------------------------

@pytest.fixture
def proxy(registry):
    p = FaultProxy(registry.address).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def big_ref(registry, layout):
    """an image whose layer is big enough to be cut in the middle"""
    lay = bi.Layer().dir("data/")
    for i in range(4):
        lay.file("data/f%d" % i, os.urandom(300 * 1024))
    return push(layout, registry, "faults/big:1", [bi.busybox_layer(), lay])


def via(proxy, ref):
    return proxy.address + "/" + ref.split("/", 1)[1]


def test_retries_on_503_and_429(pyimage, proxy, big_ref, tmp_path):
    proxy.add("GET", r"/v2/$", ("status", 503), times=2)
    proxy.add("GET", r"/manifests/", ("status", 429, {"Retry-After": "0"}), times=1)
    proxy.add("GET", r"/blobs/", ("status", 502), times=2)
    pyimage("bundle", via(proxy, big_ref), tmp_path / "b")
    statuses = [e[3] for e in proxy.log]
    assert statuses.count(503) == 2 and statuses.count(429) == 1 and statuses.count(502) == 2


def test_broken_blob_is_resumed_with_range(pyimage, proxy, big_ref, tmp_path):
    proxy.add("GET", r"/blobs/sha256:", ("truncate", 200 * 1024), times=2)
    pyimage("bundle", via(proxy, big_ref), tmp_path / "b")
    ranges = [e[2].get("Range") for e in proxy.log if "/blobs/" in e[1] and e[2].get("Range")]
    assert ranges and all(r.startswith("bytes=") and r != "bytes=0-" for r in ranges)
    assert len(os.listdir(tmp_path / "b" / "rootfs" / "data")) == 4


def test_range_ignored_by_server(pyimage, proxy, big_ref, tmp_path):
    proxy.add("GET", r"/blobs/sha256:", ("truncate", 100 * 1024), times=1)
    proxy.add("GET", r"/blobs/sha256:", ("ignore_range",), times=None)
    pyimage("bundle", via(proxy, big_ref), tmp_path / "b")
    assert len(os.listdir(tmp_path / "b" / "rootfs" / "data")) == 4


def test_always_truncated_blob_fails_cleanly(pyimage, proxy, big_ref, tmp_path):
    proxy.add("GET", r"/blobs/sha256:", ("truncate", 0), times=None)
    line = assert_one_line_error(pyimage("bundle", via(proxy, big_ref), tmp_path / "b", check=False))
    assert "truncated" in line or "got 0 of" in line or "remote end closed" in line
    assert not (tmp_path / "b").exists()
    assert blobs(pyimage.store) == []


def test_corrupted_blob_is_a_digest_mismatch(pyimage, proxy, big_ref, tmp_path):
    proxy.add("GET", r"/blobs/sha256:", ("corrupt", 5000), times=None)
    line = assert_one_line_error(pyimage("bundle", via(proxy, big_ref), tmp_path / "b", check=False))
    assert "digest" in line or "corrupt" in line
    assert not (tmp_path / "b").exists()
    assert blobs(pyimage.store) == []      # never a wrong blob in the store
    assert os.listdir(os.path.join(pyimage.store, ".pyimage", "tmp")) == []


def test_redirect_to_storage_does_not_leak_credentials(pyimage, auth_registry, private_ref, tmp_path):
    auth = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    storage = BlobStorage(auth_registry.address, auth_header=auth).start()
    proxy = FaultProxy(auth_registry.address).start()
    try:
        proxy.add("GET", r"/blobs/sha256:", ("redirect", storage.url), times=None)
        host = proxy.address
        pyimage.docker_config({"auths": {host: {"auth": base64.b64encode(
            ("%s:%s" % (USER, PASSWORD)).encode()).decode()}}})
        pyimage("bundle", via(proxy, private_ref), tmp_path / "b")
        assert storage.log, "no blob came through the storage server"
        assert all("Authorization" not in h for _, h in storage.log)
        assert any(e[2].get("Authorization") for e in proxy.log if "/blobs/" in e[1])
    finally:
        proxy.stop()
        storage.stop()


def test_unknown_image_and_unreachable_registry(pyimage, registry, tmp_path):
    assert_one_line_error(pyimage("bundle", registry.address + "/no/such:image", tmp_path / "b", check=False),
                          "not found")
    assert not (tmp_path / "b").exists()
    from tests.image.registry import free_port
    line = assert_one_line_error(pyimage("pull", "127.0.0.1:%d/x:1" % free_port(), check=False))
    assert "connection refused" in line


def test_bad_diff_id_leaves_nothing(pyimage, registry, layout, tmp_path):
    tar = bi.Layer().file("a", "a").tar_bytes()
    blob, mt = bi.compress(tar)
    ref_name = unique("bad")
    bi.build_image(layout, ref_name, [(blob, mt, "sha256:" + "1" * 64)])
    dest = registry.address + "/bad/diffid:1"
    bi.push_image(layout, ref_name, dest)
    line = assert_one_line_error(pyimage("bundle", dest, tmp_path / "b", check=False), "uncompressed content")
    assert "the config says sha256:111" in line
    assert not (tmp_path / "b").exists()
    # a plain pull checks diff_ids too: the image is not recorded
    line = assert_one_line_error(pyimage("--store", tmp_path / "s2", "pull", dest, check=False),
                                 "uncompressed content")
    assert json.load(open(os.path.join(tmp_path / "s2", "index.json")))["manifests"] == []


def test_corrupt_gzip_with_valid_digest(pyimage, registry, layout, tmp_path):
    tar = bi.Layer().file("a", os.urandom(50000)).tar_bytes()
    blob, mt = bi.compress(tar)
    blob = blob[:5000] + bytes([blob[5000] ^ 0x55]) + blob[5001:]     # the registry stores it as is
    ref_name = unique("gz")
    import hashlib
    bi.build_image(layout, ref_name, [(blob, mt, "sha256:" + hashlib.sha256(tar).hexdigest())])
    dest = registry.address + "/bad/gzip:1"
    bi.push_image(layout, ref_name, dest)
    line = assert_one_line_error(pyimage("bundle", dest, tmp_path / "b", check=False))
    assert "gzip" in line or "uncompressed content" in line or "checksum" in line
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("hostile,msg", [
    (lambda: bi.Layer().file("../../escape", "x"), "escapes the rootfs"),
    (lambda: bi.Layer().hardlink("shadow", "../../../etc/shadow"), "escapes the rootfs"),
    (lambda: bi.Layer().hardlink("shadow", "/etc/shadow"), "not found"),
    (lambda: bi.Layer().symlink(".", "/"), "refusing to replace the rootfs root"),
])
def test_escaping_tar_entries(pyimage, registry, layout, tmp_path, hostile, msg):
    dest = push(layout, registry, "bad/escape-%s:1" % unique("x"), [bi.busybox_layer(), hostile()])
    line = assert_one_line_error(pyimage("bundle", dest, tmp_path / "b", check=False), msg)
    assert not (tmp_path / "b").exists()
    # shared mode applies the same checks
    if os.geteuid() == 0:
        line = assert_one_line_error(pyimage("bundle", "--shared", dest, tmp_path / "s", check=False), msg)
        assert not (tmp_path / "s").exists()
        assert [n for n in os.listdir(os.path.join(pyimage.store, ".pyimage", "layers")) if "tmp" in n] == []


def test_symlink_then_write_through_stays_inside(pyimage, registry, layout, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    l1 = bi.Layer().symlink("evil", str(outside)).symlink("rel", "../../../../../../../.." + str(outside))
    l2 = bi.Layer().file("evil/planted", "x").dir("rel/sub/").file("rel/sub/y", "y")
    dest = push(layout, registry, "bad/symlink:1", [l1, l2])
    pyimage("bundle", dest, tmp_path / "b")
    assert os.listdir(outside) == []
    inside = str(tmp_path / "b" / "rootfs") + str(outside)
    assert sorted(os.listdir(inside)) == ["planted", "sub"]
    assert stat.S_ISLNK(os.lstat(tmp_path / "b" / "rootfs" / "evil").st_mode)


def test_interrupted_download_resumes_in_next_pull(pyimage, proxy, big_ref, tmp_path):
    """a pull that failed mid-blob keeps the partial file; the next pull resumes it"""
    proxy.add("GET", r"/blobs/sha256:", ("truncate", 150 * 1024), times=None)
    pyimage("--jobs", "1", "pull", via(proxy, big_ref), check=False)
    partial = os.listdir(os.path.join(pyimage.store, ".pyimage", "tmp"))
    proxy.rules.clear()
    proxy.log.clear()
    pyimage("pull", via(proxy, big_ref))
    if partial:
        assert any(e[2].get("Range") for e in proxy.log if "/blobs/" in e[1])
    assert os.listdir(os.path.join(pyimage.store, ".pyimage", "tmp")) == []


def test_gnu_sparse_is_refused(pyimage, registry, layout, tmp_path):
    ti = tarfile.TarInfo("sparse")
    ti.type = tarfile.GNUTYPE_SPARSE
    hdr = ti.tobuf(format=tarfile.GNU_FORMAT)
    dest = push(layout, registry, "bad/sparse:1", [hdr + bytes(1024)])
    assert_one_line_error(pyimage("bundle", dest, tmp_path / "b", check=False), "sparse")


def test_concurrent_pulls_share_one_store(pyimage, big_ref, tmp_path):
    """two pyimage processes bundling the same image into one store at once: each blob is
    downloaded by one of them (the partial file's lock), both bundles are complete"""
    import subprocess
    from tests.image.conftest import PYIMAGE
    procs = [subprocess.Popen([PYIMAGE, "--store", pyimage.store, "bundle", big_ref, str(tmp_path / ("b%d" % i))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=pyimage.env)
             for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for i in range(2):
        assert len(os.listdir(tmp_path / ("b%d" % i) / "rootfs" / "data")) == 4
    assert len(blobs(pyimage.store)) == 4
    assert os.listdir(os.path.join(pyimage.store, ".pyimage", "tmp")) == []
    idx = json.load(open(os.path.join(pyimage.store, "index.json")))
    assert len(idx["manifests"]) == 1


def _wait_for(cond, timeout=30):
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def _store_consistent(store):
    """every blob's name is its content's digest, and every ref reaches only present blobs"""
    import hashlib
    d = os.path.join(store, "blobs", "sha256")
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name, name
    for m in json.load(open(os.path.join(store, "index.json")))["manifests"]:
        man = json.load(open(os.path.join(d, m["digest"][7:])))
        for b in [man["config"]] + man["layers"]:
            assert os.path.exists(os.path.join(d, b["digest"][7:]))


@pytest.mark.parametrize("signame,shared", [("SIGTERM", False), ("SIGINT", False), ("SIGHUP", False),
                                            ("SIGTERM", True)])
def test_signal_mid_download_leaves_no_bundle(pyimage, proxy, big_ref, tmp_path, signame, shared):
    """a bundle interrupted while a layer is half downloaded (the server stalls): one
    line, exit 128+signal (without waiting for the read timeout), no bundle directory,
    a consistent store, and the next bundle resumes and succeeds"""
    import signal
    import subprocess
    from tests.image.conftest import PYIMAGE
    if shared and os.geteuid() != 0:
        pytest.skip("overlay mounts need root")
    sig = getattr(signal, signame)
    # the second layer stalls: in shared mode the first is unpacked and the second is
    # being applied through an overlay mount when the signal comes
    layer = json.loads(pyimage("inspect", "--remote", big_ref).stdout)["manifest"]["layers"][-1]["digest"]
    proxy.add("GET", r"/blobs/" + layer, ("stall", 100 * 1024), times=None)
    b = tmp_path / "b"
    mode = ["--shared"] if shared else []
    p = subprocess.Popen([PYIMAGE, "--store", pyimage.store, "bundle"] + mode + [via(proxy, big_ref), str(b)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=pyimage.env,
                         stdin=subprocess.DEVNULL)
    try:
        _wait_for(lambda: any("stalled" in e for e in proxy.log) and
                  ((b / ".rootfs.partial").exists() or shared))
        p.send_signal(sig)
        # the stalled read would hold a thread for the 120 s read timeout: 30 s means
        # the cancelled download was woken up
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + sig, err
    assert err.strip() == "pyimage: bundle: interrupted by %s" % signame
    assert not b.exists()
    _store_consistent(pyimage.store)
    assert json.load(open(os.path.join(pyimage.store, "index.json")))["manifests"] == []
    layers_dir = os.path.join(pyimage.store, ".pyimage", "layers")
    assert [n for n in os.listdir(layers_dir) if "." in n] == []        # no half-unpacked layer
    with open("/proc/self/mountinfo") as f:
        assert pyimage.store not in f.read()                            # no overlay left mounted
    proxy.rules.clear()
    n = len(proxy.log)
    try:
        again = pyimage("bundle", *(mode + [via(proxy, big_ref), b]), check=False)
        assert again.returncode == 0, (again.stderr, [(e[0], e[1][-20:], e[2].get("Range"), e[3:])
                                                      for e in proxy.log[n:]])
        assert len(os.listdir(b / "rootfs" / "data")) == 4
    finally:
        if shared:
            pyimage("unbundle", b, check=False)
    _store_consistent(pyimage.store)


def test_gc_during_a_bundle_waits_and_keeps_the_store_whole(pyimage, proxy, big_ref, registry, tmp_path):
    """gc started while a bundle is mid-download (server stalled) waits for it (the
    store's gc lock), then removes only garbage; the bundle completes"""
    import subprocess
    from tests.image.conftest import PYIMAGE
    # garbage for gc: an image pulled and removed
    other = push(pyimage.store + "-layout", registry, "faults/garbage:1", [bi.Layer().file("g", "g")])
    pyimage("pull", other)
    pyimage("rm", other)
    garbage = set(blobs(pyimage.store))
    layer = json.loads(pyimage("inspect", "--remote", big_ref).stdout)["manifest"]["layers"][-1]["digest"]
    proxy.add("GET", r"/blobs/" + layer, ("stall", 100 * 1024), times=1)
    b = tmp_path / "b"
    bundle = subprocess.Popen([PYIMAGE, "--store", pyimage.store, "bundle", via(proxy, big_ref), str(b)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=pyimage.env,
                              stdin=subprocess.DEVNULL)
    gc = None
    try:
        _wait_for(lambda: any("stalled" in e for e in proxy.log))
        gc = subprocess.Popen([PYIMAGE, "--store", pyimage.store, "gc"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=pyimage.env, stdin=subprocess.DEVNULL)
        with pytest.raises(subprocess.TimeoutExpired):
            gc.wait(1.0)             # blocked on the lock the bundle holds
        proxy.released.set()         # the stalled body breaks; the bundle resumes with Range
        _, err = bundle.communicate(timeout=60)
        assert bundle.returncode == 0, err
        _, err = gc.communicate(timeout=60)
        assert gc.returncode == 0, err
    finally:
        for p in (bundle, gc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert len(os.listdir(b / "rootfs" / "data")) == 4
    left = set(blobs(pyimage.store))
    assert not (left & garbage)
    _store_consistent(pyimage.store)
    assert len(json.load(open(os.path.join(pyimage.store, "index.json")))["manifests"]) == 1


def test_parallel_downloads_are_bounded(pyimage, proxy, registry, layout, tmp_path):
    """layers download in parallel, never more at once than --jobs (default 4)"""
    ref = push(layout, registry, "faults/many:1", [bi.Layer().file("f%d" % i, os.urandom(1000)) for i in range(7)])
    proxy.add("GET", r"/blobs/sha256:", ("delay", 0.3), times=None)
    pyimage("--jobs", "2", "bundle", via(proxy, ref), tmp_path / "b2")
    assert proxy.max_inflight == 2
    proxy.max_inflight = 0
    pyimage("--store", tmp_path / "s4", "bundle", via(proxy, ref), tmp_path / "b4")
    assert 2 < proxy.max_inflight <= 4
    assert sorted(os.listdir(tmp_path / "b4" / "rootfs")) == ["f%d" % i for i in range(7)]


def test_insufficient_scope_is_retried_with_the_challenge_scope(pyimage, token_registry, layout, tmp_path):
    """a 401 whose Bearer challenge names another scope (error="insufficient_scope"):
    one new token for that scope, then the request again"""
    reg, ts = token_registry
    pub = push(layout, reg, "public/scoped:1", [bi.busybox_layer()], creds=(USER, PASSWORD))
    proxy = FaultProxy(reg.address).start()
    try:
        wanted = "repository:public/scoped:pull,push"
        challenge = 'Bearer realm="%s",service="%s",scope="%s",error="insufficient_scope"' % (
            ts.realm, ts.service, wanted)
        proxy.add("GET", r"/manifests/", ("status", 401, {"WWW-Authenticate": challenge}), times=1)
        ts.requests.clear()
        pyimage("bundle", via(proxy, pub), tmp_path / "b")
        scopes = [r["query"].get("scope") for r in ts.requests if r["path"] == "/token"]
        assert [wanted] in scopes, scopes
        assert [e[3] for e in proxy.log if "/manifests/" in e[1]][:2] == [401, 200]
    finally:
        proxy.stop()


def test_broken_manifest_and_config_bodies_are_retried(pyimage, proxy, big_ref, tmp_path):
    """a connection lost in the middle of a manifest or config body: asked again"""
    cfg = json.loads(pyimage("inspect", "--remote", big_ref).stdout)["manifest"]["config"]["digest"]
    pyimage("gc")       # inspect --remote kept the config blob: drop it
    proxy.add("GET", r"/manifests/", ("truncate", 10), times=2)
    proxy.add("GET", r"/blobs/" + cfg, ("truncate", 10), times=2)
    pyimage("bundle", via(proxy, big_ref), tmp_path / "b")
    assert len(os.listdir(tmp_path / "b" / "rootfs" / "data")) == 4
    assert sum(1 for e in proxy.log if "/manifests/" in e[1]) == 3
    assert sum(1 for e in proxy.log if cfg in e[1]) == 3
    # always broken: one line after the retries
    proxy.rules.clear()
    proxy.add("GET", r"/manifests/", ("truncate", 10), times=None)
    line = assert_one_line_error(pyimage("--store", tmp_path / "s2", "pull", via(proxy, big_ref), check=False),
                                 "reading manifest")
    assert "truncated" in line or "broken" in line or "closed" in line


def test_push_retries_a_failed_upload_from_the_start(pyimage, proxy, big_ref, registry, tmp_path):
    """a 503 on the PUT of a blob (its body was read from a file): the upload starts
    again with a new POST, and the pushed image pulls back intact"""
    pyimage("pull", big_ref)
    proxy.keep_host = True
    proxy.add("PUT", r"/blobs/uploads/", ("status", 503), times=2)
    dest = "%s/faults/pushed:1" % proxy.address
    pyimage("push", big_ref, dest)
    puts = [e for e in proxy.log if e[0] == "PUT" and "/blobs/uploads/" in e[1]]
    assert [e[3] for e in puts[:2]] == [503, 503] and all(e[3] == 201 for e in puts[2:])
    posts = [e for e in proxy.log if e[0] == "POST"]
    assert len(posts) == len(puts)          # one new upload session per attempt
    pyimage("--store", tmp_path / "s2", "bundle", "%s/faults/pushed:1" % registry.address, tmp_path / "b")
    assert len(os.listdir(tmp_path / "b" / "rootfs" / "data")) == 4


@pytest.mark.parametrize("state", ["complete", "garbage"])
def test_partial_file_left_complete_or_wrong(pyimage, proxy, big_ref, tmp_path, state):
    """a partial download holding every byte (killed before its rename) is committed
    without a request (a Range from its end would get 416); one of the right size but
    wrong content is fetched again from the start"""
    m = json.loads(pyimage("inspect", "--remote", big_ref).stdout)["manifest"]
    layer = m["layers"][0]
    pyimage("--store", pyimage.store + "-src", "pull", big_ref)
    with open(os.path.join(pyimage.store + "-src", "blobs", "sha256", layer["digest"][7:]), "rb") as f:
        data = f.read()
    if state == "garbage":
        data = bytes(len(data))
    os.makedirs(os.path.join(pyimage.store, ".pyimage", "tmp"), exist_ok=True)
    with open(os.path.join(pyimage.store, ".pyimage", "tmp", layer["digest"][7:] + ".partial"), "wb") as f:
        f.write(data)
    pyimage("bundle", via(proxy, big_ref), tmp_path / "b")
    fetched = [e for e in proxy.log if layer["digest"] in e[1]]
    if state == "complete":
        assert fetched == []
    else:
        assert len(fetched) == 1 and "Range" not in fetched[0][2]
    assert (tmp_path / "b" / "rootfs" / "bin" / "busybox").exists()
    _store_consistent(pyimage.store)
