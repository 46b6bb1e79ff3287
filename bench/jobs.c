/*
 * jobs.c - the shared parts of the jobs and many benchmarks (jobs.h).
 */
#include "jobs.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

/* Checks one job's two outputs against the pattern. */
void jobs_check(const struct bench_args *a, const struct pat *pat,
                const char *out, size_t out_len, const char *err,
                size_t err_len, long job, const char *who)
{
    if (out_len != a->size || !pat_check(pat, 0, out, out_len) ||
        err_len != a->size || !pat_check(pat, 0, err, err_len)) {
        char what[64];
        snprintf(what, sizeof what, "%s: a job's output differs", who);
        bench_mismatch(what, (uint64_t)job);
    }
}

/* Prints jobs/s and the CPU time per job. */
void jobs_report(const struct bench_args *a, double secs, double cpu_us)
{
    bench_result("jobs", a->variant, (double)a->count / secs, "jobs/s");
    bench_result("jobs-cpu", a->variant, cpu_us / (double)a->count, "us/job");
}

/* Makes room for n children of per_child fds (see jobs.h). */
int many_fd_room(const struct bench_args *a, long n, int per_child)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n * (rlim_t)per_child + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        bench_die("getrlimit", errno);
    if (rl.rlim_cur >= need)
        return 0;
    struct rlimit more = {need, need > rl.rlim_max ? need : rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0) {
        if (more.rlim_max == rl.rlim_max)
            return 0; /* the caller had not raised its soft limit */
        printf("NOTE %s needs %llu fds: hard RLIMIT_NOFILE %llu raised to "
               "%llu by the benchmark (privileged)\n",
               a->variant, (unsigned long long)need,
               (unsigned long long)rl.rlim_max,
               (unsigned long long)more.rlim_max);
        return 0;
    }
    printf("SKIP %s: needs %llu fds, hard RLIMIT_NOFILE is %llu (raise it "
           "with ulimit -Hn as root)\n",
           a->variant, (unsigned long long)need,
           (unsigned long long)rl.rlim_max);
    fflush(stdout);
    return -1;
}

/* Notes RSS and fds, then starts the clock. */
void many_probe_start(struct many_probe *m)
{
    m->rss0 = bench_rss_now();
    m->fds0 = bench_fd_count();
    m->paused = 0;
    m->t0 = bench_now_ns();
}

/* Notes RSS and fds with the clock paused. */
void many_probe_alive(struct many_probe *m)
{
    uint64_t t = bench_now_ns();
    m->rss1 = bench_rss_now();
    m->fds1 = bench_fd_count();
    m->paused += bench_now_ns() - t;
}

/* Prints the many figures. */
void many_report(const struct bench_args *a, struct many_probe *m, long n)
{
    double us = (double)(bench_now_ns() - m->t0 - m->paused) / 1e3;
    double rss = m->rss1 > m->rss0 ? (double)(m->rss1 - m->rss0) : 0.0;
    bench_result("many", a->variant, us / (double)n, "us/child");
    bench_result("many-rss", a->variant, rss / 1024.0 / (double)n, "KiB/child");
    bench_result("many-fds", a->variant,
                 (double)(m->fds1 - m->fds0) / (double)n, "fds/child");
}
