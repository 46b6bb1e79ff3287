/*
 * asp_stream_bench.c - asproc's read paths under the same work as the
 * raw, libuv and asyncio peers: read-and-discard through
 * asp_stream_on_chunks, lines through asp_stream_on_lines, capture
 * through asp_communicate, forwarding into another process through
 * asp_stream_forward (or on_chunks + write, what one would do without it).
 */
#define _GNU_SOURCE
#include "asp_bench.h"
#include "child.h"
#include "pattern.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one continuous read keeps between callbacks. */
struct reader {
    const struct pat *pat; /* NULL: no byte check */
    uint64_t off;          /* bytes delivered */
    uint64_t lines;        /* lines delivered (lines mode) */
    int done;              /* set at EOF or error: ends run_until */
    int err;
};

/* Chunk callback: buf points into the stream's buffer; the chunk is only
 * counted (and checked when asked), then dropped, as a discard loop
 * would. */
static void on_chunk(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    struct reader *r = data;
    (void)s;
    if (err < 0 || len == 0) {
        r->err = err;
        r->done = 1;
        return;
    }
    if (r->pat && !pat_check(r->pat, r->off, buf, len))
        bench_mismatch("asproc: output differs from the pattern", r->off);
    r->off += len;
}

/* Line callback: one whole line per call. */
static void on_line(asp_stream *s, int err, const char *buf, size_t len,
                    void *data)
{
    struct reader *r = data;
    (void)s;
    if (err < 0 || len == 0) {
        r->err = err;
        r->done = 1;
        return;
    }
    if (r->pat && (len != PAT_LINE_LEN || !pat_check(r->pat, r->off, buf, len)))
        bench_mismatch("asproc: line differs from the pattern", r->lines);
    r->off += len;
    r->lines++;
}

/* Spawns the writer, reads its stdout continuously with the chunk or line
 * callback until EOF, reaps it, and prints the rate. */
static void read_run(const struct bench_args *a, int lines)
{
    struct pat pat;
    struct reader r;
    memset(&r, 0, sizeof r);
    if (a->verify) {
        if (pat_init(&pat, lines ? PAT_LINES : PAT_BYTES, (size_t)64 << 10))
            bench_die("pattern", ENOMEM);
        r.pat = &pat;
    }
    asp_spawn_opts o = asp_bench_opts(a);
    uint64_t want = lines ? a->size * PAT_LINE_LEN : a->size;
    asp_loop *loop;
    asp_proc *p;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    uint64_t t0 = bench_now_ns();
    asp_must(asp_spawn(loop, &p,
                       (const char *const *)bench_writer_argv(a, lines, 0), &o),
             "asp_spawn");
    asp_stream *s = asp_proc_stdout(p);
    if (lines)
        asp_must(asp_stream_on_lines(s, 0, on_line, &r), "on_lines");
    else
        asp_must(asp_stream_on_chunks(s, 0, on_chunk, &r), "on_chunks");
    asp_must(asp_loop_run_until(loop, &r.done), "asp_loop_run_until");
    asp_reap_ok(p);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    asp_must(asp_loop_free(loop), "asp_loop_free");
    asp_must(r.err, "continuous read");
    if (r.off != want)
        bench_mismatch("asproc: byte count differs", r.off);
    if (lines && r.lines != a->size)
        bench_mismatch("asproc: line count differs", r.lines);
    if (lines)
        bench_result("lines", a->variant, (double)a->size / secs / 1e6,
                     "Mlines/s");
    else
        bench_result("throughput", a->variant, (double)want / secs / 1e9,
                     "GB/s");
    if (a->verify)
        pat_free(&pat);
}

/* Read-and-discard throughput through asp_stream_on_chunks. */
void asp_tput(const struct bench_args *a)
{
    read_run(a, 0);
}

/* Line rate through asp_stream_on_lines. */
void asp_lines(const struct bench_args *a)
{
    read_run(a, 1);
}

/* Captures a->size bytes with asp_communicate, in a fresh process so the
 * peak RSS is this capture's own. Prints the rate and the peak RSS over
 * the captured size; the bytes are checked after the clock stops. */
void asp_capture(const struct bench_args *a)
{
    asp_spawn_opts o = asp_bench_opts(a);
    asp_loop *loop;
    asp_proc *p;
    asp_result res;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    uint64_t t0 = bench_now_ns();
    asp_must(asp_spawn(loop, &p,
                       (const char *const *)bench_writer_argv(a, 0, 0), &o),
             "asp_spawn");
    asp_must(asp_communicate(p, NULL, &res), "asp_communicate");
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    uint64_t rss = bench_peak_rss();
    if (res.status.kind != ASP_EXIT_CODE || res.status.code != 0)
        bench_die("writer did not exit 0", EIO);
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)1 << 20) != 0)
        bench_die("pattern", ENOMEM);
    if (res.out_len != a->size || !pat_check(&pat, 0, res.out, res.out_len))
        bench_mismatch("asproc: captured bytes differ", res.out_len);
    bench_result("capture", a->variant, (double)res.out_len / secs / 1e9,
                 "GB/s");
    bench_result("capture-rss", a->variant, (double)rss / (double)res.out_len,
                 "x-captured");
    pat_free(&pat);
    asp_result_free(&res);
    asp_must(asp_proc_free(p, ASP_FREE_DETACH), "asp_proc_free");
    asp_must(asp_loop_free(loop), "asp_loop_free");
}

