/*
 * test_fork.c - a host that forks while a loop exists. The forked process
 * inherits the loop, its fds and, with the signal sources, the process-
 * wide SIGCHLD fan-out; it may close those fds, and files then take their
 * numbers. The library must never write into them (no stray notifier
 * bytes when that process reaps a child of its own or makes a loop of its
 * own), must refuse to run the inherited loop (-ECHILD), must free it
 * without touching what the parent shares (its epoll instance, its
 * children), and the parent's loop must go on working.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NFILES 48

/* The helper child's path, resolved before any fork: the forked process
 * calls nothing of the test framework (whose passing assertions write to
 * its own fd, a number that process hands to files). */
static const char *child_prog;

/* Spawns the helper saying word on loop, checks what it said and that it
 * exited with 0; 0 or the negative errno of the first call that failed. */
static int say_and_check(asp_loop *loop, const char *word)
{
    asp_spawn_opts o = {0};
    o.stdio[1].mode = ASP_STDIO_PIPE;
    const char *argv[] = {child_prog, "say", word, NULL};
    asp_proc *p = NULL;
    int r = asp_spawn(loop, &p, argv, &o);
    if (r < 0)
        return r;
    char *out = NULL;
    ssize_t n = asp_stream_read_all(asp_proc_stdout(p), &out);
    asp_status st;
    int w = asp_proc_wait(p, 20000, &st);
    asp_proc_free(p, ASP_FREE_KILL);
    if (n < 0 || w < 0) {
        asp_free(out);
        return n < 0 ? (int)n : w;
    }
    int ok = !strcmp(out, word) && st.kind == ASP_EXIT_CODE && st.code == 0;
    asp_free(out);
    return ok ? 0 : -EPROTO;
}

/* A loop of this run's source that has spawned: the source's fds (the
 * signal sources' notifier, the signalfd) are open. */
static asp_loop *warm_loop(void)
{
    child_prog = asp_t_child_path();
    asp_loop *loop = asp_t_loop();
    int r = say_and_check(loop, "warm");
    ck_assert_msg(r == 0, "spawn: %s", asp_strerror(r));
    return loop;
}

/* The open fds (asp_t_fd_count without the framework's assertions). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* In the forked process: what the inherited loop refuses. 0 or a step. */
static int refused(asp_loop *inherited)
{
    int done = 0;
    asp_proc *p = NULL;
    const char *argv[] = {child_prog, NULL};
    if (asp_loop_run(inherited, ASP_RUN_NOWAIT) != -ECHILD)
        return 10;
    if (asp_loop_run_until(inherited, &done) != -ECHILD)
        return 11;
    if (asp_spawn(inherited, &p, argv, NULL) != -ECHILD || p)
        return 12;
    return 0;
}

/* Closes every fd from 3 up but keep. */
static void close_all_but(int keep)
{
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536
                  ? (int)rl.rlim_cur
                  : 65536;
    for (int fd = 3; fd < max; fd++)
        if (fd != keep)
            close(fd);
}

/* Opens NFILES empty files, which take the lowest free numbers (those the
 * library's fds had). 0 or -1. */
static int open_files(int fds[NFILES])
{
    for (int i = 0; i < NFILES; i++) {
        char path[] = "/tmp/asp_fork_XXXXXX";
        fds[i] = mkostemp(path, O_CLOEXEC);
        if (fds[i] < 0)
            return -1;
        unlink(path);
    }
    return 0;
}

/* Reaps a child of this process's own (not the library's): with the
 * self-pipe source the inherited SIGCHLD handler runs for it. (Its exit
 * code is not looked at: a memory checker may replace it.) */
