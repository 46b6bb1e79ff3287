/*
 * test_wait.c - waiting: at the exit, not at pipe close; timeouts that
 * leave the child running; repeated and concurrent waits; cancel; a child
 * reaped by someone else; a stopped child is not an exited one; signals
 * after the reap; many children at once; freeing running children; the
 * loop's liveness while a child runs; the exit winning over a timeout due
 * at the same time (0 included); waits restarted from their callback; a
 * free from a cancel callback; a blocking wait after asp_loop_stop.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(wait_completes_at_exit_not_pipe_close)
{
    /* A grandchild holds stdout for 3 s; the child exits at once. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "grandchild", "3000", "exit", "7");
    double t0 = asp_t_now_ms();
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 7);
    ck_assert_msg(asp_t_now_ms() - t0 < 2000, "wait waited for the pipe");
    asp_t_free(p);
    asp_t_loop_free(loop);
    /* The grandchild is not ours to reap; let it finish. */
    usleep(50000);
}
END_TEST

START_TEST(wait_timeout_leaves_child_running)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "600", "exit", "4");
    asp_status st;
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_proc_wait(p, 100, &st), -ETIMEDOUT);
    double el = asp_t_now_ms() - t0;
    ck_assert_msg(el >= 99 && el < 500, "timeout took %.1f ms", el);
    ck_assert_int_eq(asp_proc_status(p, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_NONE);
    ck_assert_int_eq(asp_proc_signal(p, 0), 0); /* still there */
    ck_assert_int_eq(asp_proc_wait(p, 0, &st), -ETIMEDOUT);
    st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 4);
    /* Again and again: the same status. */
    for (int i = 0; i < 3; i++) {
        asp_status again;
        ck_assert_int_eq(asp_proc_wait(p, 0, &again), 0);
        ck_assert_int_eq(again.kind, ASP_EXIT_CODE);
        ck_assert_int_eq(again.code, 4);
    }
    ck_assert_int_eq(asp_proc_wait(p, -5, &st), -EINVAL);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_wait w;
    int calls, err;
    asp_status st;
    int order;
    int *counter;
    asp_stream *then_close; /* closed by the callback (NULL: none) */
} waiter;

/* Records a wait's completion and its order. */
static void waiter_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    (void)w;
    waiter *x = data;
    x->calls++;
    x->err = err;
    x->st = *st;
    x->order = (*x->counter)++;
    if (x->then_close)
        asp_stream_close(x->then_close);
}

