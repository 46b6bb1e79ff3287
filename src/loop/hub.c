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
 * under a spin lock; removal unlinks the slot, then waits until no handler
 * is inside the list (the in-flight counter, sequentially consistent on
 * both sides) before freeing it, so a handler never touches freed memory
 * and never writes to a closed (maybe reused) fd.
 *
 * Chaining. Our handler is installed with the flags of the handler it
 * replaces (SA_RESTART, SA_ONSTACK, SA_NODEFER, SA_NOCLDSTOP,
 * SA_NOCLDWAIT) and its mask, so a host that wanted EINTR still gets it;
 * over SIG_DFL or SIG_IGN (the host never saw SIGCHLD interrupt a call)
 * it uses SA_RESTART. Every SIGCHLD is chained, in whichever thread it
 * arrives, also while another thread is inside the host's handler. A
 * host handler that itself chains to ours (installed on top of ours, and
 * ours reinstalled on top of it later) would call us back in the same
 * thread: a per-thread flag stops that ring after one turn.
 *
 * Fork. A forked process inherits the handler and the slots, but not the
 * loops: their notifier fds may be closed there and their numbers reused
 * by files. So the hub remembers the pid it belongs to; in another
 * process the handler and broadcasts post nothing (they only chain), and
 * the first join there starts a fresh hub.
 */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#if ATOMIC_POINTER_LOCK_FREE != 2 || ATOMIC_INT_LOCK_FREE != 2
#error "the SIGCHLD handler needs lock-free atomics"
#endif

#if defined(__GNUC__)
/* Static TLS: reading it in a signal handler never allocates. */
#define HUB_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define HUB_TLS _Thread_local
#endif

typedef struct asp__hub_slot {
    asp__notifier note;
    int owner; /* the pid that joined */
    struct asp__hub_slot *_Atomic next;
} hub_slot;

static hub_slot *_Atomic hub_head;
static atomic_int hub_inflight;
static atomic_int hub_owner; /* the pid the slots belong to (0: none) */
static atomic_flag hub_lock = ATOMIC_FLAG_INIT;
static int handler_users;
static int handler_installed;
static struct sigaction prev_action;
static HUB_TLS int in_chain; /* this thread is calling the previous one */

/* Takes the spin lock (joins and leaves are rare and short). */
static void lock(void)
{
    while (atomic_flag_test_and_set(&hub_lock))
        sched_yield();
}

/* Releases the spin lock. */
static void unlock(void)
{
    atomic_flag_clear(&hub_lock);
}

/* Posts every registered notifier if they are this process's; safe in a
 * signal handler (getpid is async-signal-safe). */
static void hub_post_all(void)
{
    if (atomic_load(&hub_owner) != (int)getpid())
        return;
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
    if (is_handler(&prev_action) && !in_chain) {
        in_chain = 1;
        if (prev_action.sa_flags & SA_SIGINFO)
            prev_action.sa_sigaction(sig, info, uc);
        else
            prev_action.sa_handler(sig);
        in_chain = 0;
    }
    errno = saved;
}

/* Installs the handler, remembering the old one, with the old one's flags
 * (see the file comment). A host that had SIGCHLD ignored (or
 * SA_NOCLDWAIT) keeps its automatic reaping: statuses are "unknown". */
static int handler_install(void)
{
    struct sigaction sa, old;
    if (sigaction(SIGCHLD, NULL, &old) < 0)
        return -errno;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = hub_handler;
    if (is_handler(&old)) {
        sa.sa_mask = old.sa_mask;
        sa.sa_flags = old.sa_flags & (SA_RESTART | SA_ONSTACK | SA_NODEFER |
                                      SA_NOCLDSTOP | SA_NOCLDWAIT);
    } else {
        sigfillset(&sa.sa_mask);
        sa.sa_flags =
            SA_RESTART | (old.sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT));
        if (old.sa_handler == SIG_IGN)
            sa.sa_flags |= SA_NOCLDWAIT;
    }
    sa.sa_flags |= SA_SIGINFO;
    prev_action = old;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return -errno;
    handler_installed = 1;
    return 0;
}

/* Puts the old handler back if ours is still the one installed (a host
 * that installed its own on top keeps it). */
static void handler_uninstall(void)
{
    struct sigaction cur;
    handler_installed = 0;
    if (sigaction(SIGCHLD, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
        cur.sa_sigaction == hub_handler)
        sigaction(SIGCHLD, &prev_action, NULL);
}

/* In a process forked from the hub's owner: forget the inherited slots
 * (their loops are not this process's; each is freed when its inherited
 * loop is, see asp__hub_leave) and users, keeping the inherited handler
 * and what it chains to. Called with the lock held. */
static void reset_after_fork(int me)
{
    atomic_store(&hub_head, NULL);
    atomic_store(&hub_inflight, 0);
    handler_users = 0;
    atomic_store(&hub_owner, me);
}

/* Unlinks s from the list if it is there (lock held). */
static void unlink_slot(hub_slot *s)
{
    hub_slot *_Atomic *pp = &hub_head;
    for (hub_slot *c = atomic_load(pp); c; c = atomic_load(pp)) {
        if (c == s) {
            atomic_store(pp, atomic_load(&s->next));
            return;
        }
        pp = &c->next;
    }
}

/* Registers n; with_handler also counts as a user of the handler. */
int asp__hub_join(const asp__notifier *n, int with_handler, hub_slot **out)
{
    hub_slot *s = asp__malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    int me = (int)getpid();
    s->note = *n;
    s->owner = me;
    lock();
    if (atomic_load(&hub_owner) != me)
        reset_after_fork(me);
    if (with_handler && handler_users == 0 && !handler_installed) {
        int r = handler_install();
        if (r < 0) {
            unlock();
            asp__free(s);
            return r;
        }
    }
    if (with_handler)
        handler_users++;
    atomic_store(&s->next, atomic_load(&hub_head));
    atomic_store(&hub_head, s);
    unlock();
    *out = s;
    return 0;
}

/* Unregisters s and frees it once no handler can be looking at it. A slot
 * inherited through fork is only unlinked (if no reset forgot it yet) and
 * freed: the handler's users are the parent's business. */
void asp__hub_leave(hub_slot *s, int with_handler)
{
    int me = (int)getpid();
    lock();
    if (atomic_load(&hub_owner) != me)
        reset_after_fork(me);
    unlink_slot(s);
    if (s->owner == me && with_handler && --handler_users == 0 &&
        handler_installed)
        handler_uninstall();
    unlock();
    while (atomic_load(&hub_inflight) != 0)
        sched_yield();
    asp__free(s);
}

/* Posts every registered notifier (from a signalfd reader). */
void asp__hub_broadcast(void)
{
    hub_post_all();
}
