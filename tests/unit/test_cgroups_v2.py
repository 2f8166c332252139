"""cgroup v2 manager on a fake host: controller enabling, runc's conversions, files."""
import os

import pytest

from pyrunc.cgroups import CgroupError, create_manager, fake
from pyrunc.cgroups.v2 import cpu as v2cpu
from pyrunc.cgroups.v2 import io as v2io
from pyrunc.cgroups.v2 import memory as v2mem

BASE = "sys/fs/cgroup"


@pytest.fixture
def host(tmp_path):
    return fake.build(tmp_path / "host", "v2")


def read(prefix, rel, name):
    with open(os.path.join(prefix, BASE, rel, name)) as f:
        return f.read()


def made(prefix, rel="pt/c1"):
    m = create_manager("/" + rel, "c1", prefix=prefix)
    m.create()
    return m


def test_create_enables_every_controller_down_to_the_parent(host):
    m = made(host)
    assert m.hs[0].made == ["pt", "pt/c1"]
    everything = "cpu cpuset hugetlb io memory pids rdma"
    assert read(host, "", "cgroup.subtree_control") == everything
    assert read(host, "pt", "cgroup.subtree_control") == everything
    assert read(host, "pt/c1", "cgroup.subtree_control") == ""  # the leaf holds the processes
    assert read(host, "pt/c1", "cgroup.controllers") == everything


def test_shares_to_weight_as_runc_1_1():
    assert [v2cpu.shares_to_weight(s) for s in (0, 2, 512, 1024, 262144)] == [0, 1, 20, 39, 10000]
    assert v2cpu.shares_to_weight(1) == 1 and v2cpu.shares_to_weight(1 << 30) == 10000


def test_blkio_weight_conversion():
    assert [v2io.blkio_to_io_weight(w) for w in (0, 10, 100, 500, 1000)] == [0, 1, 910, 4950, 10000]


def test_swap_conversion():
    assert v2mem.swap_v2(0, -1) == -1
    assert v2mem.swap_v2(-1, 100) == -1
    assert v2mem.swap_v2(300, 100) == 200
    assert v2mem.swap_v2(100, 100) == 0
    with pytest.raises(CgroupError, match="must not be below the memory limit"):
        v2mem.swap_v2(50, 100)
    with pytest.raises(CgroupError, match="needs a memory limit"):
        v2mem.swap_v2(50, 0)


def test_memory(host):
    m = made(host)
    m.set({"memory": {"limit": 100 << 20, "swap": 300 << 20, "reservation": 50 << 20, "swappiness": 10,
                      "disableOOMKiller": True}})
    assert read(host, "pt/c1", "memory.max") == str(100 << 20)
    assert read(host, "pt/c1", "memory.swap.max") == str(200 << 20)
    assert read(host, "pt/c1", "memory.low") == str(50 << 20)
    m.set({"memory": {"limit": 100 << 20, "swap": 100 << 20}})
    assert read(host, "pt/c1", "memory.swap.max") == "0"
    m.set({"memory": {"limit": -1}})
    assert read(host, "pt/c1", "memory.max") == "max" and read(host, "pt/c1", "memory.swap.max") == "max"


def test_no_swap_accounting(host):
    m = made(host)
    os.unlink(os.path.join(host, BASE, "pt/c1", "memory.swap.max"))
    m.set({"memory": {"limit": -1}})  # "max" swap without swap accounting: moot
    with pytest.raises(CgroupError, match=r"^linux.resources.memory.swap: write 100 to .*memory.swap.max: no such"):
        m.set({"memory": {"limit": 100, "swap": 200}})


def test_cpu(host):
    m = made(host)
    m.set({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 2000, "idle": 0,
                   "cpus": "0-1", "mems": "0"}})
    assert read(host, "pt/c1", "cpu.weight") == "39"
    assert read(host, "pt/c1", "cpu.max") == "50000 100000"
    assert read(host, "pt/c1", "cpu.max.burst") == "2000"
    assert read(host, "pt/c1", "cpu.idle") == "0"
    assert read(host, "pt/c1", "cpuset.cpus") == "0-1"
    m.set({"cpu": {"period": 200000}})
    assert read(host, "pt/c1", "cpu.max") == "max 200000"
    m.set({"cpu": {"quota": 30000}})
    assert read(host, "pt/c1", "cpu.max") == "30000"


