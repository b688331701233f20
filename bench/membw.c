/*
 * membw.c — read bandwidth of this machine with N threads (default 2): each
 * thread sums its share of a 1 GiB buffer; median of 5 passes. The bound
 * that decode speed is measured against (bytes of weights per token / this).
 *   membw [THREADS] [MiB]
 */
#include "base/base.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct part { const uint64_t *p; size_t n; uint64_t sum; } part;

static void *reader(void *arg)
{
    part *t = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= t->n; i += 4) {
        s0 += t->p[i]; s1 += t->p[i + 1]; s2 += t->p[i + 2]; s3 += t->p[i + 3];
    }
    t->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
    if (nt < 1 || nt > 64 || mib < 16) {
        fprintf(stderr, "usage: membw [THREADS] [MiB>=16]\n");
        return 2;
    }
    size_t bytes = mib << 20, n = bytes / 8;
    uint64_t *buf = cairn_malloc_aligned(bytes, 64);
    if (!buf)
        return 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    double gbs[5];
    uint64_t check = 0;
    for (int r = 0; r < 5; r++) {
        pthread_t th[64];
        part parts[64];
        int64_t t0 = cairn_mono_ns();
        for (int i = 0; i < nt; i++) {
            parts[i] = (part){buf + n / nt * i, n / nt, 0};
            pthread_create(&th[i], NULL, reader, &parts[i]);
        }
        for (int i = 0; i < nt; i++) {
            pthread_join(th[i], NULL);
            check += parts[i].sum;
        }
        gbs[r] = (double)(n / nt * nt * 8) / (double)(cairn_mono_ns() - t0);
    }
    qsort(gbs, 5, sizeof *gbs, cmp);
    printf("{\"threads\": %d, \"mib\": %zu, \"read_gb_per_s\": %.2f, \"check\": %llu}\n", nt, mib, gbs[2],
           (unsigned long long)(check & 0xff));
    cairn_free_aligned(buf);
    return 0;
}
