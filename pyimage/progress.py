"""Per-layer progress on a terminal: one line per blob with size, percentage and speed,
redrawn at most ten times a second.  Silent when stderr is not a TTY or with -q."""
import sys
import threading
import time


def human(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1000.0
    return "%d" % n


class Quiet:
    enabled = False

    def add(self, key, label, total, state="waiting"):
        pass

    def update(self, key, n):
        pass

    def state(self, key, state):
        pass

    def message(self, text):
        pass

    def close(self):
        pass


class Progress(Quiet):
    enabled = True

    def __init__(self, stream=None):
        self.out = stream or sys.stderr
        self.rows = {}      # key -> [label, total, done, state, t0]
        self.order = []
        self.drawn = 0
        self.last = 0.0
        self.lock = threading.Lock()

    def add(self, key, label, total, state="waiting"):
        with self.lock:
            self.rows[key] = [label, total, 0, state, None, ""]
            self.order.append(key)
            # not forced: a redraw writes every row, so forcing one per row (or per
            # state change) would make an image of thousands of layers quadratic
            self._draw()

    def update(self, key, n):
        with self.lock:
            r = self.rows[key]
            if r[4] is None:
                r[4] = time.monotonic()
                r[3] = "downloading"
            r[2] += n
            self._draw()

    def state(self, key, state):
        with self.lock:
            r = self.rows[key]
            if r[3] == "downloading" and r[4] is not None:
                # keep the average speed of a finished download on its line
                r[5] = " (%s/s)" % human(r[2] / max(time.monotonic() - r[4], 1e-3))
            r[3] = state
            self._draw()

    def message(self, text):
        with self.lock:
            self.out.write(text + "\n")
            self.drawn = 0

    def _line(self, r):
        label, total, done, state, t0, speed = r
        if state == "downloading" and total:
            el = max(time.monotonic() - t0, 1e-3)
            return "%s: %s / %s (%3d%%) %s/s" % (label, human(done), human(total), done * 100 // total,
                                                  human(done / el))
        return "%s: %s %s%s" % (label, state, human(total) if total else "", speed)

    def _draw(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        buf = []
        if self.drawn:
            buf.append("\x1b[%dA" % self.drawn)
        for k in self.order:
            buf.append("\x1b[2K" + self._line(self.rows[k]) + "\n")
        self.out.write("".join(buf))
        self.out.flush()
        self.drawn = len(self.order)

    def close(self):
        with self.lock:
            self._draw(force=True)


def make(quiet):
    if quiet or not sys.stderr.isatty():
        return Quiet()
    return Progress()
