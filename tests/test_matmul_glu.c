/* test_matmul_glu.c — matmul_glu (gated FFN product without an up buffer)
 * gives exactly what two matmul calls and the activation give: every type,
 * tile and per-row paths, decode, odd shapes, 1-3 threads, gate and up of
 * different types, and bad arguments. */
#include "t.h"
#include "base/pool.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* g = silu(g) * u: any deterministic element-wise function will do */
static void silu_mul(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void *make_weights(uint32_t type, int64_t rows, int64_t cols)
{
    size_t rs = qtype_row_size(type, cols);
    float *row = malloc((size_t)cols * sizeof(float));
    uint8_t *w = malloc((size_t)rows * rs + 1);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < cols; i++)
            row[i] = rnd();
        qtype_get(type)->from_float(row, w + (size_t)r * rs, cols);
    }
    free(row);
    return w;
}

static void check_case(uint32_t gtype, uint32_t utype, int64_t rows, int64_t cols, int64_t n_tok, cairn_pool *pool)
{
    void *gw = make_weights(gtype, rows, cols), *uw = make_weights(utype, rows, cols);
    qmat g = {.type = gtype, .rows = rows, .cols = cols, .data = gw};
    qmat u = {.type = utype, .rows = rows, .cols = cols, .data = uw};
    float *x = malloc((size_t)(n_tok * cols) * sizeof(float));
    for (int64_t i = 0; i < n_tok * cols; i++)
        x[i] = rnd();
    size_t ny = (size_t)(n_tok * rows);
    float *want = malloc(ny * sizeof(float) + 4), *up = malloc(ny * sizeof(float) + 4);
    float *got = malloc(ny * sizeof(float) + 4);
    matmul_ctx c = {.pool = pool};
    CHECK_OK(matmul(&c, &g, x, want, n_tok));
    CHECK_OK(matmul(&c, &u, x, up, n_tok));
    silu_mul(want, up, ny);
    for (size_t i = 0; i < ny; i++)
        got[i] = NAN;
    CHECK_OK(matmul_glu(&c, &g, &u, x, got, n_tok, silu_mul));
    CHECKF(memcmp(want, got, ny * sizeof(float)) == 0, "%s/%s %lldx%lld, %lld tokens, %d threads",
           qtype_get(gtype)->name, qtype_get(utype)->name, (long long)rows, (long long)cols, (long long)n_tok,
           cairn_pool_size(pool));
    matmul_ctx_free(&c);
    free(gw); free(uw); free(x); free(want); free(up); free(got);
}

static void test_same_as_two_products(void)
{
    static const uint32_t types[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q5_1, QT_Q4_K, QT_Q6_K, QT_Q2_K};
    static const struct { int64_t rows, cols, n_tok; } shapes[] = {
        {1, 256, 1}, {67, 512, 1}, {300, 256, 8}, {129, 512, 37}, {257, 256, 130}, {5, 256, 2}, {40, 256, 300},
    };
    cairn_pool *p2 = NULL, *p3 = NULL;
    CHECK_OK(cairn_pool_new(2, &p2));
    CHECK_OK(cairn_pool_new(3, &p3));
    cairn_pool *pools[] = {NULL, p2, p3};
    for (size_t k = 0; k < CAIRN_ARRAY_LEN(types); k++)
        for (size_t s = 0; s < CAIRN_ARRAY_LEN(shapes); s++)
            check_case(types[k], types[k], shapes[s].rows, shapes[s].cols, shapes[s].n_tok, pools[(k + s) % 3]);
    /* gate and up of different types take the bounded token-block path */
    check_case(QT_Q4_K, QT_Q6_K, 300, 512, 130, p2);
    check_case(QT_Q8_0, QT_F16, 70, 256, 9, NULL);
    /* many tiny rows on the per-row path: the token block is clamped to the tile */
    check_case(QT_F32, QT_F32, 1000, 32, 200, p2);
    cairn_pool_free(p2);
    cairn_pool_free(p3);
}

static void test_bad_arguments(void)
{
    void *w = make_weights(QT_Q8_0, 4, 64);
    qmat g = {.type = QT_Q8_0, .rows = 4, .cols = 64, .data = w}, u = g;
    float x[64] = {0}, y[4];
    matmul_ctx c = {0};
    u.rows = 3;
    CHECK(matmul_glu(&c, &g, &u, x, y, 1, silu_mul) == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "same shape") != NULL);
    CHECK(matmul_glu(&c, &g, &g, x, y, 1, NULL) == CAIRN_ERR_INVALID);
    CHECK(matmul_glu(&c, NULL, &g, x, y, 1, silu_mul) == CAIRN_ERR_INVALID);
    qmat odd = g;
    odd.cols = 40;                               /* not a multiple of Q8_0's 32-value block */
    CHECK(matmul_glu(&c, &odd, &odd, x, y, 1, silu_mul) == CAIRN_ERR_INVALID);
    CHECK_OK(matmul_glu(&c, &g, &g, x, y, 0, silu_mul));   /* no tokens: nothing to do */
    matmul_ctx_free(&c);
    free(w);
}

static void test_alloc_failures(void)
{
    void *w = make_weights(QT_Q4_0, 64, 256);
    qmat g = {.type = QT_Q4_0, .rows = 64, .cols = 256, .data = w};
    float *x = calloc(16 * 256, sizeof(float)), *y = malloc(16 * 64 * sizeof(float));
    for (int n = 0; n < 4; n++) {
        matmul_ctx c = {0};
        cairn_alloc_fail_after(n, false);
        cairn_status st = matmul_glu(&c, &g, &g, x, y, 16, silu_mul);
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_OK || st == CAIRN_ERR_NOMEM);
        matmul_ctx_free(&c);
    }
    free(w); free(x); free(y);
}

int main(void)
{
    kernels_init();
    RUN(test_same_as_two_products);
    RUN(test_bad_arguments);
    RUN(test_alloc_failures);
    return t_done();
}
