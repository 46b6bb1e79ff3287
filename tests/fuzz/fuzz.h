/*
 * fuzz.h - the fuzz targets' checking cores. Each runs one input and
 * returns 0, or -1 with a reason in why; the libFuzzer entry points
 * (fuzz_*.c) trap on -1, and the hardening corpus suite replays the
 * corpus (tests/fuzz/corpus/<target>/) through the same functions, so a
 * crash input saved there is a regression test from then on.
 */
#ifndef ASP_FUZZ_H
#define ASP_FUZZ_H

#include <asproc.h>

#include <stddef.h>

/* Arbitrary chunkings of arbitrary bytes through read / readexactly /
 * readline / readuntil / on_lines / on_chunks must give the data back. */
int fuzz_stream_run(const unsigned char *in, size_t n, char *why,
                    size_t whylen);

/* A random sequence of API calls on processes of one loop: nothing may
 * crash, every call returns 0 or a documented errno, and at the end no
 * child, zombie, fd or library memory is left. child is the path of the
 * helper child program (tests/child.c). */
int fuzz_proc_run(const unsigned char *in, size_t n, const char *child,
                  char *why, size_t whylen);

#endif
