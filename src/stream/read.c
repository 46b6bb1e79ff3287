/*
 * read.c - the consumers of an output stream's buffer: one request at a
 * time, of a kind from a table. Each kind answers "does the request need
 * more bytes than the buffer holds?" (the producer keeps polling past its
 * high-water mark then) and "deliver": serve the request once from the
 * buffer, returning 1 when it delivered something (look again) and 0 when
 * nothing can be done before more bytes or EOF arrive.
 *
 * Kinds: read (up to n), exact (n), line, until (a separator), and the
 * continuous chunks and lines, which stay after delivering until EOF, a
 * cancel or an over-long line. Lines are found with memchr (continuous
 * lines: see nl_next), resuming where the last scan stopped, so a long
 * line arriving in pieces is scanned once.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define NL_SIMD 1 /* see nl_next */
#endif

typedef struct asp__consumer {
    int continuous; /* stays after delivering (chunks, lines) */
    int eof_err;    /* what EOF without a separator gives (until) */
    int (*need_more)(const asp_stream *s);
    int (*deliver)(asp_stream *s);
} asp__consumer;

/* Whether the input ended (EOF or cut). */
static int at_eof(const asp_stream *s)
{
    return s->phase == ASP__PH_EOF || s->phase == ASP__PH_CUT;
}

/* The unread bytes (NULL when nothing was ever read, never NULL + 0). */
static const char *unread(const asp_stream *s)
{
    return s->u.r.buf ? s->u.r.buf + s->u.r.start : NULL;
}

/* Ends the request before its callback (which may start another). */
void asp__req_end(asp_stream *s)
{
    s->u.r.req = NULL;
    s->u.r.scanned = 0;
    s->u.r.paused = 0;
    s->u.r.epoch++;
}

/* Calls the request's callback. The stream is held by the caller. */
static void call(asp_stream *s, int err, const char *buf, size_t len)
{
    asp__reader *r = &s->u.r;
    r->cb(s, err, buf, len, r->cb_data);
}

/* Consumes n bytes and hands them to the callback, ending a one-shot
 * request first. */
static int give(asp_stream *s, int err, size_t n)
{
    asp__reader *r = &s->u.r;
    const char *b = n ? unread(s) : NULL;
    if (!r->req->continuous)
        asp__req_end(s);
    else
        r->scanned = 0;
    r->start += n;
    call(s, err, b, n);
    return 1;
}

/* Delivers EOF (len 0) and ends the request. */
static int give_eof(asp_stream *s, int err)
{
    asp__req_end(s);
    call(s, err, NULL, 0);
    return 1;
}

/* Ends a pending request with err (close, free). */
void asp__req_cancel(asp_stream *s, int err)
{
    if (s->u.r.req)
        give_eof(s, err);
}

/* ------------------------------------------------------ read, chunks */

static int bytes_need(const asp_stream *s)
{
    return asp__stream_avail(s) == 0 && !s->u.r.paused;
}

static int bytes_deliver(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    size_t a = asp__stream_avail(s);
    if (r->paused)
        return 0;
    if (a > 0)
        return give(s, 0, (r->req_n && r->req_n < a) ? r->req_n : a);
    return at_eof(s) ? give_eof(s, 0) : 0;
}

/* ---------------------------------------------------------------- exact */

static int exact_need(const asp_stream *s)
{
    return asp__stream_avail(s) < s->u.r.req_n;
}

static int exact_deliver(asp_stream *s)
{
    size_t a = asp__stream_avail(s);
    if (a >= s->u.r.req_n)
        return give(s, 0, s->u.r.req_n);
    if (!at_eof(s))
        return 0;
    return a ? give(s, -ENODATA, a) : give_eof(s, -ENODATA);
}

/* ---------------------------------------------- line, until, lines */

/* Finds sep in the unread bytes [from, to); returns the offset just past
 * it, or 0. */
static size_t find_sep(const asp_stream *s, size_t from, size_t to)
{
    const asp__reader *r = &s->u.r;
    if (from >= to)
        return 0;
    const char *b = unread(s);
    if (r->seplen == 1) {
        const char *hit = memchr(b + from, r->sep[0], to - from);
        return hit ? (size_t)(hit - b) + 1 : 0;
    }
    while (from + r->seplen <= to) {
        const char *hit =
            memchr(b + from, r->sep[0], to - from - r->seplen + 1);
        if (!hit)
            return 0;
        size_t off = (size_t)(hit - b);
        if (!memcmp(hit, r->sep, r->seplen))
            return off + r->seplen;
        from = off + 1;
    }
    return 0;
}

/* Where a separator search resumes: bytes before it were scanned already
 * (less seplen - 1, for a separator split across reads). */
static size_t scan_from(const asp_stream *s)
{
    const asp__reader *r = &s->u.r;
    return r->scanned >= r->seplen ? r->scanned - r->seplen + 1 : 0;
}