START_TEST(wait_concurrent_waiters_same_status)
{
    /* The child exits only once its stdin is closed, which the timed-out
     * wait does: that timeout comes first however slow the machine. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(0, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "echo", "exit", "9");
    waiter ws[4];
    int counter = 0;
    memset(ws, 0, sizeof ws);
    ws[3].then_close = asp_proc_stdin(p);
    for (int i = 0; i < 4; i++) {
        ws[i].counter = &counter;
        ck_assert_int_eq(asp_proc_wait_start(&ws[i].w, p,
                                             i == 3 ? 10 : ASP_FOREVER,
                                             waiter_cb, &ws[i]),
                         0);
    }
    ck_assert_int_eq(
        asp_proc_wait_start(&ws[0].w, p, ASP_FOREVER, waiter_cb, &ws[0]),
        -EBUSY);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ws[i].calls, 1);
        ck_assert_int_eq(ws[i].err, 0);
        ck_assert_int_eq(ws[i].st.code, 9);
    }
    /* Started in order 0, 1, 2: completed in that order, after the
     * timed-out one. */
    ck_assert_int_eq(ws[3].err, -ETIMEDOUT);
    ck_assert_int_eq(ws[3].order, 0);
    ck_assert_int_eq(ws[0].order, 1);
    ck_assert_int_eq(ws[1].order, 2);
    ck_assert_int_eq(ws[2].order, 3);
    /* A wait after the reap completes in the next iteration, not inside
     * asp_wait_start. */
    ck_assert_int_eq(
        asp_proc_wait_start(&ws[0].w, p, ASP_FOREVER, waiter_cb, &ws[0]), 0);
    ck_assert_int_eq(ws[0].calls, 1);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(ws[0].calls, 2);
    ck_assert_int_eq(ws[0].st.code, 9);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_cancel)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "100");
    waiter x;
    int counter = 0;
    memset(&x, 0, sizeof x);
    x.counter = &counter;
    asp_proc_wait_start(&x.w, p, ASP_FOREVER, waiter_cb, &x);
    ck_assert_int_eq(asp_wait_cancel(&x.w), 0);
    ck_assert_int_eq(x.calls, 1);
    ck_assert_int_eq(x.err, -ECANCELED);
    ck_assert_int_eq(asp_wait_cancel(&x.w), -EALREADY);
    ck_assert_int_eq(asp_wait_cancel(NULL), -EINVAL);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_reaped_by_someone_else_is_unknown)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "3");
    int status;
    /* The host reaps our child behind our back. */
    ck_assert_int_eq(waitpid(asp_proc_pid(p), &status, 0), asp_proc_pid(p));
    asp_status st;
    ck_assert_int_eq(asp_proc_wait(p, 5000, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_UNKNOWN);
    ck_assert_int_eq(asp_proc_signal(p, SIGTERM), -ESRCH);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_stopped_child_is_not_exited)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "300", "exit", "5");
    ck_assert_int_eq(asp_proc_signal(p, SIGSTOP), 0);
    asp_status st;
    ck_assert_int_eq(asp_proc_wait(p, 500, &st), -ETIMEDOUT);
    ck_assert_int_eq(st.kind, ASP_EXIT_NONE);
    ck_assert_int_eq(asp_proc_signal(p, SIGCONT), 0);
    st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 5);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_signal_after_reap_is_esrch)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "0");
    asp_t_wait(p);
    ck_assert_int_eq(asp_proc_signal(p, SIGKILL), -ESRCH);
    ck_assert_int_eq(asp_proc_terminate(p), -ESRCH);
    ck_assert_int_eq(asp_proc_kill(p), -ESRCH);
    ck_assert_int_eq(asp_proc_signal(p, -1), -EINVAL);
    ck_assert_int_eq(asp_proc_signal(NULL, 0), -EINVAL);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_hundred_children_exit_at_once)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *ps[100];
    for (int i = 0; i < 100; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", i);
        ps[i] = ASP_T_SPAWN(loop, NULL, "sleep", "300", "exit", code);
    }
    /* All exit within a few ms of each other; every one is found. */
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    for (int i = 0; i < 100; i++) {
        asp_status st;
        asp_proc_status(ps[i], &st);
        ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
        ck_assert_int_eq(st.code, i);
        asp_t_free(ps[i]);
    }
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_running_child_keeps_loop_alive)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "100");
    ck_assert(asp_loop_alive(loop));
    /* The run returns only once the child has exited (no timing: a
     * loaded machine may take its time between the spawn and the run). */
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    asp_status st;
    asp_proc_status(p, &st);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(asp_loop_free(loop), -EBUSY); /* handle still open */
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_free_running_child_detach_and_kill)
{
    asp_loop *loop = asp_t_loop();
    /* Detached: keeps running, reaped in the background by the loop. */
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "100");
    pid_t pid = asp_proc_pid(p);
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_DETACH), 0);
    ck_assert_int_eq(kill(pid, 0), 0);
    ck_assert(!asp_loop_alive(loop)); /* does not keep the loop alive */
    double end = asp_t_now_ms() + 3000;
    while (asp_t_children(NULL) > 0 && asp_t_now_ms() < end) {
        asp_loop_run(loop, ASP_RUN_NOWAIT);
        usleep(5000);
    }
    ck_assert_int_eq(asp_t_children(NULL), 0);
    /* Killed: SIGKILL now, reaped in the background. */
    p = ASP_T_SPAWN(loop, NULL, "sleep", "10000");
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_KILL), 0);
    end = asp_t_now_ms() + 3000;
    while (asp_t_children(NULL) > 0 && asp_t_now_ms() < end) {
        asp_loop_run(loop, ASP_RUN_NOWAIT);
        usleep(5000);
    }
    ck_assert_int_eq(asp_t_children(NULL), 0);
    /* A detached child still running when the loop is freed: killed and
     * reaped by asp_loop_free. */
    p = ASP_T_SPAWN(loop, NULL, "sleep", "10000");
    asp_proc_free(p, ASP_FREE_DETACH);
    asp_t_loop_free(loop);
    ck_assert_int_eq(asp_t_children(NULL), 0);
    ck_assert_int_eq(asp_proc_free(NULL, 0), -EINVAL);
}
END_TEST

