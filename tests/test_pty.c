/*
 * test_pty.c - children on a pseudo-terminal (ASP_STDIO_PTY).
 *
 * The child believes it has a terminal (isatty, a controlling terminal,
 * the foreground group, the window size, SIGWINCH on a resize); the
 * modes (echo, raw) do what a terminal does; output written just before
 * the exit is never lost, the end of the terminal is end of file and
 * never an error (also through forward, where splice would report it as
 * EIO); closing stdin is the end-of-file character; communicate works;
 * a grandchild holding the terminal is bounded by the eof grace; neither
 * end leaks; bad input is refused.
 *
 * Terminal output in the default modes turns "\n" into "\r\n".
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

/* Options with fds 0-2 on one terminal (stdin NULL when !in). */
static asp_spawn_opts all_pty(int in, unsigned flags)
{
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.stdio[0].mode = in ? ASP_STDIO_PTY : ASP_STDIO_NULL;
    o.stdio[1].mode = ASP_STDIO_PTY;
    o.stdio[2].mode = ASP_STDIO_PTY;
    o.pty.flags = flags;
    return o;
}

/* Reads p's terminal to its end, checks it was not cut, waits for an exit
 * with 0 and frees p. Returns the output (asp_free). */
static char *finish(asp_proc *p, size_t *len)
{
    char *out = asp_t_read_all(asp_proc_stdout(p), len);
    ck_assert(asp_stream_eof(asp_proc_stdout(p)));
    ck_assert(!asp_stream_cut(asp_proc_stdout(p)));
    asp_status st = asp_t_wait(p);
    ck_assert_msg(st.kind == ASP_EXIT_CODE && st.code == 0, "exit %d/%d/%d: %s",
                  st.kind, st.code, st.signal, out);
    asp_t_free(p);
    return out;
}

/* Runs the helper child with actions on a terminal made from o and
 * checks its whole output. */
static void expect_output(const asp_spawn_opts *o, const char *want,
                          const char *const *actions)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = asp_t_spawnv(loop, o, actions);
    char *out = finish(p, NULL);
    ck_assert_str_eq(out, want);
    asp_free(out);
    asp_t_loop_free(loop);
}
#define EXPECT(o, want, ...) \
    expect_output((o), (want), (const char *const[]){__VA_ARGS__, NULL})

/* How many of this process's fds are links to path (a path ending in
 * "ptmx": to a terminal master, /dev/ptmx or /dev/pts/ptmx). */
static int fds_on(const char *path)
{
    int any_master = !strcmp(path, "ptmx");
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char link[300], target[300];
        if (e->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(link, target, sizeof target - 1);
        if (k <= 0)
            continue;
        target[k] = 0;
        if (any_master)
            n += k >= 4 && !strcmp(target + k - 4, "ptmx");
        else
            n += !strcmp(target, path);
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------- a terminal */

START_TEST(pty_child_has_terminal)
{
    asp_spawn_opts o = all_pty(1, 0);
    /* isatty on 0-2, /dev/tty opens, foreground group, session leader;
     * only 0-2 open: the master never reaches the child. */
    EXPECT(&o, "1 1 1 ctty=1 fg=1 leader=1\r\n0 1 2\r\n", "tty", "fds");
}
END_TEST

START_TEST(pty_streams_of_a_terminal)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "exit", "0");
    /* One reader (stdout), the writer; stderr shares the terminal. */
    ck_assert_ptr_nonnull(asp_proc_stdout(p));
    ck_assert_ptr_nonnull(asp_proc_stdin(p));
    ck_assert_ptr_null(asp_proc_stderr(p));
    asp_free(finish(p, NULL));
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_with_pipes_is_no_terminal)
{
    /* The same action on pipes: the contrast the tests above rely on. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "tty");
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_msg(!strncmp(out, "0 0 ", 4), "%s", out);
    asp_t_wait(p);
    asp_t_free(p);
    asp_free(out);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_stdout_only)
{
    /* stdout on the terminal, stderr a pipe, stdin /dev/null. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(0, 0);
    o.stdio[2].mode = ASP_STDIO_PIPE;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "tty", "esay", "E");
    char *err = asp_t_read_all(asp_proc_stderr(p), NULL);
    ck_assert_str_eq(err, "E");
    char *out = finish(p, NULL);
    ck_assert_str_eq(out, "0 1 0 ctty=1 fg=1 leader=1\r\n");
    asp_free(out);
    asp_free(err);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_stderr_only)
{
    /* Only stderr on the terminal: asp_proc_stderr reads it. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.stdio[2].mode = ASP_STDIO_PTY;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "tty", "esay", "E\n");
    ck_assert_ptr_null(asp_proc_stdin(p));
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    char *err = asp_t_read_all(asp_proc_stderr(p), NULL);
    ck_assert_str_eq(out, "0 0 1 ctty=1 fg=1 leader=1\n");
    ck_assert_str_eq(err, "E\r\n");
    asp_t_wait(p);
    asp_t_free(p);
    asp_free(out);
    asp_free(err);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_window_size)
{
    asp_spawn_opts o = all_pty(1, 0);
    EXPECT(&o, "24 80\r\n", "winsize"); /* the default */
    o.pty.rows = 33;
    o.pty.cols = 111;
    EXPECT(&o, "33 111\r\n", "winsize");
}
END_TEST

