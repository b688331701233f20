/*
 * testmodel.c — random-weight llama-family GGUF models (see testmodel.h).
 *
 * Each tensor is generated from its own stream (seed mixed with the tensor
 * name), converted to its type and handed to the GGUF writer, so changing
 * one tensor's type never changes another tensor's values.
 */
#include "gguf/testmodel.h"
#include "kernels/quant.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

void gguf_testmodel_defaults(gguf_testmodel_params *p)
{
    memset(p, 0, sizeof *p);
    p->arch = "llama";
    p->n_vocab = 320;
    p->n_embd = 64;
    p->n_layer = 2;
    p->n_head = 4;
    p->n_ctx = 256;
    p->qkv_bias = -1;
    p->weight_type = QT_F32;
    p->embd_type = -1;
    p->output_type = -1;
    p->expert_weights_norm = -1;
    p->pooling_type = -1;
}

/* ---- random values ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float unif(uint64_t *s) { return (float)(splitmix(s) >> 40) / (float)(1 << 23) - 1.0f; }

typedef enum { FILL_MATRIX, FILL_NORM, FILL_BIAS } fill_kind;

/* ---- vocabularies ---- */

typedef struct vocab {
    char **tok;
    float *score;
    int32_t *type;
    char **merges;
    int n, n_merges;
} vocab;

static void vocab_free(vocab *v)
{
    for (int i = 0; i < v->n; i++)
        cairn_free(v->tok[i]);
    for (int i = 0; i < v->n_merges; i++)
        cairn_free(v->merges[i]);
    cairn_free(v->tok);
    cairn_free(v->score);
    cairn_free(v->type);
    cairn_free(v->merges);
}

static cairn_status vocab_add(vocab *v, const char *s, float score, int32_t type)
{
    char *d = cairn_strdup(s);
    if (!d)
        return cairn_fail(CAIRN_ERR_NOMEM, "synth: out of memory");
    v->tok[v->n] = d;
    v->score[v->n] = score;
    v->type[v->n] = type;
    v->n++;
    return CAIRN_OK;
}

static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz";

/* UTF-8 of code point c into out (c < 0x800 suffices here). */
static int utf8(unsigned c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = (char)(0xc0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3f));
    return 2;
}

/* GPT-2 byte-level alphabet: printable bytes map to themselves, the others to 256 + k. */
static unsigned byte_symbol(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    unsigned k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174))
            k++;
    return 256 + k;
}

/* Pieces beyond the fixed tokens: level 1 = prefix + letter, level 2 = level-1 piece + letter, ...
 * `prefix` is "\xe2\x96\x81" (SPM) or "\xc4\xa0" (BPE: the byte symbol of ' '). For BPE each
 * piece has a merge "left right". */
static cairn_status vocab_pieces(vocab *v, int n_total, const char *prefix, bool bpe)
{
    int level_start = v->n, level_end;
    /* Level 1: prefix + letter (merge "prefix letter"), and bare letter pairs for BPE. */
    for (int i = 0; i < 26 && v->n < n_total; i++) {
        char s[16], m[32];
        snprintf(s, sizeof s, "%s%c", prefix, letters[i]);
        CAIRN_TRY(vocab_add(v, s, -(float)v->n, 1));
        if (bpe) {
            snprintf(m, sizeof m, "%s %c", prefix, letters[i]);
            if (!(v->merges[v->n_merges] = cairn_strdup(m)))
                return cairn_fail(CAIRN_ERR_NOMEM, "synth: out of memory");
            v->n_merges++;
        }
    }
    level_end = v->n;
    while (v->n < n_total && level_end > level_start) {
        for (int i = level_start; i < level_end && v->n < n_total; i++) {
            for (int j = 0; j < 26 && v->n < n_total; j++) {
                size_t len = strlen(v->tok[i]);
                if (len > 40)
                    continue;
                char s[64], m[80];
                snprintf(s, sizeof s, "%s%c", v->tok[i], letters[j]);
                CAIRN_TRY(vocab_add(v, s, -(float)v->n, 1));
                if (bpe) {
                    snprintf(m, sizeof m, "%s %c", v->tok[i], letters[j]);
                    if (!(v->merges[v->n_merges] = cairn_strdup(m)))
                        return cairn_fail(CAIRN_ERR_NOMEM, "synth: out of memory");
                    v->n_merges++;
                }
            }
        }
        level_start = level_end;
        level_end = v->n;
    }
    if (v->n < n_total)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: cannot make %d distinct tokens", n_total);
    return CAIRN_OK;
}

