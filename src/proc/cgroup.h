/*
 * cgroup.h - whole-tree containment with cgroup v2 (internal).
 *
 * One fresh leaf cgroup per child: the child joins it between clone and
 * exec, and from then on everything it starts -- setsid daemons, double
 * forks, processes that moved into sub-cgroups they made inside the leaf
 * -- stays in the leaf's subtree, which the parent can signal as a whole,
 * watch for "empty" and read usage figures from.
 *
 * Lifetime of a leaf:
 *   asp__cgroup_create       mkdir, open the fds (parent)
 *   asp__cgroup_join_child   write "0" to cgroup.procs (child, before exec)
 *   asp__cgroup_joined       drop the cgroup.procs fd once the child joined
 *   asp__cgroup_watch        add it to a notifier shared by many leaves
 *   asp__cgroup_signal       signal every member, pid-reuse safe
 *   asp__cgroup_populated    members left?
 *   asp__cgroup_stats        CPU time and peak memory of the tree
 *   asp__cgroup_destroy      rmdir (bottom-up), close, free
 *
 * Linux only. On builds without ASP_HAVE_LINUX (PORTABLE=1, the BSDs) every
 * function still exists, so that callers need no #ifdef: they return
 * -ENOTSUP (asp__cgroup_destroy and asp__cgroup_joined do nothing and
 * succeed on the zeroed struct, which is all such a build can hold).
 *
 * What a caller must know:
 *   - Joining moves the child from the caller's cgroup into the leaf. The
 *     kernel allows that only to a writer that may write the cgroup.procs
 *     of the common ancestor of both, i.e. the caller's own cgroup when the
 *     leaf sits under it (the default): root, a systemd unit with
 *     Delegate=yes, a container with a writable cgroupfs. Since Linux 5.16
 *     that check uses the credentials of the opener of cgroup.procs (the
 *     parent, at create time), so a child may drop privileges before it
 *     joins; on older kernels join before dropping them.
 *   - The no-internal-process rule: a cgroup that holds processes cannot
 *     give domain controllers (memory, io, ...) to its children. Under the
 *     default parent (the caller's own cgroup, which holds the caller) the
 *     leaf therefore has no memory controller and no memory.peak; to get
 *     one, pass as parent a cgroup without processes whose
 *     cgroup.subtree_control enables "memory".
 *   - A parent inside a threaded subtree gives leaves of type "domain
 *     invalid", which no process can join: asp__cgroup_create refuses
 *     those with -EBUSY, the kernel's error class for "this cgroup may not
 *     hold processes".
 *   - Every leaf limits the depth of the sub-cgroups its members may make
 *     (cgroup.max.depth = ASP__CGROUP_MAX_DEPTH) so that walking the tree
 *     is bounded.
 *   - All fds are close-on-exec. A leaf costs two fds until
 *     asp__cgroup_joined, one after; watching costs no fd per leaf.
 */
#ifndef ASP_PROC_CGROUP_H
#define ASP_PROC_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* How deep members may nest sub-cgroups below their leaf. */
#define ASP__CGROUP_MAX_DEPTH 16

/* Age in seconds past which an empty leaf whose maker is gone is taken
 * for a leftover (see asp__cgroup_create). */
#define ASP__CGROUP_STALE_S 60

/* How long asp__cgroup_signal waits for the freezer (milliseconds). */
#define ASP__CGROUP_FREEZE_WAIT_MS 200

/* One leaf cgroup. path NULL means "no leaf" (an all-zero struct is one):
 * destroy accepts it, and a failed create or a destroy leaves the struct
 * that way, with the fds at -1. The fields are readable by the caller;
 * only the has_* flags may be cleared (the self-test does so to take the
 * paths of older kernels). */
typedef struct asp__cgroup {
    char *path;    /* absolute path of the leaf (owned); NULL: no leaf */
    int dirfd;     /* the leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC; also
                      what clone3's CLONE_INTO_CGROUP takes */
    int procs_fd;  /* the leaf's cgroup.procs, O_WRONLY | O_CLOEXEC, for
                      the child to join; -1 after asp__cgroup_joined */
    int notify_fd; /* the notifier watching this leaf, -1: not watched */
    int wd;        /* the watch descriptor in that notifier, -1: none */
    unsigned char has_kill;   /* cgroup.kill exists (Linux 5.14) */
    unsigned char has_freeze; /* cgroup.freeze exists (Linux 5.2) */
} asp__cgroup;

/* Usage of a whole tree: the leaf and everything below it, including
 * members that have exited already (the kernel keeps the totals in the
 * cgroup until it is removed, so read them before asp__cgroup_destroy). */
typedef struct asp__cgroup_usage {
    uint64_t usage_usec; /* CPU time, user + system (cpu.stat) */
    uint64_t user_usec;
    uint64_t system_usec;
    int cpu_status;       /* 0, or -ENODATA: no cpu.stat (before 4.15) */
    uint64_t memory_peak; /* bytes (memory.peak) */
    int memory_status;    /* 0, or -ENODATA: no memory controller in the
                             leaf, or a kernel before 5.19 */
} asp__cgroup_usage;

