/*
 * fault.c - fault injection: running out of fds half-way through a spawn
 * (RLIMIT_NOFILE), out of processes (RLIMIT_NPROC, as an unprivileged
 * user), out of memory at every single allocation of a spawn and a
 * communicate, and a storm of signals that interrupt every system call.
 * Each failure must come back as a clean negative errno with nothing left
 * behind, and the loop must keep working.
 */
#define _GNU_SOURCE
#include "hard.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

/* Spawns echo with all three streams piped, feeds it, checks the echo and
 * the exit; the loop's proof of life after a failure. */
static void roundtrip(asp_loop *loop)
{
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "echo", "esay", "E");
    asp_comm_opts co = {0};
    co.input = "ping";
    co.input_len = 4;
    asp_result res;
    int r = asp_communicate(p, &co, &res);
    ck_assert_msg(r == 0, "communicate: %s", asp_strerror(r));
    ck_assert_str_eq(res.out, "ping");
    ck_assert_str_eq(res.err, "E");
    ck_assert_int_eq(res.status.kind, ASP_EXIT_CODE);
    ck_assert_int_eq(res.status.code, 0);
    asp_result_free(&res);
    asp_t_free(p);
}

/* ------------------------------------------------------------ EMFILE */

START_TEST(fault_emfile_at_every_fd)
{
    /* The limit sits k fds above the highest open one, for every k from
     * "none left" to "enough": each spawn either works or fails with
     * -EMFILE, and leaves nothing behind either way. */
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int failed = 0, worked = 0;
    for (int k = 0; k <= 14; k++) {
        int fds0 = asp_t_fd_count();
        asp_loop *loop = asp_t_loop();
        struct rlimit low = old;
        low.rlim_cur = asp_t_nofile_for(k);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        asp_spawn_opts o = asp_t_piped(1, 1, 1);
        const char *argv[] = {asp_t_child_path(), "echo", "esay", "E", NULL};
        asp_proc *p = NULL;
        int r = asp_spawn(loop, &p, argv, &o);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        if (r == 0) {
            worked++;
            asp_comm_opts co = {0};
            co.input = "ping";
            co.input_len = 4;
            asp_result res;
            ck_assert_int_eq(asp_communicate(p, &co, &res), 0);
            ck_assert_str_eq(res.out, "ping");
            ck_assert_str_eq(res.err, "E");
            asp_result_free(&res);
            asp_t_free(p);
        } else {
            failed++;
            ck_assert_msg(r == -EMFILE,
                          "k=%d: spawn gave %d (%s), wanted "
                          "-EMFILE",
                          k, r, asp_strerror(r));
            ck_assert_ptr_null(p);
            ck_assert_int_eq(asp_t_children(NULL), 0);
        }
        roundtrip(loop); /* the loop still works */
        asp_t_loop_free(loop);
        ck_assert_int_eq(asp_t_fd_count(), fds0);
    }
    /* Both ends of the range were reached: out of fds at the first
     * steps, enough at the last. */
    ck_assert_int_gt(failed, 0);
    ck_assert_int_gt(worked, 0);
}
END_TEST

START_TEST(fault_emfile_loop_new)
{
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int fds0 = asp_t_fd_count();
    for (int k = 0; k <= 4; k++) {
        struct rlimit low = old;
        low.rlim_cur = asp_t_nofile_for(k);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        asp_loop *loop = NULL;
        int r = asp_loop_new(&loop, NULL);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        if (r == 0) {
            roundtrip(loop);
            asp_t_loop_free(loop);
        } else {
            ck_assert_msg(r == -EMFILE, "k=%d: %s", k, asp_strerror(r));
            ck_assert_ptr_null(loop);
        }
        ck_assert_int_eq(asp_t_fd_count(), fds0);
    }
}
END_TEST

/* ------------------------------------------------------------ EAGAIN */

/* The uid the forked process drops to: unused, so it owns no process. */
#define NPROC_UID 54321

/* How many processes (threads count too) the given uid owns. */
static int processes_of(uid_t uid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], line[256];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        unsigned ruid = 0, threads = 0;
        int have = 0;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "Uid: %u", &ruid) == 1)
                have |= 1;
            if (sscanf(line, "Threads: %u", &threads) == 1)
                have |= 2;
        }
        fclose(f);
        if (have == 3 && ruid == uid)
            n += (int)threads;
    }
    closedir(d);
    return n;
}

/* In a forked process: become an ordinary user (root's RLIMIT_NPROC is not
 * enforced), allow two more processes, and check that the third spawn
 * fails with -EAGAIN, cleanly, and that spawning works again once one
 * child is gone. arg is the path of the helper child to run (a copy that
 * the ordinary user can reach). Returns 0 or the number of the step that
 * failed. */
