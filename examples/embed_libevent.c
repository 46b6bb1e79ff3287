/* asproc inside a libevent loop. libevent 2.1 has no hook that runs
 * before each poll, so asproc tells the glue of every change: the fds to
 * poll (asp_loop_on_fd: one persistent event per fd, dropped before
 * asproc closes the fd) and its next deadline (asp_loop_on_timeout: one
 * timer event, re-armed whenever the deadline moves -- or the
 * escalation's grace below would never fire). Every event runs asproc
 * without blocking. It works with every backend (try ASP_BACKEND=poll).
 * The children: embed_common.h.
 *
 *   cc embed_libevent.c $(pkg-config --cflags --libs libevent) -lasproc */
#define _POSIX_C_SOURCE 200809L /* clock_gettime; libuv needs POSIX types */
#include "embed_common.h"

#include <event2/event.h>
#include <stdlib.h>

typedef struct {
    struct event_base *base;
    asp_loop *loop;
    struct event *timer;
    struct event **evs; /* by fd */
    int nevs;
} glue;

/* An fd of asproc's is ready, or asproc's timer fired: asproc's turn. */
static void on_event(evutil_socket_t fd, short what, void *data)
{
    glue *g = data;
    (void)fd;
    (void)what;
    asp_loop_run(g->loop, ASP_RUN_NOWAIT);
}

/* asproc's fd callback: add, change or drop the event of fd. */
static void on_fd(asp_loop *loop, int fd, int events, void *data)
{
    glue *g = data;
    (void)loop;
    if (fd >= g->nevs) {
        int n = fd + 16;
        struct event **e = realloc(g->evs, (size_t)n * sizeof *e);
        if (!e)
            abort();
        for (int i = g->nevs; i < n; i++)
            e[i] = NULL;
        g->evs = e;
        g->nevs = n;
    }
    if (g->evs[fd]) {
        event_free(g->evs[fd]); /* deletes it from the kernel's set too */
        g->evs[fd] = NULL;
    }
    if (events == 0)
        return;
    short what = (short)(EV_PERSIST | ((events & POLLIN) ? EV_READ : 0) |
                         ((events & POLLOUT) ? EV_WRITE : 0));
    g->evs[fd] = event_new(g->base, fd, what, on_event, g);
    if (!g->evs[fd] || event_add(g->evs[fd], NULL) < 0)
        abort();
}

/* asproc's timeout callback: (re)arm or disarm the one timer event. */
static void on_timeout(asp_loop *loop, int ms, void *data)
{
    glue *g = data;
    (void)loop;
    if (ms < 0) {
        evtimer_del(g->timer);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(g->timer, &tv);
}

/* Every child is done: event_base_dispatch returns. */
static void finished(demo *d)
{
    glue *g = d->host_data;
    event_base_loopbreak(g->base);
}

/* A libevent timer of the host's own, to show the host loop keeps going. */
static void host_tick(evutil_socket_t fd, short what, void *data)
{
    demo *d = data;
    (void)fd;
    (void)what;
    printf("[%4ld ms] (a libevent timer of the host fires)\n", demo_ms(d));
}

int main(void)
{
    demo d = {.host = "libevent", .finished = finished};
    glue g = {.base = event_base_new()};
    if (!g.base || asp_loop_new(&d.loop, NULL) < 0)
        return 1;
    g.loop = d.loop;
    d.host_data = &g;
    g.timer = evtimer_new(g.base, on_event, &g);
    asp_loop_on_fd(d.loop, on_fd, &g);
    asp_loop_on_timeout(d.loop, on_timeout, &g);
    struct event *tick = evtimer_new(g.base, host_tick, &d);
    struct timeval tv = {0, 100000};
    evtimer_add(tick, &tv);
    if (demo_start(&d) == 0)
        event_base_dispatch(g.base);
    /* Tear down: freeing the asp_loop drops every fd's event. */
    int status = demo_end(&d);
    asp_loop_free(d.loop);
    event_free(tick);
    event_free(g.timer);
    free(g.evs);
    event_base_free(g.base);
    return status;
}
