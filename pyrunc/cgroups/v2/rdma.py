"""v2 rdma: rdma.max, the same format as v1."""
from pyrunc.cgroups.v1.rdma import set

__all__ = ["set"]
