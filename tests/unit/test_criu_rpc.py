"""pyrunc/criu_rpc.py: the hand-written protobuf coder for criu's RPC messages.

Field numbers are checked against rpc.proto itself (Debian's criu package installs it
as /usr/include/criu/rpc.proto), bytes against hand-computed encodings, and, where
Debian's python3-protobuf and pycriu are installed, against the real protobuf
library reading and writing the same messages.
"""
import os
import re
import sys

import pytest

from pyrunc import criu_rpc as R

RPC_PROTO = "/usr/include/criu/rpc.proto"


def _proto_fields():
    """{message: {field: (number, label, type)}} parsed from rpc.proto"""
    with open(RPC_PROTO) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
        text = re.sub(r"//[^\n]*", "", text)
    out = {}
    for m in re.finditer(r"message\s+(\w+)\s*\{(.*?)\}", text, re.S):
        fields = {}
        for fm in re.finditer(r"(optional|required|repeated)\s+(\w+)\s+(\w+)\s*=\s*(\d+)", m.group(2)):
            fields[fm.group(3)] = (int(fm.group(4)), fm.group(1), fm.group(2))
        out[m.group(1)] = fields
    return out


@pytest.mark.skipif(not os.path.exists(RPC_PROTO), reason="criu's rpc.proto is not installed (criu package)")
def test_schema_matches_rpc_proto():
    proto = _proto_fields()
    kinds = {"string": "string", "int32": "int32", "uint32": "uint32", "bool": "bool"}
    for msg, fields in R.SCHEMA.items():
        assert msg in proto, msg
        for name, (number, kind, repeated, sub) in fields.items():
            assert name in proto[msg], "%s.%s not in rpc.proto" % (msg, name)
            pnum, label, ptype = proto[msg][name]
            assert number == pnum, "%s.%s: %d, rpc.proto says %d" % (msg, name, number, pnum)
            assert repeated == (label == "repeated"), "%s.%s" % (msg, name)
            if kind == "message":
                assert ptype == sub, "%s.%s" % (msg, name)
            elif kind == "enum":
                assert ptype.startswith("criu_"), "%s.%s: %s" % (msg, name, ptype)
            else:
                assert kinds[ptype] == kind, "%s.%s" % (msg, name)
    # every required field of what we send or read is known to us
    for msg in ("criu_req", "criu_resp", "criu_opts", "ext_mount_map", "inherit_fd", "join_namespace",
                "cgroup_root", "criu_notify", "criu_version"):
        for name, (_, label, _) in proto[msg].items():
            if label == "required":
                assert name in R.SCHEMA[msg], "%s.%s is required" % (msg, name)


