/* A seventh example, beyond the seed: a program on a pseudo-terminal
 * believes it has a terminal. The same question asked over a pipe first;
 * then a shell on a 24 x 80 terminal tells its terminal's name and size,
 * the terminal is resized to 50 x 132 while the shell waits for a line,
 * and the shell sees the new size. */
#include <asproc.h>
#include <stdio.h>
#include <string.h>

typedef struct demo {
    asp_proc *p;
    int resized;
} demo;

/* Every line the terminal outputs (with "\r\n": a terminal's newline);
 * after the first size, resize and send the line the shell waits for. */
static void on_line(asp_stream *s, int err, const char *line, size_t len,
                    void *data)
{
    demo *d = data;
    (void)s;
    if (err != 0 || len == 0)
        return; /* end of the terminal: drained */
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    printf("[pty] %.*s\n", (int)len, line);
    if (!d->resized && len == 5 && !memcmp(line, "24 80", 5)) {
        d->resized = 1;
        asp_proc_resize(d->p, 50, 132);
        printf("(resized to 50 x 132)\n");
        asp_stream_write(asp_proc_stdin(d->p), "\n", 1);
    }
    fflush(stdout);
}

int main(void)
{
    const char *pipe_cmd[] = {
        "sh", "-c",
        "if [ -t 1 ]; then echo terminal; else echo 'not a terminal'; fi",
        NULL};
    const char *pty_cmd[] = {"sh", "-c",
                             "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && "
                             "echo 'stdin, stdout, stderr: terminals'; "
                             "tty; stty size; read line; stty size",
                             NULL};
    asp_result r;
    asp_spawn_opts o = {0};
    asp_loop *loop;
    asp_status st;
    demo d = {NULL, 0};

    if (asp_run(NULL, pipe_cmd, NULL, NULL, &r) < 0)
        return 1;
    printf("pipe: %s", r.out);
    asp_result_free(&r);

    for (int i = 0; i < 3; i++)
        o.stdio[i].mode = ASP_STDIO_PTY;
    o.pty.rows = 24;
    o.pty.cols = 80;
    o.pty.flags = ASP_PTY_NOECHO; /* the line we send is not shown */
    if (asp_loop_new(&loop, NULL) < 0 || asp_spawn(loop, &d.p, pty_cmd, &o) < 0)
        return 1;
    asp_stream_on_lines(asp_proc_stdout(d.p), 0, on_line, &d);
    asp_proc_wait(d.p, ASP_FOREVER, &st); /* the lines print meanwhile */
    asp_loop_run(loop, ASP_RUN_DEFAULT);  /* and the rest, to the end */
    printf("exit code: %d\n", asp_status_returncode(&st));
    asp_proc_free(d.p, ASP_FREE_DETACH);
    asp_loop_free(loop);
    return 0;
}
