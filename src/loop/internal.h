/*
 * internal.h - the loop's private state and the library-internal helpers
 * shared by src/loop and src/proc. Nothing here is public API.
 */
#ifndef ASP_LOOP_INTERNAL_H
#define ASP_LOOP_INTERNAL_H

#include "config.h"
#include "backend.h"
#include "asproc.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Flags shared by asp_io.flags_ and asp_timer.flags_. */
#define ASP__F_INIT 0x1u   /* initialised (catches uninitialised structs) */
#define ASP__F_ACTIVE 0x2u /* started */
#define ASP__F_UNREF 0x4u  /* does not keep the loop alive */
#define ASP__F_READY 0x8u  /* timer: collected as due, callback pending */

/* How many events one backend poll may return. */
#define ASP__MAX_EVENTS 1024

/* A one-way wakeup channel: an eventfd (rfd == wfd) or a pipe. Writing is
 * async-signal-safe; both ends are non-blocking and close-on-exec. */
typedef struct asp__notifier {
    int rfd, wfd;
} asp__notifier;

struct asp__procs; /* the process module's per-loop state (src/proc) */

struct asp_loop {
    const asp__backend_ops *be;
    void *be_data;

    asp_io **fdtab; /* fd -> started watcher */
    size_t fdcap;

    asp_timer *heap_min; /* intrusive min-heap of started timers */
    unsigned heap_n;
    uint64_t timer_seq;
    asp_timer *ready_head, *ready_tail; /* due timers of this dispatch */

    uint64_t now_ns; /* monotonic, read once per iteration */

    asp__event fired[ASP__MAX_EVENTS];
    int nfired;    /* events of the dispatch in progress */
    int fired_pos; /* index being dispatched */

    unsigned nref; /* active referenced watchers/timers + internal refs */
    int running;
    atomic_int stop;
    const int *until; /* asp_loop_run_until's flag: set means "stop" */

    asp__notifier wake;
    asp_io wake_io;
    atomic_int wake_pending;
    void (*wake_cb)(asp_loop *, void *);
    void *wake_data;

    int source; /* enum asp_child_source, resolved at creation */
    struct asp__procs *procs;
};

/* --- memory (src/loop/alloc.c) --- */
void *asp__malloc(size_t n);
void *asp__calloc(size_t n, size_t size);
void *asp__realloc(void *p, size_t n);
void asp__free(void *p);
char *asp__strdup(const char *s);

/* --- time (src/loop/loop.c) --- */
uint64_t asp__now_ns(void);

/* --- references held by internal work (src/loop/loop.c) ---
 * The process module takes one per running child whose handle is open, so
 * asp_loop_run(DEFAULT) keeps going until it is reaped. */
void asp__loop_ref(asp_loop *loop);
void asp__loop_unref(asp_loop *loop);

/* --- notifier (src/loop/notify.c) --- */
int asp__notifier_open(asp__notifier *n);
void asp__notifier_close(asp__notifier *n);
void asp__notifier_post(const asp__notifier *n);  /* async-signal-safe */
void asp__notifier_drain(const asp__notifier *n);

/* --- fd helpers (src/loop/notify.c) --- */
/* pipe2(O_CLOEXEC | extra) where available; -errno on failure. */
int asp__pipe(int fds[2], int extra_flags);
/* Moves a long-lived fd of the library off 0-2 (keeping close-on-exec):
 * in a host that closed its stdio, our fds would otherwise take those
 * numbers and a child inheriting "stdin" would get our epoll fd. Returns
 * the fd to use (closing the old one), or -errno. */
int asp__fd_high(int fd);
int asp__set_nonblock(int fd);

/* --- the process module's hooks, called by the loop (src/proc) --- */
/* Resolves enum asp_child_source for a new loop (environment, kernel
 * support, SIGCHLD mask); 0 or -errno. */
int asp__source_resolve(int requested, int backend_id, int *resolved);
/* Called by asp_loop_free: -EBUSY while handles are open, else kills and
 * reaps detached children and releases the module's state. */
int asp__procs_loop_free(asp_loop *loop);
/* Dispatches a kqueue EVFILT_PROC exit for pid. */
void asp__procs_pid_event(asp_loop *loop, pid_t pid);

/* Name of a resolved child source. */
const char *asp__source_name(int source);

#endif