START_TEST(pty_stty_size)
{
    /* What a real program sees: stty asks the terminal on its stdin. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    o.pty.rows = 33;
    o.pty.cols = 111;
    const char *argv[] = {"stty", "size", NULL};
    asp_proc *p = NULL;
    int r = asp_spawn(loop, &p, argv, &o);
    ck_assert_msg(r == 0, "stty: %s", asp_strerror(r));
    char *out = finish(p, NULL);
    ck_assert_str_eq(out, "33 111\r\n");
    asp_free(out);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_resize_sends_sigwinch)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "winch");
    asp_stream *s = asp_proc_stdout(p);
    char line[64];
    ssize_t n = asp_stream_readline(s, line, sizeof line);
    ck_assert_int_eq(n, 7);
    ck_assert(!memcmp(line, "ready\r\n", 7));
    ck_assert_int_eq(asp_proc_resize(p, 40, 120), 0);
    n = asp_stream_readline(s, line, sizeof line);
    ck_assert_int_eq(n, 8);
    ck_assert(!memcmp(line, "40 120\r\n", 8));
    ck_assert_int_eq(asp_stream_read(s, line, sizeof line), 0); /* EOF */
    asp_t_wait(p);
    /* The terminal's streams closed: nothing left to resize. */
    ck_assert_int_eq(asp_stream_close(asp_proc_stdin(p)), 0);
    ck_assert_int_eq(asp_proc_resize(p, 10, 10), -EBADF);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ------------------------------------------------------------ modes */

/* Writes in to a child that copies len(in) bytes back; returns what the
 * terminal output. */
static char *copy_through(unsigned flags, const char *in)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, flags);
    char n[32];
    snprintf(n, sizeof n, "%zu", strlen(in));
    asp_proc *p = ASP_T_SPAWN(loop, &o, "copy", n);
    ck_assert_int_eq(asp_stream_write(asp_proc_stdin(p), in, strlen(in)), 0);
    char *out = finish(p, NULL);
    asp_t_loop_free(loop);
    return out;
}

START_TEST(pty_echo_on_by_default)
{
    /* The terminal echoes the input, then the child copies it. */
    char *out = copy_through(0, "hello\n");
    ck_assert_str_eq(out, "hello\r\nhello\r\n");
    asp_free(out);
}
END_TEST

START_TEST(pty_noecho)
{
    char *out = copy_through(ASP_PTY_NOECHO, "hello\n");
    ck_assert_str_eq(out, "hello\r\n");
    asp_free(out);
}
END_TEST

