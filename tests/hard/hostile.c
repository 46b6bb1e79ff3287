/*
 * hostile.c - host programs that make life hard, each behaving as the
 * contract says: 0/1/2 closed (also with a terminal), SIGCHLD ignored, the host's own SIGCHLD
 * handler, another thread reaping our child, SIGPIPE at its default,
 * SIGTERM blocked and ignored, a low RLIMIT_NOFILE, a child stopped and
 * continued.
 */
#define _GNU_SOURCE
#include "hard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether fd is open. */
static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* Whether SIGCHLD is blocked in this thread (the signalfd source). */
static int sigchld_blocked(void)
{
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, SIGCHLD) == 1;
}

/* ------------------------------------------------------- stdio closed */

START_TEST(hostile_stdio_closed_throughout)
{
    /* 0, 1 and 2 stay closed for the whole life of a loop: none of the
     * library's own fds may take those numbers (a child inheriting "its
     * stdin" would get our epoll fd or a pipe end), and children still
     * get exactly what was asked for. */
    int save[3];
    for (int i = 0; i < 3; i++) {
        save[i] = fcntl(i, F_DUPFD_CLOEXEC, 100);
        ck_assert_int_ge(save[i], 0);
        close(i);
    }
    int ok = 1;
    asp_loop *loop = NULL;
    int r = asp_loop_new(&loop, NULL);
    ok &= r == 0 && !is_open(0) && !is_open(1) && !is_open(2);

    /* All three piped, through communicate. */
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    const char *echo[] = {asp_t_child_path(), "echo", "esay", "E", NULL};
    asp_proc *p = NULL;
    int sr = r == 0 ? asp_spawn(loop, &p, echo, &o) : r;
    ok &= !is_open(0) && !is_open(1) && !is_open(2);
    asp_result res = {0};
    asp_comm_opts co = {0};
    co.input = "abc";
    co.input_len = 3;
    int cr = sr == 0 ? asp_communicate(p, &co, &res) : sr;
    ok &= !is_open(0) && !is_open(1) && !is_open(2);
    if (sr == 0)
        asp_proc_free(p, ASP_FREE_DETACH);

    /* Inherited stdio: the child gets them closed, as the parent has
     * them; only the piped stdout is open. */
    o = asp_t_piped(1, 0, 0);
    const char *fds[] = {asp_t_child_path(), "fds", NULL};
    asp_proc *q = NULL;
    int qr = r == 0 ? asp_spawn(loop, &q, fds, &o) : r;
    char *listing = NULL;
    if (qr == 0) {
        (void)asp_stream_read_all(asp_proc_stdout(q), &listing);
        asp_status st;
        (void)asp_proc_wait(q, ASP_FOREVER, &st);
        asp_proc_free(q, ASP_FREE_DETACH);
    }
    ok &= !is_open(0) && !is_open(1) && !is_open(2);
    int fr = loop ? asp_loop_free(loop) : 0;

    for (int i = 0; i < 3; i++) {
        dup2(save[i], i);
        close(save[i]);
    }
    ck_assert_msg(ok, "a library fd landed on 0, 1 or 2");
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(sr, 0);
    ck_assert_int_eq(cr, 0);
    ck_assert_str_eq(res.out, "abc");
    ck_assert_str_eq(res.err, "E");
    ck_assert_int_eq(res.status.code, 0);
    asp_result_free(&res);
    ck_assert_int_eq(qr, 0);
    ck_assert_ptr_nonnull(listing);
    ck_assert_str_eq(listing, "1\n");
    asp_free(listing);
    ck_assert_int_eq(fr, 0);
}
END_TEST

START_TEST(hostile_stdio_closed_pty)
{
    /* A terminal in a host without 0-2: the master must not take one of
     * those numbers (the slave may, for the spawn's duration only), and
     * the child still gets the terminal on all three. */
    int save[3];
    for (int i = 0; i < 3; i++) {
        save[i] = fcntl(i, F_DUPFD_CLOEXEC, 100);
        ck_assert_int_ge(save[i], 0);
        close(i);
    }
    int ok = 1;
    asp_loop *loop = NULL;
    int r = asp_loop_new(&loop, NULL);
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < 3; i++)
        o.stdio[i].mode = ASP_STDIO_PTY;
    o.pty.flags = ASP_PTY_NOECHO;
    const char *argv[] = {asp_t_child_path(), "count", "tty", "fds", NULL};
    asp_proc *p = NULL;
    int sr = r == 0 ? asp_spawn(loop, &p, argv, &o) : r;
    ok &= !is_open(0) && !is_open(1) && !is_open(2);
    asp_result res = {0};
    asp_comm_opts co = {0};
    co.input = "abc";
    co.input_len = 3;
    int cr = sr == 0 ? asp_communicate(p, &co, &res) : sr;
    ok &= !is_open(0) && !is_open(1) && !is_open(2);
    if (sr == 0)
        asp_proc_free(p, ASP_FREE_DETACH);
    int fr = loop ? asp_loop_free(loop) : 0;
    for (int i = 0; i < 3; i++) {
        dup2(save[i], i);
        close(save[i]);
    }
    ck_assert_msg(ok, "a library fd landed on 0, 1 or 2");
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(sr, 0);
    ck_assert_int_eq(cr, 0);
    ck_assert_str_eq(res.out, "3\r\n1 1 1 ctty=1 fg=1 leader=1\r\n0 1 2\r\n");
    ck_assert_int_eq(res.status.code, 0);
    asp_result_free(&res);
    ck_assert_int_eq(fr, 0);
}
END_TEST

