/*
 * test_stdio.c - every stdio mode: pipe, /dev/null, inherit, a given fd,
 * a file path (read, truncate, append), stderr merged into stdout, closed;
 * the child's ends blocking.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a whole file into a static buffer. */
static const char *slurp(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* Spawns, waits, frees; returns stdout if piped. */
static char *spawn_wait(asp_spawn_opts *o, const char *const *acts)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = asp_t_spawnv(loop, o, acts);
    char *out = NULL;
    if (asp_proc_stdout(p))
        out = asp_t_read_all(asp_proc_stdout(p), NULL);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
    return out;
}

START_TEST(stdio_pipes_all_three)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "echo", "esay", "E!");
    ck_assert_ptr_nonnull(asp_proc_stdin(p));
    ck_assert_int_eq(asp_stream_write(asp_proc_stdin(p), "hello", 5), 0);
    ck_assert_int_eq(asp_stream_close(asp_proc_stdin(p)), 0);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    char *err = asp_t_read_all(asp_proc_stderr(p), NULL);
    ck_assert_str_eq(out, "hello");
    ck_assert_str_eq(err, "E!");
    asp_free(out);
    asp_free(err);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(stdio_devnull)
{
    asp_spawn_opts o = {0};
    o.stdio[0].mode = ASP_STDIO_NULL;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_NULL;
    char *out =
        spawn_wait(&o, (const char *const[]){"count", "esay", "lost", NULL});
    ck_assert_str_eq(out, "0\n");
    asp_free(out);
    /* Not piped: no stream. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, &o, "exit", "0");
    ck_assert_ptr_null(asp_proc_stderr(p));
    ck_assert_ptr_null(asp_proc_stdin(p));
    ck_assert_int_eq(asp_stream_read_start(asp_proc_stderr(p), 1, NULL, NULL),
                     -EINVAL);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(stdio_inherit)
{
    /* Our stdout is a temp file for the duration; the child inherits it. */
    char path[] = "/tmp/asp_inherit_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    int save = fcntl(1, F_DUPFD_CLOEXEC, 100);
    fflush(stdout);
    dup2(fd, 1);
    close(fd);
    spawn_wait(NULL, (const char *const[]){"say", "inherited", NULL});
    dup2(save, 1);
    close(save);
    ck_assert_str_eq(slurp(path), "inherited");
    unlink(path);
}
END_TEST

START_TEST(stdio_given_fd)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    asp_spawn_opts o = {0};
    o.stdio[1].mode = ASP_STDIO_FD;
    o.stdio[1].fd = p[1];
    spawn_wait(&o, (const char *const[]){"say", "via-fd", NULL});
    /* The given fd stays open in the parent. */
    ck_assert_int_ge(fcntl(p[1], F_GETFD), 0);
    close(p[1]);
    char buf[32] = {0};
    ck_assert_int_eq(read(p[0], buf, sizeof buf), 6);
    ck_assert_str_eq(buf, "via-fd");
    close(p[0]);
}
END_TEST

START_TEST(stdio_paths)
{
    char in[] = "/tmp/asp_in_XXXXXX";
    int fd = mkstemp(in);
    ck_assert_int_eq(write(fd, "12345", 5), 5);
    close(fd);
    char outp[] = "/tmp/asp_out_XXXXXX";
    fd = mkstemp(outp);
    ck_assert_int_eq(write(fd, "old content that is long", 24), 24);
    close(fd);

    asp_spawn_opts o = {0};
    o.stdio[0].mode = ASP_STDIO_PATH;
    o.stdio[0].path = in;
    o.stdio[1].mode = ASP_STDIO_PATH;
    o.stdio[1].path = outp;
    spawn_wait(&o, (const char *const[]){"count", NULL});
    ck_assert_str_eq(slurp(outp), "5\n"); /* truncated */

    o.stdio[1].flags = ASP_STDIO_APPEND;
    spawn_wait(&o, (const char *const[]){"count", NULL});
    ck_assert_str_eq(slurp(outp), "5\n5\n");

    /* stderr to a new file, created. */
    char errp[] = "/tmp/asp_err_XXXXXX";
    fd = mkstemp(errp);
    close(fd);
    unlink(errp);
    memset(&o, 0, sizeof o);
    o.stdio[2].mode = ASP_STDIO_PATH;
    o.stdio[2].path = errp;
    spawn_wait(&o, (const char *const[]){"esay", "to-file", NULL});
    ck_assert_str_eq(slurp(errp), "to-file");
    unlink(in);
    unlink(outp);
    unlink(errp);
}
END_TEST

