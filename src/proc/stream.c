/*
 * stream.c - the read side of a child's stdout/stderr.
 *
 * Each output stream owns a buffer; buf[start, end) is unread data. The
 * pipe is polled whenever the loop runs, whether or not anyone asked, so a
 * child never blocks on a full pipe while the parent waits for it; above
 * the high-water mark polling stops until the reader consumes
 * (backpressure), unless a pending request needs more bytes to decide
 * (a long line).
 *
 * Reads go straight into the buffer in large slices (one copy: kernel to
 * buffer); callbacks get a pointer into it (no second copy). A readable
 * event reads until EAGAIN (at most MAX_READS_PER_EVENT slices, for
 * fairness): with the writer on another CPU the pipe refills while we
 * deliver, and one more read is cheaper than a trip through the poll. Lines are found with memchr, resuming where the last scan
 * stopped, so a long line arriving in pieces is scanned once.
 *
 * Callbacks never run inside the call that made a request: a request that
 * can be served at once is served from a zero timer (kick). Requests made
 * from inside this stream's own callback are served by the dispatch loop
 * already running.
 *
 * The eof grace: once the child is reaped, a pipe that stays open (a
 * grandchild holds it) is given grace_ms; after that, as soon as the pipe
 * is found empty, it is closed and readers see EOF with asp_stream_cut().
 * A stream held back by backpressure is not cut while data may still sit
 * in the pipe.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_BUFSIZE ((size_t)64 * 1024)
#define DEFAULT_HIGH_WATER ((size_t)1024 * 1024)
#define DEFAULT_GRACE_MS 2000
#define MAX_READS_PER_EVENT 16
/* A default-sized pipe that has carried this much is a bulk stream: it is
 * raised to GROWN_PIPE and read in GROWN_BUFSIZE slices. Small streams
 * keep the kernel default, so a host with thousands of children does not
 * spend its per-user pipe budget on them. */
#define GROW_AFTER ((size_t)1 << 20)
#define GROWN_PIPE ((size_t)1 << 20)
#define GROWN_BUFSIZE ((size_t)256 << 10)

void asp__wstream_io_cb(asp_io *w, int events);
void asp__wstream_update(asp_stream *s);
void asp__wstream_kick(asp_stream *s);
static void rs_io_cb(asp_io *w, int events);
static void kick_cb(asp_timer *t);
static void grace_cb(asp_timer *t);

/* Sets up p->streams[which]; reading starts with asp__stream_update. */
asp_stream *asp__stream_new(asp_proc *p, int which, int fd, unsigned flags,
                            const asp_spawn_opts *o)
{
    asp_stream *s = &p->streams[which];
    memset(s, 0, sizeof *s);
    s->proc = p;
    s->which = which;
    s->fd = fd;
    s->fwd_fd = -1;
    s->flags = flags;
    asp_io_init(p->loop, &s->io, fd, which == 0 ? asp__wstream_io_cb : rs_io_cb,
                s);
    asp_io_unref(&s->io);
    s->bufsize = o->read_buffer ? o->read_buffer
                                : (o->pipe_size > DEFAULT_BUFSIZE ? o->pipe_size
                                                                  : DEFAULT_BUFSIZE);
    s->high_water = o->high_water ? o->high_water : DEFAULT_HIGH_WATER;
    if (o->pipe_size || o->read_buffer || (flags & ASP__S_SOCKET))
        s->flags |= ASP__S_FIXED;
    s->grace_ms = o->eof_grace_ms ? o->eof_grace_ms : DEFAULT_GRACE_MS;
    asp_timer_init(p->loop, &s->grace, grace_cb, s);
    asp_timer_unref(&s->grace);
    asp_timer_init(p->loop, &s->kick, kick_cb, s);
    return s;
}

/* Bytes buffered. */
static size_t avail(const asp_stream *s)
{
    return s->end - s->start;
}

