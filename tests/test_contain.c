/*
 * test_contain.c - whole-tree containment: what a spawn gets and reports,
 * tree stops that reach setsid'd grandchildren and double-forked daemons
 * (cgroup), 200 processes in one call, the tree-empty event, timeouts
 * that bound communicate whatever a grandchild and the eof grace do, the
 * unprivileged fallback, resource usage, and a group leader kept unreaped
 * while its group may still be signalled.
 *
 * Tests that need a writable cgroup v2 say so and pass without it (the
 * fixture still checks that no cgroup of this process is left behind).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Whether this process can contain children in cgroups (cached). */
static int cgroup_ok(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = {0};
    o.contain = ASP_CONTAIN_CGROUP;
    asp_proc *p = NULL;
    const char *argv[] = {"/bin/true", NULL};
    int r = asp_spawn(loop, &p, argv, &o);
    if (r == 0) {
        asp_t_wait(p);
        asp_proc_wait_tree(p, ASP_FOREVER, NULL);
        asp_t_free(p);
    } else {
        printf("(no writable cgroup v2 here: %s; cgroup cases skipped)\n",
               asp_strerror(r));
    }
    asp_t_loop_free(loop);
    known = r == 0;
    return known;
}

/* Slack for time bounds: stretched with Check's own multiplier (valgrind
 * runs set it). */
static double slack_ms(double ms)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    return ms * (m ? atof(m) : 1.0);
}

/* Whether pid is gone (no such process, or a zombie of whoever: PID 1
 * here does not reap orphans). */
static int gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return !rp || rp[2] == 'Z';
}

/* Waits up to ms for pid to be gone. */
static int gone_within(pid_t pid, int ms)
{
    double end = asp_t_now_ms() + slack_ms(ms);
    while (!gone(pid) && asp_t_now_ms() < end)
        usleep(2000);
    return gone(pid);
}

/* Reads one "<pid>\n" line from s. */
static pid_t read_pid(asp_stream *s)
{
    char line[32];
    ssize_t n = asp_stream_readline(s, line, sizeof line - 1);
    ck_assert_int_gt(n, 1);
    line[n] = 0;
    return (pid_t)atoi(line);
}

START_TEST(contain_reported)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = {0};
    asp_proc *p = ASP_T_SPAWN(loop, &o, "exit", "0");
    ck_assert_int_eq(asp_proc_containment(p), ASP_CONTAIN_NONE);
    asp_t_wait(p);
    asp_t_free(p);
    o.flags = ASP_SPAWN_NEW_PGROUP;
    p = ASP_T_SPAWN(loop, &o, "exit", "0");
    ck_assert_int_eq(asp_proc_containment(p), ASP_CONTAIN_PGROUP);
    asp_t_wait(p);
    asp_t_free(p);
    o.flags = 0;
    o.contain = ASP_CONTAIN_PGROUP;
    p = ASP_T_SPAWN(loop, &o, "exit", "0");
    ck_assert_int_eq(asp_proc_containment(p), ASP_CONTAIN_PGROUP);
    asp_t_wait(p);
    asp_t_free(p);
    o.contain = ASP_CONTAIN_AUTO;
    p = ASP_T_SPAWN(loop, &o, "exit", "0");
    ck_assert_int_eq(asp_proc_containment(p),
                     cgroup_ok() ? ASP_CONTAIN_CGROUP : ASP_CONTAIN_PGROUP);
    asp_t_wait(p);
    asp_proc_wait_tree(p, ASP_FOREVER, NULL);
    asp_t_free(p);
    /* Bad input, nothing left behind. */
    const char *argv[] = {asp_t_child_path(), NULL};
    o.contain = (enum asp_contain)17;
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o.contain = ASP_CONTAIN_PGROUP;
    o.pgid = getpgid(0);
    ck_assert_int_eq(asp_spawn(loop, &p, argv, &o), -EINVAL);
    o.pgid = 0;
    o.contain = ASP_CONTAIN_NONE;
    p = ASP_T_SPAWN(loop, &o, "exit", "0");
    asp_kill_opts k = {{{SIGTERM, 10}}, ASP_KILL_TREE};
    ck_assert_int_eq(asp_proc_stop_start(p, &k, NULL, NULL), -EINVAL);
    asp_t_wait(p);
    asp_t_free(p);
    ck_assert_int_eq(asp_proc_containment(NULL), -EINVAL);
    asp_t_loop_free(loop);
}
END_TEST

