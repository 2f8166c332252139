"""Where the container's cgroups go: runc 1.1's rules for absolute, relative and
default cgroupsPath on v1, hybrid and v2 hosts (fake hosts in tmp_path)."""
import pytest

from pyrunc.cgroups import CgroupError, create_manager, fake, fs, load_manager


def rels(m):
    return {h.mnt[len(m.prefix):]: h.rel for h in m.hs}


def test_mode_detection(tmp_path):
    assert create_manager("/a", "c", prefix=fake.build(tmp_path / "1", "v1")).mode == "v1"
    assert create_manager("/a", "c", prefix=fake.build(tmp_path / "2", "hybrid")).mode == "hybrid"
    assert create_manager("/a", "c", prefix=fake.build(tmp_path / "3", "v2")).mode == "v2"


def test_absolute_path_is_taken_from_every_mount_point(tmp_path):
    p = fake.build(tmp_path, "hybrid", own={"memory": "/process_api/xyz", "": "/elsewhere/me"})
    m = create_manager("/default/c1", "c1", prefix=p)
    assert set(rels(m).values()) == {"default/c1"}
    assert "/sys/fs/cgroup/unified" in rels(m) and "/sys/fs/cgroup/memory" in rels(m)
    assert m.paths["/sys/fs/cgroup/memory"] == "/sys/fs/cgroup/memory/default/c1"


def test_relative_path_v1_is_below_our_own_cgroup_hybrid_unified_is_not(tmp_path):
    # observed with runc 1.1.5 on this host: memory under our own memory cgroup,
    # pids under our pids cgroup, but cgroup2 at <mount>/<path> whatever ours is
    p = fake.build(tmp_path, "hybrid", own={"memory": "/process_api/xyz", "pids": "/cgt/sub", "": "/cgt/sub"})
    r = rels(create_manager("rel/x", "c1", prefix=p))
    assert r["/sys/fs/cgroup/memory"] == "process_api/xyz/rel/x"
    assert r["/sys/fs/cgroup/pids"] == "cgt/sub/rel/x"
    assert r["/sys/fs/cgroup/cpu"] == "rel/x"
    assert r["/sys/fs/cgroup/unified"] == "rel/x"


def test_default_path_is_the_id_relative(tmp_path):
    p = fake.build(tmp_path, "v1", own={"memory": "/process_api/xyz"})
    r = rels(create_manager(None, "c42", prefix=p))
    assert r["/sys/fs/cgroup/memory"] == "process_api/xyz/c42"
    assert r["/sys/fs/cgroup/devices"] == "c42"
    assert r["/sys/fs/cgroup/systemd"] == "c42"


def test_relative_cannot_climb_out(tmp_path):
    p = fake.build(tmp_path, "v1", own={"pids": "/a/b"})
    r = rels(create_manager("../../../esc/z", "c", prefix=p))
    assert r["/sys/fs/cgroup/pids"] == "a/b/esc/z"
    assert r["/sys/fs/cgroup/cpu"] == "esc/z"
    r = rels(create_manager("/x/../../y/./z", "c", prefix=p))
    assert r["/sys/fs/cgroup/pids"] == "y/z"


def test_v2_relative_is_below_the_parent_of_our_cgroup(tmp_path):
    # fs2/defaultpath.go: our own cgroup holds processes and could not enable
    # controllers for a child, so runc goes one level up
    p = fake.build(tmp_path, "v2", own={"": "/user.slice/user-0.slice/session-1.scope"})
    assert rels(create_manager(None, "c7", prefix=p)) == {"/sys/fs/cgroup": "user.slice/user-0.slice/c7"}
    assert rels(create_manager("a/b", "c7", prefix=p)) == {"/sys/fs/cgroup": "user.slice/user-0.slice/a/b"}
    assert rels(create_manager("/a/b", "c7", prefix=p)) == {"/sys/fs/cgroup": "a/b"}


def test_v2_in_the_root_cgroup(tmp_path):
    p = fake.build(tmp_path, "v2")
    assert rels(create_manager(None, "c7", prefix=p)) == {"/sys/fs/cgroup": "c7"}


def test_root_cgroup_is_refused(tmp_path):
    p = fake.build(tmp_path, "v1")
    for path in ("/", "/..", "/./"):
        with pytest.raises(CgroupError, match="root cgroup"):
            create_manager(path, "c", prefix=p)