START_TEST(pty_raw)
{
    /* No echo, no output processing, ^C a byte like any other, and no
     * line discipline: the child gets bytes as they come. */
    char *out = copy_through(ASP_PTY_RAW, "a\x03z\n");
    ck_assert_str_eq(out, "a\x03z\n");
    asp_free(out);
    out = copy_through(ASP_PTY_RAW, "no newline");
    ck_assert_str_eq(out, "no newline");
    asp_free(out);
}
END_TEST

START_TEST(pty_ctrl_c_is_sigint_when_cooked)
{
    /* The child's group is the terminal's foreground group: ^C typed in
     * the default modes interrupts it. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sleep", "60000");
    ck_assert_int_eq(asp_stream_write(asp_proc_stdin(p), "\x03", 1), 0);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGINT);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ------------------------------------------------- exit and drained */

/* Whether buf holds the helper's pattern ('a' + i % 26) of len bytes. */
static int is_pattern(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (char)('a' + i % 26))
            return 0;
    return 1;
}

START_TEST(pty_bulk_then_exit_loses_nothing)
{
    /* 1 MiB and an immediate exit: the wait completes at the exit, and
     * reading goes on until the terminal is drained. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "1048576", "exit", "0");
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    size_t len;
    char *out = finish(p, &len);
    ck_assert_uint_eq(len, 1048576);
    ck_assert(is_pattern(out, len));
    asp_free(out);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_output_after_exit_then_eof)
{
    /* The child writes and exits while nobody reads: when we first look,
     * it is gone, the terminal is hung up and still holds the output. A
     * hang-up seen with data pending is not the end; the end (EIO on
     * Linux) is end of file: the data, then 0, never an error. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "3000");
    usleep(200 * 1000); /* the loop does not run: nothing is read */
    asp_stream *s = asp_proc_stdout(p);
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while ((n = asp_stream_read(s, buf + got, sizeof buf - got)) > 0)
        got += (size_t)n;
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(got, 3000);
    ck_assert(is_pattern(buf, got));
    ck_assert_int_eq(asp_stream_read(s, buf, sizeof buf), 0); /* stays 0 */
    asp_free(finish(p, NULL));
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_forward_ends_at_eof_not_eio)
{
    /* forward into a pipe, which splice could serve (Linux >= 6.5 splices
     * from a terminal): it would meet the terminal's end as EIO. */
    asp_loop *loop = asp_t_loop();
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "20000"); /* fits the pipe */
    ssize_t n = asp_stream_forward(asp_proc_stdout(p), pfd[1]);
    ck_assert_msg(n == 20000, "forward: %zd %s", n,
                  n < 0 ? asp_strerror((int)n) : "");
    close(pfd[1]);
    static char buf[32768];
    size_t got = 0;
    ssize_t r;
    while ((r = read(pfd[0], buf + got, sizeof buf - got)) > 0)
        got += (size_t)r;
    ck_assert_uint_eq(got, 20000);
    ck_assert(is_pattern(buf, got));
    close(pfd[0]);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    int lines, eof;
} line_count;

static void count_lines(asp_stream *s, int err, const char *buf, size_t len,
                        void *data)
{
    line_count *c = data;
    char want[32];
    (void)s;
    ck_assert_int_eq(err, 0);
    if (len == 0) {
        c->eof++;
        return;
    }
    snprintf(want, sizeof want, "line %d\r\n", c->lines);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert(!memcmp(buf, want, len));
    c->lines++;
}

START_TEST(pty_on_lines)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "lines", "500");
    line_count c = {0, 0};
    ck_assert_int_eq(
        asp_stream_on_lines(asp_proc_stdout(p), 0, count_lines, &c), 0);
    asp_t_wait(p);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.lines, 500);
    ck_assert_int_eq(c.eof, 1);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ------------------------------------------------------ end of input */

/* Writes in, closes stdin, and returns what a counting child printed. */
static char *count_input(const char *in, size_t len, unsigned flags)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, flags);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "count");
    asp_stream *s = asp_proc_stdin(p);
    ck_assert_int_eq(asp_stream_write(s, in, len), 0);
    ck_assert_int_eq(asp_stream_drain(s), 0);
    ck_assert_int_eq(asp_stream_close(s), 0);
    ck_assert_int_eq(asp_stream_write(s, "x", 1), -EBADF);
    char *out = finish(p, NULL);
    asp_t_loop_free(loop);
    return out;
}

