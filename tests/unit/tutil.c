/* tutil.c — shared unit test helpers (tutil.h). */
#include "tutil.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonx.h"

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = tu_path(base && *base ? base : "/tmp", "lw-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(path));
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

void tu_rmrf(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void tu_write(const char *dir, const char *name, const char *text)
{
    char *p = tu_path(dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_msg(f != NULL, "cannot create %s", p);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    free(p);
}

void tu_mkdir(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    ck_assert_msg(mkdir(p, 0777) == 0, "cannot make %s", p);
    free(p);
}

char *tu_read(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    char *text = lw_read_file(p, 1 << 20, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", p);
    free(p);
    return text;
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

void tu_listing(const char *d, char *out, size_t outlen)
{
    struct dirent **ents;
    int n = scandir(d, &ents, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..")) {
            if (out[0])
                strncat(out, " ", outlen - strlen(out) - 1);
            strncat(out, ents[i]->d_name, outlen - strlen(out) - 1);
        }
        free(ents[i]);
    }
    free(ents);
}
