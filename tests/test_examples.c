/*
 * test_examples.c - runs the examples (built next to this test binary, in
 * examples/) through asp_run and checks that each of the six seed
 * examples prints what its Python original prints, and ex6_pty what a
 * program on a terminal sees.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs example name; returns its stdout (free with asp_result_free). */
static asp_result run_example(const char *name)
{
    char path[4096];
    strcpy(path, asp_t_child_path());
    snprintf(strrchr(path, '/') + 1, 256, "examples/%s", name);
    const char *argv[] = {path, NULL};
    /* The examples use the default exit source: the one this run forces
     * on the tests (which may need SIGCHLD blocked) is not passed on. */
    static const char *const env[] = {"ASP_CHILD_SOURCE", NULL};
    asp_spawn_opts o = {0};
    o.stdio[0].mode = ASP_STDIO_NULL;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    o.env_mode = ASP_ENV_OVERRIDE;
    o.env = env;
    asp_comm_opts c = {0};
    c.timeout_ms = 30000;
    asp_result r;
    int e = asp_run(NULL, argv, &o, &c, &r);
    ck_assert_msg(e == 0, "%s: %s", name, asp_strerror(e));
    ck_assert_msg(r.status.kind == ASP_EXIT_CODE && r.status.code == 0,
                  "%s exited %d/%d: %s", name, r.status.kind, r.status.code,
                  r.err);
    return r;
}

/* Whether s ends with suffix. */
static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

START_TEST(example_1_exec)
{
    asp_result r = run_example("ex1_exec");
    ck_assert_msg(strstr(r.out, "子进程 PID: ") != NULL, "%s", r.out);
    ck_assert_msg(ends_with(r.out, "返回码: 0\n"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "Makefile") || strstr(r.out, "total"), "%s",
                  r.out);
    asp_result_free(&r);
}
END_TEST

START_TEST(example_2_pipe)
{
    asp_result r = run_example("ex2_pipe");
    ck_assert_msg(!strncmp(r.out, "子进程 PID: ", strlen("子进程 PID: ")), "%s",
                  r.out);
    const char *listing = strchr(r.out, '\n') + 1;
    /* At most 200 characters of the listing, then the newline. */
    ck_assert_uint_le(strlen(listing), 201);
    ck_assert_msg(!strncmp(listing, "total", 5), "%s", listing);
    asp_result_free(&r);
}
END_TEST

START_TEST(example_3_communicate)
{
    asp_result r = run_example("ex3_communicate");
    ck_assert_str_eq(r.out,
                     "返回码: 0\n输出长度: 1010000 字节, 错误长度: 0 字节\n");
    asp_result_free(&r);
}
END_TEST

START_TEST(example_4_timeout)
{
    double t0 = asp_t_now_ms();
    asp_result r = run_example("ex4_timeout");
    ck_assert_str_eq(r.out, "超时：尝试终止子进程……\n返回码: -15\n输出: \n");
    /* 2 s timeout, then TERM ends it: not the child's 10 s. */
    ck_assert(asp_t_now_ms() - t0 < 8000);
    asp_result_free(&r);
}
END_TEST

START_TEST(example_5a_lines)
{
    asp_result r = run_example("ex5a_lines");
    ck_assert_str_eq(r.out,
                     "[STDOUT] line 0\n[STDOUT] line 1\n[STDOUT] line 2\n"
                     "[STDOUT] line 3\n[STDOUT] line 4\n返回码: 0\n");
    asp_result_free(&r);
}
END_TEST

START_TEST(example_5b_chunks)
{
    asp_result r = run_example("ex5b_chunks");
    /* 3 x 4097 bytes, in chunks of at most 1024. */
    size_t total = 0;
    int lines = 0;
    for (char *l = r.out; *l; l = strchr(l, '\n') + 1) {
        size_t n;
        ck_assert_int_eq(sscanf(l, "[STDOUT] got %zu bytes", &n), 1);
        ck_assert_uint_le(n, 1024);
        total += n;
        lines++;
    }
    ck_assert_uint_eq(total, 3 * 4097);
    ck_assert_int_ge(lines, 15);
    asp_result_free(&r);
}
END_TEST

START_TEST(example_6_pty)
{
    asp_result r = run_example("ex6_pty");
    /* The terminal's name differs between systems and runs. */
    const char *name = strstr(r.out, "[pty] /dev/");
    ck_assert_msg(name != NULL, "%s", r.out);
    const char *rest = strchr(name, '\n') + 1;
    ck_assert_msg(!strncmp(r.out,
                           "pipe: not a terminal\n"
                           "[pty] stdin, stdout, stderr: terminals\n",
                           strlen("pipe: not a terminal\n"
                                  "[pty] stdin, stdout, stderr: terminals\n")),
                  "%s", r.out);
    ck_assert_str_eq(rest, "[pty] 24 80\n(resized to 50 x 132)\n"
                           "[pty] 50 132\nexit code: 0\n");
    asp_result_free(&r);
}
END_TEST

/* The examples suite. */
Suite *suite_examples(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = asp_t_case("examples", 60);
    tcase_add_test(tc, example_1_exec);
    tcase_add_test(tc, example_2_pipe);
    tcase_add_test(tc, example_3_communicate);
    tcase_add_test(tc, example_4_timeout);
    tcase_add_test(tc, example_5a_lines);
    tcase_add_test(tc, example_5b_chunks);
    tcase_add_test(tc, example_6_pty);
    suite_add_tcase(s, tc);
    return s;
}
