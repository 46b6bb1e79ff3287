/*
 * stop.c - the timed kill escalation: {signal, grace} steps as data.
 *
 * Phases: CHILD (step i sent, its grace running on the timer) -> the
 * child is reaped (done) or the grace ends (next step). The last step is
 * always SIGKILL (appended when the caller's list ends otherwise); after
 * it the escalation just waits for the reap, which SIGKILL guarantees.
 *
 * Group mode signals the whole process group the child leads. When the
 * leader exits early -- before the escalation or during it -- the group
 * may still hold grandchildren, so the escalation goes on against the
 * group (phase GROUP): every 10 ms it checks whether the group still has
 * members, and when the step's grace ends it sends the next step's signal
 * to the group. It ends once the group is empty or the group has been
 * sent SIGKILL; then a leader kept as a zombie to protect the group's id
 * (proc.c) is reaped.
 *
 * wait_or_stop is a wait with a timeout whose expiry starts an
 * escalation.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#define GROUP_POLL_MS 10

/* Fills st->steps from k (NULL or all-zero: TERM, 1 s, KILL). */
int asp__kill_normalise(asp_proc *p, const asp_kill_opts *k, asp__stop *st)
{
    static const asp_kill_opts dflt = {
        {{SIGTERM, 1000}, {SIGKILL, 0}, {0, 0}, {0, 0}}, 0};
    asp_kill_opts o = k ? *k : dflt;
    if (o.steps[0].signal == 0)
        memcpy(o.steps, dflt.steps, sizeof o.steps);
    if (o.flags & ~(ASP_KILL_GROUP | ASP_KILL_TREE))
        return -EINVAL;
    int n = 0;
    while (n < ASP_KILL_STEPS_MAX && o.steps[n].signal != 0) {
        if (o.steps[n].signal < 0 || o.steps[n].signal >= NSIG ||
            o.steps[n].grace_ms < 0)
            return -EINVAL;
        st->steps[n] = o.steps[n];
        n++;
    }
    if (st->steps[n - 1].signal != SIGKILL) {
        st->steps[n].signal = SIGKILL;
        st->steps[n].grace_ms = 0;
        n++;
    }
    st->nsteps = n;
    st->target = (o.flags & ASP_KILL_TREE)    ? ASP__AT_TREE
                 : (o.flags & ASP_KILL_GROUP) ? ASP__AT_GROUP
                                              : ASP__AT_CHILD;
    if (st->target == ASP__AT_GROUP && !p->leader)
        return -EINVAL;
    if (st->target == ASP__AT_TREE && p->contain->id == ASP_CONTAIN_NONE)
        return -EINVAL;
    return 0;
}

/* Ends the escalation and calls back (if there is a callback). A group
 * or tree found empty here is so for everything else too. */
static void stop_finish(asp_proc *p, int err)
{
    asp__stop *s = &p->stop;
    asp_timer_stop(&s->timer);
    int after_exit = s->phase == ASP__STOP_GROUP;
    s->phase = ASP__STOP_IDLE;
    if (after_exit) {
        asp__proc_reap_held(p);
        if (p->tree == ASP__TREE_LIVE && !p->contain->alive(p))
            asp__tree_empty(p);
    }
    if (!s->cb)
        return;
    asp_status st = p->status;
    asp__proc_hold(p);
    s->cb(p, err, &st, s->data);
    asp__proc_release(p);
}

/* Sends sig to the escalation's target. */
static void stop_send(asp_proc *p, int sig)
{
    switch (p->stop.target) {
    case ASP__AT_TREE: (void)p->contain->signal(p, sig); break;
    case ASP__AT_GROUP: (void)asp__proc_send(p, sig, 1); break;
    default: (void)asp__proc_send(p, sig, 0); break;
    }
}

/* Whether the target group or tree still has members. */
static int target_alive(asp_proc *p)
{
    if (p->stop.target == ASP__AT_TREE)
        return p->contain->alive(p);
    return asp__group_alive(p);
}

/* Sends step idx and arms its grace. */
static void stop_step(asp_proc *p, int idx)
{
    asp__stop *s = &p->stop;
    s->idx = idx;
    stop_send(p, s->steps[idx].signal);
    s->step_end_ns = p->loop->now_ns + asp__ms_to_ns(s->steps[idx].grace_ms);
    if (idx + 1 < s->nsteps)
        asp_timer_start(&s->timer, s->steps[idx].grace_ms, 0);
}

