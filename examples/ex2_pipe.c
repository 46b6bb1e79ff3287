/* Seed section 2: stdout into a pipe; wait; then read it all and print the
 * first 200 characters. Unlike a bare pipe, the stream keeps reading while
 * wait() runs, so a large output cannot block the child here. */
#include <asproc.h>
#include <stdio.h>

int main(void)
{
    const char *cmd[] = {"ls", "-la", NULL};
    asp_spawn_opts o = {0};
    asp_loop *loop;
    asp_proc *p;
    char *data;

    o.stdio[1].mode = ASP_STDIO_PIPE;
    if (asp_loop_new(&loop, NULL) < 0 || asp_spawn(loop, &p, cmd, &o) < 0)
        return 1;
    printf("子进程 PID: %d\n", (int)asp_proc_pid(p));
    asp_proc_wait(p, ASP_FOREVER, NULL);
    if (asp_stream_read_all(asp_proc_stdout(p), &data) < 0)
        return 1;
    printf("%.200s\n", data); /* only the first 200 characters */
    asp_free(data);
    asp_proc_free(p, ASP_FREE_DETACH);
    asp_loop_free(loop);
    return 0;
}