/* ---------------------------------------------------- SIGCHLD ignored */

START_TEST(hostile_sigchld_ignored)
{
    /* The kernel reaps children itself: statuses are lost, which the
     * library reports as ASP_EXIT_UNKNOWN -- and never hangs. */
    struct sigaction ign, old, after;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ck_assert_int_eq(sigaction(SIGCHLD, &ign, &old), 0);

    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "3");
    asp_status st;
    int r = asp_proc_wait(p, (int64_t)(10000 * hard_slowness()), &st);
    ck_assert_msg(r == 0, "wait: %s", asp_strerror(r));
    ck_assert_int_eq(st.kind, ASP_EXIT_UNKNOWN);
    ck_assert_int_eq(asp_proc_signal(p, SIGTERM), -ESRCH);
    asp_t_free(p);

    /* communicate still collects the output. */
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    p = ASP_T_SPAWN(loop, &o, "say", "out", "exit", "4");
    asp_comm_opts co = {0};
    co.timeout_ms = (int64_t)(10000 * hard_slowness());
    asp_result res;
    ck_assert_int_eq(asp_communicate(p, &co, &res), 0);
    ck_assert_str_eq(res.out, "out");
    ck_assert_int_eq(res.status.kind, ASP_EXIT_UNKNOWN);
    asp_result_free(&res);
    asp_t_free(p);
    asp_t_loop_free(loop);

    /* The host's choice is still in place. */
    ck_assert_int_eq(sigaction(SIGCHLD, NULL, &after), 0);
    ck_assert(!(after.sa_flags & SA_SIGINFO) && after.sa_handler == SIG_IGN);
    ck_assert_int_eq(sigaction(SIGCHLD, &old, NULL), 0);
}
END_TEST

/* --------------------------------------------- host's SIGCHLD handler */

static atomic_int host_calls;
static atomic_int host_pid_seen;

/* The host's own handler (SA_SIGINFO flavour). */
static void host_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    atomic_fetch_add(&host_calls, 1);
    atomic_store(&host_pid_seen, (int)si->si_pid);
}

START_TEST(hostile_host_sigchld_handler)
{
    struct sigaction sa, old, after;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = host_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGCHLD, &sa, &old), 0);
    atomic_store(&host_calls, 0);

    asp_loop *loop = asp_t_loop();
    for (int i = 0; i < 5; i++) {
        asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "6");
        asp_status st = asp_t_wait(p);
        ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
        ck_assert_int_eq(st.code, 6);
        asp_t_free(p);
    }
    int blocked = sigchld_blocked();
    asp_t_loop_free(loop);

    /* The host's handler ran (chained by the self-pipe source, untouched
     * by the pidfd one) -- unless the host blocked SIGCHLD itself, which
     * is what the signalfd source needs. */
    if (blocked)
        ck_assert_int_eq(atomic_load(&host_calls), 0);
    else
        ck_assert_int_ge(atomic_load(&host_calls), 1);
    /* And it is the one installed afterwards. */
    ck_assert_int_eq(sigaction(SIGCHLD, NULL, &after), 0);
    ck_assert((after.sa_flags & SA_SIGINFO) &&
              after.sa_sigaction == host_handler);
    ck_assert_int_eq(sigaction(SIGCHLD, &old, NULL), 0);
}
END_TEST

/* ------------------------------------------- another thread's waitpid */

typedef struct {
    pid_t pid;
    int delay_us;
    pid_t got;
    int err;
} reaper_arg;

/* The host's thread that reaps a child it does not own. */
static void *reaper(void *arg)
{
    reaper_arg *a = arg;
    if (a->delay_us)
        usleep((useconds_t)a->delay_us);
    int status;
    do
        a->got = waitpid(a->pid, &status, 0);
    while (a->got < 0 && errno == EINTR);
    a->err = a->got < 0 ? errno : 0;
    return NULL;
}

