"""linux.seccomp in real containers: what the container's system calls get back.

Each test runs pyrunc on a busybox bundle with tests/seccomp/sysprobe (built static
here) in its rootfs: sysprobe makes raw system calls and prints what the kernel
answered, so the tests check exact errno values, not a shell's rewording of them.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT_DIR, cgroup_dirs, mounts_under, requires_root

pytestmark = requires_root

DOCKER_LIKE = os.path.join(ROOT_DIR, "tests", "data", "seccomp-docker-like.json")

SIGSYS_STATUS = 128 + signal.SIGSYS
ENOSYS = 38


def run(runtime, b, args, seccomp, expect_rc=0, nnp=None):
    b.config["process"]["args"] = list(args)
    b.config["linux"]["seccomp"] = seccomp
    if nnp is not None:
        b.config["process"]["noNewPrivileges"] = nnp
    b.save()
    r = runtime.run("run", "-b", b.path, b.id)
    assert r.returncode == expect_rc, (r.returncode, r.stdout, r.stderr)
    return r


def probe(runtime, b, calls, seccomp, **kw):
    r = run(runtime, b, ["/bin/sysprobe"] + list(calls), seccomp, **kw)
    return [int(x) for x in r.stdout.split()]


def allow_but(rules, **extra):
    return dict({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}, **extra)


def docker_like():
    with open(DOCKER_LIKE) as f:
        return json.load(f)


# ---- errno ----

@pytest.mark.parametrize("nnp", [False, True])
def test_denied_call_returns_the_configured_errno(runtime, box, nnp):
    # noNewPrivileges decides when the child loads the filter (before or after it
    # drops capabilities): both must give the container the same answers
    prof = allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
                      {"names": ["getuid"], "action": "SCMP_ACT_ERRNO"}])
    assert probe(runtime, box, ["getppid", "getuid", "getpgid:0"], prof, nnp=nnp) == [-42, -1, 1]


def test_busybox_sees_the_errno(runtime, box):
    prof = allow_but([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 100}])
    r = run(runtime, box, ["/bin/sh", "-c", "mkdir /tmp/foo"], prof, expect_rc=1)
    assert "Network is down" in r.stderr


def test_default_errno_ret(runtime, box):
    prof = docker_like()
    prof["defaultErrnoRet"] = 6
    # kexec_load is below the profile's highest call and not allowed: the default
    assert probe(runtime, box, ["getppid", "246:0:0:0:0"], prof) == [0, -6]


# ---- kill, trap ----

@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_process_with_sigsys(runtime, box, action):
    box.config["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    prof = allow_but([{"names": ["getppid"], "action": action}])
    r = run(runtime, box, ["/bin/sysprobe", "getpid", "getppid", "getpid"], prof,
            expect_rc=SIGSYS_STATUS)
    assert r.stdout == "1\n"   # the first call answered, the second never returned


def test_kill_in_a_child_leaves_the_shell(runtime, box):
    prof = allow_but([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}])
    r = run(runtime, box, ["/bin/sh", "-c", "mkdir /tmp/x; echo status $?"], prof)
    assert r.stdout == "status %d\n" % SIGSYS_STATUS


# ---- log ----

class Kmsg:
    """the kernel log from now on (audit records of seccomp land there without auditd)"""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def read(self, until=None, window=2.0):
        """records from now on: until `until(lines)` holds (the audit record is
        written asynchronously, and other kernel messages may come first), or for
        the whole window when no condition is given"""
        lines = []
        deadline = time.monotonic() + window
        while True:
            try:
                lines.append(os.read(self.fd, 8192).decode(errors="replace"))
                continue
            except BlockingIOError:
                pass
            except OSError:  # EPIPE: records overwritten while we read; keep going
                continue
            if (until is not None and until(lines)) or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def close(self):
        os.close(self.fd)


def seccomp_records(lines, syscall_nr):
    return [line for line in lines if "type=1326" in line and 'comm="sysprobe"' in line
            and " syscall=%d " % syscall_nr in line]


@pytest.fixture
def kmsg():
    try:
        with open("/proc/sys/kernel/seccomp/actions_logged") as f:
            logged = f.read().split()
        k = Kmsg()
    except OSError as err:
        pytest.skip("kernel log not readable (/dev/kmsg or seccomp sysctl: %s)" % err)
    if "log" not in logged or "errno" not in logged:
        k.close()
        pytest.skip("kernel.seccomp.actions_logged lacks log/errno: %s" % logged)
    yield k
    k.close()


NR_GETPPID = 110
NR_GETUID = 102


def test_log_action_logs_and_allows(runtime, box, kmsg):
    prof = allow_but([{"names": ["getppid"], "action": "SCMP_ACT_LOG"}])
    assert probe(runtime, box, ["getppid"], prof) == [0]  # allowed: pid 1's parent is 0
    lines = kmsg.read(until=lambda lines: seccomp_records(lines, NR_GETPPID))
    recs = seccomp_records(lines, NR_GETPPID)
    if not recs and not any("type=1326" in line for line in lines):
        pytest.skip("the kernel writes no seccomp audit records (CONFIG_AUDITSYSCALL off?)")
    assert recs and "code=0x7ffc0000" in recs[0]


def test_log_flag_logs_errno_actions(runtime, box, kmsg):
    prof = allow_but([{"names": ["getuid"], "action": "SCMP_ACT_ERRNO"}], flags=[])
    assert probe(runtime, box, ["getuid"], prof) == [-1]
    quiet = seccomp_records(kmsg.read(window=0.5), NR_GETUID)
    prof["flags"] = ["SECCOMP_FILTER_FLAG_LOG"]
    assert probe(runtime, box, ["getuid"], prof) == [-1]
    loud = seccomp_records(kmsg.read(until=lambda lines: seccomp_records(lines, NR_GETUID)), NR_GETUID)
    if not loud:
        pytest.skip("the kernel writes no seccomp audit records (CONFIG_AUDITSYSCALL off?)")
    assert quiet == []
    assert "code=0x50000" in loud[0]


# ---- arguments ----

def test_argument_conditions_match_only_the_right_values(runtime, box):
    prof = allow_but([
        # personality(2): EQ 4 denied, anything else allowed
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
         "args": [{"index": 0, "value": 4, "op": "SCMP_CMP_EQ"}]},
        # socket(2): protocol & 0xF00 == 0x100 denied
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 2, "value": 0xF00, "valueTwo": 0x100, "op": "SCMP_CMP_MASKED_EQ"}]},
        # umask(2): GT 0o777 denied
        {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 0o777, "op": "SCMP_CMP_GT"}]},
        # ftruncate(2): both arguments must match (AND)
        {"names": ["ftruncate"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
         "args": [{"index": 0, "value": 500, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 1337, "op": "SCMP_CMP_EQ"}]},
        # dup3(2): either value of argument 0 (OR)
        {"names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
         "args": [{"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 2020, "op": "SCMP_CMP_EQ"}]},
    ])
    got = probe(runtime, box, [
        "personality:4", "personality:0xffffffff",
        "socket:1:1:0x100", "socket:1:1:0x1100", "socket:1:1:0x200",
        "umask:512", "umask:18",
        "ftruncate:500:1337", "ftruncate:500:1", "ftruncate:501:1337",
        "dup3:1337:100:0", "dup3:2020:100:0", "dup3:1:100:0",
    ], prof)
    assert got[0] == -11 and got[1] >= 0
    assert got[2:5] == [-13, -13, -93]          # EPROTONOSUPPORT: the kernel ran it
    assert got[5] == -22 and got[6] >= 0
    assert got[7:10] == [-7, -9, -9]            # EBADF: the kernel ran it
    assert got[10:13] == [-77, -77, 100]


# ---- a Docker-shaped allow-list, -ENOSYS for newer calls ----

@pytest.mark.parametrize("nnp", [False, True])
def test_docker_like_profile(runtime, box, nnp):
    prof = docker_like()
    got = probe(runtime, box, [
        "getppid",          # allowed
        "personality:8",    # allowed value
        "personality:4",    # other values denied
        "socket:40:1:0",    # AF_VSOCK denied
        "246:0:0:0:0",      # kexec_load: not listed, below the highest number: EPERM
        "clone3:0:0",       # listed with errnoRet ENOSYS
        "462:0:0:0",        # mseal: unknown to libseccomp 2.5, above the highest: ENOSYS
        "1000",             # far past anything: ENOSYS
    ], prof, nnp=nnp)
    assert got == [0, 0, -1, -1, -1, -ENOSYS, -ENOSYS, -ENOSYS]
    r = run(runtime, box, ["/bin/sh", "-c", "echo hi > /tmp/f && cat /tmp/f && ls /bin | wc -l"], prof,
            nnp=nnp)
    assert r.stdout.splitlines()[0] == "hi"


def test_enosys_for_calls_the_runtime_uses_itself(runtime, box):
    # runc's "syscall compatibility after seccomp enforcement": the runtime's own
    # late calls (close_range, openat2, mount API) must not be hurt by a profile
    # that answers ENOSYS for them
    prof = allow_but([{"names": ["close_range", "fsopen", "fsconfig", "fspick", "openat2", "open_tree",
                                 "move_mount", "mount_setattr"], "action": "SCMP_ACT_ERRNO",
                       "errnoRet": ENOSYS}])
    run(runtime, box, ["/bin/true"], prof)


# ---- exec ----

def test_exec_gets_the_filter_too(runtime, box):
    prof = allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}])
    box.config["process"]["args"] = ["/bin/sleep", "30"]
    box.config["linux"]["seccomp"] = prof
    box.save()
    runtime.run("create", "-b", box.path, box.id, check=True)
    try:
        runtime.run("start", box.id, check=True)
        r = runtime.run("exec", box.id, "/bin/sysprobe", "getppid", "getpid")
        assert r.returncode == 0, r.stderr
        assert int(r.stdout.split()[0]) == -42
        # the exec hit the cache the create filled
        names = os.listdir(os.path.join(runtime.root, ".cache", "seccomp"))
        assert len(names) == 1
    finally:
        runtime.run("delete", "--force", box.id)


# ---- notify ----

def start_agent(tmp_path, connections=1):
    sock = str(tmp_path / "agent.sock")
    out = str(tmp_path / "agent.json")
    p = subprocess.Popen([sys.executable, "-m", "tests.seccomp.agent", sock, out, "30", str(connections)],
                         cwd=ROOT_DIR)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        assert p.poll() is None and time.monotonic() < deadline, "agent did not start"
        time.sleep(0.02)
    return sock, out, p


@pytest.fixture
def agent(tmp_path):
    sock, out, p = start_agent(tmp_path)
    yield sock, out, p
    if p.poll() is None:
        p.kill()
    p.wait()


def notify_profile(sock, flags=None):
    prof = allow_but([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
                     listenerPath=sock, listenerMetadata="MKNOD=/dev/null;x=1")
    if flags is not None:
        prof["flags"] = flags
    return prof


@pytest.mark.parametrize("nnp", [False, True])
def test_notify_agent_gets_the_fd_and_answers(runtime, box, agent, nnp):
    sock, out, p = agent
    r = run(runtime, box, ["/bin/sh", "-c", "mkdir /tmp/fake && echo made; "
                                            "test -d /tmp/fake && echo exists || echo absent"],
            notify_profile(sock), nnp=nnp)
    # the agent answered success without creating the directory
    assert r.stdout == "made\nabsent\n"
    assert p.wait(10) == 0
    with open(out) as f:
        (got,) = json.load(f)
    doc = got["state"]
    assert got["nfds"] == 1
    assert got["nspid"][-1] == 1          # the agent was handed the container's init
    assert doc["fds"] == ["seccompFd"]
    assert doc["metadata"] == "MKNOD=/dev/null;x=1"
    assert doc["ociVersion"] and doc["pid"] > 0
    st = doc["state"]
    assert st["id"] == box.id and st["status"] == "creating" and st["pid"] == doc["pid"]
    assert st["bundle"] == box.path
    with open(out + ".log") as f:
        assert f.read() == "mkdir /tmp/fake\n"


def test_notify_with_wait_killable_recv(runtime, box, agent):
    from pyrunc import seccomp_compile as sc

    if sc.lib.prs_filter_flags_supported(sc.FLAG_NEW_LISTENER | sc.FLAG_WAIT_KILLABLE_RECV) != 1:
        pytest.skip("kernel lacks SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux < 5.19)")
    sock, out, p = agent
    prof = notify_profile(sock, flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])
    r = run(runtime, box, ["/bin/sh", "-c", "mkdir /tmp/fake && echo made"], prof)
    assert r.stdout == "made\n"


def failed_cleanly(runtime, b, r, *phrases):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for ph in phrases:
        assert ph in lines[0], (ph, lines[0])
    assert not os.path.exists(os.path.join(runtime.root, b.id))
    assert cgroup_dirs(b.id) == []
    assert mounts_under(b.path) == []


def test_notify_without_an_agent_fails_create(runtime, box, tmp_path):
    sock = str(tmp_path / "nobody.sock")
    box.config["process"]["args"] = ["/bin/true"]
    box.config["linux"]["seccomp"] = notify_profile(sock)
    box.save()
    r = runtime.run("create", "-b", box.path, box.id)
    failed_cleanly(runtime, box, r, "failed to connect with seccomp agent `%s`" % sock, "no such file")


# ---- bad profiles ----

@pytest.mark.parametrize("prof,phrase", [
    (allow_but([{"names": ["getppid"], "action": "SCMP_ACT_DENY"}]),
     'config.json: linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_DENY"'),
    (allow_but([{"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]),
     "config.json: linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_ALLOW takes no errno"),
    (allow_but([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["read"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}]),
     "config.json: linux.seccomp.syscalls[1]: libseccomp rejected the rule for `read`"),
])
def test_bad_profile_fails_create_with_one_line(runtime, box, prof, phrase):
    box.config["process"]["args"] = ["/bin/true"]
    box.config["linux"]["seccomp"] = prof
    box.save()
    r = runtime.run("create", "-b", box.path, box.id)
    failed_cleanly(runtime, box, r, phrase)


# ---- the cache in a real create ----

def test_cache_is_filled_then_used_and_repaired(runtime, box):
    prof = docker_like()
    assert probe(runtime, box, ["getppid"], prof) == [0]
    cache = os.path.join(runtime.root, ".cache", "seccomp")
    (name,) = os.listdir(cache)
    path = os.path.join(cache, name)
    first = os.stat(path)
    assert probe(runtime, box, ["getppid"], prof) == [0]
    assert os.stat(path).st_ino == first.st_ino          # a hit: not rewritten
    with open(path, "r+b") as f:                          # damage the program
        f.seek(-3, os.SEEK_END)
        f.write(b"\xff\xff\xff")
    assert probe(runtime, box, ["getppid", "personality:4"], prof) == [0, -1]
    assert os.stat(path).st_ino != first.st_ino          # rebuilt and replaced
    # `pyrunc list` does not mistake the cache for a container
    r = runtime.run("list", "-q")
    assert ".cache" not in r.stdout


def test_notify_on_exec_names_the_exec_process(runtime, box, tmp_path):
    # one agent, two connections: the init's listener at create, the exec's at exec
    sock, out, p = start_agent(tmp_path, connections=2)
    try:
        box.config["process"]["args"] = ["/bin/sleep", "30"]
        box.config["linux"]["seccomp"] = notify_profile(sock)
        box.save()
        runtime.run("create", "-b", box.path, box.id, check=True)
        runtime.run("start", box.id, check=True)
        r = runtime.run("exec", box.id, "/bin/sh", "-c", "mkdir /tmp/e && echo made; echo $$")
        assert r.returncode == 0, r.stderr
        made, shell_pid = r.stdout.split()
        assert made == "made"
        runtime.run("delete", "--force", box.id, check=True)
        assert p.wait(10) == 0
        with open(out) as f:
            init, ex = json.load(f)
        assert init["state"]["state"]["status"] == "creating"
        init_pid = init["state"]["pid"]
        # runc's rule for exec: "pid" is the new process, state.pid the container's init
        assert ex["state"]["state"]["pid"] == init_pid
        assert ex["state"]["state"]["status"] == "running"
        assert ex["state"]["pid"] != init_pid
        assert ex["nspid"][-1] == int(shell_pid)  # the same process, seen from inside
        with open(out + ".log") as f:
            assert f.read() == "mkdir /tmp/e\n"
    finally:
        runtime.run("delete", "--force", box.id)
        if p.poll() is None:
            p.kill()
        p.wait()
