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
 * clone, so no handler of the parent can run here), session/group, fds,
 * cwd, the signal mask emptied, exec.
 *
 * When the parent passes an error pipe (ctx->errfd, see spawn.c), its
 * write end is first lifted above every fd number the child will use, so
 * no dup2 can clobber it, kept open through the closing of stray fds, and
 * closed by the exec itself (close-on-exec).
 *
 * None of this is instrumented by AddressSanitizer: the code runs on a
 * borrowed stack in a process that is about to become another program,
 * where the sanitizer's stack bookkeeping only produces noise.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#ifdef ASP_HAVE_CLOSE_RANGE
#include <sys/syscall.h>
#endif
#ifdef ASP_HAVE_LINUX
#include <dirent.h>
#endif

#ifndef NSIG
#define NSIG 65
#endif

#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define CHILD_CODE __attribute__((no_sanitize("address")))
#endif
#endif
#ifndef CHILD_CODE
#define CHILD_CODE
#endif

/* Closes every fd in [lo, hi] (a short, bounded span). */
CHILD_CODE static void close_span(int lo, int hi)
{
#ifdef ASP_HAVE_CLOSE_RANGE
    if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u) == 0)
        return;
#endif
    for (int fd = lo; fd <= hi; fd++)
        close(fd);
}

/* Closes every fd >= lo except skip (close_range, else /proc/self/fd,
 * else closefrom, else a loop up to the fd table size). */
CHILD_CODE static void close_from(int lo, int skip)
{
    if (skip >= lo) {
        /* Only the error pipe is ever skipped, and it sits just above the
         * fds in use, so the span below it is short. */
        if (skip > lo)
            close_span(lo, skip - 1);
        lo = skip + 1;
    }
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
                    if (fd >= lo && fd != dfd && fd != skip)
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

/* Closes fds lo .. hi - 1 (a gap between kept fds, all below the lifted
 * ones): one close_range where the kernel has it, so a passed fd at a high
 * number does not cost a million close calls. */
static void close_gap(int lo, int hi)
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

/* Puts every fd in place: lift all sources above every target first, so
 * that a target can never clobber a source still needed (stdout/stderr
 * swapped, a pipe end that landed on 0-2), then dup2 into place, then
 * close everything else but errfd (-1: none). dup2 clears close-on-exec
 * on the targets. */
CHILD_CODE static int arrange_fds(asp__child_ctx *c, int errfd)
{
    for (int i = 0; i < c->nmoves; i++) {
        c->lifted[i] = -1;
        if (c->moves[i].src < 0)
            continue;
        c->lifted[i] = fcntl(c->moves[i].src, F_DUPFD_CLOEXEC, c->lift_min);
        if (c->lifted[i] < 0)
            return -1;
    }
    for (int i = 0; i < c->nmoves; i++) {
        if (c->moves[i].src < 0)
            close(c->moves[i].dst);
        else if (dup2(c->lifted[i], c->moves[i].dst) < 0)
            return -1;
    }
    /* Close the gaps between kept fds, then everything above. */
    int lo = 3;
    for (int i = 0; i < c->nkeep; i++) {
        close_gap(lo, c->keep[i]);
        lo = c->keep[i] + 1;
    }
    close_from(lo, errfd);
    return 0;
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

/* The child's body. Never returns. */
CHILD_CODE int asp__child_main(void *arg)
{
    asp__child_ctx *c = arg;
    struct sigaction sa;
    sigset_t empty;
    int errfd = c->errfd;

    c->started = 1;
    if (errfd >= 0) {
        int hi = fcntl(errfd, F_DUPFD_CLOEXEC, c->lift_min);
        if (hi < 0)
            goto fail;
        errfd = hi;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL); /* libc-reserved ones refuse */

    if (c->setsid && setsid() < 0)
        goto fail;
    if (c->pgid >= 0 && setpgid(0, c->pgid) < 0)
        goto fail;
    if (arrange_fds(c, errfd) < 0)
        goto fail;
    if (c->cwd && chdir(c->cwd) < 0)
        goto fail;

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
        default:
            break;
        }
        break;
    }
    if (seen_eacces && c->npaths > 1)
        errno = EACCES;
fail:
    report(c, errfd, errno ? errno : EINVAL);
    _exit(127);
}
