/*
 * capture.c - capture mode (communicate): an output stream reads straight
 * into a growing capture buffer instead of its own buffer.
 *
 * The mode: what is buffered moves to the capture when the mode starts;
 * after that each read goes directly into the capture's free room (one
 * copy, kernel to capture), or into the stream's buffer when nothing may
 * be kept (cap reached, memory out) and is discarded from there. The
 * mode ends at EOF, cut or close, with the done callback.
 *
 * The buffers:
 * Small captures use the library allocator. Past SMALL_MAX the data moves
 * (once) into an anonymous mapping that then grows with mremap: the kernel
 * moves page tables instead of copying bytes, untouched pages cost no
 * memory, and MADV_HUGEPAGE lets the kernel back it with 2 MiB pages,
 * which cuts the page faults that dominate large captures. Peak memory is
 * the captured size plus at most one huge page and one read. Without
 * mremap (non-Linux) the allocator's realloc is used throughout.
 *
 * A mapped block is faulted in (prefault) up to the end of the next read
 * before that read is made. Otherwise the fault, and the zeroing of a
 * fresh 2 MiB page, happens inside read(2) on a pipe, which holds the
 * pipe's lock all along: the writer, on another CPU, then spins on that
 * lock instead of refilling the pipe, and large captures ran 3-5x slower
 * than with the fault taken first (perf: clear_page in the reader,
 * mutex_spin_on_owner in the writer).
 *
 * Huge pages are a bet on the host. On bare metal a fresh 2 MiB page costs
 * one fault and a 2 MiB clear (0.1-0.3 ms), far less than 512 small
 * faults. In a VM that hands freed memory back to its host (free page
 * reporting works on 2 MiB blocks) a fresh huge page must first be backed
 * by the host again: measured here at 4-5 ms per 2 MiB, 5x the cost of
 * small pages. So each huge step of the prefault is timed, and a run of
 * slow steps turns huge pages off for the rest of this capture
 * (MADV_NOHUGEPAGE on the whole mapping, which keeps it one mapping for
 * mremap; pages already huge stay so). Measured with `make bench`
 * (capture, 512 MiB through a pipe): 0.42-0.69 GB/s before the prefault,
 * 1.5-1.8 after it; huge pages always on gave 2.5 when the host had the
 * memory and 0.37 when not, the switch 1.1-1.5 and 1.7.
 *
 * Mappings are kept for reuse by the loop that captured into them when
 * their result is freed: capcache.c.
 *
 * Layout of a block: an ASP__CAP_HDR-byte header holding the mapping size
 * (0 for allocator memory) and, for a mapping, the cache it goes back to
 * (or NULL), then the data, NUL-terminated when handed out.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#ifdef ASP_HAVE_MREMAP
#include <sys/mman.h>
#endif

#define SMALL_MAX ((size_t)1 << 20)
/* A capture's first block holds 4 KiB; it grows (doubling) once a read
 * would get less room than the capture holds, or than MIN_ROOM. */
#define FIRST_BLOCK ((size_t)4096)
/* A capture that outgrows this moves into a mapping the loop's cache
 * keeps, when it keeps one (capcache.c). */
#define CACHE_FROM ((size_t)64 << 10)
#define MIN_ROOM ((size_t)512)
#define HUGE ((size_t)2 << 20)
/* SLOW_STEPS huge steps in a row, each slower than SLOW_HUGE_NS (2 MiB at
 * 2 GB/s), mean the kernel is getting every huge page from the host: small
 * pages from here on. Measured here: 0.2 ms a step when the host has the
 * memory, 4-5 ms when it has not, and a lone slow step now and then (a
 * preemption, a compaction) that must not count. */
#define SLOW_HUGE_NS 1000000u
#define SLOW_STEPS 4

/* The slow-step threshold; a variable only so that a white-box test can
 * make every step "slow" (internal, not exported). */
uint64_t asp__capture_slow_ns = SLOW_HUGE_NS;

#ifdef ASP_HAVE_MREMAP
/* Rounds n up to a multiple of HUGE. */
static size_t round_huge(size_t n)
{
    return (n + HUGE - 1) & ~(HUGE - 1);
}
#endif

#ifdef ASP_HAVE_MREMAP
/* Faults in the mapped block up to byte `upto` of the block (rounded up to
 * a huge page, within the mapping). Only bytes past the data are touched,
 * so writing zeros there (the fallback for kernels without
 * MADV_POPULATE_WRITE, before 5.14) changes nothing the caller reads. A
 * failure is harmless: the read then takes the faults itself. */