static int sep_need(const asp_stream *s)
{
    const asp__reader *r = &s->u.r;
    size_t a = asp__stream_avail(s);
    if (r->req->continuous && r->paused)
        return 0;
    return a <= r->req_n && !find_sep(s, scan_from(s), a);
}

#ifdef NL_SIMD
/* The newline bits of the 64 bytes at p (bit i: p[i] == '\n'). */
static inline uint64_t nl_mask64(const char *p)
{
    const __m128i nl = _mm_set1_epi8('\n');
    const __m128i *v = (const __m128i *)(const void *)p;
    uint64_t a =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(v), nl));
    uint64_t b =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(v + 1), nl));
    uint64_t c =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(v + 2), nl));
    uint64_t d =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(v + 3), nl));
    return a | b << 16 | c << 32 | d << 48;
}
#endif

/* What one burst of line callbacks keeps in locals (see lines_burst). */
typedef struct burst {
    asp_stream *s;
    const char *b; /* the start of the next line */
    size_t limit;
    unsigned epoch;
    asp_read_cb cb;
    void *data;
} burst;

/* Hands out the line [u->b, nl]. Returns 0 to go on, 1 when the callback
 * moved the epoch, 2 when the line is over the limit (not delivered). */
static inline int burst_line(burst *u, const char *nl)
{
    size_t len = (size_t)(nl - u->b) + 1;
    if (len > u->limit)
        return 2;
    asp__reader *r = &u->s->u.r;
    r->start += len; /* kept current for asp_stream_buffered() */
    u->cb(u->s, 0, u->b, len, u->data);
    u->b = nl + 1;
    return r->epoch != u->epoch;
}

/* The hot path of continuous line reading: every complete line in the
 * buffer goes to the callback, with no other work per line than finding
 * it, keeping start current, the call, and one look at the epoch. Where
 * SSE2 is at hand (GNU compilers), 64 bytes at a time become a bit mask
 * of their newlines, handed out bit by bit: callgrind counted 70
 * instructions per 64-byte line with a memchr per line (33 in memchr),
 * 40 this way; the tail, under 64 bytes, and other systems use memchr.
 * The buffer bounds, the callback and its data live in locals: a callback
 * cannot consume bytes (requests made during delivery are served after
 * it), and whatever else it does that matters -- cancel, pause, resume,
 * close, free, another request -- moves the epoch, which ends the burst.
 * A line over the limit, EOF and pauses are left to sep_deliver. Returns
 * whether a line was delivered. */
