/*
 * model.h — llama-family decoder models bound from a GGUF file.
 *
 * A cairn_model is the read-only half of inference: hyper-parameters read
 * from `<arch>.*` metadata and weight matrices. Decode streams every weight
 * once per token, and under a hypervisor a TLB miss per 4 KiB page costs
 * 13-22% of decode speed, so the weights are put on 2 MiB pages where the
 * kernel allows (model_weights): copied into anonymous huge-page memory, or
 * on request mapped from 2 MiB page-cache folios; on request (or without
 * transparent huge pages) they point into the plain GGUF mapping. Small per-channel vectors (norm weights, biases)
 * are used in place when stored as F32 and converted once into an owned
 * buffer otherwise. Everything that changes while generating (KV cache,
 * activations) lives in a session (infer/session.h), so one model can serve
 * several sessions.
 *
 * Architectures: "llama" (also Mistral-style: GQA, no biases) and "qwen2"
 * (Q/K/V biases, NeoX RoPE). Tensor names follow GGUF conventions:
 *   token_embd, output_norm, output (absent = tied to token_embd),
 *   blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 *          ffn_gate, ffn_up, ffn_down} and, for qwen2, blk.N.attn_{q,k,v}.bias.
 *
 * MoE (issue 5) extends model_layer with expert tensors and sets
 * n_expert/n_expert_used; the forward pass picks the FFN per layer
 * (see ffn step in infer/session.c).
 */
#ifndef CAIRN_MODEL_H
#define CAIRN_MODEL_H

#include "gguf/gguf.h"
#include "kernels/matmul.h"

typedef enum { MODEL_ARCH_LLAMA, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN2MOE, MODEL_ARCH_OLMOE, MODEL_ARCH_QWEN3MOE,
               MODEL_ARCH_QWEN3 } model_arch;

/* RoPE pairing: NORMAL rotates adjacent pairs (x[2i], x[2i+1]) as llama.cpp's
 * "normal" mode; NEOX rotates (x[i], x[i + n_rot/2]) (GPT-NeoX, qwen2). */
typedef enum { ROPE_PAIRS_NORMAL, ROPE_PAIRS_NEOX } rope_pairs;
typedef enum { ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_YARN, ROPE_SCALING_LLAMA3 } rope_scaling;

typedef struct model_hparams {
    model_arch arch;
    int n_vocab;        /* rows of token_embd */
    int n_embd;         /* residual stream width */
    int n_layer;
    int n_ff;           /* dense FFN hidden width */
    int n_head;         /* query heads */
    int n_head_kv;      /* key/value heads (GQA: n_head % n_head_kv == 0) */
    int head_dim;       /* per head (attention.key_length, default n_embd / n_head) */
    int n_ctx_train;    /* context_length */
    float norm_eps;     /* RMSNorm epsilon */
    /* RoPE */
    rope_pairs rope;
    int n_rot;                /* rotated dims per head (rope.dimension_count, <= head_dim) */
    float rope_freq_base;     /* theta base */
    float rope_freq_scale;    /* 1 / scaling factor (linear and yarn; 1 for llama3, whose factor is in rope_freqs) */
    rope_scaling rope_scaling_type;
    int rope_yarn_orig_ctx;   /* rope.scaling.original_context_length (yarn, llama3) */
    float rope_llama3_factor; /* llama3: rope.scaling.{factor,low_freq_factor,high_freq_factor} */
    float rope_llama3_low, rope_llama3_high;
    /* MoE (0 for dense models) */
    int n_expert, n_expert_used;
    int n_ff_exp;             /* hidden width of one expert (expert_feed_forward_length, else n_ff) */
    int n_ff_shexp;           /* shared expert width (qwen2moe), 0 = none */
    bool moe_norm_w;          /* renormalise the chosen experts' weights to sum 1 */
    bool qk_norm;             /* RMSNorm on q and k before RoPE (olmoe: whole vector; qwen3, qwen3moe: per head) */
} model_hparams;

typedef struct model_layer {
    const float *attn_norm;          /* (n_embd,) */
    qmat wq;                         /* (n_head*head_dim, n_embd) */
    qmat wk, wv;                     /* (n_head_kv*head_dim, n_embd) */
    const float *bq, *bk, *bv;       /* qwen2 biases, NULL when absent */
    qmat wo;                         /* (n_embd, n_head*head_dim) */
    const float *ffn_norm;           /* (n_embd,) */
    qmat ffn_gate, ffn_up;           /* (n_ff, n_embd) */
    qmat ffn_down;                   /* (n_embd, n_ff) */
    /* MoE layers (ffn_gate/up/down unused): */
    qmat ffn_gate_inp;               /* router (n_expert, n_embd) */
    qmat gate_exps, up_exps;         /* expert 0 of the stack: (n_ff_exp, n_embd); expert e at data + e * *_stride */
    qmat down_exps;                  /* expert 0: (n_embd, n_ff_exp) */
    size_t gate_stride, up_stride, down_stride;   /* bytes between experts */
    qmat gate_shexp, up_shexp;       /* shared expert (n_ff_shexp, n_embd), data NULL when absent */
    qmat down_shexp;                 /* (n_embd, n_ff_shexp) */
    const float *gate_inp_shexp;     /* (n_embd,) sigmoid gate of the shared expert */
    const float *q_norm, *k_norm;    /* qk_norm: (q_dim,)/(kv_dim,) for olmoe, (head_dim,) for qwen3/qwen3moe */
} model_layer;

