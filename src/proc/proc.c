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
 * its own process and the code that called it can still look at it.
 *
 * The loop knows nothing of processes: the module attaches its per-loop
 * state as a loop extension, whose teardown hook asp_loop_free calls.
 *
 * Group leaders (Linux). A process group's id is its leader's pid; while
 * the leader is unreaped, that number cannot be given to a new process,
 * so no unrelated group can take it. A leader that exits while its group
 * still has members (a grandchild in the background) is therefore seen
 * with waitid(WNOWAIT): its status is final and every wait completes at
 * the exit, but it stays a zombie of ours (phase EXITED) until the group
 * is empty, a group escalation is over, or the handle is freed. Elsewhere
 * the leader is reaped at once and group signals carry the small race the
 * kernel leaves.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef ASP_HAVE_PIDFD
#include <sys/syscall.h>
#endif

/* The key of the module's loop extension. */
static const char procs_key;

/* Releases p's memory; it must be out of the live list and its tree
 * out of the trees list. */
static void proc_destroy(asp_proc *p)
{
    asp__free(p);
}

/* Whether a freed handle's memory may go: the child reaped, its tree
 * released, no callback of it on the stack. */
static int proc_done(const asp_proc *p)
{
    return p->freed && p->phase == ASP__PP_REAPED &&
           p->tree == ASP__TREE_EMPTY && p->busy == 0;
}

/* Closes the pidfd (the watch was stopped first). */
static void proc_close_pidfd(asp_proc *p)
{
    if (p->watch.pidfd < 0)
        return;
    close(p->watch.pidfd);
    p->watch.pidfd = -1;
}

/* Kills and reaps (blocking) one detached child at loop teardown. In a
 * forked process the child is the parent's: it is only forgotten. */
static void reap_straggler(asp_proc *p, int forked)
{
    siginfo_t si;
    asp__child_unwatch(&p->watch);
    if (!forked) {
        if (p->phase == ASP__PP_RUNNING)
            (void)asp__proc_send(p, SIGKILL, 0);
        (void)asp__waitid(p->watch.pid, p->watch.pidfd, &si, WEXITED, NULL);
    }
    asp__list_del(&p->node);
    proc_close_pidfd(p);
    proc_destroy(p);
}

/* The loop is being freed: refuse while handles are open. */
static int procs_busy(asp__loop_ext *e)
{
    struct asp__procs *ps = asp__container_of(e, struct asp__procs, ext);
    return ps->nopen > 0;
}

static void handle_end(asp_proc *p);

/* In a forked process: the tree is the parent's; its cgroup (if any) is
 * let go of -- our fds of it closed, our memory freed -- untouched. */
static void forget_tree(asp_proc *p)
{
    if (p->tree == ASP__TREE_EMPTY)
        return;
    p->tree = ASP__TREE_EMPTY;
    asp__list_del(&p->tree_node);
    asp_timer_stop(&p->tree_timer);
    asp__cgroup_forget(&p->cg);
}

/* Loop teardown: the detached trees are killed and their cgroups
 * removed (a forked process only forgets them: they are the parent's);
 * then the stragglers are reaped and the state released. In a forked
 * process, handles may still be open (the loop was inherited with them):
 * each ends as asp_proc_free would end it, its child left alone; a
 * reaped one goes at once, an unreaped one with the stragglers. */
static void procs_teardown(asp__loop_ext *e, int forked)
{
    struct asp__procs *ps = asp__container_of(e, struct asp__procs, ext);
    asp__list *n;
    while (forked && (n = asp__list_first(&ps->handles)) != NULL) {
        asp_proc *p = asp__container_of(n, asp_proc, hnode);
        asp__proc_hold(p);
        handle_end(p);
        forget_tree(p);
        asp__proc_release(p);
    }
    while ((n = asp__list_first(&ps->trees)) != NULL) {
        asp_proc *p = asp__container_of(n, asp_proc, tree_node);
        asp__list_del(n);
        if (!forked) {
            p->tree = ASP__TREE_EMPTY;
            p->contain->release(p);
        } else {
            forget_tree(p);
        }
        if (p->phase == ASP__PP_REAPED && p->freed)
            proc_destroy(p);
    }
    while ((n = asp__list_first(&ps->live)) != NULL)
        reap_straggler(asp__container_of(n, asp_proc, node), forked);
    if (ps->tree_fd >= 0) {
        asp_io_stop(&ps->tree_io);
        close(ps->tree_fd);
    }
    if (ps->stack)
        munmap(ps->stack, ps->stack_size);
    asp__free(ps);
}

