/*
 * asp_bench.h - the modes of the asproc peer (peer_asproc), each one
 * measurement that prints its RESULT (or SAMPLE) lines, and the few
 * functions they share.
 */
#ifndef BENCH_ASP_BENCH_H
#define BENCH_ASP_BENCH_H

#include "asproc.h"
#include "common.h"

/* Exits with 1 and asp_strerror's text when rc is a negative errno. */
void asp_must(int rc, const char *what);

/* Spawn options for a->transport: "pipe" is the default pipe, "pipe1m"
 * raises it to 1 MiB with a 1 MiB read buffer, "socketpair" sets
 * ASP_SPAWN_SOCKETPAIR. stdin is /dev/null, stdout a pipe, stderr
 * inherited. */
asp_spawn_opts asp_bench_opts(const struct bench_args *a);

/* Waits for p, frees it, and exits with 1 unless it exited with 0. */
void asp_reap_ok(asp_proc *p);

void asp_tput(const struct bench_args *a);        /* asp_stream_bench.c */
void asp_lines(const struct bench_args *a);       /* asp_stream_bench.c */
void asp_capture(const struct bench_args *a);     /* asp_stream_bench.c */
void asp_capture_seq(const struct bench_args *a); /* asp_stream_bench.c */
void asp_forward(const struct bench_args *a,
                 int chunks);                           /* asp_stream_bench.c */
void asp_spawn_rate(const struct bench_args *a);        /* asp_sys_bench.c */
void asp_conc(const struct bench_args *a, int at_once); /* asp_conc_bench.c */
void asp_timer_late(const struct bench_args *a);        /* asp_sys_bench.c */
void asp_escalation(const struct bench_args *a);        /* asp_sys_bench.c */
void asp_tree_stop(const struct bench_args *a);         /* asp_tree_bench.c */
void asp_spawn_contain(const struct bench_args *a);     /* asp_tree_bench.c */
void asp_jobs(const struct bench_args *a);              /* asp_jobs_bench.c */
void asp_many(const struct bench_args *a);              /* asp_jobs_bench.c */

#endif
