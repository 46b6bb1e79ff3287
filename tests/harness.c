/*
 * harness.c - fd and child accounting for every test, and small helpers.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int fds_at_start;

/* Counts entries of /proc/self/fd, minus the one opendir itself holds. */
int asp_t_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* Scans /proc for processes whose parent is this process. */
int asp_t_children(int *zombies)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0, z = 0;
    pid_t self = getpid();
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        /* "pid (comm) S ppid ...": comm may hold spaces and parens. */
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (ppid == self) {
            n++;
            if (state == 'Z')
                z++;
        }
    }
    closedir(d);
    if (zombies)
        *zombies = z;
    return n;
}

/* Polls the child count until it reaches 0 or ms pass. */
int asp_t_wait_no_children(int ms)
{
    double end = asp_t_now_ms() + ms;
    int n;
    while ((n = asp_t_children(NULL)) > 0 && asp_t_now_ms() < end)
        usleep(2000);
    return n;
}

/* The v2 cgroup of this process as a path ("" when there is no cgroup2
 * mount): the mount point from /proc/self/mountinfo plus the "0::" line
 * of /proc/self/cgroup, where the library makes its leaves by default. */
const char *asp_t_cgroup_dir(void)
{
    static char dir[8192 + 1];
    char line[4096], mnt[4096] = "", rel[4096] = "";
    FILE *f = fopen("/proc/self/mountinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char root[2048], point[2048];
        const char *dash = strstr(line, " - cgroup2 ");
        if (dash &&
            sscanf(line, "%*s %*s %*s %2047s %2047s", root, point) == 2 &&
            !strcmp(root, "/")) {
            snprintf(mnt, sizeof mnt, "%s", point);
            break;
        }
    }
    if (f)
        fclose(f);
    f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(rel, sizeof rel, "%s", line + 3);
        }
    if (f)
        fclose(f);
    if (!mnt[0])
        return "";
    snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(rel, "/") ? rel : "");
    return dir;
}

/* How many leaf cgroups process pid left in this process's own cgroup
 * (the library names them asproc-<pid>-<n>). */
int asp_t_cgroups_left_of(pid_t pid)
{
    const char *dir = asp_t_cgroup_dir();
    char prefix[64];
    int n = 0;
    snprintf(prefix, sizeof prefix, "asproc-%d-", (int)pid);
    DIR *d = dir[0] ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* How many leaf cgroups this process left in its own cgroup. */
int asp_t_cgroups_left(void)
{
    return asp_t_cgroups_left_of(getpid());
}

/* Records the fd count. */
void asp_t_setup(void)
{
    fds_at_start = asp_t_fd_count();
}

/* Asserts that nothing leaked: fds back to the start, no child at all,
 * no cgroup of ours left. */
void asp_t_teardown(void)
{
    int z = 0;
    int kids = asp_t_children(&z);
    ck_assert_msg(z == 0, "%d zombie children left", z);
    ck_assert_msg(kids == 0, "%d children left", kids);
    int cgs = asp_t_cgroups_left();
    ck_assert_msg(cgs == 0, "%d cgroups left in %s", cgs, asp_t_cgroup_dir());
    int fds = asp_t_fd_count();
    ck_assert_msg(fds == fds_at_start, "fd count %d at start, %d at end",
                  fds_at_start, fds);
}

/* Makes a case with the fixture; timeouts scale with CK_TIMEOUT_MULTIPLIER
 * (Check's own variable) for slow runs such as valgrind. */
TCase *asp_t_case(const char *name, double timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, asp_t_setup, asp_t_teardown);
    tcase_set_timeout(tc, timeout_s);
    return tc;
}

/* The helper child lives next to the test binary. */
static char child_path[4096];

/* Fills child_path once (pthread_once: two threads asking first must not
 * see the half-made path, which is the runner's own). */
