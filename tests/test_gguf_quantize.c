/* test_gguf_quantize.c — quantize plans (the Q4_K_M mix), and quantizing
 * stories260K: the output loads, dequantizes close to the original, and its
 * Q8_0 / Q4_0 tensors are byte-identical to the reference files made with the
 * ggml reference quantizer (../shared/tools/quantize_legacy.py). */
#include "gguf/gguf.h"
#include "gguf/quantize.h"
#include "kernels/quant.h"
#include "t.h"

static gguf_file *open_mem_writer(gguf_writer *w, const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    CHECK_OK(gguf_writer_write(w, p));
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(p, &g));
    return g;
}

/* A model skeleton with zero-filled F16 weights: only names and shapes matter for the plan. */
static gguf_file *skeleton(const char *dir, int n_layer, int n_embd, int n_ff, bool tied, int n_expert)
{
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", (uint32_t)n_layer);
    if (n_expert)
        gguf_writer_set_u32(w, "llama.expert_count", (uint32_t)n_expert);
    size_t big = (size_t)n_embd * (size_t)CAIRN_MAX(n_ff, 512) * (size_t)CAIRN_MAX(n_expert, 1) * 2;
    void *zeros = cairn_calloc(1, big);
    int64_t emb[2] = {n_embd, 512}, vec[1] = {n_embd}, sq[2] = {n_embd, n_embd};
    int64_t up[3] = {n_embd, n_ff, n_expert}, down[3] = {n_ff, n_embd, n_expert};
    CHECK_OK(gguf_writer_add_tensor(w, "token_embd.weight", QT_F16, 2, emb, zeros, (size_t)n_embd * 512 * 2));
    for (int l = 0; l < n_layer; l++) {
        char name[64];
        static const char *sqn[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        gguf_writer_add_tensor(w, name, QT_F32, 1, vec, zeros, (size_t)n_embd * 4);
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, sqn[k]);
            CHECK_OK(gguf_writer_add_tensor(w, name, QT_F16, 2, sq, zeros, (size_t)n_embd * n_embd * 2));
        }
        if (n_expert) {
            int64_t gi[2] = {n_embd, n_expert};
            snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", l);
            CHECK_OK(gguf_writer_add_tensor(w, name, QT_F32, 2, gi, zeros, (size_t)n_embd * n_expert * 4));
        }
        size_t fb = (size_t)n_embd * n_ff * 2 * CAIRN_MAX(n_expert, 1);
        const char *sfx = n_expert ? "_exps" : "";
        uint32_t nd = n_expert ? 3 : 2;
        snprintf(name, sizeof name, "blk.%d.ffn_gate%s.weight", l, sfx);
        CHECK_OK(gguf_writer_add_tensor(w, name, QT_F16, nd, up, zeros, fb));
        snprintf(name, sizeof name, "blk.%d.ffn_up%s.weight", l, sfx);
        CHECK_OK(gguf_writer_add_tensor(w, name, QT_F16, nd, up, zeros, fb));
        snprintf(name, sizeof name, "blk.%d.ffn_down%s.weight", l, sfx);
        CHECK_OK(gguf_writer_add_tensor(w, name, QT_F16, nd, down, zeros, fb));
    }
    gguf_writer_add_tensor(w, "output_norm.weight", QT_F32, 1, vec, zeros, (size_t)n_embd * 4);
    if (!tied)
        CHECK_OK(gguf_writer_add_tensor(w, "output.weight", QT_F16, 2, emb, zeros, (size_t)n_embd * 512 * 2));
    char fname[64];
    snprintf(fname, sizeof fname, "skel_%d_%d_%d_%d.gguf", n_layer, n_embd, tied, n_expert);
    gguf_file *g = open_mem_writer(w, dir, fname);
    gguf_writer_free(w);
    cairn_free(zeros);
    return g;
}

static uint32_t plan_type(const gguf_file *g, const uint32_t *types, const char *name)
{
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++)
        if (gguf_str_eq(gguf_tensor_at(g, i)->name, name))
            return types[i];
    return 999;
}

