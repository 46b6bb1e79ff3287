/*
 * pattern.c - the verifiable byte patterns shared by the writer and the
 * readers (see pattern.h).
 */
#include "pattern.h"

#include <stdlib.h>
#include <string.h>

/* Returns the byte of pattern kind at stream offset off. Kept to integer
 * arithmetic that Python reproduces exactly. */
unsigned char pat_byte(int kind, uint64_t off)
{
    if (kind == PAT_LINES) {
        uint64_t col = off % PAT_LINE_LEN;
        uint64_t line =
            (off / PAT_LINE_LEN) % (PAT_LINES_PERIOD / PAT_LINE_LEN);
        if (col == PAT_LINE_LEN - 1)
            return '\n';
        /* Printable ASCII 33..126, never '\n', varying by line and column
         * so a swapped or shifted line does not match. */
        return (unsigned char)(33 + (line * 31 + col * 7) % 94);
    }
    uint64_t i = off % PAT_BYTES_PERIOD;
    return (unsigned char)((i * 131 + (i >> 8) * 7 + 1) & 0xff);
}

/* Builds p for kind with runs of at least span bytes. Returns 0, or -1 if
 * memory is short. */
int pat_init(struct pat *p, int kind, size_t span)
{
    p->kind = kind;
    p->period = kind == PAT_LINES ? PAT_LINES_PERIOD : PAT_BYTES_PERIOD;
    p->span = span;
    p->buf = malloc(p->period + span);
    if (!p->buf)
        return -1;
    for (size_t i = 0; i < p->period + span; i++)
        p->buf[i] = pat_byte(kind, i);
    return 0;
}

/* Frees the buffer of p. */
void pat_free(struct pat *p)
{
    free(p->buf);
    p->buf = NULL;
}

/* Returns a pointer to span valid pattern bytes starting at stream offset
 * off. */
const unsigned char *pat_at(const struct pat *p, uint64_t off)
{
    return p->buf + off % p->period;
}

/* Returns 1 if data[0..len) equals the pattern starting at stream offset
 * off, else 0. */
int pat_check(const struct pat *p, uint64_t off, const void *data, size_t len)
{
    const unsigned char *d = data;
    /* A piece never exceeds span or one period, so pat_at() covers it. */
    size_t piece = p->span < p->period ? p->span : p->period;
    if (piece == 0)
        piece = 1;
    while (len > 0) {
        size_t n = len < piece ? len : piece;
        if (memcmp(d, pat_at(p, off), n) != 0)
            return 0;
        d += n;
        off += n;
        len -= n;
    }
    return 1;
}
