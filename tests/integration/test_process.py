"""What the container process gets: user, groups, capabilities, rlimits, env, cwd,
hostname, fds, mounts, devices, masked and read-only paths."""
import os
import subprocess

import pytest

from tests.conftest import PYRUNC, in_userns, requires_root

pytestmark = requires_root


def run_out(runtime, bundle, script, expect_rc=0):
    bundle.args("/bin/sh", "-c", script)
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == expect_rc, (r.returncode, r.stdout, r.stderr)
    return r.stdout


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in %r" % (name, text))


def test_user_groups_and_umask(runtime, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7],
                                        "umask": 0o077}
    out = run_out(runtime, bundle, "id -u; id -g; id -G; umask")
    lines = out.split()
    assert lines[0] == "1000" and lines[1] == "1001"
    assert set(lines[2:-1]) == {"1001", "5", "7"}
    assert lines[-1] == "0077"


def test_capabilities_all_sets(runtime, bundle):
    caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["capabilities"] = {
        "bounding": caps + ["CAP_CHOWN"], "effective": caps, "permitted": caps,
        "inheritable": caps, "ambient": caps}
    out = run_out(runtime, bundle, "cat /proc/self/status")
    want = (1 << 5) | (1 << 10)
    assert int(status_field(out, "CapBnd"), 16) == want | 1
    assert int(status_field(out, "CapEff"), 16) == want
    assert int(status_field(out, "CapPrm"), 16) == want
    assert int(status_field(out, "CapInh"), 16) == want
    assert int(status_field(out, "CapAmb"), 16) == want


def test_no_new_privileges(runtime, bundle):
    bundle.config["process"]["noNewPrivileges"] = True
    out = run_out(runtime, bundle, "cat /proc/self/status")
    assert status_field(out, "NoNewPrivs") == "1"
    bundle.config["process"]["noNewPrivileges"] = False
    out = run_out(runtime, bundle, "cat /proc/self/status")
    assert status_field(out, "NoNewPrivs") == "0"


def test_rlimits(runtime, bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                                           {"type": "RLIMIT_NPROC", "soft": 77, "hard": 88}]
    out = run_out(runtime, bundle, "ulimit -n; ulimit -Hn; ulimit -u")
    assert out.split() == ["123", "456", "77"]


def test_env_cwd_hostname_args(runtime, bundle):
    bundle.config["process"]["env"] = ["PATH=/bin", "FOO=bar baz"]
    bundle.config["process"]["cwd"] = "/tmp/work"
    bundle.config["hostname"] = "box1"
    out = run_out(runtime, bundle, 'echo "$FOO"; pwd; hostname; echo "$0"')
    assert out.splitlines() == ["bar baz", "/tmp/work", "box1", "/bin/sh"]


def test_path_lookup_of_args0(runtime, bundle):
    bundle.config["process"]["env"] = ["PATH=/nowhere:/bin"]
    bundle.args("echo", "found via PATH")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "found via PATH\n"


def test_only_stdio_and_preserved_fds_reach_the_container(runtime, bundle, tmp_path):
    # leak fds 3..6 into pyrunc, preserve 2 of them (3, 4)
    import subprocess
    from tests.conftest import PYRUNC

    bundle.args("/bin/ls", "/proc/self/fd")
    files = [open(tmp_path / ("f%d" % i), "w") for i in range(4)]
    fds = [f.fileno() for f in files]
    try:
        def dup_low():
            for i, fd in enumerate(fds):
                os.dup2(fd, 3 + i)

        r = subprocess.run([PYRUNC, "--root", runtime.root, "run", "--preserve-fds", "2", "-b",
                            bundle.path, bundle.id], capture_output=True, text=True,
                           preexec_fn=dup_low, close_fds=False)
    finally:
        for f in files:
            f.close()
    assert r.returncode == 0, r.stderr
    # ls itself opens one fd for the directory it lists
    seen = sorted(int(x) for x in r.stdout.split())
    assert seen[:5] == [0, 1, 2, 3, 4]
    assert len(seen) == 6, seen


