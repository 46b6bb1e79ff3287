/*
 * raw_stream.c - the raw C limits for reading a child's output:
 * read-and-discard (blocking or epoll), newline counting, capture into a
 * realloc-doubled buffer, and forwarding into another process (copy or
 * splice). These are what asproc is held against.
 */
#define _GNU_SOURCE
#include "child.h"
#include "common.h"
#include "pattern.h"
#include "raw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The read buffer: 1 MiB with the raised pipe (one read can then empty
 * it), else 64 KiB. Touched up front so page faults stay out of the
 * timing. */
static char *read_buffer(const struct bench_args *a, size_t *len)
{
    *len = strcmp(a->transport, "pipe1m") == 0 ? (size_t)1 << 20
                                               : (size_t)64 << 10;
    char *buf = malloc(*len);
    if (!buf)
        bench_die("malloc", ENOMEM);
    memset(buf, 0, *len);
    return buf;
}

/* What a reading loop does with each chunk, kept in one place so the
 * blocking and epoll loops count and check alike. */
struct sink {
    const struct pat *pat; /* NULL: no byte check */
    uint64_t off;          /* bytes so far */
    uint64_t newlines;     /* counted only when count_lines is set */
    int count_lines;
};

/* Takes one chunk: checks it against the pattern when asked and counts
 * its newlines in the lines mode. */
static void sink_take(struct sink *s, const char *buf, size_t n)
{
    if (s->pat && !pat_check(s->pat, s->off, buf, n))
        bench_mismatch("raw: output differs from the pattern", s->off);
    if (s->count_lines) {
        const char *p = buf, *end = buf + n;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            s->newlines++;
            p++;
        }
    }
    s->off += n;
}

/* Blocking read() until EOF. */
static void read_blocking(int fd, char *buf, size_t len, struct sink *s)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n > 0)
            sink_take(s, buf, (size_t)n);
        else if (n == 0)
            return;
        else if (errno != EINTR)
            bench_die("read", errno);
    }
}

/* epoll_wait, then non-blocking read() until EAGAIN, until EOF: the shape
 * of any event loop's read path without the loop. */
static void read_epoll(int fd, char *buf, size_t len, struct sink *s)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        bench_die("epoll", errno);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        bench_die("O_NONBLOCK", errno);
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            bench_die("epoll_wait", errno);
        }
        for (;;) {
            ssize_t n = read(fd, buf, len);
            if (n > 0) {
                sink_take(s, buf, (size_t)n);
            } else if (n == 0) {
                close(ep);
                return;
            } else if (errno == EAGAIN) {
                break;
            } else if (errno != EINTR) {
                bench_die("read", errno);
            }
        }
    }
}

/* Runs one read-and-discard (lines == 0) or newline-count (lines != 0)
 * measurement and prints its RESULT line. */
static void read_run(const struct bench_args *a, int lines)
{
    size_t len;
    char *buf = read_buffer(a, &len);
    struct pat pat;
    struct sink s = {.count_lines = lines};
    if (a->verify) {
        if (pat_init(&pat, lines ? PAT_LINES : PAT_BYTES, len) != 0)
            bench_die("pattern", ENOMEM);
        s.pat = &pat;
    }
    uint64_t want = lines ? a->size * PAT_LINE_LEN : a->size;
    struct child c;
    uint64_t t0 = bench_now_ns();
    child_start(&c, bench_writer_argv(a, lines, 0), a->transport);
    if (strcmp(a->transport, "epoll") == 0)
        read_epoll(c.fd, buf, len, &s);
    else
        read_blocking(c.fd, buf, len, &s);
    child_finish(&c);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (s.off != want)
        bench_mismatch("raw: byte count differs", s.off);
    if (lines && s.newlines != a->size)
        bench_mismatch("raw: line count differs", s.newlines);
    if (lines)
        bench_result("lines", a->variant, (double)a->size / secs / 1e6,
                     "Mlines/s");
    else
        bench_result("throughput", a->variant, (double)want / secs / 1e9,
                     "GB/s");
    if (a->verify)
        pat_free(&pat);
    free(buf);
}

