/*
 * kqueue_emu.c - a test-only user-space kqueue for Linux.
 *
 * It lets the kqueue backend (src/loop/backend_kqueue.c) and the EVFILT_PROC
 * child-exit source run the loop and process suites on a machine without
 * kqueue. It is linked into the test binary only, never into the library.
 *
 * What is modelled (FreeBSD's documented behaviour, kqueue(2)):
 *  - kqueue() gives a real fd (an epoll instance that mirrors the enabled
 *    knotes), so the descriptor is pollable for embedding and counts as an
 *    open fd in the leak checks.
 *  - Knotes keyed by (ident, filter). EV_ADD adds or updates, EV_DELETE
 *    removes (ENOENT if absent), EV_ENABLE/EV_DISABLE, EV_ONESHOT,
 *    EV_RECEIPT. An fd filter on a closed fd gives EBADF; EVFILT_PROC on a
 *    pid that does not exist gives ESRCH (a zombie is accepted and fires
 *    at once, as on FreeBSD).
 *  - Change errors: with room in the event list each failing change (and,
 *    with EV_RECEIPT, each change) yields an EV_ERROR entry with the errno
 *    in .data and kevent() returns without waiting; without room the call
 *    fails with that errno at the first failing change and later changes
 *    are not applied.
 *  - EVFILT_READ: level-triggered; .data = bytes readable (FIONREAD); EV_EOF
 *    once the writers of a pipe are gone or a socket peer shut down. For a
 *    regular file: readable while the offset is before the end, .data the
 *    bytes left.
 *  - EVFILT_WRITE: level-triggered; EV_EOF once the reader is gone.
 *  - A terminal's master (asproc's ASP_STDIO_PTY) is polled like a pipe:
 *    EV_EOF on both filters once no process holds the terminal (poll's
 *    POLLHUP), also while it still holds output (FreeBSD's pts reports
 *    EV_EOF at that point too); the backend reads on until read() ends,
 *    and never looks at .data, which is FIONREAD (0 for EVFILT_WRITE).
 *  - EVFILT_PROC with NOTE_EXIT: fires once when the process exits (not
 *    reaped: the status is read with WNOWAIT) with EV_EOF|EV_ONESHOT and
 *    the wait status in .data; the knote is dropped on delivery. Adding it
 *    for a zombie fires at once (FreeBSD), or with ASP_KQEMU_FLAVOR=macos
 *    in the environment fails with ESRCH (macOS). ASP_KQEMU_WATCH_DELAY_MS
 *    delays every EVFILT_PROC add, so that a child that exits at once is
 *    a zombie by then: the rare race becomes the common case.
 *  - close(fd) removes the knotes of fd, and the last close of a kqueue
 *    removes the kqueue; a kqueue duplicated with fcntl(F_DUPFD*), dup or
 *    dup2 is the same kqueue under another number; dup2 over a watched fd
 *    closes it first. The test binary is linked with -Wl,--wrap=close,
 *    --wrap=fcntl, --wrap=dup and --wrap=dup2, so those calls of the
 *    library and the tests pass through here. A kqueue is not inherited
 *    by fork() children (a pthread_atfork handler drops them there).
 *  - EINTR from a signal during the wait; timespec timeouts (ppoll).
 *
 * What is not modelled: other filters and flags (EV_CLEAR, EV_DISPATCH,
 * EVFILT_USER, NOTE_* other than NOTE_EXIT: refused with EINVAL, so the
 * backend cannot silently depend on them); kernel-side queuing order
 * (ready knotes are found by one ppoll() over their fds, scanned from a
 * rotating start); closes made inside libc (fclose, closedir) and dup3,
 * which the wrappers do not see (an fd that poll() reports as invalid is
 * dropped then); several threads waiting on one kqueue at once (asproc
 * never does that).
 */
#define _GNU_SOURCE
#include <sys/event.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define KN_DISABLED 0x1u
#define KN_ONESHOT 0x2u