/* Finds sep in buf[from, to); returns the offset just past it, or 0. */
static size_t find_sep(const asp_stream *s, size_t from, size_t to)
{
    if (from >= to)
        return 0; /* nothing to scan; buf may still be NULL */
    const char *b = s->buf + s->start;
    if (s->seplen == 1) {
        const char *hit = memchr(b + from, s->sep[0], to - from);
        return hit ? (size_t)(hit - b) + 1 : 0;
    }
    while (from + s->seplen <= to) {
        const char *hit = memchr(b + from, s->sep[0], to - from - s->seplen + 1);
        if (!hit)
            return 0;
        size_t off = (size_t)(hit - b);
        if (!memcmp(hit, s->sep, s->seplen))
            return off + s->seplen;
        from = off + 1;
    }
    return 0;
}

/* Where a separator search resumes: bytes before it were scanned already
 * (less seplen - 1, for a separator split across reads). */
static size_t scan_from(const asp_stream *s)
{
    return s->scanned >= s->seplen ? s->scanned - s->seplen + 1 : 0;
}

/* Whether the pending request cannot be served from the buffer yet. */
static int need_more(asp_stream *s)
{
    size_t a = avail(s);
    switch (s->req) {
    case ASP__R_READ:
        return a == 0;
    case ASP__R_CHUNKS:
        return a == 0 && !(s->flags & ASP__S_PAUSED);
    case ASP__R_EXACT:
        return a < s->req_n;
    case ASP__R_LINE:
    case ASP__R_UNTIL:
    case ASP__R_LINES:
        if (s->req == ASP__R_LINES && (s->flags & ASP__S_PAUSED))
            return 0;
        return a <= s->req_n && !find_sep(s, scan_from(s), a);
    case ASP__R_SINK:
        return 1;
    case ASP__R_FORWARD:
        return !s->fwd_blocked;
    default:
        return 0;
    }
}

/* Whether someone is waiting on this stream (it keeps the loop alive). */
static int has_waiter(const asp_stream *s)
{
    if (s->req == ASP__R_NONE)
        return 0;
    if ((s->req == ASP__R_CHUNKS || s->req == ASP__R_LINES) &&
        (s->flags & ASP__S_PAUSED))
        return 0;
    return 1;
}

/* Polls the pipe when the buffer has room or a request needs more. */
void asp__stream_update(asp_stream *s)
{
    if (s->which == 0) {
        asp__wstream_update(s);
        return;
    }
    if ((s->flags & (ASP__S_CLOSED | ASP__S_EOF)) || s->fd < 0) {
        asp_io_stop(&s->io);
        return;
    }
    if (has_waiter(s))
        asp_io_ref(&s->io);
    else
        asp_io_unref(&s->io);
    int want = avail(s) < s->high_water || need_more(s);
    if (s->req == ASP__R_FORWARD && s->fwd_blocked)
        want = 0; /* the target is full: the child waits, not our memory */
    if (want) {
        if (!asp_io_active(&s->io) && (s->flags & ASP__S_GRACE))
            asp_timer_start(&s->kick, 0, 0); /* re-check for the cut */
        if (asp_io_start(&s->io, ASP_READ) < 0)
            s->flags |= ASP__S_EOF; /* cannot watch it: end the stream */
    } else {
        asp_io_stop(&s->io);
    }
}

/* Makes room for a read of bufsize bytes at buf + end; returns the room.
 * The unread tail (usually a partial line) moves to the front when that
 * is enough; otherwise the buffer grows, doubling once it holds more than
 * one read's worth so that a long line or a large readexactly is not
 * copied over and over. */
static size_t make_room(asp_stream *s, int *err)
{
    size_t a = avail(s);
    size_t want = s->bufsize;
    if (a == 0)
        s->start = s->end = 0;
    if (s->cap - s->end >= want)
        return s->cap - s->end;
    if (s->start > 0) {
        memmove(s->buf, s->buf + s->start, a);
        s->start = 0;
        s->end = a;
        if (s->cap - s->end >= want)
            return s->cap - s->end;
    }
    size_t ncap = a + want;
    if (a > want && ncap < s->cap * 2)
        ncap = s->cap * 2;
    char *nb = asp__realloc(s->buf, ncap);
    if (!nb) {
        /* Growing is an optimisation while some room is left: use it. */
        if (s->cap > s->end)
            return s->cap - s->end;
        *err = -ENOMEM;
        return 0;
    }
    s->buf = nb;
    s->cap = ncap;
    return s->cap - s->end;
}

