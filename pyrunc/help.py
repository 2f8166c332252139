"""`pyrunc -h`, `pyrunc CMD -h`, `pyrunc help [CMD]`: runc's (urfave/cli) help layout.

Loaded only when help is asked for, so the commands' hot path never pays for it.
Callers check the shape: a `NAME:` line, then `   pyrunc CMD - summary`; an unknown
topic prints `No help topic for 'CMD'` and exits 3, as runc does.
"""
import sys

from pyrunc.cli import COMMANDS

# one-line summaries, in `pyrunc -h`'s order
SUMMARY = {
    "checkpoint": "checkpoint a running container (not available in pyrunc)",
    "create": "create a container from a bundle",
    "delete": "delete a container and the resources it holds",
    "events": "print container events and resource statistics",
    "exec": "run a new process inside a container",
    "kill": "send a signal to a container's init (or to all its processes)",
    "list": "list the containers in the state root",
    "pause": "freeze every process of a container",
    "ps": "list the processes of a container",
    "restore": "restore a container from a checkpoint (not available in pyrunc)",
    "resume": "thaw a paused container",
    "run": "create and start a container",
    "spec": "write a default config.json",
    "start": "start a created container",
    "state": "print the OCI state of a container",
    "update": "change the resource limits of a running container",
    "features": "print the OCI runtime features document",
    "validate": "check a bundle's config.json against the runtime-spec",
}

MAIN = """NAME:
   pyrunc - Open Container Initiative runtime (in Python)

pyrunc runs containers from OCI bundles (a directory holding config.json and a
root filesystem) with runc's command line:

    # pyrunc run [ -b bundle ] <container-id>
    # pyrunc run bundle/          (a bundle directory: runs it under a generated id)

USAGE:
   pyrunc [global options] command [command options] [arguments...]

COMMANDS:
%s
GLOBAL OPTIONS:
   --debug             debug logging (level=debug records on stderr or in --log)
   --log value         log file (default: stderr)
   --log-format value  text or json (default: "text")
   --root value        state directory (default: "/run/pyrunc")
   --systemd-cgroup    manage cgroups through systemd (cgroupsPath "slice:prefix:name")
   --help, -h          show help
   --version, -v       print the version
"""


def main_help(out=None):
    out = out or sys.stdout
    width = max(len(v) for v in SUMMARY)
    cmds = "".join("   %-*s  %s\n" % (width, v, s) for v, s in SUMMARY.items())
    cmds += "   %-*s  %s\n" % (width, "help, h", "show the commands or one command's help")
    out.write(MAIN % cmds)
    return 0


def command_help(verb, out=None):
    """runc's layout for one command; 3 and `No help topic` for an unknown one"""
    out = out or sys.stdout
    if verb in ("help", "h"):
        return main_help(out)
    if verb not in SUMMARY:
        sys.stderr.write("No help topic for '%s'\n" % verb)
        return 3
    doc = ""
    modname = COMMANDS.get(verb)
    if modname is not None:
        mod = __import__("pyrunc.commands." + modname, fromlist=["run"])
        doc = (mod.__doc__ or "").strip()
    usage, _, desc = doc.partition("\n")
    usage = usage[len("usage: "):] if usage.startswith("usage: ") else "pyrunc %s" % verb
    text = "NAME:\n   pyrunc %s - %s\n\nUSAGE:\n   %s\n" % (verb, SUMMARY[verb], usage)
    desc = desc.strip()
    if desc:
        text += "\nDESCRIPTION:\n" + "".join("   %s\n" % line if line else "\n"
                                             for line in desc.splitlines())
    out.write(text)
    return 0
