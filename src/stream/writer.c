/*
 * writer.c - the write side of a stream: the child's stdin.
 *
 * Writes are tried at once; what the pipe does not take is queued (copied,
 * or referenced for communicate's input) and written when the pipe is
 * writable. A broken pipe gives -EPIPE and drops the queue.
 *
 * SIGPIPE: a write to a pipe without readers raises SIGPIPE, which kills
 * the process by default. The library must neither die nor change the
 * process's dispositions, so around each burst of writes the calling
 * thread blocks SIGPIPE (the signal a write raises goes to the writing
 * thread), and if a write failed with EPIPE the pending SIGPIPE is consumed
 * with a zero-timeout sigtimedwait -- unless one was already pending
 * before, which then belongs to someone else. Systems with F_SETNOSIGPIPE
 * (macOS) set it on the fd instead.
 *
 * A terminal (the master of a pseudo-terminal) differs from a pipe in two
 * ways. Its end of input is a character, not a close: closing the
 * master would hang the child up, so asp_stream_close sends the
 * end-of-file character in canonical mode (twice after an unfinished
 * line) and keeps the fd open until the terminal took it. And it never
 * says EPIPE: once no process holds the terminal, it takes a few KiB
 * nobody reads, then reports "full" for ever while the poller reports the
 * hang-up as writability (a busy loop); a writer checks for the hang-up
 * before each burst and calls it a broken pipe.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Whether SIGPIPE is pending for this thread or the process. */
static int sigpipe_pending(void)
{
    sigset_t pend;
    return sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
}

/* Blocks SIGPIPE in this thread, noting whether one was pending. */
void asp__pipe_guard_enter(asp__pipe_guard *g)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    g->was_pending = sigpipe_pending();
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

/* Consumes the SIGPIPE our call raised (check: it may have; a splice into
 * a socket can raise one and still report the bytes it moved), unless one
 * was pending before, then restores the mask. */
