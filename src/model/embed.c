/*
 * embed.c — sentence embeddings and cross-encoder scores (embed.h) over a
 * BERT-family encoder bound by bert.c.
 *
 * Batching without waste: the texts of one call are tokenized and packed
 * one after another into a run of at most cap tokens (no padding); every
 * weight matrix is applied once to all packed tokens (matmul over the
 * thread pool); attention runs per (sequence, head) pair, each pair seeing
 * only its own sequence's keys (a block-diagonal mask without the mask).
 * Every per-token step (embedding, layer norm, GELU, each output of a
 * matmul: one kernel call over the whole row) is independent of the other
 * tokens of the run and of the thread that runs it, and each (sequence,
 * head) is computed whole by one thread, so a text gives the same vector bit
 * for bit alone or in any batch, with any thread count. (With AVX2 the
 * products are our float GEMM, one fma chain per output; without it the
 * kernels' scalar matmul, one vec_dot call per output: invariant either way.
 * Only CAIRN_KERNELS=avx512 without AVX2 steps could reach matmul's AVX-512
 * tiles, which depend on the run size in the last bits — not a real CPU.)
 *
 * Per layer (T packed tokens, d wide, scratch in embed_ctx):
 *   q, k, v = x Wq^T, x Wk^T, x Wv^T        (T, d) each, or one (T, 3d) for fused qkv
 *   att     = softmax(q k^T / sqrt(hd)) v    per sequence and head; biases and RoPE
 *                                            applied inside the same task
 *   x       = LN(x + att Wo^T + bo)
 *   ff      = gelu(x Wup^T + bup)            (T, ff)  [nomic: silu(x Wg^T) * x Wup^T]
 *   x       = LN(x + ff Wdown^T + bdown)
 * (the last layer under CLS / last pooling past attention for the pooled rows
 * only) then pooling (mean / CLS / last) per sequence and L2 normalisation, or
 * for RANK the head: tanh(cls x_cls + b), then cls.output, score = output 0.
 */
#include "model/bert.h"
#include "model/embed_ops.h"
#include "base/pool.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Tokens per forward run (raised to n_ctx when a model's context is longer):
 * enough rows for the matmul to reuse each weight block many times, few
 * enough that the run's activations stay near the caches. */
#define EMBED_RUN_TOKENS 1024
#define EMBED_MAX_TEXTS_PER_CALL (1 << 24)

struct embed_ctx {
    const cairn_embedder *e;
    cairn_pool *pool;
    matmul_ctx mm;
    int nth;
    int cap, cap_seq;                /* tokens and sequences per run */
    float *x;                        /* (cap, d) residual stream */
    float *qkv;                      /* (cap, 3d): q, k, v (split: three (cap, d) blocks) */
    float *att;                      /* (cap, d) */
    float *tmp;                      /* (cap, d) */
    float *ff;                       /* (cap, n_ff) */
    float *ff2;                      /* (cap, n_ff) nomic-bert: the up half of SwiGLU (float GEMM path) */
    float *panel, *rowbuf;           /* (nth, 16 * kmax), (nth, kmax): float GEMM weight panels */
    int kmax;
    int32_t *ids, *pos;              /* (cap,) */
    int *seq0, *seqn;                /* (cap_seq,) first token and length of each packed sequence */
    float *sc;                       /* (nth, n_ctx) attention row of scores, per thread */
    int32_t *tok;                    /* (n_ctx,) one text's tokens */
    float *pooled;                   /* (cap_seq, d) */
    float *head;                     /* (cap_seq, max(d, n_out)) classification head scratch */
    int n_out;                       /* rows of cls.output (0 = none) */
};

/* ---- parallel loops ---- */

typedef void (*rows_fn)(embed_ctx *c, const void *arg, int64_t r0, int64_t r1, int ith);

typedef struct par_job {
    embed_ctx *c;
    rows_fn fn;
    const void *arg;
    int64_t n, grain;
    _Atomic int64_t next;
} par_job;

