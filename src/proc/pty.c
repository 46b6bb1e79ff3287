/*
 * pty.c - pseudo-terminals: the stdio kind ASP_STDIO_PTY.
 *
 * A spawn that asks for a terminal gets one pseudo-terminal pair, opened
 * before the clone. The slave goes to the child as every one of fds 0-2
 * that asked for it; the master stays here, read by one output stream
 * and, when stdin is on the terminal, written by a writer on a duplicate
 * (the loop takes one watcher per fd number). The hooks into the rest:
 *   spawn.c    validates, opens the terminal (as a pipe's two ends: the
 *              slave is closed right after the clone, like a pipe's child
 *              end) and makes the streams, marked as a terminal's;
 *   child.c    after setsid(), makes the slave the controlling terminal;
 *   streams    read it like a pipe (EIO at the hang-up is end of file,
 *              stream.c), never splice it (forward.c), and end its input
 *              with the end-of-file character (writer.c);
 *   here       asp_proc_resize.
 *
 * Opening, in this order and why:
 *  - posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC): close-on-exec from
 *    creation where the system takes the flag there (glibc, FreeBSD);
 *    where it does not (EINVAL), it is set at once after, and the child
 *    closes every fd it was not given anyway. The master never reaches
 *    the child.
 *  - grantpt, unlockpt, then the slave: from the master itself on Linux
 *    (TIOCGPTPEER, 4.13), which cannot open the wrong terminal by name (a
 *    /dev/pts of another mount namespace); else by its name (ptsname_r,
 *    or ptsname under a lock where there is no ptsname_r). O_NOCTTY: this
 *    process must not acquire the terminal as its own.
 *  - the window size and modes are set here in the parent, before the
 *    clone: the child may only make async-signal-safe calls, and the
 *    termios functions are not on that list.
 *  - the master is made non-blocking (the slave stays blocking: children
 *    expect blocking stdio) and moved off 0-2, as our pipe ends are.
 */
#include "pty.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define DEFAULT_ROWS 24
#define DEFAULT_COLS 80

/* Which of fds 0-2 o puts on the terminal: bit i for fd i. */
static unsigned pty_fds(const asp_spawn_opts *o)
{
    unsigned bits = 0;
    for (int i = 0; i < 3; i++)
        if (o->stdio[i].mode == ASP_STDIO_PTY)
            bits |= 1u << i;
    return bits;
}

/* Whether o puts any of fds 0-2 on a terminal. */
int asp__pty_wanted(const asp_spawn_opts *o)
{
    return pty_fds(o) != 0;
}

/* The output whose stream reads the terminal: stdout when it is on it. */
int asp__pty_reader(const asp_spawn_opts *o)
{
    return (pty_fds(o) & 2u) ? 1 : 2;
}

/* Checks the terminal options of o (see the header). */
int asp__pty_validate(const asp_spawn_opts *o)
{
    unsigned bits = pty_fds(o);
    const asp_pty_opts *t = &o->pty;
    if (!bits)
        return t->rows || t->cols || t->flags ? -EINVAL : 0;
    if (!(bits & 6u) || o->pgid > 0 ||
        (t->flags & ~(unsigned)(ASP_PTY_RAW | ASP_PTY_NOECHO)))
        return -EINVAL;
#ifndef TIOCSCTTY
    return -ENOTSUP;
#else
    return 0;
#endif
}

/* Opens the master, close-on-exec (see the file comment). The fd, off
 * 0-2, or -errno. */
static int open_master(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 && errno == EINVAL) {
        m = posix_openpt(O_RDWR | O_NOCTTY);
        if (m >= 0 && fcntl(m, F_SETFD, FD_CLOEXEC) < 0) {
            int e = errno;
            close(m);
            return -e;
        }
    }
    if (m < 0)
        return -errno;
    return asp__fd_high(m);
}

#ifndef ASP_HAVE_PTSNAME_R
/* ptsname's buffer is shared: our spawns on other threads take turns. */
static pthread_mutex_t name_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

