"""The local image store: a plain OCI image layout that skopeo (`oci:DIR:REF`) and
umoci (`--image DIR:REF`) read and write too.

    DIR/oci-layout            {"imageLayoutVersion": "1.0.0"}
    DIR/index.json            one descriptor per ref, annotation org.opencontainers.image.ref.name
    DIR/blobs/sha256/<hex>    manifests, configs, layers; shared between images
    DIR/.pyimage/             ours: locks, partial downloads, unpacked layers (shared mode)

Ref names are the normalised references (`127.0.0.1:5000/busybox:latest`), which the
ref-name grammar of the image-layout spec allows.  Blobs become visible only by an
atomic rename after their digest and size were checked, so a crash leaves at most a
partial file under .pyimage/tmp, never a wrong blob.  Locks (flock): `gc.lock` shared
by writers and exclusive for gc; `index.lock` around every index.json update.
"""
import errno
import fcntl
import hashlib
import json
import os

from .errors import DigestMismatch, PyimageError, StoreError
from . import manifest as mf
from .rmtree import rmtree

REF_ANNOTATION = "org.opencontainers.image.ref.name"


def default_root():
    env = os.environ.get("PYIMAGE_STORE")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/pyimage"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "pyimage")


class Lock:
    def __init__(self, path, exclusive):
        self.path, self.exclusive, self.fd = path, exclusive, None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None