static void par_worker(void *a, int ith, int nth)
{
    (void)nth;
    par_job *j = a;
    for (;;) {
        int64_t r0 = atomic_fetch_add_explicit(&j->next, j->grain, memory_order_relaxed);
        if (r0 >= j->n)
            break;
        j->fn(j->c, j->arg, r0, CAIRN_MIN(r0 + j->grain, j->n), ith);
    }
}

/* fn over [0, n) in pieces of `grain`, claimed from a counter: any thread
 * may run any piece, so every piece must be computed the same way anywhere. */
static void par_for(embed_ctx *c, int64_t n, int64_t grain, rows_fn fn, const void *arg)
{
    if (n <= 0)
        return;
    if (!c->pool || n <= grain) {
        fn(c, arg, 0, n, 0);
        return;
    }
    par_job j = {c, fn, arg, n, grain, 0};
    cairn_pool_run_dynamic(c->pool, par_worker, &j);
}

/* ---- context ---- */

void embed_ctx_free(embed_ctx *c)
{
    if (!c)
        return;
    matmul_ctx_free(&c->mm);
    cairn_pool_free(c->pool);
    cairn_free_aligned(c->x);
    cairn_free_aligned(c->qkv);
    cairn_free_aligned(c->att);
    cairn_free_aligned(c->tmp);
    cairn_free_aligned(c->ff);
    cairn_free_aligned(c->ff2);
    cairn_free_aligned(c->panel);
    cairn_free_aligned(c->rowbuf);
    cairn_free(c->ids);
    cairn_free(c->pos);
    cairn_free(c->seq0);
    cairn_free(c->seqn);
    cairn_free_aligned(c->sc);
    cairn_free(c->tok);
    cairn_free(c->pooled);
    cairn_free(c->head);
    cairn_free(c);
}

static float *fbuf(size_t rows, size_t cols)
{
    size_t n;
    if (!cairn_mul_ok(rows, cols, &n) || !cairn_mul_ok(n, sizeof(float), &n))
        return NULL;
    return cairn_malloc_aligned(n ? n : 64, 64);
}

cairn_status embed_ctx_new(const cairn_embedder *e, embed_ctx **out)
{
    *out = NULL;
    if (!e)
        return cairn_fail(CAIRN_ERR_INVALID, "embed_ctx_new: no embedder");
    embed_ctx *c = cairn_calloc(1, sizeof *c);
    if (!c)
        return cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory");
    c->e = e;
    c->nth = CAIRN_MAX(e->n_threads, 1);
    if (c->nth > 1) {
        cairn_status st = cairn_pool_new(c->nth, &c->pool);
        if (st != CAIRN_OK) {
            cairn_free(c);
            return st;
        }
        c->mm.pool = c->pool;
    }
    c->cap = CAIRN_MAX(EMBED_RUN_TOKENS, e->n_ctx);
    c->cap_seq = c->cap / 2;         /* every sequence has at least its two special tokens */
    c->n_out = e->cls_out.data ? (int)e->cls_out.rows : 0;
    size_t d = (size_t)e->d, cap = (size_t)c->cap;
    c->x = fbuf(cap, d);
    c->qkv = fbuf(cap, 3 * d);
    c->att = fbuf(cap, d);
    c->tmp = fbuf(cap, d);
    c->ff = fbuf(cap, (size_t)e->n_ff);
    c->kmax = CAIRN_MAX(e->d, e->n_ff);
    c->panel = fbuf((size_t)c->nth * 16, (size_t)c->kmax);
    c->rowbuf = fbuf((size_t)c->nth, (size_t)c->kmax);
    c->ff2 = e->nomic ? fbuf(cap, (size_t)e->n_ff) : fbuf(1, 16);
    c->ids = cairn_calloc(cap, sizeof *c->ids);
    c->pos = cairn_calloc(cap, sizeof *c->pos);
    c->seq0 = cairn_calloc((size_t)c->cap_seq, sizeof *c->seq0);
    c->seqn = cairn_calloc((size_t)c->cap_seq, sizeof *c->seqn);
    c->sc = fbuf((size_t)c->nth, (size_t)e->n_ctx);
    c->tok = cairn_calloc((size_t)e->n_ctx, sizeof *c->tok);
    c->pooled = cairn_calloc((size_t)c->cap_seq * d, sizeof(float));
    c->head = cairn_calloc((size_t)c->cap_seq * CAIRN_MAX(d, (size_t)c->n_out), sizeof(float));
    if (!c->x || !c->qkv || !c->att || !c->tmp || !c->ff || !c->ff2 || !c->panel || !c->rowbuf || !c->ids || !c->pos || !c->seq0 || !c->seqn || !c->sc ||
        !c->tok || !c->pooled || !c->head) {
        embed_ctx_free(c);
        return cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory for a %d-token batch", (int)cap);
    }
    *out = c;
    return CAIRN_OK;
}

