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
 *    compute bound instead of memory bound. With a gemm tile kernel (8+
 *    tokens) a chunk is one tile of up to gemm_nr x gemm_nc, else one
 *    vec_dot per output.
 * Decode (n_tok = 1) is one pool run, its chunks not claimed from one
 * counter: each thread owns a contiguous lane of them, takes half of what
 * is left of it at a time from the front (guided: long kernel calls first,
 * fine pieces at the end), and then steals single chunks from the back of
 * the others' lanes. Weights stream from memory in decode, and one long
 * sequential stream per core is what the prefetchers sustain: interleaving
 * the threads' chunks cost 15-30% of the bandwidth (bench_matmul -p 0).
 * matmul_multi puts several matrices sharing an input into one run: their
 * chunk ranges are concatenated behind the same counter.
 *
 * Every output element is one kernel call over the whole row, whichever
 * thread runs it, so results do not depend on the thread count.
 */
#include "kernels/matmul.h"
#include "base/pool.h"
#include <stdatomic.h>
#include <string.h>

#define WBLOCK_BYTES (32 * 1024)    /* weight rows reused across a token block */
#define ABLOCK_BYTES (256 * 1024)   /* activations of one token block */
/* Below this many tokens a tile kernel loses to per-row dot products: it
 * repacks gemm_nr weight rows per call (measured crossover with the AVX-512
 * tiles: 4-8 tokens). */
#define GEMM_MIN_TOKENS 8

typedef struct mm_part {
    const qtype_traits *wt;
    const uint8_t *w, *a;
    size_t w_row, a_row;
    float *y;
    int64_t rows;
    int64_t rb, tb, n_rb;           /* chunk shape, row blocks */
    int64_t chunk0, n_chunks;       /* range in the shared counter */
} mm_part;

typedef struct mm_act {             /* one activation type to quantize */
    const qtype_traits *at;
    uint8_t *q;
    size_t a_row;
} mm_act;

/* A thread's share of the decode chunks, [front, back) packed in one word
 * (front low, back high) so the owner (front) and thieves (back) claim with
 * one compare-and-swap each. */
#define MM_LANES 64
typedef struct mm_lane {
    _Alignas(64) _Atomic uint64_t fb;
} mm_lane;

typedef struct mm_job {
    mm_part parts[MATMUL_MAX_MULTI];
    mm_act acts[MATMUL_MAX_MULTI];
    int n_parts, n_acts;
    int64_t cols, n_tok, n_chunks;
    const float *x;
    /* matmul_glu: parts[0] gate (the counter covers its chunks), parts[1] up
     * with the same plan; a chunk's up block goes to this thread's tile */
    matmul_glu_fn glu;
    float *glu_tiles;
    size_t glu_tile;                /* floats per thread */
    _Alignas(64) _Atomic int64_t next;
    bool stream;                    /* matmul_ctx.stream */
    int n_lanes;                    /* > 0: chunks are claimed from lanes (decode) */
    mm_lane *lanes;                 /* run_job's, on its stack: not zeroed with every job */
} mm_job;

/* Where a chunk's outputs go: element (t, r) at y[(t - t_org) * ldy + (r - r_org)]. */
typedef struct mm_out {
    float *y;
    int64_t ldy, r_org, t_org;
} mm_out;

/* Rows (token x activation type) claimed from the counter. */
static void quantize_rows(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    int64_t total = j->n_tok * j->n_acts;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= total)
            return;
        const mm_act *a = &j->acts[i / j->n_tok];
        int64_t t = i % j->n_tok;
        a->at->quantize_act(j->x + t * j->cols, a->q + (size_t)t * a->a_row, j->cols);
    }
}

static void chunk_bounds(const mm_part *p, int64_t c, int64_t n_tok, int64_t *r0, int64_t *r1, int64_t *t0,
                         int64_t *t1)
{
    *r0 = (c % p->n_rb) * p->rb;
    *t0 = (c / p->n_rb) * p->tb;
    *r1 = CAIRN_MIN(*r0 + p->rb, p->rows);
    *t1 = CAIRN_MIN(*t0 + p->tb, n_tok);
}

