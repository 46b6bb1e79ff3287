/*
 * common.c - options, clock, pinning and output shared by the benchmark
 * programs (see common.h).
 */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Prints the option summary and exits with 1. */
static _Noreturn void usage(const char *prog)
{
    fprintf(
        stderr,
        "usage: %s MODE [--variant NAME] [--transport pipe|pipe1m|copy|splice|"
        "socketpair|epoll|cgroup|pgroup|none]\n"
        "       [--cpu K] [--child-cpu K] [--size N[K|M|G]] "
        "[--chunk N[K|M]]\n"
        "       [--count N] [--heap-mib N] [--conc N] [--verify]\n",
        prog);
    exit(1);
}

/* Parses "123", "64K", "2M", "2G" (binary units). Returns 0 on success,
 * -1 on junk. */
int bench_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'K':
    case 'k':
        shift = 10;
        end++;
        break;
    case 'M':
    case 'm':
        shift = 20;
        end++;
        break;
    case 'G':
    case 'g':
        shift = 30;
        end++;
        break;
    default: break;
    }
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Returns the value following option argv[*i], advancing *i, or exits
 * with usage when it is missing. */
static const char *optval(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage(argv[0]);
    return argv[++*i];
}

/* Parses a size option value or exits with usage. */
static uint64_t sizeval(int argc, char **argv, int *i)
{
    uint64_t v;
    if (bench_parse_size(optval(argc, argv, i), &v) != 0)
        usage(argv[0]);
    return v;
}

/* Parses argv (MODE then --options) into a, filling defaults first. */
void bench_parse(int argc, char **argv, struct bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->cpu = -1;
    a->child_cpu = -1;
    a->transport = "pipe";
    a->chunk = 64 * 1024;
    a->size = 64u << 20;
    a->count = 100;
    a->conc = 1;
    if (argc < 2 || argv[1][0] == '-')
        usage(argv[0]);
    a->mode = argv[1];
    a->variant = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--variant") == 0)
            a->variant = optval(argc, argv, &i);
        else if (strcmp(o, "--transport") == 0)
            a->transport = optval(argc, argv, &i);
        else if (strcmp(o, "--cpu") == 0)
            a->cpu = atoi(optval(argc, argv, &i));
        else if (strcmp(o, "--child-cpu") == 0)
            a->child_cpu = atoi(optval(argc, argv, &i));
        else if (strcmp(o, "--size") == 0)
            a->size = sizeval(argc, argv, &i);
        else if (strcmp(o, "--chunk") == 0)
            a->chunk = (size_t)sizeval(argc, argv, &i);
        else if (strcmp(o, "--count") == 0)
            a->count = atol(optval(argc, argv, &i));
        else if (strcmp(o, "--heap-mib") == 0)
            a->heap_mib = (size_t)atol(optval(argc, argv, &i));
        else if (strcmp(o, "--conc") == 0)
            a->conc = atol(optval(argc, argv, &i));
        else if (strcmp(o, "--verify") == 0)
            a->verify = 1;
        else
            usage(argv[0]);
    }
    if (a->chunk == 0 || a->count <= 0 || a->conc <= 0)
        usage(argv[0]);
}

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pins the calling process to cpu (no-op for cpu < 0). */
void bench_pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        bench_die("sched_setaffinity", errno);
}

/* Raises the soft open-file limit to the hard limit. */
void bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        bench_die("getrlimit", errno);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        bench_die("setrlimit", errno);
}

/* Allocates and touches mib MiB of heap, kept for the process's life. */
void bench_touch_heap(size_t mib)
{
    static char *keep;
    if (mib == 0)
        return;
    size_t n = mib << 20;
    keep = malloc(n);
    if (!keep)
        bench_die("malloc heap", ENOMEM);
    /* One write per page makes every page resident without the cost of
     * filling it; the values vary so no page can be merged. */
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < n; i += (size_t)page)
        keep[i] = (char)(i >> 12);
}

