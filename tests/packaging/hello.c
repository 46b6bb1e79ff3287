/*
 * hello.c - the program the packaging tests build against an installed or
 * vendored asproc: runs one child through asp_run and checks its output
 * and the library version. Exit status 0 only if everything matched.
 */
#include <asproc.h>

#include <stdio.h>
#include <string.h>

/* Runs "echo" through /bin/sh and compares what came back. */
int main(void)
{
    const char *argv[] = {"/bin/sh", "-c", "echo hello from a child", NULL};
    asp_result r = {0};
    int e = asp_run(NULL, argv, NULL, NULL, &r);
    if (e < 0) {
        fprintf(stderr, "asp_run: %s\n", asp_strerror(e));
        return 1;
    }
    int ok = r.status.kind == ASP_EXIT_CODE && r.status.code == 0 && r.out &&
             strcmp(r.out, "hello from a child\n") == 0;
    printf("asproc %s (header %s): %s", asp_version_string(),
           ASP_VERSION_STRING, r.out ? r.out : "(no output)\n");
    asp_result_free(&r);
    if (asp_version() != ASP_VERSION ||
        strcmp(asp_version_string(), ASP_VERSION_STRING) != 0) {
        fprintf(stderr, "version mismatch between header and library\n");
        return 1;
    }
    return ok ? 0 : 1;
}
