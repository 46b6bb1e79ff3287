/*
 * cgroup_selftest.c - checks src/proc/cgroup.c against the kernel: a plain
 * program (no test framework), built and run by `make cgroup-selftest`.
 *
 * It needs root and a writable cgroup v2 hierarchy; without them it says
 * so and exits 0 (skipped). Any failed check prints "FAIL file:line: ..."
 * and exits 1, after an exit handler has killed and removed whatever
 * leaves of this process are left. Figures (kill times, CPU use) are
 * printed, not asserted.
 *
 * The children are forked here and join a leaf with
 * asp__cgroup_join_child before they exec sh (or just pause), which is
 * what the spawn path does between clone and exec.
 */
#define _GNU_SOURCE
#include "cgroup.h"
#include "asproc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPROCS 200

static char parent_dir[PATH_MAX]; /* the default parent */
static char prefix[64];           /* "asproc-<pid>-": our leaves */
static char threaded_dir[PATH_MAX + 128];

/* Stops the run with a message; the exit handler cleans up. */
static void fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

#define CHECK(cond, ...)                           \
    do {                                           \
        if (!(cond))                               \
            fail(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

/* ------------------------------------------------------------ helpers */

/* An allocator that fails on demand: fail_after successful calls, then
 * NULL until reset (-1: never fails). Installed before any leaf exists,
 * because asp_set_allocator refuses while library memory is out. */
static long fail_after = -1;

static void *t_malloc(size_t n, void *ctx)
{
    (void)ctx;
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    return malloc(n);
}

static void *t_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return fail_after == 0 ? NULL : realloc(p, n);
}

static void t_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Open fds of this process (the listing's own fd not counted). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* Subdirectories of dir whose name starts with pfx. */
static int count_dirs(const char *dir, const char *pfx)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, pfx, strlen(pfx)) == 0;
    closedir(d);
    return n;
}

/* State letter of pid from /proc/<pid>/stat, 0 when it is gone. */
static char proc_state(pid_t pid, long *sid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    char st = 0;
    long ppid = 0, pgrp = 0, s = 0;
    if (!p || sscanf(p + 1, " %c %ld %ld %ld", &st, &ppid, &pgrp, &s) != 4)
        return 0;
    if (sid)
        *sid = s;
    return st;
}

/* A process counts as gone when it is reaped or a zombie (PID 1 here may
 * never reap orphans). */
static int gone(pid_t pid)
{
    char st = proc_state(pid, NULL);
    return st == 0 || st == 'Z' || st == 'X';
}

/* Waits up to ms for every pid of the list to be gone. */
static int all_gone(const pid_t *pids, int n, int ms)
{
    double end = now_ms() + ms;
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += !gone(pids[i]);
        if (left == 0)
            return 1;
        if (now_ms() > end)
            return 0;
        sleep_ms(5);
    }
}

/* Reads a small file into buf ("" on error). */
static const char *slurp(const char *dir, const char *name, char *buf,
                         size_t size)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    ssize_t k = read(fd, buf, size - 1);
    buf[k > 0 ? k : 0] = '\0';
    close(fd);
    return buf;
}

/* Writes s to dir/name; 0 or -errno. */
static int put(const char *dir, const char *name, const char *s)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;
    if (fd < 0)
        return -errno;
    if (write(fd, s, strlen(s)) < 0)
        r = -errno;
    close(fd);
    return r;
}

/* waitpid retried on EINTR; returns the status. */
static int reap(pid_t pid)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    CHECK(r == pid, "waitpid %ld: %s", (long)pid, strerror(errno));
    return st;
}

/* --------------------------------------------------------- children */

/* Forks a child that joins cg and then runs script with sh, with rep as
 * its fd 3 (for reporting pids) and ASP_LEAF naming the leaf. */
static pid_t spawn_sh(asp__cgroup *cg, const char *script, int rep)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int r = asp__cgroup_join_child(cg->procs_fd);
        if (r < 0)
            _exit(100);
        if (rep >= 0 && dup2(rep, 3) < 0)
            _exit(101);
        setenv("ASP_LEAF", cg->path, 1);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Forks n children that join cg, say so on a pipe and pause; waits until
 * all have joined. pids receives them. */
static void spawn_pausers(asp__cgroup *cg, pid_t *pids, int n)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0, "fork: %s", strerror(errno));
        if (pids[i] == 0) {
            char c = asp__cgroup_join_child(cg->procs_fd) == 0 ? 'j' : 'e';
            if (write(p[1], &c, 1) != 1)
                _exit(1);
            for (;;)
                pause();
        }
    }
    close(p[1]);
    for (int got = 0; got < n;) {
        char buf[256];
        ssize_t k = read(p[0], buf, sizeof buf);
        CHECK(k > 0 || errno == EINTR, "children did not report: %d of %d", got,
              n);
        for (ssize_t i = 0; i < k; i++)
            CHECK(buf[i] == 'j', "a child could not join");
        got += k > 0 ? (int)k : 0;
    }
    close(p[0]);
}

