/*
 * spawn.c - the parent side of starting a child.
 *
 * Order matters:
 *  1. validate everything (nothing created yet, so errors leave nothing);
 *  2. note which of the parent's fds 0-2 are open, before this call opens
 *     anything that could land on those numbers;
 *  3. prepare: create pipes and a terminal (pty.c), close-on-exec from
 *     creation, and open files, build the environment, the PATH
 *     candidates, the fd moves and the stream objects;
 *  4. launch: clone(CLONE_VM | CLONE_VFORK [| CLONE_PIDFD]) with every
 *     signal blocked; the child (child.c) either execs or stores its errno
 *     and exits; CLONE_VFORK resumes us only after that; a failed exec is
 *     reaped here at once and its errno returned;
 *  5. attach: the child is registered with the loop, its streams start.
 * The address space is never copied, so spawn cost does not grow with the
 * parent's memory, and the pidfd exists from the first instant, so no
 * other reaper can make it point to a recycled pid.
 *
 * Step 4 relies on the child writing its errno into our memory before we
 * resume. Where clone(CLONE_VM | CLONE_VFORK) or vfork is emulated by a
 * plain fork (valgrind, some user-mode emulators) that memory is a copy
 * and we resume at once, so a failed exec would look like a success. The
 * first spawn of the process therefore probes once with a child that only
 * stores a flag and exits: if the store reached us, memory is shared;
 * if not, every spawn passes a close-on-exec error pipe and reads the
 * errno from it (EOF means the exec succeeded). The probe costs no fd, so
 * a spawn holds only what it hands over: two fds per pipe, a terminal's
 * master and slave (and the master's duplicate for stdin), the pidfd, and
 * a file where asked (/dev/null is opened by the child).
 */
#include "internal.h"
#include "pty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef ASP_HAVE_CLONE
#include <sched.h>
#include <sys/syscall.h>
#endif

#define CHILD_STACK_SIZE ((size_t)64 * 1024)

/* Whether the child shares our memory (see the file comment): 0 not known
 * yet, 1 shared, 2 a copy. */
enum { VM_UNKNOWN = 0, VM_SHARED = 1, VM_COPIED = 2 };
static atomic_int vm_mode;

/* Everything a spawn creates, so that one cleanup path frees it all. */
typedef struct spawn_res {
    const asp_spawn_opts *o;
    const char *const *argv;
    struct asp__procs *ps;
    asp_proc *p;
    asp__child_ctx c;
    int parent_end[3]; /* our side of each piped stream */
    int child_src[3];  /* what the child gets as 0, 1, 2 (-1: closed) */
    int child_nb[3];   /* child_src[i] is non-blocking: the child clears it */
    int owned[6];      /* fds this call opened for the child */
    int nowned;
    int pty_slave; /* the terminal's slave (also in owned), or -1 */
    int epipe[2];  /* the error pipe, where memory is copied */
    void *env_owned, *paths_owned, *scratch;
    pid_t pid;
    int pidfd;
    int contained;     /* the containment was prepared: started() is owed */
    int opened_source; /* this spawn opened the loop's exit source */
} spawn_res;

/* The soft RLIMIT_NOFILE (a large number when unknown). */
static rlim_t fd_limit(void)
{
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0)
        return nofile.rlim_cur;
    return (rlim_t)1 << 20;
}

/* Checks the stdio options; nothing is created here. */
static int validate_stdio(const asp_spawn_opts *o)
{
    for (int i = 0; i < 3; i++) {
        const asp_stdio *s = &o->stdio[i];
        if ((unsigned)s->mode >= ASP__STDIO_COUNT ||
            (s->flags & ~ASP_STDIO_APPEND))
            return -EINVAL;
        if (s->mode == ASP_STDIO_STDOUT && i != 2)
            return -EINVAL;
        if (s->mode == ASP_STDIO_FD && (s->fd < 0 || fcntl(s->fd, F_GETFD) < 0))
            return s->fd < 0 ? -EINVAL : -EBADF;
        if (s->mode == ASP_STDIO_PATH && (!s->path || !*s->path))
            return -EINVAL;
    }
    return 0;
}

