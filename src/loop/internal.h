/*
 * internal.h - the reactor's private state and the facilities it offers
 * the rooms above it (streams, processes). Nothing here is public API.
 *
 * The reactor knows nothing of processes or streams. What it offers:
 *   - memory through the library allocator (alloc.c);
 *   - liveness references for internal work (loop.c);
 *   - extensions: a room attaches its per-loop state with a teardown hook,
 *     which asp_loop_free calls (loop.c);
 *   - the child watch: "tell me when this child may have exited", served
 *     by one of the child-exit sources behind source.h (watch.c);
 *   - a one-way notifier and fd helpers (notify.c);
 *   - a blocking-call helper: run until an operation completes (loop.c);
 *   - embedding: what a host loop must poll and when it must run asproc,
 *     told on request or as it changes (embed.c).
 */
#ifndef ASP_LOOP_INTERNAL_H
#define ASP_LOOP_INTERNAL_H

#include "config.h"
#include "kit.h"
#include "backend.h"
#include "asproc.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Flags shared by the private parts of asp_io and asp_timer. */
#define ASP__F_INIT 0x1u   /* initialised (catches uninitialised structs) */
#define ASP__F_ACTIVE 0x2u /* started */
#define ASP__F_UNREF 0x4u  /* does not keep the loop alive */
#define ASP__F_READY 0x8u  /* timer: collected as due, callback pending */
#define ASP__F_KNOWN 0x10u /* io: the library's own fd (ASP__EV_KNOWN) */

/* How many events one backend poll may return. */
#define ASP__MAX_EVENTS 1024

/* The private part of an asp_timer (lives in its private_ room). */
typedef struct asp__timer_priv {
    asp_loop *loop;
    asp_timer_cb cb;
    asp_timer *left, *right, *parent; /* heap links */
    asp_timer *rnext, *rprev;         /* due list during dispatch */
    uint64_t due, seq, repeat;
    unsigned flags;
} asp__timer_priv;

/* The private part of an asp_io. */
typedef struct asp__io_priv {
    asp_loop *loop;
    asp_io_cb cb;
    int fd;
    int events; /* wanted */
    int kernel; /* registered with the backend */
    unsigned flags;
    uint64_t since; /* loop->polls when started: events of later polls only */
} asp__io_priv;

/* The private parts, found in the public structs' reserved rooms. */
#define ASP__T(t) ((asp__timer_priv *)(void *)(t)->private_.p)
#define ASP__IO(w) ((asp__io_priv *)(void *)(w)->private_.p)

/* A one-way wakeup channel: an eventfd (rfd == wfd) or a pipe. Writing is
 * async-signal-safe; both ends are non-blocking and close-on-exec. */
typedef struct asp__notifier {
    int rfd, wfd;
} asp__notifier;

/* ------------------------------------------------------- extensions */

/* Per-loop state of a room above the reactor, attached to the loop. */
typedef struct asp__loop_ext asp__loop_ext;
struct asp__loop_ext {
    const void *key; /* identifies the room (the address of a static) */
    /* asp_loop_free: busy() non-zero refuses the free (-EBUSY), before
     * anything is torn down; then teardown() releases everything (forked:
     * the loop is inherited by a forked process, see asp__loop_forked). */
    int (*busy)(asp__loop_ext *e);
    void (*teardown)(asp__loop_ext *e, int forked);
    asp__loop_ext *next;
};

/* ------------------------------------------------------- child watch */

/* A child the loop watches for its exit. The owner fills pid, pidfd (-1
 * without) and cb before asp__child_watch. cb runs in a later iteration
 * whenever the child may have exited (with the signal sources: after any
 * SIGCHLD); the owner checks with asp__waitid(..., WNOHANG). */
typedef struct asp__child asp__child;
struct asp__child {
    pid_t pid;
    int pidfd;
    void (*cb)(asp__child *c);
    /* the loop's */
    asp_loop *loop;
    asp__list node; /* loop->children */
    asp_io io;      /* pidfd source */
    int watched;
};

struct asp__source_ops;

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
    int nfired;     /* events of the dispatch in progress */
    int fired_pos;  /* index being dispatched */
    uint64_t polls; /* backend polls so far (io.c) */

    unsigned nref; /* active referenced watchers/timers + internal refs */
    int running;
    atomic_int stop;
    const int *until; /* asp_loop_run_until's flag: set means "stop" */
    pid_t owner;      /* the process that created the loop */
    int inherited;    /* being freed in a forked process (see loop.c) */

    asp__notifier wake;
    asp_io wake_io;
    atomic_int wake_pending;
    asp_wakeup_cb wake_cb;
    void *wake_data;

    /* The child watch (watch.c). */
    const struct asp__source_ops *src;
    void *src_data; /* the source's per-loop state, once opened */
    asp__list children;

    asp__loop_ext *exts;

    /* Embedding (embed.c): the host loop's callbacks and what its timer
     * was last told. */
    asp_timeout_cb host_timeout_cb;
    void *host_timeout_data;
    asp_fd_cb host_fd_cb;
    void *host_fd_data;
    uint64_t host_told; /* deadline last told (UINT64_MAX: none) */
    int host_told_set;  /* 0 until the first call, or after a new cb */
    int host_telling;   /* inside the timeout callback */
};

/* --- memory (alloc.c) --- */
void *asp__malloc(size_t n);
void *asp__calloc(size_t n, size_t size);
void *asp__realloc(void *p, size_t n);
void asp__free(void *p);

/* --- the core (loop.c) --- */
uint64_t asp__now_ns(void);
/* Takes / drops a liveness reference for internal work (a running child
 * whose handle is open keeps asp_loop_run(DEFAULT) going). */