/* Closes the fd of an output stream after the eof grace. */
static void cut(asp_stream *s)
{
    asp_io_stop(&s->io);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->flags |= ASP__S_EOF | ASP__S_CUT;
}

enum { FILL_FULL = ASP__FILL_FULL, FILL_SHORT = ASP__FILL_SHORT,
       FILL_EOF = ASP__FILL_EOF, FILL_AGAIN = ASP__FILL_AGAIN,
       FILL_ERR = ASP__FILL_ERR, FILL_BUSY = ASP__FILL_BUSY };

/* Counts bytes; past GROW_AFTER raises the pipe (Linux, best effort: the
 * kernel may refuse over its limits, and then nothing changes). */
static void note_carried(asp_stream *s, size_t n)
{
    if (s->flags & ASP__S_FIXED)
        return;
    s->carried += n;
    if (s->carried < GROW_AFTER)
        return;
    s->flags |= ASP__S_FIXED;
#ifdef ASP_HAVE_PIPE_SZ
    if (fcntl(s->fd, F_SETPIPE_SZ, (int)GROWN_PIPE) >= 0 &&
        s->bufsize < GROWN_BUFSIZE)
        s->bufsize = GROWN_BUFSIZE;
#endif
}

/* One read from the pipe: into the capture directly when communicate
 * consumes everything, else into the buffer. */
static int fill(asp_stream *s)
{
    int err = 0;
    char *dst;
    size_t room;
    int direct = 0;

    if (s->req == ASP__R_SINK && avail(s) == 0) {
        dst = asp__capture_space(s->sink, s->bufsize, &room);
        direct = dst != NULL;
    }
    if (!direct) {
        room = make_room(s, &err);
        dst = s->buf + s->end;
    }
    if (err) {
        /* Out of memory even for the read buffer: close the pipe (the
         * child gets EPIPE instead of blocking on it for ever) and end the
         * stream as cut. */
        s->flags |= ASP__S_NOMEM;
        cut(s);
        return FILL_ERR;
    }
    ssize_t n;
    do
        n = read(s->fd, dst, room);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        if (direct) {
            s->sink->len += (size_t)n;
            s->sink->total += (size_t)n;
        } else {
            s->end += (size_t)n;
        }
        note_carried(s, (size_t)n);
        return (size_t)n < room ? FILL_SHORT : FILL_FULL;
    }
    if (n == 0) {
        s->flags |= ASP__S_EOF;
        return FILL_EOF;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return FILL_AGAIN;
    /* Any other error ends the stream like EOF (the data so far stays). */
    s->flags |= ASP__S_EOF;
    return FILL_ERR;
}

/* Calls the request's callback with p held. */
int asp__stream_call(asp_stream *s, int err, const char *buf, size_t len)
{
    asp_proc *p = s->proc;
    asp_read_cb cb = s->cb;
    void *data = s->cb_data;
    asp__proc_hold(p);
    cb(s, err, buf, len, data);
    return asp__proc_release(p);
}

/* Ends a one-shot request before its callback (which may start another). */
static void end_req(asp_stream *s)
{
    if (s->req == ASP__R_FORWARD)
        asp__fwd_release(s);
    s->req = ASP__R_NONE;
    s->scanned = 0;
}

/* The hot path of continuous line reading: every complete line in the
 * buffer goes to the callback, one memchr each, with no other work per
 * line. The buffer bounds live in locals: a callback cannot consume bytes
 * (requests made during dispatch are served after it), and whatever else
 * it does that matters -- cancel, pause, close, free, another request --
 * shows in req or flags, which end the burst. The caller
 * (asp__stream_dispatch) holds the process, so s stays valid. Limits, EOF
 * and pauses are left to dispatch_one. Returns the lines delivered. */
