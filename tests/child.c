/*
 * child.c - the helper child the tests spawn. Its arguments are actions,
 * run in order:
 *
 *   out N / err N     write N bytes ('a' + i % 26) to stdout / stderr
 *   outchunks N S     write N bytes in writes of S bytes to stdout
 *   lines N           write N lines "line <i>\n" to stdout
 *   say STR / esay STR  write STR to stdout / stderr (no newline added)
 *   write FD STR      write STR to fd FD (no newline added)
 *   echo              copy stdin to stdout until EOF
 *   count             read stdin to EOF, print "<bytes>\n"
 *   sleep MS          sleep MS milliseconds
 *   ignore-term       SIGTERM ignored from here on
 *   grandchild MS     fork a grandchild that keeps stdout/stderr open for MS
 *                     ms (ignoring SIGTERM if ignore-term ran), then exits
 *   escape MS         as grandchild, but it calls setsid() first: it leaves
 *                     the process group (only a cgroup still holds it)
 *   daemon MS         a double-forked daemon: setsid, fork again, stdio to
 *                     /dev/null, then MS ms of sleep (ignoring SIGTERM if
 *                     ignore-term ran); the intermediate process exits
 *                     Both print the long-lived process's pid and "\n"
 *                     once it has left the group, before the next action.
 *   spawn N MS        fork N children that sleep MS ms, stdio /dev/null
 *   burn MS           spin until the process has used MS ms of CPU
 *   exit N            exit with N
 *   raise SIG         kill itself with signal SIG
 *   fds               print the open fds: "0 1 2\n"
 *   env NAME          print the value of NAME or "(unset)", then "\n"
 *   cwd               print the working directory and "\n"
 *   ids               print "pid pgid sid\n"
 *   sigstate          print "mask:<blocked signals> ign:<ignored signals>\n",
 *                     every signal number (1-64 on Linux, where the
 *                     kernel's own record is read: glibc's calls hide 32
 *                     and 33), each followed by ','
 *   stdin-closed      print "closed\n" if fd 0 is not open, else "open\n"
 *   nofile            print the soft and hard RLIMIT_NOFILE: "<soft> <hard>\n"
 *   blocking          print, for fds 0-2, "b" (blocking), "n" (O_NONBLOCK)
 *                     or "-" (closed), then "\n"
 *   close-stdin       close fd 0
 *   copy N            copy exactly N bytes from stdin to stdout
 *   ignore-hup        SIGHUP ignored from here on (inherited by grandchild)
 *   tty               print "<isatty 0> <isatty 1> <isatty 2> ctty=<c>
 *                     fg=<f> leader=<l>\n": c 1 if /dev/tty opens, f 1 if
 *                     our group is its foreground group, l 1 if we lead
 *                     our session
 *   ttyname           print the name of the terminal on fd 0, or "none"
 *   winsize           print the window size of the terminal on fd 1:
 *                     "<rows> <cols>\n"
 *   winch             print "ready\n", wait for SIGWINCH, then as winsize
 *
 * Without "exit" it exits 0 at the end.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

/* write(2) all of buf, retrying short writes; exits on failure. */
static void put(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(99);
        }
        buf += w;
        n -= (size_t)w;
    }
}

/* Writes n pattern bytes to fd in writes of chunk bytes. */
static void pattern(int fd, long n, long chunk)
{
    static char buf[1 << 16];
    if (chunk <= 0 || chunk > (long)sizeof buf)
        chunk = sizeof buf;
    long off = 0;
    while (off < n) {
        long k = n - off < chunk ? n - off : chunk;
        for (long i = 0; i < k; i++)
            buf[i] = (char)('a' + (off + i) % 26);
        put(fd, buf, (size_t)k);
        off += k;
    }
}

/* Prints the members 1..64 of a /proc/self/status signal mask (hex). */
static void put_hex_set(const char *hex)
{
    char line[16];
    size_t n = strspn(hex, "0123456789abcdefABCDEF");
    for (int sig = 1; sig <= 64 && (size_t)((sig - 1) / 4) < n; sig++) {
        char c = hex[n - 1 - (size_t)((sig - 1) / 4)];
        int v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        if (v & (1 << ((sig - 1) % 4))) {
            int len = snprintf(line, sizeof line, "%d,", sig);
            put(1, line, (size_t)len);
        }
    }
}

/* The sigstate action: from /proc/self/status where there is one (every
 * signal, 32 and 33 included), else through the libc calls (1-31). */
static void sigstate(void)
{
    char buf[4096], line[64];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0) {
        buf[n] = 0;
        const char *blk = strstr(buf, "\nSigBlk:");
        const char *ign = strstr(buf, "\nSigIgn:");
        if (blk && ign) {
            put(1, "mask:", 5);
            put_hex_set(blk + 9 + strspn(blk + 9, " \t"));
            put(1, " ign:", 5);
            put_hex_set(ign + 9 + strspn(ign + 9, " \t"));
            put(1, "\n", 1);
            return;
        }
    }
    sigset_t m;
    sigprocmask(SIG_BLOCK, NULL, &m);
    put(1, "mask:", 5);
    for (int s = 1; s < 32; s++)
        if (sigismember(&m, s) == 1) {
            int len = snprintf(line, sizeof line, "%d,", s);
            put(1, line, (size_t)len);
        }
    put(1, " ign:", 5);
    for (int s = 1; s < 32; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) {
            int len = snprintf(line, sizeof line, "%d,", s);
            put(1, line, (size_t)len);
        }
    }
    put(1, "\n", 1);
}

