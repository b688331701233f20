/*
 * model.c — bind a llama-family model from GGUF metadata and tensors.
 *
 * Order of work: architecture name → hyper-parameters (validated, with caps)
 * → global tensors → per-layer tensors. Every tensor's type and shape is
 * checked against the hyper-parameters, so the forward pass can trust them.
 */
#include "model/model.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

/* Hard caps: far above any real model, low enough that products of two of
 * them cannot overflow the size arithmetic in the session. */
#define MODEL_MAX_LAYERS 1024
#define MODEL_MAX_EMBD (1 << 16)
#define MODEL_MAX_FF (1 << 20)
#define MODEL_MAX_EXPERTS 1024
#define MODEL_MAX_HEADS 1024
#define MODEL_MAX_VOCAB (1 << 22)

const char *model_arch_name(model_arch a)
{
    switch (a) {
    case MODEL_ARCH_LLAMA: return "llama";
    case MODEL_ARCH_QWEN2: return "qwen2";
    case MODEL_ARCH_QWEN2MOE: return "qwen2moe";
    case MODEL_ARCH_OLMOE: return "olmoe";
    case MODEL_ARCH_QWEN3MOE: return "qwen3moe";
    case MODEL_ARCH_QWEN3: return "qwen3";
    }
    return "?";
}

/* ---- metadata helpers ---- */

static cairn_status hp_u32(const cairn_model *m, const char *key, bool required, uint32_t def, uint32_t *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", m->arch_name, key);
    cairn_status st = gguf_get_u32(m->gguf, full, out);
    if (st == CAIRN_ERR_NOT_FOUND && !required) {
        *out = def;
        cairn_clear_error();
        return CAIRN_OK;
    }
    if (st == CAIRN_ERR_NOT_FOUND)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing metadata %s", gguf_path(m->gguf), full);
    if (st != CAIRN_OK)
        return cairn_fail_wrap(st, "%s", full);
    return CAIRN_OK;
}

static cairn_status hp_f32(const cairn_model *m, const char *key, bool required, float def, float *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", m->arch_name, key);
    cairn_status st = gguf_get_f32(m->gguf, full, out);
    if (st == CAIRN_ERR_NOT_FOUND && !required) {
        *out = def;
        cairn_clear_error();
        return CAIRN_OK;
    }
    if (st == CAIRN_ERR_NOT_FOUND)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing metadata %s", gguf_path(m->gguf), full);
    if (st != CAIRN_OK)
        return cairn_fail_wrap(st, "%s", full);
    if (!isfinite(*out))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s is not finite", gguf_path(m->gguf), full);
    return CAIRN_OK;
}

static cairn_status check_range(const cairn_model *m, const char *what, uint32_t v, uint32_t lo, uint32_t hi)
{
    if (v < lo || v > hi)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s = %u out of range [%u, %u]",
                          gguf_path(m->gguf), what, v, lo, hi);
    return CAIRN_OK;
}

