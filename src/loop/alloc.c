/*
 * alloc.c - the library-wide allocator hook.
 *
 * Every allocation of the library goes through here so that a host can
 * plug in its own allocator and a test can make the Nth allocation fail.
 * A count of live blocks lets asp_set_allocator refuse to switch while
 * memory from the old allocator is still out (freeing it with the new one
 * would be undefined).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void *libc_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return malloc(n);
}

static void *libc_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return realloc(p, n);
}

static void libc_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static asp_allocator current = {libc_malloc, libc_realloc, libc_free, NULL};
static atomic_long live_blocks;

/* Installs a (or libc's for NULL); refuses while blocks are live. */
int asp_set_allocator(const asp_allocator *a)
{
    if (a && (!a->malloc || !a->realloc || !a->free))
        return -EINVAL;
    if (atomic_load(&live_blocks) != 0)
        return -EBUSY;
    if (a)
        current = *a;
    else
        current = (asp_allocator){libc_malloc, libc_realloc, libc_free, NULL};
    return 0;
}

/* Allocates n bytes (n 0 is treated as 1 so NULL always means failure). */
void *asp__malloc(size_t n)
{
    void *p = current.malloc(n ? n : 1, current.ctx);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

/* Allocates n * size zeroed bytes; NULL on overflow or failure. */
void *asp__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = asp__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

/* Resizes p (NULL allocates). On failure p is untouched and NULL is
 * returned. */
void *asp__realloc(void *p, size_t n)
{
    if (!p)
        return asp__malloc(n);
    return current.realloc(p, n ? n : 1, current.ctx);
}

/* Frees p; NULL is ignored. */
void asp__free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub(&live_blocks, 1);
    current.free(p, current.ctx);
}

/* Public face of asp__free for buffers handed to the caller. */
void asp_free(void *p)
{
    asp__free(p);
}

/* Duplicates s with the library allocator; NULL on failure. */
char *asp__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = asp__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
