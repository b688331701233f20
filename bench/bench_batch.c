/*
 * bench_batch.c — decode steps of several sequences in one forward pass
 * (infer/batch.h) against one sequence alone: tokens/s for 1, 2, 4, 8
 * sequences decoding together after a short prompt each. The server's
 * continuous batching rests on this ratio.
 *
 *   bench_batch MODEL.gguf [-t THREADS] [-n STEPS] [--json]
 */
#include "infer/batch.h"
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of the whole process (all threads): on a shared machine the
 * wall clock says how much CPU we were given, CPU time what the work costs. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_batch MODEL.gguf [-t THREADS] [-n STEPS]\n");
        return 2;
    }
    int threads = 2, steps = 32;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) steps = atoi(argv[i + 1]);
    }
    cairn_model *m = NULL;
    if (model_load(argv[1], &m) != CAIRN_OK) {
        fprintf(stderr, "bench_batch: %s\n", cairn_last_error());
        return 1;
    }
    const int counts[] = {1, 2, 4, 8};
    double base = 0, base_cpu = 0;
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(counts); c++) {
        int n = counts[c];
        cairn_session *s[8] = {0};
        for (int i = 0; i < n; i++) {
            session_opts so = session_opts_default();
            so.n_ctx = 256;
            so.n_threads = i == 0 ? threads : 1;
            so.n_batch = i == 0 ? 64 : 1;
            if (session_new(m, &so, &s[i]) != CAIRN_OK) {
                fprintf(stderr, "bench_batch: %s\n", cairn_last_error());
                return 1;
            }
        }
        int32_t tok[8], prompt[4] = {1, 100, 200, 300};
        batch_seq bs[8];
        for (int i = 0; i < n; i++) {
            prompt[1] = 100 + i;
            bs[i] = (batch_seq){s[i], prompt, 4};
            if (batch_eval(s[0], &bs[i], 1) != CAIRN_OK)
                return 1;
            tok[i] = argmax(session_logits(s[i]), m->hp.n_vocab);
        }
        int64_t t0 = cairn_mono_ns(), c0 = cpu_ns();
        for (int k = 0; k < steps; k++) {
            for (int i = 0; i < n; i++)
                bs[i] = (batch_seq){s[i], &tok[i], 1};
            if (batch_eval(s[0], bs, n) != CAIRN_OK) {
                fprintf(stderr, "bench_batch: %s\n", cairn_last_error());
                return 1;
            }
            for (int i = 0; i < n; i++)
                tok[i] = argmax(session_logits(s[i]), m->hp.n_vocab);
        }
        double tps = (double)n * steps * 1e9 / (double)(cairn_mono_ns() - t0);
        double cps = (double)n * steps * 1e9 / (double)(cpu_ns() - c0);   /* tokens per CPU-second */
        if (n == 1)
            base = tps, base_cpu = cps;
        printf("%d sequences: %8.1f tokens/s aggregate (%.2fx one sequence); %8.1f tokens per CPU-second (%.2fx)\n", n,
               tps, tps / base, cps, cps / base_cpu);
        for (int i = 0; i < n; i++)
            session_free(s[i]);
    }
    model_free(m);
    return 0;
}
