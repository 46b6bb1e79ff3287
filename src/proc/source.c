/*
 * source.c - how a loop learns that its children exited.
 *
 *  pidfd     each child has a pidfd (from clone(CLONE_PIDFD)); it becomes
 *            readable when the child exits; the child is reaped with
 *            waitid(P_PIDFD), which cannot reach a recycled pid.
 *  signalfd  SIGCHLD (blocked in every thread) is read from a signalfd;
 *            the reader fans it out through the hub to every loop.
 *  selfpipe  a SIGCHLD handler posts every registered loop's notifier.
 *  kqueue    EVFILT_PROC/NOTE_EXIT through the kqueue backend.
 *
 * With the signal sources a notification only says "some child changed":
 * the loop then checks each of its own children by pid (never waitpid(-1),
 * which would steal the host's children), so one SIGCHLD standing for
 * many exits finds them all, and a stopped or continued child is ignored.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef ASP_HAVE_SIGNALFD
#include <sys/signalfd.h>
#endif
#ifdef ASP_HAVE_PIDFD
#include <sys/syscall.h>
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#endif

#ifdef ASP_HAVE_PIDFD
/* 0 unknown, 1 yes, 2 no. */
static atomic_int pidfd_state;
#endif

/* Whether pidfd_open and waitid(P_PIDFD) work on this kernel: 1 yes, 0
 * no (both remembered), or a negative errno when the probe itself could
 * not run (out of fds or memory): that answer is not remembered, or one
 * loop created at an fd limit would turn pidfds off for the process. */
int asp__pidfd_supported(void)
{
#ifdef ASP_HAVE_PIDFD
    int st = atomic_load(&pidfd_state);
    if (st)
        return st == 1;
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    int ok = 0;
    if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOMEM))
        return -errno;
    if (fd >= 0) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        /* Our own pidfd is not our child: ECHILD means P_PIDFD is known
         * (Linux >= 5.4); EINVAL means it is not. */
        if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 &&
            errno == ECHILD)
            ok = 1;
        close(fd);
    }
    atomic_store(&pidfd_state, ok ? 1 : 2);
    return ok;
#else
    return 0;
#endif
}

#ifdef ASP_HAVE_SIGNALFD
/* Whether SIGCHLD is blocked in the calling thread (only the signalfd
 * source cares, so builds without signalfd do not have it). */
static int sigchld_blocked(void)
{
    sigset_t cur;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
        return 0;
    return sigismember(&cur, SIGCHLD) == 1;
}
#endif

/* Picks the source for a new loop; see enum asp_child_source. */
int asp__source_resolve(int req, int backend_id, int *out)
{
    int r;
    if (req == ASP_SOURCE_DEFAULT) {
        const char *env = getenv("ASP_CHILD_SOURCE");
        if (env && *env) {
            if (!strcasecmp(env, "pidfd")) req = ASP_SOURCE_PIDFD;
            else if (!strcasecmp(env, "signalfd")) req = ASP_SOURCE_SIGNALFD;
            else if (!strcasecmp(env, "selfpipe")) req = ASP_SOURCE_SELFPIPE;
            else if (!strcasecmp(env, "kqueue")) req = ASP_SOURCE_KQUEUE;
            else return -EINVAL;
        }
    }
    if (req == ASP_SOURCE_DEFAULT) {
        if (backend_id == ASP_BACKEND_KQUEUE)
            req = ASP_SOURCE_KQUEUE;
        else if ((r = asp__pidfd_supported()) > 0)
            req = ASP_SOURCE_PIDFD;
        else if (r < 0)
            return r;
#ifdef ASP_HAVE_SIGNALFD
        else if (sigchld_blocked())
            req = ASP_SOURCE_SIGNALFD;
#endif
        else
            req = ASP_SOURCE_SELFPIPE;
    }
    switch (req) {
    case ASP_SOURCE_PIDFD:
        r = asp__pidfd_supported();
        if (r < 0)
            return r;
        if (!r)
            return -ENOTSUP;
        break;
    case ASP_SOURCE_SIGNALFD:
#ifdef ASP_HAVE_SIGNALFD
        if (!sigchld_blocked())
            return -EINVAL;
        break;
#else
        return -ENOTSUP;
#endif
    case ASP_SOURCE_SELFPIPE:
        break;
    case ASP_SOURCE_KQUEUE:
        if (backend_id != ASP_BACKEND_KQUEUE)
            return -ENOTSUP;
        break;
    default:
        return -EINVAL;
    }
    *out = req;
    return 0;
}

/* The name of a resolved source. */
const char *asp__source_name(int source)
{
    switch (source) {
    case ASP_SOURCE_PIDFD: return "pidfd";
    case ASP_SOURCE_SIGNALFD: return "signalfd";
    case ASP_SOURCE_SELFPIPE: return "selfpipe";
    case ASP_SOURCE_KQUEUE: return "kqueue";
    default: return "none";
    }
}

/* Checks every live child of the loop (signal sources). */
static void scan_children(struct asp__procs *ps)
{
    asp_proc *p = ps->live;
    while (p) {
        /* Reaping may free p (detached) and callbacks may free others;
         * hold the next one across the call. */
        asp_proc *next = p->next;
        if (next)
            asp__proc_hold(next);
        asp__proc_poll(p);
        if (next && asp__proc_release(next)) {
            /* next was freed by a callback: start over, the list changed. */
            p = ps->live;
            continue;
        }
        p = next;
    }
}

