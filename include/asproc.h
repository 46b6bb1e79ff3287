/*
 * asproc.h - asynchronous child processes for event-driven C programs.
 *
 * This header is the API reference: read it top to bottom.
 *
 * Conventions that hold everywhere:
 *   - Calls return 0 (or a count, or a pointer) on success and a negative
 *     errno value on failure; asp_strerror() turns it into text.
 *   - The library never aborts, prints, exits, or changes process-wide
 *     signal dispositions other than the SIGCHLD handler of the self-pipe
 *     child-exit source (see "Child-exit sources").
 *   - Options are structs whose all-zero value means the defaults; a NULL
 *     options pointer means the same thing.
 *   - Times are milliseconds. Where a call takes a timeout, ASP_FOREVER
 *     means none and 0 means "do not block"; any other negative value is
 *     -EINVAL. Inside option structs 0 means "the default".
 *   - Objects of one loop belong to the thread that runs that loop. Only
 *     asp_loop_wakeup() may be called from another thread.
 *   - All fds the library creates are close-on-exec from creation.
 *   - fork(): a loop belongs to the process that created it. In a forked
 *     process an inherited loop is never run: asp_loop_run,
 *     asp_loop_run_until, asp_spawn and every blocking call on it or its
 *     objects return -ECHILD, and the library never writes into that
 *     process's fds on its behalf (the SIGCHLD fan-out of the signal
 *     sources included), so the forked process may close them and reuse
 *     the numbers. asp_loop_free there releases the loop and everything
 *     of it, handles still open included (pending operations complete
 *     with -ECANCELED, as in asp_proc_free), closing this process's
 *     copies of its fds without signalling, waiting for or reaping the
 *     parent's children and without touching the kernel objects the
 *     parent shares (its epoll set). Call it before closing those fds
 *     yourself, or never. No other call on an inherited object is
 *     supported. The forked process may create loops of its own.
 *
 * Naming: blocking and asynchronous forms.
 *   An operation that can wait has two forms. The plain name blocks: it
 *   runs the object's loop until the operation completes, and returns
 *   -EBUSY when called from a callback of that loop (runs do not nest).
 *   The same name with _start is asynchronous: it returns at once and the
 *   result comes to a callback in a later iteration (never inside the
 *   _start call itself). Each blocking form is exactly its _start form
 *   plus running the loop. Continuous readers (asp_stream_on_lines,
 *   asp_stream_on_chunks) exist only as callbacks.
 *
 * Callbacks all have one shape: the object first, then err (or the ready
 *   events of an fd watcher), then the results, and your data pointer
 *   last. A callback may free or stop anything, including its own object.
 *
 * Ownership model:
 *   asp_loop, asp_proc and asp_stream are opaque and allocated by the
 *   library. asp_io, asp_timer and asp_wait are owned by the caller (embed
 *   them in your own structs); the loop links them while they are active
 *   and never touches them after they are stopped. Their only public field
 *   is data; the rest is a fixed-size private area, so a new private field
 *   never changes their size (nor the size of your structs).
 */
#ifndef ASPROC_H
#define ASPROC_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(ASP_STATIC_ONLY)
#define ASP_API __attribute__((visibility("default")))
#else
#define ASP_API
#endif

/* ------------------------------------------------------------------ */
/* Version                                                             */
/* ------------------------------------------------------------------ */

#define ASP_VERSION_MAJOR 0
#define ASP_VERSION_MINOR 2
#define ASP_VERSION_PATCH 0
#define ASP_VERSION_STRING "0.2.0"
/* The version as one number: major * 10000 + minor * 100 + patch. */
#define ASP_VERSION                                                        \
    ((ASP_VERSION_MAJOR) * 10000 + (ASP_VERSION_MINOR) * 100 +             \
     (ASP_VERSION_PATCH))

/* Returns ASP_VERSION of the library actually linked (which may differ
 * from the header a program was compiled against when linked
 * dynamically). */
ASP_API int asp_version(void);

/* Returns ASP_VERSION_STRING of the library actually linked. */
ASP_API const char *asp_version_string(void);

/* Means "no timeout" wherever a call takes a timeout in milliseconds. */
#define ASP_FOREVER INT64_C(-1)

/* ------------------------------------------------------------------ */
/* Errors and memory                                                   */
/* ------------------------------------------------------------------ */

/* Returns a static, thread-safe English description of a negative errno
 * value returned by this library (0 gives "success"). Errors with a
 * library-specific meaning are described in that meaning, e.g.
 * -EMSGSIZE as "line longer than the limit". Never returns NULL. */
ASP_API const char *asp_strerror(int err);

/* A pluggable allocator. All three functions must be given; ctx is passed
 * back. realloc and free receive only pointers the same allocator
 * returned. A failing malloc/realloc returns NULL; the library then
 * returns -ENOMEM and leaves nothing behind. */
typedef struct asp_allocator {
    void *(*malloc)(size_t size, void *ctx);
    void *(*realloc)(void *ptr, size_t size, void *ctx);
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} asp_allocator;

/* Installs a library-wide allocator (NULL restores libc's). Call it
 * before creating any object.
 * Errors: -EINVAL a function pointer is missing;
 *         -EBUSY memory from the current allocator is still in use. */
ASP_API int asp_set_allocator(const asp_allocator *a);

/* Frees memory the library handed to the caller (result buffers of
 * asp_stream_read_all). NULL is ignored. */
ASP_API void asp_free(void *ptr);

/* ------------------------------------------------------------------ */
/* The open-file limit                                                 */
/* ------------------------------------------------------------------ */

/* Raises this process's soft RLIMIT_NOFILE to its hard limit, as Go does
 * for every program at start-up; the library never does it by itself (a
 * process-wide limit is the program's to change). Call it before holding
 * many children at once: each child costs the parent one fd per piped
 * stream plus, with the pidfd child-exit source, one pidfd, and the usual
 * soft limit of 1024 stops a program at a few hundred children, while
 * the hard limit is often far higher. Never lowers anything; calling it
 * again changes nothing. Where an infinite soft limit is refused (macOS),
 * OPEN_MAX is used.
 *
 * Children started by asp_spawn get the soft limit of before the first
 * raise back (as Go does), so a program that uses select(2) is not
 * handed one over FD_SETSIZE -- unless the process has set its own soft
 * limit since, which children then inherit as usual.
 *
 * Returns the new soft limit (INT_MAX when larger or infinite).
 * Errors: -EPERM, -EINVAL from setrlimit (a hard limit over the system's
 *         maximum, which can only come from a lowered system maximum). */
ASP_API int asp_raise_fd_limit(void);

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

typedef struct asp_loop asp_loop;

/* Backends. DEFAULT is the one picked at build time (epoll on Linux,
 * kqueue on BSD/macOS, poll elsewhere); the environment variable
 * ASP_BACKEND=epoll|kqueue|poll overrides DEFAULT, never an explicit
 * choice (a host loop embedding asproc: see "Embedding in a host
 * loop"). */
enum asp_backend {
    ASP_BACKEND_DEFAULT = 0,
    ASP_BACKEND_EPOLL = 1,
    ASP_BACKEND_KQUEUE = 2,
    ASP_BACKEND_POLL = 3
};

/* How a loop learns that its children exited. DEFAULT honours
 * ASP_CHILD_SOURCE=pidfd|signalfd|selfpipe|kqueue from the environment,
 * else picks kqueue when the loop's backend is kqueue, else pidfd where
 * the kernel has it, else signalfd when SIGCHLD is blocked in the calling
 * thread, else the self-pipe.
 *
 * Child-exit sources:
 *   pidfd     Linux >= 5.4: one pidfd per child, readable at its exit;
 *             signals are sent through it, so a recycled pid is never hit.
 *   signalfd  Linux: SIGCHLD read from a signalfd. SIGCHLD must be blocked
 *             in every thread of the process. A process that ignores
 *             SIGCHLD (SIG_IGN) gets no SIGCHLD at all: children spawned
 *             while it does are polled every 20 ms instead (a host that
 *             starts ignoring SIGCHLD only after a spawn is not covered).
 *   selfpipe  any POSIX system: a SIGCHLD handler (installed while a loop
 *             uses this source, chained to the handler that was there
 *             before, errno kept) writes to each such loop's pipe.
 *             SIGCHLD must be unblocked in at least one thread, or the
 *             handler never runs and exits go unnoticed (the library
 *             cannot see other threads' masks, so this is not checked).
 *   kqueue    the kqueue backend only: EVFILT_PROC/NOTE_EXIT per child.
 * Every source reaps only the loop's own children, by pid (waitid with
 * P_PIDFD or P_PID), never waitpid(-1); a stopped or continued child is
 * not an exit. Without a pidfd, signals go to the pid with kill(): safe,
 * because the pid of a child not yet reaped cannot be reused. */
