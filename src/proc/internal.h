/*
 * internal.h - the process module's private structures and the calls
 * between its files. Nothing here is public API.
 *
 * Files of this folder:
 *   source.c  choosing and running the child-exit source of a loop
 *   hub.c     the process-wide SIGCHLD fan-out for the signal sources
 *   spawn.c   the parent side of spawning (validation, fds, clone)
 *   child.c   the child side between clone and exec (async-signal-safe)
 *   env.c     the child's environment and the program's PATH candidates
 *   proc.c    the process object: reaping, status, signals, free
 *   wait.c    waits (async and blocking)
 *   stop.c    the timed kill escalation
 *   stream.c  output streams: buffer, reads, lines, backpressure, eof grace
 *   wstream.c the stdin stream: queued writes, drain, EPIPE without SIGPIPE
 *   communicate.c  communicate and run
 */
#ifndef ASP_PROC_INTERNAL_H
#define ASP_PROC_INTERNAL_H

#include "../loop/internal.h"

#include <signal.h>
#include <sys/types.h>

/* ------------------------------------------------------------ loops */

struct asp__hub_slot;

/* The process module's state of one loop, created at its first spawn. */
struct asp__procs {
    asp_loop *loop;
    asp_proc *live;     /* every unreaped child: open handles and detached */
    unsigned nopen;     /* handles not yet freed by the user */
    int ready;          /* the child-exit source is set up */

    /* Signal sources: a notifier registered with the hub. */
    asp__notifier note;
    asp_io note_io;
    struct asp__hub_slot *slot;
    int sigfd; /* signalfd source */
    asp_io sigfd_io;
    asp_timer ign_timer; /* signalfd source while SIGCHLD is SIG_IGN */

    /* Stack for the clone()d child, reused by every spawn of this loop. */
    void *stack;
    size_t stack_size;
};

/* Gets (creating at need) the module state of loop and makes sure its
 * child-exit source runs. 0 or -errno. */
int asp__procs_get(asp_loop *loop, struct asp__procs **out);

/* Source plumbing (source.c). */
int asp__source_start(struct asp__procs *ps);
void asp__source_stop(struct asp__procs *ps);
/* A child was added to ps->live (signalfd: see source.c). */
void asp__source_spawned(struct asp__procs *ps);
/* 1 pidfd works, 0 not, -errno the probe could not run (not cached). */
int asp__pidfd_supported(void);

/* The hub (hub.c): process-wide list of notifiers to post on SIGCHLD.
 * with_handler installs (first user) the SIGCHLD handler. */
int asp__hub_join(const asp__notifier *n, int with_handler,
                  struct asp__hub_slot **out);
void asp__hub_leave(struct asp__hub_slot *slot, int with_handler);
void asp__hub_broadcast(void);

/* ----------------------------------------------------------- streams */

/* asp_stream.flags */
#define ASP__S_CLOSED 0x1u   /* fd closed (by the user, free, or a cut) */
#define ASP__S_EOF 0x2u      /* read side reached EOF */
#define ASP__S_CUT 0x4u      /* EOF forced by the eof grace */
#define ASP__S_PAUSED 0x8u   /* continuous reader paused by the user */
#define ASP__S_EXITED 0x10u  /* the child was reaped */
#define ASP__S_GRACE 0x20u   /* the eof grace has expired */
#define ASP__S_SOCKET 0x40u  /* the transport is a socketpair */
#define ASP__S_WERR 0x80u    /* stdin: the pipe is broken (EPIPE) */
#define ASP__S_INDISPATCH 0x100u
#define ASP__S_FIXED 0x200u  /* transport size chosen: no adaptive growth */
#define ASP__S_NOMEM 0x400u  /* reading stopped for lack of memory */

/* Read request kinds. */
enum {
    ASP__R_NONE = 0,
    ASP__R_READ,   /* up to n */
    ASP__R_EXACT,  /* exactly n */
    ASP__R_LINE,   /* one line */
    ASP__R_UNTIL,  /* through sep */
    ASP__R_CHUNKS, /* continuous chunks of at most n */
    ASP__R_LINES,  /* continuous lines */
    ASP__R_SINK,   /* communicate: everything into a capture */
    ASP__R_FORWARD /* everything to an fd (forward.c) */
};

/* What one read (or splice) from an output stream came to. */
enum { ASP__FILL_BUSY = -3, /* nothing moved, the source may hold data */
       ASP__FILL_ERR = -2, ASP__FILL_AGAIN = -1, ASP__FILL_EOF = 0,
       ASP__FILL_FULL = 1, ASP__FILL_SHORT = 2 };

struct asp__capture;

/* One write waiting in the stdin queue; data follows the header (copied)
 * or is referenced (communicate's input). */
typedef struct asp__wchunk {
    struct asp__wchunk *next;
    const char *data;
    size_t len, off;
} asp__wchunk;

struct asp_stream {
    asp_proc *proc;
    int which; /* 0 stdin, 1 stdout, 2 stderr */
    int fd;
    asp_io io;
    unsigned flags;