static void test_plan_q4_k_m(void)
{
    const char *dir = t_tmpdir("qplan");
    /* 16 layers, rows of 256: the full mix without fallbacks. */
    gguf_file *g = skeleton(dir, 16, 256, 512, false, 0);
    if (!g)
        return;
    uint32_t types[256];
    gguf_quantize_params p = {.mode = GGUF_QUANT_Q4_K_M};
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "token_embd.weight"), QT_Q4_K);
    CHECK_EQ_INT(plan_type(g, types, "output.weight"), QT_Q6_K);
    CHECK_EQ_INT(plan_type(g, types, "output_norm.weight"), QT_F32);
    CHECK_EQ_INT(plan_type(g, types, "blk.0.attn_norm.weight"), QT_F32);
    CHECK_EQ_INT(plan_type(g, types, "blk.5.attn_q.weight"), QT_Q4_K);
    CHECK_EQ_INT(plan_type(g, types, "blk.5.ffn_gate.weight"), QT_Q4_K);
    /* use_more_bits(i, 16): i < 2, i >= 14, or (i - 2) % 3 == 2 -> layers 0 1 4 7 10 13 14 15 */
    static const int more[16] = {1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1};
    for (int l = 0; l < 16; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        CHECKF(plan_type(g, types, name) == (more[l] ? QT_Q6_K : QT_Q4_K), "%s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        CHECKF(plan_type(g, types, name) == (more[l] ? QT_Q6_K : QT_Q4_K), "%s", name);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        CHECK_EQ_INT(plan_type(g, types, name), QT_Q4_K);
    }
    /* Q8_0 / Q4_0 / pure. */
    p.mode = GGUF_QUANT_Q8_0;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "output.weight"), QT_Q8_0);
    CHECK_EQ_INT(plan_type(g, types, "blk.0.ffn_down.weight"), QT_Q8_0);
    p.mode = GGUF_QUANT_Q4_0;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "output.weight"), QT_Q6_K);
    CHECK_EQ_INT(plan_type(g, types, "blk.0.attn_v.weight"), QT_Q4_0);
    p.pure = true;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "output.weight"), QT_Q4_0);
    p.pure = false;
    /* Q5_K_M: Q5_K with the same Q6_K layers; Q4_K_S: Q5_K for attn_v of layers 0-3 and
     * ffn_down of the first eighth (layers 0, 1); F16: plain conversion. */
    p.mode = GGUF_QUANT_Q5_K_M;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    for (int l = 0; l < 16; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        CHECKF(plan_type(g, types, name) == (more[l] ? QT_Q6_K : QT_Q5_K), "Q5_K_M %s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        CHECK_EQ_INT(plan_type(g, types, name), QT_Q5_K);
    }
    CHECK_EQ_INT(plan_type(g, types, "output.weight"), QT_Q6_K);
    p.mode = GGUF_QUANT_Q4_K_S;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    for (int l = 0; l < 16; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        CHECKF(plan_type(g, types, name) == (l < 4 ? QT_Q5_K : QT_Q4_K), "Q4_K_S %s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        CHECKF(plan_type(g, types, name) == (l < 2 ? QT_Q5_K : QT_Q4_K), "Q4_K_S %s", name);
    }
    p.mode = GGUF_QUANT_Q4_K_M;
    p.set_output_type = p.set_embd_type = true;
    p.output_type = QT_Q8_0;
    p.embd_type = QT_F16;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "output.weight"), QT_Q8_0);
    CHECK_EQ_INT(plan_type(g, types, "token_embd.weight"), QT_F16);
    CHECK_EQ_INT(plan_type(g, types, "blk.0.attn_v.weight"), QT_Q6_K);
    p.output_type = 4;   /* retired type id */
    CHECK(gguf_quantize_plan(g, &p, types) == CAIRN_ERR_INVALID);
    p.set_output_type = p.set_embd_type = false;
    p.mode = GGUF_QUANT_F16;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "output.weight"), QT_F16);
    CHECK_EQ_INT(plan_type(g, types, "blk.3.attn_v.weight"), QT_F16);
    CHECK_EQ_INT(plan_type(g, types, "blk.3.attn_norm.weight"), QT_F32);
    gguf_quant_mode m;
    CHECK(gguf_quantize_mode_by_name("q5_k_m", &m) && m == GGUF_QUANT_Q5_K_M);
    CHECK(gguf_quantize_mode_by_name("Q4_K", &m) && m == GGUF_QUANT_Q4_K_M);
    CHECK(gguf_quantize_mode_by_name("bf16", &m) && m == GGUF_QUANT_BF16);
    CHECK(!gguf_quantize_mode_by_name("Q3_K_M", &m));
    CHECK_EQ_INT(gguf_quantize_file_type(GGUF_QUANT_Q5_K_M), 17);
    gguf_close(g);

    /* Tied output: token_embd is the output matrix; rows of 96 (not /256) fall back. */
    g = skeleton(dir, 4, 96, 160, true, 0);
    if (!g)
        return;
    p = (gguf_quantize_params){.mode = GGUF_QUANT_Q4_K_M};
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "token_embd.weight"), QT_Q8_0);      /* Q6_K -> Q8_0 */
    CHECK_EQ_INT(plan_type(g, types, "blk.1.attn_q.weight"), QT_Q5_0);    /* Q4_K -> Q5_0 */
    /* use_more_bits(i, 4): layers 2 and 3 */
    CHECK_EQ_INT(plan_type(g, types, "blk.3.attn_v.weight"), QT_Q8_0);    /* Q6_K -> Q8_0 */
    CHECK_EQ_INT(plan_type(g, types, "blk.2.attn_v.weight"), QT_Q8_0);
    CHECK_EQ_INT(plan_type(g, types, "blk.0.attn_v.weight"), QT_Q5_0);
    CHECK_EQ_INT(plan_type(g, types, "blk.1.ffn_down.weight"), QT_Q5_0);  /* 160 = 5 x 32 */
    gguf_close(g);

    /* MoE with 8 experts: attn_v/attn_k Q8_0, attn_output Q5_K, router stays F32. */
    g = skeleton(dir, 2, 256, 256, false, 8);
    if (!g)
        return;
    CHECK_OK(gguf_quantize_plan(g, &p, types));
    CHECK_EQ_INT(plan_type(g, types, "blk.1.attn_v.weight"), QT_Q8_0);
    CHECK_EQ_INT(plan_type(g, types, "blk.1.attn_k.weight"), QT_Q8_0);
    CHECK_EQ_INT(plan_type(g, types, "blk.1.attn_output.weight"), QT_Q5_K);
    CHECK_EQ_INT(plan_type(g, types, "blk.1.ffn_gate_inp.weight"), QT_F32);
    CHECK_EQ_INT(plan_type(g, types, "blk.1.ffn_up_exps.weight"), QT_Q4_K);
    CHECK_EQ_INT(plan_type(g, types, "blk.1.ffn_down_exps.weight"), QT_Q6_K);   /* use_more_bits(1, 2) */
    CHECK_EQ_INT(plan_type(g, types, "blk.0.ffn_down_exps.weight"), QT_Q4_K);
    gguf_close(g);
}

