/*
 * forward.c - an output stream sent on to an fd (asp_stream_forward).
 *
 * The bytes go from the child's pipe to the target with splice(2) when
 * the stream's buffer is empty: the kernel moves page references from one
 * pipe to the other (or copies once, pipe to file or socket) and the data
 * never enters this process. Bytes already buffered, pairs splice cannot
 * serve (a socketpair stream into a file: neither end is a pipe; a target
 * opened O_APPEND), terminals (their end is an error to splice) and
 * systems without splice go through the stream's buffer with read and
 * write instead.
 *
 * The stream holds its own duplicate of the target (F_DUPFD_CLOEXEC): the
 * caller may close theirs at once, two streams may forward to one fd, and
 * the duplicate can be watched without clashing with the caller's own
 * registration of the fd in any poller.
 *
 * Backpressure: when the target is full (EAGAIN from a non-blocking pipe
 * or socket) reading stops and the target is watched for writability, so
 * a slow consumer slows the child down instead of growing memory. A
 * blocking target may block the loop inside a write (a splice into a
 * pipe does not: SPLICE_F_NONBLOCK covers both pipes); regular files
 * never report full.
 *
 * splice with SPLICE_F_NONBLOCK says EAGAIN both when the source is empty
 * and when the target is full; a zero-timeout poll of both tells which,
 * and only "the source has nothing" may let the eof grace cut the stream
 * (anything unsure is reported as BUSY: the source may still hold data).
 * A short splice usually means the source was drained, so the caller goes
 * back to the loop rather than trying again at once.
 *
 * Writes and splices into a pipe or socket without a reader raise SIGPIPE
 * (a splice into a socket even while reporting the bytes it moved before
 * the reader left): for such targets both run inside the SIGPIPE guard of
 * writer.c, which consumes the signal, and forwarding ends with -EPIPE.
 * Files and devices never raise it and go unguarded.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes asked of one splice: the largest pipe the stream grows to. */
#define FWD_CHUNK ((size_t)1 << 20)

static void fwd_io_cb(asp_io *w, int events, void *data);

/* Takes a duplicate of fd for the stream; 0 or a negative errno. */
static int fwd_setup(asp_stream *s, int fd)
{
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0)
        return -errno;
    s->u.r.fwd.fd = dup;
    s->u.r.fwd.guard = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
    s->u.r.fwd.total = 0;
    s->u.r.fwd.blocked = 0;
    s->u.r.fwd.err = 0;
#ifdef ASP_HAVE_SPLICE
    /* A terminal splices (Linux >= 6.5) but reports its end as EIO, which
     * splice cannot tell from a failing target: terminals are copied. */
    s->u.r.fwd.splice = !s->tty;
#else
    s->u.r.fwd.splice = 0;
#endif
    asp_io_init(s->loop, &s->u.r.fwd.io, dup, fwd_io_cb, s);
    return 0;
}

/* Ends forward mode without a callback: closes the duplicate and stops
 * watching it. */
void asp__fwd_release(asp_stream *s)
{
    asp__forward *f = &s->u.r.fwd;
    s->u.r.mode = ASP__MODE_BUFFER;
    if (f->fd < 0)
        return;
    asp_io_stop(&f->io);
    close(f->fd);
    f->fd = -1;
    f->blocked = 0;
}

/* Ends forward mode and calls back with err and the bytes forwarded. */
static void fwd_finish(asp_stream *s, int err)
{
    asp__forward *f = &s->u.r.fwd;
    asp_read_cb cb = f->cb;
    void *data = f->data;
    size_t total = f->total;
    asp__fwd_release(s);
    cb(s, err, NULL, total, data);
}

/* The stream was closed: forwarding ends with err (-ECANCELED). */
void asp__fwd_cancel(asp_stream *s, int err)
{
    fwd_finish(s, err);
}

/* The target is full: stop reading, watch it. A target that cannot be
 * watched ends forwarding with the error. */
static void block(asp_stream *s)
{
    s->u.r.fwd.blocked = 1;
    int r = asp_io_start(&s->u.r.fwd.io, ASP_WRITE);
    if (r < 0) {
        s->u.r.fwd.blocked = 0;
        s->u.r.fwd.err = r;
    }
}

/* The target can take more: resume. */
static void fwd_io_cb(asp_io *w, int events, void *data)
{
    asp_stream *s = data;
    (void)events;
    asp_io_stop(w);
    s->u.r.fwd.blocked = 0;
    asp__stream_deliver(s); /* buffered bytes first; it re-polls the fd */
}

#ifdef ASP_HAVE_SPLICE
/* After an EAGAIN, which side said it: AGAIN (the source is empty), BUSY
 * with the target watched (the target is full), or 1 (both look ready:
 * try again). A failed poll is BUSY: nothing is known, nothing is cut. */
