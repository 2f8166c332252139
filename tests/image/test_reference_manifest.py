"""Pure logic: reference normalisation, platform selection, challenges, tar parsing
details, docker config credentials."""
import base64
import json
import os

import pytest

from pyimage import auth, manifest as mf, reference
from pyimage.errors import PyimageError, ReferenceError_, RegistryError
from pyimage.tarstream import _pax_time, parse_pax


@pytest.mark.parametrize("text,expect", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("user/app", "docker.io/user/app:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/app:1", "localhost:5000/app:1"),
    ("127.0.0.1:5000/a/b/c:tag", "127.0.0.1:5000/a/b/c:tag"),
    ("quay.io/org/img", "quay.io/org/img:latest"),
    ("ghcr.io/o/i@sha256:" + "a" * 64, "ghcr.io/o/i@sha256:" + "a" * 64),
    ("ghcr.io/o/i:t@sha256:" + "a" * 64, "ghcr.io/o/i@sha256:" + "a" * 64),
    ("[::1]:5000/x", "[::1]:5000/x:latest"),
    ("a__b/c.d-e", "docker.io/a__b/c.d-e:latest"),
])
def test_reference_normalisation(text, expect):
    assert str(reference.parse(text)) == expect


def test_reference_parts():
    r = reference.parse("busybox")
    assert (r.host, r.api_host, r.repo, r.tag, r.digest) == ("docker.io", "registry-1.docker.io",
                                                             "library/busybox", "latest", None)
    assert reference.parse("127.0.0.1:5000/x").is_loopback
    assert reference.parse("localhost/x").is_loopback
    assert not reference.parse("example.com/x").is_loopback


@pytest.mark.parametrize("bad", ["", " busybox", "Busybox", "a/B", "x:", "x@sha256:abc", "x@md5:zz",
                                 "x:" + "t" * 200, "a//b", "-a/b", "host:port:x/y"])
def test_reference_errors(bad):
    with pytest.raises(ReferenceError_) as ei:
        reference.parse(bad)
    assert str(ei.value).startswith("parse reference")


def _idx(*plats, att=False):
    ms = []
    for i, p in enumerate(plats):
        d = {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:%064x" % i, "size": 1, "platform": p}
        ms.append(d)
    if att:
        ms.insert(0, {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "f" * 64, "size": 1,
                      "platform": {"os": "unknown", "architecture": "unknown"},
                      "annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    return {"manifests": ms}


def test_platform_selection():
    idx = _idx({"os": "linux", "architecture": "arm", "variant": "v6"},
               {"os": "linux", "architecture": "arm", "variant": "v7"},
               {"os": "linux", "architecture": "arm64"},
               {"os": "linux", "architecture": "amd64"}, att=True)
    pick = lambda s: mf.select_platform(idx, mf.parse_platform(s), "x")["digest"][-1]  # noqa: E731
    assert pick("linux/amd64") == "3"
    assert pick("linux/arm64") == "2"               # no variant in the index: compatible with v8
    assert pick("linux/arm64/v8") == "2"
    assert pick("linux/arm/v7") == "1"
    assert pick("linux/arm/v8") == "1"               # best compatible: v7 before v6
    assert pick("linux/arm/v6") == "0"
    assert pick("linux/aarch64") == "2"              # normalised like containerd
    with pytest.raises(RegistryError) as ei:
        pick("linux/arm/v5")
    assert "available: linux/arm/v6, linux/arm/v7, linux/arm64, linux/amd64" in str(ei.value)
    with pytest.raises(RegistryError, match="available: none"):
        mf.select_platform(_idx(att=True), mf.parse_platform("linux/amd64"), "x")


def test_media_types():
    assert mf.media_type_of({"mediaType": mf.OCI_INDEX}, "", "x") == mf.OCI_INDEX
    assert mf.media_type_of({"layers": []}, mf.DOCKER_MANIFEST, "x") == mf.DOCKER_MANIFEST
    assert mf.media_type_of({"manifests": []}, "application/json", "x") == mf.OCI_INDEX
    for bad in ({"schemaVersion": 1}, {"mediaType": mf.SCHEMA1[1]}):
        with pytest.raises(RegistryError, match="schema1 manifests are not supported"):
            mf.media_type_of(bad, "", "x")
    with pytest.raises(RegistryError, match="unsupported manifest media type"):
        mf.media_type_of({"mediaType": "text/plain"}, "", "x")
    m = {"config": {"digest": "sha256:" + "a" * 64, "size": 2},
         "layers": [{"mediaType": "application/x-weird", "digest": "sha256:" + "b" * 64, "size": 1}]}
    with pytest.raises(PyimageError, match="unsupported media type"):
        mf.check_manifest(m, "x")
    m["layers"][0]["digest"] = "sha512:" + "b" * 128
    with pytest.raises(PyimageError, match="only sha256"):
        mf.check_manifest(m, "x")


def test_docker_to_oci_keeps_blobs():
    d = {"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
         "config": {"mediaType": mf.DOCKER_CONFIG, "digest": "sha256:" + "a" * 64, "size": 3},
         "layers": [{"mediaType": mf.DOCKER_LAYER, "digest": "sha256:" + "b" * 64, "size": 4}]}
    o = mf.to_oci(d)
    assert o["mediaType"] == mf.OCI_MANIFEST and o["config"]["mediaType"] == mf.OCI_CONFIG
    assert o["layers"][0] == {"mediaType": mf.OCI_LAYER_GZIP, "digest": "sha256:" + "b" * 64, "size": 4}
    assert d["mediaType"] == mf.DOCKER_MANIFEST      # the input is untouched


def test_chain_ids():
    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    import hashlib
    assert mf.chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256((a + " " + b).encode()).hexdigest()]


def test_challenge_parsing():
    assert auth.parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                                'scope="repository:a/b:pull,push"') == (
        "bearer", {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull,push"})
    assert auth.parse_challenge('Basic realm="x y"') == ("basic", {"realm": "x y"})
    assert auth.parse_challenge("") == (None, {})
    kind, p = auth.parse_challenge('Bearer realm="r",error="insufficient_scope",scope="repository:x:pull"')
    assert p["error"] == "insufficient_scope"


def test_docker_config_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hub:pw")},
        "https://reg.example:5000": {"auth": b64("u:p:with:colons")},
        "tok.example": {"identitytoken": "refresh-me"},
    }}))
    assert auth.credentials("docker.io") == ("hub", "pw")
    assert auth.credentials("reg.example:5000") == ("u", "p:with:colons")
    assert auth.credentials("tok.example") == ("<token>", "refresh-me")
    assert auth.credentials("other.example") is None
    auth.store_credentials("new.example", "n", "s")
    assert auth.credentials("new.example") == ("n", "s")
    assert oct(os.stat(tmp_path / "config.json").st_mode & 0o777) == "0o600"
    assert auth.erase_credentials("new.example") and auth.credentials("new.example") is None
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(PyimageError, match="invalid json"):
        auth.credentials("x")


