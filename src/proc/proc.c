/*
 * proc.c - the process object: per-loop state, reaping, status, signals,
 * and freeing.
 *
 * Lifetime. A process is in its loop's live list from spawn until it is
 * reaped. The user's handle is separate from that: asp_proc_free ends the
 * handle (pending operations complete with -ECANCELED, streams close), but
 * a child still running stays in the live list, detached, until the loop
 * reaps it; only then is the memory released. Memory is also kept while a
 * callback of the process is on the stack (busy), so a callback may free
 * its own process and the code that called it can still look at the flags.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef ASP_HAVE_PIDFD
#include <sys/syscall.h>
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#endif

/* Gets the loop's module state, creating it and its source at need. */
int asp__procs_get(asp_loop *loop, struct asp__procs **out)
{
    if (loop->procs) {
        *out = loop->procs;
        return 0;
    }
    struct asp__procs *ps = asp__calloc(1, sizeof *ps);
    if (!ps)
        return -ENOMEM;
    ps->loop = loop;
    int r = asp__source_start(ps);
    if (r < 0) {
        asp__free(ps);
        return r;
    }
    loop->procs = ps;
    *out = ps;
    return 0;
}

/* Releases p's memory; it must be out of the live list. */
static void proc_destroy(asp_proc *p)
{
    asp__free(p);
}

/* Closes the pidfd (after stopping its watcher). */
static void proc_close_pidfd(asp_proc *p)
{
    if (p->pidfd < 0)
        return;
    asp_io_stop(&p->pidfd_io);
    close(p->pidfd);
    p->pidfd = -1;
}

/* Unlinks p from the live list. */
static void live_unlink(asp_proc *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->ps->live = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

/* Marks a callback of p as running. */
void asp__proc_hold(asp_proc *p)
{
    p->busy++;
}

/* Ends a hold; frees p if the user freed it and it is reaped. Returns 1 if
 * p is gone. */
int asp__proc_release(asp_proc *p)
{
    if (--p->busy > 0)
        return 0;
    if ((p->flags & ASP__P_FREED) && (p->flags & ASP__P_REAPED)) {
        proc_destroy(p);
        return 1;
    }
    return 0;
}

/* Turns a waitid result into a status. */
static void status_from_siginfo(asp_status *st, const siginfo_t *si)
{
    memset(st, 0, sizeof *st);
    if (si->si_code == CLD_EXITED) {
        st->kind = ASP_EXIT_CODE;
        st->code = si->si_status;
    } else {
        st->kind = ASP_EXIT_SIGNAL;
        st->signal = si->si_status;
        st->core = si->si_code == CLD_DUMPED;
    }
}

/* Records the final status and tells everyone who waits for it. */
static void proc_reaped(asp_proc *p, const asp_status *st)
{
    p->status = *st;
    p->flags |= ASP__P_REAPED;
    live_unlink(p);
    proc_close_pidfd(p);
#ifdef ASP_HAVE_KQUEUE
    /* Drop the exit watch now: a stale event must not outlive the pid,
     * which may be reused by the next spawn. */
    if (p->loop->source == ASP_SOURCE_KQUEUE)
        (void)p->loop->be->watch_pid(p->loop, p->pid, 0);
#endif
    if (p->flags & ASP__P_FREED) {
        /* Detached: nobody is left to tell. */
        if (p->busy == 0)
            proc_destroy(p);
        return;
    }
    asp__loop_unref(p->loop); /* the running child's reference */

    asp__proc_hold(p);
    for (int i = 1; i < 3; i++)
        if (p->stdio[i])
            asp__stream_child_exited(p->stdio[i]);
    if (!(p->flags & ASP__P_FREED))
        asp__waits_complete(p);
    if (!(p->flags & ASP__P_FREED))
        asp__stop_reaped(p);
    if (!(p->flags & ASP__P_FREED))
        asp__comm_reaped(p);
    asp__proc_release(p);
}

/* Checks, without blocking, whether p exited; reaps it if so. */
void asp__proc_poll(asp_proc *p)
{
    siginfo_t si;
    int r;

    if (p->flags & ASP__P_REAPED)
        return;
    memset(&si, 0, sizeof si);
    do {
#ifdef ASP_HAVE_PIDFD
        if (p->pidfd >= 0)
            r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si,
                       WEXITED | WNOHANG);
        else
#endif
            r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);

    asp_status st;
    if (r < 0) {
        /* ECHILD: someone else reaped it (a waitpid(-1) in the host, or
         * SIGCHLD ignored). The child is gone; its status is lost. */
        memset(&st, 0, sizeof st);
        st.kind = ASP_EXIT_UNKNOWN;
    } else if (si.si_pid == 0) {
        return; /* still running (a stop, a continue, or another child) */
    } else {
        status_from_siginfo(&st, &si);
    }
    proc_reaped(p, &st);
}