/* After the child's exit, against a group or tree: poll it; advance
 * steps at the end of each grace. */
static void group_tick(asp_proc *p)
{
    asp__stop *s = &p->stop;
    if (!target_alive(p) || s->idx + 1 >= s->nsteps) {
        stop_finish(p, 0); /* empty, or SIGKILL went to the group: done */
        return;
    }
    if (p->loop->now_ns >= s->step_end_ns) {
        stop_step(p, s->idx + 1);
        if (s->idx + 1 >= s->nsteps) {
            stop_finish(p, 0);
            return;
        }
    }
    asp_timer_start(&s->timer, GROUP_POLL_MS, 0);
}

/* The escalation timer. */
static void stop_timer_cb(asp_timer *t, void *data)
{
    asp_proc *p = data;
    asp__stop *s = &p->stop;
    (void)t;
    if (s->phase == ASP__STOP_GROUP)
        group_tick(p);
    else if (p->phase != ASP__PP_RUNNING)
        stop_finish(p, 0);
    else
        stop_step(p, s->idx + 1);
}

/* The child was reaped while an escalation ran. */
void asp__stop_reaped(asp_proc *p)
{
    asp__stop *s = &p->stop;
    if (s->phase != ASP__STOP_CHILD)
        return;
    if (s->target != ASP__AT_CHILD && s->idx >= 0) {
        s->phase = ASP__STOP_GROUP;
        asp_timer_stop(&s->timer);
        group_tick(p);
        return;
    }
    stop_finish(p, 0);
}

/* The handle is being freed: the escalation ends with -ECANCELED. */
void asp__stop_cancel(asp_proc *p)
{
    if (p->stop.phase != ASP__STOP_IDLE)
        stop_finish(p, -ECANCELED);
}

/* Public: starts an escalation. */
int asp_proc_stop_start(asp_proc *p, const asp_kill_opts *kill, asp_stop_cb cb,
                        void *data)
{
    if (!p || p->freed)
        return -EINVAL;
    if (p->stop.phase != ASP__STOP_IDLE)
        return -EALREADY;
    asp__stop s;
    memset(&s, 0, sizeof s);
    int r = asp__kill_normalise(p, kill, &s);
    if (r < 0)
        return r;
    s.phase = ASP__STOP_CHILD;
    s.cb = cb;
    s.data = data;
    s.idx = -1;
    p->stop = s;
    asp_timer_init(p->loop, &p->stop.timer, stop_timer_cb, p);
    if (p->phase == ASP__PP_RUNNING) {
        stop_step(p, 0);
        return 0;
    }
    /* Exited already: the group, if it has members, gets every step (from
     * the next iteration); else done in the next iteration. */
    if (p->stop.target != ASP__AT_CHILD && target_alive(p)) {
        p->stop.phase = ASP__STOP_GROUP;
        p->stop.step_end_ns = p->loop->now_ns;
    }
    asp_timer_start(&p->stop.timer, 0, 0);
    return 0;
}

/* Ends an escalation without its callback (a blocking form whose loop
 * failed). */
static void stop_abandon(asp_proc *p)
{
    p->stop.cb = NULL;
    if (p->stop.phase != ASP__STOP_IDLE)
        stop_finish(p, -ECANCELED);
}

typedef struct {
    asp_proc *p;
    const asp_kill_opts *kill;
    int64_t timeout_ms;
    int done, err;
    asp_status st;
} sync_stop;

/* Completion of a blocking escalation (or wait_or_stop). */
static void sync_stop_cb(asp_proc *p, int err, const asp_status *st, void *data)
{
    sync_stop *s = data;
    (void)p;
    s->done = 1;
    s->err = err;
    s->st = *st;
}

static int sync_stop_start(void *ctx)
{
    sync_stop *s = ctx;
    return asp_proc_stop_start(s->p, s->kill, sync_stop_cb, s);
}

static void sync_stop_cancel(void *ctx)
{
    stop_abandon(((sync_stop *)ctx)->p);
}

