/*
 * raw_sys.c - the raw C limits for spawning and for timer lateness:
 * posix_spawn + waitpid of /bin/true, and a timerfd in epoll.
 */
#define _GNU_SOURCE
#include "common.h"
#include "raw.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* a->count times: posix_spawn /bin/true (stdio inherited) and waitpid it,
 * optionally from a parent holding a->heap_mib MiB of touched heap.
 * Prints spawns per second. */
void raw_spawn(const struct bench_args *a)
{
    char *argv[] = {"/bin/true", NULL};
    bench_touch_heap(a->heap_mib);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < a->count; i++) {
        pid_t pid;
        int st, err = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
        if (err != 0)
            bench_die("posix_spawn /bin/true", err);
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR)
                bench_die("waitpid", errno);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bench_mismatch("raw: /bin/true did not exit 0", (uint64_t)i);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    bench_result("spawn", a->variant, (double)a->count / secs, "spawns/s");
}

/* a->count samples of a 10 ms one-shot timerfd waited for in epoll:
 * prints "SAMPLE timer <variant> <us late>" for each, the reference an
 * event loop's timers are read against. */
void raw_timer(const struct bench_args *a)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = tfd};
    if (ep < 0 || tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) != 0)
        bench_die("timerfd/epoll", errno);
    struct itimerspec its = {.it_value = {.tv_sec = 0, .tv_nsec = 10000000}};
    for (long i = 0; i < a->count; i++) {
        uint64_t t0 = bench_now_ns(), ticks;
        if (timerfd_settime(tfd, 0, &its, NULL) != 0)
            bench_die("timerfd_settime", errno);
        while (epoll_wait(ep, &ev, 1, -1) != 1)
            if (errno != EINTR)
                bench_die("epoll_wait", errno);
        uint64_t t1 = bench_now_ns();
        if (read(tfd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks)
            bench_die("read timerfd", errno);
        printf("SAMPLE timer %s %.1f\n", a->variant,
               ((double)(t1 - t0) - 10e6) / 1e3);
    }
    fflush(stdout);
    close(tfd);
    close(ep);
}
