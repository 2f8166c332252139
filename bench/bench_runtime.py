"""make bench: pyrunc against runc (and crun where it runs), verb by verb, alternating.

One busybox bundle pair (the default spec with terminal off): a /bin/true one for
`run`, a /bin/sleep one for the rest.  Each round runs, for every runtime in rotating
order, and times each command on its own:

  create  state(created)  start  state(running)  list  kill 9  delete(stopped)
  exec /bin/true (in a sleeper of its own)       run /bin/true (create+start+wait+delete)

and the floor: `python3 -I -S -c pass` with the interpreter pyrunc's launcher runs (a
short verb cannot be faster than that).  `lifecycle` is create + state + start + state +
delete of the same round (what containerd's shim runs per container, less the kill).
`list` lists the three sleepers plus the container of the round.  Between kill and
delete the bench waits, untimed, until the init is gone.

crun refuses this host's hybrid cgroup layout (a cgroup2 mount next to v1): when a
probe `crun create` fails so, a second table runs pyrunc, runc and crun in a private
mount namespace of this bench without that mount (unshare + umount in a child of ours),
which changes nothing on the host and costs each runtime the same.

Last, containerd end to end: `ctr run --rm` of a busybox image with pyrunc, then runc,
as the runc v2 shim's binary, alternating, with a private containerd (the one
tests/containerd uses).  BENCH_RUNS (default 30) rounds; BENCH_CTR_RUNS (default 15).
BENCH_BASELINE=/path/to/other/.venv/bin/pyrunc adds that pyrunc as a column `base`.
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
PYRUNC = os.environ.get("PYRUNC") or os.path.join(TOP, ".venv", "bin", "pyrunc")
# another pyrunc launcher (an older checkout's) to compare with, in the same rounds
BASELINE = os.environ.get("BENCH_BASELINE")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
CTR_RUNS = int(os.environ.get("BENCH_CTR_RUNS", "15"))
VERBS = ("create", "state1", "start", "state2", "list", "kill", "delete", "exec", "run")
SLEEPERS = 3


def launcher_python():
    """the interpreter of pyrunc's launcher (its #! line), for the floor row"""
    with open(PYRUNC) as f:
        return f.readline()[2:].split()[0]


def make_bundle(path):
    _make_bundle(path, ["/bin/true"])
    _make_bundle(path + "-sleep", ["/bin/sleep", "100000"])


def _make_bundle(path, args):
    rootfs = os.path.join(path, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "sleep"))
    subprocess.run([PYRUNC, "spec", "--bundle", path], check=True)
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    # crun 1.8.1 refuses ociVersion 1.2.0 ("unknown version specified"): use runc's
    cfg["ociVersion"] = "1.0.2-dev"
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


_ERR = tempfile.TemporaryFile()
_OUT = tempfile.TemporaryFile()


CPU = {}  # argv[0] and verb -> [cpu ms], for the short verbs' cpu line


def timed(argv):
    """(wall time in ms, stdout) of one command; any failure aborts the bench.
    Output goes to files, not pipes: a created init inherits them and would keep a
    pipe open (the caller would wait for EOF until the container exits).  The
    command's cpu time (user + sys, from wait4) goes to CPU: on a loaded machine it
    says more than the wall time."""
    for f in (_ERR, _OUT):
        f.seek(0)
        f.truncate()
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=_OUT, stderr=_ERR)
    _, status, ru = os.wait4(p.pid, 0)
    t = (time.perf_counter_ns() - t0) / 1e6
    p.returncode = os.waitstatus_to_exitcode(status)
    verb = next((a for a in argv[1:] if not a.startswith("-") and a in _SHORT), "floor" if "pass" in argv else None)
    if verb:
        CPU.setdefault((argv[0], verb), []).append((ru.ru_utime + ru.ru_stime) * 1000)
    r = p
    if r.returncode != 0:
        _ERR.seek(0)
        sys.exit("bench: %s failed: %s" % (" ".join(argv), _ERR.read().decode().strip()))
    _OUT.seek(0)
    return t, _OUT.read()


def _wait_gone(pid):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.001)
    sys.exit("bench: pid %d did not exit after kill 9" % pid)


_RUNTIMES = {}