static cairn_status load_hparams(cairn_model *m)
{
    model_hparams *hp = &m->hp;
    uint32_t v;

    CAIRN_TRY(hp_u32(m, "block_count", true, 0, &v));
    CAIRN_TRY(check_range(m, "block_count", v, 1, MODEL_MAX_LAYERS));
    hp->n_layer = (int)v;
    CAIRN_TRY(hp_u32(m, "embedding_length", true, 0, &v));
    CAIRN_TRY(check_range(m, "embedding_length", v, 1, MODEL_MAX_EMBD));
    hp->n_embd = (int)v;
    CAIRN_TRY(hp_u32(m, "attention.head_count", true, 0, &v));
    CAIRN_TRY(check_range(m, "attention.head_count", v, 1, MODEL_MAX_HEADS));
    hp->n_head = (int)v;
    CAIRN_TRY(hp_u32(m, "attention.head_count_kv", false, (uint32_t)hp->n_head, &v));
    CAIRN_TRY(check_range(m, "attention.head_count_kv", v, 1, (uint32_t)hp->n_head));
    hp->n_head_kv = (int)v;
    if (hp->n_head % hp->n_head_kv)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: head_count %d not a multiple of head_count_kv %d",
                          gguf_path(m->gguf), hp->n_head, hp->n_head_kv);
    CAIRN_TRY(hp_u32(m, "expert_count", false, 0, &v));
    hp->n_expert = (int)v;
    CAIRN_TRY(hp_u32(m, "expert_used_count", false, 0, &v));
    hp->n_expert_used = (int)v;
    bool moe_arch = hp->arch == MODEL_ARCH_QWEN2MOE || hp->arch == MODEL_ARCH_OLMOE || hp->arch == MODEL_ARCH_QWEN3MOE;
    if (moe_arch && hp->n_expert == 0)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s model without %s.expert_count", gguf_path(m->gguf),
                          m->arch_name, m->arch_name);
    if (hp->n_expert > 0) {
        CAIRN_TRY(check_range(m, "expert_count", (uint32_t)hp->n_expert, 1, MODEL_MAX_EXPERTS));
        CAIRN_TRY(check_range(m, "expert_used_count", (uint32_t)hp->n_expert_used, 1, (uint32_t)hp->n_expert));
    }
    CAIRN_TRY(hp_u32(m, "feed_forward_length", hp->n_expert == 0, 0, &v));
    if (hp->n_expert == 0 || v)
        CAIRN_TRY(check_range(m, "feed_forward_length", v, 1, MODEL_MAX_FF));
    hp->n_ff = (int)v;
    /* Gating, per architecture (weights renormalised over the chosen experts
     * for Mixtral-style llama; not for Qwen2-MoE and OLMoE; Qwen3-MoE per
     * expert_weights_norm, default on as its norm_topk_prob). */
    CAIRN_TRY(hp_u32(m, "expert_feed_forward_length", false, (uint32_t)hp->n_ff, &v));
    if (hp->n_expert > 0)
        CAIRN_TRY(check_range(m, "expert_feed_forward_length", v, 1, MODEL_MAX_FF));
    hp->n_ff_exp = (int)v;
    CAIRN_TRY(hp_u32(m, "expert_shared_feed_forward_length", false, 0, &v));
    if (v)
        CAIRN_TRY(check_range(m, "expert_shared_feed_forward_length", v, 1, MODEL_MAX_FF));
    hp->n_ff_shexp = (int)v;
    hp->moe_norm_w = hp->arch == MODEL_ARCH_LLAMA || hp->arch == MODEL_ARCH_QWEN3MOE;
    if (hp->arch == MODEL_ARCH_QWEN3MOE) {
        char key[128];
        snprintf(key, sizeof key, "%s.expert_weights_norm", m->arch_name);
        bool b;
        if (gguf_get_bool(m->gguf, key, &b) == CAIRN_OK)
            hp->moe_norm_w = b;
    }
    hp->qk_norm = hp->arch == MODEL_ARCH_OLMOE || hp->arch == MODEL_ARCH_QWEN3MOE || hp->arch == MODEL_ARCH_QWEN3;

    uint32_t def_hd = (uint32_t)(hp->n_embd / hp->n_head);
    CAIRN_TRY(hp_u32(m, "attention.key_length", false, def_hd, &v));
    CAIRN_TRY(check_range(m, "attention.key_length", v, 1, MODEL_MAX_EMBD));
    hp->head_dim = (int)v;
    CAIRN_TRY(hp_u32(m, "attention.value_length", false, (uint32_t)hp->head_dim, &v));
    if ((int)v != hp->head_dim)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: value_length %u != key_length %d",
                          gguf_path(m->gguf), v, hp->head_dim);
    if (hp->head_dim % 2)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: odd head dimension %d", gguf_path(m->gguf), hp->head_dim);
    char klkey[128];
    snprintf(klkey, sizeof klkey, "%s.attention.key_length", m->arch_name);
    if (!gguf_kv_find(m->gguf, klkey) && hp->n_embd % hp->n_head)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: embedding_length %d not a multiple of head_count %d",
                          gguf_path(m->gguf), hp->n_embd, hp->n_head);

    CAIRN_TRY(hp_u32(m, "context_length", false, 2048, &v));
    CAIRN_TRY(check_range(m, "context_length", v, 1, 1u << 24));
    hp->n_ctx_train = (int)v;
    CAIRN_TRY(hp_f32(m, "attention.layer_norm_rms_epsilon", false, 1e-5f, &hp->norm_eps));
    if (!(hp->norm_eps >= 0 && hp->norm_eps < 1))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: rms epsilon %g out of range", gguf_path(m->gguf),
                          (double)hp->norm_eps);

    /* RoPE */
    hp->rope = (hp->arch == MODEL_ARCH_QWEN2 || hp->arch == MODEL_ARCH_QWEN2MOE || hp->arch == MODEL_ARCH_OLMOE ||
                hp->arch == MODEL_ARCH_QWEN3MOE || hp->arch == MODEL_ARCH_QWEN3) ? ROPE_PAIRS_NEOX : ROPE_PAIRS_NORMAL;
    CAIRN_TRY(hp_u32(m, "rope.dimension_count", false, (uint32_t)hp->head_dim, &v));
    if (v % 2 || (int)v > hp->head_dim)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: rope.dimension_count %u invalid for head dim %d",
                          gguf_path(m->gguf), v, hp->head_dim);
    hp->n_rot = (int)v;
    CAIRN_TRY(hp_f32(m, "rope.freq_base", false, 10000.0f, &hp->rope_freq_base));
    if (!(hp->rope_freq_base > 1.0f))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: rope.freq_base %g invalid", gguf_path(m->gguf),
                          (double)hp->rope_freq_base);

    /* Scaling: rope.scaling.{type,factor,original_context_length}; older
     * files carry only rope.scale_linear. */
    float factor = 0;
    hp->rope_scaling_type = ROPE_SCALING_NONE;
    CAIRN_TRY(hp_f32(m, "rope.scale_linear", false, 0.0f, &factor));
    if (factor > 0)
        hp->rope_scaling_type = ROPE_SCALING_LINEAR;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
    gguf_str stype;
    if (gguf_get_str(m->gguf, key, &stype) == CAIRN_OK) {
        if (gguf_str_eq(stype, "none")) hp->rope_scaling_type = ROPE_SCALING_NONE;
        else if (gguf_str_eq(stype, "linear")) hp->rope_scaling_type = ROPE_SCALING_LINEAR;
        else if (gguf_str_eq(stype, "yarn")) hp->rope_scaling_type = ROPE_SCALING_YARN;
        else if (gguf_str_eq(stype, "llama3")) hp->rope_scaling_type = ROPE_SCALING_LLAMA3;
        else
            return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: rope scaling type '%.*s' not supported",
                              gguf_path(m->gguf), (int)CAIRN_MIN(stype.len, 32), stype.ptr);
    }
    cairn_clear_error();
    CAIRN_TRY(hp_f32(m, "rope.scaling.factor", false, factor, &factor));
    hp->rope_freq_scale = 1.0f;
    if (hp->rope_scaling_type != ROPE_SCALING_NONE && factor > 0) {
        if (!(factor >= 1e-3f && factor <= 1e3f))
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: rope scaling factor %g out of range",
                              gguf_path(m->gguf), (double)factor);
        hp->rope_freq_scale = 1.0f / factor;
    }
    CAIRN_TRY(hp_u32(m, "rope.scaling.original_context_length", false, (uint32_t)hp->n_ctx_train, &v));
    hp->rope_yarn_orig_ctx = (int)CAIRN_MIN(v, 1u << 24);
    if (hp->rope_scaling_type == ROPE_SCALING_LLAMA3) {
        /* llama3 scales per frequency, not uniformly: the factor goes into
         * the per-dimension divisors (rope_freqs), never into freq_scale.
         * Defaults are Llama 3.1's (x8, low 1, high 4, original 8192). */
        hp->rope_llama3_factor = factor > 0 ? factor : 8.0f;
        hp->rope_freq_scale = 1.0f;
        CAIRN_TRY(hp_f32(m, "rope.scaling.low_freq_factor", false, 1.0f, &hp->rope_llama3_low));
        CAIRN_TRY(hp_f32(m, "rope.scaling.high_freq_factor", false, 4.0f, &hp->rope_llama3_high));
        if (!(hp->rope_llama3_factor >= 1.0f && hp->rope_llama3_factor <= 1e3f) ||
            !(hp->rope_llama3_low > 0 && hp->rope_llama3_low < hp->rope_llama3_high && hp->rope_llama3_high <= 1e3f))
            return cairn_fail(CAIRN_ERR_CORRUPT,
                              "%s: llama3 rope scaling (factor %g, low_freq_factor %g, high_freq_factor %g) invalid: "
                              "need factor >= 1 and 0 < low < high", gguf_path(m->gguf),
                              (double)hp->rope_llama3_factor, (double)hp->rope_llama3_low,
                              (double)hp->rope_llama3_high);
        if (hp->rope_yarn_orig_ctx < 1)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: rope.scaling.original_context_length 0", gguf_path(m->gguf));
    }
    return CAIRN_OK;
}

