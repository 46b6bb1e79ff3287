/*
 * test_signals.c - the self-pipe source's SIGCHLD handler in a host that
 * has a handler of its own: every SIGCHLD reaches the host's handler, in
 * whichever thread it arrives, also while another thread is still inside
 * that handler; the host's flags are kept (a host that did not ask for
 * SA_RESTART still sees EINTR); SIG_IGN given with SA_SIGINFO; a ring of
 * handlers that chain to each other stays bounded. The loops here use the
 * self-pipe source whatever the run's source is: that source is the one
 * with a handler.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

/* ---- SIGCHLD handler chaining ---- */

/* Unblocks SIGCHLD (the signalfd run blocks it) so the handler can run. */
static void unblock_sigchld(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
}

START_TEST(regress_selfpipe_with_ignored_siginfo_handler)
{
    /* SIG_IGN given through sa_sigaction with SA_SIGINFO: no crash; the
     * kernel reaps (ignored SIGCHLD), so the status is unknown. */
    unblock_sigchld();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, &old);
    asp_loop *loop = NULL;
    asp_loop_opts lo = {0, ASP_SOURCE_SELFPIPE};
    ck_assert_int_eq(asp_loop_new(&loop, &lo), 0);
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "3");
    asp_status st;
    ck_assert_int_eq(asp_proc_wait(p, 10000, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_UNKNOWN);
    asp_t_free(p);
    asp_t_loop_free(loop);
    sigaction(SIGCHLD, &old, NULL);
}
END_TEST

static struct sigaction host_prev;
static atomic_int host_calls;

/* A host handler that chains to whatever was installed before it. */
static void host_handler(int sig, siginfo_t *si, void *uc)
{
    atomic_fetch_add(&host_calls, 1);
    if ((host_prev.sa_flags & SA_SIGINFO) && host_prev.sa_sigaction &&
        host_prev.sa_handler != SIG_IGN && host_prev.sa_handler != SIG_DFL)
        host_prev.sa_sigaction(sig, si, uc);
}

START_TEST(regress_handler_ring_is_bounded)
{
    unblock_sigchld();
    asp_loop_opts lo = {0, ASP_SOURCE_SELFPIPE};
    asp_loop *a = NULL;
    ck_assert_int_eq(asp_loop_new(&a, &lo), 0);
    asp_proc *p = ASP_T_SPAWN(a, NULL, "exit", "0"); /* installs ours */
    asp_t_wait(p);
    asp_t_free(p);
    /* The host installs its handler on top of ours, chaining to it. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = host_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, &host_prev);
    asp_t_loop_free(a); /* ours stays reachable through the host's */
    asp_loop *b = NULL;
    ck_assert_int_eq(asp_loop_new(&b, &lo), 0);
    p = ASP_T_SPAWN(b, NULL, "exit", "4"); /* ours again, on top */
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 4);
    int calls = atomic_load(&host_calls);
    ck_assert_int_ge(calls, 1);
    ck_assert_int_le(calls, 4);
    asp_t_free(p);
    asp_t_loop_free(b);
    signal(SIGCHLD, SIG_DFL);
}
END_TEST

/* ---- a SIGCHLD while another thread is inside the host's handler ---- */

static atomic_int slow_armed;
static atomic_int slow_calls;
static atomic_int victim_pid;

/* Sleeps ms milliseconds (async-signal-safe). */
static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A slow host handler. Its first call kills the victim child, whose
 * SIGCHLD so arrives while this call still runs (SIGCHLD is blocked in
 * this thread meanwhile: another thread takes it), then waits up to 5 s
 * for that second call. */
static void slow_handler(int sig)
{
    int saved = errno;
    (void)sig;
    if (atomic_load(&slow_armed) && atomic_fetch_add(&slow_calls, 1) == 0) {
        kill(atomic_load(&victim_pid), SIGKILL);
        for (int i = 0; i < 500 && atomic_load(&slow_calls) < 2; i++)
            nap_ms(10);
    }
    errno = saved;
}

/* A second thread, SIGCHLD unblocked, parked in read() on fd. */
static void *parked(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* A self-pipe loop that has spawned once: the process-wide probe of the
 * first spawn is behind us (its child's SIGCHLD would come in between),
 * and its handler is uninstalled again with the loop. */
static void warm_up_selfpipe(void)
{
    asp_loop *loop = NULL;
    asp_loop_opts lo = {0, ASP_SOURCE_SELFPIPE};
    ck_assert_int_eq(asp_loop_new(&loop, &lo), 0);
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "0");
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}

START_TEST(signals_host_handler_hears_exit_during_its_own_run)
{
    /* Two exits, the second while the host's handler still runs the
     * first in one thread: the second arrives in the other thread, and
     * the host's handler must see it too (each thread guards only itself
     * against a ring of handlers). */
    unblock_sigchld();
    warm_up_selfpipe();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = slow_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGCHLD, &sa, &old), 0);
    int park[2];
    ck_assert_int_eq(pipe2(park, O_CLOEXEC), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, parked, &park[0]), 0);

    asp_loop *loop = NULL;
    asp_loop_opts lo = {0, ASP_SOURCE_SELFPIPE};
    ck_assert_int_eq(asp_loop_new(&loop, &lo), 0);
    asp_proc *victim = ASP_T_SPAWN(loop, NULL, "sleep", "30000");
    atomic_store(&victim_pid, asp_proc_pid(victim));
    atomic_store(&slow_armed, 1);
    asp_proc *trigger = ASP_T_SPAWN(loop, NULL, "exit", "0");
    asp_status st = asp_t_wait(trigger);
    ck_assert_int_eq(st.code, 0);
    st = asp_t_wait(victim);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGKILL);
    asp_t_free(trigger);
    asp_t_free(victim);
    asp_t_loop_free(loop);
    ck_assert_int_eq(write(park[1], "x", 1), 1);
    pthread_join(th, NULL);
    close(park[0]);
    close(park[1]);
    ck_assert_int_eq(sigaction(SIGCHLD, &old, NULL), 0);
    ck_assert_msg(atomic_load(&slow_calls) == 2,
                  "the host's handler ran %d times for 2 exits",
                  atomic_load(&slow_calls));
}
END_TEST

