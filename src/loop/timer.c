/*
 * timer.c - timers on the monotonic clock.
 *
 * Started timers live in an intrusive binary min-heap (each timer carries
 * its own left/right/parent links), so starting a timer never allocates and
 * cannot fail for lack of memory. Position k (1-based) of the heap is found
 * from the bits of k, as in any array heap, but by walking links.
 * Ordering is (deadline, start sequence): equal deadlines fire in the order
 * they were started.
 *
 * Dispatch first moves every due timer to a "ready" list and only then
 * runs callbacks, so a callback that restarts a timer with timeout 0 sees
 * it fire in the next iteration, never in this one (no starvation), and a
 * callback that stops a ready timer unlinks it before it can run.
 */
#include "internal.h"

#include <errno.h>

/* The private part of a timer. */
#define T(t) ASP__T(t)

/* Strict ordering of two timers: earlier deadline, then earlier start. */
static int timer_less(const asp_timer *a, const asp_timer *b)
{
    if (T(a)->due != T(b)->due)
        return T(a)->due < T(b)->due;
    return T(a)->seq < T(b)->seq;
}

/* Exchanges child c with its parent p in the tree shape, keeping every
 * other node where it is. */
static void heap_swap_up(asp_loop *loop, asp_timer *p, asp_timer *c)
{
    asp_timer *pp = T(p)->parent;
    asp_timer *sibling;

    if (T(p)->left == c) {
        sibling = T(p)->right;
        T(p)->left = T(c)->left;
        T(p)->right = T(c)->right;
        T(c)->left = p;
        T(c)->right = sibling;
    } else {
        sibling = T(p)->left;
        T(p)->left = T(c)->left;
        T(p)->right = T(c)->right;
        T(c)->right = p;
        T(c)->left = sibling;
    }
    if (T(p)->left)
        T(T(p)->left)->parent = p;
    if (T(p)->right)
        T(T(p)->right)->parent = p;
    if (sibling)
        T(sibling)->parent = c;
    T(c)->parent = pp;
    T(p)->parent = c;
    if (!pp)
        loop->heap_min = c;
    else if (T(pp)->left == p)
        T(pp)->left = c;
    else
        T(pp)->right = c;
}

/* Returns the node at 1-based position k (k <= heap_n + 1 for its parent
 * walk); for k == heap_n + 1 use node_at(k / 2) instead. */
static asp_timer *heap_node_at(const asp_loop *loop, unsigned k)
{
    int depth = 0;
    while ((k >> (depth + 1)) != 0)
        depth++;
    asp_timer *n = loop->heap_min;
    /* Every node on the path to k <= heap_n exists; the analyzer cannot
     * see that invariant and assumes an empty heap.
     * NOLINTBEGIN(clang-analyzer-core.NullDereference) */
    for (int i = depth - 1; i >= 0; i--)
        n = ((k >> i) & 1u) ? T(n)->right : T(n)->left;
    /* NOLINTEND(clang-analyzer-core.NullDereference) */
    return n;
}

/* Inserts t, then sifts it up. */
static void heap_insert(asp_loop *loop, asp_timer *t)
{
    unsigned k = loop->heap_n + 1;

    T(t)->left = T(t)->right = T(t)->parent = NULL;
    loop->heap_n = k;
    if (k == 1) {
        loop->heap_min = t;
        return;
    }
    asp_timer *p = heap_node_at(loop, k / 2);
    if (k & 1u)
        T(p)->right = t;
    else
        T(p)->left = t;
    T(t)->parent = p;
    while (T(t)->parent && timer_less(t, T(t)->parent))
        heap_swap_up(loop, T(t)->parent, t);
}

/* Removes t (which must be in the heap): the last node takes its place
 * and is sifted down or up. */
static void heap_remove(asp_loop *loop, asp_timer *t)
{
    asp_timer *last = heap_node_at(loop, loop->heap_n);

    if (T(last)->parent) {
        if (T(T(last)->parent)->left == last)
            T(T(last)->parent)->left = NULL;
        else
            T(T(last)->parent)->right = NULL;
    }
    loop->heap_n--;
    if (last == t) {
        if (loop->heap_n == 0)
            loop->heap_min = NULL;
        T(t)->left = T(t)->right = T(t)->parent = NULL;
        return;
    }

    T(last)->left = T(t)->left;
    T(last)->right = T(t)->right;
    T(last)->parent = T(t)->parent;
    if (T(last)->left)
        T(T(last)->left)->parent = last;
    if (T(last)->right)
        T(T(last)->right)->parent = last;
    if (!T(t)->parent)
        loop->heap_min = last;
    else if (T(T(t)->parent)->left == t)
        T(T(t)->parent)->left = last;
    else
        T(T(t)->parent)->right = last;
    T(t)->left = T(t)->right = T(t)->parent = NULL;

    for (;;) {
        asp_timer *m = last;
        if (T(last)->left && timer_less(T(last)->left, m))
            m = T(last)->left;
        if (T(last)->right && timer_less(T(last)->right, m))
            m = T(last)->right;
        if (m == last)
            break;
        heap_swap_up(loop, last, m);
    }
    while (T(last)->parent && timer_less(last, T(last)->parent))
        heap_swap_up(loop, T(last)->parent, last);
}

/* Unlinks t from the loop's ready list. */
static void ready_unlink(asp_loop *loop, asp_timer *t)
{
    if (T(t)->rprev)
        T(T(t)->rprev)->rnext = T(t)->rnext;
    else
        loop->ready_head = T(t)->rnext;
    if (T(t)->rnext)
        T(T(t)->rnext)->rprev = T(t)->rprev;
    else
        loop->ready_tail = T(t)->rprev;
    T(t)->rnext = T(t)->rprev = NULL;
}