START_TEST(hostile_thread_waitpid_race)
{
    /* Whoever reaps first wins; the other side must learn it, and the
     * library must neither hang nor invent a status. */
    asp_loop *loop = asp_t_loop();
    int stolen = 0, ours = 0;
    for (int i = 0; i < 24; i++) {
        asp_proc *p =
            ASP_T_SPAWN(loop, NULL, "sleep", i % 3 ? "5" : "0", "exit", "5");
        reaper_arg a = {asp_proc_pid(p), (i % 4) * 1500, 0, 0};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, reaper, &a), 0);
        if (i % 2)
            usleep(20000); /* let the thread get there first, sometimes */
        asp_status st;
        int r = asp_proc_wait(p, (int64_t)(10000 * hard_slowness()), &st);
        pthread_join(th, NULL);
        ck_assert_msg(r == 0, "wait: %s", asp_strerror(r));
        if (a.got == a.pid) {
            stolen++;
            ck_assert_int_eq(st.kind, ASP_EXIT_UNKNOWN);
        } else {
            ours++;
            ck_assert_int_eq(a.err, ECHILD);
            ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
            ck_assert_int_eq(st.code, 5);
        }
        asp_t_free(p);
    }
    asp_t_loop_free(loop);
    ck_assert_int_eq(stolen + ours, 24);
}
END_TEST

/* ---------------------------------------------------- SIGPIPE default */

typedef struct {
    int done, err;
} drain_res;

/* Records a drain. */
static void drain_cb(asp_stream *s, int err, void *data)
{
    drain_res *d = data;
    (void)s;
    d->done = 1;
    d->err = err;
}

START_TEST(hostile_sigpipe_default)
{
    /* SIGPIPE kills by default and is unblocked: if the library let one
     * reach the process, this test process would die. */
    struct sigaction dfl, before, after;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ck_assert_int_eq(sigaction(SIGPIPE, &dfl, &before), 0);
    sigset_t pipe_only, mask0, mask1, pend;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &pipe_only, NULL);
    pthread_sigmask(SIG_BLOCK, NULL, &mask0);

    asp_loop *loop = asp_t_loop();
    /* communicate: the child closes stdin and exits; feeding 1 MiB into
     * the dead pipe just ends the feeding. */
    static char big[1 << 20];
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "close-stdin", "say", "bye", "exit", "2");
    asp_comm_opts co = {0};
    co.input = big;
    co.input_len = sizeof big;
    asp_result res;
    ck_assert_int_eq(asp_communicate(p, &co, &res), 0);
    ck_assert_str_eq(res.out, "bye");
    ck_assert_int_eq(res.status.code, 2);
    asp_result_free(&res);
    asp_t_free(p);

    /* Asynchronous write and drain to a child that already exited. */
    p = ASP_T_SPAWN(loop, &o, "exit", "0");
    asp_t_wait(p);
    asp_stream *in = asp_proc_stdin(p);
    int r = asp_stream_write(in, big, sizeof big);
    drain_res d = {0, 0};
    if (r == 0) {
        ck_assert_int_eq(asp_stream_drain_start(in, drain_cb, &d), 0);
        ck_assert_int_eq(asp_loop_run_until(loop, &d.done), 0);
        r = d.err;
    }
    ck_assert_int_eq(r, -EPIPE);
    ck_assert_int_eq(asp_stream_write(in, "x", 1), -EPIPE);
    asp_t_free(p);
    asp_t_loop_free(loop);

    /* Alive; disposition, mask and pending set as the host left them. */
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &after), 0);
    ck_assert(after.sa_handler == SIG_DFL);
    pthread_sigmask(SIG_BLOCK, NULL, &mask1);
    ck_assert_int_eq(sigismember(&mask1, SIGPIPE), 0);
    for (int s = 1; s < 32; s++)
        ck_assert_int_eq(sigismember(&mask0, s), sigismember(&mask1, s));
    sigpending(&pend);
    ck_assert_int_eq(sigismember(&pend, SIGPIPE), 0);
    ck_assert_int_eq(sigaction(SIGPIPE, &before, NULL), 0);
}
END_TEST

/* ------------------------------------------ SIGTERM blocked and ignored */