    /* Output streams: buf[start, end) is unread data. */
    char *buf;
    size_t cap, start, end;
    size_t bufsize; /* the size buf grows to for reading */
    size_t high_water;
    size_t carried; /* bytes read so far (until the pipe is grown) */

    int req;
    size_t req_n;       /* READ/EXACT/CHUNKS size; UNTIL/LINES limit */
    char sep[16];
    size_t seplen;
    size_t scanned;     /* bytes of [start, end) known not to hold sep */
    asp_read_cb cb;
    void *cb_data;
    struct asp__capture *sink; /* ASP__R_SINK target */

    asp_timer grace; /* eof grace after the child's exit */
    int64_t grace_ms;
    asp_timer kick;  /* deferred dispatch: callbacks never run inside the
                        call that made a request */

    /* stdin */
    asp__wchunk *wq_head, *wq_tail;
    size_t wq_bytes;
    asp_drain_cb drain_cb;
    void *drain_data;

    /* ASP__R_FORWARD (forward.c) */
    int fwd_fd;        /* the stream's own duplicate of the target */
    int fwd_splice;    /* splice(2) may work for this pair of fds */
    int fwd_guard;     /* the target can raise SIGPIPE (pipe, socket) */
    int fwd_blocked;   /* the target is full: reading waits for it */
    int fwd_err;       /* a write to the target failed: ends forwarding */
    size_t fwd_total;  /* bytes forwarded */
    asp_io fwd_io;     /* the target's writability while blocked */
};

/* Sets up p->streams[which] over fd (never fails, allocates nothing). */
asp_stream *asp__stream_new(asp_proc *p, int which, int fd, unsigned flags,
                            const asp_spawn_opts *o);
/* Completes pending requests with -ECANCELED, closes the fd, frees. */
void asp__stream_free(asp_stream *s);
/* The child was reaped: output streams start their eof grace. */
void asp__stream_child_exited(asp_stream *s);
/* Re-evaluates polling interest of an output stream. */
void asp__stream_update(asp_stream *s);
/* Delivers what can be delivered to the pending request. */
void asp__stream_dispatch(asp_stream *s);
/* Stops reading: closes the fd and marks the stream closed. */
void asp__stream_close_fd(asp_stream *s);
/* stdin internals (wstream.c). asp__wchunk_ref allocates a chunk that
 * references buf (NULL when out of memory); asp__wstream_push queues it and
 * writes what the pipe takes. */
void asp__wstream_drop_queue(asp_stream *s);
asp__wchunk *asp__wchunk_ref(const void *buf, size_t len);
void asp__wstream_push(asp_stream *s, asp__wchunk *c);
void asp__wstream_cancel(asp_stream *s);
/* SIGPIPE-free writes (wstream.c): between enter and leave the calling
 * thread has SIGPIPE blocked; leave, told that the call may have raised
 * one (check: an EPIPE, a partial splice into a socket), consumes it
 * unless one was already pending at enter (that one is someone else's). */
typedef struct asp__pipe_guard {
    sigset_t old;
    int was_pending;
} asp__pipe_guard;
void asp__pipe_guard_enter(asp__pipe_guard *g);
void asp__pipe_guard_leave(asp__pipe_guard *g, int check);

/* Forwarding (forward.c). setup takes a duplicate of fd (-EBADF when it
 * is not open for writing, -EMFILE); splice moves bytes from the stream's
 * fd to the target without a copy and returns an ASP__FILL_* code (moved
 * bytes in *n; AGAIN only when the source is empty; BUSY when nothing
 * moved but the source may hold data, fwd_blocked set if the target is
 * full; ERR: fwd_err is set, or splice cannot serve this pair and
 * fwd_splice is cleared); write copies buffered bytes to the target and
 * returns how many it took (0: full, fwd_blocked set; or fwd_err set);
 * release closes the duplicate and stops watching it. */
int asp__fwd_setup(asp_stream *s, int fd);
int asp__fwd_splice(asp_stream *s, size_t *n);
size_t asp__fwd_write(asp_stream *s, const char *buf, size_t len);
void asp__fwd_release(asp_stream *s);

/* Calls back through the stream, guarding p; returns 1 if p is gone. */
int asp__stream_call(asp_stream *s, int err, const char *buf, size_t len);

/* A growing capture buffer (communicate). Large captures live in an
 * mmap'd region grown with mremap and backed by huge pages where the
 * kernel allows, so growth never copies and peak memory stays at the
 * captured size. The data starts ASP__CAP_HDR bytes into the block; the
 * header says how to free it. */
