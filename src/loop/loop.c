/*
 * loop.c - the loop core: creation, the run modes, liveness and the
 * cross-thread wakeup (embedding in a host loop: embed.c).
 *
 * One iteration: run due timers; poll the backend (not blocking when told
 * not to, when the loop is stopping or when nothing keeps it alive;
 * otherwise until the next timer); read the clock once; dispatch fd events;
 * run timers that became due meanwhile. Runs never nest: a blocking helper
 * called from a callback of the same loop gets -EBUSY instead of
 * re-entering callbacks that are still on the stack.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* The monotonic clock in nanoseconds. */
uint64_t asp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Takes a liveness reference for internal work. */
void asp__loop_ref(asp_loop *loop)
{
    loop->nref++;
}

/* Drops a reference taken with asp__loop_ref. */
void asp__loop_unref(asp_loop *loop)
{
    loop->nref--;
}

/* Attaches an extension (a room's per-loop state). */
void asp__loop_ext_add(asp_loop *loop, asp__loop_ext *e)
{
    e->next = loop->exts;
    loop->exts = e;
}

/* The extension attached under key, or NULL. */
asp__loop_ext *asp__loop_ext_find(const asp_loop *loop, const void *key)
{
    for (asp__loop_ext *e = loop->exts; e; e = e->next)
        if (e->key == key)
            return e;
    return NULL;
}

/* Whether this process inherited the loop through fork. getpid() is a
 * real system call (glibc no longer caches it), so this is asked only
 * where a run or a teardown starts, never per event. */
int asp__loop_forked(const asp_loop *loop)
{
    return loop->owner != getpid();
}

/* Finds the ops of a backend id among those built in; NULL if absent. */
static const asp__backend_ops *backend_by_id(int id)
{
    switch (id) {
#ifdef ASP_HAVE_EPOLL
    case ASP_BACKEND_EPOLL: return &asp__backend_epoll;
#endif
#ifdef ASP_HAVE_KQUEUE
    case ASP_BACKEND_KQUEUE: return &asp__backend_kqueue;
#endif
    case ASP_BACKEND_POLL: return &asp__backend_poll;
    default: return NULL;
    }
}

/* The build's default backend, unless ASP_BACKEND names another one. */
static int default_backend(void)
{
    const char *env = getenv("ASP_BACKEND");
    if (env && *env) {
        if (!strcasecmp(env, "epoll"))
            return ASP_BACKEND_EPOLL;
        if (!strcasecmp(env, "kqueue"))
            return ASP_BACKEND_KQUEUE;
        if (!strcasecmp(env, "poll"))
            return ASP_BACKEND_POLL;
        return -1;
    }
#if defined(ASP_HAVE_EPOLL)
    return ASP_BACKEND_EPOLL;
#elif defined(ASP_HAVE_KQUEUE)
    return ASP_BACKEND_KQUEUE;
#else
    return ASP_BACKEND_POLL;
#endif
}

/* Runs on the loop's thread after asp_loop_wakeup. */
static void wake_io_cb(asp_io *w, int events, void *data)
{
    asp_loop *loop = data;
    (void)w;
    (void)events;
    /* Drain first, then clear: a wakeup posted in between finds the flag
     * still set and posts nothing, but the callback below runs after it,
     * so it is not lost. The other order could eat its post and leave the
     * flag set for ever, silencing every later wakeup. */
    asp__notifier_drain(&loop->wake);
    atomic_store(&loop->wake_pending, 0);
    if (loop->wake_cb)
        loop->wake_cb(loop, loop->wake_data);
}

