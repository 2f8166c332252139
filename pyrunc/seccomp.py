"""linux.seccomp -> a BPF program for the container child, cached under the state root.

    prog = prepare(config["linux"]["seccomp"], state_root)   # None: no filter
    prog.program, prog.flags, prog.notify, prog.listener_path, prog.listener_metadata
    send_to_listener(listener_fd, prog, oci_state, pid)       # SCMP_ACT_NOTIFY

As in crun, the profile is compiled in the parent and the child only hands the
finished program to seccomp(2) (csrc/child/process.c).  Compiling means libseccomp
(pyrunc/seccomp_compile.py, through the separate cffi module pyrunc._libseccomp):
several milliseconds for a Docker-sized profile, plus loading the library.  So the
result is cached in `<root>/.cache/seccomp/<key>`, and this module, the only one the
create path imports, must stay cheap: a hit is a blake2b of the profile, uname, two
stats, one open and read, and never imports pyrunc._libseccomp (well under 1 ms).

The key is a hash of the profile and of what else shapes the program: the kernel
(which filter flags and actions it takes, the default SPEC_ALLOW), the machine, the
cache format and the compiler module itself.  The libseccomp build is checked when
the entry is read, not hashed into the key: naming it without loading the library
means stat()ing its file, whose path the entry records.

Entry layout (integers little-endian):

    magic "PYRSECC\\x02" | blake2b-256 of everything after it |
    u32 instructions | u32 seccomp flags | u32 notify | u32 lib path length |
    u64 lib st_ino | u64 lib st_size | u64 lib st_mtime_ns | lib path | program

A truncated, corrupt (checksum), foreign (magic) or stale (library changed) entry is
treated as a miss and rewritten; writes go to a temp file renamed into place, so a
reader sees either nothing or a whole entry.  No fsync: a torn entry after a crash
fails its checksum and is rebuilt, which is cheaper than syncing on every miss.
"""
from pyrunc import _os as os
import sys

from pyrunc.errors import ConfigError

__all__ = ["SeccompError", "Prepared", "prepare", "send_to_listener", "features",
           "cache_dir"]

_MAGIC = b"PYRSECC\x02"
_DIGEST = 32
_FIXED = 4 * 4 + 3 * 8          # the u32 and u64 fields after the checksum
_MAX_ENTRY = 1 << 16            # 4096 instructions of 8 bytes, a path and a header
_MAX_ENTRIES = 256              # eviction threshold (only looked at on a miss)


class SeccompError(ConfigError):
    """linux.seccomp cannot be turned into a filter (one line, names the rule)."""


class Prepared:
    """What plan.py and the notify hand-off need: the program and how to load it."""

    __slots__ = ("program", "flags", "notify", "listener_path", "listener_metadata",
                 "cached", "skipped")

    def __init__(self, program, flags, notify, listener_path=None, listener_metadata=None,
                 cached=False, skipped=()):
        self.program = program              # bytes: struct sock_filter[], host order
        self.flags = flags                  # SECCOMP_FILTER_FLAG_* for seccomp(2)
        self.notify = notify                # the child sends a listener fd
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.cached = cached                # came from the cache (for tests and bench)
        self.skipped = skipped              # names unknown to libseccomp (miss only)

    def __len__(self):
        return len(self.program) // 8


def _hasher():
    try:
        from _blake2 import blake2b  # the C module: hashlib would import ~20 ms of extras
    except ImportError:  # pragma: no cover - Python built without _blake2
        from hashlib import blake2b
    return blake2b


_COMPILER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_compile.py")