/* Marks t inactive and drops its loop reference. */
static void timer_deactivate(asp_timer *t)
{
    if (!(T(t)->flags & ASP__F_UNREF))
        T(t)->loop->nref--;
    T(t)->flags &= ~(ASP__F_ACTIVE | ASP__F_READY);
}

_Static_assert(sizeof(asp__timer_priv) <= sizeof(((asp_timer *)0)->private_),
               "asp_timer's private room is too small");

/* The loop t was initialised with. */
asp_loop *asp__timer_loop(const asp_timer *t)
{
    return T(t)->loop;
}

/* Prepares t; it stays stopped until asp_timer_start. */
int asp_timer_init(asp_loop *loop, asp_timer *t, asp_timer_cb cb, void *data)
{
    if (!loop || !t || !cb)
        return -EINVAL;
    *t = (asp_timer){0};
    T(t)->loop = loop;
    T(t)->cb = cb;
    t->data = data;
    T(t)->flags = ASP__F_INIT;
    return 0;
}

/* Takes t out of the heap or the ready list; 1 if it was started. */
static int timer_unlink(asp_timer *t)
{
    if (!(T(t)->flags & ASP__F_ACTIVE))
        return 0;
    if (T(t)->flags & ASP__F_READY)
        ready_unlink(T(t)->loop, t);
    else
        heap_remove(T(t)->loop, t);
    timer_deactivate(t);
    return 1;
}

/* (Re)starts t. A positive deadline counts from the clock read now, not
 * from the loop's cached time, which may be old when the call comes
 * between iterations: a timeout never fires early. A host loop hears of
 * the new deadline once, after the restart (not of the stop inside it). */
int asp_timer_start(asp_timer *t, int64_t timeout_ms, int64_t repeat_ms)
{
    if (!t || !(T(t)->flags & ASP__F_INIT) || timeout_ms < 0 || repeat_ms < 0)
        return -EINVAL;
    timer_unlink(t);
    asp_loop *loop = T(t)->loop;
    uint64_t now = loop->now_ns;
    if (timeout_ms > 0) {
        uint64_t clock = asp__now_ns();
        if (clock > now)
            now = clock;
    }
    /* Timeout 0 is due at the cached time: the next timer run takes it
     * without the poll waiting for it (a tiny positive timeout would be
     * rounded up to 1 ms on kernels without epoll_pwait2). */
    T(t)->due = now + asp__ms_to_ns(timeout_ms);
    T(t)->repeat = asp__ms_to_ns(repeat_ms);
    T(t)->seq = loop->timer_seq++;
    T(t)->flags |= ASP__F_ACTIVE;
    if (!(T(t)->flags & ASP__F_UNREF))
        loop->nref++;
    heap_insert(loop, t);
    if (loop->host_timeout_cb)
        asp__embed_deadline_moved(loop);
    return 0;
}

/* Stops t wherever it is: in the heap or on the ready list. */
int asp_timer_stop(asp_timer *t)
{
    if (!t)
        return -EINVAL;
    asp_loop *loop = T(t)->loop;
    if (timer_unlink(t) && loop->host_timeout_cb)
        asp__embed_deadline_moved(loop);
    return 0;
}

/* Non-zero while started. */
int asp_timer_active(const asp_timer *t)
{
    return t && (T(t)->flags & ASP__F_ACTIVE) != 0;
}

/* Makes t count for loop liveness again. */
void asp_timer_ref(asp_timer *t)
{
    if (!t || !(T(t)->flags & ASP__F_UNREF))
        return;
    T(t)->flags &= ~ASP__F_UNREF;
    if (T(t)->flags & ASP__F_ACTIVE)
        T(t)->loop->nref++;
}

/* Makes t not count for loop liveness. */
void asp_timer_unref(asp_timer *t)
{
    if (!t || (T(t)->flags & ASP__F_UNREF))
        return;
    T(t)->flags |= ASP__F_UNREF;
    if (T(t)->flags & ASP__F_ACTIVE)
        T(t)->loop->nref--;
}

/* Runs every timer due at the loop's cached time and started before
 * sequence number seq_limit: collect first, then call, as the file comment
 * explains. */
void asp__timers_run(asp_loop *loop, uint64_t seq_limit)
{
    asp_timer *t;

    while ((t = loop->heap_min) != NULL && T(t)->due <= loop->now_ns &&
           T(t)->seq < seq_limit) {
        heap_remove(loop, t);
        T(t)->flags |= ASP__F_READY;
        T(t)->rnext = NULL;
        T(t)->rprev = loop->ready_tail;
        if (loop->ready_tail)
            T(loop->ready_tail)->rnext = t;
        else
            loop->ready_head = t;
        loop->ready_tail = t;
    }
    while ((t = loop->ready_head) != NULL) {
        ready_unlink(loop, t);
        if (T(t)->repeat) {
            /* Re-armed before the callback so the callback may stop it. */
            T(t)->flags &= ~ASP__F_READY;
            T(t)->due = loop->now_ns + T(t)->repeat;
            T(t)->seq = loop->timer_seq++;
            heap_insert(loop, t);
        } else {
            timer_deactivate(t);
        }
        T(t)->cb(t, t->data);
    }
}

/* Nanoseconds from now_ns until the earliest timer is due: -1 none,
 * 0 due already. */
int64_t asp__timers_next(const asp_loop *loop, uint64_t now_ns)
{
    const asp_timer *t = loop->heap_min;
    if (!t)
        return -1;
    if (T(t)->due <= now_ns)
        return 0;
    uint64_t d = T(t)->due - now_ns;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}