/* Reads "<tag> <pid>" lines from fd until every tag of tags has a pid
 * (5 s at most). */
static void read_tagged(int fd, const char *tags, pid_t *pids)
{
    char buf[512];
    size_t len = 0, want = strlen(tags);
    double end = now_ms() + 5000;
    memset(pids, 0, want * sizeof *pids);
    for (size_t have = 0; have < want;) {
        struct pollfd pf = {fd, POLLIN, 0};
        CHECK(now_ms() < end, "the tree reported %zu of %zu pids", have, want);
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        CHECK(k > 0 || errno == EINTR, "the tree's report pipe closed early");
        len += k > 0 ? (size_t)k : 0;
        buf[len] = '\0';
        have = 0;
        for (char *l = buf, *nl; *l && (nl = strchr(l, '\n')); l = nl + 1) {
            const char *t = strchr(tags, l[0]);
            if (t && l[1] == ' ')
                pids[t - tags] = (pid_t)atol(l + 2);
        }
        for (size_t i = 0; i < want; i++)
            have += pids[i] > 0;
    }
}

/* Waits until the leaf is empty, sleeping on the notifier nfd; returns the
 * milliseconds from start, or -1 after limit_ms. */
static double wait_empty(asp__cgroup *cg, int nfd, double start, int limit_ms)
{
    for (;;) {
        int pop = asp__cgroup_populated(cg);
        CHECK(pop >= 0, "populated: %s", strerror(-pop));
        if (pop == 0)
            return now_ms() - start;
        double left = start + limit_ms - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pf = {nfd, POLLIN, 0};
        if (poll(&pf, 1, (int)left + 1) > 0)
            CHECK(asp__cgroup_notifier_read(nfd, NULL, NULL) >= 0,
                  "notifier_read");
    }
}

/* Kills whatever runs in cg, waits for it to empty (reaping the pids given,
 * our direct children) and destroys it. */
static void finish(asp__cgroup *cg, const pid_t *kids, int nkids)
{
    int own = cg->wd < 0;
    int nfd = own ? asp__cgroup_notifier_open() : cg->notify_fd;
    CHECK(nfd >= 0, "notifier_open: %s", strerror(-nfd));
    if (own)
        CHECK(asp__cgroup_watch(cg, nfd) == 0, "watch");
    int n = asp__cgroup_signal(cg, SIGKILL);
    CHECK(n >= 0, "signal SIGKILL: %s", strerror(-n));
    for (int i = 0; i < nkids; i++)
        reap(kids[i]);
    CHECK(wait_empty(cg, nfd, now_ms(), 5000) >= 0,
          "tree not empty after SIGKILL");
    int r = asp__cgroup_destroy(cg);
    CHECK(r == 0, "destroy: %s", strerror(-r));
    if (own)
        close(nfd);
}

/* Exit handler: kills and removes every leaf this process left behind (a
 * check failed half-way), so that a failed run does not litter. */
static void cleanup_tree(const char *dir);

static void cleanup(void)
{
    DIR *d = opendir(parent_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            char path[PATH_MAX + 300];
            if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", parent_dir, e->d_name);
            cleanup_tree(path);
        }
        closedir(d);
    }
    if (threaded_dir[0])
        rmdir(threaded_dir);
}

