/*
 * communicate.c - communicate() and run().
 *
 * communicate is a state machine over pieces that already exist: stdin is
 * fed by reference from the caller's input and closed once drained (or at
 * once without input; a child that stops reading just ends the feeding);
 * stdout and stderr switch to capture mode, where the stream reads
 * straight into a capture buffer and closes its pipe at EOF; the exit
 * comes from the reap hook. Phases:
 *   RUNNING   until both outputs ended (EOF, or the eof grace cut them)
 *             and the child exited (under a cgroup: the whole tree is
 *             gone) -> done; or the timeout ->
 *   STOPPING  (with ASP_COMM_ESCALATE) the kill escalation runs, against
 *             the child, its group or its tree, also when the child itself
 *             has exited already and only descendants hold the pipes ->
 *   DRAINING  the escalation is over: what the pipes hold now is read and
 *             they are closed (cut) whatever still holds them, so a
 *             timeout bounds the call by the escalation's graces.
 * The exit wins over a timeout due in the same iteration: the timer asks
 * the kernel once more before it declares a timeout -- for the exit, and
 * once the child has exited, for what its pipes hold (EOF included).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

enum comm_phase { COMM_RUNNING = 0, COMM_STOPPING, COMM_DRAINING };

struct asp__comm {
    asp_proc *p;
    asp_comm_opts o;
    asp_comm_cb cb;
    void *data;
    enum comm_phase phase;
    asp__capture cap[2]; /* stdout, stderr */
    int open[2];         /* still being captured */
    int piped[2];
    unsigned flags; /* ASP_RESULT_* */
    int timed_out;
    int feeding; /* stdin holds a chunk referencing o.input */
    asp_timer timer;
};

/* Ends capture mode on the outputs still being read. */
static void release_streams(struct asp__comm *c)
{
    for (int i = 0; i < 2; i++) {
        asp_stream *s = c->p->stdio[i + 1];
        if (c->open[i] && s)
            asp__stream_capture_stop(s);
        c->open[i] = 0;
    }
}

/* Moves the captures into r; -ENOMEM where memory ran out. */
static int take_output(struct asp__comm *c, asp_result *r, int err)
{
    for (int i = 0; i < 2; i++) {
        asp_stream *s = c->p->stdio[i + 1];
        if (c->cap[i].failed || (s && s->u.r.nomem))
            err = err == 0 || err == -ETIMEDOUT ? -ENOMEM : err;
        else if (c->cap[i].cap && c->cap[i].total > c->cap[i].len)
            r->flags |= ASP_RESULT_CAPPED;
        if (!c->piped[i])
            continue;
        size_t len = 0;
        char *d = asp__capture_take(&c->cap[i], &len);
        if (!d && !err)
            err = -ENOMEM;
        if (i == 0) {
            r->out = d;
            r->out_len = len;
        } else {
            r->err = d;
            r->err_len = len;
        }
    }
    asp__capture_free(&c->cap[0]);
    asp__capture_free(&c->cap[1]);
    return err;
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
    if (c->feeding && in && in->phase != ASP__PH_CLOSED)
        asp_stream_close(in);
    r.status = p->status;
    r.flags = c->flags;
    err = take_output(c, &r, err);
    asp_comm_cb cb = c->cb;
    void *data = c->data;
    asp__free(c);
    asp__proc_hold(p);
    cb(p, err, &r, data);
    asp__proc_release(p);
}

/* Whether everything communicate waits for is over: both outputs ended
 * and the child exited -- under a cgroup, the whole tree gone (a member
 * may still write; no eof-grace guess is needed there), unless the
 * escalation after a timeout is over (then the call ends regardless). */
static int comm_ready(const struct asp__comm *c)
{
    const asp_proc *p = c->p;
    if (c->open[0] || c->open[1] || p->phase == ASP__PP_RUNNING)
        return 0;
    return c->phase == COMM_DRAINING || p->tree == ASP__TREE_EMPTY ||
           p->contain->id != ASP_CONTAIN_CGROUP;
}

