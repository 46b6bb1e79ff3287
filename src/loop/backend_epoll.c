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
 *  g) Registering costs two system calls per fd (EPOLL_CTL_ADD, then DEL
 *     before the close), which for short-lived fds -- a job's two pipes
 *     and its pidfd, gone within an iteration or two -- costs more than
 *     polling them. So a new fd starts "young": it is kept in a pollfd
 *     array and waited for with ppoll together with the epoll fd itself,
 *     and only an fd that stays watched for PROMOTE_AGE waits (or arrives
 *     while YOUNG_MAX are young) is registered with epoll. A young fd
 *     leaves without a system call. Measured on a build-tool load (jobs
 *     printing a few hundred bytes, `make bench`, jobs): 6 epoll_ctl
 *     calls per job gone, the parent's CPU per job down ~10%. A young fd
 *     closed while still watched (a caller's bug: stop comes first) is
 *     reported as an error event, as the poll backend does, where a
 *     registered one falls silent.
 *  h) The epoll fd is what an embedding host polls (asp_loop_fd): from
 *     then on every fd is registered at once, the young ones first.
 *  i) What epoll would refuse at once must still be refused at once
 *     (quirks (d), and EBADF for an fd that is not open): a new fd of the
 *     caller's is checked with one fstat, the library's own (pipes,
 *     sockets, pidfds: ASP__EV_KNOWN) are not. An fd epoll refuses at its
 *     promotion all the same (a character device without poll support,
 *     such as /dev/null) stays young for good: always ready, as the poll
 *     backend has it.
 */
#define _GNU_SOURCE
#include "internal.h"

#ifdef ASP_HAVE_EPOLL

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Quirk (g): how many waits an fd stays young, and how many may be. */
#define PROMOTE_AGE 16u
#define YOUNG_MAX 256

typedef struct ep_state {
    int epfd;
    struct epoll_event ev[ASP__MAX_EVENTS];
    /* The young fds, quirk (g): young[0] is the epoll fd itself. */
    struct pollfd young[YOUNG_MAX + 1];
    unsigned born[YOUNG_MAX + 1]; /* wait count when each came; STAY: never
                                     promoted (quirk (i)) */
    int nyoung;                   /* entries in use, young[0] included */
    int *slot;                    /* fd -> index in young, 0 when absent */
    size_t slotcap;
    unsigned waits;
    unsigned rot;
    int embedded; /* quirk (h) */
} ep_state;

#define STAY 0xffffffffu

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
    s->young[0] = (struct pollfd){.fd = s->epfd, .events = POLLIN};
    s->born[0] = STAY;
    s->nyoung = 1;
    s->slot = NULL;
    s->slotcap = 0;
    s->waits = s->rot = 0;
    s->embedded = 0;
    loop->be_data = s;
    return 0;
}

/* Closes the epoll instance. */
static void ep_destroy(asp_loop *loop)
{
    ep_state *s = loop->be_data;
    close(s->epfd);
    asp__free(s->slot);
    asp__free(s);
    loop->be_data = NULL;
}

/* The poll events of an interest mask. */
static short poll_events(int mask)
{
    return (short)(((mask & ASP__EV_READ) ? POLLIN : 0) |
                   ((mask & ASP__EV_WRITE) ? POLLOUT : 0));
}

/* The index of fd among the young, 0 when it is not young. */
static int young_index(const ep_state *s, int fd)
{
    return (size_t)fd < s->slotcap ? s->slot[fd] : 0;
}

/* Refuses what EPOLL_CTL_ADD would refuse at once, quirk (i): an fd that
 * is not open (-EBADF), a regular file or a directory (-EPERM). */
static int young_check(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ? -EPERM : 0;
}

/* Makes fd young with interest mask; -ENOSPC when no room (the caller
 * registers it with epoll instead), -EBADF, -EPERM, -ENOMEM. */