static void cleanup_tree(const char *dir)
{
    char buf[256];
    (void)put(dir, "cgroup.kill", "1");
    (void)put(dir, "cgroup.freeze", "0");
    for (int i = 0;
         i < 100 &&
         strstr(slurp(dir, "cgroup.events", buf, sizeof buf), "populated 1");
         i++)
        sleep_ms(10);
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            char path[PATH_MAX + 300];
            if (e->d_type != DT_DIR || e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            cleanup_tree(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* ---------------------------------------------------------------- 1 */

/* The mount point and default parent match what /proc says. */
static void test_default_parent(void)
{
    char mnt[PATH_MAX], own[PATH_MAX + 8], buf[16];
    int r = asp__cgroup_mount_point(mnt, sizeof mnt);
    CHECK(r > 0 && (size_t)r == strlen(mnt), "mount_point: %d", r);
    r = asp__cgroup_default_parent(parent_dir, sizeof parent_dir);
    CHECK(r > 0, "default_parent: %d", r);
    CHECK(asp__cgroup_default_parent(buf, sizeof buf) == -ENAMETOOLONG ||
              strlen(parent_dir) < sizeof buf,
          "a short buffer must give -ENAMETOOLONG");
    FILE *f = fopen("/proc/self/cgroup", "re");
    CHECK(f, "/proc/self/cgroup");
    own[0] = '\0';
    while (fgets(own, sizeof own, f) && strncmp(own, "0::", 3) != 0)
        ;
    fclose(f);
    own[strcspn(own, "\n")] = '\0';
    char want[2 * PATH_MAX + 8];
    snprintf(want, sizeof want, "%s%s", mnt,
             strcmp(own + 3, "/") ? own + 3 : "");
    CHECK(strcmp(parent_dir, want) == 0, "default parent %s, expected %s",
          parent_dir, want);
    printf("1. cgroup2 mount: %s; default parent: %s\n", mnt, parent_dir);
}

/* A leaf appears on create and leaves nothing on destroy; the zeroed
 * struct is accepted; a trailing slash in parent is harmless. */
static void test_create_destroy(void)
{
    asp__cgroup cg, zero;
    struct stat st;
    memset(&zero, 0, sizeof zero);
    CHECK(asp__cgroup_destroy(&zero) == 0, "destroy of a zeroed struct");
    int r = asp__cgroup_create(&cg, NULL);
    CHECK(r == 0, "create: %s", strerror(-r));
    CHECK(strncmp(cg.path, parent_dir, strlen(parent_dir)) == 0, "leaf %s",
          cg.path);
    CHECK(strstr(cg.path, prefix) != NULL, "leaf name %s", cg.path);
    CHECK(stat(cg.path, &st) == 0 && S_ISDIR(st.st_mode), "leaf is not there");
    CHECK(asp__cgroup_populated(&cg) == 0, "a new leaf must be empty");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", cg.path);
    printf("   leaf %s (cgroup.kill %s, cgroup.freeze %s)\n", path,
           cg.has_kill ? "yes" : "no", cg.has_freeze ? "yes" : "no");
    CHECK(asp__cgroup_destroy(&cg) == 0, "destroy");
    CHECK(cg.path == NULL && cg.dirfd == -1 && cg.procs_fd == -1,
          "destroy must reset");
    CHECK(stat(path, &st) < 0 && errno == ENOENT, "destroy left %s", path);
    CHECK(asp__cgroup_destroy(&cg) == 0, "a second destroy is a no-op");
    char slash[PATH_MAX + 2];
    snprintf(slash, sizeof slash, "%s//", parent_dir);
    CHECK(asp__cgroup_create(&cg, slash) == 0, "create with a trailing slash");
    CHECK(strstr(cg.path, "//") == NULL, "path %s", cg.path);
    CHECK(asp__cgroup_destroy(&cg) == 0, "destroy");
}

/* Bad parents give their errors and leave nothing. */
static void test_bad_parents(void)
{
    asp__cgroup cg;
    static char longp[PATH_MAX + 128];
    int fds = count_fds();
    CHECK(asp__cgroup_create(&cg, "relative/path") == -EINVAL,
          "relative parent");
    CHECK(cg.path == NULL, "failed create must leave path NULL");
    CHECK(asp__cgroup_create(&cg, "/nonexistent-asproc-parent") == -ENOENT,
          "missing parent");
    CHECK(asp__cgroup_create(&cg, "/proc/self/cgroup") == -ENOTDIR,
          "file as parent");
    CHECK(asp__cgroup_create(&cg, "/proc") == -ENOTSUP, "non-cgroup2 parent");
    memset(longp, 'a', PATH_MAX + 15);
    longp[PATH_MAX + 15] = '\0';
    longp[0] = '/';
    CHECK(asp__cgroup_create(&cg, longp) == -ENAMETOOLONG, "too long a parent");
    /* A real parent so deep that the leaf's path would pass PATH_MAX. */
    snprintf(longp, sizeof longp, "%s/%slong", parent_dir, prefix);
    CHECK(mkdir(longp, 0755) == 0, "mkdir %s", longp);
    char comp[201];
    memset(comp, 'b', 200);
    comp[200] = '\0';
    while (strlen(longp) < PATH_MAX - 24) {
        size_t room = PATH_MAX - 24 - strlen(longp) - 1;
        comp[room < 200 ? room : 200] = '\0';
        strcat(strcat(longp, "/"), comp);
        CHECK(mkdir(longp, 0755) == 0, "mkdir (depth): %s", strerror(errno));
    }
    int r = asp__cgroup_create(&cg, longp);
    CHECK(r == -ENAMETOOLONG, "parent + leaf beyond PATH_MAX: %d", r);
    CHECK(count_dirs(longp, "asproc-") == 0, "leaf left under the deep parent");
    for (char *slash;
         (slash = strrchr(longp, '/')) && strstr(longp, "long/");) {
        CHECK(rmdir(longp) == 0, "rmdir: %s", strerror(errno));
        *slash = '\0';
    }
    CHECK(rmdir(longp) == 0, "rmdir %s: %s", longp, strerror(errno));
    CHECK(count_fds() == fds, "fds leaked by failed creates");
    CHECK(count_dirs(parent_dir, prefix) == 0, "a failed create left a leaf");
}

/* A threaded parent gives leaves no process can join: -EBUSY, nothing
 * left. */
static void test_threaded_parent(void)
{
    asp__cgroup cg;
    snprintf(threaded_dir, sizeof threaded_dir, "%s/%sthreaded", parent_dir,
             prefix);
    CHECK(mkdir(threaded_dir, 0755) == 0, "mkdir %s: %s", threaded_dir,
          strerror(errno));
    int r = put(threaded_dir, "cgroup.type", "threaded");
    if (r < 0) {
        printf("   skip: threaded parent (%s)\n", strerror(-r));
    } else {
        r = asp__cgroup_create(&cg, threaded_dir);
        CHECK(r == -EBUSY, "create under a threaded parent: %d", r);
        CHECK(count_dirs(threaded_dir, "asproc-") == 0,
              "leaf left under threaded parent");
        printf("   threaded parent: -EBUSY (%s), nothing left\n", strerror(-r));
    }
    CHECK(rmdir(threaded_dir) == 0, "rmdir %s: %s", threaded_dir,
          strerror(errno));
    threaded_dir[0] = '\0';
}

/* Every way create can run out of fds or memory leaves nothing. */
static void test_create_exhaustion(void)
{
    asp__cgroup cg;
    struct rlimit old, lim;
    int fds = count_fds(), seen_emfile = 0, seen_nomem = 0;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
    for (int extra = 0; extra < 8; extra++) {
        int top = fcntl(0, F_DUPFD_CLOEXEC, 0); /* lowest free fd */
        CHECK(top >= 0, "dup");
        close(top);
        lim = old;
        lim.rlim_cur = (rlim_t)(top + extra);
        CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0, "setrlimit");
        int r = asp__cgroup_create(&cg, NULL);
        CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "setrlimit");
        CHECK(r == 0 || r == -EMFILE, "create with %d fds free: %d", extra, r);
        seen_emfile += r == -EMFILE;
        if (r == 0)
            CHECK(asp__cgroup_destroy(&cg) == 0, "destroy");
        CHECK(count_fds() == fds, "fds leaked with %d free", extra);
        CHECK(count_dirs(parent_dir, prefix) == 0, "leaf left with %d fds free",
              extra);
    }
    for (long n = 0; n < 4; n++) {
        fail_after = n;
        int r = asp__cgroup_create(&cg, NULL);
        fail_after = -1;
        seen_nomem += r == -ENOMEM;
        CHECK(r == 0 || r == -ENOMEM, "create, allocation %ld failing: %d", n,
              r);
        if (r == 0)
            CHECK(asp__cgroup_destroy(&cg) == 0, "destroy");
        CHECK(count_fds() == fds && count_dirs(parent_dir, prefix) == 0,
              "failed create left something (allocation %ld)", n);
    }
    CHECK(seen_emfile > 0 && seen_nomem > 0, "exhaustion never hit");
    printf("   fd and memory exhaustion: %d EMFILE, %d ENOMEM failures, "
           "nothing left\n",
           seen_emfile, seen_nomem);
}

/* Leaves made by several threads at once get distinct names. */
#define NTHREADS 4
#define PER_THREAD 25
static asp__cgroup thread_leaves[NTHREADS][PER_THREAD];

static void *make_leaves(void *arg)
{
    asp__cgroup *mine = arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (asp__cgroup_create(&mine[i], NULL) != 0)
            return arg;
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, make_leaves, thread_leaves[i]) == 0,
              "pthread_create");
    for (int i = 0; i < NTHREADS; i++) {
        void *res = NULL;
        CHECK(pthread_join(t[i], &res) == 0 && res == NULL,
              "a thread's create failed");
    }
    asp__cgroup *all = &thread_leaves[0][0];
    for (int i = 0; i < NTHREADS * PER_THREAD; i++)
        for (int j = i + 1; j < NTHREADS * PER_THREAD; j++)
            CHECK(strcmp(all[i].path, all[j].path) != 0, "two leaves named %s",
                  all[i].path);
    CHECK(count_dirs(parent_dir, prefix) == NTHREADS * PER_THREAD,
          "leaf count");
    for (int i = 0; i < NTHREADS * PER_THREAD; i++)
        CHECK(asp__cgroup_destroy(&all[i]) == 0, "destroy");
    printf("   %d threads made %d leaves at once: all names distinct\n",
           NTHREADS, NTHREADS * PER_THREAD);
}

