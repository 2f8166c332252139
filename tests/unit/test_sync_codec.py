"""The protocol constants exist twice (C header for the child, sync.py for Python)."""
import os
import socket

import pytest

from pyrunc import sync
from pyrunc.container import _send_go
from pyrunc.errors import InitError
from pyrunc.native import ffi, lib

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "csrc", "include", "pyrunc_api.h")


def header_defines(prefix):
    out = {}
    with open(HEADER) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "#define" and parts[1].startswith(prefix):
                out[parts[1][len(prefix):]] = int(parts[2])
    return out


def test_message_types_match_header():
    msgs = header_defines("PRC_MSG_")
    msgs.pop("TEXT")
    assert msgs == {k[4:]: v for k, v in vars(sync).items() if k.startswith("MSG_")}


def test_stage_names_cover_header():
    stages = header_defines("PRC_STAGE_")
    assert sorted(stages.values()) == sorted(sync.STAGES)


def test_record_roundtrip_with_fd():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    try:
        ca, cb = sync.Channel(a.detach()), sync.Channel(b.detach())
        ca.send(sync.MSG_PTY, 42, fd=r)
        mtype, value, fd = cb.recv()
        assert (mtype, value) == (sync.MSG_PTY, 42)
        assert fd >= 0 and fd != r
        os.write(w, b"ok")
        assert os.read(fd, 2) == b"ok"
        os.close(fd)
        ca.close()
        assert cb.recv()[0] == 0  # EOF
        cb.close()
    finally:
        os.close(r)
        os.close(w)


def _error_record(err, text):
    """an error record as the child's prc_fail sends it, from the mount stage"""
    m = ffi.new("struct prc_msg *")
    m.type = lib.PRC_MSG_ERROR
    m.stage = lib.PRC_STAGE_MOUNT
    m.err = err
    m.text = text
    return m


def test_error_record_becomes_one_line():
    err = sync.error_from(_error_record(19, b"mount nosuchfs `x` on `/mnt`"))
    assert str(err) == "mount nosuchfs `x` on `/mnt`: no such device"
    assert err.stage == lib.PRC_STAGE_MOUNT and err.errno == 19


def test_abi_version_mismatch_is_refused():
    plan = ffi.new("struct prc_plan *")
    plan.abi = 999
    pid = ffi.new("int *")
    err = ffi.new("struct prc_msg *")
    assert lib.prc_spawn(plan, pid, err) < 0
    assert b"ABI" in ffi.string(err.text)


def _error_then_close(end):
    """what a child's prc_fail leaves behind: one error record, then its end closed"""
    assert lib.prc_sync_send(end, _error_record(19, b"mount nosuchfs `x` on `/mnt`"), -1) == 0
    os.close(end)


def test_go_to_a_child_that_failed_first_reports_the_childs_error():
    # early_setup: the child may fail while the parent still writes its pid record;
    # the parent's GO then meets a closed socket, and must say why the child failed
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent = sync.Channel(a.detach())
    _error_then_close(b.detach())
    with pytest.raises(InitError) as e:
        _send_go(parent)
    assert str(e.value) == "mount nosuchfs `x` on `/mnt`: no such device"
    parent.close()

    # without a word: the child died (a signal, PDEATHSIG of an earlier parent...)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent = sync.Channel(a.detach())
    b.close()
    with pytest.raises(InitError) as e:
        _send_go(parent)
    assert str(e.value) == "container init exited during setup"
    parent.close()


def test_a_child_that_failed_with_our_go_unread_still_reports_its_error():
    # the child fails while our GO is on its way: it closes with GO unread, and the
    # kernel reports ECONNRESET to us before the child's record that waits for us
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent = sync.Channel(a.detach())
    child = b.detach()
    assert lib.prc_sync_send(child, _error_record(20, b"mount sysfs on `/sys`"), -1) == 0
    _send_go(parent)  # queued at the child, which never reads it
    os.close(child)
    with pytest.raises(InitError) as e:
        parent.recv()
    assert str(e.value) == "mount sysfs on `/sys`: not a directory"
    parent.close()
