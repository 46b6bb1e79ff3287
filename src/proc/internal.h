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
 */
#ifndef ASP_PROC_INTERNAL_H
#define ASP_PROC_INTERNAL_H

#include "../stream/internal.h"

#include <signal.h>
#include <sys/types.h>

/* ------------------------------------------------------------ loops */

/* The process module's state of one loop, attached at its first spawn. */
struct asp__procs {
    asp__loop_ext ext;
    asp_loop *loop;
    asp__list live;    /* every unreaped child: open handles and detached */
    asp__list handles; /* every handle not yet freed by the user */
    unsigned nopen;    /* how many: the length of handles */
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
    ASP__STOP_GROUP  /* leader reaped: the group gets the remaining steps */
};

typedef struct asp__stop {
    enum asp__stop_phase phase;
    asp_kill_step steps[ASP_KILL_STEPS_MAX + 1];
    int nsteps;
    int idx;              /* the step whose grace is running */
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
    asp__child watch; /* pid, pidfd, the loop's exit watch */
    asp_status status;
    enum asp__proc_phase phase;
    int freed;  /* the user freed the handle */
    int leader; /* the child leads its process group */
    int busy;   /* callbacks of this process on the stack */
    asp__list node;  /* ps->live */
    asp__list hnode; /* ps->handles, until the user frees the handle */
    asp__list waits; /* pending asp_wait, in start order */
    asp__stop stop;
    asp_stream *stdio[3]; /* NULL where not piped */
    struct asp__comm *comm;
    void *data;
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
    int *keep;  /* sorted targets >= 3 that stay open */
    int nkeep;
    int *srcs;  /* sorted distinct sources (closing the rest first) */
    int nsrcs;
    volatile int err;     /* errno of the failed step, written by the child */
    volatile int started; /* set by the child first: memory is shared */
    int errfd; /* >= 0: also write the errno here (see spawn.c) */
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
int asp__env_build(const asp_spawn_opts *o, char *const **envp,
                   void **owned);
int asp__paths_build(const char *name, char *const *envp,
                     const char *const **paths, int *npaths,
                     void **owned);

#endif