/* Writes the absolute path of the cgroup v2 mount point to buf. The
 * mount is found in /proc/self/mountinfo (filesystem type cgroup2; the
 * first one whose root contains the caller's own cgroup), never assumed:
 * it is /sys/fs/cgroup on a unified system, /sys/fs/cgroup/unified in
 * hybrid mode, anything elsewhere. The lookup is done once per process
 * and cached after its first success (thread-safe).
 * Returns the length of the path, or -ENOTSUP (no cgroup2 mounted),
 * -ENOENT (mounted, but no mount shows the caller's cgroup, e.g. a
 * subtree mount of another part of the hierarchy), -ENAMETOOLONG (buf
 * smaller than the path + 1), or an error reading /proc. */
int asp__cgroup_mount_point(char *buf, size_t size);

/* Writes the default parent of new leaves to buf: the caller's own v2
 * cgroup ("0::" line of /proc/self/cgroup) as an absolute path under the
 * mount point. It is cached with the mount point: a process that is later
 * moved to another cgroup keeps the first one as its default parent.
 * Returns the length of the path or the errors of
 * asp__cgroup_mount_point. */
int asp__cgroup_default_parent(char *buf, size_t size);

/* Creates a fresh, empty leaf cgroup under parent (an absolute path on the
 * cgroup2 mount, or NULL for the default parent), named
 * "asproc-<pid>-<n>" with n from a process-wide atomic counter, so names
 * never collide between threads or loops (a leftover of an earlier
 * process with the same pid is stepped over). The first create of a
 * process also removes, under that parent, empty leaves over
 * ASP__CGROUP_STALE_S old whose maker no longer exists (a process killed
 * with SIGKILL cannot remove its own). It opens the leaf, its
 * cgroup.procs for the child to join, and notes which of cgroup.kill and
 * cgroup.freeze the kernel has.
 * Returns 0, or
 *   -ENOTSUP       no cgroup v2, or parent is not a cgroup2 directory;
 *   -EACCES, -EPERM, -EROFS   the parent is not writable (the
 *                  unprivileged case: fall back to a process group);
 *   -ENOENT        parent does not exist; -ENOTDIR not a directory;
 *   -EINVAL        parent is not an absolute path;
 *   -ENAMETOOLONG  parent plus the leaf name do not fit in PATH_MAX;
 *   -EBUSY         the leaf could not hold processes (a threaded parent);
 *   -EAGAIN        the parent's cgroup.max.descendants or max.depth is
 *                  reached;
 *   -EMFILE, -ENFILE, -ENOMEM.
 * On failure nothing is left behind (no directory, fd or memory) and
 * *cg holds no leaf (path NULL). -EINVAL also for a NULL cg. */
int asp__cgroup_create(asp__cgroup *cg, const char *parent);

/* The child side, between clone and exec: joins the leaf by writing "0"
 * (the writer itself) to procs_fd. Async-signal-safe: one write(2),
 * retried on EINTR; no allocation, no stdio, no locks, so it may run in a
 * vfork or CLONE_VM child. Returns 0 or -errno: -EACCES/-EPERM (the
 * common-ancestor rule), -EBUSY or -EOPNOTSUPP (the leaf may not hold
 * processes), -ENOENT (the leaf was removed), -EBADF. */
int asp__cgroup_join_child(int procs_fd);

/* Closes procs_fd once the child has joined (or failed to start): the
 * parent never needs it, and a loop with thousands of children should not
 * pay two fds for each. Idempotent; safe on a zeroed cg. */
void asp__cgroup_joined(asp__cgroup *cg);

/* Sends sig (0 checks for members) to every process in the leaf and its
 * sub-cgroups, never to a recycled pid:
 *   - SIGKILL, where cgroup.kill exists (5.14): one write to it; the
 *     kernel kills the whole subtree, also processes forked meanwhile.
 *   - otherwise: the subtree is frozen (cgroup.freeze, 5.2; waiting up to
 *     ASP__CGROUP_FREEZE_WAIT_MS for "frozen 1", since a task in an
 *     uninterruptible sleep freezes only when it wakes), its pids are
 *     read, each is opened as a pidfd (5.3), the pids are read again, and
 *     only pids listed both times are signalled, through their pidfd: a
 *     pidfd still open at the signal proves its pid was not reused after
 *     the second listing found it in the tree. The tree is then thawed
 *     (unless it was frozen before the call). A pid without a pidfd
 *     (EMFILE) is signalled with kill(2) only when the freeze was
 *     confirmed, since a frozen process cannot exit and free its pid; on
 *     kernels without pidfd_open kill(2) is all there is (before 5.2,
 *     without a freezer either, that is best effort). SIGKILL works on
 *     frozen processes, so the same path serves SIGKILL on kernels
 *     without cgroup.kill. sig 0 skips the freeze. Members in a pid
 *     namespace the caller cannot see are listed as pid 0: only
 *     cgroup.kill reaches them.
 * Blocks for at most ASP__CGROUP_FREEZE_WAIT_MS plus the time to read the
 * tree. Returns the number of processes signalled, 0 when the tree is
 * empty, or -errno: -EINVAL bad sig or no leaf, -ELOOP the tree is deeper
 * than ASP__CGROUP_MAX_DEPTH, -EPERM when no member could be signalled
 * for lack of permission, -ENOMEM, -EMFILE, or an error of the cgroup
 * files. For SIGKILL through cgroup.kill the count is the members found
 * just before the kill (also what it killed, unless one forked or exited
 * in between; low, never a reason to hold the kill back, when part of the
 * tree could not be read). A thaw that fails is reported as its error
 * even though the signals went out, because a tree left frozen must not
 * go unnoticed. */
