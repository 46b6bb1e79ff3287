/*
 * emu_selftest.c - checks that the kqueue emulation behaves as kqueue(2)
 * documents, for every behaviour the kqueue backend relies on.
 *
 * The suites run through the emulation only prove something about the
 * backend if the emulation is right, so its semantics are pinned down
 * here, each against the sentence of the FreeBSD manual it models. Built
 * and run by `make check-kqueue` (linked with the same wrappers as the
 * test binary). Prints "kqueue-emu: N passed, N failed".
 */
#define _GNU_SOURCE
#include <sys/event.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                      \
    } while (0)

static const struct timespec zero = {0, 0};

/* Submits one change without an event list; returns kevent's result. */
static int change(int kq, uintptr_t ident, short filter, unsigned short flags,
                  unsigned fflags)
{
    struct kevent ch;
    EV_SET(&ch, ident, filter, flags, fflags, 0, NULL);
    return kevent(kq, &ch, 1, NULL, 0, NULL);
}

/* Change-list errors: -1/errno without room, EV_ERROR entries with room. */
static void test_change_errors(void)
{
    int kq = kqueue();
    int p[2];
    CHECK(kq >= 0 && pipe(p) == 0);

    errno = 0;
    CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_DELETE, 0) == -1 &&
          errno == ENOENT);
    errno = 0;
    CHECK(change(kq, 999, EVFILT_READ, EV_ADD, 0) == -1 && errno == EBADF);
    errno = 0;
    CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD | 0x0020, 0) == -1 &&
          errno == EINVAL); /* EV_CLEAR is not modelled: refused */

    /* With room: every failure is an EV_ERROR entry, and no wait. */
    struct kevent ch[3], out[3];
    EV_SET(&ch[0], (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    EV_SET(&ch[1], 999, EVFILT_READ, EV_ADD, 0, 0, NULL);
    EV_SET(&ch[2], (uintptr_t)p[1], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    int n = kevent(kq, ch, 3, out, 3, NULL); /* NULL: would block forever */
    CHECK(n == 2);
    CHECK(out[0].flags == EV_ERROR && out[0].data == EBADF &&
          out[0].ident == 999);
    CHECK(out[1].flags == EV_ERROR && out[1].data == ENOENT);

    /* EV_RECEIPT: a successful change reports data 0. */
    EV_SET(&ch[0], (uintptr_t)p[1], EVFILT_WRITE, EV_ADD | EV_RECEIPT, 0, 0,
           NULL);
    n = kevent(kq, ch, 1, out, 1, NULL);
    CHECK(n == 1 && (out[0].flags & EV_ERROR) && out[0].data == 0);

    close(p[0]);
    close(p[1]);
    close(kq);
}

/* EVFILT_READ/WRITE on pipes: level-triggered, data, EV_EOF. */
static void test_pipe_filters(void)
{
    int kq = kqueue();
    int p[2];
    struct kevent ev[4];
    CHECK(kq >= 0 && pipe(p) == 0);
    CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0) == 0);
    CHECK(kevent(kq, NULL, 0, ev, 4, &zero) == 0);

    CHECK(write(p[1], "abc", 3) == 3);
    int n = kevent(kq, NULL, 0, ev, 4, &zero);
    CHECK(n == 1 && ev[0].filter == EVFILT_READ && ev[0].data == 3 &&
          !(ev[0].flags & EV_EOF));
    /* Level-triggered: still there until read. */
    CHECK(kevent(kq, NULL, 0, ev, 4, &zero) == 1);

    CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_DISABLE, 0) == 0);
    CHECK(kevent(kq, NULL, 0, ev, 4, &zero) == 0);
    CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ENABLE, 0) == 0);
    CHECK(kevent(kq, NULL, 0, ev, 4, &zero) == 1);

    /* Writer gone: EV_EOF with the bytes still buffered, then with 0. */
    close(p[1]);
    n = kevent(kq, NULL, 0, ev, 4, &zero);
    CHECK(n == 1 && (ev[0].flags & EV_EOF) && ev[0].data == 3);
    char buf[8];
    CHECK(read(p[0], buf, sizeof buf) == 3);
    n = kevent(kq, NULL, 0, ev, 4, &zero);
    CHECK(n == 1 && (ev[0].flags & EV_EOF) && ev[0].data == 0);
    close(p[0]);

    /* Reader gone: EVFILT_WRITE with EV_EOF. */
    CHECK(pipe(p) == 0);
    CHECK(change(kq, (uintptr_t)p[1], EVFILT_WRITE, EV_ADD, 0) == 0);
    n = kevent(kq, NULL, 0, ev, 4, &zero);
    CHECK(n == 1 && ev[0].filter == EVFILT_WRITE && ev[0].data > 0 &&
          !(ev[0].flags & EV_EOF));
    close(p[0]);
    n = kevent(kq, NULL, 0, ev, 4, &zero);
    CHECK(n == 1 && (ev[0].flags & EV_EOF));
    close(p[1]);
    close(kq);
}

