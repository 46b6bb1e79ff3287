/*
 * source_kqueue.c - the kqueue child-exit source: EVFILT_PROC/NOTE_EXIT
 * per child, through the kqueue backend (backend_kqueue.c says how exits
 * of children that died before their watch are still delivered). Exits
 * arrive as ASP__EV_PROC events, which the fd dispatch hands to
 * asp__children_pid_event.
 */
#include "source.h"

/* Only the kqueue backend carries EVFILT_PROC. */
static int kq_usable(int be)
{
#ifdef ASP_HAVE_KQUEUE
    return be == ASP_BACKEND_KQUEUE ? 0 : -ENOTSUP;
#else
    (void)be;
    return -ENOTSUP;
#endif
}

/* Starts the exit watch of c's pid. An exit the backend had to queue
 * (the child was gone already) is ready without the kqueue fd showing
 * it: a host loop must be told to run asproc now. */
static int kq_add(asp_loop *loop, asp__child *c)
{
    int r = loop->be->watch_pid(loop, c->pid, 1);
    asp__embed_deadline_moved(loop);
    return r;
}

/* Drops the watch (and an exit queued for it), so that a stale event
 * cannot outlive the pid, which the next spawn may reuse. */
static void kq_del(asp_loop *loop, asp__child *c)
{
    (void)loop->be->watch_pid(loop, c->pid, 0);
    asp__embed_deadline_moved(loop);
}

/* Nothing per loop. */
static void kq_close(asp_loop *loop)
{
    (void)loop;
}

const asp__source_ops asp__source_kqueue = {
    .name = "kqueue",
    .id = ASP_SOURCE_KQUEUE,
    .usable = kq_usable,
    .close = kq_close,
    .add = kq_add,
    .del = kq_del,
};
