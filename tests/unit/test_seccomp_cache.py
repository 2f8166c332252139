"""The compiled-filter cache under <root>/.cache/seccomp: hits, misses, and every way
an entry can be bad (truncated, corrupt, foreign, stale), atomic writes, eviction, and
a hit that never loads libseccomp."""
import os
import subprocess
import sys

import pytest

from pyrunc import seccomp

pytest.importorskip("pyrunc._libseccomp", reason="pyrunc._libseccomp is not built")

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
           "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}]}


def entries(root):
    d = seccomp.cache_dir(str(root))
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def entry_path(root):
    (name,) = entries(root)
    return os.path.join(seccomp.cache_dir(str(root)), name)


def test_miss_then_hit_gives_the_same_filter(tmp_path):
    a = seccomp.prepare(PROFILE, str(tmp_path))
    assert not a.cached
    assert len(entries(tmp_path)) == 1
    b = seccomp.prepare(PROFILE, str(tmp_path))
    assert b.cached
    assert (b.program, b.flags, b.notify) == (a.program, a.flags, a.notify)
    assert len(a) == len(a.program) // 8 > 0
    st = os.stat(seccomp.cache_dir(str(tmp_path)))
    assert st.st_mode & 0o777 == 0o700


def test_no_filter_wanted():
    assert seccomp.prepare({}, "/nonexistent") is None
    assert seccomp.prepare({"syscalls": []}, "/nonexistent") is None
    assert seccomp.prepare({"architectures": ["SCMP_ARCH_X86_64"]}, "/nonexistent") is None


def test_key_covers_the_whole_profile(tmp_path):
    seccomp.prepare(PROFILE, str(tmp_path))
    other = dict(PROFILE, defaultErrnoRet=2)
    p = seccomp.prepare(other, str(tmp_path))
    assert not p.cached
    notify = dict(PROFILE, listenerPath="/run/a.sock",
                  syscalls=PROFILE["syscalls"] + [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}])
    n1 = seccomp.prepare(notify, str(tmp_path))
    n2 = seccomp.prepare(dict(notify, listenerPath="/run/b.sock", listenerMetadata="m"), str(tmp_path))
    assert not n2.cached and n2.notify
    assert (n2.listener_path, n2.listener_metadata) == ("/run/b.sock", "m")
    h = seccomp.prepare(notify, str(tmp_path))
    assert h.cached and h.notify and h.listener_path == "/run/a.sock" and h.program == n1.program
    assert len(entries(tmp_path)) == 4


def damage_and_check(tmp_path, damage):
    good = seccomp.prepare(PROFILE, str(tmp_path))
    path = entry_path(tmp_path)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    p = seccomp.prepare(PROFILE, str(tmp_path))
    assert not p.cached, "a bad entry must be rebuilt"
    assert p.program == good.program
    # and rewritten whole: the next create hits again
    with open(path, "rb") as f:
        assert f.read() == data
    assert seccomp.prepare(PROFILE, str(tmp_path)).cached


@pytest.mark.parametrize("damage", [
    lambda d: d[:len(d) // 2],                              # torn write
    lambda d: d[:-8],                                       # one instruction short
    lambda d: d + b"\0" * 8,                                # one too many
    lambda d: d[:-1] + bytes([d[-1] ^ 0x40]),               # a flipped bit in the program
    lambda d: d[:60] + bytes([d[60] ^ 1]) + d[61:],         # a flipped bit in the header
    lambda d: b"XXXXXXXX" + d[8:],                          # not ours
    lambda d: b"",                                          # empty
], ids=["torn", "short", "long", "program-bit", "header-bit", "magic", "empty"])
def test_bad_entries_are_rebuilt(tmp_path, damage):
    damage_and_check(tmp_path, damage)


def test_entry_of_another_libseccomp_is_stale(tmp_path):
    # an entry compiled by a library file that has since changed (a package upgrade)
    lib = tmp_path / "libseccomp.so.2"
    lib.write_bytes(b"old")
    p = seccomp.prepare(PROFILE, str(tmp_path))
    from _blake2 import blake2b

    data = seccomp._encode(p.program, p.flags, p.notify, str(lib), blake2b)
    assert seccomp._decode(data, blake2b) == (p.program, p.flags, 0, ())
    lib.write_bytes(b"new and longer")
    assert seccomp._decode(data, blake2b) is None
    lib.unlink()
    assert seccomp._decode(data, blake2b) is None


def test_hit_does_not_load_libseccomp(tmp_path):
    seccomp.prepare(PROFILE, str(tmp_path))
    code = ("import sys, time\n"
            "from pyrunc import seccomp\n"
            "p = seccomp.prepare(%r, %r)\n"
            "assert p.cached, 'expected a hit'\n"
            "bad = [m for m in sys.modules if m in ('pyrunc._libseccomp', 'pyrunc.seccomp_compile',"
            " 'hashlib', 'json', 're', 'enum', 'socket')]\n"
            "assert not bad, bad\n" % (PROFILE, str(tmp_path)))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT_DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path):
    for i in range(5):
        seccomp.prepare(dict(PROFILE, defaultErrnoRet=i + 1), str(tmp_path))
    names = entries(tmp_path)
    assert len(names) == 5
    assert not [n for n in names if n.endswith(".tmp")]


def test_unwritable_cache_is_not_an_error(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / ".cache").write_text("not a directory")
    p = seccomp.prepare(PROFILE, str(root))
    assert p is not None and not p.cached and p.program


def test_a_bad_profile_writes_nothing(tmp_path):
    with pytest.raises(seccomp.SeccompError):
        seccomp.prepare({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "NOPE"}]},
                        str(tmp_path))
    assert entries(tmp_path) == []


def test_eviction_keeps_the_cache_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(seccomp, "_MAX_ENTRIES", 8)
    d = seccomp.cache_dir(str(tmp_path))
    os.makedirs(d)
    for i in range(8):
        with open(os.path.join(d, "old%02d" % i), "wb") as f:
            f.write(b"x")
        os.utime(os.path.join(d, "old%02d" % i), ns=(i * 10**9, i * 10**9))
    p = seccomp.prepare(PROFILE, str(tmp_path))
    names = entries(tmp_path)
    assert len(names) <= 8
    # the newest entry survives, the oldest go first
    assert any(len(n) == 40 for n in names)
    assert "old00" not in names and "old07" in names
    assert seccomp.prepare(PROFILE, str(tmp_path)).program == p.program


def test_not_an_object():
    with pytest.raises(seccomp.SeccompError) as e:
        seccomp.prepare(["SCMP_ACT_ALLOW"], "/nonexistent")
    assert str(e.value) == "config.json: linux.seccomp: must be an object"


def test_skipped_names_survive_the_cache(tmp_path):
    from _blake2 import blake2b

    p = seccomp.prepare(PROFILE, str(tmp_path))
    data = seccomp._encode(p.program, p.flags, p.notify, "", blake2b, ("futuristic_call", "other"))
    assert seccomp._decode(data, blake2b) == (p.program, p.flags, 0, ("futuristic_call", "other"))
    # the names are covered by the digest too
    bad = data[:-1] + bytes([data[-1] ^ 1])
    assert seccomp._decode(bad, blake2b) is None