static int nproc_body(void *arg)
{
    const char *child = arg;
    if (setgroups(0, NULL) < 0 ||
        setresgid(NPROC_UID, NPROC_UID, NPROC_UID) < 0)
        return 1;
    if (setresuid(NPROC_UID, NPROC_UID, NPROC_UID) < 0)
        return 2;
    /* Changing uid made us non-dumpable, which hides /proc/self/fd. */
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    int mine = processes_of(NPROC_UID);
    if (mine < 1)
        return 3;
    struct rlimit lim = {(rlim_t)mine + 2, (rlim_t)mine + 2};
    if (setrlimit(RLIMIT_NPROC, &lim) < 0)
        return 4;

    asp_loop *loop = NULL;
    if (asp_loop_new(&loop, NULL) < 0)
        return 5;
    const char *argv[] = {child, "sleep", "30000", NULL};
    asp_proc *a = NULL, *b = NULL, *c = NULL;
    int ra = asp_spawn(loop, &a, argv, NULL);
    int rb = asp_spawn(loop, &b, argv, NULL);
    if (ra < 0 || rb < 0)
        return ra == -EACCES || rb == -EACCES ? 6 : 7;
    int fds = asp_t_fd_count();
    int rc = asp_spawn(loop, &c, argv, NULL);
    int result = 0;
    if (rc != -EAGAIN || c != NULL)
        result = 8;
    else if (asp_t_fd_count() != fds)
        result = 9;
    /* One child gone: room for one again. */
    asp_status st;
    if (!result && (asp_proc_kill(a) < 0 || asp_proc_wait(a, 10000, &st) < 0 ||
                    st.kind != ASP_EXIT_SIGNAL))
        result = 10;
    if (!result && asp_spawn(loop, &c, argv, NULL) < 0)
        result = 11;
    asp_proc_free(a, ASP_FREE_KILL);
    asp_proc_free(b, ASP_FREE_KILL);
    if (c)
        asp_proc_free(c, ASP_FREE_KILL);
    if (asp_loop_free(loop) < 0 && !result)
        result = 12;
    if (!result && asp_t_children(NULL) != 0)
        result = 13;
    return result;
}

START_TEST(fault_eagain_process_limit)
{
    static const char *const steps[] = {
        "ok",
        "setgroups/setresgid",
        "setresuid",
        "counting processes",
        "setrlimit",
        "asp_loop_new",
        "the helper child is not executable for an unprivileged user",
        "the first two spawns",
        "the third spawn did not give -EAGAIN",
        "the failed spawn leaked an fd",
        "kill and wait",
        "spawn after a child was gone",
        "asp_loop_free",
        "children left"};
    /* The helper child as built may sit where an ordinary user cannot
     * enter (a checkout in a 0700 home or mktemp folder): the forked
     * process runs a copy in a folder of its own that any uid can reach. */
    char child[4096];
    asp_t_child_copy("asp_child", child, sizeof child);
    int r = asp_t_in_fork(nproc_body, child);
    asp_t_child_copy_remove(child);
    ck_assert_msg(r == 0, "RLIMIT_NPROC as uid %d: failed at step %d (%s)",
                  NPROC_UID, r, r > 0 && r < 14 ? steps[r] : "no report");
}
END_TEST

/* ------------------------------------------------------------ ENOMEM */

/* 200 KiB of input: enough for the capture buffers to grow a few times. */
#define ECHO_LEN (200 * 1024)

/* The input echoed back. */
static const char *echo_input(void)
{
    static char buf[ECHO_LEN];
    if (!buf[0])
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (char)('A' + i % 23);
    return buf;
}

/* What went wrong over all the N of one test: the count and the first
 * few messages, so that one run shows every distinct failure. */
typedef struct verdicts {
    int nbad;
    char text[2048];
} verdicts;

/* Records one violation. */
static void note(verdicts *v, long n, const char *what, int r)
{
    if (v->nbad++ >= 8)
        return;
    size_t len = strlen(v->text);
    snprintf(v->text + len, sizeof v->text - len, "\n  N=%ld: %s (%s)", n, what,
             asp_strerror(r));
}

/* One spawn + communicate with the allocator armed; every call either
 * succeeds with the right answer or fails with -ENOMEM. */