START_TEST(pty_close_stdin_sends_eof)
{
    /* A whole line, then the end; an unfinished line (two end-of-file
     * characters: the first ends the line); no input at all. */
    const char *cases[][2] = {{"line\n", "5\r\n"},
                              {"partial", "7\r\n"},
                              {"a\nb", "3\r\n"},
                              {"", "0\r\n"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out =
            count_input(cases[i][0], strlen(cases[i][0]), ASP_PTY_NOECHO);
        ck_assert_msg(!strcmp(out, cases[i][1]), "%s: %s", cases[i][0], out);
        asp_free(out);
    }
}
END_TEST

/* Spawns a child that waits for SIGWINCH before it counts its input,
 * and fills its terminal's input with lines until no more goes in (the
 * terminal makes room in steps for a while); stdin then holds the rest. */
static asp_proc *full_terminal(asp_loop *loop, char **in, size_t size)
{
    *in = malloc(size);
    ck_assert_ptr_nonnull(*in);
    for (size_t i = 0; i < size; i++)
        (*in)[i] = (i % 64 == 63) ? '\n' : 'x';
    asp_spawn_opts o = all_pty(1, ASP_PTY_NOECHO);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "winch", "count");
    asp_stream *s = asp_proc_stdin(p);
    char line[64];
    ck_assert_int_eq(asp_stream_readline(asp_proc_stdout(p), line, sizeof line),
                     7); /* ready */
    ck_assert_int_eq(asp_stream_write(s, *in, size), 0);
    for (int still = 0; still < 5;) {
        size_t before = asp_stream_buffered(s);
        usleep(20 * 1000);
        ck_assert_int_ge(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
        still = asp_stream_buffered(s) == before ? still + 1 : 0;
    }
    ck_assert_uint_gt(asp_stream_buffered(s), 0); /* the terminal is full */
    return p;
}

START_TEST(pty_eof_waits_for_a_full_terminal)
{
    /* stdin is closed while the terminal's input is full (the child does
     * not read yet): the queued bytes are dropped, and the end-of-file
     * character waits until the terminal takes it, then still arrives. */
    enum { SIZE = 1 << 20 };
    char *in;
    asp_loop *loop = asp_t_loop();
    asp_proc *p = full_terminal(loop, &in, SIZE);
    asp_stream *out = asp_proc_stdout(p), *s = asp_proc_stdin(p);
    ck_assert_int_eq(asp_stream_close(s), 0);
    ck_assert_uint_eq(asp_stream_buffered(s), 0);
    ck_assert_int_eq(asp_proc_resize(p, 50, 100), 0); /* now it reads */
    char line[64];
    ck_assert_int_eq(asp_stream_readline(out, line, sizeof line), 8);
    ssize_t n = asp_stream_readline(out, line, sizeof line);
    ck_assert_int_gt(n, 2);
    line[n - 2] = 0;
    long got = atol(line);
    ck_assert_msg(got > 0 && got < SIZE && got % 64 == 0, "%s", line);
    free(in);
    asp_free(finish(p, NULL));
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_free_while_eof_pending)
{
    /* The end of input still waiting for room when the process is freed:
     * its fd closes with the rest (the fixture checks the count). */
    char *in;
    asp_loop *loop = asp_t_loop();
    asp_proc *p = full_terminal(loop, &in, 1 << 20);
    ck_assert_int_eq(asp_stream_close(asp_proc_stdin(p)), 0);
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_KILL), 0);
    free(in);
    asp_t_loop_free(loop);
}
END_TEST

#ifdef __linux__
START_TEST(pty_canonical_line_limit)
{
    /* The documented limit: 4095 bytes of a line and its newline; the
     * kernel drops the rest of a longer line. */
    char in[6001];
    memset(in, 'x', 6000);
    in[6000] = '\n';
    char *out = count_input(in, sizeof in, ASP_PTY_NOECHO);
    ck_assert_str_eq(out, "4096\r\n");
    asp_free(out);
}
END_TEST
#endif

