"""`pyrunc update`: which fields change, and how the new values merge into the old.

runc updates exactly these fields (update.go); everything else in the input (device
rules, hugepage limits, ...) is ignored, as there.  Zero, empty or absent means
"leave as it is" (runc and the callers rely on it: docker sends zeros for what the
user did not ask to change).  Unlike runc, which stores the zeros in its config, the
merged values are what pyrunc keeps in state.json, so `events` and later updates see
what is really in force.
"""
UPDATABLE = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP", "checkBeforeUpdate"),
    "cpu": ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "cpus", "mems", "idle"),
    "blockIO": ("weight",),
    "pids": ("limit",),
}


def merge(old, new):
    """(old with new's non-zero updatable fields, the sections to write: each with
    all its updatable values after the merge, since v1 memory and swap, and v2
    quota and period, are written as pairs)"""
    merged = dict(old or {})
    changed = {}
    new = new or {}
    for sec, keys in UPDATABLE.items():
        n = new.get(sec)
        if not isinstance(n, dict):
            continue
        got = {k: n[k] for k in keys if n.get(k) not in (None, 0, "", False)}
        if not got:
            continue
        ms = dict(merged.get(sec) or {})
        if sec == "memory" and got.get("limit") == -1 and "swap" not in got and ms.get("swap"):
            # unlimited memory without a swap value: unlimited swap too, as runc (it
            # passes swap 0 and setMemoryAndSwap makes that -1).  Keeping the old swap
            # limit could not work: memory+swap may not be below memory.
            got["swap"] = -1
        ms.update(got)
        ms.pop("checkBeforeUpdate", None)  # a property of this update, not of the container
        merged[sec] = ms
        changed[sec] = {k: ms[k] for k in keys if k in ms}
        if got.get("checkBeforeUpdate"):
            changed[sec]["checkBeforeUpdate"] = True
    u = new.get("unified")
    if isinstance(u, dict) and u:
        merged["unified"] = dict(merged.get("unified") or {}, **u)
        changed["unified"] = dict(u)
    return merged, changed
