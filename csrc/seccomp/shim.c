/*
 * Parent-side helpers for pyrunc._libseccomp (csrc/build_seccomp.py).
 *
 * This module is loaded only on a seccomp cache miss (and by `pyrunc features`), never
 * in the container child: it may allocate, and it links libseccomp.  The filter itself
 * is built by Python through libseccomp's own API; what lives here is what libseccomp
 * 2.5 cannot tell us: where the loaded library is (the cache validates entries against
 * that file), and which seccomp(2) filter flags and actions this kernel accepts.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include "shim.h"

#ifndef SECCOMP_GET_ACTION_AVAIL
#define SECCOMP_GET_ACTION_AVAIL 2
#endif

const char *prs_lib_path(void)
{
    Dl_info info;
    /* any symbol of libseccomp names the file the dynamic loader mapped */
    if (dladdr((void *) seccomp_version, &info) == 0 || info.dli_fname == NULL)
        return "";
    return info.dli_fname;
}

int prs_filter_flags_supported(unsigned int flags)
{
    /*
     * seccomp(2) validates the flags (and their combinations) before it copies the
     * program from user memory, so a NULL program tells them apart without installing
     * anything: EFAULT means the flags passed, EINVAL that this kernel refuses them.
     * libseccomp probes its own flags the same way.
     */
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
    if (r == 0)
        return -EINVAL; /* cannot happen: a NULL filter never loads */
    if (errno == EFAULT)
        return 1;
    if (errno == EINVAL)
        return 0;
    return -errno;
}

int prs_action_available(uint32_t action)
{
    if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0)
        return 1;
    if (errno == EOPNOTSUPP)
        return 0;
    return -errno;
}
