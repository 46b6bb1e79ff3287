/*
 * main.c - the runner of the hardening suites: check_hard takes the same
 * arguments as check_asproc (tests/runner.c).
 */
#include "hard.h"

/* The suites that spawn depend on the source ("proc") and run under each
 * pair of the matrix; the capture buffer's white-box suite does not, and
 * runs once per backend. */
static const asp_t_suite suites[] = {
    {"stress", suite_stress, 1},   {"fault", suite_fault, 1},
    {"hostile", suite_hostile, 1}, {"corpus", suite_corpus, 1},
    {"capture", suite_capture, 0},
};

/* Runs the selected suites (tests/runner.c). */
int main(int argc, char **argv)
{
    return asp_t_runner_main(argc, argv, suites,
                             sizeof suites / sizeof suites[0]);
}
