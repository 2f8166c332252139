"""A throw-away docker-registry (Debian's distribution v2) on 127.0.0.1.

Used by the image tests as a fixture and by the demo and other suites as a script:

    python -m tests.image.registry start DIR [--htpasswd USER:PASS] [--tls] [--token-realm URL ...]
    python -m tests.image.registry stop DIR

`start` prints the address (127.0.0.1:PORT) and leaves the registry running; DIR holds
the config, storage, log, the pid file (registry.pid) and the address (address).
With --tls the self-signed certificate is DIR/tls/cert.pem (its SAN is IP:127.0.0.1),
so a client trusts it with `--cert-dir DIR/tls` (ca.crt is a copy of it).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port():
    """a port nobody listens on now (the kernel picks it; small race, fine for tests)"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(dirpath, cn="127.0.0.1"):
    """self-signed certificate + key for 127.0.0.1 (and localhost); returns (cert, key)"""
    os.makedirs(dirpath, exist_ok=True)
    cert = os.path.join(dirpath, "cert.pem")
    key = os.path.join(dirpath, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "2", "-subj", "/CN=" + cn, "-keyout", key, "-out", cert,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # the layout of docker's certs.d: a client pointed at this directory trusts ca.crt
    shutil.copy(cert, os.path.join(dirpath, "ca.crt"))
    return cert, key


def htpasswd_line(user, password):
    """a bcrypt htpasswd entry (distribution accepts only bcrypt)"""
    exe = shutil.which("htpasswd")
    if not exe:
        raise RuntimeError("htpasswd not found: install apache2-utils (make deps)")
    out = subprocess.run([exe, "-nbB", user, password], check=True, capture_output=True, text=True)
    return out.stdout.strip() + "\n"


class Registry:
    """One docker-registry process.  `users` is a dict user -> password (Basic auth with
    htpasswd); `tls` serves https with a self-signed certificate; `token` is a dict with
    realm, service, issuer, rootcertbundle for the Bearer token flow."""

    def __init__(self, workdir, users=None, tls=False, token=None, port=None):
        self.dir = os.path.abspath(workdir)
        self.users = users or {}
        self.tls = tls
        self.token = token
        self.port = port
        self.proc = None
        self.cert_dir = os.path.join(self.dir, "tls") if tls else None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "%s://%s" % ("https" if self.tls else "http", self.address)

    def _config(self):
        storage = os.path.join(self.dir, "storage")
        os.makedirs(storage, exist_ok=True)
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % storage,
            "  delete:",
            "    enabled: true",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  secret: throwaway-test-secret",
        ]
        if self.tls:
            cert, key = make_cert(self.cert_dir)
            lines += ["  tls:", "    certificate: %s" % cert, "    key: %s" % key]
        if self.users:
            path = os.path.join(self.dir, "htpasswd")
            with open(path, "w") as f:
                for u, p in self.users.items():
                    f.write(htpasswd_line(u, p))
            lines += ["auth:", "  htpasswd:", "    realm: test-registry", "    path: %s" % path]
        elif self.token:
            lines += ["auth:", "  token:"]
            lines += ["    %s: %s" % (k, self.token[k]) for k in ("realm", "service", "issuer", "rootcertbundle")]
        path = os.path.join(self.dir, "config.yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self, timeout=15):
        os.makedirs(self.dir, exist_ok=True)
        for attempt in range(5):
            if self.port is None or attempt:
                self.port = free_port()
            cfg = self._config()
            log = open(os.path.join(self.dir, "registry.log"), "ab")
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            if self._wait(timeout):
                with open(os.path.join(self.dir, "registry.pid"), "w") as f:
                    f.write("%d\n" % self.proc.pid)
                with open(os.path.join(self.dir, "address"), "w") as f:
                    f.write(self.address + "\n")
                return self
            self.stop()
        raise RuntimeError("docker-registry did not start, see %s/registry.log" % self.dir)

    def _wait(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False      # exited: most likely the port was taken meanwhile
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        for name in ("registry.pid", "address"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def stop_dir(workdir):
    """stop a registry started by `start DIR` in another process"""
    pidfile = os.path.join(workdir, "registry.pid")
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except FileNotFoundError:
        return False
    try:
        # make sure the pid is still a docker-registry before signalling it
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"registry" not in f.read():
                raise ProcessLookupError
        os.kill(pid, signal.SIGTERM)
        for _ in range(250):
            os.kill(pid, 0)
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, FileNotFoundError):
        pass
    for name in ("registry.pid", "address"):
        try:
            os.unlink(os.path.join(workdir, name))
        except FileNotFoundError:
            pass
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.image.registry")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a registry, print its address, leave it running")
    st.add_argument("dir")
    st.add_argument("--htpasswd", action="append", default=[], metavar="USER:PASS")
    st.add_argument("--tls", action="store_true")
    st.add_argument("--port", type=int)
    sp = sub.add_parser("stop", help="stop the registry started in DIR")
    sp.add_argument("dir")
    a = ap.parse_args(argv)
    if a.cmd == "start":
        users = dict(x.split(":", 1) for x in a.htpasswd)
        reg = Registry(a.dir, users=users, tls=a.tls, port=a.port).start()
        # detach: the registry keeps running after this script exits
        reg.proc = None
        print(reg.address)
        return 0
    if not stop_dir(a.dir):
        print("no registry running in %s" % a.dir, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