/* Outputs rows [r0, r1) x tokens [t0, t1) of part p. */
static void run_block(const mm_part *p, int64_t r0, int64_t r1, int64_t t0, int64_t t1, int n, const mm_out *o,
                      bool stream)
{
    const qtype_traits *wt = p->wt;
    if (wt->gemm) {
        for (int64_t t = t0; t < t1; t += wt->gemm_nc) {
            int nc = (int)CAIRN_MIN((int64_t)wt->gemm_nc, t1 - t);
            if (nc < GEMM_MIN_TOKENS) {     /* too few tokens to pay for the tile's packing */
                t0 = t;
                break;
            }
            for (int64_t r = r0; r < r1; r += wt->gemm_nr) {
                int nr = (int)CAIRN_MIN((int64_t)wt->gemm_nr, r1 - r);
                wt->gemm(n, o->y + (t - o->t_org) * o->ldy + (r - o->r_org), (size_t)o->ldy,
                         p->w + (size_t)r * p->w_row, p->w_row,
                         p->a + (size_t)t * p->a_row, p->a_row, nr, nc);
            }
            t0 = t + nc;
        }
    }
    for (int64_t t = t0; t < t1; t++) {
        const uint8_t *a = p->a + (size_t)t * p->a_row;
        float *y = o->y + (t - o->t_org) * o->ldy - o->r_org;   /* y[r] is output row r */
        if (wt->gemv) {
            wt->gemv(n, y + r0, p->w + (size_t)r0 * p->w_row, p->w_row, a, (int)(r1 - r0), stream);
            continue;
        }
        for (int64_t r = r0; r < r1; r++)
            wt->vec_dot(n, y + r, p->w + (size_t)r * p->w_row, a);
    }
}

static void run_chunk(const mm_part *p, int64_t c, int64_t n_tok, int n, const mm_out *o, bool stream)
{
    int64_t r0, r1, t0, t1;
    chunk_bounds(p, c, n_tok, &r0, &r1, &t0, &t1);
    run_block(p, r0, r1, t0, t1, n, o, stream);
}

/* Take chunks from lane l: the owner takes half of what is left from the
 * front (at least one), a thief one chunk from the back. Returns the first
 * chunk and sets *n, or -1 when the lane is empty. Guided sizes: the
 * owner's calls are long at first (one kernel call over many rows), and
 * what is left at the end, where threads meet, is cut fine. */
static int64_t lane_take(mm_lane *l, bool front, bool halves, int64_t *n)
{
    uint64_t v = atomic_load_explicit(&l->fb, memory_order_relaxed);
    for (;;) {
        uint32_t f = (uint32_t)v, b = (uint32_t)(v >> 32);
        if (f >= b)
            return -1;
        uint32_t k = front && halves ? CAIRN_MAX((b - f) / 2, 1u) : 1;
        uint64_t nv = front ? v + k : (uint64_t)(b - 1) << 32 | f;
        if (atomic_compare_exchange_weak_explicit(&l->fb, &v, nv, memory_order_relaxed, memory_order_relaxed)) {
            *n = k;
            return front ? (int64_t)f : (int64_t)b - 1;
        }
    }
}

/* The next chunks [c, c + *n) for thread ith; c = -1 or >= n_chunks when none is left. */
static int64_t claim(mm_job *j, int ith, int64_t *n)
{
    *n = 1;
    if (!j->n_lanes)
        return atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    int own = ith % j->n_lanes;
    bool halves = !j->glu;   /* a glu chunk's up block must fit the thread's tile */
    int64_t c = lane_take(&j->lanes[own], true, halves, n);
    for (int d = 1; c < 0 && d < j->n_lanes; d++)
        c = lane_take(&j->lanes[(own + d) % j->n_lanes], false, halves, n);
    return c;
}

/* The part that chunk c belongs to (parts without rows have no chunks). */
static const mm_part *part_of(const mm_job *j, int64_t c)
{
    int k = 0;
    while (c >= j->parts[k].chunk0 + j->parts[k].n_chunks)
        k++;
    return &j->parts[k];
}