static cairn_status vocab_build(vocab *v, bool bpe, int n_vocab)
{
    memset(v, 0, sizeof *v);
    v->tok = cairn_calloc((size_t)n_vocab, sizeof *v->tok);
    v->score = cairn_calloc((size_t)n_vocab, sizeof *v->score);
    v->type = cairn_calloc((size_t)n_vocab, sizeof *v->type);
    v->merges = cairn_calloc((size_t)n_vocab, sizeof *v->merges);
    if (!v->tok || !v->score || !v->type || !v->merges)
        return cairn_fail(CAIRN_ERR_NOMEM, "synth: out of memory");
    if (!bpe) {
        CAIRN_TRY(vocab_add(v, "<unk>", 0, 2));
        CAIRN_TRY(vocab_add(v, "<s>", 0, 3));
        CAIRN_TRY(vocab_add(v, "</s>", 0, 3));
        for (unsigned b = 0; b < 256; b++) {
            char s[8];
            snprintf(s, sizeof s, "<0x%02X>", b);
            CAIRN_TRY(vocab_add(v, s, 0, 6));
        }
        return vocab_pieces(v, n_vocab, "\xe2\x96\x81", false);
    }
    for (unsigned b = 0; b < 256; b++) {
        char s[4] = {0};
        utf8(byte_symbol(b), s);
        CAIRN_TRY(vocab_add(v, s, 0, 1));
    }
    CAIRN_TRY(vocab_pieces(v, n_vocab - 1, "\xc4\xa0", true));
    return vocab_add(v, "<|endoftext|>", 0, 3);
}

/* ---- tensors ---- */

typedef struct synth {
    gguf_writer *w;
    const gguf_testmodel_params *p;
} synth;

static cairn_status add_tensor(synth *s, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                               fill_kind kind)
{
    int64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        nel *= ne[d];
    const gguf_ttype_info *ti = gguf_ttype(type);
    if (!ti)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: %s: unknown type %u", name, type);
    if (ne[0] % ti->block_size)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: %s: row length %lld is not a multiple of the %s block size %u",
                          name, (long long)ne[0], ti->name, ti->block_size);
    const qtype_traits *qt = NULL;
    if (type != QT_F32 && type != QT_F16 && type != QT_BF16) {
        qt = qtype_get(type);
        if (!qt || !qt->from_float)
            return cairn_fail(CAIRN_ERR_UNSUPPORTED, "synth: %s: no quantizer for %s", name, ti->name);
    }
    size_t nbytes = (size_t)gguf_ttype_nbytes(type, nel);
    uint8_t *out = cairn_malloc(nbytes ? nbytes : 1);
    float *row = cairn_malloc((size_t)ne[0] * sizeof(float));
    if (!out || !row) {
        cairn_free(out);
        cairn_free(row);
        return cairn_fail(CAIRN_ERR_NOMEM, "synth: out of memory for %s", name);
    }
    uint64_t st = s->p->seed ^ cairn_hash64(name, strlen(name));
    float scale = s->p->weight_scale;
    size_t row_bytes = (size_t)gguf_ttype_nbytes(type, ne[0]);
    for (int64_t r = 0; r < nel / ne[0]; r++) {
        for (int64_t i = 0; i < ne[0]; i++) {
            float u = unif(&st);
            row[i] = kind == FILL_NORM ? 1.0f + 0.1f * u : kind == FILL_BIAS ? 0.1f * u : scale * u;
        }
        uint8_t *dst = out + (size_t)r * row_bytes;
        if (type == QT_F32) {
            memcpy(dst, row, (size_t)ne[0] * 4);
        } else if (type == QT_F16 || type == QT_BF16) {
            for (int64_t i = 0; i < ne[0]; i++) {
                uint16_t h = type == QT_F16 ? fp32_to_fp16(row[i]) : fp32_to_bf16(row[i]);
                memcpy(dst + 2 * i, &h, 2);
            }
        } else {
            qt->from_float(row, dst, ne[0]);
        }
    }
    cairn_free(row);
    return gguf_writer_add_tensor_take(s->w, name, type, n_dims, ne, out, nbytes);
}

