/*
 * runner.c - the main() of both test runners (tests/main.c and
 * tests/hard/main.c), which differ only in their suite tables.
 *
 *   RUNNER --matrix                   "backend:source:group" for every pair
 *                                     this build and kernel support
 *   RUNNER [--group G] [suite ...]    run the suites (default: all)
 *
 * The backend and child-exit source come from ASP_BACKEND and
 * ASP_CHILD_SOURCE, which the make targets set for each matrix entry. For
 * the signalfd source SIGCHLD is blocked here, before any thread or test
 * process exists, because signalfd only works when every thread blocks it.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const backends[] = {"epoll", "kqueue", "poll"};
static const int backend_ids[] = {ASP_BACKEND_EPOLL, ASP_BACKEND_KQUEUE,
                                  ASP_BACKEND_POLL};
static const char *const sources[] = {"pidfd", "signalfd", "selfpipe",
                                      "kqueue"};
static const int source_ids[] = {ASP_SOURCE_PIDFD, ASP_SOURCE_SIGNALFD,
                                 ASP_SOURCE_SELFPIPE, ASP_SOURCE_KQUEUE};

/* Prints "backend:source:group" for every pair a loop can be created
 * with: the first source of a backend runs every suite ("all"), the
 * others only the suites that depend on the source ("proc"). */
static int print_matrix(void)
{
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    for (size_t b = 0; b < 3; b++) {
        int first = 1;
        for (size_t k = 0; k < 4; k++) {
            asp_loop *loop = NULL;
            asp_loop_opts o = {backend_ids[b], source_ids[k]};
            /* signalfd needs SIGCHLD blocked; the runner blocks it. */
            sigprocmask(SIG_BLOCK, &s, &old);
            int r = asp_loop_new(&loop, &o);
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (r < 0)
                continue;
            asp_loop_free(loop);
            printf("%s:%s:%s\n", backends[b], sources[k],
                   first ? "all" : "proc");
            first = 0;
        }
    }
    return 0;
}

/* Whether suite e is selected by group and names. */
static int wanted(const asp_t_suite *e, const char *group, int argc,
                  char **argv, int first)
{
    if (group && !strcmp(group, "proc") && !e->proc)
        return 0;
    if (first >= argc)
        return 1;
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], e->name))
            return 1;
    return 0;
}

int asp_t_runner_main(int argc, char **argv, const asp_t_suite *suites,
                      size_t n)
{
    if (argc > 1 && !strcmp(argv[1], "--matrix"))
        return print_matrix();
    const char *group = NULL;
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--group")) {
        group = argv[2];
        first = 3;
    }

    const char *src = getenv("ASP_CHILD_SOURCE");
    if (src && !strcmp(src, "signalfd")) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGCHLD);
        sigprocmask(SIG_BLOCK, &s, NULL);
    }

    SRunner *sr = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!wanted(&suites[i], group, argc, argv, first))
            continue;
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr) {
        /* Nothing left after the group: fine when every name is a suite
         * (it runs in another pair of the matrix), an error otherwise. */
        for (int i = first; i < argc; i++) {
            size_t k = 0;
            while (k < n && strcmp(argv[i], suites[k].name))
                k++;
            if (k == n) {
                fprintf(stderr, "no such suite: %s\n", argv[i]);
                return 2;
            }
        }
        if (first >= argc) {
            fprintf(stderr, "no suite in this group\n");
            return 2;
        }
        printf("(the suites asked for do not run in this group)\n");
        return 0;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
