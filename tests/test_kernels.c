/* test_kernels.c — tensor types: fp16/bf16, hand-made blocks, quantizer
 * quality and golden bytes, scalar dot products, matmul. */
#include "t.h"
#include "kernels/blocks.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "base/pool.h"
#include <stddef.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rnd_uniform(void) { return (float)(rnd32() & 0xffffff) / 16777216.0f; }
static float rnd_normal(void)
{
    float s = 0;
    for (int i = 0; i < 12; i++)
        s += rnd_uniform();
    return s - 6.0f;
}

static const uint32_t all_types[] = {QT_F32, QT_F16, QT_BF16, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q8_0,
                                     QT_Q8_1, QT_Q2_K, QT_Q3_K, QT_Q4_K, QT_Q5_K, QT_Q6_K, QT_Q8_K};
static const uint32_t weight_types[] = {QT_F32, QT_F16, QT_BF16, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q8_0,
                                        QT_Q2_K, QT_Q3_K, QT_Q4_K, QT_Q5_K, QT_Q6_K};

static bool is_float_type_k(uint32_t t) { return t == QT_F32 || t == QT_F16 || t == QT_BF16; }
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ---------------------------------------------------------------- fp16 / bf16 */

static void test_fp16_decode_exhaustive(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 hf;
        uint16_t hb = (uint16_t)h;
        memcpy(&hf, &hb, 2);
        float want = (float)hf, got = fp16_to_fp32(hb);
        if (isnan(want) ? !isnan(got) : f2u(want) != f2u(got))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(fp16_to_fp32(0xc000) == -2.0f);
    CHECK(fp16_to_fp32(0x0001) == 0x1p-24f);        /* smallest subnormal */
    CHECK(fp16_to_fp32(0x7bff) == 65504.0f);
    CHECK(isinf(fp16_to_fp32(0x7c00)) && fp16_to_fp32(0xfc00) < 0);
    CHECK(isnan(fp16_to_fp32(0x7e00)));
    CHECK(signbit(fp16_to_fp32(0x8000)));
}

static void test_fp16_encode(void)
{
    /* hand cases: ties to even, overflow, subnormals, underflow */
    CHECK_EQ_INT(fp32_to_fp16(1.0f), 0x3c00);
    CHECK_EQ_INT(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);          /* tie -> even (down) */
    CHECK_EQ_INT(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);      /* tie -> even (up) */
    CHECK_EQ_INT(fp32_to_fp16(65504.0f), 0x7bff);
    CHECK_EQ_INT(fp32_to_fp16(65519.0f), 0x7bff);
    CHECK_EQ_INT(fp32_to_fp16(65520.0f), 0x7c00);                 /* rounds to inf */
    CHECK_EQ_INT(fp32_to_fp16(-INFINITY), 0xfc00);
    CHECK_EQ_INT(fp32_to_fp16(0x1p-24f), 0x0001);
    CHECK_EQ_INT(fp32_to_fp16(0x1p-25f), 0x0000);                 /* tie -> even (0) */
    CHECK_EQ_INT(fp32_to_fp16(0x1.8p-24f), 0x0002);               /* 1.5 units: tie -> 2 */
    CHECK_EQ_INT(fp32_to_fp16(0x1.000002p-25f), 0x0001);          /* just above half a unit */
    CHECK_EQ_INT(fp32_to_fp16(-0x1p-30f), 0x8000);
    CHECK_EQ_INT(fp32_to_fp16(0x1.ff8p-15f), 0x03ff);             /* largest subnormal */
    CHECK_EQ_INT(fp32_to_fp16(0x1.ffcp-15f), 0x0400);             /* tie: up to the smallest normal (even) */
    CHECK_EQ_INT(fp32_to_fp16(0x1.ffbp-15f), 0x03ff);
    CHECK_EQ_INT(fp32_to_fp16(u2f(1)), 0x0000);                   /* float subnormal */
    uint16_t n = fp32_to_fp16(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    /* against the compiler's conversion: every exponent, random mantissas */
    int bad = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rnd32() ^ (rnd32() << 16);
        if (i < 512)
            u = ((uint32_t)i << 23) | (rnd32() & 0x7fffff);      /* each exponent and sign */
        float f = u2f(u);
        _Float16 hf = (_Float16)f;
        uint16_t want;
        memcpy(&want, &hf, 2);
        uint16_t got = fp32_to_fp16(f);
        if (isnan(f) ? (got & 0x7fff) <= 0x7c00 : got != want)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* round trip of every finite half */
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue;
        if (fp32_to_fp16(fp16_to_fp32((uint16_t)h)) != h)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_bf16(void)
{
    CHECK_EQ_INT(fp32_to_bf16(1.0f), 0x3f80);
    CHECK(bf16_to_fp32(0x3f80) == 1.0f);
    CHECK_EQ_INT(fp32_to_bf16(u2f(0x3f808000)), 0x3f80);   /* tie -> even (down) */
    CHECK_EQ_INT(fp32_to_bf16(u2f(0x3f818000)), 0x3f82);   /* tie -> even (up) */
    CHECK_EQ_INT(fp32_to_bf16(u2f(0x3f808001)), 0x3f81);
    CHECK_EQ_INT(fp32_to_bf16(u2f(0x7f7fffff)), 0x7f80);   /* FLT_MAX rounds to inf */
    CHECK_EQ_INT(fp32_to_bf16(INFINITY), 0x7f80);
    CHECK_EQ_INT(fp32_to_bf16(u2f(0x00018000)), 0x0002);   /* subnormal, tie -> even */
    CHECK_EQ_INT(fp32_to_bf16(u2f(0x80000001)), 0x8000);
    uint16_t n = fp32_to_bf16(u2f(0x7f800001));            /* signalling NaN stays NaN */
    CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f))
            continue;
        if (fp32_to_bf16(bf16_to_fp32((uint16_t)h)) != h || f2u(bf16_to_fp32((uint16_t)h)) != h << 16)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

/* ---------------------------------------------------------------- traits */

static void test_traits(void)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(all_types); i++) {
        const qtype_traits *t = qtype_get(all_types[i]);
        CHECKF(t && t->name && t->to_float && t->from_float && t->quantize_act, "type %u", all_types[i]);
        if (!t)
            continue;
        CHECK(qtype_get_ref(all_types[i]) != NULL);
        CHECK_EQ_INT(qtype_row_size(all_types[i], 256 * 3), (256 * 3 / t->block_size) * t->type_size);
    }
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(weight_types); i++) {
        const qtype_traits *t = qtype_get(weight_types[i]);
        CHECK(t && t->vec_dot && qtype_get(t->vec_dot_type));
    }
    CHECK_EQ_INT(qtype_get(QT_Q4_K)->type_size, 144);
    CHECK_EQ_INT(qtype_get(QT_Q4_0)->vec_dot_type, QT_Q8_0);
    CHECK_EQ_INT(qtype_get(QT_Q4_1)->vec_dot_type, QT_Q8_1);
    CHECK_EQ_INT(qtype_get(QT_Q6_K)->vec_dot_type, QT_Q8_K);
    CHECK_EQ_STR(qtype_get(QT_Q5_K)->name, "Q5_K");
    CHECK(qtype_get(4) == NULL && qtype_get(5) == NULL && qtype_get(QT_COUNT) == NULL && qtype_get(0xffffffffu) == NULL);
    CHECK_EQ_INT(qtype_row_size(QT_Q4_0, 33), 0);
    CHECK_EQ_INT(qtype_row_size(QT_Q4_K, 128), 0);
    CHECK_EQ_INT(qtype_row_size(QT_F16, 7), 14);
    CHECK_EQ_INT(qtype_row_size(99, 32), 0);
    CHECK(kernels_init() != NULL && strcmp(kernels_init(), kernels_isa()) == 0);
    CHECK(kernels_level_supported(KERNELS_SCALAR));
    fprintf(stderr, "kernels: %s\n", kernels_isa());
}