enum asp_child_source {
    ASP_SOURCE_DEFAULT = 0,
    ASP_SOURCE_PIDFD = 1,
    ASP_SOURCE_SIGNALFD = 2,
    ASP_SOURCE_SELFPIPE = 3,
    ASP_SOURCE_KQUEUE = 4
};

typedef struct asp_loop_opts {
    enum asp_backend backend;
    enum asp_child_source child_source;
} asp_loop_opts;

/* Creates a loop.
 * Errors: -EINVAL out is NULL or an option is out of range;
 *         -ENOTSUP the backend or child source is not built in or not
 *                  supported by this kernel;
 *         -EINVAL  ASP_SOURCE_SIGNALFD while SIGCHLD is not blocked in the
 *                  calling thread (block it in every thread first);
 *         -EMFILE, -ENFILE, -ENOMEM from the system. */
ASP_API int asp_loop_new(asp_loop **out, const asp_loop_opts *opts);

/* Frees a loop. Refused with -EBUSY (and nothing freed) while process
 * handles of this loop are still open or while the loop is running
 * (except in a process that inherited the loop through fork: see the
 * conventions at the top).
 * Children whose handles were freed with ASP_FREE_DETACH but that are
 * still running are killed with SIGKILL and reaped here (never a zombie);
 * watchers and timers still active are simply unlinked.
 * Errors: -EINVAL loop is NULL; -EBUSY as above. */
ASP_API int asp_loop_free(asp_loop *loop);

enum asp_run_mode {
    ASP_RUN_DEFAULT = 0, /* until no active, referenced work remains */
    ASP_RUN_ONCE = 1,    /* one iteration, blocking for events if needed */
    ASP_RUN_NOWAIT = 2   /* one iteration, never blocking */
};

/* Runs the loop. Returns 1 when active referenced work remains (ONCE,
 * NOWAIT, or after asp_loop_stop), 0 when none remains.
 * Errors: -EINVAL bad loop or mode; -EBUSY called from one of this loop's
 *         own callbacks (runs do not nest); backend errors (rare). */
ASP_API int asp_loop_run(asp_loop *loop, enum asp_run_mode mode);

/* Runs the loop until *done becomes non-zero (set by one of your
 * callbacks). This is what every blocking call uses.
 * Errors: -EINVAL bad argument; -EBUSY called from a callback of this
 *         loop; -EDEADLK nothing can ever set *done (no active work left). */
ASP_API int asp_loop_run_until(asp_loop *loop, const int *done);

/* Makes the current asp_loop_run() return after this iteration; made
 * while no run is going, it makes the next asp_loop_run() return at once.
 * Blocking calls (asp_loop_run_until) ignore it: they wait for their own
 * operation. May be called from another thread (pair it with
 * asp_loop_wakeup to interrupt a blocked poll). */
ASP_API void asp_loop_stop(asp_loop *loop);

/* Wakes the loop from another thread: its current or next poll returns at
 * once and the wakeup callback (if set) runs on the loop's thread. Many
 * wakeups before the loop runs may be merged into one callback.
 * Async-signal-safe. Errors: -EINVAL loop is NULL. */
ASP_API int asp_loop_wakeup(asp_loop *loop);

typedef void (*asp_wakeup_cb)(asp_loop *loop, void *data);

/* Sets the callback run on the loop's thread after asp_loop_wakeup(). The
 * wakeup machinery never keeps the loop alive.
 * Errors: -EINVAL loop is NULL. */
ASP_API int asp_loop_on_wakeup(asp_loop *loop, asp_wakeup_cb cb,
                               void *data);

/* The loop's cached monotonic time in milliseconds, read once per
 * iteration. Returns 0 for a NULL loop. */
ASP_API uint64_t asp_loop_now(const asp_loop *loop);

/* Re-reads the clock into the loop's cached time. */
ASP_API void asp_loop_update_time(asp_loop *loop);

/* Non-zero when the loop has active referenced work (0 for NULL). */
ASP_API int asp_loop_alive(const asp_loop *loop);

/* The backend in use (enum asp_backend, never DEFAULT) and its name.
 * Errors: -EINVAL loop is NULL (the name is then "none"). */
ASP_API int asp_loop_backend(const asp_loop *loop);
ASP_API const char *asp_loop_backend_name(const asp_loop *loop);

/* The child-exit source in use (enum asp_child_source, never DEFAULT) and
 * its name. Errors: -EINVAL loop is NULL (the name is then "none"). */
ASP_API int asp_loop_child_source(const asp_loop *loop);
ASP_API const char *asp_loop_child_source_name(const asp_loop *loop);

/* ------------------------------------------------------------------ */
/* Embedding in a host loop                                            */
/* ------------------------------------------------------------------ */

/* A program that has its own event loop (GLib, libuv, libevent, a poll()
 * of its own) drives asproc from it instead of calling asp_loop_run
 * (DEFAULT): it polls the fds asproc names, keeps one timer for asproc's
 * next deadline, and calls asp_loop_run(loop, ASP_RUN_NOWAIT) whenever
 * one of those fds is ready or the timer fires. Everything else (spawn,
 * communicate, escalations, your asproc callbacks) works as usual; the
 * blocking calls still work too, and block the host meanwhile.
 *
 * The host learns the fds and the deadline by one of two routes; both
 * work with every backend (epoll and kqueue: one fd; poll: each fd it
 * watches):
 *
 *   query: before each of its polls, the host reads asp_loop_pollfds()
 *     and asp_loop_timeout(). For hosts with a hook that runs before
 *     each poll and that poll by fd number each time (GLib's GSource
 *     prepare, a plain poll() loop).
 *   push: asp_loop_on_fd() and asp_loop_on_timeout() tell the host of
 *     each change. For hosts without such a hook (libevent 2.1), and for
 *     those that keep fds registered in the kernel (libuv's uv_poll_t,
 *     libevent on epoll): the fd callback comes before asproc closes an
 *     fd, so no registration outlives its fd.
 *
 * Recipes (complete programs in examples/embed_*.c, built and run by
 * `make embed-examples`):
 *
 *   poll(): n = asp_loop_pollfds(loop, fds, cap) (then your own fds);
 *     poll(fds, n, asp_loop_timeout(loop));
 *     asp_loop_run(loop, ASP_RUN_NOWAIT). The NOWAIT run polls again by
 *     itself: the revents need not be handed over.
 *   GLib: a GSource whose prepare sets *timeout = asp_loop_timeout(loop)
 *     and brings the source's GPollFDs in line with asp_loop_pollfds()
 *     (g_source_add_poll / g_source_remove_poll of what changed only:
 *     every change wakes GLib's poll at once); check returns TRUE when
 *     one of them has revents or asp_loop_timeout(loop) is 0; dispatch
 *     runs NOWAIT.
 *   libuv: asp_loop_on_fd keeps one uv_poll_t per fd (events 0:
 *     uv_poll_stop, then uv_close); a uv_prepare_t re-arms one uv_timer_t
 *     from asp_loop_timeout(loop) before every libuv poll; the poll and
 *     timer callbacks run NOWAIT.
 *   libevent: asp_loop_on_fd keeps one persistent event per fd
 *     (event_new + event_add; events 0: event_free); asp_loop_on_timeout
 *     arms one timer event (evtimer_add; -1: evtimer_del); every event
 *     callback runs NOWAIT.
 *
 * Things a host should know:
 *   - Liveness: asproc's fds (at least its wakeup fd) are always there, so
 *     the host's handles for them would keep a host loop running for
 *     ever. Stop the host loop when your own work is done
 *     (asp_loop_alive() says whether asproc still has referenced work),
 *     or free the asp_loop (the fd callback then removes every fd).
 *   - The environment: ASP_BACKEND=poll switches a DEFAULT loop to the
 *     poll backend (the test runner relies on it). Glue built on
 *     asp_loop_pollfds or asp_loop_on_fd works with every backend and
 *     need not care; glue that polls asp_loop_fd() alone must create its
 *     loop with an explicit backend, or fall back when it gets -ENOTSUP.
 *   - Children: GLib, libuv and libevent reap only the children they
 *     started. libev's default loop (ev_default_loop, EV_DEFAULT) reaps
 *     EVERY child of the process with waitpid(-1) from its SIGCHLD
 *     handler, whatever loop asproc is embedded in: asproc's children
 *     then come back as ASP_EXIT_UNKNOWN (the status is lost). With libev,
 *     embed asproc in a loop made with ev_loop_new and create no default
 *     loop anywhere in the process (or build libev with EV_CHILD_ENABLE
 *     0).
 *   - Fd flags: a host may make the fds it polls non-blocking (libuv's
 *     uv_poll_init does): asproc's are non-blocking already, and its
 *     blocking reaps do not rely on a pidfd's mode.
 *   - Threads: the glue runs on the thread that runs the host loop, which
 *     must be the asp_loop's thread. */

