/*
 * io.c - fd watchers.
 *
 * The loop keeps a table fd -> started watcher. Backends report (fd, mask)
 * pairs; dispatch looks the fd up in the table at the moment of delivery
 * and re-checks the watcher's interest, so an event for a watcher stopped
 * earlier in the same dispatch is never delivered. A watcher also notes
 * the poll count when it starts, and takes only events of later polls:
 * after "stop, close, open (same number), start" in one callback, the old
 * fd's event cannot reach the new watcher. (That used to be done by
 * erasing the fd's pending events at each stop, a scan of the fired array
 * that made a dispatch of n events that stops n watchers -- a thousand
 * children exiting at once -- cost n * n / 2 steps.)
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* The private part of a watcher. */
#define W(w) ASP__IO(w)

_Static_assert(sizeof(asp__io_priv) <= sizeof(((asp_io *)0)->private_),
               "asp_io's private room is too small");

/* Prepares w to watch fd; not started. */
int asp_io_init(asp_loop *loop, asp_io *w, int fd, asp_io_cb cb, void *data)
{
    if (!loop || !w || !cb || fd < 0)
        return -EINVAL;
    memset(w, 0, sizeof *w);
    W(w)->loop = loop;
    W(w)->cb = cb;
    w->data = data;
    W(w)->fd = fd;
    W(w)->flags = ASP__F_INIT;
    return 0;
}

/* Grows the fd table to hold fd. */
static int fdtab_reserve(asp_loop *loop, int fd)
{
    if ((size_t)fd < loop->fdcap)
        return 0;
    size_t cap = loop->fdcap ? loop->fdcap : 64;
    while (cap <= (size_t)fd)
        cap *= 2;
    asp_io **t = asp__realloc(loop->fdtab, cap * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t + loop->fdcap, 0, (cap - loop->fdcap) * sizeof *t);
    loop->fdtab = t;
    loop->fdcap = cap;
    return 0;
}

/* Sets the interest of w (0 stops). */
int asp_io_start(asp_io *w, int events)
{
    if (!w || !(W(w)->flags & ASP__F_INIT) ||
        (events & ~(ASP_READ | ASP_WRITE)) != 0)
        return -EINVAL;
    if (events == 0)
        return asp_io_stop(w);

    asp_loop *loop = W(w)->loop;
    int fd = W(w)->fd;
    int r;

    if (W(w)->flags & ASP__F_ACTIVE) {
        if (events != W(w)->kernel) {
            r = loop->be->set(loop, fd, W(w)->kernel, events);
            if (r < 0)
                return r;
            W(w)->kernel = events;
            asp__embed_fd_changed(loop, fd, events);
        }
        W(w)->events = events;
        return 0;
    }

    if ((size_t)fd < loop->fdcap && loop->fdtab[fd] && loop->fdtab[fd] != w)
        return -EEXIST;
    r = fdtab_reserve(loop, fd);
    if (r < 0)
        return r;
    int known = (W(w)->flags & ASP__F_KNOWN) ? ASP__EV_KNOWN : 0;
    r = loop->be->set(loop, fd, 0, events | known);
    if (r < 0)
        return r;
    loop->fdtab[fd] = w;
    W(w)->kernel = events;
    W(w)->events = events;
    W(w)->since = loop->polls;
    W(w)->flags |= ASP__F_ACTIVE;
    if (!(W(w)->flags & ASP__F_UNREF))
        loop->nref++;
    asp__embed_fd_changed(loop, fd, events);
    return 0;
}

/* Stops w: backend interest removed now (before the caller closes the
 * fd, and so is a host loop's, see embed.c); pending events of this
 * dispatch no longer find it. */
int asp_io_stop(asp_io *w)
{
    if (!w)
        return -EINVAL;
    if (!(W(w)->flags & ASP__F_ACTIVE))
        return 0;

    asp_loop *loop = W(w)->loop;
    int fd = W(w)->fd;

    /* A failing delete (the fd was closed behind our back) leaves nothing
     * to undo, so the result is not reported. */
    if (!loop->inherited)
        (void)loop->be->set(loop, fd, W(w)->kernel, 0);
    loop->fdtab[fd] = NULL;
    asp__embed_fd_changed(loop, fd, 0);
    W(w)->kernel = 0;
    W(w)->events = 0;
    W(w)->flags &= ~ASP__F_ACTIVE;
    if (!(W(w)->flags & ASP__F_UNREF))
        loop->nref--;
    return 0;
}

/* Marks w as watching one of the library's own fds. */
void asp__io_known(asp_io *w)
{
    W(w)->flags |= ASP__F_KNOWN;
}

/* The fd w watches. */
int asp_io_fd(const asp_io *w)
{
    if (!w || !(W(w)->flags & ASP__F_INIT))
        return -EINVAL;
    return W(w)->fd;
}

/* Non-zero while started. */
int asp_io_active(const asp_io *w)
{
    return w && (W(w)->flags & ASP__F_ACTIVE) != 0;
}

/* Makes w count for loop liveness again. */
void asp_io_ref(asp_io *w)
{
    if (!w || !(W(w)->flags & ASP__F_UNREF))
        return;
    W(w)->flags &= ~ASP__F_UNREF;
    if (W(w)->flags & ASP__F_ACTIVE)
        W(w)->loop->nref++;
}

/* Makes w not count for loop liveness. */
void asp_io_unref(asp_io *w)
{
    if (!w || (W(w)->flags & ASP__F_UNREF))
        return;
    W(w)->flags |= ASP__F_UNREF;
    if (W(w)->flags & ASP__F_ACTIVE)
        W(w)->loop->nref--;
}

/* Delivers the events collected by the last backend poll, to watchers
 * started before it. */
void asp__io_dispatch(asp_loop *loop)
{
    uint64_t poll = ++loop->polls;
    for (loop->fired_pos = 0; loop->fired_pos < loop->nfired;
         loop->fired_pos++) {
        asp__event ev = loop->fired[loop->fired_pos];
        if (ev.mask & ASP__EV_PROC) {
            asp__children_pid_event(loop, ev.pid);
            continue;
        }
        if (ev.fd < 0)
            continue;
        if ((size_t)ev.fd >= loop->fdcap)
            continue;
        asp_io *w = loop->fdtab[ev.fd];
        if (!w || W(w)->since >= poll)
            continue;
        int ready = ev.mask & W(w)->events;
        if (ev.mask & ASP__EV_ERR)
            ready = W(w)->events;
        if (ready)
            W(w)->cb(w, ready, w->data);
    }
    loop->nfired = 0;
    loop->fired_pos = 0;
}
