"""A minimal D-Bus client: just enough to ask systemd for a transient scope.

Only --systemd-cgroup imports this (socket and struct stay off the hot path).
Wire format (D-Bus specification, "Message Protocol"): little-endian; every value is
aligned to its own size, measured from the start of the message, and a struct or dict
entry to 8; an array's u32 length counts its elements' bytes but not the padding that
aligns the first element.  Signatures are written as type strings; values are Python
objects: a variant is a (signature, value) pair, a struct a tuple.
"""
import os
import socket
import struct

_ALIGN = {"y": 1, "b": 4, "u": 4, "i": 4, "t": 8, "x": 8, "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "v": 1,
          "{": 8, "h": 4, "n": 2, "q": 2, "d": 8}
_FIXED = {"y": "B", "b": "I", "u": "I", "i": "i", "t": "Q", "x": "q", "h": "I", "n": "h", "q": "H", "d": "d"}


class DBusError(Exception):
    def __init__(self, name, message):
        super().__init__("%s: %s" % (name, message) if message else name)
        self.name = name


def _one(sig, i):
    """the end index of the single complete type starting at sig[i]"""
    c = sig[i]
    if c == "a":
        return _one(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while sig[j] != close:
            j = _one(sig, j)
        return j + 1
    return i + 1


def _split(sig):
    out, i = [], 0
    while i < len(sig):
        j = _one(sig, i)
        out.append(sig[i:j])
        i = j
    return out


class _W:
    def __init__(self):
        self.b = bytearray()

    def pad(self, n):
        self.b.extend(b"\0" * (-len(self.b) % n))

    def put(self, sig, v):
        c = sig[0]
        self.pad(_ALIGN[c])
        if c in _FIXED:
            self.b.extend(struct.pack("<" + _FIXED[c], int(v) if c == "b" else v))
        elif c in "so":
            e = v.encode()
            self.b.extend(struct.pack("<I", len(e)) + e + b"\0")
        elif c == "g":
            e = v.encode()
            self.b.extend(bytes([len(e)]) + e + b"\0")
        elif c == "v":
            self.put("g", v[0])
            self.put(v[0], v[1])
        elif c in "({":
            for s, x in zip(_split(sig[1:-1]), v):
                self.put(s, x)
        elif c == "a":
            at = len(self.b)
            self.b.extend(b"\0\0\0\0")
            self.pad(_ALIGN[sig[1]])
            start = len(self.b)
            for x in v:
                self.put(sig[1:], x)
            struct.pack_into("<I", self.b, at, len(self.b) - start)
        else:
            raise ValueError("dbus: cannot marshal type %r" % c)


class _R:
    def __init__(self, buf, pos=0):
        self.b = buf
        self.p = pos

    def get(self, sig):
        c = sig[0]
        self.p += -self.p % _ALIGN[c]
        if c in _FIXED:
            f = "<" + _FIXED[c]
            v = struct.unpack_from(f, self.b, self.p)[0]
            self.p += struct.calcsize(f)
            return bool(v) if c == "b" else v
        if c in "so":
            n = struct.unpack_from("<I", self.b, self.p)[0]
            v = bytes(self.b[self.p + 4:self.p + 4 + n]).decode()
            self.p += 5 + n
            return v
        if c == "g":
            n = self.b[self.p]
            v = bytes(self.b[self.p + 1:self.p + 1 + n]).decode()
            self.p += 2 + n
            return v
        if c == "v":
            s = self.get("g")
            return (s, self.get(s))
        if c in "({":
            return tuple(self.get(s) for s in _split(sig[1:-1]))
        if c == "a":
            n = struct.unpack_from("<I", self.b, self.p)[0]
            self.p += 4
            self.p += -self.p % _ALIGN[sig[1]]
            end = self.p + n
            out = []
            while self.p < end:
                out.append(self.get(sig[1:]))
            return out
        raise ValueError("dbus: cannot unmarshal type %r" % c)


METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4


def message(mtype, serial, fields, sig="", args=()):
    """one message: fields {code: (signature, value)}"""
    body = _W()
    for s, a in zip(_split(sig), args):
        body.put(s, a)
    if sig:
        fields = dict(fields)
        fields[8] = ("g", sig)
    h = _W()
    h.put("y", ord("l"))
    h.put("y", mtype)
    h.put("y", 0)
    h.put("y", 1)
    h.put("u", len(body.b))
    h.put("u", serial)
    h.put("a(yv)", sorted(fields.items()))
    h.pad(8)
    return bytes(h.b) + bytes(body.b)


class Message:
    __slots__ = ("type", "serial", "fields", "body")

    def __init__(self, mtype, serial, fields, body):
        self.type, self.serial, self.fields, self.body = mtype, serial, fields, body

    @property
    def member(self):
        return self.fields.get(3)

    @property
    def reply_serial(self):
        return self.fields.get(5)


def parse(buf):
    """(Message, bytes used) or (None, 0) when buf holds no complete message"""
    if len(buf) < 16:
        return None, 0
    if buf[0:1] != b"l":
        raise DBusError("dbus.BigEndian", "big-endian messages are not supported")
    blen, serial, flen = struct.unpack_from("<III", buf, 4)
    hend = 16 + flen
    total = hend + (-hend % 8) + blen
    if len(buf) < total:
        return None, 0
    r = _R(buf, 12)
    fields = {code: val for code, (_, val) in r.get("a(yv)")}
    r.p = hend + (-hend % 8)
    sig = fields.get(8, "")
    body = [r.get(s) for s in _split(sig)] if sig else []
    return Message(buf[1], serial, fields, body), total


class Connection:
    """A peer-to-peer connection to systemd over its private socket (root only; no
    bus daemon, so no Hello and no destination).  The system bus is not spoken: it
    was never tested against a real daemon."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.serial = 0
        try:
            self.sock.connect(path)
            self._auth()
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def _auth(self):
        # SASL EXTERNAL: the server checks the uid we name against SO_PEERCRED
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self._line()
        if not line.startswith(b"OK "):
            raise DBusError("dbus.AuthFailed", "authentication refused: %r" % line.decode(errors="replace"))
        # systemd 252's server reads the authentication lines with one recvmsg of up to
        # 256 bytes: a message that arrives with BEGIN lands in that buffer and is not
        # parsed until more bytes arrive (seen: no reply for 15 s, whenever systemd was
        # busy while we sent).  So a Ping follows BEGIN, and another one each 50 ms
        # until one is answered: every send wakes systemd up to parse what it holds.
        import time

        def ping():
            self.serial += 1
            return message(METHOD_CALL, self.serial, {1: ("o", "/org/freedesktop/systemd1"),
                                                      2: ("s", "org.freedesktop.DBus.Peer"), 3: ("s", "Ping")})

        self.sock.sendall(b"BEGIN\r\n" + ping())
        timeout = self.sock.gettimeout()
        deadline = time.monotonic() + (timeout or 10.0)
        self.sock.settimeout(0.05)
        try:
            while True:
                try:
                    m = self.recv()
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise
                    self.sock.sendall(ping())
                    continue
                if m.type in (METHOD_RETURN, ERROR):
                    break  # systemd is parsing our messages now (later Ping replies are ignored)
        finally:
            self.sock.settimeout(timeout)

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise DBusError("dbus.Disconnected", "the peer closed the connection during authentication")
            self.buf.extend(d)
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line

    def send(self, path, iface, member, sig="", args=()):
        self.serial += 1
        fields = {1: ("o", path), 2: ("s", iface), 3: ("s", member)}
        self.sock.sendall(message(METHOD_CALL, self.serial, fields, sig, args))
        return self.serial

    def recv(self):
        while True:
            m, n = parse(self.buf)
            if m is not None:
                del self.buf[:n]
                return m
            d = self.sock.recv(65536)
            if not d:
                raise DBusError("dbus.Disconnected", "systemd closed the connection")
            self.buf.extend(d)

    def call(self, path, iface, member, sig="", args=(), signals=None):
        """the reply's body; signals that arrive meanwhile go to `signals` (a list)"""
        serial = self.send(path, iface, member, sig, args)
        while True:
            m = self.recv()
            if m.type == SIGNAL:
                if signals is not None:
                    signals.append(m)
            elif m.reply_serial == serial:
                if m.type == ERROR:
                    raise DBusError(m.fields.get(4, "?"), m.body[0] if m.body and isinstance(m.body[0], str) else "")
                return m.body
