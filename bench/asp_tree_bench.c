/*
 * asp_tree_bench.c - containment: how fast a stopped tree is gone, and
 * what a cgroup costs a spawn.
 *
 *   tree           a->count trees of 100 processes (a shell, 99 sleeps
 *                  in the background, then the shell becomes a sleep too),
 *                  each stopped with one SIGKILL step against the whole
 *                  tree: its cgroup (--transport cgroup) or its process
 *                  group (--transport pgroup). "SAMPLE tree <variant>
 *                  <us>" is the time from the stop's signal to "the tree
 *                  is empty" as the loop learns it (cgroup.events; the
 *                  group is polled every 10 ms).
 *   spawn-contain  a->count spawns + waits of /bin/true, with the child in
 *                  a cgroup of its own (--transport cgroup, the cgroup
 *                  removed each time) or not (--transport none); prints
 *                  spawns per second.
 * Without a writable cgroup v2 the cgroup variants print a SKIP line.
 */
#include "asp_bench.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define TREE_SHELL                                               \
    "i=0; while [ $i -lt 99 ]; do sleep 60 & i=$((i+1)); done; " \
    "echo R; exec sleep 60"

/* The containment a->transport names; prints SKIP and returns -1 when a
 * cgroup is asked for but cannot be had here. */
static int pick(const struct bench_args *a, asp_loop *loop, enum asp_contain *c)
{
    if (!strcmp(a->transport, "cgroup"))
        *c = ASP_CONTAIN_CGROUP;
    else if (!strcmp(a->transport, "pgroup"))
        *c = ASP_CONTAIN_PGROUP;
    else
        *c = ASP_CONTAIN_NONE;
    if (*c != ASP_CONTAIN_CGROUP)
        return 0;
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.contain = ASP_CONTAIN_CGROUP;
    const char *const argv[] = {"/bin/true", NULL};
    asp_proc *p;
    int r = asp_spawn(loop, &p, argv, &o);
    if (r < 0) {
        printf("SKIP %s %s: no cgroup here (%s)\n", a->mode, a->variant,
               asp_strerror(r));
        return -1;
    }
    asp_must(asp_proc_wait_tree(p, ASP_FOREVER, NULL), "asp_proc_wait_tree");
    asp_must(asp_proc_free(p, ASP_FREE_DETACH), "asp_proc_free");
    return 0;
}

/* One tree: started, stopped, timed until empty. Returns microseconds. */
static double one_tree(asp_loop *loop, enum asp_contain c, long i)
{
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.contain = c;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    asp_proc *p;
    asp_must(asp_spawn_shell(loop, &p, TREE_SHELL, &o), "asp_spawn_shell");
    char ready[2];
    if (asp_stream_readexactly(asp_proc_stdout(p), ready, 2, NULL) != 2 ||
        ready[0] != 'R')
        bench_mismatch("asproc: the tree did not say ready", (uint64_t)i);
    asp_kill_opts k;
    memset(&k, 0, sizeof k);
    k.steps[0].signal = SIGKILL;
    k.flags = ASP_KILL_TREE;
    uint64_t t0 = bench_now_ns();
    asp_must(asp_proc_stop_start(p, &k, NULL, NULL), "asp_proc_stop_start");
    asp_must(asp_proc_wait_tree(p, 10000, NULL), "asp_proc_wait_tree");
    uint64_t t1 = bench_now_ns();
    asp_must(asp_proc_free(p, ASP_FREE_DETACH), "asp_proc_free");
    return (double)(t1 - t0) / 1e3;
}

/* The tree mode (see the file comment). */
void asp_tree_stop(const struct bench_args *a)
{
    asp_loop *loop;
    enum asp_contain c;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    if (pick(a, loop, &c) == 0)
        for (long i = 0; i < a->count; i++)
            printf("SAMPLE tree %s %.1f\n", a->variant, one_tree(loop, c, i));
    fflush(stdout);
    asp_must(asp_loop_free(loop), "asp_loop_free");
}

/* The spawn-contain mode (see the file comment). */
void asp_spawn_contain(const struct bench_args *a)
{
    const char *const argv[] = {"/bin/true", NULL};
    asp_loop *loop;
    enum asp_contain c;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    if (pick(a, loop, &c) < 0) {
        asp_must(asp_loop_free(loop), "asp_loop_free");
        return;
    }
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.contain = c;
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < a->count; i++) {
        asp_proc *p;
        asp_must(asp_spawn(loop, &p, argv, &o), "asp_spawn /bin/true");
        asp_must(asp_proc_wait_tree(p, ASP_FOREVER, NULL),
                 "asp_proc_wait_tree");
        asp_reap_ok(p);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    asp_must(asp_loop_free(loop), "asp_loop_free");
    bench_result("spawn-contain", a->variant, (double)a->count / secs,
                 "spawns/s");
}
