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

/*
 * Atomically swap two names in one directory (renameat2 RENAME_EXCHANGE).  Replacing
 * state.json with a plain rename costs ~85 us on ext4 here: rename over an existing
 * file makes ext4 (auto_da_alloc) start writeback of the new file's data, and the
 * later unlink of that file waits for it.  An exchange is not a replacement, so
 * neither happens; the old content is then unlinked under the temporary name.
 */
int prc_rename_exchange(int dirfd, const char *a, const char *b)
{
    return syscall(SYS_renameat2, dirfd, a, dirfd, b, 2 /* RENAME_EXCHANGE */) < 0 ? -errno : 0;
}

int prc_pidfd_open(int pid)
{
    int fd = (int) syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : fd;
}
