/*
 * asprun - run a command with a timeout that stops it for sure: the
 * escalation against the child, its process group or its whole tree (a
 * cgroup where the system allows), optional resource usage and a JSON
 * summary. Exit status as coreutils' timeout: the command's own, 128+N
 * when it died of signal N, 124 when the timeout stopped it; 125 when
 * asprun itself failed, 126 when the command could not be run, 127 when
 * it was not found.
 *
 * Also the shortest complete program on the library: a loop, a spawn
 * with the parent's stdio, asp_proc_wait_or_stop_start, signal
 * forwarding through asp_loop_wakeup (async-signal-safe), the status.
 */
#define _GNU_SOURCE
#include "asprun.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "NAME\n"
    "    asprun - run a command with a timeout that stops its whole tree\n"
    "\n"
    "SYNOPSIS\n"
    "    asprun [OPTION...] [--] COMMAND [ARG...]\n"
    "\n"
    "DESCRIPTION\n"
    "    Runs COMMAND with asprun's stdin, stdout and stderr. With a\n"
    "    timeout, COMMAND is sent SIGTERM when it expires, then SIGKILL\n"
    "    once the grace has passed, and asprun returns only when it is\n"
    "    gone. SIGINT and SIGTERM that asprun receives are passed on.\n"
    "    When COMMAND exits, what it left running in its group or tree\n"
    "    (background jobs, daemons) is stopped the same way.\n"
    "\n"
    "OPTIONS\n"
    "    --timeout MS   stop COMMAND after MS milliseconds (default: none)\n"
    "    --grace MS     time between SIGTERM and SIGKILL (default: 1000)\n"
    "    --kill WHAT    what the stop and passed-on signals reach:\n"
    "                     child  COMMAND alone\n"
    "                     group  COMMAND's process group (a new one)\n"
    "                     tree   everything COMMAND starts, also what\n"
    "                            leaves the group: a cgroup of its own\n"
    "                            where cgroup v2 is writable, else the\n"
    "                            group (the default)\n"
    "    --pty          run COMMAND on a pseudo-terminal of its own: its\n"
    "                   output is copied to asprun's stdout, asprun's\n"
    "                   stdin to its input (our terminal, if stdin is\n"
    "                   one, is in raw mode meanwhile: keys go through\n"
    "                   as typed), our window size follows it\n"
    "    --size RxC     the terminal's rows and columns (implies --pty;\n"
    "                   default: our terminal's size, else 24x80)\n"
    "    --rusage       add CPU time and memory to the summary\n"
    "    --json         print a summary as one JSON object on stderr\n"
    "    -h, --help     this text\n"
    "\n"
    "EXIT STATUS\n"
    "    COMMAND's exit status; 128+N if it died of signal N; 124 if the\n"
    "    timeout stopped it; 125 if asprun failed; 126 if COMMAND could\n"
    "    not be run; 127 if it was not found.\n"
    "\n"
    "JSON\n"
    "    exit_code, signal (a number or null), timed_out, containment\n"
    "    (\"cgroup\", \"pgroup\" or \"none\"), wall_ms; with --rusage also\n"
    "    utime_us, stime_us, maxrss_kb and, under a cgroup, tree_cpu_us\n"
    "    and tree_memory_peak_kb (null where not available).\n"
    "\n"
    "EXAMPLES\n"
    "    asprun --timeout 60000 -- make -j8\n"
    "    asprun --timeout 5000 --kill tree --json -- ./flaky-test\n"
    "    asprun --pty --size 50x132 -- ls --color=auto\n";

/* Signals received: set by the handler, taken by the wakeup callback on
 * the loop's thread. */
static volatile sig_atomic_t pending_int, pending_term, pending_winch;
static asp_loop *the_loop;

/* The handler: note the signal, wake the loop (async-signal-safe). A
 * SIGINT from the terminal reached COMMAND too when it shares our group,
 * so only one sent by kill(2) is passed on then (see forward). */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int from_kill = si->si_code == SI_USER || si->si_code == SI_QUEUE;
    if (sig == SIGWINCH)
        pending_winch = 1;
    else if (sig == SIGINT)
        pending_int = from_kill ? 2 : 1;
    else
        pending_term = from_kill ? 2 : 1;
    asp_loop_wakeup(the_loop);
}

/* Passes a received signal on to what --kill names. */
static void forward(run *r, int sig, int how)
{
    int same_group = asp_proc_containment(r->p) != ASP_CONTAIN_PGROUP;
    if (how == 1 && same_group)
        return; /* the terminal sent it to COMMAND already */
    if (r->o->kill == KILL_CHILD ||
        asp_proc_containment(r->p) == ASP_CONTAIN_NONE) {
        asp_proc_signal(r->p, sig);
        return;
    }
    /* Group or tree: a one-step "escalation" would SIGKILL after it; a
     * plain signal to the group (or to the child, which a cgroup tree
     * passes on as its own signals do) is what Ctrl-C means. */
    if (asp_proc_containment(r->p) == ASP_CONTAIN_PGROUP)
        kill(-asp_proc_pid(r->p), sig);
    else
        asp_proc_signal(r->p, sig);
}

