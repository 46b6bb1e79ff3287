/*
 * internal.h - the process module's private structures and the calls
 * between its files. Nothing here is public API. The module stands on
 * the streams room (../stream) and the reactor (../loop).
 *
 * Files of this folder:
 *   spawn.c        the parent side of spawning (validation, fds, clone)
 *   child.c        the child side between clone and exec (async-signal-safe)
 *   env.c          the child's environment and the program's PATH candidates
 *   proc.c         the process object: per-loop state, reaping, status,
 *                  signals, free
 *   wait.c         waits (async and blocking)
 *   stop.c         the timed kill escalation
 *   communicate.c  communicate and run
 *   pty.c          pseudo-terminals (pty.h): the stdio kind ASP_STDIO_PTY
 *   cgroup.c       cgroup v2 containment (cgroup.h)
 */
#ifndef ASP_PROC_INTERNAL_H
#define ASP_PROC_INTERNAL_H

#include "../stream/internal.h"
#include "cgroup.h"

#include <signal.h>
#include <sys/types.h>

/* Code that runs in the child between clone and exec, on a borrowed stack
 * in a process about to become another program: not instrumented by
 * AddressSanitizer, whose stack bookkeeping only produces noise there. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define ASP__CHILD_CODE __attribute__((no_sanitize("address")))
#endif
#endif
#ifndef ASP__CHILD_CODE
#define ASP__CHILD_CODE
#endif

/* ------------------------------------------------------------ loops */

/* The process module's state of one loop, attached at its first spawn. */
struct asp__procs {
    asp__loop_ext ext;
    asp_loop *loop;
    asp__list live;    /* every unreaped child: open handles and detached */
    asp__list handles; /* every handle not yet freed by the user */
    unsigned nopen;    /* how many: the length of handles */
    asp__list trees;   /* cgroup trees not yet empty (contain.c) */
    int tree_fd;       /* the cgroup notifier, -1 until the first one */
    asp_io tree_io;
    /* The process a spawn of this loop is making, until the spawn
     * returns: linked from the loop so that a memory checker looking at
     * the child's copy of us (valgrind runs vfork as a fork) finds its
     * blocks, known otherwise only to the spawning frame. */
    asp_proc *spawning;
    /* Stack for the clone()d child, reused by every spawn of this loop. */
    void *stack;
    size_t stack_size;
};

/* Gets (attaching at need) the module state of loop. 0 or -errno. */
int asp__procs_get(asp_loop *loop, struct asp__procs **out);

/* ----------------------------------------------------------- process */

/* Where a process is in its life. */
enum asp__proc_phase {
    ASP__PP_RUNNING = 0, /* spawned, not exited */
    ASP__PP_EXITED,      /* status final, the child kept as a zombie: it
                            leads a group that still has members, whose
                            id must not be recycled while we may signal
                            it (Linux; see proc.c) */
    ASP__PP_REAPED       /* status final, the pid is gone */
};

/* The escalation's phase. */
enum asp__stop_phase {
    ASP__STOP_IDLE = 0,
    ASP__STOP_CHILD, /* signalling the child (or its group) step by step */
    ASP__STOP_GROUP  /* the child exited: its group or tree gets the
                        remaining steps */
};

/* What an escalation signals. */
enum { ASP__AT_CHILD = 0, ASP__AT_GROUP, ASP__AT_TREE };

typedef struct asp__stop {
    enum asp__stop_phase phase;
    asp_kill_step steps[ASP_KILL_STEPS_MAX + 1];
    int nsteps;
    int idx;              /* the step whose grace is running */
    int target;           /* ASP__AT_CHILD, _GROUP or _TREE */
    uint64_t step_end_ns; /* end of the current step's grace */
    asp_timer timer;
    asp_stop_cb cb;
    void *data;
} asp__stop;

struct asp__comm;
struct asp__contain_ops;

/* Where a process's tree (the child and what it starts) is. */
enum asp__tree_phase {
    ASP__TREE_LIVE = 0, /* it may have members */
    ASP__TREE_EMPTY     /* every member is gone (and a cgroup removed) */
};

struct asp_proc {
    asp_loop *loop;
    struct asp__procs *ps;
    asp__child watch; /* pid, pidfd, the loop's exit watch */
    asp_status status;
    enum asp__proc_phase phase;
    int freed;       /* the user freed the handle */
    int leader;      /* the child leads its process group */
    int pty;         /* the child's stdio is (partly) a terminal (pty.c) */
    int busy;        /* callbacks of this process on the stack */
    asp__list node;  /* ps->live */
    asp__list hnode; /* ps->handles, until the user frees the handle */
    asp__list waits; /* pending asp_wait, in start order */
    asp__stop stop;
    asp_stream *stdio[3]; /* NULL where not piped */
    struct asp__comm *comm;
    void *data;
    /* Containment (contain.c). */
    const struct asp__contain_ops *contain;
    asp__cgroup cg;
    enum asp__tree_phase tree;
    asp__list tree_node;  /* ps->trees while a cgroup tree lives */
    asp_timer tree_timer; /* process groups: polls for "empty" */
    int tree_ref;         /* holds a loop reference for the tree */
};

