/*
 * main.c - the runner of the hardening suites.
 *
 *   check_hard --matrix              "backend:source:group" for every pair
 *                                    this build and kernel support
 *   check_hard [--group G] [suite ...]  run the suites (default: all)
 *
 * Like the main runner, the backend and child-exit source come from
 * ASP_BACKEND and ASP_CHILD_SOURCE. Every hardening suite depends on the
 * source, so each pair runs all of them (group "proc" is accepted and
 * means the same). For the signalfd source SIGCHLD is blocked here, before
 * any thread or test process exists.
 */
#define _GNU_SOURCE
#include "hard.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    Suite *(*make)(void);
} suite_entry;

static const suite_entry suites[] = {
    {"stress", suite_stress},
    {"fault", suite_fault},
    {"hostile", suite_hostile},
    {"regress", suite_regress},
};

static const char *const backends[] = {"epoll", "kqueue", "poll"};
static const int backend_ids[] = {ASP_BACKEND_EPOLL, ASP_BACKEND_KQUEUE,
                                  ASP_BACKEND_POLL};
static const char *const sources[] = {"pidfd", "signalfd", "selfpipe",
                                      "kqueue"};
static const int source_ids[] = {ASP_SOURCE_PIDFD, ASP_SOURCE_SIGNALFD,
                                 ASP_SOURCE_SELFPIPE, ASP_SOURCE_KQUEUE};

/* Prints every (backend, source) pair a loop can be created with. */
static int print_matrix(void)
{
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    for (size_t b = 0; b < 3; b++)
        for (size_t k = 0; k < 4; k++) {
            asp_loop *loop = NULL;
            asp_loop_opts o = {backend_ids[b], source_ids[k]};
            sigprocmask(SIG_BLOCK, &s, &old);
            int r = asp_loop_new(&loop, &o);
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (r < 0)
                continue;
            asp_loop_free(loop);
            printf("%s:%s:proc\n", backends[b], sources[k]);
        }
    return 0;
}

/* Whether suite e is named on the command line (or nothing is). */
static int wanted(const suite_entry *e, int argc, char **argv, int first)
{
    if (first >= argc)
        return 1;
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], e->name))
            return 1;
    return 0;
}

/* Runs the selected suites; exit status 0 only if all passed. */
int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--matrix"))
        return print_matrix();
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--group"))
        first = 3;

    const char *src = getenv("ASP_CHILD_SOURCE");
    if (src && !strcmp(src, "signalfd")) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGCHLD);
        sigprocmask(SIG_BLOCK, &s, NULL);
    }

    SRunner *sr = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (!wanted(&suites[i], argc, argv, first))
            continue;
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr) {
        fprintf(stderr, "no such suite\n");
        return 2;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