static int lines_burst(asp_stream *s)
{
    const char *b = s->buf + s->start;
    const char *end = s->buf + s->end;
    const char *p = b + s->scanned;
    int n = 0;
    for (;;) {
        size_t a = (size_t)(end - b);
        const char *stop = b + (a < s->req_n ? a : s->req_n);
        const char *nl = p < stop ? memchr(p, '\n', (size_t)(stop - p)) : NULL;
        if (!nl) {
            s->scanned = (size_t)(stop - b);
            return n;
        }
        size_t len = (size_t)(nl - b) + 1;
        s->start += len; /* kept current for asp_stream_buffered() */
        s->scanned = 0;
        s->cb(s, 0, b, len, s->cb_data);
        n++;
        if (s->req != ASP__R_LINES || (s->flags & (ASP__S_PAUSED | ASP__S_CLOSED)))
            return n;
        b = p = nl + 1;
    }
}

/* Serves the pending request once. Returns 1 if something was delivered
 * (look again), 0 if nothing can be done now. */
static int dispatch_one(asp_stream *s)
{
    size_t a = avail(s);
    /* No buffer yet (nothing read): NULL, never NULL + 0. */
    const char *b = s->buf ? s->buf + s->start : NULL;
    int eof = (s->flags & ASP__S_EOF) != 0;
    int paused = (s->flags & ASP__S_PAUSED) != 0;
    size_t n;

    switch (s->req) {
    case ASP__R_READ:
    case ASP__R_CHUNKS:
        if (s->req == ASP__R_CHUNKS && paused)
            return 0;
        if (a > 0) {
            n = (s->req_n && s->req_n < a) ? s->req_n : a;
            if (s->req == ASP__R_READ)
                end_req(s);
            s->start += n;
            asp__stream_call(s, 0, b, n);
            return 1;
        }
        if (eof) {
            end_req(s);
            asp__stream_call(s, 0, NULL, 0);
            return 1;
        }
        return 0;

    case ASP__R_EXACT:
        if (a >= s->req_n) {
            n = s->req_n;
            end_req(s);
            s->start += n;
            asp__stream_call(s, 0, b, n);
            return 1;
        }
        if (eof) {
            end_req(s);
            s->start += a;
            asp__stream_call(s, -ENODATA, a ? b : NULL, a);
            return 1;
        }
        return 0;

    case ASP__R_LINE:
    case ASP__R_UNTIL:
    case ASP__R_LINES: {
        if (s->req == ASP__R_LINES && paused)
            return 0;
        if (s->req == ASP__R_LINES && a && lines_burst(s))
            return 1;
        size_t lim = s->req_n;
        size_t to = a < lim ? a : lim;
        size_t from = scan_from(s);
        size_t got = from < to ? find_sep(s, from, to) : 0;
        if (got) {
            if (s->req != ASP__R_LINES)
                end_req(s);
            else
                s->scanned = 0;
            s->start += got;
            asp__stream_call(s, 0, b, got);
            return 1;
        }
        if (a > lim) {
            /* Over the limit: nothing is consumed, the mode ends. */
            end_req(s);
            asp__stream_call(s, -EMSGSIZE, NULL, 0);
            return 1;
        }
        if (a == lim && !eof) {
            /* limit bytes and no separator: only EOF can make this a line
             * within the limit (the last one); any further byte makes it
             * too long. Wait for one or the other. */
            s->scanned = a;
            return 0;
        }
        s->scanned = a;
        if (!eof)
            return 0;
        int kind = s->req;
        if (a > 0) {
            /* The last line without a separator. */
            if (kind != ASP__R_LINES)
                end_req(s);
            else
                s->scanned = 0;
            s->start += a;
            asp__stream_call(s, kind == ASP__R_UNTIL ? -ENODATA : 0, b, a);
            return 1;
        }
        end_req(s);
        asp__stream_call(s, kind == ASP__R_UNTIL ? -ENODATA : 0, NULL, 0);
        return 1;
    }

    case ASP__R_FORWARD:
        if (a > 0 && !s->fwd_blocked && !s->fwd_err)
            s->start += asp__fwd_write(s, b, a);
        if (s->fwd_err || (eof && avail(s) == 0)) {
            int err = s->fwd_err;
            size_t total = s->fwd_total;
            end_req(s);
            asp__stream_call(s, err, NULL, total);
            return 1;
        }
        return 0;

    case ASP__R_SINK:
        if (a > 0) {
            asp__capture_add(s->sink, b, a);
            s->start += a;
        }
        if (eof) {
            end_req(s);
            asp__comm_stream_done(s);
            return 1;
        }
        return 0;

    default:
        return 0;
    }
}

