/*
 * session.c — KV cache, activation buffers and the llama-family forward pass.
 *
 * Read top to bottom in data-flow order: buffers → small ops (RMSNorm, RoPE,
 * SwiGLU) → the forward pass over one batch → session_eval splitting input
 * into batches. Shapes are written (rows, cols), row-major; T is the number
 * of tokens in the current batch (<= n_batch).
 *
 * Numerics follow the reference engine where it is cheap to do so: RMSNorm
 * accumulates in double, RoPE angles advance by repeated multiplication in
 * float, and with an F16 cache the query and the attention probabilities are
 * rounded to F16 before meeting K and V.
 */
#include "infer/session.h"
#include "base/pool.h"
#include "infer/batch.h"
#include "infer/attention.h"
#include "infer/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define SESSION_MAX_CTX (1 << 20)
#define SESSION_MAX_BATCH 4096
/* Tokens per forward pass. Activation buffers grow with it (~70 KiB per
 * token for a 1B model); measured on TinyLlama Q4_0 pp512, 2 threads: CPU
 * time 256 -> 1.00, 128 -> 1.06, 64 -> 1.28. 128 keeps the Q4 model within
 * its RSS budget at a small prompt-speed cost. */
#define SESSION_DEFAULT_BATCH 128

struct cairn_session {
    const cairn_model *m;
    session_opts opts;
    int n_ctx, n_batch, n_threads;
    int n_past;
    bool simd;                 /* AVX2+FMA element-wise ops (same choice as the kernels) */
    cairn_pool *pool;          /* NULL when single-threaded */
    matmul_ctx mm;             /* whole-matrix products, threaded by matmul itself */
    matmul_ctx *mm_thread;     /* (n_threads,) single-threaded contexts for matmul_group */

    /* KV cache: (n_layer, n_head_kv, n_ctx, hd_k) rows of kv_type each */
    int hd_k;                  /* head_dim padded to the kv type's block size */
    size_t kv_row;             /* bytes per cached row */
    size_t kv_layer;           /* bytes per layer of K (same for V) */
    void *k_cache, *v_cache;
    float *kv_pad;             /* (hd_k,) zero-padded row being stored */
    void *embd_row;            /* one token_embd row read from the file (untied models) */

    /* activations for one batch */
    float *x;                  /* (n_batch, n_embd) residual stream */
    float *xb;                 /* (n_batch, n_embd) normed input of a sub-layer */
    float *xb2;                /* (n_batch, n_embd) sub-layer output; == xb for dense
                                  models (written only once xb has been consumed) */
    float *q;                  /* (n_batch, n_head*head_dim); attention writes its output
                                  over it (each head reads its query first) */
    float *k, *v;              /* (n_batch, n_head_kv*head_dim) */
    float *hb;                 /* (n_batch, n_ff) FFN hidden */
    float *arena;              /* q, k, v (attention) and hb (FFN) share it */
    float *hb2;                /* (1, n_ff) up product of one token (decode); batches use
                                  matmul_glu, which needs no (n_batch, n_ff) up buffer */
    float *rope_cos, *rope_sin;/* (n_batch, n_rot/2) per-position rotation */
    float *kf, *vf;            /* (n_head_kv, n_ctx, hd_k) dequantized K, V of one layer */
    float *att_scratch;        /* (n_threads, group, n_ctx + hd_k) scores and query rows per thread */
    float *logits;             /* (n_vocab,) of the last token */
    float *logits_rows;        /* (logits_rows_n, n_vocab) batch_eval's output rows, made on first use */
    int logits_rows_n;

    /* mixture of experts (NULL for dense models) */
    float *moe_logits;         /* (n_batch, n_expert) router output, then probabilities */
    int32_t *moe_sel;          /* (n_batch, n_expert_used) chosen experts per token */
    float *moe_w;              /* (n_batch, n_expert_used) their weights */
    int32_t *moe_rows;         /* (n_batch,) tokens routed to the expert being run */
    float *moe_rw;             /* (n_batch,) their weights */
    float *xg, *yg;            /* (n_batch, n_embd) gathered inputs / expert outputs */
    uint64_t *expert_counts;   /* (n_layer, n_expert) times each expert was chosen */
};

session_opts session_opts_default(void)
{
    return (session_opts){.n_ctx = 0, .n_batch = 0, .n_threads = 1, .kv_type = QT_F16};
}

/* ---- construction ---- */

static float *alloc_f32(size_t a, size_t b, bool *ok)
{
    size_t n;
    if (!cairn_mul_ok(a, b, &n) || !cairn_mul_ok(n, sizeof(float), &n)) {
        *ok = false;
        return NULL;
    }
    float *p = cairn_malloc_aligned(n ? n : 64, 64);
    if (!p)
        *ok = false;
    return p;
}