def test_pax_records():
    data = b""
    for k, v in (("path", "a/b"), ("mtime", "1700000000.123456789"), ("SCHILY.xattr.user.x", "v")):
        body = "%s=%s\n" % (k, v)
        n = len(body) + 1
        n += len(str(n + len(str(n))))
        line = "%d %s" % (n, body)
        assert len(line) == n
        data += line.encode()
    p = parse_pax(data)
    assert p == {"path": b"a/b", "mtime": b"1700000000.123456789", "SCHILY.xattr.user.x": b"v"}
    assert _pax_time("1700000000.123456789") == 1700000000123456789
    assert _pax_time("5") == 5000000000
    assert _pax_time("-1.5") == -1500000000


def test_retry_after_forms(monkeypatch):
    """delta-seconds and HTTP-date both count, capped at a minute; junk is ignored"""
    import email.utils
    import time as _time
    from pyimage import registry
    assert registry._retry_after_seconds("7") == 7.0
    assert registry._retry_after_seconds(None) is None
    assert registry._retry_after_seconds("soon") is None
    later = email.utils.formatdate(_time.time() + 20, usegmt=True)
    assert 15 < registry._retry_after_seconds(later) <= 21
    assert registry._retry_after_seconds(email.utils.formatdate(_time.time() - 100, usegmt=True)) == 0.0
    slept = []
    monkeypatch.setattr(registry.time, "sleep", slept.append)
    c = registry.Client("127.0.0.1:1", config={})
    c.backoff = 0.5
    c._sleep(1, "3")
    c._sleep(1, "3600")
    c._sleep(3, None)
    c._sleep(1, "junk")
    assert slept == [3.0, 60.0, 2.0, 0.5]


def test_signals_are_held_back_during_cleanup():
    """cli's handler inside defer_signals: no exception until the cleanup is done, then
    Interrupted (or nothing more when another error is already unwinding)"""
    from pyimage import cli
    from pyimage.errors import Interrupted, defer_signals
    steps = []
    with pytest.raises(Interrupted) as ei:
        with defer_signals():
            cli._on_signal(15, None)
            steps.append("cleanup finished")
    assert steps == ["cleanup finished"] and ei.value.signum == 15
    with pytest.raises(KeyError):
        with defer_signals():
            cli._on_signal(2, None)
            raise KeyError("the original error")
    assert defer_signals.pending is None and defer_signals.depth == 0