/* The kernel layer's host decisions as pure functions: every branch, with
 * made-up CPUs, on any host; then the running process against them. */
static void test_host_decisions(void)
{
    const bool only_scalar[KERNELS_LEVELS] = {false, true, false, false};
    const bool avx2[KERNELS_LEVELS] = {false, true, true, false};
    const bool all[KERNELS_LEVELS] = {false, true, true, true};
    char w[160];
    CHECK_EQ_INT(kernels_choose_level(all, NULL, w, sizeof w), KERNELS_AVX512);
    CHECK(w[0] == 0);
    CHECK_EQ_INT(kernels_choose_level(avx2, "", w, sizeof w), KERNELS_AVX2);
    CHECK_EQ_INT(kernels_choose_level(avx2, "auto", w, sizeof w), KERNELS_AVX2);
    CHECK(w[0] == 0);
    CHECK_EQ_INT(kernels_choose_level(all, "scalar", w, sizeof w), KERNELS_SCALAR);
    CHECK_EQ_INT(kernels_choose_level(all, "AVX2", w, sizeof w), KERNELS_AVX2);
    CHECK(w[0] == 0);
    CHECK_EQ_INT(kernels_choose_level(all, "avx512", w, sizeof w), KERNELS_AVX512);
    CHECK(w[0] == 0);
    /* a level the CPU lacks: the best below it, with a warning naming both */
    CHECK_EQ_INT(kernels_choose_level(avx2, "avx512", w, sizeof w), KERNELS_AVX2);
    CHECK(strstr(w, "avx512") && strstr(w, "AVX-512") && strstr(w, "using avx2"));
    CHECK_EQ_INT(kernels_choose_level(only_scalar, "avx512", w, sizeof w), KERNELS_SCALAR);
    CHECK(strstr(w, "using scalar") != NULL);
    CHECK_EQ_INT(kernels_choose_level(only_scalar, "avx2", w, sizeof w), KERNELS_SCALAR);
    CHECK(strstr(w, "AVX2") && strstr(w, "using scalar"));
    /* an unknown name: the best level, with a warning listing the names */
    CHECK_EQ_INT(kernels_choose_level(all, "avx-512", w, sizeof w), KERNELS_AVX512);
    CHECK(strstr(w, "not a kernel level") && strstr(w, "scalar, avx2, avx512"));
    CHECK_EQ_INT(kernels_choose_level(avx2, "sse", NULL, 0), KERNELS_AVX2);   /* no warning buffer */

    CHECK(kernels_amx_wanted(NULL, NULL, true));
    CHECK(!kernels_amx_wanted(NULL, NULL, false));
    CHECK(!kernels_amx_wanted("1", NULL, true));
    CHECK(!kernels_amx_wanted("yes", NULL, true));
    CHECK(kernels_amx_wanted("0", NULL, true));
    CHECK(kernels_amx_wanted("", NULL, true));
    CHECK(!kernels_amx_wanted(NULL, "0", true));          /* the older CAIRN_AMX=0 */
    CHECK(!kernels_amx_wanted(NULL, "off", true));
    CHECK(kernels_amx_wanted(NULL, "1", true));
    CHECK(!kernels_amx_wanted(NULL, "1", false));         /* asking for AMX does not invent it */
    CHECK(!kernels_amx_wanted("1", "1", true));           /* off wins */

    CHECK_EQ_INT(kernels_llc_pick(NULL, 32 << 20, 1 << 20), 32 << 20);
    CHECK_EQ_INT(kernels_llc_pick(NULL, 0, 1 << 20), 1 << 20);     /* no L3 reported: L2 */
    CHECK_EQ_INT(kernels_llc_pick(NULL, -1, -1), 32 << 20);        /* nothing known */
    CHECK_EQ_INT(kernels_llc_pick("", 5, 0), 5);
    CHECK_EQ_INT(kernels_llc_pick("1", 32 << 20, 0), 1);
    CHECK_EQ_INT(kernels_llc_pick("0", 32 << 20, 0), 0);
    CHECK_EQ_INT(kernels_llc_pick("2K", 0, 0), 2048);
    CHECK_EQ_INT(kernels_llc_pick("64M", 0, 0), 64 << 20);
    CHECK_EQ_INT(kernels_llc_pick("1g", 0, 0), 1 << 30);
    CHECK_EQ_INT(kernels_llc_pick("lots", 5, 0), 5);              /* not a size: warned, the CPU's */
    CHECK_EQ_INT(kernels_llc_pick("-1", 5, 0), 5);
    CHECK_EQ_INT(kernels_llc_pick("12Q", 5, 0), 5);

    /* this process: the selected level is what the pure function picks from
     * this CPU's levels and CAIRN_KERNELS; AMX only where it can be */
    bool ok[KERNELS_LEVELS] = {false};
    for (kernels_level l = KERNELS_SCALAR; l < KERNELS_LEVELS; l++)
        ok[l] = kernels_level_supported(l);
    const char *env = getenv("CAIRN_KERNELS");
    CHECK_EQ_INT(kernels_selected(), kernels_choose_level(ok, env, w, sizeof w));
    CHECK_EQ_STR(kernels_isa(), kernels_level_name(kernels_selected()));
    CHECK(!kernels_level_supported(KERNELS_AVX512) || kernels_level_supported(KERNELS_AVX2));
    if (kernels_amx())
        CHECK(kernels_amx_supported() && kernels_selected() == KERNELS_AVX512 &&
              kernels_amx_wanted(getenv("CAIRN_NO_AMX"), getenv("CAIRN_AMX"), true));
    /* AMX off: no type of the selected table has the AMX tile sizes (256 x 256) */
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(weight_types); i++) {
        const qtype_traits *t = qtype_get(weight_types[i]);
        if (!kernels_amx())
            CHECKF(t->gemm_nr != 256 && (t->gemm == NULL || !is_float_type_k(weight_types[i])),
                   "%s: an AMX tile kernel with AMX off", t->name);
    }
    fprintf(stderr, "kernels: %s (requested %s), AMX %s (hardware %s)\n", kernels_isa(),
            kernels_level_name(kernels_requested()), kernels_amx() ? "in use" : "off",
            kernels_amx_supported() ? "yes" : "no");
}

