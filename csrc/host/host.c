/* Parent-side helpers called from Python (may allocate). */
#include <sys/mman.h>
#include <sys/syscall.h>

#include "prc.h"
#include "stub_blob.h"

const char *prc_version(void)
{
    return PRC_VERSION;
}

/*
 * The exec stub in a sealed memfd.  Sealing (write, grow, shrink, and the seals
 * themselves) is what makes /proc/<pid>/exe of a container process harmless: the
 * file cannot be changed by anybody, whatever fd or path they reach it through.
 * MFD_EXEC (Linux 6.3) states that it is meant to be executed, for kernels with
 * vm.memfd_noexec set; older kernels reject the flag, so retry without it.
 */
int prc_stub_memfd(void)
{
    int fd = (int) syscall(SYS_memfd_create, "pyrunc-exec-stub", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = (int) syscall(SYS_memfd_create, "pyrunc-exec-stub", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < sizeof(prc_stub_blob)) {
        ssize_t n = PRC_RETRY(write(fd, prc_stub_blob + off, sizeof(prc_stub_blob) - off));
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        off += (size_t) n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int prc_pidfd_open(int pid)
{
    int fd = (int) syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : fd;
}
