/*
 * cgroup.c - whole-tree containment with cgroup v2 (see cgroup.h).
 *
 * Kernel facts this file relies on, with the release that brought each:
 *   a. cgroup v2 itself, cgroup.procs, cgroup.events "populated": 4.5.
 *   b. cgroup.type, cgroup.max.depth: 4.14. A leaf under a threaded
 *      parent is "domain invalid" and refuses processes (EOPNOTSUPP), so
 *      create checks the type. Reading cgroup.procs of a threaded
 *      sub-cgroup gives EOPNOTSUPP: its processes show in the domain
 *      above, so the walk skips it.
 *   c. cpu.stat usage_usec/user_usec/system_usec without the cpu
 *      controller: 4.15.
 *   d. cgroup.freeze and "frozen" in cgroup.events: 5.2. Freezing is
 *      hierarchical; a frozen task cannot fork or exit, except that a
 *      fatal signal still kills it.
 *   e. pidfd_send_signal 5.1, pidfd_open 5.3 (its fd is always
 *      close-on-exec).
 *   f. cgroup.kill: 5.14. Kills the subtree, including tasks that are
 *      forking at that moment.
 *   g. The migration permission check uses the opener's credentials of
 *      cgroup.procs: 5.16 (so a child that changed uid still joins).
 *   h. memory.peak: 5.19, only where the memory controller is enabled.
 *   i. cgroup.events changes are reported to inotify as IN_MODIFY (kernfs
 *      notify), and to poll(2) as POLLPRI on an fd that read it before.
 *   j. A zombie is no longer counted in "populated"; rmdir of a cgroup
 *      whose members are all zombies succeeds.
 *   k. cgroup.procs may list a pid twice (a process that moved out and
 *      back while it was read): the lists are sorted and deduplicated.
 *   l. rmdir of a cgroup that has sub-cgroups or processes fails with
 *      EBUSY.
 * Not used: clone3's CLONE_INTO_CGROUP (5.7), which would put the child in
 * the leaf at creation; the dirfd kept for each leaf is the fd it takes.
 */
#define _GNU_SOURCE
#include "cgroup.h"
#include "../loop/internal.h"

#include <errno.h>
#include <string.h>

#ifdef ASP_HAVE_LINUX

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef NSIG
#define NSIG 65
#endif

/* ------------------------------------------------------------ files */

/* Releases every field of cg and marks it "no leaf". It never closes
 * anything: callers close what they own first. */
static void cg_reset(asp__cgroup *cg)
{
    cg->path = NULL;
    cg->dirfd = -1;
    cg->procs_fd = -1;
    cg->notify_fd = -1;
    cg->wd = -1;
    cg->has_kill = 0;
    cg->has_freeze = 0;
}

/* openat(2) with O_CLOEXEC always added, so no fd of this file can leak
 * into a child spawned by another thread. Returns the fd or -errno. */
