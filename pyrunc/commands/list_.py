"""usage: pyrunc list [--format table|json] [--quiet]

List the containers in the state root.
"""
from pyrunc import _os as os

FLAGS = {"--format": ("format", True), "-f": ("format", True), "--quiet": ("quiet", False),
         "-q": ("quiet", False), "--help": ("help", False), "-h": ("help", False)}
DEFAULTS = {"format": "table", "quiet": False, "help": False}
NARGS = (0, 0)


def run(g, opts, args):
    from pyrunc import jsonfast
    from pyrunc.state import list_containers
    from pyrunc.errors import UsageError

    if opts.format not in ("table", "json"):
        raise UsageError("invalid format option: %s" % opts.format)
    items = list_containers(g.root)
    if opts.quiet:
        os.write(1, "".join(cid + "\n" for cid, _, _ in items).encode())
        return 0
    if opts.format == "json":
        out = [{"ociVersion": st["ociVersion"], "id": cid,
                "pid": st["pid"] if status != "stopped" else 0, "status": status,
                "bundle": st["bundle"], "rootfs": st["rootfs"], "created": st["created"],
                "annotations": st.get("annotations") or {}, "owner": _owner(g.root, cid)}
               for cid, st, status in items]
        # runc prints null for no containers
        os.write(1, ((jsonfast.dumps(out) if out else "null") + "\n").encode())
        return 0
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for cid, st, status in items:
        rows.append((cid, str(st["pid"] if status != "stopped" else 0), status, st["bundle"],
                     st["created"], _owner(g.root, cid)))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["   ".join(r[i].ljust(widths[i]) for i in range(6)).rstrip() for r in rows]
    os.write(1, ("\n".join(lines) + "\n").encode())
    return 0


def _owner(root, cid):
    """runc's OWNER column: the user owning the container's state directory"""
    try:
        uid = os.stat(os.join(root, cid)).st_uid
    except OSError:
        return ""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "#%d" % uid