static int young_add(ep_state *s, int fd, int mask)
{
    if (s->embedded || s->nyoung > YOUNG_MAX)
        return -ENOSPC;
    if (!(mask & ASP__EV_KNOWN)) {
        int r = young_check(fd);
        if (r < 0)
            return r;
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
    int i = s->nyoung++;
    s->young[i] = (struct pollfd){.fd = fd, .events = poll_events(mask)};
    s->born[i] = s->waits;
    s->slot[fd] = i;
    return 0;
}

/* Forgets young entry i (the last one moves into its place). */
static void young_del(ep_state *s, int i)
{
    s->slot[s->young[i].fd] = 0;
    int last = --s->nyoung;
    if (i != last) {
        s->young[i] = s->young[last];
        s->born[i] = s->born[last];
        s->slot[s->young[i].fd] = i;
    }
}

/* One epoll_ctl change of interest with quirk (b) handled. */
static int ep_ctl(ep_state *s, int fd, int oldmask, int newmask)
{
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

/* Registers young entry i with epoll and forgets it as young; a refused
 * regular file stays young for good, quirk (i). 0 or -errno (it then
 * stays young, to be tried again). */
static int promote(ep_state *s, int i)
{
    int fd = s->young[i].fd;
    int mask = ((s->young[i].events & POLLIN) ? ASP__EV_READ : 0) |
               ((s->young[i].events & POLLOUT) ? ASP__EV_WRITE : 0);
    int r = ep_ctl(s, fd, 0, mask);
    if (r == -EPERM)
        s->born[i] = STAY;
    if (r == 0)
        young_del(s, i);
    return r;
}

/* Applies the change of interest: young fds change in place and leave
 * without a system call; new ones start young, quirk (g). */
static int ep_set(asp_loop *loop, int fd, int oldmask, int newmask)
{
    ep_state *s = loop->be_data;
    int i = young_index(s, fd);
    if (i > 0) {
        if (newmask == 0)
            young_del(s, i);
        else
            s->young[i].events = poll_events(newmask);
        return 0;
    }
    if (oldmask == 0 && newmask != 0) {
        int r = young_add(s, fd, newmask);
        if (r != -ENOSPC)
            return r;
    }
    return ep_ctl(s, fd, oldmask, newmask);
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
        long n = syscall(SYS_epoll_pwait2, s->epfd, s->ev, ASP__MAX_EVENTS, tp,
                         NULL, (size_t)0);
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

/* Translates n epoll events into out. */
static void ep_take(const ep_state *s, int n, asp__event *out)
{
    for (int i = 0; i < n; i++) {
        uint32_t e = s->ev[i].events;
        out[i].fd = s->ev[i].data.fd;
        out[i].mask = ((e & (EPOLLIN | EPOLLPRI)) ? ASP__EV_READ : 0) |
                      ((e & EPOLLOUT) ? ASP__EV_WRITE : 0) |
                      ((e & (EPOLLERR | EPOLLHUP)) ? ASP__EV_ERR : 0);
    }
}

/* ppoll over the young fds and the epoll fd, quirk (g); ppoll's
 * nanosecond timeout keeps timers precise, as epoll_pwait2 does. */
static int young_wait(ep_state *s, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    return ppoll(s->young, (nfds_t)s->nyoung, tp, NULL);
}

/* The ready young fds into out (at most max), from a rotating start so
 * that none is starved; then, if the epoll fd was ready, what epoll has.
 * Returns the count. */
static int young_take(ep_state *s, asp__event *out, int max)
{
    int k = 0, n = s->nyoung - 1;
    unsigned start = n > 0 ? s->rot++ % (unsigned)n : 0;
    for (int j = 0; j < n && k < max; j++) {
        struct pollfd *p = &s->young[1 + (start + (unsigned)j) % (unsigned)n];
        if (!p->revents)
            continue;
        out[k].fd = p->fd;
        out[k].mask =
            ((p->revents & (POLLIN | POLLPRI)) ? ASP__EV_READ : 0) |
            ((p->revents & POLLOUT) ? ASP__EV_WRITE : 0) |
            ((p->revents & (POLLERR | POLLHUP | POLLNVAL)) ? ASP__EV_ERR : 0);
        k++;
    }
    if (s->young[0].revents && k < max) {
        int m = epoll_wait(s->epfd, s->ev, max - k, 0);
        if (m > 0) {
            ep_take(s, m, out + k);
            k += m;
        }
    }
    return k;
}

/* Promotes the young fds that have waited PROMOTE_AGE times, quirk (g).
 * A failure leaves the fd young (it is still watched, by ppoll). */
static void promote_old(ep_state *s)
{
    for (int i = 1; i < s->nyoung;) {
        if (s->born[i] != STAY && s->waits - s->born[i] >= PROMOTE_AGE &&
            promote(s, i) == 0)
            continue; /* entry i is now another fd */
        i++;
    }
}

/* Waits and translates events into the shared array. */
static int ep_poll(asp_loop *loop, int64_t timeout_ns, asp__event *out, int max)
{
    ep_state *s = loop->be_data;
    s->waits++;
    if (s->nyoung > 1)
        promote_old(s);
    if (s->nyoung == 1) {
        int n = ep_wait(s, timeout_ns);
        if (n < 0)
            return errno == EINTR ? 0 : -errno;
        if (n > max)
            n = max;
        ep_take(s, n, out);
        return n;
    }
    int r = young_wait(s, timeout_ns);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    return r == 0 ? 0 : young_take(s, out, max);
}

/* The epoll fd itself is pollable: readable when events are pending. An
 * embedding host polls only it, so every young fd is registered now and
 * every later one at once, quirk (h). */
static int ep_fd(const asp_loop *loop)
{
    ep_state *s = loop->be_data;
    s->embedded = 1;
    for (int i = 1; i < s->nyoung;)
        if (s->born[i] == STAY || promote(s, i) != 0)
            i++;
    return s->epfd;
}

/* A host loop polls the epoll fd for reading, and the fds epoll refused
 * (quirk (i): they stay young for good) with their own events. */
static int ep_pollfds(const asp_loop *loop, struct pollfd *fds, int nfds)
{
    const ep_state *s = loop->be_data;
    int n = 0;
    if (nfds > 0)
        fds[0] = (struct pollfd){.fd = ep_fd(loop), .events = POLLIN};
    n++;
    for (int i = 1; i < s->nyoung; i++) {
        if (n < nfds)
            fds[n] = (struct pollfd){.fd = s->young[i].fd,
                                     .events = s->young[i].events};
        n++;
    }
    return n;
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
