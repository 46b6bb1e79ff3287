/*
 * test_io.c - fd watchers: readiness on pipes and sockets, EOF/HUP as
 * readable, a closed reader as writable, stopping self/others inside a
 * callback, no stale event after close + reopen of the same number, one
 * watcher per fd, bad input; watchers that live long (the epoll backend
 * registers an fd only once it has lived a while), hundreds at once
 * (more than it keeps unregistered), files and devices refused or
 * accepted as the backend says, and a watcher started before an
 * embedding host asks for the loop's fd.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    asp_io w;
    int calls;
    int last_events;
    char buf[64];
    ssize_t got;
    int stop_on_call;
} rd_ctx;

/* Reads what is there and remembers the events. */
static void read_cb(asp_io *w, int events, void *data)
{
    rd_ctx *c = data;
    c->calls++;
    c->last_events = events;
    c->got = read(asp_io_fd(w), c->buf, sizeof c->buf);
    if (c->stop_on_call && c->calls >= c->stop_on_call)
        asp_io_stop(w);
}

START_TEST(io_pipe_readable)
{
    asp_loop *loop = asp_t_loop();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    rd_ctx c = {.stop_on_call = 1};
    ck_assert_int_eq(asp_io_init(loop, &c.w, p[0], read_cb, &c), 0);
    ck_assert_int_eq(asp_io_start(&c.w, ASP_READ), 0);
    ck_assert(asp_io_active(&c.w));
    /* Nothing written: a NOWAIT iteration delivers nothing. */
    asp_loop_run(loop, ASP_RUN_NOWAIT);
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(write(p[1], "hello", 5), 5);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.last_events, ASP_READ);
    ck_assert_int_eq(c.got, 5);
    ck_assert(!asp_io_active(&c.w));
    close(p[0]);
    close(p[1]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(io_socket_readable_and_writable)
{
    asp_loop *loop = asp_t_loop();
    int sv[2];
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
        0);
    rd_ctx c = {.stop_on_call = 1};
    asp_io_init(loop, &c.w, sv[0], read_cb, &c);
    /* An empty socket is writable at once. */
    ck_assert_int_eq(asp_io_start(&c.w, ASP_WRITE), 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.last_events, ASP_WRITE);
    /* Now read interest. */
    c.calls = 0;
    c.stop_on_call = 1;
    ck_assert_int_eq(asp_io_start(&c.w, ASP_READ), 0);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.last_events, ASP_READ);
    ck_assert_int_eq(c.got, 1);
    close(sv[0]);
    close(sv[1]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(io_eof_without_data_is_readable)
{
    asp_loop *loop = asp_t_loop();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    close(p[1]); /* hang-up with no data */
    rd_ctx c = {.stop_on_call = 1};
    asp_io_init(loop, &c.w, p[0], read_cb, &c);
    asp_io_start(&c.w, ASP_READ);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.last_events, ASP_READ);
    ck_assert_int_eq(c.got, 0); /* EOF */
    close(p[0]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(io_socket_hangup_is_readable)
{
    asp_loop *loop = asp_t_loop();
    int sv[2];
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
        0);
    close(sv[1]);
    rd_ctx c = {.stop_on_call = 1};
    asp_io_init(loop, &c.w, sv[0], read_cb, &c);
    asp_io_start(&c.w, ASP_READ);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.last_events, ASP_READ);
    ck_assert_int_eq(c.got, 0);
    close(sv[0]);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_io w;
    int calls, events;
} wr_ctx;

/* Stops at the first writability. */
static void writable_cb(asp_io *w, int events, void *data)
{
    wr_ctx *c = data;
    c->calls++;
    c->events = events;
    asp_io_stop(w);
}

START_TEST(io_closed_reader_makes_writer_writable)
{
    asp_loop *loop = asp_t_loop();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    /* Fill the pipe so it is not writable, then close the reader. */
    char buf[4096] = {0};
    while (write(p[1], buf, sizeof buf) > 0)
        ;
    wr_ctx c = {0};
    asp_io_init(loop, &c.w, p[1], writable_cb, &c);
    asp_io_start(&c.w, ASP_WRITE);
    asp_loop_run(loop, ASP_RUN_NOWAIT);
    ck_assert_int_eq(c.calls, 0);
    close(p[0]);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.events, ASP_WRITE);
    close(p[1]);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_io a, b;
    int pa[2], pb[2];
    int a_calls, b_calls;
    int reopen;
    asp_io c;
    int c_calls;
    asp_loop *loop;
} two_ctx;

/* Counts calls on the replacement watcher. */
static void c_cb(asp_io *w, int events, void *data)
{
    two_ctx *t = data;
    (void)events;
    t->c_calls++;
    asp_io_stop(w);
}

/* Whichever of a/b fires first stops (and closes) the other; with reopen,
 * a new pipe takes the closed number and gets a watcher at once. */