/* Creates a loop: backend, wakeup channel, child-source choice. */
int asp_loop_new(asp_loop **out, const asp_loop_opts *opts)
{
    asp_loop_opts o = opts ? *opts : (asp_loop_opts){0};
    int r;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if ((unsigned)o.backend >= ASP__BACKEND_COUNT ||
        (unsigned)o.child_source >= ASP__SOURCE_COUNT)
        return -EINVAL;

    int be_id = o.backend ? (int)o.backend : default_backend();
    if (be_id < 0)
        return -EINVAL;
    const asp__backend_ops *be = backend_by_id(be_id);
    if (!be)
        return -ENOTSUP;

    asp_loop *loop = asp__calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    loop->be = be;
    loop->owner = getpid();
    asp__list_init(&loop->children);
    r = asp__source_resolve(loop, o.child_source);
    if (r < 0) {
        asp__free(loop);
        return r;
    }
    loop->wake.rfd = loop->wake.wfd = -1;
    atomic_init(&loop->wake_pending, 0);
    loop->now_ns = asp__now_ns();

    r = be->init(loop);
    if (r < 0)
        goto fail;
    r = asp__notifier_open(&loop->wake);
    if (r < 0)
        goto fail_be;
    asp_io_init(loop, &loop->wake_io, loop->wake.rfd, wake_io_cb, loop);
    asp__io_known(&loop->wake_io);
    asp_io_unref(&loop->wake_io);
    r = asp_io_start(&loop->wake_io, ASP_READ);
    if (r < 0)
        goto fail_wake;
    *out = loop;
    return 0;

fail_wake:
    asp__notifier_close(&loop->wake);
fail_be:
    be->destroy(loop);
fail:
    asp__free(loop->fdtab);
    asp__free(loop);
    return r;
}

/* Frees the loop unless a room refuses (open process handles) or it is
 * running. In a process that inherited the loop through fork, the rooms
 * and the loop release their memory and close their own fds without any
 * system call that reaches state shared with the parent (no epoll_ctl on
 * the shared epoll instance, no signal, no wait). */
int asp_loop_free(asp_loop *loop)
{
    if (!loop)
        return -EINVAL;
    int forked = asp__loop_forked(loop);
    if (loop->running && !forked)
        return -EBUSY;
    for (asp__loop_ext *e = loop->exts; e && !forked; e = e->next)
        if (e->busy(e))
            return -EBUSY;
    loop->inherited = forked;
    asp__embed_teardown(loop);
    while (loop->exts) {
        asp__loop_ext *e = loop->exts;
        loop->exts = e->next;
        e->teardown(e, forked);
    }
    asp__source_close(loop);
    asp_io_stop(&loop->wake_io);
    asp__notifier_close(&loop->wake);
    /* Watchers and timers the user left started are stopped, so that they
     * read as inactive and a later stop on them does nothing. */
    while (loop->heap_min)
        asp_timer_stop(loop->heap_min);
    for (size_t fd = 0; fd < loop->fdcap; fd++)
        if (loop->fdtab[fd])
            asp_io_stop(loop->fdtab[fd]);
    loop->be->destroy(loop);
    asp__free(loop->fdtab);
    asp__free(loop);
    return 0;
}

/* Non-zero while referenced work is active. */
int asp_loop_alive(const asp_loop *loop)
{
    return loop && loop->nref > 0;
}

/* Re-reads the clock. */
void asp_loop_update_time(asp_loop *loop)
{
    if (loop)
        loop->now_ns = asp__now_ns();
}

/* Cached time in ms. */
uint64_t asp_loop_now(const asp_loop *loop)
{
    return loop ? loop->now_ns / 1000000u : 0;
}

/* One iteration; block says whether the poll may wait (asp_loop_stop and
 * a set run_until flag make it not wait). Timers run once,
 * before the poll; ONCE (once_timers) runs them after the poll too, so that
 * a blocking single iteration makes progress on the timer it waited for --
 * but only timers started before the iteration, so a timer re-armed with
 * timeout 0 still waits for the next iteration. */
