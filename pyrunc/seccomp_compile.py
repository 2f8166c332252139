"""linux.seccomp -> BPF with libseccomp (pyrunc._libseccomp), plus runc's -ENOSYS patch.

Imported only on a cache miss (pyrunc/seccomp.py).  The translation follows runc
(libcontainer/specconv SetupSeccomp, libcontainer/seccomp): one libseccomp rule per
name, names libseccomp does not know skipped, rules whose action equals the default
dropped, arguments ANDed unless two conditions test the same argument (then one rule
each, ORed).  Where the runtime-spec says MUST and runc is lax, we follow the spec:
an errnoRet on an action that takes none is an error.

The program is exported, never loaded here: libseccomp's load-time attributes
(SCMP_FLTATR_CTL_LOG, _SSB, _TSYNC, _NNP) do not reach an exported program, so the
seccomp(2) flags are computed here and travel next to it.
"""
import errno as _errno
from pyrunc import _os as os

from pyrunc import seccomp_bpf as bpf
from pyrunc.seccomp import SeccompError

try:
    from pyrunc._libseccomp import ffi, lib
except ImportError as _err:  # pragma: no cover - only on a broken install
    raise SeccompError("load pyrunc._libseccomp: %s (run `make install`)" % _err) from None

_P = "config.json: linux.seccomp"

# seccomp(2) filter flags (linux/seccomp.h; kernel ABI, some newer than our headers)
FLAG_TSYNC = 1 << 0
FLAG_LOG = 1 << 1
FLAG_SPEC_ALLOW = 1 << 2
FLAG_NEW_LISTENER = 1 << 3
FLAG_WAIT_KILLABLE_RECV = 1 << 5

# runtime-spec flag name -> seccomp(2) flag; TSYNC is accepted and ignored, as runc
# does: the child is single-threaded when it loads the filter
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_TRACE = 0x7FF00000
MAX_ERRNO = 4095        # the kernel clamps SECCOMP_RET_ERRNO data to this

# action name -> (base value, takes errnoRet)
ACTIONS = {
    "SCMP_ACT_KILL": (lib.SCMP_ACT_KILL_THREAD, False),
    "SCMP_ACT_KILL_THREAD": (lib.SCMP_ACT_KILL_THREAD, False),
    "SCMP_ACT_KILL_PROCESS": (lib.SCMP_ACT_KILL_PROCESS, False),
    "SCMP_ACT_TRAP": (lib.SCMP_ACT_TRAP, False),
    "SCMP_ACT_ERRNO": (SECCOMP_RET_ERRNO, True),
    "SCMP_ACT_TRACE": (SECCOMP_RET_TRACE, True),
    "SCMP_ACT_ALLOW": (lib.SCMP_ACT_ALLOW, False),
    "SCMP_ACT_LOG": (lib.SCMP_ACT_LOG, False),
    "SCMP_ACT_NOTIFY": (lib.SCMP_ACT_NOTIFY, False),
}

# runc's isAllowAction: a default that lets calls through needs no -ENOSYS stub
# (TRACE too: a tracer that emulates calls handles the unknown ones itself)
_PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")

OPERATORS = {
    "SCMP_CMP_NE": lib.SCMP_CMP_NE,
    "SCMP_CMP_LT": lib.SCMP_CMP_LT,
    "SCMP_CMP_LE": lib.SCMP_CMP_LE,
    "SCMP_CMP_EQ": lib.SCMP_CMP_EQ,
    "SCMP_CMP_GE": lib.SCMP_CMP_GE,
    "SCMP_CMP_GT": lib.SCMP_CMP_GT,
    "SCMP_CMP_MASKED_EQ": lib.SCMP_CMP_MASKED_EQ,
}

# every architecture the runtime-spec lists; libseccomp names them in lower case
# without the prefix.  Whether this libseccomp knows one is asked at compile time.
ARCHES = ("X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32", "MIPSEL",
          "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390", "S390X", "PARISC",
          "PARISC64", "RISCV64", "LOONGARCH64", "M68K", "SH", "SHEB")

