/*
 * stress.c - many spawn / random-delay kill / reap cycles from several
 * threads, each with its own loop; children that exit, ignore SIGTERM, or
 * leave a grandchild holding their stdout. Seeded and bounded: it stops
 * after ASP_STRESS_CYCLES cycles (default 10000; ASP_STRESS_SEED picks the
 * seed), and fails if ASP_STRESS_SECONDS (default 300, scaled by
 * CK_TIMEOUT_MULTIPLIER) pass first. At the end: every status was the one
 * the cycle allows, no child of the library is left (running or zombie),
 * fds and the library's heap (counted by an allocator hook) are back
 * where they started.
 *
 * Also: a hundred children released by one pipe close, so they exit within
 * the same instant, under each child-exit source.
 */
#define _GNU_SOURCE
#include "hard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4

enum {
    K_EXIT,
    K_SLEEP_EXIT,
    K_IGNORE_TERM,
    K_GRANDCHILD,
    K_DETACH_KILL,
    K_DETACH_EXIT,
    K_KINDS
};

typedef struct worker {
    int id;
    long cycles;
    uint64_t seed;
    double deadline_ms;
    long done, by_kind[K_KINDS], exited, signalled;
    long bad;
    char first_bad[256];
} worker;

/* Records the first inconsistency of a worker. */
static void bad(worker *w, long cycle, int kind, const char *what, int r,
                const asp_status *st)
{
    if (w->bad++ == 0)
        snprintf(w->first_bad, sizeof w->first_bad,
                 "thread %d cycle %ld kind %d: %s (r=%d %s, kind=%d code=%d "
                 "signal=%d)",
                 w->id, cycle, kind, what, r, asp_strerror(r),
                 st ? (int)st->kind : -1, st ? st->code : -1,
                 st ? st->signal : -1);
}

/* Whether st is "exited with code" or "killed by one of the signals". */
static int status_ok(const asp_status *st, int code, int sig1, int sig2)
{
    if (st->kind == ASP_EXIT_CODE)
        return code >= 0 && st->code == code;
    if (st->kind == ASP_EXIT_SIGNAL)
        return st->signal == sig1 || st->signal == sig2;
    return 0;
}

/* Spawns the helper child with a fixed argument list. */
static int spawn(asp_loop *loop, asp_proc **p, const asp_spawn_opts *o,
                 const char *a1, const char *a2, const char *a3, const char *a4,
                 const char *a5)
{
    const char *argv[] = {asp_t_child_path(), a1, a2, a3, a4, a5, NULL};
    return asp_spawn(loop, p, argv, o);
}