START_TEST(pty_communicate_with_input)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, ASP_PTY_NOECHO);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "count");
    asp_comm_opts c = {0};
    c.input = "one\ntwo\nthree"; /* the last line unfinished */
    c.input_len = 13;
    c.timeout_ms = 60000;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
    ck_assert_str_eq(r.out, "13\r\n");
    ck_assert_ptr_null(r.err); /* stderr is on the terminal */
    ck_assert_int_eq(r.status.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(r.status.code, 0);
    ck_assert_uint_eq(r.flags, 0);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_communicate_large_input_echoed)
{
    /* 256 KiB in lines, echoed: the terminal's input fills up, the end of
     * file still gets through once the child read the rest, and the
     * output holds the echo and the count of every byte. */
    enum { LINES = 4096, LINE = 64 };
    char *in = malloc(LINES * LINE);
    ck_assert_ptr_nonnull(in);
    for (int i = 0; i < LINES * LINE; i++)
        in[i] = (i % LINE == LINE - 1) ? '\n' : (char)('a' + i % 26);
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "count");
    asp_comm_opts c = {0};
    c.input = in;
    c.input_len = LINES * LINE;
    c.timeout_ms = 60000;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
    /* The echo of each line with "\r\n" (the kernel drops echo it has no
     * room for while the output waits to be read: at most this much),
     * then the count, whole. */
    ck_assert_uint_le(r.out_len, (size_t)LINES * (LINE + 1) + 8);
    ck_assert_uint_ge(r.out_len, 8);
    ck_assert_str_eq(r.out + r.out_len - 8, "262144\r\n");
    ck_assert_int_eq(r.status.code, 0);
    asp_result_free(&r);
    free(in);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_communicate_raw)
{
    /* Raw mode has no end of file: a child that stops by itself is fine. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, ASP_PTY_RAW);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "copy", "4", "say", "!\n");
    asp_comm_opts c = {0};
    c.input = "ab\ncd";
    c.input_len = 4;
    c.timeout_ms = 60000;
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, &c, &r), 0);
    ck_assert_str_eq(r.out, "ab\nc!\n");
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_write_after_hangup_is_epipe)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "exit", "0");
    asp_free(asp_t_read_all(asp_proc_stdout(p), NULL)); /* drained */
    asp_t_wait(p);
    ck_assert_int_eq(asp_stream_write(asp_proc_stdin(p), "x", 1), -EPIPE);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_queued_input_ends_with_epipe)
{
    /* Input queued for a child that never reads it; the child dies. The
     * terminal then reports its hang-up as writable for ever: a drain
     * must end with -EPIPE, not spin. */
    enum { SIZE = 1 << 20 };
    char *in = malloc(SIZE);
    ck_assert_ptr_nonnull(in);
    for (int i = 0; i < SIZE; i++)
        in[i] = (i % 64 == 63) ? '\n' : 'x';
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, ASP_PTY_NOECHO);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "sleep", "60000");
    asp_stream *s = asp_proc_stdin(p);
    ck_assert_int_eq(asp_stream_write(s, in, SIZE), 0);
    ck_assert_uint_gt(asp_stream_buffered(s), 0); /* the terminal is full */
    ck_assert_int_eq(asp_proc_kill(p), 0);
    asp_t_wait(p);
    ck_assert_int_eq(asp_stream_drain(s), -EPIPE);
    free(in);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* ----------------------------------------------------- grandchildren */

