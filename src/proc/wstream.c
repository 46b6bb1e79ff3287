/*
 * wstream.c - the write side: the child's stdin.
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
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
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
void asp__wstream_drop_queue(asp_stream *s)
{
    asp__wchunk *c = s->wq_head;
    while (c) {
        asp__wchunk *next = c->next;
        asp__free(c);
        c = next;
    }
    s->wq_head = s->wq_tail = NULL;
    s->wq_bytes = 0;
}

/* Appends a chunk to the queue. */
static void queue_push(asp_stream *s, asp__wchunk *c)
{
    c->next = NULL;
    if (s->wq_tail)
        s->wq_tail->next = c;
    else
        s->wq_head = c;
    s->wq_tail = c;
    s->wq_bytes += c->len - c->off;
}

/* Writes from the queue until it is empty or the pipe is full. Returns 0,
 * or -EPIPE (or another -errno) when the pipe is broken. */
static int write_queue(asp_stream *s)
{
    asp__pipe_guard g;
    int r = 0;
    in_guard_enter(&g);
    while (s->wq_head) {
        asp__wchunk *c = s->wq_head;
        ssize_t n = write(s->fd, c->data + c->off, c->len - c->off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                r = -errno;
            break;
        }
        c->off += (size_t)n;
        s->wq_bytes -= (size_t)n;
        if (c->off == c->len) {
            s->wq_head = c->next;
            if (!s->wq_head)
                s->wq_tail = NULL;
            asp__free(c);
        }
    }
    in_guard_leave(&g, r == -EPIPE);
    if (r < 0) {
        s->flags |= ASP__S_WERR;
        asp__wstream_drop_queue(s);
    }
    return r;
}

/* Watches for writability while something is queued. */
void asp__wstream_update(asp_stream *s)
{
    if ((s->flags & ASP__S_CLOSED) || s->fd < 0 || !s->wq_head) {
        asp_io_stop(&s->io);
        return;
    }
    asp_io_ref(&s->io);
    if (asp_io_start(&s->io, ASP_WRITE) < 0) {
        s->flags |= ASP__S_WERR;
        asp__wstream_drop_queue(s);
    }
}

/* Ends a pending drain with err. */
static void drain_done(asp_stream *s, int err)
{
    asp_drain_cb cb = s->drain_cb;
    if (!cb)
        return;
    s->drain_cb = NULL;
    asp_proc *p = s->proc;
    asp__proc_hold(p);
    cb(s, err, s->drain_data);
    asp__proc_release(p);
}

/* Completes a drain if the queue is empty or the pipe broke. */
static void drain_check(asp_stream *s)
{
    if (s->flags & ASP__S_WERR)
        drain_done(s, -EPIPE);
    else if (!s->wq_head)
        drain_done(s, 0);
}

/* The pipe is writable. */
void asp__wstream_io_cb(asp_io *w, int events)
{
    asp_stream *s = w->data;
    asp_proc *p = s->proc;
    (void)events;
    asp__proc_hold(p);
    write_queue(s);
    asp__wstream_update(s);
    drain_check(s);
    asp__proc_release(p);
}

/* Deferred drain completion (from the stream's kick timer). */
void asp__wstream_kick(asp_stream *s)
{
    asp_proc *p = s->proc;
    asp__proc_hold(p);
    drain_check(s);
    asp__proc_release(p);
}

/* The stream was closed: a pending drain ends with -ECANCELED. */
void asp__wstream_cancel(asp_stream *s)
{
    asp__wstream_drop_queue(s);
    drain_done(s, -ECANCELED);
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
void asp__wstream_push(asp_stream *s, asp__wchunk *c)
{
    queue_push(s, c);
    write_queue(s);
    asp__wstream_update(s);
}

/* Checks that s is an open stdin. */
static int check_writable(const asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->which != 0)
        return -EOPNOTSUPP;
    if (s->flags & ASP__S_CLOSED)
        return -EBADF;
    if (s->flags & ASP__S_WERR)
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
    if (!s->wq_head) {
        asp__pipe_guard g;
        in_guard_enter(&g);
        while (done < len) {
            ssize_t n = write(s->fd, (const char *)buf + done, len - done);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    r = -errno;
                break;
            }
            done += (size_t)n;
        }
        in_guard_leave(&g, r == -EPIPE);
        if (r < 0 || done == len) {
            asp__free(c);
            if (r < 0)
                s->flags |= ASP__S_WERR;
            return r;
        }
    }
    memcpy(c + 1, (const char *)buf + done, len - done);
    c->data = (const char *)(c + 1);
    c->len = len - done;
    c->off = 0;
    queue_push(s, c);
    asp__wstream_update(s);
    return 0;
}

/* Public: callback once everything queued is in the pipe. */
int asp_stream_drain(asp_stream *s, asp_drain_cb cb, void *data)
{
    if (!cb)
        return -EINVAL;
    int r = check_writable(s);
    if (r < 0 && r != -EPIPE)
        return r;
    if (s->drain_cb)
        return -EBUSY;
    s->drain_cb = cb;
    s->drain_data = data;
    if (!s->wq_head || (s->flags & ASP__S_WERR))
        asp_timer_start(&s->kick, 0, 0);
    return 0;
}

typedef struct {
    int done, err;
} sync_drain;

/* Completion of the blocking drain. */
static void sync_drain_cb(asp_stream *s, int err, void *data)
{
    sync_drain *d = data;
    (void)s;
    d->done = 1;
    d->err = err;
}

/* Public: blocking drain. */
int asp_stream_drain_sync(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->proc->loop->running)
        return -EBUSY;
    sync_drain d = {0, 0};
    int r = asp_stream_drain(s, sync_drain_cb, &d);
    if (r < 0)
        return r;
    r = asp_loop_run_until(s->proc->loop, &d.done);
    if (!d.done) {
        s->drain_cb = NULL;
        asp_timer_stop(&s->kick);
        return r;
    }
    return d.err;
}