/* Stores up to nfds entries {fd, events, revents 0} in fds, one per fd
 * the host must poll for this loop (events POLLIN and/or POLLOUT), and
 * returns how many there are: more than nfds means the list was cut
 * (ask again with room for all). epoll and kqueue: one entry, the
 * backend's fd with POLLIN; poll: every fd it watches. The list changes
 * with any asproc call or run on this loop: ask before each host poll.
 * Errors: -EINVAL loop is NULL, nfds negative, or fds NULL with nfds > 0. */
ASP_API int asp_loop_pollfds(const asp_loop *loop, struct pollfd *fds,
                             int nfds);

/* The backend's single fd (epoll, kqueue), readable whenever the loop has
 * events.
 * Errors: -EINVAL loop is NULL; -ENOTSUP for the poll backend, which has
 *         no single fd: use asp_loop_pollfds or asp_loop_on_fd, which
 *         work with every backend. */
ASP_API int asp_loop_fd(const asp_loop *loop);

/* Milliseconds until asproc must run again: the next timer, rounded up
 * (so a host never wakes early and spins); 0 if something is due now
 * (also when the kqueue backend holds the exit of a child that died
 * before its watch started, which no fd shows); -1 if nothing is.
 * Errors: -EINVAL loop is NULL (as -EINVAL, < -1). */
ASP_API int asp_loop_timeout(const asp_loop *loop);

/* timeout_ms: what asp_loop_timeout(loop) returns at the call. */
typedef void (*asp_timeout_cb)(asp_loop *loop, int timeout_ms, void *data);

/* Push route, timer: cb tells the host to (re)arm its one timer for
 * asproc to fire in timeout_ms (-1: disarm it; 0: as soon as possible);
 * when that timer fires, the host calls asp_loop_run(loop, ASP_RUN_NOWAIT).
 * cb is called:
 *   - by asp_loop_on_timeout itself, with the current value;
 *   - outside runs of this loop: inside any call that moves the earliest
 *     deadline (asp_timer_start and _stop, and so asp_spawn,
 *     asp_proc_wait_start, asp_proc_stop_start, asp_communicate_start,
 *     asp_proc_free ...), before that call returns;
 *   - never while a run of this loop (asp_loop_run, asp_loop_run_until,
 *     any blocking call) executes callbacks: changes made there are told
 *     once, as the run returns. A run also tells the current value as it
 *     returns whenever a timer is active, moved or not: the host timer
 *     that started the run may have fired before asproc's deadline by the
 *     host's own clock (libuv's cached loop time, libevent's coarse
 *     clock) and is spent.
 * In cb, only arm or disarm the host timer (asp_loop_timeout and
 * asp_loop_now may be read): a run started from it returns -EBUSY. cb
 * NULL stops the calls; asp_loop_free makes none.
 * Errors: -EINVAL loop is NULL. */
ASP_API int asp_loop_on_timeout(asp_loop *loop, asp_timeout_cb cb,
                                void *data);

/* events: POLLIN and/or POLLOUT to poll fd for from now on (replacing what
 * was asked for fd before); 0: stop polling fd. */
typedef void (*asp_fd_cb)(asp_loop *loop, int fd, int events, void *data);

/* Push route, fds (as libcurl's socket callback): cb tells the host each
 * change of the fds it must poll; when one is ready, the host calls
 * asp_loop_run(loop, ASP_RUN_NOWAIT). cb is called:
 *   - by asp_loop_on_fd itself, once for every fd polled now;
 *   - epoll and kqueue: never again until asp_loop_free, which tells
 *     that the backend's fd goes (events 0);
 *   - poll: whenever a watcher is started, changed or stopped, inside the
 *     call that does it, also from callbacks during a run: this call
 *     cannot wait for the run's end, because asproc may close the fd right
 *     after it stops polling it; asp_loop_free tells events 0 for every
 *     fd still polled.
 * Events 0 always comes before asproc closes the fd. In cb, only
 * register or unregister the host's fd handles: no other call on this
 * loop. cb NULL stops the calls.
 * Errors: -EINVAL loop is NULL; -ENOMEM (listing the fds for the first
 *         calls; cb is not set). */
ASP_API int asp_loop_on_fd(asp_loop *loop, asp_fd_cb cb, void *data);

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

typedef struct asp_timer asp_timer;
typedef void (*asp_timer_cb)(asp_timer *t, void *data);

/* Caller-owned; data is yours, the rest is the library's. */
struct asp_timer {
    void *data;
    union {
        void *p[16];
        uint64_t u[16];
    } private_;
};

/* Prepares t for use with loop. Never allocates.
 * Errors: -EINVAL loop, t or cb is NULL. */
ASP_API int asp_timer_init(asp_loop *loop, asp_timer *t, asp_timer_cb cb,
                           void *data);

/* (Re)starts t to fire after timeout_ms (0: in the next iteration, never
 * in the current one), then every repeat_ms if repeat_ms > 0. Timers with
 * equal deadlines fire in the order they were started. Never allocates.
 * Errors: -EINVAL t not initialised or a negative time. */
ASP_API int asp_timer_start(asp_timer *t, int64_t timeout_ms,
                            int64_t repeat_ms);

/* Stops t; its callback will not run again until restarted. Safe from any
 * callback, including t's own, and on a stopped timer.
 * Errors: -EINVAL t is NULL. */
ASP_API int asp_timer_stop(asp_timer *t);

/* Non-zero if t is started (0 for NULL). */
ASP_API int asp_timer_active(const asp_timer *t);

/* ref (the default) makes an active t keep asp_loop_run(DEFAULT) going;
 * unref does not. */
ASP_API void asp_timer_ref(asp_timer *t);
ASP_API void asp_timer_unref(asp_timer *t);

/* ------------------------------------------------------------------ */
/* Fd watchers                                                         */
/* ------------------------------------------------------------------ */

enum asp_events { ASP_READ = 1, ASP_WRITE = 2 };

typedef struct asp_io asp_io;
/* events: the ASP_READ/ASP_WRITE bits that are ready. Hang-up and error
 * conditions are reported as readiness of whatever was asked for (EOF is
 * readable; a closed reader makes a writer writable so write() can report
 * EPIPE). */
typedef void (*asp_io_cb)(asp_io *w, int events, void *data);

/* Caller-owned; data is yours, the rest is the library's. */
struct asp_io {
    void *data;
    union {
        void *p[8];
        uint64_t u[8];
    } private_;
};

/* Prepares w to watch fd. Does not start it. One started watcher per fd.
 * Errors: -EINVAL loop, w or cb NULL, or fd negative. */
ASP_API int asp_io_init(asp_loop *loop, asp_io *w, int fd, asp_io_cb cb,
                        void *data);

/* Sets the interest of w to events (ASP_READ|ASP_WRITE; 0 stops it).
 * Errors: -EINVAL bad events or w not initialised; -EEXIST another
 *         watcher is started on the same fd; -EPERM the fd is a regular
 *         file (epoll refuses those; kqueue and poll accept them);
 *         -ENOMEM; -EBADF (epoll and kqueue; poll reports a bad fd as an
 *         event instead). */
ASP_API int asp_io_start(asp_io *w, int events);

/* Stops w. Its callback never runs afterwards, even for an event already
 * collected in this iteration. Stop a watcher BEFORE closing its fd.
 * Safe from any callback, including w's own.
 * Errors: -EINVAL w is NULL. */
