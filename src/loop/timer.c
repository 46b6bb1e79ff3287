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

/* Strict ordering of two timers: earlier deadline, then earlier start. */
static int timer_less(const asp_timer *a, const asp_timer *b)
{
    if (a->due_ != b->due_)
        return a->due_ < b->due_;
    return a->seq_ < b->seq_;
}

/* Exchanges child c with its parent p in the tree shape, keeping every
 * other node where it is. */
static void heap_swap_up(asp_loop *loop, asp_timer *p, asp_timer *c)
{
    asp_timer *pp = p->parent_;
    asp_timer *sibling;

    if (p->left_ == c) {
        sibling = p->right_;
        p->left_ = c->left_;
        p->right_ = c->right_;
        c->left_ = p;
        c->right_ = sibling;
    } else {
        sibling = p->left_;
        p->left_ = c->left_;
        p->right_ = c->right_;
        c->right_ = p;
        c->left_ = sibling;
    }
    if (p->left_)
        p->left_->parent_ = p;
    if (p->right_)
        p->right_->parent_ = p;
    if (sibling)
        sibling->parent_ = c;
    c->parent_ = pp;
    p->parent_ = c;
    if (!pp)
        loop->heap_min = c;
    else if (pp->left_ == p)
        pp->left_ = c;
    else
        pp->right_ = c;
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
        n = ((k >> i) & 1u) ? n->right_ : n->left_;
    /* NOLINTEND(clang-analyzer-core.NullDereference) */
    return n;
}

/* Inserts t, then sifts it up. */
static void heap_insert(asp_loop *loop, asp_timer *t)
{
    unsigned k = loop->heap_n + 1;

    t->left_ = t->right_ = t->parent_ = NULL;
    loop->heap_n = k;
    if (k == 1) {
        loop->heap_min = t;
        return;
    }
    asp_timer *p = heap_node_at(loop, k / 2);
    if (k & 1u)
        p->right_ = t;
    else
        p->left_ = t;
    t->parent_ = p;
    while (t->parent_ && timer_less(t, t->parent_))
        heap_swap_up(loop, t->parent_, t);
}

/* Removes t (which must be in the heap): the last node takes its place
 * and is sifted down or up. */
static void heap_remove(asp_loop *loop, asp_timer *t)
{
    asp_timer *last = heap_node_at(loop, loop->heap_n);

    if (last->parent_) {
        if (last->parent_->left_ == last)
            last->parent_->left_ = NULL;
        else
            last->parent_->right_ = NULL;
    }
    loop->heap_n--;
    if (last == t) {
        if (loop->heap_n == 0)
            loop->heap_min = NULL;
        t->left_ = t->right_ = t->parent_ = NULL;
        return;
    }

    last->left_ = t->left_;
    last->right_ = t->right_;
    last->parent_ = t->parent_;
    if (last->left_)
        last->left_->parent_ = last;
    if (last->right_)
        last->right_->parent_ = last;
    if (!t->parent_)
        loop->heap_min = last;
    else if (t->parent_->left_ == t)
        t->parent_->left_ = last;
    else
        t->parent_->right_ = last;
    t->left_ = t->right_ = t->parent_ = NULL;

    for (;;) {
        asp_timer *m = last;
        if (last->left_ && timer_less(last->left_, m))
            m = last->left_;
        if (last->right_ && timer_less(last->right_, m))
            m = last->right_;
        if (m == last)
            break;
        heap_swap_up(loop, last, m);
    }
    while (last->parent_ && timer_less(last, last->parent_))
        heap_swap_up(loop, last->parent_, last);
}

/* Unlinks t from the loop's ready list. */
static void ready_unlink(asp_loop *loop, asp_timer *t)
{
    if (t->rprev_)
        t->rprev_->rnext_ = t->rnext_;
    else
        loop->ready_head = t->rnext_;
    if (t->rnext_)
        t->rnext_->rprev_ = t->rprev_;
    else
        loop->ready_tail = t->rprev_;
    t->rnext_ = t->rprev_ = NULL;
}

/* Marks t inactive and drops its loop reference. */
static void timer_deactivate(asp_timer *t)
{
    if (!(t->flags_ & ASP__F_UNREF))
        t->loop_->nref--;
    t->flags_ &= ~(ASP__F_ACTIVE | ASP__F_READY);
}