/* A child that leaves a setsid'd grandchild and a double-forked daemon,
 * both ignoring SIGTERM; the tree stop must reach both through the
 * cgroup. */
START_TEST(contain_cgroup_tree_stop_reaches_escapees)
{
    if (!cgroup_ok())
        return;
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.contain = ASP_CONTAIN_CGROUP;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "ignore-term", "escape", "60000",
                              "daemon", "60000", "sleep", "60000");
    pid_t esc = read_pid(asp_proc_stdout(p));
    pid_t dmn = read_pid(asp_proc_stdout(p));
    asp_kill_opts k = {{{SIGTERM, 100}}, ASP_KILL_TREE};
    asp_status st;
    ck_assert_int_eq(asp_proc_stop(p, &k, &st), 0);
    ck_assert_int_eq(st.kind, ASP_EXIT_SIGNAL);
    ck_assert_int_eq(st.signal, SIGKILL);
    ck_assert(gone_within(esc, 2000));
    ck_assert(gone_within(dmn, 2000));
    ck_assert_int_eq(asp_proc_wait_tree(p, 5000, NULL), 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* The same escapee under a process group survives the group stop: what
 * cgroups are for. (Cleaned up by hand.) */
START_TEST(contain_pgroup_escapee_survives_group_stop)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.contain = ASP_CONTAIN_PGROUP;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "escape", "60000", "sleep", "60000");
    pid_t esc = read_pid(asp_proc_stdout(p));
    ck_assert_msg(!gone(esc), "escapee %d gone before the stop", (int)esc);
    asp_kill_opts k = {{{SIGKILL, 0}}, ASP_KILL_GROUP};
    ck_assert_int_eq(asp_proc_stop(p, &k, NULL), 0);
    if (gone(esc)) {
        char path[64], buf[512] = "(no such process)";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)esc);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            fclose(f);
        }
        ck_abort_msg("escapee %d (child %d) gone after the stop: %s", (int)esc,
                     (int)asp_proc_pid(p), buf);
    }
    kill(esc, SIGKILL);
    ck_assert(gone_within(esc, 2000));
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(contain_cgroup_200_killed_in_one_call)
{
    if (!cgroup_ok())
        return;
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.contain = ASP_CONTAIN_CGROUP;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "spawn", "200", "60000", "say", "r",
                              "sleep", "60000");
    char c;
    ck_assert_int_eq(asp_stream_read(asp_proc_stdout(p), &c, 1), 1);
    asp_kill_opts k = {{{SIGKILL, 0}}, ASP_KILL_TREE};
    ck_assert_int_eq(asp_proc_stop(p, &k, NULL), 0);
    asp_status st;
    ck_assert_int_eq(asp_proc_wait_tree(p, 10000, &st), 0);
    ck_assert_int_eq(st.tree.cpu_err, 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* The exit and the tree's end are two events: under a cgroup the second
 * comes from cgroup.events, under a group from its polling, and without
 * containment it is the exit. */
START_TEST(contain_tree_empty_event)
{
    asp_loop *loop = asp_t_loop();
    enum asp_contain kinds[] = {ASP_CONTAIN_NONE, ASP_CONTAIN_PGROUP,
                                ASP_CONTAIN_CGROUP};
    for (int i = 0; i < 3; i++) {
        if (kinds[i] == ASP_CONTAIN_CGROUP && !cgroup_ok())
            continue;
        asp_spawn_opts o = asp_t_piped(1, 0, 0);
        o.contain = kinds[i];
        /* A daemon leaves every group: the NONE and PGROUP trees do not
         * hold it, the cgroup does. */
        asp_proc *p = ASP_T_SPAWN(
            loop, &o, kinds[i] == ASP_CONTAIN_PGROUP ? "grandchild" : "daemon",
            "300", "exit", "3");
        asp_status st = asp_t_wait(p);
        ck_assert_int_eq(st.code, 3);
        int r = asp_proc_wait_tree(p, 0, NULL);
        if (kinds[i] == ASP_CONTAIN_NONE)
            ck_assert_int_eq(r, 0);
        else
            ck_assert_int_eq(r, -ETIMEDOUT); /* the member lives on */
        ck_assert_int_eq(asp_proc_wait_tree(p, 10000, &st), 0);
        ck_assert_int_eq(st.code, 3);
        ck_assert_int_eq(st.tree.cpu_err,
                         kinds[i] == ASP_CONTAIN_CGROUP ? 0 : -ENODATA);
        asp_t_free(p);
    }
    asp_t_loop_free(loop);
}
END_TEST

/* communicate with a timeout and the escalation returns within the
 * timeout, the graces and a small constant, whatever the eof grace says
 * and whether a grandchild stays in the group or escapes it. */
static void bounded_case(asp_loop *loop, enum asp_contain contain,
                         const char *how, int64_t grace)
{
    asp_spawn_opts o = asp_t_piped(1, 1, 0);
    o.contain = contain;
    o.eof_grace_ms = grace;
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, how, "10000", "say", "started\n", "exit", "0");
    asp_comm_opts co = {0};
    co.timeout_ms = 300;
    co.flags = ASP_COMM_ESCALATE;
    co.kill.steps[0].signal = SIGTERM;
    co.kill.steps[0].grace_ms = 100;
    co.kill.flags = contain == ASP_CONTAIN_NONE ? 0 : ASP_KILL_TREE;
    asp_result r;
    double t0 = asp_t_now_ms();
    int e = asp_communicate(p, &co, &r);
    double took = asp_t_now_ms() - t0;
    ck_assert_msg(took < 300 + 100 + slack_ms(1500),
                  "contain %d %s grace %lld: %.0f ms", contain, how,
                  (long long)grace, took);
    ck_assert_int_eq(e, -ETIMEDOUT);
    ck_assert(r.flags & ASP_RESULT_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(r.out, "started"));
    int escaped = !strcmp(how, "escape");
    if (escaped) {
        pid_t pid = (pid_t)atoi(r.out);
        if (contain == ASP_CONTAIN_CGROUP) {
            ck_assert(gone_within(pid, 2000));
        } else {
            ck_assert(r.flags & ASP_RESULT_CUT); /* it held the pipes */
            kill(pid, SIGKILL);
            ck_assert(gone_within(pid, 2000));
        }
    } else {
        ck_assert_int_eq(asp_proc_wait_tree(p, 5000, NULL), 0);
    }
    asp_result_free(&r);
    asp_proc_wait_tree(p, 5000, NULL);
    asp_t_free(p);
}