typedef struct knote {
    uintptr_t ident;
    short filter;
    unsigned state; /* KN_* */
    void *udata;
    int pidfd;   /* EVFILT_PROC: the pidfd that becomes readable at exit */
    int regular; /* EVFILT_READ on a regular file */
} knote;

#define KQ_ALIASES 8

typedef struct emu_kq {
    int fd;                /* the epoll mirror, returned by kqueue() */
    int alias[KQ_ALIASES]; /* every fd number of it (dups), fd first */
    int nalias;
    knote *kn;
    int n, cap;
    unsigned rot;
    struct emu_kq *next;
} emu_kq;

static pthread_mutex_t emu_lock = PTHREAD_MUTEX_INITIALIZER;
static emu_kq *emu_head;
static pid_t emu_pid; /* the process the registry belongs to */
static int emu_macos; /* ASP_KQEMU_FLAVOR=macos: no watch of a zombie */
static long emu_watch_delay_ms; /* ASP_KQEMU_WATCH_DELAY_MS */
static pthread_once_t emu_once = PTHREAD_ONCE_INIT;

int __real_close(int fd);
int __wrap_close(int fd);
int __real_fcntl(int fd, int cmd, ...);
int __wrap_fcntl(int fd, int cmd, ...);
int __real_dup(int fd);
int __wrap_dup(int fd);
int __real_dup2(int fd, int fd2);
int __wrap_dup2(int fd, int fd2);

/* Frees one kqueue's state and its knotes' pidfds (not its fd). */
static void kq_free(emu_kq *q)
{
    for (int i = 0; i < q->n; i++)
        if (q->kn[i].pidfd >= 0)
            __real_close(q->kn[i].pidfd);
    free(q->kn);
    free(q);
}

/* fork() child: kqueues are not inherited, so drop every one. */
static void emu_atfork_child(void)
{
    emu_kq *q = emu_head;
    emu_head = NULL;
    emu_pid = getpid();
    while (q) {
        emu_kq *next = q->next;
        for (int i = 0; i < q->nalias; i++)
            __real_close(q->alias[i]);
        kq_free(q);
        q = next;
    }
    pthread_mutex_init(&emu_lock, NULL);
}

/* One-time setup: the owner pid and the fork handler. */
static void emu_init(void)
{
    const char *flavor = getenv("ASP_KQEMU_FLAVOR");
    emu_macos = flavor && strcmp(flavor, "macos") == 0;
    const char *delay = getenv("ASP_KQEMU_WATCH_DELAY_MS");
    emu_watch_delay_ms = delay ? strtol(delay, NULL, 10) : 0;
    emu_pid = getpid();
    pthread_atfork(NULL, NULL, emu_atfork_child);
}

/* The kqueue fd is a number of; NULL if none. Called with the lock held. */
static emu_kq *kq_find(int fd)
{
    for (emu_kq *q = emu_head; q; q = q->next)
        for (int i = 0; i < q->nalias; i++)
            if (q->alias[i] == fd)
                return q;
    return NULL;
}

/* The index of knote (ident, filter) in q, or -1. */
static int kn_find(const emu_kq *q, uintptr_t ident, short filter)
{
    for (int i = 0; i < q->n; i++)
        if (q->kn[i].ident == ident && q->kn[i].filter == filter)
            return i;
    return -1;
}

/* Brings the epoll mirror of one fd in line with its enabled knotes. */
static void mirror_fd(const emu_kq *q, int fd)
{
    uint32_t ev = 0;
    for (int i = 0; i < q->n; i++) {
        const knote *k = &q->kn[i];
        if (k->filter == EVFILT_PROC || (int)k->ident != fd ||
            (k->state & KN_DISABLED))
            continue;
        ev |= k->filter == EVFILT_READ ? (EPOLLIN | EPOLLRDHUP) : EPOLLOUT;
    }
    struct epoll_event e = {.events = ev, .data = {.fd = fd}};
    if (ev == 0) {
        (void)epoll_ctl(q->fd, EPOLL_CTL_DEL, fd, &e);
        return;
    }
    /* Regular files cannot be mirrored (EPERM): embedding misses them. */
    if (epoll_ctl(q->fd, EPOLL_CTL_MOD, fd, &e) < 0 && errno == ENOENT)
        (void)epoll_ctl(q->fd, EPOLL_CTL_ADD, fd, &e);
}