static void spawn_communicate_armed(asp_loop *loop, long n, verdicts *v)
{
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    const char *argv[] = {asp_t_child_path(), "echo", "err", "3000", NULL};
    asp_proc *p = NULL;
    int r = asp_spawn(loop, &p, argv, &o);
    if (r < 0) {
        if (r != -ENOMEM || p)
            note(v, n, "spawn failed other than with -ENOMEM", r);
        return;
    }
    asp_comm_opts co = {0};
    co.input = echo_input();
    co.input_len = ECHO_LEN;
    /* A bound, so that a failure that stalls the streams is reported
     * rather than hanging the test. */
    co.timeout_ms = (int64_t)(2000 * hard_slowness());
    co.flags = ASP_COMM_ESCALATE;
    asp_result res;
    r = asp_communicate(p, &co, &res);
    if (r == -ETIMEDOUT) {
        note(v, n, "communicate stalled until its timeout", r);
    } else if (r < 0) {
        /* -ENOMEM may come with what was kept before memory ran out: a
         * prefix of the output, never anything else. */
        if (r != -ENOMEM)
            note(v, n, "communicate failed other than with -ENOMEM", r);
        else if ((res.out && (res.out_len > ECHO_LEN ||
                              memcmp(res.out, echo_input(), res.out_len))) ||
                 (res.err && res.err_len > 3000))
            note(v, n, "communicate failed with output that is not a prefix",
                 r);
    } else if (res.out_len != ECHO_LEN || res.err_len != 3000 ||
               (res.flags & ASP_RESULT_CUT) ||
               memcmp(res.out, echo_input(), ECHO_LEN) != 0) {
        char what[160];
        snprintf(what, sizeof what,
                 "communicate succeeded with wrong "
                 "output: %zu/%zu bytes, flags %#x",
                 res.out_len, res.err_len, res.flags);
        note(v, n, what, r);
    } else if (res.status.kind != ASP_EXIT_CODE || res.status.code != 0) {
        note(v, n, "communicate succeeded with a wrong status", r);
    }
    asp_result_free(&res);
    /* The child may still run when communicate failed early: kill it. */
    r = asp_proc_free(p, ASP_FREE_KILL);
    if (r < 0)
        note(v, n, "asp_proc_free", r);
}

/* Checks the state between two rounds: no leaked block, fd or child.
 * loop (NULL: freed already) is the one a killed, detached child of the
 * round belongs to: it runs while we wait, for only a run reaps that
 * child, and on a busy machine its death may come after the round's
 * last run. */
static void check_clean(verdicts *v, hard_alloc *a, long n, long blocks,
                        int fds, asp_loop *loop)
{
    double end = asp_t_now_ms() + 5000;
    while (asp_t_children(NULL) != 0 && asp_t_now_ms() < end) {
        if (loop)
            asp_loop_run(loop, ASP_RUN_NOWAIT);
        usleep(2000);
    }
    if (asp_t_children(NULL) != 0)
        note(v, n, "a child was left behind", 0);
    if (atomic_load(&a->live) != blocks) {
        char what[96];
        snprintf(what, sizeof what, "%ld blocks live, %ld expected",
                 atomic_load(&a->live), blocks);
        note(v, n, what, 0);
        atomic_store(&a->live, blocks); /* report each leak once */
    }
    if (asp_t_fd_count() != fds)
        note(v, n, "an fd was left behind", 0);
}

START_TEST(fault_enomem_fresh_loop)
{
    /* Allocation N fails, for N = 1, 2, ... until a whole round (new loop,
     * spawn, communicate) makes fewer than N allocations. */
    hard_alloc a;
    hard_alloc_install(&a);
    int fds0 = asp_t_fd_count();
    verdicts v = {0, ""};
    long n;
    for (n = 1; n < 10000; n++) {
        atomic_store(&a.calls, 0);
        atomic_store(&a.failed, 0);
        atomic_store(&a.fail_at, n);
        asp_loop *loop = NULL;
        int r = asp_loop_new(&loop, NULL);
        if (r < 0) {
            if (r != -ENOMEM || loop)
                note(&v, n, "asp_loop_new failed other than with -ENOMEM", r);
        } else {
            spawn_communicate_armed(loop, n, &v);
            atomic_store(&a.fail_at, 0);
            roundtrip(loop); /* the loop still works */
            asp_t_loop_free(loop);
        }
        check_clean(&v, &a, n, 0, fds0, NULL);
        if (atomic_load(&a.failed) == 0)
            break; /* N is past the last allocation */
    }
    ck_assert_msg(v.nbad == 0, "%d of %ld allocation failures mishandled:%s",
                  v.nbad, n - 1, v.text);
    ck_assert_int_gt(n, 5);
    printf("fault: fresh loop: each of %ld allocations of loop_new + spawn + "
           "communicate failed in turn, all handled\n",
           n - 1);
    hard_alloc_remove();
}
END_TEST

