/*
 * proc_target.c - random sequences of API calls on the processes of one
 * loop: spawn, signals, waits (blocking, async, cancelled), escalations,
 * stdin writes/drains/closes, reads and cancels, communicate (blocking
 * and async), loop iterations and frees in every state, in any order;
 * the streams are pipes, socketpairs or a terminal.
 *
 * Each input byte pair is (op, argument); four process slots. Every call
 * must return 0 or one of the errors its contract lists; callbacks must
 * run at most once per start; at the end every slot is freed, the loop is
 * freed, and then no child, zombie, fd or library allocation may remain.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 4

typedef struct slot {
    asp_proc *p;
    asp_wait w;
    int wait_pending;
    int stop_pending;
    int read_pending;
    int drain_pending;
    int comm_pending;
    char ibuf[64]; /* communicate input: must outlive the call */
} slot;

typedef struct ctx {
    asp_loop *loop;
    slot s[SLOTS];
    const char *child;
    char *why;
    size_t whylen;
    int failed;
} ctx;

static void fail(ctx *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
}

/* Checks that r is 0 or one of the listed negative errnos (0-ended). */
static void expect(ctx *c, const char *call, int r, ...)
{
    if (r >= 0)
        return;
    va_list ap;
    va_start(ap, r);
    int e;
    while ((e = va_arg(ap, int)) != 0)
        if (r == e) {
            va_end(ap);
            return;
        }
    va_end(ap);
    fail(c, "%s returned %d (%s)", call, r, asp_strerror(r));
}

/* ---------------------------------------------------- callbacks */

static void wait_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    (void)w;
    slot *s = data;
    (void)st;
    if (!s->wait_pending)
        abort(); /* a second completion: the harness traps on it */
    s->wait_pending = 0;
    if (err != 0 && err != -ETIMEDOUT && err != -ECANCELED)
        abort();
}

static void stop_cb(asp_proc *p, int err, const asp_status *st, void *data)
{
    slot *s = data;
    (void)p;
    if (!s->stop_pending || (err != 0 && err != -ECANCELED))
        abort();
    if (err == 0 && st->kind == ASP_EXIT_NONE)
        abort(); /* an escalation ends with the child reaped */
    s->stop_pending = 0;
}

static void read_cb(asp_stream *st, int err, const char *buf, size_t len,
                    void *data)
{
    slot *s = data;
    (void)st;
    (void)buf;
    (void)len;
    if (!s->read_pending)
        abort();
    /* readline of "out 70000" (no newline): -EMSGSIZE. */
    if (err != 0 && err != -ECANCELED && err != -EMSGSIZE) {
        fprintf(stderr, "read callback: %d\n", err);
        abort();
    }
    s->read_pending = 0;
}

static void drain_cb(asp_stream *st, int err, void *data)
{
    slot *s = data;
    (void)st;
    if (!s->drain_pending || (err != 0 && err != -EPIPE && err != -ECANCELED))
        abort();
    s->drain_pending = 0;
}

static void comm_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    slot *s = data;
    (void)p;
    if (!s->comm_pending)
        abort();
    if (err != 0 && err != -ETIMEDOUT && err != -ECANCELED && err != -ENOMEM)
        abort();
    s->comm_pending = 0;
    asp_result_free(r);
}

/* ---------------------------------------------------------- ops */

/* Spawns a child into an empty slot; the argument picks its behaviour and
 * which streams are pipes. */
