"""v2 cpuset: cpuset.cpus and cpuset.mems (empty means "the parent's")."""
W = "linux.resources.cpu."


def set(d, cpu, m, update):
    if cpu.get("cpus"):
        d.write("cpuset.cpus", cpu["cpus"], W + "cpus")
    if cpu.get("mems"):
        d.write("cpuset.mems", cpu["mems"], W + "mems")


def stats(d, out):
    from pyrunc.cgroups.v1.cpuset import parse_list

    c = out["cpuset"]
    c["cpus"] = parse_list(d.read_opt("cpuset.cpus.effective") or "")
    c["mems"] = parse_list(d.read_opt("cpuset.mems.effective") or "")
