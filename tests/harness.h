/*
 * harness.h - shared test plumbing.
 *
 * Every test case gets the checked fixture asp_t_setup/asp_t_teardown: the
 * setup records the open fds, the teardown asserts that the same fds are
 * open again, that this process has no child left (running or zombie) and
 * no cgroup of its own left behind.
 * Check forks each test, so the counts are per test.
 */
#ifndef ASP_TEST_HARNESS_H
#define ASP_TEST_HARNESS_H

#include <check.h>
#include <poll.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "asproc.h"

/* Adds a test case with the leak-checking fixture and a timeout. */
TCase *asp_t_case(const char *name, double timeout_s);

/* The fixture (exposed for cases made by hand). */
void asp_t_setup(void);
void asp_t_teardown(void);

/* How many fds this process has open. */
int asp_t_fd_count(void);

/* How many children this process has (any state); zombies counted in *z. */
int asp_t_children(int *zombies);

/* This process's own v2 cgroup directory ("" without cgroup2), and how
 * many leaf cgroups named after this process (or after process pid) are
 * left in it. */
const char *asp_t_cgroup_dir(void);
int asp_t_cgroups_left(void);
int asp_t_cgroups_left_of(pid_t pid);
/* How many live members process group pgid has: zombies do not count
 * (an orphan that init does not reap stays one for ever). */
int asp_t_group_alive(pid_t pgid);

/* Waits up to ms for every child of this process to be gone; returns the
 * number still there. Used where a child is reaped asynchronously. */
int asp_t_wait_no_children(int ms);

/* The path of the helper child program (tests/child.c). */
const char *asp_t_child_path(void);

/* A loop on backend be, or NULL when this build or kernel has no such
 * backend (the self-pipe source stands in where the run's source does
 * not go with be). */
asp_loop *asp_t_loop_on(enum asp_backend be);

/* The events listed for fd in list (n entries), -1 when it is absent. */
int asp_t_events_of(const struct pollfd *list, int n, int fd);

/* A host's fd table as the fd callback keeps it. */
typedef struct {
    struct pollfd fds[64];
    int n, calls;
} asp_t_fd_table;

/* The fd callback of a host keeping an asp_t_fd_table (data), the change
 * it applies (asserting a stop comes for a polled fd, before its close),
 * and a check that the table is what asp_loop_pollfds exports. */
void asp_t_fd_table_cb(asp_loop *loop, int fd, int ev, void *data);
void asp_t_fd_table_apply(asp_t_fd_table *h, int fd, int ev);
void asp_t_fd_table_matches(const asp_t_fd_table *h, const asp_loop *loop);
/* Copies the helper child, as name, into a new folder of its own under
 * /tmp made 0755 (so that any uid can run it there, wherever the checkout
 * lives); writes the copy's path into path (cap bytes). Remove both with
 * asp_t_child_copy_remove. */
void asp_t_child_copy(const char *name, char *path, size_t cap);
void asp_t_child_copy_remove(const char *path);

/* The RLIMIT_NOFILE soft limit under which exactly k more fds can be
 * opened (holes below the highest open fd count too). */
rlim_t asp_t_nofile_for(int k);

/* Sets the RLIMIT_NOFILE soft limit; fails the test if refused. */
void asp_t_set_nofile(rlim_t soft);

/* Runs fn in a forked process and returns the int it reports through a
 * pipe (the exit status is not used: a memory checker may replace it), or
 * INT32_MIN if the process died without reporting. The forked process
 * ends with _exit, so nothing of the test runs twice. */
int asp_t_in_fork(int (*fn)(void *), void *arg);
/* In fn: the fd of that pipe (to keep open when closing fds). */
int asp_t_fork_report_fd(void);

/* Non-zero under valgrind, which runs vfork-like spawns as a plain fork
 * (the library then carries a child's errno through an error pipe). */
int asp_t_under_valgrind(void);

/* An allocator for asp_set_allocator (libc's underneath) that refuses
 * every block larger than n bytes: memory running out on demand. */
asp_allocator asp_t_refusing_allocator(size_t n);

/* A loop with default options; fails the test on error. */
asp_loop *asp_t_loop(void);

/* Frees the loop; fails the test on error. */
void asp_t_loop_free(asp_loop *loop);

/* SIGPIPE at its default (it kills) and unblocked: a SIGPIPE the library
 * let through would end the test process. */
void asp_t_sigpipe_deadly(void);
/* Fails the test unless SIGPIPE is at its default, unblocked and not
 * pending (the library neither changed nor left anything). */
void asp_t_sigpipe_untouched(void);

/* Milliseconds on the monotonic clock. */
double asp_t_now_ms(void);

/* Spawns the helper child with actions (NULL-terminated list after opts);
 * fails the test if the spawn fails. */
asp_proc *asp_t_spawnv(asp_loop *loop, const asp_spawn_opts *o,
                       const char *const *actions);
#define ASP_T_SPAWN(loop, o, ...) \
    asp_t_spawnv((loop), (o), (const char *const[]){__VA_ARGS__, NULL})

/* Options with stdout (and stderr when both) piped. */
asp_spawn_opts asp_t_piped(int out, int err, int in);

/* Reads s to EOF (blocking); returns a NUL-terminated buffer to free with
 * asp_free. */
char *asp_t_read_all(asp_stream *s, size_t *len);

/* Blocks until child pid has exited, leaving it unreaped (waitid with
 * WNOWAIT): its exit is certainly there when the loop next looks. */
void asp_t_until_exited(pid_t pid);

/* Blocking wait that must succeed. */
asp_status asp_t_wait(asp_proc *p);

/* Frees p, which must succeed. */
void asp_t_free(asp_proc *p);

/* Suite constructors (one file per feature). */
Suite *suite_loop(void);
Suite *suite_timer(void);
Suite *suite_io(void);
Suite *suite_spawn(void);
Suite *suite_stdio(void);
Suite *suite_wait(void);
Suite *suite_kill(void);
Suite *suite_threads(void);
Suite *suite_stream(void);
Suite *suite_write(void);
Suite *suite_forward(void);
Suite *suite_communicate(void);
Suite *suite_contain(void);
Suite *suite_asprun(void);
Suite *suite_embed(void);
Suite *suite_examples(void);
Suite *suite_pty(void);
Suite *suite_limits(void);
Suite *suite_signals(void);
Suite *suite_fork(void);

/* A suite of a runner; proc: it depends on the child-exit source. */
typedef struct asp_t_suite {
    const char *name;
    Suite *(*make)(void);
    int proc;
} asp_t_suite;

/* The runners' main (tests/runner.c): --matrix, --group G, suite names. */
int asp_t_runner_main(int argc, char **argv, const asp_t_suite *suites,
                      size_t n);

#endif