START_TEST(contain_timeout_bounds_communicate)
{
    asp_loop *loop = asp_t_loop();
    int64_t graces[] = {0, ASP_FOREVER};
    for (int g = 0; g < 2; g++) {
        bounded_case(loop, ASP_CONTAIN_NONE, "escape", graces[g]);
        bounded_case(loop, ASP_CONTAIN_PGROUP, "grandchild", graces[g]);
        bounded_case(loop, ASP_CONTAIN_PGROUP, "escape", graces[g]);
        if (cgroup_ok())
            bounded_case(loop, ASP_CONTAIN_CGROUP, "escape", graces[g]);
    }
    asp_t_loop_free(loop);
}
END_TEST

/* The tracker's case: `sh -c 'sleep 4 & echo started'` in a new group,
 * timeout 300 ms with the escalation against the group: returns after
 * about 300 ms with the group stopped, not after the eof grace. */
START_TEST(contain_group_escalation_after_leader_exit)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.flags = ASP_SPAWN_NEW_PGROUP;
    asp_proc *p = NULL;
    ck_assert_int_eq(asp_spawn_shell(loop, &p, "sleep 4 & echo started", &o),
                     0);
    asp_comm_opts co = {0};
    co.timeout_ms = 300;
    co.flags = ASP_COMM_ESCALATE;
    co.kill.flags = ASP_KILL_GROUP;
    asp_result r;
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_communicate(p, &co, &r), -ETIMEDOUT);
    ck_assert_double_lt(asp_t_now_ms() - t0, 300 + 1000 + slack_ms(1500));
    ck_assert_str_eq(r.out, "started\n");
    /* The group was signalled: nothing of it is left. */
    ck_assert_int_eq(asp_proc_wait_tree(p, 2000, NULL), 0);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* Under a cgroup communicate ends with the tree: the eof grace does not
 * cut a member that holds the pipe, and the tree's figures are there. */
