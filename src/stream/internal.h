/*
 * internal.h - buffered streams over non-blocking fds: the room between
 * the reactor (below, the only thing it uses) and the process module
 * (above, which creates streams for a child's pipes or terminal).
 *
 * Files of this folder:
 *   stream.c   the producer: lifetime, filling from the fd, backpressure,
 *              EOF, the eof-grace cut, the modes, the deferred kick
 *   read.c     the consumers: a table of request kinds, each a "need
 *              more?" and a "deliver"; the public read calls
 *   capture.c  capture mode (communicate): growing capture buffers
 *   capcache.c the per-loop cache of released capture mappings
 *   forward.c  forward mode: splice to another fd, with backpressure
 *   writer.c   the write side (stdin): queue, drain, EPIPE, no SIGPIPE
 *   sync.c     the blocking forms of the stream calls
 *
 * One readable event: the backend -> io.c -> stream.c (fill, then the
 * mode's deliver) -> read.c (the consumer) -> the user's callback.
 */
#ifndef ASP_STREAM_INTERNAL_H
#define ASP_STREAM_INTERNAL_H

#include "../loop/internal.h"

#include <signal.h>

/* Where a stream is in its life. An output stream goes OPEN -> EOF (the
 * fd gave end of file or an error, and is closed) or CUT (the eof grace
 * closed it: output may be cut) -> CLOSED (the user closed it or its
 * process was freed: buffered data dropped). A writer is OPEN or CLOSED. */
enum asp__phase { ASP__PH_OPEN = 0, ASP__PH_EOF, ASP__PH_CUT, ASP__PH_CLOSED };

/* What an output stream does with what it reads. */
enum asp__mode {
    ASP__MODE_BUFFER = 0, /* into the buffer, for the consumers */
    ASP__MODE_CAPTURE,    /* into a capture (communicate) */
    ASP__MODE_FORWARD     /* on to another fd (asp_stream_forward) */
};

/* The eof grace, armed when the child exits. */
enum asp__grace {
    ASP__GR_IDLE = 0, /* the child runs (or the grace is ASP_FOREVER) */
    ASP__GR_ARMED,    /* the timer runs */
    ASP__GR_EXPIRED   /* cut as soon as the pipe is found empty */
};

/* What one read (or splice) came to. */
enum {
    ASP__FILL_BUSY = -3, /* nothing moved, the source may hold data */
    ASP__FILL_ERR = -2,
    ASP__FILL_AGAIN = -1,
    ASP__FILL_EOF = 0,
    ASP__FILL_FULL = 1,
    ASP__FILL_SHORT = 2
};

struct asp__consumer;

/* A growing capture buffer (communicate). Large captures live in an
 * mmap'd region grown with mremap and backed by huge pages where the
 * kernel allows, so growth never copies and peak memory stays at the
 * captured size. The data starts ASP__CAP_HDR bytes into the block; the
 * header says how to free it (the mapping's size, 0 for allocator
 * memory, and the cache it returns to). */
#define ASP__CAP_HDR 16
typedef struct asp__capcache asp__capcache;
typedef struct asp__capture {
    asp__capcache *cache; /* the loop's cache of mappings (capcache.c) */
    char *block;          /* header + data */
    size_t len;           /* data bytes kept */
    size_t room;          /* data bytes the block can hold */
    size_t cap;           /* 0: unlimited */
    size_t total;         /* bytes seen, kept or not */
    size_t ready;         /* block bytes known to be faulted in (mapped only) */
    int mapped;
    int small;  /* huge pages proved slow: small pages from here on */
    int slow;   /* slow huge prefault steps in a row */
    int touch;  /* MADV_POPULATE_WRITE refused: fault in by touching */
    int failed; /* memory ran out: later bytes were discarded */
} asp__capture;

/* Capture mode ends (EOF, cut, close): done(s, arg) runs once. */
typedef void (*asp__capture_done)(asp_stream *s, void *arg);

/* Forward mode's state (forward.c). */
typedef struct asp__forward {
    int fd;       /* the stream's own duplicate of the target */
    int splice;   /* splice(2) may work for this pair of fds */
    int guard;    /* the target can raise SIGPIPE (pipe, socket) */
    int blocked;  /* the target is full: reading waits for it */
    int err;      /* a write to the target failed: ends forwarding */
    size_t total; /* bytes forwarded */
    asp_io io;    /* the target's writability while blocked */
    asp_read_cb cb;
    void *data;
} asp__forward;