def test_stdio_passes_through_unchanged(runtime, bundle, tmp_path):
    import subprocess
    from tests.conftest import PYRUNC

    bundle.args("/bin/sh", "-c", "readlink /proc/self/fd/1; echo to-stderr >&2")
    out_path = tmp_path / "out.txt"
    with open(out_path, "w") as out:
        p = subprocess.run([PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id],
                           stdout=out, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0
    # the container wrote straight into our file (no pipe or copy in between)
    assert out_path.read_text().strip().endswith("out.txt")
    assert p.stderr == "to-stderr\n"


def test_a_non_root_process_can_reopen_its_stdio(runtime, bundle, tmp_path):
    # as runc and crun: stdio is made the process user's before the switch, so that
    # `echo > /dev/stdout` (a reopen through /proc/self/fd, which checks the inode's
    # permissions) works for a program logging there as a non-root user; never a
    # character device: not /dev/null, not the caller's terminal (runc once chowned
    # the host's /dev/null through an exec's redirected stdin)
    import subprocess
    from tests.conftest import PYRUNC

    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.args("/bin/sh", "-c", "echo to-pipe > /dev/stdout && echo to-file > /dev/stderr && echo ok")
    err_path = tmp_path / "err.txt"
    null = os.stat("/dev/null")
    with open(err_path, "w") as err, open("/dev/null") as stdin:
        p = subprocess.run([PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id],
                           stdin=stdin, stdout=subprocess.PIPE, stderr=err, text=True)
    assert p.returncode == 0, err_path.read_text()
    assert p.stdout == "to-pipe\nok\n"
    assert err_path.read_text() == "to-file\n"
    # the file given as stderr is the user's now (the group stays), as with runc
    st = os.stat(err_path)
    assert (st.st_uid, st.st_gid) == (1000, 0)
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, after.st_mode) == (null.st_uid, null.st_gid, null.st_mode)


