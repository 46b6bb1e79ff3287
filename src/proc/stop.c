/*
 * stop.c - the timed kill escalation: {signal, grace} steps as data.
 *
 * States: step i sent, its grace running (timer) -> the child is reaped
 * (done) or the grace ends (next step). The last step is always SIGKILL
 * (appended when the caller's list ends otherwise); after it the
 * escalation just waits for the reap, which SIGKILL guarantees.
 *
 * Group mode signals the whole process group the child leads. When the
 * leader is reaped early, the group may still hold grandchildren, so the
 * escalation goes on against the group: every 10 ms it checks whether the
 * group still has members, and when the step's grace ends it sends the
 * next step's signal to the group. It ends once the group is empty or the
 * group has been sent SIGKILL.
 */
#define _GNU_SOURCE
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
    if (o.flags & ~ASP_KILL_GROUP)
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
    st->group = (o.flags & ASP_KILL_GROUP) != 0;
    if (st->group && !(p->flags & ASP__P_LEADER))
        return -EINVAL;
    return 0;
}

/* Ends the escalation and calls back. */
static void stop_finish(asp_proc *p, int err)
{
    asp__stop *s = &p->stop;
    asp_timer_stop(&s->timer);
    s->active = 0;
    asp_status st = p->status;
    asp__proc_hold(p);
    s->cb(p, err, &st, s->data);
    asp__proc_release(p);
}

/* Sends step idx and arms its grace. */
static void stop_step(asp_proc *p, int idx)
{
    asp__stop *s = &p->stop;
    s->idx = idx;
    (void)asp__proc_send(p, s->steps[idx].signal, s->group);
    uint64_t g = (uint64_t)s->steps[idx].grace_ms;
    s->step_end_ns = p->loop->now_ns +
                     (g > UINT64_MAX / 4000000u ? UINT64_MAX / 4 : g * 1000000u);
    if (idx + 1 < s->nsteps)
        asp_timer_start(&s->timer, s->steps[idx].grace_ms, 0);
}

/* Whether the group still has members (the reaped leader is not one). */
static int group_alive(asp_proc *p)
{
    return kill(-p->pid, 0) == 0 || errno == EPERM;
}

/* After the leader's reap, in group mode: poll the group; advance steps at
 * the end of each grace. */
static void group_tick(asp_proc *p)
{
    asp__stop *s = &p->stop;
    if (!group_alive(p)) {
        stop_finish(p, 0);
        return;
    }
    if (p->loop->now_ns >= s->step_end_ns) {
        if (s->idx + 1 >= s->nsteps) {
            stop_finish(p, 0); /* SIGKILL went to the group: done */
            return;
        }
        stop_step(p, s->idx + 1);
        if (s->idx + 1 >= s->nsteps) {
            stop_finish(p, 0);
            return;
        }
    }
    asp_timer_start(&s->timer, GROUP_POLL_MS, 0);
}

/* The escalation timer. */
static void stop_timer_cb(asp_timer *t)
{
    asp_proc *p = (asp_proc *)((char *)t - offsetof(asp_proc, stop.timer));
    asp__stop *s = &p->stop;
    if (p->flags & ASP__P_REAPED) {
        if (s->group && s->idx >= 0)
            group_tick(p);
        else
            stop_finish(p, 0);
        return;
    }
    stop_step(p, s->idx + 1);
}

/* The child was reaped while an escalation ran. */
void asp__stop_reaped(asp_proc *p)
{
    asp__stop *s = &p->stop;
    if (!s->active)
        return;
    if (s->group && s->idx >= 0) {
        asp_timer_stop(&s->timer);
        group_tick(p);
        return;
    }
    stop_finish(p, 0);
}

/* The handle is being freed: the escalation ends with -ECANCELED. */
void asp__stop_cancel(asp_proc *p)
{
    if (p->stop.active)
        stop_finish(p, -ECANCELED);
}

/* Public: starts an escalation. */
int asp_proc_stop_start(asp_proc *p, const asp_kill_opts *kill,
                        asp_stop_cb cb, void *data)
{
    if (!p || !cb || (p->flags & ASP__P_FREED))
        return -EINVAL;
    if (p->stop.active)
        return -EALREADY;
    asp__stop s;
    memset(&s, 0, sizeof s);
    int r = asp__kill_normalise(p, kill, &s);
    if (r < 0)
        return r;
    s.active = 1;
    s.cb = cb;
    s.data = data;
    s.idx = -1;
    p->stop = s;
    asp_timer_init(p->loop, &p->stop.timer, stop_timer_cb, p);
    if (p->flags & ASP__P_REAPED)
        asp_timer_start(&p->stop.timer, 0, 0); /* done, next iteration */
    else
        stop_step(p, 0);
    return 0;
}

typedef struct {
    int done, err;
    asp_status st;
} sync_stop;

/* Completion of the blocking escalation. */
static void sync_stop_cb(asp_proc *p, int err, const asp_status *st,
                         void *data)
{
    sync_stop *s = data;
    (void)p;
    s->done = 1;
    s->err = err;
    s->st = *st;
}

/* Public: blocking escalation. */
int asp_proc_stop(asp_proc *p, const asp_kill_opts *kill, asp_status *st)
{
    if (!p || (p->flags & ASP__P_FREED))
        return -EINVAL;
    if (p->loop->running)
        return -EBUSY;
    sync_stop s = {0};
    int r = asp_proc_stop_start(p, kill, sync_stop_cb, &s);
    if (r < 0)
        return r;
    r = asp_loop_run_until(p->loop, &s.done);
    if (!s.done) {
        /* The loop failed; the escalation cannot go on without it. */
        p->stop.active = 0;
        asp_timer_stop(&p->stop.timer);
        return r;
    }
    if (st)
        *st = s.st;
    return s.err;
}

/* Public: wait up to timeout, then escalate. */
int asp_proc_wait_or_stop(asp_proc *p, int64_t timeout_ms,
                          const asp_kill_opts *kill, asp_status *st)
{
    int r = asp_proc_wait(p, timeout_ms, st);
    if (r != -ETIMEDOUT)
        return r;
    r = asp_proc_stop(p, kill, st);
    return r < 0 ? r : -ETIMEDOUT;
}