START_TEST(pty_grandchild_cut_by_grace)
{
    /* A grandchild that ignores SIGHUP keeps the terminal open after the
     * child's exit: reading ends at the eof grace, marked as cut. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    o.eof_grace_ms = 100;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "ignore-hup", "grandchild", "20000",
                              "say", "bye");
    asp_t_wait(p);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "bye");
    ck_assert(asp_stream_cut(asp_proc_stdout(p)));
    asp_free(out);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_grandchild_gets_sighup)
{
    /* One that does not ignore SIGHUP dies with the session leader (the
     * terminal is its controlling terminal): a plain end of file, long
     * before a grace that would cut. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = all_pty(1, 0);
    o.eof_grace_ms = 15000;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "grandchild", "20000", "say", "bye");
    asp_t_wait(p);
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    ck_assert_str_eq(out, "bye");
    ck_assert(!asp_stream_cut(asp_proc_stdout(p)));
    asp_free(out);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(pty_grandchild_ended_with_the_tree)
{
    /* With no eof grace at all, a grandchild that ignores SIGHUP keeps the
     * terminal open for 20 s after the child's exit. Under containment
     * (a cgroup where one is writable, and the group the terminal's
     * session leader leads) communicate's timeout escalates against the
     * tree: the grandchild is stopped, the terminal ends for real (not
     * cut), the tree ends and everything said before is kept. */
    static const enum asp_contain kinds[] = {ASP_CONTAIN_AUTO,
                                             ASP_CONTAIN_PGROUP};
    asp_loop *loop = asp_t_loop();
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        asp_spawn_opts o = all_pty(1, 0);
        o.eof_grace_ms = ASP_FOREVER;
        o.contain = kinds[i];
        asp_proc *p = ASP_T_SPAWN(loop, &o, "ignore-hup", "grandchild", "20000",
                                  "say", "bye");
        enum asp_contain how = asp_proc_containment(p);
        ck_assert(how == ASP_CONTAIN_CGROUP || how == ASP_CONTAIN_PGROUP);
        asp_comm_opts c = {0};
        c.timeout_ms = 300;
        c.flags = ASP_COMM_ESCALATE;
        c.kill = (asp_kill_opts){{{SIGTERM, 200}, {SIGKILL, 0}}, ASP_KILL_TREE};
        asp_result r;
        double t0 = asp_t_now_ms();
        ck_assert_int_eq(asp_communicate(p, &c, &r), -ETIMEDOUT);
        double took = asp_t_now_ms() - t0;
        ck_assert_msg(r.flags & ASP_RESULT_TIMEOUT, "flags %#x", r.flags);
        ck_assert_msg(!(r.flags & ASP_RESULT_CUT), "flags %#x", r.flags);
        ck_assert(r.out && memmem(r.out, r.out_len, "bye", 3));
        /* Bounded by the timeout and the escalation's grace, far below
         * the grandchild's 20 s (a loose bound: this checks the end, not
         * speed). */
        ck_assert_msg(took < 10000, "communicate took %.0f ms", took);
        /* The escalation ends once SIGKILL went to the whole tree; the
         * tree's end follows as the members die (a process group's when
         * its last member is gone, or where /proc tells, a zombie). */
        ck_assert_int_eq(asp_proc_wait_tree(p, 5000, NULL), 0);
        asp_result_free(&r);
        asp_t_free(p);
    }
    asp_t_loop_free(loop);
}
END_TEST

/* ------------------------------------------------------------ hygiene */

START_TEST(pty_fd_hygiene)
{
    asp_loop *loop = asp_t_loop();
    int masters = fds_on("ptmx");
    asp_spawn_opts o = all_pty(1, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "ttyname", "fds", "sleep", "60000");
    char name[128];
    ssize_t n = asp_stream_readline(asp_proc_stdout(p), name, sizeof name);
    ck_assert_int_gt(n, 2);
    ck_assert_int_eq(strncmp(name, "/dev/pts/", 9), 0);
    name[n - 2] = 0; /* "\r\n" */
    /* The slave was closed right after the spawn; the master is held
     * twice (reader, stdin's writer). */
    ck_assert_int_eq(fds_on(name), 0);
    ck_assert_int_eq(fds_on("ptmx"), masters + 2);
    char fds[64];
    n = asp_stream_readline(asp_proc_stdout(p), fds, sizeof fds);
    ck_assert_int_eq(n, 7);
    ck_assert(!memcmp(fds, "0 1 2\r\n", 7));
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_KILL), 0);
    ck_assert_int_eq(fds_on("ptmx"), masters);
    asp_t_loop_free(loop); /* reaps the killed child */
}
END_TEST