/* Dequantize tensor t (any type with to_float) into out. */
static bool dequant(const gguf_tensor *t, float *out)
{
    const qtype_traits *qt = qtype_get(t->type);
    if (!qt || !qt->to_float)
        return false;
    qt->to_float(t->data, out, gguf_tensor_nelements(t));
    return true;
}

static void check_close(const gguf_file *orig, const gguf_file *q, double rel_tol, const char *what)
{
    for (uint64_t i = 0; i < gguf_tensor_count(orig); i++) {
        const gguf_tensor *a = gguf_tensor_at(orig, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)a->name.len, a->name.ptr);
        const gguf_tensor *b = gguf_tensor_find(q, name);
        CHECKF(b != NULL, "%s: %s missing", what, name);
        if (!b)
            continue;
        CHECK(memcmp(a->ne, b->ne, sizeof a->ne) == 0);
        int64_t n = gguf_tensor_nelements(a);
        float *fa = cairn_malloc((size_t)n * 4), *fb = cairn_malloc((size_t)n * 4);
        CHECK(dequant(a, fa) && dequant(b, fb));
        /* Error relative to the tensor's RMS: quantization noise, not garbage. */
        double se = 0, ss = 0;
        for (int64_t k = 0; k < n; k++) {
            se += (double)(fa[k] - fb[k]) * (fa[k] - fb[k]);
            ss += (double)fa[k] * fa[k];
        }
        double rel = ss > 0 ? sqrt(se / ss) : sqrt(se);
        CHECKF(rel <= rel_tol, "%s: %s (%s) relative RMS error %.4f > %.4f", what, name,
               gguf_ttype(b->type)->name, rel, rel_tol);
        if (b->type == a->type)
            CHECKF(memcmp(a->data, b->data, a->nbytes) == 0, "%s: kept tensor %s changed", what, name);
        cairn_free(fa);
        cairn_free(fb);
    }
}

