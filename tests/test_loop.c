/*
 * test_loop.c - run modes, liveness, stop, nesting, cross-thread wakeup
 * (none lost under a flood), bad input, the wording of -ENOTSUP, user
 * objects left started at asp_loop_free, and embedding in a host loop:
 * the fd export under every backend, the timeout and fd callbacks
 * (children run by a host loop are in test_embed.c: this suite links
 * with the reactor alone).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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
    ck_assert_int_eq(asp_loop_new(&loop, &(asp_loop_opts){.backend = 99}),
                     -EINVAL);
    ck_assert_ptr_null(loop);
    ck_assert_int_eq(asp_loop_new(&loop, &(asp_loop_opts){.child_source = -1}),
                     -EINVAL);
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
    for (int rounds = 0; rounds < 100 && (c.reads < 3 || c.timers < 1);
         rounds++) {
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

/* ------------------------------------------------------- embedding */

/* An fd watcher that does nothing. */
static void noop_io(asp_io *w, int ev, void *data)
{
    (void)w;
    (void)ev;
    (void)data;
}

static const enum asp_backend all_backends[] = {
    ASP_BACKEND_EPOLL, ASP_BACKEND_KQUEUE, ASP_BACKEND_POLL};

START_TEST(loop_pollfds_every_backend)
{
    int tried = 0;
    for (size_t b = 0; b < 3; b++) {
        asp_loop *loop = asp_t_loop_on(all_backends[b]);
        if (!loop)
            continue;
        tried++;
        int p[2];
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        asp_io r, w;
        asp_io_init(loop, &r, p[0], noop_io, NULL);
        asp_io_init(loop, &w, p[1], noop_io, NULL);
        ck_assert_int_eq(asp_io_start(&r, ASP_READ), 0);
        ck_assert_int_eq(asp_io_start(&w, ASP_WRITE), 0);
        struct pollfd fds[64];
        memset(fds, 0xff, sizeof fds);
        int n = asp_loop_pollfds(loop, fds, 64);
        int bfd = asp_loop_fd(loop);
        if (bfd >= 0) {
            /* One fd stands for everything: the backend's own. */
            ck_assert_int_eq(n, 1);
            ck_assert_int_eq(fds[0].fd, bfd);
            ck_assert_int_eq(fds[0].events, POLLIN);
            ck_assert_int_eq(fds[0].revents, 0);
        } else {
            ck_assert_int_eq(bfd, -ENOTSUP);
            ck_assert_int_eq(asp_loop_backend(loop), ASP_BACKEND_POLL);
            /* The two watchers and the loop's wakeup fd, as asked. */
            ck_assert_int_eq(n, 3);
            ck_assert_int_eq(asp_t_events_of(fds, n, p[0]), POLLIN);
            ck_assert_int_eq(asp_t_events_of(fds, n, p[1]), POLLOUT);
            for (int i = 0; i < n; i++)
                ck_assert_int_eq(fds[i].revents, 0);
            /* A changed interest is exported changed, a stopped one not
             * at all. */
            ck_assert_int_eq(asp_io_start(&r, ASP_READ | ASP_WRITE), 0);
            n = asp_loop_pollfds(loop, fds, 64);
            ck_assert_int_eq(asp_t_events_of(fds, n, p[0]), POLLIN | POLLOUT);
            asp_io_stop(&w);
            n = asp_loop_pollfds(loop, fds, 64);
            ck_assert_int_eq(n, 2);
            ck_assert_int_eq(asp_t_events_of(fds, n, p[1]), -1);
            /* A list too short is cut and says how long it is. */
            struct pollfd one[2];
            memset(one, 0, sizeof one);
            one[1].fd = -77;
            ck_assert_int_eq(asp_loop_pollfds(loop, one, 1), 2);
            ck_assert_int_eq(one[1].fd, -77);
            ck_assert_int_eq(asp_loop_pollfds(loop, NULL, 0), 2);
        }
        /* What is exported is what a host must poll: a byte to read
         * makes it ready. */
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        n = asp_loop_pollfds(loop, fds, 64);
        ck_assert_int_ge(poll(fds, (nfds_t)n, 5000), 1);
        asp_io_stop(&r);
        asp_io_stop(&w);
        close(p[0]);
        close(p[1]);
        asp_t_loop_free(loop);
    }
    ck_assert_int_ge(tried, 1);
}
END_TEST

