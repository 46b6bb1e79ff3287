/*
 * test_stream.c - reading stdout/stderr: lines split across reads, the
 * last line without newline, empty output, limits exact and over with no
 * byte lost, read(n) sizes, readexactly at early EOF, readuntil, output of
 * a child that exited before anyone read, stdout and stderr read together,
 * a paused reader (backpressure bounded by the mark plus one read,
 * nothing lost), the fd closed at EOF, the eof grace, misuse, a last line
 * of exactly the limit, bursts of line callbacks interrupted by pause,
 * cancel and a new request, the wording of -ENOTSUP.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Spawns the child with stdout (and stderr) piped. */
static asp_proc *spawn_out(asp_loop *loop, const char *const *acts)
{
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    return asp_t_spawnv(loop, &o, acts);
}

/* Reads one line (blocking) into a static buffer; "" at EOF. */
static const char *line(asp_stream *s, size_t limit, ssize_t *res)
{
    static char buf[1 << 17];
    ssize_t n = asp_stream_readline(s, buf, limit ? limit : 65536);
    if (res)
        *res = n;
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* Waits, frees, and frees the loop. */
static void finish(asp_loop *loop, asp_proc *p)
{
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}

START_TEST(stream_lines_split_across_reads)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p =
        spawn_out(loop, (const char *const[]){"say", "abc", "sleep", "30",
                                              "say", "def\nxy", "sleep", "30",
                                              "say", "z\n\nlast", NULL});
    asp_stream *s = asp_proc_stdout(p);
    ck_assert_str_eq(line(s, 0, NULL), "abcdef\n");
    ck_assert_str_eq(line(s, 0, NULL), "xyz\n");
    ck_assert_str_eq(line(s, 0, NULL), "\n");
    ck_assert_str_eq(line(s, 0, NULL), "last"); /* no newline at EOF */
    ssize_t n;
    line(s, 0, &n);
    ck_assert_int_eq(n, 0); /* then EOF */
    line(s, 0, &n);
    ck_assert_int_eq(n, 0); /* and again */
    ck_assert(asp_stream_eof(s));
    finish(loop, p);
}
END_TEST

START_TEST(stream_empty_output)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = spawn_out(loop, (const char *const[]){"exit", "0", NULL});
    ssize_t n;
    line(asp_proc_stdout(p), 0, &n);
    ck_assert_int_eq(n, 0);
    char b[4];
    ck_assert_int_eq(asp_stream_read(asp_proc_stderr(p), b, 4), 0);
    finish(loop, p);
}
END_TEST

START_TEST(stream_limit_exact_and_over_loses_nothing)
{
    /* 99 letters and a newline: a 100-byte line. */
    char text[128];
    memset(text, 'q', 99);
    text[99] = '\n';
    text[100] = 0;
    asp_loop *loop = asp_t_loop();
    asp_proc *p =
        spawn_out(loop, (const char *const[]){"say", text, "say", text, NULL});
    asp_stream *s = asp_proc_stdout(p);
    ssize_t n;
    ck_assert_str_eq(line(s, 100, &n), text); /* exactly the limit: fine */
    line(s, 99, &n);
    ck_assert_int_eq(n, -EMSGSIZE); /* one over */
    ck_assert_uint_eq(asp_stream_buffered(s), 100);
    /* Nothing was lost: read(n) takes every byte. */
    char buf[200];
    size_t got = 0;
    while (got < 100) {
        ssize_t r = asp_stream_read(s, buf + got, 30);
        ck_assert_int_gt(r, 0);
        ck_assert_int_le(r, 30);
        got += (size_t)r;
    }
    ck_assert_int_eq(memcmp(buf, text, 100), 0);
    line(s, 0, &n);
    ck_assert_int_eq(n, 0);
    finish(loop, p);
}
END_TEST

