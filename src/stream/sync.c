/*
 * sync.c - the blocking forms of the stream calls. Each is its _start
 * form run through asp__block (the loop runs until the callback has
 * run), with the data copied out of the stream's buffer into the
 * caller's memory by the callback.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* One blocking call in flight. */
typedef struct sync_op {
    asp_stream *s;
    int done;
    int err;
    /* what to start */
    int kind;
    size_t n;
    const void *sep;
    size_t seplen;
    int fd;
    /* where the data goes */
    char *dst;
    size_t copied;
    char *all; /* read_all: a growing buffer */
    size_t all_len, all_cap;
} sync_op;

enum { OP_READ, OP_EXACT, OP_LINE, OP_UNTIL, OP_ALL, OP_FORWARD, OP_DRAIN };

/* Copies what a one-shot request delivered. */
static void copy_cb(asp_stream *s, int err, const char *buf, size_t len,
                    void *data)
{
    sync_op *op = data;
    (void)s;
    if (len)
        memcpy(op->dst, buf, len);
    op->copied = len;
    op->err = err;
    op->done = 1;
}

/* Grows the read_all buffer for len more bytes and a NUL. */
static int all_grow(sync_op *op, size_t len)
{
    if (op->all_cap - op->all_len >= len + 1)
        return 0;
    size_t ncap = op->all_cap ? op->all_cap * 2 : 4096;
    while (ncap - op->all_len < len + 1)
        ncap *= 2;
    char *nb = asp__realloc(op->all, ncap);
    if (!nb)
        return -ENOMEM;
    op->all = nb;
    op->all_cap = ncap;
    return 0;
}

/* Appends every chunk until EOF. */
static void all_cb(asp_stream *s, int err, const char *buf, size_t len,
                   void *data)
{
    sync_op *op = data;
    if (err || len == 0) {
        op->err = err;
        op->done = 1;
        return;
    }
    if (all_grow(op, len) < 0) {
        op->err = -ENOMEM;
        op->done = 1;
        asp_stream_read_cancel(s);
        return;
    }
    memcpy(op->all + op->all_len, buf, len);
    op->all_len += len;
}

/* Notes the end of a forward. */
static void forward_cb(asp_stream *s, int err, const char *buf, size_t len,
                       void *data)
{
    sync_op *op = data;
    (void)s;
    (void)buf;
    op->err = err;
    op->copied = len;
    op->done = 1;
}

/* Notes the end of a drain. */
static void drain_cb(asp_stream *s, int err, void *data)
{
    sync_op *op = data;
    (void)s;
    op->err = err;
    op->done = 1;
}

/* Starts the asynchronous form of op. */
static int op_start(void *ctx)
{
    sync_op *op = ctx;
    asp_stream *s = op->s;
    switch (op->kind) {
    case OP_READ: return asp_stream_read_start(s, op->n, copy_cb, op);
    case OP_EXACT: return asp_stream_readexactly_start(s, op->n, copy_cb, op);
    case OP_LINE: return asp_stream_readline_start(s, op->n, copy_cb, op);
    case OP_UNTIL:
        return asp_stream_readuntil_start(s, op->sep, op->seplen, op->n,
                                          copy_cb, op);
    case OP_ALL: return asp_stream_on_chunks(s, 0, all_cb, op);
    case OP_FORWARD: return asp_stream_forward_start(s, op->fd, forward_cb, op);
    default: return asp_stream_drain_start(s, drain_cb, op);
    }
}

/* The loop failed before op completed: withdraw it without a callback. */
static void op_cancel(void *ctx)
{
    sync_op *op = ctx;
    if (op->kind == OP_DRAIN) {
        op->s->u.w.drain_cb = NULL;
        asp_timer_stop(&op->s->kick);
    } else {
        asp_stream_read_cancel(op->s);
    }
}

/* Runs op to completion; returns its error, or the byte count. */
static ssize_t run(sync_op *op)
{
    if (!op->s)
        return -EINVAL;
    int e = asp__block(op->s->loop, op_start, op_cancel, op, &op->done);
    if (e < 0)
        return e;
    return op->err < 0 ? op->err : (ssize_t)op->copied;
}

/* Blocking read of up to n bytes. */
ssize_t asp_stream_read(asp_stream *s, void *buf, size_t n)
{
    sync_op op = {.s = s, .kind = OP_READ, .n = n, .dst = buf};
    return buf ? run(&op) : -EINVAL;
}

/* Blocking readline into buf (cap is the limit). */
ssize_t asp_stream_readline(asp_stream *s, char *buf, size_t cap)
{
    sync_op op = {.s = s, .kind = OP_LINE, .n = cap, .dst = buf};
    return buf && cap ? run(&op) : -EINVAL;
}

/* Blocking readuntil into buf (cap is the limit). */
ssize_t asp_stream_readuntil(asp_stream *s, const void *sep, size_t seplen,
                             char *buf, size_t cap, size_t *got)
{
    sync_op op = {.s = s,
                  .kind = OP_UNTIL,
                  .n = cap,
                  .dst = buf,
                  .sep = sep,
                  .seplen = seplen};
    if (!buf || !cap)
        return -EINVAL;
    ssize_t r = run(&op);
    if (got)
        *got = op.copied;
    return r;
}

/* Blocking readexactly. */
ssize_t asp_stream_readexactly(asp_stream *s, void *buf, size_t n, size_t *got)
{
    sync_op op = {.s = s, .kind = OP_EXACT, .n = n, .dst = buf};
    if (!buf)
        return -EINVAL;
    ssize_t r = run(&op);
    if (got)
        *got = op.copied;
    return r;
}

/* Blocking read to EOF into a new buffer. */
ssize_t asp_stream_read_all(asp_stream *s, char **buf)
{
    sync_op op = {.s = s, .kind = OP_ALL};
    if (!buf)
        return -EINVAL;
    *buf = NULL;
    ssize_t r = run(&op);
    if (r == 0 && all_grow(&op, 0) < 0)
        r = -ENOMEM;
    if (r < 0) {
        asp__free(op.all);
        return r;
    }
    op.all[op.all_len] = 0;
    *buf = op.all;
    return (ssize_t)op.all_len;
}

/* Blocking forward. */
ssize_t asp_stream_forward(asp_stream *s, int fd)
{
    sync_op op = {.s = s, .kind = OP_FORWARD, .fd = fd};
    return run(&op);
}

/* Blocking drain. */
int asp_stream_drain(asp_stream *s)
{
    sync_op op = {.s = s, .kind = OP_DRAIN};
    return (int)run(&op);
}
