"""Pull an image into the store, and stream its layers to an unpacker in one pass.

For every layer not yet in the store a download thread (at most `jobs` at once) writes
the blob into .pyimage/tmp/<hex>.partial while hashing it; a decoder thread (a pool
of a few, taking layers in order) follows that file as it grows, decompresses, hashes
the tar stream (the diff_id) and hands chunks to the main thread through a bounded
queue; the main thread applies the tar entries.  So download, sha256, inflate and tar
apply all overlap (zlib and hashlib release the GIL), and nothing is read twice.  The decoder only reports the end of a
layer after the download thread verified size and digest and its own diff_id matched
the config, so a layer is never reported complete on bad data; on any failure the
caller removes what it wrote.

Limits: the decoder stops a layer whose uncompressed stream passes --max-layer-size;
downloads must fit in the store's filesystem above the margin space.py keeps.  A layer
found bad (limit, corrupt stream, wrong diff_id, hostile entry, no space) that this
pull downloaded is removed again, blob or partial file: it is no use to a later pull.
"""
import fcntl
import hashlib
import os
import queue
import threading
import time

from . import compress
from . import manifest as mf
from . import reference
from . import space
from .errors import DigestMismatch, LayerError, PyimageError, StoreError

QUEUE_CHUNKS = 24           # decoded chunks buffered per layer (each up to 1 MiB)
READ_SIZE = 256 << 10
CLOSE_WAIT = 2.0            # seconds close() waits for cancelled threads


class Image:
    """a resolved image: reference, manifest and config, and where they came from"""

    def __init__(self, ref, manifest, manifest_bytes, manifest_desc, config, config_bytes, client=None):
        self.ref = ref
        self.manifest = manifest
        self.manifest_bytes = manifest_bytes
        self.desc = manifest_desc
        self.config = config
        self.config_bytes = config_bytes
        self.client = client

    @property
    def layers(self):
        return self.manifest["layers"]

    @property
    def diff_ids(self):
        return self.config["rootfs"]["diff_ids"]


