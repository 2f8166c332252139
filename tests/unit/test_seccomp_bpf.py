"""The -ENOSYS prologue on its own (no libseccomp): layouts per architecture kind,
checked by running them in a cBPF interpreter in front of a stand-in filter."""
import pytest

from pyrunc import seccomp_bpf as bpf
from tests.seccomp.bpf_interp import run, seccomp_data

X86_64 = bpf.AUDIT_ARCH_X86_64
I386 = 0x40000003
AARCH64 = 0xC00000B7
FILTER_SAYS = 0x7FFF0000 | 0x1234     # a recognisable "the filter decided" value
TAIL = bpf.pack(bpf.RET_K, 0, 0, FILTER_SAYS)


def verdict(limits, nr, arch):
    return run(bpf.enosys_prologue(limits) + TAIL, seccomp_data(nr, arch))


def test_pack_unpack_round_trip():
    prog = bpf.pack(bpf.JEQ_K, 3, 250, 0xDEADBEEF) + bpf.pack(bpf.RET_K, 0, 0, 7)
    assert bpf.unpack(prog) == [(bpf.JEQ_K, 3, 250, 0xDEADBEEF), (bpf.RET_K, 0, 0, 7)]
    with pytest.raises(ValueError):
        bpf.unpack(prog[:-1])


def test_nothing_to_guard_gives_no_prologue():
    assert bpf.enosys_prologue({}) == b""
    assert bpf.enosys_prologue({X86_64: {}}) == b""


def test_plain_architecture():
    limits = {AARCH64: {None: 300}}
    assert verdict(limits, 300, AARCH64) == FILTER_SAYS
    assert verdict(limits, 0, AARCH64) == FILTER_SAYS
    assert verdict(limits, 301, AARCH64) == bpf.RET_ENOSYS
    assert verdict(limits, 0xFFFFFFFF, AARCH64) == bpf.RET_ENOSYS
    # another architecture is left to the filter (libseccomp's bad-arch action)
    assert verdict(limits, 5000, X86_64) == FILTER_SAYS


def test_x86_64_without_x32_leaves_x32_calls_to_the_filter():
    limits = {X86_64: {"x86_64": 334}}
    assert verdict(limits, 334, X86_64) == FILTER_SAYS
    assert verdict(limits, 335, X86_64) == bpf.RET_ENOSYS
    assert verdict(limits, bpf.X32_SYSCALL_BIT | 900, X86_64) == FILTER_SAYS


def test_x32_without_x86_64():
    limits = {X86_64: {"x32": bpf.X32_SYSCALL_BIT | 300}}
    assert verdict(limits, bpf.X32_SYSCALL_BIT | 300, X86_64) == FILTER_SAYS
    assert verdict(limits, bpf.X32_SYSCALL_BIT | 301, X86_64) == bpf.RET_ENOSYS
    assert verdict(limits, 5000, X86_64) == FILTER_SAYS


def test_x86_64_and_x32_have_separate_limits():
    limits = {X86_64: {"x86_64": 334, "x32": bpf.X32_SYSCALL_BIT | 200}, I386: {None: 440}}
    assert verdict(limits, 334, X86_64) == FILTER_SAYS
    assert verdict(limits, 335, X86_64) == bpf.RET_ENOSYS
    assert verdict(limits, bpf.X32_SYSCALL_BIT | 200, X86_64) == FILTER_SAYS
    assert verdict(limits, bpf.X32_SYSCALL_BIT | 201, X86_64) == bpf.RET_ENOSYS
    assert verdict(limits, 440, I386) == FILTER_SAYS
    assert verdict(limits, 441, I386) == bpf.RET_ENOSYS


def test_s390_multiplexer_answers_enosys():
    limits = {bpf.AUDIT_ARCH_S390X: {None: 400}}
    assert verdict(limits, 0, bpf.AUDIT_ARCH_S390X) == bpf.RET_ENOSYS
    assert verdict(limits, 1, bpf.AUDIT_ARCH_S390X) == FILTER_SAYS
    assert verdict(limits, 401, bpf.AUDIT_ARCH_S390X) == bpf.RET_ENOSYS


def test_many_architectures_stay_in_jump_range():
    limits = {0x1000 + i: {None: 100 + i} for i in range(40)}
    prog = bpf.enosys_prologue(limits)
    for i in range(40):
        assert run(prog + TAIL, seccomp_data(100 + i, 0x1000 + i)) == FILTER_SAYS
        assert run(prog + TAIL, seccomp_data(101 + i, 0x1000 + i)) == bpf.RET_ENOSYS
