/* test_gguf_testmodel.c — the random-model generator: shapes, metadata,
 * vocabularies (distinct tokens, merges that compose), determinism, MoE,
 * quantized types and rejected parameters. */
#include "gguf/gguf.h"
#include "gguf/testmodel.h"
#include "kernels/quant.h"
#include "t.h"

static gguf_file *synth(const gguf_testmodel_params *p, const char *name)
{
    static char path[1300];
    snprintf(path, sizeof path, "%s/%s", t_tmpdir("synth"), name);
    CHECK_OK(gguf_testmodel_write(path, p));
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, &g));
    return g;
}

static void check_shape(const gguf_file *g, const char *name, uint32_t type, int64_t a, int64_t b, int64_t c)
{
    const gguf_tensor *t = gguf_tensor_find(g, name);
    CHECKF(t != NULL, "%s missing", name);
    if (!t)
        return;
    CHECKF(t->type == type && t->ne[0] == a && t->ne[1] == b && t->ne[2] == c, "%s: %s [%lld %lld %lld]", name,
           gguf_ttype(t->type)->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2]);
}

static int cmp_str(const void *a, const void *b)
{
    const gguf_str *x = a, *y = b;
    size_t n = CAIRN_MIN(x->len, y->len);
    int c = memcmp(x->ptr, y->ptr, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Every token distinct; every merge "a b" names two tokens whose concatenation is a token. */
static void check_vocab(const gguf_file *g, uint64_t n_vocab)
{
    const gguf_kv *toks = NULL;
    CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks));
    if (!toks)
        return;
    CHECK_EQ_INT(toks->v.arr.count, n_vocab);
    gguf_str *sorted = cairn_malloc(n_vocab * sizeof *sorted);
    for (uint64_t i = 0; i < n_vocab; i++)
        sorted[i] = gguf_arr_str(toks, i);
    qsort(sorted, n_vocab, sizeof *sorted, cmp_str);
    int dups = 0;
    for (uint64_t i = 1; i < n_vocab; i++)
        dups += cmp_str(&sorted[i - 1], &sorted[i]) == 0;
    CHECK_EQ_INT(dups, 0);
    const gguf_kv *merges = gguf_kv_find(g, "tokenizer.ggml.merges");
    int bad = 0;
    for (uint64_t i = 0; merges && i < merges->v.arr.count; i++) {
        gguf_str m = gguf_arr_str(merges, i);
        const char *sp = memchr(m.ptr, ' ', (size_t)m.len);
        if (!sp) {
            bad++;
            continue;
        }
        gguf_str l = {m.ptr, (uint64_t)(sp - m.ptr)}, r = {sp + 1, m.len - l.len - 1};
        char cat[128];
        snprintf(cat, sizeof cat, "%.*s%.*s", (int)l.len, l.ptr, (int)r.len, r.ptr);
        gguf_str c = {cat, strlen(cat)};
        bad += !bsearch(&l, sorted, n_vocab, sizeof *sorted, cmp_str) ||
               !bsearch(&r, sorted, n_vocab, sizeof *sorted, cmp_str) ||
               !bsearch(&c, sorted, n_vocab, sizeof *sorted, cmp_str);
    }
    CHECK_EQ_INT(bad, 0);
    cairn_free(sorted);
}