/* Prepares t; it stays stopped until asp_timer_start. */
int asp_timer_init(asp_loop *loop, asp_timer *t, asp_timer_cb cb, void *data)
{
    if (!loop || !t || !cb)
        return -EINVAL;
    *t = (asp_timer){0};
    t->loop_ = loop;
    t->cb_ = cb;
    t->data = data;
    t->flags_ = ASP__F_INIT;
    return 0;
}

/* Converts milliseconds to nanoseconds, saturating instead of wrapping. */
static uint64_t ms_to_ns(int64_t ms)
{
    if ((uint64_t)ms > UINT64_MAX / 1000000u / 2)
        return UINT64_MAX / 2;
    return (uint64_t)ms * 1000000u;
}

/* (Re)starts t. A positive deadline counts from the clock read now, not
 * from the loop's cached time, which may be old when the call comes
 * between iterations: a timeout never fires early. */
int asp_timer_start(asp_timer *t, int64_t timeout_ms, int64_t repeat_ms)
{
    if (!t || !(t->flags_ & ASP__F_INIT) || timeout_ms < 0 || repeat_ms < 0)
        return -EINVAL;
    asp_timer_stop(t);
    asp_loop *loop = t->loop_;
    uint64_t now = loop->now_ns;
    if (timeout_ms > 0) {
        uint64_t clock = asp__now_ns();
        if (clock > now)
            now = clock;
    }
    /* Timeout 0 is due at the cached time: the next timer run takes it
     * without the poll waiting for it (a tiny positive timeout would be
     * rounded up to 1 ms on kernels without epoll_pwait2). */
    t->due_ = now + ms_to_ns(timeout_ms);
    t->repeat_ = ms_to_ns(repeat_ms);
    t->seq_ = loop->timer_seq++;
    t->flags_ |= ASP__F_ACTIVE;
    if (!(t->flags_ & ASP__F_UNREF))
        loop->nref++;
    heap_insert(loop, t);
    return 0;
}

/* Stops t wherever it is: in the heap or on the ready list. */
int asp_timer_stop(asp_timer *t)
{
    if (!t)
        return -EINVAL;
    if (!(t->flags_ & ASP__F_ACTIVE))
        return 0;
    if (t->flags_ & ASP__F_READY)
        ready_unlink(t->loop_, t);
    else
        heap_remove(t->loop_, t);
    timer_deactivate(t);
    return 0;
}

/* Non-zero while started. */
int asp_timer_active(const asp_timer *t)
{
    return t && (t->flags_ & ASP__F_ACTIVE) != 0;
}

/* Makes t count for loop liveness again. */
void asp_timer_ref(asp_timer *t)
{
    if (!t || !(t->flags_ & ASP__F_UNREF))
        return;
    t->flags_ &= ~ASP__F_UNREF;
    if (t->flags_ & ASP__F_ACTIVE)
        t->loop_->nref++;
}

/* Makes t not count for loop liveness. */
void asp_timer_unref(asp_timer *t)
{
    if (!t || (t->flags_ & ASP__F_UNREF))
        return;
    t->flags_ |= ASP__F_UNREF;
    if (t->flags_ & ASP__F_ACTIVE)
        t->loop_->nref--;
}

/* Runs every timer due at the loop's cached time and started before
 * sequence number seq_limit: collect first, then call, as the file comment
 * explains. */
void asp__timers_run(asp_loop *loop, uint64_t seq_limit)
{
    asp_timer *t;

    while ((t = loop->heap_min) != NULL && t->due_ <= loop->now_ns &&
           t->seq_ < seq_limit) {
        heap_remove(loop, t);
        t->flags_ |= ASP__F_READY;
        t->rnext_ = NULL;
        t->rprev_ = loop->ready_tail;
        if (loop->ready_tail)
            loop->ready_tail->rnext_ = t;
        else
            loop->ready_head = t;
        loop->ready_tail = t;
    }
    while ((t = loop->ready_head) != NULL) {
        ready_unlink(loop, t);
        if (t->repeat_) {
            /* Re-armed before the callback so the callback may stop it. */
            t->flags_ &= ~ASP__F_READY;
            t->due_ = loop->now_ns + t->repeat_;
            t->seq_ = loop->timer_seq++;
            heap_insert(loop, t);
        } else {
            timer_deactivate(t);
        }
        t->cb_(t);
    }
}

/* Nanoseconds from now_ns until the earliest timer is due: -1 none,
 * 0 due already. */
int64_t asp__timers_next(const asp_loop *loop, uint64_t now_ns)
{
    const asp_timer *t = loop->heap_min;
    if (!t)
        return -1;
    if (t->due_ <= now_ns)
        return 0;
    uint64_t d = t->due_ - now_ns;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}