/* A timeout callback that does nothing. */
static void noop_tell(asp_loop *loop, int ms, void *data)
{
    (void)loop;
    (void)ms;
    (void)data;
}

/* An fd callback that does nothing. */
static void noop_fd(asp_loop *loop, int fd, int ev, void *data)
{
    (void)loop;
    (void)fd;
    (void)ev;
    (void)data;
}

START_TEST(loop_pollfds_bad_input)
{
    struct pollfd fds[4];
    ck_assert_int_eq(asp_loop_pollfds(NULL, fds, 4), -EINVAL);
    ck_assert_int_eq(asp_loop_on_timeout(NULL, noop_tell, NULL), -EINVAL);
    ck_assert_int_eq(asp_loop_on_fd(NULL, noop_fd, NULL), -EINVAL);
    asp_loop *loop = asp_t_loop();
    ck_assert_int_eq(asp_loop_pollfds(loop, fds, -1), -EINVAL);
    ck_assert_int_eq(asp_loop_pollfds(loop, NULL, 1), -EINVAL);
    ck_assert_int_ge(asp_loop_pollfds(loop, NULL, 0), 1);
    asp_t_loop_free(loop);
}
END_TEST

/* What the timeout callback was told. in_cb is set by the test's own
 * asproc callbacks: the timeout callback must never come inside one. */
typedef struct {
    asp_loop *loop;
    int calls, last, in_cb;
    int try_run, run_result, free_result;
} tell_rec;

/* Records a call of the timeout callback. */
static void on_tell(asp_loop *loop, int ms, void *data)
{
    tell_rec *r = data;
    ck_assert_msg(!r->in_cb, "timeout callback inside a run's callback");
    ck_assert_ptr_eq(loop, r->loop);
    /* What asp_loop_timeout says now: the same, or less by the time
     * since the value was taken (a slow run, valgrind's, sees a ms go
     * by); never more, and never a different kind (-1, 0, positive). */
    int now = asp_loop_timeout(loop);
    if (ms <= 0)
        ck_assert_int_eq(now, ms);
    else
        ck_assert_msg(now <= ms && now >= ms - 100 && now >= 0,
                      "told %d ms, asp_loop_timeout says %d", ms, now);
    r->calls++;
    r->last = ms;
    if (r->try_run) {
        r->run_result = asp_loop_run(loop, ASP_RUN_NOWAIT);
        r->free_result = asp_loop_free(loop);
    }
}

/* A timer callback that marks the time it runs. */
static void tell_timer_cb(asp_timer *t, void *data)
{
    (void)t;
    tell_rec *r = data;
    r->in_cb = 1;
    r->in_cb = 0;
}