/* The pidfd became readable: the child exited. */
static void pidfd_cb(asp_io *w, int events)
{
    (void)events;
    asp__proc_poll(w->data);
}

/* Registers a freshly spawned child with its loop. */
int asp__proc_register(asp_proc *p)
{
    struct asp__procs *ps = p->ps;
    if (p->loop->source == ASP_SOURCE_PIDFD) {
        asp_io_init(p->loop, &p->pidfd_io, p->pidfd, pidfd_cb, p);
        asp_io_unref(&p->pidfd_io);
        int r = asp_io_start(&p->pidfd_io, ASP_READ);
        if (r < 0)
            return r;
    }
#ifdef ASP_HAVE_KQUEUE
    /* The exit arrives as an event even when the child exited before the
     * watch (the backend takes care of that), so reaping always waits for
     * the loop, as with every other source. */
    if (p->loop->source == ASP_SOURCE_KQUEUE) {
        int r = p->loop->be->watch_pid(p->loop, p->pid, 1);
        if (r < 0)
            return r;
    }
#endif
    p->next = ps->live;
    p->prev = NULL;
    if (ps->live)
        ps->live->prev = p;
    ps->live = p;
    ps->nopen++;
    asp__loop_ref(p->loop);
    asp__source_spawned(ps);
    return 0;
}

/* A kqueue EVFILT_PROC event for pid. */
void asp__procs_pid_event(asp_loop *loop, pid_t pid)
{
    if (!loop->procs)
        return;
    for (asp_proc *p = loop->procs->live; p; p = p->next)
        if (p->pid == pid) {
            asp__proc_poll(p);
            return;
        }
}

/* Sends sig to the child or, with group, to the group it leads. */
int asp__proc_send(asp_proc *p, int sig, int group)
{
    if (group) {
        if (kill(-p->pid, sig) < 0)
            return -errno;
        return 0;
    }
    if (p->flags & ASP__P_REAPED)
        return -ESRCH;
#ifdef ASP_HAVE_PIDFD
    if (p->pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0)
            return -errno;
        return 0;
    }
#endif
    /* Without a pidfd the pid is still ours: an unreaped child's pid
     * cannot be recycled. */
    if (kill(p->pid, sig) < 0)
        return -errno;
    return 0;
}

/* Public: send a signal. */
int asp_proc_signal(asp_proc *p, int sig)
{
    if (!p || (p->flags & ASP__P_FREED) || sig < 0 || sig >= NSIG)
        return -EINVAL;
    return asp__proc_send(p, sig, 0);
}

/* Public: SIGTERM. */
int asp_proc_terminate(asp_proc *p)
{
    return asp_proc_signal(p, SIGTERM);
}

/* Public: SIGKILL. */
int asp_proc_kill(asp_proc *p)
{
    return asp_proc_signal(p, SIGKILL);
}

/* Public: the pid. */
pid_t asp_proc_pid(const asp_proc *p)
{
    return p ? p->pid : -EINVAL;
}

