/*
 * peer_asproc.c - the asproc side of every comparison: one measurement
 * per run.
 *
 *   peer_asproc tput|lines|capture|capseq|fwd|fwd-chunks|spawn|conc|
 *               conc-seq|timer|escalation|jobs|many|tree|spawn-contain
 *               [options, see common.h]
 */
#include "asp_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exits with 1 and asp_strerror's text when rc is a negative errno. */
void asp_must(int rc, const char *what)
{
    if (rc >= 0)
        return;
    fprintf(stderr, "bench: %s: %s\n", what, asp_strerror(rc));
    exit(1);
}

/* Spawn options for a->transport (see asp_bench.h). */
asp_spawn_opts asp_bench_opts(const struct bench_args *a)
{
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.stdio[0].mode = ASP_STDIO_NULL;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_INHERIT;
    if (strcmp(a->transport, "pipe1m") == 0) {
        o.pipe_size = (size_t)1 << 20;
        o.read_buffer = (size_t)1 << 20;
    } else if (strcmp(a->transport, "socketpair") == 0) {
        o.flags |= ASP_SPAWN_SOCKETPAIR;
    } else if (strcmp(a->transport, "pipe") != 0) {
        fprintf(stderr, "peer_asproc: unknown transport %s\n", a->transport);
        exit(1);
    }
    return o;
}

/* Waits for p, frees it, and exits with 1 unless it exited with 0. */
void asp_reap_ok(asp_proc *p)
{
    asp_status st;
    asp_must(asp_proc_wait(p, ASP_FOREVER, &st), "asp_proc_wait");
    asp_must(asp_proc_free(p, ASP_FREE_DETACH), "asp_proc_free");
    if (st.kind != ASP_EXIT_CODE || st.code != 0) {
        fprintf(stderr,
                "bench: child did not exit 0 (kind %d code %d "
                "signal %d)\n",
                st.kind, st.code, st.signal);
        exit(1);
    }
}

/* Pins this process, then runs the mode named by argv[1]. */
int main(int argc, char **argv)
{
    struct bench_args a;
    bench_parse(argc, argv, &a);
    bench_pin(a.cpu);
    if (strcmp(a.mode, "tput") == 0)
        asp_tput(&a);
    else if (strcmp(a.mode, "lines") == 0)
        asp_lines(&a);
    else if (strcmp(a.mode, "capture") == 0)
        asp_capture(&a);
    else if (strcmp(a.mode, "capseq") == 0)
        asp_capture_seq(&a);
    else if (strcmp(a.mode, "fwd") == 0)
        asp_forward(&a, 0);
    else if (strcmp(a.mode, "fwd-chunks") == 0)
        asp_forward(&a, 1);
    else if (strcmp(a.mode, "spawn") == 0)
        asp_spawn_rate(&a);
    else if (strcmp(a.mode, "conc") == 0)
        asp_conc(&a, 1);
    else if (strcmp(a.mode, "conc-seq") == 0)
        asp_conc(&a, 0);
    else if (strcmp(a.mode, "timer") == 0)
        asp_timer_late(&a);
    else if (strcmp(a.mode, "escalation") == 0)
        asp_escalation(&a);
    else if (strcmp(a.mode, "tree") == 0)
        asp_tree_stop(&a);
    else if (strcmp(a.mode, "spawn-contain") == 0)
        asp_spawn_contain(&a);
    else if (strcmp(a.mode, "jobs") == 0)
        asp_jobs(&a);
    else if (strcmp(a.mode, "many") == 0)
        asp_many(&a);
    else {
        fprintf(stderr, "peer_asproc: unknown mode %s\n", a.mode);
        return 1;
    }
    return 0;
}
