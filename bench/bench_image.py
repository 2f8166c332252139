"""make bench-image: cold pull + bundle with pyimage against skopeo copy + umoci unpack.

A realistic image (bench/image_build.py: ~227 MB, ~30,000 entries, 5 gzip layers with
whiteouts, an opaque directory, hard links, long names) is pushed to a throw-away
docker-registry on 127.0.0.1.  Each run gets a *fresh* filesystem (a new loop-mounted
ext4 by default, --fs tmpfs for a tmpfs; ext4 on this machine slows down after mass
deletions, so a reused one would favour whoever runs first), and the two sides
alternate which goes first:

  skopeo+umoci:  skopeo copy docker://REG/bench/image:latest oci:FS/oci:bench
                 umoci unpack --image FS/oci:bench FS/bundle
  pyimage:       pyimage --store FS/store bundle REG/bench/image:latest FS/bundle

Then the shared mode: a cold `pyimage bundle --shared`, and second bundles of the now
cached image (what a second container of the same image costs).  Before timing, one
run checks that both rootfs trees are identical (paths, types, modes, owners, link
targets, content hashes).  Results are printed and, with --json FILE, written out.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from bench.image_build import build  # noqa: E402
from tests.image.build_image import push_image  # noqa: E402
from tests.image.registry import Registry  # noqa: E402
from tests.image.treecmp import describe, diff  # noqa: E402

PYIMAGE = os.path.join(TOP, ".venv", "bin", "pyimage")
REPO = "bench/image:latest"


class FreshFS:
    """a new filesystem mounted at `mnt` for one run"""

    def __init__(self, kind, workdir, size_mb=3072):
        self.kind = kind
        self.mnt = os.path.join(workdir, "mnt")
        self.img = os.path.join(workdir, "fs.img")
        self.size_mb = size_mb

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        if self.kind == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % self.size_mb, "tmpfs", self.mnt], check=True)
        else:
            with open(self.img, "wb") as f:
                f.truncate(self.size_mb << 20)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", self.img],
                           check=True)
            subprocess.run(["mount", "-o", "loop", self.img, self.mnt], check=True)
        return self.mnt

    def __exit__(self, *exc):
        subprocess.run(["umount", "-R", self.mnt], check=False)
        if os.path.exists(self.img):
            os.unlink(self.img)


def run_skopeo_umoci(addr, fs):
    t0 = time.monotonic()
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://%s/%s" % (addr, REPO),
                    "oci:%s/oci:bench" % fs], check=True)
    subprocess.run(["umoci", "unpack", "--image", "%s/oci:bench" % fs, "%s/bundle" % fs], check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def run_pyimage(addr, fs, shared=False, bundle="bundle"):
    cmd = [PYIMAGE, "-q", "--store", "%s/store" % fs, "bundle", "%s/%s" % (addr, REPO), "%s/%s" % (fs, bundle)]
    if shared:
        cmd.insert(-2, "--shared")
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fs", choices=("ext4", "tmpfs"), default="ext4")
    ap.add_argument("--second", type=int, default=10, help="second shared bundles to time")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    for tool in ("skopeo", "umoci", "mkfs.ext4"):
        if not shutil.which(tool):
            sys.exit("bench-image: %s not found" % tool)
    work = tempfile.mkdtemp(prefix="pyimage-bench-")
    reg = Registry(os.path.join(work, "registry"))
    try:
        t0 = time.monotonic()
        layout = os.path.join(work, "layout")
        desc, size, entries = build(layout)
        layers = len(json.load(open(os.path.join(layout, "blobs", "sha256", desc["digest"][7:])))["layers"])
        reg.start()
        push_image(layout, "bench", "%s/%s" % (reg.address, REPO))
        shutil.rmtree(layout)
        print("image: %d layers, ~%.0f MB of file data, ~%d entries (built and pushed in %.1f s); fs: fresh %s per run"
              % (layers, size / 1e6, entries, time.monotonic() - t0, a.fs))
        fsdir = os.path.join(work, "fs")
        os.makedirs(fsdir)
        if not a.no_verify:
            with FreshFS(a.fs, fsdir) as fs:
                run_skopeo_umoci(reg.address, fs)
                run_pyimage(reg.address, fs, bundle="bundle2")
                d = diff(describe(fs + "/bundle/rootfs"), describe(fs + "/bundle2/rootfs"))
                if d:
                    print("rootfs differs from umoci's:\n  " + "\n  ".join(d))
                    sys.exit(1)
                print("check: pyimage's rootfs equals umoci's (paths, types, modes, owners, links, content)")
        times = {"skopeo+umoci": [], "pyimage": []}
        for i in range(a.runs):
            order = ["skopeo+umoci", "pyimage"] if i % 2 == 0 else ["pyimage", "skopeo+umoci"]
            for side in order:
                subprocess.run(["sync"])
                with FreshFS(a.fs, fsdir) as fs:
                    t = run_skopeo_umoci(reg.address, fs) if side == "skopeo+umoci" else run_pyimage(reg.address, fs)
                times[side].append(t)
                print("run %d %-13s %6.2f s" % (i + 1, side, t), flush=True)
        with FreshFS(a.fs, fsdir) as fs:
            cold_shared = run_pyimage(reg.address, fs, shared=True, bundle="s0")
            second = [run_pyimage(reg.address, fs, shared=True, bundle="s%d" % (k + 1)) for k in range(a.second)]
            for k in range(a.second + 1):
                subprocess.run([PYIMAGE, "unbundle", "%s/s%d" % (fs, k)], check=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["pyimage"] / med["skopeo+umoci"]
        print()
        print("median skopeo+umoci  %6.2f s  (%s)" % (med["skopeo+umoci"], ", ".join("%.2f" % t for t in times["skopeo+umoci"])))
        print("median pyimage       %6.2f s  (%s)" % (med["pyimage"], ", ".join("%.2f" % t for t in times["pyimage"])))
        print("ratio pyimage / (skopeo+umoci) = %.2f  (target <= 0.6)" % ratio)
        print("shared mode: cold bundle %.2f s; second bundle median %.3f s (min %.3f, max %.3f; target <= 0.1)"
              % (cold_shared, statistics.median(second), min(second), max(second)))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"fs": a.fs, "runs": times, "median": med, "ratio": ratio,
                           "shared_cold": cold_shared, "shared_second": second,
                           "image": {"layers": layers, "bytes": size, "entries": entries}}, f, indent=1)
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