/* ---------------------------------------------------------------- 2 */

/* sh (the direct child) starts a setsid'd grandchild (S) and a
 * double-forked daemon (D) that moves itself into sub/deeper, a
 * sub-cgroup it makes in the leaf; sh itself (M) then sleeps. */
static const char tree_script[] =
    "setsid sh -c 'echo S $$ >&3; exec sleep 1000 3>&-' &\n"
    "sh -c 'sh -c '\\''d=\"$ASP_LEAF/sub/deeper\"; mkdir -p \"$d\" &&"
    " echo $$ > \"$d/cgroup.procs\" && echo D $$ >&3; exec sleep 1000 "
    "3>&-'\\'' &"
    " exit 0'\n"
    "echo M $$ >&3\n"
    "exec sleep 1000 3>&-\n";

/* Records the wd the notifier reported. */
static void note_wd(int wd, void *arg)
{
    int *seen = arg;
    if (wd == seen[0] || wd == -1)
        seen[1]++;
}

static void test_tree_kill(void)
{
    asp__cgroup cg;
    int rep[2], seen[2] = {0, 0};
    pid_t tree[3];
    long sid = 0;
    CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
    int nfd = asp__cgroup_notifier_open();
    CHECK(nfd >= 0 && asp__cgroup_watch(&cg, nfd) == 0, "notifier");
    CHECK(asp__cgroup_watch(&cg, nfd) == -EALREADY, "double watch");
    CHECK(pipe2(rep, O_CLOEXEC) == 0, "pipe2");
    pid_t sh = spawn_sh(&cg, tree_script, rep[1]);
    close(rep[1]);
    read_tagged(rep[0], "SDM", tree);
    close(rep[0]);
    asp__cgroup_joined(&cg);
    CHECK(cg.procs_fd == -1, "joined must close procs_fd");
    CHECK(tree[2] == sh, "M is the direct child");
    CHECK(proc_state(tree[0], &sid) && sid == tree[0],
          "S leads its own session");
    char buf[256], sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/sub/deeper", cg.path);
    snprintf(buf, sizeof buf, "%ld\n", (long)tree[1]);
    char procs[256];
    CHECK(strstr(slurp(sub, "cgroup.procs", procs, sizeof procs), buf),
          "the daemon is not in its sub-cgroup");
    CHECK(asp__cgroup_populated(&cg) == 1, "populated");
    CHECK(asp__cgroup_destroy(&cg) == -EBUSY && cg.path,
          "destroy of a live tree");
    CHECK(access(sub, F_OK) == 0, "a refused destroy must change nothing");
    (void)asp__cgroup_notifier_read(nfd, NULL, NULL);
    double t0 = now_ms();
    int n = asp__cgroup_signal(&cg, SIGKILL);
    CHECK(n >= 3, "SIGKILL signalled %d processes", n);
    struct pollfd pf = {nfd, POLLIN, 0};
    CHECK(poll(&pf, 1, 1000) == 1,
          "notifier not readable within 1 s of the kill");
    double t_note = now_ms() - t0;
    seen[0] = cg.wd;
    CHECK(asp__cgroup_notifier_read(nfd, note_wd, seen) > 0 && seen[1] > 0,
          "the notifier did not name the leaf");
    double t_empty = wait_empty(&cg, nfd, t0, 1000);
    CHECK(t_empty >= 0, "tree not empty 1 s after SIGKILL");
    int st = reap(sh);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "sh status %#x", st);
    CHECK(all_gone(tree, 3, 1000), "a process of the tree survived");
    CHECK(asp__cgroup_destroy(&cg) == 0, "destroy after the kill");
    CHECK(access(sub, F_OK) < 0 && errno == ENOENT, "sub-cgroups left");
    close(nfd);
    printf("2. tree (setsid S %ld, daemon D %ld in sub/deeper, sh %ld): "
           "SIGKILL -> %d "
           "signalled, notifier after %.2f ms, empty after %.2f ms, all gone, "
           "removed\n",
           (long)tree[0], (long)tree[1], (long)tree[2], n, t_note, t_empty);
}

