/*
 * kit.h - the small internal toolkit every room of the library uses:
 * container_of, an intrusive doubly linked list, time conversions, the
 * reap call (waitid by pidfd or pid) and the range sentinels of the
 * public enums. Header-only (static inline) and free of state.
 */
#ifndef ASP_KIT_H
#define ASP_KIT_H

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#ifdef ASP_HAVE_LINUX
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <time.h>

/* The struct of type T whose member m is at pointer ptr. */
#define asp__container_of(ptr, T, m) \
    ((T *)(void *)(((char *)(ptr)) - offsetof(T, m)))

/* Sentinels for range checks of the public enums (one past the last). */
#define ASP__BACKEND_COUNT (ASP_BACKEND_POLL + 1)
#define ASP__SOURCE_COUNT (ASP_SOURCE_KQUEUE + 1)
#define ASP__RUN_COUNT (ASP_RUN_NOWAIT + 1)
#define ASP__STDIO_COUNT (ASP_STDIO_PTY + 1)
#define ASP__ENV_COUNT (ASP_ENV_OVERRIDE + 1)
#define ASP__FREE_COUNT (ASP_FREE_KILL + 1)
#define ASP__CONTAIN_COUNT (ASP_CONTAIN_PGROUP + 1)

/* ------------------------------------------------------------ lists */

/* An intrusive circular doubly linked list: a head is a node linked to
 * itself; every member embeds a node. Empty heads and unlinked nodes point
 * to themselves, so unlinking twice is harmless. */
typedef struct asp__list {
    struct asp__list *next, *prev;
} asp__list;

/* Makes h an empty list (or n an unlinked node). */
static inline void asp__list_init(asp__list *h)
{
    h->next = h->prev = h;
}

/* Whether h has no member (or n is not linked). */
static inline int asp__list_empty(const asp__list *h)
{
    return h->next == h;
}

/* Links n at the tail of h. */
static inline void asp__list_push(asp__list *h, asp__list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Unlinks n (a no-op for an unlinked node). */
static inline void asp__list_del(asp__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* The first member of h, or NULL when it is empty. */
static inline asp__list *asp__list_first(const asp__list *h)
{
    return h->next == h ? NULL : h->next;
}

/* ------------------------------------------------------------- time */

#define ASP__NS_PER_MS UINT64_C(1000000)

/* Milliseconds (>= 0) to nanoseconds, saturating at a quarter of the
 * range so that adding two of them to a clock never wraps. */
static inline uint64_t asp__ms_to_ns(int64_t ms)
{
    if (ms <= 0)
        return 0;
    if ((uint64_t)ms > UINT64_MAX / 4 / ASP__NS_PER_MS)
        return UINT64_MAX / 4;
    return (uint64_t)ms * ASP__NS_PER_MS;
}

/* Nanoseconds (>= 0) as a timespec. */
static inline struct timespec asp__ns_to_timespec(int64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

/* Nanoseconds (>= 0) to milliseconds rounded up (a waiter that rounds
 * down wakes early and spins), clamped to int. */
static inline int asp__ns_to_ms_up(int64_t ns)
{
    int64_t ms = (ns + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* ------------------------------------------------------------- reap */

#ifdef ASP_HAVE_PIDFD
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#endif

/* waitid() on one child: through its pidfd when there is one (it cannot
 * reach a recycled pid), else by pid. options as for waitid (WEXITED,
 * WNOHANG, WNOWAIT). With ru, a reap also fills the child's resource
 * usage (Linux: the waitid system call's fifth argument; elsewhere wait4,
 * whose status is turned into *si). Retries EINTR. Returns 0 (si->si_pid
 * 0: no state change yet) or -errno. */
static inline int asp__waitid(pid_t pid, int pidfd, siginfo_t *si, int options,
                              struct rusage *ru)
{
    int r;
    memset(si, 0, sizeof *si);
    if (ru)
        memset(ru, 0, sizeof *ru);
#ifndef ASP_HAVE_LINUX
    if (ru && !(options & WNOWAIT)) {
        int status = 0;
        pid_t got;
        do
            got = wait4(pid, &status, options & WNOHANG, ru);
        while (got < 0 && errno == EINTR);
        if (got <= 0)
            return got < 0 ? -errno : 0;
        si->si_pid = got;
        si->si_signo = SIGCHLD;
        if (WIFEXITED(status)) {
            si->si_code = CLD_EXITED;
            si->si_status = WEXITSTATUS(status);
        } else {
            si->si_code = WCOREDUMP(status) ? CLD_DUMPED : CLD_KILLED;
            si->si_status = WTERMSIG(status);
        }
        return 0;
    }
#endif
    do {
#ifdef ASP_HAVE_LINUX
        idtype_t which = P_PID;
        id_t id = (id_t)pid;
#ifdef ASP_HAVE_PIDFD
        if (pidfd >= 0) {
            which = (idtype_t)P_PIDFD;
            id = (id_t)pidfd;
        }
#endif
        r = (int)syscall(SYS_waitid, which, id, si, options, ru);
#else
        r = waitid(P_PID, (id_t)pid, si, options);
#endif
    } while (r < 0 && errno == EINTR);
#ifdef ASP_HAVE_PIDFD
    /* A host loop that polls the pidfd may have made it non-blocking
     * (libuv's uv_poll_init does): a blocking wait on it then fails with
     * EAGAIN while the child runs. The child is not reaped yet, so its
     * pid is still its own: wait by pid instead. */
    if (r < 0 && errno == EAGAIN && pidfd >= 0 && !(options & WNOHANG)) {
        do
            r = (int)syscall(SYS_waitid, P_PID, (id_t)pid, si, options, ru);
        while (r < 0 && errno == EINTR);
    }
#endif
    (void)pidfd;
    return r < 0 ? -errno : 0;
}

#endif
