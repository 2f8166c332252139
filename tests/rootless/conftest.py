"""A throw-away ordinary user for the rootless tests.

The user is made for the session (useradd, subordinate ids in /etc/subuid and
/etc/subgid) and removed after it.  Commands run as that user with setpriv, in an
environment like a login's (HOME, USER, XDG_RUNTIME_DIR).  The checkout must be
reachable by the user: missing search (x) bits on its ancestors are added for the
session and put back after.
"""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
import uuid

import pytest

from tests.conftest import PYRUNC, ROOT_DIR, requires_root

SUBID_BASE = 3_100_000
SUBID_SIZE = 65536

pytestmark = requires_root


def _userns_probe():
    """None if an unprivileged user may create a user namespace, else why not"""
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                return "kernel.unprivileged_userns_clone is 0"
    except FileNotFoundError:
        pass
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if f.read().strip() == "0":
                return "user.max_user_namespaces is 0"
    except FileNotFoundError:
        return "the kernel has no user namespaces"
    return None


_why = _userns_probe()
if _why:
    pytestmark = [requires_root, pytest.mark.skip(reason="unprivileged user namespaces: " + _why)]


class User:
    def __init__(self, name):
        self.name = name
        pw = pwd.getpwnam(name)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        self.xdg = "/run/user/%d" % self.uid

    def env(self, **extra):
        env = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name,
               "PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_RUNTIME_DIR": self.xdg}
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def run(self, argv, cwd=None, timeout=60, env=None, cgroup=None):
        """argv as the user; with `cgroup`, started in that cgroup2 directory (root
        moves the process there first, as systemd does for a user's session)"""
        cmd = ["setpriv", "--reuid", str(self.uid), "--regid", str(self.gid), "--init-groups",
               "--"] + list(argv)
        if cgroup:
            cmd = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup] + cmd
        # files, not pipes: a container init inherits create's stdout and stderr
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(cmd, cwd=cwd or "/", env=env or self.env(), stdin=subprocess.DEVNULL,
                               stdout=out, stderr=err, timeout=timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(argv, p.returncode, out.read().decode(), err.read().decode())

    def pyrunc(self, *args, **kw):
        return self.run([PYRUNC] + list(args), **kw)


def _add_subids(name):
    for f in ("/etc/subuid", "/etc/subgid"):
        with open(f, "a") as fh:
            fh.write("%s:%d:%d\n" % (name, SUBID_BASE, SUBID_SIZE))


def _remove_subids(name):
    for f in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(f) as fh:
                lines = fh.readlines()
        except FileNotFoundError:
            continue
        with open(f, "w") as fh:
            fh.writelines(ln for ln in lines if not ln.startswith(name + ":"))


def _open_ancestors(path):
    """give 'others' search permission on path's ancestors; return what to restore"""
    changed = []
    p = os.path.dirname(os.path.abspath(path))
    while True:
        st = os.stat(p)
        if not st.st_mode & stat.S_IXOTH:
            os.chmod(p, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            changed.append((p, stat.S_IMODE(st.st_mode)))
        if p == "/":
            break
        p = os.path.dirname(p)
    return changed


@pytest.fixture(scope="session")
def user():
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.fail("setpriv/useradd missing: make deps installs util-linux and passwd")
    name = "prl%s" % uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name],
                   check=True)
    changed = []
    try:
        _add_subids(name)
        u = User(name)
        os.makedirs(u.xdg, exist_ok=True)
        os.chown(u.xdg, u.uid, u.gid)
        os.chmod(u.xdg, 0o700)
        changed = _open_ancestors(os.path.join(ROOT_DIR, ".venv", "bin", "python3"))
        changed += _open_ancestors(os.path.join(ROOT_DIR, "pyrunc", "cli.py"))
        yield u
    finally:
        for p, mode in reversed(changed):
            os.chmod(p, mode)
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        time.sleep(0.1)
        shutil.rmtree("/run/user/%d" % pwd.getpwnam(name).pw_uid, ignore_errors=True)
        subprocess.run(["userdel", "-r", "-f", name], check=False, stderr=subprocess.DEVNULL)
        _remove_subids(name)




def state_left(user):
    """container state dirs under the user's default root (the seccomp cache may stay)"""
    root = os.path.join(user.xdg, "pyrunc")
    return [x for x in os.listdir(root) if x != ".cache"] if os.path.isdir(root) else []
