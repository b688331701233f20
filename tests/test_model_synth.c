/*
 * test_model_synth.c — tiny random models written with our GGUF writer for
 * the shapes and types the shared models lack, checked against the float64
 * numpy reference (tests/tools/np_ref.py, run with python3 + numpy):
 *
 *   qwen2:   Q/K/V biases, NeoX RoPE, GQA 4/2, freq_base 1e6, tied output, F32;
 *   llama-k: K-quants (Q2_K..Q6_K) and Q8_0, partial rotary dims (16 of 32),
 *            linear RoPE scaling x2, GQA 8/2, untied output;
 *   llama-l: the other types (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0);
 *   qwen2-k: qwen2 with Q4_K/Q6_K weights (the common Q4_K_M mix);
 *   qwen2-yarn: YaRN RoPE scaling x4 (original context 32), F32;
 *   qwen2-hd64, llama-hd128: F32 models with the head sizes of real models,
 *            so the F16-cache attention path runs its full-width blocks;
 *   llama-l also carries a llama3-style rope_freqs tensor;
 *   llama3:  llama3 RoPE scaling from metadata only (x8, low 1, high 4,
 *            original context 64, so the 8 frequencies fall in all three
 *            bands: kept, blended, slowed), GQA 4/2, F32;
 *   llama3-t: the same metadata plus a rope_freqs tensor, which wins;
 *   qwen3:   per-head q/k RMSNorm, NeoX RoPE, no biases, head_dim 32 set by
 *            key_length (q width 128 != n_embd 64, as Qwen3), GQA 4/2, F32;
 *   qwen3-k: qwen3 with Q4_K/Q6_K weights, head_dim 64.
 *
 * The KV cache is F32 here so the comparison isolates weights and forward
 * pass; the F16 cache (the default, with its own attention path) is then
 * checked against the same reference with tolerance max(tol, 5e-3). Tolerance: |ours - ref| <= tol * max|ref| over all logits, tol 1e-4
 * for F32 and 3e-2 for quantized weights (activations are quantized to Q8
 * for the integer dot products, the reference is exact). The sequence is
 * also run one token at a time and compared with the batched run.
 */
#include "gguf/gguf.h"
#include "infer/session.h"
#include "kernels/quant.h"
#include "t.h"
#include "np_ref.h"

#include <cjson/cJSON.h>
#include <libgen.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)   /* uniform in [-1, 1) */
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1ull << 23))) - 1.0f;
}

typedef struct synth {
    const char *name, *arch;
    int n_embd, n_head, n_head_kv, n_ff, n_layer, n_vocab, n_rot;
    float freq_base, rope_scale;    /* rope_scale > 0: scaling factor (linear, or YaRN when yarn) */
    bool biases, tied;
    uint32_t t_embd, t_q, t_k, t_v, t_o, t_gate, t_up, t_down, t_out;
    double tol;
    bool yarn, rope_freqs;          /* YaRN scaling (original context 32); llama3-style rope_freqs */
    bool llama3;                    /* rope.scaling.type llama3 (factor rope_scale, original context 64) */
    bool qk_norm;                   /* per-head attn_q_norm / attn_k_norm (qwen3) */
    int head_dim;                   /* > 0: attention.key_length/value_length; 0 = n_embd / n_head */
} synth;

static const synth MODELS[] = {
    {"qwen2", "qwen2", 64, 4, 2, 96, 2, 100, 16, 1e6f, 0, true, true,
     QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, 1e-4, false, false, false, false, 0},
    {"llama-k", "llama", 256, 8, 2, 512, 2, 300, 16, 10000.0f, 2.0f, false, false,
     QT_Q4_K, QT_Q4_K, QT_Q5_K, QT_Q6_K, QT_Q8_0, QT_Q3_K, QT_Q2_K, QT_Q4_K, QT_Q6_K, 3e-2, false, false, false, false, 0},
    {"llama-l", "llama", 64, 4, 4, 128, 2, 200, 16, 10000.0f, 0, false, false,
     QT_Q4_0, QT_F16, QT_BF16, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q8_0, QT_Q4_0, QT_F16, 3e-2, false, true, false, false, 0},
    {"qwen2-k", "qwen2", 256, 4, 2, 512, 2, 150, 64, 1e6f, 0, true, false,
     QT_Q4_K, QT_Q4_K, QT_Q4_K, QT_Q6_K, QT_Q4_K, QT_Q4_K, QT_Q4_K, QT_Q6_K, QT_Q6_K, 3e-2, false, false, false, false, 0},
    {"qwen2-hd64", "qwen2", 256, 4, 2, 256, 2, 120, 64, 1e6f, 0, true, false,
     QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, 1e-4, false, false, false, false, 0},
    {"llama-hd128", "llama", 256, 2, 1, 256, 2, 120, 128, 1e4f, 0, false, true,
     QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, 1e-4, false, false, false, false, 0},
    {"qwen2-yarn", "qwen2", 64, 4, 2, 96, 2, 100, 16, 1e4f, 4.0f, true, true,
     QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, 1e-4, true, false, false, false, 0},
    {"llama3", "llama", 64, 4, 2, 128, 2, 100, 16, 1e4f, 8.0f, false, false,
     QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, 1e-4, false, false, true, false, 0},
    {"llama3-t", "llama", 64, 4, 2, 128, 2, 100, 16, 1e4f, 8.0f, false, true,
     QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, 1e-4, false, true, true, false, 0},
    {"qwen3", "qwen3", 64, 4, 2, 96, 2, 100, 32, 1e6f, 0, false, true,
     QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, QT_F32, 1e-4, false, false, false, true, 32},
    {"qwen3-k", "qwen3", 256, 4, 2, 512, 2, 150, 64, 1e6f, 0, false, false,
     QT_Q4_K, QT_Q4_K, QT_Q4_K, QT_Q6_K, QT_Q4_K, QT_Q4_K, QT_Q4_K, QT_Q6_K, QT_Q6_K, 3e-2, false, false, false, true, 0},
};