static void child_path_init(void)
{
    char buf[sizeof child_path];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 32);
    if (n <= 0)
        return;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    strcpy(slash + 1, "asp_child");
    memcpy(child_path, buf, sizeof buf);
}

const char *asp_t_child_path(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, child_path_init);
    ck_assert_msg(child_path[0] != 0, "cannot find the helper child");
    return child_path;
}

/* A default loop. */
asp_loop *asp_t_loop(void)
{
    asp_loop *loop = NULL;
    int r = asp_loop_new(&loop, NULL);
    ck_assert_msg(r == 0, "asp_loop_new: %s", asp_strerror(r));
    return loop;
}

/* Frees a loop, which must succeed. */
void asp_t_loop_free(asp_loop *loop)
{
    int r = asp_loop_free(loop);
    ck_assert_msg(r == 0, "asp_loop_free: %s", asp_strerror(r));
}

/* SIGPIPE at its default (death) and unblocked in this thread. */
void asp_t_sigpipe_deadly(void)
{
    sigset_t pipe_only;
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &pipe_only, NULL);
}

/* Checks that SIGPIPE is still at its default, unblocked, not pending. */
void asp_t_sigpipe_untouched(void)
{
    struct sigaction sa;
    sigset_t set;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &sa), 0);
    ck_assert(sa.sa_handler == SIG_DFL);
    ck_assert_int_eq(sigprocmask(SIG_SETMASK, NULL, &set), 0);
    ck_assert_int_eq(sigismember(&set, SIGPIPE), 0);
    ck_assert_int_eq(sigpending(&set), 0);
    ck_assert_int_eq(sigismember(&set, SIGPIPE), 0);
}

/* Monotonic milliseconds. */
double asp_t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Scans /proc for members of group pgid that are not zombies. */
int asp_t_group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        /* "pid (comm) S ppid pgrp ...": comm may hold spaces and parens. */
        char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
            pgrp == (int)pgid && state != 'Z')
            n++;
    }
    closedir(d);
    return n;
}

/* Copies the helper child into a fresh 0755 folder under /tmp. */
void asp_t_child_copy(const char *name, char *path, size_t cap)
{
    char dir[] = "/tmp/asp_child_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0755), 0);
    int n = snprintf(path, cap, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < cap);
    int in = open(asp_t_child_path(), O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(out, 0);
    char buf[1 << 16];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)r), r);
    ck_assert_int_eq((int)r, 0);
    close(in);
    ck_assert_int_eq(close(out), 0);
    /* The umask may have taken bits away. */
    ck_assert_int_eq(chmod(path, 0755), 0);
}

/* Removes a copy made by asp_t_child_copy and its folder. */
void asp_t_child_copy_remove(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    ck_assert_ptr_nonnull(slash);
    *slash = 0;
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}

/* The RLIMIT_NOFILE under which exactly k more fds can be opened: new fds
 * take the lowest free numbers, so holes below the highest open fd count
 * too. (Under valgrind the tool's own fds sit above the client's limit and
 * are never reached.) */
rlim_t asp_t_nofile_for(int k)
{
    static char open_fd[1 << 16];
    memset(open_fd, 0, sizeof open_fd);
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd != self && fd < (int)sizeof open_fd)
            open_fd[fd] = 1;
    }
    closedir(d);
    int free_slots = 0, lim = 0;
    while (lim < (int)sizeof open_fd) {
        if (!open_fd[lim]) {
            if (free_slots == k)
                break;
            free_slots++;
        }
        lim++;
    }
    return (rlim_t)lim;
}

/* Lowers (or restores) the soft fd limit. */
void asp_t_set_nofile(rlim_t soft)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = soft;
    ck_assert_msg(setrlimit(RLIMIT_NOFILE, &rl) == 0,
                  "setrlimit(RLIMIT_NOFILE, %lu): %s", (unsigned long)soft,
                  strerror(errno));
}

/* The write end of asp_t_in_fork's report pipe, in the forked process. */
static int fork_report_fd = -1;

