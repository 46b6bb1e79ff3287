/*
 * source_signal.c - the two signal-based child-exit sources.
 *
 *  signalfd  SIGCHLD, blocked in every thread, is read from a signalfd;
 *            the reader fans it out through the hub (hub.c) to every loop,
 *            since whichever loop reads a SIGCHLD consumes it for all.
 *  selfpipe  the hub's SIGCHLD handler posts every registered loop's
 *            notifier.
 *
 * Either way a notification only says "some child changed state": the
 * loop scans its watched children and each owner checks its own by pid,
 * so one SIGCHLD standing for many exits finds them all.
 *
 * Fds per loop (opened at the first watch, not at loop creation): the
 * notifier (an eventfd on Linux, a pipe elsewhere) and, for signalfd, the
 * signalfd itself.
 */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#ifdef ASP_HAVE_SIGNALFD
#include <sys/signalfd.h>
#endif

/* While SIGCHLD is ignored the kernel reaps children itself and sends no
 * SIGCHLD, so a signalfd never hears of an exit: the children are polled
 * at this interval instead (their statuses are lost anyway). */
#define IGN_POLL_MS 20

typedef struct sig_state {
    asp__notifier note;
    asp_io note_io;
    struct asp__hub_slot *slot;
    int handler; /* selfpipe: a user of the SIGCHLD handler */
    int sigfd;   /* signalfd source, else -1 */
    asp_io sigfd_io;
    asp_timer ign_timer;
} sig_state;

/* The notifier fired: some SIGCHLD arrived. */
static void note_cb(asp_io *w, int events, void *data)
{
    asp_loop *loop = data;
    sig_state *st = loop->src_data;
    (void)w;
    (void)events;
    asp__notifier_drain(&st->note);
    asp__children_scan(loop);
}

/* Closes what open made; every field is -1/NULL or valid. */
static void sig_close(asp_loop *loop)
{
    sig_state *st = loop->src_data;
    if (!st)
        return;
    if (st->slot)
        asp__hub_leave(st->slot, st->handler);
    if (st->sigfd >= 0) {
        asp_io_stop(&st->sigfd_io);
        asp_timer_stop(&st->ign_timer);
        close(st->sigfd);
    }
    asp_io_stop(&st->note_io);
    asp__notifier_close(&st->note);
    asp__free(st);
    loop->src_data = NULL;
}

/* Opens the notifier and joins the hub. */
static int open_common(asp_loop *loop, int handler)
{
    sig_state *st = asp__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->sigfd = -1;
    st->handler = handler;
    loop->src_data = st;
    int r = asp__notifier_open(&st->note);
    if (r < 0) {
        st->note.rfd = st->note.wfd = -1;
        goto fail;
    }
    asp_io_init(loop, &st->note_io, st->note.rfd, note_cb, loop);
    asp__io_known(&st->note_io);
    asp_io_unref(&st->note_io);
    r = asp_io_start(&st->note_io, ASP_READ);
    if (r < 0)
        goto fail;
    r = asp__hub_join(&st->note, handler, &st->slot);
    if (r < 0)
        goto fail;
    return 0;
fail:
    sig_close(loop);
    return r;
}

static int sig_add(asp_loop *loop, asp__child *c);

/* The loop's children are checked by the scan; nothing per child. */
static void sig_del(asp_loop *loop, asp__child *c)
{
    (void)loop;
    (void)c;
}

/* Any system can run the self-pipe. */
static int selfpipe_usable(int be)
{
    (void)be;
    return 0;
}

/* The self-pipe: the hub's handler posts our notifier. */
static int selfpipe_open(asp_loop *loop)
{
    return open_common(loop, 1);
}

#ifdef ASP_HAVE_SIGNALFD
/* Whether SIGCHLD is blocked in the calling thread. */
static int sigchld_blocked(void)
{
    sigset_t cur;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
        return 0;
    return sigismember(&cur, SIGCHLD) == 1;
}

/* Whether the process ignores SIGCHLD (SIG_IGN, not SA_NOCLDWAIT alone:
 * with that the signal is still sent). */
static int sigchld_ignored(void)
{
    struct sigaction cur;
    return sigaction(SIGCHLD, NULL, &cur) == 0 &&
           !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN;
}

/* The signalfd is readable: consume, tell every loop, scan ours. */
static void sigfd_cb(asp_io *w, int events, void *data)
{
    asp_loop *loop = data;
    sig_state *st = loop->src_data;
    struct signalfd_siginfo si[16];
    (void)w;
    (void)events;
    while (read(st->sigfd, si, sizeof si) > 0)
        ;
    asp__hub_broadcast();
    asp__notifier_drain(&st->note);
    asp__children_scan(loop);
}

/* The SIG_IGN poll: scan while children are watched. */
static void ign_timer_cb(asp_timer *t, void *data)
{
    asp_loop *loop = data;
    asp__children_scan(loop);
    if (asp__list_empty(&loop->children))
        asp_timer_stop(t);
}

/* Opens the notifier, the signalfd and the SIG_IGN poll timer. */
static int signalfd_open(asp_loop *loop)
{
    int r = open_common(loop, 0);
    if (r < 0)
        return r;
    sig_state *st = loop->src_data;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    st->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (st->sigfd >= 0)
        st->sigfd = asp__fd_high(st->sigfd);
    if (st->sigfd < 0) {
        r = st->sigfd == -1 ? -errno : st->sigfd;
        st->sigfd = -1;
        sig_close(loop);
        return r;
    }
    asp_io_init(loop, &st->sigfd_io, st->sigfd, sigfd_cb, loop);
    asp__io_known(&st->sigfd_io);
    asp_io_unref(&st->sigfd_io);
    asp_timer_init(loop, &st->ign_timer, ign_timer_cb, loop);
    asp_timer_unref(&st->ign_timer);
    r = asp_io_start(&st->sigfd_io, ASP_READ);
    if (r < 0)
        sig_close(loop);
    return r;
}
#endif

/* signalfd needs the kernel's signalfd and SIGCHLD blocked here. */
static int signalfd_usable(int be)
{
    (void)be;
#ifdef ASP_HAVE_SIGNALFD
    return sigchld_blocked() ? 0 : -EINVAL;
#else
    return -ENOTSUP;
#endif
}

/* A child joined the scan. With signalfd, a process that ignores SIGCHLD
 * gets the poll timer: checked at every spawn, so a host that starts
 * ignoring SIGCHLD only after its children started is not covered
 * (documented with the sources in the header). */
static int sig_add(asp_loop *loop, asp__child *c)
{
    (void)c;
#ifdef ASP_HAVE_SIGNALFD
    sig_state *st = loop->src_data;
    if (st->sigfd >= 0 && !asp_timer_active(&st->ign_timer) &&
        sigchld_ignored())
        asp_timer_start(&st->ign_timer, IGN_POLL_MS, IGN_POLL_MS);
#else
    (void)loop;
#endif
    return 0;
}

const asp__source_ops asp__source_selfpipe = {
    .name = "selfpipe",
    .id = ASP_SOURCE_SELFPIPE,
    .usable = selfpipe_usable,
    .open = selfpipe_open,
    .close = sig_close,
    .add = sig_add,
    .del = sig_del,
};

const asp__source_ops asp__source_signalfd = {
    .name = "signalfd",
    .id = ASP_SOURCE_SIGNALFD,
    .usable = signalfd_usable,
#ifdef ASP_HAVE_SIGNALFD
    .open = signalfd_open,
#else
    .open = selfpipe_open, /* never used: usable() refuses */
#endif
    .close = sig_close,
    .add = sig_add,
    .del = sig_del,
};