/* ---- tensor binding ---- */

static cairn_status own(cairn_model *m, void *p)
{
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 16;
        void **n = cairn_reallocarray(m->owned, (size_t)cap, sizeof *n);
        if (!n) {
            cairn_free(p);
            return cairn_fail(CAIRN_ERR_NOMEM, "model: out of memory");
        }
        m->owned = n;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return CAIRN_OK;
}

static bool dims_are(const gguf_tensor *t, int64_t ne0, int64_t ne1)
{
    if (t->ne[0] != ne0 || t->ne[1] != ne1)
        return false;
    for (int i = 2; i < GGUF_MAX_DIMS; i++)
        if (t->ne[i] != 1)
            return false;
    return true;
}

/* The tensors the model reads through the mapping (or copies): matrices
 * and stacks of two or more dimensions, but not an untied token_embd, whose
 * rows are read with pread. */
static bool weight_tensor(const cairn_model *m, const gguf_tensor *t)
{
    return t->ne[1] >= 2 &&
           !(gguf_str_eq(t->name, "token_embd.weight") && gguf_tensor_find(m->gguf, "output.weight"));
}

/* Where a bound tensor's bytes are read from: a copy in m->wmem when the
 * model copies its weights (see model_weights), else the file mapping. The
 * untied token-embedding table stays mapped (one row per token, by pread). */
static const void *place(cairn_model *m, const gguf_tensor *t)
{
    if (!m->wmem || !weight_tensor(m, t))
        return t->data;
    size_t at = (m->wmem_used + 63) & ~(size_t)63;
    if (at > m->wmem_size || t->nbytes > m->wmem_size - at)
        return t->data;     /* cannot happen: wmem is sized over the same tensors */
    gguf_read(m->gguf, t->data, t->nbytes, m->wmem + at);
    m->wmem_used = at + t->nbytes;
    return m->wmem + at;
}

/* A matrix of `rows` x `cols` (GGUF ne = [cols, rows]) in any supported
 * type. A missing optional matrix leaves out->data NULL. */