void asp__loop_ref(asp_loop *loop);
void asp__loop_unref(asp_loop *loop);
/* Attaches e to loop / finds the extension of key (NULL: none). */
void asp__loop_ext_add(asp_loop *loop, asp__loop_ext *e);
asp__loop_ext *asp__loop_ext_find(const asp_loop *loop, const void *key);
/* Non-zero when the calling process is not the one that created loop (it
 * was inherited through fork): the loop must not be run or used there. */
int asp__loop_forked(const asp_loop *loop);

/* The blocking-call helper: every blocking call of the library is its
 * asynchronous form started by start(ctx) (0 or -errno), then the loop
 * run until *done; if the run fails first, cancel(ctx) undoes the
 * operation without a callback. Refuses with -EBUSY from a callback of
 * the loop (runs do not nest) and -ECHILD in a forked process. Returns
 * the start or run error, or 0 once *done is set. */
int asp__block(asp_loop *loop, int (*start)(void *ctx),
               void (*cancel)(void *ctx), void *ctx, const int *done);

/* --- embedding in a host loop (embed.c) --- */
/* The earliest deadline may have moved (a timer started or stopped, the
 * backend queued events no fd shows): outside a run, the host's timeout
 * callback hears of it now; inside one, at its end. */
void asp__embed_deadline_moved(asp_loop *loop);
/* A run of the loop is about to return (loop->running still set). */
void asp__embed_run_end(asp_loop *loop);
/* The backend was told to poll fd for mask (READ|WRITE bits; 0: no
 * more); the host's fd callback hears of it when the backend exports
 * each fd (poll). Called before the fd can be closed. */
void asp__embed_fd_changed(asp_loop *loop, int fd, int mask);
/* asp_loop_free starts tearing down: the timeout callback is dropped, and
 * the fd callback of a single-fd backend hears that its fd goes. */
void asp__embed_teardown(asp_loop *loop);

/* --- timers and fd watchers (timer.c, io.c) --- */
void asp__timers_run(asp_loop *loop, uint64_t seq_limit);
int64_t asp__timers_next(const asp_loop *loop, uint64_t now_ns);
void asp__io_dispatch(asp_loop *loop);
/* Marks w (initialised, not started) as watching one of the library's
 * own fds, open and pollable: the backend need not check it. */
void asp__io_known(asp_io *w);
/* The loop of a started or stopped-but-initialised timer. */
asp_loop *asp__timer_loop(const asp_timer *t);

/* --- the child watch (watch.c) --- */
/* Resolves enum asp_child_source for a new loop (environment, kernel
 * support, SIGCHLD mask); 0 or -errno. */
int asp__source_resolve(asp_loop *loop, enum asp_child_source req);
/* Makes the loop's source ready to hear a child that starts now (the
 * signal sources must be listening before the child can exit): call it
 * before starting the child. 1 when this call opened the source, 0 when
 * it was ready already, or -errno. */
int asp__child_prepare(asp_loop *loop);
/* Undoes the prepare that opened the source (1 above) when no child came
 * of it (a spawn that failed): the source closes again, so the loop holds
 * the fds it held before. */
void asp__child_unprepare(asp_loop *loop);
/* Starts watching c (opening the loop's source at its first use).
 * 0 or -errno, with nothing changed. */
int asp__child_watch(asp_loop *loop, asp__child *c);
/* Stops watching c (no cb afterwards). Safe on an unwatched child. */
void asp__child_unwatch(asp__child *c);
/* Runs the cb of every watched child (the signal sources, which only
 * learn that some child changed). Callbacks may unwatch any child. */
void asp__children_scan(asp_loop *loop);
/* A kqueue EVFILT_PROC event for pid. */
void asp__children_pid_event(asp_loop *loop, pid_t pid);
/* Closes the source at loop teardown. */
void asp__source_close(asp_loop *loop);
/* Whether pidfds work here: 1, 0, or -errno (the probe could not run). */
int asp__pidfd_supported(void);

/* --- the open-file limit (limits.c) --- */
/* Whether a child should get the soft RLIMIT_NOFILE of before
 * asp_raise_fd_limit back: 1 with *rl the limits to set in the child,
 * else 0 (never raised, or the process has set another limit since). */
int asp__fd_limit_restore(struct rlimit *rl);

/* --- notifier and fd helpers (notify.c) --- */
int asp__notifier_open(asp__notifier *n);
void asp__notifier_close(asp__notifier *n);
void asp__notifier_post(const asp__notifier *n); /* async-signal-safe */
void asp__notifier_drain(const asp__notifier *n);
/* pipe2(O_CLOEXEC | extra) where available; -errno on failure. */
int asp__pipe(int fds[2], int extra_flags);
/* Moves a long-lived fd of the library off 0-2 (keeping close-on-exec):
 * in a host that closed its stdio, our fds would otherwise take those
 * numbers and a child inheriting "stdin" would get our epoll fd. Returns
 * the fd to use (closing the old one), or -errno. */
int asp__fd_high(int fd);
/* Keeps the low fd numbers free for the fds a spawn hands its child: a
 * spawn's child copies (Linux: shares, then copies the part below) only
 * the fd table up to the highest fd it is given, so those fds should be
 * low, and in a process holding thousands of long-lived fds -- a stream
 * end and a pidfd per child -- new fds would otherwise always come at the
 * top. So a long-lived fd of the library at ASP__PARK_FROM or above moves
 * to ASP__PARK_BASE or above (one fcntl and one close, only in processes
 * with that many fds), and the numbers in between stay free for the
 * short-lived ones. Returns the fd to use (the same one if it is low or
 * the limit leaves no room above). */
#define ASP__PARK_FROM 64
#define ASP__PARK_BASE 256
int asp__fd_park(int fd);
int asp__set_nonblock(int fd);

#endif
