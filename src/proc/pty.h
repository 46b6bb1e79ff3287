/*
 * pty.h - the pseudo-terminal stdio kind (pty.c): what spawn.c and
 * child.c call. The public side is ASP_STDIO_PTY, asp_spawn_opts.pty and
 * asp_proc_resize (asproc.h, "Pseudo-terminals").
 */
#ifndef ASP_PROC_PTY_H
#define ASP_PROC_PTY_H

#include "internal.h"

/* Checks o's terminal options; nothing is created. 0, -EINVAL (see the
 * header) or -ENOTSUP (no TIOCSCTTY on this system). */
int asp__pty_validate(const asp_spawn_opts *o);

/* Whether o puts any of fds 0-2 on a terminal. */
int asp__pty_wanted(const asp_spawn_opts *o);

/* The output (1 or 2) whose stream reads the terminal of o. */
int asp__pty_reader(const asp_spawn_opts *o);

/* Opens the terminal of o: *master non-blocking and off 0-2, *slave
 * blocking, both close-on-exec, with o's window size and modes set.
 * 0 or -errno, and then nothing is left open. */
int asp__pty_open(const asp_spawn_opts *o, int *master, int *slave);

/* A close-on-exec duplicate of master, off 0-2 (the writer's own fd:
 * the loop takes one watcher per fd). The fd or -errno. */
int asp__pty_dup(int master);

/* The child side, after setsid(): fd (the slave) becomes the controlling
 * terminal of the new session. Async-signal-safe; 0, or -1 with errno. */
int asp__pty_attach(int fd);

#endif