/* The loop's wakeup: forward what the handler noted. */
static void on_wakeup(asp_loop *loop, void *data)
{
    run *r = data;
    (void)loop;
    if (pending_int) {
        int how = pending_int;
        pending_int = 0;
        forward(r, SIGINT, how);
    }
    if (pending_term) {
        int how = pending_term;
        pending_term = 0;
        forward(r, SIGTERM, how);
    }
    if (pending_winch) {
        pending_winch = 0;
        pty_resize(r);
    }
}

/* The run is over once COMMAND exited and, on a terminal, its output is
 * drained. */
void run_check_finished(run *r)
{
    r->finished = r->exited && (!r->o->pty || r->drained);
}

/* The child exited (err 0) or the timeout stopped it (-ETIMEDOUT). */
static void on_done(asp_proc *p, int err, const asp_status *st, void *data)
{
    run *r = data;
    (void)p;
    r->exited = 1;
    r->timed_out = err == -ETIMEDOUT;
    r->st = *st;
    run_check_finished(r);
}

/* Parses a non-negative number of milliseconds; -1 when it is not one. */
static int64_t parse_ms(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    return (int64_t)v;
}

/* Parses one option with its value; returns 1 when it took the value, 0
 * when it took none, -1 on an error. */
static int parse_option(opts *o, const char *a, const char *v)
{
    if (!strcmp(a, "--rusage"))
        return o->rusage = 1, 0;
    if (!strcmp(a, "--json"))
        return o->json = 1, 0;
    if (!strcmp(a, "--pty"))
        return o->pty = 1, 0;
    if (!v)
        return -1;
    if (!strcmp(a, "--size")) {
        unsigned r, c;
        char x;
        if (sscanf(v, "%ux%u%c", &r, &c, &x) != 2 || !r || !c || r > 65535 ||
            c > 65535)
            return -1;
        o->rows = (unsigned short)r;
        o->cols = (unsigned short)c;
        o->pty = 1;
        return 1;
    }
    if (!strcmp(a, "--timeout"))
        return (o->timeout_ms = parse_ms(v)) < 0 ? -1 : 1;
    if (!strcmp(a, "--grace"))
        return (o->grace_ms = parse_ms(v)) < 0 ? -1 : 1;
    if (!strcmp(a, "--kill")) {
        if (!strcmp(v, "child"))
            o->kill = KILL_CHILD;
        else if (!strcmp(v, "group"))
            o->kill = KILL_GROUP;
        else if (!strcmp(v, "tree"))
            o->kill = KILL_TREE;
        else
            return -1;
        return 1;
    }
    return -1;
}

/* Parses the command line; 0, 1 for --help, -1 on an error (said). */
static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = ASP_FOREVER;
    o->grace_ms = 1000;
    o->kill = KILL_TREE;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
        int took = parse_option(o, argv[i], i + 1 < argc ? argv[i + 1] : NULL);
        if (took < 0) {
            fprintf(stderr, "asprun: bad option or value: %s\n", argv[i]);
            return -1;
        }
        i += took;
    }
    if (i >= argc) {
        fprintf(stderr, "asprun: no command (see asprun --help)\n");
        return -1;
    }
    o->argv = argv + i;
    return 0;
}

/* Spawn options for --kill: the tree asks for a cgroup where one can be
 * had, else a group; group, a group; child, nothing. */
static asp_spawn_opts spawn_opts(const opts *o)
{
    asp_spawn_opts so = {0};
    so.contain = o->kill == KILL_TREE    ? ASP_CONTAIN_AUTO
                 : o->kill == KILL_GROUP ? ASP_CONTAIN_PGROUP
                                         : ASP_CONTAIN_NONE;
    so.eof_grace_ms = ASP_FOREVER; /* no pipes: the stdio is ours */
    if (o->pty) {
        pty_spawn_opts(o, &so);
        so.eof_grace_ms = 0; /* the default grace for the terminal */
    }
    return so;
}

/* The escalation for the timeout, aimed as --kill says (a tree that fell
 * back to a group is stopped as a group). */
static asp_kill_opts kill_opts(const opts *o, const asp_proc *p)
{
    asp_kill_opts k;
    memset(&k, 0, sizeof k);
    k.steps[0].signal = SIGTERM;
    k.steps[0].grace_ms = o->grace_ms;
    k.steps[1].signal = SIGKILL;
    int c = asp_proc_containment(p);
    if (o->kill == KILL_TREE && c == ASP_CONTAIN_CGROUP)
        k.flags = ASP_KILL_TREE;
    else if (o->kill != KILL_CHILD && c == ASP_CONTAIN_PGROUP)
        k.flags = ASP_KILL_GROUP;
    return k;
}

/* Installs the forwarding handlers (asprun is a program: its signals are
 * its own to handle). */
static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
}

/* Gives the terminal's foreground to COMMAND's new group (as a shell does
 * for a job), so that it can read the terminal and gets Ctrl-C; returns
 * whether it did, for restore_terminal. */
