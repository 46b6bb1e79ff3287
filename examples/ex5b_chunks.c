/* Seed section 5B: read a child's output in chunks of at most 1024 bytes,
 * from stdout and stderr at once; suits binary data. The child writes
 * three blocks of 4096 'x' and a newline, 0.2 s apart. */
#include <asproc.h>
#include <stdio.h>

/* Called for every chunk; len 0 is EOF. */
static void on_chunk(asp_stream *s, int err, const char *buf, size_t len,
                     void *name)
{
    (void)s;
    (void)buf;
    if (err == 0 && len > 0)
        printf("[%s] got %zu bytes\n", (const char *)name, len);
    fflush(stdout);
}

int main(void)
{
    const char *cmd[] = {"sh", "-c",
                         "for i in 1 2 3; do printf '%4096s\\n' '' | tr ' ' x; "
                         "sleep 0.2; done",
                         NULL};
    asp_spawn_opts o = {0};
    asp_loop *loop;
    asp_proc *p;

    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    if (asp_loop_new(&loop, NULL) < 0 || asp_spawn(loop, &p, cmd, &o) < 0)
        return 1;
    asp_stream_on_chunks(asp_proc_stdout(p), 1024, on_chunk, (void *)"STDOUT");
    asp_stream_on_chunks(asp_proc_stderr(p), 1024, on_chunk, (void *)"STDERR");
    asp_proc_wait(p, ASP_FOREVER, NULL);
    asp_loop_run(loop, ASP_RUN_DEFAULT); /* gather: readers reach EOF */
    asp_proc_free(p, ASP_FREE_DETACH);
    asp_loop_free(loop);
    return 0;
}
