/*
 * asprun_pty.c - asprun --pty: COMMAND runs on a pseudo-terminal of its
 * own; its output is forwarded to asprun's stdout, asprun's stdin is
 * copied to its input, and asprun's window size follows it.
 *
 * When asprun's stdin is a terminal, it is put in raw mode for the run
 * (and put back after), so that keys -- ^C included -- reach COMMAND's
 * terminal as typed and its own line discipline decides; the child's
 * terminal stays in its normal (canonical) modes. When it is not, the
 * child's echo is off: piped input would come back in the output.
 *
 * The run ends when COMMAND has exited AND its terminal is drained (the
 * forward's callback): the exit alone would lose what it wrote last.
 */
#define _GNU_SOURCE
#include "asprun.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Input waiting for the child's terminal past this: stop reading ours. */
#define IN_HIGH ((size_t)1 << 20)

/* Our terminal's window size into rows and cols (left alone when none). */
static void our_size(unsigned short *rows, unsigned short *cols)
{
    struct winsize ws;
    for (int fd = 0; fd < 3; fd++)
        if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
            *rows = ws.ws_row;
            *cols = ws.ws_col;
            return;
        }
}

/* --pty: all three fds on one terminal, sized as asked or as ours. */
void pty_spawn_opts(const opts *o, asp_spawn_opts *so)
{
    for (int i = 0; i < 3; i++)
        so->stdio[i].mode = ASP_STDIO_PTY;
    so->pty.rows = o->rows;
    so->pty.cols = o->cols;
    if (!o->rows || !o->cols)
        our_size(&so->pty.rows, &so->pty.cols);
    if (!isatty(0))
        so->pty.flags |= ASP_PTY_NOECHO;
}

/* The output forward ended: the terminal is drained. */
static void on_drained(asp_stream *s, int err, const char *buf, size_t len,
                       void *data)
{
    run *r = data;
    (void)s;
    (void)buf;
    (void)len;
    if (err && err != -ECANCELED)
        fprintf(stderr, "asprun: output: %s\n", asp_strerror(err));
    r->drained = 1;
    run_check_finished(r);
}

/* Our input ended: the child's terminal gets its end of file. */
static void input_eof(run *r)
{
    if (r->in_watched)
        asp_io_stop(&r->in_io);
    r->in_watched = 0;
    asp_stream *in = asp_proc_stdin(r->p);
    if (in)
        asp_stream_close(in);
}

/* The child's terminal took its queued input: read ours again. */
static void on_input_drained(asp_stream *s, int err, void *data)
{
    run *r = data;
    (void)s;
    if (err == 0 && r->in_watched)
        asp_io_start(&r->in_io, ASP_READ);
}

/* Our stdin is readable: copy what is there. */
static void on_input(asp_io *w, int events, void *data)
{
    run *r = data;
    char buf[65536];
    (void)events;
    ssize_t n = read(asp_io_fd(w), buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    asp_stream *in = asp_proc_stdin(r->p);
    if (n <= 0 || !in || asp_stream_write(in, buf, (size_t)n) < 0) {
        input_eof(r);
        return;
    }
    if (asp_stream_buffered(in) > IN_HIGH &&
        asp_stream_drain_start(in, on_input_drained, r) == 0)
        asp_io_stop(w); /* backpressure: the drain restarts it */
}

/* A stdin the loop cannot watch (a regular file, /dev/null with epoll):
 * it never blocks, so it is copied at once. */
static void copy_all_input(run *r)
{
    char buf[65536];
    ssize_t n;
    asp_stream *in = asp_proc_stdin(r->p);
    while (in && (n = read(0, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || asp_stream_write(in, buf, (size_t)n) < 0)
            break;
    }
    input_eof(r);
}

/* Puts our terminal in raw mode (if stdin is one), remembering it. */
static void raw_mode(run *r)
{
    struct termios t;
    if (!isatty(0) || tcgetattr(0, &r->saved) < 0)
        return;
    t = r->saved;
    cfmakeraw(&t);
    if (tcsetattr(0, TCSANOW, &t) == 0)
        r->raw = 1;
}

/* --pty: starts both copies. */
int pty_start(run *r)
{
    int e = asp_stream_forward_start(asp_proc_stdout(r->p), STDOUT_FILENO,
                                     on_drained, r);
    if (e < 0) {
        fprintf(stderr, "asprun: output: %s\n", asp_strerror(e));
        return e;
    }
    raw_mode(r);
    asp_io_init(r->loop, &r->in_io, 0, on_input, r);
    /* Our stdin does not keep the run going: the child's end does. */
    asp_io_unref(&r->in_io);
    if (asp_io_start(&r->in_io, ASP_READ) == 0)
        r->in_watched = 1;
    else
        copy_all_input(r);
    return 0;
}

/* --pty: our window size, passed on. */
void pty_resize(run *r)
{
    unsigned short rows = 0, cols = 0;
    our_size(&rows, &cols);
    if (rows && cols)
        asp_proc_resize(r->p, rows, cols);
}

/* --pty: the input copy stops; our terminal is put back. */
void pty_finish(run *r)
{
    if (r->in_watched)
        asp_io_stop(&r->in_io);
    r->in_watched = 0;
    if (r->raw)
        tcsetattr(0, TCSANOW, &r->saved);
    r->raw = 0;
}
