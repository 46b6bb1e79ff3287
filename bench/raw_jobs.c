/*
 * raw_jobs.c - the raw C limits for the build-tool shapes: many short
 * jobs with captured output (posix_spawn + poll + waitpid), and many idle
 * children held at once, then released together.
 */
#define _GNU_SOURCE
#include "common.h"
#include "jobs.h"
#include "pattern.h"
#include "raw.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* One job slot: the running job's pid and the read ends of its stdout
 * and stderr (-1 once at EOF), with a capture buffer per stream that the
 * slot keeps from job to job. */
struct slot {
    pid_t pid;
    int fd[2];
    char *buf[2];
    size_t len[2], cap[2];
};

/* posix_spawn of the job with stdin /dev/null and stdout, stderr on new
 * pipes whose read ends (non-blocking) go to s. */
static void job_start(struct slot *s, char **argv)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        bench_die("pipe2", errno);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    int e = posix_spawn(&s->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0)
        bench_die("posix_spawn job", e);
    close(out[1]);
    close(err[1]);
    s->fd[0] = out[0];
    s->fd[1] = err[0];
    for (int i = 0; i < 2; i++) {
        if (fcntl(s->fd[i], F_SETFL, O_NONBLOCK) != 0)
            bench_die("O_NONBLOCK", errno);
        s->len[i] = 0;
    }
}

/* Reads stream i of s until it would block; at EOF closes it. */
static void job_read(struct slot *s, int i)
{
    for (;;) {
        if (s->cap[i] - s->len[i] < 4096) {
            size_t ncap = s->cap[i] ? s->cap[i] * 2 : 4096;
            char *nb = realloc(s->buf[i], ncap);
            if (!nb)
                bench_die("realloc", ENOMEM);
            s->buf[i] = nb;
            s->cap[i] = ncap;
        }
        ssize_t n =
            read(s->fd[i], s->buf[i] + s->len[i], s->cap[i] - s->len[i]);
        if (n > 0) {
            s->len[i] += (size_t)n;
        } else if (n == 0) {
            close(s->fd[i]);
            s->fd[i] = -1;
            return;
        } else if (errno == EAGAIN) {
            return;
        } else if (errno != EINTR) {
            bench_die("read", errno);
        }
    }
}

/* Both outputs ended: waits for the job (it exits right after closing
 * them) and checks its status and output. */
static void job_finish(struct slot *s, const struct bench_args *a,
                       const struct pat *pat, long job)
{
    int st;
    while (waitpid(s->pid, &st, 0) < 0)
        if (errno != EINTR)
            bench_die("waitpid", errno);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_mismatch("raw: a job did not exit 0", (uint64_t)job);
    jobs_check(a, pat, s->buf[0], s->len[0], s->buf[1], s->len[1], job, "raw");
    s->pid = 0;
}

/* Fills p with the open fds of the running slots; returns the count and
 * in owner which slot and stream each entry belongs to. */
static int poll_set(struct slot *slots, long n, struct pollfd *p,
                    int (*owner)[2])
{
    int k = 0;
    for (long i = 0; i < n; i++)
        for (int j = 0; j < 2; j++)
            if (slots[i].pid > 0 && slots[i].fd[j] >= 0) {
                p[k].fd = slots[i].fd[j];
                p[k].events = POLLIN;
                owner[k][0] = (int)i;
                owner[k][1] = j;
                k++;
            }
    return k;
}

/* a->count jobs, a->conc at a time: each the writer printing a->size
 * bytes to stdout and stderr, both captured through poll and checked.
 * Prints jobs/s and the parent's CPU time per job. */
void raw_jobs(const struct bench_args *a)
{
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)a->size) != 0)
        bench_die("pattern", ENOMEM);
    char **argv = bench_job_argv(a);
    long conc = a->conc < a->count ? a->conc : a->count;
    struct slot *slots = calloc((size_t)conc, sizeof *slots);
    struct pollfd *pfd = calloc((size_t)conc * 2, sizeof *pfd);
    int(*owner)[2] = calloc((size_t)conc * 2, sizeof *owner);
    if (!slots || !pfd || !owner)
        bench_die("calloc", ENOMEM);
    double cpu0 = bench_cpu_us();
    uint64_t t0 = bench_now_ns();
    long started = 0, done = 0;
    for (; started < conc; started++)
        job_start(&slots[started], argv);
    while (done < a->count) {
        int k = poll_set(slots, conc, pfd, owner);
        if (poll(pfd, (nfds_t)k, -1) < 0) {
            if (errno == EINTR)
                continue;
            bench_die("poll", errno);
        }
        for (int i = 0; i < k; i++) {
            if (!pfd[i].revents)
                continue;
            struct slot *s = &slots[owner[i][0]];
            job_read(s, owner[i][1]);
            if (s->fd[0] >= 0 || s->fd[1] >= 0)
                continue;
            job_finish(s, a, &pat, done++);
            if (started < a->count) {
                job_start(s, argv);
                started++;
            }
        }
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    double cpu = bench_cpu_us() - cpu0;
    jobs_report(a, secs, cpu);
    for (long i = 0; i < conc; i++) {
        free(slots[i].buf[0]);
        free(slots[i].buf[1]);
    }
    free(slots);
    free(pfd);
    free(owner);
    pat_free(&pat);
}

/* a->count idle children held at once, each blocked reading a pipe that
 * is its stdin (stdout and stderr inherited), then released together by
 * closing every pipe, and reaped one by one. Prints the time per child
 * (spawns to the last exit) and the memory and fds each cost this
 * process while all were alive. */
void raw_many(const struct bench_args *a)
{
    long n = a->count;
    bench_raise_nofile();
    if (many_fd_room(a, n, 1) != 0)
        return;
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    int *fds = calloc((size_t)n, sizeof *fds);
    if (!pids || !fds)
        bench_die("calloc", ENOMEM);
    char **argv = bench_idle_argv();
    struct many_probe probe;
    many_probe_start(&probe);
    for (long i = 0; i < n; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0)
            bench_die("pipe2", errno);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[0], 0);
        int e = posix_spawn(&pids[i], argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (e != 0)
            bench_die("posix_spawn idle child", e);
        close(p[0]);
        fds[i] = p[1];
    }
    many_probe_alive(&probe);
    for (long i = 0; i < n; i++)
        close(fds[i]);
    for (long i = 0; i < n; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0)
            if (errno != EINTR)
                bench_die("waitpid", errno);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bench_mismatch("raw: an idle child did not exit 0", (uint64_t)i);
    }
    many_report(a, &probe, n);
    free(pids);
    free(fds);
}