static uint32_t file_type_of(uint32_t t)
{
    switch (t) {
    case QT_F32: return 0;
    case QT_F16: return 1;
    case QT_Q4_0: return 2;
    case QT_Q4_1: return 3;
    case QT_Q8_0: return 7;
    case QT_Q5_0: return 8;
    case QT_Q5_1: return 9;
    case QT_Q2_K: return 10;
    case QT_Q3_K: return 12;
    case QT_Q4_K: return 15;
    case QT_Q5_K: return 17;
    case QT_Q6_K: return 18;
    case QT_BF16: return 32;
    default: return 0;
    }
}

static cairn_status write_meta(synth *s, const gguf_testmodel_params *p, bool qwen, int rope_dim)
{
    gguf_writer *w = s->w;
    char key[128], name[128];
    const char *a = p->arch;
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    snprintf(name, sizeof name, "cairn-synth-%s", a);
    CAIRN_TRY(gguf_writer_set_str(w, "general.architecture", a));
    CAIRN_TRY(gguf_writer_set_str(w, "general.name", p->name ? p->name : name));
    CAIRN_TRY(gguf_writer_set_u32(w, K("context_length"), (uint32_t)p->n_ctx));
    CAIRN_TRY(gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)p->n_embd));
    CAIRN_TRY(gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)p->n_ff));
    CAIRN_TRY(gguf_writer_set_u32(w, K("block_count"), (uint32_t)p->n_layer));
    CAIRN_TRY(gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)p->n_head));
    CAIRN_TRY(gguf_writer_set_u32(w, K("attention.head_count_kv"), (uint32_t)p->n_head_kv));
    CAIRN_TRY(gguf_writer_set_f32(w, K("rope.freq_base"), p->rope_freq_base));
    CAIRN_TRY(gguf_writer_set_u32(w, K("rope.dimension_count"), (uint32_t)rope_dim));
    CAIRN_TRY(gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), p->rms_eps));
    if (p->rope_scale_linear > 1.0f) {
        CAIRN_TRY(gguf_writer_set_str(w, K("rope.scaling.type"), "linear"));
        CAIRN_TRY(gguf_writer_set_f32(w, K("rope.scaling.factor"), p->rope_scale_linear));
    }
    if (p->n_expert) {
        CAIRN_TRY(gguf_writer_set_u32(w, K("expert_count"), (uint32_t)p->n_expert));
        CAIRN_TRY(gguf_writer_set_u32(w, K("expert_used_count"), (uint32_t)p->n_expert_used));
    }
    if (!strcmp(a, "qwen2moe") || !strcmp(a, "olmoe") || !strcmp(a, "qwen3moe"))
        CAIRN_TRY(gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)p->n_ff_expert));
    if (!strcmp(a, "qwen2moe"))
        CAIRN_TRY(gguf_writer_set_u32(w, K("expert_shared_feed_forward_length"), (uint32_t)p->n_ff_shared));
    if (!strcmp(a, "qwen3moe") && p->expert_weights_norm >= 0)
        CAIRN_TRY(gguf_writer_set_bool(w, K("expert_weights_norm"), p->expert_weights_norm > 0));
    CAIRN_TRY(gguf_writer_set_u32(w, "general.file_type", file_type_of(p->weight_type)));
    CAIRN_TRY(gguf_writer_set_u32(w, "general.quantization_version", 2));
