/*
 * matmul.c — y = W x over the thread pool.
 *
 * 1. Activations are quantized once into ctx->scratch in the weight type's
 *    vec_dot_type (n_tok rows of a_row bytes; float weights use x as is).
 *    For many tokens this is itself split across the pool.
 * 2. The output is cut into chunks of RB weight rows x TB tokens, claimed
 *    from an atomic counter so faster threads take more. Chunks run
 *    token-block-major: the threads sweep all weight rows for one block of
 *    tokens whose activations (<= ~256 KiB) stay in L2 while weights
 *    stream; inside a chunk a block of weight rows (<= ~32 KiB) is reused for
 *    every token of the block. That reuse is what makes prompt processing
 *    compute bound instead of memory bound. With a gemm tile kernel the
 *    chunk is walked in gemm_nr x gemm_nc tiles, else one vec_dot per output.
 * Decode (n_tok = 1) is one pool run with ~16 chunks per thread for balance.
 */
#include "kernels/matmul.h"
#include "base/pool.h"
#include <stdatomic.h>
#include <string.h>

#define WBLOCK_BYTES (32 * 1024)    /* weight rows reused across a token block */
#define ABLOCK_BYTES (256 * 1024)   /* activations of one token block */

typedef struct mm_job {
    const qtype_traits *wt, *at;
    const uint8_t *w, *a;
    size_t w_row, a_row;
    float *y;
    int64_t rows, cols, n_tok;
    int64_t rb, tb, n_rb, n_chunks;
    const float *x;                 /* quantize phase */
    uint8_t *q;
    _Alignas(64) _Atomic int64_t next;
} mm_job;

static void quantize_rows(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    for (int64_t t = ith; t < j->n_tok; t += nth)
        j->at->quantize_act(j->x + t * j->cols, j->q + (size_t)t * j->a_row, j->cols);
}

static void run_chunk(const mm_job *j, int64_t c)
{
    int64_t r0 = (c % j->n_rb) * j->rb, t0 = (c / j->n_rb) * j->tb;
    int64_t r1 = CAIRN_MIN(r0 + j->rb, j->rows), t1 = CAIRN_MIN(t0 + j->tb, j->n_tok);
    int n = (int)j->cols;
    const qtype_traits *wt = j->wt;
    if (wt->gemm && t1 - t0 > 1) {
        for (int64_t t = t0; t < t1; t += wt->gemm_nc) {
            int nc = (int)CAIRN_MIN((int64_t)wt->gemm_nc, t1 - t);
            for (int64_t r = r0; r < r1; r += wt->gemm_nr) {
                int nr = (int)CAIRN_MIN((int64_t)wt->gemm_nr, r1 - r);
                wt->gemm(n, j->y + t * j->rows + r, (size_t)j->rows, j->w + (size_t)r * j->w_row, j->w_row,
                         j->a + (size_t)t * j->a_row, j->a_row, nr, nc);
            }
        }
        return;
    }
    for (int64_t t = t0; t < t1; t++) {
        const uint8_t *a = j->a + (size_t)t * j->a_row;
        float *y = j->y + t * j->rows;
        for (int64_t r = r0; r < r1; r++)
            wt->vec_dot(n, y + r, j->w + (size_t)r * j->w_row, a);
    }
}

static void dot_chunks(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= j->n_chunks)
            return;
        run_chunk(j, c);
    }
}

static int64_t round_down(int64_t v, int64_t m) { return v / m * m; }

cairn_status matmul(matmul_ctx *ctx, const qmat *w, const float *x, float *y, int64_t n_tok)
{
    if (!ctx || !w || (!w->data && w->rows > 0) || n_tok < 0 || w->rows < 0 || w->cols <= 0 ||
        w->cols > INT32_MAX || ((!x || !y) && n_tok > 0))
        return cairn_fail(CAIRN_ERR_INVALID, "matmul: bad arguments");
    const qtype_traits *wt = qtype_get_level(w->type, ctx->level);
    if (!wt || !wt->vec_dot)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "matmul: no %s kernel for tensor type %u",
                          kernels_level_name(ctx->level), w->type);
    const qtype_traits *at = qtype_get_level(wt->vec_dot_type, ctx->level);
    size_t w_row = qtype_row_size(w->type, w->cols), a_row = qtype_row_size(wt->vec_dot_type, w->cols);
    if (!at || !w_row || !a_row)
        return cairn_fail(CAIRN_ERR_INVALID, "matmul: %lld columns is not a multiple of %s's block of %d",
                          (long long)w->cols, wt->name, wt->block_size);
    if (n_tok == 0 || w->rows == 0)
        return CAIRN_OK;

    mm_job j = {.wt = wt, .at = at, .w = w->data, .w_row = w_row, .a_row = a_row, .y = y,
                .rows = w->rows, .cols = w->cols, .n_tok = n_tok, .x = x};
    int nth = cairn_pool_size(ctx->pool);

    if (wt->vec_dot_type == QT_F32) {
        j.a = (const uint8_t *)x;
    } else {
        size_t need;
        if (!cairn_mul_ok((size_t)n_tok, a_row, &need))
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "matmul: activation scratch overflows");
        if (ctx->scratch_size < need) {
            void *s = cairn_malloc_aligned(need, 64);
            if (!s)
                return cairn_fail(CAIRN_ERR_NOMEM, "matmul: cannot allocate %zu bytes of scratch", need);
            cairn_free_aligned(ctx->scratch);
            ctx->scratch = s;
            ctx->scratch_size = need;
        }
        j.q = ctx->scratch;
        j.a = j.q;
        if (n_tok == 1 || nth == 1)
            quantize_rows(&j, 0, 1);
        else
            cairn_pool_run(ctx->pool, quantize_rows, &j);
    }

    /* chunk shape */
    int64_t nr = wt->gemm ? wt->gemm_nr : 1, nc = wt->gemm ? wt->gemm_nc : 1;
    if (n_tok == 1) {
        j.rb = CAIRN_MAX(CAIRN_MIN(j.rows / ((int64_t)nth * 16), 64), 8);
        j.tb = 1;
    } else {
        j.rb = CAIRN_MAX(round_down(CAIRN_MIN((int64_t)(WBLOCK_BYTES / w_row), 256), nr), nr);
        /* enough chunks for balance when there are few tokens */
        int64_t tb = CAIRN_MAX(round_down((int64_t)(ABLOCK_BYTES / a_row), nc), nc);
        j.tb = CAIRN_MIN(tb, n_tok);
        int64_t n_tb = (n_tok + j.tb - 1) / j.tb;
        while (j.rb > nr && n_tb * ((j.rows + j.rb - 1) / j.rb) < (int64_t)nth * 8)
            j.rb = CAIRN_MAX(round_down(j.rb / 2, nr), nr);
    }
    j.n_rb = (j.rows + j.rb - 1) / j.rb;
    j.n_chunks = j.n_rb * ((n_tok + j.tb - 1) / j.tb);
    atomic_init(&j.next, 0);
    if (nth == 1 || j.n_chunks == 1)
        dot_chunks(&j, 0, 1);
    else
        cairn_pool_run(ctx->pool, dot_chunks, &j);
    return CAIRN_OK;
}

void matmul_ctx_free(matmul_ctx *ctx)
{
    if (!ctx)
        return;
    cairn_free_aligned(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_size = 0;
}