START_TEST(stream_long_line_over_default_limit)
{
    /* 200000 bytes without a newline: over the 64 KiB default. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = spawn_out(loop, (const char *const[]){"out", "200000", NULL});
    asp_stream *s = asp_proc_stdout(p);
    ssize_t n;
    line(s, 0, &n);
    ck_assert_int_eq(n, -EMSGSIZE);
    /* A larger limit takes it whole (the last line at EOF). */
    static char big[250000];
    n = asp_stream_readline(s, big, sizeof big);
    ck_assert_int_eq(n, 200000);
    for (int i = 0; i < 200000; i++)
        ck_assert_int_eq(big[i], 'a' + i % 26);
    finish(loop, p);
}
END_TEST

START_TEST(stream_read_n_sizes)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = spawn_out(loop, (const char *const[]){"out", "100000", NULL});
    asp_stream *s = asp_proc_stdout(p);
    static const size_t sizes[] = {1, 3, 7, 100, 4096, 65536, 100000};
    static char all[100000];
    size_t got = 0;
    for (int k = 0; got < sizeof all; k = (k + 1) % 7) {
        ssize_t r = asp_stream_read(s, all + got, sizes[k]);
        ck_assert_int_gt(r, 0);
        ck_assert_int_le((size_t)r, sizes[k]);
        got += (size_t)r;
    }
    for (size_t i = 0; i < sizeof all; i++)
        ck_assert_int_eq(all[i], 'a' + (int)(i % 26));
    char b;
    ck_assert_int_eq(asp_stream_read(s, &b, 1), 0);
    finish(loop, p);
}
END_TEST

START_TEST(stream_readexactly_and_early_eof)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = spawn_out(loop, (const char *const[]){"out", "30", NULL});
    asp_stream *s = asp_proc_stdout(p);
    char buf[64];
    size_t got = 99;
    ck_assert_int_eq(asp_stream_readexactly(s, buf, 20, &got), 20);
    ck_assert_int_eq(memcmp(buf, "abcdefghijklmnopqrst", 20), 0);
    /* 10 left, 20 asked: -ENODATA with the partial data. */
    ck_assert_int_eq(asp_stream_readexactly(s, buf, 20, &got), -ENODATA);
    ck_assert_uint_eq(got, 10);
    ck_assert_int_eq(memcmp(buf, "uvwxyzabcd", 10), 0);
    ck_assert_int_eq(asp_stream_readexactly(s, buf, 5, &got), -ENODATA);
    ck_assert_uint_eq(got, 0);
    finish(loop, p);
}
END_TEST

typedef struct {
    char out[256];
    int calls;
    int errs[8];
    size_t lens[8];
} until_ctx;

/* Appends each piece and its error. */
static void until_cb(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    until_ctx *c = data;
    (void)s;
    c->errs[c->calls] = err;
    c->lens[c->calls++] = len;
    strncat(c->out, buf ? buf : "", len);
    strcat(c->out, "|");
}

START_TEST(stream_readuntil)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p =
        spawn_out(loop, (const char *const[]){"say", "a--b-", "sleep", "20",
                                              "say", "-c", NULL});
    asp_stream *s = asp_proc_stdout(p);
    until_ctx c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(
            asp_stream_readuntil_start(s, "--", 2, 0, until_cb, &c), 0);
        while (c.calls == i)
            asp_loop_run(loop, ASP_RUN_ONCE);
    }
    ck_assert_str_eq(c.out, "a--|b--|c|");
    ck_assert_int_eq(c.errs[2], -ENODATA); /* EOF without the separator */
    ck_assert_int_eq(asp_stream_readuntil_start(s, "", 0, 0, until_cb, &c),
                     -EINVAL);
    ck_assert_int_eq(asp_stream_readuntil_start(s, NULL, 1, 0, until_cb, &c),
                     -EINVAL);
    finish(loop, p);
}
END_TEST

