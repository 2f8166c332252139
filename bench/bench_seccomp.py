"""Seccomp cost: compiling the Docker-shaped profile, the cache, and `create` with it.

    .venv/bin/python bench/bench_seccomp.py            (root; BENCH_RUNS=30 by default)

Profile: tests/data/seccomp-docker-like.json (382 names, argument rules on
personality, socket and clone, three architectures; ~1240 BPF instructions).

1. prepare() in a fresh interpreter, as `pyrunc create` pays it:
     miss   empty cache: imports pyrunc._libseccomp (loads libseccomp), compiles,
            patches, writes the entry
     hit    the entry exists: hash, read, check; libseccomp never loaded
   plus, in one warm process, compile_profile() alone and a warm hit.
2. `X create` of a /bin/true bundle (timed), then `X delete --force` (not timed):
     pyrunc-none    no linux.seccomp at all (the baseline)
     pyrunc-cold    the profile, cache emptied before every create
     pyrunc-cached  the profile, cache warm
     runc           the profile (runc compiles it on every create)
   Rounds alternate the variants so drift hits all alike; medians are printed.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PY = os.path.join(TOP, ".venv", "bin", "python3")
PYRUNC = os.path.join(TOP, ".venv", "bin", "pyrunc")
PROFILE = os.path.join(TOP, "tests", "data", "seccomp-docker-like.json")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))

sys.path.insert(0, TOP)


def load_profile():
    with open(PROFILE) as f:
        return json.load(f)


def fresh_prepare(root):
    """prepare() timed inside a new interpreter (includes importing pyrunc.seccomp)"""
    # the same start-up as the installed launcher: -I -S, the tree and the venv's
    # site-packages (for _cffi_backend) on sys.path
    import glob

    paths = [TOP] + glob.glob(os.path.join(TOP, ".venv", "lib", "python3*", "site-packages"))
    code = ("import sys, time\nsys.path[0:0] = %r\n" % paths +
            "t0 = time.perf_counter_ns()\n"
            "from pyrunc import jsonfast, seccomp\n"
            "prof = jsonfast.loads(open(%r).read())\n"
            "t1 = time.perf_counter_ns()\n"
            "p = seccomp.prepare(prof, %r)\n"
            "t2 = time.perf_counter_ns()\n"
            "print((t2 - t1) / 1e6, int(p.cached), int('pyrunc._libseccomp' in sys.modules))\n"
            % (PROFILE, root))
    r = subprocess.run([PY, "-I", "-S", "-c", code], cwd=TOP, capture_output=True, text=True)
    if r.returncode:
        sys.exit("bench: prepare failed: %s" % r.stderr.strip())
    ms, cached, loaded = r.stdout.split()
    return float(ms), cached == "1", loaded == "1"


def bench_prepare(work):
    root = os.path.join(work, "prep")
    miss, hit = [], []
    for _ in range(RUNS):
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        ms, cached, loaded = fresh_prepare(root)
        assert not cached and loaded
        miss.append(ms)
        ms, cached, loaded = fresh_prepare(root)
        assert cached and not loaded, "a hit must not load libseccomp"
        hit.append(ms)

    from pyrunc import seccomp
    from pyrunc import seccomp_compile

    prof = load_profile()
    seccomp_compile.compile_profile(prof)
    comp = []
    for _ in range(RUNS):
        t0 = time.perf_counter_ns()
        c = seccomp_compile.compile_profile(prof)
        comp.append((time.perf_counter_ns() - t0) / 1e6)
    seccomp.prepare(prof, root)
    warm = []
    for _ in range(RUNS * 10):
        t0 = time.perf_counter_ns()
        seccomp.prepare(prof, root)
        warm.append((time.perf_counter_ns() - t0) / 1e6)
    print("profile: %d names in %d rules -> %d BPF instructions (%d in the -ENOSYS prologue), "
          "%d names unknown to libseccomp %s skipped"
          % (sum(len(r["names"]) for r in prof["syscalls"]), len(prof["syscalls"]),
             len(c.program) // 8, c.patch_len, len(c.skipped), seccomp_compile.libseccomp_version()))
    print("\nprepare(), fresh interpreter (what create pays)   median   min")
    print("  miss (load libseccomp + compile + write)    %8.2f %6.2f ms" % (statistics.median(miss), min(miss)))
    print("  hit  (hash + read + verify)                 %8.3f %6.3f ms" % (statistics.median(hit), min(hit)))
    print("warm process")
    print("  compile_profile() alone                     %8.2f %6.2f ms" % (statistics.median(comp), min(comp)))
    print("  hit                                         %8.3f %6.3f ms" % (statistics.median(warm), min(warm)))


def make_bundle(path, seccomp):
    rootfs = os.path.join(path, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
    subprocess.run([PYRUNC, "spec", "--bundle", path], check=True)
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    if seccomp:
        cfg["linux"]["seccomp"] = load_profile()
    else:
        cfg["linux"].pop("seccomp", None)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


def run_ok(argv):
    # stderr to a file, not a pipe: the container init `create` leaves behind inherits
    # it, and a pipe would not reach EOF while the init lives
    with tempfile.TemporaryFile() as err:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        if r.returncode != 0:
            err.seek(0)
            sys.exit("bench: %s failed: %s" % (" ".join(argv), err.read().decode().strip()))


def bench_create(work):
    plain = os.path.join(work, "bundle-plain")
    prof = os.path.join(work, "bundle-seccomp")
    make_bundle(plain, False)
    make_bundle(prof, True)
    variants = {
        "pyrunc-none": (PYRUNC, os.path.join(work, "root-none"), plain, False),
        "pyrunc-cold": (PYRUNC, os.path.join(work, "root-cold"), prof, True),
        "pyrunc-cached": (PYRUNC, os.path.join(work, "root-cached"), prof, False),
    }
    if shutil.which("runc"):
        variants["runc"] = (shutil.which("runc"), os.path.join(work, "root-runc"), prof, False)
    times = {n: [] for n in variants}
    names = list(variants)
    # one untimed create per variant first: warms the page cache and the seccomp cache
    for i in range(RUNS + 1):
        order = names[i % len(names):] + names[:i % len(names)]
        for n in order:
            exe, root, bundle, clear = variants[n]
            if clear:
                shutil.rmtree(os.path.join(root, ".cache"), ignore_errors=True)
            cid = "bs-%s-%d" % (n, i)
            t0 = time.perf_counter_ns()
            run_ok([exe, "--root", root, "create", "-b", bundle, cid])
            if i:
                times[n].append((time.perf_counter_ns() - t0) / 1e6)
            run_ok([exe, "--root", root, "delete", "--force", cid])
    med = {n: statistics.median(v) for n, v in times.items()}
    print("\n`create` of a /bin/true bundle, %d alternating rounds   median    min" % RUNS)
    for n in names:
        print("  %-14s %32.1f %7.1f ms" % (n, med[n], min(times[n])))
    print("  seccomp cost in pyrunc create: cold %+.1f ms, cached %+.1f ms (vs no seccomp)"
          % (med["pyrunc-cold"] - med["pyrunc-none"], med["pyrunc-cached"] - med["pyrunc-none"]))
    if "runc" in med:
        print("  ratio pyrunc-cached/runc %.2f, pyrunc-cold/runc %.2f"
              % (med["pyrunc-cached"] / med["runc"], med["pyrunc-cold"] / med["runc"]))


def main():
    if os.geteuid() != 0:
        sys.exit("bench: must run as root")
    work = tempfile.mkdtemp(prefix="pyrunc-bench-seccomp-")
    try:
        bench_prepare(work)
        bench_create(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