/* Serves the pending request as long as it can be served. */
void asp__stream_dispatch(asp_stream *s)
{
    if (s->flags & ASP__S_INDISPATCH)
        return; /* the loop below is already serving this stream */
    asp_proc *p = s->proc;
    asp__proc_hold(p);
    s->flags |= ASP__S_INDISPATCH;
    while (!(s->flags & ASP__S_CLOSED) && dispatch_one(s))
        ;
    s->flags &= ~ASP__S_INDISPATCH;
    if (!(s->flags & ASP__S_CLOSED))
        asp__stream_update(s);
    asp__proc_release(p);
}

/* After the grace: read what the pipe holds now; cut if it is then empty
 * and still open. Not while backpressure holds data in the pipe. */
static void try_cut(asp_stream *s)
{
    for (int i = 0; i < MAX_READS_PER_EVENT * 4; i++) {
        if (s->flags & (ASP__S_EOF | ASP__S_CLOSED))
            return;
        if (avail(s) >= s->high_water && !need_more(s) &&
            s->req != ASP__R_SINK)
            return; /* the reader must consume first */
        if (s->req == ASP__R_FORWARD && s->fwd_blocked)
            return; /* the target must take what we hold first */
        int r = fill(s);
        if (r == FILL_AGAIN) {
            cut(s);
            return;
        }
        if (r <= 0)
            return;
        asp__stream_dispatch(s);
    }
}

/* The pipe is readable. */
static void rs_io_cb(asp_io *w, int events)
{
    asp_stream *s = w->data;
    asp_proc *p = s->proc;
    (void)events;
    asp__proc_hold(p);
    for (int i = 0; i < MAX_READS_PER_EVENT; i++) {
        int r;
        if (s->req == ASP__R_FORWARD && s->fwd_splice && avail(s) == 0 &&
            !s->fwd_blocked && !s->fwd_err) {
            size_t n;
            r = asp__fwd_splice(s, &n);
            if (r == FILL_ERR && !s->fwd_err)
                r = fill(s); /* splice cannot serve this pair: copy */
            else if (r > 0)
                note_carried(s, n);
            else if (r == FILL_EOF)
                s->flags |= ASP__S_EOF;
        } else {
            r = fill(s);
        }
        if (r == FILL_AGAIN && (s->flags & ASP__S_GRACE))
            cut(s); /* empty after the grace */
        if (r != FILL_AGAIN)
            asp__stream_dispatch(s);
        if (r <= 0 || (s->flags & (ASP__S_CLOSED | ASP__S_EOF)))
            break;
        if (avail(s) >= s->high_water && !need_more(s))
            break;
        if (s->req == ASP__R_FORWARD &&
            (r == FILL_SHORT || s->fwd_blocked))
            break; /* drained, or the target is full: back to the poller */
    }
    if (!(s->flags & ASP__S_CLOSED))
        asp__stream_dispatch(s);
    asp__proc_release(p);
}