static void dot_chunks(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    (void)nth;
    for (;;) {
        int64_t n;
        int64_t c = claim(j, ith, &n);
        if (c < 0 || c >= j->n_chunks)
            return;
        if (n > 1) {    /* decode: several chunks in a row, one kernel call per part they cover */
            for (int64_t end = c + n; c < end;) {
                const mm_part *p = part_of(j, c);
                int64_t stop = CAIRN_MIN(end, p->chunk0 + p->n_chunks);
                mm_out o = {p->y, p->rows, 0, 0};
                run_block(p, (c - p->chunk0) * p->rb, CAIRN_MIN((stop - p->chunk0) * p->rb, p->rows), 0, 1,
                          (int)j->cols, &o, j->stream);
                c = stop;
            }
            continue;
        }
        const mm_part *p = part_of(j, c);
        mm_out o = {p->y, p->rows, 0, 0};
        run_chunk(p, c - p->chunk0, j->n_tok, (int)j->cols, &o, j->stream);
        if (j->glu) {    /* up's block of the same chunk into a tile, then y = act(gate) * up */
            int64_t r0, r1, t0, t1;
            chunk_bounds(p, c, j->n_tok, &r0, &r1, &t0, &t1);
            mm_out u = {j->glu_tiles + (size_t)ith * j->glu_tile, r1 - r0, r0, t0};
            run_chunk(&j->parts[1], c, j->n_tok, (int)j->cols, &u, j->stream);
            for (int64_t t = t0; t < t1; t++)
                j->glu(p->y + t * p->rows + r0, u.y + (t - t0) * u.ldy, (size_t)(r1 - r0));
        }
    }
}

static int64_t round_down(int64_t v, int64_t m) { return v / m * m; }

static void plan_chunks(mm_part *p, int64_t n_tok, int nth)
{
    const qtype_traits *wt = p->wt;
    int64_t nr = 1, nc = 1;
    if (n_tok == 1) {
        /* ~32 chunks per thread: the owner of a lane takes them in halves
         * (one kernel call each), so only the end of a lane is cut this
         * fine. TinyLlama tg vs 4 whole chunks per thread: +2-4%. */
        p->rb = CAIRN_MAX(CAIRN_MIN(p->rows / ((int64_t)nth * 32), 128), 8);
        if (wt->gemv) {     /* whole passes of the multi-row kernel (8 rows) */
            if (nth == 1)   /* nothing to balance: fewer, longer calls (the kernel arranges the activations once per call) */
                p->rb = CAIRN_MIN(p->rows, 256);
            p->rb = (p->rb + 7) / 8 * 8;
        }
        p->tb = 1;
    } else if (wt->gemm && n_tok >= GEMM_MIN_TOKENS) {
        /* One tile call per chunk, as large as the kernel takes: a tile kernel
         * repacks its operands per call, so bigger tiles pay less packing.
         * Smaller row blocks (multiples of 16) only when the threads would
         * otherwise run out of chunks to balance. */
        p->tb = CAIRN_MIN((int64_t)wt->gemm_nc, n_tok);
        p->rb = wt->gemm_nr;
        int64_t n_tb = (n_tok + p->tb - 1) / p->tb;
        while (p->rb > 16 && n_tb * ((p->rows + p->rb - 1) / p->rb) < (int64_t)nth * 4)
            p->rb = CAIRN_MAX((p->rb / 2 + 15) / 16 * 16, 16);
    } else {
        p->rb = CAIRN_MAX(round_down(CAIRN_MIN((int64_t)(WBLOCK_BYTES / p->w_row), 256), nr), nr);
        int64_t tb = CAIRN_MAX(round_down((int64_t)(ABLOCK_BYTES / p->a_row), nc), nc);
        p->tb = CAIRN_MIN(tb, n_tok);
        int64_t n_tb = (n_tok + p->tb - 1) / p->tb;
        /* enough chunks for balance when there are few tokens */
        while (p->rb > nr && n_tb * ((p->rows + p->rb - 1) / p->rb) < (int64_t)nth * 8)
            p->rb = CAIRN_MAX(round_down(p->rb / 2, nr), nr);
    }
    p->n_rb = (p->rows + p->rb - 1) / p->rb;
    p->n_chunks = p->n_rb * ((n_tok + p->tb - 1) / p->tb);
}

/* Validate, size the scratch (activations, then `extra` bytes at *extra_off),
 * quantize the activations and plan the chunks. */
