/*
 * wait.c - waiting for a child's exit.
 *
 * A wait is a small state machine: PENDING (linked in the process's wait
 * list, its timer running if it has a timeout) -> DONE, by the exit, the
 * timeout, a cancel, or the handle being freed. The exit completes every
 * pending wait in the order they were started, all with the same status.
 * A wait started after the exit completes from a zero timer in the next
 * iteration, so a callback never runs inside asp_wait_start.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>

/* W_DUE: pending, and present when the exit was seen: completed by that
 * pass. Waits started by its callbacks stay W_PENDING for the next. */
enum { W_IDLE = 0, W_PENDING = 1, W_DONE = 2, W_DUE = 3 };

/* Unlinks w from its process. */
static void wait_unlink(asp_wait *w)
{
    asp_proc *p = w->proc_;
    if (w->prev_)
        w->prev_->next_ = w->next_;
    else
        p->waits_head = w->next_;
    if (w->next_)
        w->next_->prev_ = w->prev_;
    else
        p->waits_tail = w->prev_;
    w->next_ = w->prev_ = NULL;
}

/* Ends w with err and runs its callback (w may be reused or freed in it). */
static void wait_complete(asp_wait *w, int err)
{
    asp_proc *p = w->proc_;
    asp_status st = p->status;
    wait_unlink(w);
    asp_timer_stop(&w->timer_);
    w->state_ = W_DONE;
    asp__proc_hold(p);
    w->cb_(w, err, &st);
    asp__proc_release(p);
}

/* The wait's timer: either the timeout or the deferred completion. */
static void wait_timer_cb(asp_timer *t)
{
    asp_wait *w = (asp_wait *)((char *)t - offsetof(asp_wait, timer_));
    asp_proc *p = w->proc_;
    wait_complete(w, (p->flags & ASP__P_REAPED) ? 0 : -ETIMEDOUT);
}

/* Public: starts an asynchronous wait. */
int asp_wait_start(asp_wait *w, asp_proc *p, int64_t timeout_ms,
                   asp_wait_cb cb, void *data)
{
    if (!w || !p || !cb || (p->flags & ASP__P_FREED) ||
        (timeout_ms < 0 && timeout_ms != ASP_FOREVER))
        return -EINVAL;
    if ((w->state_ == W_PENDING || w->state_ == W_DUE) && w->proc_)
        return -EBUSY;
    memset(w, 0, sizeof *w);
    w->data = data;
    w->proc_ = p;
    w->cb_ = cb;
    w->state_ = W_PENDING;
    asp_timer_init(p->loop, &w->timer_, wait_timer_cb, w);
    w->prev_ = p->waits_tail;
    if (p->waits_tail)
        p->waits_tail->next_ = w;
    else
        p->waits_head = w;
    p->waits_tail = w;
    if (p->flags & ASP__P_REAPED)
        asp_timer_start(&w->timer_, 0, 0);
    else if (timeout_ms != ASP_FOREVER)
        asp_timer_start(&w->timer_, timeout_ms, 0);
    return 0;
}

/* Public: cancels a pending wait. */
int asp_wait_cancel(asp_wait *w)
{
    if (!w)
        return -EINVAL;
    if ((w->state_ != W_PENDING && w->state_ != W_DUE) || !w->proc_)
        return -EALREADY;
    wait_complete(w, -ECANCELED);
    return 0;
}

/* Completes, with the exit status, every wait pending at the exit. A
 * callback that starts a new wait does not get it completed in this pass
 * (that would loop for ever): the new wait's zero timer does it. */
void asp__waits_complete(asp_proc *p)
{
    asp_wait *w;
    for (w = p->waits_head; w; w = w->next_)
        w->state_ = W_DUE;
    while (!(p->flags & ASP__P_FREED) && (w = p->waits_head) != NULL &&
           w->state_ == W_DUE)
        wait_complete(w, 0);
}

/* Cancels every pending wait (the handle is being freed). */
void asp__waits_cancel(asp_proc *p)
{
    asp_wait *w;
    while ((w = p->waits_head) != NULL)
        wait_complete(w, -ECANCELED);
}

typedef struct {
    int done;
    int err;
    asp_status st;
} sync_wait;

/* Completion of the blocking wait. */
static void sync_wait_cb(asp_wait *w, int err, const asp_status *st)
{
    sync_wait *s = w->data;
    s->done = 1;
    s->err = err;
    s->st = *st;
}

/* Public: blocking wait. */
int asp_proc_wait(asp_proc *p, int64_t timeout_ms, asp_status *st)
{
    if (!p || (p->flags & ASP__P_FREED))
        return -EINVAL;
    if (p->loop->running)
        return -EBUSY;
    sync_wait s = {0};
    asp_wait w;
    memset(&w, 0, sizeof w);
    int r = asp_wait_start(&w, p, timeout_ms, sync_wait_cb, &s);
    if (r < 0)
        return r;
    /* A timeout of 0 on a running child answers without any iteration. */
    r = asp_loop_run_until(p->loop, &s.done);
    if (r < 0 && !s.done)
        asp_wait_cancel(&w);
    if (!s.done)
        return r;
    if (st)
        *st = s.st;
    return s.err;
}
