/*
 * pattern.h - the byte patterns the benchmark writer emits and every
 * reader checks.
 *
 * Each byte is a function of its offset in the stream, so a reader can
 * check any chunk without keeping state beyond its running offset. The
 * patterns repeat with a period that is not a power of two, so a chunk
 * that is dropped, repeated or moved by a power-of-two size is caught.
 */
#ifndef BENCH_PATTERN_H
#define BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Raw bytes: period 65521 (the largest prime below 64 KiB). */
#define PAT_BYTES_PERIOD ((size_t)65521)

/* Lines of 63 printable characters and '\n'; 1021 (a prime) different
 * lines, then it repeats. */
#define PAT_LINE_LEN ((size_t)64)
#define PAT_LINES_PERIOD (PAT_LINE_LEN * (size_t)1021)

enum pat_kind { PAT_BYTES = 0, PAT_LINES = 1 };

/* A precomputed pattern: buf holds period + span bytes, so any offset
 * reduced modulo the period starts a run of at least span valid bytes. */
struct pat {
    int kind;
    size_t period;
    size_t span;
    unsigned char *buf;
};

/* Returns the byte of pattern kind at stream offset off. The reference
 * definition; the Python peer implements the same formula. */
unsigned char pat_byte(int kind, uint64_t off);

/* Builds p for kind with runs of at least span bytes. Returns 0, or -1 if
 * memory is short. */
int pat_init(struct pat *p, int kind, size_t span);

/* Frees the buffer of p. */
void pat_free(struct pat *p);

/* Returns a pointer to span valid pattern bytes starting at stream offset
 * off. */
const unsigned char *pat_at(const struct pat *p, uint64_t off);

/* Returns 1 if data[0..len) equals the pattern starting at stream offset
 * off, else 0. Any len is fine: long data is compared in pieces. */
int pat_check(const struct pat *p, uint64_t off, const void *data, size_t len);

#endif
