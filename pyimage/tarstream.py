"""A streaming tar reader over chunks of bytes, written for speed.

`tarfile` costs tens of microseconds per member (TarInfo objects, many attribute
lookups, seek emulation in stream mode); an image has tens of thousands of small
members, so this module parses the 512-byte headers itself and hands out file data as
memoryview slices of the decompressed chunks (no copy until os.write).

Formats: POSIX ustar (prefix field), PAX extended ('x') and global ('g') headers,
GNU long names ('L' / 'K') and base-256 numbers.  GNU sparse files are refused.
"""
from .errors import LayerError, show

REGTYPE = 48      # '0'
AREGTYPE = 0      # '\0'
LNKTYPE = 49      # '1'
SYMTYPE = 50      # '2'
CHRTYPE = 51      # '3'
BLKTYPE = 52      # '4'
DIRTYPE = 53      # '5'
FIFOTYPE = 54     # '6'
CONTTYPE = 55     # '7'
GNU_LONGNAME = 76   # 'L'
GNU_LONGLINK = 75   # 'K'
GNU_SPARSE = 83     # 'S'
PAX_X = 120         # 'x'
PAX_G = 103         # 'g'
PAX_XG = 88         # 'X' (old solaris pax)

_ZERO_BLOCK = bytes(512)
# keys of a global ('g') PAX header that apply to the members after it.  Only these
# are kept, and a few xattrs at most: the global record set is applied to every
# member, so an unbounded one would make a layer quadratic (records x members)
GLOBAL_KEYS = ("uid", "gid", "mtime", "atime", "uname", "gname")
GLOBAL_XATTRS_MAX = 32
PATH_MAX = 4096
ID_LIMIT = 1 << 32                      # uid, gid, device major/minor: 32 bits
TIME_LIMIT = (1 << 40) * 1000000000     # ns: some 35000 years either side of 1970


class Entry:
    """one member; `size` bytes of data follow (read them with ChunkReader)"""
    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime_ns", "atime_ns",
                 "linkname", "devmajor", "devminor", "xattrs")


def _num(field, what):
    """a numeric header field: octal text, or base-256 when the top bit is set"""
    if field[0] & 0x80:
        n = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            n -= 1 << (8 * (len(field) - 1))
        return n
    s = field.split(b"\0", 1)[0]
    try:
        return int(s, 8)          # int() itself skips the spaces tar writers pad with
    except ValueError:
        if not s.strip():
            return 0
        raise LayerError("read tar header: invalid %s field %s" % (what, show(repr(bytes(field))))) from None


def _pax_time(v):
    """'1234.5678' -> ns, exactly"""
    neg = v.startswith("-")
    if neg:
        v = v[1:]
    sec, _, frac = v.partition(".")
    if len(sec) > 12:
        raise ValueError(v)         # beyond any time_t a filesystem keeps
    ns = int(sec or "0") * 1000000000 + int((frac + "000000000")[:9] or "0")
    return -ns if neg else ns


def _pax_int(v):
    """a PAX decimal field (size, uid, gid): ASCII digits, at most 20 of them"""
    if not 0 < len(v) <= 20 or not bytes(v).isdigit():
        raise ValueError(v)
    return int(v)


def _global(records):
    return {k: v for k, v in records.items() if k in GLOBAL_KEYS or k.startswith(("SCHILY.xattr.", "GNU.sparse."))}


def parse_pax(data):
    """PAX records 'LEN key=value\\n' -> {key: bytes value}"""
    out = {}
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise LayerError("read tar pax header: malformed record")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise LayerError("read tar pax header: malformed record length") from None
        if length <= 0 or pos + length > n:
            raise LayerError("read tar pax header: record length out of range")
        rec = data[sp + 1:pos + length - 1]
        key, eq, val = bytes(rec).partition(b"=")
        if not eq:
            raise LayerError("read tar pax header: record without '='")
        out[key.decode("utf-8", "surrogateescape")] = val
        pos += length
    return out


class ChunkReader:
    """Reads from an iterator of bytes chunks (None or end of iteration = EOF)."""

    __slots__ = ("_next", "buf", "pos", "eof")

    def __init__(self, next_chunk):
        self._next = next_chunk
        self.buf = b""
        self.pos = 0
        self.eof = False

    def _fill(self, need):
        """make at least `need` bytes available from pos (or hit EOF)"""
        parts = [self.buf[self.pos:]]
        have = len(parts[0])
        while have < need:
            c = self._next()
            if c is None:
                self.eof = True
                break
            parts.append(c)
            have += len(c)
        self.buf = b"".join(parts) if len(parts) > 1 else parts[0]
        self.pos = 0
        return have >= need

    def read(self, n):
        if len(self.buf) - self.pos < n and not self._fill(n):
            raise LayerError("read tar stream: unexpected end of archive")
        p = self.pos
        self.pos = p + n
        return self.buf[p:p + n]

    def chunks(self, n):
        """yield memoryviews covering the next n bytes"""
        while n > 0:
            avail = len(self.buf) - self.pos
            if avail == 0:
                c = self._next()
                if c is None:
                    self.eof = True
                    raise LayerError("read tar stream: unexpected end of archive (file data truncated)")
                self.buf, self.pos, avail = c, 0, len(c)
            k = avail if avail < n else n
            p = self.pos
            yield memoryview(self.buf)[p:p + k]
            self.pos = p + k
            n -= k

    def skip(self, n):
        for _ in self.chunks(n):
            pass

    def drain(self):
        """consume the rest (trailing zero blocks) so the producer finishes"""
        self.buf, self.pos = b"", 0
        while not self.eof:
            if self._next() is None:
                self.eof = True


