/* Seed section 4: a timeout on wait() does not stop the child. On timeout:
 * terminate, give it 1 s, kill, wait -- then collecting the output is safe.
 * The child is "sh -c 'sleep 10; echo done'": sh runs sleep as its own
 * child, so the escalation is aimed at the process group the child leads,
 * or sleep would outlive sh and keep the pipes open. */
#include <asproc.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>

/* Runs cmd; stops it if it outlives timeout_ms; fills r. */
static int run_with_timeout(asp_loop *loop, const char *const *cmd,
                            int64_t timeout_ms, asp_result *r)
{
    asp_spawn_opts o = {0};
    asp_proc *p;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    o.flags = ASP_SPAWN_NEW_PGROUP;
    int e = asp_spawn(loop, &p, cmd, &o);
    if (e < 0)
        return e;
    if (asp_proc_wait(p, timeout_ms, NULL) == -ETIMEDOUT) {
        printf("超时：尝试终止子进程……\n");
        /* terminate(); wait up to 1 s; kill(); wait() -- as data. */
        asp_kill_opts k = {{{SIGTERM, 1000}, {SIGKILL, 0}}, ASP_KILL_GROUP};
        asp_status st;
        asp_proc_stop(p, &k, &st);
        if (st.kind == ASP_EXIT_SIGNAL && st.signal == SIGKILL)
            printf("终止失败，强制杀死……\n");
    }
    e = asp_communicate(p, NULL, r); /* the child has exited for sure */
    asp_proc_free(p, ASP_FREE_DETACH);
    return e;
}

int main(void)
{
    const char *cmd[] = {"sh", "-c", "sleep 10; echo done", NULL};
    asp_loop *loop;
    asp_result r;

    if (asp_loop_new(&loop, NULL) < 0 ||
        run_with_timeout(loop, cmd, 2000, &r) < 0)
        return 1;
    printf("返回码: %d\n", asp_status_returncode(&r.status));
    printf("输出: %s\n", r.out);
    asp_result_free(&r);
    asp_loop_free(loop);
    return 0;
}
