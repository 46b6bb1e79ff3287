/*
 * uv_jobs.c - the libuv peer's jobs mode (see jobs.h): uv_spawn with
 * stdout and stderr on UV_CREATE_PIPE, both read with uv_read_start into
 * a buffer the job slot keeps, the exit from the exit callback; a job is
 * over when its two pipes and its process handle are closed, and the
 * next one starts in its slot.
 */
#define _GNU_SOURCE /* uv.h needs the POSIX thread types */
#include "jobs.h"
#include "uv_peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct uv_jobs;

/* One job slot: the handles of the running job and its captures. */
struct uv_slot {
    struct uv_jobs *run;
    uv_process_t proc;
    uv_pipe_t pipe[2];
    char *buf[2];
    size_t len[2], cap[2];
    int64_t status;
    int open; /* handles not closed yet */
};

/* The whole run. */
struct uv_jobs {
    const struct bench_args *a;
    struct pat pat;
    uv_loop_t *loop;
    long started, done;
};

static void job_start(struct uv_slot *s);

/* The stream of the pipe h (0 stdout, 1 stderr) within its slot. */
static int which(const struct uv_slot *s, const uv_handle_t *h)
{
    return h == (const uv_handle_t *)&s->pipe[1];
}

/* Hands libuv the free tail of the capture, grown when under 4 KiB. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct uv_slot *s = h->data;
    int i = which(s, h);
    (void)suggested;
    if (s->cap[i] - s->len[i] < 4096) {
        size_t ncap = s->cap[i] ? s->cap[i] * 2 : 4096;
        char *nb = realloc(s->buf[i], ncap);
        if (!nb)
            bench_die("realloc", ENOMEM);
        s->buf[i] = nb;
        s->cap[i] = ncap;
    }
    *b = uv_buf_init(s->buf[i] + s->len[i], (unsigned)(s->cap[i] - s->len[i]));
}

/* A handle of the slot closed: at the last one the job is over. */
static void on_close(uv_handle_t *h)
{
    struct uv_slot *s = h->data;
    if (--s->open > 0)
        return;
    struct uv_jobs *r = s->run;
    if (s->status != 0)
        bench_mismatch("libuv: a job did not exit 0", (uint64_t)r->done);
    jobs_check(r->a, &r->pat, s->buf[0], s->len[0], s->buf[1], s->len[1],
               r->done, "libuv");
    r->done++;
    if (r->started < r->a->count)
        job_start(s);
}

/* Captures a chunk; closes the pipe at EOF. */
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct uv_slot *s = st->data;
    (void)b;
    if (n < 0) {
        if (n != UV_EOF)
            bench_die("uv read", (int)-n);
        uv_close((uv_handle_t *)st, on_close);
        return;
    }
    s->len[which(s, (uv_handle_t *)st)] += (size_t)n;
}

/* Records the exit and closes the process handle. */
static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct uv_slot *s = p->data;
    s->status = sig ? -sig : status;
    uv_close((uv_handle_t *)p, on_close);
}

/* Starts the next job in slot s. */
static void job_start(struct uv_slot *s)
{
    struct uv_jobs *r = s->run;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(r->loop, &s->pipe[i], 0);
        s->pipe[i].data = s;
        s->len[i] = 0;
        stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        stdio[i + 1].data.stream = (uv_stream_t *)&s->pipe[i];
    }
    char **argv = bench_job_argv(r->a);
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = argv[0];
    o.args = argv;
    o.exit_cb = on_exit_cb;
    o.stdio_count = 3;
    o.stdio = stdio;
    s->proc.data = s;
    s->open = 3;
    int err = uv_spawn(r->loop, &s->proc, &o);
    if (err != 0)
        bench_die("uv_spawn", -err);
    for (int i = 0; i < 2; i++) {
        err = uv_read_start((uv_stream_t *)&s->pipe[i], on_alloc, on_read);
        if (err != 0)
            bench_die("uv_read_start", -err);
    }
    r->started++;
}

/* a->count jobs, a->conc at a time. */
void uv_jobs(const struct bench_args *a)
{
    struct uv_jobs r;
    memset(&r, 0, sizeof r);
    r.a = a;
    if (pat_init(&r.pat, PAT_BYTES, (size_t)a->size) != 0)
        bench_die("pattern", ENOMEM);
    uv_loop_t loop;
    uv_loop_init(&loop);
    r.loop = &loop;
    long conc = a->conc < a->count ? a->conc : a->count;
    struct uv_slot *slots = calloc((size_t)conc, sizeof *slots);
    if (!slots)
        bench_die("calloc", ENOMEM);
    double cpu0 = bench_cpu_us();
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < conc; i++) {
        slots[i].run = &r;
        job_start(&slots[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    double cpu = bench_cpu_us() - cpu0;
    if (r.done != a->count)
        bench_mismatch("libuv: jobs finished", (uint64_t)r.done);
    jobs_report(a, secs, cpu);
    uv_loop_close(&loop);
    for (long i = 0; i < conc; i++) {
        free(slots[i].buf[0]);
        free(slots[i].buf[1]);
    }
    free(slots);
    pat_free(&r.pat);
}