static cairn_status bind_matrix(cairn_model *m, const char *name, int64_t rows, int64_t cols,
                                bool required, qmat *out)
{
    memset(out, 0, sizeof *out);
    const gguf_tensor *t = gguf_tensor_find(m->gguf, name);
    if (!t) {
        if (!required)
            return CAIRN_OK;
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing tensor %s", gguf_path(m->gguf), name);
    }
    if (!dims_are(t, cols, rows))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s has shape [%lld, %lld, %lld], expected [%lld, %lld]",
                          gguf_path(m->gguf), name, (long long)t->ne[0], (long long)t->ne[1],
                          (long long)t->ne[2], (long long)cols, (long long)rows);
    const qtype_traits *tr = qtype_get(t->type);
    if (!tr || !tr->to_float || !tr->vec_dot)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: tensor %s has unsupported type %u",
                          gguf_path(m->gguf), name, t->type);
    size_t row = qtype_row_size(t->type, cols), total;
    if (row == 0 || !cairn_mul_ok(row, (size_t)rows, &total) || total > t->nbytes)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s: %lld columns do not fit type %s",
                          gguf_path(m->gguf), name, (long long)cols, tr->name);
    out->type = t->type;
    out->rows = rows;
    out->cols = cols;
    out->data = place(m, t);
    return CAIRN_OK;
}

/* A stack of n_expert matrices of `rows` x `cols` (GGUF ne = [cols, rows,
 * n_expert], as llama.cpp merges them); out views expert 0. */
static cairn_status bind_experts(cairn_model *m, const char *name, int64_t rows, int64_t cols, qmat *out,
                                 size_t *stride)
{
    memset(out, 0, sizeof *out);
    const gguf_tensor *t = gguf_tensor_find(m->gguf, name);
    const int64_t ne = m->hp.n_expert;
    if (!t)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing tensor %s", gguf_path(m->gguf), name);
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != ne || t->ne[3] != 1)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s has shape [%lld, %lld, %lld], expected [%lld, %lld, %lld]",
                          gguf_path(m->gguf), name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                          (long long)cols, (long long)rows, (long long)ne);
    const qtype_traits *tr = qtype_get(t->type);
    if (!tr || !tr->to_float || !tr->vec_dot)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: tensor %s has unsupported type %u", gguf_path(m->gguf), name,
                          t->type);
    size_t row = qtype_row_size(t->type, cols), one, total;
    if (row == 0 || !cairn_mul_ok(row, (size_t)rows, &one) || !cairn_mul_ok(one, (size_t)ne, &total) ||
        total > t->nbytes)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s: %lld columns do not fit type %s", gguf_path(m->gguf),
                          name, (long long)cols, tr->name);
    out->type = t->type;
    out->rows = rows;
    out->cols = cols;
    out->data = place(m, t);
    *stride = one;
    return CAIRN_OK;
}

static bool is_expert_stack(const gguf_tensor *t) { return t->ne[2] > 1; }

/* MoE: decode reads only the chosen experts, so read-ahead must not pull
 * idle experts in around a fault — and file read-ahead crosses tensor
 * boundaries. Turn it off over the whole mapping, and ask for every
 * non-expert tensor up front instead (those are read for every token).
 * Advisory only: a failure changes nothing but speed. */
static void advise_moe(const cairn_model *m)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), lo = UINTPTR_MAX, hi = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        lo = CAIRN_MIN(lo, (uintptr_t)t->data);
        hi = CAIRN_MAX(hi, (uintptr_t)t->data + t->nbytes);
    }
    lo &= ~(pg - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_RANDOM);
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        if (is_expert_stack(t))
            continue;
        uintptr_t a = (uintptr_t)t->data & ~(pg - 1), b = ((uintptr_t)t->data + t->nbytes + pg - 1) & ~(pg - 1);
        madvise((void *)a, b - a, MADV_WILLNEED);
    }
}

/* A vector of n floats: used in place when F32, else converted once. */
static cairn_status bind_vector(cairn_model *m, const char *name, int64_t n, bool required, const float **out)
{
    *out = NULL;
    const gguf_tensor *t = gguf_tensor_find(m->gguf, name);
    if (!t) {
        if (!required)
            return CAIRN_OK;
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing tensor %s", gguf_path(m->gguf), name);
    }
    if (!dims_are(t, n, 1))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s has shape [%lld, %lld], expected [%lld]",
                          gguf_path(m->gguf), name, (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    const qtype_traits *tr = qtype_get(t->type);
    size_t row = tr ? qtype_row_size(t->type, n) : 0;
    if (!tr || !tr->to_float || row == 0)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: tensor %s has unsupported type %u",
                          gguf_path(m->gguf), name, t->type);
    if (row > t->nbytes)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s is truncated", gguf_path(m->gguf), name);
    /* In place from the mapping, unless the weights were copied: then the
     * mapping is left alone (pread), because a page cache of 2 MiB folios
     * maps a whole folio around every small read (TinyLlama: +35 MiB RSS
     * for its 45 norm vectors). */
    if (t->type == QT_F32 && ((uintptr_t)t->data % sizeof(float)) == 0 && !m->wmem) {
        *out = t->data;
        return CAIRN_OK;
    }
    float *f = cairn_malloc((size_t)n * sizeof *f);
    void *raw = t->type == QT_F32 ? (void *)f : cairn_malloc(row);
    if (!f || !raw) {
        cairn_free(f);
        return cairn_fail(CAIRN_ERR_NOMEM, "model: out of memory");
    }
    gguf_read(m->gguf, t->data, row, raw);
    if (raw != f) {
        tr->to_float(raw, f, n);
        cairn_free(raw);
    }
    CAIRN_TRY(own(m, f));
    *out = f;
    return CAIRN_OK;
}