cairn_status session_new(const cairn_model *m, const session_opts *opts, cairn_session **out)
{
    *out = NULL;
    const model_hparams *hp = &m->hp;
    session_opts o = opts ? *opts : session_opts_default();
    if (o.n_ctx <= 0)
        o.n_ctx = CAIRN_MIN(hp->n_ctx_train, 4096);
    if (o.n_batch <= 0)
        o.n_batch = SESSION_DEFAULT_BATCH;
    if (o.n_threads <= 0)
        o.n_threads = 1;
    if (o.n_ctx > SESSION_MAX_CTX || o.n_batch > SESSION_MAX_BATCH || o.n_threads > 256)
        return cairn_fail(CAIRN_ERR_INVALID, "session: n_ctx %d / n_batch %d / threads %d too large",
                          o.n_ctx, o.n_batch, o.n_threads);
    o.n_batch = CAIRN_MIN(o.n_batch, o.n_ctx);
    if (o.kv_type != QT_F16 && o.kv_type != QT_Q8_0 && o.kv_type != QT_F32)
        return cairn_fail(CAIRN_ERR_INVALID, "session: KV cache type must be f16, q8_0 or f32");
    const qtype_traits *kt = qtype_get(o.kv_type);
    if (!kt || !kt->from_float || !kt->to_float)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "session: KV cache type %u not available", o.kv_type);

    cairn_session *s = cairn_calloc(1, sizeof *s);
    if (!s)
        return cairn_fail(CAIRN_ERR_NOMEM, "session: out of memory");
    s->m = m;
    s->opts = o;
    s->n_ctx = o.n_ctx;
    s->n_batch = o.n_batch;
    s->n_threads = o.n_threads;
    attn_dot_fn dot;
    attn_axpy_fn axpy;
    attn_kernels(&dot, &axpy);
    s->simd = dot == attn_dot_avx2;
    if (o.n_threads > 1) {
        cairn_status st = cairn_pool_new(o.n_threads, &s->pool);
        if (st != CAIRN_OK) {
            cairn_free(s);
            return st;
        }
        s->mm.pool = s->pool;
        s->mm_thread = cairn_calloc((size_t)o.n_threads, sizeof *s->mm_thread);
        if (!s->mm_thread) {
            cairn_pool_free(s->pool);
            cairn_free(s);
            return cairn_fail(CAIRN_ERR_NOMEM, "session: out of memory");
        }
    }

    /* Weights larger than the last-level cache come from memory on every
     * token: decode kernels then read them as one stream per thread. The
     * file size stands for the weights (MoE: every expert is read over time). */
    s->mm.stream = gguf_file_size(m->gguf) > kernels_llc_bytes();
    for (int i = 0; s->mm_thread && i < o.n_threads; i++)
        s->mm_thread[i].stream = s->mm.stream;

    size_t B = (size_t)s->n_batch, C = (size_t)s->n_ctx;
    size_t q_dim = (size_t)hp->n_head * hp->head_dim, kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    s->hd_k = (hp->head_dim + kt->block_size - 1) / kt->block_size * kt->block_size;
    s->kv_row = qtype_row_size(o.kv_type, s->hd_k);
    bool ok = true;
    size_t per_layer;
    if (!cairn_mul_ok((size_t)hp->n_head_kv * C, s->kv_row, &per_layer))
        ok = false;
    s->kv_layer = per_layer;
    size_t kv_total;
    if (ok && cairn_mul_ok(per_layer, (size_t)hp->n_layer, &kv_total)) {
        s->k_cache = cairn_malloc_aligned(kv_total, 64);
        s->v_cache = cairn_malloc_aligned(kv_total, 64);
        ok = s->k_cache && s->v_cache;
    } else {
        ok = false;
    }
    s->kv_pad = alloc_f32((size_t)s->hd_k, 1, &ok);
    if (m->output.data != m->tok_embd.data)
        s->embd_row = alloc_f32(qtype_row_size(m->tok_embd.type, hp->n_embd) / sizeof(float) + 1, 1, &ok);
    s->x = alloc_f32(B, (size_t)hp->n_embd, &ok);
    s->xb = alloc_f32(B, (size_t)hp->n_embd, &ok);
    /* Peak RSS is a target (issue 4): buffers that can share memory do. */
    s->xb2 = hp->n_expert > 0 ? alloc_f32(B, (size_t)hp->n_embd, &ok) : s->xb;
    /* q, k, v live from the QKV product to the output projection, hb only
     * inside the FFN: one arena holds either. */
    size_t ff = (size_t)CAIRN_MAX(hp->n_ff, CAIRN_MAX(hp->n_ff_exp, hp->n_ff_shexp));
    size_t qf = (B * q_dim + 15) & ~(size_t)15, kf = (B * kv_dim + 15) & ~(size_t)15;
    s->arena = alloc_f32(CAIRN_MAX(qf + 2 * kf, B * ff), 1, &ok);
    if (s->arena) {
        s->q = s->arena;
        s->k = s->arena + qf;
        s->v = s->k + kf;
        s->hb = s->arena;
    }
    /* decode needs one token's up product; MoE decode runs every chosen expert
     * (and the shared one) at once: ffn_moe_decode */
    size_t hb2_n = ff;
    if (hp->n_expert > 0)
        hb2_n = CAIRN_MAX(hb2_n, (size_t)hp->n_expert_used * (size_t)hp->n_ff_exp + (size_t)hp->n_ff_shexp);
    s->hb2 = alloc_f32(hb2_n, 1, &ok);
    if (hp->n_expert > 0) {
        s->moe_logits = alloc_f32(B, (size_t)hp->n_expert, &ok);
        s->moe_w = alloc_f32(B, (size_t)hp->n_expert_used, &ok);
        s->moe_rw = alloc_f32(B, 1, &ok);
        s->xg = alloc_f32(B, (size_t)hp->n_embd, &ok);
        s->yg = alloc_f32(B, (size_t)hp->n_embd, &ok);
        s->moe_sel = cairn_calloc(B * (size_t)hp->n_expert_used, sizeof *s->moe_sel);
        s->moe_rows = cairn_calloc(B, sizeof *s->moe_rows);
        s->expert_counts = cairn_calloc((size_t)hp->n_layer * (size_t)hp->n_expert, sizeof *s->expert_counts);
        ok = ok && s->moe_sel && s->moe_rows && s->expert_counts;
    }
    s->rope_cos = alloc_f32(B, (size_t)hp->n_rot / 2 + 1, &ok);
    s->rope_sin = alloc_f32(B, (size_t)hp->n_rot / 2 + 1, &ok);
    s->kf = alloc_f32((size_t)hp->n_head_kv * C, (size_t)s->hd_k, &ok);
    s->vf = alloc_f32((size_t)hp->n_head_kv * C, (size_t)s->hd_k, &ok);
    s->att_scratch = alloc_f32((size_t)s->n_threads * (size_t)(hp->n_head / hp->n_head_kv), C + (size_t)s->hd_k, &ok);
    s->logits = alloc_f32((size_t)hp->n_vocab, 1, &ok);
    if (!ok) {
        session_free(s);
        return cairn_fail(CAIRN_ERR_NOMEM, "session: out of memory for a %d-token context", o.n_ctx);
    }
    *out = s;
    return CAIRN_OK;
}

