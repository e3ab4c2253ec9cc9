/*
 * driver.c — a standalone main() for the fuzz harnesses: runs
 * LLVMFuzzerTestOneInput once per file named on the command line (a
 * directory stands for its files, in name order, dot files and README*
 * skipped). This is how meson replays the corpus without a fuzzing engine,
 * under whatever sanitizers the build has.
 *
 * Each input is copied into a buffer of exactly its size, so a read one byte
 * past the end is caught by AddressSanitizer as it would be under libFuzzer.
 * Exit status: 0 when every input ran, 2 when a file cannot be read (a crash
 * or a failed check aborts the process).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "%s: out of memory\n", path);
            fclose(f);
            return -1;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return -1;
    }
    /* Exactly `len` bytes, so any over-read hits a redzone. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    if (len)
        memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int skip_name(const char *name) { return name[0] == '.' || strncmp(name, "README", 6) == 0; }

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Runs `path`, or every file of it when it is a directory. Returns the
 * number of inputs run, or -1. */
static long run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path) == 0 ? 1 : -1;
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, cmp_names);
    if (n < 0) {
        perror(path);
        return -1;
    }
    long count = 0;
    for (int i = 0; i < n; i++) {
        if (count >= 0 && !skip_name(ents[i]->d_name)) {
            size_t plen = strlen(path) + strlen(ents[i]->d_name) + 2;
            char *p = malloc(plen);
            if (!p) {
                count = -1;
            } else {
                snprintf(p, plen, "%s/%s", path, ents[i]->d_name);
                long r = run_path(p);
                count = r < 0 ? -1 : count + r;
                free(p);
            }
        }
        free(ents[i]);
    }
    free(ents);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        long r = run_path(argv[i]);
        if (r < 0)
            return 2;
        total += r;
    }
    printf("%s: %ld inputs ran\n", argv[0], total);
    return 0;
}
