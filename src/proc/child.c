/*
 * child.c - the child between clone/vfork and exec.
 *
 * This runs in the parent's memory (CLONE_VM or vfork) while the parent's
 * thread is suspended, so it may only make async-signal-safe system calls:
 * no malloc, no stdio, no locks, nothing that touches libc state another
 * thread of the parent might hold. Everything it needs was prepared in the
 * parent (asp__child_ctx). A failure stores errno in ctx->err (the parent
 * reads it after the child is gone) and exits with 127.
 *
 * Order: signals to default (all were blocked by the parent around the
 * clone, so no handler of the parent can run here), session (or group),
 * the controlling terminal (a pty's slave, at the parent's fd number,
 * before the fds are moved), the cgroup, an fd table of its own (when
 * cloned sharing the parent's: every step before it leaves the table
 * alone), fds, cwd, the soft fd limit of before asp_raise_fd_limit, the
 * signal mask
 * emptied, exec.
 *
 * When the parent passes an error pipe (ctx->errfd, see spawn.c), its
 * write end is moved off every fd number a move targets, so no dup2 can
 * clobber it, kept open through the closing of stray fds, and closed by
 * the exec itself (close-on-exec).
 *
 * None of this is instrumented by AddressSanitizer (ASP__CHILD_CODE,
 * internal.h).
 */
#include "internal.h"
#include "pty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#ifdef ASP_HAVE_LINUX
#include <dirent.h>
#include <sched.h>
#include <sys/syscall.h>
#endif

#ifndef NSIG
#define NSIG 65
#endif

#define CHILD_CODE ASP__CHILD_CODE

/* Closes fds lo .. hi - 1 (a gap between kept fds): one close_range
 * where the kernel has it, so a passed fd at a high number does not cost
 * a million close calls. */
CHILD_CODE static void close_gap(int lo, int hi)
{
    if (lo >= hi)
        return;
#ifdef ASP_HAVE_CLOSE_RANGE
    if (syscall(SYS_close_range, (unsigned)lo, (unsigned)(hi - 1), 0u) == 0)
        return;
#endif
    for (int fd = lo; fd < hi; fd++)
        close(fd);
}

/* Closes every fd >= lo (close_range, else /proc/self/fd,
 * else closefrom, else a loop up to the fd table size). */
CHILD_CODE static void close_from(int lo)
{
#ifdef ASP_HAVE_CLOSE_RANGE
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0u) == 0)
        return;
#endif
#if defined(ASP_HAVE_LINUX)
    /* Old kernels: list /proc/self/fd with raw getdents64 (no malloc). */
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        char buf[4096];
        long n;
        while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
                int fd = 0;
                const char *c = d->d_name;
                if (*c >= '0' && *c <= '9') {
                    while (*c >= '0' && *c <= '9')
                        fd = fd * 10 + (*c++ - '0');
                    if (fd >= lo && fd != dfd)
                        close(fd);
                }
                off += d->d_reclen;
            }
        }
        close(dfd);
        return;
    }
#endif
#if defined(ASP_HAVE_CLOSEFROM)
    closefrom(lo);
#else
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = lo; fd < max; fd++)
        close((int)fd);
#endif
}

/* Whether fd is in the sorted array a of n. */
CHILD_CODE static int member(const int *a, int n, int fd)
{
    for (int i = 0; i < n && a[i] <= fd; i++)
        if (a[i] == fd)
            return 1;
    return 0;
}

/* Closes every fd >= lo but those of the sorted array a (n of them) and
 * skip (-1: none). */
CHILD_CODE static void close_all_but(int lo, const int *a, int n, int skip)
{
    for (int i = 0; i < n; i++) {
        if (a[i] < lo)
            continue;
        if (skip >= lo && skip < a[i]) {
            close_gap(lo, skip);
            lo = skip + 1;
        }
        close_gap(lo, a[i]);
        lo = a[i] + 1;
    }
    if (skip >= lo) {
        close_gap(lo, skip);
        lo = skip + 1;
    }
    close_from(lo);
}

