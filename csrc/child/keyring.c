/*
 * The session keyring of a container's processes (runc: keys.JoinSessionKeyring and
 * ModKeyringPerm).  Used by the child (init, exec: process.c) and by the host before
 * it starts criu for a restore (pyrunc/criu.py), so no allocation, no stdio.
 */
#include <linux/keyctl.h>

#include "prc.h"

/*
 * Join the session keyring `name`, which the kernel makes when no keyring of that
 * name is searchable by us.  A new keyring grants its owner view/read/link only; add
 * perm_add (runc: search for the owner, or for anyone with a user namespace, where
 * `exec` arrives as an unmapped host uid), without which a later join by name would
 * not find it.  0 or -errno, with *step naming what failed.
 */
int prc_join_keyring(const char *name, unsigned int perm_add, const char **step)
{
    *step = "join";
    long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name);
    if (id < 0)
        return -errno;
    if (!perm_add)
        return 0;
    /* "type;uid;gid;perm;description" (perm in hex); the kernel copies nothing into a
       buffer too small for all of it, and the name is at most 5 + 1024 bytes */
    char desc[2048];
    *step = "describe";
    long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof(desc) - 1);
    if (n < 0)
        return -errno;
    if (n >= (long) sizeof(desc))
        return -ENAMETOOLONG;
    desc[n] = '\0';
    *step = "parse the permissions of";
    const char *p = desc;
    for (int semis = 0; semis < 3; p++) {
        if (*p == '\0')
            return -EINVAL;
        if (*p == ';')
            semis++;
    }
    unsigned long perm;
    p = prc_parse_hex(p, &perm);
    if (!p || *p != ';' || perm > 0xffffffffUL)
        return -EINVAL;
    *step = "set permissions of";
    if ((perm | perm_add) != perm && syscall(SYS_keyctl, KEYCTL_SETPERM, id, perm | perm_add) < 0)
        return -errno;
    return 0;
}

int prc_session_keyring(const char *name, unsigned int perm_add)
{
    const char *step;
    return prc_join_keyring(name, perm_add, &step);
}
