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

/* Closes every fd >= lo (close_range, else /proc/self/fd, else closefrom,
 * else a loop up to the fd table size). */
static void close_from(int lo)
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

/* Puts every fd in place: lift all sources above every target first, so
 * that a target can never clobber a source still needed (stdout/stderr
 * swapped, a pipe end that landed on 0-2), then dup2 into place, then
 * close everything else. dup2 clears close-on-exec on the targets. */
static int arrange_fds(asp__child_ctx *c)
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
        for (int fd = lo; fd < c->keep[i]; fd++)
            close(fd);
        lo = c->keep[i] + 1;
    }
    close_from(lo);
    return 0;
}

/* The child's body. Never returns. */
int asp__child_main(void *arg)
{
    asp__child_ctx *c = arg;
    struct sigaction sa;
    sigset_t empty;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL); /* libc-reserved ones refuse */

    if (c->setsid && setsid() < 0)
        goto fail;
    if (c->pgid >= 0 && setpgid(0, c->pgid) < 0)
        goto fail;
    if (arrange_fds(c) < 0)
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
    c->err = errno ? errno : EINVAL;
    _exit(127);
}