START_TEST(fault_enomem_warm_loop)
{
    /* The same on a loop that already spawned: the failure must not
     * damage it. */
    hard_alloc a;
    hard_alloc_install(&a);
    int fds0 = asp_t_fd_count();
    asp_loop *loop = asp_t_loop();
    roundtrip(loop);
    long base = atomic_load(&a.live);
    int fds1 = asp_t_fd_count();
    verdicts v = {0, ""};
    long n;
    for (n = 1; n < 10000; n++) {
        atomic_store(&a.calls, 0);
        atomic_store(&a.failed, 0);
        atomic_store(&a.fail_at, n);
        spawn_communicate_armed(loop, n, &v);
        atomic_store(&a.fail_at, 0);
        roundtrip(loop);
        check_clean(&v, &a, n, base, fds1, loop);
        if (atomic_load(&a.failed) == 0)
            break;
    }
    ck_assert_msg(v.nbad == 0, "%d of %ld allocation failures mishandled:%s",
                  v.nbad, n - 1, v.text);
    ck_assert_int_gt(n, 3);
    printf("fault: warm loop: each of %ld allocations of spawn + communicate "
           "failed in turn, all handled\n",
           n - 1);
    asp_t_loop_free(loop);
    ck_assert_int_eq(asp_t_fd_count(), fds0);
    hard_alloc_remove();
}
END_TEST

/* ------------------------------------------------------------- EINTR */

static atomic_long ticks;

/* The storm's handler: counts, nothing else. */
static void tick(int sig)
{
    (void)sig;
    atomic_fetch_add(&ticks, 1);
}

/* Sets the interval timer to us microseconds (0 stops it). */
static void storm(long us)
{
    struct itimerval it = {{0, us}, {0, us}};
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

START_TEST(fault_eintr_storm)
{
    /* SIGALRM every 100 us, handler without SA_RESTART: every blocking or
     * slow system call of the library gets EINTR over and over. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
    atomic_store(&ticks, 0);
    /* ASP_STORM_US (default 100) sets the interval: under valgrind a
     * signal delivery costs more than 100 us, so a storm that fast leaves
     * the process no time for anything else (check-valgrind sets 5000). */
    long us = hard_env_long("ASP_STORM_US", 100);
    storm(us > 0 ? us : 100);

    asp_loop *loop = asp_t_loop();
    /* 4 MiB each way through communicate. */
    size_t len = 4u << 20;
    char *in = malloc(len);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < len; i++)
        in[i] = (char)(i * 7 + i / 4096);
    asp_spawn_opts o = asp_t_piped(1, 1, 1);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "echo", "err", "100000");
    asp_comm_opts co = {0};
    co.input = in;
    co.input_len = len;
    asp_result res;
    ck_assert_int_eq(asp_communicate(p, &co, &res), 0);
    ck_assert_uint_eq(res.out_len, len);
    ck_assert(!memcmp(res.out, in, len));
    ck_assert_uint_eq(res.err_len, 100000);
    ck_assert_int_eq(res.status.code, 0);
    asp_result_free(&res);
    asp_t_free(p);
    free(in);

    /* Line by line with the blocking reads. */
    o = asp_t_piped(1, 0, 0);
    p = ASP_T_SPAWN(loop, &o, "lines", "20000");
    char line[64];
    long lines = 0;
    ssize_t n;
    while ((n = asp_stream_readline(asp_proc_stdout(p), line, sizeof line)) >
           0) {
        char want[64];
        int wl = snprintf(want, sizeof want, "line %ld\n", lines);
        ck_assert_int_eq((int)n, wl);
        ck_assert(!memcmp(line, want, (size_t)wl));
        lines++;
    }
    ck_assert_int_eq((int)n, 0);
    ck_assert_int_eq(lines, 20000);
    asp_t_wait(p);
    asp_t_free(p);

    /* A wait with a timeout still times out (not -EINTR), then completes. */
    p = ASP_T_SPAWN(loop, NULL, "sleep", "200", "exit", "4");
    asp_status st;
    ck_assert_int_eq(asp_proc_wait(p, 20, &st), -ETIMEDOUT);
    st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 4);
    asp_t_free(p);

    /* Spawn failures are still reported, not turned into EINTR. */
    const char *missing[] = {"/nonexistent/program", NULL};
    asp_proc *q = NULL;
    ck_assert_int_eq(asp_spawn(loop, &q, missing, NULL), -ENOENT);

    asp_t_loop_free(loop);
    storm(0);
    ck_assert_int_eq(sigaction(SIGALRM, &old, NULL), 0);
    ck_assert_msg(atomic_load(&ticks) > 10, "only %ld signals arrived",
                  atomic_load(&ticks));
}
END_TEST

/* The fault suite. */
Suite *suite_fault(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = asp_t_case("fault", 120);
    tcase_add_test(tc, fault_emfile_at_every_fd);
    tcase_add_test(tc, fault_emfile_loop_new);
    tcase_add_test(tc, fault_eagain_process_limit);
    tcase_add_test(tc, fault_enomem_fresh_loop);
    tcase_add_test(tc, fault_enomem_warm_loop);
    tcase_add_test(tc, fault_eintr_storm);
    suite_add_tcase(s, tc);
    return s;
}