/* Public: blocking escalation. */
int asp_proc_stop(asp_proc *p, const asp_kill_opts *kill, asp_status *st)
{
    if (!p || p->freed)
        return -EINVAL;
    sync_stop s = {p, kill, 0, 0, 0, {0}};
    int r = asp__block(p->loop, sync_stop_start, sync_stop_cancel, &s, &s.done);
    if (r < 0)
        return r;
    if (st)
        *st = s.st;
    return s.err;
}

/* --------------------------------------------------------- wait_or_stop */

/* An asp_proc_wait_or_stop_start in flight: a wait whose timeout starts
 * an escalation. */
typedef struct wos {
    asp_wait w;
    asp_proc *p;
    asp_kill_opts kill;
    int has_kill;
    asp_stop_cb cb;
    void *data;
} wos;

/* Calls the caller back once and frees o. */
static void wos_finish(wos *o, int err, const asp_status *st)
{
    asp_stop_cb cb = o->cb;
    void *data = o->data;
    asp_proc *p = o->p;
    asp__free(o);
    if (cb)
        cb(p, err, st, data);
}

/* The escalation after the timeout ended. */
static void wos_stop_cb(asp_proc *p, int err, const asp_status *st, void *data)
{
    (void)p;
    wos_finish(data, err ? err : -ETIMEDOUT, st);
}

/* The wait ended: in time, cancelled, or timed out (then escalate). An
 * escalation already running (the caller's own) is waited for. */
static void wos_wait_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    wos *o = data;
    if (err != -ETIMEDOUT) {
        wos_finish(o, err, st);
        return;
    }
    int r = asp_proc_stop_start(o->p, o->has_kill ? &o->kill : NULL,
                                wos_stop_cb, o);
    if (r == -EALREADY)
        r = asp_proc_wait_start(w, o->p, ASP_FOREVER, wos_wait_cb, o);
    if (r < 0)
        wos_finish(o, r, st);
}

/* Starts a wait_or_stop; *out (if not NULL) gets the record. */
static int wos_start(asp_proc *p, int64_t timeout_ms, const asp_kill_opts *kill,
                     asp_stop_cb cb, void *data, wos **out)
{
    if (!p || p->freed)
        return -EINVAL;
    asp__stop check;
    memset(&check, 0, sizeof check);
    int r = asp__kill_normalise(p, kill, &check);
    if (r < 0)
        return r;
    wos *o = asp__calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->p = p;
    o->has_kill = kill != NULL;
    if (kill)
        o->kill = *kill;
    o->cb = cb;
    o->data = data;
    r = asp_proc_wait_start(&o->w, p, timeout_ms, wos_wait_cb, o);
    if (r < 0) {
        asp__free(o);
        return r;
    }
    if (out)
        *out = o;
    return 0;
}

/* Public: wait, then escalate. */
int asp_proc_wait_or_stop_start(asp_proc *p, int64_t timeout_ms,
                                const asp_kill_opts *kill, asp_stop_cb cb,
                                void *data)
{
    return wos_start(p, timeout_ms, kill, cb, data, NULL);
}

typedef struct {
    sync_stop s;
    wos *o;
} sync_wos;

static int sync_wos_start(void *ctx)
{
    sync_wos *w = ctx;
    return wos_start(w->s.p, w->s.timeout_ms, w->s.kill, sync_stop_cb, &w->s,
                     &w->o);
}

/* The loop failed: end whichever half is running (its callback lands in
 * the blocking caller's context, which no longer reads it). */
static void sync_wos_cancel(void *ctx)
{
    sync_wos *w = ctx;
    asp_proc *p = w->s.p;
    if (p->stop.phase != ASP__STOP_IDLE && p->stop.data == w->o)
        stop_finish(p, -ECANCELED);
    else
        asp_wait_cancel(&w->o->w);
}

/* Public: wait, then escalate (blocking). */
int asp_proc_wait_or_stop(asp_proc *p, int64_t timeout_ms,
                          const asp_kill_opts *kill, asp_status *st)
{
    if (!p || p->freed)
        return -EINVAL;
    sync_wos w = {{p, kill, timeout_ms, 0, 0, {0}}, NULL};
    int r = asp__block(p->loop, sync_wos_start, sync_wos_cancel, &w, &w.s.done);
    if (r < 0)
        return r;
    if (st)
        *st = w.s.st;
    return w.s.err;
}