/* ---------------------------------------------------------------- hand-made blocks */

static int check_values(const char *what, const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fprintf(stderr, "%s: value %d is %g, want %g\n", what, i, got[i], want[i]);
            return 0;
        }
    }
    return 1;
}

static void test_dequant_legacy_by_hand(void)
{
    float y[QK], want[QK];
    block_q4_0 b40 = {.d = 0x3800};                 /* 0.5 */
    for (int j = 0; j < 16; j++)
        b40.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    for (int j = 0; j < 16; j++) {
        want[j] = (float)(j - 8) * 0.5f;
        want[j + 16] = (float)(7 - j) * 0.5f;
    }
    qtype_get_ref(QT_Q4_0)->to_float(&b40, y, QK);
    CHECK(check_values("q4_0", y, want, QK));

    block_q4_1 b41 = {.d = 0x3400, .m = 0xbc00};    /* 0.25, -1 */
    memcpy(b41.qs, b40.qs, 16);
    for (int j = 0; j < 16; j++) {
        want[j] = (float)j * 0.25f - 1;
        want[j + 16] = (float)(15 - j) * 0.25f - 1;
    }
    qtype_get_ref(QT_Q4_1)->to_float(&b41, y, QK);
    CHECK(check_values("q4_1", y, want, QK));

    block_q5_0 b50 = {.d = 0x3c00, .qh = {0xaa, 0xaa, 0xaa, 0xaa}};  /* bit j set for odd j */
    for (int j = 0; j < 16; j++)
        b50.qs[j] = (uint8_t)(j | (j << 4));
    for (int j = 0; j < 16; j++) {
        want[j] = (float)((j | (j & 1 ? 16 : 0)) - 16);
        want[j + 16] = (float)((j | (j & 1 ? 16 : 0)) - 16);
    }
    qtype_get_ref(QT_Q5_0)->to_float(&b50, y, QK);
    CHECK(check_values("q5_0", y, want, QK));

    block_q5_1 b51 = {.d = 0x3800, .m = 0x4000, .qh = {0x0f, 0, 0, 0x80}};  /* 0.5, +2; values 0-3 and 31 high */
    for (int j = 0; j < 16; j++)
        b51.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    for (int j = 0; j < 16; j++) {
        want[j] = (float)(j + (j < 4 ? 16 : 0)) * 0.5f + 2;
        want[j + 16] = (float)(15 - j + (j == 15 ? 16 : 0)) * 0.5f + 2;
    }
    qtype_get_ref(QT_Q5_1)->to_float(&b51, y, QK);
    CHECK(check_values("q5_1", y, want, QK));

    block_q8_0 b80 = {.d = 0x4000};                 /* 2 */
    for (int j = 0; j < QK; j++) {
        b80.qs[j] = (int8_t)(j * 8 - 128);
        want[j] = 2.0f * (float)(j * 8 - 128);
    }
    qtype_get_ref(QT_Q8_0)->to_float(&b80, y, QK);
    CHECK(check_values("q8_0", y, want, QK));
}

/* K-quant blocks built from the layout description in blocks.h/quant_kref.c:
 * value v lives in 128-value (Q2/Q3/Q6) or 64-value (Q4/Q5) groups; within a
 * group, byte l carries value l in its low bits and l+32, l+64, l+96 above. */
