/*
 * test_spawn.c - spawning: exit codes and signals, exec errors reported by
 * the spawn call with nothing left behind, bad input, shell style, env
 * modes and PATH from the child's env, cwd, sessions and groups, the
 * child's signal state, and which fds the child gets, also from a parent
 * holding hundreds of fds.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Spawns the child with actions, waits, returns the status. */
static asp_status run_status(const char *const *acts)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = asp_t_spawnv(loop, NULL, acts);
    ck_assert_int_gt(asp_proc_pid(p), 0);
    asp_status st = asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
    return st;
}

/* Spawns the child with piped stdout, returns what it printed. */
static char *run_output(asp_spawn_opts *o, const char *const *acts)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts d = asp_t_piped(1, 0, 0);
    if (!o)
        o = &d;
    o->stdio[1].mode = ASP_STDIO_PIPE;
    asp_proc *p = asp_t_spawnv(loop, o, acts);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    asp_t_free(p);
    asp_t_loop_free(loop);
    return out;
}

START_TEST(spawn_exit_codes)
{
    static const int codes[] = {0, 1, 255};
    for (int i = 0; i < 3; i++) {
        char n[8];
        snprintf(n, sizeof n, "%d", codes[i]);
        asp_status st = run_status((const char *const[]){"exit", n, NULL});
        ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
        ck_assert_int_eq(st.code, codes[i]);
        ck_assert_int_eq(asp_status_returncode(&st), codes[i]);
    }
}
END_TEST

START_TEST(spawn_killed_by_signals)
{
    static const int sigs[] = {SIGTERM, SIGKILL, SIGABRT};
    for (int i = 0; i < 3; i++) {
        char n[8];
        snprintf(n, sizeof n, "%d", sigs[i]);
        asp_status st = run_status((const char *const[]){"raise", n, NULL});
        ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
        ck_assert_int_eq(st.signal, sigs[i]);
        ck_assert_int_eq(asp_status_returncode(&st), -sigs[i]);
    }
}
END_TEST

/* Asserts that spawning argv fails with want and leaves nothing behind
 * (the fixture checks fds and children at the end of the test). */
static void expect_spawn_error(const char *const *argv, asp_spawn_opts *o,
                               int want)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = (asp_proc *)0x1;
    int fds = asp_t_fd_count();
    int r = asp_spawn(loop, &p, argv, o);
    ck_assert_msg(r == want, "spawn gave %d (%s), wanted %d (%s)", r,
                  asp_strerror(r), want, asp_strerror(want));
    ck_assert_ptr_null(p);
    ck_assert_int_eq(asp_t_children(NULL), 0);
    /* The loop's exit source may have opened its fds at the first spawn;
     * those close with the loop, so compare after freeing it. */
    asp_t_loop_free(loop);
    ck_assert_int_le(asp_t_fd_count(), fds);
}

START_TEST(spawn_missing_program)
{
    expect_spawn_error((const char *const[]){"/nonexistent/prog", NULL}, NULL,
                       -ENOENT);
    expect_spawn_error((const char *const[]){"no-such-program-asproc", NULL},
                       NULL, -ENOENT);
}
END_TEST

START_TEST(spawn_not_executable_and_directory)
{
    char path[] = "/tmp/asp_noexec_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    chmod(path, 0644);
    expect_spawn_error((const char *const[]){path, NULL}, NULL, -EACCES);
    unlink(path);
    expect_spawn_error((const char *const[]){"/tmp", NULL}, NULL, -EACCES);
    expect_spawn_error((const char *const[]){"/etc/passwd/x", NULL}, NULL,
                       -ENOTDIR);
}
END_TEST

START_TEST(spawn_bad_cwd)
{
    asp_spawn_opts o = {0};
    o.cwd = "/nonexistent-dir-asproc";
    expect_spawn_error((const char *const[]){asp_t_child_path(), NULL}, &o,
                       -ENOENT);
    o.cwd = "/etc/passwd";
    expect_spawn_error((const char *const[]){asp_t_child_path(), NULL}, &o,
                       -ENOTDIR);
}
END_TEST