/* Tensors of `mine` whose type equals the reference's must be byte-identical. */
static void compare_reference(const gguf_file *mine, const gguf_file *ref, const char *what)
{
    int same = 0;
    CHECK_EQ_INT(gguf_tensor_count(mine), gguf_tensor_count(ref));
    for (uint64_t i = 0; i < gguf_tensor_count(ref); i++) {
        const gguf_tensor *r = gguf_tensor_at(ref, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)r->name.len, r->name.ptr);
        const gguf_tensor *m = gguf_tensor_find(mine, name);
        CHECKF(m && m->type == r->type, "%s: %s type %s vs reference %s", what, name,
               m ? gguf_ttype(m->type)->name : "-", gguf_ttype(r->type)->name);
        if (!m || m->type != r->type)
            continue;
        size_t diff = 0;
        for (size_t k = 0; k < r->nbytes; k++)
            diff += ((const uint8_t *)m->data)[k] != ((const uint8_t *)r->data)[k];
        CHECKF(diff == 0, "%s: %s (%s): %zu of %llu bytes differ from the reference", what, name,
               gguf_ttype(r->type)->name, diff, (unsigned long long)r->nbytes);
        same += diff == 0;
    }
    fprintf(stderr, "  %s: %d of %llu tensors byte-identical to the reference\n", what, same,
            (unsigned long long)gguf_tensor_count(ref));
}

