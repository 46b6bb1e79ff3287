/*
 * harness_proc.c - the test helpers that use the process module: spawning
 * the helper child, piped options, reading and waiting. Kept apart from
 * harness.c so that the loop suites link with the reactor alone.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <string.h>

/* Spawns the helper child; argv[0] is its path. */
asp_proc *asp_t_spawnv(asp_loop *loop, const asp_spawn_opts *o,
                       const char *const *actions)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = asp_t_child_path();
    while (*actions && n < 63)
        argv[n++] = *actions++;
    argv[n] = NULL;
    asp_proc *p = NULL;
    int r = asp_spawn(loop, &p, argv, o);
    ck_assert_msg(r == 0, "asp_spawn: %s", asp_strerror(r));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Options with the chosen streams piped. */
asp_spawn_opts asp_t_piped(int out, int err, int in)
{
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    if (out)
        o.stdio[1].mode = ASP_STDIO_PIPE;
    if (err)
        o.stdio[2].mode = ASP_STDIO_PIPE;
    if (in)
        o.stdio[0].mode = ASP_STDIO_PIPE;
    return o;
}

/* Reads to EOF. */
char *asp_t_read_all(asp_stream *s, size_t *len)
{
    char *buf = NULL;
    ssize_t n = asp_stream_read_all(s, &buf);
    ck_assert_msg(n >= 0, "read_all: %s", asp_strerror((int)n));
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Waits for p. */
asp_status asp_t_wait(asp_proc *p)
{
    asp_status st;
    int r = asp_proc_wait(p, ASP_FOREVER, &st);
    ck_assert_msg(r == 0, "asp_proc_wait: %s", asp_strerror(r));
    return st;
}

/* Frees p. */
void asp_t_free(asp_proc *p)
{
    int r = asp_proc_free(p, ASP_FREE_DETACH);
    ck_assert_msg(r == 0, "asp_proc_free: %s", asp_strerror(r));
}
