/*
 * contain.c - whole-tree containment: how a child and everything it
 * starts are held together, as an ops table (as the loop's backends are).
 *
 *   none    the child alone (it may still lead a group by its flags:
 *           then it is reported, and signalled, as a process group)
 *   pgroup  the child leads a new process group
 *   cgroup  the child joins a fresh leaf cgroup before exec (cgroup.c)
 *
 * The process module asks a mechanism to prepare a spawn (before the
 * clone), to see it started, to signal the tree, whether the tree still
 * has members, and to release what it holds once the tree is empty.
 * Under cgroup the loop learns "the tree is empty" from cgroup.events
 * through one inotify notifier per loop (tree_io in struct asp__procs).
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------- process group */

/* The child leads a new group (setsid already does: a session leader
 * leads its group). */
static int pgroup_prepare(asp_proc *p, const asp_spawn_opts *o,
                          asp__child_ctx *c)
{
    (void)o;
    if (!c->setsid)
        c->pgid = 0;
    p->leader = 1;
    return 0;
}

/* Nothing to do after the clone. */
static void none_started(asp_proc *p, int ok)
{
    (void)p;
    (void)ok;
}

/* The group's id is the leader's pid, protected while needed (proc.c). */
static int pgroup_signal(asp_proc *p, int sig)
{
    if (kill(-p->watch.pid, sig) < 0)
        return -errno;
    return 0;
}

/* Nothing is held. */
static void none_release(asp_proc *p)
{
    (void)p;
}

/* No containment: preparing changes nothing. */
static int none_prepare(asp_proc *p, const asp_spawn_opts *o, asp__child_ctx *c)
{
    (void)p;
    (void)o;
    (void)c;
    return 0;
}

/* The tree is the child alone: signals go to it. */
static int none_signal(asp_proc *p, int sig)
{
    return asp__proc_send(p, sig, 0);
}

/* The tree is alive while the child runs. */
static int none_alive(asp_proc *p)
{
    return p->phase == ASP__PP_RUNNING;
}

static const asp__contain_ops none_ops = {
    .id = ASP_CONTAIN_NONE,
    .prepare = none_prepare,
    .started = none_started,
    .signal = none_signal,
    .alive = none_alive,
    .release = none_release,
};

static const asp__contain_ops pgroup_ops = {
    .id = ASP_CONTAIN_PGROUP,
    .prepare = pgroup_prepare,
    .started = none_started,
    .signal = pgroup_signal,
    .alive = asp__group_alive,
    .release = none_release,
};

/* ----------------------------------------------------------------- cgroup */

/* The loop's notifier: the tree of the leaf with watch descriptor wd
 * changed (wd -1: events were lost, check every tree). */
static void tree_changed(int wd, void *arg)
{
    struct asp__procs *ps = arg;
    asp__list *n = ps->trees.next;
    while (n != &ps->trees) {
        asp_proc *p = asp__container_of(n, asp_proc, tree_node);
        n = n->next; /* p may leave the list below */
        if (wd != -1 && p->cg.wd != wd)
            continue;
        if (asp__cgroup_populated(&p->cg) == 0)
            asp__tree_empty(p);
    }
}

/* The notifier is readable. */
static void tree_io_cb(asp_io *w, int events, void *data)
{
    (void)w;
    (void)events;
    asp__cgroup_notifier_read(asp_io_fd(w), tree_changed, data);
}

/* Opens the loop's notifier at the first cgroup spawn. */
static int tree_notifier(struct asp__procs *ps)
{
    if (ps->tree_fd >= 0)
        return 0;
    int fd = asp__cgroup_notifier_open();
    if (fd >= 0)
        fd = asp__fd_high(fd);
    if (fd < 0)
        return fd;
    ps->tree_fd = fd;
    asp_io_init(ps->loop, &ps->tree_io, fd, tree_io_cb, ps);
    asp_io_unref(&ps->tree_io);
    int r = asp_io_start(&ps->tree_io, ASP_READ);
    if (r < 0) {
        close(fd);
        ps->tree_fd = -1;
    }
    return r;
}

