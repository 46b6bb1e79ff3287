/*
 * hub.c - the process-wide SIGCHLD fan-out for the signal-based sources.
 *
 * A SIGCHLD is one signal for the whole process, but every loop using the
 * signalfd or self-pipe source must hear it (any of them may own the child
 * that exited, and one SIGCHLD may stand for many exits). So each such loop
 * registers a notifier here, and:
 *  - the self-pipe handler posts every registered notifier, then chains to
 *    the handler that was installed before it, keeping errno;
 *  - a loop that reads SIGCHLD from its signalfd posts every notifier too.
 *
 * The handler walks the list without locks. Slots are pushed at the head
 * under a mutex; removal unlinks the slot, then waits until no handler is
 * inside the list (the in-flight counter, sequentially consistent on both
 * sides) before freeing it, so a handler never touches freed memory and
 * never writes to a closed (maybe reused) fd.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#if ATOMIC_POINTER_LOCK_FREE != 2 || ATOMIC_INT_LOCK_FREE != 2
#error "the SIGCHLD handler needs lock-free atomics"
#endif

typedef struct asp__hub_slot {
    asp__notifier note;
    struct asp__hub_slot *_Atomic next;
} hub_slot;

static hub_slot *_Atomic hub_head;
static atomic_int hub_inflight;
static atomic_int hub_chaining; /* a handler is calling the previous one */
static pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
static int handler_users;
static struct sigaction prev_action;

/* Posts every registered notifier; safe in a signal handler. */
static void hub_post_all(void)
{
    atomic_fetch_add(&hub_inflight, 1);
    for (hub_slot *s = atomic_load(&hub_head); s; s = atomic_load(&s->next))
        asp__notifier_post(&s->note);
    atomic_fetch_sub(&hub_inflight, 1);
}

/* Whether act is a real handler (not SIG_DFL or SIG_IGN). sa_handler and
 * sa_sigaction share storage, so the check holds with SA_SIGINFO too. */
static int is_handler(const struct sigaction *act)
{
    return act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
}

/* The self-pipe source's SIGCHLD handler. */
static void hub_handler(int sig, siginfo_t *info, void *uc)
{
    int saved = errno;
    hub_post_all();
    /* Chain: the host's handler must still run. A host handler that
     * itself chains to ours (it was installed on top of ours and we were
     * reinstalled on top of it later) would call us back: the flag stops
     * that ring after one turn. */
    if (is_handler(&prev_action) && !atomic_exchange(&hub_chaining, 1)) {
        if (prev_action.sa_flags & SA_SIGINFO)
            prev_action.sa_sigaction(sig, info, uc);
        else
            prev_action.sa_handler(sig);
        atomic_store(&hub_chaining, 0);
    }
    errno = saved;
}

/* Installs the handler for the first user, remembering the old one. A host
 * that had SIGCHLD ignored (or SA_NOCLDWAIT) keeps its automatic reaping:
 * our handler gets SA_NOCLDWAIT then, and exit statuses are "unknown". */
static int handler_install(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = hub_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGCHLD, NULL, &old) < 0)
        return -errno;
    if (old.sa_handler == SIG_IGN)
        sa.sa_flags |= SA_NOCLDWAIT;
    if (old.sa_flags & SA_NOCLDWAIT)
        sa.sa_flags |= SA_NOCLDWAIT;
    if (old.sa_flags & SA_NOCLDSTOP)
        sa.sa_flags |= SA_NOCLDSTOP;
    prev_action = old;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return -errno;
    return 0;
}

/* Puts the old handler back if ours is still the one installed (a host
 * that installed its own on top keeps it). */
static void handler_uninstall(void)
{
    struct sigaction cur;
    if (sigaction(SIGCHLD, NULL, &cur) == 0 &&
        (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == hub_handler)
        sigaction(SIGCHLD, &prev_action, NULL);
}

/* Registers n; with_handler also counts as a user of the handler. */
int asp__hub_join(const asp__notifier *n, int with_handler, hub_slot **out)
{
    hub_slot *s = asp__malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    s->note = *n;
    pthread_mutex_lock(&hub_lock);
    if (with_handler && handler_users == 0) {
        int r = handler_install();
        if (r < 0) {
            pthread_mutex_unlock(&hub_lock);
            asp__free(s);
            return r;
        }
    }
    if (with_handler)
        handler_users++;
    atomic_store(&s->next, atomic_load(&hub_head));
    atomic_store(&hub_head, s);
    pthread_mutex_unlock(&hub_lock);
    *out = s;
    return 0;
}

/* Unregisters s and frees it once no handler can be looking at it. */
void asp__hub_leave(hub_slot *s, int with_handler)
{
    pthread_mutex_lock(&hub_lock);
    hub_slot *_Atomic *pp = &hub_head;
    for (hub_slot *c = atomic_load(pp); c; c = atomic_load(pp)) {
        if (c == s) {
            atomic_store(pp, atomic_load(&s->next));
            break;
        }
        pp = &c->next;
    }
    if (with_handler && --handler_users == 0)
        handler_uninstall();
    pthread_mutex_unlock(&hub_lock);
    while (atomic_load(&hub_inflight) != 0)
        sched_yield();
    asp__free(s);
}

/* Posts every registered notifier (from a signalfd reader). */
void asp__hub_broadcast(void)
{
    hub_post_all();
}
