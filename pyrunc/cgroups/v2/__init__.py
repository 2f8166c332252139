"""cgroup v2: one module per controller, with the same shape as v1's:
set(d, section, manager, update) and, for the ones that report, stats(d, out)."""