START_TEST(loop_timeout_cb_follows_earliest_deadline)
{
    asp_loop *loop = asp_t_loop();
    tell_rec rec = {.loop = loop};
    asp_timer a, b, c;
    asp_timer_init(loop, &a, tell_timer_cb, &rec);
    asp_timer_init(loop, &b, tell_timer_cb, &rec);
    asp_timer_init(loop, &c, tell_timer_cb, &rec);
    /* Told at once: nothing to wait for. */
    ck_assert_int_eq(asp_loop_on_timeout(loop, on_tell, &rec), 0);
    ck_assert_int_eq(rec.calls, 1);
    ck_assert_int_eq(rec.last, -1);
    /* The first timer is the earliest (an hour: never reached here). */
    asp_timer_start(&a, 3600000, 0);
    ck_assert_int_eq(rec.calls, 2);
    ck_assert_int_gt(rec.last, 1000);
    /* A later one moves nothing. */
    asp_timer_start(&b, 7200000, 0);
    ck_assert_int_eq(rec.calls, 2);
    /* An earlier one does. */
    asp_timer_start(&c, 1000, 0);
    ck_assert_int_eq(rec.calls, 3);
    ck_assert_int_ge(rec.last, 0);
    ck_assert_int_le(rec.last, 1000);
    /* Restarting the earliest is told once (not its stop inside). */
    asp_timer_start(&c, 1000, 0);
    ck_assert_int_eq(rec.calls, 4);
    ck_assert_int_le(rec.last, 1000);
    /* Stopping a later one moves nothing; stopping the earliest does. */
    asp_timer_stop(&b);
    ck_assert_int_eq(rec.calls, 4);
    asp_timer_stop(&c);
    ck_assert_int_eq(rec.calls, 5);
    ck_assert_int_gt(rec.last, 1000);
    /* Expiry: due now, then, as the run that fired it returns, the next
     * deadline. */
    asp_timer_start(&c, 0, 0);
    ck_assert_int_eq(rec.calls, 6);
    ck_assert_int_eq(rec.last, 0);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_NOWAIT), 1);
    ck_assert(!asp_timer_active(&c));
    ck_assert_int_eq(rec.calls, 7);
    ck_assert_int_gt(rec.last, 1000);
    /* The last one stops: nothing to wait for. A stopped one again:
     * nothing moves. */
    asp_timer_stop(&a);
    ck_assert_int_eq(rec.calls, 8);
    ck_assert_int_eq(rec.last, -1);
    asp_timer_stop(&a);
    ck_assert_int_eq(rec.calls, 8);
    /* No callback, no calls; freeing makes none either. */
    ck_assert_int_eq(asp_loop_on_timeout(loop, NULL, NULL), 0);
    asp_timer_start(&a, 10, 0);
    ck_assert_int_eq(rec.calls, 8);
    asp_loop_on_timeout(loop, on_tell, &rec);
    ck_assert_int_eq(rec.calls, 9);
    ck_assert_int_le(rec.last, 10);
    asp_t_loop_free(loop);
    ck_assert_int_eq(rec.calls, 9);
}
END_TEST

typedef struct {
    tell_rec rec;
    asp_timer first, second;
    int done;
} defer_ctx;

/* Inside a run: starts another timer, which must not be told here. */
static void defer_first_cb(asp_timer *t, void *data)
{
    (void)t;
    defer_ctx *c = data;
    c->rec.in_cb = 1;
    asp_timer_start(&c->second, 1000, 0);
    asp_timer_stop(&c->second);
    asp_timer_start(&c->second, 1000, 0);
    c->rec.in_cb = 0;
}

/* Ends a blocking run. */
static void defer_second_cb(asp_timer *t, void *data)
{
    (void)t;
    defer_ctx *c = data;
    c->done = 1;
}