static void test_stories(void)
{
    const char *shared = cairn_test_shared_dir();
    if (!shared) {
        fprintf(stderr, "  (shared assets absent: skipped)\n");
        return;
    }
    kernels_init();
    const char *dir = t_tmpdir("qstories");
    char in[1200], out[1300], ref[1300];
    snprintf(in, sizeof in, "%s/models/stories260K/stories260K.gguf", shared);
    gguf_file *orig = NULL;
    CHECK_OK(gguf_open(in, &orig));
    if (!orig)
        return;
    static const struct { const char *type; bool pure; const char *ref; double tol; uint32_t ft; } cases[] = {
        {"Q8_0", false, "stories260K-Q8_0.gguf", 0.01, 7},
        {"Q4_0", true, "stories260K-Q4_0.gguf", 0.15, 2},
        {"Q4_K_M", false, NULL, 0.06, 15},
    };
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(cases); c++) {
        snprintf(out, sizeof out, "%s/%s.gguf", dir, cases[c].type);
        gguf_quantize_params p = {.pure = cases[c].pure, .n_threads = 2};
        CHECK(gguf_quantize_mode_by_name(cases[c].type, &p.mode));
        gguf_quantize_stats qs;
        CHECK_OK(gguf_quantize_file(in, out, &p, &qs));
        CHECK(qs.out_file_size > 0 && qs.out_file_size < qs.in_file_size / 2);
        CHECK_EQ_INT(qs.n_quantized, 37);   /* 32 matrices + 5 ffn_down (172 columns -> F16) */
        CHECK_EQ_INT(qs.n_kept, 11);
        gguf_file *q = NULL;
        CHECK_OK(gguf_open(out, &q));
        if (!q)
            continue;
        uint32_t ft = 0;
        CHECK_OK(gguf_get_u32(q, "general.file_type", &ft));
        CHECK_EQ_INT(ft, cases[c].ft);
        CHECK_EQ_INT(gguf_kv_count(q), gguf_kv_count(orig) + 2);
        CHECK_EQ_INT(gguf_file_size(q), qs.out_file_size);
        check_close(orig, q, cases[c].tol, cases[c].type);
        if (cases[c].ref) {
            snprintf(ref, sizeof ref, "%s/models/stories260K/%s", shared, cases[c].ref);
            gguf_file *r = NULL;
            CHECK_OK(gguf_open(ref, &r));
            if (r)
                compare_reference(q, r, cases[c].type);
            gguf_close(r);
        } else {
            /* Q4_K_M on 64-wide rows: all K-quants fall back (Q4_K -> Q5_0, Q6_K -> Q8_0). */
            const gguf_tensor *t = gguf_tensor_find(q, "blk.0.attn_q.weight");
            CHECK(t && t->type == QT_Q5_0);
            t = gguf_tensor_find(q, "output.weight");
            CHECK(t && t->type == QT_Q8_0);
            /* use_more_bits(i, 5): layers 2 and 4 */
            t = gguf_tensor_find(q, "blk.2.attn_v.weight");
            CHECK(t && t->type == QT_Q8_0);
            t = gguf_tensor_find(q, "blk.4.attn_v.weight");
            CHECK(t && t->type == QT_Q8_0);
            t = gguf_tensor_find(q, "blk.0.attn_v.weight");
            CHECK(t && t->type == QT_Q5_0);
        }
        gguf_close(q);
    }
    /* The MoE model (3-D expert tensors, F32 router, 172-wide down experts -> F16) against its reference. */
    snprintf(in, sizeof in, "%s/models/stories260K-moe/stories260K-moe4x-top2-distinct.gguf", shared);
    snprintf(ref, sizeof ref, "%s/models/stories260K-moe/stories260K-moe4x-top2-distinct-Q8_0.gguf", shared);
    snprintf(out, sizeof out, "%s/moe-q8.gguf", dir);
    {
        gguf_quantize_params pm = {.mode = GGUF_QUANT_Q8_0, .n_threads = 2};
        gguf_quantize_stats qm;
        CHECK_OK(gguf_quantize_file(in, out, &pm, &qm));
        gguf_file *q = NULL, *r = NULL;
        CHECK_OK(gguf_open(out, &q));
        CHECK_OK(gguf_open(ref, &r));
        if (q && r)
            compare_reference(q, r, "MoE Q8_0");
        if (q) {
            CHECK_EQ_INT(gguf_tensor_find(q, "blk.0.ffn_gate_inp.weight")->type, QT_F32);
            CHECK_EQ_INT(gguf_tensor_find(q, "blk.0.ffn_up_exps.weight")->type, QT_Q8_0);
            CHECK_EQ_INT(gguf_tensor_find(q, "blk.0.ffn_down_exps.weight")->type, QT_F16);
        }
        gguf_close(q);
        gguf_close(r);
    }
    /* Requantizing the reference Q8_0 file to Q4_0 stays within Q4_0's error of the original. */
    snprintf(ref, sizeof ref, "%s/models/stories260K/stories260K-Q8_0.gguf", shared);
    snprintf(out, sizeof out, "%s/requant.gguf", dir);
    gguf_quantize_params p = {.mode = GGUF_QUANT_Q4_0, .pure = true, .requantize = true};
    gguf_quantize_stats qs;
    CHECK_OK(gguf_quantize_file(ref, out, &p, &qs));
    CHECK_EQ_INT(qs.n_quantized, 32);
    gguf_file *q = NULL;
    CHECK_OK(gguf_open(out, &q));
    if (q) {
        CHECK_EQ_INT(gguf_tensor_find(q, "blk.0.attn_q.weight")->type, QT_Q4_0);
        check_close(orig, q, 0.16, "Q8_0 -> Q4_0");
    }
    gguf_close(q);
    gguf_close(orig);
}

