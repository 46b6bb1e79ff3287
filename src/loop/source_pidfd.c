/*
 * source_pidfd.c - the pidfd child-exit source (Linux >= 5.4).
 *
 * Each child comes with a pidfd (clone(CLONE_PIDFD), or pidfd_open on
 * kernels before 5.2's flag); it becomes readable when that child exits,
 * so the watch is one fd watcher per child and nothing process-wide: no
 * signal handler, no shared state between loops. The watcher does not
 * keep the loop alive (the owner holds its own reference while it wants
 * the exit).
 */
#include "source.h"

/* The pidfd is readable: this child exited. */
static void pidfd_cb(asp_io *w, int events, void *data)
{
    asp__child *c = data;
    (void)w;
    (void)events;
    c->cb(c);
}

/* pidfds work on this kernel. */
static int pidfd_usable(int be)
{
    (void)be;
    int r = asp__pidfd_supported();
    return r < 0 ? r : (r ? 0 : -ENOTSUP);
}

/* Watches the child's pidfd. */
static int pidfd_add(asp_loop *loop, asp__child *c)
{
    if (c->pidfd < 0)
        return -EINVAL;
    asp_io_init(loop, &c->io, c->pidfd, pidfd_cb, c);
    asp__io_known(&c->io);
    asp_io_unref(&c->io);
    return asp_io_start(&c->io, ASP_READ);
}

/* Stops watching the pidfd (its owner closes it). */
static void pidfd_del(asp_loop *loop, asp__child *c)
{
    (void)loop;
    asp_io_stop(&c->io);
}

/* Nothing per loop. */
static void pidfd_close(asp_loop *loop)
{
    (void)loop;
}

const asp__source_ops asp__source_pidfd = {
    .name = "pidfd",
    .id = ASP_SOURCE_PIDFD,
    .usable = pidfd_usable,
    .close = pidfd_close,
    .add = pidfd_add,
    .del = pidfd_del,
};