/* ---------------------------------------------------------------- 3 */

static void on_alarm(int sig)
{
    (void)sig;
}

/* Interrupts this process every 200 us (no SA_RESTART), so that every
 * blocking call of the library meets EINTR; on 0 stops. */
static void eintr_storm(int on)
{
    struct sigaction sa;
    struct itimerval it = {{0, on ? 200 : 0}, {0, on ? 200 : 0}};
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* stays: a late SIGALRM must not kill us */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
}

/* 200 processes in one leaf, killed by one call; how long until the
 * leaf is empty. has_kill 0 forces the freeze path of kernels before 5.14. */
static void kill_many(int sig, int use_kill, int storm)
{
    static pid_t pids[NPROCS];
    asp__cgroup cg;
    CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
    int nfd = asp__cgroup_notifier_open();
    CHECK(nfd >= 0 && asp__cgroup_watch(&cg, nfd) == 0, "notifier");
    spawn_pausers(&cg, pids, NPROCS);
    asp__cgroup_joined(&cg);
    CHECK(asp__cgroup_populated(&cg) == 1, "populated");
    (void)asp__cgroup_notifier_read(nfd, NULL, NULL);
    if (!use_kill)
        cg.has_kill = 0;
    if (storm)
        eintr_storm(1);
    double t0 = now_ms();
    int n = asp__cgroup_signal(&cg, sig);
    double t_call = now_ms() - t0;
    double t_empty = wait_empty(&cg, nfd, t0, 15000);
    if (storm)
        eintr_storm(0);
    CHECK(n == NPROCS, "%s signalled %d of %d", strsignal(sig), n, NPROCS);
    CHECK(t_empty >= 0, "not empty 15 s after %s", strsignal(sig));
    for (int i = 0; i < NPROCS; i++) {
        int st = reap(pids[i]);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sig, "status %#x", st);
    }
    char buf[64];
    CHECK(strncmp(slurp(cg.path, "cgroup.freeze", buf, sizeof buf), "0", 1) ==
              0,
          "the tree was left frozen");
    CHECK(asp__cgroup_destroy(&cg) == 0, "destroy");
    close(nfd);
    printf("3. %d processes, %-7s via %-11s%s: call %.2f ms, empty after %.2f "
           "ms\n",
           NPROCS, sig == SIGKILL ? "SIGKILL" : "SIGTERM",
           sig == SIGKILL && use_kill ? "cgroup.kill" : "freeze/list",
           storm ? " (EINTR storm)" : "", t_call, t_empty);
}