static void test_llama_default(void)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    gguf_file *g = synth(&p, "llama.gguf");
    if (!g)
        return;
    uint32_t v;
    CHECK_OK(gguf_get_u32(g, "llama.embedding_length", &v));
    CHECK_EQ_INT(v, 64);
    CHECK_OK(gguf_get_u32(g, "llama.rope.dimension_count", &v));
    CHECK_EQ_INT(v, 16);
    CHECK_EQ_INT(gguf_tensor_count(g), 1 + 2 * 9 + 2);
    check_shape(g, "token_embd.weight", QT_F32, 64, 320, 1);
    check_shape(g, "blk.1.attn_k.weight", QT_F32, 64, 64, 1);
    check_shape(g, "blk.1.ffn_down.weight", QT_F32, 128, 64, 1);
    check_shape(g, "output.weight", QT_F32, 64, 320, 1);
    CHECK(gguf_tensor_find(g, "blk.0.attn_q.bias") == NULL);
    gguf_str s;
    CHECK_OK(gguf_get_str(g, "tokenizer.ggml.model", &s));
    CHECK(gguf_str_eq(s, "llama"));
    const gguf_kv *toks = gguf_kv_find(g, "tokenizer.ggml.tokens");
    CHECK(gguf_str_eq(gguf_arr_str(toks, 1), "<s>"));
    CHECK(gguf_str_eq(gguf_arr_str(toks, 3 + 0x41), "<0x41>"));
    check_vocab(g, 320);
    /* Norm weights near 1, matrices within the scale. */
    const gguf_tensor *t = gguf_tensor_find(g, "blk.0.attn_norm.weight");
    const float *f = t->data;
    CHECK(f[0] >= 0.9f && f[0] <= 1.1f && f[63] >= 0.9f && f[63] <= 1.1f);
    t = gguf_tensor_find(g, "blk.0.attn_q.weight");
    f = t->data;
    float mx = 0;
    for (int i = 0; i < 64 * 64; i++)
        mx = fmaxf(mx, fabsf(f[i]));
    CHECK(mx > 0.1f && mx <= 0.125f);   /* 1/sqrt(64) */
    gguf_close(g);

    /* Same parameters, same bytes; another seed, other values. */
    char a[1300], b[1300], c[1300];
    const char *dir = t_tmpdir("synth_det");
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    snprintf(c, sizeof c, "%s/c.gguf", dir);
    CHECK_OK(gguf_testmodel_write(a, &p));
    CHECK_OK(gguf_testmodel_write(b, &p));
    p.seed = 7;
    CHECK_OK(gguf_testmodel_write(c, &p));
    char *da = NULL, *db = NULL, *dc = NULL;
    size_t la = 0, lb = 0, lc = 0;
    CHECK_OK(cairn_file_read_all(a, 1 << 24, &da, &la));
    CHECK_OK(cairn_file_read_all(b, 1 << 24, &db, &lb));
    CHECK_OK(cairn_file_read_all(c, 1 << 24, &dc, &lc));
    CHECK(la == lb && memcmp(da, db, la) == 0);
    CHECK(la == lc && memcmp(da, dc, la) != 0);
    cairn_free(da);
    cairn_free(db);
    cairn_free(dc);
}

static void test_qwen2_gqa_kquant(void)
{
    kernels_init();
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.arch = "qwen2";
    p.n_embd = 256;
    p.n_head = 8;
    p.n_head_kv = 2;
    p.n_ff = 512;
    p.n_vocab = 1000;
    p.weight_type = QT_Q4_K;
    p.output_type = QT_Q6_K;
    p.embd_type = QT_Q8_0;
    p.tied_output = false;
    gguf_file *g = synth(&p, "qwen2.gguf");
    if (!g)
        return;
    check_shape(g, "blk.0.attn_q.weight", QT_Q4_K, 256, 256, 1);
    check_shape(g, "blk.0.attn_k.weight", QT_Q4_K, 256, 64, 1);
    check_shape(g, "blk.0.attn_k.bias", QT_F32, 64, 1, 1);
    check_shape(g, "blk.1.attn_q.bias", QT_F32, 256, 1, 1);
    check_shape(g, "token_embd.weight", QT_Q8_0, 256, 1000, 1);
    check_shape(g, "output.weight", QT_Q6_K, 256, 1000, 1);
    gguf_str s;
    CHECK_OK(gguf_get_str(g, "tokenizer.ggml.pre", &s));
    CHECK(gguf_str_eq(s, "qwen2"));
    float base = 0;
    CHECK_OK(gguf_get_f32(g, "qwen2.rope.freq_base", &base));
    CHECK(base == 1e6f);
    int64_t eos = 0;
    CHECK_OK(gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &eos));
    CHECK_EQ_INT(eos, 999);
    CHECK(gguf_str_eq(gguf_arr_str(gguf_kv_find(g, "tokenizer.ggml.tokens"), 999), "<|endoftext|>"));
    CHECK(gguf_str_eq(gguf_arr_str(gguf_kv_find(g, "tokenizer.ggml.tokens"), 32), "\xc4\xa0"));  /* ' ' */
    check_vocab(g, 1000);
    /* The Q4_K matrices dequantize into the uniform range. */
    const gguf_tensor *t = gguf_tensor_find(g, "blk.0.ffn_up.weight");
    const qtype_traits *qt = qtype_get(QT_Q4_K);
    CHECK(qt && qt->to_float);
    if (t && qt && qt->to_float) {
        float *f = cairn_malloc(256 * 512 * sizeof(float));
        qt->to_float(t->data, f, 256 * 512);
        double ss = 0;
        for (int i = 0; i < 256 * 512; i++)
            ss += (double)f[i] * f[i];
        double rms = sqrt(ss / (256 * 512)), want = 0.0625 / sqrt(3.0);   /* uniform(+-1/16) */
        CHECKF(fabs(rms - want) < 0.1 * want, "rms %g want %g", rms, want);
        cairn_free(f);
    }
    gguf_close(g);
}

