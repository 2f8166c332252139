"""The few messages of criu's RPC protocol (criu/images/rpc.proto, proto2) that
pyrunc sends and reads, encoded by hand: no protobuf dependency for two commands.

A message is a dict {field name: value}; a repeated field is a list, a nested message
a dict.  SCHEMA maps each message to {name: (field number, kind, repeated, message)}
with the numbers of rpc.proto (criu 3.x; numbers never change in protobuf).  Unknown
fields in what criu sends are skipped, as protobuf does.

Wire format (protobuf encoding): every field is a key varint (number << 3 | wire type)
then its value: wire type 0 a varint (int32, uint32, bool, enum; a negative int32 is
sign-extended to 64 bits, ten bytes), 2 a length-delimited blob (string, bytes, nested
message).  Repeated scalars are sent unpacked (proto2's default) and read either way.
"""

VARINT, I64, LEN, I32 = 0, 1, 2, 5

# criu_req_type
EMPTY, DUMP, RESTORE, CHECK, PRE_DUMP, PAGE_SERVER, NOTIFY = 0, 1, 2, 3, 4, 5, 6
CPUINFO_DUMP, CPUINFO_CHECK, FEATURE_CHECK, VERSION, WAIT_PID = 7, 8, 9, 10, 11
REQ_TYPES = {0: "EMPTY", 1: "DUMP", 2: "RESTORE", 3: "CHECK", 4: "PRE_DUMP", 5: "PAGE_SERVER",
             6: "NOTIFY", 7: "CPUINFO_DUMP", 8: "CPUINFO_CHECK", 9: "FEATURE_CHECK",
             10: "VERSION", 11: "WAIT_PID", 12: "PAGE_SERVER_CHLD", 13: "SINGLE_PRE_DUMP"}

# criu_cg_mode
CG_MODES = {"ignore": 0, "none": 1, "props": 2, "soft": 3, "full": 4, "strict": 5, "default": 6}

_S = "string"
_I = "int32"
_U = "uint32"
_B = "bool"
_E = "enum"
_M = "message"

SCHEMA = {
    "criu_page_server_info": {
        "address": (1, _S, False, None), "port": (2, _I, False, None),
        "pid": (3, _I, False, None), "fd": (4, _I, False, None),
    },
    "criu_veth_pair": {"if_in": (1, _S, False, None), "if_out": (2, _S, False, None)},
    "ext_mount_map": {"key": (1, _S, False, None), "val": (2, _S, False, None)},
    "join_namespace": {"ns": (1, _S, False, None), "ns_file": (2, _S, False, None),
                       "extra_opt": (3, _S, False, None)},
    "inherit_fd": {"key": (1, _S, False, None), "fd": (2, _I, False, None)},
    "cgroup_root": {"ctrl": (1, _S, False, None), "path": (2, _S, False, None)},
    "criu_opts": {
        "images_dir_fd": (1, _I, False, None),
        "pid": (2, _I, False, None),
        "leave_running": (3, _B, False, None),
        "ext_unix_sk": (4, _B, False, None),
        "tcp_established": (5, _B, False, None),
        "evasive_devices": (6, _B, False, None),
        "shell_job": (7, _B, False, None),
        "file_locks": (8, _B, False, None),
        "log_level": (9, _I, False, None),
        "log_file": (10, _S, False, None),
        "ps": (11, _M, False, "criu_page_server_info"),
        "notify_scripts": (12, _B, False, None),
        "root": (13, _S, False, None),
        "parent_img": (14, _S, False, None),
        "track_mem": (15, _B, False, None),
        "auto_dedup": (16, _B, False, None),
        "work_dir_fd": (17, _I, False, None),
        "link_remap": (18, _B, False, None),
        "veths": (19, _M, True, "criu_veth_pair"),
        "cpu_cap": (20, _U, False, None),
        "force_irmap": (21, _B, False, None),
        "exec_cmd": (22, _S, True, None),
        "ext_mnt": (23, _M, True, "ext_mount_map"),
        "manage_cgroups": (24, _B, False, None),
        "cg_root": (25, _M, True, "cgroup_root"),
        "rst_sibling": (26, _B, False, None),
        "inherit_fd": (27, _M, True, "inherit_fd"),
        "auto_ext_mnt": (28, _B, False, None),
        "ext_sharing": (29, _B, False, None),
        "ext_masters": (30, _B, False, None),
        "skip_mnt": (31, _S, True, None),
        "enable_fs": (32, _S, True, None),
        "manage_cgroups_mode": (34, _E, False, None),
        "ghost_limit": (35, _U, False, None),
        "irmap_scan_paths": (36, _S, True, None),
        "external": (37, _S, True, None),
        "empty_ns": (38, _U, False, None),
        "join_ns": (39, _M, True, "join_namespace"),
        "cgroup_props": (41, _S, False, None),
        "cgroup_props_file": (42, _S, False, None),
        "cgroup_dump_controller": (43, _S, True, None),
        "freeze_cgroup": (44, _S, False, None),
        "timeout": (45, _U, False, None),
        "tcp_skip_in_flight": (46, _B, False, None),
        "weak_sysctls": (47, _B, False, None),
        "lazy_pages": (48, _B, False, None),
        "status_fd": (49, _I, False, None),
        "orphan_pts_master": (50, _B, False, None),
        "config_file": (51, _S, False, None),
        "tcp_close": (52, _B, False, None),
        "lsm_profile": (53, _S, False, None),
        "lsm_mount_context": (63, _S, False, None),
    },
    "criu_dump_resp": {"restored": (1, _B, False, None)},
    "criu_restore_resp": {"pid": (1, _I, False, None)},
    "criu_notify": {"script": (1, _S, False, None), "pid": (2, _I, False, None)},
    "criu_features": {"mem_track": (1, _B, False, None), "lazy_pages": (2, _B, False, None),
                      "pidfd_store": (3, _B, False, None)},
    "criu_req": {
        "type": (1, _E, False, None),
        "opts": (2, _M, False, "criu_opts"),
        "notify_success": (3, _B, False, None),
        "keep_open": (4, _B, False, None),
        "features": (5, _M, False, "criu_features"),
        "pid": (6, _U, False, None),
    },
    "criu_version": {
        "major_number": (1, _I, False, None), "minor_number": (2, _I, False, None),
        "gitid": (3, _S, False, None), "sublevel": (4, _I, False, None),
        "extra": (5, _I, False, None), "name": (6, _S, False, None),
    },
    "criu_resp": {
        "type": (1, _E, False, None),
        "success": (2, _B, False, None),
        "dump": (3, _M, False, "criu_dump_resp"),
        "restore": (4, _M, False, "criu_restore_resp"),
        "notify": (5, _M, False, "criu_notify"),
        "ps": (6, _M, False, "criu_page_server_info"),
        "cr_errno": (7, _I, False, None),
        "features": (8, _M, False, "criu_features"),
        "cr_errmsg": (9, _S, False, None),
        "version": (10, _M, False, "criu_version"),
        "status": (11, _I, False, None),
    },
}