/* Removes knote i (closing its pidfd, updating the mirror). */
static void kn_remove(emu_kq *q, int i)
{
    knote k = q->kn[i];
    q->kn[i] = q->kn[--q->n];
    if (k.pidfd >= 0) {
        (void)epoll_ctl(q->fd, EPOLL_CTL_DEL, k.pidfd, NULL);
        __real_close(k.pidfd);
    } else {
        mirror_fd(q, (int)k.ident);
    }
}

/* Applies one change; 0 or an errno. Called with the lock held. */
static int apply_change(emu_kq *q, const struct kevent *c)
{
    const unsigned short known =
        EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE | EV_ONESHOT | EV_RECEIPT;
    if (c->flags & ~known)
        return EINVAL;
    if (c->filter != EVFILT_READ && c->filter != EVFILT_WRITE &&
        c->filter != EVFILT_PROC)
        return EINVAL;
    if (c->filter == EVFILT_PROC && (c->fflags & ~NOTE_EXIT))
        return EINVAL;
    if (c->filter != EVFILT_PROC && c->fflags)
        return EINVAL;

    struct stat st;
    if (c->filter != EVFILT_PROC &&
        (c->ident > (uintptr_t)INT32_MAX || fstat((int)c->ident, &st) < 0))
        return EBADF;

    int i = kn_find(q, c->ident, c->filter);
    if (c->flags & EV_DELETE) {
        if (i < 0)
            return ENOENT;
        kn_remove(q, i);
        return 0;
    }
    if (i < 0 && !(c->flags & EV_ADD))
        return ENOENT;
    if (i < 0) {
        knote k = {c->ident, c->filter, 0, c->udata, -1, 0};
        if (c->filter == EVFILT_PROC) {
            if (c->ident > (uintptr_t)INT32_MAX)
                return ESRCH;
            if (emu_watch_delay_ms > 0) {
                struct timespec d = {emu_watch_delay_ms / 1000,
                                     (emu_watch_delay_ms % 1000) * 1000000};
                nanosleep(&d, NULL);
            }
            k.pidfd = (int)syscall(SYS_pidfd_open, (pid_t)c->ident, 0);
            if (k.pidfd < 0)
                return errno;
            struct pollfd z = {.fd = k.pidfd, .events = POLLIN};
            if (emu_macos && poll(&z, 1, 0) == 1) {
                __real_close(k.pidfd);
                return ESRCH; /* macOS: an exited process cannot be watched */
            }
            struct epoll_event e = {.events = EPOLLIN, .data = {.fd = -1}};
            (void)epoll_ctl(q->fd, EPOLL_CTL_ADD, k.pidfd, &e);
        } else {
            k.regular = S_ISREG(st.st_mode);
        }
        if (q->n == q->cap) {
            int cap = q->cap ? q->cap * 2 : 16;
            knote *kn = realloc(q->kn, (size_t)cap * sizeof *kn);
            if (!kn) {
                if (k.pidfd >= 0)
                    __real_close(k.pidfd);
                return ENOMEM;
            }
            q->kn = kn;
            q->cap = cap;
        }
        i = q->n++;
        q->kn[i] = k;
    }
    knote *k = &q->kn[i];
    if (c->flags & EV_ADD) {
        k->udata = c->udata;
        k->state &= ~(unsigned)KN_DISABLED;
        if (c->flags & EV_ONESHOT)
            k->state |= KN_ONESHOT;
        else
            k->state &= ~(unsigned)KN_ONESHOT;
    }
    if (c->flags & EV_DISABLE)
        k->state |= KN_DISABLED;
    else if (c->flags & EV_ENABLE)
        k->state &= ~(unsigned)KN_DISABLED;
    if (k->filter != EVFILT_PROC)
        mirror_fd(q, (int)k->ident);
    return 0;
}