static void test_dequant_kquants_by_hand(void)
{
    float y[QK_K], want[QK_K];

    block_q2_K q2 = {.d = 0x3c00, .dmin = 0x3800};  /* 1, 0.5 */
    for (int j = 0; j < 16; j++)
        q2.scales[j] = (uint8_t)(j | ((15 - j) << 4));
    memset(q2.qs, 0xe4, sizeof q2.qs);              /* bits 2k..2k+1 = k */
    for (int v = 0; v < QK_K; v++)
        want[v] = (float)(v / 16) * (float)((v % 128) / 32) - 0.5f * (float)(15 - v / 16);
    qtype_get_ref(QT_Q2_K)->to_float(&q2, y, QK_K);
    CHECK(check_values("q2_K", y, want, QK_K));

    block_q3_K q3 = {.d = 0x3c00};
    int sc3[16];
    for (int j = 0; j < 16; j++) {
        sc3[j] = 3 * j - 20;
        int l = sc3[j] + 32;                        /* 6 bits: low 4 in nibbles, high 2 in bytes 8..11 */
        if (j < 8)
            q3.scales[j] |= (uint8_t)(l & 0xF);
        else
            q3.scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        q3.scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    memset(q3.hmask, 0x55, sizeof q3.hmask);        /* high bit set for values in even 32-groups */
    memset(q3.qs, 0xe4, sizeof q3.qs);
    for (int v = 0; v < QK_K; v++) {
        int q = (v % 128) / 32 - ((v / 32) % 2 == 0 ? 0 : 4);
        want[v] = (float)sc3[v / 16] * (float)q;
    }
    qtype_get_ref(QT_Q3_K)->to_float(&q3, y, QK_K);
    CHECK(check_values("q3_K", y, want, QK_K));

    block_q4_K q4 = {.d = 0x3c00, .dmin = 0x3c00};
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = 10 + 7 * j;
        mn[j] = 63 - 5 * j;
        if (j < 4) {
            q4.scales[j] |= (uint8_t)sc[j];
            q4.scales[j + 4] |= (uint8_t)mn[j];
        } else {
            q4.scales[j + 4] = (uint8_t)((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
            q4.scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            q4.scales[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
    memset(q4.qs, 0x93, sizeof q4.qs);              /* low nibble 3 (first 32 of 64), high 9 */
    for (int v = 0; v < QK_K; v++)
        want[v] = (float)sc[v / 32] * (float)((v % 64) < 32 ? 3 : 9) - (float)mn[v / 32];
    qtype_get_ref(QT_Q4_K)->to_float(&q4, y, QK_K);
    CHECK(check_values("q4_K", y, want, QK_K));

    block_q5_K q5 = {.d = 0x3800, .dmin = 0x3c00};  /* 0.5, 1 */
    memcpy(q5.scales, q4.scales, sizeof q5.scales);
    memset(q5.qs, 0x93, sizeof q5.qs);
    memset(q5.qh, 0x66, sizeof q5.qh);              /* bit 2g: low half of group g, 2g+1: high half */
    for (int v = 0; v < QK_K; v++) {
        int g = v / 64, hi = (v % 64) >= 32, bit = 2 * g + hi;
        int q = (hi ? 9 : 3) + ((0x66 >> bit) & 1 ? 16 : 0);
        want[v] = 0.5f * (float)sc[v / 32] * (float)q - (float)mn[v / 32];
    }
    qtype_get_ref(QT_Q5_K)->to_float(&q5, y, QK_K);
    CHECK(check_values("q5_K", y, want, QK_K));

    block_q6_K q6 = {.d = 0x3800};                  /* 0.5 */
    for (int j = 0; j < 16; j++)
        q6.scales[j] = (int8_t)(j - 8);
    memset(q6.ql, 0x5a, sizeof q6.ql);              /* low nibble 10 (values l, l+32), high 5 (l+64, l+96) */
    memset(q6.qh, 0xe4, sizeof q6.qh);              /* 2 high bits of the k-th 32 = k */
    for (int v = 0; v < QK_K; v++) {
        int k = (v % 128) / 32;
        int q = ((k < 2 ? 10 : 5) | (k << 4)) - 32;
        want[v] = 0.5f * (float)(v / 16 - 8) * (float)q;
    }
    qtype_get_ref(QT_Q6_K)->to_float(&q6, y, QK_K);
    CHECK(check_values("q6_K", y, want, QK_K));

    block_q8_K q8 = {.d = 0.25f};
    for (int v = 0; v < QK_K; v++) {
        q8.qs[v] = (int8_t)(v - 128);
        want[v] = 0.25f * (float)(v - 128);
    }
    qtype_get_ref(QT_Q8_K)->to_float(&q8, y, QK_K);
    CHECK(check_values("q8_K", y, want, QK_K));
}

/* ---------------------------------------------------------------- golden bytes (ggufio.py) */

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The same input as the generator run through ../shared/tools/ggufio.py's
 * quant_q8_0 / quant_q4_0 (LCG integers scaled by 2^-17, plus a zero block,
 * a block of exact ties and equal-magnitude extremes). */
static void golden_input(float *x)
{
    uint64_t s = 12345;
    for (int i = 0; i < 256; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int64_t k = (int64_t)((s >> 33) % (1u << 20)) - (1 << 19);
        x[i] = (float)k * 0x1p-17f;
    }
    for (int i = 64; i < 96; i++)
        x[i] = 0;
    for (int i = 96; i < 128; i++)
        x[i] = 0.25f * (float)(i - 96) - 4;
    for (int i = 128; i < 160; i++)
        x[i] = -x[i];
    x[160] = 3.0f;
    x[161] = -3.0f;
}

static void test_golden_q8_0_q4_0(void)
{
    float x[256];
    golden_input(x);
    block_q8_0 q8[8];
    block_q4_0 q4[8];
    qtype_get(QT_Q8_0)->from_float(x, q8, 256);
    qtype_get(QT_Q4_0)->from_float(x, q4, 256);
    static const uint8_t q4_head[40] = {
        0x4a, 0x37, 0x77, 0x28, 0x6d, 0x9a, 0x9f, 0x3e, 0x2e, 0xfd, 0x28, 0xd6, 0xa8, 0xd5, 0x70, 0x1f, 0x8e, 0xc7, 0xb8, 0xb7,
        0x13, 0xfd, 0x1f, 0xff, 0x42, 0x09, 0x47, 0xfb, 0x20, 0xb8, 0xaf, 0x82, 0xf8, 0x02, 0x55, 0x2e, 0x00, 0x80, 0x88, 0x88};
    static const uint8_t q8_head[40] = {
        0x58, 0x27, 0xe9, 0x03, 0x48, 0x19, 0x6d, 0x61, 0x60, 0x4e, 0xfc, 0xdc, 0x03, 0xc8, 0x81, 0x68, 0x61, 0xf1, 0xf3, 0x9c,
        0xe8, 0x0c, 0x16, 0xab, 0x9d, 0x7f, 0xa6, 0x49, 0x1c, 0x52, 0xef, 0x8e, 0x04, 0x42, 0xc7, 0x27, 0x4e, 0xae, 0x82, 0x86};
    CHECK(memcmp(q4, q4_head, 40) == 0);
    CHECK(memcmp(q8, q8_head, 40) == 0);
    CHECK(fnv1a(q8, sizeof q8) == 0x3ba68959dd3b6406ull);
    CHECK(fnv1a(q4, sizeof q4) == 0x88335e1a33ce7a4aull);
}

/* ---------------------------------------------------------------- quantizer quality */

/* Relative RMSE of quantize -> dequantize on Gaussian data with a few 8x
 * outliers and a drifting mean. Q4_0/Q8_0 are byte-identical to ggml, so
 * their numbers are ggml's; the bounds are ~10% above the measured values
 * (0.0054 Q8_0, 0.0176 Q6_K, 0.032 Q5_K, 0.063 Q4_K, 0.086 Q4_0, 0.150
 * Q3_K, 0.258 Q2_K), and the K-quants must beat the legacy types of the
 * same width — which only a working scale/min search achieves. */
static void test_quantize_error(void)
{
    static const struct { uint32_t type; double max_rel_rmse; } cases[] = {
        {QT_F16, 0.00025}, {QT_BF16, 0.0019}, {QT_Q8_0, 0.006}, {QT_Q8_1, 0.006}, {QT_Q8_K, 0.0092},
        {QT_Q6_K, 0.0194}, {QT_Q5_0, 0.0475}, {QT_Q5_1, 0.037}, {QT_Q5_K, 0.0353}, {QT_Q4_0, 0.095},
        {QT_Q4_1, 0.077}, {QT_Q4_K, 0.0697}, {QT_Q3_K, 0.165}, {QT_Q2_K, 0.284},
    };
    double err[QT_COUNT] = {0};
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    void *q = malloc(N * 4);
    for (int i = 0; i < N; i++)
        x[i] = rnd_normal() * (i % 997 == 5 ? 8.0f : 1.0f) + (i / 4096) * 0.3f;
    double sx = 0;
    for (int i = 0; i < N; i++)
        sx += (double)x[i] * x[i];
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(cases); c++) {
        const qtype_traits *t = qtype_get(cases[c].type);
        t->from_float(x, q, N);
        t->to_float(q, y, N);
        double se = 0;
        for (int i = 0; i < N; i++)
            se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        double rel = sqrt(se / sx);
        fprintf(stderr, "  %-5s rel rmse %.5f (bound %.4f)\n", t->name, rel, cases[c].max_rel_rmse);
        CHECKF(rel <= cases[c].max_rel_rmse, "%s: %g", t->name, rel);
        err[cases[c].type] = rel;
        /* quantize is deterministic and dequantize(quantize) is a fixed point for the exact types */
        if (cases[c].type == QT_F16 || cases[c].type == QT_BF16) {
            void *q2 = malloc(N * 4);
            t->from_float(y, q2, N);
            CHECK(memcmp(q, q2, qtype_row_size(cases[c].type, N)) == 0);
            free(q2);
        }
    }
    CHECK(err[QT_Q4_K] < err[QT_Q4_1] && err[QT_Q4_1] < err[QT_Q4_0]);
    CHECK(err[QT_Q5_K] < err[QT_Q5_1] && err[QT_Q5_1] < err[QT_Q5_0]);
    CHECK(err[QT_Q6_K] < err[QT_Q5_K] && err[QT_Q3_K] < err[QT_Q2_K] && err[QT_Q4_K] < err[QT_Q3_K]);
    /* all-zero and constant blocks quantize without NaN */
    for (int i = 0; i < 512; i++)
        x[i] = i < 256 ? 0.0f : 1.5f;
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(cases); c++) {
        const qtype_traits *t = qtype_get(cases[c].type);
        t->from_float(x, q, 512);
        t->to_float(q, y, 512);
        int bad = 0;
        for (int i = 0; i < 512; i++)
            bad += !isfinite(y[i]) || fabsf(y[i] - x[i]) > 0.02f;
        CHECKF(bad == 0, "%s: %d bad values on zero/constant blocks", t->name, bad);
    }
    free(x);
    free(y);
    free(q);
}

/* ---------------------------------------------------------------- dot products */

/* vec_dot(w, a) against the float dot of the dequantized operands: both
 * sides see the same quantized values, so only accumulation order differs. */
static void test_vec_dot_scalar(void)
{
    int sizes[] = {256, 512, 256 * 11};
    for (size_t s = 0; s < CAIRN_ARRAY_LEN(sizes); s++) {
        int n = sizes[s];
        float *w = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float));
        float *wd = malloc(n * sizeof(float)), *ad = malloc(n * sizeof(float));
        void *wq = malloc((size_t)n * 4), *aq = malloc((size_t)n * 4);
        for (int i = 0; i < n; i++) {
            w[i] = rnd_normal();
            a[i] = rnd_normal() + 0.5f;
        }
        for (size_t k = 0; k < CAIRN_ARRAY_LEN(weight_types); k++) {
            const qtype_traits *wt = qtype_get_ref(weight_types[k]), *at = qtype_get_ref(wt->vec_dot_type);
            wt->from_float(w, wq, n);
            wt->to_float(wq, wd, n);
            at->from_float(a, aq, n);
            at->to_float(aq, ad, n);
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                ref += (double)wd[i] * ad[i];
                mag += fabs((double)wd[i] * ad[i]);
            }
            float got = -1;
            wt->vec_dot(n, &got, wq, aq);
            /* Q8_1's s is stored as fp16: allow its rounding (2^-11 relative of d*sum) */
            double tol = 1e-5 * mag + (wt->vec_dot_type == QT_Q8_1 ? 2e-3 * mag : 0);
            CHECKF(fabs(got - ref) <= tol, "%s n=%d: %g vs %g", wt->name, n, got, ref);
        }
        free(w); free(a); free(wd); free(ad); free(wq); free(aq);
    }
}

