"""Build small OCI images locally and push them to a registry (no docker involved).

    python -m tests.image.build_image ADDR NAME:TAG [--user U --password P] [--cert-dir D]

builds a busybox image (Debian's busybox-static: /bin/busybox, applet symlinks,
/etc/passwd, /etc/group, Cmd ["/bin/sh", "-c", "echo hello from pyimage"]) and pushes
it to ADDR/NAME:TAG with pyimage's own push code.  The helpers (Layer, build_image,
push_image) are also what the tests use to make images with whiteouts, hard links,
hostile entries and so on.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyimage import manifest as mf  # noqa: E402
from pyimage.store import Store  # noqa: E402

BUSYBOX = "/bin/busybox"
MTIME = 1700000000


class Layer:
    """a tar layer built entry by entry (tarfile writes it; we only read with our own
    reader, so the test data comes from an independent implementation)"""

    def __init__(self, fmt=tarfile.PAX_FORMAT):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=fmt)

    def _info(self, name, type_, mode, uid=0, gid=0, mtime=MTIME, **kw):
        ti = tarfile.TarInfo(name)
        ti.type = type_
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = mtime
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    def dir(self, name, mode=0o755, **kw):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, **kw))
        return self

    def file(self, name, data=b"", mode=0o644, xattrs=None, **kw):
        if isinstance(data, str):
            data = data.encode()
        ti = self._info(name, tarfile.REGTYPE, mode, size=len(data), **kw)
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        self.tar.addfile(ti, io.BytesIO(data))
        return self

    def symlink(self, name, target, **kw):
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, 0o777, linkname=target, **kw))
        return self

    def hardlink(self, name, target, **kw):
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, 0o644, linkname=target, **kw))
        return self

    def fifo(self, name, mode=0o644, **kw):
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, mode, **kw))
        return self

    def chardev(self, name, major, minor, mode=0o666, **kw):
        self.tar.addfile(self._info(name, tarfile.CHRTYPE, mode, devmajor=major, devminor=minor, **kw))
        return self

    def whiteout(self, path):
        d, _, base = path.rstrip("/").rpartition("/")
        return self.file((d + "/" if d else "") + ".wh." + base)

    def opaque(self, dirpath):
        return self.file(dirpath.rstrip("/") + "/.wh..wh..opq")

    def raw(self, data):
        """append raw bytes to the tar stream (hand-made headers)"""
        self.tar.fileobj.write(data)
        self.tar.offset += len(data)
        return self

    def tar_bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def compress(tar, kind="gzip"):
    if kind == "gzip":
        # level 6, no timestamp: reproducible, like most image builders
        return gzip.compress(tar, compresslevel=6, mtime=0), mf.OCI_LAYER_GZIP
    if kind == "zstd":
        import zstandard
        return zstandard.ZstdCompressor(level=3).compress(tar), mf.OCI_LAYER_ZSTD
    return tar, mf.OCI_LAYER


def busybox_layer():
    lay = Layer()
    for d in ("bin", "etc", "proc", "sys", "dev", "root", "var"):
        lay.dir(d + "/", mode=0o700 if d == "root" else 0o755)
    lay.dir("tmp/", mode=0o1777)
    with open(BUSYBOX, "rb") as f:
        lay.file("bin/busybox", f.read(), mode=0o755)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in sorted(set(applets)):
        if a != "busybox":
            lay.symlink("bin/" + a, "busybox")
    lay.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                           "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                           "app:x:1000:1000:app:/home/app:/bin/sh\n"
                           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    lay.file("etc/group", "root:x:0:\ndaemon:x:1:\ntty:x:5:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n")
    lay.dir("home/").dir("home/app/", uid=1000, gid=1000, mode=0o750)
    return lay


def build_image(store_dir, ref, layers, config=None, compression="gzip", docker=False):
    """write an image into an OCI layout at store_dir under ref name `ref`; layers are
    Layer objects or (tar bytes) or (blob bytes, media type, diff_id) tuples; returns
    the manifest descriptor"""
    st = Store(store_dir)
    descs, diff_ids = [], []
    for lay in layers:
        if isinstance(lay, tuple):
            blob, mt, diff = lay
        else:
            tar = lay.tar_bytes() if isinstance(lay, Layer) else lay
            diff = "sha256:" + hashlib.sha256(tar).hexdigest()
            blob, mt = compress(tar, compression)
        if docker:
            mt = {mf.OCI_LAYER_GZIP: mf.DOCKER_LAYER}.get(mt, mt)
        d = st.put_blob(blob)
        descs.append({"mediaType": mt, "digest": d, "size": len(blob)})
        diff_ids.append(diff)
    cfg = {
        "architecture": mf.host_platform()["architecture"], "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh", "-c", "echo hello from pyimage"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "tests/image/build_image.py"}
                    for _ in layers],
    }
    if config:
        for k, v in config.items():
            if k == "config":
                cfg["config"] = dict(cfg["config"], **v)
            else:
                cfg[k] = v
    cfg_raw = json.dumps(cfg, sort_keys=True).encode()
    cfg_d = st.put_blob(cfg_raw)
    man = {"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST if docker else mf.OCI_MANIFEST,
           "config": {"mediaType": mf.DOCKER_CONFIG if docker else mf.OCI_CONFIG,
                      "digest": cfg_d, "size": len(cfg_raw)},
           "layers": descs}
    raw = json.dumps(man).encode()
    md = st.put_blob(raw)
    desc = {"mediaType": man["mediaType"], "digest": md, "size": len(raw)}
    st.set_ref(ref, desc)
    return desc


def push_image(store_dir, ref_name, dest, creds=None, insecure=False, cert_dir=None):
    """push image `ref_name` of the layout at store_dir to `dest` (HOST:PORT/NAME:TAG)
    with pyimage's registry client"""
    from pyimage import reference
    from pyimage.push import push
    from pyimage.registry import Client
    st = Store(store_dir)
    desc = st.lookup([ref_name])
    if desc is None:
        raise SystemExit("no image %s in %s" % (ref_name, store_dir))
    r = reference.parse(dest)
    c = Client(r.host, insecure=insecure, cert_dir=cert_dir, creds=creds, loopback=r.is_loopback, config={})
    push(st, c, desc, r)
    return desc


