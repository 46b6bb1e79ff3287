/*
 * jobs.h - what the build-tool benchmarks share across peers: checking a
 * job's output, the figures of the jobs and many modes, and the fd
 * budget of the many mode.
 *
 * jobs: a->count jobs, a->conc at a time, each the writer printing
 * a->size bytes of the pattern to stdout and the same to stderr, both
 * captured. Figures: "RESULT jobs <variant> <jobs/s>" and
 * "RESULT jobs-cpu <variant> <us/job>" (this process's user + system CPU
 * over the run, children not included, per job).
 *
 * many: a->count idle children alive at once, each blocked reading its
 * stdin, then released together. Figures: "RESULT many <variant>
 * <us/child>" (first spawn to last exit seen, per child, the probing of
 * memory and fds left out), "RESULT many-rss <variant> <KiB/child>" (this
 * process's RSS growth while all are alive, per child) and
 * "RESULT many-fds <variant> <fds/child>".
 */
#ifndef BENCH_JOBS_H
#define BENCH_JOBS_H

#include "common.h"
#include "pattern.h"

/* Checks one job's captured stdout and stderr: each a->size bytes of the
 * pattern from offset 0; a mismatch ends the run (who names the peer). */
void jobs_check(const struct bench_args *a, const struct pat *pat,
                const char *out, size_t out_len, const char *err,
                size_t err_len, long job, const char *who);

/* Prints the jobs figures of a run of a->count jobs that took secs of
 * wall time and cpu_us of this process's CPU. */
void jobs_report(const struct bench_args *a, double secs, double cpu_us);

/* Makes room for n children costing per_child fds each (the caller has
 * raised its soft limit to the hard one already). When the hard limit is
 * too low and this process may raise it (root), it does, and says so on
 * a NOTE line; when it may not, prints a SKIP line and returns -1. */
int many_fd_room(const struct bench_args *a, long n, int per_child);

/* The clock and the resource probes of one many run. */
struct many_probe {
    uint64_t t0, paused;
    uint64_t rss0, rss1;
    int fds0, fds1;
};

/* Notes RSS and fds, then starts the clock. */
void many_probe_start(struct many_probe *m);

/* All children alive: notes RSS and fds with the clock paused. */
void many_probe_alive(struct many_probe *m);

/* Stops the clock and prints the many figures for n children. */
void many_report(const struct bench_args *a, struct many_probe *m, long n);

#endif
