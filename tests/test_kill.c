/*
 * test_kill.c - the timed kill escalation: TERM-ignoring children end by
 * SIGKILL after the grace, obedient ones by SIGTERM at once; custom steps;
 * an implicit final SIGKILL; group mode reaching a grandchild; an already
 * exited child; wait_or_stop (with 0 on an exited child: no timeout);
 * bad options; no callback (fire and forget).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

START_TEST(kill_escalates_past_ignored_term)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "ignore-term", "say", "ready", "sleep", "10000");
    /* Wait until SIGTERM is really ignored. */
    char buf[8];
    ck_assert_int_eq(asp_stream_readexactly(asp_proc_stdout(p), buf, 5, NULL),
                     5);
    asp_kill_opts k = {{{SIGTERM, 200}, {SIGKILL, 0}}, 0};
    asp_status st;
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_proc_stop(p, &k, &st), 0);
    double el = asp_t_now_ms() - t0;
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGKILL);
    ck_assert_msg(el >= 195 && el < 2000, "took %.1f ms", el);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(kill_obedient_child_ends_by_term)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "10000");
    asp_status st;
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_proc_stop(p, NULL, &st), 0); /* default: TERM, 1 s */
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGTERM);
    ck_assert(asp_t_now_ms() - t0 < 900);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(kill_custom_steps_and_implicit_kill)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    /* SIGUSR1 first (kills it: default action). */
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "ignore-term", "say", "r", "sleep", "10000");
    char c;
    asp_stream_readexactly(asp_proc_stdout(p), &c, 1, NULL);
    asp_kill_opts k = {{{SIGTERM, 50}, {SIGUSR1, 500}}, 0};
    asp_status st;
    ck_assert_int_eq(asp_proc_stop(p, &k, &st), 0);
    ck_assert_int_eq(st.signal, SIGUSR1);
    asp_t_free(p);
    /* Steps that all fail: the appended SIGKILL ends it. */
    p = ASP_T_SPAWN(loop, &o, "ignore-term", "say", "r", "sleep", "10000");
    asp_stream_readexactly(asp_proc_stdout(p), &c, 1, NULL);
    asp_kill_opts k2 = {{{SIGTERM, 50}, {SIGTERM, 50}}, 0};
    ck_assert_int_eq(asp_proc_stop(p, &k2, &st), 0);
    ck_assert_int_eq(st.signal, SIGKILL);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(kill_group_reaches_grandchild)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.flags = ASP_SPAWN_NEW_PGROUP;
    /* The child exits on TERM; its grandchild ignores TERM and holds
     * stdout. Only the group's SIGKILL can end the grandchild. */
    asp_proc *p = ASP_T_SPAWN(loop, &o, "ignore-term", "grandchild", "20000",
                              "raise", "0", "say", "r", "sleep", "10000");
    char c;
    ck_assert_int_eq(asp_stream_readexactly(asp_proc_stdout(p), &c, 1, NULL),
                     1);
    pid_t pgid = asp_proc_pid(p);
    asp_kill_opts k = {{{SIGTERM, 300}, {SIGKILL, 0}}, ASP_KILL_GROUP};
    asp_status st;
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_proc_stop(p, &k, &st), 0);
    /* The child ignores TERM too here (ignore-term ran first): KILL. */
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert(asp_t_now_ms() - t0 < 5000);
    /* The whole group is gone: the grandchild met SIGKILL. Allow a moment
     * for it to die (an orphan that init does not reap stays a zombie:
     * that counts as gone). */
    double end = asp_t_now_ms() + 2000;
    while (asp_t_group_alive(pgid) && asp_t_now_ms() < end)
        usleep(5000);
    ck_assert_int_eq(asp_t_group_alive(pgid), 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(kill_group_continues_after_leader_exits)
{
    /* The leader dies on TERM; the grandchild ignores TERM. The escalation
     * continues against the group and the grandchild meets SIGKILL. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.flags = ASP_SPAWN_SETSID;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "ignore-term", "grandchild", "20000",
                              "say", "r", "sleep", "10000");
    char c;
    asp_stream_readexactly(asp_proc_stdout(p), &c, 1, NULL);
    /* Make the leader obedient again: it ignores TERM after the action,
     * so use SIGINT (default: terminate) as the first step instead. */
    pid_t pgid = asp_proc_pid(p);
    asp_kill_opts k = {{{SIGINT, 300}, {SIGKILL, 0}}, ASP_KILL_GROUP};
    asp_status st;
    ck_assert_int_eq(asp_proc_stop(p, &k, &st), 0);
    ck_assert_int_eq(st.signal, SIGINT); /* the leader went at once */
    double end = asp_t_now_ms() + 2000;
    while (asp_t_group_alive(pgid) && asp_t_now_ms() < end)
        usleep(5000);
    ck_assert_int_eq(asp_t_group_alive(pgid), 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(kill_already_exited_child)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "6");
    asp_t_wait(p);
    asp_status st;
    ck_assert_int_eq(asp_proc_stop(p, NULL, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 6);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(kill_wait_or_stop)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "10000");
    asp_status st;
    ck_assert_int_eq(asp_proc_wait_or_stop(p, 100, NULL, &st), -ETIMEDOUT);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGTERM);
    asp_t_free(p);
    p = ASP_T_SPAWN(loop, NULL, "exit", "1");
    ck_assert_int_eq(asp_proc_wait_or_stop(p, 5000, NULL, &st), 0);
    ck_assert_int_eq(st.code, 1);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(kill_wait_or_stop_zero_on_exited_child)
{
    /* The child exited before the call: 0 with its status, no
     * escalation, even with no time to wait at all. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "exit", "9");
    asp_t_until_exited(asp_proc_pid(p));
    asp_status st;
    ck_assert_int_eq(asp_proc_wait_or_stop(p, 0, NULL, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 9);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* Never called: the escalation is refused. */
static void unused_stop_cb(asp_proc *p, int err, const asp_status *st, void *d)
{
    (void)p;
    (void)err;
    (void)st;
    (void)d;
    ck_abort_msg("callback of a refused escalation");
}

typedef struct {
    int calls, err;
    asp_status st;
} stop_res;

/* Records the escalation's end. */
static void record_stop_cb(asp_proc *p, int err, const asp_status *st, void *d)
{
    stop_res *r = d;
    (void)p;
    r->calls++;
    r->err = err;
    r->st = *st;
}

START_TEST(kill_bad_options_and_already)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, NULL, "sleep", "10000");
    asp_kill_opts k = {{{SIGTERM, -1}}, 0};
    ck_assert_int_eq(asp_proc_stop_start(p, &k, unused_stop_cb, NULL), -EINVAL);
    asp_kill_opts k2 = {{{999, 10}}, 0};
    ck_assert_int_eq(asp_proc_stop_start(p, &k2, unused_stop_cb, NULL),
                     -EINVAL);
    asp_kill_opts k3 = {{{SIGTERM, 10}}, ASP_KILL_GROUP}; /* not a leader */
    ck_assert_int_eq(asp_proc_stop_start(p, &k3, unused_stop_cb, NULL),
                     -EINVAL);
    asp_kill_opts k4 = {{{SIGTERM, 10}}, 0x40};
    ck_assert_int_eq(asp_proc_stop_start(p, &k4, unused_stop_cb, NULL),
                     -EINVAL);
    ck_assert_int_eq(asp_proc_stop_start(NULL, NULL, NULL, NULL), -EINVAL);
    stop_res r = {0};
    ck_assert_int_eq(asp_proc_stop_start(p, NULL, record_stop_cb, &r), 0);
    ck_assert_int_eq(asp_proc_stop_start(p, NULL, record_stop_cb, &r),
                     -EALREADY);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.st.signal, SIGTERM);
    asp_t_free(p);
    /* Freeing during an escalation: -ECANCELED, child still reaped. */
    p = ASP_T_SPAWN(loop, NULL, "ignore-term", "sleep", "10000");
    memset(&r, 0, sizeof r);
    asp_proc_stop_start(p, NULL, record_stop_cb, &r);
    asp_proc_free(p, ASP_FREE_KILL);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.err, -ECANCELED);
    asp_t_loop_free(loop);
}
END_TEST

