/*
 * communicate.c - communicate() and run().
 *
 * communicate is a state machine over pieces that already exist: stdin is
 * fed by reference from the caller's input and closed once drained (or at
 * once without input; a child that stops reading just ends the feeding);
 * stdout and stderr switch to "sink" mode, where the stream reads straight
 * into a capture buffer; the exit comes from the reap hook. It completes
 * when both outputs ended (EOF, or the eof grace cut them) and the child
 * was reaped -- or at the timeout, which reports everything collected so
 * far, after an optional kill escalation.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>

struct asp__comm {
    asp_proc *p;
    asp_comm_opts o;
    asp_comm_cb cb;
    void *data;
    asp__capture cap[2]; /* stdout, stderr */
    int open[2];         /* still being read */
    int piped[2];
    unsigned flags;      /* ASP_RESULT_* */
    int timed_out;
    int feeding;         /* stdin holds a chunk referencing o.input */
    asp_timer timer;
};

/* Ends the sink mode of the output streams still being read. */
static void release_streams(struct asp__comm *c)
{
    for (int i = 0; i < 2; i++) {
        asp_stream *s = c->p->stdio[i + 1];
        if (c->open[i] && s && s->req == ASP__R_SINK) {
            s->req = ASP__R_NONE;
            s->sink = NULL;
            asp__stream_update(s);
        }
        c->open[i] = 0;
    }
}

/* Builds the result and calls back; c is freed. */
static void comm_finish(struct asp__comm *c, int err)
{
    asp_proc *p = c->p;
    asp_result r;
    memset(&r, 0, sizeof r);
    asp_timer_stop(&c->timer);
    release_streams(c);
    p->comm = NULL;
    /* The caller's input need only live until now: a stdin still being
     * fed (a timeout) is closed, which drops the chunk that points to it. */
    asp_stream *in = p->stdio[0];
    if (c->feeding && in && !(in->flags & ASP__S_CLOSED))
        asp_stream_close(in);
    r.status = p->status;
    r.flags = c->flags;
    for (int i = 0; i < 2; i++) {
        asp_stream *s = p->stdio[i + 1];
        if (c->cap[i].failed || (s && (s->flags & ASP__S_NOMEM)))
            err = err == 0 || err == -ETIMEDOUT ? -ENOMEM : err;
        else if (c->cap[i].cap && c->cap[i].total > c->cap[i].len)
            r.flags |= ASP_RESULT_CAPPED;
        if (!c->piped[i])
            continue;
        size_t len = 0;
        char *d = asp__capture_take(&c->cap[i], &len);
        if (!d && !err)
            err = -ENOMEM;
        if (i == 0) {
            r.out = d;
            r.out_len = len;
        } else {
            r.err = d;
            r.err_len = len;
        }
    }
    asp__capture_free(&c->cap[0]);
    asp__capture_free(&c->cap[1]);
    asp_comm_cb cb = c->cb;
    void *data = c->data;
    asp__free(c);
    asp__proc_hold(p);
    cb(p, err, &r, data);
    asp__proc_release(p);
}

/* Completes when both outputs ended and the child was reaped. */
static void comm_check(struct asp__comm *c)
{
    if (c->open[0] || c->open[1])
        return;
    if (!(c->p->flags & ASP__P_REAPED))
        return;
    comm_finish(c, c->timed_out ? -ETIMEDOUT : 0);
}

/* An output stream reached EOF (or was cut or closed). */
void asp__comm_stream_done(asp_stream *s)
{
    struct asp__comm *c = s->proc->comm;
    if (!c)
        return;
    int i = s->which - 1;
    c->open[i] = 0;
    if (s->flags & ASP__S_CUT)
        c->flags |= ASP_RESULT_CUT;
    s->sink = NULL;
    comm_check(c);
}

/* The child was reaped. */
void asp__comm_reaped(asp_proc *p)
{
    if (p->comm)
        comm_check(p->comm);
}

