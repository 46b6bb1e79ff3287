/* Seed section 1: start a program exec-style (no shell), print its pid,
 * wait for it, print the exit code. Shell style is asp_spawn_shell(). */
#include <asproc.h>
#include <stdio.h>

int main(void)
{
    const char *cmd[] = {"ls", "-l", NULL}; /* a Unix-only library: ls */
    asp_loop *loop;
    asp_proc *p;
    asp_status st;

    if (asp_loop_new(&loop, NULL) < 0 || asp_spawn(loop, &p, cmd, NULL) < 0)
        return 1;
    printf("子进程 PID: %d\n", (int)asp_proc_pid(p));
    fflush(stdout);
    asp_proc_wait(p, ASP_FOREVER, &st); /* until the child exits */
    printf("返回码: %d\n", asp_status_returncode(&st));
    asp_proc_free(p, ASP_FREE_DETACH);
    asp_loop_free(loop);
    return 0;
}
