/*
 * spawn.c - the parent side of starting a child.
 *
 * Order matters:
 *  1. validate everything (nothing created yet, so errors leave nothing);
 *  2. note which of the parent's fds 0-2 are open, before this call opens
 *     anything that could land on those numbers;
 *  3. create pipes (close-on-exec from creation) and open files, build the
 *     environment, the PATH candidates and the stream objects;
 *  4. clone(CLONE_VM | CLONE_VFORK [| CLONE_PIDFD]) with every signal
 *     blocked; the child (child.c) either execs or stores its errno and
 *     exits; CLONE_VFORK resumes us only after that;
 *  5. a failed exec is reaped here at once and its errno returned; a
 *     successful one is registered with the loop.
 * The address space is never copied, so spawn cost does not grow with the
 * parent's memory, and the pidfd exists from the first instant, so no
 * other reaper can make it point to a recycled pid.
 *
 * Step 5 relies on the child writing its errno into our memory before we
 * resume. Where clone(CLONE_VM | CLONE_VFORK) or vfork is emulated by a
 * plain fork (valgrind, some user-mode emulators) that memory is a copy
 * and we resume at once, so a failed exec would look like a success. The
 * first spawn of the process therefore also passes a close-on-exec error
 * pipe and checks whether the child's first store reached us: if it did,
 * memory is shared and later spawns skip the pipe; if not, every spawn
 * reads the errno from the pipe (EOF means the exec succeeded).
 */
#define _GNU_SOURCE
#include "internal.h"

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
#ifdef ASP_HAVE_PIDFD
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#endif

#define CHILD_STACK_SIZE ((size_t)64 * 1024)

/* Whether the child shares our memory (see the file comment): 0 not known
 * yet, 1 shared, 2 a copy. */
enum { VM_UNKNOWN = 0, VM_SHARED = 1, VM_COPIED = 2 };
static atomic_int vm_mode;

/* Everything a spawn creates, so that one cleanup path frees it all. */
typedef struct spawn_res {
    int parent_end[3]; /* our side of each piped stream */
    int child_src[3];  /* what the child gets as 0, 1, 2 (-1: closed) */
    int owned[6];      /* fds this call opened for the child */
    int nowned;
    void *env_owned, *paths_owned, *scratch;
    asp_proc *p;
} spawn_res;

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
    if (o->pgid < 0 || (o->pgid > 0 && (o->flags & (ASP_SPAWN_SETSID |
                                                    ASP_SPAWN_NEW_PGROUP))))
        return -EINVAL;
    if (o->env_mode < ASP_ENV_INHERIT || o->env_mode > ASP_ENV_OVERRIDE)
        return -EINVAL;
    if (o->eof_grace_ms < 0 && o->eof_grace_ms != ASP_FOREVER)
        return -EINVAL;
    if (o->cwd && !*o->cwd)
        return -EINVAL;
    if (o->read_buffer > ((size_t)1 << 30) || o->pipe_size > ((size_t)1 << 30))
        return -EINVAL;
    for (int i = 0; i < 3; i++) {
        const asp_stdio *s = &o->stdio[i];
        if (s->mode < ASP_STDIO_INHERIT || s->mode > ASP_STDIO_CLOSE ||
            (s->flags & ~ASP_STDIO_APPEND))
            return -EINVAL;
        if (s->mode == ASP_STDIO_STDOUT && i != 2)
            return -EINVAL;
        if (s->mode == ASP_STDIO_FD && (s->fd < 0 || fcntl(s->fd, F_GETFD) < 0))
            return s->fd < 0 ? -EINVAL : -EBADF;
        if (s->mode == ASP_STDIO_PATH && (!s->path || !*s->path))
            return -EINVAL;
    }
    if (o->npass_fds && !o->pass_fds)
        return -EINVAL;
    struct rlimit nofile;
    rlim_t fdmax = getrlimit(RLIMIT_NOFILE, &nofile) == 0 ? nofile.rlim_cur
                                                          : (rlim_t)1 << 20;
    for (size_t i = 0; i < o->npass_fds; i++) {
        if (o->pass_fds[i].child_fd < 3 || o->pass_fds[i].parent_fd < 0 ||
            (rlim_t)o->pass_fds[i].child_fd >= fdmax)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (o->pass_fds[j].child_fd == o->pass_fds[i].child_fd)
                return -EINVAL;
        if (fcntl(o->pass_fds[i].parent_fd, F_GETFD) < 0)
            return -EBADF;
    }
    return 0;
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
    if (i > 0 && (o->flags & ASP_SPAWN_SOCKETPAIR)) {
#ifdef SOCK_CLOEXEC
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
            return -errno;
#else
        /* macOS: no SOCK_CLOEXEC; the child closes every unlisted fd. */
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
            return -errno;
        (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
#endif
    } else {
        e = asp__pipe(fds, 0);
        if (e < 0)
            return e;
    }
    /* The child's end stays blocking: children expect blocking stdio. */
    int ours = i == 0 ? fds[1] : fds[0];
    int theirs = i == 0 ? fds[0] : fds[1];
    r->child_src[i] = own(r, theirs);
    ours = asp__fd_high(ours); /* our end lives on: keep it off 0-2 */
    if (ours < 0)
        return ours;
    r->parent_end[i] = ours;
    e = asp__set_nonblock(ours);
    if (e < 0)
        return e;
#ifdef F_SETNOSIGPIPE
    /* Where the fd itself can refuse SIGPIPE (macOS), stdin's writes need
     * no signal-mask dance (wstream.c). */
    if (i == 0)
        (void)fcntl(ours, F_SETNOSIGPIPE, 1);
#endif
#ifdef ASP_HAVE_PIPE_SZ
    if (o->pipe_size > 0 && !(i > 0 && (o->flags & ASP_SPAWN_SOCKETPAIR)))
        (void)fcntl(ours, F_SETPIPE_SZ,
                    (int)(o->pipe_size > 0x40000000 ? 0x40000000 : o->pipe_size));
#endif
    return 0;
}

