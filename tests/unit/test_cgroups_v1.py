"""cgroup v1 (and hybrid) manager on a fake host: what lands in which file, errors,
create/destroy bookkeeping."""
import os

import pytest

from pyrunc.cgroups import CgroupError, create_manager, fake, load_manager

BASE = "sys/fs/cgroup"


@pytest.fixture
def host(tmp_path):
    return fake.build(tmp_path / "host", "hybrid")


def read(prefix, ctrl, rel, name):
    with open(os.path.join(prefix, BASE, ctrl, rel, name)) as f:
        return f.read()


def made(prefix, rel="pt/c1"):
    m = create_manager("/" + rel, "c1", prefix=prefix)
    m.create()
    return m


def test_create_makes_every_hierarchy_and_remembers(host):
    m = made(host)
    for h in m.hs:
        assert os.path.isdir(h.path)
        assert h.made == ["pt", "pt/c1"]
    # a v1 cpuset starts empty: every level we made got the parent's cpus and mems
    assert read(host, "cpuset", "pt", "cpuset.cpus") == "0-3"
    assert read(host, "cpuset", "pt/c1", "cpuset.mems") == "0"


def test_existing_parent_is_not_ours(host):
    os.makedirs(os.path.join(host, BASE, "pids", "shared"))
    m = create_manager("/shared/c1", "c1", prefix=host)
    m.create()
    assert m.by_ctrl["pids"].made == ["shared/c1"]
    assert m.by_ctrl["memory"].made == ["shared", "shared/c1"]
    m.destroy()
    assert os.path.isdir(os.path.join(host, BASE, "pids", "shared"))
    assert not os.path.exists(os.path.join(host, BASE, "memory", "shared"))


def test_empty_existing_cpuset_ancestor_is_filled(host):
    # runc's ensureParent: an ancestor someone else made but never initialised
    os.makedirs(os.path.join(host, BASE, "cpuset", "empty"))
    for f in ("cpuset.cpus", "cpuset.mems"):
        open(os.path.join(host, BASE, "cpuset", "empty", f), "w").close()
    create_manager("/empty/c1", "c1", prefix=host).create()
    assert read(host, "cpuset", "empty", "cpuset.cpus") == "0-3"
    assert read(host, "cpuset", "empty/c1", "cpuset.cpus") == "0-3"


def test_apply_writes_the_pid_everywhere(host):
    m = made(host)
    m.apply(4242)
    for h in m.hs:
        with open(h.path + "/cgroup.procs") as f:
            assert f.read() == "4242"


def test_destroy_removes_what_create_made_and_is_idempotent(host):
    m = made(host)
    m.destroy()
    for ctrl in ("cpu", "memory", "unified", "systemd"):
        assert not os.path.exists(os.path.join(host, BASE, ctrl, "pt"))
    m.destroy()
    load_manager(m.to_state()).destroy()


def test_destroy_keeps_a_parent_another_container_uses(host):
    a = made(host, "pt/a")
    b = made(host, "pt/b")
    a.destroy()
    assert os.path.isdir(os.path.join(host, BASE, "pids", "pt", "b"))
    assert a.by_ctrl["pids"].made == []
    b.destroy()
    # b did not make pt, and a no longer knows about it: like runc, a shared parent
    # outlives its containers
    assert os.listdir(os.path.join(host, BASE, "pids", "pt")) != []
    assert not os.path.exists(os.path.join(host, BASE, "pids", "pt", "b"))


def test_destroy_reports_a_busy_cgroup(host):
    m = made(host)
    with open(os.path.join(host, BASE, "freezer", "pt/c1", "cgroup.procs"), "w") as f:
        f.write("1")
    with pytest.raises(CgroupError, match=r"^remove cgroup .*/freezer/pt/c1: device or resource busy$"):
        m.destroy()
    # everything else is gone; the busy one (and its parent) stay remembered
    assert m.by_ctrl["freezer"].made == ["pt", "pt/c1"]
    assert m.by_ctrl["memory"].made == []


