"""send_to_listener: the runtime-spec "container process state" and the fd over
SCM_RIGHTS, to a real AF_UNIX listener (a pipe stands in for the seccomp fd here;
tests/integration/test_seccomp.py hands over a real one)."""
import json
import os
import socket
import threading

import pytest

from pyrunc import OCI_VERSION, seccomp

STATE = {"ociVersion": OCI_VERSION, "id": "c1", "status": "creating", "pid": 4242,
         "bundle": "/b", "annotations": {"k": "v"}}


def listener(path, out):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            data = msg
            while True:  # the connection is closed after one state
                more = conn.recv(65536)
                if not more:
                    break
                data += more
            out["doc"] = json.loads(data)
            out["fds"] = fds
        srv.close()

    t = threading.Thread(target=serve)
    t.start()
    return t


@pytest.mark.parametrize("metadata", [None, "MKNOD=/dev/null;x=1"])
def test_state_and_fd_reach_the_agent(tmp_path, metadata):
    path = str(tmp_path / "agent.sock")
    out = {}
    t = listener(path, out)
    r, w = os.pipe()
    try:
        prog = seccomp.Prepared(b"", 8, True, path, metadata)
        seccomp.send_to_listener(r, prog, STATE, 4242)
        t.join(10)
        doc = out["doc"]
        want = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": 4242, "state": STATE}
        if metadata:
            want["metadata"] = metadata
        assert doc == want
        (fd,) = out["fds"]
        # the very same open file: what we write into the pipe comes out of theirs
        os.write(w, b"ping")
        assert os.read(fd, 4) == b"ping"
        os.close(fd)
    finally:
        os.close(r)
        os.close(w)


def test_no_agent_is_one_line_error(tmp_path):
    path = str(tmp_path / "nobody.sock")
    r, w = os.pipe()
    try:
        with pytest.raises(seccomp.SeccompError) as e:
            seccomp.send_to_listener(r, seccomp.Prepared(b"", 8, True, path, None), STATE, 1)
        assert str(e.value) == "failed to connect with seccomp agent `%s`: no such file or directory" % path
    finally:
        os.close(r)
        os.close(w)
