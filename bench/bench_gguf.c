/* bench_gguf.c — time gguf_open (validate + index the header) on GGUF files.
 * usage: bench_gguf FILE... ; prints the median of 21 opens per file. */
#include "gguf/gguf.h"
#include <stdio.h>
#include <stdlib.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_gguf FILE...\n");
        return 2;
    }
    for (int f = 1; f < argc; f++) {
        int64_t ns[21];
        gguf_file *g = NULL;
        for (int r = 0; r < 21; r++) {
            int64_t t0 = cairn_mono_ns();
            cairn_status st = gguf_open(argv[f], &g);
            ns[r] = cairn_mono_ns() - t0;
            if (st != CAIRN_OK) {
                fprintf(stderr, "%s: %s\n", argv[f], cairn_last_error());
                return 1;
            }
            if (r < 20)
                gguf_close(g);
        }
        qsort(ns, 21, sizeof ns[0], cmp_i64);
        printf("%-70s %8llu KVs %6llu tensors  open %9.1f us (median of 21)\n", argv[f],
               (unsigned long long)gguf_kv_count(g), (unsigned long long)gguf_tensor_count(g), ns[10] / 1e3);
        gguf_close(g);
    }
    return 0;
}
