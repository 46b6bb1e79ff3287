/*
 * source.h - the private contract between the child watch (watch.c) and
 * one child-exit source: pidfd, signalfd, self-pipe, kqueue EVFILT_PROC.
 *
 * A source turns "a child exited" into a callback of the loop: it calls
 * asp__child's cb for the one child (pidfd, kqueue), or every watched
 * child through asp__children_scan (the signal sources, which only learn
 * that some child changed state). It never reaps: the owner of the child
 * does, by pid, with asp__waitid. The core links every watched child into
 * loop->children before add() and unlinks it after del().
 */
#ifndef ASP_SOURCE_H
#define ASP_SOURCE_H

#include "internal.h"

typedef struct asp__source_ops {
    const char *name;
    enum asp_child_source id;

    /* Whether this source can serve a new loop of backend be now:
     * 0, -ENOTSUP (not built in or not supported by this kernel or
     * backend), -EINVAL (signalfd while SIGCHLD is not blocked), or
     * another -errno when the check itself failed. */
    int (*usable)(int be);

    /* Sets up the loop's state in loop->src_data at the first watch (so a
     * loop that never spawns costs no fd for it). 0 or -errno with
     * nothing left behind. NULL: nothing to set up. */
    int (*open)(asp_loop *loop);

    /* Releases what open made (loop teardown). */
    void (*close)(asp_loop *loop);

    /* Starts and stops watching one child. add: 0 or -errno. */
    int (*add)(asp_loop *loop, asp__child *c);
    void (*del)(asp_loop *loop, asp__child *c);
} asp__source_ops;

extern const asp__source_ops asp__source_pidfd;
extern const asp__source_ops asp__source_signalfd;
extern const asp__source_ops asp__source_selfpipe;
extern const asp__source_ops asp__source_kqueue;

/* The hub (hub.c): the process-wide SIGCHLD fan-out for the signal
 * sources. join registers a notifier to post on every SIGCHLD and, with
 * with_handler, counts as a user of the SIGCHLD handler (installed by the
 * first). broadcast posts every registered notifier (a signalfd reader
 * does, so that every loop hears a SIGCHLD one loop consumed). */
struct asp__hub_slot;
int asp__hub_join(const asp__notifier *n, int with_handler,
                  struct asp__hub_slot **out);
void asp__hub_leave(struct asp__hub_slot *slot, int with_handler);
void asp__hub_broadcast(void);

#endif