static cairn_status prepare(matmul_ctx *ctx, const qmat *ws, int n_w, const float *x, float *const *ys, int64_t n_tok,
                            size_t extra, size_t *extra_off, mm_job *jp)
{
    if (!ctx || !ws || n_w < 1 || n_w > MATMUL_MAX_MULTI || n_tok < 0 || (n_tok > 0 && (!x || !ys)))
        return cairn_fail(CAIRN_ERR_INVALID, "matmul: bad arguments");
    mm_job *j = jp;
    *j = (mm_job){.n_parts = n_w, .cols = ws[0].cols, .n_tok = n_tok, .x = x, .stream = ctx->stream};
    size_t act_off[MATMUL_MAX_MULTI] = {0}, scratch = 0;
    for (int i = 0; i < n_w; i++) {
        const qmat *w = &ws[i];
        if ((!w->data && w->rows > 0) || w->rows < 0 || w->cols <= 0 || w->cols > INT32_MAX || w->cols != j->cols ||
            (n_tok > 0 && w->rows > 0 && !ys[i]))
            return cairn_fail(CAIRN_ERR_INVALID, "matmul: bad arguments (matrix %d)", i);
        const qtype_traits *wt = qtype_get_level(w->type, ctx->level);
        if (!wt || !wt->vec_dot)
            return cairn_fail(CAIRN_ERR_UNSUPPORTED, "matmul: no %s kernel for tensor type %u",
                              kernels_level_name(ctx->level), w->type);
        const qtype_traits *at = qtype_get_level(wt->vec_dot_type, ctx->level);
        size_t w_row = qtype_row_size(w->type, w->cols), a_row = qtype_row_size(wt->vec_dot_type, w->cols);
        if (!at || !w_row || !a_row)
            return cairn_fail(CAIRN_ERR_INVALID, "matmul: %lld columns is not a multiple of %s's block of %d",
                              (long long)w->cols, wt->name, wt->block_size);
        mm_part *p = &j->parts[i];
        *p = (mm_part){.wt = wt, .w = w->data, .w_row = w_row, .a_row = a_row, .y = n_tok ? ys[i] : NULL, .rows = w->rows};
        if (wt->vec_dot_type == QT_F32) {
            p->a = (const uint8_t *)x;
            continue;
        }
        int k = 0;
        while (k < j->n_acts && j->acts[k].at != at)
            k++;
        if (k == j->n_acts) {     /* a new activation type: its own scratch region */
            size_t bytes;
            if (!cairn_mul_ok((size_t)n_tok, a_row, &bytes) || !cairn_add_ok(bytes, 63, &bytes) ||
                !cairn_add_ok(scratch, bytes & ~(size_t)63, &scratch))
                return cairn_fail(CAIRN_ERR_TOO_LARGE, "matmul: activation scratch overflows");
            act_off[k] = scratch - (bytes & ~(size_t)63);
            j->acts[k] = (mm_act){.at = at, .a_row = a_row};
            j->n_acts++;
        }
        p->a = (const uint8_t *)(uintptr_t)(k + 1);   /* resolved below, once the scratch exists */
    }
    if (n_tok == 0)
        return CAIRN_OK;
    if (extra) {
        size_t off = (scratch + 63) & ~(size_t)63;
        if (off < scratch || !cairn_add_ok(off, extra, &scratch))
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "matmul: scratch overflows");
        *extra_off = off;
    }
    if (ctx->scratch_size < scratch) {
        void *s = cairn_malloc_aligned(scratch, 64);
        if (!s)
            return cairn_fail(CAIRN_ERR_NOMEM, "matmul: cannot allocate %zu bytes of scratch", scratch);
        cairn_free_aligned(ctx->scratch);
        ctx->scratch = s;
        ctx->scratch_size = scratch;
    }
    for (int k = 0; k < j->n_acts; k++)
        j->acts[k].q = (uint8_t *)ctx->scratch + act_off[k];
    for (int i = 0; i < n_w; i++)
        if (j->parts[i].wt->vec_dot_type != QT_F32)
            j->parts[i].a = j->acts[(uintptr_t)j->parts[i].a - 1].q;

    int nth = cairn_pool_size(ctx->pool);
    if (j->n_acts > 0) {
        atomic_init(&j->next, 0);
        if (n_tok == 1 || nth == 1)
            quantize_rows(j, 0, 1);
        else
            cairn_pool_run_dynamic(ctx->pool, quantize_rows, j);
    }
    for (int i = 0; i < n_w; i++) {
        mm_part *p = &j->parts[i];
        p->chunk0 = j->n_chunks;
        if (p->rows > 0)
            plan_chunks(p, n_tok, nth);
        else
            p->n_chunks = 0;
        j->n_chunks += p->n_chunks;
    }
    return CAIRN_OK;
}