/* Real K-quants: a 256-wide F16 model quantized to Q4_K_M dequantizes close. */
static void test_k_quants(void)
{
    kernels_init();
    const char *dir = t_tmpdir("qk");
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", 1);
    int64_t ne[2] = {256, 64};
    size_t n = 256 * 64;
    uint16_t *h = cairn_malloc(n * 2);
    float *f = cairn_malloc(n * 4);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        f[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 0.2f;
        h[i] = fp32_to_fp16(f[i]);
    }
    static const char *names[] = {"token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight",
                                  "blk.0.ffn_down.weight", "output.weight"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(names); i++)
        CHECK_OK(gguf_writer_add_tensor(w, names[i], QT_F16, 2, ne, h, n * 2));
    char in[1200], out[1200];
    snprintf(in, sizeof in, "%s/f16.gguf", dir);
    snprintf(out, sizeof out, "%s/q4km.gguf", dir);
    CHECK_OK(gguf_writer_write(w, in));
    gguf_writer_free(w);
    gguf_quantize_params p = {.mode = GGUF_QUANT_Q4_K_M, .n_threads = 2};
    gguf_quantize_stats qs;
    CHECK_OK(gguf_quantize_file(in, out, &p, &qs));
    gguf_file *a = NULL, *b = NULL;
    CHECK_OK(gguf_open(in, &a));
    CHECK_OK(gguf_open(out, &b));
    if (a && b) {
        CHECK_EQ_INT(gguf_tensor_find(b, "token_embd.weight")->type, QT_Q4_K);
        CHECK_EQ_INT(gguf_tensor_find(b, "blk.0.attn_q.weight")->type, QT_Q4_K);
        CHECK_EQ_INT(gguf_tensor_find(b, "blk.0.attn_v.weight")->type, QT_Q6_K);
        CHECK_EQ_INT(gguf_tensor_find(b, "blk.0.ffn_down.weight")->type, QT_Q6_K);
        CHECK_EQ_INT(gguf_tensor_find(b, "output.weight")->type, QT_Q6_K);
        CHECK_EQ_INT(qs.type_count[QT_Q4_K], 2);
        CHECK_EQ_INT(qs.type_count[QT_Q6_K], 3);
        check_close(a, b, 0.10, "Q4_K_M");
    }
    gguf_close(a);
    gguf_close(b);
    cairn_free(h);
    cairn_free(f);
}

/* Every allocation of a quantize run fails in turn: a clean NOMEM, no leak, no output file. */
static void test_alloc_failures(void)
{
    kernels_init();
    const char *dir = t_tmpdir("qalloc");
    char in[1200], out[1200];
    snprintf(in, sizeof in, "%s/in.gguf", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    gguf_writer_set_str(w, "general.architecture", "llama");
    static float f[64 * 8];
    for (int i = 0; i < 64 * 8; i++)
        f[i] = (float)(i % 17) - 8.0f;
    int64_t ne[2] = {64, 8};
    CHECK_OK(gguf_writer_add_tensor(w, "blk.0.attn_q.weight", QT_F32, 2, ne, f, sizeof f));
    CHECK_OK(gguf_writer_add_tensor(w, "output.weight", QT_F32, 2, ne, f, sizeof f));
    CHECK_OK(gguf_writer_add_tensor(w, "output_norm.weight", QT_F32, 1, ne, f, 64 * 4));
    CHECK_OK(gguf_writer_write(w, in));
    gguf_writer_free(w);
    int ok_at = -1;
    for (int n = 0; n < 300 && ok_at < 0; n++) {
        gguf_quantize_params p = {.mode = GGUF_QUANT_Q4_0, .n_threads = 1};
        gguf_quantize_stats qs;
        cairn_alloc_fail_after(n, false);
        cairn_status st = gguf_quantize_file(in, out, &p, &qs);
        cairn_alloc_fail_after(-1, false);
        if (st == CAIRN_OK) {
            ok_at = n;
        } else {
            CHECKF(st == CAIRN_ERR_NOMEM, "n=%d: %s (%s)", n, cairn_status_str(st), cairn_last_error());
            CHECKF(access(out, F_OK) != 0, "n=%d: output left behind", n);
        }
    }
    CHECK(ok_at > 5);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(out, &g));
    CHECK(g && gguf_tensor_find(g, "blk.0.attn_q.weight")->type == QT_Q4_0);
    CHECK(g && gguf_tensor_find(g, "output.weight")->type == QT_Q8_0);   /* 64 % 256: Q6_K -> Q8_0 */
    gguf_close(g);
}