/* Sleeps ms milliseconds, resuming after signals. */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Points fds 0-2 at /dev/null (a daemon lets go of its parent's pipes). */
static void to_devnull(void)
{
    int fd = open("/dev/null", O_RDWR);
    for (int k = 0; k < 3 && fd >= 0; k++)
        dup2(fd, k);
    if (fd > 2)
        close(fd);
}

/* escape / daemon: the long-lived process prints its pid once it has
 * left the group, and the caller goes on only after that. */
static void escape(int daemon, long ms, int ignore_term)
{
    int ready[2];
    char line[32], b;
    if (pipe(ready) < 0)
        _exit(96);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        setsid();
        if (daemon && fork() != 0)
            _exit(0);
        int len = snprintf(line, sizeof line, "%d\n", (int)getpid());
        put(1, line, (size_t)len);
        if (write(ready[1], "r", 1) != 1)
            _exit(96);
        close(ready[1]);
        if (daemon)
            to_devnull();
        if (ignore_term)
            signal(SIGTERM, SIG_IGN);
        sleep_ms(ms);
        _exit(0);
    }
    close(ready[1]);
    while (read(ready[0], &b, 1) < 0 && errno == EINTR)
        ;
    close(ready[0]);
    if (daemon)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

static volatile sig_atomic_t winched;

static void on_winch(int sig)
{
    (void)sig;
    winched = 1;
}

/* Prints the window size of the terminal on fd 1. */
static void print_winsize(void)
{
    char line[64];
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    if (ioctl(1, TIOCGWINSZ, &ws) < 0)
        _exit(96);
    int len = snprintf(line, sizeof line, "%u %u\n", (unsigned)ws.ws_row,
                       (unsigned)ws.ws_col);
    put(1, line, (size_t)len);
}

/* "winch": SIGWINCH is blocked before "ready" goes out, so the signal
 * cannot come between the two and be missed; then waits for it. */
static void wait_winch(void)
{
    sigset_t block, old;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sigemptyset(&block);
    sigaddset(&block, SIGWINCH);
    sigprocmask(SIG_BLOCK, &block, &old);
    sigaction(SIGWINCH, &sa, NULL);
    put(1, "ready\n", 6);
    while (!winched)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    print_winsize();
}

/* "tty": what the terminal situation of this process is. */
static void print_tty(void)
{
    char line[128];
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    int fg = fd >= 0 && tcgetpgrp(fd) == getpgrp();
    if (fd >= 0)
        close(fd);
    int len = snprintf(line, sizeof line, "%d %d %d ctty=%d fg=%d leader=%d\n",
                       isatty(0), isatty(1), isatty(2), fd >= 0, fg,
                       getsid(0) == getpid());
    put(1, line, (size_t)len);
}

/* "copy N": exactly n bytes from stdin to stdout. */
static void copy_n(long n)
{
    char buf[4096];
    while (n > 0) {
        ssize_t r = read(0, buf, n < (long)sizeof buf ? (size_t)n : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            _exit(95);
        put(1, buf, (size_t)r);
        n -= r;
    }
}

/* Runs the actions. */
int main(int argc, char **argv)
{
    char line[256];
    int ignore_term = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *arg = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "out") || !strcmp(a, "err")) {
            pattern(a[0] == 'o' ? 1 : 2, atol(arg), 0);
            i++;
        } else if (!strcmp(a, "outchunks")) {
            pattern(1, atol(arg), i + 2 < argc ? atol(argv[i + 2]) : 0);
            i += 2;
        } else if (!strcmp(a, "lines")) {
            long n = atol(arg);
            for (long k = 0; k < n; k++) {
                int len = snprintf(line, sizeof line, "line %ld\n", k);
                put(1, line, (size_t)len);
            }
            i++;
        } else if (!strcmp(a, "say") || !strcmp(a, "esay")) {
            put(a[0] == 's' ? 1 : 2, arg, strlen(arg));
            i++;
        } else if (!strcmp(a, "write")) {
            const char *str = i + 2 < argc ? argv[i + 2] : "";
            put(atoi(arg), str, strlen(str));
            i += 2;
        } else if (!strcmp(a, "echo") || !strcmp(a, "count")) {
            static char buf[1 << 16];
            long total = 0;
            ssize_t r;
            while ((r = read(0, buf, sizeof buf)) != 0) {
                if (r < 0) {
                    if (errno == EINTR)
                        continue;
                    _exit(98);
                }
                total += r;
                if (a[0] == 'e')
                    put(1, buf, (size_t)r);
            }
            if (a[0] == 'c') {
                int len = snprintf(line, sizeof line, "%ld\n", total);
                put(1, line, (size_t)len);
            }
        } else if (!strcmp(a, "sleep")) {
            sleep_ms(atol(arg));
            i++;
        } else if (!strcmp(a, "ignore-term")) {
            signal(SIGTERM, SIG_IGN);
            ignore_term = 1;
        } else if (!strcmp(a, "grandchild")) {
            long ms = atol(arg);
            i++;
            pid_t pid = fork();
            if (pid == 0) {
                if (ignore_term)
                    signal(SIGTERM, SIG_IGN);
                sleep_ms(ms);
                _exit(0);
            }
        } else if (!strcmp(a, "escape") || !strcmp(a, "daemon")) {
            long ms = atol(arg);
            i++;
            escape(a[0] == 'd', ms, ignore_term);
        } else if (!strcmp(a, "spawn")) {
            long n = atol(arg), ms = i + 2 < argc ? atol(argv[i + 2]) : 0;
            i += 2;
            for (long k = 0; k < n; k++)
                if (fork() == 0) {
                    to_devnull();
                    sleep_ms(ms);
                    _exit(0);
                }
        } else if (!strcmp(a, "burn")) {
            /* CPU time, not wall time: a loaded machine still gets it. */
            struct timespec t;
            long ms = atol(arg);
            i++;
            do
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
            while (t.tv_sec * 1000 + t.tv_nsec / 1000000 < ms);
        } else if (!strcmp(a, "exit")) {
            return atoi(arg);
        } else if (!strcmp(a, "raise")) {
            signal(atoi(arg), SIG_DFL);
            raise(atoi(arg));
            i++;
        } else if (!strcmp(a, "fds")) {
            DIR *d = opendir("/proc/self/fd");
            int dfd = dirfd(d);
            struct dirent *e;
            int fds[1024], n = 0;
            while ((e = readdir(d)) != NULL && n < 1024)
                if (e->d_name[0] != '.' && atoi(e->d_name) != dfd)
                    fds[n++] = atoi(e->d_name);
            closedir(d);
            /* Sort for a stable answer. */
            for (int x = 0; x < n; x++)
                for (int y = x + 1; y < n; y++)
                    if (fds[y] < fds[x]) {
                        int t = fds[x];
                        fds[x] = fds[y];
                        fds[y] = t;
                    }
            for (int x = 0; x < n; x++) {
                int len = snprintf(line, sizeof line, x ? " %d" : "%d", fds[x]);
                put(1, line, (size_t)len);
            }
            put(1, "\n", 1);
        } else if (!strcmp(a, "env")) {
            const char *v = getenv(arg);
            put(1, v ? v : "(unset)", strlen(v ? v : "(unset)"));
            put(1, "\n", 1);
            i++;
        } else if (!strcmp(a, "cwd")) {
            if (!getcwd(line, sizeof line))
                strcpy(line, "?");
            put(1, line, strlen(line));
            put(1, "\n", 1);
        } else if (!strcmp(a, "ids")) {
            int len = snprintf(line, sizeof line, "%d %d %d\n", (int)getpid(),
                               (int)getpgid(0), (int)getsid(0));
            put(1, line, (size_t)len);
        } else if (!strcmp(a, "sigstate")) {
            sigstate();
        } else if (!strcmp(a, "stdin-closed")) {
            const char *r = fcntl(0, F_GETFD) < 0 ? "closed\n" : "open\n";
            put(1, r, strlen(r));
        } else if (!strcmp(a, "nofile")) {
            struct rlimit rl;
            getrlimit(RLIMIT_NOFILE, &rl);
            int len = snprintf(line, sizeof line, "%llu %llu\n",
                               (unsigned long long)rl.rlim_cur,
                               (unsigned long long)rl.rlim_max);
            put(1, line, (size_t)len);
        } else if (!strcmp(a, "blocking")) {
            for (int fd = 0; fd < 3; fd++) {
                int fl = fcntl(fd, F_GETFL);
                put(1, fl < 0 ? "-" : (fl & O_NONBLOCK) ? "n" : "b", 1);
            }
            put(1, "\n", 1);
        } else if (!strcmp(a, "close-stdin")) {
            close(0);
        } else if (!strcmp(a, "copy")) {
            copy_n(atol(arg));
            i++;
        } else if (!strcmp(a, "ignore-hup")) {
            signal(SIGHUP, SIG_IGN);
        } else if (!strcmp(a, "tty")) {
            print_tty();
        } else if (!strcmp(a, "ttyname")) {
            const char *n = ttyname(0);
            put(1, n ? n : "none", strlen(n ? n : "none"));
            put(1, "\n", 1);
        } else if (!strcmp(a, "winsize")) {
            print_winsize();
        } else if (!strcmp(a, "winch")) {
            wait_winch();
        } else {
            fprintf(stderr, "child: unknown action %s\n", a);
            return 97;
        }
    }
    return 0;
}
