/*
 * peer_raw.c - the raw C peer: one measurement per run.
 *
 *   peer_raw tput|lines|capture|capseq|fwd|spawn|timer|jobs|many
 *            [options, see common.h]
 */
#include "common.h"
#include "raw.h"

#include <stdio.h>
#include <string.h>

/* Pins this process, then runs the mode named by argv[1]. */
int main(int argc, char **argv)
{
    struct bench_args a;
    bench_parse(argc, argv, &a);
    bench_pin(a.cpu);
    if (strcmp(a.mode, "tput") == 0)
        raw_tput(&a);
    else if (strcmp(a.mode, "lines") == 0)
        raw_lines(&a);
    else if (strcmp(a.mode, "fwd") == 0)
        raw_forward(&a);
    else if (strcmp(a.mode, "capture") == 0)
        raw_capture(&a);
    else if (strcmp(a.mode, "capseq") == 0)
        raw_capture_seq(&a);
    else if (strcmp(a.mode, "spawn") == 0)
        raw_spawn(&a);
    else if (strcmp(a.mode, "timer") == 0)
        raw_timer(&a);
    else if (strcmp(a.mode, "jobs") == 0)
        raw_jobs(&a);
    else if (strcmp(a.mode, "many") == 0)
        raw_many(&a);
    else {
        fprintf(stderr, "peer_raw: unknown mode %s\n", a.mode);
        return 1;
    }
    return 0;
}
