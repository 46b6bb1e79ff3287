/*
 * test_threads.c - loops in several threads spawning at once: no pipe of
 * one thread's spawn leaks into another's child (each child sees exactly
 * fds 0-2), and each loop reaps only its own children.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PER_THREAD 200

typedef struct {
    int ok, bad;
    char first_bad[128];
} thread_res;

/* One thread: its own loop, PER_THREAD children, each listing its fds. */
static void *spawner(void *arg)
{
    thread_res *res = arg;
    asp_loop *loop = NULL;
    if (asp_loop_new(&loop, NULL) < 0) {
        res->bad = -1;
        return NULL;
    }
    const char *argv[] = {asp_t_child_path(), "fds", "exit", "3", NULL};
    asp_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.stdio[0].mode = ASP_STDIO_PIPE;
    o.stdio[1].mode = ASP_STDIO_PIPE;
    o.stdio[2].mode = ASP_STDIO_PIPE;
    for (int i = 0; i < PER_THREAD; i++) {
        asp_proc *p = NULL;
        if (asp_spawn(loop, &p, argv, &o) < 0) {
            res->bad++;
            continue;
        }
        asp_stream_close(asp_proc_stdin(p));
        char *out = NULL;
        asp_stream_read_all(asp_proc_stdout(p), &out);
        asp_status st;
        int r = asp_proc_wait(p, ASP_FOREVER, &st);
        if (r == 0 && st.kind == ASP_EXIT_CODE && st.code == 3 && out &&
            !strcmp(out, "0 1 2\n")) {
            res->ok++;
        } else {
            if (!res->bad)
                snprintf(res->first_bad, sizeof res->first_bad,
                         "r=%d kind=%d code=%d out=%s", r, st.kind, st.code,
                         out ? out : "(null)");
            res->bad++;
        }
        asp_free(out);
        asp_proc_free(p, ASP_FREE_DETACH);
    }
    asp_loop_free(loop);
    return NULL;
}

START_TEST(threads_two_loops_spawn_concurrently)
{
    pthread_t th[2];
    thread_res res[2];
    memset(res, 0, sizeof res);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, spawner, &res[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(res[i].bad == 0, "thread %d: %d bad, first: %s", i,
                      res[i].bad, res[i].first_bad);
        ck_assert_int_eq(res[i].ok, PER_THREAD);
    }
}
END_TEST

/* The threads suite. */
Suite *suite_threads(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = asp_t_case("threads", 120);
    tcase_add_test(tc, threads_two_loops_spawn_concurrently);
    suite_add_tcase(s, tc);
    return s;
}