/* Opens the slave of master m by its name. The fd or -errno. */
static int open_slave_by_name(int m)
{
    char name[128];
#ifdef ASP_HAVE_PTSNAME_R
    int e = ptsname_r(m, name, sizeof name);
    if (e != 0)
        return -e;
#else
    pthread_mutex_lock(&name_lock);
    const char *n = ptsname(m);
    size_t len = n ? strlen(n) : 0;
    int e = n ? 0 : (errno ? errno : ENOTTY);
    if (n && len < sizeof name)
        memcpy(name, n, len + 1);
    else if (n)
        e = ENAMETOOLONG;
    pthread_mutex_unlock(&name_lock);
    if (e)
        return -e;
#endif
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    return s < 0 ? -errno : s;
}

/* Unlocks the pair and opens the slave (see the file comment). The fd or
 * -errno. */
static int open_slave(int m)
{
    if (grantpt(m) < 0 || unlockpt(m) < 0)
        return -errno;
#if defined(ASP_HAVE_PTY_PEER) && defined(TIOCGPTPEER)
    int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s >= 0)
        return s;
        /* An older kernel (EINVAL, ENOTTY) or an emulator: by name. */
#endif
    return open_slave_by_name(m);
}

/* Sets the window size of the terminal of fd; 0 or -errno. */
static int set_size(int fd, unsigned short rows, unsigned short cols)
{
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = rows;
    ws.ws_col = cols;
    return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

/* Applies the ASP_PTY_* flags to the terminal of fd (the system's
 * defaults stay otherwise); 0 or -errno. */
static int set_modes(int fd, unsigned flags)
{
    struct termios t;
    if (!flags)
        return 0;
    if (tcgetattr(fd, &t) < 0)
        return -errno;
    if (flags & ASP_PTY_NOECHO)
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    if (flags & ASP_PTY_RAW) {
        /* What cfmakeraw does (it is not POSIX). */
        t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
                                 IGNCR | ICRNL | IXON);
        t.c_oflag &= ~(tcflag_t)OPOST;
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
        t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
        t.c_cflag |= CS8;
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
    }
    return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

/* Opens the terminal of o (see the header and the file comment). */
int asp__pty_open(const asp_spawn_opts *o, int *master, int *slave)
{
    int m = open_master();
    if (m < 0)
        return m;
    int s = open_slave(m);
    int e = s < 0 ? s : 0;
    if (!e)
        e = set_size(m, o->pty.rows ? o->pty.rows : DEFAULT_ROWS,
                     o->pty.cols ? o->pty.cols : DEFAULT_COLS);
    if (!e)
        e = set_modes(s, o->pty.flags);
    if (!e)
        e = asp__set_nonblock(m);
    if (e) {
        close(m);
        if (s >= 0)
            close(s);
        return e;
    }
    *master = m;
    *slave = s;
    return 0;
}

/* A duplicate of master for the writer (see the header). */
int asp__pty_dup(int master)
{
    int fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? -errno : fd;
}

/* The child side (see the header). TIOCSCTTY's argument 0: never steal a
 * terminal that is some other session's (this one is brand new). */
ASP__CHILD_CODE int asp__pty_attach(int fd)
{
#ifdef TIOCSCTTY
    return ioctl(fd, TIOCSCTTY, 0);
#else
    (void)fd;
    errno = ENOTSUP; /* refused by asp__pty_validate before any spawn */
    return -1;
#endif
}

/* Public: the window size of p's terminal, through the fd of whichever
 * of its streams is still open. */
int asp_proc_resize(asp_proc *p, unsigned short rows, unsigned short cols)
{
    if (!p || p->freed || rows == 0 || cols == 0)
        return -EINVAL;
    if (!p->pty)
        return -ENOTTY;
    for (int i = 0; i < 3; i++) {
        const asp_stream *s = p->stdio[i];
        if (s && s->tty && s->fd >= 0)
            return set_size(s->fd, rows, cols);
    }
    return -EBADF;
}
