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
 *
 * A tree wait (asp_proc_wait_tree_start) completes when the whole tree is
 * gone instead (asp__tree_empty in proc.c); before its timeout it asks
 * the tree once more, as the exit wait asks the kernel.
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
    int tree;  /* waits for the whole tree, not the exit */
    int *done; /* set when w completes: the timer callback learns that its
                  poll completed w, whose callback may have freed it */
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
    if (wp->done)
        *wp->done = 1;
    wp->done = NULL;
    asp__proc_hold(p);
    wp->cb(w, err, &st, w->data);
    asp__proc_release(p);
}

/* Whether what w waits for has happened. */
static int wait_over(const asp_wait *w)
{
    const asp_proc *p = WP(w)->proc;
    if (WP(w)->tree)
        return p->tree == ASP__TREE_EMPTY;
    return p->phase != ASP__PP_RUNNING;
}

/* Asks the kernel (and the tree) once more before a timeout. */
static void recheck(asp_proc *p, int tree)
{
    asp__proc_poll(p);
    if (tree && !p->freed && p->tree == ASP__TREE_LIVE &&
        p->phase != ASP__PP_RUNNING && !p->contain->alive(p))
        asp__tree_empty(p);
}

/* The wait's timer: the timeout, or the deferred completion. The exit
 * (or the tree's end) wins: it is checked first, and completes w. */
static void wait_timer_cb(asp_timer *t, void *data)
{
    asp_wait *w = data;
    asp_proc *p = WP(w)->proc;
    (void)t;
    if (!wait_over(w)) {
        int done = 0;
        WP(w)->done = &done;
        asp__proc_hold(p);
        recheck(p, WP(w)->tree);
        /* That completed w: its callback may have restarted it, freed it
         * (the memory of asp_proc_wait_or_stop's record) or freed p; w is
         * not touched again. */
        if (asp__proc_release(p) || done)
            return;
        WP(w)->done = NULL;
    }
    wait_complete(w, wait_over(w) ? 0 : -ETIMEDOUT);
}

/* Starts an exit (tree 0) or tree wait. */
static int wait_start(asp_wait *w, asp_proc *p, int64_t timeout_ms,
                      asp_wait_cb cb, void *data, int tree)
{
    if (!w || !p || !cb || p->freed ||
        (timeout_ms < 0 && timeout_ms != ASP_FOREVER))
        return -EINVAL;
    wait_priv *wp = WP(w);
    if ((wp->state == W_PENDING || wp->state == W_DUE) && wp->proc)
        return -EBUSY;
    memset(w, 0, sizeof *w);
    w->data = data;
    wp->proc = p;
    wp->cb = cb;
    wp->tree = tree;
    wp->state = W_PENDING;
    asp_timer_init(p->loop, &wp->timer, wait_timer_cb, w);
    asp__list_push(&p->waits, &wp->node);
    if (wait_over(w))
        asp_timer_start(&wp->timer, 0, 0);
    else if (timeout_ms != ASP_FOREVER)
        asp_timer_start(&wp->timer, timeout_ms, 0);
    if (tree)
        asp__tree_poll(p);
    return 0;
}

/* Public: starts an asynchronous wait for the exit. */
int asp_proc_wait_start(asp_wait *w, asp_proc *p, int64_t timeout_ms,
                        asp_wait_cb cb, void *data)
{
    return wait_start(w, p, timeout_ms, cb, data, 0);
}

/* Public: starts an asynchronous wait for the whole tree. */
int asp_proc_wait_tree_start(asp_wait *w, asp_proc *p, int64_t timeout_ms,
                             asp_wait_cb cb, void *data)
{
    return wait_start(w, p, timeout_ms, cb, data, 1);
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

/* The first pending wait of p, or NULL (for the cancel of them all). */
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

/* Completes, with the status, every pending wait of the kind (exit or
 * tree) whose event happened. A callback that starts a new wait does not
 * get it completed in this pass (that would loop for ever): the new
 * wait's zero timer does it. Waits still pending keep their order. */
static void complete_due(asp_proc *p, int tree)
{
    for (asp__list *n = p->waits.next; n != &p->waits; n = n->next) {
        wait_priv *wp = asp__container_of(n, wait_priv, node);
        asp_wait *w = asp__container_of((void *)wp, asp_wait, private_);
        if (wp->tree == tree && wait_over(w))
            wp->state = W_DUE;
    }
    for (;;) {
        asp__list *n = p->waits.next;
        while (n != &p->waits &&
               asp__container_of(n, wait_priv, node)->state != W_DUE)
            n = n->next;
        if (p->freed || n == &p->waits)
            return;
        wait_priv *wp = asp__container_of(n, wait_priv, node);
        wait_complete(asp__container_of((void *)wp, asp_wait, private_), 0);
    }
}

/* The exit: exit waits complete. */
void asp__waits_complete(asp_proc *p)
{
    complete_due(p, 0);
}

/* The tree's end: tree waits complete. */
void asp__waits_tree_complete(asp_proc *p)
{
    complete_due(p, 1);
}

/* Whether a tree wait is pending. */
int asp__waits_tree_pending(asp_proc *p)
{
    for (asp__list *n = p->waits.next; n != &p->waits; n = n->next)
        if (asp__container_of(n, wait_priv, node)->tree)
            return 1;
    return 0;
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
    int tree;
    asp_wait w;
    int done;
    int err;
    asp_status st;
} sync_wait;

/* Completion of the blocking wait. */
static void sync_wait_cb(asp_wait *w, int err, const asp_status *st, void *data)
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
    return wait_start(&s->w, s->p, s->timeout_ms, sync_wait_cb, s, s->tree);
}

static void sync_wait_cancel(void *ctx)
{
    sync_wait *s = ctx;
    asp_wait_cancel(&s->w);
}

/* A blocking wait for the exit or the tree. */
static int block_wait(asp_proc *p, int64_t timeout_ms, asp_status *st, int tree)
{
    if (!p || p->freed)
        return -EINVAL;
    sync_wait s;
    memset(&s, 0, sizeof s);
    s.p = p;
    s.timeout_ms = timeout_ms;
    s.tree = tree;
    int r = asp__block(p->loop, sync_wait_start, sync_wait_cancel, &s, &s.done);
    if (r < 0)
        return r;
    if (st)
        *st = s.st;
    return s.err;
}

/* Public: blocking wait for the exit. */
int asp_proc_wait(asp_proc *p, int64_t timeout_ms, asp_status *st)
{
    return block_wait(p, timeout_ms, st, 0);
}

/* Public: blocking wait for the whole tree. */
int asp_proc_wait_tree(asp_proc *p, int64_t timeout_ms, asp_status *st)
{
    return block_wait(p, timeout_ms, st, 1);
}
