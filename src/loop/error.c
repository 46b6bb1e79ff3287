/*
 * error.c - asp_strerror and the version calls.
 *
 * strerror() is neither guaranteed thread-safe nor stable in its wording,
 * so the library carries its own table. Errors that carry a library
 * meaning are worded in that meaning.
 */
#include "internal.h"

#include <errno.h>

/* Returns a static description of err (a negative errno, or 0). */
const char *asp_strerror(int err)
{
    switch (-err) {
    case 0: return "success";
    case EPERM: return "operation not permitted";
    case ENOENT: return "no such file or directory";
    case ESRCH: return "no such process (the child was already reaped)";
    case EINTR: return "interrupted";
    case EIO: return "input/output error";
    case E2BIG: return "argument list too long";
    case ENOEXEC: return "not an executable format";
    case EBADF: return "bad file descriptor (closed or not open)";
    case ECHILD: return "no child process (or a loop inherited through fork)";
    case EAGAIN: return "resource temporarily unavailable (process limit?)";
    case ENOMEM: return "out of memory";
    case EACCES: return "permission denied";
    case EFAULT: return "bad address";
    case EBUSY: return "busy (operation pending, or called from a callback)";
    case EEXIST: return "already exists (another watcher on this fd)";
    case ENOTDIR: return "not a directory";
    case EISDIR: return "is a directory";
    case EINVAL: return "invalid argument";
    case ENFILE: return "too many open files in the system";
    case EMFILE: return "too many open files";
    case ETXTBSY: return "text file busy";
    case ENOSPC: return "no space left";
    case EPIPE: return "broken pipe (the child stopped reading)";
    case ENAMETOOLONG: return "file name too long";
    case ELOOP: return "too many levels of symbolic links";
    case ENODATA: return "end of stream before the requested data";
    case EMSGSIZE: return "line longer than the limit";
    /* ENOTSUP is the same number on Linux: one wording for asp_loop_new
     * (backend or source), asp_loop_fd (poll) and the stream calls. */
    case EOPNOTSUPP:
        return "not supported (not built in, not by this "
               "kernel or backend, or not in this direction "
               "of a stream)";
    case ENOSYS: return "not implemented by this kernel";
    case ETIMEDOUT: return "timed out";
    case EALREADY: return "already in progress, or nothing pending";
    case ECANCELED: return "cancelled";
    case EDEADLK: return "would wait forever (no active work)";
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    case ENOTSUP:
        return "not supported (not built in, not by this kernel "
               "or backend, or not in this direction of a "
               "stream)";
#endif
    default: return err < 0 ? "unknown error" : "not an error code";
    }
}

/* The linked library's version number. */
int asp_version(void)
{
    return ASP_VERSION;
}

/* The linked library's version string. */
const char *asp_version_string(void)
{
    return ASP_VERSION_STRING;
}
