"""Streaming decoders for layer blobs: gzip (possibly multi-member), zstd (possibly
multi-frame) and uncompressed tar.  feed() returns decompressed bytes; close() raises
when the stream ended inside a member/frame (a truncated or corrupt blob)."""
import zlib

from .errors import LayerError

OUT_LIMIT = 4 << 20     # bound the output of one call (a highly compressible input)


class Identity:
    def __init__(self, what):
        self.what = what

    def feed(self, data):
        yield data

    def close(self):
        return


class Gzip:
    def __init__(self, what):
        self.what = what
        self.d = zlib.decompressobj(31)
        self.started = False

    def feed(self, data):
        d = self.d
        try:
            while data:
                out = d.decompress(data, OUT_LIMIT)
                self.started = True
                if out:
                    yield out
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
    def __init__(self, what):
        import zstandard
        self.what = what
        self.zstd = zstandard
        self.dctx = zstandard.ZstdDecompressor()
        self.d = self.dctx.decompressobj()
        self.any = False

    def feed(self, data):
        try:
            while data:
                out = self.d.decompress(data)
                self.any = True
                if out:
                    yield out
                if self.d.eof:
                    data = self.d.unused_data
                    if data:
                        self.d = self.dctx.decompressobj()
                else:
                    data = b""
        except self.zstd.ZstdError as e:
            raise LayerError("decompress %s: corrupt zstd stream (%s)" % (self.what, e)) from None

    def close(self):
        if not self.d.eof:
            raise LayerError("decompress %s: zstd stream ends early (truncated blob)" % self.what)


def decoder(kind, what):
    if kind == "gzip":
        return Gzip(what)
    if kind == "zstd":
        return Zstd(what)
    return Identity(what)
