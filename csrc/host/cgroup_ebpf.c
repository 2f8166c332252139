/*
 * cgroup v2 device filter: the bpf(2) calls behind pyrunc/cgroups/v2/devices.py.
 *
 * cgroup2 has no devices.allow/deny; a BPF_PROG_TYPE_CGROUP_DEVICE program attached
 * to the container's cgroup decides every open/mknod of a device node (Linux 4.15).
 * Python assembles the program (it is a pure function of the rules and is unit-tested
 * with an interpreter); these wrappers only load, attach, list and detach.  Attached
 * with BPF_F_ALLOW_MULTI, so the programs of ancestors (systemd's, a parent
 * container's) keep running too: a device must pass all of them.
 *
 * Host side only (called from Python, may allocate).  Each returns >= 0 or -errno.
 */
#include <linux/bpf.h>
#include <stdint.h>

#include "prc.h"

static long sys_bpf(int cmd, union bpf_attr *attr)
{
    return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int prc_bpf_cgdev_load(const void *insns, int n_insns, char *log, int log_size)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t) (uintptr_t) insns;
    a.insn_cnt = (uint32_t) n_insns;
    /* the program calls no helper, GPL-only or otherwise */
    a.license = (uint64_t) (uintptr_t) "Apache";
    if (log != NULL && log_size > 0) {
        log[0] = '\0';
        a.log_buf = (uint64_t) (uintptr_t) log;
        a.log_size = (uint32_t) log_size;
        a.log_level = 1;
    }
    long fd = PRC_RETRY(sys_bpf(BPF_PROG_LOAD, &a));
    if (fd < 0)
        return -errno;
    /* bpf fds are not O_CLOEXEC by default on older kernels */
    fcntl((int) fd, F_SETFD, FD_CLOEXEC);
    return (int) fd;
}

int prc_bpf_cgdev_attach(int cgroup_fd, int prog_fd, int replace_fd)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.target_fd = (uint32_t) cgroup_fd;
    a.attach_bpf_fd = (uint32_t) prog_fd;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    if (replace_fd >= 0) {
        /* swap in place (Linux 5.6), so there is no moment with both or neither */
        a.attach_flags |= BPF_F_REPLACE;
        a.replace_bpf_fd = (uint32_t) replace_fd;
    }
    if (sys_bpf(BPF_PROG_ATTACH, &a) < 0)
        return -errno;
    return 0;
}

int prc_bpf_cgdev_query(int cgroup_fd, unsigned int *ids, int max_ids)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.query.target_fd = (uint32_t) cgroup_fd;
    a.query.attach_type = BPF_CGROUP_DEVICE;
    a.query.prog_ids = (uint64_t) (uintptr_t) ids;
    a.query.prog_cnt = (uint32_t) max_ids;
    if (sys_bpf(BPF_PROG_QUERY, &a) < 0)
        return -errno;
    return (int) a.query.prog_cnt;
}

int prc_bpf_prog_fd_by_id(unsigned int id)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_id = id;
    long fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
    if (fd < 0)
        return -errno;
    fcntl((int) fd, F_SETFD, FD_CLOEXEC);
    return (int) fd;
}

int prc_bpf_cgdev_detach(int cgroup_fd, int prog_fd)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.target_fd = (uint32_t) cgroup_fd;
    a.attach_bpf_fd = (uint32_t) prog_fd;
    a.attach_type = BPF_CGROUP_DEVICE;
    if (sys_bpf(BPF_PROG_DETACH, &a) < 0)
        return -errno;
    return 0;
}
