"""Apply layer tar streams onto a root filesystem, safely and fast.

Every filesystem call is made relative to a directory fd that was reached from the
rootfs fd one component at a time with O_NOFOLLOW; a symlink met on the way is
resolved *inside* the rootfs (an absolute target or `..` restarts from, or stops at,
the rootfs, like filepath-securejoin), so no entry can reach outside whatever symlinks
earlier entries or lower layers planted (umoci CVE-2021-29136, containerd
CVE-2021-32760 are the classic failures).  The last component of an entry is never
followed: it is removed and recreated.

Layers are applied in order onto one directory; whiteouts delete, opaque markers
empty a directory of what lower layers put there, sparing what the same layer wrote
(the ordering trap: a marker can come after the layer's own entries in that
directory).  The shared mode (bundle.py) applies each layer the same way, through an
overlay mount of the layers below it, so the kernel turns deletions into overlayfs
whiteouts and copies up what a hard link or a metadata change touches, as containerd's
overlay snapshotter does.

Metadata order: chown before chmod (chown clears setuid/setgid), xattrs, times last;
directories' metadata is applied once at the very end (the last header for a path
wins, as with umoci), so writing children does not disturb their times or modes.

Device nodes, FIFOs and setuid/setgid files are created as the layer says (as umoci
and containerd do): they are part of images (/dev/console in base images, setuid
su/passwd), and what makes them harmless is the runtime (no device access in the
container's device cgroup, noNewPrivileges, user namespaces), not the unpacker.

Every step is linear in the layer: removed subtrees are remembered by the entry
number at which they went (not by scanning the pending directory metadata), an
opaque directory is emptied once per layer, and writes are charged to a space.Guard
that stops before the filesystem's free-space margin is reached.
"""
import errno
import os
import stat
import sys

from . import space
from .rmtree import rmtree
from . import tarstream as ts
from .errors import LayerError, printable, show

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_NEWFILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
MAX_LINKS = 40
# xattrs that describe the host rather than the image (umoci skips them too)
SKIP_XATTRS = ("security.selinux", "system.nfs4_acl")


