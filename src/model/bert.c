/*
 * bert.c — bind a BERT-family encoder ("bert", "nomic-bert") from GGUF
 * metadata and tensors (names and shapes in bert.h).
 *
 * Order: architecture → hyper-parameters (validated against caps) →
 * embeddings → layers → optional classification head → prefixes and id.
 * Every tensor's type and shape is checked here, so the forward pass
 * (embed.c) trusts them. Weights stay in the file mapping: an encoder runs
 * every matrix over hundreds of tokens at once, so weights are reused from
 * cache and the 4 KiB-page TLB cost that made decode copy them is noise.
 */
#include "model/bert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BERT_MAX_LAYERS 256
#define BERT_MAX_EMBD 8192
#define BERT_MAX_FF 65536
#define BERT_MAX_HEADS 256
#define BERT_MAX_CTX 32768          /* also bounds the attention scratch */
#define BERT_MAX_CLS_OUT 4096

static cairn_status keep(cairn_embedder *e, void *p)
{
    if (e->n_owned == e->cap_owned) {
        int cap = e->cap_owned ? 2 * e->cap_owned : 32;
        void **n = cairn_reallocarray(e->owned, (size_t)cap, sizeof *n);
        if (!n) {
            cairn_free(p);
            return cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory");
        }
        e->owned = n;
        e->cap_owned = cap;
    }
    e->owned[e->n_owned++] = p;
    return CAIRN_OK;
}

static cairn_status meta_u32(const cairn_embedder *e, const char *key, bool required, uint32_t def, uint32_t lo,
                             uint32_t hi, int *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", e->arch, key);
    uint32_t v = def;
    cairn_status st = gguf_get_u32(e->g, full, &v);
    if (st == CAIRN_ERR_NOT_FOUND && !required) {
        cairn_clear_error();
        v = def;
    } else if (st == CAIRN_ERR_NOT_FOUND) {
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing metadata %s", gguf_path(e->g), full);
    } else if (st != CAIRN_OK) {
        return cairn_fail_wrap(st, "%s", full);
    }
    if (v < lo || v > hi)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s = %u out of range [%u, %u]", gguf_path(e->g), full, v, lo, hi);
    *out = (int)v;
    return CAIRN_OK;
}

static cairn_status meta_f32(const cairn_embedder *e, const char *key, float def, float *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", e->arch, key);
    cairn_status st = gguf_get_f32(e->g, full, out);
    if (st == CAIRN_ERR_NOT_FOUND) {
        cairn_clear_error();
        *out = def;
        return CAIRN_OK;
    }
    if (st != CAIRN_OK)
        return cairn_fail_wrap(st, "%s", full);
    if (!isfinite(*out))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %s is not finite", gguf_path(e->g), full);
    return CAIRN_OK;
}

/* A 2-D matrix of `rows` x `cols` (ne[0] = cols) in a type the kernels can
 * multiply. Absent and !required: data stays NULL. */
static cairn_status bind_mat(cairn_embedder *e, const char *name, int64_t rows, int64_t cols, bool required, qmat *out)
{
    memset(out, 0, sizeof *out);
    const gguf_tensor *t = gguf_tensor_find(e->g, name);
    if (!t) {
        if (!required)
            return CAIRN_OK;
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing tensor %s", gguf_path(e->g), name);
    }
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld]",
                          gguf_path(e->g), name, (long long)t->ne[0], (long long)t->ne[1], (long long)cols,
                          (long long)rows);
    const qtype_traits *qt = qtype_get(t->type);
    if (!qt || !qt->vec_dot || !qt->to_float)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: tensor %s: type %u not supported", gguf_path(e->g), name,
                          t->type);
    if (cols % qt->block_size)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s: row of %lld values is not whole %s blocks",
                          gguf_path(e->g), name, (long long)cols, qt->name);
    *out = (qmat){t->type, rows, cols, t->data};
    return CAIRN_OK;
}

/* A per-channel vector of n floats; F32 is used in place, F16/BF16 converted once. */
static cairn_status bind_vec(cairn_embedder *e, const char *name, int64_t n, bool required, const float **out)
{
    *out = NULL;
    const gguf_tensor *t = gguf_tensor_find(e->g, name);
    if (!t) {
        if (!required)
            return CAIRN_OK;
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: missing tensor %s", gguf_path(e->g), name);
    }
    if (gguf_tensor_nelements(t) != n || t->ne[0] != n)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s has %lld values, expected %lld", gguf_path(e->g), name,
                          (long long)gguf_tensor_nelements(t), (long long)n);
    if (t->type == QT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = t->data;
        return CAIRN_OK;
    }
    const qtype_traits *qt = qtype_get(t->type);
    if (!qt || !qt->to_float || n % qt->block_size)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: tensor %s: type %u not supported for a vector",
                          gguf_path(e->g), name, t->type);
    float *v = cairn_malloc((size_t)n * sizeof *v);
    if (!v)
        return cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory");
    qt->to_float(t->data, v, n);
    CAIRN_TRY(keep(e, v));
    *out = v;
    return CAIRN_OK;
}