START_TEST(spawn_bad_input)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = NULL;
    const char *ok[] = {asp_t_child_path(), NULL};
    ck_assert_int_eq(asp_spawn(NULL, &p, ok, NULL), -EINVAL);
    ck_assert_int_eq(asp_spawn(loop, NULL, ok, NULL), -EINVAL);
    ck_assert_int_eq(asp_spawn(loop, &p, NULL, NULL), -EINVAL);
    ck_assert_int_eq(asp_spawn(loop, &p, (const char *const[]){NULL}, NULL), -EINVAL);
    ck_assert_int_eq(asp_spawn(loop, &p, (const char *const[]){"", NULL}, NULL), -EINVAL);
    ck_assert_int_eq(asp_spawn_shell(loop, &p, "", NULL), -EINVAL);
    ck_assert_int_eq(asp_spawn_shell(loop, &p, NULL, NULL), -EINVAL);

    asp_spawn_opts o = {0};
    o.env_mode = ASP_ENV_REPLACE;
    o.env = (const char *const[]){"GOOD=1", "NOEQUALS", NULL};
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.env = (const char *const[]){"=nonamed", NULL};
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.env_mode = 9;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);

    memset(&o, 0, sizeof o);
    o.stdio[0].mode = ASP_STDIO_STDOUT; /* only for stderr */
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.stdio[0].mode = 42;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.stdio[0].mode = ASP_STDIO_FD;
    o.stdio[0].fd = 987;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EBADF);
    o.stdio[0].fd = -3;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.stdio[0].mode = ASP_STDIO_PATH;
    o.stdio[0].path = NULL;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.stdio[0].path = "/nonexistent/asproc/in";
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -ENOENT);

    memset(&o, 0, sizeof o);
    asp_fdmap m[2] = {{0, 2}, {0, 7}};
    o.pass_fds = m;
    o.npass_fds = 1;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL); /* child_fd < 3 */
    m[0].child_fd = 7;
    o.npass_fds = 2;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL); /* twice */
    m[0].parent_fd = 999;
    o.npass_fds = 1;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EBADF);
    o.pass_fds = NULL;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);

    memset(&o, 0, sizeof o);
    o.flags = ASP_SPAWN_SETSID;
    o.pgid = 1;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.flags = 0x80;
    o.pgid = 0;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.flags = 0;
    o.eof_grace_ms = -5;
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    o.eof_grace_ms = 0;
    o.cwd = "";
    ck_assert_int_eq(asp_spawn(loop, &p, ok, &o), -EINVAL);
    ck_assert_ptr_null(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(spawn_shell_style)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = NULL;
    ck_assert_int_eq(asp_spawn_shell(loop, &p, "echo $((40 + 2)); exit 3", &o), 0);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "42\n");
    asp_free(out);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 3);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(spawn_env_modes)
{
    setenv("ASP_TEST_INHERITED", "yes", 1);
    char *out = run_output(NULL, (const char *const[]){"env", "ASP_TEST_INHERITED", NULL});
    ck_assert_str_eq(out, "yes\n");
    asp_free(out);

    asp_spawn_opts o = {0};
    o.env_mode = ASP_ENV_REPLACE;
    o.env = (const char *const[]){"ONLY=this", NULL};
    out = run_output(&o, (const char *const[]){"env", "ONLY", "env",
                                                "ASP_TEST_INHERITED", "env", "PATH", NULL});
    ck_assert_str_eq(out, "this\n(unset)\n(unset)\n");
    asp_free(out);

    memset(&o, 0, sizeof o);
    o.env_mode = ASP_ENV_OVERRIDE;
    o.env = (const char *const[]){"ASP_TEST_INHERITED", "NEW=1", "NEW=2", NULL};
    out = run_output(&o, (const char *const[]){"env", "ASP_TEST_INHERITED", "env",
                                                "NEW", "env", "HOME", NULL});
    char want[512];
    snprintf(want, sizeof want, "(unset)\n2\n%s\n",
             getenv("HOME") ? getenv("HOME") : "(unset)");
    ck_assert_str_eq(out, want);
    asp_free(out);
}
END_TEST

