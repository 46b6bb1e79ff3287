/*
 * peer_uv.c - the libuv peer: one measurement per run.
 *
 *   peer_uv tput|lines|capture|capseq|fwd|jobs [options, see common.h]
 *
 * The writer is started with uv_spawn and its stdout read with
 * uv_read_start, as a libuv program would; libuv connects UV_CREATE_PIPE
 * with an AF_UNIX socketpair, so --transport does not apply here.
 */
#define _GNU_SOURCE /* uv.h needs the POSIX thread types */
#include "child.h"
#include "common.h"
#include "pattern.h"
#include "uv_peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Everything one run keeps; the stream's data pointer leads here. */
struct run {
    const struct bench_args *a;
    int mode;       /* MODE_* */
    struct pat pat; /* used when verifying */
    int verify;
    uint64_t off; /* bytes read */
    uint64_t newlines;
    char *buf; /* scratch (tput/lines) or capture buffer */
    size_t cap;
    int64_t exit_status;
    int exited;
    uv_pipe_t out;
    uv_process_t proc;
    int sink_fd; /* forward mode: the sink's pipe (blocking) */
};

enum { MODE_TPUT, MODE_LINES, MODE_CAPTURE, MODE_FORWARD };

/* Hands libuv the next buffer: the fixed 64 KiB scratch buffer, or in the
 * capture mode the free tail of the capture buffer, doubled with realloc
 * when less than 64 KiB is left. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct run *r = h->data;
    (void)suggested;
    if (r->mode != MODE_CAPTURE) {
        *b = uv_buf_init(r->buf, (unsigned)r->cap);
        return;
    }
    if (r->cap - r->off < ((size_t)64 << 10)) {
        char *nb = realloc(r->buf, r->cap * 2);
        if (!nb)
            bench_die("realloc", ENOMEM);
        r->buf = nb;
        r->cap *= 2;
    }
    *b = uv_buf_init(r->buf + r->off, (unsigned)(r->cap - r->off));
}

/* Counts (and in the lines mode counts newlines of, and when verifying
 * checks) each chunk; closes the pipe at EOF. */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct run *r = s->data;
    if (n < 0) {
        if (n != UV_EOF)
            bench_die("uv read", (int)-n);
        uv_close((uv_handle_t *)s, NULL);
        return;
    }
    if (r->verify && !pat_check(&r->pat, r->off, b->base, (size_t)n))
        bench_mismatch("libuv: output differs from the pattern", r->off);
    if (r->mode == MODE_FORWARD) /* on to the sink, blocking: a relay */
        bench_write_all(r->sink_fd, b->base, (size_t)n);
    if (r->mode == MODE_LINES) {
        const char *p = b->base, *end = b->base + n;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            r->newlines++;
            p++;
        }
    }
    r->off += (uint64_t)n;
}

/* Records the writer's exit and closes its handle. */
static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct run *r = p->data;
    r->exit_status = sig ? -sig : status;
    r->exited = 1;
    uv_close((uv_handle_t *)p, NULL);
}

