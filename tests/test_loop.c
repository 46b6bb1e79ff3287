/*
 * test_loop.c - run modes, liveness, stop, nesting, cross-thread wakeup
 * (none lost under a flood), embedding in a host poll(), bad input, the
 * wording of -ENOTSUP, user objects left started at asp_loop_free.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(loop_empty_returns_at_once)
{
    asp_loop *loop = asp_t_loop();
    ck_assert(!asp_loop_alive(loop));
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_ONCE), 0);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    ck_assert_int_eq(asp_loop_timeout(loop), -1);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(loop_bad_input)
{
    asp_loop *loop = NULL;
    ck_assert_int_eq(asp_loop_new(NULL, NULL), -EINVAL);
    ck_assert_int_eq(asp_loop_new(&loop, &(asp_loop_opts){.backend = 99}), -EINVAL);
    ck_assert_ptr_null(loop);
    ck_assert_int_eq(asp_loop_new(&loop, &(asp_loop_opts){.child_source = -1}), -EINVAL);
    ck_assert_int_eq(asp_loop_free(NULL), -EINVAL);
    ck_assert_int_eq(asp_loop_run(NULL, ASP_RUN_DEFAULT), -EINVAL);
    ck_assert_int_eq(asp_loop_run_until(NULL, &(int){0}), -EINVAL);
    ck_assert_int_eq(asp_loop_wakeup(NULL), -EINVAL);
    ck_assert_int_eq(asp_loop_fd(NULL), -EINVAL);
    ck_assert_int_lt(asp_loop_timeout(NULL), -1);
    loop = asp_t_loop();
    ck_assert_int_eq(asp_loop_run(loop, 7), -EINVAL);
    ck_assert_int_eq(asp_loop_run_until(loop, NULL), -EINVAL);
    /* Nothing can ever set the flag: refused instead of hanging. */
    int done = 0;
    ck_assert_int_eq(asp_loop_run_until(loop, &done), -EDEADLK);
    ck_assert_str_ne(asp_strerror(-EDEADLK), "unknown error");
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_timer t;
    asp_loop *loop;
    int nested_result;
} nest_ctx;

/* Tries to run the loop from inside its own callback. */
static void nest_cb(asp_timer *t, void *data)
{
    (void)t;
    nest_ctx *c = data;
    c->nested_result = asp_loop_run(c->loop, ASP_RUN_NOWAIT);
}

START_TEST(loop_runs_do_not_nest)
{
    asp_loop *loop = asp_t_loop();
    nest_ctx c = {.loop = loop, .nested_result = 1};
    asp_timer_init(loop, &c.t, nest_cb, &c);
    asp_timer_start(&c.t, 0, 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.nested_result, -EBUSY);
    ck_assert_int_eq(asp_loop_free(loop), 0);
}
END_TEST

typedef struct {
    asp_timer t;
    asp_loop *loop;
    int count;
} stop_ctx;

/* Stops the loop from a repeating timer. */
static void stop_cb(asp_timer *t, void *data)
{
    (void)t;
    stop_ctx *c = data;
    c->count++;
    asp_loop_stop(c->loop);
}

START_TEST(loop_stop_returns_with_work_left)
{
    asp_loop *loop = asp_t_loop();
    stop_ctx c = {.loop = loop};
    asp_timer_init(loop, &c.t, stop_cb, &c);
    asp_timer_start(&c.t, 1, 1);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 1);
    ck_assert_int_eq(c.count, 1);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 1);
    ck_assert_int_eq(c.count, 2);
    asp_timer_stop(&c.t);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(loop_once_blocks_until_timer)
{
    asp_loop *loop = asp_t_loop();
    stop_ctx c = {.loop = loop};
    asp_timer_init(loop, &c.t, stop_cb, &c);
    asp_timer_start(&c.t, 20, 0);
    double t0 = asp_t_now_ms();
    /* ONCE blocks in the poll until the timer, then runs it. */
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_ONCE), 0);
    ck_assert_int_eq(c.count, 1);
    ck_assert(asp_t_now_ms() - t0 >= 19.0);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_loop *loop;
    atomic_int calls;
    asp_timer guard;
} wake_ctx;

/* Runs on the loop thread after a wakeup. */
static void on_wake(asp_loop *loop, void *data)
{
    wake_ctx *c = data;
    atomic_fetch_add(&c->calls, 1);
    asp_loop_stop(loop);
}