/* Checks the passed fds: targets >= 3, below the fd limit, distinct;
 * sources open. */
static int validate_pass(const asp_spawn_opts *o)
{
    if (o->npass_fds && !o->pass_fds)
        return -EINVAL;
    if (o->npass_fds == 0)
        return 0; /* and no system call for the limit */
    rlim_t fdmax = fd_limit();
    for (size_t i = 0; i < o->npass_fds; i++) {
        const asp_fdmap *m = &o->pass_fds[i];
        if (m->child_fd < 3 || m->parent_fd < 0 || (rlim_t)m->child_fd >= fdmax)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (o->pass_fds[j].child_fd == m->child_fd)
                return -EINVAL;
        if (fcntl(m->parent_fd, F_GETFD) < 0)
            return -EBADF;
    }
    return 0;
}

/* Checks the options; nothing is created here. */
static int validate(const char *const argv[], const asp_spawn_opts *o)
{
    if (!argv || !argv[0])
        return -EINVAL;
    const char *name = o->file ? o->file : argv[0];
    if (!*name)
        return -EINVAL;
    if (o->flags & ~(unsigned)(ASP_SPAWN_SETSID | ASP_SPAWN_NEW_PGROUP |
                               ASP_SPAWN_SOCKETPAIR))
        return -EINVAL;
    if (o->pgid < 0 ||
        (o->pgid > 0 && (o->flags & (ASP_SPAWN_SETSID | ASP_SPAWN_NEW_PGROUP))))
        return -EINVAL;
    if ((unsigned)o->env_mode >= ASP__ENV_COUNT ||
        (unsigned)o->contain >= ASP__CONTAIN_COUNT)
        return -EINVAL;
    if (o->pgid > 0 && o->contain != ASP_CONTAIN_NONE)
        return -EINVAL; /* joining a group is no containment of our own */
    if (o->eof_grace_ms < 0 && o->eof_grace_ms != ASP_FOREVER)
        return -EINVAL;
    if (o->cwd && !*o->cwd)
        return -EINVAL;
    if (o->read_buffer > ((size_t)1 << 30) || o->pipe_size > ((size_t)1 << 30))
        return -EINVAL;
    int e = validate_stdio(o);
    if (!e)
        e = asp__pty_validate(o);
    return e < 0 ? e : validate_pass(o);
}

/* Remembers an fd this call opened for the child. */
static int own(spawn_res *r, int fd)
{
    r->owned[r->nowned++] = fd;
    return fd;
}

/* Creates the pipe (or socketpair) for stream i. */
static int make_pipe(spawn_res *r, int i, const asp_spawn_opts *o)
{
    int fds[2];
    int e;
    int both_nb = 1; /* both ends non-blocking: the child clears its own */
    if (i > 0 && (o->flags & ASP_SPAWN_SOCKETPAIR)) {
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                       fds) < 0)
            return -errno;
#else
        both_nb = 0;
        /* macOS: no SOCK_CLOEXEC; the child closes every unlisted fd. */
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
            return -errno;
        (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
#endif
    } else {
        e = asp__pipe(fds, O_NONBLOCK);
        if (e < 0)
            return e;
    }
    /* Our end is non-blocking; the child's end must be blocking (children
     * expect blocking stdio): made so by the child itself after it put
     * the fd in place, which spares the parent a system call per pipe. */
    int ours = i == 0 ? fds[1] : fds[0];
    int theirs = i == 0 ? fds[0] : fds[1];
    r->child_src[i] = own(r, theirs);
    r->child_nb[i] = both_nb;
    ours = asp__fd_high(ours); /* our end lives on: keep it off 0-2 */
    if (ours < 0)
        return ours;
    ours = asp__fd_park(ours); /* and above the child's, in a big table */
    r->parent_end[i] = ours;
    /* A new socket has no status flag to keep: one fcntl. */
    if (!both_nb && fcntl(ours, F_SETFL, O_NONBLOCK) < 0)
        return -errno;