/* Add a rows x cols tensor of random values scaled by `scale`, quantized to `type`. */
static bool add_tensor(gguf_writer *w, const char *name, uint32_t type, int64_t rows, int64_t cols,
                       float scale, float offset)
{
    const qtype_traits *tr = qtype_get(type);
    if (!tr || !tr->from_float) {
        fprintf(stderr, "no quantizer for type %u\n", type);
        return false;
    }
    size_t n = (size_t)(rows * cols), bytes = qtype_row_size(type, cols) * (size_t)rows;
    float *f = cairn_malloc(n * sizeof *f);
    void *q = cairn_malloc(bytes);
    for (size_t i = 0; i < n; i++)
        f[i] = offset + scale * frand();
    for (int64_t r = 0; r < rows; r++)
        tr->from_float(f + r * cols, (char *)q + (size_t)r * qtype_row_size(type, cols), cols);
    int64_t ne[2] = {cols, rows};
    cairn_status st = gguf_writer_add_tensor(w, name, type, rows == 1 ? 1 : 2, ne, q, bytes);
    cairn_free(f);
    cairn_free(q);
    return st == CAIRN_OK;
}

static bool write_model(const synth *S, const char *path)
{
    gguf_writer *w;
    if (gguf_writer_new(&w) != CAIRN_OK)
        return false;
    char k[128];
    bool ok = gguf_writer_set_str(w, "general.architecture", S->arch) == CAIRN_OK;
#define KU(key, v) (snprintf(k, sizeof k, "%s." key, S->arch), ok = ok && gguf_writer_set_u32(w, k, (uint32_t)(v)) == CAIRN_OK)
#define KF(key, v) (snprintf(k, sizeof k, "%s." key, S->arch), ok = ok && gguf_writer_set_f32(w, k, (float)(v)) == CAIRN_OK)
    KU("block_count", S->n_layer);
    KU("embedding_length", S->n_embd);
    KU("feed_forward_length", S->n_ff);
    KU("attention.head_count", S->n_head);
    KU("attention.head_count_kv", S->n_head_kv);
    KU("context_length", 256);
    KU("rope.dimension_count", S->n_rot);
    KF("rope.freq_base", S->freq_base);
    KF("attention.layer_norm_rms_epsilon", 1e-6);
    if (S->rope_scale > 0) {
        snprintf(k, sizeof k, "%s.rope.scaling.type", S->arch);
        ok = ok && gguf_writer_set_str(w, k, S->yarn ? "yarn" : S->llama3 ? "llama3" : "linear") == CAIRN_OK;
        KF("rope.scaling.factor", S->rope_scale);
        if (S->yarn)
            KU("rope.scaling.original_context_length", 32);
        if (S->llama3) {
            KU("rope.scaling.original_context_length", 64);
            KF("rope.scaling.low_freq_factor", 1.0);
            KF("rope.scaling.high_freq_factor", 4.0);
        }
    }
    if (S->head_dim > 0) {
        KU("attention.key_length", S->head_dim);
        KU("attention.value_length", S->head_dim);
    }
#undef KU
#undef KF
    const int hd = S->head_dim > 0 ? S->head_dim : S->n_embd / S->n_head, qd = S->n_head * hd, kvd = S->n_head_kv * hd;
    const float we = 1.0f, wm = sqrtf(3.0f / (float)S->n_embd), wf = sqrtf(3.0f / (float)S->n_ff);
    ok = ok && add_tensor(w, "token_embd.weight", S->t_embd, S->n_vocab, S->n_embd, we, 0);
    ok = ok && add_tensor(w, "output_norm.weight", QT_F32, 1, S->n_embd, 0.2f, 1.0f);
    if (S->rope_freqs)
        ok = ok && add_tensor(w, "rope_freqs.weight", QT_F32, 1, S->n_rot / 2, 1.5f, 2.5f);   /* in [1, 4] */
    if (!S->tied)
        ok = ok && add_tensor(w, "output.weight", S->t_out, S->n_vocab, S->n_embd, wm, 0);
    for (int il = 0; il < S->n_layer && ok; il++) {
        char n[64];
#define T(suffix, type, rows, cols, sc, off) \
        (snprintf(n, sizeof n, "blk.%d." suffix, il), ok = ok && add_tensor(w, n, type, rows, cols, sc, off))
        T("attn_norm.weight", QT_F32, 1, S->n_embd, 0.2f, 1.0f);
        T("attn_q.weight", S->t_q, qd, S->n_embd, wm, 0);
        T("attn_k.weight", S->t_k, kvd, S->n_embd, wm, 0);
        T("attn_v.weight", S->t_v, kvd, S->n_embd, wm, 0);
        if (S->biases) {
            T("attn_q.bias", QT_F32, 1, qd, 0.5f, 0);
            T("attn_k.bias", QT_F32, 1, kvd, 0.5f, 0);
            T("attn_v.bias", QT_F32, 1, kvd, 0.5f, 0);
        }
        if (S->qk_norm) {
            T("attn_q_norm.weight", QT_F32, 1, hd, 0.2f, 1.0f);
            T("attn_k_norm.weight", QT_F32, 1, hd, 0.2f, 1.0f);
        }
        T("attn_output.weight", S->t_o, S->n_embd, qd, wm, 0);
        T("ffn_norm.weight", QT_F32, 1, S->n_embd, 0.2f, 1.0f);
        T("ffn_gate.weight", S->t_gate, S->n_ff, S->n_embd, wm, 0);
        T("ffn_up.weight", S->t_up, S->n_ff, S->n_embd, wm, 0);
        T("ffn_down.weight", S->t_down, S->n_embd, S->n_ff, wf, 0);
#undef T
    }
    ok = ok && gguf_writer_write(w, path) == CAIRN_OK;
    if (!ok)
        fprintf(stderr, "writing %s: %s\n", path, cairn_last_error());
    gguf_writer_free(w);
    return ok;
}