/* ---- load ---- */

cairn_status embedder_load(const char *path, const embed_opts *opts, cairn_embedder **out)
{
    *out = NULL;
    if (!path)
        return cairn_fail(CAIRN_ERR_INVALID, "embedder_load: no path");
    gguf_file *g;
    CAIRN_TRY(gguf_open(path, &g));
    cairn_embedder *e = cairn_calloc(1, sizeof *e);
    if (!e) {
        gguf_close(g);
        return cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory");
    }
    cairn_status st = bert_bind(g, e);
    if (st != CAIRN_OK) {
        bert_unbind(e);
        cairn_free(e);
        return st;
    }
    e->n_threads = opts && opts->n_threads > 1 ? CAIRN_MIN(opts->n_threads, 256) : 1;
    *out = e;
    return CAIRN_OK;
}

void embedder_free(cairn_embedder *e)
{
    if (!e)
        return;
    embed_ctx_free(e->ictx);
    bert_unbind(e);
    cairn_free(e);
}

int embedder_dim(const cairn_embedder *e) { return e->d; }
int embedder_n_ctx(const cairn_embedder *e) { return e->n_ctx; }
embed_pooling embedder_pooling(const cairn_embedder *e) { return e->pooling; }
const char *embedder_arch(const cairn_embedder *e) { return e->arch; }
const char *embedder_id(const cairn_embedder *e) { return e->id; }
const char *embedder_query_prefix(const cairn_embedder *e) { return e->query_prefix; }
const char *embedder_doc_prefix(const cairn_embedder *e) { return e->doc_prefix; }

/* ---- dense products ---- */

/* y (T, rows) = x (T, cols) W^T. With AVX2: the float GEMM of
 * embed_gemm_avx2.c, one 16-row weight panel per piece of work (dequantized
 * once with the type's to_float into the thread's panel buffer, then
 * multiplied by every token of the run in tiles of 6). Without: the
 * kernels' quantized matmul. Either way each output depends on its own
 * token's row only. */
#define GEMM_PANEL 16

typedef struct gemm_arg {
    const qmat *w;
    const float *x;
    float *y;
    int T;
} gemm_arg;

static void rows_gemm(embed_ctx *c, const void *arg, int64_t i0, int64_t i1, int ith)
{
    const gemm_arg *a = arg;
    const qmat *w = a->w;
    int K = (int)w->cols, R = (int)w->rows;
    const qtype_traits *qt = qtype_get(w->type);
    size_t rs = qtype_row_size(w->type, K);
    float *P = c->panel + (size_t)ith * GEMM_PANEL * c->kmax, *row = c->rowbuf + (size_t)ith * c->kmax;
    for (int64_t pi = i0; pi < i1; pi++) {
        int r0 = (int)pi * GEMM_PANEL, nc = CAIRN_MIN(GEMM_PANEL, R - r0);
        for (int j = 0; j < GEMM_PANEL; j++) {
            if (j < nc)
                qt->to_float((const uint8_t *)w->data + (size_t)(r0 + j) * rs, row, K);
            for (int kk = 0; kk < K; kk++)
                P[(size_t)kk * GEMM_PANEL + j] = j < nc ? row[kk] : 0.0f;
        }
        embed_gemm_panel_avx2(a->x, (size_t)K, a->T, K, P, a->y + r0, (size_t)R, nc);
    }
}

