/*
 * capture.c - white-box tests of communicate's capture buffer
 * (src/proc/capture.c): large captures fed the way the stream feeds them
 * (direct reads into asp__capture_space, copies through
 * asp__capture_add, in random sizes), with the byte content checked at
 * the end and, at every direct read, the promise that makes large
 * captures fast: the room handed out is already faulted in (mincore), so
 * a read(2) on a pipe never takes a page fault while it holds the pipe.
 *
 * The three ways to fault in: MADV_POPULATE_WRITE with huge pages, the
 * same after the switch to small pages (forced by a zero slow-step
 * threshold), and the fallback for kernels without MADV_POPULATE_WRITE
 * (forced in a forked process by a seccomp filter that makes that
 * madvise fail with EINVAL).
 *
 * And the per-loop cache of released mappings (src/stream/capcache.c):
 * reuse with exact bytes, its bounds, and its life past its loop.
 */
#define _GNU_SOURCE
#include "hard.h"

#include "../../src/proc/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#endif

#define MIB ((size_t)1 << 20)

/* Byte i of the fed stream (period 251, not a power of two). */
static char pat(size_t i)
{
    return (char)(i % 251u);
}

/* 0 when every page of [p, p+n) is resident, else -1. */
static int resident(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    uintptr_t hi = (uintptr_t)p + n;
    size_t pages = (hi - lo + pg - 1) / pg;
    unsigned char *vec = malloc(pages);
    if (!vec)
        return -1;
    int ok = mincore((void *)lo, hi - lo, vec) == 0;
    for (size_t i = 0; ok && i < pages; i++)
        ok = vec[i] & 1;
    free(vec);
    return ok ? 0 : -1;
}

typedef struct feed_args {
    size_t total;
    uint64_t seed;
    asp__capcache *cache;  /* the loop's cache of mappings, or NULL */
    int force_small_after; /* MiB; -1: never */
    int small_seen;        /* out: the capture switched to small pages */
    char why[160];
} feed_args;

/* Feeds total bytes of the pattern into a fresh capture, as the stream
 * does, then takes the buffer and checks it. Returns 0 or -1 with why
 * set (no Check assertion: it also runs in a forked process). */
static int feed(void *arg)
{
    feed_args *a = arg;
    asp__capture c = {0};
    c.cache = a->cache;
    hard_rng r;
    hard_rng_seed(&r, a->seed);
    char *tmp = malloc(MIB);
    size_t off = 0;
    int rc = 0;
    if (!tmp) {
        snprintf(a->why, sizeof a->why, "no memory for the test");
        return -1;
    }
    while (off < a->total && rc == 0) {
        size_t left = a->total - off, n;
        if (a->force_small_after >= 0 &&
            off >= (size_t)a->force_small_after * MIB)
            asp__capture_slow_ns = 0;
        if (hard_rng_below(&r, 4) != 0) {
            /* A direct read: up to want bytes asked, any part of the room
             * used (a short read). */
            size_t want = 1 + hard_rng_below(&r, (uint32_t)MIB), room = 0;
            char *dst = asp__capture_space(&c, want, &room);
            if (!dst || room == 0) {
                snprintf(a->why, sizeof a->why, "no space at %zu", off);
                rc = -1;
                break;
            }
            if (c.mapped && resident(dst, room) != 0) {
                snprintf(a->why, sizeof a->why,
                         "room of %zu at %zu not faulted in", room, off);
                rc = -1;
                break;
            }
            n = 1 + hard_rng_below(&r, (uint32_t)(room < MIB ? room : MIB));
            if (n > left)
                n = left;
            for (size_t i = 0; i < n; i++)
                dst[i] = pat(off + i);
            c.len += n;
            c.total += n;
        } else {
            n = 1 + hard_rng_below(&r, 300000);
            if (n > left)
                n = left;
            for (size_t i = 0; i < n; i++)
                tmp[i] = pat(off + i);
            asp__capture_add(&c, tmp, n);
        }
        off += n;
    }
    free(tmp);
    asp__capture_slow_ns = 1000000u;
    a->small_seen = c.small;
    if (rc == 0 && (c.failed || c.len != a->total || c.total != a->total)) {
        snprintf(a->why, sizeof a->why, "failed %d len %zu total %zu", c.failed,
                 c.len, c.total);
        rc = -1;
    }
    size_t len = 0;
    char *data = rc == 0 ? asp__capture_take(&c, &len) : NULL;
    if (rc == 0 && !data) {
        snprintf(a->why, sizeof a->why, "take failed");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < len; i++)
        if (data[i] != pat(i)) {
            snprintf(a->why, sizeof a->why, "byte %zu differs", i);
            rc = -1;
        }
    if (rc == 0 && data[len] != 0) {
        snprintf(a->why, sizeof a->why, "no NUL after the data");
        rc = -1;
    }
    if (data) {
        asp_result res = {0};
        res.out = data;
        asp_result_free(&res);
    }
    asp__capture_free(&c);
    return rc;
}

