"""pyimage's command line.

    pyimage [global options] COMMAND ...
    pull REF | bundle REF DIR [--shared] | unbundle DIR | images | inspect REF |
    rm REF | gc | login [-u USER] [-p PASS | --password-stdin] HOST | logout HOST |
    push REF [DEST]

Global options (before or after the command): --store DIR, --platform OS/ARCH[/VARIANT],
--insecure (plain http and no TLS verification), --cert-dir DIR, -q/--quiet,
--max-layer-size SIZE (or $PYIMAGE_MAX_LAYER_SIZE).
Errors: one line on stderr, `pyimage: <operation> <object>: <cause>`, exit status 1
(2 for usage errors); never a traceback.  Lines are escaped (errors.printable): they
quote names and paths an image chose.
"""
import argparse
import json
import os
import sys

from .errors import Interrupted, PyimageError, UsageError, printable

LINE_MAX = 2000     # characters of one error line


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("usage: %s" % message)


def _common():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--store", default=argparse.SUPPRESS, metavar="DIR", help="image store (an OCI layout)")
    p.add_argument("--platform", default=argparse.SUPPRESS, metavar="OS/ARCH[/VARIANT]")
    p.add_argument("--insecure", action="store_true", default=argparse.SUPPRESS,
                   help="allow plain http and skip tls verification")
    p.add_argument("--cert-dir", default=argparse.SUPPRESS, metavar="DIR",
                   help="CA certificates (*.crt) and client.cert/client.key for the registry")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output")
    p.add_argument("-j", "--jobs", type=int, default=argparse.SUPPRESS, help="parallel downloads (default 4)")
    p.add_argument("--max-layer-size", default=argparse.SUPPRESS, metavar="SIZE",
                   help="refuse a layer whose uncompressed content is larger (bytes, or with K/M/G; "
                        "default $PYIMAGE_MAX_LAYER_SIZE, else no limit but the free space)")
    return p


def parse_size(text, what="--max-layer-size"):
    """'100M' -> 104857600: bytes, or K/M/G/T (powers of 1024, optional 'B' or 'iB')"""
    t = text.strip().upper()
    for suffix in ("IB", "B"):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[:-len(suffix)]
            break
    mult = 1
    if t and t[-1] in "KMGT":
        mult = 1 << (10 * ("KMGT".index(t[-1]) + 1))
        t = t[:-1]
    if not t.isdigit() or int(t) == 0:
        raise UsageError("usage: %s %s: expected a positive size in bytes, or with K, M or G"
                         % (what, printable(text, 40)))
    return int(t) * mult


def build_parser():
    common = _common()
    ap = _Parser(prog="pyimage", parents=[common],
                 description="pull images, keep them in an OCI layout, make runtime bundles")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    p = sub.add_parser("pull", parents=[common], help="pull an image into the store")
    p.add_argument("ref")
    p = sub.add_parser("bundle", parents=[common], help="make a runtime bundle (pulls if needed)")
    p.add_argument("ref")
    p.add_argument("dir")
    p.add_argument("--shared", action="store_true",
                   help="rootfs as an overlay mount of layers unpacked once in the store")
    p.add_argument("--pull", choices=("missing", "always"), default="missing",
                   help="missing: use the stored image if present (default); always: ask the registry")
    p = sub.add_parser("unbundle", parents=[common], help="unmount (shared) and delete a bundle")
    p.add_argument("dir")
    sub.add_parser("images", parents=[common], help="list the images in the store")
    p = sub.add_parser("inspect", parents=[common], help="print an image's manifest and config")
    p.add_argument("ref")
    p.add_argument("--remote", action="store_true", help="ask the registry instead of the store")
    p = sub.add_parser("rm", parents=[common], help="remove image references from the store")
    p.add_argument("refs", nargs="+")
    sub.add_parser("gc", parents=[common], help="delete what no reference reaches")
    p = sub.add_parser("login", parents=[common], help="check and save credentials for a registry")
    p.add_argument("host")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p = sub.add_parser("logout", parents=[common], help="forget the credentials for a registry")
    p.add_argument("host")
    p = sub.add_parser("push", parents=[common], help="push an image from the store")
    p.add_argument("ref")
    p.add_argument("dest", nargs="?")
    return ap


