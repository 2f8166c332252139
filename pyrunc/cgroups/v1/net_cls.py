"""v1 net_cls: the class id tagged on the container's packets."""
W = "linux.resources.network.classID"


def set(d, net, m, update):
    d.write("net_cls.classid", str(net["classID"]), W)