static cairn_status bind_layer(cairn_embedder *e, int il, bert_layer *L)
{
    char n[96];
    int64_t d = e->d, ff = e->n_ff;
#define T(suffix) (snprintf(n, sizeof n, "blk.%d.%s", il, suffix), n)
    CAIRN_TRY(bind_mat(e, T("attn_qkv.weight"), 3 * d, d, false, &L->wqkv));
    if (L->wqkv.data) {
        CAIRN_TRY(bind_vec(e, T("attn_qkv.bias"), 3 * d, false, &L->bqkv));
    } else {
        CAIRN_TRY(bind_mat(e, T("attn_q.weight"), d, d, true, &L->wq));
        CAIRN_TRY(bind_mat(e, T("attn_k.weight"), d, d, true, &L->wk));
        CAIRN_TRY(bind_mat(e, T("attn_v.weight"), d, d, true, &L->wv));
        CAIRN_TRY(bind_vec(e, T("attn_q.bias"), d, false, &L->bq));
        CAIRN_TRY(bind_vec(e, T("attn_k.bias"), d, false, &L->bk));
        CAIRN_TRY(bind_vec(e, T("attn_v.bias"), d, false, &L->bv));
    }
    CAIRN_TRY(bind_mat(e, T("attn_output.weight"), d, d, true, &L->wo));
    CAIRN_TRY(bind_vec(e, T("attn_output.bias"), d, false, &L->bo));
    CAIRN_TRY(bind_vec(e, T("attn_output_norm.weight"), d, true, &L->ln1_w));
    CAIRN_TRY(bind_vec(e, T("attn_output_norm.bias"), d, false, &L->ln1_b));
    CAIRN_TRY(bind_mat(e, T("ffn_up.weight"), ff, d, true, &L->up));
    CAIRN_TRY(bind_mat(e, T("ffn_gate.weight"), ff, d, e->nomic, &L->gate));
    CAIRN_TRY(bind_mat(e, T("ffn_down.weight"), d, ff, true, &L->down));
    CAIRN_TRY(bind_vec(e, T("ffn_up.bias"), ff, false, &L->b_up));
    CAIRN_TRY(bind_vec(e, T("ffn_down.bias"), d, false, &L->b_down));
    CAIRN_TRY(bind_vec(e, T("layer_output_norm.weight"), d, true, &L->ln2_w));
    CAIRN_TRY(bind_vec(e, T("layer_output_norm.bias"), d, false, &L->ln2_b));
    if (e->nomic && L->gate.type != L->up.type)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: blk.%d: ffn_gate and ffn_up of different types",
                          gguf_path(e->g), il);
    if (!e->nomic && gguf_tensor_find(e->g, T("ffn_gate.weight")))
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: blk.%d has ffn_gate: a gated bert FFN is not supported",
                          gguf_path(e->g), il);
#undef T
    return CAIRN_OK;
}

/* Prefixes by name: e5 ("query: " / "passage: "), nomic ("search_query: " /
 * "search_document: "), else none. The name is general.name or the file name. */