/* The read side of a stream (stdout, stderr, a terminal). */
typedef struct asp__reader {
    char *buf; /* buf[start, end) is unread data */
    size_t cap, start, end;
    size_t bufsize;    /* the most one read asks for */
    size_t high_water; /* polling stops when this much is buffered */
    size_t carried;    /* bytes read so far (until the pipe is grown) */
    int fixed;         /* transport size chosen: no adaptive growth */
    int nomem;         /* reading stopped for lack of memory */

    /* The consumer request (read.c). */
    const struct asp__consumer *req;
    size_t req_n; /* READ/EXACT/CHUNKS size; LINE/UNTIL/LINES limit */
    char sep[16];
    size_t seplen;
    size_t scanned; /* bytes of [start, end) known not to hold sep */
    asp_read_cb cb;
    void *cb_data;
    int paused;
    unsigned epoch; /* moves when the request, the pause or the phase
                       changes: ends a burst of line callbacks (read.c) */

    enum asp__mode mode;
    asp__capture *capture;
    asp__capture_done capture_done;
    void *capture_arg;
    asp__forward fwd;

    asp_timer grace;
    int64_t grace_ms;
    enum asp__grace grace_phase;
} asp__reader;

/* One write waiting in the stdin queue; data follows the header (copied)
 * or is referenced (communicate's input). */
typedef struct asp__wchunk {
    struct asp__wchunk *next;
    const char *data;
    size_t len, off;
} asp__wchunk;

/* The write side of a stream (stdin). */
typedef struct asp__writer {
    asp__wchunk *head, *tail;
    size_t bytes;
    int broken;  /* the pipe broke (EPIPE): the queue is dropped */
    int last;    /* the last byte written, -1 before the first: a terminal
                   needs to know whether its input ends mid-line */
    int closing; /* a terminal's writer closed by the user: its fd stays
                    open until the end-of-file characters are written */
    asp_drain_cb drain_cb;
    void *drain_data;
} asp__writer;

struct asp_stream {
    asp_loop *loop;
    int fd;
    asp_io io;
    enum asp__phase phase;
    int writer;     /* the write side: u.w, else u.r */
    int socket;     /* the transport is a socketpair */
    int tty;        /* the fd is a terminal's master (see writer.c for
                       its end of input, forward.c: never spliced) */
    unsigned busy;  /* our code is on the stack with callbacks below it */
    int doomed;     /* destroyed while busy: freed at the last release */
    int delivering; /* the deliver loop runs (requests made from a
                       callback are served by it, not by the kick) */
    asp_timer kick; /* deferred delivery: callbacks never run inside the
                       call that made a request */
    union {
        asp__reader r;
        asp__writer w;
    } u;
};

/* How a new output stream reads. */
typedef struct asp__stream_cfg {
    size_t bufsize;    /* 0: 64 KiB */
    size_t high_water; /* 0: 1 MiB */
    int64_t grace_ms;  /* 0: 2000; ASP_FOREVER: never cut */
    int fixed;         /* do not grow the pipe on bulk output */
    int socket;        /* a socketpair (no pipe ioctls, no splice out) */
    int tty;           /* a terminal's master (no pipe ioctls, no splice;
                          a writer ends with the end-of-file character) */
} asp__stream_cfg;

/* --- for the process module --- */
/* A reader over fd (owned from now on, even on failure) or a writer.
 * NULL when out of memory (fd is then closed). Reading starts with
 * asp__stream_start. */
asp_stream *asp__reader_new(asp_loop *loop, int fd, const asp__stream_cfg *cfg);
asp_stream *asp__writer_new(asp_loop *loop, int fd, const asp__stream_cfg *cfg);
void asp__stream_start(asp_stream *s);
/* Closes s (pending requests complete with -ECANCELED) and frees it once
 * no callback of it is on the stack. */
