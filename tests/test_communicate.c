/*
 * test_communicate.c - communicate and run: no input, empty input, large
 * input, large output both ways at once, a timeout that keeps the partial
 * output (with and without escalation), a grandchild holding the pipe,
 * the cap, non-piped streams, data read before communicate, run(), the
 * exit and EOF winning over a timeout due at the same time, no fd held
 * afterwards, the input never used after completion, memory running out
 * while capturing, KILLED only after a kill.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Checks the child's letter pattern. */
static void check_pattern(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != 'a' + (int)(i % 26))
            ck_abort_msg("byte %zu differs", i);
}

START_TEST(comm_no_input_and_empty_input)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    for (int k = 0; k < 2; k++) {
        asp_proc *p = ASP_T_SPAWN(loop, &o, "count", "esay", "e");
        asp_comm_opts c = {0};
        if (k == 1)
            c.input = ""; /* empty: same as none */
        asp_result r;
        ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
        ck_assert_str_eq(r.out, "0\n");
        ck_assert_uint_eq(r.out_len, 2);
        ck_assert_str_eq(r.err, "e");
        ck_assert_int_eq(r.status.kind, ASP_EXIT_CODE);
        ck_assert_int_eq(r.status.code, 0);
        ck_assert_uint_eq(r.flags, 0);
        asp_result_free(&r);
        ck_assert_ptr_null(r.out);
        asp_t_free(p);
    }
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_large_both_directions)
{
    /* 8 MiB to stderr before reading stdin, then 8 MiB echoed back: any
     * order of blocking would deadlock without concurrent feeding and
     * reading. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "err", "8388608", "echo");
    size_t n = 8u << 20;
    char *in = malloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    asp_comm_opts c = {0};
    c.input = in;
    c.input_len = n;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
    ck_assert_uint_eq(r.out_len, n);
    ck_assert_uint_eq(r.err_len, n);
    check_pattern(r.out, n);
    check_pattern(r.err, n);
    ck_assert_int_eq(r.status.code, 0);
    asp_result_free(&r);
    free(in);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_timeout_keeps_partial_output)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "say", "partial", "esay", "E", "sleep", "10000");
    asp_comm_opts c = {0};
    c.timeout_ms = 300;
    asp_result r;
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_communicate(p, &c, &r), -ETIMEDOUT);
    ck_assert(asp_t_now_ms() - t0 < 3000);
    ck_assert_str_eq(r.out, "partial");
    ck_assert_str_eq(r.err, "E");
    ck_assert(r.flags & ASP_RESULT_TIMEOUT);
    ck_assert(!(r.flags & ASP_RESULT_KILLED));
    ck_assert_int_eq(r.status.kind, ASP_EXIT_NONE);
    asp_result_free(&r);
    /* The child still runs; stop it now. */
    asp_status st;
    ck_assert_int_eq(asp_proc_stop(p, NULL, &st), 0);
    ck_assert_int_eq(st.signal, SIGTERM);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_timeout_then_escalation)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "ignore-term", "say", "kept", "sleep", "10000");
    asp_comm_opts c = {0};
    c.timeout_ms = 200;
    c.flags = ASP_COMM_ESCALATE;
    c.kill.steps[0] = (asp_kill_step){SIGTERM, 200};
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), -ETIMEDOUT);
    ck_assert_str_eq(r.out, "kept");
    ck_assert(r.flags & ASP_RESULT_TIMEOUT);
    ck_assert(r.flags & ASP_RESULT_KILLED);
    ck_assert_int_eq(r.status.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(r.status.signal, SIGKILL);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_grandchild_holding_stdout_is_bounded)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    o.eof_grace_ms = 300;
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "say", "x", "grandchild", "5000", "exit", "0");
    asp_result r;
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_communicate(p, NULL, &r), 0);
    ck_assert_msg(asp_t_now_ms() - t0 < 3000,
                  "communicate waited for the grandchild");
    ck_assert_str_eq(r.out, "x");
    ck_assert(r.flags & ASP_RESULT_CUT);
    ck_assert_int_eq(r.status.code, 0);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
    usleep(20000);
}
END_TEST

