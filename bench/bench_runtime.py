"""make bench: pyrunc against runc (and crun where it runs), alternating runs.

Three workloads on the same busybox bundle (the default spec with terminal off):
  run    `X run -b B id` of /bin/true            (create + start + wait + delete)
  cycle  `X create -b B id; X start id; X delete --force id`
  exec   `X exec id /bin/true` in a container of its own that sleeps meanwhile

Each round runs every runtime once, in rotating order, so drift (page cache, CPU
frequency, other load) hits all of them alike.  Medians and pyrunc/other ratios are
printed.  crun refuses a hybrid cgroup layout ("cgroups in hybrid mode not supported"),
so on such a host a second table runs pyrunc, runc and crun all through the same
wrapper (V1_ONLY: a private mount namespace where the cgroup2 mount is unmounted, so
crun sees plain v1), which costs each of them the same.
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
PYRUNC = os.path.join(TOP, ".venv", "bin", "pyrunc")
# unshare -m: the host's mounts are untouched; only this process tree loses the v2 mount
V1_ONLY = ["unshare", "-m", "--propagation", "private", "sh", "-c",
           'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', "sh"]
HYBRID = os.path.ismount("/sys/fs/cgroup/unified")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))


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


def timed(argvs):
    """wall time of a sequence of commands, in ms; any failure aborts the bench.
    stderr goes to a file, not a pipe: a created init inherits it and would keep a
    pipe open (the caller would wait for EOF until the container exits)."""
    t0 = time.perf_counter_ns()
    for argv in argvs:
        _ERR.seek(0)
        _ERR.truncate()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=_ERR)
        if r.returncode != 0:
            _ERR.seek(0)
            sys.exit("bench: %s failed: %s" % (" ".join(argv), _ERR.read().decode().strip()))
    return (time.perf_counter_ns() - t0) / 1e6


def bench(runtimes, bundle, wrapper=None):
    pre = list(wrapper or ())
    results = {name: {"run": [], "cycle": [], "exec": []} for name in runtimes}
    names = list(runtimes)
    sleepers = {}
    for name in names:
        exe, root = runtimes[name]
        sleepers[name] = "bench-%s-sleeper" % name
        timed([pre + [exe, "--root", root, "run", "-d", "-b", bundle + "-sleep", sleepers[name]]])
    try:
        _rounds(runtimes, bundle, pre, names, results, sleepers)
    finally:
        for name in names:
            exe, root = runtimes[name]
            subprocess.run(pre + [exe, "--root", root, "delete", "--force", sleepers[name]],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return results


def _rounds(runtimes, bundle, pre, names, results, sleepers):
    for i in range(RUNS):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            exe, root = runtimes[name]
            base = pre + [exe, "--root", root]
            cid = "bench-%s-%d" % (name, i)
            results[name]["run"].append(timed([base + ["run", "-b", bundle, cid]]))
            cid += "c"
            results[name]["cycle"].append(timed([base + ["create", "-b", bundle, cid],
                                                 base + ["start", cid],
                                                 base + ["delete", "--force", cid]]))
            results[name]["exec"].append(timed([base + ["exec", sleepers[name], "/bin/true"]]))


def report(title, results):
    print("\n" + title)
    print("%-8s %12s %12s %12s" % ("runtime", "run (ms)", "cycle (ms)", "exec (ms)"))
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    for n, m in med.items():
        print("%-8s %12.1f %12.1f %12.1f" % (n, m["run"], m["cycle"], m["exec"]))
    for n in med:
        if n == "pyrunc":
            continue
        print("ratio pyrunc/%s: run %.2f, cycle %.2f, exec %.2f" % (
            n, med["pyrunc"]["run"] / med[n]["run"], med["pyrunc"]["cycle"] / med[n]["cycle"],
            med["pyrunc"]["exec"] / med[n]["exec"]))
    return med


def main():
    if os.geteuid() != 0:
        sys.exit("bench: must run as root")
    work = tempfile.mkdtemp(prefix="pyrunc-bench-")
    try:
        bundle = os.path.join(work, "bundle")
        make_bundle(bundle)
        runtimes = {"pyrunc": (PYRUNC, os.path.join(work, "root-pyrunc"))}
        if shutil.which("runc"):
            runtimes["runc"] = (shutil.which("runc"), os.path.join(work, "root-runc"))
        print("bench: %d alternating rounds, /bin/true bundle, medians" % RUNS)
        report("direct (this host: hybrid cgroups)", bench(runtimes, bundle))
        if shutil.which("crun") and HYBRID:
            runtimes["crun"] = (shutil.which("crun"), os.path.join(work, "root-crun"))
            report("cgroup v1 only (cgroup2 unmounted in a private mount ns, all three alike)",
                   bench(runtimes, bundle, wrapper=V1_ONLY))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