/* Deferred dispatch (and the cut check after a backpressure pause). */
static void kick_cb(asp_timer *t)
{
    asp_stream *s = t->data;
    asp_proc *p = s->proc;
    if (s->which == 0) {
        asp__wstream_kick(s);
        return;
    }
    asp__proc_hold(p);
    if ((s->flags & ASP__S_GRACE) && !(s->flags & ASP__S_EOF))
        try_cut(s);
    if (!(s->flags & ASP__S_CLOSED))
        asp__stream_dispatch(s);
    asp__proc_release(p);
}

/* The eof grace expired. */
static void grace_cb(asp_timer *t)
{
    asp_stream *s = t->data;
    asp_proc *p = s->proc;
    s->flags |= ASP__S_GRACE;
    asp__proc_hold(p);
    try_cut(s);
    if (!(s->flags & ASP__S_CLOSED))
        asp__stream_dispatch(s);
    asp__proc_release(p);
}

/* The child was reaped: start the eof grace. */
void asp__stream_child_exited(asp_stream *s)
{
    s->flags |= ASP__S_EXITED;
    if (s->which == 0 || (s->flags & (ASP__S_EOF | ASP__S_CLOSED)) ||
        s->grace_ms == ASP_FOREVER)
        return;
    asp_timer_start(&s->grace, s->grace_ms, 0);
}

/* Closes the fd and ends everything pending with -ECANCELED. */
void asp__stream_close_fd(asp_stream *s)
{
    asp_timer_stop(&s->kick);
    asp_timer_stop(&s->grace);
    asp_io_stop(&s->io);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->flags |= ASP__S_CLOSED;
    if (s->which == 0) {
        asp__wstream_cancel(s);
        return;
    }
    if (s->req == ASP__R_SINK) {
        /* communicate takes the close as the end of this stream. */
        end_req(s);
        asp__comm_stream_done(s);
    } else if (s->req != ASP__R_NONE) {
        /* A forward reports how far it got. */
        size_t len = s->req == ASP__R_FORWARD ? s->fwd_total : 0;
        end_req(s);
        asp__stream_call(s, -ECANCELED, NULL, len);
    }
}

/* Frees the stream's memory (it lives inside the process). */
void asp__stream_free(asp_stream *s)
{
    if (!(s->flags & ASP__S_CLOSED))
        asp__stream_close_fd(s);
    asp__free(s->buf);
    s->buf = NULL;
    s->cap = s->start = s->end = 0;
}

/* ------------------------------------------------------------ public */

/* Whether a request may start on s: 0 or the request's errno. */
static int check_req(const asp_stream *s, asp_read_cb cb)
{
    if (!s || !cb)
        return -EINVAL;
    if (s->which == 0)
        return -EOPNOTSUPP;
    if (s->flags & ASP__S_CLOSED)
        return -EBADF;
    if (s->req != ASP__R_NONE)
        return -EBUSY;
    return 0;
}

/* Common checks and setup of a read request. */
static int start_req(asp_stream *s, int kind, size_t n, const void *sep,
                     size_t seplen, asp_read_cb cb, void *data)
{
    int r = check_req(s, cb);
    if (r < 0)
        return r;
    s->req = kind;
    s->req_n = n;
    s->cb = cb;
    s->cb_data = data;
    s->scanned = 0;
    if (sep) {
        memcpy(s->sep, sep, seplen);
        s->seplen = seplen;
    }
    s->flags &= ~ASP__S_PAUSED;
    if (!(s->flags & ASP__S_INDISPATCH) &&
        (avail(s) > 0 || (s->flags & ASP__S_EOF)))
        asp_timer_start(&s->kick, 0, 0);
    asp__stream_update(s);
    return 0;
}

/* Public: up to n bytes. */
int asp_stream_read(asp_stream *s, size_t n, asp_read_cb cb, void *data)
{
    if (n == 0)
        return -EINVAL;
    return start_req(s, ASP__R_READ, n, NULL, 0, cb, data);
}