/* Gets the loop's module state, attaching it at need. */
int asp__procs_get(asp_loop *loop, struct asp__procs **out)
{
    asp__loop_ext *e = asp__loop_ext_find(loop, &procs_key);
    if (e) {
        *out = asp__container_of(e, struct asp__procs, ext);
        return 0;
    }
    struct asp__procs *ps = asp__calloc(1, sizeof *ps);
    if (!ps)
        return -ENOMEM;
    ps->loop = loop;
    ps->tree_fd = -1;
    asp__list_init(&ps->live);
    asp__list_init(&ps->trees);
    asp__list_init(&ps->handles);
    ps->ext.key = &procs_key;
    ps->ext.busy = procs_busy;
    ps->ext.teardown = procs_teardown;
    asp__loop_ext_add(loop, &ps->ext);
    *out = ps;
    return 0;
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
    if (proc_done(p)) {
        proc_destroy(p);
        return 1;
    }
    return 0;
}

/* Microseconds of a timeval. */
static int64_t tv_us(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000000 + (int64_t)tv.tv_usec;
}

/* Turns a waitid result (and the reap's usage) into a status; the tree
 * figures are kept as they are. */
static void status_from_siginfo(asp_status *st, const siginfo_t *si,
                                const struct rusage *ru)
{
    asp_tree_usage tree = st->tree;
    memset(st, 0, sizeof *st);
    st->tree = tree;
    st->usage.utime_us = tv_us(ru->ru_utime);
    st->usage.stime_us = tv_us(ru->ru_stime);
#ifdef __APPLE__
    st->usage.maxrss_kb = (int64_t)ru->ru_maxrss / 1024; /* bytes there */
#else
    st->usage.maxrss_kb = (int64_t)ru->ru_maxrss;
#endif
    st->usage.minflt = (int64_t)ru->ru_minflt;
    st->usage.majflt = (int64_t)ru->ru_majflt;
    st->usage.nvcsw = (int64_t)ru->ru_nvcsw;
    st->usage.nivcsw = (int64_t)ru->ru_nivcsw;
    if (si->si_code == CLD_EXITED) {
        st->kind = ASP_EXIT_CODE;
        st->code = si->si_status;
    } else {
        st->kind = ASP_EXIT_SIGNAL;
        st->signal = si->si_status;
        st->core = si->si_code == CLD_DUMPED;
    }
}

/* Whether the tree, not the child's exit, ends p's outputs and its
 * communicate: a cgroup tree still live. */
static int tree_counts(const asp_proc *p)
{
    return p->contain && p->contain->id == ASP_CONTAIN_CGROUP &&
           p->tree == ASP__TREE_LIVE;
}

/* Tells everything that waits for the exit, in order: the streams (their
 * eof grace), the waits, the escalation, communicate. */
static void tell_exit(asp_proc *p)
{
    asp__proc_hold(p);
    /* Under a cgroup the pipes' grace starts when the whole tree is gone
     * (asp__tree_empty): until then a member may still write. */
    for (int i = 1; i < 3; i++)
        if (p->stdio[i] && !tree_counts(p))
            asp__stream_child_exited(p->stdio[i]);
    if (!p->freed)
        asp__waits_complete(p);
    if (!p->freed)
        asp__stop_reaped(p);
    if (!p->freed)
        asp__comm_reaped(p);
    asp__proc_release(p);
}

/* The child is gone for good: out of the live list, pidfd closed. */
static void proc_gone(asp_proc *p)
{
    p->phase = ASP__PP_REAPED;
    asp__list_del(&p->node);
    proc_close_pidfd(p);
}

/* The tree is empty (the child has exited): its mechanism releases what
 * it holds (a cgroup's usage is read into the status, the cgroup
 * removed), and whatever waits for the tree learns: the outputs' grace
 * (cgroup), tree waits, communicate. A held group leader is reaped. */
