/*
 * stream_sync.c - blocking reads: each starts the asynchronous request and
 * runs the loop until its callback has run, copying the data out of the
 * stream buffer into the caller's memory.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>

typedef struct {
    int done;
    int err;
    char *dst;
    size_t copied;
    /* read_all: a growing buffer */
    char *all;
    size_t all_len, all_cap;
} sync_read;

/* Copies what a one-shot request delivered. */
static void copy_cb(asp_stream *s, int err, const char *buf, size_t len,
                    void *data)
{
    sync_read *r = data;
    (void)s;
    if (len)
        memcpy(r->dst, buf, len);
    r->copied = len;
    r->err = err;
    r->done = 1;
}

/* Appends every chunk until EOF. */
static void all_cb(asp_stream *s, int err, const char *buf, size_t len,
                   void *data)
{
    sync_read *r = data;
    if (err || len == 0) {
        r->err = err;
        r->done = 1;
        return;
    }
    if (r->all_cap - r->all_len < len + 1) {
        size_t ncap = r->all_cap ? r->all_cap * 2 : 4096;
        while (ncap - r->all_len < len + 1)
            ncap *= 2;
        char *nb = asp__realloc(r->all, ncap);
        if (!nb) {
            r->err = -ENOMEM;
            r->done = 1;
            asp_stream_read_cancel(s);
            return;
        }
        r->all = nb;
        r->all_cap = ncap;
    }
    memcpy(r->all + r->all_len, buf, len);
    r->all_len += len;
}

/* Runs the loop until the request completes; cancels it on failure. */
static int run(asp_stream *s, sync_read *r)
{
    int e = asp_loop_run_until(s->proc->loop, &r->done);
    if (!r->done) {
        asp_stream_read_cancel(s);
        return e;
    }
    return 0;
}

/* Checks that a blocking call is allowed here. */
static int check(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->proc->loop->running)
        return -EBUSY;
    return 0;
}

/* Public: blocking read of up to n bytes. */
ssize_t asp_stream_read_sync(asp_stream *s, void *buf, size_t n)
{
    int e = check(s);
    if (e < 0)
        return e;
    if (!buf)
        return -EINVAL;
    sync_read r = {0};
    r.dst = buf;
    e = asp_stream_read(s, n, copy_cb, &r);
    if (e < 0 || (e = run(s, &r)) < 0)
        return e;
    return r.err < 0 ? r.err : (ssize_t)r.copied;
}

/* Public: blocking readline into buf (cap is the limit). */
ssize_t asp_stream_readline_sync(asp_stream *s, char *buf, size_t cap)
{
    int e = check(s);
    if (e < 0)
        return e;
    if (!buf || cap == 0)
        return -EINVAL;
    sync_read r = {0};
    r.dst = buf;
    e = asp_stream_readline(s, cap, copy_cb, &r);
    if (e < 0 || (e = run(s, &r)) < 0)
        return e;
    return r.err < 0 ? r.err : (ssize_t)r.copied;
}

/* Public: blocking readexactly. */
ssize_t asp_stream_readexactly_sync(asp_stream *s, void *buf, size_t n,
                                    size_t *got)
{
    int e = check(s);
    if (e < 0)
        return e;
    if (!buf)
        return -EINVAL;
    sync_read r = {0};
    r.dst = buf;
    e = asp_stream_readexactly(s, n, copy_cb, &r);
    if (e < 0 || (e = run(s, &r)) < 0)
        return e;
    if (got)
        *got = r.copied;
    return r.err < 0 ? r.err : (ssize_t)r.copied;
}

/* Public: blocking read to EOF into a new buffer. */
ssize_t asp_stream_read_all_sync(asp_stream *s, char **buf)
{
    int e = check(s);
    if (e < 0)
        return e;
    if (!buf)
        return -EINVAL;
    *buf = NULL;
    sync_read r = {0};
    e = asp_stream_on_chunks(s, 0, all_cb, &r);
    if (e < 0)
        return e;
    if ((e = run(s, &r)) < 0 || r.err < 0) {
        asp__free(r.all);
        return e < 0 ? e : r.err;
    }
    if (!r.all) {
        r.all = asp__malloc(1);
        if (!r.all)
            return -ENOMEM;
    }
    r.all[r.all_len] = 0;
    *buf = r.all;
    return (ssize_t)r.all_len;
}

/* Notes the end of a forward. */
static void forward_cb(asp_stream *s, int err, const char *buf, size_t len,
                       void *data)
{
    sync_read *r = data;
    (void)s;
    (void)buf;
    r->err = err;
    r->copied = len;
    r->done = 1;
}

/* Public: blocking forward. */
ssize_t asp_stream_forward_sync(asp_stream *s, int fd)
{
    sync_read r = {0};
    int e = check(s);
    if (e < 0)
        return e;
    e = asp_stream_forward(s, fd, forward_cb, &r);
    if (e < 0)
        return e;
    e = run(s, &r);
    if (e < 0)
        return e;
    return r.err ? r.err : (ssize_t)r.copied;
}