START_TEST(loop_timeout_cb_deferred_to_run_end)
{
    asp_loop *loop = asp_t_loop();
    defer_ctx c = {.rec = {.loop = loop}};
    asp_timer_init(loop, &c.first, defer_first_cb, &c);
    asp_timer_init(loop, &c.second, defer_second_cb, &c);
    asp_loop_on_timeout(loop, on_tell, &c.rec);
    asp_timer_start(&c.first, 0, 0);
    ck_assert_int_eq(c.rec.calls, 2);
    /* Three changes inside the run, told once as it returns. */
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_NOWAIT), 1);
    ck_assert_int_eq(c.rec.calls, 3);
    ck_assert_int_ge(c.rec.last, 0);
    ck_assert_int_le(c.rec.last, 1000);
    /* A run that moved nothing still tells, while a timer is active: the
     * host timer that started it may be spent. */
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_NOWAIT), 1);
    ck_assert_int_eq(c.rec.calls, 4);
    ck_assert_int_le(c.rec.last, 1000);
    /* A blocking run tells as it returns too: nothing left. */
    ck_assert_int_eq(asp_loop_run_until(loop, &c.done), 0);
    ck_assert_int_eq(c.rec.calls, 5);
    ck_assert_int_eq(c.rec.last, -1);
    /* With no timer, a run that moved nothing tells nothing. */
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    ck_assert_int_eq(c.rec.calls, 5);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(loop_timeout_cb_refuses_runs)
{
    asp_loop *loop = asp_t_loop();
    tell_rec rec = {
        .loop = loop, .try_run = 1, .run_result = 1, .free_result = 1};
    asp_loop_on_timeout(loop, on_tell, &rec);
    ck_assert_int_eq(rec.calls, 1);
    ck_assert_int_eq(rec.run_result, -EBUSY);
    ck_assert_int_eq(rec.free_result, -EBUSY);
    asp_loop_on_timeout(loop, NULL, NULL);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(loop_fd_cb_every_backend)
{
    for (size_t b = 0; b < 3; b++) {
        asp_loop *loop = asp_t_loop_on(all_backends[b]);
        if (!loop)
            continue;
        int single = asp_loop_fd(loop) >= 0;
        asp_t_fd_table h = {.n = 0};
        ck_assert_int_eq(asp_loop_on_fd(loop, asp_t_fd_table_cb, &h), 0);
        asp_t_fd_table_matches(&h, loop);
        int told = h.calls;
        int p[2];
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        asp_io r;
        asp_io_init(loop, &r, p[0], noop_io, NULL);
        asp_io_start(&r, ASP_READ);
        asp_t_fd_table_matches(&h, loop);
        asp_io_start(&r, ASP_READ | ASP_WRITE);
        asp_t_fd_table_matches(&h, loop);
        asp_io_start(&r, ASP_READ | ASP_WRITE); /* no change: not told */
        asp_io_stop(&r);
        asp_t_fd_table_matches(&h, loop);
        /* A single fd never changes; each fd: start, change, stop. */
        ck_assert_int_eq(h.calls - told, single ? 0 : 3);
        close(p[0]);
        close(p[1]);
        asp_t_loop_free(loop);
        /* Freeing stops every fd, each while still open. */
        ck_assert_int_eq(h.n, 0);
    }
}
END_TEST

START_TEST(loop_embedding_after_watchers_started)
{
    /* Watchers started before the host asks for the loop's fd (the epoll
     * backend may not have registered them yet) must wake the host too. */
    asp_loop *loop = asp_t_loop();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    emb_ctx c = {0};
    asp_io_init(loop, &c.w, p[0], emb_read, &c);
    ck_assert_int_eq(asp_io_start(&c.w, ASP_READ), 0);
    asp_loop_run(loop, ASP_RUN_NOWAIT);
    int bfd = asp_loop_fd(loop);
    if (bfd == -ENOTSUP) { /* the poll backend: nothing to embed */
        asp_io_stop(&c.w);
        close(p[0]);
        close(p[1]);
        asp_t_loop_free(loop);
        return;
    }
    ck_assert_int_ge(bfd, 0);
    ck_assert_int_eq(write(p[1], "a", 1), 1);
    struct pollfd pfd = {.fd = bfd, .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
    ck_assert_int_ge(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    ck_assert_int_eq(c.reads, 1);
    /* And a wakeup from elsewhere reaches the host as well. */
    ck_assert_int_eq(asp_loop_wakeup(loop), 0);
    ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
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
    tcase_add_test(tc, loop_pollfds_every_backend);
    tcase_add_test(tc, loop_pollfds_bad_input);
    tcase_add_test(tc, loop_timeout_cb_follows_earliest_deadline);
    tcase_add_test(tc, loop_timeout_cb_deferred_to_run_end);
    tcase_add_test(tc, loop_timeout_cb_refuses_runs);
    tcase_add_test(tc, loop_fd_cb_every_backend);
    tcase_add_test(tc, loop_embedding_after_watchers_started);
    tcase_add_test(tc, loop_reports_backend_and_source);
    tcase_add_test(tc, loop_many_loops_no_fd_leak);
    tcase_add_test(tc, regress_loop_free_stops_user_objects);
    suite_add_tcase(s, tc);
    /* Hundreds of wakeup floods: a budget of its own. */
    TCase *flood = asp_t_case("loop-wakeup-flood", 60);
    tcase_add_test(flood, regress_wakeup_never_lost);
    suite_add_tcase(s, flood);
    return s;
}