def test_nested_mount_root(tmp_path):
    # inside a container, mountinfo shows the mount's root as /docker/abc while
    # /proc/self/cgroup names the full path
    p = fake.build(tmp_path, "v1", own={"memory": "/docker/abc/inner"})
    mi = (tmp_path / "proc/self/mountinfo").read_text()
    mi = mi.replace(" / /sys/fs/cgroup/memory ", " /docker/abc /sys/fs/cgroup/memory ")
    (tmp_path / "proc/self/mountinfo").write_text(mi)
    assert rels(create_manager("x", "c", prefix=p))["/sys/fs/cgroup/memory"] == "inner/x"


def test_comounted_controllers_and_ignored_hierarchies(tmp_path):
    p = fake.build(tmp_path, "v1", v1_layout={"cpu,cpuacct": ["cpu", "cpuacct"], "memory": ["memory"],
                                              "devices": ["devices"]}, own={"cpu": "/mine"})
    mi = (tmp_path / "proc/self/mountinfo").read_text()
    # a misc hierarchy, a named one and a bind mount of memory elsewhere: not used
    mi += ("60 31 0:60 / /sys/fs/cgroup/misc rw - cgroup cgroup rw,misc\n"
           "61 31 0:61 / /sys/fs/cgroup/foo rw - cgroup cgroup rw,name=foo\n"
           "62 25 0:31 / /mnt/memory-again rw - cgroup cgroup rw,memory\n")
    (tmp_path / "proc/self/mountinfo").write_text(mi)
    m = create_manager("rel", "c", prefix=p)
    assert rels(m) == {"/sys/fs/cgroup/cpu,cpuacct": "mine/rel", "/sys/fs/cgroup/memory": "rel",
                       "/sys/fs/cgroup/devices": "rel"}
    assert m.by_ctrl["cpuacct"] is m.by_ctrl["cpu"]


def test_mountinfo_escapes():
    assert fs._unescape(r"/a\040b\134c") == "/a b\\c"


def test_no_cgroup_mounted(tmp_path):
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text("25 1 0:20 / / rw - ext4 /dev/vda rw\n")
    with pytest.raises(CgroupError, match="no cgroup filesystem is mounted"):
        create_manager(None, "c", prefix=str(tmp_path))


def test_state_round_trip(tmp_path):
    p = fake.build(tmp_path, "hybrid")
    m = create_manager("/a/c", "c", prefix=p)
    m.create()
    m.set({"pids": {"limit": 5}})
    st = m.to_state()
    m2 = load_manager(st)
    assert rels(m2) == rels(m) and m2.mode == "hybrid" and m2.resources == {"pids": {"limit": 5}}
    assert [h.made for h in m2.hs] == [["a", "a/c"]] * len(m.hs)
    m2.destroy()
    assert not (tmp_path / "sys/fs/cgroup/pids/a").exists()


def test_foundation_state_format_still_loads(tmp_path):
    # state.json written by the foundation's manager (containers created before)
    st = {"paths": {"/sys/fs/cgroup/pids": ["/sys/fs/cgroup/pids/x/c", 1, ["pids"]],
                    "/sys/fs/cgroup/unified": ["/sys/fs/cgroup/unified/x/c", 2, []]},
          "made": ["/sys/fs/cgroup/pids/x", "/sys/fs/cgroup/pids/x/c", "/sys/fs/cgroup/unified/x/c"]}
    m = load_manager(st)
    assert m.mode == "hybrid"
    assert [(h.rel, h.made) for h in m.hs] == [("x/c", ["x", "x/c"]), ("x/c", ["x/c"])]


def test_systemd_paths(tmp_path):
    from pyrunc.cgroups import systemd

    assert systemd.parse_path("machine.slice:libpod:abc", "abc") == ("machine.slice", "libpod", "abc")
    assert systemd.parse_path(None, "abc") == ("system.slice", "pyrunc", "abc")
    assert systemd.unit_name("libpod", "abc") == "libpod-abc.scope"
    for bad in ("/a/b", "a:b", "x:y:z", "m.slice:a/b:c"):
        with pytest.raises(CgroupError, match="linux.cgroupsPath"):
            systemd.parse_path(bad, "c")
    (tmp_path / "proc/self").mkdir(parents=True)
    with pytest.raises(CgroupError) as e:
        create_manager("machine.slice:libpod:abc", "abc", systemd=True, prefix=str(tmp_path))
    assert "no systemd is reachable" in str(e.value) and "libpod-abc.scope" in str(e.value)
    assert "\n" not in str(e.value)
