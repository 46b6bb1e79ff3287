/*
 * backend_epoll.c - the Linux backend.
 *
 * Quirks this file accounts for:
 *  a) epoll watches open file descriptions, not fd numbers: a closed fd
 *     that has a dup stays registered and keeps firing. The core therefore
 *     deletes interest (EPOLL_CTL_DEL) when a watcher stops, which callers
 *     must do before close.
 *  b) ADD on an fd already registered gives EEXIST (e.g. a dup'd fd
 *     registered through another number, or a stop whose DEL failed); we
 *     fall back to MOD, and from MOD's ENOENT to ADD.
 *  c) EPOLLHUP and EPOLLERR are always reported, even unasked, and a pipe
 *     whose writers are gone reports EPOLLHUP without EPOLLIN once it is
 *     empty: both are passed up as ASP__EV_ERR, which the core delivers as
 *     readiness of whatever the watcher asked for (EOF is readable).
 *  d) Regular files and directories cannot be registered (EPERM); the
 *     error goes back to the caller of asp_io_start.
 *  e) epoll_wait's timeout is in milliseconds; rounding would make every
 *     timer up to 1 ms late, so epoll_pwait2 (Linux 5.11, nanoseconds) is
 *     used when the kernel has it, else the timeout is rounded up.
 *  f) EINTR from the wait is not an error: the core just iterates again.
 */
#define _GNU_SOURCE
#include "internal.h"

#ifdef ASP_HAVE_EPOLL

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct ep_state {
    int epfd;
    struct epoll_event ev[ASP__MAX_EVENTS];
} ep_state;

/* 1 until epoll_pwait2 turned out to be missing (ENOSYS). */
static atomic_int have_pwait2 = 1;

/* Creates the epoll instance. */
static int ep_init(asp_loop *loop)
{
    ep_state *s = asp__malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    s->epfd = asp__fd_high(epoll_create1(EPOLL_CLOEXEC));
    if (s->epfd < 0) {
        int e = -errno;
        asp__free(s);
        return e;
    }
    loop->be_data = s;
    return 0;
}

/* Closes the epoll instance. */
static void ep_destroy(asp_loop *loop)
{
    ep_state *s = loop->be_data;
    close(s->epfd);
    asp__free(s);
    loop->be_data = NULL;
}

/* Applies the change of interest with quirk (b) handled. */
static int ep_set(asp_loop *loop, int fd, int oldmask, int newmask)
{
    ep_state *s = loop->be_data;
    struct epoll_event ev = {0};
    ev.events = ((newmask & ASP__EV_READ) ? EPOLLIN : 0) |
                ((newmask & ASP__EV_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = fd;

    if (newmask == 0) {
        if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, &ev) < 0)
            return -errno;
        return 0;
    }
    int op = oldmask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(s->epfd, op, fd, &ev) == 0)
        return 0;
    if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
    else if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD;
    else
        return -errno;
    if (epoll_ctl(s->epfd, op, fd, &ev) < 0)
        return -errno;
    return 0;
}

/* Waits with nanosecond precision where possible, quirk (e). */
static int ep_wait(ep_state *s, int64_t timeout_ns)
{
    if (atomic_load_explicit(&have_pwait2, memory_order_relaxed)) {
        struct timespec ts, *tp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
            tp = &ts;
        }
        long n = syscall(SYS_epoll_pwait2, s->epfd, s->ev, ASP__MAX_EVENTS,
                         tp, NULL, (size_t)0);
        if (n >= 0 || errno != ENOSYS)
            return (int)n;
        atomic_store(&have_pwait2, 0);
    }
    int ms = -1;
    if (timeout_ns >= 0) {
        int64_t m = (timeout_ns + 999999) / 1000000;
        ms = m > 0x7fffffff ? 0x7fffffff : (int)m;
    }
    return epoll_wait(s->epfd, s->ev, ASP__MAX_EVENTS, ms);
}

/* Waits and translates events into the shared array. */
static int ep_poll(asp_loop *loop, int64_t timeout_ns, asp__event *out,
                   int max)
{
    ep_state *s = loop->be_data;
    int n = ep_wait(s, timeout_ns);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (n > max)
        n = max;
    for (int i = 0; i < n; i++) {
        uint32_t e = s->ev[i].events;
        out[i].fd = s->ev[i].data.fd;
        out[i].mask = ((e & (EPOLLIN | EPOLLPRI)) ? ASP__EV_READ : 0) |
                      ((e & EPOLLOUT) ? ASP__EV_WRITE : 0) |
                      ((e & (EPOLLERR | EPOLLHUP)) ? ASP__EV_ERR : 0);
    }
    return n;
}

/* The epoll fd itself is pollable: readable when events are pending. */
static int ep_fd(const asp_loop *loop)
{
    const ep_state *s = loop->be_data;
    return s->epfd;
}

/* A host loop polls the epoll fd alone, for reading. */
static int ep_pollfds(const asp_loop *loop, struct pollfd *fds, int nfds)
{
    if (nfds > 0)
        fds[0] = (struct pollfd){.fd = ep_fd(loop), .events = POLLIN};
    return 1;
}

const asp__backend_ops asp__backend_epoll = {
    .name = "epoll",
    .id = ASP_BACKEND_EPOLL,
    .init = ep_init,
    .destroy = ep_destroy,
    .set = ep_set,
    .poll = ep_poll,
    .fd = ep_fd,
    .pollfds = ep_pollfds,
};

#endif
