/*
 * test_limits.c - asp_raise_fd_limit: raises the soft open-file limit to
 * the hard one, changes nothing when called again or when they are equal,
 * never lowers either limit, and hands children the soft limit of before.
 *
 * Check runs each test in a process of its own, so the limits a test sets
 * (and the library's note of the first raise) end with it.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Whether this runs under valgrind, which keeps its own copy of the
 * open-file limit (the kernel's, which children inherit, stays as it was)
 * and refuses changes to the hard limit: the tests that need the real
 * thing say so and stop there. */
static int limits_virtual(const char *test)
{
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "vgpreload"))
        return 0;
    fprintf(stderr, "%s: under valgrind (limits are virtual), skipped\n", test);
    return 1;
}

/* The current limits; fails the test if they cannot be read. */
static struct rlimit limits(void)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl;
}

/* Sets the limits; fails the test if the kernel refuses. */
static void set_limits(rlim_t soft, rlim_t hard)
{
    struct rlimit rl = {soft, hard};
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* What asp_raise_fd_limit returns for a soft limit of v. */
static int as_int(rlim_t v)
{
    return v == RLIM_INFINITY || v > (rlim_t)INT_MAX ? INT_MAX : (int)v;
}

/* A soft limit below the hard one that still leaves room for the test's
 * own fds. */
static rlim_t low_soft(rlim_t hard)
{
    rlim_t want = 256;
    return hard != RLIM_INFINITY && hard <= want ? hard - 1 : want;
}

START_TEST(limits_raise_to_hard)
{
    struct rlimit rl = limits();
    ck_assert(rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 64);
    set_limits(low_soft(rl.rlim_max), rl.rlim_max);
    int got = asp_raise_fd_limit();
    ck_assert_int_gt(got, (int)low_soft(rl.rlim_max));
    struct rlimit now = limits();
    ck_assert_int_eq(got, as_int(now.rlim_cur));
    ck_assert(now.rlim_max == rl.rlim_max);
    if (rl.rlim_max != RLIM_INFINITY)
        ck_assert(now.rlim_cur == rl.rlim_max);
}
END_TEST

START_TEST(limits_raise_is_idempotent)
{
    struct rlimit rl = limits();
    set_limits(low_soft(rl.rlim_max), rl.rlim_max);
    int first = asp_raise_fd_limit();
    ck_assert_int_gt(first, 0);
    struct rlimit after = limits();
    ck_assert_int_eq(asp_raise_fd_limit(), first);
    ck_assert_int_eq(asp_raise_fd_limit(), first);
    struct rlimit again = limits();
    ck_assert(again.rlim_cur == after.rlim_cur);
    ck_assert(again.rlim_max == after.rlim_max);
}
END_TEST

START_TEST(limits_soft_equal_to_hard)
{
    struct rlimit rl = limits();
    if (rl.rlim_max == RLIM_INFINITY)
        return; /* an infinite soft limit may not be settable here */
    set_limits(rl.rlim_max, rl.rlim_max);
    ck_assert_int_eq(asp_raise_fd_limit(), as_int(rl.rlim_max));
    struct rlimit now = limits();
    ck_assert(now.rlim_cur == rl.rlim_max);
    ck_assert(now.rlim_max == rl.rlim_max);
}
END_TEST

START_TEST(limits_never_lower)
{
    /* A lowered hard limit (any process may lower its own) stays where it
     * is, and so does a soft limit already at it: nothing is lowered to
     * some default, nothing raised past the hard limit. */
    if (limits_virtual("limits_never_lower"))
        return;
    struct rlimit rl = limits();
    rlim_t hard = low_soft(rl.rlim_max) + 1;
    set_limits(hard, hard);
    ck_assert_int_eq(asp_raise_fd_limit(), as_int(hard));
    struct rlimit now = limits();
    ck_assert(now.rlim_cur == hard && now.rlim_max == hard);
    set_limits(hard - 1, hard);
    ck_assert_int_eq(asp_raise_fd_limit(), as_int(hard));
    now = limits();
    ck_assert(now.rlim_cur == hard && now.rlim_max == hard);
}
END_TEST

/* The soft and hard limits a spawned helper child reports. */
static void child_limits(unsigned long long *soft, unsigned long long *hard)
{
    asp_loop *loop = asp_t_loop();
    asp_spawn_opts o = asp_t_piped(1, 0, 0);
    asp_proc *p = ASP_T_SPAWN(loop, &o, "nofile");
    size_t len;
    char *out = asp_t_read_all(asp_proc_stdout(p), &len);
    ck_assert_int_eq(sscanf(out, "%llu %llu", soft, hard), 2);
    asp_free(out);
    asp_status st = asp_t_wait(p);
    ck_assert_int_eq(st.code, 0);
    asp_t_free(p);
    asp_t_loop_free(loop);
}

START_TEST(limits_children_get_the_soft_limit_of_before)
{
    if (limits_virtual("limits_children_get_the_soft_limit_of_before"))
        return;
    struct rlimit rl = limits();
    rlim_t low = low_soft(rl.rlim_max);
    set_limits(low, rl.rlim_max);
    ck_assert_int_gt(asp_raise_fd_limit(), (int)low);
    unsigned long long soft, hard;
    child_limits(&soft, &hard);
    ck_assert_uint_eq(soft, (unsigned long long)low);
    ck_assert(hard == (unsigned long long)rl.rlim_max);
    /* A limit the program set itself afterwards passes on unchanged. */
    set_limits(low + 1, rl.rlim_max);
    child_limits(&soft, &hard);
    ck_assert_uint_eq(soft, (unsigned long long)(low + 1));
}
END_TEST

START_TEST(limits_children_unchanged_without_a_raise)
{
    if (limits_virtual("limits_children_unchanged_without_a_raise"))
        return;
    struct rlimit rl = limits();
    rlim_t low = low_soft(rl.rlim_max);
    set_limits(low, rl.rlim_max);
    unsigned long long soft, hard;
    child_limits(&soft, &hard);
    ck_assert_uint_eq(soft, (unsigned long long)low);
}
END_TEST

Suite *suite_limits(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = asp_t_case("limits", 10);
    tcase_add_test(tc, limits_raise_to_hard);
    tcase_add_test(tc, limits_raise_is_idempotent);
    tcase_add_test(tc, limits_soft_equal_to_hard);
    tcase_add_test(tc, limits_never_lower);
    tcase_add_test(tc, limits_children_get_the_soft_limit_of_before);
    tcase_add_test(tc, limits_children_unchanged_without_a_raise);
    suite_add_tcase(s, tc);
    return s;
}
