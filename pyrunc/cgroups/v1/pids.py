"""v1 pids: pids.max (0 = unchanged, negative = unlimited, as runc)."""
W = "linux.resources.pids.limit"


def set(d, pids, m, update):
    limit = pids.get("limit") or 0
    if limit:
        d.write("pids.max", str(limit) if limit > 0 else "max", W)


def stats(d, out):
    p = out["pids"]
    p["current"] = d.read_int("pids.current")
    t = (d.read_opt("pids.max") or "").strip()
    p["limit"] = 0 if t in ("max", "") else int(t)