/* Another thread wakes the loop after a short sleep. */
static void *waker(void *arg)
{
    wake_ctx *c = arg;
    usleep(50 * 1000);
    asp_loop_wakeup(c->loop);
    return NULL;
}

/* Fails the test if the wakeup never comes. */
static void guard_cb(asp_timer *t, void *data)
{
    (void)data;
    (void)t;
    ck_abort_msg("wakeup did not arrive");
}

START_TEST(loop_wakeup_from_other_thread)
{
    asp_loop *loop = asp_t_loop();
    wake_ctx c = {.loop = loop};
    asp_loop_on_wakeup(loop, on_wake, &c);
    /* Something must keep the loop blocking: a long timer. */
    asp_timer_init(loop, &c.guard, guard_cb, &c);
    asp_timer_start(&c.guard, 5000, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waker, &c), 0);
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 1);
    ck_assert_int_eq(atomic_load(&c.calls), 1);
    ck_assert(asp_t_now_ms() - t0 < 4000);
    pthread_join(th, NULL);
    /* Many wakeups before a run merge into at least one callback. */
    for (int i = 0; i < 100; i++)
        asp_loop_wakeup(loop);
    asp_loop_run(loop, ASP_RUN_NOWAIT);
    ck_assert_int_eq(atomic_load(&c.calls), 2);
    asp_timer_stop(&c.guard);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_io w;
    asp_timer t;
    int reads, timers;
} emb_ctx;

/* Reads one byte per call. */
static void emb_read(asp_io *w, int ev, void *data)
{
    emb_ctx *c = data;
    char b;
    (void)ev;
    if (read(asp_io_fd(w), &b, 1) == 1)
        c->reads++;
}

/* Counts timer runs. */
static void emb_timer(asp_timer *t, void *data)
{
    (void)t;
    emb_ctx *c = data;
    c->timers++;
}