#undef K
    vocab v;
    cairn_status st = vocab_build(&v, qwen, p->n_vocab);
    if (st == CAIRN_OK)
        st = gguf_writer_set_str(w, "tokenizer.ggml.model", qwen ? "gpt2" : "llama");
    if (st == CAIRN_OK && qwen)
        st = gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2");
    if (st == CAIRN_OK)
        st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, (uint64_t)v.n);
    if (st == CAIRN_OK && !qwen)
        st = gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v.score, (uint64_t)v.n);
    if (st == CAIRN_OK)
        st = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v.type, (uint64_t)v.n);
    if (st == CAIRN_OK && qwen)
        st = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges,
                                     (uint64_t)v.n_merges);
    if (st == CAIRN_OK) {
        uint32_t eos = qwen ? (uint32_t)(v.n - 1) : 2, bos = qwen ? eos : 1;
        st = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", bos);
        if (st == CAIRN_OK)
            st = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", eos);
        if (st == CAIRN_OK && !qwen)
            st = gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        if (st == CAIRN_OK && qwen)
            st = gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", eos);
        if (st == CAIRN_OK)
            st = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", !qwen);
        if (st == CAIRN_OK)
            st = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    }
    vocab_free(&v);
    return st;
}

static cairn_status write_tensors(synth *s, const gguf_testmodel_params *p, bool bias)
{
    bool shared = !strcmp(p->arch, "qwen2moe");
    bool olmoe = !strcmp(p->arch, "olmoe"), qwen3moe = !strcmp(p->arch, "qwen3moe");
    bool wide_experts = shared || olmoe || qwen3moe;   /* experts n_ff_expert wide */
    int hd = p->n_embd / p->n_head;
    int64_t E = p->n_embd, F = p->n_ff, V = p->n_vocab, Q = (int64_t)hd * p->n_head, KV = (int64_t)hd * p->n_head_kv;
    int64_t X = p->n_expert;
    uint32_t wt = p->weight_type;
    uint32_t et = p->embd_type >= 0 ? (uint32_t)p->embd_type : wt;
    uint32_t ot = p->output_type >= 0 ? (uint32_t)p->output_type : wt;
    char n[96];
    CAIRN_TRY(add_tensor(s, "token_embd.weight", et, 2, (int64_t[]){E, V}, FILL_MATRIX));
    for (int l = 0; l < p->n_layer; l++) {
#define T(suffix) (snprintf(n, sizeof n, "blk.%d.%s", l, suffix), n)
        CAIRN_TRY(add_tensor(s, T("attn_norm.weight"), QT_F32, 1, (int64_t[]){E}, FILL_NORM));
        CAIRN_TRY(add_tensor(s, T("attn_q.weight"), wt, 2, (int64_t[]){E, Q}, FILL_MATRIX));
        CAIRN_TRY(add_tensor(s, T("attn_k.weight"), wt, 2, (int64_t[]){E, KV}, FILL_MATRIX));
        CAIRN_TRY(add_tensor(s, T("attn_v.weight"), wt, 2, (int64_t[]){E, KV}, FILL_MATRIX));
        if (bias) {
            CAIRN_TRY(add_tensor(s, T("attn_q.bias"), QT_F32, 1, (int64_t[]){Q}, FILL_BIAS));
            CAIRN_TRY(add_tensor(s, T("attn_k.bias"), QT_F32, 1, (int64_t[]){KV}, FILL_BIAS));
            CAIRN_TRY(add_tensor(s, T("attn_v.bias"), QT_F32, 1, (int64_t[]){KV}, FILL_BIAS));
        }
        if (olmoe || qwen3moe) {   /* q/k RMSNorm weights: whole vectors (olmoe) or one head (qwen3moe) */
            CAIRN_TRY(add_tensor(s, T("attn_q_norm.weight"), QT_F32, 1, (int64_t[]){olmoe ? Q : hd}, FILL_NORM));
            CAIRN_TRY(add_tensor(s, T("attn_k_norm.weight"), QT_F32, 1, (int64_t[]){olmoe ? KV : hd}, FILL_NORM));
        }
        CAIRN_TRY(add_tensor(s, T("attn_output.weight"), wt, 2, (int64_t[]){Q, E}, FILL_MATRIX));
        CAIRN_TRY(add_tensor(s, T("ffn_norm.weight"), QT_F32, 1, (int64_t[]){E}, FILL_NORM));
        if (X) {
            int64_t FX = wide_experts ? p->n_ff_expert : F, FS = p->n_ff_shared;
            CAIRN_TRY(add_tensor(s, T("ffn_gate_inp.weight"), QT_F32, 2, (int64_t[]){E, X}, FILL_MATRIX));
            CAIRN_TRY(add_tensor(s, T("ffn_gate_exps.weight"), wt, 3, (int64_t[]){E, FX, X}, FILL_MATRIX));
            CAIRN_TRY(add_tensor(s, T("ffn_down_exps.weight"), wt, 3, (int64_t[]){FX, E, X}, FILL_MATRIX));
            CAIRN_TRY(add_tensor(s, T("ffn_up_exps.weight"), wt, 3, (int64_t[]){E, FX, X}, FILL_MATRIX));
            if (shared) {
                CAIRN_TRY(add_tensor(s, T("ffn_gate_inp_shexp.weight"), QT_F32, 1, (int64_t[]){E}, FILL_MATRIX));
                CAIRN_TRY(add_tensor(s, T("ffn_gate_shexp.weight"), wt, 2, (int64_t[]){E, FS}, FILL_MATRIX));
                CAIRN_TRY(add_tensor(s, T("ffn_down_shexp.weight"), wt, 2, (int64_t[]){FS, E}, FILL_MATRIX));
                CAIRN_TRY(add_tensor(s, T("ffn_up_shexp.weight"), wt, 2, (int64_t[]){E, FS}, FILL_MATRIX));
            }
        } else {
            CAIRN_TRY(add_tensor(s, T("ffn_gate.weight"), wt, 2, (int64_t[]){E, F}, FILL_MATRIX));
            CAIRN_TRY(add_tensor(s, T("ffn_down.weight"), wt, 2, (int64_t[]){F, E}, FILL_MATRIX));
            CAIRN_TRY(add_tensor(s, T("ffn_up.weight"), wt, 2, (int64_t[]){E, F}, FILL_MATRIX));
        }
#undef T
    }
    CAIRN_TRY(add_tensor(s, "output_norm.weight", QT_F32, 1, (int64_t[]){E}, FILL_NORM));
    if (!p->tied_output)
        CAIRN_TRY(add_tensor(s, "output.weight", ot, 2, (int64_t[]){E, V}, FILL_MATRIX));
    return CAIRN_OK;
}