def _key(sc, blake2b):
    # repr() of the parsed profile: deterministic for the same config.json (dicts keep
    # the file's order) and far cheaper than a canonical JSON dump; a reordered but
    # equal profile only costs one extra compile
    u = os.uname()
    try:
        st = os.stat(_COMPILER)
        comp = "%d:%d" % (st.st_mtime_ns, st.st_size)
    except OSError:
        comp = "-"
    env = "%s\0%s\0%s\0%s\0%s\0" % (_MAGIC.hex(), u.release, u.version, u.machine, comp)
    h = blake2b(env.encode(), digest_size=20)
    h.update(repr(sc).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def cache_dir(state_root):
    return os.path.join(state_root, ".cache", "seccomp")


def _u32(b, off):
    return int.from_bytes(b[off:off + 4], "little")


def _u64(b, off):
    return int.from_bytes(b[off:off + 8], "little")


def _decode(data, blake2b):
    """The entry's (program, flags, notify, skipped names), or None when it must be
    rebuilt.  The names libseccomp did not know follow the program, newline-separated
    (an entry without them is still valid: nothing was skipped)."""
    if len(data) < len(_MAGIC) + _DIGEST + _FIXED or data[:len(_MAGIC)] != _MAGIC:
        return None
    body = memoryview(data)[len(_MAGIC) + _DIGEST:]
    if blake2b(body, digest_size=_DIGEST).digest() != data[len(_MAGIC):len(_MAGIC) + _DIGEST]:
        return None
    n, flags, notify, plen = _u32(body, 0), _u32(body, 4), _u32(body, 8), _u32(body, 12)
    end = _FIXED + plen + 8 * n
    if len(body) < end or n == 0:
        return None
    if plen:
        # the libseccomp that compiled it must still be the one a miss would load
        path = bytes(body[_FIXED:_FIXED + plen])
        try:
            st = os.stat(path)
        except OSError:
            return None
        if (st.st_ino, st.st_size, st.st_mtime_ns) != (_u64(body, 16), _u64(body, 24),
                                                       _u64(body, 32)):
            return None
    tail = bytes(body[end:])
    skipped = tuple(tail.decode("ascii", "replace").split("\n")) if tail else ()
    return bytes(body[_FIXED + plen:end]), flags, notify, skipped


def _encode(program, flags, notify, lib_path, blake2b, skipped=()):
    path = lib_path.encode() if lib_path else b""
    ino = size = mtime = 0
    if path:
        try:
            st = os.stat(path)
            ino, size, mtime = st.st_ino, st.st_size, st.st_mtime_ns
        except OSError:
            path = b""
    body = b"".join((
        (len(program) // 8).to_bytes(4, "little"), flags.to_bytes(4, "little"),
        int(notify).to_bytes(4, "little"), len(path).to_bytes(4, "little"),
        ino.to_bytes(8, "little"), size.to_bytes(8, "little"), mtime.to_bytes(8, "little"),
        path, program, "\n".join(skipped).encode("ascii", "replace")))
    return _MAGIC + blake2b(body, digest_size=_DIGEST).digest() + body


def _read(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return os.read(fd, _MAX_ENTRY + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _write(directory, name, data):
    """temp file + rename; a cache that cannot be written is not an error"""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        tmp = os.path.join(directory, ".%s.%d.tmp" % (name, os.getpid()))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(directory, name))
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
        return False
    _evict(directory, name)
    return True


def _evict(directory, keep):
    # bounded size: past _MAX_ENTRIES, drop the least recently written half (and any
    # temp file a crashed writer left).  Only on a miss, so never on the fast path.
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    if len(entries) <= _MAX_ENTRIES:
        return
    aged = []
    for name in entries:
        if name == keep:
            continue
        try:
            aged.append((os.stat(os.path.join(directory, name)).st_mtime_ns, name))
        except OSError:
            pass
    aged.sort()
    for _, name in aged[:len(aged) - _MAX_ENTRIES // 2]:
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _wanted(sc):
    if not sc:
        return False
    if not isinstance(sc, dict):
        raise SeccompError("config.json: linux.seccomp: must be an object")
    return bool(sc.get("defaultAction") or sc.get("syscalls"))


def _listener(sc):
    return sc.get("listenerPath"), sc.get("listenerMetadata")


def prepare(sc, state_root):
    """The filter for `linux.seccomp` (raw dict from config.json), from the cache or
    freshly compiled.  Returns None when the profile asks for no filter (runc: neither
    defaultAction nor syscalls).  Raises SeccompError with one line."""
    if not _wanted(sc):
        return None
    blake2b = _hasher()
    key = _key(sc, blake2b)
    directory = cache_dir(state_root)
    path = os.path.join(directory, key)
    data = _read(path)
    if data is not None:
        hit = _decode(data, blake2b)
        if hit is not None:
            # listenerPath and metadata are part of the key, but the entry does not
            # carry them: take them from the profile (it was checked when compiled)
            lp, lm = _listener(sc)
            return Prepared(hit[0], hit[1], bool(hit[2]), lp, lm, cached=True, skipped=hit[3])
    return _compile(sc, directory, key, blake2b)


def _compile(sc, directory, key, blake2b):
    from pyrunc import seccomp_compile

    c = seccomp_compile.compile_profile(sc)
    _write(directory, key, _encode(c.program, c.flags, c.notify, c.lib_path, blake2b, c.skipped))
    lp, lm = _listener(sc)
    return Prepared(c.program, c.flags, c.notify, lp, lm, cached=False, skipped=c.skipped)


def compile_uncached(sc):
    """Compile without touching any cache (bench, tests)."""
    if not _wanted(sc):
        return None
    from pyrunc import seccomp_compile

    c = seccomp_compile.compile_profile(sc)
    lp, lm = _listener(sc)
    return Prepared(c.program, c.flags, c.notify, lp, lm, skipped=c.skipped)


# ---- SCMP_ACT_NOTIFY: hand the listener to the agent ----

SECCOMP_FD_NAME = "seccompFd"


def process_state(prog, state, pid):
    """The runtime-spec "container process state" sent to the agent."""
    from pyrunc import OCI_VERSION

    doc = {"ociVersion": OCI_VERSION, "fds": [SECCOMP_FD_NAME], "pid": pid}
    if prog.listener_metadata:
        doc["metadata"] = prog.listener_metadata
    doc["state"] = state
    return doc


def send_to_listener(notify_fd, prog, state, pid):
    """Send the container process state and the listener fd to listenerPath: one
    AF_UNIX stream connection, one sendmsg carrying the JSON and SCM_RIGHTS, then close
    (the spec: exactly one state per connection, fds only in the first sendmsg)."""
    # _socket, not socket: socket.py imports enum, selectors and more for nothing here
    import _socket

    from pyrunc import jsonfast

    path = prog.listener_path
    if not path:
        raise SeccompError("config.json: linux.seccomp.listenerPath: required by SCMP_ACT_NOTIFY")
    payload = jsonfast.dumps(process_state(prog, state, pid)).encode()
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            s.settimeout(10.0)
            s.connect(path)
        except OSError as err:
            # runc's words ("failed to connect with seccomp agent"): callers grep for them
            raise SeccompError("failed to connect with seccomp agent `%s`: %s"
                               % (path, _why(err))) from None
        rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, notify_fd.to_bytes(4, sys.byteorder))]
        try:
            sent = s.sendmsg([payload], rights)
            view = memoryview(payload)[sent:]
            while view:
                view = view[s.send(view):]
        except OSError as err:
            raise SeccompError("send seccomp listener to `%s`: %s" % (path, _why(err))) from None
    finally:
        s.close()


def _why(err):
    if isinstance(err, TimeoutError) and not err.strerror:
        return "timed out"
    return (err.strerror or str(err)).lower()


def features():
    """The `linux.seccomp` object of `pyrunc features` (imports libseccomp)."""
    from pyrunc import seccomp_compile

    return seccomp_compile.features()