def test_memory(host):
    m = made(host)
    m.set({"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "swappiness": 0,
                      "disableOOMKiller": True, "kernel": 1 << 20, "kernelTCP": 2 << 20, "useHierarchy": True}})
    assert read(host, "memory", "pt/c1", "memory.limit_in_bytes") == str(64 << 20)
    assert read(host, "memory", "pt/c1", "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert read(host, "memory", "pt/c1", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(host, "memory", "pt/c1", "memory.swappiness") == "0"
    assert read(host, "memory", "pt/c1", "memory.oom_control") == "1"
    assert read(host, "memory", "pt/c1", "memory.kmem.limit_in_bytes") == str(1 << 20)
    assert read(host, "memory", "pt/c1", "memory.kmem.tcp.limit_in_bytes") == str(2 << 20)
    assert read(host, "memory", "pt/c1", "memory.use_hierarchy") == "1"


def test_memory_unlimited_takes_swap_along(host):
    m = made(host)
    m.set({"memory": {"limit": -1}})
    assert read(host, "memory", "pt/c1", "memory.memsw.limit_in_bytes") == "-1"


def test_swappiness_out_of_range(host):
    m = made(host)
    with pytest.raises(CgroupError, match=r"^linux.resources.memory.swappiness: invalid value 101"):
        m.set({"memory": {"swappiness": 101}})
    m.set({"memory": {"swappiness": -1}})  # runc: -1 is "not set"
    assert read(host, "memory", "pt/c1", "memory.swappiness") == ""


def test_missing_file_names_resource_and_file(host):
    m = made(host)
    os.unlink(os.path.join(host, BASE, "memory", "pt/c1", "memory.memsw.limit_in_bytes"))
    with pytest.raises(CgroupError) as e:
        m.set({"memory": {"limit": 1 << 20, "swap": 2 << 20}})
    assert str(e.value) == ("linux.resources.memory.swap: write %d to %s/%s/memory/pt/c1/"
                            "memory.memsw.limit_in_bytes: no such file or directory" % (2 << 20, host, BASE))


def test_cpu(host):
    m = made(host)
    m.set({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "idle": 1,
                   "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "1-2", "mems": "0"}})
    for f, v in (("cpu.shares", "512"), ("cpu.cfs_quota_us", "50000"), ("cpu.cfs_period_us", "100000"),
                 ("cpu.cfs_burst_us", "1000"), ("cpu.idle", "1"), ("cpu.rt_runtime_us", "950000"),
                 ("cpu.rt_period_us", "1000000")):
        assert read(host, "cpu", "pt/c1", f) == v, f
    assert read(host, "cpuset", "pt/c1", "cpuset.cpus") == "1-2"


def test_cpu_shares_range(host):
    m = made(host)
    with pytest.raises(CgroupError, match="minimum allowed cpu-shares, 2"):
        m.set({"cpu": {"shares": 1}})
    with pytest.raises(CgroupError, match="maximum allowed cpu-shares, 262144"):
        m.set({"cpu": {"shares": 262145}})


def test_zero_means_unset(host):
    m = made(host)
    m.set({"cpu": {"shares": 0, "quota": 0}, "memory": {"limit": 0}, "pids": {"limit": 0},
           "blockIO": {"weight": 0}})
    assert read(host, "cpu", "pt/c1", "cpu.shares") == ""
    assert read(host, "pids", "pt/c1", "pids.max") == ""


def test_pids(host):
    m = made(host)
    m.set({"pids": {"limit": 42}})
    assert read(host, "pids", "pt/c1", "pids.max") == "42"
    m.set({"pids": {"limit": -1}})
    assert read(host, "pids", "pt/c1", "pids.max") == "max"


def test_blkio_prefers_bfq_files(host):
    m = made(host)
    m.set({"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                       "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]}})
    assert read(host, "blkio", "pt/c1", "blkio.bfq.weight") == "300"
    assert read(host, "blkio", "pt/c1", "blkio.bfq.weight_device") == "8:0 500"
    assert read(host, "blkio", "pt/c1", "blkio.throttle.read_bps_device") == "8:0 1048576"
    assert read(host, "blkio", "pt/c1", "blkio.throttle.write_iops_device") == "8:16 100"


def test_blkio_leaf_weight_without_kernel_support(host):
    m = made(host)
    with pytest.raises(CgroupError, match=r"^linux.resources.blockIO.leafWeight: .*blkio.leaf_weight: no such file"):
        m.set({"blockIO": {"leafWeight": 300}})


def test_hugetlb_v1(tmp_path):
    p = fake.build(tmp_path, "v1")
    m = made(p)
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    assert read(p, "hugetlb", "pt/c1", "hugetlb.2MB.limit_in_bytes") == str(4 << 20)
    with pytest.raises(CgroupError, match=r"hugepageLimits\[0\].pageSize: 3MB is not a huge page size"):
        m.set({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})


def test_hugetlb_hybrid_goes_to_cgroup2(host):
    # this host: no v1 hugetlb hierarchy, but cgroup2 offers the controller
    m = made(host)
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    assert read(host, "unified", "pt/c1", "hugetlb.2MB.max") == str(4 << 20)
    assert read(host, "unified", "", "cgroup.subtree_control") == "hugetlb"
    assert read(host, "unified", "pt", "cgroup.subtree_control") == "hugetlb"
    assert read(host, "unified", "pt/c1", "cgroup.subtree_control") == ""


def test_controller_not_mounted(host):
    m = made(host)
    with pytest.raises(CgroupError) as e:
        m.set({"network": {"classID": 1048577}})
    assert str(e.value) == "linux.resources.network: the net_cls cgroup controller is not mounted"
    with pytest.raises(CgroupError, match="^linux.resources.rdma: the rdma cgroup controller is not mounted$"):
        m.set({"rdma": {"mlx5_1": {"hcaHandles": 3}}})
    # asking nothing of it is fine
    m.set({"network": {"priorities": []}, "rdma": {}})
    m.destroy()
    assert not os.path.exists(os.path.join(host, BASE, "memory", "pt"))


def test_network_and_rdma_v1(tmp_path):
    p = fake.build(tmp_path, "v1")
    m = made(p)
    m.set({"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5},
                                                          {"name": "lo", "priority": 2}]},
           "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}})
    assert read(p, "net_cls", "pt/c1", "net_cls.classid") == "1048577"
    assert read(p, "net_prio", "pt/c1", "net_prio.ifpriomap") == "lo 2"  # one write each
    assert read(p, "rdma", "pt/c1", "rdma.max") == "mlx5_1 hca_handle=3 hca_object=10000"


def test_devices_default_rules(host):
    m = made(host)
    m.set({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10,
                                                            "minor": 229, "access": "rwm"}]})
    assert read(host, "devices", "pt/c1", "devices.deny") == "a\n"
    allow = read(host, "devices", "pt/c1", "devices.allow").split("\n")
    assert allow[:3] == ["b *:* m", "c *:* m", "c 1:3 rwm"]
    assert "c 10:229 rwm" in allow and "c 136:* rwm" in allow and "c 5:1 rwm" not in allow


