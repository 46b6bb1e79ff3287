/*
 * test_regress.c - one test per bug a review of the library found, each
 * failing on the code before its fix: a lost cross-thread wakeup, input
 * used after communicate completed, handler chaining (SIG_IGN with
 * SA_SIGINFO; a ring of handlers), waits restarted from their callback,
 * a free from a cancel callback, SETSID with NEW_PGROUP, running out of
 * memory while capturing, a blocking helper after asp_loop_stop, objects
 * left behind by asp_loop_free, KILLED without a kill, a last line of
 * exactly the limit, bad input the header promised to refuse, and a
 * wait's record freed under its own timer.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- a lost wakeup ---- */

typedef struct {
    asp_loop *loop;
    atomic_long calls;
    atomic_int quit;
    int lost;
} wake_ctx;

/* Counts wakeup callbacks. */
static void wake_cb(asp_loop *loop, void *data)
{
    wake_ctx *c = data;
    (void)loop;
    atomic_fetch_add(&c->calls, 1);
}

/* Floods wakeups, then checks that one more is still heard. */
static void *waker(void *arg)
{
    wake_ctx *c = arg;
    for (int trial = 0; trial < 300 && !c->lost; trial++) {
        for (int k = 0; k < 2000; k++)
            asp_loop_wakeup(c->loop);
        usleep(1000);
        long before = atomic_load(&c->calls);
        asp_loop_wakeup(c->loop);
        int ok = 0;
        for (int i = 0; i < 2000 && !ok; i++) {
            ok = atomic_load(&c->calls) != before;
            if (!ok)
                usleep(500);
        }
        if (!ok)
            c->lost = trial + 1;
    }
    atomic_store(&c->quit, 1);
    asp_loop_wakeup(c->loop);
    return NULL;
}

/* Keeps the loop polling. */
static void idle_cb(asp_timer *t, void *data)
{
    (void)data;
    (void)t;
}

START_TEST(regress_wakeup_never_lost)
{
    wake_ctx c;
    memset(&c, 0, sizeof c);
    c.loop = asp_t_loop();
    asp_loop_on_wakeup(c.loop, wake_cb, &c);
    asp_timer t;
    asp_timer_init(c.loop, &t, idle_cb, NULL);
    asp_timer_start(&t, 100000, 0);
    pthread_t th;
    pthread_create(&th, NULL, waker, &c);
    while (!atomic_load(&c.quit))
        asp_loop_run(c.loop, ASP_RUN_ONCE);
    pthread_join(th, NULL);
    ck_assert_msg(c.lost == 0, "a wakeup was lost in trial %d", c.lost);
    asp_timer_stop(&t);
    asp_t_loop_free(c.loop);
}
END_TEST

/* ---- communicate's input after completion ---- */

START_TEST(regress_comm_input_not_used_after_completion)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    /* The child reads nothing until well after the timeout. */
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sleep", "400", "echo");
    size_t n = 4u << 20;
    char *in = malloc(n);
    memset(in, 'A', n);
    asp_comm_opts c = {0};
    c.input = in;
    c.input_len = n;
    c.timeout_ms = 100;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), -ETIMEDOUT);
    asp_result_free(&r);
    /* The caller may reuse its buffer now: the child must never see it. */
    memset(in, 'B', n);
    size_t len;
    char *out = asp_t_read_all(asp_proc_stdout(p), &len);
    ck_assert_uint_gt(len, 0);
    ck_assert_uint_lt(len, n);
    ck_assert_ptr_null(memchr(out, 'B', len));
    asp_free(out);
    free(in);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

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

/* ---- waits restarted from their own callback ---- */

typedef struct {
    asp_wait w;
    asp_proc *p;
    int calls;
} rewait_ctx;

/* Starts the same wait again, on the exited child. */
static void rewait_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    rewait_ctx *c = data;
    (void)w;
    (void)st;
    ck_assert_int_eq(err, 0);
    if (++c->calls < 3)
        ck_assert_int_eq(asp_proc_wait_start(&c->w, c->p, ASP_FOREVER, rewait_cb, c), 0);
}

START_TEST(regress_wait_restarted_in_callback_completes_next_iteration)
{
    asp_loop *loop = asp_t_loop();
    rewait_ctx c;
    memset(&c, 0, sizeof c);
    c.p = ASP_T_SPAWN(loop, NULL, "sleep", "50");
    asp_proc_wait_start(&c.w, c.p, ASP_FOREVER, rewait_cb, &c);
    while (c.calls == 0)
        asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_int_eq(c.calls, 1);
    asp_loop_run(loop, ASP_RUN_NOWAIT);
    ck_assert_int_eq(c.calls, 2);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.calls, 3);
    asp_t_free(c.p);
    asp_t_loop_free(loop);
}
END_TEST

/* ---- a free from a cancel callback ---- */

typedef struct {
    asp_wait w;
    asp_proc *p;
    int nested;
} nested_ctx;

