"""A fake cgroup host for unit tests (runc's cgroups TestMode, as a directory tree).

build(dir, mode) lays out under dir what pyrunc.cgroups reads:
    proc/self/mountinfo, proc/self/cgroup
    sys/fs/cgroup/<controller>/...    (v1 and hybrid)
    sys/fs/cgroup[/unified]/...       (cgroup2)
with the interface files a kernel shows in a child cgroup, so that
create_manager(path, id, prefix=dir) works on it.  fs.py gives the fake tree its
kernel-like behaviour (children inherit the interface files, cgroup.subtree_control
feeds the children's cgroup.controllers, rmdir refuses a populated directory).
"""
import os

V1 = {
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
            "cpu.cfs_burst_us": "0", "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.idle": "0",
            "cpu.stat": "nr_periods 12\nnr_throttled 3\nthrottled_time 4500\n"},
    "cpuacct": {"cpuacct.usage": "123456", "cpuacct.usage_percpu": "100000 23456 ",
                "cpuacct.usage_all": "cpu user system\n0 90000 10000\n1 20000 3456\n",
                "cpuacct.stat": "user 7\nsystem 2\n"},
    "cpuset": {"cpuset.cpus": "0-3", "cpuset.mems": "0", "cpuset.cpu_exclusive": "0", "cpuset.mem_hardwall": "0",
               "cpuset.mem_exclusive": "0", "cpuset.memory_migrate": "0", "cpuset.memory_spread_page": "0",
               "cpuset.memory_spread_slab": "0", "cpuset.memory_pressure": "0", "cpuset.sched_load_balance": "1",
               "cpuset.sched_relax_domain_level": "-1"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.soft_limit_in_bytes": "9223372036854771712",
               "memory.memsw.limit_in_bytes": "9223372036854771712", "memory.kmem.limit_in_bytes": "",
               "memory.kmem.tcp.limit_in_bytes": "", "memory.swappiness": "60",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "memory.use_hierarchy": "1",
               "memory.usage_in_bytes": "4096", "memory.max_usage_in_bytes": "8192", "memory.failcnt": "0",
               "memory.memsw.usage_in_bytes": "4096", "memory.memsw.max_usage_in_bytes": "8192",
               "memory.memsw.failcnt": "0", "memory.kmem.usage_in_bytes": "0", "memory.kmem.failcnt": "0",
               "memory.kmem.tcp.usage_in_bytes": "0", "memory.kmem.tcp.failcnt": "0",
               "memory.stat": "cache 4096\nrss 8192\n", "cgroup.event_control": ""},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED"},
    "blkio": {"blkio.bfq.weight": "100", "blkio.bfq.weight_device": "", "blkio.throttle.read_bps_device": "",
              "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "",
              "blkio.throttle.write_iops_device": "", "blkio.bfq.io_service_bytes_recursive": "8:0 Read 4096\n"
              "8:0 Write 0\nTotal 4096\n", "blkio.bfq.io_serviced_recursive": "8:0 Read 1\nTotal 1\n"},
    "pids": {"pids.max": "max", "pids.current": "1"},
    "hugetlb": {"hugetlb.2MB.limit_in_bytes": "", "hugetlb.2MB.usage_in_bytes": "0",
                "hugetlb.2MB.max_usage_in_bytes": "0", "hugetlb.2MB.failcnt": "0"},
    "net_cls": {"net_cls.classid": "0"},
    "net_prio": {"net_prio.ifpriomap": ""},
    "rdma": {"rdma.max": ""},
    "perf_event": {},
    "name=systemd": {},
}
V2 = {
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-3",
               "cpuset.mems.effective": "0"},
    "memory": {"memory.max": "max", "memory.low": "0", "memory.high": "max", "memory.swap.max": "max", "memory.current": "4096",
               "memory.swap.current": "0", "memory.peak": "8192",
               "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
               "memory.stat": "anon 4096\nfile 8192\n"},
    "pids": {"pids.max": "max", "pids.current": "1"},
    "io": {"io.weight": "default 100", "io.max": "", "io.stat": "8:0 rbytes=4096 wbytes=0 rios=1 wios=0\n"},
    "hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.2MB.current": "0", "hugetlb.2MB.events": "max 0\n"},
    "rdma": {"rdma.max": ""},
}
V2_CORE = {"cgroup.procs": "", "cgroup.controllers": "", "cgroup.subtree_control": "", "cgroup.freeze": "0",
           "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "", "cgroup.type": "domain",
           "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\n"
                       "throttled_usec 20\n"}


def _write(path, files):
    os.makedirs(path, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)


def build(root, mode="hybrid", v1=None, v2=None, own=None, v1_layout=None):
    """mode: "v1", "hybrid" or "v2".  v1: controllers with a v1 hierarchy (default: all
    in v1 mode, the development host's set in hybrid mode); v2: controllers cgroup2 offers;
    own: {"memory": "/a/b", "": "/x"} our cgroup per hierarchy ("" = cgroup2),
    default "/".  v1_layout: {mount name: [controllers]} to co-mount controllers
    (e.g. {"cpu,cpuacct": ["cpu", "cpuacct"]}).  Returns root (the prefix)."""
    root = str(root)
    own = own or {}
    base = "/sys/fs/cgroup"
    mi = ["25 1 0:20 / / rw,relatime - ext4 /dev/vda rw",
          "31 25 0:28 / %s rw,relatime - tmpfs tmpfs rw,mode=755" % base]
    pc = []
    dev = 29
    n = 1
    if mode in ("v1", "hybrid"):
        if v1 is None:
            # hybrid: the development host's layout (cgroup2 offers only hugetlb)
            v1 = list(V1) if mode == "v1" else ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                                 "blkio", "pids", "name=systemd"]
        layout = v1_layout or {c: [c] for c in v1}
        for name, ctrls in layout.items():
            mnt = base + "/" + name.replace("name=", "")
            files = {"cgroup.procs": "", "tasks": "", "notify_on_release": "0", "cgroup.clone_children": "0"}
            for c in ctrls:
                files.update(V1[c])
            _write(root + mnt, files)
            opts = ",".join(["rw"] + ctrls)
            mi.append("%d 31 0:%d / %s rw,nosuid,nodev,noexec,relatime shared:%d - cgroup cgroup %s"
                      % (30 + n, dev, mnt, n, opts))
            pc.append("%d:%s:%s" % (n, ",".join(ctrls), own.get(ctrls[0], "/")))
            dev += 1
            n += 1
    if mode in ("hybrid", "v2"):
        mnt = base + "/unified" if mode == "hybrid" else base
        if v2 is None:
            v2 = ["hugetlb"] if mode == "hybrid" else ["cpu", "cpuset", "memory", "pids", "io", "hugetlb", "rdma"]
        files = dict(V2_CORE)
        for c in v2:
            files.update(V2[c])
        files["cgroup.controllers"] = " ".join(sorted(v2))
        _write(root + mnt, files)
        if mode == "v2":
            mi = mi[:1]
        mi.append("%d 25 0:%d / %s rw,nosuid,nodev,noexec,relatime shared:%d - cgroup2 cgroup2 rw,nsdelegate"
                  % (30 + n, dev, mnt, n))
        pc.append("0::%s" % own.get("", "/"))
    os.makedirs(root + "/proc/self", exist_ok=True)
    with open(root + "/proc/self/mountinfo", "w") as f:
        f.write("\n".join(mi) + "\n")
    with open(root + "/proc/self/cgroup", "w") as f:
        f.write("\n".join(reversed(pc)) + "\n")
    return root