static int hand_terminal(asp_proc *p)
{
    if (asp_proc_containment(p) != ASP_CONTAIN_PGROUP || !isatty(0) ||
        tcgetpgrp(0) != getpgrp() || asp_proc_stdout(p))
        return 0; /* (with --pty, COMMAND has a terminal of its own) */
    return tcsetpgrp(0, asp_proc_pid(p)) == 0;
}

/* Takes the terminal's foreground back (SIGTTOU blocked: we are in the
 * background group while we ask). */
static void restore_terminal(void)
{
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, &old);
    (void)tcsetpgrp(0, getpgrp());
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* The exit status as coreutils' timeout gives it. */
static int exit_code(const run *r)
{
    if (r->timed_out)
        return 124;
    if (r->st.kind == ASP_EXIT_CODE)
        return r->st.code;
    if (r->st.kind == ASP_EXIT_SIGNAL)
        return 128 + r->st.signal;
    return 125;
}

/* A number or null. */
static void json_num(const char *name, int ok, int64_t v)
{
    if (ok)
        fprintf(stderr, ", \"%s\": %lld", name, (long long)v);
    else
        fprintf(stderr, ", \"%s\": null", name);
}

/* The --json summary, one object on one line of stderr. */
static void print_json(const run *r, double wall_ms)
{
    static const char *const names[] = {"none", "cgroup", "cgroup", "pgroup"};
    const asp_status *st = &r->st;
    int c = asp_proc_containment(r->p);
    fprintf(stderr, "{\"exit_code\": %d", exit_code(r));
    json_num("signal", st->kind == ASP_EXIT_SIGNAL, st->signal);
    fprintf(stderr, ", \"timed_out\": %s, \"containment\": \"%s\"",
            r->timed_out ? "true" : "false", names[c < 0 ? 0 : c]);
    fprintf(stderr, ", \"wall_ms\": %.0f", wall_ms);
    if (r->o->rusage) {
        int ok = st->usage.err == 0;
        json_num("utime_us", ok, st->usage.utime_us);
        json_num("stime_us", ok, st->usage.stime_us);
        json_num("maxrss_kb", ok, st->usage.maxrss_kb);
        json_num("tree_cpu_us", st->tree.cpu_err == 0, st->tree.cpu_us);
        json_num("tree_memory_peak_kb", st->tree.memory_err == 0,
                 st->tree.memory_peak_kb);
    }
    fprintf(stderr, "}\n");
}

/* Milliseconds on the monotonic clock. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Spawns COMMAND; on failure says why and returns the exit status. */
static int start(run *r, const opts *o)
{
    asp_spawn_opts so = spawn_opts(o);
    int e = asp_spawn(r->loop, &r->p, (const char *const *)o->argv, &so);
    if (e < 0) {
        fprintf(stderr, "asprun: %s: %s\n", o->argv[0], asp_strerror(e));
        return e == -ENOENT ? 127 : 126;
    }
    asp_kill_opts k = kill_opts(o, r->p);
    e = asp_proc_wait_or_stop_start(r->p, o->timeout_ms, &k, on_done, r);
    if (e == 0 && o->pty)
        e = pty_start(r);
    if (e < 0) {
        fprintf(stderr, "asprun: %s\n", asp_strerror(e));
        asp_proc_free(r->p, ASP_FREE_KILL);
        return 125;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        fputs(usage_text, pr > 0 ? stdout : stderr);
        return pr > 0 ? 0 : 125;
    }
    run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    /* ASP_CHILD_SOURCE=signalfd needs SIGCHLD blocked, which asprun (one
     * thread) may do; the child starts with an empty mask anyway. */
    const char *src = getenv("ASP_CHILD_SOURCE");
    if (src && !strcmp(src, "signalfd")) {
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
    }
    if (asp_loop_new(&r.loop, NULL) < 0) {
        fprintf(stderr, "asprun: cannot create a loop\n");
        return 125;
    }
    the_loop = r.loop;
    asp_loop_on_wakeup(r.loop, on_wakeup, &r);
    install_handlers();
    double t0 = now_ms();
    int code = start(&r, &o);
    if (code == 0) {
        int fg = hand_terminal(r.p);
        int e = asp_loop_run_until(r.loop, &r.finished);
        if (fg)
            restore_terminal();
        if (o.pty)
            pty_finish(&r);
        code = e < 0 ? 125 : exit_code(&r);
        /* What COMMAND left running in its group or tree goes with it
         * (a cgroup cannot be removed while it holds processes). */
        if (o.kill != KILL_CHILD) {
            asp_kill_opts k = kill_opts(&o, r.p);
            asp_proc_stop(r.p, &k, NULL);
            /* The cgroup's figures come once its last member is gone. */
            asp_proc_wait_tree(r.p, 1000, NULL);
        }
        asp_proc_status(r.p, &r.st);
        if (o.json)
            print_json(&r, now_ms() - t0);
        asp_proc_free(r.p, ASP_FREE_KILL);
    }
    asp_loop_free(r.loop);
    return code;
}