static cairn_status emm(embed_ctx *c, const qmat *w, const float *x, float *y, int T)
{
    if (!embed_gemm_fast() || w->cols > c->kmax)
        return matmul(&c->mm, w, x, y, T);
    gemm_arg a = {w, x, y, T};
    par_for(c, (w->rows + GEMM_PANEL - 1) / GEMM_PANEL, 1, rows_gemm, &a);
    return CAIRN_OK;
}

/* g = silu(g) * u over rows of n_ff (nomic-bert, float GEMM path) */
static void rows_silu(embed_ctx *c, const void *arg, int64_t r0, int64_t r1, int ith)
{
    (void)arg;
    (void)ith;
    size_t f = (size_t)c->e->n_ff;
    embed_silu_mul(c->ff + (size_t)r0 * f, c->ff2 + (size_t)r0 * f, (size_t)(r1 - r0) * f);
}

/* ---- forward steps ---- */

/* x[t] = LN(tok_embd[id] + pos_embd[pos] + type_embd[0]) */
static void rows_embed(embed_ctx *c, const void *arg, int64_t r0, int64_t r1, int ith)
{
    (void)arg;
    (void)ith;
    const cairn_embedder *e = c->e;
    int d = e->d;
    const qtype_traits *tt = qtype_get(e->tok_embd.type);
    size_t trow = qtype_row_size(e->tok_embd.type, d);
    for (int64_t t = r0; t < r1; t++) {
        float *x = c->x + t * d, *s = c->tmp + t * d;
        tt->to_float((const uint8_t *)e->tok_embd.data + (size_t)c->ids[t] * trow, x, d);
        if (e->pos_embd.data) {
            qtype_get(e->pos_embd.type)->to_float((const uint8_t *)e->pos_embd.data +
                                                      (size_t)c->pos[t] * qtype_row_size(e->pos_embd.type, d), s, d);
            for (int i = 0; i < d; i++)
                x[i] += s[i];
        }
        if (e->type_embd.data) {
            qtype_get(e->type_embd.type)->to_float(e->type_embd.data, s, d);
            for (int i = 0; i < d; i++)
                x[i] += s[i];
        }
        embed_layernorm(x, NULL, NULL, e->tok_ln_w, e->tok_ln_b, d, e->eps);
    }
}

typedef struct att_arg {
    const bert_layer *L;
    float *q, *k, *v;
    int ld;
    int only;                        /* -1: every query row; 0: the first row only, 1: the last row only,
                                        written to row s of att (the last layer under CLS/last pooling) */
} att_arg;

/* One (sequence, head) per index: its slices of q, k, v get their biases
 * (and RoPE), then att rows = softmax(q k^T * scale) v. */
