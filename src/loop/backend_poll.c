/*
 * backend_poll.c - the portable backend on poll(2).
 *
 * Quirks this file accounts for:
 *  a) poll has no kernel-side interest set: the pollfd array is ours, and
 *     an fd -> slot index keeps set() O(1); removal moves the last slot
 *     into the hole.
 *  b) POLLHUP, POLLERR and POLLNVAL come unasked; all become ASP__EV_ERR.
 *     POLLNVAL means an fd was closed while still watched (a caller bug):
 *     it is reported, not hidden, so the callback's read sees EBADF.
 *  c) One poll may return more ready fds than the event array holds; the
 *     scan starts at a rotating slot so no fd is starved by lower ones.
 *  d) poll's timeout is in milliseconds: ppoll (nanoseconds) is used where
 *     the system has it, otherwise the timeout is rounded up.
 *  e) There is no single fd to embed: fd() returns -ENOTSUP, and a host
 *     loop polls the whole pollfd array instead (pollfds()).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>

typedef struct poll_state {
    struct pollfd *pfd;
    int n, cap;
    int *slot; /* fd -> index + 1, 0 when absent */
    size_t slotcap;
    unsigned rot;
} poll_state;

/* Allocates the empty state. */
static int pl_init(asp_loop *loop)
{
    poll_state *s = asp__calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    loop->be_data = s;
    return 0;
}

/* Frees the state. */
static void pl_destroy(asp_loop *loop)
{
    poll_state *s = loop->be_data;
    asp__free(s->pfd);
    asp__free(s->slot);
    asp__free(s);
    loop->be_data = NULL;
}

/* Makes room for one more pollfd and for fd in the index. */
static int pl_reserve(poll_state *s, int fd)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        struct pollfd *p = asp__realloc(s->pfd, (size_t)cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        s->pfd = p;
        s->cap = cap;
    }
    if ((size_t)fd >= s->slotcap) {
        size_t cap = s->slotcap ? s->slotcap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        int *t = asp__realloc(s->slot, cap * sizeof *t);
        if (!t)
            return -ENOMEM;
        memset(t + s->slotcap, 0, (cap - s->slotcap) * sizeof *t);
        s->slot = t;
        s->slotcap = cap;
    }
    return 0;
}

/* Adds, changes or removes fd in the pollfd array. */
static int pl_set(asp_loop *loop, int fd, int oldmask, int newmask)
{
    poll_state *s = loop->be_data;
    short ev = (short)(((newmask & ASP__EV_READ) ? POLLIN : 0) |
                       ((newmask & ASP__EV_WRITE) ? POLLOUT : 0));
    int idx = ((size_t)fd < s->slotcap) ? s->slot[fd] - 1 : -1;
    (void)oldmask;

    if (newmask == 0) {
        if (idx < 0)
            return -ENOENT;
        s->n--;
        if (idx != s->n) {
            s->pfd[idx] = s->pfd[s->n];
            s->slot[s->pfd[idx].fd] = idx + 1;
        }
        s->slot[fd] = 0;
        return 0;
    }
    if (idx >= 0) {
        s->pfd[idx].events = ev;
        return 0;
    }
    int r = pl_reserve(s, fd);
    if (r < 0)
        return r;
    s->pfd[s->n] = (struct pollfd){.fd = fd, .events = ev, .revents = 0};
    s->n++;
    s->slot[fd] = s->n;
    return 0;
}

/* Calls ppoll or poll with the best precision available, quirk (d). */
static int pl_wait(poll_state *s, int64_t timeout_ns)
{
#ifdef ASP_HAVE_PPOLL
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    return ppoll(s->pfd, (nfds_t)s->n, tp, NULL);
#else
    int ms = -1;
    if (timeout_ns >= 0) {
        int64_t m = (timeout_ns + 999999) / 1000000;
        ms = m > 0x7fffffff ? 0x7fffffff : (int)m;
    }
    return poll(s->pfd, (nfds_t)s->n, ms);
#endif
}

/* Polls and collects ready fds, quirks (b) and (c). */
static int pl_poll(asp_loop *loop, int64_t timeout_ns, asp__event *out, int max)
{
    poll_state *s = loop->be_data;
    int ready = pl_wait(s, timeout_ns);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    int k = 0;
    if (ready == 0 || s->n == 0)
        return 0;
    unsigned start = s->rot++ % (unsigned)s->n;
    for (int i = 0; i < s->n && k < max; i++) {
        struct pollfd *p = &s->pfd[(start + (unsigned)i) % (unsigned)s->n];
        if (!p->revents)
            continue;
        out[k].fd = p->fd;
        out[k].mask =
            ((p->revents & (POLLIN | POLLPRI)) ? ASP__EV_READ : 0) |
            ((p->revents & POLLOUT) ? ASP__EV_WRITE : 0) |
            ((p->revents & (POLLERR | POLLHUP | POLLNVAL)) ? ASP__EV_ERR : 0);
        k++;
    }
    return k;
}

/* No single fd, quirk (e). */
static int pl_fd(const asp_loop *loop)
{
    (void)loop;
    return -ENOTSUP;
}

/* The pollfd array itself, for a host loop to poll, quirk (e). */
static int pl_pollfds(const asp_loop *loop, struct pollfd *fds, int nfds)
{
    const poll_state *s = loop->be_data;
    for (int i = 0; i < s->n && i < nfds; i++)
        fds[i] = (struct pollfd){
            .fd = s->pfd[i].fd, .events = s->pfd[i].events, .revents = 0};
    return s->n;
}

const asp__backend_ops asp__backend_poll = {
    .name = "poll",
    .id = ASP_BACKEND_POLL,
    .init = pl_init,
    .destroy = pl_destroy,
    .set = pl_set,
    .poll = pl_poll,
    .fd = pl_fd,
    .pollfds = pl_pollfds,
};