static void cgroup_release(asp_proc *p);

/* Makes the child's leaf; the child joins it before exec. */
static int cgroup_prepare(asp_proc *p, const asp_spawn_opts *o,
                          asp__child_ctx *c)
{
    int r = tree_notifier(p->ps);
    if (r < 0)
        return r;
    r = asp__cgroup_create(&p->cg, o->cgroup_parent);
    if (r < 0)
        return r;
    c->cgroup_fd = p->cg.procs_fd;
    return 0;
}

/* After the clone: the join fd goes; a started child's tree is watched
 * (a failed spawn's empty leaf is removed at once). */
static void cgroup_started(asp_proc *p, int ok)
{
    asp__cgroup_joined(&p->cg);
    if (!ok) {
        cgroup_release(p); /* kills whatever the child may have started */
        return;
    }
    if (asp__cgroup_watch(&p->cg, p->ps->tree_fd) < 0) {
        /* Without a watch the loop polls (tree_poll in proc.c). */
        p->cg.wd = -1;
    }
}

/* Every member of the cgroup, pid-reuse safe (cgroup.c). */
static int cgroup_signal(asp_proc *p, int sig)
{
    int r = asp__cgroup_signal(&p->cg, sig);
    return r < 0 ? r : 0;
}

/* Members left in the cgroup (zombies do not count). */
static int cgroup_alive(asp_proc *p)
{
    return p->cg.path && asp__cgroup_populated(&p->cg) != 0;
}

/* The tree is empty: its usage is read, the cgroup removed. A tree still
 * populated (the loop is being freed) is killed first. */
static void cgroup_release(asp_proc *p)
{
    if (!p->cg.path)
        return;
    asp__cgroup_usage u;
    if (asp__cgroup_stats(&p->cg, &u) == 0) {
        asp_tree_usage *t = &p->status.tree;
        t->cpu_err = u.cpu_status;
        t->cpu_us = (int64_t)u.usage_usec;
        t->user_us = (int64_t)u.user_usec;
        t->system_us = (int64_t)u.system_usec;
        t->memory_err = u.memory_status;
        t->memory_peak_kb = (int64_t)(u.memory_peak / 1024);
    }
    for (int i = 0; i < 200 && asp__cgroup_destroy(&p->cg) == -EBUSY; i++) {
        (void)asp__cgroup_signal(&p->cg, SIGKILL);
        usleep(5000);
    }
}

static const asp__contain_ops cgroup_ops = {
    .id = ASP_CONTAIN_CGROUP,
    .prepare = cgroup_prepare,
    .started = cgroup_started,
    .signal = cgroup_signal,
    .alive = cgroup_alive,
    .release = cgroup_release,
};

/* ------------------------------------------------------------- choosing */

/* Picks and prepares p's containment for a spawn with options o (before
 * the clone). AUTO falls back from cgroup to pgroup on any failure of
 * the cgroup; an explicit CGROUP reports it. A child that leads a group
 * by its flags is also signalled as a group. 0 or -errno. */
int asp__contain_prepare(asp_proc *p, const asp_spawn_opts *o,
                         asp__child_ctx *c)
{
    p->leader = c->setsid || c->pgid == 0; /* by its flags or a terminal */
    if (o->contain == ASP_CONTAIN_CGROUP || o->contain == ASP_CONTAIN_AUTO) {
        int r = cgroup_prepare(p, o, c);
        if (r == 0) {
            p->contain = &cgroup_ops;
            return 0;
        }
        if (o->contain == ASP_CONTAIN_CGROUP)
            return r;
    }
    if (o->contain == ASP_CONTAIN_PGROUP || o->contain == ASP_CONTAIN_AUTO) {
        p->contain = &pgroup_ops;
        return pgroup_prepare(p, o, c);
    }
    p->contain = p->leader ? &pgroup_ops : &none_ops;
    return 0;
}
