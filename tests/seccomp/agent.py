"""A small seccomp notify agent for the tests (runc's tests/cmd/seccompagent, in spirit).

    python -m tests.seccomp.agent SOCKET OUT [TIMEOUT [CONNECTIONS]]

Listens on the AF_UNIX stream socket SOCKET for CONNECTIONS (default 1) runtime
connections; from each it receives the runtime-spec "container process state" and a
seccomp listener fd (SCM_RIGHTS), and rewrites OUT as the JSON list of what it got
(with the process's NSpid, read while it is alive).  Meanwhile it serves every
listener's notifications, and exits when all connections came and every process
using the filters is gone (writing "done" or "timeout" to OUT.end):

  * mkdir / mkdirat: reads the path from the caller's memory, appends
    "<call> <path>" to OUT.log, and answers success WITHOUT creating anything, so a
    test can tell the agent answered (the directory does not exist afterwards);
  * anything else: SECCOMP_USER_NOTIF_FLAG_CONTINUE (the kernel runs the call).

The notify ioctls are issued directly with fcntl.ioctl on the raw structs, so the
test does not depend on the libseccomp bindings it is testing.
"""
import json
import os
import select
import socket
import sys

# struct seccomp_notif: u64 id, u32 pid, u32 flags, struct seccomp_data (64 bytes)
NOTIF_SIZE = 80
# struct seccomp_notif_resp: u64 id, s64 val, s32 error, u32 flags
RESP_SIZE = 24
# _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp),
# _IOW('!', 2, __u64)
IOCTL_NOTIF_RECV = 0xC0502100
IOCTL_NOTIF_SEND = 0xC0182101
IOCTL_NOTIF_ID_VALID = 0x40082102
FLAG_CONTINUE = 1

NR_MKDIR = 83       # x86-64
NR_MKDIRAT = 258


def read_string(pid, addr, limit=4096):
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as f:
        f.seek(addr)
        data = f.read(limit)
    return data.split(b"\0", 1)[0].decode(errors="replace")


def respond(fd, nid, val=0, error=0, flags=0):
    import fcntl

    resp = bytearray(nid.to_bytes(8, sys.byteorder) + val.to_bytes(8, sys.byteorder, signed=True)
                     + error.to_bytes(4, sys.byteorder, signed=True) + flags.to_bytes(4, sys.byteorder))
    try:
        fcntl.ioctl(fd, IOCTL_NOTIF_SEND, resp, True)
    except OSError:
        pass  # the caller died meanwhile (ENOENT): nothing to answer


def handle(fd, log_path):
    """receive one notification and answer it"""
    import fcntl

    buf = bytearray(NOTIF_SIZE)      # the kernel wants it zeroed
    try:
        fcntl.ioctl(fd, IOCTL_NOTIF_RECV, buf, True)
    except OSError:
        return
    nid = int.from_bytes(buf[0:8], sys.byteorder)
    pid = int.from_bytes(buf[8:12], sys.byteorder)
    nr = int.from_bytes(buf[16:20], sys.byteorder, signed=True)
    args = [int.from_bytes(buf[32 + 8 * i:40 + 8 * i], sys.byteorder) for i in range(6)]
    if nr in (NR_MKDIR, NR_MKDIRAT):
        path = read_string(pid, args[0] if nr == NR_MKDIR else args[1])
        # the path was read from a process that could have been replaced meanwhile:
        # only trust it if the notification is still live
        try:
            fcntl.ioctl(fd, IOCTL_NOTIF_ID_VALID, bytearray(nid.to_bytes(8, sys.byteorder)), True)
        except OSError:
            return
        with open(log_path, "a") as f:
            f.write("%s %s\n" % ("mkdir" if nr == NR_MKDIR else "mkdirat", path))
        respond(fd, nid, val=0)
    else:
        respond(fd, nid, flags=FLAG_CONTINUE)


def nspid(pid):
    """the pid's numbers in each nested pid namespace (Linux 4.1+), [] if gone"""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def receive(srv):
    conn, _ = srv.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
        data = msg
        while True:  # the runtime closes the connection after one state
            more = conn.recv(1 << 16)
            if not more:
                break
            data += more
    return json.loads(data), fds


def main():
    sock_path, out = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    expect = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(4)
    poller = select.poll()
    poller.register(srv.fileno(), select.POLLIN)
    got = []
    listeners = set()
    while len(got) < expect or listeners:
        events = poller.poll(timeout * 1000)
        if not events:
            result = "timeout"
            break
        for fd, ev in events:
            if fd == srv.fileno():
                doc, fds = receive(srv)
                got.append({"state": doc, "nfds": len(fds), "nspid": nspid(doc.get("pid", 0))})
                with open(out + ".tmp", "w") as f:
                    json.dump(got, f)
                os.rename(out + ".tmp", out)
                for extra in fds[1:]:
                    os.close(extra)
                if fds:
                    listeners.add(fds[0])
                    poller.register(fds[0], select.POLLIN)
            elif ev & select.POLLIN:
                handle(fd, out + ".log")
            elif ev & (select.POLLHUP | select.POLLERR):
                # no process uses this filter any more
                poller.unregister(fd)
                listeners.discard(fd)
                os.close(fd)
    else:
        result = "done"
    with open(out + ".end", "w") as f:
        f.write(result)
    return 0 if result == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