static cairn_status bind_layer(cairn_model *m, int il)
{
    const model_hparams *hp = &m->hp;
    model_layer *L = &m->layers[il];
    int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, il), name)
    CAIRN_TRY(bind_vector(m, NAME("attn_norm.weight"), hp->n_embd, true, &L->attn_norm));
    CAIRN_TRY(bind_matrix(m, NAME("attn_q.weight"), q_dim, hp->n_embd, true, &L->wq));
    CAIRN_TRY(bind_matrix(m, NAME("attn_k.weight"), kv_dim, hp->n_embd, true, &L->wk));
    CAIRN_TRY(bind_matrix(m, NAME("attn_v.weight"), kv_dim, hp->n_embd, true, &L->wv));
    CAIRN_TRY(bind_matrix(m, NAME("attn_output.weight"), hp->n_embd, q_dim, true, &L->wo));
    bool biases = hp->arch == MODEL_ARCH_QWEN2 || hp->arch == MODEL_ARCH_QWEN2MOE;
    CAIRN_TRY(bind_vector(m, NAME("attn_q.bias"), q_dim, biases, &L->bq));
    CAIRN_TRY(bind_vector(m, NAME("attn_k.bias"), kv_dim, biases, &L->bk));
    CAIRN_TRY(bind_vector(m, NAME("attn_v.bias"), kv_dim, biases, &L->bv));
    CAIRN_TRY(bind_vector(m, NAME("ffn_norm.weight"), hp->n_embd, true, &L->ffn_norm));
    if (hp->qk_norm) {
        bool whole = hp->arch == MODEL_ARCH_OLMOE;
        CAIRN_TRY(bind_vector(m, NAME("attn_q_norm.weight"), whole ? q_dim : hp->head_dim, true, &L->q_norm));
        CAIRN_TRY(bind_vector(m, NAME("attn_k_norm.weight"), whole ? kv_dim : hp->head_dim, true, &L->k_norm));
    }
    if (hp->n_expert > 0) {
        CAIRN_TRY(bind_matrix(m, NAME("ffn_gate_inp.weight"), hp->n_expert, hp->n_embd, true, &L->ffn_gate_inp));
        CAIRN_TRY(bind_experts(m, NAME("ffn_gate_exps.weight"), hp->n_ff_exp, hp->n_embd, &L->gate_exps, &L->gate_stride));
        CAIRN_TRY(bind_experts(m, NAME("ffn_up_exps.weight"), hp->n_ff_exp, hp->n_embd, &L->up_exps, &L->up_stride));
        CAIRN_TRY(bind_experts(m, NAME("ffn_down_exps.weight"), hp->n_embd, hp->n_ff_exp, &L->down_exps, &L->down_stride));
        if (hp->n_ff_shexp > 0) {
            CAIRN_TRY(bind_matrix(m, NAME("ffn_gate_shexp.weight"), hp->n_ff_shexp, hp->n_embd, true, &L->gate_shexp));
            CAIRN_TRY(bind_matrix(m, NAME("ffn_up_shexp.weight"), hp->n_ff_shexp, hp->n_embd, true, &L->up_shexp));
            CAIRN_TRY(bind_matrix(m, NAME("ffn_down_shexp.weight"), hp->n_embd, hp->n_ff_shexp, true, &L->down_shexp));
            CAIRN_TRY(bind_vector(m, NAME("ffn_gate_inp_shexp.weight"), hp->n_embd, false, &L->gate_inp_shexp));
        }
        return CAIRN_OK;
    }
    CAIRN_TRY(bind_matrix(m, NAME("ffn_gate.weight"), hp->n_ff, hp->n_embd, true, &L->ffn_gate));
    CAIRN_TRY(bind_matrix(m, NAME("ffn_up.weight"), hp->n_ff, hp->n_embd, true, &L->ffn_up));
    CAIRN_TRY(bind_matrix(m, NAME("ffn_down.weight"), hp->n_embd, hp->n_ff, true, &L->ffn_down));
#undef NAME
    return CAIRN_OK;
}

/* The divisors llama3 scaling puts on each rotary frequency (what
 * converters store as rope_freqs): with wavelength w_i = 2 pi / inv_freq_i
 * and the original context L, dimensions whose w_i exceeds L / low_freq_factor
 * are slowed by the factor, those below L / high_freq_factor are kept, and
 * in between the new frequency blends inv/factor and inv by
 * s = (L / w_i - low) / (high - low): new = (1 - s) inv / factor + s inv. The
 * divisor is inv / new. Computed in double; n_rot/2 floats, owned. */
