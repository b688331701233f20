/* replay.c — runs a libFuzzer harness (fuzz/fuzz_*.c) over saved inputs
 * without the fuzzer runtime, so every build (release, ASan+UBSan) replays
 * the corpora: `replay_NAME DIR|FILE...` calls LLVMFuzzerTestOneInput once
 * per file (directories: every regular file in them, sorted by name).
 * Exit 0 when every input ran (a crash aborts the process, as under
 * libFuzzer); prints the number of inputs. */
#include "base/base.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_BYTES (64u << 20)

static int run_file(const char *path, size_t *n)
{
    char *data;
    size_t len;
    if (cairn_file_read_all(path, REPLAY_MAX_BYTES, &data, &len) != CAIRN_OK) {
        fprintf(stderr, "replay: %s\n", cairn_last_error());
        return 1;
    }
    /* an exactly sized copy: ASan sees a read past the end */
    uint8_t *img = malloc(len ? len : 1);
    if (!img) {
        cairn_free(data);
        return 1;
    }
    memcpy(img, data, len);
    cairn_free(data);
    LLVMFuzzerTestOneInput(img, len);
    free(img);
    (*n)++;
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: cannot open %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t k = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        names[k] = malloc(strlen(dir) + strlen(de->d_name) + 2);
        if (!names[k])
            break;
        sprintf(names[k], "%s/%s", dir, de->d_name);
        k++;
    }
    closedir(d);
    if (k)
        qsort(names, k, sizeof *names, cmp);
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        struct stat sb;
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode))
            rc |= run_file(names[i], n);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    size_t n = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            rc = 1;
        } else if (S_ISDIR(sb.st_mode)) {
            rc |= run_dir(argv[i], &n);
        } else {
            rc |= run_file(argv[i], &n);
        }
    }
    printf("replayed %zu input%s\n", n, n == 1 ? "" : "s");
    return rc;
}