#ifdef F_SETNOSIGPIPE
    /* Where the fd itself can refuse SIGPIPE (macOS), stdin's writes need
     * no signal-mask dance (wstream.c). */
    if (i == 0)
        (void)fcntl(ours, F_SETNOSIGPIPE, 1);
#endif
#ifdef ASP_HAVE_PIPE_SZ
    if (o->pipe_size > 0 && !(i > 0 && (o->flags & ASP_SPAWN_SOCKETPAIR)))
        (void)fcntl(
            ours, F_SETPIPE_SZ,
            (int)(o->pipe_size > 0x40000000 ? 0x40000000 : o->pipe_size));
#endif
    return 0;
}

/* Puts fd i on the spawn's terminal, opened at the first fd that asks
 * for it (pty.c): the child gets the slave, closed here after the clone
 * like a pipe's child end; the master is the reading stream's, and
 * stdin's writer gets a duplicate of it. */
static int make_pty(spawn_res *r, int i)
{
    int reader = asp__pty_reader(r->o);
    if (r->pty_slave < 0) {
        int e = asp__pty_open(r->o, &r->parent_end[reader], &r->pty_slave);
        if (e < 0)
            return e;
        own(r, r->pty_slave);
    }
    r->child_src[i] = r->pty_slave;
    if (i == 0) {
        int fd = asp__pty_dup(r->parent_end[reader]);
        if (fd < 0)
            return fd;
        r->parent_end[0] = fd;
    }
    return 0;
}

/* Sets up what the child gets as fds 0-2. /dev/null is opened by the
 * child itself (ASP__FD_DEVNULL), as posix_spawn's file actions do: the
 * parent saves an open and a close per spawn, and a failure still comes
 * back as the spawn's error. */
static int make_stdio(spawn_res *r, const asp_spawn_opts *o,
                      const int open_before[3])
{
    for (int i = 0; i < 3; i++) {
        const asp_stdio *s = &o->stdio[i];
        int e;
        switch (s->mode) {
        case ASP_STDIO_INHERIT:
            r->child_src[i] = open_before[i] ? i : -1;
            break;
        case ASP_STDIO_PIPE:
            e = make_pipe(r, i, o);
            if (e < 0)
                return e;
            break;
        case ASP_STDIO_NULL: r->child_src[i] = ASP__FD_DEVNULL; break;
        case ASP_STDIO_FD: r->child_src[i] = s->fd; break;
        case ASP_STDIO_PATH: {
            int fl = O_CLOEXEC | O_NOCTTY;
            if (i == 0)
                fl |= O_RDONLY;
            else
                fl |= O_WRONLY | O_CREAT |
                      ((s->flags & ASP_STDIO_APPEND) ? O_APPEND : O_TRUNC);
            int fd = open(s->path, fl, 0666);
            if (fd < 0)
                return -errno;
            r->child_src[i] = own(r, fd);
            break;
        }
        case ASP_STDIO_STDOUT:
            r->child_src[i] = r->child_src[1];
            r->child_nb[i] = r->child_nb[1];
            break;
        case ASP_STDIO_CLOSE: r->child_src[i] = -1; break;
        case ASP_STDIO_PTY:
            e = make_pty(r, i);
            if (e < 0)
                return e;
            break;
        }
    }
    return 0;
}

/* Adds fd to the sorted, distinct array a of *n. */
static void sorted_add(int *a, int *n, int fd)
{
    int k = *n;
    while (k > 0 && a[k - 1] > fd)
        k--;
    if (k > 0 && a[k - 1] == fd)
        return;
    memmove(a + k + 1, a + k, (size_t)(*n - k) * sizeof *a);
    a[k] = fd;
    (*n)++;
}

