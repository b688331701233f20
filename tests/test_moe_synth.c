/* test_moe_synth.c — MoE forward passes on tiny random models written by our
 * own writer (gguf/testmodel.h), against the float64 numpy reference
 * (tests/tools/np_ref.py, which implements each gating variant):
 *   - Mixtral layout (arch llama): softmax -> top-k -> renormalised weights;
 *   - Qwen2-MoE: no renormalisation, plus a shared expert gated by
 *     sigmoid(w . x), NeoX RoPE, Q/K/V biases;
 *   - OLMoE: top-k of the softmax, no renormalisation, RMSNorm over the whole
 *     q and k vectors before (NeoX) RoPE;
 *   - Qwen3-MoE: per-head q/k RMSNorm, renormalised weights unless
 *     qwen3moe.expert_weights_norm is false;
 * in F32 and Q8_0; plus batched (experts grouped over the batch) against
 * one-token-at-a-time evaluation, and routing statistics. */
#include "t.h"
#include "np_ref.h"
#include "gguf/testmodel.h"
#include "infer/session.h"
#include <cjson/cJSON.h>
#include <libgen.h>


typedef struct moe_case {
    const char *name, *arch;
    int n_expert, n_used, n_ff_expert, n_ff_shared;
    uint32_t type;
    double tol;     /* max |ours - ref| / max |ref| */
    int weights_norm;   /* qwen3moe.expert_weights_norm: -1 absent, 0/1 written */
    bool moe_norm_w;    /* expected m->hp.moe_norm_w */
    bool qk_norm;       /* expected m->hp.qk_norm */
} moe_case;

static const moe_case CASES[] = {
    {"mixtral-f32", "llama", 8, 2, 96, 0, QT_F32, 2e-4, -1, true, false},
    {"mixtral-q8_0", "llama", 8, 2, 96, 0, QT_Q8_0, 2e-2, -1, true, false},
    {"qwen2moe-f32", "qwen2moe", 8, 4, 64, 128, QT_F32, 2e-4, -1, false, false},
    {"qwen2moe-q8_0", "qwen2moe", 6, 3, 64, 96, QT_Q8_0, 2e-2, -1, false, false},
    {"olmoe-f32", "olmoe", 16, 4, 64, 0, QT_F32, 2e-4, -1, false, true},
    {"olmoe-q8_0", "olmoe", 8, 2, 96, 0, QT_Q8_0, 2e-2, -1, false, true},
    {"qwen3moe-f32", "qwen3moe", 8, 2, 96, 0, QT_F32, 2e-4, -1, true, true},   /* key absent: default on */
    {"qwen3moe-norm-f32", "qwen3moe", 8, 2, 64, 0, QT_F32, 2e-4, 1, true, true},
    {"qwen3moe-nonorm-f32", "qwen3moe", 8, 2, 64, 0, QT_F32, 2e-4, 0, false, true},
    {"qwen3moe-q8_0", "qwen3moe", 6, 3, 64, 0, QT_Q8_0, 2e-2, 0, false, true},
};

