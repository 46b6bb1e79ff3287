/*
 * raw.h - the modes of the raw C peer (peer_raw), each one measurement
 * that prints its RESULT (or SAMPLE) lines.
 */
#ifndef BENCH_RAW_H
#define BENCH_RAW_H

#include "common.h"

void raw_tput(const struct bench_args *a);        /* raw_stream.c */
void raw_lines(const struct bench_args *a);       /* raw_stream.c */
void raw_capture(const struct bench_args *a);     /* raw_stream.c */
void raw_capture_seq(const struct bench_args *a); /* raw_stream.c */
void raw_forward(const struct bench_args *a);     /* raw_stream.c */
void raw_spawn(const struct bench_args *a);       /* raw_sys.c */
void raw_timer(const struct bench_args *a);       /* raw_sys.c */
void raw_jobs(const struct bench_args *a);        /* raw_jobs.c */
void raw_many(const struct bench_args *a);        /* raw_jobs.c */

#endif
