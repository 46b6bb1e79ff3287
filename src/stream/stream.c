/*
 * stream.c - the producer side of a stream: lifetime, filling from the
 * fd, backpressure, EOF, the eof-grace cut, and the mode dispatch.
 *
 * An output stream owns a buffer; buf[start, end) is unread data. The fd
 * is polled whenever the loop runs, whether or not anyone asked, so a
 * child never blocks on a full pipe while the parent waits for it; with
 * high_water bytes buffered, polling stops until a consumer takes some
 * (backpressure), unless the pending request needs more bytes to decide
 * (a long line). Each read asks for at most bufsize bytes, so a stream
 * nobody reads holds at most high_water + bufsize.
 *
 * Reads go straight into the buffer (one copy: kernel to buffer) and
 * consumers get pointers into it. A readable event reads until EAGAIN (at
 * most MAX_READS_PER_EVENT reads, for fairness): with the writer on
 * another CPU the pipe refills while we deliver, and one more read is
 * cheaper than a trip through the poll. At EOF (or a read error, such as
 * a terminal's EIO at hang-up) the fd is closed at once: a finished
 * stream holds no fd. Only read() says where the end is: a hang-up the
 * poller reports is just readiness, and a terminal (Linux) may report it
 * while output is still on its way (a short read, then more data).
 *
 * Modes say where the bytes go: the buffer (read.c's consumers), a
 * capture (capture.c, for communicate) or another fd (forward.c).
 *
 * Callbacks never run inside the call that made a request: a request
 * that can be served at once is served from a zero timer (the kick).
 *
 * The eof grace: once the child has exited, an fd that stays open (a
 * grandchild holds it) is given grace_ms; after that, as soon as the fd
 * is found empty, it is closed and readers see EOF with asp_stream_cut().
 * A stream held back by backpressure is not cut while data may still sit
 * in the pipe.
 *
 * Lifetime: a stream is freed by asp__stream_destroy, but never while
 * its own code is on the stack below a user callback (busy): the last
 * release frees it.
 */
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

void asp__writer_io_cb(asp_io *w, int events, void *data);
static void on_readable(asp_io *w, int events, void *data);
static void kick_cb(asp_timer *t, void *data);
static void grace_cb(asp_timer *t, void *data);

/* ----------------------------------------------------------- lifetime */

/* Allocates a stream over fd (closing fd when out of memory). */
static asp_stream *stream_alloc(asp_loop *loop, int fd, int writer)
{
    asp_stream *s = asp__calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->loop = loop;
    s->fd = fd;
    s->writer = writer;
    asp_io_init(loop, &s->io, fd, writer ? asp__writer_io_cb : on_readable, s);
    asp__io_known(&s->io); /* our pipe, socket or terminal */
    asp_io_unref(&s->io);
    asp_timer_init(loop, &s->kick, kick_cb, s);
    return s;
}

/* A reader over fd; see internal.h. */
asp_stream *asp__reader_new(asp_loop *loop, int fd, const asp__stream_cfg *cfg)
{
    asp_stream *s = stream_alloc(loop, fd, 0);
    if (!s)
        return NULL;
    asp__reader *r = &s->u.r;
    r->bufsize = cfg->bufsize ? cfg->bufsize : DEFAULT_BUFSIZE;
    r->high_water = cfg->high_water ? cfg->high_water : DEFAULT_HIGH_WATER;
    r->grace_ms = cfg->grace_ms ? cfg->grace_ms : DEFAULT_GRACE_MS;
    r->fixed = cfg->fixed || cfg->socket || cfg->tty;
    s->socket = cfg->socket;
    s->tty = cfg->tty;
    r->fwd.fd = -1;
    asp_timer_init(loop, &r->grace, grace_cb, s);
    asp_timer_unref(&r->grace);
    return s;
}

/* A writer over fd (only cfg->tty matters to it). */
asp_stream *asp__writer_new(asp_loop *loop, int fd, const asp__stream_cfg *cfg)
{
    asp_stream *s = stream_alloc(loop, fd, 1);
    if (s) {
        s->tty = cfg->tty;
        s->u.w.last = -1;
    }
    return s;
}

/* Starts reading (or writing what is queued). */
void asp__stream_start(asp_stream *s)
{
    asp__stream_update(s);
}

/* Marks our code as on the stack of s. */
void asp__stream_hold(asp_stream *s)
{
    s->busy++;
}

/* Ends a hold; frees a destroyed stream at the last one. Returns 1 if s
 * is gone. */
int asp__stream_release(asp_stream *s)
{
    if (--s->busy > 0 || !s->doomed)
        return 0;
    if (!s->writer)
        asp__free(s->u.r.buf);
    asp__free(s);
    return 1;
}

