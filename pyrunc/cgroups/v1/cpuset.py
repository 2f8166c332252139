"""v1 cpuset: cpus and mems (create() already copied the parent's)."""
W = "linux.resources.cpu."


def set(d, cpu, m, update):
    if cpu.get("cpus"):
        d.write("cpuset.cpus", cpu["cpus"], W + "cpus")
    if cpu.get("mems"):
        d.write("cpuset.mems", cpu["mems"], W + "mems")


def parse_list(text):
    """"0-3,8" -> [0, 1, 2, 3, 8]"""
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


_FLAGS = ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
          "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level")


def stats(d, out):
    c = out["cpuset"]
    c["cpus"] = parse_list(d.read_opt("cpuset.cpus") or "")
    c["mems"] = parse_list(d.read_opt("cpuset.mems") or "")
    for f in _FLAGS:
        t = d.read_opt("cpuset." + f)
        if t is not None and t.strip():
            c[f] = int(t)
