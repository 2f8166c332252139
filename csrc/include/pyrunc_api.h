/*
 * pyrunc_api.h: the only header cffi sees (csrc/build_ffi.py feeds it to cdef()).
 *
 * Keep it cdef-parsable: no #include, no #if, no macros other than integer #defines.
 * C files get it through prc.h, after the system headers that define the types.
 *
 * The contract: Python (pyrunc/plan.py) fills ONE struct prc_plan, calls prc_spawn()
 * once, and then speaks the sync protocol below with the child over plan->sync_fd.
 * Every pointer in the plan points into memory Python keeps alive for the whole call;
 * after clone the child reads its private copy of that memory and never allocates.
 */

#define PRC_ABI_VERSION 1

/* ---- the sync protocol: fixed-size records over a SOCK_SEQPACKET socketpair ---- */
/* Mirrored by pyrunc/sync.py; tests/unit/test_sync_codec.py compares the two. */
#define PRC_MSG_PID 1           /* stage-1 -> parent: value = pid of the init (host pid ns) */
#define PRC_MSG_GO 2            /* parent -> child: id maps written, cgroups joined; proceed */
#define PRC_MSG_HOOKS 3         /* child -> parent: mounts done, before pivot_root; run create hooks */
#define PRC_MSG_HOOKS_DONE 4    /* parent -> child */
#define PRC_MSG_PTY 5           /* child -> parent, SCM_RIGHTS: the pty master */
#define PRC_MSG_SECCOMP_FD 6    /* child -> parent, SCM_RIGHTS: the seccomp notify listener; parent answers GO */
#define PRC_MSG_READY 7         /* child -> parent: everything done, waiting for start */
#define PRC_MSG_START 8         /* parent -> child (wait_mode SYNC): exec now */
#define PRC_MSG_ERROR 9         /* child -> parent: stage, err, text */

#define PRC_MSG_TEXT 480

struct prc_msg {
    int type;
    int stage;
    int err;                    /* errno, 0 if none */
    int value;
    char text[480];             /* NUL-terminated, "operation `object`" */
};

/* ---- stages: where a child error happened (pyrunc/sync.py has the names) ---- */
#define PRC_STAGE_SPAWN 1
#define PRC_STAGE_SETNS 2
#define PRC_STAGE_TIMENS 3
#define PRC_STAGE_CLONE 4
#define PRC_STAGE_SYNC 5
#define PRC_STAGE_USERNS 6
#define PRC_STAGE_HOSTNAME 7
#define PRC_STAGE_ROOTFS 8
#define PRC_STAGE_MOUNT 9
#define PRC_STAGE_DEVICES 10
#define PRC_STAGE_PIVOT 11
#define PRC_STAGE_MASK 12
#define PRC_STAGE_READONLY 13
#define PRC_STAGE_SYSCTL 14
#define PRC_STAGE_RLIMIT 15
#define PRC_STAGE_PROCESS 16
#define PRC_STAGE_TERMINAL 17
#define PRC_STAGE_SECCOMP 18
#define PRC_STAGE_USER 19
#define PRC_STAGE_CAPS 20
#define PRC_STAGE_CWD 21
#define PRC_STAGE_FDS 22
#define PRC_STAGE_EXEC 23
#define PRC_STAGE_WAIT 24
#define PRC_STAGE_CGROUP 25
#define PRC_STAGE_LSM 26
#define PRC_STAGE_NETWORK 27

/* ---- plan pieces ---- */

/* mount kinds */
#define PRC_MNT_FS 0            /* mount(source, target, fstype, flags, data) */
#define PRC_MNT_BIND 1          /* bind (flags has MS_BIND, maybe MS_REC) */

/* mount extras (bit set) */
#define PRC_MNTX_REMOUNT 1      /* bind with per-mount flags (ro, nosuid...): remount after bind */
#define PRC_MNTX_RECURSIVE 2    /* rro, rnosuid...: mount_setattr(AT_RECURSIVE, attr_set, attr_clr) */
#define PRC_MNTX_FILE 4         /* the target must be a file (source is not a directory) */
#define PRC_MNTX_DEVPTS 8       /* a devpts mount: also make /dev/ptmx a symlink to pts/ptmx */
#define PRC_MNTX_CGROUP 16      /* cgroup mount: bind the container's cgroups (v1) or mount cgroup2 */
#define PRC_MNTX_TMPCOPYUP 32   /* tmpfs: copy what the destination held into the new tmpfs */
#define PRC_MNTX_IDMAP 64       /* attach tree_fd (an idmapped copy of the source) instead of a bind */
#define PRC_MNTX_SRC_IN_ROOT 128 /* bind source inside the rootfs: resolved in the root, like a target */
#define PRC_MNTX_LABEL 256      /* set label as the new mount root's SELinux context (mqueue) */