/* Completes when everything is over. */
static void comm_check(struct asp__comm *c)
{
    if (comm_ready(c))
        comm_finish(c, c->timed_out ? -ETIMEDOUT : 0);
}

/* An output stream's capture ended (EOF, cut or close). */
static void capture_done(asp_stream *s, void *arg)
{
    struct asp__comm *c = arg;
    int i = c->p->stdio[1] == s ? 0 : 1;
    c->open[i] = 0;
    if (s->phase == ASP__PH_CUT)
        c->flags |= ASP_RESULT_CUT;
    comm_check(c);
}

/* The child exited. */
void asp__comm_reaped(asp_proc *p)
{
    if (p->comm && p->comm->phase == COMM_RUNNING)
        comm_check(p->comm);
}

/* The handle is being freed: complete with what there is. */
void asp__comm_cancel(asp_proc *p)
{
    if (p->comm)
        comm_finish(p->comm, -ECANCELED);
}

/* DRAINING: the outputs give what they hold now and are closed. */
static void comm_drain(struct asp__comm *c)
{
    asp_proc *p = c->p;
    c->phase = COMM_DRAINING;
    asp__proc_hold(p);
    for (int i = 0; i < 2 && !p->freed && p->comm == c; i++)
        if (c->open[i] && p->stdio[i + 1])
            asp__stream_cut_now(p->stdio[i + 1]);
    if (!asp__proc_release(p) && p->comm == c)
        comm_check(c);
}

/* The escalation after a timeout ended (the child has exited). */
static void comm_stop_cb(asp_proc *p, int err, const asp_status *st, void *data)
{
    (void)err;
    (void)st;
    if (p->comm == data)
        comm_drain(data);
}

/* The timeout: the exit wins if it is already there; else a timeout,
 * ended at once (no escalation asked) or through the escalation. */
static void comm_timeout(struct asp__comm *c)
{
    asp_proc *p = c->p;
    c->timed_out = 1;
    c->flags |= ASP_RESULT_TIMEOUT;
    if (!(c->o.flags & ASP_COMM_ESCALATE)) {
        comm_finish(c, -ETIMEDOUT);
        return;
    }
    c->phase = COMM_STOPPING;
    int running = p->phase == ASP__PP_RUNNING;
    int r = asp_proc_stop_start(p, &c->o.kill, comm_stop_cb, c);
    if (r == 0 && running)
        c->flags |= ASP_RESULT_KILLED;
    if (r == -EALREADY) {
        /* The caller's own escalation runs: it kills too. */
        c->flags |= ASP_RESULT_KILLED;
        c->phase = COMM_RUNNING; /* the reap (or the grace) ends it */
    } else if (r < 0) {
        comm_drain(c);
    }
}

/* The timer: the timeout -- or, started with 0 by asp_communicate_start,
 * everything was over before communicate began. */
static void comm_timer_cb(asp_timer *t, void *data)
{
    struct asp__comm *c = data;
    asp_proc *p = c->p;
    (void)t;
    asp__proc_hold(p);
    asp__proc_poll(p); /* the exit wins: this may complete c */
    /* So do the pipes of an exited child: their last bytes and EOF may be
     * there, not yet reported by the poll (timers run first). */
    for (int i = 0; i < 2 && p->comm == c && p->phase != ASP__PP_RUNNING; i++)
        if (c->open[i] && p->stdio[i + 1])
            asp__stream_read_now(p->stdio[i + 1]);
    if (!asp__proc_release(p) && p->comm == c) {
        if (comm_ready(c))
            comm_check(c);
        else
            comm_timeout(c);
    }
}

/* stdin drained (or broken): close it so the child sees EOF. */
static void comm_drain_cb(asp_stream *s, int err, void *data)
{
    (void)err;
    (void)data;
    if (s->phase != ASP__PH_CLOSED)
        asp_stream_close(s);
}