static int after_eagain(asp_stream *s)
{
    struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->u.r.fwd.fd, POLLOUT, 0}};
    int r;
    do
        r = poll(p, 2, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return ASP__FILL_BUSY;
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
        return ASP__FILL_AGAIN;
    if (!(p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
        block(s);
        return s->u.r.fwd.err ? ASP__FILL_ERR : ASP__FILL_BUSY;
    }
    return 1;
}

/* One splice call under the SIGPIPE guard (for pipe and socket targets);
 * returns its result, errno in *e. */
static ssize_t splice_once(asp_stream *s, int *e)
{
    asp__pipe_guard g;
    ssize_t r;
    if (s->u.r.fwd.guard)
        asp__pipe_guard_enter(&g);
    do
        r = splice(s->fd, NULL, s->u.r.fwd.fd, NULL, FWD_CHUNK,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (r < 0 && errno == EINTR);
    *e = r < 0 ? errno : 0;
    /* A partial splice into a socket may have raised SIGPIPE too. */
    if (s->u.r.fwd.guard)
        asp__pipe_guard_leave(&g,
                              *e == EPIPE || (r > 0 && (size_t)r < FWD_CHUNK));
    return r;
}
#endif

/* Moves bytes from the stream's fd to the target with splice, returning
 * an ASP__FILL_* code: AGAIN only when the source is empty; BUSY when
 * nothing moved but the source may hold data (the target is full:
 * blocked is set); ERR with err set when the target failed. */
static int fwd_splice(asp_stream *s)
{
#ifdef ASP_HAVE_SPLICE
    for (int tries = 0; tries < 3; tries++) {
        int e;
        ssize_t r = splice_once(s, &e);
        if (r > 0) {
            s->u.r.fwd.total += (size_t)r;
            return (size_t)r < FWD_CHUNK ? ASP__FILL_SHORT : ASP__FILL_FULL;
        }
        if (r == 0)
            return ASP__FILL_EOF;
        if (e == EAGAIN || e == EWOULDBLOCK) {
            int w = after_eagain(s);
            if (w != 1)
                return w;
            continue; /* both ready a moment later: splice again */
        }
        if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ESPIPE) {
            /* Not a pair splice serves: copy through the buffer from now
             * on. (The source side errs the same way only for a pipe
             * that is not ours, which cannot be.) */
            s->u.r.fwd.splice = 0;
            return ASP__FILL_ERR;
        }
        s->u.r.fwd.err = -e;
        return ASP__FILL_ERR;
    }
    return ASP__FILL_BUSY;
#else
    s->u.r.fwd.splice = 0;
    return ASP__FILL_ERR;
#endif
}

/* Writes buffered bytes to the target; returns how many it took (fewer:
 * the target is full and blocked is set, or err is set). */
static size_t fwd_write(asp_stream *s, const char *buf, size_t len)
{
    asp__pipe_guard g;
    size_t done = 0;
    int e = 0;
    if (s->u.r.fwd.guard)
        asp__pipe_guard_enter(&g);
    while (done < len) {
        ssize_t r = write(s->u.r.fwd.fd, buf + done, len - done);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        e = r < 0 ? errno : EIO;
        break;
    }
    if (s->u.r.fwd.guard)
        asp__pipe_guard_leave(&g, e == EPIPE);
    s->u.r.fwd.total += done;
    if (e == EAGAIN || e == EWOULDBLOCK)
        block(s);
    else if (e)
        s->u.r.fwd.err = -e;
    return done;
}

/* One fill in forward mode (the buffer is empty): a splice where the pair
 * of fds allows it, else a read into the buffer for fwd_deliver. */
int asp__fwd_fill(asp_stream *s)
{
    asp__forward *f = &s->u.r.fwd;
    if (!f->splice || f->blocked || f->err)
        return f->err || f->blocked ? ASP__FILL_BUSY : asp__stream_fill(s);
    size_t before = f->total;
    int r = fwd_splice(s);
    if (r > 0)
        asp__stream_carried(s, f->total - before);
    else if (r == ASP__FILL_EOF)
        asp__stream_end_input(s, ASP__PH_EOF); /* as a read would */
    else if (r == ASP__FILL_ERR && !f->err)
        r = asp__stream_fill(s); /* splice cannot serve this pair: copy */
    return r;
}

/* Writes what is buffered to the target; ends forwarding at EOF (once
 * the buffer is empty) or when the target failed. */
int asp__fwd_deliver(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    asp__forward *f = &r->fwd;
    size_t a = asp__stream_avail(s);
    if (a > 0 && !f->blocked && !f->err)
        r->start += fwd_write(s, r->buf + r->start, a);
    int eof = s->phase == ASP__PH_EOF || s->phase == ASP__PH_CUT;
    if (f->err || (eof && asp__stream_avail(s) == 0)) {
        fwd_finish(s, f->err);
        return 1;
    }
    return 0;
}

/* Forwards everything from now on to fd; see the header. */
int asp_stream_forward_start(asp_stream *s, int fd, asp_read_cb cb, void *data)
{
    if (!s || !cb)
        return -EINVAL;
    if (s->writer)
        return -EOPNOTSUPP;
    if (s->phase == ASP__PH_CLOSED)
        return -EBADF;
    if (s->u.r.req || s->u.r.mode != ASP__MODE_BUFFER)
        return -EBUSY;
    int e = fwd_setup(s, fd);
    if (e < 0)
        return e;
    s->u.r.mode = ASP__MODE_FORWARD;
    s->u.r.fwd.cb = cb;
    s->u.r.fwd.data = data;
    if (!s->delivering &&
        (asp__stream_avail(s) > 0 || s->phase != ASP__PH_OPEN))
        asp__stream_kick(s);
    asp__stream_update(s);
    return 0;
}