static void prefault(asp__capture *c, size_t upto)
{
    size_t map = round_huge(c->room + ASP__CAP_HDR);
    size_t from = c->ready;
    if (from < ASP__CAP_HDR + c->len)
        from = ASP__CAP_HDR + c->len;
    upto = round_huge(upto);
    if (upto > map)
        upto = map;
    if (from >= upto)
        return;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
#ifdef MADV_POPULATE_WRITE
    /* madvise wants a page-aligned start; the page holding `from` is
     * already faulted in (populating it again is free). One huge page at a
     * time (by address), timed while huge pages are on. */
    size_t at = from & ~(pg - 1);
    while (at < upto && !c->touch) {
        uintptr_t addr = (uintptr_t)(c->block + at);
        size_t step = (size_t)(((addr | (HUGE - 1)) + 1) - addr);
        if (step > upto - at)
            step = upto - at;
        uint64_t t0 = c->small ? 0 : asp__now_ns();
        if (madvise(c->block + at, step, MADV_POPULATE_WRITE) < 0) {
            c->touch = 1; /* before 5.14: touch pages from here on */
            break;
        }
        if (!c->small) {
            c->slow =
                asp__now_ns() - t0 >= asp__capture_slow_ns ? c->slow + 1 : 0;
            if (c->slow >= SLOW_STEPS) {
                c->small = 1;
                (void)madvise(c->block, map, MADV_NOHUGEPAGE);
            }
        }
        at += step;
    }
    if (at >= upto) {
        c->ready = upto;
        return;
    }
    if (at > from) /* at was rounded down: never below the data's end */
        from = at;
#endif
    for (size_t i = from; i < upto; i = (i | (pg - 1)) + 1)
        ((volatile char *)c->block)[i] = 0;
    c->ready = upto;
}
#endif

#ifdef ASP_HAVE_MREMAP
/* Moves the capture into the mapping nb of map bytes (tag: the cache it
 * returns to, or NULL): the data held in allocator memory is copied and
 * that memory freed; the header notes size and cache. */
static void move_to_mapping(asp__capture *c, char *nb, size_t map,
                            asp__capcache *tag)
{
    if (c->block) {
        memcpy(nb + ASP__CAP_HDR, c->block + ASP__CAP_HDR, c->len);
        asp__free(c->block);
    }
    c->block = nb;
    c->mapped = 1;
    c->ready = 0;
    c->room = map - ASP__CAP_HDR;
    memcpy(c->block, &map, sizeof map);
    memcpy(c->block + sizeof map, &tag, sizeof tag);
}

/* A mapping of at least map bytes for a capture not mapped yet: one the
 * loop's cache keeps, or a fresh one (tagged with the cache, so that it
 * goes back there). fresh: whether a fresh one may be made (else only
 * the cache is asked). 0, or -ENOMEM with nothing changed. */
static int to_mapping(asp__capture *c, size_t map, int fresh)
{
    size_t got;
    char *nb = c->cache ? asp__capcache_take(c->cache, map, &got) : NULL;
    if (nb) {
        move_to_mapping(c, nb, got, c->cache);
        return 0;
    }
    if (!fresh)
        return -ENOMEM;
    nb = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
    if (nb == MAP_FAILED)
        return -ENOMEM;
    if (c->cache)
        asp__capcache_tag(c->cache);
    move_to_mapping(c, nb, map, c->cache);
    return 0;
}

/* Grows a capture into or within a mapping so that it can hold room
 * bytes; fresh as for to_mapping. 0 or -ENOMEM. */