static void tree_ended(asp_proc *p)
{
    int cgroup = tree_counts(p);
    p->tree = ASP__TREE_EMPTY;
    asp__list_del(&p->tree_node);
    asp_timer_stop(&p->tree_timer);
    p->contain->release(p);
    if (p->tree_ref) {
        p->tree_ref = 0;
        asp__loop_unref(p->loop);
    }
    asp__proc_hold(p);
    if (p->phase == ASP__PP_EXITED && p->stop.phase != ASP__STOP_GROUP)
        asp__proc_reap_held(p);
    for (int i = 1; i < 3 && cgroup && !p->freed; i++)
        if (p->stdio[i])
            asp__stream_child_exited(p->stdio[i]);
    if (!p->freed)
        asp__waits_tree_complete(p);
    if (!p->freed && p->phase != ASP__PP_RUNNING)
        asp__comm_reaped(p);
    asp__proc_release(p);
}

/* Records the final status and tells everyone who waits for it. held:
 * the child stays a zombie for now (phase EXITED). */
static void proc_exited(asp_proc *p, const asp_status *st, int held)
{
    p->status = *st;
    p->phase = ASP__PP_EXITED;
    /* The watch goes first: a stale event must not outlive the pid, which
     * the next spawn may reuse (and a zombie's pidfd stays readable). */
    asp__child_unwatch(&p->watch);
    if (!held)
        proc_gone(p);
    if (p->freed) {
        /* Detached: nobody is left to tell. */
        if (held)
            asp__proc_reap_held(p);
        else if (proc_done(p))
            proc_destroy(p);
        return;
    }
    asp__loop_unref(p->loop); /* the running child's reference */
    asp__proc_hold(p);
    tell_exit(p);
    /* The tree may be gone with the child (most of the time it is). */
    if (!p->freed && p->tree == ASP__TREE_LIVE && !p->contain->alive(p))
        tree_ended(p);
    else if (!p->freed && p->tree == ASP__TREE_LIVE)
        asp__tree_poll(p);
    asp__proc_release(p);
}

/* The tree was found empty. A child still seen running is part of the
 * tree, so gone too, though its own exit event may come later in this
 * iteration: its exit goes first (and may end the tree itself). */
void asp__tree_empty(asp_proc *p)
{
    if (p->tree == ASP__TREE_EMPTY)
        return;
    if (p->phase == ASP__PP_RUNNING) {
        asp__proc_hold(p);
        asp__proc_poll(p);
        int over = p->tree == ASP__TREE_EMPTY;
        if (asp__proc_release(p) || over)
            return;
    }
    tree_ended(p);
}

/* The poll for "empty" of a tree without an event (a process group, or
 * a cgroup whose watch could not be set): every 10 ms while a tree wait
 * is pending or the tree holds the loop. */
static void tree_timer_cb(asp_timer *t, void *data)
{
    asp_proc *p = data;
    if (!p->contain->alive(p))
        asp__tree_empty(p);
    else if (!asp__tree_poll_wanted(p))
        asp_timer_stop(t);
}

/* Starts the poll for "empty" where nothing else will tell (see
 * tree_timer_cb); a cgroup with its watch needs none. */
void asp__tree_poll(asp_proc *p)
{
    if (p->tree != ASP__TREE_LIVE || p->phase == ASP__PP_RUNNING ||
        asp_timer_active(&p->tree_timer) || !asp__tree_poll_wanted(p))
        return;
    asp_timer_start(&p->tree_timer, 10, 10);
}

/* Whether someone needs the poll: a cgroup without a watch, or a tree
 * wait. */
int asp__tree_poll_wanted(asp_proc *p)
{
    if (p->contain->id == ASP_CONTAIN_CGROUP)
        return p->cg.wd < 0;
    return asp__waits_tree_pending(p);
}

/* Reaps a held zombie (nothing to do for other phases). */
void asp__proc_reap_held(asp_proc *p)
{
    siginfo_t si;
    if (p->phase != ASP__PP_EXITED)
        return;
    (void)asp__waitid(p->watch.pid, p->watch.pidfd, &si, WEXITED, NULL);
    proc_gone(p);
    if (p->freed && p->busy == 0)
        proc_destroy(p);
}