struct prc_mount {
    const char *source;         /* NULL when none; for binds an absolute host path (with
                                   PRC_MNTX_SRC_IN_ROOT: a path inside the rootfs) */
    const char *target;         /* absolute, inside the rootfs */
    const char *fstype;         /* NULL for binds */
    const char *data;           /* NULL when none */
    unsigned long flags;        /* MS_* flags for mount(2), without propagation */
    unsigned long propagation;  /* MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE [|MS_REC], or 0 */
    unsigned long remount_flags;/* flags for the MS_REMOUNT|MS_BIND pass (PRC_MNTX_REMOUNT) */
    unsigned long long attr_set;/* MOUNT_ATTR_* to set recursively (PRC_MNTX_RECURSIVE) */
    unsigned long long attr_clr;/* MOUNT_ATTR_* to clear recursively */
    int kind;
    int extra;
    int tree_fd;                /* PRC_MNTX_IDMAP: the detached idmapped tree (prc_idmap_tree) */
    const char *label;          /* PRC_MNTX_LABEL: the context */
};

struct prc_device {
    const char *path;           /* absolute, inside the rootfs, e.g. /dev/null */
    unsigned int mode;          /* S_IFCHR|S_IFBLK|S_IFIFO | permission bits */
    unsigned int major;
    unsigned int minor;
    unsigned int uid;
    unsigned int gid;
    int bind;                   /* bind-mount the host node instead of mknod (user namespaces) */
};

struct prc_kv {
    const char *key;
    const char *value;
};

struct prc_rlimit {
    int resource;
    unsigned long long soft;
    unsigned long long hard;
};

struct prc_nsjoin {
    int nstype;                 /* CLONE_NEW* of the namespace */
    int fd;                     /* opened by the parent: /proc/<pid>/ns/<x> or a bind-mounted ns file */
};

/* how the init waits between create and start */
#define PRC_WAIT_FIFO 0         /* open <state>/exec.fifo for writing (blocks until `start` reads) */
#define PRC_WAIT_SYNC 1         /* wait for PRC_MSG_START on the sync socket (`run`) */
#define PRC_WAIT_NONE 2         /* exec at once (exec) */

/* what the child is */
#define PRC_MODE_INIT 0         /* a new container: namespaces, rootfs, everything */
#define PRC_MODE_EXEC 1         /* a process joining a running container: join + process setup */

struct prc_plan {
    int abi;                    /* PRC_ABI_VERSION */
    int mode;
    int wait_mode;

    /* namespaces */
    int clone_flags;            /* CLONE_NEW* to create (CLONE_NEWTIME handled by unshare) */
    const struct prc_nsjoin *joins;
    int n_joins;
    const char *timens_offsets; /* text for /proc/self/timens_offsets, or NULL */
    int userns;                 /* a new user namespace: wait for maps, then become root in it */
    int dumpable_until_go;      /* rootless: stay dumpable until GO, so that the unprivileged
                                   parent (or newuidmap) may open /proc/<pid>/uid_map */
    int early_setup;            /* build the rootfs before GO (a new mount namespace and nothing
                                   the parent must do first): the parent records the pid and
                                   joins cgroups meanwhile; PDEATHSIG until GO */
    int early_needs_into;       /* early_setup with a cgroup namespace: only if clone3 put the
                                   child in its cgroup2 cgroup (else it waits for GO first:
                                   the parent joins it, and the namespace must come after) */
    int nofork_arenas;          /* leave our large anonymous mappings (Python's arenas) out of
                                   the child's copy of our memory (spawn.c nofork); only where
                                   no other thread forks meanwhile (the pyrunc command) */
    const unsigned long *plan_spans; /* [start, length] of plan memory that is not in the
                                   malloc heap (large buffers): never left out */
    int n_plan_spans;
    int sync_hooks;             /* stop after the mounts for the HOOKS round trip (the spec has
                                   prestart, createRuntime or createContainer hooks) */

