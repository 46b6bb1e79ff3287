/*
 * corpus.c - the fuzz corpus (tests/fuzz/corpus/<target>/), seeds and
 * every crash input saved there, replayed through the fuzz targets'
 * checking cores: a crash found by `make fuzz` becomes a regression test
 * by copying its input into the corpus folder.
 */
#define _GNU_SOURCE
#include "hard.h"
#include "../fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ASP_FUZZ_CORPUS
#define ASP_FUZZ_CORPUS "tests/fuzz/corpus"
#endif

/* Reads a whole file (at most 1 MiB) into a new buffer. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rbe");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    unsigned char *buf = malloc(1 << 20);
    ck_assert_ptr_nonnull(buf);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Runs every file of corpus folder sub through run; returns the count. */
static int replay(const char *sub, int which)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", ASP_FUZZ_CORPUS, sub);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        unsigned char *in = slurp(path, &n);
        char why[256];
        int r = which == 0
                    ? fuzz_stream_run(in, n, why, sizeof why)
                    : fuzz_proc_run(in, n, asp_t_child_path(), why, sizeof why);
        free(in);
        ck_assert_msg(r == 0, "%s: %s", path, why);
        count++;
    }
    closedir(d);
    return count;
}

START_TEST(regress_stream_corpus)
{
    int n = replay("stream", 0);
    printf("corpus: %d stream corpus inputs replayed\n", n);
    ck_assert_int_gt(n, 0);
}
END_TEST

START_TEST(regress_proc_corpus)
{
    int n = replay("proc", 1);
    printf("corpus: %d proc corpus inputs replayed\n", n);
    ck_assert_int_gt(n, 0);
}
END_TEST

/* The corpus suite. */
Suite *suite_corpus(void)
{
    Suite *s = suite_create("corpus");
    TCase *tc = asp_t_case("corpus", 120);
    tcase_add_test(tc, regress_stream_corpus);
    tcase_add_test(tc, regress_proc_corpus);
    suite_add_tcase(s, tc);
    return s;
}
