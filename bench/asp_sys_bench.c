/*
 * asp_sys_bench.c - asproc's spawn rate and timing precision: spawn +
 * wait of /bin/true, the lateness of a 10 ms asp_timer, and the lateness
 * of a timed kill escalation against a child that ignores SIGTERM.
 */
#include "asp_bench.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* a->count times: asp_spawn /bin/true (stdio inherited, as the raw peer)
 * and asp_proc_wait it, optionally from a parent holding a->heap_mib MiB
 * of touched heap. Prints spawns per second. */
void asp_spawn_rate(const struct bench_args *a)
{
    const char *const argv[] = {"/bin/true", NULL};
    asp_loop *loop;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    bench_touch_heap(a->heap_mib);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < a->count; i++) {
        asp_proc *p;
        asp_must(asp_spawn(loop, &p, argv, NULL), "asp_spawn /bin/true");
        asp_reap_ok(p);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    asp_must(asp_loop_free(loop), "asp_loop_free");
    bench_result("spawn", a->variant, (double)a->count / secs, "spawns/s");
}

/* One timer sample in flight: when it was started and whether it fired. */
struct tsample {
    uint64_t start_ns;
    uint64_t fired_ns;
    int done;
};

/* Timer callback: notes the time of firing and ends run_until. */
static void on_timer(asp_timer *t, void *data)
{
    (void)t;
    struct tsample *s = data;
    s->fired_ns = bench_now_ns();
    s->done = 1;
}

/* a->count samples of a 10 ms asp_timer, one after another, printing
 * "SAMPLE timer <variant> <us late>" for each. The loop's cached time is
 * refreshed before each start so the figure is the timer's own lateness,
 * not the age of the cache. */
void asp_timer_late(const struct bench_args *a)
{
    asp_loop *loop;
    asp_timer t;
    struct tsample s;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    asp_must(asp_timer_init(loop, &t, on_timer, &s), "asp_timer_init");
    for (long i = 0; i < a->count; i++) {
        memset(&s, 0, sizeof s);
        asp_loop_update_time(loop);
        s.start_ns = bench_now_ns();
        asp_must(asp_timer_start(&t, 10, 0), "asp_timer_start");
        asp_must(asp_loop_run_until(loop, &s.done), "asp_loop_run_until");
        printf("SAMPLE timer %s %.1f\n", a->variant,
               ((double)(s.fired_ns - s.start_ns) - 10e6) / 1e3);
    }
    fflush(stdout);
    asp_must(asp_loop_free(loop), "asp_loop_free");
}

/* a->count samples of a kill escalation, {SIGTERM, grace 10 ms} then
 * {SIGKILL}, against a writer in --hang mode (it ignores SIGTERM, so the
 * SIGKILL step must run). The clock starts when the writer has said it
 * ignores SIGTERM and stops when asp_proc_stop returns with the child
 * reaped; "SAMPLE escalation <variant> <us>" is that time minus the
 * 10 ms grace: how late the escalation finished. */
void asp_escalation(const struct bench_args *a)
{
    asp_loop *loop;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    asp_spawn_opts o = asp_bench_opts(a);
    asp_kill_opts k;
    memset(&k, 0, sizeof k);
    k.steps[0].signal = SIGTERM;
    k.steps[0].grace_ms = 10;
    k.steps[1].signal = SIGKILL;
    for (long i = 0; i < a->count; i++) {
        asp_proc *p;
        char ready;
        asp_status st;
        asp_must(asp_spawn(loop, &p,
                           (const char *const *)bench_writer_argv(a, 0, 1), &o),
                 "asp_spawn");
        ssize_t n = asp_stream_readexactly(asp_proc_stdout(p), &ready, 1, NULL);
        if (n != 1 || ready != 'R')
            bench_mismatch("asproc: hanging writer did not say ready",
                           (uint64_t)i);
        uint64_t t0 = bench_now_ns();
        asp_must(asp_proc_stop(p, &k, &st), "asp_proc_stop");
        uint64_t t1 = bench_now_ns();
        if (st.kind != ASP_EXIT_SIGNAL || st.signal != SIGKILL)
            bench_mismatch("asproc: child did not end by SIGKILL", (uint64_t)i);
        asp_must(asp_proc_free(p, ASP_FREE_DETACH), "asp_proc_free");
        printf("SAMPLE escalation %s %.1f\n", a->variant,
               ((double)(t1 - t0) - 10e6) / 1e3);
    }
    fflush(stdout);
    asp_must(asp_loop_free(loop), "asp_loop_free");
}