/* Public: exactly n bytes. */
int asp_stream_readexactly(asp_stream *s, size_t n, asp_read_cb cb,
                           void *data)
{
    if (n == 0)
        return -EINVAL;
    return start_req(s, ASP__R_EXACT, n, NULL, 0, cb, data);
}

/* Applies the default line limit. A pending line may hold more than the
 * high-water mark: polling goes on while the request needs more. */
static int line_limit(const asp_stream *s, size_t *limit)
{
    (void)s;
    if (*limit == 0)
        *limit = ASP_LINE_LIMIT_DEFAULT;
    return 0;
}

/* Public: one line. */
int asp_stream_readline(asp_stream *s, size_t limit, asp_read_cb cb,
                        void *data)
{
    int r = line_limit(s, &limit);
    if (r < 0)
        return r;
    return start_req(s, ASP__R_LINE, limit, "\n", 1, cb, data);
}

/* Public: through a separator. */
int asp_stream_readuntil(asp_stream *s, const void *sep, size_t seplen,
                         size_t limit, asp_read_cb cb, void *data)
{
    if (!sep || seplen == 0 || seplen > sizeof(((asp_stream *)0)->sep))
        return -EINVAL;
    int r = line_limit(s, &limit);
    if (r < 0)
        return r;
    return start_req(s, ASP__R_UNTIL, limit, sep, seplen, cb, data);
}

/* Public: continuous lines. */
int asp_stream_on_lines(asp_stream *s, size_t limit, asp_read_cb cb,
                        void *data)
{
    int r = line_limit(s, &limit);
    if (r < 0)
        return r;
    return start_req(s, ASP__R_LINES, limit, "\n", 1, cb, data);
}

/* Public: continuous chunks. */
int asp_stream_on_chunks(asp_stream *s, size_t max, asp_read_cb cb,
                         void *data)
{
    return start_req(s, ASP__R_CHUNKS, max, NULL, 0, cb, data);
}

/* Public: everything from now on to fd. */
int asp_stream_forward(asp_stream *s, int fd, asp_read_cb cb, void *data)
{
    int r = check_req(s, cb); /* before the duplicate is taken */
    if (r == 0)
        r = asp__fwd_setup(s, fd);
    if (r < 0)
        return r;
    return start_req(s, ASP__R_FORWARD, 0, NULL, 0, cb, data);
}

/* Public: cancels without a callback. */
int asp_stream_read_cancel(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->req == ASP__R_NONE || s->req == ASP__R_SINK)
        return -EALREADY;
    end_req(s);
    asp_timer_stop(&s->kick);
    asp__stream_update(s);
    return 0;
}

/* Public: pause a continuous reader. */
int asp_stream_pause(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->req != ASP__R_CHUNKS && s->req != ASP__R_LINES)
        return -EALREADY;
    s->flags |= ASP__S_PAUSED;
    asp__stream_update(s);
    return 0;
}

/* Public: resume a continuous reader. */
int asp_stream_resume(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (!(s->flags & ASP__S_PAUSED))
        return -EALREADY;
    s->flags &= ~ASP__S_PAUSED;
    if (!(s->flags & ASP__S_INDISPATCH) &&
        (avail(s) > 0 || (s->flags & ASP__S_EOF)))
        asp_timer_start(&s->kick, 0, 0);
    asp__stream_update(s);
    return 0;
}

/* Public: buffered byte count. */
size_t asp_stream_buffered(const asp_stream *s)
{
    if (!s)
        return 0;
    if (s->which == 0)
        return s->wq_bytes;
    return avail(s);
}

/* Public: EOF reached. */
int asp_stream_eof(const asp_stream *s)
{
    return s && (s->flags & ASP__S_EOF) != 0;
}

/* Public: output may be cut. */
int asp_stream_cut(const asp_stream *s)
{
    return s && (s->flags & ASP__S_CUT) != 0;
}

/* Public: close. */
int asp_stream_close(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->flags & ASP__S_CLOSED)
        return -EBADF;
    asp__stream_close_fd(s);
    return 0;
}
