/* asproc inside a libuv loop: asproc tells the glue of every fd to poll
 * (asp_loop_on_fd), and the glue keeps one uv_poll_t per fd -- told
 * before asproc closes an fd, so libuv's epoll never keeps a stale one.
 * A uv_prepare_t, which libuv runs before every poll, re-arms one
 * uv_timer_t from asp_loop_timeout. Both run asproc without blocking. It
 * works with every backend (try ASP_BACKEND=poll). The children:
 * embed_common.h.
 *
 *   cc embed_libuv.c $(pkg-config --cflags --libs libuv) -lasproc */
#define _POSIX_C_SOURCE 200809L /* clock_gettime; libuv needs POSIX types */
#include "embed_common.h"

#include <stdlib.h>
#include <uv.h>

typedef struct {
    uv_loop_t *uv;
    asp_loop *loop;
    uv_prepare_t prepare;
    uv_timer_t timer;
    uv_poll_t **polls; /* by fd */
    int npolls;
    int stopping;
} glue;

/* An fd of asproc's is ready, or asproc's timer fired: asproc's turn. */
static void on_poll(uv_poll_t *h, int status, int events)
{
    glue *g = h->data;
    (void)status;
    (void)events;
    asp_loop_run(g->loop, ASP_RUN_NOWAIT);
}

/* The timer for asproc's next deadline fired. */
static void on_timer(uv_timer_t *t)
{
    glue *g = t->data;
    asp_loop_run(g->loop, ASP_RUN_NOWAIT);
}

/* Frees a closed poll handle. */
static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* asproc's fd callback: start, change or stop the uv_poll_t of fd. */
static void on_fd(asp_loop *loop, int fd, int events, void *data)
{
    glue *g = data;
    (void)loop;
    if (fd >= g->npolls) {
        int n = fd + 16;
        uv_poll_t **p = realloc(g->polls, (size_t)n * sizeof *p);
        if (!p)
            abort();
        for (int i = g->npolls; i < n; i++)
            p[i] = NULL;
        g->polls = p;
        g->npolls = n;
    }
    uv_poll_t *h = g->polls[fd];
    if (events == 0) {
        /* Stop now (libuv drops the fd from its epoll at once), free
         * after libuv is done with the handle. */
        uv_poll_stop(h);
        uv_close((uv_handle_t *)h, free_handle);
        g->polls[fd] = NULL;
        return;
    }
    if (!h) {
        h = malloc(sizeof *h);
        if (!h || uv_poll_init(g->uv, h, fd) < 0)
            abort();
        h->data = g;
        g->polls[fd] = h;
    }
    uv_poll_start(h,
                  ((events & POLLIN) ? UV_READABLE : 0) |
                      ((events & POLLOUT) ? UV_WRITABLE : 0),
                  on_poll);
}

/* Before every libuv poll: arm the timer for asproc's next deadline. */
static void on_prepare(uv_prepare_t *p)
{
    glue *g = p->data;
    int ms = asp_loop_timeout(g->loop);
    if (ms < 0)
        uv_timer_stop(&g->timer);
    else
        uv_timer_start(&g->timer, on_timer, (uint64_t)ms, 0);
}

/* Every child is done: uv_run returns after this iteration. */
static void finished(demo *d)
{
    glue *g = d->host_data;
    uv_stop(g->uv);
}

/* A libuv timer of the host's own, to show the host loop keeps going. */
static void host_tick(uv_timer_t *t)
{
    demo *d = t->data;
    printf("[%4ld ms] (a libuv timer of the host fires)\n", demo_ms(d));
}

int main(void)
{
    demo d = {.host = "libuv", .finished = finished};
    glue g = {.uv = uv_default_loop()};
    uv_timer_t tick;
    if (asp_loop_new(&d.loop, NULL) < 0)
        return 1;
    g.loop = d.loop;
    d.host_data = &g;
    uv_prepare_init(g.uv, &g.prepare);
    uv_timer_init(g.uv, &g.timer);
    g.prepare.data = g.timer.data = &g;
    uv_prepare_start(&g.prepare, on_prepare);
    asp_loop_on_fd(d.loop, on_fd, &g);
    uv_timer_init(g.uv, &tick);
    tick.data = &d;
    uv_timer_start(&tick, host_tick, 100, 0);
    if (demo_start(&d) == 0)
        uv_run(g.uv, UV_RUN_DEFAULT);
    /* Tear down: freeing the asp_loop stops every fd (the uv_poll_t
     * handles close); then the glue's own handles. */
    int status = demo_end(&d);
    asp_loop_free(d.loop);
    uv_close((uv_handle_t *)&g.prepare, NULL);
    uv_close((uv_handle_t *)&g.timer, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(g.uv, UV_RUN_DEFAULT);
    free(g.polls);
    uv_loop_close(g.uv);
    return status;
}
