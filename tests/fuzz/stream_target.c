/*
 * stream_target.c - the stream reader under arbitrary chunkings.
 *
 * One input is a script: a header (buffer and high-water sizes) and ops
 * of three bytes each. The bytes that follow the ops are the data. A
 * stream is set up over a pipe whose write end the script holds (white
 * box: the stream room's own constructor), so the chunking the
 * reader sees is exactly the one the script writes, run after run.
 * (The streams room needs no process: a reader over any fd.)
 *
 * Every delivered byte is checked against a model (the data not yet
 * consumed), every result against its request's contract (a line ends at
 * its first '\n', readuntil at its first separator, read(n) gives 1..n,
 * readexactly n or -ENODATA at EOF, -EMSGSIZE only when no end is within
 * the limit and nothing is consumed), and at the end the concatenation of
 * all deliveries must be the data itself: the same bytes as one flat read.
 *
 * Used by the libFuzzer target (fuzz_stream.c) and replayed over the
 * corpus by the hardening corpus suite.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include "../../src/stream/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OP_READ,
    OP_EXACT,
    OP_LINE,
    OP_UNTIL,
    OP_WRITE,
    OP_LINES,
    OP_CHUNKS,
    OP_COUNT
};

static const char *const seps[] = {"\n", "\r\n", "ab", "aab", "xyzxy", "\0"};
static const size_t seplens[] = {1, 2, 2, 3, 5, 1};

typedef struct run {
    const unsigned char *data;
    size_t len;      /* data bytes */
    size_t written;  /* into the pipe so far */
    size_t consumed; /* delivered so far */
    int wfd;
    int wclosed;
    asp_stream *s;

    /* The pending request. */
    int kind;
    size_t n;   /* read/exact size, line/until limit, continuous stop */
    size_t lim; /* line/until limit */
    int sep;
    int done;     /* the request ended (one-shot) */
    int at_eof;   /* a callback reported EOF */
    size_t calls; /* continuous mode deliveries */

    char *why;
    size_t whylen;
    int failed;
} run;

/* Records the first failure. */
static void fail(run *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, r->whylen, fmt, ap);
    va_end(ap);
}

/* Whether sep (len sl) occurs in buf[0, n), and where. */
static const char *find(const char *buf, size_t n, const char *sep, size_t sl)
{
    if (sl == 0 || n < sl)
        return NULL;
    for (size_t i = 0; i + sl <= n; i++)
        if (!memcmp(buf + i, sep, sl))
            return buf + i;
    return NULL;
}

/* Checks a delivery of len bytes against the model and consumes it. */
static void consume(run *r, const char *buf, size_t len)
{
    if (r->consumed + len > r->written) {
        fail(r, "delivered %zu bytes at %zu, only %zu written", len,
             r->consumed, r->written);
        return;
    }
    if (len && memcmp(buf, r->data + r->consumed, len)) {
        fail(r, "bytes at %zu differ from the data", r->consumed);
        return;
    }
    r->consumed += len;
}

/* The bytes written but not delivered: what the stream may hold. */
static const char *rest(const run *r, size_t *n)
{
    *n = r->written - r->consumed;
    return (const char *)r->data + r->consumed;
}