/* A close-on-exec copy of fd at the lowest free number >= 3 that is no
 * move's target (a free target slot is skipped: the moves will fill it).
 * Returns it, or -1 with errno. */
CHILD_CODE static int dup_clear_of_targets(const asp__child_ctx *c, int fd)
{
    int lo = 3;
    for (;;) {
        int t = fcntl(fd, F_DUPFD_CLOEXEC, lo);
        if (t < 0 || !member(c->keep, c->nkeep, t))
            return t;
        close(t);
        lo = t + 1;
    }
}

/* Whether fd is the target of a move other than i. */
CHILD_CODE static int target_of_other(const asp__child_ctx *c, int i, int fd)
{
    for (int j = 0; j < c->nmoves; j++)
        if (j != i && c->moves[j].dst == fd)
            return 1;
    return 0;
}

/* Opens /dev/null as fd dst (inheritable). The moves run in target
 * order and dst is free here, so open(2), which takes the lowest free
 * number, lands on dst; should it land elsewhere, the fd is moved there.
 * Returns 0, or -1 with errno. */
CHILD_CODE static int open_null_on(int dst)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0 || fd == dst)
        return fd < 0 ? -1 : 0;
    int r = dup2(fd, dst);
    close(fd);
    return r < 0 ? -1 : 0;
}

/* Puts every fd in place without ever needing a free fd above the
 * highest one involved (a passed fd may sit at RLIMIT_NOFILE - 1):
 *  1. everything but the sources and the error pipe is closed;
 *  2. a source that is another move's target (stdout and stderr swapped,
 *     a pipe end that landed on 0-2, a passed fd onto another's number)
 *     is copied to a free number clear of every target; the error pipe
 *     too if it sits on a target;
 *  3. every source is dup2'd onto its target (dup2 clears close-on-exec;
 *     a source already at its target has the flag cleared instead) and
 *     made blocking if it is one of the spawn's new pipes, or /dev/null
 *     opened there;
 *  4. everything but the targets and the error pipe is closed.
 * After step 2 no pending source sits on another move's target, so the
 * dup2s may go in any order. Returns 0, or -1 with errno. */
CHILD_CODE static int arrange_fds(asp__child_ctx *c, int *errfd)
{
    close_all_but(0, c->srcs, c->nsrcs, *errfd);
    if (*errfd >= 0 && (*errfd <= 2 || member(c->keep, c->nkeep, *errfd))) {
        int t = dup_clear_of_targets(c, *errfd);
        if (t < 0)
            return -1;
        *errfd = t;
    }
    for (int i = 0; i < c->nmoves; i++) {
        int s = c->moves[i].src;
        if (s < 0 || s == c->moves[i].dst || !target_of_other(c, i, s))
            continue;
        int t = dup_clear_of_targets(c, s);
        if (t < 0)
            return -1;
        for (int j = i; j < c->nmoves; j++)
            if (c->moves[j].src == s)
                c->moves[j].src = t;
    }
    for (int i = 0; i < c->nmoves; i++) {
        const asp__fdmove *m = &c->moves[i];
        if (m->src == ASP__FD_DEVNULL) {
            if (open_null_on(m->dst) < 0)
                return -1;
        } else if (m->src < 0)
            close(m->dst);
        else if (m->src == m->dst ? fcntl(m->dst, F_SETFD, 0) < 0
                                  : dup2(m->src, m->dst) < 0)
            return -1;
        /* A new pipe end has no other status flag: 0 clears O_NONBLOCK. */
        if (m->src >= 0 && m->clear_nb && fcntl(m->dst, F_SETFL, 0) < 0)
            return -1;
    }
    close_all_but(3, c->keep, c->nkeep, *errfd);
    return 0;
}

/* Joins the leaf cgroup whose cgroup.procs is open as fd ("0": the
 * writer itself), before exec, so that nothing the program starts is
 * ever outside it. -1 with errno on failure. */
CHILD_CODE static int join_cgroup(int fd)
{
    ssize_t r;
    do
        r = write(fd, "0", 1);
    while (r < 0 && errno == EINTR);
    return r == 1 ? 0 : -1;
}

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