/* Checks options and the state of p's streams. */
static int comm_validate(asp_proc *p, const asp_comm_opts *o)
{
    if ((o->timeout_ms < 0 && o->timeout_ms != ASP_FOREVER) ||
        (o->flags & ~ASP_COMM_ESCALATE) || (o->input_len && !o->input))
        return -EINVAL;
    if (o->flags & ASP_COMM_ESCALATE) {
        asp__stop tmp;
        memset(&tmp, 0, sizeof tmp);
        int r = asp__kill_normalise(p, &o->kill, &tmp);
        if (r < 0)
            return r;
    }
    asp_stream *in = p->stdio[0];
    if (o->input_len && (!in || in->phase == ASP__PH_CLOSED))
        return -EINVAL;
    if (p->comm || (in && in->u.w.drain_cb))
        return -EBUSY;
    for (int i = 1; i < 3; i++) {
        asp_stream *s = p->stdio[i];
        if (s && (s->u.r.req || s->u.r.mode != ASP__MODE_BUFFER))
            return -EBUSY;
    }
    return 0;
}

/* Starts the captures; what is buffered already is part of the result. */
static void start_captures(struct asp__comm *c)
{
    asp_proc *p = c->p;
    for (int i = 0; i < 2; i++) {
        asp_stream *s = p->stdio[i + 1];
        c->cap[i].cap = c->o.cap;
        if (!s)
            continue;
        c->piped[i] = 1;
        if (s->phase == ASP__PH_CLOSED)
            continue;
        c->open[i] = 1;
        asp__stream_capture(s, &c->cap[i], capture_done, c);
    }
}

/* Feeds the input (stdin then closes once drained) or closes stdin. */
static void start_input(struct asp__comm *c, asp__wchunk *chunk)
{
    asp_stream *in = c->p->stdio[0];
    if (chunk) {
        c->feeding = 1;
        asp__writer_push(in, chunk);
        asp_stream_drain_start(in, comm_drain_cb, c);
    } else if (in && in->phase != ASP__PH_CLOSED) {
        asp_stream_close(in);
    }
}

/* Public: asynchronous communicate. */
int asp_communicate_start(asp_proc *p, const asp_comm_opts *opts,
                          asp_comm_cb cb, void *data)
{
    static const asp_comm_opts dflt;
    const asp_comm_opts *o = opts ? opts : &dflt;
    if (!p || !cb || p->freed)
        return -EINVAL;
    int r = comm_validate(p, o);
    if (r < 0)
        return r;
    asp_stream *in = p->stdio[0];
    int feed =
        in && in->phase == ASP__PH_OPEN && !in->u.w.broken && o->input_len;
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
    p->comm = c;
    start_captures(c);
    start_input(c, chunk);
    if (o->timeout_ms > 0)
        asp_timer_start(&c->timer, o->timeout_ms, 0);
    /* Everything may be over already (an exited child, closed streams):
     * complete from a zero timer, never inside this call. */
    if (comm_ready(c))
        asp_timer_start(&c->timer, 0, 0);
    return 0;
}

/* ------------------------------------------------------------ blocking */

typedef struct {
    asp_proc *p;
    const asp_comm_opts *o;
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

static int sync_comm_start(void *ctx)
{
    sync_comm *s = ctx;
    return asp_communicate_start(s->p, s->o, sync_comm_cb, s);
}

/* The loop failed: end communicate; its result is dropped. */
static void sync_comm_cancel(void *ctx)
{
    sync_comm *s = ctx;
    if (s->p->comm)
        comm_finish(s->p->comm, -ECANCELED);
    asp_result_free(s->r);
}

/* Public: blocking communicate. */
int asp_communicate(asp_proc *p, const asp_comm_opts *opts, asp_result *r)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    if (!p || p->freed)
        return -EINVAL;
    sync_comm s = {p, opts, 0, 0, r};
    int e = asp__block(p->loop, sync_comm_start, sync_comm_cancel, &s, &s.done);
    return e < 0 ? e : s.err;
}

/* ----------------------------------------------------------------- run */

/* An asp_run_start in flight: the caller's callback, then the free. */
typedef struct run_op {
    asp_comm_cb cb;
    void *data;
} run_op;

/* communicate ended: tell the caller, then free the process (killing a
 * child a cancelled communicate left behind). */
