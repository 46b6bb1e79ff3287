/*
 * embed.c - what a host loop (GLib, libuv, libevent, a poll() of its own)
 * needs to drive an asp_loop: the fds to poll, when the next timer is
 * due, and, for hosts without a prepare hook, a call each time either
 * changes.
 *
 * Two routes, as the header explains: the host asks before each of its
 * polls (asp_loop_pollfds, asp_loop_timeout), or asproc tells it of each
 * change (asp_loop_on_fd, asp_loop_on_timeout). The timeout is told
 * outside runs only: a change made inside a run (by a callback) is told
 * once, as the run returns, so the host's callback never meets a run
 * half-way. Fd changes cannot wait like that: the library may close the
 * fd right after it stops watching it, and a host that keeps the fd
 * registered in its kernel (epoll) must drop it first, or a new fd with
 * the same number would meet the stale registration. So the fd callback
 * runs at once, even inside a run.
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>

/* The deadline the host's timer must meet: the earliest timer's, 0 (due
 * now) while the backend holds events its fd does not show, UINT64_MAX
 * when there is none. */
static uint64_t host_deadline(const asp_loop *loop)
{
    if (loop->be->pending && loop->be->pending(loop))
        return 0;
    if (!loop->heap_min)
        return UINT64_MAX;
    return ASP__T(loop->heap_min)->due;
}

/* Tells the host's timeout callback the current timeout when the
 * deadline differs from the one it was told last, or always (force) while
 * there is a deadline. The loop counts as running meanwhile, so that a
 * run started from the callback is refused (-EBUSY); a timer the callback
 * starts or stops is caught by telling again. */
static void host_tell(asp_loop *loop, int force)
{
    if (!loop->host_timeout_cb || loop->host_telling)
        return;
    int was_running = loop->running;
    loop->running = 1;
    loop->host_telling = 1;
    for (;;) {
        uint64_t due = host_deadline(loop);
        if (loop->host_told_set && due == loop->host_told &&
            !(force && due != UINT64_MAX))
            break;
        force = 0;
        loop->host_told = due;
        loop->host_told_set = 1;
        loop->host_timeout_cb(loop, asp_loop_timeout(loop),
                              loop->host_timeout_data);
        if (!loop->host_timeout_cb)
            break;
    }
    loop->host_telling = 0;
    loop->running = was_running;
}

/* Outside a run the host hears at once; a run tells it as it returns. */
void asp__embed_deadline_moved(asp_loop *loop)
{
    if (loop->host_timeout_cb && !loop->running)
        host_tell(loop, 0);
}

/* As a run returns, the host hears the timeout whenever there is one:
 * the host timer that started this run may have fired before asproc's
 * deadline by the host's own clock (libuv's cached loop time, libevent's
 * coarse clock), and is spent even though the deadline did not move. */
void asp__embed_run_end(asp_loop *loop)
{
    if (loop->host_timeout_cb)
        host_tell(loop, 1);
}

/* Poll bits for a mask of ASP_READ/ASP_WRITE. */
static int poll_bits(int mask)
{
    return ((mask & ASP_READ) ? POLLIN : 0) |
           ((mask & ASP_WRITE) ? POLLOUT : 0);
}

/* Only a backend without a single fd (poll) exports its watched fds one
 * by one; a forked copy of the loop tells its host nothing. */
void asp__embed_fd_changed(asp_loop *loop, int fd, int mask)
{
    if (!loop->host_fd_cb || loop->inherited || loop->be->fd(loop) >= 0)
        return;
    loop->host_fd_cb(loop, fd, poll_bits(mask), loop->host_fd_data);
}

/* The timeout callback is not called from asp_loop_free (the host is
 * tearing down); the single fd's end is told before the backend closes
 * it, as for any fd. */
void asp__embed_teardown(asp_loop *loop)
{
    loop->host_timeout_cb = NULL;
    int fd = loop->be->fd(loop);
    if (loop->host_fd_cb && !loop->inherited && fd >= 0)
        loop->host_fd_cb(loop, fd, 0, loop->host_fd_data);
}

/* The backend's pollable fd (epoll, kqueue); -ENOTSUP for poll. */
int asp_loop_fd(const asp_loop *loop)
{
    if (!loop)
        return -EINVAL;
    return loop->be->fd(loop);
}

/* The fds a host must poll, for every backend. */
int asp_loop_pollfds(const asp_loop *loop, struct pollfd *fds, int nfds)
{
    if (!loop || nfds < 0 || (!fds && nfds > 0))
        return -EINVAL;
    return loop->be->pollfds(loop, fds, nfds);
}

/* Milliseconds to the next timer, rounded up; -1 none; 0 while the
 * backend holds events no fd shows. */
int asp_loop_timeout(const asp_loop *loop)
{
    if (!loop)
        return -EINVAL;
    if (loop->be->pending && loop->be->pending(loop))
        return 0;
    /* The cached time may be old when a host asks between iterations. */
    int64_t ns = asp__timers_next(loop, asp__now_ns());
    if (ns < 0)
        return -1;
    return asp__ns_to_ms_up(ns);
}

/* Sets the timeout callback and tells it the current timeout (now, or
 * as the run in progress returns). */
int asp_loop_on_timeout(asp_loop *loop, asp_timeout_cb cb, void *data)
{
    if (!loop)
        return -EINVAL;
    loop->host_timeout_cb = cb;
    loop->host_timeout_data = data;
    loop->host_told_set = 0;
    asp__embed_deadline_moved(loop);
    return 0;
}

/* Sets the fd callback and tells it every fd polled now. The list is
 * taken before the first call, so a callback that changes nothing of the
 * loop's (as it must not) sees each fd once. */
int asp_loop_on_fd(asp_loop *loop, asp_fd_cb cb, void *data)
{
    if (!loop)
        return -EINVAL;
    struct pollfd small[16], *fds = small;
    int n = loop->be->pollfds(loop, NULL, 0);
    if (cb && n > (int)(sizeof small / sizeof small[0])) {
        fds = asp__malloc((size_t)n * sizeof *fds);
        if (!fds)
            return -ENOMEM;
    }
    if (cb)
        n = loop->be->pollfds(loop, fds, n);
    loop->host_fd_cb = cb;
    loop->host_fd_data = data;
    for (int i = 0; cb && i < n; i++)
        cb(loop, fds[i].fd, fds[i].events, data);
    if (fds != small)
        asp__free(fds);
    return 0;
}