START_TEST(comm_cap_exceeded)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "out", "3000000", "err", "10", "exit", "0");
    asp_comm_opts c = {0};
    c.cap = 1000;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
    ck_assert_uint_eq(r.out_len, 1000);
    check_pattern(r.out, 1000);
    ck_assert_uint_eq(r.err_len, 10);
    ck_assert(r.flags & ASP_RESULT_CAPPED);
    ck_assert_int_eq(r.status.code,
                     0); /* the rest was read, the child ran on */
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_not_piped_and_bad_input)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = {0};
    o.stdio[1].mode = ASP_STDIO_NULL;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "esay", "only-err");
    asp_comm_opts c = {0};
    c.input = "data";
    c.input_len = 4;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), -EINVAL); /* no stdin pipe */
    c.input_len = 0;
    c.timeout_ms = -2; /* ASP_FOREVER (-1) is allowed: no timeout */
    ck_assert_int_eq(asp_communicate(p, &c, &r), -EINVAL);
    ck_assert_int_eq(asp_communicate(p, NULL, NULL), -EINVAL);
    ck_assert_int_eq(asp_communicate(p, NULL, &r), 0);
    ck_assert_ptr_null(r.out);
    ck_assert_str_eq(r.err, "only-err");
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_includes_data_read_ahead)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "first\nsecond\nthird\n");
    char buf[64];
    ck_assert_int_eq(asp_stream_readline(asp_proc_stdout(p), buf, sizeof buf),
                     6);
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, NULL, &r), 0);
    ck_assert_str_eq(r.out, "second\nthird\n");
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_after_everything_ended)
{
    /* The child exited and both outputs were read to EOF before
     * communicate: it completes at once, without a timeout. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "x");
    asp_t_wait(p);
    asp_free(asp_t_read_all(asp_proc_stdout(p), NULL));
    asp_free(asp_t_read_all(asp_proc_stderr(p), NULL));
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, NULL, &r), 0);
    ck_assert_uint_eq(r.flags, 0);
    ck_assert_str_eq(r.out, "");
    ck_assert_int_eq(r.status.code, 0);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_run_convenience)
{
    asp_result r;
    const char *argv[] = {
        asp_t_child_path(), "say", "hi", "esay", "e", "exit", "3", NULL};
    ck_assert_int_eq(asp_run(NULL, argv, NULL, NULL, &r), 0);
    ck_assert_str_eq(r.out, "hi");
    ck_assert_str_eq(r.err, "e");
    ck_assert_int_eq(r.status.code, 3);
    asp_result_free(&r);

    const char *count[] = {asp_t_child_path(), "count", NULL};
    asp_comm_opts c = {0};
    c.input = "12345";
    c.input_len = 5;
    ck_assert_int_eq(asp_run(NULL, count, NULL, &c, &r), 0);
    ck_assert_str_eq(r.out, "5\n");
    asp_result_free(&r);

    const char *slow[] = {
        asp_t_child_path(), "say", "p", "sleep", "10000", NULL};
    memset(&c, 0, sizeof c);
    c.timeout_ms = 200;
    ck_assert_int_eq(asp_run(NULL, slow, NULL, &c, &r), -ETIMEDOUT);
    ck_assert_str_eq(r.out, "p");
    ck_assert(r.flags & ASP_RESULT_KILLED);
    ck_assert_int_eq(r.status.signal, SIGTERM);
    asp_result_free(&r);

    const char *missing[] = {"/nonexistent/prog", NULL};
    ck_assert_int_eq(asp_run(NULL, missing, NULL, NULL, &r), -ENOENT);
    ck_assert_ptr_null(r.out);

    /* On a caller's loop. */
    asp_loop *loop = asp_t_loop();
    ck_assert_int_eq(asp_run(loop, argv, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status.code, 3);
    asp_result_free(&r);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    int calls, err;
    asp_result r;
} async_ctx;

/* Takes the result of an asynchronous communicate. */
static void comm_cb(asp_proc *p, int err, asp_result *r, void *data)
{
    async_ctx *c = data;
    (void)p;
    c->calls++;
    c->err = err;
    c->r = *r;
}

START_TEST(comm_async_and_cancel_by_free)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "lines", "3");
    async_ctx a;
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(asp_communicate_start(p, NULL, comm_cb, &a), 0);
    ck_assert_int_eq(asp_communicate_start(p, NULL, comm_cb, &a), -EBUSY);
    ck_assert_int_eq(asp_stream_read_start(asp_proc_stdout(p), 1, NULL, NULL),
                     -EINVAL);
    ck_assert_int_eq(a.calls, 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.err, 0);
    ck_assert_str_eq(a.r.out, "line 0\nline 1\nline 2\n");
    asp_result_free(&a.r);
    asp_t_free(p);
    /* Freed while communicating: -ECANCELED with what there was. */
    p = ASP_T_SPAWN(loop, &o, "say", "so-far", "sleep", "10000");
    memset(&a, 0, sizeof a);
    asp_communicate_start(p, NULL, comm_cb, &a);
    double end = asp_t_now_ms() + 2000;
    while (asp_stream_buffered(asp_proc_stdout(p)) == 0 &&
           asp_t_now_ms() < end && a.calls == 0)
        asp_loop_run(loop, ASP_RUN_NOWAIT), usleep(2000);
    asp_proc_free(p, ASP_FREE_KILL);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.err, -ECANCELED);
    asp_result_free(&a.r);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_exit_and_eof_win_over_timeout_due_together)
{
    /* The child has exited (so its pipes hold their last bytes and EOF)
     * and the timeout is due when the loop next runs: no timeout. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "out", "esay", "err");
    async_ctx a;
    memset(&a, 0, sizeof a);
    asp_comm_opts c = {0};
    c.timeout_ms = 5;
    ck_assert_int_eq(asp_communicate_start(p, &c, comm_cb, &a), 0);
    asp_t_until_exited(asp_proc_pid(p));
    usleep(20 * 1000);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_msg(a.err == 0, "communicate: %s", asp_strerror(a.err));
    ck_assert_uint_eq(a.r.flags, 0);
    ck_assert_str_eq(a.r.out, "out");
    ck_assert_str_eq(a.r.err, "err");
    ck_assert_int_eq(a.r.status.code, 0);
    asp_result_free(&a.r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(comm_closes_output_fds_at_eof)
{
    /* Each output pipe is closed at its EOF (stdin once fed): after
     * communicate the process holds no fd, before it is freed. The first
     * spawn opens the loop's exit source, so count after it. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "exit", "0");
    asp_t_wait(p);
    asp_t_free(p);
    int fds = asp_t_fd_count();
    p = ASP_T_SPAWN(loop, &o, "echo", "esay", "E");
    asp_comm_opts c = {0};
    c.input = "in";
    c.input_len = 2;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
    ck_assert_str_eq(r.out, "in");
    ck_assert_str_eq(r.err, "E");
    ck_assert_int_eq(asp_t_fd_count(), fds);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
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

/* ---- out of memory while capturing ---- */

START_TEST(regress_capture_out_of_memory_does_not_hang)
{
    asp_allocator a = asp_t_refusing_allocator(100 * 1000);
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

/* ---- KILLED only after a kill ---- */

START_TEST(regress_killed_only_when_killed)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.eof_grace_ms = 400;
    /* The child exits at once; a grandchild keeps stdout open. */
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "say", "hi", "grandchild", "3000", "exit", "0");
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

/* The communicate suite. */
Suite *suite_communicate(void)
{
    Suite *s = suite_create("communicate");
    TCase *tc = asp_t_case("communicate", 60);
    tcase_add_test(tc, comm_no_input_and_empty_input);
    tcase_add_test(tc, comm_large_both_directions);
    tcase_add_test(tc, comm_timeout_keeps_partial_output);
    tcase_add_test(tc, comm_timeout_then_escalation);
    tcase_add_test(tc, comm_grandchild_holding_stdout_is_bounded);
    tcase_add_test(tc, comm_cap_exceeded);
    tcase_add_test(tc, comm_not_piped_and_bad_input);
    tcase_add_test(tc, comm_includes_data_read_ahead);
    tcase_add_test(tc, comm_after_everything_ended);
    tcase_add_test(tc, comm_run_convenience);
    tcase_add_test(tc, comm_async_and_cancel_by_free);
    tcase_add_test(tc, comm_exit_and_eof_win_over_timeout_due_together);
    tcase_add_test(tc, comm_closes_output_fds_at_eof);
    tcase_add_test(tc, regress_comm_input_not_used_after_completion);
    tcase_add_test(tc, regress_capture_out_of_memory_does_not_hang);
    tcase_add_test(tc, regress_killed_only_when_killed);
    suite_add_tcase(s, tc);
    return s;
}
