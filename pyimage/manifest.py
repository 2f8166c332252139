"""Media types, manifest/index parsing, platform selection, Docker -> OCI conversion."""
import hashlib
import json
import platform as _platform

from .errors import PyimageError, RegistryError, show

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
# manifests, indexes and configs: like containers/image's iolimits (skopeo), 4 MiB.
# Checked on the descriptor's size before a fetch and enforced while reading.
MAX_MANIFEST = 4 << 20


def limit_text():
    return "%d MiB" % (MAX_MANIFEST >> 20)


def check_size(desc, kind, what):
    """refuse a manifest/index/config whose descriptor announces more than the limit"""
    if desc["size"] > MAX_MANIFEST:
        raise PyimageError("%s: %s %s (%s) is %d bytes, more than the %s limit"
                           % (what, kind, desc["digest"], show(desc.get("mediaType") or "no media type"),
                              desc["size"], limit_text()))

# layer media type -> compression
LAYER_COMPRESSION = {
    OCI_LAYER: "none", OCI_LAYER_GZIP: "gzip", OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_ND: "none", OCI_LAYER_ND + "+gzip": "gzip", OCI_LAYER_ND + "+zstd": "zstd",
    DOCKER_LAYER: "gzip", DOCKER_FOREIGN: "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
}
DOCKER_TO_OCI = {
    DOCKER_MANIFEST: OCI_MANIFEST, DOCKER_CONFIG: OCI_CONFIG, DOCKER_LAYER: OCI_LAYER_GZIP,
    DOCKER_FOREIGN: OCI_LAYER_ND + "+gzip", "application/vnd.docker.image.rootfs.diff.tar": OCI_LAYER,
    DOCKER_LIST: OCI_INDEX,
}


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_json(data, what):
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise PyimageError("parse %s: invalid json: %s" % (what, e)) from None
    if not isinstance(obj, dict):
        raise PyimageError("parse %s: not a json object" % what)
    return obj


def media_type_of(obj, header_type, what):
    """the manifest's media type: the document's own field wins over Content-Type"""
    mt = obj.get("mediaType") or ""
    if not mt:
        ct = (header_type or "").split(";")[0].strip()
        if ct in INDEX_TYPES or ct in MANIFEST_TYPES or ct in SCHEMA1:
            mt = ct
        elif "manifests" in obj:
            mt = OCI_INDEX
        elif "layers" in obj:
            mt = OCI_MANIFEST
        elif obj.get("schemaVersion") == 1:
            mt = SCHEMA1[0]
    if mt in SCHEMA1 or obj.get("schemaVersion") == 1:
        raise RegistryError("pull %s: docker schema1 manifests are not supported (deprecated since 2017): "
                            "re-push the image with a current client" % what)
    if not isinstance(mt, str) or (mt not in INDEX_TYPES and mt not in MANIFEST_TYPES):
        raise RegistryError("pull %s: unsupported manifest media type %s" % (what, show(repr(mt or "(none)"))))
    return mt


def check_descriptor(d, what):
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str) or not isinstance(d.get("size"), int):
        raise PyimageError("parse %s: descriptor without digest or size" % what)
    dg = d["digest"]
    if not dg.startswith("sha256:") or len(dg) != 71 or not _HEX.issuperset(dg[7:]):
        raise PyimageError("parse %s: unsupported digest %s (only sha256)" % (what, show(repr(dg))))
    if d["size"] < 0 or isinstance(d["size"], bool):
        raise PyimageError("parse %s: size must be a non-negative integer" % what)
    mt = d.get("mediaType")
    if mt is not None and not isinstance(mt, str):
        raise PyimageError("parse %s: mediaType must be a string" % what)
    return d


_HEX = frozenset("0123456789abcdef")


def check_manifest(obj, what):
    check_descriptor(obj.get("config"), what + ": config")
    layers = obj.get("layers")
    if not isinstance(layers, list):
        raise PyimageError("parse %s: layers must be an array" % what)
    for i, l in enumerate(layers):
        check_descriptor(l, "%s: layers[%d]" % (what, i))
        if l.get("mediaType") not in LAYER_COMPRESSION:
            raise PyimageError("parse %s: layers[%d]: unsupported media type %s"
                               % (what, i, show(repr(l.get("mediaType")))))
    return obj


# --- platforms -----------------------------------------------------------------------

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386",
         "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform():
    m = _platform.machine()
    arch = _ARCH.get(m, m)
    variant = ""
    if arch == "arm64":
        variant = "v8"
    elif arch == "arm":
        variant = "v7" if m.startswith("armv7") else "v6" if m.startswith("armv6") else ""
    return {"os": "linux", "architecture": arch, "variant": variant}


def parse_platform(text):
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PyimageError("parse platform %r: expected os/arch[/variant]" % text)
    arch = _ARCH.get(parts[1], parts[1])
    return {"os": parts[0], "architecture": arch, "variant": parts[2] if len(parts) == 3 else ""}