/* The handle is being freed: complete with what there is. */
void asp__comm_cancel(asp_proc *p)
{
    if (p->comm)
        comm_finish(p->comm, -ECANCELED);
}

/* The escalation after a timeout finished (the child is reaped). */
static void comm_stop_cb(asp_proc *p, int err, const asp_status *st,
                         void *data)
{
    (void)p;
    (void)err;
    (void)st;
    (void)data;
    /* Nothing to do: the reap hook completes communicate once the
     * outputs have ended too. */
}

/* The timeout expired -- or, started with 0 by asp_communicate_start,
 * everything was over before communicate began. */
static void comm_timer_cb(asp_timer *t)
{
    struct asp__comm *c = t->data;
    asp_proc *p = c->p;
    if (!c->open[0] && !c->open[1] && (p->flags & ASP__P_REAPED)) {
        comm_check(c);
        return;
    }
    c->timed_out = 1;
    c->flags |= ASP_RESULT_TIMEOUT;
    if (!(c->o.flags & ASP_COMM_ESCALATE)) {
        comm_finish(c, -ETIMEDOUT);
        return;
    }
    if (p->flags & ASP__P_REAPED) {
        comm_check(c); /* exited meanwhile; outputs still draining */
        return;
    }
    /* -EALREADY: the user's own escalation is running; it kills too. */
    int r = asp_proc_stop_start(p, &c->o.kill, comm_stop_cb, c);
    if (r == 0 || r == -EALREADY)
        c->flags |= ASP_RESULT_KILLED;
}

/* stdin drained (or broken): close it so the child sees EOF. */
static void comm_drain_cb(asp_stream *s, int err, void *data)
{
    (void)err;
    (void)data;
    if (!(s->flags & ASP__S_CLOSED))
        asp_stream_close(s);
}

/* Checks options and the state of p's streams. */
static int comm_validate(asp_proc *p, const asp_comm_opts *o)
{
    if ((o->timeout_ms < 0 && o->timeout_ms != ASP_FOREVER) ||
        (o->flags & ~ASP_COMM_ESCALATE) ||
        (o->input_len && !o->input))
        return -EINVAL;
    if (o->flags & ASP_COMM_ESCALATE) {
        asp__stop tmp;
        memset(&tmp, 0, sizeof tmp);
        int r = asp__kill_normalise(p, &o->kill, &tmp);
        if (r < 0)
            return r;
    }
    asp_stream *in = p->stdio[0];
    if (o->input_len && (!in || (in->flags & ASP__S_CLOSED)))
        return -EINVAL;
    if (p->comm)
        return -EBUSY;
    if (in && in->drain_cb)
        return -EBUSY;
    for (int i = 1; i < 3; i++)
        if (p->stdio[i] && p->stdio[i]->req != ASP__R_NONE)
            return -EBUSY;
    return 0;
}