def test_devices_always_applied(host):
    # runc appends its default allow list whatever the config says: an absent list
    # is "deny everything else", never "allow all"
    m = made(host)
    m.set({})
    assert read(host, "devices", "pt/c1", "devices.deny") == "a\n"
    assert "c 1:3 rwm" in read(host, "devices", "pt/c1", "devices.allow")


def test_devices_bad_rule(host):
    m = made(host)
    with pytest.raises(CgroupError, match=r"^linux.resources.devices\[0\].type: 'p' is not a cgroup device type"):
        m.set({"devices": [{"allow": True, "type": "p"}]})
    with pytest.raises(CgroupError, match=r"devices\[0\].access: 'x' is not"):
        m.set({"devices": [{"allow": True, "type": "c", "access": "x"}]})


def test_unified_on_hybrid_and_v1(host, tmp_path):
    m = made(host)
    m.set({"unified": {"hugetlb.2MB.max": "1024"}})
    assert read(host, "unified", "pt/c1", "hugetlb.2MB.max") == "1024"
    # runc's wording (its suite checks for "invalid configuration")
    with pytest.raises(CgroupError, match=r"^invalid configuration: linux.resources.unified\[memory.max\]: "
                                          r"cannot use unified on cgroup v1 \(memory is a v1 controller"):
        m.set({"unified": {"memory.max": "1"}})
    with pytest.raises(CgroupError, match="must be a file name"):
        m.set({"unified": {"../x": "1"}})
    p = fake.build(tmp_path / "v1", "v1")
    with pytest.raises(CgroupError, match=r"^invalid configuration: linux.resources.unified: cannot use "
                                          r"unified on cgroup v1 \(cgroup2 is not mounted\)"):
        made(p).set({"unified": {"memory.max": "1"}})