/* The notifier fired: some SIGCHLD arrived. */
static void note_cb(asp_io *w, int events)
{
    struct asp__procs *ps = w->data;
    (void)events;
    asp__notifier_drain(&ps->note);
    scan_children(ps);
}

#ifdef ASP_HAVE_SIGNALFD
/* The signalfd is readable: consume, tell every loop, scan ours. */
static void sigfd_cb(asp_io *w, int events)
{
    struct asp__procs *ps = w->data;
    struct signalfd_siginfo si[16];
    (void)events;
    while (read(ps->sigfd, si, sizeof si) > 0)
        ;
    asp__hub_broadcast();
    asp__notifier_drain(&ps->note);
    scan_children(ps);
}
#endif

#ifdef ASP_HAVE_SIGNALFD
/* While SIGCHLD is ignored the kernel reaps children itself and sends no
 * SIGCHLD at all, so a signalfd never hears of an exit. A host that does
 * that gets its children polled instead (statuses are lost anyway: they
 * come back "unknown"). The timer runs while children are live. */
#define ASP__IGN_POLL_MS 20

static void ign_timer_cb(asp_timer *t)
{
    struct asp__procs *ps = t->data;
    scan_children(ps);
    if (!ps->live)
        asp_timer_stop(&ps->ign_timer);
}

/* Whether the process ignores SIGCHLD (SIG_IGN, not SA_NOCLDWAIT alone:
 * with that the signal is still sent). */
static int sigchld_ignored(void)
{
    struct sigaction cur;
    return sigaction(SIGCHLD, NULL, &cur) == 0 &&
           !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN;
}
#endif

/* A child was linked into ps->live; starts the poll of ign_timer_cb when
 * the signalfd source cannot hear it exit. Checked at every spawn, so a
 * host that ignores SIGCHLD only after its children started is not
 * covered (documented with the sources in the header). */
void asp__source_spawned(struct asp__procs *ps)
{
#ifdef ASP_HAVE_SIGNALFD
    if (ps->loop->source == ASP_SOURCE_SIGNALFD &&
        !asp_timer_active(&ps->ign_timer) && sigchld_ignored())
        asp_timer_start(&ps->ign_timer, ASP__IGN_POLL_MS, ASP__IGN_POLL_MS);
#else
    (void)ps;
#endif
}

/* Sets up the loop's source; 0 or -errno with nothing left behind. */
int asp__source_start(struct asp__procs *ps)
{
    asp_loop *loop = ps->loop;
    int r;

    ps->sigfd = -1;
    ps->note.rfd = ps->note.wfd = -1;
    if (loop->source == ASP_SOURCE_PIDFD || loop->source == ASP_SOURCE_KQUEUE)
        return 0;

    r = asp__notifier_open(&ps->note);
    if (r < 0)
        return r;
    asp_io_init(loop, &ps->note_io, ps->note.rfd, note_cb, ps);
    asp_io_unref(&ps->note_io);
    r = asp_io_start(&ps->note_io, ASP_READ);
    if (r < 0)
        goto fail_note;

#ifdef ASP_HAVE_SIGNALFD
    if (loop->source == ASP_SOURCE_SIGNALFD) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        ps->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (ps->sigfd < 0) {
            r = -errno;
            goto fail_io;
        }
        ps->sigfd = asp__fd_high(ps->sigfd);
        if (ps->sigfd < 0) {
            r = ps->sigfd;
            goto fail_io;
        }
        asp_io_init(loop, &ps->sigfd_io, ps->sigfd, sigfd_cb, ps);
        asp_io_unref(&ps->sigfd_io);
        asp_timer_init(loop, &ps->ign_timer, ign_timer_cb, ps);
        asp_timer_unref(&ps->ign_timer);
        r = asp_io_start(&ps->sigfd_io, ASP_READ);
        if (r < 0)
            goto fail_sigfd;
    }
#endif
    r = asp__hub_join(&ps->note, loop->source == ASP_SOURCE_SELFPIPE,
                      &ps->slot);
    if (r < 0)
        goto fail_sigio;
    return 0;

fail_sigio:
#ifdef ASP_HAVE_SIGNALFD
    if (ps->sigfd >= 0)
        asp_io_stop(&ps->sigfd_io);
fail_sigfd:
    if (ps->sigfd >= 0)
        close(ps->sigfd);
    ps->sigfd = -1;
fail_io:
#endif
    asp_io_stop(&ps->note_io);
fail_note:
    asp__notifier_close(&ps->note);
    return r;
}

/* Tears the loop's source down. */
void asp__source_stop(struct asp__procs *ps)
{
    if (ps->slot) {
        asp__hub_leave(ps->slot, ps->loop->source == ASP_SOURCE_SELFPIPE);
        ps->slot = NULL;
    }
    if (ps->sigfd >= 0) {
        asp_io_stop(&ps->sigfd_io);
        asp_timer_stop(&ps->ign_timer);
        close(ps->sigfd);
        ps->sigfd = -1;
    }
    if (ps->note.rfd >= 0) {
        asp_io_stop(&ps->note_io);
        asp__notifier_close(&ps->note);
    }
}