/* Stopping many children on Ctrl-C: no callback needed (fire and
 * forget); each is still reaped, and the loop runs until they are. */
START_TEST(kill_without_callback)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p[8];
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    for (int i = 0; i < 8; i++) {
        /* Odd ones ignore SIGTERM; "r" says the disposition is set. */
        if (i % 2)
            p[i] = ASP_T_SPAWN(loop, &o, "ignore-term", "say", "r", "sleep",
                               "10000");
        else
            p[i] = ASP_T_SPAWN(loop, &o, "say", "r", "sleep", "10000");
        char c;
        ck_assert_int_eq(asp_stream_read(asp_proc_stdout(p[i]), &c, 1), 1);
    }
    asp_kill_opts k = {{{SIGTERM, 50}}, 0};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(asp_proc_stop_start(p[i], &k, NULL, NULL), 0);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    for (int i = 0; i < 8; i++) {
        asp_status st;
        asp_proc_status(p[i], &st);
        ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
        ck_assert_int_eq(st.signal, (i % 2 ? SIGKILL : SIGTERM));
        asp_t_free(p[i]);
    }
    asp_t_loop_free(loop);
}
END_TEST

/* The kill suite. */
Suite *suite_kill(void)
{
    Suite *s = suite_create("kill");
    TCase *tc = asp_t_case("kill", 30);
    tcase_add_test(tc, kill_escalates_past_ignored_term);
    tcase_add_test(tc, kill_obedient_child_ends_by_term);
    tcase_add_test(tc, kill_custom_steps_and_implicit_kill);
    tcase_add_test(tc, kill_group_reaches_grandchild);
    tcase_add_test(tc, kill_group_continues_after_leader_exits);
    tcase_add_test(tc, kill_already_exited_child);
    tcase_add_test(tc, kill_wait_or_stop);
    tcase_add_test(tc, kill_wait_or_stop_zero_on_exited_child);
    tcase_add_test(tc, kill_bad_options_and_already);
    tcase_add_test(tc, kill_without_callback);
    suite_add_tcase(s, tc);
    return s;
}