/* ---- encoders (bert, nomic-bert) ---- */

static cairn_status write_encoder(synth *s, const gguf_testmodel_params *p)
{
    gguf_writer *w = s->w;
    const char *a = p->arch;
    bool nomic = !strcmp(a, "nomic-bert");
    char key[128], name[128];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    snprintf(name, sizeof name, "cairn-synth-%s", a);
    CAIRN_TRY(gguf_writer_set_str(w, "general.architecture", a));
    CAIRN_TRY(gguf_writer_set_str(w, "general.name", p->name ? p->name : name));
    CAIRN_TRY(gguf_writer_set_u32(w, K("context_length"), (uint32_t)p->n_ctx));
    CAIRN_TRY(gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)p->n_embd));
    CAIRN_TRY(gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)p->n_ff));
    CAIRN_TRY(gguf_writer_set_u32(w, K("block_count"), (uint32_t)p->n_layer));
    CAIRN_TRY(gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)p->n_head));
    CAIRN_TRY(gguf_writer_set_f32(w, K("attention.layer_norm_epsilon"), p->rms_eps));
    CAIRN_TRY(gguf_writer_set_bool(w, K("attention.causal"), false));
    CAIRN_TRY(gguf_writer_set_u32(w, K("pooling_type"), (uint32_t)p->pooling_type));
    if (nomic)
        CAIRN_TRY(gguf_writer_set_f32(w, K("rope.freq_base"), p->rope_freq_base));
    CAIRN_TRY(gguf_writer_set_u32(w, "general.file_type", file_type_of(p->weight_type)));
    CAIRN_TRY(gguf_writer_set_u32(w, "general.quantization_version", 2));