START_TEST(loop_embedding_in_host_poll)
{
    asp_loop *loop = asp_t_loop();
    int bfd = asp_loop_fd(loop);
    if (asp_loop_backend(loop) == ASP_BACKEND_POLL) {
        /* No single fd: the host drives it with timeouts and NOWAIT. */
        ck_assert_int_eq(bfd, -ENOTSUP);
    } else {
        ck_assert_int_ge(bfd, 0);
    }
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    emb_ctx c = {0};
    asp_io_init(loop, &c.w, p[0], emb_read, &c);
    asp_io_start(&c.w, ASP_READ);
    asp_timer_init(loop, &c.t, emb_timer, &c);
    asp_timer_start(&c.t, 30, 0);
    int to = asp_loop_timeout(loop);
    ck_assert_int_ge(to, 1);
    ck_assert_int_le(to, 31);
    ck_assert_int_eq(write(p[1], "abc", 3), 3);

    /* The host loop: poll asproc's fd (or just sleep the timeout for the
     * poll backend), then one non-blocking iteration. */
    for (int rounds = 0; rounds < 100 && (c.reads < 3 || c.timers < 1); rounds++) {
        int t = asp_loop_timeout(loop);
        if (bfd >= 0) {
            struct pollfd pfd = {.fd = bfd, .events = POLLIN};
            poll(&pfd, 1, t < 0 ? 1000 : t);
        } else {
            struct pollfd pfd = {.fd = p[0], .events = POLLIN};
            poll(&pfd, 1, t < 0 ? 1000 : t);
        }
        ck_assert_int_ge(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    }
    ck_assert_int_eq(c.reads, 3);
    ck_assert_int_eq(c.timers, 1);
    ck_assert_int_eq(asp_loop_timeout(loop), -1);
    asp_io_stop(&c.w);
    close(p[0]);
    close(p[1]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(loop_reports_backend_and_source)
{
    asp_loop *loop = asp_t_loop();
    const char *want = getenv("ASP_BACKEND");
    if (want)
        ck_assert_str_eq(asp_loop_backend_name(loop), want);
    const char *src = getenv("ASP_CHILD_SOURCE");
    if (src)
        ck_assert_str_eq(asp_loop_child_source_name(loop), src);
    ck_assert_int_gt(asp_loop_child_source(loop), 0);
    asp_t_loop_free(loop);
    ck_assert_int_eq(asp_version(), ASP_VERSION);
    ck_assert_str_eq(asp_version_string(), ASP_VERSION_STRING);
}
END_TEST

START_TEST(loop_many_loops_no_fd_leak)
{
    asp_loop *loops[50];
    for (int i = 0; i < 50; i++)
        loops[i] = asp_t_loop();
    for (int i = 0; i < 50; i++)
        asp_t_loop_free(loops[i]);
}
END_TEST

START_TEST(loop_enotsup_wording_fits_every_caller)
{
    /* -ENOTSUP (the same number as -EOPNOTSUPP on Linux) comes from
     * asp_loop_new (a backend or source not built in or not supported
     * here), asp_loop_fd (the poll backend) and stream calls made on the
     * wrong direction: one wording, true for each of them. */
    static const char want[] = "not supported (not built in, not by this "
                               "kernel or backend, or not in this "
                               "direction of a stream)";
    ck_assert_str_eq(asp_strerror(-ENOTSUP), want);
    ck_assert_str_eq(asp_strerror(-EOPNOTSUPP), want);
    asp_loop *loop = asp_t_loop();
    if (asp_loop_backend(loop) == ASP_BACKEND_POLL)
        ck_assert_int_eq(asp_loop_fd(loop), -ENOTSUP);
    asp_spawn_opts o = asp_t_piped(0, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "count");
    char b;
    ck_assert_int_eq(asp_stream_read(asp_proc_stdin(p), &b, 1), -EOPNOTSUPP);
    asp_stream_close(asp_proc_stdin(p));
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
#if defined(__linux__) && !defined(ASP_FAKE_KQUEUE)
    /* No kqueue on Linux. */
    asp_loop *none = NULL;
    asp_loop_opts lo = {ASP_BACKEND_KQUEUE, 0};
    ck_assert_int_eq(asp_loop_new(&none, &lo), -ENOTSUP);
#endif
}
END_TEST

/* ---- a lost wakeup ---- */

typedef struct {
    asp_loop *loop;
    atomic_long calls;
    atomic_int quit;
    int lost;
} flood_ctx;

/* Counts wakeup callbacks. */
static void flood_wake_cb(asp_loop *loop, void *data)
{
    flood_ctx *c = data;
    (void)loop;
    atomic_fetch_add(&c->calls, 1);
}

/* Floods wakeups, then checks that one more is still heard. */
static void *flood_waker(void *arg)
{
    flood_ctx *c = arg;
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
    flood_ctx c;
    memset(&c, 0, sizeof c);
    c.loop = asp_t_loop();
    asp_loop_on_wakeup(c.loop, flood_wake_cb, &c);
    asp_timer t;
    asp_timer_init(c.loop, &t, idle_cb, NULL);
    asp_timer_start(&t, 100000, 0);
    pthread_t th;
    pthread_create(&th, NULL, flood_waker, &c);
    while (!atomic_load(&c.quit))
        asp_loop_run(c.loop, ASP_RUN_ONCE);
    pthread_join(th, NULL);
    ck_assert_msg(c.lost == 0, "a wakeup was lost in trial %d", c.lost);
    asp_timer_stop(&t);
    asp_t_loop_free(c.loop);
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

/* The loop suite. */
Suite *suite_loop(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = asp_t_case("loop", 10);
    tcase_add_test(tc, loop_empty_returns_at_once);
    tcase_add_test(tc, loop_bad_input);
    tcase_add_test(tc, loop_runs_do_not_nest);
    tcase_add_test(tc, loop_stop_returns_with_work_left);
    tcase_add_test(tc, loop_once_blocks_until_timer);
    tcase_add_test(tc, loop_wakeup_from_other_thread);
    tcase_add_test(tc, loop_embedding_in_host_poll);
    tcase_add_test(tc, loop_reports_backend_and_source);
    tcase_add_test(tc, loop_many_loops_no_fd_leak);
    tcase_add_test(tc, loop_enotsup_wording_fits_every_caller);
    tcase_add_test(tc, regress_loop_free_stops_user_objects);
    suite_add_tcase(s, tc);
    /* Hundreds of wakeup floods: a budget of its own. */
    TCase *flood = asp_t_case("loop-wakeup-flood", 60);
    tcase_add_test(flood, regress_wakeup_never_lost);
    suite_add_tcase(s, flood);
    return s;
}
