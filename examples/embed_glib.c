/* asproc inside GLib's main loop, by the query route: a GSource asks
 * asproc, before every GLib poll, which fds to poll (asp_loop_pollfds)
 * and how long it may sleep (asp_loop_timeout), and runs asproc without
 * blocking when one of them is ready or the time has come. It works with
 * every backend (try ASP_BACKEND=poll). The children: embed_common.h.
 *
 *   cc embed_glib.c $(pkg-config --cflags --libs glib-2.0) -lasproc */
#define _POSIX_C_SOURCE 200809L /* clock_gettime; libuv needs POSIX types */
#include "embed_common.h"

#include <glib.h>
#include <stdlib.h>

#define MAX_FDS 64

/* The source: asproc's loop and one GPollFD slot per fd it polls (GLib
 * keeps pointers to the slots, so they never move). */
typedef struct {
    GSource base;
    asp_loop *loop;
    GPollFD slot[MAX_FDS];
    int used[MAX_FDS];
} AspSource;

/* Brings the source's GPollFDs in line with what asproc wants. Only
 * what changed is removed or added: each change wakes GLib's poll. */
static void sync_fds(AspSource *a)
{
    struct pollfd want[MAX_FDS];
    int n = asp_loop_pollfds(a->loop, want, MAX_FDS);
    if (n < 0 || n > MAX_FDS)
        abort(); /* an example's limit: size the arrays for your use */
    for (int i = 0; i < MAX_FDS; i++) {
        if (!a->used[i])
            continue;
        int keep = 0;
        for (int j = 0; j < n && !keep; j++)
            keep = want[j].fd == a->slot[i].fd &&
                   want[j].events == (short)a->slot[i].events;
        if (!keep) {
            g_source_remove_poll(&a->base, &a->slot[i]);
            a->used[i] = 0;
        }
    }
    for (int j = 0; j < n; j++) {
        int have = 0, free_slot = -1;
        for (int i = 0; i < MAX_FDS && !have; i++) {
            if (a->used[i])
                have = a->slot[i].fd == want[j].fd;
            else if (free_slot < 0)
                free_slot = i;
        }
        if (have)
            continue;
        /* POLLIN and POLLOUT are G_IO_IN and G_IO_OUT on POSIX systems. */
        a->slot[free_slot] =
            (GPollFD){.fd = want[j].fd, .events = (gushort)want[j].events};
        a->used[free_slot] = 1;
        g_source_add_poll(&a->base, &a->slot[free_slot]);
    }
}

/* Before GLib polls: the fds, and how long GLib may sleep for asproc. */
static gboolean asp_prepare(GSource *s, gint *timeout)
{
    AspSource *a = (AspSource *)s;
    sync_fds(a);
    *timeout = asp_loop_timeout(a->loop);
    return *timeout == 0;
}

/* After GLib polled: is one of asproc's fds ready, or a timer due? */
static gboolean asp_check(GSource *s)
{
    AspSource *a = (AspSource *)s;
    for (int i = 0; i < MAX_FDS; i++)
        if (a->used[i] && a->slot[i].revents)
            return TRUE;
    return asp_loop_timeout(a->loop) == 0;
}

/* asproc's turn: one non-blocking run. */
static gboolean asp_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    AspSource *a = (AspSource *)s;
    (void)cb;
    (void)data;
    asp_loop_run(a->loop, ASP_RUN_NOWAIT);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs asp_source_funcs = {asp_prepare, asp_check, asp_dispatch,
                                        NULL,        NULL,      NULL};

/* Every child is done: leave g_main_loop_run. */
static void finished(demo *d)
{
    g_main_loop_quit(d->host_data);
}

/* A GLib timer of the host's own, to show the host loop keeps going. */
static gboolean host_tick(gpointer data)
{
    demo *d = data;
    printf("[%4ld ms] (a GLib timer of the host fires)\n", demo_ms(d));
    return G_SOURCE_REMOVE;
}

int main(void)
{
    demo d = {.host = "glib", .finished = finished};
    if (asp_loop_new(&d.loop, NULL) < 0)
        return 1;
    GMainLoop *ml = g_main_loop_new(NULL, FALSE);
    d.host_data = ml;
    GSource *src = g_source_new(&asp_source_funcs, sizeof(AspSource));
    ((AspSource *)src)->loop = d.loop;
    g_source_attach(src, NULL);
    g_timeout_add(100, host_tick, &d);
    if (demo_start(&d) == 0)
        g_main_loop_run(ml);
    g_source_destroy(src);
    g_source_unref(src);
    g_main_loop_unref(ml);
    int status = demo_end(&d);
    asp_loop_free(d.loop);
    return status;
}
