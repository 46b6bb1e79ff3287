/*
 * test_forward.c - asp_stream_forward: a child's output sent on to an fd
 * (a file, a pipe, a socket, another child's stdin), by splice or by copy,
 * with the bytes already buffered first, backpressure from a slow target,
 * EPIPE without SIGPIPE, cancel, free, the eof grace, and misuse.
 *
 * The helper child's "out N" writes 'a' + i % 26 for i in [0, N).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A temporary file, already unlinked. */
static int temp_fd(void)
{
    char path[] = "/tmp/asp_fwd_XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    return fd;
}

/* Checks that buf[0, n) is the pattern starting at offset off. */
static void check_pattern(const char *buf, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != (char)('a' + (off + i) % 26))
            ck_abort_msg("byte %zu is %d", off + i, buf[i]);
}

/* Reads a whole file fd from offset 0 (NUL-terminated, free()). */
static char *file_contents(int fd, size_t *len)
{
    off_t size = lseek(fd, 0, SEEK_END);
    ck_assert_int_ge(size, 0);
    char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t r = pread(fd, buf + got, (size_t)size - got, (off_t)got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
    buf[got] = 0;
    *len = got;
    return buf;
}

/* Waits for the child (exit 0) and frees everything. */
static void finish(asp_loop *loop, asp_proc *p)
{
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(st.code, 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
}

/* Forwards "out n" of a child to a file; socketpair picks the transport
 * (then splice cannot serve the pair and the copy path runs). */
static void to_file(size_t n, int socketpair_transport)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    if (socketpair_transport)
        o.flags |= ASP_SPAWN_SOCKETPAIR;
    char num[32];
    snprintf(num, sizeof num, "%zu", n);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "out", num);
    int fd = temp_fd();
    ck_assert_int_eq(asp_stream_forward(asp_proc_stdout(p), fd), (ssize_t)n);
    ck_assert(asp_stream_eof(asp_proc_stdout(p)));
    size_t len;
    char *got = file_contents(fd, &len);
    ck_assert_uint_eq(len, n);
    check_pattern(got, len, 0);
    free(got);
    close(fd);
    finish(loop, p);
}

START_TEST(forward_pipe_to_file)
{
    to_file(3000000, 0); /* splice: pipe to file */
}
END_TEST

START_TEST(forward_socketpair_to_file_copies)
{
    to_file(2000000, 1); /* neither end a pipe: read and write */
}
END_TEST