class Store:
    def __init__(self, root=None, create=True):
        self.root = os.path.abspath(root or default_root())
        self.blobdir = os.path.join(self.root, "blobs", "sha256")
        self.meta = os.path.join(self.root, ".pyimage")
        self.tmp = os.path.join(self.meta, "tmp")
        self.layers = os.path.join(self.meta, "layers")
        if create:
            self._init()

    def _init(self):
        try:
            for d in (self.blobdir, self.tmp, self.layers):
                os.makedirs(d, exist_ok=True)
            lay = os.path.join(self.root, "oci-layout")
            if not os.path.exists(lay):
                self._write_atomic(lay, b'{"imageLayoutVersion":"1.0.0"}')
            idx = os.path.join(self.root, "index.json")
            if not os.path.exists(idx):
                self._write_atomic(idx, b'{"schemaVersion":2,"manifests":[]}')
        except OSError as e:
            raise StoreError("open store %s: %s" % (self.root, e.strerror.lower())) from None

    def _write_atomic(self, path, data):
        tmp = "%s.tmp.%d" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    # --- locks ---------------------------------------------------------------------

    def writer_lock(self):
        """held by pulls and unpacks: gc waits until they are done"""
        return Lock(os.path.join(self.meta, "gc.lock"), exclusive=False)

    def gc_lock(self):
        return Lock(os.path.join(self.meta, "gc.lock"), exclusive=True)

    def index_lock(self):
        return Lock(os.path.join(self.meta, "index.lock"), exclusive=True)

    # --- blobs ---------------------------------------------------------------------

    def blob_path(self, digest):
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise StoreError("store: unsupported digest %r" % digest)
        return os.path.join(self.blobdir, hexd)

    def has_blob(self, digest, size=None):
        try:
            st = os.stat(self.blob_path(digest))
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def read_blob(self, digest, limit=mf.MAX_MANIFEST, verify=True):
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise StoreError("read blob %s: not in store %s" % (digest, self.root)) from None
        if len(data) > limit:
            raise StoreError("read blob %s: larger than %d bytes" % (digest, limit))
        if verify and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise DigestMismatch("read blob %s from store: content does not match its digest (store damaged)" % digest)
        return data

    def put_blob(self, data, digest=None):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest is not None and d != digest:
            raise DigestMismatch("store blob %s: content has digest %s" % (digest, d))
        path = self.blob_path(d)
        if not os.path.exists(path):
            # under the writer lock: gc removes unlocked files from tmp/
            with self.writer_lock():
                tmp = os.path.join(self.tmp, "%s.%d.put" % (d[7:], os.getpid()))
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
        return d

    def commit_blob(self, tmp_path, digest):
        os.replace(tmp_path, self.blob_path(digest))

    # --- index ---------------------------------------------------------------------

    def _read_index(self):
        path = os.path.join(self.root, "index.json")
        try:
            with open(path, "rb") as f:
                idx = json.loads(f.read())
        except FileNotFoundError:
            return {"schemaVersion": 2, "manifests": []}
        except ValueError as e:
            raise StoreError("read %s: invalid json: %s" % (path, e)) from None
        if not isinstance(idx, dict) or not isinstance(idx.get("manifests", []), list):
            raise StoreError("read %s: not an image index" % path)
        idx.setdefault("manifests", [])
        return idx

    def refs(self):
        """[(ref name or None, descriptor)] in index order"""
        return [((d.get("annotations") or {}).get(REF_ANNOTATION), d) for d in self._read_index()["manifests"]]

    def lookup(self, names):
        """descriptor for the first of `names` present in index.json, else None"""
        table = {}
        for n, d in self.refs():
            if n is not None:
                table[n] = d
        for n in names:
            if n in table:
                return table[n]
        return None

    def set_ref(self, name, desc):
        d = {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}
        if desc.get("platform"):
            d["platform"] = desc["platform"]
        ann = dict(desc.get("annotations") or {})
        ann[REF_ANNOTATION] = name
        d["annotations"] = ann
        with self.index_lock():
            idx = self._read_index()
            idx["manifests"] = [m for m in idx["manifests"]
                                if (m.get("annotations") or {}).get(REF_ANNOTATION) != name] + [d]
            self._write_atomic(os.path.join(self.root, "index.json"),
                               json.dumps(idx, separators=(",", ":")).encode())

    def remove_ref(self, name):
        with self.index_lock():
            idx = self._read_index()
            keep = [m for m in idx["manifests"] if (m.get("annotations") or {}).get(REF_ANNOTATION) != name]
            if len(keep) == len(idx["manifests"]):
                return False
            idx["manifests"] = keep
            self._write_atomic(os.path.join(self.root, "index.json"),
                               json.dumps(idx, separators=(",", ":")).encode())
            return True

    def layer_dir(self, chain_id):
        return os.path.join(self.layers, chain_id.partition(":")[2])

    # --- gc --------------------------------------------------------------------------

    def reachable(self):
        blobs, diff_ids = set(), set()
        todo = [d for _, d in self.refs()]
        while todo:
            d = todo.pop()
            dg = d.get("digest")
            if not isinstance(dg, str) or dg in blobs:
                continue
            blobs.add(dg)
            mt = d.get("mediaType")
            if mt in mf.INDEX_TYPES or mt in mf.MANIFEST_TYPES:
                try:
                    obj = json.loads(self.read_blob(dg, verify=False))
                except (StoreError, ValueError):
                    continue
                todo.extend(obj.get("manifests") or [])
                if "config" in obj:
                    blobs.add(obj["config"].get("digest"))
                    try:
                        cfg = json.loads(self.read_blob(obj["config"]["digest"], limit=64 << 20, verify=False))
                        diff_ids.update(mf.chain_ids((cfg.get("rootfs") or {}).get("diff_ids") or []))
                    except (StoreError, ValueError, KeyError, AttributeError):
                        pass
                for l in obj.get("layers") or []:
                    blobs.add(l.get("digest"))
        return blobs, diff_ids

    def mounted_layers(self):
        """unpacked layer directories used by live overlay mounts (never collected)"""
        used = set()
        try:
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    if self.layers in line:
                        for part in line.replace(",", " ").replace(":", " ").replace("=", " ").split():
                            if part.startswith(self.layers + "/"):
                                used.add(part[len(self.layers) + 1:].split("/")[0])
        except OSError:
            pass
        return used

    def sweep_mounts(self, dead_only=True):
        """unmount the overlays a killed `bundle --shared` left on .pyimage/tmp/merged-
        <pid>-<layer> (a layer is unpacked through one); with dead_only, only those
        whose pid is gone (gc holds the exclusive lock: every one there is stale)"""
        from .bundle import mount_points, umount
        tmp = os.path.realpath(self.tmp) + "/"
        for mp in mount_points():
            if not mp.startswith(tmp):
                continue
            if dead_only:
                parts = os.path.basename(mp).split("-")
                if len(parts) == 3 and parts[1].isdigit() and _alive(int(parts[1])):
                    continue
            try:
                umount(mp)
            except PyimageError:
                pass        # gone meanwhile; gc then leaves the directory (EBUSY) alone

    def gc(self):
        """remove blobs, unpacked layers and stale temp files that no ref reaches;
        returns (files removed, bytes freed)"""
        removed = freed = 0
        with self.gc_lock():
            self.sweep_mounts(dead_only=False)
            blobs, diff_ids = self.reachable()
            keep = {b.partition(":")[2] for b in blobs if isinstance(b, str)}
            for name in os.listdir(self.blobdir):
                if name not in keep:
                    p = os.path.join(self.blobdir, name)
                    try:
                        freed += os.lstat(p).st_size
                        os.unlink(p)
                        removed += 1
                    except FileNotFoundError:
                        pass
            keep_layers = {d.partition(":")[2] for d in diff_ids if isinstance(d, str)} | self.mounted_layers()
            for name in os.listdir(self.layers):
                if name.split(".")[0] not in keep_layers or "." in name:
                    p = os.path.join(self.layers, name)
                    if "." not in name:
                        # out of the way first: a gc killed half-way must not leave a
                        # half-deleted layer under a name a later bundle would trust
                        # (names with a dot are leftovers, removed by the next gc)
                        dead = "%s.gc-%d" % (p, os.getpid())
                        try:
                            os.rename(p, dead)
                        except FileNotFoundError:
                            continue
                        p = dead
                    rmtree(p, ignore_errors=True)
                    removed += 1
            for name in os.listdir(self.tmp):
                p = os.path.join(self.tmp, name)
                try:
                    fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    # a partial download still being written is locked by its writer
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                        continue
                    raise
                finally:
                    os.close(fd)
                try:
                    freed += os.lstat(p).st_size
                    if os.path.isdir(p):
                        rmtree(p, ignore_errors=True)
                    else:
                        os.unlink(p)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed, freed


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