/* One callback: checks it against the request's contract. */
static void on_read(asp_stream *s, int err, const char *buf, size_t len,
                    void *data)
{
    run *r = data;
    (void)s;
    size_t avail;
    const char *model = rest(r, &avail);
    int line = r->kind == OP_LINE || r->kind == OP_LINES;
    const char *sep = line ? "\n" : seps[r->sep];
    size_t sl = line ? 1 : seplens[r->sep];

    if (err == 0 && len == 0) {
        /* EOF: only once everything written was delivered and the pipe's
         * write end is closed. */
        if (!r->wclosed || avail)
            fail(r, "EOF with %zu bytes undelivered (write end %s)", avail,
                 r->wclosed ? "closed" : "open");
        r->at_eof = 1;
        r->done = 1;
        return;
    }
    if (err == -EMSGSIZE) {
        if (r->kind != OP_LINE && r->kind != OP_UNTIL && r->kind != OP_LINES)
            fail(r, "EMSGSIZE from request kind %d", r->kind);
        else if (avail < r->lim || find(model, r->lim, sep, sl))
            fail(r,
                 "EMSGSIZE with limit %zu but %zu bytes held and an "
                 "end within the limit: %d",
                 r->lim, avail,
                 find(model, r->lim < avail ? r->lim : avail, sep, sl) != NULL);
        r->done = 1;
        return;
    }
    if (err == -ENODATA) {
        if (r->kind != OP_EXACT && r->kind != OP_UNTIL)
            fail(r, "ENODATA from request kind %d", r->kind);
        else if (!r->wclosed || len != avail)
            fail(r, "ENODATA with %zu bytes while %zu remain", len, avail);
        else if (r->kind == OP_EXACT && len >= r->n)
            fail(r, "ENODATA for exactly %zu with %zu bytes", r->n, len);
        consume(r, buf, len);
        r->done = 1;
        return;
    }
    if (err < 0) {
        fail(r, "unexpected error %d (%s)", err, asp_strerror(err));
        r->done = 1;
        return;
    }
    switch (r->kind) {
    case OP_READ:
        if (len > r->n)
            fail(r, "read(%zu) gave %zu", r->n, len);
        break;
    case OP_EXACT:
        if (len != r->n)
            fail(r, "readexactly(%zu) gave %zu", r->n, len);
        break;
    case OP_CHUNKS:
        if (r->n && len > r->n)
            fail(r, "chunk of %zu over max %zu", len, r->n);
        break;
    case OP_LINE:
    case OP_LINES:
    case OP_UNTIL: {
        size_t lim = r->lim;
        const char *at = find(model, avail, sep, sl);
        if (len > lim)
            fail(r, "a result of %zu over limit %zu", len, lim);
        else if (at && (size_t)(at - model) + sl != len)
            fail(r, "result of %zu bytes, first end at %zu", len,
                 (size_t)(at - model) + sl);
        else if (!at && (!r->wclosed || len != avail))
            fail(r, "result of %zu bytes without an end before EOF", len);
        if (r->kind == OP_UNTIL && !at)
            fail(r, "readuntil ended without its separator and no ENODATA");
        break;
    }
    default: break;
    }
    consume(r, buf, len);
    r->calls++;
    if (r->kind == OP_LINES || r->kind == OP_CHUNKS) {
        /* Continuous: stop from inside the callback after a few. */
        if (r->calls >= (r->kind == OP_LINES ? r->n : 3)) {
            int c = asp_stream_read_cancel(s);
            if (c != 0)
                fail(r, "cancel from the callback: %d", c);
            r->done = 1;
        }
    } else {
        r->done = 1;
    }
}

/* Writes up to n more data bytes (what the pipe takes). */
static void feed(run *r, size_t n)
{
    if (r->wclosed)
        return;
    if (n > r->len - r->written)
        n = r->len - r->written;
    while (n) {
        ssize_t w = write(r->wfd, r->data + r->written, n);
        if (w <= 0)
            return; /* the pipe is full: the loop must read first */
        r->written += (size_t)w;
        n -= (size_t)w;
    }
}

/* Closes the write end: the stream sees EOF after the data. */
static void close_w(run *r)
{
    if (!r->wclosed) {
        close(r->wfd);
        r->wclosed = 1;
    }
}

/* Runs the loop until the pending request is done, feeding the rest of
 * the data in small pieces and finally EOF when it needs more. */
static void complete(run *r, asp_loop *loop)
{
    for (int spins = 0; !r->done && !r->failed; spins++) {
        asp_loop_run(loop, ASP_RUN_NOWAIT);
        if (r->done || r->failed)
            break;
        if (spins % 4 == 3) {
            if (r->written < r->len)
                feed(r, 97);
            else
                close_w(r);
        }
        if (spins > 100000) {
            fail(r, "request kind %d never completed", r->kind);
            break;
        }
    }
}