START_TEST(hostile_sigterm_blocked_and_ignored)
{
    /* The parent blocks and ignores SIGTERM (and a few more); the child
     * starts with an empty mask and every disposition at its default, so
     * terminate still terminates. */
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1};
    struct sigaction ign, old[5];
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigset_t blk, oldmask;
    sigemptyset(&blk);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(sigaction(sigs[i], &ign, &old[i]), 0);
        sigaddset(&blk, sigs[i]);
    }
    pthread_sigmask(SIG_BLOCK, &blk, &oldmask);

    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sigstate");
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "mask: ign:\n");
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);

    p = ASP_T_SPAWN(loop, NULL, "sleep", "30000");
    ck_assert_int_eq(asp_proc_terminate(p), 0);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGTERM);
    asp_t_free(p);

    /* The default escalation ends at its first step. */
    p = ASP_T_SPAWN(loop, NULL, "sleep", "30000");
    ck_assert_int_eq(asp_proc_stop(p, NULL, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGTERM);
    asp_t_free(p);
    asp_t_loop_free(loop);

    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(sigaction(sigs[i], &old[i], NULL), 0);
}
END_TEST

/* ------------------------------------------------------- low NOFILE */

START_TEST(hostile_low_nofile)
{
    /* A host with few fds to spare: sequential work keeps fitting (the
     * library holds no fd longer than it needs), and once the host itself
     * used them up, spawn says -EMFILE and works again afterwards. */
    struct rlimit old, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = asp_t_nofile_for(24);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);

    asp_loop *loop = asp_t_loop();
    for (int i = 0; i < 40; i++) {
        asp_spawn_opts o = asp_t_piped(1, 1, 1);
        asp_proc *p = ASP_T_SPAWN(loop, &o, "echo", "esay", "E");
        asp_comm_opts co = {0};
        co.input = "x";
        co.input_len = 1;
        asp_result res;
        ck_assert_int_eq(asp_communicate(p, &co, &res), 0);
        ck_assert_str_eq(res.out, "x");
        asp_result_free(&res);
        asp_t_free(p);
    }
    /* The host takes every fd left. */
    int held[64], nheld = 0;
    while (nheld < 64) {
        int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            ck_assert_int_eq(errno, EMFILE);
            break;
        }
        held[nheld++] = fd;
    }
    ck_assert_int_lt(nheld, 64);
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    const char *argv[] = {asp_t_child_path(), "exit", "0", NULL};
    asp_proc *p = NULL;
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EMFILE);
    ck_assert_ptr_null(p);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    p = ASP_T_SPAWN(loop, &o, "say", "back");
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "back");
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
}
END_TEST

/* -------------------------------------------------- stop and continue */

START_TEST(hostile_stop_continue)
{
    asp_loop *loop = asp_t_loop();
    /* The child's sleep runs on while it is stopped, so it must outlast
     * both rounds (about 0.6 s here, several seconds under valgrind). */
    char ms[32];
    snprintf(ms, sizeof ms, "%ld", (long)(1500 * hard_slowness()));
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", ms, "exit", "9");
    asp_status st;
    /* Stopped and continued twice: each change is a SIGCHLD (and a
     * pidfd-less scan) that must not look like an exit. */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(asp_proc_signal(p, SIGSTOP), 0);
        ck_assert_int_eq(asp_proc_wait(p, 300, &st), -ETIMEDOUT);
        ck_assert_int_eq(st.kind, ASP_EXIT_NONE);
        ck_assert_int_eq(asp_proc_signal(p, SIGCONT), 0);
        ck_assert_int_eq(asp_proc_wait(p, 0, &st), -ETIMEDOUT);
    }
    st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 9);
    asp_t_free(p);

    /* A stopped child still meets the escalation. */
    p = ASP_T_SPAWN(loop, NULL, "sleep", "30000");
    ck_assert_int_eq(asp_proc_signal(p, SIGSTOP), 0);
    asp_kill_opts k = {{{SIGTERM, 100}, {SIGKILL, 0}}, 0};
    ck_assert_int_eq(asp_proc_stop(p, &k, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert(st.signal == SIGTERM || st.signal == SIGKILL);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* The hostile suite. */
Suite *suite_hostile(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = asp_t_case("hostile", 60);
    tcase_add_test(tc, hostile_stdio_closed_throughout);
    tcase_add_test(tc, hostile_stdio_closed_pty);
    tcase_add_test(tc, hostile_sigchld_ignored);
    tcase_add_test(tc, hostile_host_sigchld_handler);
    tcase_add_test(tc, hostile_thread_waitpid_race);
    tcase_add_test(tc, hostile_sigpipe_default);
    tcase_add_test(tc, hostile_sigterm_blocked_and_ignored);
    tcase_add_test(tc, hostile_low_nofile);
    tcase_add_test(tc, hostile_stop_continue);
    suite_add_tcase(s, tc);
    return s;
}
