/* Seed section 3: a child with a lot of output; communicate() feeds stdin,
 * reads stdout and stderr together and waits, so no pipe can fill up and
 * deadlock. The child prints 10000 lines of 100 'x'. */
#include <asproc.h>
#include <stdio.h>

int main(void)
{
    const char *cmd[] = {
        "awk",
        "BEGIN { s = sprintf(\"%100s\", \"\"); "
        "gsub(/ /, \"x\", s); for (i = 0; i < 10000; i++) print s }",
        NULL};
    asp_spawn_opts o = {0};
    asp_loop *loop;
    asp_proc *p;
    asp_result r;

    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    if (asp_loop_new(&loop, NULL) < 0 || asp_spawn(loop, &p, cmd, &o) < 0)
        return 1;
    if (asp_communicate(p, NULL, &r) < 0) /* until EOF and exit */
        return 1;
    printf("返回码: %d\n", asp_status_returncode(&r.status));
    printf("输出长度: %zu 字节, 错误长度: %zu 字节\n", r.out_len, r.err_len);
    asp_result_free(&r);
    asp_proc_free(p, ASP_FREE_DETACH);
    asp_loop_free(loop);
    return 0;
}
