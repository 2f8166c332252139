"""exec's runc flags one by one, the way containerd and conmon pass them, and the
--log records a failed exec leaves (runtime-cli-contract.md sections 2-3)."""
import array
import json
import os
import pty
import select
import socket
import subprocess
import time

import pytest

from tests.conftest import PYRUNC, requires_root
from tests.integration.test_exec import start_sleeper

pytestmark = requires_root

CAP_SYS_ADMIN = 21


def status_caps(text):
    return {line.split(":")[0]: int(line.split()[1], 16) for line in text.splitlines()
            if line.startswith("Cap")}


def test_cap_widens_bounding_effective_permitted_as_runc(runtime, bundle):
    start_sleeper(runtime, bundle)
    base = status_caps(runtime.run("exec", bundle.id, "grep", "^Cap", "/proc/self/status").stdout)
    assert not base["CapEff"] & (1 << CAP_SYS_ADMIN)
    r = runtime.run("exec", "--cap", "CAP_SYS_ADMIN", "--cap=CAP_SYS_PTRACE", bundle.id,
                    "grep", "^Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    caps = status_caps(r.stdout)
    added = (1 << CAP_SYS_ADMIN) | (1 << 19)  # CAP_SYS_PTRACE
    for kind in ("CapBnd", "CapEff", "CapPrm"):
        assert caps[kind] == base[kind] | added, (kind, caps, base)
    # the default spec has no inheritable set: --cap leaves ambient alone (runc alike)
    assert caps["CapInh"] == base["CapInh"] and caps["CapAmb"] == base["CapAmb"]
    # an unknown name is a warning and is skipped, as runc does
    r = runtime.run("exec", "--cap", "CAP_NOPE", bundle.id, "true")
    assert r.returncode == 0 and "CAP_NOPE" in r.stderr and "warning" in r.stderr
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_user_additional_gids_env_cwd_no_new_privs(runtime, bundle):
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", "-u", "1000:1001", "-g", "5", "--additional-gids=7", "-e", "A=1",
                    "--env", "B=2", "--cwd", "/tmp", "--no-new-privs", bundle.id,
                    "sh", "-c", "id -u; id -g; id -G; echo $A$B; pwd; grep NoNewPrivs /proc/self/status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["1000", "1001"]
    assert set(lines[2].split()) == {"1001", "5", "7"}
    assert lines[3:5] == ["12", "/tmp"]
    assert lines[5].split() == ["NoNewPrivs:", "1"]
    r = runtime.run("exec", "-u", "bob", bundle.id, "true")
    assert r.returncode == 255 and "--user" in r.stderr
    # a flag pyrunc cannot honour is refused, not ignored
    r = runtime.run("exec", "--cgroup", "sub", bundle.id, "true")
    assert r.returncode == 1 and "--cgroup sub: sub-cgroups are not supported" in r.stderr
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_preserve_fds_reach_the_exec_process(runtime, bundle, tmp_path):
    start_sleeper(runtime, bundle)
    rd, wr = os.pipe()
    files = [open(tmp_path / "f3", "w"), open(tmp_path / "f5", "w")]

    def fds_at_3():
        os.dup2(wr, 3)
        os.dup2(files[0].fileno(), 4)
        os.dup2(files[1].fileno(), 5)  # leaked, not preserved

    try:
        p = subprocess.run([PYRUNC, "--root", runtime.root, "exec", "--preserve-fds", "2", bundle.id,
                            "sh", "-c", "echo through-3 >&3; ls /proc/self/fd"],
                           capture_output=True, text=True, preexec_fn=fds_at_3, close_fds=False,
                           stdin=subprocess.DEVNULL, timeout=30)
    finally:
        os.close(wr)
        for f in files:
            f.close()
    try:
        assert p.returncode == 0, p.stderr
        assert os.read(rd, 100) == b"through-3\n"
    finally:
        os.close(rd)
    seen = sorted(int(x) for x in p.stdout.split())
    assert seen[:5] == [0, 1, 2, 3, 4] and len(seen) == 6, seen  # + ls's directory fd
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def _lsm_present():
    from pyrunc import lsm
    return lsm.apparmor_on() or lsm.selinux_on()


@pytest.mark.skipif(_lsm_present(), reason="AppArmor or SELinux on: labels are applied there (tests/lsm)")
def test_apparmor_and_process_label_are_accepted_without_the_lsm(runtime, bundle):
    start_sleeper(runtime, bundle)
    r = runtime.run("exec", "--apparmor", "docker-default", "--process-label",
                    "system_u:system_r:container_t:s0", bundle.id, "echo", "ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n" and r.stderr == ""
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


@pytest.mark.skipif(_lsm_present(), reason="AppArmor or SELinux on: labels are applied there (tests/lsm)")
def test_config_apparmor_profile_and_selinux_label_are_accepted_without_the_lsm(runtime, bundle):
    # what a docker or podman config carries (on hosts with the LSM, callers set these)
    bundle.config["process"]["apparmorProfile"] = "docker-default"
    bundle.config["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    bundle.args("/bin/echo", "ok")
    r = runtime.run("run", "-b", bundle.path, bundle.id)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


def test_foreground_tty_exec_proxies_the_terminal(runtime, bundle):
    start_sleeper(runtime, bundle)
    master, slave = pty.openpty()
    p = subprocess.Popen([PYRUNC, "--root", runtime.root, "exec", "-t", bundle.id,
                          "sh", "-c", "tty; read x; echo got-$x; exit 6"],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        sent = False
        while time.monotonic() < deadline:
            if not sent and b"/dev/pts/" in out:
                os.write(master, b"hi\n")
                sent = True
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        assert p.wait(10) == 6, out
    finally:
        os.close(master)
    assert b"/dev/pts/0" in out and b"got-hi" in out, out
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_containerd_style_exec_with_console_socket(runtime, bundle, tmp_path):
    """the shim's argv: exec --process FILE --console-socket S --detach --pid-file F ID,
    terminal only in the process file; the socket is accepted after exec returns"""
    init = start_sleeper(runtime, bundle)
    proc = dict(bundle.config["process"], args=["/bin/sh", "-c", "tty; read x; echo got-$x"],
                terminal=True)
    pf = tmp_path / "runc-process123"
    pf.write_text(json.dumps(proc))
    sock_path = str(tmp_path / "pty.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    pidfile = str(tmp_path / "e1.pid")
    r = runtime.run("--log", str(tmp_path / "log.json"), "--log-format", "json", "exec",
                    "--process", str(pf), "--console-socket", sock_path, "--detach",
                    "--pid-file", pidfile, bundle.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    with open(pidfile) as f:
        text = f.read()
    assert text.isdigit()  # no trailing newline: containerd does a bare Atoi
    pid = int(text)
    assert os.readlink("/proc/%d/ns/pid" % pid) == os.readlink("/proc/%d/ns/pid" % init["pid"])
    conn, _ = srv.accept()
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(64, socket.CMSG_SPACE(fds.itemsize))
    conn.close()
    srv.close()
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data)
    assert len(fds) == 1
    master = fds[0]
    try:
        out = b""
        deadline = time.monotonic() + 10
        while b"/dev/pts/" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
        os.write(master, b"yes\n")
        while b"got-yes" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
        assert b"got-yes" in out, out
    finally:
        os.close(master)
    # success: the log file exists and holds nothing
    assert os.path.getsize(str(tmp_path / "log.json")) == 0
    assert runtime.run("delete", "--force", bundle.id).returncode == 0


def test_failed_exec_appends_one_error_record_and_says_it_on_stderr(runtime, bundle, tmp_path):
    start_sleeper(runtime, bundle)
    log = tmp_path / "log.json"
    earlier = '{"level":"info","msg":"from an earlier call","time":"2026-01-01T00:00:00Z"}\n'
    log.write_text(earlier)
    for flags in (["--detach"], []):
        r = runtime.run("--log", str(log), "--log-format=json", "exec", *flags, bundle.id, "/no/such")
        assert r.returncode == (1 if flags else 255)
        assert "no such file or directory" in r.stderr and "/no/such" in r.stderr
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    lines = log.read_text().splitlines(keepends=True)
    assert lines[0] == earlier  # append mode: earlier records are kept
    records = [json.loads(line) for line in lines[1:]]
    assert len(records) == 2
    for rec in records:
        assert set(rec) == {"level", "msg", "time"}
        assert rec["level"] == "error" and "no such file or directory" in rec["msg"]
        # RFC 3339, UTC
        assert time.strptime(rec["time"], "%Y-%m-%dT%H:%M:%SZ")
    # and on a stopped container, the phrase containerd matches
    runtime.run("kill", bundle.id, "KILL")
    from tests.integration.test_lifecycle import wait_status
    wait_status(runtime, bundle.id, "stopped")
    r = runtime.run("--log", str(log), "--log-format", "json", "kill", bundle.id, "9")
    assert r.returncode == 1 and "container not running" in r.stderr
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and "container not running" in last["msg"]
    assert runtime.run("delete", bundle.id).returncode == 0
