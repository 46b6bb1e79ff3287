/*
 * test_asprun.c - the asprun tool, run through the library itself: exit
 * statuses as coreutils' timeout gives them, the timeout stopping the
 * whole tree (also a setsid'd escapee under a cgroup), what a command
 * leaves behind going with it, SIGTERM passed on, the JSON summary, a
 * command on a terminal of its own (--pty), and bad usage.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* build/asprun, next to build/tests/<config>/ where the runner lives. */
static const char *asprun_path(void)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s", asp_t_child_path());
    char *slash = strrchr(path, '/');
    *slash = 0;
    slash = strrchr(path, '/'); /* build/tests */
    *slash = 0;
    slash = strrchr(path, '/'); /* build */
    strcpy(slash, "/asprun");
    return path;
}

/* Runs asprun with args (NULL-terminated), capturing its output. */
static int run_asprun(asp_result *r, const char *const *args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = asprun_path();
    while (*args && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    asp_comm_opts co = {0};
    co.timeout_ms = 30000;
    int e = asp_run(NULL, argv, NULL, &co, r);
    ck_assert_msg(e == 0, "asp_run asprun: %s", asp_strerror(e));
    ck_assert_int_eq(r->status.kind, ASP_EXIT_CODE);
    return r->status.code;
}
#define ASPRUN(r, ...) run_asprun((r), (const char *const[]){__VA_ARGS__, NULL})

START_TEST(asprun_exit_statuses)
{
    asp_result r;
    const char *child = asp_t_child_path();
    ck_assert_int_eq(ASPRUN(&r, "--", child, "say", "hi", "exit", "3"), 3);
    ck_assert_str_eq(r.out, "hi");
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, child, "raise", "9"), 128 + 9);
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, "--", "/nonexistent/program"), 127);
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, "--", "/dev/null"), 126);
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, "--bogus", "x", child), 125);
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, "--timeout", "-5", child), 125);
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, "--help"), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "SYNOPSIS"));
    asp_result_free(&r);
}
END_TEST

START_TEST(asprun_timeout_stops_the_tree)
{
    asp_result r;
    const char *child = asp_t_child_path();
    ck_assert_int_eq(ASPRUN(&r, "--timeout", "300", "--grace", "100", "--json",
                            "--", child, "ignore-term", "escape", "60000",
                            "sleep", "60000"),
                     124);
    pid_t esc = (pid_t)atoi(r.out);
    ck_assert_int_gt(esc, 0);
    ck_assert_ptr_nonnull(strstr(r.err, "\"timed_out\": true"));
    ck_assert_ptr_nonnull(strstr(r.err, "\"exit_code\": 124"));
    int cgroup = strstr(r.err, "\"containment\": \"cgroup\"") != NULL;
    if (!cgroup)
        ck_assert_ptr_nonnull(strstr(r.err, "\"containment\": \"pgroup\""));
    /* Under a cgroup the escapee went with the tree; a group cannot hold
     * it (then it is cleaned up here). */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)esc);
    if (cgroup) {
        for (int i = 0; i < 500 && access(path, F_OK) == 0; i++)
            usleep(2000);
        char st[600] = "";
        FILE *f = fopen(strcat(path, "/stat"), "r");
        if (f) {
            ck_assert_ptr_nonnull(fgets(st, sizeof st, f));
            fclose(f);
            ck_assert_ptr_nonnull(strstr(st, ") Z "));
        }
    } else {
        kill(esc, SIGKILL);
    }
    asp_result_free(&r);
}
END_TEST

START_TEST(asprun_leftovers_go_with_the_command)
{
    asp_result r;
    const char *child = asp_t_child_path();
    ck_assert_int_eq(ASPRUN(&r, "--grace", "100", "--", child, "grandchild",
                            "60000", "say", "done", "exit", "0"),
                     0);
    ck_assert_str_eq(r.out, "done");
    asp_result_free(&r);
    ck_assert_int_eq(
        ASPRUN(&r, "--json", "--rusage", "--", child, "burn", "50"), 0);
    ck_assert_ptr_nonnull(strstr(r.err, "\"utime_us\": "));
    ck_assert_ptr_nonnull(strstr(r.err, "\"signal\": null"));
    asp_result_free(&r);
}
END_TEST

/* SIGTERM sent to asprun reaches the command: 128 + 15. */
START_TEST(asprun_forwards_sigterm)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    const char *argv[] = {
        asprun_path(), "--kill", "child", "--",    asp_t_child_path(),
        "say",         "r",      "sleep", "60000", NULL};
    asp_proc *p = NULL;
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), 0);
    char c;
    ck_assert_int_eq(asp_stream_read(asp_proc_stdout(p), &c, 1), 1);
    ck_assert_int_eq(asp_proc_terminate(p), 0);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 128 + SIGTERM);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* --pty: COMMAND sees a terminal of the given size, gets asprun's stdin
 * (piped here: no echo) with its end of file, and every byte of its
 * output arrives even when it exits at once after writing. */
START_TEST(asprun_pty)
{
    asp_result r;
    const char *child = asp_t_child_path();
    ck_assert_int_eq(ASPRUN(&r, "--size", "50x132", "--", child, "tty",
                            "winsize", "exit", "6"),
                     6);
    ck_assert_ptr_nonnull(strstr(r.out, "1 1 1 ctty=1"));
    ck_assert_ptr_nonnull(strstr(r.out, "50 132"));
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, "--pty", "--", child, "out", "1048576"), 0);
    ck_assert_uint_eq(r.out_len, 1048576);
    for (size_t i = 0; i < r.out_len; i++)
        if (r.out[i] != (char)('a' + i % 26))
            ck_abort_msg("byte %zu differs", i);
    asp_result_free(&r);
    /* Input through the terminal: "echo" copies it back until the end
     * of file that closing our stdin sends. */
    const char *argv[] = {asprun_path(), "--pty", "--", child, "echo", NULL};
    asp_comm_opts co = {0};
    co.input = "hello\n";
    co.input_len = 6;
    co.timeout_ms = 30000;
    ck_assert_int_eq(asp_run(NULL, argv, NULL, &co, &r), 0);
    ck_assert_int_eq(r.status.code, 0);
    ck_assert_str_eq(r.out, "hello\r\n"); /* the terminal's "\n" */
    asp_result_free(&r);
    ck_assert_int_eq(ASPRUN(&r, "--size", "0x80", child), 125);
    asp_result_free(&r);
}
END_TEST

/* The asprun suite. */
Suite *suite_asprun(void)
{
    Suite *s = suite_create("asprun");
    TCase *tc = asp_t_case("asprun", 60);
    tcase_add_test(tc, asprun_exit_statuses);
    tcase_add_test(tc, asprun_timeout_stops_the_tree);
    tcase_add_test(tc, asprun_leftovers_go_with_the_command);
    tcase_add_test(tc, asprun_forwards_sigterm);
    tcase_add_test(tc, asprun_pty);
    suite_add_tcase(s, tc);
    return s;
}