ASP_API int asp_io_stop(asp_io *w);

/* Non-zero if w is started (0 for NULL). */
ASP_API int asp_io_active(const asp_io *w);

/* The fd w watches (-EINVAL for NULL or an uninitialised w). */
ASP_API int asp_io_fd(const asp_io *w);

/* See asp_timer_ref. */
ASP_API void asp_io_ref(asp_io *w);
ASP_API void asp_io_unref(asp_io *w);

/* ------------------------------------------------------------------ */
/* Processes: spawn options                                            */
/* ------------------------------------------------------------------ */

typedef struct asp_proc asp_proc;
typedef struct asp_stream asp_stream;

/* What a child's stdin/stdout/stderr is connected to. INHERIT (the
 * default) gives the child the parent's fd of the same number, or leaves
 * it closed if the parent has it closed. */
enum asp_stdio_mode {
    ASP_STDIO_INHERIT = 0,
    ASP_STDIO_PIPE = 1,   /* a pipe; its parent side becomes an asp_stream */
    ASP_STDIO_NULL = 2,   /* /dev/null */
    ASP_STDIO_FD = 3,     /* the parent's fd .fd (it stays open here) */
    ASP_STDIO_PATH = 4,   /* .path opened read (stdin) or write-truncate
                             (outputs; ASP_STDIO_APPEND appends), by the
                             spawn call itself: a FIFO without a peer
                             blocks it, as open(2) would */
    ASP_STDIO_STDOUT = 5, /* stderr only: the same file as stdout */
    ASP_STDIO_CLOSE = 6,  /* closed in the child */
    ASP_STDIO_PTY = 7     /* a pseudo-terminal, one for all of 0-2 that
                             ask for it; its parent side becomes streams
                             (see "Pseudo-terminals" below) */
};

/* asp_stdio.flags */
#define ASP_STDIO_APPEND 0x1u /* PATH outputs: append instead of truncate */

typedef struct asp_stdio {
    enum asp_stdio_mode mode;
    int fd;           /* ASP_STDIO_FD */
    const char *path; /* ASP_STDIO_PATH; created 0666 & ~umask */
    unsigned flags;
} asp_stdio;

/* An extra fd given to the child: the parent's parent_fd appears in the
 * child as child_fd (>= 3). */
typedef struct asp_fdmap {
    int parent_fd;
    int child_fd;
} asp_fdmap;

/* One step of a kill escalation: send signal, then give the child
 * grace_ms to exit before the next step. */
typedef struct asp_kill_step {
    int signal;
    int64_t grace_ms;
} asp_kill_step;

#define ASP_KILL_STEPS_MAX 4
/* asp_kill_opts.flags */
#define ASP_KILL_GROUP 0x1u /* signal the process group the child leads */
#define ASP_KILL_TREE 0x2u  /* signal the child's whole tree: its cgroup
                               under ASP_CONTAIN_CGROUP, else the process
                               group it leads */

/* A kill escalation. All-zero means {SIGTERM, 1000 ms}, {SIGKILL}. Steps
 * are taken up to the first with signal 0. If the last step is not
 * SIGKILL, a SIGKILL follows once its grace has passed: an escalation
 * always ends with the child reaped.
 *
 * With ASP_KILL_GROUP (the child must lead its group: ASP_SPAWN_SETSID,
 * ASP_SPAWN_NEW_PGROUP or ASP_CONTAIN_PGROUP) every signal goes to the
 * whole group. With ASP_KILL_TREE (the child must be contained: see
 * enum asp_contain) every signal goes to the whole tree: under
 * ASP_CONTAIN_CGROUP to every process in the child's cgroup, also those
 * that left the group (setsid daemons, double forks), the last step
 * through cgroup.kill; else to the group. Group and tree steps run also
 * when the child has already exited, while the group or tree still has
 * members (checked every 10 ms), so a grandchild that ignores SIGTERM
 * still meets SIGKILL; the escalation ends once SIGKILL has gone to the
 * group or tree, and the members' deaths follow within moments
 * (asp_proc_wait_tree waits for them; off Linux a killed member counts
 * until its new parent, usually init, reaps it, as kill(2) cannot tell
 * a zombie). A group's id is never signalled after it may have
 * been recycled: on Linux a leader whose group lives on is kept unreaped
 * (a zombie of yours; its waits still complete at the exit) until the
 * group is empty, a group escalation ends or the handle is freed. Other
 * systems reap it at once, and a group signal after that carries the
 * kernel's small recycling race. */
typedef struct asp_kill_opts {
    asp_kill_step steps[ASP_KILL_STEPS_MAX];
    unsigned flags;
} asp_kill_opts;

enum asp_env_mode {
    ASP_ENV_INHERIT = 0,  /* the parent's environment (env is ignored) */
    ASP_ENV_REPLACE = 1,  /* exactly env ("NAME=VALUE" entries) */
    ASP_ENV_OVERRIDE = 2  /* the parent's, then each env entry applied:
                             "NAME=VALUE" sets, "NAME" alone removes */
};

/* How a child's whole tree (the child and everything it starts) is held
 * together, so that a stop can reach all of it.
 *
 *   NONE    nothing beyond what the flags ask (SETSID, NEW_PGROUP): the
 *           default, and what every release before 0.2 did.
 *   PGROUP  the child leads a new process group. A descendant that calls
 *           setsid() or setpgid() leaves it and escapes every stop.
 *   CGROUP  (Linux, cgroup v2) the child starts in a fresh leaf cgroup of
 *           its own, joined before exec, under cgroup_parent (NULL: below
 *           the process's own v2 cgroup, found from /proc/self/mountinfo
 *           and /proc/self/cgroup). Nothing a descendant does gets it out
 *           (moving needs write access to the parent cgroup). "The tree
 *           is empty" is an event of the loop (cgroup.events); the cgroup
 *           is removed once it is empty, and never left behind: freeing
 *           the handle with ASP_FREE_KILL kills the tree, freeing the loop
 *           kills detached trees. A process that cannot clean up (killed
 *           with SIGKILL, or exiting with trees alive) leaves its leaves
 *           ("asproc-<pid>-<n>"); the first cgroup spawn of a later
 *           process removes those under its parent that are empty, over
 *           a minute old and whose <pid> no longer exists. Needs write
 *           access to the process's own cgroup: root, a systemd unit with
 *           Delegate=yes, a container with a writable cgroupfs.
 *   AUTO    the strongest available: CGROUP when a leaf can be made,
 *           else PGROUP.
 * An explicit CGROUP that cannot be honoured fails the spawn (-ENOTSUP
 * no cgroup v2, -EACCES/-EPERM/-EROFS not writable, ...): it never
 * silently weakens. asp_proc_containment() reports what a process got. */
enum asp_contain {
    ASP_CONTAIN_NONE = 0,
    ASP_CONTAIN_AUTO = 1,
    ASP_CONTAIN_CGROUP = 2,
    ASP_CONTAIN_PGROUP = 3
};

