"""pyrunc._os: posix's calls under os's names, and path helpers equal to os.path's."""
import os
import posixpath
import random
import subprocess
import sys

from pyrunc import _os

PATHS = ["", ".", "..", "/", "//", "///", "////x", "a", "a/", "/a", "//a", "///a", "a/b",
         "a//b", "a/./b", "a/../b", "../a", "../../a/b", "/..", "/../a", "//..", "a/..",
         "a/../..", "./", "/a/b/", "/a/b/.", "/a/b/..", "x/./../y/.."]


def test_syscalls_are_posix():
    assert _os.open is os.open and _os.pidfd_open is os.pidfd_open and _os.O_CLOEXEC == os.O_CLOEXEC


def test_other_names_come_from_os():
    assert _os.path is os.path and _os.makedirs is os.makedirs and _os.SEEK_END == os.SEEK_END


def test_path_helpers_match_os_path(tmp_path):
    rnd = random.Random(7)
    parts = ["", ".", "..", "a", "bb", "/"]
    paths = PATHS + ["/".join(rnd.choice(parts) for _ in range(rnd.randint(1, 6))) for _ in range(2000)]
    for p in paths:
        assert _os.normpath(p) == posixpath.normpath(p), p
        assert _os.abspath(p) == posixpath.abspath(p), p
        for q in PATHS[:12]:
            assert _os.join(p, q) == posixpath.join(p, q), (p, q)
    f = tmp_path / "f"
    f.write_text("")
    for p in (str(tmp_path), str(f), str(tmp_path / "missing"), "", "a\0b"):
        assert _os.exists(p) == os.path.exists(p), p
        assert _os.isdir(p) == os.path.isdir(p), p


def test_getenv_matches_os_environ():
    code = ("import sys; sys.path.insert(0, %r); from pyrunc import _os; import os; "
            "print(_os.getenv('PYRUNC_T') == os.environ.get('PYRUNC_T') == 'v\\udcff', "
            "_os.getenv('PYRUNC_NONE', 3))" % os.path.dirname(os.path.dirname(_os.__file__)))
    env = dict(os.environ)
    env = {k.encode(): v.encode() for k, v in env.items()}
    env[b"PYRUNC_T"] = b"v\xff"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "3"]


def test_short_verbs_do_not_import_os():
    """what the module exists for: a pyrunc module on the hot path that uses os.path (or
    any other name not in posix) makes every command pay for the real os again"""
    code = ("import sys; sys.path.insert(0, %r); import pyrunc.cli, pyrunc.state, pyrunc.container, "
            "pyrunc.cgroups, pyrunc.commands.state, pyrunc.commands.start, pyrunc.commands.kill, "
            "pyrunc.commands.delete, pyrunc.commands.list_; print('os' in sys.modules)"
            % os.path.dirname(os.path.dirname(_os.__file__)))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_read_all_reads_to_the_end():
    # more than one 64 KiB read, through a pipe (short reads), and an empty file
    data = bytes(range(256)) * 700
    r, w = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for i in range(0, len(data), 1000):
                os.write(w, data[i:i + 1000])
            os._exit(0)
        os.close(w)
        assert _os.read_all(r) == data
        os.waitpid(pid, 0)
    finally:
        os.close(r)
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        assert _os.read_all(fd) == b""
    finally:
        os.close(fd)
