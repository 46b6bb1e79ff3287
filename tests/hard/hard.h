/*
 * hard.h - the hardening suites (issue "Hardening"): stress, fault
 * injection, hostile host programs, and the fuzz corpus replayed (every
 * input fuzzing found to break a contract stays a regression test).
 *
 * They run in their own runner (check_hard) with the fixture of
 * tests/harness.c, so every test still ends by checking that no child, no
 * zombie and no fd was left behind.
 */
#ifndef ASP_HARD_H
#define ASP_HARD_H

#include "../harness.h"

#include <stdatomic.h>
#include <sys/resource.h>

/* The suites. */
Suite *suite_stress(void);
Suite *suite_fault(void);
Suite *suite_hostile(void);
Suite *suite_corpus(void);
Suite *suite_capture(void);

/* A thread-safe allocator for asp_set_allocator that counts live blocks
 * and calls, and can fail exactly one call (fail_at, 1-based; 0: none). */
typedef struct hard_alloc {
    atomic_long calls; /* malloc and realloc calls */
    atomic_long live;  /* blocks handed out and not freed */
    atomic_long fail_at;
    atomic_long failed; /* calls refused */
} hard_alloc;

/* Installs a (zeroed first) as the library allocator; fails the test if
 * the library still holds memory. */
void hard_alloc_install(hard_alloc *a);

/* Restores libc's allocator; fails the test if blocks are still live
 * (which is the leak check itself). */
void hard_alloc_remove(void);

/* The time multiplier of slow runs (CK_TIMEOUT_MULTIPLIER, at least 1). */
double hard_slowness(void);

/* An integer from the environment, or dflt. */
long hard_env_long(const char *name, long dflt);

/* The highest open fd of this process. */
int hard_max_fd(void);

/* Makes this (test) process the reaper of its orphaned descendants, so a
 * grandchild whose parent died comes back here rather than to PID 1, and
 * reaps them at the end (hard_reap_orphans). */
void hard_subreaper_on(void);

/* Waits up to ms for every descendant that is not the library's to be
 * gone, reaping them; returns how many were reaped. Call it only when no
 * library child is left (it uses waitpid(-1)). */
int hard_reap_orphans(int ms);

/* A small seeded PRNG (xorshift64*), one state per thread. */
typedef struct hard_rng {
    uint64_t s;
} hard_rng;
void hard_rng_seed(hard_rng *r, uint64_t seed);
uint32_t hard_rng_next(hard_rng *r);
/* Uniform in [0, n). */
uint32_t hard_rng_below(hard_rng *r, uint32_t n);

#endif
