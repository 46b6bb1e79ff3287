/*
 * capcache.c - the per-loop cache of released capture mappings.
 *
 * A build tool captures thousands of outputs on one loop. A large capture
 * lives in an anonymous mapping (capture.c), and a fresh mapping costs
 * its page faults and the zeroing of every page, then an munmap: measured
 * with `make bench` (capseq: 1,000 captures of 1 MiB one after another)
 * those were most of the parent's time, and asproc ran at half the rate
 * of libuv with realloc, whose heap reuses its memory. So a mapping whose
 * result is freed (asp_result_free) goes back to the loop that captured
 * it, and the next large capture of that loop starts in it, its pages
 * still there.
 *
 * Bounded: at most CACHE_SLOTS mappings of at most CACHE_BLOCK_MAX bytes
 * each (larger ones are unmapped as before). A kept mapping is
 * MADV_FREE'd: the kernel may take its pages back under memory pressure
 * (a later capture then faults them in again, as prefault does anyway);
 * if it does not, reusing them costs nothing.
 *
 * Lifetime: a result may be freed after its loop, and from another
 * thread. Every mapping tagged with the cache (its header names it)
 * counts as a reference; the loop's teardown empties the cache and marks
 * it dead, and the last tagged mapping to come back frees it. A mutex
 * guards the slots and the counts.
 */
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#ifdef ASP_HAVE_MREMAP
#include <sys/mman.h>
#endif

#define CACHE_SLOTS 4
#define CACHE_BLOCK_MAX ((size_t)16 << 20)

/* Internal: makes asp__capcache_get return NULL (no caching), for the
 * benchmark's comparison with and without the cache. */
int asp__capcache_off;

struct asp__capcache {
    asp__loop_ext ext;
    pthread_mutex_t lock;
    char *block[CACHE_SLOTS];
    size_t map[CACHE_SLOTS];
    int n;
    size_t refs; /* tagged mappings not returned yet */
    int dead;    /* the loop is gone: nothing is kept any more */
};

#ifdef ASP_HAVE_MREMAP

/* The key of the cache's loop extension. */
static const char cache_key;

/* Frees the cache itself (empty, no reference left). */
static void cache_destroy(asp__capcache *k)
{
    pthread_mutex_destroy(&k->lock);
    asp__free(k);
}

/* Never refuses a loop's free. */
static int cache_busy(asp__loop_ext *e)
{
    (void)e;
    return 0;
}

/* Loop teardown: unmaps what is kept; the cache itself goes now or with
 * the last tagged mapping. In a forked process another thread may have
 * held the lock at the fork, so it is not taken there (the process has
 * one thread now). */
static void cache_teardown(asp__loop_ext *e, int forked)
{
    asp__capcache *k = asp__container_of(e, asp__capcache, ext);
    if (!forked)
        pthread_mutex_lock(&k->lock);
    k->dead = 1;
    for (int i = 0; i < k->n; i++)
        munmap(k->block[i], k->map[i]);
    k->n = 0;
    int last = k->refs == 0;
    if (!forked)
        pthread_mutex_unlock(&k->lock);
    if (last)
        cache_destroy(k);
}

/* The loop's cache, made at its first use; NULL without memory (then
 * nothing is cached) or with the knob off. */
asp__capcache *asp__capcache_get(asp_loop *loop)
{
    if (asp__capcache_off)
        return NULL;
    asp__loop_ext *e = asp__loop_ext_find(loop, &cache_key);
    if (e)
        return asp__container_of(e, asp__capcache, ext);
    asp__capcache *k = asp__calloc(1, sizeof *k);
    if (!k)
        return NULL;
    if (pthread_mutex_init(&k->lock, NULL) != 0) {
        asp__free(k);
        return NULL;
    }
    k->ext.key = &cache_key;
    k->ext.busy = cache_busy;
    k->ext.teardown = cache_teardown;
    asp__loop_ext_add(loop, &k->ext);
    return k;
}

/* Takes the smallest kept mapping of at least need bytes (*map gets its
 * size); NULL when none fits. The mapping comes tagged. */
char *asp__capcache_take(asp__capcache *k, size_t need, size_t *map)
{
    char *b = NULL;
    pthread_mutex_lock(&k->lock);
    int best = -1;
    for (int i = 0; i < k->n; i++)
        if (k->map[i] >= need && (best < 0 || k->map[i] < k->map[best]))
            best = i;
    if (best >= 0) {
        b = k->block[best];
        *map = k->map[best];
        k->n--;
        k->block[best] = k->block[k->n];
        k->map[best] = k->map[k->n];
        k->refs++;
    }
    pthread_mutex_unlock(&k->lock);
    return b;
}

/* Counts a fresh mapping that is being tagged with k. */
void asp__capcache_tag(asp__capcache *k)
{
    pthread_mutex_lock(&k->lock);
    k->refs++;
    pthread_mutex_unlock(&k->lock);
}

/* A tagged mapping comes back: kept when there is a free slot (its pages
 * MADV_FREE'd first, before any capture can take it), else unmapped. */
void asp__capcache_put(asp__capcache *k, char *block, size_t map)
{
    int keep = map <= CACHE_BLOCK_MAX;
#ifdef MADV_FREE
    if (keep)
        (void)madvise(block, map, MADV_FREE);
#endif
    pthread_mutex_lock(&k->lock);
    k->refs--;
    keep = keep && !k->dead && k->n < CACHE_SLOTS;
    if (keep) {
        k->block[k->n] = block;
        k->map[k->n] = map;
        k->n++;
    }
    int last = k->dead && k->refs == 0;
    pthread_mutex_unlock(&k->lock);
    if (!keep)
        munmap(block, map);
    if (last)
        cache_destroy(k);
}

#else /* no mremap: captures never use mappings, nothing to cache */

/* No cache here. */
asp__capcache *asp__capcache_get(asp_loop *loop)
{
    (void)loop;
    return NULL;
}

#endif
