/*
 * fuzz_stream.c - libFuzzer entry for the stream reader (stream_target.c).
 */
#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input; a contract violation traps so that libFuzzer saves it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    if (fuzz_stream_run(data, size, why, sizeof why) < 0) {
        fprintf(stderr, "fuzz_stream: %s\n", why);
        __builtin_trap();
    }
    return 0;
}