def entries(rd):
    """Generator of Entry objects; the caller consumes exactly entry.size data bytes
    from `rd` (via rd.chunks / rd.skip) before asking for the next one."""
    longname = longlink = None
    pax = None
    gpax = {}
    read = rd.read
    while True:
        h = read(512)
        if h == _ZERO_BLOCK:
            return
        chk = _num(h[148:156], "chksum")
        if chk != sum(h) - sum(h[148:156]) + 256:
            raise LayerError("read tar header: checksum mismatch (corrupt archive)")
        t = h[156]
        size = _num(h[124:136], "size")
        if t in (PAX_X, PAX_XG, PAX_G, GNU_LONGNAME, GNU_LONGLINK):
            if size > (64 << 20):
                raise LayerError("read tar header: extended header of %d bytes" % size)
            data = read(size)
            if size % 512:
                read(512 - size % 512)
            if t == GNU_LONGNAME:
                longname = data.split(b"\0", 1)[0]
            elif t == GNU_LONGLINK:
                longlink = data.split(b"\0", 1)[0]
            elif t == PAX_G:
                gpax.update(_global(parse_pax(data)))
                if sum(1 for k in gpax if k.startswith("SCHILY.xattr.")) > GLOBAL_XATTRS_MAX:
                    raise LayerError("read tar pax header: global header with more than %d xattrs"
                                     % GLOBAL_XATTRS_MAX)
            else:
                pax = parse_pax(data)
                if gpax:
                    pax = dict(gpax, **pax)
            continue
        if t == GNU_SPARSE:
            raise LayerError("read tar entry: gnu sparse files are not supported")
        e = Entry()
        if longname is not None:
            name = longname
        else:
            name = h[0:100].split(b"\0", 1)[0]
            if h[257:263] == b"ustar\0" and h[345] != 0:
                name = h[345:500].split(b"\0", 1)[0] + b"/" + name
        e.type = t
        e.mode = _num(h[100:108], "mode") & 0o7777
        e.uid = _num(h[108:116], "uid")
        e.gid = _num(h[116:124], "gid")
        mt = _num(h[136:148], "mtime")
        e.mtime_ns = mt * 1000000000
        e.atime_ns = None
        e.xattrs = None
        if longlink is not None:
            e.linkname = longlink.decode("utf-8", "surrogateescape")
        elif t == LNKTYPE or t == SYMTYPE:
            e.linkname = h[157:257].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        else:
            e.linkname = ""
        if t == CHRTYPE or t == BLKTYPE:
            e.devmajor = _num(h[329:337], "devmajor")
            e.devminor = _num(h[337:345], "devminor")
        else:
            e.devmajor = e.devminor = 0
        p = pax if pax is not None else (gpax or None)
        if p:
            try:
                for k, v in p.items():
                    if k == "path":
                        name = v
                    elif k == "linkpath":
                        e.linkname = v.decode("utf-8", "surrogateescape")
                    elif k == "size":
                        size = _pax_int(v)
                    elif k == "uid":
                        e.uid = _pax_int(v)
                    elif k == "gid":
                        e.gid = _pax_int(v)
                    elif k == "mtime":
                        e.mtime_ns = _pax_time(v.decode())
                    elif k == "atime":
                        e.atime_ns = _pax_time(v.decode())
                    elif k.startswith("SCHILY.xattr."):
                        if e.xattrs is None:
                            e.xattrs = {}
                        if "\0" in k or not k[13:]:
                            raise LayerError("read tar entry %s: invalid xattr name %s"
                                             % (show(name.decode("utf-8", "surrogateescape")), show(repr(k[13:]))))
                        e.xattrs[k[13:]] = bytes(v)
                    elif k.startswith("GNU.sparse."):
                        raise LayerError("read tar entry: gnu sparse files are not supported")
            except (ValueError, UnicodeDecodeError):
                raise LayerError("read tar entry %s: invalid pax record %s=%s"
                                 % (show(name.decode("utf-8", "surrogateescape")), show(k),
                                    show(repr(bytes(v)[:40])))) from None
        e.name = name.decode("utf-8", "surrogateescape")
        if len(e.name) > PATH_MAX or len(e.linkname) > PATH_MAX:
            # no path the kernel takes is longer; a deeper one only costs (a name of
            # a million components is a million nested directories to walk and remove)
            raise LayerError("read tar entry %s: %s longer than %d bytes (PATH_MAX)"
                             % (show(e.name), "name" if len(e.name) > PATH_MAX else "link target", PATH_MAX))
        if "\0" in e.name or "\0" in e.linkname:
            # a PAX path or linkpath may hold any byte; no file name can hold NUL
            raise LayerError("read tar entry %s: %s contains a NUL byte"
                             % (show(e.name), "name" if "\0" in e.name else "link target"))
        if t == DIRTYPE or t == SYMTYPE or t == LNKTYPE or t == CHRTYPE or t == BLKTYPE or t == FIFOTYPE:
            # these carry no data, whatever the size field says (as tarfile reads them)
            size = 0
        e.size = size
        if size < 0 or not 0 <= e.uid < ID_LIMIT or not 0 <= e.gid < ID_LIMIT or \
                not 0 <= e.devmajor < ID_LIMIT or not 0 <= e.devminor < ID_LIMIT or \
                not -TIME_LIMIT < e.mtime_ns < TIME_LIMIT:
            raise LayerError("read tar entry %s: size, owner, device number or time out of range" % show(e.name))
        longname = longlink = pax = None
        yield e
        # the consumer read the data; skip the padding up to the next block
        pad = -size % 512
        if pad:
            rd.read(pad)