void session_free(cairn_session *s)
{
    if (!s)
        return;
    if (s->xb2 == s->xb)
        s->xb2 = NULL;
    float **bufs[] = {&s->kv_pad, &s->x, &s->xb, &s->xb2, &s->arena, &s->hb2,
                      &s->rope_cos, &s->rope_sin, &s->kf, &s->vf, &s->att_scratch, &s->logits, &s->logits_rows,
                      &s->moe_logits, &s->moe_w, &s->moe_rw, &s->xg, &s->yg};
    cairn_free_aligned(s->embd_row);
    cairn_free(s->moe_sel);
    cairn_free(s->moe_rows);
    cairn_free(s->expert_counts);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bufs); i++)
        cairn_free_aligned(*bufs[i]);
    cairn_free_aligned(s->k_cache);
    cairn_free_aligned(s->v_cache);
    matmul_ctx_free(&s->mm);
    for (int i = 0; s->mm_thread && i < s->n_threads; i++)
        matmul_ctx_free(&s->mm_thread[i]);
    cairn_free(s->mm_thread);
    cairn_pool_free(s->pool);
    cairn_free(s);
}

void session_truncate(cairn_session *s, int n) { s->n_past = CAIRN_MAX(0, CAIRN_MIN(n, s->n_past)); }
int session_n_past(const cairn_session *s) { return s->n_past; }
int session_n_ctx(const cairn_session *s) { return s->n_ctx; }
const cairn_model *session_model(const cairn_session *s) { return s->m; }
size_t session_kv_bytes(const cairn_session *s) { return 2 * s->kv_layer * (size_t)s->m->hp.n_layer; }

/* ---- row-parallel helper for the element-wise ops ---- */

typedef void (*rows_fn)(cairn_session *s, void *arg, int r0, int r1);
typedef struct rows_job {
    cairn_session *s;
    rows_fn fn;
    void *arg;
    int n_rows, chunk;
    atomic_int next;
} rows_job;

static void rows_worker(void *p, int ith, int nth)
{
    (void)ith; (void)nth;
    rows_job *j = p;
    for (;;) {
        int r0 = atomic_fetch_add(&j->next, j->chunk);
        if (r0 >= j->n_rows)
            break;
        j->fn(j->s, j->arg, r0, CAIRN_MIN(r0 + j->chunk, j->n_rows));
    }
}

/* Run fn over rows [0, n_rows); threaded when there is enough work. */
static void for_rows(cairn_session *s, rows_fn fn, void *arg, int n_rows)
{
    if (!s->pool || n_rows < 4) {
        fn(s, arg, 0, n_rows);
        return;
    }
    rows_job j = {.s = s, .fn = fn, .arg = arg, .n_rows = n_rows,
                  .chunk = CAIRN_MAX(1, n_rows / (4 * s->n_threads))};
    atomic_init(&j.next, 0);
    cairn_pool_run(s->pool, rows_worker, &j);
}

/* ---- small ops ---- */

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], for one row of n. */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

typedef struct norm_arg { const float *w; float *out; const float *in; } norm_arg;

static void rmsnorm_rows(cairn_session *s, void *p, int r0, int r1)
{
    norm_arg *a = p;
    int n = s->m->hp.n_embd;
    for (int r = r0; r < r1; r++)
        rmsnorm(a->out + (size_t)r * n, a->in + (size_t)r * n, a->w, n, s->m->hp.norm_eps);
}

/* Rotation angles for positions pos0..pos0+T-1 into rows row0.. of cos/sin (n_batch, n_rot/2).
 * theta_i = pos * base^(-2i/n_rot) [/ freq_factor_i], scaled per the
 * model's RoPE scaling (linear: theta * scale; YaRN: blend of interpolated
 * and extrapolated angles by dimension, with a magnitude correction). */
static void rope_angles(cairn_session *s, int row0, int pos0, int T)
{
    const model_hparams *hp = &s->m->hp;
    const int half = hp->n_rot / 2;
    const float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->n_rot);
    const float fs = hp->rope_freq_scale;
    float ext = 0, lo = 0, hi = 0, mscale = 1.0f;
    if (hp->rope_scaling_type == ROPE_SCALING_YARN && fs != 1.0f) {
        /* dims whose wavelength completes beta rotations within the original context */
        const float beta_fast = 32.0f, beta_slow = 1.0f, n_orig = (float)hp->rope_yarn_orig_ctx;
        const float nr = (float)hp->n_rot, lb = 2.0f * logf(hp->rope_freq_base);
        float d_fast = nr * logf(n_orig / (beta_fast * 2.0f * (float)M_PI)) / lb;
        float d_slow = nr * logf(n_orig / (beta_slow * 2.0f * (float)M_PI)) / lb;
        lo = fmaxf(0.0f, floorf(d_fast));
        hi = fminf(nr - 1, ceilf(d_slow));
        ext = 1.0f;
        mscale = 1.0f + 0.1f * logf(1.0f / fs);
    }
    for (int t = 0; t < T; t++) {
        float theta = (float)(pos0 + t);
        float *c = s->rope_cos + (size_t)(row0 + t) * half, *sn = s->rope_sin + (size_t)(row0 + t) * half;
        for (int i = 0; i < half; i++) {
            float th_extrap = s->m->rope_freqs ? theta / s->m->rope_freqs[i] : theta;
            float th = fs * th_extrap;
            if (ext != 0) {
                float y = ((float)i - lo) / fmaxf(0.001f, hi - lo);
                float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * ext;
                th = th * (1 - ramp) + th_extrap * ramp;
            }
            c[i] = cosf(th) * mscale;
            sn[i] = sinf(th) * mscale;
            theta *= theta_scale;
        }
    }
}