def test_realtime_is_refused(host):
    m = made(host)
    with pytest.raises(CgroupError, match="^linux.resources.cpu.realtimeRuntime: cgroup v2 has no realtime"):
        m.set({"cpu": {"realtimeRuntime": 1000}})


def test_io(host):
    m = made(host)
    m.set({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1 << 20}],
                       "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 50}]}})
    assert read(host, "pt/c1", "io.weight") == "8:0 910"  # the last write; weight was 4950
    assert read(host, "pt/c1", "io.max") == "8:0 wiops=50"


def test_io_bfq(host):
    m = made(host)
    open(os.path.join(host, BASE, "pt/c1", "io.bfq.weight"), "w").close()
    m.set({"blockIO": {"weight": 500}})
    assert read(host, "pt/c1", "io.bfq.weight") == "500"


def test_pids_hugetlb_rdma(host):
    m = made(host)
    m.set({"pids": {"limit": 100}, "hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}],
           "rdma": {"mlx4_0": {"hcaObjects": 7}}})
    assert read(host, "pt/c1", "pids.max") == "100"
    assert read(host, "pt/c1", "hugetlb.2MB.max") == str(2 << 20)
    assert read(host, "pt/c1", "rdma.max") == "mlx4_0 hca_object=7"


def test_v1_only_fields_are_ignored(host):
    # runc ignores these on cgroup2: there is no file for them
    m = made(host)
    m.set({"memory": {"swappiness": 10, "disableOOMKiller": True, "useHierarchy": True},
           "network": {"classID": 5, "priorities": [{"name": "eth0", "priority": 1}]}})


def test_controller_not_available(tmp_path):
    p = fake.build(tmp_path, "v2", v2=["cpu", "memory"])
    m = made(p)
    with pytest.raises(CgroupError) as e:
        m.set({"pids": {"limit": 10}})
    assert str(e.value) == ("linux.resources.pids: the pids controller is not available in %s/%s/pt/c1 "
                            "(cgroup.controllers: cpu memory)" % (p, BASE))


def test_unified(host):
    m = made(host)
    m.set({"memory": {"limit": 1 << 20}, "unified": {"memory.max": "2097152", "memory.high": "max"}})
    assert read(host, "pt/c1", "memory.max") == "2097152"  # unified goes last and wins
    with pytest.raises(CgroupError, match=r"^linux.resources.unified\[foo.bar\]: controller foo is not available"):
        m.set({"unified": {"foo.bar": "1"}})


def test_devices_program_is_built(host):
    m = made(host)
    m.set({"devices": [{"allow": False, "access": "rwm"}]})
    assert m.device_program[-1] == (0x95, 0, 0, 0, 0)
    assert len(m.device_program) > 20


def test_freezer_v2(host):
    m = made(host)
    m.freeze()
    assert read(host, "pt/c1", "cgroup.freeze") == "1" and m.paused()
    m.thaw()
    assert not m.paused()


def test_stats_v2(host):
    from pyrunc.cgroups import stats

    m = made(host)
    for name, text in (("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
                                     "nr_throttled 1\nthrottled_usec 20\n"),
                       ("memory.current", "4096"), ("memory.max", "max"), ("memory.stat", "anon 4096\nfile 8192\n"),
                       ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
                       ("memory.swap.current", "0"), ("memory.swap.max", "max"),
                       ("pids.current", "2"), ("pids.max", "50"),
                       ("io.stat", "8:0 rbytes=4096 wbytes=0 rios=1 wios=0\n")):
        with open(os.path.join(host, BASE, "pt/c1", name), "w") as f:
            f.write(text)
    d = stats.runc_json(m.stats())
    assert d["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                        "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 20000}}
    assert d["memory"]["cache"] == 8192
    assert d["memory"]["usage"] == {"limit": 18446744073709551615, "usage": 4096, "failcnt": 2}
    assert d["memory"]["swap"]["limit"] == 18446744073709551615
    assert d["pids"] == {"current": 2, "limit": 50}
    # runc's BlkioEntry fields are all omitempty: minor 0 and value 0 vanish
    assert d["blkio"]["ioServiceBytesRecursive"] == [{"major": 8, "op": "Read", "value": 4096},
                                                     {"major": 8, "op": "Write"}]
    assert m.oom_kills() == 1
