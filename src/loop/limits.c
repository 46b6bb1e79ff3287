/*
 * limits.c - asp_raise_fd_limit: the opt-in raise of the soft open-file
 * limit.
 *
 * A process that holds thousands of children needs two or three fds per
 * child (its pipe ends and, with the pidfd source, a pidfd), and the soft
 * RLIMIT_NOFILE most systems start programs with (1024) stops it short.
 * The hard limit is usually far higher, and any process may raise its
 * soft limit up to it. Go does so for every program at start-up; a
 * library must not change a process-wide limit behind its caller's back,
 * so here it is a call the program makes.
 *
 * The soft limit is kept low by default for the sake of programs that use
 * select(2), which cannot see an fd at or over FD_SETSIZE (1024). Those
 * programs may be among the children, so (as Go does) children started by
 * asp_spawn get the soft limit of before the raise back: the parent
 * notes it here and the child side sets it before the exec, as long as
 * the parent's limit is still the one this call set (a program that has
 * set its own limit since gets it passed on unchanged).
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>

/* What the first raise found and set; read by asp__fd_limit_restore.
 * limit_raised is also read without the lock, so that a spawn in a
 * process that never raised its limit pays no system call for this. */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int limit_raised;
static rlim_t limit_before; /* the soft limit before the first raise */
static rlim_t limit_set;    /* the soft limit the raise set */

/* The soft limit as an int (INT_MAX when it is larger or infinite). */
static int as_int(rlim_t v)
{
    if (v == RLIM_INFINITY || v > (rlim_t)INT_MAX)
        return INT_MAX;
    return (int)v;
}

/* Sets the soft limit of rl to want; on a system that refuses an
 * infinite soft limit for open files (macOS), tries OPEN_MAX instead.
 * Returns 0 or -errno, with rl->rlim_cur what was set. */
static int set_soft(struct rlimit *rl, rlim_t want)
{
    struct rlimit n = *rl;
    n.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &n) == 0) {
        *rl = n;
        return 0;
    }
    int e = errno;
#ifdef OPEN_MAX
    if (want == RLIM_INFINITY && rl->rlim_cur < (rlim_t)OPEN_MAX) {
        n.rlim_cur = (rlim_t)OPEN_MAX;
        if (setrlimit(RLIMIT_NOFILE, &n) == 0) {
            *rl = n;
            return 0;
        }
    }
#endif
    return -e;
}

/* Raises the soft RLIMIT_NOFILE to the hard one; see the header. */
int asp_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= rl.rlim_max)
        return as_int(rl.rlim_cur); /* at the hard limit: nothing to do */
    rlim_t before = rl.rlim_cur;
    int e = set_soft(&rl, rl.rlim_max);
    if (e < 0)
        return e;
    pthread_mutex_lock(&limit_lock);
    if (!atomic_load(&limit_raised)) {
        limit_before = before;
        atomic_store(&limit_raised, 1);
    }
    limit_set = rl.rlim_cur;
    pthread_mutex_unlock(&limit_lock);
    return as_int(rl.rlim_cur);
}

/* Whether a child should get the soft limit of before the raise back: 1
 * with *rl the limits to give it when this process raised its soft limit
 * with asp_raise_fd_limit and it is still the raised one; else 0. */
int asp__fd_limit_restore(struct rlimit *rl)
{
    if (!atomic_load(&limit_raised) || getrlimit(RLIMIT_NOFILE, rl) != 0)
        return 0;
    pthread_mutex_lock(&limit_lock);
    int yes = rl->rlim_cur == limit_set && limit_before < rl->rlim_cur;
    if (yes)
        rl->rlim_cur = limit_before;
    pthread_mutex_unlock(&limit_lock);
    return yes;
}