#ifdef ASP_HAVE_LINUX
/* Whether /proc/<name>/stat is a live (not zombie) member of group pgid
 * other than the leader itself. */
static int live_member(const char *name, pid_t pgid)
{
    char path[64], buf[512], *end;
    int w = snprintf(path, sizeof path, "/proc/%s/stat", name);
    if (w < 0 || (size_t)w >= sizeof path)
        return 0;
    long pid = strtol(name, &end, 10);
    if (*end != '\0')
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* "pid (comm) S ppid pgrp ...": comm may hold spaces and parens. */
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ' || !rp[2] || rp[3] != ' ')
        return 0;
    char state = rp[2];
    (void)strtol(rp + 4, &end, 10); /* ppid */
    const char *at = end;
    long pgrp = strtol(at, &end, 10);
    if (end == at)
        return 0;
    return pgrp == (long)pgid && state != 'Z' && pid != (long)pgid;
}
#endif

/* Whether p's group has members other than p. Linux: a scan of /proc
 * (kill(-pgid, 0) succeeds on a zombie leader alone). */
int asp__group_alive(asp_proc *p)
{
    pid_t pgid = p->watch.pid;
#ifdef ASP_HAVE_LINUX
    DIR *d = opendir("/proc");
    if (d) {
        struct dirent *e;
        int alive = 0;
        while (!alive && (e = readdir(d)) != NULL)
            if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
                alive = live_member(e->d_name, pgid);
        closedir(d);
        return alive;
    }
#endif
    if (p->phase == ASP__PP_EXITED)
        return 1; /* cannot tell: assume members, keep the zombie */
    return kill(-pgid, 0) == 0 || errno == EPERM;
}

/* Whether an exited leader should be held (see the file comment). */
static int hold_leader(asp_proc *p)
{
#ifdef ASP_HAVE_LINUX
    return p->leader && !p->freed && asp__group_alive(p);
#else
    (void)p;
    return 0;
#endif
}

/* Checks, without blocking, whether p exited; reaps it if so (or peeks,
 * for a leader whose group lives on). */
void asp__proc_poll(asp_proc *p)
{
    siginfo_t si;
    struct rusage ru;
    asp_status st = p->status;
    if (p->phase != ASP__PP_RUNNING)
        return;
    int wnowait = p->leader ? WNOWAIT : 0;
    int r = asp__waitid(p->watch.pid, p->watch.pidfd, &si,
                        WEXITED | WNOHANG | wnowait, &ru);
    if (r < 0) {
        /* ECHILD: someone else reaped it (a waitpid(-1) in the host, or
         * SIGCHLD ignored). The child is gone; its status is lost. */
        st.kind = ASP_EXIT_UNKNOWN;
        st.usage.err = -ENODATA;
        proc_exited(p, &st, 0);
        return;
    }
    if (si.si_pid == 0)
        return; /* still running (a stop, a continue, or another child) */
    int held = wnowait && hold_leader(p);
    if (wnowait && !held)
        (void)asp__waitid(p->watch.pid, p->watch.pidfd, &si, WEXITED, &ru);
    status_from_siginfo(&st, &si, &ru);
    proc_exited(p, &st, held);
}

/* The loop says p may have exited. */
static void watch_cb(asp__child *c)
{
    asp__proc_poll(asp__container_of(c, asp_proc, watch));
}

/* Registers a freshly spawned child with its loop. A cgroup tree joins
 * the loop's trees and, like the running child, keeps the loop alive
 * while the handle is open. */
int asp__proc_register(asp_proc *p)
{
    struct asp__procs *ps = p->ps;
    p->watch.cb = watch_cb;
    asp_timer_init(p->loop, &p->tree_timer, tree_timer_cb, p);
    int r = asp__child_watch(p->loop, &p->watch);
    if (r < 0)
        return r;
    asp__list_push(&ps->live, &p->node);
    asp__list_push(&ps->handles, &p->hnode);
    ps->nopen++;
    asp__loop_ref(p->loop);
    if (p->contain->id == ASP_CONTAIN_CGROUP) {
        asp__list_push(&ps->trees, &p->tree_node);
        p->tree_ref = 1;
        asp__loop_ref(p->loop);
    }
    return 0;
}

