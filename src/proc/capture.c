/*
 * capture.c - growing buffers for communicate's output.
 *
 * Small captures use the library allocator. Past SMALL_MAX the data moves
 * (once) into an anonymous mapping that then grows with mremap: the kernel
 * moves page tables instead of copying bytes, untouched pages cost no
 * memory, and MADV_HUGEPAGE lets the kernel back it with 2 MiB pages,
 * which cuts the page faults that dominate large captures. Peak memory is
 * the captured size plus at most one huge page. Without mremap (non-Linux)
 * the allocator's realloc is used throughout.
 *
 * Layout of a block: an ASP__CAP_HDR-byte header holding the mapping size
 * (0 for allocator memory), then the data, NUL-terminated when handed out.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>
#ifdef ASP_HAVE_MREMAP
#include <sys/mman.h>
#endif

#define SMALL_MAX ((size_t)1 << 20)
#define HUGE ((size_t)2 << 20)

#ifdef ASP_HAVE_MREMAP
/* Rounds n up to a multiple of HUGE. */
static size_t round_huge(size_t n)
{
    return (n + HUGE - 1) & ~(HUGE - 1);
}
#endif

/* Grows the block so that room >= need; 0 or -ENOMEM. */
static int grow(asp__capture *c, size_t need)
{
    size_t room = c->room ? c->room * 2 : 4096;
    if (room < need)
        room = need;
#ifdef ASP_HAVE_MREMAP
    if (room + ASP__CAP_HDR > SMALL_MAX) {
        size_t oldmap = c->mapped ? round_huge(c->room + ASP__CAP_HDR) : 0;
        size_t newmap = round_huge(room + ASP__CAP_HDR);
        char *nb;
        if (c->mapped) {
            nb = mremap(c->block, oldmap, newmap, MREMAP_MAYMOVE);
            if (nb == MAP_FAILED)
                return -ENOMEM;
        } else {
            nb = mmap(NULL, newmap, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (nb == MAP_FAILED)
                return -ENOMEM;
            if (c->block) {
                memcpy(nb + ASP__CAP_HDR, c->block + ASP__CAP_HDR, c->len);
                asp__free(c->block);
            }
        }
        (void)madvise(nb, newmap, MADV_HUGEPAGE); /* a hint; may be off */
        c->block = nb;
        c->mapped = 1;
        c->room = newmap - ASP__CAP_HDR;
        memcpy(c->block, &newmap, sizeof newmap);
        return 0;
    }
#endif
    char *nb = asp__realloc(c->block, room + ASP__CAP_HDR);
    if (!nb)
        return -ENOMEM;
    c->block = nb;
    c->room = room;
    size_t zero = 0;
    memcpy(c->block, &zero, sizeof zero);
    return 0;
}

/* Room for a direct read of up to want bytes: NULL when the cap is
 * reached or memory ran out (the caller reads elsewhere and discards). */
char *asp__capture_space(asp__capture *c, size_t want, size_t *room)
{
    if (c->failed || (c->cap && c->len >= c->cap))
        return NULL;
    if (c->cap && want > c->cap - c->len)
        want = c->cap - c->len;
    /* One byte always stays free for the NUL that asp__capture_take adds,
     * so handing the data out never needs memory. */
    if (c->room - c->len < want + 1 && grow(c, c->len + want + 1) < 0) {
        c->failed = 1;
        return NULL;
    }
    size_t free_room = c->room - c->len - 1;
    if (c->cap && free_room > c->cap - c->len)
        free_room = c->cap - c->len;
    *room = free_room;
    return c->block + ASP__CAP_HDR + c->len;
}

/* Appends n bytes, keeping at most cap; discards once memory ran out. */
void asp__capture_add(asp__capture *c, const char *b, size_t n)
{
    c->total += n;
    size_t keep = n;
    if (c->cap && keep > c->cap - c->len)
        keep = c->cap > c->len ? c->cap - c->len : 0;
    if (keep == 0 || c->failed)
        return;
    if (c->room - c->len < keep + 1 && grow(c, c->len + keep + 1) < 0) {
        c->failed = 1;
        return;
    }
    memcpy(c->block + ASP__CAP_HDR + c->len, b, keep);
    c->len += keep;
}

/* Hands the data out NUL-terminated (an empty buffer when nothing came);
 * NULL on failure. The capture is emptied. */
char *asp__capture_take(asp__capture *c, size_t *len)
{
    if (c->room - c->len < 1 && grow(c, c->len + 1) < 0)
        return NULL;
    char *data = c->block + ASP__CAP_HDR;
    data[c->len] = 0;
    *len = c->len;
    c->block = NULL;
    c->len = c->room = 0;
    c->mapped = 0;
    return data;
}

/* Frees a capture's block. */
void asp__capture_free(asp__capture *c)
{
    if (!c->block)
        return;
    size_t map;
    memcpy(&map, c->block, sizeof map);
#ifdef ASP_HAVE_MREMAP
    if (map) {
        munmap(c->block, map);
        c->block = NULL;
        return;
    }
#endif
    asp__free(c->block);
    c->block = NULL;
}

/* Frees one buffer handed out by asp__capture_take. */
static void free_data(char *data)
{
    if (!data)
        return;
    asp__capture c = {0};
    c.block = data - ASP__CAP_HDR;
    asp__capture_free(&c);
}

/* Public: frees a result's buffers. */
void asp_result_free(asp_result *r)
{
    if (!r)
        return;
    free_data(r->out);
    free_data(r->err);
    memset(r, 0, sizeof *r);
}