static void op_spawn(ctx *c, slot *s, unsigned a)
{
    if (s->p)
        return;
    static const char *const scripts[][6] = {
        {"exit", "3", NULL},
        {"sleep", "15", NULL},
        {"echo", NULL},
        {"out", "70000", "err", "300", NULL},
        {"ignore-term", "sleep", "30", NULL},
        {"grandchild", "40", "say", "g", NULL},
        {"raise", "6", NULL},
        {"lines", "200", "exit", "1", NULL},
    };
    const char *const *sc = scripts[a % 8];
    const char *argv[8];
    int n = 0;
    argv[n++] = c->child;
    for (int i = 0; sc[i] && n < 7; i++)
        argv[n++] = sc[i];
    argv[n] = NULL;

    asp_spawn_opts o = {0};
    o.stdio[0].mode = (a & 0x08) ? ASP_STDIO_PIPE : ASP_STDIO_NULL;
    o.stdio[1].mode = (a & 0x10) ? ASP_STDIO_PIPE : ASP_STDIO_NULL;
    o.stdio[2].mode = (a & 0x20) ? ASP_STDIO_PIPE : ASP_STDIO_NULL;
    if ((a & 0xc0) == 0xc0) {
        /* Both flags: a terminal instead (stdout on it, stdin and stderr
         * where their bits say). */
        for (int i = 0; i < 3; i++)
            if (i == 1 || o.stdio[i].mode == ASP_STDIO_PIPE)
                o.stdio[i].mode = ASP_STDIO_PTY;
    } else if (a & 0x40) {
        o.flags |= ASP_SPAWN_NEW_PGROUP;
    } else if (a & 0x80) {
        o.flags |= ASP_SPAWN_SOCKETPAIR;
    }
    o.eof_grace_ms = 30;
    int r = asp_spawn(c->loop, &s->p, argv, &o);
    expect(c, "asp_spawn", r, -EMFILE, -EAGAIN, -ENOMEM, 0);
    if (r < 0 && s->p)
        fail(c, "a failed spawn left a handle");
}

static void op_signal(ctx *c, slot *s, unsigned a)
{
    static const int sigs[] = {0,       SIGTERM, SIGKILL, SIGSTOP,
                               SIGCONT, SIGUSR1, -1,      999};
    int r = asp_proc_signal(s->p, sigs[a % 8]);
    if (!s->p)
        expect(c, "asp_proc_signal(NULL)", r == -EINVAL ? 0 : r, 0);
    else if (a % 8 >= 6)
        expect(c, "asp_proc_signal(bad)", r == -EINVAL ? 0 : r, 0);
    else
        expect(c, "asp_proc_signal", r, -ESRCH, 0);
    if (s->p && (a % 8) == 3) /* never leave it stopped for long */
        asp_proc_signal(s->p, SIGCONT);
}

static void op_wait_block(ctx *c, slot *s, unsigned a)
{
    if (!s->p)
        return;
    asp_status st;
    int r = asp_proc_wait(s->p, (int64_t)(a % 25), &st);
    expect(c, "asp_proc_wait", r, -ETIMEDOUT, 0);
    if (r == 0 && st.kind == ASP_EXIT_NONE)
        fail(c, "wait succeeded with no status");
}

static void op_wait_async(ctx *c, slot *s, unsigned a)
{
    if (!s->p)
        return;
    if (s->wait_pending && (a & 1)) {
        int r = asp_wait_cancel(&s->w);
        expect(c, "asp_wait_cancel", r, 0);
        if (s->wait_pending)
            fail(c, "cancel did not complete the wait");
        return;
    }
    s->wait_pending = 1;
    int r = asp_proc_wait_start(&s->w, s->p, (int64_t)(a % 40), wait_cb, s);
    if (r < 0) {
        if (r != -EBUSY)
            fail(c, "asp_wait_start: %d", r);
        /* it was pending: still is */
    }
}

static void op_stop(ctx *c, slot *s, unsigned a)
{
    if (!s->p)
        return;
    asp_kill_opts k = {0};
    k.steps[0].signal = (a & 1) ? SIGTERM : SIGINT;
    k.steps[0].grace_ms = (int64_t)(a % 20);
    if (a & 2)
        k.flags |= ASP_KILL_GROUP; /* valid only for a group leader */
    if (a & 4) {
        int was = s->stop_pending;
        s->stop_pending = 1;
        int r = asp_proc_stop_start(s->p, &k, stop_cb, s);
        expect(c, "asp_proc_stop_start", r, -EALREADY, -EINVAL, 0);
        if (r < 0)
            s->stop_pending = was;
    } else if (!s->stop_pending) {
        asp_status st;
        int r = asp_proc_stop(s->p, &k, &st);
        expect(c, "asp_proc_stop", r, -EINVAL, -EALREADY, 0);
        if (r == 0 && st.kind == ASP_EXIT_NONE)
            fail(c, "stop returned with the child running");
    }
}