START_TEST(stream_output_kept_after_exit_and_reap)
{
    /* 256 KiB is four pipes' worth: the child can only finish if the
     * stream reads while we wait. Then everything is still readable. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p =
        spawn_out(loop, (const char *const[]){"out", "262144", "err", "70000",
                                              "exit", "0", NULL});
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 0);
    size_t n, m;
    char *out = asp_t_read_all(asp_proc_stdout(p), &n);
    char *err = asp_t_read_all(asp_proc_stderr(p), &m);
    ck_assert_uint_eq(n, 262144);
    ck_assert_uint_eq(m, 70000);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(out[i], 'a' + (int)(i % 26));
    asp_free(out);
    asp_free(err);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    int out_lines, err_bytes, order_mixed;
    int last; /* 1 out, 2 err */
    int switches;
    int eofs;
} both_ctx;

/* Counts stdout lines. */
static void both_line_cb(asp_stream *s, int err, const char *buf, size_t len,
                         void *data)
{
    both_ctx *c = data;
    (void)s;
    (void)buf;
    ck_assert_int_eq(err, 0);
    if (len == 0) {
        c->eofs++;
        return;
    }
    if (c->last == 2)
        c->switches++;
    c->last = 1;
    c->out_lines++;
}

/* Counts stderr bytes. */
static void both_chunk_cb(asp_stream *s, int err, const char *buf, size_t len,
                          void *data)
{
    both_ctx *c = data;
    (void)s;
    (void)buf;
    ck_assert_int_eq(err, 0);
    if (len == 0) {
        c->eofs++;
        return;
    }
    if (c->last == 1)
        c->switches++;
    c->last = 2;
    c->err_bytes += (int)len;
}

START_TEST(stream_stdout_and_stderr_together)
{
    /* 3 MB on stderr around 20000 lines on stdout: with a reader on each
     * neither stalls the other (each would block the child alone). */
    asp_loop *loop = asp_t_loop();
    asp_proc *p =
        spawn_out(loop, (const char *const[]){"err", "1500000", "lines",
                                              "20000", "err", "1500000", NULL});
    both_ctx c;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(
        asp_stream_on_lines(asp_proc_stdout(p), 0, both_line_cb, &c), 0);
    ck_assert_int_eq(
        asp_stream_on_chunks(asp_proc_stderr(p), 4096, both_chunk_cb, &c), 0);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.out_lines, 20000);
    ck_assert_int_eq(c.err_bytes, 3000000);
    ck_assert_int_eq(c.eofs, 2);
    ck_assert_int_ge(c.switches, 2);
    finish(loop, p);
}
END_TEST

typedef struct {
    asp_stream *s;
    size_t total;
    int paused_once;
    int bad;
    int eof;
} pause_ctx;

/* Checks every byte; pauses after the first chunk. */
static void pause_cb(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    pause_ctx *c = data;
    ck_assert_int_eq(err, 0);
    if (len == 0) {
        c->eof = 1;
        return;
    }
    for (size_t i = 0; i < len; i++)
        if (buf[i] != 'a' + (int)((c->total + i) % 26))
            c->bad++;
    c->total += len;
    if (!c->paused_once) {
        c->paused_once = 1;
        ck_assert_int_eq(asp_stream_pause(s), 0);
    }
}

START_TEST(stream_paused_reader_loses_nothing)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.high_water = 256 * 1024;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "5000000");
    asp_stream *s = asp_proc_stdout(p);
    pause_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    asp_stream_on_chunks(s, 0, pause_cb, &c);
    /* Let it fill: the stream stops at the high-water mark and the child
     * blocks on the full pipe. */
    double end = asp_t_now_ms() + 300;
    while (asp_t_now_ms() < end)
        asp_loop_run(loop, ASP_RUN_NOWAIT), usleep(2000);
    ck_assert_int_eq(c.paused_once, 1);
    size_t held = asp_stream_buffered(s);
    ck_assert_uint_ge(held, 256 * 1024);
    ck_assert_uint_le(held, 256 * 1024 + 2 * 65536);
    ck_assert_int_eq(asp_proc_signal(p, 0), 0); /* still blocked, alive */
    ck_assert_int_eq(asp_stream_resume(s), 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.eof, 1);
    ck_assert_uint_eq(c.total, 5000000);
    ck_assert_int_eq(c.bad, 0);
    finish(loop, p);
}
END_TEST

