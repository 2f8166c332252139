"""usage: pyrunc validate [--bundle DIR] [--state FILE | --features FILE]

Check DIR/config.json (default: the current directory) against the runtime-spec
1.3.0 JSON Schemas in oci-specs/ plus the spec's MUST rules a schema cannot express
(duplicate namespaces or rlimits, the root directory existing).  Prints one line per
problem, `config.json: <path>: <reason>`, and exits 1; prints `config.json: valid`
and exits 0 otherwise.

--state FILE     check an OCI state document (the output of `pyrunc state`) instead
--features FILE  check a features document (the output of `pyrunc features`) instead
A FILE of `-` reads standard input.
"""
import os
import sys

FLAGS = {"--bundle": ("bundle", True), "-b": ("bundle", True),
         "--state": ("state", True), "--features": ("features", True),
         "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"bundle": None, "state": None, "features": None, "help": False}
NARGS = (0, 0)


def run(g, opts, args):
    from pyrunc.errors import ConfigError, UsageError

    chosen = [k for k in ("state", "features") if getattr(opts, k)]
    if len(chosen) > 1 or (chosen and opts.bundle is not None):
        raise UsageError("validate: use only one of --bundle, --state and --features")
    if chosen:
        kind = chosen[0]
        path = getattr(opts, kind)
        label = "stdin" if path == "-" else path
        bundle = None
    else:
        kind = "config"
        bundle = os.path.abspath(opts.bundle if opts.bundle is not None else ".")
        path = os.path.join(bundle, "config.json")
        label = "config.json"

    from pyrunc import validate

    try:
        if path == "-":
            doc = validate.load_json(sys.stdin.buffer)
        else:
            doc = validate.load_json(path)
    except OSError as err:
        raise ConfigError("%s: read %s: %s" % (label, path, os.strerror(err.errno).lower()
                                               if err.errno else err)) from None
    except ValueError as err:
        raise ConfigError("%s: invalid json: %s" % (label, err)) from None

    problems = validate.check_document(doc, kind, bundle)
    out = sys.stdout
    for where, why in problems:
        out.write("%s: %s: %s\n" % (label, where, why))
    if problems:
        out.flush()
        return 1
    out.write("%s: valid (runtime-spec %s)\n" % (label, validate.SPEC_VERSION))
    return 0
