/* embed_common.h - the asproc side of the three embedding examples
 * (embed_glib.c, embed_libuv.c, embed_libevent.c), which differ only in
 * the glue to their host loop. Three children run at once:
 *
 *   upper     `tr a-z A-Z`, fed a line through communicate;
 *   mixed     a shell that writes to stdout and stderr and exits 3;
 *   stubborn  a shell that ignores SIGTERM, says "ready", then sleeps for
 *             30 s. Once it is ready it gets a communicate with a 200 ms
 *             timeout and an escalation: SIGTERM (ignored), 300 ms of
 *             grace, SIGKILL. Both are asproc timers: the host loop must
 *             serve them, or the example hangs.
 *
 * Everything is asynchronous (the _start calls): the host loop runs, and
 * asproc only gets non-blocking runs from the glue. demo_start() starts
 * it all; d->finished(d) is called (from inside an asproc callback) once
 * every child is done, and the host then leaves its loop; demo_end()
 * frees the children and says whether all went as expected. */
#ifndef EMBED_COMMON_H
#define EMBED_COMMON_H

#include <asproc.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct demo demo;
struct demo {
    asp_loop *loop;
    const char *host;
    asp_proc *upper, *mixed, *stubborn;
    int done, bad;
    struct timespec t0;
    char input[64];
    void (*finished)(demo *d); /* the host leaves its loop */
    void *host_data;
};

/* Milliseconds since demo_start. */
static long demo_ms(const demo *d)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)((t.tv_sec - d->t0.tv_sec) * 1000 +
                  (t.tv_nsec - d->t0.tv_nsec) / 1000000);
}

/* Counts a finished child; the last one ends the host loop. */
static void demo_child_done(demo *d)
{
    if (++d->done == 3)
        d->finished(d);
}

/* Prints a communicate result under a name. */
static void demo_print(demo *d, const char *name, int err, const asp_result *r)
{
    printf("[%4ld ms] %-8s returncode %d, err: %s, stdout \"%.*s\"", demo_ms(d),
           name, asp_status_returncode(&r->status),
           err ? asp_strerror(err) : "none",
           (int)strcspn(r->out ? r->out : "", "\n"), r->out ? r->out : "");
    if (r->err && r->err_len)
        printf(", stderr \"%.*s\"", (int)strcspn(r->err, "\n"), r->err);
    if (r->flags & ASP_RESULT_TIMEOUT)
        printf(", timed out");
    if (r->flags & ASP_RESULT_KILLED)
        printf(", stopped by the escalation");
    printf("\n");
}

/* upper: its input, upper-cased. */
static void demo_upper_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    demo *d = data;
    (void)p;
    demo_print(d, "upper", err, r);
    char want[64];
    snprintf(want, sizeof want, "%s", d->input);
    for (char *c = want; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    if (err || asp_status_returncode(&r->status) != 0 || !r->out ||
        strcmp(r->out, want) != 0)
        d->bad++;
    asp_result_free(r);
    demo_child_done(d);
}

/* mixed: both outputs and exit code 3. */
static void demo_mixed_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    demo *d = data;
    (void)p;
    demo_print(d, "mixed", err, r);
    if (err || asp_status_returncode(&r->status) != 3 || !r->out ||
        strcmp(r->out, "to stdout\n") != 0 || !r->err ||
        strcmp(r->err, "to stderr\n") != 0)
        d->bad++;
    asp_result_free(r);
    demo_child_done(d);
}

/* stubborn: timed out, SIGTERM ignored, killed by the SIGKILL step. */
static void demo_stubborn_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    demo *d = data;
    (void)p;
    demo_print(d, "stubborn", err, r);
    if (err != -ETIMEDOUT || !(r->flags & ASP_RESULT_KILLED) ||
        r->status.kind != ASP_EXIT_SIGNAL || r->status.signal != SIGKILL)
        d->bad++;
    asp_result_free(r);
    demo_child_done(d);
}

/* stubborn said "ready": SIGTERM is ignored now; the clock starts. */
static void demo_ready_cb(asp_stream *s, int err, const char *buf, size_t len,
                          void *data)
{
    demo *d = data;
    (void)s;
    printf("[%4ld ms] stubborn said \"%.*s\": communicate, 200 ms, then "
           "SIGTERM, 300 ms, SIGKILL\n",
           demo_ms(d), len ? (int)len - 1 : 0, buf ? buf : "");
    asp_comm_opts o = {0};
    o.timeout_ms = 200;
    o.flags = ASP_COMM_ESCALATE;
    o.kill.steps[0] = (asp_kill_step){SIGTERM, 300};
    o.kill.steps[1] = (asp_kill_step){SIGKILL, 0};
    int e =
        err ? err : asp_communicate_start(d->stubborn, &o, demo_stubborn_cb, d);
    if (e < 0) {
        fprintf(stderr, "stubborn: %s\n", asp_strerror(e));
        d->bad++;
        asp_proc_kill(d->stubborn);
        demo_child_done(d);
    }
}

/* Spawns sh -c script with piped stdout and stderr (and stdin). */
static int demo_spawn(demo *d, asp_proc **p, const char *script, int in)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    asp_spawn_opts o = {0};
    o.stdio[0].mode = in ? ASP_STDIO_PIPE : ASP_STDIO_NULL;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    return asp_spawn(d->loop, p, argv, &o);
}

/* Starts the three children and what they are given to do. */
static int demo_start(demo *d)
{
    int e;
    clock_gettime(CLOCK_MONOTONIC, &d->t0);
    printf("%s: asproc %s, backend %s, child-exit source %s\n", d->host,
           asp_version_string(), asp_loop_backend_name(d->loop),
           asp_loop_child_source_name(d->loop));
    snprintf(d->input, sizeof d->input, "embedded in %s\n", d->host);
    asp_comm_opts in = {0};
    in.input = d->input;
    in.input_len = strlen(d->input);
    if ((e = demo_spawn(d, &d->upper, "tr a-z A-Z", 1)) < 0 ||
        (e = asp_communicate_start(d->upper, &in, demo_upper_cb, d)) < 0 ||
        (e = demo_spawn(d, &d->mixed,
                        "echo to stdout; echo to stderr >&2; exit 3", 0)) < 0 ||
        (e = asp_communicate_start(d->mixed, NULL, demo_mixed_cb, d)) < 0 ||
        (e = demo_spawn(d, &d->stubborn,
                        "trap '' TERM; echo ready; exec sleep 30", 0)) < 0 ||
        (e = asp_stream_readline_start(asp_proc_stdout(d->stubborn), 0,
                                       demo_ready_cb, d)) < 0) {
        fprintf(stderr, "%s: %s\n", d->host, asp_strerror(e));
        return e;
    }
    return 0;
}

/* Frees the children (killing any left) and reports. Returns the exit
 * status for main. */
static int demo_end(demo *d)
{
    asp_proc_free(d->upper, ASP_FREE_KILL);
    asp_proc_free(d->mixed, ASP_FREE_KILL);
    asp_proc_free(d->stubborn, ASP_FREE_KILL);
    printf("%s: %d of 3 children done, %s\n", d->host, d->done,
           d->done == 3 && !d->bad ? "all as expected" : "NOT as expected");
    return d->done == 3 && !d->bad ? 0 : 1;
}

#endif