/* Public: the loop. */
asp_loop *asp_proc_loop(const asp_proc *p)
{
    return p ? p->loop : NULL;
}

/* Public: user data. */
void asp_proc_set_data(asp_proc *p, void *data)
{
    if (p)
        p->data = data;
}

/* Public: user data. */
void *asp_proc_data(const asp_proc *p)
{
    return p ? p->data : NULL;
}

/* Public: the status so far. */
int asp_proc_status(const asp_proc *p, asp_status *st)
{
    if (!p || !st)
        return -EINVAL;
    *st = p->status;
    return 0;
}

/* Public: Python's returncode. */
int asp_status_returncode(const asp_status *st)
{
    if (!st)
        return INT32_MIN;
    if (st->kind == ASP_EXIT_CODE)
        return st->code;
    if (st->kind == ASP_EXIT_SIGNAL)
        return -st->signal;
    return INT32_MIN;
}

/* Public: the streams. */
asp_stream *asp_proc_stdin(asp_proc *p)
{
    return p && !(p->flags & ASP__P_FREED) ? p->stdio[0] : NULL;
}

asp_stream *asp_proc_stdout(asp_proc *p)
{
    return p && !(p->flags & ASP__P_FREED) ? p->stdio[1] : NULL;
}

asp_stream *asp_proc_stderr(asp_proc *p)
{
    return p && !(p->flags & ASP__P_FREED) ? p->stdio[2] : NULL;
}

/* Public: ends the handle; see the file comment. */
int asp_proc_free(asp_proc *p, int how)
{
    if (!p || how < ASP_FREE_DETACH || how > ASP_FREE_KILL ||
        (p->flags & ASP__P_FREED))
        return -EINVAL;

    asp__proc_hold(p);
    /* Marked first: a cancel callback below that calls back into p (free
     * again, wait, stop, communicate) is refused with -EINVAL instead of
     * counting the handle twice. */
    p->flags |= ASP__P_FREED;
    /* Everything pending learns next, while p's memory is still whole. */
    asp__comm_cancel(p);
    asp__waits_cancel(p);
    asp__stop_cancel(p);
    for (int i = 0; i < 3; i++)
        if (p->stdio[i]) {
            asp__stream_free(p->stdio[i]);
            p->stdio[i] = NULL;
        }
    p->ps->nopen--;
    if (!(p->flags & ASP__P_REAPED)) {
        if (how == ASP_FREE_KILL)
            (void)asp__proc_send(p, SIGKILL, 0);
        asp__loop_unref(p->loop); /* a detached child keeps nothing alive */
        /* It may have exited already: reap now if so. */
        asp__proc_poll(p);
    }
    asp__proc_release(p);
    return 0;
}

/* Kills and reaps (blocking) one detached child at loop teardown. */
static void reap_straggler(asp_proc *p)
{
    siginfo_t si;
    (void)asp__proc_send(p, SIGKILL, 0);
    for (;;) {
        int r;
        memset(&si, 0, sizeof si);
#ifdef ASP_HAVE_PIDFD
        if (p->pidfd >= 0)
            r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
        else
#endif
            r = waitid(P_PID, (id_t)p->pid, &si, WEXITED);
        if (r == 0 || errno != EINTR)
            break;
    }
    live_unlink(p);
    proc_close_pidfd(p);
    proc_destroy(p);
}

/* Loop teardown: refuse while handles are open, else clean up. */
int asp__procs_loop_free(asp_loop *loop)
{
    struct asp__procs *ps = loop->procs;
    if (!ps)
        return 0;
    if (ps->nopen > 0)
        return -EBUSY;
    while (ps->live)
        reap_straggler(ps->live);
    asp__source_stop(ps);
    if (ps->stack)
        munmap(ps->stack, ps->stack_size);
    asp__free(ps);
    loop->procs = NULL;
    return 0;
}