START_TEST(spawn_path_from_child_env)
{
    /* The helper is found by name through the PATH of the child's env, not
     * the parent's. */
    char dir[4096];
    strcpy(dir, asp_t_child_path());
    *strrchr(dir, '/') = 0;
    char pathvar[4200];
    snprintf(pathvar, sizeof pathvar, "PATH=/nonexistent:%s", dir);
    setenv("PATH", "/usr/bin:/bin", 1);
    asp_spawn_opts o = {0};
    o.env_mode = ASP_ENV_REPLACE;
    o.env = (const char *const[]){pathvar, NULL};
    o.stdio[1].mode = ASP_STDIO_PIPE;
    asp_loop *loop = asp_t_loop();
    asp_proc *p = NULL;
    int r = asp_spawn(loop, &p, (const char *const[]){"asp_child", "say", "found", NULL}, &o);
    ck_assert_int_eq(r, 0);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "found");
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    /* Without the override the parent's PATH does not have it. */
    r = asp_spawn(loop, &p, (const char *const[]){"asp_child", NULL}, NULL);
    ck_assert_int_eq(r, -ENOENT);
    /* opts.file names the program; argv[0] is then free-form. */
    memset(&o, 0, sizeof o);
    o.file = asp_t_child_path();
    o.stdio[1].mode = ASP_STDIO_PIPE;
    r = asp_spawn(loop, &p, (const char *const[]){"anything", "say", "x", NULL}, &o);
    ck_assert_int_eq(r, 0);
    out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "x");
    asp_free(out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(spawn_cwd)
{
    asp_spawn_opts o = {0};
    o.cwd = "/tmp";
    char *out = run_output(&o, (const char *const[]){"cwd", NULL});
    ck_assert_str_eq(out, "/tmp\n");
    asp_free(out);
}
END_TEST

/* Parses "pid pgid sid". */
static void parse_ids(const char *s, int *pid, int *pgid, int *sid)
{
    ck_assert_int_eq(sscanf(s, "%d %d %d", pid, pgid, sid), 3);
}

START_TEST(spawn_session_and_groups)
{
    int pid, pgid, sid;
    asp_spawn_opts o = {0};
    o.flags = ASP_SPAWN_SETSID;
    char *out = run_output(&o, (const char *const[]){"ids", NULL});
    parse_ids(out, &pid, &pgid, &sid);
    asp_free(out);
    ck_assert_int_eq(sid, pid);
    ck_assert_int_eq(pgid, pid);

    memset(&o, 0, sizeof o);
    o.flags = ASP_SPAWN_NEW_PGROUP;
    out = run_output(&o, (const char *const[]){"ids", NULL});
    parse_ids(out, &pid, &pgid, &sid);
    asp_free(out);
    ck_assert_int_eq(pgid, pid);
    ck_assert_int_eq(sid, getsid(0));

    /* Join the group of a running leader. */
    asp_loop *loop = asp_t_loop();
    memset(&o, 0, sizeof o);
    o.flags = ASP_SPAWN_NEW_PGROUP;
    asp_proc *leader = ASP_T_SPAWN(loop, &o, "sleep", "3000");
    memset(&o, 0, sizeof o);
    o.pgid = asp_proc_pid(leader);
    o.stdio[1].mode = ASP_STDIO_PIPE;
    asp_proc *member = ASP_T_SPAWN(loop, &o, "ids");
    out = asp_t_read_all(asp_proc_stdout(member), NULL);
    parse_ids(out, &pid, &pgid, &sid);
    asp_free(out);
    ck_assert_int_eq(pgid, asp_proc_pid(leader));
    asp_t_wait(member);
    asp_proc_kill(leader);
    asp_t_wait(leader);
    asp_t_free(member);
    asp_t_free(leader);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(spawn_child_signal_state_is_default)
{
    /* The parent blocks and ignores signals; the child must not inherit
     * any of it. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    char *out = run_output(NULL, (const char *const[]){"sigstate", NULL});
    ck_assert_str_eq(out, "mask: ign:\n");
    asp_free(out);
}
END_TEST

START_TEST(spawn_only_stdio_and_passed_fds_open)
{
    /* fds the parent leaves open without close-on-exec must not reach the
     * child; passed fds appear at their chosen numbers. */
    int p1[2];
    ck_assert_int_eq(pipe(p1), 0);
    int extra = dup(p1[0]);
    char *out = run_output(NULL, (const char *const[]){"fds", NULL});
    ck_assert_str_eq(out, "0 1 2\n");
    asp_free(out);

    asp_spawn_opts o = {0};
    asp_fdmap m[2] = {{p1[1], 9}, {extra, 4}};
    o.pass_fds = m;
    o.npass_fds = 2;
    out = run_output(&o, (const char *const[]){"fds", NULL});
    ck_assert_str_eq(out, "0 1 2 4 9\n");
    asp_free(out);
    close(p1[0]);
    close(p1[1]);
    close(extra);
}
END_TEST

START_TEST(spawn_from_a_parent_with_many_fds)
{
    /* A parent holding hundreds of fds: the child shares the parent's fd
     * table at the clone and copies only its low part (Linux), the
     * library keeps its own long-lived fds above that part. Children must
     * still get exactly their fds, a high fd passed or given as stdin
     * included, and every fd of the parent must survive the spawns. */
    enum { NPIPES = 200, NKIDS = 8 };
    int p[NPIPES][2];
    for (int i = 0; i < NPIPES; i++)
        ck_assert_int_eq(pipe2(p[i], O_CLOEXEC), 0);
    asp_loop *loop = asp_t_loop();
    asp_proc *kids[NKIDS];
    int hi = p[NPIPES - 1][0]; /* the highest: a read end */
    ck_assert_int_eq(write(p[NPIPES - 1][1], "hi\n", 3), 3);
    for (int k = 0; k < NKIDS; k++) {
        asp_spawn_opts o = asp_t_piped(1, 1, 1);
        asp_fdmap m = {p[NPIPES / 2][1], 5};
        if (k % 3 == 1 && k != NKIDS - 1) {
            o.pass_fds = &m;
            o.npass_fds = 1;
        }
        if (k == NKIDS - 1) {
            o.stdio[0].mode = ASP_STDIO_FD;
            o.stdio[0].fd = hi;
            kids[k] = ASP_T_SPAWN(loop, &o, "fds", "echo");
        } else {
            kids[k] = ASP_T_SPAWN(loop, &o, "fds");
        }
    }
    for (int k = 0; k < NKIDS; k++) {
        if (k < NKIDS - 1)
            asp_stream_close(asp_proc_stdin(kids[k]));
        else
            close(p[NPIPES - 1][1]); /* echo ends at EOF */
        char *out = asp_t_read_all(asp_proc_stdout(kids[k]), NULL);
        const char *want = k == NKIDS - 1 ? "0 1 2\nhi\n"
                           : k % 3 == 1   ? "0 1 2 5\n"
                                          : "0 1 2\n";
        ck_assert_str_eq(out, want);
        asp_free(out);
        ck_assert_int_eq(asp_t_wait(kids[k]).code, 0);
        asp_t_free(kids[k]);
    }
    asp_t_loop_free(loop);
    for (int i = 0; i < NPIPES; i++) {
        if (i == NPIPES - 1) {
            close(p[i][0]);
            continue;
        }
        char c = 0;
        ck_assert_int_eq(write(p[i][1], "x", 1), 1);
        ck_assert_int_eq(read(p[i][0], &c, 1), 1);
        ck_assert_int_eq(c, 'x');
        close(p[i][0]);
        close(p[i][1]);
    }
}
END_TEST

START_TEST(spawn_with_parent_stdio_closed)
{
    /* Save 0-2 high, close them, spawn with stdout piped (the pipe lands
     * on 0/1) and stdin inherited (closed), then restore. */
    int save[3];
    for (int i = 0; i < 3; i++) {
        save[i] = fcntl(i, F_DUPFD_CLOEXEC, 100);
        ck_assert_int_ge(save[i], 0);
        close(i);
    }
    asp_loop *loop = NULL;
    int r = asp_loop_new(&loop, NULL);
    asp_spawn_opts o = {0};
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_STDOUT;
    asp_proc *p = NULL;
    const char *argv[] = {asp_t_child_path(), "stdin-closed", "esay", "E", NULL};
    int sr = r == 0 ? asp_spawn(loop, &p, argv, &o) : r;
    char *out = NULL;
    ssize_t n = sr == 0 ? asp_stream_read_all(asp_proc_stdout(p), &out) : -1;
    asp_status st = {0};
    int wr = sr == 0 ? asp_proc_wait(p, ASP_FOREVER, &st) : -1;
    if (sr == 0)
        asp_proc_free(p, ASP_FREE_DETACH);
    if (loop)
        asp_loop_free(loop);
    for (int i = 0; i < 3; i++) {
        dup2(save[i], i);
        close(save[i]);
    }
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(sr, 0);
    ck_assert_int_eq((int)n, 8);
    ck_assert_str_eq(out, "closed\nE");
    ck_assert_int_eq(wr, 0);
    ck_assert_int_eq(st.code, 0);
    asp_free(out);
}
END_TEST

START_TEST(spawn_stdout_stderr_swapped)
{
    /* The child's stdout goes to our pipe B and its stderr to pipe A,
     * where A's write end is fd 1-like and B's is fd 2-like in a swap. */
    int a[2], b[2];
    ck_assert_int_eq(pipe2(a, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(b, O_CLOEXEC), 0);
    asp_spawn_opts o = {0};
    o.stdio[1].mode = ASP_STDIO_FD;
    o.stdio[1].fd = b[1];
    o.stdio[2].mode = ASP_STDIO_FD;
    o.stdio[2].fd = a[1];
    asp_loop *loop = asp_t_loop();
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "to-out", "esay", "to-err");
    asp_t_wait(p);
    asp_t_free(p);
    close(a[1]);
    close(b[1]);
    char buf[64];
    ssize_t n = read(b[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    ck_assert_str_eq(buf, "to-out");
    n = read(a[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    ck_assert_str_eq(buf, "to-err");
    close(a[0]);
    close(b[0]);
    /* A true swap: our fds 1 and 2 given crossed. */
    int save1 = fcntl(1, F_DUPFD_CLOEXEC, 100), save2 = fcntl(2, F_DUPFD_CLOEXEC, 100);
    ck_assert_int_eq(pipe2(a, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(b, O_CLOEXEC), 0);
    dup2(a[1], 1);
    dup2(b[1], 2);
    close(a[1]);
    close(b[1]);
    memset(&o, 0, sizeof o);
    o.stdio[1].mode = ASP_STDIO_FD;
    o.stdio[1].fd = 2;
    o.stdio[2].mode = ASP_STDIO_FD;
    o.stdio[2].fd = 1;
    asp_proc *q = NULL;
    const char *argv[] = {asp_t_child_path(), "say", "O", "esay", "E", NULL};
    int r = asp_spawn(loop, &q, argv, &o);
    asp_status st = {0};
    if (r == 0) {
        asp_proc_wait(q, ASP_FOREVER, &st);
        asp_proc_free(q, ASP_FREE_DETACH);
    }
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    ck_assert_int_eq(r, 0);
    n = read(b[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    ck_assert_str_eq(buf, "O"); /* stdout went to our fd 2 = pipe b */
    n = read(a[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    ck_assert_str_eq(buf, "E");
    close(a[0]);
    close(b[0]);
    asp_t_loop_free(loop);
}
END_TEST

/* The spawn suite. */
Suite *suite_spawn(void)
{
    Suite *s = suite_create("spawn");
    TCase *tc = asp_t_case("spawn", 30);
    tcase_add_test(tc, spawn_exit_codes);
    tcase_add_test(tc, spawn_killed_by_signals);
    tcase_add_test(tc, spawn_missing_program);
    tcase_add_test(tc, spawn_not_executable_and_directory);
    tcase_add_test(tc, spawn_bad_cwd);
    tcase_add_test(tc, spawn_bad_input);
    tcase_add_test(tc, spawn_shell_style);
    tcase_add_test(tc, spawn_env_modes);
    tcase_add_test(tc, spawn_path_from_child_env);
    tcase_add_test(tc, spawn_cwd);
    tcase_add_test(tc, spawn_session_and_groups);
    tcase_add_test(tc, spawn_child_signal_state_is_default);
    tcase_add_test(tc, spawn_only_stdio_and_passed_fds_open);
    tcase_add_test(tc, spawn_from_a_parent_with_many_fds);
    tcase_add_test(tc, spawn_with_parent_stdio_closed);
    tcase_add_test(tc, spawn_stdout_stderr_swapped);
    suite_add_tcase(s, tc);
    return s;
}
