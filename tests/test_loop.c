/*
 * test_loop.c - run modes, liveness, stop, nesting, cross-thread wakeup,
 * bad input, and embedding in a host loop: the fd export under every
 * backend, the timeout and fd callbacks, and children run by a host loop
 * of each kind (one that asks before each poll, one that is only told).
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

/* ------------------------------------------------------- embedding */

/* A loop on backend be, or NULL when this build or kernel has no such
 * backend. The run's child-exit source may not go with another backend
 * (the kqueue source needs the kqueue backend): the self-pipe stands in. */
static asp_loop *loop_on(enum asp_backend be)
{
    asp_loop *loop = NULL;
    asp_loop_opts o = {.backend = be};
    int r = asp_loop_new(&loop, &o);
    if (r == -ENOTSUP) {
        o.child_source = ASP_SOURCE_SELFPIPE;
        r = asp_loop_new(&loop, &o);
    }
    if (r == -ENOTSUP && be != ASP_BACKEND_POLL)
        return NULL;
    ck_assert_msg(r == 0, "asp_loop_new(backend %d): %s", (int)be,
                  asp_strerror(r));
    return loop;
}

/* The events listed for fd, or -1 when fd is not in the list. */
static int events_of(const struct pollfd *list, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (list[i].fd == fd)
            return list[i].events;
    return -1;
}

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
        asp_loop *loop = loop_on(all_backends[b]);
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
            ck_assert_int_eq(events_of(fds, n, p[0]), POLLIN);
            ck_assert_int_eq(events_of(fds, n, p[1]), POLLOUT);
            for (int i = 0; i < n; i++)
                ck_assert_int_eq(fds[i].revents, 0);
            /* A changed interest is exported changed, a stopped one not
             * at all. */
            ck_assert_int_eq(asp_io_start(&r, ASP_READ | ASP_WRITE), 0);
            n = asp_loop_pollfds(loop, fds, 64);
            ck_assert_int_eq(events_of(fds, n, p[0]), POLLIN | POLLOUT);
            asp_io_stop(&w);
            n = asp_loop_pollfds(loop, fds, 64);
            ck_assert_int_eq(n, 2);
            ck_assert_int_eq(events_of(fds, n, p[1]), -1);
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
    ck_assert_int_eq(ms, asp_loop_timeout(loop));
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
    tell_rec rec = {.loop = loop, .try_run = 1, .run_result = 1,
                    .free_result = 1};
    asp_loop_on_timeout(loop, on_tell, &rec);
    ck_assert_int_eq(rec.calls, 1);
    ck_assert_int_eq(rec.run_result, -EBUSY);
    ck_assert_int_eq(rec.free_result, -EBUSY);
    asp_loop_on_timeout(loop, NULL, NULL);
    asp_t_loop_free(loop);
}
END_TEST

/* A host's fd table as the fd callback keeps it. */
typedef struct {
    struct pollfd fds[64];
    int n, calls;
} fd_table;

/* Applies one change told by the fd callback; a stop must come for an
 * fd the host was told to poll, and while it is still open. */
static void fd_table_apply(fd_table *h, int fd, int ev)
{
    int i = 0;
    while (i < h->n && h->fds[i].fd != fd)
        i++;
    if (ev == 0) {
        ck_assert_msg(i < h->n, "stop for fd %d, never polled", fd);
        ck_assert_msg(fcntl(fd, F_GETFD) >= 0, "fd %d closed before its stop", fd);
        h->fds[i] = h->fds[--h->n];
        return;
    }
    ck_assert_int_eq(ev & ~(POLLIN | POLLOUT), 0);
    if (i == h->n) {
        ck_assert_int_lt(h->n, 64);
        h->n++;
    }
    h->fds[i] = (struct pollfd){.fd = fd, .events = (short)ev};
}

