/*
 * common.h - what every C benchmark program shares: command-line options,
 * the clock, CPU pinning, the writer's command line, and output.
 *
 * Each measuring program runs one measurement per invocation and prints
 *   RESULT <benchmark> <variant> <value> <unit>
 * lines for it (and SAMPLE lines for latency distributions); bench/run.py
 * runs them interleaved and turns them into medians and paired ratios.
 * A byte-check failure prints "FAIL ..." on stderr and exits with 2.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Exit code of a failed byte check, distinct from setup errors (1). */
#define BENCH_EXIT_MISMATCH 2

/* The options every measuring program understands (not all modes use
 * all of them). */
struct bench_args {
    const char *mode;      /* tput, lines, capture, spawn, conc, ... */
    const char *variant;   /* name printed in RESULT lines */
    const char *transport; /* pipe, pipe1m, socketpair, epoll */
    int cpu;               /* pin this process here; -1: do not */
    int child_cpu;         /* the writer pins itself here; -1: do not */
    uint64_t size;         /* bytes (or lines in the lines mode) */
    size_t chunk;          /* the writer's write size */
    long count;            /* spawns, samples or children */
    size_t heap_mib;       /* heap to touch before spawning */
    long conc;             /* jobs in flight at once (jobs mode) */
    int verify;            /* check every byte (costs CPU) */
};

/* Parses argv (MODE then --options) into a, filling defaults first.
 * Prints usage and exits with 1 on a bad option. */
void bench_parse(int argc, char **argv, struct bench_args *a);

/* Parses "123", "64K", "2M", "2G" (binary units). Returns 0 on success,
 * -1 on junk. */
int bench_parse_size(const char *s, uint64_t *out);

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);

/* Pins the calling process to cpu (no-op for cpu < 0). Exits with 1 if
 * the kernel refuses, so a placement is never silently ignored. */
void bench_pin(int cpu);

/* Raises the soft open-file limit to the hard limit, so a thousand
 * children with their pipes fit. */
void bench_raise_nofile(void);

/* Allocates and touches mib MiB of heap so the process has that much
 * resident memory while it spawns. The memory is kept for the process's
 * life. Exits with 1 if it cannot be had. */
void bench_touch_heap(size_t mib);

/* Peak resident set size of this process in bytes (getrusage). */
uint64_t bench_peak_rss(void);

/* Resident set size of this process now, in bytes (/proc/self/statm;
 * 0 where there is none). */
uint64_t bench_rss_now(void);

/* CPU time this process has used so far (user + system, getrusage
 * RUSAGE_SELF: children not included), in microseconds. */
double bench_cpu_us(void);

/* How many fds this process has open (/proc/self/fd; -1 where there is
 * none). */
int bench_fd_count(void);

/* Writer command line: the writer binary found next to this program,
 * with options for the pattern kind (lines != 0), size, write size and
 * CPU from a. hang != 0 asks for the SIGTERM-ignoring variant instead.
 * The returned argv points into static storage: one at a time. */
char **bench_writer_argv(const struct bench_args *a, int lines, int hang);

/* One job of the jobs benchmark: the writer printing a->size bytes of
 * the pattern to stdout and the same to stderr, in one write each, not
 * pinned. Static storage, as above. */
char **bench_job_argv(const struct bench_args *a);

/* An idle child for the many benchmark: the writer as a sink of 0 bytes,
 * blocked reading its stdin until EOF, then exiting 0 (2 if any byte
 * came). Static storage, as above. */
char **bench_idle_argv(void);

/* The sink's command line (writer --sink for a->size bytes, pinned to
 * a->child_cpu, --verify when a->verify): static storage, as above. */
char **bench_sink_argv(const struct bench_args *a);

/* Writes all of buf to fd, blocking, resuming after short writes and
 * EINTR; exits with 1 on an error. */
void bench_write_all(int fd, const void *buf, size_t n);

/* Path of the writer binary (next to /proc/self/exe). */
const char *bench_writer_path(void);

/* Prints one RESULT line and flushes. */
void bench_result(const char *bench, const char *variant, double value,
                  const char *unit);

/* Prints "FAIL what at offset at" on stderr and exits with BENCH_EXIT_MISMATCH. */
_Noreturn void bench_mismatch(const char *what, uint64_t at);

/* Prints "bench: what: reason" on stderr and exits with 1. */
_Noreturn void bench_die(const char *what, int err);

#endif