def test_stdio_is_given_before_the_containers_seccomp_filter(runtime, bundle):
    # without noNewPrivileges the filter is loaded before the user switch; fchown of
    # stdio comes before it, so a profile refusing fchown cannot fail the create
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["fchown"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    bundle.args("/bin/sh", "-c", "echo to-pipe > /dev/stdout")
    p = subprocess.run([PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, "to-pipe\n"), p.stderr


def test_an_exec_as_non_root_can_reopen_its_stdio(runtime, bundle):
    import subprocess
    from tests.conftest import PYRUNC

    bundle.args("sleep", "100")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    try:
        p = subprocess.run([PYRUNC, "--root", runtime.root, "exec", "--user", "1000:1000", bundle.id,
                            "sh", "-c", "echo to-pipe > /dev/stdout"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert (p.returncode, p.stdout) == (0, "to-pipe\n"), p.stderr
    finally:
        assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_a_new_network_namespace_has_its_loopback_up(runtime, bundle, tmp_path):
    # as runc (its "loopback" network for every new netns): a program talking to
    # 127.0.0.1 works without a network plugin; lo's flags are IFF_UP|IFF_LOOPBACK
    bundle.args("cat", "/sys/class/net/lo/flags")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout, 16) & 0x9 == 0x9, r.stdout
    # a network namespace joined by path is left as its owner made it
    netns = tmp_path / "netns"
    netns.touch()
    subprocess.run(["unshare", "--net=%s" % netns, "true"], check=True)
    try:
        for ns in bundle.config["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = str(netns)
        bundle.id += "-joined"
        bundle.save()
        r = runtime.run("run", "-b", bundle.path, bundle.id)
        assert r.returncode == 0, r.stderr
        assert int(r.stdout, 16) & 0x1 == 0, r.stdout
    finally:
        subprocess.run(["umount", str(netns)], check=True)


def test_mounts_devices_and_proc(runtime, bundle):
    bundle.config["root"]["readonly"] = True
    out = run_out(runtime, bundle, "ls /dev; cat /proc/self/mountinfo; echo x > /dev/null; "
                                   "head -c 4 /dev/zero | wc -c; readlink /dev/ptmx; readlink /dev/fd")
    for node in ("null", "zero", "full", "tty", "random", "urandom", "pts", "shm", "mqueue"):
        assert node in out.split(), node
    assert "\n4\n" in out
    assert "pts/ptmx\n/proc/self/fd" in out
    mounts = [line.split() for line in out.splitlines() if " - " in line]
    targets = {m[4]: m for m in mounts}
    for t in ("/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        assert t in targets, t
    assert targets["/"][5].startswith("ro")
    assert targets["/sys"][5].startswith("ro")


def test_bind_mount_file_and_dir_readonly(runtime, bundle, tmp_path):
    src_dir = tmp_path / "share"
    src_dir.mkdir()
    (src_dir / "data.txt").write_text("shared\n")
    src_file = tmp_path / "single"
    src_file.write_text("one file\n")
    bundle.config["mounts"] += [
        {"destination": "/mnt/share", "type": "bind", "source": str(src_dir), "options": ["rbind", "ro"]},
        {"destination": "/etc/single", "type": "none", "source": str(src_file), "options": ["bind"]},
    ]
    out = run_out(runtime, bundle, "cat /mnt/share/data.txt /etc/single; "
                                   "touch /mnt/share/new 2>/dev/null && echo writable || echo readonly; "
                                   "echo changed > /etc/single; cat /etc/single")
    assert out == "shared\none file\nreadonly\nchanged\n"
    assert src_file.read_text() == "changed\n"
    assert not (src_dir / "new").exists()


def test_mount_destination_symlink_to_host_root_stays_inside(runtime, bundle, tmp_path):
    """A destination that is (or crosses) a symlink to / must land inside the rootfs."""
    os.symlink("/", os.path.join(bundle.rootfs, "escape"))
    os.symlink("../../../../../../etc", os.path.join(bundle.rootfs, "up"))
    bundle.config["mounts"] += [
        {"destination": "/escape/tmp/planted", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/up/planted2", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    ]
    bundle.config["root"]["readonly"] = False
    run_out(runtime, bundle, "true")
    assert not os.path.exists("/tmp/planted")
    assert not os.path.exists("/etc/planted2")
    assert os.path.isdir(os.path.join(bundle.rootfs, "tmp", "planted"))
    assert os.path.isdir(os.path.join(bundle.rootfs, "etc", "planted2"))


def test_masked_and_readonly_paths(runtime, bundle):
    out = run_out(runtime, bundle, "cat /proc/timer_list 2>/dev/null | wc -c; ls /sys/firmware | wc -l; "
                                   "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo rw || echo ro")
    assert out.split() == ["0", "0", "ro"]


def test_devices_from_config(runtime, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 12, "gid": 34},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o600},
    ]
    out = run_out(runtime, bundle, "stat -c '%F %a %u %g %t %T' /dev/mydev /dev/myfifo")
    assert out.splitlines() == ["character special file 640 12 34 1 3", "fifo 600 0 0 0 0"]


def test_namespaces_are_new(runtime, bundle):
    out = run_out(runtime, bundle, "echo $$; for n in net uts ipc mnt pid; do readlink /proc/self/ns/$n; done")
    lines = out.split()
    assert lines[0] == "1"  # pid 1 in its own pid namespace
    for got, ns in zip(lines[1:], ("net", "uts", "ipc", "mnt", "pid")):
        assert got != os.readlink("/proc/self/ns/" + ns), ns


def test_joining_an_existing_namespace_by_path(runtime, bundle, tmp_path):
    """linux.namespaces[].path: join the uts namespace of another container."""
    import json
    import shutil
    from tests.conftest import Bundle, new_id

    # container A, with its own hostname, keeps running
    bundle.config["hostname"] = "first"
    bundle.args("/bin/sleep", "100")
    assert runtime.run("run", "-d", "-b", bundle.path, bundle.id).returncode == 0
    pid = runtime.state(bundle.id)["pid"]
    # container B joins A's uts namespace: it must see A's hostname
    bpath = str(tmp_path / "b2")
    os.makedirs(bpath)
    shutil.copytree(bundle.rootfs, os.path.join(bpath, "rootfs"), symlinks=True)
    b2 = Bundle(bpath, new_id())
    b2.config.pop("hostname", None)
    for ns in b2.config["linux"]["namespaces"]:
        if ns["type"] == "uts":
            ns["path"] = "/proc/%d/ns/uts" % pid
    b2.args("/bin/hostname")
    r = runtime.run("run", "-b", bpath, b2.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "first\n"
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_user_namespace_with_mappings(runtime, bundle):
    with in_userns(bundle):
        out = run_out(runtime, bundle, "id -u; cat /proc/self/uid_map; ls -l /dev/null")
    lines = out.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "100000", "65536"]
    # devices are bind mounts of the host nodes in a user namespace
    assert lines[2].startswith("c")


def test_time_namespace_offsets(runtime, bundle):
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400, "nanosecs": 0},
                                             "monotonic": {"secs": 3600}}
    out = run_out(runtime, bundle, "cat /proc/uptime; cat /proc/self/timens_offsets")
    lines = out.splitlines()
    assert float(lines[0].split()[0]) >= host_uptime + 86400
    assert lines[1].split() == ["monotonic", "3600", "0"]
    assert lines[2].split() == ["boottime", "86400", "0"]


def test_oom_score_adj_personality_domainname_sysctl(runtime, bundle):
    bundle.config["process"]["oomScoreAdj"] = 123
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    bundle.config["domainname"] = "example.org"
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
    out = run_out(runtime, bundle, "cat /proc/self/oom_score_adj; uname -m; cat /proc/sys/kernel/domainname; "
                                   "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax")
    assert out.split() == ["123", "i686", "example.org", "1", "4096"]


def test_no_pivot(runtime, bundle):
    bundle.args("/bin/sh", "-c", "cat /proc/self/mountinfo | head -1; ls /")
    r = runtime.run("run", "--no-pivot", "-b", bundle.path, bundle.id)
    assert r.returncode == 0, r.stderr
    assert "busybox" not in r.stdout  # we see the rootfs's top level, not the host's
    assert "bin" in r.stdout.split()


def test_rootfs_propagation(runtime, bundle):
    # every propagation must get through pivot_root (shared ones need the rootfs's
    # parent mount made private first); whether "/" then shows a master or peer group
    # depends on the host's own propagation (private on hosts without systemd)
    for prop in ("rprivate", "rslave", "rshared", "shared", "private", "slave"):
        bundle.config["linux"]["rootfsPropagation"] = prop
        out = run_out(runtime, bundle, "cat /proc/self/mountinfo")
        assert any(line.split()[4] == "/" for line in out.splitlines()), prop


def test_recursive_mount_attributes_reach_submounts(runtime, bundle, tmp_path):
    import subprocess

    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src / "sub")], check=True)
    try:
        bundle.config["mounts"].append({"destination": "/mnt/tree", "type": "bind", "source": str(src),
                                        "options": ["rbind", "rro", "rnosuid"]})
        out = run_out(runtime, bundle, "touch /mnt/tree/a 2>/dev/null && echo top-rw || echo top-ro; "
                                       "touch /mnt/tree/sub/b 2>/dev/null && echo sub-rw || echo sub-ro; "
                                       "grep /mnt/tree/sub /proc/self/mountinfo")
        lines = out.splitlines()
        assert lines[:2] == ["top-ro", "sub-ro"]
        assert "nosuid" in lines[2]
    finally:
        subprocess.run(["umount", str(src / "sub")], check=True)


def test_unsupported_mount_option_is_refused(runtime, bundle):
    # tmpcopyup is implemented now (test_spec_features); idmap works on binds only
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["idmap"]})
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, bundle.id)
    assert r.returncode == 1 and "only supported for bind mounts" in r.stderr