# After the filter is loaded the child still sends the listener fd to the parent with
# sendmsg(2) and only then may an agent answer anything: a notify rule on it would
# hang create forever.  runc refuses `write` for that reason (its init writes to its
# parent after loading the filter); we refuse it too, so that a profile runc rejects is
# not accepted here, and callers get the same answer from both.
_NOTIFY_FORBIDDEN = {"sendmsg": "pyrunc hands the listener over with it",
                     "write": "the runtime writes to its parent after loading the filter, as runc"}

_U64 = (1 << 64) - 1


class Compiled:
    __slots__ = ("program", "flags", "notify", "skipped", "lib_path", "patch_len", "pfc")

    def __init__(self, program, flags, notify, skipped, lib_path, patch_len, pfc=None):
        self.program = program          # bytes, struct sock_filter[]
        self.flags = flags              # SECCOMP_FILTER_FLAG_*
        self.notify = notify            # a rule uses SCMP_ACT_NOTIFY
        self.skipped = skipped          # names libseccomp does not know
        self.lib_path = lib_path        # the libseccomp file that compiled it
        self.patch_len = patch_len      # instructions of the -ENOSYS prologue
        self.pfc = pfc


def libseccomp_version():
    v = lib.seccomp_version()
    return "%d.%d.%d" % (v.major, v.minor, v.micro)


def _why(rc):
    e = -rc if rc < 0 else rc
    return (os.strerror(e) if e else "failed").lower()


def _rule_why(rc):
    # libseccomp's errno for a rule, said in the profile's terms
    e = -rc
    if e == _errno.EEXIST:
        return "it conflicts with an earlier rule for the same call and arguments"
    if e == _errno.EOPNOTSUPP:
        return "the action is not supported by this kernel"
    return _why(rc)


def _is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _arch_token(name, where):
    if not isinstance(name, str):
        raise SeccompError("%s: must be a string" % where)
    if not name.startswith("SCMP_ARCH_") or name[10:] not in ARCHES:
        raise SeccompError('%s: unknown architecture "%s"' % (where, name))
    tok = lib.seccomp_arch_resolve_name(name[10:].lower().encode())
    if tok == 0:
        raise SeccompError('%s: architecture "%s" is not supported by libseccomp %s'
                           % (where, name, libseccomp_version()))
    return tok


def _action(name, errno_ret, where, errno_where):
    if not isinstance(name, str):
        raise SeccompError("%s: must be a string" % where)
    try:
        base, takes_errno = ACTIONS[name]
    except KeyError:
        raise SeccompError('%s: unknown action "%s"' % (where, name)) from None
    if errno_ret is None:
        if takes_errno:
            return base | _errno.EPERM
        return base
    if not takes_errno:
        # runtime-spec: "When the action doesn't support an errno, the runtime MUST
        # print and error and fail"
        raise SeccompError("%s: %s takes no errno" % (errno_where, name))
    limit = MAX_ERRNO if base == SECCOMP_RET_ERRNO else 0xFFFF
    if not _is_uint(errno_ret) or errno_ret > limit:
        raise SeccompError("%s: must be a number from 0 to %d" % (errno_where, limit))
    return base | errno_ret


def _strings(v, where, nonempty=True):
    if not isinstance(v, list) or (nonempty and not v):
        raise SeccompError("%s: must be a non-empty array of strings" % where
                           if nonempty else "%s: must be an array of strings" % where)
    for i, s in enumerate(v):
        if not isinstance(s, str) or not s:
            raise SeccompError("%s[%d]: must be a non-empty string" % (where, i))
    return v