/* A paused continuous reader of a child writing 8 MiB: once the stream
 * holds the high-water mark it reads no more (the child blocks), holding
 * at most the mark plus one read; resumed, every byte arrives. */
static void paused_bound(size_t high_water, size_t read_buffer, size_t bound)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.high_water = high_water;
    o.read_buffer = read_buffer;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "8388608");
    asp_stream *s = asp_proc_stdout(p);
    size_t mark = high_water ? high_water : (size_t)1 << 20;
    pause_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    ck_assert_int_eq(asp_stream_on_chunks(s, 0, pause_cb, &c), 0);
    double end = asp_t_now_ms() + 20000;
    while (asp_stream_buffered(s) < mark && asp_t_now_ms() < end) {
        asp_loop_run(loop, ASP_RUN_NOWAIT);
        ck_assert_uint_le(asp_stream_buffered(s), bound);
        usleep(500);
    }
    ck_assert_uint_ge(asp_stream_buffered(s), mark);
    /* It stays there however long the loop runs. */
    for (int i = 0; i < 100; i++) {
        asp_loop_run(loop, ASP_RUN_NOWAIT);
        ck_assert_msg(asp_stream_buffered(s) <= bound,
                      "%zu bytes buffered, more than %zu (mark %zu)",
                      asp_stream_buffered(s), bound, mark);
        usleep(1000);
    }
    ck_assert_int_eq(c.paused_once, 1);
    ck_assert_int_eq(asp_stream_resume(s), 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.eof, 1);
    ck_assert_uint_eq(c.total, 8388608);
    ck_assert_int_eq(c.bad, 0);
    finish(loop, p);
}

START_TEST(stream_paused_reader_holds_mark_plus_one_read)
{
    /* The default mark (1 MiB) and read size (a bulk stream reads 256 KiB
     * at a time), then a small mark with a small read buffer. */
    paused_bound(0, 0, ((size_t)1 << 20) + ((size_t)256 << 10));
    paused_bound(10000, 4096, 10000 + 4096);
}
END_TEST

START_TEST(stream_fds_closed_at_eof)
{
    /* Each output stream closes its pipe at EOF: read to the end and the
     * child reaped, the process holds no fd before it is freed. The first
     * spawn opens the loop's exit source, so count after it. */
    asp_loop *loop = asp_t_loop();
    asp_proc *p = spawn_out(loop, (const char *const[]){"exit", "0", NULL});
    asp_t_wait(p);
    asp_t_free(p);
    int fds = asp_t_fd_count();
    p = spawn_out(loop, (const char *const[]){"say", "O", "esay", "E", NULL});
    char *out = asp_t_read_all(asp_proc_stdout(p), NULL);
    char *err = asp_t_read_all(asp_proc_stderr(p), NULL);
    ck_assert_str_eq(out, "O");
    ck_assert_str_eq(err, "E");
    asp_free(out);
    asp_free(err);
    ck_assert(asp_stream_eof(asp_proc_stdout(p)));
    ck_assert(asp_stream_eof(asp_proc_stderr(p)));
    asp_t_wait(p);
    ck_assert_int_eq(asp_t_fd_count(), fds);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(stream_eof_grace_cuts_grandchild_pipe)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.eof_grace_ms = 200;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "before\n", "grandchild", "4000",
                              "exit", "0");
    asp_stream *s = asp_proc_stdout(p);
    double t0 = asp_t_now_ms();
    ck_assert_str_eq(line(s, 0, NULL), "before\n");
    ssize_t n;
    line(s, 0, &n);
    ck_assert_int_eq(n, 0); /* EOF by the grace */
    ck_assert(asp_stream_cut(s));
    ck_assert_msg(asp_t_now_ms() - t0 < 3000, "waited for the grandchild");
    finish(loop, p);
    usleep(20000);
}
END_TEST

