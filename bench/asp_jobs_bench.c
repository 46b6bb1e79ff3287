/*
 * asp_jobs_bench.c - asproc in the build-tool shapes: many short jobs
 * through asp_run_start (what a build tool would call: spawn, capture
 * stdout and stderr, reap, free, in one asynchronous call), and many idle
 * children held at once and released together (see jobs.h).
 */
#include "asp_bench.h"
#include "jobs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One jobs run: how many jobs were started and finished. */
struct jobs_run {
    const struct bench_args *a;
    const struct pat *pat;
    const char *const *argv;
    asp_loop *loop;
    long started, done;
    int finished; /* ends run_until */
};

static void on_job(asp_proc *p, int err, asp_result *r, void *data);

/* Starts the next job. */
static void job_start(struct jobs_run *j)
{
    asp_must(asp_run_start(j->loop, j->argv, NULL, NULL, on_job, j),
             "asp_run_start");
    j->started++;
}

/* A job ended: check it, then start the next one in its place. */
static void on_job(asp_proc *p, int err, asp_result *r, void *data)
{
    struct jobs_run *j = data;
    (void)p;
    asp_must(err, "a job");
    if (r->status.kind != ASP_EXIT_CODE || r->status.code != 0)
        bench_mismatch("asproc: a job did not exit 0", (uint64_t)j->done);
    jobs_check(j->a, j->pat, r->out, r->out_len, r->err, r->err_len, j->done,
               "asproc");
    asp_result_free(r);
    j->done++;
    if (j->started < j->a->count)
        job_start(j);
    else if (j->done == j->a->count)
        j->finished = 1;
}

/* a->count jobs, a->conc at a time, through asp_run_start. */
void asp_jobs(const struct bench_args *a)
{
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)a->size) != 0)
        bench_die("pattern", ENOMEM);
    struct jobs_run j;
    memset(&j, 0, sizeof j);
    j.a = a;
    j.pat = &pat;
    j.argv = (const char *const *)bench_job_argv(a);
    asp_must(asp_loop_new(&j.loop, NULL), "asp_loop_new");
    double cpu0 = bench_cpu_us();
    uint64_t t0 = bench_now_ns();
    while (j.started < a->conc && j.started < a->count)
        job_start(&j);
    asp_must(asp_loop_run_until(j.loop, &j.finished), "asp_loop_run_until");
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    double cpu = bench_cpu_us() - cpu0;
    jobs_report(a, secs, cpu);
    asp_must(asp_loop_free(j.loop), "asp_loop_free");
    pat_free(&pat);
}

/* The children of one many run and how many exits were seen. */
struct herd {
    long n, exited;
    int done; /* ends run_until */
};

/* A child exited: it must have exited 0 (its stdin saw EOF, no byte). */
static void on_exit_seen(asp_wait *w, int err, const asp_status *st, void *data)
{
    struct herd *h = data;
    (void)w;
    asp_must(err, "asp_proc_wait_start");
    if (st->kind != ASP_EXIT_CODE || st->code != 0)
        bench_mismatch("asproc: an idle child did not exit 0",
                       (uint64_t)h->exited);
    if (++h->exited == h->n)
        h->done = 1;
}

/* a->count idle children with a piped stdin (stdout and stderr
 * inherited), each with a pending wait, held at once; then every stdin
 * closed and the loop run until every exit was seen. */
void asp_many(const struct bench_args *a)
{
    long n = a->count;
    asp_loop *loop;
    int lim = asp_raise_fd_limit();
    asp_must(lim < 0 ? lim : 0, "asp_raise_fd_limit");
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    /* The stdin pipe, and a pidfd where the kernel has them (asproc
     * keeps one per child whatever the exit source: signals go through
     * it). */
    if (many_fd_room(a, n, 2) != 0) {
        asp_must(asp_loop_free(loop), "asp_loop_free");
        return;
    }
    asp_proc **procs = calloc((size_t)n, sizeof *procs);
    asp_wait *waits = calloc((size_t)n, sizeof *waits);
    if (!procs || !waits)
        bench_die("calloc", ENOMEM);
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.stdio[0].mode = ASP_STDIO_PIPE;
    const char *const *argv = (const char *const *)bench_idle_argv();
    struct herd h = {.n = n};
    struct many_probe probe;
    many_probe_start(&probe);
    for (long i = 0; i < n; i++) {
        asp_must(asp_spawn(loop, &procs[i], argv, &o), "asp_spawn");
        asp_must(asp_proc_wait_start(&waits[i], procs[i], ASP_FOREVER,
                                     on_exit_seen, &h),
                 "wait_start");
    }
    many_probe_alive(&probe);
    for (long i = 0; i < n; i++)
        asp_must(asp_stream_close(asp_proc_stdin(procs[i])), "close stdin");
    asp_must(asp_loop_run_until(loop, &h.done), "asp_loop_run_until");
    for (long i = 0; i < n; i++)
        asp_must(asp_proc_free(procs[i], ASP_FREE_DETACH), "asp_proc_free");
    many_report(a, &probe, n);
    asp_must(asp_loop_free(loop), "asp_loop_free");
    free(procs);
    free(waits);
}