#undef K
    /* WordPiece vocabulary */
    vocab v;
    memset(&v, 0, sizeof v);
    cairn_status st = CAIRN_OK;
    v.tok = cairn_calloc((size_t)p->n_vocab, sizeof *v.tok);
    v.score = cairn_calloc((size_t)p->n_vocab, sizeof *v.score);
    v.type = cairn_calloc((size_t)p->n_vocab, sizeof *v.type);
    v.merges = cairn_calloc(1, sizeof *v.merges);
    if (!v.tok || !v.score || !v.type || !v.merges)
        st = cairn_fail(CAIRN_ERR_NOMEM, "synth: out of memory");
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5 && st == CAIRN_OK; i++)
        st = vocab_add(&v, specials[i], 0, 3);
    for (int i = 0; i < 26 && st == CAIRN_OK; i++) {
        char c[2] = {letters[i], 0};
        st = vocab_add(&v, c, 0, 1);
    }
    if (st == CAIRN_OK)
        st = vocab_pieces(&v, p->n_vocab, "\xe2\x96\x81", false);
    if (st == CAIRN_OK)
        st = gguf_writer_set_str(w, "tokenizer.ggml.model", "bert");
    if (st == CAIRN_OK)
        st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, (uint64_t)v.n);
    if (st == CAIRN_OK)
        st = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v.type, (uint64_t)v.n);
    static const char *const idk[] = {"tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
                                      "tokenizer.ggml.cls_token_id", "tokenizer.ggml.seperator_token_id",
                                      "tokenizer.ggml.mask_token_id"};
    for (uint32_t i = 0; i < 5 && st == CAIRN_OK; i++)
        st = gguf_writer_set_u32(w, idk[i], i);
    if (st == CAIRN_OK)
        st = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    vocab_free(&v);
    CAIRN_TRY(st);

    int64_t E = p->n_embd, F = p->n_ff, V = p->n_vocab, C = p->n_ctx;
    uint32_t wt = p->weight_type;
    uint32_t et = p->embd_type >= 0 ? (uint32_t)p->embd_type : wt;
    char n[96];
    CAIRN_TRY(add_tensor(s, "token_embd.weight", et, 2, (int64_t[]){E, V}, FILL_MATRIX));
    if (!nomic)
        CAIRN_TRY(add_tensor(s, "position_embd.weight", QT_F32, 2, (int64_t[]){E, C}, FILL_MATRIX));
    CAIRN_TRY(add_tensor(s, "token_types.weight", QT_F32, 2, (int64_t[]){E, 2}, FILL_MATRIX));
    CAIRN_TRY(add_tensor(s, "token_embd_norm.weight", QT_F32, 1, (int64_t[]){E}, FILL_NORM));
    CAIRN_TRY(add_tensor(s, "token_embd_norm.bias", QT_F32, 1, (int64_t[]){E}, FILL_BIAS));
    for (int l = 0; l < p->n_layer; l++) {
#define T(suffix) (snprintf(n, sizeof n, "blk.%d.%s", l, suffix), n)
        if (nomic) {
            CAIRN_TRY(add_tensor(s, T("attn_qkv.weight"), wt, 2, (int64_t[]){E, 3 * E}, FILL_MATRIX));
        } else {
            static const char *const qkv[] = {"attn_q", "attn_k", "attn_v"};
            for (int i = 0; i < 3; i++) {
                char wn[32], bn[32];
                snprintf(wn, sizeof wn, "%s.weight", qkv[i]);
                snprintf(bn, sizeof bn, "%s.bias", qkv[i]);
                CAIRN_TRY(add_tensor(s, T(wn), wt, 2, (int64_t[]){E, E}, FILL_MATRIX));
                CAIRN_TRY(add_tensor(s, T(bn), QT_F32, 1, (int64_t[]){E}, FILL_BIAS));
            }
        }
        CAIRN_TRY(add_tensor(s, T("attn_output.weight"), wt, 2, (int64_t[]){E, E}, FILL_MATRIX));
        if (!nomic)
            CAIRN_TRY(add_tensor(s, T("attn_output.bias"), QT_F32, 1, (int64_t[]){E}, FILL_BIAS));
        CAIRN_TRY(add_tensor(s, T("attn_output_norm.weight"), QT_F32, 1, (int64_t[]){E}, FILL_NORM));
        CAIRN_TRY(add_tensor(s, T("attn_output_norm.bias"), QT_F32, 1, (int64_t[]){E}, FILL_BIAS));
        CAIRN_TRY(add_tensor(s, T("ffn_up.weight"), wt, 2, (int64_t[]){E, F}, FILL_MATRIX));
        if (nomic)
            CAIRN_TRY(add_tensor(s, T("ffn_gate.weight"), wt, 2, (int64_t[]){E, F}, FILL_MATRIX));
        else
            CAIRN_TRY(add_tensor(s, T("ffn_up.bias"), QT_F32, 1, (int64_t[]){F}, FILL_BIAS));
        CAIRN_TRY(add_tensor(s, T("ffn_down.weight"), wt, 2, (int64_t[]){F, E}, FILL_MATRIX));
        if (!nomic)
            CAIRN_TRY(add_tensor(s, T("ffn_down.bias"), QT_F32, 1, (int64_t[]){E}, FILL_BIAS));
        CAIRN_TRY(add_tensor(s, T("layer_output_norm.weight"), QT_F32, 1, (int64_t[]){E}, FILL_NORM));
        CAIRN_TRY(add_tensor(s, T("layer_output_norm.bias"), QT_F32, 1, (int64_t[]){E}, FILL_BIAS));
#undef T
    }
    if (p->n_cls_out > 0) {
        CAIRN_TRY(add_tensor(s, "cls.weight", wt, 2, (int64_t[]){E, E}, FILL_MATRIX));
        CAIRN_TRY(add_tensor(s, "cls.bias", QT_F32, 1, (int64_t[]){E}, FILL_BIAS));
        CAIRN_TRY(add_tensor(s, "cls.output.weight", QT_F32, 2, (int64_t[]){E, p->n_cls_out}, FILL_MATRIX));
        CAIRN_TRY(add_tensor(s, "cls.output.bias", QT_F32, 1, (int64_t[]){p->n_cls_out}, FILL_BIAS));
    }
    return CAIRN_OK;
}