/* The Q4_K_M plan against a file made by llama.cpp's own llama-quantize: the glove-bert
 * d128 model (Q8_0 and Q4_K_M from the same F32 build). Dequantize the Q8_0 file to F32,
 * plan Q4_K_M, and expect exactly the reference file's type for every tensor. */
static void test_plan_vs_llamacpp(void)
{
    const char *shared = cairn_test_shared_dir();
    if (!shared) {
        fprintf(stderr, "  (shared assets absent: skipped)\n");
        return;
    }
    kernels_init();
    char q8[1200], ref[1200], f32[1300];
    snprintf(q8, sizeof q8, "%s/models/glove-bert/glove6B-100d-bert-22k-d128-Q8_0.gguf", shared);
    snprintf(ref, sizeof ref, "%s/models/glove-bert/glove6B-100d-bert-22k-d128-Q4_K_M.gguf", shared);
    snprintf(f32, sizeof f32, "%s/f32.gguf", t_tmpdir("qglove"));
    gguf_file *a = NULL, *r = NULL, *g = NULL;
    CHECK_OK(gguf_open(q8, &a));
    CHECK_OK(gguf_open(ref, &r));
    if (!a || !r) {
        gguf_close(a);
        gguf_close(r);
        return;
    }
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(gguf_writer_copy_kvs(w, a));
    for (uint64_t i = 0; i < gguf_tensor_count(a); i++) {
        const gguf_tensor *t = gguf_tensor_at(a, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        int64_t n = gguf_tensor_nelements(t);
        float *f = cairn_malloc((size_t)n * 4);
        CHECK(dequant(t, f));
        CHECK_OK(gguf_writer_add_tensor_take(w, name, QT_F32, t->n_dims, t->ne, f, (size_t)n * 4));
    }
    CHECK_OK(gguf_writer_write(w, f32));
    gguf_writer_free(w);
    CHECK_OK(gguf_open(f32, &g));
    if (g) {
        uint32_t types[64];
        CHECK(gguf_tensor_count(g) <= 64);
        gguf_quantize_params p = {.mode = GGUF_QUANT_Q4_K_M};
        CHECK_OK(gguf_quantize_plan(g, &p, types));
        int same = 0;
        for (uint64_t i = 0; i < gguf_tensor_count(g) && i < 64; i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            const gguf_tensor *rt = gguf_tensor_find(r, name);
            CHECKF(rt && rt->type == types[i], "%s: planned %s, llama.cpp %s", name, gguf_ttype(types[i])->name,
                   rt ? gguf_ttype(rt->type)->name : "-");
            same += rt && rt->type == types[i];
        }
        fprintf(stderr, "  glove-bert Q4_K_M: %d of %llu tensor types as llama-quantize chose\n", same,
                (unsigned long long)gguf_tensor_count(g));
        /* Q8_0 of the dequantized Q8_0 values gives back llama-quantize's bytes. */
        char out[1400];
        snprintf(out, sizeof out, "%s.q8.gguf", f32);
        gguf_quantize_params p8 = {.mode = GGUF_QUANT_Q8_0, .n_threads = 2};
        gguf_quantize_stats qs;
        CHECK_OK(gguf_quantize_file(f32, out, &p8, &qs));
        gguf_file *q = NULL;
        CHECK_OK(gguf_open(out, &q));
        if (q)
            compare_reference(q, a, "glove-bert Q8_0 (llama-quantize)");
        gguf_close(q);
    }
    gguf_close(g);
    gguf_close(a);
    gguf_close(r);
}

int main(void)
{
    RUN(test_plan_vs_llamacpp);
    RUN(test_plan_q4_k_m);
    RUN(test_alloc_failures);
    RUN(test_k_quants);
    RUN(test_stories);
    return t_done();
}