def _opts(a):
    return {
        "store": getattr(a, "store", None),
        "platform": getattr(a, "platform", None),
        "insecure": getattr(a, "insecure", False),
        "cert_dir": getattr(a, "cert_dir", None),
        "quiet": getattr(a, "quiet", False),
        "jobs": getattr(a, "jobs", 4),
        "max_layer_size": _max_layer_size(a),
    }


def _max_layer_size(a):
    v = getattr(a, "max_layer_size", None)
    if v is not None:
        return parse_size(v)
    env = os.environ.get("PYIMAGE_MAX_LAYER_SIZE")
    return parse_size(env, "PYIMAGE_MAX_LAYER_SIZE") if env else None


def _puller(o, progress=None):
    from . import manifest as mf
    from .pull import Puller
    from .store import Store
    plat = mf.parse_platform(o["platform"]) if o["platform"] else None
    if o["jobs"] < 1:
        raise UsageError("usage: --jobs must be at least 1")
    return Puller(Store(o["store"]), platform=plat, insecure=o["insecure"], cert_dir=o["cert_dir"],
                  progress=progress, jobs=o["jobs"], max_layer_size=o["max_layer_size"])


def _warn(msg):
    sys.stderr.write("pyimage: warning: %s\n" % printable(msg, LINE_MAX))


def cmd_pull(a, o):
    from . import progress
    prog = progress.make(o["quiet"])
    p = _puller(o, prog)
    try:
        img = p.pull(a.ref)
    finally:
        prog.close()
    if not o["quiet"]:
        print("%s %s" % (img.ref, img.desc["digest"]))
    return 0


def cmd_bundle(a, o):
    from . import bundle, progress
    if a.shared and os.geteuid() != 0:
        raise PyimageError("bundle --shared: needs root (overlay mount)")
    bundle.check_dir(a.dir)
    prog = progress.make(o["quiet"])
    p = _puller(o, prog)
    try:
        img = p.resolve(a.ref) if a.pull == "always" else p.get(a.ref)
        bundle.make_bundle(p, img, a.dir, shared=a.shared, warn=_warn)
    finally:
        prog.close()
    return 0


def cmd_unbundle(a, o):
    from . import bundle
    from .store import Store
    bundle.remove_bundle(a.dir)
    # a `bundle --shared` killed while unpacking leaves its layer's overlay mounted in
    # the store: take it down too (only those whose process is gone)
    st = Store(o["store"], create=False)
    if os.path.isdir(st.tmp):
        st.sweep_mounts(dead_only=True)
    return 0


def cmd_images(a, o):
    from .store import Store
    st = Store(o["store"])
    rows = []
    for name, d in st.refs():
        size = d.get("size", 0)
        shown = None
        try:
            m = json.loads(st.read_blob(d["digest"], verify=False))
            if isinstance(m.get("manifests"), list):
                # an index (skopeo copy --all): its platforms, not a size
                shown = "index: " + ", ".join(sorted({_plat(x) for x in m["manifests"]})) or "index"
            else:
                size = sum(l.get("size", 0) for l in m.get("layers") or []) + (m.get("config") or {}).get("size", 0)
        except (PyimageError, ValueError, TypeError, AttributeError):
            shown = "missing manifest"
        rows.append((printable(name or "<none>", 200), printable(d["digest"][7:19]),
                     printable(shown or "%.1f MB" % (size / 1e6), 200)))
    if rows:
        w = max(len(r[0]) for r in rows)
        print("%-*s  %-12s  %s" % (w, "REFERENCE", "DIGEST", "SIZE"))
        for r in rows:
            print("%-*s  %-12s  %s" % (w, r[0], r[1], r[2]))
    return 0


def _plat(desc):
    from . import manifest as mf
    p = desc.get("platform") or {}
    return mf.platform_str(p) if p else "?"


def cmd_inspect(a, o):
    p = _puller(o)
    img = p.resolve(a.ref) if a.remote else p.get(a.ref, pull=False)
    out = {"reference": img.ref, "digest": img.desc["digest"], "mediaType": img.desc["mediaType"],
           "manifest": img.manifest, "config": img.config}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_rm(a, o):
    from . import reference
    from .store import Store
    st = Store(o["store"])
    rc = 0
    for r in a.refs:
        names = [r]
        try:
            names.append(str(reference.parse(r)))
        except PyimageError:
            pass
        if not any(st.remove_ref(n) for n in names):
            sys.stderr.write("pyimage: rm %s: no such image in %s\n" % (printable(r, 300), st.root))
            rc = 1
    return rc