    /* rootfs */
    const char *rootfs;         /* absolute host path */
    unsigned long rootfs_propagation; /* for "/" before anything else (default MS_SLAVE|MS_REC) */
    const char *rootfs_parent;  /* mount point of the mount holding the rootfs, made private
                                   when "/" is shared (pivot_root refuses a shared parent), or NULL */
    int readonly_root;
    int no_pivot;
    unsigned long dev_ro_flags; /* a read-only /dev mount (not a bind): mounted writable, then
                                   remounted with these flags (MS_RDONLY...) at the end */
    const char *dev_ro_data;    /* its data (mode=, size=), or NULL */
    const struct prc_mount *mounts;
    int n_mounts;
    const struct prc_device *devices;
    int n_devices;
    const struct prc_kv *symlinks; /* key: link path inside the rootfs, value: its target */
    int n_symlinks;
    const char *const *masked_paths;
    int n_masked;
    const char *const *readonly_paths;
    int n_readonly;
    const struct prc_kv *sysctls; /* key: path under /proc/sys (a/b/c), value */
    int n_sysctls;
    const char *hostname;       /* NULL: leave as is */
    const char *domainname;

    /* process */
    const char *cwd;
    char **argv;                /* stub argv: argv[0] is a slot for the resolved path, argv[1..] = args */
    char *const *envp;
    const char *path_env;       /* value of PATH from envp, for the lookup of argv[1], or NULL */
    char *exec_path;            /* buffer (PRC_PATH_MAX) the child fills with the resolved path */
    unsigned int uid;
    unsigned int gid;
    const unsigned int *groups;
    int n_groups;
    int set_groups;             /* call setgroups(groups) (not in a user ns with setgroups denied) */
    unsigned long long cap_bounding;
    unsigned long long cap_effective;
    unsigned long long cap_inheritable;
    unsigned long long cap_permitted;
    unsigned long long cap_ambient;
    int set_caps;               /* 0: keep what the process has (tests, unprivileged) */
    int cap_last;               /* highest capability number the kernel knows */
    int no_new_privs;
    const struct prc_rlimit *rlimits;
    int n_rlimits;
    int umask;                  /* -1: leave */
    long personality;           /* -1: leave */
    int terminal;               /* allocate a pty from the container's devpts, send the master */
    unsigned short console_rows;    /* process.consoleSize: set on the pty when both are */
    unsigned short console_cols;    /* non-zero (before the process can read it) */
    int setsid;
    const char *session_keyring; /* "_ses.<id>": join it (the init: make it) before the process
                                   setup, so no key of the caller's session keyring is
                                   possessed by the container; NULL: keep it (--no-new-keyring) */
    unsigned int keyring_perm;  /* permission bits the init adds to that keyring (runc: search
                                   for its owner, for anyone with a user namespace), or 0 */
    const char *keyring_label;  /* SELinux: the context a new keyring gets (attr/keycreate; the
                                   process's label, as runc), or NULL */
    int set_ioprio;             /* ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio) */
    int ioprio;                 /* class << 13 | level */
    int set_sched;              /* sched_setattr(0, sched_*) */
    unsigned int sched_policy;  /* SCHED_* */
    unsigned long long sched_flags; /* SCHED_FLAG_* */
    int sched_nice;
    unsigned int sched_priority;
    unsigned long long sched_runtime;  /* ns, SCHED_DEADLINE */
    unsigned long long sched_deadline;
    unsigned long long sched_period;
    int home_slot;              /* env without HOME: envp[home_slot] is a spare NULL slot that
                                   the child points at home_buf ("HOME=" + the user's home
                                   directory from the container's /etc/passwd, or "/"); or -1 */
    char *home_buf;             /* PRC_PATH_MAX + 8 bytes */

    /* seccomp (compiled in the parent; the child only installs it) */
    const void *seccomp_prog;   /* struct sock_filter[], or NULL */
    int seccomp_len;            /* number of instructions */
    unsigned int seccomp_flags; /* SECCOMP_FILTER_FLAG_* */
    int seccomp_notify;         /* send the listener fd to the parent */
    /* With no_new_privs and no listener, the exec stub loads the filter itself, so the
       final execve is the only call made under it (stub/exec_stub.c).  Then: */
    int seccomp_fd;             /* memfd holding the filter (close-on-exec), or -1 */
    char **stub_argv;           /* argv for the stub: [0] "", [1] stub_param, [2..] = argv
                                   (argv == stub_argv + 2), or NULL: the child loads it */
    char *stub_param;           /* 64 bytes the child fills: "<seccomp_fd>:<flags>:<sync_fd>" */

    /* file descriptors */
    int sync_fd;                /* filled in by prc_spawn */
    int fifo_dirfd;             /* the state directory (PRC_WAIT_FIFO), or -1 */
    int stub_fd;                /* sealed memfd holding the exec stub; filled by prc_spawn if -1 */
    int preserve_fds;           /* fds 3 .. 3+preserve_fds-1 survive into the container */
    int cgroup_fd;              /* cgroup v2 dir fd for CLONE_INTO_CGROUP, or -1 */

