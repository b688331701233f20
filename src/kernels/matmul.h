/*
 * matmul.h — y = W x for quantized W, decode (one token) and prompt (many).
 *
 * W: `rows` x `cols` in `type` (row-major, GGUF layout: ne[0] = cols).
 * X: n_tok x cols float32 (row-major). Y: n_tok x rows float32.
 * Work is split across the thread pool in chunks claimed without locks.
 */
#ifndef CAIRN_MATMUL_H
#define CAIRN_MATMUL_H

#include "kernels/quant.h"

typedef struct cairn_pool cairn_pool;   /* base/pool.h */

typedef struct qmat {
    uint32_t type;
    int64_t rows, cols;
    const void *data;
} qmat;

/* Scratch for quantized activations is owned by the caller's context. */
typedef struct matmul_ctx {
    cairn_pool *pool;     /* NULL = single thread */
    void *scratch;        /* grown as needed (cairn_malloc_aligned) */
    size_t scratch_size;
    kernels_level level;  /* KERNELS_DEFAULT (0) = the selected kernels; tests/bench pick others */
    bool stream;          /* decode weights come from memory, not cache: see qt_gemv_fn */
} matmul_ctx;

/* Errors: CAIRN_ERR_UNSUPPORTED for a type without a dot product (or a
 * level this CPU lacks), CAIRN_ERR_INVALID for bad shapes (cols not a
 * multiple of the block size), CAIRN_ERR_NOMEM if the scratch cannot grow.
 * Results do not depend on the number of threads, on how the rows are cut
 * into chunks or matrices, or on ctx->stream (each output element is one
 * kernel call over the whole row, and no kernel's result for a row depends
 * on the other rows of the call). Against vec_dot of the same level: equal
 * where matmul runs vec_dot, else within a summation-order bound
 * (docs/kernels.md; test_kernels). */
cairn_status matmul(matmul_ctx *ctx, const qmat *w, const float *x, float *y, int64_t n_tok);
/* Several matrices applied to the same input in one pool run — Q, K and V,
 * or the FFN gate and up projections: the activations are quantized once
 * per distinct vec_dot_type and the threads meet once instead of n_w times.
 * All ws[i].cols must be equal; ys[i] is n_tok x ws[i].rows. n_w <= MATMUL_MAX_MULTI.
 * Same results as n_w separate matmul calls. */
#define MATMUL_MAX_MULTI 8
cairn_status matmul_multi(matmul_ctx *ctx, const qmat *ws, int n_w, const float *x, float *const *ys, int64_t n_tok);
/* y (n_tok, rows) = act(x Wg^T, x Wu^T): a gated feed-forward product (SwiGLU,
 * GeGLU) without a second (n_tok, rows) buffer. Each chunk writes its gate
 * block into y, its up block into a per-thread tile, then calls
 * act(g, u, n), which must set g[i] = f(g[i]) * u[i] for a run of n values.
 * Same values as two matmul calls and act over the rows (every output is
 * the same kernel call over the whole row). gate and up: same shape; a
 * different type is handled in bounded token blocks. */
typedef void (*matmul_glu_fn)(float *g, const float *u, size_t n);
cairn_status matmul_glu(matmul_ctx *ctx, const qmat *gate, const qmat *up, const float *x, float *y, int64_t n_tok,
                        matmul_glu_fn act);
void matmul_ctx_free(matmul_ctx *ctx);

#endif
