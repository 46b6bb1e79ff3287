/*
 * asp_conc_bench.c - many children on one loop: a->count writers of
 * a->size bytes each, all at once or one at a time, every output checked
 * byte for byte. The ratio of the two aggregate rates shows what running
 * a thousand streams together costs the loop.
 */
#include "asp_bench.h"
#include "pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* State shared by all children of one run. */
struct herd {
    const struct pat *pat;
    uint64_t size; /* bytes each child must deliver */
    long open;     /* children whose stdout has not reached EOF */
    int done;      /* set when open reaches 0: ends run_until */
};

/* One child: its handle and how far its output has been checked. */
struct calf {
    struct herd *herd;
    asp_proc *proc;
    uint64_t off;
};

/* Checks each chunk against the pattern at the child's own offset; at
 * EOF, checks the length and counts the child as finished. */
static void on_chunk(asp_stream *s, int err, const char *buf, size_t len,
                     void *data)
{
    struct calf *c = data;
    (void)s;
    asp_must(err, "continuous read");
    if (len == 0) {
        if (c->off != c->herd->size)
            bench_mismatch("asproc: a child's byte count differs", c->off);
        if (--c->herd->open == 0)
            c->herd->done = 1;
        return;
    }
    if (!pat_check(c->herd->pat, c->off, buf, len))
        bench_mismatch("asproc: a child's output differs", c->off);
    c->off += len;
}

/* Spawns the children first..first+n-1 and starts reading each. */
static void start_batch(asp_loop *loop, struct calf *calves, long first, long n,
                        const struct bench_args *a)
{
    asp_spawn_opts o = asp_bench_opts(a);
    char *const *argv = bench_writer_argv(a, 0, 0);
    for (long i = first; i < first + n; i++) {
        asp_must(
            asp_spawn(loop, &calves[i].proc, (const char *const *)argv, &o),
            "asp_spawn");
        asp_must(asp_stream_on_chunks(asp_proc_stdout(calves[i].proc), 0,
                                      on_chunk, &calves[i]),
                 "on_chunks");
    }
}

/* Runs a->count writers of a->size bytes, all spawned before the loop
 * runs (at_once) or each alone after the previous finished, and prints
 * the aggregate rate of the whole run, spawning and reaping included. */
void asp_conc(const struct bench_args *a, int at_once)
{
    struct pat pat;
    if (pat_init(&pat, PAT_BYTES, (size_t)64 << 10) != 0)
        bench_die("pattern", ENOMEM);
    bench_raise_nofile();
    struct calf *calves = calloc((size_t)a->count, sizeof *calves);
    if (!calves)
        bench_die("calloc", ENOMEM);
    struct herd h = {.pat = &pat, .size = a->size};
    for (long i = 0; i < a->count; i++)
        calves[i].herd = &h;
    asp_loop *loop;
    asp_must(asp_loop_new(&loop, NULL), "asp_loop_new");
    long batch = at_once ? a->count : 1;
    uint64_t t0 = bench_now_ns();
    for (long first = 0; first < a->count; first += batch) {
        h.open = batch;
        h.done = 0;
        start_batch(loop, calves, first, batch, a);
        asp_must(asp_loop_run_until(loop, &h.done), "asp_loop_run_until");
        for (long i = first; i < first + batch; i++)
            asp_reap_ok(calves[i].proc);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    asp_must(asp_loop_free(loop), "asp_loop_free");
    bench_result("concurrency", a->variant,
                 (double)a->size * (double)a->count / secs / 1e9, "GB/s");
    free(calves);
    pat_free(&pat);
}