static int grow_mapped(asp__capture *c, size_t room, int fresh)
{
    size_t newmap = round_huge(room + ASP__CAP_HDR);
    if (c->mapped) {
        size_t oldmap;
        memcpy(&oldmap, c->block, sizeof oldmap);
        if (newmap <= oldmap)
            newmap = oldmap * 2;
        char *nb = mremap(c->block, oldmap, newmap, MREMAP_MAYMOVE);
        if (nb == MAP_FAILED)
            return -ENOMEM;
        c->block = nb;
        c->room = newmap - ASP__CAP_HDR;
        memcpy(c->block, &newmap, sizeof newmap);
    } else if (to_mapping(c, newmap, fresh) < 0) {
        return -ENOMEM;
    }
    /* A hint the kernel may ignore; off once huge pages proved slow. */
    size_t map;
    memcpy(&map, c->block, sizeof map);
    (void)madvise(c->block, map, c->small ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
    return 0;
}
#endif

/* Grows the block so that room >= need; 0 or -ENOMEM. Large captures
 * move to a mapping; from CACHE_FROM on, into one the loop's cache keeps
 * if there is one (no further copy, pages already there). */
static int grow(asp__capture *c, size_t need)
{
    size_t room = c->room ? c->room * 2 : FIRST_BLOCK;
    if (room < need)
        room = need;
#ifdef ASP_HAVE_MREMAP
    if (c->mapped || room + ASP__CAP_HDR > SMALL_MAX)
        return grow_mapped(c, room, 1);
    if (c->cache && room + ASP__CAP_HDR > CACHE_FROM &&
        grow_mapped(c, room, 0) == 0)
        return 0;
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
 * reached or memory ran out (the caller reads elsewhere and discards).
 * A read asks for no more room than the capture holds already (at least
 * MIN_ROOM), so the block doubles with the data: a job's few hundred
 * bytes cost one 4 KiB block, not a whole read buffer (64 KiB, whose
 * malloc and free moved the heap's break and faulted pages in on every
 * capture), and a large capture makes a handful of smaller reads at its
 * start. */
char *asp__capture_space(asp__capture *c, size_t want, size_t *room)
{
    if (c->failed || (c->cap && c->len >= c->cap))
        return NULL;
    size_t grown = c->len > MIN_ROOM ? c->len : MIN_ROOM;
    if (want > grown)
        want = grown;
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
#ifdef ASP_HAVE_MREMAP
    if (c->mapped) {
        /* The read gets only faulted-in room (at least want bytes, as the
         * prefault rounds up to a huge page). */
        prefault(c,
                 ASP__CAP_HDR + c->len + (free_room < want ? free_room : want));
        size_t faulted = c->ready > ASP__CAP_HDR + c->len
                             ? c->ready - ASP__CAP_HDR - c->len
                             : 0;
        if (faulted && free_room > faulted)
            free_room = faulted;
    }
#endif
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
    c->len = c->room = c->ready = 0;
    c->mapped = c->small = c->slow = c->touch = 0;
    return data;
}

/* Frees a capture's block: a mapping goes back to the cache it names,
 * or is unmapped. */
void asp__capture_free(asp__capture *c)
{
    if (!c->block)
        return;
    size_t map;
    memcpy(&map, c->block, sizeof map);
#ifdef ASP_HAVE_MREMAP
    if (map) {
        asp__capcache *tag;
        memcpy(&tag, c->block + sizeof map, sizeof tag);
        if (tag)
            asp__capcache_put(tag, c->block, map);
        else
            munmap(c->block, map);
        c->block = NULL;
        return;
    }
#endif
    asp__free(c->block);
    c->block = NULL;
}

/* Frees one buffer handed out by asp__capture_take (NULL ignored). */
void asp__capture_free_data(char *data)
{
    if (!data)
        return;
    asp__capture c = {0};
    c.block = data - ASP__CAP_HDR;
    asp__capture_free(&c);
}

/* ---------------------------------------------------------------- mode */

/* Starts capture mode; see internal.h. */
void asp__stream_capture(asp_stream *s, asp__capture *c, asp__capture_done done,
                         void *arg)
{
    asp__reader *r = &s->u.r;
    size_t a = asp__stream_avail(s);
    if (!c->cache)
        c->cache = asp__capcache_get(s->loop);
    if (a)
        asp__capture_add(c, r->buf + r->start, a);
    r->start = r->end = 0;
    r->mode = ASP__MODE_CAPTURE;
    r->capture = c;
    r->capture_done = done;
    r->capture_arg = arg;
    if (s->phase != ASP__PH_OPEN)
        asp__stream_kick(s); /* ended already: done in the next iteration */
    asp__stream_update(s);
}

/* Leaves capture mode without the done callback. */
void asp__stream_capture_stop(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    if (r->mode != ASP__MODE_CAPTURE)
        return;
    r->mode = ASP__MODE_BUFFER;
    r->capture = NULL;
    if (s->phase != ASP__PH_CLOSED)
        asp__stream_update(s);
}

/* One read straight into the capture (the buffer is empty), or into the
 * buffer when the capture keeps nothing more. */
int asp__capture_fill(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    size_t room, n;
    char *dst = asp__capture_space(r->capture, r->bufsize, &room);
    if (!dst)
        return asp__stream_fill(s);
    int f = asp__stream_read_into(s, dst, room, &n);
    r->capture->len += n;
    r->capture->total += n;
    return f;
}

/* Ends the mode and tells its owner (EOF, cut, close). */
void asp__capture_end(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    asp__capture_done done = r->capture_done;
    void *arg = r->capture_arg;
    r->mode = ASP__MODE_BUFFER;
    r->capture = NULL;
    done(s, arg);
}

/* Moves buffered bytes into the capture (or counts and drops them past
 * the cap); ends the mode once the input ended. Returns 0: nothing more
 * to deliver from here. */
int asp__capture_deliver(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    size_t a = asp__stream_avail(s);
    if (a) {
        asp__capture_add(r->capture, r->buf + r->start, a);
        r->start = r->end = 0;
    }
    if (s->phase == ASP__PH_EOF || s->phase == ASP__PH_CUT)
        asp__capture_end(s);
    return 0;
}