START_TEST(contain_cgroup_communicate_ends_with_tree)
{
    if (!cgroup_ok())
        return;
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.contain = ASP_CONTAIN_CGROUP;
    o.eof_grace_ms = 50;
    asp_proc *p =
        ASP_T_SPAWN(loop, &o, "grandchild", "300", "say", "x", "exit", "0");
    asp_result r;
    ck_assert_int_eq(asp_communicate(p, NULL, &r), 0);
    ck_assert_uint_eq(r.flags & ASP_RESULT_CUT, 0);
    ck_assert_str_eq(r.out, "x");
    ck_assert_int_eq(r.status.tree.cpu_err, 0);
    ck_assert_int_eq(asp_proc_wait_tree(p, 0, NULL), 0);
    asp_result_free(&r);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* As an unprivileged uid: CGROUP fails with a clear errno and leaves
 * nothing, AUTO falls back to a process group. Runs in a forked process
 * (setuid cannot be undone). */
START_TEST(contain_unprivileged_fallback)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(10);
        asp_loop *loop = NULL;
        if (asp_loop_new(&loop, NULL) < 0)
            _exit(11);
        asp_spawn_opts o = {0};
        o.contain = ASP_CONTAIN_CGROUP;
        asp_proc *p = NULL;
        const char *argv[] = {"/bin/true", NULL};
        int r = asp_spawn(loop, &p, argv, &o);
        if (r != -EACCES && r != -EPERM && r != -EROFS && r != -ENOTSUP)
            _exit(12);
        o.contain = ASP_CONTAIN_AUTO;
        if (asp_spawn(loop, &p, argv, &o) < 0)
            _exit(13);
        if (asp_proc_containment(p) != ASP_CONTAIN_PGROUP)
            _exit(14);
        asp_status st;
        if (asp_proc_wait(p, ASP_FOREVER, &st) < 0 || st.code != 0)
            _exit(15);
        asp_proc_free(p, ASP_FREE_DETACH);
        _exit(asp_loop_free(loop) == 0 ? 0 : 16);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "unprivileged case failed: %d", WEXITSTATUS(status));
}
END_TEST

/* Usage comes with the status: the child's own from the reap, the tree's
 * from its cgroup. */
