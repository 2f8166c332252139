"""cffi builder for ``pyrunc._libseccomp`` (API mode, out-of-line), linked with the
system's libseccomp.so.2.

A module of its own, not part of ``pyrunc._native``: loading libseccomp (and the
dynamic linking it needs) is only paid on a seccomp cache miss, by `pyrunc features`,
and by tests.  A create that hits the cache never imports it (pyrunc/seccomp.py).

What cffi sees is the small slice of <seccomp.h> that pyrunc/seccomp_compile.py uses,
plus ``seccomp/shim.h``.  Enum values and action constants are read from the real
headers at build time (``...``), so they cannot drift from the library.  libseccomp
2.5.0 is the oldest version this builds against (SCMP_FLTATR_CTL_OPTIMIZE and
SCMP_FLTATR_API_SYSRAWRC are 2.5 names); the notify API needs it anyway.
"""
import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHIM = os.path.join(HERE, "seccomp")

CDEF = """
typedef void *scmp_filter_ctx;
typedef uint64_t scmp_datum_t;

struct scmp_version {
    unsigned int major;
    unsigned int minor;
    unsigned int micro;
};

enum scmp_filter_attr {
    SCMP_FLTATR_ACT_DEFAULT, SCMP_FLTATR_ACT_BADARCH, SCMP_FLTATR_CTL_NNP,
    SCMP_FLTATR_CTL_TSYNC, SCMP_FLTATR_API_TSKIP, SCMP_FLTATR_CTL_LOG, SCMP_FLTATR_CTL_SSB,
    SCMP_FLTATR_CTL_OPTIMIZE, SCMP_FLTATR_API_SYSRAWRC, ...
};

enum scmp_compare {
    SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT,
    SCMP_CMP_MASKED_EQ, ...
};

struct scmp_arg_cmp {
    unsigned int arg;
    enum scmp_compare op;
    scmp_datum_t datum_a;
    scmp_datum_t datum_b;
};

#define SCMP_ACT_KILL_PROCESS ...
#define SCMP_ACT_KILL_THREAD ...
#define SCMP_ACT_TRAP ...
#define SCMP_ACT_NOTIFY ...
#define SCMP_ACT_LOG ...
#define SCMP_ACT_ALLOW ...
#define SCMP_ARCH_X32 ...
#define SCMP_ARCH_X86_64 ...
#define SCMP_ARCH_S390 ...
#define SCMP_ARCH_S390X ...

const struct scmp_version *seccomp_version(void);
unsigned int seccomp_api_get(void);

scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);

uint32_t seccomp_arch_resolve_name(const char *arch_name);
uint32_t seccomp_arch_native(void);
int seccomp_arch_exist(const scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);

int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);

int seccomp_syscall_resolve_name(const char *name);
int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name);
char *seccomp_syscall_resolve_num_arch(uint32_t arch_token, int num);

int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                           unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);

int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
int seccomp_export_pfc(const scmp_filter_ctx ctx, int fd);

void free(void *ptr);
"""


def _rel(path):
    # setuptools wants source paths relative to the project root
    return os.path.relpath(path, ROOT)


def make_builder(absolute=False):
    fix = (lambda p: p) if absolute else _rel
    with open(os.path.join(SHIM, "shim.h")) as f:
        shim_h = f.read()
    builder = FFI()
    builder.cdef(CDEF + shim_h)
    builder.set_source(
        "pyrunc._libseccomp",
        "#include <stdlib.h>\n#include <seccomp.h>\n#include \"shim.h\"\n",
        sources=[fix(p) for p in sorted(glob.glob(os.path.join(SHIM, "*.c")))],
        include_dirs=[fix(SHIM)],
        libraries=["seccomp"],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-D_GNU_SOURCE"],
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    # `python csrc/build_seccomp.py` builds the module in place, under the abi3 name
    # that `make install` gives it (cffi modules use the limited API), so that one
    # never shadows the other
    import shutil
    out = make_builder(absolute=True).compile(tmpdir=os.path.join(ROOT, "build", "cffi-seccomp"),
                                              target="_libseccomp.abi3.so",
                                              verbose="-v" in sys.argv)
    shutil.copy(out, os.path.join(ROOT, "pyrunc", os.path.basename(out)))