class Applier:
    """Holds the rootfs fd, a cache of directory fds and deferred directory metadata.
    Use: a = Applier(path); for each layer: a.apply(chunk_iterator); a.finish()."""

    def __init__(self, root, warn=None):
        self.root = root
        self.root_fd = os.open(root, O_DIR)
        self.cache = {"": self.root_fd}       # physical dir path (no symlinks) -> fd
        self.alias = {}                        # path through symlinks -> fd
        self.owned = []                        # fds to close
        self.is_root = os.geteuid() == 0
        self.dir_meta = {}                     # path -> (entry number, Entry); last header wins
        self.removed = {}                      # path -> entry number at which its tree went
        self.layer_paths = set()
        self.opaqued = set()                   # directories emptied of lower content (this layer)
        self.warn = warn or (lambda msg: sys.stderr.write("pyimage: warning: %s\n" % printable(msg, 2000)))
        self._warned = set()
        self.layer_name = "layer"
        self.entries = 0
        self.guard = space.Guard(self.root_fd, "apply layer", root)
        try:
            import resource
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft < hard:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            self.max_cached = max(256, min(hard, 1 << 16) // 2)
        except (ImportError, ValueError, OSError):
            self.max_cached = 256

    # --- errors and warnings ----------------------------------------------------------

    def _fail(self, path, why):
        raise LayerError("apply %s: %s: %s" % (self.layer_name, show(path or "/"), why))

    def _warn_once(self, key, msg):
        if key not in self._warned:
            self._warned.add(key)
            self.warn(msg)

    # --- directory resolution ---------------------------------------------------------

    def _drop_cache(self):
        """forget every cached directory fd (after a directory or symlink was removed or
        replaced: a cached fd could point at an unlinked directory)"""
        for fd in self.owned:
            os.close(fd)
        self.owned = []
        self.cache = {"": self.root_fd}
        self.alias = {}

    def _remember(self, key, fd):
        self.cache[key] = fd
        self.owned.append(fd)

    def dir_fd(self, path, create=True):
        """fd of directory `path` (lexical, relative to the rootfs, '' = root); missing
        components are created (0755, like MkdirAll) unless create is False, in which case
        None is returned for a missing one"""
        fd = self.cache.get(path)
        if fd is not None:
            return fd
        fd = self.alias.get(path)
        if fd is not None:
            return fd
        fd = self._walk(path, create)
        if fd is not None and path not in self.cache:
            # a path through symlinks: kept apart from the physical paths so that '..'
            # in later symlink targets climbs the real parents
            self.alias[path] = fd
        return fd

    def _walk(self, path, create):
        phys = []
        fd = self.root_fd
        todo = path.split("/")
        todo.reverse()
        links = 0
        cache = self.cache
        while todo:
            c = todo.pop()
            if c == "" or c == ".":
                continue
            if c == "..":
                # '..' can't climb above the rootfs: the root is its own parent
                if phys:
                    phys.pop()
                    fd = self._phys_fd(phys)
                continue
            key = "/".join(phys + [c]) if phys else c
            cfd = cache.get(key)
            if cfd is None:
                try:
                    cfd = os.open(c, O_DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        return None
                    try:
                        os.mkdir(c, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    cfd = os.open(c, O_DIR, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(c, dir_fd=fd, follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        if not create:
                            return None
                        self._fail(path, "parent %s is not a directory" % key)
                    links += 1
                    if links > MAX_LINKS:
                        self._fail(path, "too many levels of symbolic links")
                    target = os.readlink(c, dir_fd=fd)
                    if target.startswith("/"):
                        phys = []
                        fd = self.root_fd
                    parts = target.split("/")
                    parts.reverse()
                    todo.extend(parts)
                    continue
                self._remember(key, cfd)
            phys.append(c)
            fd = cfd
        return fd

    def _phys_fd(self, phys):
        key = "/".join(phys)
        fd = self.cache.get(key)
        if fd is not None:
            return fd
        fd = self.root_fd
        for i, c in enumerate(phys):
            k = "/".join(phys[:i + 1])
            cfd = self.cache.get(k)
            if cfd is None:
                cfd = os.open(c, O_DIR, dir_fd=fd)
                self._remember(k, cfd)
            fd = cfd
        return fd

    # --- removal --------------------------------------------------------------------

    def _replace(self, pfd, base, path):
        """remove what is at path to make room for a new entry; returns the parent's fd
        again (the removal may have emptied the fd cache)"""
        self._remove(pfd, base, path)
        return self.dir_fd(path.rpartition("/")[0])

    def _remove(self, pfd, base, path):
        """remove whatever is at pfd/base (a whole tree for a directory); may drop the
        fd cache, so callers must not reuse cached fds afterwards"""
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not path:
                self._fail(path, "refusing to remove the rootfs root")
            rmtree(base, dir_fd=pfd)
            self._forget_tree(path)
        else:
            os.unlink(base, dir_fd=pfd)
            if stat.S_ISLNK(st.st_mode):
                self._drop_cache()

    def _forget_tree(self, path):
        """the directory tree at path went: metadata recorded for it or below before
        now must not land on a directory made there later without a header of its own
        (finish() compares entry numbers; no scan here, which made a layer removing
        many directories quadratic)"""
        self._drop_cache()
        self.removed[path] = self.entries

    def _opaque(self, dfd, dpath):
        """remove what lower layers put in dpath, keeping what this layer wrote there.
        Once per directory and layer: afterwards all it holds is this layer's"""
        if dpath in self.opaqued:
            return
        self.opaqued.add(dpath)
        prefix = dpath + "/" if dpath else ""
        # a private fd: removals below drop the cache, which closes cached fds
        dfd = os.dup(dfd)
        try:
            for name in os.listdir(dfd):
                p = prefix + name
                if p in self.layer_paths:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        cfd = os.open(name, O_DIR, dir_fd=dfd)
                        try:
                            self._opaque(cfd, p)
                        finally:
                            os.close(cfd)
                    continue
                self._remove(dfd, name, p)
        finally:
            os.close(dfd)

    def _mark_written(self, path, parent):
        lp = self.layer_paths
        lp.add(path)
        while parent and parent not in lp:
            lp.add(parent)
            parent = parent.rpartition("/")[0]

    # --- one layer --------------------------------------------------------------------

    def apply(self, next_chunk, layer_name="layer"):
        """apply one layer whose decompressed tar stream comes from next_chunk()"""
        self.layer_name = layer_name
        self.layer_paths = set()
        self.opaqued = set()
        self.guard.what = "apply %s" % layer_name
        rd = ts.ChunkReader(next_chunk)
        old_umask = os.umask(0)
        try:
            for e in ts.entries(rd):
                self._entry(e, rd)
            rd.drain()
        except OSError as err:
            raise LayerError("apply %s: %s" % (layer_name, _oserr(err))) from None
        finally:
            os.umask(old_umask)

    def _entry(self, e, rd):
        self.entries += 1
        if len(self.owned) > self.max_cached:
            self._drop_cache()      # bounded fd use; only here, where no fd is held
        # the free-space margin: the data, and at least a block and an inode per entry
        g = self.guard
        g.budget -= e.size + space.BLOCK
        g.inode_budget -= 1
        if g.budget < 0 or g.inode_budget < 0:
            g.charge(0)
        name = e.name
        # fast path: a plain relative name; else clean it and refuse any '..'
        if name.startswith("./"):
            name = name[2:]
        if "//" in name or "/." in name or name.startswith(("/", ".")) or name.endswith("/"):
            name = self._clean(name)
        t = e.type
        if (t == ts.REGTYPE or t == ts.AREGTYPE) and e.name.endswith("/"):
            t = ts.DIRTYPE
        parent, _, base = name.rpartition("/")
        if not name:
            if t != ts.DIRTYPE:
                self._fail("/", "refusing to replace the rootfs root with a non-directory")
            self.dir_meta[""] = (self.entries, e)
            return
        if base.startswith(WH_PREFIX):
            self._whiteout(parent, base, name)
            return
        pfd = self.cache.get(parent)
        if pfd is None:
            pfd = self.dir_fd(parent)
        lp = self.layer_paths
        if parent in lp or not parent:
            lp.add(name)
        else:
            self._mark_written(name, parent)
        uid, gid = e.uid, e.gid
        if t == ts.REGTYPE or t == ts.AREGTYPE or t == ts.CONTTYPE:
            mode = e.mode
            try:
                fd = os.open(base, O_NEWFILE, mode, dir_fd=pfd)
            except FileExistsError:
                pfd = self._replace(pfd, base, name)
                fd = os.open(base, O_NEWFILE, mode, dir_fd=pfd)
            try:
                if e.size:
                    write = os.write
                    for mv in rd.chunks(e.size):
                        while mv:
                            n = write(fd, mv)
                            mv = mv[n:]
                if (uid or gid) and self.is_root:
                    try:
                        os.fchown(fd, uid, gid)
                    except OSError as err:
                        self._chown_failed(err, name, uid, gid)
                    if mode & 0o6000:
                        os.fchmod(fd, mode)
                if e.xattrs:
                    self._xattrs(fd, None, name, e.xattrs)
                m = e.mtime_ns
                os.utime(fd, ns=(e.atime_ns or m, m))
            finally:
                os.close(fd)
            return
        if t == ts.DIRTYPE:
            try:
                os.mkdir(base, 0o755, dir_fd=pfd)
            except FileExistsError:
                st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    pfd = self._replace(pfd, base, name)
                    os.mkdir(base, 0o755, dir_fd=pfd)
            self.dir_meta[name] = (self.entries, e)
            return
        if t == ts.SYMTYPE:
            try:
                os.symlink(e.linkname, base, dir_fd=pfd)
            except FileExistsError:
                pfd = self._replace(pfd, base, name)
                os.symlink(e.linkname, base, dir_fd=pfd)
            self._meta_path(pfd, base, name, e, link=True)
            return
        if t == ts.LNKTYPE:
            self._hardlink(pfd, base, name, e)
            return
        if t == ts.FIFOTYPE or t == ts.CHRTYPE or t == ts.BLKTYPE:
            if t != ts.FIFOTYPE and not self.is_root:
                self._warn_once("dev", "%s: skipping device nodes (not root), e.g. /%s" % (self.layer_name, name))
                return
            kind = stat.S_IFIFO if t == ts.FIFOTYPE else stat.S_IFCHR if t == ts.CHRTYPE else stat.S_IFBLK
            dev = os.makedev(e.devmajor, e.devminor) if t != ts.FIFOTYPE else 0
            try:
                try:
                    os.mknod(base, kind | e.mode, dev, dir_fd=pfd)
                except FileExistsError:
                    pfd = self._replace(pfd, base, name)
                    os.mknod(base, kind | e.mode, dev, dir_fd=pfd)
            except PermissionError:
                # e.g. inside a user namespace: the kernel refuses device nodes
                self._warn_once("dev", "%s: skipping device nodes (mknod not permitted), e.g. /%s"
                                % (self.layer_name, name))
                return
            self._meta_path(pfd, base, name, e)
            return
        self._fail(name, "unsupported tar entry type %r" % chr(t))

    def _clean(self, name):
        parts = []
        for c in name.split("/"):
            if c == "" or c == ".":
                continue
            if c == "..":
                self._fail(name, "entry name escapes the rootfs ('..')")
            parts.append(c)
        return "/".join(parts)

    def _hardlink(self, pfd, base, name, e):
        target = e.linkname
        if target.startswith("./"):
            target = target[2:]
        target = self._clean(target)
        if not target:
            self._fail(name, "hard link to the rootfs root")
        if target == name:
            return
        tparent, _, tbase = target.rpartition("/")
        tfd = self.dir_fd(tparent, create=False)
        if tfd is None:
            self._fail(name, "hard link target /%s not found" % target)
        try:
            st = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
        except FileNotFoundError:
            self._fail(name, "hard link target /%s not found" % target)
        if stat.S_ISDIR(st.st_mode):
            self._fail(name, "hard link to a directory (/%s)" % target)
        # linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself
        try:
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileExistsError:
            self._remove(pfd, base, name)
            # the removal may have dropped the cache; resolve both sides again
            tfd = self.dir_fd(tparent, create=False)
            pfd = self.dir_fd(name.rpartition("/")[0])
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _whiteout(self, parent, base, name):
        if base == WH_OPAQUE:
            dfd = self.dir_fd(parent, create=False)
            if dfd is not None:
                self._opaque(dfd, parent)
            return
        if base.startswith(".wh..wh."):
            return   # aufs metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to apply
        victim = base[len(WH_PREFIX):]
        if not victim or victim in (".", ".."):
            self._fail(name, "invalid whiteout name")
        vpath = parent + "/" + victim if parent else victim
        pfd = self.dir_fd(parent, create=False)
        if pfd is None:
            return
        if vpath in self.layer_paths:
            # the same layer wrote it: a whiteout hides lower layers only.  If this
            # layer made it a directory (the marker after the entries: "deleted, then
            # re-created"), what lower layers had inside it is still hidden
            try:
                st = os.stat(victim, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode):
                dfd = os.open(victim, O_DIR, dir_fd=pfd)
                try:
                    self._opaque(dfd, vpath)
                finally:
                    os.close(dfd)
            return
        self._remove(pfd, victim, vpath)

    # --- metadata -------------------------------------------------------------------

    def _xattrs(self, fd, pathname, name, xattrs, link=False):
        for k, v in xattrs.items():
            if k in SKIP_XATTRS:
                continue
            if link and k.startswith("user."):
                continue    # the kernel refuses user.* on symlinks
            try:
                if fd is not None:
                    os.setxattr(fd, k, v)
                else:
                    os.setxattr(pathname, k, v, follow_symlinks=False)
            except OSError as err:
                if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    self._warn_once("xattr:" + k.split(".")[0],
                                    "%s: this filesystem does not support %s.* xattrs (first: /%s)"
                                    % (self.layer_name, k.split(".")[0], name))
                elif err.errno == errno.EPERM and not self.is_root:
                    self._warn_once("xattr-perm", "%s: not permitted to set xattr %s on /%s, skipped"
                                    % (self.layer_name, k, name))
                else:
                    raise

    def _chown_failed(self, err, name, uid, gid):
        """inside a user namespace, ids without a mapping cannot be given (EINVAL);
        keep the file with our ids and say so once, as containerd does"""
        if err.errno not in (errno.EINVAL, errno.EPERM):
            raise err
        self._warn_once("chown", "%s: cannot give /%s to %d:%d (%s: no mapping in this user namespace?); "
                                 "files keep the unpacking user's ids"
                        % (self.layer_name, name, uid, gid, errno.errorcode[err.errno]))

    def _meta_path(self, pfd, base, name, e, link=False):
        """owner, xattrs and times of a non-regular, non-directory entry (by name under
        its parent fd, never following it)"""
        if (e.uid or e.gid) and self.is_root:
            try:
                os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
            except OSError as err:
                self._chown_failed(err, name, e.uid, e.gid)
            if not link and e.mode & 0o6000:
                os.chmod("/proc/self/fd/%d/%s" % (pfd, base), e.mode)
        if e.xattrs:
            self._xattrs(None, "/proc/self/fd/%d/%s" % (pfd, base), name, e.xattrs, link=link)
        m = e.mtime_ns
        os.utime(base, ns=(e.atime_ns or m, m), dir_fd=pfd, follow_symlinks=False)

    def finish(self):
        """apply the deferred directory metadata, deepest first, then close every fd"""
        old_umask = os.umask(0)
        try:
            self._drop_cache()
            items = sorted(self.dir_meta.items(), key=lambda kv: -kv[0].count("/") - (1 if kv[0] else 0))
            removed = self.removed
            for path, (seq, e) in items:
                if removed and self._removed_since(path, seq):
                    continue
                fd = self.root_fd
                if path:
                    # the parent may be reached through symlinks (resolved inside the
                    # rootfs); the directory itself must be a real one, never followed
                    parent, _, base = path.rpartition("/")
                    if len(self.owned) > self.max_cached:
                        self._drop_cache()
                    pfd = self.dir_fd(parent, create=False)
                    if pfd is None:
                        continue
                    try:
                        fd = os.open(base, O_DIR, dir_fd=pfd)
                    except OSError:
                        continue
                try:
                    if self.is_root:
                        try:
                            os.fchown(fd, e.uid, e.gid)
                        except OSError as err:
                            self._chown_failed(err, path, e.uid, e.gid)
                    os.fchmod(fd, e.mode)
                    if e.xattrs:
                        self._xattrs(fd, None, path, e.xattrs)
                    m = e.mtime_ns
                    os.utime(fd, ns=(e.atime_ns or m, m))
                finally:
                    if path:
                        os.close(fd)
        except OSError as err:
            raise LayerError("apply directory metadata: %s" % _oserr(err)) from None
        finally:
            os.umask(old_umask)
            self.close()

    def _removed_since(self, path, seq):
        """was path, or a directory above it, removed after entry number seq?"""
        p = path
        while p:
            if removed_at(self.removed, p) > seq:
                return True
            p = p.rpartition("/")[0]
        return False

    def close(self):
        self._drop_cache()
        if self.root_fd is not None:
            os.close(self.root_fd)
            self.root_fd = None


def removed_at(removed, path):
    return removed.get(path, -1)


def _oserr(err):
    where = show(err.filename) if isinstance(err.filename, str) else ""
    return "%s%s" % ((where + ": ") if where else "", (err.strerror or str(err)).lower())