/* ---------------------------------------------------------------- matmul */

static void fill_weights(uint32_t type, int64_t rows, int64_t cols, void **data, float **x, int64_t n_tok)
{
    float *wf = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++)
        wf[i] = rnd_normal();
    size_t rs = qtype_row_size(type, cols);
    *data = malloc(rs * (size_t)rows + 1);
    for (int64_t r = 0; r < rows; r++)
        qtype_get(type)->from_float(wf + r * cols, (uint8_t *)*data + r * rs, cols);
    free(wf);
    *x = malloc((size_t)(n_tok * cols) * sizeof(float) + 4);
    for (int64_t i = 0; i < n_tok * cols; i++)
        (*x)[i] = rnd_normal();
}

/* ---------------------------------------------------------------- matmul invariants
 *
 * (a) At every kernel level, each output is bit-identical whatever the
 *     number of threads, however the rows are split (into chunks, into
 *     separate matrices, into the parts of one matmul_multi) and whether
 *     the decode kernels read the weights as one stream (matmul_ctx.stream)
 *     or side by side. Reproducible greedy output rests on this.
 * (b) Against the single-row reference of the same level (vec_dot on the
 *     activations quantize_act made): where matmul runs vec_dot itself (no
 *     gemm and no gemv at that level: scalar, AVX2, and the AVX-512 types
 *     without them) bit for bit; where a tile (gemm) or multi-row (gemv)
 *     kernel runs, within a bound that follows from the arithmetic
 *     (order_bound below), because those kernels add the same terms in
 *     another order. Which of the two paths a token takes depends on the
 *     number of tokens in the call (tiles from 8 tokens), never on threads.
 *     The same bound holds between a SIMD level's vec_dot and the scalar
 *     reference's on the same quantized operands (checked too, so the bound
 *     is exercised on a host whose levels have no gemm or gemv).
 */

/* Every level this host can run, scalar first; only the forced one when
 * CAIRN_KERNELS forces a level (the plain run already covers them all). */
static int host_levels(kernels_level *out)
{
    int n = 0;
    if (kernels_requested() != KERNELS_DEFAULT) {
        out[n++] = kernels_selected();
        return n;
    }
    for (kernels_level l = KERNELS_SCALAR; l < KERNELS_LEVELS; l++)
        if (kernels_level_supported(l))
            out[n++] = l;
    return n;
}

static bool is_float_type(uint32_t t) { return t == QT_F32 || t == QT_F16 || t == QT_BF16; }

/* Dequantize a weight row as its two parts: sc[i] = the scale part (d * q,
 * or d * sc * q for the K-quants) and mn[i] = the min part (m, or -dmin *
 * m_j; 0 for types without a min), so that w = sc + mn. The kernels add the
 * two parts as separate terms, so the bound needs |sc| + |mn|, not |w|. */
static void weight_parts(uint32_t type, const void *row, int64_t cols, float *sc, float *mn)
{
    const qtype_traits *rt = qtype_get_ref(type);
    size_t rs = qtype_row_size(type, cols), bs = rt->type_size, off_d = 0, off_m = 0;
    switch (type) {
    case QT_Q4_1: off_d = offsetof(block_q4_1, d), off_m = offsetof(block_q4_1, m); break;
    case QT_Q5_1: off_d = offsetof(block_q5_1, d), off_m = offsetof(block_q5_1, m); break;
    case QT_Q2_K: off_d = offsetof(block_q2_K, d), off_m = offsetof(block_q2_K, dmin); break;
    case QT_Q4_K: off_d = offsetof(block_q4_K, d), off_m = offsetof(block_q4_K, dmin); break;
    case QT_Q5_K: off_d = offsetof(block_q5_K, d), off_m = offsetof(block_q5_K, dmin); break;
    default:
        rt->to_float(row, sc, cols);
        memset(mn, 0, (size_t)cols * sizeof(float));
        return;
    }
    uint8_t *c = malloc(rs);
    memcpy(c, row, rs);
    for (size_t b = 0; b < rs / bs; b++)
        memset(c + b * bs + off_m, 0, 2);          /* min scale 0: the scale part */
    rt->to_float(c, sc, cols);
    memcpy(c, row, rs);
    for (size_t b = 0; b < rs / bs; b++)
        memset(c + b * bs + off_d, 0, 2);          /* scale 0: the min part */
    rt->to_float(c, mn, cols);
    free(c);
}

