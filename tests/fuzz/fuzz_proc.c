/*
 * fuzz_proc.c - libFuzzer entry for API call sequences on processes
 * (proc_target.c). ASP_FUZZ_CHILD is the helper child's path (set by the
 * Makefile; the environment variable of the same name overrides it).
 */
#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef ASP_FUZZ_CHILD
#define ASP_FUZZ_CHILD "asp_child"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input; a contract violation traps so that libFuzzer saves it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *child = getenv("ASP_FUZZ_CHILD");
    char why[256];
    if (fuzz_proc_run(data, size, child ? child : ASP_FUZZ_CHILD, why,
                      sizeof why) < 0) {
        fprintf(stderr, "fuzz_proc: %s\n", why);
        __builtin_trap();
    }
    return 0;
}