START_TEST(pty_bad_input)
{
    asp_loop *loop = asp_t_loop();
    const char *argv[] = {asp_t_child_path(), NULL};
    asp_proc *p = NULL;
    asp_spawn_opts o = all_pty(1, 0);
    o.pgid = getpgrp(); /* joining a group: cannot lead a session */
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o = all_pty(1, 0);
    o.pty.flags = 0x100; /* unknown */
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o = asp_t_piped(1, 1, 0);
    o.stdio[0].mode = ASP_STDIO_PTY; /* stdin alone: no reader */
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o = asp_t_piped(1, 1, 0);
    o.pty.rows = 10; /* terminal options without a terminal */
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o = asp_t_piped(1, 1, 0);
    o.stdio[1].mode = (enum asp_stdio_mode)(ASP_STDIO_PTY + 1);
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    ck_assert_ptr_null(p);
    /* Implied flags may be given. */
    o = all_pty(1, 0);
    o.flags = ASP_SPAWN_SETSID | ASP_SPAWN_NEW_PGROUP;
    p = ASP_T_SPAWN(loop, &o, "exit", "0");
    /* resize: bad arguments; a process without a terminal. */
    ck_assert_int_eq(asp_proc_resize(NULL, 1, 1), -EINVAL);
    ck_assert_int_eq(asp_proc_resize(p, 0, 80), -EINVAL);
    ck_assert_int_eq(asp_proc_resize(p, 24, 0), -EINVAL);
    ck_assert_int_eq(asp_proc_resize(p, 30, 90), 0);
    asp_free(finish(p, NULL));
    o = asp_t_piped(1, 0, 0);
    p = ASP_T_SPAWN(loop, &o, "exit", "0");
    ck_assert_int_eq(asp_proc_resize(p, 24, 80), -ENOTTY);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* The pty suite. */
Suite *suite_pty(void)
{
    Suite *s = suite_create("pty");
    TCase *tc = asp_t_case("pty", 60);
    tcase_add_test(tc, pty_child_has_terminal);
    tcase_add_test(tc, pty_streams_of_a_terminal);
    tcase_add_test(tc, pty_with_pipes_is_no_terminal);
    tcase_add_test(tc, pty_stdout_only);
    tcase_add_test(tc, pty_stderr_only);
    tcase_add_test(tc, pty_window_size);
    tcase_add_test(tc, pty_stty_size);
    tcase_add_test(tc, pty_resize_sends_sigwinch);
    tcase_add_test(tc, pty_echo_on_by_default);
    tcase_add_test(tc, pty_noecho);
    tcase_add_test(tc, pty_raw);
    tcase_add_test(tc, pty_ctrl_c_is_sigint_when_cooked);
    tcase_add_test(tc, pty_bulk_then_exit_loses_nothing);
    tcase_add_test(tc, pty_output_after_exit_then_eof);
    tcase_add_test(tc, pty_forward_ends_at_eof_not_eio);
    tcase_add_test(tc, pty_on_lines);
    tcase_add_test(tc, pty_close_stdin_sends_eof);
    tcase_add_test(tc, pty_eof_waits_for_a_full_terminal);
    tcase_add_test(tc, pty_free_while_eof_pending);
#ifdef __linux__
    tcase_add_test(tc, pty_canonical_line_limit);
#endif
    tcase_add_test(tc, pty_communicate_with_input);
    tcase_add_test(tc, pty_communicate_large_input_echoed);
    tcase_add_test(tc, pty_communicate_raw);
    tcase_add_test(tc, pty_write_after_hangup_is_epipe);
    tcase_add_test(tc, pty_queued_input_ends_with_epipe);
    tcase_add_test(tc, pty_grandchild_cut_by_grace);
    tcase_add_test(tc, pty_grandchild_gets_sighup);
    tcase_add_test(tc, pty_grandchild_ended_with_the_tree);
    tcase_add_test(tc, pty_fd_hygiene);
    tcase_add_test(tc, pty_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