START_TEST(capture_large_huge)
{
    feed_args a = {
        .total = 40 * MIB + 12345, .seed = 7, .force_small_after = -1};
    ck_assert_msg(feed(&a) == 0, "%s", a.why);
}
END_TEST

START_TEST(capture_switch_to_small)
{
    /* Every huge step counts as slow from 6 MiB on: after SLOW_STEPS of
     * them the capture must be on small pages, and still exact. */
    feed_args a = {.total = 40 * MIB + 777, .seed = 11, .force_small_after = 6};
    ck_assert_msg(feed(&a) == 0, "%s", a.why);
#ifdef ASP_HAVE_MREMAP
    ck_assert_msg(a.small_seen, "never switched to small pages");
#endif
}
END_TEST

#if defined(__linux__) && defined(MADV_POPULATE_WRITE) && \
    defined(SECCOMP_RET_ERRNO) && defined(__NR_madvise)
/* In the forked process: madvise(..., MADV_POPULATE_WRITE) fails with
 * EINVAL as on kernels before 5.14, then the feed runs. */
static int feed_without_populate(void *arg)
{
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_WRITE, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fp = {sizeof prog / sizeof prog[0], prog};
    feed_args *a = arg;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp) != 0)
        return -2; /* no seccomp here: reported as skipped */
    _Alignas(4096) char probe[4096];
    if (madvise(probe, 4096, MADV_POPULATE_WRITE) == 0 || errno != EINVAL) {
        snprintf(a->why, sizeof a->why, "filter did not take");
        return -1;
    }
    return feed(a);
}