static cairn_status write_encoder_model(const char *path, gguf_testmodel_params p)
{
    if (p.n_embd <= 0 || p.n_layer <= 0 || p.n_head <= 0 || p.n_vocab <= 0 || p.n_ctx < 2 ||
        p.n_embd % p.n_head)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: encoder dimensions must be positive, n_head dividing n_embd");
    if (p.n_vocab < 5 + 26 + 26)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: a WordPiece vocabulary needs at least 57 tokens");
    if (p.n_vocab > 1 << 20 || p.n_embd > 1 << 14 || p.n_ff > 1 << 18 || p.n_layer > 256 || p.n_ctx > 1 << 15)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: dimensions too large");
    if (p.n_ff <= 0)
        p.n_ff = 4 * p.n_embd;
    if (p.rms_eps <= 0)
        p.rms_eps = 1e-12f;
    if (p.rope_freq_base <= 0)
        p.rope_freq_base = 1000.0f;
    if (p.weight_scale <= 0)
        p.weight_scale = 1.0f / sqrtf((float)p.n_embd);
    if (p.pooling_type < 0)
        p.pooling_type = p.n_cls_out > 0 ? 4 : 1;
    if (p.pooling_type > 4 || (p.pooling_type == 4 && p.n_cls_out <= 0))
        return cairn_fail(CAIRN_ERR_INVALID, "synth: pooling type 0..4 (4, rank, needs n_cls_out)");
    synth s = {NULL, &p};
    cairn_status st = gguf_writer_new(&s.w);
    if (st == CAIRN_OK)
        st = write_encoder(&s, &p);
    if (st == CAIRN_OK)
        st = gguf_writer_write(s.w, path);
    gguf_writer_free(s.w);
    return st;
}