/* What containment adds to a spawn: a leaf made and removed, a join. */
static void figures(void)
{
    asp__cgroup cg;
    int p[2], n = 100;
    double t0 = now_ms(), join = 0;
    for (int i = 0; i < n; i++) {
        CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
        CHECK(asp__cgroup_destroy(&cg) == 0, "destroy");
    }
    double leaf = (now_ms() - t0) / n;
    CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2");
    for (int i = 0; i < n; i++) {
        double d = 0;
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            double a = now_ms();
            int r = asp__cgroup_join_child(cg.procs_fd);
            d = r == 0 ? now_ms() - a : -1;
            _exit(write(p[1], &d, sizeof d) == (ssize_t)sizeof d ? 0 : 1);
        }
        CHECK(read(p[0], &d, sizeof d) == (ssize_t)sizeof d && d >= 0, "join");
        reap(pid);
        join += d;
    }
    close(p[0]);
    close(p[1]);
    finish(&cg, NULL, 0);
    printf(
        "   cost: create + destroy %.1f us per leaf, join %.1f us per child\n",
        leaf * 1e3, join / n * 1e3);
}

/* ---------------------------------------------------------------- 4 */

/* I ignores SIGTERM (and so does the sleep it execs); S and M do not. */
static const char term_script[] =
    "sh -c 'trap \"\" TERM; echo I $$ >&3; exec sleep 1000 3>&-' &\n"
    "sleep 1000 3>&- &\n"
    "echo S $! >&3\n"
    "echo M $$ >&3\n"
    "exec 3>&-\n"
    "wait\n";

static void test_term_ignored(void)
{
    asp__cgroup cg;
    int rep[2];
    pid_t t[3];
    char buf[256];
    CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
    CHECK(pipe2(rep, O_CLOEXEC) == 0, "pipe2");
    pid_t sh = spawn_sh(&cg, term_script, rep[1]);
    close(rep[1]);
    read_tagged(rep[0], "ISM", t);
    close(rep[0]);
    CHECK(t[2] == sh, "M is the direct child");
    sleep_ms(50); /* let I's exec (and its SIG_IGN) happen */
    int n = asp__cgroup_signal(&cg, SIGTERM);
    CHECK(n == 3, "SIGTERM signalled %d, expected 3", n);
    int st = reap(sh);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "sh status %#x", st);
    CHECK(all_gone(t + 1, 2, 2000), "S or M survived SIGTERM");
    sleep_ms(100);
    char s = proc_state(t[0], NULL);
    CHECK(s && s != 'Z' && s != 'X', "the member ignoring SIGTERM died (%c)",
          s ? s : '-');
    CHECK(asp__cgroup_populated(&cg) == 1, "the tree must still be populated");
    CHECK(
        strstr(slurp(cg.path, "cgroup.events", buf, sizeof buf), "frozen 0") &&
            strncmp(slurp(cg.path, "cgroup.freeze", buf, sizeof buf), "0", 1) ==
                0,
        "the tree was left frozen");
    n = asp__cgroup_signal(&cg, 0);
    CHECK(n == 1, "signal 0 found %d members, expected 1", n);
    CHECK(asp__cgroup_signal(&cg, -1) == -EINVAL &&
              asp__cgroup_signal(&cg, 1000) == -EINVAL,
          "bad signal numbers");
    finish(&cg, NULL, 0);
    printf("4. SIGTERM to 3 members, one ignoring it: 3 signalled, the other "
           "two died, "
           "it lives on, tree thawed\n");
}

