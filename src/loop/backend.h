/*
 * backend.h - the private contract between the loop core and one readiness
 * backend (epoll, kqueue, poll).
 *
 * A backend keeps the kernel's interest set in line with what the core asks
 * (set), and turns one wait for events into the shared array of
 * (fd, mask) pairs the core dispatches from (poll). It never calls user
 * code and never looks at watchers: the core re-checks every event against
 * its own fd table before any callback, so a backend may report an event
 * for an fd that was removed meanwhile.
 */
#ifndef ASP_BACKEND_H
#define ASP_BACKEND_H

#include <stdint.h>
#include <sys/types.h>

struct asp_loop;
struct pollfd;

/* Bits of asp__event.mask. READ and WRITE equal ASP_READ and ASP_WRITE. */
#define ASP__EV_READ 0x1
#define ASP__EV_WRITE 0x2
#define ASP__EV_ERR 0x4  /* error or hang-up: wakes whatever was asked */
#define ASP__EV_PROC 0x8 /* kqueue EVFILT_PROC: child .pid exited */
/* In set()'s newmask only: the fd is one of the library's own (a pipe,
 * socket, pidfd, eventfd ...), known to be open and pollable, so the
 * backend may skip checking that. */
#define ASP__EV_KNOWN 0x10

typedef struct asp__event {
    int fd; /* -1 once invalidated by the core during dispatch, and
                  for ASP__EV_PROC */
    int mask;
    pid_t pid; /* ASP__EV_PROC only */
} asp__event;

typedef struct asp__backend_ops {
    const char *name;
    int id; /* enum asp_backend */

    /* Creates the backend state in loop->be_data. Returns 0 or -errno. */
    int (*init)(struct asp_loop *loop);

    /* Releases the state; the core has already removed every fd. */
    void (*destroy)(struct asp_loop *loop);

    /* Changes the interest in fd from oldmask to newmask (READ|WRITE bits):
     * oldmask 0 adds, newmask 0 deletes. Deleting happens before the user
     * closes the fd, so no stale registration outlives it.
     * Returns 0 or -errno. */
    int (*set)(struct asp_loop *loop, int fd, int oldmask, int newmask);

    /* Waits up to timeout_ns (-1: forever, 0: not at all) and stores at
     * most max events. Returns how many, 0 on timeout or EINTR, -errno on
     * failure. */
    int (*poll)(struct asp_loop *loop, int64_t timeout_ns, asp__event *ev,
                int max);

    /* The single pollable fd of the backend, or -ENOTSUP. */
    int (*fd)(const struct asp_loop *loop);

    /* What a host loop must poll for this backend to see its events, as
     * pollfd entries (events POLLIN and/or POLLOUT, revents 0): stores at
     * most nfds of them in fds and returns how many there are (fds may be
     * NULL when nfds is 0). epoll and kqueue: their own fd, POLLIN. */
    int (*pollfds)(const struct asp_loop *loop, struct pollfd *fds, int nfds);

    /* Non-zero while the next poll would return events that no fd shows
     * yet (kqueue's queued exits, quirk (g) there); NULL: never. A host
     * loop is then told to run asproc at once (asp_loop_timeout is 0). */
    int (*pending)(const struct asp_loop *loop);

    /* kqueue only (NULL elsewhere): starts (on != 0) or stops watching pid
     * for its exit; exits arrive as ASP__EV_PROC events, also for a
     * process that exited before its watch started. Returns 0 or
     * -errno. */
    int (*watch_pid)(struct asp_loop *loop, pid_t pid, int on);
} asp__backend_ops;

#ifdef ASP_HAVE_EPOLL
extern const asp__backend_ops asp__backend_epoll;
#endif
#ifdef ASP_HAVE_KQUEUE
extern const asp__backend_ops asp__backend_kqueue;
#endif
extern const asp__backend_ops asp__backend_poll;

#endif