class Puller:
    def __init__(self, store, platform=None, insecure=False, cert_dir=None, progress=None, jobs=4,
                 max_layer_size=None):
        self.store = store
        self.max_layer_size = max_layer_size
        self.platform = platform or mf.host_platform()
        self.insecure = insecure
        self.cert_dir = cert_dir
        self.progress = progress
        self.jobs = jobs
        self.clients = {}

    def client(self, ref):
        c = self.clients.get(ref.host)
        if c is None:
            from .registry import Client   # requests costs ~70 ms: only when the network is needed
            c = self.clients[ref.host] = Client(ref.host, insecure=self.insecure, cert_dir=self.cert_dir,
                                                loopback=ref.is_loopback)
        return c

    # --- resolution -----------------------------------------------------------------

    def local(self, ref_text):
        """the image from the store, or None"""
        names = [ref_text]
        try:
            names.append(str(reference.parse(ref_text)))
        except PyimageError:
            pass
        for name in names:
            desc = self.store.lookup([name])
            if desc is not None:
                break
        else:
            return None
        what = name
        mf.check_size(desc, "manifest", "image " + what)
        raw = self.store.read_blob(desc["digest"])
        obj = mf.parse_json(raw, what + ": manifest")
        if desc.get("mediaType") in mf.INDEX_TYPES or obj.get("mediaType") in mf.INDEX_TYPES or \
                ("manifests" in obj and "layers" not in obj):
            # an index (written by another tool, e.g. skopeo --all): pick our platform
            sub = mf.select_platform(obj, self.platform, what)
            mf.check_size(sub, "manifest", "image " + what)
            raw = self.store.read_blob(sub["digest"])
            desc = sub
            obj = mf.parse_json(raw, what + ": manifest")
        m = mf.check_manifest(obj, what + ": manifest")
        mf.check_size(m["config"], "config", "image " + what)
        cfg_raw = self.store.read_blob(m["config"]["digest"])
        cfg = mf.image_config(cfg_raw, what + ": config")
        if len(cfg["rootfs"]["diff_ids"]) != len(m["layers"]):
            raise StoreError("image %s: config lists %d diff_ids for %d layers"
                             % (what, len(cfg["rootfs"]["diff_ids"]), len(m["layers"])))
        return Image(name, m, raw, desc, cfg, cfg_raw)

    def resolve(self, ref_text):
        """manifest + config from the registry (config stored right away)"""
        ref = reference.parse(ref_text)
        c = self.client(ref)
        what = str(ref)
        raw, ctype, digest = c.get_manifest(ref.repo, ref.digest or ref.tag, "pull " + what)
        obj = mf.parse_json(raw, what + ": manifest")
        mt = mf.media_type_of(obj, ctype, what)
        if mt in mf.INDEX_TYPES:
            sub = mf.select_platform(obj, self.platform, what)
            raw, ctype, digest = c.get_manifest(ref.repo, sub["digest"], "pull " + what, desc=sub)
            obj = mf.parse_json(raw, what + ": manifest")
            mt = mf.media_type_of(obj, ctype, what)
            if mt in mf.INDEX_TYPES:
                raise PyimageError("pull %s: nested index for platform %s is not supported"
                                   % (what, mf.platform_str(self.platform)))
        mf.check_manifest(obj, what + ": manifest")
        if mt == mf.DOCKER_MANIFEST:
            # store an OCI manifest: umoci and skopeo's oci: transport expect one
            obj = mf.to_oci(obj)
            raw = mf.canonical_bytes(obj)
            mt = mf.OCI_MANIFEST
        cfg_desc = obj["config"]
        mf.check_size(cfg_desc, "config", "pull " + what)
        if self.store.has_blob(cfg_desc["digest"], cfg_desc["size"]):
            cfg_raw = self.store.read_blob(cfg_desc["digest"])
        else:
            cfg_raw = c.get_blob_bytes(ref.repo, cfg_desc, "pull " + what)
        cfg = mf.image_config(cfg_raw, what + ": config")
        if len(cfg["rootfs"]["diff_ids"]) != len(obj["layers"]):
            raise PyimageError("pull %s: config lists %d diff_ids for %d layers"
                               % (what, len(cfg["rootfs"]["diff_ids"]), len(obj["layers"])))
        self.store.put_blob(cfg_raw, cfg_desc["digest"])
        desc = {"mediaType": mt, "digest": mf.sha256_digest(raw), "size": len(raw)}
        if mt == mf.OCI_MANIFEST and (cfg.get("os") or cfg.get("architecture")):
            desc["platform"] = {"os": cfg.get("os", ""), "architecture": cfg.get("architecture", "")}
            if cfg.get("variant"):
                desc["platform"]["variant"] = cfg["variant"]
        return Image(str(ref), obj, raw, desc, cfg, cfg_raw, client=c)

    def get(self, ref_text, pull=True):
        img = self.local(ref_text)
        if img is not None:
            return img
        if not pull:
            raise StoreError("image %s: not in store %s" % (ref_text, self.store.root))
        return self.resolve(ref_text)

    # --- layers ---------------------------------------------------------------------

    def pipeline(self, img, want=None):
        return Pipeline(self, img, want)

    def commit(self, img):
        """record the image in index.json once all its blobs are in (called under the
        writer lock; the config is stored again because a gc may have run between
        resolve() and taking the lock)"""
        self.store.put_blob(img.config_bytes, img.manifest["config"]["digest"])
        for l in img.layers:
            if not self.store.has_blob(l["digest"], l["size"]):
                raise StoreError("store %s: layer %s missing after pull" % (img.ref, l["digest"]))
        self.store.put_blob(img.manifest_bytes, img.desc["digest"])
        self.store.set_ref(img.ref, img.desc)

    def pull(self, ref_text):
        img = self.resolve(ref_text)
        with self.store.writer_lock():
            p = self.pipeline(img, want=set())
            try:
                p.wait_downloads()
            finally:
                p.close()
            self.commit(img)
        return img


class _Feed:
    """a blob file that may still be growing: the downloader advances it, a reader
    follows it"""

    def __init__(self, path, size, avail, done):
        self.path = path
        self.size = size
        self.avail = avail
        self.done = done
        self.ready = done       # the download thread has the file (resumed bytes counted)
        self.error = None
        self.cond = threading.Condition()

    def advance(self, n):
        with self.cond:
            self.avail += n
            self.cond.notify_all()

    def finish(self, path):
        with self.cond:
            self.path = path
            self.avail = self.size
            self.done = self.ready = True
            self.cond.notify_all()

    def fail(self, err):
        with self.cond:
            self.error = err
            self.cond.notify_all()


