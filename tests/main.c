/*
 * main.c - the test runner.
 *
 *   check_asproc [--matrix | --group G] [suite ...]   (see runner.c)
 *
 * The backend and child-exit source come from ASP_BACKEND and
 * ASP_CHILD_SOURCE, which `make check` sets for each run of its matrix
 * (runner.c blocks SIGCHLD first for the signalfd source).
 */
#include "harness.h"

static const asp_t_suite suites[] = {
    {"loop", suite_loop, 0},
    {"timer", suite_timer, 0},
    {"io", suite_io, 0},
    {"spawn", suite_spawn, 1},
    {"stdio", suite_stdio, 1},
    {"wait", suite_wait, 1},
    {"kill", suite_kill, 1},
    {"threads", suite_threads, 1},
    {"stream", suite_stream, 1},
    {"write", suite_write, 1},
    {"forward", suite_forward, 1},
    {"communicate", suite_communicate, 1},
    {"contain", suite_contain, 1},
    {"asprun", suite_asprun, 1},
    {"embed", suite_embed, 1},
    {"pty", suite_pty, 1},
    {"limits", suite_limits, 1},
    {"signals", suite_signals, 1},
    {"fork", suite_fork, 1},
#ifdef ASP_TEST_EXAMPLES
    {"examples", suite_examples, 0},
#endif
};

/* Runs the selected suites (tests/runner.c). */
int main(int argc, char **argv)
{
    return asp_t_runner_main(argc, argv, suites,
                             sizeof suites / sizeof suites[0]);
}