static void check_model(const synth *S)
{
    const char *dir = t_tmpdir("synth");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, S->name);
    CHECKF(write_model(S, path), "%s", S->name);
    cairn_model *m = NULL;
    CHECK_OK(model_load(path, &m));
    if (!m)
        return;
    bool llama = !strcmp(S->arch, "llama");
    CHECK(m->hp.arch == (llama ? MODEL_ARCH_LLAMA : !strcmp(S->arch, "qwen3") ? MODEL_ARCH_QWEN3 : MODEL_ARCH_QWEN2));
    CHECK(!strcmp(model_arch_name(m->hp.arch), S->arch));
    CHECK(m->hp.rope == (llama ? ROPE_PAIRS_NORMAL : ROPE_PAIRS_NEOX));
    CHECK_EQ_INT(m->hp.qk_norm, S->qk_norm);
    CHECK_EQ_INT(m->layers[0].q_norm != NULL, S->qk_norm);
    CHECK_EQ_INT(m->tied_output, S->tied);
    CHECK_EQ_INT(m->hp.n_rot, S->n_rot);
    CHECK_EQ_INT(m->layers[0].bq != NULL, S->biases);
    CHECK_EQ_INT(m->rope_freqs != NULL, S->rope_freqs || S->llama3);
    CHECK(m->hp.rope_scaling_type == (S->rope_scale > 0 ? (S->yarn ? ROPE_SCALING_YARN : S->llama3 ? ROPE_SCALING_LLAMA3 :
                                      ROPE_SCALING_LINEAR) : ROPE_SCALING_NONE));
    if (S->llama3) {   /* the factor lives in the divisors, never also in a uniform scale */
        CHECK(m->hp.rope_freq_scale == 1.0f);
        if (!S->rope_freqs) {   /* base 1e4, 16 dims, L 64: wavelengths 6.3 (kept), 19.9, 62.8 (blended), 199.. (x8) */
            CHECK(m->rope_freqs[0] == 1.0f);
            CHECK(m->rope_freqs[1] > 1.0f && m->rope_freqs[2] > m->rope_freqs[1] && m->rope_freqs[2] < 8.0f);
            for (int i = 3; i < 8; i++)
                CHECK(m->rope_freqs[i] == 8.0f);
        }
    }

    int32_t ids[9];
    for (int i = 0; i < 9; i++)
        ids[i] = (int32_t)((i * 37 + 5) % S->n_vocab);
    const int n = 9, nv = S->n_vocab;
    double *ref = reference_logits(path, ids, n, nv);
    CHECK(ref != NULL);

    session_opts so = session_opts_default();
    so.n_ctx = 32, so.kv_type = QT_F32, so.n_threads = 2;
    cairn_session *s = NULL;
    CHECK_OK(session_new(m, &so, &s));
    float *l = NULL;
    if (s)
        CHECK_OK(session_eval(s, ids, n, &l));
    if (ref && l) {
        double mx = 0, err = 0;
        for (int i = 0; i < nv; i++)
            mx = fmax(mx, fabs(ref[i]));
        for (int i = 0; i < nv; i++)
            err = fmax(err, fabs(l[i] - ref[i]));
        fprintf(stderr, "%s: max |logit| %.3f, max error %.2e (%.2e relative, tolerance %.0e)\n", S->name, mx,
                err, err / mx, S->tol);
        CHECKF(err <= S->tol * mx, "%s: %g > %g", S->name, err, S->tol * mx);
    }
    /* the F16 cache path (AVX2: whole GQA groups per task, in-place F16
     * reads) against the same reference: the cache rounds K, V, q and the
     * probabilities to F16, worth ~1e-3 relative */
    if (ref) {
        session_opts so16 = so;
        so16.kv_type = QT_F16;
        for (int threads = 1; threads <= 2; threads++) {
            so16.n_threads = threads;
            cairn_session *s16 = NULL;
            float *l16 = NULL;
            CHECK_OK(session_new(m, &so16, &s16));
            if (s16)
                CHECK_OK(session_eval(s16, ids, n, &l16));
            if (l16) {
                double mx = 0, err = 0, tol = fmax(S->tol, 5e-3);
                for (int i = 0; i < nv; i++) {
                    mx = fmax(mx, fabs(ref[i]));
                    err = fmax(err, fabs(l16[i] - ref[i]));
                }
                if (threads == 2)
                    fprintf(stderr, "%s, F16 cache: %.2e relative (tolerance %.0e)\n", S->name, err / mx, tol);
                CHECKF(err <= tol * mx, "%s F16 cache: %g > %g", S->name, err, tol * mx);
            }
            session_free(s16);
        }
    }
    if (s && l) {
        float *batched = cairn_malloc((size_t)nv * sizeof *batched);
        memcpy(batched, l, (size_t)nv * sizeof *batched);
        session_truncate(s, 0);
        for (int i = 0; i < n; i++)
            CHECK_OK(session_eval(s, ids + i, 1, &l));
        double err = 0;
        for (int i = 0; i < nv && l; i++)
            err = fmax(err, fabs(l[i] - batched[i]));
        CHECKF(err < 1e-3, "%s: batched vs incremental %g", S->name, err);
        cairn_free(batched);
    }
    cairn_free(ref);
    session_free(s);
    model_free(m);
}