static int lines_burst(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    const char *first = r->buf + r->start;
    const char *p = first + r->scanned; /* scanning resumes here */
    const char *end = r->buf + r->end;
    const char *nl;
    burst u = {s, first, r->req_n, r->epoch, r->cb, r->cb_data};
#ifdef NL_SIMD
    for (; end - p >= 64; p += 64)
        for (uint64_t m = nl_mask64(p); m; m &= m - 1)
            if (burst_line(&u, p + __builtin_ctzll(m)))
                goto stopped;
#endif
    for (; p < end && (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1)
        if (burst_line(&u, nl))
            goto stopped;
    /* From the next line's start to the end there is no newline. */
    r->scanned = (size_t)(end - u.b);
    return u.b != first;
stopped:
    /* The callback changed something, or the line is over the limit:
     * scanning starts over at the next line's start. */
    r->scanned = 0;
    return u.b != first;
}

static const asp__consumer lines_kind;

static int sep_deliver(asp_stream *s)
{
    asp__reader *r = &s->u.r;
    const asp__consumer *kind = r->req;
    size_t a = asp__stream_avail(s);
    if (kind->continuous && r->paused)
        return 0;
    if (kind == &lines_kind && a && lines_burst(s))
        return 1;
    size_t to = a < r->req_n ? a : r->req_n;
    size_t got = find_sep(s, scan_from(s), to);
    if (got)
        return give(s, 0, got);
    if (a > r->req_n)
        return give_eof(s, -EMSGSIZE); /* over the limit: nothing lost */
    r->scanned = a;
    /* limit bytes and no separator: only EOF can make this a line within
     * the limit (the last one); any further byte makes it too long. */
    if (!at_eof(s))
        return 0;
    if (a > 0)
        return give(s, kind->eof_err, a); /* the last, unterminated one */
    return give_eof(s, kind->eof_err);
}

/* ------------------------------------------------------------ the table */

static const asp__consumer read_kind = {0, 0, bytes_need, bytes_deliver};
static const asp__consumer chunks_kind = {1, 0, bytes_need, bytes_deliver};
static const asp__consumer exact_kind = {0, 0, exact_need, exact_deliver};
static const asp__consumer line_kind = {0, 0, sep_need, sep_deliver};
static const asp__consumer until_kind = {0, -ENODATA, sep_need, sep_deliver};
static const asp__consumer lines_kind = {1, 0, sep_need, sep_deliver};

/* Whether the pending request needs more bytes (none pending: no). */
int asp__req_need_more(const asp_stream *s)
{
    return s->u.r.req ? s->u.r.req->need_more(s) : 0;
}

/* Serves the pending request once. */
int asp__req_deliver(asp_stream *s)
{
    return s->u.r.req ? s->u.r.req->deliver(s) : 0;
}

/* ------------------------------------------------------------- public */

/* Whether a request may start on s: 0 or the request's errno. */
static int check_req(const asp_stream *s, asp_read_cb cb)
{
    if (!s || !cb)
        return -EINVAL;
    if (s->writer)
        return -EOPNOTSUPP;
    if (s->phase == ASP__PH_CLOSED)
        return -EBADF;
    if (s->u.r.req || s->u.r.mode != ASP__MODE_BUFFER)
        return -EBUSY;
    return 0;
}

/* Starts a request; served from the kick when it can be served now. */
static int start_req(asp_stream *s, const asp__consumer *kind, size_t n,
                     const void *sep, size_t seplen, asp_read_cb cb, void *data)
{
    int e = check_req(s, cb);
    if (e < 0)
        return e;
    asp__reader *r = &s->u.r;
    r->epoch++;
    r->req = kind;
    r->req_n = n;
    r->cb = cb;
    r->cb_data = data;
    r->scanned = 0;
    r->paused = 0;
    if (sep) {
        memcpy(r->sep, sep, seplen);
        r->seplen = seplen;
    }
    if (!s->delivering && (asp__stream_avail(s) > 0 || at_eof(s)))
        asp__stream_kick(s);
    asp__stream_update(s);
    return 0;
}

/* Up to n bytes. */
int asp_stream_read_start(asp_stream *s, size_t n, asp_read_cb cb, void *data)
{
    if (n == 0)
        return -EINVAL;
    return start_req(s, &read_kind, n, NULL, 0, cb, data);
}

/* Exactly n bytes. */
int asp_stream_readexactly_start(asp_stream *s, size_t n, asp_read_cb cb,
                                 void *data)
{
    if (n == 0)
        return -EINVAL;
    return start_req(s, &exact_kind, n, NULL, 0, cb, data);
}

/* One line. A pending line may hold more than the high-water mark:
 * polling goes on while the request needs more. */
int asp_stream_readline_start(asp_stream *s, size_t limit, asp_read_cb cb,
                              void *data)
{
    return start_req(s, &line_kind, limit ? limit : ASP_LINE_LIMIT_DEFAULT,
                     "\n", 1, cb, data);
}

/* Through a separator. */
int asp_stream_readuntil_start(asp_stream *s, const void *sep, size_t seplen,
                               size_t limit, asp_read_cb cb, void *data)
{
    if (!sep || seplen == 0 || seplen > sizeof(((asp__reader *)0)->sep))
        return -EINVAL;
    return start_req(s, &until_kind, limit ? limit : ASP_LINE_LIMIT_DEFAULT,
                     sep, seplen, cb, data);
}

/* Continuous lines. */
int asp_stream_on_lines(asp_stream *s, size_t limit, asp_read_cb cb, void *data)
{
    return start_req(s, &lines_kind, limit ? limit : ASP_LINE_LIMIT_DEFAULT,
                     "\n", 1, cb, data);
}

/* Continuous chunks. */
int asp_stream_on_chunks(asp_stream *s, size_t max, asp_read_cb cb, void *data)
{
    return start_req(s, &chunks_kind, max, NULL, 0, cb, data);
}

/* Cancels the request (or forwarding) without a callback. */
int asp_stream_read_cancel(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->writer)
        return -EALREADY;
    asp__reader *r = &s->u.r;
    if (r->mode == ASP__MODE_FORWARD)
        asp__fwd_release(s);
    else if (r->req && r->mode == ASP__MODE_BUFFER)
        asp__req_end(s);
    else
        return -EALREADY;
    asp_timer_stop(&s->kick);
    asp__stream_update(s);
    return 0;
}

/* Pauses a continuous reader. */
int asp_stream_pause(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->writer || !s->u.r.req || !s->u.r.req->continuous)
        return -EALREADY;
    s->u.r.paused = 1;
    s->u.r.epoch++;
    asp__stream_update(s);
    return 0;
}

/* Resumes a paused continuous reader. */
int asp_stream_resume(asp_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->writer || !s->u.r.paused)
        return -EALREADY;
    s->u.r.paused = 0;
    s->u.r.epoch++;
    if (!s->delivering && (asp__stream_avail(s) > 0 || at_eof(s)))
        asp__stream_kick(s);
    asp__stream_update(s);
    return 0;
}