static int open_at(int dirfd, const char *name, int flags)
{
    int fd;
    do
        fd = openat(dirfd, name, flags | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

/* Reads fd from offset 0 into buf (NUL-terminated). pread restarts the
 * kernel's generation of a cgroup file, so an fd kept open reads fresh
 * values each time. Returns the length, -EOVERFLOW when the content does
 * not fit, or -errno. */
static int read_fd(int fd, char *buf, size_t size)
{
    size_t len = 0;
    for (;;) {
        ssize_t k = pread(fd, buf + len, size - 1 - len, (off_t)len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        len += (size_t)k;
        if (len == size - 1)
            return -EOVERFLOW;
    }
    buf[len] = '\0';
    return (int)len;
}

/* Reads the whole of the small file name under dirfd into buf. Returns
 * the length or -errno (-ENOENT: the kernel has no such file). */
static int read_at(int dirfd, const char *name, char *buf, size_t size)
{
    int fd = open_at(dirfd, name, O_RDONLY);
    if (fd < 0)
        return fd;
    int r = read_fd(fd, buf, size);
    close(fd);
    return r;
}

/* Writes s to fd in one write(2): cgroup files take a value per write.
 * Returns 0 or -errno. */
static int write_fd(int fd, const char *s)
{
    size_t n = strlen(s);
    ssize_t k;
    do
        k = write(fd, s, n);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return -errno;
    return (size_t)k == n ? 0 : -EIO;
}

/* Writes s to the file name under dirfd. Returns 0 or -errno. */
static int write_at(int dirfd, const char *name, const char *s)
{
    int fd = open_at(dirfd, name, O_WRONLY);
    if (fd < 0)
        return fd;
    int r = write_fd(fd, s);
    close(fd);
    return r;
}

/* Parses the decimal number at d into *value. Returns 0, or -ENODATA
 * when d does not start with a digit. */
static int parse_u64(const char *d, uint64_t *value)
{
    uint64_t v = 0;
    if (*d < '0' || *d > '9')
        return -ENODATA;
    while (*d >= '0' && *d <= '9')
        v = v * 10 + (uint64_t)(*d++ - '0');
    *value = v;
    return 0;
}

/* Finds "key value" among the lines of text (the format of cgroup.events
 * and cpu.stat) and parses value. Returns 0, or -ENODATA when the key is
 * missing or its value is not a number. */
static int key_u64(const char *text, const char *key, uint64_t *value)
{
    size_t klen = strlen(key);
    const char *p = text;
    while (*p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return parse_u64(p + klen + 1, value);
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return -ENODATA;
}

/* Monotonic milliseconds, for the freeze deadline. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------- finding the mount */

/* A buffered reader of /proc files, line by line, without allocation
 * (mountinfo can be large: one line per mount). */
typedef struct line_reader {
    int fd;
    size_t pos, len;
    char buf[4096];
} line_reader;

/* Copies the next line of r into out (NUL-terminated, without its
 * newline). Returns 1 for a line, 2 for a line cut to fit out (to be
 * skipped: no cgroup2 mount line is that long), 0 at the end, -errno. */
static int next_line(line_reader *r, char *out, size_t size)
{
    size_t n = 0;
    int cut = 0, any = 0;
    for (;;) {
        if (r->pos == r->len) {
            ssize_t k;
            do
                k = read(r->fd, r->buf, sizeof r->buf);
            while (k < 0 && errno == EINTR);
            if (k < 0)
                return -errno;
            if (k == 0)
                break;
            r->pos = 0;
            r->len = (size_t)k;
        }
        char c = r->buf[r->pos++];
        any = 1;
        if (c == '\n')
            break;
        if (n + 1 < size)
            out[n++] = c;
        else
            cut = 1;
    }
    out[n] = '\0';
    if (!any)
        return 0;
    return cut ? 2 : 1;
}

/* Undoes mountinfo's octal escapes (\040 for a space, \011, \012, \134)
 * in place and returns s. */
static char *unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
            p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return s;
}

/* When line (of /proc/self/mountinfo, modified in place) is a cgroup2
 * mount, points *root at the part of the hierarchy it shows and *mnt at
 * its mount point, and returns 1; else 0. Fields: id parent dev root
 * mountpoint options [optional...] - fstype source superoptions. */
static int parse_mount(char *line, char **root, char **mnt)
{
    char *sep = strstr(line, " - ");
    if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
        return 0;
    *sep = '\0';
    char *f[5];
    char *p = line;
    for (int i = 0; i < 5; i++) {
        f[i] = p;
        p = strchr(p, ' ');
        if (!p && i < 4)
            return 0;
        if (p)
            *p++ = '\0';
    }
    *root = unescape(f[3]);
    *mnt = unescape(f[4]);
    return 1;
}

/* Copies the caller's v2 cgroup (the "0::" line of /proc/self/cgroup)
 * into out. Returns 0, -ENOTSUP when there is no such line, or -errno. */
static int own_cgroup(char *out, size_t size)
{
    line_reader r = {.fd = open_at(AT_FDCWD, "/proc/self/cgroup", O_RDONLY)};
    char line[PATH_MAX + 8];
    int k;
    if (r.fd < 0)
        return r.fd;
    while ((k = next_line(&r, line, sizeof line)) > 0) {
        if (k == 1 && strncmp(line, "0::/", 4) == 0) {
            k = snprintf(out, size, "%s", line + 3) < (int)size ? 0
                                                                : -ENAMETOOLONG;
            close(r.fd);
            return k;
        }
    }
    close(r.fd);
    return k < 0 ? k : -ENOTSUP;
}

/* Where the mount whose root is root shows the cgroup own: the rest of
 * own below root, or NULL when own is not under root. */
static const char *below_root(const char *own, const char *root)
{
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return own;
    if (strncmp(own, root, n) == 0 && (own[n] == '\0' || own[n] == '/'))
        return own + n;
    return NULL;
}

/* Finds the first cgroup2 mount that shows the caller's own cgroup and
 * writes its mount point and the own cgroup's directory (both PATH_MAX
 * buffers). Returns 0, -ENOTSUP (no cgroup2 mounted), -ENOENT (none shows
 * the caller's cgroup), -ENAMETOOLONG or -errno. */
static int find_mount(char *mnt_out, char *parent_out)
{
    char own[PATH_MAX], line[2 * PATH_MAX];
    int r = own_cgroup(own, sizeof own);
    if (r < 0)
        return r;
    line_reader lr = {.fd =
                          open_at(AT_FDCWD, "/proc/self/mountinfo", O_RDONLY)};
    if (lr.fd < 0)
        return lr.fd;
    int seen = 0, k = 0;
    r = -ENOTSUP;
    while (r == -ENOTSUP && (k = next_line(&lr, line, sizeof line)) > 0) {
        char *root, *mnt;
        if (k != 1 || !parse_mount(line, &root, &mnt))
            continue;
        seen = 1;
        const char *rel = below_root(own, root);
        if (!rel)
            continue;
        if (strcmp(rel, "/") == 0)
            rel = "";
        if (snprintf(mnt_out, PATH_MAX, "%s", mnt) >= PATH_MAX ||
            snprintf(parent_out, PATH_MAX, "%s%s", strcmp(mnt, "/") ? mnt : "",
                     rel) >= PATH_MAX)
            r = -ENAMETOOLONG;
        else
            r = 0;
    }
    close(lr.fd);
    if (r == -ENOTSUP && k < 0)
        return k;
    return r == -ENOTSUP && seen ? -ENOENT : r;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static char cache_mount[PATH_MAX], cache_parent[PATH_MAX];
static int cache_ok;

/* Copies the cached mount point (want_parent 0) or default parent (1)
 * into buf, looking them up first if no lookup has succeeded yet. A
 * failed lookup is not cached: a cgroup2 mounted later is found then.
 * Static storage, so the cache holds no block of the library allocator
 * (which asp_set_allocator would count as live). */
static int cached_path(char *buf, size_t size, int want_parent)
{
    int r = 0;
    pthread_mutex_lock(&cache_lock);
    if (!cache_ok) {
        r = find_mount(cache_mount, cache_parent);
        cache_ok = r == 0;
    }
    if (r == 0) {
        const char *s = want_parent ? cache_parent : cache_mount;
        size_t n = strlen(s);
        if (n >= size) {
            r = -ENAMETOOLONG;
        } else {
            memcpy(buf, s, n + 1);
            r = (int)n;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return r;
}

/* See cgroup.h. */
int asp__cgroup_mount_point(char *buf, size_t size)
{
    return cached_path(buf, size, 0);
}

/* See cgroup.h. */
int asp__cgroup_default_parent(char *buf, size_t size)
{
    return cached_path(buf, size, 1);
}

/* ---------------------------------------------------------- creating */

/* Process-wide, so that two loops (or threads) never pick one name. */
static atomic_ullong leaf_seq;

/* Puts the parent directory to use into buf: the default parent for
 * NULL, else parent without trailing slashes. Returns its length or
 * -errno. */
static int resolve_parent(const char *parent, char *buf, size_t size)
{
    if (!parent)
        return asp__cgroup_default_parent(buf, size);
    if (parent[0] != '/')
        return -EINVAL;
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        n--;
    if (n >= size)
        return -ENAMETOOLONG;
    memcpy(buf, parent, n);
    buf[n] = '\0';
    return (int)n;
}

/* Opens what the leaf name under pfd needs into cg: the directory, a
 * check that processes may join it, the depth limit for members, its
 * cgroup.procs, and which kill/freeze files the kernel has. On failure
 * closes what it opened (the caller removes the directory). */
static int open_leaf(asp__cgroup *cg, int pfd, const char *name)
{
    char type[64];
    int r = open_at(pfd, name, O_RDONLY | O_DIRECTORY);
    if (r < 0)
        return r;
    cg->dirfd = r;
    r = read_at(cg->dirfd, "cgroup.type", type, sizeof type);
    if (r >= 0)
        r = strncmp(type, "domain invalid", 14) == 0 ? -EBUSY : 0;
    if (r == 0 || r == -ENOENT) {
        char depth[16];
        (void)snprintf(depth, sizeof depth, "%d", ASP__CGROUP_MAX_DEPTH);
        r = write_at(cg->dirfd, "cgroup.max.depth", depth);
    }
    if (r == 0 || r == -ENOENT)
        r = open_at(cg->dirfd, "cgroup.procs", O_WRONLY);
    if (r < 0) {
        close(cg->dirfd);
        cg->dirfd = -1;
        return r;
    }
    cg->procs_fd = r;
    cg->has_kill = faccessat(cg->dirfd, "cgroup.kill", F_OK, 0) == 0;
    cg->has_freeze = faccessat(cg->dirfd, "cgroup.freeze", F_OK, 0) == 0;
    return 0;
}

/* Whether name is a leaf "asproc-<pid>-<n>" whose maker, pid, is gone:
 * no process has that pid here (this process's own leaves never match). */
static int maker_gone(const char *name)
{
    char *end;
    if (strncmp(name, "asproc-", 7) != 0)
        return 0;
    long pid = strtol(name + 7, &end, 10);
    if (end == name + 7 || *end != '-' || pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Removes, once per process, the leaves under pfd that asproc processes
 * left when they could not remove them themselves: a process killed with
 * SIGKILL, or one that exited with its children still running, keeps its
 * leaves. A leaf goes only when its maker is gone (maker_gone), it is
 * over ASP__CGROUP_STALE_S old (a process of another pid namespace may
 * share the parent: a leaf of its has members, or is seconds old between
 * its mkdir and its child's join, or at the tree's end) and the kernel
 * lets rmdir take it (no members, no sub-cgroups). Errors are ignored:
 * the sweep is a courtesy, never a reason to fail a spawn. */
static void sweep_stale(int pfd)
{
    static atomic_long swept_by; /* the pid that swept: a fork sweeps again */
    long me = (long)getpid();
    if (atomic_exchange(&swept_by, me) == me)
        return;
    int fd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    time_t now = time(NULL);
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)) != NULL) {
        if (!maker_gone(e->d_name) ||
            fstatat(pfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || now - st.st_mtime < ASP__CGROUP_STALE_S)
            continue;
        (void)unlinkat(pfd, e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

/* Makes the leaf under pfd (whose path is parent, len bytes): picks a
 * name not taken yet, allocates the path, mkdir, opens it. Nothing is
 * left on failure. */
static int make_leaf(asp__cgroup *cg, int pfd, const char *parent, size_t len)
{
    char name[64];
    int r = -EEXIST;
    for (int tries = 0; r == -EEXIST && tries < 64; tries++) {
        (void)snprintf(name, sizeof name, "asproc-%ld-%llu", (long)getpid(),
                       (unsigned long long)atomic_fetch_add(&leaf_seq, 1));
        /* Room for "/cgroup.events", which watching appends. */
        if (len + 1 + strlen(name) + sizeof "/cgroup.events" > PATH_MAX)
            return -ENAMETOOLONG;
        r = mkdirat(pfd, name, 0755) == 0 ? 0 : -errno;
    }
    if (r < 0)
        return r;
    size_t n = len + 1 + strlen(name) + 1;
    char *path = asp__malloc(n);
    r = path ? open_leaf(cg, pfd, name) : -ENOMEM;
    if (r < 0) {
        asp__free(path);
        unlinkat(pfd, name, AT_REMOVEDIR);
        return r;
    }
    /* parent "/" + name: no doubled slash. (Joined by hand: the sizes are
     * known, and a format would only invite truncation warnings.) */
    size_t plen = strcmp(parent, "/") ? len : 0;
    memcpy(path, parent, plen);
    path[plen] = '/';
    memcpy(path + plen + 1, name, strlen(name) + 1);
    cg->path = path;
    return 0;
}

/* See cgroup.h. */
int asp__cgroup_create(asp__cgroup *cg, const char *parent)
{
    char buf[PATH_MAX];
    struct statfs sf;
    if (!cg)
        return -EINVAL;
    cg_reset(cg);
    int r = resolve_parent(parent, buf, sizeof buf);
    if (r < 0)
        return r;
    size_t len = (size_t)r;
    int pfd = open_at(AT_FDCWD, buf, O_RDONLY | O_DIRECTORY);
    if (pfd < 0)
        return pfd;
    if (fstatfs(pfd, &sf) < 0)
        r = -errno;
    else if ((unsigned long)sf.f_type != (unsigned long)CGROUP2_SUPER_MAGIC)
        r = -ENOTSUP;
    else {
        sweep_stale(pfd);
        r = make_leaf(cg, pfd, buf, len);
    }
    close(pfd);
    if (r < 0)
        cg_reset(cg);
    return r;
}

/* See cgroup.h. Nothing here may touch libc state: only write(2). */
int asp__cgroup_join_child(int procs_fd)
{
    for (;;) {
        ssize_t k = write(procs_fd, "0", 1);
        if (k == 1)
            return 0;
        if (k < 0 && errno == EINTR)
            continue;
        return k < 0 ? -errno : -EIO;
    }
}

/* See cgroup.h. */
void asp__cgroup_joined(asp__cgroup *cg)
{
    if (!cg || !cg->path || cg->procs_fd < 0)
        return;
    close(cg->procs_fd);
    cg->procs_fd = -1;
}

/* ----------------------------------------------------- walking a tree */

/* A growable list of pids (the library allocator; no realloc needed). */
typedef struct pidvec {
    pid_t *v;
    size_t n, cap;
} pidvec;

/* Appends pid. Returns 0 or -ENOMEM (pv unchanged). */
static int pidvec_push(pidvec *pv, pid_t pid)
{
    if (pv->n == pv->cap) {
        size_t cap = pv->cap ? pv->cap * 2 : 64;
        pid_t *v = asp__calloc(cap, sizeof *v);
        if (!v)
            return -ENOMEM;
        if (pv->n)
            memcpy(v, pv->v, pv->n * sizeof *v);
        asp__free(pv->v);
        pv->v = v;
        pv->cap = cap;
    }
    pv->v[pv->n++] = pid;
    return 0;
}

/* Orders pids for qsort and bsearch. */
static int pid_cmp(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* Sorts pv and drops duplicates (see k. at the top). */
static void pidvec_sort(pidvec *pv)
{
    size_t w = 0;
    if (pv->n == 0)
        return;
    qsort(pv->v, pv->n, sizeof *pv->v, pid_cmp);
    for (size_t i = 1; i < pv->n; i++)
        if (pv->v[i] != pv->v[w])
            pv->v[++w] = pv->v[i];
    pv->n = w + 1;
}

/* What a walk does with each pid it finds: store it (pv) or count it. */
typedef struct walk_ctx {
    pidvec *pv;
    size_t count;
} walk_ctx;

/* Reads the pids of the cgroup.procs under dfd into w. A threaded
 * cgroup's list is not readable (EOPNOTSUPP): its processes are listed by
 * the domain above it, so that counts as empty. Returns 0 or -errno. */
static int read_procs(int dfd, walk_ctx *w)
{
    char buf[1024];
    int fd = open_at(dfd, "cgroup.procs", O_RDONLY), r = 0;
    long cur = -1;
    ssize_t k;
    if (fd < 0)
        return fd == -EOPNOTSUPP ? 0 : fd;
    while (r == 0 && (k = read(fd, buf, sizeof buf)) != 0) {
        if (k < 0) {
            r = errno == EINTR ? 0 : -errno;
            continue;
        }
        for (ssize_t i = 0; i < k && r == 0; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = (cur < 0 ? 0 : cur) * 10 + (buf[i] - '0');
                continue;
            }
            if (cur > 0)
                r = w->pv ? pidvec_push(w->pv, (pid_t)cur) : 0;
            w->count += cur > 0;
            cur = -1;
        }
    }
    if (r == 0 && cur > 0) {
        r = w->pv ? pidvec_push(w->pv, (pid_t)cur) : 0;
        w->count++;
    }
    close(fd);
    return r == -EOPNOTSUPP ? 0 : r;
}

/* A raw getdents64 record (the kernel's layout), so that listing a
 * directory needs neither malloc (opendir) nor libc's dirent64. */
struct raw_dirent {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

typedef int (*subdir_fn)(int dfd, const char *name, int depth, void *ctx);

/* Calls fn for every sub-cgroup (subdirectory) of dfd, stopping at the
 * first error. The listing uses its own fd, so the position of dfd is
 * never moved and dfd can be listed again. Returns 0, fn's error, -errno,
 * or 1 when at least one sub-cgroup was seen and fn is NULL. */
static int each_subdir(int dfd, int depth, subdir_fn fn, void *ctx)
{
    char buf[1024];
    int fd = open_at(dfd, ".", O_RDONLY | O_DIRECTORY), r = 0;
    long n;
    if (fd < 0)
        return fd;
    while (r == 0 && (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            r = errno == EINTR ? 0 : -errno;
            continue;
        }
        for (long off = 0; off < n && r == 0;) {
            struct raw_dirent d;
            memcpy(&d, buf + off, sizeof d);
            const char *name = buf + off + offsetof(struct raw_dirent, name);
            off += d.reclen;
            if (d.type != DT_DIR || strcmp(name, ".") == 0 ||
                strcmp(name, "..") == 0)
                continue;
            r = fn ? fn(dfd, name, depth, ctx) : 1;
        }
    }
    close(fd);
    return r;
}

static int walk(int dfd, int depth, walk_ctx *w);

/* each_subdir callback of walk: descends into the sub-cgroup name. One
 * that vanished meanwhile (its members left and it was removed) is
 * skipped. */
static int walk_sub(int dfd, const char *name, int depth, void *ctx)
{
    int fd = open_at(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd;
    int r = walk(fd, depth + 1, ctx);
    close(fd);
    return r;
}

/* Collects the pids of the cgroup dfd (at depth below the leaf) and of
 * every sub-cgroup below it. Deeper than ASP__CGROUP_MAX_DEPTH gives
 * -ELOOP (a member raised cgroup.max.depth): the recursion, and with it
 * the stack and fds used, stays bounded. */
static int walk(int dfd, int depth, walk_ctx *w)
{
    int r = read_procs(dfd, w);
    if (r < 0)
        return r;
    if (depth >= ASP__CGROUP_MAX_DEPTH)
        return each_subdir(dfd, depth, NULL, NULL) > 0 ? -ELOOP : 0;
    return each_subdir(dfd, depth, walk_sub, w);
}

/* --------------------------------------------------------- signalling */

/* Polls cgroup.events of the leaf until "frozen 1" or the deadline. A
 * read marks the fd as up to date, and POLLPRI comes with the next change
 * after it, so no change can slip between the read and the poll. Returns
 * 1 when frozen, 0 when the wait ran out or could not be done. */
static int wait_frozen(asp__cgroup *cg)
{
    char buf[256];
    uint64_t frozen = 0;
    int fd = open_at(cg->dirfd, "cgroup.events", O_RDONLY);
    int64_t end = now_ms() + ASP__CGROUP_FREEZE_WAIT_MS;
    if (fd < 0)
        return 0;
    while (read_fd(fd, buf, sizeof buf) >= 0 &&
           key_u64(buf, "frozen", &frozen) == 0 && !frozen) {
        int64_t left = end - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLPRI};
        if (left <= 0)
            break;
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
            break;
    }
    close(fd);
    return frozen == 1;
}

/* Freezes the leaf's tree unless it is frozen already: opens
 * cgroup.freeze read-write into *ffd, and keeps it, so that the thaw
 * needs no new fd (a thaw that failed on EMFILE would leave the tree
 * frozen). *froze says whether we must thaw; *frozen whether the tree is
 * confirmed frozen. Returns 0 or -errno (nothing to undo). */
static int freeze(asp__cgroup *cg, int *ffd, int *froze, int *frozen)
{
    char buf[16];
    int fd = open_at(cg->dirfd, "cgroup.freeze", O_RDWR);
    if (fd < 0)
        return fd;
    int r = read_fd(fd, buf, sizeof buf);
    if (r >= 0 && buf[0] == '0') {
        r = write_fd(fd, "1");
        *froze = r == 0;
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    *ffd = fd;
    *frozen = wait_frozen(cg);
    return 0;
}

/* Opens a pidfd for each pid of a (sorted) into fds: -2 when the process
 * is gone (ESRCH), -1 when no pidfd could be had, *err the error then
 * (-ENOSYS: the kernel has no pidfd_open). */
static void open_pidfds(const pidvec *a, int *fds, int *err)
{
    for (size_t i = 0; i < a->n; i++) {
        fds[i] = -1;
#ifdef SYS_pidfd_open
        if (*err == -ENOSYS)
            continue;
        long fd = syscall(SYS_pidfd_open, a->v[i], 0);
        if (fd >= 0)
            fds[i] = (int)fd;
        else if (errno == ESRCH)
            fds[i] = -2;
        else
            *err = -errno;
#else
        *err = -ENOSYS;
#endif
    }
}

/* Sends sig to each pid of a that the second listing b also found. A pid
 * with a pidfd is signalled through it (see cgroup.h for why that cannot
 * hit a reused pid). Without one, kill(2) is used only when the tree is
 * confirmed frozen or the kernel has no pidfds at all (best effort there);
 * otherwise the pid is skipped and pidfd_err reported. Returns the count
 * signalled, or the error when none was. */
static int send_all(const pidvec *a, const int *fds, const pidvec *b, int sig,
                    int frozen, int pidfd_err)
{
    int count = 0, err = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (fds[i] == -2 || !b->n ||
            !bsearch(&a->v[i], b->v, b->n, sizeof *b->v, pid_cmp))
            continue;
        long k;
        if (fds[i] >= 0) {
#ifdef SYS_pidfd_send_signal
            k = syscall(SYS_pidfd_send_signal, fds[i], sig, NULL, 0);
#else
            k = -1, errno = ENOSYS;
#endif
        } else if (frozen || pidfd_err == -ENOSYS) {
            k = kill(a->v[i], sig);
        } else {
            err = pidfd_err;
            continue;
        }
        if (k == 0)
            count++;
        else if (errno != ESRCH)
            err = -errno;
    }
    return count > 0 || err == 0 ? count : err;
}

/* Lists the tree, opens pidfds, lists it again and signals the pids found
 * both times. Returns the count signalled or -errno. */
static int signal_listed(asp__cgroup *cg, int sig, int frozen)
{
    pidvec a = {0}, b = {0};
    walk_ctx wa = {&a, 0}, wb = {&b, 0};
    int *fds = NULL, pidfd_err = 0;
    int r = walk(cg->dirfd, 0, &wa);
    pidvec_sort(&a);
    if (r == 0 && a.n) {
        fds = asp__calloc(a.n, sizeof *fds);
        r = fds ? 0 : -ENOMEM;
    }
    if (r == 0 && a.n) {
        open_pidfds(&a, fds, &pidfd_err);
        r = walk(cg->dirfd, 0, &wb);
        pidvec_sort(&b);
    }
    if (r == 0 && a.n)
        r = send_all(&a, fds, &b, sig, frozen, pidfd_err);
    for (size_t i = 0; fds && i < a.n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    asp__free(fds);
    asp__free(a.v);
    asp__free(b.v);
    return r;
}

/* SIGKILL through cgroup.kill: counts the members, then one write kills
 * the subtree. A count that could not be completed does not hold the
 * kill back (it only makes the returned figure low). */
static int kill_tree(asp__cgroup *cg)
{
    walk_ctx w = {NULL, 0};
    (void)walk(cg->dirfd, 0, &w);
    int r = write_at(cg->dirfd, "cgroup.kill", "1");
    if (r < 0)
        return r;
    return w.count > INT_MAX ? INT_MAX : (int)w.count;
}

/* See cgroup.h. */
int asp__cgroup_signal(asp__cgroup *cg, int sig)
{
    int ffd = -1, froze = 0, frozen = 0;
    if (!cg || !cg->path || sig < 0 || sig >= NSIG)
        return -EINVAL;
    if (sig == SIGKILL && cg->has_kill)
        return kill_tree(cg);
    if (sig != 0 && cg->has_freeze) {
        int r = freeze(cg, &ffd, &froze, &frozen);
        if (r < 0)
            return r;
    }
    int n = signal_listed(cg, sig, frozen);
    if (froze) {
        int t = write_fd(ffd, "0");
        if (t < 0)
            n = t;
    }
    if (ffd >= 0)
        close(ffd);
    return n;
}

/* ------------------------------------------------- state and notifier */

/* See cgroup.h. */
int asp__cgroup_populated(asp__cgroup *cg)
{
    char buf[256];
    uint64_t v;
    if (!cg || !cg->path)
        return -EINVAL;
    int r = read_at(cg->dirfd, "cgroup.events", buf, sizeof buf);
    if (r < 0)
        return r;
    if (key_u64(buf, "populated", &v) < 0)
        return -EIO;
    return v != 0;
}

/* See cgroup.h. */
int asp__cgroup_notifier_open(void)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* See cgroup.h. */
int asp__cgroup_watch(asp__cgroup *cg, int nfd)
{
    char p[PATH_MAX];
    if (!cg || !cg->path || nfd < 0)
        return -EINVAL;
    if (cg->wd >= 0)
        return -EALREADY;
    /* create checked that this fits. */
    if (snprintf(p, sizeof p, "%s/cgroup.events", cg->path) >= (int)sizeof p)
        return -ENAMETOOLONG;
    int wd = inotify_add_watch(nfd, p, IN_MODIFY);
    if (wd < 0)
        return -errno;
    cg->notify_fd = nfd;
    cg->wd = wd;
    return 0;
}

/* See cgroup.h. */
int asp__cgroup_unwatch(asp__cgroup *cg)
{
    if (!cg || !cg->path || cg->wd < 0)
        return 0;
    int r = inotify_rm_watch(cg->notify_fd, cg->wd) == 0 ? 0 : -errno;
    cg->notify_fd = -1;
    cg->wd = -1;
    return r;
}

/* Hands each event of one read to fn: IN_IGNORED (a watch removed) is no
 * change; IN_Q_OVERFLOW means events were lost (wd -1). Returns the
 * number of calls. */
static int dispatch_events(const char *buf, size_t len,
                           asp__cgroup_change_fn fn, void *arg)
{
    int calls = 0;
    for (size_t off = 0; off + sizeof(struct inotify_event) <= len;) {
        struct inotify_event ev;
        memcpy(&ev, buf + off, sizeof ev);
        off += sizeof ev + ev.len;
        if (ev.mask & IN_IGNORED)
            continue;
        int wd = (ev.mask & IN_Q_OVERFLOW) ? -1 : ev.wd;
        if (fn)
            fn(wd, arg);
        calls++;
    }
    return calls;
}

/* See cgroup.h. At most 16 reads per call, so that a tree that changes
 * all the time cannot hold the caller here; the fd stays readable. */
int asp__cgroup_notifier_read(int nfd, asp__cgroup_change_fn fn, void *arg)
{
    char buf[4096];
    int calls = 0;
    for (int i = 0; i < 16; i++) {
        ssize_t k = read(nfd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) {
            i--;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        calls += dispatch_events(buf, (size_t)k, fn, arg);
    }
    return calls;
}

/* ------------------------------------------------------------- usage */

/* See cgroup.h. */
int asp__cgroup_stats(asp__cgroup *cg, asp__cgroup_usage *u)
{
    char buf[4096];
    memset(u, 0, sizeof *u);
    if (!cg || !cg->path)
        return -EINVAL;
    int r = read_at(cg->dirfd, "cpu.stat", buf, sizeof buf);
    if (r >= 0 && (key_u64(buf, "usage_usec", &u->usage_usec) < 0 ||
                   key_u64(buf, "user_usec", &u->user_usec) < 0 ||
                   key_u64(buf, "system_usec", &u->system_usec) < 0))
        r = -ENOENT;
    u->cpu_status = r < 0 ? -ENODATA : 0;
    if (r < 0 && r != -ENOENT)
        goto fail;
    r = read_at(cg->dirfd, "memory.peak", buf, sizeof buf);
    if (r >= 0 && parse_u64(buf, &u->memory_peak) < 0)
        r = -ENOENT;
    u->memory_status = r < 0 ? -ENODATA : 0;
    if (r < 0 && r != -ENOENT)
        goto fail;
    return 0;
fail:
    memset(u, 0, sizeof *u);
    return r;
}

/* ----------------------------------------------------------- removing */

/* each_subdir callback of remove_subtree: empties the sub-cgroup name,
 * then removes it. */
static int remove_sub(int dfd, const char *name, int depth, void *ctx);

/* Removes every sub-cgroup under dfd, bottom-up. The listing is redone
 * until a pass finds none, since entries removed during a listing may make
 * it skip others. Returns 0 or -errno (-EBUSY: something is in use). */
static int remove_subtree(int dfd, int depth)
{
    int r = 0;
    for (int pass = 0; pass < 8; pass++) {
        int removed = 0;
        r = each_subdir(dfd, depth, remove_sub, &removed);
        if (r < 0 || removed == 0)
            return r;
    }
    return each_subdir(dfd, depth, NULL, NULL) > 0 ? -EBUSY : 0;
}

static int remove_sub(int dfd, const char *name, int depth, void *ctx)
{
    if (depth >= ASP__CGROUP_MAX_DEPTH)
        return -ELOOP;
    int fd = open_at(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd;
    int r = remove_subtree(fd, depth + 1);
    close(fd);
    if (r == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        r = -errno;
    if (r == 0)
        ++*(int *)ctx;
    return r;
}

/* Closes everything of cg and resets it. */
static void release(asp__cgroup *cg)
{
    (void)asp__cgroup_unwatch(cg);
    asp__cgroup_joined(cg);
    if (cg->dirfd >= 0)
        close(cg->dirfd);
    asp__free(cg->path);
    cg_reset(cg);
}

/* See cgroup.h: our fds and memory go, the kernel's objects (the leaf,
 * the watch in a notifier another process shares) are left alone. */
void asp__cgroup_forget(asp__cgroup *cg)
{
    if (!cg || !cg->path)
        return;
    if (cg->procs_fd >= 0)
        close(cg->procs_fd);
    if (cg->dirfd >= 0)
        close(cg->dirfd);
    asp__free(cg->path);
    cg_reset(cg);
}

/* See cgroup.h. The emptiness check comes first, so that the
 * sub-cgroups of a tree that still runs are never touched. */
int asp__cgroup_destroy(asp__cgroup *cg)
{
    if (!cg || !cg->path)
        return 0;
    int r = asp__cgroup_populated(cg);
    if (r == 1)
        return -EBUSY;
    if (r < 0 && r != -ENOENT)
        return r;
    if (r == 0) {
        r = remove_subtree(cg->dirfd, 0);
        if (r < 0)
            return r;
        if (rmdir(cg->path) < 0 && errno != ENOENT) {
            r = -errno;
            if (r == -EBUSY)
                return r;
        }
    }
    if (r == -ENOENT)
        r = 0;
    release(cg);
    return r;
}

#else /* !ASP_HAVE_LINUX */

/* Without Linux there are no cgroups: every function below keeps the
 * contract of cgroup.h for a system where none are available (-ENOTSUP),
 * and the release functions accept the "no leaf" struct. */

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_mount_point(char *buf, size_t size)
{
    (void)buf, (void)size;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_default_parent(char *buf, size_t size)
{
    (void)buf, (void)size;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_create(asp__cgroup *cg, const char *parent)
{
    (void)parent;
    cg->path = NULL;
    cg->dirfd = cg->procs_fd = cg->notify_fd = cg->wd = -1;
    cg->has_kill = cg->has_freeze = 0;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_join_child(int procs_fd)
{
    (void)procs_fd;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
void asp__cgroup_joined(asp__cgroup *cg)
{
    (void)cg;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_signal(asp__cgroup *cg, int sig)
{
    (void)cg, (void)sig;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_populated(asp__cgroup *cg)
{
    (void)cg;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_notifier_open(void)
{
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_watch(asp__cgroup *cg, int nfd)
{
    (void)cg, (void)nfd;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_unwatch(asp__cgroup *cg)
{
    (void)cg;
    return 0;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_notifier_read(int nfd, asp__cgroup_change_fn fn, void *arg)
{
    (void)nfd, (void)fn, (void)arg;
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_stats(asp__cgroup *cg, asp__cgroup_usage *u)
{
    (void)cg;
    memset(u, 0, sizeof *u);
    return -ENOTSUP;
}

/* See cgroup.h: no cgroups on this system. */
int asp__cgroup_destroy(asp__cgroup *cg)
{
    (void)cg;
    return 0;
}

/* See cgroup.h: nothing to let go of. */
void asp__cgroup_forget(asp__cgroup *cg)
{
    (void)cg;
}

#endif