/* Public: asynchronous communicate. */
int asp_communicate_start(asp_proc *p, const asp_comm_opts *opts,
                          asp_comm_cb cb, void *data)
{
    static const asp_comm_opts dflt;
    const asp_comm_opts *o = opts ? opts : &dflt;
    if (!p || !cb || (p->flags & ASP__P_FREED))
        return -EINVAL;
    int r = comm_validate(p, o);
    if (r < 0)
        return r;
    asp_stream *in = p->stdio[0];
    int feed = in && !(in->flags & (ASP__S_CLOSED | ASP__S_WERR)) &&
               o->input_len;
    /* Everything that can fail is allocated before any state changes. */
    asp__wchunk *chunk = feed ? asp__wchunk_ref(o->input, o->input_len) : NULL;
    struct asp__comm *c = asp__calloc(1, sizeof *c);
    if (!c || (feed && !chunk)) {
        asp__free(c);
        asp__free(chunk);
        return -ENOMEM;
    }
    c->p = p;
    c->o = *o;
    c->cb = cb;
    c->data = data;
    asp_timer_init(p->loop, &c->timer, comm_timer_cb, c);

    /* Outputs first: move what is buffered, then read into the capture. */
    for (int i = 0; i < 2; i++) {
        asp_stream *s = p->stdio[i + 1];
        c->cap[i].cap = o->cap;
        if (!s)
            continue;
        c->piped[i] = 1;
        size_t a = s->end - s->start;
        if (a)
            asp__capture_add(&c->cap[i], s->buf + s->start, a);
        s->start = s->end = 0;
    }
    p->comm = c;
    for (int i = 0; i < 2; i++) {
        asp_stream *s = p->stdio[i + 1];
        if (!s)
            continue;
        if (s->flags & (ASP__S_EOF | ASP__S_CLOSED)) {
            if (s->flags & ASP__S_CUT)
                c->flags |= ASP_RESULT_CUT;
            continue;
        }
        c->open[i] = 1;
        s->sink = &c->cap[i];
        s->req = ASP__R_SINK;
        asp__stream_update(s);
    }

    if (feed) {
        c->feeding = 1;
        asp__wstream_push(in, chunk);
        asp_stream_drain(in, comm_drain_cb, c);
    } else if (in && !(in->flags & ASP__S_CLOSED)) {
        asp_stream_close(in);
    }
    if (o->timeout_ms > 0)
        asp_timer_start(&c->timer, o->timeout_ms, 0);
    /* Everything may be over already (a reaped child, closed streams):
     * complete from a zero timer, never inside this call. */
    if (!c->open[0] && !c->open[1] && (p->flags & ASP__P_REAPED))
        asp_timer_start(&c->timer, 0, 0);
    return 0;
}

typedef struct {
    int done, err;
    asp_result *r;
} sync_comm;

/* Completion of the blocking communicate. */
static void sync_comm_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    sync_comm *s = data;
    (void)p;
    s->done = 1;
    s->err = err;
    *s->r = *r;
}

/* Public: blocking communicate. */
int asp_communicate(asp_proc *p, const asp_comm_opts *opts, asp_result *r)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    if (!p || (p->flags & ASP__P_FREED))
        return -EINVAL;
    if (p->loop->running)
        return -EBUSY;
    sync_comm s = {0, 0, r};
    int e = asp_communicate_start(p, opts, sync_comm_cb, &s);
    if (e < 0)
        return e;
    e = asp_loop_run_until(p->loop, &s.done);
    if (!s.done) {
        if (p->comm)
            comm_finish(p->comm, e);
        asp_result_free(r);
        return e;
    }
    return s.err;
}

/* Public: spawn, communicate, free. */
int asp_run(asp_loop *loop, const char *const argv[],
            const asp_spawn_opts *spawn, const asp_comm_opts *comm,
            asp_result *r)
{
    static const asp_comm_opts no_comm;
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    const asp_comm_opts *co = comm ? comm : &no_comm;
    asp_spawn_opts so;
    if (spawn) {
        so = *spawn;
    } else {
        memset(&so, 0, sizeof so);
        so.stdio[0].mode = co->input_len ? ASP_STDIO_PIPE : ASP_STDIO_NULL;
        so.stdio[1].mode = ASP_STDIO_PIPE;
        so.stdio[2].mode = ASP_STDIO_PIPE;
    }
    asp_comm_opts c = *co;
    c.flags |= ASP_COMM_ESCALATE; /* run never leaves a child behind */

    asp_loop *own = NULL;
    if (!loop) {
        int e = asp_loop_new(&own, NULL);
        if (e < 0)
            return e;
        loop = own;
    }
    asp_proc *p = NULL;
    int e = asp_spawn(loop, &p, argv, &so);
    if (e == 0) {
        e = asp_communicate(p, &c, r);
        asp_proc_free(p, ASP_FREE_KILL);
    }
    if (own)
        asp_loop_free(own);
    return e;
}