/* Creates a kqueue. */
int kqueue(void)
{
    pthread_once(&emu_once, emu_init);
    emu_kq *q = calloc(1, sizeof *q);
    if (!q) {
        errno = ENOMEM;
        return -1;
    }
    q->fd = epoll_create1(EPOLL_CLOEXEC);
    if (q->fd < 0) {
        int e = errno;
        free(q);
        errno = e;
        return -1;
    }
    q->alias[0] = q->fd;
    q->nalias = 1;
    pthread_mutex_lock(&emu_lock);
    q->next = emu_head;
    emu_head = q;
    pthread_mutex_unlock(&emu_lock);
    return q->fd;
}

/* Whether the registry is ours to update: a vfork/clone(CLONE_VM) child
 * shares our memory but its fd calls act on its own fd table. */
static int emu_owner(void)
{
    return emu_pid != 0 && getpid() == emu_pid;
}

/* fd is going away (close, or dup2 over it): its knotes go, and so does a
 * kqueue whose last number it was. Called with the lock held. */
static void forget_fd(int fd)
{
    for (emu_kq **pq = &emu_head; *pq;) {
        emu_kq *q = *pq;
        for (int i = 0; i < q->nalias; i++)
            if (q->alias[i] == fd) {
                q->alias[i] = q->alias[--q->nalias];
                break;
            }
        if (q->nalias == 0) {
            *pq = q->next;
            kq_free(q);
            continue;
        }
        if (q->fd == fd)
            q->fd = q->alias[0]; /* the mirror is reached by another number */
        for (int i = q->n - 1; i >= 0; i--)
            if (q->kn[i].filter != EVFILT_PROC &&
                q->kn[i].ident == (uintptr_t)fd)
                kn_remove(q, i);
        pq = &q->next;
    }
}

/* nfd became a copy of fd: if fd is a kqueue, nfd is too. Called with the
 * lock held. */
static void note_dup(int fd, int nfd)
{
    emu_kq *q = kq_find(fd);
    if (q && q->nalias < KQ_ALIASES)
        q->alias[q->nalias++] = nfd;
}

/* close() of the library and the tests, see the file comment. */
int __wrap_close(int fd)
{
    if (fd >= 0 && emu_owner()) {
        pthread_mutex_lock(&emu_lock);
        forget_fd(fd);
        pthread_mutex_unlock(&emu_lock);
    }
    return __real_close(fd);
}

/* fcntl(): F_DUPFD and F_DUPFD_CLOEXEC copy a kqueue. The argument is
 * passed on as glibc reads it, one pointer-sized value. */
int __wrap_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = __real_fcntl(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && emu_owner()) {
        pthread_mutex_lock(&emu_lock);
        note_dup(fd, r);
        pthread_mutex_unlock(&emu_lock);
    }
    return r;
}

/* dup(): copies a kqueue. */
int __wrap_dup(int fd)
{
    int r = __real_dup(fd);
    if (r >= 0 && emu_owner()) {
        pthread_mutex_lock(&emu_lock);
        note_dup(fd, r);
        pthread_mutex_unlock(&emu_lock);
    }
    return r;
}

/* dup2(): closes fd2 first (its knotes go), then copies a kqueue. */
int __wrap_dup2(int fd, int fd2)
{
    int r = __real_dup2(fd, fd2);
    if (r >= 0 && fd != fd2 && emu_owner()) {
        pthread_mutex_lock(&emu_lock);
        forget_fd(fd2);
        note_dup(fd, fd2);
        pthread_mutex_unlock(&emu_lock);
    }
    return r;
}

/* Bytes left before the end of a regular file. */
static int64_t regular_left(int fd)
{
    struct stat st;
    off_t cur = lseek(fd, 0, SEEK_CUR);
    if (cur < 0 || fstat(fd, &st) < 0)
        return 0;
    return st.st_size > cur ? (int64_t)(st.st_size - cur) : 0;
}