/* Allocation failures inside signal: an error, and the tree is thawed. */
static void test_signal_nomem(void)
{
    asp__cgroup cg;
    pid_t kid;
    char buf[64];
    int nomem = 0;
    CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
    spawn_pausers(&cg, &kid, 1);
    for (long k = 0; k < 4; k++) {
        fail_after = k;
        int n = asp__cgroup_signal(&cg, SIGCONT);
        fail_after = -1;
        CHECK(n == 1 || n == -ENOMEM, "signal with allocation %ld failing: %d",
              k, n);
        nomem += n == -ENOMEM;
        CHECK(strncmp(slurp(cg.path, "cgroup.freeze", buf, sizeof buf), "0",
                      1) == 0,
              "ENOMEM left the tree frozen");
    }
    CHECK(nomem > 0, "no allocation failed");
    finish(&cg, &kid, 1);
    printf("   signal under allocation failures: -ENOMEM %d times, tree always "
           "thawed\n",
           nomem);
}

/* One notifier, several leaves: a change names the right leaf. */
static void test_shared_notifier(void)
{
    asp__cgroup cg[3];
    pid_t kid[3];
    int nfd = asp__cgroup_notifier_open(), seen[2] = {0, 0};
    CHECK(nfd >= 0, "notifier_open");
    for (int i = 0; i < 3; i++) {
        CHECK(asp__cgroup_create(&cg[i], NULL) == 0, "create");
        CHECK(asp__cgroup_watch(&cg[i], nfd) == 0, "watch");
        spawn_pausers(&cg[i], &kid[i], 1);
    }
    CHECK(cg[0].wd != cg[1].wd && cg[1].wd != cg[2].wd,
          "watch descriptors collide");
    sleep_ms(20);
    (void)asp__cgroup_notifier_read(nfd, NULL, NULL);
    CHECK(asp__cgroup_signal(&cg[1], SIGKILL) == 1, "kill leaf 1");
    reap(kid[1]);
    CHECK(wait_empty(&cg[1], nfd, now_ms(), 1000) >= 0, "leaf 1 not empty");
    CHECK(asp__cgroup_populated(&cg[0]) == 1 &&
              asp__cgroup_populated(&cg[2]) == 1,
          "the other leaves must be untouched");
    seen[0] = cg[0].wd;
    CHECK(asp__cgroup_unwatch(&cg[0]) == 0 && cg[0].wd == -1, "unwatch");
    CHECK(asp__cgroup_signal(&cg[0], SIGKILL) == 1, "kill leaf 0");
    reap(kid[0]);
    sleep_ms(50);
    (void)asp__cgroup_notifier_read(nfd, note_wd, seen);
    CHECK(seen[1] == 0, "an unwatched leaf was reported");
    finish(&cg[0], NULL, 0);
    CHECK(asp__cgroup_destroy(&cg[1]) == 0, "destroy");
    finish(&cg[2], &kid[2], 1);
    close(nfd);
    printf("   one notifier for 3 leaves: the killed leaf reported, unwatch "
           "works\n");
}

/* ---------------------------------------------------------------- 5 */

/* As nobody: create fails with -EACCES or -EPERM and leaves nothing. */
static void test_unprivileged(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        asp__cgroup cg;
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(2);
        int fds = count_fds();
        int r = asp__cgroup_create(&cg, NULL);
        if (r != -EACCES && r != -EPERM) {
            fprintf(stderr, "unprivileged create: %d (%s)\n", r, strerror(-r));
            _exit(3);
        }
        _exit(cg.path == NULL && count_fds() == fds ? 0 : 4);
    }
    int st = reap(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "unprivileged child: status %#x", st);
    char pfx[64];
    snprintf(pfx, sizeof pfx, "asproc-%ld-", (long)pid);
    CHECK(count_dirs(parent_dir, pfx) == 0,
          "the unprivileged create left a leaf");
    printf("5. as uid 65534: create -> -EACCES/-EPERM, nothing left\n");
}