/* The fd callback of fd_table. */
static void on_fd_change(asp_loop *loop, int fd, int ev, void *data)
{
    (void)loop;
    fd_table *h = data;
    h->calls++;
    fd_table_apply(h, fd, ev);
}

/* Asserts that the host's table is what asp_loop_pollfds exports. */
static void fd_table_matches(const fd_table *h, const asp_loop *loop)
{
    struct pollfd fds[64];
    int n = asp_loop_pollfds(loop, fds, 64);
    ck_assert_int_eq(n, h->n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(events_of(h->fds, h->n, fds[i].fd), fds[i].events);
}

START_TEST(loop_fd_cb_every_backend)
{
    for (size_t b = 0; b < 3; b++) {
        asp_loop *loop = loop_on(all_backends[b]);
        if (!loop)
            continue;
        int single = asp_loop_fd(loop) >= 0;
        fd_table h = {.n = 0};
        ck_assert_int_eq(asp_loop_on_fd(loop, on_fd_change, &h), 0);
        fd_table_matches(&h, loop);
        int told = h.calls;
        int p[2];
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        asp_io r;
        asp_io_init(loop, &r, p[0], noop_io, NULL);
        asp_io_start(&r, ASP_READ);
        fd_table_matches(&h, loop);
        asp_io_start(&r, ASP_READ | ASP_WRITE);
        fd_table_matches(&h, loop);
        asp_io_start(&r, ASP_READ | ASP_WRITE); /* no change: not told */
        asp_io_stop(&r);
        fd_table_matches(&h, loop);
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

/* Two children run by a host loop: one communicates its three lines;
 * one ignores SIGTERM, says it is ready, and is then given a 50 ms
 * communicate with an escalation whose SIGKILL comes after a 50 ms grace
 * -- both timers are asproc's, served through the host. */
typedef struct {
    asp_loop *loop;
    asp_proc *talk, *stub;
    int done, in_cb;
    int talk_err, stub_err;
    asp_result talk_r, stub_r;
} kids_ctx;

/* The talker's communicate. */
static void kids_talk_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    (void)p;
    kids_ctx *k = data;
    k->talk_err = err;
    k->talk_r = *r;
    k->done++;
}

/* The stubborn child's communicate. */
static void kids_stub_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    (void)p;
    kids_ctx *k = data;
    k->stub_err = err;
    k->stub_r = *r;
    k->done++;
}

/* The stubborn child ignores SIGTERM now: the clock starts. */
static void kids_ready_cb(asp_stream *s, int err, const char *buf,
                          size_t len, void *data)
{
    (void)s;
    kids_ctx *k = data;
    k->in_cb = 1;
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(len, 6);
    ck_assert(!memcmp(buf, "ready\n", 6));
    asp_comm_opts o = {.timeout_ms = 50, .flags = ASP_COMM_ESCALATE};
    o.kill.steps[0] = (asp_kill_step){SIGTERM, 50};
    o.kill.steps[1] = (asp_kill_step){SIGKILL, 0};
    ck_assert_int_eq(asp_communicate_start(k->stub, &o, kids_stub_cb, k), 0);
    k->in_cb = 0;
}

/* Spawns both children and starts what they are given to do. */
static void kids_start(kids_ctx *k)
{
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    k->talk = ASP_T_SPAWN(k->loop, &o, "lines", "3");
    k->stub = ASP_T_SPAWN(k->loop, &o, "ignore-term", "say", "ready\n",
                          "sleep", "30000");
    ck_assert_int_eq(asp_communicate_start(k->talk, NULL, kids_talk_cb, k), 0);
    ck_assert_int_eq(asp_stream_readline_start(asp_proc_stdout(k->stub), 0,
                                               kids_ready_cb, k), 0);
}

/* Checks what the children did, and frees them. */
static void kids_check(kids_ctx *k)
{
    ck_assert_int_eq(k->talk_err, 0);
    ck_assert_int_eq(k->talk_r.status.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(k->talk_r.status.code, 0);
    ck_assert_str_eq(k->talk_r.out, "line 0\nline 1\nline 2\n");
    ck_assert_int_eq(k->stub_err, -ETIMEDOUT);
    ck_assert_uint_eq(k->stub_r.flags & (ASP_RESULT_TIMEOUT | ASP_RESULT_KILLED),
                      ASP_RESULT_TIMEOUT | ASP_RESULT_KILLED);
    ck_assert_int_eq(k->stub_r.status.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(k->stub_r.status.signal, SIGKILL);
    asp_result_free(&k->talk_r);
    asp_result_free(&k->stub_r);
    asp_t_free(k->talk);
    asp_t_free(k->stub);
}

/* A host of the asking kind: before each poll it reads the fds and the
 * timeout; after it, one non-blocking run. It never blocks in asproc, so
 * a missing fd or timeout would hang it (and fail the test by its
 * timeout). */
static void query_host_run(asp_loop *loop, const int *done, int want)
{
    for (int rounds = 0; *done < want; rounds++) {
        ck_assert_msg(rounds < 100000, "the host loop spins");
        struct pollfd fds[64];
        int n = asp_loop_pollfds(loop, fds, 64);
        ck_assert(n >= 1 && n <= 64);
        poll(fds, (nfds_t)n, asp_loop_timeout(loop));
        ck_assert_int_ge(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    }
}

START_TEST(loop_embedded_children_query_host)
{
    const enum asp_backend bes[] = {ASP_BACKEND_DEFAULT, ASP_BACKEND_POLL};
    for (size_t b = 0; b < 2; b++) {
        kids_ctx k = {.loop = loop_on(bes[b])};
        kids_start(&k);
        query_host_run(k.loop, &k.done, 2);
        kids_check(&k);
        asp_t_loop_free(k.loop);
    }
}
END_TEST

/* A host of the told kind (libevent's shape): its fds and its one timer
 * come only from asproc's callbacks; its timer is spent once it fires. */
typedef struct {
    fd_table t;
    double due; /* ms on the test clock; < 0: disarmed */
    const int *in_cb;
} push_host;

/* The fd callback. */
static void push_fd(asp_loop *loop, int fd, int ev, void *data)
{
    (void)loop;
    push_host *h = data;
    fd_table_apply(&h->t, fd, ev);
}

/* The timeout callback: (re)arms the host timer. */
static void push_timeout(asp_loop *loop, int ms, void *data)
{
    (void)loop;
    push_host *h = data;
    ck_assert_msg(!*h->in_cb, "timeout callback inside a run's callback");
    h->due = ms < 0 ? -1 : asp_t_now_ms() + ms;
}

/* Runs the host until want children are done. */
static void push_host_run(asp_loop *loop, push_host *h, const int *done,
                          int want)
{
    for (int rounds = 0; *done < want; rounds++) {
        ck_assert_msg(rounds < 100000, "the host loop spins");
        int to = -1;
        if (h->due >= 0) {
            double left = h->due - asp_t_now_ms();
            to = left <= 0 ? 0 : (int)left + 1;
        }
        struct pollfd fds[64];
        memcpy(fds, h->t.fds, sizeof fds);
        poll(fds, (nfds_t)h->t.n, to);
        if (h->due >= 0 && asp_t_now_ms() >= h->due)
            h->due = -1; /* a one-shot host timer, spent */
        ck_assert_int_ge(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    }
}

START_TEST(loop_embedded_children_push_host)
{
    const enum asp_backend bes[] = {ASP_BACKEND_DEFAULT, ASP_BACKEND_POLL};
    for (size_t b = 0; b < 2; b++) {
        kids_ctx k = {.loop = loop_on(bes[b])};
        push_host h = {.due = -1, .in_cb = &k.in_cb};
        ck_assert_int_eq(asp_loop_on_fd(k.loop, push_fd, &h), 0);
        ck_assert_int_eq(asp_loop_on_timeout(k.loop, push_timeout, &h), 0);
        kids_start(&k);
        push_host_run(k.loop, &h, &k.done, 2);
        kids_check(&k);
        asp_t_loop_free(k.loop);
        ck_assert_int_eq(h.t.n, 0);
    }
}
END_TEST

/* A wait's outcome. */
typedef struct {
    int code, done, in_cb;
} exit_ctx;

/* Records a wait's outcome. */
static void exit_wait_cb(asp_wait *w, int err, const asp_status *st,
                         void *data)
{
    (void)w;
    exit_ctx *e = data;
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(st->kind, ASP_EXIT_CODE);
    e->code = st->code;
    e->done++;
}

START_TEST(loop_embedded_exit_without_fd_event)
{
    /* A child with no pipes that exits at once: only its exit wakes the
     * host. (With the kqueue backend on macOS, an exit before the watch
     * starts is queued and shows on no fd: asp_loop_timeout is then 0.)
     * Once for each kind of host. */
    asp_loop *loop = asp_t_loop();
    for (int i = 0; i < 2; i++) {
        asp_spawn_opts o = {0};
        o.stdio[0].mode = o.stdio[1].mode = o.stdio[2].mode = ASP_STDIO_NULL;
        asp_proc *p = ASP_T_SPAWN(loop, &o, "exit", "7");
        asp_wait w = {0};
        exit_ctx e = {.code = -1};
        ck_assert_int_eq(asp_proc_wait_start(&w, p, ASP_FOREVER, exit_wait_cb,
                                             &e), 0);
        if (i == 0) {
            query_host_run(loop, &e.done, 1);
        } else {
            push_host h = {.due = -1, .in_cb = &e.in_cb};
            ck_assert_int_eq(asp_loop_on_fd(loop, push_fd, &h), 0);
            ck_assert_int_eq(asp_loop_on_timeout(loop, push_timeout, &h), 0);
            push_host_run(loop, &h, &e.done, 1);
            asp_loop_on_fd(loop, NULL, NULL);
            asp_loop_on_timeout(loop, NULL, NULL);
        }
        ck_assert_int_eq(e.code, 7);
        asp_t_free(p);
    }
    asp_t_loop_free(loop);
}
END_TEST

/* The fd callback of a libuv-like host: uv_poll_init makes every fd it
 * is given non-blocking. */
static void nonblock_fd(asp_loop *loop, int fd, int ev, void *data)
{
    (void)loop;
    (void)data;
    if (ev == 0)
        return;
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

START_TEST(loop_host_made_pidfd_nonblocking)
{
    /* A detached child still running when its loop is freed is killed
     * and reaped there, by a blocking wait: also when a host that polls
     * the child's pidfd (the poll backend exports it) made the pidfd
     * non-blocking, which turns a blocking wait on it into EAGAIN. */
    asp_loop *loop = loop_on(ASP_BACKEND_POLL);
    ck_assert_int_eq(asp_loop_on_fd(loop, nonblock_fd, NULL), 0);
    asp_spawn_opts o = {0};
    o.stdio[0].mode = o.stdio[1].mode = o.stdio[2].mode = ASP_STDIO_NULL;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sleep", "30000");
    ck_assert_int_ge(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_DETACH), 0);
    asp_t_loop_free(loop);
    int z = 0;
    ck_assert_int_eq(asp_t_children(&z), 0);
    ck_assert_int_eq(z, 0);
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
    tcase_add_test(tc, loop_embedded_children_query_host);
    tcase_add_test(tc, loop_embedded_children_push_host);
    tcase_add_test(tc, loop_embedded_exit_without_fd_event);
    tcase_add_test(tc, loop_host_made_pidfd_nonblocking);
    tcase_add_test(tc, loop_reports_backend_and_source);
    tcase_add_test(tc, loop_many_loops_no_fd_leak);
    suite_add_tcase(s, tc);
    return s;
}