int asp_t_fork_report_fd(void)
{
    return fork_report_fd;
}

/* Runs fn in a child process; its int comes back through a pipe. */
int asp_t_in_fork(int (*fn)(void *), void *arg)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        fork_report_fd = p[1];
        int r = fn(arg);
        ssize_t w = write(p[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(p[1]);
    int r = INT32_MIN, got = 0;
    ssize_t n;
    do
        n = read(p[0], &got, sizeof got);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof got)
        r = got;
    close(p[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return r;
}

/* Valgrind preloads its own libraries into the program it runs. */
int asp_t_under_valgrind(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "vgpreload") != NULL;
}

static size_t refuse_over;

/* An allocator that refuses every block larger than refuse_over. */
static void *small_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return n > refuse_over ? NULL : malloc(n);
}

static void *small_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return n > refuse_over ? NULL : realloc(p, n);
}

static void small_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

asp_allocator asp_t_refusing_allocator(size_t n)
{
    asp_allocator a = {small_malloc, small_realloc, small_free, NULL};
    refuse_over = n;
    return a;
}

/* Waits for the exit without reaping. */
void asp_t_until_exited(pid_t pid)
{
    siginfo_t si;
    int r;
    do
        r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
    while (r < 0 && errno == EINTR);
    ck_assert_msg(r == 0, "waitid: %s", strerror(errno));
}

/* ------------------------------------------------------ host loops */

/* The events listed for fd, or -1 when fd is not in the list. */
int asp_t_events_of(const struct pollfd *list, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (list[i].fd == fd)
            return list[i].events;
    return -1;
}

/* A loop on backend be, or NULL when this build or kernel has no such
 * backend. The run's child-exit source may not go with another backend
 * (the kqueue source needs the kqueue backend): the self-pipe stands in. */
asp_loop *asp_t_loop_on(enum asp_backend be)
{
    asp_loop *loop = NULL;
    asp_loop_opts o = {.backend = be};
    int r = asp_loop_new(&loop, &o);
    if (r == -ENOTSUP) {
        o.child_source = ASP_SOURCE_SELFPIPE;
        r = asp_loop_new(&loop, &o);
    }
    if (r == -ENOTSUP && be != ASP_BACKEND_POLL)
        return NULL;
    ck_assert_msg(r == 0, "asp_loop_new(backend %d): %s", (int)be,
                  asp_strerror(r));
    return loop;
}

/* Applies one change told by the fd callback; a stop must come for an
 * fd the host was told to poll, and while it is still open. */
void asp_t_fd_table_apply(asp_t_fd_table *h, int fd, int ev)
{
    int i = 0;
    while (i < h->n && h->fds[i].fd != fd)
        i++;
    if (ev == 0) {
        ck_assert_msg(i < h->n, "stop for fd %d, never polled", fd);
        ck_assert_msg(fcntl(fd, F_GETFD) >= 0, "fd %d closed before its stop",
                      fd);
        h->fds[i] = h->fds[--h->n];
        return;
    }
    ck_assert_int_eq(ev & ~(POLLIN | POLLOUT), 0);
    if (i == h->n) {
        ck_assert_int_lt(h->n, 64);
        h->n++;
    }
    h->fds[i] = (struct pollfd){.fd = fd, .events = (short)ev};
}

/* The fd callback of fd_table. */
void asp_t_fd_table_cb(asp_loop *loop, int fd, int ev, void *data)
{
    (void)loop;
    asp_t_fd_table *h = data;
    h->calls++;
    asp_t_fd_table_apply(h, fd, ev);
}

/* Asserts that the host's table is what asp_loop_pollfds exports. */
void asp_t_fd_table_matches(const asp_t_fd_table *h, const asp_loop *loop)
{
    struct pollfd fds[64];
    int n = asp_loop_pollfds(loop, fds, 64);
    ck_assert_int_eq(n, h->n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(asp_t_events_of(h->fds, h->n, fds[i].fd),
                         fds[i].events);
}