typedef struct {
    asp_wait w;
    asp_proc *p;
    int freed;
} free_ctx;

/* Frees the process from inside its own wait callback. */
static void free_in_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    (void)w;
    free_ctx *c = data;
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(st->code, 2);
    ck_assert_int_eq(asp_proc_free(c->p, ASP_FREE_DETACH), 0);
    c->freed = 1;
}

START_TEST(wait_free_from_own_callback)
{
    asp_loop *loop = asp_t_loop();
    free_ctx c;
    memset(&c, 0, sizeof c);
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    c.p = ASP_T_SPAWN(loop, &o, "exit", "2");
    asp_proc_wait_start(&c.w, c.p, ASP_FOREVER, free_in_cb, &c);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.freed, 1);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_wait w[3];
    int calls[3];
    int errs[3];
} cancel_ctx;

/* Records completions of waits cancelled by a free. */
static void cancelled_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    cancel_ctx *c = data;
    int i = (int)(w - c->w);
    (void)st;
    c->calls[i]++;
    c->errs[i] = err;
}

START_TEST(wait_free_cancels_pending_waits)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "5000");
    cancel_ctx c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 3; i++)
        asp_proc_wait_start(&c.w[i], p, ASP_FOREVER, cancelled_cb, &c);
    asp_proc_free(p, ASP_FREE_KILL);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(c.calls[i], 1);
        ck_assert_int_eq(c.errs[i], -ECANCELED);
    }
    asp_t_loop_free(loop); /* reaps the killed child */
}
END_TEST

/* ---- the exit wins over a timeout due at the same time ---- */

START_TEST(wait_zero_timeout_on_exited_child)
{
    /* A timeout of 0 checks the child once: an exited child is reaped and
     * reported, never -ETIMEDOUT. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "3");
    asp_t_until_exited(asp_proc_pid(p));
    asp_status st;
    ck_assert_int_eq(asp_proc_wait(p, 0, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 3);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* Records one completion. */
static void once_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    waiter *x = data;
    (void)w;
    x->calls++;
    x->err = err;
    x->st = *st;
}

START_TEST(wait_exit_wins_over_timeout_due_together)
{
    /* The child has exited and both timeouts are due when the loop next
     * runs: whatever order it finds the timers and the exit event in, the
     * exit wins. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "5");
    waiter x[2];
    memset(x, 0, sizeof x);
    ck_assert_int_eq(asp_proc_wait_start(&x[0].w, p, 0, once_cb, &x[0]), 0);
    ck_assert_int_eq(asp_proc_wait_start(&x[1].w, p, 5, once_cb, &x[1]), 0);
    asp_t_until_exited(asp_proc_pid(p));
    usleep(20 * 1000);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(x[i].calls, 1);
        ck_assert_msg(x[i].err == 0, "wait %d: %s", i, asp_strerror(x[i].err));
        ck_assert_int_eq(x[i].st.code, 5);
    }
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* Zeroes its own asp_wait, as if its memory were freed and reused. */
static void zero_own_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    int *calls = data;
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(st->code, 2);
    (*calls)++;
    memset(w, 0, sizeof *w);
}

