/*
 * test_timer.c - timers: order, equal deadlines, cancel, re-arm from the
 * callback, zero timeout, repeat, stopping others from a callback, and the
 * heap against a brute-force reference.
 */
/* White-box: the heap test compares against the timers' own deadlines
 * (first: it sets the feature macros the library's headers need). */
#include "../src/loop/internal.h"
#include "harness.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
    int order[64];
    int n;
} trace;

typedef struct {
    asp_timer t;
    int id;
    trace *tr;
} ttimer;

/* Records which timer fired. */
static void record_cb(asp_timer *t, void *data)
{
    (void)t;
    ttimer *tt = data;
    tt->tr->order[tt->tr->n++] = tt->id;
}

START_TEST(timer_order_by_deadline)
{
    asp_loop *loop = asp_t_loop();
    trace tr = {0};
    ttimer ts[4];
    int64_t ms[4] = {30, 10, 20, 0};
    for (int i = 0; i < 4; i++) {
        ts[i].id = i;
        ts[i].tr = &tr;
        ck_assert_int_eq(asp_timer_init(loop, &ts[i].t, record_cb, &ts[i]), 0);
        ck_assert_int_eq(asp_timer_start(&ts[i].t, ms[i], 0), 0);
    }
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert_int_eq(tr.n, 4);
    ck_assert_int_eq(tr.order[0], 3);
    ck_assert_int_eq(tr.order[1], 1);
    ck_assert_int_eq(tr.order[2], 2);
    ck_assert_int_eq(tr.order[3], 0);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(timer_equal_deadlines_in_start_order)
{
    asp_loop *loop = asp_t_loop();
    trace tr = {0};
    ttimer ts[20];
    /* Started in a scrambled index order; all share one deadline. */
    int start_order[20];
    for (int i = 0; i < 20; i++)
        start_order[i] = (i * 7) % 20;
    for (int i = 0; i < 20; i++) {
        ts[i].id = i;
        ts[i].tr = &tr;
        asp_timer_init(loop, &ts[i].t, record_cb, &ts[i]);
    }
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(asp_timer_start(&ts[start_order[i]].t, 5, 0), 0);
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(tr.n, 20);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(tr.order[i], start_order[i]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(timer_cancel)
{
    asp_loop *loop = asp_t_loop();
    trace tr = {0};
    ttimer a = {.id = 1, .tr = &tr}, b = {.id = 2, .tr = &tr};
    asp_timer_init(loop, &a.t, record_cb, &a);
    asp_timer_init(loop, &b.t, record_cb, &b);
    asp_timer_start(&a.t, 5, 0);
    asp_timer_start(&b.t, 10, 0);
    ck_assert(asp_timer_active(&a.t));
    ck_assert_int_eq(asp_timer_stop(&a.t), 0);
    ck_assert(!asp_timer_active(&a.t));
    ck_assert_int_eq(asp_timer_stop(&a.t), 0); /* stopping twice is fine */
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(tr.n, 1);
    ck_assert_int_eq(tr.order[0], 2);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_timer t;
    int fired;
    int rearm_left;
    uint64_t iter_at_fire[8];
    asp_loop *loop;
} rearm_ctx;

/* Restarts itself with timeout 0 a few times. */
static void rearm_cb(asp_timer *t, void *data)
{
    rearm_ctx *c = data;
    c->fired++;
    if (c->rearm_left-- > 0)
        ck_assert_int_eq(asp_timer_start(t, 0, 0), 0);
}

START_TEST(timer_rearm_zero_from_callback_runs_next_iteration)
{
    asp_loop *loop = asp_t_loop();
    rearm_ctx c = {.rearm_left = 3};
    asp_timer_init(loop, &c.t, rearm_cb, &c);
    asp_timer_start(&c.t, 0, 0);
    /* Each NOWAIT iteration fires it exactly once: a zero timer re-armed
     * from its callback does not run again in the same iteration. */
    for (int i = 1; i <= 4; i++) {
        asp_loop_run(loop, ASP_RUN_NOWAIT);
        ck_assert_int_eq(c.fired, i);
    }
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_NOWAIT), 0);
    ck_assert_int_eq(c.fired, 4);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_timer t;
    int count;
} rep_ctx;

/* Stops the repeating timer after five runs. */
static void repeat_cb(asp_timer *t, void *data)
{
    rep_ctx *c = data;
    if (++c->count == 5)
        asp_timer_stop(t);
}

START_TEST(timer_repeat_and_stop_self)
{
    asp_loop *loop = asp_t_loop();
    rep_ctx c = {0};
    asp_timer_init(loop, &c.t, repeat_cb, &c);
    asp_timer_start(&c.t, 1, 2);
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.count, 5);
    ck_assert(asp_t_now_ms() - t0 >= 9.0); /* 1 + 4 * 2 ms at least */
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_timer a, b;
    int a_fired, b_fired;
    int free_b;
} pair_ctx;

/* a's callback stops b, which is due in the same iteration. */
static void stop_other_cb(asp_timer *t, void *data)
{
    (void)t;
    pair_ctx *c = data;
    c->a_fired++;
    asp_timer_stop(&c->b);
    /* Scribble over b as if it was freed: the loop must not touch it. */
    if (c->free_b)
        for (size_t i = 0; i < sizeof c->b; i++)
            ((unsigned char *)&c->b)[i] = 0xa5;
}

/* Must never run. */
static void never_cb(asp_timer *t, void *data)
{
    (void)t;
    pair_ctx *c = data;
    c->b_fired++;
}