# field number -> (name, kind, repeated, message), per message, for decoding
_BY_NUMBER = {m: {f[0]: (name,) + f[1:] for name, f in fields.items()} for m, fields in SCHEMA.items()}


class DecodeError(ValueError):
    pass


def put_varint(out, n):
    """append n (0 <= n < 2**64) as a varint to the bytearray out"""
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def get_varint(data, pos):
    """(value, next position) of the varint at data[pos]"""
    n = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError("truncated varint")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def _scalar(kind, name, v):
    if kind == _S:
        if not isinstance(v, str):
            raise TypeError("%s: a string is needed" % name)
        return None
    if kind == _B:
        if not isinstance(v, bool):
            raise TypeError("%s: a bool is needed" % name)
        return int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("%s: an integer is needed" % name)
    if kind == _U:
        if not 0 <= v < 1 << 32:
            raise ValueError("%s: out of range for uint32" % name)
        return v
    if not -(1 << 31) <= v < 1 << 31:
        raise ValueError("%s: out of range for int32" % name)
    return v & 0xFFFFFFFFFFFFFFFF  # negative int32/enum: ten bytes, as protobuf does


def encode(message, values):
    """bytes of `values` (a dict) as the rpc.proto message named `message`; fields are
    written in field-number order, None values left out"""
    fields = SCHEMA[message]
    out = bytearray()
    items = []
    for name, v in values.items():
        try:
            f = fields[name]
        except KeyError:
            raise KeyError("%s has no field %s" % (message, name)) from None
        if v is not None:
            items.append((f[0], name, f, v))
    items.sort(key=lambda x: x[0])
    for number, name, (_, kind, repeated, sub), v in items:
        for one in (v if repeated else (v,)):
            if kind == _M:
                blob = encode(sub, one)
            elif kind == _S:
                _scalar(kind, name, one)
                blob = one.encode()
            else:
                put_varint(out, number << 3 | VARINT)
                put_varint(out, _scalar(kind, name, one))
                continue
            put_varint(out, number << 3 | LEN)
            put_varint(out, len(blob))
            out += blob
    return bytes(out)


def _to_signed32(n):
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n


def decode(message, data):
    """dict of the fields of `message` in data (repeated ones as lists)"""
    fields = _BY_NUMBER[message]
    out = {}
    pos = 0
    n = len(data)
    while pos < n:
        key, pos = get_varint(data, pos)
        number, wt = key >> 3, key & 7
        if wt == VARINT:
            raw, pos = get_varint(data, pos)
        elif wt == LEN:
            ln, pos = get_varint(data, pos)
            if pos + ln > n:
                raise DecodeError("%s: field %d: truncated" % (message, number))
            raw = data[pos:pos + ln]
            pos += ln
        elif wt == I64:
            raw, pos = data[pos:pos + 8], pos + 8
        elif wt == I32:
            raw, pos = data[pos:pos + 4], pos + 4
        else:
            raise DecodeError("%s: field %d: wire type %d" % (message, number, wt))
        if pos > n:
            raise DecodeError("%s: truncated" % message)
        f = fields.get(number)
        if f is None:
            continue  # a field newer than this table
        name, kind, repeated, sub = f
        if kind == _M:
            if wt != LEN:
                raise DecodeError("%s.%s: wire type %d" % (message, name, wt))
            vals = [decode(sub, raw)]
        elif kind == _S:
            if wt != LEN:
                raise DecodeError("%s.%s: wire type %d" % (message, name, wt))
            vals = [bytes(raw).decode(errors="replace")]
        elif wt == LEN:  # a packed repeated scalar
            vals = []
            p = 0
            while p < len(raw):
                x, p = get_varint(raw, p)
                vals.append(x)
        elif wt == VARINT:
            vals = [raw]
        else:
            raise DecodeError("%s.%s: wire type %d" % (message, name, wt))
        if kind == _B:
            vals = [bool(x) for x in vals]
        elif kind in (_I, _E):
            vals = [_to_signed32(x) for x in vals]
        elif kind == _U:
            vals = [x & 0xFFFFFFFF for x in vals]
        if repeated:
            out.setdefault(name, []).extend(vals)
        elif vals:
            out[name] = vals[-1]  # the last one wins (protobuf merges messages; enough here)
    return out