class Pipeline:
    """downloads for the missing blobs of `img`, and decoders for the layers in `want`
    (indexes; None = all).  next_chunk(i) is the chunk iterator for layer i."""

    def __init__(self, puller, img, want=None):
        self.p = puller
        self.store = puller.store
        self.img = img
        self.cancel = threading.Event()
        self.errors = []
        self.threads = []
        self.feeds = []
        self.queues = {}
        self.responses = set()  # blob responses being read (close() aborts them)
        self.fetched = set()    # digests this pipeline downloaded and committed
        self.rejected = set()   # layers whose content was found bad
        self.partial_of = {}    # fd -> path, the partial files still locked
        self.lock = threading.Lock()
        self.guard = None
        self.store_fd = None
        n = len(img.layers)
        self.want = set(range(n)) if want is None else set(want)
        if img.client is None:
            # an image from the store: never go to the network behind the user's back
            # (a local name like "copied" would normalise to Docker Hub)
            for l in img.layers:
                if not self.store.has_blob(l["digest"], l["size"]):
                    raise StoreError("image %s: layer %s missing from store %s (damaged store? pull it again)"
                                     % (img.ref, l["digest"], self.store.root))
        prog = puller.progress
        dl = []
        by_digest = {}
        for i, l in enumerate(img.layers):
            final = self.store.blob_path(l["digest"])
            label = "layer %d/%d %s" % (i + 1, n, l["digest"][7:19])
            if l["digest"] in by_digest:
                # the same blob twice (empty layers often repeat): one download, one feed
                self.feeds.append(by_digest[l["digest"]])
                if prog:
                    prog.add(i, label, l["size"], "same as an earlier layer")
                continue
            if self.store.has_blob(l["digest"], l["size"]):
                self.feeds.append(_Feed(final, l["size"], l["size"], True))
                if prog:
                    prog.add(i, label, l["size"], "exists")
                continue
            # the partial file is opened (and locked, and a leftover one resumed) by
            # the download thread: an fd per layer from here would run out of fds
            # for an image of thousands of layers
            feed = _Feed(os.path.join(self.store.tmp, l["digest"][7:] + ".partial"), l["size"], 0, False)
            feed.ready = False
            by_digest[l["digest"]] = feed
            self.feeds.append(feed)
            dl.append((i, l))
            if prog:
                prog.add(i, label, l["size"], "waiting")
        # a layer downloaded now but not applied (pull, or a shared-mode layer already
        # unpacked) is still decoded, only to check its diff_id: nothing unverified
        # becomes part of an image in the store
        self.verify = {job[0] for job in dl} - self.want
        self.fds = {}
        self.downloads = len(dl)
        # downloads: a bounded pool of threads taking layers in order
        if dl:
            ref = reference.parse(img.ref)
            self.repo = ref.repo
            self.client = img.client or puller.client(ref)
            self.store_fd = os.open(self.store.tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self.guard = space.Guard(self.store_fd, "pull %s" % img.ref, "store %s" % self.store.root)
            # the announced sizes must fit (what will be resumed is already on disk)
            try:
                self.guard.fits(sum(l["size"] - _resumable(self.feeds[i].path, l["size"]) for i, l in dl))
            except BaseException:
                self.close()
                raise
        self.dl_queue = queue.Queue()
        for job in dl:
            self.dl_queue.put(job)
        for _ in range(min(puller.jobs, len(dl))):
            self.dl_queue.put(None)
            self._start(self._download_worker)
        # decoders: a pool taking layers in order (a thread and an fd per layer would
        # not do for an image of thousands of layers).  No deadlock: a decoder only
        # blocks on a layer the main thread has not reached, and every layer below it
        # was taken by a decoder earlier
        self.dec_queue = queue.Queue()
        for i in sorted(self.want | self.verify):
            if i in self.want:
                self.queues[i] = queue.Queue(QUEUE_CHUNKS)
            self.dec_queue.put(i)
        ndec = min(len(self.want | self.verify), max(2, puller.jobs + 1))
        for _ in range(ndec):
            self.dec_queue.put(None)
            self._start(self._decode_worker)

    def _start(self, fn, *args):
        t = threading.Thread(target=self._guard, args=(fn,) + args, daemon=True)
        self.threads.append(t)
        t.start()

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except BaseException as e:   # reported to the main thread, which raises it
            self.errors.append(e)
            self.cancel.set()

    def _partial(self, i, l):
        """open (or resume) the partial download of layer i: (fd, path, bytes we have,
        their hash), or None when the blob is complete; the flock keeps a concurrent
        pyimage from writing the same file"""
        hexd = l["digest"][7:]
        path = os.path.join(self.store.tmp, hexd + ".partial")
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(fd, fcntl.LOCK_EX)     # another process downloads it: wait for it
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            # the holder removed it (bad bytes, or empty) or renamed it into the blob
            # directory while we waited: this inode is nobody's file any more
            os.close(fd)
        if self.store.has_blob(l["digest"], l["size"]):
            # another process finished it meanwhile; a partial file we created after its
            # rename is an empty leftover (we hold its lock, nobody else writes it)
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            os.close(fd)
            return None
        # a partial left by an interrupted pull: keep its bytes, hash them again
        h = hashlib.sha256()
        have = 0
        st = os.fstat(fd)
        if 0 < st.st_size <= l["size"]:
            with open(path, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
                    have += len(b)
        else:
            os.ftruncate(fd, 0)
        if have == l["size"]:
            # interrupted after its last byte, before the rename: a Range request from
            # the end would be refused (416); the bytes decide
            if "sha256:" + h.hexdigest() == l["digest"]:
                self.store.commit_blob(path, l["digest"])
                os.close(fd)
                return None
            os.ftruncate(fd, 0)
            h, have = hashlib.sha256(), 0
        with self.lock:
            self.partial_of[fd] = path     # the fd holds the flock
        return fd, path, have, h

    def _download_worker(self):
        while not self.cancel.is_set():
            job = self.dl_queue.get()
            if job is None:
                return
            i, l = job
            feed = self.feeds[i]
            prog = self.p.progress
            path = feed.path
            try:
                got = self._partial(i, l)
                if got is None:     # complete: another pyimage's, or a resumed partial
                    feed.finish(self.store.blob_path(l["digest"]))
                    if prog:
                        prog.state(i, "exists")
                    continue
                fd, path, have, h = got
                with feed.cond:
                    feed.avail = have
                    feed.ready = True
                    feed.cond.notify_all()
                out = os.fdopen(os.dup(fd), "r+b", buffering=0)
                with out:
                    out.seek(have)

                    def step(n, i=i, feed=feed):
                        feed.advance(n)
                        if prog:
                            prog.update(i, n)
                    self.client.fetch_blob(self.repo, l, out,
                                               "pull %s: layer %s" % (self.img.ref, l["digest"]),
                                               progress=step, cancel=self.cancel, have=have, hasher=h,
                                               track=self.responses, guard=self.guard)
                self.store.commit_blob(path, l["digest"])
                with self.lock:
                    self.fetched.add(l["digest"])
                feed.finish(self.store.blob_path(l["digest"]))
                self._unlock(fd)     # a concurrent pyimage waiting for this blob may go on
                if prog:
                    prog.state(i, "downloaded")
            except BaseException as e:
                feed.fail(e)
                if isinstance(e, DigestMismatch):
                    # the bytes are wrong: never resume from them
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
                raise

    def _unlock(self, fd):
        with self.lock:
            if self.partial_of.pop(fd, None) is not None:
                os.close(fd)

    def _decode_worker(self):
        while not self.cancel.is_set():
            i = self.dec_queue.get()
            if i is None:
                return
            self._decode(i, self.queues.get(i))

    def _open_feed(self, feed):
        """an fd on the feed's file; a download that finishes renames its partial
        file into the blob directory, so a miss waits for the new path"""
        while True:
            with feed.cond:
                while not feed.ready and feed.error is None and not self.cancel.is_set():
                    feed.cond.wait(0.2)
                if not feed.ready:
                    raise _Cancelled()
                path = feed.path
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                with feed.cond:
                    while feed.path == path and feed.error is None and not self.cancel.is_set():
                        feed.cond.wait(0.2)
                    if feed.path == path:
                        raise _Cancelled() from None

    def _decode(self, i, q):
        l = self.img.layers[i]
        feed = self.feeds[i]
        what = "layer %s" % l["digest"]
        dec = compress.decoder(mf.LAYER_COMPRESSION[l["mediaType"]], what)
        h = hashlib.sha256()
        cancel = self.cancel
        limit = self.p.max_layer_size
        total = [0]

        def emit(out):
            h.update(out)
            if limit is not None:
                total[0] += len(out)
                if total[0] > limit:
                    raise LayerError("pull %s: %s: uncompressed content is larger than the --max-layer-size "
                                     "limit (%s)" % (self.img.ref, what, space.human(limit)))
            if q is None:       # verify only: the hash is all we want
                if cancel.is_set():
                    raise _Cancelled()
                return
            while True:
                if cancel.is_set():
                    raise _Cancelled()
                try:
                    q.put(out, timeout=0.2)
                    return
                except queue.Full:
                    continue
        fd = None
        try:
            fd = self._open_feed(feed)
            with self.lock:
                self.fds[i] = fd
            pos = 0
            while True:
                with feed.cond:
                    while feed.avail <= pos and not feed.done and feed.error is None and not cancel.is_set():
                        feed.cond.wait(0.2)
                    if feed.error is not None or cancel.is_set():
                        raise _Cancelled()
                    end, finished = feed.avail, feed.done
                if pos >= end:
                    if finished:
                        break
                    continue
                data = os.pread(fd, min(end - pos, READ_SIZE), pos)
                if not data:
                    raise StoreError("read %s: blob file shorter than expected" % what)
                pos += len(data)
                dec.feed(data, emit)
            dec.close()
            diff = "sha256:" + h.hexdigest()
            want = self.img.diff_ids[i]
            if diff != want:
                raise DigestMismatch("%s: uncompressed content has digest %s, the config says %s"
                                     % (what, diff, want))
            if q is not None:
                emit_end(q, cancel)
        except _Cancelled:
            if q is not None:
                try:
                    q.put_nowait(_Cancelled())
                except queue.Full:
                    pass
        except BaseException as e:
            if isinstance(e, (LayerError, DigestMismatch, space.NoSpace)):
                self.reject(i)
            self.errors.append(e)
            self.cancel.set()
            if q is not None:
                try:
                    q.put_nowait(e)
                except queue.Full:
                    pass
        finally:
            if fd is not None:
                with self.lock:
                    self.fds.pop(i, None)
                os.close(fd)

    def reject(self, i):
        """layer i's content is bad: close() removes its blob if this pull fetched it"""
        with self.lock:
            self.rejected.add(i)

    def next_chunk(self, i):
        """a function returning layer i's next decoded chunk, or None at its end"""
        q = self.queues[i]

        def nxt():
            while True:
                try:
                    item = q.get(timeout=0.5)
                except queue.Empty:
                    if self.errors:
                        raise self.errors[0]
                    continue
                if item is None:
                    return None
                if isinstance(item, BaseException):
                    # a decoder stopped because its feed failed: the download thread
                    # records why right after (feed.fail comes first), so wait for
                    # that cause rather than report a bare "stopped"
                    deadline = time.monotonic() + 5
                    while not self.errors and time.monotonic() < deadline \
                            and any(t.is_alive() for t in self.threads):
                        time.sleep(0.01)
                    if self.errors:
                        raise self.errors[0]
                    raise LayerError("pull %s: layer %d stopped" % (self.img.ref, i + 1))
                return item
        return nxt

    def wait_downloads(self):
        for t in self.threads:
            while t.is_alive():
                t.join(0.2)
        if self.errors:
            raise self.errors[0]

    def close(self):
        """stop every thread and release the partial files' locks"""
        self.cancel.set()
        abort_response = None
        if self.downloads:
            from .registry import abort_response    # requests is loaded already then
        deadline = time.monotonic() + CLOSE_WAIT
        for t in self.threads:
            while t.is_alive() and time.monotonic() < deadline:
                # a download blocked reading a silent server's body only wakes when its
                # socket is shut down (else Ctrl-C would wait for the read timeout)
                if abort_response is not None:
                    for r in list(self.responses):
                        abort_response(r)
                t.join(0.1)
        if any(t.is_alive() for t in self.threads):
            # one still waits for response headers (no socket of it to shut down yet):
            # leave it, a daemon thread; keep its files and their locks open until the
            # process exits rather than let it write into a file we no longer lock
            return
        with self.lock:
            bad = {self.img.layers[i]["digest"] for i in self.rejected}
            for fd, path in self.partial_of.items():
                # still locked by us, so nobody else writes it: a bad layer's bytes
                # and an empty file are of no use to a later pull
                if os.path.basename(path)[:-len(".partial")] in {d[7:] for d in bad} or \
                        os.fstat(fd).st_size == 0:
                    _unlink(path)
                os.close(fd)
            self.partial_of = {}
            for d in bad & self.fetched:
                # under the writer lock, and fetched by us: no image in the store uses it
                _unlink(self.store.blob_path(d))
            self.fetched -= bad
            for fd in self.fds.values():
                os.close(fd)
            self.fds = {}
            if self.store_fd is not None:
                os.close(self.store_fd)
                self.store_fd = None


class _Cancelled(Exception):
    pass


def emit_end(q, cancel):
    """the end of a layer (None) through the bounded queue"""
    while True:
        if cancel.is_set():
            raise _Cancelled()
        try:
            q.put(None, timeout=0.2)
            return
        except queue.Full:
            continue


def _resumable(path, size):
    """bytes of a partial file left by an interrupted pull that a download resumes"""
    try:
        n = os.stat(path).st_size
    except FileNotFoundError:
        return 0
    return n if n <= size else 0


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