static void test_synth_models(void)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(MODELS); i++)
        check_model(&MODELS[i]);
}

/* Metadata that contradicts the tensors is a clear error, not a crash. */
static void test_bad_metadata(void)
{
    const char *dir = t_tmpdir("synthbad");
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    synth S = MODELS[0];
    S.n_head_kv = 3;   /* 4 % 3 != 0 */
    CHECK(write_model(&S, path));
    cairn_model *m = NULL;
    CHECK(model_load(path, &m) == CAIRN_ERR_CORRUPT);
    CHECK(strstr(cairn_last_error(), "head_count") != NULL);
    S = MODELS[0];
    S.biases = false;   /* qwen2 without its biases */
    CHECK(write_model(&S, path));
    CHECK(model_load(path, &m) == CAIRN_ERR_CORRUPT);
    CHECK(strstr(cairn_last_error(), "attn_q.bias") != NULL);
    S = MODELS[0];
    S.n_rot = 18;      /* more rotary dims than the head has */
    CHECK(write_model(&S, path));
    CHECK(model_load(path, &m) == CAIRN_ERR_CORRUPT);
}

int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    kernels_init();
    if (!np_ref_setup(__FILE__))
        SKIP_ALL("python3 with numpy (or %s) not available", np_ref);
    RUN(test_synth_models);
    RUN(test_bad_metadata);
    return t_done();
}