static void test_moe_tied(void)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.n_expert = 4;
    p.n_expert_used = 2;
    p.tied_output = true;
    p.weight_type = QT_F16;
    p.n_head_kv = 2;
    p.rope_scale_linear = 4.0f;
    gguf_file *g = synth(&p, "moe.gguf");
    if (!g)
        return;
    check_shape(g, "blk.0.ffn_gate_inp.weight", QT_F32, 64, 4, 1);
    check_shape(g, "blk.0.ffn_gate_exps.weight", QT_F16, 64, 128, 4);
    check_shape(g, "blk.1.ffn_up_exps.weight", QT_F16, 64, 128, 4);
    check_shape(g, "blk.1.ffn_down_exps.weight", QT_F16, 128, 64, 4);
    check_shape(g, "blk.1.attn_v.weight", QT_F16, 64, 32, 1);
    CHECK(gguf_tensor_find(g, "output.weight") == NULL);
    CHECK(gguf_tensor_find(g, "blk.0.ffn_gate.weight") == NULL);
    uint32_t v;
    CHECK_OK(gguf_get_u32(g, "llama.expert_count", &v));
    CHECK_EQ_INT(v, 4);
    CHECK_OK(gguf_get_u32(g, "llama.expert_used_count", &v));
    CHECK_EQ_INT(v, 2);
    gguf_str s;
    CHECK_OK(gguf_get_str(g, "llama.rope.scaling.type", &s));
    CHECK(gguf_str_eq(s, "linear"));
    gguf_close(g);
}

static void test_qwen2moe(void)
{
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.arch = "qwen2moe";
    p.n_vocab = 400;
    p.n_expert = 4;
    p.n_ff_expert = 32;
    p.n_ff_shared = 96;
    gguf_file *g = synth(&p, "qwen2moe.gguf");
    if (!g)
        return;
    check_shape(g, "blk.0.attn_q.bias", QT_F32, 64, 1, 1);
    check_shape(g, "blk.0.ffn_gate_inp.weight", QT_F32, 64, 4, 1);
    check_shape(g, "blk.0.ffn_up_exps.weight", QT_F32, 64, 32, 4);
    check_shape(g, "blk.1.ffn_down_exps.weight", QT_F32, 32, 64, 4);
    check_shape(g, "blk.1.ffn_gate_inp_shexp.weight", QT_F32, 64, 1, 1);
    check_shape(g, "blk.1.ffn_gate_shexp.weight", QT_F32, 64, 96, 1);
    check_shape(g, "blk.1.ffn_down_shexp.weight", QT_F32, 96, 64, 1);
    uint32_t v;
    CHECK_OK(gguf_get_u32(g, "qwen2moe.expert_feed_forward_length", &v));
    CHECK_EQ_INT(v, 32);
    CHECK_OK(gguf_get_u32(g, "qwen2moe.expert_shared_feed_forward_length", &v));
    CHECK_EQ_INT(v, 96);
    CHECK_OK(gguf_get_u32(g, "qwen2moe.expert_used_count", &v));
    CHECK_EQ_INT(v, 2);
    gguf_str s;
    CHECK_OK(gguf_get_str(g, "tokenizer.ggml.model", &s));
    CHECK(gguf_str_eq(s, "gpt2"));
    check_vocab(g, 400);
    gguf_close(g);
}

static void test_rejects(void)
{
    gguf_testmodel_params p;
    const char *dir = t_tmpdir("synth_bad");
    char path[1300];
    snprintf(path, sizeof path, "%s/x.gguf", dir);
    gguf_testmodel_defaults(&p);
    p.n_head = 5;
    CHECK(gguf_testmodel_write(path, &p) == CAIRN_ERR_INVALID);
    gguf_testmodel_defaults(&p);
    p.n_head_kv = 3;
    CHECK(gguf_testmodel_write(path, &p) == CAIRN_ERR_INVALID);
    gguf_testmodel_defaults(&p);
    p.weight_type = QT_Q4_K;   /* 64-wide rows are not whole 256-blocks */
    CHECK(gguf_testmodel_write(path, &p) == CAIRN_ERR_INVALID);
    gguf_testmodel_defaults(&p);
    p.arch = "gpt2";
    CHECK(gguf_testmodel_write(path, &p) == CAIRN_ERR_UNSUPPORTED);
    gguf_testmodel_defaults(&p);
    p.n_vocab = 100;
    CHECK(gguf_testmodel_write(path, &p) == CAIRN_ERR_INVALID);
    gguf_testmodel_defaults(&p);
    p.arch = "qwen2";
    p.n_expert = 2;
    CHECK(gguf_testmodel_write(path, &p) == CAIRN_ERR_INVALID);
    gguf_testmodel_defaults(&p);
    p.arch = "qwen2moe";   /* needs experts */
    CHECK(gguf_testmodel_write(path, &p) == CAIRN_ERR_INVALID);
    CHECK(access(path, F_OK) != 0);
}

int main(void)
{
    RUN(test_llama_default);
    RUN(test_qwen2_gqa_kquant);
    RUN(test_moe_tied);
    RUN(test_qwen2moe);
    RUN(test_rejects);
    return t_done();
}