START_TEST(forward_buffered_bytes_first)
{
    /* The stream reads eagerly: "head-" is in its buffer before the
     * forward starts, and must come out first. The rest comes once the
     * child's stdin is closed (its echo ends), however slow the machine. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "say", "head-", "echo", "out", "100000");
    asp_stream *s = asp_proc_stdout(p);
    double t0 = asp_t_now_ms();
    while (asp_stream_buffered(s) < 5 && asp_t_now_ms() - t0 < 5000)
        asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_uint_eq(asp_stream_buffered(s), 5);
    ck_assert_int_eq(asp_stream_close(asp_proc_stdin(p)), 0);
    int fd = temp_fd();
    ck_assert_int_eq(asp_stream_forward(s, fd), 100005);
    ck_assert_uint_eq(asp_stream_buffered(s), 0);
    size_t len;
    char *got = file_contents(fd, &len);
    ck_assert_uint_eq(len, 100005);
    ck_assert(memcmp(got, "head-", 5) == 0);
    check_pattern(got + 5, len - 5, 0);
    free(got);
    close(fd);
    finish(loop, p);
}
END_TEST

/* A slow consumer of a non-blocking target: a timer takes at most 16 KiB
 * every millisecond from rfd, checking the bytes and noting the most the
 * stream ever held meanwhile. */
typedef struct slow {
    int rfd;
    asp_stream *s;
    asp_timer t;
    size_t got;
    size_t max_buffered;
    long ticks;
    int done, err;
    size_t total;
} slow;

static void slow_tick(asp_timer *t, void *data)
{
    (void)t;
    slow *c = data;
    static char buf[16384];
    c->ticks++;
    ssize_t r = read(c->rfd, buf, sizeof buf);
    if (r > 0) {
        check_pattern(buf, (size_t)r, c->got);
        c->got += (size_t)r;
    }
    size_t b = asp_stream_buffered(c->s);
    if (b > c->max_buffered)
        c->max_buffered = b;
}

static void slow_done(asp_stream *s, int err, const char *buf, size_t len,
                      void *data)
{
    slow *c = data;
    (void)s;
    ck_assert_ptr_null(buf);
    c->done = 1;
    c->err = err;
    c->total = len;
}

/* Starts the forward from inside the loop (a timer callback), as most
 * programs do: the stream's readable event of the same iteration may then
 * come before the forward's first dispatch. */
typedef struct starter {
    asp_timer t;
    slow *c;
    int fd;
} starter;

static void start_forward_cb(asp_timer *t, void *data)
{
    (void)t;
    starter *st = data;
    ck_assert_int_eq(
        asp_stream_forward_start(st->c->s, st->fd, slow_done, st->c), 0);
    close(st->fd); /* the stream has its own duplicate */
}

/* How a slow-target run is set up. */
typedef struct slow_case {
    int socket_target; /* target: socketpair, else a pipe */
    int socket_source; /* ASP_SPAWN_SOCKETPAIR: the copy path */
    int tiny_target;   /* the target pipe shrunk to one page */
    size_t prebuffer;  /* wait for this much in the stream first */
    int grace;         /* a grandchild holds the pipe; 20 ms grace */
} slow_case;

/* 2 MB (3 MB with grace) through a target that takes 16 KB/ms: every
 * byte must arrive in order; the child must be held back (the stream
 * buffers at most one read of its own, far below the high-water mark);
 * the loop must sleep while the target is full (a few iterations per
 * consumer tick, not a spin); with a grace, the cut must wait until the
 * child's pipe is empty. */
static void to_slow_target(slow_case k)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    if (k.socket_source)
        o.flags |= ASP_SPAWN_SOCKETPAIR;
    size_t n = k.grace ? 3000000 : 2000000;
    asp_proc *p;
    if (k.grace) {
        o.eof_grace_ms = 20;
        p = ASP_T_SPAWN(loop, &o, "out", "3000000", "grandchild", "3000");
    } else {
        p = ASP_T_SPAWN(loop, &o, "out", "2000000");
    }
    int fds[2];
    if (k.socket_target)
        ck_assert_int_eq(socketpair(AF_UNIX,
                                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                    0, fds),
                         0);
    else
        ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    if (k.tiny_target)
        ck_assert_int_ge(fcntl(fds[1], F_SETPIPE_SZ, 4096), 4096);
    slow c = {.rfd = fds[0], .s = asp_proc_stdout(p)};
    double t0 = asp_t_now_ms();
    while (asp_stream_buffered(c.s) < k.prebuffer && asp_t_now_ms() - t0 < 5000)
        asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_uint_ge(asp_stream_buffered(c.s), k.prebuffer);
    asp_timer_init(loop, &c.t, slow_tick, &c);
    asp_timer_start(&c.t, 1, 1);
    starter st = {.c = &c, .fd = fds[1]};
    asp_timer_init(loop, &st.t, start_forward_cb, &st);
    asp_timer_start(&st.t, 0, 0);
    long iterations = 0;
    t0 = asp_t_now_ms();
    while ((!c.done || c.got < c.total) && asp_t_now_ms() - t0 < 30000) {
        asp_loop_run(loop, ASP_RUN_ONCE);
        iterations++;
    }
    asp_timer_stop(&c.t);
    ck_assert_msg(c.done, "forward never completed");
    ck_assert_int_eq(c.err, 0);
    ck_assert_uint_eq(c.total, n);
    ck_assert_uint_eq(c.got, n);
    /* One read of the stream's own: 64 KiB on a socketpair, up to 256 KiB
     * on a pipe once it has grown (after the grace, reads go through the
     * buffer). */
    size_t one_read = (k.socket_source ? 64 : 256) * (size_t)1024;
    if (!k.prebuffer)
        ck_assert_msg(c.max_buffered <= one_read,
                      "the stream held %zu bytes: no backpressure",
                      c.max_buffered);
    ck_assert_msg(iterations <= 20 * c.ticks + 1000,
                  "%ld loop iterations for %ld consumer ticks: spinning",
                  iterations, c.ticks);
    ck_assert(asp_stream_cut(c.s) == (k.grace != 0));
    char x;
    ck_assert_int_eq(read(fds[0], &x, 1), 0); /* duplicate closed: EOF */
    close(fds[0]);
    finish(loop, p);
    if (k.grace)
        usleep(20000);
}