START_TEST(timer_stop_other_due_in_same_iteration)
{
    asp_loop *loop = asp_t_loop();
    pair_ctx c = {.free_b = 1};
    asp_timer_init(loop, &c.a, stop_other_cb, &c);
    asp_timer_init(loop, &c.b, never_cb, &c);
    asp_timer_start(&c.a, 5, 0);
    asp_timer_start(&c.b, 5, 0); /* same deadline, later: collected too */
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.a_fired, 1);
    ck_assert_int_eq(c.b_fired, 0);
    asp_t_loop_free(loop);
}
END_TEST

typedef struct {
    asp_timer t[200];
    int64_t due[200];
    int active[200];
    int fired_order[200];
    int nfired;
} heap_ctx;

/* Records the firing index. */
static void heap_cb(asp_timer *t, void *data)
{
    heap_ctx *c = data;
    int idx = (int)(t - c->t);
    c->fired_order[c->nfired++] = idx;
}

START_TEST(timer_heap_matches_reference)
{
    /* Random starts, restarts and stops; then the firing order must be the
     * reference order (deadline, then last start). */
    asp_loop *loop = asp_t_loop();
    static heap_ctx c;
    int seq[200], next_seq = 0;
    srand(1234);
    for (int i = 0; i < 200; i++)
        asp_timer_init(loop, &c.t[i], heap_cb, &c);
    for (int step = 0; step < 2000; step++) {
        int i = rand() % 200;
        if (rand() % 4 == 0) {
            asp_timer_stop(&c.t[i]);
            c.active[i] = 0;
        } else {
            int64_t ms = rand() % 40;
            asp_timer_start(&c.t[i], ms, 0);
            c.due[i] = ms;
            c.active[i] = 1;
            seq[i] = next_seq++;
        }
    }
    /* The reference order is by absolute deadline, then start order. A
     * positive timeout counts from the clock at the start call, so the
     * deadlines come from the timers themselves (the clock moves during
     * this setup, a lot under valgrind); c.due checks they match the
     * requested timeouts. */
    int expect[200], ne = 0;
    uint64_t first = UINT64_MAX;
    for (int i = 0; i < 200; i++)
        if (c.active[i]) {
            expect[ne++] = i;
            uint64_t start =
                ASP__T(&c.t[i])->due - (uint64_t)c.due[i] * 1000000u;
            if (start < first)
                first = start;
        }
    for (int k = 0; k < ne; k++) {
        int i = expect[k];
        uint64_t start = ASP__T(&c.t[i])->due - (uint64_t)c.due[i] * 1000000u;
        /* every start lies within the setup (well under 10 s) */
        ck_assert_uint_lt(start - first, 10000000000u);
    }
    for (int a = 0; a < ne; a++)
        for (int b = a + 1; b < ne; b++) {
            int x = expect[a], y = expect[b];
            if (ASP__T(&c.t[y])->due < ASP__T(&c.t[x])->due ||
                (ASP__T(&c.t[y])->due == ASP__T(&c.t[x])->due &&
                 seq[y] < seq[x])) {
                expect[a] = y;
                expect[b] = x;
            }
        }
    asp_loop_run(loop, ASP_RUN_DEFAULT);
    ck_assert_int_eq(c.nfired, ne);
    for (int k = 0; k < ne; k++)
        ck_assert_int_eq(c.fired_order[k], expect[k]);
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(timer_bad_input)
{
    asp_loop *loop = asp_t_loop();
    asp_timer t;
    ck_assert_int_eq(asp_timer_init(NULL, &t, record_cb, NULL), -EINVAL);
    ck_assert_int_eq(asp_timer_init(loop, NULL, record_cb, NULL), -EINVAL);
    ck_assert_int_eq(asp_timer_init(loop, &t, NULL, NULL), -EINVAL);
    ck_assert_int_eq(asp_timer_init(loop, &t, record_cb, NULL), 0);
    ck_assert_int_eq(asp_timer_start(&t, -1, 0), -EINVAL);
    ck_assert_int_eq(asp_timer_start(&t, 1, -5), -EINVAL);
    ck_assert_int_eq(asp_timer_start(NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(asp_timer_stop(NULL), -EINVAL);
    ck_assert(!asp_timer_active(&t));
    asp_t_loop_free(loop);
}
END_TEST

START_TEST(timer_unref_does_not_keep_loop)
{
    asp_loop *loop = asp_t_loop();
    trace tr = {0};
    ttimer a = {.id = 1, .tr = &tr};
    asp_timer_init(loop, &a.t, record_cb, &a);
    asp_timer_unref(&a.t);
    asp_timer_start(&a.t, 10000, 0);
    double t0 = asp_t_now_ms();
    ck_assert_int_eq(asp_loop_run(loop, ASP_RUN_DEFAULT), 0);
    ck_assert(asp_t_now_ms() - t0 < 1000);
    ck_assert_int_eq(tr.n, 0);
    asp_timer_ref(&a.t);
    ck_assert(asp_loop_alive(loop));
    asp_timer_stop(&a.t);
    ck_assert(!asp_loop_alive(loop));
    asp_t_loop_free(loop);
}
END_TEST

/* The timer suite. */
Suite *suite_timer(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = asp_t_case("timer", 10);
    tcase_add_test(tc, timer_order_by_deadline);
    tcase_add_test(tc, timer_equal_deadlines_in_start_order);
    tcase_add_test(tc, timer_cancel);
    tcase_add_test(tc, timer_rearm_zero_from_callback_runs_next_iteration);
    tcase_add_test(tc, timer_repeat_and_stop_self);
    tcase_add_test(tc, timer_stop_other_due_in_same_iteration);
    tcase_add_test(tc, timer_heap_matches_reference);
    tcase_add_test(tc, timer_bad_input);
    tcase_add_test(tc, timer_unref_does_not_keep_loop);
    suite_add_tcase(s, tc);
    return s;
}