/* Fills the fd moves, the sorted sources and the sorted targets >= 3. */
static int make_moves(spawn_res *r)
{
    const asp_spawn_opts *o = r->o;
    asp__child_ctx *c = &r->c;
    size_t n = 3 + o->npass_fds;
    /* moves, keep and srcs share one scratch block. */
    char *block = asp__malloc(n * (sizeof(asp__fdmove) + 2 * sizeof(int)));
    if (!block)
        return -ENOMEM;
    r->scratch = block;
    c->moves = (asp__fdmove *)(void *)block;
    c->keep = (int *)(void *)(block + n * sizeof(asp__fdmove));
    c->srcs = c->keep + n;
    c->nkeep = c->nsrcs = 0;
    for (size_t i = 0; i < n; i++) {
        int src = i < 3 ? r->child_src[i] : o->pass_fds[i - 3].parent_fd;
        int dst = i < 3 ? (int)i : o->pass_fds[i - 3].child_fd;
        c->moves[i].src = src;
        c->moves[i].dst = dst;
        c->moves[i].clear_nb = i < 3 ? r->child_nb[i] : 0;
        if (src >= 0)
            sorted_add(c->srcs, &c->nsrcs, src);
        if (dst >= 3)
            sorted_add(c->keep, &c->nkeep, dst);
    }
    c->nmoves = (int)n;
    return 0;
}

/* Closes what this call opened for the child, and on failure our ends. */
static void res_release(spawn_res *r, int failed)
{
    for (int i = 0; i < r->nowned; i++)
        close(r->owned[i]);
    r->nowned = 0;
    for (int i = 0; i < 2; i++)
        if (r->epipe[i] >= 0)
            close(r->epipe[i]);
    r->epipe[0] = r->epipe[1] = -1;
    if (failed)
        for (int i = 0; i < 3; i++)
            if (r->parent_end[i] >= 0) {
                close(r->parent_end[i]);
                r->parent_end[i] = -1;
            }
    asp__free(r->env_owned);
    asp__free(r->paths_owned);
    asp__free(r->scratch);
    r->env_owned = r->paths_owned = r->scratch = NULL;
    if (r->ps)
        r->ps->spawning = NULL;
}

/* Blocks every signal in this thread (raw where libc would filter its own
 * internal ones); *old receives the previous mask. */
static void block_all(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
#ifdef ASP_HAVE_LINUX
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, (size_t)8);
#else
    pthread_sigmask(SIG_SETMASK, &all, old);
#endif
}

/* Restores the mask saved by block_all. */
static void restore_mask(const sigset_t *old)
{
#ifdef ASP_HAVE_LINUX
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, (size_t)8);
#else
    pthread_sigmask(SIG_SETMASK, old, NULL);
#endif
}

/* The probe child: one store into what may be our memory, then exit. It
 * runs on the clone stack like child.c, and is left uninstrumented like
 * it: AddressSanitizer would warn about the stack switch at the _exit,
 * into whatever fd 2 is at that moment (a pipe to a child, in a host
 * without 0-2). */
ASP__CHILD_CODE static int probe_main(void *arg)
{
    *(volatile int *)arg = 1;
    _exit(0);
}

/* The top of the loop's clone stack (mapped at first use). */
static char *stack_top(struct asp__procs *ps)
{
#ifdef ASP_HAVE_CLONE
    if (!ps->stack) {
        void *st = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (st == MAP_FAILED)
            return NULL;
        ps->stack = st;
        ps->stack_size = CHILD_STACK_SIZE;
    }
    return (char *)ps->stack + ps->stack_size;
#else
    (void)ps;
    return (char *)1; /* vfork needs none */
#endif
}

#ifndef ASP_HAVE_CLONE
/* vfork in a function of its own: nothing of the caller's frame is live
 * across it, so nothing can be clobbered. fn runs in the child. */
static pid_t do_vfork(int (*fn)(void *), void *arg)
{
    pid_t pid = vfork();
    if (pid == 0)
        fn(arg);
    return pid;
}
#endif