int asp__cgroup_signal(asp__cgroup *cg, int sig);

/* Returns 1 while the leaf or one of its sub-cgroups holds a process, 0
 * when the tree is empty ("populated" of cgroup.events; zombies no longer
 * count), or -errno (-EINVAL no leaf, -ENOENT the leaf was removed). */
int asp__cgroup_populated(asp__cgroup *cg);

/* Opens a notifier: one inotify fd (non-blocking, close-on-exec) that any
 * number of leaves can be watched by, and that becomes READABLE whenever
 * the cgroup.events of one of them changes (the tree became empty or
 * populated, froze or thawed), so a plain READ watcher of the loop serves
 * every child of the loop. Returns the fd or -errno (-EMFILE; the inotify
 * instance limit gives -EMFILE too). Close it with close(2), but only
 * after every leaf watched by it was unwatched or destroyed. */
int asp__cgroup_notifier_open(void);

/* Watches cg's cgroup.events with the notifier nfd, storing the watch
 * descriptor in cg->wd (unique within nfd for as long as the watch lasts;
 * inotify does not reuse numbers soon after). A leaf has one watch at a
 * time. Returns 0 or -errno: -EINVAL no leaf, -EALREADY already watched,
 * -ENOSPC fs.inotify.max_user_watches is reached, -EBADF. */
int asp__cgroup_watch(asp__cgroup *cg, int nfd);

/* Stops watching cg (a no-op when it is not watched). Returns 0 or the
 * error of inotify_rm_watch, after which cg counts as unwatched anyway. */
int asp__cgroup_unwatch(asp__cgroup *cg);

/* Called by asp__cgroup_notifier_read for each change: wd is the
 * asp__cgroup.wd of the leaf whose cgroup.events changed, or -1 when the
 * kernel's queue overflowed and every watched leaf must be checked. */
typedef void (*asp__cgroup_change_fn)(int wd, void *arg);

/* Drains the notifier nfd, calling fn for each change found, in order; a
 * leaf may be reported more than once; fn NULL just drains. fn may
 * unwatch or destroy leaves.
 * A change is only a hint: ask asp__cgroup_populated what it means.
 * Returns the number of changes found (0: nothing pending), or -errno. */
int asp__cgroup_notifier_read(int nfd, asp__cgroup_change_fn fn, void *arg);

/* Reads the tree's usage into *u: CPU times from cpu.stat (present
 * without the cpu controller since 4.15) and memory.peak (5.19, only
 * where the memory controller is enabled for the leaf); a value that is
 * not available has its status set to -ENODATA. Returns 0, or -errno
 * (-EINVAL no leaf, an error reading the files), *u then being zeroed. */
int asp__cgroup_stats(asp__cgroup *cg, asp__cgroup_usage *u);

/* Removes the leaf and releases *cg. The tree must be empty: -EBUSY
 * otherwise, and nothing is changed, so the caller can try again once
 * asp__cgroup_populated says 0 (the check comes first, so the sub-cgroups
 * of a tree that still runs are never touched). Sub-cgroups that members
 * made are removed bottom-up, then the leaf; the watch (if any) is
 * removed, the fds closed, the path freed and *cg left with no leaf.
 * Returns 0 (also when the leaf had vanished already), or:
 *   -EBUSY, or an error reading the tree (-EMFILE, -ENOMEM, -ELOOP ...):
 *       *cg is kept, so that a retry is possible (sub-cgroups already
 *       removed by then stay removed: they were empty);
 *   any other failure to remove the leaf itself (-EACCES ...): returned,
 *       but *cg is released all the same, since keeping fds for a
 *       directory the caller cannot remove would only leak them too.
 * Safe on a zeroed or failed cg (returns 0). */
int asp__cgroup_destroy(asp__cgroup *cg);

/* Lets go of cg in a process that inherited it through fork (the leaf is
 * the parent's): closes this process's fds of it and frees the path,
 * without removing the leaf or touching a notifier's watch, which the
 * parent shares. Safe on a zeroed or destroyed cg. */
void asp__cgroup_forget(asp__cgroup *cg);

#endif
