/*
 * config.h - which platform facilities this build uses.
 *
 * Every Linux-only path is guarded by one ASP_HAVE_* macro so that a build
 * with -DASP_PORTABLE (all of them off) is plain POSIX: the poll backend,
 * a pipe for wakeups, the self-pipe child-exit source, vfork for spawning.
 * -DASP_NO_EPOLL / -DASP_NO_KQUEUE drop one backend (BACKEND=poll).
 *
 * -DASP_FAKE_KQUEUE builds the kqueue backend on a system without kqueue;
 * it is for the tests only (`make check-kqueue`), which put a stand-in
 * <sys/event.h> first on the include path and link a user-space
 * emulation of kqueue()/kevent() into the test binary (tests/kqueue_emu).
 * A library built that way is not usable outside the test binary.
 */
#ifndef ASP_CONFIG_H
#define ASP_CONFIG_H

/* Every library file includes its room's internal header (and so this
 * one) first: the system's full interfaces (waitid, siginfo_t, pipe2,
 * splice ...) are wanted everywhere. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#if defined(__linux__) && !defined(ASP_PORTABLE)
#define ASP_HAVE_LINUX 1
#ifndef ASP_NO_EPOLL
#define ASP_HAVE_EPOLL 1
#endif
#define ASP_HAVE_EVENTFD 1
#define ASP_HAVE_SIGNALFD 1
#define ASP_HAVE_PIDFD 1
#define ASP_HAVE_CLONE 1
#define ASP_HAVE_CLOSE_RANGE 1
#define ASP_HAVE_PIPE_SZ 1
#define ASP_HAVE_PPOLL 1
#define ASP_HAVE_PIPE2 1
#define ASP_HAVE_MREMAP 1
#define ASP_HAVE_SPLICE 1
#define ASP_HAVE_PTY_PEER 1 /* TIOCGPTPEER where the headers have it */
#define ASP_HAVE_PTSNAME_R 1
#endif

#if (defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
     defined(__DragonFly__) || defined(__APPLE__) ||                        \
     defined(ASP_FAKE_KQUEUE)) &&                                           \
    !defined(ASP_NO_KQUEUE)
#define ASP_HAVE_KQUEUE 1
#endif

#if (defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
     defined(__DragonFly__)) &&                                             \
    !defined(ASP_PORTABLE)
#define ASP_HAVE_PIPE2 1
#define ASP_HAVE_PPOLL 1
#define ASP_HAVE_CLOSEFROM 1
#endif

#endif