void asp__pipe_guard_leave(asp__pipe_guard *g, int check)
{
    if (check && !g->was_pending && sigpipe_pending()) {
        sigset_t set;
        struct timespec zero = {0, 0};
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* The stdin pipe's guard: none where the fd itself refuses SIGPIPE. */
static void in_guard_enter(asp__pipe_guard *g)
{
#ifndef F_SETNOSIGPIPE
    asp__pipe_guard_enter(g);
#else
    (void)g;
#endif
}

/* Leaves the stdin pipe's guard. */
static void in_guard_leave(asp__pipe_guard *g, int got_epipe)
{
#ifndef F_SETNOSIGPIPE
    asp__pipe_guard_leave(g, got_epipe);
#else
    (void)g;
    (void)got_epipe;
#endif
}

/* Frees every queued chunk. */
static void drop_queue(asp_stream *s)
{
    asp__writer *w = &s->u.w;
    asp__wchunk *c = w->head;
    while (c) {
        asp__wchunk *next = c->next;
        asp__free(c);
        c = next;
    }
    w->head = w->tail = NULL;
    w->bytes = 0;
}

/* Appends a chunk to the queue. */
static void queue_push(asp_stream *s, asp__wchunk *c)
{
    asp__writer *w = &s->u.w;
    c->next = NULL;
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    w->bytes += c->len - c->off;
}

/* The pipe broke: the queue is dropped, later writes get -EPIPE. */
static void broken(asp_stream *s)
{
    s->u.w.broken = 1;
    drop_queue(s);
}

/* Whether the terminal behind the master fd is hung up: no process holds
 * it any more (see the file comment). */
static int tty_hung_up(int fd)
{
    struct pollfd p = {fd, POLLOUT, 0};
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & POLLHUP);
}

/* Writes buf until done or the pipe is full, inside the SIGPIPE guard.
 * Returns the bytes written; *err gets -errno for a failure other than a
 * full pipe (-EPIPE also for a hung-up terminal). */
static size_t write_some(asp_stream *s, const char *buf, size_t len, int *err)
{
    asp__pipe_guard g;
    size_t done = 0;
    *err = 0;
    if (s->tty && tty_hung_up(s->fd)) {
        *err = -EPIPE;
        return 0;
    }
    in_guard_enter(&g);
    while (done < len) {
        ssize_t n = write(s->fd, buf + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                *err = -errno;
            break;
        }
        done += (size_t)n;
    }
    in_guard_leave(&g, *err == -EPIPE);
    if (done > 0)
        s->u.w.last = (unsigned char)buf[done - 1];
    return done;
}

/* Writes from the queue until it is empty or the pipe is full. */
static void write_queue(asp_stream *s)
{
    asp__writer *w = &s->u.w;
    while (w->head) {
        asp__wchunk *c = w->head;
        int err;
        size_t n = write_some(s, c->data + c->off, c->len - c->off, &err);
        c->off += n;
        w->bytes -= n;
        if (err) {
            broken(s);
            return;
        }
        if (c->off < c->len)
            return; /* full */
        w->head = c->next;
        if (!w->head)
            w->tail = NULL;
        asp__free(c);
    }
}

/* Closes the fd a closing writer (a terminal's, see asp__writer_close_tty)
 * still holds, and drops what it still wanted to write. */
void asp__writer_drop_fd(asp_stream *s)
{
    s->u.w.closing = 0;
    asp_io_stop(&s->io);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    drop_queue(s);
}

/* Watches for writability while something is queued: for the child while
 * the stream is open, or the end of input of a closed terminal's writer,
 * which keeps no loop alive (it goes out whenever the loop runs). */
void asp__writer_update(asp_stream *s)
{
    asp__writer *w = &s->u.w;
    int open = s->phase == ASP__PH_OPEN;
    if (!w->head || (!open && !w->closing)) {
        asp_io_stop(&s->io);
        return;
    }
    if (open)
        asp_io_ref(&s->io);
    else
        asp_io_unref(&s->io);
    if (asp_io_start(&s->io, ASP_WRITE) < 0) {
        broken(s);
        if (w->closing)
            asp__writer_drop_fd(s);
    }
}

/* Ends a pending drain with err. */
static void drain_done(asp_stream *s, int err)
{
    asp__writer *w = &s->u.w;
    asp_drain_cb cb = w->drain_cb;
    if (!cb)
        return;
    w->drain_cb = NULL;
    cb(s, err, w->drain_data);
}

/* Completes a drain if the queue is empty or the pipe broke. */
static void drain_check(asp_stream *s)
{
    if (s->u.w.broken)
        drain_done(s, -EPIPE);
    else if (!s->u.w.head)
        drain_done(s, 0);
}

/* The pipe is writable. */
void asp__writer_io_cb(asp_io *io, int events, void *data)
{
    asp_stream *s = data;
    (void)io;
    (void)events;
    asp__stream_hold(s);
    write_queue(s);
    if (s->u.w.closing && (!s->u.w.head || s->u.w.broken))
        asp__writer_drop_fd(s); /* the end of input is out, or cannot go */
    asp__writer_update(s);
    drain_check(s);
    asp__stream_release(s);
}

/* Deferred drain completion (from the stream's kick timer). */
void asp__writer_kick(asp_stream *s)
{
    asp__stream_hold(s);
    drain_check(s);
    asp__stream_release(s);
}

/* The stream was closed: a pending drain ends with -ECANCELED. */
void asp__writer_cancel(asp_stream *s)
{
    drop_queue(s);
    drain_done(s, -ECANCELED);
}

/* Whether byte c ends a line of canonical input under t. */
static int ends_line(int c, const struct termios *t)
{
    if (c == '\n' || c == t->c_cc[VEOF])
        return 1;
    if (c == '\r' && (t->c_iflag & ICRNL) && !(t->c_iflag & IGNCR))
        return 1;
    if (c == t->c_cc[VEOL] && t->c_cc[VEOL] != _POSIX_VDISABLE)
        return 1;
#ifdef VEOL2
    if (c == t->c_cc[VEOL2] && t->c_cc[VEOL2] != _POSIX_VDISABLE)
        return 1;
#endif
    return 0;
}

/* The end of input for a terminal in its current modes: 0 characters
 * outside canonical mode (there is none), else VEOF, twice after an
 * unfinished line (the first one ends that line). Fills out. */
static size_t tty_eof(const asp_stream *s, char out[2])
{
    struct termios t;
    if (tcgetattr(s->fd, &t) < 0 || !(t.c_lflag & ICANON) ||
        t.c_cc[VEOF] == _POSIX_VDISABLE)
        return 0;
    out[0] = out[1] = (char)t.c_cc[VEOF];
    int last = s->u.w.last;
    return last < 0 || ends_line(last, &t) ? 1 : 2;
}

/* asp_stream_close on a terminal's writer: the stream is closed for the
 * caller at once (queued bytes dropped, a drain cancelled), but the fd
 * stays open until the end-of-file characters are written (see the file
 * comment). Runs with s held. */
void asp__writer_close_tty(asp_stream *s)
{
    char eof[2];
    size_t n = s->u.w.broken ? 0 : tty_eof(s, eof);
    asp_timer_stop(&s->kick);
    s->phase = ASP__PH_CLOSED;
    asp__writer_cancel(s); /* its callback may free the process */
    if (n == 0 || s->fd < 0) {
        asp__writer_drop_fd(s);
        return;
    }
    int err;
    size_t done = write_some(s, eof, n, &err);
    asp__wchunk *c = err || done == n ? NULL : asp__malloc(sizeof *c + 2);
    if (!c) {
        asp__writer_drop_fd(s); /* written, failed, or no memory for it */
        return;
    }
    memcpy(c + 1, eof + done, n - done);
    c->data = (const char *)(c + 1);
    c->len = n - done;
    c->off = 0;
    queue_push(s, c);
    s->u.w.closing = 1;
    asp__writer_update(s);
}

/* A chunk referencing len bytes of buf (communicate's input, which the
 * caller keeps valid); NULL when out of memory. */
asp__wchunk *asp__wchunk_ref(const void *buf, size_t len)
{
    asp__wchunk *c = asp__malloc(sizeof *c);
    if (!c)
        return NULL;
    c->data = buf;
    c->len = len;
    c->off = 0;
    return c;
}

/* Queues c and writes what the pipe takes now. */
void asp__writer_push(asp_stream *s, asp__wchunk *c)
{
    queue_push(s, c);
    write_queue(s);
    asp__writer_update(s);
}

/* Checks that s is an open stdin. */
static int check_writable(const asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (!s->writer)
        return -EOPNOTSUPP;
    if (s->phase != ASP__PH_OPEN)
        return -EBADF;
    if (s->u.w.broken)
        return -EPIPE;
    return 0;
}

/* Public: write (what the pipe takes now, the rest queued as a copy).
 * All or nothing: the chunk for a remainder is allocated before anything
 * is written, so -ENOMEM never follows a partial write. (A large chunk
 * that turns out not to be needed costs little: it is never touched.) */
int asp_stream_write(asp_stream *s, const void *buf, size_t len)
{
    int r = check_writable(s);
    if (r < 0)
        return r;
    if (!buf && len)
        return -EINVAL;
    if (len == 0)
        return 0;
    asp__wchunk *c = asp__malloc(sizeof *c + len);
    if (!c)
        return -ENOMEM;
    size_t done = 0;
    if (!s->u.w.head) {
        done = write_some(s, buf, len, &r);
        if (r < 0 || done == len) {
            asp__free(c);
            if (r < 0)
                broken(s);
            return r;
        }
    }
    memcpy(c + 1, (const char *)buf + done, len - done);
    c->data = (const char *)(c + 1);
    c->len = len - done;
    c->off = 0;
    queue_push(s, c);
    asp__writer_update(s);
    return 0;
}

/* Public: callback once everything queued is in the pipe. */
int asp_stream_drain_start(asp_stream *s, asp_drain_cb cb, void *data)
{
    if (!cb)
        return -EINVAL;
    int r = check_writable(s);
    if (r < 0 && r != -EPIPE)
        return r;
    if (s->u.w.drain_cb)
        return -EBUSY;
    s->u.w.drain_cb = cb;
    s->u.w.drain_data = data;
    if (!s->u.w.head || s->u.w.broken)
        asp__stream_kick(s);
    return 0;
}