/* Pseudo-terminals (ASP_STDIO_PTY).
 *
 * Every one of fds 0-2 given ASP_STDIO_PTY is the same new terminal (the
 * slave side of a pseudo-terminal pair); stdout or stderr (or both) must
 * be on it, since its output needs a reader. The child leads a new
 * session with that terminal as its controlling terminal (setsid, then
 * TIOCSCTTY before the exec), so ASP_SPAWN_SETSID and a new process group
 * are implied, ASP_KILL_GROUP works, /dev/tty opens in the child, and
 * the child's group is the terminal's foreground group: a ^C written to
 * it in the default modes is SIGINT to the child. The window size and
 * modes of asp_spawn_opts.pty are set before the child starts.
 *
 * The parent side (the master) is streams:
 *   - asp_proc_stdout(p) reads it (asp_proc_stderr(p) when only stderr is
 *     on the terminal): everything the terminal outputs, the child's
 *     stdout and stderr as written, the echo of the input (which the
 *     kernel drops where it has no room for it, as on any terminal) and,
 *     in the default modes, every "\n" as "\r\n" (output processing;
 *     ASP_PTY_RAW turns it off). The other output stream is NULL when
 *     it is on the terminal too (or is ASP_STDIO_STDOUT). Every read
 *     form, communicate (the terminal's output is the result's out, or
 *     err) and forward work on it; forwarding copies through the
 *     stream's buffer.
 *   - asp_proc_stdin(p), when stdin is on the terminal, writes the
 *     terminal's input, as if typed (through its own duplicate of the
 *     master: one fd cannot carry two watchers).
 *
 * Exit and drained are two events. A wait completes at the exit; the
 * reader goes on until the terminal is drained: once the last process
 * holding the terminal closed it, the reader gets what the terminal
 * still holds and then end of file (Linux reports that end as EIO: it is
 * end of file here, never an error). A hang-up the poller reports while
 * data is pending is not taken for the end: only read() decides. So
 * output written just before the exit is never lost. When the child (the
 * session leader) exits, the kernel sends SIGHUP to the terminal's
 * foreground group: what the child left in it dies unless it ignores
 * SIGHUP, and such a descendant keeping the terminal open is bounded by
 * eof_grace_ms, as for a pipe.
 *
 * End of input. asp_stream_close() on the stdin of a terminal does not
 * close the terminal (that would hang the child up): in canonical mode
 * (ICANON set at the time of the close, by whoever set it) it sends the
 * terminal's end-of-file character (VEOF, usually ^D), twice when the
 * last byte written left a line unfinished (the first one only hands the
 * partial line to the reader), so the child's read() returns 0 as at the
 * end of a pipe. Bytes still queued are dropped, as for a pipe (drain
 * first); the end-of-file characters go out when the terminal takes them.
 * communicate with input on a terminal sends the input, then that end.
 * Canonical mode passes input on a line at a time, and a line is limited
 * to 4095 bytes plus its newline on Linux (MAX_CANON elsewhere): the
 * kernel discards the bytes of a longer line past the limit. In raw
 * (non-canonical) mode -- ASP_PTY_RAW, or set by the child itself, as
 * line editors do -- a terminal has no end of file: closing stdin sends
 * nothing and the child sees no end; stop it with a signal, or write
 * whatever its protocol takes for the end (a line editor ends at a ^D,
 * "\x04", on an empty line). communicate with input then ends only at
 * its timeout.
 *
 * Writes to a terminal that no process holds any more fail with -EPIPE,
 * as for a pipe (the kernel would take a few KiB nobody reads, then
 * block). Closing the reading stream does not hang the terminal up while
 * stdin's writer still holds the master: nothing reads the terminal then,
 * and a child writing more than it holds blocks (a terminal has no
 * EPIPE) until stdin is closed too. Freeing the process closes the
 * master: the kernel hangs the terminal up and sends SIGHUP to the
 * child, which ends a detached child that does not ignore it.
 *
 * asp_spawn errors of its own: -EINVAL stdin alone on the terminal, a
 * pgid > 0, unknown ASP_PTY_* flags, or a non-zero pty without any
 * ASP_STDIO_PTY; -ENOTSUP no controlling-terminal ioctl (TIOCSCTTY) on
 * this system; -ENOSPC, -EAGAIN no pseudo-terminal left. */

/* asp_pty_opts.flags */
#define ASP_PTY_RAW 0x1u    /* raw mode (as cfmakeraw): no line editing and
                               no end of file, no echo, no signals from
                               ^C and the like (they are bytes), no output
                               processing ("\n" stays "\n"), 8-bit clean */
#define ASP_PTY_NOECHO 0x2u /* input is not echoed (canonical mode stays) */

/* The terminal of ASP_STDIO_PTY. All-zero: 24 rows, 80 columns, the
 * system's default modes for a new terminal (on Linux: canonical, echo,
 * signals, "\n" output as "\r\n"). */
typedef struct asp_pty_opts {
    unsigned short rows; /* window size; 0: 24 */
    unsigned short cols; /* 0: 80 */
    unsigned flags;      /* ASP_PTY_* */
} asp_pty_opts;

/* asp_spawn_opts.flags */
#define ASP_SPAWN_SETSID 0x1u     /* the child starts a new session */
#define ASP_SPAWN_NEW_PGROUP 0x2u /* the child leads a new process group */
#define ASP_SPAWN_SOCKETPAIR 0x4u /* stdout/stderr pipes are AF_UNIX
                                     socketpairs (faster for bulk output;
                                     the child cannot reopen /dev/stdout) */

typedef struct asp_spawn_opts {
    asp_stdio stdio[3];         /* stdin, stdout, stderr */
    enum asp_env_mode env_mode;
    const char *const *env;     /* NULL-terminated */
    const char *cwd;            /* relative programs are found from here */
    const char *file;           /* program to run instead of argv[0] */
    unsigned flags;             /* ASP_SPAWN_* */
    pid_t pgid;                 /* > 0: join this process group */
    const asp_fdmap *pass_fds;
    size_t npass_fds;
    size_t pipe_size;           /* > 0: raise pipes to this size (Linux,
                                   best effort: the kernel may cap it).
                                   0: the kernel default, raised to 1 MiB
                                   once an output has carried 1 MiB (a
                                   bulk stream), best effort likewise */
    size_t read_buffer;         /* stream buffer; 0: 64 KiB or the pipe
                                   size, whichever is larger */
    size_t high_water;          /* a stream stops polling its pipe when
                                   this much is buffered; 0: 1 MiB */
    int64_t eof_grace_ms;       /* after the child exits, how long its
                                   pipes may stay open (a grandchild holds
                                   them) before they are closed; 0: 2000;
                                   ASP_FOREVER: never cut. Under
                                   ASP_CONTAIN_CGROUP the grace starts
                                   when the whole tree is gone */
    enum asp_contain contain;   /* whole-tree containment (see above) */
    const char *cgroup_parent;  /* ASP_CONTAIN_CGROUP/AUTO: an absolute
                                   path on the cgroup2 mount; NULL: the
                                   process's own cgroup */
    asp_pty_opts pty;           /* the terminal of ASP_STDIO_PTY */
} asp_spawn_opts;

/* ------------------------------------------------------------------ */
/* Processes: spawn, status, signals, free                             */
/* ------------------------------------------------------------------ */

/* Starts argv[0] (or opts->file) with arguments argv (NULL-terminated).
 * A name without '/' is looked up in PATH: the PATH of opts->env when the
 * environment is replaced or overridden and sets PATH, else the parent's,
 * else "/bin:/usr/bin": the child's PATH first, as Python's subprocess
 * does, and without one the parent's, which is what execvp, posix_spawnp
 * and Go's os/exec search. Like execvp, an EACCES seen on the way is
 * reported if nothing runs; ENOEXEC is reported, not retried with
 * /bin/sh.
 *
 * The child starts with an empty signal mask, every signal at its default
 * disposition, only fds 0-2 and opts->pass_fds open. The spawn does not
 * copy the parent's address space (clone(CLONE_VM|CLONE_VFORK) or vfork).
 *
 * Everything that fails before the new program runs comes back here, and
 * then nothing is left behind (no child, zombie, fd or memory):
 * Errors: -EINVAL loop/out/argv NULL, argv empty, empty program name, an
 *                 env entry without '=' (REPLACE), conflicting or
 *                 out-of-range options, a child_fd < 3 or twice;
 *                 read_buffer or pipe_size over 1 GiB, a child_fd at or
 *                 over RLIMIT_NOFILE;
 *         -EBADF  a given fd (ASP_STDIO_FD, pass_fds) is not open;
 *         -ENOENT, -EACCES, -ENOTDIR, -ENOEXEC, -ELOOP, -ENAMETOOLONG the
 *                 program, cwd or a stdio path;
 *         -EMFILE, -ENFILE, -EAGAIN (process limit), -ENOMEM.
 *
 * Fds. At its peak a spawn holds two fds per pipe, a pidfd where the
 * system has them (on Linux >= 5.4 every exit source takes one: signals
 * go through it), /dev/null or a file where asked; the first spawn of a
 * loop also opens the loop's exit source: selfpipe its notifier (an
 * eventfd; a pipe, two fds, where there is none), signalfd the notifier
 * and the signalfd, pidfd and kqueue nothing. A child_fd or ASP_STDIO_FD
 * number takes no fd more, up to RLIMIT_NOFILE - 1. So a spawn with
 * stdout and stderr piped needs, on Linux, this many free fds:
 *     pidfd     5
 *     selfpipe  6 at a loop's first spawn, then 5
 *     signalfd  7 at a loop's first spawn, then 5
 * (CPython's subprocess needs about 7). A first spawn that fails closes
 * the exit source again. Where vfork is emulated by a copying fork
 * (valgrind) an error pipe adds 2. */