def _conditions(args, where):
    """[(index, op, a, b)] from a rule's args"""
    if args is None:
        return []
    if not isinstance(args, list):
        raise SeccompError("%s: must be an array" % where)
    out = []
    for i, a in enumerate(args):
        w = "%s[%d]" % (where, i)
        if not isinstance(a, dict):
            raise SeccompError("%s: must be an object" % w)
        idx = a.get("index")
        if not _is_uint(idx) or idx > 5:
            raise SeccompError("%s.index: must be a system call argument index from 0 to 5" % w)
        for key in ("value", "valueTwo"):
            v = a.get(key)
            if key == "value" and v is None:
                raise SeccompError("%s.value: is required" % w)
            if v is not None and (not _is_uint(v) or v > _U64):
                raise SeccompError("%s.%s: must be an unsigned 64-bit number" % (w, key))
        op = a.get("op")
        if op is None:
            raise SeccompError("%s.op: is required" % w)
        if op not in OPERATORS:
            raise SeccompError('%s.op: unknown operator "%s"' % (w, op))
        out.append((idx, OPERATORS[op], a["value"], a.get("valueTwo") or 0))
    return out


def _flag_ok(flags):
    return lib.prs_filter_flags_supported(flags) == 1


def _kernel_flags(sc, notify):
    """seccomp(2) flags: the profile's, or SPEC_ALLOW when it names none (runc's
    default, when the kernel has it).  Unsupported flags fail create, as in runc."""
    names = sc.get("flags")
    flags = 0
    if names is None:
        if _flag_ok(FLAG_SPEC_ALLOW):
            flags |= FLAG_SPEC_ALLOW
    else:
        if not isinstance(names, list):
            raise SeccompError("%s.flags: must be an array of strings" % _P)
        for i, name in enumerate(names):
            w = "%s.flags[%d]" % (_P, i)
            if not isinstance(name, str):
                raise SeccompError("%s: must be a string" % w)
            if name not in FLAGS:
                raise SeccompError('%s: unknown flag "%s"' % (w, name))
            f = FLAGS[name]
            if f == FLAG_WAIT_KILLABLE_RECV:
                # the kernel takes it only together with a listener (EINVAL otherwise)
                if not notify:
                    raise SeccompError("%s: %s needs a SCMP_ACT_NOTIFY rule" % (w, name))
                if not _flag_ok(FLAG_NEW_LISTENER | f):
                    raise SeccompError("%s: %s is not supported by this kernel" % (w, name))
            elif f and not _flag_ok(f):
                raise SeccompError("%s: %s is not supported by this kernel" % (w, name))
            flags |= f
    if notify:
        flags |= FLAG_NEW_LISTENER
    return flags


def _export(ctx):
    fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise SeccompError("%s: export the filter: %s" % (_P, _why(rc)))
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _export_pfc(ctx):
    fd = os.memfd_create("pyrunc-seccomp-pfc", os.MFD_CLOEXEC)
    try:
        lib.seccomp_export_pfc(ctx, fd)
        return os.pread(fd, os.lseek(fd, 0, os.SEEK_END), 0).decode()
    finally:
        os.close(fd)


def _audit_arch(tok):
    # libseccomp's arch tokens are the kernel's AUDIT_ARCH_* values, except x32, which
    # the kernel reports as x86-64 (its calls are told apart by X32_SYSCALL_BIT)
    if tok == lib.SCMP_ARCH_X32:
        return bpf.AUDIT_ARCH_X86_64, "x32"
    if tok == lib.SCMP_ARCH_X86_64:
        return bpf.AUDIT_ARCH_X86_64, "x86_64"
    return tok, None


def _enosys_limits(arches, all_names):
    """{audit_arch: {mode: highest system call number the profile names}}"""
    limits = {}
    for tok in arches:
        audit, mode = _audit_arch(tok)
        best = -1
        for name in all_names:
            nr = lib.seccomp_syscall_resolve_name_arch(tok, name)
            if nr > best:
                best = nr
        if best > 0:
            limits.setdefault(audit, {})[mode] = best
    return limits


