/*
 * notify.c - a one-way wakeup channel and small fd helpers.
 *
 * The channel is an eventfd on Linux (one fd, one 8-byte counter) and a
 * pipe elsewhere. Posting is a single write(2), which makes it usable from
 * another thread and from a signal handler; a full channel (EAGAIN) already
 * guarantees a wakeup, so that error is ignored.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#ifdef ASP_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

/* Creates a pipe whose both ends are close-on-exec from creation (where
 * the system has pipe2) plus extra_flags (O_NONBLOCK). */
int asp__pipe(int fds[2], int extra_flags)
{
#ifdef ASP_HAVE_PIPE2
    if (pipe2(fds, O_CLOEXEC | extra_flags) < 0)
        return -errno;
    return 0;
#else
    /* No pipe2: the window between pipe() and FD_CLOEXEC is unavoidable
     * here; spawning closes every unlisted fd in the child anyway. */
    if (pipe(fds) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 ||
            ((extra_flags & O_NONBLOCK) && asp__set_nonblock(fds[i]) < 0)) {
            int e = -errno;
            close(fds[0]);
            close(fds[1]);
            return e;
        }
    }
    return 0;
#endif
}

/* Moves fd to 3 or above if it sits on a stdio number. */
int asp__fd_high(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    return nfd < 0 ? -e : nfd;
}

/* Moves a long-lived fd of the library (a pipe end kept by a stream, a
 * pidfd) from PARK_FROM or above to PARK_BASE or above, when the limit
 * allows (see internal.h). Returns the fd to use: the old one when it is
 * low or cannot move (nothing is lost then but the benefit). */
int asp__fd_park(int fd)
{
    if (fd < ASP__PARK_FROM)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, ASP__PARK_BASE);
    if (nfd < 0)
        return fd;
    close(fd);
    return nfd;
}

/* Sets O_NONBLOCK on fd; 0 or -errno. */
int asp__set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Opens a notifier; 0 or -errno with nothing left open. */
int asp__notifier_open(asp__notifier *n)
{
#ifdef ASP_HAVE_EVENTFD
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    fd = asp__fd_high(fd);
    if (fd < 0)
        return fd;
    n->rfd = n->wfd = fd;
    return 0;
#else
    int fds[2];
    int r = asp__pipe(fds, O_NONBLOCK);
    if (r < 0)
        return r;
    fds[0] = asp__fd_high(fds[0]);
    fds[1] = asp__fd_high(fds[1]);
    if (fds[0] < 0 || fds[1] < 0) {
        r = fds[0] < 0 ? fds[0] : fds[1];
        if (fds[0] >= 0)
            close(fds[0]);
        if (fds[1] >= 0)
            close(fds[1]);
        return r;
    }
    n->rfd = fds[0];
    n->wfd = fds[1];
    return 0;
#endif
}

/* Closes both ends (once). */
void asp__notifier_close(asp__notifier *n)
{
    if (n->rfd >= 0)
        close(n->rfd);
    if (n->wfd >= 0 && n->wfd != n->rfd)
        close(n->wfd);
    n->rfd = n->wfd = -1;
}

/* Makes the read end readable. Async-signal-safe; keeps errno. */
void asp__notifier_post(const asp__notifier *n)
{
    int saved = errno;
    ssize_t r;
#ifdef ASP_HAVE_EVENTFD
    uint64_t one = 1;
    do
        r = write(n->wfd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
#else
    char one = 1;
    do
        r = write(n->wfd, &one, 1);
    while (r < 0 && errno == EINTR);
#endif
    (void)r; /* EAGAIN: already readable, which is all we need */
    errno = saved;
}

/* Empties the channel so that it is no longer readable. */
void asp__notifier_drain(const asp__notifier *n)
{
    char buf[64];
    ssize_t r;
    do
        r = read(n->rfd, buf, sizeof buf);
    while (r > 0 || (r < 0 && errno == EINTR));
}