/* Starts fn(arg) in a child sharing our memory (as far as the system
 * does), every signal blocked around it; with want_pidfd also a pidfd
 * (-1 if none); with share_files (Linux) sharing our fd table too, which
 * the child must unshare before it touches any fd (child.c). Returns the
 * pid or -errno. */
static pid_t clone_child(struct asp__procs *ps, int (*fn)(void *), void *arg,
                         int want_pidfd, int share_files, int *pidfd)
{
    sigset_t old;
    pid_t pid;
    char *top = stack_top(ps);
    *pidfd = -1;
    if (!top)
        return -errno;
    block_all(&old);
#ifdef ASP_HAVE_CLONE
    int flags =
        CLONE_VM | CLONE_VFORK | SIGCHLD | (share_files ? CLONE_FILES : 0);
    pid = clone(fn, top, flags | (want_pidfd ? CLONE_PIDFD : 0), arg, pidfd);
    if (pid < 0 && want_pidfd && errno == EINVAL) {
        /* A kernel without CLONE_PIDFD (< 5.2): pidfd_open below. */
        want_pidfd = 2;
        pid = clone(fn, top, flags, arg, NULL);
    }
#else
    (void)want_pidfd;
    (void)share_files;
    pid = do_vfork(fn, arg);
#endif
    int e = errno;
    restore_mask(&old);
    if (pid < 0)
        return -e;
#ifdef ASP_HAVE_PIDFD
    if (want_pidfd == 2)
        *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    return pid;
}

/* Learns once whether a child's stores reach our memory (see the file
 * comment). 0 or -errno (the probe could not start: not remembered). */
static int probe_vm(struct asp__procs *ps)
{
    if (atomic_load(&vm_mode) != VM_UNKNOWN)
        return 0;
    volatile int flag = 0;
    int pidfd;
    pid_t pid = clone_child(ps, probe_main, (void *)&flag, 0, 0, &pidfd);
    if (pid < 0)
        return pid;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    atomic_store(&vm_mode, flag ? VM_SHARED : VM_COPIED);
    return 0;
}

/* Reaps a child whose exec failed (it has exited already or is about to). */
static void reap_failed(pid_t pid, int pidfd)
{
    siginfo_t si;
    (void)asp__waitid(pid, pidfd, &si, WEXITED, NULL);
    if (pidfd >= 0)
        close(pidfd);
}

/* After the clone, where memory is copied: reads the child's errno from
 * the error pipe (blocking until the exec closes it or the child writes)
 * into c->err. Closes both ends. */
static void error_pipe_collect(spawn_res *r)
{
    close(r->epipe[1]);
    r->epipe[1] = -1;
    int err = 0;
    ssize_t n;
    do
        n = read(r->epipe[0], &err, sizeof err);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof err && err > 0)
        r->c.err = err;
    close(r->epipe[0]);
    r->epipe[0] = -1;
}

/* Hands the parent ends of the pipes to stream objects. */
static int make_streams(spawn_res *r)
{
    const asp_spawn_opts *o = r->o;
    asp__stream_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.bufsize = o->read_buffer ? o->read_buffer : o->pipe_size;
    cfg.high_water = o->high_water;
    cfg.grace_ms = o->eof_grace_ms;
    cfg.fixed = o->pipe_size || o->read_buffer;
    for (int i = 0; i < 3; i++) {
        int fd = r->parent_end[i];
        if (fd < 0)
            continue;
        r->parent_end[i] = -1; /* the stream owns it now, even on failure */
        cfg.tty = o->stdio[i].mode == ASP_STDIO_PTY;
        cfg.socket = i > 0 && (o->flags & ASP_SPAWN_SOCKETPAIR) && !cfg.tty;
        r->p->stdio[i] = i == 0 ? asp__writer_new(r->p->loop, fd, &cfg)
                                : asp__reader_new(r->p->loop, fd, &cfg);
        if (!r->p->stdio[i])
            return -ENOMEM;
    }
    return 0;
}