START_TEST(stdio_merge_stderr_into_stdout)
{
    asp_spawn_opts o = {0};
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_STDOUT;
    char *out = spawn_wait(
        &o, (const char *const[]){"say", "a", "esay", "b", "say", "c", NULL});
    ck_assert_str_eq(out, "abc");
    asp_free(out);
    /* Merged into a file too. */
    char path[] = "/tmp/asp_merge_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    memset(&o, 0, sizeof o);
    o.stdio[1].mode = ASP_STDIO_PATH;
    o.stdio[1].path = path;
    o.stdio[2].mode = ASP_STDIO_STDOUT;
    spawn_wait(&o, (const char *const[]){"say", "1", "esay", "2", NULL});
    ck_assert_str_eq(slurp(path), "12");
    unlink(path);
}
END_TEST

START_TEST(stdio_closed_in_child)
{
    asp_spawn_opts o = {0};
    o.stdio[0].mode = ASP_STDIO_CLOSE;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    char *out = spawn_wait(&o, (const char *const[]){"stdin-closed", NULL});
    ck_assert_str_eq(out, "closed\n");
    asp_free(out);
}
END_TEST

START_TEST(stdio_socketpair_transport)
{
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    o.flags = ASP_SPAWN_SOCKETPAIR;
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "300000", "err", "1000");
    size_t n = 0, m = 0;
    char *out = asp_t_read_all(asp_proc_stdout(p), &n);
    char *err = asp_t_read_all(asp_proc_stderr(p), &m);
    ck_assert_uint_eq(n, 300000);
    ck_assert_uint_eq(m, 1000);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(out[i], 'a' + (int)(i % 26));
    asp_free(out);
    asp_free(err);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(stdio_raised_pipe_size)
{
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.pipe_size = 1 << 20;
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "3000000");
    size_t n = 0;
    char *out = asp_t_read_all(asp_proc_stdout(p), &n);
    ck_assert_uint_eq(n, 3000000);
    for (size_t i = 0; i < n; i += 4093)
        ck_assert_int_eq(out[i], 'a' + (int)(i % 26));
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* The stdio suite. */
START_TEST(stdio_child_ends_are_blocking)
{
    /* The parent's ends are non-blocking, the child's must not be: in
     * every transport, and with stderr merged into stdout. */
    for (int v = 0; v < 3; v++) {
        asp_spawn_opts o = asp_t_piped(1, 1, 1);
        if (v == 1)
            o.flags |= ASP_SPAWN_SOCKETPAIR;
        if (v == 2)
            o.stdio[2].mode = ASP_STDIO_STDOUT;
        asp_loop *loop = asp_t_loop();
        asp_proc *p = ASP_T_SPAWN(loop, &o, "blocking");
        asp_stream_close(asp_proc_stdin(p));
        char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
        ck_assert_str_eq(out, "bbb\n");
        asp_free(out);
        ck_assert_int_eq(asp_t_wait(p).code, 0);
        asp_t_free(p);
        asp_t_loop_free(loop);
    }
}
END_TEST

Suite *suite_stdio(void)
{
    Suite *s = suite_create("stdio");
    TCase *tc = asp_t_case("stdio", 30);
    tcase_add_test(tc, stdio_pipes_all_three);
    tcase_add_test(tc, stdio_devnull);
    tcase_add_test(tc, stdio_inherit);
    tcase_add_test(tc, stdio_given_fd);
    tcase_add_test(tc, stdio_paths);
    tcase_add_test(tc, stdio_merge_stderr_into_stdout);
    tcase_add_test(tc, stdio_closed_in_child);
    tcase_add_test(tc, stdio_socketpair_transport);
    tcase_add_test(tc, stdio_raised_pipe_size);
    tcase_add_test(tc, stdio_child_ends_are_blocking);
    suite_add_tcase(s, tc);
    return s;
}