static void run_job(matmul_ctx *ctx, mm_job *j)
{
    atomic_init(&j->next, 0);
    int nth = cairn_pool_size(ctx->pool);
    mm_lane lanes[MM_LANES];
    j->n_lanes = 0;
    j->lanes = lanes;
    if (j->n_tok == 1 && nth > 1 && j->n_chunks < UINT32_MAX) {    /* decode: one contiguous lane per thread */
        j->n_lanes = CAIRN_MIN(nth, MM_LANES);
        for (int t = 0; t < j->n_lanes; t++) {
            uint64_t f = (uint64_t)(j->n_chunks * t / j->n_lanes), b = (uint64_t)(j->n_chunks * (t + 1) / j->n_lanes);
            atomic_init(&j->lanes[t].fb, b << 32 | f);
        }
    }
    if (nth == 1 || j->n_chunks <= 1)
        dot_chunks(j, 0, 1);
    else
        cairn_pool_run_dynamic(ctx->pool, dot_chunks, j);
}

cairn_status matmul_multi(matmul_ctx *ctx, const qmat *ws, int n_w, const float *x, float *const *ys, int64_t n_tok)
{
    mm_job j;
    CAIRN_TRY(prepare(ctx, ws, n_w, x, ys, n_tok, 0, NULL, &j));
    if (n_tok > 0)
        run_job(ctx, &j);
    return CAIRN_OK;
}

/* Bound on a thread's up tile (floats): tile kernels use at most
 * gemm_nr x gemm_nc (256 x 256); the per-row path clamps its token block. */
#define GLU_TILE_MAX (256 * 256)

cairn_status matmul_glu(matmul_ctx *ctx, const qmat *gate, const qmat *up, const float *x, float *y, int64_t n_tok,
                        matmul_glu_fn act)
{
    if (!gate || !up || !act || gate->rows != up->rows || gate->cols != up->cols)
        return cairn_fail(CAIRN_ERR_INVALID, "matmul_glu: gate and up must have the same shape");
    if (gate->type != up->type) {
        /* different plans: gate into y, up in token blocks through a bounded buffer */
        CAIRN_TRY(matmul(ctx, gate, x, y, n_tok));
        if (n_tok == 0 || gate->rows == 0)
            return CAIRN_OK;
        int64_t blk = CAIRN_MAX((int64_t)1, CAIRN_MIN(n_tok, (int64_t)GLU_TILE_MAX / gate->rows));
        float *tmp = cairn_malloc_aligned((size_t)(blk * gate->rows) * sizeof(float), 64);
        if (!tmp)
            return cairn_fail(CAIRN_ERR_NOMEM, "matmul_glu: out of memory");
        cairn_status st = CAIRN_OK;
        for (int64_t t = 0; t < n_tok && st == CAIRN_OK; t += blk) {
            int64_t nb = CAIRN_MIN(blk, n_tok - t);
            st = matmul(ctx, up, x + t * gate->cols, tmp, nb);
            if (st == CAIRN_OK)
                act(y + t * gate->rows, tmp, (size_t)(nb * gate->rows));
        }
        cairn_free_aligned(tmp);
        return st;
    }
    const qmat ws[2] = {*gate, *up};
    float *const ys[2] = {y, y};       /* up's outputs never go to ys[1]: see dot_chunks */
    int nth = cairn_pool_size(ctx ? ctx->pool : NULL);
    size_t tiles = (size_t)nth * GLU_TILE_MAX * sizeof(float), off = 0;
    mm_job j;
    CAIRN_TRY(prepare(ctx, ws, 2, x, ys, n_tok, tiles, &off, &j));
    if (n_tok == 0 || gate->rows == 0)
        return CAIRN_OK;
    /* one counter over gate's chunks; up has the same plan (same type and shape) */
    for (int i = 0; i < 2; i++) {
        mm_part *p = &j.parts[i];
        if (p->rb * p->tb > GLU_TILE_MAX) {          /* per-row path with tiny rows: smaller token blocks */
            p->tb = CAIRN_MAX((int64_t)1, GLU_TILE_MAX / p->rb);
            p->n_chunks = p->n_rb * ((n_tok + p->tb - 1) / p->tb);
        }
    }
    j.n_chunks = j.parts[0].n_chunks;
    j.glu = act;
    j.glu_tiles = (float *)((uint8_t *)ctx->scratch + off);
    j.glu_tile = GLU_TILE_MAX;
    run_job(ctx, &j);
    return CAIRN_OK;
}

cairn_status matmul(matmul_ctx *ctx, const qmat *w, const float *x, float *y, int64_t n_tok)
{
    if (!w)
        return cairn_fail(CAIRN_ERR_INVALID, "matmul: bad arguments");
    return matmul_multi(ctx, w, 1, x, &y, n_tok);
}

void matmul_ctx_free(matmul_ctx *ctx)
{
    if (!ctx)
        return;
    cairn_free_aligned(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_size = 0;
}