def platform_str(p):
    s = "%s/%s" % (p.get("os", "?"), p.get("architecture", "?"))
    return s + ("/" + p["variant"] if p.get("variant") else "")


def _variants(want):
    """acceptable variants, best first; "" (no variant in the index) is always acceptable"""
    arch, v = want["architecture"], want.get("variant") or ""
    if arch == "arm":
        ladder = ["v8", "v7", "v6", "v5"]
        out = ladder[ladder.index(v):] if v in ladder else ([v] if v else [])
    elif arch == "arm64":
        out = [v or "v8"] if (v or "v8") != "v8" else ["v8"]
    else:
        out = [v] if v else []
    return out + [""]


def select_platform(index, want, what):
    """pick the manifest for platform `want` from an index; never an attestation entry"""
    cands = []
    available = []
    entries = index.get("manifests") or []
    if not isinstance(entries, list):
        raise PyimageError("parse %s: manifests must be an array" % what)
    for i, d in enumerate(entries):
        check_descriptor(d, "%s: manifests[%d]" % (what, i))
        p = d.get("platform") or {}
        ann = d.get("annotations") or {}
        if not isinstance(p, dict) or not isinstance(ann, dict):
            raise PyimageError("parse %s: manifests[%d]: platform and annotations must be objects" % (what, i))
        if ann.get("vnd.docker.reference.type") == "attestation-manifest" or \
                p.get("os") == "unknown" or p.get("architecture") == "unknown":
            continue
        if d.get("mediaType") and d["mediaType"] not in MANIFEST_TYPES + INDEX_TYPES:
            continue
        available.append(platform_str(p))
        cands.append(d)
    variants = _variants(want)
    best = None
    for d in cands:
        p = d.get("platform") or {}
        if p.get("os", want["os"]) != want["os"] or p.get("architecture", want["architecture"]) != want["architecture"]:
            continue
        v = p.get("variant") or ""
        if want["architecture"] == "arm64" and v == "v8":
            v = "v8"
        if v not in variants:
            continue
        rank = variants.index(v)
        if best is None or rank < best[0]:
            best = (rank, d)
    if best is None:
        raise RegistryError("pull %s: no image for platform %s in the index (available: %s)"
                            % (what, platform_str(want), ", ".join(available) or "none"))
    return best[1]


# --- docker -> oci ------------------------------------------------------------------

def to_oci(manifest_obj):
    """a Docker schema2 manifest rewritten with OCI media types (blobs are unchanged),
    so that the store stays a plain OCI layout that umoci and skopeo read"""
    m = dict(manifest_obj)
    m["mediaType"] = OCI_MANIFEST
    cfg = dict(m["config"])
    cfg["mediaType"] = DOCKER_TO_OCI.get(cfg.get("mediaType"), cfg.get("mediaType") or OCI_CONFIG)
    m["config"] = cfg
    m["layers"] = [dict(l, mediaType=DOCKER_TO_OCI.get(l["mediaType"], l["mediaType"])) for l in m["layers"]]
    return m


def canonical_bytes(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def image_config(cfg_bytes, what):
    """the image config, with the types of every field pyimage uses checked (a hostile
    config must give a one-line error, not a TypeError deep inside)"""
    cfg = parse_json(cfg_bytes, what)
    rootfs = cfg.get("rootfs") or {}
    if not isinstance(rootfs, dict):
        raise PyimageError("parse %s: rootfs must be an object" % what)
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list):
        raise PyimageError("parse %s: rootfs.diff_ids must be an array" % what)
    for i, d in enumerate(diff_ids):
        if not isinstance(d, str) or not d.startswith("sha256:") or len(d) != 71 or not _HEX.issuperset(d[7:]):
            raise PyimageError("parse %s: rootfs.diff_ids[%d]: not a sha256 digest" % (what, i))
    for k in ("os", "architecture", "variant", "created", "author"):
        if cfg.get(k) is not None and not isinstance(cfg[k], str):
            raise PyimageError("parse %s: %s must be a string" % (what, k))
    c = cfg.get("config")
    if c is None:
        return cfg
    if not isinstance(c, dict):
        raise PyimageError("parse %s: config must be an object" % what)
    for k in ("Env", "Entrypoint", "Cmd"):
        v = c.get(k)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise PyimageError("parse %s: config.%s must be an array of strings" % (what, k))
    for k in ("User", "WorkingDir", "StopSignal"):
        if c.get(k) is not None and not isinstance(c[k], str):
            raise PyimageError("parse %s: config.%s must be a string" % (what, k))
    for k in ("Labels", "ExposedPorts", "Volumes"):
        if c.get(k) is not None and not isinstance(c[k], dict):
            raise PyimageError("parse %s: config.%s must be an object" % (what, k))
    return cfg


def chain_ids(diff_ids):
    """image-spec ChainID of every layer: a layer's content on disk depends on its parents"""
    out = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256((out[-1] + " " + d).encode()).hexdigest())
    return out


def fs_name(ref_str):
    return ref_str.replace("/", "_").replace(":", "_").replace("@", "_")