/* Sets up what the child gets as fds 0-2. */
static int make_stdio(spawn_res *r, const asp_spawn_opts *o,
                      const int open_before[3])
{
    int devnull = -1;
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
        case ASP_STDIO_NULL:
            if (devnull < 0) {
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull < 0)
                    return -errno;
                own(r, devnull);
            }
            r->child_src[i] = devnull;
            break;
        case ASP_STDIO_FD:
            r->child_src[i] = s->fd;
            break;
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
            break;
        case ASP_STDIO_CLOSE:
            r->child_src[i] = -1;
            break;
        }
    }
    return 0;
}

/* Fills the fd moves, the sorted list of kept fds and the lift floor. */
static int make_moves(spawn_res *r, const asp_spawn_opts *o,
                      asp__child_ctx *c)
{
    size_t n = 3 + o->npass_fds;
    /* moves, lifted and keep share one scratch block. */
    char *block = asp__malloc(n * (sizeof(asp__fdmove) + 2 * sizeof(int)));
    if (!block)
        return -ENOMEM;
    r->scratch = block;
    c->moves = (asp__fdmove *)(void *)block;
    c->lifted = (int *)(void *)(block + n * sizeof(asp__fdmove));
    c->keep = c->lifted + n;
    int maxfd = 2;
    for (int i = 0; i < 3; i++) {
        c->moves[i].src = r->child_src[i];
        c->moves[i].dst = i;
        if (r->child_src[i] > maxfd)
            maxfd = r->child_src[i];
    }
    for (size_t i = 0; i < o->npass_fds; i++) {
        c->moves[3 + i].src = o->pass_fds[i].parent_fd;
        c->moves[3 + i].dst = o->pass_fds[i].child_fd;
        if (o->pass_fds[i].parent_fd > maxfd)
            maxfd = o->pass_fds[i].parent_fd;
        if (o->pass_fds[i].child_fd > maxfd)
            maxfd = o->pass_fds[i].child_fd;
        /* Insertion into the sorted keep list. */
        int k = (int)i;
        while (k > 0 && c->keep[k - 1] > o->pass_fds[i].child_fd) {
            c->keep[k] = c->keep[k - 1];
            k--;
        }
        c->keep[k] = o->pass_fds[i].child_fd;
    }
    c->nmoves = (int)n;
    c->nkeep = (int)o->npass_fds;
    c->lift_min = maxfd + 1;
    return 0;
}

