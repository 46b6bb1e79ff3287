/*
 * test_embed.c - children run by a host loop of each kind: one that asks
 * before each poll (asp_loop_pollfds + asp_loop_timeout), one that is
 * only told (asp_loop_on_fd + asp_loop_on_timeout), under the run's
 * backend and the poll backend; a child whose only event is its exit;
 * a host that made a pidfd non-blocking. (The loop suite has the rest of
 * embedding: it links with the reactor alone.)
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static void kids_ready_cb(asp_stream *s, int err, const char *buf, size_t len,
                          void *data)
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
    k->stub = ASP_T_SPAWN(k->loop, &o, "ignore-term", "say", "ready\n", "sleep",
                          "30000");
    ck_assert_int_eq(asp_communicate_start(k->talk, NULL, kids_talk_cb, k), 0);
    ck_assert_int_eq(asp_stream_readline_start(asp_proc_stdout(k->stub), 0,
                                               kids_ready_cb, k),
                     0);
}

/* Checks what the children did, and frees them. */
static void kids_check(kids_ctx *k)
{
    ck_assert_int_eq(k->talk_err, 0);
    ck_assert_int_eq(k->talk_r.status.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(k->talk_r.status.code, 0);
    ck_assert_str_eq(k->talk_r.out, "line 0\nline 1\nline 2\n");
    ck_assert_int_eq(k->stub_err, -ETIMEDOUT);
    ck_assert_uint_eq(k->stub_r.flags &
                          (ASP_RESULT_TIMEOUT | ASP_RESULT_KILLED),
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
        kids_ctx k = {.loop = asp_t_loop_on(bes[b])};
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
    asp_t_fd_table t;
    double due; /* ms on the test clock; < 0: disarmed */
    const int *in_cb;
} push_host;

/* The fd callback. */
static void push_fd(asp_loop *loop, int fd, int ev, void *data)
{
    (void)loop;
    push_host *h = data;
    asp_t_fd_table_apply(&h->t, fd, ev);
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
        kids_ctx k = {.loop = asp_t_loop_on(bes[b])};
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
static void exit_wait_cb(asp_wait *w, int err, const asp_status *st, void *data)
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
        ck_assert_int_eq(
            asp_proc_wait_start(&w, p, ASP_FOREVER, exit_wait_cb, &e), 0);
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
    asp_loop *loop = asp_t_loop_on(ASP_BACKEND_POLL);
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

/* The embedding suite (processes in a host loop). */
Suite *suite_embed(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = asp_t_case("embed", 60);
    tcase_add_test(tc, loop_embedded_children_query_host);
    tcase_add_test(tc, loop_embedded_children_push_host);
    tcase_add_test(tc, loop_embedded_exit_without_fd_event);
    tcase_add_test(tc, loop_host_made_pidfd_nonblocking);
    suite_add_tcase(s, tc);
    return s;
}