#define ASP__CAP_HDR 16
typedef struct asp__capture {
    char *block; /* header + data */
    size_t len;  /* data bytes kept */
    size_t room; /* data bytes the block can hold */
    size_t cap;  /* 0: unlimited */
    size_t total; /* bytes seen, kept or not */
    size_t ready; /* block bytes known to be faulted in (mapped only) */
    int mapped;
    int small;    /* huge pages proved slow: small pages from here on */
    int slow;     /* slow huge prefault steps in a row */
    int touch;    /* MADV_POPULATE_WRITE refused: fault in by touching */
    int failed;   /* memory ran out: later bytes were discarded */
} asp__capture;
/* Makes room for a direct read of up to want more bytes; returns where to
 * write, or NULL when nothing may be kept (cap reached, or out of memory:
 * then failed is set) and the caller reads elsewhere and discards. */
char *asp__capture_space(asp__capture *c, size_t want, size_t *room);
/* Appends bytes, keeping at most cap; out of memory sets failed and
 * discards. */
void asp__capture_add(asp__capture *c, const char *b, size_t n);
/* Hands the data out as a NUL-terminated buffer for asp_result. */
char *asp__capture_take(asp__capture *c, size_t *len);
void asp__capture_free(asp__capture *c);
/* How slow a huge prefault step must be to count as slow (ns); tests set
 * it to 0 to force the switch to small pages. */
extern uint64_t asp__capture_slow_ns;

/* ----------------------------------------------------------- process */

/* asp_proc.flags */
#define ASP__P_FREED 0x1u   /* the user freed the handle */
#define ASP__P_REAPED 0x2u  /* status is final */
#define ASP__P_LEADER 0x4u  /* the child leads its process group */

/* The escalation's state. */
typedef struct asp__stop {
    int active;
    asp_kill_step steps[ASP_KILL_STEPS_MAX + 1];
    int nsteps;
    int idx;        /* the step whose grace is running */
    int group;
    uint64_t step_end_ns; /* end of the current step's grace */
    asp_timer timer;
    asp_stop_cb cb;
    void *data;
} asp__stop;

struct asp__comm;

struct asp_proc {
    asp_loop *loop;
    struct asp__procs *ps;
    pid_t pid;
    int pidfd;
    asp_io pidfd_io;
    asp_status status;
    unsigned flags;
    int busy; /* callbacks of this process on the stack */
    asp_proc *next, *prev; /* live list */
    asp_wait *waits_head, *waits_tail;
    asp__stop stop;
    asp_stream *stdio[3];      /* NULL where not piped */
    struct asp_stream streams[3]; /* embedded: freed with p, never before */
    struct asp__comm *comm;
    void *data;
};

/* Guards p across a user callback: release frees p if it was freed
 * meanwhile. Returns 1 from release when p is gone. */
void asp__proc_hold(asp_proc *p);
int asp__proc_release(asp_proc *p);

/* Checks for p's exit without blocking and completes everything that
 * waits for it. */
void asp__proc_poll(asp_proc *p);
/* Adds a spawned child to its loop (live list, exit watch, reference). */
int asp__proc_register(asp_proc *p);
/* Sends sig to the child (or its group) through the safest path. */
int asp__proc_send(asp_proc *p, int sig, int group);

/* Completes p's waits with its status (called by the reap path). */
void asp__waits_complete(asp_proc *p);
/* Cancels p's waits with -ECANCELED. */
void asp__waits_cancel(asp_proc *p);
/* The escalation's reap/cancel hooks. */
void asp__stop_reaped(asp_proc *p);
void asp__stop_cancel(asp_proc *p);
/* communicate's hooks (communicate.c). */
void asp__comm_reaped(asp_proc *p);
void asp__comm_stream_done(asp_stream *s);
void asp__comm_cancel(asp_proc *p);

/* Normalises kill options into steps; 0 or -EINVAL. */
int asp__kill_normalise(asp_proc *p, const asp_kill_opts *k, asp__stop *st);

/* --------------------------------------------------------- spawn/env */

/* One fd the child must see: src (parent's fd, -1 to close) as dst. */
typedef struct asp__fdmove {
    int src, dst;
} asp__fdmove;

/* Everything the child needs, prepared by the parent so that the child
 * only makes system calls. Shared with the child (CLONE_VM / vfork). */
typedef struct asp__child_ctx {
    const char *const *argv;
    char *const *envp;
    const char *const *paths; /* candidates for execve, in order */
    int npaths;
    const char *cwd;
    int setsid;
    pid_t pgid; /* -1: keep, 0: new group, > 0: join */
    asp__fdmove *moves;
    int nmoves;
    int *keep;  /* sorted child fds >= 3 that stay open */
    int nkeep;
    int *lifted; /* scratch, nmoves entries */
    int lift_min;
    volatile int err; /* errno of the failed step, written by the child */
    volatile int started; /* set by the child first: memory is shared */
    int errfd; /* >= 0: also write the errno here (see spawn.c) */
} asp__child_ctx;

/* The child's body; never returns. */
int asp__child_main(void *arg);

/* Builds the child's envp (*owned is what to free) and PATH candidates
 * for name (*paths_block is what to free). */
int asp__env_build(const asp_spawn_opts *o, char *const **envp,
                   void **owned);
int asp__paths_build(const char *name, char *const *envp,
                     const char *const **paths, int *npaths,
                     void **owned);

#endif