/* Closes s and frees it when idle. */
void asp__stream_destroy(asp_stream *s)
{
    asp__stream_hold(s);
    asp__stream_close_fd(s);
    s->doomed = 1;
    asp__stream_release(s);
}

/* ---------------------------------------------------------- producing */

/* Bytes buffered. */
size_t asp__stream_avail(const asp_stream *s)
{
    return s->u.r.end - s->u.r.start;
}

/* The input ended (phase EOF or CUT): the fd is closed at once. */
void asp__stream_end_input(asp_stream *s, enum asp__phase phase)
{
    asp_io_stop(&s->io);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->phase = phase;
    asp_timer_stop(&s->u.r.grace);
}

/* Counts bytes; past GROW_AFTER raises the pipe (Linux, best effort: the
 * kernel may refuse over its limits, and then nothing changes). */
void asp__stream_carried(asp_stream *s, size_t n)
{
    asp__reader *r = &s->u.r;
    if (r->fixed)
        return;
    r->carried += n;
    if (r->carried < GROW_AFTER)
        return;
    r->fixed = 1;
#ifdef ASP_HAVE_PIPE_SZ
    if (fcntl(s->fd, F_SETPIPE_SZ, (int)GROWN_PIPE) >= 0 &&
        r->bufsize < GROWN_BUFSIZE)
        r->bufsize = GROWN_BUFSIZE;
#endif
}

/* One read(2) of at most room bytes into dst. Returns FULL or SHORT with
 * *n set, AGAIN, or EOF: end of file, or any other error (a terminal's
 * EIO at hang-up is its end of file), after which the fd is closed. */
int asp__stream_read_into(asp_stream *s, char *dst, size_t room, size_t *n)
{
    ssize_t got;
    do
        got = read(s->fd, dst, room);
    while (got < 0 && errno == EINTR);
    if (got > 0) {
        *n = (size_t)got;
        asp__stream_carried(s, (size_t)got);
        return (size_t)got < room ? ASP__FILL_SHORT : ASP__FILL_FULL;
    }
    *n = 0;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return ASP__FILL_AGAIN;
    asp__stream_end_input(s, ASP__PH_EOF);
    return ASP__FILL_EOF;
}

/* Makes room for a read at buf + end; returns the room, 0 (and *err)
 * when memory ran out. The unread tail (usually a partial line) moves to
 * the front when that is enough; otherwise the buffer grows, doubling
 * once it holds more than one read's worth so that a long line or a
 * large readexactly is not copied over and over. */
static size_t make_room(asp__reader *r, int *err)
{
    size_t a = r->end - r->start;
    size_t want = r->bufsize;
    if (a == 0)
        r->start = r->end = 0;
    if (r->cap - r->end >= want)
        return r->cap - r->end;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, a);
        r->start = 0;
        r->end = a;
        if (r->cap - r->end >= want)
            return r->cap - r->end;
    }
    size_t ncap = a + want;
    if (a > want && ncap < r->cap * 2)
        ncap = r->cap * 2;
    char *nb = asp__realloc(r->buf, ncap);
    if (!nb) {
        /* Growing is an optimisation while some room is left: use it. */
        if (r->cap > r->end)
            return r->cap - r->end;
        *err = -ENOMEM;
        return 0;
    }
    r->buf = nb;
    r->cap = ncap;
    return r->cap - r->end;
}

/* One read into the buffer. Out of memory even for that, the stream is
 * cut (the child gets EPIPE instead of blocking on a full pipe for
 * ever). */
int asp__stream_fill(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    int err = 0;
    size_t room = make_room(r, &err);
    if (err) {
        r->nomem = 1;
        asp__stream_end_input(s, ASP__PH_CUT);
        return ASP__FILL_ERR;
    }
    if (room > r->bufsize)
        room = r->bufsize;
    size_t n;
    int f = asp__stream_read_into(s, r->buf + r->end, room, &n);
    r->end += n;
    return f;
}

/* One read (or splice) as the mode wants it. */
static int produce(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    if (r->mode == ASP__MODE_FORWARD && r->end == r->start)
        return asp__fwd_fill(s);
    if (r->mode == ASP__MODE_CAPTURE && r->end == r->start)
        return asp__capture_fill(s);
    return asp__stream_fill(s);
}

/* Whether the pending request or the mode needs more bytes than the
 * buffer holds (polling goes on past the high-water mark then). */
static int need_more(const asp_stream *s)
{
    const asp__reader *r = &s->u.r;
    switch (r->mode) {
    case ASP__MODE_CAPTURE: return 1;
    case ASP__MODE_FORWARD: return !r->fwd.blocked;
    default: return asp__req_need_more(s);
    }
}

