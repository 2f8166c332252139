"""v2 pids: pids.max (0 = unchanged, negative = unlimited, as runc)."""
from pyrunc.cgroups.v1.pids import set, stats  # same files, same values

__all__ = ["set", "stats"]