/* The largest |batched - vec_dot| the arithmetic allows for one output,
 * given M = sum_i (|sc_i| + |mn_i|) * |a_i| over the row (weight parts as
 * above, a = the dequantized activations both sides use).
 *
 * Both sides compute s = sum_k t_k over the same terms, in different orders:
 *  - quantized types: one term per group of values sharing a scale (>= 16
 *    values: Q2_K/Q3_K/Q6_K 16, others 32 or a whole super-block), the exact
 *    integer group sum times the scales, plus one term per group for the
 *    min; so K <= 2 * n / 16 = n / 8 terms;
 *  - float types: one product per value, but the AMX bf16 tile splits each
 *    product into five exact bf16 x bf16 products (gemm_amx_avx512.c):
 *    K <= 5 n terms.
 * Each term is formed with at most 4 roundings (scale products d_w * d_a or
 * d * sc, the int -> float conversion, the product with the integer sum; the
 * final double -> float of the F32 dot and AMX's dropped a3 * w2 part, each
 * below 2^-24 of a term, count as one more), and |sum of the terms'
 * magnitudes| <= (1 + 2^-6) M (the three bf16 parts of an activation add
 * up to at most (1 + 2^-7) of it; Q8_1's fp16 sum and Q8_K's float
 * dequantization are within 2^-11 and 2^-24). Summation in any order of K
 * terms each carrying <= 4 roundings is within gamma(K + 3) of the exact
 * sum, gamma(m) = m u / (1 - m u), u = 2^-24 (Higham, "Accuracy and
 * Stability of Numerical Algorithms", 2nd ed., 3.1 and 4.2: every summand
 * goes through at most K - 1 additions); two such results differ by at
 * most twice that. Products that underflow (AMX flushes subnormals) lose
 * at most FLT_MIN each: K * FLT_MIN more. With these test data (|a|, |w| ~
 * 1, n = 256..9216) the bound is 4e-6 .. 2e-3 relative to M: far above the
 * ~sqrt(K) u M a correct kernel shows, and far below what any wrong index,
 * scale or block would produce. */
static double order_bound(uint32_t type, int64_t n, double mag)
{
    const double u = 0x1p-24;
    double K = is_float_type(type) ? 5.0 * (double)n : CAIRN_MAX((double)n / 8.0, 1.0);
    double m = K + 3, gamma = m * u / (1 - m * u);
    return 2 * gamma * (1 + 0x1p-6) * mag + K * 0x1p-126;
}

static const struct { int64_t rows, cols, n_tok; } mm_shapes[] = {
    {1, 256, 1}, {3, 512, 1}, {17, 256, 5}, {67, 768, 1}, {64, 256, 70}, {129, 512, 33}, {5, 256, 2},
    {40, 512, 8},       /* exactly the tile threshold */
    {24, 256, 131},     /* a 128-token tile and a 3-token tail on the per-row path */
    {9, 256, 259},      /* AMX: a 256-token tile and a 3-token tail */
    {17, 9216, 1},      /* decode rows longer than the gemv's arranged-activation buffer */
};

static void test_matmul_threads_splits(void)
{
    cairn_pool *pool2 = NULL, *pool3 = NULL;
    CHECK_OK(cairn_pool_new(2, &pool2));
    CHECK_OK(cairn_pool_new(3, &pool3));
    kernels_level lv[KERNELS_LEVELS];
    int n_lv = host_levels(lv);
    for (int li = 0; li < n_lv; li++) {
        int cases = 0;
        for (size_t k = 0; k < CAIRN_ARRAY_LEN(weight_types); k++) {
            uint32_t type = weight_types[k];
            for (size_t s = 0; s < CAIRN_ARRAY_LEN(mm_shapes); s++) {
                int64_t rows = mm_shapes[s].rows, cols = mm_shapes[s].cols, n_tok = mm_shapes[s].n_tok;
                void *wd;
                float *x;
                fill_weights(type, rows, cols, &wd, &x, n_tok);
                size_t ny = (size_t)(rows * n_tok), rs = qtype_row_size(type, cols);
                qmat w = {.type = type, .rows = rows, .cols = cols, .data = wd};
                float *want = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float));
                matmul_ctx c1 = {.level = lv[li]};
                CHECK_OK(matmul(&c1, &w, x, want, n_tok));
                /* threads, and the decode kernels' stream mode */
                struct { cairn_pool *pool; bool stream; } runs[] = {{pool2, false}, {pool3, false}, {NULL, true}, {pool2, true}};
                int bad = 0;
                for (size_t r = 0; r < CAIRN_ARRAY_LEN(runs); r++) {
                    matmul_ctx c = {.pool = runs[r].pool, .level = lv[li], .stream = runs[r].stream};
                    memset(y, 0xff, ny * sizeof(float));
                    CHECK_OK(matmul(&c, &w, x, y, n_tok));
                    bad += memcmp(y, want, ny * sizeof(float)) != 0;
                    matmul_ctx_free(&c);
                }
                /* rows split into separate matrices: one matmul_multi over the parts, and each alone */
                int64_t cut[4] = {0, CAIRN_MIN((int64_t)1, rows), CAIRN_MIN((int64_t)9, rows), rows};
                qmat parts[3];
                float *ys[3];
                for (int i = 0; i < 3; i++) {
                    parts[i] = (qmat){.type = type, .rows = cut[i + 1] - cut[i], .cols = cols,
                                      .data = (uint8_t *)wd + (size_t)cut[i] * rs};
                    ys[i] = malloc((size_t)((parts[i].rows + 1) * n_tok) * sizeof(float));
                }
                matmul_ctx c3 = {.pool = pool3, .level = lv[li]};
                CHECK_OK(matmul_multi(&c3, parts, 3, x, ys, n_tok));
                for (int pass = 0; pass < 2; pass++) {
                    for (int i = 0; i < 3; i++) {
                        if (pass == 1 && parts[i].rows > 0)
                            CHECK_OK(matmul(&c3, &parts[i], x, ys[i], n_tok));
                        for (int64_t t = 0; t < n_tok; t++)
                            bad += memcmp(ys[i] + t * parts[i].rows, want + t * rows + cut[i],
                                          (size_t)parts[i].rows * sizeof(float)) != 0;
                    }
                }
                matmul_ctx_free(&c3);
                CHECKF(bad == 0, "%s %s %lldx%lld n=%lld: %d runs differ from one thread", kernels_level_name(lv[li]),
                       qtype_get_ref(type)->name, (long long)rows, (long long)cols, (long long)n_tok, bad);
                cases++;
                for (int i = 0; i < 3; i++)
                    free(ys[i]);
                matmul_ctx_free(&c1);
                free(wd); free(x); free(want); free(y);
            }
        }
        fprintf(stderr, "  level %s: %d type x shape cases, bit-identical across threads, splits and stream\n",
                kernels_level_name(lv[li]), cases);
    }
    cairn_pool_free(pool2);
    cairn_pool_free(pool3);
}