/* Rotate the first n_rot dims of each of n_heads heads of one token row. */
static void rope_row(float *x, int n_heads, int head_dim, int n_rot, rope_pairs pairs,
                     const float *c, const float *sn)
{
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int a = pairs == ROPE_PAIRS_NEOX ? i : 2 * i;
            int b = pairs == ROPE_PAIRS_NEOX ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * c[i];
        }
    }
}

typedef struct qk_arg { const model_layer *L; } qk_arg;

/* Biases (qwen2) then RoPE on q and k, rows r0..r1 of the batch. */
static void qk_rows(cairn_session *s, void *p, int r0, int r1)
{
    const model_layer *L = ((qk_arg *)p)->L;
    const model_hparams *hp = &s->m->hp;
    const int q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim, half = hp->n_rot / 2;
    for (int t = r0; t < r1; t++) {
        float *q = s->q + (size_t)t * q_dim, *k = s->k + (size_t)t * kv_dim, *v = s->v + (size_t)t * kv_dim;
        if (hp->qk_norm && hp->arch == MODEL_ARCH_OLMOE) {          /* RMSNorm over the whole q / k */
            rmsnorm(q, q, L->q_norm, q_dim, hp->norm_eps);
            rmsnorm(k, k, L->k_norm, kv_dim, hp->norm_eps);
        } else if (hp->qk_norm) {                                   /* per head (qwen3moe) */
            for (int h = 0; h < hp->n_head; h++)
                rmsnorm(q + (size_t)h * hp->head_dim, q + (size_t)h * hp->head_dim, L->q_norm, hp->head_dim, hp->norm_eps);
            for (int h = 0; h < hp->n_head_kv; h++)
                rmsnorm(k + (size_t)h * hp->head_dim, k + (size_t)h * hp->head_dim, L->k_norm, hp->head_dim, hp->norm_eps);
        }
        if (L->bq)
            for (int i = 0; i < q_dim; i++) q[i] += L->bq[i];
        if (L->bk)
            for (int i = 0; i < kv_dim; i++) k[i] += L->bk[i];
        if (L->bv)
            for (int i = 0; i < kv_dim; i++) v[i] += L->bv[i];
        const float *c = s->rope_cos + (size_t)t * half, *sn = s->rope_sin + (size_t)t * half;
        rope_row(q, hp->n_head, hp->head_dim, hp->n_rot, hp->rope, c, sn);
        rope_row(k, hp->n_head_kv, hp->head_dim, hp->n_rot, hp->rope, c, sn);
    }
}

/* hb = silu(hb) * hb2, rows r0..r1 of (T, n_ff). */
static void swiglu_rows(cairn_session *s, void *p, int r0, int r1)
{
    (void)p;
    const size_t n = (size_t)s->m->hp.n_ff;
    if (s->simd) {
        swiglu_avx2(s->hb + (size_t)r0 * n, s->hb2 + (size_t)r0 * n, (size_t)(r1 - r0) * n);
        return;
    }
    for (size_t i = (size_t)r0 * n; i < (size_t)r1 * n; i++) {
        float g = s->hb[i];
        s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i];
    }
}

/* Store rows row0..row0+T-1 of the batch's K and V (layer il) into the
 * cache of sequence kv at its positions n_past.. (kv == s for one sequence). */
static void kv_store(cairn_session *s, cairn_session *kv, int il, int row0, int T)
{
    const model_hparams *hp = &s->m->hp;
    const qtype_traits *tr = qtype_get(s->opts.kv_type);
    const int hd = hp->head_dim, kv_dim = hp->n_head_kv * hd;
    char *kc = (char *)kv->k_cache + (size_t)il * kv->kv_layer;
    char *vc = (char *)kv->v_cache + (size_t)il * kv->kv_layer;
    memset(s->kv_pad, 0, (size_t)s->hd_k * sizeof(float));
    for (int t = 0; t < T; t++) {
        size_t pos = (size_t)(kv->n_past + t);
        for (int g = 0; g < hp->n_head_kv; g++) {
            size_t off = ((size_t)g * kv->n_ctx + pos) * s->kv_row;
            memcpy(s->kv_pad, s->k + (size_t)(row0 + t) * kv_dim + (size_t)g * hd, (size_t)hd * sizeof(float));
            tr->from_float(s->kv_pad, kc + off, s->hd_k);
            memcpy(s->kv_pad, s->v + (size_t)(row0 + t) * kv_dim + (size_t)g * hd, (size_t)hd * sizeof(float));
            tr->from_float(s->kv_pad, vc + off, s->hd_k);
        }
    }
}

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* ---- several products of one token in one pool dispatch ---- */

/* y_i = W_i x_i for a few matrices. A decode step is ~200 short products;
 * each matmul() call is a dispatch and a barrier, so the small ones run
 * together. With one input (q/k/v, gate/up) that is matmul_multi, for any
 * number of tokens (in decode its contiguous per-thread lanes measured 2-5%
 * faster than the chunks below, session 3). With different inputs (MoE
 * experts) one token's rows are cut into chunks that threads claim, each chunk one single-threaded
 * matmul() on a row slice of W (slices of a row-major matrix are
 * contiguous). Results equal the separate calls: each row is the same dot. */
typedef struct mm_part { const qmat *w; const float *x; float *y; } mm_part;

typedef struct group_job {
    cairn_session *s;
    const mm_part *parts;
    int n_parts, chunks_per_part;
    atomic_int next;
    _Atomic int status;
} group_job;