static int loop_iterate(asp_loop *loop, int block, int once_timers)
{
    uint64_t seq_before = loop->timer_seq;
    asp__timers_run(loop, UINT64_MAX);

    int64_t timeout = 0;
    int stopping = loop->until ? *loop->until != 0 : atomic_load(&loop->stop);
    if (block && !stopping && loop->nref > 0)
        timeout = asp__timers_next(loop, loop->now_ns);

    int n = loop->be->poll(loop, timeout, loop->fired, ASP__MAX_EVENTS);
    loop->now_ns = asp__now_ns();
    if (n < 0)
        return n;
    loop->nfired = n;
    asp__io_dispatch(loop);
    if (once_timers)
        asp__timers_run(loop, seq_before);
    return 0;
}

/* Runs in the given mode; see the header. */
int asp_loop_run(asp_loop *loop, enum asp_run_mode mode)
{
    if (!loop || (unsigned)mode >= ASP__RUN_COUNT)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    if (asp__loop_forked(loop))
        return -ECHILD;
    loop->running = 1;
    loop->now_ns = asp__now_ns();

    int r = 0;
    if (mode == ASP_RUN_DEFAULT) {
        while (loop->nref > 0 && !atomic_load(&loop->stop)) {
            r = loop_iterate(loop, 1, 0);
            if (r < 0)
                break;
        }
    } else {
        r = loop_iterate(loop, mode == ASP_RUN_ONCE, mode == ASP_RUN_ONCE);
    }
    asp__embed_run_end(loop);
    loop->running = 0;
    atomic_store(&loop->stop, 0);
    if (r < 0)
        return r;
    return loop->nref > 0;
}

/* Runs until *done, for the blocking helpers. */
int asp_loop_run_until(asp_loop *loop, const int *done)
{
    if (!loop || !done)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    if (asp__loop_forked(loop))
        return -ECHILD;
    loop->running = 1;
    loop->until = done;
    loop->now_ns = asp__now_ns();
    int r = 0;
    while (!*done) {
        if (loop->nref == 0) {
            r = -EDEADLK;
            break;
        }
        r = loop_iterate(loop, 1, 0);
        if (r < 0)
            break;
    }
    asp__embed_run_end(loop);
    loop->running = 0;
    loop->until = NULL;
    return r;
}

/* The blocking-call helper (see internal.h). The checks come before
 * start, so a refused call leaves no operation behind. */
int asp__block(asp_loop *loop, int (*start)(void *ctx),
               void (*cancel)(void *ctx), void *ctx, const int *done)
{
    if (loop->running)
        return -EBUSY;
    if (asp__loop_forked(loop))
        return -ECHILD;
    int r = start(ctx);
    if (r < 0)
        return r;
    r = asp_loop_run_until(loop, done);
    if (!*done) {
        cancel(ctx);
        return r < 0 ? r : -EIO;
    }
    return 0;
}

/* Asks the current asp_loop_run to return after this iteration (a stop
 * made while no run is going applies to the next one). Blocking helpers
 * (asp_loop_run_until) ignore it: they wait for their own operation. */
void asp_loop_stop(asp_loop *loop)
{
    if (loop)
        atomic_store(&loop->stop, 1);
}

/* Thread-safe, async-signal-safe wakeup; merged while one is pending. */
int asp_loop_wakeup(asp_loop *loop)
{
    if (!loop)
        return -EINVAL;
    if (atomic_exchange(&loop->wake_pending, 1) == 0)
        asp__notifier_post(&loop->wake);
    return 0;
}

/* Sets the wakeup callback. */
int asp_loop_on_wakeup(asp_loop *loop, asp_wakeup_cb cb, void *data)
{
    if (!loop)
        return -EINVAL;
    loop->wake_cb = cb;
    loop->wake_data = data;
    return 0;
}

/* The backend in use. */
int asp_loop_backend(const asp_loop *loop)
{
    return loop ? loop->be->id : -EINVAL;
}

/* The backend's name. */
const char *asp_loop_backend_name(const asp_loop *loop)
{
    return loop ? loop->be->name : "none";
}