cairn_status gguf_testmodel_write(const char *path, const gguf_testmodel_params *in)
{
    gguf_testmodel_params p = *in;
    if (!p.arch)
        p.arch = "llama";
    if (!strcmp(p.arch, "bert") || !strcmp(p.arch, "nomic-bert"))
        return write_encoder_model(path, p);
    /* moe_arch: needs experts; qwen: byte-level BPE vocabulary */
    bool moe_arch = !strcmp(p.arch, "qwen2moe") || !strcmp(p.arch, "olmoe") || !strcmp(p.arch, "qwen3moe");
    bool qwen = moe_arch || !strcmp(p.arch, "qwen2");
    if (!qwen && strcmp(p.arch, "llama"))
        return cairn_fail(CAIRN_ERR_UNSUPPORTED,
                          "synth: arch '%s' (llama, qwen2, qwen2moe, olmoe, qwen3moe, bert or nomic-bert)", p.arch);
    if (p.n_embd <= 0 || p.n_layer <= 0 || p.n_head <= 0 || p.n_vocab <= 0 || p.n_ctx <= 0)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: dimensions must be positive");
    if (p.n_ff <= 0)
        p.n_ff = 2 * p.n_embd;
    if (p.n_head_kv <= 0)
        p.n_head_kv = p.n_head;
    if (p.n_embd % p.n_head || p.n_head % p.n_head_kv || (p.n_embd / p.n_head) % 2)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: n_head %d must divide n_embd %d into even head sizes, and "
                          "n_head_kv %d must divide n_head", p.n_head, p.n_embd, p.n_head_kv);
    int hd = p.n_embd / p.n_head;
    int rope_dim = p.rope_dim > 0 ? p.rope_dim : hd;
    if (rope_dim > hd || rope_dim % 2)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: rope_dim %d must be even and at most the head size %d",
                          rope_dim, hd);
    bool olmoe = !strcmp(p.arch, "olmoe");
    if (p.rope_freq_base <= 0)
        p.rope_freq_base = qwen && !olmoe ? 1000000.0f : 10000.0f;
    if (p.rms_eps <= 0)
        p.rms_eps = qwen && !olmoe ? 1e-6f : 1e-5f;
    if (p.n_expert < 0 || p.n_expert > 256 || (p.n_expert && qwen && !moe_arch) || (moe_arch && !p.n_expert))
        return cairn_fail(CAIRN_ERR_INVALID,
                          "synth: experts: 0..256, for llama, or qwen2moe, olmoe, qwen3moe (which need them)");
    if (p.n_ff_expert <= 0)
        p.n_ff_expert = p.n_ff;
    if (p.n_ff_shared <= 0)
        p.n_ff_shared = p.n_ff;
    if (p.n_expert) {
        if (p.n_expert_used <= 0)
            p.n_expert_used = 2;
        p.n_expert_used = CAIRN_MIN(p.n_expert_used, p.n_expert);
    }
    if (!qwen && p.n_vocab < 259 + 26)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: a llama vocabulary needs at least 285 tokens");
    if (qwen && p.n_vocab < 256 + 27)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: a qwen2 vocabulary needs at least 283 tokens");
    if (p.n_vocab > 1 << 20 || p.n_embd > 1 << 16 || p.n_ff > 1 << 18 || p.n_layer > 1024)
        return cairn_fail(CAIRN_ERR_INVALID, "synth: dimensions too large");
    if (p.weight_scale <= 0)
        p.weight_scale = 1.0f / sqrtf((float)p.n_embd);
    bool bias = p.qkv_bias < 0 ? (qwen && !olmoe && strcmp(p.arch, "qwen3moe")) : p.qkv_bias > 0;

    synth s = {NULL, &p};
    cairn_status st = gguf_writer_new(&s.w);
    if (st == CAIRN_OK)
        st = write_meta(&s, &p, qwen, rope_dim);
    if (st == CAIRN_OK)
        st = write_tensors(&s, &p, bias);
    if (st == CAIRN_OK)
        st = gguf_writer_write(s.w, path);
    gguf_writer_free(s.w);
    return st;
}