/* Tries to free the process again while it is being freed. */
static void nested_free_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    (void)w;
    nested_ctx *c = data;
    (void)st;
    ck_assert_int_eq(err, -ECANCELED);
    c->nested = asp_proc_free(c->p, ASP_FREE_KILL);
}

START_TEST(regress_free_from_cancel_callback_refused)
{
    asp_loop *loop = asp_t_loop();
    nested_ctx c;
    memset(&c, 0, sizeof c);
    c.p = ASP_T_SPAWN(loop, NULL, "sleep", "5000");
    asp_proc_wait_start(&c.w, c.p, ASP_FOREVER, nested_free_cb, &c);
    ck_assert_int_eq(asp_proc_free(c.p, ASP_FREE_KILL), 0);
    ck_assert_int_eq(c.nested, -EINVAL);
    ck_assert(!asp_loop_alive(loop));
    asp_t_loop_free(loop);
}
END_TEST

/* ---- SETSID with NEW_PGROUP ---- */

START_TEST(regress_setsid_with_new_pgroup)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.flags = ASP_SPAWN_SETSID | ASP_SPAWN_NEW_PGROUP;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "ids");
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    int pid, pgid, sid;
    ck_assert_int_eq(sscanf(out, "%d %d %d", &pid, &pgid, &sid), 3);
    ck_assert_int_eq(pgid, pid);
    ck_assert_int_eq(sid, pid);
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ---- out of memory while capturing ---- */

static size_t refuse_over;

/* An allocator that refuses every block larger than refuse_over. */
static void *small_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return n > refuse_over ? NULL : malloc(n);
}

static void *small_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return n > refuse_over ? NULL : realloc(p, n);
}

static void small_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

START_TEST(regress_capture_out_of_memory_does_not_hang)
{
    asp_allocator a = {small_malloc, small_realloc, small_free, NULL};
    refuse_over = 100 * 1000;
    ck_assert_int_eq(asp_set_allocator(&a), 0);
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "10000000", "exit", "0");
    asp_comm_opts c = {0};
    c.timeout_ms = 20000;
    asp_result r;
    int e = asp_communicate(p, &c, &r);
    ck_assert_int_eq(e, -ENOMEM);
    ck_assert(!(r.flags & ASP_RESULT_TIMEOUT));
    ck_assert_int_eq(r.status.kind, ASP_EXIT_CODE); /* it ran to the end */
    ck_assert_uint_gt(r.out_len, 0);
    ck_assert_uint_lt(r.out_len, 10000000);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
    ck_assert_int_eq(asp_set_allocator(NULL), 0);
}
END_TEST

START_TEST(regress_write_is_all_or_nothing)
{
    asp_allocator a = {small_malloc, small_realloc, small_free, NULL};
    refuse_over = 200 * 1000;
    ck_assert_int_eq(asp_set_allocator(&a), 0);
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sleep", "100", "count");
    static char buf[1 << 20];
    /* The remainder could not be queued: nothing at all was written. */
    ck_assert_int_eq(asp_stream_write(asp_proc_stdin(p), buf, sizeof buf), -ENOMEM);
    ck_assert_int_eq(asp_stream_write(asp_proc_stdin(p), buf, 1000), 0);
    ck_assert_int_eq(asp_stream_close(asp_proc_stdin(p)), 0);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "1000\n");
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
    ck_assert_int_eq(asp_set_allocator(NULL), 0);
}
END_TEST

/* ---- a blocking helper after asp_loop_stop ---- */

/* Asks the loop to stop while a blocking wait runs. */
static void stop_cb(asp_timer *t, void *data)
{
    (void)t;
    asp_loop_stop(data);
}

START_TEST(regress_blocking_wait_ignores_stop_without_spinning)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "400");
    asp_timer t;
    asp_timer_init(loop, &t, stop_cb, loop);
    asp_timer_start(&t, 20, 0);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    asp_status st = asp_t_wait(p);
    getrusage(RUSAGE_SELF, &r1);
    ck_assert_int_eq(st.code, 0);
    /* CPU used while waiting ~400 ms: a spinning loop burns most of it. */
    double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
                          r0.ru_stime.tv_sec) * 1e3 +
                 (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
                          r0.ru_stime.tv_usec) / 1e3;
    ck_assert_msg(cpu < 150, "the wait used %.0f ms of CPU", cpu);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ---- objects left started at asp_loop_free ---- */

