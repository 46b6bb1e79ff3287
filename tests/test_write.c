/*
 * test_write.c - writing stdin: large drains, EOF on close, EPIPE on a
 * child that does not read -- with the test process alive and its signal
 * state untouched -- misuse, and all or nothing when memory runs out.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(write_drain_8mib_into_reader)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "count");
    size_t n = 8u << 20;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)i;
    asp_stream *in = asp_proc_stdin(p);
    ck_assert_int_eq(asp_stream_write(in, data, n), 0);
    free(data); /* the queued part was copied */
    ck_assert_int_eq(asp_stream_drain(in), 0);
    ck_assert_uint_eq(asp_stream_buffered(in), 0);
    ck_assert_int_eq(asp_stream_close(in), 0);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "8388608\n");
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(write_echo_roundtrip_and_close_is_eof)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "echo");
    asp_stream *in = asp_proc_stdin(p);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(asp_stream_write(in, "0123456789", 10), 0);
    ck_assert_int_eq(asp_stream_write(in, "", 0), 0);
    ck_assert_int_eq(asp_stream_drain(in), 0);
    ck_assert_int_eq(asp_stream_close(in), 0); /* the child sees EOF */
    size_t len;
    char *out = asp_t_read_all(asp_proc_stdout(p), &len);
    ck_assert_uint_eq(len, 1000);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(out[i], '0' + (int)(i % 10));
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(write_epipe_without_sigpipe)
{
    /* SIGPIPE at its default (death) and unblocked: if the library let
     * one through, this test process would die. */
    asp_t_sigpipe_deadly();

    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(0, 0, 1);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "close-stdin", "sleep", "100", "exit", "0");
    asp_stream *in = asp_proc_stdin(p);
    asp_t_wait(p);
    static char buf[1 << 20];
    int r = asp_stream_write(in, buf, sizeof buf);
    if (r == 0)
        r = asp_stream_drain(in);
    ck_assert_int_eq(r, -EPIPE);
    ck_assert_int_eq(asp_stream_write(in, "x", 1), -EPIPE);
    ck_assert_int_eq(asp_stream_drain(in), -EPIPE);

    /* Alive, disposition and mask untouched, nothing pending. */
    asp_t_sigpipe_untouched();
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    int calls, err;
} drain_ctx;

/* Records the drain result. */
static void drain_cb(asp_stream *s, int err, void *data)
{
    drain_ctx *c = data;
    (void)s;
    c->calls++;
    c->err = err;
}

START_TEST(write_misuse)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sleep", "5000");
    asp_stream *in = asp_proc_stdin(p);
    ck_assert_int_eq(asp_stream_write(asp_proc_stdout(p), "x", 1), -EOPNOTSUPP);
    ck_assert_int_eq(asp_stream_write(NULL, "x", 1), -EINVAL);
    ck_assert_int_eq(asp_stream_write(in, NULL, 1), -EINVAL);
    ck_assert_int_eq(asp_stream_drain_start(in, NULL, NULL), -EINVAL);
    /* Fill the pipe so a drain stays pending. */
    static char buf[1 << 20];
    ck_assert_int_eq(asp_stream_write(in, buf, sizeof buf), 0);
    ck_assert_uint_gt(asp_stream_buffered(in), 0);
    drain_ctx d = {0, 0};
    ck_assert_int_eq(asp_stream_drain_start(in, drain_cb, &d), 0);
    ck_assert_int_eq(asp_stream_drain_start(in, drain_cb, &d), -EBUSY);
    ck_assert_int_eq(d.calls, 0);
    /* Closing ends the pending drain with -ECANCELED. */
    ck_assert_int_eq(asp_stream_close(in), 0);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.err, -ECANCELED);
    ck_assert_int_eq(asp_stream_write(in, "x", 1), -EBADF);
    asp_proc_kill(p);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ---- all or nothing when memory runs out ---- */

START_TEST(regress_write_is_all_or_nothing)
{
    asp_allocator a = asp_t_refusing_allocator(200 * 1000);
    ck_assert_int_eq(asp_set_allocator(&a), 0);
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sleep", "100", "count");
    static char buf[1 << 20];
    /* The remainder could not be queued: nothing at all was written. */
    ck_assert_int_eq(asp_stream_write(asp_proc_stdin(p), buf, sizeof buf),
                     -ENOMEM);
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

/* The write suite. */
Suite *suite_write(void)
{
    Suite *s = suite_create("write");
    TCase *tc = asp_t_case("write", 30);
    tcase_add_test(tc, write_drain_8mib_into_reader);
    tcase_add_test(tc, write_echo_roundtrip_and_close_is_eof);
    tcase_add_test(tc, write_epipe_without_sigpipe);
    tcase_add_test(tc, write_misuse);
    tcase_add_test(tc, regress_write_is_all_or_nothing);
    suite_add_tcase(s, tc);
    return s;
}