/* The child was cloned sharing the parent's fd table (CLONE_FILES, see
 * spawn.c): it gets a table of its own before it changes any fd, holding
 * only the fds below cut -- close_range(cut, ~0U, CLOSE_RANGE_UNSHARE)
 * copies just those (Linux 5.9); elsewhere unshare copies them all, as
 * the clone would have. Returns 0, or -1 with errno. */
CHILD_CODE static int own_fd_table(int cut)
{
#ifdef ASP_HAVE_CLOSE_RANGE
    if (syscall(SYS_close_range, (unsigned)cut, ~0u, CLOSE_RANGE_UNSHARE) == 0)
        return 0;
#endif
#ifdef ASP_HAVE_CLONE
    return unshare(CLONE_FILES);
#else
    (void)cut;
    errno = ENOSYS;
    return -1;
#endif
}

/* Hands err to the parent: in the shared memory, and through the error
 * pipe when there is one. */
CHILD_CODE static void report(asp__child_ctx *c, int errfd, int err)
{
    c->err = err;
    if (errfd >= 0) {
        ssize_t r;
        do
            r = write(errfd, &err, sizeof err);
        while (r < 0 && errno == EINTR);
    }
}

/* Every signal to its default disposition. glibc's sigaction refuses the
 * two signals it reserves for itself (32 and 33), yet a SIG_IGN on them
 * comes in through exec from parents of other libcs and would pass on to
 * our child: on Linux the raw system call resets them too. The kernel
 * structure it takes differs between architectures, but an all-zero one
 * means SIG_DFL, no flags and an empty mask on every one of them. */
CHILD_CODE static void reset_signals(void)
{
#ifdef ASP_HAVE_LINUX
    static const unsigned long dfl[8];
    for (int sig = 1; sig < _NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)syscall(SYS_rt_sigaction, sig, dfl, NULL,
                          (size_t)((_NSIG - 1) / 8));
#else
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL);
#endif
}

/* The child's body. Never returns. */
CHILD_CODE int asp__child_main(void *arg)
{
    asp__child_ctx *c = arg;
    sigset_t empty;
    int errfd = c->errfd;

    c->started = 1;
    reset_signals();
    if (c->setsid && setsid() < 0)
        goto fail;
    if (c->ctty >= 0 && asp__pty_attach(c->ctty) < 0)
        goto fail;
    if (c->pgid >= 0 && setpgid(0, c->pgid) < 0)
        goto fail;
    if (c->cgroup_fd >= 0 && join_cgroup(c->cgroup_fd) < 0)
        goto fail;
    if (c->shared_files && own_fd_table(c->cut) < 0)
        goto fail;
    if (arrange_fds(c, &errfd) < 0)
        goto fail;
    if (c->cwd && chdir(c->cwd) < 0)
        goto fail;
    /* The soft fd limit of before asp_raise_fd_limit (best effort: the
     * program gets the raised one rather than no program). setrlimit is
     * one system call, no libc state. */
    if (c->nofile_restore)
        (void)setrlimit(RLIMIT_NOFILE, &c->nofile);

    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);

    /* execvp's rules: keep looking past ENOENT/ENOTDIR-like errors,
     * remember EACCES, stop at anything else. */
    int seen_eacces = 0;
    for (int i = 0; i < c->npaths; i++) {
        execve(c->paths[i], (char *const *)c->argv, c->envp);
        switch (errno) {
        case EACCES:
            seen_eacces = 1;
            /* fall through */
        case ENOENT:
        case ENOTDIR:
        case ESTALE:
        case ENAMETOOLONG:
        case ELOOP:
        case ENODEV:
        case ETIMEDOUT:
            if (c->npaths > 1)
                continue;
            break;
        default: break;
        }
        break;
    }
    if (seen_eacces && c->npaths > 1)
        errno = EACCES;
fail:
    report(c, errfd, errno ? errno : EINVAL);
    _exit(127);
}