/* "Calling close() on a file descriptor will remove any kevents that
 * reference the descriptor." Also through a dup'd kqueue. */
static void test_close_removes(void)
{
    int kq = kqueue();
    int p[2];
    struct kevent ev[2];
    CHECK(kq >= 0 && pipe(p) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0) == 0);
    close(p[0]);
    errno = 0;
    CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_DELETE, 0) == -1 &&
          errno == EBADF);
    /* The number comes back as a new pipe: no knote on it. */
    int q[2];
    CHECK(pipe(q) == 0 && q[0] == p[0]);
    CHECK(write(q[1], "y", 1) == 1);
    CHECK(kevent(kq, NULL, 0, ev, 2, &zero) == 0);
    errno = 0;
    CHECK(change(kq, (uintptr_t)q[0], EVFILT_READ, EV_DELETE, 0) == -1 &&
          errno == ENOENT);

    /* A dup'd kqueue is the same queue; the last close ends it. */
    int kq2 = fcntl(kq, F_DUPFD_CLOEXEC, 50);
    CHECK(kq2 >= 50);
    close(kq);
    CHECK(change(kq2, (uintptr_t)q[0], EVFILT_READ, EV_ADD, 0) == 0);
    CHECK(kevent(kq2, NULL, 0, ev, 2, &zero) == 1);
    close(kq2);
    errno = 0;
    CHECK(kevent(kq2, NULL, 0, ev, 2, &zero) == -1 && errno == EBADF);
    close(q[0]);
    close(q[1]);
    close(p[1]);
}

/* EVFILT_PROC/NOTE_EXIT: fires once at exit, does not reap, status in
 * data; a zombie fires at once; an unknown pid is ESRCH. */
static void test_proc(void)
{
    int kq = kqueue();
    struct kevent ev[2];
    CHECK(kq >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
        _exit(7);
    }
    CHECK(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD | EV_ONESHOT,
                 NOTE_EXIT) == 0);
    CHECK(kevent(kq, NULL, 0, ev, 2, &zero) == 0);
    struct timespec two = {2, 0};
    int n = kevent(kq, NULL, 0, ev, 2, &two);
    CHECK(n == 1 && ev[0].filter == EVFILT_PROC &&
          ev[0].ident == (uintptr_t)pid && (ev[0].fflags & NOTE_EXIT) &&
          (ev[0].flags & EV_EOF));
    CHECK(n == 1 && WIFEXITED((int)ev[0].data) &&
          WEXITSTATUS((int)ev[0].data) == 7);
    /* One-shot: gone after delivery. */
    CHECK(kevent(kq, NULL, 0, ev, 2, &zero) == 0);
    errno = 0;
    CHECK(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_DELETE, 0) == -1 &&
          errno == ENOENT);
    /* Not reaped by the event: the zombie is still ours. Watching a zombie
     * fires at once on FreeBSD and fails with ESRCH on macOS. */
    const char *flavor = getenv("ASP_KQEMU_FLAVOR");
    if (flavor && strcmp(flavor, "macos") == 0) {
        errno = 0;
        CHECK(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT) ==
                  -1 &&
              errno == ESRCH);
    } else {
        CHECK(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT) == 0);
        CHECK(kevent(kq, NULL, 0, ev, 2, &zero) == 1);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 7);
    errno = 0;
    CHECK(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT) == -1 &&
          errno == ESRCH);
    close(kq);
}

/* A signal interrupts the wait with EINTR. */
static void on_alarm(int sig)
{
    (void)sig;
}

static void test_eintr(void)
{
    int kq = kqueue();
    struct kevent ev[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    struct timespec five = {5, 0};
    errno = 0;
    CHECK(kevent(kq, NULL, 0, ev, 1, &five) == -1 && errno == EINTR);
    close(kq);
}

/* Runs every check. */
int main(void)
{
    test_change_errors();
    test_pipe_filters();
    test_close_removes();
    test_proc();
    test_eintr();
    printf("kqueue-emu: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