static void group_worker(void *arg, int ith, int nth)
{
    (void)nth;
    group_job *j = arg;
    int total = j->n_parts * j->chunks_per_part;
    for (;;) {
        int u = atomic_fetch_add(&j->next, 1);
        if (u >= total)
            break;
        const mm_part *p = &j->parts[u / j->chunks_per_part];
        int64_t per = (p->w->rows + j->chunks_per_part - 1) / j->chunks_per_part;
        int64_t r0 = (u % j->chunks_per_part) * per, r1 = CAIRN_MIN(p->w->rows, r0 + per);
        if (r0 >= r1)
            continue;
        qmat slice = *p->w;
        slice.rows = r1 - r0;
        slice.data = (const char *)p->w->data + (size_t)r0 * qtype_row_size(p->w->type, p->w->cols);
        cairn_status st = matmul(&j->s->mm_thread[ith], &slice, p->x, p->y + r0, 1);
        if (st != CAIRN_OK)
            atomic_store(&j->status, (int)st);
    }
}

static cairn_status matmul_group(cairn_session *s, const mm_part *parts, int n_parts, int T)
{
    /* Products of one input (q/k/v, gate/up) are one matmul_multi run, for
     * any number of tokens: the activations are quantized once, and in
     * decode its lanes give each thread one contiguous run of weight rows. */
    bool shared = n_parts <= MATMUL_MAX_MULTI;
    for (int i = 1; shared && i < n_parts; i++)
        shared = parts[i].x == parts[0].x;
    if (shared) {
        qmat ws[MATMUL_MAX_MULTI];
        float *ys[MATMUL_MAX_MULTI];
        for (int i = 0; i < n_parts; i++) {
            ws[i] = *parts[i].w;
            ys[i] = parts[i].y;
        }
        return matmul_multi(&s->mm, ws, n_parts, parts[0].x, ys, T);
    }
    if (!s->pool || T != 1) {
        for (int i = 0; i < n_parts; i++)
            CAIRN_TRY(matmul(&s->mm, parts[i].w, parts[i].x, parts[i].y, T));
        return CAIRN_OK;
    }
    group_job j = {.s = s, .parts = parts, .n_parts = n_parts, .chunks_per_part = 2 * s->n_threads};
    atomic_init(&j.next, 0);
    atomic_init(&j.status, CAIRN_OK);
    cairn_pool_run(s->pool, group_worker, &j);
    cairn_status st = (cairn_status)atomic_load(&j.status);
    return st == CAIRN_OK ? CAIRN_OK : cairn_fail_wrap(st, "matmul");
}

/* SwiGLU FFN of a dense layer: xb2 (T, n_embd) = (silu(xb Wg^T) * (xb Wu^T)) Wd^T.
 * A mixture-of-experts layer replaces this step (same input xb, same
 * output xb2); everything else in the layer is shared. */
/* hb[i] = silu(hb[i]) * hb2[i] for n values. */
static void swiglu_n(float *hb, const float *hb2, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hb[i] = hb[i] / (1.0f + expf(-hb[i])) * hb2[i];
}

static cairn_status ffn_dense(cairn_session *s, const model_layer *L, int T)
{
    /* Batches: hb = silu(xb Wg^T) * (xb Wu^T) in one pass. One token keeps
     * the grouped products: matmul_glu's smaller decode chunks measured 3-7%
     * slower (SmolLM / TinyLlama Q4_0, end of session 2). */
    if (T > 1) {
        CAIRN_TRY(matmul_glu(&s->mm, &L->ffn_gate, &L->ffn_up, s->xb, s->hb, T, s->simd ? swiglu_avx2 : swiglu_n));
        return matmul(&s->mm, &L->ffn_down, s->hb, s->xb2, T);
    }
    const mm_part gu[] = {
        {&L->ffn_gate, s->xb, s->hb},                           /* (T, n_ff) */
        {&L->ffn_up, s->xb, s->hb2},                            /* (T, n_ff) */
    };
    CAIRN_TRY(matmul_group(s, gu, 2, T));
    for_rows(s, swiglu_rows, NULL, T);                         /* hb = silu(hb) * hb2 */
    return matmul(&s->mm, &L->ffn_down, s->hb, s->xb2, T);     /* (T, n_embd) */
}

/* ---- mixture of experts ----
 * Router logits for the batch in one matmul; per token softmax, top-k (ties
 * to the lower index, as a stable sort would), optional renormalisation.
 * Then each expert that any token chose runs once over the tokens routed to
 * it (gathered into one contiguous batch), so its weights are read once per
 * batch; decode (T = 1) runs the chosen experts on xb directly. Only chosen
 * experts' bytes are touched: with mmap, idle experts are never paged in.
 * Work inside each expert's matmul is split over all threads by rows, so
 * threads are balanced by work whatever the routing. */

static void moe_route(cairn_session *s, int il, int T)
{
    const model_hparams *hp = &s->m->hp;
    const int ne = hp->n_expert, nu = hp->n_expert_used;
    for (int t = 0; t < T; t++) {
        float *p = s->moe_logits + (size_t)t * ne;
        float mx = p[0];
        for (int e = 1; e < ne; e++)
            mx = p[e] > mx ? p[e] : mx;
        double sum = 0;
        for (int e = 0; e < ne; e++) {
            p[e] = expf(p[e] - mx);
            sum += p[e];
        }
        for (int e = 0; e < ne; e++)
            p[e] = (float)(p[e] / sum);
        int32_t *sel = s->moe_sel + (size_t)t * nu;
        float *w = s->moe_w + (size_t)t * nu;
        double wsum = 0;
        for (int j = 0; j < nu; j++) {
            int best = -1;
            for (int e = 0; e < ne; e++) {
                bool taken = false;
                for (int i = 0; i < j; i++)
                    taken |= sel[i] == e;
                if (!taken && (best < 0 || p[e] > p[best]))
                    best = e;
            }
            sel[j] = best;
            w[j] = p[best];
            wsum += p[best];
            s->expert_counts[(size_t)il * ne + best]++;
        }
        if (hp->moe_norm_w && wsum > 0)
            for (int j = 0; j < nu; j++)
                w[j] = (float)(w[j] / wsum);
    }
}