START_TEST(forward_backpressure_pipe_target)
{
    to_slow_target((slow_case){0});
}
END_TEST

START_TEST(forward_backpressure_socket_target)
{
    to_slow_target((slow_case){.socket_target = 1});
}
END_TEST

START_TEST(forward_backpressure_copy_path)
{
    /* A socketpair stream into a socket: no pipe on either end. */
    to_slow_target((slow_case){.socket_target = 1, .socket_source = 1});
}
END_TEST

START_TEST(forward_buffered_first_into_full_target)
{
    /* 200 KB already buffered, a one-page target: the buffered bytes go
     * out over many writes, and nothing from the pipe may overtake them. */
    to_slow_target((slow_case){.tiny_target = 1, .prebuffer = 200000});
}
END_TEST

START_TEST(forward_grace_waits_for_a_full_target)
{
    /* The child exits with up to 1 MiB still in its pipe, a grandchild
     * keeps the pipe open, the 20 ms grace runs out long before the slow
     * target has taken it all: no byte may be cut. */
    to_slow_target((slow_case){.grace = 1});
}
END_TEST

START_TEST(forward_into_another_childs_stdin)
{
    /* Child A's stdout into a pipe that is child B's stdin: B counts.
     * Only our end is non-blocking (each end is its own open file). */
    asp_loop *loop = asp_t_loop();
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    ck_assert_int_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    asp_spawn_opts ob = asp_t_piped(1, 0, 0);
    ob.stdio[0].mode = ASP_STDIO_FD;
    ob.stdio[0].fd = fds[0];
    asp_proc *b = ASP_T_SPAWN(loop, &ob, "count");
    close(fds[0]);
    asp_spawn_opts oa = asp_t_piped(1, 0, 0);
    asp_proc *a = ASP_T_SPAWN(loop, &oa, "out", "5000000");
    ck_assert_int_eq(asp_stream_forward(asp_proc_stdout(a), fds[1]), 5000000);
    close(fds[1]); /* B sees EOF */
    char *out = asp_t_read_all(asp_proc_stdout(b), NULL);
    ck_assert_str_eq(out, "5000000\n");
    asp_free(out);
    asp_status st = asp_t_wait(a);
    ck_assert_int_eq(st.code, 0);
    asp_t_free(a);
    finish(loop, b);
}
END_TEST

START_TEST(forward_epipe_without_sigpipe)
{
    /* SIGPIPE at its default (death) and unblocked: one let through would
     * kill this test process. */
    asp_t_sigpipe_deadly();
    for (int sock = 0; sock < 2; sock++) {
        asp_loop *loop = asp_t_loop();
        asp_spawn_opts o = asp_t_piped(1, 0, 0);
        if (sock)
            o.flags |= ASP_SPAWN_SOCKETPAIR; /* socket into pipe: splice */
        asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "1000000");
        int fds[2];
        ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
        close(fds[0]); /* nobody will read */
        ck_assert_int_eq(asp_stream_forward(asp_proc_stdout(p), fds[1]),
                         -EPIPE);
        close(fds[1]);
        asp_t_sigpipe_untouched();
        /* The rest is still the stream's: read it all. */
        size_t len;
        char *rest = asp_t_read_all(asp_proc_stdout(p), &len);
        ck_assert_uint_le(len, 1000000);
        asp_free(rest);
        finish(loop, p);
    }
}
END_TEST