/* Closes what this call opened for the child, and on failure our ends. */
static void res_release(spawn_res *r, int failed)
{
    for (int i = 0; i < r->nowned; i++)
        close(r->owned[i]);
    r->nowned = 0;
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

#ifndef ASP_HAVE_CLONE
/* vfork in a function of its own: nothing of the caller's frame is live
 * across it, so nothing can be clobbered. */
static pid_t do_vfork(asp__child_ctx *c)
{
    pid_t pid = vfork();
    if (pid == 0)
        asp__child_main(c);
    return pid;
}
#endif

/* Starts the child; returns its pid (and pidfd, -1 if none) or -errno. */
static pid_t start_child(struct asp__procs *ps, asp__child_ctx *c,
                         int want_pidfd, int *pidfd)
{
    sigset_t old;
    pid_t pid;
    *pidfd = -1;
#ifdef ASP_HAVE_CLONE
    if (!ps->stack) {
        void *st = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (st == MAP_FAILED)
            return -errno;
        ps->stack = st;
        ps->stack_size = CHILD_STACK_SIZE;
    }
    char *top = (char *)ps->stack + ps->stack_size;
    int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
    block_all(&old);
    if (want_pidfd) {
        pid = clone(asp__child_main, top, flags | CLONE_PIDFD, c, pidfd);
        if (pid < 0 && errno == EINVAL) {
            /* A kernel without CLONE_PIDFD (< 5.2): pidfd_open below. */
            want_pidfd = 2;
            pid = clone(asp__child_main, top, flags, c, NULL);
        }
    } else {
        pid = clone(asp__child_main, top, flags, c, NULL);
    }
    int e = errno;
    restore_mask(&old);
    if (pid < 0)
        return -e;
#ifdef ASP_HAVE_PIDFD
    if (want_pidfd == 2)
        *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
#else
    (void)ps;
    (void)want_pidfd;
    block_all(&old);
    pid = do_vfork(c);
    int e = errno;
    restore_mask(&old);
    if (pid < 0)
        return -e;
#endif
    return pid;
}

/* Reaps a child whose exec failed (it has exited already or is about to). */
static void reap_failed(pid_t pid, int pidfd)
{
    siginfo_t si;
    int r;
    do {
        memset(&si, 0, sizeof si);
#ifdef ASP_HAVE_PIDFD
        if (pidfd >= 0)
            r = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED);
        else
#endif
            r = waitid(P_PID, (id_t)pid, &si, WEXITED);
    } while (r < 0 && errno == EINTR);
    (void)pidfd;
    if (pidfd >= 0)
        close(pidfd);
}

/* After the clone: learns from the error pipe (epipe, both ends open)
 * whether memory is shared, and if it is not, reads the child's errno
 * into c->err (blocking until the exec closes the pipe or the child
 * writes). Closes both ends. */
static void error_pipe_collect(asp__child_ctx *c, int epipe[2])
{
    close(epipe[1]);
    if (c->started) {
        atomic_store(&vm_mode, VM_SHARED);
    } else {
        atomic_store(&vm_mode, VM_COPIED);
        int err = 0;
        ssize_t n;
        do
            n = read(epipe[0], &err, sizeof err);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof err && err > 0)
            c->err = err;
    }
    close(epipe[0]);
    epipe[0] = epipe[1] = -1;
}

/* Hands the parent ends of the pipes to stream objects. */
static void make_streams(spawn_res *r, const asp_spawn_opts *o)
{
    for (int i = 0; i < 3; i++) {
        if (r->parent_end[i] < 0)
            continue;
        unsigned fl = (i > 0 && (o->flags & ASP_SPAWN_SOCKETPAIR))
                          ? ASP__S_SOCKET
                          : 0;
        r->p->stdio[i] = asp__stream_new(r->p, i, r->parent_end[i], fl, o);
        r->parent_end[i] = -1; /* the stream owns it now */
    }
}

/* Closes the streams of a spawn that failed. */
static void drop_streams(asp_proc *p)
{
    for (int i = 0; i < 3; i++)
        if (p->stdio[i]) {
            asp__stream_free(p->stdio[i]);
            p->stdio[i] = NULL;
        }
}