START_TEST(capture_without_populate)
{
    feed_args *a = mmap(NULL, sizeof *a, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(a, MAP_FAILED);
    memset(a, 0, sizeof *a);
    a->total = 24 * MIB + 3;
    a->seed = 5;
    a->force_small_after = -1;
    int r = asp_t_in_fork(feed_without_populate, a);
    char why[sizeof a->why];
    memcpy(why, a->why, sizeof why);
    munmap(a, sizeof *a);
    if (r == -2) {
        fprintf(stderr, "capture_without_populate: seccomp unavailable, "
                        "skipped\n");
        return;
    }
    ck_assert_msg(r == 0, "fallback capture: %d %s", r, why);
}
END_TEST
#endif

#ifdef ASP_HAVE_MREMAP
/* How many mappings k keeps (taken out and put back). */
static int cache_count(asp__capcache *k)
{
    char *b[8];
    size_t m[8];
    int n = 0;
    while (n < 8 && (b[n] = asp__capcache_take(k, 1, &m[n])) != NULL)
        n++;
    for (int i = 0; i < n; i++)
        asp__capcache_put(k, b[i], m[i]);
    return n;
}

/* A fresh mapping of map bytes, tagged with k and given back to it. */
static void cache_give(asp__capcache *k, size_t map)
{
    char *b = mmap(NULL, map, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(b, MAP_FAILED);
    asp__capcache_tag(k);
    asp__capcache_put(k, b, map);
}

START_TEST(capture_cache_reuse_and_bounds)
{
    /* A freed large capture goes back to its loop's cache; the next
     * captures start in it (old bytes there, MADV_FREE'd) and must still
     * be exact and faulted in; the cache keeps at most 4 mappings, none
     * over 16 MiB; the loop's free unmaps what it keeps. */
    asp_loop *loop = asp_t_loop();
    asp__capcache *k = asp__capcache_get(loop);
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_eq(asp__capcache_get(loop), k);
    ck_assert_int_eq(cache_count(k), 0);
    for (int i = 0; i < 3; i++) {
        feed_args a = {.total = 3 * MIB + 5 + (size_t)i * 777,
                       .seed = 20 + (uint64_t)i,
                       .force_small_after = -1,
                       .cache = k};
        ck_assert_msg(feed(&a) == 0, "capture %d: %s", i, a.why);
        ck_assert_int_eq(cache_count(k), 1);
    }
    for (int i = 0; i < 6; i++)
        cache_give(k, 2 * MIB);
    ck_assert_int_eq(cache_count(k), 4);
    cache_give(k, 32 * MIB); /* too big to keep */
    size_t map;
    ck_assert_ptr_null(asp__capcache_take(k, 32 * MIB, &map));
    /* A small capture never touches the cache. */
    feed_args small = {
        .total = 1000, .seed = 3, .force_small_after = -1, .cache = k};
    ck_assert_msg(feed(&small) == 0, "%s", small.why);
    ck_assert_int_eq(cache_count(k), 4);
    asp_t_loop_free(loop);
}
END_TEST

/* Frees a result's buffer on another thread. */
static void *free_elsewhere(void *arg)
{
    asp_result res = {0};
    res.out = arg;
    asp_result_free(&res);
    return NULL;
}

START_TEST(capture_cache_outlives_its_loop)
{
    /* Results may be freed after their loop and on another thread: the
     * cache goes with the last of its mappings (ASan and memcheck runs of
     * this suite see a leak or a use after free otherwise). */
    asp_loop *loop = asp_t_loop();
    asp__capcache *k = asp__capcache_get(loop);
    ck_assert_ptr_nonnull(k);
    char *data[2];
    for (int i = 0; i < 2; i++) {
        asp__capture c = {0};
        c.cache = k;
        static char chunk[65536];
        memset(chunk, 'a' + i, sizeof chunk);
        for (int j = 0; j < 40; j++)
            asp__capture_add(&c, chunk, sizeof chunk);
        size_t len;
        data[i] = asp__capture_take(&c, &len);
        ck_assert_ptr_nonnull(data[i]);
        ck_assert_uint_eq(len, 40 * sizeof chunk);
        ck_assert_int_eq(data[i][len - 1], 'a' + i);
        asp__capture_free(&c);
    }
    asp_t_loop_free(loop);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, free_elsewhere, data[0]), 0);
    pthread_join(th, NULL);
    free_elsewhere(data[1]);
}
END_TEST
#endif

/* The capture suite. */
Suite *suite_capture(void)
{
    Suite *s = suite_create("capture");
    TCase *tc = asp_t_case("capture", 60);
    tcase_add_test(tc, capture_large_huge);
    tcase_add_test(tc, capture_switch_to_small);
#ifdef ASP_HAVE_MREMAP
    tcase_add_test(tc, capture_cache_reuse_and_bounds);
    tcase_add_test(tc, capture_cache_outlives_its_loop);
#endif
#if defined(__linux__) && defined(MADV_POPULATE_WRITE) && \
    defined(SECCOMP_RET_ERRNO) && defined(__NR_madvise)
    tcase_add_test(tc, capture_without_populate);
#endif
    suite_add_tcase(s, tc);
    return s;
}