static void run_comm_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    run_op op = *(run_op *)data;
    asp__free(data);
    op.cb(p, err, r, op.data);
    if (!p->freed)
        asp_proc_free(p, ASP_FREE_KILL);
}

/* The spawn options of a run: the caller's, or stdout and stderr piped
 * (and stdin: a pipe with input, else /dev/null). */
static asp_spawn_opts run_spawn_opts(const asp_spawn_opts *spawn,
                                     const asp_comm_opts *co)
{
    asp_spawn_opts so;
    if (spawn)
        return *spawn;
    memset(&so, 0, sizeof so);
    so.stdio[0].mode = co->input_len ? ASP_STDIO_PIPE : ASP_STDIO_NULL;
    so.stdio[1].mode = ASP_STDIO_PIPE;
    so.stdio[2].mode = ASP_STDIO_PIPE;
    return so;
}

/* asp_run_start; *out (if not NULL) gets the running process. */
static int run_begin(asp_loop *loop, const char *const argv[],
                     const asp_spawn_opts *spawn, const asp_comm_opts *comm,
                     asp_comm_cb cb, void *data, asp_proc **out)
{
    static const asp_comm_opts no_comm;
    if (!loop || !cb)
        return -EINVAL;
    const asp_comm_opts *co = comm ? comm : &no_comm;
    asp_spawn_opts so = run_spawn_opts(spawn, co);
    asp_comm_opts c = *co;
    c.flags |= ASP_COMM_ESCALATE; /* run never leaves a child behind */
    run_op *op = asp__malloc(sizeof *op);
    if (!op)
        return -ENOMEM;
    op->cb = cb;
    op->data = data;
    asp_proc *p = NULL;
    int e = asp_spawn(loop, &p, argv, &so);
    if (e == 0) {
        e = asp_communicate_start(p, &c, run_comm_cb, op);
        if (e < 0)
            asp_proc_free(p, ASP_FREE_KILL);
    }
    if (e < 0)
        asp__free(op);
    else if (out)
        *out = p;
    return e;
}

/* Public: spawn, communicate, free -- asynchronously. */
int asp_run_start(asp_loop *loop, const char *const argv[],
                  const asp_spawn_opts *spawn, const asp_comm_opts *comm,
                  asp_comm_cb cb, void *data)
{
    return run_begin(loop, argv, spawn, comm, cb, data, NULL);
}

typedef struct {
    asp_loop *loop;
    const char *const *argv;
    const asp_spawn_opts *spawn;
    const asp_comm_opts *comm;
    int done, err;
    asp_result *r;
    asp_proc *p;
} sync_run;

/* Completion of the blocking run. */
static void sync_run_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    sync_run *s = data;
    (void)p;
    s->done = 1;
    s->err = err;
    *s->r = *r;
}

static int sync_run_start(void *ctx)
{
    sync_run *s = ctx;
    return run_begin(s->loop, s->argv, s->spawn, s->comm, sync_run_cb, s,
                     &s->p);
}

/* The loop failed: free the process (communicate ends with -ECANCELED,
 * whose result is dropped). */
static void sync_run_cancel(void *ctx)
{
    sync_run *s = ctx;
    asp_proc_free(s->p, ASP_FREE_KILL);
    asp_result_free(s->r);
}

/* Public: spawn, communicate, free. */
int asp_run(asp_loop *loop, const char *const argv[],
            const asp_spawn_opts *spawn, const asp_comm_opts *comm,
            asp_result *r)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    asp_loop *own = NULL;
    if (!loop) {
        int e = asp_loop_new(&own, NULL);
        if (e < 0)
            return e;
        loop = own;
    }
    sync_run s = {loop, argv, spawn, comm, 0, 0, r, NULL};
    int e = asp__block(loop, sync_run_start, sync_run_cancel, &s, &s.done);
    if (own)
        asp_loop_free(own);
    return e < 0 ? e : s.err;
}

/* Public: frees a result's buffers. */
void asp_result_free(asp_result *r)
{
    if (!r)
        return;
    asp__capture_free_data(r->out);
    asp__capture_free_data(r->err);
    memset(r, 0, sizeof *r);
}