static void test_matmul_vs_vec_dot(void)
{
    kernels_level lv[KERNELS_LEVELS];
    int n_lv = host_levels(lv);
    for (int li = 0; li < n_lv; li++) {
        int exact = 0, bounded = 0;
        double worst = 0, worst_ref = 0;   /* largest |diff| / bound seen */
        for (size_t k = 0; k < CAIRN_ARRAY_LEN(weight_types); k++) {
            uint32_t type = weight_types[k];
            const qtype_traits *wt = qtype_get_level(type, lv[li]), *at = qtype_get_level(wt->vec_dot_type, lv[li]);
            const bool same_kernel = !wt->gemm && !wt->gemv;   /* matmul runs vec_dot itself */
            for (size_t s = 0; s < CAIRN_ARRAY_LEN(mm_shapes); s++) {
                int64_t rows = mm_shapes[s].rows, cols = mm_shapes[s].cols, n_tok = mm_shapes[s].n_tok;
                void *wd;
                float *x;
                fill_weights(type, rows, cols, &wd, &x, n_tok);
                qmat w = {.type = type, .rows = rows, .cols = cols, .data = wd};
                float *y = malloc((size_t)(rows * n_tok) * sizeof(float));
                matmul_ctx c = {.level = lv[li]};
                CHECK_OK(matmul(&c, &w, x, y, n_tok));
                size_t rs = qtype_row_size(type, cols), as = qtype_row_size(wt->vec_dot_type, cols);
                void *aq = malloc(as);
                float *ad = malloc((size_t)cols * sizeof(float));
                float *sc = malloc((size_t)(rows * cols) * sizeof(float)), *mn = malloc((size_t)(rows * cols) * sizeof(float));
                const bool vs_ref = lv[li] != KERNELS_SCALAR;
                if (!same_kernel || vs_ref)
                    for (int64_t r = 0; r < rows; r++)
                        weight_parts(type, (uint8_t *)wd + r * rs, cols, sc + r * cols, mn + r * cols);
                int bad = 0, bad_ref = 0;
                for (int64_t t = 0; t < n_tok; t++) {
                    at->quantize_act(x + t * cols, aq, cols);
                    qtype_get_ref(wt->vec_dot_type)->to_float(aq, ad, cols);
                    for (int64_t r = 0; r < rows; r++) {
                        float want, got = y[t * rows + r];
                        wt->vec_dot((int)cols, &want, (uint8_t *)wd + r * rs, aq);
                        double bound = 0;
                        if (!same_kernel || vs_ref) {
                            double mag = 0;
                            for (int64_t i = 0; i < cols; i++)
                                mag += (fabs((double)sc[r * cols + i]) + fabs((double)mn[r * cols + i])) * fabs((double)ad[i]);
                            bound = order_bound(type, cols, mag);
                        }
                        if (vs_ref) {   /* this level's vec_dot against the scalar one, same operands */
                            float ref;
                            qtype_get_ref(type)->vec_dot((int)cols, &ref, (uint8_t *)wd + r * rs, aq);
                            double d = fabs((double)ref - want);
                            bad_ref += !(d <= bound);
                            worst_ref = fmax(worst_ref, bound > 0 ? d / bound : 0);
                        }
                        if (same_kernel) {
                            bad += memcmp(&got, &want, sizeof got) != 0;
                            exact++;
                            continue;
                        }
                        double diff = fabs((double)got - want);
                        if (!(diff <= bound) && bad++ < 3)
                            fprintf(stderr, "  %s %s row %lld tok %lld: %.9g vs vec_dot %.9g, bound %.3g\n",
                                    kernels_level_name(lv[li]), wt->name, (long long)r, (long long)t, got, want, bound);
                        worst = fmax(worst, bound > 0 ? diff / bound : 0);
                        bounded++;
                    }
                }
                CHECKF(bad_ref == 0, "%s %s %lldx%lld: %d vec_dot outputs beyond the order bound from the scalar reference",
                       kernels_level_name(lv[li]), wt->name, (long long)rows, (long long)cols, bad_ref);
                CHECKF(bad == 0, "%s %s %lldx%lld n=%lld: %d outputs differ from vec_dot (%s)", kernels_level_name(lv[li]),
                       wt->name, (long long)rows, (long long)cols, (long long)n_tok, bad,
                       same_kernel ? "same kernel: must be bit-identical" : "beyond the summation-order bound");
                free(aq); free(ad); free(sc); free(mn);
                matmul_ctx_free(&c);
                free(wd); free(x); free(y);
            }
        }
        fprintf(stderr, "  level %s: %d outputs bit-identical to vec_dot, %d within the order bound (worst %.3g of it); "
                "vec_dot vs scalar reference: worst %.3g of the bound\n", kernels_level_name(lv[li]), exact, bounded, worst,
                worst_ref);
    }
}

/* Against float math: y = W x with W dequantized, within quantization error. */
static void test_matmul_vs_float(void)
{
    int64_t rows = 40, cols = 512, n_tok = 3;
    for (size_t k = 0; k < CAIRN_ARRAY_LEN(weight_types); k++) {
        uint32_t type = weight_types[k];
        void *wd;
        float *x;
        fill_weights(type, rows, cols, &wd, &x, n_tok);
        qmat w = {.type = type, .rows = rows, .cols = cols, .data = wd};
        float *y = malloc((size_t)(rows * n_tok) * sizeof(float)), *row = malloc((size_t)cols * sizeof(float));
        matmul_ctx c = {0};
        CHECK_OK(matmul(&c, &w, x, y, n_tok));
        size_t rs = qtype_row_size(type, cols);
        double se = 0, sr = 0;
        for (int64_t r = 0; r < rows; r++) {
            qtype_get(type)->to_float((uint8_t *)wd + r * rs, row, cols);
            for (int64_t t = 0; t < n_tok; t++) {
                double ref = 0;
                for (int64_t i = 0; i < cols; i++)
                    ref += (double)row[i] * x[t * cols + i];
                se += (y[t * rows + r] - ref) * (y[t * rows + r] - ref);
                sr += ref * ref;
            }
        }
        /* only the activation quantization separates them (8-bit: ~0.5%) */
        double rel = sqrt(se / sr), bound = qtype_get(type)->vec_dot_type == QT_F32 ? 1e-6 : 0.012;
        CHECKF(rel <= bound, "%s: rel err %g", qtype_get(type)->name, rel);
        matmul_ctx_free(&c);
        free(wd); free(x); free(y); free(row);
    }
}

/* matmul_multi equals separate matmul calls, bit for bit, with mixed
 * activation types (Q8_K, Q8_0, F32, Q8_1) in one run. */