START_TEST(contain_usage)
{
    asp_loop *loop = asp_t_loop();
    for (int cg = 0; cg < 2; cg++) {
        if (cg && !cgroup_ok())
            break;
        asp_spawn_opts o = {0};
        o.contain = cg ? ASP_CONTAIN_CGROUP : ASP_CONTAIN_NONE;
        asp_proc *p = ASP_T_SPAWN(loop, &o, "burn", "200");
        asp_status st;
        ck_assert_int_eq(asp_proc_status(p, &st), 0);
        ck_assert_int_eq(st.usage.err, -ENODATA); /* still running */
        ck_assert_int_eq(asp_proc_wait_tree(p, ASP_FOREVER, &st), 0);
        ck_assert_msg(st.usage.err == 0, "cg %d kind %d", cg, st.kind);
        ck_assert_int_ge(st.usage.utime_us + st.usage.stime_us, 100000);
        ck_assert_int_gt(st.usage.maxrss_kb, 0);
        ck_assert_int_gt(st.usage.minflt, 0);
        if (cg) {
            ck_assert_int_eq(st.tree.cpu_err, 0);
            ck_assert_int_ge(st.tree.cpu_us, 100000);
            if (st.tree.memory_err == -ENODATA)
                printf("(no memory controller in the cgroup: "
                       "memory.peak not checked)\n");
            else
                ck_assert_int_gt(st.tree.memory_peak_kb, 0);
        } else {
            ck_assert_int_eq(st.tree.cpu_err, -ENODATA);
            ck_assert_int_eq(st.tree.memory_err, -ENODATA);
        }
        asp_t_free(p);
    }
    asp_t_loop_free(loop);
}
END_TEST

/* State of pid as this process sees it: 'Z' zombie, 0 gone, else its
 * state letter. */
static char state_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return rp ? rp[2] : 0;
}

/* A leader whose group lives on stays unreaped (its id cannot be
 * recycled) while its waits complete at the exit; the group escalation
 * reaps it when done. A leader alone is reaped at once. */
START_TEST(contain_leader_held_while_group_lives)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = {0};
    o.flags = ASP_SPAWN_NEW_PGROUP;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "ignore-term", "grandchild", "60000",
                              "exit", "5");
    pid_t pid = asp_proc_pid(p);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 5);
#if defined(__linux__) && !defined(ASP_PORTABLE)
    ck_assert_int_eq(state_of(pid), 'Z');
    ck_assert_int_eq(asp_proc_signal(p, 0), -ESRCH);
#endif
    asp_kill_opts k = {{{SIGTERM, 50}}, ASP_KILL_GROUP};
    ck_assert_int_eq(asp_proc_stop(p, &k, &st), 0);
    ck_assert_int_eq(st.code, 5); /* the exit's status, not the stop's */
    ck_assert_int_eq(state_of(pid), 0);
    ck_assert_int_eq(asp_proc_wait_tree(p, 2000, NULL), 0);
    asp_t_free(p);
    p = ASP_T_SPAWN(loop, &o, "exit", "6");
    pid = asp_proc_pid(p);
    st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 6);
    ck_assert_int_eq(state_of(pid), 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
}
END_TEST

/* Freeing a cgroup child's handle with ASP_FREE_KILL kills the tree and
 * the cgroup goes; detached, the loop removes it once the tree is empty;
 * freeing the loop kills what is left. */
START_TEST(contain_cgroup_free_paths)
{
    if (!cgroup_ok())
        return;
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    o.contain = ASP_CONTAIN_CGROUP;
    asp_proc *p = ASP_T_SPAWN(loop, &o, "daemon", "60000", "sleep", "60000");
    pid_t dmn = read_pid(asp_proc_stdout(p));
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_KILL), 0);
    ck_assert(gone_within(dmn, 2000));
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    p = ASP_T_SPAWN(loop, &o, "daemon", "200", "exit", "0");
    dmn = read_pid(asp_proc_stdout(p));
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_DETACH), 0);
    ck_assert(gone_within(dmn, 3000));
    for (int i = 0; i < 100 && asp_t_cgroups_left(); i++)
        asp_loop_run(loop, ASP_RUN_ONCE);
    ck_assert_int_eq(asp_t_cgroups_left(), 0);
    p = ASP_T_SPAWN(loop, &o, "daemon", "60000", "exit", "0");
    dmn = read_pid(asp_proc_stdout(p));
    asp_t_wait(p);
    ck_assert_int_eq(asp_proc_free(p, ASP_FREE_DETACH), 0);
    asp_t_loop_free(loop); /* kills the detached tree */
    ck_assert(gone_within(dmn, 2000));
}
END_TEST