/* The procs fd opened by root lets a child that already dropped to
 * nobody join (open-time credentials, Linux 5.16). */
static void test_join_after_setuid(void)
{
    asp__cgroup cg;
    CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(2);
        _exit(-asp__cgroup_join_child(cg.procs_fd));
    }
    int st = reap(pid);
    CHECK(WIFEXITED(st), "status %#x", st);
    int err = WEXITSTATUS(st);
    struct utsname un;
    int major = 0, minor = 0;
    if (uname(&un) == 0)
        sscanf(un.release, "%d.%d", &major, &minor);
    CHECK(err == 0 || major * 1000 + minor < 5016,
          "join after setuid failed on Linux %d.%d: %s", major, minor,
          strerror(err));
    printf("   join after setuid(65534) with root's cgroup.procs fd: %s\n",
           err ? strerror(err) : "joined (open-time credentials)");
    finish(&cg, NULL, 0);
}

/* ---------------------------------------------------------------- 6 */

/* A busy child's CPU time shows in the leaf, after it has exited. */
static void test_stats(void)
{
    asp__cgroup cg;
    asp__cgroup_usage u;
    CHECK(asp__cgroup_create(&cg, NULL) == 0, "create");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        struct timespec ts;
        volatile unsigned long spin = 0;
        if (asp__cgroup_join_child(cg.procs_fd) < 0)
            _exit(1);
        do {
            for (int i = 0; i < 100000; i++)
                spin++;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        } while (ts.tv_sec == 0 && ts.tv_nsec < 200000000L);
        _exit(0);
    }
    int st = reap(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "busy child: %#x", st);
    int r = asp__cgroup_stats(&cg, &u);
    CHECK(r == 0, "stats: %s", strerror(-r));
    CHECK(u.cpu_status == 0 && u.usage_usec > 0, "cpu usage %llu (status %d)",
          (unsigned long long)u.usage_usec, u.cpu_status);
    CHECK(u.usage_usec >= u.user_usec, "usage below user time");
    printf("6. busy child: usage %.1f ms (user %.1f, system %.1f)\n",
           (double)u.usage_usec / 1e3, (double)u.user_usec / 1e3,
           (double)u.system_usec / 1e3);
    if (u.memory_status == -ENODATA)
        printf("   skip: memory.peak -> -ENODATA (no memory controller in the "
               "leaf)\n");
    else
        CHECK(u.memory_status == 0 && u.memory_peak > 0, "memory.peak %llu",
              (unsigned long long)u.memory_peak);
    CHECK(asp__cgroup_destroy(&cg) == 0, "destroy");
}

/* ------------------------------------------------------------- main */

int main(void)
{
    static const asp_allocator alloc = {t_malloc, t_realloc, t_free, NULL};
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) {
        printf("cgroup selftest: skipped (needs root)\n");
        return 0;
    }
    CHECK(asp_set_allocator(&alloc) == 0, "asp_set_allocator");
    int fds = count_fds();
    snprintf(prefix, sizeof prefix, "asproc-%ld-", (long)getpid());
    int r = asp__cgroup_default_parent(parent_dir, sizeof parent_dir);
    if (r == -ENOTSUP) {
        asp__cgroup cg;
        CHECK(asp__cgroup_create(&cg, NULL) == -ENOTSUP && cg.path == NULL,
              "create without cgroup v2");
        CHECK(asp__cgroup_destroy(&cg) == 0, "destroy of the failed struct");
        printf(
            "cgroup selftest: skipped (no cgroup v2 here or in this build)\n");
        return 0;
    }
    atexit(cleanup);
    test_default_parent();
    test_create_destroy();
    test_bad_parents();
    test_threaded_parent();
    test_create_exhaustion();
    test_threads();
    test_tree_kill();
    kill_many(SIGKILL, 1, 0);
    kill_many(SIGKILL, 0, 0);
    kill_many(SIGTERM, 1, 0);
    kill_many(SIGKILL, 0, 1);
    figures();
    test_term_ignored();
    test_signal_nomem();
    test_shared_notifier();
    test_unprivileged();
    test_join_after_setuid();
    test_stats();
    CHECK(count_dirs(parent_dir, prefix) == 0, "leaves left behind");
    CHECK(count_fds() == fds, "fds leaked: %d open, %d at the start",
          count_fds(), fds);
    printf("7. no leaf named %s* left, no fd leaked (%d open)\n", prefix, fds);
    printf("cgroup selftest: all checks passed\n");
    return 0;
}