START_TEST(regress_loop_free_stops_user_objects)
{
    asp_loop *loop = asp_t_loop();
    asp_timer t;
    asp_timer_init(loop, &t, idle_cb, NULL);
    asp_timer_start(&t, 10000, 0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    asp_io w;
    asp_io_init(loop, &w, fds[0], (asp_io_cb)(void (*)(void))idle_cb, NULL);
    asp_io_start(&w, ASP_READ);
    asp_t_loop_free(loop);
    ck_assert(!asp_timer_active(&t));
    ck_assert(!asp_io_active(&w));
    ck_assert_int_eq(asp_timer_stop(&t), 0); /* harmless afterwards */
    ck_assert_int_eq(asp_io_stop(&w), 0);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* ---- KILLED only after a kill ---- */

START_TEST(regress_killed_only_when_killed)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.eof_grace_ms = 400;
    /* The child exits at once; a grandchild keeps stdout open. */
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "hi", "grandchild", "3000", "exit", "0");
    asp_comm_opts c = {0};
    c.timeout_ms = 150;
    c.flags = ASP_COMM_ESCALATE;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), -ETIMEDOUT);
    ck_assert(r.flags & ASP_RESULT_TIMEOUT);
    ck_assert(r.flags & ASP_RESULT_CUT);
    ck_assert(!(r.flags & ASP_RESULT_KILLED));
    ck_assert_int_eq(r.status.kind, ASP_EXIT_CODE);
    ck_assert_str_eq(r.out, "hi");
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
    usleep(20000);
}
END_TEST

/* ---- a last line of exactly the limit ---- */

START_TEST(regress_last_line_of_exactly_the_limit)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "abcd");
    char buf[16];
    ck_assert_int_eq(asp_stream_readline(asp_proc_stdout(p), buf, 4), 4);
    ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
    asp_t_wait(p);
    asp_t_free(p);
    /* One byte more is over. */
    p = ASP_T_SPAWN(loop, &o, "say", "abcde");
    ck_assert_int_eq(asp_stream_readline(asp_proc_stdout(p), buf, 4), -EMSGSIZE);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ---- bad input the header refuses ---- */

/* Never called. */
static void unused_read_cb(asp_stream *s, int err, const char *b, size_t n, void *d)
{
    (void)s;
    (void)err;
    (void)b;
    (void)n;
    (void)d;
}

START_TEST(regress_documented_bad_input)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = NULL;
    const char *argv[] = {asp_t_child_path(), NULL};
    asp_spawn_opts o = {0};
    o.read_buffer = (size_t)2 << 30;
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o.read_buffer = 0;
    o.pipe_size = (size_t)2 << 30;
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o.pipe_size = 0;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    asp_fdmap m = {1, (int)(rl.rlim_cur < 0x7fffffff ? rl.rlim_cur : 0x7ffffffe)};
    o.pass_fds = &m;
    o.npass_fds = 1;
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    memset(&o, 0, sizeof o);
    o.stdio[1].mode = ASP_STDIO_PIPE;
    p = ASP_T_SPAWN(loop, &o, "say", "x");
    asp_stream *s = asp_proc_stdout(p);
    ck_assert_int_eq(asp_stream_readuntil_start(s, "0123456789abcdefg", 17, 0, unused_read_cb, NULL), -EINVAL);
    asp_comm_opts c = {0};
    c.timeout_ms = ASP_FOREVER; /* means "none" */
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
    ck_assert_str_eq(r.out, "x");
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ---- a wait's record freed under its timer ---- */

START_TEST(regress_wait_or_stop_timer_finds_exit)
{
    /* The child exits before the loop runs; a zero timeout makes the
     * wait's timer fire before the exit event is dispatched. The timer
     * reaps the child, which completes the wait, whose callback frees the
     * record the wait lives in: the timer must not look at the wait
     * afterwards (it did: a read of freed memory, which ASan and valgrind
     * report; the stress suite found it). */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "4");
    while (asp_t_children(NULL) > 0) {
        int z = 0;
        asp_t_children(&z);
        if (z > 0)
            break; /* exited, not yet reaped */
        usleep(1000);
    }
    asp_status st;
    ck_assert_int_eq(asp_proc_wait_or_stop(p, 0, NULL, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 4);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* The regression suite. */
Suite *suite_regress(void)
{
    Suite *s = suite_create("regress");
    TCase *tc = asp_t_case("regress", 60);
    tcase_add_test(tc, regress_wakeup_never_lost);
    tcase_add_test(tc, regress_comm_input_not_used_after_completion);
    tcase_add_test(tc, regress_selfpipe_with_ignored_siginfo_handler);
    tcase_add_test(tc, regress_handler_ring_is_bounded);
    tcase_add_test(tc, regress_wait_restarted_in_callback_completes_next_iteration);
    tcase_add_test(tc, regress_free_from_cancel_callback_refused);
    tcase_add_test(tc, regress_setsid_with_new_pgroup);
    tcase_add_test(tc, regress_capture_out_of_memory_does_not_hang);
    tcase_add_test(tc, regress_write_is_all_or_nothing);
    tcase_add_test(tc, regress_blocking_wait_ignores_stop_without_spinning);
    tcase_add_test(tc, regress_loop_free_stops_user_objects);
    tcase_add_test(tc, regress_killed_only_when_killed);
    tcase_add_test(tc, regress_last_line_of_exactly_the_limit);
    tcase_add_test(tc, regress_documented_bad_input);
    tcase_add_test(tc, regress_wait_or_stop_timer_finds_exit);
    suite_add_tcase(s, tc);
    return s;
}