static void op_write(ctx *c, slot *s, unsigned a)
{
    asp_stream *in = s->p ? asp_proc_stdin(s->p) : NULL;
    if (!in)
        return;
    static char big[100000];
    if (a & 1) {
        int r = asp_stream_write(in, big, (a & 2) ? sizeof big : 5);
        expect(c, "asp_stream_write", r, -EPIPE, -EBADF, 0);
    } else if (a & 2) {
        int r = asp_stream_close(in);
        expect(c, "asp_stream_close", r, -EBADF, 0);
    } else if (!s->drain_pending) {
        s->drain_pending = 1;
        int r = asp_stream_drain_start(in, drain_cb, s);
        expect(c, "asp_stream_drain", r, -EPIPE, -EBADF, -EBUSY, 0);
        if (r < 0)
            s->drain_pending = 0;
    }
}

static void op_read(ctx *c, slot *s, unsigned a)
{
    asp_stream *out =
        s->p ? ((a & 1) ? asp_proc_stderr(s->p) : asp_proc_stdout(s->p)) : NULL;
    if (!out)
        return;
    if (a & 2) {
        int r = asp_stream_read_cancel(out);
        expect(c, "asp_stream_read_cancel", r, -EALREADY, 0);
        if (r == 0)
            s->read_pending = 0;
        return;
    }
    if (s->read_pending)
        return;
    s->read_pending = 1;
    int r = (a & 4) ? asp_stream_readline_start(out, 0, read_cb, s)
                    : asp_stream_read_start(out, (size_t)a + 1, read_cb, s);
    expect(c, "asp_stream_read", r, -EBUSY, -EBADF, 0);
    if (r < 0)
        s->read_pending = 0;
}

static void op_comm(ctx *c, slot *s, unsigned a)
{
    if (!s->p)
        return;
    asp_comm_opts co = {0};
    co.timeout_ms = (int64_t)(a % 30) + 1;
    if (a & 1)
        co.flags |= ASP_COMM_ESCALATE;
    if (a & 2)
        co.cap = 100;
    if ((a & 4) && asp_proc_stdin(s->p)) {
        memset(s->ibuf, 'i', sizeof s->ibuf);
        co.input = s->ibuf;
        co.input_len = sizeof s->ibuf;
    }
    if ((a & 8) && !s->comm_pending) {
        s->comm_pending = 1;
        int r = asp_communicate_start(s->p, &co, comm_cb, s);
        expect(c, "asp_communicate_start", r, -EBUSY, -EINVAL, 0);
        if (r < 0)
            s->comm_pending = 0;
        if (r == -EINVAL && !(a & 4))
            fail(c, "communicate_start refused valid options");
    } else if (!s->comm_pending) {
        asp_result res;
        int r = asp_communicate(s->p, &co, &res);
        expect(c, "asp_communicate", r, -ETIMEDOUT, -EBUSY, -EINVAL, -ENOMEM,
               0);
        if (r == 0 || r == -ETIMEDOUT) {
            if ((a & 2) && (res.out_len > 100 || res.err_len > 100))
                fail(c, "cap 100 exceeded: %zu/%zu", res.out_len, res.err_len);
            asp_result_free(&res);
        }
    }
}

static void tick_cb(asp_timer *t, void *data)
{
    (void)data;
    (void)t;
}

/* One iteration. A blocking one is bounded by a timer: a live child keeps
 * the loop alive, and one that waits for input would block it forever. */
static void op_run(ctx *c, unsigned a)
{
    asp_timer t;
    asp_timer_init(c->loop, &t, tick_cb, NULL);
    asp_timer_start(&t, (int64_t)(a % 8) + 1, 0);
    int r = asp_loop_run(c->loop, (a & 1) ? ASP_RUN_NOWAIT : ASP_RUN_ONCE);
    asp_timer_stop(&t);
    if (r != 0 && r != 1)
        fail(c, "asp_loop_run returned %d", r);
}