/* Whether to read again at once after a read that came to f. */
static int keep_reading(const asp_stream *s, int f)
{
    const asp__reader *r = &s->u.r;
    if (f <= 0 || s->phase != ASP__PH_OPEN)
        return 0;
    if (asp__stream_avail(s) >= r->high_water && !need_more(s))
        return 0;
    /* Forwarding: drained, or the target is full: back to the poller. */
    return !(r->mode == ASP__MODE_FORWARD &&
             (f == ASP__FILL_SHORT || r->fwd.blocked));
}

/* The fd is readable. */
static void on_readable(asp_io *w, int events, void *data)
{
    asp_stream *s = data;
    (void)w;
    (void)events;
    asp__stream_hold(s);
    for (int i = 0; i < MAX_READS_PER_EVENT; i++) {
        int f = produce(s);
        if (f == ASP__FILL_AGAIN) {
            if (s->u.r.grace_phase != ASP__GR_EXPIRED)
                break;
            asp__stream_end_input(s, ASP__PH_CUT); /* empty after the grace */
        }
        asp__stream_deliver(s);
        if (!keep_reading(s, f))
            break;
    }
    asp__stream_release(s);
}

/* Serves the mode (consumers, capture, forward) as long as it can, then
 * re-evaluates polling. Nested calls (a request made from a callback)
 * return at once: the running loop serves them. */
void asp__stream_deliver(asp_stream *s)
{
    if (s->delivering || s->writer)
        return;
    asp__stream_hold(s);
    s->delivering = 1;
    for (;;) {
        if (s->phase == ASP__PH_CLOSED)
            break;
        int more;
        switch (s->u.r.mode) {
        case ASP__MODE_CAPTURE: more = asp__capture_deliver(s); break;
        case ASP__MODE_FORWARD: more = asp__fwd_deliver(s); break;
        default: more = asp__req_deliver(s); break;
        }
        if (!more)
            break;
    }
    s->delivering = 0;
    asp__stream_update(s);
    asp__stream_release(s);
}

/* Whether someone waits on this stream (it then keeps the loop alive). */
static int has_waiter(const asp_stream *s)
{
    const asp__reader *r = &s->u.r;
    if (r->mode != ASP__MODE_BUFFER)
        return 1;
    return r->req && !r->paused;
}

/* Polls the fd when the buffer has room or the mode needs more. */
void asp__stream_update(asp_stream *s)
{
    if (s->writer) {
        asp__writer_update(s);
        return;
    }
    asp__reader *r = &s->u.r;
    if (s->phase != ASP__PH_OPEN) {
        asp_io_stop(&s->io);
        return;
    }
    if (has_waiter(s))
        asp_io_ref(&s->io);
    else
        asp_io_unref(&s->io);
    int want = asp__stream_avail(s) < r->high_water || need_more(s);
    if (r->mode == ASP__MODE_FORWARD && r->fwd.blocked)
        want = 0; /* the target is full: the child waits, not our memory */
    if (!want) {
        asp_io_stop(&s->io);
        return;
    }
    if (!asp_io_active(&s->io) && r->grace_phase == ASP__GR_EXPIRED)
        asp__stream_kick(s); /* re-check for the cut */
    if (asp_io_start(&s->io, ASP_READ) < 0) {
        asp__stream_end_input(
            s, ASP__PH_EOF); /* cannot watch it: end the stream */
        asp__stream_kick(s);
    }
}

/* ----------------------------------------------------- grace and kick */

/* After the grace: read what the fd holds now; cut if it is then empty.
 * Not while backpressure holds data in the pipe. */
static void try_cut(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    for (int i = 0; i < MAX_READS_PER_EVENT * 4; i++) {
        if (s->phase != ASP__PH_OPEN)
            return;
        if (r->mode == ASP__MODE_BUFFER &&
            asp__stream_avail(s) >= r->high_water && !need_more(s))
            return; /* the reader must consume first */
        if (r->mode == ASP__MODE_FORWARD && r->fwd.blocked)
            return; /* the target must take what we hold first */
        int f = produce(s);
        if (f == ASP__FILL_AGAIN) {
            asp__stream_end_input(s, ASP__PH_CUT);
            return;
        }
        if (f <= 0)
            return;
        asp__stream_deliver(s);
    }
}

/* Schedules a delivery in the next iteration. */
void asp__stream_kick(asp_stream *s)
{
    asp_timer_start(&s->kick, 0, 0);
}

/* Deferred delivery (and the cut check after a backpressure pause). */
static void kick_cb(asp_timer *t, void *data)
{
    asp_stream *s = data;
    (void)t;
    if (s->writer) {
        asp__writer_kick(s);
        return;
    }
    asp__stream_hold(s);
    if (s->u.r.grace_phase == ASP__GR_EXPIRED)
        try_cut(s);
    asp__stream_deliver(s);
    asp__stream_release(s);
}

