/* attention.c — causal GQA attention over the KV cache; see attention.h. */
#include "infer/attention.h"
#include "base/pool.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- vector helpers: scalar fallback with independent accumulators ---- */

static float dot_scalar(const float *a, const float *b, int n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void axpy_scalar(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

void attn_kernels(attn_dot_fn *dot, attn_axpy_fn *axpy)
{
    const char *isa = kernels_isa();
    bool simd = isa && strcmp(isa, "scalar") != 0 && __builtin_cpu_supports("avx2") &&
                __builtin_cpu_supports("fma");
    *dot = simd ? attn_dot_avx2 : dot_scalar;
    *axpy = simd ? attn_axpy_avx2 : axpy_scalar;
}

static inline float round_to_f16(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

/* ---- pass 1: dequantize K and V rows [0, n_kv) to F32 ---- */

#define DEQ_CHUNK 64    /* positions per task */

typedef struct attn_job {
    const attn_args *a;
    int n_kv;
    attn_dot_fn dot;
    attn_axpy_fn axpy;
    bool f16_direct;     /* read the F16 cache in place (pass 1 skipped) */
    int split;           /* f16_direct: tasks per (token, K/V head) */
    atomic_int next;
} attn_job;

static void dequant_task(void *arg, int ith, int nth)
{
    (void)ith; (void)nth;
    attn_job *j = arg;
    const attn_args *a = j->a;
    const qtype_traits *tr = qtype_get(a->kv_type);
    int chunks = (j->n_kv + DEQ_CHUNK - 1) / DEQ_CHUNK;
    int total = a->n_head_kv * chunks;
    for (;;) {
        int u = atomic_fetch_add(&j->next, 1);
        if (u >= total)
            break;
        int g = u / chunks, p0 = (u % chunks) * DEQ_CHUNK;
        int np = CAIRN_MIN(DEQ_CHUNK, j->n_kv - p0);
        size_t row0 = (size_t)g * a->n_ctx + (size_t)p0;
        tr->to_float((const char *)a->k_cache + row0 * a->kv_row, a->kf + row0 * a->hd_k, (int64_t)np * a->hd_k);
        tr->to_float((const char *)a->v_cache + row0 * a->kv_row, a->vf + row0 * a->hd_k, (int64_t)np * a->hd_k);
    }
}

/* ---- pass 2: one (token, head) query row per task ---- */

static void query_task(void *arg, int ith, int nth)
{
    (void)nth;
    attn_job *j = arg;
    const attn_args *a = j->a;
    const int hd = a->head_dim, q_dim = a->n_head * hd, group = a->n_head / a->n_head_kv;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = a->scratch + (size_t)ith * group * (size_t)(a->n_ctx + a->hd_k);   /* (n_ctx,) scores */
    float *qr = sc + a->n_ctx;                                                    /* (hd,) query row */
    int total = a->n_tok * a->n_head;
    for (;;) {
        int u = atomic_fetch_add(&j->next, 1);
        if (u >= total)
            break;
        int t = u / a->n_head, h = u % a->n_head, g = h / group;
        int n_see = a->n_past + t + 1;                  /* causal: positions [0, n_see) */
        const float *q = a->q + (size_t)t * q_dim + (size_t)h * hd;
        const float *kf = a->kf + (size_t)g * a->n_ctx * a->hd_k;
        const float *vf = a->vf + (size_t)g * a->n_ctx * a->hd_k;
        for (int d = 0; d < hd; d++)
            qr[d] = a->round_f16 ? round_to_f16(q[d]) : q[d];

        float mx = -INFINITY;
        for (int p = 0; p < n_see; p++) {
            float s = j->dot(qr, kf + (size_t)p * a->hd_k, hd) * scale;
            sc[p] = s;
            mx = s > mx ? s : mx;
        }
        double sum = 0;
        for (int p = 0; p < n_see; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float inv = (float)(1.0 / sum);
        float *o = a->out + (size_t)t * q_dim + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int p = 0; p < n_see; p++) {
            float w = sc[p] * inv;
            if (a->round_f16)
                w = round_to_f16(w);
            j->axpy(o, w, vf + (size_t)p * a->hd_k, hd);
        }
    }
}

/* ---- pass 2 on an F16 cache: (token, K/V head, part of the group) per task ---- */

/* Task u of job j on thread ith. */
static void group_one_f16(const attn_job *j, int u, int ith)
{
    const attn_args *a = j->a;
    const int hd = a->head_dim, q_dim = a->n_head * hd, group = a->n_head / a->n_head_kv;
    const int per = group / j->split;                  /* query heads per task */
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = a->scratch + (size_t)ith * group * (size_t)(a->n_ctx + a->hd_k);   /* (per, n_ctx) */
    float *qr = sc + (size_t)group * a->n_ctx;                                    /* (per, hd) */
    {
        int t = u / (a->n_head_kv * j->split), rem = u % (a->n_head_kv * j->split);
        int g = rem / j->split, h0 = g * group + (rem % j->split) * per;
        int n_see = a->n_past + t + 1;
        const float *q = a->q + (size_t)t * q_dim + (size_t)h0 * hd;
        for (int d = 0; d < per * hd; d++)
            qr[d] = a->round_f16 ? round_to_f16(q[d]) : q[d];
        const uint16_t *kh = (const uint16_t *)a->k_cache + (size_t)g * a->n_ctx * a->hd_k;
        const uint16_t *vh = (const uint16_t *)a->v_cache + (size_t)g * a->n_ctx * a->hd_k;
        attn_group_f16_avx2(qr, per, hd, kh, vh, (size_t)a->hd_k, n_see, scale, a->round_f16, sc,
                            a->out + (size_t)t * q_dim + (size_t)h0 * hd);
    }
}

static int group_tasks(const attn_job *j) { return j->a->n_tok * j->a->n_head_kv * j->split; }

static void group_task_f16(void *arg, int ith, int nth)
{
    (void)nth;
    attn_job *j = arg;
    int total = group_tasks(j);
    for (;;) {
        int u = atomic_fetch_add(&j->next, 1);
        if (u >= total)
            break;
        group_one_f16(j, u, ith);
    }
}

static void run(cairn_pool *pool, cairn_pool_fn fn, attn_job *j)
{
    atomic_store(&j->next, 0);
    if (pool)
        cairn_pool_run(pool, fn, j);
    else
        fn(j, 0, 1);
}

static void job_init(cairn_pool *pool, const attn_args *a, attn_job *j)
{
    *j = (attn_job){.a = a, .n_kv = a->n_past + a->n_tok};
    attn_kernels(&j->dot, &j->axpy);
    j->f16_direct = a->kv_type == QT_F16 && a->head_dim % 8 == 0 && j->dot == attn_dot_avx2 &&
                    __builtin_cpu_supports("f16c");
    if (j->f16_direct) {
        /* whole groups per task, unless that leaves threads idle (decode) */
        int nth = pool ? cairn_pool_size(pool) : 1, group = a->n_head / a->n_head_kv;
        j->split = a->n_tok * a->n_head_kv >= 4 * nth ? 1 : group;
    }
}

void attention(cairn_pool *pool, const attn_args *a)
{
    attn_job j;
    job_init(pool, a, &j);
    if (j.f16_direct) {
        run(pool, group_task_f16, &j);
        return;
    }
    run(pool, dequant_task, &j);
    run(pool, query_task, &j);
}

/* ---- several sequences in one dispatch (batch.h) ---- */

typedef struct multi_job {
    attn_job jobs[ATTN_MAX_SEQS];
    int first[ATTN_MAX_SEQS + 1];     /* task index where sequence i starts */
    int n;
    atomic_int next;
} multi_job;

static void multi_task(void *arg, int ith, int nth)
{
    (void)nth;
    multi_job *m = arg;
    int total = m->first[m->n], i = 0;
    for (;;) {
        int u = atomic_fetch_add(&m->next, 1);
        if (u >= total)
            break;
        while (u >= m->first[i + 1])   /* tasks are claimed in order: i only grows */
            i++;
        group_one_f16(&m->jobs[i], u - m->first[i], ith);
    }
}

void attention_multi(cairn_pool *pool, const attn_args *a, int n)
{
    /* Each sequence's tasks are the ones attention() would run (same split,
     * same arithmetic), so results are identical; only the dispatches are
     * merged: one pool barrier per layer instead of one per sequence. The
     * dequantizing path shares one F32 scratch, so it stays per sequence. */
    multi_job m = {.n = n};
    bool direct = n <= ATTN_MAX_SEQS;
    for (int i = 0; direct && i < n; i++) {
        job_init(pool, &a[i], &m.jobs[i]);
        direct = m.jobs[i].f16_direct;
        m.first[i + 1] = m.first[i] + (direct ? group_tasks(&m.jobs[i]) : 0);
    }
    if (!direct) {
        for (int i = 0; i < n; i++)
            attention(pool, &a[i]);
        return;
    }
    atomic_init(&m.next, 0);
    if (pool)
        cairn_pool_run(pool, multi_task, &m);
    else
        multi_task(&m, 0, 1);
}