static void first_cb(asp_io *w, int events, void *data)
{
    two_ctx *t = data;
    (void)events;
    asp_io *other = (w == &t->a) ? &t->b : &t->a;
    int *op = (w == &t->a) ? t->pb : t->pa;
    if (w == &t->a)
        t->a_calls++;
    else
        t->b_calls++;
    asp_io_stop(w);
    asp_io_stop(other);
    int old = op[0];
    close(op[0]);
    close(op[1]);
    /* Scribble over the other watcher as if freed. */
    for (size_t i = 0; i < sizeof *other; i++)
        ((unsigned char *)other)[i] = 0x5a;
    if (t->reopen) {
        int np[2];
        ck_assert_int_eq(pipe2(np, O_CLOEXEC | O_NONBLOCK), 0);
        /* Give the new pipe's read end the closed fd's number. */
        if (np[0] != old) {
            ck_assert_int_eq(dup3(np[0], old, O_CLOEXEC), old);
            close(np[0]);
            np[0] = old;
        }
        asp_io_init(t->loop, &t->c, np[0], c_cb, t);
        asp_io_start(&t->c, ASP_READ);
        op[0] = np[0];
        op[1] = np[1];
    } else {
        op[0] = op[1] = -1;
    }
}

/* Runs the stop-other scenario; reopen chooses the stale-event variant. */
static void stop_other_case(int reopen)
{
    asp_loop *loop = asp_t_loop();
    two_ctx t = {.reopen = reopen, .loop = loop};
    ck_assert_int_eq(pipe2(t.pa, O_CLOEXEC | O_NONBLOCK), 0);
    ck_assert_int_eq(pipe2(t.pb, O_CLOEXEC | O_NONBLOCK), 0);
    asp_io_init(loop, &t.a, t.pa[0], first_cb, &t);
    asp_io_init(loop, &t.b, t.pb[0], first_cb, &t);
    asp_io_start(&t.a, ASP_READ);
    asp_io_start(&t.b, ASP_READ);
    /* Both readable before the poll, so both events come in one batch. */
    ck_assert_int_eq(write(t.pa[1], "a", 1), 1);
    ck_assert_int_eq(write(t.pb[1], "b", 1), 1);
    asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_int_eq(t.a_calls + t.b_calls, 1);
    /* The replacement pipe is empty: its watcher must not have been handed
     * the old fd's event. */
    ck_assert_int_eq(t.c_calls, 0);
    if (reopen) {
        ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_NOWAIT), 1);
        ck_assert_int_eq(t.c_calls, 0);
        asp_io_stop(&t.c);
    }
    for (int i = 0; i < 2; i++) {
        if (t.pa[i] >= 0)
            close(t.pa[i]);
        if (t.pb[i] >= 0)
            close(t.pb[i]);
    }
    asp_t_loop_free(loop);
}

START_TEST(io_stop_other_in_callback)
{
    stop_other_case(0);
}
END_TEST

START_TEST(io_no_stale_event_after_close_reopen)
{
    stop_other_case(1);
}
END_TEST