/* The eof grace expired. */
static void grace_cb(asp_timer *t, void *data)
{
    asp_stream *s = data;
    (void)t;
    s->u.r.grace_phase = ASP__GR_EXPIRED;
    asp__stream_hold(s);
    try_cut(s);
    asp__stream_deliver(s);
    asp__stream_release(s);
}

/* The child exited: start the eof grace. */
void asp__stream_child_exited(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    if (s->writer || s->phase != ASP__PH_OPEN ||
        r->grace_phase != ASP__GR_IDLE || r->grace_ms == ASP_FOREVER)
        return;
    r->grace_phase = ASP__GR_ARMED;
    asp_timer_start(&r->grace, r->grace_ms, 0);
}

/* The grace ends now. */
void asp__stream_expire_grace(asp_stream *s)
{
    if (s->writer || s->phase != ASP__PH_OPEN)
        return;
    asp_timer_stop(&s->u.r.grace);
    s->u.r.grace_phase = ASP__GR_EXPIRED;
    asp__stream_kick(s);
}

/* Reads what the fd holds now and delivers it, until the fd has no more
 * for the moment or gives EOF (a bounded number of reads, as after the
 * grace: an escaped descendant may keep writing), within the usual
 * backpressure. For a timer that must know whether an EOF is already
 * there before the poll would report it: communicate's timeout, when the
 * child has exited and its pipes hold their last bytes and EOF. */
void asp__stream_read_now(asp_stream *s)
{
    if (s->writer || s->phase != ASP__PH_OPEN)
        return;
    asp__stream_hold(s);
    for (int i = 0; i < MAX_READS_PER_EVENT * 4; i++) {
        int f = produce(s);
        asp__stream_deliver(s);
        if (!keep_reading(s, f))
            break;
    }
    asp__stream_release(s);
}

/* Reads what the fd holds now (a bounded number of reads), then closes it
 * as cut unless it reached EOF: the end of a communicate after its
 * escalation, which must come even while an escaped descendant keeps
 * writing. */
void asp__stream_cut_now(asp_stream *s)
{
    if (s->writer || s->phase != ASP__PH_OPEN)
        return;
    asp__stream_hold(s);
    asp_timer_stop(&s->u.r.grace);
    s->u.r.grace_phase = ASP__GR_EXPIRED;
    for (int i = 0; i < MAX_READS_PER_EVENT && s->phase == ASP__PH_OPEN; i++) {
        if (produce(s) <= 0)
            break;
        asp__stream_deliver(s);
    }
    if (s->phase == ASP__PH_OPEN)
        asp__stream_end_input(s, ASP__PH_CUT);
    asp__stream_deliver(s);
    asp__stream_release(s);
}

/* ------------------------------------------------------------ closing */

/* Closes the fd and ends everything pending with -ECANCELED (a capture
 * learns its end through its done callback). Buffered data is dropped.
 * On a closed terminal writer whose end of input is still going out
 * (writer.c), only that fd is left to close. */
void asp__stream_close_fd(asp_stream *s)
{
    if (s->phase == ASP__PH_CLOSED) {
        if (s->writer)
            asp__writer_drop_fd(s); /* a terminal's end of input in flight */
        return;
    }
    asp_timer_stop(&s->kick);
    asp_io_stop(&s->io);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->phase = ASP__PH_CLOSED;
    if (s->writer) {
        asp__writer_cancel(s);
        return;
    }
    asp__reader *r = &s->u.r;
    asp_timer_stop(&r->grace);
    r->start = r->end = 0;
    r->epoch++;
    switch (r->mode) {
    case ASP__MODE_CAPTURE: asp__capture_end(s); break;
    case ASP__MODE_FORWARD: asp__fwd_cancel(s, -ECANCELED); break;
    default: asp__req_cancel(s, -ECANCELED); break;
    }
}

/* ------------------------------------------------------------- public */

/* Bytes buffered (read side) or queued (write side). */
size_t asp_stream_buffered(const asp_stream *s)
{
    if (!s)
        return 0;
    if (s->writer) /* a terminal's end of input in flight is not counted */
        return s->phase == ASP__PH_OPEN ? s->u.w.bytes : 0;
    return asp__stream_avail(s);
}

/* EOF reached (or cut). */
int asp_stream_eof(const asp_stream *s)
{
    return s && (s->phase == ASP__PH_EOF || s->phase == ASP__PH_CUT);
}

/* Output may be cut. */
int asp_stream_cut(const asp_stream *s)
{
    return s && s->phase == ASP__PH_CUT;
}

/* Closes the stream. */
int asp_stream_close(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->phase == ASP__PH_CLOSED)
        return -EBADF;
    asp__stream_hold(s);
    if (s->writer && s->tty)
        asp__writer_close_tty(s); /* the end-of-file character, not a hang-up */
    else
        asp__stream_close_fd(s);
    asp__stream_release(s);
    return 0;
}