def test_varint():
    for n, raw in ((0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
                   (2 ** 32 - 1, b"\xff\xff\xff\xff\x0f"), (2 ** 64 - 1, b"\xff" * 9 + b"\x01")):
        out = bytearray()
        R.put_varint(out, n)
        assert bytes(out) == raw
        assert R.get_varint(raw, 0) == (n, len(raw))
    with pytest.raises(R.DecodeError):
        R.get_varint(b"\x80", 0)


def test_known_bytes():
    # criu_req{type: DUMP(1), opts{images_dir_fd: 5, log_file: "dump.log", leave_running: true}}
    opts = b"\x08\x05" + b"\x18\x01" + b"\x52\x08dump.log"
    want = b"\x08\x01" + b"\x12" + bytes([len(opts)]) + opts
    got = R.encode("criu_req", {"type": R.DUMP, "opts": {
        "log_file": "dump.log", "leave_running": True, "images_dir_fd": 5}})
    assert got == want
    # a negative int32 takes ten bytes; field 49 (status_fd) needs a two-byte key
    assert R.encode("criu_opts", {"status_fd": -1}) == b"\x88\x03" + b"\xff" * 9 + b"\x01"
    assert R.decode("criu_opts", b"\x88\x03" + b"\xff" * 9 + b"\x01") == {"status_fd": -1}


def test_round_trip_nested_and_repeated():
    req = {"type": R.RESTORE, "opts": {
        "images_dir_fd": 3, "root": "/run/x/criu-root", "rst_sibling": True, "manage_cgroups_mode": 3,
        "ext_mnt": [{"key": "/etc/hosts", "val": "/tmp/hosts"}, {"key": "/dev/null", "val": "/dev/null"}],
        "inherit_fd": [{"key": "pipe:[123]", "fd": 1}, {"key": "extRootNetNS", "fd": 4}],
        "join_ns": [{"ns": "uts", "ns_file": "/proc/1/ns/uts"}],
        "cg_root": [{"ctrl": "memory", "path": "/a/b"}],
        "external": ["net[4026531992]:extRootNetNS"], "empty_ns": 0x40000000,
        "cpu_cap": 0xFFFFFFFF}, "notify_success": False}
    data = R.encode("criu_req", req)
    assert R.decode("criu_req", data) == req


def test_decode_skips_unknown_and_packed():
    # field 15 (unknown to criu_notify) as varint, fixed32, fixed64, and bytes; then script
    data = b"\x78\x05" + b"\x7d\x00\x00\x00\x00" + b"\x79" + b"\x00" * 8 + b"\x7a\x02ab" + b"\x0a\x09post-dump"
    assert R.decode("criu_notify", data) == {"script": "post-dump"}
    # a scalar in packed form (what proto3 writers send for repeated scalars) is read too
    assert R.decode("criu_opts", b"\xb2\x02\x04\x80\x80\x80\x02") == {"empty_ns": 0x400000}
    with pytest.raises(R.DecodeError):
        R.decode("criu_notify", b"\x0a\x09post")


def test_encode_type_checks():
    with pytest.raises(TypeError):
        R.encode("criu_opts", {"leave_running": 1})
    with pytest.raises(ValueError):
        R.encode("criu_opts", {"empty_ns": -1})
    with pytest.raises(KeyError):
        R.encode("criu_opts", {"no_such_field": 1})


def _pb():
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from pycriu import rpc_pb2
    except Exception:  # noqa: BLE001 - absent package or a protobuf that does not load
        return None
    finally:
        sys.path.remove("/usr/lib/python3/dist-packages")
    return rpc_pb2


@pytest.mark.skipif(_pb() is None, reason="Debian's python3-criu/python3-protobuf are not installed")
def test_against_protobuf_library():
    rpc = _pb()
    req = {"type": R.DUMP, "opts": {
        "images_dir_fd": 7, "pid": 1234, "log_level": 4, "log_file": "dump.log", "root": "/r",
        "manage_cgroups": True, "notify_scripts": True, "orphan_pts_master": True, "empty_ns": 0x40000000,
        "ext_mnt": [{"key": "/a", "val": "/a"}, {"key": "/proc/kcore", "val": "/dev/null"}],
        "external": ["net[1]:extRootNetNS"], "freeze_cgroup": "/sys/fs/cgroup/x", "status_fd": -1,
        "manage_cgroups_mode": 5, "config_file": "/etc/criu/runc.conf"}}
    data = R.encode("criu_req", req)
    m = rpc.criu_req()
    m.ParseFromString(data)
    assert m.type == rpc.DUMP and m.opts.pid == 1234 and m.opts.status_fd == -1
    assert [(e.key, e.val) for e in m.opts.ext_mnt] == [("/a", "/a"), ("/proc/kcore", "/dev/null")]
    assert m.opts.manage_cgroups_mode == rpc.STRICT and m.opts.empty_ns == 0x40000000
    assert m.SerializeToString() == data  # same bytes: field order and widths agree
    resp = rpc.criu_resp(type=rpc.NOTIFY, success=True)
    resp.notify.script = "setup-namespaces"
    resp.notify.pid = 42
    resp.cr_errno = -5
    resp.version.major_number = 3
    resp.version.minor_number = 17
    assert R.decode("criu_resp", resp.SerializeToString()) == {
        "type": R.NOTIFY, "success": True, "notify": {"script": "setup-namespaces", "pid": 42},
        "cr_errno": -5, "version": {"major_number": 3, "minor_number": 17}}
