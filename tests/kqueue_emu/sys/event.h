/*
 * sys/event.h - a test-only stand-in for the BSD/macOS kqueue header.
 *
 * It exists so that src/loop/backend_kqueue.c compiles and runs on Linux,
 * where there is no kqueue: builds with -DASP_FAKE_KQUEUE put
 * tests/kqueue_emu first on the include path, and the test binary links
 * tests/kqueue_emu/kqueue_emu.c, which implements kqueue() and kevent()
 * in user space (see that file for what is emulated and how faithfully).
 *
 * Names, types and values follow FreeBSD's <sys/event.h>. Only what the
 * emulation implements is declared, so backend code that reaches for a
 * feature the emulation does not model fails to compile here instead of
 * passing untested. This header is never installed and never used by a
 * real BSD or macOS build, where the system's own header is found.
 */
#ifndef ASP_KQUEUE_EMU_SYS_EVENT_H
#define ASP_KQUEUE_EMU_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_PROC (-5)

/* actions */
#define EV_ADD 0x0001     /* add the event to the kqueue (or modify it) */
#define EV_DELETE 0x0002  /* delete the event from the kqueue */
#define EV_ENABLE 0x0004  /* enable it (the default on EV_ADD) */
#define EV_DISABLE 0x0008 /* disable it: it is not returned */

/* flags */
#define EV_ONESHOT 0x0010 /* delete the event after its first delivery */
#define EV_RECEIPT 0x0040 /* report every change as an EV_ERROR entry */

/* returned values */
#define EV_EOF 0x8000   /* EOF (pipe/socket peer gone, process exited) */
#define EV_ERROR 0x4000 /* error of a change, errno in .data */

/* EVFILT_PROC fflags */
#define NOTE_EXIT 0x80000000u /* the process exited; .data: wait status */

struct kevent {
    uintptr_t ident;     /* identifier: an fd, or a pid for EVFILT_PROC */
    short filter;        /* EVFILT_* */
    unsigned short flags; /* EV_* */
    unsigned int fflags; /* filter-specific flags (NOTE_*) */
    int64_t data;        /* filter-specific data */
    void *udata;         /* opaque user data, returned unchanged */
};

#define EV_SET(kevp, a, b, c, d, e, f)                                     \
    do {                                                                   \
        struct kevent *ev_set_p_ = (kevp);                                 \
        ev_set_p_->ident = (a);                                            \
        ev_set_p_->filter = (b);                                           \
        ev_set_p_->flags = (c);                                            \
        ev_set_p_->fflags = (d);                                           \
        ev_set_p_->data = (e);                                             \
        ev_set_p_->udata = (f);                                            \
    } while (0)

/* Creates a new kqueue; returns its descriptor or -1 with errno. */
int kqueue(void);

/* Applies nchanges changes in order, then (when nevents > 0 and no change
 * produced an EV_ERROR entry) waits up to timeout (NULL: forever) for
 * events. Returns the number of entries stored, or -1 with errno. */
int kevent(int kq, const struct kevent *changelist, int nchanges,
           struct kevent *eventlist, int nevents,
           const struct timespec *timeout);

#endif