/* Guards p across a user callback: release frees p if it was freed and
 * reaped meanwhile. Returns 1 from release when p is gone. */
void asp__proc_hold(asp_proc *p);
int asp__proc_release(asp_proc *p);
/* Checks for p's exit without blocking and completes everything that
 * waits for it. */
void asp__proc_poll(asp_proc *p);
/* Adds a spawned child to its loop (live list, exit watch, reference). */
int asp__proc_register(asp_proc *p);
/* Sends sig to the child (or its group) through the safest path. */
int asp__proc_send(asp_proc *p, int sig, int group);
/* Whether the group p leads has members other than p itself (a zombie
 * leader and zombie members do not count). */
int asp__group_alive(asp_proc *p);
/* Reaps a child kept as a zombie (phase EXITED) once its group needs no
 * more protection. */
void asp__proc_reap_held(asp_proc *p);

/* Completes p's waits with its status (called by the reap path). */
void asp__waits_complete(asp_proc *p);
/* Cancels p's waits with -ECANCELED. */
void asp__waits_cancel(asp_proc *p);
/* The escalation's reap/cancel hooks. */
void asp__stop_reaped(asp_proc *p);
void asp__stop_cancel(asp_proc *p);
/* Normalises kill options into steps; 0 or -EINVAL. */
int asp__kill_normalise(asp_proc *p, const asp_kill_opts *k, asp__stop *st);
/* communicate's hooks (communicate.c). */
void asp__comm_reaped(asp_proc *p);
void asp__comm_cancel(asp_proc *p);

/* --------------------------------------------------------- spawn/env */

/* One fd the child must see: src (parent's fd, -1 to close,
 * ASP__FD_DEVNULL to open /dev/null) as dst. */
#define ASP__FD_DEVNULL (-2)
typedef struct asp__fdmove {
    int src, dst;
    int clear_nb; /* src is non-blocking (one of our new pipes): the child
                     makes dst blocking */
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
    int ctty;   /* >= 0: after setsid, this fd (a terminal's slave)
                   becomes the controlling terminal (pty.c) */
    pid_t pgid; /* -1: keep, 0: new group, > 0: join */
    asp__fdmove *moves;
    int nmoves;
    int *keep; /* sorted targets >= 3 that stay open */
    int nkeep;
    int *srcs; /* sorted distinct sources (closing the rest first) */
    int nsrcs;
    int cgroup_fd;    /* >= 0: join this cgroup (its cgroup.procs) */
    int shared_files; /* cloned with CLONE_FILES: first get an own fd
                         table, copying the fds below cut only */
    int cut;
    int nofile_restore; /* set nofile before the exec (limits.c) */
    struct rlimit nofile;
    volatile int err;     /* errno of the failed step, written by the child */
    volatile int started; /* set by the child first: memory is shared */
    int errfd;            /* >= 0: also write the errno here (see spawn.c) */
} asp__child_ctx;

/* Code that runs in a child between clone/vfork and exec, on a borrowed
 * stack: not instrumented by AddressSanitizer, whose stack bookkeeping
 * there only produces noise (a warning written to whatever fd 2 is at
 * that moment, which may be a pipe the spawn is handing over). */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define ASP__CHILD_CODE __attribute__((no_sanitize("address")))
#endif
#endif
#ifndef ASP__CHILD_CODE
#define ASP__CHILD_CODE
#endif

/* The child's body; never returns. */
int asp__child_main(void *arg);

/* Builds the child's envp (*owned is what to free) and PATH candidates
 * for name (*paths_block is what to free). */
int asp__env_build(const asp_spawn_opts *o, char *const **envp, void **owned);
int asp__paths_build(const char *name, char *const *envp,
                     const char *const **paths, int *npaths, void **owned);

/* ------------------------------------------------------- containment */

/* A containment mechanism (contain.c): prepare before the clone (may set
 * fields of the child's context), started after it (ok: the child runs),
 * signal the tree, whether it has members, release what it holds once
 * the tree is empty (or at teardown: then it kills what is left). */
typedef struct asp__contain_ops {
    enum asp_contain id;
    int (*prepare)(asp_proc *p, const asp_spawn_opts *o, asp__child_ctx *c);
    void (*started)(asp_proc *p, int ok);
    int (*signal)(asp_proc *p, int sig);
    int (*alive)(asp_proc *p);
    void (*release)(asp_proc *p);
} asp__contain_ops;
int asp__contain_prepare(asp_proc *p, const asp_spawn_opts *o,
                         asp__child_ctx *c);
/* The tree was found empty: everything waiting for it learns (proc.c). */
void asp__tree_empty(asp_proc *p);
/* The poll for "empty" where no event tells (proc.c). */
void asp__tree_poll(asp_proc *p);
int asp__tree_poll_wanted(asp_proc *p);
/* Tree waits (wait.c): complete them; whether one is pending. */
void asp__waits_tree_complete(asp_proc *p);
int asp__waits_tree_pending(asp_proc *p);

#endif
