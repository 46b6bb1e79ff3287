/*
 * env.c - the child's environment and the list of paths to try for the
 * program, both built in the parent so the child only calls execve.
 *
 * PATH: the child's environment as it will be, when it has a PATH (as
 * Python's subprocess does); else the parent's PATH (as posix_spawnp,
 * execvp and Go's os/exec do); else "/bin:/usr/bin". So a replaced
 * environment without PATH still finds programs where the parent would.
 * An empty PATH element means the current directory, as POSIX has it.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Length of the NAME part of "NAME=VALUE" (or of a lone "NAME"). */
static size_t name_len(const char *e)
{
    const char *eq = strchr(e, '=');
    return eq ? (size_t)(eq - e) : strlen(e);
}

/* Whether entry e is overridden or removed by an override list. */
static int overridden(const char *e, const char *const *ov)
{
    size_t n = name_len(e);
    for (; *ov; ov++)
        if (name_len(*ov) == n && !strncmp(*ov, e, n))
            return 1;
    return 0;
}

/* Builds the envp for the child. For INHERIT it is environ itself; for
 * REPLACE the given array after validation; for OVERRIDE a new array of
 * borrowed strings (*owned, freed by the caller after the spawn). */
int asp__env_build(const asp_spawn_opts *o, char *const **envp, void **owned)
{
    *owned = NULL;
    if (o->env_mode == ASP_ENV_INHERIT) {
        *envp = environ;
        return 0;
    }
    static const char *const empty[] = {NULL};
    const char *const *env = o->env ? o->env : empty;
    size_t n = 0;
    for (const char *const *e = env; *e; e++, n++) {
        /* A name is needed; REPLACE also needs "=" in every entry. */
        if (name_len(*e) == 0)
            return -EINVAL;
        if (o->env_mode == ASP_ENV_REPLACE && !strchr(*e, '='))
            return -EINVAL;
    }
    if (o->env_mode == ASP_ENV_REPLACE) {
        *envp = (char *const *)env;
        return 0;
    }
    size_t total = n;
    for (char **e = environ; e && *e; e++)
        total++;
    const char **arr = asp__calloc(total + 1, sizeof *arr);
    if (!arr)
        return -ENOMEM;
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (!overridden(*e, env))
            arr[k++] = *e;
    for (const char *const *e = env; *e; e++) {
        /* Later entries win over earlier ones for the same name. */
        if (!strchr(*e, '=') || overridden(*e, e + 1))
            continue;
        arr[k++] = *e;
    }
    arr[k] = NULL;
    *envp = (char *const *)arr;
    *owned = arr;
    return 0;
}

/* The PATH value of envp, or NULL. */
static const char *env_path(char *const *envp)
{
    for (; envp && *envp; envp++)
        if (!strncmp(*envp, "PATH=", 5))
            return *envp + 5;
    return NULL;
}

/* Builds the candidate paths for name: itself when it holds a '/', else
 * one per PATH element. One allocation holds the array and the strings. */
int asp__paths_build(const char *name, char *const *envp,
                     const char *const **paths, int *npaths, void **owned)
{
    size_t nlen = strlen(name);
    *owned = NULL;
    if (nlen == 0)
        return -EINVAL;
    if (strchr(name, '/')) {
        const char **arr = asp__malloc(2 * sizeof *arr);
        if (!arr)
            return -ENOMEM;
        arr[0] = name;
        arr[1] = NULL;
        *paths = arr;
        *npaths = 1;
        *owned = arr;
        return 0;
    }
    const char *path = env_path(envp);
    if (!path)
        path = env_path(environ);
    if (!path)
        path = "/bin:/usr/bin";
    size_t plen = strlen(path);
    size_t nelem = 1;
    for (const char *c = path; *c; c++)
        nelem += *c == ':';
    /* Each element: dir + '/' + name + NUL; empty dir becomes "./". */
    size_t bytes = (nelem + 1) * sizeof(char *) + plen + nelem * (nlen + 3);
    char *block = asp__malloc(bytes);
    if (!block)
        return -ENOMEM;
    const char **arr = (const char **)(void *)block;
    char *out = block + (nelem + 1) * sizeof(char *);
    int k = 0;
    const char *seg = path;
    for (;;) {
        const char *end = strchr(seg, ':');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        arr[k++] = out;
        if (len == 0) {
            *out++ = '.';
        } else {
            memcpy(out, seg, len);
            out += len;
        }
        *out++ = '/';
        memcpy(out, name, nlen + 1);
        out += nlen + 1;
        if (!end)
            break;
        seg = end + 1;
    }
    arr[k] = NULL;
    *paths = arr;
    *npaths = k;
    *owned = block;
    return 0;
}