void asp__stream_destroy(asp_stream *s);
/* The child exited: output streams arm their eof grace. */
void asp__stream_child_exited(asp_stream *s);
/* The grace ends now: the stream is cut once its pipe is found empty
 * (communicate after an escalation). */
void asp__stream_expire_grace(asp_stream *s);
/* Reads what the fd holds now, then closes it as cut (see stream.c). */
void asp__stream_cut_now(asp_stream *s);
/* Reads and delivers what the fd holds now, EOF included, without
 * waiting for the poll and without cutting (see stream.c). */
void asp__stream_read_now(asp_stream *s);
/* Capture mode: what is buffered goes to c first, then every read;
 * done(s, arg) runs once when the stream ends (EOF, cut or close), in a
 * later iteration if it has ended already. stop returns to buffer mode
 * without calling done. */
void asp__stream_capture(asp_stream *s, asp__capture *c, asp__capture_done done,
                         void *arg);
void asp__stream_capture_stop(asp_stream *s);
/* Queues a chunk referencing caller memory (communicate's input). */
asp__wchunk *asp__wchunk_ref(const void *buf, size_t len);
void asp__writer_push(asp_stream *s, asp__wchunk *c);

/* --- between the files of this room --- */
void asp__stream_hold(asp_stream *s);
int asp__stream_release(asp_stream *s); /* 1: s is gone */
size_t asp__stream_avail(const asp_stream *s);
void asp__stream_update(asp_stream *s);
void asp__stream_deliver(asp_stream *s);
void asp__stream_kick(asp_stream *s);
void asp__stream_close_fd(asp_stream *s);
/* The input ended (EOF or CUT): the fd is closed at once. */
void asp__stream_end_input(asp_stream *s, enum asp__phase phase);
int asp__stream_read_into(asp_stream *s, char *dst, size_t room, size_t *n);
int asp__stream_fill(asp_stream *s);
/* Counts bytes carried (a bulk pipe is grown past 1 MiB). */
void asp__stream_carried(asp_stream *s, size_t n);
/* read.c: the consumer request. */
int asp__req_need_more(const asp_stream *s);
int asp__req_deliver(asp_stream *s);
void asp__req_end(asp_stream *s);
void asp__req_cancel(asp_stream *s, int err);
/* capture.c */
char *asp__capture_space(asp__capture *c, size_t want, size_t *room);
void asp__capture_add(asp__capture *c, const char *b, size_t n);
char *asp__capture_take(asp__capture *c, size_t *len);
void asp__capture_free(asp__capture *c);
void asp__capture_free_data(char *data);
int asp__capture_fill(asp_stream *s);
int asp__capture_deliver(asp_stream *s);
void asp__capture_end(asp_stream *s);
extern uint64_t asp__capture_slow_ns;
/* capcache.c: the per-loop cache of released capture mappings. */
asp__capcache *asp__capcache_get(asp_loop *loop);
char *asp__capcache_take(asp__capcache *k, size_t need, size_t *map);
void asp__capcache_tag(asp__capcache *k);
void asp__capcache_put(asp__capcache *k, char *block, size_t map);
extern int asp__capcache_off;
/* forward.c */
int asp__fwd_fill(asp_stream *s);
int asp__fwd_deliver(asp_stream *s);
void asp__fwd_release(asp_stream *s);
void asp__fwd_cancel(asp_stream *s, int err);
/* writer.c */
void asp__writer_update(asp_stream *s);
void asp__writer_kick(asp_stream *s);
void asp__writer_cancel(asp_stream *s);
/* asp_stream_close on a terminal's writer: the end of input (writer.c). */
void asp__writer_close_tty(asp_stream *s);
/* Closes the fd a closing writer still holds (the stream is destroyed). */
void asp__writer_drop_fd(asp_stream *s);

/* SIGPIPE-free writes (writer.c): between enter and leave the calling
 * thread has SIGPIPE blocked; leave, told that the call may have raised
 * one (check: an EPIPE, a partial splice into a socket), consumes it
 * unless one was already pending at enter (that one is someone else's). */
typedef struct asp__pipe_guard {
    sigset_t old;
    int was_pending;
} asp__pipe_guard;
void asp__pipe_guard_enter(asp__pipe_guard *g);
void asp__pipe_guard_leave(asp__pipe_guard *g, int check);

#endif
