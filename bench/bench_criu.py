"""checkpoint / restore / delete of a counter container, pyrunc against runc, alternating.

Needs a kernel criu works on: `make bench-criu` runs it in the VM (tests/vm/run-vm).
Prints, per runtime and step, the wall time of each round and its median, and how much
of it was spent outside criu's main request (wall minus the last timestamp of criu's
own log: the runtime's part, plus criu's start-up and version query).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
from tests.conftest import make_rootfs  # noqa: E402

PYRUNC = os.path.join(HERE, ".venv", "bin", "pyrunc")
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"


def criu_elapsed(log):
    last = 0.0
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("(") and ")" in line:
                try:
                    last = float(line[1:line.index(")")])
                except ValueError:
                    pass
    return last


def main(rounds):
    base = tempfile.mkdtemp(prefix="bench-criu-")
    os.chdir(base)  # runc and criu leave logs in the working directory
    rootfs = os.path.join(base, "rootfs0")
    make_rootfs(rootfs)
    # criu builds its kernel-feature cache (/run/criu.kdat) on its first run: not ours to time
    subprocess.run(["criu", "check"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res = {}
    runtimes = [("pyrunc", PYRUNC), ("runc", shutil.which("runc"))]
    for rnd in range(rounds):
        for name, exe in (runtimes if rnd % 2 else runtimes[::-1]):
            b = os.path.join(base, "%s%d" % (name, rnd))
            shutil.copytree(rootfs, b + "/rootfs", symlinks=True)
            subprocess.run([PYRUNC, "spec", "--bundle", b], check=True)
            with open(b + "/config.json") as f:
                c = json.load(f)
            c["process"].update(terminal=False, args=["sh", "-c", COUNTER])
            c["root"]["readonly"] = False
            with open(b + "/config.json", "w") as f:
                json.dump(c, f)
            root, cid, img, work = base + "/state-" + name, "c%d" % rnd, b + "/img", b + "/work"

            def rt(*a):
                subprocess.run([exe, "--root", root] + list(a), check=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=b)

            rt("run", "-d", "--bundle", b, cid)
            time.sleep(1)
            for step, args, log in (
                    ("checkpoint", ("checkpoint", "--image-path", img, "--work-path", work, cid), "dump.log"),
                    ("restore", ("restore", "-d", "--image-path", img, "--work-path", work, "--bundle", b, cid),
                     "restore.log"),
                    ("delete", ("delete", "-f", cid), None)):
                t = time.monotonic()
                rt(*args)
                wall = time.monotonic() - t
                outside = wall - criu_elapsed(os.path.join(work, log)) if log else wall
                res.setdefault((name, step), []).append((wall, outside))
    for (name, step), v in sorted(res.items(), key=lambda x: (x[0][1], x[0][0])):
        walls = sorted(w for w, _ in v)
        outs = sorted(o for _, o in v)
        print("%-7s %-10s wall %s  median %.2f s; outside criu's request: median %.2f s" % (
            name, step, " ".join("%.2f" % w for w, _ in v), walls[len(walls) // 2], outs[len(outs) // 2]))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