/* The FreeBSD-style wait status of an exited process (WNOWAIT). */
static int64_t proc_status(int pidfd)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si,
               WEXITED | WNOHANG | WNOWAIT) < 0 ||
        si.si_pid == 0)
        return 0; /* not our child, or reaped by someone else */
    if (si.si_code == CLD_EXITED)
        return (int64_t)(si.si_status & 0xff) << 8;
    return si.si_status | (si.si_code == CLD_DUMPED ? 0x80 : 0);
}

/* Turns the poll result of knote k into an event in *out; returns 1 if
 * it fires. Called with the lock held. */
static int kn_fire(knote *k, short revents, struct kevent *out)
{
    EV_SET(out, k->ident, k->filter, 0, 0, 0, k->udata);
    if (k->filter == EVFILT_PROC) {
        if (!(revents & (POLLIN | POLLHUP | POLLERR)))
            return 0;
        out->flags = EV_EOF | EV_ONESHOT;
        out->fflags = NOTE_EXIT;
        out->data = proc_status(k->pidfd);
        return 1;
    }
    int fd = (int)k->ident;
    if (k->filter == EVFILT_READ && k->regular) {
        out->data = regular_left(fd);
        return out->data > 0;
    }
    int avail = 0;
    if (k->filter == EVFILT_READ) {
        if (!(revents & (POLLIN | POLLPRI | POLLHUP | POLLRDHUP | POLLERR)))
            return 0;
        if (ioctl(fd, FIONREAD, &avail) == 0)
            out->data = avail;
        if (revents & (POLLHUP | POLLRDHUP))
            out->flags |= EV_EOF;
        return 1;
    }
    if (!(revents & (POLLOUT | POLLHUP | POLLERR)))
        return 0;
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size > 0 && ioctl(fd, FIONREAD, &avail) == 0 && avail <= size)
        out->data = size - avail;
    if (revents & (POLLHUP | POLLERR))
        out->flags |= EV_EOF;
    return 1;
}

/* One entry of the wait set: which knote a pollfd stands for. */
typedef struct wait_ref {
    uintptr_t ident;
    short filter;
} wait_ref;

/* Builds the pollfd set of q's enabled knotes. Regular files are not
 * polled (poll says they are always ready); *now is set when one of them
 * has data, so that the wait does not block. Returns the count or -1. */
static int build_set(const emu_kq *q, struct pollfd **pfd, wait_ref **ref,
                     int *now)
{
    *now = 0;
    *pfd = malloc((size_t)(q->n + 1) * sizeof **pfd);
    *ref = malloc((size_t)(q->n + 1) * sizeof **ref);
    if (!*pfd || !*ref) {
        free(*pfd);
        free(*ref);
        return -1;
    }
    int m = 0;
    for (int i = 0; i < q->n; i++) {
        const knote *k = &q->kn[i];
        if (k->state & KN_DISABLED)
            continue;
        if (k->filter == EVFILT_READ && k->regular) {
            if (regular_left((int)k->ident) > 0)
                *now = 1;
            continue;
        }
        (*pfd)[m].fd = k->filter == EVFILT_PROC ? k->pidfd : (int)k->ident;
        (*pfd)[m].events =
            k->filter == EVFILT_WRITE ? POLLOUT : (short)(POLLIN | POLLRDHUP);
        (*pfd)[m].revents = 0;
        (*ref)[m].ident = k->ident;
        (*ref)[m].filter = k->filter;
        m++;
    }
    return m;
}

/* Collects up to nevents fired knotes of q after a poll. Called with the
 * lock held. */