ASP_API int asp_spawn(asp_loop *loop, asp_proc **out,
                      const char *const argv[], const asp_spawn_opts *opts);

/* Starts "/bin/sh -c command" with opts. Errors as asp_spawn; -EINVAL
 * for a NULL or empty command. */
ASP_API int asp_spawn_shell(asp_loop *loop, asp_proc **out,
                            const char *command, const asp_spawn_opts *opts);

/* The child's pid (still returned after it was reaped; do not signal it
 * yourself: the number may have been reused). -EINVAL for NULL. */
ASP_API pid_t asp_proc_pid(const asp_proc *p);

/* The loop a process belongs to (NULL for NULL). */
ASP_API asp_loop *asp_proc_loop(const asp_proc *p);

/* Your pointer, kept with the process (set ignores a NULL p; get returns
 * NULL for it). */
ASP_API void asp_proc_set_data(asp_proc *p, void *data);
ASP_API void *asp_proc_data(const asp_proc *p);

/* How a child ended. */
enum asp_exit_kind {
    ASP_EXIT_NONE = 0,    /* still running (not reaped yet) */
    ASP_EXIT_CODE = 1,    /* exited with .code */
    ASP_EXIT_SIGNAL = 2,  /* killed by .signal (.core if it dumped core) */
    ASP_EXIT_UNKNOWN = 3  /* reaped by someone else (a waitpid(-1) in the
                             host, or SIGCHLD set to SIG_IGN): the status
                             is lost, the child is gone */
};

/* Resource usage. Times in microseconds, memory in KiB. */
typedef struct asp_usage {
    int err;         /* 0, or -ENODATA: not available (the status is
                        unknown, or the figures below are not there) */
    int64_t utime_us;
    int64_t stime_us;
    int64_t maxrss_kb; /* the high-water mark of the child's resident
                          memory. A child started without copying the
                          parent's memory (clone(CLONE_VM) or vfork, as
                          here and in posix_spawn) ran on the parent's
                          pages until exec, and the kernel counts them:
                          a child of a 300 MB parent reports about 300 MB
                          even for `true`. Use the tree's memory_peak_kb
                          under ASP_CONTAIN_CGROUP for a true figure. */
    int64_t minflt, majflt;   /* page faults */
    int64_t nvcsw, nivcsw;    /* voluntary, involuntary context switches */
} asp_usage;

/* The usage of a whole tree (ASP_CONTAIN_CGROUP): every process that ran
 * in the child's cgroup, read when the tree became empty. */
typedef struct asp_tree_usage {
    int cpu_err;    /* 0, or -ENODATA: no figures (not contained in a
                       cgroup, or no cpu.stat) */
    int64_t cpu_us, user_us, system_us;
    int memory_err; /* 0, or -ENODATA: no memory controller in the
                       cgroup (or a kernel before 5.19) */
    int64_t memory_peak_kb;
} asp_tree_usage;

typedef struct asp_status {
    enum asp_exit_kind kind;
    int code;        /* ASP_EXIT_CODE: 0-255 */
    int signal;      /* ASP_EXIT_SIGNAL */
    int core;        /* ASP_EXIT_SIGNAL: non-zero if a core was dumped */
    asp_usage usage; /* the child's own (and its reaped descendants'),
                        taken from the reap itself */
    asp_tree_usage tree;
} asp_status;

/* Python's returncode: code, or -signal; INT32_MIN for NONE/UNKNOWN. */
ASP_API int asp_status_returncode(const asp_status *st);

/* Copies the status so far into *st (kind ASP_EXIT_NONE while running;
 * under ASP_CONTAIN_CGROUP st->tree is filled once the tree is empty).
 * Errors: -EINVAL a NULL argument. */
ASP_API int asp_proc_status(const asp_proc *p, asp_status *st);

/* What contains p's tree: ASP_CONTAIN_CGROUP, ASP_CONTAIN_PGROUP (the
 * child leads a process group: CONTAIN_PGROUP, SETSID or NEW_PGROUP) or
 * ASP_CONTAIN_NONE. -EINVAL for NULL. */
ASP_API int asp_proc_containment(const asp_proc *p);

/* Sends sig (0 probes) to the child, through its pidfd where there is
 * one, so a recycled pid is never hit.
 * Errors: -EINVAL bad p or sig; -ESRCH the child was already reaped (no
 *         signal is sent); -EPERM from the kernel. */
ASP_API int asp_proc_signal(asp_proc *p, int sig);

/* asp_proc_signal(p, SIGTERM) and asp_proc_signal(p, SIGKILL).
 * Errors: as asp_proc_signal. */
ASP_API int asp_proc_terminate(asp_proc *p);
ASP_API int asp_proc_kill(asp_proc *p);

/* Sets the window size of p's terminal (ASP_STDIO_PTY): the kernel sends
 * SIGWINCH to the terminal's foreground group when the size changes (not
 * when it stays the same). Works as long as one of the terminal's
 * streams is open; after the exit it changes nothing that matters.
 * Errors: -EINVAL p NULL or freed, rows or cols 0; -ENOTTY p has no
 *         terminal; -EBADF the terminal's streams are closed (drained at
 *         its end, or closed by you). */
ASP_API int asp_proc_resize(asp_proc *p, unsigned short rows,
                            unsigned short cols);

enum asp_free_how {
    ASP_FREE_DETACH = 0, /* a running child keeps running; the loop reaps
                            it in the background (it does not keep the
                            loop alive; asp_loop_free kills stragglers) */
    ASP_FREE_KILL = 1    /* SIGKILL now, then reaped in the background */
};

/* Frees the handle and its streams (pipes are closed: a child that still
 * writes to them gets EPIPE/SIGPIPE, as with any closed reader; a
 * terminal is hung up: the child gets SIGHUP). Pending
 * waits, reads, drains and the escalation first complete with -ECANCELED;
 * those callbacks must not use p. Never leaves a zombie. Safe from any
 * callback, including one of p's own.
 * Errors: -EINVAL p NULL or how out of range. */
ASP_API int asp_proc_free(asp_proc *p, enum asp_free_how how);

/* ------------------------------------------------------------------ */
/* Processes: wait                                                     */
/* ------------------------------------------------------------------ */

typedef struct asp_wait asp_wait;
/* err: 0 (st is the exit status), -ETIMEDOUT (the child keeps running;
 * st->kind is ASP_EXIT_NONE), or -ECANCELED (cancelled or proc freed). */
typedef void (*asp_wait_cb)(asp_wait *w, int err, const asp_status *st,
                            void *data);

/* Caller-owned; data is yours, the rest is the library's. */
struct asp_wait {
    void *data;
    union {
        void *p[32];
        uint64_t u[32];
    } private_;
};

/* Waits asynchronously for p's exit. w must be zeroed before its first
 * use (asp_wait w = {0};); a finished wait may be started again.
 * Completes at the exit itself, not when the pipes close. Any number of
 * waits may be pending; all see the same status. A wait on an
 * already-reaped child completes in the next iteration. When the exit and
 * the timeout fall due in the same iteration, the exit wins. Never
 * allocates.
 * Errors: -EINVAL bad argument or timeout; -EBUSY w is already pending. */
ASP_API int asp_proc_wait_start(asp_wait *w, asp_proc *p,
                                int64_t timeout_ms, asp_wait_cb cb,
                                void *data);

/* Waits asynchronously until p's whole tree is gone: under
 * ASP_CONTAIN_CGROUP when its cgroup is empty (an event of the loop),
 * under a process group when the group has no member left (checked every
 * 10 ms), without containment at the child's exit. Otherwise as
 * asp_proc_wait_start (st is the child's status; -ETIMEDOUT: the tree
 * lives on).
 * Errors: as asp_proc_wait_start. */
ASP_API int asp_proc_wait_tree_start(asp_wait *w, asp_proc *p,
                                     int64_t timeout_ms, asp_wait_cb cb,
                                     void *data);

/* Blocking form of asp_proc_wait_tree_start.
 * Errors: -ETIMEDOUT the tree lives on; as asp_proc_wait. */
ASP_API int asp_proc_wait_tree(asp_proc *p, int64_t timeout_ms,
                               asp_status *st);

/* Cancels a pending wait: its callback runs at once with -ECANCELED.
 * Errors: -EINVAL w NULL; -EALREADY not pending. */
