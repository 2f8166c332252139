#!/usr/bin/env python3
"""Run runc's own integration suite (tests/integration/*.bats of a prepared runc checkout)
against a runtime and print one row per .bats file.

    run_runc_bats.py --runc-src DIR [--runtime PATH] [FILE ...] [--failures] [--json OUT]
    run_runc_bats.py --runc-src DIR --compare OTHER.json      # what OTHER passes and we do not

The checkout must already hold what the suite looks for (nothing here builds anything):
`bats` on PATH, the helper binaries contrib/cmd/{recvtty,sd-helper,seccompagent}/<name>,
and tests/integration/testdata/busybox-amd64.tar.xz.  The suite's get-images.sh asks
`go env GOARCH` for the image's name; when no `go` is on PATH we answer that one question
with a two-line shim in a temporary directory.

Each file runs as `bats --tap FILE` under a controlling terminal (`script -qec`), as in
runc's CI: the tty tests open /dev/tty.  The env var RUNC names the runtime.  Counting:
`ok N` pass, `ok N ... # skip` skip, `not ok N` fail; a file that times out or exits
without its plan is flagged in the status column.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

RESULT = re.compile(r"^(not ok|ok) (\d+) (.*?)(?: # (skip)\b.*)?$")
PLAN = re.compile(r"^1\.\.(\d+)")
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "ppc64le": "ppc64le",
          "s390x": "s390x", "armv7l": "arm"}


def parse_tap(text):
    """(counts, plan, results): results lists (name, status) with status ok / fail / skip."""
    counts = {"ok": 0, "fail": 0, "skip": 0}
    plan = None
    results = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        m = PLAN.match(line)
        if m:
            plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if not m:
            continue
        if m.group(4):
            status = "skip"
        elif m.group(1) == "ok":
            status = "ok"
        else:
            status = "fail"
        counts[status] += 1
        results.append((m.group(3), status))
    return counts, plan, results


def go_shim(tmp):
    """A `go` that only answers `go env GOARCH`, for get-images.sh, when no Go is installed."""
    if shutil.which("go"):
        return None
    arch = GOARCH.get(os.uname().machine, os.uname().machine)
    d = os.path.join(tmp, "goshim")
    os.mkdir(d)
    path = os.path.join(d, "go")
    with open(path, "w") as f:
        f.write('#!/bin/sh\n[ "$1 $2" = "env GOARCH" ] && { echo %s; exit 0; }\nexit 1\n' % arch)
    os.chmod(path, 0o755)
    return d


def run_file(bats_file, env, timeout, keep_dir=None):
    cmd = "bats --tap " + shlex.quote(bats_file)
    t0 = time.monotonic()
    status = "ok"
    try:
        # script gives bats a controlling terminal; its own stdin is /dev/null so that
        # nothing typed by a caller reaches the tests
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        out = p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        status = "timeout"
    counts, plan, results = parse_tap(out)
    if status == "ok" and plan is not None and len(results) < plan:
        status = "%d of %d results" % (len(results), plan)
    elif status == "ok" and plan is None:
        status = "no TAP"
    if keep_dir:
        with open(os.path.join(keep_dir, os.path.basename(bats_file) + ".tap"), "w") as f:
            f.write(out)
    return {"file": os.path.basename(bats_file), "counts": counts, "results": results,
            "status": status, "seconds": round(time.monotonic() - t0, 1), "output": out}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runc-src", required=True, help="prepared runc checkout (tag v1.1.5)")
    ap.add_argument("--runtime", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..", "..", ".venv", "bin", "pyrunc"),
                    help="runtime binary (default: .venv/bin/pyrunc); `runc` for the baseline")
    ap.add_argument("files", nargs="*", help="bats files (names like exec or exec.bats); default all")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per file (default 600)")
    ap.add_argument("--failures", action="store_true", help="list every failing test")
    ap.add_argument("--json", help="write results here (for --compare)")
    ap.add_argument("--compare", help="a --json file of another runtime: list what it passes and this one does not")
    ap.add_argument("--tap-dir", help="keep every file's raw TAP output here")
    args = ap.parse_args()

    runtime = shutil.which(args.runtime) or args.runtime
    runtime = os.path.abspath(runtime)
    if not os.access(runtime, os.X_OK):
        sys.exit("run_runc_bats: runtime %s: not executable" % runtime)
    idir = os.path.join(os.path.abspath(args.runc_src), "tests", "integration")
    if not os.path.isfile(os.path.join(idir, "helpers.bash")):
        sys.exit("run_runc_bats: %s: not a runc checkout (no tests/integration/helpers.bash)" % args.runc_src)
    if not shutil.which("bats"):
        sys.exit("run_runc_bats: bats: not found on PATH")
    if not shutil.which("script"):
        sys.exit("run_runc_bats: script (util-linux): not found on PATH")
    missing = [p for p in ("testdata/busybox-*.tar.xz",) if not _glob(idir, p)]
    missing += [h for h in ("recvtty", "sd-helper", "seccompagent")
                if not os.access(os.path.join(args.runc_src, "contrib", "cmd", h, h), os.X_OK)]
    if missing:
        sys.exit("run_runc_bats: %s: missing %s (prepare the checkout first, see tests/conformance/README.md)"
                 % (args.runc_src, ", ".join(missing)))
    if os.geteuid() != 0:
        sys.exit("run_runc_bats: must run as root")

    if args.files:
        files = [os.path.join(idir, f if f.endswith(".bats") else f + ".bats") for f in args.files]
    else:
        files = sorted(os.path.join(idir, f) for f in os.listdir(idir) if f.endswith(".bats"))
    if args.tap_dir:
        os.makedirs(args.tap_dir, exist_ok=True)

    tmp = tempfile.mkdtemp(prefix="runc-bats.")
    # the bundles live below it: user-namespaced containers (userns.bats) must be able to
    # reach their rootfs, and the kernel checks every parent directory
    os.chmod(tmp, 0o755)
    try:
        env = dict(os.environ, RUNC=runtime, TMPDIR=tmp)
        shim = go_shim(tmp)
        if shim:
            env["PATH"] = shim + ":" + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        rows = []
        for f in files:
            r = run_file(f, env, args.timeout, args.tap_dir)
            rows.append(r)
            c = r["counts"]
            print("%-32s %4d ok %4d not ok %4d skip  %5.0fs  %s"
                  % (r["file"], c["ok"], c["fail"], c["skip"], r["seconds"], r["status"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    tot = {k: sum(r["counts"][k] for r in rows) for k in ("ok", "fail", "skip")}
    print("%-32s %4d ok %4d not ok %4d skip   (%s)" % ("TOTAL", tot["ok"], tot["fail"], tot["skip"], runtime))
    if args.failures:
        for r in rows:
            for name, st in r["results"]:
                if st == "fail":
                    print("not ok  %s: %s" % (r["file"], name))
    if args.compare:
        with open(args.compare) as f:
            other = json.load(f)
        ours = {(r["file"], n): st for r in rows for n, st in r["results"]}
        lost = [(r["file"], n) for r in other["rows"] for n, st in r["results"]
                if st == "ok" and (r["file"], n) in ours and ours[(r["file"], n)] != "ok"]
        print("\n%d tests pass with %s and not here:" % (len(lost), other["runtime"]))
        for f, n in lost:
            print("  %s: %s" % (f, n))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runtime": runtime, "rows": [dict(r, output=None) for r in rows]}, f, indent=1)
    return 0 if tot["fail"] == 0 and all(r["status"] == "ok" for r in rows) else 1


def _glob(d, pattern):
    import glob
    return glob.glob(os.path.join(d, pattern))


if __name__ == "__main__":
    sys.exit(main())