START_TEST(io_one_watcher_per_fd_and_bad_input)
{
    asp_loop *loop = asp_t_loop();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    rd_ctx a = {0}, b = {0};
    ck_assert_int_eq(asp_io_init(NULL, &a.w, p[0], read_cb, &a), -EINVAL);
    ck_assert_int_eq(asp_io_init(loop, &a.w, -1, read_cb, &a), -EINVAL);
    ck_assert_int_eq(asp_io_init(loop, NULL, p[0], read_cb, &a), -EINVAL);
    ck_assert_int_eq(asp_io_init(loop, &a.w, p[0], NULL, &a), -EINVAL);
    ck_assert_int_eq(asp_io_init(loop, &a.w, p[0], read_cb, &a), 0);
    ck_assert_int_eq(asp_io_init(loop, &b.w, p[0], read_cb, &b), 0);
    ck_assert_int_eq(asp_io_start(&a.w, 8), -EINVAL);
    ck_assert_int_eq(asp_io_start(&a.w, ASP_READ), 0);
    ck_assert_int_eq(asp_io_start(&b.w, ASP_READ), -EEXIST);
    ck_assert_int_eq(asp_io_start(&a.w, ASP_READ | ASP_WRITE), 0);
    ck_assert_int_eq(asp_io_start(&a.w, 0), 0);
    ck_assert(!asp_io_active(&a.w));
    ck_assert_int_eq(asp_io_start(&b.w, ASP_READ), 0);
    ck_assert_int_eq(asp_io_stop(&b.w), 0);
    ck_assert_int_eq(asp_io_stop(&b.w), 0);
    ck_assert_int_eq(asp_io_stop(NULL), -EINVAL);
    /* A bad fd is refused by the backend (epoll) or reported as an error
     * event (poll) -- either way the loop survives. */
    asp_io bad;
    asp_io_init(loop, &bad, 999, read_cb, &a);
    int r = asp_io_start(&bad, ASP_READ);
    if (asp_loop_backend(loop) == ASP_BACKEND_EPOLL)
        ck_assert_int_eq(r, -EBADF);
    asp_io_stop(&bad);
    close(p[0]);
    close(p[1]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(io_unref_watcher_returns_at_once)
{
    asp_loop *loop = asp_t_loop();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    rd_ctx c = {0};
    asp_io_init(loop, &c.w, p[0], read_cb, &c);
    asp_io_unref(&c.w);
    asp_io_start(&c.w, ASP_READ);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.calls, 0);
    asp_io_ref(&c.w);
    ck_assert(asp_loop_alive(loop));
    asp_io_stop(&c.w);
    close(p[0]);
    close(p[1]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(io_long_lived_watcher_gets_events)
{
    /* Idle through many polls (the epoll backend registers the fd with
     * epoll on the way), then data: it must still arrive, then EOF. */
    asp_loop *loop = asp_t_loop();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    rd_ctx c = {0};
    asp_io_init(loop, &c.w, p[0], read_cb, &c);
    ck_assert_int_eq(asp_io_start(&c.w, ASP_READ), 0);
    for (int i = 0; i < 100; i++)
        asp_loop_run(loop, ASP_RUN_NOWAIT);
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(write(p[1], "late", 4), 4);
    asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.got, 4);
    close(p[1]);
    asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_int_eq(c.calls, 2);
    ck_assert_int_eq(c.got, 0);
    asp_io_stop(&c.w);
    close(p[0]);
    asp_t_loop_free(loop);
}
END_TEST

#define MANY_WATCHERS 300

START_TEST(io_hundreds_of_watchers)
{
    /* More watchers than the epoll backend keeps unregistered: some go
     * to epoll at once, the rest are polled; every one fires once. */
    asp_loop *loop = asp_t_loop();
    static int p[MANY_WATCHERS][2];
    static rd_ctx c[MANY_WATCHERS];
    for (int i = 0; i < MANY_WATCHERS; i++) {
        ck_assert_int_eq(pipe2(p[i], O_CLOEXEC | O_NONBLOCK), 0);
        c[i] = (rd_ctx){.stop_on_call = 1};
        asp_io_init(loop, &c[i].w, p[i][0], read_cb, &c[i]);
        ck_assert_int_eq(asp_io_start(&c[i].w, ASP_READ), 0);
    }
    for (int i = MANY_WATCHERS - 1; i >= 0; i -= 2)
        ck_assert_int_eq(write(p[i][1], "x", 1), 1);
    for (int i = MANY_WATCHERS - 2; i >= 0; i -= 2)
        ck_assert_int_eq(write(p[i][1], "y", 1), 1);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    for (int i = 0; i < MANY_WATCHERS; i++) {
        ck_assert_int_eq(c[i].calls, 1);
        ck_assert_int_eq(c[i].got, 1);
        close(p[i][0]);
        close(p[i][1]);
    }
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(io_files_and_devices)
{
    /* epoll refuses a regular file at once (-EPERM), also where it delays
     * registering; /dev/null, which epoll cannot watch either, is either
     * refused at once or always ready -- never silent. */
    asp_loop *loop = asp_t_loop();
    int f = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(f, 0);
    rd_ctx c = {.stop_on_call = 1};
    asp_io_init(loop, &c.w, f, read_cb, &c);
    int r = asp_io_start(&c.w, ASP_READ);
    if (asp_loop_backend(loop) == ASP_BACKEND_EPOLL)
        ck_assert_int_eq(r, -EPERM);
    asp_io_stop(&c.w);
    close(f);
    int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(n, 0);
    rd_ctx d = {.stop_on_call = 1};
    asp_io_init(loop, &d.w, n, read_cb, &d);
    if (asp_io_start(&d.w, ASP_READ) == 0) {
        for (int i = 0; i < 40 && d.calls == 0; i++)
            asp_loop_run(loop, ASP_RUN_NOWAIT);
        ck_assert_int_eq(d.calls, 1);
    }
    asp_io_stop(&d.w);
    close(n);
    asp_t_loop_free(loop);
}
END_TEST

/* The io suite. */
Suite *suite_io(void)
{
    Suite *s = suite_create("io");
    TCase *tc = asp_t_case("io", 10);
    tcase_add_test(tc, io_pipe_readable);
    tcase_add_test(tc, io_socket_readable_and_writable);
    tcase_add_test(tc, io_eof_without_data_is_readable);
    tcase_add_test(tc, io_socket_hangup_is_readable);
    tcase_add_test(tc, io_closed_reader_makes_writer_writable);
    tcase_add_test(tc, io_stop_other_in_callback);
    tcase_add_test(tc, io_no_stale_event_after_close_reopen);
    tcase_add_test(tc, io_one_watcher_per_fd_and_bad_input);
    tcase_add_test(tc, io_unref_watcher_returns_at_once);
    tcase_add_test(tc, io_long_lived_watcher_gets_events);
    tcase_add_test(tc, io_hundreds_of_watchers);
    tcase_add_test(tc, io_files_and_devices);
    suite_add_tcase(s, tc);
    return s;
}