    /* cgroup v1: the container's directory (O_PATH fd) in each hierarchy, which the
       child joins itself, and the paths for error messages (see init.c) */
    const int *cgroup_join_fds;
    char **cgroup_join_paths;
    int n_cgroup_join;

    /* LSM label of the container program (lsm.c): the directory under /proc/self/
       holding the attr file ("attr/apparmor" or "attr"), or NULL for none.  Then the
       stub runs with lsm_argv = {"", "lsm", fd buffer (16 bytes, the child fills it),
       attr file name, value, then stub_argv's (or argv's) entries}. */
    const char *lsm_attr_dir;
    char **lsm_argv;
};

#define PRC_PATH_MAX 4096

/*
 * Start the child described by plan.  On success returns 0, sets *pid to the pid of the
 * container process (for a stage-1 spawn, of stage-1; the real pid arrives as
 * PRC_MSG_PID) and plan->sync_fd to the parent's end of the sync socket.  On failure
 * returns -errno and fills *err.
 */
int prc_spawn(struct prc_plan *plan, int *pid, struct prc_msg *err);

/* a sealed memfd holding the exec stub (what prc_spawn uses when plan->stub_fd is -1) */
int prc_stub_memfd(void);

/* one record over the sync socket; fd = -1 when none.  Return 0 or -errno. */
int prc_sync_send(int sock, const struct prc_msg *msg, int fd);
/* returns 0 (and *fd = received fd or -1), -errno, or -EPIPE on EOF */
int prc_sync_recv(int sock, struct prc_msg *msg, int *fd);

/* small host helpers */
int prc_pidfd_open(int pid);
/* swap the names a and b in dirfd (renameat2 RENAME_EXCHANGE): 0 or -errno */
int prc_rename_exchange(int dirfd, const char *a, const char *b);
/* a user namespace fd with these uid_map / gid_map texts (for idmapped mounts), or -errno */
int prc_userns_fd(const char *uid_map, const char *gid_map);
/* a detached copy of source (recursive: rbind) with MOUNT_ATTR_IDMAP from userns_fd
   (ridmap: on every submount too), for the child to move_mount; fd or -errno.
   userns_fd -1: a plain copy (a bind source opened before the child enters its user
   namespace, where it might not reach it) */
int prc_idmap_tree(const char *source, int recursive, int ridmap, int userns_fd);
const char *prc_version(void);
/* join (make) the session keyring `name` and add perm_add to its permissions, as the
   init does (child/keyring.c): for a restore, whose processes criu forks from itself;
   0 or -errno */
int prc_session_keyring(const char *name, unsigned int perm_add);
/* write a file under /proc the safe way (child/procfs.c): path relative to /proc,
   e.g. "123/uid_map"; 0 or -errno (EXDEV: not procfs, or a mount/symlink in the way) */
int prc_proc_write_file(const char *path, const char *data, size_t len);

/*
 * Start `path` (createContainer hooks) in the namespaces given as fds, joined in
 * order, with stdin_fd as its stdin and out_fd as stdout and stderr.  Returns the pid,
 * or -errno.  The process is ours to wait for.
 */
int prc_spawn_in_ns(const int *ns_fds, int n, const char *path, char *const argv[],
                    char *const envp[], int stdin_fd, int out_fd);
/*
 * The same, and then: chdir to cwd (if not NULL; resolved in the joined mount
 * namespace) and load the seccomp filter prog[0..len) with flags (if len > 0) just
 * before execve, as runc runs its createContainer hooks from the rootfs and its
 * startContainer hooks under the container's filter.
 */
int prc_spawn_in_ns2(const int *ns_fds, int n, const char *path, char *const argv[],
                     char *const envp[], int stdin_fd, int out_fd, const char *cwd,
                     const void *seccomp_prog, int seccomp_len, unsigned int seccomp_flags);

/*
 * cgroup v2 device filter (host/cgroup_ebpf.c; used by pyrunc/cgroups/v2/devices.py).
 * insns: struct bpf_insn[n_insns] assembled by Python.  Each returns >= 0 or -errno.
 */
int prc_bpf_cgdev_load(const void *insns, int n_insns, char *log, int log_size);  /* prog fd */
int prc_bpf_cgdev_attach(int cgroup_fd, int prog_fd, int replace_fd);  /* replace_fd -1: add */
int prc_bpf_cgdev_query(int cgroup_fd, unsigned int *ids, int max_ids);  /* number attached */
int prc_bpf_prog_fd_by_id(unsigned int id);
int prc_bpf_cgdev_detach(int cgroup_fd, int prog_fd);