/* Sends sig to the child or, with group, to the group it leads. */
int asp__proc_send(asp_proc *p, int sig, int group)
{
    if (group) {
        if (kill(-p->watch.pid, sig) < 0)
            return -errno;
        return 0;
    }
    if (p->phase != ASP__PP_RUNNING)
        return -ESRCH;
#ifdef ASP_HAVE_PIDFD
    if (p->watch.pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, p->watch.pidfd, sig, NULL, 0) < 0)
            return -errno;
        return 0;
    }
#endif
    /* Without a pidfd the pid is still ours: an unreaped child's pid
     * cannot be recycled. */
    if (kill(p->watch.pid, sig) < 0)
        return -errno;
    return 0;
}

/* Public: send a signal. */
int asp_proc_signal(asp_proc *p, int sig)
{
    if (!p || p->freed || sig < 0 || sig >= NSIG)
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
    return p ? p->watch.pid : -EINVAL;
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

/* The stream of fd i, or NULL (freed handles have none). */
static asp_stream *stdio_of(asp_proc *p, int i)
{
    return p && !p->freed ? p->stdio[i] : NULL;
}

/* Public: the streams. */
asp_stream *asp_proc_stdin(asp_proc *p)
{
    return stdio_of(p, 0);
}

asp_stream *asp_proc_stdout(asp_proc *p)
{
    return stdio_of(p, 1);
}

asp_stream *asp_proc_stderr(asp_proc *p)
{
    return stdio_of(p, 2);
}

/* The handle goes: a cgroup tree is killed (ASP_FREE_KILL) or left to
 * run detached, watched until empty and then removed by the loop; any
 * other tree is nobody's concern any more. */
static void free_tree(asp_proc *p, enum asp_free_how how)
{
    asp_timer_stop(&p->tree_timer);
    if (p->tree_ref) {
        p->tree_ref = 0;
        asp__loop_unref(p->loop);
    }
    if (p->contain->id != ASP_CONTAIN_CGROUP) {
        p->tree = ASP__TREE_EMPTY;
        return;
    }
    if (how == ASP_FREE_KILL && p->tree == ASP__TREE_LIVE)
        (void)p->contain->signal(p, SIGKILL);
}

/* Public: what contains p's tree. */
int asp_proc_containment(const asp_proc *p)
{
    return p ? (int)p->contain->id : -EINVAL;
}

/* Ends the user's handle (the caller holds p): everything pending
 * completes with -ECANCELED and the streams close. Nothing here signals,
 * waits for or reaps the child, nor touches its tree. */
static void handle_end(asp_proc *p)
{
    /* Marked first: a cancel callback below that calls back into p (free
     * again, wait, stop, communicate) is refused with -EINVAL instead of
     * counting the handle twice. */
    p->freed = 1;
    /* Everything pending learns next, while p's memory is still whole. */
    asp__comm_cancel(p);
    asp__waits_cancel(p);
    asp__stop_cancel(p);
    for (int i = 0; i < 3; i++)
        if (p->stdio[i]) {
            asp_stream *s = p->stdio[i];
            p->stdio[i] = NULL;
            asp__stream_destroy(s);
        }
    p->ps->nopen--;
    asp__list_del(&p->hnode);
}

/* Public: ends the handle; see the file comment. */
int asp_proc_free(asp_proc *p, enum asp_free_how how)
{
    if (!p || (unsigned)how >= ASP__FREE_COUNT || p->freed)
        return -EINVAL;
    asp__proc_hold(p);
    handle_end(p);
    free_tree(p, how);
    if (p->phase == ASP__PP_RUNNING) {
        if (how == ASP_FREE_KILL)
            (void)asp__proc_send(p, SIGKILL, 0);
        asp__loop_unref(p->loop); /* a detached child keeps nothing alive */
        /* It may have exited already: reap now if so. */
        asp__proc_poll(p);
    } else {
        asp__proc_reap_held(p); /* nothing will signal its group now */
    }
    asp__proc_release(p);
    return 0;
}
