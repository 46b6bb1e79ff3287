/*
 * backend_kqueue.c - the BSD/macOS backend, and the kqueue child-exit
 * source (EVFILT_PROC) that only this backend can carry.
 *
 * Quirks this file accounts for:
 *  a) Interest is per (fd, filter): READ and WRITE are two knotes. A mask
 *     change adds the filters that appear and deletes those that go, one
 *     kevent() call per change, so every error belongs to exactly one
 *     change (a change list without room for EV_ERROR entries stops at the
 *     first failure and leaves the rest unapplied, unreported).
 *  b) An add that fails after another add of the same call succeeded is
 *     rolled back, so the kernel never holds interest the core does not
 *     know about (a stray level-triggered WRITE knote would spin the loop).
 *  c) Closing an fd removes its knotes (unlike epoll, which follows the
 *     open file description): deleting after close gives EBADF or ENOENT.
 *     The core deletes before close anyway and ignores the result of a
 *     full delete; a partial delete treats ENOENT as done.
 *  d) A pipe whose writers are gone reports EVFILT_READ with EV_EOF (with
 *     .data bytes still buffered, maybe 0), and a pipe whose reader is
 *     gone reports EVFILT_WRITE with EV_EOF. Both become the filter's bit
 *     plus ASP__EV_ERR, as epoll's EPOLLHUP does: EOF is readable, and a
 *     writer learns EPIPE from write().
 *  e) One fd watched for READ and WRITE may appear twice in one poll (one
 *     entry per filter). The core looks the watcher up again for each
 *     entry, so a watcher stopped by the first callback never sees the
 *     second.
 *  f) EVFILT_PROC/NOTE_EXIT fires when the child exits; it does not reap.
 *     The knote is one-shot (the kernels drop it on delivery; EV_ONESHOT
 *     says so explicitly). The event's ident is the pid: it is passed up
 *     as ASP__EV_PROC with .pid holding the pid, and the loop's child
 *     watch tells the owner of that child, who reaps it by pid.
 *  g) Watching a child that already exited: FreeBSD accepts the zombie and
 *     fires at once; macOS fails with ESRCH. Here ESRCH queues the pid and
 *     the next poll reports it as if the kernel had (without blocking), so
 *     the process module sees one behaviour: the exit arrives as an event
 *     in a later iteration, never inside the spawn call. Stopping a watch
 *     also drops a queued pid, and reaping stops the watch first, so a
 *     reused pid never meets a stale event; an event for a pid that is not
 *     a live child of the loop is ignored by the process module.
 *  h) The timeout is a timespec: nanosecond precision, no rounding.
 *  i) EINTR (a signal during the wait, e.g. the self-pipe source's SIGCHLD)
 *     is not an error: the core just iterates again.
 *  j) A kqueue is never inherited by fork or vfork children, so
 *     close-on-exec matters less than for other fds; it is still set at
 *     creation where the system can (kqueuex on FreeBSD 14, kqueue1 on
 *     NetBSD) and right after it elsewhere. It is still moved off fds 0-2
 *     in a host that closed its stdio: spawn takes an open fd 0-2 of the
 *     parent for one the child should inherit, and the child has no
 *     kqueue there.
 *  k) The kqueue fd is itself pollable (readable while events are
 *     pending), so a host loop can embed this backend. Exits queued by
 *     (g) do not make it readable: pending() tells the core, which then
 *     tells a host loop to run at once.
 *  l) EVFILT_USER would save the wakeup pipe on some systems but not on
 *     all of them (older OpenBSD and NetBSD lack it); the loop's portable
 *     pipe notifier is used instead, watched like any other fd.
 */
#define _GNU_SOURCE
#include "internal.h"

#ifdef ASP_HAVE_KQUEUE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/event.h>
#include <time.h>
#include <unistd.h>

typedef struct kq_state {
    int kq;
    pid_t *gone; /* exited before their watch, quirk (g) */
    int ngone, gonecap;
    struct kevent ev[ASP__MAX_EVENTS];
} kq_state;

/* Opens a kqueue that is close-on-exec, quirk (j). Returns it or -errno. */
static int kq_open(void)
{
    int fd;
#if defined(KQUEUE_CLOEXEC)
    fd = kqueuex(KQUEUE_CLOEXEC);
#elif defined(__NetBSD__)
    fd = kqueue1(O_CLOEXEC);
#else
    fd = kqueue();
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
#endif
    if (fd < 0)
        return -errno;
    return asp__fd_high(fd);
}

/* Creates the kqueue. */
static int kq_init(asp_loop *loop)
{
    kq_state *s = asp__malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    s->gone = NULL;
    s->ngone = s->gonecap = 0;
    s->kq = kq_open();
    if (s->kq < 0) {
        int e = s->kq;
        asp__free(s);
        return e;
    }
    loop->be_data = s;
    return 0;
}

/* Closes the kqueue; the kernel drops every knote with it. */
static void kq_destroy(asp_loop *loop)
{
    kq_state *s = loop->be_data;
    close(s->kq);
    asp__free(s->gone);
    asp__free(s);
    loop->be_data = NULL;
}

/* Submits one change; 0 or -errno, quirk (a). */
static int kq_change(const kq_state *s, uintptr_t ident, short filter,
                     unsigned short flags, unsigned int fflags)
{
    struct kevent ch;
    EV_SET(&ch, ident, filter, flags, fflags, 0, 0);
    if (kevent(s->kq, &ch, 1, NULL, 0, NULL) < 0)
        return -errno;
    return 0;
}