/* Destroys the streams of a spawn that failed. */
static void drop_streams(asp_proc *p)
{
    for (int i = 0; i < 3; i++)
        if (p->stdio[i]) {
            asp__stream_destroy(p->stdio[i]);
            p->stdio[i] = NULL;
        }
}

/* Whether the child shares our fd table at the clone, and below which
 * fd it then copies it: the clone does not copy a table of thousands of
 * fds only for the child to close them all again (each close of a file
 * costs the kernel a few cache misses: 2.7 ms per spawn from a parent
 * with 20,000 fds, measured with perf, most of it in close_range). The
 * child copies the fds below the highest one it is given (those are kept
 * low, see asp__fd_park). Only where the child is known to share our
 * memory: an emulated clone (valgrind, user-mode emulators) is a plain
 * fork, which may refuse the flag. */
static void share_files(asp__child_ctx *c)
{
#if defined(ASP_HAVE_CLONE) && defined(ASP_HAVE_CLOSE_RANGE)
    c->shared_files = atomic_load(&vm_mode) == VM_SHARED;
    c->cut = 3;
    if (c->nsrcs > 0 && c->srcs[c->nsrcs - 1] >= c->cut)
        c->cut = c->srcs[c->nsrcs - 1] + 1;
#else
    c->shared_files = 0;
#endif
}

/* Step 3: everything the child needs, and the streams. */
static int prepare(spawn_res *r, const int open_before[3])
{
    const asp_spawn_opts *o = r->o;
    asp__child_ctx *c = &r->c;
    int e = make_stdio(r, o, open_before);
    if (!e)
        e = asp__env_build(o, &c->envp, &r->env_owned);
    if (!e)
        e = asp__paths_build(o->file ? o->file : r->argv[0], c->envp, &c->paths,
                             &c->npaths, &r->paths_owned);
    if (!e)
        e = make_moves(r);
    if (!e)
        e = make_streams(r);
    if (!e) {
        e = asp__child_prepare(r->p->loop);
        r->opened_source = e > 0;
        e = e > 0 ? 0 : e;
    }
    if (!e && atomic_load(&vm_mode) != VM_SHARED)
        e = asp__pipe(r->epipe, 0);
    if (e)
        return e;
    c->argv = r->argv;
    c->cwd = o->cwd;
    /* A terminal is the controlling terminal of a new session. */
    c->setsid = (o->flags & ASP_SPAWN_SETSID) != 0 || r->pty_slave >= 0;
    c->ctty = r->pty_slave;
    /* setsid() already makes the child lead a new group (and a session
     * leader may not call setpgid), so NEW_PGROUP adds nothing to it. */
    c->pgid = c->setsid ? -1
              : (o->flags & ASP_SPAWN_NEW_PGROUP)
                  ? 0
                  : (o->pgid > 0 ? o->pgid : -1);
    c->errfd = r->epipe[1];
    c->nofile_restore = asp__fd_limit_restore(&c->nofile);
    share_files(c);
    e = asp__contain_prepare(r->p, o, c);
    if (e == 0)
        r->contained = 1;
    return e;
}

/* Step 4: the clone, and the child's verdict. */
static int launch(spawn_res *r)
{
    pid_t pid =
        clone_child(r->ps, asp__child_main, &r->c, asp__pidfd_supported() > 0,
                    r->c.shared_files, &r->pidfd);
    if (pid < 0)
        return pid;
    if (r->epipe[0] >= 0)
        error_pipe_collect(r);
    if (r->c.err) {
        reap_failed(pid, r->pidfd);
        r->pidfd = -1;
        return -r->c.err;
    }
    if (r->pidfd >= 0 && r->pidfd < 3) {
        /* The pidfd lives as long as the child: keep it off 0-2. */
        int hi = asp__fd_high(r->pidfd);
        if (hi < 0) {
            kill(pid, SIGKILL);
            reap_failed(pid, -1);
            r->pidfd = -1;
            return hi;
        }
        r->pidfd = hi;
    }
    r->pidfd = asp__fd_park(r->pidfd);
    r->pid = pid;
    return 0;
}

