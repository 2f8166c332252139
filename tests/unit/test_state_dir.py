"""pyrunc.state.ContainerDir.write: every record replaces the last atomically, and later
records are swapped in (renameat2 RENAME_EXCHANGE) rather than renamed over the old one.

On ext4 a rename over an existing file starts writeback of the new file (auto_da_alloc)
and a later unlink waits for it: ~85 us each, three times per `run`.  Real files in a
real directory; the exchange itself is seen with strace."""
import errno
import os
import shutil
import subprocess
import sys

import pytest

from pyrunc import state

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def cdir(tmp_path):
    d = state.ContainerDir.make(str(tmp_path), "c1")
    yield d
    d.close()


def _names(d):
    return sorted(os.listdir(d.path))


def test_records_replace_each_other_and_leave_no_temporary(cdir):
    cdir.write({"n": 1})
    assert cdir.read() == {"n": 1}
    for n in range(2, 6):
        cdir.write({"n": n, "x": "y" * n})
        assert cdir.read() == {"n": n, "x": "y" * n}
    assert _names(cdir) == ["state.json"]


def test_exchange_swaps_two_names(tmp_path):
    from pyrunc.native import lib

    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert lib.prc_rename_exchange(fd, b"a", b"b") == 0
        assert lib.prc_rename_exchange(fd, b"a", b"missing") == -errno.ENOENT
    finally:
        os.close(fd)
    assert (tmp_path / "a").read_text() == "B"
    assert (tmp_path / "b").read_text() == "A"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_later_record_is_swapped_in_not_renamed_over(tmp_path):
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from pyrunc import state\n"
            "d = state.ContainerDir.make(%r, 'c1')\n"
            "for n in range(3): d.write({'n': n})\n") % (TOP, str(tmp_path))
    out = subprocess.run(["strace", "-f", "-e", "trace=rename,renameat,renameat2", sys.executable, "-c", code],
                         capture_output=True, text=True, check=True).stderr
    calls = [l for l in out.splitlines() if "state.json" in l]
    # the first record is renamed into place, the two later ones are exchanged
    assert len(calls) == 3, out
    assert "RENAME_EXCHANGE" not in calls[0]
    assert all("RENAME_EXCHANGE" in c and "= 0" in c for c in calls[1:]), out
    assert sorted(os.listdir(tmp_path / "c1")) == ["state.json"]


def test_an_opened_directory_without_a_record_still_gets_one(tmp_path):
    # open() assumes a record may exist; the exchange fails with ENOENT: plain rename
    d = state.ContainerDir.make(str(tmp_path), "c2")
    d.close()
    d = state.ContainerDir.open(str(tmp_path), "c2", lock=False)
    try:
        d.write({"n": 7})
        assert d.read() == {"n": 7}
        assert _names(d) == ["state.json"]
    finally:
        d.close()