/* Peak resident set size of this process in bytes. */
uint64_t bench_peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

/* Resident set size now, from /proc/self/statm (its second field, in
 * pages). */
uint64_t bench_rss_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* User + system CPU time of this process, in microseconds. */
double bench_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Open fds, counted in /proc/self/fd (less the one that lists it). */
int bench_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* Path of the writer binary: "writer" in the directory of this program,
 * which is where the makefile puts every benchmark binary. */
const char *bench_writer_path(void)
{
    static char path[PATH_MAX];
    if (path[0])
        return path;
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n <= 0)
        bench_die("readlink /proc/self/exe", errno);
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    strcpy(slash ? slash + 1 : path, "writer");
    return path;
}

/* Puts the writer's path and its --cpu option into argv; returns the
 * count. cpu is the caller's storage for the number. */
static int writer_head(const struct bench_args *a, char **argv, char *cpu,
                       size_t cpulen)
{
    int n = 0;
    argv[n++] = (char *)bench_writer_path();
    if (a->child_cpu >= 0) {
        snprintf(cpu, cpulen, "%d", a->child_cpu);
        argv[n++] = "--cpu";
        argv[n++] = cpu;
    }
    return n;
}

/* Writer command line for a (see common.h). */
char **bench_writer_argv(const struct bench_args *a, int lines, int hang)
{
    static char size[32], chunk[32], cpu[16];
    static char *argv[16];
    int n = writer_head(a, argv, cpu, sizeof cpu);
    if (hang) {
        argv[n++] = "--hang";
    } else {
        if (lines)
            argv[n++] = "--lines";
        snprintf(chunk, sizeof chunk, "%zu", a->chunk);
        argv[n++] = "--chunk";
        argv[n++] = chunk;
        snprintf(size, sizeof size, "%llu", (unsigned long long)a->size);
        argv[n++] = size;
    }
    argv[n] = NULL;
    return argv;
}

/* One job's command line (see common.h). */
char **bench_job_argv(const struct bench_args *a)
{
    static char size[32];
    static char *argv[8];
    snprintf(size, sizeof size, "%llu", (unsigned long long)a->size);
    argv[0] = (char *)bench_writer_path();
    argv[1] = "--to";
    argv[2] = "both";
    argv[3] = "--chunk";
    argv[4] = size;
    argv[5] = size;
    argv[6] = NULL;
    return argv;
}

/* An idle child's command line (see common.h). */
char **bench_idle_argv(void)
{
    static char *argv[4];
    argv[0] = (char *)bench_writer_path();
    argv[1] = "--sink";
    argv[2] = "0";
    argv[3] = NULL;
    return argv;
}

/* The sink's command line (see common.h). */
char **bench_sink_argv(const struct bench_args *a)
{
    static char size[32], cpu[16];
    static char *argv[8];
    int n = writer_head(a, argv, cpu, sizeof cpu);
    argv[n++] = "--sink";
    if (a->verify)
        argv[n++] = "--verify";
    snprintf(size, sizeof size, "%llu", (unsigned long long)a->size);
    argv[n++] = size;
    argv[n] = NULL;
    return argv;
}

/* Writes all of buf to fd, blocking; exits with 1 on an error. */
void bench_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            bench_die("write", errno);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Prints one RESULT line and flushes, so the driver sees it even if a
 * later step of the run fails. */
void bench_result(const char *bench, const char *variant, double value,
                  const char *unit)
{
    printf("RESULT %s %s %.6g %s\n", bench, variant, value, unit);
    fflush(stdout);
}

/* Prints "FAIL what at offset at" on stderr and exits with
 * BENCH_EXIT_MISMATCH. */
void bench_mismatch(const char *what, uint64_t at)
{
    fprintf(stderr, "FAIL %s at %llu\n", what, (unsigned long long)at);
    exit(BENCH_EXIT_MISMATCH);
}

/* Prints "bench: what: reason" on stderr and exits with 1. */
void bench_die(const char *what, int err)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}