/* ---- the host's flags: no SA_RESTART added ---- */

static atomic_int plain_calls;

/* A host handler installed without SA_RESTART. */
static void plain_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&plain_calls, 1);
}

typedef struct {
    pid_t victim;
    pid_t reader; /* thread id of the thread blocked in read() */
    int rfd;      /* the fd it reads */
    int quit;     /* read end: the test is over */
    int data;     /* write end of the pipe the reader reads */
} restart_ctx;

/* Whether thread tid is blocked in read() of fd now (/proc/self/task/
 * <tid>/syscall names the system call a sleeping thread is in and its
 * arguments: the fd matters, valgrind's own lock is a read too); 1 when
 * that cannot be told, after a moment. */
static int in_read(pid_t tid, int fd)
{
#if defined(__linux__) && defined(SYS_read)
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd >= 0) {
        ssize_t n = read(sfd, buf, sizeof buf - 1);
        close(sfd);
        if (n > 0) {
            buf[n] = 0;
            /* "running" or "-1 ..." when not in a system call, else
             * "nr 0xarg1 ...". */
            long nr;
            unsigned long arg1;
            return sscanf(buf, "%ld 0x%lx", &nr, &arg1) == 2 &&
                   nr == SYS_read && arg1 == (unsigned long)fd;
        }
    }
#endif
    (void)tid;
    (void)fd;
    nap_ms(200);
    return 1;
}

/* SIGCHLD blocked here: kills the victim once the reader sleeps in
 * read(); if that read is never interrupted, ends it after 5 s with a
 * byte, so the test fails instead of hanging. */
static void *killer(void *arg)
{
    restart_ctx *c = arg;
    for (int i = 0; i < 5000 && !in_read(c->reader, c->rfd); i++)
        nap_ms(1);
    kill(c->victim, SIGKILL);
    struct pollfd pf = {c->quit, POLLIN, 0};
    if (poll(&pf, 1, 5000) == 0)
        (void)!write(c->data, "x", 1);
    return NULL;
}

START_TEST(signals_host_flags_kept_no_restart)
{
    /* The host installed its handler without SA_RESTART: a blocking
     * read() of its own returns EINTR when its child exits, as it would
     * without asproc. Our handler takes the host's flags. */
    unblock_sigchld();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = plain_handler;
    sa.sa_flags = 0;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGCHLD, &sa, &old), 0);
    asp_loop *loop = NULL;
    asp_loop_opts lo = {0, ASP_SOURCE_SELFPIPE};
    ck_assert_int_eq(asp_loop_new(&loop, &lo), 0);
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "30000");
    int data[2], quit[2];
    ck_assert_int_eq(pipe2(data, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(quit, O_CLOEXEC), 0);
#ifdef __linux__
    pid_t self = (pid_t)syscall(SYS_gettid);
#else
    pid_t self = 0;
#endif
    restart_ctx c = {asp_proc_pid(p), self, data[0], quit[0], data[1]};
    /* The killer thread must not take the SIGCHLD itself. */
    sigset_t chld, prev;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &prev);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, killer, &c), 0);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    char b;
    ssize_t n = read(data[0], &b, 1);
    int e = errno;
    ck_assert_int_eq(write(quit[1], "q", 1), 1);
    pthread_join(th, NULL);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.signal, SIGKILL);
    asp_t_free(p);
    asp_t_loop_free(loop);
    ck_assert_int_eq(sigaction(SIGCHLD, &old, NULL), 0);
    for (int i = 0; i < 2; i++) {
        close(data[i]);
        close(quit[i]);
    }
    ck_assert_msg(n == -1 && e == EINTR,
                  "the host's read() was restarted (returned %zd)", n);
    ck_assert_int_ge(atomic_load(&plain_calls), 1);
}
END_TEST

/* The signals suite. */
Suite *suite_signals(void)
{
    Suite *s = suite_create("signals");
    TCase *tc = asp_t_case("signals", 30);
    tcase_add_test(tc, signals_host_handler_hears_exit_during_its_own_run);
    tcase_add_test(tc, signals_host_flags_kept_no_restart);
    tcase_add_test(tc, regress_selfpipe_with_ignored_siginfo_handler);
    tcase_add_test(tc, regress_handler_ring_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}