START_TEST(stream_no_grace_waits_for_real_eof)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.eof_grace_ms = ASP_FOREVER;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "grandchild", "400", "exit", "0");
    double t0 = asp_t_now_ms();
    ssize_t n;
    line(asp_proc_stdout(p), 0, &n);
    ck_assert_int_eq(n, 0);
    ck_assert(!asp_stream_cut(asp_proc_stdout(p)));
    ck_assert(asp_t_now_ms() - t0 >= 350);
    finish(loop, p);
}
END_TEST

/* Never called. */
static void never_cb(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    (void)s;
    (void)err;
    (void)buf;
    (void)len;
    (void)data;
    ck_abort_msg("callback ran inside the request call");
}

typedef struct {
    asp_proc *p;
    int calls;
} free_ctx;

/* Frees the whole process from inside a read callback. */
static void free_in_read_cb(asp_stream *s, int err, const char *buf, size_t len,
                            void *data)
{
    free_ctx *c = data;
    (void)s;
    (void)err;
    (void)buf;
    (void)len;
    c->calls++;
    ck_assert_int_eq(asp_proc_free(c->p, ASP_FREE_KILL), 0);
}

START_TEST(stream_misuse_and_free_in_callback)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "data", "sleep", "5000");
    asp_stream *out = asp_proc_stdout(p);
    ck_assert_int_eq(asp_stream_read_start(out, 0, never_cb, NULL), -EINVAL);
    ck_assert_int_eq(asp_stream_read_start(out, 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(asp_stream_read_start(NULL, 1, never_cb, NULL), -EINVAL);
    ck_assert_int_eq(
        asp_stream_read_start(asp_proc_stdin(p), 1, never_cb, NULL),
        -EOPNOTSUPP);
    ck_assert_int_eq(asp_stream_readexactly_start(out, 0, never_cb, NULL),
                     -EINVAL);
    ck_assert_int_eq(asp_stream_read_cancel(out), -EALREADY);
    ck_assert_int_eq(asp_stream_pause(out), -EALREADY);
    /* Wait until "data" is buffered, then a request must not call back
     * from inside the call. */
    while (asp_stream_buffered(out) < 4)
        asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_int_eq(asp_stream_read_start(out, 10, never_cb, NULL), 0);
    ck_assert_int_eq(asp_stream_readline_start(out, 0, never_cb, NULL), -EBUSY);
    ck_assert_int_eq(asp_stream_read_cancel(out), 0);
    ck_assert_uint_eq(asp_stream_buffered(out), 4);
    /* A closed stream refuses reads. */
    ck_assert_int_eq(asp_stream_close(asp_proc_stderr(p)), 0);
    ck_assert_int_eq(asp_stream_close(asp_proc_stderr(p)), -EBADF);
    ck_assert_int_eq(
        asp_stream_read_start(asp_proc_stderr(p), 1, never_cb, NULL), -EBADF);
    /* Freeing the process from inside a read callback. */
    free_ctx c = {p, 0};
    ck_assert_int_eq(asp_stream_read_start(out, 10, free_in_read_cb, &c), 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.calls, 1);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    int lines, eofs, after_eof;
} eof_ctx;

/* Counts lines and EOFs of a continuous reader. */
static void eof_cb(asp_stream *s, int err, const char *buf, size_t len,
                   void *data)
{
    eof_ctx *c = data;
    (void)s;
    (void)buf;
    ck_assert_int_eq(err, 0);
    if (len)
        c->lines++;
    else
        c->eofs++;
}

START_TEST(stream_continuous_eof_once)
{
    asp_loop *loop = asp_t_loop();
    asp_proc *p = spawn_out(loop, (const char *const[]){"lines", "1000", NULL});
    eof_ctx c = {0, 0, 0};
    asp_stream_on_lines(asp_proc_stdout(p), 0, eof_cb, &c);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.lines, 1000);
    ck_assert_int_eq(c.eofs, 1);
    finish(loop, p);
}
END_TEST