static int reap_own_child(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(7);
    while (waitpid(pid, NULL, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* The first file that is not empty, or -1. */
static int dirty_file(const int fds[NFILES])
{
    for (int i = 0; i < NFILES; i++) {
        struct stat sb;
        if (fstat(fds[i], &sb) < 0 || sb.st_size != 0)
            return fds[i];
    }
    return -1;
}

/* The forked process: drops every inherited fd, fills the numbers with
 * files, reaps a child of its own, makes a loop of its own and spawns on
 * it; the files must stay empty. 0, or the step that failed (a dirty
 * file: 100 + its fd). */
static int fresh_start(void *arg)
{
    asp_loop *inherited = arg;
    int files[NFILES];
    close_all_but(asp_t_fork_report_fd());
    if (open_files(files) < 0)
        return 1;
    if (reap_own_child() < 0)
        return 2;
    int r = refused(inherited);
    if (r)
        return r;
    asp_loop *mine = NULL;
    if (asp_loop_new(&mine, NULL) < 0)
        return 3;
    if (say_and_check(mine, "mine") < 0)
        return 4;
    if (reap_own_child() < 0)
        return 5;
    if (asp_loop_free(mine) < 0)
        return 6;
    int dirty = dirty_file(files);
    return dirty >= 0 ? 100 + dirty : 0;
}

START_TEST(fork_files_at_old_numbers_stay_clean)
{
    asp_loop *loop = warm_loop();
    int r = asp_t_in_fork(fresh_start, loop);
    ck_assert_msg(r == 0, "the forked process failed at step %d%s", r,
                  r >= 100 ? " (bytes in the file at fd step - 100)" : "");
    /* The parent's loop is untouched. */
    r = say_and_check(loop, "parent");
    ck_assert_msg(r == 0, "parent spawn: %s", asp_strerror(r));
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_loop *loop;
    asp_proc *running; /* the parent's child, running, stdout piped */
    int fds_before;    /* the parent's fd count before the loop existed */
} inherit_ctx;

/* The forked process: the inherited loop (with an open handle of a
 * running child) is refused, then freed: every fd the library held for
 * it is closed and nothing of the parent's is touched; a loop of its own
 * works. 0 or the step that failed. */
static int free_inherited(void *arg)
{
    inherit_ctx *c = arg;
    int r = refused(c->loop);
    if (r)
        return r;
    asp_status st;
    if (asp_proc_wait(c->running, 0, &st) != -ECHILD)
        return 20;
    if (asp_loop_free(c->loop) != 0)
        return 21;
    /* What is left: what the parent had before its loop, and the report
     * pipe. */
    if (count_fds() != c->fds_before + 1)
        return 22;
    asp_loop *mine = NULL;
    if (asp_loop_new(&mine, NULL) < 0)
        return 23;
    if (say_and_check(mine, "mine") < 0)
        return 24;
    if (asp_loop_free(mine) < 0)
        return 25;
    return 0;
}

START_TEST(fork_inherited_loop_refused_then_freed)
{
    inherit_ctx c;
    c.fds_before = asp_t_fd_count();
    c.loop = warm_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    c.running = ASP_T_SPAWN(c.loop, &o, "say", "r", "sleep", "30000");
    char ch;
    ck_assert_int_eq(asp_stream_read(asp_proc_stdout(c.running), &ch, 1), 1);
    int r = asp_t_in_fork(free_inherited, &c);
    ck_assert_msg(r == 0, "the forked process failed at step %d", r);
    /* The parent still hears its child's exit through the same loop (the
     * forked process's free removed nothing from a shared epoll set). */
    ck_assert_int_eq(asp_proc_kill(c.running), 0);
    asp_status st;
    ck_assert_int_eq(asp_proc_wait(c.running, 20000, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGKILL);
    asp_t_free(c.running);
    r = say_and_check(c.loop, "parent");
    ck_assert_msg(r == 0, "parent spawn: %s", asp_strerror(r));
    asp_t_loop_free(c.loop);
}
END_TEST

/* The fork suite. */
Suite *suite_fork(void)
{
    Suite *s = suite_create("fork");
    TCase *tc = asp_t_case("fork", 30);
    tcase_add_test(tc, fork_files_at_old_numbers_stay_clean);
    tcase_add_test(tc, fork_inherited_loop_refused_then_freed);
    suite_add_tcase(s, tc);
    return s;
}