/* Frees a slot; its pending callbacks all run with -ECANCELED first. */
static void op_free(ctx *c, slot *s, unsigned a)
{
    if (!s->p)
        return;
    int r = asp_proc_free(s->p, (a & 1) ? ASP_FREE_KILL : ASP_FREE_DETACH);
    expect(c, "asp_proc_free", r, 0);
    s->p = NULL;
    if (s->wait_pending || s->stop_pending || s->read_pending ||
        s->drain_pending || s->comm_pending)
        fail(c, "free left a callback pending (w%d s%d r%d d%d c%d)",
             s->wait_pending, s->stop_pending, s->read_pending,
             s->drain_pending, s->comm_pending);
}

/* ----------------------------------------------------- checks */

static atomic_long live_blocks;

static void *fz_malloc(size_t n, void *ctx)
{
    (void)ctx;
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}
static void *fz_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return realloc(p, n);
}
static void fz_free(void *p, void *ctx)
{
    (void)ctx;
    atomic_fetch_sub(&live_blocks, 1);
    free(p);
}

/* Open fds of this process. */
static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own fd */
}

/* Children of this process that run the helper child (any state, zombies
 * included: a zombie keeps its name); the first one's /proc stat line
 * goes to desc. Other children (a sanitizer's symbolizer) are not ours. */
static int children(char *desc, size_t dlen)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int self = getpid(), n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/stat", atoi(e->d_name));
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *rp = strrchr(buf, ')');
        char st;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == self &&
            strstr(buf, "(asp_child)")) {
            if (n++ == 0)
                snprintf(desc, dlen, "%.200s", buf);
        }
    }
    closedir(d);
    return n;
}

int fuzz_proc_run(const unsigned char *in, size_t n, const char *child,
                  char *why, size_t whylen)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.child = child;
    c.why = why;
    c.whylen = whylen;
    why[0] = 0;
    if (n > 64)
        n = 64; /* 32 calls: enough to reach every state pair */

    int fds0 = fd_count();
    asp_allocator al = {fz_malloc, fz_realloc, fz_free, NULL};
    atomic_store(&live_blocks, 0);
    if (asp_set_allocator(&al) < 0) {
        snprintf(why, whylen, "asp_set_allocator refused");
        return -1;
    }
    asp_loop_opts lo = {0};
    if (asp_loop_new(&c.loop, &lo) < 0) {
        asp_set_allocator(NULL);
        snprintf(why, whylen, "asp_loop_new failed");
        return -1;
    }
    for (int i = 0; i < SLOTS; i++)
        c.s[i].w.data = &c.s[i];

    for (size_t i = 0; i + 1 < n && !c.failed; i += 2) {
        unsigned op = in[i], a = in[i + 1];
        slot *s = &c.s[op >> 6]; /* top two bits: the slot */
        switch ((op & 63) % 11) {
        case 0: op_spawn(&c, s, a); break;
        case 1: op_signal(&c, s, a); break;
        case 2: op_wait_block(&c, s, a); break;
        case 3: op_wait_async(&c, s, a); break;
        case 4: op_stop(&c, s, a); break;
        case 5: op_write(&c, s, a); break;
        case 6: op_read(&c, s, a); break;
        case 7: op_comm(&c, s, a); break;
        case 8: op_run(&c, a); break;
        case 9: op_free(&c, s, a); break;
        default: op_spawn(&c, s, a); break;
        }
    }
    for (int i = 0; i < SLOTS; i++)
        op_free(&c, &c.s[i], (unsigned)i);
    int r = asp_loop_free(c.loop);
    if (r < 0)
        fail(&c, "asp_loop_free: %d", r);
    if (atomic_load(&live_blocks) != 0)
        fail(&c, "%ld library blocks live after asp_loop_free",
             atomic_load(&live_blocks));
    if (asp_set_allocator(NULL) < 0)
        fail(&c, "the library still holds memory");
    char desc[256] = "";
    int kids = children(desc, sizeof desc);
    if (kids != 0)
        fail(&c, "%d children left after asp_loop_free: %s", kids, desc);
    int fds = fd_count();
    if (fds != fds0)
        fail(&c, "fd count %d, was %d", fds, fds0);
    return c.failed ? -1 : 0;
}
