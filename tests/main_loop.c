/*
 * main_loop.c - the runner of the reactor's own suites (loop, timer, io),
 * linked with the objects of src/loop alone: `make check` builds it, so a
 * reference from the reactor up into the streams or the processes fails
 * the link (the reactor is a room of its own).
 *
 *   check_loop [--matrix | --group G] [suite ...]   (see runner.c)
 */
#include "harness.h"

static const asp_t_suite suites[] = {
    {"loop", suite_loop, 0},
    {"timer", suite_timer, 0},
    {"io", suite_io, 0},
};

/* Runs the selected suites (tests/runner.c). */
int main(int argc, char **argv)
{
    return asp_t_runner_main(argc, argv, suites,
                             sizeof suites / sizeof suites[0]);
}
