"""Write fast launchers for pyrunc and pyimage into a virtualenv's bin directory, and
pyrunc's import bundles (pyrunc/_fastimport.py) into its __pycache__.

pip's console scripts start Python with the `site` module (about 5 ms in a venv, more
with .pth files) and import `re` (about 8 ms).  Every pyrunc command pays start-up, so
`make install` replaces them with scripts that run the venv's interpreter with -I -S
(isolated: no PYTHON* variables, no user site, no site module) and put the install's
paths on sys.path themselves.  The interpreter path is absolute: callers such as
podman's cleanup run the runtime with no PATH at all.
"""
import os
import sys
import sysconfig

# The install's paths go after the standard library's, as site would put them: the
# stdlib modules pyrunc imports (_json, select...) are then found without a search
# (stat calls, a directory listing) of the checkout and site-packages first.
TEMPLATE = """#!{python} {flags}
{gc}import sys
sys.path += {paths!r}
{fast}from {module}.cli import main
{exit}
"""

# pyrunc's interpreter runs in UTF-8 mode (-X utf8; the kernel passes the #! line's
# options as one word, so -ISXutf8).  Start-up under a UTF-8 locale (LANG=C.UTF-8, as
# systemd services and shells here have it) costs 0.9 million instructions less (a
# short verb's own work is 4-5 million): the interpreter decodes and encodes argv,
# the environment and its paths with its own UTF-8 codec instead of the C library's
# locale conversions (mbsrtowcs, wcsrtombs, iconv).  Under the C locale (no LANG)
# Python is in UTF-8 mode already.  What changes under other locales: names and text
# are UTF-8 whatever the locale (as runc, in Go, treats them), and stdout's errors
# are surrogateescape.
FLAGS = {"pyrunc": "-ISXutf8", "pyimage": "-IS"}

# pyrunc runs without the cyclic garbage collector: a command lives for milliseconds,
# allocates few cycles, and importing its modules would otherwise trigger several
# collections (0.4-0.6 ms measured).  pyrunc.cli turns it back on for the one verb
# that runs for long (`events`).
NO_GC = "import gc\ngc.disable()\n"

# pyrunc's own modules load from their .pyc without importlib's generic search
# (pyrunc/_fastimport.py): about 40 us less per module, 28 modules in `create`.
FAST_IMPORT = "from pyrunc._fastimport import install\ninstall()\n"

# pyrunc leaves with os._exit once stdout and stderr are flushed: interpreter
# finalisation (module teardown, GC of every object) costs 2-3 ms per command and
# nothing in pyrunc needs it (its log and state writes are unbuffered os.write calls,
# files it opens are closed by the kernel, and no atexit handler is registered).
# pyimage keeps the normal exit: its worker threads and temporary files are finished
# by context managers and finalisers.
FAST_EXIT = """rc = main()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except Exception:
    rc = rc or 1
import posix
posix._exit(rc if isinstance(rc, int) else 1)"""


# The bundles _fastimport reads (see there): per verb, the pyrunc modules it loads in its
# common case (a busybox bundle, the default spec), past the "boot" group the command line
# loads before it knows the verb.  A module listed but not loaded costs its unmarshal
# (~4 us a KB), one loaded but not listed its own .pyc read, so the lists follow what
# the verbs load; tests/unit/test_fastimport.py runs each verb and compares.
_BOOT = ("pyrunc._os", "pyrunc.errors", "pyrunc.cli", "pyrunc.log", "pyrunc.state",
         "pyrunc.commands")
_SPAWN = ("pyrunc.container", "pyrunc.jsonfast", "pyrunc.tables", "pyrunc.spec",
          "pyrunc.native", "pyrunc.plan", "pyrunc.sync", "pyrunc.cgroups.fs", "pyrunc.cgroups")


def bundles(cgroup2_only):
    """group -> module names, for a host whose cgroups are (or are not) cgroup2 alone"""
    # the default spec's only cgroup setting is its device rules
    devices = (("pyrunc.cgroups.devices", "pyrunc.cgroups.v2", "pyrunc.cgroups.v2.devices")
               if cgroup2_only else
               ("pyrunc.cgroups.v1", "pyrunc.cgroups.devices", "pyrunc.cgroups.v1.devices"))
    create = ("pyrunc.commands.create",) + _SPAWN + devices + ("pyrunc.userns",)
    return {
        "boot": _BOOT,
        "create": create,
        "run": create + ("pyrunc.commands.run", "pyrunc.cgremove"),
        "exec_": ("pyrunc.commands.exec_", "pyrunc.commands.create", "pyrunc.process") + _SPAWN,
        "start": ("pyrunc.commands.start", "pyrunc.jsonfast"),
        "state": ("pyrunc.commands.state", "pyrunc.jsonfast"),
        "kill": ("pyrunc.commands.kill", "pyrunc.jsonfast", "pyrunc.tables"),
        "delete": ("pyrunc.commands.delete", "pyrunc.jsonfast", "pyrunc.cgremove"),
        "list_": ("pyrunc.commands.list_", "pyrunc.jsonfast"),
    }


def cgroup2_only():
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def write_bundles(root, directory=None):
    from pyrunc import _fastimport

    for group, names in bundles(cgroup2_only()).items():
        _fastimport.write_bundle(root, group, names, directory)


def _paths():
    purelib = sysconfig.get_paths()["purelib"]
    paths = []
    # an editable (compat) install is a plain path in a .pth file
    for name in sorted(os.listdir(purelib)):
        if name.endswith(".pth") and ("pyrunc" in name.lower()):
            with open(os.path.join(purelib, name)) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith(("#", "import")) and os.path.isdir(line):
                        paths.append(line)
    paths.append(purelib)
    return paths


def main(argv):
    bindir = os.path.abspath(argv[1])
    python = os.path.join(bindir, "python3")
    for module in ("pyrunc", "pyimage"):
        target = os.path.join(bindir, module)
        text = TEMPLATE.format(python=python, flags=FLAGS[module], paths=_paths(), module=module,
                               gc=NO_GC if module == "pyrunc" else "",
                               fast=FAST_IMPORT if module == "pyrunc" else "",
                               exit=FAST_EXIT if module == "pyrunc" else "sys.exit(main())")
        tmp = target + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    import pyrunc

    write_bundles(os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__))))


if __name__ == "__main__":
    main(sys.argv)
