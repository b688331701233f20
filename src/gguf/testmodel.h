/*
 * testmodel.h — write small random-weight llama-family GGUF models, for tests
 * (shapes and types the shared models lack: qwen2 biases, NeoX RoPE, GQA,
 * K-quants, MoE) and for benchmarks (random weights in real model shapes).
 * Also reachable as `cairn model synth OUT [options]`.
 *
 * The model is complete enough for llama.cpp and cairn to load:
 *   - arch "llama": normal RoPE, SentencePiece-style vocabulary (<unk> <s> </s>,
 *     256 byte tokens <0xXX>, then "▁"-prefixed letter pieces), add_bos.
 *   - arch "qwen2": NeoX RoPE (implied by the arch), q/k/v biases, byte-level
 *     BPE vocabulary (256 byte symbols, letter merges, <|endoftext|> last).
 *   - MoE, arch "llama" (Mixtral layout): ffn_gate_inp [n_embd, n_expert] (F32)
 *     and merged ffn_{gate,up}_exps [n_embd, n_ff, n_expert], ffn_down_exps
 *     [n_ff, n_embd, n_expert].
 *   - arch "qwen2moe": qwen2 attention and vocabulary, routed experts as above
 *     but n_ff_expert wide, plus a shared expert: ffn_{gate,up}_shexp
 *     [n_embd, n_ff_shared], ffn_down_shexp [n_ff_shared, n_embd] and its gate
 *     ffn_gate_inp_shexp [n_embd] (F32).
 *   - arch "olmoe" and "qwen3moe": qwen2-style byte-level BPE vocabulary, no
 *     biases, NeoX RoPE (implied by the arch), routed experts n_ff_expert wide
 *     (<arch>.expert_feed_forward_length), no shared expert, plus F32 q/k
 *     norm weights blk.N.attn_q_norm.weight / attn_k_norm.weight: olmoe norms
 *     the whole q and k vectors ([n_head * head_dim], [n_head_kv * head_dim]),
 *     qwen3moe each head ([head_dim] both). qwen3moe may carry
 *     qwen3moe.expert_weights_norm (renormalise the chosen experts' weights).
 *   - encoders "bert" and "nomic-bert" (embeddings, model/embed.h): a
 *     WordPiece vocabulary in llama.cpp's convention ([PAD] [UNK] [CLS]
 *     [SEP] [MASK], 26 continuation letters, then "\u2581"-prefixed
 *     word-initial pieces); bert: position_embd [n_embd, n_ctx], token_types
 *     [n_embd, 2], q/k/v/output/ffn biases, GELU FFN; nomic-bert: RoPE
 *     (rope.freq_base 1000 unless set), fused attn_qkv [n_embd, 3 n_embd],
 *     SwiGLU ffn_gate/ffn_up, no biases; both post-LayerNorm (weights and
 *     biases: token_embd_norm, attn_output_norm, layer_output_norm),
 *     epsilon rms_eps (default 1e-12), <arch>.pooling_type. With n_cls_out
 *     > 0 a cross-encoder head: cls.weight [n_embd, n_embd] + cls.bias,
 *     cls.output.weight [n_embd, n_cls_out] + cls.output.bias (pooling 4, rank).
 * Tensor names and shapes follow llama.cpp. Values come from a seeded
 * generator: matrices uniform in [-weight_scale, weight_scale], norm weights
 * 1 +- 0.1, biases +- 0.1; the same parameters always give the same bytes.
 */
#ifndef CAIRN_GGUF_TESTMODEL_H
#define CAIRN_GGUF_TESTMODEL_H

#include "gguf/gguf.h"

typedef struct gguf_testmodel_params {
    const char *arch;          /* "llama" (default), "qwen2", "qwen2moe", "olmoe", "qwen3moe", "bert", "nomic-bert" */
    int n_vocab;               /* default 320 (llama needs >= 259: 3 specials + 256 bytes) */
    int n_embd;                /* default 64 */
    int n_ff;                  /* default 2 * n_embd */
    int n_layer;               /* default 2 */
    int n_head;                /* default 4 */
    int n_head_kv;             /* default n_head */
    int n_ctx;                 /* default 256 */
    int rope_dim;              /* default head_dim (n_embd / n_head) */
    float rope_freq_base;      /* default 10000 (qwen2: 1000000) */
    float rope_scale_linear;   /* > 1: rope.scaling.type "linear" with this factor; 0 = none */
    float rms_eps;             /* default 1e-5 (qwen2: 1e-6) */
    int qkv_bias;              /* -1 = by arch (qwen2 yes, llama no), 0 no, 1 yes */
    bool tied_output;          /* no output.weight: the output reuses token_embd */
    int n_expert;              /* 0 = dense; > 0: MoE (llama; qwen2moe, olmoe, qwen3moe need it) */
    int n_expert_used;         /* default 2 (capped at n_expert) */
    int n_ff_expert;           /* qwen2moe/olmoe/qwen3moe: width of a routed expert; default n_ff */
    int expert_weights_norm;   /* qwen3moe: -1 = key absent (default), 0/1 = write <arch>.expert_weights_norm */
    int n_ff_shared;           /* qwen2moe: width of the shared expert; default n_ff */
    uint32_t weight_type;      /* attention and FFN matrices; default F32 (qtype ids, kernels/quant.h) */
    int embd_type;             /* token_embd; -1 = weight_type */
    int output_type;           /* output.weight; -1 = weight_type */
    float weight_scale;        /* default 1 / sqrt(n_embd) */
    uint64_t seed;             /* default 0 is a valid seed */
    const char *name;          /* general.name; default "cairn-synth-<arch>" */
    int pooling_type;          /* encoders: -1 = mean (1), or 1 mean, 2 CLS, 3 last, 4 rank */
    int n_cls_out;             /* encoders: > 0 adds the reranker head (and pooling 4 unless set) */
} gguf_testmodel_params;

/* Defaults for every field (call, then change what you need). */
void gguf_testmodel_defaults(gguf_testmodel_params *p);
/* Validate, fill derived defaults, and write the model to `path`.
 * CAIRN_ERR_INVALID for inconsistent shapes (heads not dividing n_embd,
 * rows not whole blocks of the chosen type, ...), CAIRN_ERR_UNSUPPORTED for
 * a type without a quantizer. */
cairn_status gguf_testmodel_write(const char *path, const gguf_testmodel_params *p);

#endif