def _validate_shape(sc):
    for key in ("listenerPath", "listenerMetadata"):
        v = sc.get(key)
        if v is not None and not isinstance(v, str):
            raise SeccompError("%s.%s: must be a string" % (_P, key))
    if sc.get("listenerMetadata") and not sc.get("listenerPath"):
        raise SeccompError("%s.listenerMetadata: requires listenerPath too" % _P)
    rules = sc.get("syscalls")
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise SeccompError("%s.syscalls: must be an array" % _P)
    return rules


def compile_profile(sc, want_pfc=False):
    """Validate and compile `sc`; returns a Compiled.  Raises SeccompError."""
    rules = _validate_shape(sc)
    default_name = sc.get("defaultAction")
    if default_name is None:
        raise SeccompError("%s.defaultAction: is required" % _P)
    default = _action(default_name, sc.get("defaultErrnoRet"), _P + ".defaultAction",
                      _P + ".defaultErrnoRet")
    if default_name == "SCMP_ACT_NOTIFY":
        # every call, the child's own sendmsg of the listener included, would wait
        # for an agent that cannot have the listener yet (runc refuses it as well)
        raise SeccompError("%s.defaultAction: SCMP_ACT_NOTIFY cannot be the default action" % _P)

    # first pass: check everything and expand names, so that no libseccomp context
    # exists while we may still raise on a malformed entry
    expanded = []           # (rule index, name, action, conditions)
    notify = False
    for i, r in enumerate(rules):
        w = "%s.syscalls[%d]" % (_P, i)
        if not isinstance(r, dict):
            raise SeccompError("%s: must be an object" % w)
        names = _strings(r.get("names"), w + ".names")
        if r.get("action") is None:
            raise SeccompError("%s.action: is required" % w)
        act = _action(r["action"], r.get("errnoRet"), w + ".action", w + ".errnoRet")
        conds = _conditions(r.get("args"), w + ".args")
        if r["action"] == "SCMP_ACT_NOTIFY":
            notify = True
            for n in names:
                if n in _NOTIFY_FORBIDDEN:
                    # runc's wording: "SCMP_ACT_NOTIFY cannot be used for the write syscall"
                    raise SeccompError("%s: SCMP_ACT_NOTIFY cannot be used for the %s syscall (%s)"
                                       % (w, n, _NOTIFY_FORBIDDEN[n]))
        for n in names:
            expanded.append((i, n, act, conds))
    if notify:
        if not sc.get("listenerPath"):
            raise SeccompError("%s.listenerPath: is required by SCMP_ACT_NOTIFY" % _P)
        if lib.seccomp_api_get() < 5:
            raise SeccompError("%s: SCMP_ACT_NOTIFY needs libseccomp >= 2.5 and Linux >= 5.0 "
                               "(API level %d)" % (_P, lib.seccomp_api_get()))

    arch_names = sc.get("architectures")
    tokens = []
    if arch_names is not None:
        if not isinstance(arch_names, list):
            raise SeccompError("%s.architectures: must be an array of strings" % _P)
        for i, a in enumerate(arch_names):
            tokens.append(_arch_token(a, "%s.architectures[%d]" % (_P, i)))
    flags = _kernel_flags(sc, notify)

    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise SeccompError("%s.defaultAction: libseccomp rejected %s" % (_P, default_name))
    try:
        # report the kernel's errno, not libseccomp's -ECANCELED and friends
        lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_API_SYSRAWRC, 1)
        native = lib.seccomp_arch_native()
        arches = [native]
        for i, tok in enumerate(tokens):
            if tok in arches:
                continue
            rc = lib.seccomp_arch_add(ctx, tok)
            if rc < 0:
                raise SeccompError("%s.architectures[%d]: add %s: %s"
                                   % (_P, i, arch_names[i], _why(rc)))
            arches.append(tok)
        # runc: the binary-tree layout pays off on long profiles, and libseccomp
        # <= 2.5.4 mishandles it on empty ones
        if len(expanded) > 32:
            lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_CTL_OPTIMIZE, 2)

        skipped = []
        all_names = []
        cmp_buf = ffi.new("struct scmp_arg_cmp[6]")
        for i, name, act, conds in expanded:
            bname = name.encode()
            all_names.append(bname)
            if act == default:
                continue            # redundant; libseccomp would refuse it
            nr = lib.seccomp_syscall_resolve_name(bname)
            if nr == -1:            # __NR_SCMP_ERROR: unknown to this libseccomp
                skipped.append(name)
                continue
            # conditions on distinct arguments are ANDed in one rule; if one argument
            # is tested twice, runc adds one rule per condition (ORed), and so do we
            counts = [0] * 6
            for c in conds:
                counts[c[0]] += 1
            groups = [conds] if max(counts, default=0) <= 1 else [[c] for c in conds]
            for group in groups:
                for j, (idx, op, a, b) in enumerate(group):
                    cmp_buf[j].arg = idx
                    cmp_buf[j].op = op
                    cmp_buf[j].datum_a = a
                    cmp_buf[j].datum_b = b
                rc = lib.seccomp_rule_add_array(ctx, act, nr, len(group), cmp_buf)
                if rc < 0:
                    raise SeccompError("%s.syscalls[%d]: libseccomp rejected the rule for `%s`: %s"
                                       % (_P, i, name, _rule_why(rc)))
        program = _export(ctx)
        text = _export_pfc(ctx) if want_pfc else None
    finally:
        lib.seccomp_release(ctx)

    patch = b""
    errno_ret = sc.get("defaultErrnoRet")
    if default_name not in _PERMISSIVE and not (default_name == "SCMP_ACT_ERRNO"
                                                and errno_ret == _errno.ENOSYS):
        # runc guards only the listed architectures; the native one is in every
        # filter libseccomp builds, so it is guarded here even when not listed
        patch = bpf.enosys_prologue(_enosys_limits(arches, all_names))
    program = patch + program
    n = len(program) // bpf.INSN_SIZE
    if n > bpf.BPF_MAXINSNS:
        raise SeccompError("%s: the filter has %d instructions, the kernel takes at most %d"
                           % (_P, n, bpf.BPF_MAXINSNS))
    return Compiled(program, flags, notify, tuple(skipped), ffi.string(lib.prs_lib_path()).decode(),
                    len(patch) // bpf.INSN_SIZE, text)


def pfc(sc):
    """libseccomp's pseudo-C listing of the filter, before the -ENOSYS prologue (a
    debugging aid: `python -m pyrunc.seccomp_compile config.json`)."""
    return compile_profile(sc, want_pfc=True).pfc


def features():
    """runtime-spec features.md `linux.seccomp`."""
    arches = []
    for a in ARCHES:
        if lib.seccomp_arch_resolve_name(a.lower().encode()):
            arches.append("SCMP_ARCH_" + a)
    supported = []
    for name, f in FLAGS.items():
        probe = f | FLAG_NEW_LISTENER if f == FLAG_WAIT_KILLABLE_RECV else f
        if f == 0 or _flag_ok(probe):
            supported.append(name)
    actions = []
    for name, (base, _) in ACTIONS.items():
        if lib.prs_action_available(base & 0xFFFF0000) == 1:
            actions.append(name)
    return {
        "enabled": True,
        "actions": sorted(actions),
        "operators": sorted(OPERATORS),
        "archs": sorted(arches),
        "knownFlags": list(FLAGS),
        "supportedFlags": supported,
    }


if __name__ == "__main__":  # pragma: no cover - developer aid
    import sys

    from pyrunc import jsonfast

    with open(sys.argv[1] if len(sys.argv) > 1 else "config.json") as f:
        doc = jsonfast.loads(f.read())
    prof = doc.get("linux", {}).get("seccomp", doc) if "linux" in doc else doc
    c = compile_profile(prof, want_pfc=True)
    print(c.pfc)
    print("# %d instructions (%d in the -ENOSYS prologue), flags %#x, notify %s, skipped %s"
          % (len(c.program) // 8, c.patch_len, c.flags, c.notify, ", ".join(c.skipped) or "none"))
    print(bpf.disassemble(c.program[:c.patch_len * 8]))