def bench(runtimes, bundle):
    _RUNTIMES.clear()
    _RUNTIMES.update(runtimes)
    names = list(runtimes)
    results = {n: {v: [] for v in VERBS} for n in names}
    results["floor"] = {"floor": []}
    floor = [launcher_python(), "-I", "-S", "-c", "pass"]
    sleepers = {}
    for name in names:
        exe, root = runtimes[name]
        sleepers[name] = ["bench-%s-sleeper%d" % (name, k) for k in range(SLEEPERS)]
        for cid in sleepers[name]:
            timed([exe, "--root", root, "run", "-d", "-b", bundle + "-sleep", cid])
    try:
        for i in range(RUNS):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                _round(results[name], runtimes[name], bundle, "bench-%s-%d" % (name, i), sleepers[name][0])
            results["floor"]["floor"].append(timed(floor)[0])
    finally:
        for name in names:
            exe, root = runtimes[name]
            for cid in sleepers[name]:
                subprocess.run([exe, "--root", root, "delete", "--force", cid],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return results


def _round(res, runtime, bundle, cid, sleeper):
    exe, root = runtime
    base = [exe, "--root", root]
    res["create"].append(timed(base + ["create", "-b", bundle + "-sleep", cid])[0])
    res["state1"].append(timed(base + ["state", cid])[0])
    res["start"].append(timed(base + ["start", cid])[0])
    t, out = timed(base + ["state", cid])
    res["state2"].append(t)
    pid = json.loads(out)["pid"]
    res["list"].append(timed(base + ["list"])[0])
    res["kill"].append(timed(base + ["kill", cid, "9"])[0])
    _wait_gone(pid)
    res["delete"].append(timed(base + ["delete", cid])[0])
    res["exec"].append(timed(base + ["exec", sleeper, "/bin/true"])[0])
    res["run"].append(timed(base + ["run", "-b", bundle, cid + "r"])[0])


_SHORT = ("start", "state", "kill", "delete", "list")
ROWS = ("create", "start", "state", "kill", "delete", "list", "exec", "run", "lifecycle")


def medians(results):
    med = {}
    for n, r in results.items():
        if n == "floor":
            continue
        m = {v: statistics.median(r[v]) for v in VERBS}
        m["state"] = statistics.median(r["state1"] + r["state2"])
        # the sum per round, then the median (not the sum of medians)
        m["lifecycle"] = statistics.median(
            sum(r[v][k] for v in ("create", "state1", "start", "state2", "delete"))
            for k in range(len(r["create"])))
        med[n] = m
    return med, statistics.median(results["floor"]["floor"])


def report(title, results):
    med, floor = medians(results)
    names = list(med)
    print("\n" + title)
    print("%-10s" % "verb (ms)" + "".join("%10s" % n for n in names)
          + "".join("%14s" % ("pyrunc/" + n) for n in names if n != "pyrunc"))
    for row in ROWS:
        line = "%-10s" % row + "".join("%10.1f" % med[n][row] for n in names)
        line += "".join("%14.2f" % (med["pyrunc"][row] / med[n][row]) for n in names if n != "pyrunc")
        print(line)
    print("%-10s%10.1f   (python3 -I -S -c pass, the launcher's interpreter)" % ("floor", floor))
    short = ("start", "state", "kill", "delete", "list")
    print("pyrunc above the floor: " + ", ".join(
        "%s %+.1f" % (v, med["pyrunc"][v] - floor) for v in short) + " ms")
    cpu = {k: statistics.median(v) for k, v in CPU.items()}
    fl = [v for (exe, verb), v in cpu.items() if verb == "floor"]
    if fl:
        print("cpu time (user+sys) medians, floor %.1f ms: " % fl[0] + "; ".join(
            "%s %s" % (v, " ".join("%s %.1f" % (n, cpu[(runtime[0], v)]) for n, runtime in _RUNTIMES.items()
                                   if (runtime[0], v) in cpu)) for v in short))
    CPU.clear()
    return med, floor


def crun_probe(bundle, work):
    """None when crun runs here, else its one-line refusal"""
    root = os.path.join(work, "root-crun-probe")
    r = subprocess.run(["crun", "--root", root, "create", "-b", bundle + "-sleep", "bench-probe"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run(["crun", "--root", root, "delete", "--force", "bench-probe"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode == 0:
        return None
    return r.stderr.decode(errors="replace").strip().splitlines()[-1] if r.stderr.strip() else "exit %d" % r.returncode


def v1_only_child(work, bundle):
    """the crun table, in a private mount namespace without the cgroup2 mount"""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        sys.exit("bench: unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno()))
    # MS_REC | MS_PRIVATE: our umount must not propagate back to the host
    if libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:
        sys.exit("bench: make / private: %s" % os.strerror(ctypes.get_errno()))
    with open("/proc/self/mountinfo") as f:
        v2 = [l.split()[4] for l in f if " - cgroup2 " in l]
    for m in v2:
        if libc.umount2(m.encode(), 0) != 0:
            sys.exit("bench: umount %s: %s" % (m, os.strerror(ctypes.get_errno())))
    runtimes = {"pyrunc": (PYRUNC, os.path.join(work, "v1-pyrunc")),
                "runc": (shutil.which("runc"), os.path.join(work, "v1-runc")),
                "crun": (shutil.which("crun"), os.path.join(work, "v1-crun"))}
    report("cgroup v1 only (a private mount namespace without %s): pyrunc, runc, crun"
           % ", ".join(v2), bench(runtimes, bundle))


def containerd_bench(work):
    """ctr run --rm of a busybox image: pyrunc and runc as the shim's runc binary"""
    if not all(shutil.which(t) for t in ("containerd", "ctr", "docker-registry", "runc")):
        print("\ncontainerd: skipped (containerd, ctr, docker-registry or runc missing: make deps)")
        return
    sys.path.insert(0, TOP)
    from tests.containerd.conftest import NAMESPACE, Containerd
    from tests.image import build_image as bi
    from tests.image.registry import Registry

    d = Containerd(os.path.join(work, "containerd"))
    os.makedirs(d.dir)
    reg = Registry(os.path.join(work, "registry"))
    reg.start()
    try:
        d.start()
        layout = os.path.join(work, "layout")
        bi.build_image(layout, "busybox", [bi.busybox_layer()])
        ref = "%s/bench/busybox:1" % reg.address
        bi.push_image(layout, "busybox", ref)
        r = d.ctr("image", "pull", "--plain-http", ref)
        if r.returncode != 0:
            sys.exit("bench: ctr image pull: %s" % r.stderr.strip())
        binaries = {"pyrunc": PYRUNC, "runc": shutil.which("runc")}
        times = {n: [] for n in binaries}
        for i in range(CTR_RUNS + 1):  # the first round warms up, uncounted
            order = list(binaries) if i % 2 == 0 else list(binaries)[::-1]
            for n in order:
                argv = ["ctr", "--address", d.sock, "-n", NAMESPACE, "run", "--rm",
                        "--runc-binary", binaries[n], "--runc-root", os.path.join(d.dir, "runc-" + n),
                        "--fifo-dir", d.fifo_dir, ref, "bench-%s-%d" % (n, i), "/bin/true"]
                t = timed(argv)[0]
                if i:
                    times[n].append(t)
        m = {n: statistics.median(v) for n, v in times.items()}
        print("\ncontainerd end to end: ctr run --rm of busybox /bin/true, %d alternating rounds, medians"
              % CTR_RUNS)
        print("pyrunc %.1f ms, runc %.1f ms, pyrunc/runc %.2f" % (m["pyrunc"], m["runc"], m["pyrunc"] / m["runc"]))
    finally:
        d.stop()
        reg.stop()


def main():
    if os.geteuid() != 0:
        sys.exit("bench: must run as root")
    work = tempfile.mkdtemp(prefix="pyrunc-bench-")
    try:
        bundle = os.path.join(work, "bundle")
        make_bundle(bundle)
        if len(sys.argv) > 1 and sys.argv[1] == "--v1-only":
            v1_only_child(work, bundle)
            return
        runtimes = {"pyrunc": (PYRUNC, os.path.join(work, "root-pyrunc"))}
        if shutil.which("runc"):
            runtimes["runc"] = (shutil.which("runc"), os.path.join(work, "root-runc"))
        if BASELINE:
            runtimes["base"] = (BASELINE, os.path.join(work, "root-base"))
        print("bench: %d alternating rounds, busybox bundle, medians; the machine's load: %s"
              % (RUNS, open("/proc/loadavg").read().split()[0]))
        crun_err = crun_probe(bundle, work) if shutil.which("crun") else "crun not installed"
        if crun_err is None:
            runtimes["crun"] = (shutil.which("crun"), os.path.join(work, "root-crun"))
        report("this host as it is", bench(runtimes, bundle))
        if crun_err is not None and shutil.which("crun"):
            print("\ncrun here: %s" % crun_err)
            sys.stdout.flush()
            subprocess.run([sys.executable, os.path.abspath(__file__), "--v1-only"], check=True)
        elif crun_err is not None:
            print("\ncrun: skipped (%s)" % crun_err)
        containerd_bench(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