static void pick_prefixes(cairn_embedder *e)
{
    char low[256];
    snprintf(low, sizeof low, "%s %s", e->name, gguf_path(e->g));
    for (char *p = low; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    e->query_prefix = e->doc_prefix = "";
    if (e->nomic || strstr(low, "nomic")) {
        e->query_prefix = "search_query: ";
        e->doc_prefix = "search_document: ";
    } else if (strstr(low, "e5-") || strstr(low, "e5_") || strstr(low, "-e5") || strstr(low, "_e5")) {
        e->query_prefix = "query: ";
        e->doc_prefix = "passage: ";
    }
}

/* name@hash of every tensor's name, type, shape and offset: the same file
 * layout gives the same id, a requantized or reshaped model another. */
static void make_id(cairn_embedder *e)
{
    uint64_t h = 0x2545f4914f6cdd1dull;
    for (uint64_t i = 0; i < gguf_tensor_count(e->g); i++) {
        const gguf_tensor *t = gguf_tensor_at(e->g, i);
        uint64_t rec[2 + GGUF_MAX_DIMS] = {t->type, t->offset, 0, 0, 0, 0};
        for (uint32_t k = 0; k < GGUF_MAX_DIMS; k++)
            rec[2 + k] = (uint64_t)t->ne[k];
        h = h * 0x100000001b3ull ^ cairn_hash64(t->name.ptr, (size_t)t->name.len);
        h = h * 0x100000001b3ull ^ cairn_hash64(rec, sizeof rec);
    }
    snprintf(e->id, sizeof e->id, "%s@%016llx", e->name, (unsigned long long)h);
}

cairn_status bert_bind(gguf_file *g, cairn_embedder *e)
{
    e->g = g;
    gguf_str s;
    if (gguf_get_str(g, "general.architecture", &s) != CAIRN_OK)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: no general.architecture", gguf_path(g));
    if (gguf_str_eq(s, "bert") || gguf_str_eq(s, "nomic-bert")) {
        snprintf(e->arch, sizeof e->arch, "%.*s", (int)s.len, s.ptr);
    } else {
        return cairn_fail(CAIRN_ERR_UNSUPPORTED,
                          "%s: not an encoder: architecture '%.*s' (embeddings need bert or nomic-bert)",
                          gguf_path(g), (int)CAIRN_MIN(s.len, 64), s.ptr);
    }
    e->nomic = !strcmp(e->arch, "nomic-bert");
    if (gguf_get_str(g, "general.name", &s) == CAIRN_OK)
        snprintf(e->name, sizeof e->name, "%.*s", (int)CAIRN_MIN(s.len, 120), s.ptr);
    else {
        const char *base = strrchr(gguf_path(g), '/');
        snprintf(e->name, sizeof e->name, "%s", base ? base + 1 : gguf_path(g));
    }
    cairn_clear_error();

    CAIRN_TRY(meta_u32(e, "block_count", true, 0, 1, BERT_MAX_LAYERS, &e->n_layer));
    CAIRN_TRY(meta_u32(e, "embedding_length", true, 0, 1, BERT_MAX_EMBD, &e->d));
    CAIRN_TRY(meta_u32(e, "feed_forward_length", true, 0, 1, BERT_MAX_FF, &e->n_ff));
    CAIRN_TRY(meta_u32(e, "attention.head_count", true, 0, 1, BERT_MAX_HEADS, &e->n_head));
    CAIRN_TRY(meta_u32(e, "context_length", false, 512, 2, 1u << 24, &e->n_ctx));
    e->n_ctx = CAIRN_MIN(e->n_ctx, BERT_MAX_CTX);
    if (e->d % e->n_head)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: head_count %d does not divide embedding_length %d",
                          gguf_path(g), e->n_head, e->d);
    e->hd = e->d / e->n_head;
    int kv;
    CAIRN_TRY(meta_u32(e, "attention.head_count_kv", false, (uint32_t)e->n_head, 1, BERT_MAX_HEADS, &kv));
    if (kv != e->n_head)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: grouped-query attention in an encoder", gguf_path(g));
    CAIRN_TRY(meta_f32(e, "attention.layer_norm_epsilon", 1e-12f, &e->eps));
    if (!(e->eps >= 0 && e->eps < 1))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: layer_norm_epsilon %g out of range", gguf_path(g), (double)e->eps);
    char key[64];
    snprintf(key, sizeof key, "%s.attention.causal", e->arch);
    bool causal = false;
    if (gguf_get_bool(g, key, &causal) == CAIRN_OK && causal)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s: causal attention: not a bidirectional encoder", gguf_path(g));
    cairn_clear_error();
    int pool;
    CAIRN_TRY(meta_u32(e, "pooling_type", false, 1, 0, 4, &pool));
    /* 0 (none: per-token vectors) has no sentence vector; mean is what a
     * sentence embedding of such a model conventionally is. */
    e->pooling = pool == 2 ? EMBED_POOL_CLS : pool == 3 ? EMBED_POOL_LAST : pool == 4 ? EMBED_POOL_RANK
                                                                                   : EMBED_POOL_MEAN;

    /* embeddings */
    const gguf_tensor *te = gguf_tensor_find(g, "token_embd.weight");
    if (!te || te->n_dims != 2 || te->ne[0] != e->d || te->ne[1] < 1 || te->ne[1] > (1 << 22))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: token_embd.weight missing or not [%d, n_vocab]", gguf_path(g), e->d);
    e->n_vocab = (int)te->ne[1];
    CAIRN_TRY(bind_mat(e, "token_embd.weight", e->n_vocab, e->d, true, &e->tok_embd));
    if (!e->nomic) {
        const gguf_tensor *tp = gguf_tensor_find(g, "position_embd.weight");
        if (!tp || tp->n_dims != 2 || tp->ne[0] != e->d || tp->ne[1] < 2)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: position_embd.weight missing or not [%d, n_ctx]", gguf_path(g),
                              e->d);
        /* positions beyond the table cannot be embedded: the table bounds the context */
        e->n_ctx = (int)CAIRN_MIN((int64_t)e->n_ctx, tp->ne[1]);
        CAIRN_TRY(bind_mat(e, "position_embd.weight", tp->ne[1], e->d, true, &e->pos_embd));
    }
    const gguf_tensor *tt = gguf_tensor_find(g, "token_types.weight");
    if (tt) {
        if (tt->n_dims != 2 || tt->ne[1] < 1 || tt->ne[1] > 16)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: token_types.weight has a bad shape", gguf_path(g));
        CAIRN_TRY(bind_mat(e, "token_types.weight", tt->ne[1], e->d, true, &e->type_embd));
    }
    CAIRN_TRY(bind_vec(e, "token_embd_norm.weight", e->d, true, &e->tok_ln_w));
    CAIRN_TRY(bind_vec(e, "token_embd_norm.bias", e->d, false, &e->tok_ln_b));

    e->layers = cairn_calloc((size_t)e->n_layer, sizeof *e->layers);
    if (!e->layers)
        return cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory");
    for (int il = 0; il < e->n_layer; il++)
        CAIRN_TRY(bind_layer(e, il, &e->layers[il]));

    if (e->nomic) {
        float base;
        CAIRN_TRY(meta_f32(e, "rope.freq_base", 10000.0f, &base));
        if (!(base > 1.0f))
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: rope.freq_base %g invalid", gguf_path(g), (double)base);
        CAIRN_TRY(meta_u32(e, "rope.dimension_count", false, (uint32_t)e->hd, 2, (uint32_t)e->hd, &e->n_rot));
        if (e->n_rot % 2)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: odd rope.dimension_count", gguf_path(g));
        size_t n = (size_t)e->n_ctx * (size_t)(e->n_rot / 2);
        e->rope_cos = cairn_malloc(n * sizeof(float));
        CAIRN_TRY(e->rope_cos ? keep(e, e->rope_cos) : cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory"));
        e->rope_sin = cairn_malloc(n * sizeof(float));
        CAIRN_TRY(e->rope_sin ? keep(e, e->rope_sin) : cairn_fail(CAIRN_ERR_NOMEM, "embedder: out of memory"));
        int half = e->n_rot / 2;
        for (int p = 0; p < e->n_ctx; p++)
            for (int i = 0; i < half; i++) {
                double th = (double)p * pow((double)base, -2.0 * i / e->n_rot);
                e->rope_cos[(size_t)p * half + i] = (float)cos(th);
                e->rope_sin[(size_t)p * half + i] = (float)sin(th);
            }
    }

    /* classification head */
    CAIRN_TRY(bind_mat(e, "cls.weight", e->d, e->d, false, &e->cls));
    CAIRN_TRY(bind_vec(e, "cls.bias", e->d, false, &e->cls_b));
    const gguf_tensor *to = gguf_tensor_find(g, "cls.output.weight");
    if (to) {
        if (to->n_dims != 2 || to->ne[1] < 1 || to->ne[1] > BERT_MAX_CLS_OUT)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: cls.output.weight has a bad shape", gguf_path(g));
        CAIRN_TRY(bind_mat(e, "cls.output.weight", to->ne[1], e->d, true, &e->cls_out));
        CAIRN_TRY(bind_vec(e, "cls.output.bias", to->ne[1], false, &e->cls_out_b));
    }
    if (e->pooling == EMBED_POOL_RANK && !e->cls.data && !e->cls_out.data)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: pooling type rank without a classification head (cls, cls.output)",
                          gguf_path(g));

    CAIRN_TRY(tokenizer_load(g, &e->tok));
    if (tokenizer_n_vocab(e->tok) > e->n_vocab)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: %d tokens in the vocabulary but %d embedding rows", gguf_path(g),
                          tokenizer_n_vocab(e->tok), e->n_vocab);
    pick_prefixes(e);
    make_id(e);
    return CAIRN_OK;
}

void bert_unbind(cairn_embedder *e)
{
    for (int i = 0; i < e->n_owned; i++)
        cairn_free(e->owned[i]);
    cairn_free(e->owned);
    cairn_free(e->layers);
    tokenizer_free(e->tok);
    gguf_close(e->g);
}