/* y (n, n_embd) = down(silu(gate x) * up x) for one expert or the shared one. */
static cairn_status expert_ffn(cairn_session *s, const qmat *g, const qmat *u, const qmat *d, const float *x, float *y,
                               int n)
{
    if (n > 1) {
        CAIRN_TRY(matmul_glu(&s->mm, g, u, x, s->hb, n, swiglu_n));
        return matmul(&s->mm, d, s->hb, y, n);
    }
    const mm_part gu[] = {{g, x, s->hb}, {u, x, s->hb2}};
    CAIRN_TRY(matmul_group(s, gu, 2, n));
    swiglu_n(s->hb, s->hb2, (size_t)n * (size_t)g->rows);
    return matmul(&s->mm, d, s->hb, y, n);
}

/* qwen2moe: xb2 += sigmoid(w . x) * y, the shared expert's output y (T, n_embd). */
static void moe_add_shared(cairn_session *s, const model_layer *L, const float *yall, int T)
{
    const int n_embd = s->m->hp.n_embd;
    for (int t = 0; t < T; t++) {
        const float *x = s->xb + (size_t)t * n_embd, *y = yall + (size_t)t * n_embd;
        float gate = 1.0f;
        if (L->gate_inp_shexp) {
            double dot = 0;
            for (int c = 0; c < n_embd; c++)
                dot += (double)L->gate_inp_shexp[c] * x[c];
            gate = (float)(1.0 / (1.0 + exp(-dot)));
        }
        float *out = s->xb2 + (size_t)t * n_embd;
        for (int c = 0; c < n_embd; c++)
            out[c] += gate * y[c];
    }
}

/* Decode (T = 1) with few chosen experts: the gate and up products of every
 * chosen expert (and the shared one) run in one pool dispatch, then all
 * their down products in another — 2 barriers per layer instead of 2 per
 * expert, which is most of a small MoE's decode time. Expert e's hidden
 * rows go to hb/hb2 + slot * n_ff_exp (the shared expert's after them) and
 * its output to yg + slot * n_embd. Outputs are summed in expert order,
 * as the batched path does, so both give the same result. */
#define MOE_FUSED_MAX_USED 16

static bool moe_fused_fits(const cairn_session *s)
{
    const model_hparams *hp = &s->m->hp;
    size_t ff = (size_t)CAIRN_MAX(hp->n_ff, CAIRN_MAX(hp->n_ff_exp, hp->n_ff_shexp));
    size_t need = (size_t)hp->n_expert_used * (size_t)hp->n_ff_exp + (size_t)hp->n_ff_shexp;
    return hp->n_expert_used <= MOE_FUSED_MAX_USED && need <= (size_t)s->n_batch * ff &&
           hp->n_expert_used + 1 <= s->n_batch;
}

static cairn_status ffn_moe_decode(cairn_session *s, const model_layer *L)
{
    const model_hparams *hp = &s->m->hp;
    const int nu = hp->n_expert_used, n_embd = hp->n_embd;
    const size_t fe = (size_t)hp->n_ff_exp;
    int order[MOE_FUSED_MAX_USED];                 /* slots by expert index */
    for (int j = 0; j < nu; j++) {
        int k = j;
        while (k > 0 && s->moe_sel[order[k - 1]] > s->moe_sel[j]) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = j;
    }
    qmat g[MOE_FUSED_MAX_USED + 1], u[MOE_FUSED_MAX_USED + 1], d[MOE_FUSED_MAX_USED + 1];
    mm_part gu[2 * (MOE_FUSED_MAX_USED + 1)] = {{NULL, NULL, NULL}}, dn[MOE_FUSED_MAX_USED + 1] = {{NULL, NULL, NULL}};
    int n = 0;
    for (int j = 0; j < nu; j++, n++) {
        int e = s->moe_sel[j];
        g[n] = model_expert(&L->gate_exps, L->gate_stride, e);
        u[n] = model_expert(&L->up_exps, L->up_stride, e);
        d[n] = model_expert(&L->down_exps, L->down_stride, e);
    }
    bool shared = L->gate_shexp.data != NULL;
    if (shared) {
        g[n] = L->gate_shexp;
        u[n] = L->up_shexp;
        d[n] = L->down_shexp;
        n++;
    }
    for (int i = 0; i < n; i++) {
        size_t off = (size_t)i * fe;             /* the shared expert (last) starts after the routed ones */
        gu[2 * i] = (mm_part){&g[i], s->xb, s->hb + off};
        gu[2 * i + 1] = (mm_part){&u[i], s->xb, s->hb2 + off};
        dn[i] = (mm_part){&d[i], s->hb + off, s->yg + (size_t)i * n_embd};
    }
    CAIRN_TRY(matmul_group(s, gu, 2 * n, 1));
    swiglu_n(s->hb, s->hb2, (size_t)nu * fe + (shared ? (size_t)L->gate_shexp.rows : 0));
    CAIRN_TRY(matmul_group(s, dn, n, 1));
    memset(s->xb2, 0, (size_t)n_embd * sizeof(float));
    for (int k = 0; k < nu; k++) {
        const int j = order[k];
        const float *y = s->yg + (size_t)j * n_embd;
        const float w = s->moe_w[j];
        for (int c = 0; c < n_embd; c++)
            s->xb2[c] += w * y[c];
    }
    if (shared)
        moe_add_shared(s, L, s->yg + (size_t)nu * n_embd, 1);
    return CAIRN_OK;
}

