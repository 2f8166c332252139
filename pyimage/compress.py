"""Streaming decoders for layer blobs: gzip (possibly multi-member), zstd (possibly
multi-frame) and uncompressed tar.  feed(data, emit) calls emit(chunk) for every piece
of decompressed output, each at most OUT_LIMIT bytes, so memory stays bounded whatever
the compression ratio (zeros inflate 1000:1 with gzip, 32000:1 with zstd's RLE
blocks) and the caller can stop a bomb by raising from emit.  close() raises when the
stream ended inside a member/frame (a truncated or corrupt blob)."""
import zlib

from .errors import LayerError

OUT_LIMIT = 1 << 20     # bound the output of one call (a highly compressible input);
                        # 256 KiB of an ordinary layer inflates to about that
ZSTD_OUT = 1 << 20


class Identity:
    def __init__(self, what):
        self.what = what

    def feed(self, data, emit):
        emit(data)

    def close(self):
        return


class Gzip:
    def __init__(self, what):
        self.what = what
        self.d = zlib.decompressobj(31)
        self.started = False

    def feed(self, data, emit):
        d = self.d
        try:
            while data:
                out = d.decompress(data, OUT_LIMIT)
                self.started = True
                if out:
                    emit(out)
                if d.eof:
                    data = d.unused_data
                    # another gzip member may follow (pigz, concatenated files);
                    # trailing zero padding is tolerated like gzip(1) does
                    if data and data.strip(b"\0"):
                        d = self.d = zlib.decompressobj(31)
                    else:
                        data = b""
                else:
                    data = d.unconsumed_tail
        except zlib.error as e:
            raise LayerError("decompress %s: corrupt gzip stream (%s)" % (self.what, e)) from None

    def close(self):
        if not self.d.eof:
            raise LayerError("decompress %s: gzip stream ends early (truncated blob)" % self.what)


class Zstd:
    """zstandard's decompressobj returns a whole input's output at once (a 256 KiB read
    of RLE blocks is 8 GiB); its stream_writer hands the output to a writer in
    ZSTD_OUT pieces, but does not say whether the stream ended inside a frame, so
    _Frames follows the frame and block headers (skipping block bodies) for that."""

    def __init__(self, what):
        import zstandard
        self.what = what
        self.zstd = zstandard
        self.sink = _Sink()
        self.w = zstandard.ZstdDecompressor().stream_writer(self.sink, write_size=ZSTD_OUT,
                                                            write_return_read=True, closefd=False)
        self.frames = _Frames(what)

    def feed(self, data, emit):
        self.frames.feed(data)
        self.sink.emit = emit
        try:
            self.w.write(data)
        except self.zstd.ZstdError as e:
            raise LayerError("decompress %s: corrupt zstd stream (%s)" % (self.what, e)) from None

    def close(self):
        if not self.frames.complete():
            raise LayerError("decompress %s: zstd stream ends early (truncated blob)" % self.what)


class _Sink:
    emit = None

    def write(self, data):
        self.emit(bytes(data))
        return len(data)


ZSTD_MAGIC = 0xFD2FB528


class _Frames:
    """zstd frame boundaries (RFC 8878 3.1): frame header, then blocks of
    3-byte headers (last-block flag, type, size; an RLE block has a 1-byte body),
    then an optional 4-byte checksum; skippable frames are a magic and a length"""

    def __init__(self, what):
        self.what = what
        self.buf = b""
        self.need = 4
        self.state = "magic"
        self.skip = 0
        self.checksum = 0

    def complete(self):
        return self.state == "magic" and not self.buf and not self.skip

    def feed(self, data):
        pos, n = 0, len(data)
        while pos < n:
            if self.skip:
                k = min(self.skip, n - pos)
                self.skip -= k
                pos += k
                continue
            k = min(self.need - len(self.buf), n - pos)
            self.buf += data[pos:pos + k]
            pos += k
            if len(self.buf) < self.need:
                return
            h, self.buf = self.buf, b""
            self._header(h)

    def _header(self, h):
        st = self.state
        if st == "magic":
            m = int.from_bytes(h, "little")
            if m == ZSTD_MAGIC:
                self.state, self.need = "fhd", 1
            elif m & 0xFFFFFFF0 == 0x184D2A50:
                self.state, self.need = "skiplen", 4
            else:
                raise LayerError("decompress %s: corrupt zstd stream (not a zstd frame)" % self.what)
        elif st == "skiplen":
            self.skip = int.from_bytes(h, "little")
            self.state, self.need = "magic", 4
        elif st == "fhd":
            d = h[0]
            single = d & 0x20
            self.checksum = 4 if d & 0x04 else 0
            fcs = (0, 2, 4, 8)[d >> 6] or (1 if single else 0)
            rest = (0 if single else 1) + (0, 1, 2, 4)[d & 3] + fcs
            if rest:
                self.state, self.need = "fhrest", rest
            else:
                self.state, self.need = "block", 3
        elif st == "fhrest":
            self.state, self.need = "block", 3
        elif st == "block":
            b = int.from_bytes(h, "little")
            kind, size = (b >> 1) & 3, b >> 3
            if kind == 3:
                raise LayerError("decompress %s: corrupt zstd stream (reserved block type)" % self.what)
            self.skip = 1 if kind == 1 else size
            if b & 1:
                if self.checksum:
                    self.state, self.need = "checksum", self.checksum
                else:
                    self.state, self.need = "magic", 4
        elif st == "checksum":
            self.state, self.need = "magic", 4


def decoder(kind, what):
    if kind == "gzip":
        return Gzip(what)
    if kind == "zstd":
        return Zstd(what)
    return Identity(what)