/* Read-and-discard throughput over a->transport. */
void raw_tput(const struct bench_args *a)
{
    read_run(a, 0);
}

/* read() + memchr line counting over a->transport. */
void raw_lines(const struct bench_args *a)
{
    read_run(a, 1);
}

/* Runs the writer and captures its stdout into a buffer that doubles
 * with realloc whenever it is full, reading straight into its free tail
 * (no copy). Returns the length; *out is the buffer (free it). */
static size_t capture_once(const struct bench_args *a, char **out)
{
    size_t cap = (size_t)64 << 10, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        bench_die("malloc", ENOMEM);
    struct child c;
    child_start(&c, bench_writer_argv(a, 0, 0), a->transport);
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                bench_die("realloc", ENOMEM);
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(c.fd, buf + len, cap - len);
        if (n > 0)
            len += (size_t)n;
        else if (n == 0)
            break;
        else if (errno != EINTR)
            bench_die("read", errno);
    }
    child_finish(&c);
    *out = buf;
    return len;
}

/* One capture of a->size bytes (capture_once). Prints the rate and the
 * peak RSS over the captured size. The bytes are checked after the clock
 * stops, so the check is always on and costs nothing measured. */
void raw_capture(const struct bench_args *a)
{
    char *buf;
    uint64_t t0 = bench_now_ns();
    size_t len = capture_once(a, &buf);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    uint64_t rss = bench_peak_rss();
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)1 << 20) != 0)
        bench_die("pattern", ENOMEM);
    if (len != a->size || !pat_check(&pat, 0, buf, len))
        bench_mismatch("raw: captured bytes differ", len);
    bench_result("capture", a->variant, (double)len / secs / 1e9, "GB/s");
    bench_result("capture-rss", a->variant, (double)rss / (double)len,
                 "x-captured");
    pat_free(&pat);
    free(buf);
}

/* a->count captures of a->size bytes one after another, each buffer
 * checked and freed before the next (what a build tool does with job
 * outputs). Prints the aggregate rate. */
void raw_capture_seq(const struct bench_args *a)
{
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)a->size) != 0)
        bench_die("pattern", ENOMEM);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < a->count; i++) {
        char *buf;
        size_t len = capture_once(a, &buf);
        if (len != a->size || !pat_check(&pat, 0, buf, len))
            bench_mismatch("raw: captured bytes differ", (uint64_t)i);
        free(buf);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    bench_result("capseq", a->variant,
                 (double)a->size * (double)a->count / secs / 1e9, "GB/s");
    pat_free(&pat);
}

/* Forwards the writer's output into the sink (child.h). Transport "copy":
 * read + write through a 64 KiB buffer, default source pipe (the plain C
 * loop); "splice": the source pipe raised to 1 MiB and splice(2) of 1 MiB
 * per call into the sink's pipe (the kernel's limit). Both ends blocking;
 * the clock covers both spawns and reaps. */
void raw_forward(const struct bench_args *a)
{
    int use_splice = strcmp(a->transport, "splice") == 0;
    size_t len = (size_t)64 << 10;
    char *buf = malloc(len);
    if (!buf)
        bench_die("malloc", ENOMEM);
    memset(buf, 0, len);
    struct child w, k;
    uint64_t moved = 0;
    uint64_t t0 = bench_now_ns();
    sink_start(&k, a);
    child_start(&w, bench_writer_argv(a, 0, 0), use_splice ? "pipe1m" : "pipe");
    for (;;) {
        ssize_t n;
        if (use_splice) {
            n = splice(w.fd, NULL, k.fd, NULL, (size_t)1 << 20, SPLICE_F_MOVE);
        } else {
            n = read(w.fd, buf, len);
            if (n > 0)
                bench_write_all(k.fd, buf, (size_t)n);
        }
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bench_die(use_splice ? "splice" : "read", errno);
        }
        moved += (uint64_t)n;
    }
    child_finish(&w);
    sink_finish(&k);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (moved != a->size)
        bench_mismatch("raw: forwarded byte count differs", moved);
    bench_result("forward", a->variant, (double)moved / secs / 1e9, "GB/s");
    free(buf);
}