static void rows_attention(embed_ctx *c, const void *arg, int64_t i0, int64_t i1, int ith)
{
    const att_arg *a = arg;
    const cairn_embedder *e = c->e;
    int H = e->n_head, hd = e->hd, ld = a->ld;
    const bert_layer *L = a->L;
    const float *bq = L->bqkv ? L->bqkv : L->bq;
    const float *bk = L->bqkv ? L->bqkv + e->d : L->bk;
    const float *bv = L->bqkv ? L->bqkv + 2 * e->d : L->bv;
    float *sc = c->sc + (size_t)ith * e->n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t idx = i0; idx < i1; idx++) {
        int s = (int)(idx / H), h = (int)(idx % H);
        int t0 = c->seq0[s], n = c->seqn[s];
        for (int i = 0; i < n; i++) {
            size_t off = (size_t)(t0 + i) * ld + (size_t)h * hd;
            float *q = a->q + off, *k = a->k + off, *v = a->v + off;
            for (int j = 0; j < hd; j++) {
                if (bq) q[j] += bq[h * hd + j];
                if (bk) k[j] += bk[h * hd + j];
                if (bv) v[j] += bv[h * hd + j];
            }
            if (e->rope_cos) {
                int half = e->n_rot / 2;
                const float *cs = e->rope_cos + (size_t)c->pos[t0 + i] * half;
                const float *sn = e->rope_sin + (size_t)c->pos[t0 + i] * half;
                embed_rope_neox(q, cs, sn, half);
                embed_rope_neox(k, cs, sn, half);
            }
        }
        int qa = a->only == 1 ? n - 1 : 0, qb = a->only == 0 ? 1 : n;
        for (int i = qa; i < qb; i++) {
            const float *q = a->q + (size_t)(t0 + i) * ld + (size_t)h * hd;
            float *o = c->att + (size_t)(a->only >= 0 ? s : t0 + i) * e->d + (size_t)h * hd;
            embed_attend_row(q, a->k + (size_t)t0 * ld + (size_t)h * hd, a->v + (size_t)t0 * ld + (size_t)h * hd,
                             (size_t)ld, n, hd, scale, sc, o);
        }
    }
}

typedef struct ln_arg {
    const float *add, *bias, *w, *b;
} ln_arg;

/* x = LN(x + add + bias) */
static void rows_add_ln(embed_ctx *c, const void *arg, int64_t r0, int64_t r1, int ith)
{
    (void)ith;
    const ln_arg *a = arg;
    int d = c->e->d;
    for (int64_t t = r0; t < r1; t++)
        embed_layernorm(c->x + t * d, a->add + t * d, a->bias, a->w, a->b, d, c->e->eps);
}

/* ff = gelu(ff + b_up) */
static void rows_gelu(embed_ctx *c, const void *arg, int64_t r0, int64_t r1, int ith)
{
    (void)ith;
    const float *b = arg;
    int f = c->e->n_ff;
    for (int64_t t = r0; t < r1; t++)
        embed_gelu_bias(c->ff + t * f, b, f);
}

/* One layer over the T packed tokens. only >= 0 (the last layer when only
 * the first (0) or last (1) token of each sequence is pooled): keys and
 * values of every token, but attention, output and FFN for the pooled rows
 * alone, which end up as rows 0..nseq-1 of x — the same per-row arithmetic,
 * so the same bits as the full layer. */
static cairn_status run_layer(embed_ctx *c, const bert_layer *L, int T, int nseq, int only)
{
    const cairn_embedder *e = c->e;
    int d = e->d;
    att_arg a = {L, NULL, NULL, NULL, 0, only};
    if (L->wqkv.data) {
        CAIRN_TRY(emm(c, &L->wqkv, c->x, c->qkv, T));
        a.q = c->qkv;
        a.k = c->qkv + d;
        a.v = c->qkv + 2 * d;
        a.ld = 3 * d;
    } else {
        qmat ws[3] = {L->wq, L->wk, L->wv};
        float *ys[3] = {c->qkv, c->qkv + (size_t)T * d, c->qkv + 2 * (size_t)T * d};
        if (embed_gemm_fast())
            for (int i = 0; i < 3; i++)
                CAIRN_TRY(emm(c, &ws[i], c->x, ys[i], T));
        else
            CAIRN_TRY(matmul_multi(&c->mm, ws, 3, c->x, ys, T));
        a.q = ys[0];
        a.k = ys[1];
        a.v = ys[2];
        a.ld = d;
    }
    par_for(c, (int64_t)nseq * e->n_head, 1, rows_attention, &a);
    if (only >= 0) {
        /* the residual rows of the pooled tokens to rows 0..nseq-1; row s
         * comes from token >= s, and later sources lie beyond, so in order */
        for (int s = 0; s < nseq; s++) {
            int t = c->seq0[s] + (only ? c->seqn[s] - 1 : 0);
            if (t != s)
                memcpy(c->x + (size_t)s * d, c->x + (size_t)t * d, (size_t)d * sizeof(float));
        }
        T = nseq;
    }
    CAIRN_TRY(emm(c, &L->wo, c->att, c->tmp, T));
    ln_arg l1 = {c->tmp, L->bo, L->ln1_w, L->ln1_b};
    par_for(c, T, 16, rows_add_ln, &l1);
    if (e->nomic && embed_gemm_fast()) {
        CAIRN_TRY(emm(c, &L->gate, c->x, c->ff, T));
        CAIRN_TRY(emm(c, &L->up, c->x, c->ff2, T));
        par_for(c, T, 8, rows_silu, NULL);
    } else if (e->nomic) {
        CAIRN_TRY(matmul_glu(&c->mm, &L->gate, &L->up, c->x, c->ff, T, embed_silu_mul));
    } else {
        CAIRN_TRY(emm(c, &L->up, c->x, c->ff, T));
        par_for(c, T, 8, rows_gelu, L->b_up);
    }
    CAIRN_TRY(emm(c, &L->down, c->ff, c->tmp, T));
    ln_arg l2 = {c->tmp, e->nomic ? NULL : L->b_down, L->ln2_w, L->ln2_b};
    par_for(c, T, 16, rows_add_ln, &l2);
    return CAIRN_OK;
}