static cairn_status ffn_moe(cairn_session *s, int il, const model_layer *L, int T)
{
    const model_hparams *hp = &s->m->hp;
    const int ne = hp->n_expert, nu = hp->n_expert_used, n_embd = hp->n_embd;
    CAIRN_TRY(matmul(&s->mm, &L->ffn_gate_inp, s->xb, s->moe_logits, T));   /* (T, n_expert) */
    moe_route(s, il, T);
    if (T == 1 && s->pool && moe_fused_fits(s))
        return ffn_moe_decode(s, L);
    memset(s->xb2, 0, (size_t)T * n_embd * sizeof(float));
    for (int e = 0; e < ne; e++) {
        int n = 0;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < nu; j++)
                if (s->moe_sel[(size_t)t * nu + j] == e) {
                    s->moe_rows[n] = t;
                    s->moe_rw[n++] = s->moe_w[(size_t)t * nu + j];
                }
        if (!n)
            continue;   /* never touched: its pages stay unread */
        const qmat g = model_expert(&L->gate_exps, L->gate_stride, e);
        const qmat u = model_expert(&L->up_exps, L->up_stride, e);
        const qmat d = model_expert(&L->down_exps, L->down_stride, e);
        const float *xin = s->xb;
        if (T > 1) {    /* gather the routed tokens into one batch */
            for (int i = 0; i < n; i++)
                memcpy(s->xg + (size_t)i * n_embd, s->xb + (size_t)s->moe_rows[i] * n_embd, (size_t)n_embd * sizeof(float));
            xin = s->xg;
        }
        CAIRN_TRY(expert_ffn(s, &g, &u, &d, xin, s->yg, n));                  /* yg (n, n_embd) */
        for (int i = 0; i < n; i++) {
            float *out = s->xb2 + (size_t)s->moe_rows[i] * n_embd;
            const float *y = s->yg + (size_t)i * n_embd;
            const float w = s->moe_rw[i];
            for (int c = 0; c < n_embd; c++)
                out[c] += w * y[c];
        }
    }
    if (L->gate_shexp.data) {
        CAIRN_TRY(expert_ffn(s, &L->gate_shexp, &L->up_shexp, &L->down_shexp, s->xb, s->yg, T));
        moe_add_shared(s, L, s->yg, T);
    }
    return CAIRN_OK;
}

const uint64_t *session_expert_counts(const cairn_session *s) { return s->expert_counts; }

/* ---- the forward pass over one batch of T tokens ----
 * The batch holds one or more sequences (batch.h): rows seqs[i].row0 ..
 * row0 + n - 1 continue sequence seqs[i].kv at its n_past. Weight products
 * run over all T rows at once (each weight read once per batch); RoPE, the
 * KV store and attention are per sequence, each over its own cache. The
 * logits of each sequence's last row go to seqs[i].logits. */

typedef struct fwd_seq { cairn_session *kv; int row0, n; float *logits; } fwd_seq;

static cairn_status forward_seqs(cairn_session *s, const int32_t *ids, int T, const fwd_seq *seqs, int n_seqs)
{
    const cairn_model *m = s->m;
    const model_hparams *hp = &m->hp;
    const int n_embd = hp->n_embd;
    const size_t xn = (size_t)T * n_embd;

    /* x (T, n_embd) = embedding rows. Untied models read them with pread:
     * only a few rows of the table are ever used, and touching them through
     * the mapping would make ~64 KiB around each resident (fault-around). */
    const qtype_traits *et = qtype_get(m->tok_embd.type);
    const size_t erow = qtype_row_size(m->tok_embd.type, n_embd);
    for (int t = 0; t < T; t++) {
        const char *row = (const char *)m->tok_embd.data + (size_t)ids[t] * erow;
        if (s->embd_row) {
            gguf_read(m->gguf, row, erow, s->embd_row);
            row = s->embd_row;
        }
        et->to_float(row, s->x + (size_t)t * n_embd, n_embd);
    }

    for (int i = 0; i < n_seqs; i++)
        rope_angles(s, seqs[i].row0, seqs[i].kv->n_past, seqs[i].n);

    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];

        /* attention block: xb = rmsnorm(x); q, k, v = xb W^T (+ b); RoPE */
        norm_arg na = {L->attn_norm, s->xb, s->x};
        for_rows(s, rmsnorm_rows, &na, T);
        const mm_part qkv[] = {
            {&L->wq, s->xb, s->q},                              /* (T, q_dim) */
            {&L->wk, s->xb, s->k},                              /* (T, kv_dim) */
            {&L->wv, s->xb, s->v},                              /* (T, kv_dim) */
        };
        CAIRN_TRY(matmul_group(s, qkv, 3, T));
        qk_arg qa = {L};
        for_rows(s, qk_rows, &qa, T);
        /* per sequence: q rows <- softmax(q K^T / sqrt(hd)) V over its positions [0, n_past + n) */
        const size_t q_dim = (size_t)hp->n_head * hp->head_dim;
        attn_args aas[BATCH_MAX_SEQS];
        for (int i = 0; i < n_seqs; i++) {
            cairn_session *kv = seqs[i].kv;
            kv_store(s, kv, il, seqs[i].row0, seqs[i].n);
            aas[i] = (attn_args){
                .n_tok = seqs[i].n, .n_past = kv->n_past, .n_ctx = kv->n_ctx,
                .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .hd_k = s->hd_k,
                .kv_type = s->opts.kv_type, .kv_row = s->kv_row,
                .k_cache = (const char *)kv->k_cache + (size_t)il * kv->kv_layer,
                .v_cache = (const char *)kv->v_cache + (size_t)il * kv->kv_layer,
                .q = s->q + (size_t)seqs[i].row0 * q_dim, .out = s->q + (size_t)seqs[i].row0 * q_dim,
                .kf = s->kf, .vf = s->vf, .scratch = s->att_scratch,
                .round_f16 = s->opts.kv_type == QT_F16,
            };
        }
        if (n_seqs == 1)
            attention(s->pool, &aas[0]);
        else
            attention_multi(s->pool, aas, n_seqs);   /* one dispatch for all sequences */

        /* x += att Wo^T (the attention output is in q) */
        CAIRN_TRY(matmul(&s->mm, &L->wo, s->q, s->xb2, T));     /* (T, n_embd) */
        add_rows(s->x, s->xb2, xn);

        /* FFN block: x += ffn(rmsnorm(x)) */
        na = (norm_arg){L->ffn_norm, s->xb, s->x};
        for_rows(s, rmsnorm_rows, &na, T);
        if (hp->n_expert > 0)
            CAIRN_TRY(ffn_moe(s, il, L, T));                      /* xb2 (T, n_embd) */
        else
            CAIRN_TRY(ffn_dense(s, L, T));                        /* xb2 (T, n_embd) */
        add_rows(s->x, s->xb2, xn);
    }

    /* logits (n_vocab,) = rmsnorm(x[last]) Wout^T — only each sequence's last
     * token; several sequences share one product (rows of xb). */
    for (int i = 0; i < n_seqs; i++) {
        const int last = seqs[i].row0 + seqs[i].n - 1;
        rmsnorm(s->xb + (size_t)i * n_embd, s->x + (size_t)last * n_embd, m->output_norm, n_embd, hp->norm_eps);
    }
    if (n_seqs == 1)
        return matmul(&s->mm, &m->output, s->xb, seqs[0].logits, 1);
    CAIRN_TRY(matmul(&s->mm, &m->output, s->xb, s->logits_rows, n_seqs));
    for (int i = 0; i < n_seqs; i++)
        memcpy(seqs[i].logits, s->logits_rows + (size_t)i * hp->n_vocab, (size_t)hp->n_vocab * sizeof(float));
    return CAIRN_OK;
}