def cmd_gc(a, o):
    from .store import Store
    st = Store(o["store"])
    n, freed = st.gc()
    if not o["quiet"]:
        print("removed %d items, %.1f MB freed" % (n, freed / 1e6))
    return 0


def cmd_login(a, o):
    from . import auth
    from .registry import Client
    from .reference import LOOPBACK_HOSTS
    user = a.username
    if a.password_stdin:
        pw = sys.stdin.readline().rstrip("\n")
    elif a.password is not None:
        pw = a.password
    else:
        import getpass
        if not sys.stdin.isatty():
            raise UsageError("usage: login needs --password, --password-stdin or a terminal")
        if not user:
            user = input("Username: ")
        pw = getpass.getpass("Password: ")
    if not user:
        raise UsageError("usage: login needs --username")
    host = a.host.replace("https://", "").replace("http://", "").rstrip("/")
    loop = host.startswith(LOOPBACK_HOSTS)
    c = Client(host, insecure=o["insecure"], cert_dir=o["cert_dir"], creds=(user, pw), loopback=loop)
    c.check_login()
    auth.store_credentials(host, user, pw)
    if not o["quiet"]:
        print("login succeeded: %s" % host)
    return 0


def cmd_logout(a, o):
    from . import auth
    host = a.host.replace("https://", "").replace("http://", "").rstrip("/")
    if not auth.erase_credentials(host):
        raise PyimageError("logout %s: not logged in" % host)
    return 0


def cmd_push(a, o):
    from . import progress
    from .push import push_ref
    prog = progress.make(o["quiet"])
    p = _puller(o, prog)
    try:
        dest = push_ref(p.store, p, a.ref, a.dest, prog)
    finally:
        prog.close()
    if not o["quiet"]:
        print("pushed %s" % dest)
    return 0


def _verb(argv):
    return next((a for a in argv if a in COMMANDS), "pyimage")


COMMANDS = {"pull": cmd_pull, "bundle": cmd_bundle, "unbundle": cmd_unbundle, "images": cmd_images,
            "inspect": cmd_inspect, "rm": cmd_rm, "gc": cmd_gc, "login": cmd_login, "logout": cmd_logout,
            "push": cmd_push}


def _on_signal(signum, frame):
    from .errors import defer_signals
    if defer_signals.deferring(signum):
        return      # inside a cleanup: raised when it is done
    # a second signal must not cut the cleanup short (the half-made bundle is removed
    # by the handlers the exception unwinds through)
    import signal
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def _catch_signals():
    """SIGINT, SIGTERM and SIGHUP (Ctrl-C, a service manager, a closed terminal) unwind
    the main thread with an exception, so no half-written bundle stays behind"""
    import signal
    import threading
    old = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            h = signal.getsignal(s)
            # only defaults are replaced: an ignored signal stays ignored (nohup)
            if h == signal.SIG_DFL or h is signal.default_int_handler:
                old[s] = signal.signal(s, _on_signal)
    return old


def _restore_signals(old):
    """main() may be called in-process (tests, other tools): leave handlers as found"""
    import signal
    for s, h in old.items():
        signal.signal(s, h)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    old_handlers = {}
    try:
        old_handlers = _catch_signals()
        a = build_parser().parse_args(argv)
        return COMMANDS[a.cmd](a, _opts(a))
    except Interrupted as e:
        import signal
        sys.stderr.write("pyimage: %s: interrupted by %s\n" % (_verb(argv), signal.Signals(e.signum).name))
        return 128 + e.signum
    except UsageError as e:
        sys.stderr.write("pyimage: %s\n" % printable(e, LINE_MAX))
        return 2
    except PyimageError as e:
        sys.stderr.write("pyimage: %s\n" % printable(e, LINE_MAX))
        return 1
    except SystemExit as e:     # --help, --version from argparse
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        sys.stderr.write("pyimage: %s: interrupted\n" % _verb(argv))
        return 130
    except OSError as e:
        where = (" %s" % e.filename) if e.filename else ""
        sys.stderr.write("pyimage: %s\n" % printable("i/o error%s: %s" % (where, (e.strerror or str(e)).lower()),
                                                     LINE_MAX))
        return 1
    except Exception as e:   # a bug: still one line, with the type to report it
        sys.stderr.write("pyimage: internal error: %s: %s\n" % (type(e).__name__, printable(e, LINE_MAX)))
        if os.environ.get("PYIMAGE_DEBUG"):
            raise
        return 1
    finally:
        _restore_signals(old_handlers)