/* The library's switch for its per-loop cache of capture mappings
 * (src/stream/capcache.c; internal, reached here through the static
 * library), so that the benchmark can show the capture with and without
 * it. */
extern int asp__capcache_off;

/* a->count captures of a->size bytes one after another on one loop,
 * through asp_communicate, each result checked and freed before the
 * next. A transport ending in "-nocache" runs without the library's
 * cache of capture mappings. Prints the aggregate rate. */
void asp_capture_seq(const struct bench_args *a)
{
    struct bench_args t = *a;
    char transport[32];
    snprintf(transport, sizeof transport, "%s", a->transport);
    char *cut = strstr(transport, "-nocache");
    if (cut) {
        *cut = '\0';
        asp__capcache_off = 1;
    }
    t.transport = transport;
    asp_spawn_opts o = asp_bench_opts(&t);
    asp_loop *loop;
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)a->size) != 0)
        bench_die("pattern", ENOMEM);
    char *const *argv = bench_writer_argv(a, 0, 0);
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < a->count; i++) {
        asp_proc *p;
        asp_result res;
        asp_must(asp_spawn(loop, &p, (const char *const *)argv, &o),
                 "asp_spawn");
        asp_must(asp_communicate(p, NULL, &res), "asp_communicate");
        if (res.status.kind != ASP_EXIT_CODE || res.status.code != 0)
            bench_die("writer did not exit 0", EIO);
        if (res.out_len != a->size || !pat_check(&pat, 0, res.out, res.out_len))
            bench_mismatch("asproc: captured bytes differ", (uint64_t)i);
        asp_result_free(&res);
        asp_must(asp_proc_free(p, ASP_FREE_DETACH), "asp_proc_free");
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    asp_must(asp_loop_free(loop), "asp_loop_free");
    bench_result("capseq", a->variant,
                 (double)a->size * (double)a->count / secs / 1e9, "GB/s");
    pat_free(&pat);
}

/* What the chunks variant of forwarding keeps between callbacks. */
struct relay {
    int fd; /* the sink's pipe (blocking) */
    uint64_t off;
    int done, err;
};

/* Writes each chunk to the sink, all of it, blocking. */
static void on_relay(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    struct relay *r = data;
    (void)s;
    if (err < 0 || len == 0) {
        r->err = err;
        r->done = 1;
        return;
    }
    r->off += len;
    bench_write_all(r->fd, buf, len);
}

/* Forwards the writer's output into the sink (child.h) with
 * asp_stream_forward (chunks == 0; the sink's pipe made non-blocking, as
 * the header advises) or with on_chunks + blocking write (chunks != 0).
 * The clock covers both spawns and reaps, as in the raw peer. */
void asp_forward(const struct bench_args *a, int chunks)
{
    asp_spawn_opts o = asp_bench_opts(a);
    asp_loop *loop;
    asp_proc *p;
    struct child k;
    struct relay r;
    memset(&r, 0, sizeof r);
    uint64_t moved;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    uint64_t t0 = bench_now_ns();
    sink_start(&k, a);
    asp_must(asp_spawn(loop, &p,
                       (const char *const *)bench_writer_argv(a, 0, 0), &o),
             "asp_spawn");
    asp_stream *s = asp_proc_stdout(p);
    if (chunks) {
        r.fd = k.fd;
        asp_must(asp_stream_on_chunks(s, 0, on_relay, &r), "on_chunks");
        asp_must(asp_loop_run_until(loop, &r.done), "asp_loop_run_until");
        asp_must(r.err, "continuous read");
        moved = r.off;
    } else {
        if (fcntl(k.fd, F_SETFL, fcntl(k.fd, F_GETFL) | O_NONBLOCK) != 0)
            bench_die("O_NONBLOCK", errno);
        ssize_t n = asp_stream_forward(s, k.fd);
        asp_must(n < 0 ? (int)n : 0, "asp_stream_forward_sync");
        moved = (uint64_t)n;
    }
    asp_reap_ok(p);
    sink_finish(&k);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    asp_must(asp_loop_free(loop), "asp_loop_free");
    if (moved != a->size)
        bench_mismatch("asproc: forwarded byte count differs", moved);
    bench_result("forward", a->variant, (double)moved / secs / 1e9, "GB/s");
}
