/*
 * bert.h — internal to src/model: a BERT-family encoder bound from GGUF
 * (bert.c) and the packed-batch forward pass over it (embed.c). The public
 * contract is embed.h.
 *
 * Tensor names as llama.cpp writes them:
 *   token_embd (n_vocab, d), position_embd (n_ctx, d; bert only),
 *   token_types (n_types, d; optional, row 0 is added: llama.cpp hardcodes
 *   sentence A), token_embd_norm.{weight,bias};
 *   blk.N.attn_q/attn_k/attn_v (d, d) with .bias  — or —  blk.N.attn_qkv
 *   (3d, d) with optional .bias (nomic-bert: Q, K, V stacked in that order);
 *   blk.N.attn_output (+.bias), attn_output_norm.{weight,bias};
 *   blk.N.ffn_up (ff, d) (+.bias), ffn_gate (ff, d; nomic-bert: SwiGLU
 *   silu(gate) * up), ffn_down (d, ff) (+.bias), layer_output_norm.{weight,bias};
 *   rerankers: cls (d, d) + cls.bias, then tanh, then cls.output (n_out, d)
 *   + cls.output.bias; the score is output 0 (llama.cpp's RANK pooling).
 * Per-channel vectors stored as F16 are converted once into owned F32.
 */
#ifndef CAIRN_MODEL_BERT_H
#define CAIRN_MODEL_BERT_H

#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "model/embed.h"
#include "tokenizer/tokenizer.h"

typedef struct bert_layer {
    qmat wq, wk, wv;                 /* (d, d) each; data NULL when fused */
    const float *bq, *bk, *bv;       /* (d,) or NULL */
    qmat wqkv;                       /* (3d, d) nomic-bert; data NULL when split */
    const float *bqkv;               /* (3d,) or NULL */
    qmat wo;                         /* (d, d) */
    const float *bo;                 /* (d,) or NULL */
    const float *ln1_w, *ln1_b;      /* attn_output_norm (d,) */
    qmat up, gate, down;             /* (ff, d), (ff, d) nomic only, (d, ff) */
    const float *b_up, *b_down;      /* (ff,), (d,) or NULL */
    const float *ln2_w, *ln2_b;      /* layer_output_norm (d,) */
} bert_layer;

struct cairn_embedder {
    gguf_file *g;
    cairn_tokenizer *tok;
    bool nomic;                      /* RoPE + SwiGLU + fused QKV */
    char arch[16];
    char name[128];
    char id[192];
    int n_vocab, d, n_layer, n_head, hd, n_ff, n_ctx, n_threads;
    float eps;
    embed_pooling pooling;           /* as read (RANK for cross-encoders) */
    /* embeddings: rows converted with to_float */
    qmat tok_embd, pos_embd, type_embd;   /* pos/type data NULL when absent */
    const float *tok_ln_w, *tok_ln_b;
    bert_layer *layers;
    /* nomic-bert RoPE (NeoX pairs (i, i + n_rot/2)): cos/sin (n_ctx, n_rot/2) */
    int n_rot;
    float *rope_cos, *rope_sin;
    /* classification head (RANK) */
    qmat cls, cls_out;               /* data NULL when absent */
    const float *cls_b, *cls_out_b;
    const char *query_prefix, *doc_prefix;
    void **owned;
    int n_owned, cap_owned;
    embed_ctx *ictx;                 /* for calls with a NULL ctx, made on first use */
};

/* bert.c: bind every tensor of an open file (takes ownership of g, also on
 * failure). CAIRN_ERR_UNSUPPORTED when the file is not an encoder. */
cairn_status bert_bind(gguf_file *g, cairn_embedder *e);
void bert_unbind(cairn_embedder *e);

#endif
