/*
 * forward.c - an output stream sent on to an fd (asp_stream_forward).
 *
 * The bytes go from the child's pipe to the target with splice(2) when
 * the stream's buffer is empty: the kernel moves page references from one
 * pipe to the other (or copies once, pipe to file or socket) and the data
 * never enters this process. Bytes already buffered, pairs splice cannot
 * serve (a socketpair stream into a file: neither end is a pipe; a target
 * opened O_APPEND) and systems without splice go through the stream's
 * buffer with read and write instead.
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
 * wstream.c, which consumes the signal, and forwarding ends with -EPIPE.
 * Files and devices never raise it and go unguarded.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes asked of one splice: the largest pipe the stream grows to. */
#define FWD_CHUNK ((size_t)1 << 20)

static void fwd_io_cb(asp_io *w, int events);

/* Takes a duplicate of fd for the stream; 0 or a negative errno. */
int asp__fwd_setup(asp_stream *s, int fd)
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
    s->fwd_fd = dup;
    s->fwd_guard = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
    s->fwd_total = 0;
    s->fwd_blocked = 0;
    s->fwd_err = 0;
#ifdef ASP_HAVE_SPLICE
    s->fwd_splice = 1;
#else
    s->fwd_splice = 0;
#endif
    asp_io_init(s->proc->loop, &s->fwd_io, dup, fwd_io_cb, s);
    return 0;
}

/* Closes the duplicate and stops watching it. */
void asp__fwd_release(asp_stream *s)
{
    if (s->fwd_fd < 0)
        return;
    asp_io_stop(&s->fwd_io);
    close(s->fwd_fd);
    s->fwd_fd = -1;
    s->fwd_blocked = 0;
}

/* The target is full: stop reading, watch it. A target that cannot be
 * watched ends forwarding with the error. */
static void block(asp_stream *s)
{
    s->fwd_blocked = 1;
    int r = asp_io_start(&s->fwd_io, ASP_WRITE);
    if (r < 0) {
        s->fwd_blocked = 0;
        s->fwd_err = r;
    }
}

/* The target can take more: resume. */
static void fwd_io_cb(asp_io *w, int events)
{
    asp_stream *s = w->data;
    (void)events;
    asp_io_stop(&s->fwd_io);
    s->fwd_blocked = 0;
    asp__stream_dispatch(s); /* buffered bytes first; it re-polls the pipe */
}

#ifdef ASP_HAVE_SPLICE
/* After an EAGAIN, which side said it: AGAIN (the source is empty), BUSY
 * with the target watched (the target is full), or 1 (both look ready:
 * try again). A failed poll is BUSY: nothing is known, nothing is cut. */
static int after_eagain(asp_stream *s)
{
    struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->fwd_fd, POLLOUT, 0}};
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
        return s->fwd_err ? ASP__FILL_ERR : ASP__FILL_BUSY;
    }
    return 1;
}

/* One splice call under the SIGPIPE guard (for pipe and socket targets);
 * returns its result, errno in *e. */
static ssize_t splice_once(asp_stream *s, int *e)
{
    asp__pipe_guard g;
    ssize_t r;
    if (s->fwd_guard)
        asp__pipe_guard_enter(&g);
    do
        r = splice(s->fd, NULL, s->fwd_fd, NULL, FWD_CHUNK,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (r < 0 && errno == EINTR);
    *e = r < 0 ? errno : 0;
    /* A partial splice into a socket may have raised SIGPIPE too. */
    if (s->fwd_guard)
        asp__pipe_guard_leave(&g, *e == EPIPE || (r > 0 && (size_t)r < FWD_CHUNK));
    return r;
}
#endif

/* Moves bytes from the stream's fd to the target with splice. */
int asp__fwd_splice(asp_stream *s, size_t *n)
{
    *n = 0;
#ifdef ASP_HAVE_SPLICE
    for (int tries = 0; tries < 3; tries++) {
        int e;
        ssize_t r = splice_once(s, &e);
        if (r > 0) {
            *n = (size_t)r;
            s->fwd_total += (size_t)r;
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
            s->fwd_splice = 0;
            return ASP__FILL_ERR;
        }
        s->fwd_err = -e;
        return ASP__FILL_ERR;
    }
    return ASP__FILL_BUSY;
#else
    s->fwd_splice = 0;
    return ASP__FILL_ERR;
#endif
}

/* Writes buffered bytes to the target; returns how many it took. */
size_t asp__fwd_write(asp_stream *s, const char *buf, size_t len)
{
    asp__pipe_guard g;
    size_t done = 0;
    int e = 0;
    if (s->fwd_guard)
        asp__pipe_guard_enter(&g);
    while (done < len) {
        ssize_t r = write(s->fwd_fd, buf + done, len - done);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        e = r < 0 ? errno : EIO;
        break;
    }
    if (s->fwd_guard)
        asp__pipe_guard_leave(&g, e == EPIPE);
    s->fwd_total += done;
    if (e == EAGAIN || e == EWOULDBLOCK)
        block(s);
    else if (e)
        s->fwd_err = -e;
    return done;
}