/* The packed run: c->ids/pos (T tokens) in nseq sequences -> c->pooled (nseq, d). */
static cairn_status forward(embed_ctx *c, int T, int nseq, embed_pooling pool)
{
    const cairn_embedder *e = c->e;
    int d = e->d;
    par_for(c, T, 16, rows_embed, NULL);
    int only = pool == EMBED_POOL_MEAN ? -1 : pool == EMBED_POOL_LAST ? 1 : 0;
    for (int il = 0; il < e->n_layer; il++)
        CAIRN_TRY(run_layer(c, &e->layers[il], T, nseq, il == e->n_layer - 1 ? only : -1));
    for (int s = 0; s < nseq; s++) {
        float *p = c->pooled + (size_t)s * d;
        if (only < 0)
            embed_mean_rows(c->x + (size_t)c->seq0[s] * d, c->seqn[s], d, p);
        else
            memcpy(p, c->x + (size_t)s * d, (size_t)d * sizeof *p);
    }
    return CAIRN_OK;
}

/* One text's tokens into c->tok: [bos] content [eos], the content cut to
 * fit n_ctx. Returns the length; *cut when it was truncated. */
static cairn_status tokenize_one(embed_ctx *c, const char *text, size_t len, int *n_out, bool *cut)
{
    const cairn_embedder *e = c->e;
    bool bos = tokenizer_add_bos(e->tok), eos = tokenizer_add_eos(e->tok);
    int room = e->n_ctx - (int)bos - (int)eos;
    size_t need = 0;
    CAIRN_TRY(tokenizer_encode(e->tok, text, len, false, false, c->tok + (int)bos, (size_t)room, &need));
    int n = (int)CAIRN_MIN(need, (size_t)room);
    *cut = need > (size_t)room;
    if (bos)
        c->tok[0] = tokenizer_bos(e->tok);
    n += (int)bos;
    if (eos)
        c->tok[n++] = tokenizer_eos(e->tok);
    if (n == 0)   /* an empty text under a tokenizer without special tokens: one padding token */
        c->tok[n++] = 0;
    *n_out = n;
    return CAIRN_OK;
}

/* Append c->tok[0..n) as the next sequence of the run. */
static void pack(embed_ctx *c, int *T, int *nseq, int n)
{
    c->seq0[*nseq] = *T;
    c->seqn[*nseq] = n;
    for (int i = 0; i < n; i++) {
        c->ids[*T + i] = c->tok[i];
        c->pos[*T + i] = i;
    }
    *T += n;
    (*nseq)++;
}