ASP_API int asp_wait_cancel(asp_wait *w);

/* Blocking wait: runs p's loop until the child exits or timeout_ms
 * passes. On success fills *st (may be NULL). A timeout of 0 checks the
 * child once: an exited child is reaped and reported, never -ETIMEDOUT.
 * Errors: -ETIMEDOUT (the child keeps running); -EINVAL; -EBUSY called
 *         from a callback of the same loop. */
ASP_API int asp_proc_wait(asp_proc *p, int64_t timeout_ms, asp_status *st);

/* ------------------------------------------------------------------ */
/* Processes: timed kill escalation                                    */
/* ------------------------------------------------------------------ */

typedef void (*asp_stop_cb)(asp_proc *p, int err, const asp_status *st,
                            void *data);

/* Starts a kill escalation (see asp_kill_opts; NULL: the default). The
 * callback (NULL: none, fire and forget) runs once the child is reaped,
 * with err 0, or -ECANCELED if p is freed first. If the child has already
 * exited, the callback runs in the next iteration and no signal is sent.
 * Errors: -EINVAL bad option (bad signal, negative grace, GROUP without
 *         leading a group); -EALREADY an escalation is already running. */
ASP_API int asp_proc_stop_start(asp_proc *p, const asp_kill_opts *kill,
                                asp_stop_cb cb, void *data);

/* Blocking escalation: returns once the child is reaped, with *st filled.
 * Errors: as asp_proc_stop_start; -EBUSY called from a callback. */
ASP_API int asp_proc_stop(asp_proc *p, const asp_kill_opts *kill,
                          asp_status *st);

/* Waits up to timeout_ms for the child; if it is still running then,
 * escalates (kill, NULL: default) until it is reaped. The callback gets
 * err 0 if the child exited in time (an exit already there when the
 * timeout falls due is in time, with a timeout of 0 too), -ETIMEDOUT if
 * it had to be stopped (st filled either way), -ECANCELED if p was freed
 * first.
 * Errors (returned): as asp_proc_wait_start and asp_proc_stop_start. */
ASP_API int asp_proc_wait_or_stop_start(asp_proc *p, int64_t timeout_ms,
                                        const asp_kill_opts *kill,
                                        asp_stop_cb cb, void *data);

/* Blocking form of asp_proc_wait_or_stop_start: returns 0 if the child
 * exited in time, -ETIMEDOUT if it had to be stopped; fills *st either
 * way. Other errors as asp_proc_wait / asp_proc_stop. */
ASP_API int asp_proc_wait_or_stop(asp_proc *p, int64_t timeout_ms,
                                  const asp_kill_opts *kill, asp_status *st);

/* ------------------------------------------------------------------ */
/* Streams                                                             */
/* ------------------------------------------------------------------ */

/* The parent side of a piped stdin/stdout/stderr, or NULL when that
 * stream is not ASP_STDIO_PIPE. A terminal (ASP_STDIO_PTY) gives stdin
 * its input, and stdout its output (stderr when only stderr is on it; see
 * "Pseudo-terminals"). The stream lives as long as p. */
ASP_API asp_stream *asp_proc_stdin(asp_proc *p);
ASP_API asp_stream *asp_proc_stdout(asp_proc *p);
ASP_API asp_stream *asp_proc_stderr(asp_proc *p);

/* Reading (stdout, stderr).
 *
 * Each output stream reads its pipe into a buffer whenever the loop runs,
 * even before anyone asks (up to the high-water mark plus one read, then
 * it stops polling until the buffer is consumed), so a child is never
 * blocked by a parent that is busy waiting, and everything it wrote stays
 * readable after it exited and was reaped. At EOF the stream closes its
 * end of the pipe (what is buffered stays readable).
 *
 * One read request may be pending per stream. Callbacks get
 * (s, err, buf, len, data); buf points into the stream's buffer and is
 * valid only during the callback (copy what you keep). End of file is
 * err == 0 with len == 0. Requests on a stream whose child has exited end
 * at EOF; if a grandchild keeps the pipe open, they end eof_grace_ms after
 * the exit as if at EOF, and asp_stream_cut() then says so. */
typedef void (*asp_read_cb)(asp_stream *s, int err, const char *buf,
                            size_t len, void *data);

/* The default line limit. */
#define ASP_LINE_LIMIT_DEFAULT ((size_t)64 * 1024)

/* Up to n bytes as soon as any are there.
 * Errors (returned): -EINVAL s NULL, n 0 or cb NULL; -EBUSY a request is
 *         pending; -EOPNOTSUPP s is stdin; -EBADF s was closed. */
ASP_API int asp_stream_read_start(asp_stream *s, size_t n, asp_read_cb cb,
                                  void *data);

/* Exactly n bytes. At an earlier EOF the callback gets err -ENODATA with
 * the partial data (buf, len < n), which is consumed. Errors as read. */
ASP_API int asp_stream_readexactly_start(asp_stream *s, size_t n,
                                         asp_read_cb cb, void *data);

/* One line through its '\n' (limit 0: ASP_LINE_LIMIT_DEFAULT); the last
 * line without '\n' at EOF; then EOF. A line longer than limit bytes
 * ('\n' included) gives err -EMSGSIZE with no data consumed:
 * asp_stream_read_start() can still take every byte. While a line
 * request needs more bytes to decide, the stream reads past its
 * high-water mark (up to limit + one read). Errors as read. */
ASP_API int asp_stream_readline_start(asp_stream *s, size_t limit,
                                      asp_read_cb cb, void *data);

/* Through the first occurrence of sep (1 to 16 bytes); at EOF without
 * sep, -ENODATA with the rest (consumed); over limit, -EMSGSIZE and
 * nothing consumed. Errors as readline; -EINVAL sep NULL, empty or longer
 * than 16 bytes. */
ASP_API int asp_stream_readuntil_start(asp_stream *s, const void *sep,
                                       size_t seplen, size_t limit,
                                       asp_read_cb cb, void *data);

/* Continuous reading: cb runs for every line (asp_stream_on_lines) or
 * every chunk of at most max bytes (asp_stream_on_chunks; max 0: any size)
 * until EOF, which is delivered once (len 0). An over-long line delivers
 * -EMSGSIZE and stops the continuous mode (nothing is lost). Several
 * streams may read continuously at once; none stalls another.
 * asp_stream_read_cancel() ends the mode. Errors as readline. */
ASP_API int asp_stream_on_lines(asp_stream *s, size_t limit, asp_read_cb cb,
                                void *data);
ASP_API int asp_stream_on_chunks(asp_stream *s, size_t max, asp_read_cb cb,
                                 void *data);

/* Forwarding: everything the stream delivers from now on goes to fd --
 * the bytes already buffered first -- until EOF; then cb runs once with
 * err 0, buf NULL and len the number of bytes forwarded.
 *
 * The bytes move inside the kernel (splice(2), Linux) when the stream is
 * a pipe or fd is one: they never enter this process. Otherwise (a
 * socketpair stream into a file or socket, an O_APPEND file, other
 * systems) they go through the stream's buffer with read and write.
 *
 * The stream works on its own duplicate of fd (close-on-exec), so the
 * caller may close fd at once; fd is never closed or changed (its flags
 * stay as they are). A non-blocking fd that is full (a pipe or socket
 * whose reader is slow) stops reading from the child until fd takes more:
 * the child slows down, memory does not grow. A blocking fd that is full
 * may block the loop in a write, as a blocking write would; pass a
 * non-blocking one (or a regular file) where that matters.
 *
 * A failed write ends forwarding: cb gets the negative errno (-EPIPE: fd
 * has no reader any more; no SIGPIPE reaches the process) and len the
 * bytes forwarded before it; later output stays in the stream for other
 * requests. The eof grace applies as for reads, and never cuts while the
 * child's pipe still holds data for a full fd. Closing the stream or
 * freeing the process ends forwarding with -ECANCELED and len the bytes
 * forwarded. asp_stream_read_cancel() ends it without a callback (the
 * duplicate is closed then).
 * Errors (returned): as asp_stream_read_start; -EBADF fd is not open for
 * writing; -EMFILE no fd left for the duplicate. */
ASP_API int asp_stream_forward_start(asp_stream *s, int fd, asp_read_cb cb,
                                     void *data);