static void test_matmul_multi(void)
{
    cairn_pool *pool = NULL, *pool3 = NULL;
    CHECK_OK(cairn_pool_new(2, &pool));
    CHECK_OK(cairn_pool_new(3, &pool3));
    const uint32_t types[] = {QT_Q4_K, QT_Q8_0, QT_F16, QT_Q6_K, QT_Q4_1, QT_Q5_0};
    const int64_t rows[] = {96, 33, 40, 0, 17, 64};
    int64_t cols = 512;
    int64_t toks[] = {1, 4, 70};
    for (size_t tt = 0; tt < CAIRN_ARRAY_LEN(toks); tt++) {
        int64_t n_tok = toks[tt];
        qmat ws[6];
        float *ys[6], *yref[6], *x = NULL;
        void *data[6];
        for (int i = 0; i < 6; i++) {
            float *xi;
            fill_weights(types[i], rows[i] ? rows[i] : 1, cols, &data[i], &xi, n_tok);
            if (i == 0)
                x = xi;
            else
                free(xi);
            ws[i] = (qmat){.type = types[i], .rows = rows[i], .cols = cols, .data = data[i]};
            ys[i] = malloc((size_t)((rows[i] + 1) * n_tok) * sizeof(float));
            yref[i] = malloc((size_t)((rows[i] + 1) * n_tok) * sizeof(float));
        }
        matmul_ctx c = {.pool = pool}, c1 = {0}, c3 = {.pool = pool3};
        /* three threads first: decode lanes are stolen from, and claims span parts */
        CHECK_OK(matmul_multi(&c3, ws, 6, x, ys, n_tok));
        for (int i = 0; i < 6; i++) {
            CHECK_OK(matmul(&c1, &ws[i], x, yref[i], n_tok));
            CHECKF(memcmp(ys[i], yref[i], (size_t)(rows[i] * n_tok) * sizeof(float)) == 0, "3 threads: part %d n_tok %lld",
                   i, (long long)n_tok);
        }
        matmul_ctx_free(&c3);
        CHECK_OK(matmul_multi(&c, ws, 6, x, ys, n_tok));
        for (int i = 0; i < 6; i++) {
            CHECK_OK(matmul(&c1, &ws[i], x, yref[i], n_tok));
            CHECKF(memcmp(ys[i], yref[i], (size_t)(rows[i] * n_tok) * sizeof(float)) == 0, "part %d n_tok %lld", i, (long long)n_tok);
        }
        ws[2].cols = 256;
        CHECK(matmul_multi(&c, ws, 6, x, ys, n_tok) == CAIRN_ERR_INVALID);
        CHECK(matmul_multi(&c, ws, 0, x, ys, n_tok) == CAIRN_ERR_INVALID);
        CHECK(matmul_multi(&c, ws, MATMUL_MAX_MULTI + 1, x, ys, n_tok) == CAIRN_ERR_INVALID);
        matmul_ctx_free(&c);
        matmul_ctx_free(&c1);
        for (int i = 0; i < 6; i++) {
            free(data[i]);
            free(ys[i]);
            free(yref[i]);
        }
        free(x);
    }
    cairn_pool_free(pool);
    cairn_pool_free(pool3);
}

static void test_matmul_errors(void)
{
    float x[512] = {0}, y[8];
    uint8_t data[18 * 16] = {0};
    matmul_ctx c = {0};
    qmat w = {.type = QT_Q4_0, .rows = 1, .cols = 48, .data = data};
    CHECK(matmul(&c, &w, x, y, 1) == CAIRN_ERR_INVALID);      /* 48 not a multiple of 32 */
    w.cols = 64;
    w.type = QT_Q8_K;
    CHECK(matmul(&c, &w, x, y, 1) == CAIRN_ERR_UNSUPPORTED);  /* activation-only type */
    w.type = 4;
    CHECK(matmul(&c, &w, x, y, 1) == CAIRN_ERR_UNSUPPORTED);
    w.type = QT_Q4_0;
    CHECK(matmul(&c, &w, x, y, -1) == CAIRN_ERR_INVALID);
    CHECK(matmul(&c, &w, NULL, y, 1) == CAIRN_ERR_INVALID);
    CHECK_OK(matmul(&c, &w, x, y, 0));
    CHECK_OK(matmul(&c, &w, x, y, 1));
    CHECK(y[0] == 0.0f);
    matmul_ctx_free(&c);
    matmul_ctx_free(&c);   /* idempotent */
}

/* Every allocation in matmul can fail: the error is NOMEM, the context stays
 * usable, and a retry gives the same answer. */
static void test_matmul_alloc_failures(void)
{
    int64_t rows = 33, cols = 512, n_tok = 9;
    void *wd;
    float *x;
    fill_weights(QT_Q4_K, rows, cols, &wd, &x, n_tok);
    qmat w = {.type = QT_Q4_K, .rows = rows, .cols = cols, .data = wd};
    float *want = malloc((size_t)(rows * n_tok) * sizeof(float)), *y = malloc((size_t)(rows * n_tok) * sizeof(float));
    matmul_ctx c0 = {0};
    CHECK_OK(matmul(&c0, &w, x, want, n_tok));
    matmul_ctx_free(&c0);
    int failures_seen = 0;
    for (long n = 0; n < 10; n++) {
        matmul_ctx c = {0};
        cairn_alloc_fail_after(n, true);
        cairn_status st = matmul(&c, &w, x, y, n_tok);
        long injected = cairn_alloc_injected_failures();
        cairn_alloc_fail_after(-1, false);
        if (injected > 0) {
            failures_seen++;
            CHECK(st == CAIRN_ERR_NOMEM);
            CHECK(c.scratch == NULL && c.scratch_size == 0);
        } else {
            CHECK_OK(st);
        }
        CHECK_OK(matmul(&c, &w, x, y, n_tok));
        CHECK(memcmp(y, want, (size_t)(rows * n_tok) * sizeof(float)) == 0);
        /* growing an existing scratch can fail too: old scratch kept */
        void *old = c.scratch;
        cairn_alloc_fail_after(0, true);
        st = matmul(&c, &w, x, y, n_tok * 4 > 36 ? 36 : n_tok * 4);
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_ERR_NOMEM || st == CAIRN_OK);
        if (st == CAIRN_ERR_NOMEM)
            CHECK(c.scratch == old);
        matmul_ctx_free(&c);
    }
    CHECK(failures_seen > 0);
    free(wd); free(x); free(want); free(y);
}

int main(void)
{
    RUN(test_fp16_decode_exhaustive);
    RUN(test_fp16_encode);
    RUN(test_bf16);
    RUN(test_traits);
    RUN(test_host_decisions);
    RUN(test_dequant_legacy_by_hand);
    RUN(test_dequant_kquants_by_hand);
    RUN(test_golden_q8_0_q4_0);
    RUN(test_quantize_error);
    RUN(test_vec_dot_scalar);
    RUN(test_matmul_threads_splits);
    RUN(test_matmul_vs_vec_dot);
    RUN(test_matmul_vs_float);
    RUN(test_matmul_multi);
    RUN(test_matmul_errors);
    RUN(test_matmul_alloc_failures);
    return t_done();
}
