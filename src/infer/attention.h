/*
 * attention.h — causal multi-head attention with grouped-query heads over
 * the session's KV cache (internal to src/infer).
 *
 * Cache layout per layer: (n_head_kv, n_ctx, hd_k) rows of kv_type, hd_k =
 * head_dim rounded up to the type's block size (zero padded), so each head's
 * keys for consecutive positions are one contiguous run that dequantizes in
 * a single call.
 *
 * Two passes, each split over the thread pool:
 *   1. dequantize K and V of positions [0, n_past + n_tok) to F32 scratch,
 *      once per layer (each cached value is read once per layer, however
 *      many query rows there are);
 *   2. one task per (token, head): scores = q . K^T / sqrt(hd), causal
 *      mask, softmax, out = scores . V.
 * With an F16 cache on an AVX2+F16C CPU (head_dim % 8 == 0), pass 1 is
 * skipped: pass 2 reads F16 rows directly (one instruction converts 8
 * values), one task per (token, K/V head) serving all the query heads of
 * the group with each row converted once — or per (token, head) when there
 * are too few tokens to keep the threads busy (decode).
 */
#ifndef CAIRN_ATTENTION_H
#define CAIRN_ATTENTION_H

#include "base/base.h"

typedef struct cairn_pool cairn_pool;

typedef struct attn_args {
    int n_tok, n_past, n_ctx;
    int n_head, n_head_kv, head_dim, hd_k;
    uint32_t kv_type;
    size_t kv_row;              /* bytes per cached row of hd_k values */
    const void *k_cache;        /* (n_head_kv, n_ctx, hd_k) of kv_type, this layer */
    const void *v_cache;        /* (n_head_kv, n_ctx, hd_k) of kv_type, this layer */
    const float *q;             /* (n_tok, n_head*head_dim), RoPE applied */
    float *out;                 /* (n_tok, n_head*head_dim); may be q itself (each task copies its query rows before writing) */
    float *kf, *vf;             /* scratch (n_head_kv, n_ctx, hd_k) */
    float *scratch;             /* (n_threads, group * (n_ctx + hd_k)), group = n_head / n_head_kv */
    bool round_f16;             /* round q and probabilities to F16 like an F16-cache engine */
} attn_args;

void attention(cairn_pool *pool, const attn_args *a);
/* n independent attentions (sequences of a batch, each over its own cache,
 * sharing the scratch) in one pool dispatch; same results as n calls. */
#define ATTN_MAX_SEQS 64
void attention_multi(cairn_pool *pool, const attn_args *a, int n);

/* Vector helpers (best available ISA; picked once). */
typedef float (*attn_dot_fn)(const float *a, const float *b, int n);
typedef void (*attn_axpy_fn)(float *y, float a, const float *x, int n);
void attn_kernels(attn_dot_fn *dot, attn_axpy_fn *axpy);
float attn_dot_avx2(const float *a, const float *b, int n);
void attn_axpy_avx2(float *y, float a, const float *x, int n);
/* F16 cache read directly (AVX2 + F16C): no dequantize pass. */
float attn_dot_f16_avx2(const float *a, const uint16_t *b, int n);
void attn_axpy_f16_avx2(float *y, float a, const uint16_t *x, int n);
/* One token against one K/V head for `rep` consecutive query heads:
 * q (rep, hd) → out (rep, hd), K/V rows of hd F16 values `stride` apart,
 * positions [0, n_see); sc: (rep, n_see) scratch. Each cached row is
 * converted once for all rep heads; softmax uses a vectorized exp. With
 * `round`, probabilities are rounded to F16 (q must already be). hd % 8 == 0. */
void attn_group_f16_avx2(const float *q, int rep, int hd, const uint16_t *k, const uint16_t *v, size_t stride,
                         int n_see, float scale, bool round, float *sc, float *out);

#endif
