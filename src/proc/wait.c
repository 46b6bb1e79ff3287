/*
 * wait.c - waiting for a child's exit.
 *
 * A wait is a small state machine: PENDING (linked in the process's wait
 * list, its timer running if it has a timeout) -> DONE, by the exit, the
 * timeout, a cancel, or the handle being freed. The exit completes every
 * pending wait in the order they were started, all with the same status.
 * A wait started after the exit completes from a zero timer in the next
 * iteration, so a callback never runs inside asp_proc_wait_start.
 *
 * The exit wins over a timeout due in the same iteration: before a wait
 * reports -ETIMEDOUT it asks the kernel once more (a non-blocking waitid),
 * so a child that exited just before the deadline is reaped and reported,
 * whatever order the loop found the timer and the exit event in.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* W_DUE: pending, and present when the exit was seen: completed by that
 * pass. Waits started by its callbacks stay W_PENDING for the next. */
enum { W_IDLE = 0, W_PENDING = 1, W_DONE = 2, W_DUE = 3 };

/* The private part of an asp_wait. */
typedef struct wait_priv {
    asp_timer timer;
    asp__list node; /* p->waits */
    asp_proc *proc;
    asp_wait_cb cb;
    int state;
    unsigned gen; /* completions so far (a callback may restart w) */
} wait_priv;

_Static_assert(sizeof(wait_priv) <= sizeof(((asp_wait *)0)->private_),
               "asp_wait's private room is too small");

#define WP(w) ((wait_priv *)(void *)(w)->private_.p)

/* Ends w with err and runs its callback (w may be reused or freed in it). */
static void wait_complete(asp_wait *w, int err)
{
    wait_priv *wp = WP(w);
    asp_proc *p = wp->proc;
    asp_status st = p->status;
    asp__list_del(&wp->node);
    asp_timer_stop(&wp->timer);
    wp->state = W_DONE;
    wp->gen++;
    asp__proc_hold(p);
    wp->cb(w, err, &st, w->data);
    asp__proc_release(p);
}

/* Whether w is pending on p (its node in p's list), found without
 * touching w: the memory of a completed wait may be gone. */
static int wait_pending_on(const asp_proc *p, asp_wait *w)
{
    const asp__list *mine = &WP(w)->node;
    for (const asp__list *n = p->waits.next; n != &p->waits; n = n->next)
        if (n == mine)
            return 1;
    return 0;
}

/* The wait's timer: the timeout, or the deferred completion. The exit
 * wins: the child is checked first, and its reap completes w with 0. */
static void wait_timer_cb(asp_timer *t, void *data)
{
    asp_wait *w = data;
    asp_proc *p = WP(w)->proc;
    (void)t;
    if (p->phase == ASP__PP_RUNNING) {
        unsigned gen = WP(w)->gen;
        asp__proc_hold(p);
        asp__proc_poll(p);
        /* The reap completed w, whose callback may have freed it (or p),
         * or restarted it: then it is pending again, a new generation. */
        if (asp__proc_release(p) || !wait_pending_on(p, w) ||
            WP(w)->gen != gen)
            return;
    }
    wait_complete(w, p->phase != ASP__PP_RUNNING ? 0 : -ETIMEDOUT);
}

/* Public: starts an asynchronous wait. */
int asp_proc_wait_start(asp_wait *w, asp_proc *p, int64_t timeout_ms,
                        asp_wait_cb cb, void *data)
{
    if (!w || !p || !cb || p->freed ||
        (timeout_ms < 0 && timeout_ms != ASP_FOREVER))
        return -EINVAL;
    wait_priv *wp = WP(w);
    if ((wp->state == W_PENDING || wp->state == W_DUE) && wp->proc)
        return -EBUSY;
    unsigned gen = wp->gen;
    memset(w, 0, sizeof *w);
    w->data = data;
    wp->gen = gen;
    wp->proc = p;
    wp->cb = cb;
    wp->state = W_PENDING;
    asp_timer_init(p->loop, &wp->timer, wait_timer_cb, w);
    asp__list_push(&p->waits, &wp->node);
    if (p->phase != ASP__PP_RUNNING)
        asp_timer_start(&wp->timer, 0, 0);
    else if (timeout_ms != ASP_FOREVER)
        asp_timer_start(&wp->timer, timeout_ms, 0);
    return 0;
}

/* Public: cancels a pending wait. */
int asp_wait_cancel(asp_wait *w)
{
    if (!w)
        return -EINVAL;
    wait_priv *wp = WP(w);
    if ((wp->state != W_PENDING && wp->state != W_DUE) || !wp->proc)
        return -EALREADY;
    wait_complete(w, -ECANCELED);
    return 0;
}

/* The first pending wait of p, or NULL. */
static asp_wait *first_wait(asp_proc *p)
{
    asp__list *n = asp__list_first(&p->waits);
    if (!n)
        return NULL;
    wait_priv *wp = asp__container_of(n, wait_priv, node);
    /* wait_priv sits at the start of the private room, right after the
     * public data pointer. */
    return asp__container_of((void *)wp, asp_wait, private_);
}

/* Completes, with the exit status, every wait pending at the exit. A
 * callback that starts a new wait does not get it completed in this pass
 * (that would loop for ever): the new wait's zero timer does it. */
void asp__waits_complete(asp_proc *p)
{
    for (asp__list *n = p->waits.next; n != &p->waits; n = n->next)
        asp__container_of(n, wait_priv, node)->state = W_DUE;
    asp_wait *w;
    while (!p->freed && (w = first_wait(p)) != NULL &&
           WP(w)->state == W_DUE)
        wait_complete(w, 0);
}

/* Cancels every pending wait (the handle is being freed). */
void asp__waits_cancel(asp_proc *p)
{
    asp_wait *w;
    while ((w = first_wait(p)) != NULL)
        wait_complete(w, -ECANCELED);
}

/* ------------------------------------------------------------ blocking */

typedef struct {
    asp_proc *p;
    int64_t timeout_ms;
    asp_wait w;
    int done;
    int err;
    asp_status st;
} sync_wait;

/* Completion of the blocking wait. */
static void sync_wait_cb(asp_wait *w, int err, const asp_status *st,
                         void *data)
{
    sync_wait *s = data;
    (void)w;
    s->done = 1;
    s->err = err;
    s->st = *st;
}

static int sync_wait_start(void *ctx)
{
    sync_wait *s = ctx;
    return asp_proc_wait_start(&s->w, s->p, s->timeout_ms, sync_wait_cb, s);
}

static void sync_wait_cancel(void *ctx)
{
    sync_wait *s = ctx;
    asp_wait_cancel(&s->w);
}

/* Public: blocking wait. */
int asp_proc_wait(asp_proc *p, int64_t timeout_ms, asp_status *st)
{
    if (!p || p->freed)
        return -EINVAL;
    sync_wait s;
    memset(&s, 0, sizeof s);
    s.p = p;
    s.timeout_ms = timeout_ms;
    int r = asp__block(p->loop, sync_wait_start, sync_wait_cancel, &s,
                       &s.done);
    if (r < 0)
        return r;
    if (st)
        *st = s.st;
    return s.err;
}