static cairn_status forward(cairn_session *s, const int32_t *ids, int T)
{
    const fwd_seq one = {s, 0, T, s->logits};
    return forward_seqs(s, ids, T, &one, 1);
}

cairn_status session_eval(cairn_session *s, const int32_t *ids, int n, float **logits)
{
    if (logits)
        *logits = NULL;
    if (n <= 0)
        return cairn_fail(CAIRN_ERR_INVALID, "session: no tokens to evaluate");
    if (n > s->n_ctx - s->n_past)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "session: %d tokens exceed the context (%d of %d used)",
                          n, s->n_past, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->m->hp.n_vocab)
            return cairn_fail(CAIRN_ERR_INVALID, "session: token id %d outside the vocabulary (%d)",
                              ids[i], s->m->hp.n_vocab);
    for (int i = 0; i < n; i += s->n_batch) {
        int T = CAIRN_MIN(s->n_batch, n - i);
        cairn_status st = forward(s, ids + i, T);
        if (st != CAIRN_OK)
            return st;
        s->n_past += T;
    }
    if (logits)
        *logits = s->logits;
    return CAIRN_OK;
}

/* ---- several sequences in one forward pass (batch.h) ---- */

int session_n_batch(const cairn_session *s) { return s->n_batch; }
float *session_logits(cairn_session *s) { return s->logits; }

cairn_status batch_eval(cairn_session *host, const batch_seq *seqs, int n_seqs)
{
    if (n_seqs <= 0 || n_seqs > BATCH_MAX_SEQS)
        return cairn_fail(CAIRN_ERR_INVALID, "batch: %d sequences (1..%d)", n_seqs, BATCH_MAX_SEQS);
    int total = 0;
    for (int i = 0; i < n_seqs; i++) {
        const cairn_session *kv = seqs[i].s;
        if (!kv || kv->m != host->m || kv->opts.kv_type != host->opts.kv_type || kv->n_ctx > host->n_ctx)
            return cairn_fail(CAIRN_ERR_INVALID, "batch: sequence %d is not compatible with the host session", i);
        if (seqs[i].n <= 0)
            return cairn_fail(CAIRN_ERR_INVALID, "batch: sequence %d has no tokens", i);
        if (seqs[i].n > kv->n_ctx - kv->n_past)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "batch: sequence %d: %d tokens exceed its context (%d of %d used)",
                              i, seqs[i].n, kv->n_past, kv->n_ctx);
        for (int j = 0; j < i; j++)
            if (seqs[j].s == kv)
                return cairn_fail(CAIRN_ERR_INVALID, "batch: sequence %d appears twice", i);
        for (int t = 0; t < seqs[i].n; t++)
            if (seqs[i].ids[t] < 0 || seqs[i].ids[t] >= host->m->hp.n_vocab)
                return cairn_fail(CAIRN_ERR_INVALID, "batch: token id %d outside the vocabulary (%d)",
                                  seqs[i].ids[t], host->m->hp.n_vocab);
        total += seqs[i].n;
    }
    if (total > host->n_batch)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "batch: %d tokens exceed the host's batch of %d", total, host->n_batch);
    if (n_seqs > 1 && host->logits_rows_n < n_seqs) {
        /* grown to the most sequences seen, then reused: no allocation per step */
        bool ok = true;
        float *p = alloc_f32((size_t)n_seqs, (size_t)host->m->hp.n_vocab, &ok);
        if (!ok)
            return cairn_fail(CAIRN_ERR_NOMEM, "batch: out of memory for %d logit rows", n_seqs);
        cairn_free_aligned(host->logits_rows);
        host->logits_rows = p;
        host->logits_rows_n = n_seqs;
    }
    int32_t ids[SESSION_MAX_BATCH];
    fwd_seq fs[BATCH_MAX_SEQS];
    int row = 0;
    for (int i = 0; i < n_seqs; i++) {
        memcpy(ids + row, seqs[i].ids, (size_t)seqs[i].n * sizeof *ids);
        fs[i] = (fwd_seq){seqs[i].s, row, seqs[i].n, seqs[i].s->logits};
        row += seqs[i].n;
    }
    CAIRN_TRY(forward_seqs(host, ids, total, fs, n_seqs));
    for (int i = 0; i < n_seqs; i++)
        seqs[i].s->n_past += seqs[i].n;
    return CAIRN_OK;
}