static cairn_status get_ctx(cairn_embedder *e, embed_ctx **ctx)
{
    if (*ctx)
        return (*ctx)->e == e ? CAIRN_OK : cairn_fail(CAIRN_ERR_INVALID, "embed: context of another embedder");
    if (!e->ictx)
        CAIRN_TRY(embed_ctx_new(e, &e->ictx));
    *ctx = e->ictx;
    return CAIRN_OK;
}

static void l2_normalize(float *v, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)v[i] * v[i];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int i = 0; i < d; i++)
            v[i] *= inv;
    }
}

cairn_status embedder_embed(cairn_embedder *e, embed_ctx *ctx, const char *const *texts, const size_t *lens, int n,
                            float *out, embed_stats *st)
{
    int64_t t_start = cairn_mono_ns();
    if (!e || n < 0 || n > EMBED_MAX_TEXTS_PER_CALL || (n > 0 && (!texts || !lens || !out)))
        return cairn_fail(CAIRN_ERR_INVALID, "embedder_embed: bad arguments");
    CAIRN_TRY(get_ctx(e, &ctx));
    embed_stats s = {0};
    embed_pooling pool = e->pooling == EMBED_POOL_RANK ? EMBED_POOL_CLS : e->pooling;
    int d = e->d, T = 0, nseq = 0, first = 0;   /* texts [first, i) are packed in the run */
    for (int i = 0; i <= n; i++) {
        int len = 0;
        bool cut = false;
        if (i < n) {
            if (!texts[i] && lens[i])
                return cairn_fail(CAIRN_ERR_INVALID, "embedder_embed: text %d is NULL", i);
            CAIRN_TRY(tokenize_one(ctx, texts[i] ? texts[i] : "", lens[i], &len, &cut));
            s.n_truncated += cut;
        }
        if (nseq > 0 && (i == n || T + len > ctx->cap || nseq == ctx->cap_seq)) {
            CAIRN_TRY(forward(ctx, T, nseq, pool));
            for (int k = 0; k < nseq; k++) {
                float *o = out + (size_t)(first + k) * d;
                memcpy(o, ctx->pooled + (size_t)k * d, (size_t)d * sizeof *o);
                l2_normalize(o, d);
            }
            s.n_tokens += (uint64_t)T;
            first = i;
            T = nseq = 0;
        }
        if (i < n)
            pack(ctx, &T, &nseq, len);
    }
    if (s.n_truncated)
        CAIRN_WARN("embed: %llu of %d texts longer than the model's %d-token context were truncated",
                   (unsigned long long)s.n_truncated, n, e->n_ctx);
    s.n_texts = (uint64_t)n;
    s.ms = (double)(cairn_mono_ns() - t_start) / 1e6;
    if (st)
        *st = s;
    return CAIRN_OK;
}

/* [bos] query [sep] doc [sep]: the query keeps at most half of the context,
 * the document the rest. */
static cairn_status tokenize_pair(embed_ctx *c, const char *q, size_t ql, const char *doc, size_t dl, int *n_out,
                                  bool *cut)
{
    const cairn_embedder *e = c->e;
    bool bos = tokenizer_add_bos(e->tok);
    int32_t sep = tokenizer_eos(e->tok);
    int n_sp = (int)bos + (sep >= 0 ? 2 : 0);
    int room = e->n_ctx - n_sp;
    if (room < 2)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "rerank: context of %d tokens too short for a pair", e->n_ctx);
    int o = (int)bos;
    size_t need_q = 0, need_d = 0;
    CAIRN_TRY(tokenizer_encode(e->tok, q, ql, false, false, c->tok + o, (size_t)(room / 2), &need_q));
    int nq = (int)CAIRN_MIN(need_q, (size_t)(room / 2));
    o += nq;
    if (sep >= 0)
        c->tok[o++] = sep;
    int room_d = room - nq;
    CAIRN_TRY(tokenizer_encode(e->tok, doc, dl, false, false, c->tok + o, (size_t)room_d, &need_d));
    int nd = (int)CAIRN_MIN(need_d, (size_t)room_d);
    o += nd;
    if (sep >= 0)
        c->tok[o++] = sep;
    if (bos)
        c->tok[0] = tokenizer_bos(e->tok);
    *cut = need_q > (size_t)nq || need_d > (size_t)nd;
    if (o == 0)
        c->tok[o++] = 0;
    *n_out = o;
    return CAIRN_OK;
}