static cairn_status llama3_rope_freqs(cairn_model *m)
{
    const model_hparams *hp = &m->hp;
    const int half = hp->n_rot / 2;
    float *f = cairn_malloc((size_t)half * sizeof *f);
    if (!f)
        return cairn_fail(CAIRN_ERR_NOMEM, "model: out of memory");
    CAIRN_TRY(own(m, f));
    const double L = hp->rope_yarn_orig_ctx, factor = hp->rope_llama3_factor;
    const double lo = hp->rope_llama3_low, hi = hp->rope_llama3_high;
    for (int i = 0; i < half; i++) {
        double inv = pow((double)hp->rope_freq_base, -2.0 * i / hp->n_rot);
        double wavelen = 2.0 * M_PI / inv;
        if (wavelen < L / hi) {
            f[i] = 1.0f;
        } else if (wavelen > L / lo) {
            f[i] = (float)factor;
        } else {
            double sm = (L / wavelen - lo) / (hi - lo);
            f[i] = (float)(1.0 / ((1.0 - sm) / factor + sm));
        }
    }
    m->rope_freqs = f;
    return CAIRN_OK;
}

static cairn_status bind_all(cairn_model *m)
{
    gguf_str arch;
    if (gguf_get_str(m->gguf, "general.architecture", &arch) != CAIRN_OK)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing general.architecture", gguf_path(m->gguf));
    if (gguf_str_eq(arch, "llama"))
        m->hp.arch = MODEL_ARCH_LLAMA;
    else if (gguf_str_eq(arch, "qwen2"))
        m->hp.arch = MODEL_ARCH_QWEN2;
    else if (gguf_str_eq(arch, "qwen2moe"))
        m->hp.arch = MODEL_ARCH_QWEN2MOE;
    else if (gguf_str_eq(arch, "olmoe"))
        m->hp.arch = MODEL_ARCH_OLMOE;
    else if (gguf_str_eq(arch, "qwen3moe"))
        m->hp.arch = MODEL_ARCH_QWEN3MOE;
    else if (gguf_str_eq(arch, "qwen3"))
        m->hp.arch = MODEL_ARCH_QWEN3;
    else
        return cairn_fail(CAIRN_ERR_UNSUPPORTED,
                          "%s: architecture '%.*s' not supported (llama, qwen2, qwen2moe, olmoe, qwen3, qwen3moe)",
                          gguf_path(m->gguf), (int)CAIRN_MIN(arch.len, 64), arch.ptr);
    snprintf(m->arch_name, sizeof m->arch_name, "%s", model_arch_name(m->hp.arch));
    CAIRN_TRY(load_hparams(m));
    model_hparams *hp = &m->hp;

    const gguf_tensor *te = gguf_tensor_find(m->gguf, "token_embd.weight");
    if (!te)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing tensor token_embd.weight", gguf_path(m->gguf));
    if (te->ne[1] < 1 || te->ne[1] > MODEL_MAX_VOCAB)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: vocabulary size %lld out of range", gguf_path(m->gguf),
                          (long long)te->ne[1]);
    hp->n_vocab = (int)te->ne[1];
    CAIRN_TRY(bind_matrix(m, "token_embd.weight", hp->n_vocab, hp->n_embd, true, &m->tok_embd));
    CAIRN_TRY(bind_vector(m, "output_norm.weight", hp->n_embd, true, &m->output_norm));
    CAIRN_TRY(bind_matrix(m, "output.weight", hp->n_vocab, hp->n_embd, false, &m->output));
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    CAIRN_TRY(bind_vector(m, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs));
    if (!m->rope_freqs && hp->rope_scaling_type == ROPE_SCALING_LLAMA3)
        CAIRN_TRY(llama3_rope_freqs(m));

    m->layers = cairn_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return cairn_fail(CAIRN_ERR_NOMEM, "model: out of memory");
    for (int il = 0; il < hp->n_layer; il++)
        CAIRN_TRY(bind_layer(m, il));
    if (hp->n_expert > 0 && !m->wmem && !m->huge_mapped)
        advise_moe(m);     /* only the plain mapping pages experts in one by one */
    return CAIRN_OK;
}

bool model_thp_usable(const char *env, const char *sys_line)
{
    if (env && *env) {
        if (!strcmp(env, "0") || !strcasecmp(env, "off") || !strcasecmp(env, "never") || !strcasecmp(env, "no"))
            return false;
        if (!strcmp(env, "1") || !strcasecmp(env, "on") || !strcasecmp(env, "yes"))
            return true;
    }
    return sys_line && (strstr(sys_line, "[always]") || strstr(sys_line, "[madvise]"));
}

/* Transparent huge pages usable by madvise: "always" or "madvise" selected
 * in /sys, unless CAIRN_THP overrides (model_thp_usable). */