/* Step 5: the child joins the loop. Only an allocation in the exit
 * source can fail here; the child runs, so it is killed and reaped. */
static int attach(spawn_res *r)
{
    asp_proc *p = r->p;
    p->watch.pid = r->pid;
    p->watch.pidfd = r->pidfd;
    p->pty = r->c.ctty >= 0;
    int e = asp__proc_register(p);
    if (e < 0) {
        if (r->pidfd >= 0)
            (void)asp__proc_send(p, SIGKILL, 0);
        else
            kill(r->pid, SIGKILL);
        reap_failed(r->pid, r->pidfd);
        return e;
    }
    for (int i = 0; i < 3; i++)
        if (p->stdio[i])
            asp__stream_start(p->stdio[i]);
    return 0;
}

/* Sets up r and the process object; 0 or -ENOMEM. */
static int res_init(spawn_res *r, asp_loop *loop, const char *const argv[],
                    const asp_spawn_opts *o)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->argv = argv;
    r->pidfd = -1;
    r->epipe[0] = r->epipe[1] = -1;
    r->pty_slave = -1;
    r->c.errfd = -1;
    r->c.cgroup_fd = -1;
    r->c.ctty = -1;
    for (int i = 0; i < 3; i++)
        r->parent_end[i] = r->child_src[i] = -1;
    int e = asp__procs_get(loop, &r->ps);
    if (e < 0)
        return e;
    /* Before this spawn allocates anything: where the probe child is a
     * copy of us (valgrind), a memory checker's report at its exit would
     * take the spawn's blocks, known only to this frame, for leaks. */
    e = probe_vm(r->ps);
    if (e < 0)
        return e;
    r->p = asp__calloc(1, sizeof *r->p);
    if (!r->p)
        return -ENOMEM;
    r->ps->spawning = r->p;
    r->p->loop = loop;
    r->p->ps = r->ps;
    r->p->watch.pidfd = -1;
    r->p->status.usage.err = -ENODATA;
    r->p->status.tree.cpu_err = r->p->status.tree.memory_err = -ENODATA;
    asp__list_init(&r->p->node);
    asp__list_init(&r->p->hnode);
    asp__list_init(&r->p->waits);
    asp__list_init(&r->p->tree_node);
    return 0;
}

/* Public: exec-style spawn. */
int asp_spawn(asp_loop *loop, asp_proc **out, const char *const argv[],
              const asp_spawn_opts *opts)
{
    static const asp_spawn_opts dflt;
    const asp_spawn_opts *o = opts ? opts : &dflt;
    spawn_res r;
    if (!loop || !out)
        return -EINVAL;
    *out = NULL;
    if (asp__loop_forked(loop))
        return -ECHILD;
    int e = validate(argv, o);
    if (e < 0)
        return e;
    int open_before[3]; /* asked only where the child inherits it */
    for (int i = 0; i < 3; i++)
        open_before[i] =
            o->stdio[i].mode == ASP_STDIO_INHERIT && fcntl(i, F_GETFD) >= 0;
    e = res_init(&r, loop, argv, o);
    if (!e)
        e = prepare(&r, open_before);
    if (!e)
        e = launch(&r);
    if (!e)
        e = attach(&r);
    if (r.contained)
        r.p->contain->started(r.p, e == 0);
    res_release(&r, e < 0);
    if (e < 0) {
        if (r.p)
            drop_streams(r.p);
        asp__free(r.p);
        if (r.opened_source)
            asp__child_unprepare(loop);
        return e;
    }
    *out = r.p;
    return 0;
}

/* Public: shell-style spawn. */
int asp_spawn_shell(asp_loop *loop, asp_proc **out, const char *command,
                    const asp_spawn_opts *opts)
{
    if (!command || !*command)
        return -EINVAL;
    const char *argv[] = {"/bin/sh", "-c", command, NULL};
    return asp_spawn(loop, out, argv, opts);
}
