/*
 * writer.c - the child every stream benchmark reads from.
 *
 *   writer [--cpu K] [--lines] [--to out|err|both] [--chunk S] COUNT
 *   writer [--cpu K] --hang
 *   writer [--cpu K] --sink [--verify] COUNT
 *
 * Writes COUNT bytes (with --lines: COUNT lines of 64 bytes) of the
 * pattern from pattern.h in writes of S bytes (default 64 KiB), to stdout,
 * stderr or both (each stream then carries the whole pattern), and exits
 * 0. The pattern is precomputed once, so each write is a plain write()
 * from the buffer: the writer should never be what limits a benchmark.
 *
 * --hang ignores SIGTERM, writes one byte "R" to stdout once that is in
 * place, and waits for a signal it cannot ignore (kill escalation).
 *
 * --sink is the other end of a forwarding benchmark: it reads stdin to
 * EOF in 1 MiB reads and exits 0 if it got COUNT bytes (with --verify:
 * of the byte pattern), else prints FAIL and exits 2.
 *
 * With BENCH_CORRUPT_AT=N in the environment the byte at offset N is
 * flipped, so anyone can watch every reader's byte check fail
 * (BENCH_CORRUPT_AT=100000 make bench-quick must exit non-zero).
 */
#include "common.h"
#include "pattern.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes all of buf to fd, resuming after partial writes and EINTR.
 * Exits with 1 if the reader went away or another error occurs. */
static void write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            exit(1);
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Signals readiness once SIGTERM is ignored, then sleeps until killed. */
static _Noreturn void hang(void)
{
    signal(SIGTERM, SIG_IGN);
    write_all(1, (const unsigned char *)"R", 1);
    for (;;)
        pause();
}

/* Reads stdin to EOF; exits 0 when it was count bytes of the pattern
 * (checked only when verify is set), 2 otherwise. */
static _Noreturn void sink(uint64_t count, int verify)
{
    static unsigned char buf[1 << 20];
    struct pat p;
    if (verify && pat_init(&p, PAT_BYTES, sizeof buf) != 0)
        exit(1);
    uint64_t got = 0;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            exit(1);
        }
        if (verify && !pat_check(&p, got, buf, (size_t)n))
            bench_mismatch("sink: forwarded bytes differ", got);
        got += (uint64_t)n;
    }
    if (got != count)
        bench_mismatch("sink: forwarded byte count differs", got);
    exit(0);
}

/* Prints usage and exits with 1. */
static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: writer [--cpu K] [--lines] [--to out|err|both] "
                    "[--chunk S] COUNT | writer [--cpu K] --hang | "
                    "writer [--cpu K] --sink [--verify] COUNT\n");
    exit(1);
}

/* Parses the options, then writes the pattern or hangs. */
int main(int argc, char **argv)
{
    int lines = 0, to_out = 1, to_err = 0, sink_mode = 0, verify = 0;
    uint64_t chunk = 64 * 1024, count = 0;
    const char *count_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--cpu") == 0 && i + 1 < argc)
            bench_pin(atoi(argv[++i]));
        else if (strcmp(o, "--lines") == 0)
            lines = 1;
        else if (strcmp(o, "--hang") == 0)
            hang();
        else if (strcmp(o, "--sink") == 0)
            sink_mode = 1;
        else if (strcmp(o, "--verify") == 0)
            verify = 1;
        else if (strcmp(o, "--to") == 0 && i + 1 < argc) {
            const char *t = argv[++i];
            to_out = strcmp(t, "err") != 0;
            to_err = strcmp(t, "out") != 0;
        } else if (strcmp(o, "--chunk") == 0 && i + 1 < argc) {
            if (bench_parse_size(argv[++i], &chunk) != 0 || chunk == 0 ||
                chunk > (64u << 20))
                usage();
        } else if (o[0] != '-' && !count_arg)
            count_arg = o;
        else
            usage();
    }
    if (!count_arg || bench_parse_size(count_arg, &count) != 0)
        usage();
    if (sink_mode)
        sink(count, verify);
    uint64_t total = lines ? count * PAT_LINE_LEN : count;

    struct pat p;
    if (pat_init(&p, lines ? PAT_LINES : PAT_BYTES, (size_t)chunk) != 0)
        return 1;
    uint64_t corrupt = UINT64_MAX;
    const char *env = getenv("BENCH_CORRUPT_AT");
    if (env && bench_parse_size(env, &corrupt) != 0)
        usage();
    unsigned char *bad = malloc((size_t)chunk);
    if (!bad)
        return 1;
    for (uint64_t off = 0; off < total;) {
        size_t n = total - off < chunk ? (size_t)(total - off) : chunk;
        const unsigned char *src = pat_at(&p, off);
        if (corrupt >= off && corrupt - off < n) {
            memcpy(bad, src, n);
            bad[corrupt - off] ^= 0x20; /* stays printable in lines */
            src = bad;
        }
        if (to_out)
            write_all(1, src, n);
        if (to_err)
            write_all(2, src, n);
        off += n;
    }
    return 0;
}