static bool thp_available(void)
{
    char line[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = 0;
        fclose(f);
    }
    return model_thp_usable(getenv("CAIRN_THP"), line);
}

bool model_copy_fits(size_t total, bool avail_known, uint64_t avail)
{
    return total > 0 && (!avail_known || total <= avail / 10 * 8);
}

#define HUGE_PAGE ((size_t)2 << 20)

/* Reserve room for every matrix the model may copy (all tensors of two or
 * more dimensions but an untied token_embd), 2 MiB aligned and marked for
 * huge pages before anything touches it. Pages are only committed as
 * place() fills them. No room (or no huge pages under AUTO) = stay mapped. */
static void weights_reserve(cairn_model *m, model_weights where)
{
    if (where == MODEL_WEIGHTS_MAPPED || (where == MODEL_WEIGHTS_AUTO && !thp_available()))
        return;
    size_t total = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        if (!weight_tensor(m, t))
            continue;
        if (t->nbytes > SIZE_MAX / 2 - total)
            return;
        total += (t->nbytes + 63) & ~(size_t)63;
    }
    total = (total + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    /* Memory is overcommitted, so an allocation that cannot be backed still
     * succeeds and the copy would end in the OOM killer: copy only what fits
     * well inside available memory (the file's own page cache counts as
     * available, and the copy displaces it). A larger model stays mapped
     * and is paged on demand. */
    uint64_t avail = 0;
    bool known = cairn_proc_kb("/proc/meminfo", "MemAvailable", &avail);
    if (!model_copy_fits(total, known, avail))
        return;
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, total))
        return;
    madvise(p, total, MADV_HUGEPAGE);     /* advisory: 4 KiB pages if refused */
    m->wmem = p;
    m->wmem_size = total;
}

size_t model_copied_bytes(const cairn_model *m) { return m && m->wmem ? m->wmem_used : 0; }

size_t model_huge_bytes(const cairn_model *m)
{
    if (!m)
        return 0;
    if (m->wmem)   /* the last 2 MiB page may run past the copied bytes */
        return CAIRN_MIN((size_t)cairn_smaps_bytes(m->wmem, m->wmem_size, "AnonHugePages"), m->wmem_used);
    const void *map = gguf_map(m->gguf);
    return map ? (size_t)cairn_smaps_bytes(map, gguf_file_size(m->gguf), "FilePmdMapped") : 0;
}

/* Fault in every 2 MiB page of the weight tensors (one read each); returns
 * how many bytes of them could sit on 2 MiB entries: the 2 MiB pages of the
 * (2 MiB-aligned) mapping they touch that lie wholly inside the file. The
 * first forward pass would fault them in anyway. */
static size_t touch_weights(const cairn_model *m)
{
    const uint8_t *map = gguf_map(m->gguf);
    size_t n_pages = gguf_file_size(m->gguf) / HUGE_PAGE, total = 0;
    uint8_t *seen = cairn_calloc(n_pages / 8 + 1, 1);
    if (!seen)
        return 0;
    unsigned sink = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        if (!weight_tensor(m, t) || !t->nbytes)
            continue;
        const volatile uint8_t *p = t->data;
        for (size_t o = 0; o < t->nbytes; o += HUGE_PAGE - ((uintptr_t)(p + o) & (HUGE_PAGE - 1))) {
            sink += p[o];
            size_t k = (size_t)((const uint8_t *)(uintptr_t)(p + o) - map) / HUGE_PAGE;
            if (k < n_pages && !(seen[k / 8] & (1u << (k % 8)))) {
                seen[k / 8] |= (uint8_t)(1u << (k % 8));
                total += HUGE_PAGE;
            }
        }
    }
    cairn_free(seen);
    __asm__ volatile("" ::"r"(sink));
    return total;
}

/* MODEL_WEIGHTS_MAP_HUGE (--weights mmap-huge): the weights stay in the file mapping
 * but on 2 MiB pages. With MADV_HUGEPAGE a fault reads the page cache in
 * 2 MiB folios and maps each with one entry, if the file system supports
 * large folios (ext4 and xfs on recent kernels) and the range is not cached
 * in smaller folios already. So: advise, fault the weights in and ask smaps
 * how much came on 2 MiB entries; if too little and the file was cached,
 * unmap, write back and drop the file's cached pages (other processes'
 * mapped pages stay) and try once more. Nothing is copied, RSS is the
 * mapped weights as before, and later runs find the 2 MiB folios cached.
 * On failure our pages are unmapped again (the copy must not come on top). */
