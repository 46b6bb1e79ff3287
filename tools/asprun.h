/*
 * asprun.h - what the two files of the asprun tool share: its options and
 * the state of one run. asprun.c has the command line, the spawn, the
 * timeout, the signals and the summary; asprun_pty.c the terminal of
 * --pty (the child's output copied to ours, our input to the child, our
 * window size passed on).
 */
#ifndef ASPRUN_H
#define ASPRUN_H

#include "asproc.h"

#include <termios.h>

enum kill_what { KILL_CHILD, KILL_GROUP, KILL_TREE };

typedef struct opts {
    int64_t timeout_ms;
    int64_t grace_ms;
    enum kill_what kill;
    int rusage, json;
    int pty;                   /* --pty */
    unsigned short rows, cols; /* --size; 0: our terminal's, or 24x80 */
    char **argv;
} opts;

/* What the run came to. */
typedef struct run {
    asp_loop *loop;
    asp_proc *p;
    const opts *o;
    int exited, timed_out;
    asp_status st;
    int finished; /* exited, and with --pty the terminal drained too */
    /* --pty */
    int drained;  /* the output forward ended */
    asp_io in_io; /* our stdin, copied to the terminal */
    int in_watched;
    int raw; /* our stdin is a terminal put in raw mode */
    struct termios saved;
} run;

/* --pty: the spawn options of a terminal child. */
void pty_spawn_opts(const opts *o, asp_spawn_opts *so);
/* --pty: starts the copies in both directions (and our raw mode). 0 or a
 * negative errno (said on stderr). */
int pty_start(run *r);
/* --pty: passes our window size on (after SIGWINCH). */
void pty_resize(run *r);
/* --pty: stops the input copy and puts our terminal back. */
void pty_finish(run *r);
/* Recomputes r->finished (the exit, and with --pty the drain). */
void run_check_finished(run *r);

#endif