/* Makes dir/asproc-<pid>-<n>, dated age_s seconds back. */
static void make_leaf_named(char *path, size_t size, const char *dir, long pid,
                            int n, int age_s)
{
    snprintf(path, size, "%s/asproc-%ld-%d", dir, pid, n);
    ck_assert_msg(mkdir(path, 0755) == 0, "mkdir %s: %s", path,
                  strerror(errno));
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= age_s;
    ts[1] = ts[0];
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* A process killed with SIGKILL (or one that exits with its children
 * running) keeps its leaves. The first cgroup spawn of the next process
 * removes those whose maker is gone and that are old enough; a leaf of a
 * live process, or a young one (another pid namespace's, between its
 * mkdir and its child's join), stays. The spawn runs in a process of its
 * own: the sweep is once per process, and this one has spawned already. */
START_TEST(contain_cgroup_leftovers_swept)
{
    if (!cgroup_ok())
        return;
    const char *dir = asp_t_cgroup_dir();
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    char old_dead[4200], young_dead[4200], old_live[4200];
    make_leaf_named(old_dead, sizeof old_dead, dir, dead, 0, 3600);
    make_leaf_named(young_dead, sizeof young_dead, dir, dead, 1, 0);
    make_leaf_named(old_live, sizeof old_live, dir, getpid(), 999999, 3600);
    pid_t sweeper = fork();
    if (sweeper == 0) {
        asp_loop *loop = NULL;
        asp_proc *p = NULL;
        asp_spawn_opts o = {0};
        o.contain = ASP_CONTAIN_CGROUP;
        const char *argv[] = {"/bin/true", NULL};
        int r = asp_loop_new(&loop, 0);
        if (r == 0)
            r = asp_spawn(loop, &p, argv, &o);
        if (r == 0)
            r = asp_proc_wait_tree(p, 10000, NULL);
        if (p)
            asp_proc_free(p, ASP_FREE_KILL);
        if (loop)
            asp_loop_free(loop);
        _exit(r == 0 ? 0 : 1);
    }
    int st = -1;
    ck_assert_int_eq(waitpid(sweeper, &st, 0), sweeper);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    ck_assert_msg(access(old_dead, F_OK) < 0 && errno == ENOENT, "%s not swept",
                  old_dead);
    ck_assert_msg(access(young_dead, F_OK) == 0, "%s swept", young_dead);
    ck_assert_msg(access(old_live, F_OK) == 0, "%s swept", old_live);
    ck_assert_int_eq(rmdir(young_dead), 0);
    ck_assert_int_eq(rmdir(old_live), 0);
    /* The sweeper left no leaf of its own either. */
    ck_assert_int_eq(asp_t_cgroups_left_of(sweeper), 0);
}
END_TEST

/* The containment suite. */
Suite *suite_contain(void)
{
    Suite *s = suite_create("contain");
    TCase *tc = asp_t_case("contain", 60);
    tcase_add_test(tc, contain_reported);
    tcase_add_test(tc, contain_cgroup_tree_stop_reaches_escapees);
    tcase_add_test(tc, contain_pgroup_escapee_survives_group_stop);
    tcase_add_test(tc, contain_cgroup_200_killed_in_one_call);
    tcase_add_test(tc, contain_tree_empty_event);
    tcase_add_test(tc, contain_timeout_bounds_communicate);
    tcase_add_test(tc, contain_group_escalation_after_leader_exit);
    tcase_add_test(tc, contain_cgroup_communicate_ends_with_tree);
    tcase_add_test(tc, contain_unprivileged_fallback);
    tcase_add_test(tc, contain_usage);
    tcase_add_test(tc, contain_leader_held_while_group_lives);
    tcase_add_test(tc, contain_cgroup_free_paths);
    tcase_add_test(tc, contain_cgroup_leftovers_swept);
    suite_add_tcase(s, tc);
    return s;
}