/* scores[k] for the nseq pooled CLS rows of the run. */
static cairn_status rank_head(embed_ctx *c, int nseq, float *scores)
{
    const cairn_embedder *e = c->e;
    int d = e->d;
    const float *in = c->pooled;
    if (e->cls.data) {
        CAIRN_TRY(emm(c, &e->cls, c->pooled, c->head, nseq));
        for (int k = 0; k < nseq; k++)
            for (int i = 0; i < d; i++) {
                float *h = c->head + (size_t)k * d + i;
                *h = tanhf(*h + (e->cls_b ? e->cls_b[i] : 0.0f));
            }
        in = c->head;
    }
    if (!e->cls_out.data) {
        for (int k = 0; k < nseq; k++)
            scores[k] = in[(size_t)k * d];
        return CAIRN_OK;
    }
    /* cls.output over `in` into head ((cap_seq, max(d, n_out)) floats) */
    float *o = c->head;
    if (in == c->head) {
        memcpy(c->pooled, c->head, (size_t)nseq * d * sizeof(float));
        in = c->pooled;
    }
    CAIRN_TRY(emm(c, &e->cls_out, in, o, nseq));
    for (int k = 0; k < nseq; k++)
        scores[k] = o[(size_t)k * c->n_out] + (e->cls_out_b ? e->cls_out_b[0] : 0.0f);
    return CAIRN_OK;
}

cairn_status embedder_rerank(cairn_embedder *e, embed_ctx *ctx, const char *query, size_t query_len,
                             const char *const *docs, const size_t *lens, int n, float *scores, embed_stats *st)
{
    int64_t t_start = cairn_mono_ns();
    if (!e || n < 0 || n > EMBED_MAX_TEXTS_PER_CALL || (n > 0 && (!docs || !lens || !scores)) ||
        (!query && query_len))
        return cairn_fail(CAIRN_ERR_INVALID, "embedder_rerank: bad arguments");
    if (e->pooling != EMBED_POOL_RANK)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: not a cross-encoder (pooling type is not rank)", e->name);
    CAIRN_TRY(get_ctx(e, &ctx));
    embed_stats s = {0};
    int T = 0, nseq = 0, first = 0;
    for (int i = 0; i <= n; i++) {
        int len = 0;
        bool cut = false;
        if (i < n) {
            if (!docs[i] && lens[i])
                return cairn_fail(CAIRN_ERR_INVALID, "embedder_rerank: document %d is NULL", i);
            CAIRN_TRY(tokenize_pair(ctx, query ? query : "", query_len, docs[i] ? docs[i] : "", lens[i], &len, &cut));
            s.n_truncated += cut;
        }
        if (nseq > 0 && (i == n || T + len > ctx->cap || nseq == ctx->cap_seq)) {
            CAIRN_TRY(forward(ctx, T, nseq, EMBED_POOL_CLS));
            CAIRN_TRY(rank_head(ctx, nseq, scores + first));
            s.n_tokens += (uint64_t)T;
            first = i;
            T = nseq = 0;
        }
        if (i < n)
            pack(ctx, &T, &nseq, len);
    }
    if (s.n_truncated)
        CAIRN_WARN("rerank: %llu of %d pairs longer than the model's %d-token context were truncated",
                   (unsigned long long)s.n_truncated, n, e->n_ctx);
    s.n_texts = (uint64_t)n;
    s.ms = (double)(cairn_mono_ns() - t_start) / 1e6;
    if (st)
        *st = s;
    return CAIRN_OK;
}
