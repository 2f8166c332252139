"""Terminals: --console-socket (one SCM_RIGHTS fd: the pty master) and foreground run."""
import array
import os
import socket
import subprocess
import time

from tests.conftest import PYRUNC, requires_root
from tests.integration.test_lifecycle import wait_status

pytestmark = requires_root


def read_until(fd, needle, timeout=10):
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_console_socket_receives_pty_master(runtime, bundle, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    bundle.config["process"]["terminal"] = True
    bundle.args("/bin/sh", "-c", "tty; echo ready; read line; echo got:$line")
    # like containerd, accept only after create has returned
    r = runtime.run("create", "-b", bundle.path, "--console-socket", sock_path, bundle.id)
    assert r.returncode == 0, r.stderr
    conn, _ = srv.accept()
    fds = array.array("i")
    msg, anc, flags, _ = conn.recvmsg(64, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    conn.close()
    srv.close()
    assert msg == b"/dev/ptmx"
    assert len(fds) == 1
    master = fds[0]
    try:
        assert runtime.run("start", bundle.id).returncode == 0
        out = read_until(master, b"ready")
        assert b"/dev/pts/0" in out and b"ready" in out
        os.write(master, b"hello\n")
        assert b"got:hello" in read_until(master, b"got:hello")
        wait_status(runtime, bundle.id, "stopped")
    finally:
        os.close(master)
    assert runtime.run("delete", bundle.id).returncode == 0


def test_console_socket_errors(runtime, bundle, tmp_path):
    bundle.args("/bin/true")
    r = runtime.run("create", "-b", bundle.path, "--console-socket", str(tmp_path / "nope.sock"), bundle.id)
    assert r.returncode == 1  # no terminal requested with a socket
    assert "console socket" in r.stderr
    bundle.config["process"]["terminal"] = True
    bundle.save()
    r = runtime.run("create", "-b", bundle.path, "--console-socket", str(tmp_path / "nope.sock"), bundle.id)
    assert r.returncode == 1
    assert "no such file or directory" in r.stderr
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_foreground_run_with_terminal_proxies_stdio(runtime, bundle):
    bundle.config["process"]["terminal"] = True
    bundle.args("/bin/sh", "-c", "tty; read x; echo you-said-$x; exit 4")
    p = subprocess.run([PYRUNC, "--root", runtime.root, "run", "-b", bundle.path, bundle.id],
                       input=b"hi\n", capture_output=True, timeout=30)
    assert p.returncode == 4, p.stderr
    assert b"/dev/pts/0" in p.stdout
    assert b"you-said-hi" in p.stdout