/* The kqueue filter of one ASP__EV_READ/WRITE bit. */
static short kq_filter(int bit)
{
    return bit == ASP__EV_READ ? EVFILT_READ : EVFILT_WRITE;
}

/* Applies a change of interest, quirks (a)-(c). */
static int kq_set(asp_loop *loop, int fd, int oldmask, int newmask)
{
    const kq_state *s = loop->be_data;
    static const int bits[2] = {ASP__EV_READ, ASP__EV_WRITE};
    int added = 0, r = 0;

    for (int i = 0; i < 2; i++) {
        int b = bits[i];
        if (!(newmask & b) || (oldmask & b))
            continue;
        r = kq_change(s, (uintptr_t)fd, kq_filter(b), EV_ADD, 0);
        if (r < 0) {
            if (added)
                (void)kq_change(s, (uintptr_t)fd, kq_filter(added), EV_DELETE,
                                0);
            return r;
        }
        added = b;
    }
    for (int i = 0; i < 2; i++) {
        int b = bits[i];
        if (!(oldmask & b) || (newmask & b))
            continue;
        int d = kq_change(s, (uintptr_t)fd, kq_filter(b), EV_DELETE, 0);
        if (d < 0 && d != -ENOENT && r == 0)
            r = d;
    }
    return r;
}

/* Translates one returned kevent, quirks (d) and (f). */
static asp__event kq_translate(const struct kevent *k)
{
    asp__event e;
    e.fd = (int)k->ident;
    e.pid = 0;
    if (k->filter == EVFILT_PROC) {
        e.fd = -1;
        e.pid = (pid_t)k->ident;
        e.mask = ASP__EV_PROC;
        return e;
    }
    if (k->flags & EV_ERROR) {
        e.mask = ASP__EV_ERR;
        return e;
    }
    e.mask = (k->filter == EVFILT_READ) ? ASP__EV_READ : ASP__EV_WRITE;
    if (k->flags & EV_EOF)
        e.mask |= ASP__EV_ERR;
    return e;
}

/* Waits and translates events into the shared array, quirks (g)-(i). */
static int kq_poll(asp_loop *loop, int64_t timeout_ns, asp__event *out, int max)
{
    kq_state *s = loop->be_data;
    struct timespec ts, *tp = NULL;
    if (s->ngone > 0)
        timeout_ns = 0; /* queued exits are ready now */
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    if (max > ASP__MAX_EVENTS)
        max = ASP__MAX_EVENTS;
    int n = kevent(s->kq, NULL, 0, s->ev, max, tp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++)
        out[i] = kq_translate(&s->ev[i]);
    while (s->ngone > 0 && n < max) {
        out[n].fd = -1;
        out[n].pid = s->gone[--s->ngone];
        out[n].mask = ASP__EV_PROC;
        n++;
    }
    return n;
}

/* The kqueue fd, quirk (k). */
static int kq_fd(const asp_loop *loop)
{
    const kq_state *s = loop->be_data;
    return s->kq;
}

/* Queues the exit of pid for the next poll, quirk (g). */
static int kq_queue_gone(kq_state *s, pid_t pid)
{
    if (s->ngone == s->gonecap) {
        int cap = s->gonecap ? s->gonecap * 2 : 8;
        pid_t *g = asp__realloc(s->gone, (size_t)cap * sizeof *g);
        if (!g)
            return -ENOMEM;
        s->gone = g;
        s->gonecap = cap;
    }
    s->gone[s->ngone++] = pid;
    return 0;
}

/* Starts or stops the exit watch of a child, quirks (f) and (g). */
static int kq_watch_pid(asp_loop *loop, pid_t pid, int on)
{
    kq_state *s = loop->be_data;
    int r;
    if (!on) {
        for (int i = 0; i < s->ngone; i++)
            if (s->gone[i] == pid) {
                s->gone[i] = s->gone[--s->ngone];
                return 0;
            }
        r = kq_change(s, (uintptr_t)pid, EVFILT_PROC, EV_DELETE, 0);
        /* ENOENT: the one-shot knote was dropped when it fired. */
        return (r == -ENOENT || r == -ESRCH) ? 0 : r;
    }
    r = kq_change(s, (uintptr_t)pid, EVFILT_PROC, EV_ADD | EV_ONESHOT,
                  NOTE_EXIT);
    if (r == -ESRCH)
        return kq_queue_gone(s, pid);
    return r;
}

/* A host loop polls the kqueue fd alone, for reading, quirk (k). */
static int kq_pollfds(const asp_loop *loop, struct pollfd *fds, int nfds)
{
    if (nfds > 0)
        fds[0] = (struct pollfd){.fd = kq_fd(loop), .events = POLLIN};
    return 1;
}

/* Exits queued by quirk (g) are ready without the fd showing it, (k). */
static int kq_pending(const asp_loop *loop)
{
    const kq_state *s = loop->be_data;
    return s->ngone > 0;
}

const asp__backend_ops asp__backend_kqueue = {
    .name = "kqueue",
    .id = ASP_BACKEND_KQUEUE,
    .init = kq_init,
    .destroy = kq_destroy,
    .set = kq_set,
    .poll = kq_poll,
    .fd = kq_fd,
    .pollfds = kq_pollfds,
    .pending = kq_pending,
    .watch_pid = kq_watch_pid,
};

#endif
