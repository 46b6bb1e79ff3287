/*
 * child.c - posix_spawn of the writer for the raw C peers (see child.h).
 */
#define _GNU_SOURCE
#include "child.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Makes the channel pair rd/wr for transport (see child.h). */
static void make_channel(const char *transport, int fds[2])
{
    if (strcmp(transport, "socketpair") == 0) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
            bench_die("socketpair", errno);
        return;
    }
    if (pipe2(fds, O_CLOEXEC) != 0)
        bench_die("pipe2", errno);
    if (strcmp(transport, "pipe1m") == 0 &&
        fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) < 0)
        bench_die("F_SETPIPE_SZ 1 MiB", errno);
}

/* posix_spawn of argv with chan (one end of a channel) as its fd chan_to
 * and /dev/null opened with null_flags as its fd null_to; exits with 1
 * (naming what) if that fails. dup2 onto chan_to clears close-on-exec
 * for the child's copy only. */
static pid_t spawn_on(char *const argv[], int chan, int chan_to, int null_to,
                      int null_flags, const char *what)
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, null_to, "/dev/null", null_flags, 0);
    posix_spawn_file_actions_adddup2(&fa, chan, chan_to);
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0)
        bench_die(what, err);
    return pid;
}

/* Waits for pid (through EINTR); returns its wait status. */
static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            bench_die("waitpid", errno);
    return st;
}

/* Starts argv[0] with stdout on a new channel (see child.h). */
void child_start(struct child *c, char *const argv[], const char *transport)
{
    int fds[2];
    make_channel(transport, fds);
    c->pid = spawn_on(argv, fds[1], 1, 0, O_RDONLY, "posix_spawn writer");
    close(fds[1]);
    c->fd = fds[0];
}

/* Closes the read end and waits for the child with status 0. */
void child_finish(struct child *c)
{
    close(c->fd);
    c->fd = -1;
    int st = wait_status(c->pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("writer did not exit 0", EIO);
}

/* Starts the sink on a 1 MiB pipe (see child.h). */
void sink_start(struct child *c, const struct bench_args *a)
{
    char **argv = bench_sink_argv(a);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        bench_die("pipe2", errno);
    if (fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) < 0)
        bench_die("F_SETPIPE_SZ 1 MiB", errno);
    c->pid = spawn_on(argv, fds[0], 0, 1, O_WRONLY, "posix_spawn sink");
    close(fds[0]);
    c->fd = fds[1];
}

/* Closes the write end and waits for the sink's verdict. */
void sink_finish(struct child *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    int st = wait_status(c->pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == BENCH_EXIT_MISMATCH)
        bench_mismatch("the sink saw wrong bytes", 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("sink did not exit 0", EIO);
}