/* Cancels the pending request or continuous mode without a callback.
 * Buffered data stays. Errors: -EINVAL s NULL; -EALREADY none pending. */
ASP_API int asp_stream_read_cancel(asp_stream *s);

/* Pauses delivery to a continuous reader (the stream keeps buffering up
 * to its high-water mark plus one read); resume continues where it
 * stopped.
 * Errors: -EINVAL s is NULL; -EALREADY no continuous reader is running
 *         (pause) or the stream is not paused (resume). */
ASP_API int asp_stream_pause(asp_stream *s);
ASP_API int asp_stream_resume(asp_stream *s);

/* Bytes buffered and not yet consumed. 0 for NULL. */
ASP_API size_t asp_stream_buffered(const asp_stream *s);

/* Non-zero once the stream reached EOF (or was cut). */
ASP_API int asp_stream_eof(const asp_stream *s);

/* Non-zero if reading was ended by the eof grace (output may be cut). */
ASP_API int asp_stream_cut(const asp_stream *s);

/* Blocking reads: run the loop until done. Return the byte count (0 at
 * EOF) or a negative errno, as the _start forms; -EBUSY from a callback.
 * readline: cap is the limit; the line is not NUL-terminated.
 * readuntil: through sep, at most cap bytes; -ENODATA at EOF without sep
 * (*got, if not NULL, then holds the count copied to buf).
 * readexactly: on -ENODATA, *got (if not NULL) holds the partial count
 * copied to buf. read_all: reads to EOF into a new buffer
 * (NUL-terminated, free with asp_free) and returns its length. */
ASP_API ssize_t asp_stream_read(asp_stream *s, void *buf, size_t n);
ASP_API ssize_t asp_stream_readline(asp_stream *s, char *buf, size_t cap);
ASP_API ssize_t asp_stream_readuntil(asp_stream *s, const void *sep,
                                     size_t seplen, char *buf, size_t cap,
                                     size_t *got);
ASP_API ssize_t asp_stream_readexactly(asp_stream *s, void *buf, size_t n,
                                       size_t *got);
ASP_API ssize_t asp_stream_read_all(asp_stream *s, char **buf);
/* Blocking forward: returns the bytes forwarded at EOF, or the negative
 * errno of the forward or of asp_stream_forward_start. */
ASP_API ssize_t asp_stream_forward(asp_stream *s, int fd);

/* Writing (stdin).
 *
 * Writes never block and never raise SIGPIPE in the process: the calling
 * thread blocks SIGPIPE around each write and consumes the one a broken
 * pipe raises (the process's signal dispositions are never changed). */

/* Queues len bytes (copied) for the child; what the pipe takes at once is
 * written at once. All or nothing: on an error no byte was taken.
 * Errors: -EPIPE the child exited or closed its stdin (a terminal: no
 *         process holds it any more); -EBADF closed;
 *         -EOPNOTSUPP s is not stdin; -EINVAL; -ENOMEM. */
ASP_API int asp_stream_write(asp_stream *s, const void *buf, size_t len);

typedef void (*asp_drain_cb)(asp_stream *s, int err, void *data);

/* cb runs once every queued byte is in the pipe (err 0), or with -EPIPE
 * if the child stopped reading. Errors as write; -EBUSY a drain is
 * pending. */
ASP_API int asp_stream_drain_start(asp_stream *s, asp_drain_cb cb,
                                   void *data);

/* Blocking drain. Returns 0, -EPIPE, or as asp_stream_drain_start. */
ASP_API int asp_stream_drain(asp_stream *s);

/* Closes a stream. For stdin: the child sees EOF (queued bytes are
 * dropped; drain first to keep them); on a terminal that EOF is its
 * end-of-file character, in canonical mode only (see "Pseudo-terminals").
 * For outputs: the pipe is closed and buffered data dropped. A pending
 * request completes with -ECANCELED.
 * Errors: -EINVAL s NULL; -EBADF already closed. */
ASP_API int asp_stream_close(asp_stream *s);

/* ------------------------------------------------------------------ */
/* communicate and run                                                 */
/* ------------------------------------------------------------------ */

/* asp_result.flags */
#define ASP_RESULT_TIMEOUT 0x1u /* the timeout expired */
#define ASP_RESULT_KILLED 0x2u  /* and the child was stopped by escalation */
#define ASP_RESULT_CUT 0x4u     /* a pipe outlived the child past the eof
                                   grace and was closed: output may be cut */
#define ASP_RESULT_CAPPED 0x8u  /* more than cap bytes came; the rest was
                                   read and discarded */

/* What communicate collected. out/err are NUL-terminated (the NUL is not
 * counted in the length) and NULL when that stream has no stream of its
 * own (not a pipe; or on a terminal whose output the other one reads). */
typedef struct asp_result {
    asp_status status; /* ASP_EXIT_NONE after a timeout without escalation */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
    unsigned flags;
} asp_result;

/* Frees the buffers of r and zeroes it. NULL is ignored. */
ASP_API void asp_result_free(asp_result *r);

/* asp_comm_opts.flags */
#define ASP_COMM_ESCALATE 0x1u /* on timeout, run the kill escalation */

typedef struct asp_comm_opts {
    const void *input;  /* written to stdin, then stdin is closed (a
                           terminal: its end-of-file character, see
                           "Pseudo-terminals"); must stay valid until
                           communicate completes */
    size_t input_len;
    int64_t timeout_ms; /* 0 or ASP_FOREVER: none */
    unsigned flags;     /* ASP_COMM_* */
    asp_kill_opts kill; /* the escalation for ASP_COMM_ESCALATE */
    size_t cap;         /* > 0: keep at most cap bytes of each output; the
                           rest is read and discarded (ASP_RESULT_CAPPED) */
} asp_comm_opts;

typedef void (*asp_comm_cb)(asp_proc *p, int err, asp_result *r,
                            void *data);

/* Feeds the input (stdin is closed at once when there is none), closes
 * stdin, reads stdout and stderr to EOF together, and waits for the exit;
 * no deadlock for any sizes. At completion stdin is closed in every case
 * (after a timeout the unwritten input is dropped), so the input buffer
 * is no longer referenced, and each output pipe was closed at its EOF.
 * err -ENOMEM: memory ran out while capturing; the result holds what was
 * kept, the rest was read and discarded. Data already buffered in the
 * streams is part of the result. On timeout the result has
 * ASP_RESULT_TIMEOUT and all the output so far (a timeout that falls due
 * in the iteration that brings the exit and the pipes' EOF is none: the
 * exit wins, as for waits); with ASP_COMM_ESCALATE the child is then
 * stopped and reaped before the callback. The callback owns *r
 * (asp_result_free).
 * err: 0, -ETIMEDOUT, -ECANCELED (p freed), -ENOMEM.
 * Errors (returned): -EINVAL bad options or input without a piped stdin;
 *         -EBUSY a read or drain is pending on one of p's streams or a
 *         communicate is already running. */
ASP_API int asp_communicate_start(asp_proc *p, const asp_comm_opts *opts,
                                  asp_comm_cb cb, void *data);

/* Blocking communicate. Fills *r (free with asp_result_free) and returns
 * 0 or -ETIMEDOUT (r still filled); other errors as
 * asp_communicate_start, and then r is left empty. */
ASP_API int asp_communicate(asp_proc *p, const asp_comm_opts *opts,
                            asp_result *r);

/* subprocess.run, asynchronously: spawns argv with spawn (NULL: stdin
 * from /dev/null, stdout and stderr piped -- a stdin pipe is added when
 * comm->input is set), communicates with comm (always with
 * ASP_COMM_ESCALATE: run never leaves a child behind), calls cb, and
 * frees the process when cb returns (p is valid during cb only).
 * Errors (returned): a spawn error, or as asp_communicate_start. */
ASP_API int asp_run_start(asp_loop *loop, const char *const argv[],
                          const asp_spawn_opts *spawn,
                          const asp_comm_opts *comm, asp_comm_cb cb,
                          void *data);

/* subprocess.run in one call: asp_run_start on loop, run until done.
 * loop NULL: a private loop is used for the call.
 * Returns as asp_communicate, or a spawn error (r left empty). */
ASP_API int asp_run(asp_loop *loop, const char *const argv[],
                    const asp_spawn_opts *spawn, const asp_comm_opts *comm,
                    asp_result *r);

#ifdef __cplusplus
}
#endif

#endif /* ASPROC_H */