def test_freezer(host):
    m = made(host)
    assert not m.paused()
    m.freeze()
    assert read(host, "freezer", "pt/c1", "freezer.state") == "FROZEN"
    assert m.paused()
    m.thaw()
    assert not m.paused()


def test_pids_lists_sub_cgroups(host):
    m = made(host)
    os.makedirs(os.path.join(host, BASE, "unified", "pt/c1/sub"))
    with open(os.path.join(host, BASE, "unified", "pt/c1", "cgroup.procs"), "w") as f:
        f.write("10\n11\n")
    with open(os.path.join(host, BASE, "unified", "pt/c1/sub", "cgroup.procs"), "w") as f:
        f.write("12\n")
    assert sorted(m.pids()) == [10, 11, 12]


def test_update_merges_and_keeps_values(host):
    m = made(host)
    m.set({"memory": {"limit": 100 << 20}, "cpu": {"quota": 20000, "period": 100000, "shares": 512},
           "pids": {"limit": 10}, "devices": []})
    before = read(host, "devices", "pt/c1", "devices.allow")
    # docker's payload: zeros mean unchanged
    m.update({"memory": {"limit": 200 << 20, "reservation": 0, "swap": 300 << 20, "kernel": 0},
              "cpu": {"shares": 256, "quota": 0, "period": 0}, "pids": {"limit": 77}, "blockIO": {"weight": 0},
              "devices": [{"allow": True, "access": "rwm"}]})
    assert read(host, "memory", "pt/c1", "memory.limit_in_bytes") == str(200 << 20)
    assert read(host, "memory", "pt/c1", "memory.memsw.limit_in_bytes") == str(300 << 20)
    assert read(host, "cpu", "pt/c1", "cpu.shares") == "256"
    assert read(host, "cpu", "pt/c1", "cpu.cfs_quota_us") == "20000"
    assert read(host, "pids", "pt/c1", "pids.max") == "77"
    assert read(host, "devices", "pt/c1", "devices.allow") == before  # not updatable (runc)
    r = m.resources
    assert r["memory"] == {"limit": 200 << 20, "swap": 300 << 20}
    assert r["cpu"] == {"quota": 20000, "period": 100000, "shares": 256}
    assert r["pids"] == {"limit": 77} and r["devices"] == []
    assert load_manager(m.to_state()).resources == r


