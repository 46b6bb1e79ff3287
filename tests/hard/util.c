/*
 * util.c - plumbing shared by the hardening suites: a counting and failing
 * allocator, environment knobs, orphan reaping, a PRNG (the fd-limit and
 * forked-process helpers are the harness's, tests/harness.c).
 */
#define _GNU_SOURCE
#include "hard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static hard_alloc *current;

/* Counts a call and says whether this one must fail. */
static int must_fail(hard_alloc *a)
{
    long n = atomic_fetch_add(&a->calls, 1) + 1;
    if (n == atomic_load(&a->fail_at)) {
        atomic_fetch_add(&a->failed, 1);
        return 1;
    }
    return 0;
}

/* malloc of the counting allocator. */
static void *ha_malloc(size_t n, void *ctx)
{
    hard_alloc *a = ctx;
    if (must_fail(a))
        return NULL;
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&a->live, 1);
    return p;
}

/* realloc of the counting allocator (the library never passes NULL). */
static void *ha_realloc(void *p, size_t n, void *ctx)
{
    hard_alloc *a = ctx;
    if (must_fail(a))
        return NULL;
    return realloc(p, n);
}

/* free of the counting allocator. */
static void ha_free(void *p, void *ctx)
{
    hard_alloc *a = ctx;
    atomic_fetch_sub(&a->live, 1);
    free(p);
}

/* Installs a as the library allocator. */
void hard_alloc_install(hard_alloc *a)
{
    atomic_store(&a->calls, 0);
    atomic_store(&a->live, 0);
    atomic_store(&a->fail_at, 0);
    atomic_store(&a->failed, 0);
    asp_allocator al = {ha_malloc, ha_realloc, ha_free, a};
    int r = asp_set_allocator(&al);
    ck_assert_msg(r == 0, "asp_set_allocator: %s", asp_strerror(r));
    current = a;
}

/* Restores libc's allocator; -EBUSY means the library leaked. */
void hard_alloc_remove(void)
{
    long live = current ? atomic_load(&current->live) : 0;
    int r = asp_set_allocator(NULL);
    ck_assert_msg(r == 0, "asp_set_allocator(NULL): %s (%ld blocks live)",
                  asp_strerror(r), live);
    current = NULL;
}

/* CK_TIMEOUT_MULTIPLIER, at least 1. */
double hard_slowness(void)
{
    const char *v = getenv("CK_TIMEOUT_MULTIPLIER");
    double m = v ? atof(v) : 1.0;
    return m >= 1.0 ? m : 1.0;
}

/* An integer knob from the environment. */
long hard_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    return *end ? dflt : n;
}

/* Scans /proc/self/fd for the highest number (the scan's own fd aside). */
int hard_max_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int self = dirfd(d), max = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd != self && fd > max)
            max = fd;
    }
    closedir(d);
    return max;
}

/* Orphans come back to this process instead of PID 1. */
void hard_subreaper_on(void)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
}

/* Reaps every remaining descendant, waiting up to ms for them to end. */
int hard_reap_orphans(int ms)
{
    double end = asp_t_now_ms() + ms;
    int reaped = 0;
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid > 0) {
            reaped++;
            continue;
        }
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0 || asp_t_now_ms() >= end)
            break; /* ECHILD: nobody left */
        usleep(2000);
    }
    return reaped;
}

/* Seeds the generator (0 is not a valid xorshift state). */
void hard_rng_seed(hard_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15u;
}

/* xorshift64*: small, fast, good enough to pick test actions. */
uint32_t hard_rng_next(hard_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545f4914f6cdd1du) >> 32);
}

/* Uniform enough in [0, n) for test purposes. */
uint32_t hard_rng_below(hard_rng *r, uint32_t n)
{
    return n ? hard_rng_next(r) % n : 0;
}