static void check_case(const moe_case *c)
{
    t_current = c->name;
    const char *dir = t_tmpdir("moe_synth");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, c->name);
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.arch = c->arch;
    p.n_embd = 64;
    p.n_layer = 2;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.n_expert = c->n_expert;
    p.n_expert_used = c->n_used;
    p.n_ff_expert = c->n_ff_expert;
    p.n_ff = c->n_ff_expert;
    if (c->n_ff_shared)
        p.n_ff_shared = c->n_ff_shared;
    p.weight_type = c->type;
    p.expert_weights_norm = c->weights_norm;
    p.seed = 7;
    CHECK_OK(gguf_testmodel_write(path, &p));
    cairn_model *m = NULL;
    CHECK_OK(model_load(path, &m));
    if (!m)
        return;
    CHECK_EQ_INT(m->hp.n_expert, c->n_expert);
    CHECK_EQ_INT(m->hp.n_expert_used, c->n_used);
    CHECK_EQ_INT(m->hp.moe_norm_w, c->moe_norm_w);
    CHECK_EQ_INT(m->hp.qk_norm, c->qk_norm);
    CHECK_EQ_INT(m->layers[0].q_norm != NULL, c->qk_norm);
    CHECK_EQ_INT(m->layers[0].gate_shexp.data != NULL, c->n_ff_shared > 0);
    CHECK(model_n_active_params(m) < model_n_params(m));
    const int n = 9, nv = m->hp.n_vocab;
    int32_t ids[9];
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)((i * 37 + 5) % nv);
    double *ref = reference_logits(path, ids, n, nv);
    CHECK(ref != NULL);
    session_opts so = session_opts_default();
    so.n_ctx = 32, so.kv_type = QT_F32, so.n_threads = 2;
    cairn_session *s = NULL;
    CHECK_OK(session_new(m, &so, &s));
    float *l = NULL;
    if (s)
        CHECK_OK(session_eval(s, ids, n, &l));   /* one batch: experts grouped over 9 tokens */
    if (ref && l) {
        double mx = 0, err = 0;
        for (int i = 0; i < nv; i++) {
            mx = fmax(mx, fabs(ref[i]));
            err = fmax(err, fabs(l[i] - ref[i]));
        }
        fprintf(stderr, "%s: max error %.2e relative (tolerance %.0e)\n", c->name, err / mx, c->tol);
        CHECKF(err <= c->tol * mx, "%s: %g > %g", c->name, err, c->tol * mx);
    }
    if (s && l) {
        /* routing counts: every token chose n_used experts in every layer */
        const uint64_t *cnt = session_expert_counts(s);
        for (int il = 0; il < m->hp.n_layer; il++) {
            uint64_t tot = 0;
            for (int e = 0; e < c->n_expert; e++)
                tot += cnt[(size_t)il * c->n_expert + e];
            CHECK_EQ_INT(tot, (uint64_t)n * (uint64_t)c->n_used);
        }
        /* grouped batch == one token at a time */
        float *batched = cairn_malloc((size_t)nv * sizeof *batched);
        memcpy(batched, l, (size_t)nv * sizeof *batched);
        session_truncate(s, 0);
        for (int i = 0; i < n; i++)
            CHECK_OK(session_eval(s, ids + i, 1, &l));
        double err = 0;
        for (int i = 0; i < nv && l; i++)
            err = fmax(err, fabs(l[i] - batched[i]));
        CHECKF(err < 1e-3, "%s: batched vs incremental %g", c->name, err);
        cairn_free(batched);
    }
    cairn_free(ref);
    session_free(s);
    model_free(m);
}

static void test_bad_moe_metadata(void)
{
    /* expert_used_count above expert_count is refused with a clear error */
    const char *dir = t_tmpdir("moe_bad");
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.n_expert = 4;
    p.n_expert_used = 2;
    CHECK_OK(gguf_testmodel_write(path, &p));
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, &g));
    if (!g)
        return;
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(gguf_writer_copy_kvs(w, g));
    CHECK_OK(gguf_writer_set_u32(w, "llama.expert_used_count", 9));
    for (uint64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK_OK(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes));
    }
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/bad2.gguf", dir);
    CHECK_OK(gguf_writer_write(w, bad));
    gguf_writer_free(w);
    gguf_close(g);
    cairn_model *m = NULL;
    CHECK(model_load(bad, &m) == CAIRN_ERR_CORRUPT);
    CHECK(strstr(cairn_last_error(), "expert_used_count") != NULL);
    CHECK(m == NULL);
}

int main(void)
{
    kernels_init();
    if (!np_ref_setup(__FILE__))
        SKIP_ALL("python3 with numpy (or %s) not available", np_ref);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(CASES); i++)
        check_case(&CASES[i]);
    RUN(test_bad_moe_metadata);
    return t_done();
}