def test_update_memory_unlimited_takes_swap_along(host):
    # `update --memory -1` alone: the old swap limit cannot stay below unlimited memory
    m = made(host)
    m.set({"memory": {"limit": 64 << 20, "swap": 96 << 20}})
    m.update({"memory": {"limit": -1}})
    assert read(host, "memory", "pt/c1", "memory.limit_in_bytes") == "-1"
    assert read(host, "memory", "pt/c1", "memory.memsw.limit_in_bytes") == "-1"
    assert m.resources["memory"] == {"limit": -1, "swap": -1}
    # an explicit swap value is kept
    m.update({"memory": {"limit": 64 << 20, "swap": 96 << 20}})
    m.update({"memory": {"limit": -1, "swap": 128 << 20}})
    assert m.resources["memory"] == {"limit": -1, "swap": 128 << 20}


def test_update_rolls_back(host):
    m = made(host)
    m.set({"cpu": {"shares": 512}, "memory": {"limit": 100 << 20}})
    with pytest.raises(CgroupError, match="cpu-shares"):
        m.update({"memory": {"limit": 50 << 20}, "cpu": {"shares": 1 << 20}})
    assert read(host, "memory", "pt/c1", "memory.limit_in_bytes") == str(100 << 20)
    assert m.resources["memory"] == {"limit": 100 << 20}


def test_check_before_update(host):
    m = made(host)
    with open(os.path.join(host, BASE, "memory", "pt/c1", "memory.usage_in_bytes"), "w") as f:
        f.write("50000000")
    with pytest.raises(CgroupError, match="rejecting memory limit 40000000: not above the current usage 50000000"):
        m.update({"memory": {"limit": 40000000, "checkBeforeUpdate": True}})
    m.update({"memory": {"limit": 40000000}})


def test_stats_runc_shape(host):
    from pyrunc.cgroups import stats

    m = made(host)
    for name, text in (("cpuacct.usage", "123456"), ("cpuacct.usage_percpu", "100000 23456"),
                       ("cpuacct.usage_all", "cpu user system\n0 90000 10000\n1 20000 3456\n"),
                       ("cpuacct.stat", "user 7\nsystem 2\n")):
        with open(os.path.join(host, BASE, "cpuacct", "pt/c1", name), "w") as f:
            f.write(text)
    with open(os.path.join(host, BASE, "cpu", "pt/c1", "cpu.stat"), "w") as f:
        f.write("nr_periods 12\nnr_throttled 3\nthrottled_time 4500\n")
    with open(os.path.join(host, BASE, "memory", "pt/c1", "memory.stat"), "w") as f:
        f.write("cache 4096\nrss 8192\n")
    with open(os.path.join(host, BASE, "memory", "pt/c1", "memory.limit_in_bytes"), "w") as f:
        f.write("9223372036854771712")
    with open(os.path.join(host, BASE, "pids", "pt/c1", "pids.current"), "w") as f:
        f.write("3")
    with open(os.path.join(host, BASE, "pids", "pt/c1", "pids.max"), "w") as f:
        f.write("max")
    d = stats.runc_json(m.stats())
    assert list(d) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert d["cpu"]["usage"] == {"total": 123456, "percpu": [100000, 23456], "percpu_kernel": [10000, 3456],
                                 "percpu_user": [90000, 20000], "kernel": 2 * 10 ** 9 // os.sysconf("SC_CLK_TCK"),
                                 "user": 7 * 10 ** 9 // os.sysconf("SC_CLK_TCK")}
    assert d["cpu"]["throttling"] == {"periods": 12, "throttledPeriods": 3, "throttledTime": 4500}
    assert d["cpuset"]["cpus"] == [0, 1, 2, 3] and d["cpuset"]["mems"] == [0]
    assert d["cpuset"]["sched_load_balance"] == 0 and d["cpuset"]["sched_relax_domain_level"] == 0
    assert d["memory"]["cache"] == 4096 and d["memory"]["raw"] == {"cache": 4096, "rss": 8192}
    assert d["memory"]["usage"]["limit"] == 9223372036854771712
    assert list(d["memory"]["kernelTCP"]) == ["limit", "failcnt"]  # zeros omitted, as runc
    assert d["pids"] == {"current": 3}
    assert d["network_interfaces"] is None and d["intel_rdt"] == {}