/* Issues one read request of the script. */
static int issue(run *r, int kind, unsigned param)
{
    r->kind = kind;
    r->done = 0;
    r->calls = 0;
    switch (kind) {
    case OP_READ:
        r->n = param % 5000 + 1;
        return asp_stream_read_start(r->s, r->n, on_read, r);
    case OP_EXACT:
        r->n = param % 3000 + 1;
        return asp_stream_readexactly_start(r->s, r->n, on_read, r);
    case OP_LINE:
        r->n = r->lim = param % 300 + 1;
        return asp_stream_readline_start(r->s, r->n, on_read, r);
    case OP_UNTIL:
        r->sep = (int)(param % 6);
        r->n = r->lim = (param >> 3) % 400 + seplens[r->sep];
        return asp_stream_readuntil_start(r->s, seps[r->sep], seplens[r->sep],
                                          r->n, on_read, r);
    case OP_LINES:
        r->n = param % 7 + 1; /* lines before the cancel */
        r->lim = 4096;
        return asp_stream_on_lines(r->s, 4096, on_read, r);
    case OP_CHUNKS:
        r->n = param % 2 ? param % 700 + 1 : 0;
        return asp_stream_on_chunks(r->s, r->n, on_read, r);
    default: return 0;
    }
}

int fuzz_stream_run(const unsigned char *in, size_t n, char *why, size_t whylen)
{
    run r;
    memset(&r, 0, sizeof r);
    r.why = why;
    r.whylen = whylen;
    why[0] = 0;
    if (n < 3)
        return 0;
    size_t nops = in[2] % 32;
    size_t hdr = 3;
    if (n < hdr + nops * 3)
        nops = (n - hdr) / 3;
    const unsigned char *ops = in + hdr;
    r.data = ops + nops * 3;
    r.len = n - hdr - nops * 3;

    asp_loop *loop = NULL;
    asp_loop_opts lo = {ASP_BACKEND_POLL, ASP_SOURCE_SELFPIPE};
    if (in[0] & 1)
        lo.backend = 0; /* the build's default backend */
    if (asp_loop_new(&loop, &lo) < 0) {
        snprintf(why, whylen, "asp_loop_new failed");
        return -1;
    }
    int p2[2];
    if (pipe2(p2, O_CLOEXEC | O_NONBLOCK) < 0) {
        asp_loop_free(loop);
        snprintf(why, whylen, "pipe2 failed");
        return -1;
    }
    r.wfd = p2[1];

    asp__stream_cfg cfg = {0};
    cfg.bufsize = (size_t)(in[0] >> 1) * 37 + 1; /* 1 .. 4700 bytes */
    cfg.high_water = (size_t)in[1] * 53 + 1;     /* 1 .. 13516 bytes */
    cfg.fixed = 1;
    r.s = asp__reader_new(loop, p2[0], &cfg);
    if (!r.s) {
        close(p2[1]);
        asp_loop_free(loop);
        return 0;
    }
    asp__stream_start(r.s);

    for (size_t i = 0; i < nops && !r.failed; i++) {
        int kind = ops[i * 3] % OP_COUNT;
        unsigned param = (unsigned)ops[i * 3 + 1] << 8 | ops[i * 3 + 2];
        if (kind == OP_WRITE) {
            feed(&r, param % 9000 + 1);
            asp_loop_run(loop, ASP_RUN_NOWAIT);
            continue;
        }
        if (r.at_eof)
            break;
        int e = issue(&r, kind, param);
        if (e < 0) {
            fail(&r, "request kind %d refused: %d", kind, e);
            break;
        }
        complete(&r, loop);
    }
    /* Drain: whatever is left must come out, then EOF. */
    while (!r.at_eof && !r.failed) {
        int e = issue(&r, OP_READ, 65535);
        if (e < 0) {
            fail(&r, "final read refused: %d", e);
            break;
        }
        complete(&r, loop);
    }
    if (!r.failed && r.consumed != r.len)
        fail(&r, "%zu of %zu bytes delivered", r.consumed, r.len);

    close_w(&r);
    asp__stream_destroy(r.s);
    int fr = asp_loop_free(loop);
    if (fr < 0)
        fail(&r, "asp_loop_free: %d", fr);
    return r.failed ? -1 : 0;
}