/* One cycle of the given kind. */
static void cycle(worker *w, asp_loop *loop, hard_rng *rng, long n, int kind)
{
    char code[16], ms[16], grace[16];
    int c = (int)hard_rng_below(rng, 100);
    int64_t delay = hard_rng_below(rng, 4);
    snprintf(code, sizeof code, "%d", c);
    snprintf(ms, sizeof ms, "%u", hard_rng_below(rng, 5));
    snprintf(grace, sizeof grace, "%u", hard_rng_below(rng, 30));
    asp_kill_opts k = {{{SIGTERM, hard_rng_below(rng, 6)}, {SIGKILL, 0}}, 0};
    asp_spawn_opts o = {0};
    asp_proc *p = NULL;
    asp_status st = {0};
    int r;

    switch (kind) {
    case K_EXIT:
        r = spawn(loop, &p, NULL, "exit", code, NULL, NULL, NULL);
        break;
    case K_SLEEP_EXIT:
        r = spawn(loop, &p, NULL, "sleep", ms, "exit", code, NULL);
        break;
    case K_IGNORE_TERM:
        r = spawn(loop, &p, NULL, "ignore-term", "sleep", "3000", NULL, NULL);
        break;
    case K_GRANDCHILD:
        /* The grandchild keeps stdout open for up to 30 ms after the child
         * exits; the group kill reaches it, the eof grace bounds the read. */
        o.stdio[1].mode = ASP_STDIO_PIPE;
        o.flags = ASP_SPAWN_NEW_PGROUP;
        o.eof_grace_ms = 10;
        r = spawn(loop, &p, &o, "grandchild", grace, "say", "x", "exit");
        c = 0;
        break;
    case K_DETACH_KILL:
        r = spawn(loop, &p, NULL, "sleep", "50", "exit", "1", NULL);
        break;
    default: r = spawn(loop, &p, NULL, "exit", "0", NULL, NULL, NULL); break;
    }
    if (r < 0) {
        bad(w, n, kind, "spawn failed", r, NULL);
        return;
    }

    switch (kind) {
    case K_EXIT:
        r = asp_proc_wait(p, delay, &st);
        if (r == -ETIMEDOUT) {
            r = asp_proc_kill(p);
            if (r == 0 || r == -ESRCH)
                r = asp_proc_wait(p, ASP_FOREVER, &st);
        }
        if (r < 0 || !status_ok(&st, c, SIGKILL, SIGKILL))
            bad(w, n, kind, "exit or kill", r, &st);
        break;
    case K_SLEEP_EXIT:
        r = asp_proc_wait_or_stop(p, delay, &k, &st);
        if ((r < 0 && r != -ETIMEDOUT) || !status_ok(&st, c, SIGTERM, SIGKILL))
            bad(w, n, kind, "wait or stop", r, &st);
        break;
    case K_IGNORE_TERM:
        /* SIGTERM may land before the child ignores it: TERM or KILL. */
        r = asp_proc_wait_or_stop(p, delay, &k, &st);
        if (r != -ETIMEDOUT || !status_ok(&st, -1, SIGTERM, SIGKILL))
            bad(w, n, kind, "stop of a TERM-ignoring child", r, &st);
        break;
    case K_GRANDCHILD: {
        asp_comm_opts co = {0};
        co.timeout_ms = delay + 1;
        co.flags = ASP_COMM_ESCALATE;
        co.kill = k;
        co.kill.flags = ASP_KILL_GROUP;
        asp_result res;
        r = asp_communicate(p, &co, &res);
        st = res.status;
        if ((r < 0 && r != -ETIMEDOUT) ||
            !status_ok(&st, c, SIGTERM, SIGKILL) ||
            (r == 0 && (res.out_len != 1 || res.out[0] != 'x')))
            bad(w, n, kind, "communicate with a grandchild", r, &st);
        asp_result_free(&res);
        break;
    }
    case K_DETACH_KILL:
        (void)asp_proc_wait(p, delay, &st);
        r = asp_proc_free(p, ASP_FREE_KILL);
        if (r < 0)
            bad(w, n, kind, "free(KILL)", r, NULL);
        w->done++;
        return;
    default:
        r = asp_proc_free(p, ASP_FREE_DETACH);
        if (r < 0)
            bad(w, n, kind, "free(DETACH)", r, NULL);
        w->done++;
        return;
    }
    if (st.kind == ASP_EXIT_CODE)
        w->exited++;
    else if (st.kind == ASP_EXIT_SIGNAL)
        w->signalled++;
    r = asp_proc_free(p, ASP_FREE_DETACH);
    if (r < 0)
        bad(w, n, kind, "free", r, NULL);
    w->done++;
}

/* One thread: its own loop, its share of the cycles. */
static void *work(void *arg)
{
    worker *w = arg;
    hard_rng rng;
    hard_rng_seed(&rng, w->seed);
    asp_loop *loop = NULL;
    int r = asp_loop_new(&loop, NULL);
    if (r < 0) {
        bad(w, 0, -1, "asp_loop_new", r, NULL);
        return NULL;
    }
    for (long n = 0; n < w->cycles && w->bad == 0; n++) {
        if (asp_t_now_ms() > w->deadline_ms) {
            bad(w, n, -1, "time budget exhausted", 0, NULL);
            break;
        }
        int kind = (int)hard_rng_below(&rng, K_KINDS);
        w->by_kind[kind]++;
        cycle(w, loop, &rng, n, kind);
        /* Background reaps of detached children happen as the loop runs. */
        (void)asp_loop_run(loop, ASP_RUN_NOWAIT);
    }
    /* Detached children still running are killed and reaped here. */
    r = asp_loop_free(loop);
    if (r < 0)
        bad(w, w->cycles, -1, "asp_loop_free", r, NULL);
    return NULL;
}

/* Reads "pid (comm) S ppid pgrp" of a process; 0 or -1. */
static int proc_ids(int pid, int *ppid, int *pgrp, char *state)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *rp = strrchr(buf, ')');
    if (!rp || sscanf(rp + 1, " %c %d %d", state, ppid, pgrp) != 3)
        return -1;
    return 0;
}

/* Counts our children that belong to the library: every cycle that makes
 * grandchildren gives its child a group of its own, so an orphaned
 * grandchild is the one process here whose group is neither ours nor led
 * by itself. */
static int library_children_left(void)
{
    int self = getpid(), mygrp = getpgrp(), left = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int pid = atoi(e->d_name), ppid, pgrp;
        char state;
        if (proc_ids(pid, &ppid, &pgrp, &state) < 0 || ppid != self)
            continue;
        if (pgrp == mygrp || pgrp == pid)
            left++;
    }
    closedir(d);
    return left;
}