static int collect(emu_kq *q, const struct pollfd *pfd, const wait_ref *ref,
                   int m, struct kevent *ev, int nevents)
{
    int got = 0;
    unsigned start = q->n ? q->rot++ % (unsigned)q->n : 0;
    /* Regular files first: they are not in the poll set. */
    for (int j = 0; j < q->n && got < nevents; j++) {
        knote *k = &q->kn[(start + (unsigned)j) % (unsigned)q->n];
        if (!(k->state & KN_DISABLED) && k->filter == EVFILT_READ &&
            k->regular && kn_fire(k, 0, &ev[got]))
            got++;
    }
    for (int j = 0; j < m && got < nevents; j++) {
        int s = (int)((start + (unsigned)j) % (unsigned)m);
        if (!pfd[s].revents)
            continue;
        int i = kn_find(q, ref[s].ident, ref[s].filter);
        if (i < 0 || (q->kn[i].state & KN_DISABLED))
            continue; /* changed meanwhile */
        if (pfd[s].revents & POLLNVAL) {
            /* Closed where the wrapper could not see it: the kernel would
             * have dropped the knote at that close. */
            kn_remove(q, i);
            continue;
        }
        if (!kn_fire(&q->kn[i], pfd[s].revents, &ev[got]))
            continue;
        got++;
        if (q->kn[i].filter == EVFILT_PROC || (q->kn[i].state & KN_ONESHOT))
            kn_remove(q, i);
    }
    return got;
}

/* Nanoseconds on the monotonic clock. */
static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits for events (nothing locked during the wait itself). */
static int wait_events(int kq, struct kevent *ev, int nevents,
                       const struct timespec *timeout)
{
    int64_t deadline = -1;
    if (timeout)
        deadline =
            now_ns() + (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec;
    for (;;) {
        struct pollfd *pfd;
        wait_ref *ref;
        int now;
        pthread_mutex_lock(&emu_lock);
        emu_kq *q = kq_find(kq);
        int m = q ? build_set(q, &pfd, &ref, &now) : -1;
        pthread_mutex_unlock(&emu_lock);
        if (!q) {
            errno = EBADF;
            return -1;
        }
        if (m < 0) {
            errno = ENOMEM;
            return -1;
        }
        struct timespec left, *tp = NULL;
        if (now || deadline >= 0) {
            int64_t ns = now ? 0 : deadline - now_ns();
            if (ns < 0)
                ns = 0;
            left.tv_sec = (time_t)(ns / 1000000000);
            left.tv_nsec = (long)(ns % 1000000000);
            tp = &left;
        }
        int r = ppoll(pfd, (nfds_t)m, tp, NULL);
        int e = errno;
        int got = 0;
        if (r >= 0) {
            pthread_mutex_lock(&emu_lock);
            q = kq_find(kq);
            if (q)
                got = collect(q, pfd, ref, m, ev, nevents);
            pthread_mutex_unlock(&emu_lock);
        }
        free(pfd);
        free(ref);
        if (r < 0) {
            errno = e;
            return -1;
        }
        if (got > 0 || (tp && left.tv_sec == 0 && left.tv_nsec == 0) ||
            (deadline >= 0 && now_ns() >= deadline))
            return got;
        /* Only knotes that did not fire (dropped, regular file at its
         * end): wait again for the rest of the time. */
    }
}

/* See <sys/event.h>. */
int kevent(int kq, const struct kevent *changelist, int nchanges,
           struct kevent *eventlist, int nevents,
           const struct timespec *timeout)
{
    if (nchanges < 0 || nevents < 0 || (nchanges && !changelist) ||
        (nevents && !eventlist) ||
        (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
                     timeout->tv_nsec >= 1000000000))) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&emu_lock);
    emu_kq *q = kq_find(kq);
    if (!q) {
        pthread_mutex_unlock(&emu_lock);
        errno = EBADF;
        return -1;
    }
    int nerr = 0;
    for (int i = 0; i < nchanges; i++) {
        int err = apply_change(q, &changelist[i]);
        if (err == 0 && !(changelist[i].flags & EV_RECEIPT))
            continue;
        if (nerr == nevents) {
            /* No room to report it: the call fails here. */
            pthread_mutex_unlock(&emu_lock);
            if (err == 0)
                return nerr;
            errno = err;
            return -1;
        }
        eventlist[nerr] = changelist[i];
        eventlist[nerr].flags = EV_ERROR;
        eventlist[nerr].data = err;
        nerr++;
    }
    pthread_mutex_unlock(&emu_lock);
    if (nerr > 0 || nevents == 0)
        return nerr;
    return wait_events(kq, eventlist, nevents, timeout);
}