/* Spawns the writer on loop with stdout on r->out and reads it to EOF. */
static void spawn_and_read(struct run *r, uv_loop_t *loop, int lines)
{
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    char **argv = bench_writer_argv(r->a, lines, 0);
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = argv[0];
    o.args = argv;
    o.exit_cb = on_exit_cb;
    o.stdio_count = 3;
    o.stdio = stdio;
    uv_pipe_init(loop, &r->out, 0);
    r->out.data = r;
    r->proc.data = r;
    int err = uv_spawn(loop, &r->proc, &o);
    if (err != 0)
        bench_die("uv_spawn", -err);
    err = uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    if (err != 0)
        bench_die("uv_read_start", -err);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* Runs one measurement of mode and prints its RESULT lines. */
static void measure(const struct bench_args *a, int mode)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.a = a;
    r.mode = mode;
    r.cap = (size_t)64 << 10;
    r.buf = malloc(r.cap);
    if (!r.buf)
        bench_die("malloc", ENOMEM);
    memset(r.buf, 0, r.cap);
    int lines = mode == MODE_LINES;
    r.verify = a->verify && mode != MODE_CAPTURE;
    if (r.verify && pat_init(&r.pat, lines ? PAT_LINES : PAT_BYTES, r.cap) != 0)
        bench_die("pattern", ENOMEM);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint64_t want = lines ? a->size * PAT_LINE_LEN : a->size;
    struct child k;
    uint64_t t0 = bench_now_ns();
    if (mode == MODE_FORWARD) {
        sink_start(&k, a);
        r.sink_fd = k.fd;
        r.verify = 0; /* the sink checks what arrives */
    }
    spawn_and_read(&r, &loop, lines);
    if (mode == MODE_FORWARD)
        sink_finish(&k);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    uint64_t rss = bench_peak_rss();
    uv_loop_close(&loop);
    if (!r.exited || r.exit_status != 0)
        bench_die("writer did not exit 0", EIO);
    if (r.off != want)
        bench_mismatch("libuv: byte count differs", r.off);
    if (lines && r.newlines != a->size)
        bench_mismatch("libuv: line count differs", r.newlines);
    if (mode == MODE_TPUT)
        bench_result("throughput", a->variant, (double)want / secs / 1e9,
                     "GB/s");
    if (mode == MODE_FORWARD)
        bench_result("forward", a->variant, (double)want / secs / 1e9, "GB/s");
    if (mode == MODE_LINES)
        bench_result("lines", a->variant, (double)a->size / secs / 1e6,
                     "Mlines/s");
    if (mode == MODE_CAPTURE) {
        /* Checked after the clock stopped: always on, never measured. */
        if (pat_init(&r.pat, PAT_BYTES, (size_t)1 << 20) != 0)
            bench_die("pattern", ENOMEM);
        if (!pat_check(&r.pat, 0, r.buf, r.off))
            bench_mismatch("libuv: captured bytes differ", r.off);
        r.verify = 1;
        bench_result("capture", a->variant, (double)r.off / secs / 1e9, "GB/s");
        bench_result("capture-rss", a->variant, (double)rss / (double)r.off,
                     "x-captured");
    }
    if (r.verify)
        pat_free(&r.pat);
    free(r.buf);
}

/* a->count captures of a->size bytes one after another on one loop, each
 * into a fresh realloc-doubled buffer that is checked and freed before
 * the next. Prints the aggregate rate. */
static void capture_seq(const struct bench_args *a)
{
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)a->size) != 0)
        bench_die("pattern", ENOMEM);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < a->count; i++) {
        struct run r;
        memset(&r, 0, sizeof r);
        r.a = a;
        r.mode = MODE_CAPTURE;
        r.cap = (size_t)64 << 10;
        r.buf = malloc(r.cap);
        if (!r.buf)
            bench_die("malloc", ENOMEM);
        spawn_and_read(&r, &loop, 0);
        if (!r.exited || r.exit_status != 0)
            bench_die("writer did not exit 0", EIO);
        if (r.off != a->size || !pat_check(&pat, 0, r.buf, r.off))
            bench_mismatch("libuv: captured bytes differ", (uint64_t)i);
        free(r.buf);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    uv_loop_close(&loop);
    bench_result("capseq", a->variant,
                 (double)a->size * (double)a->count / secs / 1e9, "GB/s");
    pat_free(&pat);
}

/* Pins this process, then runs the mode named by argv[1]. */
int main(int argc, char **argv)
{
    struct bench_args a;
    bench_parse(argc, argv, &a);
    bench_pin(a.cpu);
    if (strcmp(a.mode, "tput") == 0)
        measure(&a, MODE_TPUT);
    else if (strcmp(a.mode, "lines") == 0)
        measure(&a, MODE_LINES);
    else if (strcmp(a.mode, "capture") == 0)
        measure(&a, MODE_CAPTURE);
    else if (strcmp(a.mode, "fwd") == 0)
        measure(&a, MODE_FORWARD);
    else if (strcmp(a.mode, "jobs") == 0)
        uv_jobs(&a);
    else if (strcmp(a.mode, "capseq") == 0)
        capture_seq(&a);
    else
        bench_die("unknown mode for peer_uv", EINVAL);
    return 0;
}