START_TEST(stress_spawn_kill_reap_threads)
{
    long total = hard_env_long("ASP_STRESS_CYCLES", 10000);
    uint64_t seed = (uint64_t)hard_env_long("ASP_STRESS_SEED", 20240601);
    double budget_ms = (double)hard_env_long("ASP_STRESS_SECONDS", 300) *
                       1000.0 * hard_slowness();
    hard_alloc alloc;
    hard_alloc_install(&alloc);
    hard_subreaper_on();

    worker w[THREADS];
    pthread_t th[THREADS];
    double t0 = asp_t_now_ms();
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        w[i].cycles = total / THREADS + (i < total % THREADS ? 1 : 0);
        w[i].seed = seed * 1000003u + (uint64_t)i;
        w[i].deadline_ms = t0 + budget_ms;
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    long done = 0, exited = 0, signalled = 0, kinds[K_KINDS] = {0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        done += w[i].done;
        exited += w[i].exited;
        signalled += w[i].signalled;
        for (int k = 0; k < K_KINDS; k++)
            kinds[k] += w[i].by_kind[k];
    }
    for (int i = 0; i < THREADS; i++)
        ck_assert_msg(w[i].bad == 0, "%ld bad; first: %s", w[i].bad,
                      w[i].first_bad);
    ck_assert_int_eq(done, total);

    /* Every loop is freed: nothing of the library may be left. */
    ck_assert_int_eq(library_children_left(), 0);
    ck_assert_int_eq(atomic_load(&alloc.live), 0);
    hard_alloc_remove();
    int orphans = hard_reap_orphans((int)(5000 * hard_slowness()));
    printf("stress: %ld cycles in %.1f s, seed %llu (%ld exited, %ld "
           "signalled; kinds %ld/%ld/%ld/%ld/%ld/%ld; %d orphaned "
           "grandchildren reaped; %ld library allocations)\n",
           done, (asp_t_now_ms() - t0) / 1000.0, (unsigned long long)seed,
           exited, signalled, kinds[0], kinds[1], kinds[2], kinds[3], kinds[4],
           kinds[5], orphans, atomic_load(&alloc.calls));
}
END_TEST

/* Waits for every child of a loop started with source src. */
static void hundred_at_once(int src)
{
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    /* signalfd needs SIGCHLD blocked, the self-pipe needs it delivered
     * (the runner blocks it for the whole process under signalfd). */
    if (src == ASP_SOURCE_SIGNALFD)
        sigprocmask(SIG_BLOCK, &chld, &old);
    else if (src == ASP_SOURCE_SELFPIPE)
        sigprocmask(SIG_UNBLOCK, &chld, &old);
    asp_loop *loop = NULL;
    asp_loop_opts lo = {0, src};
    int r = asp_loop_new(&loop, &lo);
    if (r == -ENOTSUP) {
        if (src == ASP_SOURCE_SIGNALFD || src == ASP_SOURCE_SELFPIPE)
            sigprocmask(SIG_SETMASK, &old, NULL);
        return; /* this kernel or build has no such source */
    }
    ck_assert_msg(r == 0, "asp_loop_new(source %d): %s", src, asp_strerror(r));

    /* Each child reads the gate to EOF, then exits: closing our end
     * releases all of them at the same instant. */
    int gate[2];
    ck_assert_int_eq(pipe2(gate, O_CLOEXEC), 0);
    asp_spawn_opts o = {0};
    o.stdio[0].mode = ASP_STDIO_FD;
    o.stdio[0].fd = gate[0];
    o.stdio[1].mode = ASP_STDIO_NULL;
    asp_proc *ps[100];
    for (int i = 0; i < 100; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", i);
        ps[i] = ASP_T_SPAWN(loop, &o, "echo", "exit", code);
    }
    close(gate[0]);
    close(gate[1]);
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    for (int i = 0; i < 100; i++) {
        asp_status st;
        asp_proc_status(ps[i], &st);
        ck_assert_msg(st.kind == ASP_EXIT_CODE && st.code == i,
                      "source %s child %d: kind %d code %d",
                      asp_loop_child_source_name(loop), i, st.kind, st.code);
        asp_t_free(ps[i]);
    }
    asp_t_loop_free(loop);
    if (src == ASP_SOURCE_SIGNALFD || src == ASP_SOURCE_SELFPIPE)
        sigprocmask(SIG_SETMASK, &old, NULL);
}

START_TEST(stress_hundred_exits_same_instant)
{
    static const int srcs[] = {ASP_SOURCE_PIDFD, ASP_SOURCE_SIGNALFD,
                               ASP_SOURCE_SELFPIPE, ASP_SOURCE_DEFAULT};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++)
        hundred_at_once(srcs[i]);
}
END_TEST

/* The stress suite. */
Suite *suite_stress(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = asp_t_case("stress", 900);
    tcase_add_test(tc, stress_spawn_kill_reap_threads);
    tcase_add_test(tc, stress_hundred_exits_same_instant);
    suite_add_tcase(s, tc);
    return s;
}