static bool weights_map_huge(cairn_model *m)
{
    const gguf_file *g = m->gguf;
    const uint8_t *map = gguf_map(g);
    int fd = gguf_fd(g);
    size_t size = gguf_file_size(g), off = (size_t)gguf_data_offset(g);
    if (!map || fd < 0 || off >= size)
        return false;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), lo = off / pg * pg, n = size - lo;
    if (madvise((void *)(map + lo), n, MADV_HUGEPAGE))
        return false;
    bool cached = false;
    unsigned char *res = cairn_malloc(n / pg + 1);
    if (res && !mincore((void *)(map + lo), n, res))
        for (size_t i = 0; i < (n + pg - 1) / pg && !cached; i++)
            cached = res[i] & 1;
    cairn_free(res);
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t want = touch_weights(m);
        if (want < 4 * HUGE_PAGE)
            break;                      /* small model: the copy is cheap and exact */
        if (cairn_smaps_bytes(map, size, "FilePmdMapped") >= want / 10 * 9)
            return true;
        madvise((void *)(map + lo), n, MADV_DONTNEED);   /* unmap our 4 KiB entries */
        if (attempt || !cached)
            break;                      /* read fresh and still small: the file system keeps small folios */
        fdatasync(fd);
        posix_fadvise(fd, (off_t)lo, (off_t)n, POSIX_FADV_DONTNEED);
    }
    madvise((void *)(map + lo), n, MADV_DONTNEED);
    return false;
}

cairn_status model_from_gguf(gguf_file *g, cairn_model **out)
{
    return model_from_gguf_ex(g, MODEL_WEIGHTS_AUTO, out);
}

cairn_status model_from_gguf_ex(gguf_file *g, model_weights where, cairn_model **out)
{
    *out = NULL;
    cairn_model *m = cairn_calloc(1, sizeof *m);
    if (!m) {
        gguf_close(g);
        return cairn_fail(CAIRN_ERR_NOMEM, "model: out of memory");
    }
    m->gguf = g;
    kernels_init();   /* the type table must be filled before qtype_get */
    if (where == MODEL_WEIGHTS_MAP_HUGE && thp_available())
        m->huge_mapped = weights_map_huge(m);
    if (!m->huge_mapped) {
        /* Whatever is still read through the mapping (metadata, norm
         * vectors, MoE experts under MAPPED) is read sparsely: the mapping
         * starts on a 2 MiB boundary, so a page cache holding 2 MiB folios
         * would map a whole folio for every small read (+35-70 MiB of RSS
         * for TinyLlama's norms). 4 KiB entries only. */
        const void *map = gguf_map(g);
        if (map)
            madvise((void *)map, gguf_file_size(g), MADV_NOHUGEPAGE);
        weights_reserve(m, where == MODEL_WEIGHTS_MAP_HUGE ? MODEL_WEIGHTS_AUTO : where);
    }
    cairn_status st = bind_all(m);
    if (st != CAIRN_OK) {
        model_free(m);
        return st;
    }
    *out = m;
    return CAIRN_OK;
}

cairn_status model_load(const char *path, cairn_model **out)
{
    return model_load_ex(path, MODEL_WEIGHTS_AUTO, out);
}

cairn_status model_load_ex(const char *path, model_weights where, cairn_model **out)
{
    *out = NULL;
    gguf_file *g;
    CAIRN_TRY(gguf_open(path, &g));
    return model_from_gguf_ex(g, where, out);
}

void model_free(cairn_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_owned; i++)
        cairn_free(m->owned[i]);
    cairn_free(m->owned);
    cairn_free(m->layers);
    free(m->wmem);
    gguf_close(m->gguf);
    cairn_free(m);
}

static uint64_t qmat_bytes(const qmat *w)
{
    return w->data ? (uint64_t)qtype_row_size(w->type, w->cols) * (uint64_t)w->rows : 0;
}

uint64_t model_weight_bytes_per_token(const cairn_model *m)
{
    const model_hparams *hp = &m->hp;
    uint64_t b = qtype_row_size(m->tok_embd.type, hp->n_embd) + qmat_bytes(&m->output);
    b += (uint64_t)hp->n_embd * sizeof(float);
    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        b += qmat_bytes(&L->wq) + qmat_bytes(&L->wk) + qmat_bytes(&L->wv) + qmat_bytes(&L->wo);
        b += qmat_bytes(&L->ffn_gate) + qmat_bytes(&L->ffn_up) + qmat_bytes(&L->ffn_down);
        /* MoE: the router, the chosen experts and the shared expert */
        b += qmat_bytes(&L->ffn_gate_inp) + qmat_bytes(&L->gate_shexp) + qmat_bytes(&L->up_shexp) +
             qmat_bytes(&L->down_shexp);
        b += (uint64_t)hp->n_expert_used * (qmat_bytes(&L->gate_exps) + qmat_bytes(&L->up_exps) + qmat_bytes(&L->down_exps));
        b += 2 * (uint64_t)hp->n_embd * sizeof(float);
    }
    return b;
}

uint64_t model_n_active_params(const cairn_model *m)
{
    const model_hparams *hp = &m->hp;
    uint64_t per_expert = 3 * (uint64_t)hp->n_ff_exp * (uint64_t)hp->n_embd;
    uint64_t idle = hp->n_expert ? (uint64_t)(hp->n_expert - hp->n_expert_used) * per_expert * (uint64_t)hp->n_layer : 0;
    return model_n_params(m) - idle;
}

uint64_t model_n_params(const cairn_model *m)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        uint64_t e = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
            e *= (uint64_t)(t->ne[d] > 0 ? t->ne[d] : 1);
        n += e;
    }
    return n;
}