/* ---- a last line of exactly the limit ---- */

START_TEST(regress_last_line_of_exactly_the_limit)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "abcd");
    char buf[16];
    ck_assert_int_eq(asp_stream_readline(asp_proc_stdout(p), buf, 4), 4);
    ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
    asp_t_wait(p);
    asp_t_free(p);
    /* One byte more is over. */
    p = ASP_T_SPAWN(loop, &o, "say", "abcde");
    ck_assert_int_eq(asp_stream_readline(asp_proc_stdout(p), buf, 4),
                     -EMSGSIZE);
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* Lines of every length from 1 to 200 bytes, line k ('\n' included)
 * being k bytes of 'a' + k % 26: they start at every offset within the
 * 64-byte blocks the line scanner works in. */
#define BURST_LINES 200

typedef struct {
    asp_stream *s;
    int next;   /* the line expected next (1-based) */
    int paused; /* paused at line 37, not resumed yet */
    int first;  /* lines the first callback got */
    int second; /* lines the callback of the second request got */
    int bad, eof;
} burst_ctx;

static void burst_cb2(asp_stream *s, int err, const char *buf, size_t len,
                      void *data);

/* Checks line next; pauses at 37; at 101 cancels and starts a second
 * on_lines (same kind, another callback), which must get the rest. */
static void burst_check(burst_ctx *c, int err, const char *buf, size_t len)
{
    if (err != 0 || c->paused) {
        c->bad++;
        return;
    }
    int k = c->next++;
    if (len != (size_t)k || buf[k - 1] != '\n')
        c->bad++;
    for (int i = 0; i + 1 < k && (size_t)i < len; i++)
        if (buf[i] != 'a' + k % 26)
            c->bad++;
}

/* The first request's callback. */
static void burst_cb1(asp_stream *s, int err, const char *buf, size_t len,
                      void *data)
{
    burst_ctx *c = data;
    burst_check(c, err, buf, len);
    c->first++;
    if (c->next == 38) {
        ck_assert_int_eq(asp_stream_pause(s), 0);
        c->paused = 1;
    } else if (c->next == 102) {
        ck_assert_int_eq(asp_stream_read_cancel(s), 0);
        ck_assert_int_eq(asp_stream_on_lines(s, 0, burst_cb2, c), 0);
    }
}

/* The second request's callback. */
static void burst_cb2(asp_stream *s, int err, const char *buf, size_t len,
                      void *data)
{
    burst_ctx *c = data;
    (void)s;
    if (len == 0 && err == 0) {
        c->eof = 1;
        return;
    }
    burst_check(c, err, buf, len);
    c->second++;
}

