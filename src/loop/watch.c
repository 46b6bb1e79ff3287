/*
 * watch.c - the child watch: "tell me when this child may have exited".
 *
 * A loop picks one child-exit source when it is created (source.h lists
 * the contract) and opens it at the first watch. Owners (the process
 * module) embed an asp__child, fill pid, pidfd and cb, and watch it; the
 * source calls cb when that child, or with the signal sources some child,
 * changed state. The owner then asks the kernel with asp__waitid(WNOHANG)
 * and reaps only its own child, by pid or pidfd: never waitpid(-1), which
 * would steal the host's children. A stopped or continued child is simply
 * found still running.
 */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef ASP_HAVE_PIDFD
#include <sys/syscall.h>
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
        /* Our own pidfd is not our child: ECHILD means P_PIDFD is known
         * (Linux >= 5.4); EINVAL means it is not. */
        if (asp__waitid(0, fd, &si, WEXITED | WNOHANG, NULL) == -ECHILD)
            ok = 1;
        close(fd);
    }
    atomic_store(&pidfd_state, ok ? 1 : 2);
    return ok;
#else
    return 0;
#endif
}

/* The sources, indexed by enum asp_child_source. */
static const asp__source_ops *const sources[ASP__SOURCE_COUNT] = {
    NULL,
    &asp__source_pidfd,
    &asp__source_signalfd,
    &asp__source_selfpipe,
    &asp__source_kqueue,
};

/* ASP_CHILD_SOURCE from the environment: the source, DEFAULT when unset,
 * -1 when it names none. */
static int env_source(void)
{
    static const char *const names[ASP__SOURCE_COUNT] = {
        NULL, "pidfd", "signalfd", "selfpipe", "kqueue"};
    const char *env = getenv("ASP_CHILD_SOURCE");
    if (!env || !*env)
        return ASP_SOURCE_DEFAULT;
    for (int i = 1; i < ASP__SOURCE_COUNT; i++)
        if (!strcasecmp(env, names[i]))
            return i;
    return -1;
}

/* The default order: kqueue on its backend, pidfd, signalfd (it checks
 * that SIGCHLD is blocked), the self-pipe. A failed pidfd probe (out of
 * fds) is an error, not a reason to fall back for the loop's lifetime. */
static int pick_default(int be)
{
    if (asp__source_kqueue.usable(be) == 0)
        return ASP_SOURCE_KQUEUE;
    int r = asp__source_pidfd.usable(be);
    if (r == 0)
        return ASP_SOURCE_PIDFD;
    if (r != -ENOTSUP)
        return r;
    if (asp__source_signalfd.usable(be) == 0)
        return ASP_SOURCE_SIGNALFD;
    return ASP_SOURCE_SELFPIPE;
}

/* Picks the loop's source; see enum asp_child_source. */
int asp__source_resolve(asp_loop *loop, enum asp_child_source req)
{
    int id = (int)req;
    if (id == ASP_SOURCE_DEFAULT)
        id = env_source();
    if (id < 0)
        return -EINVAL;
    if (id == ASP_SOURCE_DEFAULT)
        id = pick_default(loop->be->id);
    if (id < 0)
        return id;
    int r = sources[id]->usable(loop->be->id);
    if (r < 0)
        return r;
    loop->src = sources[id];
    return 0;
}

/* Opens the loop's source if it is not open yet. */
int asp__child_prepare(asp_loop *loop)
{
    if (loop->src_data || !loop->src->open)
        return 0;
    int r = loop->src->open(loop);
    return r < 0 ? r : 1;
}

/* Closes the source a failed spawn opened (no child is watched). */
void asp__child_unprepare(asp_loop *loop)
{
    if (loop->src_data && asp__list_empty(&loop->children))
        asp__source_close(loop);
}

/* Starts watching c. */
int asp__child_watch(asp_loop *loop, asp__child *c)
{
    int r = asp__child_prepare(loop);
    if (r < 0)
        return r;
    c->loop = loop;
    asp__list_push(&loop->children, &c->node);
    r = loop->src->add(loop, c);
    if (r < 0) {
        asp__list_del(&c->node);
        return r;
    }
    c->watched = 1;
    return 0;
}

/* Stops watching c. */
void asp__child_unwatch(asp__child *c)
{
    if (!c->watched)
        return;
    c->watched = 0;
    c->loop->src->del(c->loop, c);
    asp__list_del(&c->node);
}

/* Calls every watched child's cb. The children move to a private list
 * first and go back one by one before their cb, so a cb may unwatch any
 * child (it leaves whichever list it is on) and children watched during
 * the scan wait for the next notification. */
void asp__children_scan(asp_loop *loop)
{
    asp__list pending;
    asp__list_init(&pending);
    if (asp__list_empty(&loop->children))
        return;
    /* Splice the whole list onto pending. */
    pending.next = loop->children.next;
    pending.prev = loop->children.prev;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    asp__list_init(&loop->children);
    asp__list *n;
    while ((n = asp__list_first(&pending)) != NULL) {
        asp__list_del(n);
        asp__list_push(&loop->children, n);
        asp__child *c = asp__container_of(n, asp__child, node);
        c->cb(c);
    }
}

/* A kqueue EVFILT_PROC event: the child with that pid, if still
 * watched (a stale event for an unwatched pid is dropped). */
void asp__children_pid_event(asp_loop *loop, pid_t pid)
{
    for (asp__list *n = loop->children.next; n != &loop->children;
         n = n->next) {
        asp__child *c = asp__container_of(n, asp__child, node);
        if (c->pid == pid) {
            c->cb(c);
            return;
        }
    }
}

/* Closes the source (loop teardown; every child is unwatched by then). */
void asp__source_close(asp_loop *loop)
{
    loop->src->close(loop);
    loop->src_data = NULL;
}

/* The child-exit source in use. */
int asp_loop_child_source(const asp_loop *loop)
{
    return loop ? (int)loop->src->id : -EINVAL;
}

/* The child-exit source's name. */
const char *asp_loop_child_source_name(const asp_loop *loop)
{
    return loop ? loop->src->name : "none";
}