/* Public: exec-style spawn. */
int asp_spawn(asp_loop *loop, asp_proc **out, const char *const argv[],
              const asp_spawn_opts *opts)
{
    static const asp_spawn_opts dflt;
    const asp_spawn_opts *o = opts ? opts : &dflt;
    spawn_res r;
    asp__child_ctx c;
    struct asp__procs *ps;
    int epipe[2] = {-1, -1};
    int e;

    if (!loop || !out)
        return -EINVAL;
    *out = NULL;
    e = validate(argv, o);
    if (e < 0)
        return e;

    int open_before[3];
    for (int i = 0; i < 3; i++)
        open_before[i] = fcntl(i, F_GETFD) >= 0;

    e = asp__procs_get(loop, &ps);
    if (e < 0)
        return e;

    memset(&r, 0, sizeof r);
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 3; i++)
        r.parent_end[i] = r.child_src[i] = -1;

    r.p = asp__calloc(1, sizeof *r.p);
    if (!r.p)
        return -ENOMEM;
    r.p->loop = loop;
    r.p->ps = ps;
    r.p->pidfd = -1;

    e = make_stdio(&r, o, open_before);
    if (e < 0)
        goto fail;
    e = asp__env_build(o, &c.envp, &r.env_owned);
    if (e < 0)
        goto fail;
    e = asp__paths_build(o->file ? o->file : argv[0], c.envp, &c.paths,
                         &c.npaths, &r.paths_owned);
    if (e < 0)
        goto fail;
    e = make_moves(&r, o, &c);
    if (e < 0)
        goto fail;
    make_streams(&r, o);

    c.argv = argv;
    c.cwd = o->cwd;
    c.setsid = (o->flags & ASP_SPAWN_SETSID) != 0;
    /* setsid() already makes the child lead a new group (and a session
     * leader may not call setpgid), so NEW_PGROUP adds nothing to it. */
    c.pgid = (o->flags & ASP_SPAWN_SETSID) ? -1
             : (o->flags & ASP_SPAWN_NEW_PGROUP) ? 0
             : (o->pgid > 0 ? o->pgid : -1);
    c.err = 0;
    c.started = 0;
    c.errfd = -1;
    if (atomic_load(&vm_mode) != VM_SHARED) {
        e = asp__pipe(epipe, 0);
        if (e < 0)
            goto fail;
        c.errfd = epipe[1];
    }

    int pidfd;
    pid_t pid = start_child(ps, &c, asp__pidfd_supported() > 0, &pidfd);
    if (pid < 0) {
        e = pid;
        goto fail;
    }
    if (epipe[0] >= 0)
        error_pipe_collect(&c, epipe);
    if (c.err) {
        e = -c.err;
        reap_failed(pid, pidfd);
        goto fail;
    }
    if (pidfd >= 0 && pidfd < 3) {
        /* The pidfd lives as long as the child: keep it off 0-2. */
        int hi = asp__fd_high(pidfd);
        if (hi < 0) {
            kill(pid, SIGKILL);
            e = hi;
            reap_failed(pid, -1);
            goto fail;
        }
        pidfd = hi;
    }

    asp_proc *p = r.p;
    p->pid = pid;
    p->pidfd = pidfd;
    if (o->flags & (ASP_SPAWN_SETSID | ASP_SPAWN_NEW_PGROUP))
        p->flags |= ASP__P_LEADER;
    res_release(&r, 0);

    e = asp__proc_register(p);
    if (e < 0) {
        /* Only an allocation in the backend can fail here; the child runs,
         * so it is killed and reaped before reporting. */
        if (pidfd >= 0)
            asp__proc_send(p, SIGKILL, 0);
        else
            kill(pid, SIGKILL);
        reap_failed(pid, pidfd);
        drop_streams(p);
        asp__free(p);
        return e;
    }
    for (int i = 0; i < 3; i++)
        if (p->stdio[i])
            asp__stream_update(p->stdio[i]);
    *out = p;
    return 0;

fail:
    for (int i = 0; i < 2; i++)
        if (epipe[i] >= 0)
            close(epipe[i]);
    drop_streams(r.p);
    res_release(&r, 1);
    asp__free(r.p);
    return e;
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