def push_index(store_dir, dest, children, creds=None, insecure=False, cert_dir=None, media_type=mf.OCI_INDEX):
    """push an index of already pushed manifests: children = [(desc, platform dict)];
    media_type=mf.DOCKER_LIST makes a Docker manifest list"""
    from pyimage import reference
    from pyimage.registry import Client
    r = reference.parse(dest)
    idx = {"schemaVersion": 2, "mediaType": media_type,
           "manifests": [dict(d, platform=p) if p is not None else d for d, p in children]}
    raw = json.dumps(idx).encode()
    c = Client(r.host, insecure=insecure, cert_dir=cert_dir, creds=creds, loopback=r.is_loopback, config={})
    c.put_manifest(r.repo, r.tag, raw, media_type, "push index %s" % dest)
    return {"mediaType": media_type, "digest": mf.sha256_digest(raw), "size": len(raw)}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.image.build_image")
    ap.add_argument("addr", help="registry address, e.g. 127.0.0.1:5000")
    ap.add_argument("name", help="NAME:TAG")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--cert-dir")
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--cmd", help="a shell command for Cmd (default: echo hello from pyimage)")
    a = ap.parse_args(argv)
    creds = (a.user, a.password or "") if a.user else None
    with tempfile.TemporaryDirectory(prefix="pyimage-build-") as tmp:
        cfg = {"config": {"Cmd": ["/bin/sh", "-c", a.cmd]}} if a.cmd else None
        build_image(tmp, "img", [busybox_layer()], config=cfg)
        dest = "%s/%s" % (a.addr, a.name)
        push_image(tmp, "img", dest, creds=creds, insecure=a.insecure, cert_dir=a.cert_dir)
    print(dest)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:   # one line for script users
        from pyimage.errors import PyimageError
        if isinstance(e, PyimageError):
            sys.exit("build_image: %s" % e)
        raise
