/*
 * child.h - starting the writer with plain posix_spawn for the raw C
 * peers, over a pipe, a 1 MiB pipe or a socketpair; and the sink every
 * peer forwards into.
 */
#ifndef BENCH_CHILD_H
#define BENCH_CHILD_H

#include <sys/types.h>

struct bench_args;

struct child {
    pid_t pid;
    int fd; /* the parent's read end of the child's stdout */
};

/* Starts argv[0] with stdout connected to a new channel of the named
 * transport ("pipe", "pipe1m": a pipe raised to 1 MiB with F_SETPIPE_SZ,
 * "socketpair": AF_UNIX stream pair; "epoll" means "pipe" here) and stdin
 * from /dev/null. The read end is blocking and close-on-exec. Exits with
 * 1 on any failure. */
void child_start(struct child *c, char *const argv[], const char *transport);

/* Closes the read end and waits for the child. Exits with 1 unless the
 * child exited with status 0. */
void child_finish(struct child *c);

/* Starts the writer as a sink (writer --sink) for a->size bytes, pinned to
 * a->child_cpu, checking the bytes when a->verify is set. Its stdin is a
 * new pipe raised to 1 MiB; c->fd is the parent's write end (blocking,
 * close-on-exec). Exits with 1 on any failure. */
void sink_start(struct child *c, const struct bench_args *a);

/* Closes the write end (the sink sees EOF) and waits: a sink that found
 * the bytes wrong (exit 2) ends the run as a mismatch; any other failure
 * exits with 1. */
void sink_finish(struct child *c);

#endif