typedef struct ended {
    int calls, err;
} ended;

static void ended_cb(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    ended *e = data;
    (void)s, (void)buf, (void)len;
    e->calls++;
    e->err = err;
}

/* A socket reader, in its own thread, that leaves after `limit` bytes:
 * its close races with the splices of the loop thread. */
typedef struct leaver {
    int rfd;
    size_t limit;
} leaver;

static void *leaver_main(void *arg)
{
    leaver *l = arg;
    static char buf[65536];
    size_t got = 0;
    while (got < l->limit) {
        size_t want = l->limit - got < sizeof buf ? l->limit - got : sizeof buf;
        ssize_t r = read(l->rfd, buf, want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(l->rfd);
    return NULL;
}

START_TEST(forward_reader_leaves_midway)
{
    /* A splice into a socket sends in steps of 16 pipe pages; when the
     * reader closes between two steps, the kernel raises SIGPIPE and the
     * splice still reports the bytes it moved. A blocking target (its
     * sends wait for the reader) with a 1 MiB pipe makes that window
     * wide: 40 runs with readers leaving at different points; each must
     * end -EPIPE with the process alive and no SIGPIPE pending. The child
     * writes more than the socket can hold past any reader's limit (4 MB
     * at most; the send buffer is 4 MiB, doubled by the kernel), so the
     * reader always leaves while output is still coming, however the
     * threads are scheduled. A reader that leaves unread bytes behind may
     * get the writer ECONNRESET from Linux rather than EPIPE: either
     * means "the reader left". */
    asp_t_sigpipe_deadly();
    for (int i = 0; i < 40; i++) {
        asp_loop *loop = asp_t_loop();
        asp_spawn_opts o = asp_t_piped(1, 0, 0);
        o.pipe_size = (size_t)1 << 20;
        asp_proc *p = ASP_T_SPAWN(loop, &o, "out", "16000000");
        int fds[2];
        ck_assert_int_eq(
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        int big = 4 << 20;
        (void)setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        leaver l = {.rfd = fds[0],
                    .limit = 1 + ((size_t)i * 7919u * 13u) % 4000000u};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, leaver_main, &l), 0);
        ssize_t n = asp_stream_forward(asp_proc_stdout(p), fds[1]);
        close(fds[1]);
        pthread_join(th, NULL);
        ck_assert_msg(n == -EPIPE || n == -ECONNRESET, "forward: %zd", n);
        asp_t_sigpipe_untouched();
        ck_assert_int_eq(asp_proc_free(p, ASP_FREE_KILL), 0);
        asp_t_loop_free(loop);
    }
}
END_TEST

static void never_cb(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    (void)s, (void)err, (void)buf, (void)len, (void)data;
    ck_abort_msg("callback after cancel");
}

START_TEST(forward_cancel_keeps_the_data)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "say", "abc", "sleep", "50", "say", "def");
    asp_stream *s = asp_proc_stdout(p);
    int fd = temp_fd();
    int fds0 = asp_t_fd_count();
    ck_assert_int_eq(asp_stream_forward_start(s, fd, never_cb, NULL), 0);
    ck_assert_int_eq(asp_t_fd_count(), fds0 + 1); /* the duplicate */
    ck_assert_int_eq(asp_stream_read_cancel(s), 0);
    ck_assert_int_eq(asp_t_fd_count(), fds0);
    size_t len;
    char *out = asp_t_read_all(s, &len);
    ck_assert_str_eq(out, "abcdef");
    asp_free(out);
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
    close(fd);
    finish(loop, p);
}
END_TEST