START_TEST(wait_callback_frees_its_wait_at_a_timer_found_exit)
{
    /* The exit is found by the wait's own timer (its timeout due with
     * the exit already there): the callback runs inside that timer and
     * may free its asp_wait (here the memory is zeroed, as a reuse would
     * do); the timer must not look at it afterwards. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "2");
    asp_t_until_exited(asp_proc_pid(p));
    asp_wait w = {0};
    int calls = 0;
    ck_assert_int_eq(asp_proc_wait_start(&w, p, 0, zero_own_cb, &calls), 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(calls, 1);
    asp_t_free(p);
    asp_t_loop_free(loop);
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
        ck_assert_int_eq(
            asp_proc_wait_start(&c->w, c->p, ASP_FOREVER, rewait_cb, c), 0);
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
static void nested_free_cb(asp_wait *w, int err, const asp_status *st,
                           void *data)
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
    double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec +
                          r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) *
                     1e3 +
                 (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec +
                          r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) /
                     1e3;
    ck_assert_msg(cpu < 150, "the wait used %.0f ms of CPU", cpu);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    int calls, err, code;
} reuse_ctx;

/* Records the completion, then zeroes its own asp_wait: the memory is the
 * caller's to reuse (or free) from here on. */
static void reuse_cb(asp_wait *w, int err, const asp_status *st, void *data)
{
    reuse_ctx *c = data;
    c->calls++;
    c->err = err;
    c->code = st->code;
    memset(w, 0, sizeof *w);
}

START_TEST(wait_timer_reap_callback_reuses_its_wait)
{
    /* The wait's timer finds the child exited and reaps it; the wait's
     * callback reuses the asp_wait's memory. The timer's code must not
     * look at the wait again (it read a counter from it and, zeroed,
     * completed it a second time: a crash; a use after free for a freed
     * one, which ASan saw in the stress suite). */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "3");
    siginfo_t si;
    ck_assert_int_eq(
        waitid(P_PID, (id_t)asp_proc_pid(p), &si, WEXITED | WNOWAIT),
        0); /* a zombie, not reaped */
    asp_wait w = {0};
    reuse_ctx c = {0};
    ck_assert_int_eq(asp_proc_wait_start(&w, p, 0, reuse_cb, &c), 0);
    asp_loop_run(loop, ASP_RUN_ONCE); /* timers first: the timer reaps */
    asp_loop_run(loop, ASP_RUN_NOWAIT);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.err, 0);
    ck_assert_int_eq(c.code, 3);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(wait_or_stop_timer_finds_exit_frees_record)
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

/* The wait suite. */
Suite *suite_wait(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = asp_t_case("wait", 30);
    tcase_add_test(tc, wait_completes_at_exit_not_pipe_close);
    tcase_add_test(tc, wait_timeout_leaves_child_running);
    tcase_add_test(tc, wait_concurrent_waiters_same_status);
    tcase_add_test(tc, wait_cancel);
    tcase_add_test(tc, wait_reaped_by_someone_else_is_unknown);
    tcase_add_test(tc, wait_stopped_child_is_not_exited);
    tcase_add_test(tc, wait_signal_after_reap_is_esrch);
    tcase_add_test(tc, wait_hundred_children_exit_at_once);
    tcase_add_test(tc, wait_running_child_keeps_loop_alive);
    tcase_add_test(tc, wait_free_running_child_detach_and_kill);
    tcase_add_test(tc, wait_free_from_own_callback);
    tcase_add_test(tc, wait_free_cancels_pending_waits);
    tcase_add_test(tc, wait_zero_timeout_on_exited_child);
    tcase_add_test(tc, wait_exit_wins_over_timeout_due_together);
    tcase_add_test(tc, wait_callback_frees_its_wait_at_a_timer_found_exit);
    tcase_add_test(tc,
                   regress_wait_restarted_in_callback_completes_next_iteration);
    tcase_add_test(tc, regress_free_from_cancel_callback_refused);
    tcase_add_test(tc, regress_blocking_wait_ignores_stop_without_spinning);
    tcase_add_test(tc, wait_timer_reap_callback_reuses_its_wait);
    tcase_add_test(tc, wait_or_stop_timer_finds_exit_frees_record);
    suite_add_tcase(s, tc);
    return s;
}
