/* Seed section 5A: print a child's stdout and stderr line by line as they
 * come, both at once (neither stream can block the other). */
#include <asproc.h>
#include <stdio.h>

/* Called for every line; len 0 is EOF. */
static void on_line(asp_stream *s, int err, const char *line, size_t len,
                    void *name)
{
    (void)s;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--; /* rstrip() */
    if (err == 0 && line)
        printf("[%s] %.*s\n", (const char *)name, (int)len, line);
    fflush(stdout);
}

int main(void)
{
    const char *cmd[] = {
        "sh", "-c", "for i in 0 1 2 3 4; do echo \"line $i\"; sleep 0.5; done",
        NULL};
    asp_spawn_opts o = {0};
    asp_loop *loop;
    asp_proc *p;
    asp_status st;

    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    if (asp_loop_new(&loop, NULL) < 0 || asp_spawn(loop, &p, cmd, &o) < 0)
        return 1;
    asp_stream_on_lines(asp_proc_stdout(p), 0, on_line, (void *)"STDOUT");
    asp_stream_on_lines(asp_proc_stderr(p), 0, on_line, (void *)"STDERR");
    asp_proc_wait(p, ASP_FOREVER, &st);  /* the lines print meanwhile */
    asp_loop_run(loop, ASP_RUN_DEFAULT); /* gather: readers reach EOF */
    printf("返回码: %d\n", asp_status_returncode(&st));
    asp_proc_free(p, ASP_FREE_DETACH);
    asp_loop_free(loop);
    return 0;
}