START_TEST(forward_free_cancels)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "x", "sleep", "5000");
    int fd = temp_fd();
    ended e = {0};
    ck_assert_int_eq(
        asp_stream_forward_start(asp_proc_stdout(p), fd, ended_cb, &e), 0);
    asp_loop_run(loop, ASP_RUN_NOWAIT);
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_KILL), 0);
    ck_assert_int_eq(e.calls, 1);
    ck_assert_int_eq(e.err, -ECANCELED);
    close(fd); /* the fixture checks that the duplicate is gone too */
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(forward_eof_grace_cut)
{
    /* A grandchild keeps the pipe open: the forward ends by the grace. */
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.eof_grace_ms = 200;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "say", "before", "grandchild", "4000",
                              "exit", "0");
    int fd = temp_fd();
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_stream_forward(asp_proc_stdout(p), fd), 6);
    ck_assert(asp_stream_cut(asp_proc_stdout(p)));
    ck_assert_msg(asp_t_now_ms() - t0 < 3000, "waited for the grandchild");
    size_t len;
    char *got = file_contents(fd, &len);
    ck_assert_str_eq(got, "before");
    free(got);
    close(fd);
    finish(loop, p);
    usleep(20000);
}
END_TEST

START_TEST(forward_misuse)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "exit", "0"); /* writes nothing */
    asp_stream *s = asp_proc_stdout(p);
    int fds0 = asp_t_fd_count();
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int wo = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_eq(asp_stream_forward_start(NULL, wo, ended_cb, NULL),
                     -EINVAL);
    ck_assert_int_eq(asp_stream_forward_start(s, wo, NULL, NULL), -EINVAL);
    ck_assert_int_eq(asp_stream_forward_start(s, -1, ended_cb, NULL), -EBADF);
    ck_assert_int_eq(asp_stream_forward_start(s, 1000000, ended_cb, NULL),
                     -EBADF);
    ck_assert_int_eq(asp_stream_forward_start(s, ro, ended_cb, NULL), -EBADF);
    ck_assert_int_eq(
        asp_stream_forward_start(asp_proc_stdin(p), wo, ended_cb, NULL),
        -EOPNOTSUPP);
    ck_assert_int_eq(asp_stream_read_start(s, 10, ended_cb, NULL), 0);
    ck_assert_int_eq(asp_stream_forward_start(s, wo, ended_cb, NULL), -EBUSY);
    ck_assert_int_eq(asp_stream_read_cancel(s), 0);
    ck_assert_int_eq(asp_t_fd_count(), fds0 + 2); /* nothing but ro, wo */
    ck_assert_int_eq(asp_stream_close(s), 0);
    ck_assert_int_eq(asp_stream_forward_start(s, wo, ended_cb, NULL), -EBADF);
    ck_assert_int_eq(asp_stream_forward(s, wo), -EBADF);
    close(ro);
    close(wo);
    asp_stream_close(asp_proc_stdin(p));
    finish(loop, p);
}
END_TEST

/* The forward suite. */
Suite *suite_forward(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = asp_t_case("forward", 30);
    tcase_add_test(tc, forward_pipe_to_file);
    tcase_add_test(tc, forward_socketpair_to_file_copies);
    tcase_add_test(tc, forward_buffered_bytes_first);
    tcase_add_test(tc, forward_backpressure_pipe_target);
    tcase_add_test(tc, forward_backpressure_socket_target);
    tcase_add_test(tc, forward_backpressure_copy_path);
    tcase_add_test(tc, forward_buffered_first_into_full_target);
    tcase_add_test(tc, forward_grace_waits_for_a_full_target);
    tcase_add_test(tc, forward_into_another_childs_stdin);
    tcase_add_test(tc, forward_epipe_without_sigpipe);
    tcase_add_test(tc, forward_reader_leaves_midway);
    tcase_add_test(tc, forward_cancel_keeps_the_data);
    tcase_add_test(tc, forward_free_cancels);
    tcase_add_test(tc, forward_eof_grace_cut);
    tcase_add_test(tc, forward_misuse);
    suite_add_tcase(s, tc);
    return s;
}