START_TEST(stream_lines_every_length_with_pause_and_cancel)
{
    /* Line callbacks come in bursts, many per read: a pause, a cancel and
     * a new request made from a callback must each take effect at once,
     * and no line may be lost, doubled or split, whatever its length and
     * offset. */
    static char text[BURST_LINES * (BURST_LINES + 1) / 2 + 1];
    size_t n = 0;
    for (int k = 1; k <= BURST_LINES; k++) {
        memset(text + n, 'a' + k % 26, (size_t)k - 1);
        n += (size_t)k - 1;
        text[n++] = '\n';
    }
    text[n] = 0;
    asp_loop *loop = asp_t_loop();
    asp_proc *p = spawn_out(loop, (const char *const[]){"say", text, NULL});
    asp_stream *s = asp_proc_stdout(p);
    burst_ctx c = {.s = s, .next = 1};
    /* Everything is in the pipe before the first line is read. */
    asp_t_wait(p);
    ck_assert_int_eq(asp_stream_on_lines(s, 0, burst_cb1, &c), 0);
    for (int i = 0; i < 20 && !c.paused; i++)
        asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_int_eq(c.paused, 1);
    for (int i = 0; i < 5; i++)
        asp_loop_run(loop, ASP_RUN_NOWAIT); /* nothing while paused */
    ck_assert_int_eq(c.next, 38);
    c.paused = 0;
    ck_assert_int_eq(asp_stream_resume(s), 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.bad, 0);
    ck_assert_int_eq(c.first, 101);
    ck_assert_int_eq(c.second, BURST_LINES - 101);
    ck_assert_int_eq(c.eof, 1);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(stream_enotsup_wording_fits_every_caller)
{
    /* -ENOTSUP (the same number as -EOPNOTSUPP on Linux) comes from
     * asp_loop_new (a backend or source not built in or not supported
     * here), asp_loop_fd (the poll backend) and stream calls made on the
     * wrong direction: one wording, true for each of them. */
    static const char want[] = "not supported (not built in, not by this "
                               "kernel or backend, or not in this "
                               "direction of a stream)";
    ck_assert_str_eq(asp_strerror(-ENOTSUP), want);
    ck_assert_str_eq(asp_strerror(-EOPNOTSUPP), want);
    asp_loop *loop = asp_t_loop();
    if (asp_loop_backend(loop) == ASP_BACKEND_POLL)
        ck_assert_int_eq(asp_loop_fd(loop), -ENOTSUP);
    /* stdout piped too: count's "0" at EOF stays out of the test log. */
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "count");
    char b;
    ck_assert_int_eq(asp_stream_read(asp_proc_stdin(p), &b, 1), -EOPNOTSUPP);
    asp_stream_close(asp_proc_stdin(p));
    asp_t_wait(p);
    asp_t_free(p);
    asp_t_loop_free(loop);
#if defined(__linux__) && !defined(ASP_FAKE_KQUEUE)
    /* No kqueue on Linux. */
    asp_loop *none = NULL;
    asp_loop_opts lo = {ASP_BACKEND_KQUEUE, 0};
    ck_assert_int_eq(asp_loop_new(&none, &lo), -ENOTSUP);
#endif
}
END_TEST

/* The stream suite. */
Suite *suite_stream(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = asp_t_case("stream", 30);
    tcase_add_test(tc, stream_lines_split_across_reads);
    tcase_add_test(tc, stream_empty_output);
    tcase_add_test(tc, stream_limit_exact_and_over_loses_nothing);
    tcase_add_test(tc, stream_long_line_over_default_limit);
    tcase_add_test(tc, stream_read_n_sizes);
    tcase_add_test(tc, stream_readexactly_and_early_eof);
    tcase_add_test(tc, stream_readuntil);
    tcase_add_test(tc, stream_output_kept_after_exit_and_reap);
    tcase_add_test(tc, stream_stdout_and_stderr_together);
    tcase_add_test(tc, stream_paused_reader_loses_nothing);
    tcase_add_test(tc, stream_paused_reader_holds_mark_plus_one_read);
    tcase_add_test(tc, stream_fds_closed_at_eof);
    tcase_add_test(tc, stream_eof_grace_cuts_grandchild_pipe);
    tcase_add_test(tc, stream_no_grace_waits_for_real_eof);
    tcase_add_test(tc, stream_misuse_and_free_in_callback);
    tcase_add_test(tc, stream_continuous_eof_once);
    tcase_add_test(tc, regress_last_line_of_exactly_the_limit);
    tcase_add_test(tc, stream_lines_every_length_with_pause_and_cancel);
    tcase_add_test(tc, stream_enotsup_wording_fits_every_caller);
    suite_add_tcase(s, tc);
    return s;
}