typedef struct cairn_model {
    gguf_file *gguf;                 /* owned: the weights point into its mapping */
    char arch_name[32];
    model_hparams hp;
    qmat tok_embd;                   /* (n_vocab, n_embd), rows looked up with to_float */
    const float *rope_freqs;         /* (n_rot/2,) frequency divisors: the rope_freqs tensor, else computed
                                      * from llama3 scaling metadata (owned), or NULL */
    model_layer *layers;             /* (n_layer,) */
    const float *output_norm;        /* (n_embd,) */
    qmat output;                     /* (n_vocab, n_embd); == tok_embd when tied */
    bool tied_output;
    void **owned;                    /* converted vectors, freed with the model */
    int n_owned, cap_owned;
    uint8_t *wmem;                   /* copied weights (MODEL_WEIGHTS_COPY), or NULL */
    size_t wmem_size, wmem_used;
    bool huge_mapped;                /* weights read from the mapping on 2 MiB pages */
} cairn_model;

/* Where the weight matrices live.
 * AUTO: when transparent huge pages are available (enabled = always or
 *   madvise) and the copy fits in memory, a copy into anonymous huge-page
 *   memory; else the plain mapping.
 * MAP_HUGE: the file mapping with MADV_HUGEPAGE, kept if the page cache
 *   then maps the weights with 2 MiB entries (checked in smaps after
 *   faulting them in; a file cached earlier in smaller folios is written
 *   back, dropped from the cache and read once more), else as AUTO. Zero
 *   copy and an instant start once the file is cached in 2 MiB folios, but
 *   on this KVM guest decode from page-cache memory measured up to 30%
 *   slower than from the copy (both on 2 MiB pages), so it is not the
 *   default.
 * MAPPED: the plain mapping (pages shared with other processes, MoE
 *   experts paged in only when chosen, slower decode).
 * COPY: the copy even without huge pages.
 * A failed copy falls back to the mapping. The token-embedding table is
 * never copied unless it is also the output matrix: only one row of it is
 * read per token. */
typedef enum { MODEL_WEIGHTS_AUTO, MODEL_WEIGHTS_MAPPED, MODEL_WEIGHTS_COPY, MODEL_WEIGHTS_MAP_HUGE } model_weights;

/* Open `path` (mmap) and bind the model. On failure *out is NULL and the
 * detail names the missing/malformed tensor or key. */
cairn_status model_load(const char *path, cairn_model **out);
cairn_status model_load_ex(const char *path, model_weights where, cairn_model **out);
/* Bind a model from an already open file; takes ownership of `g` on success
 * and on failure. */
cairn_status model_from_gguf(gguf_file *g, cairn_model **out);
cairn_status model_from_gguf_ex(gguf_file *g, model_weights where, cairn_model **out);
/* Bytes of weights copied out of the file (0 when they are mapped). */
size_t model_copied_bytes(const cairn_model *m);
/* Bytes of the weights (the copy, or the file mapping) that 2 MiB pages
 * back right now (/proc/self/smaps AnonHugePages or FilePmdMapped; 0 if
 * unknown), at most the copied bytes. Only pages touched so far count. */
size_t model_huge_bytes(const cairn_model *m);
void model_free(cairn_model *m);

/* Host decisions behind AUTO, as pure functions (tests take each branch on
 * any machine):
 *  - model_thp_usable: CAIRN_THP (0/off/never = no, 1/on = yes; NULL or
 *    anything else = ask /sys) and the first line of
 *    /sys/kernel/mm/transparent_hugepage/enabled -> huge pages usable;
 *  - model_copy_fits: the copy's bytes and MemAvailable (bytes; unknown =
 *    copy) -> copy only what fits in 80% of the available memory. */
bool model_thp_usable(const char *env, const char *sys_line);
bool model_copy_fits(size_t total, bool avail_known, uint64_t avail);

/* Bytes of weights read to generate one token: every layer matrix, the
 * output matrix, norms, and one embedding row. */
uint64_t model_weight_bytes_per_token(const cairn_model *m);
/* Number of parameters (elements of all tensors). */
uint64_t model_n_params(const cairn_model *m);
const char *model_arch_name(model_arch a);
/* Parameters read per generated token: all, less the experts not chosen. */
uint64_t model_n_active_params(const cairn_model *m);
/* The i-th expert's matrix of a stacked expert tensor view. */
static inline qmat model_expert(const qmat *stack0, size_t stride, int e)
{
    qmat q = *stack0;
    q.data = (const char *)stack0->data + (size_t)e * stride;
    return q;
}

#endif
